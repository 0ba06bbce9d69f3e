/*
 * migexec.c -- the migration executor (see migexec.h).
 *
 * Events (peer frames, hypervisor completions, timer, link changes) go
 * into one small queue and are fed to the machine one at a time; the
 * result of each synchronous action of a step is put at the head of
 * that queue, so it reaches the machine before anything else.  The
 * stream's socketpair: the hypervisor gets one end (closed by us once
 * its operation reports), the pump owns the other.  STREAM_END goes out
 * only when the machine asks for it and the pump has read libxl's end
 * to end of file.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "migexec.h"
#include "xm_err.h"
#include "xm_json.h"
#include "xm_stream.h"

#define QMAX 16
#define STREAM_CHUNK (64u * 1024)

struct qev {
    struct xm_mig_event ev;
    char text[XM_MIG_WHY_MAX];
};

struct migexec {
    struct migexec_params p;
    struct xm_mig m;

    struct qev q[QMAX];         /* ring of pending events */
    unsigned qh, qn;
    bool running;               /* inside feed() */
    bool finished;              /* final report made */

    struct xm_loop_timer *timer;

    struct xm_journal_rec jrec; /* last record written */
    bool have_jrec;

    /* source: the live send */
    bool send_busy;
    struct xm_hv_async send_how;
    int send_fd;                /* the hypervisor's end */
    struct xm_stream_out so;
    bool so_on, so_finish;
    struct xm_loop_fd *so_h;
    struct xm_buf scratch;

    /* target: the restore */
    bool recv_busy;
    struct xm_hv_async recv_how;
    int recv_fd;                /* the hypervisor's end */
    uint32_t recv_domid;
    struct xm_stream_in si;
    bool si_on, rx_paused;
    struct xm_loop_fd *si_h;
    char *config_json;          /* target: from the OFFER */
    uint64_t offer_mem_kib;
    unsigned offer_vcpus;

    uint64_t bytes;

    /* recovery: what xm_mig_adopt asked for, run by migexec_kick */
    struct xm_mig_action adopt_acts[XM_MIG_ACTIONS_MAX];
    unsigned n_adopt;
};

/* ---- the event queue ---- */

static void
q_put(struct migexec *x, const struct xm_mig_event *ev, bool front)
{
    struct qev *slot;
    unsigned i;

    if (x->qn == QMAX)
        return;     /* cannot happen: at most a step's results + one */
    if (front) {
        x->qh = (x->qh + QMAX - 1) % QMAX;
        i = x->qh;
    } else {
        i = (x->qh + x->qn) % QMAX;
    }
    x->qn++;
    slot = &x->q[i];
    slot->ev = *ev;
    slot->text[0] = '\0';
    if (ev->text)
        snprintf(slot->text, sizeof(slot->text), "%s", ev->text);
    slot->ev.text = ev->text ? slot->text : NULL;
}

static bool
q_get(struct migexec *x, struct qev *out)
{
    if (!x->qn)
        return false;
    *out = x->q[x->qh];
    out->ev.text = out->ev.text ? out->text : NULL;
    x->qh = (x->qh + 1) % QMAX;
    x->qn--;
    return true;
}

static void feed(struct migexec *x, const struct xm_mig_event *ev);

static struct xm_mig_event
mkev(enum xm_mig_event_type type, int rc)
{
    struct xm_mig_event ev = { .type = type, .rc = rc };
    return ev;
}

/* ---- channel ---- */

static void
chan_send(struct migexec *x, uint16_t type, const void *p, size_t len)
{
    /* A refused frame is a dropped one: the link reports the loss. */
    (void)x->p.chan.ops->send(x->p.chan.ctx, type, p, len);
}

/* Hand the frames encoded in x->scratch to the channel, one by one. */
static void
chan_forward(struct migexec *x)
{
    const uint8_t *b = x->scratch.data;
    size_t pos = 0;

    while (x->scratch.len - pos >= XM_PROTO_HEADER_LEN) {
        uint16_t type = (uint16_t)(b[pos] << 8 | b[pos + 1]);
        uint32_t len = (uint32_t)b[pos + 4] << 24
            | (uint32_t)b[pos + 5] << 16 | (uint32_t)b[pos + 6] << 8
            | b[pos + 7];

        if (x->scratch.len - pos - XM_PROTO_HEADER_LEN < len)
            break;      /* cannot happen: the encoder writes whole */
        chan_send(x, type, b + pos + XM_PROTO_HEADER_LEN, len);
        pos += XM_PROTO_HEADER_LEN + len;
    }
    xm_buf_reset(&x->scratch);
}

