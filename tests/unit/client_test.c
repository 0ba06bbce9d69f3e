/*
 * client_test.c -- the xl client against the in-process xenstore.
 *
 * The test plays xenmaintd: from the fake's write hook (answering as soon
 * as the request is written) or from the client's after_poll callback
 * (answering between waits).  Covered: done and failed answers, no agent,
 * an agent that never takes the request, one that takes it and stalls,
 * garbage states and results, cancel on the first simulated SIGINT,
 * giving up on the second, xenstore faults, the job hooks that read the
 * per-guest keys of a drain (and hostile values there); then the
 * renderers and the exit codes on good, partial and hostile results, and
 * the per-guest progress view in its three modes.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client.h"
#include "harness.h"
#include "xm_err.h"
#include "xm_xs_big.h"
#include "xs_fake.h"

enum sim_mode {
    SIM_DONE,         /* answer done with sim.result at once */
    SIM_FAILED,       /* answer failed with sim.result and error text */
    SIM_NEVER,        /* never take the request */
    SIM_STALL,        /* take it, stay running */
    SIM_BAD_STATE,    /* take it, write a state that is no state */
    SIM_CANCELLABLE,  /* take it; on cancel answer failed "cancelled" */
    SIM_SLOW,         /* take it; answer from after_poll, in steps */
    SIM_MIGRATE,      /* take it; play sim.script from after_poll */
};

/* One step of an agent that migrates: at poll `poll`, write `value` to
 * job/<id>/guest/<migid> (NULL value: remove the key); with `step`, write
 * it to job/<id>/step instead (a patch apply's step); a step with neither
 * a migid nor a step answers done with sim.result. */
struct guest_step {
    unsigned poll;
    const char *migid;
    const char *value;
    const char *step;
};

static struct sim {
    struct xs_fake *fake;
    struct xm_xs client;
    struct xm_xs agent;
    enum sim_mode mode;
    const char *result;
    char id[XM_REQ_ID_MAX + 1];
    char *request;
    unsigned polls;
    unsigned interrupt_at;      /* raise interrupts at this poll, 0 never */
    unsigned interrupt_count;   /* to this count */
    volatile sig_atomic_t interrupts;
    unsigned cancels;
    unsigned progress_calls;
    unsigned last_percent;
    const struct guest_step *script;   /* SIM_MIGRATE */
    const struct guest_step *on_take;  /* written before a SIM_DONE answer */
} sim;

static void
agent_write_path(const char *path, const char *value)
{
    CU_ASSERT_EQUAL(xm_xs_write_str(&sim.agent, XM_XS_NO_TXN, path, value),
                    XM_OK);
}

/* fmt is a literal job path with one %s for the request id. */
#define agent_write(fmt, value) do {                                    \
        char path_[XM_XS_PATH_MAX];                                     \
        CU_ASSERT_EQUAL_FATAL(xm_xs_path(path_, fmt, sim.id), XM_OK);  \
        agent_write_path(path_, value);                                 \
    } while (0)

static void
agent_guest(const char *migid, const char *value)
{
    char path[XM_XS_PATH_MAX];

    CU_ASSERT_EQUAL_FATAL(xm_xs_path(path,
                                     "/tool/xenmaint/job/%s/guest/%s",
                                     sim.id, migid), XM_OK);
    if (value)
        agent_write_path(path, value);
    else
        CU_ASSERT_EQUAL(sim.agent.ops->rm(sim.agent.ctx, XM_XS_NO_TXN,
                                          path), XM_OK);
}

static void
agent_answer(const char *state, const char *result, const char *error)
{
    char path[XM_XS_PATH_MAX];

    CU_ASSERT_EQUAL_FATAL(xm_xs_path(path, "/tool/xenmaint/job/%s/result",
                                     sim.id), XM_OK);
    if (result)
        CU_ASSERT_EQUAL(xm_xs_write_big(&sim.agent, XM_XS_NO_TXN, path,
                                        result, strlen(result)), XM_OK);
    if (error)
        agent_write("/tool/xenmaint/job/%s/error", error);
    agent_write("/tool/xenmaint/job/%s/state", state);
}

static void
on_write(void *arg, const char *path, const char *value, size_t len)
{
    static const char req_prefix[] = "/tool/xenmaint/request/";
    char rpath[XM_XS_PATH_MAX];

    (void)arg;
    if (strncmp(path, req_prefix, sizeof(req_prefix) - 1) == 0) {
        snprintf(sim.id, sizeof(sim.id), "%s",
                 path + sizeof(req_prefix) - 1);
        free(sim.request);
        sim.request = strndup(value, len);
        if (sim.mode == SIM_NEVER)
            return;
        snprintf(rpath, sizeof(rpath), "%s", path);
        sim.agent.ops->rm(sim.agent.ctx, XM_XS_NO_TXN, rpath);
        agent_write("/tool/xenmaint/job/%s/op", "drain");
        agent_write("/tool/xenmaint/job/%s/state", "queued");
        switch (sim.mode) {
        case SIM_DONE:
            for (const struct guest_step *st = sim.on_take;
                 st && (st->migid || st->step); st++) {
                if (st->step)
                    agent_write("/tool/xenmaint/job/%s/step", st->step);
                else
                    agent_guest(st->migid, st->value);
            }
            agent_answer("done", sim.result, NULL);
            break;
        case SIM_FAILED:
            agent_answer("failed", sim.result, "it broke");
            break;
        case SIM_BAD_STATE:
            agent_write("/tool/xenmaint/job/%s/state", "exploded");
            break;
        case SIM_STALL:
        case SIM_CANCELLABLE:
        case SIM_SLOW:
        case SIM_MIGRATE:
            agent_write("/tool/xenmaint/job/%s/state", "running");
            break;
        case SIM_NEVER:
            break;
        }
        return;
    }
    if (sim.id[0] && strstr(path, "/cancel") &&
        strstr(path, sim.id)) {
        sim.cancels++;
        if (sim.mode == SIM_CANCELLABLE)
            agent_answer("failed", "{\"error\":{\"code\":\"cancelled\","
                         "\"message\":\"stopped by the operator\"}}",
                         "cancelled");
    }
}

static void
after_poll(void *arg)
{
    (void)arg;
    sim.polls++;
    if (sim.interrupt_at && sim.polls >= sim.interrupt_at)
        sim.interrupts = (sig_atomic_t)sim.interrupt_count;
    if (sim.mode == SIM_SLOW) {
        if (sim.polls == 1)
            agent_write("/tool/xenmaint/job/%s/progress", "50");
        else if (sim.polls == 2)
            agent_answer("done", "{\"host\":\"A\"}", NULL);
    }
    if (sim.mode == SIM_MIGRATE) {
        for (const struct guest_step *st = sim.script; st && st->poll;
             st++) {
            if (st->poll != sim.polls)
                continue;
            if (st->step)
                agent_write("/tool/xenmaint/job/%s/step", st->step);
            else if (st->migid)
                agent_guest(st->migid, st->value);
            else
                agent_answer("done", sim.result, NULL);
        }
    }
}

static void
on_progress(void *arg, const char *state, unsigned percent)
{
    (void)arg;
    CU_ASSERT_STRING_EQUAL(state, "running");
    sim.progress_calls++;
    sim.last_percent = percent;
}

static void
setup(void)
{
    memset(&sim, 0, sizeof(sim));
    sim.fake = xs_fake_new();
    CU_ASSERT_PTR_NOT_NULL_FATAL(sim.fake);
    CU_ASSERT_EQUAL_FATAL(xs_fake_connect(sim.fake, 0, &sim.client), XM_OK);
    CU_ASSERT_EQUAL_FATAL(xs_fake_connect(sim.fake, 0, &sim.agent), XM_OK);
    CU_ASSERT_EQUAL(xm_xs_write_str(&sim.agent, XM_XS_NO_TXN,
                    "/tool/xenmaint/agent/pid", "1234"), XM_OK);
    xs_fake_on_write(sim.fake, on_write, NULL);
}

static void
teardown(void)
{
    xs_fake_on_write(sim.fake, NULL, NULL);
    xm_xs_close(&sim.client);
    xm_xs_close(&sim.agent);
    xs_fake_free(sim.fake);
    free(sim.request);
}

static struct xm_client_opts
fast_opts(void)
{
    struct xm_client_opts o = { 0 };

    o.pickup_ms = 200;
    o.deadline_ms = 400;
    o.poll_ms = 20;
    o.interrupts = &sim.interrupts;
    o.after_poll = after_poll;
    o.progress = on_progress;
    return o;
}

static void
drain_request(struct xm_request *req)
{
    xm_request_init(req);
    req->op = XM_OP_DRAIN;
    req->dry_run = true;
}

static bool
exists_path(const char *path)
{
    char *v = NULL;
    int rc = xs_fake_peek(sim.fake, path, &v);

    free(v);
    return rc == XM_OK;
}

/* fmt is a literal path with one %s for the request id. */
static char exists_buf[XM_XS_PATH_MAX];
#define exists(fmt) \
    (xm_xs_path(exists_buf, fmt, sim.id) == XM_OK && exists_path(exists_buf))

/* Run one call; the caller disposes reply. */
static int
call(struct xm_reply *reply)
{
    struct xm_client_opts o = fast_opts();
    struct xm_request req;
    int rc;

    drain_request(&req);
    rc = xm_client_call(&sim.client, &req, &o, reply);
    xm_request_dispose(&req);
    return rc;
}

static void
test_done(void)
{
    struct xm_reply reply;
    struct xm_request seen;
    char err[128];

    sim.mode = SIM_DONE;
    sim.result = "{\"host\":\"A\",\"dry_run\":true,\"moves\":[]}";
    CU_ASSERT_EQUAL(call(&reply), XM_OK);
    CU_ASSERT_EQUAL(reply.outcome, XM_CALL_ANSWERED);
    CU_ASSERT_EQUAL(reply.state, XM_JOB_DONE);
    CU_ASSERT_PTR_NOT_NULL(reply.result);
    CU_ASSERT_STRING_EQUAL(reply.id, sim.id);
    CU_ASSERT_EQUAL(strlen(reply.id), XM_REQ_NEW_ID_LEN);
    /* The agent got a request it can parse, and we cleaned up. */
    CU_ASSERT_PTR_NOT_NULL_FATAL(sim.request);
    CU_ASSERT_EQUAL(xm_request_parse(sim.request, strlen(sim.request),
                                     &seen, err, sizeof(err)), XM_OK);
    CU_ASSERT_EQUAL(seen.op, XM_OP_DRAIN);
    CU_ASSERT_TRUE(seen.dry_run);
    xm_request_dispose(&seen);
    CU_ASSERT_FALSE(exists("/tool/xenmaint/job/%s"));
    CU_ASSERT_FALSE(exists("/tool/xenmaint/request/%s"));
    CU_ASSERT_EQUAL(xm_reply_render_failure(&reply, "t", false, NULL,
                                            NULL), -1);
    xm_reply_dispose(&reply);
}

/* A status of many guests is longer than one xenstore value. */
static void
test_big_result(void)
{
    struct xm_reply reply;
    size_t cap = 64 * 1024, len = 0;
    char *big = malloc(cap);
    const xm_json *hosts;

    CU_ASSERT_PTR_NOT_NULL_FATAL(big);
    len += (size_t)snprintf(big + len, cap - len, "{\"hosts\":[");
    for (int i = 0; i < 400; i++)
        len += (size_t)snprintf(big + len, cap - len,
                                "%s{\"name\":\"host-%03d\"}",
                                i ? "," : "", i);
    snprintf(big + len, cap - len, "]}");
    CU_ASSERT_TRUE(strlen(big) > XM_XS_VALUE_MAX);
    sim.mode = SIM_DONE;
    sim.result = big;
    CU_ASSERT_EQUAL(call(&reply), XM_OK);
    CU_ASSERT_PTR_NOT_NULL_FATAL(reply.result);
    hosts = xm_json_get(reply.result, "hosts");
    CU_ASSERT_EQUAL(xm_json_len(hosts), 400);
    CU_ASSERT_FALSE(exists("/tool/xenmaint/job/%s"));
    xm_reply_dispose(&reply);
    free(big);
}

static void
test_failed(void)
{
    struct xm_reply reply;
    char *out = NULL, *err = NULL;
    size_t outlen = 0, errlen = 0;
    FILE *o, *e;

    sim.mode = SIM_FAILED;
    sim.result = "{\"error\":{\"code\":\"invalid\",\"message\":\"no such "
                 "host B\"}}";
    CU_ASSERT_EQUAL(call(&reply), XM_OK);
    CU_ASSERT_EQUAL(reply.state, XM_JOB_FAILED);
    CU_ASSERT_STRING_EQUAL(reply.error, "it broke");
    o = open_memstream(&out, &outlen);
    e = open_memstream(&err, &errlen);
    CU_ASSERT_EQUAL(xm_reply_render_failure(&reply, "xl drain", true, o, e),
                    XM_EXIT_FAILED);
    fclose(o);
    fclose(e);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "\"code\":\"invalid\""));
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "no such host B"));
    free(out);
    free(err);
    CU_ASSERT_FALSE(exists("/tool/xenmaint/job/%s"));
    xm_reply_dispose(&reply);
}

static void
test_failed_timeout_code(void)
{
    struct xm_reply reply;
    FILE *null = fopen("/dev/null", "w");

    sim.mode = SIM_FAILED;
    sim.result = "{\"error\":{\"code\":\"timeout\",\"message\":\"x\"}}";
    CU_ASSERT_EQUAL(call(&reply), XM_OK);
    CU_ASSERT_EQUAL(xm_reply_render_failure(&reply, "t", false, null, null),
                    XM_EXIT_TIMEOUT);
    xm_reply_dispose(&reply);
    fclose(null);
}

static void
test_failed_text_only(void)
{
    struct xm_reply reply;
    char *out = NULL;
    size_t outlen = 0;
    FILE *o, *null = fopen("/dev/null", "w");

    sim.mode = SIM_FAILED;
    sim.result = NULL;
    CU_ASSERT_EQUAL(call(&reply), XM_OK);
    CU_ASSERT_PTR_NULL(reply.result);
    o = open_memstream(&out, &outlen);
    CU_ASSERT_EQUAL(xm_reply_render_failure(&reply, "t", true, o, null),
                    XM_EXIT_FAILED);
    fclose(o);
    CU_ASSERT_STRING_EQUAL(out, "{\"error\":{\"code\":\"failed\","
                           "\"message\":\"it broke\"}}\n");
    free(out);
    xm_reply_dispose(&reply);
    fclose(null);
}

