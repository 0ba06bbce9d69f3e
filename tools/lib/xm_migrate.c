/*
 * xm_migrate.c -- the source and target state machines of a migration
 * (see xm_migrate.h) and the recovery table after an agent restart.
 *
 * The transitions are data: one row per (state, event) with the next
 * state, flags, and up to XM_MIG_ACTIONS_MAX action templates that
 * xm_mig_step expands with the machine's names, domids and timeouts.
 * A row with event EV_ANY is the state's fallback for every event the
 * state does not list (unexpected or unknown events).  A state without
 * one keeps its state and does nothing: those are the states waiting
 * on a local operation (journal, rename, resume, ...), whose result the
 * caller feeds before anything else, and the end states.  A message a
 * machine drops there is safe to drop: the peer repeats what matters
 * (a target that aborted answers a late GO with ABORT again; a source
 * after the point of no return asks for the status).
 *
 * Failure kinds follow xl's migrate_domain(): before the point of no
 * return the source's copy is resumed (FAILED_BEFORE); after it, the
 * copy stays suspended until the target says how it ended, and a
 * target failure brings the copy back (FAILED_AFTER); a resume that
 * fails leaves no running copy (BROKEN, an operator's case).
 */
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "xm_err.h"
#include "xm_migrate.h"

#define EV_ANY 0xff

/* Row flags. */
enum {
    F_FAIL = 1u << 0,       /* the event is a failure: remember it */
    F_PONR = 1u << 1,       /* the point of no return (source) / GO
                             * taken (target) */
    F_LEFTOVER = 1u << 2,   /* a copy could not be destroyed */
    F_NAME_STUCK = 1u << 3, /* renaming back failed */
    F_DOMID = 1u << 4,      /* take ev->domid as our copy's domid */
    F_RETRY_RESET = 1u << 5,/* back-off starts over */
};

/* Hypervisor operation templates: names resolve per side. */
enum {
    H_SEND = 1,
    H_CANCEL_SEND,
    H_RECV,
    H_CANCEL_RECV,
    H_RENAME_AWAY,          /* source: NAME -> NAME--migratedaway */
    H_RENAME_NAME,          /* back to NAME (either side) */
    H_RESUME,
    H_UNPAUSE,
    H_DESTROY,
};

struct tmpl {
    uint8_t type;           /* enum xm_mig_action_type, 0 ends */
    uint8_t arg;            /* msg, H_*, phase or timer */
};

struct row {
    uint8_t state;
    uint8_t event;
    uint8_t next;
    uint8_t flags;
    struct tmpl act[XM_MIG_ACTIONS_MAX];
};

#define SEND(m)     { XM_MIG_A_SEND, XM_MIG_MSG_##m }
#define HV(o)       { XM_MIG_A_HV, H_##o }
#define JOURNAL(p)  { XM_MIG_A_JOURNAL, XM_JP_##p }
#define ARM(t)      { XM_MIG_A_ARM, XM_MIG_TM_##t }
#define CANCEL      { XM_MIG_A_CANCEL_TIMER, 0 }
#define CONNECT     { XM_MIG_A_CONNECT, 0 }
#define REPORT      { XM_MIG_A_REPORT, 0 }
#define CHECK       { XM_MIG_A_CHECK_OFFER, 0 }

#define S(x) XM_MIG_S_##x
#define T(x) XM_MIG_T_##x
#define E(x) XM_MIG_EV_##x

