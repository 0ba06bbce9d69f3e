/*
 * stream_test.c -- unit tests of the migration stream pump (xm_stream).
 *
 * A few MiB of patterned bytes go from a far-end writer (standing in
 * for libxl's save helper) through a socketpair into the sender, as
 * STREAM_DATA frames through a protocol decoder (standing in for the
 * peer connection, which moves a bounded number of bytes per round),
 * into the receiver and through a second socketpair to a far-end reader
 * (standing in for libxl's restore), all in one small poll() loop.  The
 * tests check the bytes arrive exact, STREAM_END comes once and last,
 * the bounds of both backpressure directions hold, end of file goes
 * through, a reader that gives up shows as EPIPE, and the odd cases:
 * reads of nothing, odd chunk sizes, pipes, the transform hook.  With
 * the compression transforms of xm_compress on both halves, the bytes
 * still arrive exact while fewer go over the wire; the receiver routes
 * frames by their flags and refuses a block that does not decode.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "harness.h"
#include "xm_compress.h"
#include "xm_err.h"
#include "xm_proto.h"
#include "xm_stream.h"

#define STREAM_ID 7u
#define MAX_ROUNDS 2000000
#define STUCK_MS 5000

/* ---- fixture ---- */

static int src_far = -1;           /* the test writes here (libxl) */
static int src_agent = -1;         /* the sender's fd until it owns it */
static int dst_agent = -1;         /* the receiver's fd until it owns it */
static int dst_far = -1;           /* the test reads here (libxl) */
static struct xm_stream_out so;
static struct xm_stream_in si;
static bool so_live, si_live;
static struct xm_buf wire;         /* the peer connection's output */
static struct xm_dec dec;
static bool low_entropy;           /* the stream compresses well */
static bool high_entropy;          /* the stream does not compress */

static void
close_fd(int *fd)
{
    if (*fd >= 0)
        close(*fd);
    *fd = -1;
}

static void
nonblock(int fd)
{
    int flags = fcntl(fd, F_GETFL);

    CU_ASSERT_FATAL(flags >= 0);
    CU_ASSERT_FATAL(fcntl(fd, F_SETFL, flags | O_NONBLOCK) == 0);
}

