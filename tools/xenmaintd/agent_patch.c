/*
 * agent_patch.c -- hypervisor livepatches: check, apply, revert.
 *
 *  - patch check MANIFEST: what this host needs from an XSA manifest
 *    (already patched, which payload applies, or why none does);
 *  - patch apply PAYLOAD|MANIFEST: a flow of steps, drain -> pre-flight
 *    -> upload -> apply -> verify -> undrain (in place: without the
 *    drain and the undrain).  The pre-flight (ELF, build-ids, the
 *    applied stack, name, size) runs before the drain and again after
 *    it: nothing reaches the hypervisor before it passes.  Verify: the
 *    payload is APPLIED, the stack is as expected, and the manifest's
 *    verify command, if any, prints what it must.  A failure after the
 *    upload takes the payload out again; a failure after the drain
 *    leaves the host drained and cordoned with the reason.  No payload
 *    for this hypervisor and a manifest that says reboot-required: the
 *    host is drained and left in state reboot-required; once it runs
 *    another hypervisor the agent reopens it to `xl undrain`.
 *    The drain and undrain are steps of the job (job_child_new): their
 *    per-guest progress shows under the job's own keys.  Every step is
 *    journaled (state_dir/patch-flow, xm_patchflow.h) before it is
 *    taken; an agent restarted in the middle resumes from the journal
 *    (agent_patch_start) and never applies twice;
 *  - patch revert NAME: revert and unload; a payload that is not loaded
 *    is already in the asked state.
 * The hypervisor applies and reverts asynchronously: the action returns
 * at once and its result shows later in the payload's status, so a
 * loop timer polls it and the agent goes on answering meanwhile.
 * EBUSY/EAGAIN from the hypervisor is retried with back-off.  Every
 * action leaves one audit line in the log (XSA, payload, build-ids,
 * result).  The build-ids of payloads this agent uploaded are kept in
 * state_dir/livepatch-ids, because the hypervisor does not list them.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "agent_int.h"
#include "xm_err.h"
#include "xm_log.h"
#include "xm_lpcheck.h"
#include "xm_manifest.h"
#include "xm_patchflow.h"

extern char **environ;

#define POLL_MS 10              /* while an action is pending */
#define ACTION_DEADLINE_MS 30000
#define BUSY_RETRIES 8
#define IDS_FILE "livepatch-ids"
#define FLOW_FILE "patch-flow"
#define VERIFY_TIMEOUT_MS 60000
#define VERIFY_OUT_MAX (64u * 1024)     /* more output is read, not kept */
#define VERIFY_SHOWN 2048               /* output in the result */
#define STEPS_MAX 12
#define PCT_DRAIN 45                    /* the drain's share of progress */
#define PCT_PATCH 10                    /* then the patch's */

enum patch_phase {
    P_APPLY,                    /* apply/replace issued, waiting */
    P_REVERT,                   /* revert issued, waiting */
    P_UNDO,                     /* taking a failed apply out again */
};

struct flow;

/* One livepatch action and its wait: a revert job's, or a flow's. */
struct patch_run {
    struct agent *a;
    struct job *job;            /* a revert: answered at the end */
    struct flow *flow;          /* an apply: told at the end */
    enum patch_phase phase;
    char name[XM_LP_NAME_MAX + 1];
    enum xm_lp_action action;
    unsigned busy_tries;
    int64_t deadline_ms;
    char xsa[XM_XSA_MAX + 1];
    char payload_id[2 * XM_BUILDID_MAX + 1];
    char xen_id[2 * XM_BUILDID_MAX + 1];
    int fail_code;              /* P_UNDO: why the apply failed */
    char fail_msg[512];
    bool taken_out;             /* the payload was unloaded again */
    int64_t start_ms;           /* upload issued: apply+verify timing */
};

struct step_rec {
    char name[12];
    char result[8];
    int64_t ms;
    char msg[256];
};

/* A patch apply: one at a time per host. */
struct flow {
    struct agent *a;
    struct job *job;
    struct xm_pf_rec rec;       /* rec.phase 0: nothing journaled yet */
    struct xm_manifest m;
    bool have_m;
    int idx;                    /* manifest payload, -1: a bare payload */
    char path[4096];            /* the payload file */
    void *data;                 /* its bytes, as the pre-flight saw them */
    size_t len;
    struct xm_buildid depends;  /* its .livepatch.depends, when read */
    bool have_depends;
    bool in_place, dry_run, resumed;
    bool reboot;                /* no payload: drain, then reboot-required */
    bool loaded;                /* pre-flight found it loaded, unapplied */
    struct patch_run *run;      /* the action under way */
    struct job *child;          /* the drain or undrain under way */
    char *drain_json, *undrain_json;
    struct step_rec steps[STEPS_MAX];
    unsigned n_steps;
    const char *step;           /* the step under way, or NULL */
    int64_t step_t0;
    int64_t start_ms;           /* upload: apply+verify timing */
    /* the verify command */
    pid_t pid;                  /* 0: none running */
    int vfd;
    struct xm_loop_fd *vlfd;
    struct xm_loop_timer *vtimer;
    char *vout;
    size_t vlen;
    bool veof, vran, vmatched, vkilled;
    int vexit;                  /* -1: unknown (signal, not reaped) */
    int64_t vdeadline;
};

static void patch_poll(void *arg);
static void flow_run_done(struct flow *f, struct patch_run *p, int rc,
                          const char *why);

/* ---- the build-ids of payloads we uploaded ---- */

static void
ids_path(struct agent *a, char *buf, size_t len)
{
    snprintf(buf, len, "%s/" IDS_FILE, a->d.cfg->state_dir);
}

/* Fill the build-ids of loaded payloads from our record ("name hex"). */
static void
ids_lookup(struct agent *a, struct xm_lp_loaded *loaded, size_t n)
{
    char path[512], line[300], name[XM_LP_NAME_MAX + 1], hex[200];
    FILE *f;

    ids_path(a, path, sizeof(path));
    f = fopen(path, "r");
    if (!f)
        return;
    while (fgets(line, sizeof(line), f)) {
        struct xm_buildid id;
        if (sscanf(line, "%127s %199s", name, hex) != 2 ||
            xm_buildid_parse(hex, &id) != XM_OK)
            continue;           /* a damaged line is skipped, not trusted */
        for (size_t i = 0; i < n; i++)
            if (strcmp(loaded[i].name, name) == 0)
                loaded[i].build_id = id;
    }
    fclose(f);
}

struct ids_change {
    const char *path, *name, *hex;
};

static int
fill_ids(FILE *out, void *arg)
{
    const struct ids_change *ch = arg;
    char line[300], other[XM_LP_NAME_MAX + 1];
    FILE *in = fopen(ch->path, "r");

    while (in && fgets(line, sizeof(line), in)) {
        if (sscanf(line, "%127s", other) == 1 && strcmp(other, ch->name))
            fputs(line, out);
    }
    if (in)
        fclose(in);
    if (ch->hex && ch->hex[0])
        fprintf(out, "%s %s\n", ch->name, ch->hex);
    return XM_OK;
}

/* Rewrite the record without name, then with (name, hex) if hex. */
static void
ids_update(struct agent *a, const char *name, const char *hex)
{
    char path[512];
    struct ids_change ch = { path, name, hex };
    int rc;

    ids_path(a, path, sizeof(path));
    rc = agent_replace_file(path, fill_ids, &ch);
    if (rc)
        xm_log_warn("%s: %s", path, xm_strerror(rc));
}

/* ---- what the hypervisor holds now ---- */

struct hostview {
    struct xm_lp_hostview view;
    struct xm_lp_loaded *loaded;
    char xen_hex[2 * XM_BUILDID_MAX + 1];
};

static int
hostview_load(struct agent *a, struct hostview *h)
{
    struct xm_hostinfo info;
    struct xm_lp_status *list = NULL;
    size_t n = 0;
    int rc;

    memset(h, 0, sizeof(*h));
    rc = a->d.hv->ops->hostinfo(a->d.hv->ctx, &info);
    if (rc)
        return rc;
    memcpy(h->view.xen_build_id.id, info.build_id, info.build_id_len);
    h->view.xen_build_id.len = info.build_id_len;
    xm_buildid_hex(info.build_id, info.build_id_len, h->xen_hex);
    rc = a->d.hv->ops->lp_list(a->d.hv->ctx, &list, &n);
    if (rc)
        return rc;
    h->loaded = calloc(n ? n : 1, sizeof(*h->loaded));
    if (!h->loaded) {
        free(list);
        return XM_ERR_NOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        snprintf(h->loaded[i].name, sizeof(h->loaded[i].name), "%s",
                 list[i].name);
        h->loaded[i].state = list[i].state;
    }
    free(list);
    ids_lookup(a, h->loaded, n);
    h->view.payloads = h->loaded;
    h->view.npayloads = n;
    return XM_OK;
}

