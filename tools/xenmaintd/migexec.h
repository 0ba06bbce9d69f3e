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
 * Compression (xm_compress.h): the source sends with the spec it is
 * given when the link negotiated STREAM_COMPRESS, else plain frames;
 * "auto" sends plain frames (chunks of zero pages compressed) while it
 * measures the link and the codecs on the first chunks, then picks.
 * The target decodes every frame
 * flagged COMPRESSED; a block that does not decode ends the restore,
 * so the migration fails before GO with the reason.  Both sides count
 * the stream (libxl's bytes, the wire's) and time the guest's downtime
 * from the final suspend to the target's unpause, each side sending
 * the other its part in the READY, GO and DONE messages.
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
#include "xm_compress.h"
#include "xm_hv.h"
#include "xm_journal.h"
#include "xm_migrate.h"
#include "xm_proto.h"

/* Bytes the channel may hold before the stream sender stops reading. */
#define MIGEXEC_MAX_PENDING (1024u * 1024)
/* The receiver's queue bound before it asks the link to stop reading. */
#define MIGEXEC_MAX_QUEUED (1024u * 1024)
/* Near its end (migexec_endgame_since), a source stream reads no more
 * of libxl's once it is this far ahead of what the target gave libxl's
 * restore (its STREAM_ACKs, XM_FEAT_STREAM_ACK): what is on the way when
 * libxc suspends the guest is restored during its downtime, and the
 * kernels' buffers alone hold megabytes, several times as many of
 * libxl's when compressed. */
#define MIGEXEC_ENDGAME_AHEAD (2u * 1024 * 1024)

/*
 * The link to the other agent, implemented by the peer link (and by the
 * tests).  A frame sent while the link is down is dropped silently.
 */
struct migexec_chan_ops {
    /* Queue one frame; its payload is copied.  An error means dropped
     * (so is a frame with a flag the connection did not negotiate). */
    int (*send)(void *ctx, uint16_t type, uint16_t flags,
                const void *payload, size_t len);
    /* The feature bits the current connection negotiated (hello), 0
     * while down.  May be NULL: no features. */
    uint32_t (*features)(void *ctx);
    /* Bytes queued towards the peer and not yet written. */
    size_t (*pending)(void *ctx);
    /* Stop (true) or resume (false) delivering frames to the executor:
     * the stream receiver's queue is full. */
    void (*rx_pause)(void *ctx, bool pause);
    /* (Re)connect: XM_OK when up now; XM_ERR_BUSY when under way (the
     * link later calls migexec_on_link); else the attempt failed. */
    int (*connect)(void *ctx);
    /* Bytes written that the peer has not acknowledged yet (the
     * kernel's send queue, which grows as TCP opens its window): what
     * left pending is not yet over the link.  May be NULL: 0. */
    size_t (*unacked)(void *ctx);
    /* The migration expects nothing more from the peer (it ended, or
     * the source had DONE): the peer closing the link now is its
     * normal end, not a failure to warn of.  May be NULL. */
    void (*quiet)(void *ctx);
};

struct migexec_chan {
    const struct migexec_chan_ops *ops;
    void *ctx;
};

struct migexec;

/* A figure not known (yet, or at all): see struct migexec_stats. */
#define MIGEXEC_UNKNOWN (-1)
#define MIGEXEC_COMPRESS_MAX 31     /* "zstd:22" and the like */
#define MIGEXEC_COMPRESS_WHY_MAX 191

/*
 * One migration's stream and downtime, as this side knows them.  Bytes
 * count the stream of STREAM_DATA and STREAM_END frames: libxl's as it
 * wrote (source) or read (target) them, the wire's with the 12-byte
 * frame headers (TLS adds its own, not counted).  The downtime runs
 * from the source's final suspend (libxc's "Domain now suspended") to
 * the target's unpause:
 *   stream_tail_ms  suspend -> the target has the whole stream
 *   restore_ms      the rest of the restore once the stream is in
 *                   (libxl's device attach), on the target
 *   handshake_ms    restore complete -> unpaused: READY, GO, the
 *                   journal writes and renames of both sides
 * Each is MIGEXEC_UNKNOWN until known; the tail (and so the total)
 * stays unknown when the source cannot tell when its guest stopped.
 */
struct migexec_stats {
    uint64_t libxl_bytes;
    uint64_t wire_bytes;
    uint64_t frames;            /* STREAM_DATA frames */
    uint64_t frames_compressed; /* of which flagged COMPRESSED */
    uint64_t acked_bytes;       /* of libxl_bytes, what the target last
                                 * said (STREAM_ACK) it gave libxl's
                                 * restore; 0: none said (a peer
                                 * without them) */
    char compress[MIGEXEC_COMPRESS_MAX + 1];   /* "none", "lz4",
                                                * "zstd:3"; "" before
                                                * the stream */
    char compress_why[MIGEXEC_COMPRESS_WHY_MAX + 1];
    int rounds;                 /* precopy rounds (the first full pass
                                 * included), or MIGEXEC_UNKNOWN */
    int64_t downtime_ms, stream_tail_ms, restore_ms, handshake_ms;
};

