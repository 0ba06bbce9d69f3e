/*
 * request_test.c -- encoding and strict parsing of client requests.
 *
 * Every op round-trips through xm_request_encode and xm_request_parse;
 * then a table of hostile requests, each of which must be rejected with
 * a message naming the field at fault.  Also ids, names and states, the
 * notice rule (any drain may carry a notice, nothing else may), and the
 * compress value (drain, undrain, patch apply; [a-z0-9:], sent only when
 * given).
 */
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "xm_err.h"
#include "xm_request.h"

static struct xm_request req, back;
static char *json;

static void
setup(void)
{
    xm_request_init(&req);
    xm_request_init(&back);
    json = NULL;
}

static void
teardown(void)
{
    xm_request_dispose(&req);
    xm_request_dispose(&back);
    free(json);
}

static void
round_trip(void)
{
    char err[256];

    CU_ASSERT_EQUAL_FATAL(xm_request_encode(&req, &json), XM_OK);
    CU_ASSERT_EQUAL_FATAL(xm_request_parse(json, strlen(json), &back, err,
                                           sizeof(err)), XM_OK);
    CU_ASSERT_EQUAL(back.version, 1);
    CU_ASSERT_EQUAL(back.op, req.op);
    CU_ASSERT_EQUAL(back.dry_run, req.dry_run);
    CU_ASSERT_EQUAL(back.n_to, req.n_to);
    for (unsigned i = 0; i < req.n_to && i < back.n_to; i++)
        CU_ASSERT_STRING_EQUAL(back.to[i], req.to[i]);
    CU_ASSERT_EQUAL(back.parallel, req.parallel);
    CU_ASSERT_EQUAL(back.timeout_s, req.timeout_s);
    CU_ASSERT_EQUAL(back.notice_s, req.notice_s);
    CU_ASSERT_EQUAL(back.blocked, req.blocked);
    CU_ASSERT_EQUAL(back.stay, req.stay);
    CU_ASSERT_EQUAL(back.in_place, req.in_place);
    if (req.payload) {
        CU_ASSERT_STRING_EQUAL(back.payload, req.payload);
    } else {
        CU_ASSERT_PTR_NULL(back.payload);
    }
    if (req.name) {
        CU_ASSERT_STRING_EQUAL(back.name, req.name);
    } else {
        CU_ASSERT_PTR_NULL(back.name);
    }
    CU_ASSERT_STRING_EQUAL(back.compress, req.compress);
}

static void
test_drain(void)
{
    req.op = XM_OP_DRAIN;
    req.dry_run = true;
    req.to = calloc(2, sizeof(*req.to));
    CU_ASSERT_PTR_NOT_NULL_FATAL(req.to);
    req.to[0] = strdup("B");
    req.to[1] = strdup("host-c.example_1");
    req.n_to = 2;
    req.parallel = 2;
    req.timeout_s = 600;
    req.notice_s = 30;
    req.blocked = XM_BLOCKED_SHUTDOWN;
    round_trip();
    CU_ASSERT_PTR_NOT_NULL(strstr(json, "\"op\":\"drain\""));
    CU_ASSERT_PTR_NOT_NULL(strstr(json, "\"blocked\":\"shutdown\""));
}

static void
test_drain_example(void)
{
    static const char text[] =
        "{\"version\":1,\"op\":\"drain\",\"dry_run\":true,\"to\":[\"B\"],"
        "\"parallel\":2,\"timeout\":600,\"notice\":0,\"blocked\":\"refuse\"}";
    char err[256];

    CU_ASSERT_EQUAL_FATAL(xm_request_parse(text, strlen(text), &back, err,
                                           sizeof(err)), XM_OK);
    CU_ASSERT_EQUAL(back.op, XM_OP_DRAIN);
    CU_ASSERT_TRUE(back.dry_run);
    CU_ASSERT_EQUAL_FATAL(back.n_to, 1);
    CU_ASSERT_STRING_EQUAL(back.to[0], "B");
    CU_ASSERT_EQUAL(back.parallel, 2);
    CU_ASSERT_EQUAL(back.timeout_s, 600);
    CU_ASSERT_EQUAL(back.blocked, XM_BLOCKED_REFUSE);
}