static void
hostview_dispose(struct hostview *h)
{
    free(h->loaded);
    h->loaded = NULL;
}

/* ---- reading files (hostile: bounded) ---- */

static int
read_file(const char *path, size_t max, void **data_r, size_t *len_r,
          char *err, size_t errlen)
{
    struct stat st;
    char *buf = NULL;
    size_t got = 0;
    int fd, rc;

    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(err, errlen, "%.300s: %s", path, strerror(errno));
        return xm_err_from_errno(errno);
    }
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        snprintf(err, errlen, "%.300s: not a regular file", path);
        rc = XM_ERR_INVAL;
        goto out;
    }
    if ((uint64_t)st.st_size > max) {
        snprintf(err, errlen, "%.300s: %lld bytes, more than the %zu a "
                 "livepatch may have", path, (long long)st.st_size, max);
        rc = XM_ERR_TOOBIG;
        goto out;
    }
    buf = malloc(st.st_size ? (size_t)st.st_size : 1);
    if (!buf) {
        rc = XM_ERR_NOMEM;
        goto out;
    }
    while (got < (size_t)st.st_size) {
        ssize_t r = read(fd, buf + got, (size_t)st.st_size - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            snprintf(err, errlen, "%.300s: short read", path);
            rc = XM_ERR_IO;
            goto out;
        }
        got += (size_t)r;
    }
    *data_r = buf;
    buf = NULL;
    *len_r = got;
    rc = XM_OK;
out:
    free(buf);
    close(fd);
    return rc;
}

static bool
is_manifest(const char *path)
{
    size_t n = strlen(path);
    return n > 5 && strcmp(path + n - 5, ".json") == 0;
}

/* ---- results ---- */

static void
audit(struct patch_run *p, const char *action, int rc, const char *why)
{
    int64_t ms = p->start_ms ?
        xm_clock_mono_ms(p->a->d.clock) - p->start_ms : 0;

    xm_log_info("audit: livepatch %s xsa=%s payload=%s payload-build-id=%s "
                "xen-build-id=%s ms=%lld result=%s%s%s", action,
                p->xsa[0] ? p->xsa : "-", p->name,
                p->payload_id[0] ? p->payload_id : "-", p->xen_id,
                (long long)ms, rc ? xm_err_name(rc) : "ok",
                why ? ": " : "", why ? why : "");
}

/* ---- patch check ---- */

static const char *
verdict_name(enum xm_patch_verdict v)
{
    switch (v) {
    case XM_PATCH_ALREADY: return "already-patched";
    case XM_PATCH_APPLICABLE: return "applicable";
    default: return "not-applicable";
    }
}

static void
op_patch_check(struct job *job)
{
    struct agent *a = job->a;
    struct xm_manifest m;
    struct xm_patch_decision d;
    struct hostview h;
    struct xm_jgen *g = NULL;
    char err[512];
    int rc;

    xm_manifest_init(&m);
    memset(&h, 0, sizeof(h));
    rc = xm_manifest_load(job->req.payload, &m, err, sizeof(err));
    if (rc) {
        job_finish(job, rc, NULL, err);
        goto out;
    }
    rc = hostview_load(a, &h);
    if (rc) {
        job_finish(job, rc, NULL, "cannot read the hypervisor's state");
        goto out;
    }
    xm_manifest_decide(&m, &h.view, &d);
    g = xm_jgen_new(false);
    if (!g) {
        job_finish(job, XM_ERR_NOMEM, NULL, NULL);
        goto out;
    }
    xm_jgen_map_open(g);
    xm_jgen_kv_str(g, "host", a->d.cfg->host_name);
    xm_jgen_kv_str(g, "xsa", m.xsa);
    xm_jgen_kv_str(g, "title", m.title);
    xm_jgen_kv_str(g, "xen_build_id", h.xen_hex);
    xm_jgen_kv_str(g, "verdict", verdict_name(d.verdict));
    xm_jgen_kv_bool(g, "applicable", d.verdict == XM_PATCH_APPLICABLE);
    xm_jgen_kv_bool(g, "already_patched", d.verdict == XM_PATCH_ALREADY);
    xm_jgen_kv_str(g, "payload", d.payload >= 0 ?
                   m.payloads[d.payload].name : NULL);
    xm_jgen_kv_str(g, "message", d.reason);
    xm_jgen_key(g, "problems");
    xm_jgen_array_open(g);
    if (d.verdict == XM_PATCH_NOT_APPLICABLE)
        xm_jgen_str(g, d.reason);
    xm_jgen_array_close(g);
    xm_jgen_map_close(g);
    job_finish_json(job, g);
out:
    xm_jgen_free(g);
    hostview_dispose(&h);
    xm_manifest_dispose(&m);
}

/* ---- one action and its wait ---- */

static void
run_free(struct patch_run *p)
{
    free(p);
}

/* A revert job's end: answer it. */
static void
run_answer(struct patch_run *p, int rc, const char *why)
{
    struct job *job = p->job;
    struct xm_jgen *g;

    if (rc) {
        job_finish(job, rc, NULL, why);
        run_free(p);
        return;
    }
    g = xm_jgen_new(false);
    if (!g) {
        job_finish(job, XM_ERR_NOMEM, NULL, NULL);
        run_free(p);
        return;
    }
    xm_jgen_map_open(g);
    xm_jgen_kv_str(g, "host", p->a->d.cfg->host_name);
    xm_jgen_kv_str(g, "name", p->name);
    xm_jgen_kv_str(g, "state", why);
    if (p->payload_id[0])
        xm_jgen_kv_str(g, "build_id", p->payload_id);
    xm_jgen_kv_str(g, "xen_build_id", p->xen_id);
    xm_jgen_map_close(g);
    job_finish_json(job, g);
    xm_jgen_free(g);
    run_free(p);
}

static void
run_end(struct patch_run *p, int rc, const char *why)
{
    if (p->flow)
        flow_run_done(p->flow, p, rc, why);     /* frees p */
    else
        run_answer(p, rc, why);
}

static void
arm(struct patch_run *p, int64_t ms)
{
    int rc = xm_loop_add_timer(p->a->d.loop, ms, patch_poll, p, NULL);

    if (rc)
        run_end(p, rc, "cannot arm a timer");
}

static void
unload(struct patch_run *p)
{
    struct xm_hv *hv = p->a->d.hv;

    if (hv->ops->lp_action(hv->ctx, p->name, XM_LP_UNLOAD, 0) == XM_OK) {
        p->taken_out = true;
        ids_update(p->a, p->name, NULL);
    }
}

/* Issue p->action; busy hypervisor: retry with back-off. */
static void
issue(struct patch_run *p)
{
    struct xm_hv *hv = p->a->d.hv;
    int rc = hv->ops->lp_action(hv->ctx, p->name, p->action, 0);

    if (rc == XM_ERR_BUSY && p->busy_tries++ < BUSY_RETRIES) {
        arm(p, 20 << p->busy_tries);
        return;
    }
    if (rc) {
        if (p->phase == P_APPLY) {
            /* take the uploaded payload out again */
            audit(p, "apply", rc, xm_strerror(rc));
            p->fail_code = rc;
            snprintf(p->fail_msg, sizeof(p->fail_msg), "the hypervisor "
                     "refused to apply %s: %s", p->name, xm_strerror(rc));
            unload(p);
            run_end(p, p->fail_code, p->fail_msg);
            return;
        }
        audit(p, p->phase == P_REVERT ? "revert" : "undo", rc,
              xm_strerror(rc));
        run_end(p, rc, "the hypervisor refused the revert: the payload "
                "is still applied");
        return;
    }
    p->deadline_ms = xm_clock_mono_ms(p->a->d.clock) + ACTION_DEADLINE_MS;
    arm(p, POLL_MS);
}

/* Take an applied payload out: revert, then unload; run_end tells
 * fail_code and fail_msg (or the revert's own failure). */
