/*
 * agent_drain.c -- drain, undrain, and a peer's pull.
 *
 * Drain: cordon this host (state "draining", kept across restarts), ask
 * the peers for their live state, plan with the pure planner (never an
 * earlier plan), refuse when guests are blocked unless told to skip
 * them, give each guest its maintenance notice in xenstore and wait for
 * the acknowledgements or the notice time, then run the migrations, at
 * most --parallel streams at once (a move whose stream ended waits on
 * its target, not on the link: the next one starts), each bounded by
 * --timeout and a progress watchdog.  With --shutdown-blocked the
 * guests that cannot move are asked to power off instead (agent_stop.c
 * keeps their configs).  Ctrl-C (job/<id>/cancel) stops starting new
 * ones and rolls back those not yet past the point of no return.
 * Progress goes to job/<id>/guest/<migration id> a few times a second;
 * the result says, per guest, where it ended.
 *
 * Undrain: uncordon, then (unless --stay) ask every peer holding guests
 * that left this host (state_dir/away) to send them home (MIGRATE_PULL);
 * the peers start the migrations and this host follows them arriving;
 * the guests a drain shut down are started again here (also with
 * --stay: they are this host's own).
 * A pull is the peer's side of that: a small drain without a job.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent_int.h"
#include "xm_err.h"
#include "xm_log.h"
#include "xm_plan.h"
#include "xm_schema.h"

#define DEFAULT_POOL "Pool-0"
#define TICK_MS 250
#define WATCHDOG_MS (120 * 1000)   /* no stream byte for this long */
#define UNDRAIN_MIN_S 600
#define MOVE_STATE_MAX 16


struct plan_build {
    struct xm_plan_host *hosts;
    size_t n_hosts;
    struct xm_plan_guest *guests;
    size_t n_guests;
    struct xm_domain *doms;
    size_t n_doms;
    const char *pools[1];
};

static void
plan_build_dispose(struct plan_build *b)
{
    free(b->hosts);
    free(b->guests);
    free(b->doms);
}

/* vCPUs a peer runs, from its guest list. */
static unsigned
peer_vcpus(const xm_json *status)
{
    const xm_json *guests = xm_json_get(status, "guests");
    unsigned total = 0;

    for (size_t i = 0; i < xm_json_len(guests); i++) {
        uint64_t v;
        if (xm_json_get_uint(xm_json_at(guests, i), "vcpus", &v) == XM_OK &&
            v < 4096)
            total += (unsigned)v;
    }
    return total;
}

static int
build_plan_input(struct job *job, const struct agent_peer_status *st,
                 unsigned n_st, struct plan_build *b)
{
    struct agent *a = job->a;
    struct xm_hostinfo info;
    int rc;

    b->pools[0] = DEFAULT_POOL;
    rc = a->d.hv->ops->hostinfo(a->d.hv->ctx, &info);
    if (rc)
        return rc;
    rc = a->d.hv->ops->list_domains(a->d.hv->ctx, &b->doms, &b->n_doms);
    if (rc)
        return rc;
    b->hosts = calloc(n_st + 1, sizeof(*b->hosts));
    b->guests = calloc(b->n_doms ? b->n_doms : 1, sizeof(*b->guests));
    if (!b->hosts || !b->guests)
        return XM_ERR_NOMEM;

    /* this host: the source, never a target */
    b->hosts[0].name = a->d.cfg->host_name;
    b->hosts[0].mem_free_kib = info.free_kib;
    b->hosts[0].n_pcpus = info.nr_cpus;
    b->hosts[0].is_source = true;
    b->hosts[0].cpupools = b->pools;
    b->hosts[0].n_cpupools = 1;
    b->n_hosts = 1;

    /* reachable peers, with what they said of themselves */
    for (unsigned i = 0; i < n_st; i++) {
        struct xm_plan_host *h = &b->hosts[b->n_hosts];
        const char *state = NULL;
        uint64_t free_kib = 0, cpus = 0;

        if (st[i].rc != XM_OK)
            continue;
        if (xm_json_get_uint(st[i].status, "free_kib", &free_kib) ||
            xm_json_get_uint(st[i].status, "nr_cpus", &cpus) ||
            xm_json_get_str(st[i].status, "state", &state))
            continue;           /* a malformed answer: not a target */
        h->name = st[i].name;
        h->mem_free_kib = free_kib;
        h->n_pcpus = cpus > 65536 ? 65536 : (unsigned)cpus;
        h->n_vcpus = peer_vcpus(st[i].status);
        h->cordoned = strcmp(state, "active") != 0;
        h->cpupools = b->pools;
        h->n_cpupools = 1;
        b->n_hosts++;
    }

    /* guests: every domain but those already mid-migration */
    for (size_t i = 0; i < b->n_doms; i++) {
        struct xm_domain *d = &b->doms[i];
        struct xm_plan_guest *gu = &b->guests[b->n_guests];

        if (d->flags & (XM_DOM_TRANSIENT | XM_DOM_DYING))
            continue;
        /* one still running without its xenstore entries: blocked
         * (XM_DOM_NOMIGRATE), as "(null):DOMID" (xl says "(null)") */
        if (d->flags & XM_DOM_NAMELESS)
            snprintf(d->name, sizeof(d->name), "(null):%u", d->domid);
        gu->name = d->name;
        gu->domid = d->domid;
        gu->mem_kib = d->mem_kib ? d->mem_kib : 1;
        gu->vcpus = d->vcpus ? d->vcpus : 1;
        gu->cpupool = d->cpupool[0] && strcmp(d->cpupool, DEFAULT_POOL) ?
                      d->cpupool : NULL;
        gu->pci_passthrough = d->flags & XM_DOM_PCI;
        gu->local_storage = d->flags & XM_DOM_LOCAL_DISK;
        gu->unmovable = d->flags & XM_DOM_NOMIGRATE;
        b->n_guests++;
    }
    return XM_OK;
}

static void
gen_reasons(struct xm_jgen *g, unsigned reasons)
{
    xm_jgen_key(g, "reasons");
    xm_jgen_array_open(g);
    for (unsigned bit = 1; bit && bit <= XM_PLAN_R_ALL; bit <<= 1)
        if (reasons & bit)
            xm_jgen_str(g, xm_plan_reason_name(bit));
    xm_jgen_array_close(g);
}

static void
gen_targets(struct xm_jgen *g, const struct agent_peer_status *st,
            unsigned n_st)
{
    xm_jgen_key(g, "targets");
    xm_jgen_array_open(g);
    for (unsigned i = 0; i < n_st; i++) {
        const char *state = NULL;
        uint64_t free_kib = 0;

        xm_jgen_map_open(g);
        xm_jgen_kv_str(g, "name", st[i].name);
        xm_jgen_kv_bool(g, "reachable", st[i].rc == XM_OK);
        if (st[i].rc == XM_OK) {
            xm_json_get_str(st[i].status, "state", &state);
            xm_json_get_uint(st[i].status, "free_kib", &free_kib);
            xm_jgen_kv_str(g, "state", state ? state : "unknown");
            xm_jgen_kv_uint(g, "free_kib", free_kib);
            xm_jgen_key(g, "error");
            xm_jgen_null(g);
        } else {
            xm_jgen_kv_str(g, "state", "unreachable");
            xm_jgen_kv_str(g, "error", st[i].error ? st[i].error
                                                   : xm_strerror(st[i].rc));
        }
        xm_jgen_map_close(g);
    }
    xm_jgen_array_close(g);
}

static void
gen_blocked(struct xm_jgen *g, const struct plan_build *b,
            const struct xm_plan *plan, const char *action,
            const char *state)
{
    xm_jgen_key(g, "blocked");
    xm_jgen_array_open(g);
    for (size_t i = 0; i < plan->n_results; i++) {
        const struct xm_plan_result *r = &plan->results[i];
        if (r->target >= 0)
            continue;
        xm_jgen_map_open(g);
        xm_jgen_kv_str(g, "guest", b->guests[i].name);
        xm_jgen_kv_uint(g, "domid", b->guests[i].domid);
        xm_jgen_kv_uint(g, "mem_kib", b->guests[i].mem_kib);
        gen_reasons(g, r->reasons);
        xm_jgen_kv_str(g, "detail", r->detail ? r->detail : "");
        if (action)
            xm_jgen_kv_str(g, "action", action);
        if (state)
            xm_jgen_kv_str(g, "state", state);
        xm_jgen_map_close(g);
    }
    xm_jgen_array_close(g);
}