static const struct row source_rows[] = {
    { S(IDLE), E(START), S(JOURNAL_START), 0, { JOURNAL(SENDING) } },
    /* Nothing touched yet: a journal we cannot write stops us here. */
    { S(JOURNAL_START), E(JOURNAL_OK), S(OFFERED), 0,
      { SEND(OFFER), ARM(ACCEPT) } },
    { S(JOURNAL_START), E(JOURNAL_FAILED), S(STAYED), F_FAIL, { REPORT } },

    { S(OFFERED), E(ACCEPT), S(SENDING), 0, { ARM(STREAM), HV(SEND) } },
    { S(OFFERED), E(REJECT), S(JOURNAL_ABORTED), F_FAIL,
      { CANCEL, JOURNAL(ABORTED) } },
    { S(OFFERED), EV_ANY, S(JOURNAL_ABORTED), F_FAIL,
      { CANCEL, SEND(ABORT), JOURNAL(ABORTED) } },

    { S(SENDING), E(SEND_DONE), S(WAIT_READY), 0,
      { SEND(STREAM_END), ARM(READY) } },
    { S(SENDING), E(SEND_FAILED), S(JOURNAL_ABORTED), F_FAIL,
      { CANCEL, SEND(ABORT), JOURNAL(ABORTED) } },
    { S(SENDING), E(SEND_FAILED_SUSPENDED), S(RESUMING), F_FAIL,
      { CANCEL, SEND(ABORT), HV(RESUME) } },
    /* The target gave up (its restore failed, e.g. on a stream block
     * that did not decode): its reason is ours.  No ABORT back. */
    { S(SENDING), E(ABORT), S(CANCEL_SEND), F_FAIL,
      { CANCEL, HV(CANCEL_SEND) } },
    /* REJECT, a timeout, the link: stop the send, then resume. */
    { S(SENDING), EV_ANY, S(CANCEL_SEND), F_FAIL,
      { CANCEL, SEND(ABORT), HV(CANCEL_SEND) } },

    { S(CANCEL_SEND), E(SEND_DONE), S(RESUMING), 0, { HV(RESUME) } },
    { S(CANCEL_SEND), E(SEND_FAILED_SUSPENDED), S(RESUMING), 0,
      { HV(RESUME) } },
    { S(CANCEL_SEND), E(SEND_FAILED), S(JOURNAL_ABORTED), 0,
      { JOURNAL(ABORTED) } },

    { S(WAIT_READY), E(READY), S(RENAME_AWAY), 0,
      { CANCEL, HV(RENAME_AWAY) } },
    { S(WAIT_READY), E(ABORT), S(RESUMING), F_FAIL,
      { CANCEL, HV(RESUME) } },
    { S(WAIT_READY), EV_ANY, S(RESUMING), F_FAIL,
      { CANCEL, SEND(ABORT), HV(RESUME) } },

    { S(RENAME_AWAY), E(RENAME_OK), S(JOURNAL_GO), 0, { JOURNAL(GO) } },
    { S(RENAME_AWAY), E(RENAME_FAILED), S(RESUMING), F_FAIL,
      { SEND(ABORT), HV(RESUME) } },
    /* The link died while a local step was running: GO could not
     * arrive, so stay before the point of no return and roll back. */
    { S(RENAME_AWAY), E(LINK_LOST), S(RENAME_AWAY_NOLINK), F_FAIL,
      { { 0, 0 } } },
    { S(RENAME_AWAY_NOLINK), E(RENAME_OK), S(RENAME_BACK), 0,
      { HV(RENAME_NAME) } },
    { S(RENAME_AWAY_NOLINK), E(RENAME_FAILED), S(RESUMING), 0,
      { HV(RESUME) } },
    { S(JOURNAL_GO), E(LINK_LOST), S(JOURNAL_GO_NOLINK), F_FAIL,
      { { 0, 0 } } },
    { S(JOURNAL_GO_NOLINK), E(JOURNAL_OK), S(RENAME_BACK), 0,
      { HV(RENAME_NAME) } },
    { S(JOURNAL_GO_NOLINK), E(JOURNAL_FAILED), S(RENAME_BACK), 0,
      { HV(RENAME_NAME) } },

    /*
     * THE POINT OF NO RETURN.  "go" is on disk; once GO leaves, the
     * target may run the guest, so our copy is never resumed again
     * unless the target says it does not run it (ABORT, or a status
     * "absent").  A journal that failed keeps us before the point.
     */
    { S(JOURNAL_GO), E(JOURNAL_OK), S(WAIT_DONE), F_PONR | F_RETRY_RESET,
      { SEND(GO), ARM(DONE) } },
    { S(JOURNAL_GO), E(JOURNAL_FAILED), S(RENAME_BACK), F_FAIL,
      { SEND(ABORT), HV(RENAME_NAME) } },

    { S(WAIT_DONE), E(DONE), S(DESTROYING), 0, { CANCEL, HV(DESTROY) } },
    { S(WAIT_DONE), E(ABORT), S(RENAME_BACK), F_FAIL,
      { CANCEL, HV(RENAME_NAME) } },
    /* Link lost, no DONE in time, nonsense: never guess, ask. */
    { S(WAIT_DONE), EV_ANY, S(RECONNECT), F_FAIL, { ARM(RETRY), REPORT } },

    { S(RECONNECT), E(TIMEOUT), S(RECONNECT), 0, { CONNECT, ARM(RETRY) } },
    { S(RECONNECT), E(LINK_UP), S(ASK), 0,
      { SEND(STATUS_REQ), ARM(STATUS) } },
    { S(RECONNECT), E(LINK_LOST), S(RECONNECT), 0, { ARM(RETRY) } },
    { S(RECONNECT), E(DONE), S(DESTROYING), 0, { CANCEL, HV(DESTROY) } },
    { S(RECONNECT), E(ABORT), S(RENAME_BACK), 0,
      { CANCEL, HV(RENAME_NAME) } },

    { S(ASK), E(ST_RUNNING), S(DESTROYING), 0, { CANCEL, HV(DESTROY) } },
    { S(ASK), E(DONE), S(DESTROYING), 0, { CANCEL, HV(DESTROY) } },
    { S(ASK), E(ST_ABSENT), S(RENAME_BACK), 0,
      { CANCEL, HV(RENAME_NAME) } },
    { S(ASK), E(ABORT), S(RENAME_BACK), 0, { CANCEL, HV(RENAME_NAME) } },
    { S(ASK), E(ST_WAITING_GO), S(WAIT_DONE), F_RETRY_RESET,
      { SEND(GO), ARM(DONE) } },
    { S(ASK), E(ST_BUSY), S(RECONNECT), 0, { ARM(RETRY) } },
    { S(ASK), EV_ANY, S(RECONNECT), 0, { ARM(RETRY) } },

    { S(DESTROYING), E(DESTROY_OK), S(JOURNAL_DONE), 0, { JOURNAL(DONE) } },
    { S(DESTROYING), E(DESTROY_FAILED), S(JOURNAL_DONE), F_LEFTOVER,
      { JOURNAL(DONE) } },

    { S(RENAME_BACK), E(RENAME_OK), S(RESUMING), 0, { HV(RESUME) } },
    /* Better running under the transient name than not at all. */
    { S(RENAME_BACK), E(RENAME_FAILED), S(RESUMING), F_NAME_STUCK,
      { HV(RESUME) } },

    { S(RESUMING), E(RESUME_OK), S(JOURNAL_ABORTED), 0,
      { JOURNAL(ABORTED) } },
    /* xl's failed_badly: the journal keeps its phase for recovery. */
    { S(RESUMING), E(RESUME_FAILED), S(BROKEN), F_FAIL, { REPORT } },

    { S(JOURNAL_DONE), E(JOURNAL_OK), S(MIGRATED), 0, { REPORT } },
    { S(JOURNAL_DONE), E(JOURNAL_FAILED), S(MIGRATED), 0, { REPORT } },
    { S(JOURNAL_ABORTED), E(JOURNAL_OK), S(STAYED), 0, { REPORT } },
    { S(JOURNAL_ABORTED), E(JOURNAL_FAILED), S(STAYED), 0, { REPORT } },
};

