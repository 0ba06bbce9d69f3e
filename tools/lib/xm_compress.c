/*
 * xm_compress.c -- compression of the migration stream's chunks (see
 * xm_compress.h and doc/peer-protocol.md).
 *
 * The codecs are the libraries': zstd's one-shot API over a reusable
 * ZSTD_CCtx/ZSTD_DCtx, and liblz4's frame API over a reusable
 * LZ4F_cctx/LZ4F_dctx.  Both frame formats carry a checksum of the raw
 * data that the library computes and checks (zstd: the low 32 bits of
 * XXH64; LZ4: XXH32), and the content size, which the decoder compares
 * with the block header before decoding anything.  zstd compresses
 * straight into the caller's buffer, capped one byte under the raw
 * length, so "does not shrink" shows as zstd's dstSize_tooSmall; the
 * LZ4 frame API wants room for its worst case, so LZ4 goes through a
 * buffer of the codec's, made once.  With a peer that takes them, an
 * lz4 body is instead a bare LZ4 block (LZ4_compress_fast_extState,
 * straight into the caller's buffer) behind an XXH64 of the raw data
 * (xxhash, header only): both several times cheaper than the frame's
 * XXH32 and API where CPUs are slow.  An all-zero chunk is compressed
 * once per size and codec and its block reused.  Decoding trusts nothing
 * in a block: each length is checked against the buffers before a
 * library sees it.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <lz4.h>
#include <lz4frame.h>
#include <zstd.h>
#include <zstd_errors.h>
/* xxhash as a header-only library: nothing to link */
#define XXH_INLINE_ALL
#include <xxhash.h>

#include "xm_compress.h"
#include "xm_err.h"

/* Block header layout: offsets of the fields. */
enum {
    HDR_OFF_MAGIC = 0,
    HDR_OFF_VERSION = 1,
    HDR_OFF_ALGO = 2,
    HDR_OFF_FLAGS = 3,
    HDR_OFF_RAW_LEN = 4,
};

/* RFC 8878 3.1.1.1.1: a zstd frame's Frame_Header_Descriptor follows
 * its 4-byte magic; bit 2 is the Content_Checksum_flag. */
#define ZSTD_FHD_OFF 4u
#define ZSTD_FHD_CHECKSUM 0x04u

#define SPEC_CHOICES "auto, none, zero, lz4, zstd[:LEVEL]"

/* Zero runs: the chunk is scanned in units of ZR_UNIT bytes (from its
 * start); a run of zero units at least XM_COMP_ZERO_RUN_MIN long is
 * elided.  The body of such a block is the length of its map+literals
 * (P) then P, stored or as one frame; P is at most ZR_P_MAX(raw). */
#define ZR_UNIT 64u
#define ZR_MAX_SEGS(raw) ((raw) / XM_COMP_ZERO_RUN_MIN + 1)
#define ZR_P_MAX(raw) (4u + 8u * ZR_MAX_SEGS(raw) + (raw))

/* The largest block of an all-zero chunk the codec keeps (a 256 KiB
 * chunk of zeros takes tens of bytes with zstd, about 1 KiB with LZ4). */
#define ZERO_BLOCK_MAX 4096u

struct xm_comp_codec {
    struct xm_comp_spec spec;   /* encoder */
    uint32_t accept;            /* decoder: algorithms allowed */
    ZSTD_CCtx *zc;
    int zc_level;               /* level set in zc; 0 before the first */
    ZSTD_DCtx *zd;
    LZ4F_cctx *lc;
    LZ4F_dctx *ld;
    uint8_t *lz4_buf;           /* one LZ4 frame, worst case */
    size_t lz4_buf_len;
    void *lz4_state;            /* LZ4_compress_fast_extState's */
    bool lz4_blocks;            /* encoder: bare LZ4 blocks + XXH64 */
    bool accept_lz4_blocks;     /* decoder: lz4 bodies may be those */
    bool zero_runs;             /* encoder: elide zero runs */
    bool accept_zero_runs;      /* decoder: blocks may elide them */
    uint8_t *zr_buf;            /* map+literals of one block (P) */
    size_t zr_buf_len;
    uint32_t *zr_segs;          /* encoder: (literal, zero) pairs */
    size_t zr_segs_len;         /* pairs it holds */
    /* The block of the last all-zero chunk compressed, and what made
     * it: the same chunk always gives the same block, and a guest's
     * untouched memory is most of its stream (the codecs take time even
     * over zeros: a second or more per 128 MiB under emulation). */
    uint8_t zero_block[ZERO_BLOCK_MAX];
    size_t zero_block_len;      /* 0: none kept */
    size_t zero_raw_len;
    struct xm_comp_spec zero_spec;
    struct xm_comp_stats stats;
    char err[160];
};

/* A block header once checked. */
struct block_header {
    enum xm_comp_algo algo;
    uint8_t flags;
    uint32_t raw_len;
};

static const char *const algo_names[XM_COMP_N_ALGOS] = {
    [XM_COMP_NONE] = "none",
    [XM_COMP_LZ4] = "lz4",
    [XM_COMP_ZSTD] = "zstd",
};

/* ---- small helpers ---- */

/* Record the codec's failure text; returns rc. */
static int __attribute__((format(printf, 3, 4)))
fail(struct xm_comp_codec *c, int rc, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(c->err, sizeof(c->err), fmt, ap);
    va_end(ap);
    return rc;
}

static bool
algo_known(enum xm_comp_algo algo)
{
    return (unsigned)algo < XM_COMP_N_ALGOS;
}

/* A spec a codec can encode with: fixed, known, level in range. */
static bool
spec_valid(const struct xm_comp_spec *spec)
{
    if (spec->automatic || !algo_known(spec->algo))
        return false;
    if (spec->algo == XM_COMP_ZSTD)
        return spec->level >= 1 && spec->level <= ZSTD_maxCLevel();
    return spec->level == 0;
}

/* ---- the spec ---- */

const char *
xm_comp_algo_name(enum xm_comp_algo algo)
{
    return algo_known(algo) ? algo_names[algo] : NULL;
}

int
xm_comp_spec_format(const struct xm_comp_spec *spec, char *buf, size_t len)
{
    if (spec->automatic)
        return snprintf(buf, len, "auto");
    if (spec->zero && spec->algo == XM_COMP_NONE)
        return snprintf(buf, len, "zero");
    if (!algo_known(spec->algo))
        return snprintf(buf, len, "algorithm-%d", (int)spec->algo);
    if (spec->algo == XM_COMP_ZSTD)
        return snprintf(buf, len, "zstd:%d", spec->level);
    return snprintf(buf, len, "%s", algo_names[spec->algo]);
}

