/*
 * migexec.c -- the migration executor (see migexec.h).
 *
 * Events (peer frames, hypervisor completions, timer, link changes) go
 * into one small queue and are fed to the machine one at a time; the
 * result of each synchronous action of a step is put at the head of
 * that queue, so it reaches the machine before anything else.  The
 * stream's socketpair: the hypervisor gets one end (closed by us once
 * its operation reports), the pump owns the other.  STREAM_END goes out
 * only when the machine asks for it and the pump has read libxl's end
 * to end of file.
 *
 * The source's pump reads a chunk, encodes it as one frame (through the
 * compressing transform once one is chosen) and hands it to the
 * channel while the channel holds less than max_pending.  In "auto" it
 * first sends plain frames (only chunks of zero pages compressed, at
 * next to no CPU cost: probe_encode; to a peer that takes zero runs,
 * those elided and the rest in lz4, the cheapest codec) and watches
 * the channel: once it stays full (the link is the bottleneck) for
 * the probe window, the rate at which it drains is the link's share
 * (bytes on the wire per second); the codecs are then timed on the
 * pages read so far that are not zero (xm_comp_measure: zero pages
 * cost every codec next to nothing) and the model of
 * xm_comp_auto_choose picks, provisionally while too few such pages
 * were seen.  A channel that never fills means the link keeps up with
 * libxl: plain frames stay (with zero runs, lz4 first gives way to
 * plain frames, and the link is watched again).  With zero runs the
 * codecs are timed again a few times further on (repick_check: a
 * guest kernel's pages, the first that are not zero, compress worse
 * than the rest).  doc/migration.md has the numbers.  What went out
 * is what left both the channel and the kernel's send queue (the
 * channel's unacked).  A held stream (migexec_hold: another
 * migration's guest is down) reads nothing and shrinks libxl's socket
 * buffer until released.
 *
 * Times for the downtime breakdown are the executor's clock on each
 * side; only durations cross the wire (READY: the target's stream end
 * to READY; GO: the source's suspend to READY's arrival, the rounds,
 * the compression; DONE: the target's restore and handshake), so the
 * hosts' clocks need not agree.  The one-way latency of READY is
 * counted in the stream tail.
 */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "migexec.h"
#include "xm_err.h"
#include "xm_json.h"
#include "xm_log.h"
#include "xm_stream.h"

#define QMAX 16
#define STREAM_CHUNK (256u * 1024)
/* What libxl's helper may write ahead of the pump (and the pump ahead
 * of libxl's restore): each wait on a full socketpair is a context
 * switch, dear in a dom0 (and dearer under emulation). */
#define SOCKET_BUF (4u * 1024 * 1024)
/* ... and while the stream is held: libxl's save stops within a few
 * pages instead of running 4 MiB ahead (far enough to end its precopy
 * and suspend its guest while another's is down). */
#define HELD_SOCKET_BUF (64u * 1024)
/* Near the end of a stream, what may wait on the way besides: on the
 * source, compressed bytes in the channel (a compressed megabyte is
 * several of libxl's); on the target, decoded bytes for libxl. */
#define ENDGAME_PENDING (64u * 1024)
#define ENDGAME_QUEUED (256u * 1024)
/* The target acknowledges (STREAM_ACK) each time this much more of the
 * stream went to libxl's restore. */
#define STREAM_ACK_EVERY (256u * 1024)
#define PROBE_MS 300u
#define PROBE_MIN_BYTES (256u * 1024)
#define PROBE_MAX_BYTES (8u * 1024 * 1024)
#define PROBE_FINAL_FACTOR 4u       /* auto: the first pick is final at
                                     * this many probe_max bytes */
#define SAMPLE_MAX (256u * 1024)    /* auto: raw bytes the codecs are
                                     * timed on (non-zero pages): enough
                                     * to rank them, little CPU */
#define SAMPLE_PAGE 4096u
#define SAMPLE_ENOUGH (64u * 1024)  /* non-zero bytes to compare codecs on */
#define PROBE_ZERO_SHARE 15u        /* auto, measuring: a chunk with at
                                     * least 15/16 of its pages zero goes
                                     * compressed */
#define CPU_BOUND_IDLE_PCT 10       /* auto: a host whose CPU was idle
                                     * less than this while the link was
                                     * measured is CPU-bound */
#define REPICK_EVERY (16u << 20)    /* auto, zero runs: the codecs timed
                                     * again after this much more of the
                                     * stream, */
#define REPICK_MAX 3u               /* this many times, */
#define REPICK_WINDOW (4u << 20)    /* on its pages that are not zero in
                                     * this much before, */
#define REPICK_SAMPLE (128u * 1024) /* at most this much of them */
#define MS_MAX (86400u * 1000)      /* a duration from a peer, at most */
#define ROUNDS_MAX 1000u
#define T_NONE (-1)                 /* a time not (yet) taken */

struct qev {
    struct xm_mig_event ev;
    char text[XM_MIG_WHY_MAX];
};

struct migexec {
    struct migexec_params p;
    struct xm_mig m;

    struct qev q[QMAX];         /* ring of pending events */
    unsigned qh, qn;
    bool running;               /* inside feed() */
    bool finished;              /* final report made */

    struct xm_loop_timer *timer;

    struct xm_journal_rec jrec; /* last record written */
    bool have_jrec;

    /* source: the live send */
    bool send_busy;
    struct xm_hv_async send_how;
    int send_fd;                /* the hypervisor's end */
    struct xm_stream_out so;
    bool so_on, so_finish;
    bool so_discard;            /* cancelled before libxl's opening was
                                 * read: read and drop it, then close */
    struct xm_loop_fd *so_h;
    struct xm_buf scratch;
    bool held;                  /* another migration's guest is down:
                                 * read nothing of libxl's (target:
                                 * give it nothing) */
    int down_told;              /* what p.down last heard: 2 down,
                                 * 1 near its end, 0 neither */
    bool quiet_told;            /* the channel heard chan.ops->quiet */

    /* target: the restore */
    bool recv_busy;
    bool recv_held;             /* pump ready, libxl not started: it
                                 * starts once the stream's opening is
                                 * in and checked (recv_gate) */
    char *recv_name;            /* held: the name to restore under */
    struct xm_hv_async recv_how;
    int recv_fd;                /* the hypervisor's end */
    uint32_t recv_domid;
    struct xm_stream_in si;
    bool si_on, rx_paused;
    bool si_tight;              /* near the end: libxl's socket small */
    struct xm_loop_fd *si_h;
    char *config_json;          /* target: from the OFFER */
    uint64_t offer_mem_kib;
    unsigned offer_vcpus;

    uint64_t bytes;
    /* STREAM_ACK: source, the bytes the target gave libxl (as it last
     * said); target, as it last said them */
    uint64_t acked;
    bool acks_seen;             /* source: the target sends them */

    /* compression */
    size_t chunk, max_pending;
    uint32_t features;          /* negotiated when the stream started */
    struct xm_comp_codec *enc;  /* source, when it may compress */
    bool zr;                    /* source: the peer takes zero runs */
    struct xm_comp_codec *dec;  /* target */
    bool probing;               /* source, auto: still measuring */
    bool provisional;           /* probing: the link is measured, the
                                 * codec chosen for now */
    double link_mbps;           /* probing: the link's share */
    bool sat;                   /* probing: the channel filled up */
    int64_t sat_t0;
    uint64_t sat_sent0;
    bool sat_cpu;               /* the host's CPU time at sat_t0: */
    int64_t sat_busy0, sat_idle0;
    bool probe_cpu;             /* the host's CPU time as probing began */
    int64_t probe_busy0, probe_idle0;
    int cpu_idle_pct;           /* while measured; -1: unknown */
    uint64_t repick_at;         /* auto: time the codecs again once
                                 * so.bytes_in is there; 0: never */
    unsigned repicks;           /* done */
    bool repick_sampling;       /* in the window before repick_at */
    uint8_t *sample;            /* probing: the last non-zero pages */
    size_t sample_len, sample_pos;
    uint64_t probe_bytes, probe_zero_bytes;
    uint64_t probe_plain_bytes; /* measuring: raw bytes sent of pages
                                 * not zero (as is; with zero runs, in
                                 * probe_spec) */
    struct xm_comp_spec probe_spec; /* measuring: the zero chunks' codec
                                     * (with zero runs: every chunk's) */
    char stream_why[XM_MIG_WHY_MAX];    /* target: why the stream broke */
    char offer_why[XM_MIG_WHY_MAX];     /* source: why no OFFER left */

    /* figures and times (the clock's ms, T_NONE when not taken) */
    struct migexec_stats st;
    uint64_t wire_in;           /* target: stream frame bytes */
    bool iter_seen, rounds_unknown;
    unsigned max_iter;
    int64_t t_susp, t_ready;                    /* source */
    int64_t t_endgame;          /* source: libxl's bytes reached
                                 * p.endgame_bytes */
    int64_t t_sent;             /* source: libxl's send returned (the
                                 * guest is suspended then, even when
                                 * libxc's report of it was not had) */
    int64_t t_end, t_recv_done, t_ready_sent, t_unpaused; /* target */
    int64_t peer_ready_delay, peer_restore, peer_handshake; /* source */
    int64_t peer_susp_to_ready;                 /* target */
    int peer_rounds;                            /* target */

    int64_t t_first;            /* first step: the trace's zero */

    /* recovery: what xm_mig_adopt asked for, run by migexec_kick */
    struct xm_mig_action adopt_acts[XM_MIG_ACTIONS_MAX];
    unsigned n_adopt;
};

/* ---- the event queue ---- */

static void
q_put(struct migexec *x, const struct xm_mig_event *ev, bool front)
{
    struct qev *slot;
    unsigned i;

    if (x->qn == QMAX)
        return;     /* cannot happen: at most a step's results + one */
    if (front) {
        x->qh = (x->qh + QMAX - 1) % QMAX;
        i = x->qh;
    } else {
        i = (x->qh + x->qn) % QMAX;
    }
    x->qn++;
    slot = &x->q[i];
    slot->ev = *ev;
    slot->text[0] = '\0';
    if (ev->text)
        snprintf(slot->text, sizeof(slot->text), "%s", ev->text);
    slot->ev.text = ev->text ? slot->text : NULL;
}

static bool
q_get(struct migexec *x, struct qev *out)
{
    if (!x->qn)
        return false;
    *out = x->q[x->qh];
    out->ev.text = out->ev.text ? out->text : NULL;
    x->qh = (x->qh + 1) % QMAX;
    x->qn--;
    return true;
}

static void feed(struct migexec *x, const struct xm_mig_event *ev);

static struct xm_mig_event
mkev(enum xm_mig_event_type type, int rc)
{
    struct xm_mig_event ev = { .type = type, .rc = rc };
    return ev;
}

/* ---- channel ---- */

