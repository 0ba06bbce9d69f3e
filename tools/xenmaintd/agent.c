/*
 * agent.c -- xenmaintd's request handling and job bookkeeping.
 *
 * Life of a request: an xl subcommand writes JSON to
 * /tool/xenmaint/request/<id>; our watch fires; we read the request,
 * remove it (so it is taken once), create /tool/xenmaint/job/<id> and run
 * the operation.  Every answer goes through job_finish, which writes the
 * result (or the error) before the terminal state, because clients wait
 * on the state.  Finished jobs are kept for a while for late readers and
 * then removed, oldest first.  The operations themselves are in
 * agent_ops.c.
 */
#include <config.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent.h"
#include "agent_int.h"
#include "xm_err.h"
#include "xm_log.h"
#include "xm_request.h"
#include "xm_schema.h"
#include "xm_xs_big.h"

#define REQUEST_TOKEN "request"

static void job_free(struct job *job);

int
agent_new(const struct agent_deps *deps, struct agent **agent_r)
{
    struct agent *a;

    if (!deps->cfg || !deps->xs || !deps->hv || !deps->clock || !deps->loop)
        return XM_ERR_INVAL;
    a = calloc(1, sizeof(*a));
    if (!a)
        return XM_ERR_NOMEM;
    a->d = *deps;
    snprintf(a->state, sizeof(a->state), "active");
    *agent_r = a;
    return XM_OK;
}

void
agent_free(struct agent *a)
{
    struct job *job, *next;

    if (!a)
        return;
    agent_patch_dispose(a);
    agent_drain_dispose(a);
    agent_mig_dispose(a);
    for (job = a->jobs; job; job = next) {
        next = job->next;
        job_free(job);
    }
    for (unsigned i = 0; i < a->n_done; i++)
        free(a->done_ids[i]);
    free(a->done_ids);
    free(a);
}

int
agent_failed(const struct agent *a)
{
    return a->failed;
}

unsigned
agent_jobs_running(const struct agent *a)
{
    unsigned n = 0;

    for (const struct job *job = a->jobs; job; job = job->next)
        n++;
    return n;
}

/* ---- publishing ---- */

int
agent_publish_host(struct agent *a)
{
    struct xm_xs *xs = a->d.xs;
    struct xm_hostinfo info;
    char hex[2 * XM_BUILDID_MAX + 1];
    int rc;

    rc = xm_xs_write_str(xs, XM_XS_NO_TXN, "/tool/xenmaint/host/name",
                         a->d.cfg->host_name);
    if (!rc)
        rc = xm_xs_write_str(xs, XM_XS_NO_TXN, "/tool/xenmaint/host/state",
                             a->state);
    if (!rc)
        rc = xm_xs_write_str(xs, XM_XS_NO_TXN, "/tool/xenmaint/host/reason",
                             a->reason);
    if (rc)
        return rc;
    rc = a->d.hv->ops->hostinfo(a->d.hv->ctx, &info);
    if (rc)
        return rc;
    xm_buildid_hex(info.build_id, info.build_id_len, hex);
    rc = xm_xs_writef(xs, XM_XS_NO_TXN, "/tool/xenmaint/host/free-kib",
                      "%llu", (unsigned long long)info.free_kib);
    if (!rc)
        rc = xm_xs_writef(xs, XM_XS_NO_TXN, "/tool/xenmaint/host/total-kib",
                          "%llu", (unsigned long long)info.total_kib);
    if (!rc)
        rc = xm_xs_write_str(xs, XM_XS_NO_TXN,
                             "/tool/xenmaint/host/build-id", hex);
    return rc;
}

/* ---- jobs ---- */

static void
job_free(struct job *job)
{
    if (!job)
        return;
    xm_request_dispose(&job->req);
    free(job);
}

static void
unlink_job(struct agent *a, struct job *job)
{
    for (struct job **pp = &a->jobs; *pp; pp = &(*pp)->next) {
        if (*pp == job) {
            *pp = job->next;
            return;
        }
    }
}

/* Keep at most jobs_kept finished jobs in xenstore. */
static void
remember_done(struct agent *a, const char *id)
{
    char path[XM_XS_PATH_MAX];
    char **ids;
    char *copy = strdup(id);

    if (!copy)
        return;
    ids = realloc(a->done_ids, (a->n_done + 1) * sizeof(*ids));
    if (!ids) {
        free(copy);
        return;
    }
    a->done_ids = ids;
    a->done_ids[a->n_done++] = copy;
    while (a->n_done > a->d.cfg->jobs_kept) {
        if (xm_xs_path(path, "/tool/xenmaint/job/%s", a->done_ids[0]) ==
            XM_OK)
            a->d.xs->ops->rm(a->d.xs->ctx, XM_XS_NO_TXN, path);
        free(a->done_ids[0]);
        memmove(a->done_ids, a->done_ids + 1,
                (a->n_done - 1) * sizeof(*a->done_ids));
        a->n_done--;
    }
}

