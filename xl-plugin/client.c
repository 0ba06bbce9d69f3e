/*
 * client.c -- one request to the local xenmaintd, and its answer.
 *
 * The protocol runs over xenstore (the paths are in xenstore-schema):
 *  1. the agent is up when /tool/xenmaint/agent/pid exists;
 *  2. we write the request JSON to /tool/xenmaint/request/<id>;
 *  3. the agent removes it and answers under /tool/xenmaint/job/<id>/
 *     (op, state, progress, result, error), writing result and error
 *     before a terminal state (done or failed); a long result comes in
 *     chunks (xm_xs_big.h);
 *  4. we watch the job directory and wait, at most pickup_ms for the job
 *     to appear and deadline_ms in all; a first SIGINT writes
 *     .../cancel = "1" and we wait on, a second gives up at once; after
 *     a terminal state we remove the job directory.
 * SIGINT is blocked except inside ppoll(), so a signal can never slip in
 * between the check of the interrupt count and the wait.  Job hooks
 * (drain, undrain) read the job's per-guest keys after each wait.
 *
 * The second half turns an answer into output and an exit code.  The
 * results come from another program: every field is optional here, and
 * a field of the wrong type is shown as missing, never trusted.  The
 * third shows per-guest progress (xm_guest_view), from key values that
 * are checked as strictly as a request is.
 */
#include <errno.h>
#include <limits.h>
#include <inttypes.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "client.h"
#include "xm_err.h"
#include "xm_schema.h"
#include "xm_xs_big.h"

#define DEFAULT_DEADLINE_MS 60000u

/* See xm_client_set_job_hooks. */
static const struct xm_job_hooks *default_job_hooks;

void
xm_client_set_job_hooks(const struct xm_job_hooks *hooks)
{
    default_job_hooks = hooks;
}

void
xm_reply_init(struct xm_reply *r)
{
    memset(r, 0, sizeof(*r));
    r->outcome = XM_CALL_ERROR;
    r->state = XM_JOB_QUEUED;
}

void
xm_reply_dispose(struct xm_reply *r)
{
    if (!r)
        return;
    free(r->result_text);
    xm_json_free(r->result);
    free(r->error);
    xm_reply_init(r);
}

static void __attribute__((format(printf, 3, 4)))
reply_fail(struct xm_reply *r, enum xm_call_outcome outcome,
           const char *fmt, ...)
{
    va_list ap;

    r->outcome = outcome;
    va_start(ap, fmt);
    vsnprintf(r->message, sizeof(r->message), fmt, ap);
    va_end(ap);
}

/*
 * Monotonic milliseconds.  Not the xm_clock interface: the waits below
 * are real poll() calls, so a fake clock could not drive them anyway.
 */
static int64_t
now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Take every queued watch event; we only need to know there were some. */
static void
drain_events(struct xm_xs *xs)
{
    char *path, *token;

    while (xs->ops->next_event(xs->ctx, &path, &token) == XM_OK) {
        free(path);
        free(token);
    }
}

/* Read a job key that may be missing: *value_r NULL then. */
static int
read_optional(struct xm_xs *xs, const char *path, char **value_r)
{
    int rc = xm_xs_read(xs, XM_XS_NO_TXN, path, value_r);

    if (rc == XM_ERR_NOTFOUND) {
        *value_r = NULL;
        rc = XM_OK;
    }
    return rc;
}

/* Read result and error once the job is terminal. */
static int
read_answer(struct xm_xs *xs, const char *id, struct xm_reply *r)
{
    char path[XM_XS_PATH_MAX];
    char jerr[128];
    int rc;

    rc = xm_xs_path(path, "/tool/xenmaint/job/%s/result", id);
    if (rc)
        return rc;
    /* A long result comes in chunks (xm_xs_big.h). */
    rc = xm_xs_read_big(xs, XM_XS_NO_TXN, path, &r->result_text, NULL);
    if (rc == XM_ERR_NOTFOUND) {
        r->result_text = NULL;
        rc = XM_OK;
    }
    if (rc)
        return rc;
    rc = xm_xs_path(path, "/tool/xenmaint/job/%s/error", id);
    if (rc)
        return rc;
    rc = read_optional(xs, path, &r->error);
    if (rc)
        return rc;
    if (r->result_text && r->result_text[0]) {
        /* Unreadable JSON leaves result NULL: shown as a protocol error
         * by xm_reply_render_failure, never parsed further. */
        if (xm_json_parse(r->result_text, strlen(r->result_text),
                          &r->result, jerr, sizeof(jerr)) != XM_OK)
            r->result = NULL;
    }
    return XM_OK;
}

/* The agent that took our request is no longer there: its pid key is
 * gone (it stopped), or, with opts->check_pid, no process has that pid
 * (it was killed). */
static bool
agent_gone(struct xm_xs *xs, const struct xm_client_opts *opts)
{
    char *value = NULL, *end = NULL;
    long pid;
    int rc = xm_xs_read(xs, XM_XS_NO_TXN, "/tool/xenmaint/agent/pid",
                        &value);
    bool gone = rc == XM_ERR_NOTFOUND;

    if (!rc && opts->check_pid) {
        errno = 0;
        pid = strtol(value, &end, 10);
        if (!errno && end != value && !*end && pid > 0 && pid <= INT_MAX &&
            kill((pid_t)pid, 0) != 0 && errno == ESRCH)
            gone = true;
    }
    free(value);
    return gone;
}

int
xm_client_call(struct xm_xs *xs, const struct xm_request *req,
               const struct xm_client_opts *opts, struct xm_reply *reply_r)
{
    char req_path[XM_XS_PATH_MAX], job_path[XM_XS_PATH_MAX];
    char path[XM_XS_PATH_MAX];
    char *json = NULL, *value = NULL;
    char last_state[16] = "";
    long last_progress = -1;
    bool watching = false, picked_up = false, request_written = false;
    bool masked = false;
    sigset_t sigint_set, orig_mask;
    int64_t start, pickup_end, deadline;
    unsigned pickup_ms, deadline_ms, poll_ms;
    const struct xm_job_hooks *hooks;
    int rc, r, fd;

    xm_reply_init(reply_r);
    hooks = opts->job ? opts->job : default_job_hooks;
    pickup_ms = opts->pickup_ms ? opts->pickup_ms : XM_CLIENT_PICKUP_MS;
    deadline_ms = opts->deadline_ms ? opts->deadline_ms
                                    : DEFAULT_DEADLINE_MS;
    poll_ms = opts->poll_ms ? opts->poll_ms : XM_CLIENT_POLL_MS;

    rc = xm_xs_read(xs, XM_XS_NO_TXN, "/tool/xenmaint/agent/pid", &value);
    if (rc == XM_ERR_NOTFOUND) {
        reply_fail(reply_r, XM_CALL_NO_AGENT, "xenmaintd is not running "
                   "on this host (no /tool/xenmaint/agent/pid)");
        goto out;
    } else if (rc) {
        reply_fail(reply_r, XM_CALL_ERROR, "cannot read xenstore: %s",
                   xm_strerror(rc));
        goto out;
    }
    free(value);
    value = NULL;

    rc = xm_request_encode(req, &json);
    if (rc) {
        reply_fail(reply_r, XM_CALL_ERROR, "cannot encode the request: %s",
                   xm_strerror(rc));
        goto out;
    }
    if (strlen(json) > XM_XS_VALUE_MAX) {
        rc = XM_ERR_TOOBIG;
        reply_fail(reply_r, XM_CALL_ERROR, "the request is too large "
                   "(%zu bytes, xenstore takes %d)", strlen(json),
                   XM_XS_VALUE_MAX);
        goto out;
    }
    rc = xm_request_new_id(reply_r->id, sizeof(reply_r->id));
    if (rc) {
        reply_fail(reply_r, XM_CALL_ERROR, "cannot make a request id: %s",
                   xm_strerror(rc));
        goto out;
    }
    rc = xm_xs_path(req_path, "/tool/xenmaint/request/%s", reply_r->id);
    if (!rc)
        rc = xm_xs_path(job_path, "/tool/xenmaint/job/%s", reply_r->id);
    if (rc) {
        reply_fail(reply_r, XM_CALL_ERROR, "xenstore path too long");
        goto out;
    }

    if (opts->interrupts) {
        sigemptyset(&sigint_set);
        sigaddset(&sigint_set, SIGINT);
        if (sigprocmask(SIG_BLOCK, &sigint_set, &orig_mask) == 0)
            masked = true;
    }

    /* Watch first, so that no answer can come before we listen. */
    rc = xs->ops->watch(xs->ctx, job_path, reply_r->id);
    if (rc) {
        reply_fail(reply_r, XM_CALL_ERROR, "cannot watch %s: %s", job_path,
                   xm_strerror(rc));
        goto out;
    }
    watching = true;
    rc = xm_xs_write_str(xs, XM_XS_NO_TXN, req_path, json);
    if (rc) {
        reply_fail(reply_r, XM_CALL_ERROR, "cannot write %s: %s", req_path,
                   xm_strerror(rc));
        goto out;
    }
    request_written = true;

    start = now_ms();
    pickup_end = start + pickup_ms;
    deadline = start + deadline_ms;
    fd = xs->ops->watch_fd(xs->ctx);

    for (;;) {
        enum xm_job_state state;
        int64_t now, wake;
        struct pollfd pfd;
        struct timespec ts;
        sig_atomic_t interrupts = opts->interrupts ? *opts->interrupts : 0;

        if (interrupts >= 2) {
            reply_fail(reply_r, XM_CALL_INTERRUPTED, "interrupted");
            rc = XM_ERR_CANCELLED;
            goto out;
        }
        drain_events(xs);

        rc = xm_xs_path(path, "/tool/xenmaint/job/%s/state", reply_r->id);
        if (rc)
            goto out;
        rc = read_optional(xs, path, &value);
        if (rc) {
            reply_fail(reply_r, XM_CALL_ERROR, "cannot read %s: %s", path,
                       xm_strerror(rc));
            goto out;
        }
        if (value) {
            picked_up = true;
            if (xm_job_state_parse(value, &state) != XM_OK) {
                rc = XM_ERR_PROTO;
                reply_fail(reply_r, XM_CALL_ERROR, "xenmaintd wrote an "
                           "invalid job state '%.32s'", value);
                goto out;
            }
            if (state == XM_JOB_DONE || state == XM_JOB_FAILED) {
                reply_r->state = state;
                rc = read_answer(xs, reply_r->id, reply_r);
                if (rc) {
                    reply_fail(reply_r, XM_CALL_ERROR, "cannot read the "
                               "answer: %s", xm_strerror(rc));
                    goto out;
                }
                reply_r->outcome = XM_CALL_ANSWERED;
                /* The last word of the per-guest keys, before they go. */
                if (hooks && hooks->poll)
                    hooks->poll(hooks->arg, xs, reply_r->id, true);
                rc = xs->ops->rm(xs->ctx, XM_XS_NO_TXN, job_path);
                /* A job left behind is the agent's to collect. */
                rc = XM_OK;
                goto out;
            }
            free(value);
            value = NULL;
            rc = xm_xs_path(path, "/tool/xenmaint/job/%s/progress",
                            reply_r->id);
            if (rc)
                goto out;
            if (read_optional(xs, path, &value) == XM_OK) {
                long pct = -1;
                char *end = NULL;

                if (value) {
                    errno = 0;
                    pct = strtol(value, &end, 10);
                    if (errno || end == value || *end || pct < 0 ||
                        pct > 100)
                        pct = -1;
                }
                if (opts->progress &&
                    (pct != last_progress ||
                     strcmp(last_state, xm_job_state_name(state)) != 0))
                    opts->progress(opts->progress_arg,
                                   xm_job_state_name(state),
                                   pct < 0 ? 0 : (unsigned)pct);
                last_progress = pct;
                snprintf(last_state, sizeof(last_state), "%s",
                         xm_job_state_name(state));
            }
            free(value);
            value = NULL;
        } else if (!picked_up) {
            /* The job directory may come before its state key. */
            if (xm_xs_read(xs, XM_XS_NO_TXN, job_path, &value) == XM_OK)
                picked_up = true;
            free(value);
            value = NULL;
        }

        if (interrupts >= 1 && !reply_r->cancel_sent) {
            if (!picked_up) {
                /* Nothing started: withdrawing the request is enough. */
                xs->ops->rm(xs->ctx, XM_XS_NO_TXN, req_path);
                if (xm_xs_read(xs, XM_XS_NO_TXN, job_path, &value) !=
                    XM_OK) {
                    request_written = false;
                    reply_fail(reply_r, XM_CALL_INTERRUPTED,
                               "interrupted before xenmaintd took the "
                               "request; nothing was done");
                    rc = XM_ERR_CANCELLED;
                    goto out;
                }
                free(value);
                value = NULL;
                picked_up = true;
            }
            rc = xm_xs_path(path, "/tool/xenmaint/job/%s/cancel",
                            reply_r->id);
            if (!rc)
                rc = xm_xs_write_str(xs, XM_XS_NO_TXN, path, "1");
            if (rc) {
                reply_fail(reply_r, XM_CALL_ERROR, "cannot ask xenmaintd "
                           "to cancel: %s", xm_strerror(rc));
                goto out;
            }
            reply_r->cancel_sent = true;
            if (hooks && hooks->cancelling)
                hooks->cancelling(hooks->arg);
            continue;
        }

        if (picked_up && agent_gone(xs, opts)) {
            reply_fail(reply_r, XM_CALL_NO_AGENT, "xenmaintd stopped while "
                       "job %s ran; what it did is journaled (a patch "
                       "apply goes on when the agent starts again: see xl "
                       "maint-status)", reply_r->id);
            rc = XM_ERR_NOTFOUND;
            goto out;
        }

        now = now_ms();
        if (!picked_up && now >= pickup_end) {
            reply_fail(reply_r, XM_CALL_NO_ANSWER, "xenmaintd did not "
                       "answer (request %s not taken within %u s)",
                       reply_r->id, (pickup_ms + 999) / 1000);
            rc = XM_ERR_TIMEOUT;
            goto out;
        }
        if (now >= deadline) {
            reply_fail(reply_r, XM_CALL_TIMEOUT, "timed out after %u s "
                       "waiting for job %s", (deadline_ms + 999) / 1000,
                       reply_r->id);
            if (picked_up && !reply_r->cancel_sent &&
                xm_xs_path(path, "/tool/xenmaint/job/%s/cancel",
                           reply_r->id) == XM_OK &&
                xm_xs_write_str(xs, XM_XS_NO_TXN, path, "1") == XM_OK)
                reply_r->cancel_sent = true;
            rc = XM_ERR_TIMEOUT;
            goto out;
        }

        wake = now + poll_ms;
        if (!picked_up && pickup_end < wake)
            wake = pickup_end;
        if (deadline < wake)
            wake = deadline;
        ts.tv_sec = (wake - now) / 1000;
        ts.tv_nsec = ((wake - now) % 1000) * 1000000;
        pfd.fd = fd;
        pfd.events = POLLIN;
        pfd.revents = 0;
        r = ppoll(&pfd, fd >= 0 ? 1 : 0, &ts, masked ? &orig_mask : NULL);
        if (r < 0 && errno != EINTR) {
            rc = xm_err_from_errno(errno);
            reply_fail(reply_r, XM_CALL_ERROR, "poll: %s", strerror(errno));
            goto out;
        }
        if (opts->after_poll)
            opts->after_poll(opts->after_poll_arg);
        if (picked_up && hooks && hooks->poll)
            hooks->poll(hooks->arg, xs, reply_r->id, false);
    }

out:
    /* Never leave a request that nobody took: a late agent would run it
     * with nobody watching. */
    if (request_written && !picked_up)
        xs->ops->rm(xs->ctx, XM_XS_NO_TXN, req_path);
    if (watching)
        xs->ops->unwatch(xs->ctx, job_path, reply_r->id);
    if (masked)
        sigprocmask(SIG_SETMASK, &orig_mask, NULL);
    if (rc == XM_OK && reply_r->outcome != XM_CALL_ANSWERED)
        rc = reply_r->outcome == XM_CALL_NO_AGENT ? XM_ERR_NOTFOUND
                                                  : XM_ERR_STATE;
    free(value);
    free(json);
    return rc;
}