/* The dry run's answer: the plan, nothing done. */
static void
gen_plan(struct xm_jgen *g, struct job *job, const struct plan_build *b,
         const struct xm_plan *plan, const struct agent_peer_status *st,
         unsigned n_st, bool refused)
{
    xm_jgen_map_open(g);
    xm_jgen_kv_str(g, "host", job->a->d.cfg->host_name);
    xm_jgen_kv_bool(g, "dry_run", job->req.dry_run);
    if (refused) {
        xm_jgen_kv_bool(g, "refused", true);
        xm_jgen_kv_str(g, "state", job->a->state);
    }
    gen_targets(g, st, n_st);
    xm_jgen_key(g, "moves");
    xm_jgen_array_open(g);
    for (size_t i = 0; i < plan->n_results; i++) {
        const struct xm_plan_result *r = &plan->results[i];
        if (r->target < 0)
            continue;
        xm_jgen_map_open(g);
        xm_jgen_kv_str(g, "guest", b->guests[i].name);
        xm_jgen_kv_uint(g, "domid", b->guests[i].domid);
        xm_jgen_kv_uint(g, "mem_kib", b->guests[i].mem_kib);
        xm_jgen_kv_uint(g, "vcpus", b->guests[i].vcpus);
        xm_jgen_kv_str(g, "to", b->hosts[r->target].name);
        xm_jgen_kv_str(g, "state", "planned");
        xm_jgen_map_close(g);
    }
    xm_jgen_array_close(g);
    if (refused)
        gen_blocked(g, b, plan, "refused", NULL);
    else if (job->req.blocked == XM_BLOCKED_SHUTDOWN)
        gen_blocked(g, b, plan, "shutdown", "planned");
    else if (job->req.blocked == XM_BLOCKED_SKIP)
        gen_blocked(g, b, plan, "skipped", NULL);
    else
        gen_blocked(g, b, plan, NULL, NULL);
    xm_jgen_map_close(g);
}

/* ---- the running drain ---- */

enum drain_kind { D_DRAIN, D_UNDRAIN, D_PULL };
enum move_st { MV_QUEUED, MV_RUNNING, MV_FINISHED };

struct move {
    char guest[XM_DOMNAME_MAX + 1];
    struct xm_domain dom;       /* drain, pull: the guest here */
    char from[XM_PROTO_HOST_MAX + 1];
    char to[XM_PROTO_HOST_MAX + 1];
    char id[XM_MIG_ID_MAX + 1];
    uint8_t uuid[16];
    uint64_t mem_kib;
    unsigned vcpus;
    struct mig *m;
    enum move_st st;
    bool arrived;               /* undrain: its target migration began */
    bool retried;               /* drain, pull: tried a second time */
    bool acked;                 /* drain: acknowledged the notice */
    char state[MOVE_STATE_MAX]; /* the final move state */
    char outcome[32];
    char why[XM_MIG_WHY_MAX];
    uint64_t bytes;
    struct migexec_stats stats; /* stream and downtime (mig_stats_json) */
    int64_t t0_ms, t1_ms;
    uint64_t wd_bytes;          /* watchdog: bytes at wd_ms */
    int64_t wd_ms;
    char *written;              /* last value of its progress key */
};

struct drain {
    struct agent *a;
    struct job *job;            /* NULL for a pull */
    enum drain_kind kind;
    char compress[XM_REQ_COMPRESS_MAX + 1]; /* the streams' compression
                                 * ("": the pool default) */
    struct move *mv;
    size_t n;
    struct stop **st;           /* drain: guests to shut down; undrain:
                                 * guests to start again */
    size_t n_st;
    unsigned parallel, timeout_s;
    char *targets_json, *blocked_json;
    bool cancelled;
    char prev_state[32];        /* drain: the state before cordoning */
    char prev_reason[256];
    /* notice */
    bool noticing;
    unsigned notice_s;
    int64_t notice_t0_ms, notice_end_ms;
    char notice_id[XM_REQ_ID_MAX + 1];
    /* undrain */
    unsigned pulls_pending;
    int64_t deadline_ms;
    struct xm_jgen *refused;    /* undrain: {"guest","from","why"} items */
    struct xm_jgen *unreachable;/* undrain: {"host","error"} items */
    struct xm_loop_timer *tick;
    struct drain *next;         /* the agent's pulls */
};

static void drain_free(struct drain *d);
static void drain_arm(struct drain *d);
static void drain_kick(struct drain *d);

static int64_t
now_ms(const struct drain *d)
{
    return xm_clock_mono_ms(d->a->d.clock);
}

static unsigned
move_percent(const struct move *mv, const char *phase)
{
    uint64_t total = mv->mem_kib * 1024;

    if (!strcmp(phase, "done"))
        return 100;
    if (!strcmp(phase, "finishing"))
        return 99;
    if (strcmp(phase, "sending") || !total)
        return 0;
    return mv->bytes >= total ? 99 : (unsigned)(mv->bytes * 100 / total);
}

static const char *
move_phase(const struct drain *d, const struct move *mv)
{
    const struct xm_mig *mm;

    if (mv->st == MV_FINISHED)
        return strcmp(mv->state, "done") ? "failed" : "done";
    if (mv->st == MV_QUEUED || !mv->m || !mv->m->x)
        return d->noticing ? "notice" : "queued";
    mm = migexec_machine(mv->m->x);
    switch (mm->state) {
    case XM_MIG_S_IDLE:
    case XM_MIG_S_JOURNAL_START:
    case XM_MIG_S_OFFERED:
    case XM_MIG_T_IDLE:
    case XM_MIG_T_CHECKING:
    case XM_MIG_T_JOURNAL_RECV:
        return "offered";
    case XM_MIG_S_SENDING:
    case XM_MIG_T_RECEIVING:
        return "sending";
    default:
        return "finishing";
    }
}

/* One guest's progress key, written when it changed. */
static void
move_publish(struct drain *d, struct move *mv)
{
    struct xm_jgen *g;
    char path[XM_XS_PATH_MAX];
    const char *phase = move_phase(d, mv);
    char *text = NULL;

    if (!d->job)
        return;
    g = xm_jgen_new(false);
    if (!g)
        return;
    xm_jgen_map_open(g);
    xm_jgen_kv_str(g, "guest", mv->guest);
    xm_jgen_kv_uint(g, "domid", mv->dom.domid);
    xm_jgen_kv_str(g, "from", mv->from);
    xm_jgen_kv_str(g, "to", mv->to);
    xm_jgen_kv_uint(g, "mem_kib", mv->mem_kib);
    xm_jgen_kv_str(g, "phase", phase);
    xm_jgen_kv_uint(g, "percent", move_percent(mv, phase));
    xm_jgen_kv_uint(g, "bytes", mv->bytes);
    xm_jgen_kv_str(g, "state", mv->st == MV_FINISHED ? mv->state
                                                     : "pending");
    xm_jgen_kv_str(g, "why", mv->why);
    mig_stats_json(g, &mv->stats);
    xm_jgen_map_close(g);
    if (xm_jgen_take(g, &text) == XM_OK &&
        (!mv->written || strcmp(text, mv->written)) &&
        xm_xs_path(path, "/tool/xenmaint/job/%s/guest/%s", d->job->id,
                   mv->id) == XM_OK &&
        strlen(text) <= XM_XS_VALUE_MAX &&
        xm_xs_write_str(d->a->d.xs, XM_XS_NO_TXN, path, text) == XM_OK) {
        free(mv->written);
        mv->written = text;
        text = NULL;
    }
    free(text);
    xm_jgen_free(g);
}

