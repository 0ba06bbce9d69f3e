/*
 * agent_test.c -- xenmaintd's request handling against the doubles: the
 * in-process xenstore (with a guest connection to check permissions),
 * the fake hypervisor, a fake peer transport and a fake clock.  Covers
 * start-up order, status, the drain plan, refusals of malformed
 * requests, fault injection in the hypervisor and xenstore, and the
 * cleanup of finished jobs.  A second suite, with a temporary state_dir,
 * covers --shutdown-blocked (the guests that cannot move are shut down,
 * their configs kept, and the undrain starts them again) and the second
 * try of a migration that failed before its stream began.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent.h"
#include "migexec.h"
#include "clock_fake.h"
#include "harness.h"
#include "hv_fake.h"
#include "loop.h"
#include "xm_err.h"
#include "xm_json.h"
#include "xm_log.h"
#include "xm_xs_big.h"
#include "xs_fake.h"

#define MIB 1024ull

/* ---- a fake peer transport: answers when the test says so ---- */

struct fake_peers {
    unsigned queries;
    const char *names[8];
    unsigned n;
    agent_peer_status_fn *done;
    void *arg;
    const char *b_status;       /* JSON B answers, or NULL: unreachable */
};

static int
fake_query(void *ctx, const char *const *names, unsigned n,
           agent_peer_status_fn *done, void *arg)
{
    struct fake_peers *p = ctx;

    p->queries++;
    p->n = n < 8 ? n : 8;
    for (unsigned i = 0; i < p->n; i++)
        p->names[i] = names[i];
    p->done = done;
    p->arg = arg;
    return XM_OK;
}

/* Migration channels to a peer that never answers: connect fails. */
static unsigned chans_opened;

static int
fake_chan_send(void *ctx, uint16_t type, uint16_t flags, const void *payload,
               size_t len)
{
    (void)ctx, (void)type, (void)flags, (void)payload, (void)len;
    return XM_ERR_IO;
}

static size_t
fake_chan_pending(void *ctx)
{
    (void)ctx;
    return 0;
}

static void
fake_chan_rx_pause(void *ctx, bool pause)
{
    (void)ctx, (void)pause;
}

static int
fake_chan_connect(void *ctx)
{
    (void)ctx;
    return XM_ERR_IO;
}

static const struct migexec_chan_ops fake_chan_ops = {
    fake_chan_send, NULL, fake_chan_pending, fake_chan_rx_pause,
    fake_chan_connect,
};

static int
fake_chan_open(void *ctx, const char *peer, struct agent_conn *conn,
               const struct agent_chan_cb *cb, void *arg,
               struct migexec_chan *chan_r)
{
    (void)ctx, (void)peer, (void)conn, (void)cb, (void)arg;
    chans_opened++;
    chan_r->ops = &fake_chan_ops;
    chan_r->ctx = NULL;
    return XM_OK;
}

static void
fake_chan_close(void *ctx, void *chan)
{
    (void)ctx, (void)chan;
}

static const struct agent_peer_ops fake_peer_ops = {
    .query_status = fake_query,
    .chan_open = fake_chan_open,
    .chan_close = fake_chan_close,
};

/* ---- fixture ---- */

static struct xs_fake *store;
static struct xm_xs xs_agent, xs_client, xs_guest;
static struct hv_fake *hv;
static struct xm_hv hv_conn;
static struct clock_fake clk;
static struct xm_clock clock;
static struct xm_loop *loop;
static struct xm_config cfg;
static struct fake_peers peers;
static struct agent *agent;
static char last_write[XM_XS_PATH_MAX];
static char dir[64];            /* the stop suite's state_dir */

static void
on_write(void *arg, const char *path, const char *value, size_t len)
{
    (void)arg;
    (void)value;
    (void)len;
    snprintf(last_write, sizeof(last_write), "%s", path);
}

static void
add_guest(const char *name, uint64_t mem_kib, unsigned flags)
{
    struct xm_domain d;

    memset(&d, 0, sizeof(d));
    snprintf(d.name, sizeof(d.name), "%s", name);
    memcpy(d.uuid, name, strlen(name) < 16 ? strlen(name) : 16);
    d.mem_kib = mem_kib;
    d.cur_mem_kib = mem_kib;
    d.vcpus = 1;
    snprintf(d.cpupool, sizeof(d.cpupool), "Pool-0");
    d.flags = flags;
    CU_ASSERT_EQUAL_FATAL(hv_fake_add_domain(hv, &d), XM_OK);
}

