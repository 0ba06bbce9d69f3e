/*
 * xm_proto.h -- the agent-to-agent peer protocol codec.
 *
 * Pure code over byte buffers: no sockets, no TLS, no logging.  The
 * transport (xm_tls) moves bytes; this module turns them into checked
 * frames and back.  A stream opens with a fixed-size hello (magic
 * "XENMAINT", protocol version, host name, feature bits) from each
 * side, then carries frames: a 12-byte header {type u16, flags u16,
 * length u32, id u32} in network byte order and a payload.  Every frame
 * has a known type and a payload within that type's limits, or the
 * decoder fails with XM_ERR_PROTO and the caller drops the connection.
 * doc/peer-protocol.md describes the wire format.
 */
#ifndef XM_PROTO_H
#define XM_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- growable byte buffer with a hard cap ---- */

/* data[0..len) holds bytes; alloc is what is allocated; max is the cap
 * that len never passes. */
struct xm_buf {
    uint8_t *data;
    size_t len;
    size_t alloc;
    size_t max;
};

void xm_buf_init(struct xm_buf *b, size_t max);
void xm_buf_dispose(struct xm_buf *b);             /* idempotent */
/* Room for extra more bytes: XM_ERR_TOOBIG past max, XM_ERR_NOMEM. */
int xm_buf_reserve(struct xm_buf *b, size_t extra);
int xm_buf_append(struct xm_buf *b, const void *p, size_t n);
/* Drop the first n bytes (n <= len). */
void xm_buf_consume(struct xm_buf *b, size_t n);
void xm_buf_reset(struct xm_buf *b);               /* len = 0 */

/* ---- network (big-endian) byte order ---- */

static inline void
xm_put_be16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static inline void
xm_put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static inline void
xm_put_be64(uint8_t *p, uint64_t v)
{
    xm_put_be32(p, (uint32_t)(v >> 32));
    xm_put_be32(p + 4, (uint32_t)v);
}

static inline uint16_t
xm_get_be16(const uint8_t *p)
{
    return (uint16_t)((unsigned)p[0] << 8 | p[1]);
}

static inline uint32_t
xm_get_be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
           (uint32_t)p[2] << 8 | p[3];
}

static inline uint64_t
xm_get_be64(const uint8_t *p)
{
    return (uint64_t)xm_get_be32(p) << 32 | xm_get_be32(p + 4);
}

/* ---- wire constants ---- */

#define XM_PROTO_MAGIC "XENMAINT"
#define XM_PROTO_MAGIC_LEN 8
#define XM_PROTO_VERSION_MAJOR 1
#define XM_PROTO_VERSION_MINOR 0

#define XM_PROTO_HELLO_LEN 96         /* fixed size of the hello */
#define XM_PROTO_HOST_MAX 63          /* [A-Za-z0-9._-]{1,63} */
#define XM_PROTO_HEADER_LEN 12
#define XM_PROTO_JSON_MAX (64u * 1024)     /* control payloads */
#define XM_PROTO_STREAM_MAX (1024u * 1024) /* STREAM_DATA chunks */
#define XM_PROTO_TEXT_MAX 1024u       /* text of ERROR/REJECT/ABORT */
/* The largest frame on the wire, header included. */
#define XM_PROTO_FRAME_MAX (XM_PROTO_HEADER_LEN + XM_PROTO_STREAM_MAX)
/* The most a caller may pass to one xm_dec_feed call. */
#define XM_PROTO_FEED_MAX (64u * 1024)

/* Feature bits, offered in the hello; both sides use the intersection.
 * A peer without a bit simply lacks the feature.  Bits this build does
 * not know are never offered, so they drop out of the intersection. */
