/*
 * manifest_test.c -- XSA manifests (xm_manifest): a good manifest from a
 * file, every field broken in turn (wrong type, missing, unknown, path
 * escapes, bad hex, duplicate names), the decision for each kind of
 * host (already patched, applicable -- which payload among several
 * builds and stack positions --, not applicable with reboot-required or
 * not-affected), sha256 and ELF facts against the manifest, and the
 * verify regex.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "xm_err.h"
#include "xm_manifest.h"

#define XEN_A "5e00b0fd12a52f002268d3e375ba74e84735c1de"
#define XEN_B "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define XEN_C "cccccccccccccccccccccccccccccccccccccccc"
#define PREV "1111111111111111111111111111111111111111"
#define SELF "c64916bae2d8ad63c360cb050482d1f7d9bee1c7"
/* sha256("abc") */
#define SHA_ABC \
    "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"

static const char GOOD[] =
    "{ \"version\": 1, \"xsa\": \"XSA-999\",\n"
    "  \"title\": \"x86: example flaw\",\n"
    "  \"payloads\": [\n"
    "    { \"name\": \"xsa999\", \"file\": \"xsa999-a.livepatch\",\n"
    "      \"sha256\": \"" SHA_ABC "\",\n"
    "      \"xen_build_ids\": [\"" XEN_A "\"], \"depends\": null,\n"
    "      \"build_id\": \"" SELF "\", \"replace\": false },\n"
    "    { \"name\": \"xsa999-b\", \"file\": \"b/xsa999-b.livepatch\",\n"
    "      \"sha256\": \"" SHA_ABC "\",\n"
    "      \"xen_build_ids\": [\"" XEN_C "\", \"" XEN_B "\"] },\n"
    "    { \"name\": \"xsa999-s\", \"file\": \"xsa999-s.livepatch\",\n"
    "      \"sha256\": \"" SHA_ABC "\",\n"
    "      \"xen_build_ids\": [\"" XEN_A "\"], \"depends\": \"" PREV "\" }\n"
    "  ],\n"
    "  \"no_payload\": \"reboot-required\",\n"
    "  \"verify\": { \"command\": \"xen-livepatch list\",\n"
    "              \"expect\": \"xsa999.*APPLIED\" } }\n";

static char dir[64];
static struct xm_manifest M;
static char err[512];

static void
setup(void)
{
    snprintf(dir, sizeof(dir), "/tmp/xm-manifest-XXXXXX");
    CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(dir));
    xm_manifest_init(&M);
    err[0] = '\0';
}

static void
teardown(void)
{
    char cmd[128];

    xm_manifest_dispose(&M);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    CU_ASSERT_EQUAL(system(cmd), 0);
}

static void
write_file(const char *name, const char *text, size_t len)
{
    char path[160];
    FILE *f;

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    f = fopen(path, "wb");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    CU_ASSERT_EQUAL(fwrite(text, 1, len, f), len);
    fclose(f);
}

