/*
 * proto_test.c -- unit tests of the peer protocol codec (xm_proto).
 *
 * Every frame type goes through the encoder and back through the
 * decoder, whole, a byte at a time and split at every offset; broken
 * streams (bad magic, another major version, unknown types, lengths out
 * of bounds, flags not negotiated) must fail with the right code as soon
 * as the bytes that show it are in; random bytes must never crash the
 * decoder nor make it read outside its buffer (run under ASan).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "xm_err.h"
#include "xm_proto.h"

#define MAX_FRAMES 64

/* A decoded frame, copied out of the decoder. */
struct got_frame {
    uint16_t type;
    uint16_t flags;
    uint32_t id;
    uint32_t len;
    uint8_t *payload;
};

static struct xm_buf out;          /* what the encoder writes */
static struct xm_dec dec;
static struct got_frame got[MAX_FRAMES];
static size_t n_got;

static void
setup(void)
{
    xm_buf_init(&out, 8u * 1024 * 1024);
    xm_dec_init(&dec, XM_PROTO_FEATURES);
    memset(got, 0, sizeof(got));
    n_got = 0;
}

static void
teardown(void)
{
    for (size_t i = 0; i < n_got; i++)
        free(got[i].payload);
    n_got = 0;
    xm_dec_dispose(&dec);
    xm_buf_dispose(&out);
}

/* Take every complete frame out of the decoder: XM_ERR_BUSY when it
 * wants more bytes, or the error that stopped it. */
static int
drain(struct xm_dec *d)
{
    struct xm_frame f;
    int rc;

    while ((rc = xm_dec_next(d, &f)) == XM_OK) {
        CU_ASSERT_FATAL(n_got < MAX_FRAMES);
        got[n_got].type = f.type;
        got[n_got].flags = f.flags;
        got[n_got].id = f.id;
        got[n_got].len = f.len;
        got[n_got].payload = malloc(f.len ? f.len : 1);
        CU_ASSERT_FATAL(got[n_got].payload != NULL);
        if (f.len)
            memcpy(got[n_got].payload, f.payload, f.len);
        n_got++;
    }
    return rc;
}

/* Feed data in pieces of chunk bytes, draining after each; returns the
 * last drain result. */
static int
feed_chunks(struct xm_dec *d, const uint8_t *data, size_t len, size_t chunk)
{
    int rc = XM_ERR_BUSY;

    for (size_t off = 0; off < len; off += chunk) {
        size_t n = len - off < chunk ? len - off : chunk;
        rc = xm_dec_feed(d, data + off, n);
        if (rc)
            return rc;
        rc = drain(d);
        if (rc != XM_ERR_BUSY)
            return rc;
    }
    return rc;
}

static void
put_hello(uint32_t features)
{
    CU_ASSERT_EQUAL_FATAL(xm_enc_hello(&out, "peer-1.example", features),
                          XM_OK);
}

/* A raw frame header, bypassing the encoder's checks. */
static void
put_raw_header(uint16_t type, uint16_t flags, uint32_t len, uint32_t id)
{
    uint8_t h[XM_PROTO_HEADER_LEN] = {
        (uint8_t)(type >> 8), (uint8_t)type,
        (uint8_t)(flags >> 8), (uint8_t)flags,
        (uint8_t)(len >> 24), (uint8_t)(len >> 16), (uint8_t)(len >> 8),
        (uint8_t)len,
        (uint8_t)(id >> 24), (uint8_t)(id >> 16), (uint8_t)(id >> 8),
        (uint8_t)id,
    };
    CU_ASSERT_EQUAL_FATAL(xm_buf_append(&out, h, sizeof(h)), XM_OK);
}

/* ---- the buffer ---- */

static void
test_buf_cap(void)
{
    struct xm_buf b;
    uint8_t data[100];

    memset(data, 'x', sizeof(data));
    xm_buf_init(&b, 150);
    CU_ASSERT_EQUAL(xm_buf_append(&b, data, 100), XM_OK);
    CU_ASSERT_EQUAL(xm_buf_append(&b, data, 51), XM_ERR_TOOBIG);
    CU_ASSERT_EQUAL(b.len, 100);
    CU_ASSERT_EQUAL(xm_buf_append(&b, data, 50), XM_OK);
    CU_ASSERT_EQUAL(b.len, 150);
    CU_ASSERT(b.alloc <= 150);
    CU_ASSERT_EQUAL(xm_buf_reserve(&b, SIZE_MAX), XM_ERR_TOOBIG);
    data[0] = 'a';
    xm_buf_consume(&b, 149);
    CU_ASSERT_EQUAL(b.len, 1);
    CU_ASSERT_EQUAL(b.data[0], 'x');
    xm_buf_reset(&b);
    CU_ASSERT_EQUAL(b.len, 0);
    xm_buf_dispose(&b);
    xm_buf_dispose(&b);           /* idempotent */
    CU_ASSERT_PTR_NULL(b.data);
}

