/*
 * agent_mig.c -- the agent's live migrations, both sides.
 *
 * A table of migrations, each an executor (migexec.h) and a channel of
 * the peer link.  Sources are started by the drain (or by a peer's pull
 * for an undrain); targets are created when a peer's OFFER arrives on a
 * fresh connection.  A source that reconnects after losing its link
 * past the point of no return asks with MIGRATE_STATUS_REQ: a live
 * target takes the new connection, a finished one answers from its
 * journal and the host's domains.
 *
 * At start the journal (state_dir/migrations) is read back and every
 * migration an earlier agent left unfinished is recovered
 * (xm_mig_recover): finished by final actions, or resumed by an adopted
 * executor; a source that was still sending (GO never left) also
 * cancels at its target (MIGRATE_CANCEL), which would otherwise hold
 * its paused copy for its grace time.  A finished migration is freed from the loop, never from
 * inside one of its own callbacks.  The guests that left this host are
 * recorded in state_dir/away so that the undrain can call them home.
 *
 * Each source stream is compressed as its drain asks (`--compress`, or
 * xenmaint.conf's compress, "auto" by default; see migexec.h).  libxc's
 * progress reports (xm_progress.h) tell when a live send's guest stopped
 * and how many precopy rounds went before, but they name no domain: a
 * report is given to the one live send running, and when several run,
 * the suspend goes to the one whose domain the hypervisor then shows
 * suspended, while the rounds of all of them become unknown.
 *
 * A guest that is down for one of our migrations (libxc suspended it
 * for the final round; it waits for the tail, the target's restore and
 * the handshake; on the target: from its stream's end) comes first: the
 * other streams, sent or received, are held until it runs again, here
 * or there, so that this host's CPU and link serve it alone; where it
 * runs again they stay held MIG_RESUME_GRACE_MS more, while it resumes
 * (a compressed stream, CPU-bound here, would slow that down).  While
 * none is down, the first source stream near its end (its first pass
 * nearly over) holds all the others, so that two guests do not go down
 * together and its guest's suspend has the CPU.  Their guests still
 * run; they lose a little time, the one that waits loses less of its
 * downtime.  A guest down (or near its end) longer than
 * MIG_DOWN_FIRST_MS holds nothing any more (a stuck handshake must not
 * stall the drain).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent_int.h"
#include "xm_err.h"
#include "xm_json.h"
#include "xm_log.h"
#include "xm_progress.h"

#define AWAY_FILE "away"
#define AWAY_MAX 4096
#define JOURNAL_KEEP_S (24 * 3600)
#define SUSPENDS_MAX 16             /* suspend reports waiting for a
                                     * domain to be named */

/* ---- the host as the machines see it ---- */

struct hostview {
    struct xm_domain *doms;
    struct xm_mig_dom *view;
    struct xm_mig_hostview host;
};

static enum xm_mig_domstate
domstate(unsigned flags)
{
    /* a domain whose destroy was cut short (nameless, paused or shut
     * down: dying) cannot run again */
    if ((flags & XM_DOM_SUSPENDED) ||
        ((flags & XM_DOM_NAMELESS) && (flags & XM_DOM_DYING)))
        return XM_MIG_DOM_SUSPENDED;
    if (flags & XM_DOM_PAUSED)
        return XM_MIG_DOM_PAUSED;
    return XM_MIG_DOM_RUNNING;
}

static int
hostview_read(struct agent *a, struct hostview *hv)
{
    struct xm_hostinfo info;
    size_t n = 0;
    int rc;

    memset(hv, 0, sizeof(*hv));
    rc = a->d.hv->ops->list_domains(a->d.hv->ctx, &hv->doms, &n);
    if (!rc)
        rc = a->d.hv->ops->hostinfo(a->d.hv->ctx, &info);
    if (rc)
        return rc;
    hv->view = calloc(n ? n : 1, sizeof(*hv->view));
    if (!hv->view)
        return XM_ERR_NOMEM;
    for (size_t i = 0; i < n; i++) {
        hv->view[i].name = hv->doms[i].name;
        memcpy(hv->view[i].uuid, hv->doms[i].uuid, 16);
        hv->view[i].domid = hv->doms[i].domid;
        hv->view[i].state = domstate(hv->doms[i].flags);
    }
    hv->host.doms = hv->view;
    hv->host.n = n;
    hv->host.free_kib = info.free_kib;
    hv->host.cordoned = strcmp(a->state, "active") != 0;
    return XM_OK;
}

static void
hostview_dispose(struct hostview *hv)
{
    free(hv->doms);
    free(hv->view);
}

/* ---- away records: guests that left this host ---- */

/* One line per guest: "UUIDHEX NAME HOST".  A line that does not parse
 * is skipped with a warning: the file is ours, but disks lie. */
int
agent_away_load(struct agent *a, struct away_rec **recs_r, size_t *n_r)
{
    char path[512], line[256], hex[40], name[XM_DOMNAME_MAX + 2];
    char host[XM_PROTO_HOST_MAX + 2];
    struct away_rec *recs = NULL;
    size_t n = 0;
    FILE *f;

    *recs_r = NULL;
    *n_r = 0;
    snprintf(path, sizeof(path), "%s/" AWAY_FILE, a->d.cfg->state_dir);
    f = fopen(path, "r");
    if (!f)
        return errno == ENOENT ? XM_OK : xm_err_from_errno(errno);
    while (n < AWAY_MAX && fgets(line, sizeof(line), f)) {
        struct away_rec *grown, r;

        if (sscanf(line, "%39s %65s %64s", hex, name, host) != 3 ||
            xm_mig_uuid_parse(hex, r.uuid) || !xm_mig_name_valid(name) ||
            !xm_proto_host_valid(host)) {
            xm_log_warn("%s: a malformed line skipped", path);
            continue;
        }
        memcpy(r.name, name, strlen(name) + 1);   /* checked above */
        memcpy(r.host, host, strlen(host) + 1);
        grown = realloc(recs, (n + 1) * sizeof(*recs));
        if (!grown) {
            free(recs);
            fclose(f);
            return XM_ERR_NOMEM;
        }
        recs = grown;
        recs[n++] = r;
    }
    fclose(f);
    *recs_r = recs;
    *n_r = n;
    return XM_OK;
}

