/*
 * agent_ops.c -- the operations xenmaintd answers today.
 *
 *  - status: this host's block (state, memory, hypervisor, livepatches,
 *    guests) and every peer's, asked over the peer link;
 *  - drain --dry-run: the plan for emptying this host, computed by the
 *    pure planner from the live domain list and the peers' live state
 *    (never from an earlier plan);
 *  - patch list: the hypervisor's livepatch payloads.
 * The patch operations are in agent_patch.c.  Operations that later
 * issues bring (the drain itself, undrain) are refused with
 * "unsupported", never pretended.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent_int.h"
#include "xm_err.h"
#include "xm_log.h"
#include "xm_plan.h"

#define DEFAULT_POOL "Pool-0"

static const char *const host_states[] = {
    "active", "cordoned", "draining", "drained", "patching",
    "reboot-required", "undraining",
};

/* The host state survives restarts in state_dir/host-state. */
void
agent_load_state(struct agent *a)
{
    char path[512], line[64];
    FILE *f;

    snprintf(path, sizeof(path), "%s/host-state", a->d.cfg->state_dir);
    f = fopen(path, "r");
    if (!f)
        return;
    if (fgets(line, sizeof(line), f)) {
        size_t i, n = sizeof(host_states) / sizeof(*host_states);

        line[strcspn(line, "\n")] = '\0';
        for (i = 0; i < n; i++)
            if (strcmp(line, host_states[i]) == 0)
                break;
        if (i < n)
            snprintf(a->state, sizeof(a->state), "%s", host_states[i]);
        else
            xm_log_warn("%s: unknown state '%.32s' ignored", path, line);
    }
    fclose(f);
}

static const char *
lp_state_name(int state)
{
    switch (state) {
    case XM_LP_CHECKED: return "checked";
    case XM_LP_APPLIED: return "applied";
    default: return "unknown";
    }
}

static void
gen_livepatches(struct agent *a, struct xm_jgen *g)
{
    struct xm_lp_status *list = NULL;
    size_t n = 0;
    int rc = a->d.hv->ops->lp_list(a->d.hv->ctx, &list, &n);

    xm_jgen_key(g, "livepatches");
    xm_jgen_array_open(g);
    for (size_t i = 0; rc == XM_OK && i < n; i++) {
        xm_jgen_map_open(g);
        xm_jgen_kv_str(g, "name", list[i].name);
        xm_jgen_kv_str(g, "state", lp_state_name(list[i].state));
        xm_jgen_kv_int(g, "rc", list[i].rc);
        xm_jgen_map_close(g);
    }
    xm_jgen_array_close(g);
    if (rc)
        xm_jgen_kv_str(g, "livepatch_error", xm_strerror(rc));
    free(list);
}

static void
gen_dom_flags(struct xm_jgen *g, unsigned flags)
{
    static const struct { unsigned bit; const char *name; } names[] = {
        { XM_DOM_PCI, "pci-passthrough" },
        { XM_DOM_NOMIGRATE, "no-migrate" },
        { XM_DOM_HVM, "hvm" },
        { XM_DOM_PAUSED, "paused" },
        { XM_DOM_DYING, "dying" },
        { XM_DOM_LOCAL_DISK, "local-storage" },
        { XM_DOM_TRANSIENT, "migrating" },
    };

    xm_jgen_key(g, "flags");
    xm_jgen_array_open(g);
    for (size_t i = 0; i < sizeof(names) / sizeof(*names); i++)
        if (flags & names[i].bit)
            xm_jgen_str(g, names[i].name);
    xm_jgen_array_close(g);
}