/* The OFFER: who, how big, and the guest's config. */
static int
send_offer(struct migexec *x)
{
    struct xm_jgen *g = NULL;
    struct xm_domain *doms = NULL;
    const struct xm_domain *d = NULL;
    char *config = NULL;
    const char *text;
    char hex[33];
    size_t n = 0, len;
    int rc;

    rc = x->p.hv->ops->list_domains(x->p.hv->ctx, &doms, &n);
    if (rc)
        goto out;
    for (size_t i = 0; i < n; i++)
        if (doms[i].domid == x->m.ident.src_domid)
            d = &doms[i];
    if (!d) {
        rc = XM_ERR_NOTFOUND;
        goto out;
    }
    rc = x->p.hv->ops->domain_config(x->p.hv->ctx, d->domid, &config);
    if (rc)
        goto out;
    g = xm_jgen_new(false);
    if (!g) {
        rc = XM_ERR_NOMEM;
        goto out;
    }
    xm_mig_uuid_hex(x->m.ident.uuid, hex);
    xm_jgen_map_open(g);
    xm_jgen_kv_str(g, "id", x->m.ident.id);
    xm_jgen_kv_str(g, "name", x->m.ident.name);
    xm_jgen_kv_str(g, "uuid", hex);
    xm_jgen_kv_str(g, "source", x->m.ident.source);
    xm_jgen_kv_str(g, "target", x->m.ident.target);
    xm_jgen_kv_uint(g, "mem_kib", d->mem_kib);
    xm_jgen_kv_uint(g, "vcpus", d->vcpus);
    xm_jgen_key(g, "config");
    xm_jgen_raw(g, config, strlen(config));
    xm_jgen_map_close(g);
    rc = xm_jgen_finish(g, &text, &len);
    if (rc)
        goto out;
    chan_send(x, XM_MSG_MIGRATE_OFFER, text, len);
out:
    xm_jgen_free(g);
    free(config);
    free(doms);
    return rc;
}

/* A control message with {"id"} and maybe one more string field. */
static void
send_json(struct migexec *x, uint16_t type, const char *key,
          const char *val)
{
    struct xm_jgen *g = xm_jgen_new(false);
    const char *text;
    char hex[33];
    size_t len;

    if (!g)
        return;     /* as a dropped frame: the peer times out */
    xm_jgen_map_open(g);
    xm_jgen_kv_str(g, "id", x->m.ident.id);
    if (type == XM_MSG_MIGRATE_STATUS_REQ) {
        xm_mig_uuid_hex(x->m.ident.uuid, hex);
        xm_jgen_kv_str(g, "name", x->m.ident.name);
        xm_jgen_kv_str(g, "uuid", hex);
    }
    if (key)
        xm_jgen_kv_str(g, key, val);
    xm_jgen_map_close(g);
    if (xm_jgen_finish(g, &text, &len) == XM_OK)
        chan_send(x, type, text, len);
    xm_jgen_free(g);
}

/* ---- the stream pumps ---- */

static void so_pump(struct migexec *x);
static void si_update(struct migexec *x);

static void
so_close(struct migexec *x)
{
    if (x->so_h)
        xm_loop_del_fd(x->p.loop, x->so_h);
    x->so_h = NULL;
    if (x->so_on)
        xm_stream_out_dispose(&x->so);
    x->so_on = false;
    x->so_finish = false;
}

static void
si_close(struct migexec *x)
{
    if (x->si_h)
        xm_loop_del_fd(x->p.loop, x->si_h);
    x->si_h = NULL;
    if (x->si_on)
        xm_stream_in_dispose(&x->si);
    x->si_on = false;
    if (x->rx_paused)
        x->p.chan.ops->rx_pause(x->p.chan.ctx, false);
    x->rx_paused = false;
}

static void
so_ready(void *arg, int fd, short revents)
{
    (void)fd;
    (void)revents;
    so_pump(arg);
}

/* Move what libxl wrote into frames while the channel has room. */
static void
so_pump(struct migexec *x)
{
    size_t pending;
    int rc;

    while (x->so_on) {
        /* End of file only after the send reported: wait for the
         * machine to ask for STREAM_END before reading it. */
        if (x->send_fd < 0 && !x->send_busy && !x->so_finish)
            break;
        pending = x->p.chan.ops->pending(x->p.chan.ctx);
        if (pending >= MIGEXEC_MAX_PENDING)
            break;
        rc = xm_stream_out_fill(&x->so, &x->scratch, 0, 0, 1);
        if (rc) {
            /* Our end broke: the send fails and reports it. */
            so_close(x);
            return;
        }
        if (!x->scratch.len)
            break;
        x->bytes = x->so.bytes_in;
        chan_forward(x);
        if (xm_stream_out_done(&x->so)) {
            so_close(x);
            return;
        }
    }
    if (x->so_h) {
        short ev = POLLIN;
        if (x->p.chan.ops->pending(x->p.chan.ctx) >= MIGEXEC_MAX_PENDING
            || (!x->send_busy && !x->so_finish))
            ev = 0;
        xm_loop_fd_events(x->so_h, ev);
    }
}