static void
chan_send_flags(struct migexec *x, uint16_t type, uint16_t flags,
                const void *p, size_t len)
{
    /* A refused frame is a dropped one: the link reports the loss. */
    (void)x->p.chan.ops->send(x->p.chan.ctx, type, flags, p, len);
}

static void
chan_send(struct migexec *x, uint16_t type, const void *p, size_t len)
{
    chan_send_flags(x, type, 0, p, len);
}

static uint32_t
chan_features(struct migexec *x)
{
    const struct migexec_chan_ops *ops = x->p.chan.ops;

    return ops->features ? ops->features(x->p.chan.ctx) : 0;
}

static int64_t
now_ms(const struct migexec *x)
{
    return xm_clock_mono_ms(x->p.clock);
}

/* Hand the frames encoded in x->scratch to the channel, one by one. */
static void
chan_forward(struct migexec *x)
{
    const uint8_t *b = x->scratch.data;
    size_t pos = 0;

    while (x->scratch.len - pos >= XM_PROTO_HEADER_LEN) {
        uint16_t type = xm_get_be16(b + pos);
        uint16_t flags = xm_get_be16(b + pos + 2);
        uint32_t len = xm_get_be32(b + pos + 4);

        if (x->scratch.len - pos - XM_PROTO_HEADER_LEN < len)
            break;      /* cannot happen: the encoder writes whole */
        chan_send_flags(x, type, flags, b + pos + XM_PROTO_HEADER_LEN, len);
        pos += XM_PROTO_HEADER_LEN + len;
    }
    xm_buf_reset(&x->scratch);
}

/* The OFFER: who, how big, and the guest's config. */
static int
send_offer(struct migexec *x)
{
    struct xm_jgen *g = NULL;
    struct xm_domain *doms = NULL;
    const struct xm_domain *d = NULL;
    char *config = NULL;
    const char *text;
    char hex[33];
    size_t n = 0, len;
    int rc;

    rc = x->p.hv->ops->list_domains(x->p.hv->ctx, &doms, &n);
    if (rc)
        goto out;
    for (size_t i = 0; i < n; i++)
        if (doms[i].domid == x->m.ident.src_domid)
            d = &doms[i];
    if (!d) {
        rc = XM_ERR_NOTFOUND;
        goto out;
    }
    rc = x->p.hv->ops->domain_config(x->p.hv->ctx, d->domid, &config);
    if (rc)
        goto out;
    g = xm_jgen_new(false);
    if (!g) {
        rc = XM_ERR_NOMEM;
        goto out;
    }
    xm_mig_uuid_hex(x->m.ident.uuid, hex);
    xm_jgen_map_open(g);
    xm_jgen_kv_str(g, "id", x->m.ident.id);
    xm_jgen_kv_str(g, "name", x->m.ident.name);
    xm_jgen_kv_str(g, "uuid", hex);
    xm_jgen_kv_str(g, "source", x->m.ident.source);
    xm_jgen_kv_str(g, "target", x->m.ident.target);
    xm_jgen_kv_uint(g, "mem_kib", d->mem_kib);
    xm_jgen_kv_uint(g, "vcpus", d->vcpus);
    xm_jgen_key(g, "config");
    xm_jgen_raw(g, config, strlen(config));
    xm_jgen_map_close(g);
    rc = xm_jgen_finish(g, &text, &len);
    if (rc)
        goto out;
    /* Not chan_send: a refused OFFER (a config over the frame limit, the
     * link gone) is no frame lost on the way but one never sent. */
    rc = x->p.chan.ops->send(x->p.chan.ctx, XM_MSG_MIGRATE_OFFER, 0, text,
                             len);
out:
    xm_jgen_free(g);
    free(config);
    free(doms);
    return rc;
}

static void note_stats(struct migexec *x);
static void stats_compute(const struct migexec *x,
                          struct migexec_stats *st);

/* Duration a - b in ms for the wire: within 0..MS_MAX, or -1 when a
 * time is missing. */
static int64_t
span(int64_t a, int64_t b)
{
    if (a == T_NONE || b == T_NONE)
        return MIGEXEC_UNKNOWN;
    if (a < b)
        return 0;
    return a - b > MS_MAX ? MS_MAX : a - b;
}

static void
kv_known(struct xm_jgen *g, const char *key, int64_t v)
{
    if (v != MIGEXEC_UNKNOWN)
        xm_jgen_kv_int(g, key, v);
}

/* What this side tells the other of the downtime, in the control
 * messages of the handshake (see the file's comment). */
static void
timing_fields(struct migexec *x, struct xm_jgen *g, uint16_t type)
{
    struct migexec_stats st;

    switch (type) {
    case XM_MSG_MIGRATE_READY:
        kv_known(g, "ready_delay_ms", span(x->t_ready_sent, x->t_end));
        break;
    case XM_MSG_MIGRATE_GO:
        stats_compute(x, &st);
        kv_known(g, "susp_to_ready_ms", span(x->t_ready, x->t_susp));
        kv_known(g, "rounds", st.rounds);
        if (st.compress[0])
            xm_jgen_kv_str(g, "compress", st.compress);
        break;
    case XM_MSG_MIGRATE_DONE:
        kv_known(g, "restore_ms", span(x->t_recv_done, x->t_end));
        kv_known(g, "handshake_ms", span(x->t_unpaused, x->t_recv_done));
        break;
    default:
        break;
    }
}

/* A control message with {"id"} and maybe one more string field. */
static void
send_json(struct migexec *x, uint16_t type, const char *key,
          const char *val)
{
    struct xm_jgen *g = xm_jgen_new(false);
    const char *text;
    char hex[33];
    size_t len;

    if (!g)
        return;     /* as a dropped frame: the peer times out */
    xm_jgen_map_open(g);
    xm_jgen_kv_str(g, "id", x->m.ident.id);
    if (type == XM_MSG_MIGRATE_STATUS_REQ) {
        xm_mig_uuid_hex(x->m.ident.uuid, hex);
        xm_jgen_kv_str(g, "name", x->m.ident.name);
        xm_jgen_kv_str(g, "uuid", hex);
    }
    if (key)
        xm_jgen_kv_str(g, key, val);
    timing_fields(x, g, type);
    xm_jgen_map_close(g);
    if (xm_jgen_finish(g, &text, &len) == XM_OK)
        chan_send(x, type, text, len);
    xm_jgen_free(g);
}

/* ---- compression ---- */

static void
sample_free(struct migexec *x)
{
    free(x->sample);
    x->sample = NULL;
    x->sample_len = x->sample_pos = 0;
}

static void
set_compress(struct migexec *x, const char *used, const char *why)
{
    snprintf(x->st.compress, sizeof(x->st.compress), "%s", used);
    snprintf(x->st.compress_why, sizeof(x->st.compress_why), "%s", why);
}

/* From now on, chunks go out as blocks of spec (none: plain frames). */
static void
compress_with(struct migexec *x, const struct xm_comp_spec *spec)
{
    struct xm_stream_xform xf = { xm_comp_xform_encode, x->enc,
                                  XM_FRAME_COMPRESSED };
    char name[16];           /* "zstd:22" at most */

    xm_comp_spec_format(spec, name, sizeof(name));
    if ((spec->algo == XM_COMP_NONE && !x->zr) || !x->enc ||
        xm_comp_codec_set(x->enc, spec) != XM_OK) {
        snprintf(x->st.compress, sizeof(x->st.compress), "none");
        if (x->so_on)
            xm_stream_out_set_xform(&x->so, NULL);
        return;
    }
    /* "zero": zero runs elided, the rest as is; "zero+lz4": and the
     * rest compressed */
    if (!x->zr)
        snprintf(x->st.compress, sizeof(x->st.compress), "%s", name);
    else if (spec->algo == XM_COMP_NONE)
        snprintf(x->st.compress, sizeof(x->st.compress), "zero");
    else
        snprintf(x->st.compress, sizeof(x->st.compress), "zero+%s", name);
    if (x->so_on)
        xm_stream_out_set_xform(&x->so, &xf);
}

/* Keep n raw bytes in the ring of the last SAMPLE_MAX non-zero ones. */
static void
sample_keep(struct migexec *x, const uint8_t *p, size_t n)
{
    while (n > 0) {
        size_t k = SAMPLE_MAX - x->sample_pos;

        if (k > n)
            k = n;
        memcpy(x->sample + x->sample_pos, p, k);
        x->sample_pos = (x->sample_pos + k) % SAMPLE_MAX;
        x->sample_len = x->sample_len + k > SAMPLE_MAX ? SAMPLE_MAX
                                                       : x->sample_len + k;
        p += k;
        n -= k;
    }
}

/* A raw chunk read while probing: count its zero pages (4 KiB windows
 * from its start; a shorter tail counts as not zero), keep the rest for
 * the codecs' timing.  Returns the chunk's zero bytes. */
static size_t
sample_add(struct migexec *x, const uint8_t *p, size_t n)
{
    size_t off = 0, zero = 0;

    x->probe_bytes += n;
    for (; off + SAMPLE_PAGE <= n; off += SAMPLE_PAGE) {
        if (xm_comp_page_is_zero(p + off))
            zero += SAMPLE_PAGE;
        else
            sample_keep(x, p + off, SAMPLE_PAGE);
    }
    sample_keep(x, p + off, n - off);
    x->probe_zero_bytes += zero;
    return zero;
}

/*
 * The stream's transform while auto measures the link: every chunk is
 * sampled; one that is nearly all zero pages (the guest's untouched
 * memory, which every codec turns into next to nothing at little CPU
 * cost) goes as a block of probe_spec, any other as is (a plain frame:
 * no codec time is spent before the link is known to be the
 * bottleneck, and the link is measured on those).
 */
static int
probe_encode(void *arg, const uint8_t *in, size_t len, struct xm_buf *out)
{
    struct migexec *x = arg;
    size_t zero = sample_add(x, in, len), zero_pages = zero / SAMPLE_PAGE;

    /* With zero runs, every chunk goes with its zero runs elided and
     * the rest in probe_spec (lz4, or as is: probe_check). */
    if (x->zr) {
        x->probe_plain_bytes += len - zero;
        return xm_comp_xform_encode(x->enc, in, len, out);
    }
    if (zero_pages == 0 ||
        zero_pages * 16 < len / SAMPLE_PAGE * PROBE_ZERO_SHARE) {
        x->probe_plain_bytes += len;
        return XM_OK;
    }
    return xm_comp_xform_encode(x->enc, in, len, out);
}

static uint64_t
probe_max(const struct migexec *x)
{
    return x->p.tune.probe_max_bytes ? x->p.tune.probe_max_bytes
                                     : PROBE_MAX_BYTES;
}

/*
 * auto with zero runs, after a final pick: the first pages that are not
 * zero are the guest kernel's, which compress worse than the rest of a
 * guest's memory (in the lab x1.3-1.4 with lz4, the whole stream x2.8),
 * so the codecs are timed again a few times further on, on the pages
 * of the window before each point, with the link and CPU figures of
 * the first measurement.
 */