static void
move_finish(struct move *mv, const char *state, const char *outcome,
            const char *why, int64_t t1_ms)
{
    mv->st = MV_FINISHED;
    snprintf(mv->state, sizeof(mv->state), "%s", state);
    snprintf(mv->outcome, sizeof(mv->outcome), "%s", outcome);
    if (why)
        snprintf(mv->why, sizeof(mv->why), "%s", why);
    mv->t1_ms = t1_ms;
    mv->m = NULL;
}

/*
 * A migration that failed before its stream began (no byte of the guest
 * sent: the connection, the offer or the target's check failed) left
 * the guest untouched where it runs; it is tried once more, under a new
 * id, unless the drain is being cancelled.  Its first attempt's
 * progress key says so.
 */
static bool
move_retry(struct drain *d, struct move *mv, const struct mig *m)
{
    size_t len = strlen(mv->id);

    if (mv->retried || d->cancelled || d->a->stopping ||
        m->res.outcome != XM_MIG_FAILED_BEFORE || m->bytes != 0 ||
        len + 2 > XM_MIG_ID_MAX)
        return false;
    xm_log_warn("%s: migration %s of %s failed before its stream began "
                "(%s): trying once more", d->kind == D_DRAIN ? "drain"
                : "pull", mv->id, mv->guest, m->why);
    move_finish(mv, "stayed", xm_mig_outcome_name(m->res.outcome), NULL,
                m->t1_ms);
    snprintf(mv->why, sizeof(mv->why), "%.100s (tried again)", m->why);
    move_publish(d, mv);
    memcpy(mv->id + len, "-r", 3);     /* fits: checked above */
    mv->st = MV_QUEUED;
    mv->retried = true;
    mv->state[0] = mv->outcome[0] = mv->why[0] = '\0';
    mv->bytes = 0;
    memset(&mv->stats, 0, sizeof(mv->stats));
    free(mv->written);
    mv->written = NULL;
    return true;
}

/* A migration of ours reports (drain, pull: the source side). */
static void
on_mig(void *arg, struct mig *m, bool final)
{
    struct drain *d = arg;

    for (size_t i = 0; i < d->n; i++) {
        struct move *mv = &d->mv[i];

        if (mv->m != m)
            continue;
        mv->bytes = m->bytes;
        mv->stats = m->stats;
        snprintf(mv->why, sizeof(mv->why), "%s", m->why);
        if (final && move_retry(d, mv, m)) {
            drain_kick(d);
            return;
        }
        if (final) {
            move_finish(mv, mig_move_state(m),
                        xm_mig_outcome_name(m->res.outcome), m->why,
                        m->t1_ms);
            drain_kick(d);
        } else if (m->res.outcome == XM_MIG_UNRESOLVED) {
            snprintf(mv->outcome, sizeof(mv->outcome), "%s",
                     xm_mig_outcome_name(m->res.outcome));
        }
        return;
    }
}

/* The undrain follows its guests arriving as target migrations. */
void
agent_drain_on_target(struct agent *a, struct mig *m, bool final)
{
    struct drain *d = a->drain;

    if (!d || d->kind != D_UNDRAIN)
        return;
    for (size_t i = 0; i < d->n; i++) {
        struct move *mv = &d->mv[i];

        if (mv->st == MV_FINISHED || strcmp(mv->id, m->ident.id) ||
            strcmp(mv->from, m->peer))
            continue;
        mv->arrived = true;
        mv->st = MV_RUNNING;
        mv->m = final ? NULL : m;
        mv->bytes = m->bytes;
        mv->stats = m->stats;
        if (final) {
            move_finish(mv, mig_move_state(m),
                        xm_mig_outcome_name(m->res.outcome), m->why,
                        m->t1_ms);
            drain_kick(d);
        }
        return;
    }
}

/* ---- notices ---- */

/* Give path the schema's permissions for domid (see schema.txt). */
static int
set_schema_perms(struct agent *a, const char *path, uint32_t domid)
{
    const struct xm_schema_key *key = xm_schema_find(path);
    struct xm_xs_perm perms[XM_XS_PERMS_MAX];
    unsigned np;
    int rc;

    if (!key)
        return XM_ERR_INVAL;
    rc = xm_schema_perms(key, domid, perms, XM_XS_PERMS_MAX, &np);
    if (!rc)
        rc = a->d.xs->ops->set_perms(a->d.xs->ctx, XM_XS_NO_TXN, path,
                                     perms, np);
    return rc;
}

static void
notice_write(struct drain *d, const struct xm_domain *dom, const char *type)
{
    struct agent *a = d->a;
    char dir[XM_XS_PATH_MAX], path[XM_XS_PATH_MAX];
    int64_t now = xm_clock_wall_s(a->d.clock);
    struct xm_jgen *g = xm_jgen_new(false);
    const char *text;
    size_t len;
    int rc;

    if (!g)
        return;
    xm_jgen_map_open(g);
    xm_jgen_kv_str(g, "id", d->notice_id);
    xm_jgen_kv_str(g, "type", type);
    xm_jgen_kv_int(g, "not-before", now + d->notice_s);
    xm_jgen_kv_int(g, "deadline", now + d->notice_s + d->timeout_s);
    xm_jgen_map_close(g);
    rc = xm_jgen_finish(g, &text, &len);
    if (!rc)
        rc = xm_xs_path(dir, "/local/domain/%u/xenmaint", dom->domid);
    if (!rc)
        rc = xm_xs_path(path, "/local/domain/%u/xenmaint/notice",
                        dom->domid);
    if (!rc)
        rc = a->d.xs->ops->mkdir(a->d.xs->ctx, XM_XS_NO_TXN, dir);
    if (!rc)
        rc = set_schema_perms(a, dir, dom->domid);
    if (!rc)
        rc = xm_xs_write_str(a->d.xs, XM_XS_NO_TXN, path, text);
    if (!rc)
        rc = set_schema_perms(a, path, dom->domid);
    if (rc)
        xm_log_warn("drain: cannot give %s its notice: %s", dom->name,
                    xm_strerror(rc));
    xm_jgen_free(g);
}

static bool
notice_acked(struct drain *d, uint32_t domid)
{
    char path[XM_XS_PATH_MAX];
    char *value = NULL;
    bool ok;

    if (xm_xs_path(path, "/local/domain/%u/data/xenmaint-ack", domid) ||
        xm_xs_read(d->a->d.xs, XM_XS_NO_TXN, path, &value))
        return false;
    ok = !strcmp(value, d->notice_id) || !strcmp(value, "ack");
    free(value);
    return ok;
}

static void
notice_clear(struct drain *d, uint32_t domid)
{
    char path[XM_XS_PATH_MAX];

    if (xm_xs_path(path, "/local/domain/%u/xenmaint/notice",
                   domid) == XM_OK)
        d->a->d.xs->ops->rm(d->a->d.xs->ctx, XM_XS_NO_TXN, path);
}

/* ---- results ---- */

/* Milliseconds written as seconds, without binary noise. */
static void
gen_seconds(struct xm_jgen *g, const char *key, int64_t ms)
{
    char num[32];
    int len = snprintf(num, sizeof(num), "%lld.%03lld",
                       (long long)(ms / 1000), (long long)(ms % 1000));

    xm_jgen_key(g, key);
    xm_jgen_raw(g, num, (size_t)len);
}

