/*
 * xm_clock.h -- the clock interface.
 *
 * Timeouts, watchdogs and journal timestamps read time through this table
 * so that unit tests can drive the state machines with a fake clock
 * (tests/fakes/clock_fake.c) and never sleep.
 */
#ifndef XM_CLOCK_H
#define XM_CLOCK_H

#include <stdint.h>

struct xm_clock_ops {
    int64_t (*mono_ms)(void *ctx);   /* monotonic milliseconds */
    int64_t (*wall_s)(void *ctx);    /* seconds since the epoch */
};

struct xm_clock {
    const struct xm_clock_ops *ops;
    void *ctx;
};

/* The real clock (CLOCK_MONOTONIC, CLOCK_REALTIME). */
extern const struct xm_clock xm_clock_real;

static inline int64_t
xm_clock_mono_ms(const struct xm_clock *c)
{
    return c->ops->mono_ms(c->ctx);
}

static inline int64_t
xm_clock_wall_s(const struct xm_clock *c)
{
    return c->ops->wall_s(c->ctx);
}

#endif /* XM_CLOCK_H */
