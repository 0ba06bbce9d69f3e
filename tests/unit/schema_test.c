/*
 * schema_test.c -- the xenstore schema module (xm_schema.c) and its
 * generated table, against the xenstore double for create_tree.
 *
 * Each test gets a fresh store with a dom0 connection (the agent) and a
 * guest connection (domid 5).
 */
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "xm_err.h"
#include "xm_schema.h"
#include "xs_fake.h"

static struct xs_fake *store;
static struct xm_xs dom0;
static struct xm_xs guest;

/* CUnit's per-test setup cannot report failure: stop loudly. */
static void
setup(void)
{
    store = xs_fake_new();
    if (!store || xs_fake_connect(store, 0, &dom0) != XM_OK ||
        xs_fake_connect(store, 5, &guest) != XM_OK)
        abort();
}

static void
teardown(void)
{
    xm_xs_close(&dom0);
    xm_xs_close(&guest);
    xs_fake_free(store);
    store = NULL;
}

static const struct xm_schema_key *
must_find(const char *path)
{
    const struct xm_schema_key *k = xm_schema_find(path);

    CU_ASSERT_PTR_NOT_NULL(k);
    return k;
}

static int
check(const char *path, const char *value)
{
    const struct xm_schema_key *k = xm_schema_find(path);

    if (!k)
        return XM_ERR_NOTFOUND;
    return xm_schema_check_value(k, value, strlen(value));
}

/* ---- the table ---- */

static void
test_table(void)
{
    const struct xm_schema_key *k;

    CU_ASSERT_TRUE(xm_schema_nkeys >= 26);
    k = must_find("/tool/xenmaint");
    CU_ASSERT_PTR_NOT_NULL_FATAL(k);
    CU_ASSERT_EQUAL(k->type, XM_SCHEMA_DIR);
    CU_ASSERT_TRUE(k->flags & XM_SCHEMA_F_DIR);
    CU_ASSERT_STRING_EQUAL(k->perms, "n0");
    k = must_find("/tool/xenmaint/job/j-1/state");
    CU_ASSERT_PTR_NOT_NULL_FATAL(k);
    CU_ASSERT_STRING_EQUAL(k->pattern, "/tool/xenmaint/job/<id>/state");
    CU_ASSERT_EQUAL(k->type, XM_SCHEMA_ENUM);
    CU_ASSERT_STRING_EQUAL(k->enum_values, "queued,running,done,failed");
    CU_ASSERT_TRUE(k->flags & XM_SCHEMA_F_PLACEHOLDER);
    CU_ASSERT_STRING_EQUAL(k->writer, "agent");
    k = must_find("/tool/xenmaint/job/j-1/progress");
    CU_ASSERT_PTR_NOT_NULL_FATAL(k);
    CU_ASSERT_TRUE(k->flags & XM_SCHEMA_F_RANGE);
    CU_ASSERT_EQUAL(k->max, 100);
    k = must_find("/local/domain/7/data/xenmaint-ack");
    CU_ASSERT_PTR_NOT_NULL_FATAL(k);
    CU_ASSERT_STRING_EQUAL(k->writer, "guest");
    /* Every pattern finds itself once its placeholders are filled. */
    for (unsigned i = 0; i < xm_schema_nkeys; i++) {
        CU_ASSERT_PTR_NOT_NULL(xm_schema_keys[i].meaning);
        CU_ASSERT_PTR_NOT_NULL(xm_schema_keys[i].perms);
    }
}

static void
test_find(void)
{
    static const char *const unknown[] = {
        "/tool/xenmaint/bogus",
        "/tool/xenmaint/host/state/extra",
        "/tool/xenmaint/job/a.b/state",         /* '.' is not xenstore's */
        "/tool/xenmaint/job//state",
        "/tool/xenmaint/job/x/state/",
        "/tool/xenmaintx",
        "/tool",
        "/local/domain/abc/xenmaint",
        "/local/domain/05/xenmaint",
        "/local/domain/32752/xenmaint",
        "/local/domain/-1/xenmaint",
        "tool/xenmaint",
        "",
    };
    char longid[80];

    CU_ASSERT_PTR_NOT_NULL(xm_schema_find("/tool/xenmaint/agent/pid"));
    CU_ASSERT_PTR_NOT_NULL(xm_schema_find("/tool/xenmaint/request/Ab_9-z"));
    CU_ASSERT_PTR_NOT_NULL(xm_schema_find("/tool/xenmaint/job/x"));
    CU_ASSERT_PTR_NOT_NULL(xm_schema_find("/local/domain/0/xenmaint"));
    CU_ASSERT_PTR_NOT_NULL(
        xm_schema_find("/local/domain/32751/xenmaint/notice"));
    for (unsigned i = 0; i < sizeof(unknown) / sizeof(unknown[0]); i++)
        CU_ASSERT_PTR_NULL(xm_schema_find(unknown[i]));
    CU_ASSERT_PTR_NULL(xm_schema_find(NULL));
    /* <id> is at most 64 characters. */
    memset(longid, 'a', 64);
    longid[64] = '\0';
    char path[XM_XS_PATH_MAX];
    CU_ASSERT_EQUAL(xm_xs_path(path, "/tool/xenmaint/job/%s", longid),
                    XM_OK);
    CU_ASSERT_PTR_NOT_NULL(xm_schema_find(path));
    longid[64] = 'a';
    longid[65] = '\0';
    CU_ASSERT_EQUAL(xm_xs_path(path, "/tool/xenmaint/job/%s", longid),
                    XM_OK);
    CU_ASSERT_PTR_NULL(xm_schema_find(path));
}