static const struct row target_rows[] = {
    { T(IDLE), E(OFFER), T(CHECKING), 0, { CHECK } },
    { T(IDLE), EV_ANY, T(REJECTED), F_FAIL, { SEND(REJECT), REPORT } },

    { T(CHECKING), E(CHECK_OK), T(JOURNAL_RECV), 0, { JOURNAL(RECEIVING) } },
    { T(CHECKING), E(CHECK_FAILED), T(REJECTED), F_FAIL,
      { SEND(REJECT), REPORT } },
    { T(JOURNAL_RECV), E(JOURNAL_OK), T(RECEIVING), 0,
      { HV(RECV), SEND(ACCEPT), ARM(STREAM) } },
    { T(JOURNAL_RECV), E(JOURNAL_FAILED), T(REJECTED), F_FAIL,
      { SEND(REJECT), REPORT } },

    { T(RECEIVING), E(RECV_DONE), T(JOURNAL_READY), F_DOMID,
      { CANCEL, JOURNAL(READY) } },
    { T(RECEIVING), E(RECV_FAILED), T(DESTROYING), F_FAIL | F_DOMID,
      { CANCEL, HV(DESTROY) } },
    /* the source gave up (its operator, its watchdog): its reason */
    { T(RECEIVING), E(ABORT), T(CANCEL_RECV), F_FAIL,
      { CANCEL, HV(CANCEL_RECV) } },
    { T(RECEIVING), EV_ANY, T(CANCEL_RECV), F_FAIL,
      { CANCEL, HV(CANCEL_RECV) } },
    { T(CANCEL_RECV), E(RECV_DONE), T(DESTROYING), F_DOMID,
      { HV(DESTROY) } },
    { T(CANCEL_RECV), E(RECV_FAILED), T(DESTROYING), F_DOMID,
      { HV(DESTROY) } },

    { T(JOURNAL_READY), E(JOURNAL_OK), T(WAIT_GO), 0,
      { SEND(READY), ARM(GO) } },
    { T(JOURNAL_READY), E(JOURNAL_FAILED), T(DESTROYING), F_FAIL,
      { HV(DESTROY) } },

    /* GO taken: from here a failure is "after GO" for both sides. */
    { T(WAIT_GO), E(GO), T(JOURNAL_GO), F_PONR, { CANCEL, JOURNAL(GO) } },
    /* The source may come back to ask or to send GO again. */
    { T(WAIT_GO), E(LINK_LOST), T(GRACE), 0, { ARM(GRACE) } },
    /* The source gives up (its ABORT, or its CANCEL once restarted):
     * its reason is ours. */
    { T(WAIT_GO), E(ABORT), T(DESTROYING), F_FAIL, { CANCEL, HV(DESTROY) } },
    { T(WAIT_GO), EV_ANY, T(DESTROYING), F_FAIL, { CANCEL, HV(DESTROY) } },
    { T(GRACE), E(GO), T(JOURNAL_GO), F_PONR, { CANCEL, JOURNAL(GO) } },
    { T(GRACE), E(LINK_UP), T(GRACE), 0, { { 0, 0 } } },
    { T(GRACE), E(LINK_LOST), T(GRACE), 0, { { 0, 0 } } },
    { T(GRACE), E(ABORT), T(DESTROYING), F_FAIL, { CANCEL, HV(DESTROY) } },
    { T(GRACE), EV_ANY, T(DESTROYING), F_FAIL, { CANCEL, HV(DESTROY) } },

    { T(JOURNAL_GO), E(JOURNAL_OK), T(RENAMING), 0, { HV(RENAME_NAME) } },
    { T(JOURNAL_GO), E(JOURNAL_FAILED), T(DESTROYING), F_FAIL,
      { HV(DESTROY) } },
    { T(RENAMING), E(RENAME_OK), T(UNPAUSING), 0, { HV(UNPAUSE) } },
    { T(RENAMING), E(RENAME_FAILED), T(DESTROYING), F_FAIL,
      { HV(DESTROY) } },
    { T(UNPAUSING), E(UNPAUSE_OK), T(JOURNAL_DONE), 0, { JOURNAL(DONE) } },
    /* Not running (UNPAUSE_FAILED says so): safe to destroy. */
    { T(UNPAUSING), E(UNPAUSE_FAILED), T(DESTROYING), F_FAIL,
      { HV(DESTROY) } },
    { T(JOURNAL_DONE), E(JOURNAL_OK), T(MIGRATED), 0,
      { SEND(DONE), REPORT } },
    { T(JOURNAL_DONE), E(JOURNAL_FAILED), T(MIGRATED), 0,
      { SEND(DONE), REPORT } },

    { T(DESTROYING), E(DESTROY_OK), T(JOURNAL_ABORTED), 0,
      { JOURNAL(ABORTED) } },
    { T(DESTROYING), E(DESTROY_FAILED), T(JOURNAL_ABORTED), F_LEFTOVER,
      { JOURNAL(ABORTED) } },
    { T(JOURNAL_ABORTED), E(JOURNAL_OK), T(ABORTED), 0,
      { SEND(ABORT), REPORT } },
    { T(JOURNAL_ABORTED), E(JOURNAL_FAILED), T(ABORTED), 0,
      { SEND(ABORT), REPORT } },

    /* A GO sent again after a reconnect gets the same answer. */
    { T(MIGRATED), E(GO), T(MIGRATED), 0, { SEND(DONE) } },
    { T(ABORTED), E(GO), T(ABORTED), 0, { SEND(ABORT) } },
};

struct state_info {
    const char *name;
    uint8_t side;
    bool terminal;
};

static const struct state_info states[XM_MIG_STATE_COUNT] = {
    [S(IDLE)] = { "idle", XM_MIG_SOURCE, false },
    [S(JOURNAL_START)] = { "journal-start", XM_MIG_SOURCE, false },
    [S(OFFERED)] = { "offered", XM_MIG_SOURCE, false },
    [S(SENDING)] = { "sending", XM_MIG_SOURCE, false },
    [S(CANCEL_SEND)] = { "cancel-send", XM_MIG_SOURCE, false },
    [S(WAIT_READY)] = { "wait-ready", XM_MIG_SOURCE, false },
    [S(RENAME_AWAY)] = { "rename-away", XM_MIG_SOURCE, false },
    [S(JOURNAL_GO)] = { "journal-go", XM_MIG_SOURCE, false },
    [S(RENAME_AWAY_NOLINK)] = { "rename-away-nolink", XM_MIG_SOURCE,
                                false },
    [S(JOURNAL_GO_NOLINK)] = { "journal-go-nolink", XM_MIG_SOURCE, false },
    [S(WAIT_DONE)] = { "wait-done", XM_MIG_SOURCE, false },
    [S(RECONNECT)] = { "reconnect", XM_MIG_SOURCE, false },
    [S(ASK)] = { "ask", XM_MIG_SOURCE, false },
    [S(DESTROYING)] = { "destroying", XM_MIG_SOURCE, false },
    [S(RENAME_BACK)] = { "rename-back", XM_MIG_SOURCE, false },
    [S(RESUMING)] = { "resuming", XM_MIG_SOURCE, false },
    [S(JOURNAL_DONE)] = { "journal-done", XM_MIG_SOURCE, false },
    [S(JOURNAL_ABORTED)] = { "journal-aborted", XM_MIG_SOURCE, false },
    [S(MIGRATED)] = { "migrated", XM_MIG_SOURCE, true },
    [S(STAYED)] = { "stayed", XM_MIG_SOURCE, true },
    [S(BROKEN)] = { "broken", XM_MIG_SOURCE, true },
    [T(IDLE)] = { "idle", XM_MIG_TARGET, false },
    [T(CHECKING)] = { "checking", XM_MIG_TARGET, false },
    [T(JOURNAL_RECV)] = { "journal-receiving", XM_MIG_TARGET, false },
    [T(RECEIVING)] = { "receiving", XM_MIG_TARGET, false },
    [T(CANCEL_RECV)] = { "cancel-receive", XM_MIG_TARGET, false },
    [T(JOURNAL_READY)] = { "journal-ready", XM_MIG_TARGET, false },
    [T(WAIT_GO)] = { "wait-go", XM_MIG_TARGET, false },
    [T(GRACE)] = { "grace", XM_MIG_TARGET, false },
    [T(JOURNAL_GO)] = { "journal-go", XM_MIG_TARGET, false },
    [T(RENAMING)] = { "renaming", XM_MIG_TARGET, false },
    [T(UNPAUSING)] = { "unpausing", XM_MIG_TARGET, false },
    [T(JOURNAL_DONE)] = { "journal-done", XM_MIG_TARGET, false },
    [T(DESTROYING)] = { "destroying", XM_MIG_TARGET, false },
    [T(JOURNAL_ABORTED)] = { "journal-aborted", XM_MIG_TARGET, false },
    [T(MIGRATED)] = { "migrated", XM_MIG_TARGET, true },
    [T(REJECTED)] = { "rejected", XM_MIG_TARGET, true },
    [T(ABORTED)] = { "aborted", XM_MIG_TARGET, true },
};

