/*
 * progress_test.c -- unit tests of the xentoollog logger (xm_progress).
 *
 * The logger is driven only through xentoollog's public API (xtl_log,
 * xtl_progress, xtl_logger_destroy), as libxl and libxc drive it: the
 * callbacks must get what was sent, messages under the level must be
 * dropped, long messages cut on a UTF-8 boundary, control characters
 * scrubbed, and percentages as xentoollog computes them.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <xentoollog.h>

#include "harness.h"
#include "xm_err.h"
#include "xm_hv.h"
#include "xm_progress.h"

#define MAX_SEEN 16

struct seen_msg {
    xentoollog_level level;
    int errnoval;
    char context[64];
    char msg[XM_PROGRESS_MSG_MAX + 1];
    void *arg;
};

struct seen_progress {
    char context[64];
    char doing[128];
    int percent;
    unsigned long done, total;
    void *arg;
};

static struct seen_msg msgs[MAX_SEEN];
static size_t n_msgs;
static struct seen_progress progs[MAX_SEEN];
static size_t n_progs;
static struct xm_progress_logger *pl;
static xentoollog_logger *lg;
static int cookie;

static void
on_msg(void *arg, xentoollog_level level, int errnoval, const char *context,
       const char *msg)
{
    struct seen_msg *m;

    CU_ASSERT_FATAL(n_msgs < MAX_SEEN);
    CU_ASSERT_FATAL(context != NULL && msg != NULL);
    m = &msgs[n_msgs++];
    m->level = level;
    m->errnoval = errnoval;
    m->arg = arg;
    CU_ASSERT_FATAL(strlen(context) < sizeof(m->context));
    strcpy(m->context, context);
    CU_ASSERT_FATAL(strlen(msg) < sizeof(m->msg));
    strcpy(m->msg, msg);
}

static void
on_progress(void *arg, const char *context, const char *doing_what,
            int percent, unsigned long done, unsigned long total)
{
    struct seen_progress *p;

    CU_ASSERT_FATAL(n_progs < MAX_SEEN);
    CU_ASSERT_FATAL(context != NULL && doing_what != NULL);
    p = &progs[n_progs++];
    CU_ASSERT_FATAL(strlen(context) < sizeof(p->context));
    strcpy(p->context, context);
    CU_ASSERT_FATAL(strlen(doing_what) < sizeof(p->doing));
    strcpy(p->doing, doing_what);
    p->percent = percent;
    p->done = done;
    p->total = total;
    p->arg = arg;
}

static void
setup(void)
{
    memset(msgs, 0, sizeof(msgs));
    memset(progs, 0, sizeof(progs));
    n_msgs = n_progs = 0;
    pl = NULL;
    lg = NULL;
    CU_ASSERT_EQUAL_FATAL(xm_progress_logger_new(XTL_WARN, on_msg,
                                                 on_progress, &cookie, &pl),
                          XM_OK);
    lg = xm_progress_logger_xtl(pl);
    CU_ASSERT_FATAL(lg != NULL);
}

static void
teardown(void)
{
    xm_progress_logger_free(pl);
    pl = NULL;
    lg = NULL;
}

/* ---- messages ---- */

static void
test_message_forwarded(void)
{
    xtl_log(lg, XTL_ERROR, ENOENT, "libxl", "domain %u: %s", 7u, "gone");
    CU_ASSERT_EQUAL_FATAL(n_msgs, 1);
    CU_ASSERT_EQUAL(msgs[0].level, XTL_ERROR);
    CU_ASSERT_EQUAL(msgs[0].errnoval, ENOENT);
    CU_ASSERT_STRING_EQUAL(msgs[0].context, "libxl");
    CU_ASSERT_STRING_EQUAL(msgs[0].msg, "domain 7: gone");
    CU_ASSERT_PTR_EQUAL(msgs[0].arg, &cookie);
}