struct away_change {
    const struct away_rec *recs;
    size_t n;
    const uint8_t *uuid;
    const char *name, *host;
};

static int
fill_away(FILE *out, void *arg)
{
    const struct away_change *ch = arg;
    char hex[33];

    for (size_t i = 0; i < ch->n; i++) {
        if (memcmp(ch->recs[i].uuid, ch->uuid, 16) == 0)
            continue;
        xm_mig_uuid_hex(ch->recs[i].uuid, hex);
        fprintf(out, "%s %s %s\n", hex, ch->recs[i].name, ch->recs[i].host);
    }
    if (ch->name) {
        xm_mig_uuid_hex(ch->uuid, hex);
        fprintf(out, "%s %s %s\n", hex, ch->name, ch->host);
    }
    return XM_OK;
}

/* Rewrite the file without uuid, and with (uuid, name, host) when name
 * is given. */
static int
away_update(struct agent *a, const uint8_t uuid[16], const char *name,
            const char *host)
{
    struct away_change ch = { .uuid = uuid, .name = name, .host = host };
    struct away_rec *recs = NULL;
    char path[512];
    int rc;

    rc = agent_away_load(a, &recs, &ch.n);
    if (rc)
        return rc;
    ch.recs = recs;
    snprintf(path, sizeof(path), "%s/" AWAY_FILE, a->d.cfg->state_dir);
    rc = agent_replace_file(path, fill_away, &ch);
    free(recs);
    return rc;
}

/* ---- the table ---- */

static void
mig_unlink(struct mig *m)
{
    for (struct mig **pp = &m->a->migs; *pp; pp = &(*pp)->next) {
        if (*pp == m) {
            *pp = m->next;
            return;
        }
    }
}

static void
mig_free(struct mig *m)
{
    struct agent_peers *p = &m->a->d.peers;

    xm_loop_cancel_timer(m->a->d.loop, m->reap);
    if (m->ch.ctx && p->ops)
        p->ops->chan_close(p->ctx, m->ch.ctx);
    migexec_free(m->x);
    free(m);
}

static void
on_reap(void *arg)
{
    struct mig *m = arg;

    m->reap = NULL;             /* fired: gone */
    mig_unlink(m);
    mig_free(m);
}

/* Free m from the loop (we may be inside its callbacks now). */
static void
mig_schedule_reap(struct mig *m)
{
    if (!m->reap &&
        xm_loop_add_timer(m->a->d.loop, 0, on_reap, m, &m->reap) != XM_OK)
        xm_log_err("migration %s: cannot schedule its cleanup",
                   m->ident.id);
}

struct mig *
mig_find(struct agent *a, const char *id, enum xm_mig_side side)
{
    for (struct mig *m = a->migs; m; m = m->next)
        if (m->side == side && strcmp(m->ident.id, id) == 0)
            return m;
    return NULL;
}

uint64_t
mig_bytes(const struct mig *m)
{
    return m->x && !m->final ? migexec_bytes(m->x) : m->bytes;
}

const char *
mig_move_state(const struct mig *m)
{
    if (!m->final)
        return m->res.outcome == XM_MIG_UNRESOLVED ? "unresolved"
                                                   : "pending";
    switch (m->res.outcome) {
    case XM_MIG_OK: return "done";
    case XM_MIG_FAILED_BEFORE:
    case XM_MIG_FAILED_AFTER: return "stayed";
    case XM_MIG_UNRESOLVED: return "unresolved";
    case XM_MIG_BROKEN: return "broken";
    default: return "stayed";
    }
}

bool
mig_streaming(const struct mig *m)
{
    return !m->final && m->x &&
           xm_mig_source_streaming(migexec_machine(m->x));
}

void
mig_stats(const struct mig *m, struct migexec_stats *st_r)
{
    if (m->x && !m->final)
        migexec_stats(m->x, st_r);
    else
        *st_r = m->stats;
}

/* A figure or "unknown". */
static void
kv_known(struct xm_jgen *g, const char *key, int64_t v)
{
    if (v == MIGEXEC_UNKNOWN)
        xm_jgen_kv_str(g, key, "unknown");
    else
        xm_jgen_kv_int(g, key, v);
}

void
mig_stats_json(struct xm_jgen *g, const struct migexec_stats *st)
{
    char num[32];
    int len;

    xm_jgen_kv_str(g, "compress", st->compress[0] ? st->compress
                                                  : "unknown");
    if (st->compress_why[0])
        xm_jgen_kv_str(g, "compress_why", st->compress_why);
    xm_jgen_kv_uint(g, "libxl_bytes", st->libxl_bytes);
    xm_jgen_kv_uint(g, "wire_bytes", st->wire_bytes);
    xm_jgen_kv_uint(g, "frames", st->frames);
    xm_jgen_kv_uint(g, "acked_bytes", st->acked_bytes);
    xm_jgen_key(g, "ratio");
    if (st->wire_bytes) {
        len = snprintf(num, sizeof(num), "%.2f",
                       (double)st->libxl_bytes / (double)st->wire_bytes);
        xm_jgen_raw(g, num, (size_t)len);
    } else {
        xm_jgen_null(g);
    }
    kv_known(g, "precopy_rounds", st->rounds);
    xm_jgen_key(g, "downtime");
    xm_jgen_map_open(g);
    kv_known(g, "total_ms", st->downtime_ms);
    kv_known(g, "stream_tail_ms", st->stream_tail_ms);
    kv_known(g, "restore_ms", st->restore_ms);
    kv_known(g, "handshake_ms", st->handshake_ms);
    xm_jgen_map_close(g);
}

/* text (NULL or "": the pool default) as a spec. */
static int
compress_parse(struct agent *a, const char *text,
               struct xm_comp_spec *spec_r, char *err_r, size_t errlen)
{
    if (!text || !text[0])
        text = a->d.cfg->compress[0] ? a->d.cfg->compress : "auto";
    return xm_comp_spec_parse(text, spec_r, err_r, errlen);
}

int
mig_compress_check(struct agent *a, const char *compress, char *err_r,
                   size_t errlen)
{
    struct xm_comp_spec spec;

    return compress_parse(a, compress, &spec, err_r, errlen);
}

unsigned
agent_migrations_busy(const struct agent *a)
{
    unsigned n = 0;

    for (const struct mig *m = a->migs; m; m = m->next)
        if (!m->final)
            n++;
    return n;
}