/* ---- the hello ---- */

static void
test_hello_round_trip(void)
{
    put_hello(0x7);
    CU_ASSERT_EQUAL(out.len, XM_PROTO_HELLO_LEN);
    CU_ASSERT_EQUAL(memcmp(out.data, "XENMAINT", 8), 0);
    CU_ASSERT_EQUAL(xm_dec_feed(&dec, out.data, out.len), XM_OK);
    CU_ASSERT_EQUAL(drain(&dec), XM_ERR_BUSY);
    CU_ASSERT_EQUAL_FATAL(n_got, 1);
    CU_ASSERT_EQUAL(got[0].type, XM_MSG_HELLO);
    CU_ASSERT_EQUAL(dec.state, XM_DEC_FRAMES);
    CU_ASSERT_STRING_EQUAL(dec.peer.host, "peer-1.example");
    CU_ASSERT_EQUAL(dec.peer.major, XM_PROTO_VERSION_MAJOR);
    CU_ASSERT_EQUAL(dec.peer.minor, XM_PROTO_VERSION_MINOR);
    CU_ASSERT_EQUAL(dec.peer.features, 0x7);
    CU_ASSERT_STRING_EQUAL(xm_dec_error(&dec), "");
}

static void
test_hello_bad_host(void)
{
    char longname[XM_PROTO_HOST_MAX + 2];

    memset(longname, 'a', sizeof(longname) - 1);
    longname[sizeof(longname) - 1] = '\0';
    CU_ASSERT_EQUAL(xm_enc_hello(&out, "", 0), XM_ERR_INVAL);
    CU_ASSERT_EQUAL(xm_enc_hello(&out, "a b", 0), XM_ERR_INVAL);
    CU_ASSERT_EQUAL(xm_enc_hello(&out, "a/b", 0), XM_ERR_INVAL);
    CU_ASSERT_EQUAL(xm_enc_hello(&out, longname, 0), XM_ERR_INVAL);
    longname[XM_PROTO_HOST_MAX] = '\0';
    CU_ASSERT_EQUAL(xm_enc_hello(&out, longname, 0), XM_OK);
    CU_ASSERT(xm_proto_host_valid("Host_1.pool-a"));
    CU_ASSERT(!xm_proto_host_valid(NULL));
}

/* Host field checks on the receiving side: junk after the NUL, a name
 * with a bad byte, 64 bytes without a NUL. */
static void
test_hello_bad_host_field(void)
{
    static const struct {
        size_t off;
        uint8_t byte;
    } cases[] = {
        { 16 + 20, 'x' },         /* after the terminating NUL */
        { 16 + 2, ' ' },          /* inside the name */
        { 0, 0 },                 /* empty name: see below */
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct xm_dec d;
        uint8_t h[XM_PROTO_HELLO_LEN];
        struct xm_frame f;

        xm_buf_reset(&out);
        put_hello(0);
        memcpy(h, out.data, sizeof(h));
        if (cases[i].off)
            h[cases[i].off] = cases[i].byte;
        else
            memset(h + 16, 0, 64);
        xm_dec_init(&d, 0);
        CU_ASSERT_EQUAL(xm_dec_feed(&d, h, sizeof(h)), XM_OK);
        CU_ASSERT_EQUAL(xm_dec_next(&d, &f), XM_ERR_PROTO);
        xm_dec_dispose(&d);
    }

    {
        uint8_t h[XM_PROTO_HELLO_LEN];
        struct xm_hello hello;

        xm_buf_reset(&out);
        put_hello(0);
        memcpy(h, out.data, sizeof(h));
        memset(h + 16, 'a', 64);
        CU_ASSERT_EQUAL(xm_hello_decode(h, sizeof(h), &hello),
                        XM_ERR_PROTO);
        CU_ASSERT_EQUAL(xm_hello_decode(h, sizeof(h) - 1, &hello),
                        XM_ERR_PROTO);
    }
}

static void
test_wrong_magic(void)
{
    struct xm_frame f;

    put_hello(0);
    out.data[7] = 'X';            /* "XENMAINX" */
    CU_ASSERT_EQUAL(xm_dec_feed(&dec, out.data, 7), XM_OK);
    CU_ASSERT_EQUAL(xm_dec_next(&dec, &f), XM_ERR_BUSY);
    CU_ASSERT_EQUAL(xm_dec_feed(&dec, out.data + 7, 1), XM_OK);
    CU_ASSERT_EQUAL(xm_dec_next(&dec, &f), XM_ERR_PROTO);
    CU_ASSERT_PTR_NOT_NULL(strstr(xm_dec_error(&dec), "magic"));
}

static void
test_stranger_refused_at_first_byte(void)
{
    struct xm_frame f;

    CU_ASSERT_EQUAL(xm_dec_feed(&dec, "G", 1), XM_OK);
    CU_ASSERT_EQUAL(xm_dec_next(&dec, &f), XM_ERR_PROTO);
    /* The failure is final. */
    CU_ASSERT_EQUAL(xm_dec_feed(&dec, "ET /", 4), XM_ERR_PROTO);
    CU_ASSERT_EQUAL(xm_dec_next(&dec, &f), XM_ERR_PROTO);
}

