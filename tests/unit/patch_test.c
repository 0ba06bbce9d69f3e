/*
 * patch_test.c -- `xl patch apply` as the agent runs it (agent_patch.c),
 * against the doubles: the in-process xenstore, the fake hypervisor
 * (with a known build-id and its livepatch rules), fake peers answered
 * by the test, a fake clock, and a temporary state_dir that holds the
 * journal (patch-flow), the host state, a manifest and a synthetic
 * payload built with tests/fakes/lp_payload.
 *
 * Covers the flow drain -> pre-flight -> upload -> apply -> verify ->
 * undrain in place and with a drain, dry runs, pre-flight refusals, an
 * injected failure at every step (every livepatch hypercall, and every
 * journal write: a directory in place of the journal's temporary file
 * makes the write fail, even for root), the manifest's verify command,
 * the resume of a journal left in every unfinished phase, and
 * reboot-required.  A request goes in as /tool/xenmaint/request/<id>;
 * the test pumps the loop (moving the fake clock) until the job ends
 * and looks at the job's keys, the host state, the hypervisor's
 * payloads and the journal.
 */
#include <errno.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "agent.h"
#include "clock_fake.h"
#include "harness.h"
#include "hv_fake.h"
#include "loop.h"
#include "lp_payload.h"
#include "xm_err.h"
#include "xm_json.h"
#include "xm_log.h"
#include "xm_patchflow.h"
#include "xm_xs_big.h"
#include "xs_fake.h"

#define ID_LEN LP_PAYLOAD_ID_LEN
#define NAME "xsa999"                   /* the livepatch's name */
#define PUMP_MAX 3000                   /* loop turns before giving up */

static const char XEN_HEX[] = "5e00b0fd12a52f002268d3e375ba74e84735c1de";
static const char OTHER_HEX[] = "00112233445566778899aabbccddeeff00112233";
static const char SELF_HEX[] = "c64916bae2d8ad63c360cb050482d1f7d9bee1c7";

/* ---- a fake peer transport: answers when the test pumps ---- */