static void
si_ready(void *arg, int fd, short revents)
{
    struct migexec *x = arg;

    (void)fd;
    (void)revents;
    if (xm_stream_in_flush(&x->si)) {
        si_close(x);    /* libxl gave up: its restore reports it */
        return;
    }
    si_update(x);
}

static void
si_update(struct migexec *x)
{
    bool full;

    if (!x->si_on)
        return;
    full = xm_stream_in_full(&x->si);
    if (full != x->rx_paused) {
        x->rx_paused = full;
        x->p.chan.ops->rx_pause(x->p.chan.ctx, full);
    }
    if (x->si_h)
        xm_loop_fd_events(x->si_h, xm_stream_in_events(&x->si));
}

/* ---- hypervisor ---- */

static void
send_done(void *arg, int rc)
{
    struct migexec *x = arg;
    struct xm_mig_event ev;

    x->send_busy = false;
    if (x->send_fd >= 0)
        close(x->send_fd);
    x->send_fd = -1;
    if (!rc) {
        ev = mkev(XM_MIG_EV_SEND_DONE, 0);
    } else {
        /* Was ours left suspended?  Ask the hypervisor. */
        struct xm_domain *doms = NULL;
        size_t n = 0;
        bool susp = false;

        if (x->p.hv->ops->list_domains(x->p.hv->ctx, &doms, &n) == XM_OK)
            for (size_t i = 0; i < n; i++)
                if (doms[i].domid == x->m.ident.src_domid
                    && (doms[i].flags & (XM_DOM_PAUSED
                                         | XM_DOM_SUSPENDED)))
                    susp = true;
        free(doms);
        ev = mkev(susp ? XM_MIG_EV_SEND_FAILED_SUSPENDED
                       : XM_MIG_EV_SEND_FAILED, rc);
        ev.text = xm_strerror(rc);
    }
    feed(x, &ev);
}

static void
recv_done(void *arg, int rc)
{
    struct migexec *x = arg;
    struct xm_mig_event ev = mkev(rc ? XM_MIG_EV_RECV_FAILED
                                     : XM_MIG_EV_RECV_DONE, rc);

    x->recv_busy = false;
    if (x->recv_fd >= 0)
        close(x->recv_fd);
    x->recv_fd = -1;
    si_close(x);
    ev.domid = rc ? 0 : x->recv_domid;
    if (rc)
        ev.text = xm_strerror(rc);
    feed(x, &ev);
}

/* Start the live send.  XM_OK, or the rc to fail it with. */
static int
start_send(struct migexec *x)
{
    int sv[2] = { -1, -1 };
    int rc;

    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
        return xm_err_from_errno(errno);
    rc = xm_stream_out_init(&x->so, sv[0], STREAM_CHUNK);
    if (rc)
        goto out;
    sv[0] = -1;     /* the pump owns it */
    x->so_on = true;
    rc = xm_loop_add_fd(x->p.loop, x->so.fd, POLLIN, so_ready, x,
                        &x->so_h);
    if (rc)
        goto out;
    x->send_how.done = send_done;
    x->send_how.arg = x;
    rc = x->p.hv->ops->migrate_send(x->p.hv->ctx, x->m.ident.src_domid,
                                    sv[1], &x->send_how);
    if (rc)
        goto out;
    x->send_fd = sv[1];
    sv[1] = -1;     /* kept until the send reports */
    x->send_busy = true;
out:
    if (rc)
        so_close(x);
    if (sv[0] >= 0)
        close(sv[0]);
    if (sv[1] >= 0)
        close(sv[1]);
    return rc;
}

static int
start_recv(struct migexec *x, const char *name)
{
    int sv[2] = { -1, -1 };
    int rc;

    if (!x->config_json)
        return XM_ERR_STATE;
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
        return xm_err_from_errno(errno);
    rc = xm_stream_in_init(&x->si, sv[0], MIGEXEC_MAX_QUEUED);
    if (rc)
        goto out;
    sv[0] = -1;
    x->si_on = true;
    rc = xm_loop_add_fd(x->p.loop, x->si.fd, 0, si_ready, x, &x->si_h);
    if (rc)
        goto out;
    x->recv_how.done = recv_done;
    x->recv_how.arg = x;
    x->recv_domid = 0;
    rc = x->p.hv->ops->migrate_recv(x->p.hv->ctx, x->config_json, name,
                                    sv[1], &x->recv_domid, &x->recv_how);
    if (rc)
        goto out;
    x->recv_fd = sv[1];
    sv[1] = -1;
    x->recv_busy = true;
out:
    if (rc)
        si_close(x);
    if (sv[0] >= 0)
        close(sv[0]);
    if (sv[1] >= 0)
        close(sv[1]);
    return rc;
}