static void
test_no_agent(void)
{
    struct xm_reply reply;
    FILE *null = fopen("/dev/null", "w");
    unsigned nodes;

    CU_ASSERT_EQUAL(sim.agent.ops->rm(sim.agent.ctx, XM_XS_NO_TXN,
                    "/tool/xenmaint/agent/pid"), XM_OK);
    nodes = xs_fake_count_nodes(sim.fake);
    CU_ASSERT_NOT_EQUAL(call(&reply), XM_OK);
    CU_ASSERT_EQUAL(reply.outcome, XM_CALL_NO_AGENT);
    CU_ASSERT_PTR_NOT_NULL(strstr(reply.message, "xenmaintd is not "
                                  "running"));
    CU_ASSERT_PTR_NULL(sim.request);
    CU_ASSERT_EQUAL(xs_fake_count_nodes(sim.fake), nodes);
    CU_ASSERT_EQUAL(xm_reply_render_failure(&reply, "t", false, null, null),
                    XM_EXIT_NO_AGENT);
    xm_reply_dispose(&reply);
    fclose(null);
}

/* The agent is killed (-9) while the job runs: its pid key stays, but
 * no process has that pid any more. */
static void
test_agent_dies_during_the_job(void)
{
    struct xm_client_opts o = fast_opts();
    struct xm_request req;
    struct xm_reply reply;
    FILE *null = fopen("/dev/null", "w");

    sim.mode = SIM_STALL;
    drain_request(&req);
    /* the key stays, and no process has that pid (above pid_max) */
    CU_ASSERT_EQUAL(xm_xs_write_str(&sim.agent, XM_XS_NO_TXN,
                    "/tool/xenmaint/agent/pid", "2147483646"), XM_OK);
    o.check_pid = true;
    o.deadline_ms = 5000;
    CU_ASSERT_EQUAL(xm_client_call(&sim.client, &req, &o, &reply),
                    XM_ERR_NOTFOUND);
    CU_ASSERT_EQUAL(reply.outcome, XM_CALL_NO_AGENT);
    CU_ASSERT_PTR_NOT_NULL(strstr(reply.message, "stopped while job"));
    CU_ASSERT_EQUAL(xm_reply_render_failure(&reply, "t", false, null, null),
                    XM_EXIT_NO_AGENT);
    xm_reply_dispose(&reply);
    /* without check_pid the same key is taken at its word: a timeout */
    o.check_pid = false;
    o.deadline_ms = 300;
    CU_ASSERT_EQUAL(xm_client_call(&sim.client, &req, &o, &reply),
                    XM_ERR_TIMEOUT);
    xm_reply_dispose(&reply);
    xm_request_dispose(&req);
    fclose(null);
}

static void
test_never_answers(void)
{
    struct xm_reply reply;
    FILE *null = fopen("/dev/null", "w");

    sim.mode = SIM_NEVER;
    CU_ASSERT_NOT_EQUAL(call(&reply), XM_OK);
    CU_ASSERT_EQUAL(reply.outcome, XM_CALL_NO_ANSWER);
    CU_ASSERT_PTR_NOT_NULL(strstr(reply.message, "did not answer"));
    CU_ASSERT_PTR_NOT_NULL(sim.request);
    /* The request is withdrawn, so a late agent cannot run it. */
    CU_ASSERT_FALSE(exists("/tool/xenmaint/request/%s"));
    CU_ASSERT_EQUAL(xm_reply_render_failure(&reply, "t", false, null, null),
                    XM_EXIT_NO_AGENT);
    xm_reply_dispose(&reply);
    fclose(null);
}

static void
test_stall_times_out(void)
{
    struct xm_reply reply;
    FILE *null = fopen("/dev/null", "w");

    sim.mode = SIM_STALL;
    CU_ASSERT_EQUAL(call(&reply), XM_ERR_TIMEOUT);
    CU_ASSERT_EQUAL(reply.outcome, XM_CALL_TIMEOUT);
    /* We ask the agent to stop what nobody waits for any more. */
    CU_ASSERT_TRUE(reply.cancel_sent);
    CU_ASSERT_EQUAL(sim.cancels, 1);
    CU_ASSERT_EQUAL(xm_reply_render_failure(&reply, "t", false, null, null),
                    XM_EXIT_TIMEOUT);
    xm_reply_dispose(&reply);
    fclose(null);
}

static void
test_bad_state(void)
{
    struct xm_reply reply;

    sim.mode = SIM_BAD_STATE;
    CU_ASSERT_EQUAL(call(&reply), XM_ERR_PROTO);
    CU_ASSERT_EQUAL(reply.outcome, XM_CALL_ERROR);
    CU_ASSERT_PTR_NOT_NULL(strstr(reply.message, "exploded"));
    xm_reply_dispose(&reply);
}

static void
test_garbage_result(void)
{
    struct xm_reply reply;
    char *out = NULL;
    size_t outlen = 0;
    FILE *o, *null = fopen("/dev/null", "w");

    sim.mode = SIM_DONE;
    sim.result = "{\"host\": [1, 2";
    CU_ASSERT_EQUAL(call(&reply), XM_OK);
    CU_ASSERT_EQUAL(reply.state, XM_JOB_DONE);
    CU_ASSERT_PTR_NULL(reply.result);
    o = open_memstream(&out, &outlen);
    CU_ASSERT_EQUAL(xm_reply_render_failure(&reply, "t", true, o, null),
                    XM_EXIT_FAILED);
    fclose(o);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "\"code\":\"proto\""));
    free(out);
    xm_reply_dispose(&reply);
    fclose(null);
}

static void
test_slow_progress(void)
{
    struct xm_reply reply;

    sim.mode = SIM_SLOW;
    CU_ASSERT_EQUAL(call(&reply), XM_OK);
    CU_ASSERT_EQUAL(reply.state, XM_JOB_DONE);
    CU_ASSERT_TRUE(sim.progress_calls >= 2);
    CU_ASSERT_EQUAL(sim.last_percent, 50);
    CU_ASSERT_FALSE(exists("/tool/xenmaint/job/%s"));
    xm_reply_dispose(&reply);
}

static void
test_cancel_once(void)
{
    struct xm_reply reply;
    FILE *null = fopen("/dev/null", "w");

    sim.mode = SIM_CANCELLABLE;
    sim.interrupt_at = 1;
    sim.interrupt_count = 1;
    CU_ASSERT_EQUAL(call(&reply), XM_OK);
    CU_ASSERT_TRUE(reply.cancel_sent);
    CU_ASSERT_EQUAL(sim.cancels, 1);         /* written once only */
    CU_ASSERT_EQUAL(reply.state, XM_JOB_FAILED);
    CU_ASSERT_EQUAL(xm_reply_render_failure(&reply, "t", false, null, null),
                    XM_EXIT_INTERRUPTED);
    CU_ASSERT_FALSE(exists("/tool/xenmaint/job/%s"));
    xm_reply_dispose(&reply);
    fclose(null);
}

static void
test_cancel_twice(void)
{
    struct xm_reply reply;

    sim.mode = SIM_STALL;
    sim.interrupt_at = 2;
    sim.interrupt_count = 2;
    CU_ASSERT_EQUAL(call(&reply), XM_ERR_CANCELLED);
    CU_ASSERT_EQUAL(reply.outcome, XM_CALL_INTERRUPTED);
    CU_ASSERT_EQUAL(sim.polls, 2);           /* at once, no more waits */
    xm_reply_dispose(&reply);
}

static void
test_interrupt_before_pickup(void)
{
    struct xm_reply reply;

    sim.mode = SIM_NEVER;
    sim.interrupt_at = 1;
    sim.interrupt_count = 1;
    CU_ASSERT_EQUAL(call(&reply), XM_ERR_CANCELLED);
    CU_ASSERT_EQUAL(reply.outcome, XM_CALL_INTERRUPTED);
    CU_ASSERT_FALSE(reply.cancel_sent);
    CU_ASSERT_FALSE(exists("/tool/xenmaint/request/%s"));
    xm_reply_dispose(&reply);
}

static void
test_write_fault(void)
{
    struct xm_reply reply;

    sim.mode = SIM_DONE;
    sim.result = "{}";
    CU_ASSERT_EQUAL(fault_arm(xs_fake_fault(sim.fake), "write", 1,
                              XM_ERR_XS), 0);
    CU_ASSERT_EQUAL(call(&reply), XM_ERR_XS);
    CU_ASSERT_EQUAL(reply.outcome, XM_CALL_ERROR);
    CU_ASSERT_PTR_NULL(sim.request);
    xm_reply_dispose(&reply);
}

static void
test_watch_fault(void)
{
    struct xm_reply reply;

    sim.mode = SIM_DONE;
    sim.result = "{}";
    CU_ASSERT_EQUAL(fault_arm(xs_fake_fault(sim.fake), "watch", 1,
                              XM_ERR_XS), 0);
    CU_ASSERT_EQUAL(call(&reply), XM_ERR_XS);
    CU_ASSERT_EQUAL(reply.outcome, XM_CALL_ERROR);
    CU_ASSERT_PTR_NULL(sim.request);
    xm_reply_dispose(&reply);
}

/* ---- job hooks: per-guest progress while the job runs ----------------- */

/* A view writing to a memory stream, and its output. */
struct view_fixture {
    struct xm_guest_view view;
    struct xm_job_hooks hooks;
    char *out, *err;
    size_t outlen, errlen;
    FILE *o, *e;
};

static void
view_fixture_open(struct view_fixture *f, enum xm_view_mode mode)
{
    memset(f, 0, sizeof(*f));
    f->o = open_memstream(&f->out, &f->outlen);
    f->e = open_memstream(&f->err, &f->errlen);
    CU_ASSERT_PTR_NOT_NULL_FATAL(f->o);
    CU_ASSERT_PTR_NOT_NULL_FATAL(f->e);
    xm_guest_view_init(&f->view, mode, f->o, f->e, "xl drain");
    f->view.cols = 80;
    f->view.rows = 24;
    xm_guest_view_hooks(&f->view, &f->hooks);
}

/* Close the streams: f->out and f->err hold everything written. */
static void
view_fixture_close(struct view_fixture *f)
{
    fclose(f->o);
    fclose(f->e);
    f->o = f->e = NULL;
}

static void
view_fixture_free(struct view_fixture *f)
{
    if (f->o)
        view_fixture_close(f);
    xm_guest_view_dispose(&f->view);
    free(f->out);
    free(f->err);
}

static size_t
count_str(const char *hay, const char *needle)
{
    size_t n = 0;

    for (const char *p = hay; p && (p = strstr(p, needle)); p++)
        n++;
    return n;
}

#define G1 "\"guest\":\"web1\",\"domid\":3,\"from\":\"A\",\"to\":\"B\"," \
           "\"mem_kib\":1048576"

static const struct guest_step migrate_script[] = {
    { 1, "m1", "{" G1 ",\"phase\":\"queued\",\"percent\":0,\"bytes\":0,"
      "\"state\":\"pending\",\"why\":\"\"}" },
    { 2, "m1", "{" G1 ",\"phase\":\"sending\",\"percent\":40,"
      "\"bytes\":419430400,\"state\":\"pending\",\"why\":\"\"}" },
    { 2, "m2", "{\"guest\":\"db1\",\"to\":\"C\",\"phase\":\"queued\"}" },
    { 3, "m1", "{" G1 ",\"phase\":\"sending\",\"percent\":80,"
      "\"bytes\":838860800,\"state\":\"pending\",\"why\":\"\"}" },
    { 4, "m1", "{" G1 ",\"phase\":\"done\",\"percent\":100,"
      "\"bytes\":1073741824,\"state\":\"done\",\"why\":\"\"}" },
    { 4, "m2", "{\"guest\":\"db1\",\"to\":\"C\",\"phase\":\"failed\","
      "\"state\":\"stayed\",\"why\":\"C is out of memory\"}" },
    { 5, NULL, NULL },
    { 0, NULL, NULL },
};

static const char migrate_lines[] =
    "web1 -> B: queued (0%, 0.0 MiB)\n"
    "web1 -> B: sending (40%, 400.0 MiB)\n"
    "db1 -> C: queued\n"
    "web1 -> B: done (100%, 1024.0 MiB)\n"
    "db1 -> C: failed [stayed]: C is out of memory\n";

/* Plain lines: one per phase change, none for 40% -> 80%. */
static void
test_hooks_lines(void)
{
    struct view_fixture f;
    struct xm_client_opts o = fast_opts();
    struct xm_request req;
    struct xm_reply reply;

    view_fixture_open(&f, XM_VIEW_LINES);
    o.job = &f.hooks;
    sim.mode = SIM_MIGRATE;
    sim.script = migrate_script;
    sim.result = "{\"host\":\"A\",\"dry_run\":false,\"moves\":[]}";
    drain_request(&req);
    req.dry_run = false;
    CU_ASSERT_EQUAL(xm_client_call(&sim.client, &req, &o, &reply), XM_OK);
    CU_ASSERT_EQUAL(reply.state, XM_JOB_DONE);
    view_fixture_close(&f);
    CU_ASSERT_STRING_EQUAL(f.out, migrate_lines);
    CU_ASSERT_EQUAL(f.errlen, 0);
    CU_ASSERT_FALSE(exists("/tool/xenmaint/job/%s"));
    xm_reply_dispose(&reply);
    xm_request_dispose(&req);
    view_fixture_free(&f);
}

/* The agent writes the last phases and its answer at once: the final
 * poll, before the job directory goes, still shows them. */
static void
test_hooks_final_poll(void)
{
    static const struct guest_step at_once[] = {
        { 0, "m1", "{" G1 ",\"phase\":\"done\",\"percent\":100,"
          "\"state\":\"done\"}" },
        { 0, NULL, NULL },
    };
    struct view_fixture f;
    struct xm_client_opts o = fast_opts();
    struct xm_request req;
    struct xm_reply reply;

    view_fixture_open(&f, XM_VIEW_JSON);
    o.job = &f.hooks;
    sim.mode = SIM_DONE;
    sim.on_take = at_once;
    sim.result = "{\"host\":\"A\"}";
    drain_request(&req);
    CU_ASSERT_EQUAL(xm_client_call(&sim.client, &req, &o, &reply), XM_OK);
    view_fixture_close(&f);
    CU_ASSERT_STRING_EQUAL(f.out, "{\"event\":\"progress\",\"id\":\"m1\","
                           "\"guest\":\"web1\",\"domid\":3,\"from\":\"A\","
                           "\"to\":\"B\",\"mem_kib\":1048576,\"phase\":"
                           "\"done\",\"percent\":100,\"state\":\"done\","
                           "\"why\":\"\"}\n");
    CU_ASSERT_FALSE(exists("/tool/xenmaint/job/%s"));
    xm_reply_dispose(&reply);
    xm_request_dispose(&req);
    view_fixture_free(&f);
}

