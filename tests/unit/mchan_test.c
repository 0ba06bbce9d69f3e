/*
 * mchan_test.c -- migrations between two real agents over their peer
 * links: loopback TCP with mutual TLS (certificates from the project's
 * xenmaint-pki in a temporary directory), each agent on its own fake
 * hypervisor, in-process xenstore and journal in a temporary state_dir,
 * all in one poll loop.  A guest moves from A to B; then migrations from
 * A to B are aborted at each point of their start (connecting, hellos
 * exchanged and the OFFER just queued, the offer taken by B, the stream
 * running) and another one to B is started at once: B must take its
 * OFFER in bounded time, never sit on a connection until its idle timer
 * (the stall seen on real hosts after a cancelled drain).  An OFFER the
 * source cannot make (the hypervisor refuses the guest's config) fails
 * that migration at once with the reason, and the next try moves.
 * Waits are bounded by the wall clock and fail instead of hanging.
 * MCHAN_LOG=1 in the environment shows both agents' logs.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent.h"
#include "agent_int.h"
#include "harness.h"
#include "hv_fake.h"
#include "loop.h"
#include "peer.h"
#include "xm_err.h"
#include "xm_log.h"
#include "xs_fake.h"

#ifndef XM_PKI_SCRIPT
#error "XM_PKI_SCRIPT must name tools/xenmaint-pki"
#endif

#define MIB 1024ull
#define WAIT_MS 10000           /* well below the peers' 30 s timers */
#define LONG_WAIT_MS 120000     /* migrations' ends (of 32 MiB streams,
                                 * under valgrind too): their connections
                                 * have no idle timer */

struct host {
    const char *name;
    char dir[64];
    struct xs_fake *store;
    struct xm_xs xs;
    struct hv_fake *fake;
    struct xm_hv hv;
    struct xm_config cfg;
    struct peer_link *link;
    struct agent *agent;
};

static char pki[64];
static struct xm_loop *loop;
static struct host host_a, host_b;

/* what A's migrations reported last (by notify) */
static char final_id[XM_MIG_ID_MAX + 1];
static int finals;

static int
suite_init(void)
{
    char cmd[1024];

    xm_log_open("mchan_test", true,
                getenv("MCHAN_LOG") ? XM_LOG_DEBUG : XM_LOG_ERR);
    signal(SIGPIPE, SIG_IGN);   /* as xenmaintd does */
    snprintf(pki, sizeof(pki), "/tmp/xm-mchan-test-XXXXXX");
    if (!mkdtemp(pki))
        return 1;
    snprintf(cmd, sizeof(cmd),
             "sh %s init %s/pool >/dev/null && "
             "sh %s host %s/pool A >/dev/null && "
             "sh %s host %s/pool B >/dev/null",
             XM_PKI_SCRIPT, pki, XM_PKI_SCRIPT, pki, XM_PKI_SCRIPT, pki);
    return system(cmd) == 0 ? 0 : 1;
}

static int
suite_cleanup(void)
{
    char cmd[128];

    snprintf(cmd, sizeof(cmd), "rm -rf %s", pki);
    return system(cmd) == 0 ? 0 : 1;
}

static char *
pki_file(const char *name)
{
    char buf[160];

    snprintf(buf, sizeof(buf), "%s/pool/%s", pki, name);
    return strdup(buf);
}

static void
add_guest(struct host *h, const char *name)
{
    struct xm_domain d;

    memset(&d, 0, sizeof(d));
    snprintf(d.name, sizeof(d.name), "%s", name);
    memcpy(d.uuid, name, strlen(name) < 16 ? strlen(name) : 16);
    d.mem_kib = 64 * MIB;
    d.cur_mem_kib = d.mem_kib;
    d.vcpus = 1;
    snprintf(d.cpupool, sizeof(d.cpupool), "Pool-0");
    CU_ASSERT_EQUAL_FATAL(hv_fake_add_domain(h->fake, &d), XM_OK);
}

/* h's peer link listening on a free port and its agent started over
 * h's store, hypervisor and config (state_dir: the journal read back). */