/* ---- values ---- */

static void
test_values_scalar(void)
{
    CU_ASSERT_EQUAL(check("/tool/xenmaint/agent/pid", "1234"), XM_OK);
    CU_ASSERT_EQUAL(check("/tool/xenmaint/agent/pid", "0"), XM_OK);
    CU_ASSERT_EQUAL(check("/tool/xenmaint/agent/pid", ""), XM_ERR_INVAL);
    CU_ASSERT_EQUAL(check("/tool/xenmaint/agent/pid", "-1"), XM_ERR_INVAL);
    CU_ASSERT_EQUAL(check("/tool/xenmaint/agent/pid", "012"), XM_ERR_INVAL);
    CU_ASSERT_EQUAL(check("/tool/xenmaint/agent/pid", "12 "), XM_ERR_INVAL);
    CU_ASSERT_EQUAL(check("/tool/xenmaint/host/free-kib",
                          "18446744073709551615"), XM_OK);
    CU_ASSERT_EQUAL(check("/tool/xenmaint/host/free-kib",
                          "18446744073709551616"), XM_ERR_INVAL);
    CU_ASSERT_EQUAL(check("/tool/xenmaint/job/j/progress", "100"), XM_OK);
    CU_ASSERT_EQUAL(check("/tool/xenmaint/job/j/progress", "101"),
                    XM_ERR_INVAL);
    CU_ASSERT_EQUAL(check("/tool/xenmaint/job/j/cancel", "1"), XM_OK);
    CU_ASSERT_EQUAL(check("/tool/xenmaint/job/j/cancel", "0"), XM_OK);
    CU_ASSERT_EQUAL(check("/tool/xenmaint/job/j/cancel", "true"),
                    XM_ERR_INVAL);
    CU_ASSERT_EQUAL(check("/tool/xenmaint/host/state", "draining"), XM_OK);
    CU_ASSERT_EQUAL(check("/tool/xenmaint/host/state", "reboot-required"),
                    XM_OK);
    CU_ASSERT_EQUAL(check("/tool/xenmaint/host/state", "drain"),
                    XM_ERR_INVAL);
    CU_ASSERT_EQUAL(check("/tool/xenmaint/host/state", "activex"),
                    XM_ERR_INVAL);
    CU_ASSERT_EQUAL(check("/tool/xenmaint/host/state", ""), XM_ERR_INVAL);
    CU_ASSERT_EQUAL(check("/tool/xenmaint/host/build-id", "0a1B"), XM_OK);
    CU_ASSERT_EQUAL(check("/tool/xenmaint/host/build-id", "0a1"),
                    XM_ERR_INVAL);
    CU_ASSERT_EQUAL(check("/tool/xenmaint/host/build-id", "zz"),
                    XM_ERR_INVAL);
    CU_ASSERT_EQUAL(check("/tool/xenmaint/host/reason", "operator: a b"),
                    XM_OK);
    CU_ASSERT_EQUAL(check("/tool/xenmaint/host/reason", "a\nb"),
                    XM_ERR_INVAL);
    CU_ASSERT_EQUAL(check("/tool/xenmaint/host", ""), XM_OK);
    CU_ASSERT_EQUAL(check("/tool/xenmaint/host", "x"), XM_ERR_INVAL);
}