struct fake_peers {
    unsigned queries;
    const char *names[8];
    unsigned n;
    agent_peer_status_fn *done;
    void *arg;
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

static const struct agent_peer_ops fake_peer_ops = { fake_query };

/* ---- fixture ---- */

static char dir[64];                    /* state_dir, manifest, payload */
static char manifest[128], payload[128];
static char sha_hex[2 * 32 + 1];        /* the payload's sha256 */
static struct xs_fake *store;
static struct xm_xs xs_agent, xs_client;
static struct hv_fake *hv;
static struct xm_hv hv_conn;
static struct clock_fake clk;
static struct xm_clock fclock;
static struct xm_loop *loop;
static struct xm_config cfg;
static struct fake_peers peers;
static struct agent *agent;
static int64_t tick_ms;                 /* fake time per loop turn */

/* What the xenstore hook saw: the job's steps and the host states, in
 * order (repeats folded). */
#define SEEN_MAX 32
static char steps_seen[SEEN_MAX][32];
static unsigned n_steps_seen;
static char states_seen[SEEN_MAX][32];
static unsigned n_states_seen;
/* When the hook sees a write of trip_value to a path ending in
 * trip_suffix, the journal's writes start to fail. */
static const char *trip_suffix, *trip_value;
static bool tripped;
/* The job's progress went down at some point (it must not). */
static unsigned last_progress;
static bool progress_went_back;
/* write_manifest: the payload is applied with REPLACE */
static bool manifest_replace;
/* The manifest has a verify command: a real child, whose output and
 * exit come in real time while the fake clock runs as fast as the loop
 * turns.  run_job then gives every turn 2 ms of real time, so a loaded
 * machine's slow fork does not meet the fake 60 s bound (fake time runs
 * at most tick_ms / 2 times faster than real time). */
static bool real_child;

static void
path_in(char *buf, size_t len, const char *leaf)
{
    snprintf(buf, len, "%s/%s", dir, leaf);
}

/* Journal writes fail from now on: its temporary file is a directory,
 * so fopen(..., "w") fails (as root too) and the record on disk stays
 * as it was. */
static void
break_journal(void)
{
    char p[128];

    path_in(p, sizeof(p), "patch-flow.tmp");
    CU_ASSERT_EQUAL(mkdir(p, 0700), 0);
    tripped = true;
}

/* value (len bytes, not NUL-terminated) as a string, cut to fit. */
static void
text_of(char *buf, size_t size, const char *value, size_t len)
{
    snprintf(buf, size, "%.*s", (int)(len < size ? len : size - 1), value);
}

static void
remember(char (*list)[32], unsigned *n, const char *value, size_t len)
{
    char v[32];

    text_of(v, sizeof(v), value, len);
    if (*n && !strcmp(list[*n - 1], v))
        return;
    if (*n < SEEN_MAX)
        snprintf(list[(*n)++], sizeof(v), "%s", v);
}

static bool
ends_with(const char *s, const char *tail)
{
    size_t n = strlen(s), t = strlen(tail);

    return n >= t && !strcmp(s + n - t, tail);
}

static void
on_write(void *arg, const char *path, const char *value, size_t len)
{
    (void)arg;
    if (ends_with(path, "/step"))
        remember(steps_seen, &n_steps_seen, value, len);
    if (ends_with(path, "/progress")) {
        char v[8];
        unsigned pct;

        text_of(v, sizeof(v), value, len);
        pct = (unsigned)strtoul(v, NULL, 10);

        if (pct < last_progress && pct != 0)    /* 0: a new job */
            progress_went_back = true;
        last_progress = pct;
    }
    if (!strcmp(path, "/tool/xenmaint/host/state"))
        remember(states_seen, &n_states_seen, value, len);
    if (trip_suffix && !tripped && ends_with(path, trip_suffix) &&
        strlen(trip_value) == len && !memcmp(value, trip_value, len))
        break_journal();
}

static void
hex_to(const char *hex, uint8_t out[ID_LEN])
{
    struct xm_buildid id;

    CU_ASSERT_EQUAL_FATAL(xm_buildid_parse(hex, &id), XM_OK);
    CU_ASSERT_EQUAL_FATAL(id.len, ID_LEN);
    memcpy(out, id.id, ID_LEN);
}

static void
set_build_id(const char *hex)
{
    struct xm_hostinfo hi;

    memset(&hi, 0, sizeof(hi));
    hi.total_kib = 16ull * 1024 * 1024;
    hi.free_kib = hi.total_kib;
    hi.nr_cpus = 8;
    snprintf(hi.xen_version, sizeof(hi.xen_version), "4.17.5");
    hi.build_id_len = ID_LEN;
    hex_to(hex, hi.build_id);
    hv_fake_set_hostinfo(hv, &hi);
}

/* Build the payload (self SELF_HEX, depends and xen_depends xen_hex) at
 * path; its sha256 into sha_hex. */
static void
write_payload(const char *path, const char *xen_hex)
{
    struct lp_spec s;
    uint8_t *img = NULL, md[EVP_MAX_MD_SIZE];
    unsigned mdlen = 0;
    size_t len = 0;
    char err[256] = "";

    lp_spec_default(&s);
    hex_to(SELF_HEX, s.self);
    hex_to(xen_hex, s.dep);
    hex_to(xen_hex, s.xen);
    if (lp_payload_build(&s, path, &img, &len, err, sizeof(err)))
        fprintf(stderr, "\n  lp_payload_build: %s\n", err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(img);
    CU_ASSERT_FATAL(EVP_Digest(img, len, md, &mdlen, EVP_sha256(), NULL));
    CU_ASSERT_EQUAL_FATAL(mdlen, 32);
    xm_buildid_hex(md, mdlen, sha_hex);
    free(img);
}

/* The manifest: one payload (the file xsa999.livepatch, sha, for the
 * hypervisor build_hex), no_payload reboot-required, and verify when
 * command is given. */
static void
write_manifest(const char *sha, const char *build_hex, const char *command,
               const char *expect)
{
    char verify[512] = "";
    FILE *f;

    if (command)
        snprintf(verify, sizeof(verify), ",\"verify\":{\"command\":\"%s\","
                 "\"expect\":\"%s\"}", command, expect);
    real_child = command != NULL;
    f = fopen(manifest, "w");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    fprintf(f, "{\"version\":1,\"xsa\":\"XSA-999\",\"title\":\"a test "
            "advisory\",\"payloads\":[{\"name\":\"" NAME "\",\"file\":"
            "\"" NAME ".livepatch\",\"sha256\":\"%s\",\"xen_build_ids\":"
            "[\"%s\"]%s}],\"no_payload\":\"reboot-required\"%s}\n", sha,
            build_hex, manifest_replace ? ",\"replace\":true" : "", verify);
    CU_ASSERT_EQUAL_FATAL(fclose(f), 0);
}

static void
agent_up(void)
{
    struct agent_deps deps;

    loop = xm_loop_new(&fclock);
    CU_ASSERT_PTR_NOT_NULL_FATAL(loop);
    memset(&deps, 0, sizeof(deps));
    deps.cfg = &cfg;
    deps.xs = &xs_agent;
    deps.hv = &hv_conn;
    deps.clock = &fclock;
    deps.loop = loop;
    deps.peers.ops = &fake_peer_ops;
    deps.peers.ctx = &peers;
    deps.pid = 4242;
    CU_ASSERT_EQUAL_FATAL(agent_new(&deps, &agent), XM_OK);
}

static void
agent_down(void)
{
    if (agent) {
        agent_stop(agent);
        agent_free(agent);
        agent = NULL;
    }
    xm_loop_free(loop);
    loop = NULL;
}

static void
setup(void)
{
    char conf[512], err[128];
    int n;

    xm_log_open("patch_test", true, XM_LOG_ERR);
    memset(&peers, 0, sizeof(peers));
    n_steps_seen = n_states_seen = 0;
    trip_suffix = trip_value = NULL;
    tripped = false;
    last_progress = 0;
    progress_went_back = false;
    manifest_replace = false;
    real_child = false;
    tick_ms = 10;
    snprintf(dir, sizeof(dir), "/tmp/xm-patch-XXXXXX");
    CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(dir));
    path_in(manifest, sizeof(manifest), "xsa999.json");
    path_in(payload, sizeof(payload), NAME ".livepatch");

    store = xs_fake_new();
    CU_ASSERT_PTR_NOT_NULL_FATAL(store);
    CU_ASSERT_EQUAL_FATAL(xs_fake_connect(store, 0, &xs_agent), XM_OK);
    CU_ASSERT_EQUAL_FATAL(xs_fake_connect(store, 0, &xs_client), XM_OK);
    xs_fake_on_write(store, on_write, NULL);
    hv = hv_fake_new();
    CU_ASSERT_PTR_NOT_NULL_FATAL(hv);
    set_build_id(XEN_HEX);
    CU_ASSERT_EQUAL_FATAL(hv_fake_connect(hv, &hv_conn), XM_OK);
    clock_fake_init(&clk, 1000, 1700000000);
    clock_fake_as_clock(&clk, &fclock);

    n = snprintf(conf, sizeof(conf),
                 "host_name = \"A\"\n"
                 "peers = [ \"B=192.0.2.2:7474\" ]\n"
                 "state_dir = \"%s\"\n"
                 "jobs_kept = 8\n", dir);
    CU_ASSERT_FATAL(n > 0 && (size_t)n < sizeof(conf));
    CU_ASSERT_EQUAL_FATAL(xm_config_load_data("t.conf", conf, (size_t)n,
                                              &cfg, err, sizeof(err)),
                          XM_OK);
    write_payload(payload, XEN_HEX);
    write_manifest(sha_hex, XEN_HEX, NULL, NULL);
    agent_up();
}

static void
teardown(void)
{
    char cmd[128];

    agent_down();
    xm_config_dispose(&cfg);
    xm_hv_close(&hv_conn);
    hv_fake_free(hv);
    xm_xs_close(&xs_agent);
    xm_xs_close(&xs_client);
    xs_fake_free(store);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    CU_ASSERT_EQUAL(system(cmd), 0);
}

/* ---- driving and looking ---- */

/* The job's key, or "" when it has none. */
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

static bool
job_over(const char *id)
{
    char *s = job_key(id, "state");
    bool over = !strcmp(s, "done") || !strcmp(s, "failed");

    free(s);
    return over;
}

/* Every peer asked says it is unreachable: the drain moves nothing. */
static void
answer_peers(void)
{
    struct agent_peer_status st[8];
    agent_peer_status_fn *done = peers.done;

    for (unsigned i = 0; i < peers.n; i++) {
        st[i].name = peers.names[i];
        st[i].rc = XM_ERR_TIMEOUT;
        st[i].error = "did not answer in time";
        st[i].status = NULL;
    }
    peers.done = NULL;
    done(peers.arg, st, peers.n);
}

/* Turn the loop (tick_ms of fake time a turn, answering the peers)
 * until job id is over. */
static void
run_job(const char *id)
{
    for (unsigned i = 0; i < PUMP_MAX && !job_over(id); i++) {
        if (peers.done)
            answer_peers();
        clock_fake_advance(&clk, tick_ms);
        CU_ASSERT_EQUAL_FATAL(xm_loop_run_once(loop, 5, NULL), XM_OK);
        if (real_child)
            nanosleep(&(struct timespec){ .tv_nsec = 2000000 }, NULL);
    }
    CU_ASSERT_FATAL(job_over(id));
}

static void
pump(unsigned turns)
{
    for (unsigned i = 0; i < turns; i++) {
        clock_fake_advance(&clk, 10);
        CU_ASSERT_EQUAL(xm_loop_run_once(loop, 0, NULL), XM_OK);
    }
}

static void
submit(const char *id, const char *json)
{
    char path[XM_XS_PATH_MAX];

    snprintf(path, sizeof(path), "/tool/xenmaint/request/%s", id);
    CU_ASSERT_EQUAL_FATAL(xm_xs_write_str(&xs_client, XM_XS_NO_TXN, path,
                                          json), XM_OK);
}

/* A patch apply of path (a manifest or a payload) with extra fields. */
static void
submit_apply(const char *id, const char *path, const char *extra)
{
    char json[512];

    snprintf(json, sizeof(json), "{\"version\":1,\"op\":\"patch-apply\","
             "\"payload\":\"%s\"%s%s}", path, extra ? "," : "",
             extra ? extra : "");
    submit(id, json);
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
assert_job_key(const char *id, const char *key, const char *want)
{
    char *v = job_key(id, key);

    CU_ASSERT_STRING_EQUAL(v, want);
    free(v);
}

static void
assert_str(const xm_json *obj, const char *key, const char *want)
{
    const char *s = NULL;

    CU_ASSERT_EQUAL(xm_json_get_str(obj, key, &s), XM_OK);
    if (s && strcmp(s, want))
        fprintf(stderr, "\n  %s: '%s' (wanted '%s')\n", key, s, want);
    CU_ASSERT_STRING_EQUAL(s ? s : "", want);
}

/* result.error.code is code; the message contains each of the
 * NULL-terminated words. */
static void
assert_error(const char *id, const char *code, ...)
{
    xm_json *doc = job_result(id);
    const xm_json *e = xm_json_get(doc, "error");
    const char *msg = "", *word;
    va_list ap;

    CU_ASSERT_PTR_NOT_NULL_FATAL(e);
    assert_str(e, "code", code);
    CU_ASSERT_EQUAL(xm_json_get_str(e, "message", &msg), XM_OK);
    va_start(ap, code);
    while ((word = va_arg(ap, const char *))) {
        if (!strstr(msg, word))
            fprintf(stderr, "\n  '%s' not in the message '%s'\n", word,
                    msg);
        CU_ASSERT_PTR_NOT_NULL(strstr(msg, word));
    }
    va_end(ap);
    xm_json_free(doc);
}

static char *
host_key(const char *leaf)
{
    char path[128], *v = NULL;

    snprintf(path, sizeof(path), "/tool/xenmaint/host/%s", leaf);
    CU_ASSERT_EQUAL(xm_xs_read(&xs_client, XM_XS_NO_TXN, path, &v), XM_OK);
    return v ? v : strdup("");
}

static void
assert_host(const char *state)
{
    char *s = host_key("state");

    CU_ASSERT_STRING_EQUAL(s, state);
    free(s);
}

/* Cordoned, with a reason that names the advisory. */
static void
assert_cordoned(void)
{
    char *r = host_key("reason");

    assert_host("cordoned");
    CU_ASSERT_PTR_NOT_NULL(strstr(r, "XSA-999"));
    free(r);
}

/* The state of name in the hypervisor, 0 when not loaded.  Clears the
 * fault rules first: only when the flow is over. */
static int
lp_state(const char *name)
{
    struct xm_lp_status st;

    fault_clear(hv_fake_fault(hv));
    if (hv_conn.ops->lp_get(hv_conn.ctx, name, &st) != XM_OK)
        return 0;
    return st.state;
}

static size_t
lp_count(void)
{
    struct xm_lp_status *list = NULL;
    size_t n = 0;

    fault_clear(hv_fake_fault(hv));
    CU_ASSERT_EQUAL(hv_conn.ops->lp_list(hv_conn.ctx, &list, &n), XM_OK);
    free(list);
    return n;
}

static unsigned
calls(const char *op)
{
    return fault_count(hv_fake_fault(hv), op);
}

/* The journal's record; false when there is none. */
static bool
journal_read(struct xm_pf_rec *r)
{
    char path[128], text[XM_PF_FILE_MAX], err[256];
    FILE *f;
    size_t n;

    xm_pf_rec_init(r);
    path_in(path, sizeof(path), "patch-flow");
    f = fopen(path, "r");
    if (!f)
        return false;
    n = fread(text, 1, sizeof(text), f);
    fclose(f);
    CU_ASSERT_EQUAL(xm_pf_decode(text, n, r, err, sizeof(err)), XM_OK);
    return true;
}

static void
assert_journal(const char *phase)
{
    struct xm_pf_rec r;

    CU_ASSERT_FATAL(journal_read(&r));
    if (!xm_pf_phase_name((int)r.phase) ||
        strcmp(xm_pf_phase_name((int)r.phase), phase))
        fprintf(stderr, "\n  journal phase %s (wanted %s)\n",
                xm_pf_phase_name((int)r.phase), phase);
    CU_ASSERT_STRING_EQUAL(xm_pf_phase_name((int)r.phase), phase);
    xm_pf_rec_dispose(&r);
}

/* No journal, or one in a final phase. */
static void
assert_no_open_journal(void)
{
    struct xm_pf_rec r;

    if (journal_read(&r))
        CU_ASSERT(xm_pf_phase_final(r.phase));
    xm_pf_rec_dispose(&r);
}

/* The result's steps are exactly the NULL-terminated (step, result)
 * pairs. */
static void
assert_steps(const char *id, ...)
{
    xm_json *doc = job_result(id);
    const xm_json *steps = xm_json_get(doc, "steps");
    const char *name;
    size_t i = 0;
    va_list ap;

    CU_ASSERT_PTR_NOT_NULL_FATAL(steps);
    va_start(ap, id);
    while ((name = va_arg(ap, const char *))) {
        const char *result = va_arg(ap, const char *);
        const xm_json *s = xm_json_at(steps, i++);

        CU_ASSERT_PTR_NOT_NULL(s);
        if (!s)
            break;
        assert_str(s, "step", name);
        assert_str(s, "result", result);
    }
    va_end(ap);
    CU_ASSERT_EQUAL(xm_json_len(steps), i);
    xm_json_free(doc);
}

/* The step key went through exactly the NULL-terminated values. */
static void
assert_steps_seen(const char *first, ...)
{
    const char *name = first;
    unsigned i = 0;
    va_list ap;

    va_start(ap, first);
    for (; name; name = va_arg(ap, const char *), i++) {
        CU_ASSERT_FATAL(i < n_steps_seen);
        CU_ASSERT_STRING_EQUAL(steps_seen[i], name);
    }
    va_end(ap);
    CU_ASSERT_EQUAL(n_steps_seen, i);
}

static bool
state_seen(const char *state)
{
    for (unsigned i = 0; i < n_states_seen; i++)
        if (!strcmp(states_seen[i], state))
            return true;
    return false;
}

static void
start(void)
{
    CU_ASSERT_EQUAL_FATAL(agent_start(agent), XM_OK);
    pump(2);
}

/* ---- apply ---- */

static void
test_in_place_applied(void)
{
    xm_json *doc;
    unsigned uploads, applies;

    start();
    submit_apply("p1", manifest, "\"in_place\":true");
    run_job("p1");
    assert_job("p1", "done");
    doc = job_result("p1");
    CU_ASSERT_PTR_NOT_NULL_FATAL(doc);
    assert_str(doc, "state", "applied");
    assert_str(doc, "name", NAME);
    assert_str(doc, "xsa", "XSA-999");
    assert_str(doc, "build_id", SELF_HEX);
    assert_str(doc, "xen_build_id", XEN_HEX);
    CU_ASSERT_PTR_NULL(xm_json_get(doc, "drain"));
    xm_json_free(doc);
    /* in place: one pre-flight, and the bytes it checked are uploaded */
    assert_steps("p1", "preflight", "ok", "upload", "ok", "apply", "ok",
                 "verify", "ok", NULL);
    assert_job_key("p1", "progress", "100");
    CU_ASSERT_FALSE(progress_went_back);
    assert_job_key("p1", "step", "verify");
    assert_steps_seen("preflight", "upload", "apply", "verify", NULL);
    CU_ASSERT_EQUAL(lp_state(NAME), XM_LP_APPLIED);
    CU_ASSERT_EQUAL(lp_count(), 1);
    assert_journal("done");
    assert_host("active");
    CU_ASSERT_EQUAL(n_states_seen, 1);          /* active, at start */

    /* again: already applied, nothing uploaded or applied */
    uploads = calls("lp_upload");
    applies = calls("lp_apply");
    submit_apply("p2", manifest, "\"in_place\":true");
    run_job("p2");
    assert_job("p2", "done");
    doc = job_result("p2");
    assert_str(doc, "state", "already-applied");
    xm_json_free(doc);
    CU_ASSERT_EQUAL(calls("lp_upload"), uploads);
    CU_ASSERT_EQUAL(calls("lp_apply"), applies);
    CU_ASSERT_EQUAL(lp_count(), 1);
    assert_host("active");
}

/* A bare payload (NAME.livepatch, no manifest) in place. */
static void
test_bare_payload(void)
{
    start();
    submit_apply("p1", payload, "\"in_place\":true");
    run_job("p1");
    assert_job("p1", "done");
    assert_steps("p1", "preflight", "ok", "upload", "ok", "apply", "ok",
                 "verify", "ok", NULL);
    CU_ASSERT_EQUAL(lp_state(NAME), XM_LP_APPLIED);
    assert_journal("done");
}

/* The hypervisor acts asynchronously (rc -EAGAIN for a few reads):
 * the flow polls and still applies once. */
static void
test_deferred_actions(void)
{
    start();
    hv_fake_lp_defer(hv, 3);
    submit_apply("p1", manifest, "\"in_place\":true");
    run_job("p1");
    assert_job("p1", "done");
    CU_ASSERT_EQUAL(calls("lp_apply"), 1);
    CU_ASSERT_EQUAL(lp_state(NAME), XM_LP_APPLIED);
}

static void
test_drain_apply_undrain(void)
{
    xm_json *doc;
    const xm_json *drain, *undrain;

    start();
    submit_apply("p1", manifest, NULL);
    run_job("p1");
    assert_job("p1", "done");
    CU_ASSERT_EQUAL(peers.queries, 1);          /* the drain asked B */
    doc = job_result("p1");
    CU_ASSERT_PTR_NOT_NULL_FATAL(doc);
    assert_str(doc, "state", "applied");
    assert_str(doc, "host_state", "active");
    drain = xm_json_get(doc, "drain");
    undrain = xm_json_get(doc, "undrain");
    CU_ASSERT_PTR_NOT_NULL_FATAL(drain);
    CU_ASSERT_PTR_NOT_NULL_FATAL(undrain);
    assert_str(drain, "state", "drained");
    CU_ASSERT_EQUAL(xm_json_len(xm_json_get(drain, "moves")), 0);
    CU_ASSERT_EQUAL(xm_json_len(xm_json_get(undrain, "moves")), 0);
    xm_json_free(doc);
    assert_steps("p1", "preflight", "ok", "drain", "ok", "preflight", "ok",
                 "upload", "ok", "apply", "ok", "verify", "ok", "undrain",
                 "ok", NULL);
    assert_steps_seen("preflight", "drain", "preflight", "upload", "apply",
                      "verify", "undrain", NULL);
    assert_job_key("p1", "progress", "100");
    CU_ASSERT_FALSE(progress_went_back);
    CU_ASSERT(state_seen("draining"));
    CU_ASSERT(state_seen("drained"));
    CU_ASSERT(state_seen("patching"));
    assert_host("active");
    CU_ASSERT_EQUAL(lp_state(NAME), XM_LP_APPLIED);
    CU_ASSERT_EQUAL(calls("lp_apply"), 1);
    assert_journal("done");
}

static void
test_dry_run(void)
{
    xm_json *doc;

    start();
    submit_apply("p1", manifest, "\"dry_run\":true");
    run_job("p1");
    assert_job("p1", "done");
    doc = job_result("p1");
    assert_str(doc, "state", "dry-run");
    CU_ASSERT_PTR_NOT_NULL(xm_json_get(doc, "drain"));
    xm_json_free(doc);
    CU_ASSERT_EQUAL(peers.queries, 1);          /* the drain was planned */

    submit_apply("p2", manifest, "\"dry_run\":true,\"in_place\":true");
    run_job("p2");
    assert_job("p2", "done");
    doc = job_result("p2");
    assert_str(doc, "state", "dry-run");
    xm_json_free(doc);

    CU_ASSERT_EQUAL(calls("lp_upload"), 0);
    CU_ASSERT_EQUAL(calls("lp_action"), 0);
    CU_ASSERT_EQUAL(lp_count(), 0);
    assert_host("active");
    CU_ASSERT_EQUAL(n_states_seen, 1);
    assert_no_open_journal();
}

/* Refused by the pre-flight: nothing drained, nothing uploaded. */
static void
assert_refused_early(const char *id)
{
    assert_job(id, "failed");
    assert_steps(id, "preflight", "failed", NULL);
    CU_ASSERT_EQUAL(peers.queries, 0);
    CU_ASSERT_EQUAL(calls("lp_upload"), 0);
    CU_ASSERT_EQUAL(lp_count(), 0);
    assert_host("active");
    CU_ASSERT_EQUAL(n_states_seen, 1);
    assert_no_open_journal();
}

static void
test_refused_other_build(void)
{
    char other[128];

    start();
    /* a bare payload for another hypervisor */
    path_in(other, sizeof(other), "xsa998.livepatch");
    write_payload(other, OTHER_HEX);
    submit_apply("p1", other, NULL);
    run_job("p1");
    assert_error("p1", "state", "xen_depends", OTHER_HEX, XEN_HEX, NULL);
    assert_refused_early("p1");
}

static void
test_refused_manifest_mismatch(void)
{
    start();
    /* the manifest lists this hypervisor, the file is for another */
    write_payload(payload, OTHER_HEX);
    write_manifest(sha_hex, XEN_HEX, NULL, NULL);
    submit_apply("p1", manifest, NULL);
    run_job("p1");
    assert_error("p1", "invalid", OTHER_HEX, NULL);
    assert_refused_early("p1");
}

static void
test_refused_sha(void)
{
    char bad[sizeof(sha_hex)];

    start();
    snprintf(bad, sizeof(bad), "%s", sha_hex);
    bad[0] = bad[0] == '0' ? '1' : '0';
    write_manifest(bad, XEN_HEX, NULL, NULL);
    submit_apply("p1", manifest, NULL);
    run_job("p1");
    assert_error("p1", "invalid", "sha256", sha_hex, bad, NULL);
    assert_refused_early("p1");
}

/* ---- a failure at every step ---- */

/* After a failure past the drain: failed, cordoned with the reason, the
 * journal closed as failed, none of our payloads applied. */
static void
assert_failed_cordoned(const char *id)
{
    assert_job(id, "failed");
    assert_cordoned();
    assert_journal("failed");
    CU_ASSERT_NOT_EQUAL(lp_state(NAME), XM_LP_APPLIED);
}

static void
test_fail_upload(void)
{
    start();
    fault_arm(hv_fake_fault(hv), "lp_upload", 1, XM_ERR_HV);
    submit_apply("p1", manifest, NULL);
    run_job("p1");
    assert_error("p1", "hypervisor", "refused the upload", NAME, NULL);
    assert_failed_cordoned("p1");
    CU_ASSERT_EQUAL(lp_count(), 0);
    CU_ASSERT_EQUAL(calls("lp_action"), 0);
    assert_job_key("p1", "step", "upload");
}

static void
test_fail_upload_in_place(void)
{
    start();
    fault_arm(hv_fake_fault(hv), "lp_upload", 1, XM_ERR_HV);
    submit_apply("p1", manifest, "\"in_place\":true");
    run_job("p1");
    assert_job("p1", "failed");
    assert_error("p1", "hypervisor", "refused the upload", NULL);
    assert_host("active");                      /* in place: untouched */
    CU_ASSERT_EQUAL(n_states_seen, 1);
    assert_journal("failed");
    CU_ASSERT_EQUAL(lp_count(), 0);
}

static void
test_fail_apply(void)
{
    start();
    fault_arm(hv_fake_fault(hv), "lp_apply", 1, XM_ERR_HV);
    submit_apply("p1", manifest, NULL);
    run_job("p1");
    assert_error("p1", "reverted", "refused to apply", NAME, NULL);
    assert_failed_cordoned("p1");
    CU_ASSERT_EQUAL(calls("lp_unload"), 1);     /* unloaded again */
    CU_ASSERT_EQUAL(lp_count(), 0);
}

static void
test_fail_apply_result(void)
{
    start();
    /* the apply is accepted, but its result is -ETIMEDOUT */
    fault_arm(hv_fake_fault(hv), "lp_action_result", 1, -ETIMEDOUT);
    submit_apply("p1", manifest, NULL);
    run_job("p1");
    assert_error("p1", "reverted", "not applied", NULL);
    assert_failed_cordoned("p1");
    CU_ASSERT_EQUAL(calls("lp_apply"), 1);
    CU_ASSERT_EQUAL(lp_count(), 0);
}

static void
test_fail_status_read(void)
{
    start();
    /* the apply lands, but reading its status fails once: read again */
    fault_arm(hv_fake_fault(hv), "lp_get", 1, XM_ERR_HV);
    submit_apply("p1", manifest, NULL);
    run_job("p1");
    assert_job("p1", "done");
    CU_ASSERT_EQUAL(calls("lp_apply"), 1);
    CU_ASSERT_EQUAL(calls("lp_unload"), 0);
    CU_ASSERT_EQUAL(lp_state(NAME), XM_LP_APPLIED);
    assert_host("active");
}

static void
test_fail_status_unreadable(void)
{
    start();
    /* the apply lands, its status never reads: given up at the
     * deadline (30 s), the state reported unknown, the host cordoned */
    tick_ms = 100;
    fault_arm(hv_fake_fault(hv), "lp_get", XM_FAULT_ALWAYS, XM_ERR_HV);
    submit_apply("p1", manifest, NULL);
    run_job("p1");
    assert_job("p1", "failed");
    assert_error("p1", "timeout", "state is unknown", NULL);
    assert_cordoned();
    assert_journal("failed");
    CU_ASSERT(calls("lp_get") > 100);
    CU_ASSERT_EQUAL(calls("lp_apply"), 1);
    CU_ASSERT_EQUAL(lp_state(NAME), XM_LP_APPLIED);    /* "unknown" */
}

static void
test_fail_list_preflight(void)
{
    start();
    fault_arm(hv_fake_fault(hv), "lp_list", 1, XM_ERR_HV);
    submit_apply("p1", manifest, NULL);
    run_job("p1");
    assert_error("p1", "hypervisor", "hypervisor's state", NULL);
    assert_refused_early("p1");
}

static void
test_fail_list_verify(void)
{
    start();
    /* pre-flight before the drain, after it; the third list verifies */
    fault_arm(hv_fake_fault(hv), "lp_list", 3, XM_ERR_HV);
    submit_apply("p1", manifest, NULL);
    run_job("p1");
    /* unverified: taken out again */
    assert_error("p1", "reverted", "cannot read the hypervisor", NULL);
    assert_steps("p1", "preflight", "ok", "drain", "ok", "preflight", "ok",
                 "upload", "ok", "apply", "ok", "verify", "failed",
                 "revert", "ok", NULL);
    assert_failed_cordoned("p1");
    CU_ASSERT_EQUAL(calls("lp_revert"), 1);
    CU_ASSERT_EQUAL(lp_count(), 0);
}

/* ---- a failure at every journal transition ---- */

/* The journal's writes fail once the step key reads after_step (NULL:
 * from the start); the flow with a drain stops at the transition after
 * it. */
static void
journal_fails(const char *after_step)
{
    if (after_step) {
        trip_suffix = "/step";
        trip_value = after_step;
    } else {
        break_journal();
    }
    start();
    submit_apply("p1", manifest, NULL);
    run_job("p1");
    CU_ASSERT(tripped);
}

static void
assert_no_journal(void)
{
    struct xm_pf_rec r;

    CU_ASSERT_FALSE(journal_read(&r));
    xm_pf_rec_dispose(&r);
}

/* An agent started after the flow ended with a journal write failing
 * (the disk fixed meanwhile) resumes nothing. */
static void
restart_resumes_nothing(const char *id)
{
    char p[128], *before = job_key(id, "state"), *after;
    unsigned uploads = calls("lp_upload"), actions = calls("lp_action");
    unsigned queries = peers.queries, n_states = n_states_seen;

    agent_down();
    n_steps_seen = 0;
    path_in(p, sizeof(p), "patch-flow.tmp");
    CU_ASSERT_EQUAL(rmdir(p), 0);
    agent_up();
    start();
    pump(5);
    CU_ASSERT_EQUAL(agent_jobs_running(agent), 0);
    after = job_key(id, "state");
    CU_ASSERT_STRING_EQUAL(after, before);
    free(before);
    free(after);
    CU_ASSERT_EQUAL(calls("lp_upload"), uploads);
    CU_ASSERT_EQUAL(calls("lp_action"), actions);
    CU_ASSERT_EQUAL(peers.queries, queries);
    CU_ASSERT_EQUAL(n_states_seen, n_states);   /* the same state */
    CU_ASSERT_EQUAL(n_steps_seen, 0);           /* no step taken */
}

static void
test_journal_draining(void)
{
    journal_fails(NULL);
    assert_job("p1", "failed");
    assert_error("p1", "io", "journal", NULL);
    CU_ASSERT_EQUAL(peers.queries, 0);          /* never drained */
    assert_host("active");
    CU_ASSERT_EQUAL(calls("lp_upload"), 0);
    assert_no_journal();                        /* none was written */
    restart_resumes_nothing("p1");
}

static void
test_journal_uploading(void)
{
    journal_fails("drain");
    assert_job("p1", "failed");
    assert_error("p1", "io", "journal", "nothing was uploaded", NULL);
    assert_cordoned();
    CU_ASSERT_EQUAL(calls("lp_upload"), 0);
    CU_ASSERT_EQUAL(lp_count(), 0);
    /* the record left (draining) went with the failure: a restart
     * does not drain and patch again */
    assert_no_journal();
    restart_resumes_nothing("p1");
}

static void
test_journal_applying(void)
{
    journal_fails("upload");
    assert_job("p1", "failed");
    assert_error("p1", "io", "journal", "nothing applied", NULL);
    assert_cordoned();
    CU_ASSERT_EQUAL(calls("lp_apply"), 0);
    CU_ASSERT_EQUAL(lp_state(NAME), 0);    /* unloaded again */
    assert_no_journal();
    restart_resumes_nothing("p1");
}

static void
test_journal_verifying(void)
{
    journal_fails("apply");
    assert_job("p1", "failed");
    assert_error("p1", "io", "journal", "applied, not verified", NULL);
    assert_cordoned();
    CU_ASSERT_EQUAL(calls("lp_apply"), 1);
    CU_ASSERT_EQUAL(lp_state(NAME), XM_LP_APPLIED);    /* as it says */
    assert_no_journal();
    restart_resumes_nothing("p1");
}

static void
test_journal_undraining(void)
{
    journal_fails("verify");
    assert_job("p1", "failed");
    assert_error("p1", "io", "journal", "cordoned", NULL);
    assert_cordoned();
    CU_ASSERT_EQUAL(lp_state(NAME), XM_LP_APPLIED);    /* patched */
    assert_no_journal();
    restart_resumes_nothing("p1");
}

static void
test_journal_done(void)
{
    xm_json *doc;

    journal_fails("undrain");
    /* the flow is over: its end not journaled is only logged */
    assert_job("p1", "done");
    doc = job_result("p1");
    assert_str(doc, "state", "applied");
    xm_json_free(doc);
    assert_host("active");
    CU_ASSERT_EQUAL(lp_state(NAME), XM_LP_APPLIED);
    /* the record left (undraining) went: no undrain at the next start */
    assert_no_journal();
    restart_resumes_nothing("p1");
}

static void
test_journal_failed(void)
{
    /* the upload fails, and so does the journal of that failure */
    fault_arm(hv_fake_fault(hv), "lp_upload", 1, XM_ERR_HV);
    journal_fails("upload");
    assert_job("p1", "failed");
    assert_error("p1", "hypervisor", "refused the upload", NULL);
    assert_cordoned();
    CU_ASSERT_EQUAL(lp_count(), 0);
    /* the record left (uploading) went: a restart does not upload */
    assert_no_journal();
    restart_resumes_nothing("p1");
}

/* ---- the verify command ---- */

static void
test_verify_passes(void)
{
    xm_json *doc;
    const xm_json *v;
    bool matched = false;
    int64_t code = -1;
    const char *out = "";

    write_manifest(sha_hex, XEN_HEX, "echo Hello World", "Hello");
    start();
    submit_apply("p1", manifest, NULL);
    run_job("p1");
    assert_job("p1", "done");
    doc = job_result("p1");
    v = xm_json_get(doc, "verify");
    CU_ASSERT_PTR_NOT_NULL_FATAL(v);
    CU_ASSERT_EQUAL(xm_json_get_bool(v, "matched", &matched), XM_OK);
    CU_ASSERT_TRUE(matched);
    CU_ASSERT_EQUAL(xm_json_get_int(v, "exit", &code), XM_OK);
    CU_ASSERT_EQUAL(code, 0);
    CU_ASSERT_EQUAL(xm_json_get_str(v, "output", &out), XM_OK);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "Hello World"));
    xm_json_free(doc);
    CU_ASSERT_EQUAL(lp_state(NAME), XM_LP_APPLIED);
    assert_host("active");
    assert_journal("done");
}