static void
setup_in(const char *state_dir)
{
    struct xm_hostinfo hi;
    struct agent_deps deps;
    char err[128], conf[512];
    int len;

    len = snprintf(conf, sizeof(conf),
                   "host_name = \"A\"\n"
                   "peers = [ \"B=192.0.2.2:7474\", \"C=192.0.2.3:7474\" ]\n"
                   "state_dir = \"%s\"\n"
                   "jobs_kept = 2\n", state_dir);
    CU_ASSERT_FATAL(len > 0 && (size_t)len < sizeof(conf));

    xm_log_open("agent_test", true, XM_LOG_ERR);
    memset(&peers, 0, sizeof(peers));
    chans_opened = 0;
    last_write[0] = '\0';
    store = xs_fake_new();
    CU_ASSERT_PTR_NOT_NULL_FATAL(store);
    CU_ASSERT_EQUAL_FATAL(xs_fake_connect(store, 0, &xs_agent), XM_OK);
    CU_ASSERT_EQUAL_FATAL(xs_fake_connect(store, 0, &xs_client), XM_OK);
    CU_ASSERT_EQUAL_FATAL(xs_fake_connect(store, 5, &xs_guest), XM_OK);
    xs_fake_on_write(store, on_write, NULL);

    hv = hv_fake_new();
    CU_ASSERT_PTR_NOT_NULL_FATAL(hv);
    memset(&hi, 0, sizeof(hi));
    hi.total_kib = 4096 * MIB;
    hi.free_kib = 2048 * MIB;
    hi.nr_cpus = 2;
    snprintf(hi.xen_version, sizeof(hi.xen_version), "4.17.5");
    hi.build_id_len = 4;
    memcpy(hi.build_id, "\xde\xad\xbe\xef", 4);
    hv_fake_set_hostinfo(hv, &hi);
    CU_ASSERT_EQUAL_FATAL(hv_fake_connect(hv, &hv_conn), XM_OK);
    add_guest("g1", 128 * MIB, 0);
    add_guest("g2", 256 * MIB, XM_DOM_PCI);

    clock_fake_init(&clk, 1000, 1700000000);
    clock_fake_as_clock(&clk, &clock);
    loop = xm_loop_new(&clock);
    CU_ASSERT_PTR_NOT_NULL_FATAL(loop);
    {
        /* the fake's asynchronous operations end in its afterpoll */
        struct xm_loop_source hs = {
            hv_conn.ops->beforepoll, hv_conn.ops->afterpoll, hv_conn.ctx
        };
        CU_ASSERT_EQUAL_FATAL(xm_loop_add_source(loop, &hs), XM_OK);
    }
    CU_ASSERT_EQUAL_FATAL(xm_config_load_data("t.conf", conf, (size_t)len,
                                              &cfg, err, sizeof(err)),
                          XM_OK);
    memset(&deps, 0, sizeof(deps));
    deps.cfg = &cfg;
    deps.xs = &xs_agent;
    deps.hv = &hv_conn;
    deps.clock = &clock;
    deps.loop = loop;
    deps.peers.ops = &fake_peer_ops;
    deps.peers.ctx = &peers;
    deps.pid = 4242;
    CU_ASSERT_EQUAL_FATAL(agent_new(&deps, &agent), XM_OK);
}

static void
setup(void)
{
    setup_in("/nonexistent/xenmaint-test");
}

static void
setup_dir(void)
{
    snprintf(dir, sizeof(dir), "/tmp/xm-agent-test.XXXXXX");
    CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(dir));
    setup_in(dir);
}

static void
teardown(void)
{
    agent_stop(agent);
    agent_free(agent);
    agent = NULL;
    xm_loop_free(loop);
    xm_config_dispose(&cfg);
    xm_hv_close(&hv_conn);
    hv_fake_free(hv);
    xm_xs_close(&xs_agent);
    xm_xs_close(&xs_client);
    xm_xs_close(&xs_guest);
    xs_fake_free(store);
}

static void
teardown_dir(void)
{
    char cmd[128];

    teardown();
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    CU_ASSERT_EQUAL(system(cmd), 0);
}

static void
pump(void)
{
    for (int i = 0; i < 5; i++)
        CU_ASSERT_EQUAL(xm_loop_run_once(loop, 0, NULL), XM_OK);
}

static void
submit(const char *id, const char *json)
{
    char path[XM_XS_PATH_MAX];

    snprintf(path, sizeof(path), "/tool/xenmaint/request/%s", id);
    CU_ASSERT_EQUAL_FATAL(xm_xs_write_str(&xs_client, XM_XS_NO_TXN, path,
                                          json), XM_OK);
    pump();
}

/* The job's state, or "" when it has none. */
static char *
job_key(const char *id, const char *key)
{
    char path[XM_XS_PATH_MAX];
    char *v = NULL;

    snprintf(path, sizeof(path), "/tool/xenmaint/job/%s/%s", id, key);
    if (xm_xs_read_big(&xs_client, XM_XS_NO_TXN, path, &v, NULL) != XM_OK)
        return strdup("");
    return v;
}

static xm_json *
job_result(const char *id)
{
    char *text = job_key(id, "result");
    xm_json *doc = NULL;

    xm_json_parse(text, strlen(text), &doc, NULL, 0);
    free(text);
    return doc;
}

static void
assert_job(const char *id, const char *state)
{
    char *s = job_key(id, "state");
    if (strcmp(s, state) != 0) {
        char *e = job_key(id, "error");
        fprintf(stderr, "\n  job %s: state '%s' (wanted %s), error '%s'\n",
                id, s, state, e);
        free(e);
    }
    CU_ASSERT_STRING_EQUAL(s, state);
    free(s);
}

static void
answer_peers(void)
{
    struct agent_peer_status st[8];
    xm_json *docs[8] = { 0 };

    CU_ASSERT_PTR_NOT_NULL_FATAL(peers.done);
    for (unsigned i = 0; i < peers.n; i++) {
        st[i].name = peers.names[i];
        st[i].status = NULL;
        if (strcmp(peers.names[i], "B") == 0 && peers.b_status) {
            CU_ASSERT_EQUAL(xm_json_parse(peers.b_status,
                                          strlen(peers.b_status), &docs[i],
                                          NULL, 0), XM_OK);
            st[i].rc = XM_OK;
            st[i].error = NULL;
            st[i].status = docs[i];
        } else {
            st[i].rc = XM_ERR_TIMEOUT;
            st[i].error = "did not answer in time";
        }
    }
    peers.done(peers.arg, st, peers.n);
    peers.done = NULL;
    for (unsigned i = 0; i < peers.n; i++)
        xm_json_free(docs[i]);
}

/* ---- tests ---- */