/* base with the first occurrence of from replaced by to (heap). */
static char *
edit_text(const char *base, const char *from, const char *to)
{
    const char *at = strstr(base, from);
    size_t pre, n;
    char *s;

    CU_ASSERT_PTR_NOT_NULL_FATAL(at);
    pre = (size_t)(at - base);
    n = strlen(base) - strlen(from) + strlen(to);
    s = malloc(n + 1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    memcpy(s, base, pre);
    memcpy(s + pre, to, strlen(to));
    strcpy(s + pre + strlen(to), at + strlen(from));
    return s;
}

static char *
edit(const char *from, const char *to)
{
    return edit_text(GOOD, from, to);
}

static int
parse(const char *text)
{
    xm_manifest_dispose(&M);
    return xm_manifest_parse(text, strlen(text), "/srv/xsa", &M, err,
                             sizeof(err));
}

/* ---- loading ----------------------------------------------------- */

static void
test_load_good(void)
{
    char path[160], ppath[PATH_MAX];

    write_file("xsa-999.json", GOOD, strlen(GOOD));
    snprintf(path, sizeof(path), "%s/xsa-999.json", dir);
    CU_ASSERT_EQUAL_FATAL(xm_manifest_load(path, &M, err, sizeof(err)),
                          XM_OK);
    CU_ASSERT_STRING_EQUAL(M.xsa, "XSA-999");
    CU_ASSERT_STRING_EQUAL(M.title, "x86: example flaw");
    CU_ASSERT_STRING_EQUAL(M.dir, dir);
    CU_ASSERT_EQUAL_FATAL(M.npayloads, 3);
    CU_ASSERT_STRING_EQUAL(M.payloads[0].name, "xsa999");
    CU_ASSERT_EQUAL(M.payloads[0].depends.len, 0);
    CU_ASSERT_EQUAL(M.payloads[0].build_id.len, 20);
    CU_ASSERT_EQUAL(M.payloads[0].sha256[0], 0xba);
    CU_ASSERT_FALSE(M.payloads[0].replace);
    CU_ASSERT_EQUAL(M.payloads[1].nxen_build_ids, 2);
    CU_ASSERT_EQUAL(M.payloads[2].depends.len, 20);
    CU_ASSERT_EQUAL(M.no_payload, XM_NO_PAYLOAD_REBOOT);
    CU_ASSERT_STRING_EQUAL(M.verify_command, "xen-livepatch list");
    CU_ASSERT_EQUAL(xm_manifest_payload_path(&M, 1, ppath, sizeof(ppath)),
                    XM_OK);
    CU_ASSERT_PTR_NOT_NULL(strstr(ppath, "/b/xsa999-b.livepatch"));
    CU_ASSERT_EQUAL(strncmp(ppath, dir, strlen(dir)), 0);
    CU_ASSERT_EQUAL(xm_manifest_payload_path(&M, 1, ppath, 10),
                    XM_ERR_TOOBIG);
    CU_ASSERT_EQUAL(xm_manifest_payload_path(&M, 3, ppath, sizeof(ppath)),
                    XM_ERR_INVAL);
    xm_manifest_dispose(&M);
    xm_manifest_dispose(&M);            /* idempotent */
}

static void
test_load_io(void)
{
    char path[160], *big;

    snprintf(path, sizeof(path), "%s/absent.json", dir);
    CU_ASSERT_EQUAL(xm_manifest_load(path, &M, err, sizeof(err)),
                    XM_ERR_NOTFOUND);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "absent.json"));

    big = malloc(XM_MANIFEST_MAX_BYTES + 2);
    CU_ASSERT_PTR_NOT_NULL_FATAL(big);
    memset(big, ' ', XM_MANIFEST_MAX_BYTES + 2);
    write_file("big.json", big, XM_MANIFEST_MAX_BYTES + 2);
    free(big);
    snprintf(path, sizeof(path), "%s/big.json", dir);
    CU_ASSERT_EQUAL(xm_manifest_load(path, &M, err, sizeof(err)),
                    XM_ERR_TOOBIG);
    CU_ASSERT_EQUAL(M.npayloads, 0);

    write_file("bad.json", "{\"version\": 1", 13);
    snprintf(path, sizeof(path), "%s/bad.json", dir);
    CU_ASSERT_EQUAL(xm_manifest_load(path, &M, err, sizeof(err)),
                    XM_ERR_INVAL);
    CU_ASSERT_EQUAL(xm_manifest_load("", &M, err, sizeof(err)),
                    XM_ERR_INVAL);
}

