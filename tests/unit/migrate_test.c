/*
 * migrate_test.c -- the source and target migration machines wired
 * together by a small in-test world: two simulated hosts (which copies
 * of the guest exist, under which name, running/paused/suspended), a
 * link that carries messages and can drop, one timer per side on a
 * simulated clock, and a journal phase per side.  Actions of one
 * machine become events of the other.  After every run the invariant
 * is checked: never two running copies, and at the end exactly one
 * running copy (or, unresolved, exactly one suspended copy on the
 * source).  Faults are injected at every step: every hypervisor
 * result, journal write, message, link and timer; and a crash of
 * either agent at every journal write, followed by recovery.
 */
#include <stdio.h>
#include <string.h>

#include "harness.h"
#include "xm_err.h"
#include "xm_migrate.h"

#define GUEST "web1"
#define MAXQ 64

enum cstate { C_NONE, C_RUNNING, C_PAUSED, C_SUSPENDED };

enum fkind {
    K_NONE,
    K_HV,           /* the nth hv op result of side fails */
    K_SEND_SUSP,    /* the live send fails leaving the guest suspended */
    K_JOURNAL,      /* the nth journal write of side fails */
    K_CHECK,        /* the offer check fails */
    K_MSG,          /* the nth message side sends is lost */
    K_LINK,         /* the link drops before global step n */
    K_TIMEOUT,      /* side's armed timer fires at global step n */
    K_CRASH_BEFORE, /* side crashes before its nth journal write */
    K_CRASH_AFTER,  /* ... right after it */
};

struct fault_spec {
    enum fkind kind;
    int side;           /* 0 source, 1 target */
    unsigned nth;
    unsigned link_down; /* K_LINK: connect attempts that fail */
    unsigned also;      /* K_HV: this call fails too (0: none) */
};

struct host {
    enum cstate st;
    char name[XM_MIG_NAME_BUF];
    uint32_t domid;
    bool busy;          /* send/recv in flight */
    bool cancelled;
    struct xm_mig m;
    bool have_m;        /* machine alive (not crashed, or adopted) */
    struct xm_mig_event q[MAXQ];   /* local results, first */
    unsigned qh, qn;
    int inbox[MAXQ];    /* messages to this side (msg or -status) */
    unsigned ih, in;
    bool armed;
    int64_t deadline;
    enum xm_jphase phase;  /* 0: no record */
    unsigned n_hv, n_journal, n_msg;
    bool bad_op;        /* an op the rules forbid was asked */
};

struct world {
    struct host h[2];
    bool link_up;
    unsigned link_down_left;
    int64_t now;
    unsigned steps;
    struct fault_spec f;
    bool hit;           /* the fault fired */
    bool hit_after_go;  /* ... when the source was past GO */
    bool two_running;   /* the invariant broke at some point */
};

static struct world W;

static void
push_ev(struct host *h, enum xm_mig_event_type t, int rc, uint32_t domid)
{
    struct xm_mig_event *e;

    CU_ASSERT_FATAL(h->qn < MAXQ);
    e = &h->q[(h->qh + h->qn++) % MAXQ];
    memset(e, 0, sizeof(*e));
    e->type = t;
    e->rc = rc;
    e->domid = domid;
}

static void
push_msg(struct host *to, int msg)
{
    CU_ASSERT_FATAL(to->in < MAXQ);
    to->inbox[(to->ih + to->in++) % MAXQ] = msg;
}

static bool
fault_now(enum fkind k, int side, unsigned count)
{
    if (W.f.kind != k || W.f.side != side || W.f.nth != count)
        return false;
    W.hit = true;
    W.hit_after_go = W.h[0].have_m ? W.h[0].m.after_go : true;
    return true;
}

static void
link_lost(void)
{
    if (!W.link_up)
        return;
    W.link_up = false;
    for (int s = 0; s < 2; s++) {
        W.h[s].in = 0;
        if (W.h[s].have_m)
            push_ev(&W.h[s], XM_MIG_EV_LINK_LOST, XM_ERR_IO, 0);
    }
}

static void crash(int side);
static void recover(int side);

static void
do_hv(int side, const struct xm_mig_action *a)
{
    struct host *h = &W.h[side];
    bool fail;

    if (a->op == XM_MIG_OP_CANCEL_SEND || a->op == XM_MIG_OP_CANCEL_RECV) {
        h->cancelled = true;
        return;
    }
    h->n_hv++;
    fail = fault_now(K_HV, side, h->n_hv) ||
           (W.f.kind == K_HV && W.f.side == side && W.f.also == h->n_hv);
    switch (a->op) {
    case XM_MIG_OP_SEND:
        if (h->st != C_RUNNING || h->busy)
            h->bad_op = true;
        h->busy = true;
        h->cancelled = false;
        if (fail)
            h->cancelled = true;    /* it ends with SEND_FAILED */
        if (fault_now(K_SEND_SUSP, side, 1)) {
            h->busy = false;
            h->st = C_SUSPENDED;
            push_ev(h, XM_MIG_EV_SEND_FAILED_SUSPENDED, XM_ERR_HV, 0);
        }
        return;
    case XM_MIG_OP_RECV:
        if (h->st != C_NONE || h->busy)
            h->bad_op = true;
        h->busy = true;
        h->cancelled = fail;
        return;
    case XM_MIG_OP_RENAME:
        if (h->st == C_NONE || a->domid != h->domid)
            h->bad_op = true;
        if (!fail)
            snprintf(h->name, sizeof(h->name), "%s", a->name);
        push_ev(h, fail ? XM_MIG_EV_RENAME_FAILED : XM_MIG_EV_RENAME_OK,
                fail ? XM_ERR_HV : 0, 0);
        return;
    case XM_MIG_OP_RESUME:
        if (h->st != C_SUSPENDED || a->domid != h->domid)
            h->bad_op = true;
        if (!fail)
            h->st = C_RUNNING;
        push_ev(h, fail ? XM_MIG_EV_RESUME_FAILED : XM_MIG_EV_RESUME_OK,
                fail ? XM_ERR_HV : 0, 0);
        return;
    case XM_MIG_OP_UNPAUSE:
        if (h->st != C_PAUSED || a->domid != h->domid)
            h->bad_op = true;
        if (!fail)
            h->st = C_RUNNING;
        push_ev(h, fail ? XM_MIG_EV_UNPAUSE_FAILED : XM_MIG_EV_UNPAUSE_OK,
                fail ? XM_ERR_HV : 0, 0);
        return;
    case XM_MIG_OP_DESTROY:
        if (h->st == C_RUNNING)
            h->bad_op = true;       /* never destroy a running copy */
        if (!fail)
            h->st = C_NONE;
        push_ev(h, fail ? XM_MIG_EV_DESTROY_FAILED : XM_MIG_EV_DESTROY_OK,
                fail ? XM_ERR_HV : 0, 0);
        return;
    default:
        h->bad_op = true;
        return;
    }
}

