/*
 * patchflow_test.c -- the patch apply's journal record and the decision
 * of a restarted agent: round trips for every phase, hostile records
 * (every truncation, unknown and mistyped fields, another version,
 * oversized), and the resume table for every unfinished phase against
 * every state the payload can be found in, checking that a payload
 * reported applied is never applied again.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "xm_err.h"
#include "xm_patchflow.h"

static void
fill(struct xm_pf_rec *r, enum xm_pf_phase phase)
{
    xm_pf_rec_init(r);
    snprintf(r->job, sizeof(r->job), "job-1");
    r->phase = phase;
    r->request = strdup("{\"version\":1,\"op\":\"patch-apply\","
                        "\"payload\":\"/root/x.json\"}");
    snprintf(r->name, sizeof(r->name), "xen_hello_world");
    snprintf(r->xsa, sizeof(r->xsa), "XSA-900");
    r->payload_id.len = 4;
    memcpy(r->payload_id.id, "\x01\x02\x03\x04", 4);
    r->xen_id.len = 3;
    memcpy(r->xen_id.id, "\xaa\xbb\xcc", 3);
    r->updated_s = 1700000000;
}

static void
test_round_trip(void)
{
    for (int p = XM_PF_DRAINING; p <= XM_PF_REBOOT_REQUIRED; p++) {
        struct xm_pf_rec r, back;
        char *json = NULL, err[256];

        fill(&r, (enum xm_pf_phase)p);
        r.replace = p % 2;
        r.in_place = p % 3 == 0;
        if (p == XM_PF_FAILED)
            snprintf(r.reason, sizeof(r.reason), "it \"failed\"");
        CU_ASSERT_EQUAL_FATAL(xm_pf_encode(&r, &json), XM_OK);
        CU_ASSERT_EQUAL(xm_pf_decode(json, strlen(json), &back, err,
                                     sizeof(err)), XM_OK);
        CU_ASSERT_STRING_EQUAL(back.job, r.job);
        CU_ASSERT_EQUAL(back.phase, r.phase);
        CU_ASSERT_STRING_EQUAL(back.request ? back.request : "",
                               r.request);
        CU_ASSERT_STRING_EQUAL(back.name, r.name);
        CU_ASSERT_STRING_EQUAL(back.xsa, r.xsa);
        CU_ASSERT_STRING_EQUAL(back.reason, r.reason);
        CU_ASSERT(xm_buildid_equal(&back.payload_id, &r.payload_id));
        CU_ASSERT(xm_buildid_equal(&back.xen_id, &r.xen_id));
        CU_ASSERT_EQUAL(back.replace, r.replace);
        CU_ASSERT_EQUAL(back.in_place, r.in_place);
        CU_ASSERT_EQUAL(back.updated_s, r.updated_s);
        CU_ASSERT_STRING_EQUAL(xm_pf_phase_name(p),
                               xm_pf_phase_name(back.phase));
        free(json);
        xm_pf_rec_dispose(&back);
        xm_pf_rec_dispose(&r);
    }
}

static void
test_encode_refuses_inconsistent(void)
{
    struct xm_pf_rec r;
    char *json = NULL;

    /* applying without knowing the payload's build-id */
    fill(&r, XM_PF_APPLYING);
    r.payload_id.len = 0;
    CU_ASSERT_EQUAL(xm_pf_encode(&r, &json), XM_ERR_INVAL);
    CU_ASSERT_PTR_NULL(json);
    xm_pf_rec_dispose(&r);
    /* a draining record needs no payload yet */
    fill(&r, XM_PF_DRAINING);
    r.name[0] = '\0';
    r.payload_id.len = 0;
    CU_ASSERT_EQUAL(xm_pf_encode(&r, &json), XM_OK);
    free(json);
    json = NULL;
    /* bad job id, no request, a control character in the reason */
    snprintf(r.job, sizeof(r.job), "a/b");
    CU_ASSERT_EQUAL(xm_pf_encode(&r, &json), XM_ERR_INVAL);
    snprintf(r.job, sizeof(r.job), "ok");
    snprintf(r.reason, sizeof(r.reason), "line\nbreak");
    CU_ASSERT_EQUAL(xm_pf_encode(&r, &json), XM_ERR_INVAL);
    r.reason[0] = '\0';
    free(r.request);
    r.request = NULL;
    CU_ASSERT_EQUAL(xm_pf_encode(&r, &json), XM_ERR_INVAL);
    xm_pf_rec_dispose(&r);
}

