/*
 * harness.c -- main() for every unit test program (see harness.h).
 * Runs the program's suites with CUnit's basic interface, prints CUnit's
 * run summary, and exits 0 only when every test passed.  A suite name
 * on the command line runs only that suite; a test name after it, only
 * that test.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <CUnit/Basic.h>

#include "harness.h"

int
main(int argc, char **argv)
{
    unsigned failed;

    if (CU_initialize_registry() != CUE_SUCCESS) {
        fprintf(stderr, "CUnit: %s\n", CU_get_error_msg());
        return 2;
    }
    if (CU_register_suites(xm_test_suites) != CUE_SUCCESS) {
        fprintf(stderr, "CUnit: %s\n", CU_get_error_msg());
        CU_cleanup_registry();
        return 2;
    }
    CU_basic_set_mode(CU_BRM_VERBOSE);
    if (argc > 1) {
        CU_pSuite suite = CU_get_suite(argv[1]);
        if (!suite) {
            fprintf(stderr, "no suite named %s\n", argv[1]);
            CU_cleanup_registry();
            return 2;
        }
        if (argc > 2) {     /* one test of it, by name */
            CU_pTest test = CU_get_test(suite, argv[2]);
            if (!test) {
                fprintf(stderr, "no test named %s in %s\n", argv[2],
                        argv[1]);
                CU_cleanup_registry();
                return 2;
            }
            CU_basic_run_test(suite, test);
        } else {
            CU_basic_run_suite(suite);
        }
    } else {
        CU_basic_run_tests();
    }
    failed = CU_get_number_of_failures() + CU_get_number_of_tests_failed();
    if (CU_get_number_of_suites_failed() > 0)
        failed++;
    CU_cleanup_registry();
    return failed ? 1 : 0;
}