/* Returns false when the side crashed. */
static bool
do_journal(int side, enum xm_jphase phase, bool push)
{
    struct host *h = &W.h[side];

    h->n_journal++;
    if (fault_now(K_CRASH_BEFORE, side, h->n_journal)) {
        crash(side);
        return false;
    }
    if (fault_now(K_JOURNAL, side, h->n_journal)) {
        if (push)
            push_ev(h, XM_MIG_EV_JOURNAL_FAILED, XM_ERR_NOSPACE, 0);
        return true;
    }
    h->phase = phase;
    if (fault_now(K_CRASH_AFTER, side, h->n_journal)) {
        crash(side);
        return false;
    }
    if (push)
        push_ev(h, XM_MIG_EV_JOURNAL_OK, 0, 0);
    return true;
}

static void
do_actions(int side, const struct xm_mig_action *acts, unsigned n)
{
    struct host *h = &W.h[side];
    struct host *peer = &W.h[!side];
    struct xm_mig_hostview hv;
    struct xm_mig_dom d;
    struct xm_mig_offer offer = { GUEST, 1024, 1 };
    const char *why;

    for (unsigned i = 0; i < n; i++) {
        const struct xm_mig_action *a = &acts[i];
        CU_ASSERT(a->type >= XM_MIG_A_SEND && a->type <= XM_MIG_A_REPORT);
        switch (a->type) {
        case XM_MIG_A_SEND:
            h->n_msg++;
            if (fault_now(K_MSG, side, h->n_msg) || !W.link_up)
                break;
            if (a->msg == XM_MIG_MSG_STREAM_END)
                break;              /* transport-level */
            push_msg(peer, (int)a->msg);
            break;
        case XM_MIG_A_HV:
            do_hv(side, a);
            break;
        case XM_MIG_A_JOURNAL:
            if (!do_journal(side, a->phase, true))
                return;
            break;
        case XM_MIG_A_CHECK_OFFER:
            memset(&hv, 0, sizeof(hv));
            memset(&d, 0, sizeof(d));
            hv.free_kib = 4096;
            if (h->st != C_NONE) {
                d.name = h->name;
                hv.doms = &d;
                hv.n = 1;
            }
            if (fault_now(K_CHECK, side, 1))
                hv.cordoned = true;
            if (xm_mig_offer_check(&offer, &hv, &why) == XM_OK)
                push_ev(h, XM_MIG_EV_CHECK_OK, 0, 0);
            else
                push_ev(h, XM_MIG_EV_CHECK_FAILED, XM_ERR_BUSY, 0);
            break;
        case XM_MIG_A_ARM:
            CU_ASSERT(a->ms > 0);
            h->armed = true;
            h->deadline = W.now + a->ms;
            break;
        case XM_MIG_A_CANCEL_TIMER:
            h->armed = false;
            break;
        case XM_MIG_A_CONNECT:
            if (!W.link_up && W.link_down_left > 0) {
                W.link_down_left--;
                push_ev(h, XM_MIG_EV_LINK_LOST, XM_ERR_IO, 0);
                break;
            }
            if (!W.link_up) {
                W.link_up = true;
                if (peer->have_m)
                    push_ev(peer, XM_MIG_EV_LINK_UP, 0, 0);
            }
            push_ev(h, XM_MIG_EV_LINK_UP, 0, 0);
            break;
        default:
            break;
        }
    }
}

static int
running_copies(void)
{
    return (W.h[0].st == C_RUNNING) + (W.h[1].st == C_RUNNING);
}

static void
step(int side, const struct xm_mig_event *ev)
{
    struct host *h = &W.h[side];
    struct xm_mig_action acts[XM_MIG_ACTIONS_MAX];
    unsigned n = 99;
    int rc;

    if (!h->have_m)
        return;
    rc = xm_mig_step(&h->m, ev, acts, XM_MIG_ACTIONS_MAX, &n);
    CU_ASSERT(rc == XM_OK || rc == XM_ERR_STATE);
    CU_ASSERT(n <= XM_MIG_ACTIONS_MAX);
    W.steps++;
    do_actions(side, acts, n);
    if (running_copies() > 1)
        W.two_running = true;
}

static enum xm_mig_event_type
msg_event(int msg)
{
    switch (msg) {
    case XM_MIG_MSG_OFFER: return XM_MIG_EV_OFFER;
    case XM_MIG_MSG_ACCEPT: return XM_MIG_EV_ACCEPT;
    case XM_MIG_MSG_REJECT: return XM_MIG_EV_REJECT;
    case XM_MIG_MSG_READY: return XM_MIG_EV_READY;
    case XM_MIG_MSG_GO: return XM_MIG_EV_GO;
    case XM_MIG_MSG_DONE: return XM_MIG_EV_DONE;
    case XM_MIG_MSG_ABORT: return XM_MIG_EV_ABORT;
    default: return XM_MIG_EV_COUNT;
    }
}

static void
hostview_of(int side, struct xm_mig_dom *d, struct xm_mig_hostview *hv)
{
    struct host *h = &W.h[side];

    memset(hv, 0, sizeof(*hv));
    memset(d, 0, sizeof(*d));
    if (h->st == C_NONE)
        return;
    d->name = h->name;
    memcpy(d->uuid, "0123456789abcdef", 16);
    d->domid = h->domid;
    d->state = h->st == C_RUNNING ? XM_MIG_DOM_RUNNING
             : h->st == C_PAUSED ? XM_MIG_DOM_PAUSED : XM_MIG_DOM_SUSPENDED;
    hv->doms = d;
    hv->n = 1;
}

static struct xm_journal_rec
rec_of(int side)
{
    struct xm_journal_rec r;

    memset(&r, 0, sizeof(r));
    snprintf(r.id, sizeof(r.id), "m-1");
    r.side = side ? XM_MIG_TARGET : XM_MIG_SOURCE;
    snprintf(r.name, sizeof(r.name), GUEST);
    memcpy(r.uuid, "0123456789abcdef", 16);
    snprintf(r.source, sizeof(r.source), "hostA");
    snprintf(r.target, sizeof(r.target), "hostB");
    r.src_domid = 3;
    r.dst_domid = side ? W.h[1].domid : 0;
    r.phase = W.h[side].phase;
    r.created_s = r.updated_s = 1;
    return r;
}

/* A message to a side: the target answers STATUS_REQ itself. */
static void
deliver(int side, int msg)
{
    struct xm_mig_event ev;

    memset(&ev, 0, sizeof(ev));
    if (msg == XM_MIG_MSG_STATUS_REQ) {
        int st;
        if (W.h[side].have_m) {
            st = (int)xm_mig_peer_status(&W.h[side].m);
        } else {
            struct xm_mig_dom d;
            struct xm_mig_hostview hv;
            struct xm_journal_rec r = rec_of(side);
            hostview_of(side, &d, &hv);
            st = (int)xm_mig_peer_status_lookup(
                W.h[side].phase ? &r : NULL, GUEST, r.uuid, &hv);
        }
        if (W.link_up)
            push_msg(&W.h[!side], -st);
        return;
    }
    if (msg < 0)
        ev.type = xm_mig_status_event(-msg);
    else
        ev.type = msg_event(msg);
    if (ev.type == XM_MIG_EV_COUNT)
        return;
    if (ev.type == XM_MIG_EV_REJECT || ev.type == XM_MIG_EV_ABORT) {
        ev.rc = XM_ERR_CANCELLED;
        ev.text = "peer said no\x01";
    }
    step(side, &ev);
}