static const char *const event_names[XM_MIG_EV_COUNT] = {
    [E(START)] = "start", [E(OFFER)] = "offer", [E(ACCEPT)] = "accept",
    [E(REJECT)] = "reject", [E(READY)] = "ready", [E(GO)] = "go",
    [E(DONE)] = "done", [E(ABORT)] = "abort",
    [E(ST_RUNNING)] = "status-running",
    [E(ST_WAITING_GO)] = "status-waiting-go",
    [E(ST_BUSY)] = "status-busy", [E(ST_ABSENT)] = "status-absent",
    [E(CHECK_OK)] = "check-ok", [E(CHECK_FAILED)] = "check-failed",
    [E(JOURNAL_OK)] = "journal-ok", [E(JOURNAL_FAILED)] = "journal-failed",
    [E(SEND_DONE)] = "send-done", [E(SEND_FAILED)] = "send-failed",
    [E(SEND_FAILED_SUSPENDED)] = "send-failed-suspended",
    [E(RECV_DONE)] = "receive-done", [E(RECV_FAILED)] = "receive-failed",
    [E(RENAME_OK)] = "rename-ok", [E(RENAME_FAILED)] = "rename-failed",
    [E(RESUME_OK)] = "resume-ok", [E(RESUME_FAILED)] = "resume-failed",
    [E(UNPAUSE_OK)] = "unpause-ok", [E(UNPAUSE_FAILED)] = "unpause-failed",
    [E(DESTROY_OK)] = "destroy-ok", [E(DESTROY_FAILED)] = "destroy-failed",
    [E(TIMEOUT)] = "timeout", [E(LINK_LOST)] = "link-lost",
    [E(LINK_UP)] = "link-up",
};

const char *
xm_mig_state_name(int state)
{
    if (state < 0 || state >= XM_MIG_STATE_COUNT)
        return "unknown";
    return states[state].name;
}

const char *
xm_mig_event_name(int type)
{
    if (type < 0 || type >= XM_MIG_EV_COUNT)
        return "unknown";
    return event_names[type];
}

const char *
xm_mig_outcome_name(int outcome)
{
    switch (outcome) {
    case XM_MIG_PENDING: return "pending";
    case XM_MIG_OK: return "migrated";
    case XM_MIG_FAILED_BEFORE: return "failed-before-go";
    case XM_MIG_FAILED_AFTER: return "failed-after-go";
    case XM_MIG_UNRESOLVED: return "unresolved";
    case XM_MIG_BROKEN: return "broken";
    default: return "unknown";
    }
}

const char *
xm_mig_peer_status_name(int status)
{
    switch (status) {
    case XM_MIG_PS_ABSENT: return "absent";
    case XM_MIG_PS_BUSY: return "busy";
    case XM_MIG_PS_WAITING_GO: return "waiting-go";
    case XM_MIG_PS_RUNNING: return "running";
    default: return NULL;
    }
}

void
xm_mig_config_default(struct xm_mig_config *cfg_r)
{
    cfg_r->accept_ms = 30 * 1000;
    cfg_r->stream_ms = 30 * 60 * 1000;
    cfg_r->ready_ms = 60 * 1000;
    cfg_r->go_ms = 60 * 1000;
    cfg_r->done_ms = 60 * 1000;
    cfg_r->status_ms = 10 * 1000;
    cfg_r->retry_min_ms = 1000;
    cfg_r->retry_max_ms = 60 * 1000;
    cfg_r->grace_ms = 10 * 60 * 1000;
}

static int
fill_names(struct xm_mig *m)
{
    int r1 = snprintf(m->away, sizeof(m->away), "%s%s", m->ident.name,
                      XM_MIG_SUFFIX_AWAY);
    int r2 = snprintf(m->incoming, sizeof(m->incoming), "%s%s",
                      m->ident.name, XM_MIG_SUFFIX_IN);

    if (r1 < 0 || (size_t)r1 >= sizeof(m->away) || r2 < 0 ||
        (size_t)r2 >= sizeof(m->incoming))
        return XM_ERR_INVAL;
    return XM_OK;
}

static bool
str_ok(const char *s, size_t size)
{
    return memchr(s, '\0', size) != NULL;
}

int
xm_mig_init(struct xm_mig *m, enum xm_mig_side side,
            const struct xm_mig_ident *ident,
            const struct xm_mig_config *cfg)
{
    memset(m, 0, sizeof(*m));
    if (side != XM_MIG_SOURCE && side != XM_MIG_TARGET)
        return XM_ERR_INVAL;
    if (!str_ok(ident->id, sizeof(ident->id)) ||
        !str_ok(ident->name, sizeof(ident->name)) ||
        !str_ok(ident->source, sizeof(ident->source)) ||
        !str_ok(ident->target, sizeof(ident->target)) ||
        !xm_mig_id_valid(ident->id) || !xm_mig_name_valid(ident->name) ||
        !xm_proto_host_valid(ident->source) ||
        !xm_proto_host_valid(ident->target))
        return XM_ERR_INVAL;
    m->side = side;
    m->state = side == XM_MIG_SOURCE ? S(IDLE) : T(IDLE);
    m->ident = *ident;
    if (cfg)
        m->cfg = *cfg;
    else
        xm_mig_config_default(&m->cfg);
    return fill_names(m);
}

bool
xm_mig_terminal(const struct xm_mig *m)
{
    return m->state < XM_MIG_STATE_COUNT && states[m->state].terminal;
}

bool
xm_mig_source_down(const struct xm_mig *m)
{
    if (m->side != XM_MIG_SOURCE)
        return false;
    switch (m->state) {
    case S(SENDING):
    case S(CANCEL_SEND):
    case S(WAIT_READY):
    case S(RENAME_AWAY):
    case S(JOURNAL_GO):
    case S(RENAME_AWAY_NOLINK):
    case S(JOURNAL_GO_NOLINK):
    case S(WAIT_DONE):
    case S(RENAME_BACK):
    case S(RESUMING):
        return true;
    default:
        return false;
    }
}