/* The level after "zstd:", digits only, 1..ZSTD_maxCLevel(). */
static int
parse_level(const char *text, const char *s, int *level_r, char *err_r,
            size_t errlen)
{
    int max = ZSTD_maxCLevel();
    long v = 0;

    if (!*s) {
        snprintf(err_r, errlen, "compression '%.40s': no level after ':'",
                 text);
        return XM_ERR_INVAL;
    }
    for (const char *p = s; *p; p++) {
        if (*p < '0' || *p > '9') {
            snprintf(err_r, errlen, "compression '%.40s': level '%.16s' "
                     "is not a number in 1..%d", text, s, max);
            return XM_ERR_INVAL;
        }
        if (v <= max)               /* stop growing once out of range */
            v = v * 10 + (*p - '0');
    }
    if (v < 1 || v > max) {
        snprintf(err_r, errlen, "compression '%.40s': level %.16s is out "
                 "of range 1..%d", text, s, max);
        return XM_ERR_INVAL;
    }
    *level_r = (int)v;
    return XM_OK;
}

int
xm_comp_spec_parse(const char *text, struct xm_comp_spec *spec_r,
                   char *err_r, size_t errlen)
{
    static const struct {
        const char *name;
        bool automatic;
        enum xm_comp_algo algo;
        bool zero;
    } names[] = {
        { "auto", true, XM_COMP_NONE, false },
        { "none", false, XM_COMP_NONE, false },
        { "zero", false, XM_COMP_NONE, true },
        { "lz4", false, XM_COMP_LZ4, false },
        { "zstd", false, XM_COMP_ZSTD, false },
    };
    struct xm_comp_spec spec = { .algo = XM_COMP_NONE };
    const char *colon;
    size_t name_len, i;

    if (!text)
        text = "";
    colon = strchr(text, ':');
    name_len = colon ? (size_t)(colon - text) : strlen(text);
    for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (strlen(names[i].name) == name_len &&
            memcmp(names[i].name, text, name_len) == 0)
            break;
    if (i == sizeof(names) / sizeof(names[0])) {
        snprintf(err_r, errlen, "compression '%.40s': unknown algorithm "
                 "'%.*s' (%s)", text, (int)(name_len > 40 ? 40 : name_len),
                 text, SPEC_CHOICES);
        return XM_ERR_INVAL;
    }
    spec.automatic = names[i].automatic;
    spec.algo = names[i].algo;
    spec.zero = names[i].zero;
    if (spec.algo == XM_COMP_ZSTD)
        spec.level = XM_COMP_ZSTD_LEVEL_DEFAULT;
    if (colon && spec.algo != XM_COMP_ZSTD) {
        snprintf(err_r, errlen, "compression '%.40s': '%s' takes no level "
                 "(only zstd:LEVEL)", text, names[i].name);
        return XM_ERR_INVAL;
    }
    if (colon) {
        int rc = parse_level(text, colon + 1, &spec.level, err_r, errlen);
        if (rc)
            return rc;
    }
    *spec_r = spec;
    return XM_OK;
}

/* ---- negotiation ---- */

uint32_t
xm_comp_algos_from_features(uint32_t features)
{
    return (features & XM_FEAT_STREAM_COMPRESS) ? XM_COMP_SUPPORTED : 0;
}

uint32_t
xm_comp_common(uint32_t ours, uint32_t theirs)
{
    return (ours & theirs & XM_COMP_SUPPORTED) | XM_COMP_MASK(XM_COMP_NONE);
}

enum xm_comp_algo
xm_comp_negotiate(const struct xm_comp_spec *want, uint32_t ours,
                  uint32_t theirs)
{
    static const enum xm_comp_algo strongest_first[] = {
        XM_COMP_ZSTD, XM_COMP_LZ4,
    };
    uint32_t common = xm_comp_common(ours, theirs);

    if (!want->automatic) {
        if (algo_known(want->algo) && (common & XM_COMP_MASK(want->algo)))
            return want->algo;
        return XM_COMP_NONE;
    }
    for (size_t i = 0; i < 2; i++)
        if (common & XM_COMP_MASK(strongest_first[i]))
            return strongest_first[i];
    return XM_COMP_NONE;
}

/* ---- auto ---- */

/* A finite number above zero (NaN is not). */
static bool
positive(double x)
{
    return x > 0 && isfinite(x);
}

double
xm_comp_estimate(const struct xm_comp_sample *s, double link_mbps,
                 bool cpu_bound)
{
    double cpu, wire;

    if (!positive(link_mbps))
        return INFINITY;
    if (!s)
        return 1.0 / link_mbps;
    if (!positive(s->mbps) || !positive(s->ratio))
        return INFINITY;
    cpu = 1.0 / s->mbps;
    wire = 1.0 / (s->ratio * link_mbps);
    if (cpu_bound)
        return cpu + (positive(s->dec_mbps) ? 1.0 / s->dec_mbps : 0) +
               wire;
    return cpu > wire ? cpu : wire;
}

struct xm_comp_spec
xm_comp_auto_choose(const struct xm_comp_sample *samples, size_t n,
                    double link_mbps, bool cpu_bound)
{
    struct xm_comp_spec best = { .algo = XM_COMP_NONE };
    double none_t = xm_comp_estimate(NULL, link_mbps, false);
    double best_t = none_t;
    struct xm_comp_sample slower;
    double t;

    if (!positive(link_mbps))
        return best;
    if (cpu_bound) {
        const struct xm_comp_sample *fast = NULL;

        for (size_t i = 0; i < n; i++)
            if (spec_valid(&samples[i].spec) && positive(samples[i].mbps) &&
                (!fast || samples[i].mbps > fast->mbps))
                fast = &samples[i];
        if (!fast)
            return best;
        slower = *fast;
        slower.mbps *= 1 - XM_COMP_AUTO_MARGIN;
        slower.dec_mbps *= 1 - XM_COMP_AUTO_MARGIN;
        if (xm_comp_estimate(&slower, link_mbps, true) < none_t)
            best = fast->spec;
        return best;
    }
    for (size_t i = 0; i < n; i++) {
        if (!spec_valid(&samples[i].spec))
            continue;
        /* the speed is the noisy figure: the challenger must win at
         * the margin's worse */
        slower = samples[i];
        slower.mbps *= 1 - XM_COMP_AUTO_MARGIN;
        slower.dec_mbps *= 1 - XM_COMP_AUTO_MARGIN;
        t = xm_comp_estimate(&slower, link_mbps, false);
        if (t < best_t && t < none_t * (1 - XM_COMP_AUTO_MARGIN)) {
            best_t = xm_comp_estimate(&samples[i], link_mbps, false);
            best = samples[i].spec;
        }
    }
    return best;
}

/* ---- the codec object ---- */

int
xm_comp_codec_new(struct xm_comp_codec **codec_r)
{
    struct xm_comp_codec *c = calloc(1, sizeof(*c));

    if (!c)
        return XM_ERR_NOMEM;
    c->spec.algo = XM_COMP_NONE;
    c->accept = XM_COMP_SUPPORTED;
    *codec_r = c;
    return XM_OK;
}

void
xm_comp_codec_free(struct xm_comp_codec *c)
{
    if (!c)
        return;
    ZSTD_freeCCtx(c->zc);
    ZSTD_freeDCtx(c->zd);
    if (c->lc)
        LZ4F_freeCompressionContext(c->lc);
    if (c->ld)
        LZ4F_freeDecompressionContext(c->ld);
    free(c->lz4_buf);
    free(c->lz4_state);
    free(c->zr_buf);
    free(c->zr_segs);
    free(c);
}