static void
test_start_publishes_and_pid_last(void)
{
    char *v = NULL;

    CU_ASSERT_EQUAL_FATAL(agent_start(agent), XM_OK);
    CU_ASSERT_STRING_EQUAL(last_write, "/tool/xenmaint/agent/pid");
    CU_ASSERT_EQUAL(xs_fake_peek(store, "/tool/xenmaint/agent/pid", &v),
                    XM_OK);
    CU_ASSERT_STRING_EQUAL(v, "4242");
    free(v);
    CU_ASSERT_EQUAL(xs_fake_peek(store, "/tool/xenmaint/host/state", &v),
                    XM_OK);
    CU_ASSERT_STRING_EQUAL(v, "active");
    free(v);
    CU_ASSERT_EQUAL(xs_fake_peek(store, "/tool/xenmaint/host/build-id",
                                 &v), XM_OK);
    CU_ASSERT_STRING_EQUAL(v, "deadbeef");
    free(v);
    agent_stop(agent);
    CU_ASSERT_EQUAL(xs_fake_peek(store, "/tool/xenmaint/agent/pid", &v),
                    XM_ERR_NOTFOUND);
}

static void
test_guest_cannot_read_the_tree(void)
{
    char *v = NULL;

    CU_ASSERT_EQUAL_FATAL(agent_start(agent), XM_OK);
    CU_ASSERT_NOT_EQUAL(xm_xs_read(&xs_guest, XM_XS_NO_TXN,
                                   "/tool/xenmaint/host/state", &v), XM_OK);
    CU_ASSERT_NOT_EQUAL(xm_xs_write_str(&xs_guest, XM_XS_NO_TXN,
                                        "/tool/xenmaint/request/x",
                                        "{}"), XM_OK);
    free(v);
}

static void
test_status(void)
{
    xm_json *doc;
    const xm_json *hosts, *self, *guests;
    const char *s;
    char *v = NULL;

    CU_ASSERT_EQUAL_FATAL(agent_start(agent), XM_OK);
    peers.b_status = "{\"name\":\"B\",\"state\":\"active\",\"free_kib\":1,"
                     "\"nr_cpus\":2,\"guests\":[]}";
    submit("s1", "{\"version\":1,\"op\":\"status\"}");
    /* the request is taken once */
    CU_ASSERT_EQUAL(xs_fake_peek(store, "/tool/xenmaint/request/s1", &v),
                    XM_ERR_NOTFOUND);
    assert_job("s1", "running");
    CU_ASSERT_EQUAL(peers.queries, 1);
    CU_ASSERT_EQUAL(peers.n, 2);
    answer_peers();
    assert_job("s1", "done");
    doc = job_result("s1");
    CU_ASSERT_PTR_NOT_NULL_FATAL(doc);
    hosts = xm_json_get(doc, "hosts");
    CU_ASSERT_EQUAL_FATAL(xm_json_len(hosts), 3);
    self = xm_json_at(hosts, 0);
    CU_ASSERT_EQUAL(xm_json_get_str(self, "name", &s), XM_OK);
    CU_ASSERT_STRING_EQUAL(s, "A");
    guests = xm_json_get(self, "guests");
    CU_ASSERT_EQUAL(xm_json_len(guests), 2);
    CU_ASSERT_EQUAL(xm_json_get_str(xm_json_at(guests, 0), "name", &s),
                    XM_OK);
    CU_ASSERT_STRING_EQUAL(s, "g1");
    CU_ASSERT_EQUAL(xm_json_get_str(xm_json_at(hosts, 1), "name", &s),
                    XM_OK);
    CU_ASSERT_STRING_EQUAL(s, "B");
    CU_ASSERT_EQUAL(xm_json_get_str(xm_json_at(hosts, 2), "error", &s),
                    XM_OK);
    CU_ASSERT_STRING_EQUAL(s, "did not answer in time");
    xm_json_free(doc);
}

/* The agent started, a dry-run drain as job id with B active, empty
 * and 1 GiB free: its result (the caller frees it). */
static xm_json *
dry_run_to_empty_b(const char *id)
{
    xm_json *doc;

    CU_ASSERT_EQUAL_FATAL(agent_start(agent), XM_OK);
    peers.b_status = "{\"name\":\"B\",\"state\":\"active\","
                     "\"free_kib\":1048576,\"nr_cpus\":2,\"guests\":[]}";
    submit(id, "{\"version\":1,\"op\":\"drain\",\"dry_run\":true}");
    answer_peers();
    assert_job(id, "done");
    doc = job_result(id);
    CU_ASSERT_PTR_NOT_NULL_FATAL(doc);
    return doc;
}

static void
test_drain_plan(void)
{
    xm_json *doc = dry_run_to_empty_b("d1");
    const xm_json *moves, *blocked, *targets;
    const char *s;

    moves = xm_json_get(doc, "moves");
    blocked = xm_json_get(doc, "blocked");
    targets = xm_json_get(doc, "targets");
    CU_ASSERT_EQUAL_FATAL(xm_json_len(moves), 1);
    CU_ASSERT_EQUAL(xm_json_get_str(xm_json_at(moves, 0), "guest", &s),
                    XM_OK);
    CU_ASSERT_STRING_EQUAL(s, "g1");
    CU_ASSERT_EQUAL(xm_json_get_str(xm_json_at(moves, 0), "to", &s), XM_OK);
    CU_ASSERT_STRING_EQUAL(s, "B");
    CU_ASSERT_EQUAL_FATAL(xm_json_len(blocked), 1);
    CU_ASSERT_EQUAL(xm_json_get_str(xm_json_at(blocked, 0), "guest", &s),
                    XM_OK);
    CU_ASSERT_STRING_EQUAL(s, "g2");
    CU_ASSERT_EQUAL(xm_json_as_str(xm_json_at(xm_json_get(
                        xm_json_at(blocked, 0), "reasons"), 0), &s), XM_OK);
    CU_ASSERT_STRING_EQUAL(s, "pci-passthrough");
    CU_ASSERT_EQUAL(xm_json_len(targets), 2);
    xm_json_free(doc);
}