enum {
    /* STREAM_DATA payloads may carry a compressed block (frame flag
     * XM_FRAME_COMPRESSED, tools/lib/xm_compress.h).  An agent that
     * offers it decodes blocks of every algorithm of block format 1. */
    XM_FEAT_STREAM_COMPRESS = 1u << 0,
    /* With STREAM_COMPRESS: a block may elide the chunk's zero runs
     * (block flag XM_COMP_FLAG_ZERO_RUNS). */
    XM_FEAT_STREAM_ZERO_RUNS = 1u << 1,
    /* With STREAM_COMPRESS: an lz4 block's body may be a bare LZ4 block
     * behind an XXH64 of the raw data (block flag
     * XM_COMP_FLAG_LZ4_BLOCK) rather than an LZ4 frame. */
    XM_FEAT_STREAM_LZ4_BLOCKS = 1u << 2,
    /* The target of a stream says how much of it went to libxl's
     * restore (STREAM_ACK); the source keeps little ahead of that near
     * the stream's end. */
    XM_FEAT_STREAM_ACK = 1u << 3,
};
/* What this build offers. */
#define XM_PROTO_FEATURES ((uint32_t)(XM_FEAT_STREAM_COMPRESS | \
                                      XM_FEAT_STREAM_ZERO_RUNS | \
                                      XM_FEAT_STREAM_LZ4_BLOCKS | \
                                      XM_FEAT_STREAM_ACK))

/* Frame flags.  A flag is allowed only on the types listed for it and
 * only once its feature is negotiated; any other bit is a protocol
 * error. */
enum {
    XM_FRAME_COMPRESSED = 1u << 0,   /* STREAM_DATA, STREAM_COMPRESS */
};

/* Frame types.  Numbers are part of the wire format: never reuse one. */
enum xm_msg_type {
    XM_MSG_HELLO = 1,          /* the banner only; never framed */
    XM_MSG_ERROR = 2,          /* code + text */
    XM_MSG_STATUS_REQ = 3,     /* empty */
    XM_MSG_STATUS_RESP = 4,    /* JSON */
    XM_MSG_MIGRATE_OFFER = 16, /* JSON: guest name, uuid, memory, config */
    XM_MSG_MIGRATE_ACCEPT = 17,/* JSON, may be empty */
    XM_MSG_MIGRATE_REJECT = 18,/* code + text */
    XM_MSG_STREAM_DATA = 19,   /* 1..XM_PROTO_STREAM_MAX opaque bytes */
    XM_MSG_STREAM_END = 20,    /* empty */
    XM_MSG_MIGRATE_GO = 21,    /* JSON, may be empty */
    XM_MSG_MIGRATE_DONE = 22,  /* JSON, may be empty */
    XM_MSG_MIGRATE_ABORT = 23, /* code + text */
    XM_MSG_MIGRATE_READY = 24, /* JSON {"id"}: target holds it all */
    XM_MSG_MIGRATE_STATUS_REQ = 25, /* JSON {"id","name","uuid"} */
    XM_MSG_MIGRATE_STATUS = 26,/* JSON {"id","status"} */
    XM_MSG_MIGRATE_PULL = 27,  /* JSON {"id","home"}: send my guests home */
    XM_MSG_MIGRATE_PULL_RESP = 28, /* JSON: what the peer started */
    XM_MSG_MIGRATE_CANCEL = 29,/* JSON {"id","name","uuid","why"}: a
                                * restarted source that never sent GO */
    XM_MSG_STREAM_ACK = 30,    /* 8 bytes, big-endian: the stream's bytes
                                * the target gave libxl so far (only
                                * with XM_FEAT_STREAM_ACK) */
};

/* "STREAM_DATA", or NULL for a type that is not known. */
const char *xm_msg_name(uint16_t type);
/* Largest payload allowed for type, or 0 when the type is not known
 * (or carries no payload). */
size_t xm_msg_max_len(uint16_t type);

/* A host name as the protocol and the certificates spell it. */
bool xm_proto_host_valid(const char *name);

/* ---- the hello ---- */

struct xm_hello {
    uint16_t major;
    uint16_t minor;
    uint32_t features;
    char host[XM_PROTO_HOST_MAX + 1];
};

