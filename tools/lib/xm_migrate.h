/*
 * xm_migrate.h -- the two state machines of a live migration between
 * agents (source and target), and the recovery after an agent restart.
 *
 * Pure code over plain structs: no libxl, no xenstore, no sockets, no
 * clock, no files.  The agent feeds events (peer messages, results of
 * hypervisor operations and journal writes, timeouts, link changes) to
 * xm_mig_step, which answers with the actions the agent performs in
 * order: send a message, start a hypervisor operation, write a journal
 * phase, arm or cancel the migration's one timer, report.  Transitions
 * are a table per side in xm_migrate.c; doc/migration.md draws them.
 *
 * The invariant: a guest is never running on both hosts and never on
 * neither.  The source's point of no return is sending GO, after the
 * journal holds "go" (XM_MIG_S_JOURNAL_GO -> XM_MIG_S_WAIT_DONE): before
 * it every failure resumes the source's copy; after it the source's copy
 * stays suspended until the target says how it ended.
 *
 * Contract with the caller:
 *  - perform the actions of one step in order; the result of every
 *    synchronous action (journal write, rename, resume, unpause,
 *    destroy, the offer check) is fed back before any other event;
 *  - migrate send/receive are asynchronous: their result comes later as
 *    an event, and XM_MIG_A_CANCEL_SEND/RECV asks for an early end (the
 *    operation still reports exactly once);
 *  - a message sent on a link that is down is dropped, silently;
 *  - destroy of a domain that is already gone is DESTROY_OK.
 */
#ifndef XM_MIGRATE_H
#define XM_MIGRATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "xm_journal.h"

#define XM_MIG_SUFFIX_IN "--incoming"
#define XM_MIG_SUFFIX_AWAY "--migratedaway"
#define XM_MIG_NAME_BUF (XM_DOMNAME_MAX + 16)  /* name + a suffix */
#define XM_MIG_ACTIONS_MAX 5   /* most actions one step gives */
#define XM_MIG_WHY_MAX 128

enum xm_mig_state {
    /* source */
    XM_MIG_S_IDLE,
    XM_MIG_S_JOURNAL_START,  /* writing "sending" */
    XM_MIG_S_OFFERED,        /* OFFER sent, waiting ACCEPT */
    XM_MIG_S_SENDING,        /* live send running */
    XM_MIG_S_CANCEL_SEND,    /* send asked to stop, waiting its end */
    XM_MIG_S_WAIT_READY,     /* stream sent, ours suspended */
    XM_MIG_S_RENAME_AWAY,    /* NAME -> NAME--migratedaway */
    XM_MIG_S_JOURNAL_GO,     /* writing "go" */
    XM_MIG_S_RENAME_AWAY_NOLINK, /* as RENAME_AWAY, the link lost */
    XM_MIG_S_JOURNAL_GO_NOLINK,  /* as JOURNAL_GO, the link lost */
    XM_MIG_S_WAIT_DONE,      /* GO sent: past the point of no return */
    XM_MIG_S_RECONNECT,      /* link lost after GO: back-off, connect */
    XM_MIG_S_ASK,            /* STATUS asked, waiting the answer */
    XM_MIG_S_DESTROYING,     /* the guest runs there: destroy ours */
    XM_MIG_S_RENAME_BACK,    /* NAME--migratedaway -> NAME */
    XM_MIG_S_RESUMING,       /* resume ours (suspend cancelled) */
    XM_MIG_S_JOURNAL_DONE,   /* writing "done" */
    XM_MIG_S_JOURNAL_ABORTED,/* writing "aborted" */
    XM_MIG_S_MIGRATED,       /* end: runs on the target */
    XM_MIG_S_STAYED,         /* end: runs here (rolled back) */
    XM_MIG_S_BROKEN,         /* end: resume failed; needs an operator */
    /* target */
    XM_MIG_T_IDLE,
    XM_MIG_T_CHECKING,       /* capacity/name check of the offer */
    XM_MIG_T_JOURNAL_RECV,   /* writing "receiving" */
    XM_MIG_T_RECEIVING,      /* restoring NAME--incoming, paused */
    XM_MIG_T_CANCEL_RECV,    /* restore asked to stop */
    XM_MIG_T_JOURNAL_READY,  /* writing "ready" */
    XM_MIG_T_WAIT_GO,        /* READY sent */
    XM_MIG_T_GRACE,          /* link lost before GO: hold, paused */
    XM_MIG_T_JOURNAL_GO,     /* writing "go" */
    XM_MIG_T_RENAMING,       /* NAME--incoming -> NAME */
    XM_MIG_T_UNPAUSING,
    XM_MIG_T_JOURNAL_DONE,   /* writing "done" */
    XM_MIG_T_DESTROYING,     /* destroy ours (never running) */
    XM_MIG_T_JOURNAL_ABORTED,/* writing "aborted" */
    XM_MIG_T_MIGRATED,       /* end: runs here */
    XM_MIG_T_REJECTED,       /* end: offer refused */
    XM_MIG_T_ABORTED,        /* end: ours destroyed, source told */
    XM_MIG_STATE_COUNT
};