/* ---- presenting answers ---------------------------------------------- */

int
xm_exit_for_error_code(const char *code)
{
    static const struct {
        const char *code;
        int exit_code;
    } map[] = {
        { "blocked", XM_EXIT_BLOCKED },
        { "partial", XM_EXIT_PARTIAL },
        { "reboot-required", XM_EXIT_REBOOT_REQUIRED },
        { "reverted", XM_EXIT_REVERTED },
        { "timeout", XM_EXIT_TIMEOUT },
        { "cancelled", XM_EXIT_INTERRUPTED },
        { "no-agent", XM_EXIT_NO_AGENT },
        { "no-answer", XM_EXIT_NO_AGENT },
        { "interrupted", XM_EXIT_INTERRUPTED },
    };

    for (size_t i = 0; code && i < sizeof(map) / sizeof(map[0]); i++)
        if (strcmp(map[i].code, code) == 0)
            return map[i].exit_code;
    return XM_EXIT_FAILED;
}

/* obj[key] as a string, or NULL when missing or not a string. */
static const char *
get_str(const xm_json *obj, const char *key)
{
    const char *s;

    if (!obj || xm_json_get_str(obj, key, &s) != XM_OK)
        return NULL;
    return s;
}

static bool
get_uint(const xm_json *obj, const char *key, uint64_t *n_r)
{
    return obj && xm_json_get_uint(obj, key, n_r) == XM_OK;
}

/* obj[key] if it is an array, else NULL. */
static const xm_json *
get_array(const xm_json *obj, const char *key)
{
    const xm_json *v = obj ? xm_json_get(obj, key) : NULL;

    return v && xm_json_type(v) == XM_JSON_ARRAY ? v : NULL;
}

/* Print s with control characters replaced: agent text is not trusted
 * to be free of terminal escapes. */
static void
put_clean(FILE *out, const char *s)
{
    for (; s && *s; s++) {
        unsigned char c = (unsigned char)*s;
        fputc(c < 0x20 || c == 0x7f ? '?' : c, out);
    }
}

/* s cleaned and padded to width columns ("?" when NULL). */
static void
put_col(FILE *out, const char *s, int width)
{
    int n = 0;

    if (!s)
        s = "?";
    for (; *s; s++, n++) {
        unsigned char c = (unsigned char)*s;
        fputc(c < 0x20 || c == 0x7f ? '?' : c, out);
    }
    for (; n < width; n++)
        fputc(' ', out);
}

static void
print_error_json(FILE *out, const char *code, const char *message,
                 const char *raw_result)
{
    struct xm_jgen *g = xm_jgen_new(false);
    const char *text;
    size_t len;

    if (!g) {
        fputs("{\"error\":{\"code\":\"nomem\",\"message\":"
              "\"out of memory\"}}\n", out);
        return;
    }
    xm_jgen_map_open(g);
    xm_jgen_key(g, "error");
    xm_jgen_map_open(g);
    xm_jgen_kv_str(g, "code", code);
    xm_jgen_kv_str(g, "message", message);
    xm_jgen_map_close(g);
    if (raw_result) {
        xm_jgen_key(g, "result");
        xm_jgen_raw(g, raw_result, strlen(raw_result));
    }
    xm_jgen_map_close(g);
    if (xm_jgen_finish(g, &text, &len) == XM_OK) {
        fwrite(text, 1, len, out);
        fputc('\n', out);
    } else {
        fputs("{\"error\":{\"code\":\"nomem\",\"message\":"
              "\"cannot encode the error\"}}\n", out);
    }
    xm_jgen_free(g);
}

static const char *const outcome_codes[] = {
    [XM_CALL_ANSWERED] = "failed",
    [XM_CALL_NO_AGENT] = "no-agent",
    [XM_CALL_NO_ANSWER] = "no-answer",
    [XM_CALL_TIMEOUT] = "timeout",
    [XM_CALL_INTERRUPTED] = "interrupted",
    [XM_CALL_ERROR] = "client",
};

int
xm_reply_render_failure(const struct xm_reply *r, const char *what,
                        bool json, FILE *out, FILE *err)
{
    const xm_json *eobj;
    const char *code, *message;

    if (r->outcome != XM_CALL_ANSWERED) {
        code = outcome_codes[r->outcome];
        if (json)
            print_error_json(out, code, r->message, NULL);
        fprintf(err, "%s: %s\n", what, r->message);
        return r->outcome == XM_CALL_ERROR ? XM_EXIT_FAILED
                                           : xm_exit_for_error_code(code);
    }

    if (r->state == XM_JOB_DONE) {
        if (r->result && xm_json_type(r->result) == XM_JSON_OBJECT)
            return -1;
        message = "xenmaintd sent no readable result";
        if (json)
            print_error_json(out, "proto", message, NULL);
        fprintf(err, "%s: %s\n", what, message);
        return XM_EXIT_FAILED;
    }

    /* failed: prefer the structured error, then the error text. */
    eobj = r->result ? xm_json_get(r->result, "error") : NULL;
    if (eobj && xm_json_type(eobj) != XM_JSON_OBJECT)
        eobj = NULL;
    code = get_str(eobj, "code");
    message = get_str(eobj, "message");
    if (!message || !message[0])
        message = r->error && r->error[0] ? r->error : "failed";
    if (!code || !code[0])
        code = "failed";
    if (json) {
        if (eobj)
            xm_reply_print_json(r, out);
        else
            print_error_json(out, code, message,
                             r->result ? r->result_text : NULL);
    }
    fprintf(err, "%s: failed: ", what);
    put_clean(err, message);
    if (strcmp(code, "failed") != 0) {
        fputs(" (", err);
        put_clean(err, code);
        fputc(')', err);
    }
    fputc('\n', err);
    return xm_exit_for_error_code(code);
}

