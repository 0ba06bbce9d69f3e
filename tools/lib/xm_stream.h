/*
 * xm_stream.h -- the migration stream pump between libxl and a peer.
 *
 * A live migration leaves libxl through a local fd: on the source,
 * libxl_domain_suspend (really libxl's save helper, a separate process)
 * writes the stream into one end of a socketpair; on the target,
 * libxl_domain_create_restore reads it from one.  This module holds the
 * agent's end of those socketpairs and moves the bytes to and from the
 * peer connection as STREAM_DATA frames (xm_proto.h):
 *
 *   sender:   fd --read--> xm_stream_out --frames--> peer output buffer
 *   receiver: peer frames --> xm_stream_in --write--> fd
 *
 * Both halves are non-blocking and loop-agnostic: the owner polls the fd
 * for the events the half asks for and calls it when they arrive.  Both
 * apply backpressure.  The sender stops reading while the peer's output
 * buffer holds max_pending bytes or more, so libxl's helper blocks on
 * its side of the socketpair; the receiver's queue is bounded and tells
 * the owner to stop reading the peer while it is full.
 *
 * Each half may carry a per-chunk transform (identity by default): the
 * hook that stream compression (xm_compress.h) plugs into.  The sender
 * marks the frames it transformed with the transform's frame flags; the
 * receiver runs its transform only on frames that carry them, so one
 * stream may mix plain and transformed chunks.  Pure I/O over the fd
 * given; no logging, no TLS.
 */
#ifndef XM_STREAM_H
#define XM_STREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "xm_proto.h"

/* Default size of the sender's reads, and so of STREAM_DATA payloads. */
#define XM_STREAM_CHUNK_DEFAULT (256u * 1024)
/* The largest read: a chunk must fit one compressed block, header in,
 * in a STREAM_DATA payload (XM_COMP_CHUNK_MAX, 1 MiB - 8). */
#define XM_STREAM_CHUNK_MAX (XM_PROTO_STREAM_MAX - 8u)

/*
 * A per-chunk transform.  It appends to out (empty on entry, capped at
 * XM_PROTO_STREAM_MAX bytes: a transform must not expand a chunk past
 * that, whatever a peer sends) what in[0..len) becomes.  Each chunk
 * stands alone: nothing is flushed at the end.  On the sender an empty
 * result passes the chunk through: it goes as a plain frame (no flags),
 * as without the transform (a sender's transform may keep what it
 * cannot shrink for nothing).  It returns
 * XM_OK, or an XM_ERR_* code that fails the stream (XM_ERR_PROTO for a
 * chunk from the peer that does not decode).  frame_flags are the flags
 * of the STREAM_DATA frames the sender makes with it (e.g.
 * XM_FRAME_COMPRESSED, which the encoder allows only when negotiated);
 * on the receiver, the flags a frame must carry to go through it (0:
 * every frame does).
 */
typedef int xm_stream_xform_fn(void *arg, const uint8_t *in, size_t len,
                               struct xm_buf *out);

struct xm_stream_xform {
    xm_stream_xform_fn *fn;     /* NULL: identity */
    void *arg;
    uint16_t frame_flags;
};

/* ---- sender: local fd -> STREAM_DATA frames ---- */

struct xm_stream_out {
    int fd;                     /* owned; -1 once disposed */
    size_t chunk;               /* bytes per read */
    uint8_t *buf;               /* chunk bytes */
    struct xm_buf scratch;      /* transform output */
    struct xm_stream_xform xform;
    bool eof;                   /* read gave 0 */
    bool end_sent;              /* STREAM_END is in the output */
    int err;                    /* errno of the last failure, or 0 */
    uint64_t bytes_in;          /* read from the fd (from libxl) */
    uint64_t bytes_out;         /* frame bytes produced, headers too
                                 * (STREAM_END's included) */
    uint64_t frames;            /* STREAM_DATA frames produced */
    uint64_t frames_xformed;    /* of which went through the transform */
};

/*
 * Take fd (the agent's end of the socketpair libxl writes into; a pipe
 * works too) and make it non-blocking.  chunk is the most read at once,
 * 1..XM_STREAM_CHUNK_MAX, 0 for XM_STREAM_CHUNK_DEFAULT.  On success
 * the stream owns fd; on failure fd is left to the caller.
 */
int xm_stream_out_init(struct xm_stream_out *s, int fd, size_t chunk);
/* Closes the fd.  Idempotent once initialised. */
void xm_stream_out_dispose(struct xm_stream_out *s);
/* NULL restores the identity. */
void xm_stream_out_set_xform(struct xm_stream_out *s,
                             const struct xm_stream_xform *x);

/*
 * Read what the fd has and append a STREAM_DATA frame (with id and the
 * negotiated features) per read to out while out->len < max_pending;
 * after end of file append STREAM_END once, as soon as out->len <
 * max_pending.  out then holds less than max_pending + one frame of
 * XM_PROTO_HEADER_LEN + chunk bytes (XM_PROTO_FRAME_MAX with a
 * transform), which must fit under out->max (else XM_ERR_TOOBIG,
 * nothing read).  Call it on POLLIN and whenever out drains below
 * max_pending (the owner's write path knows when).  Returns
 * XM_OK when it stopped for want of data, room or because it is done;
 * XM_ERR_IO and friends on a read error (s->err has the errno), or the
 * transform's error.  Never blocks.
 */
int xm_stream_out_fill(struct xm_stream_out *s, struct xm_buf *out,
                       uint32_t features, uint32_t id, size_t max_pending);