static void
undo(struct patch_run *p, int fail_code, const char *fail_msg)
{
    p->fail_code = fail_code;
    snprintf(p->fail_msg, sizeof(p->fail_msg), "%s", fail_msg);
    p->phase = P_UNDO;
    p->busy_tries = 0;
    p->deadline_ms = 0;
    p->action = XM_LP_REVERT;
    issue(p);
}

static void
patch_poll(void *arg)
{
    struct patch_run *p = arg;
    struct agent *a = p->a;
    struct xm_hv *hv = a->d.hv;
    struct xm_lp_status st;
    char msg[512];
    int rc;

    if (p->deadline_ms == 0) {      /* a busy retry, not a poll */
        issue(p);
        return;
    }
    rc = hv->ops->lp_get(hv->ctx, p->name, &st);
    /* pending, or its status unreadable for now: read it again */
    if ((rc == XM_OK && st.rc == -EAGAIN) ||
        (rc != XM_OK && rc != XM_ERR_NOTFOUND)) {
        if (xm_clock_mono_ms(a->d.clock) > p->deadline_ms) {
            audit(p, "wait", XM_ERR_TIMEOUT, "action still pending");
            run_end(p, XM_ERR_TIMEOUT, "the hypervisor did not finish "
                    "the livepatch action in time, or its status could "
                    "not be read: the payload's state is unknown");
            return;
        }
        arm(p, POLL_MS);
        return;
    }
    switch (p->phase) {
    case P_APPLY:
        if (rc == XM_OK && st.rc == 0 && st.state == XM_LP_APPLIED) {
            audit(p, p->action == XM_LP_REPLACE ? "replace" : "apply",
                  XM_OK, NULL);
            run_end(p, XM_OK, "applied");
            return;
        }
        /* not applied after the action: take it out again */
        snprintf(msg, sizeof(msg), "%s is not applied after the action "
                 "(state %d, rc %d): taken out again", p->name,
                 rc ? -1 : st.state, rc ? rc : st.rc);
        audit(p, "verify", rc ? rc : XM_ERR_HV, msg);
        if (rc == XM_OK && st.state == XM_LP_APPLIED) {
            undo(p, XM_ERR_HV, msg);
        } else {
            p->fail_code = rc ? rc : XM_ERR_HV;
            snprintf(p->fail_msg, sizeof(p->fail_msg), "%s", msg);
            unload(p);
            run_end(p, p->fail_code, p->fail_msg);
        }
        return;
    case P_REVERT:
    case P_UNDO:
        if (rc || st.rc != 0 || st.state != XM_LP_CHECKED) {
            audit(p, "revert", rc ? rc : XM_ERR_HV, "still applied");
            run_end(p, rc ? rc : XM_ERR_HV, "the revert did not "
                    "complete: the payload is still applied");
            return;
        }
        rc = hv->ops->lp_action(hv->ctx, p->name, XM_LP_UNLOAD, 0);
        if (rc == XM_OK) {
            p->taken_out = true;
            ids_update(a, p->name, NULL);
        }
        audit(p, "revert+unload", rc, rc ? xm_strerror(rc) : NULL);
        if (p->phase == P_UNDO)
            run_end(p, p->fail_code, p->fail_msg);
        else if (rc)
            run_end(p, rc, "reverted, but the unload failed");
        else
            run_end(p, XM_OK, "reverted and unloaded");
        return;
    }
}

/* ---- the apply flow: journal, steps, result ---- */

static void
flow_path(struct agent *a, char *buf, size_t len)
{
    snprintf(buf, len, "%s/" FLOW_FILE, a->d.cfg->state_dir);
}

static int
fill_flow(FILE *out, void *arg)
{
    const char *json = arg;

    return fputs(json, out) < 0 || fputc('\n', out) == EOF ? XM_ERR_IO
                                                           : XM_OK;
}

/* Journal the flow in phase before the step is taken. */
static int
flow_save(struct flow *f, enum xm_pf_phase phase)
{
    char path[512], *json = NULL;
    int rc;

    f->rec.phase = phase;
    f->rec.updated_s = xm_clock_wall_s(f->a->d.clock);
    rc = xm_pf_encode(&f->rec, &json);
    if (!rc) {
        flow_path(f->a, path, sizeof(path));
        rc = agent_replace_file(path, fill_flow, json);
        if (rc)
            xm_log_err("%s: %s", path, xm_strerror(rc));
    }
    free(json);
    return rc;
}

/* The flow's end could not be journaled: remove the record, so that
 * no later start resumes a flow that was answered. */
static void
flow_forget(struct flow *f)
{
    char path[512];

    flow_path(f->a, path, sizeof(path));
    if (unlink(path) != 0 && errno != ENOENT)
        xm_log_err("%s: %s: a later start may resume patch %s", path,
                   strerror(errno), f->rec.job);
}

static int64_t
flow_now(const struct flow *f)
{
    return xm_clock_mono_ms(f->a->d.clock);
}

static void
step_begin(struct flow *f, const char *name)
{
    f->step = name;
    f->step_t0 = flow_now(f);
    job_step(f->job, name);
}

static void
step_end(struct flow *f, const char *result, const char *msg)
{
    struct step_rec *s;

    if (!f->step || f->n_steps >= STEPS_MAX)
        return;
    s = &f->steps[f->n_steps++];
    snprintf(s->name, sizeof(s->name), "%s", f->step);
    snprintf(s->result, sizeof(s->result), "%s", result);
    s->ms = flow_now(f) - f->step_t0;
    snprintf(s->msg, sizeof(s->msg), "%s", msg ? msg : "");
    f->step = NULL;
}

static void
flow_progress(struct flow *f, unsigned pct)
{
    job_progress(f->job, f->in_place ? pct : PCT_DRAIN + pct * PCT_PATCH /
                                                         100);
}

static void
verify_stop(struct flow *f)
{
    struct agent *a = f->a;

    if (f->vlfd) {
        xm_loop_del_fd(a->d.loop, f->vlfd);
        f->vlfd = NULL;
    }
    if (f->vfd >= 0) {
        close(f->vfd);
        f->vfd = -1;
    }
    xm_loop_cancel_timer(a->d.loop, f->vtimer);
    f->vtimer = NULL;
    if (f->pid > 0) {
        /* our own child, by its pid */
        kill(f->pid, SIGKILL);
        waitpid(f->pid, NULL, 0);
        f->pid = 0;
    }
}

static void
flow_free(struct flow *f)
{
    if (!f)
        return;
    if (f->a->patch == f)
        f->a->patch = NULL;
    verify_stop(f);
    if (f->run)
        f->run->flow = NULL;    /* cannot happen: runs end first */
    if (f->child) {
        f->child->done = NULL;  /* never again */
        f->child->done_arg = NULL;
    }
    xm_pf_rec_dispose(&f->rec);
    xm_manifest_dispose(&f->m);
    free(f->data);
    free(f->drain_json);
    free(f->undrain_json);
    free(f->vout);
    free(f);
}

static void
gen_raw_or_null(struct xm_jgen *g, const char *key, const char *json)
{
    if (!json)
        return;
    xm_jgen_key(g, key);
    xm_jgen_raw(g, json, strlen(json));
}

