/*
 * json_test.c -- the JSON wrapper: generation, parsing, typed getters
 * and their refusals of hostile input.
 */
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "xm_err.h"
#include "xm_json.h"

static struct xm_jgen *gen;
static xm_json *doc;

static void
setup(void)
{
    gen = NULL;
    doc = NULL;
}

static void
teardown(void)
{
    xm_jgen_free(gen);
    gen = NULL;
    xm_json_free(doc);
    doc = NULL;
}

static void
parse_ok(const char *text)
{
    char err[128];
    int rc = xm_json_parse(text, strlen(text), &doc, err, sizeof(err));
    CU_ASSERT_EQUAL_FATAL(rc, XM_OK);
}

static void
test_generate_document(void)
{
    const char *text;
    size_t len;

    gen = xm_jgen_new(false);
    CU_ASSERT_PTR_NOT_NULL_FATAL(gen);
    xm_jgen_map_open(gen);
    xm_jgen_kv_str(gen, "host", "A");
    xm_jgen_kv_int(gen, "n", -3);
    xm_jgen_kv_uint(gen, "kib", 131072);
    xm_jgen_kv_bool(gen, "dry_run", true);
    xm_jgen_key(gen, "list");
    xm_jgen_array_open(gen);
    xm_jgen_str(gen, "a\"b");
    xm_jgen_null(gen);
    xm_jgen_array_close(gen);
    xm_jgen_map_close(gen);
    CU_ASSERT_EQUAL_FATAL(xm_jgen_finish(gen, &text, &len), XM_OK);
    CU_ASSERT_STRING_EQUAL(text, "{\"host\":\"A\",\"n\":-3,\"kib\":131072,"
                           "\"dry_run\":true,\"list\":[\"a\\\"b\",null]}");
    CU_ASSERT_EQUAL(len, strlen(text));
}

static void
test_generate_first_error_sticks(void)
{
    const char *text;

    gen = xm_jgen_new(false);
    xm_jgen_map_open(gen);
    xm_jgen_kv_uint(gen, "big", UINT64_MAX);   /* not representable */
    xm_jgen_kv_str(gen, "after", "x");
    xm_jgen_map_close(gen);
    CU_ASSERT_EQUAL(xm_jgen_finish(gen, &text, NULL), XM_ERR_TOOBIG);
}

static void
test_generate_invalid_utf8(void)
{
    const char *text;

    gen = xm_jgen_new(false);
    xm_jgen_str(gen, "\xff\xfe");
    CU_ASSERT_EQUAL(xm_jgen_finish(gen, &text, NULL), XM_ERR_INVAL);
}

static void
test_generate_unbalanced(void)
{
    const char *text;

    gen = xm_jgen_new(false);
    xm_jgen_map_open(gen);
    xm_jgen_array_close(gen);
    CU_ASSERT_NOT_EQUAL(xm_jgen_finish(gen, &text, NULL), XM_OK);
}

static void
test_raw_splice(void)
{
    char *text = NULL;

    gen = xm_jgen_new(false);
    xm_jgen_map_open(gen);
    xm_jgen_key(gen, "plan");
    xm_jgen_raw(gen, "{\"a\":[1,2.5,true]}", 18);
    xm_jgen_map_close(gen);
    CU_ASSERT_EQUAL_FATAL(xm_jgen_take(gen, &text), XM_OK);
    CU_ASSERT_STRING_EQUAL(text, "{\"plan\":{\"a\":[1,2.5,true]}}");
    free(text);
}

static void
test_raw_rejects_garbage(void)
{
    const char *text;

    gen = xm_jgen_new(false);
    xm_jgen_raw(gen, "{\"a\":", 5);
    CU_ASSERT_EQUAL(xm_jgen_finish(gen, &text, NULL), XM_ERR_INVAL);
}

