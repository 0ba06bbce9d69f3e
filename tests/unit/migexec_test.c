/*
 * migexec_test.c -- two migration executors (source and target) in one
 * event loop over two hypervisor fakes, so that a guest really moves
 * between the fakes' domain tables through the executors' socketpairs.
 *
 * The channel between the executors is in memory: two queues of frames
 * (type + payload copy), each delivered to the other executor by a loop
 * source on the next loop iteration; the receiver's rx_pause holds its
 * queue back.  No byte framing: the codec has its own tests.  The link
 * can be dropped when a chosen frame type is sent (the frame is lost,
 * both executors hear LINK_LOST on the next iteration).  The clock is
 * the fake one: timeouts fire only when a test moves it, or when the
 * link is given a speed: each frame delivered then moves the clock by
 * its length over that speed.  The link negotiates the features the
 * test gives it (STREAM_COMPRESS by default); it carries frame flags,
 * and can corrupt or truncate the first compressed frame.  After every
 * test exactly one running copy of the guest exists across the fakes.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clock_fake.h"
#include "harness.h"
#include "hv_fake.h"
#include "loop.h"
#include "migexec.h"
#include "xm_err.h"

#define GUEST "web1"
#define MIG_ID "mig-1"
#define GIB (1024u * 1024u)
#define QCAP 4096

struct tframe {
    uint16_t type;
    uint16_t flags;
    uint8_t *payload;
    size_t len;
};

/* One direction of the link: frames from one side to the other. */
struct tqueue {
    struct tframe f[QCAP];
    unsigned n;
    size_t bytes;
    bool paused;            /* the receiver asked to stop */
};

struct tside {
    struct hv_fake *fake;
    struct xm_hv hv;
    struct xm_journal *journal;
    char dir[64];
    struct migexec *x;
    struct tqueue out;      /* frames this side sent */
    struct tside *peer;
    bool final;
    struct migexec_result res;
    char why[XM_MIG_WHY_MAX];   /* res.mig.why, copied */
    unsigned reports;
    int bad_frames;
    int fail_opens;         /* journal: fail the next n opens */
    unsigned downs;         /* down callbacks */
    int64_t down_since;     /* at the last one */
    int64_t down_first;     /* at the first one */
    int64_t endgame_first;  /* migexec_endgame_since at the first one */
    bool down_after_final;  /* one came after the final report */
};

static struct clock_fake clk;
static struct xm_clock clock_if;
static struct xm_loop *loop;
static struct tside src, dst;
static bool link_up;
static int drop_on_type;        /* drop the link when this is sent */
static bool drop_pending;
static uint32_t guest_domid;
static uint32_t link_features;  /* what the hellos negotiated */
static double link_bytes_per_ms;    /* 0: delivering takes no time */
static double clock_debt;           /* ms not yet added to the clock */
enum mangle { MANGLE_NONE, MANGLE_FLIP, MANGLE_TRUNCATE, MANGLE_MAP };
static enum mangle mangle;      /* the first compressed frame */
static unsigned n_compressed_sent;
static unsigned n_lz4_blocks_sent;  /* blocks with XM_COMP_FLAG_LZ4_BLOCK */
static unsigned n_lz4_sent;         /* lz4 blocks, either body */
static bool ident_flip;         /* the first plain data frame's byte 0 */
static bool no_data;            /* stream data frames vanish */
/* A kernel send buffer: the first kbuf bytes of a side's queue count as
 * written (not pending, unacked); it grows by kbuf_step per frame
 * delivered up to kbuf_max, as TCP's does early in a connection. */
static size_t kbuf, kbuf_step, kbuf_max;
static unsigned n_plain_sent;

/* ---- journal io with a failing open ---- */

static int
jio_open(void *ctx, const char *path, int flags, mode_t mode)
{
    struct tside *s = ctx;

    if (s->fail_opens > 0) {
        s->fail_opens--;
        errno = ENOSPC;
        return -1;
    }
    return xm_journal_io_real.open(xm_journal_io_real.ctx, path, flags,
                                   mode);
}

static ssize_t
jio_write(void *ctx, int fd, const void *buf, size_t len)
{
    (void)ctx;
    return xm_journal_io_real.write(xm_journal_io_real.ctx, fd, buf, len);
}

static int
jio_fsync(void *ctx, int fd)
{
    (void)ctx;
    return xm_journal_io_real.fsync(xm_journal_io_real.ctx, fd);
}

static int
jio_rename(void *ctx, const char *from, const char *to)
{
    (void)ctx;
    return xm_journal_io_real.rename(xm_journal_io_real.ctx, from, to);
}

static int
jio_close(void *ctx, int fd)
{
    (void)ctx;
    return xm_journal_io_real.close(xm_journal_io_real.ctx, fd);
}

/* ---- the channel ---- */

static void
queue_clear(struct tqueue *q)
{
    for (unsigned i = 0; i < q->n; i++)
        free(q->f[i].payload);
    q->n = 0;
    q->bytes = 0;
}

static int
ch_send(void *ctx, uint16_t type, uint16_t flags, const void *payload,
        size_t len)
{
    struct tside *s = ctx;
    struct tframe *f;

    if (!link_up)
        return XM_ERR_IO;
    /* As the codec does: a flag needs its feature, and only on data. */
    if (flags && (type != XM_MSG_STREAM_DATA ||
                  flags != XM_FRAME_COMPRESSED ||
                  !(link_features & XM_FEAT_STREAM_COMPRESS)))
        return XM_ERR_INVAL;
    if (drop_on_type && type == drop_on_type) {
        link_up = false;
        drop_pending = true;
        return XM_ERR_IO;
    }
    if (no_data && type == XM_MSG_STREAM_DATA)
        return XM_OK;
    if (s->out.n == QCAP)
        return XM_ERR_TOOBIG;
    f = &s->out.f[s->out.n];
    f->payload = malloc(len ? len : 1);
    if (!f->payload)
        return XM_ERR_NOMEM;
    memcpy(f->payload, payload, len);
    f->type = type;
    f->flags = flags;
    f->len = len;
    if (flags && len >= XM_COMP_HEADER_LEN && f->payload[2] == XM_COMP_LZ4) {
        n_lz4_sent++;
        n_lz4_blocks_sent += (f->payload[3] & XM_COMP_FLAG_LZ4_BLOCK) != 0;
    }
    if (flags && n_compressed_sent++ == 0 && len > 16) {
        if (mangle == MANGLE_FLIP)
            f->payload[len / 2] ^= 0x10;    /* inside the zstd frame */
        else if (mangle == MANGLE_TRUNCATE)
            f->len = len - 5;               /* its checksum cut off */
        else if (mangle == MANGLE_MAP)      /* a zero-run map's count */
            f->payload[XM_COMP_HEADER_LEN + 4] ^= 0x10;
    }
    if (type == XM_MSG_STREAM_DATA && !flags && len
        && n_plain_sent++ == 0 && ident_flip)
        f->payload[0] ^= 0x20;              /* "LibxlFmt" -> "libxlFmt" */
    s->out.n++;
    s->out.bytes += f->len;
    return XM_OK;
}

static uint32_t
ch_features(void *ctx)
{
    (void)ctx;
    return link_up ? link_features : 0;
}

static size_t
ch_pending(void *ctx)
{
    struct tside *s = ctx;
    return s->out.bytes > kbuf ? s->out.bytes - kbuf : 0;
}

static size_t
ch_unacked(void *ctx)
{
    struct tside *s = ctx;
    return s->out.bytes < kbuf ? s->out.bytes : kbuf;
}

static void
ch_rx_pause(void *ctx, bool pause)
{
    struct tside *s = ctx;
    s->peer->out.paused = pause;    /* hold what comes to us */
}

static int
ch_connect(void *ctx)
{
    (void)ctx;
    return link_up ? XM_OK : XM_ERR_IO;
}

static const struct migexec_chan_ops chan_ops = {
    .send = ch_send,
    .features = ch_features,
    .pending = ch_pending,
    .rx_pause = ch_rx_pause,
    .connect = ch_connect,
    .unacked = ch_unacked,
};

/* Deliver what s sent before this iteration to its peer. */
static void
deliver(struct tside *s, unsigned upto)
{
    unsigned i = 0;

    while (i < upto && i < s->out.n && !s->out.paused) {
        struct tframe tf = s->out.f[i];
        struct xm_frame f = { .type = tf.type, .flags = tf.flags,
                              .len = (uint32_t)tf.len,
                              .payload = tf.payload };

        i++;
        s->out.bytes -= tf.len;
        if (kbuf + kbuf_step <= kbuf_max)
            kbuf += kbuf_step;
        if (link_bytes_per_ms > 0) {
            clock_debt += (double)(tf.len + XM_PROTO_HEADER_LEN) /
                          link_bytes_per_ms;
            clock_fake_advance(&clk, (int64_t)clock_debt);
            clock_debt -= (double)(int64_t)clock_debt;
        }
        if (s->peer->x && !s->peer->final
            && migexec_on_frame(s->peer->x, &f) != XM_OK)
            s->peer->bad_frames++;
        free(tf.payload);
    }
    memmove(s->out.f, s->out.f + i, (s->out.n - i) * sizeof(s->out.f[0]));
    s->out.n -= i;
    if (i && s->x && !s->final)
        migexec_on_drain(s->x);
}

static int
ch_before(void *ctx, struct pollfd *fds, int first, int *nfds_io,
          int *timeout_ms_io)
{
    (void)ctx;
    (void)fds;
    *nfds_io = first;
    if ((src.out.n && !src.out.paused) || (dst.out.n && !dst.out.paused)
        || drop_pending)
        *timeout_ms_io = 0;
    return XM_OK;
}