/* The poll events to wait for on s->fd: POLLIN, or 0 while out holds
 * max_pending bytes or more (call fill again once it drains) and once
 * done. */
short xm_stream_out_events(const struct xm_stream_out *s,
                           const struct xm_buf *out, size_t max_pending);
/* STREAM_END has been appended: nothing more will come. */
bool xm_stream_out_done(const struct xm_stream_out *s);

/* ---- receiver: STREAM_DATA payloads -> local fd ---- */

struct xm_stream_in {
    int fd;                     /* owned; -1 once closed */
    bool is_socket;             /* shutdown(SHUT_WR) rather than close */
    struct xm_buf queue;        /* data[head..len) waits for the fd */
    size_t head;
    size_t max_queued;          /* backpressure bound */
    struct xm_buf scratch;      /* transform output */
    struct xm_stream_xform xform;
    bool ending;                /* STREAM_END seen */
    bool closed;                /* write side shut: libxl saw EOF */
    int err;                    /* errno of the last failure, or 0 */
    uint64_t bytes_in;          /* payload bytes from the peer */
    uint64_t raw_in;            /* the same after the transform: queued
                                 * for libxl */
    uint64_t bytes_out;         /* written to the fd (to libxl) */
    uint64_t frames;            /* STREAM_DATA payloads pushed */
    uint64_t frames_xformed;    /* of which went through the transform */
    bool held;                  /* queue, but write nothing yet */
};

/*
 * Take fd (the agent's end of the socketpair libxl reads from, or a
 * pipe's write end) and make it non-blocking.  max_queued (> 0) is the
 * backpressure bound: the queue holds at most max_queued plus one chunk.
 * On success the stream owns fd; on failure fd is left to the caller.
 */
int xm_stream_in_init(struct xm_stream_in *s, int fd, size_t max_queued);
/* Closes the fd if still open, drops what is queued.  Idempotent. */
void xm_stream_in_dispose(struct xm_stream_in *s);
void xm_stream_in_set_xform(struct xm_stream_in *s,
                            const struct xm_stream_xform *x);

/*
 * Queue the payload of one STREAM_DATA frame with its frame flags (len
 * <= XM_PROTO_STREAM_MAX; 0 is a no-op).  A frame without flags is
 * queued as it is, unless the transform takes every frame (its
 * frame_flags 0); a frame whose flags are exactly the transform's goes
 * through it; any other flags are XM_ERR_PROTO (nothing queued).
 * XM_ERR_STATE after STREAM_END, XM_ERR_TOOBIG when the owner kept
 * pushing while xm_stream_in_full said stop, or the transform's error
 * (nothing queued).  Call xm_stream_in_flush afterwards.
 */
int xm_stream_in_push(struct xm_stream_in *s, uint16_t flags,
                      const uint8_t *payload, size_t len);
/* Stop reading frames from the peer until a flush makes room. */
bool xm_stream_in_full(const struct xm_stream_in *s);
/* Lower the backpressure bound to max_queued (> 0; a higher one is
 * ignored): the owner then asks xm_stream_in_full before the next
 * frame, as after any push. */
void xm_stream_in_lower_bound(struct xm_stream_in *s, size_t max_queued);
/*
 * Write queued bytes as the fd takes them; after STREAM_END, once the
 * queue is empty, shut the write side so libxl sees end of file.
 * XM_OK (maybe with bytes left: wait for POLLOUT), or XM_ERR_IO with
 * s->err = EPIPE when libxl closed its end (it gave up), other write
 * errors likewise.  Never blocks.
 */
int xm_stream_in_flush(struct xm_stream_in *s);
/* STREAM_END arrived: flush, and shut the write side once drained. */
int xm_stream_in_end(struct xm_stream_in *s);
/* POLLOUT while bytes wait (or the shutdown does), else 0. */
short xm_stream_in_events(const struct xm_stream_in *s);
/* Everything written and the write side shut. */
bool xm_stream_in_done(const struct xm_stream_in *s);
/* Bytes queued, not yet written. */
size_t xm_stream_in_queued(const struct xm_stream_in *s);
/*
 * While held, pushed bytes queue (up to the usual bound) but flush
 * writes none and the end of file waits: the owner looks at the first
 * bytes (xm_stream_in_peek) before anyone reads them.  Releasing the
 * hold does not flush; call xm_stream_in_flush.
 */
void xm_stream_in_hold(struct xm_stream_in *s, bool hold);
/* The queued bytes (*len_r of them), not yet written. */
const uint8_t *xm_stream_in_peek(const struct xm_stream_in *s,
                                 size_t *len_r);

/*
 * libxl's migration stream (v2, libxl_sr_stream_format.h) opens with a
 * 16-byte header (ident "LibxlFmt" and version 2, big-endian; options)
 * and the header of its first record, LIBXC_CONTEXT (type 1, length 0,
 * native byte order), after which libxl starts its restore helper.
 * libxl 4.17 must see those bytes before anything goes wrong: a restore
 * whose stream fails (end of file, a bad header) before that helper
 * started calls the helper's unset completion callback and the calling
 * process dies of a NULL call.  The receiver holds its first
 * XM_LIBXL_PREFIX_LEN bytes and checks them here before libxl starts.
 * XM_OK when p[0..len) (len >= XM_LIBXL_PREFIX_LEN) opens such a
 * stream, else XM_ERR_PROTO with the reason in why.
 */
#define XM_LIBXL_PREFIX_LEN 24
int xm_libxl_prefix_check(const uint8_t *p, size_t len, char *why,
                          size_t why_len);

#endif /* XM_STREAM_H */