/* One broken variant of GOOD and a word its error must hold. */
static const struct {
    const char *from, *to, *msg;
} bad[] = {
    { "\"version\": 1", "\"version\": \"1\"", "version" },
    { "\"version\": 1", "\"version\": 2", "version" },
    { "\"version\": 1,", "", "version" },
    { "\"XSA-999\"", "999", "xsa" },
    { "\"XSA-999\"", "\"XSA-99a\"", "xsa" },
    { "\"XSA-999\"", "\"XSA-\"", "xsa" },
    { "\"x86: example flaw\"", "[]", "title" },
    { "\"x86: example flaw\"", "\"\"", "title" },
    { "\"x86: example flaw\"", "\"a\\u0007b\"", "control" },
    { "\"payloads\": [", "\"payloads\": 3, \"x\": [", "unknown" },
    { "\"payloads\": [", "\"payload\": [", "unknown" },
    { "{ \"name\": \"xsa999\",", "7, {", "payloads[0]" },
    { "\"name\": \"xsa999\"", "\"name\": 999", "name" },
    { "\"name\": \"xsa999\",", "", "name" },
    { "\"name\": \"xsa999\"", "\"name\": \"xsa/999\"", "name" },
    { "\"name\": \"xsa999-s\"", "\"name\": \"xsa999\"", "already used" },
    { "\"xsa999-a.livepatch\"", "\"../xsa999-a.livepatch\"", "file" },
    { "\"xsa999-a.livepatch\"", "\"a/../../x.livepatch\"", "file" },
    { "\"xsa999-a.livepatch\"", "\"/etc/passwd\"", "relative" },
    { "\"xsa999-a.livepatch\"", "\"a//b.livepatch\"", "file" },
    { "\"xsa999-a.livepatch\"", "\"dir/\"", "directory" },
    { "\"xsa999-a.livepatch\"", "\"..\"", "file" },
    { "\"xsa999-a.livepatch\"", "false", "file" },
    { "\"sha256\": \"" SHA_ABC "\"", "\"sha256\": \"abcd\"", "sha256" },
    { "\"sha256\": \"" SHA_ABC "\"",
      "\"sha256\": \"zz7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff6"
      "1f20015ad\"", "sha256" },
    { "\"sha256\": \"" SHA_ABC "\",", "", "sha256" },
    { "\"xen_build_ids\": [\"" XEN_A "\"],", "", "xen_build_ids" },
    { "[\"" XEN_A "\"]", "\"" XEN_A "\"", "xen_build_ids" },
    { "[\"" XEN_A "\"]", "[]", "xen_build_ids" },
    { "[\"" XEN_A "\"]", "[\"5e0\"]", "xen_build_ids" },
    { "[\"" XEN_A "\"]", "[\"xyz0\"]", "xen_build_ids" },
    { "[\"" XEN_A "\"]", "[1]", "xen_build_ids" },
    { "[\"" XEN_A "\"]", "[\"" XEN_A "\", \"" XEN_A "\"]", "twice" },
    { "\"depends\": null", "\"depends\": 5", "depends" },
    { "\"depends\": null", "\"depends\": \"nothex\"", "depends" },
    { "\"depends\": null", "\"depends\": \"" PREV "\", \"replace\": true, "
      "\"x\": null", "unknown" },
    { "\"build_id\": \"" SELF "\"", "\"build_id\": null", "build_id" },
    { "\"replace\": false", "\"replace\": \"no\"", "replace" },
    { "\"depends\": null", "\"depends\": \"" PREV "\"",
      "replace\": false" /* not an error: see test_bad_fields */ },
    { "\"reboot-required\"", "\"maybe\"", "no_payload" },
    { "\"reboot-required\"", "1", "no_payload" },
    { "\"verify\": {", "\"verify\": \"xl info\", \"v\": {", "unknown" },
    { "\"command\": \"xen-livepatch list\",", "", "command" },
    { "\"xsa999.*APPLIED\"", "\"(unclosed\"", "regex" },
    { "\"xsa999.*APPLIED\"", "\"x\", \"timeout\": 5", "unknown" },
    { "\"version\": 1", "\"version\": 1, \"version\": 1", "twice" },
};

static void
test_bad_fields(void)
{
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char *text = edit(bad[i].from, bad[i].to);
        int rc = parse(text);

        free(text);
        if (!strcmp(bad[i].msg, "replace\": false")) {
            /* depends given on a non-replace payload: fine */
            CU_ASSERT_EQUAL(rc, XM_OK);
            continue;
        }
        if (rc != XM_ERR_INVAL || !strstr(err, bad[i].msg))
            fprintf(stderr, "\nvariant %zu: rc %d err \"%s\"\n", i, rc,
                    err);
        CU_ASSERT_EQUAL(rc, XM_ERR_INVAL);
        CU_ASSERT_PTR_NOT_NULL(strstr(err, bad[i].msg));
        CU_ASSERT_EQUAL(M.npayloads, 0);
        CU_ASSERT_PTR_NULL(M.title);
    }
}

static void
test_replace_with_depends(void)
{
    char *once = edit("\"depends\": null", "\"depends\": \"" PREV "\"");
    char *text = edit_text(once, "\"replace\": false", "\"replace\": true");

    CU_ASSERT_EQUAL(parse(text), XM_ERR_INVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "replacement"));
    free(text);
    free(once);
}