/* outcome, why, bytes: what a drain job reports. */
struct migexec_result {
    struct xm_mig_result mig;   /* why points into the executor */
    uint64_t bytes;             /* stream bytes from libxl (source) or
                                 * to libxl (target) */
    enum xm_mig_state state;
    struct migexec_stats stats;
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

/*
 * Called when the guest nears its end (source: its stream's first pass
 * over), goes down for this migration or comes back up (target: its
 * stream ended, then it runs here, migexec_unpaused_at, or the move
 * failed), as migexec_endgame_since or migexec_down_since changed,
 * from inside the loop, never after the final report.  x stays valid
 * through the call.
 */
typedef void migexec_down_fn(void *arg, struct migexec *x);

/* Knobs of the stream; 0 in any of them takes its default. */
struct migexec_tuning {
    size_t chunk;               /* bytes per read: 256 KiB, at most
                                 * XM_STREAM_CHUNK_MAX */
    size_t max_pending;         /* MIGEXEC_MAX_PENDING */
    /* auto: the link counts as measured once the channel has held at
     * least max_pending / 2 (the link is the bottleneck) for probe_ms
     * (300) while probe_min_bytes (256 KiB) went out; a stream that
     * sends probe_max_bytes (8 MiB) as is without that (chunks of zero
     * pages, compressed meanwhile, not counted) keeps plain frames
     * (the link keeps up). */
    uint32_t probe_ms;
    uint64_t probe_min_bytes;
    uint64_t probe_max_bytes;
};

struct migexec_params {
    enum xm_mig_side side;
    struct xm_mig_ident ident;  /* target: see migexec_offer_ident */
    struct xm_mig_config cfg;
    struct xm_comp_spec compress;   /* source: what to send with (all
                                     * zero: none) */
    struct migexec_tuning tune;
    struct xm_hv *hv;           /* borrowed, outlives x */
    struct xm_journal *journal; /* borrowed */
    struct xm_loop *loop;       /* borrowed */
    const struct xm_clock *clock; /* borrowed; wall time for records */
    /* Source: libxl's bytes at which the guest nears its suspend (its
     * memory: the first full pass is over, the rounds of dirty pages
     * are short); 0: never said (migexec_endgame_since). */
    uint64_t endgame_bytes;
    struct migexec_chan chan;   /* borrowed */
    bool cordoned;              /* target: this host takes no guests */
    migexec_done_fn *done;
    migexec_down_fn *down;      /* may be NULL */
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
/* Stream bytes so far (libxl's). */
uint64_t migexec_bytes(const struct migexec *x);
/* The stream's figures so far. */
void migexec_stats(const struct migexec *x, struct migexec_stats *st_r);

/*
 * Source: what libxc reported of this migration's live send, relayed by
 * the agent (the reports carry no domain, see xm_progress.h; the agent
 * attributes them).  sending: the live send runs and the guest was not
 * yet seen suspended (the reports that may be ours).  A precopy
 * iteration n (0 the first full pass) was sent; the rounds become
 * unknown for good when a report could have been another migration's;
 * the guest stopped at mono_ms (the executor's clock).
 */
bool migexec_live_sending(const struct migexec *x);
void migexec_note_iteration(struct migexec *x, unsigned n);
void migexec_rounds_unknown(struct migexec *x);
void migexec_note_suspended(struct migexec *x, int64_t mono_ms);

/*
 * Since when (the executor's clock) the guest is down for this
 * migration; -1 when it is not.  Source: libxc suspended it and the
 * machine is in a state where it waits on us (xm_mig_source_down; -1
 * when the suspend was never relayed).  Target: from the stream's end
 * until the guest is unpaused here or the migration ended.
 */
int64_t migexec_down_since(const struct migexec *x);
/*
 * Source: since when the stream's first pass is nearly over (what we
 * read of libxl's is p.endgame_bytes less what libxl may have written
 * ahead of us: libxc's rounds of dirty pages and the suspend come
 * next), until the guest runs again here or there; -1 otherwise.
 */
int64_t migexec_endgame_since(const struct migexec *x);
/* Target: when (the executor's clock) the guest was unpaused here, its
 * migration done; -1 before, and on a source. */
int64_t migexec_unpaused_at(const struct migexec *x);
/*
 * Hold the stream while another migration's guest is down (or nearer
 * its end), so that this host's CPU and link serve that one's tail, its
 * restore and handshake; released, it goes on where it stopped.
 * Source: read no more of libxl's, send nothing; libxl's save just
 * waits on its socket meanwhile (whose buffer shrinks while held, so
 * that it stops within a few pages rather than run on far enough to
 * suspend its own guest).  A link measurement of "auto" in progress
 * starts again once released.  Target: give libxl's restore nothing
 * more (its queue fills, then the link is read no more: the source
 * waits on it).
 */
void migexec_hold(struct migexec *x, bool hold);

/* Stop a migration before the point of no return (the drain's progress
 * watchdog, Ctrl-C): fed as a timeout with why, so the machine rolls
 * back.  XM_ERR_STATE where that is not possible (after GO, or while a
 * local step runs: try again later).  May call the done callback. */
int migexec_abort(struct migexec *x, const char *why);
/* Target: the source restarted and says GO never left (MIGRATE_CANCEL):
 * throw our paused copy away now rather than at the end of the grace
 * time.  Only while we wait for GO (READY sent, the link up or lost);
 * XM_ERR_STATE elsewhere.  May call the done callback. */
int migexec_source_cancel(struct migexec *x, const char *why);

/* Recovery: an executor for journal record rec whose machine is
 * adopted into state with our copy at domid (xm_mig_recover said
 * XM_MIG_A_ADOPT).  Nothing runs until migexec_kick, which performs
 * what the adopted state waits on (and may call the done callback). */
int migexec_adopt(const struct migexec_params *p,
                  const struct xm_journal_rec *rec, enum xm_mig_state state,
                  uint32_t domid, struct migexec **x_r);
void migexec_kick(struct migexec *x);

#endif /* XM_MIGEXEC_H */
