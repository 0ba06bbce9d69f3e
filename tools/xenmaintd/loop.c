/*
 * loop.c -- the agent's poll() loop (see loop.h).
 *
 * fds and timers live in plain arrays: an agent has a handful of each.
 * Removal during dispatch only marks an entry dead; dead entries are
 * swept before the next poll, so a handler may remove any handle,
 * including its own, and never sees freed memory.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "loop.h"
#include "xm_err.h"

#define LOOP_SOURCES_MAX 8

struct xm_loop_fd {
    int fd;
    short events;
    bool dead;
    xm_loop_fd_fn *fn;
    void *arg;
};

struct xm_loop_timer {
    int64_t due_ms;
    bool dead;
    xm_loop_timer_fn *fn;
    void *arg;
};

struct xm_loop {
    const struct xm_clock *clock;
    struct xm_loop_fd **fds;
    unsigned n_fds, cap_fds;
    struct xm_loop_timer **timers;
    unsigned n_timers, cap_timers;
    struct xm_loop_source sources[LOOP_SOURCES_MAX];
    unsigned n_sources;
    struct pollfd *pfds;
    int cap_pfds;
    bool stop;
    uint64_t wakeups;
};

struct xm_loop *
xm_loop_new(const struct xm_clock *clock)
{
    struct xm_loop *loop = calloc(1, sizeof(*loop));

    if (loop)
        loop->clock = clock;
    return loop;
}

void
xm_loop_free(struct xm_loop *loop)
{
    if (!loop)
        return;
    for (unsigned i = 0; i < loop->n_fds; i++)
        free(loop->fds[i]);
    for (unsigned i = 0; i < loop->n_timers; i++)
        free(loop->timers[i]);
    free(loop->fds);
    free(loop->timers);
    free(loop->pfds);
    free(loop);
}

static int
grow(void **array, unsigned *cap, unsigned want, size_t elem)
{
    void *p;
    unsigned ncap;

    if (want <= *cap)
        return XM_OK;
    ncap = *cap ? *cap * 2 : 8;
    while (ncap < want)
        ncap *= 2;
    p = realloc(*array, (size_t)ncap * elem);
    if (!p)
        return XM_ERR_NOMEM;
    *array = p;
    *cap = ncap;
    return XM_OK;
}

int
xm_loop_add_fd(struct xm_loop *loop, int fd, short events,
               xm_loop_fd_fn *fn, void *arg, struct xm_loop_fd **handle_r)
{
    struct xm_loop_fd *h;
    int rc;

    if (fd < 0 || !fn)
        return XM_ERR_INVAL;
    rc = grow((void **)&loop->fds, &loop->cap_fds, loop->n_fds + 1,
              sizeof(*loop->fds));
    if (rc)
        return rc;
    h = calloc(1, sizeof(*h));
    if (!h)
        return XM_ERR_NOMEM;
    h->fd = fd;
    h->events = events;
    h->fn = fn;
    h->arg = arg;
    loop->fds[loop->n_fds++] = h;
    if (handle_r)
        *handle_r = h;
    return XM_OK;
}

void
xm_loop_fd_events(struct xm_loop_fd *h, short events)
{
    h->events = events;
}

void
xm_loop_del_fd(struct xm_loop *loop, struct xm_loop_fd *h)
{
    (void)loop;
    if (h)
        h->dead = true;
}

int
xm_loop_add_timer(struct xm_loop *loop, int64_t delay_ms,
                  xm_loop_timer_fn *fn, void *arg,
                  struct xm_loop_timer **handle_r)
{
    struct xm_loop_timer *t;
    int rc;

    if (!fn || delay_ms < 0)
        return XM_ERR_INVAL;
    rc = grow((void **)&loop->timers, &loop->cap_timers,
              loop->n_timers + 1, sizeof(*loop->timers));
    if (rc)
        return rc;
    t = calloc(1, sizeof(*t));
    if (!t)
        return XM_ERR_NOMEM;
    t->due_ms = xm_clock_mono_ms(loop->clock) + delay_ms;
    t->fn = fn;
    t->arg = arg;
    loop->timers[loop->n_timers++] = t;
    if (handle_r)
        *handle_r = t;
    return XM_OK;
}

void
xm_loop_cancel_timer(struct xm_loop *loop, struct xm_loop_timer *t)
{
    (void)loop;
    if (t)
        t->dead = true;
}

int
xm_loop_add_source(struct xm_loop *loop, const struct xm_loop_source *src)
{
    if (loop->n_sources >= LOOP_SOURCES_MAX)
        return XM_ERR_TOOBIG;
    loop->sources[loop->n_sources++] = *src;
    return XM_OK;
}

static void
sweep(struct xm_loop *loop)
{
    unsigned i, j;

    for (i = j = 0; i < loop->n_fds; i++) {
        if (loop->fds[i]->dead)
            free(loop->fds[i]);
        else
            loop->fds[j++] = loop->fds[i];
    }
    loop->n_fds = j;
    for (i = j = 0; i < loop->n_timers; i++) {
        if (loop->timers[i]->dead)
            free(loop->timers[i]);
        else
            loop->timers[j++] = loop->timers[i];
    }
    loop->n_timers = j;
}

/* Milliseconds until the earliest timer, or -1 when none is armed. */
static int
next_timeout(struct xm_loop *loop, int64_t now)
{
    int64_t best = -1;

    for (unsigned i = 0; i < loop->n_timers; i++) {
        int64_t left = loop->timers[i]->due_ms - now;
        if (left < 0)
            left = 0;
        if (best < 0 || left < best)
            best = left;
    }
    if (best > INT32_MAX)
        best = INT32_MAX;
    return (int)best;
}

