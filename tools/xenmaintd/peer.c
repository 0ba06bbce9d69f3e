/*
 * peer.c -- the agent-to-agent link (see peer.h).
 *
 * Each connection runs: connect (client side only) -> TLS handshake with
 * the peer's certificate verified against the pool CA -> the hellos ->
 * frames.  Two kinds of use:
 *
 *  - questions: a query opens one short-lived connection per peer, sends
 *    one request (STATUS_REQ, MIGRATE_PULL) and answers the agent once,
 *    when every peer has answered, failed or timed out;
 *  - migrations: each migration has a channel (struct peer_mchan) that
 *    owns one connection at a time, so frames need no routing: a
 *    source's channel connects when its executor asks and reconnects
 *    after a loss; a target's channel takes the incoming connection
 *    whose first frame was the OFFER (or, after a reconnect, a
 *    MIGRATE_STATUS_REQ for a migration the agent still runs).  The
 *    channel pauses reading when the executor's stream queue is full
 *    and tells it when its send queue went down.
 *
 * The output queue of a connection is written from its head and
 * compacted only once half of it is dead: a TLS write takes what the
 * socket has room for (often a few records), and moving the rest of a
 * migration's megabyte of queued frames after each one cost more CPU
 * than the encryption.
 *
 * Anything unexpected from a peer (a bad frame, a type we do not serve,
 * a name that does not match its certificate) closes that connection and
 * is logged once with the peer's name.  Callbacks into the agent run with
 * no connection state half-updated; a channel's link(false) comes after
 * its connection is freed.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <linux/sockios.h>      /* SIOCOUTQ */

#include "peer.h"
#include "xm_err.h"
#include "xm_log.h"
#include "xm_proto.h"
#include "xm_tls.h"

#define READ_CHUNK 16384
#define OUT_MAX (4u * 1024 * 1024)

enum conn_phase {
    C_CONNECTING,
    C_HANDSHAKE,
    C_OPEN,
};

struct status_query;
struct peer_mchan;

struct peer_conn {
    struct peer_link *link;
    struct peer_conn *next;
    int fd;
    bool client;
    char name[XM_HOSTNAME_MAX + 1];  /* expected or verified peer */
    enum conn_phase phase;
    struct xm_tls_conn *tls;
    struct xm_loop_fd *lfd;
    struct xm_loop_timer *idle;
    struct xm_buf out;
    size_t out_head;                 /* out.data[out_head..len) unsent */
    struct xm_dec dec;
    bool hello_seen;
    short tls_wants;
    bool dead;
    struct status_query *query;      /* client: the query it answers */
    unsigned slot;
    struct peer_mchan *mchan;        /* the migration that owns it */
};

/* A migration's link: outlives its connections. */
struct peer_mchan {
    struct peer_link *link;
    char peer[XM_HOSTNAME_MAX + 1];
    struct peer_conn *conn;          /* NULL while down */
    struct agent_chan_cb cb;
    void *arg;
    bool rx_paused;
    bool quiet;                      /* the migration expects nothing
                                      * more: a close is its end */
    struct xm_loop_timer *resume;    /* pump the connection again */
    struct peer_mchan *next;
};

struct query_slot {
    char name[XM_HOSTNAME_MAX + 1];
    int rc;                          /* XM_ERR_BUSY while pending */
    char error[200];
    xm_json *doc;
};

struct status_query {
    struct peer_link *link;
    agent_peer_status_fn *done;
    void *arg;
    uint16_t req_type, resp_type;
    char *req;                       /* request payload, may be NULL */
    size_t req_len;
    unsigned n, pending;
    struct query_slot *slots;
    struct xm_loop_timer *timer;
    struct status_query *next;
};

struct peer_link {
    const struct xm_config *cfg;
    struct xm_loop *loop;
    struct agent *agent;
    struct xm_tls_ctx *tls;
    char tls_error[256];
    int listen_fd;
    int port;
    struct xm_loop_fd *listen_lfd;
    struct peer_conn *conns;
    struct status_query *queries;
    struct peer_mchan *mchans;
    uint32_t features;               /* offered in our hellos */
};

static void conn_close(struct peer_conn *c);
static void conn_pump(struct peer_conn *c);
static void query_slot_done(struct status_query *q, unsigned slot, int rc,
                            const char *error, xm_json *doc);

/* ---- connections ---- */

/* Bytes queued for the peer, not yet handed to TLS. */
static size_t
out_pending(const struct peer_conn *c)
{
    return c->out.len - c->out_head;
}

/* Bytes queued or in TLS's buffer, not yet given to the kernel. */
static size_t
conn_unsent(const struct peer_conn *c)
{
    return out_pending(c) +
           (c->tls && c->phase == C_OPEN ? xm_tls_unsent(c->tls) : 0);
}