static void
test_not_json(void)
{
    CU_ASSERT_EQUAL(parse("not json"), XM_ERR_INVAL);
    CU_ASSERT_EQUAL(parse("[1, 2]"), XM_ERR_INVAL);
    CU_ASSERT_EQUAL(parse(""), XM_ERR_INVAL);
}

static void
test_long_path(void)
{
    size_t n = PATH_MAX + 10;
    char *name = malloc(n + 1), *text;

    CU_ASSERT_PTR_NOT_NULL_FATAL(name);
    name[0] = '"';
    for (size_t i = 1; i < n - 1; i++)
        name[i] = i % 100 ? 'a' : '/';
    name[n - 1] = '"';
    name[n] = '\0';
    text = edit("\"xsa999-a.livepatch\"", name);
    CU_ASSERT_EQUAL(parse(text), XM_ERR_INVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "file"));
    free(text);
    free(name);
}

/* ---- deciding ---------------------------------------------------- */

static struct xm_lp_hostview
host(const char *xen_hex, const struct xm_lp_loaded *l, size_t n)
{
    struct xm_lp_hostview h;

    memset(&h, 0, sizeof(h));
    if (xen_hex)
        CU_ASSERT_EQUAL(xm_buildid_parse(xen_hex, &h.xen_build_id), XM_OK);
    h.payloads = l;
    h.npayloads = n;
    return h;
}

static struct xm_lp_loaded
loaded(const char *name, int state, const char *hex)
{
    struct xm_lp_loaded l;

    memset(&l, 0, sizeof(l));
    snprintf(l.name, sizeof(l.name), "%s", name);
    l.state = state;
    if (hex)
        CU_ASSERT_EQUAL(xm_buildid_parse(hex, &l.build_id), XM_OK);
    return l;
}

static void
test_decide_applicable(void)
{
    struct xm_patch_decision d;
    struct xm_lp_hostview h;
    struct xm_lp_loaded prev = loaded("prev", XM_LP_APPLIED, PREV);

    CU_ASSERT_EQUAL_FATAL(parse(GOOD), XM_OK);
    h = host(XEN_A, NULL, 0);
    xm_manifest_decide(&M, &h, &d);
    CU_ASSERT_EQUAL(d.verdict, XM_PATCH_APPLICABLE);
    CU_ASSERT_EQUAL(d.payload, 0);
    CU_ASSERT_FALSE(d.loaded);
    CU_ASSERT_PTR_NOT_NULL(strstr(d.reason, "xsa999"));

    /* The second of payload 1's build-ids. */
    h = host(XEN_B, NULL, 0);
    xm_manifest_decide(&M, &h, &d);
    CU_ASSERT_EQUAL(d.verdict, XM_PATCH_APPLICABLE);
    CU_ASSERT_EQUAL(d.payload, 1);

    /* Same build, on top of prev: the stacked payload. */
    h = host(XEN_A, &prev, 1);
    xm_manifest_decide(&M, &h, &d);
    CU_ASSERT_EQUAL(d.verdict, XM_PATCH_APPLICABLE);
    CU_ASSERT_EQUAL(d.payload, 2);
}

static void
test_decide_stack(void)
{
    struct xm_patch_decision d;
    struct xm_lp_loaded other = loaded("other", XM_LP_APPLIED, XEN_C);
    struct xm_lp_hostview h = host(XEN_A, &other, 1);
    char *text;

    CU_ASSERT_EQUAL_FATAL(parse(GOOD), XM_OK);
    xm_manifest_decide(&M, &h, &d);
    CU_ASSERT_EQUAL(d.verdict, XM_PATCH_NOT_APPLICABLE);
    CU_ASSERT_EQUAL(d.why, XM_WHY_STACK);
    CU_ASSERT_PTR_NOT_NULL(strstr(d.reason, "other"));

    /* A replacement fits whatever is applied. */
    text = edit("\"replace\": false", "\"replace\": true");
    CU_ASSERT_EQUAL_FATAL(parse(text), XM_OK);
    free(text);
    xm_manifest_decide(&M, &h, &d);
    CU_ASSERT_EQUAL(d.verdict, XM_PATCH_APPLICABLE);
    CU_ASSERT_EQUAL(d.payload, 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(d.reason, "replacing"));
}