/* xl drain sets the hooks for xl_run_request, which builds the opts. */
static void
test_hooks_default(void)
{
    struct view_fixture f;
    struct xm_reply reply;

    view_fixture_open(&f, XM_VIEW_LINES);
    sim.mode = SIM_MIGRATE;
    sim.script = migrate_script;
    sim.result = "{\"host\":\"A\"}";
    xm_client_set_job_hooks(&f.hooks);
    CU_ASSERT_EQUAL(call(&reply), XM_OK);
    xm_client_set_job_hooks(NULL);
    view_fixture_close(&f);
    CU_ASSERT_STRING_EQUAL(f.out, migrate_lines);
    xm_reply_dispose(&reply);
    /* Cleared: the next call reads no guest keys (f's view, emptied,
     * would print them all again). */
    free(f.out);
    free(f.err);
    f.out = f.err = NULL;
    f.o = open_memstream(&f.out, &f.outlen);
    f.e = open_memstream(&f.err, &f.errlen);
    CU_ASSERT_PTR_NOT_NULL_FATAL(f.o);
    CU_ASSERT_PTR_NOT_NULL_FATAL(f.e);
    f.view.out = f.o;
    f.view.err = f.e;
    xm_guest_view_dispose(&f.view);
    sim.polls = 0;
    CU_ASSERT_EQUAL(call(&reply), XM_OK);
    view_fixture_close(&f);
    CU_ASSERT_EQUAL(f.outlen, 0);
    xm_reply_dispose(&reply);
    view_fixture_free(&f);
}

/* The first Ctrl-C: said once on stderr, whatever follows. */
static void
test_hooks_cancel_message(void)
{
    struct view_fixture f;
    struct xm_client_opts o = fast_opts();
    struct xm_request req;
    struct xm_reply reply;

    view_fixture_open(&f, XM_VIEW_LINES);
    o.job = &f.hooks;
    sim.mode = SIM_STALL;
    sim.interrupt_at = 1;
    sim.interrupt_count = 1;
    drain_request(&req);
    req.dry_run = false;
    CU_ASSERT_EQUAL(xm_client_call(&sim.client, &req, &o, &reply),
                    XM_ERR_TIMEOUT);
    CU_ASSERT_TRUE(reply.cancel_sent);
    CU_ASSERT_TRUE(sim.polls > 2);
    xm_guest_view_cancelling(&f.view);          /* and once more */
    view_fixture_close(&f);
    CU_ASSERT_EQUAL(count_str(f.err, "will finish or roll back"), 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(f.err, "xl drain: "));
    CU_ASSERT_PTR_NOT_NULL(strstr(f.err, "no new ones will start"));
    xm_reply_dispose(&reply);
    xm_request_dispose(&req);
    view_fixture_free(&f);
}

/* Keys that are no migration, keys that vanish: ignored, shown as last
 * seen, no crash. */
static void
test_hooks_hostile_keys(void)
{
    static char deep[2100];
    static const struct guest_step script[] = {
        { 1, "bad@id", "{\"guest\":\"x\",\"phase\":\"queued\"}" },
        { 1, "a1234567890123456789012345678901234567890123456789012345678"
             "901234567", "{\"guest\":\"x\",\"phase\":\"queued\"}" },
        { 1, "m0", "not json" },
        { 1, "m1", "[1,2]" },
        { 1, "m2", deep },
        { 1, "m3", "{\"guest\":\"ok\",\"to\":\"B\",\"phase\":\"sending\","
          "\"percent\":5}" },
        { 2, "m3", "{\"guest\":\"ok\",\"to\":\"B\",\"phase\":\"done\","
          "\"percent\":1e300}" },
        { 3, "m3", NULL },
        { 4, NULL, NULL },
        { 0, NULL, NULL },
    };
    struct view_fixture f;
    struct xm_client_opts o = fast_opts();
    struct xm_request req;
    struct xm_reply reply;

    memset(deep, '[', sizeof(deep) - 1);
    view_fixture_open(&f, XM_VIEW_LINES);
    o.job = &f.hooks;
    sim.mode = SIM_MIGRATE;
    sim.script = script;
    sim.result = "{\"host\":\"A\"}";
    drain_request(&req);
    CU_ASSERT_EQUAL(xm_client_call(&sim.client, &req, &o, &reply), XM_OK);
    view_fixture_close(&f);
    CU_ASSERT_STRING_EQUAL(f.out, "ok -> B: sending (5%)\n");
    CU_ASSERT_EQUAL(f.view.n_row, 1);
    xm_reply_dispose(&reply);
    xm_request_dispose(&req);
    view_fixture_free(&f);
}

/* A directory read that fails is as if no guest key existed yet. */
static void
test_hooks_directory_fault(void)
{
    struct view_fixture f;
    struct xm_client_opts o = fast_opts();
    struct xm_request req;
    struct xm_reply reply;

    view_fixture_open(&f, XM_VIEW_LINES);
    o.job = &f.hooks;
    sim.mode = SIM_MIGRATE;
    sim.script = migrate_script;
    sim.result = "{\"host\":\"A\"}";
    CU_ASSERT_EQUAL(fault_arm(xs_fake_fault(sim.fake), "directory", 2,
                              XM_ERR_XS), 0);
    drain_request(&req);
    CU_ASSERT_EQUAL(xm_client_call(&sim.client, &req, &o, &reply), XM_OK);
    CU_ASSERT_EQUAL(reply.state, XM_JOB_DONE);
    view_fixture_close(&f);
    /* The final phases are there whatever was missed on the way. */
    CU_ASSERT_PTR_NOT_NULL(strstr(f.out, "web1 -> B: done"));
    CU_ASSERT_PTR_NOT_NULL(strstr(f.out, "db1 -> C: failed"));
    xm_reply_dispose(&reply);
    xm_request_dispose(&req);
    view_fixture_free(&f);
}


/* ---- patch apply around a drain: steps and both ways of migrations ---- */

#define W1 "\"guest\":\"web1\",\"domid\":3"

static xm_json *parse(const char *text);

static void
patch_apply_request(struct xm_request *req)
{
    xm_request_init(req);
    req->op = XM_OP_PATCH_APPLY;
    req->payload = strdup("/root/xsa/xsa-900.json");
    CU_ASSERT_PTR_NOT_NULL_FATAL(req->payload);
}

/* One line per step, in order with the migrations around it; values
 * of the step key that are no step are ignored. */
static void
test_apply_steps_lines(void)
{
    static const struct guest_step script[] = {
        { 1, NULL, NULL, "drain" },
        { 1, "d1", "{" W1 ",\"from\":\"A\",\"to\":\"B\",\"phase\":"
          "\"sending\",\"percent\":40}", NULL },
        { 2, "d1", "{" W1 ",\"from\":\"A\",\"to\":\"B\",\"phase\":"
          "\"done\",\"percent\":100,\"state\":\"done\"}", NULL },
        { 2, NULL, NULL, "preflight" },
        { 3, NULL, NULL, "upload" },
        { 4, NULL, NULL, "apply" },
        { 5, NULL, NULL, "apply\033[2J" },
        { 6, NULL, NULL, "a-step-name-that-is-too-long" },
        { 7, NULL, NULL, "" },
        { 8, NULL, NULL, "verify" },
        { 9, NULL, NULL, "undrain" },
        { 9, "u1", "{" W1 ",\"from\":\"B\",\"to\":\"A\",\"phase\":"
          "\"queued\"}", NULL },
        { 10, "u1", "{" W1 ",\"from\":\"B\",\"to\":\"A\",\"phase\":"
          "\"done\",\"state\":\"done\"}", NULL },
        { 10, NULL, NULL, "done" },
        { 11, NULL, NULL, NULL },
        { 0, NULL, NULL, NULL },
    };
    struct view_fixture f;
    struct xm_step_view steps;
    struct xm_job_hooks hooks;
    struct xm_client_opts o = fast_opts();
    struct xm_request req, seen;
    struct xm_reply reply;
    char err[128];

    view_fixture_open(&f, XM_VIEW_LINES);
    f.view.what = "xl patch apply";
    f.view.homecoming_by_id = true;
    xm_step_view_init(&steps, &f.view);
    xm_step_view_hooks(&steps, &hooks);
    o.job = &hooks;
    o.deadline_ms = 5000;
    sim.mode = SIM_MIGRATE;
    sim.script = script;
    sim.result = "{\"host\":\"A\",\"name\":\"xen_hello_world\","
                 "\"state\":\"applied\",\"in_place\":false}";
    patch_apply_request(&req);
    req.to = calloc(1, sizeof(*req.to));
    CU_ASSERT_PTR_NOT_NULL_FATAL(req.to);
    req.to[0] = strdup("B");
    CU_ASSERT_PTR_NOT_NULL_FATAL(req.to[0]);
    req.n_to = 1;
    req.parallel = 2;
    req.timeout_s = 600;
    req.notice_s = 30;
    req.blocked = XM_BLOCKED_SKIP;
    snprintf(req.compress, sizeof(req.compress), "zstd:3");
    CU_ASSERT_EQUAL(xm_client_call(&sim.client, &req, &o, &reply), XM_OK);
    CU_ASSERT_EQUAL(reply.state, XM_JOB_DONE);
    view_fixture_close(&f);
    CU_ASSERT_STRING_EQUAL(f.out,
        "xl patch apply: step drain\n"
        "web1 -> B: sending (40%)\n"
        "web1 -> B: done (100%)\n"
        "xl patch apply: step preflight\n"
        "xl patch apply: step upload\n"
        "xl patch apply: step apply\n"
        "xl patch apply: step verify\n"
        "xl patch apply: step undrain\n"
        "web1 <- B: queued\n"
        "web1 <- B: done\n"
        "xl patch apply: step done\n");
    CU_ASSERT_STRING_EQUAL(steps.step, "done");
    CU_ASSERT_FALSE(exists("/tool/xenmaint/job/%s"));
    /* The agent got one patch-apply request with the drain's fields. */
    CU_ASSERT_PTR_NOT_NULL_FATAL(sim.request);
    CU_ASSERT_EQUAL_FATAL(xm_request_parse(sim.request,
                                           strlen(sim.request), &seen, err,
                                           sizeof(err)), XM_OK);
    CU_ASSERT_EQUAL(seen.op, XM_OP_PATCH_APPLY);
    CU_ASSERT_FALSE(seen.in_place);
    CU_ASSERT_FALSE(seen.dry_run);
    CU_ASSERT_STRING_EQUAL(seen.payload, "/root/xsa/xsa-900.json");
    CU_ASSERT_EQUAL_FATAL(seen.n_to, 1);
    CU_ASSERT_STRING_EQUAL(seen.to[0], "B");
    CU_ASSERT_EQUAL(seen.parallel, 2);
    CU_ASSERT_EQUAL(seen.timeout_s, 600);
    CU_ASSERT_EQUAL(seen.notice_s, 30);
    CU_ASSERT_EQUAL(seen.blocked, XM_BLOCKED_SKIP);
    CU_ASSERT_STRING_EQUAL(seen.compress, "zstd:3");
    xm_request_dispose(&seen);
    xm_reply_dispose(&reply);
    xm_request_dispose(&req);
    view_fixture_free(&f);
}

/* --json: step events among the progress events, every line JSON; the
 * final poll still shows what the agent wrote with its answer. */
static void
test_apply_steps_json(void)
{
    static const struct guest_step at_once[] = {
        { 0, "d1", "{" W1 ",\"from\":\"A\",\"to\":\"B\",\"phase\":"
          "\"done\"}", NULL },
        { 0, "u1", "{" W1 ",\"from\":\"B\",\"to\":\"A\",\"phase\":"
          "\"done\"}", NULL },
        { 0, NULL, NULL, "done" },
        { 0, NULL, NULL, NULL },
    };
    struct view_fixture f;
    struct xm_step_view steps;
    struct xm_job_hooks hooks;
    struct xm_client_opts o = fast_opts();
    struct xm_request req;
    struct xm_reply reply;
    char *line, *save = NULL;
    unsigned lines = 0;

    view_fixture_open(&f, XM_VIEW_JSON);
    f.view.homecoming_by_id = true;
    xm_step_view_init(&steps, &f.view);
    xm_step_view_hooks(&steps, &hooks);
    o.job = &hooks;
    sim.mode = SIM_DONE;
    sim.on_take = at_once;
    sim.result = "{\"host\":\"A\"}";
    patch_apply_request(&req);
    CU_ASSERT_EQUAL(xm_client_call(&sim.client, &req, &o, &reply), XM_OK);
    view_fixture_close(&f);
    for (line = strtok_r(f.out, "\n", &save); line;
         line = strtok_r(NULL, "\n", &save)) {
        xm_json *doc = parse(line);
        const char *event = NULL, *v = NULL;

        lines++;
        CU_ASSERT_EQUAL(xm_json_get_str(doc, "event", &event), XM_OK);
        if (lines <= 2) {
            CU_ASSERT_STRING_EQUAL(event, "progress");
            CU_ASSERT_EQUAL(xm_json_get_str(doc, "id", &v), XM_OK);
            CU_ASSERT_STRING_EQUAL(v, lines == 1 ? "d1" : "u1");
        } else {
            CU_ASSERT_STRING_EQUAL(event, "step");
            CU_ASSERT_EQUAL(xm_json_get_str(doc, "step", &v), XM_OK);
            CU_ASSERT_STRING_EQUAL(v, "done");
            CU_ASSERT_EQUAL(xm_json_len(doc), 2);
        }
        xm_json_free(doc);
    }
    CU_ASSERT_EQUAL(lines, 3);
    xm_reply_dispose(&reply);
    xm_request_dispose(&req);
    view_fixture_free(&f);
}

/* ---- renderers ------------------------------------------------------- */

static xm_json *
parse(const char *text)
{
    xm_json *doc = NULL;
    char err[128];

    CU_ASSERT_EQUAL_FATAL(xm_json_parse(text, strlen(text), &doc, err,
                                        sizeof(err)), XM_OK);
    return doc;
}

static const char drain_plan[] =
    "{\"host\":\"A\",\"dry_run\":true,\"targets\":[{\"name\":\"B\","
    "\"state\":\"active\",\"reachable\":true,\"free_kib\":8388608,"
    "\"error\":null}],\"moves\":[{\"guest\":\"g1\",\"domid\":3,"
    "\"mem_kib\":1048576,\"vcpus\":1,\"to\":\"B\",\"state\":\"planned\"}],"
    "\"blocked\":[{\"guest\":\"g2\",\"domid\":4,\"reasons\":"
    "[\"pci-passthrough\"],\"detail\":\"0000:03:00.0\"}]}";

static void
test_drain_print(void)
{
    xm_json *doc = parse(drain_plan);
    char *out = NULL;
    size_t len = 0;
    FILE *o = open_memstream(&out, &len);

    xm_drain_print(doc, true, o);
    fclose(o);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "GUEST"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "g1"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "1.0 GiB -> B"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "Blocked:"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "g2 (domid 4): pci-passthrough"));
    CU_ASSERT_EQUAL(xm_drain_exit_code(doc, true), XM_EXIT_BLOCKED);
    free(out);
    xm_json_free(doc);
}

