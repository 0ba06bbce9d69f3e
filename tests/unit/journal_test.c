/*
 * journal_test.c -- migration journal records and their file store:
 * encode/decode round trips, hostile files (corrupt, truncated,
 * oversized, another version), atomic replacement under injected
 * ENOSPC/EIO at every system call, listing; and the recovery table
 * (xm_mig_recover) for every phase of each side against the host
 * states a crash can leave, checking the guest ends running once.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"
#include "xm_err.h"
#include "xm_journal.h"
#include "xm_migrate.h"

static char dir[64];
static struct xm_journal *J;

static struct xm_journal_rec
sample(enum xm_mig_side side, enum xm_jphase phase)
{
    struct xm_journal_rec r;

    memset(&r, 0, sizeof(r));
    snprintf(r.id, sizeof(r.id), "mig-42_a");
    r.side = side;
    snprintf(r.name, sizeof(r.name), "web1");
    for (int i = 0; i < 16; i++)
        r.uuid[i] = (uint8_t)(i * 17);
    snprintf(r.source, sizeof(r.source), "host-a.lab");
    snprintf(r.target, sizeof(r.target), "host-b");
    r.src_domid = 12;
    r.dst_domid = side == XM_MIG_TARGET ? 40 : 0;
    r.phase = phase;
    r.created_s = 1795000000;
    r.updated_s = 1795000042;
    return r;
}

static void
setup(void)
{
    snprintf(dir, sizeof(dir), "/tmp/xm-journal-XXXXXX");
    CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(dir));
    CU_ASSERT_EQUAL_FATAL(xm_journal_new(dir, NULL, &J), XM_OK);
}

static void
teardown(void)
{
    char cmd[128];

    xm_journal_free(J);
    J = NULL;
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    CU_ASSERT_EQUAL(system(cmd), 0);
}

static void
write_file(const char *name, const void *data, size_t len)
{
    char path[160];
    FILE *f;

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    f = fopen(path, "wb");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    CU_ASSERT_EQUAL(fwrite(data, 1, len, f), len);
    fclose(f);
}

static void
test_round_trip(void)
{
    for (int side = XM_MIG_SOURCE; side <= XM_MIG_TARGET; side++) {
        for (int p = XM_JP_SENDING; p <= XM_JP_ABORTED; p++) {
            struct xm_journal_rec r = sample(side, p), back;
            char *text = NULL, err[128];
            int rc = xm_journal_encode(&r, &text);
            bool fits = !(side == XM_MIG_SOURCE &&
                          (p == XM_JP_RECEIVING || p == XM_JP_READY)) &&
                        !(side == XM_MIG_TARGET && p == XM_JP_SENDING);
            if (!fits) {
                CU_ASSERT_EQUAL(rc, XM_ERR_INVAL);
                CU_ASSERT_PTR_NULL(text);
                continue;
            }
            CU_ASSERT_EQUAL_FATAL(rc, XM_OK);
            CU_ASSERT_PTR_NOT_NULL(strstr(text, "\"version\""));
            CU_ASSERT_PTR_NOT_NULL(strstr(text, xm_jphase_name(p)));
            CU_ASSERT_PTR_NOT_NULL(
                strstr(text, "00112233-4455-6677-8899-aabbccddeeff"));
            CU_ASSERT_EQUAL(xm_journal_decode(text, strlen(text), &back,
                                              err, sizeof(err)), XM_OK);
            CU_ASSERT_EQUAL(memcmp(&r, &back, sizeof(r)), 0);
            free(text);
        }
    }
}

static void
test_decode_hostile(void)
{
    static const char *const bad[] = {
        "",
        "[]",
        "{\"version\":1}",
        "{\"version\":1,\"id\":\"a\",\"side\":\"source\",\"name\":\"w\","
        "\"uuid\":\"00112233-4455-6677-8899-aabbccddeeff\",\"source\":\"a\","
        "\"target\":\"b\",\"src_domid\":1,\"dst_domid\":0,\"phase\":\"gone\","
        "\"created\":1,\"updated\":1}",
        "{\"version\":1,\"id\":\"a/../b\",\"side\":\"source\",\"name\":\"w\","
        "\"uuid\":\"00112233-4455-6677-8899-aabbccddeeff\",\"source\":\"a\","
        "\"target\":\"b\",\"src_domid\":1,\"dst_domid\":0,\"phase\":\"go\","
        "\"created\":1,\"updated\":1}",
        "{\"version\":1,\"id\":\"a\",\"side\":\"source\",\"name\":\"w\","
        "\"uuid\":\"00112233-4455-6677-8899-aabbccddeexx\",\"source\":\"a\","
        "\"target\":\"b\",\"src_domid\":1,\"dst_domid\":0,\"phase\":\"go\","
        "\"created\":1,\"updated\":1}",
        "{\"version\":1,\"id\":\"a\",\"side\":\"source\",\"name\":\"w\","
        "\"uuid\":\"00112233-4455-6677-8899-aabbccddeeff\",\"source\":\"a\","
        "\"target\":\"b\",\"src_domid\":99999999999,\"dst_domid\":0,"
        "\"phase\":\"go\",\"created\":1,\"updated\":1}",
        "{\"version\":1,\"id\":\"a\",\"side\":\"source\",\"name\":"
        "\"w--incoming\",\"uuid\":\"00112233-4455-6677-8899-aabbccddeeff\","
        "\"source\":\"a\",\"target\":\"b\",\"src_domid\":1,\"dst_domid\":0,"
        "\"phase\":\"go\",\"created\":5,\"updated\":1}",
    };
    struct xm_journal_rec r = sample(XM_MIG_SOURCE, XM_JP_GO), back;
    char *text = NULL, err[128];

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        CU_ASSERT_EQUAL(xm_journal_decode(bad[i], strlen(bad[i]), &back,
                                          err, sizeof(err)), XM_ERR_INVAL);
        CU_ASSERT(err[0] != '\0');
        CU_ASSERT_EQUAL(back.phase, 0);
    }
    /* every truncation of a good record is refused */
    CU_ASSERT_EQUAL_FATAL(xm_journal_encode(&r, &text), XM_OK);
    size_t len = strlen(text);
    while (len && (text[len - 1] == '\n' || text[len - 1] == ' '))
        len--;
    for (size_t n = 0; n < len; n++)
        CU_ASSERT_NOT_EQUAL(xm_journal_decode(text, n, &back, err,
                                              sizeof(err)), XM_OK);
    /* another version */
    {
        char *v = strstr(text, "\"version\": 1");
        if (!v)
            v = strstr(text, "\"version\":1");
        CU_ASSERT_PTR_NOT_NULL_FATAL(v);
        v[strlen(v) - strlen(strchr(v, '1'))] = '7';
        CU_ASSERT_EQUAL(xm_journal_decode(text, strlen(text), &back, err,
                                          sizeof(err)), XM_ERR_UNSUPPORTED);
    }
    free(text);
    CU_ASSERT_EQUAL(xm_journal_decode("{}", XM_JOURNAL_FILE_MAX + 1, &back,
                                      err, sizeof(err)), XM_ERR_TOOBIG);
}