void
xm_reply_print_json(const struct xm_reply *r, FILE *out)
{
    if (r->result_text && r->result) {
        fputs(r->result_text, out);
        fputc('\n', out);
    } else {
        fputs("{}\n", out);
    }
}

const char *
xm_format_kib(unsigned long long kib, char *buf, size_t len)
{
    if (kib >= 1024ull * 1024)
        snprintf(buf, len, "%.1f GiB", (double)kib / (1024.0 * 1024.0));
    else if (kib >= 1024)
        snprintf(buf, len, "%llu MiB", kib / 1024);
    else
        snprintf(buf, len, "%llu KiB", kib);
    return buf;
}

static bool
str_is(const char *s, const char *word)
{
    return s && strcmp(s, word) == 0;
}

/* A guest --shutdown-blocked powered off (real run) or will (dry run):
 * it no longer keeps the host from being empty. */
static bool
blocked_entry_shut(const xm_json *b, bool dry_run)
{
    return str_is(get_str(b, "action"), "shutdown") &&
           str_is(get_str(b, "state"), dry_run ? "planned" : "shut-down");
}

/* Every other blocked entry stays here: "refused", "skipped", and a
 * shutdown that did not happen ("running", "cancelled", no state). */
static bool
blocked_entry_blocks(const xm_json *b, bool dry_run)
{
    return !blocked_entry_shut(b, dry_run);
}

/* obj[key] is the JSON value true. */
static bool
get_true(const xm_json *obj, const char *key)
{
    bool b = false;

    return obj && xm_json_get_bool(obj, key, &b) == XM_OK && b;
}

/*
 * obj[key] as a finite number >= 0.  xm_json reads integers only; a
 * float ("seconds": 12.5) is read back from its JSON text.
 */
static bool
get_seconds(const xm_json *obj, const char *key, double *d_r)
{
    const xm_json *v = obj ? xm_json_get(obj, key) : NULL;
    struct xm_jgen *g;
    const char *text;
    char buf[64], *end;
    size_t len;
    int64_t i;
    double d;
    bool ok = false;

    if (!v || xm_json_type(v) != XM_JSON_NUMBER)
        return false;
    if (xm_json_as_int(v, &i) == XM_OK) {
        *d_r = (double)i;
        return i >= 0;
    }
    g = xm_jgen_new(false);
    if (!g)
        return false;
    xm_jgen_json(g, v);
    if (xm_jgen_finish(g, &text, &len) == XM_OK && len < sizeof(buf)) {
        memcpy(buf, text, len);
        buf[len] = '\0';
        errno = 0;
        d = strtod(buf, &end);
        if (end != buf && *end == '\0' && !errno && isfinite(d) &&
            d >= 0) {
            *d_r = d;
            ok = true;
        }
    }
    xm_jgen_free(g);
    return ok;
}

int
xm_drain_exit_code(const xm_json *result, bool dry_run)
{
    const xm_json *moves, *blocked;
    size_t n_done = 0, n_planned = 0, n_other = 0, n_blocking = 0;

    if (!result || xm_json_type(result) != XM_JSON_OBJECT)
        return XM_EXIT_FAILED;
    moves = get_array(result, "moves");
    blocked = get_array(result, "blocked");
    for (size_t i = 0; blocked && i < xm_json_len(blocked); i++)
        if (blocked_entry_blocks(xm_json_at(blocked, i), dry_run))
            n_blocking++;
    for (size_t i = 0; moves && i < xm_json_len(moves); i++) {
        const char *state = get_str(xm_json_at(moves, i), "state");

        if (str_is(state, "done"))
            n_done++;
        else if (str_is(state, "planned"))
            n_planned++;
        else
            n_other++;
    }
    if (dry_run)
        return n_blocking ? XM_EXIT_BLOCKED
                          : n_other ? XM_EXIT_FAILED : XM_EXIT_OK;
    /* The agent refused to start: nothing moved, whatever the moves say
     * (they are the plan). */
    if (get_true(result, "refused"))
        return XM_EXIT_BLOCKED;
    if (n_blocking == 0 && n_planned == 0 && n_other == 0)
        return XM_EXIT_OK;
    if (n_done > 0)
        return XM_EXIT_PARTIAL;
    /* Nothing moved.  Only a plan and guests that cannot move: blocked
     * (an agent that refuses without saying "refused", or a drain whose
     * every guest was skipped); a move that was tried and failed: 1. */
    return n_blocking && n_other == 0 ? XM_EXIT_BLOCKED : XM_EXIT_FAILED;
}

int
xm_undrain_exit_code(const xm_json *result)
{
    const xm_json *moves, *refused, *unreachable, *started;
    size_t n_done = 0, n_other = 0, n_left;

    if (!result || xm_json_type(result) != XM_JSON_OBJECT)
        return XM_EXIT_FAILED;
    moves = get_array(result, "moves");
    refused = get_array(result, "refused");
    unreachable = get_array(result, "unreachable");
    started = get_array(result, "started");
    for (size_t i = 0; moves && i < xm_json_len(moves); i++) {
        if (str_is(get_str(xm_json_at(moves, i), "state"), "done"))
            n_done++;
        else
            n_other++;
    }
    /* the guests a drain shut down, started again here */
    for (size_t i = 0; started && i < xm_json_len(started); i++) {
        if (str_is(get_str(xm_json_at(started, i), "state"), "running"))
            n_done++;
        else
            n_other++;
    }
    n_left = n_other + (refused ? xm_json_len(refused) : 0) +
             (unreachable ? xm_json_len(unreachable) : 0);
    if (n_left == 0)
        return XM_EXIT_OK;
    return n_done > 0 ? XM_EXIT_PARTIAL : XM_EXIT_FAILED;
}

static void
print_targets(const xm_json *targets, FILE *out)
{
    char mem[32];
    uint64_t n;

    for (size_t i = 0; targets && i < xm_json_len(targets); i++) {
        const xm_json *t = xm_json_at(targets, i);
        const char *name = get_str(t, "name");
        const char *state = get_str(t, "state");
        const char *error = get_str(t, "error");
        bool reachable = true;

        if (t && xm_json_get_bool(t, "reachable", &reachable) != XM_OK)
            reachable = true;
        fputs(i == 0 ? "Targets: " : ", ", out);
        put_clean(out, name ? name : "?");
        if (state) {
            fputs(" (", out);
            put_clean(out, state);
            if (get_uint(t, "free_kib", &n))
                fprintf(out, ", %s free",
                        xm_format_kib(n, mem, sizeof(mem)));
            fputc(')', out);
        }
        if (!reachable)
            fputs(" unreachable", out);
        if (error) {
            fputs(": ", out);
            put_clean(out, error);
        }
        if (i + 1 == xm_json_len(targets))
            fputc('\n', out);
    }
}

/*
 * What became of a guest --shutdown-blocked was to shut down, as the
 * exit code sees it: a dry run's "planned" and a real run's "shut-down"
 * no longer keep the host busy; anything else still runs here.
 */
static void
print_shutdown_state(const xm_json *b, bool dry_run, FILE *out)
{
    const char *state = get_str(b, "state");
    const char *why = get_str(b, "why");

    if (blocked_entry_shut(b, dry_run)) {
        fputs(dry_run ? " [will be shut down]"
                      : " [shut down; xl undrain starts it again]", out);
        return;
    }
    if (str_is(state, "running")) {
        fputs(" [still running", out);
    } else if (str_is(state, "cancelled")) {
        fputs(" [not shut down: the drain was cancelled", out);
    } else {
        fputs(" [shutdown: ", out);
        put_clean(out, state ? state : "state unknown");
    }
    if (why && why[0]) {
        fputs(": ", out);
        put_clean(out, why);
    }
    fputc(']', out);
}

static void
print_blocked(const xm_json *blocked, bool dry_run, FILE *out)
{
    uint64_t n;

    if (!blocked || xm_json_len(blocked) == 0)
        return;
    fputs("Blocked:\n", out);
    for (size_t i = 0; i < xm_json_len(blocked); i++) {
        const xm_json *b = xm_json_at(blocked, i);
        const xm_json *reasons = get_array(b, "reasons");
        const char *guest = get_str(b, "guest");
        const char *detail = get_str(b, "detail");
        const char *action = get_str(b, "action");

        fputs("  ", out);
        put_clean(out, guest ? guest : "?");
        if (get_uint(b, "domid", &n))
            fprintf(out, " (domid %" PRIu64 ")", n);
        fputc(':', out);
        for (size_t j = 0; reasons && j < xm_json_len(reasons); j++) {
            const char *reason;

            if (xm_json_as_str(xm_json_at(reasons, j), &reason) != XM_OK)
                continue;
            fputs(j ? ", " : " ", out);
            put_clean(out, reason);
        }
        if (detail && detail[0]) {
            fputs(" -- ", out);
            put_clean(out, detail);
        }
        if (str_is(action, "shutdown"))
            print_shutdown_state(b, dry_run, out);
        else if (action) {
            fputs(" [", out);
            put_clean(out, action);
            fputc(']', out);
        }
        fputc('\n', out);
    }
}

/* The plan of a dry run (and of a drain that failed before moving). */
static void
drain_print_plan(const xm_json *result, FILE *out)
{
    const xm_json *moves = get_array(result, "moves");
    char mem[32];
    uint64_t n;

    if (moves && xm_json_len(moves) > 0) {
        fprintf(out, "%-24s %6s %10s    %-20s %s\n", "GUEST", "DOMID",
                "MEMORY", "TARGET", "STATE");
        for (size_t i = 0; i < xm_json_len(moves); i++) {
            const xm_json *m = xm_json_at(moves, i);
            const char *state = get_str(m, "state");
            char domid[24] = "-";

            if (get_uint(m, "domid", &n))
                snprintf(domid, sizeof(domid), "%" PRIu64, n);
            if (!get_uint(m, "mem_kib", &n))
                snprintf(mem, sizeof(mem), "-");
            else
                xm_format_kib(n, mem, sizeof(mem));
            put_col(out, get_str(m, "guest"), 24);
            fprintf(out, " %6s %10s -> ", domid, mem);
            put_col(out, get_str(m, "to"), 20);
            fputc(' ', out);
            put_clean(out, state ? state : "?");
            fputc('\n', out);
        }
    } else {
        fputs("No guests to move.\n", out);
    }
}