enum xm_mig_event_type {
    XM_MIG_EV_START,          /* source: begin */
    /* peer messages */
    XM_MIG_EV_OFFER,          /* target */
    XM_MIG_EV_ACCEPT,
    XM_MIG_EV_REJECT,
    XM_MIG_EV_READY,
    XM_MIG_EV_GO,
    XM_MIG_EV_DONE,
    XM_MIG_EV_ABORT,
    /* answers to XM_MIG_A_SEND STATUS_REQ (source, after the PONR) */
    XM_MIG_EV_ST_RUNNING,     /* the guest runs there */
    XM_MIG_EV_ST_WAITING_GO,  /* held paused there, waiting GO */
    XM_MIG_EV_ST_BUSY,        /* in between there: ask again later */
    XM_MIG_EV_ST_ABSENT,      /* not there, or aborted */
    /* results of actions */
    XM_MIG_EV_CHECK_OK,
    XM_MIG_EV_CHECK_FAILED,
    XM_MIG_EV_JOURNAL_OK,
    XM_MIG_EV_JOURNAL_FAILED,
    XM_MIG_EV_SEND_DONE,      /* stream complete, ours suspended */
    XM_MIG_EV_SEND_FAILED,    /* ours not suspended (still running) */
    XM_MIG_EV_SEND_FAILED_SUSPENDED, /* ours left suspended */
    XM_MIG_EV_RECV_DONE,      /* restored whole, paused; ev.domid */
    XM_MIG_EV_RECV_FAILED,
    XM_MIG_EV_RENAME_OK,
    XM_MIG_EV_RENAME_FAILED,
    XM_MIG_EV_RESUME_OK,
    XM_MIG_EV_RESUME_FAILED,
    XM_MIG_EV_UNPAUSE_OK,
    XM_MIG_EV_UNPAUSE_FAILED, /* the guest is not running */
    XM_MIG_EV_DESTROY_OK,
    XM_MIG_EV_DESTROY_FAILED,
    /* time and link */
    XM_MIG_EV_TIMEOUT,        /* the armed timer fired */
    XM_MIG_EV_LINK_LOST,      /* or: a connect attempt failed */
    XM_MIG_EV_LINK_UP,        /* connected (again) to the peer */
    XM_MIG_EV_COUNT
};

struct xm_mig_event {
    enum xm_mig_event_type type;
    int rc;                  /* failures: an XM_ERR_* (or peer code) */
    const char *text;        /* REJECT/ABORT/failure text, may be NULL */
    uint32_t domid;          /* RECV_DONE: the restored domain */
};

/* Messages to the peer.  OFFER..ABORT exist on the wire; READY,
 * STATUS_REQ and STATUS are new (see doc/migration.md). */
enum xm_mig_msg {
    XM_MIG_MSG_OFFER = 1,
    XM_MIG_MSG_ACCEPT,
    XM_MIG_MSG_REJECT,       /* code + text */
    XM_MIG_MSG_STREAM_END,
    XM_MIG_MSG_READY,        /* target holds the whole guest paused */
    XM_MIG_MSG_GO,
    XM_MIG_MSG_DONE,
    XM_MIG_MSG_ABORT,        /* code + text */
    XM_MIG_MSG_STATUS_REQ,   /* migration id: what became of it? */
    XM_MIG_MSG_STATUS,       /* answer: enum xm_mig_peer_status */
};