static void
ch_after(void *ctx, struct pollfd *fds, int first, int nfds)
{
    unsigned ns = src.out.n, nd = dst.out.n;

    (void)ctx;
    (void)fds;
    (void)first;
    (void)nfds;
    if (drop_pending) {
        drop_pending = false;
        queue_clear(&src.out);
        queue_clear(&dst.out);
        if (src.x && !src.final)
            migexec_on_link(src.x, false);
        if (dst.x && !dst.final)
            migexec_on_link(dst.x, false);
        return;
    }
    deliver(&src, ns);
    deliver(&dst, nd);
}

/* ---- fixture ---- */

static void
on_done(void *arg, struct migexec *x, const struct migexec_result *res,
        bool final)
{
    struct tside *s = arg;

    CU_ASSERT_PTR_EQUAL(x, s->x);
    s->res = *res;
    snprintf(s->why, sizeof(s->why), "%s", res->mig.why ? res->mig.why
                                                         : "");
    s->res.mig.why = NULL;      /* points into x */
    s->reports++;
    if (final) {
        s->final = true;
        migexec_free(x);
        s->x = NULL;
    }
}

static void
on_down(void *arg, struct migexec *x)
{
    struct tside *s = arg;

    CU_ASSERT_PTR_EQUAL(x, s->x);
    s->downs++;
    s->down_since = migexec_down_since(x);
    if (s->downs == 1) {
        s->down_first = s->down_since;
        s->endgame_first = migexec_endgame_since(x);
    }
    if (s->final)
        s->down_after_final = true;
}

static int
side_setup(struct tside *s, struct tside *peer)
{
    struct xm_journal_io io = {
        jio_open, jio_write, jio_fsync, jio_rename, jio_close, s
    };

    memset(s, 0, sizeof(*s));
    s->peer = peer;
    snprintf(s->dir, sizeof(s->dir), "/tmp/migexec_test.XXXXXX");
    if (!mkdtemp(s->dir))
        return -1;
    s->fake = hv_fake_new();
    if (!s->fake || hv_fake_connect(s->fake, &s->hv))
        return -1;
    if (xm_journal_new(s->dir, &io, &s->journal))
        return -1;
    {
        struct xm_loop_source hs = {
            s->hv.ops->beforepoll, s->hv.ops->afterpoll, s->hv.ctx
        };
        if (xm_loop_add_source(loop, &hs))
            return -1;
    }
    return 0;
}

static void
side_teardown(struct tside *s)
{
    struct xm_journal_entry *ents = NULL;
    size_t n = 0;

    if (s->x && !migexec_busy(s->x))
        migexec_free(s->x);
    s->x = NULL;
    queue_clear(&s->out);
    if (s->journal && xm_journal_list(s->journal, &ents, &n) == XM_OK)
        for (size_t i = 0; i < n; i++)
            xm_journal_remove(s->journal, ents[i].id, ents[i].side);
    free(ents);
    xm_journal_free(s->journal);
    if (s->fake) {
        xm_hv_close(&s->hv);
        hv_fake_free(s->fake);
    }
    rmdir(s->dir);
}

static bool fixture_ok;
/* What the next source executor sends with, and its knobs. */
static struct xm_comp_spec src_compress;
static struct migexec_tuning src_tune;
static uint64_t src_endgame;    /* the source's p.endgame_bytes */

/* The guest's config: valid JSON with ~40 KB of text that compresses
 * well, so its stream spans many small chunks (the OFFER carries the
 * config too: under 64 KiB). */
static char *
big_config(void)
{
    static const char head[] = "{\"c_info\":{\"name\":\"" GUEST "\"},"
                               "\"pad\":\"";
    size_t n = 40000, hl = sizeof(head) - 1;
    char *c = malloc(hl + n + 3);

    if (!c)
        return NULL;
    memcpy(c, head, hl);
    for (size_t i = 0; i < n; i++)
        c[hl + i] = "xenmaint-migration-"[i % 19];
    memcpy(c + hl + n, "\"}", 3);
    return c;
}

static int
fixture(void)
{
    struct xm_loop_source cs = { ch_before, ch_after, NULL };
    struct xm_domain d;
    char *config;
    int rc;

    clock_fake_init(&clk, 1000, 1795000000);
    clock_fake_as_clock(&clk, &clock_if);
    loop = xm_loop_new(&clock_if);
    if (!loop || side_setup(&src, &dst) || side_setup(&dst, &src)
        || xm_loop_add_source(loop, &cs))
        return -1;
    link_up = true;
    drop_on_type = 0;
    drop_pending = false;
    link_features = XM_PROTO_FEATURES;
    link_bytes_per_ms = 0;
    clock_debt = 0;
    mangle = MANGLE_NONE;
    n_compressed_sent = 0;
    n_lz4_blocks_sent = n_lz4_sent = 0;
    ident_flip = no_data = false;
    kbuf = kbuf_step = kbuf_max = 0;
    n_plain_sent = 0;
    memset(&d, 0, sizeof(d));
    snprintf(d.name, sizeof(d.name), GUEST);
    for (unsigned i = 0; i < 16; i++)
        d.uuid[i] = (uint8_t)(0xa0 + i);
    d.mem_kib = GIB;
    d.cur_mem_kib = GIB;
    d.vcpus = 2;
    config = big_config();
    rc = config ? hv_fake_add_domain_config(src.fake, &d, config,
                                            &guest_domid) : -1;
    free(config);
    return rc ? -1 : 0;
}

static void
setup(void)
{
    memset(&src_compress, 0, sizeof(src_compress));
    memset(&src_tune, 0, sizeof(src_tune));
    src_endgame = 0;
    fixture_ok = fixture() == 0;
}

static void
teardown(void)
{
    side_teardown(&src);
    side_teardown(&dst);
    xm_loop_free(loop);
    loop = NULL;
}

static int
make_exec(struct tside *s, enum xm_mig_side side)
{
    CU_ASSERT_TRUE_FATAL(fixture_ok);
    const struct xm_domain *d = hv_fake_find(src.fake, GUEST);
    struct migexec_params p;

    memset(&p, 0, sizeof(p));
    p.side = side;
    snprintf(p.ident.id, sizeof(p.ident.id), MIG_ID);
    snprintf(p.ident.name, sizeof(p.ident.name), GUEST);
    memcpy(p.ident.uuid, d->uuid, 16);
    snprintf(p.ident.source, sizeof(p.ident.source), "host-a");
    snprintf(p.ident.target, sizeof(p.ident.target), "host-b");
    p.ident.src_domid = side == XM_MIG_SOURCE ? guest_domid : 0;
    xm_mig_config_default(&p.cfg);
    p.hv = &s->hv;
    p.journal = s->journal;
    p.loop = loop;
    p.clock = &clock_if;
    p.chan.ops = &chan_ops;
    p.chan.ctx = s;
    p.done = on_done;
    p.down = on_down;
    p.arg = s;
    if (side == XM_MIG_SOURCE) {
        p.compress = src_compress;
        p.tune = src_tune;
        p.endgame_bytes = src_endgame;
    }
    return migexec_new(&p, &s->x);
}

/* Both executors, the source started. */
static void
start_both(void)
{
    CU_ASSERT_EQUAL_FATAL(make_exec(&src, XM_MIG_SOURCE), XM_OK);
    CU_ASSERT_EQUAL_FATAL(make_exec(&dst, XM_MIG_TARGET), XM_OK);
    CU_ASSERT_EQUAL_FATAL(migexec_start(src.x), XM_OK);
}

/* Run the loop until both sides ended (or a bound). */
static void
run_until_final(void)
{
    for (int i = 0; i < 5000 && !(src.final && dst.final); i++)
        CU_ASSERT_EQUAL_FATAL(xm_loop_run_once(loop, 20, NULL), XM_OK);
}

static bool
running(struct hv_fake *f, const char *name)
{
    const struct xm_domain *d = hv_fake_find(f, name);

    return d && !(d->flags & XM_DOM_PAUSED)
        && !hv_fake_suspended(f, d->domid);
}

static unsigned
running_copies(void)
{
    static const char *names[] = {
        GUEST, GUEST XM_MIG_SUFFIX_IN, GUEST XM_MIG_SUFFIX_AWAY
    };
    unsigned n = 0;

    for (unsigned i = 0; i < 3; i++)
        n += running(src.fake, names[i]) + running(dst.fake, names[i]);
    return n;
}

static int
jphase(struct tside *s, enum xm_mig_side side)
{
    struct xm_journal_rec rec;
    char err[256];

    if (xm_journal_load(s->journal, MIG_ID, side, &rec, err, sizeof(err)))
        return 0;
    return (int)rec.phase;
}

static void
assert_stayed(void)
{
    CU_ASSERT_TRUE(src.final);
    CU_ASSERT_TRUE(dst.final);
    CU_ASSERT_TRUE(running(src.fake, GUEST));
    CU_ASSERT_PTR_NULL(hv_fake_find(dst.fake, GUEST));
    CU_ASSERT_PTR_NULL(hv_fake_find(dst.fake, GUEST XM_MIG_SUFFIX_IN));
    CU_ASSERT_PTR_NULL(hv_fake_find(src.fake, GUEST XM_MIG_SUFFIX_AWAY));
    CU_ASSERT_EQUAL(src.res.mig.outcome, XM_MIG_FAILED_BEFORE);
    CU_ASSERT_EQUAL(hv_fake_pending(src.fake), 0);
    CU_ASSERT_EQUAL(hv_fake_pending(dst.fake), 0);
    CU_ASSERT_EQUAL(running_copies(), 1);
}

/* ---- tests ---- */