int
agent_host_status(struct agent *a, struct xm_jgen *g)
{
    struct xm_hostinfo info;
    struct xm_domain *doms = NULL;
    size_t n = 0;
    char hex[2 * XM_BUILDID_MAX + 1];
    int rc;

    rc = a->d.hv->ops->hostinfo(a->d.hv->ctx, &info);
    if (rc)
        return rc;
    rc = a->d.hv->ops->list_domains(a->d.hv->ctx, &doms, &n);
    if (rc)
        return rc;
    xm_buildid_hex(info.build_id, info.build_id_len, hex);
    xm_jgen_map_open(g);
    xm_jgen_kv_str(g, "name", a->d.cfg->host_name);
    xm_jgen_kv_str(g, "state", a->state);
    xm_jgen_kv_str(g, "reason", a->reason);
    xm_jgen_kv_bool(g, "reachable", true);
    xm_jgen_kv_uint(g, "free_kib", info.free_kib);
    xm_jgen_kv_uint(g, "total_kib", info.total_kib);
    xm_jgen_kv_uint(g, "nr_cpus", info.nr_cpus);
    xm_jgen_kv_str(g, "xen_version", info.xen_version);
    xm_jgen_kv_str(g, "xen_extra", info.xen_extra);
    xm_jgen_kv_str(g, "build_id", hex);
    gen_livepatches(a, g);
    xm_jgen_key(g, "guests");
    xm_jgen_array_open(g);
    for (size_t i = 0; i < n; i++) {
        xm_jgen_map_open(g);
        xm_jgen_kv_str(g, "name", doms[i].name);
        xm_jgen_kv_uint(g, "domid", doms[i].domid);
        xm_jgen_kv_uint(g, "mem_kib", doms[i].mem_kib);
        xm_jgen_kv_uint(g, "vcpus", doms[i].vcpus);
        xm_jgen_kv_str(g, "cpupool", doms[i].cpupool);
        gen_dom_flags(g, doms[i].flags);
        xm_jgen_map_close(g);
    }
    xm_jgen_array_close(g);
    xm_jgen_map_close(g);
    free(doms);
    return XM_OK;
}

/* A peer's block as the status result shows it: the peer's own JSON
 * was parsed (hostile input) and is re-emitted value by value. */
static void
gen_peer(struct xm_jgen *g, const struct agent_peer_status *st)
{
    xm_jgen_map_open(g);
    xm_jgen_kv_str(g, "name", st->name);
    xm_jgen_kv_bool(g, "self", false);
    xm_jgen_kv_bool(g, "reachable", st->rc == XM_OK);
    if (st->rc != XM_OK || xm_json_type(st->status) != XM_JSON_OBJECT) {
        xm_jgen_kv_str(g, "error", st->error ? st->error
                                             : xm_strerror(st->rc));
    } else {
        for (size_t i = 0; i < xm_json_len(st->status); i++) {
            const char *key = xm_json_key_at(st->status, i);
            if (!strcmp(key, "name") || !strcmp(key, "self") ||
                !strcmp(key, "reachable"))
                continue;
            xm_jgen_key(g, key);
            xm_jgen_json(g, xm_json_value_at(st->status, i));
        }
    }
    xm_jgen_map_close(g);
}

/* ---- status ---- */

static void
status_peers_done(void *arg, const struct agent_peer_status *st, unsigned n)
{
    struct job *job = arg;
    struct xm_jgen *g = xm_jgen_new(false);
    int rc;

    if (!g) {
        job_finish(job, XM_ERR_NOMEM, NULL, NULL);
        return;
    }
    xm_jgen_map_open(g);
    xm_jgen_key(g, "hosts");
    xm_jgen_array_open(g);
    rc = agent_host_status(job->a, g);
    if (rc) {
        xm_jgen_free(g);
        job_finish(job, rc, NULL, "cannot read this host's state");
        return;
    }
    for (unsigned i = 0; i < n; i++)
        gen_peer(g, &st[i]);
    xm_jgen_array_close(g);
    xm_jgen_map_close(g);
    job_finish_json(job, g);
    xm_jgen_free(g);
}

/* Names of all configured peers, or of the request's --to list. */
static int
target_names(struct job *job, const char ***names_r, unsigned *n_r)
{
    const struct xm_config *cfg = job->a->d.cfg;
    const char **names;
    unsigned n = job->req.n_to ? job->req.n_to : cfg->n_peers;

    names = calloc(n ? n : 1, sizeof(*names));
    if (!names)
        return XM_ERR_NOMEM;
    for (unsigned i = 0; i < n; i++)
        names[i] = job->req.n_to ? job->req.to[i] : cfg->peers[i].name;
    *names_r = names;
    *n_r = n;
    return XM_OK;
}

static void
ask_peers(struct job *job, const char *const *names, unsigned n,
          agent_peer_status_fn *done)
{
    struct agent_peers *p = &job->a->d.peers;
    int rc;

    if (n == 0 || !p->ops) {
        done(job, NULL, 0);
        return;
    }
    rc = p->ops->query_status(p->ctx, names, n, done, job);
    if (rc)
        job_finish(job, rc, NULL, "cannot ask the peers for their state");
}

