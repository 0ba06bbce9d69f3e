/*
 * xm_proto.c -- the peer protocol codec (see xm_proto.h and
 * doc/peer-protocol.md).
 *
 * The decoder checks a frame header as soon as its 12 bytes are in, so
 * an unknown type or an oversized length is refused before any payload
 * is buffered; the hello's magic is checked byte by byte as it arrives.
 * One table, msg_types[], states each type's payload limits and the
 * flags it may carry; the encoder and the decoder both obey it.
 */
#include <assert.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xm_err.h"
#include "xm_proto.h"

/* Hello layout: offsets of the fields. */
enum {
    HELLO_OFF_MAGIC = 0,
    HELLO_OFF_MAJOR = 8,
    HELLO_OFF_MINOR = 10,
    HELLO_OFF_FEATURES = 12,
    HELLO_OFF_HOST = 16,
    HELLO_HOST_FIELD = 64,
    HELLO_OFF_RESERVED = 80,
};

#define CODE_LEN 4u

struct msg_type {
    uint16_t type;
    const char *name;
    uint32_t min_len;
    uint32_t max_len;
    uint16_t flags;           /* flags allowed on this type */
};

static const struct msg_type msg_types[] = {
    { XM_MSG_ERROR, "ERROR", CODE_LEN, CODE_LEN + XM_PROTO_TEXT_MAX, 0 },
    { XM_MSG_STATUS_REQ, "STATUS_REQ", 0, 0, 0 },
    { XM_MSG_STATUS_RESP, "STATUS_RESP", 1, XM_PROTO_JSON_MAX, 0 },
    { XM_MSG_MIGRATE_OFFER, "MIGRATE_OFFER", 1, XM_PROTO_JSON_MAX, 0 },
    { XM_MSG_MIGRATE_ACCEPT, "MIGRATE_ACCEPT", 0, XM_PROTO_JSON_MAX, 0 },
    { XM_MSG_MIGRATE_REJECT, "MIGRATE_REJECT", CODE_LEN,
      CODE_LEN + XM_PROTO_TEXT_MAX, 0 },
    { XM_MSG_STREAM_DATA, "STREAM_DATA", 1, XM_PROTO_STREAM_MAX,
      XM_FRAME_COMPRESSED },
    { XM_MSG_STREAM_END, "STREAM_END", 0, 0, 0 },
    { XM_MSG_MIGRATE_GO, "MIGRATE_GO", 0, XM_PROTO_JSON_MAX, 0 },
    { XM_MSG_MIGRATE_DONE, "MIGRATE_DONE", 0, XM_PROTO_JSON_MAX, 0 },
    { XM_MSG_MIGRATE_READY, "MIGRATE_READY", 1, XM_PROTO_JSON_MAX, 0 },
    { XM_MSG_MIGRATE_STATUS_REQ, "MIGRATE_STATUS_REQ", 1, XM_PROTO_JSON_MAX,
      0 },
    { XM_MSG_MIGRATE_STATUS, "MIGRATE_STATUS", 1, XM_PROTO_JSON_MAX, 0 },
    { XM_MSG_MIGRATE_PULL, "MIGRATE_PULL", 1, XM_PROTO_JSON_MAX, 0 },
    { XM_MSG_MIGRATE_PULL_RESP, "MIGRATE_PULL_RESP", 1, XM_PROTO_JSON_MAX,
      0 },
    { XM_MSG_MIGRATE_CANCEL, "MIGRATE_CANCEL", 1, XM_PROTO_JSON_MAX, 0 },
    { XM_MSG_STREAM_ACK, "STREAM_ACK", 8, 8, 0 },
    { XM_MSG_MIGRATE_ABORT, "MIGRATE_ABORT", CODE_LEN,
      CODE_LEN + XM_PROTO_TEXT_MAX, 0 },
};

#define N_MSG_TYPES (sizeof(msg_types) / sizeof(msg_types[0]))

/* Each flag and the feature that must be negotiated before it is used. */
static const struct {
    uint16_t flag;
    uint32_t feature;
} flag_features[] = {
    { XM_FRAME_COMPRESSED, XM_FEAT_STREAM_COMPRESS },
};

#define N_FLAG_FEATURES (sizeof(flag_features) / sizeof(flag_features[0]))

static const struct msg_type *
msg_type_find(uint16_t type)
{
    for (size_t i = 0; i < N_MSG_TYPES; i++)
        if (msg_types[i].type == type)
            return &msg_types[i];
    return NULL;
}