bool
xm_mig_source_streaming(const struct xm_mig *m)
{
    if (m->side != XM_MIG_SOURCE)
        return false;
    switch (m->state) {
    case S(IDLE):
    case S(JOURNAL_START):
    case S(OFFERED):
    case S(SENDING):
    case S(CANCEL_SEND):
        return true;
    default:
        return false;
    }
}

int
xm_mig_priority(struct xm_mig_prio *in, size_t n, int64_t now,
                int64_t window_ms, int64_t resume_until, bool *down_r,
                int64_t *next_r)
{
    bool resuming = resume_until >= 0 && now < resume_until;
    int first = -1, end = -1;
    int64_t next = resuming ? resume_until : -1;

    for (size_t i = 0; i < n && i < INT_MAX; i++) {
        bool down = in[i].down_since >= 0;
        int64_t since = down ? in[i].down_since : in[i].endgame_since;

        if (since < 0 || now - since >= window_ms)
            continue;
        if (down && (first < 0 || since < in[first].down_since))
            first = (int)i;
        else if (!down && (end < 0 || since < in[end].endgame_since))
            end = (int)i;
        if (next < 0 || since + window_ms < next)
            next = since + window_ms;
    }
    *down_r = first >= 0 || resuming;
    for (size_t i = 0; i < n; i++)
        in[i].hold = first >= 0 || resuming ? in[i].down_since < 0
                     : end >= 0 && (int)i != end && in[i].down_since < 0;
    *next_r = next;
    return first >= 0 ? first : resuming ? -1 : end;
}

void
xm_mig_result(const struct xm_mig *m, struct xm_mig_result *res_r)
{
    memset(res_r, 0, sizeof(*res_r));
    res_r->rc = m->rc;
    res_r->why = m->why;
    res_r->leftover = m->leftover;
    res_r->name_stuck = m->name_stuck;
    switch (m->state) {
    case S(MIGRATED):
    case T(MIGRATED):
        res_r->outcome = XM_MIG_OK;
        break;
    case S(STAYED):
    case T(REJECTED):
    case T(ABORTED):
        res_r->outcome = m->after_go ? XM_MIG_FAILED_AFTER
                                     : XM_MIG_FAILED_BEFORE;
        break;
    case S(BROKEN):
        res_r->outcome = XM_MIG_BROKEN;
        break;
    case S(RECONNECT):
    case S(ASK):
        res_r->outcome = XM_MIG_UNRESOLVED;
        break;
    default:
        res_r->outcome = XM_MIG_PENDING;
        break;
    }
}

/* The rc a failure event stands for when it carries none. */
static int
event_rc(const struct xm_mig_event *ev)
{
    if (ev->rc)
        return ev->rc;
    switch (ev->type) {
    case E(TIMEOUT): return XM_ERR_TIMEOUT;
    case E(LINK_LOST): return XM_ERR_IO;
    case E(REJECT): case E(ABORT): return XM_ERR_CANCELLED;
    case E(JOURNAL_FAILED): return XM_ERR_IO;
    case E(CHECK_FAILED): return XM_ERR_BUSY;
    default: return XM_ERR_HV;
    }
}

static void
note_failure(struct xm_mig *m, const struct xm_mig_event *ev,
             bool unexpected)
{
    const char *txt = ev->text;
    size_t n;
    int r;

    if (m->rc)
        return;                         /* the first failure counts */
    if (unexpected) {
        m->rc = XM_ERR_PROTO;
        snprintf(m->why, sizeof(m->why), "unexpected %s in %s",
                 xm_mig_event_name((int)ev->type),
                 xm_mig_state_name((int)m->state));
        return;
    }
    m->rc = event_rc(ev);
    /* A timeout the executor raised itself (the operator's cancel, the
     * progress watchdog) says why in its text: that is the reason. */
    if (ev->type == E(TIMEOUT) && txt) {
        m->why[0] = '\0';
        r = 0;
    } else {
        r = snprintf(m->why, sizeof(m->why), txt ? "%s: " : "%s",
                     xm_mig_event_name(ev->type));
    }
    if (!txt || r < 0 || (size_t)r >= sizeof(m->why))
        return;
    /* Peer text is hostile: printable ASCII only, cut to fit. */
    for (n = (size_t)r; *txt && n + 1 < sizeof(m->why); txt++, n++) {
        unsigned char c = (unsigned char)*txt;
        m->why[n] = c >= 0x20 && c < 0x7f ? (char)c : '?';
    }
    m->why[n] = '\0';
}

static uint32_t
timer_ms(struct xm_mig *m, enum xm_mig_timer t)
{
    uint64_t ms;

    switch (t) {
    case XM_MIG_TM_ACCEPT: return m->cfg.accept_ms;
    case XM_MIG_TM_STREAM: return m->cfg.stream_ms;
    case XM_MIG_TM_READY: return m->cfg.ready_ms;
    case XM_MIG_TM_GO: return m->cfg.go_ms;
    case XM_MIG_TM_DONE: return m->cfg.done_ms;
    case XM_MIG_TM_STATUS: return m->cfg.status_ms;
    case XM_MIG_TM_GRACE: return m->cfg.grace_ms;
    case XM_MIG_TM_RETRY:
        ms = m->cfg.retry_min_ms;
        for (unsigned i = 0; i < m->retries && ms < m->cfg.retry_max_ms; i++)
            ms *= 2;
        if (ms > m->cfg.retry_max_ms)
            ms = m->cfg.retry_max_ms;
        if (m->retries < 64)
            m->retries++;
        return (uint32_t)ms;
    }
    return 0;
}

static uint32_t
our_domid(const struct xm_mig *m)
{
    return m->side == XM_MIG_SOURCE ? m->ident.src_domid
                                    : m->ident.dst_domid;
}