int
xm_comp_codec_set(struct xm_comp_codec *c, const struct xm_comp_spec *spec)
{
    char name[32];

    if (!spec_valid(spec)) {
        xm_comp_spec_format(spec, name, sizeof(name));
        return fail(c, XM_ERR_INVAL, "cannot encode with '%s'", name);
    }
    c->spec = *spec;
    return XM_OK;
}

void
xm_comp_codec_accept(struct xm_comp_codec *c, uint32_t algos)
{
    c->accept = (algos & XM_COMP_SUPPORTED) | XM_COMP_MASK(XM_COMP_NONE);
}

void
xm_comp_codec_zero_runs(struct xm_comp_codec *c, bool on)
{
    c->zero_runs = on;
}

void
xm_comp_codec_accept_zero_runs(struct xm_comp_codec *c, bool on)
{
    c->accept_zero_runs = on;
}

void
xm_comp_codec_lz4_blocks(struct xm_comp_codec *c, bool on)
{
    if (c->lz4_blocks != on)
        c->zero_block_len = 0;  /* a kept block of the other format */
    c->lz4_blocks = on;
}

void
xm_comp_codec_accept_lz4_blocks(struct xm_comp_codec *c, bool on)
{
    c->accept_lz4_blocks = on;
}

void
xm_comp_codec_stats(const struct xm_comp_codec *c,
                    struct xm_comp_stats *stats_r)
{
    *stats_r = c->stats;
}

const char *
xm_comp_error(const struct xm_comp_codec *c)
{
    return c->err;
}

/* ---- encoding ---- */

/*
 * The body of a zstd block: one frame with content size and checksum,
 * into out[0..cap).  *n_r = 0 when it does not fit in cap.
 */
static int
zstd_body(struct xm_comp_codec *c, int level, const uint8_t *in,
          size_t len, uint8_t *out, size_t cap, size_t *n_r)
{
    size_t r;

    if (!c->zc) {
        c->zc = ZSTD_createCCtx();
        if (!c->zc)
            return fail(c, XM_ERR_NOMEM, "zstd: no memory for a context");
        r = ZSTD_CCtx_setParameter(c->zc, ZSTD_c_checksumFlag, 1);
        if (!ZSTD_isError(r))
            r = ZSTD_CCtx_setParameter(c->zc, ZSTD_c_contentSizeFlag, 1);
        if (ZSTD_isError(r))
            return fail(c, XM_ERR_INVAL, "zstd: %s", ZSTD_getErrorName(r));
    }
    if (c->zc_level != level) {
        r = ZSTD_CCtx_setParameter(c->zc, ZSTD_c_compressionLevel, level);
        if (ZSTD_isError(r))
            return fail(c, XM_ERR_INVAL, "zstd level %d: %s", level,
                        ZSTD_getErrorName(r));
        c->zc_level = level;
    }
    r = ZSTD_compress2(c->zc, out, cap, in, len);
    if (ZSTD_isError(r)) {
        if (ZSTD_getErrorCode(r) == ZSTD_error_dstSize_tooSmall) {
            *n_r = 0;
            return XM_OK;
        }
        return fail(c, ZSTD_getErrorCode(r) == ZSTD_error_memory_allocation ?
                    XM_ERR_NOMEM : XM_ERR_INVAL, "zstd: %s",
                    ZSTD_getErrorName(r));
    }
    *n_r = r;
    return XM_OK;
}

/* The smallest LZ4 frame block size that holds len bytes in one block. */
static LZ4F_blockSizeID_t
lz4_block_id(size_t len)
{
    if (len <= 64u * 1024)
        return LZ4F_max64KB;
    if (len <= 256u * 1024)
        return LZ4F_max256KB;
    return LZ4F_max1MB;
}

static int
lz4_fail(struct xm_comp_codec *c, size_t r)
{
    return fail(c, XM_ERR_INVAL, "lz4: %s", LZ4F_getErrorName(r));
}

/* Make the codec's LZ4 context and a buffer of at least need bytes. */
static int
lz4_encoder_ready(struct xm_comp_codec *c, size_t need)
{
    uint8_t *p;

    if (!c->lc && LZ4F_isError(LZ4F_createCompressionContext(&c->lc,
                                                             LZ4F_VERSION))) {
        c->lc = NULL;
        return fail(c, XM_ERR_NOMEM, "lz4: no memory for a context");
    }
    if (c->lz4_buf_len >= need)
        return XM_OK;
    p = realloc(c->lz4_buf, need);
    if (!p)
        return fail(c, XM_ERR_NOMEM, "lz4: no memory for %zu bytes", need);
    c->lz4_buf = p;
    c->lz4_buf_len = need;
    return XM_OK;
}

/* Bytes of the hash before a bare LZ4 block. */
#define LZ4_BLOCK_HASH_LEN 8u

static void
put_be64(uint8_t *p, uint64_t v)
{
    xm_put_be32(p, (uint32_t)(v >> 32));
    xm_put_be32(p + 4, (uint32_t)v);
}

static uint64_t
get_be64(const uint8_t *p)
{
    return (uint64_t)xm_get_be32(p) << 32 | xm_get_be32(p + 4);
}

/* The body of an lz4 block with lz4 blocks on: the XXH64 of in, then
 * one bare LZ4 block, into out[0..cap).  *n_r = 0 when it does not fit
 * in cap. */
static int
lz4_block_body(struct xm_comp_codec *c, const uint8_t *in, size_t len,
               uint8_t *out, size_t cap, size_t *n_r)
{
    int r;

    *n_r = 0;
    if (!c->lz4_state) {
        c->lz4_state = malloc((size_t)LZ4_sizeofState());
        if (!c->lz4_state)
            return fail(c, XM_ERR_NOMEM, "lz4: no memory for a state");
    }
    if (cap <= LZ4_BLOCK_HASH_LEN || len > (size_t)LZ4_MAX_INPUT_SIZE)
        return XM_OK;
    r = LZ4_compress_fast_extState(c->lz4_state, (const char *)in,
                                   (char *)out + LZ4_BLOCK_HASH_LEN,
                                   (int)len,
                                   (int)(cap - LZ4_BLOCK_HASH_LEN), 1);
    if (r <= 0)
        return XM_OK;               /* does not fit: stored */
    put_be64(out, XXH64(in, len, 0));
    *n_r = LZ4_BLOCK_HASH_LEN + (size_t)r;
    return XM_OK;
}

/*
 * The body of an LZ4 block: one frame of one independent block with
 * content size and content checksum, into out[0..cap).  *n_r = 0 when
 * it does not fit in cap.  (With lz4 blocks on: lz4_block_body.)
 */