static void
test_store_put_load_list_remove(void)
{
    struct xm_journal_rec r = sample(XM_MIG_SOURCE, XM_JP_SENDING), back;
    struct xm_journal_rec t = sample(XM_MIG_TARGET, XM_JP_READY);
    struct xm_journal_entry *ents = NULL;
    size_t n = 0;
    char err[256];

    CU_ASSERT_EQUAL(xm_journal_load(J, r.id, XM_MIG_SOURCE, &back, err,
                                    sizeof(err)), XM_ERR_NOTFOUND);
    CU_ASSERT_EQUAL(xm_journal_put(J, &r, err, sizeof(err)), XM_OK);
    r.phase = XM_JP_GO;                 /* replace */
    CU_ASSERT_EQUAL(xm_journal_put(J, &r, err, sizeof(err)), XM_OK);
    CU_ASSERT_EQUAL(xm_journal_put(J, &t, err, sizeof(err)), XM_OK);
    CU_ASSERT_EQUAL(xm_journal_load(J, r.id, XM_MIG_SOURCE, &back, err,
                                    sizeof(err)), XM_OK);
    CU_ASSERT_EQUAL(back.phase, XM_JP_GO);
    CU_ASSERT_EQUAL(memcmp(&back, &r, sizeof(r)), 0);
    /* strays and temporaries are not records */
    write_file(".mig-42_a.source.tmp", "{", 1);
    write_file("notes.txt", "x", 1);
    write_file("a.b.c.json", "x", 1);
    CU_ASSERT_EQUAL(xm_journal_list(J, &ents, &n), XM_OK);
    CU_ASSERT_EQUAL_FATAL(n, 2);
    CU_ASSERT_STRING_EQUAL(ents[0].id, "mig-42_a");
    CU_ASSERT_EQUAL(ents[0].side, XM_MIG_SOURCE);
    CU_ASSERT_EQUAL(ents[1].side, XM_MIG_TARGET);
    free(ents);
    CU_ASSERT_EQUAL(xm_journal_remove(J, r.id, XM_MIG_SOURCE), XM_OK);
    CU_ASSERT_EQUAL(xm_journal_remove(J, r.id, XM_MIG_SOURCE),
                    XM_ERR_NOTFOUND);
    CU_ASSERT_EQUAL(xm_journal_remove(J, "../x", XM_MIG_SOURCE),
                    XM_ERR_INVAL);
    /* a bad record is refused before anything is written */
    r.name[0] = '\0';
    CU_ASSERT_EQUAL(xm_journal_put(J, &r, err, sizeof(err)), XM_ERR_INVAL);
    CU_ASSERT_EQUAL(xm_journal_load(J, r.id, XM_MIG_SOURCE, &back, err,
                                    sizeof(err)), XM_ERR_NOTFOUND);
    {
        struct xm_journal *none = NULL;
        CU_ASSERT_EQUAL(xm_journal_new("/nonexistent-xm-dir", NULL, &none),
                        XM_ERR_NOTFOUND);
        CU_ASSERT_PTR_NULL(none);
    }
}