static void
crash(int side)
{
    struct host *h = &W.h[side];

    h->have_m = false;
    h->qn = 0;
    h->in = 0;
    h->armed = false;
    h->busy = false;
    link_lost();
    W.link_down_left = 0;
    recover(side);
}

static void
recover(int side)
{
    struct host *h = &W.h[side];
    struct xm_mig_action acts[4], more[XM_MIG_ACTIONS_MAX];
    struct xm_mig_dom d;
    struct xm_mig_hostview hv;
    struct xm_journal_rec r;
    unsigned n = 0, m = 0;
    int rc;

    if (!h->phase)
        return;                     /* nothing was journaled */
    r = rec_of(side);
    hostview_of(side, &d, &hv);
    rc = xm_mig_recover(&r, &hv, acts, 4, &n);
    CU_ASSERT_EQUAL_FATAL(rc, XM_OK);
    for (unsigned i = 0; i < n; i++) {
        if (acts[i].type == XM_MIG_A_ADOPT) {
            CU_ASSERT_EQUAL(acts[i].domid, h->domid);
            rc = xm_mig_adopt(&h->m, &r, NULL, acts[i].state,
                              acts[i].domid, more, XM_MIG_ACTIONS_MAX, &m);
            CU_ASSERT_EQUAL_FATAL(rc, XM_OK);
            h->have_m = true;
            do_actions(side, more, m);
        } else if (acts[i].type == XM_MIG_A_JOURNAL) {
            do_journal(side, acts[i].phase, false);
        } else {
            do_actions(side, &acts[i], 1);
            h->qn = 0;              /* no machine to take the result */
        }
    }
}

/* Finish send/recv in flight.  True when something happened. */
static bool
async_progress(void)
{
    struct host *s = &W.h[0], *t = &W.h[1];

    if (s->busy && (s->cancelled || !W.link_up)) {
        s->busy = false;
        if (!W.link_up && !s->cancelled) {
            s->st = C_SUSPENDED;
            push_ev(s, XM_MIG_EV_SEND_FAILED_SUSPENDED, XM_ERR_IO, 0);
        } else {
            push_ev(s, XM_MIG_EV_SEND_FAILED, XM_ERR_HV, 0);
        }
        if (t->busy) {
            t->busy = false;
            push_ev(t, XM_MIG_EV_RECV_FAILED, XM_ERR_IO, 0);
        }
        return true;
    }
    if (t->busy && (t->cancelled || !W.link_up)) {
        t->busy = false;
        push_ev(t, XM_MIG_EV_RECV_FAILED, XM_ERR_HV, 0);
        return true;
    }
    if (s->busy && t->busy) {
        s->busy = t->busy = false;
        s->st = C_SUSPENDED;
        t->st = C_PAUSED;
        t->domid = 7;
        snprintf(t->name, sizeof(t->name), "%s", GUEST "--incoming");
        push_ev(s, XM_MIG_EV_SEND_DONE, 0, 0);
        push_ev(t, XM_MIG_EV_RECV_DONE, 0, 7);
        return true;
    }
    return false;
}

static void
world_init(const struct fault_spec *f)
{
    struct xm_mig_ident id;

    memset(&W, 0, sizeof(W));
    W.f = *f;
    W.link_up = true;
    memset(&id, 0, sizeof(id));
    snprintf(id.id, sizeof(id.id), "m-1");
    snprintf(id.name, sizeof(id.name), GUEST);
    memcpy(id.uuid, "0123456789abcdef", 16);
    snprintf(id.source, sizeof(id.source), "hostA");
    snprintf(id.target, sizeof(id.target), "hostB");
    id.src_domid = 3;
    CU_ASSERT_EQUAL_FATAL(xm_mig_init(&W.h[0].m, XM_MIG_SOURCE, &id, NULL),
                          XM_OK);
    CU_ASSERT_EQUAL_FATAL(xm_mig_init(&W.h[1].m, XM_MIG_TARGET, &id, NULL),
                          XM_OK);
    W.h[0].have_m = W.h[1].have_m = true;
    W.h[0].st = C_RUNNING;
    W.h[0].domid = 3;
    snprintf(W.h[0].name, sizeof(W.h[0].name), GUEST);
}

/* Run to quiescence.  Returns the source's outcome. */
static void
run(const struct fault_spec *f)
{
    struct xm_mig_event ev = { .type = XM_MIG_EV_START };

    world_init(f);
    step(0, &ev);
    while (W.steps < 3000 && W.now < 6LL * 3600 * 1000) {
        bool did = false;
        if (W.f.kind == K_LINK && W.steps + 1 == W.f.nth && W.link_up) {
            W.hit = true;
            W.hit_after_go = W.h[0].have_m ? W.h[0].m.after_go : true;
            W.link_down_left = W.f.link_down;
            link_lost();
        }
        if (W.f.kind == K_TIMEOUT && W.steps + 1 == W.f.nth &&
            W.h[W.f.side].armed) {
            struct host *h = &W.h[W.f.side];
            W.hit = true;
            W.hit_after_go = W.h[0].have_m ? W.h[0].m.after_go : true;
            h->armed = false;
            push_ev(h, XM_MIG_EV_TIMEOUT, 0, 0);
        }
        for (int s = 0; s < 2 && !did; s++) {
            struct host *h = &W.h[s];
            if (h->qn) {
                ev = h->q[h->qh];
                h->qh = (h->qh + 1) % MAXQ;
                h->qn--;
                step(s, &ev);
                did = true;
            }
        }
        if (did || async_progress())
            continue;
        for (int s = 0; s < 2 && !did; s++) {
            struct host *h = &W.h[s];
            if (h->in) {
                int msg = h->inbox[h->ih];
                h->ih = (h->ih + 1) % MAXQ;
                h->in--;
                deliver(s, msg);
                did = true;
            }
        }
        if (did)
            continue;
        /* Idle: the earliest timer fires. */
        {
            int who = -1;
            for (int s = 0; s < 2; s++)
                if (W.h[s].armed && W.h[s].have_m &&
                    (who < 0 || W.h[s].deadline < W.h[who].deadline))
                    who = s;
            if (who < 0)
                break;
            if (W.h[who].deadline > W.now)
                W.now = W.h[who].deadline;
            W.h[who].armed = false;
            ev.type = XM_MIG_EV_TIMEOUT;
            ev.rc = 0;
            step(who, &ev);
        }
    }
}

static enum xm_mig_outcome
src_outcome(void)
{
    struct xm_mig_result res;

    xm_mig_result(&W.h[0].m, &res);
    return res.outcome;
}