static void
test_levels_filtered(void)
{
    xtl_log(lg, XTL_DEBUG, -1, "xc", "debug");
    xtl_log(lg, XTL_PROGRESS, -1, "xc", "progress as a message");
    xtl_log(lg, XTL_INFO, -1, "xc", "info");
    xtl_log(lg, XTL_NOTICE, -1, "xc", "notice");
    xtl_log(lg, XTL_WARN, -1, "xc", "warn");
    xtl_log(lg, XTL_CRITICAL, -1, "xc", "critical");
    CU_ASSERT_EQUAL_FATAL(n_msgs, 2);
    CU_ASSERT_STRING_EQUAL(msgs[0].msg, "warn");
    CU_ASSERT_EQUAL(msgs[0].errnoval, -1);
    CU_ASSERT_STRING_EQUAL(msgs[1].msg, "critical");

    xm_progress_set_min_level(pl, XTL_DEBUG);
    xtl_log(lg, XTL_DEBUG, -1, "xc", "now seen");
    CU_ASSERT_EQUAL_FATAL(n_msgs, 3);
    CU_ASSERT_STRING_EQUAL(msgs[2].msg, "now seen");
    /* A level out of range changes nothing. */
    xm_progress_set_min_level(pl, XTL_NUM_LEVELS);
    xtl_log(lg, XTL_DEBUG, -1, "xc", "still seen");
    CU_ASSERT_EQUAL(n_msgs, 4);
}

static void
test_null_context(void)
{
    xtl_log(lg, XTL_ERROR, 0, NULL, "no context");
    CU_ASSERT_EQUAL_FATAL(n_msgs, 1);
    CU_ASSERT_STRING_EQUAL(msgs[0].context, "");
    CU_ASSERT_EQUAL(msgs[0].errnoval, 0);
}

static void
test_long_message_truncated(void)
{
    char *big = malloc(5000);
    size_t len;

    CU_ASSERT_FATAL(big != NULL);
    memset(big, 'a', 4999);
    big[4999] = '\0';
    xtl_log(lg, XTL_ERROR, -1, "xc", "%s", big);
    CU_ASSERT_EQUAL_FATAL(n_msgs, 1);
    len = strlen(msgs[0].msg);
    CU_ASSERT_EQUAL(len, XM_PROGRESS_MSG_MAX);
    CU_ASSERT_STRING_EQUAL(msgs[0].msg + len - 3, "...");
    CU_ASSERT_EQUAL(msgs[0].msg[len - 4], 'a');

    /* Exactly the limit: passed whole, no dots. */
    big[XM_PROGRESS_MSG_MAX] = '\0';
    xtl_log(lg, XTL_ERROR, -1, "xc", "%s", big);
    CU_ASSERT_EQUAL_FATAL(n_msgs, 2);
    CU_ASSERT_EQUAL(strlen(msgs[1].msg), XM_PROGRESS_MSG_MAX);
    CU_ASSERT_EQUAL(msgs[1].msg[XM_PROGRESS_MSG_MAX - 1], 'a');
    free(big);
}

/* Cut inside a multi-byte character: the whole character goes. */
static void
test_truncation_utf8_boundary(void)
{
    /* "x" then 2-byte characters (U+00E9): the 1020th byte (index
     * 1020, where the dots go) is a continuation byte. */
    char *big = malloc(3000);
    const unsigned char *m;
    size_t len, i = 0;

    CU_ASSERT_FATAL(big != NULL);
    big[i++] = 'x';
    while (i + 2 < 3000) {
        big[i++] = (char)0xc3;
        big[i++] = (char)0xa9;
    }
    big[i] = '\0';
    xtl_log(lg, XTL_ERROR, -1, "xc", "%s", big);
    CU_ASSERT_EQUAL_FATAL(n_msgs, 1);
    m = (const unsigned char *)msgs[0].msg;
    len = strlen(msgs[0].msg);
    CU_ASSERT_STRING_EQUAL(msgs[0].msg + len - 3, "...");
    CU_ASSERT_TRUE(len <= XM_PROGRESS_MSG_MAX);
    /* Well-formed: every lead byte 0xc3 has its continuation. */
    for (size_t k = 1; k < len - 3; k += 2) {
        CU_ASSERT_EQUAL(m[k], 0xc3);
        CU_ASSERT_EQUAL(m[k + 1], 0xa9);
    }
    CU_ASSERT_EQUAL((len - 3 - 1) % 2, 0);
    free(big);
}