/* The fields every answer of an apply has (open map, not closed). */
static void
flow_gen(struct flow *f, struct xm_jgen *g)
{
    struct agent *a = f->a;
    char hex[2 * XM_BUILDID_MAX + 1], secs[32];

    xm_jgen_kv_str(g, "host", a->d.cfg->host_name);
    if (f->rec.name[0])
        xm_jgen_kv_str(g, "name", f->rec.name);
    if (f->rec.xsa[0])
        xm_jgen_kv_str(g, "xsa", f->rec.xsa);
    if (f->rec.payload_id.len) {
        xm_buildid_hex(f->rec.payload_id.id, f->rec.payload_id.len, hex);
        xm_jgen_kv_str(g, "build_id", hex);
    }
    if (f->rec.xen_id.len) {
        xm_buildid_hex(f->rec.xen_id.id, f->rec.xen_id.len, hex);
        xm_jgen_kv_str(g, "xen_build_id", hex);
    }
    xm_jgen_kv_bool(g, "in_place", f->in_place);
    xm_jgen_kv_bool(g, "resumed", f->resumed);
    xm_jgen_key(g, "steps");
    xm_jgen_array_open(g);
    for (unsigned i = 0; i < f->n_steps; i++) {
        const struct step_rec *s = &f->steps[i];

        xm_jgen_map_open(g);
        xm_jgen_kv_str(g, "step", s->name);
        xm_jgen_kv_str(g, "result", s->result);
        snprintf(secs, sizeof(secs), "%lld.%lld", (long long)(s->ms / 1000),
                 (long long)(s->ms % 1000 / 100));
        xm_jgen_key(g, "seconds");
        xm_jgen_raw(g, secs, strlen(secs));
        if (s->msg[0])
            xm_jgen_kv_str(g, "message", s->msg);
        xm_jgen_map_close(g);
    }
    xm_jgen_array_close(g);
    if (f->vran) {
        size_t n = f->vlen < VERIFY_SHOWN ? f->vlen : VERIFY_SHOWN;
        char *shown = strndup(f->vout ? f->vout : "", n);

        xm_jgen_key(g, "verify");
        xm_jgen_map_open(g);
        xm_jgen_kv_str(g, "command", f->m.verify_command);
        xm_jgen_kv_str(g, "expect", f->m.verify_expect);
        xm_jgen_kv_int(g, "exit", f->vexit);
        xm_jgen_kv_bool(g, "matched", f->vmatched);
        xm_jgen_kv_bool(g, "timed_out", f->vkilled);
        xm_jgen_kv_str(g, "output", shown ? shown : "");
        xm_jgen_map_close(g);
        free(shown);
    }
    gen_raw_or_null(g, "drain", f->drain_json);
    gen_raw_or_null(g, "undrain", f->undrain_json);
    xm_jgen_kv_str(g, "host_state", a->state);
}

/* The flow succeeded: state is "applied", "already-applied", "dry-run". */
static void
flow_succeed(struct flow *f, const char *state, const char *message)
{
    struct xm_jgen *g;

    if (f->rec.phase && !f->dry_run && flow_save(f, XM_PF_DONE)) {
        flow_forget(f);
        xm_log_warn("patch %s: could not journal its end (it will not "
                    "be resumed: it is over)", f->job->id);
    }
    g = xm_jgen_new(false);
    if (!g) {
        job_finish(f->job, XM_ERR_NOMEM, NULL, NULL);
    } else {
        xm_jgen_map_open(g);
        xm_jgen_kv_str(g, "state", state);
        flow_gen(f, g);
        if (message)
            xm_jgen_kv_str(g, "message", message);
        xm_jgen_map_close(g);
        job_finish_json(f->job, g);
        xm_jgen_free(g);
    }
    f->job = NULL;
    flow_free(f);
}

enum host_after {
    HOST_AS_IS,                 /* nothing changed, or the drain said */
    HOST_CORDON,                /* drained: stays cordoned, reason */
    HOST_REBOOT,                /* drained for a reboot */
};

/*
 * The flow stops.  code_name is the result's error code ("blocked",
 * "reverted", ... or NULL: xm_err_name(rc)).  With an agent that is
 * stopping the journal is left as it is (the next start resumes) and
 * the job is left unanswered.
 */
static void
flow_fail(struct flow *f, int rc, const char *code_name, const char *msg,
          enum host_after after)
{
    struct agent *a = f->a;
    struct xm_jgen *g;
    char reason[256];
    const char *text;
    size_t len;

    if (f->step)
        step_end(f, "failed", msg);
    if (a->stopping) {
        xm_log_warn("patch %s stops with the agent (%s): the next start "
                    "resumes it", f->job->id, msg);
        f->job = NULL;          /* the job list frees it */
        flow_free(f);
        return;
    }
    snprintf(reason, sizeof(reason), "%s%s%.200s", f->rec.xsa,
             f->rec.xsa[0] ? ": " : "", msg);
    if (after == HOST_CORDON && !f->in_place)
        agent_set_state(a, "cordoned", reason);
    else if (after == HOST_REBOOT)
        agent_set_state(a, "reboot-required", reason);
    if (f->rec.phase && !f->dry_run) {
        snprintf(f->rec.reason, sizeof(f->rec.reason), "%s", msg);
        if (flow_save(f, after == HOST_REBOOT ? XM_PF_REBOOT_REQUIRED
                                              : XM_PF_FAILED)) {
            flow_forget(f);
            xm_log_warn("patch %s: could not journal its end",
                        f->job->id);
        }
    }
    g = xm_jgen_new(false);
    if (g) {
        xm_jgen_map_open(g);
        xm_jgen_key(g, "error");
        xm_jgen_map_open(g);
        xm_jgen_kv_str(g, "code", code_name ? code_name : xm_err_name(rc));
        xm_jgen_kv_str(g, "message", msg);
        xm_jgen_map_close(g);
        flow_gen(f, g);
        xm_jgen_map_close(g);
    }
    if (g && xm_jgen_finish(g, &text, &len) == XM_OK)
        job_finish(f->job, rc ? rc : XM_ERR_STATE, text, msg);
    else
        job_finish(f->job, rc ? rc : XM_ERR_STATE, NULL, msg);
    xm_jgen_free(g);
    f->job = NULL;
    flow_free(f);
}

/* ---- pre-flight ---- */

enum pre {
    PRE_UPLOAD,                 /* checked: upload and apply */
    PRE_LOADED,                 /* checked, already loaded: apply */
    PRE_ALREADY,                /* applied already */
    PRE_REBOOT,                 /* no payload: reboot-required */
    PRE_FAIL,                   /* f->fail_* say why */
};

struct pre_fail {
    int rc;
    const char *code;           /* NULL: xm_err_name(rc) */
    char msg[512];
};

/*
 * What to apply, checked against the hypervisor as it is now, without
 * touching it: the manifest's decision, then the file (sha256, ELF,
 * build-ids, the applied stack, name, size).  Fills f->rec's name,
 * replace, payload and hypervisor build-ids.
 */
static enum pre
flow_preflight(struct flow *f, struct pre_fail *why)
{
    struct agent *a = f->a;
    struct xm_patch_decision d;
    struct hostview h;
    struct xm_lp_info info;
    void *data = NULL;
    size_t len = 0;
    enum pre out = PRE_FAIL;
    int rc;

    memset(why, 0, sizeof(*why));
    rc = hostview_load(a, &h);
    if (rc) {
        why->rc = rc;
        snprintf(why->msg, sizeof(why->msg), "cannot read the "
                 "hypervisor's state: %s", xm_strerror(rc));
        hostview_dispose(&h);
        return PRE_FAIL;
    }
    f->rec.xen_id = h.view.xen_build_id;
    f->loaded = false;
    if (f->have_m) {
        xm_manifest_decide(&f->m, &h.view, &d);
        if (d.payload >= 0)
            snprintf(f->rec.name, sizeof(f->rec.name), "%s",
                     f->m.payloads[d.payload].name);
        if (d.verdict == XM_PATCH_ALREADY) {
            out = PRE_ALREADY;
            goto out;
        }
        if (d.verdict != XM_PATCH_APPLICABLE) {
            if (d.why == XM_WHY_REBOOT_REQUIRED) {
                snprintf(why->msg, sizeof(why->msg), "%s", d.reason);
                out = PRE_REBOOT;
                goto out;
            }
            why->rc = XM_ERR_STATE;
            why->code = "blocked";
            snprintf(why->msg, sizeof(why->msg), "%s", d.reason);
            goto out;
        }
        f->idx = d.payload;
        f->rec.replace = f->m.payloads[f->idx].replace;
        f->loaded = d.loaded;
        rc = xm_manifest_payload_path(&f->m, (size_t)f->idx, f->path,
                                      sizeof(f->path));
        if (rc) {
            why->rc = rc;
            snprintf(why->msg, sizeof(why->msg), "the payload's path is "
                     "too long");
            goto out;
        }
    } else {
        f->idx = -1;
        rc = xm_lp_name_from_path(f->path, f->rec.name,
                                  sizeof(f->rec.name));
        if (rc) {
            why->rc = rc;
            snprintf(why->msg, sizeof(why->msg), "cannot name the payload "
                     "after its file (NAME.livepatch)");
            goto out;
        }
    }
    rc = read_file(f->path, XM_LP_MAX_SIZE, &data, &len, why->msg,
                   sizeof(why->msg));
    if (!rc && f->idx >= 0)
        rc = xm_manifest_payload_check(&f->m, (size_t)f->idx, data, len,
                                       why->msg, sizeof(why->msg));
    if (!rc)
        rc = xm_lp_inspect(data, len, &info, why->msg, sizeof(why->msg));
    if (!rc && f->idx >= 0)
        rc = xm_manifest_payload_match(&f->m, (size_t)f->idx, &info,
                                       why->msg, sizeof(why->msg));
    /* a payload already loaded (not applied) has its name and build-id
     * taken: by itself */
    if (!rc && !f->loaded)
        rc = xm_lp_preflight(&info, f->rec.name, &h.view, f->rec.replace,
                             why->msg, sizeof(why->msg));
    if (rc) {
        why->rc = rc;
        goto out;
    }
    f->rec.payload_id = info.build_id;
    f->depends = info.depends;
    f->have_depends = true;
    out = f->loaded ? PRE_LOADED : PRE_UPLOAD;
    /* the bytes checked are the bytes uploaded: no second read */
    free(f->data);
    f->data = data;
    f->len = len;
    data = NULL;
out:
    free(data);
    hostview_dispose(&h);
    return out;
}