/* Write one key of a job; fmt is a full path format with one %s for
 * the job id, written at the call site so the schema check sees it. */
static void
job_write_at(struct job *job, int path_rc, const char *path,
             const char *value)
{
    int rc = path_rc;

    if (!rc)
        rc = xm_xs_write_str(job->a->d.xs, XM_XS_NO_TXN, path, value);
    if (rc)
        xm_log_err("job %s: cannot write %s: %s", job->id, path,
                   xm_strerror(rc));
}

#define job_write(job, fmt, value)                                      \
    do {                                                                \
        char path_[XM_XS_PATH_MAX];                                     \
        job_write_at((job), xm_xs_path(path_, fmt, (job)->id), path_,   \
                     (value));                                          \
    } while (0)

void
job_progress(struct job *job, unsigned pct)
{
    char path[XM_XS_PATH_MAX];

    if (pct > 100)
        pct = 100;
    if (job->done)              /* a step: its share of the parent's */
        pct = job->pct_base + pct * job->pct_span / 100;
    if (xm_xs_path(path, "/tool/xenmaint/job/%s/progress", job->id) == 0)
        xm_xs_writef(job->a->d.xs, XM_XS_NO_TXN, path, "%u",
                     pct > 100 ? 100 : pct);
}

/* The error result: {"error":{"code":"invalid","message":"..."}}. */
static int
error_result(int code, const char *message, char **json_r)
{
    struct xm_jgen *g = xm_jgen_new(false);
    int rc;

    if (!g)
        return XM_ERR_NOMEM;
    xm_jgen_map_open(g);
    xm_jgen_key(g, "error");
    xm_jgen_map_open(g);
    xm_jgen_kv_str(g, "code", xm_err_name(code));
    xm_jgen_kv_str(g, "message", message);
    xm_jgen_map_close(g);
    xm_jgen_map_close(g);
    rc = xm_jgen_take(g, json_r);
    xm_jgen_free(g);
    return rc;
}

void
job_finish(struct job *job, int code, const char *result,
           const char *message)
{
    struct agent *a = job->a;
    char path[XM_XS_PATH_MAX];
    char *err_json = NULL;
    int rc;

    if (code != XM_OK && !message)
        message = xm_strerror(code);
    if (code != XM_OK && !result) {
        if (error_result(code, message, &err_json) == XM_OK)
            result = err_json;
    }
    if (job->done) {            /* a step: its parent hears of it */
        job->done(job->done_arg, code, result, message);
        free(err_json);
        job_free(job);
        return;
    }
    rc = xm_xs_path(path, "/tool/xenmaint/job/%s/result", job->id);
    if (!rc && result)
        rc = xm_xs_write_big(a->d.xs, XM_XS_NO_TXN, path, result,
                             strlen(result));
    if (rc) {
        xm_log_err("job %s: cannot write result: %s", job->id,
                   xm_strerror(rc));
        code = rc;
        message = "the result could not be stored in xenstore";
    }
    if (code != XM_OK)
        job_write(job, "/tool/xenmaint/job/%s/error", message);
    job_progress(job, 100);
    /* the terminal state goes last: clients wait on it */
    job_write(job, "/tool/xenmaint/job/%s/state",
              xm_job_state_name(code == XM_OK ? XM_JOB_DONE
                                              : XM_JOB_FAILED));
    if (code == XM_OK)
        xm_log_info("job %s (%s) done", job->id, xm_req_op_name(job->req.op));
    else
        xm_log_warn("job %s (%s) failed: %s", job->id,
                    job->parsed ? xm_req_op_name(job->req.op) : "invalid",
                    message);
    free(err_json);
    unlink_job(a, job);
    remember_done(a, job->id);
    job_free(job);
}

void
job_finish_json(struct job *job, struct xm_jgen *g)
{
    char *json = NULL;
    int rc = xm_jgen_take(g, &json);

    if (rc)
        job_finish(job, rc, NULL, "could not encode the result");
    else
        job_finish(job, XM_OK, json, NULL);
    free(json);
}