static void
test_store_hostile_files(void)
{
    struct xm_journal_rec back;
    char err[256], *big;

    write_file("m-1.source.json", "{\"version\":1,\"id\":", 18);
    CU_ASSERT_EQUAL(xm_journal_load(J, "m-1", XM_MIG_SOURCE, &back, err,
                                    sizeof(err)), XM_ERR_INVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "m-1.source.json"));
    write_file("m-2.source.json", "\0\0\0garbage", 10);
    CU_ASSERT_EQUAL(xm_journal_load(J, "m-2", XM_MIG_SOURCE, &back, err,
                                    sizeof(err)), XM_ERR_INVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "m-2.source.json"));
    big = malloc(XM_JOURNAL_FILE_MAX + 100);
    CU_ASSERT_PTR_NOT_NULL_FATAL(big);
    memset(big, ' ', XM_JOURNAL_FILE_MAX + 100);
    write_file("m-3.target.json", big, XM_JOURNAL_FILE_MAX + 100);
    free(big);
    CU_ASSERT_EQUAL(xm_journal_load(J, "m-3", XM_MIG_TARGET, &back, err,
                                    sizeof(err)), XM_ERR_TOOBIG);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "m-3.target.json"));
    /* a valid record filed under another id */
    {
        struct xm_journal_rec r = sample(XM_MIG_SOURCE, XM_JP_GO);
        char *text = NULL;
        CU_ASSERT_EQUAL_FATAL(xm_journal_encode(&r, &text), XM_OK);
        write_file("m-4.source.json", text, strlen(text));
        free(text);
        CU_ASSERT_EQUAL(xm_journal_load(J, "m-4", XM_MIG_SOURCE, &back,
                                        err, sizeof(err)), XM_ERR_INVAL);
        CU_ASSERT_EQUAL(back.phase, 0);
    }
}

/* ---- fault injection under the store ---- */

struct io_fault {
    const char *op;     /* "open", "write", "fsync", "rename", "close" */
    unsigned nth;       /* fail this call of op (1-based) */
    int err;
    unsigned calls;
    bool short_writes;  /* write at most 3 bytes per call */
};