static void
mig_record(struct mig *m, const char *why)
{
    snprintf(m->why, sizeof(m->why), "%s", why ? why : "");
    m->res.why = m->why;
}

/* "1.25 s" or "?" for the log. */
static const char *
log_secs(int64_t ms, char *buf, size_t len)
{
    if (ms == MIGEXEC_UNKNOWN)
        snprintf(buf, len, "?");
    else
        snprintf(buf, len, "%.2f s", (double)ms / 1000.0);
    return buf;
}

static void
log_moved(const struct mig *m)
{
    const struct migexec_stats *st = &m->stats;
    char total[24], tail[24], restore[24], hs[24], rounds[16] = "?";

    if (st->rounds != MIGEXEC_UNKNOWN)
        snprintf(rounds, sizeof(rounds), "%d", st->rounds);
    xm_log_info("migration %s: %s %s %s in %.1f s: %.1f MiB from libxl, "
                "%.1f MiB on the wire (%s), %s precopy rounds, downtime "
                "%s (stream tail %s, restore %s, handshake %s)",
                m->ident.id, m->ident.name,
                m->side == XM_MIG_SOURCE ? "moved to" : "arrived from",
                m->peer, (m->t1_ms - m->t0_ms) / 1000.0,
                (double)st->libxl_bytes / 1048576.0,
                (double)st->wire_bytes / 1048576.0,
                st->compress[0] ? st->compress : "?", rounds,
                log_secs(st->downtime_ms, total, sizeof(total)),
                log_secs(st->stream_tail_ms, tail, sizeof(tail)),
                log_secs(st->restore_ms, restore, sizeof(restore)),
                log_secs(st->handshake_ms, hs, sizeof(hs)));
    if (m->side == XM_MIG_SOURCE && st->compress_why[0])
        xm_log_info("migration %s: compression %s", m->ident.id,
                    st->compress_why);
}

/* Kept for status: the newest replaces the oldest. */
static void
mig_remember(struct mig *m)
{
    struct agent *a = m->a;
    struct mig_past *p = &a->past[a->past_next];

    memset(p, 0, sizeof(*p));
    snprintf(p->id, sizeof(p->id), "%s", m->ident.id);
    snprintf(p->guest, sizeof(p->guest), "%s", m->ident.name);
    snprintf(p->peer, sizeof(p->peer), "%s", m->peer);
    p->source = m->side == XM_MIG_SOURCE;
    snprintf(p->state, sizeof(p->state), "%s", mig_move_state(m));
    snprintf(p->why, sizeof(p->why), "%s", m->why);
    p->bytes = m->bytes;
    p->ms = m->t1_ms > m->t0_ms && m->t0_ms ? m->t1_ms - m->t0_ms : 0;
    p->ended_s = xm_clock_wall_s(a->d.clock);
    p->stats = m->stats;
    a->past_next = (a->past_next + 1) % MIG_PAST_MAX;
    if (a->n_past < MIG_PAST_MAX)
        a->n_past++;
}

void
mig_past_json(const struct agent *a, struct xm_jgen *g)
{
    char secs[32];
    int len;

    xm_jgen_key(g, "migrations");
    xm_jgen_array_open(g);
    for (unsigned k = 1; k <= a->n_past; k++) {
        const struct mig_past *p =
            &a->past[(a->past_next + MIG_PAST_MAX - k) % MIG_PAST_MAX];

        xm_jgen_map_open(g);
        xm_jgen_kv_str(g, "id", p->id);
        xm_jgen_kv_str(g, "guest", p->guest);
        xm_jgen_kv_str(g, p->source ? "to" : "from", p->peer);
        xm_jgen_kv_str(g, "state", p->state);
        xm_jgen_kv_str(g, "why", p->why);
        xm_jgen_kv_uint(g, "bytes", p->bytes);
        len = snprintf(secs, sizeof(secs), "%lld.%03lld",
                       (long long)(p->ms / 1000), (long long)(p->ms % 1000));
        xm_jgen_key(g, "seconds");
        xm_jgen_raw(g, secs, (size_t)len);
        xm_jgen_kv_int(g, "ended", p->ended_s);
        mig_stats_json(g, &p->stats);
        xm_jgen_map_close(g);
    }
    xm_jgen_array_close(g);
}

/* ---- the guest that is down comes first ---- */

static void mig_priority(struct agent *a);

static void
on_down_timer(void *arg)
{
    struct agent *a = arg;

    a->down_timer = NULL;       /* fired: gone */
    mig_priority(a);
}

/* A migration whose stream may still be held: not over, and (target)
 * its guest not yet running here. */
static bool
mig_live(const struct mig *m)
{
    return !m->final && m->x && migexec_unpaused_at(m->x) < 0;
}

/* Hold the streams that must wait (xm_mig_priority: every other while a
 * guest of ours is down or resumes here, sent or received, or while the
 * first near its end gets there), release the others. */
static void
mig_priority(struct agent *a)
{
    int64_t now = xm_clock_mono_ms(a->d.clock), next;
    struct xm_mig_prio *in;
    bool was_down = a->guest_down, down;
    const struct mig *first = NULL;
    size_t n = 0, i = 0;
    unsigned held = 0;
    int k;

    xm_loop_cancel_timer(a->d.loop, a->down_timer);
    a->down_timer = NULL;
    for (struct mig *m = a->migs; m; m = m->next)
        n += mig_live(m);
    in = calloc(n ? n : 1, sizeof(*in));
    if (!in)
        n = 0;                  /* no memory to weigh them: hold none */
    for (struct mig *m = a->migs; m && i < n; m = m->next) {
        if (!mig_live(m))
            continue;
        in[i].down_since = migexec_down_since(m->x);
        in[i].endgame_since = migexec_endgame_since(m->x);
        i++;
    }
    k = xm_mig_priority(in, n, now, MIG_DOWN_FIRST_MS, a->resume_until,
                        &down, &next);
    i = 0;
    for (struct mig *m = a->migs; m; m = m->next) {
        if (!mig_live(m))
            continue;
        if (i < n && (int)i == k)
            first = m;
        migexec_hold(m->x, i < n && in[i].hold);
        held += i < n && in[i].hold;
        i++;
    }
    free(in);
    if (held && (held != a->n_held || down != was_down) && first)
        xm_log_info("migration %s: %s %s: %u other stream%s held",
                    first->ident.id, first->ident.name,
                    down ? "is down" : "nears its end", held,
                    held == 1 ? "" : "s");
    else if (!held && a->n_held)
        xm_log_debug("streams released");
    a->n_held = held;
    a->guest_down = down;
    if (was_down && !down)
        agent_drain_kick(a);
    if (next >= 0 &&
        xm_loop_add_timer(a->d.loop, next - now, on_down_timer, a,
                          &a->down_timer) != XM_OK)
        a->down_timer = NULL;   /* then the guest's end releases them */
}