static void
agent_up(struct host *h, int pid)
{
    struct agent_deps deps;

    CU_ASSERT_EQUAL_FATAL(peer_link_new(&h->cfg, loop, &h->link), XM_OK);
    memset(&deps, 0, sizeof(deps));
    deps.cfg = &h->cfg;
    deps.xs = &h->xs;
    deps.hv = &h->hv;
    deps.clock = &xm_clock_real;
    deps.loop = loop;
    deps.peers = peer_link_ops(h->link);
    deps.pid = pid;
    CU_ASSERT_EQUAL_FATAL(agent_new(&deps, &h->agent), XM_OK);
    peer_link_set_agent(h->link, h->agent);
    CU_ASSERT_EQUAL_FATAL(peer_link_start(h->link), XM_OK);
    CU_ASSERT_FATAL(peer_link_port(h->link) > 0);
    CU_ASSERT_EQUAL_FATAL(agent_start(h->agent), XM_OK);
    CU_ASSERT_PTR_NOT_NULL_FATAL(h->agent->journal);
}

/* Host `name` knowing `peer` at 127.0.0.1:port (port 1 when it never
 * dials it), listening on a free port, its agent started. */
static void
host_start(struct host *h, const char *name, const char *peer, int port)
{
    struct xm_hostinfo hi;
    struct xm_config *cfg = &h->cfg;
    char file[32];

    h->name = name;
    snprintf(h->dir, sizeof(h->dir), "/tmp/xm-mchan-%s.XXXXXX", name);
    CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(h->dir));
    xm_config_init(cfg);
    snprintf(cfg->host_name, sizeof(cfg->host_name), "%s", name);
    snprintf(cfg->listen_address, sizeof(cfg->listen_address),
             "127.0.0.1");
    cfg->listen_port = 0;
    cfg->peers = calloc(1, sizeof(*cfg->peers));
    CU_ASSERT_PTR_NOT_NULL_FATAL(cfg->peers);
    cfg->n_peers = 1;
    snprintf(cfg->peers[0].name, sizeof(cfg->peers[0].name), "%s", peer);
    snprintf(cfg->peers[0].address, sizeof(cfg->peers[0].address),
             "127.0.0.1");
    cfg->peers[0].port = (uint16_t)port;
    cfg->state_dir = strdup(h->dir);
    cfg->tls_ca = pki_file("ca.crt");
    snprintf(file, sizeof(file), "%s.crt", name);
    cfg->tls_cert = pki_file(file);
    snprintf(file, sizeof(file), "%s.key", name);
    cfg->tls_key = pki_file(file);
    snprintf(cfg->compress, sizeof(cfg->compress), "none");

    h->store = xs_fake_new();
    CU_ASSERT_PTR_NOT_NULL_FATAL(h->store);
    CU_ASSERT_EQUAL_FATAL(xs_fake_connect(h->store, 0, &h->xs), XM_OK);
    h->fake = hv_fake_new();
    CU_ASSERT_PTR_NOT_NULL_FATAL(h->fake);
    memset(&hi, 0, sizeof(hi));
    hi.total_kib = 4096 * MIB;
    hi.free_kib = 2048 * MIB;
    hi.nr_cpus = 2;
    snprintf(hi.xen_version, sizeof(hi.xen_version), "4.17.5");
    hv_fake_set_hostinfo(h->fake, &hi);
    CU_ASSERT_EQUAL_FATAL(hv_fake_connect(h->fake, &h->hv), XM_OK);
    {
        /* the fake's streams and completions run in its afterpoll */
        struct xm_loop_source hs = {
            h->hv.ops->beforepoll, h->hv.ops->afterpoll, h->hv.ctx
        };
        CU_ASSERT_EQUAL_FATAL(xm_loop_add_source(loop, &hs), XM_OK);
    }
    agent_up(h, 4242);
}

/* h's agent dies as a killed process would (nothing journaled, its
 * connections cut) and a new one starts on the same state_dir, store
 * and hypervisor: the journal's recovery runs. */
static void
host_agent_restart(struct host *h)
{
    agent_stop(h->agent);
    agent_free(h->agent);
    peer_link_free(h->link);
    h->agent = NULL;
    h->link = NULL;
    agent_up(h, 4243);
}

static void
host_stop(struct host *h)
{
    char cmd[128];

    if (!h->name)
        return;
    if (h->agent)
        agent_stop(h->agent);
    peer_link_shutdown(h->link);
    agent_free(h->agent);
    peer_link_free(h->link);
    if (h->hv.ops)
        xm_hv_close(&h->hv);
    hv_fake_free(h->fake);
    if (h->xs.ops)
        xm_xs_close(&h->xs);
    xs_fake_free(h->store);
    xm_config_dispose(&h->cfg);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", h->dir);
    CU_ASSERT_EQUAL(system(cmd), 0);
    memset(h, 0, sizeof(*h));
}

