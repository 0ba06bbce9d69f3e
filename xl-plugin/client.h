/*
 * client.h -- how the xl subcommands talk to the local xenmaintd, and how
 * they present its answers.
 *
 * xm_client_call runs one request through xenstore (see client.c for the
 * protocol) and fills an xm_reply.  The rest of this header turns a reply
 * into output and one of the stable exit codes below, and shows the
 * per-guest progress of a drain or undrain while it runs (xm_guest_view);
 * it lives here, not in the subcommand files, so that client_test can
 * check it against hand-written agent answers and key values.  Nothing
 * here reads the command line.
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
    XM_EXIT_REBOOT_REQUIRED = 7, /* patch apply: no livepatch for this
                                  * hypervisor; the host is drained */
    XM_EXIT_REVERTED = 8,     /* patch apply: applied, verification
                               * failed, reverted */
    XM_EXIT_INTERRUPTED = 130 /* Ctrl-C twice */
};

#define XM_CLIENT_PICKUP_MS 10000u   /* the agent must take a request */
#define XM_CLIENT_POLL_MS 1000u      /* re-read state at least this often */

/*
 * Hooks for a job that runs a while (drain, undrain): what to do with its
 * other keys while we wait.  Every member may be NULL.
 */
struct xm_job_hooks {
    /* After each wait (final false), and once more when the job reached
     * done or failed, before its directory is removed (final true). */
    void (*poll)(void *arg, struct xm_xs *xs, const char *job_id,
                 bool final);
    /* Once, right after a first SIGINT made us write .../cancel. */
    void (*cancelling)(void *arg);
    void *arg;
};

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
    /* Job hooks, called after after_poll; NULL: those given to
     * xm_client_set_job_hooks, if any. */
    const struct xm_job_hooks *job;
    /* Besides its pid key going, take an agent whose pid no process has
     * (kill -9) as gone: xl sets it; tests, whose agent pid is made up,
     * do not. */
    bool check_pid;
};

/*
 * Job hooks for every xm_client_call whose opts carry none; NULL clears.
 * xl drain and xl undrain set them around xl_run_request, which builds
 * its own opts (xl.c); hooks must stay valid until cleared.
 */
void xm_client_set_job_hooks(const struct xm_job_hooks *hooks);

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

/* Drain and undrain results (see README.md for their form).  A dry run
 * prints the plan; a real drain its moves, blocked guests (with what
 * became of those --shutdown-blocked was to shut down) and notice; an
 * undrain its moves and the guests it started again. */
int xm_drain_exit_code(const xm_json *result, bool dry_run);
void xm_drain_print(const xm_json *result, bool dry_run, FILE *out);
int xm_undrain_exit_code(const xm_json *result);
void xm_undrain_print(const xm_json *result, FILE *out);

/*
 * The per-guest progress of a running drain or undrain: the values of
 * /tool/xenmaint/job/<id>/guest/<migid>, shown as they change.
 *   XM_VIEW_TTY    one line per guest (bar, percent, MiB, phase),
 *                  redrawn in place with ANSI cursor-up; lines cut to
 *                  the terminal's width, at most its height;
 *   XM_VIEW_LINES  one plain line per phase change of a guest;
 *   XM_VIEW_JSON   one {"event":"progress",...} line per change.
 * Values are hostile: one that is not a valid migration object (see
 * xm_guest_view_update) is ignored and the guest keeps its last valid
 * line.  A key that disappears leaves its guest shown as last seen.
 */
enum xm_view_mode { XM_VIEW_TTY, XM_VIEW_LINES, XM_VIEW_JSON };

#define XM_VIEW_GUESTS_MAX 256      /* migrations shown; more ignored */
#define XM_VIEW_GUEST_MAX 128       /* longest guest name, bytes */
#define XM_VIEW_WHY_MAX 255         /* a longer "why" is cut */

struct xm_view_row;

