/*
 * xm_log.c -- logging to syslog or stderr (see xm_log.h).
 */
#include <stdarg.h>
#include <stdio.h>
#include <syslog.h>
#include <time.h>

#include "xm_log.h"

static struct {
    const char *ident;
    bool to_stderr;
    enum xm_log_level max_level;
    bool open;
} log_state = { "xenmaint", true, XM_LOG_INFO, false };

static const int syslog_prio[] = {
    [XM_LOG_ERR] = LOG_ERR,
    [XM_LOG_WARN] = LOG_WARNING,
    [XM_LOG_INFO] = LOG_INFO,
    [XM_LOG_DEBUG] = LOG_DEBUG,
};

static const char *const level_name[] = {
    [XM_LOG_ERR] = "error",
    [XM_LOG_WARN] = "warning",
    [XM_LOG_INFO] = "info",
    [XM_LOG_DEBUG] = "debug",
};

void
xm_log_open(const char *ident, bool to_stderr, enum xm_log_level max_level)
{
    log_state.ident = ident;
    log_state.to_stderr = to_stderr;
    log_state.max_level = max_level;
    if (!to_stderr) {
        openlog(ident, LOG_PID | LOG_NDELAY, LOG_DAEMON);
        log_state.open = true;
    }
}

void
xm_log_close(void)
{
    if (log_state.open)
        closelog();
    log_state.open = false;
}

void
xm_log(enum xm_log_level level, const char *fmt, ...)
{
    va_list ap;

    if (level > log_state.max_level || level < XM_LOG_ERR)
        return;
    va_start(ap, fmt);
    if (log_state.to_stderr) {
        struct timespec ts;
        struct tm tm;
        char stamp[32] = "";

        if (clock_gettime(CLOCK_REALTIME, &ts) == 0 &&
            localtime_r(&ts.tv_sec, &tm))
            strftime(stamp, sizeof(stamp), "%H:%M:%S", &tm);
        fprintf(stderr, "%s %s: %s: ", stamp, log_state.ident,
                level_name[level]);
        vfprintf(stderr, fmt, ap);
        fputc('\n', stderr);
    } else {
        vsyslog(syslog_prio[level], fmt, ap);
    }
    va_end(ap);
}