static void
gen_move(struct xm_jgen *g, const struct drain *d, const struct move *mv)
{
    xm_jgen_map_open(g);
    xm_jgen_kv_str(g, "guest", mv->guest);
    if (d->kind == D_DRAIN) {
        xm_jgen_kv_uint(g, "domid", mv->dom.domid);
        xm_jgen_kv_uint(g, "mem_kib", mv->mem_kib);
        xm_jgen_kv_uint(g, "vcpus", mv->vcpus);
    } else {
        xm_jgen_kv_str(g, "from", mv->from);
    }
    xm_jgen_kv_str(g, "to", mv->to);
    xm_jgen_kv_str(g, "id", mv->id);
    xm_jgen_kv_str(g, "state", mv->st == MV_FINISHED ? mv->state
                               : mv->outcome[0] ? "unresolved"
                               : "cancelled");
    xm_jgen_kv_str(g, "outcome", mv->outcome[0] ? mv->outcome : "none");
    xm_jgen_kv_str(g, "why", mv->why);
    xm_jgen_kv_uint(g, "bytes", mv->bytes);
    gen_seconds(g, "seconds", mv->t1_ms > mv->t0_ms && mv->t0_ms
                              ? mv->t1_ms - mv->t0_ms : 0);
    mig_stats_json(g, &mv->stats);
    xm_jgen_map_close(g);
}

static bool
host_empty(struct agent *a)
{
    struct xm_domain *doms = NULL;
    size_t n = 0;
    bool empty;

    if (a->d.hv->ops->list_domains(a->d.hv->ctx, &doms, &n))
        return false;
    empty = true;
    for (size_t i = 0; i < n; i++)
        if (!(doms[i].flags & XM_DOM_DYING))
            empty = false;
    free(doms);
    return empty;
}

static void
raw_array(struct xm_jgen *g, const char *key, struct xm_jgen *items)
{
    const char *text = "[]";
    size_t len = 2;

    xm_jgen_key(g, key);
    if (items) {
        xm_jgen_array_close(items);
        if (xm_jgen_finish(items, &text, &len) != XM_OK) {
            text = "[]";
            len = 2;
        }
    }
    xm_jgen_raw(g, text, len);
}

/* The stops as a drain's "blocked" array (the guests it shut down, or
 * tried to) or an undrain's "started" array. */
static void
gen_stopped(struct xm_jgen *g, const struct drain *d)
{
    xm_jgen_key(g, d->kind == D_DRAIN ? "blocked" : "started");
    xm_jgen_array_open(g);
    for (size_t i = 0; i < d->n_st; i++) {
        const struct stop *s = d->st[i];

        xm_jgen_map_open(g);
        xm_jgen_kv_str(g, "guest", s->dom.name);
        if (d->kind == D_DRAIN) {
            xm_jgen_kv_uint(g, "domid", s->dom.domid);
            xm_jgen_kv_uint(g, "mem_kib", s->dom.mem_kib);
            gen_reasons(g, s->reasons);
            xm_jgen_kv_str(g, "detail", s->detail);
            xm_jgen_kv_str(g, "action", "shutdown");
        }
        /* an undrain that ends while a start runs (agent stopping) */
        xm_jgen_kv_str(g, "state", !strcmp(s->state, "starting")
                                   ? "failed" : s->state);
        xm_jgen_kv_str(g, "why", s->why);
        xm_jgen_map_close(g);
    }
    xm_jgen_array_close(g);
}

static void
drain_finish(struct drain *d)
{
    struct agent *a = d->a;
    struct xm_jgen *g;
    unsigned n_done = 0;

    for (size_t i = 0; i < d->n; i++) {
        struct move *mv = &d->mv[i];

        if (mv->m)
            mv->m->notify = NULL;   /* unresolved: it goes on alone */
        if (mv->st == MV_FINISHED && !strcmp(mv->state, "done"))
            n_done++;
        move_publish(d, mv);
        if (d->kind == D_DRAIN && d->notice_id[0])
            notice_clear(d, mv->dom.domid);
    }
    for (size_t i = 0; i < d->n_st; i++)
        if (d->kind == D_DRAIN && d->notice_id[0] &&
            strcmp(d->st[i]->state, "shut-down"))
            notice_clear(d, d->st[i]->dom.domid);
    if (d->kind == D_DRAIN) {
        if (host_empty(a))
            agent_set_state(a, "drained", "");
        else
            agent_set_state(a, "cordoned", "drain incomplete: guests "
                            "remain (xl undrain reopens the host)");
    }
    if (!d->job) {
        xm_log_info("pull for %s: %u of %zu guests sent home",
                    d->n ? d->mv[0].to : "?", n_done, d->n);
        drain_free(d);
        return;
    }
    g = xm_jgen_new(false);
    if (!g) {
        job_finish(d->job, XM_ERR_NOMEM, NULL, NULL);
        d->job = NULL;
        drain_free(d);
        return;
    }
    xm_jgen_map_open(g);
    xm_jgen_kv_str(g, "host", a->d.cfg->host_name);
    if (d->kind == D_DRAIN) {
        xm_jgen_kv_bool(g, "dry_run", false);
    } else {
        xm_jgen_kv_bool(g, "stay", d->job->req.stay);
    }
    xm_jgen_kv_str(g, "state", a->state);
    if (d->targets_json) {
        xm_jgen_key(g, "targets");
        xm_jgen_raw(g, d->targets_json, strlen(d->targets_json));
    }
    xm_jgen_key(g, "moves");
    xm_jgen_array_open(g);
    for (size_t i = 0; i < d->n; i++)
        gen_move(g, d, &d->mv[i]);
    xm_jgen_array_close(g);
    if (d->kind == D_DRAIN) {
        if (d->n_st) {
            gen_stopped(g, d);
        } else {
            xm_jgen_key(g, "blocked");
            if (d->blocked_json)
                xm_jgen_raw(g, d->blocked_json, strlen(d->blocked_json));
            else
                xm_jgen_raw(g, "[]", 2);
        }
        if (d->notice_id[0]) {
            xm_jgen_key(g, "notice");
            xm_jgen_map_open(g);
            xm_jgen_kv_uint(g, "seconds", d->notice_s);
            xm_jgen_key(g, "acked");
            xm_jgen_array_open(g);
            for (size_t i = 0; i < d->n; i++)
                if (d->mv[i].acked)
                    xm_jgen_str(g, d->mv[i].guest);
            for (size_t i = 0; i < d->n_st; i++)
                if (d->st[i]->acked)
                    xm_jgen_str(g, d->st[i]->dom.name);
            xm_jgen_array_close(g);
            gen_seconds(g, "waited_s", d->notice_end_ms > d->notice_t0_ms
                                       ? d->notice_end_ms - d->notice_t0_ms
                                       : 0);
            xm_jgen_map_close(g);
        }
    } else {
        raw_array(g, "refused", d->refused);
        raw_array(g, "unreachable", d->unreachable);
        gen_stopped(g, d);
    }
    xm_jgen_map_close(g);
    xm_log_info("%s: %u of %zu guests moved",
                d->kind == D_DRAIN ? "drain" : "undrain", n_done, d->n);
    job_finish_json(d->job, g);
    xm_jgen_free(g);
    d->job = NULL;
    drain_free(d);
}

static void
drain_free(struct drain *d)
{
    struct agent *a = d->a;

    if (a->drain == d)
        a->drain = NULL;
    for (struct drain **pp = &a->pulls; *pp; pp = &(*pp)->next) {
        if (*pp == d) {
            *pp = d->next;
            break;
        }
    }
    xm_loop_cancel_timer(a->d.loop, d->tick);
    for (size_t i = 0; i < d->n; i++) {
        if (d->mv[i].m)
            d->mv[i].m->notify = NULL;
        free(d->mv[i].written);
    }
    free(d->mv);
    for (size_t i = 0; i < d->n_st; i++)
        stop_free(d->st[i]);
    free(d->st);
    free(d->targets_json);
    free(d->blocked_json);
    xm_jgen_free(d->refused);
    xm_jgen_free(d->unreachable);
    free(d);
}

/* ---- the tick: notice, start, watch, publish, finish ---- */

static bool
cancel_asked(struct drain *d)
{
    char path[XM_XS_PATH_MAX];
    char *value = NULL;
    bool yes;

    if (!d->job ||
        xm_xs_path(path, "/tool/xenmaint/job/%s/cancel", d->job->id) ||
        xm_xs_read(d->a->d.xs, XM_XS_NO_TXN, path, &value))
        return false;
    yes = !strcmp(value, "1");
    free(value);
    return yes;
}