static void
on_exec_down(void *arg, struct migexec *x)
{
    struct mig *m = arg;
    struct agent *a = m->a;
    int64_t up = migexec_unpaused_at(x);
    bool resumed = false;

    /* its guest runs here again: it resumes, the others wait */
    if (up >= 0 && up + MIG_RESUME_GRACE_MS > a->resume_until) {
        a->resume_until = up + MIG_RESUME_GRACE_MS;
        resumed = true;
    }
    mig_priority(a);
    if (resumed && a->n_held)
        xm_log_info("migration %s: %s runs here: %u other stream%s held "
                    "while it resumes (%d ms)", m->ident.id, m->ident.name,
                    a->n_held, a->n_held == 1 ? "" : "s",
                    MIG_RESUME_GRACE_MS);
}

/* The executor reports. */
static void
on_exec_done(void *arg, struct migexec *x, const struct migexec_result *res,
             bool final)
{
    struct mig *m = arg;
    struct agent *a = m->a;
    int rc;

    (void)x;
    m->res = res->mig;
    mig_record(m, res->mig.why);
    m->bytes = res->bytes;
    m->stats = res->stats;
    m->state = res->state;
    if (final) {
        m->final = true;
        m->t1_ms = xm_clock_mono_ms(a->d.clock);
        mig_schedule_reap(m);
        if (m->res.outcome == XM_MIG_OK) {
            /* a guest sent home by an undrain ('u' ids, agent_drain.c)
             * is not one of ours that left: only a drain's move is */
            rc = m->side == XM_MIG_SOURCE && m->ident.id[0] != 'u'
                ? away_update(a, m->ident.uuid, m->ident.name, m->peer)
                : away_update(a, m->ident.uuid, NULL, NULL);
            if (rc)
                xm_log_warn("cannot update %s/" AWAY_FILE ": %s",
                            a->d.cfg->state_dir, xm_strerror(rc));
        }
        mig_remember(m);
        if (m->res.outcome == XM_MIG_OK)
            log_moved(m);
        else
            xm_log_warn("migration %s of %s (%s %s): %s: %s", m->ident.id,
                        m->ident.name,
                        m->side == XM_MIG_SOURCE ? "to" : "from", m->peer,
                        xm_mig_outcome_name(m->res.outcome), m->why);
    }
    if (m->side == XM_MIG_TARGET)
        agent_drain_on_target(a, m, final);
    if (m->notify)
        m->notify(m->notify_arg, m, final);
}

/* ---- channel callbacks ---- */

static int
chan_frame(void *arg, const struct xm_frame *f)
{
    struct mig *m = arg;

    if (m->final || !m->x)
        return XM_OK;           /* late frames of a finished migration */
    return migexec_on_frame(m->x, f);
}

/* A source that never got its link: ends here, guest untouched. */
static void
mig_fail_unstarted(struct mig *m, int rc, const char *why)
{
    char text[XM_MIG_WHY_MAX];

    snprintf(text, sizeof(text), "cannot reach %s: %s", m->peer, why);
    m->final = true;
    m->res.outcome = XM_MIG_FAILED_BEFORE;
    m->res.rc = rc;
    mig_record(m, text);
    m->t1_ms = xm_clock_mono_ms(m->a->d.clock);
    mig_schedule_reap(m);
    xm_log_warn("migration %s of %s: %s", m->ident.id, m->ident.name,
                text);
    if (m->notify)
        m->notify(m->notify_arg, m, true);
}

static void
chan_link(void *arg, bool up)
{
    struct mig *m = arg;

    if (m->final || !m->x)
        return;
    if (m->side == XM_MIG_SOURCE && !m->started) {
        if (!up) {
            mig_fail_unstarted(m, XM_ERR_IO, "connection failed");
            return;
        }
        m->started = true;
        migexec_start(m->x);
        return;
    }
    migexec_on_link(m->x, up);
}

static void
chan_drain(void *arg)
{
    struct mig *m = arg;

    if (!m->final && m->x)
        migexec_on_drain(m->x);
}

static const struct agent_chan_cb chan_cb = {
    .frame = chan_frame,
    .link = chan_link,
    .drain = chan_drain,
};

static void
mig_params(struct mig *m, enum xm_mig_side side, unsigned timeout_s,
           const struct xm_comp_spec *compress, struct migexec_params *p)
{
    struct agent *a = m->a;

    memset(p, 0, sizeof(*p));
    p->side = side;
    if (compress)
        p->compress = *compress;
    p->ident = m->ident;
    xm_mig_config_default(&p->cfg);
    if (timeout_s)
        p->cfg.stream_ms = timeout_s > 3600u * 24 ? 3600u * 24 * 1000
                                                  : timeout_s * 1000u;
    p->hv = a->d.hv;
    p->journal = a->journal;
    p->loop = a->d.loop;
    p->clock = a->d.clock;
    if (side == XM_MIG_SOURCE)
        p->endgame_bytes = m->guest_kib * 1024;
    p->chan = m->ch;
    p->cordoned = strcmp(a->state, "active") != 0;
    p->done = on_exec_done;
    p->down = on_exec_down;
    p->arg = m;
}

static struct mig *
mig_alloc(struct agent *a, enum xm_mig_side side, const char *peer)
{
    struct mig *m = calloc(1, sizeof(*m));

    if (!m)
        return NULL;
    m->a = a;
    m->side = side;
    snprintf(m->peer, sizeof(m->peer), "%s", peer);
    m->t0_ms = xm_clock_mono_ms(a->d.clock);
    m->res.why = m->why;
    return m;
}