static void
test_happy_path(void)
{
    const struct xm_domain *d;

    start_both();
    run_until_final();
    CU_ASSERT_TRUE_FATAL(src.final && dst.final);
    CU_ASSERT_EQUAL(src.res.mig.outcome, XM_MIG_OK);
    CU_ASSERT_EQUAL(dst.res.mig.outcome, XM_MIG_OK);
    CU_ASSERT_EQUAL(src.res.state, XM_MIG_S_MIGRATED);
    CU_ASSERT_EQUAL(dst.res.state, XM_MIG_T_MIGRATED);
    d = hv_fake_find(dst.fake, GUEST);
    CU_ASSERT_PTR_NOT_NULL_FATAL(d);
    CU_ASSERT_FALSE(d->flags & XM_DOM_PAUSED);
    CU_ASSERT_TRUE(running(dst.fake, GUEST));
    CU_ASSERT_EQUAL(d->uuid[0], 0xa0);
    CU_ASSERT_PTR_NULL(hv_fake_find(dst.fake, GUEST XM_MIG_SUFFIX_IN));
    CU_ASSERT_EQUAL(hv_fake_count_domains(src.fake), 0);
    CU_ASSERT_EQUAL(jphase(&src, XM_MIG_SOURCE), XM_JP_DONE);
    CU_ASSERT_EQUAL(jphase(&dst, XM_MIG_TARGET), XM_JP_DONE);
    CU_ASSERT_TRUE(src.res.bytes > 0);
    CU_ASSERT_EQUAL(src.res.bytes, dst.res.bytes);
    CU_ASSERT_EQUAL(src.bad_frames + dst.bad_frames, 0);
    CU_ASSERT_EQUAL(running_copies(), 1);
}

static void
test_restore_fails(void)
{
    fault_arm(hv_fake_fault(dst.fake), "migrate_recv_done", 1, XM_ERR_HV);
    start_both();
    run_until_final();
    assert_stayed();
    CU_ASSERT_EQUAL(dst.res.mig.outcome, XM_MIG_FAILED_BEFORE);
    CU_ASSERT_EQUAL(jphase(&src, XM_MIG_SOURCE), XM_JP_ABORTED);
    CU_ASSERT_EQUAL(jphase(&dst, XM_MIG_TARGET), XM_JP_ABORTED);
}

static void
test_send_fails(void)
{
    fault_arm(hv_fake_fault(src.fake), "migrate_send_done", 1, XM_ERR_HV);
    start_both();
    run_until_final();
    assert_stayed();
    CU_ASSERT_EQUAL(src.res.mig.rc, XM_ERR_HV);
    CU_ASSERT_EQUAL(jphase(&src, XM_MIG_SOURCE), XM_JP_ABORTED);
    CU_ASSERT_EQUAL(jphase(&dst, XM_MIG_TARGET), XM_JP_ABORTED);
}

/* READY is lost with the link: the stream went over, GO never does.
 * The source resumes at once; the target holds --incoming paused for
 * its grace period, then destroys it. */
static void
test_link_drops_before_go(void)
{
    drop_on_type = XM_MSG_MIGRATE_READY;
    start_both();
    for (int i = 0; i < 2000 && !src.final; i++)
        CU_ASSERT_EQUAL_FATAL(xm_loop_run_once(loop, 20, NULL), XM_OK);
    CU_ASSERT_TRUE_FATAL(src.final);
    CU_ASSERT_FALSE(dst.final);
    CU_ASSERT_TRUE(running(src.fake, GUEST));
    CU_ASSERT_EQUAL(running_copies(), 1);
    /* Held paused, waiting for the source to come back. */
    CU_ASSERT_PTR_NOT_NULL(hv_fake_find(dst.fake, GUEST XM_MIG_SUFFIX_IN));
    CU_ASSERT_EQUAL(migexec_machine(dst.x)->state, XM_MIG_T_GRACE);
    clock_fake_advance(&clk, 10 * 60 * 1000 + 1);
    run_until_final();
    assert_stayed();
    CU_ASSERT_EQUAL(jphase(&dst, XM_MIG_TARGET), XM_JP_ABORTED);
}

/* The target never called the hypervisor's restore (libxl's). */
static void
assert_restore_never_started(void)
{
    CU_ASSERT_EQUAL(fault_count(hv_fake_fault(dst.fake), "migrate_recv"),
                    0);
}

/*
 * libxl 4.17 kills its caller when a restore's stream fails before its
 * 24-byte opening is in (hv_fake does too): the target starts libxl
 * only once those bytes are in and checked.  Here the link goes as the
 * first stream bytes leave: the restore never started, nothing to
 * destroy, the guest stays on the source.
 */
static void
test_link_drops_before_stream(void)
{
    drop_on_type = XM_MSG_STREAM_DATA;
    start_both();
    run_until_final();
    assert_stayed();
    CU_ASSERT_EQUAL(dst.res.mig.outcome, XM_MIG_FAILED_BEFORE);
    assert_restore_never_started();
    CU_ASSERT_EQUAL(hv_fake_count_domains(dst.fake), 0);
    CU_ASSERT_EQUAL(jphase(&dst, XM_MIG_TARGET), XM_JP_ABORTED);
}

/* A stream that does not open as libxl's: refused before libxl runs,
 * with the reason. */
static void
test_stream_not_libxl(void)
{
    ident_flip = true;
    start_both();
    run_until_final();
    assert_stayed();
    CU_ASSERT_EQUAL(n_plain_sent > 0, true);
    assert_restore_never_started();
    CU_ASSERT_PTR_NOT_NULL(strstr(dst.why, "bad stream from host-a: not "
                                  "a libxl migration stream"));
    CU_ASSERT_PTR_NOT_NULL(strstr(src.why, "not a libxl migration stream"));
}

/* STREAM_END before libxl's opening (no data came): the same. */
static void
test_stream_ends_before_libxl(void)
{
    no_data = true;
    start_both();
    run_until_final();
    assert_stayed();
    assert_restore_never_started();
    CU_ASSERT_PTR_NOT_NULL(strstr(dst.why, "0 bytes, short of libxl's "
                                  "24-byte stream header"));
}

/* The send is cancelled as it starts, before libxl wrote its stream's
 * opening (which libxl 4.17 would not survive failing to write): the
 * source takes those bytes before closing, the guest stays. */
static void
test_cancel_as_send_starts(void)
{
    start_both();
    for (int i = 0; i < 2000 && migexec_machine(src.x)->state
                                != XM_MIG_S_SENDING; i++)
        CU_ASSERT_EQUAL_FATAL(xm_loop_run_once(loop, 20, NULL), XM_OK);
    CU_ASSERT_EQUAL_FATAL(migexec_machine(src.x)->state, XM_MIG_S_SENDING);
    CU_ASSERT_EQUAL(migexec_bytes(src.x), 0);
    CU_ASSERT_EQUAL(migexec_abort(src.x, "stopped by the test"), XM_OK);
    run_until_final();
    assert_stayed();
    CU_ASSERT_PTR_NOT_NULL(strstr(src.why, "stopped by the test"));
    CU_ASSERT_EQUAL(jphase(&src, XM_MIG_SOURCE), XM_JP_ABORTED);
}

static void
test_journal_fails_before_send(void)
{
    const struct xm_domain *d;

    src.fail_opens = 1;
    CU_ASSERT_EQUAL_FATAL(make_exec(&src, XM_MIG_SOURCE), XM_OK);
    CU_ASSERT_EQUAL_FATAL(make_exec(&dst, XM_MIG_TARGET), XM_OK);
    CU_ASSERT_EQUAL_FATAL(migexec_start(src.x), XM_OK);
    /* Decided at once: no loop iteration needed. */
    CU_ASSERT_TRUE(src.final);
    CU_ASSERT_EQUAL(src.res.mig.outcome, XM_MIG_FAILED_BEFORE);
    CU_ASSERT_NOT_EQUAL(src.res.mig.rc, XM_OK);
    CU_ASSERT_EQUAL(src.res.bytes, 0);
    for (int i = 0; i < 5; i++)
        CU_ASSERT_EQUAL(xm_loop_run_once(loop, 0, NULL), XM_OK);
    /* Nothing reached the target, nothing touched the guest. */
    CU_ASSERT_FALSE(dst.final);
    CU_ASSERT_PTR_NOT_NULL_FATAL(dst.x);
    CU_ASSERT_EQUAL(migexec_machine(dst.x)->state, XM_MIG_T_IDLE);
    CU_ASSERT_EQUAL(fault_count(hv_fake_fault(src.fake), "migrate_send"),
                    0);
    d = hv_fake_find(src.fake, GUEST);
    CU_ASSERT_PTR_NOT_NULL(d);
    CU_ASSERT_TRUE(running(src.fake, GUEST));
    CU_ASSERT_EQUAL(jphase(&src, XM_MIG_SOURCE), 0);
    CU_ASSERT_EQUAL(hv_fake_count_domains(dst.fake), 0);
    CU_ASSERT_EQUAL(running_copies(), 1);
}

/* Peer input is hostile: frames that are not for this migration, of
 * the wrong side or malformed are refused (the link drops) and change
 * nothing. */