/* The target's capacity and name check of the offer. */
static struct xm_mig_event
check_offer(struct migexec *x)
{
    struct xm_domain *doms = NULL;
    struct xm_mig_dom *view = NULL;
    struct xm_hostinfo hi;
    struct xm_mig_hostview host;
    struct xm_mig_offer offer;
    struct xm_mig_event ev = mkev(XM_MIG_EV_CHECK_FAILED, 0);
    const char *why = NULL;
    size_t n = 0;
    int rc;

    rc = x->p.hv->ops->list_domains(x->p.hv->ctx, &doms, &n);
    if (!rc)
        rc = x->p.hv->ops->hostinfo(x->p.hv->ctx, &hi);
    if (!rc && n) {
        view = calloc(n, sizeof(*view));
        if (!view)
            rc = XM_ERR_NOMEM;
    }
    if (rc) {
        ev.rc = rc;
        ev.text = "cannot read the host's state";
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        view[i].name = doms[i].name;
        memcpy(view[i].uuid, doms[i].uuid, 16);
        view[i].domid = doms[i].domid;
        view[i].state = (doms[i].flags & XM_DOM_SUSPENDED)
            ? XM_MIG_DOM_SUSPENDED : (doms[i].flags & XM_DOM_PAUSED)
            ? XM_MIG_DOM_PAUSED : XM_MIG_DOM_RUNNING;
    }
    host.doms = view;
    host.n = n;
    host.free_kib = hi.free_kib;
    host.cordoned = x->p.cordoned;
    offer.name = x->m.ident.name;
    offer.mem_kib = x->offer_mem_kib;
    offer.vcpus = x->offer_vcpus;
    rc = xm_mig_offer_check(&offer, &host, &why);
    if (!rc)
        ev = mkev(XM_MIG_EV_CHECK_OK, 0);
    ev.rc = rc;
    ev.text = why;  /* static text of xm_mig_offer_check */
out:
    free(view);
    free(doms);
    return ev;
}

/* A synchronous hypervisor op's result event. */
static struct xm_mig_event
hv_sync(struct migexec *x, const struct xm_mig_action *a)
{
    const struct xm_hv_ops *ops = x->p.hv->ops;
    void *ctx = x->p.hv->ctx;
    int rc;

    switch (a->op) {
    case XM_MIG_OP_RENAME:
        rc = ops->rename(ctx, a->domid, a->name);
        return mkev(rc ? XM_MIG_EV_RENAME_FAILED : XM_MIG_EV_RENAME_OK,
                    rc);
    case XM_MIG_OP_RESUME:
        rc = ops->resume(ctx, a->domid);
        return mkev(rc ? XM_MIG_EV_RESUME_FAILED : XM_MIG_EV_RESUME_OK,
                    rc);
    case XM_MIG_OP_UNPAUSE:
        rc = ops->unpause(ctx, a->domid);
        return mkev(rc ? XM_MIG_EV_UNPAUSE_FAILED : XM_MIG_EV_UNPAUSE_OK,
                    rc);
    case XM_MIG_OP_DESTROY:
        /* No domain (a restore that never created one) is gone. */
        if (a->domid == 0 || a->domid == UINT32_MAX)
            return mkev(XM_MIG_EV_DESTROY_OK, 0);
        rc = ops->destroy(ctx, a->domid);
        if (rc == XM_ERR_NOTFOUND)
            rc = XM_OK;
        return mkev(rc ? XM_MIG_EV_DESTROY_FAILED : XM_MIG_EV_DESTROY_OK,
                    rc);
    default:
        return mkev(XM_MIG_EV_COUNT, 0);
    }
}

/* ---- timer ---- */

static void
on_timer(void *arg)
{
    struct migexec *x = arg;
    struct xm_mig_event ev = mkev(XM_MIG_EV_TIMEOUT, XM_ERR_TIMEOUT);

    x->timer = NULL;    /* fired: gone */
    feed(x, &ev);
}

static void
timer_cancel(struct migexec *x)
{
    xm_loop_cancel_timer(x->p.loop, x->timer);
    x->timer = NULL;
}