int
mig_start_source(struct agent *a, const struct xm_domain *d,
                 const char *target, const char *id, unsigned timeout_s,
                 const char *compress, mig_notify_fn *notify, void *arg,
                 struct mig **m_r)
{
    struct agent_peers *p = &a->d.peers;
    struct migexec_params params;
    struct xm_comp_spec spec;
    char err[128];
    struct mig *m;
    int rc;

    if (!a->journal || !p->ops || !p->ops->chan_open)
        return XM_ERR_STATE;
    if (mig_find(a, id, XM_MIG_SOURCE))
        return XM_ERR_EXISTS;
    rc = compress_parse(a, compress, &spec, err, sizeof(err));
    if (rc) {
        xm_log_warn("migration %s: %s", id, err);
        return rc;
    }
    m = mig_alloc(a, XM_MIG_SOURCE, target);
    if (!m)
        return XM_ERR_NOMEM;
    snprintf(m->ident.id, sizeof(m->ident.id), "%s", id);
    snprintf(m->ident.name, sizeof(m->ident.name), "%s", d->name);
    memcpy(m->ident.uuid, d->uuid, 16);
    snprintf(m->ident.source, sizeof(m->ident.source), "%s",
             a->d.cfg->host_name);
    snprintf(m->ident.target, sizeof(m->ident.target), "%s", target);
    m->ident.src_domid = d->domid;
    m->mem_kib = d->mem_kib;
    m->guest_kib = d->cur_mem_kib;
    m->notify = notify;
    m->notify_arg = arg;
    rc = p->ops->chan_open(p->ctx, target, NULL, &chan_cb, m, &m->ch);
    if (rc) {
        free(m);
        return rc;
    }
    mig_params(m, XM_MIG_SOURCE, timeout_s, &spec, &params);
    rc = migexec_new(&params, &m->x);
    if (rc) {
        mig_free(m);
        return rc;
    }
    m->next = a->migs;
    a->migs = m;
    *m_r = m;
    mig_priority(a);            /* held at once if a guest is down */
    rc = m->ch.ops->connect(m->ch.ctx);
    if (rc == XM_OK) {
        m->started = true;
        migexec_start(m->x);
    } else if (rc != XM_ERR_BUSY) {
        mig_fail_unstarted(m, rc, xm_strerror(rc));
    }
    return XM_OK;
}

int
mig_abort(struct mig *m, const char *why)
{
    if (m->final || !m->x)
        return XM_ERR_STATE;
    if (m->side == XM_MIG_SOURCE && !m->started) {
        mig_fail_unstarted(m, XM_ERR_CANCELLED, why);
        return XM_OK;
    }
    return migexec_abort(m->x, why);
}

/* ---- frames from peers ---- */

static int
take_offer(struct agent *a, const char *peer, struct agent_conn *conn,
           const struct xm_frame *f)
{
    struct agent_peers *p = &a->d.peers;
    struct migexec_params params;
    struct xm_mig_ident ident;
    struct mig *m;
    int rc;

    rc = migexec_offer_ident(f, &ident);
    if (rc) {
        xm_log_warn("peer %s: a malformed migration offer", peer);
        return rc;
    }
    if (strcmp(ident.source, peer) != 0 ||
        strcmp(ident.target, a->d.cfg->host_name) != 0) {
        xm_log_warn("peer %s: an offer from '%s' to '%s' refused: not "
                    "from that peer to this host", peer, ident.source,
                    ident.target);
        return XM_ERR_PERM;
    }
    if (mig_find(a, ident.id, XM_MIG_TARGET)) {
        xm_log_warn("peer %s: a second offer for migration %s", peer,
                    ident.id);
        return XM_ERR_EXISTS;
    }
    m = mig_alloc(a, XM_MIG_TARGET, peer);
    if (!m)
        return XM_ERR_NOMEM;
    m->ident = ident;
    rc = p->ops->chan_open(p->ctx, peer, conn, &chan_cb, m, &m->ch);
    if (rc) {
        free(m);
        return rc;
    }
    mig_params(m, XM_MIG_TARGET, 0, NULL, &params);
    rc = migexec_new(&params, &m->x);
    if (rc) {
        /* the channel holds the connection we are reading from: let
         * the loop close it */
        m->final = true;
        m->next = a->migs;
        a->migs = m;
        mig_schedule_reap(m);
        return rc;
    }
    m->next = a->migs;
    a->migs = m;
    xm_log_info("migration %s: %s offered by %s", ident.id, ident.name,
                peer);
    rc = migexec_on_frame(m->x, f);
    if (rc && !m->final) {
        m->final = true;
        mig_schedule_reap(m);
    }
    return rc;
}

/* The {"id","name","uuid"} of a peer's question about a migration:
 * doc to free, XM_ERR_PROTO when malformed. */
static int
parse_mig_question(const struct xm_frame *f, xm_json **doc_r,
                   const char **id_r, const char **name_r, uint8_t uuid[16])
{
    const char *uuids;
    char err[128];
    int rc;

    rc = xm_json_parse((const char *)f->payload, f->len, doc_r, err,
                       sizeof(err));
    if (rc || xm_json_get_str(*doc_r, "id", id_r) ||
        !xm_mig_id_valid(*id_r) ||
        xm_json_get_str(*doc_r, "name", name_r) ||
        !xm_mig_name_valid(*name_r) ||
        xm_json_get_str(*doc_r, "uuid", &uuids) ||
        xm_mig_uuid_parse(uuids, uuid)) {
        xm_json_free(*doc_r);
        *doc_r = NULL;
        return XM_ERR_PROTO;
    }
    return XM_OK;
}

/* What became of target migration id of peer's guest, from our journal
 * and the host's domains (xm_mig_peer_status_lookup); -1 when the host
 * cannot be read. */
static int
lookup_status(struct agent *a, const char *peer, const char *id,
              const char *name, const uint8_t uuid[16])
{
    struct xm_journal_rec rec, *prec = NULL;
    struct hostview hv;
    char err[128];
    int rc, st = -1;

    rc = xm_journal_load(a->journal, id, XM_MIG_TARGET, &rec, err,
                         sizeof(err));
    if (rc == XM_OK && strcmp(rec.source, peer) == 0)
        prec = &rec;
    else if (rc && rc != XM_ERR_NOTFOUND)
        xm_log_warn("migration %s: %s", id, err);
    if (hostview_read(a, &hv) == XM_OK)
        st = xm_mig_peer_status_lookup(prec, name, uuid, &hv.host);
    hostview_dispose(&hv);
    return st;
}