static void
test_defaults(void)
{
    static const char text[] = "{\"version\":1,\"op\":\"drain\"}";
    char err[256];

    CU_ASSERT_EQUAL_FATAL(xm_request_parse(text, strlen(text), &back, err,
                                           sizeof(err)), XM_OK);
    CU_ASSERT_FALSE(back.dry_run);
    CU_ASSERT_EQUAL(back.n_to, 0);
    CU_ASSERT_EQUAL(back.parallel, 0);
    CU_ASSERT_EQUAL(back.blocked, XM_BLOCKED_REFUSE);
}

/* The notice is the time guests get before they move: it goes with any
 * blocked policy, not only with shutdown, and stays a drain field. */
static void
test_notice_any_drain(void)
{
    static const char *const texts[] = {
        "{\"version\":1,\"op\":\"drain\",\"notice\":60}",
        "{\"version\":1,\"op\":\"drain\",\"notice\":60,\"blocked\":"
        "\"refuse\"}",
        "{\"version\":1,\"op\":\"drain\",\"notice\":60,\"blocked\":"
        "\"skip\"}",
        "{\"version\":1,\"op\":\"drain\",\"notice\":60,\"blocked\":"
        "\"shutdown\"}",
    };
    static const char undrain[] =
        "{\"version\":1,\"op\":\"undrain\",\"notice\":60}";
    char err[256];

    for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
        CU_ASSERT_EQUAL(xm_request_parse(texts[i], strlen(texts[i]), &back,
                                         err, sizeof(err)), XM_OK);
        CU_ASSERT_EQUAL(back.notice_s, 60);
        xm_request_dispose(&back);
    }
    req.op = XM_OP_DRAIN;
    req.notice_s = 45;
    req.blocked = XM_BLOCKED_REFUSE;
    round_trip();
    CU_ASSERT_PTR_NOT_NULL(strstr(json, "\"notice\":45"));
    xm_request_dispose(&back);
    free(json);
    json = NULL;
    req.blocked = XM_BLOCKED_SKIP;
    round_trip();
    CU_ASSERT_EQUAL(back.blocked, XM_BLOCKED_SKIP);
    xm_request_dispose(&back);
    CU_ASSERT_EQUAL(xm_request_parse(undrain, strlen(undrain), &back, err,
                                     sizeof(err)), XM_ERR_INVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "notice"));
}

static void
test_undrain(void)
{
    req.op = XM_OP_UNDRAIN;
    req.stay = true;
    req.timeout_s = 60;
    round_trip();
}

static void
test_patch_apply(void)
{
    req.op = XM_OP_PATCH_APPLY;
    req.payload = strdup("/var/lib/xen/livepatch/xsa-999.livepatch");
    req.in_place = true;
    round_trip();
}

static void
test_patch_revert(void)
{
    req.op = XM_OP_PATCH_REVERT;
    req.name = strdup("xen_hello_world");
    round_trip();
}

static void
test_patch_check(void)
{
    req.op = XM_OP_PATCH_CHECK;
    req.payload = strdup("/etc/xen/xsa.manifest");
    round_trip();
}

static void
test_simple_ops(void)
{
    req.op = XM_OP_PATCH_LIST;
    round_trip();
    CU_ASSERT_STRING_EQUAL(json, "{\"version\":1,\"op\":\"patch-list\"}");
    free(json);
    json = NULL;
    xm_request_dispose(&back);
    req.op = XM_OP_STATUS;
    round_trip();
    CU_ASSERT_STRING_EQUAL(json, "{\"version\":1,\"op\":\"status\"}");
}

static void
test_encode_refuses_invalid(void)
{
    req.op = XM_OP_PATCH_APPLY;
    req.payload = strdup("relative/path");
    CU_ASSERT_EQUAL(xm_request_encode(&req, &json), XM_ERR_INVAL);
    CU_ASSERT_PTR_NULL(json);
    xm_request_dispose(&req);
    req.op = XM_OP_DRAIN;
    req.parallel = XM_REQ_PARALLEL_MAX + 1;
    CU_ASSERT_EQUAL(xm_request_encode(&req, &json), XM_ERR_INVAL);
    xm_request_dispose(&req);
    req.op = XM_OP_PATCH_REVERT;
    CU_ASSERT_EQUAL(xm_request_encode(&req, &json), XM_ERR_INVAL);
}