/* The flags type may carry once features are negotiated. */
static uint16_t
allowed_flags(const struct msg_type *mt, uint32_t features)
{
    uint16_t allowed = 0;

    for (size_t i = 0; i < N_FLAG_FEATURES; i++)
        if ((mt->flags & flag_features[i].flag) &&
            (features & flag_features[i].feature))
            allowed |= flag_features[i].flag;
    return allowed;
}

const char *
xm_msg_name(uint16_t type)
{
    const struct msg_type *mt;

    if (type == XM_MSG_HELLO)
        return "HELLO";
    mt = msg_type_find(type);
    return mt ? mt->name : NULL;
}

size_t
xm_msg_max_len(uint16_t type)
{
    const struct msg_type *mt = msg_type_find(type);

    return mt ? mt->max_len : 0;
}

bool
xm_proto_host_valid(const char *name)
{
    size_t n = 0;

    if (!name)
        return false;
    for (; name[n]; n++) {
        char c = name[n];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                  (c >= '0' && c <= '9') || c == '.' || c == '_' ||
                  c == '-';
        if (!ok || n >= XM_PROTO_HOST_MAX)
            return false;
    }
    return n > 0;
}

uint32_t
xm_proto_negotiate(uint32_t ours, uint32_t theirs)
{
    return ours & theirs;
}

/* ---- xm_buf ---- */

void
xm_buf_init(struct xm_buf *b, size_t max)
{
    b->data = NULL;
    b->len = 0;
    b->alloc = 0;
    b->max = max;
}

void
xm_buf_dispose(struct xm_buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = 0;
    b->alloc = 0;
}

int
xm_buf_reserve(struct xm_buf *b, size_t extra)
{
    size_t want, n;
    uint8_t *p;

    if (extra > b->max || b->len > b->max - extra)
        return XM_ERR_TOOBIG;
    want = b->len + extra;
    if (want <= b->alloc)
        return XM_OK;
    n = b->alloc ? b->alloc : 256;
    while (n < want)
        n = n > b->max / 2 ? b->max : n * 2;
    if (n > b->max)
        n = b->max;
    p = realloc(b->data, n);
    if (!p)
        return XM_ERR_NOMEM;
    b->data = p;
    b->alloc = n;
    return XM_OK;
}

int
xm_buf_append(struct xm_buf *b, const void *p, size_t n)
{
    int rc;

    if (n == 0)
        return XM_OK;
    rc = xm_buf_reserve(b, n);
    if (rc)
        return rc;
    memcpy(b->data + b->len, p, n);
    b->len += n;
    return XM_OK;
}

void
xm_buf_consume(struct xm_buf *b, size_t n)
{
    assert(n <= b->len);
    if (n < b->len)
        memmove(b->data, b->data + n, b->len - n);
    b->len -= n;
}

void
xm_buf_reset(struct xm_buf *b)
{
    b->len = 0;
}

/* ---- the hello ---- */

int
xm_enc_hello(struct xm_buf *out, const char *host, uint32_t features)
{
    uint8_t h[XM_PROTO_HELLO_LEN];

    if (!xm_proto_host_valid(host))
        return XM_ERR_INVAL;
    memset(h, 0, sizeof(h));
    memcpy(h + HELLO_OFF_MAGIC, XM_PROTO_MAGIC, XM_PROTO_MAGIC_LEN);
    xm_put_be16(h + HELLO_OFF_MAJOR, XM_PROTO_VERSION_MAJOR);
    xm_put_be16(h + HELLO_OFF_MINOR, XM_PROTO_VERSION_MINOR);
    xm_put_be32(h + HELLO_OFF_FEATURES, features);
    memcpy(h + HELLO_OFF_HOST, host, strlen(host));
    return xm_buf_append(out, h, sizeof(h));
}

int
xm_hello_decode(const uint8_t *p, size_t len, struct xm_hello *hello_r)
{
    const uint8_t *host = p + HELLO_OFF_HOST;
    size_t n;

    memset(hello_r, 0, sizeof(*hello_r));
    if (len != XM_PROTO_HELLO_LEN)
        return XM_ERR_PROTO;
    if (memcmp(p + HELLO_OFF_MAGIC, XM_PROTO_MAGIC, XM_PROTO_MAGIC_LEN))
        return XM_ERR_PROTO;
    hello_r->major = xm_get_be16(p + HELLO_OFF_MAJOR);
    hello_r->minor = xm_get_be16(p + HELLO_OFF_MINOR);
    hello_r->features = xm_get_be32(p + HELLO_OFF_FEATURES);
    /* Another major version may lay out the rest differently. */
    if (hello_r->major != XM_PROTO_VERSION_MAJOR)
        return XM_ERR_UNSUPPORTED;
    n = strnlen((const char *)host, HELLO_HOST_FIELD);
    if (n > XM_PROTO_HOST_MAX)
        return XM_ERR_PROTO;
    /* NUL padding only after the name. */
    for (size_t i = n; i < HELLO_HOST_FIELD; i++)
        if (host[i])
            return XM_ERR_PROTO;
    memcpy(hello_r->host, host, n);
    hello_r->host[n] = '\0';
    if (!xm_proto_host_valid(hello_r->host))
        return XM_ERR_PROTO;
    /* Reserved bytes: zero when sent, ignored when received, so a
     * later minor version may use them. */
    return XM_OK;
}