static void
expand(struct xm_mig *m, const struct tmpl *t, struct xm_mig_action *a)
{
    memset(a, 0, sizeof(*a));
    a->type = (enum xm_mig_action_type)t->type;
    switch (t->type) {
    case XM_MIG_A_SEND:
        a->msg = (enum xm_mig_msg)t->arg;
        if (a->msg == XM_MIG_MSG_REJECT || a->msg == XM_MIG_MSG_ABORT) {
            a->code = m->rc ? m->rc : XM_ERR_CANCELLED;
            a->text = m->why[0] ? m->why : "aborted";
        } else if (a->msg == XM_MIG_MSG_STATUS) {
            a->status = (int)xm_mig_peer_status(m);
        }
        break;
    case XM_MIG_A_HV:
        a->domid = our_domid(m);
        switch (t->arg) {
        case H_SEND: a->op = XM_MIG_OP_SEND; break;
        case H_CANCEL_SEND: a->op = XM_MIG_OP_CANCEL_SEND; break;
        case H_RECV:
            a->op = XM_MIG_OP_RECV;
            a->name = m->incoming;
            break;
        case H_CANCEL_RECV: a->op = XM_MIG_OP_CANCEL_RECV; break;
        case H_RENAME_AWAY:
            a->op = XM_MIG_OP_RENAME;
            a->name = m->away;
            break;
        case H_RENAME_NAME:
            a->op = XM_MIG_OP_RENAME;
            a->name = m->ident.name;
            break;
        case H_RESUME: a->op = XM_MIG_OP_RESUME; break;
        case H_UNPAUSE: a->op = XM_MIG_OP_UNPAUSE; break;
        case H_DESTROY: a->op = XM_MIG_OP_DESTROY; break;
        }
        break;
    case XM_MIG_A_JOURNAL:
        a->phase = (enum xm_jphase)t->arg;
        break;
    case XM_MIG_A_ARM:
        a->timer = (enum xm_mig_timer)t->arg;
        a->ms = timer_ms(m, a->timer);
        break;
    default:
        break;
    }
}

static unsigned
row_nact(const struct row *r)
{
    unsigned n = 0;

    while (n < XM_MIG_ACTIONS_MAX && r->act[n].type)
        n++;
    return n;
}

static const struct row *
find_row(const struct xm_mig *m, unsigned ev, bool *fallback_r)
{
    const struct row *rows = m->side == XM_MIG_SOURCE ? source_rows
                                                      : target_rows;
    size_t n = m->side == XM_MIG_SOURCE
        ? sizeof(source_rows) / sizeof(source_rows[0])
        : sizeof(target_rows) / sizeof(target_rows[0]);
    const struct row *any = NULL;

    for (size_t i = 0; i < n; i++) {
        if (rows[i].state != m->state)
            continue;
        if (rows[i].event == ev) {
            *fallback_r = false;
            return &rows[i];
        }
        if (rows[i].event == EV_ANY)
            any = &rows[i];
    }
    *fallback_r = true;
    return any;
}

int
xm_mig_step(struct xm_mig *m, const struct xm_mig_event *ev,
            struct xm_mig_action *actions_r, unsigned max, unsigned *n_r)
{
    const struct row *r;
    bool fallback;
    unsigned evt = (unsigned)ev->type, n;

    *n_r = 0;
    if (m->state >= XM_MIG_STATE_COUNT ||
        states[m->state].side != m->side)
        return XM_ERR_STATE;            /* a corrupted machine */
    if (evt >= XM_MIG_EV_COUNT)
        evt = EV_ANY - 1;               /* unknown: matches no row */
    r = find_row(m, evt, &fallback);
    if (!r)
        return XM_ERR_STATE;            /* dropped; the state holds */
    n = row_nact(r);
    if (n > max)
        return XM_ERR_TOOBIG;
    if (r->flags & F_FAIL)
        note_failure(m, ev, fallback && !(ev->type == E(TIMEOUT) &&
                                          ev->text));
    if (r->flags & F_PONR)
        m->after_go = true;
    if (r->flags & F_LEFTOVER)
        m->leftover = true;
    if (r->flags & F_NAME_STUCK)
        m->name_stuck = true;
    if (r->flags & F_RETRY_RESET)
        m->retries = 0;
    if ((r->flags & F_DOMID) && ev->domid)
        m->ident.dst_domid = ev->domid;
    m->state = (enum xm_mig_state)r->next;
    for (unsigned i = 0; i < n; i++)
        expand(m, &r->act[i], &actions_r[i]);
    *n_r = n;
    return fallback ? XM_ERR_STATE : XM_OK;
}

void
xm_mig_journal_rec(const struct xm_mig *m, enum xm_jphase phase,
                   int64_t now_s, const struct xm_journal_rec *prev,
                   struct xm_journal_rec *rec_r)
{
    memset(rec_r, 0, sizeof(*rec_r));
    memcpy(rec_r->id, m->ident.id, sizeof(rec_r->id));
    rec_r->side = m->side;
    memcpy(rec_r->name, m->ident.name, sizeof(rec_r->name));
    memcpy(rec_r->uuid, m->ident.uuid, sizeof(rec_r->uuid));
    memcpy(rec_r->source, m->ident.source, sizeof(rec_r->source));
    memcpy(rec_r->target, m->ident.target, sizeof(rec_r->target));
    rec_r->src_domid = m->ident.src_domid;
    rec_r->dst_domid = m->ident.dst_domid;
    rec_r->phase = phase;
    rec_r->created_s = prev && prev->created_s <= now_s ? prev->created_s
                                                       : now_s;
    rec_r->updated_s = now_s;
}

/* ---- the target's answers ---- */

static const struct xm_mig_dom *
find_dom(const struct xm_mig_hostview *host, const char *name,
         const uint8_t *uuid)
{
    for (size_t i = 0; i < host->n; i++) {
        const struct xm_mig_dom *d = &host->doms[i];
        if (!d->name || strcmp(d->name, name) != 0)
            continue;
        if (!uuid || memcmp(d->uuid, uuid, 16) == 0)
            return d;
    }
    return NULL;
}

int
xm_mig_offer_check(const struct xm_mig_offer *offer,
                   const struct xm_mig_hostview *host, const char **why_r)
{
    char in[XM_MIG_NAME_BUF];

    *why_r = "";
    if (!xm_mig_name_valid(offer->name)) {
        *why_r = "bad guest name";
        return XM_ERR_INVAL;
    }
    if (host->cordoned) {
        *why_r = "host is cordoned";
        return XM_ERR_BUSY;
    }
    if (host->free_kib < offer->mem_kib) {
        *why_r = "not enough free memory";
        return XM_ERR_NOMEM;
    }
    snprintf(in, sizeof(in), "%s%s", offer->name, XM_MIG_SUFFIX_IN);
    if (find_dom(host, offer->name, NULL) || find_dom(host, in, NULL)) {
        *why_r = "a domain of that name exists";
        return XM_ERR_EXISTS;
    }
    return XM_OK;
}

enum xm_mig_peer_status
xm_mig_peer_status(const struct xm_mig *m)
{
    switch (m->state) {
    case T(JOURNAL_RECV):
    case T(RECEIVING):
    case T(JOURNAL_READY):
    case T(JOURNAL_GO):
    case T(RENAMING):
    case T(UNPAUSING):
        return XM_MIG_PS_BUSY;
    case T(WAIT_GO):
    case T(GRACE):
        return XM_MIG_PS_WAITING_GO;
    case T(JOURNAL_DONE):
    case T(MIGRATED):
        return XM_MIG_PS_RUNNING;
    default:
        /* never ran here and never will: idle, rejected, cancelled,
         * destroying, aborted (and a source machine, asked wrongly) */
        return XM_MIG_PS_ABSENT;
    }
}