static void
test_parse_typed_getters(void)
{
    const char *s;
    int64_t i;
    uint64_t u;
    bool b;

    parse_ok("{\"s\":\"x\",\"i\":-7,\"u\":42,\"b\":false,\"f\":1.5,"
             "\"a\":[1,\"two\"]}");
    CU_ASSERT_EQUAL(xm_json_type(doc), XM_JSON_OBJECT);
    CU_ASSERT_EQUAL(xm_json_get_str(doc, "s", &s), XM_OK);
    CU_ASSERT_STRING_EQUAL(s, "x");
    CU_ASSERT_EQUAL(xm_json_get_int(doc, "i", &i), XM_OK);
    CU_ASSERT_EQUAL(i, -7);
    CU_ASSERT_EQUAL(xm_json_get_uint(doc, "u", &u), XM_OK);
    CU_ASSERT_EQUAL(u, 42);
    CU_ASSERT_EQUAL(xm_json_get_bool(doc, "b", &b), XM_OK);
    CU_ASSERT_FALSE(b);
    /* wrong types and missing keys are told apart */
    CU_ASSERT_EQUAL(xm_json_get_uint(doc, "i", &u), XM_ERR_INVAL);
    CU_ASSERT_EQUAL(xm_json_get_int(doc, "f", &i), XM_ERR_INVAL);
    CU_ASSERT_EQUAL(xm_json_get_str(doc, "i", &s), XM_ERR_INVAL);
    CU_ASSERT_EQUAL(xm_json_get_str(doc, "missing", &s), XM_ERR_NOTFOUND);
    CU_ASSERT_EQUAL(xm_json_len(xm_json_get(doc, "a")), 2);
    CU_ASSERT_EQUAL(xm_json_type(xm_json_at(xm_json_get(doc, "a"), 1)),
                    XM_JSON_STRING);
    CU_ASSERT_PTR_NULL(xm_json_at(xm_json_get(doc, "a"), 2));
    CU_ASSERT_STRING_EQUAL(xm_json_key_at(doc, 0), "s");
    CU_ASSERT_PTR_NULL(xm_json_key_at(doc, 99));
    CU_ASSERT_PTR_NULL(xm_json_get(xm_json_get(doc, "a"), "s"));
}

static void
test_parse_rejects(void)
{
    static const char *const bad[] = {
        "", "{", "{\"a\":}", "[1,]", "{'a':1}", "nul", "{\"a\":1}}",
    };
    char err[128];

    for (unsigned k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
        xm_json *d = NULL;
        int rc = xm_json_parse(bad[k], strlen(bad[k]), &d, err, sizeof(err));
        CU_ASSERT_EQUAL(rc, XM_ERR_INVAL);
        CU_ASSERT_PTR_NULL(d);
        CU_ASSERT(strlen(err) > 0);
    }
}

static void
test_parse_embedded_nul(void)
{
    char err[128];
    static const char text[] = "{\"a\":\"x\0y\"}";

    CU_ASSERT_EQUAL(xm_json_parse(text, sizeof(text) - 1, &doc, err,
                                  sizeof(err)), XM_ERR_INVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "NUL"));
}

static void
test_parse_uses_length_not_nul(void)
{
    /* only the first 7 bytes are the document */
    static const char text[] = "{\"a\":1}GARBAGE";

    CU_ASSERT_EQUAL(xm_json_parse(text, 7, &doc, NULL, 0), XM_OK);
}

static void
test_parse_huge_integer(void)
{
    int64_t i;

    parse_ok("{\"n\":123456789012345678901234567890}");
    CU_ASSERT_EQUAL(xm_json_get_int(doc, "n", &i), XM_ERR_INVAL);
}

static CU_TestInfo json_tests[] = {
    { "generate a document", test_generate_document },
    { "first generation error sticks", test_generate_first_error_sticks },
    { "invalid UTF-8 refused", test_generate_invalid_utf8 },
    { "unbalanced document refused", test_generate_unbalanced },
    { "raw splice", test_raw_splice },
    { "raw splice rejects garbage", test_raw_rejects_garbage },
    { "typed getters", test_parse_typed_getters },
    { "malformed input refused", test_parse_rejects },
    { "embedded NUL refused", test_parse_embedded_nul },
    { "length bounds the input", test_parse_uses_length_not_nul },
    { "integer overflow refused", test_parse_huge_integer },
    CU_TEST_INFO_NULL,
};

CU_SuiteInfo xm_test_suites[] = {
    { "json", NULL, NULL, setup, teardown, json_tests },
    CU_SUITE_INFO_NULL,
};
