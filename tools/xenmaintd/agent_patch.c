/*
 * agent_patch.c -- hypervisor livepatches: check, apply in place, revert.
 *
 *  - patch check MANIFEST: what this host needs from an XSA manifest
 *    (already patched, which payload applies, or why none does);
 *  - patch apply PAYLOAD|MANIFEST --in-place: pre-flight (ELF, build-ids,
 *    the applied stack, name, size: nothing reaches the hypervisor
 *    before it passes), upload, apply (or replace), wait for the
 *    hypervisor to finish the action, verify that the payload is
 *    APPLIED, and on any failure after the upload take it out again;
 *  - patch revert NAME: revert and unload; a payload that is not loaded
 *    is already in the asked state.
 * The hypervisor applies and reverts asynchronously: the action returns
 * at once and its result shows later in the payload's status, so the job
 * polls it from a loop timer and the agent goes on answering meanwhile.
 * EBUSY/EAGAIN from the hypervisor is retried with back-off.  Every
 * action leaves one audit line in the log (XSA, payload, build-ids,
 * result).  The build-ids of payloads this agent uploaded are kept in
 * state_dir/livepatch-ids, because the hypervisor does not list them.
 *
 * Applying without --in-place means draining first, which needs live
 * migration between agents: refused as unsupported until it lands.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent_int.h"
#include "xm_err.h"
#include "xm_log.h"
#include "xm_lpcheck.h"
#include "xm_manifest.h"

#define POLL_MS 10              /* while an action is pending */
#define ACTION_DEADLINE_MS 30000
#define BUSY_RETRIES 8
#define IDS_FILE "livepatch-ids"

enum patch_phase {
    P_APPLY,                    /* apply/replace issued, waiting */
    P_REVERT,                   /* revert issued, waiting */
    P_UNDO,                     /* taking a failed apply out again */
};

struct patch_run {
    struct job *job;
    enum patch_phase phase;
    char name[XM_LP_NAME_MAX + 1];
    enum xm_lp_action action;
    unsigned busy_tries;
    int64_t deadline_ms;
    char xsa[XM_XSA_MAX + 1];
    char payload_id[2 * XM_BUILDID_MAX + 1];
    char xen_id[2 * XM_BUILDID_MAX + 1];
    int fail_code;              /* P_UNDO: why the apply failed */
    char fail_msg[256];
    bool verify_skipped;        /* the manifest names a verify command */
    int64_t start_ms;           /* upload issued: apply+verify timing */
};

static void patch_poll(void *arg);

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
        xm_clock_mono_ms(p->job->a->d.clock) - p->start_ms : 0;

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

/* ---- apply and revert: the asynchronous part ---- */

static void
run_free(struct patch_run *p)
{
    free(p);
}

static void
run_done(struct patch_run *p, int rc, const char *why)
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
    xm_jgen_kv_str(g, "host", job->a->d.cfg->host_name);
    xm_jgen_kv_str(g, "name", p->name);
    xm_jgen_kv_str(g, "state", why);
    if (p->xsa[0])
        xm_jgen_kv_str(g, "xsa", p->xsa);
    if (p->payload_id[0])
        xm_jgen_kv_str(g, "build_id", p->payload_id);
    xm_jgen_kv_str(g, "xen_build_id", p->xen_id);
    if (p->verify_skipped)
        xm_jgen_kv_str(g, "message", "the manifest's verify command was "
                       "not run: this version does not run commands yet");
    xm_jgen_map_close(g);
    job_finish_json(job, g);
    xm_jgen_free(g);
    run_free(p);
}

static void
arm(struct patch_run *p, int64_t ms)
{
    int rc = xm_loop_add_timer(p->job->a->d.loop, ms, patch_poll, p, NULL);

    if (rc)
        run_done(p, rc, "cannot arm a timer");
}