static void
test_major_version_mismatch(void)
{
    struct xm_frame f;
    struct xm_hello hello;

    put_hello(0);
    out.data[8] = 0;
    out.data[9] = XM_PROTO_VERSION_MAJOR + 1;
    out.data[11] = 7;             /* minor 7 */
    CU_ASSERT_EQUAL(xm_hello_decode(out.data, out.len, &hello),
                    XM_ERR_UNSUPPORTED);
    CU_ASSERT_EQUAL(hello.major, XM_PROTO_VERSION_MAJOR + 1);
    /* Known after 12 bytes, before the rest of the hello. */
    CU_ASSERT_EQUAL(xm_dec_feed(&dec, out.data, 12), XM_OK);
    CU_ASSERT_EQUAL(xm_dec_next(&dec, &f), XM_ERR_UNSUPPORTED);
    CU_ASSERT_PTR_NOT_NULL(strstr(xm_dec_error(&dec), "version 2.7"));
}

static void
test_minor_version_newer_accepted(void)
{
    put_hello(0);
    out.data[11] = XM_PROTO_VERSION_MINOR + 3;
    out.data[90] = 0xff;          /* reserved: ignored */
    CU_ASSERT_EQUAL(xm_dec_feed(&dec, out.data, out.len), XM_OK);
    CU_ASSERT_EQUAL(drain(&dec), XM_ERR_BUSY);
    CU_ASSERT_EQUAL(n_got, 1);
    CU_ASSERT_EQUAL(dec.peer.minor, XM_PROTO_VERSION_MINOR + 3);
}

static void
test_feature_intersection(void)
{
    struct xm_dec d;

    CU_ASSERT_EQUAL(xm_proto_negotiate(0x5, 0x3), 0x1);
    CU_ASSERT_EQUAL(xm_proto_negotiate(0x5, 0), 0);
    /* A newer peer offers bits we do not know: they drop out. */
    xm_dec_init(&d, XM_FEAT_STREAM_COMPRESS);
    put_hello(0xffff0000u | XM_FEAT_STREAM_COMPRESS);
    CU_ASSERT_EQUAL(xm_dec_feed(&d, out.data, out.len), XM_OK);
    CU_ASSERT_EQUAL(drain(&d), XM_ERR_BUSY);
    CU_ASSERT_EQUAL(d.features, XM_FEAT_STREAM_COMPRESS);
    xm_dec_dispose(&d);
    /* An older peer lacks the bit: no feature. */
    xm_buf_reset(&out);
    put_hello(0);
    CU_ASSERT_EQUAL(xm_dec_feed(&dec, out.data, out.len), XM_OK);
    CU_ASSERT_EQUAL(drain(&dec), XM_ERR_BUSY);
    CU_ASSERT_EQUAL(dec.features, 0);
}

/* A flag is allowed only on its type and once its feature is agreed. */
static void
test_flags_gated_by_features(void)
{
    struct xm_dec d;
    uint8_t chunk[16] = { 1, 2, 3 };

    CU_ASSERT_EQUAL(xm_enc_frame(&out, 0, XM_MSG_STREAM_DATA,
                                 XM_FRAME_COMPRESSED, 1, chunk,
                                 sizeof(chunk)), XM_ERR_INVAL);
    CU_ASSERT_EQUAL(xm_enc_frame(&out, XM_FEAT_STREAM_COMPRESS,
                                 XM_MSG_STATUS_REQ, XM_FRAME_COMPRESSED, 1,
                                 NULL, 0), XM_ERR_INVAL);
    CU_ASSERT_EQUAL(out.len, 0);

    /* Negotiated: accepted. */
    xm_dec_init(&d, XM_FEAT_STREAM_COMPRESS);
    put_hello(XM_FEAT_STREAM_COMPRESS);
    CU_ASSERT_EQUAL(xm_enc_frame(&out, XM_FEAT_STREAM_COMPRESS,
                                 XM_MSG_STREAM_DATA, XM_FRAME_COMPRESSED,
                                 1, chunk, sizeof(chunk)), XM_OK);
    CU_ASSERT_EQUAL(xm_dec_feed(&d, out.data, out.len), XM_OK);
    CU_ASSERT_EQUAL(drain(&d), XM_ERR_BUSY);
    CU_ASSERT_EQUAL_FATAL(n_got, 2);
    CU_ASSERT_EQUAL(got[1].flags, XM_FRAME_COMPRESSED);
    xm_dec_dispose(&d);

    /* Not negotiated (we did not offer it): the same bytes fail. */
    xm_dec_init(&d, 0);
    CU_ASSERT_EQUAL(xm_dec_feed(&d, out.data, out.len), XM_OK);
    CU_ASSERT_EQUAL(drain(&d), XM_ERR_PROTO);
    CU_ASSERT_PTR_NOT_NULL(strstr(xm_dec_error(&d), "flags"));
    xm_dec_dispose(&d);

    /* We offer it, the peer (an older agent) does not: refused too. */
    xm_buf_reset(&out);
    put_hello(0);
    CU_ASSERT_EQUAL(xm_enc_frame(&out, XM_FEAT_STREAM_COMPRESS,
                                 XM_MSG_STREAM_DATA, XM_FRAME_COMPRESSED,
                                 1, chunk, sizeof(chunk)), XM_OK);
    CU_ASSERT_EQUAL(xm_dec_feed(&dec, out.data, out.len), XM_OK);
    CU_ASSERT_EQUAL(drain(&dec), XM_ERR_PROTO);
    CU_ASSERT_EQUAL(dec.features, 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(xm_dec_error(&dec), "flags"));
}