static void
setup(void)
{
    loop = xm_loop_new(&xm_clock_real);
    memset(&host_a, 0, sizeof(host_a));
    memset(&host_b, 0, sizeof(host_b));
    final_id[0] = '\0';
    finals = 0;
    host_start(&host_b, "B", "A", 1);
    host_start(&host_a, "A", "B", peer_link_port(host_b.link));
}

static void
teardown(void)
{
    host_stop(&host_a);
    host_stop(&host_b);
    xm_loop_free(loop);
    loop = NULL;
}

/* ---- helpers ---- */

static void
on_note(void *arg, struct mig *m, bool final)
{
    (void)arg;
    if (!final)
        return;
    finals++;
    snprintf(final_id, sizeof(final_id), "%s", m->ident.id);
}

static struct mig *
start(const char *guest, const char *id)
{
    const struct xm_domain *d = hv_fake_find(host_a.fake, guest);
    struct xm_domain copy;
    struct mig *m = NULL;

    CU_ASSERT_PTR_NOT_NULL_FATAL(d);
    copy = *d;
    CU_ASSERT_EQUAL_FATAL(mig_start_source(host_a.agent, &copy, "B", id, 0,
                                           "none", on_note, NULL, &m),
                          XM_OK);
    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    return m;
}

/* A's source migration id, while it is not reaped (or NULL). */
static struct mig *
src(const char *id)
{
    return mig_find(host_a.agent, id, XM_MIG_SOURCE);
}

static enum xm_mig_state
src_state(const char *id)
{
    struct mig *m = src(id);

    return m && m->x ? migexec_machine(m->x)->state : XM_MIG_S_IDLE;
}

/* B has taken the OFFER of id: its target exists or has ended. */
static bool
b_took(const char *id)
{
    struct agent *b = host_b.agent;

    if (mig_find(b, id, XM_MIG_TARGET))
        return true;
    for (unsigned i = 0; i < b->n_past && i < MIG_PAST_MAX; i++)
        if (!b->past[i].source && strcmp(b->past[i].id, id) == 0)
            return true;
    return false;
}

typedef bool cond_fn(const char *id);

/* Run the loop until cond(id) or ms of wall clock: cond's value. */
static bool
run_until_ms(cond_fn *cond, const char *id, int64_t ms)
{
    int64_t end = xm_clock_mono_ms(&xm_clock_real) + ms;

    while (!cond(id)) {
        if (xm_clock_mono_ms(&xm_clock_real) > end)
            return false;
        CU_ASSERT_EQUAL_FATAL(xm_loop_run_once(loop, 20, NULL), XM_OK);
    }
    return true;
}

static bool
run_until(cond_fn *cond, const char *id)
{
    return run_until_ms(cond, id, WAIT_MS);
}

static bool
is_offered(const char *id)
{
    return src_state(id) == XM_MIG_S_OFFERED;
}

static bool
is_sending(const char *id)
{
    return src_state(id) == XM_MIG_S_SENDING && b_took(id);
}

/* A's migration id ended (reported final and was reaped). */
static bool
is_gone(const char *id)
{
    return !src(id) && !mig_find(host_b.agent, id, XM_MIG_TARGET);
}

static bool
ended_here(const char *id)
{
    return !src(id) && strcmp(final_id, id) == 0;
}

/* ---- tests ---- */

/* The baseline: a guest moves from A to B over the real link. */
static void
test_move(void)
{
    add_guest(&host_a, "g1");
    start("g1", "m1");
    CU_ASSERT_FATAL(run_until(ended_here, "m1"));
    CU_ASSERT_TRUE(b_took("m1"));
    CU_ASSERT_STRING_EQUAL(host_a.agent->past[0].state, "done");
    CU_ASSERT_PTR_NULL(hv_fake_find(host_a.fake, "g1"));
    CU_ASSERT_TRUE(run_until(is_gone, "m1"));
    CU_ASSERT_PTR_NOT_NULL(hv_fake_find(host_b.fake, "g1"));
}

/* A move ends with each side closing its link once it expects nothing
 * more: no warning about it in either agent's log (the source logged
 * "peer B: connection closed" after every migration). */