static struct io_fault F;

static bool
io_fail(const char *op)
{
    if (!F.op || strcmp(F.op, op) != 0)
        return false;
    if (++F.calls != F.nth)
        return false;
    errno = F.err;
    return true;
}

static int
f_open(void *ctx, const char *path, int flags, mode_t mode)
{
    return io_fail("open") ? -1 : open(path, flags, mode);
}

static ssize_t
f_write(void *ctx, int fd, const void *buf, size_t len)
{
    if (io_fail("write"))
        return -1;
    return write(fd, buf, F.short_writes && len > 3 ? 3 : len);
}

static int
f_fsync(void *ctx, int fd)
{
    return io_fail("fsync") ? -1 : fsync(fd);
}

static int
f_rename(void *ctx, const char *a, const char *b)
{
    return io_fail("rename") ? -1 : rename(a, b);
}

static int
f_close(void *ctx, int fd)
{
    int r = close(fd);
    return io_fail("close") ? -1 : r;
}

static const struct xm_journal_io fault_io = {
    f_open, f_write, f_fsync, f_rename, f_close, NULL
};

static void
test_atomic_replace_under_faults(void)
{
    static const char *const ops[] = { "open", "write", "fsync", "rename",
                                       "close" };
    struct xm_journal *fj = NULL;
    struct xm_journal_rec r = sample(XM_MIG_SOURCE, XM_JP_SENDING), back;
    struct xm_journal_entry *ents;
    size_t n;
    char err[256];
    unsigned failures = 0;

    CU_ASSERT_EQUAL_FATAL(xm_journal_new(dir, &fault_io, &fj), XM_OK);
    memset(&F, 0, sizeof(F));
    F.short_writes = true;              /* partial writes are resumed */
    CU_ASSERT_EQUAL_FATAL(xm_journal_put(fj, &r, err, sizeof(err)), XM_OK);
    for (size_t o = 0; o < sizeof(ops) / sizeof(ops[0]); o++) {
        for (unsigned k = 1; k <= 2; k++) {
            int rc;
            memset(&F, 0, sizeof(F));
            F.op = ops[o];
            F.nth = k;
            F.err = (k == 1) ? ENOSPC : EIO;
            r.phase = XM_JP_GO;
            rc = xm_journal_put(fj, &r, err, sizeof(err));
            if (F.calls < k || rc == XM_OK) {
                /* not reached, or a close of the directory (whose
                 * failure loses nothing): the new record is there */
                CU_ASSERT_EQUAL(rc, XM_OK);
                CU_ASSERT_EQUAL(xm_journal_load(fj, r.id, XM_MIG_SOURCE,
                                                &back, err, sizeof(err)),
                                XM_OK);
                CU_ASSERT_EQUAL(back.phase, XM_JP_GO);
            } else {
                failures++;
                CU_ASSERT_EQUAL(rc, k == 1 ? XM_ERR_NOSPACE : XM_ERR_IO);
                CU_ASSERT_PTR_NOT_NULL(strstr(err, dir));
                /* the old record is whole, or the new one is */
                CU_ASSERT_EQUAL(xm_journal_load(fj, r.id, XM_MIG_SOURCE,
                                                &back, err, sizeof(err)),
                                XM_OK);
                CU_ASSERT(back.phase == XM_JP_SENDING ||
                          back.phase == XM_JP_GO);
            }
            /* no temporary file lingers after a failed write */
            CU_ASSERT_EQUAL(xm_journal_list(fj, &ents, &n), XM_OK);
            CU_ASSERT_EQUAL(n, 1);
            free(ents);
            /* back to the old phase for the next round */
            memset(&F, 0, sizeof(F));
            r.phase = XM_JP_SENDING;
            CU_ASSERT_EQUAL(xm_journal_put(fj, &r, err, sizeof(err)),
                            XM_OK);
        }
    }
    CU_ASSERT(failures >= 6);
    /* ENOSPC at the first write: the record before is untouched */
    memset(&F, 0, sizeof(F));
    F.op = "write";
    F.nth = 1;
    F.err = ENOSPC;
    r.phase = XM_JP_GO;
    CU_ASSERT_EQUAL(xm_journal_put(fj, &r, err, sizeof(err)),
                    XM_ERR_NOSPACE);
    CU_ASSERT_EQUAL(xm_journal_load(fj, r.id, XM_MIG_SOURCE, &back, err,
                                    sizeof(err)), XM_OK);
    CU_ASSERT_EQUAL(back.phase, XM_JP_SENDING);
    xm_journal_free(fj);
}