/* This build offers stream compression with zero runs and bare LZ4
 * blocks, and the target's STREAM_ACKs (issue 6), and nothing else. */
static void
test_features_offered(void)
{
    CU_ASSERT_EQUAL(XM_PROTO_FEATURES, XM_FEAT_STREAM_COMPRESS |
                                       XM_FEAT_STREAM_ZERO_RUNS |
                                       XM_FEAT_STREAM_LZ4_BLOCKS |
                                       XM_FEAT_STREAM_ACK);
    CU_ASSERT_EQUAL(XM_FEAT_STREAM_LZ4_BLOCKS, 0x4);    /* on the wire */
    CU_ASSERT_EQUAL(XM_FEAT_STREAM_ACK, 0x8);
}

/* ---- frames ---- */

struct sample {
    uint16_t type;
    uint32_t id;
    size_t len;
};

/* Every type, at its smallest and largest payload. */
static const struct sample samples[] = {
    { XM_MSG_ERROR, 1, 4 },
    { XM_MSG_ERROR, 2, 4 + XM_PROTO_TEXT_MAX },
    { XM_MSG_STATUS_REQ, 3, 0 },
    { XM_MSG_STATUS_RESP, 3, 1 },
    { XM_MSG_STATUS_RESP, 4, XM_PROTO_JSON_MAX },
    { XM_MSG_MIGRATE_OFFER, 5, 1 },
    { XM_MSG_MIGRATE_OFFER, 6, XM_PROTO_JSON_MAX },
    { XM_MSG_MIGRATE_ACCEPT, 6, 0 },
    { XM_MSG_MIGRATE_ACCEPT, 7, XM_PROTO_JSON_MAX },
    { XM_MSG_MIGRATE_REJECT, 8, 4 },
    { XM_MSG_MIGRATE_REJECT, 9, 4 + XM_PROTO_TEXT_MAX },
    { XM_MSG_STREAM_DATA, 10, 1 },
    { XM_MSG_STREAM_DATA, 11, XM_PROTO_STREAM_MAX },
    { XM_MSG_STREAM_END, 12, 0 },
    { XM_MSG_MIGRATE_GO, 13, 0 },
    { XM_MSG_MIGRATE_GO, 14, 100 },
    { XM_MSG_MIGRATE_DONE, 15, 0 },
    { XM_MSG_MIGRATE_DONE, 16, XM_PROTO_JSON_MAX },
    { XM_MSG_MIGRATE_ABORT, 0xffffffffu, 4 },
    { XM_MSG_MIGRATE_ABORT, 18, 4 + XM_PROTO_TEXT_MAX },
    { XM_MSG_MIGRATE_CANCEL, 19, 1 },
    { XM_MSG_MIGRATE_CANCEL, 20, XM_PROTO_JSON_MAX },
};

#define N_SAMPLES (sizeof(samples) / sizeof(samples[0]))

static void
fill(uint8_t *p, size_t len, unsigned seed)
{
    for (size_t i = 0; i < len; i++)
        p[i] = (uint8_t)(i * 31 + seed);
}

/* Encode the hello and frames samples[from..to), each payload filled
 * from its index. */
static void
put_samples(size_t from, size_t to)
{
    uint8_t *payload = malloc(XM_PROTO_STREAM_MAX);

    CU_ASSERT_FATAL(payload != NULL);
    put_hello(0);
    for (size_t i = from; i < to; i++) {
        fill(payload, samples[i].len, (unsigned)i);
        CU_ASSERT_EQUAL_FATAL(xm_enc_frame(&out, 0, samples[i].type, 0,
                                           samples[i].id, payload,
                                           samples[i].len), XM_OK);
    }
    free(payload);
}