static void
test_move_ends_quietly(void)
{
    char path[] = "/tmp/xm-mchan-log-XXXXXX", buf[4096];
    int fd = mkstemp(path), saved = dup(2);
    ssize_t n;

    CU_ASSERT_FATAL(fd >= 0 && saved >= 0);
    add_guest(&host_a, "g1");
    add_guest(&host_a, "g2");
    fflush(stderr);
    CU_ASSERT_FATAL(dup2(fd, 2) == 2);
    xm_log_open("mchan_test", true, XM_LOG_WARN);
    start("g1", "q1");
    CU_ASSERT(run_until(ended_here, "q1"));
    CU_ASSERT(run_until(is_gone, "q1"));
    start("g2", "q2");
    CU_ASSERT(run_until(ended_here, "q2"));
    CU_ASSERT(run_until(is_gone, "q2"));
    for (int i = 0; i < 50; i++)        /* the last closes arrive */
        CU_ASSERT_EQUAL_FATAL(xm_loop_run_once(loop, 10, NULL), XM_OK);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    xm_log_open("mchan_test", true,
                getenv("MCHAN_LOG") ? XM_LOG_DEBUG : XM_LOG_ERR);
    n = pread(fd, buf, sizeof(buf) - 1, 0);
    close(fd);
    unlink(path);
    buf[n > 0 ? n : 0] = '\0';
    if (strstr(buf, "connection closed"))
        fprintf(stderr, "\n%s", buf);
    CU_ASSERT_PTR_NULL(strstr(buf, "connection closed"));
    CU_ASSERT_PTR_NOT_NULL(hv_fake_find(host_b.fake, "g1"));
    CU_ASSERT_PTR_NOT_NULL(hv_fake_find(host_b.fake, "g2"));
}

static enum xm_mig_state
dst_state(const char *id)
{
    struct mig *m = mig_find(host_b.agent, id, XM_MIG_TARGET);

    return m && m->x && !m->final ? migexec_machine(m->x)->state
                                  : XM_MIG_T_IDLE;
}

/* B's copy of g1 is gone and its migration c1 ended (aborted). */
static bool
b_dropped_it(const char *id)
{
    return !hv_fake_find(host_b.fake, "g1--incoming") &&
           !mig_find(host_b.agent, id, XM_MIG_TARGET);
}

/* A's agent dies after B sent READY, before A sent GO: the restarted
 * agent resumes g1 here (GO never left: its journal says "sending") and
 * cancels the migration at B (MIGRATE_CANCEL), which throws its paused
 * g1--incoming away at once instead of holding it for its grace time
 * (10 minutes). */
static void
test_restarted_source_cancels(void)
{
    const struct xm_domain *d;
    int turns = 0;

    add_guest(&host_a, "g1");
    start("g1", "c1");
    /* B sends READY in one turn; A reads it in a later one */
    while (dst_state("c1") != XM_MIG_T_WAIT_GO && turns++ < 20000)
        CU_ASSERT_EQUAL_FATAL(xm_loop_run_once(loop, 20, NULL), XM_OK);
    CU_ASSERT_EQUAL_FATAL(dst_state("c1"), XM_MIG_T_WAIT_GO);
    CU_ASSERT_EQUAL_FATAL(src_state("c1"), XM_MIG_S_WAIT_READY);
    host_agent_restart(&host_a);
    CU_ASSERT_TRUE(run_until(b_dropped_it, "c1"));
    CU_ASSERT_STRING_EQUAL(host_b.agent->past[0].id, "c1");
    CU_ASSERT_STRING_EQUAL(host_b.agent->past[0].state, "stayed");
    CU_ASSERT_PTR_NOT_NULL(strstr(host_b.agent->past[0].why,
                                  "A cancelled it before GO: the source's "
                                  "agent restarted"));
    d = hv_fake_find(host_a.fake, "g1");
    CU_ASSERT_PTR_NOT_NULL_FATAL(d);
    for (int i = 0; i < 2000 && hv_fake_suspended(host_a.fake, d->domid);
         i++)
        CU_ASSERT_EQUAL_FATAL(xm_loop_run_once(loop, 10, NULL), XM_OK);
    d = hv_fake_find(host_a.fake, "g1");
    CU_ASSERT_FALSE(d && hv_fake_suspended(host_a.fake, d->domid));
    CU_ASSERT_PTR_NULL(hv_fake_find(host_b.fake, "g1"));
    for (int i = 0; i < 20; i++)    /* A hears B's answer (logged) */
        CU_ASSERT_EQUAL_FATAL(xm_loop_run_once(loop, 10, NULL), XM_OK);
}

/* A's agent dies while destroying its copy of a guest that moved:
 * libxl had removed the copy's xenstore entries, not yet the domain (a
 * domain "(null)" in xl list, holding its memory).  The restarted agent
 * lists the host all the same and finishes the destroy, whether the
 * journal still said "go" (the destroy comes before DONE is written) or
 * already "done". */