/* The command disagrees: the payload is reverted and unloaded. */
static void
assert_reverted(const char *id, bool want_matched)
{
    xm_json *doc;
    const xm_json *v;
    bool matched = !want_matched;

    assert_job(id, "failed");
    doc = job_result(id);
    v = xm_json_get(doc, "verify");
    CU_ASSERT_PTR_NOT_NULL_FATAL(v);
    CU_ASSERT_EQUAL(xm_json_get_bool(v, "matched", &matched), XM_OK);
    CU_ASSERT_EQUAL(matched, want_matched);
    xm_json_free(doc);
    assert_steps(id, "preflight", "ok", "drain", "ok", "preflight", "ok",
                 "upload", "ok", "apply", "ok", "verify", "failed",
                 "revert", "ok", NULL);
    assert_failed_cordoned(id);
    CU_ASSERT_EQUAL(calls("lp_revert"), 1);
    CU_ASSERT_EQUAL(lp_count(), 0);
}

static void
test_verify_mismatch(void)
{
    write_manifest(sha_hex, XEN_HEX, "echo Hello World", "Goodbye");
    start();
    submit_apply("p1", manifest, NULL);
    run_job("p1");
    assert_error("p1", "reverted", "Goodbye", NULL);
    assert_reverted("p1", false);
}