static void
test_hostile_frames(void)
{
    static const char other[] = "{\"id\":\"mig-2\"}";
    static const char junk[] = "{\"id\":";
    static const uint8_t data[] = { 1, 2, 3 };
    struct xm_frame f;

    CU_ASSERT_EQUAL_FATAL(make_exec(&src, XM_MIG_SOURCE), XM_OK);
    CU_ASSERT_EQUAL_FATAL(make_exec(&dst, XM_MIG_TARGET), XM_OK);
    memset(&f, 0, sizeof(f));
    f.type = XM_MSG_MIGRATE_GO;
    f.payload = (const uint8_t *)other;
    f.len = sizeof(other) - 1;
    CU_ASSERT_EQUAL(migexec_on_frame(dst.x, &f), XM_ERR_PROTO);
    f.payload = (const uint8_t *)junk;
    f.len = sizeof(junk) - 1;
    CU_ASSERT_EQUAL(migexec_on_frame(dst.x, &f), XM_ERR_PROTO);
    f.type = XM_MSG_MIGRATE_OFFER;
    CU_ASSERT_EQUAL(migexec_on_frame(dst.x, &f), XM_ERR_PROTO);
    CU_ASSERT_EQUAL(migexec_offer_ident(&f, &(struct xm_mig_ident){0}),
                    XM_ERR_PROTO);
    f.type = XM_MSG_STREAM_DATA;
    f.payload = data;
    f.len = sizeof(data);
    CU_ASSERT_EQUAL(migexec_on_frame(src.x, &f), XM_ERR_PROTO);
    /* The target has no stream yet: late or early data is dropped. */
    CU_ASSERT_EQUAL(migexec_on_frame(dst.x, &f), XM_OK);
    f.type = 999;
    CU_ASSERT_EQUAL(migexec_on_frame(dst.x, &f), XM_ERR_PROTO);
    CU_ASSERT_EQUAL(migexec_machine(dst.x)->state, XM_MIG_T_IDLE);
    CU_ASSERT_EQUAL(migexec_machine(src.x)->state, XM_MIG_S_IDLE);
    CU_ASSERT_EQUAL(src.reports + dst.reports, 0);
    CU_ASSERT_EQUAL(running_copies(), 1);
}

/* The target learns the identity from the OFFER itself. */
static void
test_offer_ident(void)
{
    struct xm_mig_ident id;
    struct tframe *tf;
    struct xm_frame f;

    CU_ASSERT_EQUAL_FATAL(make_exec(&src, XM_MIG_SOURCE), XM_OK);
    CU_ASSERT_EQUAL_FATAL(migexec_start(src.x), XM_OK);
    CU_ASSERT_EQUAL_FATAL(src.out.n, 1);
    tf = &src.out.f[0];
    CU_ASSERT_EQUAL(tf->type, XM_MSG_MIGRATE_OFFER);
    memset(&f, 0, sizeof(f));
    f.type = tf->type;
    f.payload = tf->payload;
    f.len = (uint32_t)tf->len;
    CU_ASSERT_EQUAL_FATAL(migexec_offer_ident(&f, &id), XM_OK);
    CU_ASSERT_STRING_EQUAL(id.id, MIG_ID);
    CU_ASSERT_STRING_EQUAL(id.name, GUEST);
    CU_ASSERT_STRING_EQUAL(id.source, "host-a");
    CU_ASSERT_STRING_EQUAL(id.target, "host-b");
    CU_ASSERT_EQUAL(id.uuid[15], 0xaf);
    /* Finish it so the guest ends where it started. */
    link_up = false;
    queue_clear(&src.out);
    migexec_on_link(src.x, false);
    CU_ASSERT_TRUE(src.final);
    CU_ASSERT_EQUAL(src.res.mig.outcome, XM_MIG_FAILED_BEFORE);
    CU_ASSERT_EQUAL(running_copies(), 1);
}


/* ---- compression ---- */

static struct xm_comp_spec
spec_of(const char *text)
{
    struct xm_comp_spec spec;
    char err[128];

    CU_ASSERT_EQUAL_FATAL(xm_comp_spec_parse(text, &spec, err, sizeof(err)),
                          XM_OK);
    return spec;
}

/* The next source sends with "auto", measuring a 1 MB/s link over small
 * chunks and short windows: 5 ms of a channel held at 2 KiB or more
 * with 4 KiB gone out, and a first pick final after 4 x 8000 bytes. */
static void
auto_on_slow_link(void)
{
    src_compress = spec_of("auto");
    src_tune.chunk = 1024;
    src_tune.max_pending = 4096;
    src_tune.probe_ms = 5;
    src_tune.probe_min_bytes = 4096;
    src_tune.probe_max_bytes = 8000;
    link_bytes_per_ms = 1000;       /* 1 MB/s */
}

/* The link auto measured ("auto: link 1.0 MB/s, ..."), 0 if none said.
 * It counts the frames' bodies: with zero runs auto measures on lz4
 * frames, whose headers are a larger share of the fake link's 1 MB/s
 * with 1 KiB chunks (0.9 there). */
static double
why_link_mbps(const char *why)
{
    const char *p = strstr(why, "auto: link ");

    return p ? atof(p + strlen("auto: link ")) : 0;
}

/* Run until the source's live send runs (the reports of libxc would
 * come now), a bound on the iterations. */
static void
run_until_sending(void)
{
    for (int i = 0; i < 2000 && !(src.x && migexec_live_sending(src.x));
         i++)
        CU_ASSERT_EQUAL_FATAL(xm_loop_run_once(loop, 20, NULL), XM_OK);
    CU_ASSERT_TRUE_FATAL(src.x && migexec_live_sending(src.x));
}

/* Both sides count the same stream, bytes for bytes. */
static void
assert_same_stream(void)
{
    const struct migexec_stats *a = &src.res.stats, *b = &dst.res.stats;

    CU_ASSERT_TRUE(a->libxl_bytes > 40000);
    CU_ASSERT_EQUAL(a->libxl_bytes, b->libxl_bytes);
    CU_ASSERT_EQUAL(a->wire_bytes, b->wire_bytes);
    CU_ASSERT_EQUAL(a->frames, b->frames);
    CU_ASSERT_EQUAL(a->frames_compressed, b->frames_compressed);
    CU_ASSERT_EQUAL(src.res.bytes, a->libxl_bytes);
    CU_ASSERT_EQUAL(dst.res.bytes, b->libxl_bytes);
    CU_ASSERT_STRING_EQUAL(a->compress, b->compress);
}

/* zstd all the way: every frame a compressed block, fewer bytes on the
 * wire; the precopy rounds and the suspend the agent relays give the
 * whole downtime breakdown, the same on both sides. */
static void
test_compressed_zstd(void)
{
    const struct migexec_stats *a = &src.res.stats, *b = &dst.res.stats;

    src_compress = spec_of("zstd:5");
    src_tune.chunk = 4096;
    link_bytes_per_ms = 100;        /* 100 kB/s: time passes */
    start_both();
    run_until_sending();
    CU_ASSERT_EQUAL(migexec_machine(src.x)->state, XM_MIG_S_SENDING);
    migexec_note_iteration(src.x, 0);
    migexec_note_iteration(src.x, 2);
    migexec_note_iteration(src.x, 1);
    migexec_note_suspended(src.x, clk.mono_ms);
    migexec_note_iteration(src.x, 7);   /* after the suspend: ignored */
    run_until_final();
    CU_ASSERT_TRUE_FATAL(src.final && dst.final);
    CU_ASSERT_EQUAL(src.res.mig.outcome, XM_MIG_OK);
    CU_ASSERT_EQUAL(dst.res.mig.outcome, XM_MIG_OK);
    CU_ASSERT_TRUE(running(dst.fake, GUEST));
    CU_ASSERT_EQUAL(running_copies(), 1);
    assert_same_stream();
    CU_ASSERT_STRING_EQUAL(a->compress, "zero+zstd:5");
    CU_ASSERT_TRUE(a->frames > 5);
    CU_ASSERT_EQUAL(a->frames_compressed, a->frames);
    CU_ASSERT_TRUE(a->wire_bytes * 4 < a->libxl_bytes);
    CU_ASSERT_EQUAL(a->rounds, 3);
    CU_ASSERT_EQUAL(b->rounds, 3);
    /* The breakdown: every part known, the parts add up, both sides
     * agree, and the stream took time on this link. */
    CU_ASSERT_TRUE(a->stream_tail_ms > 0);
    CU_ASSERT_TRUE(a->restore_ms >= 0);
    CU_ASSERT_TRUE(a->handshake_ms >= 0);
    CU_ASSERT_EQUAL(a->downtime_ms, a->stream_tail_ms + a->restore_ms +
                                    a->handshake_ms);
    CU_ASSERT_EQUAL(a->downtime_ms, b->downtime_ms);
    CU_ASSERT_EQUAL(a->stream_tail_ms, b->stream_tail_ms);
    CU_ASSERT_EQUAL(a->restore_ms, b->restore_ms);
    CU_ASSERT_EQUAL(a->handshake_ms, b->handshake_ms);
    CU_ASSERT_EQUAL(src.bad_frames + dst.bad_frames, 0);
}

/* The move ends well; the source's owner heard src_downs edges, the
 * target's two (its stream's end, its unpause), each side the last one
 * before its final report and none down any more. */
static void
finish_with_edges(unsigned src_downs)
{
    run_until_final();
    CU_ASSERT_EQUAL_FATAL(src.res.mig.outcome, XM_MIG_OK);
    CU_ASSERT_EQUAL(src.downs, src_downs);
    CU_ASSERT_EQUAL(src.down_since, -1);
    CU_ASSERT_FALSE(src.down_after_final);
    CU_ASSERT_EQUAL(dst.downs, 2);
    CU_ASSERT_EQUAL(dst.down_since, -1);
    CU_ASSERT_EQUAL(running_copies(), 1);
}

/* The guest is down from the suspend libxc reports to the target's
 * word that it runs: the owner hears both edges, the second before the
 * final report; the target's are its stream's end and the unpause. */
static void
test_down_edges(void)
{
    src_compress = spec_of("none");
    start_both();
    run_until_sending();
    CU_ASSERT_EQUAL(migexec_down_since(src.x), -1);
    CU_ASSERT_EQUAL(src.downs, 0);
    clock_fake_advance(&clk, 7);
    migexec_note_suspended(src.x, clk.mono_ms);
    CU_ASSERT_EQUAL(src.downs, 1);
    CU_ASSERT_EQUAL(src.down_since, clk.mono_ms);
    CU_ASSERT_EQUAL(migexec_down_since(src.x), clk.mono_ms);
    migexec_note_suspended(src.x, clk.mono_ms + 5);   /* the first counts */
    CU_ASSERT_EQUAL(src.downs, 1);
    finish_with_edges(2);
}