/* ---- performing one step's actions ---- */

static void
report(struct migexec *x, bool final)
{
    struct migexec_result res;

    memset(&res, 0, sizeof(res));
    xm_mig_result(&x->m, &res.mig);
    res.bytes = x->bytes;
    res.state = x->m.state;
    x->p.done(x->p.arg, x, &res, final);
}

static void
do_send(struct migexec *x, const struct xm_mig_action *a)
{
    uint16_t type = 0;

    switch (a->msg) {
    case XM_MIG_MSG_OFFER:
        /* If no offer leaves (the guest vanished, no memory), the
         * ACCEPT timer ends the migration as a lost frame would. */
        (void)send_offer(x);
        return;
    case XM_MIG_MSG_REJECT:
    case XM_MIG_MSG_ABORT:
        type = a->msg == XM_MIG_MSG_REJECT ? XM_MSG_MIGRATE_REJECT
                                           : XM_MSG_MIGRATE_ABORT;
        if (xm_enc_error(&x->scratch, type, 0, a->code,
                         a->text ? a->text : "") == XM_OK)
            chan_forward(x);
        xm_buf_reset(&x->scratch);
        return;
    case XM_MIG_MSG_STREAM_END:
        /* The pump sends it once it has read libxl's end to EOF. */
        x->so_finish = true;
        so_pump(x);
        return;
    case XM_MIG_MSG_ACCEPT: type = XM_MSG_MIGRATE_ACCEPT; break;
    case XM_MIG_MSG_READY: type = XM_MSG_MIGRATE_READY; break;
    case XM_MIG_MSG_GO: type = XM_MSG_MIGRATE_GO; break;
    case XM_MIG_MSG_DONE: type = XM_MSG_MIGRATE_DONE; break;
    case XM_MIG_MSG_STATUS_REQ: type = XM_MSG_MIGRATE_STATUS_REQ; break;
    case XM_MIG_MSG_STATUS:
        send_json(x, XM_MSG_MIGRATE_STATUS, "status",
                  xm_mig_peer_status_name(a->status));
        return;
    }
    if (type)
        send_json(x, type, NULL, NULL);
}

/* Perform a; a synchronous result goes to *res_r (type COUNT: none). */
static void
perform(struct migexec *x, const struct xm_mig_action *a,
        struct xm_mig_event *res_r, bool *report_r)
{
    char err[256];
    int rc;

    res_r->type = XM_MIG_EV_COUNT;
    switch (a->type) {
    case XM_MIG_A_SEND:
        do_send(x, a);
        break;
    case XM_MIG_A_HV:
        switch (a->op) {
        case XM_MIG_OP_SEND:
            rc = start_send(x);
            if (rc) {
                *res_r = mkev(XM_MIG_EV_SEND_FAILED, rc);
                res_r->text = "cannot start the live send";
            }
            break;
        case XM_MIG_OP_RECV:
            rc = start_recv(x, a->name);
            if (rc) {
                *res_r = mkev(XM_MIG_EV_RECV_FAILED, rc);
                res_r->text = "cannot start the restore";
            }
            break;
        case XM_MIG_OP_CANCEL_SEND:
            /* No cancel in the interface: close our end of the stream;
             * the send fails on it and reports once. */
            so_close(x);
            break;
        case XM_MIG_OP_CANCEL_RECV:
            si_close(x);    /* the restore reads EOF and fails */
            break;
        default:
            *res_r = hv_sync(x, a);
            break;
        }
        break;
    case XM_MIG_A_JOURNAL: {
        struct xm_journal_rec rec;

        xm_mig_journal_rec(&x->m, a->phase, xm_clock_wall_s(x->p.clock),
                           x->have_jrec ? &x->jrec : NULL, &rec);
        rc = xm_journal_put(x->p.journal, &rec, err, sizeof(err));
        if (rc) {
            *res_r = mkev(XM_MIG_EV_JOURNAL_FAILED, rc);
            res_r->text = "cannot write the journal";
        } else {
            x->jrec = rec;
            x->have_jrec = true;
            *res_r = mkev(XM_MIG_EV_JOURNAL_OK, 0);
        }
        break;
    }
    case XM_MIG_A_CHECK_OFFER:
        *res_r = check_offer(x);
        break;
    case XM_MIG_A_ARM:
        timer_cancel(x);
        if (xm_loop_add_timer(x->p.loop, a->ms, on_timer, x, &x->timer))
            x->timer = NULL;    /* no memory: the peer's timers act */
        break;
    case XM_MIG_A_CANCEL_TIMER:
        timer_cancel(x);
        break;
    case XM_MIG_A_CONNECT:
        rc = x->p.chan.ops->connect(x->p.chan.ctx);
        if (rc == XM_OK)
            *res_r = mkev(XM_MIG_EV_LINK_UP, 0);
        else if (rc != XM_ERR_BUSY)
            *res_r = mkev(XM_MIG_EV_LINK_LOST, rc);
        break;
    case XM_MIG_A_REPORT:
        *report_r = true;
        break;
    case XM_MIG_A_ADOPT:
        break;      /* recovery only; not run here */
    }
}