/* A command that does not finish within the 60 s bound (fake time
 * runs fast here) is killed and counts as a failed verification. */
static void
test_verify_timeout(void)
{
    write_manifest(sha_hex, XEN_HEX, "sleep 30; echo Hello", "Hello");
    tick_ms = 100;
    start();
    submit_apply("p1", manifest, NULL);
    run_job("p1");
    assert_error("p1", "reverted", "did not finish in 60 s", NULL);
    assert_reverted("p1", false);
}

static void
test_verify_exit_status(void)
{
    write_manifest(sha_hex, XEN_HEX, "echo Hello; exit 3", "Hello");
    start();
    submit_apply("p1", manifest, NULL);
    run_job("p1");
    assert_error("p1", "reverted", "status 3", NULL);
    assert_reverted("p1", true);
}

/* The verify fails and so does the revert: the payload stays applied,
 * and the answer says so. */
static void
test_verify_revert_refused(void)
{
    write_manifest(sha_hex, XEN_HEX, "echo Hello World", "Goodbye");
    start();
    fault_arm(hv_fake_fault(hv), "lp_revert", 1, XM_ERR_HV);
    submit_apply("p1", manifest, NULL);
    run_job("p1");
    assert_job("p1", "failed");
    assert_error("p1", "hypervisor", "Goodbye", "still applied", NULL);
    assert_cordoned();
    assert_journal("failed");
    CU_ASSERT_EQUAL(lp_state(NAME), XM_LP_APPLIED);
}

