/*
 * peer_test.c -- the agent-to-agent link for real, over loopback TCP
 * with mutual TLS: host A asks host B for its status through B's peer
 * link, which answers with B's agent state (fake hypervisor, in-process
 * xenstore).  Also: a host B does not know is refused, a peer that is
 * down is reported with the reason, and an agent without TLS material
 * says so instead of connecting.  A migration channel negotiates stream
 * compression in the hellos, and without it (a peer of an older build)
 * no compressed frame can leave.  Certificates come from the project's
 * own xenmaint-pki in a temporary directory.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent.h"
#include "harness.h"
#include "hv_fake.h"
#include "loop.h"
#include "peer.h"
#include "xm_err.h"
#include "xm_json.h"
#include "xm_log.h"
#include "xs_fake.h"

#ifndef XM_PKI_SCRIPT
#error "XM_PKI_SCRIPT must name tools/xenmaint-pki"
#endif

static char pki[64];
static struct xm_loop *loop;
static struct xs_fake *store;
static struct xm_xs xs_b;
static struct hv_fake *hv;
static struct xm_hv hv_b;
static struct xm_config cfg_a, cfg_b;
static struct peer_link *link_a, *link_b;
static struct agent *agent_b;

/* what the query answered */
static int answered;
static int got_rc;
static char got_error[256];
static char got_name[64];
static char got_state[32];