static void
repick_schedule(struct migexec *x)
{
    x->repick_sampling = false;
    if (x->zr && x->repicks < REPICK_MAX && x->sample) {
        x->repick_at = x->so.bytes_in + REPICK_EVERY;
        return;
    }
    x->repick_at = 0;
    sample_free(x);
}

static void auto_pick(struct migexec *x, bool final);

/* The pump read a chunk (in[0..n)): sample it in a window before a
 * re-pick, and re-pick there (none when the window held too few pages
 * that are not zero: the next one will tell). */
static void
repick_check(struct migexec *x, const uint8_t *in, size_t n)
{
    if (!x->repick_at)
        return;
    if (x->so.bytes_in + REPICK_WINDOW < x->repick_at)
        return;
    if (!x->repick_sampling) {
        x->repick_sampling = true;
        x->sample_len = x->sample_pos = 0;
    }
    sample_add(x, in, n);
    if (x->so.bytes_in < x->repick_at)
        return;
    x->repicks++;
    if (x->sample_len >= SAMPLE_ENOUGH) {
        auto_pick(x, true);     /* schedules the next */
        return;
    }
    repick_schedule(x);
}

/* auto, the link measured: time the codecs and pick.  Final once the
 * codecs can be compared on enough pages that are not zero (or the
 * stream went far enough without them); until then the pick is
 * provisional: the pump compresses with it and goes on sampling. */
static void
auto_pick(struct migexec *x, bool final)
{
    static const struct xm_comp_spec candidates[] = {
        { false, XM_COMP_LZ4, 0 },
        { false, XM_COMP_ZSTD, 1 },
        { false, XM_COMP_ZSTD, XM_COMP_ZSTD_LEVEL_DEFAULT },
    };
    struct xm_comp_sample samples[3];
    struct xm_comp_spec best = { false, XM_COMP_NONE, 0 };
    char why[MIGEXEC_COMPRESS_WHY_MAX + 1], name[16];
    double zero = x->probe_bytes ? (double)x->probe_zero_bytes /
                                   (double)x->probe_bytes : 0;
    size_t n = 0, len;

    bool cpu_bound = x->cpu_idle_pct >= 0 &&
                     x->cpu_idle_pct < CPU_BOUND_IDLE_PCT;
    char cpu[64] = "";

    if (x->cpu_idle_pct >= 0)
        snprintf(cpu, sizeof(cpu), ", CPU %d%% idle%s", x->cpu_idle_pct,
                 cpu_bound ? " (the bottleneck)" : "");
    char again[40] = "";
    size_t sample_len = x->sample_len;

    if (x->repick_sampling) {
        snprintf(again, sizeof(again), " (again at %llu MiB)",
                 (unsigned long long)(x->so.bytes_in >> 20));
        if (sample_len > REPICK_SAMPLE)
            sample_len = REPICK_SAMPLE;
    }
    len = (size_t)snprintf(why, sizeof(why), "auto%s: link %.1f MB/s%s, "
                           "%.0f%% zero pages%s", final ? again : " (first)",
                           x->link_mbps, cpu, zero * 100,
                           x->zr ? " (elided)" : "");
    /* Every codec turns zero pages into next to nothing, fast: what
     * sets them apart is the other pages, and the share of zero pages
     * at the start of a stream says little of the rest.  So they are
     * compared on the other pages, when there are enough of them. */
    if (x->sample_len >= SAMPLE_ENOUGH || x->zr)
        zero = 0;
    for (size_t i = 0; i < 3 && x->probe_bytes; i++) {
        if (xm_comp_measure_mixed(x->enc, &candidates[i], x->sample,
                                  sample_len, zero, x->chunk,
                                  &samples[n]))
            continue;
        xm_comp_spec_format(&candidates[i], name, sizeof(name));
        if (len < sizeof(why))
            len += (size_t)snprintf(why + len, sizeof(why) - len,
                                    "; %s %.0f MB/s x%.1f", name,
                                    samples[n].mbps, samples[n].ratio);
        n++;
    }
    best = xm_comp_auto_choose(samples, n, x->link_mbps, cpu_bound);
    set_compress(x, "none", "");
    compress_with(x, &best);
    if (len < sizeof(why))
        snprintf(why + len, sizeof(why) - len, ": %s", x->st.compress);
    snprintf(x->st.compress_why, sizeof(x->st.compress_why), "%s", why);
    xm_log_debug("migration %s: %s", x->m.ident.id, why);
    x->provisional = !final;
    if (final) {
        x->probing = false;
        repick_schedule(x);
    }
}

/* auto: the link's share is measured (link_mbps > 0) or the link kept
 * up (0, why_none says so). */
static void
auto_decide(struct migexec *x, double link_mbps, const char *why_none)
{
    struct xm_comp_spec none = { false, XM_COMP_NONE, 0 };
    char why[MIGEXEC_COMPRESS_WHY_MAX + 1];

    if (link_mbps <= 0) {
        x->probing = false;
        snprintf(why, sizeof(why), "auto: %s", why_none);
        set_compress(x, "none", why);
        compress_with(x, &none);
        sample_free(x);
        return;
    }
    x->link_mbps = link_mbps;
    auto_pick(x, x->sample_len >= SAMPLE_ENOUGH ||
                 x->so.bytes_in >= PROBE_FINAL_FACTOR * probe_max(x));
}

/* auto: the host's CPU idle time, in percent, since it read busy0 and
 * idle0 (known: whether it could); -1: unknown. */
static int
idle_pct_since(const struct migexec *x, bool known, int64_t busy0,
               int64_t idle0)
{
    int64_t busy, idle;

    if (!known || xm_clock_cpu_ms(x->p.clock, &busy, &idle) ||
        busy < busy0 || idle < idle0 || busy - busy0 + idle - idle0 <= 0)
        return -1;
    return (int)((idle - idle0) * 100 / (busy - busy0 + idle - idle0));
}

/* auto: is the link measured yet (then: are there pages enough to
 * compare the codecs on)?  Called as the channel fills and drains. */
static void
probe_check(struct migexec *x)
{
    size_t pending, unacked;
    uint64_t sent;
    int64_t now;
    char why[80];

    /* (called for every chunk: nothing to read once auto decided) */
    if (!x->probing)
        return;
    if (x->provisional) {
        if (x->sample_len >= SAMPLE_ENOUGH ||
            x->so.bytes_in >= PROBE_FINAL_FACTOR * probe_max(x))
            auto_pick(x, true);
        return;
    }
    pending = x->p.chan.ops->pending(x->p.chan.ctx);
    unacked = x->p.chan.ops->unacked ? x->p.chan.ops->unacked(x->p.chan.ctx)
                                     : 0;
    /* over the link: neither queued here nor in the kernel's buffer
     * (which TCP grows early in a connection: counting it as sent
     * measured links at twice their speed) */
    sent = x->so.bytes_out > pending + (uint64_t)unacked
           ? x->so.bytes_out - pending - unacked : 0;
    now = now_ms(x);
    if (!x->sat && pending >= x->max_pending / 2) {
        x->sat = true;
        x->sat_t0 = now;
        x->sat_sent0 = sent;
        x->sat_cpu = xm_clock_cpu_ms(x->p.clock, &x->sat_busy0,
                                     &x->sat_idle0) == XM_OK;
        return;
    }
    if (!x->sat) {
        if (x->probe_plain_bytes < probe_max(x))
            return;
        if (x->zr && x->probe_spec.algo != XM_COMP_NONE) {
            /* kept up with compressed pages: on a CPU that was the
             * bottleneck they stay so (the codec did not hold libxl
             * up: the CPU did, and plain pages would cost it more in
             * TLS and the network stack); else measure again, as is */
            char name[16];
            int idle = idle_pct_since(x, x->probe_cpu, x->probe_busy0,
                                      x->probe_idle0);

            xm_comp_spec_format(&x->probe_spec, name, sizeof(name));
            if (idle >= 0 && idle < CPU_BOUND_IDLE_PCT) {
                x->probing = false;
                compress_with(x, &x->probe_spec);
                snprintf(x->st.compress_why, sizeof(x->st.compress_why),
                         "auto: the link kept up with %s for %.1f MiB of "
                         "pages that are not zero, CPU %d%% idle (the "
                         "bottleneck): %s", name,
                         (double)x->probe_plain_bytes / 1048576, idle,
                         x->st.compress);
                xm_log_debug("migration %s: %s", x->m.ident.id,
                             x->st.compress_why);
                sample_free(x);
                return;
            }
            x->probe_spec = (struct xm_comp_spec){ false, XM_COMP_NONE, 0 };
            if (xm_comp_codec_set(x->enc, &x->probe_spec) == XM_OK) {
                snprintf(x->st.compress_why, sizeof(x->st.compress_why),
                         "auto: measuring (the link kept up with %s for "
                         "%.1f MiB: now as is)", name,
                         (double)x->probe_plain_bytes / 1048576);
                x->probe_plain_bytes = 0;
                return;
            }
        }
        snprintf(why, sizeof(why), "the link kept up with libxl for "
                 "%.1f MiB%s: %s", (double)x->probe_plain_bytes / 1048576,
                 x->zr ? " of pages that are not zero" : "",
                 x->zr ? "zero" : "none");
        auto_decide(x, 0, why);
        return;
    }
    /* (with zero runs, only once the codecs have a page to be timed
     * on: a link that fills up is carrying such pages) */
    if (now - x->sat_t0 >= (x->p.tune.probe_ms ? x->p.tune.probe_ms
                                               : PROBE_MS) &&
        sent - x->sat_sent0 >= (x->p.tune.probe_min_bytes
                                ? x->p.tune.probe_min_bytes
                                : PROBE_MIN_BYTES) &&
        (!x->zr || x->sample_len >= SAMPLE_PAGE)) {
        x->cpu_idle_pct = idle_pct_since(x, x->sat_cpu, x->sat_busy0,
                                         x->sat_idle0);
        auto_decide(x, (double)(sent - x->sat_sent0) /
                       (double)(now - x->sat_t0) / 1000.0, NULL);
    }
}