/* Drop the written bytes at the front of the queue: at once when all
 * went, else once they are half of it (amortised: each byte moves at
 * most once), or when an append of need bytes would not fit. */
static void
out_compact(struct peer_conn *c, size_t need)
{
    if (c->out_head == 0)
        return;
    if (c->out_head == c->out.len) {
        xm_buf_reset(&c->out);
        c->out_head = 0;
    } else if (c->out_head >= c->out.len / 2 ||
               c->out.len + need > c->out.max) {
        xm_buf_consume(&c->out, c->out_head);
        c->out_head = 0;
    }
}

static void
conn_update_events(struct peer_conn *c)
{
    short ev = POLLIN;

    if (c->mchan && c->mchan->rx_paused)
        ev = 0;
    if (c->phase == C_CONNECTING || conn_unsent(c) > 0 ||
        (c->tls_wants & POLLOUT))
        ev |= POLLOUT;
    xm_loop_fd_events(c->lfd, ev);
}

/* A client connection ended without an answer: tell its query. */
static void
conn_fail(struct peer_conn *c, int rc, const char *why)
{
    if (c->query) {
        query_slot_done(c->query, c->slot, rc, why, NULL);
        c->query = NULL;
    } else if (why && c->mchan && c->mchan->quiet && rc == XM_ERR_IO) {
        /* its migration expects nothing more: the normal end */
        xm_log_debug("peer %s: %s", c->name, why);
    } else if (why) {
        xm_log_warn("peer %s: %s", c->name[0] ? c->name : "(unverified)",
                    why);
    }
    conn_close(c);
}

static void
on_idle(void *arg)
{
    struct peer_conn *c = arg;

    c->idle = NULL;             /* fired: gone */
    conn_fail(c, XM_ERR_TIMEOUT, "timed out");
}

/* Close c; its channel (if any) hears link(false) once c is gone. */
static void
conn_close(struct peer_conn *c)
{
    struct peer_link *link = c->link;
    struct peer_mchan *mc = c->mchan;

    if (c->dead)
        return;
    c->dead = true;
    if (mc)
        mc->conn = NULL;
    for (struct peer_conn **pp = &link->conns; *pp; pp = &(*pp)->next) {
        if (*pp == c) {
            *pp = c->next;
            break;
        }
    }
    xm_loop_del_fd(link->loop, c->lfd);
    xm_loop_cancel_timer(link->loop, c->idle);
    xm_tls_conn_free(c->tls);
    if (c->fd >= 0)
        close(c->fd);
    xm_buf_dispose(&c->out);
    xm_dec_dispose(&c->dec);
    free(c);
    if (mc)
        mc->cb.link(mc->arg, false);
}

/* Close c without telling its channel (the channel is going away or
 * moving to another connection). */
static void
conn_close_quiet(struct peer_conn *c)
{
    if (c->mchan)
        c->mchan->conn = NULL;
    c->mchan = NULL;
    conn_close(c);
}

static void
on_conn_ready(void *arg, int fd, short revents)
{
    struct peer_conn *c = arg;

    (void)fd;
    if (c->phase == C_CONNECTING) {
        int err = 0;
        socklen_t len = sizeof(err);

        if (!(revents & (POLLOUT | POLLERR | POLLHUP)))
            return;
        if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
            err = errno;
        if (err) {
            char why[160];
            snprintf(why, sizeof(why), "cannot connect: %s", strerror(err));
            conn_fail(c, XM_ERR_IO, why);
            return;
        }
        c->phase = C_HANDSHAKE;
    }
    conn_pump(c);
}

static struct peer_conn *
conn_new(struct peer_link *link, int fd, bool client, const char *name,
         int64_t timeout_ms)
{
    struct peer_conn *c = calloc(1, sizeof(*c));

    if (!c)
        return NULL;
    c->link = link;
    c->fd = fd;
    c->client = client;
    if (name)
        snprintf(c->name, sizeof(c->name), "%s", name);
    xm_buf_init(&c->out, OUT_MAX);
    xm_dec_init(&c->dec, link->features);
    if (xm_loop_add_fd(link->loop, fd, POLLIN | POLLOUT, on_conn_ready, c,
                       &c->lfd) ||
        xm_loop_add_timer(link->loop, timeout_ms, on_idle, c, &c->idle)) {
        xm_loop_del_fd(link->loop, c->lfd);
        xm_buf_dispose(&c->out);
        xm_dec_dispose(&c->dec);
        free(c);
        return NULL;
    }
    c->next = link->conns;
    link->conns = c;
    return c;
}