struct job *
job_child_new(struct job *parent, enum xm_req_op op, bool dry_run,
              job_done_fn *done, void *arg, unsigned pct_base,
              unsigned pct_span)
{
    struct xm_request r = parent->req;  /* shallow: only encoded */
    struct job *job;
    char *json = NULL, err[128];
    int rc;

    /* the parent's options that the op takes, through the encoder and
     * the strict parser: a deep copy that cannot drift from them */
    r.op = op;
    r.dry_run = op == XM_OP_DRAIN && dry_run;
    r.stay = false;
    r.payload = NULL;
    r.in_place = false;
    r.name = NULL;
    job = calloc(1, sizeof(*job));
    if (!job)
        return NULL;
    xm_request_init(&job->req);
    rc = xm_request_encode(&r, &json);
    if (!rc)
        rc = xm_request_parse(json, strlen(json), &job->req, err,
                              sizeof(err));
    free(json);
    if (rc) {
        xm_log_err("job %s: cannot make its %s step: %s", parent->id,
                   xm_req_op_name(op), xm_strerror(rc));
        job_free(job);
        return NULL;
    }
    job->a = parent->a;
    snprintf(job->id, sizeof(job->id), "%s", parent->id);
    job->parsed = true;
    job->done = done;
    job->done_arg = arg;
    job->pct_base = pct_base;
    job->pct_span = pct_span;
    return job;
}

void
job_child_discard(struct job *job)
{
    if (job && job->done)
        job_free(job);
}

void
job_step(struct job *job, const char *step)
{
    job_write(job, "/tool/xenmaint/job/%s/step", step);
    xm_log_info("job %s: %s", job->id, step);
}

struct job *
job_resume(struct agent *a, const char *id, const char *json)
{
    struct job *job;
    char err[256];

    if (!xm_request_id_valid(id))
        return NULL;
    job = calloc(1, sizeof(*job));
    if (!job)
        return NULL;
    job->a = a;
    snprintf(job->id, sizeof(job->id), "%s", id);
    xm_request_init(&job->req);
    if (xm_request_parse(json, strlen(json), &job->req, err,
                         sizeof(err)) != XM_OK) {
        xm_log_err("job %s: cannot resume it: its request: %s", id, err);
        job_free(job);
        return NULL;
    }
    job->parsed = true;
    job->next = a->jobs;
    a->jobs = job;
    /* a client that waited saw the agent go; one that reads now sees
     * the job running again */
    job_write(job, "/tool/xenmaint/job/%s/op", xm_req_op_name(job->req.op));
    job_write(job, "/tool/xenmaint/job/%s/state",
              xm_job_state_name(XM_JOB_RUNNING));
    return job;
}

/* ---- taking requests ---- */

static void
take_request(struct agent *a, const char *id)
{
    char path[XM_XS_PATH_MAX], err[256];
    char *text = NULL, *state = NULL;
    size_t len = 0;
    struct job *job = NULL;
    int rc;

    if (!xm_request_id_valid(id) ||
        xm_xs_path(path, "/tool/xenmaint/request/%s", id) != XM_OK) {
        xm_log_warn("dropping a request with an invalid id");
        if (xm_xs_path(path, "/tool/xenmaint/request/%.64s", id) == XM_OK)
            a->d.xs->ops->rm(a->d.xs->ctx, XM_XS_NO_TXN, path);
        return;
    }
    rc = a->d.xs->ops->read(a->d.xs->ctx, XM_XS_NO_TXN, path, &text, &len);
    /* taken once: whatever it says, it is gone from the queue */
    a->d.xs->ops->rm(a->d.xs->ctx, XM_XS_NO_TXN, path);
    if (rc == XM_ERR_NOTFOUND)
        goto out;               /* already taken */
    if (rc) {
        xm_log_warn("request %s: cannot read it: %s", id, xm_strerror(rc));
        goto out;
    }

    if (xm_xs_path(path, "/tool/xenmaint/job/%s/state", id) == XM_OK &&
        xm_xs_read(a->d.xs, XM_XS_NO_TXN, path, &state) == XM_OK) {
        xm_log_warn("request %s: a job of that id exists; ignored", id);
        goto out;
    }

    job = calloc(1, sizeof(*job));
    if (!job) {
        xm_log_err("request %s: out of memory", id);
        goto out;
    }
    job->a = a;
    snprintf(job->id, sizeof(job->id), "%s", id);
    xm_request_init(&job->req);
    job->next = a->jobs;
    a->jobs = job;

    err[0] = '\0';
    rc = xm_request_parse(text, len, &job->req, err, sizeof(err));
    if (rc) {
        job_write(job, "/tool/xenmaint/job/%s/op", "invalid");
        job_finish(job, XM_ERR_INVAL, NULL,
                   err[0] ? err : "malformed request");
        job = NULL;
        goto out;
    }
    job->parsed = true;
    job_write(job, "/tool/xenmaint/job/%s/op", xm_req_op_name(job->req.op));
    job_progress(job, 0);
    job_write(job, "/tool/xenmaint/job/%s/state",
              xm_job_state_name(XM_JOB_RUNNING));
    xm_log_info("job %s: %s%s", id, xm_req_op_name(job->req.op),
                job->req.dry_run ? " (dry run)" : "");
    agent_run_job(job);       /* finishes it now or later */
    job = NULL;
out:
    free(text);
    free(state);
}