static void
check_samples(size_t from, size_t to)
{
    uint8_t *payload = malloc(XM_PROTO_STREAM_MAX);

    CU_ASSERT_FATAL(payload != NULL);
    CU_ASSERT_EQUAL_FATAL(n_got, 1 + to - from);
    CU_ASSERT_EQUAL(got[0].type, XM_MSG_HELLO);
    for (size_t i = from; i < to; i++) {
        const struct got_frame *g = &got[1 + i - from];
        CU_ASSERT_EQUAL(g->type, samples[i].type);
        CU_ASSERT_EQUAL(g->id, samples[i].id);
        CU_ASSERT_EQUAL(g->flags, 0);
        CU_ASSERT_EQUAL_FATAL(g->len, samples[i].len);
        fill(payload, samples[i].len, (unsigned)i);
        CU_ASSERT(memcmp(g->payload, payload, g->len) == 0);
    }
    free(payload);
}

static void
test_round_trip_every_type(void)
{
    put_samples(0, N_SAMPLES);
    /* Realistic reads: 16 KiB at a time. */
    CU_ASSERT_EQUAL(feed_chunks(&dec, out.data, out.len, 16384),
                    XM_ERR_BUSY);
    check_samples(0, N_SAMPLES);
    CU_ASSERT_EQUAL(dec.in.len - dec.pos, 0);
    /* Every type has a name; unknown ones none. */
    for (size_t i = 0; i < N_SAMPLES; i++)
        CU_ASSERT_PTR_NOT_NULL(xm_msg_name(samples[i].type));
    CU_ASSERT_PTR_NULL(xm_msg_name(999));
    CU_ASSERT_STRING_EQUAL(xm_msg_name(XM_MSG_HELLO), "HELLO");
    CU_ASSERT_EQUAL(xm_msg_max_len(XM_MSG_STREAM_DATA),
                    XM_PROTO_STREAM_MAX);
    CU_ASSERT_EQUAL(xm_msg_max_len(XM_MSG_STATUS_RESP), XM_PROTO_JSON_MAX);
    CU_ASSERT_EQUAL(xm_msg_max_len(999), 0);
}

static void
test_byte_at_a_time(void)
{
    /* The small samples only: a byte at a time through 1 MiB is slow
     * under the sanitizers and proves nothing more. */
    put_samples(0, 11);
    CU_ASSERT_EQUAL(feed_chunks(&dec, out.data, out.len, 1), XM_ERR_BUSY);
    check_samples(0, 11);
}

/* Two frames split at every offset: header halves, payload halves. */
static void
test_split_everywhere(void)
{
    static const char json[] = "{\"host\":\"a\"}";
    size_t total;
    uint8_t *copy;

    put_hello(0);
    CU_ASSERT_EQUAL_FATAL(xm_enc_frame(&out, 0, XM_MSG_STATUS_REQ, 0, 41,
                                       NULL, 0), XM_OK);
    CU_ASSERT_EQUAL_FATAL(xm_enc_frame(&out, 0, XM_MSG_STATUS_RESP, 0, 41,
                                       json, sizeof(json) - 1), XM_OK);
    total = out.len;
    copy = malloc(total);
    CU_ASSERT_FATAL(copy != NULL);
    memcpy(copy, out.data, total);
    for (size_t cut = 1; cut < total; cut++) {
        struct xm_dec d;
        teardown();
        setup();
        xm_dec_init(&d, 0);
        CU_ASSERT_EQUAL(xm_dec_feed(&d, copy, cut), XM_OK);
        CU_ASSERT_EQUAL(drain(&d), XM_ERR_BUSY);
        CU_ASSERT_EQUAL(xm_dec_feed(&d, copy + cut, total - cut), XM_OK);
        CU_ASSERT_EQUAL(drain(&d), XM_ERR_BUSY);
        CU_ASSERT_EQUAL_FATAL(n_got, 3);
        CU_ASSERT_EQUAL(got[1].type, XM_MSG_STATUS_REQ);
        CU_ASSERT_EQUAL(got[1].id, 41);
        CU_ASSERT_EQUAL(got[2].type, XM_MSG_STATUS_RESP);
        CU_ASSERT_EQUAL_FATAL(got[2].len, sizeof(json) - 1);
        CU_ASSERT(memcmp(got[2].payload, json, got[2].len) == 0);
        xm_dec_dispose(&d);
    }
    free(copy);
}