static void
op_status(struct job *job)
{
    const char **names = NULL;
    unsigned n = 0;
    int rc = target_names(job, &names, &n);

    if (rc) {
        job_finish(job, rc, NULL, NULL);
        return;
    }
    ask_peers(job, names, n, status_peers_done);
    free(names);
}

/* ---- drain planning ---- */

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
        const struct xm_domain *d = &b->doms[i];
        struct xm_plan_guest *gu = &b->guests[b->n_guests];

        if (d->flags & (XM_DOM_TRANSIENT | XM_DOM_DYING))
            continue;
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
gen_plan(struct xm_jgen *g, struct job *job, const struct plan_build *b,
         const struct xm_plan *plan, const struct agent_peer_status *st,
         unsigned n_st)
{
    xm_jgen_map_open(g);
    xm_jgen_kv_str(g, "host", job->a->d.cfg->host_name);
    xm_jgen_kv_bool(g, "dry_run", job->req.dry_run);

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
        xm_jgen_map_close(g);
    }
    xm_jgen_array_close(g);
    xm_jgen_map_close(g);
}

static void
drain_peers_done(void *arg, const struct agent_peer_status *st, unsigned n)
{
    struct job *job = arg;
    struct plan_build b = { 0 };
    struct xm_plan_input in = { 0 };
    struct xm_plan plan;
    struct xm_jgen *g = NULL;
    int rc;

    xm_plan_init(&plan);
    rc = build_plan_input(job, st, n, &b);
    if (rc) {
        job_finish(job, rc, NULL, "cannot read this host's domains");
        goto out;
    }
    in.hosts = b.hosts;
    in.n_hosts = b.n_hosts;
    in.guests = b.guests;
    in.n_guests = b.n_guests;
    rc = xm_plan_compute(&in, &plan);
    if (rc) {
        job_finish(job, rc, NULL, "the planner refused its input");
        goto out;
    }
    g = xm_jgen_new(false);
    if (!g) {
        job_finish(job, XM_ERR_NOMEM, NULL, NULL);
        goto out;
    }
    gen_plan(g, job, &b, &plan, st, n);
    job_finish_json(job, g);
out:
    xm_jgen_free(g);
    xm_plan_dispose(&plan);
    plan_build_dispose(&b);
}

static void
op_drain(struct job *job)
{
    const struct xm_config *cfg = job->a->d.cfg;
    const char **names = NULL;
    unsigned n = 0;
    int rc;

    if (!job->req.dry_run) {
        job_finish(job, XM_ERR_UNSUPPORTED, NULL,
                   "live migration between agents is not available yet: "
                   "only drain --dry-run is");
        return;
    }
    for (unsigned i = 0; i < job->req.n_to; i++) {
        if (!xm_config_peer(cfg, job->req.to[i])) {
            char msg[160];
            snprintf(msg, sizeof(msg), "--to: '%s' is not a peer of this "
                     "host (see peers in xenmaint.conf)", job->req.to[i]);
            job_finish(job, XM_ERR_INVAL, NULL, msg);
            return;
        }
    }
    rc = target_names(job, &names, &n);
    if (rc) {
        job_finish(job, rc, NULL, NULL);
        return;
    }
    ask_peers(job, names, n, drain_peers_done);
    free(names);
}

/* ---- patch list ---- */

static void
op_patch_list(struct job *job)
{
    struct xm_jgen *g = xm_jgen_new(false);

    if (!g) {
        job_finish(job, XM_ERR_NOMEM, NULL, NULL);
        return;
    }
    xm_jgen_map_open(g);
    xm_jgen_kv_str(g, "host", job->a->d.cfg->host_name);
    gen_livepatches(job->a, g);
    xm_jgen_map_close(g);
    job_finish_json(job, g);
    xm_jgen_free(g);
}

void
agent_run_job(struct job *job)
{
    switch (job->req.op) {
    case XM_OP_STATUS:
        op_status(job);
        break;
    case XM_OP_DRAIN:
        op_drain(job);
        break;
    case XM_OP_PATCH_LIST:
        op_patch_list(job);
        break;
    case XM_OP_PATCH_CHECK:
    case XM_OP_PATCH_APPLY:
    case XM_OP_PATCH_REVERT:
        agent_patch_job(job);
        break;
    default:
        job_finish(job, XM_ERR_UNSUPPORTED, NULL,
                   "this operation is not available in this version of "
                   "xenmaintd yet");
        break;
    }
}