static int
lz4_body(struct xm_comp_codec *c, const uint8_t *in, size_t len,
         uint8_t *out, size_t cap, size_t *n_r)
{
    LZ4F_preferences_t prefs;
    size_t need, pos, r;
    int rc;

    if (c->lz4_blocks)
        return lz4_block_body(c, in, len, out, cap, n_r);
    memset(&prefs, 0, sizeof(prefs));
    prefs.frameInfo.blockSizeID = lz4_block_id(len);
    prefs.frameInfo.blockMode = LZ4F_blockIndependent;
    prefs.frameInfo.contentChecksumFlag = LZ4F_contentChecksumEnabled;
    prefs.frameInfo.contentSize = len;
    prefs.autoFlush = 1;            /* no copy into the context's buffer */
    /* Update with len bytes, then End: the bound covers both. */
    need = LZ4F_HEADER_SIZE_MAX + LZ4F_compressBound(len, &prefs);
    rc = lz4_encoder_ready(c, need);
    if (rc)
        return rc;
    r = LZ4F_compressBegin(c->lc, c->lz4_buf, need, &prefs);
    if (LZ4F_isError(r))
        return lz4_fail(c, r);
    pos = r;
    r = LZ4F_compressUpdate(c->lc, c->lz4_buf + pos, need - pos, in, len,
                            NULL);
    if (LZ4F_isError(r))
        return lz4_fail(c, r);
    pos += r;
    r = LZ4F_compressEnd(c->lc, c->lz4_buf + pos, need - pos, NULL);
    if (LZ4F_isError(r))
        return lz4_fail(c, r);
    pos += r;
    *n_r = 0;
    if (pos <= cap) {
        memcpy(out, c->lz4_buf, pos);
        *n_r = pos;
    }
    return XM_OK;
}

/* The flag of a body that lz4_body made with lz4 blocks on. */
static uint8_t
lz4_flag(const struct xm_comp_codec *c, enum xm_comp_algo algo)
{
    return algo == XM_COMP_LZ4 && c->lz4_blocks ? XM_COMP_FLAG_LZ4_BLOCK
                                                : 0;
}

static void
put_header(uint8_t *out, enum xm_comp_algo algo, uint8_t flags,
           size_t raw_len)
{
    out[HDR_OFF_MAGIC] = XM_COMP_MAGIC;
    out[HDR_OFF_VERSION] = XM_COMP_VERSION;
    out[HDR_OFF_ALGO] = (uint8_t)algo;
    out[HDR_OFF_FLAGS] = flags;
    xm_put_be32(out + HDR_OFF_RAW_LEN, (uint32_t)raw_len);
}

/* ---- zero runs ---- */

/* Room for need bytes in the codec's zr_buf (kept for the next
 * blocks). */
static int
zr_buf_ready(struct xm_comp_codec *c, size_t need)
{
    uint8_t *p;

    if (c->zr_buf_len >= need)
        return XM_OK;
    p = realloc(c->zr_buf, need);
    if (!p)
        return fail(c, XM_ERR_NOMEM, "no memory for %zu bytes", need);
    c->zr_buf = p;
    c->zr_buf_len = need;
    return XM_OK;
}

/* Room for n (literal, zero) pairs in the codec's zr_segs. */
static int
zr_segs_ready(struct xm_comp_codec *c, size_t n)
{
    uint32_t *p;

    if (c->zr_segs_len >= n)
        return XM_OK;
    p = realloc(c->zr_segs, n * 2 * sizeof(*p));
    if (!p)
        return fail(c, XM_ERR_NOMEM, "no memory for %zu segments", n);
    c->zr_segs = p;
    c->zr_segs_len = n;
    return XM_OK;
}

/* Is the unit at p (ZR_UNIT bytes) all zero?  Eight words OR-ed: the
 * first tells most data units apart at once. */
static bool
unit_is_zero(const uint8_t *p)
{
    uint64_t w[ZR_UNIT / 8], acc;

    memcpy(w, p, sizeof(w));
    if (w[0])
        return false;
    acc = 0;
    for (size_t i = 1; i < ZR_UNIT / 8; i++)
        acc |= w[i];
    return acc == 0;
}

static bool
bytes_are_zero(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i])
            return false;
    return true;
}

/*
 * The map+literals P of in[0..len) into the codec's zr_buf: the
 * segments (literal bytes, then zero bytes), each zero run of at least
 * XM_COMP_ZERO_RUN_MIN units-aligned bytes (a zero tail under a unit
 * joins the run before it).  *p_len_r = 0 when P would not be shorter
 * than the chunk by more than its length field: no runs worth eliding.
 */
static int
zr_build(struct xm_comp_codec *c, const uint8_t *in, size_t len,
         size_t *p_len_r)
{
    size_t nseg = 0, lit_from = 0, lit_total = 0, pos = 0, p_len, off;
    int rc;

    *p_len_r = 0;
    rc = zr_segs_ready(c, ZR_MAX_SEGS(len));
    if (rc)
        return rc;
    while (pos + ZR_UNIT <= len) {
        size_t start = pos;

        if (!unit_is_zero(in + pos)) {
            pos += ZR_UNIT;
            continue;
        }
        for (pos += ZR_UNIT; pos + ZR_UNIT <= len; pos += ZR_UNIT)
            if (!unit_is_zero(in + pos))
                break;
        if (pos + ZR_UNIT > len && bytes_are_zero(in + pos, len - pos))
            pos = len;
        if (pos - start < XM_COMP_ZERO_RUN_MIN)
            continue;
        c->zr_segs[2 * nseg] = (uint32_t)(start - lit_from);
        c->zr_segs[2 * nseg + 1] = (uint32_t)(pos - start);
        lit_total += start - lit_from;
        nseg++;
        lit_from = pos;
    }
    if (nseg == 0)
        return XM_OK;
    if (lit_from < len) {
        c->zr_segs[2 * nseg] = (uint32_t)(len - lit_from);
        c->zr_segs[2 * nseg + 1] = 0;
        lit_total += len - lit_from;
        nseg++;
    }
    p_len = 4 + 8 * nseg + lit_total;
    if (p_len + 4 >= len)
        return XM_OK;
    rc = zr_buf_ready(c, p_len);
    if (rc)
        return rc;
    xm_put_be32(c->zr_buf, (uint32_t)nseg);
    off = 4 + 8 * nseg;
    pos = 0;
    for (size_t i = 0; i < nseg; i++) {
        uint32_t lit = c->zr_segs[2 * i], zero = c->zr_segs[2 * i + 1];

        xm_put_be32(c->zr_buf + 4 + 8 * i, lit);
        xm_put_be32(c->zr_buf + 8 + 8 * i, zero);
        memcpy(c->zr_buf + off, in + pos, lit);
        off += lit;
        pos += (size_t)lit + zero;
    }
    *p_len_r = p_len;
    return XM_OK;
}

/*
 * Expand P (p[0..p_len), hostile) into out[0..raw_len).  The map must
 * account for exactly raw_len bytes and P's literals: one segment at
 * least, none empty, every zero run but the last at least
 * XM_COMP_ZERO_RUN_MIN (which bounds the map), the last one 0 or as
 * long.
 */