/* The invariant, and that the outcome says what the hosts show. */
static void
check_invariant(const char *what)
{
    struct host *s = &W.h[0], *t = &W.h[1];
    struct xm_mig_result rs, rt;
    int run_n = running_copies();
    bool ok = true;

    xm_mig_result(&s->m, &rs);
    xm_mig_result(&t->m, &rt);
    if (W.two_running || s->bad_op || t->bad_op)
        ok = false;
    if (!s->have_m) {
        /* recovered without a machine: the hosts must say it */
        ok = ok && run_n == 1;
    } else {
        switch (rs.outcome) {
        case XM_MIG_OK:
            ok = ok && run_n == 1 && t->st == C_RUNNING &&
                 strcmp(t->name, GUEST) == 0 &&
                 (s->st == C_NONE || (rs.leftover && s->st != C_RUNNING));
            break;
        case XM_MIG_FAILED_BEFORE:
        case XM_MIG_FAILED_AFTER:
            ok = ok && run_n == 1 && s->st == C_RUNNING &&
                 (rs.name_stuck || strcmp(s->name, GUEST) == 0) &&
                 t->st != C_RUNNING;
            break;
        case XM_MIG_UNRESOLVED:
            /* ours held suspended; there it runs, or is gone */
            ok = ok && s->st == C_SUSPENDED &&
                 strcmp(s->name, GUEST XM_MIG_SUFFIX_AWAY) == 0 &&
                 (t->st == C_NONE || t->st == C_RUNNING);
            break;
        case XM_MIG_BROKEN:
            ok = ok && run_n == 0 && s->st == C_SUSPENDED &&
                 t->st != C_RUNNING;
            break;
        default:
            ok = false;
            break;
        }
        if (rs.outcome == XM_MIG_OK && t->have_m)
            ok = ok && rt.outcome == XM_MIG_OK;
        if (rs.outcome != XM_MIG_OK && rs.outcome != XM_MIG_PENDING)
            ok = ok && rs.rc != XM_OK && rs.why[0] != '\0';
    }
    if (!ok)
        fprintf(stderr, "\n%s: kind %d side %d n %u: src %s/%s tgt %s/%s "
                "copies src %d '%s' tgt %d '%s' bad %d/%d two %d\n", what,
                W.f.kind, W.f.side, W.f.nth,
                xm_mig_state_name(s->m.state),
                xm_mig_outcome_name(rs.outcome),
                xm_mig_state_name(t->m.state),
                xm_mig_outcome_name(rt.outcome), s->st, s->name, t->st,
                t->name, s->bad_op, t->bad_op, W.two_running);
    CU_ASSERT(ok);
}

static void
test_happy_path(void)
{
    struct fault_spec f = { K_NONE, 0, 0, 0 };
    struct xm_mig_result r;

    run(&f);
    check_invariant("happy");
    CU_ASSERT_EQUAL(W.h[0].m.state, XM_MIG_S_MIGRATED);
    CU_ASSERT_EQUAL(W.h[1].m.state, XM_MIG_T_MIGRATED);
    xm_mig_result(&W.h[0].m, &r);
    CU_ASSERT_EQUAL(r.outcome, XM_MIG_OK);
    CU_ASSERT_EQUAL(r.rc, XM_OK);
    CU_ASSERT(!r.leftover);
    CU_ASSERT_EQUAL(W.h[0].st, C_NONE);
    CU_ASSERT_EQUAL(W.h[1].st, C_RUNNING);
    CU_ASSERT_STRING_EQUAL(W.h[1].name, GUEST);
    CU_ASSERT_EQUAL(W.h[0].phase, XM_JP_DONE);
    CU_ASSERT_EQUAL(W.h[1].phase, XM_JP_DONE);
    CU_ASSERT_EQUAL(W.h[0].n_journal, 3);   /* sending, go, done */
    CU_ASSERT_EQUAL(W.h[1].n_journal, 4);   /* receiving..done */
    CU_ASSERT(W.steps < 40);
}

/* Loop n over every step of a run (the fault may not apply at some n:
 * no timer armed then); count the runs it fired in. */
static unsigned
sweep2(enum fkind kind, int side, unsigned link_down, unsigned also,
       unsigned *before_r, unsigned *after_r, unsigned *classes_r)
{
    unsigned runs = 0;

    for (unsigned n = 1; n < 80; n++) {
        struct fault_spec f = { kind, side, n, link_down, also ? n + also
                                                               : 0 };
        enum xm_mig_outcome o;
        run(&f);
        if (!W.hit)
            continue;
        runs++;
        check_invariant("sweep");
        o = src_outcome();
        if (W.h[0].have_m)
            *classes_r |= 1u << o;
        if (!W.hit_after_go)
            (*before_r)++;
        else
            (*after_r)++;
        /* The class says on which side of GO the source ended. */
        if (W.h[0].have_m && (o == XM_MIG_FAILED_BEFORE ||
                              o == XM_MIG_FAILED_AFTER)) {
            if ((o == XM_MIG_FAILED_BEFORE) == W.h[0].m.after_go) {
                fprintf(stderr, "\nclass: kind %d side %d n %u: %s\n",
                        kind, side, n, xm_mig_outcome_name(o));
                CU_FAIL("failure class does not match the point of "
                        "no return");
            }
        }
        /* A fault the source saw before GO never moves the guest
         * unless the source went past GO after it. */
        if (W.h[0].have_m && !W.hit_after_go && !W.h[0].m.after_go)
            CU_ASSERT(o == XM_MIG_FAILED_BEFORE || o == XM_MIG_BROKEN);
        if (W.hit_after_go)
            CU_ASSERT(o != XM_MIG_FAILED_BEFORE || !W.h[0].have_m);
        if (o == XM_MIG_BROKEN)
            CU_ASSERT(kind == K_HV && side == 0 && also);
        if (o == XM_MIG_UNRESOLVED)
            CU_ASSERT(kind == K_LINK && link_down > 1000);
    }
    return runs;
}

static unsigned
sweep(enum fkind kind, int side, unsigned link_down, unsigned *before_r,
      unsigned *after_r, unsigned *classes_r)
{
    return sweep2(kind, side, link_down, 0, before_r, after_r, classes_r);
}

static void
test_fault_every_hv_result(void)
{
    unsigned b = 0, a = 0, cl = 0;

    /* source: send, rename away, destroy; target: receive, rename,
     * unpause (each failure adds its own rollback ops) */
    CU_ASSERT_EQUAL(sweep(K_HV, 0, 0, &b, &a, &cl), 3);
    CU_ASSERT_EQUAL(sweep(K_HV, 1, 0, &b, &a, &cl), 3);
    CU_ASSERT_EQUAL(sweep(K_SEND_SUSP, 0, 0, &b, &a, &cl), 1);
    CU_ASSERT(b > 0 && a > 0);
    CU_ASSERT(cl & (1u << XM_MIG_FAILED_AFTER));
    CU_ASSERT(cl & (1u << XM_MIG_FAILED_BEFORE));
    CU_ASSERT_FALSE(cl & (1u << XM_MIG_BROKEN));
    /* and the op after the failed one fails too (a rollback's rename
     * or resume): a failed resume leaves no running copy, BROKEN */
    CU_ASSERT(sweep2(K_HV, 0, 0, 1, &b, &a, &cl) >= 3);
    CU_ASSERT(sweep2(K_HV, 1, 0, 1, &b, &a, &cl) >= 3);
    CU_ASSERT(cl & (1u << XM_MIG_BROKEN));
}

static void
test_fault_every_journal_write(void)
{
    unsigned b = 0, a = 0, cl = 0;

    CU_ASSERT_EQUAL(sweep(K_JOURNAL, 0, 0, &b, &a, &cl), 3);
    CU_ASSERT_EQUAL(sweep(K_JOURNAL, 1, 0, &b, &a, &cl), 4);
    CU_ASSERT_EQUAL(sweep(K_CHECK, 1, 0, &b, &a, &cl), 1);
    CU_ASSERT(cl & (1u << XM_MIG_FAILED_BEFORE));
    CU_ASSERT(cl & (1u << XM_MIG_FAILED_AFTER));
}