/* ---- recovery: every phase, every host state a crash can leave ---- */

enum cst { NONE, RUN, PAU, SUS };

/* NAME, NAME--(away|incoming), and a copy whose name is gone (a destroy
 * cut short) with the domid the journal recorded for this side */
struct host { enum cst home, alt, husk; };

static uint32_t
own_domid(const struct xm_journal_rec *rec)
{
    return rec->side == XM_MIG_SOURCE ? rec->src_domid : rec->dst_domid;
}

static int
running_after(const struct xm_journal_rec *rec, struct host *h,
              const struct xm_mig_action *a, unsigned n, int *adopted_r)
{
    *adopted_r = 0;
    for (unsigned i = 0; i < n; i++) {
        if (a[i].type == XM_MIG_A_ADOPT) {
            (*adopted_r)++;
            CU_ASSERT(a[i].domid == 5 || a[i].domid == 6);
            CU_ASSERT(h->husk == NONE);
        } else if (a[i].type == XM_MIG_A_HV) {
            CU_ASSERT_EQUAL(a[i].op, XM_MIG_OP_DESTROY);
            if (a[i].domid == own_domid(rec)) {
                CU_ASSERT(h->husk != NONE && h->husk != RUN);
                h->husk = NONE;
            } else if (a[i].domid == 5) {
                CU_ASSERT(h->home != RUN);
                h->home = NONE;
            } else {
                CU_ASSERT(h->alt != RUN);
                h->alt = NONE;
            }
        } else {
            CU_ASSERT_EQUAL(a[i].type, XM_MIG_A_JOURNAL);
        }
    }
    return (h->home == RUN) + (h->alt == RUN) + (h->husk == RUN);
}

static void
view(const struct xm_journal_rec *rec, const struct host *h,
     struct xm_mig_dom d[3], char alt[XM_MIG_NAME_BUF],
     struct xm_mig_hostview *hv)
{
    static const enum xm_mig_domstate map[] = {
        0, XM_MIG_DOM_RUNNING, XM_MIG_DOM_PAUSED, XM_MIG_DOM_SUSPENDED
    };

    memset(hv, 0, sizeof(*hv));
    memset(d, 0, 3 * sizeof(d[0]));
    snprintf(alt, XM_MIG_NAME_BUF, "%s%s", rec->name,
             rec->side == XM_MIG_SOURCE ? XM_MIG_SUFFIX_AWAY
                                        : XM_MIG_SUFFIX_IN);
    hv->doms = d;
    if (h->home) {
        d[hv->n].name = rec->name;
        memcpy(d[hv->n].uuid, rec->uuid, 16);
        d[hv->n].domid = 5;
        d[hv->n++].state = map[h->home];
    }
    if (h->alt) {
        d[hv->n].name = alt;
        memcpy(d[hv->n].uuid, rec->uuid, 16);
        d[hv->n].domid = 6;
        d[hv->n++].state = map[h->alt];
    }
    if (h->husk) {
        d[hv->n].name = "";
        memcpy(d[hv->n].uuid, rec->uuid, 16);
        d[hv->n].domid = own_domid(rec);
        d[hv->n++].state = map[h->husk];
    }
}

/* The host states each side can be left in at each phase by a crash,
 * and what recovery must do: 'A' adopt, 'F' final actions, '-' nothing,
 * 'X' refuse (XM_ERR_STATE). */
struct rcase {
    enum xm_mig_side side;
    enum xm_jphase phase;
    struct host h;
    char expect;
    enum xm_mig_state state;    /* for 'A' */
};

