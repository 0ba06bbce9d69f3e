/*
 * xm_progress.h -- a xentoollog logger that hands libxl's and libxc's
 * messages and migration progress to the agent.
 *
 * libxl and libxc report through the xentoollog logger the libxl
 * context was made with.  This logger formats each message at or above
 * a minimum level and passes it to a message callback (so the agent
 * logs libxl's errors its own way), and passes progress reports to a
 * progress callback.
 *
 * What the progress reports of a migration look like (Xen 4.17): libxc
 * runs in libxl's save helper, a separate process; the helper relays
 * every report over its pipe and libxl re-issues it with xtl_progress
 * on the context's logger, from inside whatever libxl call is handling
 * that pipe (for the agent: afterpoll).  The percent is recomputed
 * there from done and total.  The context is always "xc": it names the
 * library, not the domain, so reports carry no domid and concurrent
 * migrations on one libxl context cannot be told apart.  doing_what is
 * "Start of stream", "Frames iteration N of M" (N = 0 is the first full
 * pass, N < M the live ones; done/total count 4 KiB pages, a step every
 * 1024 pages and a last done == total), "Domain now suspended" (the
 * guest stopped; the final "Frames iteration M of M" that follows sends
 * what was dirtied), "Frames verify" (debug only), "End of stream",
 * "Complete"; the single-shot ones have done = total = 0, percent 0.  A
 * restore reports no progress.  (The agent turns these into a live
 * migration's precopy rounds and the moment its guest stopped:
 * tools/xenmaintd/agent_mig.c.)
 *
 * The callbacks run inside libxl/libxc calls: they must not call libxl,
 * and should only record what they are told.
 */
#ifndef XM_PROGRESS_H
#define XM_PROGRESS_H

#include <xentoollog.h>

#include "xm_hv.h"

/* Longest message passed on, bytes before the NUL; longer ones are cut
 * at a UTF-8 boundary and end in "...". */
#define XM_PROGRESS_MSG_MAX 1023

/* One message: control characters in msg are replaced by spaces;
 * context is never NULL ("" when libxl gave none); errnoval is -1 or
 * 0 when there is no errno. */
typedef void xm_progress_msg_fn(void *arg, xentoollog_level level,
                                int errnoval, const char *context,
                                const char *msg);
/* One progress report; context and doing_what are never NULL. */
typedef void xm_progress_fn(void *arg, const char *context,
                            const char *doing_what, int percent,
                            unsigned long done, unsigned long total);

struct xm_progress_logger;

/*
 * A logger passing messages at or above min_level to msg_fn (NULL
 * drops them) and progress reports to progress_fn (NULL drops them),
 * both with arg.  XM_ERR_INVAL for a level out of range.
 */
int xm_progress_logger_new(xentoollog_level min_level,
                           xm_progress_msg_fn *msg_fn,
                           xm_progress_fn *progress_fn, void *arg,
                           struct xm_progress_logger **pl_r);
/* Also what xtl_logger_destroy does on the xentoollog view. */
void xm_progress_logger_free(struct xm_progress_logger *pl);
/* The view to hand to libxl_ctx_alloc and xc_interface_open. */
xentoollog_logger *xm_progress_logger_xtl(struct xm_progress_logger *pl);

void xm_progress_set_min_level(struct xm_progress_logger *pl,
                               xentoollog_level min_level);
void xm_progress_set_msg(struct xm_progress_logger *pl,
                         xm_progress_msg_fn *fn, void *arg);
void xm_progress_set_progress(struct xm_progress_logger *pl,
                              xm_progress_fn *fn, void *arg);

/* A message sink for xm_log (xm_log.h): errors and criticals at
 * XM_LOG_ERR, warnings at XM_LOG_WARN, notice/info at XM_LOG_INFO, the
 * rest at XM_LOG_DEBUG, as "context: msg[: strerror]".  arg unused. */
void xm_progress_to_xm_log(void *arg, xentoollog_level level, int errnoval,
                           const char *context, const char *msg);

/*
 * The libxl backend (xm_hv_libxl.c) makes its context with this logger,
 * messages from XTL_ERROR up going to xm_progress_to_xm_log.  Route its
 * progress reports to fn (NULL: drop them).  XM_ERR_UNSUPPORTED when hv
 * is another backend (the fake).
 */
int xm_hv_libxl_set_progress(struct xm_hv *hv, xm_progress_fn *fn,
                             void *arg);

#endif /* XM_PROGRESS_H */