/* Two channels, as socketpairs or pipes; far ends non-blocking. */
static void
make_channels(bool pipes)
{
    int sv[2];

    if (pipes) {
        CU_ASSERT_FATAL(pipe(sv) == 0);
        src_agent = sv[0];
        src_far = sv[1];
        CU_ASSERT_FATAL(pipe(sv) == 0);
        dst_far = sv[0];
        dst_agent = sv[1];
    } else {
        CU_ASSERT_FATAL(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
        src_far = sv[0];
        src_agent = sv[1];
        CU_ASSERT_FATAL(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
        dst_agent = sv[0];
        dst_far = sv[1];
    }
    nonblock(src_far);
    nonblock(dst_far);
}

static void
start_streams(size_t chunk, size_t max_queued)
{
    CU_ASSERT_EQUAL_FATAL(xm_stream_out_init(&so, src_agent, chunk), XM_OK);
    src_agent = -1;                /* the sender owns it */
    so_live = true;
    CU_ASSERT_EQUAL_FATAL(xm_stream_in_init(&si, dst_agent, max_queued),
                          XM_OK);
    dst_agent = -1;                /* the receiver owns it */
    si_live = true;
}

static void
setup(void)
{
    struct xm_buf hello;
    struct xm_frame f;

    signal(SIGPIPE, SIG_IGN);
    so_live = si_live = false;
    low_entropy = high_entropy = false;
    xm_buf_init(&wire, 64u * 1024 * 1024);
    xm_dec_init(&dec, XM_PROTO_FEATURES);
    /* The decoder wants the peer's hello before any frame. */
    xm_buf_init(&hello, XM_PROTO_HELLO_LEN);
    CU_ASSERT_EQUAL_FATAL(xm_enc_hello(&hello, "source-host",
                                       XM_PROTO_FEATURES), XM_OK);
    CU_ASSERT_EQUAL_FATAL(xm_dec_feed(&dec, hello.data, hello.len), XM_OK);
    CU_ASSERT_EQUAL_FATAL(xm_dec_next(&dec, &f), XM_OK);
    CU_ASSERT_EQUAL_FATAL(f.type, XM_MSG_HELLO);
    xm_buf_dispose(&hello);
}

static void
teardown(void)
{
    if (so_live)
        xm_stream_out_dispose(&so);
    if (si_live)
        xm_stream_in_dispose(&si);
    so_live = si_live = false;
    close_fd(&src_far);
    close_fd(&src_agent);
    close_fd(&dst_agent);
    close_fd(&dst_far);
    xm_dec_dispose(&dec);
    xm_buf_dispose(&wire);
}

/* The byte at offset i of the stream: no short period; or, with
 * low_entropy, runs of 4 KiB of one byte (guest memory is mostly
 * zero pages), with a marker every 1000 bytes; with high_entropy, bytes
 * no codec can shrink. */
static uint8_t
pattern(uint64_t i)
{
    if (low_entropy)
        return i % 1000 == 0 ? (uint8_t)(i >> 3)
                             : (uint8_t)((i >> 12) % 3 ? 0 : i >> 12);
    if (high_entropy) {            /* splitmix64 of the offset */
        uint64_t z = i + 0x9e3779b97f4a7c15ull;

        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
        return (uint8_t)(z ^ (z >> 31));
    }
    return (uint8_t)((i ^ (i >> 8) ^ (i >> 17)) * 167u + 13u);
}

static void
fill_pattern(uint8_t *p, uint64_t off, size_t n)
{
    for (size_t i = 0; i < n; i++)
        p[i] = pattern(off + i);
}

/* ---- a transform for the hook ---- */

static int
xor_xform(void *arg, const uint8_t *in, size_t len, struct xm_buf *out)
{
    uint8_t key = *(const uint8_t *)arg;
    int rc = xm_buf_reserve(out, len);

    if (rc)
        return rc;
    for (size_t i = 0; i < len; i++)
        out->data[out->len + i] = in[i] ^ key;
    out->len += len;
    return XM_OK;
}

static uint8_t xor_key = 0x5a;

/* ---- the pump ---- */

struct pump_cfg {
    uint64_t total;           /* bytes the far writer sends */
    const size_t *wsizes;     /* its write sizes, cycled */
    size_t n_wsizes;
    size_t chunk;             /* the sender's reads */
    size_t max_pending;       /* the sender's bound on the wire */
    size_t max_queued;        /* the receiver's bound */
    size_t wire_rate;         /* wire bytes decoded per round */
    size_t feed;              /* bytes per xm_dec_feed */
    size_t rsize;             /* far reader's reads */
    bool pipes;
    bool xor;                 /* the XOR transform on both halves */
    const struct xm_comp_spec *compress;   /* compression, both halves */
    uint64_t close_reader_at; /* far reader gives up here (0: never) */
};

struct pump_result {
    int rc;                   /* first error of a stream half */
    uint64_t received;        /* bytes the far reader got, all checked */
    bool mismatch;
    bool reader_eof;
    unsigned n_data, n_end;
    bool data_after_end;
    size_t max_wire;          /* largest wire->len seen after a fill */
    size_t max_queue;         /* largest receiver queue seen */
    bool stuck;
};

static const size_t default_wsizes[] = { 65536 };

/* Pull frames while the receiver has room; feed the decoder from the
 * wire (at most *budget bytes) only when it has no whole frame left. */
static void
pump_wire(const struct pump_cfg *cfg, struct pump_result *res,
          size_t *budget, uint64_t *wire_data)
{
    struct xm_frame f;
    int rc;

    while (!xm_stream_in_full(&si) && res->rc == XM_OK) {
        rc = xm_dec_next(&dec, &f);
        if (rc == XM_ERR_BUSY) {
            size_t n = wire.len < cfg->feed ? wire.len : cfg->feed;

            if (n > *budget)
                n = *budget;
            if (n == 0)
                return;
            CU_ASSERT_EQUAL_FATAL(xm_dec_feed(&dec, wire.data, n), XM_OK);
            xm_buf_consume(&wire, n);
            *budget -= n;
            continue;
        }
        CU_ASSERT_EQUAL_FATAL(rc, XM_OK);
        CU_ASSERT_EQUAL(f.id, STREAM_ID);
        if (res->n_end)
            res->data_after_end = true;
        if (f.type == XM_MSG_STREAM_DATA) {
            res->n_data++;
            if (cfg->xor)
                CU_ASSERT_EQUAL(f.payload[0],
                                pattern(*wire_data) ^ xor_key);
            *wire_data += f.len;
            CU_ASSERT_EQUAL(f.flags, cfg->compress ? XM_FRAME_COMPRESSED
                                                   : 0);
            res->rc = xm_stream_in_push(&si, f.flags, f.payload, f.len);
            if (xm_stream_in_queued(&si) > res->max_queue)
                res->max_queue = xm_stream_in_queued(&si);
        } else if (f.type == XM_MSG_STREAM_END) {
            res->n_end++;
            res->rc = xm_stream_in_end(&si);
        } else {
            CU_FAIL("unexpected frame type");
        }
    }
}

static void
run_pump(const struct pump_cfg *cfg, struct pump_result *res)
{
    const size_t *wsizes = cfg->wsizes ? cfg->wsizes : default_wsizes;
    size_t n_wsizes = cfg->wsizes ? cfg->n_wsizes : 1;
    size_t max_w = 0, wi = 0;
    uint64_t written = 0, wire_data = 0;
    uint8_t *wbuf, *rbuf;
    short so_events = 0;
    bool dec_pending = false;      /* frames may wait in the decoder */
    struct xm_stream_xform xf = { xor_xform, &xor_key, 0 };
    struct xm_comp_codec *enc = NULL, *dcd = NULL;
    uint32_t features = 0;

    memset(res, 0, sizeof(*res));
    make_channels(cfg->pipes);
    start_streams(cfg->chunk, cfg->max_queued);
    if (cfg->xor) {
        xm_stream_out_set_xform(&so, &xf);
        xm_stream_in_set_xform(&si, &xf);
    }
    if (cfg->compress) {
        CU_ASSERT_EQUAL_FATAL(xm_comp_codec_new(&enc), XM_OK);
        CU_ASSERT_EQUAL_FATAL(xm_comp_codec_new(&dcd), XM_OK);
        CU_ASSERT_EQUAL_FATAL(xm_comp_codec_set(enc, cfg->compress), XM_OK);
        xm_stream_out_set_xform(&so, &(struct xm_stream_xform){
            xm_comp_xform_encode, enc, XM_FRAME_COMPRESSED });
        xm_stream_in_set_xform(&si, &(struct xm_stream_xform){
            xm_comp_xform_decode, dcd, XM_FRAME_COMPRESSED });
        features = XM_FEAT_STREAM_COMPRESS;
    }
    for (size_t i = 0; i < n_wsizes; i++)
        if (wsizes[i] > max_w)
            max_w = wsizes[i];
    wbuf = malloc(max_w);
    rbuf = malloc(cfg->rsize);
    CU_ASSERT_FATAL(wbuf && rbuf);
    if (cfg->total == 0)
        close_fd(&src_far);

    for (int round = 0; round < MAX_ROUNDS; round++) {
        struct pollfd pfd[4];
        size_t budget = cfg->wire_rate;
        bool busy_elsewhere;
        int r;

        pfd[0].fd = src_far;
        pfd[0].events = POLLOUT;
        pfd[1].fd = so_events ? so.fd : -1;
        pfd[1].events = so_events;
        pfd[2].fd = xm_stream_in_events(&si) ? si.fd : -1;
        pfd[2].events = xm_stream_in_events(&si);
        pfd[3].fd = dst_far;
        pfd[3].events = POLLIN;
        for (int i = 0; i < 4; i++)
            pfd[i].revents = 0;
        /* Work that needs no fd: bytes or frames for a receiver with
         * room, or a sender to refill now the wire drained. */
        busy_elsewhere = ((wire.len > 0 || dec_pending) &&
                          !xm_stream_in_full(&si)) ||
                         (!so_events && !xm_stream_out_done(&so) &&
                          wire.len < cfg->max_pending);
        r = poll(pfd, 4, busy_elsewhere ? 0 : STUCK_MS);
        CU_ASSERT_FATAL(r >= 0 || errno == EINTR);
        if (r == 0 && !busy_elsewhere) {
            res->stuck = true;
            break;
        }

        /* The far writer: libxl's save helper. */
        if (pfd[0].revents & POLLOUT) {
            size_t n = wsizes[wi++ % n_wsizes];
            ssize_t w;

            if (n > cfg->total - written)
                n = (size_t)(cfg->total - written);
            fill_pattern(wbuf, written, n);
            w = write(src_far, wbuf, n);
            CU_ASSERT_FATAL(w >= 0 || errno == EAGAIN);
            if (w > 0)
                written += (uint64_t)w;
            if (written == cfg->total)
                close_fd(&src_far);
        }

        /* The sender: on POLLIN, or once the wire drained. */
        if ((pfd[1].revents & (POLLIN | POLLHUP | POLLERR)) ||
            (!so_events && wire.len < cfg->max_pending)) {
            if (!xm_stream_out_done(&so)) {
                res->rc = xm_stream_out_fill(&so, &wire, features,
                                             STREAM_ID, cfg->max_pending);
                if (res->rc)
                    break;
            }
            if (wire.len > res->max_wire)
                res->max_wire = wire.len;
        }
        so_events = xm_stream_out_events(&so, &wire, cfg->max_pending);

        /* The peer connection, then the receiver. */
        pump_wire(cfg, res, &budget, &wire_data);
        dec_pending = xm_stream_in_full(&si);
        if (res->rc)
            break;
        if (!xm_stream_in_done(&si)) {
            res->rc = xm_stream_in_flush(&si);
            if (res->rc)
                break;
        }

        /* The far reader: libxl's restore. */
        if (pfd[3].revents & (POLLIN | POLLHUP | POLLERR)) {
            ssize_t n = read(dst_far, rbuf, cfg->rsize);

            CU_ASSERT_FATAL(n >= 0 || errno == EAGAIN);
            if (n == 0) {
                res->reader_eof = true;
                break;
            }
            for (ssize_t i = 0; i < n; i++)
                if (rbuf[i] != pattern(res->received + (uint64_t)i))
                    res->mismatch = true;
            if (n > 0)
                res->received += (uint64_t)n;
            if (cfg->close_reader_at &&
                res->received >= cfg->close_reader_at)
                close_fd(&dst_far);
        }
    }
    free(wbuf);
    free(rbuf);
    /* The halves keep pointers to the codecs: the identity again. */
    xm_stream_out_set_xform(&so, NULL);
    xm_stream_in_set_xform(&si, NULL);
    xm_comp_codec_free(enc);
    xm_comp_codec_free(dcd);
}

/* What every complete pump must show. */
static void
check_complete(const struct pump_cfg *cfg, const struct pump_result *res)
{
    size_t frame = XM_PROTO_HEADER_LEN +
                   (cfg->chunk ? cfg->chunk : XM_STREAM_CHUNK_DEFAULT) +
                   (cfg->compress ? XM_COMP_HEADER_LEN : 0);

    CU_ASSERT_FALSE(res->stuck);
    CU_ASSERT_EQUAL(res->rc, XM_OK);
    CU_ASSERT_TRUE(res->reader_eof);
    CU_ASSERT_EQUAL(res->received, cfg->total);
    CU_ASSERT_FALSE(res->mismatch);
    CU_ASSERT_EQUAL(res->n_end, 1);
    CU_ASSERT_FALSE(res->data_after_end);
    CU_ASSERT_TRUE(res->max_wire < cfg->max_pending + frame);
    CU_ASSERT_TRUE(res->max_queue < cfg->max_queued + XM_PROTO_STREAM_MAX);
    CU_ASSERT_TRUE(xm_stream_out_done(&so));
    CU_ASSERT_TRUE(xm_stream_in_done(&si));
    CU_ASSERT_EQUAL(so.bytes_in, cfg->total);
    CU_ASSERT_EQUAL(si.bytes_out, cfg->total);
    CU_ASSERT_EQUAL(si.raw_in, cfg->total);
    CU_ASSERT_EQUAL(so.frames, res->n_data);
    CU_ASSERT_EQUAL(si.frames, res->n_data);
    /* Wire bytes: STREAM_DATA payloads plus every frame's header. */
    CU_ASSERT_EQUAL(so.bytes_out, si.bytes_in +
                    (uint64_t)(res->n_data + 1) * XM_PROTO_HEADER_LEN);
    if (cfg->compress) {
        CU_ASSERT_EQUAL(so.frames_xformed, res->n_data);
        CU_ASSERT_EQUAL(si.frames_xformed, res->n_data);
    } else {
        CU_ASSERT_EQUAL(si.bytes_in, cfg->total);
        CU_ASSERT_EQUAL(so.frames_xformed, cfg->xor ? res->n_data : 0);
    }
    CU_ASSERT_EQUAL(xm_stream_out_events(&so, &wire, cfg->max_pending), 0);
    CU_ASSERT_EQUAL(xm_stream_in_events(&si), 0);
    /* A fill after the end adds nothing: STREAM_END went once. */
    xm_buf_reset(&wire);
    CU_ASSERT_EQUAL(xm_stream_out_fill(&so, &wire, 0, STREAM_ID,
                                       cfg->max_pending), XM_OK);
    CU_ASSERT_EQUAL(wire.len, 0);
}

/* ---- tests ---- */

static void
test_pump_bulk(void)
{
    struct pump_cfg cfg = {
        .total = 4u * 1024 * 1024, .chunk = 0,
        .max_pending = 512u * 1024, .max_queued = 512u * 1024,
        .wire_rate = 256u * 1024, .feed = XM_PROTO_FEED_MAX,
        .rsize = 65536,
    };
    struct pump_result res;

    run_pump(&cfg, &res);
    check_complete(&cfg, &res);
    CU_ASSERT_TRUE(res.n_data >= cfg.total / XM_STREAM_CHUNK_DEFAULT);
}

/* Odd sizes everywhere, a slow wire and a tight receiver bound: both
 * directions of backpressure engage. */
static void
test_pump_odd_sizes(void)
{
    static const size_t ws[] = { 1, 7, 4093, 65537, 333, 12289 };
    struct pump_cfg cfg = {
        .total = 3u * 1024 * 1024 + 17, .wsizes = ws,
        .n_wsizes = sizeof(ws) / sizeof(ws[0]), .chunk = 4093,
        .max_pending = 20000, .max_queued = 10007,
        .wire_rate = 3001, .feed = 1021, .rsize = 997,
    };
    struct pump_result res;

    run_pump(&cfg, &res);
    check_complete(&cfg, &res);
}

static void
test_pump_pipes(void)
{
    static const size_t ws[] = { 511, 8191 };
    struct pump_cfg cfg = {
        .total = 2u * 1024 * 1024 + 3, .wsizes = ws, .n_wsizes = 2,
        .chunk = 65536, .max_pending = 100000, .max_queued = 70000,
        .wire_rate = 50000, .feed = 9999, .rsize = 4096, .pipes = true,
    };
    struct pump_result res;

    run_pump(&cfg, &res);
    check_complete(&cfg, &res);
}

/* The transform hook: frames carry the transformed bytes, the far end
 * gets the original ones. */
static void
test_pump_transform(void)
{
    struct pump_cfg cfg = {
        .total = 1u * 1024 * 1024 + 5, .chunk = 30000,
        .max_pending = 200000, .max_queued = 100000,
        .wire_rate = 40000, .feed = 8000, .rsize = 30000, .xor = true,
    };
    struct pump_result res;

    run_pump(&cfg, &res);
    check_complete(&cfg, &res);
}

/* Compression through the hook: zstd and lz4 blocks on a stream that
 * compresses well (less on the wire than from libxl) and on one that
 * does not (blocks stored: a block header more per frame), odd write
 * sizes, the largest chunk a block holds. */
static void
test_pump_compressed(void)
{
    static const size_t ws[] = { 4093, 65537, 333, 200000 };
    static const struct xm_comp_spec zstd = { false, XM_COMP_ZSTD, 3 };
    static const struct xm_comp_spec lz4 = { false, XM_COMP_LZ4, 0 };
    struct pump_cfg cfg = {
        .total = 6u * 1024 * 1024 + 11, .wsizes = ws, .n_wsizes = 4,
        .chunk = XM_STREAM_CHUNK_MAX, .max_pending = 3u * 1024 * 1024,
        .max_queued = 2u * 1024 * 1024, .wire_rate = 256u * 1024,
        .feed = XM_PROTO_FEED_MAX, .rsize = 65536, .compress = &zstd,
    };
    struct pump_result res;

    low_entropy = true;
    run_pump(&cfg, &res);
    check_complete(&cfg, &res);
    CU_ASSERT_TRUE(res.n_data > 0);
    CU_ASSERT_TRUE(si.bytes_in * 20 < cfg.total);   /* zstd: well over 20x */
    teardown();
    setup();
    low_entropy = true;

    cfg.compress = &lz4;
    cfg.chunk = 65536;
    run_pump(&cfg, &res);
    check_complete(&cfg, &res);
    CU_ASSERT_TRUE(si.bytes_in * 20 < cfg.total);
    teardown();
    setup();

    /* No gain: every block stored, 8 bytes more per frame. */
    low_entropy = false;
    high_entropy = true;
    cfg.total = 1u * 1024 * 1024 + 7;
    run_pump(&cfg, &res);
    check_complete(&cfg, &res);
    CU_ASSERT_EQUAL(si.bytes_in,
                    cfg.total + (uint64_t)res.n_data * XM_COMP_HEADER_LEN);
}

/* The receiver runs its transform on the frames that carry its flags,
 * queues plain ones as they are, and refuses other flags and a block
 * that does not decode (nothing queued, the stream can go on). */
static void
test_receiver_routes_flags(void)
{
    static const struct xm_comp_spec zstd = { false, XM_COMP_ZSTD, 1 };
    struct xm_comp_codec *enc = NULL, *dcd = NULL;
    uint8_t raw[8192], block[8192 + XM_COMP_HEADER_LEN], rd[20000];
    size_t n = 0, got = 0;
    ssize_t r;

    for (size_t i = 0; i < sizeof(raw); i++)
        raw[i] = (uint8_t)(i / 512);
    make_channels(false);
    start_streams(100, 100000);
    CU_ASSERT_EQUAL_FATAL(xm_comp_codec_new(&enc), XM_OK);
    CU_ASSERT_EQUAL_FATAL(xm_comp_codec_new(&dcd), XM_OK);
    CU_ASSERT_EQUAL_FATAL(xm_comp_codec_set(enc, &zstd), XM_OK);
    CU_ASSERT_EQUAL_FATAL(xm_comp_encode(enc, raw, sizeof(raw), block,
                                         sizeof(block), &n), XM_OK);
    CU_ASSERT_TRUE(n < sizeof(raw) / 4);

    /* No transform yet: a flagged frame is refused. */
    CU_ASSERT_EQUAL(xm_stream_in_push(&si, XM_FRAME_COMPRESSED, block, n),
                    XM_ERR_PROTO);
    CU_ASSERT_EQUAL(xm_stream_in_queued(&si), 0);
    xm_stream_in_set_xform(&si, &(struct xm_stream_xform){
        xm_comp_xform_decode, dcd, XM_FRAME_COMPRESSED });
    /* Plain, compressed, plain: in order, exact. */
    CU_ASSERT_EQUAL(xm_stream_in_push(&si, 0, (const uint8_t *)"ab", 2),
                    XM_OK);
    CU_ASSERT_EQUAL(xm_stream_in_push(&si, XM_FRAME_COMPRESSED, block, n),
                    XM_OK);
    CU_ASSERT_EQUAL(xm_stream_in_push(&si, 0, (const uint8_t *)"cd", 2),
                    XM_OK);
    CU_ASSERT_EQUAL(si.frames, 3);
    CU_ASSERT_EQUAL(si.frames_xformed, 1);
    CU_ASSERT_EQUAL(si.bytes_in, 4 + n);
    CU_ASSERT_EQUAL(si.raw_in, 4 + sizeof(raw));
    /* A flag the transform does not take. */
    CU_ASSERT_EQUAL(xm_stream_in_push(&si, 0x8000, block, n), XM_ERR_PROTO);
    CU_ASSERT_EQUAL(xm_stream_in_push(&si, XM_FRAME_COMPRESSED | 0x2,
                                      block, n), XM_ERR_PROTO);
    /* A corrupt block (a byte of the zstd frame flipped) and a
     * truncated one: refused, nothing queued. */
    block[n / 2] ^= 0x40;
    CU_ASSERT_EQUAL(xm_stream_in_push(&si, XM_FRAME_COMPRESSED, block, n),
                    XM_ERR_PROTO);
    block[n / 2] ^= 0x40;
    CU_ASSERT_EQUAL(xm_stream_in_push(&si, XM_FRAME_COMPRESSED, block,
                                      n - 3), XM_ERR_PROTO);
    CU_ASSERT_EQUAL(si.frames, 3);
    CU_ASSERT_EQUAL(xm_stream_in_queued(&si), 4 + sizeof(raw));
    CU_ASSERT_EQUAL(xm_stream_in_end(&si), XM_OK);
    while ((r = read(dst_far, rd + got, sizeof(rd) - got)) > 0)
        got += (size_t)r;
    CU_ASSERT_EQUAL_FATAL(got, 4 + sizeof(raw));
    CU_ASSERT_EQUAL(memcmp(rd, "ab", 2), 0);
    CU_ASSERT_EQUAL(memcmp(rd + 2, raw, sizeof(raw)), 0);
    CU_ASSERT_EQUAL(memcmp(rd + 2 + sizeof(raw), "cd", 2), 0);
    xm_stream_in_set_xform(&si, NULL);
    xm_comp_codec_free(enc);
    xm_comp_codec_free(dcd);
}

/* An empty migration stream: STREAM_END alone, and libxl sees EOF. */
static void
test_pump_empty(void)
{
    struct pump_cfg cfg = {
        .total = 0, .chunk = 1000, .max_pending = 5000,
        .max_queued = 5000, .wire_rate = 100, .feed = 7, .rsize = 10,
    };
    struct pump_result res;

    run_pump(&cfg, &res);
    check_complete(&cfg, &res);
    CU_ASSERT_EQUAL(res.n_data, 0);
}

/* libxl's restore gives up half way: the receiver reports EPIPE. */
static void
test_epipe_when_reader_closes(void)
{
    struct pump_cfg cfg = {
        .total = 4u * 1024 * 1024, .chunk = 0,
        .max_pending = 512u * 1024, .max_queued = 512u * 1024,
        .wire_rate = 256u * 1024, .feed = XM_PROTO_FEED_MAX,
        .rsize = 65536, .close_reader_at = 300000,
    };
    struct pump_result res;

    /* Not ignored here: a write raising SIGPIPE would end the test. */
    signal(SIGPIPE, SIG_DFL);
    run_pump(&cfg, &res);
    signal(SIGPIPE, SIG_IGN);
    CU_ASSERT_FALSE(res.stuck);
    CU_ASSERT_EQUAL(res.rc, XM_ERR_IO);
    CU_ASSERT_EQUAL(si.err, EPIPE);
    CU_ASSERT_FALSE(res.mismatch);
    CU_ASSERT_TRUE(res.received >= cfg.close_reader_at);
    CU_ASSERT_TRUE(res.received < cfg.total);
    CU_ASSERT_FALSE(xm_stream_in_done(&si));
}

/* Nothing to read: no frame (STREAM_DATA is never empty), still POLLIN;
 * an empty write by the far end changes nothing; empty pushes are
 * no-ops. */
static void
test_zero_length(void)
{
    uint8_t b = 0;

    make_channels(false);
    start_streams(100, 1000);
    CU_ASSERT_EQUAL(xm_stream_out_fill(&so, &wire, 0, STREAM_ID, 1000),
                    XM_OK);
    CU_ASSERT_EQUAL(wire.len, 0);
    CU_ASSERT_FALSE(xm_stream_out_done(&so));
    CU_ASSERT_EQUAL(xm_stream_out_events(&so, &wire, 1000), POLLIN);
    CU_ASSERT_EQUAL(write(src_far, &b, 0), 0);
    CU_ASSERT_EQUAL(xm_stream_out_fill(&so, &wire, 0, STREAM_ID, 1000),
                    XM_OK);
    CU_ASSERT_EQUAL(wire.len, 0);
    CU_ASSERT_EQUAL(so.bytes_in, 0);

    CU_ASSERT_EQUAL(xm_stream_in_push(&si, 0, &b, 0), XM_OK);
    CU_ASSERT_EQUAL(xm_stream_in_queued(&si), 0);
    CU_ASSERT_EQUAL(xm_stream_in_events(&si), 0);
    CU_ASSERT_EQUAL(xm_stream_in_flush(&si), XM_OK);
    CU_ASSERT_EQUAL(si.bytes_out, 0);
    CU_ASSERT_FALSE(xm_stream_in_done(&si));
}

/* The sender stops reading at max_pending and asks for no events until
 * the wire drains; libxl's writes then block (EAGAIN here). */
static void
test_sender_backpressure(void)
{
    uint8_t buf[4096];
    size_t total = 0;
    ssize_t w;

    make_channels(false);
    start_streams(1000, 1000);
    memset(buf, 0xab, sizeof(buf));
    while ((w = write(src_far, buf, sizeof(buf))) > 0)
        total += (size_t)w;
    CU_ASSERT_EQUAL(errno, EAGAIN);
    CU_ASSERT_TRUE(total > 5000);
    CU_ASSERT_EQUAL(xm_stream_out_fill(&so, &wire, 0, STREAM_ID, 5000),
                    XM_OK);
    CU_ASSERT_TRUE(wire.len >= 5000);
    CU_ASSERT_TRUE(wire.len < 5000 + XM_PROTO_HEADER_LEN + 1000);
    CU_ASSERT_EQUAL(xm_stream_out_events(&so, &wire, 5000), 0);
    /* Filling again while backpressured reads nothing. */
    {
        size_t before = wire.len;
        uint64_t in = so.bytes_in;

        CU_ASSERT_EQUAL(xm_stream_out_fill(&so, &wire, 0, STREAM_ID, 5000),
                        XM_OK);
        CU_ASSERT_EQUAL(wire.len, before);
        CU_ASSERT_EQUAL(so.bytes_in, in);
    }
    CU_ASSERT_EQUAL(so.bytes_out, wire.len);
    xm_buf_reset(&wire);
    CU_ASSERT_EQUAL(xm_stream_out_events(&so, &wire, 5000), POLLIN);
}

/* A wire buffer too small for one more frame: nothing is read, so no
 * byte from libxl is lost. */
static void
test_sender_wire_too_small(void)
{
    struct xm_buf small;
    uint8_t buf[100] = { 0 };

    make_channels(false);
    start_streams(1000, 1000);
    CU_ASSERT_EQUAL(write(src_far, buf, sizeof(buf)), (ssize_t)sizeof(buf));
    xm_buf_init(&small, 500);
    CU_ASSERT_EQUAL(xm_stream_out_fill(&so, &small, 0, STREAM_ID, 400),
                    XM_ERR_TOOBIG);
    CU_ASSERT_EQUAL(so.bytes_in, 0);
    xm_buf_dispose(&small);
    CU_ASSERT_EQUAL(xm_stream_out_fill(&so, &wire, 0, STREAM_ID, 4000),
                    XM_OK);
    CU_ASSERT_EQUAL(so.bytes_in, sizeof(buf));
}

/* The receiver's queue: full at the bound, a push past it refused, the
 * fd asked for POLLOUT while bytes wait. */
static void
test_receiver_backpressure(void)
{
    static uint8_t chunk[3000];
    uint8_t rd[8192];
    unsigned pushed = 0;

    make_channels(false);
    start_streams(0, 10000);
    memset(chunk, 0x11, sizeof(chunk));
    /* Fill the far end's socket buffer first, so nothing drains. */
    while (!xm_stream_in_full(&si)) {
        CU_ASSERT_EQUAL_FATAL(xm_stream_in_push(&si, 0, chunk, sizeof(chunk)),
                              XM_OK);
        pushed++;
        CU_ASSERT_EQUAL_FATAL(xm_stream_in_flush(&si), XM_OK);
        CU_ASSERT_FATAL(pushed < 100000);
    }
    CU_ASSERT_TRUE(xm_stream_in_queued(&si) >= 10000);
    CU_ASSERT_TRUE(xm_stream_in_queued(&si) < 10000 + sizeof(chunk));
    CU_ASSERT_EQUAL(xm_stream_in_events(&si), POLLOUT);
    CU_ASSERT_EQUAL(xm_stream_in_push(&si, 0, chunk, sizeof(chunk)),
                    XM_ERR_TOOBIG);
    CU_ASSERT_EQUAL(si.bytes_in, (uint64_t)pushed * sizeof(chunk));
    /* The far end reads: room again. */
    while (read(dst_far, rd, sizeof(rd)) > 0)
        ;
    CU_ASSERT_EQUAL(xm_stream_in_flush(&si), XM_OK);
    CU_ASSERT_FALSE(xm_stream_in_full(&si));
    /* A lower bound takes at once; a higher one or 0 is ignored. */
    xm_stream_in_lower_bound(&si, 20000);
    xm_stream_in_lower_bound(&si, 0);
    CU_ASSERT_EQUAL(si.max_queued, 10000);
    pushed = 0;
    while (xm_stream_in_queued(&si) < 5000) {  /* the far end fills */
        CU_ASSERT_EQUAL_FATAL(xm_stream_in_push(&si, 0, chunk, sizeof(chunk)),
                              XM_OK);
        CU_ASSERT_EQUAL_FATAL(xm_stream_in_flush(&si), XM_OK);
        CU_ASSERT_FATAL(++pushed < 100000);
    }
    CU_ASSERT_FALSE(xm_stream_in_full(&si));
    xm_stream_in_lower_bound(&si, 4000);
    CU_ASSERT_TRUE(xm_stream_in_full(&si));
    CU_ASSERT_EQUAL(xm_stream_in_push(&si, 0, chunk, sizeof(chunk)),
                    XM_ERR_TOOBIG);
}

/* STREAM_END twice, data after STREAM_END, and over-long payloads. */
static void
test_receiver_states(void)
{
    static uint8_t big[XM_PROTO_STREAM_MAX + 1];
    uint8_t rd[16];

    make_channels(false);
    start_streams(0, 1000);
    CU_ASSERT_EQUAL(xm_stream_in_push(&si, 0, big, sizeof(big)),
                    XM_ERR_TOOBIG);
    CU_ASSERT_EQUAL(xm_stream_in_push(&si, 0, (const uint8_t *)"abc", 3),
                    XM_OK);
    CU_ASSERT_EQUAL(xm_stream_in_end(&si), XM_OK);
    CU_ASSERT_TRUE(xm_stream_in_done(&si));
    CU_ASSERT_EQUAL(xm_stream_in_end(&si), XM_ERR_STATE);
    CU_ASSERT_EQUAL(xm_stream_in_push(&si, 0, (const uint8_t *)"d", 1),
                    XM_ERR_STATE);
    CU_ASSERT_EQUAL(read(dst_far, rd, sizeof(rd)), 3);
    CU_ASSERT_EQUAL(memcmp(rd, "abc", 3), 0);
    CU_ASSERT_EQUAL(read(dst_far, rd, sizeof(rd)), 0);     /* EOF */
}

/* A transform's frame flags are gated by the negotiated features. */
static void
test_transform_flags_gated(void)
{
    struct xm_stream_xform xf = { xor_xform, &xor_key, XM_FRAME_COMPRESSED };
    uint8_t b[10] = { 1, 2, 3 };

    make_channels(false);
    start_streams(100, 1000);
    xm_stream_out_set_xform(&so, &xf);
    CU_ASSERT_EQUAL(write(src_far, b, sizeof(b)), (ssize_t)sizeof(b));
    CU_ASSERT_EQUAL(xm_stream_out_fill(&so, &wire, 0, STREAM_ID, 4000),
                    XM_ERR_INVAL);
    CU_ASSERT_EQUAL(wire.len, 0);

    CU_ASSERT_EQUAL(write(src_far, b, sizeof(b)), (ssize_t)sizeof(b));
    CU_ASSERT_EQUAL(xm_stream_out_fill(&so, &wire, XM_FEAT_STREAM_COMPRESS,
                                       STREAM_ID, 4000), XM_OK);
    CU_ASSERT_EQUAL_FATAL(wire.len, XM_PROTO_HEADER_LEN + sizeof(b));
    CU_ASSERT_EQUAL(wire.data[3], XM_FRAME_COMPRESSED);
    CU_ASSERT_EQUAL(wire.data[XM_PROTO_HEADER_LEN], 1 ^ xor_key);
    /* The identity again: no flag. */
    xm_stream_out_set_xform(&so, NULL);
    xm_buf_reset(&wire);
    CU_ASSERT_EQUAL(write(src_far, b, sizeof(b)), (ssize_t)sizeof(b));
    CU_ASSERT_EQUAL(xm_stream_out_fill(&so, &wire, 0, STREAM_ID, 4000),
                    XM_OK);
    CU_ASSERT_EQUAL(wire.data[3], 0);
    CU_ASSERT_EQUAL(wire.data[XM_PROTO_HEADER_LEN], 1);
}

/* A transform that writes nothing keeps the chunk as it is: a plain
 * frame, not counted as transformed; the receiver takes both kinds. */
static int
odd_xform(void *arg, const uint8_t *in, size_t len, struct xm_buf *out)
{
    return in[0] % 2 ? xor_xform(arg, in, len, out) : XM_OK;
}

static void
test_transform_passes_through(void)
{
    struct xm_stream_xform xf = { odd_xform, &xor_key, XM_FRAME_COMPRESSED };
    struct xm_stream_xform dx = { xor_xform, &xor_key, XM_FRAME_COMPRESSED };
    uint8_t b[4] = { 3, 4, 5, 6 }, rd[16];
    size_t off = 0;

    make_channels(false);
    start_streams(4, 1000);
    xm_stream_out_set_xform(&so, &xf);
    xm_stream_in_set_xform(&si, &dx);
    for (int i = 0; i < 2; i++) {
        b[0] = (uint8_t)(i == 0 ? 2 : 7);
        CU_ASSERT_EQUAL(write(src_far, b, sizeof(b)), (ssize_t)sizeof(b));
        xm_buf_reset(&wire);
        CU_ASSERT_EQUAL_FATAL(xm_stream_out_fill(&so, &wire,
                                                 XM_FEAT_STREAM_COMPRESS,
                                                 STREAM_ID, 4000), XM_OK);
        CU_ASSERT_EQUAL_FATAL(wire.len, XM_PROTO_HEADER_LEN + sizeof(b));
        /* even first byte: kept, plain; odd: transformed, flagged */
        CU_ASSERT_EQUAL(wire.data[3], i == 0 ? 0 : XM_FRAME_COMPRESSED);
        CU_ASSERT_EQUAL(wire.data[XM_PROTO_HEADER_LEN],
                        i == 0 ? 2 : 7 ^ xor_key);
        CU_ASSERT_EQUAL(xm_stream_in_push(&si, wire.data[3],
                                          wire.data + XM_PROTO_HEADER_LEN,
                                          sizeof(b)), XM_OK);
        CU_ASSERT_EQUAL(xm_stream_in_flush(&si), XM_OK);
    }
    CU_ASSERT_EQUAL(so.frames, 2);
    CU_ASSERT_EQUAL(so.frames_xformed, 1);
    while (off < 8) {
        ssize_t r = read(dst_far, rd + off, sizeof(rd) - off);

        CU_ASSERT_TRUE_FATAL(r > 0);
        off += (size_t)r;
    }
    CU_ASSERT_EQUAL(off, 8);
    CU_ASSERT_EQUAL(rd[0], 2);
    CU_ASSERT_EQUAL(rd[4], 7);
    CU_ASSERT_EQUAL(memcmp(rd + 1, b + 1, 3), 0);
    CU_ASSERT_EQUAL(memcmp(rd + 5, b + 1, 3), 0);
}

static void
test_init_errors(void)
{
    int sv[2];

    CU_ASSERT_EQUAL(xm_stream_out_init(&so, -1, 0), XM_ERR_INVAL);
    xm_stream_out_dispose(&so);
    CU_ASSERT_EQUAL_FATAL(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    src_far = sv[0];
    src_agent = sv[1];
    CU_ASSERT_EQUAL(xm_stream_out_init(&so, src_agent,
                                       XM_PROTO_STREAM_MAX + 1),
                    XM_ERR_INVAL);
    xm_stream_out_dispose(&so);
    /* A chunk must fit one compressed block. */
    CU_ASSERT_EQUAL(XM_STREAM_CHUNK_MAX, XM_COMP_CHUNK_MAX);
    CU_ASSERT_EQUAL(xm_stream_out_init(&so, src_agent,
                                       XM_STREAM_CHUNK_MAX + 1),
                    XM_ERR_INVAL);
    xm_stream_out_dispose(&so);       /* the fd stays with the caller */
    CU_ASSERT_EQUAL(fcntl(src_agent, F_GETFD), 0);
    CU_ASSERT_EQUAL(xm_stream_in_init(&si, src_agent, 0), XM_ERR_INVAL);
    xm_stream_in_dispose(&si);
    CU_ASSERT_EQUAL(fcntl(src_agent, F_GETFD), 0);
    /* Dispose twice is fine. */
    CU_ASSERT_EQUAL_FATAL(xm_stream_in_init(&si, src_agent, 10), XM_OK);
    src_agent = -1;
    xm_stream_in_dispose(&si);
    xm_stream_in_dispose(&si);
}

static CU_TestInfo stream_tests[] = {
    { "pump: 4 MiB byte-exact", test_pump_bulk },
    { "pump: odd sizes, both backpressures", test_pump_odd_sizes },
    { "pump: pipes", test_pump_pipes },
    { "pump: transform hook", test_pump_transform },
    { "pump: compressed (zstd, lz4, stored)", test_pump_compressed },
    { "receiver: routed by frame flags", test_receiver_routes_flags },
    { "pump: empty stream", test_pump_empty },
    { "EPIPE when the reader closes", test_epipe_when_reader_closes },
    { "zero-length reads and pushes", test_zero_length },
    { "sender backpressure", test_sender_backpressure },
    { "sender: wire too small", test_sender_wire_too_small },
    { "receiver backpressure", test_receiver_backpressure },
    { "receiver states", test_receiver_states },
    { "transform flags gated", test_transform_flags_gated },
    { "a transform may pass a chunk through", test_transform_passes_through },
    { "init errors", test_init_errors },
    CU_TEST_INFO_NULL,
};

CU_SuiteInfo xm_test_suites[] = {
    { "stream", NULL, NULL, setup, teardown, stream_tests },
    CU_SUITE_INFO_NULL,
};