/* ---- replace ---- */

/* An unrelated payload "old" applied before the flow. */
static void
hold_old(void)
{
    uint8_t *img = NULL;
    size_t len = 0;
    struct lp_spec s;

    lp_spec_default(&s);
    hex_to(OTHER_HEX, s.self);
    hex_to(XEN_HEX, s.dep);
    hex_to(XEN_HEX, s.xen);
    CU_ASSERT_EQUAL_FATAL(lp_payload_build(&s, NULL, &img, &len, NULL, 0),
                          XM_OK);
    CU_ASSERT_EQUAL(hv_conn.ops->lp_upload(hv_conn.ctx, "old", img, len),
                    XM_OK);
    free(img);
    CU_ASSERT_EQUAL(hv_conn.ops->lp_action(hv_conn.ctx, "old",
                                           XM_LP_APPLY, 0), XM_OK);
}

static void
test_replace(void)
{
    manifest_replace = true;
    write_manifest(sha_hex, XEN_HEX, NULL, NULL);
    hold_old();
    start();
    submit_apply("p1", manifest, "\"in_place\":true");
    run_job("p1");
    assert_job("p1", "done");
    CU_ASSERT_EQUAL(calls("lp_replace"), 1);
    CU_ASSERT_EQUAL(calls("lp_apply"), 1);      /* hold_old's own */
    CU_ASSERT_EQUAL(lp_state(NAME), XM_LP_APPLIED);
    CU_ASSERT_EQUAL(lp_state("old"), XM_LP_CHECKED);
    assert_journal("done");
}