/* Append our hello to out.  XM_ERR_INVAL on a bad host name. */
int xm_enc_hello(struct xm_buf *out, const char *host, uint32_t features);
/* Parse a complete hello of XM_PROTO_HELLO_LEN bytes.  XM_ERR_PROTO on
 * bad magic or a malformed field, XM_ERR_UNSUPPORTED on another major
 * version (hello_r is then filled with what the peer sent). */
int xm_hello_decode(const uint8_t *p, size_t len, struct xm_hello *hello_r);
/* The features both sides use. */
uint32_t xm_proto_negotiate(uint32_t ours, uint32_t theirs);

/* ---- frames ---- */

struct xm_frame {
    uint16_t type;
    uint16_t flags;
    uint32_t id;              /* request id; replies echo it */
    uint32_t len;
    const uint8_t *payload;   /* len bytes; see xm_dec_next */
};

/* Append one frame.  XM_ERR_INVAL for an unknown type, HELLO, a flag
 * not allowed, or a payload under the type's minimum; XM_ERR_TOOBIG
 * over its maximum or past out's cap.  features is what was
 * negotiated (it gates the flags).  On error out is unchanged. */
int xm_enc_frame(struct xm_buf *out, uint32_t features, uint16_t type,
                 uint16_t flags, uint32_t id, const void *payload,
                 size_t len);
/* ERROR, MIGRATE_REJECT or MIGRATE_ABORT with a project error code and
 * a text (cut to XM_PROTO_TEXT_MAX bytes at a UTF-8 boundary). */
int xm_enc_error(struct xm_buf *out, uint16_t type, uint32_t id,
                 int32_t code, const char *text);
/* Read the code and text of an ERROR/REJECT/ABORT frame.  The text is
 * copied NUL-terminated into text_r (textsz bytes, cut if needed) with
 * every byte outside printable ASCII replaced by '?', ready to log. */
int xm_frame_error(const struct xm_frame *f, int32_t *code_r,
                   char *text_r, size_t textsz);

/* ---- the incremental decoder ---- */

enum xm_dec_state {
    XM_DEC_HELLO,     /* waiting for the peer's hello */
    XM_DEC_FRAMES,    /* hello seen; frames follow */
    XM_DEC_FAILED,    /* broken stream; every call fails the same */
};

struct xm_dec {
    struct xm_buf in;
    size_t pos;               /* bytes of in already handed out */
    enum xm_dec_state state;
    int rc;                   /* sticky error once FAILED */
    uint32_t local_features;
    uint32_t features;        /* negotiated, valid after the hello */
    struct xm_hello peer;     /* valid after the hello */
    char err[128];            /* what went wrong, for the caller's log */
};

/* local_features: what we offered in our own hello. */
void xm_dec_init(struct xm_dec *d, uint32_t local_features);
void xm_dec_dispose(struct xm_dec *d);             /* idempotent */
/* Hand the decoder len (<= XM_PROTO_FEED_MAX) bytes as they arrive,
 * split anywhere.  Call xm_dec_next until XM_ERR_BUSY after each feed:
 * then the buffer never passes one frame plus one feed.  XM_ERR_TOOBIG
 * if it would, XM_ERR_INVAL when len is over XM_PROTO_FEED_MAX. */
int xm_dec_feed(struct xm_dec *d, const void *data, size_t len);
/* The next complete frame: XM_OK and *frame_r (payload valid until the
 * next call on d); XM_ERR_BUSY when more bytes are needed.  The first
 * frame is always the peer's hello, as type XM_MSG_HELLO (then see
 * d->peer and d->features).  A broken stream gives XM_ERR_PROTO (bad
 * magic, unknown type, bad flags, a length out of the type's bounds) or
 * XM_ERR_UNSUPPORTED (another major version), as soon as the bytes
 * that show it have arrived; xm_dec_error says which.  The caller then
 * drops the connection. */
int xm_dec_next(struct xm_dec *d, struct xm_frame *frame_r);
/* Text for the last failure ("" if none). */
const char *xm_dec_error(const struct xm_dec *d);

#endif /* XM_PROTO_H */