/* Source, as the send starts: what the stream goes out with. */
static int
compress_setup(struct migexec *x)
{
    const struct xm_comp_spec *want = &x->p.compress;
    struct xm_comp_spec fixed = { false, XM_COMP_NONE, 0 };
    char why[96];
    uint32_t theirs;
    int rc;

    x->features = chan_features(x) & XM_PROTO_FEATURES;
    if (!want->automatic && want->algo == XM_COMP_NONE && !want->zero) {
        set_compress(x, "none", "");
        return XM_OK;
    }
    theirs = xm_comp_algos_from_features(x->features);
    if (!theirs) {
        set_compress(x, "none", "the peer does not offer stream "
                     "compression");
        return XM_OK;
    }
    if (!x->enc) {
        rc = xm_comp_codec_new(&x->enc);
        if (rc)
            return rc;
    }
    /* A peer that takes zero runs gets every chunk with them elided:
     * nearly free, and most of a guest's stream */
    x->zr = (x->features & XM_FEAT_STREAM_ZERO_RUNS) != 0;
    xm_comp_codec_zero_runs(x->enc, x->zr);
    xm_comp_codec_lz4_blocks(x->enc, (x->features &
                                      XM_FEAT_STREAM_LZ4_BLOCKS) != 0);
    if (want->automatic) {
        x->sample = malloc(SAMPLE_MAX);
        if (!x->sample)
            return XM_ERR_NOMEM;
        x->probing = true;
        x->sat = false;
        x->probe_cpu = xm_clock_cpu_ms(x->p.clock, &x->probe_busy0,
                                       &x->probe_idle0) == XM_OK;
        /* zstd:1 makes least of zero pages, fastest; else lz4 */
        x->probe_spec = (struct xm_comp_spec){ false, XM_COMP_LZ4, 0 };
        if (theirs & XM_COMP_MASK(XM_COMP_ZSTD))
            x->probe_spec = (struct xm_comp_spec){ false, XM_COMP_ZSTD, 1 };
        /* With zero runs elided, the rest in lz4 until the link is
         * measured (on the wire's bytes: what it carries), the cheapest
         * codec: plain, these pages took the link's first seconds at
         * full size.  Then as is, if the link kept up with that. */
        if (x->zr)
            x->probe_spec = (struct xm_comp_spec){
                false, theirs & XM_COMP_MASK(XM_COMP_LZ4) ? XM_COMP_LZ4
                                                          : XM_COMP_NONE, 0 };
        rc = xm_comp_codec_set(x->enc, &x->probe_spec);
        if (rc)
            return rc;
        set_compress(x, "none", "auto: measuring");
        xm_stream_out_set_xform(&x->so, &(struct xm_stream_xform){
            probe_encode, x, XM_FRAME_COMPRESSED });
        return XM_OK;
    }
    fixed.algo = xm_comp_negotiate(want, XM_COMP_SUPPORTED, theirs);
    fixed.level = fixed.algo == XM_COMP_ZSTD ? want->level : 0;
    /* lz4 says how it goes: bare blocks, or frames to an older peer */
    snprintf(why, sizeof(why), "%s%s%s",
             want->zero && !x->zr ? "the peer does not take zero runs" : "",
             want->zero && !x->zr && fixed.algo == XM_COMP_LZ4 ? "; " : "",
             fixed.algo != XM_COMP_LZ4 ? ""
             : x->features & XM_FEAT_STREAM_LZ4_BLOCKS
             ? "bare LZ4 blocks (the peer takes them)"
             : "LZ4 frames (the peer takes no bare blocks)");
    set_compress(x, "none", why);
    compress_with(x, &fixed);
    return XM_OK;
}

/* ---- the stream pumps ---- */

static void so_pump(struct migexec *x);
static void si_update(struct migexec *x);
static void down_check(struct migexec *x);
static void set_sndbuf(int fd, int size);

static void
so_close(struct migexec *x)
{
    if (x->so_h)
        xm_loop_del_fd(x->p.loop, x->so_h);
    x->so_h = NULL;
    if (x->so_on)
        xm_stream_out_dispose(&x->so);
    x->so_on = false;
    x->so_finish = false;
    x->so_discard = false;
    if (x->probing && !x->provisional) {
        set_compress(x, "none", "auto: the stream ended before the link "
                     "was measured");
        /* what its blocks went with (so is off: only the name is set) */
        if (x->so.frames_xformed)
            compress_with(x, &x->probe_spec);
    }
    x->probing = x->provisional = false;
    x->repick_at = 0;
    sample_free(x);
}

static void
si_close(struct migexec *x)
{
    if (x->si_h)
        xm_loop_del_fd(x->p.loop, x->si_h);
    x->si_h = NULL;
    if (x->si_on) {
        note_stats(x);
        xm_stream_in_dispose(&x->si);
    }
    x->si_on = false;
    if (x->rx_paused)
        x->p.chan.ops->rx_pause(x->p.chan.ctx, false);
    x->rx_paused = false;
}

static void
so_ready(void *arg, int fd, short revents)
{
    (void)fd;
    (void)revents;
    so_pump(arg);
}

/* Wake for libxl's bytes when the pump would take them. */
/* Source: near its end, the stream is MIGEXEC_ENDGAME_AHEAD or more
 * ahead of the target's restore (by its STREAM_ACKs: a target that sends
 * none is not waited for). */
static bool
so_ahead(const struct migexec *x)
{
    return x->acks_seen && x->t_endgame != T_NONE &&
           x->so.bytes_in >= x->acked + MIGEXEC_ENDGAME_AHEAD;
}

static void
so_events(struct migexec *x)
{
    short ev = POLLIN;

    if (!x->so_h)
        return;
    if (x->held || x->p.chan.ops->pending(x->p.chan.ctx) >= x->max_pending
        || (!x->send_busy && !x->so_finish) || so_ahead(x))
        ev = 0;
    xm_loop_fd_events(x->so_h, ev);
}

/* Where the stream nears its end, in what we read of it: libxl may
 * have written its socket's buffer ahead of us (the kernel counts
 * twice what it was given, with the overhead of each write), and a
 * hold from then must still find its first pass unfinished (its last
 * rounds and the suspend not yet taken). */
static uint64_t
endgame_at(const struct migexec *x)
{
    uint64_t ahead = 3u * SOCKET_BUF;

    if (ahead > x->p.endgame_bytes / 2)
        ahead = x->p.endgame_bytes / 2;
    return x->p.endgame_bytes - ahead;
}

/* The stream nears its end: say so (the owner may hold other streams,
 * or this one).  What waits in the pipe when libxc suspends the guest
 * is its downtime's: from here on, libxl runs only a little ahead, and
 * the channel holds little. */
static void
endgame_begin(struct migexec *x)
{
    x->t_endgame = now_ms(x);
    xm_log_debug("migration %s: near its end at %llu bytes",
                 x->m.ident.id, (unsigned long long)x->so.bytes_in);
    if (x->send_busy && x->send_fd >= 0)
        set_sndbuf(x->send_fd, HELD_SOCKET_BUF);
    if (x->max_pending > ENDGAME_PENDING)
        x->max_pending = ENDGAME_PENDING;
    down_check(x);
}

/* Move what libxl wrote into frames while the channel has room. */
static void
so_pump(struct migexec *x)
{
    uint64_t before;
    size_t pending, n_read;
    int rc;

    while (x->so_on && x->so_discard) {
        /* libxl 4.17 kills us if its stream's opening cannot be
         * written (xm_stream.h): take those bytes, drop them, close. */
        rc = xm_stream_out_fill(&x->so, &x->scratch, x->features, 0, 1);
        n_read = x->scratch.len;
        xm_buf_reset(&x->scratch);
        if (rc || !x->send_busy || xm_stream_out_done(&x->so)
            || x->so.bytes_in >= XM_LIBXL_PREFIX_LEN) {
            so_close(x);
            return;
        }
        if (!n_read) {
            xm_loop_fd_events(x->so_h, POLLIN);
            return;
        }
    }
    while (x->so_on && !x->held) {
        /* End of file only after the send reported: wait for the
         * machine to ask for STREAM_END before reading it. */
        if (x->send_fd < 0 && !x->send_busy && !x->so_finish)
            break;
        probe_check(x);
        pending = x->p.chan.ops->pending(x->p.chan.ctx);
        if (pending >= x->max_pending || so_ahead(x))
            break;
        before = x->so.bytes_in;
        rc = xm_stream_out_fill(&x->so, &x->scratch, x->features, 0, 1);
        if (rc) {
            /* Our end broke (or the codec failed): the send fails and
             * reports it. */
            so_close(x);
            return;
        }
        if (!x->scratch.len)
            break;
        /* (while measuring, probe_encode samples) */
        if (x->probing && x->provisional && x->so.bytes_in > before)
            sample_add(x, x->so.buf, (size_t)(x->so.bytes_in - before));
        else if (x->repick_at && x->so.bytes_in > before)
            repick_check(x, x->so.buf, (size_t)(x->so.bytes_in - before));
        x->bytes = x->so.bytes_in;
        chan_forward(x);
        if (xm_stream_out_done(&x->so)) {
            so_close(x);
            return;
        }
        if (x->t_endgame == T_NONE && x->p.endgame_bytes &&
            x->so.bytes_in >= endgame_at(x))
            endgame_begin(x);   /* may hold us */
    }
    so_events(x);
}

static void
si_ready(void *arg, int fd, short revents)
{
    struct migexec *x = arg;

    (void)fd;
    (void)revents;
    if (xm_stream_in_flush(&x->si)) {
        si_close(x);    /* libxl gave up: its restore reports it */
        return;
    }
    si_update(x);
}

static void
si_update(struct migexec *x)
{
    bool full;
    uint8_t ack[8];

    if (!x->si_on)
        return;
    /* STREAM_ACK: what went to libxl, every STREAM_ACK_EVERY */
    if ((chan_features(x) & XM_FEAT_STREAM_ACK) &&
        x->si.bytes_out >= x->acked + STREAM_ACK_EVERY) {
        x->acked = x->si.bytes_out;
        xm_put_be64(ack, x->acked);
        chan_send(x, XM_MSG_STREAM_ACK, ack, sizeof(ack));
    }
    full = xm_stream_in_full(&x->si);
    if (full != x->rx_paused) {
        x->rx_paused = full;
        x->p.chan.ops->rx_pause(x->p.chan.ctx, full);
    }
    if (x->si_h)
        xm_loop_fd_events(x->si_h, xm_stream_in_events(&x->si));
}

/* ---- hypervisor ---- */

static void
send_done(void *arg, int rc)
{
    struct migexec *x = arg;
    struct xm_mig_event ev;

    x->send_busy = false;
    if (x->send_fd >= 0)
        close(x->send_fd);
    x->send_fd = -1;
    if (x->so_discard)
        so_close(x);    /* cancelled, and libxl is done with it */
    if (!rc && x->t_sent == T_NONE)
        x->t_sent = now_ms(x);
    if (!rc) {
        ev = mkev(XM_MIG_EV_SEND_DONE, 0);
    } else {
        /* Was ours left suspended?  Ask the hypervisor. */
        struct xm_domain *doms = NULL;
        size_t n = 0;
        bool susp = false;

        if (x->p.hv->ops->list_domains(x->p.hv->ctx, &doms, &n) == XM_OK)
            for (size_t i = 0; i < n; i++)
                if (doms[i].domid == x->m.ident.src_domid
                    && (doms[i].flags & (XM_DOM_PAUSED
                                         | XM_DOM_SUSPENDED)))
                    susp = true;
        free(doms);
        ev = mkev(susp ? XM_MIG_EV_SEND_FAILED_SUSPENDED
                       : XM_MIG_EV_SEND_FAILED, rc);
        ev.text = xm_strerror(rc);
    }
    feed(x, &ev);
}