static void
test_drain_exit_codes(void)
{
    static const struct {
        const char *json;
        bool dry_run;
        int exit_code;
    } cases[] = {
        { "{\"moves\":[{\"state\":\"planned\"}],\"blocked\":[]}", true,
          XM_EXIT_OK },
        { "{\"moves\":[],\"blocked\":[{\"guest\":\"g\"}]}", true,
          XM_EXIT_BLOCKED },
        { "{\"moves\":[{\"state\":\"done\"},{\"state\":\"done\"}]}", false,
          XM_EXIT_OK },
        { "{\"moves\":[{\"state\":\"done\"},{\"state\":\"failed\"}]}",
          false, XM_EXIT_PARTIAL },
        { "{\"moves\":[{\"state\":\"done\"}],\"blocked\":[{\"guest\":"
          "\"g\",\"action\":\"skipped\"}]}", false, XM_EXIT_PARTIAL },
        { "{\"moves\":[{\"state\":\"done\"}],\"blocked\":[{\"guest\":"
          "\"g\",\"action\":\"shutdown\",\"state\":\"shut-down\"}]}",
          false, XM_EXIT_OK },
        /* a dry run with --shutdown-blocked: nothing would stay */
        { "{\"moves\":[{\"state\":\"planned\"}],\"blocked\":[{\"guest\":"
          "\"g\",\"action\":\"shutdown\",\"state\":\"planned\"}]}",
          true, XM_EXIT_OK },
        { "{\"moves\":[],\"blocked\":[{\"action\":\"shutdown\","
          "\"state\":\"planned\"}]}", true, XM_EXIT_OK },
        /* ... but a planned shutdown beside a guest that is refused,
         * one without a state, or a real run's state in a dry run */
        { "{\"moves\":[],\"blocked\":[{\"action\":\"shutdown\","
          "\"state\":\"planned\"},{\"action\":\"refused\"}]}", true,
          XM_EXIT_BLOCKED },
        { "{\"moves\":[],\"blocked\":[{\"action\":\"shutdown\"}]}",
          true, XM_EXIT_BLOCKED },
        { "{\"moves\":[],\"blocked\":[{\"action\":\"shutdown\","
          "\"state\":\"shut-down\"}]}", true, XM_EXIT_BLOCKED },
        { "{\"moves\":[{\"state\":\"planned\"}],\"blocked\":[{\"guest\":"
          "\"g\"}]}", false, XM_EXIT_BLOCKED },
        { "{\"moves\":[{\"state\":\"failed\"}]}", false, XM_EXIT_FAILED },
        { "{}", false, XM_EXIT_OK },
        { "[1,2]", false, XM_EXIT_FAILED },
        { "{\"moves\":7,\"blocked\":\"x\"}", false, XM_EXIT_OK },
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        xm_json *doc = parse(cases[i].json);

        CU_ASSERT_EQUAL(xm_drain_exit_code(doc, cases[i].dry_run),
                        cases[i].exit_code);
        xm_json_free(doc);
    }
    CU_ASSERT_EQUAL(xm_drain_exit_code(NULL, false), XM_EXIT_FAILED);
}

/* Wrong types everywhere: printed as missing, never a crash. */
static void
test_hostile_results(void)
{
    static const char *const docs[] = {
        "{\"host\":5,\"targets\":[1,null,{\"name\":[]}],\"moves\":[null,"
        "{\"guest\":{},\"domid\":-1,\"mem_kib\":\"x\",\"to\":3}],"
        "\"blocked\":[7,{\"reasons\":[1,\"ok\\u001b[2J\"]}]}",
        "{\"hosts\":[1,{\"name\":false,\"livepatches\":[3,{}],"
        "\"guests\":[null]},{\"free_kib\":1e300}]}",
        "{\"hosts\":{}}", "[]", "null", "\"x\"",
        "{\"livepatches\":[{\"name\":1}],\"problems\":[2,\"p\"]}",
    };
    FILE *null = fopen("/dev/null", "w");
    char *out = NULL;
    size_t len = 0;
    FILE *o = open_memstream(&out, &len);

    for (size_t i = 0; i < sizeof(docs) / sizeof(docs[0]); i++) {
        xm_json *doc = parse(docs[i]);

        xm_drain_print(doc, false, o);
        xm_status_print(doc, null);
        xm_patch_print(doc, null);
        (void)xm_drain_exit_code(doc, false);
        (void)xm_patch_check_exit_code(doc);
        xm_json_free(doc);
    }
    fclose(o);
    /* No terminal escape gets through. */
    CU_ASSERT_PTR_NULL(strchr(out, '\033'));
    free(out);
    fclose(null);
}

static void
test_status_print(void)
{
    xm_json *doc = parse(
        "{\"hosts\":[{\"name\":\"A\",\"self\":true,\"state\":\"active\","
        "\"reason\":\"\",\"reachable\":true,\"free_kib\":2097152,"
        "\"total_kib\":16777216,\"xen_version\":\"4.17.5\","
        "\"build_id\":\"abcd\",\"livepatches\":[{\"name\":"
        "\"xen_hello_world\",\"state\":\"applied\"}],\"guests\":[{"
        "\"name\":\"g1\",\"domid\":3,\"mem_kib\":524288}],"
        "\"migrations\":[{\"id\":\"u1-0\",\"guest\":\"g1\",\"from\":\"B\","
        "\"state\":\"done\",\"why\":\"\",\"seconds\":7.25,\"compress\":"
        "\"zstd:3\",\"libxl_bytes\":136314880,\"wire_bytes\":17825792,"
        "\"ratio\":7.65,\"precopy_rounds\":2,\"downtime\":{\"total_ms\":"
        "790,\"stream_tail_ms\":280,\"restore_ms\":420,\"handshake_ms\":"
        "90}},{\"id\":\"d1-0\",\"guest\":\"g2\",\"to\":\"B\",\"state\":"
        "\"stayed\",\"why\":\"cancelled by the operator\",\"seconds\":1}]},"
        "{\"name\":\"B\",\"state\":\"drained\",\"reachable\":false}]}");
    char *out = NULL;
    size_t len = 0;
    FILE *o = open_memstream(&out, &len);

    xm_status_print(doc, o);
    fclose(o);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "Host A (this host)"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "2.0 GiB free of 16.0 GiB"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "4.17.5 (build-id abcd)"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "xen_hello_world (applied)"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "512 MiB"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "Host B\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "drained, unreachable"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "  migrations:  the last 2\n"
                                  "    g1                   from B"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "done         7.2 s\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "stayed       1.0 s  cancelled by "
                                  "the operator\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "  Streams:\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "    g1                     130"
                                  ".0 MiB    17.0 MiB    7.7x zstd:3"));
    free(out);
    xm_json_free(doc);
}

static void
test_patch_check_exit(void)
{
    xm_json *yes = parse("{\"applicable\":true}");
    xm_json *no = parse("{\"applicable\":false,\"problems\":[\"x\"]}");
    xm_json *bad = parse("{\"applicable\":\"yes\"}");

    CU_ASSERT_EQUAL(xm_patch_check_exit_code(yes), XM_EXIT_OK);
    CU_ASSERT_EQUAL(xm_patch_check_exit_code(no), XM_EXIT_BLOCKED);
    CU_ASSERT_EQUAL(xm_patch_check_exit_code(bad), XM_EXIT_FAILED);
    xm_json_free(yes);
    xm_json_free(no);
    xm_json_free(bad);
}

static void
test_exit_for_error_code(void)
{
    CU_ASSERT_EQUAL(xm_exit_for_error_code("blocked"), XM_EXIT_BLOCKED);
    CU_ASSERT_EQUAL(xm_exit_for_error_code("partial"), XM_EXIT_PARTIAL);
    CU_ASSERT_EQUAL(xm_exit_for_error_code("timeout"), XM_EXIT_TIMEOUT);
    CU_ASSERT_EQUAL(xm_exit_for_error_code("cancelled"),
                    XM_EXIT_INTERRUPTED);
    CU_ASSERT_EQUAL(xm_exit_for_error_code("reboot-required"),
                    XM_EXIT_REBOOT_REQUIRED);
    CU_ASSERT_EQUAL(xm_exit_for_error_code("reverted"), XM_EXIT_REVERTED);
    CU_ASSERT_EQUAL(xm_exit_for_error_code("Reverted"), XM_EXIT_FAILED);
    CU_ASSERT_EQUAL(xm_exit_for_error_code("invalid"), XM_EXIT_FAILED);
    CU_ASSERT_EQUAL(xm_exit_for_error_code(NULL), XM_EXIT_FAILED);
}

static void
test_format_kib(void)
{
    char buf[32];

    CU_ASSERT_STRING_EQUAL(xm_format_kib(512, buf, sizeof(buf)),
                           "512 KiB");
    CU_ASSERT_STRING_EQUAL(xm_format_kib(2048, buf, sizeof(buf)),
                           "2 MiB");
    CU_ASSERT_STRING_EQUAL(xm_format_kib(1572864, buf, sizeof(buf)),
                           "1.5 GiB");
}

/* ---- drain and undrain results ----------------------------------------- */

static const char real_drain[] =
    "{\"host\":\"A\",\"dry_run\":false,\"state\":\"draining\","
    "\"targets\":[{\"name\":\"B\",\"state\":\"active\",\"reachable\":true,"
    "\"free_kib\":8388608,\"error\":null}],"
    "\"moves\":[{\"guest\":\"g1\",\"domid\":3,\"mem_kib\":1048576,"
    "\"vcpus\":1,\"to\":\"B\",\"id\":\"m1\",\"state\":\"done\","
    "\"outcome\":\"committed\",\"why\":\"\",\"bytes\":1073741824,"
    "\"seconds\":12.5},"
    "{\"guest\":\"g2\",\"domid\":4,\"mem_kib\":524288,\"vcpus\":1,"
    "\"to\":\"B\",\"id\":\"m2\",\"state\":\"stayed\",\"outcome\":"
    "\"rolled-back\",\"why\":\"B ran out of memory\",\"bytes\":5,"
    "\"seconds\":1},"
    "{\"guest\":\"g3\",\"domid\":5,\"mem_kib\":524288,\"vcpus\":1,"
    "\"to\":\"B\",\"id\":\"m3\",\"state\":\"broken\",\"outcome\":"
    "\"lost\",\"why\":\"resume failed\",\"bytes\":5,\"seconds\":1},"
    "{\"guest\":\"g4\",\"domid\":6,\"mem_kib\":524288,\"vcpus\":1,"
    "\"to\":\"B\",\"id\":\"m4\",\"state\":\"unresolved\",\"outcome\":"
    "\"in-doubt\",\"why\":\"\",\"bytes\":5,\"seconds\":1}],"
    "\"blocked\":[{\"guest\":\"g9\",\"domid\":9,\"mem_kib\":1024,"
    "\"reasons\":[\"pci-passthrough\"],\"detail\":\"0000:03:00.0\","
    "\"action\":\"skipped\"}],"
    "\"refused\":false,"
    "\"notice\":{\"seconds\":60,\"acked\":[\"g1\",\"g2\"],"
    "\"waited_s\":12.5}}";

static char *
print_to_string(void (*print)(const xm_json *, FILE *), const char *json)
{
    xm_json *doc = parse(json);
    char *out = NULL;
    size_t len = 0;
    FILE *o = open_memstream(&out, &len);

    print(doc, o);
    fclose(o);
    xm_json_free(doc);
    return out;
}

static void
print_real_drain(const xm_json *doc, FILE *out)
{
    xm_drain_print(doc, false, out);
}

static void
test_drain_print_real(void)
{
    char *out = print_to_string(print_real_drain, real_drain);

    CU_ASSERT_PTR_NOT_NULL(strstr(out, "Drain of A (host draining)\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "Targets: B (active, 8.0 GiB "
                                  "free)\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "Notice: 60 s given; acknowledged "
                                  "by g1, g2; waited 12.5 s\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "STATE       WHY\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "1.0 GiB -> B                    "
                                  "done\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "stayed      B ran out of memory\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "Blocked:\n  g9 (domid 9): "
                                  "pci-passthrough -- 0000:03:00.0 "
                                  "[skipped]\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "Attention:\n  g3: broken: no copy "
                                  "of this guest is running"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "(resume failed)\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "  g4: unresolved: B became "
                                  "unreachable"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "Moved 1 of 4 guests.\n"));
    CU_ASSERT_PTR_NULL(strstr(out, "Refused"));
    free(out);

    out = print_to_string(print_real_drain,
                          "{\"host\":\"A\",\"dry_run\":false,\"state\":"
                          "\"active\",\"refused\":true,\"moves\":[{"
                          "\"guest\":\"g1\",\"to\":\"B\",\"state\":"
                          "\"planned\"}],\"blocked\":[{\"guest\":\"g2\","
                          "\"reasons\":[\"no-target\"],\"action\":"
                          "\"refused\"}]}");
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "Refused: nothing was moved"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "planned\n"));
    CU_ASSERT_PTR_NULL(strstr(out, "Moved "));
    CU_ASSERT_PTR_NULL(strstr(out, "Notice"));
    free(out);
}

/* A dry run prints exactly what it printed before real drains existed
 * (the lab and runbooks read it). */
static void
test_drain_print_plan_unchanged(void)
{
    xm_json *doc = parse(drain_plan);
    char *out = NULL;
    size_t len = 0;
    FILE *o = open_memstream(&out, &len);

    xm_drain_print(doc, true, o);
    fclose(o);
    CU_ASSERT_STRING_EQUAL(out,
        "Drain plan for A (dry run, nothing done)\n"
        "Targets: B (active, 8.0 GiB free)\n"
        "GUEST                     DOMID     MEMORY    TARGET"
        "               STATE\n"
        "g1                            3    1.0 GiB -> B"
        "                    planned\n"
        "Blocked:\n"
        "  g2 (domid 4): pci-passthrough -- 0000:03:00.0\n");
    free(out);
    xm_json_free(doc);
}