/* ---- frames ---- */

int
xm_enc_frame(struct xm_buf *out, uint32_t features, uint16_t type,
             uint16_t flags, uint32_t id, const void *payload,
             size_t len)
{
    const struct msg_type *mt = msg_type_find(type);
    uint8_t h[XM_PROTO_HEADER_LEN];
    int rc;

    if (!mt)
        return XM_ERR_INVAL;
    if (flags & ~allowed_flags(mt, features))
        return XM_ERR_INVAL;
    if (len > mt->max_len)
        return XM_ERR_TOOBIG;
    if (len < mt->min_len || (len && !payload))
        return XM_ERR_INVAL;
    xm_put_be16(h, type);
    xm_put_be16(h + 2, flags);
    xm_put_be32(h + 4, (uint32_t)len);
    xm_put_be32(h + 8, id);
    rc = xm_buf_reserve(out, sizeof(h) + len);
    if (rc)
        return rc;
    xm_buf_append(out, h, sizeof(h));     /* reserved: cannot fail */
    xm_buf_append(out, payload, len);
    return XM_OK;
}

static bool
is_code_text(uint16_t type)
{
    return type == XM_MSG_ERROR || type == XM_MSG_MIGRATE_REJECT ||
           type == XM_MSG_MIGRATE_ABORT;
}

int
xm_enc_error(struct xm_buf *out, uint16_t type, uint32_t id,
             int32_t code, const char *text)
{
    uint8_t p[CODE_LEN + XM_PROTO_TEXT_MAX];
    size_t n = text ? strlen(text) : 0;

    if (!is_code_text(type))
        return XM_ERR_INVAL;
    if (n > XM_PROTO_TEXT_MAX) {
        n = XM_PROTO_TEXT_MAX;
        /* Do not split a UTF-8 sequence: back over continuation bytes
         * to the start of the cut character. */
        while (n > 0 && ((unsigned char)text[n] & 0xc0) == 0x80)
            n--;
    }
    xm_put_be32(p, (uint32_t)code);
    if (n)
        memcpy(p + CODE_LEN, text, n);
    return xm_enc_frame(out, 0, type, 0, id, p, CODE_LEN + n);
}

int
xm_frame_error(const struct xm_frame *f, int32_t *code_r, char *text_r,
               size_t textsz)
{
    size_t n;

    if (!is_code_text(f->type) || f->len < CODE_LEN ||
        f->len > CODE_LEN + XM_PROTO_TEXT_MAX)
        return XM_ERR_PROTO;
    *code_r = (int32_t)xm_get_be32(f->payload);
    if (!text_r || textsz == 0)
        return XM_OK;
    n = f->len - CODE_LEN;
    if (n > textsz - 1)
        n = textsz - 1;
    for (size_t i = 0; i < n; i++) {
        uint8_t c = f->payload[CODE_LEN + i];
        text_r[i] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
    }
    text_r[n] = '\0';
    return XM_OK;
}

/* ---- the decoder ---- */

void
xm_dec_init(struct xm_dec *d, uint32_t local_features)
{
    memset(d, 0, sizeof(*d));
    /* After draining, the buffer holds less than one frame: room for
     * that and one more feed. */
    xm_buf_init(&d->in, XM_PROTO_FRAME_MAX + XM_PROTO_FEED_MAX);
    d->state = XM_DEC_HELLO;
    d->local_features = local_features;
}

void
xm_dec_dispose(struct xm_dec *d)
{
    xm_buf_dispose(&d->in);
    d->pos = 0;
}