static void
husk_after_move(enum xm_jphase phase, const char *id)
{
    struct xm_journal_rec rec;
    struct xm_domain husk;
    char err[128];

    add_guest(&host_a, "g1");
    husk = *hv_fake_find(host_a.fake, "g1");
    start("g1", id);
    CU_ASSERT_FATAL(run_until(ended_here, id));
    CU_ASSERT_STRING_EQUAL(host_a.agent->past[0].state, "done");
    CU_ASSERT_PTR_NULL(hv_fake_find_domid(host_a.fake, husk.domid));
    /* the copy as the cut-short destroy left it */
    husk.name[0] = '\0';
    husk.flags = XM_DOM_NAMELESS | XM_DOM_NOMIGRATE | XM_DOM_DYING |
                 XM_DOM_PAUSED;
    CU_ASSERT_EQUAL_FATAL(hv_fake_add_domain(host_a.fake, &husk), XM_OK);
    CU_ASSERT_EQUAL_FATAL(xm_journal_load(host_a.agent->journal, id,
                                          XM_MIG_SOURCE, &rec, err,
                                          sizeof(err)), XM_OK);
    CU_ASSERT_EQUAL(rec.phase, XM_JP_DONE);
    CU_ASSERT_EQUAL(rec.src_domid, husk.domid);
    rec.phase = phase;
    CU_ASSERT_EQUAL_FATAL(xm_journal_put(host_a.agent->journal, &rec, err,
                                         sizeof(err)), XM_OK);
    host_agent_restart(&host_a);
    CU_ASSERT_PTR_NULL(hv_fake_find_domid(host_a.fake, husk.domid));
    CU_ASSERT_EQUAL_FATAL(xm_journal_load(host_a.agent->journal, id,
                                          XM_MIG_SOURCE, &rec, err,
                                          sizeof(err)), XM_OK);
    CU_ASSERT_EQUAL(rec.phase, XM_JP_DONE);
    CU_ASSERT_PTR_NOT_NULL(hv_fake_find(host_b.fake, "g1"));
    CU_ASSERT_PTR_NULL(hv_fake_find(host_a.fake, "g1"));
}

static void
test_husk_in_go(void)
{
    husk_after_move(XM_JP_GO, "h1");
}

static void
test_husk_in_done(void)
{
    husk_after_move(XM_JP_DONE, "h2");
}

static int told_rc = -1;
static char told_status[16];

static void
on_told(void *arg, const struct agent_peer_status *st, unsigned n)
{
    const char *s = NULL;

    (void)arg;
    told_rc = n == 1 ? st[0].rc : XM_ERR_PROTO;
    told_status[0] = '\0';
    if (n == 1 && !st[0].rc && st[0].status &&
        xm_json_get_str(st[0].status, "status", &s) == XM_OK)
        snprintf(told_status, sizeof(told_status), "%s", s);
}

static bool
told(const char *id)
{
    (void)id;
    return told_rc != -1;
}

/* A CANCEL for a migration B does not hold (unknown, or not from that
 * source), or one that is malformed: answered from B's journal and
 * host, nothing touched; a malformed one is refused. */
static void
test_cancel_unknown(void)
{
    struct agent_peers *p = &host_a.agent->d.peers;
    static const char unknown[] = "{\"id\":\"x9\",\"name\":\"g1\","
        "\"uuid\":\"00112233445566778899aabbccddeeff\",\"why\":\"t\"}";
    static const char bad[] = "{\"id\":\"x9\",\"name\":\"../g1\"}";

    add_guest(&host_b, "g1");
    told_rc = -1;
    CU_ASSERT_EQUAL_FATAL(p->ops->ask(p->ctx, "B", XM_MSG_MIGRATE_CANCEL,
                                      unknown, sizeof(unknown) - 1,
                                      XM_MSG_MIGRATE_STATUS, on_told, NULL),
                          XM_OK);
    CU_ASSERT_FATAL(run_until(told, NULL));
    CU_ASSERT_EQUAL(told_rc, XM_OK);
    CU_ASSERT_STRING_EQUAL(told_status, "absent");
    CU_ASSERT_PTR_NOT_NULL(hv_fake_find(host_b.fake, "g1"));
    told_rc = -1;
    CU_ASSERT_EQUAL_FATAL(p->ops->ask(p->ctx, "B", XM_MSG_MIGRATE_CANCEL,
                                      bad, sizeof(bad) - 1,
                                      XM_MSG_MIGRATE_STATUS, on_told, NULL),
                          XM_OK);
    CU_ASSERT_FATAL(run_until(told, NULL));
    CU_ASSERT_NOT_EQUAL(told_rc, XM_OK);
    CU_ASSERT_PTR_NOT_NULL(hv_fake_find(host_b.fake, "g1"));
}