/* Issue p->action; busy hypervisor: retry with back-off. */
static void
issue(struct patch_run *p)
{
    struct xm_hv *hv = p->job->a->d.hv;
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
            hv->ops->lp_action(hv->ctx, p->name, XM_LP_UNLOAD, 0);
            ids_update(p->job->a, p->name, NULL);
            run_done(p, p->fail_code, p->fail_msg);
            return;
        }
        audit(p, p->phase == P_REVERT ? "revert" : "undo", rc,
              xm_strerror(rc));
        run_done(p, rc, "the hypervisor refused the action");
        return;
    }
    p->deadline_ms = xm_clock_mono_ms(p->job->a->d.clock) +
                     ACTION_DEADLINE_MS;
    arm(p, POLL_MS);
}

static void
patch_poll(void *arg)
{
    struct patch_run *p = arg;
    struct agent *a = p->job->a;
    struct xm_hv *hv = a->d.hv;
    struct xm_lp_status st;
    int rc;

    if (p->deadline_ms == 0) {      /* a busy retry, not a poll */
        issue(p);
        return;
    }
    rc = hv->ops->lp_get(hv->ctx, p->name, &st);
    if (rc == XM_OK && st.rc == -EAGAIN) {
        if (xm_clock_mono_ms(a->d.clock) > p->deadline_ms) {
            audit(p, "wait", XM_ERR_TIMEOUT, "action still pending");
            run_done(p, XM_ERR_TIMEOUT, "the hypervisor did not finish "
                     "the livepatch action in time");
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
            run_done(p, XM_OK, "applied");
            return;
        }
        /* verification failed: revert if it got applied, then unload */
        p->fail_code = rc ? rc : XM_ERR_HV;
        snprintf(p->fail_msg, sizeof(p->fail_msg), "%s is not applied "
                 "after the action (state %d, rc %d): taken out again",
                 p->name, rc ? -1 : st.state, rc ? rc : st.rc);
        audit(p, "verify", p->fail_code, p->fail_msg);
        p->phase = P_UNDO;
        p->busy_tries = 0;
        p->deadline_ms = 0;
        if (rc == XM_OK && st.state == XM_LP_APPLIED) {
            p->action = XM_LP_REVERT;
            issue(p);
        } else {
            hv->ops->lp_action(hv->ctx, p->name, XM_LP_UNLOAD, 0);
            ids_update(a, p->name, NULL);
            run_done(p, p->fail_code, p->fail_msg);
        }
        return;
    case P_REVERT:
    case P_UNDO:
        if (rc || st.rc != 0 || st.state != XM_LP_CHECKED) {
            audit(p, "revert", rc ? rc : XM_ERR_HV, "still applied");
            run_done(p, rc ? rc : XM_ERR_HV, "the revert did not "
                     "complete: the payload is still applied");
            return;
        }
        rc = hv->ops->lp_action(hv->ctx, p->name, XM_LP_UNLOAD, 0);
        if (rc == XM_OK)
            ids_update(a, p->name, NULL);
        audit(p, "revert+unload", rc, rc ? xm_strerror(rc) : NULL);
        if (p->phase == P_UNDO)
            run_done(p, p->fail_code, p->fail_msg);
        else if (rc)
            run_done(p, rc, "reverted, but the unload failed");
        else
            run_done(p, XM_OK, "reverted and unloaded");
        return;
    }
}

/* ---- apply ---- */