/* MIGRATE_STATUS {"id","status"} on conn. */
static int
reply_status(struct agent *a, struct agent_conn *conn, const char *id,
             int st)
{
    struct agent_peers *p = &a->d.peers;
    struct xm_jgen *g = xm_jgen_new(false);
    const char *text;
    size_t len;
    int rc;

    if (!g)
        return XM_ERR_NOMEM;
    xm_jgen_map_open(g);
    xm_jgen_kv_str(g, "id", id);
    xm_jgen_kv_str(g, "status", xm_mig_peer_status_name(st));
    xm_jgen_map_close(g);
    rc = xm_jgen_finish(g, &text, &len);
    if (!rc)
        rc = p->ops->conn_reply(p->ctx, conn, XM_MSG_MIGRATE_STATUS, text,
                                len);
    xm_jgen_free(g);
    return rc;
}

/* A source asks what became of a migration. */
static int
answer_status(struct agent *a, const char *peer, struct agent_conn *conn,
              const struct xm_frame *f)
{
    struct agent_peers *p = &a->d.peers;
    xm_json *doc = NULL;
    const char *id, *name;
    uint8_t uuid[16];
    struct mig *m;
    int rc, st;

    if (parse_mig_question(f, &doc, &id, &name, uuid))
        return XM_ERR_PROTO;
    m = mig_find(a, id, XM_MIG_TARGET);
    if (m && !m->final && m->x && strcmp(m->peer, peer) == 0) {
        p->ops->chan_attach(p->ctx, m->ch.ctx, conn);
        xm_json_free(doc);
        return migexec_on_frame(m->x, f);
    }
    st = lookup_status(a, peer, id, name, uuid);
    rc = st < 0 ? XM_ERR_IO : reply_status(a, conn, id, st);
    if (st >= 0)
        xm_log_info("migration %s: %s asked, answered %s", id, peer,
                    xm_mig_peer_status_name(st));
    xm_json_free(doc);
    return rc;
}

/*
 * A source that restarted before it sent GO cancels the migration
 * (MIGRATE_CANCEL, on a connection of its own): the paused copy we hold
 * for it goes now, not at the end of the grace time.  Answered with the
 * status, as a question about it would be.
 */
static int
take_cancel(struct agent *a, const char *peer, struct agent_conn *conn,
            const struct xm_frame *f)
{
    xm_json *doc = NULL;
    const char *id, *name, *why = "";
    char text[XM_MIG_WHY_MAX];
    uint8_t uuid[16];
    struct mig *m;
    int rc, st = -1;

    if (parse_mig_question(f, &doc, &id, &name, uuid))
        return XM_ERR_PROTO;
    if (xm_json_get_str(doc, "why", &why) != XM_OK)
        why = "";
    m = mig_find(a, id, XM_MIG_TARGET);
    if (m && !m->final && m->x && strcmp(m->peer, peer) == 0 &&
        strcmp(m->ident.name, name) == 0 &&
        memcmp(m->ident.uuid, uuid, 16) == 0) {
        /* (why is the peer's: bounded, control characters replaced) */
        snprintf(text, sizeof(text), "%s cancelled it before GO: %.60s",
                 peer, why);
        for (char *c = text; *c; c++)
            if ((unsigned char)*c < 0x20 || *c == 0x7f)
                *c = '?';
        if (migexec_source_cancel(m->x, text) == XM_OK)
            st = XM_MIG_PS_ABSENT;
    }
    if (st < 0)
        st = lookup_status(a, peer, id, name, uuid);
    rc = st < 0 ? XM_ERR_IO : reply_status(a, conn, id, st);
    if (st >= 0)
        xm_log_info("migration %s: %s cancelled it (restarted before GO), "
                    "answered %s", id, peer, xm_mig_peer_status_name(st));
    xm_json_free(doc);
    return rc;
}

int
agent_peer_frame(struct agent *a, const char *peer, struct agent_conn *conn,
                 const struct xm_frame *f)
{
    if (!a->journal || !a->d.peers.ops || !a->d.peers.ops->chan_open)
        return XM_ERR_STATE;
    switch (f->type) {
    case XM_MSG_MIGRATE_OFFER:
        return take_offer(a, peer, conn, f);
    case XM_MSG_MIGRATE_STATUS_REQ:
        return answer_status(a, peer, conn, f);
    case XM_MSG_MIGRATE_PULL:
        return agent_pull(a, peer, conn, f);
    case XM_MSG_MIGRATE_CANCEL:
        return take_cancel(a, peer, conn, f);
    default:
        return XM_ERR_PROTO;
    }
}

/* ---- libxc's progress reports: rounds and the suspend ---- */

struct mig_progress {
    struct agent *a;
    int64_t suspends[SUSPENDS_MAX];     /* reports not yet given out */
    unsigned n_suspends;
    struct xm_loop_timer *timer;
};

/* The live sends whose reports may come now: *one_r the only one. */
static unsigned
live_sends(struct agent *a, struct mig **one_r)
{
    unsigned n = 0;

    *one_r = NULL;
    for (struct mig *m = a->migs; m; m = m->next) {
        if (m->side != XM_MIG_SOURCE || m->final || !m->x ||
            !migexec_live_sending(m->x))
            continue;
        *one_r = m;
        n++;
    }
    return n;
}

/* Several sends ran when a guest stopped: the ones whose domain the
 * hypervisor now shows suspended take the waiting reports, in order. */
static void
on_suspend_check(void *arg)
{
    struct mig_progress *mp = arg;
    struct agent *a = mp->a;
    struct xm_domain *doms = NULL;
    size_t n = 0;

    mp->timer = NULL;           /* fired: gone */
    if (a->d.hv->ops->list_domains(a->d.hv->ctx, &doms, &n) != XM_OK) {
        mp->n_suspends = 0;     /* unknown, then */
        return;
    }
    for (struct mig *m = a->migs; m && mp->n_suspends; m = m->next) {
        if (m->side != XM_MIG_SOURCE || m->final || !m->x ||
            !migexec_live_sending(m->x))
            continue;
        for (size_t i = 0; i < n; i++) {
            if (doms[i].domid != m->ident.src_domid ||
                !(doms[i].flags & XM_DOM_SUSPENDED))
                continue;
            migexec_note_suspended(m->x, mp->suspends[0]);
            memmove(mp->suspends, mp->suspends + 1,
                    --mp->n_suspends * sizeof(mp->suspends[0]));
            break;
        }
    }
    /* A report no send claims stays unexplained: drop it. */
    mp->n_suspends = 0;
    free(doms);
}