/* The TLS session is up: the peer's certificate was verified. */
static int
conn_opened(struct peer_conn *c)
{
    const char *certname = xm_tls_peer_name(c->tls);

    if (!c->client) {
        if (!certname || !xm_config_peer(c->link->cfg, certname)) {
            xm_log_warn("refusing a connection from '%s': not a peer of "
                        "this host", certname ? certname : "?");
            return XM_ERR_PERM;
        }
        snprintf(c->name, sizeof(c->name), "%s", certname);
    }
    xm_log_debug("peer %s: TLS up (%s)", c->name,
                 xm_tls_cipher_name(c->tls) ? xm_tls_cipher_name(c->tls)
                                            : "?");
    return xm_enc_hello(&c->out, c->link->cfg->host_name,
                        c->link->features);
}

static int
send_status(struct peer_conn *c, uint32_t id)
{
    struct xm_jgen *g = xm_jgen_new(false);
    const char *text;
    size_t len;
    int rc;

    if (!g)
        return XM_ERR_NOMEM;
    rc = c->link->agent ? agent_host_status(c->link->agent, g)
                        : XM_ERR_STATE;
    if (!rc)
        rc = xm_jgen_finish(g, &text, &len);
    if (!rc)
        rc = xm_enc_frame(&c->out, c->dec.features, XM_MSG_STATUS_RESP, 0,
                          id, text, len);
    else
        rc = xm_enc_error(&c->out, XM_MSG_ERROR, id, rc,
                          "cannot read this host's state");
    xm_jgen_free(g);
    return rc;
}

/* One frame from the peer.  XM_OK to go on; an error closes. */
static int
conn_frame(struct peer_conn *c, const struct xm_frame *f)
{
    char text[XM_PROTO_TEXT_MAX + 1], err[160];
    int32_t code;
    xm_json *doc = NULL;

    if (!c->hello_seen) {
        if (f->type != XM_MSG_HELLO)
            return XM_ERR_PROTO;
        if (strcmp(c->dec.peer.host, c->name) != 0) {
            xm_log_warn("peer %s: its hello says it is '%s'", c->name,
                        c->dec.peer.host);
            return XM_ERR_PERM;
        }
        c->hello_seen = true;
        if (c->client && c->mchan) {
            /* a migration's connection: the machine's timers rule */
            xm_loop_cancel_timer(c->link->loop, c->idle);
            c->idle = NULL;
            c->mchan->cb.link(c->mchan->arg, true);
            return XM_OK;
        }
        if (c->client && c->query)
            return xm_enc_frame(&c->out, c->dec.features,
                                c->query->req_type, 0, 1, c->query->req,
                                c->query->req_len);
        return XM_OK;
    }
    if (c->mchan) {
        if (f->type == XM_MSG_ERROR) {
            if (xm_frame_error(f, &code, text, sizeof(text)) == XM_OK)
                xm_log_warn("peer %s: %s", c->name, text);
            return XM_ERR_PROTO;
        }
        return c->mchan->cb.frame(c->mchan->arg, f) ? XM_ERR_PROTO
                                                    : XM_OK;
    }
    switch (f->type) {
    case XM_MSG_STATUS_REQ:
        if (c->client)
            return XM_ERR_PROTO;
        return send_status(c, f->id);
    case XM_MSG_STATUS_RESP:
    case XM_MSG_MIGRATE_PULL_RESP:
    case XM_MSG_MIGRATE_STATUS:     /* the answer to a CANCEL */
        if (!c->client || !c->query || f->type != c->query->resp_type)
            return XM_ERR_PROTO;
        if (xm_json_parse((const char *)f->payload, f->len, &doc, err,
                          sizeof(err)) != XM_OK ||
            xm_json_type(doc) != XM_JSON_OBJECT) {
            xm_json_free(doc);
            query_slot_done(c->query, c->slot, XM_ERR_PROTO,
                            "sent a malformed answer", NULL);
        } else {
            query_slot_done(c->query, c->slot, XM_OK, NULL, doc);
        }
        c->query = NULL;
        return XM_ERR_CANCELLED;    /* done: close quietly */
    case XM_MSG_ERROR:
        if (xm_frame_error(f, &code, text, sizeof(text)) != XM_OK)
            return XM_ERR_PROTO;
        if (c->query) {
            query_slot_done(c->query, c->slot, code ? code : XM_ERR_PROTO,
                            text, NULL);
            c->query = NULL;
        }
        return XM_ERR_CANCELLED;
    case XM_MSG_MIGRATE_OFFER:
    case XM_MSG_MIGRATE_STATUS_REQ:
    case XM_MSG_MIGRATE_PULL:
    case XM_MSG_MIGRATE_CANCEL: {
        struct peer_link *link = c->link;
        int rc;

        if (c->client || !link->agent)
            return XM_ERR_PROTO;
        rc = agent_peer_frame(link->agent, c->name,
                              (struct agent_conn *)c, f);
        return rc ? XM_ERR_PROTO : XM_OK;
    }
    default:
        /* a type this agent does not serve (yet): say so, then close */
        xm_enc_error(&c->out, XM_MSG_ERROR, f->id, XM_ERR_UNSUPPORTED,
                     "message type not served by this agent");
        return XM_OK;
    }
}