static void
test_truncated_needs_more(void)
{
    struct xm_frame f;
    uint8_t payload[10] = { 0 };

    put_hello(0);
    CU_ASSERT_EQUAL(xm_dec_feed(&dec, out.data, out.len - 1), XM_OK);
    CU_ASSERT_EQUAL(xm_dec_next(&dec, &f), XM_ERR_BUSY);
    CU_ASSERT_EQUAL(xm_dec_feed(&dec, out.data + out.len - 1, 1), XM_OK);
    CU_ASSERT_EQUAL(xm_dec_next(&dec, &f), XM_OK);
    CU_ASSERT_EQUAL(xm_dec_next(&dec, &f), XM_ERR_BUSY);

    xm_buf_reset(&out);
    CU_ASSERT_EQUAL(xm_enc_frame(&out, 0, XM_MSG_STREAM_DATA, 0, 9,
                                 payload, sizeof(payload)), XM_OK);
    /* Half a header. */
    CU_ASSERT_EQUAL(xm_dec_feed(&dec, out.data, 6), XM_OK);
    CU_ASSERT_EQUAL(xm_dec_next(&dec, &f), XM_ERR_BUSY);
    /* Header and part of the payload. */
    CU_ASSERT_EQUAL(xm_dec_feed(&dec, out.data + 6, 10), XM_OK);
    CU_ASSERT_EQUAL(xm_dec_next(&dec, &f), XM_ERR_BUSY);
    CU_ASSERT_EQUAL(xm_dec_next(&dec, &f), XM_ERR_BUSY);
    CU_ASSERT_EQUAL(xm_dec_feed(&dec, out.data + 16, out.len - 16), XM_OK);
    CU_ASSERT_EQUAL(xm_dec_next(&dec, &f), XM_OK);
    CU_ASSERT_EQUAL(f.type, XM_MSG_STREAM_DATA);
    CU_ASSERT_EQUAL(f.len, sizeof(payload));
}

/* Decode a hello and then the raw bytes put after it. */
static int
decode_after_hello(void)
{
    CU_ASSERT_EQUAL_FATAL(xm_dec_feed(&dec, out.data, out.len), XM_OK);
    return drain(&dec);
}

static void
test_unknown_type(void)
{
    put_hello(0);
    put_raw_header(999, 0, 0, 1);
    CU_ASSERT_EQUAL(decode_after_hello(), XM_ERR_PROTO);
    CU_ASSERT_EQUAL(n_got, 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(xm_dec_error(&dec), "unknown"));
}

static void
test_hello_twice_refused(void)
{
    put_hello(0);
    put_raw_header(XM_MSG_HELLO, 0, 0, 0);
    CU_ASSERT_EQUAL(decode_after_hello(), XM_ERR_PROTO);
    CU_ASSERT_EQUAL(xm_enc_frame(&out, 0, XM_MSG_HELLO, 0, 0, NULL, 0),
                    XM_ERR_INVAL);
}

static void
test_oversized_length(void)
{
    static const struct {
        uint16_t type;
        uint32_t len;
    } cases[] = {
        { XM_MSG_STATUS_RESP, XM_PROTO_JSON_MAX + 1 },
        { XM_MSG_MIGRATE_OFFER, 0xffffffffu },
        { XM_MSG_STREAM_DATA, XM_PROTO_STREAM_MAX + 1 },
        { XM_MSG_ERROR, 4 + XM_PROTO_TEXT_MAX + 1 },
        { XM_MSG_STATUS_REQ, 1 },
        { XM_MSG_STREAM_END, 8 },
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        teardown();
        setup();
        put_hello(0);
        /* Header only: refused before any payload arrives. */
        put_raw_header(cases[i].type, 0, cases[i].len, 1);
        CU_ASSERT_EQUAL(decode_after_hello(), XM_ERR_PROTO);
        CU_ASSERT_EQUAL(n_got, 1);
    }
}

static void
test_undersized_length(void)
{
    static const struct {
        uint16_t type;
        uint32_t len;
    } cases[] = {
        { XM_MSG_ERROR, 3 },
        { XM_MSG_MIGRATE_REJECT, 0 },
        { XM_MSG_STATUS_RESP, 0 },
        { XM_MSG_MIGRATE_OFFER, 0 },
        { XM_MSG_STREAM_DATA, 0 },
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        teardown();
        setup();
        put_hello(0);
        put_raw_header(cases[i].type, 0, cases[i].len, 1);
        CU_ASSERT_EQUAL(xm_buf_append(&out, "abc", 3), XM_OK);
        CU_ASSERT_EQUAL(decode_after_hello(), XM_ERR_PROTO);
    }
}

static void
test_encoder_limits(void)
{
    uint8_t *big = calloc(1, XM_PROTO_STREAM_MAX + 1);
    struct xm_buf small;

    CU_ASSERT_FATAL(big != NULL);
    CU_ASSERT_EQUAL(xm_enc_frame(&out, 0, 999, 0, 1, NULL, 0),
                    XM_ERR_INVAL);
    CU_ASSERT_EQUAL(xm_enc_frame(&out, 0, XM_MSG_STATUS_RESP, 0, 1, big,
                                 XM_PROTO_JSON_MAX + 1), XM_ERR_TOOBIG);
    CU_ASSERT_EQUAL(xm_enc_frame(&out, 0, XM_MSG_STREAM_DATA, 0, 1, big,
                                 XM_PROTO_STREAM_MAX + 1), XM_ERR_TOOBIG);
    CU_ASSERT_EQUAL(xm_enc_frame(&out, 0, XM_MSG_STATUS_RESP, 0, 1, NULL,
                                 0), XM_ERR_INVAL);
    CU_ASSERT_EQUAL(xm_enc_frame(&out, 0, XM_MSG_STATUS_RESP, 0, 1, NULL,
                                 5), XM_ERR_INVAL);
    CU_ASSERT_EQUAL(out.len, 0);
    /* The output buffer's own cap; nothing half-written. */
    xm_buf_init(&small, 20);
    CU_ASSERT_EQUAL(xm_enc_frame(&small, 0, XM_MSG_STREAM_DATA, 0, 1, big,
                                 8), XM_OK);
    CU_ASSERT_EQUAL(small.len, 20);
    CU_ASSERT_EQUAL(xm_enc_frame(&small, 0, XM_MSG_STREAM_END, 0, 1, NULL,
                                 0), XM_ERR_TOOBIG);
    CU_ASSERT_EQUAL(small.len, 20);
    xm_buf_dispose(&small);
    free(big);
}

