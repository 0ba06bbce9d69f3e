/*
 * clock_fake.c -- the settable clock of the unit tests (clock_fake.h).
 */
#include <assert.h>

#include "clock_fake.h"
#include "xm_err.h"

static int64_t
fake_mono_ms(void *ctx)
{
    struct clock_fake *c = ctx;

    c->reads++;
    return c->mono_ms;
}

static int64_t
fake_wall_s(void *ctx)
{
    struct clock_fake *c = ctx;

    c->reads++;
    return c->wall_ms / 1000;
}

/* ms of CPU time: busy_permille of it busy, the rest idle */
static void
cpu_add(struct clock_fake *c, int64_t ms)
{
    c->cpu_busy_ms += ms * c->busy_permille / 1000;
    c->cpu_idle_ms += ms - ms * c->busy_permille / 1000;
}

static int
fake_cpu_ms(void *ctx, int64_t *busy_r, int64_t *idle_r)
{
    struct clock_fake *c = ctx;

    if (c->cpu_unknown)
        return XM_ERR_UNSUPPORTED;
    cpu_add(c, c->cpu_step_ms);
    *busy_r = c->cpu_busy_ms;
    *idle_r = c->cpu_idle_ms;
    return XM_OK;
}

static const struct xm_clock_ops fake_clock_ops = {
    .mono_ms = fake_mono_ms,
    .wall_s = fake_wall_s,
    .cpu_ms = fake_cpu_ms,
};

void
clock_fake_init(struct clock_fake *c, int64_t start_ms, int64_t wall_s)
{
    c->mono_ms = start_ms;
    c->wall_ms = wall_s * 1000;
    c->reads = 0;
    c->cpu_busy_ms = c->cpu_idle_ms = 0;
    c->busy_permille = 0;
    c->cpu_unknown = false;
    c->cpu_step_ms = 0;
}

void
clock_fake_advance(struct clock_fake *c, int64_t ms)
{
    assert(ms >= 0);        /* a monotonic clock never goes back */
    c->mono_ms += ms;
    c->wall_ms += ms;
    cpu_add(c, ms);
}

void
clock_fake_set_wall(struct clock_fake *c, int64_t wall_s)
{
    c->wall_ms = wall_s * 1000;
}

void
clock_fake_as_clock(struct clock_fake *c, struct xm_clock *c_r)
{
    c_r->ops = &fake_clock_ops;
    c_r->ctx = c;
}