enum abort_point {
    AT_START,           /* connect under way */
    AT_TURNS,           /* after a few loop turns (TCP, TLS) */
    AT_OFFERED,         /* hellos exchanged, OFFER just queued */
    AT_TAKEN,           /* B took the offer */
    AT_SENDING,         /* the stream runs */
};

/* Abort a migration of `guest` at `at`, then start one of `next` to B
 * at once: B takes its offer well within the peers' timers. */
static void
abort_then_next(enum abort_point at, unsigned turns, const char *guest,
                const char *id, const char *next, const char *next_id)
{
    struct mig *m = start(guest, id);

    switch (at) {
    case AT_START:
        break;
    case AT_TURNS:
        for (unsigned i = 0; i < turns; i++)
            CU_ASSERT_EQUAL_FATAL(xm_loop_run_once(loop, 20, NULL), XM_OK);
        break;
    case AT_OFFERED:
        CU_ASSERT_FATAL(run_until(is_offered, id));
        break;
    case AT_TAKEN:
        CU_ASSERT_FATAL(run_until(b_took, id));
        break;
    case AT_SENDING:
        CU_ASSERT_FATAL(run_until(is_sending, id));
        break;
    }
    m = src(id);
    if (m && !m->final)
        CU_ASSERT_EQUAL(mig_abort(m, "cancelled by the test"), XM_OK);
    start(next, next_id);
    if (!run_until(b_took, next_id)) {
        fprintf(stderr, "\n%s (after %s aborted at %d/%u): B did not take "
                "the offer; A's state %s\n", next_id, id, (int)at, turns,
                xm_mig_state_name(src_state(next_id)));
        CU_FAIL("B did not take the next offer in time");
    }
}

static void
test_abort_then_next(void)
{
    static const struct { enum abort_point at; unsigned turns; } pts[] = {
        { AT_START, 0 }, { AT_TURNS, 1 }, { AT_TURNS, 2 }, { AT_TURNS, 3 },
        { AT_TURNS, 4 }, { AT_TURNS, 6 }, { AT_OFFERED, 0 },
        { AT_TAKEN, 0 }, { AT_SENDING, 0 },
    };
    const unsigned n = sizeof(pts) / sizeof(pts[0]);
    char guest[16], id[16], next[16], next_id[16];

    CU_ASSERT_EQUAL_FATAL(hv_fake_stream_zeros(host_a.fake, 8u << 20),
                          XM_OK);
    for (unsigned i = 0; i <= n; i++) {
        snprintf(guest, sizeof(guest), "g%u", i);
        add_guest(&host_a, guest);
    }
    for (unsigned i = 0; i < n; i++) {
        snprintf(guest, sizeof(guest), "g%u", i);
        snprintf(id, sizeof(id), "a%u", i);
        snprintf(next, sizeof(next), "g%u", i + 1);
        snprintf(next_id, sizeof(next_id), "n%u", i);
        abort_then_next(pts[i].at, pts[i].turns, guest, id, next, next_id);
        /* let both end before the next round: the next one is aborted
         * too, once B took it */
        if (src(next_id) && !src(next_id)->final)
            mig_abort(src(next_id), "cancelled by the test");
        CU_ASSERT(run_until(is_gone, id));
        CU_ASSERT(run_until(is_gone, next_id));
    }
    /* and the link still moves a guest */
    start("g0", "last");
    CU_ASSERT_FATAL(run_until(ended_here, "last"));
    CU_ASSERT_PTR_NULL(hv_fake_find(host_a.fake, "g0"));
}

/* The OFFER cannot be made (the hypervisor fails to give the guest's
 * config, as libxl may right after a cancelled move): A says why and
 * fails at once, guest untouched, instead of leaving B a connection
 * that carries nothing until the 30 s timers; the next try moves. */
