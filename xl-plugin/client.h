/*
 * client.h -- how the xl subcommands talk to the local xenmaintd, and how
 * they present its answers.
 *
 * xm_client_call runs one request through xenstore (see client.c for the
 * protocol) and fills an xm_reply.  The rest of this header turns a reply
 * into output and one of the stable exit codes below; it lives here, not
 * in the subcommand files, so that client_test can check it against
 * hand-written agent answers.  Nothing here reads the command line.
 */
#ifndef XL_PLUGIN_CLIENT_H
#define XL_PLUGIN_CLIENT_H

#include <signal.h>
#include <stdbool.h>
#include <stdio.h>

#include "xm_json.h"
#include "xm_request.h"
#include "xm_xs.h"

/* Exit codes of our subcommands: stable, documented in README.md. */
enum xm_exit {
    XM_EXIT_OK = 0,           /* success (drain: host empty) */
    XM_EXIT_FAILED = 1,       /* the operation failed */
    XM_EXIT_USAGE = 2,        /* bad command line */
    XM_EXIT_NO_AGENT = 3,     /* xenmaintd not running / not answering */
    XM_EXIT_BLOCKED = 4,      /* guests that cannot move; nothing done */
    XM_EXIT_TIMEOUT = 5,      /* a deadline passed */
    XM_EXIT_PARTIAL = 6,      /* some guests moved, some did not */
    XM_EXIT_INTERRUPTED = 130 /* Ctrl-C twice */
};

#define XM_CLIENT_PICKUP_MS 10000u   /* the agent must take a request */
#define XM_CLIENT_POLL_MS 1000u      /* re-read state at least this often */

struct xm_client_opts {
    unsigned pickup_ms;     /* 0: XM_CLIENT_PICKUP_MS */
    unsigned deadline_ms;   /* overall wait; 0: 60 s */
    unsigned poll_ms;       /* 0: XM_CLIENT_POLL_MS */
    /* Count of SIGINTs, raised by the caller's handler; NULL: none.
     * The first asks the agent to cancel, the second gives up. */
    volatile sig_atomic_t *interrupts;
    /* Called when the job's state or progress changes; may be NULL. */
    void (*progress)(void *arg, const char *state, unsigned percent);
    void *progress_arg;
    /* Called after each wait; tests play the agent here.  May be NULL. */
    void (*after_poll)(void *arg);
    void *after_poll_arg;
};

enum xm_call_outcome {
    XM_CALL_ANSWERED,       /* the job reached done or failed */
    XM_CALL_NO_AGENT,       /* no /tool/xenmaint/agent/pid */
    XM_CALL_NO_ANSWER,      /* the request was not picked up in time */
    XM_CALL_TIMEOUT,        /* the overall deadline passed */
    XM_CALL_INTERRUPTED,    /* a second SIGINT, or one before pick-up */
    XM_CALL_ERROR,          /* xenstore, memory or protocol failure */
};

struct xm_reply {
    enum xm_call_outcome outcome;
    enum xm_job_state state;       /* valid when outcome is ANSWERED */
    char id[XM_REQ_ID_MAX + 1];    /* the request id, once made */
    char *result_text;             /* as the agent wrote it, or NULL */
    xm_json *result;               /* parsed result_text, NULL if bad */
    char *error;                   /* the agent's error text, or NULL */
    bool cancel_sent;              /* we wrote .../cancel */
    char message[256];             /* why, when outcome != ANSWERED */
};

void xm_reply_init(struct xm_reply *r);
void xm_reply_dispose(struct xm_reply *r);

/*
 * Send req to the agent and wait for the answer.  XM_OK when the job
 * reached a terminal state (reply_r->state says which); otherwise an
 * XM_ERR_* code with reply_r->outcome and reply_r->message set.
 */
int xm_client_call(struct xm_xs *xs, const struct xm_request *req,
                   const struct xm_client_opts *opts,
                   struct xm_reply *reply_r);

/* The exit code for an error code name from a result ("timeout"...). */
int xm_exit_for_error_code(const char *code);

/*
 * The common part of every subcommand's output.  When the call did not
 * end in "done" with a readable result, print why (to err, or as
 * {"error":{...}} on out with json) and return the exit code; return -1
 * when the caller should render reply->result itself.
 */
int xm_reply_render_failure(const struct xm_reply *r, const char *what,
                            bool json, FILE *out, FILE *err);
/* Print the agent's result JSON as is, with a final newline. */
void xm_reply_print_json(const struct xm_reply *r, FILE *out);

/* Drain and undrain results (see README.md for their form). */
int xm_drain_exit_code(const xm_json *result, bool dry_run);
void xm_drain_print(const xm_json *result, bool dry_run, FILE *out);
/* Status result: one block per host. */
void xm_status_print(const xm_json *result, FILE *out);
/* Patch results: list, and apply/revert/check. */
void xm_patch_print(const xm_json *result, FILE *out);
int xm_patch_check_exit_code(const xm_json *result);

/* "512 MiB", "4.0 GiB"; buf of at least 16 bytes. */
const char *xm_format_kib(unsigned long long kib, char *buf, size_t len);

#endif /* XL_PLUGIN_CLIENT_H */