static void
perform_all(struct migexec *x, const struct xm_mig_action *acts,
            unsigned n)
{
    struct xm_mig_event res[XM_MIG_ACTIONS_MAX];
    unsigned nres = 0;
    bool rep = false;

    for (unsigned i = 0; i < n; i++) {
        perform(x, &acts[i], &res[nres], &rep);
        if (res[nres].type != XM_MIG_EV_COUNT)
            nres++;
    }
    /* Results first, in the order their actions ran. */
    while (nres)
        q_put(x, &res[--nres], true);
    /* A send that reported and was not asked to end the stream leaves
     * nothing to pump. */
    if (x->so_on && !x->send_busy && !x->so_finish)
        so_close(x);
    if (rep && !xm_mig_terminal(&x->m))
        report(x, false);
}

static void
step_one(struct migexec *x, const struct xm_mig_event *ev)
{
    struct xm_mig_action acts[XM_MIG_ACTIONS_MAX];
    unsigned n = 0;

    (void)xm_mig_step(&x->m, ev, acts, XM_MIG_ACTIONS_MAX, &n);
    perform_all(x, acts, n);
}

static void run_queue(struct migexec *x);

/* Feed ev and everything it leads to.  May free x (final report). */
static void
feed(struct migexec *x, const struct xm_mig_event *ev)
{
    if (x->finished)
        return;
    q_put(x, ev, false);
    if (x->running)
        return;
    run_queue(x);
}

static void
run_queue(struct migexec *x)
{
    struct qev e;

    x->running = true;
    while (q_get(x, &e))
        step_one(x, &e.ev);
    x->running = false;
    if (xm_mig_terminal(&x->m) && !x->send_busy && !x->recv_busy) {
        x->finished = true;
        timer_cancel(x);
        so_close(x);
        si_close(x);
        free(x->config_json);
        x->config_json = NULL;
        xm_buf_dispose(&x->scratch);
        report(x, true);    /* may free x */
    }
}

/* ---- public ---- */

int
migexec_new(const struct migexec_params *p, struct migexec **x_r)
{
    struct migexec *x = NULL;
    int rc;

    if (!p || !p->hv || !p->journal || !p->loop || !p->clock
        || !p->chan.ops || !p->done)
        return XM_ERR_INVAL;
    x = calloc(1, sizeof(*x));
    if (!x)
        return XM_ERR_NOMEM;
    x->p = *p;
    x->send_fd = -1;
    x->recv_fd = -1;
    x->so.fd = -1;
    x->si.fd = -1;
    xm_buf_init(&x->scratch, XM_PROTO_FRAME_MAX + XM_PROTO_FRAME_MAX);
    rc = xm_mig_init(&x->m, p->side, &p->ident, &p->cfg);
    if (rc)
        goto out;
    *x_r = x;
    x = NULL;
out:
    if (x)
        xm_buf_dispose(&x->scratch);
    free(x);
    return rc;
}

int
migexec_adopt(const struct migexec_params *p,
              const struct xm_journal_rec *rec, enum xm_mig_state state,
              uint32_t domid, struct migexec **x_r)
{
    struct migexec *x = NULL;
    int rc;

    rc = migexec_new(p, &x);
    if (rc)
        return rc;
    rc = xm_mig_adopt(&x->m, rec, &p->cfg, state, domid, x->adopt_acts,
                      XM_MIG_ACTIONS_MAX, &x->n_adopt);
    if (rc) {
        migexec_free(x);
        return rc;
    }
    x->jrec = *rec;
    x->have_jrec = true;
    *x_r = x;
    return XM_OK;
}

void
migexec_kick(struct migexec *x)
{
    unsigned n = x->n_adopt;

    if (!n || x->running || x->finished)
        return;
    x->n_adopt = 0;
    x->running = true;
    perform_all(x, x->adopt_acts, n);
    x->running = false;
    run_queue(x);
}

uint64_t
migexec_bytes(const struct migexec *x)
{
    return x->bytes;
}