static int
suite_init(void)
{
    char cmd[1024];

    xm_log_open("peer_test", true, XM_LOG_ERR);
    signal(SIGPIPE, SIG_IGN);   /* as xenmaintd does */
    snprintf(pki, sizeof(pki), "/tmp/xm-peer-test-XXXXXX");
    if (!mkdtemp(pki))
        return 1;
    snprintf(cmd, sizeof(cmd),
             "sh %s init %s/pool >/dev/null && "
             "sh %s host %s/pool A >/dev/null && "
             "sh %s host %s/pool B >/dev/null && "
             "sh %s host %s/pool Z >/dev/null",
             XM_PKI_SCRIPT, pki, XM_PKI_SCRIPT, pki, XM_PKI_SCRIPT, pki,
             XM_PKI_SCRIPT, pki);
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

/* A config for host `self` knowing one peer `peer` at 127.0.0.1:port. */
static void
make_config(struct xm_config *cfg, const char *self, const char *cert,
            const char *peer, int port, bool tls)
{
    char file[32];

    xm_config_init(cfg);
    snprintf(cfg->host_name, sizeof(cfg->host_name), "%s", self);
    snprintf(cfg->listen_address, sizeof(cfg->listen_address), "127.0.0.1");
    cfg->listen_port = 0;       /* any free port */
    cfg->peers = calloc(1, sizeof(*cfg->peers));
    cfg->n_peers = 1;
    snprintf(cfg->peers[0].name, sizeof(cfg->peers[0].name), "%s", peer);
    snprintf(cfg->peers[0].address, sizeof(cfg->peers[0].address),
             "127.0.0.1");
    cfg->peers[0].port = (uint16_t)port;
    cfg->state_dir = strdup("/nonexistent");
    if (tls) {
        cfg->tls_ca = pki_file("ca.crt");
        snprintf(file, sizeof(file), "%s.crt", cert);
        cfg->tls_cert = pki_file(file);
        snprintf(file, sizeof(file), "%s.key", cert);
        cfg->tls_key = pki_file(file);
    }
}

/* Host B: a real peer link answering from an agent over the doubles. */
static void
start_b(const char *knows)
{
    struct agent_deps deps;
    struct xm_domain d;

    make_config(&cfg_b, "B", "B", knows, 1, true);
    CU_ASSERT_EQUAL_FATAL(xs_fake_connect(store, 0, &xs_b), XM_OK);
    CU_ASSERT_EQUAL_FATAL(hv_fake_connect(hv, &hv_b), XM_OK);
    memset(&d, 0, sizeof(d));
    snprintf(d.name, sizeof(d.name), "guest-on-b");
    d.mem_kib = 131072;
    d.vcpus = 1;
    CU_ASSERT_EQUAL_FATAL(hv_fake_add_domain(hv, &d), XM_OK);
    CU_ASSERT_EQUAL_FATAL(peer_link_new(&cfg_b, loop, &link_b), XM_OK);
    memset(&deps, 0, sizeof(deps));
    deps.cfg = &cfg_b;
    deps.xs = &xs_b;
    deps.hv = &hv_b;
    deps.clock = &xm_clock_real;
    deps.loop = loop;
    deps.peers = peer_link_ops(link_b);
    CU_ASSERT_EQUAL_FATAL(agent_new(&deps, &agent_b), XM_OK);
    peer_link_set_agent(link_b, agent_b);
    CU_ASSERT_EQUAL_FATAL(peer_link_start(link_b), XM_OK);
    CU_ASSERT(peer_link_port(link_b) > 0);
}

static void
setup(void)
{
    loop = xm_loop_new(&xm_clock_real);
    store = xs_fake_new();
    hv = hv_fake_new();
    link_a = link_b = NULL;
    agent_b = NULL;
    answered = 0;
    got_rc = 12345;
    got_error[0] = got_name[0] = got_state[0] = '\0';
    memset(&cfg_a, 0, sizeof(cfg_a));
    memset(&cfg_b, 0, sizeof(cfg_b));
}

static void
teardown(void)
{
    peer_link_free(link_a);
    peer_link_free(link_b);
    agent_free(agent_b);
    if (hv_b.ops)
        xm_hv_close(&hv_b);
    memset(&hv_b, 0, sizeof(hv_b));
    if (xs_b.ops)
        xm_xs_close(&xs_b);
    memset(&xs_b, 0, sizeof(xs_b));
    hv_fake_free(hv);
    xs_fake_free(store);
    xm_loop_free(loop);
    xm_config_dispose(&cfg_a);
    xm_config_dispose(&cfg_b);
}

static void
on_status(void *arg, const struct agent_peer_status *st, unsigned n)
{
    const char *s;

    (void)arg;
    answered++;
    CU_ASSERT_EQUAL_FATAL(n, 1);
    got_rc = st[0].rc;
    snprintf(got_name, sizeof(got_name), "%s", st[0].name);
    if (st[0].error)
        snprintf(got_error, sizeof(got_error), "%s", st[0].error);
    if (st[0].rc == XM_OK &&
        xm_json_get_str(st[0].status, "state", &s) == XM_OK)
        snprintf(got_state, sizeof(got_state), "%s", s);
    if (st[0].rc == XM_OK)
        CU_ASSERT_EQUAL(xm_json_len(xm_json_get(st[0].status, "guests")),
                        1);
}

static void
query_a(void)
{
    const char *names[] = { "B" };
    struct agent_peers ops = peer_link_ops(link_a);

    CU_ASSERT_EQUAL_FATAL(ops.ops->query_status(ops.ctx, names, 1,
                                                on_status, NULL), XM_OK);
    /* bounded: the query itself times out after PEER_QUERY_TIMEOUT_MS */
    for (int i = 0; i < 400 && !answered; i++)
        CU_ASSERT_EQUAL(xm_loop_run_once(loop, 50, NULL), XM_OK);
    CU_ASSERT_EQUAL(answered, 1);
}

static void
test_status_over_tls(void)
{
    start_b("A");
    make_config(&cfg_a, "A", "A", "B", peer_link_port(link_b), true);
    CU_ASSERT_EQUAL_FATAL(peer_link_new(&cfg_a, loop, &link_a), XM_OK);
    CU_ASSERT_EQUAL_FATAL(peer_link_start(link_a), XM_OK);
    query_a();
    CU_ASSERT_EQUAL(got_rc, XM_OK);
    CU_ASSERT_STRING_EQUAL(got_name, "B");
    CU_ASSERT_STRING_EQUAL(got_state, "active");
}

/* A peer that was answered and hangs up is no warning on the host that
 * answered (a second query shows the first's close went quietly). */
static void
test_answered_close_quiet(void)
{
    char out[1024];
    int p[2], saved;
    ssize_t n;

    start_b("A");
    make_config(&cfg_a, "A", "A", "B", peer_link_port(link_b), true);
    CU_ASSERT_EQUAL_FATAL(peer_link_new(&cfg_a, loop, &link_a), XM_OK);
    CU_ASSERT_EQUAL_FATAL(peer_link_start(link_a), XM_OK);
    CU_ASSERT_FATAL(pipe(p) == 0);
    fflush(stderr);
    saved = dup(STDERR_FILENO);
    CU_ASSERT_FATAL(saved >= 0);
    CU_ASSERT_FATAL(dup2(p[1], STDERR_FILENO) == STDERR_FILENO);
    xm_log_open("peer_test", true, XM_LOG_WARN);
    query_a();
    answered = 0;
    query_a();
    for (int i = 0; i < 10; i++)
        xm_loop_run_once(loop, 10, NULL);
    xm_log_warn("end of test");
    fflush(stderr);
    xm_log_open("peer_test", true, XM_LOG_ERR);
    dup2(saved, STDERR_FILENO);
    close(saved);
    close(p[1]);
    n = read(p[0], out, sizeof(out) - 1);
    close(p[0]);
    CU_ASSERT_FATAL(n > 0);
    out[n] = '\0';
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "end of test"));
    CU_ASSERT_PTR_NULL(strstr(out, "connection closed"));
    CU_ASSERT_EQUAL(got_rc, XM_OK);
}