static void
op_patch_apply(struct job *job)
{
    struct agent *a = job->a;
    struct xm_manifest m;
    struct xm_patch_decision d;
    struct hostview h;
    struct xm_lp_info info;
    struct patch_run *p = NULL;
    char err[512], path[4096];
    void *data = NULL;
    size_t len = 0;
    bool replace = false;
    int idx = -1, rc;

    xm_manifest_init(&m);
    memset(&h, 0, sizeof(h));
    if (!job->req.in_place) {
        job_finish(job, XM_ERR_UNSUPPORTED, NULL, "draining before "
                   "patching needs live migration between agents, which "
                   "is not available yet: use --in-place");
        goto out;
    }
    p = calloc(1, sizeof(*p));
    if (!p) {
        job_finish(job, XM_ERR_NOMEM, NULL, NULL);
        goto out;
    }
    p->job = job;
    rc = hostview_load(a, &h);
    if (rc) {
        job_finish(job, rc, NULL, "cannot read the hypervisor's state");
        goto out;
    }
    snprintf(p->xen_id, sizeof(p->xen_id), "%s", h.xen_hex);

    if (is_manifest(job->req.payload)) {
        rc = xm_manifest_load(job->req.payload, &m, err, sizeof(err));
        if (rc) {
            job_finish(job, rc, NULL, err);
            goto out;
        }
        snprintf(p->xsa, sizeof(p->xsa), "%s", m.xsa);
        xm_manifest_decide(&m, &h.view, &d);
        if (d.verdict == XM_PATCH_ALREADY) {
            snprintf(p->name, sizeof(p->name), "%s",
                     d.payload >= 0 ? m.payloads[d.payload].name : "?");
            audit(p, "apply", XM_OK, "already patched");
            run_done(p, XM_OK, "already-applied");
            p = NULL;
            goto out;
        }
        if (d.verdict != XM_PATCH_APPLICABLE) {
            audit(p, "check", XM_ERR_STATE, d.reason);
            job_finish(job, XM_ERR_STATE, NULL, d.reason);
            goto out;
        }
        idx = d.payload;
        snprintf(p->name, sizeof(p->name), "%s", m.payloads[idx].name);
        replace = m.payloads[idx].replace;
        p->verify_skipped = m.verify_command != NULL;
        rc = xm_manifest_payload_path(&m, idx, path, sizeof(path));
        if (rc) {
            job_finish(job, rc, NULL, "payload path too long");
            goto out;
        }
    } else {
        snprintf(path, sizeof(path), "%s", job->req.payload);
        rc = xm_lp_name_from_path(path, p->name, sizeof(p->name));
        if (rc) {
            job_finish(job, rc, NULL, "cannot name the payload after its "
                       "file (NAME.livepatch)");
            goto out;
        }
    }

    /* pre-flight: nothing reaches the hypervisor before this passes */
    rc = read_file(path, XM_LP_MAX_SIZE, &data, &len, err, sizeof(err));
    if (!rc && idx >= 0)
        rc = xm_manifest_payload_check(&m, idx, data, len, err,
                                       sizeof(err));
    if (!rc)
        rc = xm_lp_inspect(data, len, &info, err, sizeof(err));
    if (!rc && idx >= 0)
        rc = xm_manifest_payload_match(&m, idx, &info, err, sizeof(err));
    if (!rc)
        rc = xm_lp_preflight(&info, p->name, &h.view, replace, err,
                             sizeof(err));
    if (rc) {
        audit(p, "preflight", rc, err);
        job_finish(job, rc, NULL, err);
        goto out;
    }
    xm_buildid_hex(info.build_id.id, info.build_id.len, p->payload_id);

    p->start_ms = xm_clock_mono_ms(a->d.clock);
    rc = a->d.hv->ops->lp_upload(a->d.hv->ctx, p->name, data, len);
    if (rc) {
        audit(p, "upload", rc, xm_strerror(rc));
        job_finish(job, rc, NULL, "the hypervisor refused the upload");
        goto out;
    }
    ids_update(a, p->name, p->payload_id);
    job_progress(job, 50);
    p->phase = P_APPLY;
    p->action = replace ? XM_LP_REPLACE : XM_LP_APPLY;
    issue(p);               /* owns p from here */
    p = NULL;
out:
    free(p);
    free(data);
    hostview_dispose(&h);
    xm_manifest_dispose(&m);
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
    p->job = job;
    snprintf(p->name, sizeof(p->name), "%s", job->req.name);
    if (hostview_load(a, &h) == XM_OK) {
        snprintf(p->xen_id, sizeof(p->xen_id), "%s", h.xen_hex);
        for (size_t i = 0; i < h.view.npayloads; i++)
            if (strcmp(h.loaded[i].name, p->name) == 0)
                xm_buildid_hex(h.loaded[i].build_id.id,
                               h.loaded[i].build_id.len, p->payload_id);
        hostview_dispose(&h);
    }
    rc = hv->ops->lp_get(hv->ctx, p->name, &st);
    if (rc == XM_ERR_NOTFOUND) {
        audit(p, "revert", XM_OK, "not loaded");
        run_done(p, XM_OK, "not-loaded");
        return;
    }
    if (rc) {
        run_done(p, rc, "cannot read the payload's state");
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