static int
zr_expand(struct xm_comp_codec *c, const uint8_t *p, size_t p_len,
          uint8_t *out, uint32_t raw_len)
{
    uint64_t done = 0, lits;
    size_t nseg, off;

    if (p_len < 4)
        return fail(c, XM_ERR_PROTO, "zero-run map of %zu bytes", p_len);
    nseg = xm_get_be32(p);
    if (nseg == 0 || nseg > ZR_MAX_SEGS(raw_len) || 4 + 8 * nseg > p_len)
        return fail(c, XM_ERR_PROTO, "zero-run map of %zu segments in %zu "
                    "bytes for %u raw bytes", nseg, p_len, raw_len);
    off = 4 + 8 * nseg;
    lits = p_len - off;
    for (size_t i = 0; i < nseg; i++) {
        uint32_t lit = xm_get_be32(p + 4 + 8 * i);
        uint32_t zero = xm_get_be32(p + 8 + 8 * i);

        if ((uint64_t)lit + zero == 0 ||
            (zero < XM_COMP_ZERO_RUN_MIN && (zero || i + 1 < nseg)))
            return fail(c, XM_ERR_PROTO, "zero-run segment %zu: %u literal "
                        "bytes, a run of %u", i, lit, zero);
        if (lit > lits || done + lit + zero > raw_len)
            return fail(c, XM_ERR_PROTO, "zero-run segment %zu goes past "
                        "the block's data", i);
        memcpy(out + done, p + off, lit);
        memset(out + done + lit, 0, zero);
        off += lit;
        lits -= lit;
        done += (uint64_t)lit + zero;
    }
    if (done != raw_len || lits != 0)
        return fail(c, XM_ERR_PROTO, "zero-run map covers %llu of %u raw "
                    "bytes, %llu literal bytes left over",
                    (unsigned long long)done, raw_len,
                    (unsigned long long)lits);
    return XM_OK;
}

/*
 * One block of in[0..len) with spec into out, which has room for
 * xm_comp_bound(len).  A body must come out at least one byte shorter
 * than the chunk, or the chunk is stored.
 */
static bool
chunk_is_zero(const uint8_t *in, size_t len)
{
    /* Byte 0 is zero and each byte equals the next; a chunk of data
     * differs early, so this costs little when it fails. */
    return len > 0 && in[0] == 0 && memcmp(in, in + 1, len - 1) == 0;
}

/*
 * A block of in[0..len) with its zero runs elided (see zr_build): P
 * compressed with spec, or stored when that does not shrink it.
 * *n_r = 0 when the chunk has no runs worth eliding.
 */
static int
encode_zr(struct xm_comp_codec *c, const struct xm_comp_spec *spec,
          const uint8_t *in, size_t len, uint8_t *out, size_t *n_r,
          enum xm_comp_algo *algo_r)
{
    enum xm_comp_algo algo = spec->algo;
    uint8_t *body = out + XM_COMP_HEADER_LEN + 4;
    size_t p_len, n = 0;
    int rc;

    *n_r = 0;
    rc = zr_build(c, in, len, &p_len);
    if (rc || p_len == 0)
        return rc;
    /* P of a few hundred bytes at most (a chunk of zeros): as is */
    if (p_len > 256 && algo == XM_COMP_ZSTD)
        rc = zstd_body(c, spec->level, c->zr_buf, p_len, body, p_len - 1,
                       &n);
    else if (p_len > 256 && algo == XM_COMP_LZ4)
        rc = lz4_body(c, c->zr_buf, p_len, body, p_len - 1, &n);
    if (rc)
        return rc;
    if (n == 0) {
        algo = XM_COMP_NONE;
        memcpy(body, c->zr_buf, p_len);
        n = p_len;
    }
    put_header(out, algo, XM_COMP_FLAG_ZERO_RUNS | lz4_flag(c, algo), len);
    xm_put_be32(out + XM_COMP_HEADER_LEN, (uint32_t)p_len);
    *n_r = XM_COMP_HEADER_LEN + 4 + n;
    *algo_r = algo;
    c->stats.zero_run_blocks++;
    return XM_OK;
}

static int
encode_block(struct xm_comp_codec *c, const struct xm_comp_spec *spec,
             bool zr, const uint8_t *in, size_t len, uint8_t *out,
             size_t *n_r, enum xm_comp_algo *algo_r)
{
    enum xm_comp_algo algo = spec->algo;
    uint8_t *body = out + XM_COMP_HEADER_LEN;
    bool zero;
    size_t n = 0;
    int rc = XM_OK;

    if (zr) {
        rc = encode_zr(c, spec, in, len, out, n_r, algo_r);
        if (rc || *n_r)
            return rc;
    }
    zero = algo != XM_COMP_NONE && chunk_is_zero(in, len);

    if (zero && c->zero_block_len && c->zero_raw_len == len &&
        c->zero_spec.algo == algo && c->zero_spec.level == spec->level) {
        memcpy(out, c->zero_block, c->zero_block_len);
        *n_r = c->zero_block_len;
        *algo_r = algo;
        return XM_OK;
    }
    if (len > 0 && algo == XM_COMP_ZSTD)
        rc = zstd_body(c, spec->level, in, len, body, len - 1, &n);
    else if (len > 0 && algo == XM_COMP_LZ4)
        rc = lz4_body(c, in, len, body, len - 1, &n);
    if (rc)
        return rc;
    if (n == 0) {
        algo = XM_COMP_NONE;
        if (len > 0)
            memcpy(body, in, len);
        n = len;
    }
    put_header(out, algo, lz4_flag(c, algo), len);
    *n_r = XM_COMP_HEADER_LEN + n;
    *algo_r = algo;
    if (zero && algo != XM_COMP_NONE && *n_r <= sizeof(c->zero_block)) {
        memcpy(c->zero_block, out, *n_r);
        c->zero_block_len = *n_r;
        c->zero_raw_len = len;
        c->zero_spec = *spec;
    }
    return XM_OK;
}

static void
count(struct xm_comp_codec *c, enum xm_comp_algo algo, size_t raw,
      size_t block)
{
    c->stats.blocks[algo]++;
    c->stats.raw_bytes += raw;
    c->stats.block_bytes += block;
}

/* A block of in[0..len) with the codec's settings, not counted yet. */
static int
encode_chunk(struct xm_comp_codec *c, const uint8_t *in, size_t len,
             uint8_t *out, size_t cap, size_t *out_len_r,
             enum xm_comp_algo *algo_r)
{
    if (len > XM_COMP_CHUNK_MAX)
        return fail(c, XM_ERR_TOOBIG, "chunk of %zu bytes: a block holds "
                    "at most %u", len, (unsigned)XM_COMP_CHUNK_MAX);
    if (cap < xm_comp_bound(len))
        return fail(c, XM_ERR_TOOBIG, "room for %zu bytes: a block of %zu "
                    "may take %zu", cap, len, xm_comp_bound(len));
    return encode_block(c, &c->spec, c->zero_runs, in, len, out, out_len_r,
                        algo_r);
}