static void
recv_done(void *arg, int rc)
{
    struct migexec *x = arg;
    struct xm_mig_event ev;

    /* A stream that broke on our side fails the restore, whatever
     * libxl made of the bytes it had. */
    if (!rc && x->stream_why[0])
        rc = XM_ERR_PROTO;
    ev = mkev(rc ? XM_MIG_EV_RECV_FAILED : XM_MIG_EV_RECV_DONE, rc);
    x->recv_busy = false;
    if (x->recv_fd >= 0)
        close(x->recv_fd);
    x->recv_fd = -1;
    si_close(x);
    x->t_recv_done = now_ms(x);
    if (x->t_end == T_NONE)
        x->t_end = x->t_recv_done;  /* libxl had all it needed */
    down_check(x);
    ev.domid = rc ? 0 : x->recv_domid;
    if (rc)
        ev.text = x->stream_why[0] ? x->stream_why : xm_strerror(rc);
    feed(x, &ev);
}

/* The send buffer of fd's writer (SOCKET_BUF: larger than the system's
 * default, which root may pass); a failure only costs speed. */
static void
set_sndbuf(int fd, int size)
{
    if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &size, sizeof(size)))
        (void)setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof(size));
}

/* Start the live send.  XM_OK, or the rc to fail it with. */
static int
start_send(struct migexec *x)
{
    int sv[2] = { -1, -1 };
    int rc;

    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
        return xm_err_from_errno(errno);
    set_sndbuf(sv[1], x->held ? HELD_SOCKET_BUF : SOCKET_BUF);
                                /* libxl writes there */
    rc = xm_stream_out_init(&x->so, sv[0], x->chunk);
    if (rc)
        goto out;
    sv[0] = -1;     /* the pump owns it */
    x->so_on = true;
    rc = compress_setup(x);
    if (rc)
        goto out;
    rc = xm_loop_add_fd(x->p.loop, x->so.fd, POLLIN, so_ready, x,
                        &x->so_h);
    if (rc)
        goto out;
    x->send_how.done = send_done;
    x->send_how.arg = x;
    rc = x->p.hv->ops->migrate_send(x->p.hv->ctx, x->m.ident.src_domid,
                                    sv[1], &x->send_how);
    if (rc)
        goto out;
    x->send_fd = sv[1];
    sv[1] = -1;     /* kept until the send reports */
    x->send_busy = true;
out:
    if (rc)
        so_close(x);
    if (sv[0] >= 0)
        close(sv[0]);
    if (sv[1] >= 0)
        close(sv[1]);
    return rc;
}

static int
start_recv(struct migexec *x, const char *name)
{
    int sv[2] = { -1, -1 };
    int rc;

    if (!x->config_json)
        return XM_ERR_STATE;
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
        return xm_err_from_errno(errno);
    set_sndbuf(sv[0], SOCKET_BUF);  /* we write there */
    rc = xm_stream_in_init(&x->si, sv[0], MIGEXEC_MAX_QUEUED);
    if (rc)
        goto out;
    sv[0] = -1;
    x->si_on = true;
    /* Every flagged frame is one block of xm_compress; the hello
     * already refused the flag on a link that did not negotiate it. */
    if (!x->dec) {
        rc = xm_comp_codec_new(&x->dec);
        if (rc)
            goto out;
    }
    xm_comp_codec_accept_zero_runs(x->dec, (chan_features(x) &
                                            XM_FEAT_STREAM_ZERO_RUNS) != 0);
    xm_comp_codec_accept_lz4_blocks(x->dec, (chan_features(x) &
                                             XM_FEAT_STREAM_LZ4_BLOCKS) != 0);
    xm_stream_in_set_xform(&x->si, &(struct xm_stream_xform){
        xm_comp_xform_decode, x->dec, XM_FRAME_COMPRESSED });
    rc = xm_loop_add_fd(x->p.loop, x->si.fd, 0, si_ready, x, &x->si_h);
    if (rc)
        goto out;
    free(x->recv_name);
    x->recv_name = strdup(name);
    if (!x->recv_name) {
        rc = XM_ERR_NOMEM;
        goto out;
    }
    /* libxl starts when the stream's opening is in (recv_gate). */
    xm_stream_in_hold(&x->si, true);
    x->recv_held = true;
    x->recv_fd = sv[1];
    sv[1] = -1;
out:
    if (rc)
        si_close(x);
    if (sv[0] >= 0)
        close(sv[0]);
    if (sv[1] >= 0)
        close(sv[1]);
    return rc;
}

/*
 * The restore never started (held): drop the pump and report the
 * failure libxl would have, with why.  Feeds the machine: may free x.
 */
static void
recv_abandon(struct migexec *x, int rc, const char *why)
{
    struct xm_mig_event ev = mkev(XM_MIG_EV_RECV_FAILED, rc);

    x->recv_held = false;
    if (!x->stream_why[0])
        snprintf(x->stream_why, sizeof(x->stream_why), "%s", why);
    si_close(x);
    if (x->recv_fd >= 0)
        close(x->recv_fd);
    x->recv_fd = -1;
    free(x->recv_name);
    x->recv_name = NULL;
    x->t_recv_done = now_ms(x);
    ev.domid = 0;
    ev.text = x->stream_why;
    feed(x, &ev);
}

/*
 * Held: start libxl once the first XM_LIBXL_PREFIX_LEN bytes are in and
 * open a libxl stream (xm_stream.h says why libxl 4.17 must have them
 * before anything can fail), then let the queue go to it: those bytes
 * are in its socket before any end of file can be.  A stream that
 * ends, or opens with anything else, fails here and libxl never runs.
 * Feeds the machine on failure: may free x (true then); else the caller
 * updates the pump's events (si_update).
 */
static bool
recv_gate(struct migexec *x)
{
    char why[96], msg[XM_MIG_WHY_MAX + 128];
    const uint8_t *p;
    size_t n;
    int rc;

    if (!x->recv_held)
        return false;
    p = xm_stream_in_peek(&x->si, &n);
    if (n < XM_LIBXL_PREFIX_LEN && !x->si.ending)
        return false;
    if (xm_libxl_prefix_check(p, n, why, sizeof(why))) {
        snprintf(msg, sizeof(msg), "bad stream from %s: %s",
                 x->m.ident.source, why);
        recv_abandon(x, XM_ERR_PROTO, msg);
        return true;
    }
    x->recv_how.done = recv_done;
    x->recv_how.arg = x;
    x->recv_domid = 0;
    rc = x->p.hv->ops->migrate_recv(x->p.hv->ctx, x->config_json,
                                    x->recv_name, x->recv_fd,
                                    &x->recv_domid, &x->recv_how);
    if (rc) {
        snprintf(msg, sizeof(msg), "cannot start the restore: %s",
                 xm_strerror(rc));
        recv_abandon(x, rc, msg);
        return true;
    }
    free(x->recv_name);
    x->recv_name = NULL;
    x->recv_held = false;
    x->recv_busy = true;
    xm_stream_in_hold(&x->si, x->held);
    if (xm_stream_in_flush(&x->si))
        si_close(x);    /* libxl gave up: its restore reports it */
    return false;
}

/*
 * The stream to libxl ends here: libxl's restore reads end of file and
 * fails (and reports), or, held, it never starts and the receive fails
 * now with rc and why.  May free x.
 */
static void
recv_stop(struct migexec *x, int rc, const char *why)
{
    if (x->recv_held)
        recv_abandon(x, rc, why);
    else
        si_close(x);
}

/* The target's capacity and name check of the offer. */
static struct xm_mig_event
check_offer(struct migexec *x)
{
    struct xm_domain *doms = NULL;
    struct xm_mig_dom *view = NULL;
    struct xm_hostinfo hi;
    struct xm_mig_hostview host;
    struct xm_mig_offer offer;
    struct xm_mig_event ev = mkev(XM_MIG_EV_CHECK_FAILED, 0);
    const char *why = NULL;
    size_t n = 0;
    int rc;

    rc = x->p.hv->ops->list_domains(x->p.hv->ctx, &doms, &n);
    if (!rc)
        rc = x->p.hv->ops->hostinfo(x->p.hv->ctx, &hi);
    if (!rc && n) {
        view = calloc(n, sizeof(*view));
        if (!view)
            rc = XM_ERR_NOMEM;
    }
    if (rc) {
        ev.rc = rc;
        ev.text = "cannot read the host's state";
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        view[i].name = doms[i].name;
        memcpy(view[i].uuid, doms[i].uuid, 16);
        view[i].domid = doms[i].domid;
        view[i].state = (doms[i].flags & XM_DOM_SUSPENDED)
            ? XM_MIG_DOM_SUSPENDED : (doms[i].flags & XM_DOM_PAUSED)
            ? XM_MIG_DOM_PAUSED : XM_MIG_DOM_RUNNING;
    }
    host.doms = view;
    host.n = n;
    host.free_kib = hi.free_kib;
    host.cordoned = x->p.cordoned;
    offer.name = x->m.ident.name;
    offer.mem_kib = x->offer_mem_kib;
    offer.vcpus = x->offer_vcpus;
    rc = xm_mig_offer_check(&offer, &host, &why);
    if (!rc)
        ev = mkev(XM_MIG_EV_CHECK_OK, 0);
    ev.rc = rc;
    ev.text = why;  /* static text of xm_mig_offer_check */
out:
    free(view);
    free(doms);
    return ev;
}

/* A synchronous hypervisor op's result event. */
static struct xm_mig_event
hv_sync(struct migexec *x, const struct xm_mig_action *a)
{
    const struct xm_hv_ops *ops = x->p.hv->ops;
    void *ctx = x->p.hv->ctx;
    int rc;

    switch (a->op) {
    case XM_MIG_OP_RENAME:
        rc = ops->rename(ctx, a->domid, a->name);
        return mkev(rc ? XM_MIG_EV_RENAME_FAILED : XM_MIG_EV_RENAME_OK,
                    rc);
    case XM_MIG_OP_RESUME:
        rc = ops->resume(ctx, a->domid);
        return mkev(rc ? XM_MIG_EV_RESUME_FAILED : XM_MIG_EV_RESUME_OK,
                    rc);
    case XM_MIG_OP_UNPAUSE:
        rc = ops->unpause(ctx, a->domid);
        if (!rc)
            x->t_unpaused = now_ms(x);
        return mkev(rc ? XM_MIG_EV_UNPAUSE_FAILED : XM_MIG_EV_UNPAUSE_OK,
                    rc);
    case XM_MIG_OP_DESTROY:
        /* No domain (a restore that never created one) is gone. */
        if (a->domid == 0 || a->domid == UINT32_MAX)
            return mkev(XM_MIG_EV_DESTROY_OK, 0);
        rc = ops->destroy(ctx, a->domid);
        if (rc == XM_ERR_NOTFOUND)
            rc = XM_OK;
        return mkev(rc ? XM_MIG_EV_DESTROY_FAILED : XM_MIG_EV_DESTROY_OK,
                    rc);
    default:
        return mkev(XM_MIG_EV_COUNT, 0);
    }
}

