/*
 * xm_stream.c -- the migration stream pump (see xm_stream.h).
 *
 * The sender reads the local fd a chunk at a time into its own buffer
 * and encodes each read as one STREAM_DATA frame straight into the
 * peer's output buffer; the receiver keeps one queue, written from its
 * head, compacted only when the tail needs the room.  Neither half ever
 * blocks: EAGAIN ends a round and the owner waits for the event the
 * half asks for.  Writes to a socket use MSG_NOSIGNAL, so a libxl that
 * went away gives EPIPE, not SIGPIPE (a pipe still raises it: the agent
 * ignores SIGPIPE).  A transform's output (a compressed block, or the
 * chunk a block decodes to) goes through a scratch buffer of the half's,
 * reused from chunk to chunk.
 */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "xm_compress.h"
#include "xm_err.h"
#include "xm_stream.h"

/* A chunk of the largest read must fit one compressed block. */
_Static_assert(XM_STREAM_CHUNK_MAX == XM_COMP_CHUNK_MAX,
               "a stream chunk must fit a compressed block");

static int
set_nonblock(int fd, int *err_r)
{
    int flags = fcntl(fd, F_GETFL);
    int r;

    if (flags < 0) {
        *err_r = errno;
        return xm_err_from_errno(errno);
    }
    if (flags & O_NONBLOCK)
        return XM_OK;
    r = fcntl(fd, F_SETFL, flags | O_NONBLOCK);
    if (r < 0) {
        *err_r = errno;
        return xm_err_from_errno(errno);
    }
    return XM_OK;
}

/* Run the transform over in[0..len); the result is in scratch. */
static int
run_xform(const struct xm_stream_xform *x, struct xm_buf *scratch,
          const uint8_t *in, size_t len)
{
    xm_buf_reset(scratch);
    return x->fn(x->arg, in, len, scratch);
}

/* ---- sender ---- */

int
xm_stream_out_init(struct xm_stream_out *s, int fd, size_t chunk)
{
    int rc;

    memset(s, 0, sizeof(*s));
    s->fd = -1;
    xm_buf_init(&s->scratch, XM_PROTO_STREAM_MAX);
    if (fd < 0 || chunk > XM_STREAM_CHUNK_MAX)
        return XM_ERR_INVAL;
    s->chunk = chunk ? chunk : XM_STREAM_CHUNK_DEFAULT;
    rc = set_nonblock(fd, &s->err);
    if (rc)
        return rc;
    s->buf = malloc(s->chunk);
    if (!s->buf)
        return XM_ERR_NOMEM;
    s->fd = fd;
    return XM_OK;
}

void
xm_stream_out_dispose(struct xm_stream_out *s)
{
    if (s->fd >= 0)
        close(s->fd);
    s->fd = -1;
    free(s->buf);
    s->buf = NULL;
    xm_buf_dispose(&s->scratch);
}

void
xm_stream_out_set_xform(struct xm_stream_out *s,
                        const struct xm_stream_xform *x)
{
    if (x && x->fn)
        s->xform = *x;
    else
        memset(&s->xform, 0, sizeof(s->xform));
}

/* One read's worth of bytes, n > 0, becomes one frame in out. */
static int
out_emit(struct xm_stream_out *s, struct xm_buf *out, uint32_t features,
         uint32_t id, size_t n)
{
    const uint8_t *p = s->buf;
    uint16_t flags = 0;
    size_t before = out->len;
    bool xformed = false;
    int rc;

    if (s->xform.fn) {
        rc = run_xform(&s->xform, &s->scratch, s->buf, n);
        if (rc)
            return rc;
        if (s->scratch.len > 0) {
            xformed = true;
            p = s->scratch.data;
            n = s->scratch.len;
            flags = s->xform.frame_flags;
        }                       /* else: the chunk as a plain frame */
    }
    rc = xm_enc_frame(out, features, XM_MSG_STREAM_DATA, flags, id, p, n);
    if (rc)
        return rc;
    s->bytes_out += out->len - before;
    s->frames++;
    if (xformed)
        s->frames_xformed++;
    return XM_OK;
}