static bool
conn_paused(const struct peer_conn *c)
{
    return c->mchan && c->mchan->rx_paused;
}

/* Hand the decoder's complete frames on, until it needs bytes or the
 * channel pauses. */
static int
conn_frames(struct peer_conn *c)
{
    struct xm_frame f;
    int rc;

    while (!conn_paused(c) && (rc = xm_dec_next(&c->dec, &f)) == XM_OK) {
        rc = conn_frame(c, &f);
        if (rc)
            return rc;
    }
    if (conn_paused(c))
        return XM_OK;
    if (rc != XM_ERR_BUSY) {
        xm_log_warn("peer %s: %s", c->name[0] ? c->name : "?",
                    xm_dec_error(&c->dec));
        return rc;
    }
    return XM_OK;
}

static int
conn_read(struct peer_conn *c)
{
    uint8_t buf[READ_CHUNK];
    size_t got;
    short ev;
    int rc;

    rc = conn_frames(c);        /* what a pause left in the decoder */
    if (rc)
        return rc;
    while (!conn_paused(c)) {
        rc = xm_tls_read(c->tls, buf, sizeof(buf), &got, &ev);
        if (rc == XM_ERR_BUSY) {
            c->tls_wants |= ev;
            return XM_OK;
        }
        if (rc)
            return rc;
        if (got == 0)
            return XM_ERR_IO;       /* closed by the peer */
        rc = xm_dec_feed(&c->dec, buf, got);
        if (rc)
            return rc;
        rc = conn_frames(c);
        if (rc)
            return rc;
    }
    return XM_OK;
}

static int
conn_write(struct peer_conn *c)
{
    bool wrote = false;
    size_t put;
    short ev;
    int rc = XM_OK;

    while (out_pending(c) > 0) {
        rc = xm_tls_write(c->tls, c->out.data + c->out_head, out_pending(c),
                          &put, &ev);
        if (rc == XM_ERR_BUSY) {
            c->tls_wants |= ev;
            rc = XM_OK;
            break;
        }
        if (rc)
            return rc;
        c->out_head += put;     /* TLS may take the rest from elsewhere
                                 * (SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER) */
        wrote = true;
    }
    out_compact(c, 0);
    /* the records TLS buffered go to the kernel, several per send() */
    if (xm_tls_unsent(c->tls) > 0) {
        rc = xm_tls_flush(c->tls, &ev);
        if (rc == XM_ERR_BUSY) {
            c->tls_wants |= ev;
            rc = XM_OK;
        } else if (rc) {
            return rc;
        } else {
            wrote = true;
        }
    }
    /* The stream sender may fill the queue again (it only appends). */
    if (wrote && c->mchan && c->hello_seen)
        c->mchan->cb.drain(c->mchan->arg);
    return rc;
}

static void
conn_pump(struct peer_conn *c)
{
    short ev = 0;
    int rc;

    c->tls_wants = 0;
    if (c->phase == C_HANDSHAKE) {
        rc = xm_tls_handshake(c->tls, &ev);
        if (rc == XM_ERR_BUSY) {
            c->tls_wants = ev;
            conn_update_events(c);
            return;
        }
        if (rc) {
            char why[300];
            snprintf(why, sizeof(why), "TLS handshake failed: %s",
                     xm_tls_conn_error(c->tls));
            conn_fail(c, XM_ERR_TLS, why);
            return;
        }
        c->phase = C_OPEN;
        rc = conn_opened(c);
        if (rc) {
            conn_fail(c, rc, "refused");
            return;
        }
    }
    rc = conn_write(c);
    if (!rc)
        rc = conn_read(c);
    if (!rc)
        rc = conn_write(c);         /* answers produced by the read */
    if (rc == XM_ERR_CANCELLED) {
        conn_close(c);
        return;
    }
    if (rc == XM_ERR_IO && !c->client && !c->mchan && c->hello_seen &&
        conn_unsent(c) == 0) {
        /* a peer that asked and was answered hangs up: no news */
        xm_log_debug("peer %s: connection closed", c->name);
        conn_close(c);
        return;
    }
    if (rc) {
        conn_fail(c, rc, rc == XM_ERR_IO ? "connection closed"
                                         : xm_strerror(rc));
        return;
    }
    conn_update_events(c);
}