/* Moves that need the operator's eye: unresolved and broken. */
static void
print_attention(const xm_json *moves, bool homecoming, FILE *out)
{
    bool said = false;

    for (size_t i = 0; moves && i < xm_json_len(moves); i++) {
        const xm_json *m = xm_json_at(moves, i);
        const char *state = get_str(m, "state");
        const char *guest = get_str(m, "guest");
        const char *peer = get_str(m, homecoming ? "from" : "to");
        const char *why = get_str(m, "why");

        if (!str_is(state, "unresolved") && !str_is(state, "broken"))
            continue;
        if (!said)
            fputs("Attention:\n", out);
        said = true;
        fputs("  ", out);
        put_clean(out, guest ? guest : "?");
        if (str_is(state, "broken")) {
            fputs(": broken: no copy of this guest is running; an "
                  "operator is needed", out);
        } else {
            fputs(": unresolved: ", out);
            put_clean(out, peer ? peer : "the other host");
            fputs(homecoming
                  ? " became unreachable after the point of no return; "
                    "the guest is kept suspended there while the agents "
                    "retry"
                  : " became unreachable after the point of no return; "
                    "the guest is kept suspended here while xenmaintd "
                    "retries", out);
        }
        if (why && why[0]) {
            fputs(" (", out);
            put_clean(out, why);
            fputc(')', out);
        }
        fputc('\n', out);
    }
}

static void
print_notice(const xm_json *notice, FILE *out)
{
    const xm_json *acked = get_array(notice, "acked");
    size_t n_acked = 0;
    uint64_t seconds;
    double waited;

    if (!notice || xm_json_type(notice) != XM_JSON_OBJECT)
        return;
    fputs("Notice:", out);
    if (get_uint(notice, "seconds", &seconds))
        fprintf(out, " %" PRIu64 " s given;", seconds);
    for (size_t i = 0; acked && i < xm_json_len(acked); i++) {
        const char *name;

        if (xm_json_as_str(xm_json_at(acked, i), &name) != XM_OK)
            continue;
        if (n_acked < 8) {
            fputs(n_acked ? ", " : " acknowledged by ", out);
            put_clean(out, name);
        }
        n_acked++;
    }
    if (n_acked > 8)
        fprintf(out, " and %zu more", n_acked - 8);
    if (n_acked == 0)
        fputs(" no guest acknowledged", out);
    if (get_seconds(notice, "waited_s", &waited))
        fprintf(out, "; waited %.1f s", waited);
    fputc('\n', out);
}

/* A downtime part in ms as "0.41", or "?" when the agent did not know
 * it (or sent nonsense). */
static const char *
part_secs(const xm_json *obj, const char *key, char *buf, size_t len)
{
    uint64_t ms;

    if (get_uint(obj, key, &ms) && ms < 86400000u)
        snprintf(buf, len, "%.2f", (double)ms / 1000.0);
    else
        snprintf(buf, len, "?");
    return buf;
}

/*
 * Each move's migration stream, for moves that carry the figures (an
 * agent before issue 6 sends none: nothing printed): libxl's bytes,
 * the wire's, their ratio, the compression, the precopy rounds and the
 * downtime with its parts (stream tail + restore + handshake).
 */
/* The moves' stream figures as a table, each line after indent. */
static void
print_streams(const xm_json *moves, const char *indent, FILE *out)
{
    bool said = false;

    for (size_t i = 0; moves && i < xm_json_len(moves); i++) {
        const xm_json *m = xm_json_at(moves, i);
        const xm_json *dt = xm_json_get(m, "downtime");
        const char *comp = get_str(m, "compress");
        char raw[32], wire[32], ratio[16] = "-", rounds[16] = "?";
        char total[16], tail[16], restore[16], hs[16];
        uint64_t lb, wb, n;
        double r;

        if (!get_uint(m, "libxl_bytes", &lb) ||
            !get_uint(m, "wire_bytes", &wb) || (lb == 0 && wb == 0))
            continue;
        if (!said)
            fprintf(out, "%sStreams:\n%s  %-20s %11s %11s %7s %-11s %6s  %s\n",
                    indent, indent, "GUEST", "FROM LIBXL", "ON WIRE", "RATIO", "COMPRESS",
                    "ROUNDS", "DOWNTIME s (TAIL + RESTORE + HANDSHAKE)");
        said = true;
        snprintf(raw, sizeof(raw), "%.1f MiB", (double)lb / 1048576.0);
        snprintf(wire, sizeof(wire), "%.1f MiB", (double)wb / 1048576.0);
        if (get_seconds(m, "ratio", &r) && r < 1e9)
            snprintf(ratio, sizeof(ratio), "%.1fx", r);
        if (get_uint(m, "precopy_rounds", &n) && n < 100000)
            snprintf(rounds, sizeof(rounds), "%" PRIu64, n);
        fprintf(out, "%s  ", indent);
        put_col(out, get_str(m, "guest"), 20);
        fprintf(out, " %11s %11s %7s ", raw, wire, ratio);
        put_col(out, comp ? comp : "?", 11);    /* "zero+zstd:3" */
        fprintf(out, " %6s  %s (%s + %s + %s)\n", rounds,
                part_secs(dt, "total_ms", total, sizeof(total)),
                part_secs(dt, "stream_tail_ms", tail, sizeof(tail)),
                part_secs(dt, "restore_ms", restore, sizeof(restore)),
                part_secs(dt, "handshake_ms", hs, sizeof(hs)));
    }
}

/* After a real drain: how many guests --shutdown-blocked powered off,
 * and how many it asked that still run here. */
static void
print_shutdown_summary(const xm_json *blocked, FILE *out)
{
    size_t n_shut = 0, n_running = 0;

    for (size_t i = 0; blocked && i < xm_json_len(blocked); i++) {
        const xm_json *b = xm_json_at(blocked, i);

        if (blocked_entry_shut(b, false))
            n_shut++;
        else if (str_is(get_str(b, "action"), "shutdown") &&
                 str_is(get_str(b, "state"), "running"))
            n_running++;
    }
    if (n_shut)
        fprintf(out, "Shut down %zu guest%s that could not move "
                "(xl undrain starts %s again).\n", n_shut,
                n_shut == 1 ? "" : "s", n_shut == 1 ? "it" : "them");
    if (n_running)
        fprintf(out, "%zu guest%s did not shut down and still run%s "
                "here.\n", n_running, n_running == 1 ? "" : "s",
                n_running == 1 ? "s" : "");
}

static void
drain_print_real(const xm_json *result, FILE *out)
{
    const xm_json *moves = get_array(result, "moves");
    bool refused = get_true(result, "refused");
    size_t n_moves = moves ? xm_json_len(moves) : 0, n_done = 0;
    char mem[32];
    uint64_t n;

    print_notice(xm_json_get(result, "notice"), out);
    if (n_moves == 0)
        fputs("No guests to move.\n", out);
    else
        fprintf(out, "%-24s %6s %10s    %-20s %-11s %s\n", "GUEST",
                "DOMID", "MEMORY", "TARGET", "STATE", "WHY");
    for (size_t i = 0; i < n_moves; i++) {
        const xm_json *m = xm_json_at(moves, i);
        const char *mstate = get_str(m, "state");
        const char *why = get_str(m, "why");
        char domid[24] = "-";

        if (str_is(mstate, "done"))
            n_done++;
        if (get_uint(m, "domid", &n))
            snprintf(domid, sizeof(domid), "%" PRIu64, n);
        if (!get_uint(m, "mem_kib", &n))
            snprintf(mem, sizeof(mem), "-");
        else
            xm_format_kib(n, mem, sizeof(mem));
        put_col(out, get_str(m, "guest"), 24);
        fprintf(out, " %6s %10s -> ", domid, mem);
        put_col(out, get_str(m, "to"), 20);
        fputc(' ', out);
        if (why && why[0]) {
            put_col(out, mstate, 11);
            fputc(' ', out);
            put_clean(out, why);
        } else {
            put_clean(out, mstate ? mstate : "?");
        }
        fputc('\n', out);
    }
    print_streams(moves, "", out);
    print_blocked(get_array(result, "blocked"), false, out);
    print_attention(moves, false, out);
    if (refused)
        fputs("Refused: nothing was moved, because of the blocked guests "
              "(--skip-blocked\nleaves them here, --shutdown-blocked "
              "shuts them down).\n", out);
    else if (n_moves > 0)
        fprintf(out, "Moved %zu of %zu guest%s.\n", n_done, n_moves,
                n_moves == 1 ? "" : "s");
    if (!refused)
        print_shutdown_summary(get_array(result, "blocked"), out);
}

void
xm_drain_print(const xm_json *result, bool dry_run, FILE *out)
{
    const char *host = get_str(result, "host");
    const char *state = get_str(result, "state");

    fputs(dry_run ? "Drain plan for " : "Drain of ", out);
    put_clean(out, host ? host : "this host");
    if (dry_run) {
        fputs(" (dry run, nothing done)\n", out);
    } else if (state) {
        fputs(" (host ", out);
        put_clean(out, state);
        fputs(")\n", out);
    } else {
        fputc('\n', out);
    }
    print_targets(get_array(result, "targets"), out);
    if (dry_run) {
        drain_print_plan(result, out);
        print_blocked(get_array(result, "blocked"), true, out);
    } else {
        drain_print_real(result, out);
    }
}

/* The guests a drain shut down (--shutdown-blocked), which the undrain
 * started again here: "running" (also when found already running, with
 * why) or "failed" with why. */
static void
print_started(const xm_json *started, FILE *out)
{
    size_t n = started ? xm_json_len(started) : 0, n_running = 0;

    if (n == 0)
        return;
    fputs("Started again (shut down by the drain):\n", out);
    for (size_t i = 0; i < n; i++) {
        const xm_json *e = xm_json_at(started, i);
        const char *state = get_str(e, "state");
        const char *why = get_str(e, "why");

        if (str_is(state, "running"))
            n_running++;
        fputs("  ", out);
        put_col(out, get_str(e, "guest"), 24);
        fputc(' ', out);
        if (why && why[0]) {
            put_col(out, state, 11);
            fputc(' ', out);
            put_clean(out, why);
        } else {
            put_clean(out, state ? state : "?");
        }
        fputc('\n', out);
    }
    fprintf(out, "Started %zu of %zu guest%s again.\n", n_running, n,
            n == 1 ? "" : "s");
}