static void
test_control_chars_scrubbed(void)
{
    xtl_log(lg, XTL_ERROR, -1, "xc", "line1\nline2\r\tend\x7f");
    CU_ASSERT_EQUAL_FATAL(n_msgs, 1);
    CU_ASSERT_STRING_EQUAL(msgs[0].msg, "line1 line2  end ");
}

static void
test_no_msg_callback(void)
{
    xm_progress_set_msg(pl, NULL, NULL);
    xtl_log(lg, XTL_CRITICAL, -1, "xc", "dropped");
    CU_ASSERT_EQUAL(n_msgs, 0);
    xm_progress_set_msg(pl, on_msg, NULL);
    xtl_log(lg, XTL_CRITICAL, -1, "xc", "kept");
    CU_ASSERT_EQUAL_FATAL(n_msgs, 1);
    CU_ASSERT_PTR_NULL(msgs[0].arg);
}

/* ---- progress ---- */

/* What libxl re-issues for libxc during a live save. */
static void
test_progress_forwarded(void)
{
    xtl_progress(lg, "xc", "Start of stream", 0, 0);
    xtl_progress(lg, "xc", "Frames iteration 0", 0, 262144);
    xtl_progress(lg, "xc", "Frames iteration 0", 131072, 262144);
    xtl_progress(lg, "xc", "Frames iteration 0", 262144, 262144);
    CU_ASSERT_EQUAL_FATAL(n_progs, 4);
    CU_ASSERT_STRING_EQUAL(progs[0].context, "xc");
    CU_ASSERT_STRING_EQUAL(progs[0].doing, "Start of stream");
    CU_ASSERT_EQUAL(progs[0].percent, 0);
    CU_ASSERT_EQUAL(progs[0].total, 0);
    CU_ASSERT_STRING_EQUAL(progs[1].doing, "Frames iteration 0");
    CU_ASSERT_EQUAL(progs[1].done, 0);
    CU_ASSERT_EQUAL(progs[1].total, 262144);
    CU_ASSERT_EQUAL(progs[2].percent, 50);
    CU_ASSERT_EQUAL(progs[2].done, 131072);
    CU_ASSERT_EQUAL(progs[3].percent, 100);
    CU_ASSERT_PTR_EQUAL(progs[3].arg, &cookie);
    /* Progress is not a message. */
    CU_ASSERT_EQUAL(n_msgs, 0);
}

static void
test_progress_huge_total(void)
{
    unsigned long total = (unsigned long)-1 / 2;

    xtl_progress(lg, NULL, "big", total / 4, total);
    CU_ASSERT_EQUAL_FATAL(n_progs, 1);
    CU_ASSERT_STRING_EQUAL(progs[0].context, "");
    CU_ASSERT_TRUE(progs[0].percent >= 24 && progs[0].percent <= 25);
    CU_ASSERT_EQUAL(progs[0].done, total / 4);
}

static void
test_progress_callback_switch(void)
{
    int other;

    xm_progress_set_progress(pl, NULL, NULL);
    xtl_progress(lg, "xc", "dropped", 1, 2);
    CU_ASSERT_EQUAL(n_progs, 0);
    xm_progress_set_progress(pl, on_progress, &other);
    xtl_progress(lg, "xc", "kept", 1, 2);
    CU_ASSERT_EQUAL_FATAL(n_progs, 1);
    CU_ASSERT_PTR_EQUAL(progs[0].arg, &other);
    CU_ASSERT_EQUAL(progs[0].percent, 50);
}