/* Exit codes of a real drain, one case per result shape of the agent. */
static void
test_drain_exit_real(void)
{
    static const struct {
        const char *json;
        int exit_code;
    } cases[] = {
        /* every guest moved: the host is empty */
        { "{\"moves\":[{\"state\":\"done\"},{\"state\":\"done\"}],"
          "\"blocked\":[],\"refused\":false}", XM_EXIT_OK },
        /* a guest shut down as asked does not stay; one that did not
         * shut down (or was never asked) does */
        { "{\"moves\":[{\"state\":\"done\"}],\"blocked\":[{\"action\":"
          "\"shutdown\",\"state\":\"shut-down\"}]}", XM_EXIT_OK },
        { "{\"moves\":[],\"blocked\":[{\"action\":\"shutdown\","
          "\"state\":\"shut-down\"}]}", XM_EXIT_OK },
        { "{\"moves\":[{\"state\":\"done\"}],\"blocked\":[{\"action\":"
          "\"shutdown\",\"state\":\"running\"}]}", XM_EXIT_PARTIAL },
        { "{\"moves\":[],\"blocked\":[{\"action\":\"shutdown\","
          "\"state\":\"cancelled\"}]}", XM_EXIT_BLOCKED },
        { "{\"moves\":[],\"blocked\":[{\"action\":\"shutdown\"}]}",
          XM_EXIT_BLOCKED },
        { "{\"moves\":[],\"blocked\":[{\"action\":\"shutdown\","
          "\"state\":\"running\",\"why\":\"did not shut down within "
          "600 s\"}]}", XM_EXIT_BLOCKED },
        { "{\"moves\":[{\"state\":\"done\"}],\"blocked\":[{\"action\":"
          "\"shutdown\",\"state\":\"cancelled\"}]}", XM_EXIT_PARTIAL },
        /* a dry run's state is no shutdown; a state of the wrong type
         * is none */
        { "{\"moves\":[],\"blocked\":[{\"action\":\"shutdown\","
          "\"state\":\"planned\"}]}", XM_EXIT_BLOCKED },
        { "{\"moves\":[],\"blocked\":[{\"action\":\"shutdown\","
          "\"state\":1}]}", XM_EXIT_BLOCKED },
        /* shut down, and a move that failed: nothing moved */
        { "{\"moves\":[{\"state\":\"stayed\"}],\"blocked\":[{"
          "\"action\":\"shutdown\",\"state\":\"shut-down\"}]}",
          XM_EXIT_FAILED },
        /* shut down, and one skipped that stays */
        { "{\"moves\":[{\"state\":\"done\"}],\"blocked\":[{\"action\":"
          "\"shutdown\",\"state\":\"shut-down\"},{\"action\":"
          "\"skipped\"}]}", XM_EXIT_PARTIAL },
        /* a skipped guest keeps the host in use */
        { "{\"moves\":[{\"state\":\"done\"}],\"blocked\":[{\"action\":"
          "\"skipped\"}]}", XM_EXIT_PARTIAL },
        { "{\"moves\":[],\"blocked\":[{\"action\":\"skipped\"}]}",
          XM_EXIT_BLOCKED },
        /* refused: the moves are the plan, nothing moved */
        { "{\"refused\":true,\"moves\":[{\"state\":\"planned\"}],"
          "\"blocked\":[{\"action\":\"refused\"}]}", XM_EXIT_BLOCKED },
        { "{\"refused\":true,\"moves\":[{\"state\":\"done\"}]}",
          XM_EXIT_BLOCKED },
        /* some moved, some did not, whatever the way */
        { "{\"moves\":[{\"state\":\"done\"},{\"state\":\"stayed\"}]}",
          XM_EXIT_PARTIAL },
        { "{\"moves\":[{\"state\":\"done\"},{\"state\":\"unresolved\"}]}",
          XM_EXIT_PARTIAL },
        { "{\"moves\":[{\"state\":\"done\"},{\"state\":\"broken\"}]}",
          XM_EXIT_PARTIAL },
        { "{\"moves\":[{\"state\":\"done\"},{\"state\":\"cancelled\"}]}",
          XM_EXIT_PARTIAL },
        { "{\"moves\":[{\"state\":\"done\"},{}]}", XM_EXIT_PARTIAL },
        /* none moved */
        { "{\"moves\":[{\"state\":\"stayed\"}]}", XM_EXIT_FAILED },
        { "{\"moves\":[{\"state\":\"broken\"},{\"state\":\"cancelled\"}],"
          "\"blocked\":[{\"action\":\"skipped\"}]}", XM_EXIT_FAILED },
        { "{\"moves\":[{\"state\":\"unresolved\"}]}", XM_EXIT_FAILED },
        { "{\"moves\":[{\"state\":7}]}", XM_EXIT_FAILED },
        /* "refused" of the wrong type is no refusal */
        { "{\"refused\":\"yes\",\"moves\":[{\"state\":\"done\"}]}",
          XM_EXIT_OK },
        /* nothing to move */
        { "{\"moves\":[],\"blocked\":[]}", XM_EXIT_OK },
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        xm_json *doc = parse(cases[i].json);
        int got = xm_drain_exit_code(doc, false);

        if (got != cases[i].exit_code)
            fprintf(stderr, "\ncase %zu: %s: got %d, want %d\n", i,
                    cases[i].json, got, cases[i].exit_code);
        CU_ASSERT_EQUAL(got, cases[i].exit_code);
        xm_json_free(doc);
    }
    /* A dry run that is refused-shaped is still a plan. */
    {
        xm_json *doc = parse("{\"refused\":true,\"moves\":[{\"state\":"
                             "\"planned\"}]}");

        CU_ASSERT_EQUAL(xm_drain_exit_code(doc, true), XM_EXIT_OK);
        xm_json_free(doc);
    }
}

static void
test_undrain_exit_codes(void)
{
    static const struct {
        const char *json;
        int exit_code;
    } cases[] = {
        { "{\"host\":\"A\",\"stay\":false,\"state\":\"active\",\"moves\":"
          "[{\"state\":\"done\"},{\"state\":\"done\"}],\"refused\":[],"
          "\"unreachable\":[]}", XM_EXIT_OK },
        /* --stay, or nothing away: nothing to do */
        { "{\"stay\":true,\"moves\":[],\"refused\":[],\"unreachable\":[]}",
          XM_EXIT_OK },
        { "{\"host\":\"A\",\"state\":\"active\"}", XM_EXIT_OK },
        /* some came home, some did not */
        { "{\"moves\":[{\"state\":\"done\"},{\"state\":\"stayed\"}]}",
          XM_EXIT_PARTIAL },
        { "{\"moves\":[{\"state\":\"done\"}],\"refused\":[{\"guest\":"
          "\"g2\"}]}", XM_EXIT_PARTIAL },
        { "{\"moves\":[{\"state\":\"done\"}],\"unreachable\":[{\"host\":"
          "\"C\"}]}", XM_EXIT_PARTIAL },
        { "{\"moves\":[{\"state\":\"done\"},{\"state\":\"unresolved\"}]}",
          XM_EXIT_PARTIAL },
        /* none came home */
        { "{\"moves\":[{\"state\":\"stayed\"}]}", XM_EXIT_FAILED },
        { "{\"moves\":[],\"refused\":[{\"guest\":\"g\"}]}",
          XM_EXIT_FAILED },
        { "{\"moves\":[],\"unreachable\":[{\"host\":\"B\"}]}",
          XM_EXIT_FAILED },
        { "{\"moves\":[{\"state\":\"broken\"}]}", XM_EXIT_FAILED },
        { "[]", XM_EXIT_FAILED },
        /* wrong types read as missing */
        { "{\"moves\":{},\"refused\":\"x\",\"unreachable\":3}",
          XM_EXIT_OK },
        /* the guests a drain shut down, started again (or not) */
        { "{\"moves\":[],\"started\":[{\"state\":\"running\"},"
          "{\"state\":\"running\",\"why\":\"already running\"}]}",
          XM_EXIT_OK },
        { "{\"moves\":[{\"state\":\"done\"}],\"started\":[{\"state\":"
          "\"failed\"}]}", XM_EXIT_PARTIAL },
        { "{\"moves\":[],\"started\":[{\"state\":\"failed\"}]}",
          XM_EXIT_FAILED },
        { "{\"moves\":[],\"started\":[{\"state\":\"running\"},"
          "{\"state\":\"failed\",\"why\":\"out of memory\"}]}",
          XM_EXIT_PARTIAL },
        { "{\"moves\":[{\"state\":\"stayed\"}],\"started\":[{\"state\":"
          "\"running\"}]}", XM_EXIT_PARTIAL },
        { "{\"moves\":[{\"state\":\"done\"}],\"started\":[{\"state\":"
          "\"running\"}]}", XM_EXIT_OK },
        /* a state that is not "running", or none, is a guest left */
        { "{\"started\":[{\"guest\":\"g\"}]}", XM_EXIT_FAILED },
        { "{\"started\":[{\"state\":\"starting\"}]}", XM_EXIT_FAILED },
        /* no "started" (an older agent), or not an array: as before */
        { "{\"moves\":[{\"state\":\"done\"},{\"state\":\"stayed\"}],"
          "\"started\":{}}", XM_EXIT_PARTIAL },
        { "{\"moves\":[],\"started\":\"x\"}", XM_EXIT_OK },
        { "{\"moves\":[],\"started\":[]}", XM_EXIT_OK },
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        xm_json *doc = parse(cases[i].json);
        int got = xm_undrain_exit_code(doc);

        if (got != cases[i].exit_code)
            fprintf(stderr, "\ncase %zu: %s: got %d, want %d\n", i,
                    cases[i].json, got, cases[i].exit_code);
        CU_ASSERT_EQUAL(got, cases[i].exit_code);
        xm_json_free(doc);
    }
    CU_ASSERT_EQUAL(xm_undrain_exit_code(NULL), XM_EXIT_FAILED);
}