static void
scan_requests(struct agent *a)
{
    char **names = NULL;
    unsigned n = 0;
    int rc;

    rc = a->d.xs->ops->directory(a->d.xs->ctx, XM_XS_NO_TXN,
                                 "/tool/xenmaint/request", &names, &n);
    if (rc) {
        if (rc != XM_ERR_NOTFOUND)
            xm_log_warn("cannot list requests: %s", xm_strerror(rc));
        return;
    }
    for (unsigned i = 0; i < n; i++)
        take_request(a, names[i]);
    xm_xs_free_list(names, n);
}

static void
on_xs_ready(void *arg, int fd, short revents)
{
    struct agent *a = arg;
    bool requests = false;
    char *path, *token;

    int rc;

    (void)fd;
    (void)revents;
    while ((rc = a->d.xs->ops->next_event(a->d.xs->ctx, &path,
                                          &token)) == XM_OK) {
        if (strcmp(token, REQUEST_TOKEN) == 0)
            requests = true;
        free(path);
        free(token);
    }
    if (rc != XM_ERR_BUSY) {
        /* xenstored went away: the fd stays readable, so polling it
         * again would spin.  Stop; the service manager restarts us. */
        xm_log_err("lost the xenstore connection: %s", xm_strerror(rc));
        xm_loop_del_fd(a->d.loop, a->xs_fd);
        a->xs_fd = NULL;
        a->failed = rc;
        xm_loop_stop(a->d.loop);
        return;
    }
    if (requests)
        scan_requests(a);
}

/* ---- start and stop ---- */

int
agent_start(struct agent *a)
{
    struct xm_xs *xs = a->d.xs;
    int fd, rc;

    rc = xm_schema_create_tree(xs);
    if (rc) {
        xm_log_err("cannot create /tool/xenmaint: %s", xm_strerror(rc));
        return rc;
    }
    agent_load_state(a);
    if (strcmp(a->state, "draining") == 0 ||
        strcmp(a->state, "undraining") == 0)
        agent_set_state(a, "cordoned", "a drain was interrupted by an "
                        "agent restart: run xl drain again, or xl undrain");
    if (strcmp(a->state, "patching") == 0)
        agent_set_state(a, "cordoned", "a patch was interrupted by an "
                        "agent restart");
    /* Without a journal no migration may start (each one is refused
     * with the reason); everything else still works. */
    if (agent_mig_init(a) != XM_OK)
        xm_log_err("migrations are disabled: no journal in %s",
                   a->d.cfg->state_dir);
    rc = agent_publish_host(a);
    if (rc) {
        xm_log_err("cannot publish the host's state: %s", xm_strerror(rc));
        return rc;
    }
    fd = xs->ops->watch_fd(xs->ctx);
    if (fd < 0)
        return XM_ERR_XS;
    rc = xm_loop_add_fd(a->d.loop, fd, POLLIN, on_xs_ready, a, &a->xs_fd);
    if (rc)
        return rc;
    rc = xs->ops->watch(xs->ctx, "/tool/xenmaint/request", REQUEST_TOKEN);
    if (rc) {
        xm_log_err("cannot watch /tool/xenmaint/request: %s",
                   xm_strerror(rc));
        return rc;
    }
    rc = xm_xs_write_str(xs, XM_XS_NO_TXN, "/tool/xenmaint/agent/version",
                         PACKAGE_VERSION);
    if (!rc)
        rc = xm_xs_writef(xs, XM_XS_NO_TXN, "/tool/xenmaint/agent/started",
                          "%lld", (long long)xm_clock_wall_s(a->d.clock));
    /* last: its presence tells clients the agent is ready */
    if (!rc)
        rc = xm_xs_writef(xs, XM_XS_NO_TXN, "/tool/xenmaint/agent/pid",
                          "%d", a->d.pid);
    if (rc)
        return rc;
    a->started = true;
    /* a patch apply cut short by the last stop goes on first */
    agent_patch_start(a);
    /* requests written while no agent ran */
    scan_requests(a);
    return XM_OK;
}

void
agent_stop(struct agent *a)
{
    struct xm_xs *xs = a->d.xs;

    a->stopping = true;         /* the drain starts no more migrations */
    if (!a->started)
        return;
    xs->ops->rm(xs->ctx, XM_XS_NO_TXN, "/tool/xenmaint/agent/pid");
    xs->ops->unwatch(xs->ctx, "/tool/xenmaint/request", REQUEST_TOKEN);
    xm_loop_del_fd(a->d.loop, a->xs_fd);
    a->xs_fd = NULL;
    a->started = false;
}
