/*
 * agent_ops.c -- the operations xenmaintd answers today.
 *
 *  - status: this host's block (state, memory, hypervisor, livepatches,
 *    guests) and every peer's, asked over the peer link;
 *  - patch list: the hypervisor's livepatch payloads;
 *  - the host state (active, draining, ...), kept in state_dir/host-state
 *    across restarts, and the dispatch of every job.
 * Drain and undrain are in agent_drain.c, the patch operations in
 * agent_patch.c.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent_int.h"
#include "xm_err.h"
#include "xm_log.h"

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

int
agent_replace_file(const char *path, agent_fill_fn *fill, void *arg)
{
    char tmp[600];
    FILE *f;
    int rc = XM_OK;

    if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= sizeof(tmp))
        return XM_ERR_TOOBIG;
    f = fopen(tmp, "w");
    if (!f)
        return xm_err_from_errno(errno);
    rc = fill(f, arg);
    if (!rc && (ferror(f) || fflush(f) != 0 || fsync(fileno(f)) != 0))
        rc = xm_err_from_errno(errno);
    if (fclose(f) != 0 && !rc)
        rc = xm_err_from_errno(errno);
    if (!rc && rename(tmp, path) != 0)
        rc = xm_err_from_errno(errno);
    if (rc)
        unlink(tmp);
    return rc;
}

static int
fill_state(FILE *out, void *arg)
{
    return fprintf(out, "%s\n", (const char *)arg) < 0 ? XM_ERR_IO : XM_OK;
}

/* Change the host state, persist it, publish it. */
int
agent_set_state(struct agent *a, const char *state, const char *reason)
{
    char path[512];
    int rc;

    snprintf(a->state, sizeof(a->state), "%s", state);
    snprintf(a->reason, sizeof(a->reason), "%s", reason ? reason : "");
    snprintf(path, sizeof(path), "%s/host-state", a->d.cfg->state_dir);
    rc = agent_replace_file(path, fill_state, a->state);
    if (rc)
        xm_log_err("cannot save the host state in %s: %s", path,
                   xm_strerror(rc));
    xm_log_info("host state: %s%s%s", state, a->reason[0] ? " -- " : "",
                a->reason);
    if (agent_publish_host(a) != XM_OK)
        xm_log_warn("cannot publish the host state");
    return rc;
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
        { XM_DOM_SUSPENDED, "suspended" },
        { XM_DOM_NAMELESS, "nameless" },
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
    mig_past_json(a, g);
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
int
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

int
ask_peers(struct job *job, const char *const *names, unsigned n,
          agent_peer_status_fn *done)
{
    struct agent_peers *p = &job->a->d.peers;

    if (n == 0 || !p->ops) {
        done(job, NULL, 0);
        return XM_OK;
    }
    return p->ops->query_status(p->ctx, names, n, done, job);
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
    rc = ask_peers(job, names, n, status_peers_done);
    free(names);
    if (rc)
        job_finish(job, rc, NULL, "cannot ask the peers for their state");
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
        agent_drain_job(job);
        break;
    case XM_OP_UNDRAIN:
        agent_undrain_job(job);
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

void
agent_crash_point(const char *name)
{
    const char *want = getenv("XENMAINT_CRASH_AT");

    if (!want || strcmp(want, name))
        return;
    xm_log_err("crash point %s reached (XENMAINT_CRASH_AT): the agent "
               "kills itself", name);
    raise(SIGKILL);
}