static const struct rcase rcases[] = {
    /* source, "sending": GO never left */
    { XM_MIG_SOURCE, XM_JP_SENDING, { RUN, NONE }, 'F', 0 },
    { XM_MIG_SOURCE, XM_JP_SENDING, { SUS, NONE }, 'A', XM_MIG_S_RESUMING },
    { XM_MIG_SOURCE, XM_JP_SENDING, { NONE, SUS }, 'A',
      XM_MIG_S_RENAME_BACK },
    { XM_MIG_SOURCE, XM_JP_SENDING, { NONE, RUN }, 'X', 0 },
    { XM_MIG_SOURCE, XM_JP_SENDING, { NONE, NONE }, 'F', 0 },
    /* source, "go": ask the target */
    { XM_MIG_SOURCE, XM_JP_GO, { NONE, SUS }, 'A', XM_MIG_S_RECONNECT },
    { XM_MIG_SOURCE, XM_JP_GO, { SUS, NONE }, 'A', XM_MIG_S_RESUMING },
    { XM_MIG_SOURCE, XM_JP_GO, { RUN, NONE }, 'F', 0 },
    { XM_MIG_SOURCE, XM_JP_GO, { NONE, NONE }, 'F', 0 },
    { XM_MIG_SOURCE, XM_JP_GO, { NONE, RUN }, 'X', 0 },
    { XM_MIG_SOURCE, XM_JP_GO, { SUS, SUS }, 'X', 0 },
    { XM_MIG_SOURCE, XM_JP_DONE, { NONE, SUS }, 'F', 0 },
    { XM_MIG_SOURCE, XM_JP_DONE, { NONE, NONE }, '-', 0 },
    { XM_MIG_SOURCE, XM_JP_ABORTED, { RUN, NONE }, '-', 0 },
    /* source, our copy's destroy cut short (its name gone): finish it
     * once the guest is the target's; before GO we never destroy it */
    { XM_MIG_SOURCE, XM_JP_SENDING, { NONE, NONE, SUS }, 'X', 0 },
    { XM_MIG_SOURCE, XM_JP_GO, { NONE, NONE, SUS }, 'F', 0 },
    { XM_MIG_SOURCE, XM_JP_GO, { NONE, NONE, RUN }, 'X', 0 },
    { XM_MIG_SOURCE, XM_JP_DONE, { NONE, NONE, SUS }, 'F', 0 },
    { XM_MIG_SOURCE, XM_JP_DONE, { RUN, NONE, PAU }, 'F', 0 },
    /* target */
    { XM_MIG_TARGET, XM_JP_RECEIVING, { NONE, PAU }, 'A',
      XM_MIG_T_DESTROYING },
    { XM_MIG_TARGET, XM_JP_RECEIVING, { NONE, NONE }, 'F', 0 },
    { XM_MIG_TARGET, XM_JP_RECEIVING, { NONE, RUN }, 'X', 0 },
    { XM_MIG_TARGET, XM_JP_READY, { NONE, PAU }, 'A', XM_MIG_T_GRACE },
    { XM_MIG_TARGET, XM_JP_READY, { NONE, NONE }, 'F', 0 },
    { XM_MIG_TARGET, XM_JP_GO, { NONE, PAU }, 'A', XM_MIG_T_RENAMING },
    { XM_MIG_TARGET, XM_JP_GO, { PAU, NONE }, 'A', XM_MIG_T_UNPAUSING },
    { XM_MIG_TARGET, XM_JP_GO, { RUN, NONE }, 'A', XM_MIG_T_JOURNAL_DONE },
    { XM_MIG_TARGET, XM_JP_GO, { NONE, NONE }, 'F', 0 },
    { XM_MIG_TARGET, XM_JP_DONE, { RUN, NONE }, '-', 0 },
    { XM_MIG_TARGET, XM_JP_ABORTED, { NONE, PAU }, 'F', 0 },
    { XM_MIG_TARGET, XM_JP_ABORTED, { NONE, NONE }, '-', 0 },
    /* target, the copy being thrown away lost its name */
    { XM_MIG_TARGET, XM_JP_RECEIVING, { NONE, NONE, PAU }, 'F', 0 },
    { XM_MIG_TARGET, XM_JP_READY, { NONE, NONE, PAU }, 'F', 0 },
    { XM_MIG_TARGET, XM_JP_GO, { NONE, NONE, SUS }, 'F', 0 },
    { XM_MIG_TARGET, XM_JP_ABORTED, { NONE, NONE, PAU }, 'F', 0 },
    { XM_MIG_TARGET, XM_JP_RECEIVING, { NONE, NONE, RUN }, 'X', 0 },
    { XM_MIG_TARGET, XM_JP_DONE, { RUN, NONE, SUS }, '-', 0 },
};

