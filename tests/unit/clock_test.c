/*
 * clock_test.c -- the clock interface (xm_clock): the real clock's
 * monotonic and wall time, and its reading of the host's CPU time
 * (/proc/stat) and of this process's, which move forward as this test
 * keeps a CPU busy; the fake clock's CPU times follow their shares, and
 * a clock that cannot tell says so.
 */
#include <time.h>

#include "clock_fake.h"
#include "harness.h"
#include "xm_clock.h"
#include "xm_err.h"

static void
test_real_clock(void)
{
    int64_t t0 = xm_clock_mono_ms(&xm_clock_real), t1;
    int64_t busy0, idle0, busy1, idle1;
    volatile uint64_t spin = 0;

    CU_ASSERT(xm_clock_wall_s(&xm_clock_real) > 1700000000);
    CU_ASSERT_EQUAL_FATAL(xm_clock_cpu_ms(&xm_clock_real, &busy0, &idle0),
                          XM_OK);
    CU_ASSERT(busy0 > 0);
    CU_ASSERT(idle0 >= 0);
    /* keep this CPU busy for 200 ms: the host's busy time grows */
    do {
        for (int i = 0; i < 100000; i++)
            spin += (uint64_t)i;
        t1 = xm_clock_mono_ms(&xm_clock_real);
    } while (t1 - t0 < 200);
    CU_ASSERT_EQUAL_FATAL(xm_clock_cpu_ms(&xm_clock_real, &busy1, &idle1),
                          XM_OK);
    CU_ASSERT(busy1 >= busy0 + 100);
    CU_ASSERT(idle1 >= idle0);
}

static void
test_fake_clock(void)
{
    struct clock_fake fake;
    struct xm_clock c;
    int64_t busy, idle;

    clock_fake_init(&fake, 1000, 1795000000);
    clock_fake_as_clock(&fake, &c);
    CU_ASSERT_EQUAL(xm_clock_cpu_ms(&c, &busy, &idle), XM_OK);
    CU_ASSERT_EQUAL(busy, 0);
    CU_ASSERT_EQUAL(idle, 0);
    clock_fake_advance(&fake, 1000);        /* idle by default */
    fake.busy_permille = 750;
    clock_fake_advance(&fake, 400);
    CU_ASSERT_EQUAL(xm_clock_cpu_ms(&c, &busy, &idle), XM_OK);
    CU_ASSERT_EQUAL(busy, 300);
    CU_ASSERT_EQUAL(idle, 1100);
    fake.cpu_unknown = true;
    CU_ASSERT_EQUAL(xm_clock_cpu_ms(&c, &busy, &idle), XM_ERR_UNSUPPORTED);
}

static int64_t
zero_ms(void *ctx)
{
    (void)ctx;
    return 0;
}

/* A clock without the CPU reading (an older interface): unknown. */
static void
test_no_cpu_reading(void)
{
    static const struct xm_clock_ops ops = { zero_ms, zero_ms, NULL };
    const struct xm_clock c = { &ops, NULL };
    int64_t busy = -1, idle = -1;

    CU_ASSERT_EQUAL(xm_clock_cpu_ms(&c, &busy, &idle), XM_ERR_UNSUPPORTED);
    CU_ASSERT_EQUAL(busy, -1);
    CU_ASSERT_EQUAL(idle, -1);
}

static CU_TestInfo clock_tests[] = {
    { "the real clock and the host's CPU time", test_real_clock },
    { "the fake clock's CPU time", test_fake_clock },
    { "a clock that cannot read the CPU", test_no_cpu_reading },
    CU_TEST_INFO_NULL,
};

CU_SuiteInfo xm_test_suites[] = {
    { "clock", NULL, NULL, NULL, NULL, clock_tests },
    CU_SUITE_INFO_NULL,
};
