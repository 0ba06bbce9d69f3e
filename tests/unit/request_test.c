/* placeholder: being written */
#include "harness.h"
CU_SuiteInfo xm_test_suites[] = { CU_SUITE_INFO_NULL };