static void
test_fault_every_message_lost(void)
{
    unsigned b = 0, a = 0, cl = 0;

    CU_ASSERT(sweep(K_MSG, 0, 0, &b, &a, &cl) >= 3);
    CU_ASSERT(sweep(K_MSG, 1, 0, &b, &a, &cl) >= 3);
    CU_ASSERT(cl & (1u << XM_MIG_FAILED_AFTER));
    CU_ASSERT(b > 0 && a > 0);
}

static void
test_fault_every_timeout(void)
{
    unsigned b = 0, a = 0, cl = 0;

    CU_ASSERT(sweep(K_TIMEOUT, 0, 0, &b, &a, &cl) >= 4);
    CU_ASSERT(sweep(K_TIMEOUT, 1, 0, &b, &a, &cl) >= 3);
    CU_ASSERT(b > 0 && a > 0);
}

static void
test_fault_link_lost_everywhere(void)
{
    unsigned b = 0, a = 0, cl = 0;

    /* back at once, after three failed connects, never */
    CU_ASSERT(sweep(K_LINK, 0, 0, &b, &a, &cl) >= 8);
    CU_ASSERT(sweep(K_LINK, 0, 3, &b, &a, &cl) >= 8);
    CU_ASSERT(sweep(K_LINK, 0, 100000, &b, &a, &cl) >= 8);
    CU_ASSERT(cl & (1u << XM_MIG_UNRESOLVED));
    /* a GO lost with the link is sent again after the status */
    CU_ASSERT(cl & (1u << XM_MIG_OK));
    CU_ASSERT(cl & (1u << XM_MIG_FAILED_BEFORE));
}

static void
test_crash_at_every_journal_write(void)
{
    unsigned b = 0, a = 0, cl = 0;

    CU_ASSERT_EQUAL(sweep(K_CRASH_BEFORE, 0, 0, &b, &a, &cl), 3);
    CU_ASSERT_EQUAL(sweep(K_CRASH_AFTER, 0, 0, &b, &a, &cl), 3);
    CU_ASSERT_EQUAL(sweep(K_CRASH_BEFORE, 1, 0, &b, &a, &cl), 4);
    CU_ASSERT_EQUAL(sweep(K_CRASH_AFTER, 1, 0, &b, &a, &cl), 4);
}

/* Unexpected and unknown events in every state: a defined transition
 * (or the state holds), never a crash, and after the point of no
 * return the source's copy is never resumed or destroyed on a guess. */
/* A migration ident of guest name from host "a" to host "b". */
static void
ident_ab(struct xm_mig_ident *id, const char *mid, const char *name)
{
    memset(id, 0, sizeof(*id));
    snprintf(id->id, sizeof(id->id), "%s", mid);
    snprintf(id->name, sizeof(id->name), "%s", name);
    snprintf(id->source, sizeof(id->source), "a");
    snprintf(id->target, sizeof(id->target), "b");
}

static void
test_unexpected_events_every_state(void)
{
    struct xm_mig_ident id;
    struct xm_mig m;
    struct xm_mig_action acts[XM_MIG_ACTIONS_MAX];
    unsigned n, fallbacks = 0;

    ident_ab(&id, "m-2", "db");
    for (int st = 0; st < XM_MIG_STATE_COUNT; st++) {
        enum xm_mig_side side = st < XM_MIG_T_IDLE ? XM_MIG_SOURCE
                                                   : XM_MIG_TARGET;
        bool after_go = st == XM_MIG_S_WAIT_DONE ||
                        st == XM_MIG_S_RECONNECT || st == XM_MIG_S_ASK;
        CU_ASSERT_STRING_NOT_EQUAL(xm_mig_state_name(st), "unknown");
        for (int e = -1; e <= XM_MIG_EV_COUNT + 1; e++) {
            struct xm_mig_event ev = { .type = (enum xm_mig_event_type)e,
                                       .text = "x\n\xff" };
            int rc;
            CU_ASSERT_EQUAL_FATAL(xm_mig_init(&m, side, &id, NULL), XM_OK);
            m.state = (enum xm_mig_state)st;
            rc = xm_mig_step(&m, &ev, acts, XM_MIG_ACTIONS_MAX, &n);
            CU_ASSERT(rc == XM_OK || rc == XM_ERR_STATE);
            CU_ASSERT(n <= XM_MIG_ACTIONS_MAX);
            CU_ASSERT((unsigned)m.state < XM_MIG_STATE_COUNT);
            if (e < 0 || e >= XM_MIG_EV_COUNT) {
                CU_ASSERT_EQUAL(rc, XM_ERR_STATE);
                fallbacks++;
            }
            if (rc == XM_ERR_STATE && m.state != (unsigned)st &&
                m.rc != XM_OK)
                CU_ASSERT(strstr(m.why, "unexpected") != NULL ||
                          m.why[0] != '\0');
            if (!after_go)
                continue;
            for (unsigned i = 0; i < n; i++) {
                if (acts[i].type != XM_MIG_A_HV)
                    continue;
                if (acts[i].op == XM_MIG_OP_DESTROY)
                    CU_ASSERT(e == XM_MIG_EV_DONE ||
                              e == XM_MIG_EV_ST_RUNNING);
                if (acts[i].op == XM_MIG_OP_RENAME)
                    CU_ASSERT(e == XM_MIG_EV_ABORT ||
                              e == XM_MIG_EV_ST_ABSENT);
                CU_ASSERT(acts[i].op != XM_MIG_OP_RESUME);
            }
        }
    }
    CU_ASSERT(fallbacks > 0);
    /* A machine that does not fit the array changes nothing. */
    CU_ASSERT_EQUAL_FATAL(xm_mig_init(&m, XM_MIG_SOURCE, &id, NULL), XM_OK);
    m.state = XM_MIG_S_SENDING;
    {
        struct xm_mig_event ev = { .type = XM_MIG_EV_TIMEOUT };
        CU_ASSERT_EQUAL(xm_mig_step(&m, &ev, acts, 1, &n), XM_ERR_TOOBIG);
        CU_ASSERT_EQUAL(m.state, XM_MIG_S_SENDING);
        CU_ASSERT_EQUAL(n, 0);
    }
    /* A corrupted state is refused. */
    m.state = XM_MIG_T_WAIT_GO;
    {
        struct xm_mig_event ev = { .type = XM_MIG_EV_GO };
        CU_ASSERT_EQUAL(xm_mig_step(&m, &ev, acts, XM_MIG_ACTIONS_MAX, &n),
                        XM_ERR_STATE);
    }
}