static void
test_error_frames(void)
{
    char text[XM_PROTO_TEXT_MAX + 10];
    char back[XM_PROTO_TEXT_MAX + 1];
    struct xm_frame f;
    int32_t code;

    put_hello(0);
    CU_ASSERT_EQUAL(xm_enc_error(&out, XM_MSG_MIGRATE_REJECT, 5,
                                 XM_ERR_NOSPACE, "no room\n\x1b[31m"),
                    XM_OK);
    /* Cut at a UTF-8 boundary: 1023 bytes of 'a', then a 2-byte 'é'
     * that would straddle the limit. */
    memset(text, 'a', sizeof(text));
    text[XM_PROTO_TEXT_MAX - 1] = (char)0xc3;
    text[XM_PROTO_TEXT_MAX] = (char)0xa9;
    text[sizeof(text) - 1] = '\0';
    CU_ASSERT_EQUAL(xm_enc_error(&out, XM_MSG_ERROR, 6, XM_ERR_PROTO, text),
                    XM_OK);
    CU_ASSERT_EQUAL(xm_enc_error(&out, XM_MSG_MIGRATE_ABORT, 7,
                                 XM_ERR_CANCELLED, NULL), XM_OK);
    CU_ASSERT_EQUAL(xm_enc_error(&out, XM_MSG_STATUS_RESP, 7, 0, "x"),
                    XM_ERR_INVAL);
    CU_ASSERT_EQUAL(decode_after_hello(), XM_ERR_BUSY);
    CU_ASSERT_EQUAL_FATAL(n_got, 4);

    f.type = got[1].type;
    f.len = got[1].len;
    f.payload = got[1].payload;
    CU_ASSERT_EQUAL(xm_frame_error(&f, &code, back, sizeof(back)), XM_OK);
    CU_ASSERT_EQUAL(code, XM_ERR_NOSPACE);
    CU_ASSERT_STRING_EQUAL(back, "no room??[31m");
    /* A small text buffer cuts the copy. */
    CU_ASSERT_EQUAL(xm_frame_error(&f, &code, back, 3), XM_OK);
    CU_ASSERT_STRING_EQUAL(back, "no");

    f.type = got[2].type;
    f.len = got[2].len;
    f.payload = got[2].payload;
    CU_ASSERT_EQUAL(f.len, 4 + XM_PROTO_TEXT_MAX - 1);
    CU_ASSERT_EQUAL(xm_frame_error(&f, &code, back, sizeof(back)), XM_OK);
    CU_ASSERT_EQUAL(code, XM_ERR_PROTO);
    CU_ASSERT_EQUAL(strlen(back), XM_PROTO_TEXT_MAX - 1);

    f.type = got[3].type;
    f.len = got[3].len;
    f.payload = got[3].payload;
    CU_ASSERT_EQUAL(xm_frame_error(&f, &code, back, sizeof(back)), XM_OK);
    CU_ASSERT_EQUAL(code, XM_ERR_CANCELLED);
    CU_ASSERT_STRING_EQUAL(back, "");

    f.type = XM_MSG_STATUS_RESP;
    CU_ASSERT_EQUAL(xm_frame_error(&f, &code, back, sizeof(back)),
                    XM_ERR_PROTO);
}

static void
test_feed_limits(void)
{
    uint8_t *big = calloc(1, XM_PROTO_FEED_MAX + 1);
    struct xm_frame f;
    size_t fed = 0;
    int rc = XM_OK;

    CU_ASSERT_FATAL(big != NULL);
    CU_ASSERT_EQUAL(xm_dec_feed(&dec, big, XM_PROTO_FEED_MAX + 1),
                    XM_ERR_INVAL);
    /* A hello and a huge STREAM_DATA, fed without ever draining: the
     * decoder's buffer cap stops it. */
    put_hello(0);
    put_raw_header(XM_MSG_STREAM_DATA, 0, XM_PROTO_STREAM_MAX, 1);
    CU_ASSERT_EQUAL(xm_dec_feed(&dec, out.data, out.len), XM_OK);
    CU_ASSERT_EQUAL(xm_dec_next(&dec, &f), XM_OK);  /* the hello */
    while (rc == XM_OK && fed < 4u * XM_PROTO_STREAM_MAX) {
        rc = xm_dec_feed(&dec, big, XM_PROTO_FEED_MAX);
        fed += XM_PROTO_FEED_MAX;
    }
    CU_ASSERT_EQUAL(rc, XM_ERR_TOOBIG);
    CU_ASSERT(dec.in.len <= XM_PROTO_FRAME_MAX + XM_PROTO_FEED_MAX);
    free(big);
}