static void
test_undrain_print(void)
{
    char *out = print_to_string(xm_undrain_print,
        "{\"host\":\"A\",\"stay\":false,\"state\":\"active\",\"moves\":["
        "{\"guest\":\"g1\",\"from\":\"B\",\"to\":\"A\",\"id\":\"m1\","
        "\"state\":\"done\",\"why\":\"\",\"bytes\":1,\"seconds\":0.5},"
        "{\"guest\":\"g2\",\"from\":\"C\",\"to\":\"A\",\"id\":\"m2\","
        "\"state\":\"stayed\",\"why\":\"A is busy\"}],"
        "\"refused\":[{\"guest\":\"g3\",\"from\":\"B\",\"why\":\"pinned "
        "there\"}],\"unreachable\":[{\"host\":\"D\",\"error\":"
        "\"connection refused\"}]}");

    CU_ASSERT_PTR_NOT_NULL(strstr(out, "Undrain of A (host active)\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "GUEST                    FROM"
                                  "                 STATE       WHY\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "g1                       B"
                                  "                    done\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "stayed      A is busy\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "  g3 on B: pinned there\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "Unreachable (their guests stay "
                                  "there):\n  D: connection refused\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "Brought back 1 of 2 guests.\n"));
    free(out);

    out = print_to_string(xm_undrain_print,
                          "{\"host\":\"A\",\"stay\":true,\"state\":"
                          "\"active\",\"moves\":[],\"refused\":[],"
                          "\"unreachable\":[]}");
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "its guests stay where they are"));
    free(out);
    out = print_to_string(xm_undrain_print, "{\"moves\":[1,{\"guest\":"
                          "\"\\u001b[2J\",\"state\":{}}],\"refused\":[7],"
                          "\"unreachable\":[null]}");
    CU_ASSERT_PTR_NULL(strchr(out, '\033'));
    free(out);
}

static void
print_dry_drain(const xm_json *doc, FILE *out)
{
    xm_drain_print(doc, true, out);
}

/* --shutdown-blocked: what a drain says of the guests it was to shut
 * down, and what an undrain says of those it started again.  Every
 * line of want must appear, no line of shun; no escape gets through. */
static void
test_shutdown_print(void)
{
    static const struct {
        void (*print)(const xm_json *, FILE *);
        const char *json;
        const char *want[4];
        const char *shun[2];
    } cases[] = {
        { print_real_drain,
          "{\"host\":\"A\",\"dry_run\":false,\"state\":\"cordoned\","
          "\"moves\":[],\"blocked\":[{\"guest\":\"db\",\"reasons\":"
          "[\"no-room\"],\"action\":\"shutdown\",\"state\":\"shut-down\","
          "\"why\":\"\"},{\"guest\":\"nfs\",\"reasons\":[\"pci-passthrough\"],"
          "\"action\":\"shutdown\",\"state\":\"running\",\"why\":\"did not "
          "shut down within 600 s\"}]}",
          { "  db: no-room [shut down; xl undrain starts it again]\n",
            "  nfs: pci-passthrough [still running: did not shut down "
            "within 600 s]\n",
            "Shut down 1 guest that could not move (xl undrain starts it "
            "again).\n",
            "1 guest did not shut down and still runs here.\n" },
          { "Refused" } },
        { print_real_drain,
          "{\"moves\":[{\"guest\":\"g1\",\"to\":\"B\",\"state\":\"done\"}],"
          "\"blocked\":[{\"guest\":\"a\",\"action\":\"shutdown\",\"state\":"
          "\"shut-down\"},{\"guest\":\"b\",\"action\":\"shutdown\","
          "\"state\":\"shut-down\"},{\"guest\":\"c\",\"action\":"
          "\"shutdown\",\"state\":\"cancelled\"},{\"guest\":\"d\","
          "\"action\":\"shutdown\",\"state\":\"\\u001b[2J\",\"why\":"
          "\"\\u001b]0;x\\u0007\"}]}",
          { "Shut down 2 guests that could not move (xl undrain starts "
            "them again).\n",
            "  c: [not shut down: the drain was cancelled]\n",
            "  d: [shutdown: ?[2J: ?]0;x?]\n",
            "Moved 1 of 1 guest.\n" },
          { "still run" } },
        { print_real_drain,
          "{\"moves\":[],\"blocked\":[{\"guest\":\"a\",\"action\":"
          "\"shutdown\",\"why\":\"no answer\"},{\"guest\":\"b\","
          "\"action\":\"shutdown\",\"state\":\"running\"},{\"guest\":"
          "\"c\",\"action\":\"shutdown\",\"state\":\"running\",\"why\":"
          "\"the guest has no PV shutdown support\"}]}",
          { "  a: [shutdown: state unknown: no answer]\n",
            "  b: [still running]\n",
            "  c: [still running: the guest has no PV shutdown support]\n",
            "2 guests did not shut down and still run here.\n" },
          { "Shut down " } },
        { print_dry_drain,
          "{\"host\":\"A\",\"dry_run\":true,\"moves\":[{\"guest\":\"g1\","
          "\"to\":\"B\",\"state\":\"planned\"}],\"blocked\":[{\"guest\":"
          "\"db\",\"domid\":5,\"reasons\":[\"no-room\"],\"action\":"
          "\"shutdown\",\"state\":\"planned\",\"why\":\"\"}]}",
          { "Blocked:\n  db (domid 5): no-room [will be shut down]\n" },
          { "Shut down ", "still running" } },
        { xm_undrain_print,
          "{\"host\":\"A\",\"stay\":true,\"state\":\"active\",\"moves\":[],"
          "\"refused\":[],\"unreachable\":[],\"started\":[{\"guest\":"
          "\"db\",\"state\":\"running\",\"why\":\"\"},{\"guest\":\"nfs\","
          "\"state\":\"failed\",\"why\":\"cannot start it: out of "
          "memory\"}]}",
          { "Started again (shut down by the drain):\n"
            "  db                       running\n",
            "  nfs                      failed      cannot start it: out "
            "of memory\n",
            "Started 1 of 2 guests again.\n" },
          { "stay where they are", "Host back in service" } },
        { xm_undrain_print,
          "{\"stay\":false,\"moves\":[{\"guest\":\"g1\",\"from\":\"B\","
          "\"state\":\"done\"}],\"started\":[{\"guest\":\"db\",\"state\":"
          "\"running\",\"why\":\"already running\"}]}",
          { "  db                       running     already running\n",
            "Started 1 of 1 guest again.\n",
            "Brought back 1 of 1 guest.\n" },
          { "no guests to bring back" } },
        { xm_undrain_print,
          "{\"moves\":[],\"started\":[{\"guest\":\"\\u001b[2J\",\"state\":"
          "{}},7]}",
          { "  ?[2J                     ?\n",
            "Started 0 of 2 guests again.\n" },
          { "no guests to bring back" } },
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *out = print_to_string(cases[i].print, cases[i].json);

        for (size_t j = 0; j < 4 && cases[i].want[j]; j++) {
            if (!strstr(out, cases[i].want[j]))
                fprintf(stderr, "\ncase %zu: no \"%s\" in:\n%s", i,
                        cases[i].want[j], out);
            CU_ASSERT_PTR_NOT_NULL(strstr(out, cases[i].want[j]));
        }
        for (size_t j = 0; j < 2 && cases[i].shun[j]; j++)
            CU_ASSERT_PTR_NULL(strstr(out, cases[i].shun[j]));
        CU_ASSERT_PTR_NULL(strchr(out, '\033'));
        free(out);
    }
}

/* ---- the per-guest progress view --------------------------------------- */

static void
view_feed(struct view_fixture *f, const char *migid, const char *value)
{
    CU_ASSERT_EQUAL(xm_guest_view_update(&f->view, migid, value,
                                         strlen(value)), XM_OK);
}

/* Strip ANSI sequences and \r: what the terminal would show per line. */
static void
strip_ansi(const char *in, char *out, size_t outlen)
{
    size_t n = 0;

    for (; *in && n + 1 < outlen; in++) {
        if (*in == '\033' && in[1] == '[') {
            in += 2;
            while (*in && !((*in >= 'A' && *in <= 'Z') ||
                            (*in >= 'a' && *in <= 'z')))
                in++;
            if (!*in)
                break;
            continue;
        }
        if (*in == '\r')
            continue;
        out[n++] = *in;
    }
    out[n] = '\0';
}

/* Longest line of text, in UTF-8 characters. */
static size_t
widest_line(const char *text)
{
    size_t widest = 0, cur = 0;

    for (; *text; text++) {
        if (*text == '\n') {
            cur = 0;
            continue;
        }
        if (((unsigned char)*text & 0xc0) != 0x80)
            cur++;
        if (cur > widest)
            widest = cur;
    }
    return widest;
}

static void
test_view_tty(void)
{
    struct view_fixture f;
    char shown[4096];
    size_t mark;

    view_fixture_open(&f, XM_VIEW_TTY);
    view_feed(&f, "m1", "{" G1 ",\"phase\":\"sending\",\"percent\":40,"
              "\"bytes\":419430400}");
    view_feed(&f, "m2", "{\"guest\":\"db1\",\"to\":\"C\",\"phase\":"
              "\"queued\"}");
    xm_guest_view_render(&f.view);
    fflush(f.o);
    mark = f.outlen;
    CU_ASSERT_EQUAL(f.view.drawn, 2);
    CU_ASSERT_PTR_NULL(strstr(f.out, "\033[2A"));   /* first draw */
    /* Nothing changed: nothing drawn. */
    view_feed(&f, "m2", "{\"guest\":\"db1\",\"to\":\"C\",\"phase\":"
              "\"queued\"}");
    xm_guest_view_render(&f.view);
    fflush(f.o);
    CU_ASSERT_EQUAL(f.outlen, mark);
    /* A change redraws both lines in place. */
    view_feed(&f, "m1", "{" G1 ",\"phase\":\"sending\",\"percent\":80,"
              "\"bytes\":838860800}");
    xm_guest_view_render(&f.view);
    fflush(f.o);
    CU_ASSERT_PTR_NOT_NULL(strstr(f.out + mark, "\r\033[2A"));
    CU_ASSERT_EQUAL(count_str(f.out + mark, "\033[2K"), 2);
    view_fixture_close(&f);
    strip_ansi(f.out + mark, shown, sizeof(shown));
    CU_ASSERT_PTR_NOT_NULL(strstr(shown, "web1                 ["));
    CU_ASSERT_PTR_NOT_NULL(strstr(shown, "#-"));
    CU_ASSERT_PTR_NOT_NULL(strstr(shown, " 80%     800.0 MiB sending"
                                  "   -> B\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(shown, "db1"));
    CU_ASSERT_PTR_NOT_NULL(strstr(shown, "  - MiB queued    -> C\n"));
    CU_ASSERT_TRUE(widest_line(shown) <= 79);
    view_fixture_free(&f);
}

/* A narrow terminal: no bar, lines cut; a short one: a summary line. */
static void
test_view_tty_small(void)
{
    struct view_fixture f;
    char shown[16384], migid[16], value[256];

    view_fixture_open(&f, XM_VIEW_TTY);
    f.view.cols = 30;
    f.view.rows = 8;
    view_feed(&f, "m1", "{\"guest\":\"a-guest-with-a-very-long-name-"
              "indeed\",\"to\":\"B\",\"phase\":\"sending\",\"percent\":"
              "40,\"why\":\"\xc3\xa9t\xc3\xa9 \xc3\xa9t\xc3\xa9 \xc3\xa9t"
              "\xc3\xa9 \xc3\xa9t\xc3\xa9\"}");
    xm_guest_view_render(&f.view);
    fflush(f.o);
    strip_ansi(f.out, shown, sizeof(shown));
    CU_ASSERT_PTR_NULL(strchr(shown, '['));
    CU_ASSERT_TRUE(widest_line(shown) <= 29);
    /* 20 guests, 6 lines: 5 guests and a summary; finished ones hidden
     * first.  (Wider, to read the summary whole.) */
    f.view.cols = 60;
    for (int i = 2; i <= 20; i++) {
        snprintf(migid, sizeof(migid), "m%d", i);
        snprintf(value, sizeof(value), "{\"guest\":\"g%d\",\"to\":\"B\","
                 "\"phase\":\"%s\"}", i, i % 2 ? "done" : "sending");
        view_feed(&f, migid, value);
    }
    xm_guest_view_render(&f.view);
    view_fixture_close(&f);
    CU_ASSERT_EQUAL(f.view.drawn, 6);
    strip_ansi(f.out, shown, sizeof(shown));
    CU_ASSERT_PTR_NOT_NULL(strstr(shown, "+ 15 more guests: 9 done, "
                                  "0 failed, 6 on"));
    CU_ASSERT_PTR_NULL(strstr(shown, "g3 "));           /* done: hidden */
    CU_ASSERT_PTR_NOT_NULL(strstr(shown, "g2 "));
    CU_ASSERT_TRUE(widest_line(shown) <= 59);
    view_fixture_free(&f);
}

static void
test_view_json(void)
{
    struct view_fixture f;
    char *line, *save = NULL;
    unsigned lines = 0;

    view_fixture_open(&f, XM_VIEW_JSON);
    view_feed(&f, "m1", "{" G1 ",\"phase\":\"sending\",\"percent\":40,"
              "\"bytes\":419430400,\"state\":\"pending\",\"why\":null,"
              "\"extra\":[1,2]}");
    xm_guest_view_render(&f.view);
    /* Same value: no event.  Same phase, other percent: an event. */
    view_feed(&f, "m1", "{" G1 ",\"phase\":\"sending\",\"percent\":40,"
              "\"bytes\":419430400,\"state\":\"pending\",\"why\":null,"
              "\"extra\":[1,2]}");
    xm_guest_view_render(&f.view);
    view_feed(&f, "m1", "{" G1 ",\"phase\":\"sending\",\"percent\":41,"
              "\"bytes\":419430400,\"state\":\"pending\"}");
    xm_guest_view_render(&f.view);
    view_feed(&f, "m2", "{\"guest\":\"x\\u001b[2J\",\"phase\":"
              "\"failed\",\"state\":\"broken\",\"why\":\"lost\"}");
    xm_guest_view_render(&f.view);
    view_fixture_close(&f);
    CU_ASSERT_PTR_NULL(strchr(f.out, '\033'));
    for (line = strtok_r(f.out, "\n", &save); line;
         line = strtok_r(NULL, "\n", &save)) {
        xm_json *doc = parse(line);
        const char *event = NULL, *phase = NULL;
        uint64_t pct = 0;

        lines++;
        CU_ASSERT_EQUAL(xm_json_get_str(doc, "event", &event), XM_OK);
        CU_ASSERT_STRING_EQUAL(event, "progress");
        CU_ASSERT_EQUAL(xm_json_get_str(doc, "phase", &phase), XM_OK);
        CU_ASSERT_PTR_NULL(xm_json_get(doc, "extra"));
        if (lines == 1) {
            CU_ASSERT_EQUAL(xm_json_get_uint(doc, "percent", &pct), XM_OK);
            CU_ASSERT_EQUAL(pct, 40);
        } else if (lines == 2) {
            CU_ASSERT_EQUAL(xm_json_get_uint(doc, "percent", &pct), XM_OK);
            CU_ASSERT_EQUAL(pct, 41);
        } else if (lines == 3) {
            CU_ASSERT_STRING_EQUAL(phase, "failed");
            CU_ASSERT_PTR_NOT_NULL(strstr(line, "\"id\":\"m2\""));
            CU_ASSERT_PTR_NOT_NULL(strstr(line, "\"state\":\"broken\""));
            CU_ASSERT_PTR_NULL(xm_json_get(doc, "domid"));
        }
        xm_json_free(doc);
    }
    CU_ASSERT_EQUAL(lines, 3);
    view_fixture_free(&f);
}

/* Values that are no migration object: refused one by one, the row
 * keeps its last good line. */
static void
test_view_hostile(void)
{
    static const char *const bad[] = {
        "", "not json", "null", "[]", "\"x\"", "{}", "{\"guest\":1}",
        "{\"guest\":\"ok\"}",
        "{\"guest\":\"ok\",\"phase\":\"exploding\"}",
        "{\"guest\":\"ok\",\"phase\":7}",
        "{\"guest\":\"\",\"phase\":\"queued\"}",
        "{\"guest\":\"ok\",\"phase\":\"sending\",\"percent\":101}",
        "{\"guest\":\"ok\",\"phase\":\"sending\",\"percent\":-1}",
        "{\"guest\":\"ok\",\"phase\":\"sending\",\"percent\":50.5}",
        "{\"guest\":\"ok\",\"phase\":\"sending\",\"percent\":\"50\"}",
        "{\"guest\":\"ok\",\"phase\":\"sending\",\"bytes\":1e300}",
        "{\"guest\":\"ok\",\"phase\":\"sending\",\"bytes\":"
        "18446744073709551616}",
        "{\"guest\":\"ok\",\"phase\":\"sending\",\"bytes\":"
        "99999999999999999999999999999999}",
        "{\"guest\":\"ok\",\"phase\":\"sending\",\"domid\":\"3\"}",
        "{\"guest\":\"ok\",\"phase\":\"sending\",\"domid\":40000}",
        "{\"guest\":\"ok\",\"phase\":\"sending\",\"mem_kib\":true}",
        "{\"guest\":\"ok\",\"phase\":\"sending\",\"to\":\"a/b\"}",
        "{\"guest\":\"ok\",\"phase\":\"sending\",\"from\":[\"B\"]}",
        "{\"guest\":\"ok\",\"phase\":\"sending\",\"state\":\"DONE!\"}",
        "{\"guest\":\"ok\",\"phase\":\"sending\",\"state\":"
        "\"a-state-that-is-far-too-long\"}",
        "{\"guest\":\"ok\",\"phase\":\"sending\",\"why\":{}}",
        "{\"guest\":\"ok\",\"phase\":\"sending\"",
        "{\"guest\":\"ok\xff\",\"phase\":\"sending\"}",
    };
    struct view_fixture f;
    char longname[200], value[512], why[1200];
    const char *nul = "{\"guest\":\"ok\",\"phase\":\"done\"}\0junk";

    view_fixture_open(&f, XM_VIEW_LINES);
    view_feed(&f, "m1", "{\"guest\":\"ok\",\"to\":\"B\",\"phase\":"
              "\"sending\",\"percent\":5}");
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int rc = xm_guest_view_update(&f.view, "m1", bad[i],
                                      strlen(bad[i]));

        if (rc != XM_ERR_INVAL)
            fprintf(stderr, "\ntaken: %s\n", bad[i]);
        CU_ASSERT_EQUAL(rc, XM_ERR_INVAL);
    }
    /* An embedded NUL, a name too long, an id that is no id. */
    CU_ASSERT_EQUAL(xm_guest_view_update(&f.view, "m1", nul,
                                         strlen(nul) + 5), XM_ERR_INVAL);
    memset(longname, 'n', sizeof(longname) - 1);
    longname[sizeof(longname) - 1] = '\0';
    snprintf(value, sizeof(value), "{\"guest\":\"%s\",\"phase\":\"done\"}",
             longname);
    CU_ASSERT_EQUAL(xm_guest_view_update(&f.view, "m1", value,
                                         strlen(value)), XM_ERR_INVAL);
    CU_ASSERT_EQUAL(xm_guest_view_update(&f.view, "m.1", nul, strlen(nul)),
                    XM_ERR_INVAL);
    CU_ASSERT_EQUAL(xm_guest_view_update(&f.view, "", nul, strlen(nul)),
                    XM_ERR_INVAL);
    CU_ASSERT_EQUAL(xm_guest_view_update(&f.view, "m1", NULL, 0),
                    XM_ERR_INVAL);
    CU_ASSERT_EQUAL(f.view.n_row, 1);
    xm_guest_view_render(&f.view);
    /* A long why is cut on a character boundary, not refused. */
    memset(why, 0, sizeof(why));
    for (size_t i = 0; i + 2 < 1100; i += 2)
        memcpy(why + i, "\xc3\xa9", 2);
    {
        char *big = malloc(2048);

        CU_ASSERT_PTR_NOT_NULL_FATAL(big);
        snprintf(big, 2048, "{\"guest\":\"ok\",\"to\":\"B\",\"phase\":"
                 "\"failed\",\"why\":\"%s\"}", why);
        CU_ASSERT_EQUAL(xm_guest_view_update(&f.view, "m1", big,
                                             strlen(big)), XM_OK);
        free(big);
    }
    /* Control characters in a name are shown as '?'. */
    view_feed(&f, "m2", "{\"guest\":\"evil\\u001b[2J\\u009b31m\","
              "\"phase\":\"queued\"}");
    xm_guest_view_render(&f.view);
    view_fixture_close(&f);
    CU_ASSERT_PTR_NULL(strchr(f.out, '\033'));
    CU_ASSERT_PTR_NULL(strstr(f.out, "\xc2\x9b"));
    CU_ASSERT_PTR_NOT_NULL(strstr(f.out, "ok -> B: sending (5%)\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(f.out, "evil?[2J?31m: queued\n"));
    {
        const char *failed = strstr(f.out, "ok -> B: failed: ");
        const char *end = failed ? strchr(failed, '\n') : NULL;

        CU_ASSERT_PTR_NOT_NULL_FATAL(end);
        /* 255 bytes at most: 127 two-byte characters. */
        CU_ASSERT_EQUAL((size_t)(end - failed) -
                        strlen("ok -> B: failed: "), 254);
    }
    view_fixture_free(&f);
}

/* At most XM_VIEW_GUESTS_MAX migrations; the rest are refused. */
static void
test_view_full(void)
{
    struct view_fixture f;
    char migid[16];
    const char *value = "{\"guest\":\"g\",\"phase\":\"queued\"}";

    view_fixture_open(&f, XM_VIEW_JSON);
    for (unsigned i = 0; i < XM_VIEW_GUESTS_MAX; i++) {
        snprintf(migid, sizeof(migid), "m%u", i);
        CU_ASSERT_EQUAL(xm_guest_view_update(&f.view, migid, value,
                                             strlen(value)), XM_OK);
    }
    CU_ASSERT_EQUAL(xm_guest_view_update(&f.view, "one-more", value,
                                         strlen(value)), XM_ERR_TOOBIG);
    /* A known one still updates. */
    CU_ASSERT_EQUAL(xm_guest_view_update(&f.view, "m0", value,
                                         strlen(value)), XM_OK);
    CU_ASSERT_EQUAL(f.view.n_row, XM_VIEW_GUESTS_MAX);
    view_fixture_free(&f);
}

/* ---- patch apply results ------------------------------------------------ */

#define APPLY_STEPS_OK                                                     \
    "\"steps\":[{\"step\":\"drain\",\"result\":\"ok\",\"seconds\":12.3},"  \
    "{\"step\":\"preflight\",\"result\":\"ok\",\"seconds\":0.1},"          \
    "{\"step\":\"upload\",\"result\":\"ok\",\"seconds\":0.2},"             \
    "{\"step\":\"apply\",\"result\":\"ok\",\"seconds\":1},"                \
    "{\"step\":\"verify\",\"result\":\"ok\",\"seconds\":0.4},"             \
    "{\"step\":\"undrain\",\"result\":\"ok\",\"seconds\":15.3,"            \
    "\"message\":\"1 guest back\"}]"
#define APPLY_DRAIN                                                        \
    "\"drain\":{\"host\":\"A\",\"dry_run\":false,\"state\":\"drained\","   \
    "\"moves\":[{\"guest\":\"web1\",\"domid\":3,\"mem_kib\":1048576,"      \
    "\"to\":\"B\",\"id\":\"d1\",\"state\":\"done\",\"why\":\"\"}],"        \
    "\"blocked\":[],\"refused\":false}"
#define APPLY_UNDRAIN(state)                                               \
    "\"undrain\":{\"host\":\"A\",\"stay\":false,\"state\":\"active\","     \
    "\"moves\":[{\"guest\":\"web1\",\"from\":\"B\",\"to\":\"A\","          \
    "\"id\":\"u1\",\"state\":\"" state "\",\"why\":\"\"}],"                \
    "\"refused\":[],\"unreachable\":[]}"

static const char apply_done[] =
    "{\"host\":\"A\",\"name\":\"xen_hello_world\",\"state\":\"applied\","
    "\"xsa\":\"XSA-900\",\"build_id\":\"ab12\",\"xen_build_id\":\"cd34\","
    "\"in_place\":false,\"resumed\":false,"
    "\"verify\":{\"command\":\"xl info xen_extra\",\"exit\":0,"
    "\"matched\":true,\"output\":\"Hello World\\n\"},"
    APPLY_STEPS_OK "," APPLY_DRAIN "," APPLY_UNDRAIN("done") ","
    "\"host_state\":\"active\"}";

static void
test_apply_print_done(void)
{
    char *out = print_to_string(xm_patch_print, apply_done);
    xm_json *doc = parse(apply_done);

    CU_ASSERT_STRING_EQUAL(out,
        "xen_hello_world: applied\n"
        "STEP       RESULT    SECONDS  MESSAGE\n"
        "drain      ok           12.3\n"
        "preflight  ok            0.1\n"
        "upload     ok            0.2\n"
        "apply      ok            1.0\n"
        "verify     ok            0.4\n"
        "undrain    ok           15.3  1 guest back\n"
        "\n"
        "Drain of A (host drained)\n"
        "GUEST                     DOMID     MEMORY    TARGET"
        "               STATE       WHY\n"
        "web1                          3    1.0 GiB -> B"
        "                    done\n"
        "Moved 1 of 1 guest.\n"
        "\n"
        "Undrain of A (host active)\n"
        "GUEST                    FROM                 STATE       WHY\n"
        "web1                     B                    done\n"
        "Brought back 1 of 1 guest.\n"
        "\n"
        "Verify: xl info xen_extra: exit 0, output matched\n"
        "Host A: active\n");
    CU_ASSERT_EQUAL(xm_patch_apply_exit_code(doc), XM_EXIT_OK);
    free(out);
    xm_json_free(doc);

    /* A dry run: the plan as xl drain --dry-run prints it, no undrain. */
    out = print_to_string(xm_patch_print,
        "{\"host\":\"A\",\"name\":\"xen_hello_world\",\"state\":"
        "\"dry-run\",\"in_place\":false,\"steps\":[{\"step\":\"drain\","
        "\"result\":\"ok\",\"seconds\":0.1},{\"step\":\"preflight\","
        "\"result\":\"ok\",\"seconds\":0}],\"drain\":{\"host\":\"A\","
        "\"dry_run\":true,\"targets\":[],\"moves\":[{\"guest\":\"g1\","
        "\"domid\":3,\"mem_kib\":1048576,\"to\":\"B\",\"state\":"
        "\"planned\"}],\"blocked\":[]},\"host_state\":\"active\"}");
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "xen_hello_world: dry-run\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "preflight  ok            0.0\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "\nDrain plan for A (dry run, "
                                  "nothing done)\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "1.0 GiB -> B                    "
                                  "planned\n"));
    CU_ASSERT_PTR_NULL(strstr(out, "Undrain"));
    CU_ASSERT_PTR_NULL(strstr(out, "Moved"));
    free(out);
}

/* In place: exactly the output it always had (the lab reads it), steps
 * or not; a verification is added. */
static void
test_apply_print_in_place(void)
{
    char *out = print_to_string(xm_patch_print,
        "{\"host\":\"A\",\"name\":\"xen_hello_world\",\"state\":"
        "\"applied\",\"xen_build_id\":\"cd34\"}");

    CU_ASSERT_STRING_EQUAL(out, "xen_hello_world: applied\n");
    free(out);
    out = print_to_string(xm_patch_print,
        "{\"host\":\"A\",\"name\":\"xen_hello_world\",\"state\":"
        "\"already-applied\",\"in_place\":true,\"steps\":[{\"step\":"
        "\"preflight\",\"result\":\"ok\",\"seconds\":0.1}],"
        "\"host_state\":\"active\",\"message\":\"nothing to do\"}");
    CU_ASSERT_STRING_EQUAL(out, "xen_hello_world: already-applied\n"
                           "nothing to do\n");
    free(out);
    out = print_to_string(xm_patch_print,
        "{\"name\":\"xen_hello_world\",\"state\":\"applied\","
        "\"in_place\":true,\"verify\":{\"command\":\"true\",\"exit\":0,"
        "\"matched\":true,\"output\":\"not shown\"}}");
    CU_ASSERT_STRING_EQUAL(out, "xen_hello_world: applied\n"
                           "Verify: true: exit 0, output matched\n");
    free(out);
}

/* A failed job's result: what it knows, printed the same way. */
static void
test_apply_print_failures(void)
{
    char *out = print_to_string(xm_patch_print,
        "{\"error\":{\"code\":\"reverted\",\"message\":\"verification "
        "failed\"},\"host\":\"A\",\"name\":\"xen_hello_world\","
        "\"steps\":[{\"step\":\"drain\",\"result\":\"ok\",\"seconds\":2},"
        "{\"step\":\"verify\",\"result\":\"failed\",\"seconds\":0.4,"
        "\"message\":\"output did not match\"},{\"step\":\"undrain\","
        "\"result\":\"skipped\"}],"
        "\"drain\":{\"host\":\"A\",\"dry_run\":false,\"state\":"
        "\"drained\",\"moves\":[],\"blocked\":[]},"
        "\"verify\":{\"command\":\"xl info xen_extra\",\"exit\":0,"
        "\"matched\":false,\"output\":\"Goodbye\\nsecond\\u001b[2J "
        "line\\n\"},\"host_state\":\"cordoned\"}");

    CU_ASSERT_PTR_NOT_NULL(strstr(out, "xen_hello_world: failed "
                                  "(reverted)\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "verify     failed        0.4  "
                                  "output did not match\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "undrain    skipped         -\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "Drain of A (host drained)\n"));
    CU_ASSERT_PTR_NULL(strstr(out, "Undrain of"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "Verify: xl info xen_extra: exit 0, "
                                  "output did not match\n  | Goodbye\n"
                                  "  | second?[2J line\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "Host A: cordoned; "));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "'xl undrain'"));
    CU_ASSERT_PTR_NULL(strchr(out, '\033'));
    free(out);

    out = print_to_string(xm_patch_print,
        "{\"error\":{\"code\":\"reboot-required\",\"message\":\"no "
        "payload\"},\"host\":\"A\",\"name\":\"xen_hello_world\","
        "\"in_place\":false,\"steps\":[{\"step\":\"drain\",\"result\":"
        "\"ok\",\"seconds\":3},{\"step\":\"preflight\",\"result\":"
        "\"failed\",\"seconds\":0.1,\"message\":\"no payload for this "
        "hypervisor\"}]," APPLY_DRAIN ",\"host_state\":"
        "\"reboot-required\"}");
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "xen_hello_world: failed "
                                  "(reboot-required)\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "preflight  failed        0.1  no "
                                  "payload for this hypervisor\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "Moved 1 of 1 guest.\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "Host A: reboot-required; no "
                                  "livepatch fixes its hypervisor"));
    free(out);

    /* A verify that did not finish shows its output. */
    out = print_to_string(xm_patch_print,
        "{\"error\":{\"code\":\"timeout\",\"message\":\"m\"},"
        "\"verify\":{\"command\":\"sleep 99\",\"output\":\"partial\"}}");
    CU_ASSERT_STRING_EQUAL(out, "Verify: sleep 99: no exit status\n"
                           "  | partial\n");
    free(out);
}

/* The exit codes of every outcome, and the failure path agrees. */
static void
test_apply_exit_codes(void)
{
    static const struct {
        const char *json;
        int exit_code;
    } cases[] = {
        /* patched, every guest home */
        { apply_done, XM_EXIT_OK },
        { "{\"state\":\"already-applied\",\"in_place\":false,"
          APPLY_UNDRAIN("done") "}", XM_EXIT_OK },
        /* in place: nothing to bring home */
        { "{\"state\":\"applied\",\"in_place\":true}", XM_EXIT_OK },
        { "{\"name\":\"p\",\"state\":\"applied\"}", XM_EXIT_OK },
        /* patched, not every guest back: partial */
        { "{\"state\":\"applied\",\"in_place\":false,"
          "\"undrain\":{\"moves\":[{\"state\":\"done\"},{\"state\":"
          "\"stayed\"}]}}", XM_EXIT_PARTIAL },
        { "{\"state\":\"applied\",\"in_place\":false,"
          APPLY_UNDRAIN("stayed") "}", XM_EXIT_PARTIAL },
        { "{\"state\":\"applied\",\"in_place\":false,\"undrain\":{"
          "\"moves\":[],\"unreachable\":[{\"host\":\"B\"}]}}",
          XM_EXIT_PARTIAL },
        { "{\"state\":\"applied\",\"in_place\":false," APPLY_DRAIN "}",
          XM_EXIT_PARTIAL },
        { "{\"state\":\"applied\"," APPLY_DRAIN "}", XM_EXIT_PARTIAL },
        { "{\"state\":\"applied\",\"in_place\":false,\"undrain\":[]}",
          XM_EXIT_PARTIAL },
        /* dry runs: as xl drain --dry-run */
        { "{\"state\":\"dry-run\",\"drain\":{\"dry_run\":true,\"moves\":"
          "[{\"state\":\"planned\"}],\"blocked\":[]}}", XM_EXIT_OK },
        { "{\"state\":\"dry-run\",\"drain\":{\"dry_run\":true,\"moves\":"
          "[],\"blocked\":[{\"guest\":\"g\"}]}}", XM_EXIT_BLOCKED },
        { "{\"state\":\"dry-run\",\"in_place\":true}", XM_EXIT_OK },
        /* failed jobs */
        { "{\"error\":{\"code\":\"blocked\",\"message\":\"m\"},\"steps\":"
          "[{\"step\":\"drain\",\"result\":\"failed\"}]}", XM_EXIT_BLOCKED },
        { "{\"error\":{\"code\":\"partial\",\"message\":\"m\"},"
          APPLY_DRAIN ",\"host_state\":\"cordoned\"}", XM_EXIT_PARTIAL },
        { "{\"error\":{\"code\":\"reboot-required\",\"message\":\"m\"},"
          "\"host_state\":\"reboot-required\"}", XM_EXIT_REBOOT_REQUIRED },
        { "{\"error\":{\"code\":\"reverted\",\"message\":\"m\"}}",
          XM_EXIT_REVERTED },
        { "{\"error\":{\"code\":\"timeout\",\"message\":\"m\"}}",
          XM_EXIT_TIMEOUT },
        { "{\"error\":{\"code\":\"cancelled\",\"message\":\"m\"}}",
          XM_EXIT_INTERRUPTED },
        { "{\"error\":{\"code\":\"hv\",\"message\":\"m\"}}",
          XM_EXIT_FAILED },
        { "{\"error\":{\"code\":\"invalid\",\"message\":\"m\"}}",
          XM_EXIT_FAILED },
        /* hostile */
        { "{\"error\":{\"code\":7}}", XM_EXIT_FAILED },
        { "{\"error\":\"reverted\"}", XM_EXIT_FAILED },
        { "{\"error\":{\"code\":\"reverted\"},\"state\":\"applied\"}",
          XM_EXIT_REVERTED },
        { "{\"state\":\"exploded\"}", XM_EXIT_FAILED },
        { "{\"state\":5}", XM_EXIT_FAILED },
        { "{}", XM_EXIT_FAILED },
        { "[]", XM_EXIT_FAILED },
        { "{\"state\":\"applied\",\"in_place\":\"no\"}", XM_EXIT_OK },
        { "{\"state\":\"dry-run\",\"drain\":[1]}", XM_EXIT_OK },
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        xm_json *doc = parse(cases[i].json);
        int got = xm_patch_apply_exit_code(doc);

        if (got != cases[i].exit_code)
            fprintf(stderr, "\ncase %zu: %s: got %d, want %d\n", i,
                    cases[i].json, got, cases[i].exit_code);
        CU_ASSERT_EQUAL(got, cases[i].exit_code);
        xm_json_free(doc);
    }
    CU_ASSERT_EQUAL(xm_patch_apply_exit_code(NULL), XM_EXIT_FAILED);

    /* A failed job goes through xm_reply_render_failure: same codes. */
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct xm_reply reply;
        FILE *null = fopen("/dev/null", "w");
        xm_json *doc = parse(cases[i].json);
        const xm_json *eobj = xm_json_get(doc, "error");

        CU_ASSERT_PTR_NOT_NULL_FATAL(null);
        if (!eobj || xm_json_type(eobj) != XM_JSON_OBJECT) {
            xm_json_free(doc);
            fclose(null);
            continue;
        }
        xm_reply_init(&reply);
        reply.outcome = XM_CALL_ANSWERED;
        reply.state = XM_JOB_FAILED;
        reply.result = doc;
        reply.result_text = strdup(cases[i].json);
        CU_ASSERT_PTR_NOT_NULL_FATAL(reply.result_text);
        CU_ASSERT_EQUAL(xm_reply_render_failure(&reply, "xl patch apply",
                                                false, null, null),
                        cases[i].exit_code);
        xm_reply_dispose(&reply);
        fclose(null);
    }
}

/* Wrong types everywhere: shown as missing, never a crash or an
 * escape. */
static void
test_apply_hostile(void)
{
    static const char *const docs[] = {
        "{\"in_place\":false,\"steps\":7,\"drain\":\"x\",\"undrain\":[],"
        "\"verify\":[],\"host_state\":3,\"host\":{}}",
        "{\"in_place\":false,\"steps\":[1,null,[],{\"step\":5,\"result\":"
        "{},\"seconds\":\"12\",\"message\":7},{\"step\":\"x\\u001b[2J\","
        "\"result\":\"\\u001b]0;t\\u0007\",\"seconds\":-1},{\"seconds\":"
        "1e300},{\"seconds\":1.5e-300}],\"name\":\"\\u001b[31m\","
        "\"state\":\"\\u001b[0m\",\"host_state\":\"\\u001b[2J\"}",
        "{\"error\":{\"code\":\"\\u001b[2J\"},\"name\":\"n\",\"verify\":"
        "{\"command\":5,\"exit\":\"0\",\"matched\":\"yes\",\"output\":"
        "\"\\u001b[2J\\r\\n\\t\"}}",
        "{\"error\":[],\"name\":\"n\",\"drain\":{\"moves\":\"x\"},"
        "\"undrain\":{\"moves\":[7]},\"in_place\":null}",
        "{\"state\":\"applied\",\"in_place\":false,\"verify\":{\"exit\":"
        "-9,\"output\":\"x\"}}",
    };
    char *out = NULL;
    size_t len = 0;
    FILE *o = open_memstream(&out, &len);
    char big[6000];

    CU_ASSERT_PTR_NOT_NULL_FATAL(o);
    for (size_t i = 0; i < sizeof(docs) / sizeof(docs[0]); i++) {
        xm_json *doc = parse(docs[i]);

        xm_patch_print(doc, o);
        (void)xm_patch_apply_exit_code(doc);
        xm_json_free(doc);
    }
    fclose(o);
    CU_ASSERT_PTR_NULL(strchr(out, '\033'));
    CU_ASSERT_PTR_NULL(strchr(out, '\r'));
    CU_ASSERT_PTR_NULL(strchr(out, '\a'));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "Verify: ?: no exit status\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "Verify: ?: exit -9\n  | x\n"));
    free(out);

    /* A long output is cut: at most 20 lines shown. */
    {
        size_t n = 0;

        n += (size_t)snprintf(big + n, sizeof(big) - n, "{\"verify\":{"
                              "\"command\":\"c\",\"exit\":1,\"output\":\"");
        for (int i = 0; i < 100; i++)
            n += (size_t)snprintf(big + n, sizeof(big) - n, "line %d\\n",
                                  i);
        snprintf(big + n, sizeof(big) - n, "\"}}");
    }
    out = print_to_string(xm_patch_print, big);
    CU_ASSERT_EQUAL(count_str(out, "  | line "), 20);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "  | line 19\n  | ...\n"));
    CU_ASSERT_PTR_NULL(strstr(out, "line 20"));
    free(out);
}