enum xm_mig_peer_status
xm_mig_peer_status_lookup(const struct xm_journal_rec *rec,
                          const char *name, const uint8_t uuid[16],
                          const struct xm_mig_hostview *host)
{
    char in[XM_MIG_NAME_BUF];
    const struct xm_mig_dom *d = find_dom(host, name, uuid);

    /* A guest of that uuid running under its name here: whatever the
     * journal says, the source must not resume its copy. */
    if (d && d->state == XM_MIG_DOM_RUNNING)
        return XM_MIG_PS_RUNNING;
    if (rec && rec->side == XM_MIG_TARGET) {
        switch (rec->phase) {
        case XM_JP_DONE:
            return XM_MIG_PS_RUNNING;
        case XM_JP_ABORTED:
            return XM_MIG_PS_ABSENT;
        case XM_JP_READY:
            snprintf(in, sizeof(in), "%s%s", name, XM_MIG_SUFFIX_IN);
            return find_dom(host, in, uuid) ? XM_MIG_PS_WAITING_GO
                                            : XM_MIG_PS_ABSENT;
        default:
            break;
        }
    }
    snprintf(in, sizeof(in), "%s%s", name, XM_MIG_SUFFIX_IN);
    if (d || find_dom(host, in, uuid))
        return XM_MIG_PS_BUSY;      /* recovery will settle it */
    return XM_MIG_PS_ABSENT;
}

enum xm_mig_event_type
xm_mig_status_event(int status)
{
    switch (status) {
    case XM_MIG_PS_RUNNING: return E(ST_RUNNING);
    case XM_MIG_PS_WAITING_GO: return E(ST_WAITING_GO);
    case XM_MIG_PS_ABSENT: return E(ST_ABSENT);
    default: return E(ST_BUSY);     /* unknown answers: ask again */
    }
}

/* ---- recovery ---- */

static int
push(struct xm_mig_action *actions_r, unsigned max, unsigned *n,
     const struct xm_mig_action *a)
{
    if (*n >= max)
        return XM_ERR_TOOBIG;
    actions_r[(*n)++] = *a;
    return XM_OK;
}

static int
adopt_into(enum xm_mig_state st, uint32_t domid,
           struct xm_mig_action *actions_r, unsigned max, unsigned *n)
{
    struct xm_mig_action a = { .type = XM_MIG_A_ADOPT, .state = st,
                               .domid = domid };
    return push(actions_r, max, n, &a);
}

static int
final_journal(enum xm_jphase p, struct xm_mig_action *actions_r,
              unsigned max, unsigned *n)
{
    struct xm_mig_action a = { .type = XM_MIG_A_JOURNAL, .phase = p };
    return push(actions_r, max, n, &a);
}

static int
final_destroy(uint32_t domid, struct xm_mig_action *actions_r,
              unsigned max, unsigned *n)
{
    struct xm_mig_action a = { .type = XM_MIG_A_HV,
                               .op = XM_MIG_OP_DESTROY, .domid = domid };
    return push(actions_r, max, n, &a);
}

static bool
running(const struct xm_mig_dom *d)
{
    return d && d->state == XM_MIG_DOM_RUNNING;
}

/*
 * Our copy without a name: a domain of the journal's uuid and of the
 * domid it recorded for this side, whose xenstore entries are gone --
 * libxl's destroy removes them before it asks the hypervisor, and an
 * agent killed in between leaves the domain there ("(null)" in xl
 * list), holding its memory.  Nothing can resume it; only a destroy
 * frees it.  A domid of 0 was never recorded.
 */
static const struct xm_mig_dom *
find_husk(const struct xm_mig_hostview *host, const uint8_t *uuid,
          uint32_t domid)
{
    for (size_t i = 0; domid && i < host->n; i++) {
        const struct xm_mig_dom *d = &host->doms[i];
        if ((!d->name || !d->name[0]) && d->domid == domid &&
            memcmp(d->uuid, uuid, 16) == 0)
            return d;
    }
    return NULL;
}

/* The source's row of the recovery table (doc/migration.md). */
static int
recover_source(const struct xm_journal_rec *rec,
               const struct xm_mig_dom *home, const struct xm_mig_dom *away,
               const struct xm_mig_dom *husk,
               struct xm_mig_action *a, unsigned max, unsigned *n)
{
    int rc;

    if (home && away)
        return XM_ERR_STATE;        /* two copies of one uuid */
    if (running(away) && rec->phase != XM_JP_ABORTED)
        return XM_ERR_STATE;        /* nobody resumes under that name */
    if (husk && (running(husk) || rec->phase == XM_JP_SENDING))
        return XM_ERR_STATE;        /* we destroy ours only after GO */
    switch (rec->phase) {
    case XM_JP_SENDING:
        /* GO never left: the target never runs it.  Bring ours back. */
        if (away)
            return adopt_into(S(RENAME_BACK), away->domid, a, max, n);
        if (home && !running(home))
            return adopt_into(S(RESUMING), home->domid, a, max, n);
        return final_journal(XM_JP_ABORTED, a, max, n);
    case XM_JP_GO:
        /* GO may have left: only the target knows. */
        if (away)
            return adopt_into(S(RECONNECT), away->domid, a, max, n);
        /* Renamed back: the decision to resume was already taken. */
        if (home && !running(home))
            return adopt_into(S(RESUMING), home->domid, a, max, n);
        if (home)
            return final_journal(XM_JP_ABORTED, a, max, n);
        /* Ours destroyed (or its destroy cut short): only after DONE or
         * "running there". */
        if (husk && (rc = final_destroy(husk->domid, a, max, n)))
            return rc;
        return final_journal(XM_JP_DONE, a, max, n);
    case XM_JP_DONE:
        if (away && (rc = final_destroy(away->domid, a, max, n)))
            return rc;
        if (husk)
            return final_destroy(husk->domid, a, max, n);
        return XM_OK;
    case XM_JP_ABORTED:
        return XM_OK;               /* finished; whatever runs, runs */
    default:
        return XM_ERR_INVAL;
    }
}

static int
recover_target(const struct xm_journal_rec *rec,
               const struct xm_mig_dom *home, const struct xm_mig_dom *in,
               const struct xm_mig_dom *husk,
               struct xm_mig_action *a, unsigned max, unsigned *n)
{
    int rc;

