/*
 * xm_log.h -- logging for the agent and the xl subcommands.
 *
 * Programs log; library code does not, except at debug level (the caller
 * logs once, with the context: domain, peer, job).  The agent logs to
 * syslog, or to stderr when it runs in the foreground.
 */
#ifndef XM_LOG_H
#define XM_LOG_H

#include <stdbool.h>

enum xm_log_level {
    XM_LOG_ERR,
    XM_LOG_WARN,
    XM_LOG_INFO,
    XM_LOG_DEBUG,
};

/* ident names the program; to_stderr selects stderr over syslog; only
 * messages at or above max_level (ERR is highest) are emitted. */
void xm_log_open(const char *ident, bool to_stderr,
                 enum xm_log_level max_level);
void xm_log_close(void);
void xm_log(enum xm_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#define xm_log_err(...) xm_log(XM_LOG_ERR, __VA_ARGS__)
#define xm_log_warn(...) xm_log(XM_LOG_WARN, __VA_ARGS__)
#define xm_log_info(...) xm_log(XM_LOG_INFO, __VA_ARGS__)
#define xm_log_debug(...) xm_log(XM_LOG_DEBUG, __VA_ARGS__)

#endif /* XM_LOG_H */
