/*
 * xm_progress.c -- the xentoollog logger of xm_progress.h.
 *
 * The xentoollog vtable is the first member of the logger, so libxl and
 * libxc, which see only a xentoollog_logger pointer, call back into it.
 * Messages are formatted into a fixed buffer on the stack: no allocation
 * on the logging path, which also runs when memory is short.
 */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xm_err.h"
#include "xm_log.h"
#include "xm_progress.h"

struct xm_progress_logger {
    xentoollog_logger vtable;   /* first: libxl holds a pointer to it */
    xentoollog_level min_level;
    xm_progress_msg_fn *msg_fn;
    void *msg_arg;
    xm_progress_fn *progress_fn;
    void *progress_arg;
};

static struct xm_progress_logger *
from_xtl(xentoollog_logger *logger)
{
    return (struct xm_progress_logger *)
        ((char *)logger - offsetof(struct xm_progress_logger, vtable));
}

/* Cut buf (NUL-terminated, size bytes) so it ends in "..." on a UTF-8
 * character boundary. */
static void
mark_truncated(char *buf, size_t size)
{
    static const char dots[] = "...";
    size_t end = size - sizeof(dots);    /* where the dots go */

    /* Back off over continuation bytes (10xxxxxx) to a lead byte, and
     * drop that lead byte too: its character no longer fits whole. */
    while (end > 0 && ((unsigned char)buf[end] & 0xc0) == 0x80)
        end--;
    memcpy(buf + end, dots, sizeof(dots));
}

static void
scrub(char *s)
{
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c < 0x20 || c == 0x7f)
            *s = ' ';
    }
}

__attribute__((format(printf, 5, 0)))
static void
pl_vmessage(xentoollog_logger *logger, xentoollog_level level,
            int errnoval, const char *context, const char *format,
            va_list al)
{
    struct xm_progress_logger *pl = from_xtl(logger);
    char msg[XM_PROGRESS_MSG_MAX + 1];
    int r;

    if (!pl->msg_fn || level < pl->min_level || !format)
        return;
    r = vsnprintf(msg, sizeof(msg), format, al);
    if (r < 0)
        snprintf(msg, sizeof(msg), "(unformattable message)");
    else if ((size_t)r >= sizeof(msg))
        mark_truncated(msg, sizeof(msg));
    scrub(msg);
    pl->msg_fn(pl->msg_arg, level, errnoval, context ? context : "", msg);
}

static void
pl_progress(xentoollog_logger *logger, const char *context,
            const char *doing_what, int percent, unsigned long done,
            unsigned long total)
{
    struct xm_progress_logger *pl = from_xtl(logger);

    if (!pl->progress_fn)
        return;
    pl->progress_fn(pl->progress_arg, context ? context : "",
                    doing_what ? doing_what : "", percent, done, total);
}

static void
pl_destroy(xentoollog_logger *logger)
{
    free(from_xtl(logger));
}

static bool
level_valid(xentoollog_level level)
{
    return level > XTL_NONE && level < XTL_NUM_LEVELS;
}

int
xm_progress_logger_new(xentoollog_level min_level,
                       xm_progress_msg_fn *msg_fn,
                       xm_progress_fn *progress_fn, void *arg,
                       struct xm_progress_logger **pl_r)
{
    struct xm_progress_logger *pl;

    *pl_r = NULL;
    if (!level_valid(min_level))
        return XM_ERR_INVAL;
    pl = calloc(1, sizeof(*pl));
    if (!pl)
        return XM_ERR_NOMEM;
    pl->vtable.vmessage = pl_vmessage;
    pl->vtable.progress = pl_progress;
    pl->vtable.destroy = pl_destroy;
    pl->min_level = min_level;
    pl->msg_fn = msg_fn;
    pl->msg_arg = arg;
    pl->progress_fn = progress_fn;
    pl->progress_arg = arg;
    *pl_r = pl;
    return XM_OK;
}

void
xm_progress_logger_free(struct xm_progress_logger *pl)
{
    if (pl)
        pl_destroy(&pl->vtable);
}

xentoollog_logger *
xm_progress_logger_xtl(struct xm_progress_logger *pl)
{
    return &pl->vtable;
}

void
xm_progress_set_min_level(struct xm_progress_logger *pl,
                          xentoollog_level min_level)
{
    if (level_valid(min_level))
        pl->min_level = min_level;
}

void
xm_progress_set_msg(struct xm_progress_logger *pl, xm_progress_msg_fn *fn,
                    void *arg)
{
    pl->msg_fn = fn;
    pl->msg_arg = arg;
}

void
xm_progress_set_progress(struct xm_progress_logger *pl, xm_progress_fn *fn,
                         void *arg)
{
    pl->progress_fn = fn;
    pl->progress_arg = arg;
}

void
xm_progress_to_xm_log(void *arg, xentoollog_level level, int errnoval,
                      const char *context, const char *msg)
{
    enum xm_log_level l;

    if (level >= XTL_ERROR)
        l = XM_LOG_ERR;
    else if (level == XTL_WARN)
        l = XM_LOG_WARN;
    else if (level >= XTL_INFO)
        l = XM_LOG_INFO;
    else
        l = XM_LOG_DEBUG;
    if (errnoval > 0)
        xm_log(l, "%s: %s: %s", context, msg, strerror(errnoval));
    else
        xm_log(l, "%s: %s", context, msg);
}