static void
test_stranger_refused(void)
{
    /* B only knows Z: A's certificate is valid but A is no peer of B */
    start_b("Z");
    make_config(&cfg_a, "A", "A", "B", peer_link_port(link_b), true);
    CU_ASSERT_EQUAL_FATAL(peer_link_new(&cfg_a, loop, &link_a), XM_OK);
    CU_ASSERT_EQUAL_FATAL(peer_link_start(link_a), XM_OK);
    query_a();
    CU_ASSERT_NOT_EQUAL(got_rc, XM_OK);
    CU_ASSERT_STRING_EQUAL(got_state, "");
}

static void
test_impostor_refused(void)
{
    /* A presents Z's certificate: B expects the name A */
    start_b("A");
    make_config(&cfg_a, "A", "Z", "B", peer_link_port(link_b), true);
    CU_ASSERT_EQUAL_FATAL(peer_link_new(&cfg_a, loop, &link_a), XM_OK);
    CU_ASSERT_EQUAL_FATAL(peer_link_start(link_a), XM_OK);
    query_a();
    CU_ASSERT_NOT_EQUAL(got_rc, XM_OK);
}

static void
test_peer_down(void)
{
    int port;

    /* a port that was free a moment ago: nobody listens there */
    start_b("A");
    port = peer_link_port(link_b);
    peer_link_free(link_b);
    link_b = NULL;
    make_config(&cfg_a, "A", "A", "B", port, true);
    CU_ASSERT_EQUAL_FATAL(peer_link_new(&cfg_a, loop, &link_a), XM_OK);
    CU_ASSERT_EQUAL_FATAL(peer_link_start(link_a), XM_OK);
    query_a();
    CU_ASSERT_EQUAL(got_rc, XM_ERR_IO);
    CU_ASSERT_PTR_NOT_NULL(strstr(got_error, "cannot connect"));
}

static void
test_without_tls(void)
{
    make_config(&cfg_a, "A", "A", "B", 7474, false);
    CU_ASSERT_EQUAL_FATAL(peer_link_new(&cfg_a, loop, &link_a), XM_OK);
    CU_ASSERT_EQUAL_FATAL(peer_link_start(link_a), XM_OK);
    query_a();
    CU_ASSERT_EQUAL(got_rc, XM_ERR_CONFIG);
    CU_ASSERT_PTR_NOT_NULL(strstr(got_error, "TLS is not configured"));
}

static void
test_bad_tls_files(void)
{
    make_config(&cfg_a, "A", "A", "B", 7474, true);
    free(cfg_a.tls_key);
    cfg_a.tls_key = strdup("/nonexistent/host.key");
    CU_ASSERT_EQUAL_FATAL(peer_link_new(&cfg_a, loop, &link_a), XM_OK);
    CU_ASSERT_NOT_EQUAL(peer_link_start(link_a), XM_OK);
}

/* ---- feature negotiation on a migration channel ---- */

static int
chan_frame(void *arg, const struct xm_frame *f)
{
    (void)arg;
    (void)f;
    return XM_OK;
}

static void
chan_link(void *arg, bool up)
{
    *(int *)arg = up ? 1 : -1;
}

static void
chan_drain(void *arg)
{
    (void)arg;
}

/* A channel from A to B with these offers: the features it negotiated
 * and what sending a compressed chunk on it gives. */
