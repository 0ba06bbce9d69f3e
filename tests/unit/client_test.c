/*
 * client_test.c -- the xl client against the in-process xenstore.
 *
 * The test plays xenmaintd: from the fake's write hook (answering as soon
 * as the request is written) or from the client's after_poll callback
 * (answering between waits).  Covered: done and failed answers, no agent,
 * an agent that never takes the request, one that takes it and stalls,
 * garbage states and results, cancel on the first simulated SIGINT,
 * giving up on the second, xenstore faults; then the renderers and the
 * exit codes on good, partial and hostile results.
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
          "\"g\",\"action\":\"shutdown\"}]}", false, XM_EXIT_OK },
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
        "\"name\":\"g1\",\"domid\":3,\"mem_kib\":524288}]},{\"name\":"
        "\"B\",\"state\":\"drained\",\"reachable\":false}]}");
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
    CU_TEST_INFO_NULL,
};

CU_SuiteInfo xm_test_suites[] = {
    { "client_call", NULL, NULL, setup, teardown, call_tests },
    { "client_render", NULL, NULL, noop, noop, render_tests },
    CU_SUITE_INFO_NULL,
};