static void
move_start(struct drain *d, struct move *mv)
{
    int rc;

    mv->st = MV_RUNNING;
    mv->t0_ms = now_ms(d);
    mv->wd_ms = mv->t0_ms;
    mv->wd_bytes = 0;
    rc = mig_start_source(d->a, &mv->dom, mv->to, mv->id, d->timeout_s,
                          d->job ? d->job->req.compress : d->compress,
                          on_mig, d, &mv->m);
    if (rc) {
        char why[XM_MIG_WHY_MAX];

        snprintf(why, sizeof(why), "cannot start: %s", xm_strerror(rc));
        move_finish(mv, "stayed", "failed-before-go", why, now_ms(d));
    }
}

static void
drain_step(struct drain *d)
{
    int64_t now = now_ms(d);
    unsigned running = 0, open = 0, pct = 0;

    if (!d->cancelled && (d->a->stopping || cancel_asked(d))) {
        d->cancelled = true;
        xm_log_warn("%s cancelled: no new migrations; running ones finish "
                    "or roll back", d->kind == D_DRAIN ? "drain"
                                                       : "undrain");
        for (size_t i = 0; i < d->n; i++)
            if (d->mv[i].st == MV_RUNNING && d->mv[i].m)
                mig_abort(d->mv[i].m, "cancelled by the operator");
    }
    if (d->noticing) {
        bool all = true;

        for (size_t i = 0; i < d->n; i++) {
            if (!d->mv[i].acked)
                d->mv[i].acked = notice_acked(d, d->mv[i].dom.domid);
            all = all && d->mv[i].acked;
        }
        for (size_t i = 0; i < d->n_st; i++) {
            if (!d->st[i]->acked)
                d->st[i]->acked = notice_acked(d, d->st[i]->dom.domid);
            all = all && d->st[i]->acked;
        }
        if (all || now >= d->notice_end_ms || d->cancelled) {
            d->noticing = false;
            d->notice_end_ms = now;
        }
    }
    /* drain: the guests to shut down, all at once after the notice
     * (an undrain started its guests when it began) */
    for (size_t i = 0; i < d->n_st; i++) {
        struct stop *s = d->st[i];

        if (d->kind != D_DRAIN || strcmp(s->state, "queued"))
            continue;
        if (d->cancelled) {
            snprintf(s->state, sizeof(s->state), "cancelled");
            snprintf(s->why, sizeof(s->why), "not asked to shut down: "
                     "the drain was cancelled");
        } else if (!d->noticing) {
            stop_shutdown(s, now);
        }
    }
    if (d->kind == D_DRAIN)
        stops_poll(d->a, d->st, d->n_st, d->timeout_s, now);
    for (size_t i = 0; i < d->n_st; i++)
        if (!stop_finished(d->st[i]))
            open++;
    /* --parallel bounds the streams: a move whose stream ended (its
     * guest suspended for good, or moved: the target restores it, then
     * GO, DONE, our copy destroyed) frees its slot, so that the next
     * guest's offer and stream start meanwhile -- once that guest runs
     * again (agent_mig.c's guest_down: an offer has the target create
     * a domain, work the restore of the guest that is down would wait
     * on; its stream would be held meanwhile anyway) */
    for (size_t i = 0; i < d->n; i++)
        if (d->mv[i].st == MV_RUNNING &&
            (!d->mv[i].m || mig_streaming(d->mv[i].m)))
            running++;
    for (size_t i = 0; i < d->n; i++) {
        struct move *mv = &d->mv[i];

        if (d->kind != D_UNDRAIN && mv->st == MV_QUEUED && !d->noticing &&
            !d->cancelled && running < d->parallel && !d->a->guest_down) {
            move_start(d, mv);
            if (mv->st == MV_RUNNING)
                running++;
        }
        if (mv->st == MV_RUNNING && mv->m) {
            mv->bytes = mig_bytes(mv->m);
            mig_stats(mv->m, &mv->stats);
            if (mv->bytes != mv->wd_bytes) {
                mv->wd_bytes = mv->bytes;
                mv->wd_ms = now;
            } else if (d->kind != D_UNDRAIN &&
                       now - mv->wd_ms > WATCHDOG_MS &&
                       mig_abort(mv->m, "no progress for 120 s") == XM_OK) {
                mv->wd_ms = now;
            }
        }
        if (d->kind == D_UNDRAIN && mv->st != MV_FINISHED &&
            now >= d->deadline_ms && !mv->arrived)
            move_finish(mv, "stayed", "none", "did not arrive in time",
                        now);
        if (mv->st != MV_FINISHED &&
            !(mv->outcome[0] && !strcmp(mv->outcome, "unresolved")) &&
            !(d->cancelled && mv->st == MV_QUEUED))
            open++;
        pct += move_percent(mv, move_phase(d, mv));
        move_publish(d, mv);
    }
    if (d->job)
        job_progress(d->job, d->n ? pct / (unsigned)d->n : 100);
    if (open == 0 && d->pulls_pending == 0) {
        for (size_t i = 0; i < d->n; i++)
            if (d->mv[i].st == MV_QUEUED)
                snprintf(d->mv[i].why, sizeof(d->mv[i].why), "%s",
                         "not started: cancelled");
        drain_finish(d);
        return;
    }
    drain_arm(d);
}

static void
on_tick(void *arg)
{
    struct drain *d = arg;

    d->tick = NULL;             /* fired: gone */
    drain_step(d);
}

static void
drain_arm(struct drain *d)
{
    if (!d->tick &&
        xm_loop_add_timer(d->a->d.loop, TICK_MS, on_tick, d, &d->tick))
        xm_log_err("drain: cannot arm its timer");
}

/* A move ended: its slot is free for the next guest, or the drain is
 * over; step from the loop at once rather than at the next tick (a
 * quarter of a second each time, which adds up over a host's guests).
 * Never from here: the migration that reports is still on the stack. */
static void
drain_kick(struct drain *d)
{
    xm_loop_cancel_timer(d->a->d.loop, d->tick);
    d->tick = NULL;
    if (xm_loop_add_timer(d->a->d.loop, 0, on_tick, d, &d->tick))
        xm_log_err("drain: cannot arm its timer");
}

void
agent_drain_kick(struct agent *a)
{
    if (a->drain)
        drain_kick(a->drain);
    for (struct drain *d = a->pulls; d; d = d->next)
        drain_kick(d);
}

static struct drain *
drain_new(struct agent *a, struct job *job, enum drain_kind kind)
{
    struct drain *d = calloc(1, sizeof(*d));

    if (!d)
        return NULL;
    d->a = a;
    d->job = job;
    d->kind = kind;
    d->parallel = a->d.cfg->max_parallel ? a->d.cfg->max_parallel : 2;
    d->timeout_s = a->d.cfg->migrate_timeout_s ? a->d.cfg->migrate_timeout_s
                                               : 600;
    if (job && job->req.parallel)
        d->parallel = job->req.parallel;
    if (job && job->req.timeout_s)
        d->timeout_s = job->req.timeout_s;
    return d;
}

/* {"key":[...]} generated in t -> a heap copy of [...], or NULL. */
static char *
inner_array(struct xm_jgen *t)
{
    const char *text, *p, *q;
    size_t len;

    if (xm_jgen_finish(t, &text, &len) != XM_OK)
        return NULL;
    p = memchr(text, '[', len);
    q = len ? text + len - 1 : text;   /* the closing '}' */
    if (!p || q <= p)
        return NULL;
    return strndup(p, (size_t)(q - p));
}

/* A migration id from a prefix, a job id and an index. */
static void
make_id(char *buf, size_t len, char prefix, const char *base, size_t k)
{
    snprintf(buf, len, "%c%.40s-%zu", prefix, base, k);
}

/* ---- drain ---- */

/* Nothing moved (refused, failed early): the state goes back. */
static void
drain_abandon(struct drain *d)
{
    struct agent *a = d->a;

    agent_set_state(a, d->prev_state, d->prev_reason);
    d->job = NULL;
    drain_free(d);
}