static void
test_decide_not_applicable(void)
{
    struct xm_patch_decision d;
    struct xm_lp_hostview h = host(
        "dddddddddddddddddddddddddddddddddddddddd", NULL, 0);
    char *text;

    CU_ASSERT_EQUAL_FATAL(parse(GOOD), XM_OK);
    xm_manifest_decide(&M, &h, &d);
    CU_ASSERT_EQUAL(d.verdict, XM_PATCH_NOT_APPLICABLE);
    CU_ASSERT_EQUAL(d.why, XM_WHY_REBOOT_REQUIRED);
    CU_ASSERT_EQUAL(d.payload, -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(d.reason, "reboot"));
    CU_ASSERT_PTR_NOT_NULL(strstr(d.reason, "dddddddd"));

    text = edit("\"reboot-required\"", "\"not-affected\"");
    CU_ASSERT_EQUAL_FATAL(parse(text), XM_OK);
    free(text);
    xm_manifest_decide(&M, &h, &d);
    CU_ASSERT_EQUAL(d.verdict, XM_PATCH_NOT_APPLICABLE);
    CU_ASSERT_EQUAL(d.why, XM_WHY_NOT_AFFECTED);
    CU_ASSERT_PTR_NOT_NULL(strstr(d.reason, "not affected"));

    h = host(NULL, NULL, 0);
    xm_manifest_decide(&M, &h, &d);
    CU_ASSERT_EQUAL(d.verdict, XM_PATCH_NOT_APPLICABLE);
    CU_ASSERT_EQUAL(d.why, XM_WHY_UNKNOWN_HOST);
}

static void
test_decide_already(void)
{
    struct xm_patch_decision d;
    struct xm_lp_loaded l[2];
    struct xm_lp_hostview h;

    CU_ASSERT_EQUAL_FATAL(parse(GOOD), XM_OK);
    /* By name, build-id unknown. */
    l[0] = loaded("xsa999-b", XM_LP_APPLIED, NULL);
    h = host(XEN_B, l, 1);
    xm_manifest_decide(&M, &h, &d);
    CU_ASSERT_EQUAL(d.verdict, XM_PATCH_ALREADY);
    CU_ASSERT_EQUAL(d.payload, 1);
    /* By build-id, under another name. */
    l[0] = loaded("renamed", XM_LP_APPLIED, SELF);
    h = host(XEN_A, l, 1);
    xm_manifest_decide(&M, &h, &d);
    CU_ASSERT_EQUAL(d.verdict, XM_PATCH_ALREADY);
    CU_ASSERT_EQUAL(d.payload, 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(d.reason, "renamed"));
    /* Same name, another build-id: not ours, and in the way. */
    l[0] = loaded("xsa999", XM_LP_APPLIED, PREV);
    xm_manifest_decide(&M, &h, &d);
    CU_ASSERT_EQUAL(d.verdict, XM_PATCH_APPLICABLE);
    CU_ASSERT_EQUAL(d.payload, 2);      /* it stacks on PREV */
    l[0] = loaded("xsa999", XM_LP_CHECKED, PREV);
    xm_manifest_decide(&M, &h, &d);
    CU_ASSERT_EQUAL(d.verdict, XM_PATCH_NOT_APPLICABLE);
    CU_ASSERT_EQUAL(d.why, XM_WHY_NAME_CLASH);
    /* Uploaded, not applied: apply it. */
    l[0] = loaded("xsa999", XM_LP_CHECKED, SELF);
    xm_manifest_decide(&M, &h, &d);
    CU_ASSERT_EQUAL(d.verdict, XM_PATCH_APPLICABLE);
    CU_ASSERT_EQUAL(d.payload, 0);
    CU_ASSERT_TRUE(d.loaded);
    /* Loaded-only payloads do not make it patched. */
    l[0] = loaded("xsa999-b", XM_LP_CHECKED, NULL);
    h = host(XEN_B, l, 1);
    xm_manifest_decide(&M, &h, &d);
    CU_ASSERT_EQUAL(d.verdict, XM_PATCH_APPLICABLE);
    CU_ASSERT_TRUE(d.loaded);
}

/* ---- payload checks ---------------------------------------------- */