/* Domains whose xenstore entries are gone (xl shows "(null)": a
 * destroy cut short): the listing keeps them.  One paused or shut down
 * is dying and left out of the plan; one still running is blocked
 * under "(null):N" -- the planner takes no empty name, and the drain
 * said "invalid" before. */
static void
test_drain_plan_nameless(void)
{
    xm_json *doc;
    const xm_json *moves, *blocked;
    const char *s;

    add_guest("", 64 * MIB, XM_DOM_NAMELESS | XM_DOM_NOMIGRATE);
    add_guest("", 64 * MIB, XM_DOM_NAMELESS | XM_DOM_NOMIGRATE |
                            XM_DOM_PAUSED | XM_DOM_DYING);
    doc = dry_run_to_empty_b("d9");
    moves = xm_json_get(doc, "moves");
    blocked = xm_json_get(doc, "blocked");
    CU_ASSERT_EQUAL(xm_json_len(moves), 1);
    CU_ASSERT_EQUAL_FATAL(xm_json_len(blocked), 2);
    CU_ASSERT_EQUAL(xm_json_get_str(xm_json_at(blocked, 1), "guest", &s),
                    XM_OK);
    CU_ASSERT_STRING_EQUAL(s, "(null):3");
    xm_json_free(doc);
}

static void
test_drain_plan_no_room(void)
{
    xm_json *doc;
    const xm_json *blocked;
    const char *s;

    CU_ASSERT_EQUAL_FATAL(agent_start(agent), XM_OK);
    /* B has 64 MiB free: g1 (128 MiB) cannot go anywhere */
    peers.b_status = "{\"name\":\"B\",\"state\":\"active\","
                     "\"free_kib\":65536,\"nr_cpus\":2,\"guests\":[]}";
    submit("d2", "{\"version\":1,\"op\":\"drain\",\"dry_run\":true,"
                 "\"to\":[\"B\"]}");
    CU_ASSERT_EQUAL(peers.n, 1);
    answer_peers();
    assert_job("d2", "done");
    doc = job_result("d2");
    blocked = xm_json_get(doc, "blocked");
    CU_ASSERT_EQUAL_FATAL(xm_json_len(blocked), 2);
    CU_ASSERT_EQUAL(xm_json_as_str(xm_json_at(xm_json_get(
                        xm_json_at(blocked, 0), "reasons"), 0), &s), XM_OK);
    CU_ASSERT_STRING_EQUAL(s, "no-memory");
    xm_json_free(doc);
}

static void
test_drain_cordoned_target(void)
{
    xm_json *doc;

    CU_ASSERT_EQUAL_FATAL(agent_start(agent), XM_OK);
    peers.b_status = "{\"name\":\"B\",\"state\":\"drained\","
                     "\"free_kib\":1048576,\"nr_cpus\":2,\"guests\":[]}";
    submit("d3", "{\"version\":1,\"op\":\"drain\",\"dry_run\":true}");
    answer_peers();
    doc = job_result("d3");
    CU_ASSERT_EQUAL(xm_json_len(xm_json_get(doc, "moves")), 0);
    CU_ASSERT_EQUAL(xm_json_len(xm_json_get(doc, "blocked")), 2);
    xm_json_free(doc);
}

static void
test_drain_unknown_target(void)
{
    char *e;

    CU_ASSERT_EQUAL_FATAL(agent_start(agent), XM_OK);
    submit("d4", "{\"version\":1,\"op\":\"drain\",\"dry_run\":true,"
                 "\"to\":[\"Z\"]}");
    assert_job("d4", "failed");
    e = job_key("d4", "error");
    CU_ASSERT_PTR_NOT_NULL(strstr(e, "'Z'"));
    free(e);
    CU_ASSERT_EQUAL(peers.queries, 0);
}

static char *
host_key(const char *leaf)
{
    char path[128], *v = NULL;

    snprintf(path, sizeof(path), "/tool/xenmaint/host/%s", leaf);
    CU_ASSERT_EQUAL(xm_xs_read(&xs_client, XM_XS_NO_TXN, path, &v), XM_OK);
    return v ? v : strdup("");
}

/* A blocked guest and no --skip-blocked: nothing moves, the host is
 * not left cordoned. */
static void
test_drain_refused_with_blockers(void)
{
    xm_json *doc;
    const xm_json *blocked;
    const char *s;
    bool b = false;
    char *state;

    CU_ASSERT_EQUAL_FATAL(agent_start(agent), XM_OK);
    peers.b_status = "{\"name\":\"B\",\"state\":\"active\","
                     "\"free_kib\":1048576,\"nr_cpus\":2,\"guests\":[]}";
    submit("d5", "{\"version\":1,\"op\":\"drain\"}");
    state = host_key("state");
    CU_ASSERT_STRING_EQUAL(state, "draining");  /* cordoned at once */
    free(state);
    answer_peers();
    assert_job("d5", "done");
    doc = job_result("d5");
    CU_ASSERT_PTR_NOT_NULL_FATAL(doc);
    CU_ASSERT_EQUAL(xm_json_get_bool(doc, "refused", &b), XM_OK);
    CU_ASSERT_TRUE(b);
    blocked = xm_json_get(doc, "blocked");
    CU_ASSERT_EQUAL_FATAL(xm_json_len(blocked), 1);
    CU_ASSERT_EQUAL(xm_json_get_str(xm_json_at(blocked, 0), "action", &s),
                    XM_OK);
    CU_ASSERT_STRING_EQUAL(s, "refused");
    CU_ASSERT_EQUAL(xm_json_get_str(xm_json_at(xm_json_get(doc, "moves"),
                                               0), "state", &s), XM_OK);
    CU_ASSERT_STRING_EQUAL(s, "planned");
    xm_json_free(doc);
    state = host_key("state");
    CU_ASSERT_STRING_EQUAL(state, "active");
    free(state);
}