static void
test_rejections(void)
{
    static const struct {
        const char *json;
        const char *field;     /* must appear in the message */
    } cases[] = {
        { "", "request" },
        { "not json", "request" },
        { "[1]", "request" },
        { "{\"version\":1}", "op" },
        { "{\"version\":1,\"op\":7}", "op" },
        { "{\"version\":1,\"op\":\"reboot\"}", "op" },
        { "{\"op\":\"status\"}", "version" },
        { "{\"version\":2,\"op\":\"status\"}", "version" },
        { "{\"version\":\"1\",\"op\":\"status\"}", "version" },
        { "{\"version\":1,\"op\":\"status\",\"extra\":1}", "extra" },
        { "{\"version\":1,\"op\":\"status\",\"dry_run\":true}", "dry_run" },
        { "{\"version\":1,\"op\":\"undrain\",\"to\":[]}", "to" },
        { "{\"version\":1,\"op\":\"drain\",\"stay\":true}", "stay" },
        { "{\"version\":1,\"op\":\"drain\",\"dry_run\":1}", "dry_run" },
        { "{\"version\":1,\"op\":\"drain\",\"to\":\"B\"}", "to" },
        { "{\"version\":1,\"op\":\"drain\",\"to\":[1]}", "to[0]" },
        { "{\"version\":1,\"op\":\"drain\",\"to\":[\"a/b\"]}", "to[0]" },
        { "{\"version\":1,\"op\":\"drain\",\"to\":[\"\"]}", "to[0]" },
        { "{\"version\":1,\"op\":\"drain\",\"to\":[\"B\",\"B\"]}", "to[1]" },
        { "{\"version\":1,\"op\":\"drain\",\"to\":[\"a234567890123456789"
          "0123456789012345678901234567890123456789012345\"]}", "to[0]" },
        { "{\"version\":1,\"op\":\"drain\",\"parallel\":65}", "parallel" },
        { "{\"version\":1,\"op\":\"drain\",\"parallel\":-1}", "parallel" },
        { "{\"version\":1,\"op\":\"drain\",\"parallel\":1.5}", "parallel" },
        { "{\"version\":1,\"op\":\"drain\",\"parallel\":\"2\"}",
          "parallel" },
        { "{\"version\":1,\"op\":\"drain\",\"timeout\":604801}",
          "timeout" },
        { "{\"version\":1,\"op\":\"drain\",\"timeout\":1e30}", "timeout" },
        { "{\"version\":1,\"op\":\"drain\",\"notice\":86401}", "notice" },
        { "{\"version\":1,\"op\":\"drain\",\"blocked\":\"ignore\"}",
          "blocked" },
        { "{\"version\":1,\"op\":\"drain\",\"blocked\":null}", "blocked" },
        { "{\"version\":1,\"op\":\"undrain\",\"stay\":\"yes\"}", "stay" },
        { "{\"version\":1,\"op\":\"patch-apply\"}", "payload" },
        { "{\"version\":1,\"op\":\"patch-apply\",\"payload\":\"x.lp\"}",
          "payload" },
        { "{\"version\":1,\"op\":\"patch-apply\",\"payload\":\"/a\\nb\"}",
          "payload" },
        { "{\"version\":1,\"op\":\"patch-apply\",\"payload\":5}",
          "payload" },
        { "{\"version\":1,\"op\":\"patch-check\",\"payload\":\"/m\","
          "\"in_place\":true}", "in_place" },
        { "{\"version\":1,\"op\":\"patch-apply\",\"payload\":\"/m\","
          "\"name\":\"x\"}", "name" },
        { "{\"version\":1,\"op\":\"patch-revert\"}", "name" },
        { "{\"version\":1,\"op\":\"patch-revert\",\"name\":\"../x\"}",
          "name" },
        { "{\"version\":1,\"op\":\"patch-revert\",\"name\":\"\"}", "name" },
        { "{\"version\":1,\"op\":\"patch-list\",\"payload\":\"/x\"}",
          "payload" },
        { "{\"version\":1,\"op\":\"status\",\"version\":1}", "version" },
    };
    char err[256];

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct xm_request r;
        int rc;

        err[0] = '\0';
        rc = xm_request_parse(cases[i].json, strlen(cases[i].json), &r, err,
                              sizeof(err));
        CU_ASSERT_EQUAL(rc, XM_ERR_INVAL);
        if (rc != XM_ERR_INVAL || !strstr(err, cases[i].field))
            fprintf(stderr, "\ncase %zu (%s): rc %d, message '%s'\n", i,
                    cases[i].json, rc, err);
        CU_ASSERT_PTR_NOT_NULL(strstr(err, cases[i].field));
        /* A rejected request is left empty and safe to dispose. */
        CU_ASSERT_PTR_NULL(r.to);
        CU_ASSERT_PTR_NULL(r.payload);
        CU_ASSERT_PTR_NULL(r.name);
        xm_request_dispose(&r);
    }
    CU_ASSERT_EQUAL(xm_request_parse(NULL, 0, &back, err, sizeof(err)),
                    XM_ERR_INVAL);
}