static void
test_fail_replace(void)
{
    manifest_replace = true;
    write_manifest(sha_hex, XEN_HEX, NULL, NULL);
    hold_old();
    start();
    fault_arm(hv_fake_fault(hv), "lp_replace", 1, XM_ERR_HV);
    submit_apply("p1", manifest, NULL);
    run_job("p1");
    assert_error("p1", "reverted", "refused to apply", NULL);
    assert_failed_cordoned("p1");
    CU_ASSERT_EQUAL(lp_state("old"), XM_LP_APPLIED);   /* untouched */
    CU_ASSERT_EQUAL(lp_count(), 1);
}

/* ---- resume ---- */

/* What the hypervisor holds when the agent starts again. */
enum held {
    HELD_NONE,
    HELD_CHECKED,
    HELD_APPLIED,
};

static void
write_record(const char *job, enum xm_pf_phase phase, const char *xen_hex)
{
    struct xm_pf_rec r;
    char path[128], req[512], *json = NULL;
    FILE *f;

    xm_pf_rec_init(&r);
    snprintf(r.job, sizeof(r.job), "%s", job);
    r.phase = phase;
    snprintf(req, sizeof(req), "{\"version\":1,\"op\":\"patch-apply\","
             "\"payload\":\"%s\"}", manifest);
    r.request = req;
    snprintf(r.name, sizeof(r.name), NAME);
    snprintf(r.xsa, sizeof(r.xsa), "XSA-999");
    CU_ASSERT_EQUAL(xm_buildid_parse(SELF_HEX, &r.payload_id), XM_OK);
    CU_ASSERT_EQUAL(xm_buildid_parse(xen_hex, &r.xen_id), XM_OK);
    r.updated_s = 1700000000;
    CU_ASSERT_EQUAL_FATAL(xm_pf_encode(&r, &json), XM_OK);
    path_in(path, sizeof(path), "patch-flow");
    f = fopen(path, "w");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    fputs(json, f);
    CU_ASSERT_EQUAL(fclose(f), 0);
    free(json);
}