int
xm_comp_encode(struct xm_comp_codec *c, const uint8_t *in, size_t len,
               uint8_t *out, size_t cap, size_t *out_len_r)
{
    enum xm_comp_algo algo;
    size_t n;
    int rc;

    rc = encode_chunk(c, in, len, out, cap, &n, &algo);
    if (rc)
        return rc;
    count(c, algo, len, n);
    *out_len_r = n;
    return XM_OK;
}

/* ---- decoding ---- */

static int
read_header(struct xm_comp_codec *c, const uint8_t *in, size_t len,
            struct block_header *h)
{
    unsigned algo;

    if (len < XM_COMP_HEADER_LEN)
        return fail(c, XM_ERR_PROTO, "block of %zu bytes is shorter than "
                    "its %u-byte header", len, XM_COMP_HEADER_LEN);
    if (in[HDR_OFF_MAGIC] != XM_COMP_MAGIC)
        return fail(c, XM_ERR_PROTO, "bad block magic 0x%02x (0x%02x "
                    "expected)", in[HDR_OFF_MAGIC], XM_COMP_MAGIC);
    if (in[HDR_OFF_VERSION] != XM_COMP_VERSION)
        return fail(c, XM_ERR_PROTO, "block format version %u, this build "
                    "reads %u", in[HDR_OFF_VERSION], XM_COMP_VERSION);
    algo = in[HDR_OFF_ALGO];
    if (algo >= XM_COMP_N_ALGOS)
        return fail(c, XM_ERR_PROTO, "unknown compression algorithm %u",
                    algo);
    if (!(c->accept & XM_COMP_MASK(algo)))
        return fail(c, XM_ERR_PROTO, "block compressed with %s, which was "
                    "not negotiated", algo_names[algo]);
    if (in[HDR_OFF_FLAGS] & ~(XM_COMP_FLAG_ZERO_RUNS | XM_COMP_FLAG_LZ4_BLOCK))
        return fail(c, XM_ERR_PROTO, "unknown block flags 0x%02x",
                    in[HDR_OFF_FLAGS]);
    if ((in[HDR_OFF_FLAGS] & XM_COMP_FLAG_ZERO_RUNS) && !c->accept_zero_runs)
        return fail(c, XM_ERR_PROTO, "block with zero runs, which were not "
                    "negotiated");
    if ((in[HDR_OFF_FLAGS] & XM_COMP_FLAG_LZ4_BLOCK) && algo != XM_COMP_LZ4)
        return fail(c, XM_ERR_PROTO, "%s block with the lz4 block flag",
                    algo_names[algo]);
    if ((in[HDR_OFF_FLAGS] & XM_COMP_FLAG_LZ4_BLOCK) &&
        !c->accept_lz4_blocks)
        return fail(c, XM_ERR_PROTO, "bare lz4 block, which was not "
                    "negotiated");
    h->algo = (enum xm_comp_algo)algo;
    h->flags = in[HDR_OFF_FLAGS];
    h->raw_len = xm_get_be32(in + HDR_OFF_RAW_LEN);
    if (h->raw_len > XM_COMP_CHUNK_MAX)
        return fail(c, XM_ERR_PROTO, "raw length %u over the limit of %u",
                    h->raw_len, (unsigned)XM_COMP_CHUNK_MAX);
    if ((h->algo != XM_COMP_NONE || h->flags) && h->raw_len == 0)
        return fail(c, XM_ERR_PROTO, "%s block of no data",
                    algo_names[algo]);
    return XM_OK;
}

/* Stored: the body is the raw data, exactly. */
static int
stored_decode(struct xm_comp_codec *c, const uint8_t *body, size_t n,
              uint8_t *out, uint32_t raw_len)
{
    if (n != raw_len)
        return fail(c, XM_ERR_PROTO, "stored block of %zu bytes for a raw "
                    "length of %u", n, raw_len);
    if (n > 0)
        memcpy(out, body, n);
    return XM_OK;
}

/* One zstd frame with checksum and content size raw_len, nothing after
 * it, into out[0..raw_len). */
static int
zstd_decode(struct xm_comp_codec *c, const uint8_t *body, size_t n,
            uint8_t *out, uint32_t raw_len)
{
    unsigned long long content = ZSTD_getFrameContentSize(body, n);
    size_t r;

    if (content == ZSTD_CONTENTSIZE_ERROR)
        return fail(c, XM_ERR_PROTO, "zstd block: no valid zstd frame "
                    "header");
    if (content == ZSTD_CONTENTSIZE_UNKNOWN)
        return fail(c, XM_ERR_PROTO, "zstd frame without its content size");
    if (content != raw_len)
        return fail(c, XM_ERR_PROTO, "zstd frame holds %llu bytes, the "
                    "block header says %u", content, raw_len);
    r = ZSTD_findFrameCompressedSize(body, n);
    if (ZSTD_isError(r))
        return fail(c, XM_ERR_PROTO, "truncated or corrupt zstd frame (%s)",
                    ZSTD_getErrorName(r));
    if (r != n)
        return fail(c, XM_ERR_PROTO, "%zu trailing bytes after the zstd "
                    "frame", n - r);
    if (n <= ZSTD_FHD_OFF || !(body[ZSTD_FHD_OFF] & ZSTD_FHD_CHECKSUM))
        return fail(c, XM_ERR_PROTO, "zstd frame without a checksum");
    if (!c->zd) {
        c->zd = ZSTD_createDCtx();
        if (!c->zd)
            return fail(c, XM_ERR_NOMEM, "zstd: no memory for a context");
    }
    r = ZSTD_decompressDCtx(c->zd, out, raw_len, body, n);
    if (ZSTD_isError(r))
        return fail(c, ZSTD_getErrorCode(r) == ZSTD_error_memory_allocation ?
                    XM_ERR_NOMEM : XM_ERR_PROTO, "zstd frame: %s",
                    ZSTD_getErrorName(r));
    if (r != raw_len)
        return fail(c, XM_ERR_PROTO, "zstd frame gave %zu bytes, the block "
                    "header says %u", r, raw_len);
    return XM_OK;
}

/* The LZ4 frame header says what our encoder writes, or it is refused
 * before the library allocates anything for it. */
static int
lz4_check_info(struct xm_comp_codec *c, const LZ4F_frameInfo_t *info,
               uint32_t raw_len)
{
    if (info->frameType != LZ4F_frame)
        return fail(c, XM_ERR_PROTO, "lz4 block: a skippable frame");
    if (info->contentSize != raw_len)
        return fail(c, XM_ERR_PROTO, "lz4 frame holds %llu bytes, the "
                    "block header says %u", info->contentSize, raw_len);
    if (info->contentChecksumFlag != LZ4F_contentChecksumEnabled)
        return fail(c, XM_ERR_PROTO, "lz4 frame without a checksum");
    if (info->blockSizeID > LZ4F_max1MB)
        return fail(c, XM_ERR_PROTO, "lz4 frame with blocks over 1 MiB");
    if (info->blockMode != LZ4F_blockIndependent)
        return fail(c, XM_ERR_PROTO, "lz4 frame with linked blocks");
    if (info->dictID != 0)
        return fail(c, XM_ERR_PROTO, "lz4 frame wants a dictionary");
    return XM_OK;
}