/* ---- listening ---- */

static void
on_accept(void *arg, int fd, short revents)
{
    struct peer_link *link = arg;
    struct peer_conn *c;
    int cfd;

    (void)revents;
    cfd = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (cfd < 0)
        return;
    c = conn_new(link, cfd, false, NULL, PEER_IDLE_TIMEOUT_MS);
    if (!c) {
        close(cfd);
        return;
    }
    if (xm_tls_conn_new_server(link->tls, cfd, NULL, &c->tls) != XM_OK) {
        conn_close(c);
        return;
    }
    c->phase = C_HANDSHAKE;
    conn_pump(c);
}

static int
resolve(const char *address, int port, struct addrinfo **ai_r)
{
    struct addrinfo hints = { 0 };
    char portstr[8];

    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV | AI_PASSIVE;
    snprintf(portstr, sizeof(portstr), "%d", port);
    return getaddrinfo(address, portstr, &hints, ai_r) ? XM_ERR_INVAL
                                                       : XM_OK;
}

static int
start_listening(struct peer_link *link)
{
    const struct xm_config *cfg = link->cfg;
    struct addrinfo *ai = NULL;
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    int fd = -1, one = 1, rc;

    rc = resolve(cfg->listen_address, cfg->listen_port, &ai);
    if (rc) {
        xm_log_err("listen_address '%s' is not a numeric address",
                   cfg->listen_address);
        return rc;
    }
    fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK |
                SOCK_CLOEXEC, 0);
    if (fd < 0) {
        rc = XM_ERR_IO;
        goto out;
    }
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, 16) < 0) {
        xm_log_err("cannot listen on %s port %u: %s", cfg->listen_address,
                   cfg->listen_port, strerror(errno));
        rc = XM_ERR_IO;
        goto out;
    }
    if (getsockname(fd, (struct sockaddr *)&ss, &sl) == 0)
        link->port = ntohs(ss.ss_family == AF_INET6
                           ? ((struct sockaddr_in6 *)&ss)->sin6_port
                           : ((struct sockaddr_in *)&ss)->sin_port);
    rc = xm_loop_add_fd(link->loop, fd, POLLIN, on_accept, link,
                        &link->listen_lfd);
    if (rc)
        goto out;
    link->listen_fd = fd;
    fd = -1;                    /* the link owns it */
    xm_log_info("listening for peers on %s port %d", cfg->listen_address,
                link->port);
out:
    if (fd >= 0)
        close(fd);
    freeaddrinfo(ai);
    return rc;
}

/* ---- status queries ---- */

static void
query_finish(struct status_query *q)
{
    struct peer_link *link = q->link;
    struct agent_peer_status *st = calloc(q->n ? q->n : 1, sizeof(*st));

    for (struct status_query **pp = &link->queries; *pp;
         pp = &(*pp)->next) {
        if (*pp == q) {
            *pp = q->next;
            break;
        }
    }
    xm_loop_cancel_timer(link->loop, q->timer);
    for (unsigned i = 0; st && i < q->n; i++) {
        st[i].name = q->slots[i].name;
        st[i].rc = q->slots[i].rc;
        st[i].error = q->slots[i].error[0] ? q->slots[i].error : NULL;
        st[i].status = q->slots[i].doc;
    }
    if (st)
        q->done(q->arg, st, q->n);
    else
        q->done(q->arg, NULL, 0);
    for (unsigned i = 0; i < q->n; i++)
        xm_json_free(q->slots[i].doc);
    free(st);
    free(q->slots);
    free(q->req);
    free(q);
}

static void
query_slot_done(struct status_query *q, unsigned slot, int rc,
                const char *error, xm_json *doc)
{
    struct query_slot *s = &q->slots[slot];

    if (s->rc != XM_ERR_BUSY) {
        xm_json_free(doc);
        return;
    }
    s->rc = rc;
    s->doc = doc;
    if (error)
        snprintf(s->error, sizeof(s->error), "%s", error);
    if (rc)
        xm_log_warn("peer %s: %s", s->name, error ? error
                                                  : xm_strerror(rc));
    if (--q->pending == 0)
        query_finish(q);
}

static void
on_query_timeout(void *arg)
{
    struct status_query *q = arg;

    q->timer = NULL;            /* fired: gone */
    for (struct peer_conn *c = q->link->conns, *next; c; c = next) {
        next = c->next;
        if (c->query == q) {
            c->query = NULL;
            conn_close(c);
        }
    }
    for (unsigned i = 0; i < q->n; i++) {
        struct query_slot *s = &q->slots[i];
        if (s->rc != XM_ERR_BUSY)
            continue;
        s->rc = XM_ERR_TIMEOUT;
        snprintf(s->error, sizeof(s->error),
                 "did not answer within %d s", PEER_QUERY_TIMEOUT_MS / 1000);
        xm_log_warn("peer %s: %s", s->name, s->error);
    }
    q->pending = 0;
    query_finish(q);
}