/* ---- timer ---- */

static void
on_timer(void *arg)
{
    struct migexec *x = arg;
    struct xm_mig_event ev = mkev(XM_MIG_EV_TIMEOUT, XM_ERR_TIMEOUT);

    x->timer = NULL;    /* fired: gone */
    feed(x, &ev);
}

static void
timer_cancel(struct migexec *x)
{
    xm_loop_cancel_timer(x->p.loop, x->timer);
    x->timer = NULL;
}

/* ---- performing one step's actions ---- */

static void
report(struct migexec *x, bool final)
{
    struct migexec_result res;

    memset(&res, 0, sizeof(res));
    xm_mig_result(&x->m, &res.mig);
    res.bytes = x->bytes;
    res.state = x->m.state;
    migexec_stats(x, &res.stats);
    x->p.done(x->p.arg, x, &res, final);
}

/*
 * The OFFER could not be made or sent (the guest vanished, libxl would
 * not give its config, no memory, a config over the frame limit): fail
 * now, guest untouched, with the reason.  Waiting for the ACCEPT timer
 * instead left the peer a connection that carried the hellos and then
 * nothing, until its idle timer closed it 30 s later: a stall with no
 * word in either log.  A timeout with a text is how the executor ends
 * a migration itself (as migexec_abort).
 */
static void
offer_failed(struct migexec *x, int rc, struct xm_mig_event *res_r)
{
    snprintf(x->offer_why, sizeof(x->offer_why),
             "cannot make the offer: %s", xm_strerror(rc));
    *res_r = mkev(XM_MIG_EV_TIMEOUT, rc);
    res_r->text = x->offer_why;
}

static void
do_send(struct migexec *x, const struct xm_mig_action *a,
        struct xm_mig_event *res_r)
{
    uint16_t type = 0;
    int rc;

    switch (a->msg) {
    case XM_MIG_MSG_OFFER:
        rc = send_offer(x);
        if (rc)
            offer_failed(x, rc, res_r);
        return;
    case XM_MIG_MSG_REJECT:
    case XM_MIG_MSG_ABORT:
        type = a->msg == XM_MIG_MSG_REJECT ? XM_MSG_MIGRATE_REJECT
                                           : XM_MSG_MIGRATE_ABORT;
        if (xm_enc_error(&x->scratch, type, 0, a->code,
                         a->text ? a->text : "") == XM_OK)
            chan_forward(x);
        xm_buf_reset(&x->scratch);
        return;
    case XM_MIG_MSG_STREAM_END:
        /* The pump sends it once it has read libxl's end to EOF. */
        x->so_finish = true;
        so_pump(x);
        return;
    case XM_MIG_MSG_ACCEPT: type = XM_MSG_MIGRATE_ACCEPT; break;
    case XM_MIG_MSG_READY:
        type = XM_MSG_MIGRATE_READY;
        if (x->t_ready_sent == T_NONE)
            x->t_ready_sent = now_ms(x);
        break;
    case XM_MIG_MSG_GO: type = XM_MSG_MIGRATE_GO; break;
    case XM_MIG_MSG_DONE: type = XM_MSG_MIGRATE_DONE; break;
    case XM_MIG_MSG_STATUS_REQ: type = XM_MSG_MIGRATE_STATUS_REQ; break;
    case XM_MIG_MSG_STATUS:
        send_json(x, XM_MSG_MIGRATE_STATUS, "status",
                  xm_mig_peer_status_name(a->status));
        return;
    }
    if (type)
        send_json(x, type, NULL, NULL);
}

/* Perform a; a synchronous result goes to *res_r (type COUNT: none). */
static void
perform(struct migexec *x, const struct xm_mig_action *a,
        struct xm_mig_event *res_r, bool *report_r)
{
    char err[256];
    int rc;

    res_r->type = XM_MIG_EV_COUNT;
    switch (a->type) {
    case XM_MIG_A_SEND:
        do_send(x, a, res_r);
        break;
    case XM_MIG_A_HV:
        switch (a->op) {
        case XM_MIG_OP_SEND:
            rc = start_send(x);
            if (rc) {
                *res_r = mkev(XM_MIG_EV_SEND_FAILED, rc);
                res_r->text = "cannot start the live send";
            }
            break;
        case XM_MIG_OP_RECV:
            rc = start_recv(x, a->name);
            if (rc) {
                *res_r = mkev(XM_MIG_EV_RECV_FAILED, rc);
                res_r->text = "cannot start the restore";
            }
            break;
        case XM_MIG_OP_CANCEL_SEND:
            /* No cancel in the interface: close our end of the stream;
             * the send fails on it and reports once.  Not before
             * libxl's opening is written, though (so_pump). */
            if (x->so_on && x->send_busy
                && x->so.bytes_in < XM_LIBXL_PREFIX_LEN) {
                x->so_discard = true;
                so_pump(x);
            } else {
                so_close(x);
            }
            break;
        case XM_MIG_OP_CANCEL_RECV:
            recv_stop(x, XM_ERR_CANCELLED, "the stream was cancelled "
                      "before libxl started");
            break;
        default:
            *res_r = hv_sync(x, a);
            break;
        }
        break;
    case XM_MIG_A_JOURNAL: {
        struct xm_journal_rec rec;

        xm_mig_journal_rec(&x->m, a->phase, xm_clock_wall_s(x->p.clock),
                           x->have_jrec ? &x->jrec : NULL, &rec);
        rc = xm_journal_put(x->p.journal, &rec, err, sizeof(err));
        if (rc) {
            *res_r = mkev(XM_MIG_EV_JOURNAL_FAILED, rc);
            res_r->text = "cannot write the journal";
        } else {
            x->jrec = rec;
            x->have_jrec = true;
            *res_r = mkev(XM_MIG_EV_JOURNAL_OK, 0);
        }
        break;
    }
    case XM_MIG_A_CHECK_OFFER:
        *res_r = check_offer(x);
        break;
    case XM_MIG_A_ARM:
        timer_cancel(x);
        if (xm_loop_add_timer(x->p.loop, a->ms, on_timer, x, &x->timer))
            x->timer = NULL;    /* no memory: the peer's timers act */
        break;
    case XM_MIG_A_CANCEL_TIMER:
        timer_cancel(x);
        break;
    case XM_MIG_A_CONNECT:
        rc = x->p.chan.ops->connect(x->p.chan.ctx);
        if (rc == XM_OK)
            *res_r = mkev(XM_MIG_EV_LINK_UP, 0);
        else if (rc != XM_ERR_BUSY)
            *res_r = mkev(XM_MIG_EV_LINK_LOST, rc);
        break;
    case XM_MIG_A_REPORT:
        *report_r = true;
        break;
    case XM_MIG_A_ADOPT:
        break;      /* recovery only; not run here */
    }
}

static void
perform_all(struct migexec *x, const struct xm_mig_action *acts,
            unsigned n)
{
    struct xm_mig_event res[XM_MIG_ACTIONS_MAX];
    unsigned nres = 0;
    bool rep = false;

    for (unsigned i = 0; i < n; i++) {
        perform(x, &acts[i], &res[nres], &rep);
        if (res[nres].type != XM_MIG_EV_COUNT)
            nres++;
    }
    /* Results first, in the order their actions ran. */
    while (nres)
        q_put(x, &res[--nres], true);
    /* A send that reported and was not asked to end the stream leaves
     * nothing to pump. */
    if (x->so_on && !x->send_busy && !x->so_finish)
        so_close(x);
    if (rep && !xm_mig_terminal(&x->m))
        report(x, false);
}

static void
step_one(struct migexec *x, const struct xm_mig_event *ev)
{
    struct xm_mig_action acts[XM_MIG_ACTIONS_MAX];
    unsigned n = 0;

    enum xm_mig_state was = x->m.state;

    if (x->t_first == T_NONE)
        x->t_first = now_ms(x);
    (void)xm_mig_step(&x->m, ev, acts, XM_MIG_ACTIONS_MAX, &n);
    /* The trace of a migration's phases, for whoever profiles one. */
    if (x->m.state != was)
        xm_log_debug("migration %s: %s -> %s on %s at +%" PRId64 " ms, "
                     "%" PRIu64 " bytes", x->m.ident.id,
                     xm_mig_state_name(was), xm_mig_state_name(x->m.state),
                     xm_mig_event_name(ev->type), now_ms(x) - x->t_first,
                     x->bytes);
    perform_all(x, acts, n);
}

static void run_queue(struct migexec *x);

/* Feed ev and everything it leads to.  May free x (final report). */
static void
feed(struct migexec *x, const struct xm_mig_event *ev)
{
    if (x->finished)
        return;
    q_put(x, ev, false);
    if (x->running)
        return;
    run_queue(x);
}

/* Tell the channel once nothing more is expected from the peer: the
 * machine ended, or the source had DONE (it destroys its copy and
 * journals; the target closes meanwhile). */
static void
quiet_check(struct migexec *x)
{
    enum xm_mig_state s = x->m.state;

    if (x->quiet_told || !x->p.chan.ops->quiet)
        return;
    if (!xm_mig_terminal(&x->m) && s != XM_MIG_S_DESTROYING &&
        s != XM_MIG_S_JOURNAL_DONE)
        return;
    x->quiet_told = true;
    x->p.chan.ops->quiet(x->p.chan.ctx);
}

/* Tell the owner when the guest neared its end, went down or came back
 * (the target: its stream ended, then it runs or the move failed). */
static void
down_check(struct migexec *x)
{
    int level = migexec_down_since(x) >= 0 ? 2
                : migexec_endgame_since(x) >= 0 ? 1 : 0;

    if (level == x->down_told)
        return;
    x->down_told = level;
    if (x->p.down)
        x->p.down(x->p.arg, x);
}

static void
run_queue(struct migexec *x)
{
    struct qev e;

    x->running = true;
    while (q_get(x, &e))
        step_one(x, &e.ev);
    x->running = false;
    quiet_check(x);
    down_check(x);
    if (xm_mig_terminal(&x->m) && !x->send_busy && !x->recv_busy) {
        x->finished = true;
        timer_cancel(x);
        so_close(x);
        si_close(x);
        free(x->config_json);
        x->config_json = NULL;
        xm_buf_dispose(&x->scratch);
        xm_comp_codec_free(x->enc);
        x->enc = NULL;
        xm_comp_codec_free(x->dec);
        x->dec = NULL;
        report(x, true);    /* may free x */
    }
}

/* ---- public ---- */