/* --skip-blocked, but no journal (the state dir is missing): the
 * migration is refused before it touches the guest, with the reason,
 * and the host stays cordoned because a guest remains. */
static void
test_drain_without_journal(void)
{
    xm_json *doc;
    const xm_json *mv;
    const char *s;
    char *state;

    CU_ASSERT_EQUAL_FATAL(agent_start(agent), XM_OK);
    peers.b_status = "{\"name\":\"B\",\"state\":\"active\","
                     "\"free_kib\":1048576,\"nr_cpus\":2,\"guests\":[]}";
    submit("d6", "{\"version\":1,\"op\":\"drain\",\"blocked\":\"skip\"}");
    answer_peers();
    assert_job("d6", "done");
    doc = job_result("d6");
    CU_ASSERT_PTR_NOT_NULL_FATAL(doc);
    mv = xm_json_at(xm_json_get(doc, "moves"), 0);
    CU_ASSERT_EQUAL(xm_json_get_str(mv, "guest", &s), XM_OK);
    CU_ASSERT_STRING_EQUAL(s, "g1");
    CU_ASSERT_EQUAL(xm_json_get_str(mv, "state", &s), XM_OK);
    CU_ASSERT_STRING_EQUAL(s, "stayed");
    CU_ASSERT_EQUAL(xm_json_get_str(mv, "why", &s), XM_OK);
    CU_ASSERT_PTR_NOT_NULL(strstr(s, "cannot start"));
    CU_ASSERT_EQUAL(xm_json_get_str(xm_json_at(xm_json_get(doc, "blocked"),
                                               0), "action", &s), XM_OK);
    CU_ASSERT_STRING_EQUAL(s, "skipped");
    xm_json_free(doc);
    state = host_key("state");
    CU_ASSERT_STRING_EQUAL(state, "cordoned");
    free(state);
    /* a guest's progress key is there, final */
    {
        char *v = NULL;
        CU_ASSERT_EQUAL(xm_xs_read(&xs_client, XM_XS_NO_TXN,
                                   "/tool/xenmaint/job/d6/guest/dd6-0", &v),
                        XM_OK);
        CU_ASSERT_PTR_NOT_NULL(v ? strstr(v, "\"state\":\"stayed\"") : NULL);
        free(v);
    }
}

static void
test_malformed_requests(void)
{
    static const char *const bad[] = {
        "not json", "{\"version\":1}", "{\"version\":1,\"op\":\"format\"}",
        "{\"version\":1,\"op\":\"status\",\"evil\":1}", "[]", "",
    };
    char id[16];

    CU_ASSERT_EQUAL_FATAL(agent_start(agent), XM_OK);
    for (unsigned i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
        char *e;
        snprintf(id, sizeof(id), "bad%u", i);
        submit(id, bad[i]);
        assert_job(id, "failed");
        e = job_key(id, "error");
        CU_ASSERT(strlen(e) > 0);
        free(e);
    }
    /* still answering */
    peers.b_status = NULL;
    submit("ok", "{\"version\":1,\"op\":\"patch-list\"}");
    assert_job("ok", "done");
}

static void
test_pending_request_taken_at_start(void)
{
    CU_ASSERT_EQUAL_FATAL(xm_xs_write_str(&xs_client, XM_XS_NO_TXN,
                                          "/tool/xenmaint/request/early",
                                          "{\"version\":1,"
                                          "\"op\":\"patch-list\"}"),
                          XM_OK);
    CU_ASSERT_EQUAL_FATAL(agent_start(agent), XM_OK);
    pump();
    assert_job("early", "done");
}

static void
test_hypervisor_failure_fails_the_job(void)
{
    char *e;

    CU_ASSERT_EQUAL_FATAL(agent_start(agent), XM_OK);
    fault_arm(hv_fake_fault(hv), "list_domains", 1, XM_ERR_HV);
    peers.b_status = "{\"name\":\"B\",\"state\":\"active\","
                     "\"free_kib\":1048576,\"nr_cpus\":2,\"guests\":[]}";
    submit("h1", "{\"version\":1,\"op\":\"drain\",\"dry_run\":true}");
    answer_peers();
    assert_job("h1", "failed");
    e = job_key("h1", "error");
    CU_ASSERT_PTR_NOT_NULL(strstr(e, "domains"));
    free(e);
    /* and the next one works */
    submit("h2", "{\"version\":1,\"op\":\"drain\",\"dry_run\":true}");
    answer_peers();
    assert_job("h2", "done");
}

static void
test_xenstore_failure_at_start(void)
{
    char *v = NULL;

    fault_arm(xs_fake_fault(store), "write", 3, XM_ERR_IO);
    CU_ASSERT_NOT_EQUAL(agent_start(agent), XM_OK);
    /* never announced as ready */
    CU_ASSERT_EQUAL(xs_fake_peek(store, "/tool/xenmaint/agent/pid", &v),
                    XM_ERR_NOTFOUND);
}

static void
test_finished_jobs_are_cleaned(void)
{
    char *v = NULL;

    CU_ASSERT_EQUAL_FATAL(agent_start(agent), XM_OK);
    submit("j1", "{\"version\":1,\"op\":\"patch-list\"}");
    submit("j2", "{\"version\":1,\"op\":\"patch-list\"}");
    submit("j3", "{\"version\":1,\"op\":\"patch-list\"}");
    /* jobs_kept = 2 */
    CU_ASSERT_EQUAL(xs_fake_peek(store, "/tool/xenmaint/job/j1/state", &v),
                    XM_ERR_NOTFOUND);
    CU_ASSERT_EQUAL(xs_fake_peek(store, "/tool/xenmaint/job/j3/state", &v),
                    XM_OK);
    free(v);
}