enum xm_mig_timer {
    XM_MIG_TM_ACCEPT = 1,    /* source: ACCEPT after OFFER */
    XM_MIG_TM_STREAM,        /* both: the whole stream */
    XM_MIG_TM_READY,         /* source: READY after the stream */
    XM_MIG_TM_GO,            /* target: GO after READY */
    XM_MIG_TM_DONE,          /* source: DONE after GO */
    XM_MIG_TM_STATUS,        /* source: an answer to STATUS_REQ */
    XM_MIG_TM_RETRY,         /* source: back-off before reconnecting */
    XM_MIG_TM_GRACE,         /* target: hold --incoming for the source */
};

enum xm_mig_hvop {
    XM_MIG_OP_SEND = 1,      /* start the live send of ours */
    XM_MIG_OP_CANCEL_SEND,
    XM_MIG_OP_RECV,          /* start restoring as action.name, paused */
    XM_MIG_OP_CANCEL_RECV,
    XM_MIG_OP_RENAME,        /* ours (action.domid) -> action.name */
    XM_MIG_OP_RESUME,        /* libxl resume, suspend_cancel */
    XM_MIG_OP_UNPAUSE,
    XM_MIG_OP_DESTROY,
};

enum xm_mig_action_type {
    XM_MIG_A_SEND = 1,       /* msg (code, text for REJECT/ABORT;
                              * status for STATUS) */
    XM_MIG_A_HV,             /* op, domid, name */
    XM_MIG_A_JOURNAL,        /* phase: write the record (see
                              * xm_mig_journal_rec) */
    XM_MIG_A_CHECK_OFFER,    /* target: run xm_mig_offer_check */
    XM_MIG_A_ARM,            /* timer, ms: (re)arm the one timer */
    XM_MIG_A_CANCEL_TIMER,
    XM_MIG_A_CONNECT,        /* source: (re)connect to the target; feed
                              * LINK_UP (at once if up) or LINK_LOST */
    XM_MIG_A_REPORT,         /* outcome changed: see xm_mig_result */
    XM_MIG_A_ADOPT,          /* recovery only: xm_mig_adopt(state) */
};

struct xm_mig_action {
    enum xm_mig_action_type type;
    enum xm_mig_msg msg;
    int32_t code;            /* REJECT/ABORT code */
    const char *text;        /* REJECT/ABORT text (static or in m) */
    int status;              /* STATUS: enum xm_mig_peer_status */
    enum xm_mig_hvop op;
    uint32_t domid;
    const char *name;        /* RENAME/RECV: the name (inside m) */
    enum xm_jphase phase;
    enum xm_mig_timer timer;
    uint32_t ms;
    enum xm_mig_state state; /* ADOPT */
};

/* How it ended (or stands). */
enum xm_mig_outcome {
    XM_MIG_PENDING = 0,      /* still going, nothing decided */
    XM_MIG_OK,               /* the guest runs on the target */
    XM_MIG_FAILED_BEFORE,    /* failed before the point of no return:
                              * the guest runs on the source */
    XM_MIG_FAILED_AFTER,     /* failed after it, resolved: the guest
                              * runs on the source again */
    XM_MIG_UNRESOLVED,       /* after it, the target unreachable: ours
                              * kept suspended, retrying */
    XM_MIG_BROKEN,           /* resuming ours failed: no copy runs;
                              * needs an operator (journal kept) */
};

struct xm_mig_result {
    enum xm_mig_outcome outcome;
    int rc;                  /* the first failure, XM_OK if none */
    const char *why;         /* its text ("" if none); inside m */
    bool leftover;           /* a non-running copy could not be
                              * destroyed (recovery retries) */
    bool name_stuck;         /* source: resumed as NAME--migratedaway */
};

/* Timeouts (ms) and the reconnect back-off. */
struct xm_mig_config {
    uint32_t accept_ms, stream_ms, ready_ms, go_ms, done_ms, status_ms;
    uint32_t retry_min_ms, retry_max_ms; /* doubles from min to max */
    uint32_t grace_ms;
};

void xm_mig_config_default(struct xm_mig_config *cfg_r);