/* The guests the plan could not place, to shut down. */
static int
add_stops(struct drain *d, const struct plan_build *b,
          const struct xm_plan *plan)
{
    d->st = calloc(plan->n_blocked ? plan->n_blocked : 1, sizeof(*d->st));
    if (!d->st)
        return XM_ERR_NOMEM;
    for (size_t i = 0; i < plan->n_results; i++) {
        const struct xm_plan_result *r = &plan->results[i];
        struct stop *s;

        if (r->target >= 0 || d->n_st >= plan->n_blocked)
            continue;
        s = stop_new(d->a);
        if (!s)
            return XM_ERR_NOMEM;
        for (size_t k = 0; k < b->n_doms; k++)
            if (b->doms[k].domid == b->guests[i].domid)
                s->dom = b->doms[k];
        s->dom.mem_kib = b->guests[i].mem_kib;
        s->reasons = r->reasons;
        snprintf(s->detail, sizeof(s->detail), "%s",
                 r->detail ? r->detail : "");
        d->st[d->n_st++] = s;
    }
    return XM_OK;
}

static void
drain_peers_done(void *arg, const struct agent_peer_status *st, unsigned n)
{
    struct job *job = arg;
    struct agent *a = job->a;
    struct drain *d = job->req.dry_run ? NULL : a->drain;
    struct plan_build b = { 0 };
    struct xm_plan_input in = { 0 };
    struct xm_plan plan;
    struct xm_jgen *g = NULL;
    int rc;

    xm_plan_init(&plan);
    rc = build_plan_input(job, st, n, &b);
    if (rc) {
        job_finish(job, rc, NULL, "cannot read this host's domains");
        goto fail;
    }
    in.hosts = b.hosts;
    in.n_hosts = b.n_hosts;
    in.guests = b.guests;
    in.n_guests = b.n_guests;
    rc = xm_plan_compute(&in, &plan);
    if (rc) {
        job_finish(job, rc, NULL, "the planner refused its input");
        goto fail;
    }
    g = xm_jgen_new(false);
    if (!g) {
        job_finish(job, XM_ERR_NOMEM, NULL, NULL);
        goto fail;
    }
    if (job->req.dry_run) {
        gen_plan(g, job, &b, &plan, st, n, false);
        job_finish_json(job, g);
        goto out;
    }
    if (plan.n_blocked && job->req.blocked == XM_BLOCKED_REFUSE) {
        /* refused: nothing moves, the host state goes back first so
         * that the answer shows it */
        agent_set_state(a, d->prev_state, d->prev_reason);
        gen_plan(g, job, &b, &plan, st, n, true);
        job_finish_json(job, g);
        d->job = NULL;
        drain_free(d);
        goto out;
    }
    d->mv = calloc(plan.n_placed ? plan.n_placed : 1, sizeof(*d->mv));
    if (!d->mv) {
        job_finish(job, XM_ERR_NOMEM, NULL, NULL);
        goto fail;
    }
    for (size_t i = 0; i < plan.n_results; i++) {
        const struct xm_plan_result *r = &plan.results[i];
        struct move *mv;

        if (r->target < 0)
            continue;
        mv = &d->mv[d->n];
        for (size_t k = 0; k < b.n_doms; k++)
            if (b.doms[k].domid == b.guests[i].domid)
                mv->dom = b.doms[k];
        snprintf(mv->guest, sizeof(mv->guest), "%s", mv->dom.name);
        snprintf(mv->from, sizeof(mv->from), "%s", a->d.cfg->host_name);
        snprintf(mv->to, sizeof(mv->to), "%s", b.hosts[r->target].name);
        make_id(mv->id, sizeof(mv->id), 'd', job->id, d->n);
        memcpy(mv->uuid, mv->dom.uuid, 16);
        mv->mem_kib = b.guests[i].mem_kib;
        mv->vcpus = b.guests[i].vcpus;
        d->n++;
    }
    {
        struct xm_jgen *t = xm_jgen_new(false);

        if (t) {
            xm_jgen_map_open(t);
            gen_targets(t, st, n);
            xm_jgen_map_close(t);
            d->targets_json = inner_array(t);
            xm_jgen_free(t);
        }
        t = xm_jgen_new(false);
        if (t) {
            xm_jgen_map_open(t);
            gen_blocked(t, &b, &plan, "skipped", NULL);
            xm_jgen_map_close(t);
            d->blocked_json = inner_array(t);
            xm_jgen_free(t);
        }
    }
    if (plan.n_blocked && job->req.blocked == XM_BLOCKED_SHUTDOWN) {
        rc = add_stops(d, &b, &plan);
        if (rc) {
            job_finish(job, rc, NULL, NULL);
            goto fail;
        }
    }
    xm_log_info("drain: %zu guests to move, %zu blocked%s, %u at once",
                d->n, plan.n_blocked, !plan.n_blocked ? ""
                : d->n_st ? " (to shut down)" : " (skipped)", d->parallel);
    /* the notice: every guest that moves hears of it first */
    d->notice_s = job->req.notice_s ? job->req.notice_s
                                    : a->d.cfg->notice_s;
    if (d->n || d->n_st) {
        snprintf(d->notice_id, sizeof(d->notice_id), "%s", job->id);
        d->notice_t0_ms = now_ms(d);
        d->notice_end_ms = d->notice_t0_ms + (int64_t)d->notice_s * 1000;
        d->noticing = d->notice_s > 0;
        for (size_t i = 0; i < d->n; i++)
            notice_write(d, &d->mv[i].dom, "migrate");
        for (size_t i = 0; i < d->n_st; i++)
            notice_write(d, &d->st[i]->dom, "shutdown");
    }
    drain_step(d);              /* may finish at once */
    goto out;
fail:
    if (d)
        drain_abandon(d);
out:
    xm_jgen_free(g);
    xm_plan_dispose(&plan);
    plan_build_dispose(&b);
}

void
agent_drain_job(struct job *job)
{
    struct agent *a = job->a;
    const struct xm_config *cfg = a->d.cfg;
    struct drain *d;
    const char **names = NULL;
    char reason[128];
    unsigned n = 0;
    int rc;

    for (unsigned i = 0; i < job->req.n_to; i++) {
        if (!xm_config_peer(cfg, job->req.to[i])) {
            char msg[160];
            snprintf(msg, sizeof(msg), "--to: '%s' is not a peer of this "
                     "host (see peers in xenmaint.conf)", job->req.to[i]);
            job_finish(job, XM_ERR_INVAL, NULL, msg);
            return;
        }
    }
    {
        char msg[160];

        if (mig_compress_check(a, job->req.compress, msg, sizeof(msg))) {
            job_finish(job, XM_ERR_INVAL, NULL, msg);
            return;
        }
    }
    if (!job->req.dry_run) {
        if (a->drain) {
            job_finish(job, XM_ERR_BUSY, NULL, "a drain or undrain is "
                       "already running on this host");
            return;
        }
        d = drain_new(a, job, D_DRAIN);
        if (!d) {
            job_finish(job, XM_ERR_NOMEM, NULL, NULL);
            return;
        }
        snprintf(d->prev_state, sizeof(d->prev_state), "%s", a->state);
        snprintf(d->prev_reason, sizeof(d->prev_reason), "%s", a->reason);
        a->drain = d;
        /* cordon first: no guest may arrive while we plan and move */
        snprintf(reason, sizeof(reason), "drain %s", job->id);
        agent_set_state(a, "draining", reason);
    }
    rc = target_names(job, &names, &n);
    if (rc) {
        job_finish(job, rc, NULL, NULL);
        if (!job->req.dry_run)
            drain_abandon(a->drain);
        return;
    }
    rc = ask_peers(job, names, n, drain_peers_done);
    free(names);
    if (rc) {
        job_finish(job, rc, NULL, "cannot ask the peers for their state");
        if (!job->req.dry_run)
            drain_abandon(a->drain);
    }
}

/* ---- undrain ---- */

#define PULL_GUESTS_MAX 1024

