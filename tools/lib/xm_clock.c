/*
 * xm_clock.c -- the real clock behind xm_clock.h.
 *
 * Monotonic milliseconds come from CLOCK_MONOTONIC (deadlines, watchdogs:
 * immune to the wall clock being stepped); seconds since the epoch from
 * CLOCK_REALTIME (journal timestamps only).  Tests use the fake clock in
 * tests/fakes/clock_fake.c instead.
 */
#include <time.h>

#include "xm_clock.h"

static int64_t
real_mono_ms(void *ctx)
{
    struct timespec ts;

    (void)ctx;
    /* Cannot fail for CLOCK_MONOTONIC on Linux with a valid pointer. */
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t
real_wall_s(void *ctx)
{
    struct timespec ts;

    (void)ctx;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec;
}

static const struct xm_clock_ops real_clock_ops = {
    .mono_ms = real_mono_ms,
    .wall_s = real_wall_s,
};

const struct xm_clock xm_clock_real = {
    .ops = &real_clock_ops,
    .ctx = NULL,
};
