/*
 * xm_clock.h -- the clock interface.
 *
 * Timeouts, watchdogs and journal timestamps read time through this table
 * so that unit tests can drive the state machines with a fake clock
 * (tests/fakes/clock_fake.c) and never sleep.  So do the readings of
 * CPU time: the migration stream's "auto" compression asks whether the
 * host's CPU had idle time while it measured the link.
 */
#ifndef XM_CLOCK_H
#define XM_CLOCK_H

#include <stdint.h>

struct xm_clock_ops {
    int64_t (*mono_ms)(void *ctx);   /* monotonic milliseconds */
    int64_t (*wall_s)(void *ctx);    /* seconds since the epoch */
    /* The host's CPU time since boot, over all its CPUs, in ms: busy
     * (steal included: time this host could not have) and idle (idle
     * and iowait).  XM_OK, or an error when unknown; may be NULL. */
    int (*cpu_ms)(void *ctx, int64_t *busy_r, int64_t *idle_r);
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

/* XM_ERR_UNSUPPORTED when the clock cannot tell. */
int xm_clock_cpu_ms(const struct xm_clock *c, int64_t *busy_r,
                    int64_t *idle_r);

#endif /* XM_CLOCK_H */