static void
test_big_result_is_chunked(void)
{
    char name[32];
    xm_json *doc;

    for (int i = 0; i < 60; i++) {
        snprintf(name, sizeof(name), "guest-with-a-long-name-%02d", i);
        add_guest(name, 16 * MIB, 0);
    }
    CU_ASSERT_EQUAL_FATAL(agent_start(agent), XM_OK);
    peers.b_status = "{\"name\":\"B\",\"state\":\"active\","
                     "\"free_kib\":10485760,\"nr_cpus\":2,\"guests\":[]}";
    submit("big", "{\"version\":1,\"op\":\"drain\",\"dry_run\":true}");
    answer_peers();
    assert_job("big", "done");
    doc = job_result("big");
    CU_ASSERT_PTR_NOT_NULL_FATAL(doc);
    CU_ASSERT_EQUAL(xm_json_len(xm_json_get(doc, "moves")), 61);
    xm_json_free(doc);
}

static CU_TestInfo agent_tests[] = {
    { "start publishes, pid last; stop removes it",
      test_start_publishes_and_pid_last },
    { "a guest cannot read or write the tree",
      test_guest_cannot_read_the_tree },
    { "status: this host and the peers", test_status },
    { "drain plan: moves and blockers", test_drain_plan },
    { "drain plan: domains without a name", test_drain_plan_nameless },
    { "drain plan: no room anywhere", test_drain_plan_no_room },
    { "drain plan: a drained peer takes nothing",
      test_drain_cordoned_target },
    { "drain plan: unknown --to host", test_drain_unknown_target },
    { "drain refused with blockers, host not left cordoned",
      test_drain_refused_with_blockers },
    { "drain without a journal: guest stays, with the reason",
      test_drain_without_journal },
    { "malformed requests get errors, agent goes on",
      test_malformed_requests },
    { "a request written before start is taken",
      test_pending_request_taken_at_start },
    { "hypervisor failure fails the job only",
      test_hypervisor_failure_fails_the_job },
    { "xenstore failure at start: never ready",
      test_xenstore_failure_at_start },
    { "finished jobs are cleaned", test_finished_jobs_are_cleaned },
    { "a big result is stored in chunks", test_big_result_is_chunked },
    CU_TEST_INFO_NULL,
};

/* ---- --shutdown-blocked and the undrain's restarts ---- */

/* B has no room: both guests are blocked, so a drain with blocked
 * "shutdown" shuts both down. */
#define B_FULL "{\"name\":\"B\",\"state\":\"active\",\"free_kib\":1024," \
               "\"nr_cpus\":2,\"guests\":[]}"

/* Let time pass on the fake clock, the loop turning. */
static void
run_for(int64_t ms)
{
    for (int64_t t = 0; t < ms; t += 50) {
        clock_fake_advance(&clk, 50);
        CU_ASSERT_EQUAL(xm_loop_run_once(loop, 0, NULL), XM_OK);
    }
}

/* The record of a stopped guest (named by its uuid: the name padded
 * with zero bytes, see add_guest). */
static bool
record_exists(const char *name)
{
    char path[160], hex[33];
    uint8_t uuid[16] = { 0 };

    memcpy(uuid, name, strlen(name) < 16 ? strlen(name) : 16);
    for (unsigned i = 0; i < 16; i++)
        snprintf(hex + 2 * i, 3, "%02x", uuid[i]);
    snprintf(path, sizeof(path), "%s/stopped/%s", dir, hex);
    return access(path, F_OK) == 0;
}

/* entry[key] of the array key0 of the job's result, guest by guest. */
static const xm_json *
entry_of(const xm_json *doc, const char *array, const char *guest)
{
    const xm_json *a = xm_json_get(doc, array);

    for (size_t i = 0; i < xm_json_len(a); i++) {
        const char *g = NULL;
        if (xm_json_get_str(xm_json_at(a, i), "guest", &g) == XM_OK &&
            strcmp(g, guest) == 0)
            return xm_json_at(a, i);
    }
    return NULL;
}

static void
assert_entry(const xm_json *doc, const char *array, const char *guest,
             const char *state, const char *why_part)
{
    const xm_json *e = entry_of(doc, array, guest);
    const char *s = NULL;

    CU_ASSERT_PTR_NOT_NULL_FATAL(e);
    CU_ASSERT_EQUAL(xm_json_get_str(e, "state", &s), XM_OK);
    if (s && strcmp(s, state))
        fprintf(stderr, "\n  %s %s: state '%s', wanted '%s'\n", array,
                guest, s, state);
    CU_ASSERT_STRING_EQUAL(s ? s : "", state);
    CU_ASSERT_EQUAL(xm_json_get_str(e, "why", &s), XM_OK);
    if (why_part)
        CU_ASSERT_PTR_NOT_NULL(s ? strstr(s, why_part) : NULL);
}

static void
drain_shutdown(const char *id, const char *extra)
{
    char json[160];

    CU_ASSERT_EQUAL_FATAL(agent_start(agent), XM_OK);
    peers.b_status = B_FULL;
    snprintf(json, sizeof(json), "{\"version\":1,\"op\":\"drain\","
             "\"blocked\":\"shutdown\"%s}", extra);
    submit(id, json);
    answer_peers();
}

/* Both guests shut down, configs kept, host drained; the undrain (even
 * --stay) starts them again and drops the records. */
