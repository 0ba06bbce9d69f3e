/*
 * xm_compress.h -- compression of the migration stream's chunks.
 *
 * The stream pump (xm_stream.h) sends libxl's migration stream as
 * STREAM_DATA frames of one chunk each.  With the peer's agreement
 * (feature STREAM_COMPRESS, frame flag COMPRESSED) each chunk travels as
 * one self-describing block: an 8-byte header naming the algorithm and
 * the raw length, then the chunk stored as is, as one LZ4 frame (or,
 * with a peer that takes them, an XXH64 and a bare LZ4 block), or as
 * one zstd frame; each carries a checksum of the raw data, checked on
 * decoding.  A block always fits a STREAM_DATA
 * payload, and a chunk that compression does not shrink is stored.
 * doc/peer-protocol.md ("Compressed stream data") has the format.
 *
 * This module is pure code over buffers, built on libzstd and liblz4:
 * the spec parser ("auto", "none", "lz4", "zstd[:LEVEL]"), the block
 * codec with its reusable library contexts, the negotiation of the
 * algorithm with a peer, and the "auto" decision with the measurement
 * that feeds it.  No logging: a failure leaves its text in the codec
 * (xm_comp_error) for the caller to log once.
 */
#ifndef XM_COMPRESS_H
#define XM_COMPRESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "xm_proto.h"

/* Algorithms.  The numbers are part of the block format: never reuse. */
enum xm_comp_algo {
    XM_COMP_NONE = 0,       /* stored: the raw bytes */
    XM_COMP_LZ4 = 1,        /* one LZ4 frame (liblz4's lz4frame) */
    XM_COMP_ZSTD = 2,       /* one zstd frame */
};
#define XM_COMP_N_ALGOS 3

/* Sets of algorithms, as bit masks: bit n is algorithm n. */
#define XM_COMP_MASK(algo) (1u << (algo))
#define XM_COMP_SUPPORTED (XM_COMP_MASK(XM_COMP_NONE) | \
                           XM_COMP_MASK(XM_COMP_LZ4) | \
                           XM_COMP_MASK(XM_COMP_ZSTD))

/* ---- the block format ---- */

/* Block flags (header byte 3, 0 in a plain block). */
#define XM_COMP_FLAG_ZERO_RUNS 0x01u    /* the chunk's zero runs elided */
#define XM_COMP_FLAG_LZ4_BLOCK 0x02u    /* lz4: an XXH64 and a bare LZ4
                                         * block, not an LZ4 frame */
/* The shortest zero run a block elides (all but its last). */
#define XM_COMP_ZERO_RUN_MIN 256u

#define XM_COMP_MAGIC 0xc5u
#define XM_COMP_VERSION 1u
#define XM_COMP_HEADER_LEN 8u
/* The largest chunk a block holds: a stored block of it, header
 * included, is exactly the largest STREAM_DATA payload.  (A block of
 * 1 MiB of raw data could not fit when the data does not compress.) */
#define XM_COMP_CHUNK_MAX (XM_PROTO_STREAM_MAX - XM_COMP_HEADER_LEN)

/* The most bytes a block of len raw bytes takes: the stored case. */
static inline size_t
xm_comp_bound(size_t len)
{
    return XM_COMP_HEADER_LEN + len;
}

/* ---- what to send with: the spec ---- */

#define XM_COMP_ZSTD_LEVEL_DEFAULT 3    /* zstd's own default */

struct xm_comp_spec {
    bool automatic;             /* "auto": measure, then choose */
    enum xm_comp_algo algo;     /* when not automatic */
    int level;                  /* zstd: 1..ZSTD_maxCLevel(); else 0 */
    bool zero;                  /* "zero" (algo none): zero runs elided,
                                 * nothing compressed */
};

/*
 * Parse "auto", "none", "zero", "lz4", "zstd" or "zstd:LEVEL" (LEVEL decimal,
 * 1..ZSTD_maxCLevel(), i.e. 22; plain "zstd" is zstd:3).  Strict: lower
 * case, no spaces, no sign, no level on the others.  XM_ERR_INVAL with
 * err_r naming the bad part, e.g. "compression 'zstd:0': level 0 is
 * out of range 1..22".
 */