/* A run for f's payload. */
static struct patch_run *
flow_run_new(struct flow *f)
{
    struct patch_run *p = calloc(1, sizeof(*p));

    if (!p)
        return NULL;
    p->a = f->a;
    p->flow = f;
    snprintf(p->name, sizeof(p->name), "%s", f->rec.name);
    snprintf(p->xsa, sizeof(p->xsa), "%s", f->rec.xsa);
    xm_buildid_hex(f->rec.payload_id.id, f->rec.payload_id.len,
                   p->payload_id);
    xm_buildid_hex(f->rec.xen_id.id, f->rec.xen_id.len, p->xen_id);
    p->start_ms = f->start_ms;
    f->run = p;
    return p;
}

static void flow_apply(struct flow *f);
static void flow_send(struct flow *f);
static void flow_verify(struct flow *f);
static void flow_undrain(struct flow *f);

/* ---- upload ---- */

/* Pre-flight again (after the drain, or on a resume), then upload. */
static void
flow_upload(struct flow *f)
{
    struct pre_fail why;
    enum pre pre;

    step_begin(f, "preflight");
    pre = flow_preflight(f, &why);
    switch (pre) {
    case PRE_FAIL:
        flow_fail(f, why.rc, why.code, why.msg, HOST_CORDON);
        return;
    case PRE_REBOOT:
        flow_fail(f, XM_ERR_STATE, "reboot-required", why.msg,
                  f->in_place ? HOST_AS_IS : HOST_REBOOT);
        return;
    case PRE_ALREADY:
        /* applied meanwhile (or by the flow before a restart) */
        step_end(f, "ok", "already applied");
        if (flow_save(f, XM_PF_VERIFYING)) {
            flow_fail(f, XM_ERR_IO, NULL, "cannot journal the verify "
                      "step", HOST_CORDON);
            return;
        }
        flow_verify(f);
        return;
    case PRE_LOADED:
        step_end(f, "ok", "already loaded: applying it");
        flow_apply(f);
        return;
    case PRE_UPLOAD:
        break;
    }
    step_end(f, "ok", NULL);
    flow_send(f);
}

/* Journal, then upload the bytes the pre-flight checked; then apply. */
static void
flow_send(struct flow *f)
{
    struct agent *a = f->a;
    struct patch_run *p;
    char err[512];
    int rc;

    if (flow_save(f, XM_PF_UPLOADING)) {
        flow_fail(f, XM_ERR_IO, NULL, "cannot journal the upload: nothing "
                  "was uploaded", HOST_CORDON);
        return;
    }
    if (!f->in_place)
        agent_set_state(a, "patching", f->rec.xsa);
    step_begin(f, "upload");
    flow_progress(f, 30);
    p = flow_run_new(f);
    if (!p || !f->data) {
        free(p);
        f->run = NULL;
        flow_fail(f, XM_ERR_NOMEM, NULL, "out of memory", HOST_CORDON);
        return;
    }
    f->start_ms = flow_now(f);
    p->start_ms = f->start_ms;
    rc = a->d.hv->ops->lp_upload(a->d.hv->ctx, p->name, f->data, f->len);
    free(f->data);
    f->data = NULL;
    if (rc) {
        audit(p, "upload", rc, xm_strerror(rc));
        free(p);
        f->run = NULL;
        snprintf(err, sizeof(err), "the hypervisor refused the upload of "
                 "%s: %s", f->rec.name, xm_strerror(rc));
        flow_fail(f, rc, NULL, err, HOST_CORDON);
        return;
    }
    audit(p, "upload", XM_OK, NULL);
    f->run = NULL;
    free(p);
    {
        char hex[2 * XM_BUILDID_MAX + 1];

        xm_buildid_hex(f->rec.payload_id.id, f->rec.payload_id.len, hex);
        ids_update(a, f->rec.name, hex);
    }
    step_end(f, "ok", NULL);
    agent_crash_point("patch-uploaded");
    flow_apply(f);
}

/* ---- apply ---- */

static void
flow_apply(struct flow *f)
{
    struct patch_run *p;

    if (flow_save(f, XM_PF_APPLYING)) {
        struct xm_hv *hv = f->a->d.hv;
        bool out = hv->ops->lp_action(hv->ctx, f->rec.name, XM_LP_UNLOAD,
                                      0) == XM_OK;

        if (out)
            ids_update(f->a, f->rec.name, NULL);
        flow_fail(f, XM_ERR_IO, NULL, out ? "cannot journal the apply: the "
                  "payload was unloaded again, nothing applied"
                  : "cannot journal the apply: the payload is loaded, not "
                  "applied", HOST_CORDON);
        return;
    }
    if (!f->in_place && strcmp(f->a->state, "patching"))
        agent_set_state(f->a, "patching", f->rec.xsa);
    step_begin(f, "apply");
    flow_progress(f, 50);
    p = flow_run_new(f);
    if (!p) {
        flow_fail(f, XM_ERR_NOMEM, NULL, "out of memory", HOST_CORDON);
        return;
    }
    if (!f->start_ms)
        p->start_ms = f->start_ms = flow_now(f);
    p->phase = P_APPLY;
    p->action = f->rec.replace ? XM_LP_REPLACE : XM_LP_APPLY;
    issue(p);                   /* flow_run_done hears the end */
}

/* The action of f->run ended. */
static void
flow_run_done(struct flow *f, struct patch_run *p, int rc, const char *why)
{
    bool undoing = p->phase == P_UNDO, taken_out = p->taken_out;
    char msg[600];

    f->run = NULL;
    if (undoing) {
        /* a verification failed: the payload was taken out (or not) */
        if (rc && !taken_out)
            snprintf(msg, sizeof(msg), "%s; and taking it out failed: "
                     "%s", f->rec.reason[0] ? f->rec.reason : "verify "
                     "failed", why);
        else
            snprintf(msg, sizeof(msg), "%s", why);
        if (taken_out)
            step_end(f, "ok", "reverted and unloaded");
        run_free(p);
        flow_fail(f, rc ? rc : XM_ERR_STATE,
                  taken_out ? "reverted" : NULL, msg, HOST_CORDON);
        return;
    }
    snprintf(msg, sizeof(msg), "%s", why ? why : "");  /* why may be p's */
    run_free(p);
    if (rc) {
        flow_fail(f, rc, taken_out ? "reverted" : NULL, msg, HOST_CORDON);
        return;
    }
    step_end(f, "ok", NULL);
    if (flow_save(f, XM_PF_VERIFYING)) {
        flow_fail(f, XM_ERR_IO, NULL, "cannot journal the verify step: "
                  "the payload is applied, not verified", HOST_CORDON);
        return;
    }
    flow_verify(f);
}

/* ---- verify ---- */

/* Verification failed after the apply: take the payload out. */
static void
verify_failed(struct flow *f, const char *msg)
{
    struct patch_run *p;

    step_end(f, "failed", msg);
    snprintf(f->rec.reason, sizeof(f->rec.reason), "%s", msg);
    step_begin(f, "revert");
    p = flow_run_new(f);
    if (!p) {
        flow_fail(f, XM_ERR_NOMEM, NULL, msg, HOST_CORDON);
        return;
    }
    audit(p, "verify", XM_ERR_STATE, msg);
    undo(p, XM_ERR_STATE, msg);
}