void
xm_undrain_print(const xm_json *result, FILE *out)
{
    const xm_json *moves = get_array(result, "moves");
    const xm_json *refused = get_array(result, "refused");
    const xm_json *unreachable = get_array(result, "unreachable");
    const xm_json *started = get_array(result, "started");
    const char *host = get_str(result, "host");
    const char *state = get_str(result, "state");
    size_t n_moves = moves ? xm_json_len(moves) : 0, n_done = 0;
    size_t n_refused = refused ? xm_json_len(refused) : 0;
    size_t n_unreachable = unreachable ? xm_json_len(unreachable) : 0;
    size_t n_started = started ? xm_json_len(started) : 0;

    fputs("Undrain of ", out);
    put_clean(out, host ? host : "this host");
    if (state) {
        fputs(" (host ", out);
        put_clean(out, state);
        fputc(')', out);
    }
    fputc('\n', out);
    print_started(started, out);
    if (n_moves == 0 && n_refused == 0 && n_unreachable == 0) {
        if (n_started)
            return;     /* the host's guests were those it started */
        fputs(get_true(result, "stay")
              ? "Host back in service; its guests stay where they are.\n"
              : "Host back in service; no guests to bring back.\n", out);
        return;
    }
    if (n_moves > 0)
        fprintf(out, "%-24s %-20s %-11s %s\n", "GUEST", "FROM", "STATE",
                "WHY");
    for (size_t i = 0; i < n_moves; i++) {
        const xm_json *m = xm_json_at(moves, i);
        const char *mstate = get_str(m, "state");
        const char *why = get_str(m, "why");

        if (str_is(mstate, "done"))
            n_done++;
        put_col(out, get_str(m, "guest"), 24);
        fputc(' ', out);
        put_col(out, get_str(m, "from"), 20);
        fputc(' ', out);
        if (why && why[0]) {
            put_col(out, mstate, 11);
            fputc(' ', out);
            put_clean(out, why);
        } else {
            put_clean(out, mstate ? mstate : "?");
        }
        fputc('\n', out);
    }
    print_streams(moves, "", out);
    if (n_refused > 0)
        fputs("Refused (their current host would not send them back):\n",
              out);
    for (size_t i = 0; i < n_refused; i++) {
        const xm_json *r = xm_json_at(refused, i);
        const char *why = get_str(r, "why");

        fputs("  ", out);
        put_clean(out, get_str(r, "guest") ? get_str(r, "guest") : "?");
        fputs(" on ", out);
        put_clean(out, get_str(r, "from") ? get_str(r, "from") : "?");
        if (why && why[0]) {
            fputs(": ", out);
            put_clean(out, why);
        }
        fputc('\n', out);
    }
    if (n_unreachable > 0)
        fputs("Unreachable (their guests stay there):\n", out);
    for (size_t i = 0; i < n_unreachable; i++) {
        const xm_json *u = xm_json_at(unreachable, i);
        const char *error = get_str(u, "error");

        fputs("  ", out);
        put_clean(out, get_str(u, "host") ? get_str(u, "host") : "?");
        if (error && error[0]) {
            fputs(": ", out);
            put_clean(out, error);
        }
        fputc('\n', out);
    }
    print_attention(moves, true, out);
    if (n_moves > 0)
        fprintf(out, "Brought back %zu of %zu guest%s.\n", n_done, n_moves,
                n_moves == 1 ? "" : "s");
}

/* A host's last migrations (newest first) and their stream figures. */
static void
print_recent(const xm_json *migs, FILE *out)
{
    size_t n = migs ? xm_json_len(migs) : 0;
    double secs;

    if (n == 0)
        return;
    fprintf(out, "  migrations:  the last %zu\n", n);
    for (size_t i = 0; i < n; i++) {
        const xm_json *m = xm_json_at(migs, i);
        const char *to = get_str(m, "to"), *from = get_str(m, "from");
        const char *why = get_str(m, "why");

        fputs("    ", out);
        put_col(out, get_str(m, "guest"), 20);
        fputs(to ? " to   " : " from ", out);
        put_col(out, to ? to : from, 12);
        fputc(' ', out);
        put_col(out, get_str(m, "state"), 8);
        if (get_seconds(m, "seconds", &secs) && secs < 1e7)
            fprintf(out, " %7.1f s", secs);
        if (why && why[0]) {
            fputs("  ", out);
            put_clean(out, why);
        }
        fputc('\n', out);
    }
    print_streams(migs, "  ", out);
}

void
xm_status_print(const xm_json *result, FILE *out)
{
    const xm_json *hosts = get_array(result, "hosts");
    char mem[32], mem2[32];
    uint64_t n, total;

    if (!hosts || xm_json_len(hosts) == 0) {
        fputs("No hosts known to xenmaintd.\n", out);
        return;
    }
    for (size_t i = 0; i < xm_json_len(hosts); i++) {
        const xm_json *h = xm_json_at(hosts, i);
        const xm_json *lps = get_array(h, "livepatches");
        const xm_json *guests = get_array(h, "guests");
        const char *reason = get_str(h, "reason");
        const char *version = get_str(h, "xen_version");
        const char *build_id = get_str(h, "build_id");
        bool self = false, reachable = true;

        if (xm_json_type(h) != XM_JSON_OBJECT)
            continue;
        if (i)
            fputc('\n', out);
        xm_json_get_bool(h, "self", &self);
        if (xm_json_get_bool(h, "reachable", &reachable) != XM_OK)
            reachable = true;
        fputs("Host ", out);
        put_clean(out, get_str(h, "name") ? get_str(h, "name") : "?");
        fputs(self ? " (this host)\n" : "\n", out);
        fputs("  state:       ", out);
        put_clean(out, get_str(h, "state") ? get_str(h, "state") : "?");
        if (reason && reason[0]) {
            fputs(" (", out);
            put_clean(out, reason);
            fputc(')', out);
        }
        fputs(reachable ? "\n" : ", unreachable\n", out);
        if (get_uint(h, "free_kib", &n)) {
            fprintf(out, "  memory:      %s free",
                    xm_format_kib(n, mem, sizeof(mem)));
            if (get_uint(h, "total_kib", &total))
                fprintf(out, " of %s",
                        xm_format_kib(total, mem2, sizeof(mem2)));
            fputc('\n', out);
        }
        if (version) {
            fputs("  xen:         ", out);
            put_clean(out, version);
            if (build_id) {
                fputs(" (build-id ", out);
                put_clean(out, build_id);
                fputc(')', out);
            }
            fputc('\n', out);
        }
        fputs("  livepatches:", out);
        if (!lps || xm_json_len(lps) == 0)
            fputs(" none", out);
        for (size_t j = 0; lps && j < xm_json_len(lps); j++) {
            const xm_json *lp = xm_json_at(lps, j);
            const char *state = get_str(lp, "state");

            fputs(j ? ", " : " ", out);
            put_clean(out, get_str(lp, "name") ? get_str(lp, "name")
                                               : "?");
            if (state) {
                fputs(" (", out);
                put_clean(out, state);
                fputc(')', out);
            }
        }
        fputc('\n', out);
        fprintf(out, "  guests:      %zu\n",
                guests ? xm_json_len(guests) : (size_t)0);
        for (size_t j = 0; guests && j < xm_json_len(guests); j++) {
            const xm_json *g = xm_json_at(guests, j);
            char domid[24] = "-";

            if (get_uint(g, "domid", &n))
                snprintf(domid, sizeof(domid), "%" PRIu64, n);
            if (!get_uint(g, "mem_kib", &n))
                snprintf(mem, sizeof(mem), "-");
            else
                xm_format_kib(n, mem, sizeof(mem));
            fputs("    ", out);
            put_col(out, get_str(g, "name"), 24);
            fprintf(out, " %6s %10s\n", domid, mem);
        }
        print_recent(get_array(h, "migrations"), out);
    }
}

/* obj[key] if it is an object, else NULL. */
static const xm_json *
get_object(const xm_json *obj, const char *key)
{
    const xm_json *v = obj ? xm_json_get(obj, key) : NULL;

    return v && xm_json_type(v) == XM_JSON_OBJECT ? v : NULL;
}

/* An apply that drained around the patch ("in_place":false; an agent
 * that does not say: one whose result has a drain). */
static bool
apply_drains(const xm_json *result)
{
    bool in_place = false;

    if (result && xm_json_get_bool(result, "in_place", &in_place) == XM_OK)
        return !in_place;
    return get_object(result, "drain") != NULL;
}

/* STEP RESULT SECONDS MESSAGE, one line per step object. */
static void
apply_print_steps(const xm_json *steps, FILE *out)
{
    bool header = false;

    for (size_t i = 0; steps && i < xm_json_len(steps); i++) {
        const xm_json *st = xm_json_at(steps, i);
        const char *message = get_str(st, "message");
        double seconds;

        if (xm_json_type(st) != XM_JSON_OBJECT)
            continue;
        if (!header)
            fprintf(out, "%-10s %-8s %8s  %s\n", "STEP", "RESULT",
                    "SECONDS", "MESSAGE");
        header = true;
        put_col(out, get_str(st, "step"), 10);
        fputc(' ', out);
        put_col(out, get_str(st, "result"), 8);
        if (get_seconds(st, "seconds", &seconds) && seconds < 1e9)
            fprintf(out, " %8.1f", seconds);
        else
            fprintf(out, " %8s", "-");
        if (message && message[0]) {
            fputs("  ", out);
            put_clean(out, message);
        }
        fputc('\n', out);
    }
}

#define VERIFY_OUTPUT_LINES 20
#define VERIFY_OUTPUT_BYTES 2048

/* A command's output, indented, control characters as '?', at most
 * VERIFY_OUTPUT_LINES lines and VERIFY_OUTPUT_BYTES bytes. */
static void
put_output(FILE *out, const char *s)
{
    unsigned lines = 0;
    size_t bytes = 0;
    bool bol = true;

    for (; *s; s++, bytes++) {
        unsigned char c = (unsigned char)*s;

        if (lines >= VERIFY_OUTPUT_LINES || bytes >= VERIFY_OUTPUT_BYTES) {
            fputs(bol ? "  | ...\n" : " ...\n", out);
            return;
        }
        if (bol)
            fputs("  | ", out);
        bol = false;
        if (c == '\n') {
            fputc('\n', out);
            lines++;
            bol = true;
            continue;
        }
        fputc(c < 0x20 || c == 0x7f ? '?' : c, out);
    }
    if (!bol)
        fputc('\n', out);
}

static void
apply_print_verify(const xm_json *verify, FILE *out)
{
    const char *command = get_str(verify, "command");
    const char *output = get_str(verify, "output");
    bool matched = false, has_matched, has_exit;
    int64_t code = 0;

    has_exit = xm_json_get_int(verify, "exit", &code) == XM_OK;
    has_matched = xm_json_get_bool(verify, "matched", &matched) == XM_OK;
    fputs("Verify: ", out);
    put_clean(out, command ? command : "?");
    if (has_exit)
        fprintf(out, ": exit %" PRId64, code);
    else
        fputs(": no exit status", out);
    if (has_matched)
        fputs(matched ? ", output matched" : ", output did not match",
              out);
    fputc('\n', out);
    if (output && output[0] && (!has_exit || code != 0 || !matched))
        put_output(out, output);
}

/* The host's state at the end, and what to do about it. */
static void
apply_print_host_state(const xm_json *result, FILE *out)
{
    const char *host = get_str(result, "host");
    const char *state = get_str(result, "host_state");

    if (!state)
        return;
    fputs("Host ", out);
    put_clean(out, host ? host : "?");
    fputs(": ", out);
    put_clean(out, state);
    if (str_is(state, "drained"))
        fputs("; its guests are elsewhere: 'xl undrain' puts it back in "
              "service and brings them home", out);
    else if (str_is(state, "cordoned"))
        fputs("; no guest is placed on it: 'xl undrain' puts it back in "
              "service", out);
    else if (str_is(state, "reboot-required"))
        fputs("; no livepatch fixes its hypervisor: reboot it into a "
              "fixed one", out);
    fputc('\n', out);
}