static void
test_recovery_table(void)
{
    for (size_t i = 0; i < sizeof(rcases) / sizeof(rcases[0]); i++) {
        const struct rcase *c = &rcases[i];
        struct xm_journal_rec rec = sample(c->side, c->phase);
        struct xm_mig_dom d[3];
        struct xm_mig_hostview hv;
        struct xm_mig_action a[4], more[XM_MIG_ACTIONS_MAX];
        struct xm_mig m;
        struct host h = c->h;
        char alt[XM_MIG_NAME_BUF];
        unsigned n = 9, k;
        int rc, adopted;

        view(&rec, &h, d, alt, &hv);
        rc = xm_mig_recover(&rec, &hv, a, 4, &n);
        if (c->expect == 'X') {
            CU_ASSERT_EQUAL(rc, XM_ERR_STATE);
            CU_ASSERT_EQUAL(n, 0);
            continue;
        }
        CU_ASSERT_EQUAL_FATAL(rc, XM_OK);
        if (c->expect == '-') {
            CU_ASSERT_EQUAL(n, 0);
            continue;
        }
        CU_ASSERT(n >= 1);
        running_after(&rec, &h, a, n, &adopted);
        if (c->expect == 'F') {
            CU_ASSERT_EQUAL(adopted, 0);
            /* nothing of ours runs on this host in a final case unless
             * it already did; no transient copy is left */
            CU_ASSERT(h.alt == NONE);
            CU_ASSERT(h.husk == NONE);
            continue;
        }
        CU_ASSERT_EQUAL_FATAL(n, 1);
        CU_ASSERT_EQUAL(a[0].type, XM_MIG_A_ADOPT);
        CU_ASSERT_EQUAL(a[0].state, c->state);
        rc = xm_mig_adopt(&m, &rec, NULL, a[0].state, a[0].domid, more,
                          XM_MIG_ACTIONS_MAX, &k);
        CU_ASSERT_EQUAL_FATAL(rc, XM_OK);
        CU_ASSERT(k >= 1);
        CU_ASSERT_EQUAL(m.state, c->state);
        CU_ASSERT_EQUAL(m.after_go, c->phase == XM_JP_GO);
        for (unsigned j = 0; j < k; j++)
            if (more[j].type == XM_MIG_A_HV)
                CU_ASSERT_EQUAL(more[j].domid, a[0].domid);
    }
}

static void
test_recovery_refuses_bad_input(void)
{
    struct xm_journal_rec rec = sample(XM_MIG_SOURCE, XM_JP_GO);
    struct xm_mig_hostview hv = { NULL, 0, 0, false };
    struct xm_mig_action a[4];
    struct xm_mig m;
    unsigned n;

    rec.phase = (enum xm_jphase)99;
    CU_ASSERT_EQUAL(xm_mig_recover(&rec, &hv, a, 4, &n), XM_ERR_INVAL);
    rec.phase = XM_JP_GO;
    CU_ASSERT_EQUAL(xm_mig_recover(&rec, &hv, a, 0, &n), XM_ERR_TOOBIG);
    /* not a state recovery adopts into, or the other side's */
    CU_ASSERT_EQUAL(xm_mig_adopt(&m, &rec, NULL, XM_MIG_S_SENDING, 5, a,
                                 4, &n), XM_ERR_INVAL);
    CU_ASSERT_EQUAL(xm_mig_adopt(&m, &rec, NULL, XM_MIG_T_GRACE, 5, a, 4,
                                 &n), XM_ERR_INVAL);
}