static void
verified(struct flow *f)
{
    struct patch_run p = { .a = f->a };
    char msg[256];

    snprintf(p.name, sizeof(p.name), "%s", f->rec.name);
    snprintf(p.xsa, sizeof(p.xsa), "%s", f->rec.xsa);
    xm_buildid_hex(f->rec.payload_id.id, f->rec.payload_id.len,
                   p.payload_id);
    xm_buildid_hex(f->rec.xen_id.id, f->rec.xen_id.len, p.xen_id);
    p.start_ms = f->start_ms;
    audit(&p, "apply+verify", XM_OK, NULL);
    snprintf(msg, sizeof(msg), "%s", f->vran ? "the verify command's "
             "output matched" : "");
    step_end(f, "ok", msg[0] ? msg : NULL);
    flow_progress(f, 100);
    if (f->in_place) {
        flow_succeed(f, "applied", NULL);
        return;
    }
    if (flow_save(f, XM_PF_UNDRAINING)) {
        flow_fail(f, XM_ERR_IO, NULL, "patched, but the undrain cannot be "
                  "journaled: the host stays cordoned", HOST_CORDON);
        return;
    }
    flow_undrain(f);
}

static void
verify_end(struct flow *f)
{
    char msg[512];

    f->vmatched = xm_manifest_verify_output(&f->m, f->vout ? f->vout : "");
    if (f->vkilled)
        snprintf(msg, sizeof(msg), "the verify command did not finish in "
                 "%d s", VERIFY_TIMEOUT_MS / 1000);
    else if (f->vexit != 0)
        snprintf(msg, sizeof(msg), "the verify command exited with "
                 "status %d", f->vexit);
    else if (!f->vmatched)
        snprintf(msg, sizeof(msg), "the verify command's output does not "
                 "match '%.200s'", f->m.verify_expect);
    else {
        verified(f);
        return;
    }
    verify_failed(f, msg);
}

static void verify_tick(void *arg);

/* Reap the command (our child, by pid); false: not yet. */
static bool
verify_reap(struct flow *f)
{
    int st = 0;
    pid_t r = waitpid(f->pid, &st, WNOHANG);

    if (r == 0)
        return false;
    if (r == f->pid)
        f->vexit = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    else
        f->vexit = -1;          /* reaped by someone else: unknown */
    f->pid = 0;
    return true;
}

static void
verify_readable(void *arg, int fd, short revents)
{
    struct flow *f = arg;
    char buf[4096];
    ssize_t n;

    (void)revents;
    for (;;) {
        n = read(fd, buf, sizeof(buf));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            return;
        if (n <= 0)
            break;
        if (f->vlen < VERIFY_OUT_MAX) {
            size_t take = (size_t)n;

            if (take > VERIFY_OUT_MAX - f->vlen)
                take = VERIFY_OUT_MAX - f->vlen;
            memcpy(f->vout + f->vlen, buf, take);
            f->vlen += take;
            f->vout[f->vlen] = '\0';
        }
    }
    /* end of output (or a read error): the command is ending */
    xm_loop_del_fd(f->a->d.loop, f->vlfd);
    f->vlfd = NULL;
    close(f->vfd);
    f->vfd = -1;
    f->veof = true;
    xm_loop_cancel_timer(f->a->d.loop, f->vtimer);
    f->vtimer = NULL;
    verify_tick(f);
}

static void
verify_tick(void *arg)
{
    struct flow *f = arg;

    f->vtimer = NULL;
    if (flow_now(f) >= f->vdeadline && f->pid > 0) {
        kill(f->pid, SIGKILL);
        f->vkilled = true;
        waitpid(f->pid, NULL, 0);
        f->pid = 0;
        f->vexit = -1;
    }
    if (f->pid > 0 && (!f->veof || !verify_reap(f))) {
        if (xm_loop_add_timer(f->a->d.loop, f->veof ? 10 : 1000,
                              verify_tick, f, &f->vtimer) == XM_OK)
            return;
        kill(f->pid, SIGKILL);
        waitpid(f->pid, NULL, 0);
        f->pid = 0;
        f->vkilled = true;
        f->vexit = -1;
    }
    verify_stop(f);
    verify_end(f);
}

/* Run "sh -c COMMAND", output (stdout and stderr) into f->vout. */
static int
verify_spawn(struct flow *f, char *err, size_t errlen)
{
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    sigset_t none, dflt;
    char *argv[] = { "sh", "-c", f->m.verify_command, NULL };
    int fds[2], rc;

    f->vout = calloc(1, VERIFY_OUT_MAX + 1);
    if (!f->vout)
        return XM_ERR_NOMEM;
    if (pipe2(fds, O_CLOEXEC) != 0) {
        snprintf(err, errlen, "pipe: %s", strerror(errno));
        return xm_err_from_errno(errno);
    }
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
    posix_spawn_file_actions_adddup2(&fa, fds[1], 2);
    posix_spawnattr_init(&attr);
    /* the agent blocks its signals for signalfd: the command must not */
    sigemptyset(&none);
    sigemptyset(&dflt);
    sigaddset(&dflt, SIGPIPE);
    sigaddset(&dflt, SIGTERM);
    sigaddset(&dflt, SIGINT);
    sigaddset(&dflt, SIGHUP);
    sigaddset(&dflt, SIGCHLD);
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setsigdefault(&attr, &dflt);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK |
                                        POSIX_SPAWN_SETSIGDEF);
    rc = posix_spawn(&f->pid, "/bin/sh", &fa, &attr, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
    close(fds[1]);
    if (rc) {
        close(fds[0]);
        f->pid = 0;
        snprintf(err, errlen, "cannot run the verify command: %s",
                 strerror(rc));
        return xm_err_from_errno(rc);
    }
    f->vran = true;
    f->vexit = -1;
    f->vfd = fds[0];
    fcntl(f->vfd, F_SETFL, fcntl(f->vfd, F_GETFL) | O_NONBLOCK);
    f->vdeadline = flow_now(f) + VERIFY_TIMEOUT_MS;
    rc = xm_loop_add_fd(f->a->d.loop, f->vfd, POLLIN, verify_readable, f,
                        &f->vlfd);
    if (!rc)
        rc = xm_loop_add_timer(f->a->d.loop, 1000, verify_tick, f,
                               &f->vtimer);
    if (rc) {
        snprintf(err, errlen, "cannot watch the verify command");
        verify_stop(f);
    }
    return rc;
}

/* The payload is applied, the stack as expected, the command agrees. */
static void
flow_verify(struct flow *f)
{
    struct hostview h;
    char msg[512], err[256];
    const struct xm_lp_loaded *ours = NULL;
    bool dep_ok;
    int rc;

    step_begin(f, "verify");
    flow_progress(f, 70);
    rc = hostview_load(f->a, &h);
    if (rc) {
        hostview_dispose(&h);
        verify_failed(f, "cannot read the hypervisor's state to verify "
                      "the payload");
        return;
    }
    for (size_t i = 0; i < h.view.npayloads; i++)
        if (!strcmp(h.loaded[i].name, f->rec.name))
            ours = &h.loaded[i];
    msg[0] = '\0';
    if (!ours || ours->state != XM_LP_APPLIED) {
        snprintf(msg, sizeof(msg), "%s is not applied in the hypervisor's "
                 "list", f->rec.name);
    } else if (ours->build_id.len &&
               !xm_buildid_equal(&ours->build_id, &f->rec.payload_id)) {
        snprintf(msg, sizeof(msg), "%s in the hypervisor is not the "
                 "payload this flow uploaded (another build-id)",
                 f->rec.name);
    } else if (f->rec.replace) {
        for (size_t i = 0; i < h.view.npayloads; i++)
            if (&h.loaded[i] != ours && h.loaded[i].state == XM_LP_APPLIED)
                snprintf(msg, sizeof(msg), "%s replaced the stack, but %s "
                         "is still applied", f->rec.name, h.loaded[i].name);
    } else if (f->have_depends && f->depends.len &&
               !xm_buildid_equal(&f->depends, &h.view.xen_build_id)) {
        /* it stacks on a payload: that one must be applied below it */
        dep_ok = false;
        for (size_t i = 0; i < h.view.npayloads; i++)
            if (&h.loaded[i] != ours && h.loaded[i].state == XM_LP_APPLIED &&
                xm_buildid_equal(&h.loaded[i].build_id, &f->depends))
                dep_ok = true;
        if (!dep_ok)
            snprintf(msg, sizeof(msg), "%s depends on a payload that is "
                     "not applied", f->rec.name);
    }
    hostview_dispose(&h);
    if (msg[0]) {
        verify_failed(f, msg);
        return;
    }
    if (!f->have_m || !f->m.verify_command) {
        verified(f);
        return;
    }
    rc = verify_spawn(f, err, sizeof(err));
    if (rc)
        verify_failed(f, err);
    /* else verify_tick / verify_readable go on */
}

