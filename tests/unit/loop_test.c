/*
 * loop_test.c -- the agent's event loop: fd dispatch, removal from
 * inside handlers, timers in order, sources (libxl's place), and no
 * wakeup at all when idle.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"
#include "loop.h"
#include "xm_err.h"

static struct xm_loop *loop;
static int pipefd[2];
static int calls;
static char order[16];
static unsigned n_order;

static void
setup(void)
{
    loop = xm_loop_new(&xm_clock_real);
    CU_ASSERT_FATAL(pipe(pipefd) == 0);
    calls = 0;
    n_order = 0;
    memset(order, 0, sizeof(order));
}

static void
teardown(void)
{
    xm_loop_free(loop);
    close(pipefd[0]);
    close(pipefd[1]);
}

static void
on_read(void *arg, int fd, short revents)
{
    char c;
    (void)arg;
    CU_ASSERT(revents & POLLIN);
    CU_ASSERT_EQUAL(read(fd, &c, 1), 1);
    calls++;
}

static void
test_fd_dispatch(void)
{
    bool woke = false;

    CU_ASSERT_EQUAL_FATAL(xm_loop_add_fd(loop, pipefd[0], POLLIN, on_read,
                                         NULL, NULL), XM_OK);
    CU_ASSERT_EQUAL(write(pipefd[1], "x", 1), 1);
    CU_ASSERT_EQUAL(xm_loop_run_once(loop, 1000, &woke), XM_OK);
    CU_ASSERT_TRUE(woke);
    CU_ASSERT_EQUAL(calls, 1);
}

static struct xm_loop_fd *self_handle;

static void
on_read_remove_self(void *arg, int fd, short revents)
{
    on_read(arg, fd, revents);
    xm_loop_del_fd(loop, self_handle);
}

static void
test_remove_inside_handler(void)
{
    CU_ASSERT_EQUAL_FATAL(xm_loop_add_fd(loop, pipefd[0], POLLIN,
                                         on_read_remove_self, NULL,
                                         &self_handle), XM_OK);
    CU_ASSERT_EQUAL(write(pipefd[1], "xy", 2), 2);
    CU_ASSERT_EQUAL(xm_loop_run_once(loop, 1000, NULL), XM_OK);
    CU_ASSERT_EQUAL(xm_loop_run_once(loop, 20, NULL), XM_OK);
    CU_ASSERT_EQUAL(calls, 1);      /* second byte never dispatched */
}

static void
on_timer(void *arg)
{
    order[n_order++] = *(const char *)arg;
}

static void
test_timers_in_order_and_cancel(void)
{
    static const char a = 'a', b = 'b', c = 'c';
    struct xm_loop_timer *tb = NULL;

    CU_ASSERT_EQUAL(xm_loop_add_timer(loop, 30, on_timer, (void *)&c, NULL),
                    XM_OK);
    CU_ASSERT_EQUAL(xm_loop_add_timer(loop, 1, on_timer, (void *)&a, NULL),
                    XM_OK);
    CU_ASSERT_EQUAL(xm_loop_add_timer(loop, 10, on_timer, (void *)&b, &tb),
                    XM_OK);
    xm_loop_cancel_timer(loop, tb);
    for (int i = 0; i < 100 && n_order < 2; i++)
        CU_ASSERT_EQUAL(xm_loop_run_once(loop, 100, NULL), XM_OK);
    CU_ASSERT_STRING_EQUAL(order, "ac");
}

static void
test_idle_means_no_wakeup(void)
{
    bool woke = true;

    CU_ASSERT_EQUAL_FATAL(xm_loop_add_fd(loop, pipefd[0], POLLIN, on_read,
                                         NULL, NULL), XM_OK);
    CU_ASSERT_EQUAL(xm_loop_run_once(loop, 50, &woke), XM_OK);
    CU_ASSERT_FALSE(woke);
    CU_ASSERT_EQUAL(xm_loop_wakeups(loop), 0);
    CU_ASSERT_EQUAL(calls, 0);
}

/* A source standing in for libxl: one fd and a deadline. */
struct fake_source {
    int fd;
    int before_calls, after_calls, seen_ready;
    int timeout_ms;
};

static int
src_before(void *ctx, struct pollfd *fds, int first, int *nfds_io,
           int *timeout_ms_io)
{
    struct fake_source *s = ctx;

    s->before_calls++;
    if (*nfds_io < first + 1) {
        *nfds_io = first + 1;
        return XM_ERR_TOOBIG;
    }
    fds[first].fd = s->fd;
    fds[first].events = POLLIN;
    fds[first].revents = 0;
    *nfds_io = first + 1;
    if (s->timeout_ms >= 0 &&
        (*timeout_ms_io < 0 || s->timeout_ms < *timeout_ms_io))
        *timeout_ms_io = s->timeout_ms;
    return XM_OK;
}

static void
src_after(void *ctx, struct pollfd *fds, int first, int nfds)
{
    struct fake_source *s = ctx;

    s->after_calls++;
    CU_ASSERT_EQUAL(nfds - first, 1);
    if (fds[first].revents & POLLIN)
        s->seen_ready++;
}

static void
test_source(void)
{
    struct fake_source s = { .fd = pipefd[0], .timeout_ms = -1 };
    struct xm_loop_source src = { src_before, src_after, &s };

    CU_ASSERT_EQUAL_FATAL(xm_loop_add_source(loop, &src), XM_OK);
    CU_ASSERT_EQUAL(write(pipefd[1], "x", 1), 1);
    CU_ASSERT_EQUAL(xm_loop_run_once(loop, 1000, NULL), XM_OK);
    CU_ASSERT_EQUAL(s.before_calls, 1);
    CU_ASSERT_EQUAL(s.after_calls, 1);
    CU_ASSERT_EQUAL(s.seen_ready, 1);
}

static void
test_source_deadline_bounds_poll(void)
{
    struct fake_source s = { .fd = pipefd[0], .timeout_ms = 5 };
    struct xm_loop_source src = { src_before, src_after, &s };
    int64_t t0;

    CU_ASSERT_EQUAL_FATAL(xm_loop_add_source(loop, &src), XM_OK);
    t0 = xm_clock_mono_ms(&xm_clock_real);
    /* without the source's deadline this would wait 10 s */
    CU_ASSERT_EQUAL(xm_loop_run_once(loop, 10000, NULL), XM_OK);
    CU_ASSERT(xm_clock_mono_ms(&xm_clock_real) - t0 < 5000);
    CU_ASSERT_EQUAL(s.seen_ready, 0);
}

static void
test_bad_arguments(void)
{
    CU_ASSERT_EQUAL(xm_loop_add_fd(loop, -1, POLLIN, on_read, NULL, NULL),
                    XM_ERR_INVAL);
    CU_ASSERT_EQUAL(xm_loop_add_timer(loop, -5, on_timer, NULL, NULL),
                    XM_ERR_INVAL);
}

static CU_TestInfo loop_tests[] = {
    { "fd dispatch", test_fd_dispatch },
    { "remove a handle inside its handler", test_remove_inside_handler },
    { "timers fire in order, cancelled ones never", test_timers_in_order_and_cancel },
    { "idle means no wakeup", test_idle_means_no_wakeup },
    { "a source's fds join the poll", test_source },
    { "a source's deadline bounds the poll", test_source_deadline_bounds_poll },
    { "bad arguments", test_bad_arguments },
    CU_TEST_INFO_NULL,
};

CU_SuiteInfo xm_test_suites[] = {
    { "loop", NULL, NULL, setup, teardown, loop_tests },
    CU_SUITE_INFO_NULL,
};