int
migexec_new(const struct migexec_params *p, struct migexec **x_r)
{
    struct migexec *x = NULL;
    int rc;

    if (!p || !p->hv || !p->journal || !p->loop || !p->clock
        || !p->chan.ops || !p->done || p->tune.chunk > XM_STREAM_CHUNK_MAX)
        return XM_ERR_INVAL;
    x = calloc(1, sizeof(*x));
    if (!x)
        return XM_ERR_NOMEM;
    x->p = *p;
    x->send_fd = -1;
    x->recv_fd = -1;
    x->so.fd = -1;
    x->si.fd = -1;
    x->chunk = p->tune.chunk ? p->tune.chunk : STREAM_CHUNK;
    x->max_pending = p->tune.max_pending ? p->tune.max_pending
                                         : MIGEXEC_MAX_PENDING;
    x->t_susp = x->t_ready = x->t_sent = x->t_endgame = T_NONE;
    x->t_end = x->t_recv_done = x->t_ready_sent = x->t_unpaused = T_NONE;
    x->t_first = T_NONE;
    x->cpu_idle_pct = -1;
    x->peer_ready_delay = x->peer_restore = x->peer_handshake =
        MIGEXEC_UNKNOWN;
    x->peer_susp_to_ready = MIGEXEC_UNKNOWN;
    x->peer_rounds = MIGEXEC_UNKNOWN;
    xm_buf_init(&x->scratch, XM_PROTO_FRAME_MAX + XM_PROTO_FRAME_MAX);
    rc = xm_mig_init(&x->m, p->side, &p->ident, &p->cfg);
    if (rc)
        goto out;
    *x_r = x;
    x = NULL;
out:
    if (x)
        xm_buf_dispose(&x->scratch);
    free(x);
    return rc;
}

int
migexec_adopt(const struct migexec_params *p,
              const struct xm_journal_rec *rec, enum xm_mig_state state,
              uint32_t domid, struct migexec **x_r)
{
    struct migexec *x = NULL;
    int rc;

    rc = migexec_new(p, &x);
    if (rc)
        return rc;
    rc = xm_mig_adopt(&x->m, rec, &p->cfg, state, domid, x->adopt_acts,
                      XM_MIG_ACTIONS_MAX, &x->n_adopt);
    if (rc) {
        migexec_free(x);
        return rc;
    }
    x->jrec = *rec;
    x->have_jrec = true;
    *x_r = x;
    return XM_OK;
}

void
migexec_kick(struct migexec *x)
{
    unsigned n = x->n_adopt;

    if (!n || x->running || x->finished)
        return;
    x->n_adopt = 0;
    x->running = true;
    perform_all(x, x->adopt_acts, n);
    x->running = false;
    run_queue(x);
}

uint64_t
migexec_bytes(const struct migexec *x)
{
    return x->bytes;
}

/* Target: name what the decoded blocks used, when the source did not
 * say (a GO without "compress"); called before the codec goes. */
static void
note_stats(struct migexec *x)
{
    struct xm_comp_stats cs;
    const char *name = "none";

    if (x->m.side != XM_MIG_TARGET || x->st.compress[0] || !x->si.frames)
        return;
    if (x->dec && x->si.frames_xformed) {
        xm_comp_codec_stats(x->dec, &cs);
        if (cs.blocks[XM_COMP_ZSTD])
            name = "zstd";
        else if (cs.blocks[XM_COMP_LZ4])
            name = "lz4";
    }
    snprintf(x->st.compress, sizeof(x->st.compress), "%s", name);
}

/* Duration a - b - c, at least 0, or unknown with any unknown. */
static int64_t
minus(int64_t a, int64_t b, int64_t c)
{
    if (a == MIGEXEC_UNKNOWN || b == MIGEXEC_UNKNOWN ||
        c == MIGEXEC_UNKNOWN)
        return MIGEXEC_UNKNOWN;
    return a - b - c < 0 ? 0 : a - b - c;
}

/* x's figures as they stand. */
static void
stats_compute(const struct migexec *x, struct migexec_stats *st)
{
    *st = x->st;
    if (x->m.side == XM_MIG_SOURCE) {
        st->libxl_bytes = x->so.bytes_in;
        st->wire_bytes = x->so.bytes_out;
        st->frames = x->so.frames;
        st->frames_compressed = x->so.frames_xformed;
        st->acked_bytes = x->acked;
        st->rounds = x->iter_seen && !x->rounds_unknown
                     ? (int)x->max_iter + 1 : MIGEXEC_UNKNOWN;
        st->stream_tail_ms = minus(span(x->t_ready, x->t_susp),
                                   x->peer_ready_delay, 0);
        st->restore_ms = x->peer_restore;
        st->handshake_ms = x->peer_handshake;
    } else {
        st->libxl_bytes = x->si.raw_in;
        st->wire_bytes = x->wire_in;
        st->frames = x->si.frames;
        st->frames_compressed = x->si.frames_xformed;
        st->acked_bytes = x->acked;
        st->rounds = x->peer_rounds;
        st->stream_tail_ms = minus(x->peer_susp_to_ready,
                                   span(x->t_ready_sent, x->t_end), 0);
        st->restore_ms = span(x->t_recv_done, x->t_end);
        st->handshake_ms = span(x->t_unpaused, x->t_recv_done);
    }
    st->downtime_ms = MIGEXEC_UNKNOWN;
    if (st->stream_tail_ms != MIGEXEC_UNKNOWN &&
        st->restore_ms != MIGEXEC_UNKNOWN &&
        st->handshake_ms != MIGEXEC_UNKNOWN)
        st->downtime_ms = st->stream_tail_ms + st->restore_ms +
                          st->handshake_ms;
}

void
migexec_stats(const struct migexec *x, struct migexec_stats *st_r)
{
    stats_compute(x, st_r);
}

bool
migexec_live_sending(const struct migexec *x)
{
    return x->m.side == XM_MIG_SOURCE && x->send_busy &&
           x->t_susp == T_NONE;
}

void
migexec_note_iteration(struct migexec *x, unsigned n)
{
    if (!migexec_live_sending(x))
        return;
    if (!x->iter_seen || n > x->max_iter)
        x->max_iter = n;
    x->iter_seen = true;
}

void
migexec_rounds_unknown(struct migexec *x)
{
    x->rounds_unknown = true;
}

void
migexec_note_suspended(struct migexec *x, int64_t mono_ms)
{
    if (x->m.side == XM_MIG_SOURCE && x->t_susp == T_NONE)
        x->t_susp = mono_ms;
    down_check(x);
}

int64_t
migexec_down_since(const struct migexec *x)
{
    if (x->m.side == XM_MIG_TARGET)
        return x->finished || xm_mig_terminal(&x->m) ||
               x->t_end == T_NONE || x->t_unpaused != T_NONE ? -1
                                                             : x->t_end;
    if (x->finished || !xm_mig_source_down(&x->m))
        return -1;
    return x->t_susp != T_NONE ? x->t_susp : x->t_sent != T_NONE ? x->t_sent
                                                               : -1;
}

int64_t
migexec_endgame_since(const struct migexec *x)
{
    if (x->finished || x->t_endgame == T_NONE ||
        !xm_mig_source_down(&x->m))
        return -1;
    return x->t_endgame;
}

int64_t
migexec_unpaused_at(const struct migexec *x)
{
    return x->m.side == XM_MIG_TARGET ? x->t_unpaused : T_NONE;
}

void
migexec_hold(struct migexec *x, bool hold)
{
    if (x->held == hold)
        return;
    x->held = hold;
    if (x->m.side == XM_MIG_TARGET) {
        xm_log_debug("migration %s: restore %s at %llu bytes",
                     x->m.ident.id, hold ? "held" : "released",
                     (unsigned long long)x->si.raw_in);
        if (!x->si_on || x->recv_held)
            return;     /* recv_gate starts libxl held or not */
        xm_stream_in_hold(&x->si, hold);
        if (!hold && xm_stream_in_flush(&x->si)) {
            si_close(x);    /* libxl gave up: its restore reports it */
            return;
        }
        si_update(x);   /* full: the link waits too */
        return;
    }
    xm_log_debug("migration %s: stream %s at %llu bytes", x->m.ident.id,
                 hold ? "held" : "released",
                 (unsigned long long)x->so.bytes_in);
    /* the link's drain rate measured across a hold is not the link's */
    if (hold && x->probing && !x->provisional)
        x->sat = false;
    if (x->send_busy && x->send_fd >= 0)
        set_sndbuf(x->send_fd, hold || x->t_endgame != T_NONE
                               ? HELD_SOCKET_BUF : SOCKET_BUF);
    so_events(x);
}

int
migexec_abort(struct migexec *x, const char *why)
{
    struct xm_mig_event ev = mkev(XM_MIG_EV_TIMEOUT, XM_ERR_CANCELLED);

    /* Only before the point of no return, and only where the machine
     * waits on the peer or the stream: a timeout there rolls back. */
    switch (x->m.state) {
    case XM_MIG_S_OFFERED:
    case XM_MIG_S_SENDING:
    case XM_MIG_S_WAIT_READY:
        break;
    default:
        return XM_ERR_STATE;
    }
    ev.text = why;
    timer_cancel(x);
    feed(x, &ev);
    return XM_OK;
}

int
migexec_source_cancel(struct migexec *x, const char *why)
{
    struct xm_mig_event ev = mkev(XM_MIG_EV_ABORT, XM_ERR_CANCELLED);

    if (x->finished || (x->m.state != XM_MIG_T_WAIT_GO &&
                        x->m.state != XM_MIG_T_GRACE))
        return XM_ERR_STATE;
    ev.text = why;
    feed(x, &ev);
    return XM_OK;
}

void
migexec_free(struct migexec *x)
{
    if (!x)
        return;
    timer_cancel(x);
    so_close(x);
    si_close(x);
    if (x->send_fd >= 0)
        close(x->send_fd);
    if (x->recv_fd >= 0)
        close(x->recv_fd);
    free(x->recv_name);
    free(x->config_json);
    xm_buf_dispose(&x->scratch);
    xm_comp_codec_free(x->enc);
    xm_comp_codec_free(x->dec);
    sample_free(x);
    free(x);
}

bool
migexec_busy(const struct migexec *x)
{
    return x->send_busy || x->recv_busy;
}

const struct xm_mig *
migexec_machine(const struct migexec *x)
{
    return &x->m;
}

int
migexec_start(struct migexec *x)
{
    struct xm_mig_event ev = mkev(XM_MIG_EV_START, 0);

    if (x->m.side != XM_MIG_SOURCE || x->m.state != XM_MIG_S_IDLE)
        return XM_ERR_STATE;
    feed(x, &ev);
    return XM_OK;
}

void
migexec_on_link(struct migexec *x, bool up)
{
    struct xm_mig_event ev = mkev(up ? XM_MIG_EV_LINK_UP
                                     : XM_MIG_EV_LINK_LOST,
                                  up ? 0 : XM_ERR_IO);

    feed(x, &ev);
}

void
migexec_on_drain(struct migexec *x)
{
    so_pump(x);
}