struct pull_ask {
    struct drain *d;
    char host[XM_PROTO_HOST_MAX + 1];
};

/* *g, an array opened on first use; NULL without memory. */
static struct xm_jgen *
lazy_array(struct xm_jgen **g)
{
    if (!*g) {
        *g = xm_jgen_new(false);
        if (*g)
            xm_jgen_array_open(*g);
    }
    return *g;
}

static void
add_refused(struct drain *d, const char *guest, const char *from,
            const char *why)
{
    if (!lazy_array(&d->refused))
        return;
    xm_jgen_map_open(d->refused);
    xm_jgen_kv_str(d->refused, "guest", guest);
    xm_jgen_kv_str(d->refused, "from", from);
    xm_jgen_kv_str(d->refused, "why", why);
    xm_jgen_map_close(d->refused);
}

static void
add_unreachable(struct drain *d, const char *host, const char *error)
{
    if (!lazy_array(&d->unreachable))
        return;
    xm_jgen_map_open(d->unreachable);
    xm_jgen_kv_str(d->unreachable, "host", host);
    xm_jgen_kv_str(d->unreachable, "error", error);
    xm_jgen_map_close(d->unreachable);
}

/* A peer's answer to our pull: the migrations it started. */
static void
pull_done(void *arg, const struct agent_peer_status *st, unsigned n)
{
    struct pull_ask *pa = arg;
    struct drain *d = pa->d;
    struct agent *a = d->a;
    const xm_json *started, *refused;

    d->pulls_pending--;
    if (n != 1 || st[0].rc != XM_OK) {
        add_unreachable(d, pa->host, n == 1 && st[0].error ? st[0].error
                        : "no answer");
        free(pa);
        return;
    }
    started = xm_json_get(st[0].status, "started");
    refused = xm_json_get(st[0].status, "refused");
    for (size_t i = 0; i < xm_json_len(started) && i < PULL_GUESTS_MAX;
         i++) {
        const xm_json *e = xm_json_at(started, i);
        const char *name, *id;
        uint64_t mem = 0;
        struct move *grown, *mv;
        struct mig *m;

        if (xm_json_get_str(e, "name", &name) || !xm_mig_name_valid(name) ||
            xm_json_get_str(e, "mig", &id) || !xm_mig_id_valid(id)) {
            xm_log_warn("undrain: %s sent a malformed entry", pa->host);
            continue;
        }
        xm_json_get_uint(e, "mem_kib", &mem);
        grown = realloc(d->mv, (d->n + 1) * sizeof(*d->mv));
        if (!grown)
            break;
        d->mv = grown;
        mv = &d->mv[d->n++];
        memset(mv, 0, sizeof(*mv));
        snprintf(mv->guest, sizeof(mv->guest), "%s", name);
        snprintf(mv->from, sizeof(mv->from), "%s", pa->host);
        snprintf(mv->to, sizeof(mv->to), "%s", a->d.cfg->host_name);
        snprintf(mv->id, sizeof(mv->id), "%s", id);
        mv->mem_kib = mem < (1ull << 40) ? mem : 0;
        mv->t0_ms = now_ms(d);
        /* its offer may have come before this answer */
        m = mig_find(a, id, XM_MIG_TARGET);
        if (m && !strcmp(m->peer, pa->host)) {
            mv->arrived = true;
            mv->st = MV_RUNNING;
            mv->m = m->final ? NULL : m;
            mig_stats(m, &mv->stats);
            if (m->final)
                move_finish(mv, mig_move_state(m),
                            xm_mig_outcome_name(m->res.outcome), m->why,
                            m->t1_ms);
        }
    }
    for (size_t i = 0; i < xm_json_len(refused) && i < PULL_GUESTS_MAX;
         i++) {
        const xm_json *e = xm_json_at(refused, i);
        const char *name = NULL, *why = NULL;

        if (xm_json_get_str(e, "name", &name) || !xm_mig_name_valid(name))
            continue;
        if (xm_json_get_str(e, "why", &why))
            why = "refused";
        add_refused(d, name, pa->host, why);
    }
    free(pa);
}

static void
undrain_finish_now(struct job *job, bool stay)
{
    struct xm_jgen *g = xm_jgen_new(false);

    if (!g) {
        job_finish(job, XM_ERR_NOMEM, NULL, NULL);
        return;
    }
    xm_jgen_map_open(g);
    xm_jgen_kv_str(g, "host", job->a->d.cfg->host_name);
    xm_jgen_kv_bool(g, "stay", stay);
    xm_jgen_kv_str(g, "state", job->a->state);
    xm_jgen_key(g, "moves");
    xm_jgen_raw(g, "[]", 2);
    xm_jgen_key(g, "refused");
    xm_jgen_raw(g, "[]", 2);
    xm_jgen_key(g, "unreachable");
    xm_jgen_raw(g, "[]", 2);
    xm_jgen_key(g, "started");
    xm_jgen_raw(g, "[]", 2);
    xm_jgen_map_close(g);
    job_finish_json(job, g);
    xm_jgen_free(g);
}

/* The pull request for host: {"id","home","guests":[{"uuid","name"}]}. */
static int
pull_request(struct drain *d, const struct away_rec *recs, size_t n,
             const char *host, size_t k, char **json_r)
{
    struct xm_jgen *g = xm_jgen_new(false);
    char id[XM_MIG_ID_MAX + 1], hex[33];
    int rc;

    if (!g)
        return XM_ERR_NOMEM;
    make_id(id, sizeof(id), 'u', d->job->id, k);
    xm_jgen_map_open(g);
    xm_jgen_kv_str(g, "id", id);
    xm_jgen_kv_str(g, "home", d->a->d.cfg->host_name);
    if (d->job->req.compress[0])
        xm_jgen_kv_str(g, "compress", d->job->req.compress);
    xm_jgen_key(g, "guests");
    xm_jgen_array_open(g);
    for (size_t i = 0; i < n; i++) {
        if (strcmp(recs[i].host, host))
            continue;
        xm_mig_uuid_hex(recs[i].uuid, hex);
        xm_jgen_map_open(g);
        xm_jgen_kv_str(g, "uuid", hex);
        xm_jgen_kv_str(g, "name", recs[i].name);
        xm_jgen_map_close(g);
    }
    xm_jgen_array_close(g);
    xm_jgen_map_close(g);
    rc = xm_jgen_take(g, json_r);
    xm_jgen_free(g);
    return rc;
}