static int
min_timeout(int a, int b)
{
    if (a < 0)
        return b;
    if (b < 0)
        return a;
    return a < b ? a : b;
}

/* Fill loop->pfds: our fds first, then each source's.  first_r[i] and
 * n_r[i] record where source i's entries are. */
static int
prepare(struct xm_loop *loop, int *timeout_io, int *total_r,
        int *first_r, int *n_r)
{
    int total = 0, rc;

    rc = grow((void **)&loop->pfds, (unsigned *)&loop->cap_pfds,
              loop->n_fds + 16, sizeof(*loop->pfds));
    if (rc)
        return rc;
    for (unsigned i = 0; i < loop->n_fds; i++) {
        loop->pfds[total].fd = loop->fds[i]->fd;
        loop->pfds[total].events = loop->fds[i]->events;
        loop->pfds[total].revents = 0;
        total++;
    }
    for (unsigned s = 0; s < loop->n_sources; s++) {
        for (;;) {
            int nfds = loop->cap_pfds;
            int t = *timeout_io;
            rc = loop->sources[s].before(loop->sources[s].ctx, loop->pfds,
                                         total, &nfds, &t);
            if (rc == XM_ERR_TOOBIG) {
                rc = grow((void **)&loop->pfds,
                          (unsigned *)&loop->cap_pfds, nfds + 8,
                          sizeof(*loop->pfds));
                if (rc)
                    return rc;
                continue;
            }
            if (rc)
                return rc;
            first_r[s] = total;
            n_r[s] = nfds - total;
            total = nfds;
            *timeout_io = min_timeout(*timeout_io, t);
            break;
        }
    }
    *total_r = total;
    return XM_OK;
}

int
xm_loop_run_once(struct xm_loop *loop, int max_wait_ms, bool *woke_r)
{
    int first[LOOP_SOURCES_MAX], nsrc[LOOP_SOURCES_MAX];
    int timeout, total = 0, r, rc;
    unsigned n_fds, n_timers;
    bool woke = false;
    int64_t now;

    sweep(loop);
    now = xm_clock_mono_ms(loop->clock);
    timeout = min_timeout(next_timeout(loop, now), max_wait_ms);
    rc = prepare(loop, &timeout, &total, first, nsrc);
    if (rc)
        return rc;

    r = poll(loop->pfds, total, timeout);
    if (r < 0 && errno != EINTR)
        return xm_err_from_errno(errno);
    if (r > 0)
        loop->wakeups++;

    /* Handlers may add fds and timers: walk only those that existed. */
    n_fds = loop->n_fds;
    for (unsigned i = 0; r > 0 && i < n_fds; i++) {
        struct xm_loop_fd *h = loop->fds[i];
        short rev = loop->pfds[i].revents;
        if (h->dead || !rev)
            continue;
        woke = true;
        h->fn(h->arg, h->fd, rev);
    }
    for (unsigned s = 0; s < loop->n_sources; s++)
        loop->sources[s].after(loop->sources[s].ctx, loop->pfds, first[s],
                               first[s] + nsrc[s]);

    now = xm_clock_mono_ms(loop->clock);
    n_timers = loop->n_timers;
    for (unsigned i = 0; i < n_timers; i++) {
        struct xm_loop_timer *t = loop->timers[i];
        if (t->dead || t->due_ms > now)
            continue;
        t->dead = true;     /* one-shot: gone before its handler runs */
        woke = true;
        t->fn(t->arg);
    }
    if (woke_r)
        *woke_r = woke;
    return XM_OK;
}

int
xm_loop_run(struct xm_loop *loop)
{
    int rc = XM_OK;

    loop->stop = false;
    while (!loop->stop && rc == XM_OK)
        rc = xm_loop_run_once(loop, -1, NULL);
    return rc;
}

void
xm_loop_stop(struct xm_loop *loop)
{
    loop->stop = true;
}

uint64_t
xm_loop_wakeups(const struct xm_loop *loop)
{
    return loop->wakeups;
}