/* Start an outgoing connection to the peer called name: connecting,
 * TLS set up, the hellos to follow.  XM_OK and *c_r, or an error with
 * its text in why. */
static int
conn_dial(struct peer_link *link, const char *name, struct peer_conn **c_r,
          char *why, size_t whylen)
{
    const struct xm_peer_cfg *peer = xm_config_peer(link->cfg, name);
    struct addrinfo *ai = NULL;
    struct peer_conn *c;
    int fd, r, rc;

    if (!peer) {
        snprintf(why, whylen, "not a peer of this host");
        return XM_ERR_NOTFOUND;
    }
    if (!link->tls) {
        snprintf(why, whylen, "%s", link->tls_error);
        return XM_ERR_CONFIG;
    }
    if (resolve(peer->address, peer->port, &ai) != XM_OK) {
        snprintf(why, whylen, "its address is not numeric");
        return XM_ERR_CONFIG;
    }
    fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK |
                SOCK_CLOEXEC, 0);
    r = fd < 0 ? -1 : connect(fd, ai->ai_addr, ai->ai_addrlen);
    freeaddrinfo(ai);
    if (r < 0 && errno != EINPROGRESS) {
        rc = xm_err_from_errno(errno);
        snprintf(why, whylen, "cannot connect to %s port %u: %s",
                 peer->address, peer->port, strerror(errno));
        if (fd >= 0)
            close(fd);
        return rc;
    }
    r = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &r, sizeof(r));
    c = conn_new(link, fd, true, peer->name, PEER_QUERY_TIMEOUT_MS);
    if (!c) {
        close(fd);
        snprintf(why, whylen, "%s", xm_strerror(XM_ERR_NOMEM));
        return XM_ERR_NOMEM;
    }
    if (xm_tls_conn_new_client(link->tls, c->fd, peer->name, &c->tls)) {
        conn_close(c);
        snprintf(why, whylen, "cannot set up TLS");
        return XM_ERR_TLS;
    }
    c->phase = C_CONNECTING;
    conn_update_events(c);
    *c_r = c;
    return XM_OK;
}

/* Open the connection that asks one peer. */
static void
query_start_one(struct status_query *q, unsigned slot)
{
    struct peer_conn *c = NULL;
    char why[300];
    int rc;

    rc = conn_dial(q->link, q->slots[slot].name, &c, why, sizeof(why));
    if (rc) {
        query_slot_done(q, slot, rc, why, NULL);
        return;
    }
    c->query = q;
    c->slot = slot;
}

static int
query_new(struct peer_link *link, const char *const *names, unsigned n,
          uint16_t req_type, const char *req, size_t req_len,
          uint16_t resp_type, agent_peer_status_fn *done, void *arg)
{
    struct status_query *q;
    int rc;

    if (n == 0 || n > XM_PEERS_MAX || req_len > XM_PROTO_JSON_MAX)
        return XM_ERR_INVAL;
    q = calloc(1, sizeof(*q));
    if (!q)
        return XM_ERR_NOMEM;
    q->slots = calloc(n, sizeof(*q->slots));
    if (req_len) {
        q->req = malloc(req_len);
        if (q->req)
            memcpy(q->req, req, req_len);
    }
    if (!q->slots || (req_len && !q->req)) {
        free(q->slots);
        free(q->req);
        free(q);
        return XM_ERR_NOMEM;
    }
    q->req_len = req_len;
    q->req_type = req_type;
    q->resp_type = resp_type;
    q->link = link;
    q->done = done;
    q->arg = arg;
    q->n = n;
    q->pending = n;
    for (unsigned i = 0; i < n; i++) {
        snprintf(q->slots[i].name, sizeof(q->slots[i].name), "%s",
                 names[i]);
        q->slots[i].rc = XM_ERR_BUSY;
    }
    rc = xm_loop_add_timer(link->loop, PEER_QUERY_TIMEOUT_MS,
                           on_query_timeout, q, &q->timer);
    if (rc) {
        free(q->slots);
        free(q->req);
        free(q);
        return rc;
    }
    q->next = link->queries;
    link->queries = q;
    /* Slots may complete at once (no TLS, unknown peer); the query is
     * answered and freed only when its last slot completes, which is
     * at the earliest the last call here: n is a local for that. */
    for (unsigned i = 0; i < n; i++)
        query_start_one(q, i);
    return XM_OK;
}