/* One LZ4 frame, checked as above, nothing after it, into
 * out[0..raw_len). */
static int
lz4_decode(struct xm_comp_codec *c, const uint8_t *body, size_t n,
           uint8_t *out, uint32_t raw_len)
{
    LZ4F_frameInfo_t info;
    size_t pos = n, produced = 0, src_n, dst_n, r;
    int rc;

    if (!c->ld && LZ4F_isError(LZ4F_createDecompressionContext(&c->ld,
                                                              LZ4F_VERSION))) {
        c->ld = NULL;
        return fail(c, XM_ERR_NOMEM, "lz4: no memory for a context");
    }
    LZ4F_resetDecompressionContext(c->ld);   /* after any earlier failure */
    memset(&info, 0, sizeof(info));
    r = LZ4F_getFrameInfo(c->ld, &info, body, &pos);
    if (LZ4F_isError(r))
        return fail(c, XM_ERR_PROTO, "lz4 frame header: %s",
                    LZ4F_getErrorName(r));
    rc = lz4_check_info(c, &info, raw_len);
    if (rc)
        return rc;
    /* Each round consumes or produces something, or the loop ends. */
    do {
        src_n = n - pos;
        dst_n = raw_len - produced;
        r = LZ4F_decompress(c->ld, out + produced, &dst_n, body + pos,
                            &src_n, NULL);
        if (LZ4F_isError(r))
            return fail(c, XM_ERR_PROTO, "lz4 frame: %s",
                        LZ4F_getErrorName(r));
        pos += src_n;
        produced += dst_n;
        if (r != 0 && src_n == 0 && dst_n == 0)
            return fail(c, XM_ERR_PROTO, pos == n ? "truncated lz4 frame" :
                        "lz4 frame decodes past its content size");
    } while (r != 0);
    if (pos != n)
        return fail(c, XM_ERR_PROTO, "%zu trailing bytes after the lz4 frame",
                    n - pos);
    if (produced != raw_len)
        return fail(c, XM_ERR_PROTO, "lz4 frame gave %zu bytes, the block "
                    "header says %u", produced, raw_len);
    return XM_OK;
}

/* A bare LZ4 block behind the XXH64 of what it holds: it must decode
 * to exactly raw_len bytes (LZ4_decompress_safe never writes past
 * them), and the hash must match. */
static int
lz4_block_decode(struct xm_comp_codec *c, const uint8_t *body, size_t n,
                 uint8_t *out, uint32_t raw_len)
{
    int r;

    if (n <= LZ4_BLOCK_HASH_LEN || n - LZ4_BLOCK_HASH_LEN > INT32_MAX)
        return fail(c, XM_ERR_PROTO, "lz4 block of %zu bytes", n);
    r = LZ4_decompress_safe((const char *)body + LZ4_BLOCK_HASH_LEN,
                            (char *)out, (int)(n - LZ4_BLOCK_HASH_LEN),
                            (int)raw_len);
    if (r < 0)
        return fail(c, XM_ERR_PROTO, "truncated or corrupt lz4 block");
    if ((uint32_t)r != raw_len)
        return fail(c, XM_ERR_PROTO, "lz4 block gave %d bytes, the block "
                    "header says %u", r, raw_len);
    if (XXH64(out, raw_len, 0) != get_be64(body))
        return fail(c, XM_ERR_PROTO, "lz4 block: the data does not match "
                    "its checksum");
    return XM_OK;
}

static int
decode_body(struct xm_comp_codec *c, enum xm_comp_algo algo, uint8_t flags,
            const uint8_t *body, size_t n, uint8_t *out, uint32_t raw_len)
{
    switch (algo) {
    case XM_COMP_LZ4:
        if (flags & XM_COMP_FLAG_LZ4_BLOCK)
            return lz4_block_decode(c, body, n, out, raw_len);
        return lz4_decode(c, body, n, out, raw_len);
    case XM_COMP_ZSTD:
        return zstd_decode(c, body, n, out, raw_len);
    case XM_COMP_NONE:
    default:
        return stored_decode(c, body, n, out, raw_len);
    }
}

/* A zero-run block's body: P's length, then P as algo has it. */
static int
decode_zr(struct xm_comp_codec *c, const struct block_header *h,
          const uint8_t *body, size_t n, uint8_t *out)
{
    uint32_t p_len;
    int rc;

    if (n < 4)
        return fail(c, XM_ERR_PROTO, "zero-run block without its length");
    p_len = xm_get_be32(body);
    if (p_len < 12 || p_len > ZR_P_MAX((size_t)h->raw_len))
        return fail(c, XM_ERR_PROTO, "zero-run map+literals of %u bytes "
                    "for %u raw bytes", p_len, h->raw_len);
    rc = zr_buf_ready(c, p_len);
    if (rc)
        return rc;
    rc = decode_body(c, h->algo, h->flags, body + 4, n - 4, c->zr_buf,
                     p_len);
    if (rc)
        return rc;
    rc = zr_expand(c, c->zr_buf, p_len, out, h->raw_len);
    if (rc)
        return rc;
    c->stats.zero_run_blocks++;
    return XM_OK;
}

int
xm_comp_decode(struct xm_comp_codec *c, const uint8_t *in, size_t len,
               uint8_t *out, size_t cap, size_t *out_len_r)
{
    const uint8_t *body = in + XM_COMP_HEADER_LEN;
    struct block_header h;
    size_t n;
    int rc;

    rc = read_header(c, in, len, &h);
    if (rc)
        return rc;
    if (h.raw_len > cap)
        return fail(c, XM_ERR_TOOBIG, "block of %u raw bytes, room for %zu",
                    h.raw_len, cap);
    n = len - XM_COMP_HEADER_LEN;
    if (h.flags & XM_COMP_FLAG_ZERO_RUNS)
        rc = decode_zr(c, &h, body, n, out);
    else
        rc = decode_body(c, h.algo, h.flags, body, n, out, h.raw_len);
    if (rc)
        return rc;
    count(c, h.algo, h.raw_len, len);
    *out_len_r = h.raw_len;
    return XM_OK;
}

/* ---- the stream pump's transforms ---- */

int
xm_comp_xform_encode(void *codec, const uint8_t *in, size_t len,
                     struct xm_buf *out)
{
    struct xm_comp_codec *c = codec;
    enum xm_comp_algo algo;
    size_t n;
    int rc;

    if (len > XM_COMP_CHUNK_MAX)
        return fail(c, XM_ERR_TOOBIG, "chunk of %zu bytes: a block holds "
                    "at most %u", len, (unsigned)XM_COMP_CHUNK_MAX);
    rc = xm_buf_reserve(out, xm_comp_bound(len));
    if (rc)
        return fail(c, rc, "no room for a block of %zu bytes",
                    xm_comp_bound(len));
    rc = encode_chunk(c, in, len, out->data + out->len,
                      out->alloc - out->len, &n, &algo);
    if (rc)
        return rc;
    /* With nothing to compress ("zero", or auto measuring) a chunk
     * without zero runs would be stored as is: it goes as a plain
     * frame instead (the pump sends the chunk when nothing is added),
     * 8 bytes and the receiver's copy shorter. */
    if (c->spec.algo == XM_COMP_NONE && algo == XM_COMP_NONE &&
        out->data[out->len + HDR_OFF_FLAGS] == 0)
        return XM_OK;
    count(c, algo, len, n);
    out->len += n;
    return XM_OK;
}