/* One view for a drain and its undrain: 'u' ids come home, others go;
 * xl drain and xl undrain keep theirs. */
static void
test_view_homecoming_by_id(void)
{
    static const char d1[] = "{\"guest\":\"web1\",\"from\":\"A\",\"to\":"
                             "\"B\",\"phase\":\"done\"}";
    static const char u1[] = "{\"guest\":\"web1\",\"from\":\"B\",\"to\":"
                             "\"A\",\"phase\":\"sending\",\"percent\":50}";
    struct view_fixture f;
    char shown[4096];

    view_fixture_open(&f, XM_VIEW_LINES);
    f.view.homecoming_by_id = true;
    view_feed(&f, "d1", d1);
    view_feed(&f, "u1", u1);
    xm_guest_view_render(&f.view);
    view_fixture_close(&f);
    CU_ASSERT_STRING_EQUAL(f.out, "web1 -> B: done\n"
                           "web1 <- B: sending (50%)\n");
    view_fixture_free(&f);

    /* xl drain: every row goes, whatever its id. */
    view_fixture_open(&f, XM_VIEW_LINES);
    view_feed(&f, "d1", d1);
    view_feed(&f, "u1", u1);
    xm_guest_view_render(&f.view);
    view_fixture_close(&f);
    CU_ASSERT_STRING_EQUAL(f.out, "web1 -> B: done\n"
                           "web1 -> A: sending (50%)\n");
    view_fixture_free(&f);

    /* xl undrain: every row comes home, whatever its id. */
    view_fixture_open(&f, XM_VIEW_LINES);
    f.view.homecoming = true;
    view_feed(&f, "d1", d1);
    view_feed(&f, "u1", u1);
    xm_guest_view_render(&f.view);
    view_fixture_close(&f);
    CU_ASSERT_STRING_EQUAL(f.out, "web1 <- A: done\n"
                           "web1 <- B: sending (50%)\n");
    view_fixture_free(&f);

    /* The terminal's bars decide the same way. */
    view_fixture_open(&f, XM_VIEW_TTY);
    f.view.homecoming_by_id = true;
    view_feed(&f, "d1", d1);
    view_feed(&f, "u1", u1);
    xm_guest_view_render(&f.view);
    view_fixture_close(&f);
    strip_ansi(f.out, shown, sizeof(shown));
    CU_ASSERT_PTR_NOT_NULL(strstr(shown, "MiB done      -> B\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(shown, " 50%         - MiB sending   "
                                  "<- B\n"));
    view_fixture_free(&f);
}