struct xm_guest_view {
    enum xm_view_mode mode;
    FILE *out;                  /* the display */
    FILE *err;                  /* the Ctrl-C message */
    const char *what;           /* "xl drain": prefix of messages */
    bool homecoming;            /* undrain: show "<- from", not "-> to" */
    /* A job that drains and undrains (patch apply): each row decides
     * for itself, by its migration id: 'u...' is a homecoming move of
     * the undrain, anything else a move of the drain. */
    bool homecoming_by_id;
    unsigned cols, rows;        /* TTY size; 0: ask out's terminal */
    unsigned min_interval_ms;   /* read the keys at most this often */
    /* private */
    struct xm_view_row *row;
    unsigned n_row, n_alloc;
    unsigned drawn;             /* TTY: lines drawn by the last render */
    bool cancel_said;
    int64_t last_read_ms;       /* monotonic, of the last read */
};

void xm_guest_view_init(struct xm_guest_view *v, enum xm_view_mode mode,
                        FILE *out, FILE *err, const char *what);
void xm_guest_view_dispose(struct xm_guest_view *v);
/* Hooks that feed v (poll and cancelling); valid while v is. */
void xm_guest_view_hooks(struct xm_guest_view *v,
                         struct xm_job_hooks *hooks_r);
/* Take one key's value (len bytes, as read).  XM_OK when it was a valid
 * migration object, XM_ERR_INVAL when ignored, XM_ERR_TOOBIG when the
 * view is full, XM_ERR_NOMEM. */
int xm_guest_view_update(struct xm_guest_view *v, const char *migid,
                         const char *value, size_t len);
/* Show what changed since the last render. */
void xm_guest_view_render(struct xm_guest_view *v);
/* Read every guest key of job_id, then render: the poll hook. */
void xm_guest_view_poll(struct xm_guest_view *v, struct xm_xs *xs,
                        const char *job_id, bool final);
/* Say once on err what a Ctrl-C does to migrations: the cancelling
 * hook. */
void xm_guest_view_cancelling(struct xm_guest_view *v);

/*
 * The steps of a patch apply that drains around the patch: the value of
 * /tool/xenmaint/job/<id>/step (drain, preflight, upload, apply, verify,
 * revert, undrain, done), one line per change -- "xl patch apply: step drain",
 * or {"event":"step","step":"drain"} in XM_VIEW_JSON -- written to the
 * guest view's output between its renders, so that on a terminal the
 * bars stay below the step lines.  Any other value is ignored.
 */
#define XM_STEP_NAME_MAX 15

struct xm_step_view {
    struct xm_guest_view *guests;      /* its mode, out and what */
    char step[XM_STEP_NAME_MAX + 1];   /* last shown, "" before */
    int64_t last_read_ms;
};

void xm_step_view_init(struct xm_step_view *s, struct xm_guest_view *guests);
/* Take one value of the step key (len bytes): XM_OK when it is a step
 * name (shown if it changed), XM_ERR_INVAL when ignored. */
int xm_step_view_update(struct xm_step_view *s, const char *value,
                        size_t len);
/* Read the guest keys and the step key of job_id: the poll hook. */
void xm_step_view_poll(struct xm_step_view *s, struct xm_xs *xs,
                       const char *job_id, bool final);
/* Hooks that feed s and its guest view; valid while both are. */
void xm_step_view_hooks(struct xm_step_view *s,
                        struct xm_job_hooks *hooks_r);

/* Status result: one block per host. */
void xm_status_print(const xm_json *result, FILE *out);
/* Patch results: list, and apply/revert/check. */
void xm_patch_print(const xm_json *result, FILE *out);
int xm_patch_check_exit_code(const xm_json *result);
/*
 * patch apply (README.md has the result's form): the state, then when
 * the host was drained around the patch the steps, the drain's and the
 * undrain's tables, the verification and the host's final state.  A
 * failed job's result (with "error") prints what it knows the same way.
 * The exit code: 0 patched or already patched (and every guest home),
 * 4 blocked, 6 partial, 7 reboot-required, 8 reverted, 1 otherwise.
 */
int xm_patch_apply_exit_code(const xm_json *result);

/* "512 MiB", "4.0 GiB"; buf of at least 16 bytes. */
const char *xm_format_kib(unsigned long long kib, char *buf, size_t len);

#endif /* XL_PLUGIN_CLIENT_H */