static void
test_shutdown_then_start(void)
{
    const struct xm_domain *d;
    xm_json *doc;
    const char *s;
    char *state;

    drain_shutdown("s1", "");
    run_for(300);
    assert_job("s1", "done");
    doc = job_result("s1");
    CU_ASSERT_PTR_NOT_NULL_FATAL(doc);
    assert_entry(doc, "blocked", "g1", "shut-down", NULL);
    assert_entry(doc, "blocked", "g2", "shut-down", NULL);
    CU_ASSERT_EQUAL(xm_json_get_str(entry_of(doc, "blocked", "g2"),
                                    "action", &s), XM_OK);
    CU_ASSERT_STRING_EQUAL(s, "shutdown");
    xm_json_free(doc);
    CU_ASSERT_EQUAL(hv_fake_count_domains(hv), 0);
    CU_ASSERT_TRUE(record_exists("g1"));
    CU_ASSERT_TRUE(record_exists("g2"));
    state = host_key("state");
    CU_ASSERT_STRING_EQUAL(state, "drained");
    free(state);

    submit("s2", "{\"version\":1,\"op\":\"undrain\",\"stay\":true}");
    run_for(500);
    assert_job("s2", "done");
    doc = job_result("s2");
    CU_ASSERT_PTR_NOT_NULL_FATAL(doc);
    assert_entry(doc, "started", "g1", "running", NULL);
    assert_entry(doc, "started", "g2", "running", NULL);
    xm_json_free(doc);
    d = hv_fake_find(hv, "g2");
    CU_ASSERT_PTR_NOT_NULL_FATAL(d);
    CU_ASSERT_EQUAL(d->flags & XM_DOM_PAUSED, 0);   /* unpaused */
    CU_ASSERT_EQUAL(d->mem_kib, 256 * MIB);         /* from its config */
    CU_ASSERT_FALSE(record_exists("g1"));
    CU_ASSERT_FALSE(record_exists("g2"));
    state = host_key("state");
    CU_ASSERT_STRING_EQUAL(state, "active");
    free(state);
}

/* A guest that ignores the request keeps running past --timeout: the
 * request is withdrawn, no record kept, the host not empty. */
static void
test_shutdown_ignored(void)
{
    xm_json *doc;
    char *state;

    hv_fake_ignore_shutdown(hv, hv_fake_find(hv, "g2")->domid);
    drain_shutdown("s3", ",\"timeout\":10");
    run_for(5000);
    assert_job("s3", "running");        /* still waiting for g2 */
    run_for(6000);
    assert_job("s3", "done");
    doc = job_result("s3");
    CU_ASSERT_PTR_NOT_NULL_FATAL(doc);
    assert_entry(doc, "blocked", "g1", "shut-down", NULL);
    assert_entry(doc, "blocked", "g2", "running", "within 10 s");
    xm_json_free(doc);
    CU_ASSERT_PTR_NOT_NULL(hv_fake_find(hv, "g2"));
    CU_ASSERT_FALSE(record_exists("g2"));
    CU_ASSERT_TRUE(record_exists("g1"));
    state = host_key("state");
    CU_ASSERT_STRING_EQUAL(state, "cordoned");
    free(state);
}

/* No PV shutdown support, or no config to keep: never forced, never
 * shut down without a way back. */
static void
test_shutdown_refused_by_guest_or_config(void)
{
    xm_json *doc;

    fault_arm(hv_fake_fault(hv), "shutdown", 1, XM_ERR_UNSUPPORTED);
    fault_arm(hv_fake_fault(hv), "domain_config", 1, XM_ERR_HV);
    drain_shutdown("s4", "");
    run_for(300);
    assert_job("s4", "done");
    doc = job_result("s4");
    CU_ASSERT_PTR_NOT_NULL_FATAL(doc);
    /* g1 first: its config read fails; g2: the shutdown is refused */
    assert_entry(doc, "blocked", "g1", "running", "cannot keep its config");
    assert_entry(doc, "blocked", "g2", "running", "no PV shutdown");
    xm_json_free(doc);
    CU_ASSERT_EQUAL(hv_fake_count_domains(hv), 2);
    CU_ASSERT_FALSE(record_exists("g1"));
    CU_ASSERT_FALSE(record_exists("g2"));
}

/* A start that fails keeps the record for the next undrain; a guest
 * already running is not started twice. */
static void
test_start_failure_and_already_running(void)
{
    xm_json *doc;
    struct xm_domain d;

    drain_shutdown("s5", "");
    run_for(300);
    assert_job("s5", "done");
    /* g1 started again by hand meanwhile */
    memset(&d, 0, sizeof(d));
    snprintf(d.name, sizeof(d.name), "g1");
    memcpy(d.uuid, "g1", 2);
    d.mem_kib = 128 * MIB;
    d.vcpus = 1;
    CU_ASSERT_EQUAL_FATAL(hv_fake_add_domain(hv, &d), XM_OK);
    fault_arm(hv_fake_fault(hv), "create_done", 1, XM_ERR_NOMEM);
    submit("s6", "{\"version\":1,\"op\":\"undrain\"}");
    run_for(500);
    assert_job("s6", "done");
    doc = job_result("s6");
    CU_ASSERT_PTR_NOT_NULL_FATAL(doc);
    assert_entry(doc, "started", "g1", "running", "already running");
    assert_entry(doc, "started", "g2", "failed", "next undrain");
    xm_json_free(doc);
    CU_ASSERT_PTR_NULL(hv_fake_find(hv, "g2"));
    CU_ASSERT_FALSE(record_exists("g1"));
    CU_ASSERT_TRUE(record_exists("g2"));

    submit("s7", "{\"version\":1,\"op\":\"undrain\"}");
    run_for(500);
    assert_job("s7", "done");
    doc = job_result("s7");
    CU_ASSERT_PTR_NOT_NULL_FATAL(doc);
    assert_entry(doc, "started", "g2", "running", NULL);
    CU_ASSERT_PTR_NULL(entry_of(doc, "started", "g1"));
    xm_json_free(doc);
    CU_ASSERT_PTR_NOT_NULL(hv_fake_find(hv, "g2"));
    CU_ASSERT_FALSE(record_exists("g2"));
}