int
migexec_abort(struct migexec *x, const char *why)
{
    struct xm_mig_event ev = mkev(XM_MIG_EV_TIMEOUT, XM_ERR_CANCELLED);

    /* Only before the point of no return, and only where the machine
     * waits on the peer or the stream: a timeout there rolls back. */
    switch (x->m.state) {
    case XM_MIG_S_OFFERED:
    case XM_MIG_S_SENDING:
    case XM_MIG_S_WAIT_READY:
        break;
    default:
        return XM_ERR_STATE;
    }
    ev.text = why;
    timer_cancel(x);
    feed(x, &ev);
    return XM_OK;
}

void
migexec_free(struct migexec *x)
{
    if (!x)
        return;
    timer_cancel(x);
    so_close(x);
    si_close(x);
    if (x->send_fd >= 0)
        close(x->send_fd);
    if (x->recv_fd >= 0)
        close(x->recv_fd);
    free(x->config_json);
    xm_buf_dispose(&x->scratch);
    free(x);
}

bool
migexec_busy(const struct migexec *x)
{
    return x->send_busy || x->recv_busy;
}

const struct xm_mig *
migexec_machine(const struct migexec *x)
{
    return &x->m;
}

int
migexec_start(struct migexec *x)
{
    struct xm_mig_event ev = mkev(XM_MIG_EV_START, 0);

    if (x->m.side != XM_MIG_SOURCE || x->m.state != XM_MIG_S_IDLE)
        return XM_ERR_STATE;
    feed(x, &ev);
    return XM_OK;
}

void
migexec_on_link(struct migexec *x, bool up)
{
    struct xm_mig_event ev = mkev(up ? XM_MIG_EV_LINK_UP
                                     : XM_MIG_EV_LINK_LOST,
                                  up ? 0 : XM_ERR_IO);

    feed(x, &ev);
}

void
migexec_on_drain(struct migexec *x)
{
    so_pump(x);
}

/* Parse a JSON payload and check that it is about our migration. */
static int
parse_ours(struct migexec *x, const struct xm_frame *f, xm_json **doc_r)
{
    char err[64];
    const char *id;
    int rc;

    rc = xm_json_parse((const char *)f->payload, f->len, doc_r, err,
                       sizeof(err));
    if (rc)
        return XM_ERR_PROTO;
    if (xm_json_get_str(*doc_r, "id", &id) || strcmp(id, x->m.ident.id))
        return XM_ERR_PROTO;
    return XM_OK;
}

static int
offer_fields(const xm_json *doc, struct xm_mig_ident *ident_r)
{
    const char *id, *name, *uuid, *src, *dst;

    memset(ident_r, 0, sizeof(*ident_r));
    if (xm_json_get_str(doc, "id", &id) || !xm_mig_id_valid(id)
        || xm_json_get_str(doc, "name", &name) || !xm_mig_name_valid(name)
        || xm_json_get_str(doc, "uuid", &uuid)
        || xm_mig_uuid_parse(uuid, ident_r->uuid)
        || xm_json_get_str(doc, "source", &src)
        || !xm_proto_host_valid(src)
        || xm_json_get_str(doc, "target", &dst)
        || !xm_proto_host_valid(dst))
        return XM_ERR_PROTO;
    snprintf(ident_r->id, sizeof(ident_r->id), "%s", id);
    snprintf(ident_r->name, sizeof(ident_r->name), "%s", name);
    snprintf(ident_r->source, sizeof(ident_r->source), "%s", src);
    snprintf(ident_r->target, sizeof(ident_r->target), "%s", dst);
    return XM_OK;
}

int
migexec_offer_ident(const struct xm_frame *f, struct xm_mig_ident *ident_r)
{
    xm_json *doc = NULL;
    char err[64];
    int rc;

    if (f->type != XM_MSG_MIGRATE_OFFER)
        return XM_ERR_INVAL;
    rc = xm_json_parse((const char *)f->payload, f->len, &doc, err,
                       sizeof(err));
    if (!rc)
        rc = offer_fields(doc, ident_r);
    else
        rc = XM_ERR_PROTO;
    xm_json_free(doc);
    return rc;
}