static uint32_t
channel_features(uint32_t a_offers, uint32_t b_offers, int *send_rc)
{
    static const struct agent_chan_cb cb = {
        chan_frame, chan_link, chan_drain,
    };
    struct agent_peers ops;
    struct migexec_chan ch;
    uint32_t features;
    int state = 0;

    start_b("A");
    peer_link_set_features(link_b, b_offers);
    make_config(&cfg_a, "A", "A", "B", peer_link_port(link_b), true);
    CU_ASSERT_EQUAL_FATAL(peer_link_new(&cfg_a, loop, &link_a), XM_OK);
    peer_link_set_features(link_a, a_offers);
    CU_ASSERT_EQUAL_FATAL(peer_link_start(link_a), XM_OK);
    ops = peer_link_ops(link_a);
    CU_ASSERT_EQUAL_FATAL(ops.ops->chan_open(ops.ctx, "B", NULL, &cb,
                                             &state, &ch), XM_OK);
    CU_ASSERT_EQUAL(ch.ops->features(ch.ctx), 0);     /* down */
    CU_ASSERT_EQUAL(ch.ops->connect(ch.ctx), XM_ERR_BUSY);
    for (int i = 0; i < 400 && state == 0; i++)
        CU_ASSERT_EQUAL(xm_loop_run_once(loop, 50, NULL), XM_OK);
    CU_ASSERT_EQUAL_FATAL(state, 1);
    features = ch.ops->features(ch.ctx);
    *send_rc = ch.ops->send(ch.ctx, XM_MSG_STREAM_DATA, XM_FRAME_COMPRESSED,
                            "\xc5", 1);
    ops.ops->chan_close(ops.ctx, ch.ctx);
    return features;
}

static void
test_compression_negotiated(void)
{
    int rc = 12345;

    CU_ASSERT_EQUAL(channel_features(XM_PROTO_FEATURES, XM_PROTO_FEATURES,
                                     &rc), XM_FEAT_STREAM_COMPRESS |
                                           XM_FEAT_STREAM_ZERO_RUNS |
                                           XM_FEAT_STREAM_LZ4_BLOCKS |
                                           XM_FEAT_STREAM_ACK);
    CU_ASSERT_EQUAL(rc, XM_OK);
    /* an agent of the build before STREAM_ACK */
    teardown();
    setup();
    CU_ASSERT_EQUAL(channel_features(XM_PROTO_FEATURES,
                                     XM_FEAT_STREAM_COMPRESS |
                                     XM_FEAT_STREAM_ZERO_RUNS |
                                     XM_FEAT_STREAM_LZ4_BLOCKS, &rc),
                    XM_FEAT_STREAM_COMPRESS | XM_FEAT_STREAM_ZERO_RUNS |
                    XM_FEAT_STREAM_LZ4_BLOCKS);
    CU_ASSERT_EQUAL(rc, XM_OK);
    /* an agent of the build before bare lz4 blocks */
    teardown();
    setup();
    CU_ASSERT_EQUAL(channel_features(XM_PROTO_FEATURES,
                                     XM_FEAT_STREAM_COMPRESS |
                                     XM_FEAT_STREAM_ZERO_RUNS, &rc),
                    XM_FEAT_STREAM_COMPRESS | XM_FEAT_STREAM_ZERO_RUNS);
    CU_ASSERT_EQUAL(rc, XM_OK);
    /* an agent of the build before zero runs: compression only */
    teardown();
    setup();
    CU_ASSERT_EQUAL(channel_features(XM_PROTO_FEATURES,
                                     XM_FEAT_STREAM_COMPRESS, &rc),
                    XM_FEAT_STREAM_COMPRESS);
    CU_ASSERT_EQUAL(rc, XM_OK);
}

/* B plays an agent that does not offer STREAM_COMPRESS, then A does:
 * either way the feature is off and the flag cannot be sent. */
static void
test_compression_not_offered(void)
{
    int rc = 12345;

    CU_ASSERT_EQUAL(channel_features(XM_PROTO_FEATURES, 0, &rc), 0);
    CU_ASSERT_EQUAL(rc, XM_ERR_INVAL);
    teardown();
    setup();
    rc = 12345;
    CU_ASSERT_EQUAL(channel_features(0, XM_PROTO_FEATURES, &rc), 0);
    CU_ASSERT_EQUAL(rc, XM_ERR_INVAL);
}

static CU_TestInfo peer_tests[] = {
    { "status over mutual TLS", test_status_over_tls },
    { "an answered peer hangs up quietly", test_answered_close_quiet },
    { "a host that is no peer is refused", test_stranger_refused },
    { "a certificate naming another host is refused",
      test_impostor_refused },
    { "a peer that is down: the reason", test_peer_down },
    { "no TLS material: said, not tried", test_without_tls },
    { "unreadable TLS files stop the start", test_bad_tls_files },
    { "stream compression negotiated", test_compression_negotiated },
    { "a peer without stream compression",
      test_compression_not_offered },
    CU_TEST_INFO_NULL,
};

CU_SuiteInfo xm_test_suites[] = {
    { "peer", suite_init, suite_cleanup, setup, teardown, peer_tests },
    CU_SUITE_INFO_NULL,
};