/* The notice says "shutdown"; the dry run says what would happen. */
static void
test_shutdown_notice_and_dry_run(void)
{
    xm_json *doc;
    char path[128], *v = NULL;
    const xm_json *e;
    const char *s;

    drain_shutdown("s8", ",\"dry_run\":true");
    assert_job("s8", "done");
    doc = job_result("s8");
    CU_ASSERT_PTR_NOT_NULL_FATAL(doc);
    e = entry_of(doc, "blocked", "g2");
    CU_ASSERT_EQUAL(xm_json_get_str(e, "action", &s), XM_OK);
    CU_ASSERT_STRING_EQUAL(s, "shutdown");
    CU_ASSERT_EQUAL(xm_json_get_str(e, "state", &s), XM_OK);
    CU_ASSERT_STRING_EQUAL(s, "planned");
    xm_json_free(doc);
    CU_ASSERT_EQUAL(hv_fake_count_domains(hv), 2);

    peers.b_status = B_FULL;
    submit("s9", "{\"version\":1,\"op\":\"drain\",\"blocked\":\"shutdown\","
                 "\"notice\":60}");
    answer_peers();
    snprintf(path, sizeof(path), "/local/domain/%u/xenmaint/notice",
             hv_fake_find(hv, "g2")->domid);
    CU_ASSERT_EQUAL(xm_xs_read(&xs_client, XM_XS_NO_TXN, path, &v), XM_OK);
    CU_ASSERT_PTR_NOT_NULL(v ? strstr(v, "\"type\":\"shutdown\"") : NULL);
    free(v);
    run_for(1000);
    CU_ASSERT_EQUAL(hv_fake_count_domains(hv), 2);  /* still noticing */
    run_for(60000);
    assert_job("s9", "done");
    CU_ASSERT_EQUAL(hv_fake_count_domains(hv), 0);
}

/* A migration that fails before its stream began (here: B cannot be
 * reached) is tried once more, then reported with the reason; the guest
 * never left. */
static void
test_unstarted_migration_retried_once(void)
{
    xm_json *doc;
    const xm_json *mv;
    const char *s;

    CU_ASSERT_EQUAL_FATAL(agent_start(agent), XM_OK);
    peers.b_status = "{\"name\":\"B\",\"state\":\"active\","
                     "\"free_kib\":1048576,\"nr_cpus\":2,\"guests\":[]}";
    submit("r1", "{\"version\":1,\"op\":\"drain\",\"blocked\":\"skip\"}");
    answer_peers();
    run_for(1000);
    assert_job("r1", "done");
    CU_ASSERT_EQUAL(chans_opened, 2);
    doc = job_result("r1");
    CU_ASSERT_PTR_NOT_NULL_FATAL(doc);
    mv = entry_of(doc, "moves", "g1");
    CU_ASSERT_PTR_NOT_NULL_FATAL(mv);
    CU_ASSERT_EQUAL(xm_json_get_str(mv, "state", &s), XM_OK);
    CU_ASSERT_STRING_EQUAL(s, "stayed");
    CU_ASSERT_EQUAL(xm_json_get_str(mv, "id", &s), XM_OK);
    CU_ASSERT_STRING_EQUAL(s, "dr1-0-r");
    CU_ASSERT_EQUAL(xm_json_get_str(mv, "why", &s), XM_OK);
    CU_ASSERT_PTR_NOT_NULL(strstr(s, "cannot reach B"));
    xm_json_free(doc);
    CU_ASSERT_PTR_NOT_NULL(hv_fake_find(hv, "g1"));
    {
        /* the first attempt's progress key says it was tried again */
        char *v = NULL;
        CU_ASSERT_EQUAL(xm_xs_read(&xs_client, XM_XS_NO_TXN,
                                   "/tool/xenmaint/job/r1/guest/dr1-0", &v),
                        XM_OK);
        CU_ASSERT_PTR_NOT_NULL(v ? strstr(v, "(tried again)") : NULL);
        free(v);
    }
}

/* A move that ends frees its slot at once: the retry of a migration that
 * never began, then the end of the drain, come without the drain's tick
 * (the fake clock stands still). */
static void
test_finished_move_steps_at_once(void)
{
    CU_ASSERT_EQUAL_FATAL(agent_start(agent), XM_OK);
    peers.b_status = "{\"name\":\"B\",\"state\":\"active\","
                     "\"free_kib\":1048576,\"nr_cpus\":2,\"guests\":[]}";
    submit("r2", "{\"version\":1,\"op\":\"drain\",\"blocked\":\"skip\"}");
    answer_peers();
    pump();
    CU_ASSERT_EQUAL(chans_opened, 2);
    assert_job("r2", "done");
}

static CU_TestInfo stop_tests[] = {
    { "a migration that never began is tried once more",
      test_unstarted_migration_retried_once },
    { "a move that ends frees its slot at once",
      test_finished_move_steps_at_once },
    { "shut down, configs kept; undrain --stay starts them",
      test_shutdown_then_start },
    { "a guest that ignores the request keeps running",
      test_shutdown_ignored },
    { "no PV shutdown or no config: not shut down",
      test_shutdown_refused_by_guest_or_config },
    { "a failed start is retried; a running guest is not doubled",
      test_start_failure_and_already_running },
    { "notice type shutdown; dry run plans it",
      test_shutdown_notice_and_dry_run },
    CU_TEST_INFO_NULL,
};

CU_SuiteInfo xm_test_suites[] = {
    { "agent", NULL, NULL, setup, teardown, agent_tests },
    { "drain with a state dir", NULL, NULL, setup_dir, teardown_dir,
      stop_tests },
    CU_SUITE_INFO_NULL,
};