static void
test_offer_not_made(void)
{
    add_guest(&host_a, "g1");
    CU_ASSERT_EQUAL_FATAL(fault_arm(hv_fake_fault(host_a.fake),
                                    "domain_config", 1, XM_ERR_HV), 0);
    start("g1", "m1");
    CU_ASSERT_FATAL(run_until(ended_here, "m1"));
    CU_ASSERT_FALSE(b_took("m1"));
    CU_ASSERT_STRING_EQUAL(host_a.agent->past[0].state, "stayed");
    CU_ASSERT_PTR_NOT_NULL(strstr(host_a.agent->past[0].why, "offer"));
    CU_ASSERT_PTR_NOT_NULL(hv_fake_find(host_a.fake, "g1"));
    start("g1", "m1-r");
    CU_ASSERT_FATAL(run_until(ended_here, "m1-r"));
    CU_ASSERT_STRING_EQUAL(host_a.agent->past[1].state, "done");
    CU_ASSERT_PTR_NOT_NULL(hv_fake_find(host_b.fake, "g1"));
}

/* libxl's bytes A's migration id has read so far (0 once it ended). */
static uint64_t
bytes_of(const char *id)
{
    struct mig *m = src(id);

    return m && m->x && !m->final ? migexec_bytes(m->x) : 0;
}

static bool
both_sending(const char *id)
{
    (void)id;
    return is_sending("d1") && is_sending("d2");
}

/* Guests g1 and g2 on A, 32 MiB streams each, both sending to B (as
 * d1 and d2). */
static void
two_sending(void)
{
    CU_ASSERT_EQUAL_FATAL(hv_fake_stream_zeros(host_a.fake, 32u << 20),
                          XM_OK);
    add_guest(&host_a, "g1");
    add_guest(&host_a, "g2");
    start("g1", "d1");
    start("g2", "d2");
    CU_ASSERT_FATAL(run_until_ms(both_sending, NULL, LONG_WAIT_MS));
}

/* Two guests stream at once; once libxc says d1's guest is down, d2's
 * stream stops (not a byte more read of libxl's) until d1's guest runs
 * on B (or MIG_DOWN_FIRST_MS passed: checked only before that, as under
 * valgrind it may), then goes on: both move, one copy each.  A third
 * started while d1's guest is down is held from its start. */
static void
test_down_first(void)
{
    int64_t t0;
    uint64_t b2;
    int turns = 0;

    CU_ASSERT_EQUAL_FATAL(hv_fake_stream_zeros(host_a.fake, 32u << 20),
                          XM_OK);
    add_guest(&host_a, "g1");
    add_guest(&host_a, "g2");
    add_guest(&host_a, "g3");
    start("g1", "d1");
    start("g2", "d2");
    CU_ASSERT_FATAL(run_until_ms(both_sending, NULL, LONG_WAIT_MS));
    CU_ASSERT_EQUAL(host_a.agent->n_held, 0);
    t0 = xm_clock_mono_ms(&xm_clock_real);
    migexec_note_suspended(src("d1")->x, t0);
    CU_ASSERT_EQUAL(host_a.agent->n_held, 1);
    start("g3", "d3");
    CU_ASSERT_EQUAL(host_a.agent->n_held, 2);
    b2 = bytes_of("d2");
    CU_ASSERT_TRUE(b2 < (32u << 20));
    while (src("d1") && !src("d1")->final && turns++ < 20000) {
        CU_ASSERT_EQUAL_FATAL(xm_loop_run_once(loop, 20, NULL), XM_OK);
        if (xm_clock_mono_ms(&xm_clock_real) - t0 >= MIG_DOWN_FIRST_MS - 500)
            continue;           /* (the cap may have passed by the end) */
        CU_ASSERT_EQUAL(bytes_of("d2"), b2);
        CU_ASSERT_EQUAL(bytes_of("d3"), 0);
    }
    CU_ASSERT_PTR_NULL_FATAL(hv_fake_find(host_a.fake, "g1"));
    CU_ASSERT_EQUAL(host_a.agent->n_held, 0);
    CU_ASSERT_TRUE(run_until_ms(is_gone, "d2", LONG_WAIT_MS));
    CU_ASSERT_TRUE(run_until_ms(is_gone, "d3", LONG_WAIT_MS));
    for (unsigned i = 1; i <= 3; i++) {
        char g[4] = { 'g', (char)('0' + i), 0 };
        CU_ASSERT_PTR_NULL(hv_fake_find(host_a.fake, g));
        CU_ASSERT_PTR_NOT_NULL(hv_fake_find(host_b.fake, g));
    }
}

/* B has run again a guest it received: it resumes there. */
static bool
b_resuming(const char *id)
{
    (void)id;
    return host_b.agent->resume_until > 0;
}

/* B's resume is over and B holds nothing. */
static bool
b_released(const char *id)
{
    (void)id;
    return xm_clock_mono_ms(&xm_clock_real) >= host_b.agent->resume_until &&
           host_b.agent->n_held == 0;
}