static void
test_init_and_names(void)
{
    struct xm_mig_ident id;
    struct xm_mig m;
    struct xm_mig_action acts[XM_MIG_ACTIONS_MAX];
    struct xm_mig_event ev = { .type = XM_MIG_EV_START };
    unsigned n;

    ident_ab(&id, "m.1", "db");
    CU_ASSERT_EQUAL(xm_mig_init(&m, XM_MIG_SOURCE, &id, NULL),
                    XM_ERR_INVAL);
    snprintf(id.id, sizeof(id.id), "m-1");
    snprintf(id.name, sizeof(id.name), "db--incoming");
    CU_ASSERT_EQUAL(xm_mig_init(&m, XM_MIG_TARGET, &id, NULL),
                    XM_ERR_INVAL);
    snprintf(id.name, sizeof(id.name), "db");
    CU_ASSERT_EQUAL(xm_mig_init(&m, (enum xm_mig_side)7, &id, NULL),
                    XM_ERR_INVAL);
    CU_ASSERT_EQUAL(xm_mig_init(&m, XM_MIG_SOURCE, &id, NULL), XM_OK);
    CU_ASSERT_STRING_EQUAL(m.away, "db--migratedaway");
    CU_ASSERT_STRING_EQUAL(m.incoming, "db--incoming");
    CU_ASSERT_STRING_EQUAL(xm_mig_state_name(m.state), "idle");
    CU_ASSERT_STRING_EQUAL(xm_mig_state_name(-1), "unknown");
    CU_ASSERT_EQUAL(xm_mig_step(&m, &ev, acts, XM_MIG_ACTIONS_MAX, &n),
                    XM_OK);
    CU_ASSERT_EQUAL(n, 1);
    CU_ASSERT_EQUAL(acts[0].type, XM_MIG_A_JOURNAL);
    CU_ASSERT_EQUAL(acts[0].phase, XM_JP_SENDING);
    /* Cannot journal: refused before anything was touched. */
    ev.type = XM_MIG_EV_JOURNAL_FAILED;
    ev.rc = XM_ERR_NOSPACE;
    CU_ASSERT_EQUAL(xm_mig_step(&m, &ev, acts, XM_MIG_ACTIONS_MAX, &n),
                    XM_OK);
    CU_ASSERT_EQUAL(m.state, XM_MIG_S_STAYED);
    CU_ASSERT(xm_mig_terminal(&m));
    CU_ASSERT_EQUAL(m.rc, XM_ERR_NOSPACE);
}

/* Where a suspended guest waits on its source migration, and where it
 * does not (not yet streaming, running again, a wait of unknown length,
 * the target side). */
static void
test_source_down_states(void)
{
    static const struct { enum xm_mig_state s; bool down; } tab[] = {
        { XM_MIG_S_IDLE, false }, { XM_MIG_S_OFFERED, false },
        { XM_MIG_S_SENDING, true }, { XM_MIG_S_CANCEL_SEND, true },
        { XM_MIG_S_WAIT_READY, true }, { XM_MIG_S_RENAME_AWAY, true },
        { XM_MIG_S_JOURNAL_GO, true }, { XM_MIG_S_JOURNAL_GO_NOLINK, true },
        { XM_MIG_S_WAIT_DONE, true }, { XM_MIG_S_RECONNECT, false },
        { XM_MIG_S_ASK, false }, { XM_MIG_S_DESTROYING, false },
        { XM_MIG_S_RENAME_BACK, true }, { XM_MIG_S_RESUMING, true },
        { XM_MIG_S_JOURNAL_DONE, false }, { XM_MIG_S_MIGRATED, false },
        { XM_MIG_S_STAYED, false }, { XM_MIG_S_BROKEN, false },
    };
    struct xm_mig_ident id;
    struct xm_mig m;

    ident_ab(&id, "m-1", "db");
    CU_ASSERT_EQUAL_FATAL(xm_mig_init(&m, XM_MIG_SOURCE, &id, NULL), XM_OK);
    for (size_t i = 0; i < sizeof(tab) / sizeof(tab[0]); i++) {
        m.state = tab[i].s;
        CU_ASSERT_EQUAL(xm_mig_source_down(&m), tab[i].down);
    }
    CU_ASSERT_EQUAL_FATAL(xm_mig_init(&m, XM_MIG_TARGET, &id, NULL), XM_OK);
    m.state = XM_MIG_T_WAIT_GO;
    CU_ASSERT_FALSE(xm_mig_source_down(&m));
}

/* The source states whose stream may still be to send (a drain's
 * --parallel counts these), and the rest: every state of the table. */
static void
test_source_streaming_states(void)
{
    struct xm_mig_ident id;
    struct xm_mig m;
    unsigned streaming = 0;

    ident_ab(&id, "m-1", "db");
    CU_ASSERT_EQUAL_FATAL(xm_mig_init(&m, XM_MIG_SOURCE, &id, NULL), XM_OK);
    for (int s = XM_MIG_S_IDLE; s <= XM_MIG_S_BROKEN; s++) {
        bool want = s == XM_MIG_S_IDLE || s == XM_MIG_S_JOURNAL_START ||
                    s == XM_MIG_S_OFFERED || s == XM_MIG_S_SENDING ||
                    s == XM_MIG_S_CANCEL_SEND;

        m.state = s;
        CU_ASSERT_EQUAL(xm_mig_source_streaming(&m), want);
        streaming += xm_mig_source_streaming(&m);
    }
    CU_ASSERT_EQUAL(streaming, 5);
    /* the stream's end frees the slot: SEND_DONE leaves SENDING */
    m.state = XM_MIG_S_WAIT_READY;
    CU_ASSERT_FALSE(xm_mig_source_streaming(&m));
    CU_ASSERT_EQUAL_FATAL(xm_mig_init(&m, XM_MIG_TARGET, &id, NULL), XM_OK);
    m.state = XM_MIG_T_RECEIVING;
    CU_ASSERT_FALSE(xm_mig_source_streaming(&m));
}

/* The streams' holds as a string: "H" held, "." not (four of them). */
static const char *
holds(const struct xm_mig_prio in[4])
{
    static char buf[5];

    for (int i = 0; i < 4; i++)
        buf[i] = in[i].hold ? 'H' : '.';
    buf[4] = '\0';
    return buf;
}

/* Which streams wait (xm_mig_priority): a guest down holds every
 * stream whose guest runs; with none down, the first near its end holds
 * every other whose guest runs, those still in their first pass too
 * (not a guest down longer than the window); each counts for the
 * window. */