static void
expect_bad(const char *text, int want, const char *in_msg)
{
    struct xm_pf_rec r;
    char err[256];
    int rc = xm_pf_decode(text, strlen(text), &r, err, sizeof(err));

    if (rc != want)
        fprintf(stderr, "\n  %s -> %d (%s), wanted %d\n", text, rc, err,
                want);
    CU_ASSERT_EQUAL(rc, want);
    CU_ASSERT_PTR_NULL(r.request);
    if (in_msg)
        CU_ASSERT_PTR_NOT_NULL(strstr(err, in_msg));
    xm_pf_rec_dispose(&r);
}

#define GOOD "{\"version\":1,\"job\":\"j\",\"phase\":\"applying\"," \
    "\"request\":\"{}\",\"name\":\"p\",\"xsa\":\"\"," \
    "\"payload_build_id\":\"0102\",\"xen_build_id\":\"aabb\"," \
    "\"replace\":false,\"in_place\":true,\"reason\":\"\",\"updated\":5}"

static void
test_decode_hostile(void)
{
    struct xm_pf_rec r;
    char err[256], *text = strdup(GOOD);
    size_t len = strlen(text);

    CU_ASSERT_EQUAL_FATAL(xm_pf_decode(text, len, &r, err, sizeof(err)),
                          XM_OK);
    xm_pf_rec_dispose(&r);
    /* every truncation fails cleanly */
    for (size_t n = 0; n < len; n++) {
        CU_ASSERT_NOT_EQUAL(xm_pf_decode(text, n, &r, err, sizeof(err)),
                            XM_OK);
        CU_ASSERT_PTR_NULL(r.request);
        xm_pf_rec_dispose(&r);
    }
    free(text);
    expect_bad("[]", XM_ERR_INVAL, "not a JSON object");
    expect_bad("{\"version\":2}", XM_ERR_UNSUPPORTED, "version 2");
    expect_bad("{\"version\":1,\"extra\":1}", XM_ERR_INVAL, "extra");
    expect_bad("{\"version\":\"1\"}", XM_ERR_INVAL, "version");
    /* the phase */
    {
        char buf[512];
        snprintf(buf, sizeof(buf), "%s", GOOD);
        memcpy(strstr(buf, "applying"), "applyinG", 8);
        expect_bad(buf, XM_ERR_INVAL, "phase");
        snprintf(buf, sizeof(buf), "%s", GOOD);
        memcpy(strstr(buf, "0102"), "01x2", 4);
        expect_bad(buf, XM_ERR_INVAL, "payload_build_id");
        snprintf(buf, sizeof(buf), "%s", GOOD);
        memcpy(strstr(buf, "false"), "0    ", 5);
        expect_bad(buf, XM_ERR_INVAL, "replace");
        /* applying with an empty name is inconsistent */
        snprintf(buf, sizeof(buf), "%s", GOOD);
        memcpy(strstr(buf, "\"name\":\"p\""), "\"name\":\"\" ", 10);
        expect_bad(buf, XM_ERR_INVAL, "needs");
    }
    /* oversized */
    {
        size_t big = XM_PF_FILE_MAX + 10;
        char *huge = malloc(big + 1);

        CU_ASSERT_PTR_NOT_NULL_FATAL(huge);
        memset(huge, ' ', big);
        huge[big] = '\0';
        expect_bad(huge, XM_ERR_TOOBIG, "larger");
        free(huge);
    }
}

/* The resume table: every unfinished phase against every state the
 * payload can be found in, the same hypervisor. */