/* Target: keep what the OFFER says we need to restore the guest. */
static int
take_offer(struct migexec *x, const struct xm_frame *f)
{
    struct xm_mig_ident ident;
    struct xm_jgen *g = NULL;
    xm_json *doc = NULL;
    const xm_json *cfg;
    uint64_t mem, vcpus;
    int rc;

    rc = parse_ours(x, f, &doc);
    if (rc)
        goto out;
    rc = XM_ERR_PROTO;
    if (offer_fields(doc, &ident) || strcmp(ident.name, x->m.ident.name)
        || memcmp(ident.uuid, x->m.ident.uuid, 16)
        || xm_json_get_uint(doc, "mem_kib", &mem)
        || xm_json_get_uint(doc, "vcpus", &vcpus) || vcpus > 4096
        || !(cfg = xm_json_get(doc, "config"))
        || xm_json_type(cfg) != XM_JSON_OBJECT)
        goto out;
    g = xm_jgen_new(false);
    if (!g) {
        rc = XM_ERR_NOMEM;
        goto out;
    }
    xm_jgen_json(g, cfg);
    free(x->config_json);
    x->config_json = NULL;
    rc = xm_jgen_take(g, &x->config_json);
    if (rc)
        goto out;
    x->offer_mem_kib = mem;
    x->offer_vcpus = (unsigned)vcpus;
out:
    xm_jgen_free(g);
    xm_json_free(doc);
    return rc;
}

int
migexec_on_frame(struct migexec *x, const struct xm_frame *f)
{
    struct xm_mig_event ev = mkev(XM_MIG_EV_COUNT, 0);
    char text[XM_MIG_WHY_MAX];
    xm_json *doc = NULL;
    const char *s;
    int32_t code;
    bool source = x->m.side == XM_MIG_SOURCE;
    int rc = XM_OK;

    switch (f->type) {
    case XM_MSG_STREAM_DATA:
        if (source)
            return XM_ERR_PROTO;
        if (!x->si_on)
            return XM_OK;   /* cancelled: late data is dropped */
        x->bytes += f->len;
        if (xm_stream_in_push(&x->si, f->payload, f->len)
            || xm_stream_in_flush(&x->si)) {
            si_close(x);    /* the restore sees EOF and fails */
            return XM_OK;
        }
        si_update(x);
        return XM_OK;
    case XM_MSG_STREAM_END:
        if (source)
            return XM_ERR_PROTO;
        if (x->si_on) {
            if (xm_stream_in_end(&x->si))
                si_close(x);
            else
                si_update(x);
        }
        return XM_OK;
    case XM_MSG_MIGRATE_OFFER:
        /* One offer per migration: a second one is a broken peer. */
        if (source || x->m.state != XM_MIG_T_IDLE)
            return XM_ERR_PROTO;
        rc = take_offer(x, f);
        if (rc)
            return rc;
        ev.type = XM_MIG_EV_OFFER;
        break;
    case XM_MSG_MIGRATE_REJECT:
    case XM_MSG_MIGRATE_ABORT:
        if (xm_frame_error(f, &code, text, sizeof(text)))
            return XM_ERR_PROTO;
        ev.type = f->type == XM_MSG_MIGRATE_REJECT ? XM_MIG_EV_REJECT
                                                   : XM_MIG_EV_ABORT;
        ev.rc = code;
        ev.text = text;
        break;
    case XM_MSG_MIGRATE_ACCEPT:
    case XM_MSG_MIGRATE_GO:
    case XM_MSG_MIGRATE_DONE:
    case XM_MSG_MIGRATE_READY:
        if (f->len) {
            rc = parse_ours(x, f, &doc);
            xm_json_free(doc);
            if (rc)
                return rc;
        }
        ev.type = f->type == XM_MSG_MIGRATE_ACCEPT ? XM_MIG_EV_ACCEPT
                : f->type == XM_MSG_MIGRATE_GO ? XM_MIG_EV_GO
                : f->type == XM_MSG_MIGRATE_DONE ? XM_MIG_EV_DONE
                : XM_MIG_EV_READY;
        break;
    case XM_MSG_MIGRATE_STATUS_REQ:
        if (source)
            return XM_ERR_PROTO;
        rc = parse_ours(x, f, &doc);
        xm_json_free(doc);
        if (rc)
            return rc;
        send_json(x, XM_MSG_MIGRATE_STATUS, "status",
                  xm_mig_peer_status_name(xm_mig_peer_status(&x->m)));
        return XM_OK;
    case XM_MSG_MIGRATE_STATUS:
        if (!source)
            return XM_ERR_PROTO;
        rc = parse_ours(x, f, &doc);
        if (!rc && !xm_json_get_str(doc, "status", &s)) {
            rc = XM_ERR_PROTO;
            for (int st = XM_MIG_PS_ABSENT; st <= XM_MIG_PS_RUNNING; st++)
                if (!strcmp(s, xm_mig_peer_status_name(st))) {
                    ev.type = xm_mig_status_event(st);
                    rc = XM_OK;
                }
        } else if (!rc) {
            rc = XM_ERR_PROTO;
        }
        xm_json_free(doc);
        if (rc)
            return rc;
        break;
    default:
        return XM_ERR_PROTO;
    }
    feed(x, &ev);
    return XM_OK;
}