/* The state the last agent left: host state, the job's keys. */
static void
write_leftovers(const char *job, const char *host_state)
{
    char path[128];
    FILE *f;

    path_in(path, sizeof(path), "host-state");
    f = fopen(path, "w");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    fprintf(f, "%s\n", host_state);
    CU_ASSERT_EQUAL(fclose(f), 0);
    snprintf(path, sizeof(path), "/tool/xenmaint/job/%s/op", job);
    CU_ASSERT_EQUAL(xm_xs_write_str(&xs_client, XM_XS_NO_TXN, path,
                                    "patch-apply"), XM_OK);
    snprintf(path, sizeof(path), "/tool/xenmaint/job/%s/state", job);
    CU_ASSERT_EQUAL(xm_xs_write_str(&xs_client, XM_XS_NO_TXN, path,
                                    "running"), XM_OK);
}

static void
hold(enum held held)
{
    uint8_t *img = NULL;
    size_t len = 0;
    struct lp_spec s;

    if (held == HELD_NONE)
        return;
    lp_spec_default(&s);
    hex_to(SELF_HEX, s.self);
    hex_to(XEN_HEX, s.dep);
    hex_to(XEN_HEX, s.xen);
    CU_ASSERT_EQUAL_FATAL(lp_payload_build(&s, NULL, &img, &len, NULL, 0),
                          XM_OK);
    CU_ASSERT_EQUAL(hv_conn.ops->lp_upload(hv_conn.ctx, NAME, img, len),
                    XM_OK);
    free(img);
    if (held == HELD_APPLIED)
        CU_ASSERT_EQUAL(hv_conn.ops->lp_action(hv_conn.ctx, NAME,
                                               XM_LP_APPLY, 0), XM_OK);
}

/* An agent killed in phase with the hypervisor holding held starts
 * again: the job finishes, the payload applied once. */
static void
resume_case(enum xm_pf_phase phase, enum held held, const char *host_state)
{
    unsigned applies, uploads;
    xm_json *doc;
    bool resumed = false;

    hold(held);
    applies = calls("lp_apply");
    uploads = calls("lp_upload");
    write_record("r1", phase, XEN_HEX);
    write_leftovers("r1", host_state);
    start();
    run_job("r1");
    assert_job("r1", "done");
    doc = job_result("r1");
    assert_str(doc, "state", "applied");
    CU_ASSERT_EQUAL(xm_json_get_bool(doc, "resumed", &resumed), XM_OK);
    CU_ASSERT_TRUE(resumed);
    xm_json_free(doc);
    CU_ASSERT_EQUAL(lp_state(NAME), XM_LP_APPLIED);
    CU_ASSERT_EQUAL(lp_count(), 1);
    /* applied exactly once: by the agent unless it was already */
    CU_ASSERT_EQUAL(calls("lp_apply") - applies,
                    held == HELD_APPLIED ? 0u : 1u);
    CU_ASSERT_EQUAL(calls("lp_upload") - uploads,
                    held == HELD_NONE ? 1u : 0u);
    assert_host("active");
    assert_journal("done");
    assert_job_key("r1", "progress", "100");
}

static void
test_resume_draining(void)
{
    resume_case(XM_PF_DRAINING, HELD_NONE, "draining");
    CU_ASSERT_EQUAL(peers.queries, 1);          /* drained again */
    assert_steps_seen("drain", "preflight", "upload", "apply", "verify",
                      "undrain", NULL);
}

static void
test_resume_uploading(void)
{
    resume_case(XM_PF_UPLOADING, HELD_NONE, "patching");
    assert_steps_seen("preflight", "upload", "apply", "verify", "undrain",
                      NULL);
}

static void
test_resume_uploading_loaded(void)
{
    resume_case(XM_PF_UPLOADING, HELD_CHECKED, "patching");
    assert_steps_seen("apply", "verify", "undrain", NULL);
}

static void
test_resume_applying_loaded(void)
{
    resume_case(XM_PF_APPLYING, HELD_CHECKED, "patching");
    assert_steps_seen("apply", "verify", "undrain", NULL);
}

static void
test_resume_applying_applied(void)
{
    resume_case(XM_PF_APPLYING, HELD_APPLIED, "patching");
    assert_steps_seen("verify", "undrain", NULL);
}

static void
test_resume_verifying(void)
{
    resume_case(XM_PF_VERIFYING, HELD_APPLIED, "patching");
    assert_steps_seen("verify", "undrain", NULL);
}

static void
test_resume_undraining(void)
{
    resume_case(XM_PF_UNDRAINING, HELD_APPLIED, "patching");
    assert_steps_seen("undrain", NULL);
}

static void
test_resume_in_place(void)
{
    struct xm_pf_rec r;
    char path[128], req[512], *json = NULL;
    FILE *f;

    /* in place, killed after the upload: applied, host never touched */
    hold(HELD_CHECKED);
    xm_pf_rec_init(&r);
    snprintf(r.job, sizeof(r.job), "r1");
    r.phase = XM_PF_APPLYING;
    snprintf(req, sizeof(req), "{\"version\":1,\"op\":\"patch-apply\","
             "\"payload\":\"%s\",\"in_place\":true}", manifest);
    r.request = req;
    r.in_place = true;
    snprintf(r.name, sizeof(r.name), NAME);
    CU_ASSERT_EQUAL(xm_buildid_parse(SELF_HEX, &r.payload_id), XM_OK);
    CU_ASSERT_EQUAL(xm_buildid_parse(XEN_HEX, &r.xen_id), XM_OK);
    CU_ASSERT_EQUAL_FATAL(xm_pf_encode(&r, &json), XM_OK);
    path_in(path, sizeof(path), "patch-flow");
    f = fopen(path, "w");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    fputs(json, f);
    CU_ASSERT_EQUAL(fclose(f), 0);
    free(json);
    write_leftovers("r1", "active");
    start();
    run_job("r1");
    assert_job("r1", "done");
    CU_ASSERT_EQUAL(calls("lp_apply"), 1);
    CU_ASSERT_EQUAL(lp_state(NAME), XM_LP_APPLIED);
    assert_host("active");
    CU_ASSERT(!state_seen("patching"));
    assert_journal("done");
}