int
xm_stream_out_fill(struct xm_stream_out *s, struct xm_buf *out,
                   uint32_t features, uint32_t id, size_t max_pending)
{
    /* A transform may expand a chunk up to the protocol's limit. */
    size_t room = XM_PROTO_HEADER_LEN +
                  (s->xform.fn ? XM_PROTO_STREAM_MAX : s->chunk);
    ssize_t r;
    int rc;

    assert(s->fd >= 0 && s->buf);
    while (!s->eof && out->len < max_pending) {
        /* Room for the frame first: bytes read must never be lost. */
        rc = xm_buf_reserve(out, room);
        if (rc)
            return rc;
        r = read(s->fd, s->buf, s->chunk);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return XM_OK;
            s->err = errno;
            return xm_err_from_errno(errno);
        }
        if (r == 0) {
            s->eof = true;
            break;
        }
        s->bytes_in += (uint64_t)r;
        rc = out_emit(s, out, features, id, (size_t)r);
        if (rc)
            return rc;
    }
    /* Under max_pending, STREAM_END fits (see the reserve above). */
    if (s->eof && !s->end_sent && out->len < max_pending) {
        size_t before = out->len;

        rc = xm_enc_frame(out, features, XM_MSG_STREAM_END, 0, id, NULL, 0);
        if (rc)
            return rc;
        s->bytes_out += out->len - before;
        s->end_sent = true;
    }
    return XM_OK;
}

short
xm_stream_out_events(const struct xm_stream_out *s,
                     const struct xm_buf *out, size_t max_pending)
{
    if (s->eof || out->len >= max_pending)
        return 0;
    return POLLIN;
}

bool
xm_stream_out_done(const struct xm_stream_out *s)
{
    return s->end_sent;
}

/* ---- receiver ---- */

int
xm_stream_in_init(struct xm_stream_in *s, int fd, size_t max_queued)
{
    struct stat st;
    int rc;

    memset(s, 0, sizeof(*s));
    s->fd = -1;
    xm_buf_init(&s->scratch, XM_PROTO_STREAM_MAX);
    xm_buf_init(&s->queue, 0);
    if (fd < 0 || max_queued == 0 ||
        max_queued > SIZE_MAX / 2 - XM_PROTO_STREAM_MAX)
        return XM_ERR_INVAL;
    if (fstat(fd, &st) < 0) {
        s->err = errno;
        return xm_err_from_errno(errno);
    }
    rc = set_nonblock(fd, &s->err);
    if (rc)
        return rc;
    s->is_socket = S_ISSOCK(st.st_mode);
    s->max_queued = max_queued;
    xm_buf_init(&s->queue, max_queued + XM_PROTO_STREAM_MAX);
    s->fd = fd;
    return XM_OK;
}

void
xm_stream_in_dispose(struct xm_stream_in *s)
{
    if (s->fd >= 0)
        close(s->fd);
    s->fd = -1;
    s->head = 0;
    xm_buf_dispose(&s->queue);
    xm_buf_dispose(&s->scratch);
}

void
xm_stream_in_set_xform(struct xm_stream_in *s,
                       const struct xm_stream_xform *x)
{
    if (x && x->fn)
        s->xform = *x;
    else
        memset(&s->xform, 0, sizeof(s->xform));
}

size_t
xm_stream_in_queued(const struct xm_stream_in *s)
{
    return s->queue.len - s->head;
}

void
xm_stream_in_hold(struct xm_stream_in *s, bool hold)
{
    s->held = hold;
}

const uint8_t *
xm_stream_in_peek(const struct xm_stream_in *s, size_t *len_r)
{
    *len_r = xm_stream_in_queued(s);
    return s->queue.data ? s->queue.data + s->head : NULL;
}

bool
xm_stream_in_full(const struct xm_stream_in *s)
{
    return xm_stream_in_queued(s) >= s->max_queued;
}

void
xm_stream_in_lower_bound(struct xm_stream_in *s, size_t max_queued)
{
    if (max_queued > 0 && max_queued < s->max_queued)
        s->max_queued = max_queued;
}

/* Does a frame with flags go through the transform?  XM_ERR_PROTO for
 * flags that neither the identity nor the transform takes. */
static int
in_route(const struct xm_stream_in *s, uint16_t flags, bool *xform_r)
{
    *xform_r = false;
    if (s->xform.fn && s->xform.frame_flags == 0) {
        *xform_r = true;        /* a transform of every frame */
        return flags == 0 ? XM_OK : XM_ERR_PROTO;
    }
    if (flags == 0)
        return XM_OK;
    if (s->xform.fn && flags == s->xform.frame_flags) {
        *xform_r = true;
        return XM_OK;
    }
    return XM_ERR_PROTO;
}