static void
test_ids(void)
{
    char a[XM_REQ_NEW_ID_LEN + 1], b[XM_REQ_NEW_ID_LEN + 1], small[8];

    CU_ASSERT_EQUAL(xm_request_new_id(a, sizeof(a)), XM_OK);
    CU_ASSERT_EQUAL(xm_request_new_id(b, sizeof(b)), XM_OK);
    CU_ASSERT_EQUAL(strlen(a), XM_REQ_NEW_ID_LEN);
    CU_ASSERT_EQUAL(strspn(a, "abcdefghijklmnopqrstuvwxyz0123456789"),
                    XM_REQ_NEW_ID_LEN);
    CU_ASSERT_STRING_NOT_EQUAL(a, b);
    CU_ASSERT_TRUE(xm_request_id_valid(a));
    CU_ASSERT_EQUAL(xm_request_new_id(small, sizeof(small)), XM_ERR_TOOBIG);

    CU_ASSERT_TRUE(xm_request_id_valid("Ab_c-9"));
    CU_ASSERT_FALSE(xm_request_id_valid("A.b"));
    CU_ASSERT_TRUE(xm_request_id_valid(
        "1234567890123456789012345678901234567890123456789012345678901234"));
    CU_ASSERT_FALSE(xm_request_id_valid(
        "12345678901234567890123456789012345678901234567890123456789012345"));
    CU_ASSERT_FALSE(xm_request_id_valid(""));
    CU_ASSERT_FALSE(xm_request_id_valid(NULL));
    CU_ASSERT_FALSE(xm_request_id_valid("a/b"));
    CU_ASSERT_FALSE(xm_request_id_valid("a b"));
    CU_ASSERT_FALSE(xm_request_id_valid("."));
    CU_ASSERT_FALSE(xm_request_id_valid(".."));
    CU_ASSERT_TRUE(xm_request_host_valid("host-1.example"));
    CU_ASSERT_FALSE(xm_request_host_valid("host:1"));
}

static void
test_names(void)
{
    enum xm_job_state s;
    enum xm_req_op op;

    CU_ASSERT_STRING_EQUAL(xm_job_state_name(XM_JOB_QUEUED), "queued");
    CU_ASSERT_STRING_EQUAL(xm_job_state_name(XM_JOB_FAILED), "failed");
    CU_ASSERT_EQUAL(xm_job_state_parse("running", &s), XM_OK);
    CU_ASSERT_EQUAL(s, XM_JOB_RUNNING);
    CU_ASSERT_EQUAL(xm_job_state_parse("done", &s), XM_OK);
    CU_ASSERT_EQUAL(s, XM_JOB_DONE);
    CU_ASSERT_EQUAL(xm_job_state_parse("Done", &s), XM_ERR_INVAL);
    CU_ASSERT_EQUAL(xm_job_state_parse(NULL, &s), XM_ERR_INVAL);
    CU_ASSERT_STRING_EQUAL(xm_job_state_name((enum xm_job_state)42),
                           "unknown");
    CU_ASSERT_STRING_EQUAL(xm_req_op_name(XM_OP_PATCH_CHECK),
                           "patch-check");
    CU_ASSERT_EQUAL(xm_req_op_parse("patch-revert", &op), XM_OK);
    CU_ASSERT_EQUAL(op, XM_OP_PATCH_REVERT);
    CU_ASSERT_EQUAL(xm_req_op_parse("patch", &op), XM_ERR_INVAL);
}

/* compress: on drain, undrain and patch apply; round trips; absent
 * (the agent's default) unless given; other ops and bad values are
 * refused by the parser and the encoder. */
