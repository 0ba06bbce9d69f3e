/*
 * migexec.h -- the migration executor: runs one xm_mig machine (source
 * or target, tools/lib/xm_migrate.h) against the real interfaces inside
 * the agent's event loop.
 *
 * The machine decides; this module performs.  Messages go to the other
 * agent through a small channel interface that the peer link
 * implements; hypervisor operations go to struct xm_hv (the slow
 * migrate send/receive through a socketpair whose agent end is pumped
 * by xm_stream_out/xm_stream_in into and out of STREAM_DATA frames on
 * the channel, with backpressure both ways); journal phases go to
 * xm_journal_put; the machine's one timer is a loop timer.  Every
 * synchronous result is fed back before any other event, as the
 * machine's contract asks.  When the machine ends, the executor frees
 * its sockets and timer and calls the completion callback once.
 *
 * The owner registers the hypervisor's beforepoll/afterpoll as a loop
 * source (the executor does not: one hv serves many migrations).
 */
#ifndef XM_MIGEXEC_H
#define XM_MIGEXEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "loop.h"
#include "xm_clock.h"
#include "xm_hv.h"
#include "xm_journal.h"
#include "xm_migrate.h"
#include "xm_proto.h"

/* Bytes the channel may hold before the stream sender stops reading. */
#define MIGEXEC_MAX_PENDING (1024u * 1024)
/* The receiver's queue bound before it asks the link to stop reading. */
#define MIGEXEC_MAX_QUEUED (1024u * 1024)

/*
 * The link to the other agent, implemented by the peer link (and by the
 * tests).  A frame sent while the link is down is dropped silently.
 */
struct migexec_chan_ops {
    /* Queue one frame; its payload is copied.  An error means dropped. */
    int (*send)(void *ctx, uint16_t type, const void *payload, size_t len);
    /* Bytes queued towards the peer and not yet written. */
    size_t (*pending)(void *ctx);
    /* Stop (true) or resume (false) delivering frames to the executor:
     * the stream receiver's queue is full. */
    void (*rx_pause)(void *ctx, bool pause);
    /* (Re)connect: XM_OK when up now; XM_ERR_BUSY when under way (the
     * link later calls migexec_on_link); else the attempt failed. */
    int (*connect)(void *ctx);
};

struct migexec_chan {
    const struct migexec_chan_ops *ops;
    void *ctx;
};

struct migexec;

/* outcome, why, bytes: what a drain job reports. */
struct migexec_result {
    struct xm_mig_result mig;   /* why points into the executor */
    uint64_t bytes;             /* stream bytes sent (source) or
                                 * received (target) */
    enum xm_mig_state state;
};

/*
 * Called on every REPORT of the machine.  final is false for an
 * outcome that may still change (XM_MIG_UNRESOLVED: retrying): do not
 * free x then.  With final true the machine has ended and x holds no
 * more resources; the callback may free x (and must not touch it after
 * freeing).  Called from inside the loop, never from migexec_new.
 */
typedef void migexec_done_fn(void *arg, struct migexec *x,
                             const struct migexec_result *res, bool final);

struct migexec_params {
    enum xm_mig_side side;
    struct xm_mig_ident ident;  /* target: see migexec_offer_ident */
    struct xm_mig_config cfg;
    struct xm_hv *hv;           /* borrowed, outlives x */
    struct xm_journal *journal; /* borrowed */
    struct xm_loop *loop;       /* borrowed */
    const struct xm_clock *clock; /* borrowed; wall time for records */
    struct migexec_chan chan;   /* borrowed */
    bool cordoned;              /* target: this host takes no guests */
    migexec_done_fn *done;
    void *arg;
};

/* XM_ERR_INVAL on bad parameters (see xm_mig_init). */
int migexec_new(const struct migexec_params *p, struct migexec **x_r);
/*
 * Accepts NULL.  Must not be called while a migrate send/receive is in
 * flight (migexec_busy): the hypervisor would call back into freed
 * memory.  Closes what the executor still owns.
 */
void migexec_free(struct migexec *x);
bool migexec_busy(const struct migexec *x);

/* Source: begin (journal "sending", then OFFER). */
int migexec_start(struct migexec *x);

/*
 * A frame from the peer for this migration.  XM_ERR_PROTO (malformed
 * payload, another migration's id, a type we do not take): the link
 * should drop the connection and then call migexec_on_link(x, false).
 * The frame's payload is not kept.  May call the done callback.
 */
int migexec_on_frame(struct migexec *x, const struct xm_frame *f);
/* The link came up (again) or was lost.  May call the done callback. */
void migexec_on_link(struct migexec *x, bool up);
/* The channel's queue drained: the stream sender may read again. */
void migexec_on_drain(struct migexec *x);

/* The identity an OFFER carries (target side: to create the executor
 * for it).  XM_ERR_INVAL / XM_ERR_PROTO on a bad offer. */
int migexec_offer_ident(const struct xm_frame *f,
                        struct xm_mig_ident *ident_r);

const struct xm_mig *migexec_machine(const struct migexec *x);
/* Stream bytes so far. */
uint64_t migexec_bytes(const struct migexec *x);

/* Stop a migration before the point of no return (the drain's progress
 * watchdog, Ctrl-C): fed as a timeout with why, so the machine rolls
 * back.  XM_ERR_STATE where that is not possible (after GO, or while a
 * local step runs: try again later).  May call the done callback. */
int migexec_abort(struct migexec *x, const char *why);

/* Recovery: an executor for journal record rec whose machine is
 * adopted into state with our copy at domid (xm_mig_recover said
 * XM_MIG_A_ADOPT).  Nothing runs until migexec_kick, which performs
 * what the adopted state waits on (and may call the done callback). */
int migexec_adopt(const struct migexec_params *p,
                  const struct xm_journal_rec *rec, enum xm_mig_state state,
                  uint32_t domid, struct migexec **x_r);
void migexec_kick(struct migexec *x);

#endif /* XM_MIGEXEC_H */