static void
test_values_hostile(void)
{
    const struct xm_schema_key *k = xm_schema_find("/tool/xenmaint/host/name");
    char *big;

    CU_ASSERT_PTR_NOT_NULL_FATAL(k);
    /* An embedded NUL is never a valid value. */
    CU_ASSERT_EQUAL(xm_schema_check_value(k, "ab\0cd", 5), XM_ERR_INVAL);
    big = malloc(XM_XS_VALUE_MAX + 1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(big);
    memset(big, 'a', XM_XS_VALUE_MAX + 1);
    CU_ASSERT_EQUAL(xm_schema_check_value(k, big, XM_XS_VALUE_MAX), XM_OK);
    CU_ASSERT_EQUAL(xm_schema_check_value(k, big, XM_XS_VALUE_MAX + 1),
                    XM_ERR_TOOBIG);
    free(big);
    CU_ASSERT_EQUAL(xm_schema_check_value(NULL, "x", 1), XM_ERR_INVAL);
}

static void
test_values_json(void)
{
    static const char *const good[] = {
        "{}", "[]", "{\"type\":\"migrate\",\"not-before\":1,\"deadline\":2}",
        " [1, -2.5e3, true, false, null, \"\\u00e9\\n\"] ", "0", "\"s\"",
        "{\"a\":{\"b\":[{}]}}",
    };
    static const char *const bad[] = {
        "", "{", "}", "{\"a\"}", "{\"a\":}", "[1,]", "[1 2]", "{a:1}",
        "01", "1.", "-", "tru", "\"\\x\"", "\"unterminated", "{} {}",
        "[\"\t\"]", "\"\\u12\"", "nul",
    };
    char deep[80];

    for (unsigned i = 0; i < sizeof(good) / sizeof(good[0]); i++)
        CU_ASSERT_EQUAL(check("/tool/xenmaint/host/livepatch", good[i]),
                        XM_OK);
    for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        CU_ASSERT_EQUAL(check("/tool/xenmaint/host/livepatch", bad[i]),
                        XM_ERR_INVAL);
    /* Nesting is bounded: hostile input cannot exhaust the stack. */
    memset(deep, '[', 40);
    memset(deep + 40, ']', 39);
    deep[79] = '\0';
    CU_ASSERT_EQUAL(check("/tool/xenmaint/host/livepatch", deep),
                    XM_ERR_INVAL);
    memset(deep, '[', 10);
    memset(deep + 10, ']', 10);
    deep[20] = '\0';
    CU_ASSERT_EQUAL(check("/tool/xenmaint/host/livepatch", deep), XM_OK);
}

/* ---- permissions ---- */

static void
test_perms(void)
{
    struct xm_xs_perm p[XM_XS_PERMS_MAX];
    const struct xm_schema_key *k;
    unsigned n = 0;

    k = must_find("/local/domain/12/xenmaint/notice");
    CU_ASSERT_PTR_NOT_NULL_FATAL(k);
    CU_ASSERT_EQUAL(xm_schema_perms(k, 12, p, XM_XS_PERMS_MAX, &n), XM_OK);
    CU_ASSERT_EQUAL_FATAL(n, 2);
    CU_ASSERT_EQUAL(p[0].domid, 0);
    CU_ASSERT_EQUAL(p[0].access, 'n');
    CU_ASSERT_EQUAL(p[1].domid, 12);
    CU_ASSERT_EQUAL(p[1].access, 'r');
    CU_ASSERT_EQUAL(xm_schema_perms(k, 12, p, 1, &n), XM_ERR_TOOBIG);
    CU_ASSERT_EQUAL(xm_schema_perms(k, 0x7FF0, p, XM_XS_PERMS_MAX, &n),
                    XM_ERR_INVAL);
    k = must_find("/tool/xenmaint/host/state");
    CU_ASSERT_PTR_NOT_NULL_FATAL(k);
    CU_ASSERT_EQUAL(xm_schema_perms(k, 99, p, XM_XS_PERMS_MAX, &n), XM_OK);
    CU_ASSERT_EQUAL(n, 1);
    CU_ASSERT_EQUAL(p[0].domid, 0);
    CU_ASSERT_EQUAL(p[0].access, 'n');
    k = must_find("/local/domain/3/data/xenmaint-ack");
    CU_ASSERT_PTR_NOT_NULL_FATAL(k);
    CU_ASSERT_EQUAL(xm_schema_perms(k, 3, p, XM_XS_PERMS_MAX, &n), XM_OK);
    CU_ASSERT_EQUAL(p[0].domid, 3);
}

/* ---- create_tree ---- */

static void
test_create_tree(void)
{
    struct xm_xs_perm p[XM_XS_PERMS_MAX];
    unsigned n = 0;
    char *v = NULL;

    CU_ASSERT_EQUAL(xm_schema_create_tree(&dom0), XM_OK);
    /* /tool + the five fixed dirs of /tool/xenmaint. */
    CU_ASSERT_EQUAL(xs_fake_count_nodes(store), 6);
    CU_ASSERT_EQUAL(dom0.ops->get_perms(dom0.ctx, XM_XS_NO_TXN,
                                        "/tool/xenmaint/job", p,
                                        XM_XS_PERMS_MAX, &n), XM_OK);
    CU_ASSERT_EQUAL(n, 1);
    CU_ASSERT_EQUAL(p[0].domid, 0);
    CU_ASSERT_EQUAL(p[0].access, 'n');
    /* The agent writes a key; a guest cannot read it, or anything else
     * under /tool/xenmaint, nor write there. */
    CU_ASSERT_EQUAL(xm_xs_write_str(&dom0, XM_XS_NO_TXN,
                                    "/tool/xenmaint/host/state", "active"),
                    XM_OK);
    CU_ASSERT_EQUAL(xm_xs_read(&guest, XM_XS_NO_TXN,
                               "/tool/xenmaint/host/state", &v),
                    XM_ERR_PERM);
    CU_ASSERT_EQUAL(xm_xs_read(&guest, XM_XS_NO_TXN, "/tool/xenmaint", &v),
                    XM_ERR_PERM);
    CU_ASSERT_EQUAL(xm_xs_write_str(&guest, XM_XS_NO_TXN,
                                    "/tool/xenmaint/request/evil", "{}"),
                    XM_ERR_PERM);
    CU_ASSERT_PTR_NULL(v);
}

static void
test_create_tree_idempotent(void)
{
    struct xm_xs_perm loose = { .domid = 0, .access = 'r' };
    struct xm_xs_perm p[XM_XS_PERMS_MAX];
    unsigned n = 0;
    char *v = NULL;

    CU_ASSERT_EQUAL(xm_schema_create_tree(&dom0), XM_OK);
    CU_ASSERT_EQUAL(xm_xs_write_str(&dom0, XM_XS_NO_TXN,
                                    "/tool/xenmaint/host/name", "h1"),
                    XM_OK);
    /* Someone loosened a directory: the next start-up repairs it. */
    CU_ASSERT_EQUAL(dom0.ops->set_perms(dom0.ctx, XM_XS_NO_TXN,
                                        "/tool/xenmaint/host", &loose, 1),
                    XM_OK);
    CU_ASSERT_EQUAL(xm_schema_create_tree(&dom0), XM_OK);
    CU_ASSERT_EQUAL(xs_fake_count_nodes(store), 7);
    CU_ASSERT_EQUAL(dom0.ops->get_perms(dom0.ctx, XM_XS_NO_TXN,
                                        "/tool/xenmaint/host", p,
                                        XM_XS_PERMS_MAX, &n), XM_OK);
    CU_ASSERT_EQUAL(p[0].access, 'n');
    CU_ASSERT_EQUAL(xs_fake_peek(store, "/tool/xenmaint/host/name", &v),
                    XM_OK);
    CU_ASSERT_STRING_EQUAL(v, "h1");
    free(v);
}

static void
test_create_tree_faults(void)
{
    struct fault *fault = xs_fake_fault(store);

    /* A failing step aborts the whole transaction: nothing is left. */
    CU_ASSERT_EQUAL(fault_arm(fault, "set_perms", 3, XM_ERR_IO), 0);
    CU_ASSERT_EQUAL(xm_schema_create_tree(&dom0), XM_ERR_IO);
    CU_ASSERT_EQUAL(xs_fake_count_nodes(store), 0);
    /* A lost race is retried. */
    CU_ASSERT_EQUAL(fault_arm(fault, "txn_end", 1, XM_ERR_BUSY), 0);
    CU_ASSERT_EQUAL(xm_schema_create_tree(&dom0), XM_OK);
    CU_ASSERT_EQUAL(fault_count(fault, "txn_start"), 3);
    CU_ASSERT_EQUAL(xs_fake_count_nodes(store), 6);
}

static CU_TestInfo table_tests[] = {
    { "generated table", test_table },
    { "find", test_find },
    CU_TEST_INFO_NULL,
};

static CU_TestInfo value_tests[] = {
    { "scalar types", test_values_scalar },
    { "hostile values", test_values_hostile },
    { "json", test_values_json },
    { "perms", test_perms },
    CU_TEST_INFO_NULL,
};

static CU_TestInfo tree_tests[] = {
    { "create_tree", test_create_tree },
    { "create_tree is idempotent", test_create_tree_idempotent },
    { "create_tree under faults", test_create_tree_faults },
    CU_TEST_INFO_NULL,
};

CU_SuiteInfo xm_test_suites[] = {
    { "schema table", NULL, NULL, setup, teardown, table_tests },
    { "schema values", NULL, NULL, setup, teardown, value_tests },
    { "schema tree", NULL, NULL, setup, teardown, tree_tests },
    CU_SUITE_INFO_NULL,
};