/* What a patch apply adds to the state line, in the order it happened. */
static void
apply_print_details(const xm_json *result, FILE *out)
{
    const xm_json *drain = get_object(result, "drain");
    const xm_json *undrain = get_object(result, "undrain");
    const xm_json *verify = get_object(result, "verify");
    bool around = apply_drains(result);
    bool dry_run = str_is(get_str(result, "state"), "dry-run") ||
                   get_true(drain, "dry_run");

    /* In place: the output it always had, and the verification. */
    if (around)
        apply_print_steps(get_array(result, "steps"), out);
    if (drain) {
        fputc('\n', out);
        xm_drain_print(drain, dry_run, out);
    }
    if (undrain) {
        fputc('\n', out);
        xm_undrain_print(undrain, out);
    }
    if ((drain || undrain) &&
        (verify || (around && get_str(result, "host_state"))))
        fputc('\n', out);
    if (verify)
        apply_print_verify(verify, out);
    if (around)
        apply_print_host_state(result, out);
}

void
xm_patch_print(const xm_json *result, FILE *out)
{
    const xm_json *lps = get_array(result, "livepatches");
    const xm_json *problems = get_array(result, "problems");
    const xm_json *eobj = get_object(result, "error");
    const char *name = get_str(result, "name");
    const char *state = get_str(result, "state");
    const char *message = get_str(result, "message");

    if (lps) {
        if (xm_json_len(lps) == 0)
            fputs("No livepatches loaded.\n", out);
        else
            fprintf(out, "%-40s %s\n", "NAME", "STATE");
        for (size_t i = 0; i < xm_json_len(lps); i++) {
            const xm_json *lp = xm_json_at(lps, i);

            put_col(out, get_str(lp, "name"), 40);
            fputc(' ', out);
            put_clean(out, get_str(lp, "state") ? get_str(lp, "state")
                                                : "?");
            fputc('\n', out);
        }
    }
    if (name || state) {
        put_clean(out, name ? name : "livepatch");
        fputs(": ", out);
        if (state) {
            put_clean(out, state);
        } else if (eobj) {
            /* A failed apply: its error is on stderr, the code here. */
            fputs("failed", out);
            if (get_str(eobj, "code")) {
                fputs(" (", out);
                put_clean(out, get_str(eobj, "code"));
                fputc(')', out);
            }
        } else {
            fputc('?', out);
        }
        fputc('\n', out);
    }
    for (size_t i = 0; problems && i < xm_json_len(problems); i++) {
        const char *p;

        if (xm_json_as_str(xm_json_at(problems, i), &p) != XM_OK)
            continue;
        fputs("  problem: ", out);
        put_clean(out, p);
        fputc('\n', out);
    }
    apply_print_details(result, out);
    if (message && message[0]) {
        put_clean(out, message);
        fputc('\n', out);
    }
}

int
xm_patch_check_exit_code(const xm_json *result)
{
    bool ok = false, done = false;

    if (!result || xm_json_get_bool(result, "applicable", &ok) != XM_OK)
        return XM_EXIT_FAILED;
    /* already patched: nothing to do is a success for a runbook */
    if (xm_json_get_bool(result, "already_patched", &done) == XM_OK && done)
        return XM_EXIT_OK;
    return ok ? XM_EXIT_OK : XM_EXIT_BLOCKED;
}

int
xm_patch_apply_exit_code(const xm_json *result)
{
    const xm_json *eobj, *undrain, *drain;
    const char *state;

    if (!result || xm_json_type(result) != XM_JSON_OBJECT)
        return XM_EXIT_FAILED;
    /* A failed job's result: its code says (blocked 4, partial 6,
     * reboot-required 7, reverted 8, ...). */
    eobj = xm_json_get(result, "error");
    if (eobj)
        return xm_exit_for_error_code(get_str(eobj, "code"));
    state = get_str(result, "state");
    if (str_is(state, "dry-run")) {
        /* As xl drain --dry-run: 4 when guests could not move. */
        drain = get_object(result, "drain");
        return drain ? xm_drain_exit_code(drain, true) : XM_EXIT_OK;
    }
    if (!str_is(state, "applied") && !str_is(state, "already-applied"))
        return XM_EXIT_FAILED;
    if (!apply_drains(result))
        return XM_EXIT_OK;
    /* Patched; a success only if every guest came home.  No undrain:
     * it was not reached, the guests are still away. */
    undrain = get_object(result, "undrain");
    if (!undrain || xm_undrain_exit_code(undrain) != XM_EXIT_OK)
        return XM_EXIT_PARTIAL;
    return XM_EXIT_OK;
}

/* ---- per-guest progress ---------------------------------------------- */

#define VIEW_STATE_MAX 16          /* "unresolved", "pending", ... */
#define VIEW_PHASE_MAX 12
#define VIEW_DOMID_MAX 32751u      /* below DOMID_FIRST_RESERVED */
#define VIEW_MEM_KIB_MAX (1ull << 50)
#define VIEW_LINE_MAX 1024
#define VIEW_NAME_COLS 20
#define VIEW_BAR_MAX 30

static const char *const view_phases[] = {
    "queued", "notice", "offered", "sending", "finishing", "done", "failed",
};

enum {
    HAS_DOMID = 1u << 0, HAS_FROM = 1u << 1, HAS_TO = 1u << 2,
    HAS_MEM = 1u << 3, HAS_PERCENT = 1u << 4, HAS_BYTES = 1u << 5,
    HAS_STATE = 1u << 6, HAS_WHY = 1u << 7,
};

/* One migration as its key last said, validated.  Zeroed before it is
 * filled, so two of them compare with memcmp. */
struct view_guest {
    char guest[XM_VIEW_GUEST_MAX + 1];
    char from[XM_REQ_HOST_MAX + 1];
    char to[XM_REQ_HOST_MAX + 1];
    char phase[VIEW_PHASE_MAX + 1];
    char state[VIEW_STATE_MAX + 1];
    char why[XM_VIEW_WHY_MAX + 1];
    uint64_t domid, mem_kib, bytes;
    unsigned percent;
    unsigned has;                  /* HAS_*: optional members present */
};

struct xm_view_row {
    char id[XM_REQ_ID_MAX + 1];    /* the migration id (key name) */
    struct view_guest g;
    bool changed;                  /* since the last render */
    bool homecoming;               /* show "<- from", not "-> to" */
    char shown_phase[VIEW_PHASE_MAX + 1];  /* LINES: last printed */
};

void
xm_guest_view_init(struct xm_guest_view *v, enum xm_view_mode mode,
                   FILE *out, FILE *err, const char *what)
{
    memset(v, 0, sizeof(*v));
    v->mode = mode;
    v->out = out;
    v->err = err;
    v->what = what ? what : "xl";
}

void
xm_guest_view_dispose(struct xm_guest_view *v)
{
    if (!v)
        return;
    free(v->row);
    v->row = NULL;
    v->n_row = v->n_alloc = 0;
    v->drawn = 0;
}

/* obj[key]: XM_ERR_NOTFOUND when absent or null, XM_ERR_INVAL when not
 * a string of at most max bytes; else copied into dst (max + 1). */
static int
member_str(const xm_json *obj, const char *key, size_t max, char *dst)
{
    const xm_json *v = xm_json_get(obj, key);
    const char *s;
    size_t n;

    if (xm_json_type(v) == XM_JSON_NULL)
        return XM_ERR_NOTFOUND;
    if (xm_json_as_str(v, &s) != XM_OK)
        return XM_ERR_INVAL;
    n = strlen(s);
    if (n > max)
        return XM_ERR_INVAL;
    memcpy(dst, s, n + 1);
    return XM_OK;
}

/* obj[key]: XM_ERR_NOTFOUND when absent or null, XM_ERR_INVAL when not
 * an integer in [0, max]. */
static int
member_uint(const xm_json *obj, const char *key, uint64_t max,
            uint64_t *n_r)
{
    const xm_json *v = xm_json_get(obj, key);
    uint64_t n;

    if (xm_json_type(v) == XM_JSON_NULL)
        return XM_ERR_NOTFOUND;
    if (xm_json_as_uint(v, &n) != XM_OK || n > max)
        return XM_ERR_INVAL;
    *n_r = n;
    return XM_OK;
}

/* An optional host name: absent, null or "" is absent. */
static int
member_host(const xm_json *obj, const char *key, char *dst)
{
    int rc = member_str(obj, key, XM_REQ_HOST_MAX, dst);

    if (rc == XM_OK && dst[0] == '\0')
        return XM_ERR_NOTFOUND;
    if (rc == XM_OK && !xm_request_host_valid(dst))
        return XM_ERR_INVAL;
    return rc;
}

/* rc of an optional member: XM_OK sets bit in *has, NOTFOUND is fine. */
static bool
member_ok(int rc, unsigned bit, unsigned *has)
{
    if (rc == XM_OK)
        *has |= bit;
    return rc == XM_OK || rc == XM_ERR_NOTFOUND;
}

/* Parse one guest key value into *g: XM_OK or XM_ERR_INVAL. */
static int
view_guest_parse(const char *value, size_t len, struct view_guest *g)
{
    xm_json *doc = NULL;
    const xm_json *why;
    const char *s;
    char jerr[64];
    uint64_t n = 0;
    bool phase_ok = false;
    int rc = XM_ERR_INVAL;

    memset(g, 0, sizeof(*g));
    if (!value || len == 0 || len > XM_XS_VALUE_MAX)
        return XM_ERR_INVAL;
    if (xm_json_parse(value, len, &doc, jerr, sizeof(jerr)) != XM_OK)
        return XM_ERR_INVAL;
    if (xm_json_type(doc) != XM_JSON_OBJECT)
        goto out;
    if (member_str(doc, "guest", XM_VIEW_GUEST_MAX, g->guest) != XM_OK ||
        g->guest[0] == '\0')
        goto out;
    if (member_str(doc, "phase", VIEW_PHASE_MAX, g->phase) != XM_OK)
        goto out;
    for (size_t i = 0; i < sizeof(view_phases) / sizeof(view_phases[0]);
         i++)
        if (strcmp(g->phase, view_phases[i]) == 0)
            phase_ok = true;
    if (!phase_ok)
        goto out;
    if (!member_ok(member_uint(doc, "domid", VIEW_DOMID_MAX, &g->domid),
                   HAS_DOMID, &g->has) ||
        !member_ok(member_host(doc, "from", g->from), HAS_FROM, &g->has) ||
        !member_ok(member_host(doc, "to", g->to), HAS_TO, &g->has) ||
        !member_ok(member_uint(doc, "mem_kib", VIEW_MEM_KIB_MAX,
                               &g->mem_kib), HAS_MEM, &g->has) ||
        !member_ok(member_uint(doc, "bytes", INT64_MAX, &g->bytes),
                   HAS_BYTES, &g->has))
        goto out;
    if (!member_ok(member_uint(doc, "percent", 100, &n), HAS_PERCENT,
                   &g->has))
        goto out;
    if (g->has & HAS_PERCENT)
        g->percent = (unsigned)n;
    if (!member_ok(member_str(doc, "state", VIEW_STATE_MAX, g->state),
                   HAS_STATE, &g->has))
        goto out;
    if ((g->has & HAS_STATE) &&
        (g->state[0] == '\0' ||
         strspn(g->state, "abcdefghijklmnopqrstuvwxyz-") !=
         strlen(g->state)))
        goto out;
    /* why: any length; a long one is cut on a character boundary (the
     * parser has checked that it is UTF-8). */
    why = xm_json_get(doc, "why");
    if (xm_json_type(why) != XM_JSON_NULL) {
        size_t wn;

        if (xm_json_as_str(why, &s) != XM_OK)
            goto out;
        wn = strlen(s);
        if (wn > XM_VIEW_WHY_MAX) {
            wn = XM_VIEW_WHY_MAX;
            while (wn > 0 && ((unsigned char)s[wn] & 0xc0) == 0x80)
                wn--;
        }
        memcpy(g->why, s, wn);
        g->why[wn] = '\0';
        if (wn)
            g->has |= HAS_WHY;
    }
    rc = XM_OK;

out:
    if (rc != XM_OK) {
        memset(g, 0, sizeof(*g));
        rc = XM_ERR_INVAL;
    }
    xm_json_free(doc);
    return rc;
}