static int
query_status(void *ctx, const char *const *names, unsigned n,
             agent_peer_status_fn *done, void *arg)
{
    return query_new(ctx, names, n, XM_MSG_STATUS_REQ, NULL, 0,
                     XM_MSG_STATUS_RESP, done, arg);
}

static int
ask(void *ctx, const char *peer, uint16_t type, const char *json,
    size_t len, uint16_t resp_type, agent_peer_status_fn *done, void *arg)
{
    const char *names[1] = { peer };

    if (!xm_msg_max_len(type) || !xm_msg_max_len(resp_type) || !len)
        return XM_ERR_INVAL;
    return query_new(ctx, names, 1, type, json, len, resp_type, done, arg);
}

/* ---- migration channels ---- */

static void
mchan_on_resume(void *arg)
{
    struct peer_mchan *mc = arg;

    mc->resume = NULL;          /* fired: gone */
    if (mc->conn && mc->conn->phase == C_OPEN)
        conn_pump(mc->conn);
}

static int
mchan_send(void *ctx, uint16_t type, uint16_t flags, const void *payload,
           size_t len)
{
    struct peer_mchan *mc = ctx;
    struct peer_conn *c = mc->conn;
    int rc;

    if (!c || !c->hello_seen)
        return XM_ERR_IO;       /* down: dropped */
    out_compact(c, XM_PROTO_HEADER_LEN + len);
    /* The codec refuses a flag this connection did not negotiate. */
    rc = xm_enc_frame(&c->out, c->dec.features, type, flags, 0, payload,
                      len);
    if (rc)
        return rc;
    conn_update_events(c);
    return XM_OK;
}

static uint32_t
mchan_features(void *ctx)
{
    struct peer_mchan *mc = ctx;

    return mc->conn && mc->conn->hello_seen ? mc->conn->dec.features : 0;
}

static size_t
mchan_pending(void *ctx)
{
    struct peer_mchan *mc = ctx;

    return mc->conn ? conn_unsent(mc->conn) : 0;
}

static void
mchan_quiet(void *ctx)
{
    struct peer_mchan *mc = ctx;

    mc->quiet = true;
}

/* The kernel's send queue: written, not yet acknowledged by the peer
 * (TLS records, a little more than the frames in them). */
static size_t
mchan_unacked(void *ctx)
{
    struct peer_mchan *mc = ctx;
    int n = 0;

    if (!mc->conn || mc->conn->fd < 0 ||
        ioctl(mc->conn->fd, SIOCOUTQ, &n) < 0 || n < 0)
        return 0;
    return (size_t)n;
}

static void
mchan_rx_pause(void *ctx, bool pause)
{
    struct peer_mchan *mc = ctx;

    if (mc->rx_paused == pause)
        return;
    mc->rx_paused = pause;
    if (!mc->conn)
        return;
    conn_update_events(mc->conn);
    /* Frames may wait in the decoder or in TLS's own buffer, where
     * poll() does not see them: pump from the loop, not from here (we
     * may be inside this connection's read). */
    if (!pause && !mc->resume)
        xm_loop_add_timer(mc->link->loop, 0, mchan_on_resume, mc,
                          &mc->resume);
}

/* Open an outgoing connection for mc.  XM_ERR_BUSY: under way. */
static int
mchan_connect(void *ctx)
{
    struct peer_mchan *mc = ctx;
    struct peer_conn *c = NULL;
    char why[300];
    int rc;

    if (mc->conn)
        return mc->conn->hello_seen ? XM_OK : XM_ERR_BUSY;
    rc = conn_dial(mc->link, mc->peer, &c, why, sizeof(why));
    if (rc) {
        xm_log_warn("peer %s: %s", mc->peer, why);
        return rc;
    }
    c->mchan = mc;
    mc->conn = c;
    return XM_ERR_BUSY;
}

static const struct migexec_chan_ops mchan_ops = {
    .send = mchan_send,
    .features = mchan_features,
    .pending = mchan_pending,
    .rx_pause = mchan_rx_pause,
    .connect = mchan_connect,
    .unacked = mchan_unacked,
    .quiet = mchan_quiet,
};

/* c becomes mc's connection: no idle limit any more. */
static void
mchan_take(struct peer_mchan *mc, struct peer_conn *c)
{
    if (mc->conn && mc->conn != c)
        conn_close_quiet(mc->conn);
    if (c->mchan && c->mchan != mc)
        c->mchan->conn = NULL;
    c->mchan = mc;
    mc->conn = c;
    xm_loop_cancel_timer(c->link->loop, c->idle);
    c->idle = NULL;
    conn_update_events(c);
}

static int
chan_open(void *ctx, const char *peer, struct agent_conn *conn,
          const struct agent_chan_cb *cb, void *arg,
          struct migexec_chan *chan_r)
{
    struct peer_link *link = ctx;
    struct peer_mchan *mc;