/* ---- fuzz ---- */

static uint32_t
rnd(uint32_t *state)
{
    /* xorshift32: deterministic, so a failure reproduces. */
    uint32_t x = *state;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    *state = x;
    return x;
}

/* Feed bytes in random pieces; every frame that comes out must obey its
 * type's limits, and the result must be one of the documented codes. */
static void
fuzz_one(const uint8_t *data, size_t len, uint32_t *seed)
{
    struct xm_dec d;
    struct xm_frame f;
    size_t off = 0;
    int rc = XM_ERR_BUSY;

    xm_dec_init(&d, (rnd(seed) & 1) ? XM_FEAT_STREAM_COMPRESS : 0);
    while (off < len && rc == XM_ERR_BUSY) {
        size_t n = 1 + rnd(seed) % 700;
        if (n > len - off)
            n = len - off;
        rc = xm_dec_feed(&d, data + off, n);
        off += n;
        if (rc)
            break;
        while ((rc = xm_dec_next(&d, &f)) == XM_OK) {
            CU_ASSERT(xm_msg_name(f.type) != NULL);
            if (f.type != XM_MSG_HELLO)
                CU_ASSERT(f.len <= xm_msg_max_len(f.type));
            if (f.len) {
                /* Touch every byte: ASan catches a bad pointer. */
                volatile uint8_t sum = 0;
                for (size_t i = 0; i < f.len; i++)
                    sum ^= f.payload[i];
                (void)sum;
            }
        }
    }
    CU_ASSERT(rc == XM_ERR_BUSY || rc == XM_ERR_PROTO ||
              rc == XM_ERR_UNSUPPORTED);
    if (rc != XM_ERR_BUSY)
        CU_ASSERT(xm_dec_error(&d)[0] != '\0');
    xm_dec_dispose(&d);
}

static void
test_fuzz(void)
{
    uint32_t seed = 0x2026u;
    uint8_t *data = malloc(8192);
    size_t valid_len;
    uint8_t *valid;

    CU_ASSERT_FATAL(data != NULL);
    /* Pure noise, sometimes behind a valid magic. */
    for (int iter = 0; iter < 2000; iter++) {
        size_t len = rnd(&seed) % 8192;
        for (size_t i = 0; i < len; i++)
            data[i] = (uint8_t)rnd(&seed);
        if (len >= 8 && (iter & 1))
            memcpy(data, "XENMAINT", 8);
        fuzz_one(data, len, &seed);
    }
    /* A valid stream with a few bytes flipped. */
    put_samples(0, 11);
    valid_len = out.len;
    valid = malloc(valid_len);
    CU_ASSERT_FATAL(valid != NULL);
    for (int iter = 0; iter < 300; iter++) {
        memcpy(valid, out.data, valid_len);
        for (int k = 0; k < 4; k++) {
            size_t at = rnd(&seed) % valid_len;
            /* Mostly hit the hello and the first headers. */
            if (rnd(&seed) & 1)
                at %= 160;
            valid[at] = (uint8_t)rnd(&seed);
        }
        fuzz_one(valid, valid_len, &seed);
    }
    free(valid);
    free(data);
}

static CU_TestInfo codec_tests[] = {
    { "buffer cap", test_buf_cap },
    { "hello round trip", test_hello_round_trip },
    { "hello: bad host names refused", test_hello_bad_host },
    { "hello: bad host field", test_hello_bad_host_field },
    { "wrong magic", test_wrong_magic },
    { "stranger refused at first byte",
      test_stranger_refused_at_first_byte },
    { "major version mismatch", test_major_version_mismatch },
    { "newer minor version accepted", test_minor_version_newer_accepted },
    { "feature intersection", test_feature_intersection },
    { "flags gated by features", test_flags_gated_by_features },
    { "features this build offers", test_features_offered },
    { "round trip of every type", test_round_trip_every_type },
    { "byte at a time", test_byte_at_a_time },
    { "split at every offset", test_split_everywhere },
    { "truncated input needs more", test_truncated_needs_more },
    { "unknown type", test_unknown_type },
    { "HELLO after the banner", test_hello_twice_refused },
    { "oversized length", test_oversized_length },
    { "undersized length", test_undersized_length },
    { "encoder limits", test_encoder_limits },
    { "error frames", test_error_frames },
    { "feed limits", test_feed_limits },
    { "fuzz", test_fuzz },
    CU_TEST_INFO_NULL,
};

CU_SuiteInfo xm_test_suites[] = {
    { "proto", NULL, NULL, setup, teardown, codec_tests },
    CU_SUITE_INFO_NULL,
};