static void
test_sha256(void)
{
    CU_ASSERT_EQUAL_FATAL(parse(GOOD), XM_OK);
    CU_ASSERT_EQUAL(xm_manifest_payload_check(&M, 0, "abc", 3, err,
                                              sizeof(err)), XM_OK);
    CU_ASSERT_EQUAL(xm_manifest_payload_check(&M, 0, "abd", 3, err,
                                              sizeof(err)), XM_ERR_INVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, SHA_ABC));
    /* sha256("abd") */
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "a52d159f262b2c6ddb724a61840befc3"));
    CU_ASSERT_EQUAL(xm_manifest_payload_check(&M, 0, NULL, 0, err,
                                              sizeof(err)), XM_ERR_INVAL);
    CU_ASSERT_EQUAL(xm_manifest_payload_check(&M, 9, "abc", 3, err,
                                              sizeof(err)), XM_ERR_INVAL);
}

static void
test_payload_match(void)
{
    struct xm_lp_info info;

    CU_ASSERT_EQUAL_FATAL(parse(GOOD), XM_OK);
    memset(&info, 0, sizeof(info));
    CU_ASSERT_EQUAL(xm_buildid_parse(XEN_A, &info.xen_depends), XM_OK);
    CU_ASSERT_EQUAL(xm_buildid_parse(XEN_A, &info.depends), XM_OK);
    CU_ASSERT_EQUAL(xm_buildid_parse(SELF, &info.build_id), XM_OK);
    CU_ASSERT_EQUAL(xm_manifest_payload_match(&M, 0, &info, err,
                                              sizeof(err)), XM_OK);
    /* Payload 2 stacks on PREV, not on the hypervisor. */
    CU_ASSERT_EQUAL(xm_manifest_payload_match(&M, 2, &info, err,
                                              sizeof(err)), XM_ERR_INVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, PREV));
    /* Payload 1 is for other builds. */
    CU_ASSERT_EQUAL(xm_manifest_payload_match(&M, 1, &info, err,
                                              sizeof(err)), XM_ERR_INVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, XEN_A));
    CU_ASSERT_EQUAL(xm_buildid_parse(PREV, &info.build_id), XM_OK);
    CU_ASSERT_EQUAL(xm_manifest_payload_match(&M, 0, &info, err,
                                              sizeof(err)), XM_ERR_INVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, SELF));
}

static void
test_verify(void)
{
    char *text;

    CU_ASSERT_EQUAL_FATAL(parse(GOOD), XM_OK);
    CU_ASSERT_TRUE(xm_manifest_verify_output(&M,
                   " ID | status\n xsa999 | APPLIED\n"));
    CU_ASSERT_FALSE(xm_manifest_verify_output(&M, " xsa999 | CHECKED\n"));
    CU_ASSERT_FALSE(xm_manifest_verify_output(&M, NULL));
    text = edit(",\n  \"verify\": { \"command\": \"xen-livepatch list\",\n"
                "              \"expect\": \"xsa999.*APPLIED\" }", "");
    CU_ASSERT_EQUAL_FATAL(parse(text), XM_OK);
    free(text);
    CU_ASSERT_PTR_NULL(M.verify_command);
    CU_ASSERT_TRUE(xm_manifest_verify_output(&M, "anything"));
}

static CU_TestInfo load_tests[] = {
    { "good manifest from a file", test_load_good },
    { "missing, oversized, broken files", test_load_io },
    { "every field wrong in turn", test_bad_fields },
    { "replace with depends", test_replace_with_depends },
    { "not JSON", test_not_json },
    { "path longer than PATH_MAX", test_long_path },
    CU_TEST_INFO_NULL,
};

static CU_TestInfo decide_tests[] = {
    { "applicable: which payload", test_decide_applicable },
    { "stack mismatch and replace", test_decide_stack },
    { "reboot-required, not-affected", test_decide_not_applicable },
    { "already patched, loaded, clash", test_decide_already },
    { "sha256 match and mismatch", test_sha256 },
    { "ELF facts against the manifest", test_payload_match },
    { "verify regex", test_verify },
    CU_TEST_INFO_NULL,
};

CU_SuiteInfo xm_test_suites[] = {
    { "manifest-load", NULL, NULL, setup, teardown, load_tests },
    { "manifest-decide", NULL, NULL, setup, teardown, decide_tests },
    CU_SUITE_INFO_NULL,
};