int
xm_comp_xform_decode(void *codec, const uint8_t *in, size_t len,
                     struct xm_buf *out)
{
    struct xm_comp_codec *c = codec;
    struct block_header h;
    size_t n;
    int rc;

    rc = read_header(c, in, len, &h);
    if (rc)
        return rc;
    /* At least a byte, so that out->data is never NULL below. */
    rc = xm_buf_reserve(out, h.raw_len ? h.raw_len : 1);
    if (rc)
        return fail(c, rc, "no room for a chunk of %u bytes", h.raw_len);
    rc = xm_comp_decode(c, in, len, out->data + out->len,
                        out->alloc - out->len, &n);
    if (rc)
        return rc;
    out->len += n;
    return XM_OK;
}

/* ---- measuring ---- */

#define MEASURE_RUNS 3

/* The thread's CPU time: a preempted (or, in a VM, stolen) moment does
 * not count against the codec. */
static double
cpu_seconds(void)
{
    struct timespec ts;

    if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts))
        clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int
xm_comp_measure(struct xm_comp_codec *c, const struct xm_comp_spec *spec,
                const uint8_t *data, size_t len, size_t chunk,
                struct xm_comp_sample *sample_r)
{
    enum xm_comp_algo algo;
    uint64_t total = 0;
    double t0, secs, best = 0, dec_best = 0;
    uint8_t *out = NULL, *back = NULL;
    size_t n, nchunks, bound, *blen = NULL;
    int rc;

    if (!spec_valid(spec) || len == 0 || chunk == 0 ||
        chunk > XM_COMP_CHUNK_MAX)
        return fail(c, XM_ERR_INVAL, "nothing to measure: spec, sample or "
                    "chunk size out of range");
    nchunks = (len + chunk - 1) / chunk;
    bound = xm_comp_bound(chunk);
    out = malloc(nchunks * bound);
    back = malloc(chunk);
    blen = calloc(nchunks, sizeof(*blen));
    if (!out || !back || !blen) {
        rc = fail(c, XM_ERR_NOMEM, "no memory for the blocks");
        goto out;
    }
    /* Untimed first block: contexts and buffers made on first use. */
    n = len < chunk ? len : chunk;
    rc = encode_block(c, spec, false, data, n, out, &blen[0], &algo);
    if (rc)
        goto out;
    /* Best of a few runs: noise only ever makes a run slower. */
    for (int run = 0; run < MEASURE_RUNS; run++) {
        total = 0;
        t0 = cpu_seconds();
        for (size_t off = 0, i = 0; off < len; off += n, i++) {
            n = len - off < chunk ? len - off : chunk;
            rc = encode_block(c, spec, false, data + off, n, out + i * bound,
                              &blen[i], &algo);
            if (rc)
                goto out;
            total += blen[i];
        }
        secs = cpu_seconds() - t0;
        if (run == 0 || secs < best)
            best = secs;
    }
    /* ... and decoding those blocks (what the receiver will spend) */
    for (int run = 0; run < MEASURE_RUNS; run++) {
        t0 = cpu_seconds();
        for (size_t off = 0, i = 0; off < len; off += n, i++) {
            const uint8_t *b = out + i * bound;

            n = len - off < chunk ? len - off : chunk;
            rc = decode_body(c, (enum xm_comp_algo)b[HDR_OFF_ALGO],
                             b[HDR_OFF_FLAGS], b + XM_COMP_HEADER_LEN,
                             blen[i] - XM_COMP_HEADER_LEN, back,
                             (uint32_t)n);
            if (rc)
                goto out;
        }
        secs = cpu_seconds() - t0;
        if (run == 0 || secs < dec_best)
            dec_best = secs;
    }
    if (best < 1e-9)
        best = 1e-9;                /* a clock that did not move */
    if (dec_best < 1e-9)
        dec_best = 1e-9;
    sample_r->spec = *spec;
    sample_r->mbps = (double)len / 1e6 / best;
    sample_r->ratio = (double)len / (double)total;
    sample_r->dec_mbps = (double)len / 1e6 / dec_best;
out:
    free(out);
    free(back);
    free(blen);
    return rc;
}

/* ---- zero pages ---- */

#define PAGE_LEN 4096u

bool
xm_comp_page_is_zero(const uint8_t *page)
{
    /* Byte 0 is zero and each byte equals the next: all zero. */
    return page[0] == 0 && memcmp(page, page + 1, PAGE_LEN - 1) == 0;
}

size_t
xm_comp_zero_pages(const uint8_t *data, size_t len)
{
    size_t n = 0;

    for (size_t off = 0; off + PAGE_LEN <= len; off += PAGE_LEN)
        n += xm_comp_page_is_zero(data + off);
    return n;
}

int
xm_comp_measure_mixed(struct xm_comp_codec *c,
                      const struct xm_comp_spec *spec,
                      const uint8_t *nonzero, size_t len,
                      double zero_share, size_t chunk,
                      struct xm_comp_sample *sample_r)
{
    struct xm_comp_sample nz = { .mbps = 1, .ratio = 1, .dec_mbps = 1 };
    struct xm_comp_sample z = nz;
    uint8_t *zeros = NULL;
    double secs, wire;
    int rc;

    if (!(zero_share >= 0 && zero_share <= 1))
        return fail(c, XM_ERR_INVAL, "zero share %f out of 0..1",
                    zero_share);
    if (len == 0)
        zero_share = 1;
    if (zero_share < 1) {
        rc = xm_comp_measure(c, spec, nonzero, len, chunk, &nz);
        if (rc)
            return rc;
    }
    if (zero_share > 0) {
        if (chunk == 0 || chunk > XM_COMP_CHUNK_MAX)
            return fail(c, XM_ERR_INVAL, "chunk of %zu bytes out of range",
                        chunk);
        /* One chunk of zero pages: the thread's CPU clock counts in
         * nanoseconds. */
        zeros = calloc(1, chunk);
        if (!zeros)
            return fail(c, XM_ERR_NOMEM, "no memory for zero pages");
        rc = xm_comp_measure(c, spec, zeros, chunk, chunk, &z);
        free(zeros);
        if (rc)
            return rc;
    }
    secs = (1 - zero_share) / nz.mbps + zero_share / z.mbps;
    wire = (1 - zero_share) / nz.ratio + zero_share / z.ratio;
    sample_r->spec = *spec;
    sample_r->mbps = 1 / secs;
    sample_r->ratio = 1 / wire;
    sample_r->dec_mbps = 1 / ((1 - zero_share) / nz.dec_mbps +
                              zero_share / z.dec_mbps);
    return XM_OK;
}