/* Near its end (libxl's bytes reached p.endgame_bytes) the owner hears
 * of it first, then of the suspend and the guest's run on the target:
 * three edges; the end is told once, and is over when the guest runs. */
static void
test_endgame_edges(void)
{
    src_compress = spec_of("none");
    src_tune.chunk = 4096;
    src_tune.max_pending = 8192;
    src_endgame = 64u * 1024;
    CU_ASSERT_EQUAL_FATAL(hv_fake_stream_zeros(src.fake, 1u << 20), XM_OK);
    start_both();
    run_until_sending();
    clock_fake_advance(&clk, 11);
    for (int i = 0; i < 2000 && src.downs == 0 && !src.final; i++)
        CU_ASSERT_EQUAL_FATAL(xm_loop_run_once(loop, 20, NULL), XM_OK);
    CU_ASSERT_EQUAL_FATAL(src.downs, 1);
    /* a guest this small nears its end at half its memory (else at
     * three socket buffers before it), seen at the read that got there */
    CU_ASSERT_TRUE(migexec_bytes(src.x) >= src_endgame / 2);
    CU_ASSERT_TRUE(migexec_bytes(src.x) < src_endgame / 2 + 4096);
    CU_ASSERT_EQUAL(src.endgame_first, clk.mono_ms);
    CU_ASSERT_EQUAL(src.down_first, -1);
    CU_ASSERT_EQUAL(migexec_endgame_since(src.x), clk.mono_ms);
    clock_fake_advance(&clk, 5);
    migexec_note_suspended(src.x, clk.mono_ms);
    CU_ASSERT_EQUAL(src.downs, 2);
    CU_ASSERT_EQUAL(src.down_since, clk.mono_ms);
    CU_ASSERT_EQUAL(migexec_endgame_since(src.x), clk.mono_ms - 5);
    finish_with_edges(3);
}

/* Near its end, to a target that sends STREAM_ACKs, the source keeps
 * at most MIGEXEC_ENDGAME_AHEAD of libxl's ahead of the target's
 * restore, however much the link would take (here a kernel buffer of
 * 16 MiB): with the restore held it stops there.  A target that sends
 * none (the build before them) is not waited for: the source runs on
 * into the buffer.  Released, either move ends with the same stream on
 * both sides, which report what the target last acknowledged. */
static void
test_endgame_ahead(void)
{
    for (int acks = 1; acks >= 0; acks--) {
        uint64_t ahead;

        if (!acks) {
            teardown();
            setup();
            CU_ASSERT_FATAL(fixture_ok);
        }
        link_features = acks ? XM_FEAT_STREAM_ACK : 0;
        src_compress = spec_of("none");
        src_tune.chunk = 64 * 1024;
        kbuf = kbuf_max = 16u << 20;
        src_endgame = 8u << 20;         /* near its end at 4 MiB */
        CU_ASSERT_EQUAL_FATAL(hv_fake_stream_zeros(src.fake, 12u << 20),
                              XM_OK);
        start_both();
        run_until_sending();
        for (int i = 0; i < 20000 && migexec_endgame_since(src.x) < 0 &&
                        !src.final; i++)
            CU_ASSERT_EQUAL_FATAL(xm_loop_run_once(loop, 1, NULL), XM_OK);
        CU_ASSERT_FATAL(!src.final && migexec_endgame_since(src.x) >= 0);
        migexec_hold(dst.x, true);
        for (int i = 0; i < 3000; i++)
            CU_ASSERT_EQUAL_FATAL(xm_loop_run_once(loop, 1, NULL), XM_OK);
        CU_ASSERT_FATAL(!src.final && !dst.final);     /* it waits */
        ahead = migexec_bytes(src.x) - migexec_bytes(dst.x);
        if (acks) {
            CU_ASSERT_TRUE(ahead <= MIGEXEC_ENDGAME_AHEAD + 64 * 1024);
        } else {
            CU_ASSERT_TRUE(ahead > 2 * MIGEXEC_ENDGAME_AHEAD);
        }
        migexec_hold(dst.x, false);
        run_until_final();
        CU_ASSERT_EQUAL(src.res.mig.outcome, XM_MIG_OK);
        CU_ASSERT_EQUAL(dst.res.mig.outcome, XM_MIG_OK);
        assert_same_stream();
        /* both report what the target last acknowledged: within
         * 256 KiB of the whole stream; none without the feature */
        if (acks) {
            const struct migexec_stats *a = &src.res.stats;

            CU_ASSERT(a->acked_bytes > 0);
            CU_ASSERT(a->acked_bytes <= a->libxl_bytes);
            CU_ASSERT(a->libxl_bytes - a->acked_bytes < 256 * 1024);
            CU_ASSERT_EQUAL(dst.res.stats.acked_bytes, a->acked_bytes);
        } else {
            CU_ASSERT_EQUAL(src.res.stats.acked_bytes, 0);
            CU_ASSERT_EQUAL(dst.res.stats.acked_bytes, 0);
        }
    }
}

/* Near its end a stream keeps little in the channel: with the target
 * held (so that nothing drains), the source stops at its small bound
 * once near its end instead of MIGEXEC_MAX_PENDING; released, the
 * move ends with the same stream. */
static void
test_endgame_small_channel(void)
{
    src_compress = spec_of("none");
    src_tune.chunk = 4096;
    src_endgame = 256u * 1024;     /* near its end at 128 KiB */
    CU_ASSERT_EQUAL_FATAL(hv_fake_stream_zeros(src.fake, 4u << 20), XM_OK);
    start_both();
    run_until_sending();
    migexec_hold(dst.x, true);
    for (int i = 0; i < 3000; i++)
        CU_ASSERT_EQUAL_FATAL(xm_loop_run_once(loop, 1, NULL), XM_OK);
    CU_ASSERT_FATAL(!src.final && !dst.final);     /* it waits */
    CU_ASSERT_EQUAL(src.downs, 1);
    CU_ASSERT_TRUE(migexec_endgame_since(src.x) >= 0);
    CU_ASSERT_TRUE(src.out.paused);     /* the target asked */
    /* what waits in the channel: the kernel's buffer, then at most the
     * bound and a frame (else up to a megabyte) */
    CU_ASSERT_TRUE(src.out.bytes > kbuf);
    CU_ASSERT_TRUE(src.out.bytes <= kbuf + 64u * 1024 + 4096);
    CU_ASSERT_FALSE(src.final || dst.final);
    migexec_hold(dst.x, false);
    run_until_final();
    CU_ASSERT_TRUE_FATAL(src.final && dst.final);
    CU_ASSERT_EQUAL(src.res.mig.outcome, XM_MIG_OK);
    assert_same_stream();
    CU_ASSERT_EQUAL(running_copies(), 1);
}

/* libxc's suspend not relayed (several sends at once, or no reports):
 * a send that returned means a suspended guest all the same, down from
 * then; the downtime figures stay unknown. */
static void
test_down_without_report(void)
{
    src_compress = spec_of("none");
    start_both();
    clock_fake_advance(&clk, 3);
    run_until_final();
    CU_ASSERT_EQUAL_FATAL(src.res.mig.outcome, XM_MIG_OK);
    CU_ASSERT_EQUAL(src.downs, 2);
    CU_ASSERT_EQUAL(src.down_first, clk.mono_ms);
    CU_ASSERT_EQUAL(src.down_since, -1);
    CU_ASSERT_EQUAL(src.res.stats.downtime_ms, MIGEXEC_UNKNOWN);
    CU_ASSERT_EQUAL(running_copies(), 1);
}

/* A held stream reads nothing more of libxl's and sends nothing while
 * held (libxl's send waits on its socket, no timer fires), then
 * finishes where it stopped once released: the same stream on both
 * sides. */
static void
test_hold_and_release(void)
{
    uint64_t bytes;

    src_compress = spec_of("none");
    src_tune.chunk = 65536;
    src_tune.max_pending = 131072;
    /* more than the socketpair holds: libxl's send cannot end early */
    CU_ASSERT_EQUAL_FATAL(hv_fake_stream_zeros(src.fake, 16u << 20), XM_OK);
    start_both();
    run_until_sending();
    for (int i = 0; i < 2000 && migexec_bytes(src.x) < 131072; i++)
        CU_ASSERT_EQUAL_FATAL(xm_loop_run_once(loop, 20, NULL), XM_OK);
    migexec_hold(src.x, true);
    bytes = migexec_bytes(src.x);
    CU_ASSERT_TRUE(bytes >= 131072);
    CU_ASSERT_TRUE(src.out.n > 0);  /* what was queued still goes out */
    for (int i = 0; i < 300; i++)
        CU_ASSERT_EQUAL_FATAL(xm_loop_run_once(loop, 1, NULL), XM_OK);
    CU_ASSERT_EQUAL(migexec_bytes(src.x), bytes);
    CU_ASSERT_EQUAL(src.out.n, 0);
    CU_ASSERT_EQUAL(migexec_bytes(dst.x), bytes);
    CU_ASSERT_EQUAL(migexec_machine(src.x)->state, XM_MIG_S_SENDING);
    CU_ASSERT_EQUAL(migexec_down_since(src.x), -1);
    CU_ASSERT_FALSE(src.final || dst.final);
    migexec_hold(src.x, false);
    run_until_final();
    CU_ASSERT_TRUE_FATAL(src.final && dst.final);
    CU_ASSERT_EQUAL(src.res.mig.outcome, XM_MIG_OK);
    CU_ASSERT_TRUE(src.res.stats.libxl_bytes > bytes);
    assert_same_stream();
    CU_ASSERT_TRUE(running(dst.fake, GUEST));
    CU_ASSERT_EQUAL(running_copies(), 1);
}

/* A held target gives libxl's restore nothing more: its queue fills,
 * the link is read no more, and the source, not held, stops reading
 * libxl's stream too; released, the move ends with the same stream.
 * The target is down from the stream's end to the unpause. */
