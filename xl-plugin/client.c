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
 * between the check of the interrupt count and the wait.
 *
 * The second half turns an answer into output and an exit code.  The
 * results come from another program: every field is optional here, and
 * a field of the wrong type is shown as missing, never trusted.
 */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "client.h"
#include "xm_err.h"
#include "xm_xs_big.h"

#define DEFAULT_DEADLINE_MS 60000u

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
    int rc, r, fd;

    xm_reply_init(reply_r);
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
            continue;
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

/* A blocked entry that the agent dealt with (shut down) does not keep
 * the host from being empty. */
static bool
blocked_entry_blocks(const xm_json *b)
{
    const char *action = get_str(b, "action");

    return !action || strcmp(action, "shutdown") != 0;
}

int
xm_drain_exit_code(const xm_json *result, bool dry_run)
{
    const xm_json *moves, *blocked;
    size_t n_done = 0, n_other = 0, n_blocking = 0;

    if (!result || xm_json_type(result) != XM_JSON_OBJECT)
        return XM_EXIT_FAILED;
    moves = get_array(result, "moves");
    blocked = get_array(result, "blocked");
    for (size_t i = 0; blocked && i < xm_json_len(blocked); i++)
        if (blocked_entry_blocks(xm_json_at(blocked, i)))
            n_blocking++;
    for (size_t i = 0; moves && i < xm_json_len(moves); i++) {
        const char *state = get_str(xm_json_at(moves, i), "state");

        if (state && strcmp(state, "done") == 0)
            n_done++;
        else if (!dry_run || !state || strcmp(state, "planned") != 0)
            n_other++;
    }
    if (dry_run)
        return n_blocking ? XM_EXIT_BLOCKED
                          : n_other ? XM_EXIT_FAILED : XM_EXIT_OK;
    if (n_blocking == 0 && n_other == 0)
        return XM_EXIT_OK;
    if (n_done > 0)
        return XM_EXIT_PARTIAL;
    return n_blocking ? XM_EXIT_BLOCKED : XM_EXIT_FAILED;
}

void
xm_drain_print(const xm_json *result, bool dry_run, FILE *out)
{
    const xm_json *moves = get_array(result, "moves");
    const xm_json *blocked = get_array(result, "blocked");
    const xm_json *targets = get_array(result, "targets");
    const char *host = get_str(result, "host");
    char mem[32];
    uint64_t n;

    fputs(dry_run ? "Drain plan for " : "Drain of ", out);
    put_clean(out, host ? host : "this host");
    fputs(dry_run ? " (dry run, nothing done)\n" : "\n", out);

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

    if (blocked && xm_json_len(blocked) > 0) {
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

                if (xm_json_as_str(xm_json_at(reasons, j), &reason) !=
                    XM_OK)
                    continue;
                fputs(j ? ", " : " ", out);
                put_clean(out, reason);
            }
            if (detail && detail[0]) {
                fputs(" -- ", out);
                put_clean(out, detail);
            }
            if (action) {
                fputs(" [", out);
                put_clean(out, action);
                fputc(']', out);
            }
            fputc('\n', out);
        }
    }
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
    }
}

void
xm_patch_print(const xm_json *result, FILE *out)
{
    const xm_json *lps = get_array(result, "livepatches");
    const xm_json *problems = get_array(result, "problems");
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
        put_clean(out, state ? state : "?");
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