    if (!xm_config_peer(link->cfg, peer))
        return XM_ERR_NOTFOUND;
    mc = calloc(1, sizeof(*mc));
    if (!mc)
        return XM_ERR_NOMEM;
    mc->link = link;
    snprintf(mc->peer, sizeof(mc->peer), "%s", peer);
    mc->cb = *cb;
    mc->arg = arg;
    if (conn)
        mchan_take(mc, (struct peer_conn *)conn);
    mc->next = link->mchans;
    link->mchans = mc;
    chan_r->ops = &mchan_ops;
    chan_r->ctx = mc;
    return XM_OK;
}

static void
chan_attach(void *ctx, void *chan, struct agent_conn *conn)
{
    (void)ctx;
    mchan_take(chan, (struct peer_conn *)conn);
}

static void
chan_close(void *ctx, void *chan)
{
    struct peer_link *link = ctx;
    struct peer_mchan *mc = chan;

    if (!mc)
        return;
    for (struct peer_mchan **pp = &link->mchans; *pp; pp = &(*pp)->next) {
        if (*pp == mc) {
            *pp = mc->next;
            break;
        }
    }
    if (mc->conn)
        conn_close_quiet(mc->conn);
    xm_loop_cancel_timer(link->loop, mc->resume);
    free(mc);
}

static int
conn_reply(void *ctx, struct agent_conn *conn, uint16_t type,
           const char *json, size_t len)
{
    struct peer_conn *c = (struct peer_conn *)conn;

    (void)ctx;
    return xm_enc_frame(&c->out, c->dec.features, type, 0, 0, json, len);
}

static const struct agent_peer_ops peer_ops = {
    .query_status = query_status,
    .ask = ask,
    .chan_open = chan_open,
    .chan_attach = chan_attach,
    .chan_close = chan_close,
    .conn_reply = conn_reply,
};

/* ---- the link ---- */

int
peer_link_new(const struct xm_config *cfg, struct xm_loop *loop,
              struct peer_link **link_r)
{
    struct peer_link *link = calloc(1, sizeof(*link));

    if (!link)
        return XM_ERR_NOMEM;
    link->cfg = cfg;
    link->loop = loop;
    link->listen_fd = -1;
    link->features = XM_PROTO_FEATURES;
    snprintf(link->tls_error, sizeof(link->tls_error),
             "TLS is not configured (tls_ca, tls_cert, tls_key): peers "
             "are not contacted");
    *link_r = link;
    return XM_OK;
}

void
peer_link_set_agent(struct peer_link *link, struct agent *agent)
{
    link->agent = agent;
}

void
peer_link_set_features(struct peer_link *link, uint32_t features)
{
    link->features = features & XM_PROTO_FEATURES;
}

int
peer_link_start(struct peer_link *link)
{
    const struct xm_config *cfg = link->cfg;
    char err[256];
    int rc;

    if (!cfg->tls_ca) {
        xm_log_warn("%s", link->tls_error);
        return XM_OK;
    }
    rc = xm_tls_ctx_new(cfg->tls_ca, cfg->tls_cert, cfg->tls_key,
                        XM_TLS_CIPHERS_AUTO, &link->tls, err, sizeof(err));
    if (rc) {
        xm_log_err("TLS: %s", err);
        return rc;
    }
    return start_listening(link);
}

struct agent_peers
peer_link_ops(struct peer_link *link)
{
    struct agent_peers p = { &peer_ops, link };
    return p;
}

int
peer_link_port(const struct peer_link *link)
{
    return link->port;
}

void
peer_link_shutdown(struct peer_link *link)
{
    if (!link)
        return;
    while (link->conns) {
        struct peer_conn *c = link->conns;
        if (c->query) {
            query_slot_done(c->query, c->slot, XM_ERR_CANCELLED,
                            "the agent is stopping", NULL);
            c->query = NULL;
        }
        conn_close_quiet(c);
    }
    while (link->queries) {
        struct status_query *q = link->queries;
        for (unsigned i = 0; i < q->n; i++)
            if (q->slots[i].rc == XM_ERR_BUSY)
                q->slots[i].rc = XM_ERR_CANCELLED;
        q->pending = 0;
        query_finish(q);
    }
}

void
peer_link_free(struct peer_link *link)
{
    if (!link)
        return;
    while (link->mchans)
        chan_close(link, link->mchans);
    peer_link_shutdown(link);
    xm_loop_del_fd(link->loop, link->listen_lfd);
    if (link->listen_fd >= 0)
        close(link->listen_fd);
    xm_tls_ctx_free(link->tls);
    free(link);
}
