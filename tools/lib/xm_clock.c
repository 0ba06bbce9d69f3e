/*
 * xm_clock.c -- the real clock behind xm_clock.h.
 *
 * Monotonic milliseconds come from CLOCK_MONOTONIC (deadlines, watchdogs:
 * immune to the wall clock being stepped); seconds since the epoch from
 * CLOCK_REALTIME (journal timestamps only); the host's CPU time from
 * /proc/stat.  Tests use the fake clock in tests/fakes/clock_fake.c
 * instead.
 */
#include <inttypes.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

#include "xm_clock.h"
#include "xm_err.h"

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

/* The first line of /proc/stat: "cpu" and the time of all CPUs in each
 * state, in clock ticks (user nice system idle iowait irq softirq steal
 * ...; guest time is inside user). */
static int
real_cpu_ms(void *ctx, int64_t *busy_r, int64_t *idle_r)
{
    uint64_t v[8] = { 0 };
    long hz = sysconf(_SC_CLK_TCK);
    FILE *f;
    int n;

    (void)ctx;
    if (hz <= 0)
        return XM_ERR_UNSUPPORTED;
    f = fopen("/proc/stat", "re");
    if (!f)
        return XM_ERR_UNSUPPORTED;
    n = fscanf(f, "cpu %" SCNu64 " %" SCNu64 " %" SCNu64 " %" SCNu64
               " %" SCNu64 " %" SCNu64 " %" SCNu64 " %" SCNu64, &v[0],
               &v[1], &v[2], &v[3], &v[4], &v[5], &v[6], &v[7]);
    fclose(f);
    if (n < 5)
        return XM_ERR_UNSUPPORTED;
    *busy_r = (int64_t)((v[0] + v[1] + v[2] + v[5] + v[6] + v[7]) *
                        1000 / (uint64_t)hz);
    *idle_r = (int64_t)((v[3] + v[4]) * 1000 / (uint64_t)hz);
    return XM_OK;
}

static const struct xm_clock_ops real_clock_ops = {
    .mono_ms = real_mono_ms,
    .wall_s = real_wall_s,
    .cpu_ms = real_cpu_ms,
};

const struct xm_clock xm_clock_real = {
    .ops = &real_clock_ops,
    .ctx = NULL,
};

int
xm_clock_cpu_ms(const struct xm_clock *c, int64_t *busy_r, int64_t *idle_r)
{
    if (!c->ops->cpu_ms)
        return XM_ERR_UNSUPPORTED;
    return c->ops->cpu_ms(c->ctx, busy_r, idle_r);
}