void
agent_undrain_job(struct job *job)
{
    struct agent *a = job->a;
    struct agent_peers *p = &a->d.peers;
    struct away_rec *recs = NULL;
    struct stop **st = NULL;
    struct drain *d;
    size_t n = 0, n_st = 0;
    unsigned timeout_s;
    int rc;

    if (a->drain) {
        job_finish(job, XM_ERR_BUSY, NULL, "a drain or undrain is already "
                   "running on this host");
        return;
    }
    {
        char msg[160];

        if (mig_compress_check(a, job->req.compress, msg, sizeof(msg))) {
            job_finish(job, XM_ERR_INVAL, NULL, msg);
            return;
        }
    }
    agent_set_state(a, "active", "");
    rc = stops_load(a, &st, &n_st);
    if (rc) {
        job_finish(job, rc, NULL, "cannot read the records of the guests "
                   "a drain shut down (state_dir/stopped)");
        return;
    }
    rc = job->req.stay ? XM_OK : agent_away_load(a, &recs, &n);
    if (rc) {
        for (size_t i = 0; i < n_st; i++)
            stop_free(st[i]);
        free(st);
        job_finish(job, rc, NULL, "cannot read the records of the guests "
                   "that left this host");
        return;
    }
    if (!p->ops || !p->ops->ask)
        n = 0;
    if (n == 0 && n_st == 0) {
        free(recs);
        free(st);
        undrain_finish_now(job, job->req.stay);
        return;
    }
    d = drain_new(a, job, D_UNDRAIN);
    if (!d) {
        for (size_t i = 0; i < n_st; i++)
            stop_free(st[i]);
        free(st);
        free(recs);
        job_finish(job, XM_ERR_NOMEM, NULL, NULL);
        return;
    }
    a->drain = d;
    d->st = st;
    d->n_st = n_st;
    timeout_s = d->timeout_s * (unsigned)((n + d->parallel - 1) /
                                          d->parallel);
    if (timeout_s < UNDRAIN_MIN_S)
        timeout_s = UNDRAIN_MIN_S;
    d->deadline_ms = now_ms(d) + (int64_t)timeout_s * 1000;
    /* this host's own guests that a drain shut down: started here */
    for (size_t i = 0; i < n_st; i++) {
        xm_log_info("undrain: starting %s again", st[i]->dom.name);
        stop_start(st[i]);
    }
    /* one pull per host that holds some of our guests */
    for (size_t i = 0; i < n; i++) {
        struct pull_ask *pa;
        char *json = NULL;
        bool seen = false;

        for (size_t j = 0; j < i; j++)
            seen = seen || !strcmp(recs[j].host, recs[i].host);
        if (seen)
            continue;
        if (!xm_config_peer(a->d.cfg, recs[i].host)) {
            add_unreachable(d, recs[i].host, "not a peer of this host "
                            "any more");
            continue;
        }
        pa = calloc(1, sizeof(*pa));
        rc = pa ? pull_request(d, recs, n, recs[i].host, i, &json)
                : XM_ERR_NOMEM;
        if (!rc)
            rc = p->ops->ask(p->ctx, recs[i].host, XM_MSG_MIGRATE_PULL,
                             json, strlen(json), XM_MSG_MIGRATE_PULL_RESP,
                             pull_done, pa);
        free(json);
        if (rc) {
            add_unreachable(d, recs[i].host, xm_strerror(rc));
            free(pa);
            continue;
        }
        pa->d = d;
        snprintf(pa->host, sizeof(pa->host), "%s", recs[i].host);
        d->pulls_pending++;
        xm_log_info("undrain: asking %s to send our guests home",
                    recs[i].host);
    }
    free(recs);
    drain_arm(d);
}

/* ---- a peer's pull: send its guests home ---- */

int
agent_pull(struct agent *a, const char *peer, struct agent_conn *conn,
           const struct xm_frame *f)
{
    struct agent_peers *p = &a->d.peers;
    struct xm_domain *doms = NULL;
    struct xm_jgen *g = NULL, *refused = NULL;
    const xm_json *guests;
    struct drain *d = NULL;
    xm_json *doc = NULL;
    const char *id, *home, *text, *compress = "";
    char err[128];
    size_t n_doms = 0, len, ng;
    int rc;

    rc = xm_json_parse((const char *)f->payload, f->len, &doc, err,
                       sizeof(err));
    if (rc || xm_json_get_str(doc, "id", &id) || !xm_mig_id_valid(id) ||
        strlen(id) > 44 || xm_json_get_str(doc, "home", &home) ||
        !(guests = xm_json_get(doc, "guests")) ||
        xm_json_type(guests) != XM_JSON_ARRAY ||
        (ng = xm_json_len(guests)) > PULL_GUESTS_MAX) {
        xm_log_warn("peer %s: a malformed pull", peer);
        rc = XM_ERR_PROTO;
        goto out;
    }
    if (strcmp(home, peer)) {
        xm_log_warn("peer %s: a pull for '%s' refused", peer, home);
        rc = XM_ERR_PERM;
        goto out;
    }
    /* Optional: the compression the undrain asked for. */
    if (xm_json_get(doc, "compress") &&
        (xm_json_get_str(doc, "compress", &compress) ||
         !xm_request_compress_valid(compress) ||
         mig_compress_check(a, compress, err, sizeof(err)))) {
        xm_log_warn("peer %s: a pull with a bad compress value", peer);
        rc = XM_ERR_PROTO;
        goto out;
    }
    rc = a->d.hv->ops->list_domains(a->d.hv->ctx, &doms, &n_doms);
    d = rc ? NULL : drain_new(a, NULL, D_PULL);
    if (d)
        snprintf(d->compress, sizeof(d->compress), "%s", compress);
    g = xm_jgen_new(false);
    refused = xm_jgen_new(false);
    if (!d || !g || !refused || !(d->mv = calloc(ng ? ng : 1,
                                                 sizeof(*d->mv)))) {
        rc = rc ? rc : XM_ERR_NOMEM;
        goto out;
    }
    xm_jgen_array_open(refused);
    xm_jgen_map_open(g);
    xm_jgen_kv_str(g, "id", id);
    xm_jgen_key(g, "started");
    xm_jgen_array_open(g);
    for (size_t i = 0; i < ng; i++) {
        const xm_json *e = xm_json_at(guests, i);
        const char *uuids = NULL, *name = NULL, *why = NULL;
        const struct xm_domain *dom = NULL;
        uint8_t uuid[16];
        struct move *mv;

        if (xm_json_get_str(e, "uuid", &uuids) ||
            xm_mig_uuid_parse(uuids, uuid) ||
            xm_json_get_str(e, "name", &name) || !xm_mig_name_valid(name))
            continue;
        for (size_t k = 0; k < n_doms; k++)
            if (!memcmp(doms[k].uuid, uuid, 16))
                dom = &doms[k];
        if (!dom)
            why = "not on this host";
        else if (dom->flags & (XM_DOM_TRANSIENT | XM_DOM_SUSPENDED))
            why = "being migrated";
        else if (dom->flags & XM_DOM_DYING)
            why = "shutting down";
        else if (dom->flags & (XM_DOM_PCI | XM_DOM_NOMIGRATE |
                               XM_DOM_LOCAL_DISK))
            why = "cannot be migrated";
        if (why) {
            xm_jgen_map_open(refused);
            xm_jgen_kv_str(refused, "uuid", uuids);
            xm_jgen_kv_str(refused, "name", name);
            xm_jgen_kv_str(refused, "why", why);
            xm_jgen_map_close(refused);
            continue;
        }
        mv = &d->mv[d->n];
        mv->dom = *dom;
        snprintf(mv->guest, sizeof(mv->guest), "%s", dom->name);
        snprintf(mv->from, sizeof(mv->from), "%s", a->d.cfg->host_name);
        snprintf(mv->to, sizeof(mv->to), "%s", peer);
        snprintf(mv->id, sizeof(mv->id), "%s-%zu", id, d->n);
        mv->mem_kib = dom->mem_kib;
        d->n++;
        xm_jgen_map_open(g);
        xm_jgen_kv_str(g, "uuid", uuids);
        xm_jgen_kv_str(g, "name", dom->name);
        xm_jgen_kv_str(g, "mig", mv->id);
        xm_jgen_kv_uint(g, "mem_kib", dom->mem_kib);
        xm_jgen_map_close(g);
    }
    xm_jgen_array_close(g);
    xm_jgen_array_close(refused);
    rc = xm_jgen_finish(refused, &text, &len);
    if (!rc) {
        xm_jgen_key(g, "refused");
        xm_jgen_raw(g, text, len);
        xm_jgen_map_close(g);
        rc = xm_jgen_finish(g, &text, &len);
    }
    if (!rc)
        rc = p->ops->conn_reply(p->ctx, conn, XM_MSG_MIGRATE_PULL_RESP, text,
                                len);
    if (rc)
        goto out;
    xm_log_info("peer %s asks for its guests: %zu to send home", peer,
                d->n);
    if (d->n) {
        d->next = a->pulls;
        a->pulls = d;
        d = NULL;
        drain_step(a->pulls);
    }
out:
    if (d)
        drain_free(d);
    xm_jgen_free(g);
    xm_jgen_free(refused);
    xm_json_free(doc);
    free(doms);
    return rc;
}

void
agent_drain_dispose(struct agent *a)
{
    if (a->drain) {
        /* the job list frees a job; a step of one is freed here */
        job_child_discard(a->drain->job);
        a->drain->job = NULL;
        drain_free(a->drain);
    }
    while (a->pulls)
        drain_free(a->pulls);
}