static void
test_resume_table(void)
{
    static const struct {
        enum xm_pf_phase phase;
        bool loaded;
        enum xm_lp_state state;
        enum xm_pf_next want;
    } rows[] = {
        { XM_PF_DRAINING, false, 0, XM_PF_NEXT_DRAIN },
        { XM_PF_DRAINING, true, XM_LP_APPLIED, XM_PF_NEXT_DRAIN },
        { XM_PF_UPLOADING, false, 0, XM_PF_NEXT_PREFLIGHT },
        { XM_PF_UPLOADING, true, XM_LP_CHECKED, XM_PF_NEXT_APPLY },
        { XM_PF_UPLOADING, true, XM_LP_APPLIED, XM_PF_NEXT_VERIFY },
        { XM_PF_APPLYING, false, 0, XM_PF_NEXT_PREFLIGHT },
        { XM_PF_APPLYING, true, XM_LP_CHECKED, XM_PF_NEXT_APPLY },
        { XM_PF_APPLYING, true, XM_LP_APPLIED, XM_PF_NEXT_VERIFY },
        { XM_PF_VERIFYING, false, 0, XM_PF_NEXT_FAIL },
        { XM_PF_VERIFYING, true, XM_LP_CHECKED, XM_PF_NEXT_FAIL },
        { XM_PF_VERIFYING, true, XM_LP_APPLIED, XM_PF_NEXT_VERIFY },
        { XM_PF_UNDRAINING, true, XM_LP_APPLIED, XM_PF_NEXT_UNDRAIN },
        { XM_PF_UNDRAINING, false, 0, XM_PF_NEXT_UNDRAIN },
        { XM_PF_DONE, true, XM_LP_APPLIED, XM_PF_NEXT_NOTHING },
        { XM_PF_FAILED, true, XM_LP_CHECKED, XM_PF_NEXT_NOTHING },
        { XM_PF_REBOOT_REQUIRED, false, 0, XM_PF_NEXT_NOTHING },
        { XM_PF_APPLYING, true, (enum xm_lp_state)7, XM_PF_NEXT_FAIL },
    };

    for (size_t i = 0; i < sizeof(rows) / sizeof(*rows); i++) {
        struct xm_pf_rec r;
        struct xm_pf_seen seen;
        char why[XM_PF_REASON_MAX];
        enum xm_pf_next got;

        fill(&r, rows[i].phase);
        memset(&seen, 0, sizeof(seen));
        seen.xen_id = r.xen_id;
        seen.loaded = rows[i].loaded;
        seen.state = rows[i].state;
        got = xm_pf_resume(&r, &seen, why, sizeof(why));
        if (got != rows[i].want)
            fprintf(stderr, "\n  row %zu: %s -> %d, wanted %d (%s)\n", i,
                    xm_pf_phase_name(rows[i].phase), got, rows[i].want,
                    why);
        CU_ASSERT_EQUAL(got, rows[i].want);
        /* never an apply of what is applied */
        if (rows[i].loaded && rows[i].state == XM_LP_APPLIED)
            CU_ASSERT_NOT_EQUAL(got, XM_PF_NEXT_APPLY);
        if (got == XM_PF_NEXT_FAIL)
            CU_ASSERT_PTR_NOT_NULL(strstr(why, "xen_hello_world"));
        xm_pf_rec_dispose(&r);
    }
}

static void
test_resume_after_a_reboot(void)
{
    struct xm_pf_rec r;
    struct xm_pf_seen seen;
    char why[XM_PF_REASON_MAX];

    fill(&r, XM_PF_APPLYING);
    memset(&seen, 0, sizeof(seen));
    seen.xen_id.len = 3;
    memcpy(seen.xen_id.id, "\xaa\xbb\xcd", 3);
    seen.loaded = false;
    CU_ASSERT_EQUAL(xm_pf_resume(&r, &seen, why, sizeof(why)),
                    XM_PF_NEXT_FAIL);
    CU_ASSERT_PTR_NOT_NULL(strstr(why, "aabbcc"));
    CU_ASSERT_PTR_NOT_NULL(strstr(why, "aabbcd"));
    /* a drain does not care which hypervisor runs */
    r.phase = XM_PF_DRAINING;
    CU_ASSERT_EQUAL(xm_pf_resume(&r, &seen, why, sizeof(why)),
                    XM_PF_NEXT_DRAIN);
    /* reboot-required: rebooted when the build-id changed */
    r.phase = XM_PF_REBOOT_REQUIRED;
    CU_ASSERT(xm_pf_rebooted(&r, &seen.xen_id));
    CU_ASSERT(!xm_pf_rebooted(&r, &r.xen_id));
    r.phase = XM_PF_DONE;
    CU_ASSERT(!xm_pf_rebooted(&r, &seen.xen_id));
    xm_pf_rec_dispose(&r);
}

static CU_TestInfo pf_tests[] = {
    { "record round trip, every phase", test_round_trip },
    { "encode refuses inconsistent records",
      test_encode_refuses_inconsistent },
    { "decode hostile records, every truncation", test_decode_hostile },
    { "resume table: never applies twice", test_resume_table },
    { "resume after the hypervisor changed", test_resume_after_a_reboot },
    CU_TEST_INFO_NULL,
};

CU_SuiteInfo xm_test_suites[] = {
    { "patchflow", NULL, NULL, NULL, NULL, pf_tests },
    CU_SUITE_INFO_NULL,
};