int
xm_guest_view_update(struct xm_guest_view *v, const char *migid,
                     const char *value, size_t len)
{
    struct view_guest g;
    struct xm_view_row *row = NULL;

    if (!xm_request_id_valid(migid))
        return XM_ERR_INVAL;
    if (view_guest_parse(value, len, &g) != XM_OK)
        return XM_ERR_INVAL;
    for (unsigned i = 0; i < v->n_row; i++)
        if (strcmp(v->row[i].id, migid) == 0)
            row = &v->row[i];
    if (!row) {
        if (v->n_row >= XM_VIEW_GUESTS_MAX)
            return XM_ERR_TOOBIG;
        if (v->n_row == v->n_alloc) {
            unsigned n = v->n_alloc ? v->n_alloc * 2 : 8;
            struct xm_view_row *grown = realloc(v->row, n * sizeof(*grown));

            if (!grown)
                return XM_ERR_NOMEM;
            v->row = grown;
            v->n_alloc = n;
        }
        row = &v->row[v->n_row++];
        memset(row, 0, sizeof(*row));
        snprintf(row->id, sizeof(row->id), "%s", migid);
        row->homecoming = v->homecoming ||
                          (v->homecoming_by_id && migid[0] == 'u');
        row->changed = true;
    } else if (memcmp(&row->g, &g, sizeof(g)) != 0) {
        row->changed = true;
    }
    row->g = g;
    return XM_OK;
}

/* A line under construction; text that does not fit is dropped. */
struct view_line {
    char text[VIEW_LINE_MAX];
    size_t len;
};

static void __attribute__((format(printf, 2, 3)))
line_add(struct view_line *l, const char *fmt, ...)
{
    va_list ap;
    int n;

    if (l->len + 1 >= sizeof(l->text))
        return;
    va_start(ap, fmt);
    n = vsnprintf(l->text + l->len, sizeof(l->text) - l->len, fmt, ap);
    va_end(ap);
    if (n > 0)
        l->len += (size_t)n;
    if (l->len >= sizeof(l->text))
        l->len = sizeof(l->text) - 1;
}

/* Agent text, with control characters (C0, DEL, and C1 as UTF-8)
 * replaced by '?', cut at cols characters (0: no limit) and padded with
 * spaces to pad characters. */
static void
line_clean(struct view_line *l, const char *s, unsigned cols, unsigned pad)
{
    unsigned used = 0;

    for (; s && *s && l->len + 2 < sizeof(l->text); s++) {
        unsigned char c = (unsigned char)*s;

        if ((c & 0xc0) != 0x80 && cols && used >= cols)
            break;
        if ((c & 0xc0) != 0x80)
            used++;
        if (c == 0xc2 && (unsigned char)s[1] >= 0x80 &&
            (unsigned char)s[1] <= 0x9f) {
            s++;
            c = '?';
        } else if (c < 0x20 || c == 0x7f) {
            c = '?';
        }
        l->text[l->len++] = (char)c;
    }
    for (; used < pad && l->len + 2 < sizeof(l->text); used++)
        l->text[l->len++] = ' ';
    l->text[l->len] = '\0';
}

/* Write at most cols columns of l (a column per UTF-8 character). */
static void
line_put(FILE *out, const struct view_line *l, unsigned cols)
{
    unsigned used = 0;
    size_t i;

    for (i = 0; i < l->len; i++) {
        unsigned char c = (unsigned char)l->text[i];

        if ((c & 0xc0) != 0x80 && used++ >= cols)
            break;
    }
    fwrite(l->text, 1, i, out);
}

static bool
phase_finished(const char *phase)
{
    return strcmp(phase, "done") == 0 || strcmp(phase, "failed") == 0;
}

/* " -> B" or " <- B", or nothing when the key did not say. */
static void
line_peer(const struct xm_view_row *row, struct view_line *l)
{
    const struct view_guest *g = &row->g;
    const char *peer = row->homecoming ? g->from : g->to;

    if ((g->has & (row->homecoming ? HAS_FROM : HAS_TO)) && peer[0]) {
        line_add(l, " %s ", row->homecoming ? "<-" : "->");
        line_clean(l, peer, 0, 0);
    }
}

/* The final state, when it says more than the phase. */
static void
line_state(struct view_line *l, const struct view_guest *g)
{
    if ((g->has & HAS_STATE) && strcmp(g->state, "pending") != 0 &&
        strcmp(g->state, g->phase) != 0) {
        line_add(l, " [");
        line_clean(l, g->state, 0, 0);
        line_add(l, "]");
    }
}

static void
render_lines(struct xm_guest_view *v)
{
    for (unsigned i = 0; i < v->n_row; i++) {
        struct xm_view_row *row = &v->row[i];
        const struct view_guest *g = &row->g;
        struct view_line l = { .len = 0 };

        if (!row->changed)
            continue;
        row->changed = false;
        if (strcmp(row->shown_phase, g->phase) == 0)
            continue;
        snprintf(row->shown_phase, sizeof(row->shown_phase), "%s",
                 g->phase);
        line_clean(&l, g->guest, 0, 0);
        line_peer(row, &l);
        line_add(&l, ": %s", g->phase);
        line_state(&l, g);
        if (g->has & (HAS_PERCENT | HAS_BYTES)) {
            line_add(&l, " (");
            if (g->has & HAS_PERCENT)
                line_add(&l, "%u%%%s", g->percent,
                         g->has & HAS_BYTES ? ", " : "");
            if (g->has & HAS_BYTES)
                line_add(&l, "%.1f MiB", (double)g->bytes / 1048576.0);
            line_add(&l, ")");
        }
        if (g->has & HAS_WHY) {
            line_add(&l, ": ");
            line_clean(&l, g->why, 0, 0);
        }
        line_put(v->out, &l, VIEW_LINE_MAX);
        fputc('\n', v->out);
    }
}

static void
render_json(struct xm_guest_view *v)
{
    for (unsigned i = 0; i < v->n_row; i++) {
        struct xm_view_row *row = &v->row[i];
        const struct view_guest *g = &row->g;
        struct xm_jgen *gen;
        const char *text;
        size_t len;

        if (!row->changed)
            continue;
        row->changed = false;
        gen = xm_jgen_new(false);
        if (!gen)
            continue;
        xm_jgen_map_open(gen);
        xm_jgen_kv_str(gen, "event", "progress");
        xm_jgen_kv_str(gen, "id", row->id);
        xm_jgen_kv_str(gen, "guest", g->guest);
        if (g->has & HAS_DOMID)
            xm_jgen_kv_uint(gen, "domid", g->domid);
        if (g->has & HAS_FROM)
            xm_jgen_kv_str(gen, "from", g->from);
        if (g->has & HAS_TO)
            xm_jgen_kv_str(gen, "to", g->to);
        if (g->has & HAS_MEM)
            xm_jgen_kv_uint(gen, "mem_kib", g->mem_kib);
        xm_jgen_kv_str(gen, "phase", g->phase);
        if (g->has & HAS_PERCENT)
            xm_jgen_kv_uint(gen, "percent", g->percent);
        if (g->has & HAS_BYTES)
            xm_jgen_kv_uint(gen, "bytes", g->bytes);
        if (g->has & HAS_STATE)
            xm_jgen_kv_str(gen, "state", g->state);
        xm_jgen_kv_str(gen, "why", g->why);
        xm_jgen_map_close(gen);
        if (xm_jgen_finish(gen, &text, &len) == XM_OK) {
            fwrite(text, 1, len, v->out);
            fputc('\n', v->out);
        }
        xm_jgen_free(gen);
    }
}

/* The terminal's size: v's when set, else out's, else 80x24. */
static void
view_size(const struct xm_guest_view *v, unsigned *cols_r,
          unsigned *rows_r)
{
    struct winsize ws;
    int fd = v->out ? fileno(v->out) : -1;

    *cols_r = 80;
    *rows_r = 24;
    if (fd >= 0 && ioctl(fd, TIOCGWINSZ, &ws) == 0) {
        if (ws.ws_col > 0)
            *cols_r = ws.ws_col;
        if (ws.ws_row > 0)
            *rows_r = ws.ws_row;
    }
    if (v->cols)
        *cols_r = v->cols;
    if (v->rows)
        *rows_r = v->rows;
}

static void
tty_row_line(const struct xm_view_row *row, unsigned cols,
             struct view_line *l)
{
    const struct view_guest *g = &row->g;
    size_t peer_len = strlen(row->homecoming ? g->from : g->to);
    int bar = (int)cols - 1 - VIEW_NAME_COLS - 34 - (int)peer_len - 4;
    char mib[32] = "-";

    line_clean(l, g->guest, VIEW_NAME_COLS, VIEW_NAME_COLS);
    line_add(l, " ");
    if (bar > VIEW_BAR_MAX)
        bar = VIEW_BAR_MAX;
    if (bar >= 8) {
        int filled = (g->has & HAS_PERCENT) ? (int)g->percent * bar / 100
                                            : 0;

        line_add(l, "[");
        for (int i = 0; i < bar; i++)
            line_add(l, "%c", i < filled ? '#' : '-');
        line_add(l, "] ");
    }
    if (g->has & HAS_PERCENT)
        line_add(l, "%3u%% ", g->percent);
    else
        line_add(l, "   - ");
    if (g->has & HAS_BYTES)
        snprintf(mib, sizeof(mib), "%.1f", (double)g->bytes / 1048576.0);
    line_add(l, "%9s MiB %-9s", mib, g->phase);
    line_peer(row, l);
    line_state(l, g);
    if (g->has & HAS_WHY) {
        line_add(l, ": ");
        line_clean(l, g->why, 0, 0);
    }
}