/*
 * A report of libxc from inside libxl (afterpoll): only record.  The
 * precopy iterations are "Frames iteration N of M" with N < M (M is the
 * final pass, after the suspend); "Domain now suspended" is the guest
 * stopping.  Others are of no use here.
 */
static void
on_xc_progress(void *arg, const char *context, const char *doing_what,
               int percent, unsigned long done, unsigned long total)
{
    struct mig_progress *mp = arg;
    struct mig *one = NULL;
    unsigned n, of = 0, live = live_sends(mp->a, &one);
    int got;

    (void)context;
    (void)percent;
    (void)done;
    (void)total;
    if (live == 0)
        return;
    if (strcmp(doing_what, "Domain now suspended") == 0) {
        int64_t now = xm_clock_mono_ms(mp->a->d.clock);

        if (live == 1) {
            migexec_note_suspended(one->x, now);
            return;
        }
        if (mp->n_suspends < SUSPENDS_MAX)
            mp->suspends[mp->n_suspends++] = now;
        if (!mp->timer &&
            xm_loop_add_timer(mp->a->d.loop, 0, on_suspend_check, mp,
                              &mp->timer) != XM_OK)
            mp->timer = NULL;
        return;
    }
    got = sscanf(doing_what, "Frames iteration %u of %u", &n, &of);
    if (got < 1 || (got == 2 && n >= of))
        return;
    if (live == 1) {
        migexec_note_iteration(one->x, n);
        return;
    }
    for (struct mig *m = mp->a->migs; m; m = m->next)
        if (m->side == XM_MIG_SOURCE && !m->final && m->x &&
            migexec_live_sending(m->x))
            migexec_rounds_unknown(m->x);
}

/* Hear libxc's reports when the backend relays them (libxl; not the
 * test double). */
static void
progress_start(struct agent *a)
{
    struct mig_progress *mp = calloc(1, sizeof(*mp));

    if (!mp)
        return;                 /* rounds and downtime stay unknown */
    mp->a = a;
    if (xm_hv_libxl_set_progress(a->d.hv, on_xc_progress, mp) != XM_OK) {
        free(mp);
        return;
    }
    a->mig_progress = mp;
}

static void
progress_stop(struct agent *a)
{
    struct mig_progress *mp = a->mig_progress;

    if (!mp)
        return;
    xm_hv_libxl_set_progress(a->d.hv, NULL, NULL);
    xm_loop_cancel_timer(a->d.loop, mp->timer);
    free(mp);
    a->mig_progress = NULL;
}

/* ---- recovery ---- */

static int
recover_final(struct agent *a, const struct xm_journal_rec *rec,
              const struct xm_mig_action *act)
{
    struct xm_journal_rec r = *rec;
    char err[256];
    int rc = XM_OK;

    switch (act->type) {
    case XM_MIG_A_JOURNAL:
        r.phase = act->phase;
        r.updated_s = xm_clock_wall_s(a->d.clock);
        rc = xm_journal_put(a->journal, &r, err, sizeof(err));
        if (rc)
            xm_log_err("migration %s: %s", rec->id, err);
        break;
    case XM_MIG_A_HV:
        if (act->op == XM_MIG_OP_DESTROY) {
            rc = a->d.hv->ops->destroy(a->d.hv->ctx, act->domid);
            if (rc == XM_ERR_NOTFOUND)
                rc = XM_OK;
            xm_log_info("migration %s: destroyed leftover domain %u of "
                        "%s%s", rec->id, act->domid, rec->name,
                        rc ? " FAILED" : "");
        }
        break;
    default:
        break;
    }
    return rc;
}

static int
recover_adopt(struct agent *a, const struct xm_journal_rec *rec,
              const struct xm_mig_action *act)
{
    struct agent_peers *p = &a->d.peers;
    struct migexec_params params;
    struct mig *m;
    const char *peer = rec->side == XM_MIG_SOURCE ? rec->target
                                                  : rec->source;
    int rc;

    if (!p->ops || !p->ops->chan_open)
        return XM_ERR_STATE;
    m = mig_alloc(a, rec->side, peer);
    if (!m)
        return XM_ERR_NOMEM;
    snprintf(m->ident.id, sizeof(m->ident.id), "%s", rec->id);
    snprintf(m->ident.name, sizeof(m->ident.name), "%s", rec->name);
    memcpy(m->ident.uuid, rec->uuid, 16);
    snprintf(m->ident.source, sizeof(m->ident.source), "%s", rec->source);
    snprintf(m->ident.target, sizeof(m->ident.target), "%s", rec->target);
    m->ident.src_domid = rec->src_domid;
    m->ident.dst_domid = rec->dst_domid;
    m->started = true;
    rc = p->ops->chan_open(p->ctx, peer, NULL, &chan_cb, m, &m->ch);
    if (rc) {
        free(m);
        return rc;
    }
    mig_params(m, rec->side, 0, NULL, &params);
    rc = migexec_adopt(&params, rec, act->state, act->domid, &m->x);
    if (rc) {
        mig_free(m);
        return rc;
    }
    m->next = a->migs;
    a->migs = m;
    xm_log_info("migration %s of %s: resumed as %s in state %s", rec->id,
                rec->name, xm_mig_side_name(rec->side),
                xm_mig_state_name(act->state));
    migexec_kick(m->x);
    return XM_OK;
}

/* ---- a restarted source cancels at its target ---- */

struct cancel_tell {
    char id[XM_MIG_ID_MAX + 1];
    char target[XM_PROTO_HOST_MAX + 1];
};