int xm_comp_spec_parse(const char *text, struct xm_comp_spec *spec_r,
                       char *err_r, size_t errlen);
/* "none", "lz4", "zstd"; NULL for a number that is not an algorithm. */
const char *xm_comp_algo_name(enum xm_comp_algo algo);
/* The spec as the parser reads it ("auto", "lz4", "zstd:3") into buf;
 * the length snprintf gives. */
int xm_comp_spec_format(const struct xm_comp_spec *spec, char *buf,
                        size_t len);

/* ---- negotiation (pure) ---- */

/*
 * Sets are masks of XM_COMP_MASK bits: what each side decodes.  The
 * hello's feature bits give a peer's set: an agent offering
 * STREAM_COMPRESS decodes every algorithm of block format 1 (a later
 * algorithm will come with a feature bit of its own); a peer without
 * the feature decodes none of them (the mask is 0).
 */
uint32_t xm_comp_algos_from_features(uint32_t features);
/* The common set: ours & theirs within XM_COMP_SUPPORTED, plus NONE,
 * always. */
uint32_t xm_comp_common(uint32_t ours, uint32_t theirs);
/*
 * The algorithm to send with; NONE means: send the chunks as they are,
 * without the transform (plain STREAM_DATA frames, which every peer
 * reads).  A fixed spec gets its algorithm when it is in the common
 * set, else NONE (the caller may log that the peer lacks it); never an
 * error.  "auto" gets the strongest in common (zstd, then lz4, then
 * none): the choice before any measurement; the agent refines it with
 * xm_comp_measure and xm_comp_auto_choose over the common set.
 */
enum xm_comp_algo xm_comp_negotiate(const struct xm_comp_spec *want,
                                    uint32_t ours, uint32_t theirs);

/* ---- "auto" (pure) ---- */

/* One algorithm measured on a sample of the stream. */
struct xm_comp_sample {
    struct xm_comp_spec spec;   /* what was measured (never automatic) */
    double mbps;                /* compression speed: MB (10^6 bytes) of
                                 * raw input per second */
    double ratio;               /* raw bytes / block bytes, headers in */
    double dec_mbps;            /* decompression speed, raw MB per
                                 * second; 0: not measured */
};

/*
 * The model.  Sending is pipelined: the agent compresses a chunk while
 * the link carries the previous ones, so the slower of the two sets the
 * pace.  Seconds per MB of raw data:
 *
 *     none:       1 / link
 *     algorithm:  max(1 / mbps, 1 / (ratio * link))
 *
 * Unless the host's CPU is the bottleneck (cpu_bound: it had no idle
 * time while the link was measured).  Then the link's pace is set by
 * the same CPU (TLS, the network stack, libxl's helper all want it),
 * the measured rate is that of a CPU shared with the codec, and
 * compressing and sending add up:
 *
 *     algorithm:  1 / mbps + 1 / dec_mbps + 1 / (ratio * link)
 *
 * so that a codec slower than the CPU can spare is not taken; the
 * receiver's decoding counts (its CPU is as busy: a pool's hosts are
 * alike), measured here as a stand-in (dec_mbps; 0 leaves it out).
 * xm_comp_estimate gives
 * the algorithm's figure (none's with s NULL); it is infinite for a
 * sample with a speed or ratio that is not a positive number.  Left
 * out: the bandwidth other migrations take.
 */
double xm_comp_estimate(const struct xm_comp_sample *s, double link_mbps,
                        bool cpu_bound);
/*
 * The spec among samples[0..n) with the lowest estimate, or none.  The
 * speeds are the noisy figures (more so under emulation; a ratio on a
 * given sample is exact), so a sample takes the lead only if its
 * estimate at a speed XM_COMP_AUTO_MARGIN lower than measured beats
 * the leader's as measured: a codec that is CPU-bound wins only by
 * more than the noise, while between codecs that the link bounds the
 * better ratio wins.  Against none, a sample must also beat 1 / link
 * by more than the margin (compression costs CPU that TLS and libxl's
 * helper want too).  A tie goes to the earlier sample, so list the
 * cheaper ones first.
 *
 * On a CPU that is the bottleneck only the cheapest codec (the fastest
 * measured) may be taken, and only if it beats none at its slower
 * speed in the CPU-bound model (sending raw costs CPU at both ends
 * too: that is margin enough).  There every speed is a share of a CPU
 * that libxl's helper, TLS and the guests want as well, and the
 * figures vary several times over between the streams of one drain
 * (in the lab lz4 25 to 120 MB/s): ranking codecs of 2 to 5 times each
 * other's cost on them picked zstd or none by chance, while the
 * cheapest codec that pays drained the lab's three guests fastest
 * (lz4 10.6-12.1 s; zstd:1 12.6-14.2 s, zero runs alone 14.0-14.1 s).
 *
 * A link speed that is not a positive number (unknown) gives none:
 * without it nothing says compression pays.
 */