static void
test_resume_other_hypervisor(void)
{
    unsigned applies = calls("lp_apply");

    write_record("r1", XM_PF_APPLYING, OTHER_HEX);
    write_leftovers("r1", "patching");
    start();
    run_job("r1");
    assert_job("r1", "failed");
    assert_error("r1", "state", "hypervisor changed", OTHER_HEX, XEN_HEX,
                 NULL);
    assert_cordoned();
    CU_ASSERT_EQUAL(calls("lp_apply"), applies);
    CU_ASSERT_EQUAL(calls("lp_upload"), 0);
    assert_journal("failed");
}

static void
test_resume_corrupt_journal(void)
{
    static const char *const bad[] = {
        "{\"version\":1,\"job\":\"r1\",\"phase\":\"applying\"",
        "\x01\x02 not json at all",
        "{\"version\":2,\"job\":\"r1\",\"phase\":\"applying\"}",
        "",
    };
    char path[128];

    path_in(path, sizeof(path), "patch-flow");
    for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
        FILE *f = fopen(path, "w");

        CU_ASSERT_PTR_NOT_NULL_FATAL(f);
        fputs(bad[i], f);
        CU_ASSERT_EQUAL(fclose(f), 0);
        start();
        pump(5);
        CU_ASSERT_EQUAL(agent_jobs_running(agent), 0);
        CU_ASSERT_EQUAL(peers.queries, 0);
        CU_ASSERT_EQUAL(calls("lp_upload"), 0);
        CU_ASSERT_EQUAL(calls("lp_action"), 0);
        assert_host("active");
        agent_down();
        agent_up();
    }
    /* the agent still works */
    start();
    submit_apply("p1", manifest, "\"in_place\":true");
    run_job("p1");
    assert_job("p1", "done");
}

static void
test_resume_final_phase(void)
{
    hold(HELD_APPLIED);
    write_record("r1", XM_PF_DONE, XEN_HEX);
    start();
    pump(5);
    CU_ASSERT_EQUAL(agent_jobs_running(agent), 0);
    CU_ASSERT_EQUAL(calls("lp_apply"), 1);      /* hold's own */
    assert_host("active");
}

/* ---- reboot-required ---- */

static void
test_reboot_required(void)
{
    struct xm_pf_rec r;
    char *reason;

    /* the manifest has a payload for another hypervisor only */
    write_manifest(sha_hex, OTHER_HEX, NULL, NULL);
    start();
    submit_apply("p1", manifest, NULL);
    run_job("p1");
    assert_job("p1", "failed");
    assert_error("p1", "reboot-required", XEN_HEX, NULL);
    CU_ASSERT_EQUAL(peers.queries, 1);          /* it was drained */
    assert_host("reboot-required");
    CU_ASSERT_EQUAL(calls("lp_upload"), 0);
    CU_ASSERT_FATAL(journal_read(&r));
    CU_ASSERT_EQUAL(r.phase, XM_PF_REBOOT_REQUIRED);
    xm_pf_rec_dispose(&r);

    /* the host comes back on a fixed hypervisor */
    agent_down();
    set_build_id(OTHER_HEX);
    agent_up();
    start();
    assert_host("cordoned");
    reason = host_key("reason");
    CU_ASSERT_PTR_NOT_NULL(strstr(reason, "rebooted"));
    CU_ASSERT_PTR_NOT_NULL(strstr(reason, OTHER_HEX));
    free(reason);
    CU_ASSERT_EQUAL(agent_jobs_running(agent), 0);
}

static void
test_reboot_required_in_place(void)
{
    write_manifest(sha_hex, OTHER_HEX, NULL, NULL);
    start();
    submit_apply("p1", manifest, "\"in_place\":true");
    run_job("p1");
    assert_job("p1", "failed");
    assert_error("p1", "reboot-required", NULL);
    CU_ASSERT_EQUAL(peers.queries, 0);
    assert_host("active");
    CU_ASSERT_EQUAL(n_states_seen, 1);
    assert_no_open_journal();
}

static CU_TestInfo apply_tests[] = {
    { "in place: applied, then already applied", test_in_place_applied },
    { "in place: a bare payload", test_bare_payload },
    { "asynchronous actions are polled", test_deferred_actions },
    { "drain, apply, verify, undrain", test_drain_apply_undrain },
    { "replace swaps the applied stack", test_replace },
    { "dry runs change nothing", test_dry_run },
    { "refused: payload for another hypervisor",
      test_refused_other_build },
    { "refused: file and manifest disagree",
      test_refused_manifest_mismatch },
    { "refused: sha256 mismatch", test_refused_sha },
    CU_TEST_INFO_NULL,
};

static CU_TestInfo fault_tests[] = {
    { "upload fails", test_fail_upload },
    { "upload fails in place", test_fail_upload_in_place },
    { "apply refused: unloaded again", test_fail_apply },
    { "apply result -ETIMEDOUT: taken out", test_fail_apply_result },
    { "status read fails once: read again", test_fail_status_read },
    { "status never readable: unknown, cordoned",
      test_fail_status_unreadable },
    { "list fails at pre-flight", test_fail_list_preflight },
    { "list fails at verify: taken out", test_fail_list_verify },
    { "replace refused: unloaded, stack untouched", test_fail_replace },
    { "journal: draining", test_journal_draining },
    { "journal: uploading", test_journal_uploading },
    { "journal: applying", test_journal_applying },
    { "journal: verifying", test_journal_verifying },
    { "journal: undraining", test_journal_undraining },
    { "journal: done", test_journal_done },
    { "journal: failed", test_journal_failed },
    CU_TEST_INFO_NULL,
};

static CU_TestInfo verify_tests[] = {
    { "command output matches", test_verify_passes },
    { "output does not match: reverted", test_verify_mismatch },
    { "non-zero exit: reverted", test_verify_exit_status },
    { "verify command that does not finish: killed, reverted",
      test_verify_timeout },
    { "revert refused: still applied, said", test_verify_revert_refused },
    CU_TEST_INFO_NULL,
};

static CU_TestInfo resume_tests[] = {
    { "draining", test_resume_draining },
    { "uploading, not loaded", test_resume_uploading },
    { "uploading, loaded", test_resume_uploading_loaded },
    { "applying, loaded", test_resume_applying_loaded },
    { "applying, applied", test_resume_applying_applied },
    { "verifying", test_resume_verifying },
    { "undraining", test_resume_undraining },
    { "in place", test_resume_in_place },
    { "another hypervisor: failed, cordoned",
      test_resume_other_hypervisor },
    { "corrupt journal ignored", test_resume_corrupt_journal },
    { "final phase: nothing resumed", test_resume_final_phase },
    CU_TEST_INFO_NULL,
};

static CU_TestInfo reboot_tests[] = {
    { "drained, then rebooted", test_reboot_required },
    { "in place: refused", test_reboot_required_in_place },
    CU_TEST_INFO_NULL,
};

CU_SuiteInfo xm_test_suites[] = {
    { "patch-apply", NULL, NULL, setup, teardown, apply_tests },
    { "patch-faults", NULL, NULL, setup, teardown, fault_tests },
    { "patch-verify", NULL, NULL, setup, teardown, verify_tests },
    { "patch-resume", NULL, NULL, setup, teardown, resume_tests },
    { "patch-reboot", NULL, NULL, setup, teardown, reboot_tests },
    CU_SUITE_INFO_NULL,
};