static void
test_target_hold(void)
{
    uint64_t bytes;

    src_compress = spec_of("none");
    src_tune.chunk = 65536;
    src_tune.max_pending = 65536;
    /* more than the target's queue and libxl's socket on the source */
    CU_ASSERT_EQUAL_FATAL(hv_fake_stream_zeros(src.fake, 16u << 20), XM_OK);
    start_both();
    run_until_sending();
    for (int i = 0; i < 2000 && migexec_bytes(dst.x) < 65536; i++)
        CU_ASSERT_EQUAL_FATAL(xm_loop_run_once(loop, 20, NULL), XM_OK);
    migexec_hold(dst.x, true);
    for (int i = 0; i < 500; i++)
        CU_ASSERT_EQUAL_FATAL(xm_loop_run_once(loop, 1, NULL), XM_OK);
    CU_ASSERT_FATAL(!src.final && !dst.final);     /* it waits */
    bytes = migexec_bytes(src.x);
    CU_ASSERT_TRUE(bytes < (16u << 20));
    for (int i = 0; i < 300; i++)
        CU_ASSERT_EQUAL_FATAL(xm_loop_run_once(loop, 1, NULL), XM_OK);
    CU_ASSERT_EQUAL(migexec_bytes(src.x), bytes);
    CU_ASSERT_TRUE(dst.out.paused || src.out.n > 0);
    CU_ASSERT_EQUAL(migexec_down_since(dst.x), -1);
    CU_ASSERT_FATAL(!src.final && !dst.final);
    migexec_hold(dst.x, false);
    run_until_final();
    CU_ASSERT_TRUE_FATAL(src.final && dst.final);
    CU_ASSERT_EQUAL(src.res.mig.outcome, XM_MIG_OK);
    CU_ASSERT_TRUE(src.res.stats.libxl_bytes > bytes);
    assert_same_stream();
    /* the target's down edges: the stream's end, then the unpause */
    CU_ASSERT_EQUAL(dst.downs, 2);
    CU_ASSERT_TRUE(dst.down_first >= 0);
    CU_ASSERT_EQUAL(dst.down_since, -1);
    CU_ASSERT_FALSE(dst.down_after_final);
    CU_ASSERT_TRUE(running(dst.fake, GUEST));
    CU_ASSERT_EQUAL(running_copies(), 1);
}

/* Without the suspend or the rounds relayed: the stream figures, the
 * target's parts, and "unknown" (never a guess) for the rest. */
static void
test_uncompressed_unknowns(void)
{
    const struct migexec_stats *a = &src.res.stats, *b = &dst.res.stats;

    src_compress = spec_of("none");
    start_both();
    run_until_final();
    CU_ASSERT_EQUAL_FATAL(src.res.mig.outcome, XM_MIG_OK);
    assert_same_stream();
    CU_ASSERT_STRING_EQUAL(a->compress, "none");
    CU_ASSERT_EQUAL(a->frames_compressed, 0);
    /* Plain frames: libxl's bytes plus a header per frame and END's. */
    CU_ASSERT_EQUAL(a->wire_bytes, a->libxl_bytes +
                    (a->frames + 1) * XM_PROTO_HEADER_LEN);
    CU_ASSERT_EQUAL(a->rounds, MIGEXEC_UNKNOWN);
    CU_ASSERT_EQUAL(b->rounds, MIGEXEC_UNKNOWN);
    CU_ASSERT_EQUAL(a->stream_tail_ms, MIGEXEC_UNKNOWN);
    CU_ASSERT_EQUAL(a->downtime_ms, MIGEXEC_UNKNOWN);
    CU_ASSERT_EQUAL(b->downtime_ms, MIGEXEC_UNKNOWN);
    CU_ASSERT_EQUAL(a->restore_ms, 0);      /* the clock did not move */
    CU_ASSERT_EQUAL(b->restore_ms, 0);
    CU_ASSERT_EQUAL(b->handshake_ms, 0);
}

/* A peer that does not offer STREAM_COMPRESS gets plain frames, and
 * the migration goes through. */
static void
test_peer_without_compression(void)
{
    const struct migexec_stats *a = &src.res.stats;

    link_features = 0;
    src_compress = spec_of("zstd");
    start_both();
    run_until_final();
    CU_ASSERT_EQUAL_FATAL(src.res.mig.outcome, XM_MIG_OK);
    CU_ASSERT_EQUAL(dst.res.mig.outcome, XM_MIG_OK);
    CU_ASSERT_TRUE(running(dst.fake, GUEST));
    assert_same_stream();
    CU_ASSERT_STRING_EQUAL(a->compress, "none");
    CU_ASSERT_PTR_NOT_NULL(strstr(a->compress_why, "does not offer"));
    CU_ASSERT_EQUAL(a->frames_compressed, 0);
    CU_ASSERT_EQUAL(n_compressed_sent, 0);
    CU_ASSERT_EQUAL(a->wire_bytes, a->libxl_bytes +
                    (a->frames + 1) * XM_PROTO_HEADER_LEN);
    CU_ASSERT_EQUAL(running_copies(), 1);
}

/* A compressed chunk damaged on the way (a flipped byte, or cut short):
 * the target's restore fails before GO, the source resumes its guest,
 * and both say why. */
static void
corrupt_chunk(enum mangle how, const char *spec)
{
    char why[XM_MIG_WHY_MAX];

    mangle = how;
    src_compress = spec_of(spec);
    src_tune.chunk = 8192;
    start_both();
    run_until_final();
    assert_stayed();
    CU_ASSERT_EQUAL(n_compressed_sent > 0, true);
    CU_ASSERT_EQUAL(dst.res.mig.outcome, XM_MIG_FAILED_BEFORE);
    CU_ASSERT_EQUAL(jphase(&src, XM_MIG_SOURCE), XM_JP_ABORTED);
    CU_ASSERT_EQUAL(jphase(&dst, XM_MIG_TARGET), XM_JP_ABORTED);
    /* No GO ever went: the source's copy never left "sending". */
    CU_ASSERT_EQUAL(src.res.state, XM_MIG_S_STAYED);
    CU_ASSERT_EQUAL(src.bad_frames + dst.bad_frames, 0);
    snprintf(why, sizeof(why), "%s", dst.why);
    CU_ASSERT_PTR_NOT_NULL(strstr(why, "bad stream data from host-a"));
    CU_ASSERT_PTR_NOT_NULL(strstr(src.why, "bad stream data"));
}

static void
test_corrupt_chunk(void)
{
    corrupt_chunk(MANGLE_FLIP, "zstd:1");
}

static void
test_truncated_chunk(void)
{
    corrupt_chunk(MANGLE_TRUNCATE, "zstd:1");
}

/* The four auto tests below run against a peer without zero runs (an
 * agent of the build before them); test_zr_* run with them.
 *
 * auto on a slow link: plain frames while it measures, then the
 * codecs win (the config compresses far better than the link's speed
 * makes up for). */
static void
test_auto_slow_link(void)
{
    const struct migexec_stats *a = &src.res.stats;

    link_features = XM_FEAT_STREAM_COMPRESS;    /* no zero runs */
    /* (its first pick is final after 4 x 8000 bytes: the stream has too
     * few to compare the codecs on otherwise) */
    auto_on_slow_link();
    start_both();
    run_until_final();
    CU_ASSERT_EQUAL_FATAL(src.res.mig.outcome, XM_MIG_OK);
    assert_same_stream();
    CU_ASSERT_STRING_NOT_EQUAL(a->compress, "none");
    CU_ASSERT_PTR_NOT_NULL(strstr(a->compress_why, "auto: link 1.0 MB/s, "
                                  "CPU 100% idle, 0% zero pages; lz4 "));
    /* Measured first on plain frames, then compressed. */
    CU_ASSERT_TRUE(a->frames_compressed > 0);
    CU_ASSERT_TRUE(a->frames_compressed < a->frames);
    CU_ASSERT_TRUE(a->wire_bytes < a->libxl_bytes);
    CU_ASSERT_EQUAL(running_copies(), 1);
}

/* auto on a link that keeps up (the channel never fills): plain
 * frames, no codec time spent on the stream. */
static void
test_auto_fast_link(void)
{
    const struct migexec_stats *a = &src.res.stats;

    link_features = XM_FEAT_STREAM_COMPRESS;    /* no zero runs */
    src_compress = spec_of("auto");
    src_tune.chunk = 1024;
    src_tune.max_pending = 1024 * 1024;
    src_tune.probe_max_bytes = 16384;
    start_both();
    run_until_final();
    CU_ASSERT_EQUAL_FATAL(src.res.mig.outcome, XM_MIG_OK);
    assert_same_stream();
    CU_ASSERT_STRING_EQUAL(a->compress, "none");
    CU_ASSERT_PTR_NOT_NULL(strstr(a->compress_why, "kept up"));
    CU_ASSERT_EQUAL(a->frames_compressed, 0);
    CU_ASSERT_EQUAL(n_compressed_sent, 0);
}

/* auto while it measures a link that keeps up: chunks of zero pages
 * (a guest's untouched memory) go compressed even so, the others as
 * they are; then plain frames, and the guest's memory arrives whole
 * (the fake target checks its zero bytes). */