static void
on_cancel_told(void *arg, const struct agent_peer_status *st, unsigned n)
{
    struct cancel_tell *ct = arg;
    const char *status = NULL;

    if (n == 1 && st[0].rc == XM_OK && st[0].status &&
        xm_json_get_str(st[0].status, "status", &status) == XM_OK &&
        strlen(status) < 16 && strspn(status, "abcdefghijklmnopqrstuvwxyz-")
                               == strlen(status))
        xm_log_info("migration %s: %s told it was cancelled, answered %s",
                    ct->id, ct->target, status);
    else
        xm_log_warn("migration %s: cannot tell %s it was cancelled (%s): "
                    "it throws its paused copy away at the end of its "
                    "grace time", ct->id, ct->target,
                    n == 1 && st[0].rc ? (st[0].error ? st[0].error
                                                      : xm_strerror(st[0].rc))
                                       : "a malformed answer");
    free(ct);
}

/*
 * Our journal says a migration was sending when the agent stopped: GO
 * never left, so the guest runs here again (recovery resumes it), but
 * the target may hold a paused copy, waiting for a GO that will not
 * come.  Tell it (MIGRATE_CANCEL) rather than leave that copy, and its
 * memory, there for its grace time.  Best effort: an older or
 * unreachable target keeps its grace time.
 */
static void
cancel_at_target(struct agent *a, const struct xm_journal_rec *rec)
{
    struct agent_peers *p = &a->d.peers;
    struct cancel_tell *ct;
    struct xm_jgen *g;
    const char *text;
    char uuid[33];
    size_t len;
    int rc;

    if (!p->ops || !p->ops->ask || !xm_config_peer(a->d.cfg, rec->target))
        return;
    ct = calloc(1, sizeof(*ct));
    g = xm_jgen_new(false);
    if (!ct || !g) {
        free(ct);
        xm_jgen_free(g);
        return;
    }
    snprintf(ct->id, sizeof(ct->id), "%s", rec->id);
    snprintf(ct->target, sizeof(ct->target), "%s", rec->target);
    xm_mig_uuid_hex(rec->uuid, uuid);
    xm_jgen_map_open(g);
    xm_jgen_kv_str(g, "id", rec->id);
    xm_jgen_kv_str(g, "name", rec->name);
    xm_jgen_kv_str(g, "uuid", uuid);
    xm_jgen_kv_str(g, "why", "the source's agent restarted");
    xm_jgen_map_close(g);
    rc = xm_jgen_finish(g, &text, &len);
    if (!rc)
        rc = p->ops->ask(p->ctx, rec->target, XM_MSG_MIGRATE_CANCEL, text,
                         len, XM_MSG_MIGRATE_STATUS, on_cancel_told, ct);
    xm_jgen_free(g);
    if (rc) {
        xm_log_warn("migration %s: cannot tell %s it was cancelled: %s",
                    rec->id, rec->target, xm_strerror(rc));
        free(ct);
    }
}

static void
recover_one(struct agent *a, const struct xm_journal_entry *e)
{
    struct xm_mig_action acts[XM_MIG_ACTIONS_MAX];
    struct xm_journal_rec rec;
    struct hostview hv;
    char err[256];
    unsigned n = 0;
    int rc;

    rc = xm_journal_load(a->journal, e->id, e->side, &rec, err, sizeof(err));
    if (rc) {
        xm_log_err("journal: %s (left alone)", err);
        return;
    }
    rc = hostview_read(a, &hv);
    if (!rc)
        rc = xm_mig_recover(&rec, &hv.host, acts, XM_MIG_ACTIONS_MAX, &n);
    hostview_dispose(&hv);
    if (rc == XM_ERR_STATE) {
        xm_log_err("migration %s of %s (%s): the host shows what the "
                   "journal cannot explain; nothing touched, an operator "
                   "must look", rec.id, rec.name,
                   xm_mig_side_name(rec.side));
        return;
    }
    if (rc) {
        xm_log_err("migration %s: cannot recover: %s", rec.id,
                   xm_strerror(rc));
        return;
    }
    if (rec.side == XM_MIG_SOURCE && rec.phase == XM_JP_SENDING)
        cancel_at_target(a, &rec);
    if (n == 1 && acts[0].type == XM_MIG_A_ADOPT) {
        rc = recover_adopt(a, &rec, &acts[0]);
        if (rc)
            xm_log_err("migration %s: cannot resume it: %s", rec.id,
                       xm_strerror(rc));
        return;
    }
    for (unsigned i = 0; i < n; i++)
        recover_final(a, &rec, &acts[i]);
    if (n)
        xm_log_info("migration %s of %s: recovered (%s side, was %s)",
                    rec.id, rec.name, xm_mig_side_name(rec.side),
                    xm_jphase_name(rec.phase));
    /* Nothing left to do: keep the record while a source may still ask
     * about it (a day), then forget it. */
    if (n == 0 && (rec.phase == XM_JP_DONE || rec.phase == XM_JP_ABORTED) &&
        xm_clock_wall_s(a->d.clock) - rec.updated_s > JOURNAL_KEEP_S)
        xm_journal_remove(a->journal, rec.id, rec.side);
}

int
agent_mig_init(struct agent *a)
{
    struct xm_journal_entry *ents = NULL;
    char dir[512];
    size_t n = 0;
    int rc;

    snprintf(dir, sizeof(dir), "%s/migrations", a->d.cfg->state_dir);
    if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
        xm_log_err("cannot create %s: %s", dir, strerror(errno));
        return xm_err_from_errno(errno);
    }
    rc = xm_journal_new(dir, NULL, &a->journal);
    if (rc) {
        xm_log_err("cannot open the journal in %s: %s", dir,
                   xm_strerror(rc));
        return rc;
    }
    rc = xm_journal_list(a->journal, &ents, &n);
    if (rc) {
        xm_log_err("cannot list the journal in %s: %s", dir,
                   xm_strerror(rc));
        return rc;
    }
    progress_start(a);
    for (size_t i = 0; i < n; i++)
        recover_one(a, &ents[i]);
    free(ents);
    return XM_OK;
}

void
agent_mig_dispose(struct agent *a)
{
    while (a->migs) {
        struct mig *m = a->migs;

        a->migs = m->next;
        if (m->x && migexec_busy(m->x)) {
            /* libxl would call into freed memory: leave it to the
             * process exit, the journal resumes it at the next start */
            xm_log_warn("migration %s still running at exit",
                        m->ident.id);
            continue;
        }
        mig_free(m);
    }
    xm_loop_cancel_timer(a->d.loop, a->down_timer);
    a->down_timer = NULL;
    progress_stop(a);
    xm_journal_free(a->journal);
    a->journal = NULL;
}