static int
dec_fail(struct xm_dec *d, int rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int
dec_fail(struct xm_dec *d, int rc, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(d->err, sizeof(d->err), fmt, ap);
    va_end(ap);
    d->state = XM_DEC_FAILED;
    d->rc = rc;
    return rc;
}

int
xm_dec_feed(struct xm_dec *d, const void *data, size_t len)
{
    int rc;

    if (d->state == XM_DEC_FAILED)
        return d->rc;
    if (len > XM_PROTO_FEED_MAX)
        return XM_ERR_INVAL;
    /* Drop what was handed out; the frame returned last is no longer
     * valid from here on. */
    if (d->pos) {
        xm_buf_consume(&d->in, d->pos);
        d->pos = 0;
    }
    rc = xm_buf_append(&d->in, data, len);
    if (rc == XM_ERR_TOOBIG)
        snprintf(d->err, sizeof(d->err),
                 "input buffer full: frames not drained");
    return rc;
}

static int
dec_hello(struct xm_dec *d, struct xm_frame *frame_r)
{
    const uint8_t *p = d->in.data + d->pos;
    size_t have = d->in.len - d->pos;
    size_t m = have < XM_PROTO_MAGIC_LEN ? have : XM_PROTO_MAGIC_LEN;
    int rc;

    /* Refuse a stranger (an HTTP client, an old agent) at its first
     * wrong byte rather than after 96. */
    if (m && memcmp(p, XM_PROTO_MAGIC, m))
        return dec_fail(d, XM_ERR_PROTO, "bad magic in hello");
    if (have >= HELLO_OFF_MINOR + 2) {
        uint16_t major = xm_get_be16(p + HELLO_OFF_MAJOR);
        if (major != XM_PROTO_VERSION_MAJOR)
            return dec_fail(d, XM_ERR_UNSUPPORTED,
                            "peer speaks protocol version %u.%u, "
                            "we speak %u.%u",
                            major, xm_get_be16(p + HELLO_OFF_MINOR),
                            XM_PROTO_VERSION_MAJOR,
                            XM_PROTO_VERSION_MINOR);
    }
    if (have < XM_PROTO_HELLO_LEN)
        return XM_ERR_BUSY;
    rc = xm_hello_decode(p, XM_PROTO_HELLO_LEN, &d->peer);
    if (rc)
        return dec_fail(d, rc, "malformed hello (host name field)");
    d->features = xm_proto_negotiate(d->local_features, d->peer.features);
    d->state = XM_DEC_FRAMES;
    d->pos += XM_PROTO_HELLO_LEN;
    frame_r->type = XM_MSG_HELLO;
    frame_r->flags = 0;
    frame_r->id = 0;
    frame_r->len = XM_PROTO_HELLO_LEN;
    frame_r->payload = p;
    return XM_OK;
}

static int
dec_frame(struct xm_dec *d, struct xm_frame *frame_r)
{
    const uint8_t *p = d->in.data + d->pos;
    size_t have = d->in.len - d->pos;
    const struct msg_type *mt;
    uint16_t type, flags;
    uint32_t len;

    if (have < XM_PROTO_HEADER_LEN)
        return XM_ERR_BUSY;
    type = xm_get_be16(p);
    flags = xm_get_be16(p + 2);
    len = xm_get_be32(p + 4);
    mt = msg_type_find(type);
    if (!mt)
        return dec_fail(d, XM_ERR_PROTO, "unknown frame type %u",
                        (unsigned)type);
    if (flags & ~allowed_flags(mt, d->features))
        return dec_fail(d, XM_ERR_PROTO, "%s frame with bad flags 0x%x",
                        mt->name, (unsigned)flags);
    if (len > mt->max_len || len < mt->min_len)
        return dec_fail(d, XM_ERR_PROTO,
                        "%s frame of %lu bytes, allowed %lu..%lu",
                        mt->name, (unsigned long)len,
                        (unsigned long)mt->min_len,
                        (unsigned long)mt->max_len);
    if (have - XM_PROTO_HEADER_LEN < len)
        return XM_ERR_BUSY;
    frame_r->type = type;
    frame_r->flags = flags;
    frame_r->len = len;
    frame_r->id = xm_get_be32(p + 8);
    frame_r->payload = p + XM_PROTO_HEADER_LEN;
    d->pos += XM_PROTO_HEADER_LEN + len;
    return XM_OK;
}

int
xm_dec_next(struct xm_dec *d, struct xm_frame *frame_r)
{
    memset(frame_r, 0, sizeof(*frame_r));
    if (d->state != XM_DEC_FAILED && d->pos == d->in.len)
        return XM_ERR_BUSY;           /* nothing buffered (maybe no data) */
    switch (d->state) {
    case XM_DEC_HELLO:
        return dec_hello(d, frame_r);
    case XM_DEC_FRAMES:
        return dec_frame(d, frame_r);
    case XM_DEC_FAILED:
        break;
    }
    return d->rc;
}

const char *
xm_dec_error(const struct xm_dec *d)
{
    return d->err;
}