/* On a terminal a step line goes above the bars, which are drawn again
 * below it. */
static void
test_step_view_tty(void)
{
    struct view_fixture f;
    struct xm_step_view steps;
    char shown[4096];
    size_t mark;

    view_fixture_open(&f, XM_VIEW_TTY);
    f.view.what = "xl patch apply";
    f.view.homecoming_by_id = true;
    xm_step_view_init(&steps, &f.view);
    CU_ASSERT_EQUAL(xm_step_view_update(&steps, "drain", 5), XM_OK);
    fflush(f.o);
    CU_ASSERT_STRING_EQUAL(f.out, "\r\033[2Kxl patch apply: step drain\n");
    view_feed(&f, "d1", "{\"guest\":\"web1\",\"to\":\"B\",\"phase\":"
              "\"done\",\"percent\":100}");
    view_feed(&f, "u1", "{\"guest\":\"web1\",\"from\":\"B\",\"phase\":"
              "\"queued\"}");
    xm_guest_view_render(&f.view);
    CU_ASSERT_EQUAL(f.view.drawn, 2);
    fflush(f.o);
    mark = f.outlen;
    /* The same step again: nothing. */
    CU_ASSERT_EQUAL(xm_step_view_update(&steps, "drain", 5), XM_OK);
    fflush(f.o);
    CU_ASSERT_EQUAL(f.outlen, mark);
    CU_ASSERT_EQUAL(xm_step_view_update(&steps, "undrain", 7), XM_OK);
    fflush(f.o);
    CU_ASSERT_EQUAL(strncmp(f.out + mark, "\r\033[2A\033[J"
                            "xl patch apply: step undrain\n", 36), 0);
    CU_ASSERT_EQUAL(count_str(f.out + mark, "\033[2K"), 2);
    CU_ASSERT_EQUAL(f.view.drawn, 2);
    view_fixture_close(&f);
    strip_ansi(f.out + mark, shown, sizeof(shown));
    CU_ASSERT_PTR_NOT_NULL(strstr(shown, "xl patch apply: step undrain\n"
                                  "web1 "));
    CU_ASSERT_PTR_NOT_NULL(strstr(shown, "done      -> B\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(shown, "queued    <- B\n"));
    view_fixture_free(&f);
}

/* Values of the step key that are no step: ignored, the last one
 * stays. */
static void
test_step_view_hostile(void)
{
    static const char *const bad[] = {
        "", "Drain", "drain ", " drain", "drain\n", "rebooting",
        "preflight-and-more", "\033[2J", "don", "donee",
    };
    struct view_fixture f;
    struct xm_step_view steps;
    const char nul[] = "drain\0apply";

    view_fixture_open(&f, XM_VIEW_LINES);
    f.view.what = "xl patch apply";
    xm_step_view_init(&steps, &f.view);
    CU_ASSERT_EQUAL(xm_step_view_update(&steps, "verify", 6), XM_OK);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        CU_ASSERT_EQUAL(xm_step_view_update(&steps, bad[i],
                                            strlen(bad[i])), XM_ERR_INVAL);
    CU_ASSERT_EQUAL(xm_step_view_update(&steps, nul, sizeof(nul) - 1),
                    XM_ERR_INVAL);
    CU_ASSERT_EQUAL(xm_step_view_update(&steps, NULL, 0), XM_ERR_INVAL);
    CU_ASSERT_EQUAL(xm_step_view_update(&steps, "verify", 3),
                    XM_ERR_INVAL);
    CU_ASSERT_STRING_EQUAL(steps.step, "verify");
    /* Every step name is taken. */
    CU_ASSERT_EQUAL(xm_step_view_update(&steps, "upload", 6), XM_OK);
    CU_ASSERT_EQUAL(xm_step_view_update(&steps, "revert", 6), XM_OK);
    CU_ASSERT_EQUAL(xm_step_view_update(&steps, "done", 4), XM_OK);
    view_fixture_close(&f);
    CU_ASSERT_STRING_EQUAL(f.out, "xl patch apply: step verify\n"
                           "xl patch apply: step upload\n"
                           "xl patch apply: step revert\n"
                           "xl patch apply: step done\n");
    view_fixture_free(&f);
}

static void
noop(void)
{
}

static CU_TestInfo call_tests[] = {
    { "done", test_done },
    { "big result in chunks", test_big_result },
    { "failed", test_failed },
    { "failed with timeout code", test_failed_timeout_code },
    { "failed with error text only", test_failed_text_only },
    { "no agent", test_no_agent },
    { "the agent dies during the job", test_agent_dies_during_the_job },
    { "agent never answers", test_never_answers },
    { "agent stalls: timeout", test_stall_times_out },
    { "invalid job state", test_bad_state },
    { "garbage result", test_garbage_result },
    { "progress between polls", test_slow_progress },
    { "first SIGINT cancels", test_cancel_once },
    { "second SIGINT gives up", test_cancel_twice },
    { "SIGINT before pick-up", test_interrupt_before_pickup },
    { "write fault", test_write_fault },
    { "watch fault", test_watch_fault },
    { "guest progress: plain lines", test_hooks_lines },
    { "guest progress: final poll", test_hooks_final_poll },
    { "guest progress: default hooks", test_hooks_default },
    { "guest progress: Ctrl-C said once", test_hooks_cancel_message },
    { "guest progress: hostile keys", test_hooks_hostile_keys },
    { "guest progress: directory fault", test_hooks_directory_fault },
    { "patch apply: step lines", test_apply_steps_lines },
    { "patch apply: step events", test_apply_steps_json },
    CU_TEST_INFO_NULL,
};

static CU_TestInfo render_tests[] = {
    { "drain table", test_drain_print },
    { "drain exit codes", test_drain_exit_codes },
    { "hostile results", test_hostile_results },
    { "status blocks", test_status_print },
    { "patch check exit", test_patch_check_exit },
    { "error code to exit", test_exit_for_error_code },
    { "memory sizes", test_format_kib },
    { "real drain table", test_drain_print_real },
    { "dry-run table unchanged", test_drain_print_plan_unchanged },
    { "real drain exit codes", test_drain_exit_real },
    { "undrain exit codes", test_undrain_exit_codes },
    { "undrain table", test_undrain_print },
    { "shutdown-blocked printed", test_shutdown_print },
    { "view: terminal bars", test_view_tty },
    { "view: small terminal", test_view_tty_small },
    { "view: JSON events", test_view_json },
    { "view: hostile values", test_view_hostile },
    { "view: full", test_view_full },
    { "view: homecoming per row", test_view_homecoming_by_id },
    { "patch apply: printed", test_apply_print_done },
    { "patch apply: in place unchanged", test_apply_print_in_place },
    { "patch apply: failures printed", test_apply_print_failures },
    { "patch apply: exit codes", test_apply_exit_codes },
    { "patch apply: hostile results", test_apply_hostile },
    { "steps: on a terminal", test_step_view_tty },
    { "steps: hostile values", test_step_view_hostile },
    CU_TEST_INFO_NULL,
};

CU_SuiteInfo xm_test_suites[] = {
    { "client_call", NULL, NULL, setup, teardown, call_tests },
    { "client_render", NULL, NULL, noop, noop, render_tests },
    CU_SUITE_INFO_NULL,
};
