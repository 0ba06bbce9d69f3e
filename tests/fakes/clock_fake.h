/*
 * clock_fake.h -- a clock that only moves when the test says so.
 *
 * The state lives in a caller-owned struct (no allocation): set it with
 * clock_fake_init, move both clocks forward with clock_fake_advance, step
 * the wall clock alone with clock_fake_set_wall (to prove that deadlines
 * follow the monotonic clock), and hand clock_fake_as_clock's xm_clock to
 * the code under test.  The struct must outlive that xm_clock.
 */
#ifndef XM_TEST_CLOCK_FAKE_H
#define XM_TEST_CLOCK_FAKE_H

#include <stdbool.h>
#include <stdint.h>

#include "xm_clock.h"

struct clock_fake {
    int64_t mono_ms;        /* what mono_ms returns */
    int64_t wall_ms;        /* wall clock in ms; wall_s returns it / 1000 */
    unsigned reads;         /* calls of mono_ms + wall_s, for tests */
    /* The host's CPU time (cpu_ms): advancing adds ms to it, busy for
     * busy_permille of it (0 after init: an idle host), idle for the
     * rest; cpu_unknown makes cpu_ms fail. */
    int64_t cpu_busy_ms, cpu_idle_ms;
    unsigned busy_permille;
    bool cpu_unknown;
    /* Each cpu_ms read first adds this much to the CPU time (as
     * advancing does): time that passes within one run of the code
     * under test (0 after init). */
    int64_t cpu_step_ms;
};

void clock_fake_init(struct clock_fake *c, int64_t start_ms, int64_t wall_s);
/* Move both clocks forward by ms (ms >= 0). */
void clock_fake_advance(struct clock_fake *c, int64_t ms);
/* Step the wall clock only (either direction), like settimeofday. */
void clock_fake_set_wall(struct clock_fake *c, int64_t wall_s);
void clock_fake_as_clock(struct clock_fake *c, struct xm_clock *c_r);

#endif