static void
test_compress(void)
{
    static const enum xm_req_op ops[] = {
        XM_OP_DRAIN, XM_OP_UNDRAIN, XM_OP_PATCH_APPLY,
    };
    static const char *const good[] = {
        "auto", "none", "lz4", "zstd", "zstd:19", "zstd:0", "x",
        "a234567890123456789012345678901",
    };
    static const char *const bad[] = {
        "", "ZSTD", "zstd 3", "zstd;3", "-1", "zstd:\u00e9",
        "a2345678901234567890123456789012",
    };
    char text[256], err[256];

    for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
        xm_request_dispose(&req);
        xm_request_dispose(&back);
        free(json);
        json = NULL;
        req.op = ops[i];
        if (req.op == XM_OP_PATCH_APPLY)
            req.payload = strdup("/root/x.livepatch");
        /* Not given: not sent. */
        round_trip();
        CU_ASSERT_PTR_NULL(strstr(json, "compress"));
        CU_ASSERT_STRING_EQUAL(back.compress, "");
        free(json);
        json = NULL;
        xm_request_dispose(&back);
        snprintf(req.compress, sizeof(req.compress), "zstd:7");
        round_trip();
        CU_ASSERT_PTR_NOT_NULL(strstr(json, "\"compress\":\"zstd:7\""));
    }
    /* Syntax only: whether it names an algorithm is the agent's call. */
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        snprintf(text, sizeof(text), "{\"version\":1,\"op\":\"undrain\","
                 "\"compress\":\"%s\"}", good[i]);
        xm_request_dispose(&back);
        CU_ASSERT_EQUAL(xm_request_parse(text, strlen(text), &back, err,
                                         sizeof(err)), XM_OK);
        CU_ASSERT_STRING_EQUAL(back.compress, good[i]);
        CU_ASSERT_TRUE(xm_request_compress_valid(good[i]));
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        snprintf(text, sizeof(text), "{\"version\":1,\"op\":\"drain\","
                 "\"compress\":\"%s\"}", bad[i]);
        xm_request_dispose(&back);
        err[0] = '\0';
        CU_ASSERT_EQUAL(xm_request_parse(text, strlen(text), &back, err,
                                         sizeof(err)), XM_ERR_INVAL);
        CU_ASSERT_PTR_NOT_NULL(strstr(err, "compress"));
        CU_ASSERT_STRING_EQUAL(back.compress, "");
    }
    CU_ASSERT_FALSE(xm_request_compress_valid(NULL));
    /* Not with other ops, nor of another type. */
    static const char *const others[] = {
        "{\"version\":1,\"op\":\"status\",\"compress\":\"lz4\"}",
        "{\"version\":1,\"op\":\"patch-revert\",\"name\":\"x\","
        "\"compress\":\"lz4\"}",
        "{\"version\":1,\"op\":\"drain\",\"compress\":3}",
        "{\"version\":1,\"op\":\"drain\",\"compress\":null}",
    };
    for (size_t i = 0; i < sizeof(others) / sizeof(others[0]); i++) {
        xm_request_dispose(&back);
        err[0] = '\0';
        CU_ASSERT_EQUAL(xm_request_parse(others[i], strlen(others[i]), &back,
                                         err, sizeof(err)), XM_ERR_INVAL);
        CU_ASSERT_PTR_NOT_NULL(strstr(err, "compress"));
    }
    /* The encoder writes nothing the parser would refuse. */
    xm_request_dispose(&req);
    free(json);
    json = NULL;
    req.op = XM_OP_STATUS;
    snprintf(req.compress, sizeof(req.compress), "lz4");
    CU_ASSERT_EQUAL(xm_request_encode(&req, &json), XM_ERR_INVAL);
    CU_ASSERT_PTR_NULL(json);
    req.op = XM_OP_DRAIN;
    snprintf(req.compress, sizeof(req.compress), "Lz4");
    CU_ASSERT_EQUAL(xm_request_encode(&req, &json), XM_ERR_INVAL);
    CU_ASSERT_PTR_NULL(json);
}

static CU_TestInfo request_tests[] = {
    { "drain round trip", test_drain },
    { "drain example", test_drain_example },
    { "drain defaults", test_defaults },
    { "notice with any drain", test_notice_any_drain },
    { "undrain round trip", test_undrain },
    { "patch apply round trip", test_patch_apply },
    { "patch revert round trip", test_patch_revert },
    { "patch check round trip", test_patch_check },
    { "list and status", test_simple_ops },
    { "encode refuses invalid", test_encode_refuses_invalid },
    { "rejections", test_rejections },
    { "ids", test_ids },
    { "names", test_names },
    { "compress", test_compress },
    CU_TEST_INFO_NULL,
};

CU_SuiteInfo xm_test_suites[] = {
    { "request", NULL, NULL, setup, teardown, request_tests },
    CU_SUITE_INFO_NULL,
};
