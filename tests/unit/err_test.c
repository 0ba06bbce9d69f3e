/*
 * err_test.c -- error codes: every code has a text and a name, and errno
 * values map to the codes the rest of the project relies on.
 */
#include <errno.h>
#include <string.h>

#include "harness.h"
#include "xm_err.h"

static void
test_every_code_named(void)
{
    for (int rc = XM_OK; rc >= XM_ERR_UNSUPPORTED; rc--) {
        CU_ASSERT_STRING_NOT_EQUAL(xm_strerror(rc), "unknown error");
        CU_ASSERT_STRING_NOT_EQUAL(xm_err_name(rc), "unknown");
    }
    CU_ASSERT_STRING_EQUAL(xm_strerror(-9999), "unknown error");
    CU_ASSERT_STRING_EQUAL(xm_err_name(XM_ERR_TIMEOUT), "timeout");
}

static void
test_errno_mapping(void)
{
    CU_ASSERT_EQUAL(xm_err_from_errno(0), XM_OK);
    CU_ASSERT_EQUAL(xm_err_from_errno(ENOENT), XM_ERR_NOTFOUND);
    CU_ASSERT_EQUAL(xm_err_from_errno(EAGAIN), XM_ERR_BUSY);
    CU_ASSERT_EQUAL(xm_err_from_errno(EBUSY), XM_ERR_BUSY);
    CU_ASSERT_EQUAL(xm_err_from_errno(ENOSPC), XM_ERR_NOSPACE);
    CU_ASSERT_EQUAL(xm_err_from_errno(EACCES), XM_ERR_PERM);
    CU_ASSERT_EQUAL(xm_err_from_errno(EEXIST), XM_ERR_EXISTS);
    CU_ASSERT_EQUAL(xm_err_from_errno(EPIPE), XM_ERR_IO);
}

static CU_TestInfo err_tests[] = {
    { "every code has a text and a name", test_every_code_named },
    { "errno mapping", test_errno_mapping },
    CU_TEST_INFO_NULL,
};

CU_SuiteInfo xm_test_suites[] = {
    { "err", NULL, NULL, NULL, NULL, err_tests },
    CU_SUITE_INFO_NULL,
};
