/*
 * harness.h -- the shared main() of the CUnit test programs.
 *
 * Each tests/unit/<module>_test.c defines xm_test_suites, a
 * CU_SUITE_INFO_NULL-terminated table of suites (CUnit 2.1-3 gives each
 * suite a per-test setup and teardown, so every test gets a fresh
 * fixture); harness.c registers the table, runs it and exits non-zero
 * when any assertion failed.
 */
#ifndef XM_TEST_HARNESS_H
#define XM_TEST_HARNESS_H

#include <CUnit/CUnit.h>

extern CU_SuiteInfo xm_test_suites[];

#endif