static void
test_auto_zero_chunks(void)
{
    const struct migexec_stats *a = &src.res.stats;

    CU_ASSERT_EQUAL_FATAL(hv_fake_stream_zeros(src.fake, 1024 * 1024),
                          XM_OK);
    link_features = XM_FEAT_STREAM_COMPRESS;    /* no zero runs */
    src_compress = spec_of("auto");
    src_tune.chunk = 16384;
    src_tune.max_pending = 4 * 1024 * 1024;
    /* the header's chunk and the config's go as they are: 64 KiB */
    src_tune.probe_max_bytes = 48 * 1024;
    start_both();
    run_until_final();
    CU_ASSERT_EQUAL_FATAL(src.res.mig.outcome, XM_MIG_OK);
    CU_ASSERT_EQUAL(dst.res.mig.outcome, XM_MIG_OK);
    CU_ASSERT_TRUE(running(dst.fake, GUEST));
    assert_same_stream();
    CU_ASSERT_STRING_EQUAL(a->compress, "none");
    CU_ASSERT_PTR_NOT_NULL(strstr(a->compress_why, "kept up"));
    /* 1 MiB of zeros in 16 KiB chunks: all but the first (the header's)
     * and the last (the config's) compressed; the config's 40 KB plain */
    CU_ASSERT_TRUE(a->frames_compressed >= 60);
    CU_ASSERT_TRUE(a->frames_compressed < a->frames);
    CU_ASSERT_TRUE(a->libxl_bytes > 1024 * 1024 + 40000);
    CU_ASSERT_TRUE(a->wire_bytes < 120000);
    CU_ASSERT_EQUAL(running_copies(), 1);
}

/* A stream that ends while auto measures, all but its head zero pages:
 * it says what it used. */
static void
test_auto_short_zero_stream(void)
{
    const struct migexec_stats *a = &src.res.stats;

    CU_ASSERT_EQUAL_FATAL(hv_fake_stream_zeros(src.fake, 512 * 1024),
                          XM_OK);
    link_features = XM_FEAT_STREAM_COMPRESS;    /* no zero runs */
    src_compress = spec_of("auto");
    src_tune.chunk = 16384;
    src_tune.max_pending = 4 * 1024 * 1024;
    start_both();
    run_until_final();
    CU_ASSERT_EQUAL_FATAL(src.res.mig.outcome, XM_MIG_OK);
    assert_same_stream();
    CU_ASSERT_STRING_EQUAL(a->compress, "zstd:1");
    CU_ASSERT_PTR_NOT_NULL(strstr(a->compress_why, "ended before"));
    CU_ASSERT_TRUE(a->frames_compressed >= 28);
    CU_ASSERT_TRUE(a->wire_bytes < a->libxl_bytes / 4);
}


/* ---- zero runs (a peer that offers XM_FEAT_STREAM_ZERO_RUNS) ---- */

/* Move a guest whose stream holds zeros zero bytes with compress spec
 * (16 KiB chunks): it must move, the same stream on both sides. */
static void
move_with(const char *spec, size_t zeros)
{
    CU_ASSERT_EQUAL_FATAL(hv_fake_stream_zeros(src.fake, zeros), XM_OK);
    src_compress = spec_of(spec);
    src_tune.chunk = 16384;
    start_both();
    run_until_final();
    CU_ASSERT_EQUAL_FATAL(src.res.mig.outcome, XM_MIG_OK);
    assert_same_stream();
}

/* A fixed codec: every chunk with its zero runs elided, the rest
 * compressed; the guest's zero memory arrives whole (the fake target
 * checks). */
static void
test_zr_fixed_codec(void)
{
    const struct migexec_stats *a = &src.res.stats;

    move_with("lz4", 1024 * 1024);
    CU_ASSERT_EQUAL(dst.res.mig.outcome, XM_MIG_OK);
    CU_ASSERT_TRUE(running(dst.fake, GUEST));
    CU_ASSERT_STRING_EQUAL(a->compress, "zero+lz4");
    CU_ASSERT_EQUAL(a->frames_compressed, a->frames);
    CU_ASSERT_TRUE(a->wire_bytes < a->libxl_bytes / 8);
    CU_ASSERT_EQUAL(running_copies(), 1);
}

/* "zero": zero runs elided, nothing compressed; the chunks without a
 * run go as plain frames. */
static void
test_zr_zero_only(void)
{
    const struct migexec_stats *a = &src.res.stats;

    move_with("zero", 512 * 1024);
    CU_ASSERT_STRING_EQUAL(a->compress, "zero");
    CU_ASSERT_TRUE(a->frames_compressed >= 30);     /* 512 KiB of zeros */
    CU_ASSERT_TRUE(a->frames_compressed < a->frames); /* header, config */
    CU_ASSERT_TRUE(a->wire_bytes < a->libxl_bytes / 4);
}

/* lz4 to a peer that takes bare LZ4 blocks: every lz4 block is one;
 * to a peer that does not (the build before them): LZ4 frames, and the
 * guest moves all the same. */
static void
test_lz4_blocks_negotiated(void)
{
    move_with("lz4", 512 * 1024);
    CU_ASSERT(n_lz4_sent > 0);
    CU_ASSERT_EQUAL(n_lz4_blocks_sent, n_lz4_sent);
    CU_ASSERT_STRING_EQUAL(src.res.stats.compress_why,
                           "bare LZ4 blocks (the peer takes them)");
    teardown();
    setup();
    CU_ASSERT_FATAL(fixture_ok);
    link_features = XM_FEAT_STREAM_COMPRESS | XM_FEAT_STREAM_ZERO_RUNS;
    move_with("lz4", 512 * 1024);
    CU_ASSERT_STRING_EQUAL(src.res.stats.compress, "zero+lz4");
    CU_ASSERT(n_lz4_sent > 0);
    CU_ASSERT_EQUAL(n_lz4_blocks_sent, 0);
    CU_ASSERT_STRING_EQUAL(src.res.stats.compress_why,
                           "LZ4 frames (the peer takes no bare blocks)");
}

/* A peer without zero runs (the build before them): "zero" is plain
 * frames, lz4 is lz4 on whole chunks; both say so and go through. */
static void
test_zr_peer_without(void)
{
    const struct migexec_stats *a = &src.res.stats;

    link_features = XM_FEAT_STREAM_COMPRESS;
    src_compress = spec_of("zero");
    start_both();
    run_until_final();
    CU_ASSERT_EQUAL_FATAL(src.res.mig.outcome, XM_MIG_OK);
    assert_same_stream();
    CU_ASSERT_STRING_EQUAL(a->compress, "none");
    CU_ASSERT_PTR_NOT_NULL(strstr(a->compress_why,
                                  "does not take zero runs"));
    CU_ASSERT_EQUAL(n_compressed_sent, 0);
    teardown();
    setup();
    CU_ASSERT_FATAL(fixture_ok);
    link_features = XM_FEAT_STREAM_COMPRESS;
    src_compress = spec_of("lz4");
    start_both();
    run_until_final();
    CU_ASSERT_EQUAL_FATAL(src.res.mig.outcome, XM_MIG_OK);
    assert_same_stream();
    CU_ASSERT_STRING_EQUAL(a->compress, "lz4");
    CU_ASSERT_STRING_EQUAL(a->compress_why,
                           "LZ4 frames (the peer takes no bare blocks)");
}

/* auto with zero runs on a slow link: zero runs elided from the start,
 * the rest plain while the link is measured, then a codec for the
 * rest; the choice says so. */
static void
test_zr_auto_slow_link(void)
{
    const struct migexec_stats *a = &src.res.stats;

    auto_on_slow_link();
    start_both();
    run_until_final();
    CU_ASSERT_EQUAL_FATAL(src.res.mig.outcome, XM_MIG_OK);
    assert_same_stream();
    CU_ASSERT(strncmp(a->compress, "zero+", 5) == 0);
    CU_ASSERT(why_link_mbps(a->compress_why) > 0.8 &&
              why_link_mbps(a->compress_why) < 1.1);
    CU_ASSERT_PTR_NOT_NULL(strstr(a->compress_why, " MB/s, CPU 100% idle, "
                                  "0% zero pages (elided); lz4 "));
    CU_ASSERT_PTR_NOT_NULL(strstr(a->compress_why, ": zero+"));
    /* lz4 while measured, then the pick: every chunk a block but the
     * stream's first few (its header's short records: 4 of 40 here;
     * plain while measured, more were) */
    CU_ASSERT_TRUE(a->frames_compressed > 0);
    CU_ASSERT_TRUE(a->frames_compressed + 4 >= a->frames);
    CU_ASSERT_TRUE(a->wire_bytes < a->libxl_bytes);
    CU_ASSERT_EQUAL(running_copies(), 1);
}

/* auto with zero runs times the codecs again further on the stream,
 * on the pages of the window before each point (the first pages that
 * are not zero are a guest kernel's, which compress worse than the
 * rest): here memory of which every fourth page is in use, 24 MiB. */
static void
test_zr_auto_repicks(void)
{
    const struct migexec_stats *a = &src.res.stats;

    CU_ASSERT_EQUAL_FATAL(hv_fake_stream_zeros(src.fake, 24u << 20),
                          XM_OK);
    hv_fake_stream_pattern(src.fake, true);
    auto_on_slow_link();
    src_tune.chunk = 64 * 1024;
    start_both();
    run_until_final();
    CU_ASSERT_EQUAL_FATAL(src.res.mig.outcome, XM_MIG_OK);
    CU_ASSERT_EQUAL(dst.res.mig.outcome, XM_MIG_OK);
    assert_same_stream();
    CU_ASSERT_PTR_NOT_NULL(strstr(a->compress_why, "auto (again at 1"));
    CU_ASSERT(strncmp(a->compress, "zero+", 5) == 0);
    CU_ASSERT_TRUE(a->wire_bytes < a->libxl_bytes / 8);
}

/* The link measured as it carries the stream, not as the kernel's send
 * buffer grows: here it grows as fast as the link drains (counted as
 * sent, the link read 2.0 MB/s). */
static void
test_zr_auto_growing_kernel_buffer(void)
{
    const struct migexec_stats *a = &src.res.stats;

    auto_on_slow_link();
    kbuf_step = 1024 + XM_PROTO_HEADER_LEN;
    kbuf_max = 1u << 20;
    start_both();
    run_until_final();
    CU_ASSERT_EQUAL_FATAL(src.res.mig.outcome, XM_MIG_OK);
    assert_same_stream();
    CU_ASSERT_PTR_NOT_NULL(strstr(a->compress_why, "auto: link 1.0 MB/s, "));
    CU_ASSERT_TRUE(kbuf > 0);
    CU_ASSERT_EQUAL(running_copies(), 1);
}