#define XM_COMP_AUTO_MARGIN 0.10
struct xm_comp_spec xm_comp_auto_choose(const struct xm_comp_sample *samples,
                                        size_t n, double link_mbps,
                                        bool cpu_bound);

/* ---- the codec ---- */

struct xm_comp_codec;

/* Counters of a codec, both directions. */
struct xm_comp_stats {
    uint64_t blocks[XM_COMP_N_ALGOS];   /* blocks encoded or decoded */
    uint64_t raw_bytes;                 /* chunk bytes */
    uint64_t block_bytes;               /* block bytes, headers in */
    uint64_t zero_run_blocks;           /* blocks with zero runs elided */
};

/*
 * A codec encodes with one spec at a time (initially none) and decodes
 * blocks of any accepted algorithm (initially all of this build).  It
 * makes each library context on first use and keeps it: a stream of
 * chunks of steady size allocates nothing after its first block.  One
 * codec per stream and direction; not thread-safe.
 */
int xm_comp_codec_new(struct xm_comp_codec **codec_r);
void xm_comp_codec_free(struct xm_comp_codec *c);      /* NULL is fine */
/* The spec of the blocks encoded from now on: XM_ERR_INVAL for auto,
 * an unknown algorithm, or a level out of range. */
int xm_comp_codec_set(struct xm_comp_codec *c,
                      const struct xm_comp_spec *spec);
/* The algorithms a decoded block may use (the negotiated set); none is
 * always accepted. */
void xm_comp_codec_accept(struct xm_comp_codec *c, uint32_t algos);
/*
 * Zero runs.  Most of a guest's stream is zero pages, which cost every
 * codec time (under emulation, more than the rest of the stream) for
 * nothing.  With zero runs on, the encoder scans each chunk in 64-byte
 * units and elides every run of zero units of at least
 * XM_COMP_ZERO_RUN_MIN bytes: the block (flag XM_COMP_FLAG_ZERO_RUNS)
 * then holds a map of (literal length, zero length) segments and the
 * literal bytes, stored or compressed with the codec's algorithm as one
 * frame (doc/peer-protocol.md).  A chunk without such runs is encoded
 * as before.  Only for a peer that negotiated XM_FEAT_STREAM_ZERO_RUNS;
 * a decoder refuses such blocks until accept_zero_runs says yes.
 */
void xm_comp_codec_zero_runs(struct xm_comp_codec *c, bool on);
void xm_comp_codec_accept_zero_runs(struct xm_comp_codec *c, bool on);
/*
 * LZ4 blocks.  An LZ4 frame's content checksum (XXH32) costs more than
 * the decoding itself where CPUs are slow (a third of it under
 * emulation), and its frame API more than the bare block API.  With
 * lz4 blocks on, lz4 bodies are an XXH64 of the raw data (8 bytes,
 * big-endian) then one bare LZ4 block (flag XM_COMP_FLAG_LZ4_BLOCK),
 * checked as strictly: the block decodes to exactly the raw length and
 * the hash matches.  Only for a peer that negotiated
 * XM_FEAT_STREAM_LZ4_BLOCKS; a decoder refuses them until
 * accept_lz4_blocks says yes, and always takes LZ4 frames.
 */
void xm_comp_codec_lz4_blocks(struct xm_comp_codec *c, bool on);
void xm_comp_codec_accept_lz4_blocks(struct xm_comp_codec *c, bool on);
void xm_comp_codec_stats(const struct xm_comp_codec *c,
                         struct xm_comp_stats *stats_r);