static void
render_tty(struct xm_guest_view *v)
{
    bool hide[XM_VIEW_GUESTS_MAX] = { false };
    unsigned cols, rows, limit, lines = 0, to_hide = 0, hidden = 0;
    unsigned hidden_done = 0, hidden_failed = 0;
    bool any = false;

    for (unsigned i = 0; i < v->n_row; i++)
        any |= v->row[i].changed;
    if (!any)
        return;
    view_size(v, &cols, &rows);
    /* Leave a line for the cursor and one for xl's own progress; more
     * guests than that: hide finished ones first, then the last ones,
     * and count them on a summary line. */
    limit = rows > 3 ? rows - 2 : 1;
    if (v->n_row > limit)
        to_hide = v->n_row - (limit - 1);
    for (unsigned i = 0; i < v->n_row && hidden < to_hide; i++) {
        if (phase_finished(v->row[i].g.phase)) {
            hide[i] = true;
            hidden++;
        }
    }
    for (unsigned i = v->n_row; i-- > 0 && hidden < to_hide;) {
        if (!hide[i]) {
            hide[i] = true;
            hidden++;
        }
    }

    /* Back to the first line we drew; each line is erased, then
     * written (which also wipes a progress text left on the line). */
    if (v->drawn)
        fprintf(v->out, "\r\033[%uA", v->drawn);
    else
        fputc('\r', v->out);
    for (unsigned i = 0; i < v->n_row; i++) {
        struct xm_view_row *row = &v->row[i];
        struct view_line l = { .len = 0 };

        row->changed = false;
        if (hide[i]) {
            if (strcmp(row->g.phase, "done") == 0)
                hidden_done++;
            else if (strcmp(row->g.phase, "failed") == 0)
                hidden_failed++;
            continue;
        }
        tty_row_line(row, cols, &l);
        fputs("\033[2K", v->out);
        line_put(v->out, &l, cols > 1 ? cols - 1 : 1);
        fputc('\n', v->out);
        lines++;
    }
    if (hidden) {
        struct view_line l = { .len = 0 };

        line_add(&l, "+ %u more guests: %u done, %u failed, %u on the way",
                 hidden, hidden_done, hidden_failed,
                 hidden - hidden_done - hidden_failed);
        fputs("\033[2K", v->out);
        line_put(v->out, &l, cols > 1 ? cols - 1 : 1);
        fputc('\n', v->out);
        lines++;
    }
    /* Fewer lines than last time (a smaller terminal): blank the rest. */
    for (; lines < v->drawn; lines++)
        fputs("\033[2K\n", v->out);
    v->drawn = lines;
}

void
xm_guest_view_render(struct xm_guest_view *v)
{
    switch (v->mode) {
    case XM_VIEW_TTY:
        render_tty(v);
        break;
    case XM_VIEW_LINES:
        render_lines(v);
        break;
    case XM_VIEW_JSON:
        render_json(v);
        break;
    }
    fflush(v->out);
}

void
xm_guest_view_poll(struct xm_guest_view *v, struct xm_xs *xs,
                   const char *job_id, bool final)
{
    char path[XM_XS_PATH_MAX];
    char **names = NULL;
    unsigned n = 0, reads = 0;
    int64_t now = now_ms();

    if (!final && v->min_interval_ms && v->last_read_ms &&
        now - v->last_read_ms < (int64_t)v->min_interval_ms)
        return;
    v->last_read_ms = now;
    if (xm_xs_path(path, "/tool/xenmaint/job/%s/guest", job_id) != XM_OK)
        return;
    /* No such directory (yet, or any more): nothing to show. */
    if (xs->ops->directory(xs->ctx, XM_XS_NO_TXN, path, &names, &n) !=
        XM_OK)
        return;
    for (unsigned i = 0; i < n && reads < XM_VIEW_GUESTS_MAX; i++) {
        const struct xm_schema_key *key;
        char *value = NULL;
        size_t len = 0;

        if (!xm_request_id_valid(names[i]))
            continue;
        reads++;
        if (xm_xs_path(path, "/tool/xenmaint/job/%s/guest/%s", job_id,
                       names[i]) != XM_OK)
            continue;
        /* Gone since the listing: keep showing what we had. */
        if (xs->ops->read(xs->ctx, XM_XS_NO_TXN, path, &value, &len) !=
            XM_OK)
            continue;
        key = xm_schema_find(path);
        if (key && xm_schema_check_value(key, value, len) == XM_OK)
            (void)xm_guest_view_update(v, names[i], value, len);
        free(value);
    }
    xm_xs_free_list(names, n);
    xm_guest_view_render(v);
}

void
xm_guest_view_cancelling(struct xm_guest_view *v)
{
    FILE *err = v->err ? v->err : stderr;
    int fd = fileno(err);

    if (v->cancel_said)
        return;
    v->cancel_said = true;
    /* On the terminal of the bars: say it below them, and draw them
     * anew under it. */
    if (v->mode == XM_VIEW_TTY && v->drawn && fd >= 0 && isatty(fd)) {
        fflush(v->out);
        fputs("\r\033[2K", err);
        v->drawn = 0;
        for (unsigned i = 0; i < v->n_row; i++)
            v->row[i].changed = true;
    }
    fprintf(err, "%s: stopping: migrations already running will finish "
            "or roll back; no new ones will start (Ctrl-C again to stop "
            "waiting)\n", v->what);
    fflush(err);
}

static void
view_poll_hook(void *arg, struct xm_xs *xs, const char *job_id, bool final)
{
    xm_guest_view_poll(arg, xs, job_id, final);
}

static void
view_cancelling_hook(void *arg)
{
    xm_guest_view_cancelling(arg);
}

void
xm_guest_view_hooks(struct xm_guest_view *v, struct xm_job_hooks *hooks_r)
{
    hooks_r->poll = view_poll_hook;
    hooks_r->cancelling = view_cancelling_hook;
    hooks_r->arg = v;
}

/* ---- the steps of a patch apply -------------------------------------- */

/* The contract's steps, and "revert" (the schema lists it: verification
 * failed and the agent takes the livepatch out). */
static const char *const step_names[] = {
    "drain", "preflight", "upload", "apply", "verify", "revert", "undrain",
    "done",
};

void
xm_step_view_init(struct xm_step_view *s, struct xm_guest_view *guests)
{
    memset(s, 0, sizeof(*s));
    s->guests = guests;
}

/* value (len bytes) as a step name into name_r, or XM_ERR_INVAL. */
static int
step_parse(const char *value, size_t len, char name_r[XM_STEP_NAME_MAX + 1])
{
    if (!value || len == 0 || len > XM_STEP_NAME_MAX)
        return XM_ERR_INVAL;
    memcpy(name_r, value, len);
    name_r[len] = '\0';
    for (size_t i = 0; i < sizeof(step_names) / sizeof(step_names[0]);
         i++)
        if (strlen(step_names[i]) == len &&
            memcmp(step_names[i], value, len) == 0)
            return XM_OK;
    return XM_ERR_INVAL;
}

/* Say that the job went on to s->step. */
static void
step_show(struct xm_step_view *s)
{
    struct xm_guest_view *v = s->guests;
    bool redraw = false;

    switch (v->mode) {
    case XM_VIEW_JSON:
        /* s->step is one of step_names: nothing to escape. */
        fprintf(v->out, "{\"event\":\"step\",\"step\":\"%s\"}\n", s->step);
        break;
    case XM_VIEW_TTY:
        /* Above the bars: back to their first line, wipe them (and a
         * progress text below), say the step, draw them again under
         * it. */
        if (v->drawn) {
            fprintf(v->out, "\r\033[%uA\033[J", v->drawn);
            v->drawn = 0;
            for (unsigned i = 0; i < v->n_row; i++)
                v->row[i].changed = true;
            redraw = true;
        } else {
            fputs("\r\033[2K", v->out);
        }
        fprintf(v->out, "%s: step %s\n", v->what, s->step);
        break;
    case XM_VIEW_LINES:
        fprintf(v->out, "%s: step %s\n", v->what, s->step);
        break;
    }
    if (redraw)
        xm_guest_view_render(v);
    fflush(v->out);
}

int
xm_step_view_update(struct xm_step_view *s, const char *value, size_t len)
{
    char name[XM_STEP_NAME_MAX + 1];

    if (step_parse(value, len, name) != XM_OK)
        return XM_ERR_INVAL;
    if (strcmp(name, s->step) != 0) {
        memcpy(s->step, name, sizeof(s->step));
        step_show(s);
    }
    return XM_OK;
}

void
xm_step_view_poll(struct xm_step_view *s, struct xm_xs *xs,
                  const char *job_id, bool final)
{
    struct xm_guest_view *v = s->guests;
    char path[XM_XS_PATH_MAX], name[XM_STEP_NAME_MAX + 1] = "";
    char *value = NULL;
    size_t len = 0;
    bool changed = false, opens = false;
    int64_t now = now_ms();

    if (final || !v->min_interval_ms || !s->last_read_ms ||
        now - s->last_read_ms >= (int64_t)v->min_interval_ms) {
        s->last_read_ms = now;
        if (xm_xs_path(path, "/tool/xenmaint/job/%s/step", job_id) ==
                XM_OK &&
            xs->ops->read(xs->ctx, XM_XS_NO_TXN, path, &value, &len) ==
                XM_OK &&
            step_parse(value, len, name) == XM_OK &&
            strcmp(name, s->step) != 0)
            changed = true;
        free(value);
    }
    /*
     * Keep the lines in the order things happened when one read sees
     * both a new step and guest changes: the drain and the undrain
     * start their migrations after their step begins, so their line
     * comes first; every other step begins once the migrations before
     * it ended, so their last phases come first.
     */
    if (changed)
        opens = strcmp(name, "drain") == 0 || strcmp(name, "undrain") == 0;
    if (opens)
        (void)xm_step_view_update(s, name, strlen(name));
    xm_guest_view_poll(v, xs, job_id, final);
    if (changed && !opens)
        (void)xm_step_view_update(s, name, strlen(name));
}

static void
step_poll_hook(void *arg, struct xm_xs *xs, const char *job_id, bool final)
{
    xm_step_view_poll(arg, xs, job_id, final);
}

static void
step_cancelling_hook(void *arg)
{
    struct xm_step_view *s = arg;

    xm_guest_view_cancelling(s->guests);
}

void
xm_step_view_hooks(struct xm_step_view *s, struct xm_job_hooks *hooks_r)
{
    hooks_r->poll = step_poll_hook;
    hooks_r->cancelling = step_cancelling_hook;
    hooks_r->arg = s;
}