/* ---- drain and undrain: steps of the job ---- */

/* {"refused":true}, the host state... of a drain's result. */
static void
drain_done(void *arg, int code, const char *result, const char *message)
{
    struct flow *f = arg;
    xm_json *doc = NULL;
    const char *state = NULL;
    bool refused = false;
    char msg[512];

    f->child = NULL;
    free(f->drain_json);
    f->drain_json = result ? strdup(result) : NULL;
    if (code) {
        snprintf(msg, sizeof(msg), "the drain failed: %s",
                 message ? message : xm_strerror(code));
        flow_fail(f, code, NULL, msg, HOST_AS_IS);
        return;
    }
    if (result)
        xm_json_parse(result, strlen(result), &doc, NULL, 0);
    if (doc) {
        xm_json_get_bool(doc, "refused", &refused);
        xm_json_get_str(doc, "state", &state);
    }
    if (f->dry_run) {
        xm_json_free(doc);
        step_end(f, "ok", "planned");
        flow_succeed(f, "dry-run", NULL);
        return;
    }
    if (refused) {
        xm_json_free(doc);
        flow_fail(f, XM_ERR_STATE, "blocked", "the drain was refused: "
                  "guests that cannot move are listed in drain.blocked; "
                  "nothing was changed", HOST_AS_IS);
        return;
    }
    if (!state || strcmp(state, "drained")) {
        xm_json_free(doc);
        flow_fail(f, XM_ERR_STATE, f->a->stopping ? "cancelled"
                                                  : "partial",
                  "the drain did not empty the host (see drain.moves): "
                  "not patching a host with guests; xl undrain reopens it",
                  HOST_AS_IS);
        return;
    }
    xm_json_free(doc);
    step_end(f, "ok", NULL);
    if (f->reboot) {
        char why[512];

        char hex[2 * XM_BUILDID_MAX + 1];

        xm_buildid_hex(f->rec.xen_id.id, f->rec.xen_id.len, hex);
        snprintf(why, sizeof(why), "no livepatch in the manifest fits "
                 "this hypervisor (build-id %s): drained for a reboot into "
                 "a fixed one; after it, xl undrain brings the guests back",
                 hex);
        flow_fail(f, XM_ERR_STATE, "reboot-required", why, HOST_REBOOT);
        return;
    }
    flow_upload(f);
}

static void
flow_drain(struct flow *f)
{
    if (f->a->drain) {
        flow_fail(f, XM_ERR_BUSY, NULL, "a drain or undrain is already "
                  "running on this host", HOST_AS_IS);
        return;
    }
    if (!f->dry_run && flow_save(f, XM_PF_DRAINING)) {
        flow_fail(f, XM_ERR_IO, NULL, "cannot journal the patch: nothing "
                  "was changed", HOST_AS_IS);
        return;
    }
    step_begin(f, "drain");
    f->child = job_child_new(f->job, XM_OP_DRAIN, f->dry_run, drain_done,
                             f, 0, PCT_DRAIN);
    if (!f->child) {
        flow_fail(f, XM_ERR_NOMEM, NULL, "cannot start the drain",
                  HOST_AS_IS);
        return;
    }
    agent_drain_job(f->child);  /* drain_done hears its end */
}

static void
undrain_done(void *arg, int code, const char *result, const char *message)
{
    struct flow *f = arg;

    f->child = NULL;
    free(f->undrain_json);
    f->undrain_json = result ? strdup(result) : NULL;
    if (f->a->stopping && code) {
        flow_fail(f, code, NULL, "stopped", HOST_AS_IS);
        return;
    }
    step_end(f, code ? "failed" : "ok", code ? message : NULL);
    flow_succeed(f, "applied", code ? "patched, but the undrain failed: "
                 "run xl undrain" : NULL);
}

static void
flow_undrain(struct flow *f)
{
    step_begin(f, "undrain");
    /* the undrain reopens the host (state active) and pulls guests home */
    f->child = job_child_new(f->job, XM_OP_UNDRAIN, false, undrain_done, f,
                             PCT_DRAIN + PCT_PATCH,
                             100 - PCT_DRAIN - PCT_PATCH);
    if (!f->child) {
        flow_fail(f, XM_ERR_NOMEM, NULL, "patched, but the undrain cannot "
                  "start: run xl undrain", HOST_CORDON);
        return;
    }
    agent_undrain_job(f->child);
}

/* ---- apply: the start ---- */

static struct flow *
flow_new(struct job *job)
{
    struct flow *f = calloc(1, sizeof(*f));
    char *json = NULL;

    if (!f)
        return NULL;
    f->a = job->a;
    f->job = job;
    f->vfd = -1;
    f->idx = -1;
    xm_pf_rec_init(&f->rec);
    xm_manifest_init(&f->m);
    snprintf(f->rec.job, sizeof(f->rec.job), "%s", job->id);
    f->in_place = job->req.in_place;
    f->dry_run = job->req.dry_run;
    f->rec.in_place = f->in_place;
    if (xm_request_encode(&job->req, &json) != XM_OK) {
        flow_free(f);
        return NULL;
    }
    f->rec.request = json;
    snprintf(f->path, sizeof(f->path), "%s", job->req.payload);
    return f;
}

/* Load the manifest when the request names one. */
static int
flow_load_manifest(struct flow *f, char *err, size_t errlen)
{
    int rc;

    if (!is_manifest(f->job->req.payload))
        return XM_OK;
    rc = xm_manifest_load(f->job->req.payload, &f->m, err, errlen);
    if (rc)
        return rc;
    f->have_m = true;
    snprintf(f->rec.xsa, sizeof(f->rec.xsa), "%s", f->m.xsa);
    return XM_OK;
}

static void
op_patch_apply(struct job *job)
{
    struct agent *a = job->a;
    struct pre_fail why;
    struct flow *f;
    char err[512];
    enum pre pre;
    int rc;

    if (a->patch) {
        job_finish(job, XM_ERR_BUSY, NULL, "a patch apply is already "
                   "running on this host");
        return;
    }
    if (job->req.in_place &&
        (job->req.n_to || job->req.parallel || job->req.notice_s ||
         job->req.blocked != XM_BLOCKED_REFUSE)) {
        job_finish(job, XM_ERR_INVAL, NULL, "--to, --parallel, --notice "
                   "and --skip-blocked are drain options: not with "
                   "--in-place");
        return;
    }
    if (!job->req.in_place && !job->req.dry_run && a->drain) {
        job_finish(job, XM_ERR_BUSY, NULL, "a drain or undrain is already "
                   "running on this host");
        return;
    }
    f = flow_new(job);
    if (!f) {
        job_finish(job, XM_ERR_NOMEM, NULL, NULL);
        return;
    }
    a->patch = f;
    rc = flow_load_manifest(f, err, sizeof(err));
    if (rc) {
        flow_fail(f, rc, NULL, err, HOST_AS_IS);
        return;
    }
    /* the first pre-flight: before the drain, so that a payload that
     * cannot apply here does not drain the host for nothing */
    step_begin(f, "preflight");
    pre = flow_preflight(f, &why);
    switch (pre) {
    case PRE_FAIL:
        {
            struct patch_run p = { .a = a };

            snprintf(p.name, sizeof(p.name), "%s", f->rec.name);
            snprintf(p.xsa, sizeof(p.xsa), "%s", f->rec.xsa);
            xm_buildid_hex(f->rec.xen_id.id, f->rec.xen_id.len, p.xen_id);
            audit(&p, "preflight", why.rc, why.msg);
        }
        flow_fail(f, why.rc, why.code, why.msg, HOST_AS_IS);
        return;
    case PRE_ALREADY:
        step_end(f, "ok", "already applied");
        {
            struct patch_run p = { .a = a };

            snprintf(p.name, sizeof(p.name), "%s", f->rec.name);
            snprintf(p.xsa, sizeof(p.xsa), "%s", f->rec.xsa);
            xm_buildid_hex(f->rec.xen_id.id, f->rec.xen_id.len, p.xen_id);
            audit(&p, "apply", XM_OK, "already patched");
        }
        flow_succeed(f, "already-applied", NULL);
        return;
    case PRE_REBOOT:
        if (f->in_place) {
            flow_fail(f, XM_ERR_STATE, "reboot-required", why.msg,
                      HOST_AS_IS);
            return;
        }
        step_end(f, "ok", why.msg);
        f->reboot = true;
        break;
    case PRE_UPLOAD:
    case PRE_LOADED:
        step_end(f, "ok", NULL);
        break;
    }
    if (f->dry_run && f->in_place) {
        flow_succeed(f, "dry-run", "pre-flight passed; nothing was "
                     "uploaded");
        return;
    }
    if (f->in_place) {
        if (pre == PRE_LOADED)
            flow_apply(f);
        else
            flow_send(f);
        return;
    }
    flow_drain(f);
}