int
xm_stream_in_push(struct xm_stream_in *s, uint16_t flags,
                  const uint8_t *payload, size_t len)
{
    const uint8_t *p = payload;
    size_t wire_len = len;
    bool xform;
    int rc;

    if (s->ending || s->fd < 0)
        return XM_ERR_STATE;
    if (len > XM_PROTO_STREAM_MAX)
        return XM_ERR_TOOBIG;
    rc = in_route(s, flags, &xform);
    if (rc)
        return rc;
    if (len == 0)
        return XM_OK;
    if (xm_stream_in_full(s))
        return XM_ERR_TOOBIG;
    if (xform) {
        rc = run_xform(&s->xform, &s->scratch, payload, len);
        if (rc)
            return rc;
        p = s->scratch.data;
        len = s->scratch.len;
    }
    /* Written bytes at the front are dead: reuse them before growing. */
    if (s->head > 0 && (s->head >= s->queue.len / 2 ||
                        s->queue.len + len > s->queue.alloc)) {
        xm_buf_consume(&s->queue, s->head);
        s->head = 0;
    }
    if (len) {
        rc = xm_buf_append(&s->queue, p, len);
        if (rc)
            return rc;
    }
    s->bytes_in += wire_len;
    s->raw_in += len;
    s->frames++;
    if (xform)
        s->frames_xformed++;
    return XM_OK;
}

/* Shut the write side: libxl reads end of file. */
static int
in_shut(struct xm_stream_in *s)
{
    int r;

    if (s->is_socket) {
        r = shutdown(s->fd, SHUT_WR);
        if (r < 0 && errno != ENOTCONN) {
            s->err = errno;
            return xm_err_from_errno(errno);
        }
    } else {
        r = close(s->fd);
        s->fd = -1;
        if (r < 0 && errno != EINTR) {
            s->err = errno;
            return xm_err_from_errno(errno);
        }
    }
    s->closed = true;
    return XM_OK;
}

int
xm_stream_in_flush(struct xm_stream_in *s)
{
    ssize_t r;

    if (s->closed)
        return XM_OK;
    if (s->fd < 0)
        return XM_ERR_STATE;
    if (s->held)
        return XM_OK;
    while (s->head < s->queue.len) {
        const uint8_t *p = s->queue.data + s->head;
        size_t n = s->queue.len - s->head;

        if (s->is_socket)
            r = send(s->fd, p, n, MSG_NOSIGNAL);
        else
            r = write(s->fd, p, n);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return XM_OK;
            s->err = errno;
            return xm_err_from_errno(errno);
        }
        s->head += (size_t)r;
        s->bytes_out += (uint64_t)r;
    }
    xm_buf_reset(&s->queue);
    s->head = 0;
    if (s->ending)
        return in_shut(s);
    return XM_OK;
}

int
xm_stream_in_end(struct xm_stream_in *s)
{
    if (s->ending)
        return XM_ERR_STATE;      /* a second STREAM_END */
    s->ending = true;
    return xm_stream_in_flush(s);
}

short
xm_stream_in_events(const struct xm_stream_in *s)
{
    if (s->closed || s->fd < 0 || s->held)
        return 0;
    if (s->head < s->queue.len || s->ending)
        return POLLOUT;
    return 0;
}

bool
xm_stream_in_done(const struct xm_stream_in *s)
{
    return s->closed;
}

/* ---- the opening of libxl's stream ---- */

int
xm_libxl_prefix_check(const uint8_t *p, size_t len, char *why,
                      size_t why_len)
{
    static const uint8_t ident[8] = { 'L', 'i', 'b', 'x', 'l', 'F', 'm',
                                      't' };
    uint32_t version, options, type, length;

    if (len < XM_LIBXL_PREFIX_LEN) {
        snprintf(why, why_len, "%zu bytes, short of libxl's %d-byte "
                 "stream header and first record", len,
                 XM_LIBXL_PREFIX_LEN);
        return XM_ERR_PROTO;
    }
    if (memcmp(p, ident, sizeof(ident))) {
        snprintf(why, why_len, "not a libxl migration stream (no "
                 "'LibxlFmt' ident)");
        return XM_ERR_PROTO;
    }
    version = xm_get_be32(p + 8);
    options = xm_get_be32(p + 12);
    if (version != 2) {
        snprintf(why, why_len, "libxl stream version %" PRIu32 ", not 2",
                 version);
        return XM_ERR_PROTO;
    }
    if (options & 1u) {
        snprintf(why, why_len, "a big-endian libxl stream");
        return XM_ERR_PROTO;
    }
    memcpy(&type, p + 16, sizeof(type));
    memcpy(&length, p + 20, sizeof(length));
    if (type != 1 || length != 0) {
        snprintf(why, why_len, "libxl stream opens with record type "
                 "%" PRIu32 " (length %" PRIu32 "), not LIBXC_CONTEXT",
                 type, length);
        return XM_ERR_PROTO;
    }
    return XM_OK;
}