/*
 * Encode in[0..len) as one block into out[0..cap); *out_len_r is its
 * length, at most xm_comp_bound(len).  The chunk is stored when the
 * codec's algorithm is none or does not make it smaller.  XM_ERR_TOOBIG
 * when len is over XM_COMP_CHUNK_MAX or cap under xm_comp_bound(len);
 * XM_ERR_NOMEM.
 */
int xm_comp_encode(struct xm_comp_codec *c, const uint8_t *in, size_t len,
                   uint8_t *out, size_t cap, size_t *out_len_r);
/*
 * Decode the block in[0..len) (a STREAM_DATA payload, hostile) into
 * out[0..cap); *out_len_r is the raw length.  XM_ERR_PROTO for anything
 * wrong with the block: short header, bad magic, another version, an
 * unknown or not accepted algorithm, a raw length over
 * XM_COMP_CHUNK_MAX, a frame that is truncated, followed by trailing
 * bytes, of another size than the header says, or failing its
 * checksum.  XM_ERR_TOOBIG when a valid raw length is over cap (the
 * caller's buffer).  Never reads past in[len) or writes past out[cap);
 * out's content is unspecified after an error.  xm_comp_error says
 * what was wrong.
 */
int xm_comp_decode(struct xm_comp_codec *c, const uint8_t *in, size_t len,
                   uint8_t *out, size_t cap, size_t *out_len_r);
/* Text for the codec's last failure ("" if none). */
const char *xm_comp_error(const struct xm_comp_codec *c);

/*
 * The same two as transforms for the stream pump: their signature is
 * xm_stream_xform_fn's, with the codec as arg, appending to out.  On the
 * sender: { xm_comp_xform_encode, codec, XM_FRAME_COMPRESSED } (chunks
 * must be at most XM_COMP_CHUNK_MAX: XM_ERR_TOOBIG otherwise).  With the
 * codec's algorithm none (zero runs only) a chunk without zero runs
 * adds nothing to out: the pump sends it as a plain frame.
 */
int xm_comp_xform_encode(void *codec, const uint8_t *in, size_t len,
                         struct xm_buf *out);
int xm_comp_xform_decode(void *codec, const uint8_t *in, size_t len,
                         struct xm_buf *out);

/*
 * Measure spec (not automatic) on a sample of the stream: encode
 * data[0..len) as blocks of chunk bytes (1..XM_COMP_CHUNK_MAX, as the
 * pump will send them), timed in the thread's CPU time (time the
 * thread did not run does not count; in a busy dom0 a run can still
 * read slow), best of three runs, then the decoding of those blocks
 * the same way (dec_mbps), and fill *sample_r.
 * Uses the codec's contexts, leaves its spec and counters alone.  Call
 * it on the first chunks of a stream, once per candidate; a few chunks
 * of 64 KiB take a few milliseconds.  XM_ERR_INVAL for an empty sample
 * or a bad spec or chunk, XM_ERR_NOMEM.
 */
int xm_comp_measure(struct xm_comp_codec *c, const struct xm_comp_spec *spec,
                    const uint8_t *data, size_t len, size_t chunk,
                    struct xm_comp_sample *sample_r);

/*
 * Guest memory is largely zero pages, which every codec turns into
 * next to nothing at a speed of its own; timing a codec on a sample of
 * them says little about the rest.  So the agent keeps apart the 4 KiB
 * pages (windows of a chunk, 4 KiB-aligned from its start) that are
 * zero and those that are not: xm_comp_zero_pages counts the zero ones
 * in data[0..len) (a tail under 4 KiB is not a page).
 *
 * xm_comp_measure_mixed then measures spec on the non-zero pages
 * nonzero[0..len) and on zero pages, and weighs the two by zero_share
 * (0..1: the share of the stream's pages that are zero): seconds and
 * wire bytes per raw byte add up.  With len 0 only zero pages count.
 * Errors as xm_comp_measure; XM_ERR_INVAL for a share out of range.
 */
size_t xm_comp_zero_pages(const uint8_t *data, size_t len);
bool xm_comp_page_is_zero(const uint8_t *page);    /* 4 KiB */
int xm_comp_measure_mixed(struct xm_comp_codec *c,
                          const struct xm_comp_spec *spec,
                          const uint8_t *nonzero, size_t len,
                          double zero_share, size_t chunk,
                          struct xm_comp_sample *sample_r);

#endif /* XM_COMPRESS_H */