/* Once d1's guest runs on B, B holds the stream it receives for d2 for
 * MIG_RESUME_GRACE_MS, while that guest resumes (checked only within
 * it, as under valgrind it may pass), then lets it go on: both move,
 * one copy each. */
static void
test_resume_holds(void)
{
    const struct mig *t1;
    int64_t now;

    two_sending();
    CU_ASSERT_EQUAL(host_b.agent->resume_until, 0);
    migexec_note_suspended(src("d1")->x, xm_clock_mono_ms(&xm_clock_real));
    CU_ASSERT_FATAL(run_until_ms(b_resuming, NULL, LONG_WAIT_MS));
    now = xm_clock_mono_ms(&xm_clock_real);
    CU_ASSERT_PTR_NOT_NULL(hv_fake_find(host_b.fake, "g1"));
    CU_ASSERT_TRUE(host_b.agent->resume_until - now <= MIG_RESUME_GRACE_MS);
    CU_ASSERT_PTR_NOT_NULL(mig_find(host_b.agent, "d2", XM_MIG_TARGET));
    t1 = mig_find(host_b.agent, "d1", XM_MIG_TARGET);
    if (t1 && t1->x && !t1->final)
        CU_ASSERT_EQUAL(host_b.agent->resume_until,
                        migexec_unpaused_at(t1->x) + MIG_RESUME_GRACE_MS);
    if (now < host_b.agent->resume_until) {
        CU_ASSERT_TRUE(host_b.agent->guest_down);
        CU_ASSERT_EQUAL(host_b.agent->n_held, 1);
    }
    CU_ASSERT_TRUE(run_until(b_released, NULL));
    CU_ASSERT_FALSE(host_b.agent->guest_down);
    CU_ASSERT_TRUE(run_until_ms(is_gone, "d2", LONG_WAIT_MS));
    CU_ASSERT_PTR_NULL(hv_fake_find(host_a.fake, "g1"));
    CU_ASSERT_PTR_NULL(hv_fake_find(host_a.fake, "g2"));
    CU_ASSERT_PTR_NOT_NULL(hv_fake_find(host_b.fake, "g1"));
    CU_ASSERT_PTR_NOT_NULL(hv_fake_find(host_b.fake, "g2"));
}

/* A guest down for longer than MIG_DOWN_FIRST_MS holds nothing; nor is
 * a stream whose own guest is down ever held. */
static void
test_down_too_long(void)
{
    int64_t now;

    two_sending();
    now = xm_clock_mono_ms(&xm_clock_real);
    migexec_note_suspended(src("d1")->x, now - MIG_DOWN_FIRST_MS - 1);
    CU_ASSERT_EQUAL(host_a.agent->n_held, 0);
    migexec_note_suspended(src("d2")->x, now);
    CU_ASSERT_EQUAL(host_a.agent->n_held, 0);   /* d1 is down itself */
    CU_ASSERT_TRUE(run_until_ms(is_gone, "d1", LONG_WAIT_MS));
    CU_ASSERT_TRUE(run_until_ms(is_gone, "d2", LONG_WAIT_MS));
    CU_ASSERT_PTR_NOT_NULL(hv_fake_find(host_b.fake, "g1"));
    CU_ASSERT_PTR_NOT_NULL(hv_fake_find(host_b.fake, "g2"));
}

static CU_TestInfo mchan_tests[] = {
    { "a guest moves over the real link", test_move },
    { "a move's end is not warned of", test_move_ends_quietly },
    { "an aborted migration holds up no next one",
      test_abort_then_next },
    { "an offer that cannot be made fails at once", test_offer_not_made },
    { "a guest that is down holds the other streams", test_down_first },
    { "a guest that resumes on its target holds the streams there",
      test_resume_holds },
    { "a restarted source cancels at its target",
      test_restarted_source_cancels },
    { "a cancel B cannot match is answered, harmless",
      test_cancel_unknown },
    { "a guest down too long holds nothing", test_down_too_long },
    { "a copy whose destroy was cut short (go): destroyed at restart",
      test_husk_in_go },
    { "a copy whose destroy was cut short (done): destroyed at restart",
      test_husk_in_done },
    CU_TEST_INFO_NULL,
};

CU_SuiteInfo xm_test_suites[] = {
    { "mchan", suite_init, suite_cleanup, setup, teardown, mchan_tests },
    CU_SUITE_INFO_NULL,
};