/* ---- life cycle ---- */

static void
test_bad_level_refused(void)
{
    struct xm_progress_logger *x = (struct xm_progress_logger *)&cookie;

    CU_ASSERT_EQUAL(xm_progress_logger_new(XTL_NONE, NULL, NULL, NULL, &x),
                    XM_ERR_INVAL);
    CU_ASSERT_PTR_NULL(x);
    CU_ASSERT_EQUAL(xm_progress_logger_new(XTL_NUM_LEVELS, NULL, NULL, NULL,
                                           &x), XM_ERR_INVAL);
    CU_ASSERT_PTR_NULL(x);
    xm_progress_logger_free(NULL);
}

/* libxl's way to end a logger frees ours (ASan/valgrind watch). */
static void
test_destroy_through_xtl(void)
{
    struct xm_progress_logger *x = NULL;

    CU_ASSERT_EQUAL_FATAL(xm_progress_logger_new(XTL_DEBUG, on_msg, NULL,
                                                 NULL, &x), XM_OK);
    xtl_log(xm_progress_logger_xtl(x), XTL_DEBUG, -1, "t", "once");
    CU_ASSERT_EQUAL(n_msgs, 1);
    xtl_logger_destroy(xm_progress_logger_xtl(x));
    xtl_logger_destroy(NULL);
}

/* The xm_log sink: "context: msg: strerror" on stderr. */
static void
test_xm_log_sink(void)
{
    char out[512];
    int p[2], saved;
    ssize_t n;

    CU_ASSERT_FATAL(pipe(p) == 0);
    fflush(stderr);
    saved = dup(STDERR_FILENO);
    CU_ASSERT_FATAL(saved >= 0);
    CU_ASSERT_FATAL(dup2(p[1], STDERR_FILENO) == STDERR_FILENO);
    xm_progress_set_msg(pl, xm_progress_to_xm_log, NULL);
    xtl_log(lg, XTL_ERROR, ENOENT, "libxl", "cannot find %s", "it");
    xtl_log(lg, XTL_WARN, -1, "xc", "warned");
    fflush(stderr);
    dup2(saved, STDERR_FILENO);
    close(saved);
    close(p[1]);
    n = read(p[0], out, sizeof(out) - 1);
    close(p[0]);
    CU_ASSERT_FATAL(n > 0);
    out[n] = '\0';
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "error: libxl: cannot find it: "));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, strerror(ENOENT)));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "warning: xc: warned\n"));
}

/* Only the libxl backend takes a progress callback. */
static void
test_hv_other_backend(void)
{
    static const struct xm_hv_ops other_ops;
    struct xm_hv hv = { &other_ops, &cookie };

    CU_ASSERT_EQUAL(xm_hv_libxl_set_progress(&hv, on_progress, NULL),
                    XM_ERR_UNSUPPORTED);
}

static CU_TestInfo progress_tests[] = {
    { "message forwarded", test_message_forwarded },
    { "levels filtered", test_levels_filtered },
    { "no context", test_null_context },
    { "long message truncated", test_long_message_truncated },
    { "truncation on a UTF-8 boundary", test_truncation_utf8_boundary },
    { "control characters scrubbed", test_control_chars_scrubbed },
    { "no message callback", test_no_msg_callback },
    { "progress forwarded", test_progress_forwarded },
    { "progress: huge total", test_progress_huge_total },
    { "progress callback switched", test_progress_callback_switch },
    { "bad level refused", test_bad_level_refused },
    { "destroy through xentoollog", test_destroy_through_xtl },
    { "xm_log sink", test_xm_log_sink },
    { "hv: other backend", test_hv_other_backend },
    CU_TEST_INFO_NULL,
};

CU_SuiteInfo xm_test_suites[] = {
    { "progress", NULL, NULL, setup, teardown, progress_tests },
    CU_SUITE_INFO_NULL,
};
