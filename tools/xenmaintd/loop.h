/*
 * loop.h -- the agent's one event loop.
 *
 * A poll() loop over registered file descriptors (the xenstore watch fd,
 * peer sockets, a signalfd), one-shot timers on the monotonic clock, and
 * "sources": components such as libxl that hand over their own fds and
 * deadline before each poll and look at the results after it
 * (libxl_osevent_beforepoll/afterpoll through the hypervisor interface).
 * Nothing polls on a period: when no timer is armed and no source asks
 * for a deadline the loop sleeps in poll() until an fd is ready.
 */
#ifndef XM_LOOP_H
#define XM_LOOP_H

#include <poll.h>
#include <stdbool.h>
#include <stdint.h>

#include "xm_clock.h"

struct xm_loop;
struct xm_loop_fd;
struct xm_loop_timer;

typedef void xm_loop_fd_fn(void *arg, int fd, short revents);
typedef void xm_loop_timer_fn(void *arg);

/* A component with its own fds, e.g. struct xm_hv's beforepoll/afterpoll
 * (same contract: before gets the array's capacity in *nfds_io, appends
 * from fds[first], sets *nfds_io to the new total and may lower
 * *timeout_ms_io; XM_ERR_TOOBIG asks for more room.  after gets the same
 * first and that total). */
struct xm_loop_source {
    int (*before)(void *ctx, struct pollfd *fds, int first, int *nfds_io,
                  int *timeout_ms_io);
    void (*after)(void *ctx, struct pollfd *fds, int first, int nfds);
    void *ctx;
};

struct xm_loop *xm_loop_new(const struct xm_clock *clock);
void xm_loop_free(struct xm_loop *loop);      /* accepts NULL */

/* Watch fd for events; the handler runs from xm_loop_run_once. */
int xm_loop_add_fd(struct xm_loop *loop, int fd, short events,
                   xm_loop_fd_fn *fn, void *arg,
                   struct xm_loop_fd **handle_r);
void xm_loop_fd_events(struct xm_loop_fd *h, short events);
/* Safe to call from inside any handler, for any handle. */
void xm_loop_del_fd(struct xm_loop *loop, struct xm_loop_fd *h);

/* One-shot timer delay_ms from now. */
int xm_loop_add_timer(struct xm_loop *loop, int64_t delay_ms,
                      xm_loop_timer_fn *fn, void *arg,
                      struct xm_loop_timer **handle_r);
/* Cancel a timer that has not fired yet (accepts NULL).  A timer that
 * fired is gone: its handler must forget the handle. */
void xm_loop_cancel_timer(struct xm_loop *loop, struct xm_loop_timer *t);

int xm_loop_add_source(struct xm_loop *loop,
                       const struct xm_loop_source *src);

/* Wait at most max_wait_ms (-1: no limit) and dispatch what is ready.
 * *woke_r (may be NULL) tells whether anything was dispatched. */
int xm_loop_run_once(struct xm_loop *loop, int max_wait_ms, bool *woke_r);
/* Run until xm_loop_stop; returns the first error of poll(). */
int xm_loop_run(struct xm_loop *loop);
void xm_loop_stop(struct xm_loop *loop);

/* Wakeups so far (poll returns): the idle test counts them. */
uint64_t xm_loop_wakeups(const struct xm_loop *loop);

#endif /* XM_LOOP_H */