/* Parse a JSON payload and check that it is about our migration. */
static int
parse_ours(struct migexec *x, const struct xm_frame *f, xm_json **doc_r)
{
    char err[64];
    const char *id;
    int rc;

    rc = xm_json_parse((const char *)f->payload, f->len, doc_r, err,
                       sizeof(err));
    if (rc)
        return XM_ERR_PROTO;
    if (xm_json_get_str(*doc_r, "id", &id) || strcmp(id, x->m.ident.id))
        return XM_ERR_PROTO;
    return XM_OK;
}

static int
offer_fields(const xm_json *doc, struct xm_mig_ident *ident_r)
{
    const char *id, *name, *uuid, *src, *dst;

    memset(ident_r, 0, sizeof(*ident_r));
    if (xm_json_get_str(doc, "id", &id) || !xm_mig_id_valid(id)
        || xm_json_get_str(doc, "name", &name) || !xm_mig_name_valid(name)
        || xm_json_get_str(doc, "uuid", &uuid)
        || xm_mig_uuid_parse(uuid, ident_r->uuid)
        || xm_json_get_str(doc, "source", &src)
        || !xm_proto_host_valid(src)
        || xm_json_get_str(doc, "target", &dst)
        || !xm_proto_host_valid(dst))
        return XM_ERR_PROTO;
    snprintf(ident_r->id, sizeof(ident_r->id), "%s", id);
    snprintf(ident_r->name, sizeof(ident_r->name), "%s", name);
    snprintf(ident_r->source, sizeof(ident_r->source), "%s", src);
    snprintf(ident_r->target, sizeof(ident_r->target), "%s", dst);
    return XM_OK;
}

int
migexec_offer_ident(const struct xm_frame *f, struct xm_mig_ident *ident_r)
{
    xm_json *doc = NULL;
    char err[64];
    int rc;

    if (f->type != XM_MSG_MIGRATE_OFFER)
        return XM_ERR_INVAL;
    rc = xm_json_parse((const char *)f->payload, f->len, &doc, err,
                       sizeof(err));
    if (!rc)
        rc = offer_fields(doc, ident_r);
    else
        rc = XM_ERR_PROTO;
    xm_json_free(doc);
    return rc;
}

/* Target: keep what the OFFER says we need to restore the guest. */
static int
take_offer(struct migexec *x, const struct xm_frame *f)
{
    struct xm_mig_ident ident;
    struct xm_jgen *g = NULL;
    xm_json *doc = NULL;
    const xm_json *cfg;
    uint64_t mem, vcpus;
    int rc;

    rc = parse_ours(x, f, &doc);
    if (rc)
        goto out;
    rc = XM_ERR_PROTO;
    if (offer_fields(doc, &ident) || strcmp(ident.name, x->m.ident.name)
        || memcmp(ident.uuid, x->m.ident.uuid, 16)
        || xm_json_get_uint(doc, "mem_kib", &mem)
        || xm_json_get_uint(doc, "vcpus", &vcpus) || vcpus > 4096
        || !(cfg = xm_json_get(doc, "config"))
        || xm_json_type(cfg) != XM_JSON_OBJECT)
        goto out;
    g = xm_jgen_new(false);
    if (!g) {
        rc = XM_ERR_NOMEM;
        goto out;
    }
    xm_jgen_json(g, cfg);
    free(x->config_json);
    x->config_json = NULL;
    rc = xm_jgen_take(g, &x->config_json);
    if (rc)
        goto out;
    x->offer_mem_kib = mem;
    x->offer_vcpus = (unsigned)vcpus;
out:
    xm_jgen_free(g);
    xm_json_free(doc);
    return rc;
}

/* A duration from the peer: 0..MS_MAX ms, else unknown (a figure is
 * never worth failing a migration over). */
static int64_t
peer_ms(const xm_json *doc, const char *key)
{
    uint64_t v;

    if (xm_json_get_uint(doc, key, &v) || v > MS_MAX)
        return MIGEXEC_UNKNOWN;
    return (int64_t)v;
}

/* What the peer tells of the downtime in READY, GO and DONE. */
static void
take_timing(struct migexec *x, uint16_t type, const xm_json *doc)
{
    bool source = x->m.side == XM_MIG_SOURCE;
    const char *s;
    uint64_t v;

    if (source && type == XM_MSG_MIGRATE_READY) {
        if (x->t_ready == T_NONE)
            x->t_ready = now_ms(x);
        x->peer_ready_delay = peer_ms(doc, "ready_delay_ms");
    } else if (source && type == XM_MSG_MIGRATE_DONE) {
        x->peer_restore = peer_ms(doc, "restore_ms");
        x->peer_handshake = peer_ms(doc, "handshake_ms");
    } else if (!source && type == XM_MSG_MIGRATE_GO) {
        x->peer_susp_to_ready = peer_ms(doc, "susp_to_ready_ms");
        if (!xm_json_get_uint(doc, "rounds", &v) && v <= ROUNDS_MAX)
            x->peer_rounds = (int)v;
        if (!xm_json_get_str(doc, "compress", &s) && s[0] &&
            strlen(s) <= MIGEXEC_COMPRESS_MAX &&
            strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789:+") ==
            strlen(s))
            snprintf(x->st.compress, sizeof(x->st.compress), "%s", s);
    }
}

int
migexec_on_frame(struct migexec *x, const struct xm_frame *f)
{
    struct xm_mig_event ev = mkev(XM_MIG_EV_COUNT, 0);
    char text[XM_MIG_WHY_MAX];
    xm_json *doc = NULL;
    const char *s;
    int32_t code;
    bool source = x->m.side == XM_MIG_SOURCE;
    int rc = XM_OK;

    switch (f->type) {
    case XM_MSG_STREAM_DATA:
        if (source)
            return XM_ERR_PROTO;
        if (!x->si_on)
            return XM_OK;   /* cancelled: late data is dropped */
        x->wire_in += XM_PROTO_HEADER_LEN + (uint64_t)f->len;
        rc = xm_stream_in_push(&x->si, f->flags, f->payload, f->len);
        if (rc) {
            /* A block that does not decode (or a flag we do not take)
             * ends the stream here: the restore sees EOF and fails,
             * before GO, with this reason. */
            snprintf(x->stream_why, sizeof(x->stream_why),
                     "bad stream data from %s: %s", x->m.ident.source,
                     rc == XM_ERR_PROTO && x->dec &&
                     xm_comp_error(x->dec)[0] ? xm_comp_error(x->dec)
                                              : xm_strerror(rc));
            recv_stop(x, XM_ERR_PROTO, x->stream_why);
            return XM_OK;
        }
        x->bytes = x->si.raw_in;
        /* Near the end (the offer's memory less three socket buffers),
         * little waits for libxl's restore: what does when the stream
         * ends is the guest's downtime. */
        if (!x->si_tight && x->si.fd >= 0 && x->offer_mem_kib &&
            x->si.raw_in + 3u * SOCKET_BUF >= x->offer_mem_kib * 1024) {
            x->si_tight = true;
            set_sndbuf(x->si.fd, HELD_SOCKET_BUF);
            xm_stream_in_lower_bound(&x->si, ENDGAME_QUEUED);
        }
        if (x->recv_held) {
            if (!recv_gate(x))
                si_update(x);   /* held or not: the queue's bound */
            return XM_OK;
        }
        if (xm_stream_in_flush(&x->si)) {
            si_close(x);    /* libxl gave up: its restore reports it */
            return XM_OK;
        }
        si_update(x);
        return XM_OK;
    case XM_MSG_STREAM_ACK:
        /* never more than was sent, never backwards */
        if (!source || f->len != 8 || xm_get_be64(f->payload) < x->acked
            || xm_get_be64(f->payload) > x->bytes)
            return XM_ERR_PROTO;
        x->acked = xm_get_be64(f->payload);
        x->acks_seen = true;
        so_events(x);
        return XM_OK;
    case XM_MSG_STREAM_END:
        if (source)
            return XM_ERR_PROTO;
        if (x->si_on) {
            x->wire_in += XM_PROTO_HEADER_LEN;
            if (x->t_end == T_NONE)
                x->t_end = now_ms(x);
            down_check(x);      /* its guest waits on us now */
            if (!x->si_on)
                return XM_OK;
            if (xm_stream_in_end(&x->si))
                si_close(x);
            else if (!recv_gate(x))
                si_update(x);
        }
        return XM_OK;
    case XM_MSG_MIGRATE_OFFER:
        /* One offer per migration: a second one is a broken peer. */
        if (source || x->m.state != XM_MIG_T_IDLE)
            return XM_ERR_PROTO;
        rc = take_offer(x, f);
        if (rc)
            return rc;
        ev.type = XM_MIG_EV_OFFER;
        break;
    case XM_MSG_MIGRATE_REJECT:
    case XM_MSG_MIGRATE_ABORT:
        if (xm_frame_error(f, &code, text, sizeof(text)))
            return XM_ERR_PROTO;
        ev.type = f->type == XM_MSG_MIGRATE_REJECT ? XM_MIG_EV_REJECT
                                                   : XM_MIG_EV_ABORT;
        ev.rc = code;
        ev.text = text;
        break;
    case XM_MSG_MIGRATE_ACCEPT:
    case XM_MSG_MIGRATE_GO:
    case XM_MSG_MIGRATE_DONE:
    case XM_MSG_MIGRATE_READY:
        if (f->len) {
            rc = parse_ours(x, f, &doc);
            if (!rc)
                take_timing(x, f->type, doc);
            xm_json_free(doc);
            if (rc)
                return rc;
        }
        ev.type = f->type == XM_MSG_MIGRATE_ACCEPT ? XM_MIG_EV_ACCEPT
                : f->type == XM_MSG_MIGRATE_GO ? XM_MIG_EV_GO
                : f->type == XM_MSG_MIGRATE_DONE ? XM_MIG_EV_DONE
                : XM_MIG_EV_READY;
        break;
    case XM_MSG_MIGRATE_STATUS_REQ:
        if (source)
            return XM_ERR_PROTO;
        rc = parse_ours(x, f, &doc);
        xm_json_free(doc);
        if (rc)
            return rc;
        send_json(x, XM_MSG_MIGRATE_STATUS, "status",
                  xm_mig_peer_status_name(xm_mig_peer_status(&x->m)));
        return XM_OK;
    case XM_MSG_MIGRATE_STATUS:
        if (!source)
            return XM_ERR_PROTO;
        rc = parse_ours(x, f, &doc);
        if (!rc && !xm_json_get_str(doc, "status", &s)) {
            rc = XM_ERR_PROTO;
            for (int st = XM_MIG_PS_ABSENT; st <= XM_MIG_PS_RUNNING; st++)
                if (!strcmp(s, xm_mig_peer_status_name(st))) {
                    ev.type = xm_mig_status_event(st);
                    rc = XM_OK;
                }
        } else if (!rc) {
            rc = XM_ERR_PROTO;
        }
        xm_json_free(doc);
        if (rc)
            return rc;
        break;
    default:
        return XM_ERR_PROTO;
    }
    feed(x, &ev);
    return XM_OK;
}