static void
test_priority(void)
{
    enum { WIN = 5000 };
    struct xm_mig_prio in[4];
    bool down;
    int64_t next;
    int k;

    /* nothing down or near its end: nothing held, nothing to wait for */
    for (int i = 0; i < 4; i++)
        in[i] = (struct xm_mig_prio){ -1, -1 };
    k = xm_mig_priority(in, 4, 1000, WIN, -1, &down, &next);
    CU_ASSERT_EQUAL(k, -1);
    CU_ASSERT_FALSE(down);
    CU_ASSERT_EQUAL(next, -1);
    CU_ASSERT_STRING_EQUAL(holds(in), "....");

    /* two near their end (the earlier first), one in its first pass */
    in[1] = (struct xm_mig_prio){ -1, 900 };
    in[2] = (struct xm_mig_prio){ -1, 800 };
    k = xm_mig_priority(in, 4, 1000, WIN, -1, &down, &next);
    CU_ASSERT_EQUAL(k, 2);
    CU_ASSERT_FALSE(down);
    CU_ASSERT_STRING_EQUAL(holds(in), "HH.H");
    CU_ASSERT_EQUAL(next, 800 + WIN);

    /* one goes down (near its end before): it holds all the others,
     * and comes before the one that neared its end first */
    in[1] = (struct xm_mig_prio){ 950, 900 };
    k = xm_mig_priority(in, 4, 1000, WIN, -1, &down, &next);
    CU_ASSERT_EQUAL(k, 1);
    CU_ASSERT_TRUE(down);
    CU_ASSERT_STRING_EQUAL(holds(in), "H.HH");
    CU_ASSERT_EQUAL(next, 800 + WIN);

    /* two down: neither is held, the earlier comes first */
    in[3] = (struct xm_mig_prio){ 940, -1 };
    k = xm_mig_priority(in, 4, 1000, WIN, -1, &down, &next);
    CU_ASSERT_EQUAL(k, 3);
    CU_ASSERT_STRING_EQUAL(holds(in), "H.H.");

    /* past the window the downs hold nothing; the one near its end
     * for as long is no longer first, and a guest down is never held */
    k = xm_mig_priority(in, 4, 940 + WIN, WIN, -1, &down, &next);
    CU_ASSERT_EQUAL(k, 1);
    CU_ASSERT_TRUE(down);
    k = xm_mig_priority(in, 4, 950 + WIN, WIN, -1, &down, &next);
    CU_ASSERT_EQUAL(k, -1);
    CU_ASSERT_FALSE(down);
    CU_ASSERT_EQUAL(next, -1);
    CU_ASSERT_STRING_EQUAL(holds(in), "....");

    /* a later one near its end, in its window: held are the others
     * whose guest runs (in[2], long near its end), not the downs */
    in[0] = (struct xm_mig_prio){ -1, 6000 };
    k = xm_mig_priority(in, 4, 6100, WIN, -1, &down, &next);
    CU_ASSERT_EQUAL(k, 0);
    CU_ASSERT_FALSE(down);
    CU_ASSERT_STRING_EQUAL(holds(in), "..H.");

    /* one in its first pass beside it: held too */
    in[2] = (struct xm_mig_prio){ -1, -1 };
    k = xm_mig_priority(in, 4, 6100, WIN, -1, &down, &next);
    CU_ASSERT_EQUAL(k, 0);
    CU_ASSERT_STRING_EQUAL(holds(in), "..H.");
    CU_ASSERT_EQUAL(next, 6000 + WIN);

    /* none at all */
    k = xm_mig_priority(in, 0, 6100, WIN, -1, &down, &next);
    CU_ASSERT_EQUAL(k, -1);
    CU_ASSERT_FALSE(down);
}

/* A guest that runs again here but still resumes (until resume_until)
 * holds every stream whose guest runs, those near their end too, and
 * none comes first; a guest down is never held and still comes first;
 * the resume's end is when the answer changes, and after it the
 * streams are weighed as before. */
static void
test_priority_resuming(void)
{
    enum { WIN = 5000 };
    struct xm_mig_prio in[4];
    bool down;
    int64_t next;
    int k;

    in[0] = (struct xm_mig_prio){ -1, -1 };
    in[1] = (struct xm_mig_prio){ -1, 900 };
    in[2] = (struct xm_mig_prio){ -1, 800 };
    in[3] = (struct xm_mig_prio){ -1, -1 };
    k = xm_mig_priority(in, 4, 1000, WIN, 1400, &down, &next);
    CU_ASSERT_EQUAL(k, -1);
    CU_ASSERT_TRUE(down);
    CU_ASSERT_STRING_EQUAL(holds(in), "HHHH");
    CU_ASSERT_EQUAL(next, 1400);

    /* one goes down meanwhile: it comes first, not held */
    in[3] = (struct xm_mig_prio){ 1100, -1 };
    k = xm_mig_priority(in, 4, 1200, WIN, 1400, &down, &next);
    CU_ASSERT_EQUAL(k, 3);
    CU_ASSERT_TRUE(down);
    CU_ASSERT_STRING_EQUAL(holds(in), "HHH.");
    CU_ASSERT_EQUAL(next, 1400);

    /* the resume is over: as without it */
    in[3] = (struct xm_mig_prio){ -1, -1 };
    k = xm_mig_priority(in, 4, 1400, WIN, 1400, &down, &next);
    CU_ASSERT_EQUAL(k, 2);
    CU_ASSERT_FALSE(down);
    CU_ASSERT_STRING_EQUAL(holds(in), "HH.H");
    CU_ASSERT_EQUAL(next, 800 + WIN);

    /* no stream at all: still "down" while it resumes, then nothing */
    k = xm_mig_priority(in, 0, 1000, WIN, 1400, &down, &next);
    CU_ASSERT_EQUAL(k, -1);
    CU_ASSERT_TRUE(down);
    CU_ASSERT_EQUAL(next, 1400);
    k = xm_mig_priority(in, 0, 1500, WIN, 1400, &down, &next);
    CU_ASSERT_FALSE(down);
    CU_ASSERT_EQUAL(next, -1);
}

/* A target that waits on its source (the stream, GO) and hears its
 * ABORT keeps the source's reason, with the code of a cancel. */
static void
test_target_keeps_source_reason(void)
{
    static const enum xm_mig_state waits[] = {
        XM_MIG_T_RECEIVING, XM_MIG_T_WAIT_GO, XM_MIG_T_GRACE,
    };
    struct xm_mig_action acts[XM_MIG_ACTIONS_MAX];
    struct xm_mig_event ev = { .type = XM_MIG_EV_ABORT,
                               .rc = XM_ERR_CANCELLED,
                               .text = "cancelled by the operator" };
    struct xm_mig_ident id;
    struct xm_mig m;
    unsigned n;

    ident_ab(&id, "m-1", "db");
    for (size_t i = 0; i < sizeof(waits) / sizeof(waits[0]); i++) {
        CU_ASSERT_EQUAL_FATAL(xm_mig_init(&m, XM_MIG_TARGET, &id, NULL),
                              XM_OK);
        m.state = waits[i];
        CU_ASSERT_EQUAL(xm_mig_step(&m, &ev, acts, XM_MIG_ACTIONS_MAX, &n),
                        XM_OK);
        CU_ASSERT_EQUAL(m.rc, XM_ERR_CANCELLED);
        CU_ASSERT_PTR_NOT_NULL(strstr(m.why, "cancelled by the operator"));
        CU_ASSERT_TRUE(m.state == XM_MIG_T_CANCEL_RECV ||
                       m.state == XM_MIG_T_DESTROYING);
    }
}

static void
test_retry_backoff(void)
{
    struct xm_mig_ident id;
    struct xm_mig m;
    struct xm_mig_action acts[XM_MIG_ACTIONS_MAX];
    struct xm_mig_event ev = { .type = XM_MIG_EV_LINK_LOST };
    struct xm_mig_config cfg;
    uint32_t last = 0;
    unsigned n;

    ident_ab(&id, "m-1", "db");
    xm_mig_config_default(&cfg);
    cfg.retry_min_ms = 100;
    cfg.retry_max_ms = 1000;
    CU_ASSERT_EQUAL(xm_mig_init(&m, XM_MIG_SOURCE, &id, &cfg), XM_OK);
    m.state = XM_MIG_S_RECONNECT;
    for (int i = 0; i < 10; i++) {
        CU_ASSERT_EQUAL(xm_mig_step(&m, &ev, acts, XM_MIG_ACTIONS_MAX, &n),
                        XM_OK);
        CU_ASSERT_EQUAL(n, 1);
        CU_ASSERT_EQUAL(acts[0].type, XM_MIG_A_ARM);
        CU_ASSERT(acts[0].ms >= last && acts[0].ms <= 1000);
        last = acts[0].ms;
    }
    CU_ASSERT_EQUAL(last, 1000);
    CU_ASSERT_EQUAL(m.state, XM_MIG_S_RECONNECT);
}