    if (running(in) || running(husk))
        return XM_ERR_STATE;        /* --incoming is never unpaused */
    /* A copy whose destroy was cut short: before GO, or after a failure
     * that GO could not mend (nothing renamed it), it was being thrown
     * away; finish that.  Once done, whatever runs, runs. */
    if (husk && !in && !home && rec->phase != XM_JP_DONE) {
        rc = final_destroy(husk->domid, a, max, n);
        if (!rc && rec->phase != XM_JP_ABORTED)
            rc = final_journal(XM_JP_ABORTED, a, max, n);
        return rc;
    }
    switch (rec->phase) {
    case XM_JP_RECEIVING:
        /* READY never left, so GO never came: throw it away. */
        if (in)
            return adopt_into(T(DESTROYING), in->domid, a, max, n);
        return final_journal(XM_JP_ABORTED, a, max, n);
    case XM_JP_READY:
        /* The source may still send GO: hold it for the grace time. */
        if (in)
            return adopt_into(T(GRACE), in->domid, a, max, n);
        return final_journal(XM_JP_ABORTED, a, max, n);
    case XM_JP_GO:
        /* GO came: the source keeps its copy suspended; finish. */
        if (in)
            return adopt_into(T(RENAMING), in->domid, a, max, n);
        if (home && !running(home))
            return adopt_into(T(UNPAUSING), home->domid, a, max, n);
        if (home)
            return adopt_into(T(JOURNAL_DONE), home->domid, a, max, n);
        /* Destroyed after a failure, before "aborted" was written. */
        return final_journal(XM_JP_ABORTED, a, max, n);
    case XM_JP_DONE:
        return XM_OK;
    case XM_JP_ABORTED:
        if (in)
            return final_destroy(in->domid, a, max, n);
        return XM_OK;
    default:
        return XM_ERR_INVAL;
    }
}

int
xm_mig_recover(const struct xm_journal_rec *rec,
               const struct xm_mig_hostview *host,
               struct xm_mig_action *actions_r, unsigned max, unsigned *n_r)
{
    char alt[XM_MIG_NAME_BUF];
    const struct xm_mig_dom *home, *other;
    int r;

    *n_r = 0;
    if (xm_journal_rec_check(rec))
        return XM_ERR_INVAL;
    home = find_dom(host, rec->name, rec->uuid);
    r = snprintf(alt, sizeof(alt), "%s%s", rec->name,
                 rec->side == XM_MIG_SOURCE ? XM_MIG_SUFFIX_AWAY
                                            : XM_MIG_SUFFIX_IN);
    if (r < 0 || (size_t)r >= sizeof(alt))
        return XM_ERR_INVAL;
    other = find_dom(host, alt, rec->uuid);
    if (rec->side == XM_MIG_SOURCE)
        return recover_source(rec, home, other,
                              find_husk(host, rec->uuid, rec->src_domid),
                              actions_r, max, n_r);
    return recover_target(rec, home, other,
                          find_husk(host, rec->uuid, rec->dst_domid),
                          actions_r, max, n_r);
}

/* What an adopted state waits on. */
static const struct {
    uint8_t state;
    struct tmpl act[2];
} adopt_entry[] = {
    { S(RESUMING), { HV(RESUME) } },
    { S(RENAME_BACK), { HV(RENAME_NAME) } },
    { S(RECONNECT), { CONNECT, ARM(RETRY) } },
    { T(DESTROYING), { HV(DESTROY) } },
    { T(GRACE), { ARM(GRACE) } },
    { T(RENAMING), { HV(RENAME_NAME) } },
    { T(UNPAUSING), { HV(UNPAUSE) } },
    { T(JOURNAL_DONE), { JOURNAL(DONE) } },
};

int
xm_mig_adopt(struct xm_mig *m, const struct xm_journal_rec *rec,
             const struct xm_mig_config *cfg, enum xm_mig_state state,
             uint32_t domid, struct xm_mig_action *actions_r, unsigned max,
             unsigned *n_r)
{
    struct xm_mig_ident id;
    size_t k, nent = sizeof(adopt_entry) / sizeof(adopt_entry[0]);
    unsigned n = 0;
    int rc;

    *n_r = 0;
    if (xm_journal_rec_check(rec))
        return XM_ERR_INVAL;
    for (k = 0; k < nent; k++)
        if (adopt_entry[k].state == state)
            break;
    if (k == nent || (unsigned)state >= XM_MIG_STATE_COUNT ||
        states[state].side != rec->side)
        return XM_ERR_INVAL;
    while (n < 2 && adopt_entry[k].act[n].type)
        n++;
    if (n > max)
        return XM_ERR_TOOBIG;
    memset(&id, 0, sizeof(id));
    memcpy(id.id, rec->id, sizeof(id.id));
    memcpy(id.name, rec->name, sizeof(id.name));
    memcpy(id.uuid, rec->uuid, sizeof(id.uuid));
    memcpy(id.source, rec->source, sizeof(id.source));
    memcpy(id.target, rec->target, sizeof(id.target));
    id.src_domid = rec->side == XM_MIG_SOURCE ? domid : rec->src_domid;
    id.dst_domid = rec->side == XM_MIG_TARGET ? domid : rec->dst_domid;
    rc = xm_mig_init(m, rec->side, &id, cfg);
    if (rc)
        return rc;
    m->state = state;
    m->after_go = rec->phase == XM_JP_GO;
    m->rc = XM_ERR_CANCELLED;
    snprintf(m->why, sizeof(m->why), "agent restarted in phase %s",
             xm_jphase_name(rec->phase));
    for (unsigned i = 0; i < n; i++)
        expand(m, &adopt_entry[k].act[i], &actions_r[i]);
    *n_r = n;
    return XM_OK;
}

/* ---- the uuid's wire form ---- */

void
xm_mig_uuid_hex(const uint8_t uuid[16], char hex_r[33])
{
    static const char digits[] = "0123456789abcdef";

    for (unsigned i = 0; i < 16; i++) {
        hex_r[2 * i] = digits[uuid[i] >> 4];
        hex_r[2 * i + 1] = digits[uuid[i] & 15];
    }
    hex_r[32] = '\0';
}

int
xm_mig_uuid_parse(const char *s, uint8_t uuid_r[16])
{
    if (strlen(s) != 32)
        return XM_ERR_INVAL;
    for (unsigned i = 0; i < 32; i++) {
        char c = s[i];
        int v = c >= '0' && c <= '9' ? c - '0'
              : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
        if (v < 0)
            return XM_ERR_INVAL;
        if (i % 2 == 0)
            uuid_r[i / 2] = (uint8_t)(v << 4);
        else
            uuid_r[i / 2] |= (uint8_t)v;
    }
    return XM_OK;
}