/* ---- after a restart ---- */

static void
patch_resume(struct agent *a, struct xm_pf_rec *rec)
{
    struct xm_pf_seen seen;
    struct xm_hostinfo info;
    struct xm_lp_status st;
    struct job *job;
    struct flow *f;
    enum xm_pf_next next;
    char why[XM_PF_REASON_MAX], err[512];
    int rc;

    memset(&seen, 0, sizeof(seen));
    if (a->d.hv->ops->hostinfo(a->d.hv->ctx, &info) == XM_OK) {
        memcpy(seen.xen_id.id, info.build_id, info.build_id_len);
        seen.xen_id.len = info.build_id_len;
    }
    if (rec->name[0] &&
        a->d.hv->ops->lp_get(a->d.hv->ctx, rec->name, &st) == XM_OK) {
        seen.loaded = true;
        seen.state = (enum xm_lp_state)st.state;
    }
    next = xm_pf_resume(rec, &seen, why, sizeof(why));
    if (next == XM_PF_NEXT_NOTHING)
        return;
    job = job_resume(a, rec->job, rec->request);
    if (!job) {
        xm_log_err("patch %s: cannot resume it (phase %s); the host stays "
                   "cordoned", rec->job, xm_pf_phase_name(rec->phase));
        return;
    }
    f = flow_new(job);
    if (!f) {
        job_finish(job, XM_ERR_NOMEM, NULL, "cannot resume the patch");
        return;
    }
    a->patch = f;
    f->resumed = true;
    /* what the journal knows of the payload and the hypervisor */
    snprintf(f->rec.name, sizeof(f->rec.name), "%s", rec->name);
    f->rec.payload_id = rec->payload_id;
    f->rec.xen_id = rec->xen_id;
    f->rec.replace = rec->replace;
    f->rec.phase = rec->phase;
    xm_log_warn("patch %s resumed at phase %s: %s", rec->job,
                xm_pf_phase_name(rec->phase), why);
    rc = flow_load_manifest(f, err, sizeof(err));
    if (rc) {
        snprintf(why, sizeof(why), "cannot resume: the manifest: %.400s",
                 err);
        next = XM_PF_NEXT_FAIL;
    }
    if (f->have_m && f->rec.name[0]) {
        for (size_t i = 0; i < f->m.npayloads; i++)
            if (!strcmp(f->m.payloads[i].name, f->rec.name)) {
                f->idx = (int)i;
                f->depends = f->m.payloads[i].depends;
                f->have_depends = f->depends.len > 0;
            }
    }
    switch (next) {
    case XM_PF_NEXT_DRAIN:
        flow_drain(f);
        break;
    case XM_PF_NEXT_PREFLIGHT:
        flow_upload(f);
        break;
    case XM_PF_NEXT_APPLY:
        flow_apply(f);
        break;
    case XM_PF_NEXT_VERIFY:
        if (!f->in_place && strcmp(a->state, "patching"))
            agent_set_state(a, "patching", f->rec.xsa);
        flow_verify(f);
        break;
    case XM_PF_NEXT_UNDRAIN:
        flow_undrain(f);
        break;
    default:
        flow_fail(f, XM_ERR_STATE, NULL, why, HOST_CORDON);
        break;
    }
}

static void
patch_start(void *arg)
{
    struct agent *a = arg;
    struct xm_pf_rec rec;
    struct xm_hostinfo info;
    struct xm_buildid running = { .len = 0 };
    char path[512], err[256], *text = NULL;
    size_t len = 0;
    int rc;

    flow_path(a, path, sizeof(path));
    rc = read_file(path, XM_PF_FILE_MAX, (void **)&text, &len, err,
                   sizeof(err));
    if (rc) {
        if (rc != XM_ERR_NOTFOUND)
            xm_log_err("patch journal: %s", err);
        return;
    }
    rc = xm_pf_decode(text, len, &rec, err, sizeof(err));
    free(text);
    if (rc) {
        xm_log_err("patch journal %s: %s: not resumed", path, err);
        return;
    }
    if (a->d.hv->ops->hostinfo(a->d.hv->ctx, &info) == XM_OK) {
        memcpy(running.id, info.build_id, info.build_id_len);
        running.len = info.build_id_len;
    }
    if (!strcmp(a->state, "reboot-required") &&
        xm_pf_rebooted(&rec, &running)) {
        char was[2 * XM_BUILDID_MAX + 1], now[2 * XM_BUILDID_MAX + 1];
        char reason[256];

        xm_buildid_hex(rec.xen_id.id, rec.xen_id.len, was);
        xm_buildid_hex(running.id, running.len, now);
        snprintf(reason, sizeof(reason), "rebooted into hypervisor "
                 "%.40s (was %.40s): xl undrain brings the guests back",
                 now, was);
        agent_set_state(a, "cordoned", reason);
    }
    if (!xm_pf_phase_final(rec.phase))
        patch_resume(a, &rec);
    xm_pf_rec_dispose(&rec);
}

void
agent_patch_start(struct agent *a)
{
    /* from the loop, once the agent answers: the resumed flow may ask
     * peers and write its job's keys */
    if (xm_loop_add_timer(a->d.loop, 0, patch_start, a, NULL))
        patch_start(a);
}

void
agent_patch_dispose(struct agent *a)
{
    struct flow *f = a->patch;

    if (!f)
        return;
    f->job = NULL;              /* the job list frees it */
    flow_free(f);
}

/* ---- revert ---- */

static void
op_patch_revert(struct job *job)
{
    struct agent *a = job->a;
    struct xm_hv *hv = a->d.hv;
    struct xm_lp_status st;
    struct hostview h;
    struct patch_run *p;
    int rc;

    p = calloc(1, sizeof(*p));
    if (!p) {
        job_finish(job, XM_ERR_NOMEM, NULL, NULL);
        return;
    }
    p->a = a;
    p->job = job;
    snprintf(p->name, sizeof(p->name), "%s", job->req.name);
    if (hostview_load(a, &h) == XM_OK) {
        snprintf(p->xen_id, sizeof(p->xen_id), "%s", h.xen_hex);
        for (size_t i = 0; i < h.view.npayloads; i++)
            if (strcmp(h.loaded[i].name, p->name) == 0)
                xm_buildid_hex(h.loaded[i].build_id.id,
                               h.loaded[i].build_id.len, p->payload_id);
    }
    hostview_dispose(&h);
    rc = hv->ops->lp_get(hv->ctx, p->name, &st);
    if (rc == XM_ERR_NOTFOUND) {
        audit(p, "revert", XM_OK, "not loaded");
        run_answer(p, XM_OK, "not-loaded");
        return;
    }
    if (rc) {
        run_answer(p, rc, "cannot read the payload's state");
        return;
    }
    p->phase = P_REVERT;
    if (st.state == XM_LP_CHECKED) {
        /* applied by nobody: unload only (poll sees CHECKED at once) */
        p->deadline_ms = xm_clock_mono_ms(a->d.clock) + ACTION_DEADLINE_MS;
        patch_poll(p);
        return;
    }
    p->action = XM_LP_REVERT;
    issue(p);
}

void
agent_patch_job(struct job *job)
{
    switch (job->req.op) {
    case XM_OP_PATCH_CHECK:
        op_patch_check(job);
        break;
    case XM_OP_PATCH_APPLY:
        op_patch_apply(job);
        break;
    case XM_OP_PATCH_REVERT:
        op_patch_revert(job);
        break;
    default:
        job_finish(job, XM_ERR_INVAL, NULL, "not a patch operation");
        break;
    }
}