static void
test_uuid_wire(void)
{
    static const char *const bad[] = {
        "", "00112233445566778899aabbccddeef",
        "00112233445566778899AABBCCDDEEFF",
        "00112233445566778899aabbccddeeff0",
        "0011223344556677-899aabbccddeeff",
        "00112233-4455-6677-8899-aabbccddeeff",
    };
    uint8_t u[16], v[16];
    char hex[33];

    for (unsigned i = 0; i < 16; i++)
        u[i] = (uint8_t)(i * 17);
    xm_mig_uuid_hex(u, hex);
    CU_ASSERT_STRING_EQUAL(hex, "00112233445566778899aabbccddeeff");
    CU_ASSERT_EQUAL(xm_mig_uuid_parse(hex, v), XM_OK);
    CU_ASSERT_EQUAL(memcmp(u, v, 16), 0);
    for (unsigned i = 0; i < sizeof(bad) / sizeof(*bad); i++)
        CU_ASSERT_EQUAL(xm_mig_uuid_parse(bad[i], v), XM_ERR_INVAL);
}

/* The operator's cancel (or the progress watchdog) reaches the source
 * as a timeout with its reason: the migration rolls back saying so, not
 * "unexpected timeout". */
static void
test_own_abort_keeps_reason(void)
{
    static const enum xm_mig_state states[] = {
        XM_MIG_S_OFFERED, XM_MIG_S_SENDING, XM_MIG_S_WAIT_READY,
    };
    struct xm_mig_event ev = {
        .type = XM_MIG_EV_TIMEOUT, .rc = XM_ERR_CANCELLED,
        .text = "cancelled by the operator",
    };
    struct xm_mig_action acts[XM_MIG_ACTIONS_MAX];
    struct xm_mig_ident id;
    struct xm_mig m;
    unsigned n;

    ident_ab(&id, "m-4", GUEST);
    for (unsigned i = 0; i < 3; i++) {
        CU_ASSERT_EQUAL_FATAL(xm_mig_init(&m, XM_MIG_SOURCE, &id, NULL),
                              XM_OK);
        m.state = states[i];
        /* a state's fallback row: taken, and said so */
        CU_ASSERT_EQUAL(xm_mig_step(&m, &ev, acts, XM_MIG_ACTIONS_MAX, &n),
                        XM_ERR_STATE);
        CU_ASSERT_NOT_EQUAL(m.state, states[i]);
        CU_ASSERT_STRING_EQUAL(m.why, "cancelled by the operator");
        CU_ASSERT_EQUAL(m.rc, XM_ERR_CANCELLED);
    }
    /* a plain timer timeout still names itself */
    ev.text = NULL;
    ev.rc = 0;
    CU_ASSERT_EQUAL_FATAL(xm_mig_init(&m, XM_MIG_SOURCE, &id, NULL), XM_OK);
    m.state = XM_MIG_S_SENDING;
    CU_ASSERT_EQUAL(xm_mig_step(&m, &ev, acts, XM_MIG_ACTIONS_MAX, &n),
                    XM_ERR_STATE);
    CU_ASSERT_PTR_NOT_NULL(strstr(m.why, "timeout"));
}

/* The target aborts while the source sends or waits for READY (its
 * restore failed, e.g. on a stream block that did not decode): the
 * source rolls back with the target's reason, and sends no ABORT back. */
static void
test_target_abort_keeps_reason(void)
{
    static const enum xm_mig_state states[] = {
        XM_MIG_S_SENDING, XM_MIG_S_WAIT_READY,
    };
    static const enum xm_mig_state next[] = {
        XM_MIG_S_CANCEL_SEND, XM_MIG_S_RESUMING,
    };
    static const enum xm_mig_hvop ops[] = {
        XM_MIG_OP_CANCEL_SEND, XM_MIG_OP_RESUME,
    };
    struct xm_mig_event ev = {
        .type = XM_MIG_EV_ABORT, .rc = XM_ERR_PROTO,
        .text = "receive-failed: bad stream data from a: zstd frame",
    };
    struct xm_mig_action acts[XM_MIG_ACTIONS_MAX];
    struct xm_mig_ident id;
    struct xm_mig m;
    unsigned n;

    ident_ab(&id, "m-3", GUEST);
    id.src_domid = 7;
    for (unsigned i = 0; i < 2; i++) {
        bool hv = false;

        CU_ASSERT_EQUAL_FATAL(xm_mig_init(&m, XM_MIG_SOURCE, &id, NULL),
                              XM_OK);
        m.state = states[i];
        CU_ASSERT_EQUAL(xm_mig_step(&m, &ev, acts, XM_MIG_ACTIONS_MAX, &n),
                        XM_OK);
        CU_ASSERT_EQUAL(m.state, next[i]);
        CU_ASSERT_STRING_EQUAL(m.why, "abort: receive-failed: bad stream "
                               "data from a: zstd frame");
        for (unsigned k = 0; k < n; k++) {
            CU_ASSERT_FALSE(acts[k].type == XM_MIG_A_SEND);
            if (acts[k].type == XM_MIG_A_HV) {
                CU_ASSERT_EQUAL(acts[k].op, ops[i]);
                hv = true;
            }
        }
        CU_ASSERT_TRUE(hv);
    }
}

static CU_TestInfo mig_tests[] = {
    { "init, names, refusal to start without a journal",
      test_init_and_names },
    { "the source states a suspended guest waits in",
      test_source_down_states },
    { "the source states that may still stream",
      test_source_streaming_states },
    { "which streams wait while a guest is down or near its end",
      test_priority },
    { "a guest that resumes here holds the other streams",
      test_priority_resuming },
    { "a target keeps its source's reason to abort",
      test_target_keeps_source_reason },
    { "happy path on both sides", test_happy_path },
    { "every hypervisor result fails", test_fault_every_hv_result },
    { "every journal write fails", test_fault_every_journal_write },
    { "every message is lost", test_fault_every_message_lost },
    { "every timer fires early", test_fault_every_timeout },
    { "the link drops at every step", test_fault_link_lost_everywhere },
    { "a crash at every journal write, then recovery",
      test_crash_at_every_journal_write },
    { "the source's own abort keeps its reason",
      test_own_abort_keeps_reason },
    { "unexpected and unknown events in every state",
      test_unexpected_events_every_state },
    { "reconnect back-off", test_retry_backoff },
    { "the uuid's wire form", test_uuid_wire },
    { "a target's ABORT keeps its reason",
      test_target_abort_keeps_reason },
    CU_TEST_INFO_NULL,
};

CU_SuiteInfo xm_test_suites[] = {
    { "migrate", NULL, NULL, NULL, NULL, mig_tests },
    CU_SUITE_INFO_NULL,
};