static void
test_status_lookup(void)
{
    struct xm_journal_rec rec = sample(XM_MIG_TARGET, XM_JP_DONE);
    struct xm_mig_dom d[3];
    struct xm_mig_hostview hv;
    struct host h = { RUN, NONE };
    char alt[XM_MIG_NAME_BUF];

    view(&rec, &h, d, alt, &hv);
    /* running here wins, with or without a record */
    CU_ASSERT_EQUAL(xm_mig_peer_status_lookup(NULL, rec.name, rec.uuid,
                                              &hv), XM_MIG_PS_RUNNING);
    h.home = NONE;
    view(&rec, &h, d, alt, &hv);
    CU_ASSERT_EQUAL(xm_mig_peer_status_lookup(&rec, rec.name, rec.uuid,
                                              &hv), XM_MIG_PS_RUNNING);
    CU_ASSERT_EQUAL(xm_mig_peer_status_lookup(NULL, rec.name, rec.uuid,
                                              &hv), XM_MIG_PS_ABSENT);
    rec.phase = XM_JP_READY;
    h.alt = PAU;
    view(&rec, &h, d, alt, &hv);
    CU_ASSERT_EQUAL(xm_mig_peer_status_lookup(&rec, rec.name, rec.uuid,
                                              &hv), XM_MIG_PS_WAITING_GO);
    rec.phase = XM_JP_ABORTED;
    CU_ASSERT_EQUAL(xm_mig_peer_status_lookup(&rec, rec.name, rec.uuid,
                                              &hv), XM_MIG_PS_ABSENT);
    CU_ASSERT_EQUAL(xm_mig_status_event(XM_MIG_PS_ABSENT),
                    XM_MIG_EV_ST_ABSENT);
    CU_ASSERT_EQUAL(xm_mig_status_event(1234), XM_MIG_EV_ST_BUSY);
}

static void
test_offer_check(void)
{
    struct xm_mig_dom d[1] = { { "db", { 0 }, 3, XM_MIG_DOM_RUNNING } };
    struct xm_mig_hostview hv = { d, 1, 8192, false };
    struct xm_mig_offer o = { "web1", 4096, 2 };
    const char *why;

    CU_ASSERT_EQUAL(xm_mig_offer_check(&o, &hv, &why), XM_OK);
    o.mem_kib = 9000;
    CU_ASSERT_EQUAL(xm_mig_offer_check(&o, &hv, &why), XM_ERR_NOMEM);
    CU_ASSERT(why[0] != '\0');
    o.mem_kib = 100;
    hv.cordoned = true;
    CU_ASSERT_EQUAL(xm_mig_offer_check(&o, &hv, &why), XM_ERR_BUSY);
    hv.cordoned = false;
    d[0].name = "web1--incoming";
    CU_ASSERT_EQUAL(xm_mig_offer_check(&o, &hv, &why), XM_ERR_EXISTS);
    d[0].name = "web1";
    CU_ASSERT_EQUAL(xm_mig_offer_check(&o, &hv, &why), XM_ERR_EXISTS);
    o.name = "web1--migratedaway";
    CU_ASSERT_EQUAL(xm_mig_offer_check(&o, &hv, &why), XM_ERR_INVAL);
}

static CU_TestInfo journal_tests[] = {
    { "encode/decode round trip, every side and phase", test_round_trip },
    { "decode hostile text, every truncation", test_decode_hostile },
    { "store: put, replace, load, list, remove",
      test_store_put_load_list_remove },
    { "store: corrupt, truncated, oversized files",
      test_store_hostile_files },
    { "store: ENOSPC/EIO at every system call",
      test_atomic_replace_under_faults },
    CU_TEST_INFO_NULL,
};

static CU_TestInfo recover_tests[] = {
    { "recovery table, every phase and host state", test_recovery_table },
    { "recovery refuses bad input", test_recovery_refuses_bad_input },
    { "status answers without a machine", test_status_lookup },
    { "offer check", test_offer_check },
    CU_TEST_INFO_NULL,
};

CU_SuiteInfo xm_test_suites[] = {
    { "journal", NULL, NULL, setup, teardown, journal_tests },
    { "recover", NULL, NULL, NULL, NULL, recover_tests },
    CU_SUITE_INFO_NULL,
};