/* The same on a host whose CPU had no idle time while the link was
 * measured: the choice names the CPU as the bottleneck and takes the
 * cheapest codec (the model's arithmetic is compress_test's). */
static void
test_zr_auto_cpu_bound(void)
{
    const struct migexec_stats *a = &src.res.stats;

    clk.busy_permille = 1000;
    auto_on_slow_link();
    start_both();
    run_until_final();
    CU_ASSERT_EQUAL_FATAL(src.res.mig.outcome, XM_MIG_OK);
    assert_same_stream();
    CU_ASSERT_PTR_NOT_NULL(strstr(a->compress_why,
                                  "CPU 0% idle (the bottleneck)"));
    /* the cheapest codec (on this link the model ranks zstd:1 first:
     * test_zr_auto_slow_link) */
    CU_ASSERT_STRING_EQUAL(a->compress, "zero+lz4");
    /* a host that cannot tell: nothing said, the pipelined model */
    teardown();
    setup();
    CU_ASSERT_FATAL(fixture_ok);
    clk.cpu_unknown = true;
    auto_on_slow_link();
    start_both();
    run_until_final();
    CU_ASSERT_EQUAL_FATAL(src.res.mig.outcome, XM_MIG_OK);
    CU_ASSERT(why_link_mbps(a->compress_why) > 0.8);
    CU_ASSERT_PTR_NOT_NULL(strstr(a->compress_why, " MB/s, 0% zero pages"));
    CU_ASSERT_PTR_NULL(strstr(a->compress_why, "idle"));
}

/* auto over a link that keeps up (a channel of 4 MiB never fills):
 * the header's chunk and the config's hold 64 KiB that is not zero,
 * 16 KiB of it measured in lz4, then 16 KiB plain unless lz4 stays. */
static void
move_auto_on_fast_link(void)
{
    src_tune.max_pending = 4 * 1024 * 1024;
    src_tune.probe_max_bytes = 16 * 1024;
    move_with("auto", 1024 * 1024);
}

/* auto with zero runs on a link that keeps up: lz4 first, then (the
 * link kept up with that) the zero runs still go elided (they cost
 * nothing), the rest plain: "zero". */
static void
test_zr_auto_fast_link(void)
{
    const struct migexec_stats *a = &src.res.stats;

    move_auto_on_fast_link();
    CU_ASSERT_STRING_EQUAL(a->compress, "zero");
    CU_ASSERT_PTR_NOT_NULL(strstr(a->compress_why, "kept up"));
    CU_ASSERT(n_lz4_sent > 0);                      /* measuring */
    CU_ASSERT(a->frames_compressed < a->frames);    /* then plain */
    CU_ASSERT_TRUE(a->frames_compressed >= 60);
    CU_ASSERT_TRUE(a->wire_bytes < 120000);
    CU_ASSERT_EQUAL(running_copies(), 1);
}

/* The same on a host whose CPU had no idle time: the link kept up with
 * lz4 because the CPU held libxl up, and plain pages would cost it
 * more: lz4 stays, for the rest of the stream. */
static void
test_zr_auto_fast_link_cpu_bound(void)
{
    const struct migexec_stats *a = &src.res.stats;

    clk.busy_permille = 1000;
    clk.cpu_step_ms = 10;           /* its pump reads all at once */
    move_auto_on_fast_link();
    CU_ASSERT_STRING_EQUAL(a->compress, "zero+lz4");
    CU_ASSERT_PTR_NOT_NULL(strstr(a->compress_why, "auto: the link kept "
                                  "up with lz4 for "));
    CU_ASSERT_PTR_NOT_NULL(strstr(a->compress_why, "CPU 0% idle (the "
                                  "bottleneck): zero+lz4"));
    CU_ASSERT(a->frames_compressed + 4 >= a->frames);  /* lz4 to the end */
    CU_ASSERT_EQUAL(running_copies(), 1);
}

/* A damaged zero-run block fails the migration before GO: a map that
 * no longer adds up ("zero": every block has runs), a frame cut short
 * (zstd:1).  (The literal bytes of a stored block, as a plain frame's,
 * carry no checksum of ours: TLS authenticates every byte on the
 * wire.) */
static void
test_zr_corrupt(void)
{
    CU_ASSERT_EQUAL_FATAL(hv_fake_stream_zeros(src.fake, 256 * 1024),
                          XM_OK);
    corrupt_chunk(MANGLE_MAP, "zero");
    CU_ASSERT_PTR_NOT_NULL(strstr(dst.why, "zero-run map"));
    teardown();
    setup();
    CU_ASSERT_FATAL(fixture_ok);
    CU_ASSERT_EQUAL_FATAL(hv_fake_stream_zeros(src.fake, 256 * 1024),
                          XM_OK);
    corrupt_chunk(MANGLE_TRUNCATE, "zstd:1");
}

/* Figures from a hostile peer are bounded or dropped, never trusted
 * (here a GO out of turn: the target refuses the migration, and its
 * report shows none of the GO's figures). */
static void
test_hostile_timing_fields(void)
{
    static const char go[] = "{\"id\":\"" MIG_ID "\",\"susp_to_ready_ms\":"
        "-5,\"rounds\":99999,\"compress\":\"zstd;rm -rf\"}";
    const struct migexec_stats *st = &dst.res.stats;
    struct xm_frame f;

    CU_ASSERT_EQUAL_FATAL(make_exec(&dst, XM_MIG_TARGET), XM_OK);
    memset(&f, 0, sizeof(f));
    f.type = XM_MSG_MIGRATE_GO;
    f.payload = (const uint8_t *)go;
    f.len = sizeof(go) - 1;
    CU_ASSERT_EQUAL(migexec_on_frame(dst.x, &f), XM_OK);
    CU_ASSERT_TRUE_FATAL(dst.final);
    CU_ASSERT_EQUAL(dst.res.state, XM_MIG_T_REJECTED);
    CU_ASSERT_EQUAL(st->rounds, MIGEXEC_UNKNOWN);
    CU_ASSERT_EQUAL(st->stream_tail_ms, MIGEXEC_UNKNOWN);
    CU_ASSERT_EQUAL(st->downtime_ms, MIGEXEC_UNKNOWN);
    CU_ASSERT_STRING_EQUAL(st->compress, "");
    CU_ASSERT_EQUAL(st->libxl_bytes, 0);
    CU_ASSERT_EQUAL(running_copies(), 1);
}

static CU_TestInfo migexec_tests[] = {
    { "happy path: the guest runs on the target", test_happy_path },
    { "link lost before the stream: libxl never started",
      test_link_drops_before_stream },
    { "a stream that is not libxl's: refused before libxl",
      test_stream_not_libxl },
    { "a stream that ends before libxl's opening: refused",
      test_stream_ends_before_libxl },
    { "a send cancelled as it starts: libxl's opening taken first",
      test_cancel_as_send_starts },
    { "target restore fails: resumed on the source", test_restore_fails },
    { "source send fails: still on the source", test_send_fails },
    { "link lost after the stream, before GO", test_link_drops_before_go },
    { "journal fails before sending: untouched",
      test_journal_fails_before_send },
    { "hostile frames are refused", test_hostile_frames },
    { "the target's identity from the offer", test_offer_ident },
    { "zstd: fewer wire bytes, the downtime breakdown",
      test_compressed_zstd },
    { "none: plain frames, unknowns said", test_uncompressed_unknowns },
    { "the guest's down edges, told before the end", test_down_edges },
    { "the guest is down once libxl's send returned",
      test_down_without_report },
    { "a held stream waits, then finishes", test_hold_and_release },
    { "near its end, down, up: three edges", test_endgame_edges },
    { "near its end, little ahead of the target's restore",
      test_endgame_ahead },
    { "a held target stops the stream, then finishes", test_target_hold },
    { "near its end, little waits in the channel",
      test_endgame_small_channel },
    { "a peer without STREAM_COMPRESS gets plain frames",
      test_peer_without_compression },
    { "a corrupt compressed chunk fails before GO", test_corrupt_chunk },
    { "a truncated compressed chunk fails before GO",
      test_truncated_chunk },
    { "auto on a slow link compresses", test_auto_slow_link },
    { "auto on a link that keeps up sends plain frames",
      test_auto_fast_link },
    { "auto compresses zero chunks while it measures",
      test_auto_zero_chunks },
    { "auto: a short stream of zero pages", test_auto_short_zero_stream },
    { "zero runs: a fixed codec on the rest", test_zr_fixed_codec },
    { "zero runs: 'zero', nothing compressed", test_zr_zero_only },
    { "zero runs: a peer without them", test_zr_peer_without },
    { "lz4 blocks to a peer that takes them, frames to one that does not",
      test_lz4_blocks_negotiated },
    { "zero runs: auto on a slow link", test_zr_auto_slow_link },
    { "zero runs: auto on a CPU-bound host", test_zr_auto_cpu_bound },
    { "zero runs: auto times the codecs again further on",
      test_zr_auto_repicks },
    { "zero runs: auto measures the link, not the kernel's buffer",
      test_zr_auto_growing_kernel_buffer },
    { "zero runs: auto on a link that keeps up", test_zr_auto_fast_link },
    { "zero runs: auto on a link that keeps up, CPU-bound",
      test_zr_auto_fast_link_cpu_bound },
    { "zero runs: a damaged block fails before GO", test_zr_corrupt },
    { "hostile figures in GO are dropped", test_hostile_timing_fields },
    CU_TEST_INFO_NULL,
};

CU_SuiteInfo xm_test_suites[] = {
    { "migexec", NULL, NULL, setup, teardown, migexec_tests },
    CU_SUITE_INFO_NULL,
};