/* Who and what migrates. */
struct xm_mig_ident {
    char id[XM_MIG_ID_MAX + 1];
    char name[XM_DOMNAME_MAX + 1];
    uint8_t uuid[16];
    char source[XM_PROTO_HOST_MAX + 1];
    char target[XM_PROTO_HOST_MAX + 1];
    uint32_t src_domid;
    uint32_t dst_domid;      /* target: set by RECV_DONE */
};

struct xm_mig {
    enum xm_mig_side side;
    enum xm_mig_state state;
    struct xm_mig_ident ident;
    struct xm_mig_config cfg;
    char away[XM_MIG_NAME_BUF];      /* NAME--migratedaway */
    char incoming[XM_MIG_NAME_BUF];  /* NAME--incoming */
    bool after_go;                   /* source: GO sent (the point of
                                      * no return); target: GO got */
    unsigned retries;                /* source: reconnect attempts */
    int rc;                          /* first failure */
    char why[XM_MIG_WHY_MAX];
    bool leftover, name_stuck;
};

/* A uuid as the peer messages carry it: 32 lower-case hex digits. */
void xm_mig_uuid_hex(const uint8_t uuid[16], char hex_r[33]);
/* XM_ERR_INVAL for anything but 32 lower-case hex digits. */
int xm_mig_uuid_parse(const char *s, uint8_t uuid_r[16]);

/* XM_ERR_INVAL on a bad side, id, name or host. */
int xm_mig_init(struct xm_mig *m, enum xm_mig_side side,
                const struct xm_mig_ident *ident,
                const struct xm_mig_config *cfg);

/* Feed one event.  Fills up to max actions (XM_MIG_ACTIONS_MAX always
 * suffices).  XM_OK for a transition of the table; XM_ERR_STATE when
 * the event was not expected in this state (or is unknown): the
 * state's defined fallback was taken, and actions_r holds its actions
 * (possibly none).  XM_ERR_TOOBIG when max is too small: nothing
 * changed. */
int xm_mig_step(struct xm_mig *m, const struct xm_mig_event *ev,
                struct xm_mig_action *actions_r, unsigned max,
                unsigned *n_r);

const char *xm_mig_state_name(int state);
const char *xm_mig_event_name(int type);
const char *xm_mig_outcome_name(int outcome);
bool xm_mig_terminal(const struct xm_mig *m);
/*
 * Source: a state in which a guest that libxl suspended for the final
 * round waits on this migration to run again, here or there: the
 * stream's tail, READY, the rename, GO, DONE, or the rollback that
 * resumes it.  Not the waits of unknown length (reconnecting or asking
 * after GO) nor the steps after the guest runs again (destroying ours,
 * the journal's last word).  Whether the guest was suspended is the
 * caller's to know (libxc says so, see migexec.h).
 */
bool xm_mig_source_down(const struct xm_mig *m);
/*
 * Source: the stream may still be to send: before libxl's send ended
 * (offering, sending, or stopping a send).  From the stream's end on,
 * a migration waits on the target, its own steps and the journal,
 * which take neither the link nor libxl's save: a drain's --parallel
 * counts only these (agent_drain.c).
 */
bool xm_mig_source_streaming(const struct xm_mig *m);

/*
 * Which of a host's streams come first (agent_mig.c).  For each, since
 * when its guest is down (migexec_down_since) and since when its stream
 * nears its end (migexec_endgame_since), -1 for not; either counts for
 * window_ms only (a stuck handshake must not stall a drain).  While a
 * guest is down, every stream whose guest is not is held; while none
 * is, the first stream to near its end holds every other whose guest
 * runs, those in their first pass too: two guests do not go down
 * together, and the one about to go down suspends with the host's CPU
 * its own (a stream compressing beside it slowed its suspend from
 * ~0.1 s to ~1 s in the lab).  Until resume_until (-1 for
 * none), a guest that runs again on this host still resumes (its
 * kernel thaws, its devices reconnect: its downtime as its users see
 * it goes on), and it is served as one down: every stream whose guest
 * runs is held.  Sets each one's hold; returns the index of the one
 * that comes first (the earliest down, or else, unless a guest
 * resumes, the earliest near its end), -1 for none; *down_r whether a guest is down or resuming;
 * *next_r when the answer changes with time alone (the end of a window
 * or of the resume), -1 for never.
 */
struct xm_mig_prio {
    int64_t down_since, endgame_since;
    bool hold;                  /* out */
};
int xm_mig_priority(struct xm_mig_prio *in, size_t n, int64_t now,
                    int64_t window_ms, int64_t resume_until, bool *down_r,
                    int64_t *next_r);
void xm_mig_result(const struct xm_mig *m, struct xm_mig_result *res_r);

/* The record for XM_MIG_A_JOURNAL: m's identity, phase, now (wall
 * seconds) as updated_s, created_s kept from prev (NULL: now). */
void xm_mig_journal_rec(const struct xm_mig *m, enum xm_jphase phase,
                        int64_t now_s, const struct xm_journal_rec *prev,
                        struct xm_journal_rec *rec_r);

/* ---- the target's answers ---- */

/* What the source of an offer asks for, and what the target host has.
 * The check: free memory >= mem_kib, not cordoned, no domain called
 * NAME or NAME--incoming, a valid name. */
struct xm_mig_offer {
    const char *name;
    uint64_t mem_kib;
    unsigned vcpus;
};

/* A domain as the hypervisor shows it now. */
enum xm_mig_domstate {
    XM_MIG_DOM_RUNNING = 1,
    XM_MIG_DOM_PAUSED,       /* paused (e.g. restored, not unpaused) */
    XM_MIG_DOM_SUSPENDED,    /* suspended by a live send */
};

struct xm_mig_dom {
    const char *name;
    uint8_t uuid[16];
    uint32_t domid;
    enum xm_mig_domstate state;
};

struct xm_mig_hostview {
    const struct xm_mig_dom *doms;
    size_t n;
    uint64_t free_kib;
    bool cordoned;
};

/* XM_OK, or the rc and text to REJECT with. */
int xm_mig_offer_check(const struct xm_mig_offer *offer,
                       const struct xm_mig_hostview *host,
                       const char **why_r);

/* The answer to STATUS_REQ, sent in XM_MIG_MSG_STATUS. */
enum xm_mig_peer_status {
    XM_MIG_PS_ABSENT = 1,    /* unknown here, or aborted */
    XM_MIG_PS_BUSY,          /* receiving, or between GO and running */
    XM_MIG_PS_WAITING_GO,
    XM_MIG_PS_RUNNING,
};

const char *xm_mig_peer_status_name(int status);
/* A target machine's answer. */
enum xm_mig_peer_status xm_mig_peer_status(const struct xm_mig *m);
/* A target agent's answer without a live machine: from its journal
 * record (NULL when none) and the host's domains. */
enum xm_mig_peer_status xm_mig_peer_status_lookup(
    const struct xm_journal_rec *rec, const char *name,
    const uint8_t uuid[16], const struct xm_mig_hostview *host);
/* The event a source feeds for an answer. */
enum xm_mig_event_type xm_mig_status_event(int status);

/* ---- recovery after an agent restart ---- */

/*
 * The actions that make the guest of rec run exactly once, given what
 * the hypervisor shows now.  Either the migration goes back to a
 * machine: one action XM_MIG_A_ADOPT (state, domid of our copy); call
 * xm_mig_adopt and perform what it gives.  Or final actions (journal a
 * phase, destroy a leftover by domid) with no machine.  An empty list
 * with XM_OK: nothing left to do (the record may be removed once the
 * peer can no longer ask about it).  XM_ERR_STATE: the host shows what
 * the journal cannot explain (our copy running under a transient
 * name): nothing is touched and an operator must look.  The table is in
 * doc/migration.md.
 */
int xm_mig_recover(const struct xm_journal_rec *rec,
                   const struct xm_mig_hostview *host,
                   struct xm_mig_action *actions_r, unsigned max,
                   unsigned *n_r);

/* A machine for rec in state (from XM_MIG_A_ADOPT) with our copy at
 * domid; actions_r gets what that state waits on (e.g. the resume),
 * whose result the caller feeds with xm_mig_step.  XM_ERR_INVAL for a
 * state recovery never adopts into or a bad record. */
int xm_mig_adopt(struct xm_mig *m, const struct xm_journal_rec *rec,
                 const struct xm_mig_config *cfg, enum xm_mig_state state,
                 uint32_t domid, struct xm_mig_action *actions_r,
                 unsigned max, unsigned *n_r);

#endif /* XM_MIGRATE_H */
