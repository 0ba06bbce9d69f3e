/*
 * tls_test.c -- unit tests of the agents' mutual TLS (xm_tls).
 *
 * The suite makes a pool CA and host certificates with the real
 * xenmaint-pki script (XM_PKI_SCRIPT) in a temporary directory, plus a
 * second, foreign pool; every test then talks over a fresh socketpair
 * in this one process, stepping both ends of the non-blocking handshake
 * in turn.  Where a peer must misbehave in a way xm_tls itself refuses
 * to (a client without a certificate, a client trusting the pool but
 * holding a foreign certificate) the test builds it with raw OpenSSL.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "harness.h"
#include "xm_err.h"
#include "xm_tls.h"

#ifndef XM_PKI_SCRIPT
#error "XM_PKI_SCRIPT must name tools/xenmaint-pki"
#endif

#define STEPS 400

static char tmpdir[256];
static char pool[300];            /* tmpdir/pool: ca, alice, bob, mallory */
static char other[300];           /* tmpdir/other: a foreign CA, alice */

/* Per-test fixture. */
static int sv[2] = { -1, -1 };    /* sv[0] client end, sv[1] server end */
static struct xm_tls_ctx *cctx, *sctx;
static struct xm_tls_conn *cli, *srv;
static SSL_CTX *raw_ctx;
static SSL *raw;

/* ---- files ---- */

static const char *
path(const char *dir, const char *file)
{
    static char bufs[8][400];
    static unsigned next;
    char *p = bufs[next++ % 8];

    snprintf(p, sizeof(bufs[0]), "%s/%s", dir, file);
    return p;
}

static int
pki(const char *a1, const char *a2, const char *a3, const char *a4)
{
    pid_t pid;
    int status;

    pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        int null = open("/dev/null", O_WRONLY);
        if (null >= 0)
            dup2(null, STDOUT_FILENO);
        execl("/bin/sh", "sh", XM_PKI_SCRIPT, a1, a2, a3, a4,
              (char *)NULL);
        _exit(127);
    }
    if (waitpid(pid, &status, 0) < 0)
        return -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static int
rm_one(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)ftw;
    return flag == FTW_DP ? rmdir(p) : unlink(p);
}

static int
suite_init(void)
{
    const char *t = getenv("TMPDIR");

    signal(SIGPIPE, SIG_IGN);
    snprintf(tmpdir, sizeof(tmpdir), "%s/xm-tls-test.XXXXXX",
             t && *t ? t : "/tmp");
    if (!mkdtemp(tmpdir))
        return -1;
    snprintf(pool, sizeof(pool), "%s/pool", tmpdir);
    snprintf(other, sizeof(other), "%s/other", tmpdir);
    if (pki("init", pool, NULL, NULL) ||
        pki("host", pool, "alice", "127.0.0.1") ||
        pki("host", pool, "bob", NULL) ||
        pki("host", pool, "mallory", NULL) ||
        pki("init", other, NULL, NULL) ||
        pki("host", other, "alice", NULL)) {
        fprintf(stderr, "tls_test: %s failed\n", XM_PKI_SCRIPT);
        return -1;
    }
    /* A file that is not PEM. */
    {
        FILE *f = fopen(path(tmpdir, "junk.pem"), "w");
        if (!f)
            return -1;
        fputs("not a certificate\n", f);
        fclose(f);
    }
    return 0;
}

static int
suite_cleanup(void)
{
    if (tmpdir[0])
        nftw(tmpdir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    tmpdir[0] = '\0';
    return 0;
}

/* ---- fixture ---- */

static void
setup(void)
{
    int r = socketpair(AF_UNIX, SOCK_STREAM, 0, sv);

    CU_ASSERT_EQUAL_FATAL(r, 0);
    cctx = sctx = NULL;
    cli = srv = NULL;
    raw_ctx = NULL;
    raw = NULL;
}

static void
teardown(void)
{
    xm_tls_conn_free(cli);
    xm_tls_conn_free(srv);
    xm_tls_ctx_free(cctx);
    xm_tls_ctx_free(sctx);
    SSL_free(raw);
    SSL_CTX_free(raw_ctx);
    cli = srv = NULL;
    cctx = sctx = NULL;
    raw = NULL;
    raw_ctx = NULL;
    for (int i = 0; i < 2; i++) {
        if (sv[i] >= 0)
            close(sv[i]);
        sv[i] = -1;
    }
}

/* A context for host name of pool dir. */
static struct xm_tls_ctx *
ctx_for(const char *dir, const char *name, enum xm_tls_ciphers ciphers)
{
    struct xm_tls_ctx *ctx = NULL;
    char crt[64], key[64], err[512];
    int rc;

    snprintf(crt, sizeof(crt), "%s.crt", name);
    snprintf(key, sizeof(key), "%s.key", name);
    rc = xm_tls_ctx_new(path(dir, "ca.crt"), path(dir, crt),
                        path(dir, key), ciphers, &ctx, err, sizeof(err));
    if (rc)
        fprintf(stderr, "ctx_for %s: %s\n", name, err);
    CU_ASSERT_EQUAL_FATAL(rc, XM_OK);
    return ctx;
}

/* Step both handshakes in turn until neither is busy (or STEPS). */
static void
handshake_both(int *crc_r, int *src_r)
{
    short ev;
    int crc = XM_ERR_BUSY, src = XM_ERR_BUSY;

    for (int i = 0; i < STEPS && (crc == XM_ERR_BUSY ||
                                  src == XM_ERR_BUSY); i++) {
        if (crc == XM_ERR_BUSY) {
            crc = xm_tls_handshake(cli, &ev);
            if (crc == XM_ERR_BUSY)
                CU_ASSERT(ev == POLLIN || ev == POLLOUT);
        }
        if (src == XM_ERR_BUSY)
            src = xm_tls_handshake(srv, &ev);
    }
    *crc_r = crc;
    *src_r = src;
}

static void
connect_pair(const char *client_host, const char *server_host,
             const char *client_expects, const char *server_expects)
{
    if (!cctx)
        cctx = ctx_for(pool, client_host, XM_TLS_CIPHERS_AUTO);
    if (!sctx)
        sctx = ctx_for(pool, server_host, XM_TLS_CIPHERS_AUTO);
    CU_ASSERT_EQUAL_FATAL(xm_tls_conn_new_client(cctx, sv[0],
                                                 client_expects, &cli),
                          XM_OK);
    CU_ASSERT_EQUAL_FATAL(xm_tls_conn_new_server(sctx, sv[1],
                                                 server_expects, &srv),
                          XM_OK);
}

/* Move len bytes from one end to the other through both TLS layers. */
static void
transfer(struct xm_tls_conn *from, struct xm_tls_conn *to,
         const uint8_t *data, size_t len, uint8_t *recv_buf)
{
    size_t sent = 0, got = 0;
    short ev;

    for (int i = 0; i < 100000 && got < len; i++) {
        if (sent < len) {
            size_t put;
            int rc = xm_tls_write(from, data + sent, len - sent, &put, &ev);
            CU_ASSERT_FATAL(rc == XM_OK || rc == XM_ERR_BUSY);
            if (rc == XM_OK)
                sent += put;
            /* records wait in TLS's buffer until flushed */
            rc = xm_tls_flush(from, &ev);
            CU_ASSERT_FATAL(rc == XM_OK || rc == XM_ERR_BUSY);
            if (rc == XM_ERR_BUSY)
                CU_ASSERT(ev == POLLOUT);
        }
        for (;;) {
            size_t n;
            int rc = xm_tls_read(to, recv_buf + got, len - got, &n, &ev);
            CU_ASSERT_FATAL(rc == XM_OK || rc == XM_ERR_BUSY);
            if (rc == XM_ERR_BUSY || got + n >= len) {
                got += n;
                break;
            }
            CU_ASSERT_FATAL(n > 0);
            got += n;
        }
    }
    CU_ASSERT_EQUAL(got, len);
    CU_ASSERT(memcmp(data, recv_buf, len) == 0);
}

/* ---- tests ---- */

static void
test_good_handshake_and_data(void)
{
    enum { LEN = 300 * 1024 };
    uint8_t *data = malloc(LEN), *back = malloc(LEN);
    int crc, src;

    CU_ASSERT_FATAL(data && back);
    for (size_t i = 0; i < LEN; i++)
        data[i] = (uint8_t)(i * 7 + 3);
    connect_pair("alice", "bob", "bob", "alice");
    handshake_both(&crc, &src);
    CU_ASSERT_EQUAL_FATAL(crc, XM_OK);
    CU_ASSERT_EQUAL_FATAL(src, XM_OK);
    CU_ASSERT_STRING_EQUAL(xm_tls_peer_name(cli), "bob");
    CU_ASSERT_STRING_EQUAL(xm_tls_peer_name(srv), "alice");
    CU_ASSERT(xm_tls_peer_has_name(srv, "alice"));
    CU_ASSERT(!xm_tls_peer_has_name(srv, "bob"));
    CU_ASSERT_PTR_NOT_NULL_FATAL(xm_tls_cipher_name(cli));
    CU_ASSERT_STRING_EQUAL(xm_tls_cipher_name(cli),
                           xm_tls_cipher_name(srv));
    /* Both ways, larger than the socket buffer and a TLS record. */
    transfer(cli, srv, data, LEN, back);
    memset(back, 0, LEN);
    transfer(srv, cli, data, LEN, back);
    free(data);
    free(back);
}

/* Records wait in the connection's buffer until flushed, then go
 * together; a read finds nothing before. */
static void
test_records_wait_for_flush(void)
{
    char in[8 * 1000], out[sizeof(in)];
    size_t n, got = 0, put;
    short ev;
    int crc, src, rc;

    for (size_t i = 0; i < sizeof(in); i++)
        in[i] = (char)(i % 251);
    connect_pair("alice", "bob", "bob", "alice");
    handshake_both(&crc, &src);
    CU_ASSERT_EQUAL_FATAL(crc, XM_OK);
    CU_ASSERT_EQUAL_FATAL(src, XM_OK);
    CU_ASSERT_EQUAL(xm_tls_unsent(cli), 0);
    /* eight writes, eight records, none sent */
    for (int i = 0; i < 8; i++) {
        CU_ASSERT_EQUAL_FATAL(xm_tls_write(cli, in + i * 1000, 1000, &put,
                                           &ev), XM_OK);
        CU_ASSERT_EQUAL(put, 1000);
    }
    CU_ASSERT(xm_tls_unsent(cli) > sizeof(in));     /* with the headers */
    CU_ASSERT_EQUAL(xm_tls_read(srv, out, sizeof(out), &n, &ev),
                    XM_ERR_BUSY);
    CU_ASSERT_EQUAL(ev, POLLIN);
    CU_ASSERT_EQUAL(xm_tls_flush(cli, &ev), XM_OK);
    CU_ASSERT_EQUAL(xm_tls_unsent(cli), 0);
    CU_ASSERT_EQUAL(xm_tls_flush(cli, &ev), XM_OK);  /* nothing: OK */
    while (got < sizeof(out)) {
        rc = xm_tls_read(srv, out + got, sizeof(out) - got, &n, &ev);
        CU_ASSERT_EQUAL_FATAL(rc, XM_OK);
        CU_ASSERT_FATAL(n > 0);
        got += n;
    }
    CU_ASSERT(memcmp(in, out, sizeof(in)) == 0);
    /* everything was read in the one go: nothing more */
    CU_ASSERT_EQUAL(xm_tls_read(srv, out, sizeof(out), &n, &ev),
                    XM_ERR_BUSY);
}

/* The server takes any pool member and says which one it was. */
static void
test_server_any_pool_member(void)
{
    int crc, src;

    connect_pair("mallory", "alice", "alice", NULL);
    handshake_both(&crc, &src);
    CU_ASSERT_EQUAL_FATAL(crc, XM_OK);
    CU_ASSERT_EQUAL_FATAL(src, XM_OK);
    CU_ASSERT_STRING_EQUAL(xm_tls_peer_name(srv), "mallory");
    CU_ASSERT(xm_tls_peer_has_name(srv, "mallory"));
    /* A SAN IP does not count as a host name; CN and SAN DNS do. */
    CU_ASSERT(xm_tls_peer_has_name(cli, "alice"));
    CU_ASSERT(!xm_tls_peer_has_name(cli, "127.0.0.1"));
}

/* No application data before the handshake. */
static void
test_no_io_before_handshake(void)
{
    char buf[16];
    size_t n;
    short ev;

    connect_pair("alice", "bob", "bob", "alice");
    CU_ASSERT_EQUAL(xm_tls_read(srv, buf, sizeof(buf), &n, &ev),
                    XM_ERR_STATE);
    CU_ASSERT_EQUAL(xm_tls_write(cli, "x", 1, &n, &ev), XM_ERR_STATE);
    CU_ASSERT_PTR_NULL(xm_tls_peer_name(srv));
    CU_ASSERT_PTR_NULL(xm_tls_cipher_name(srv));
}

/* A raw OpenSSL client trusting the pool CA, with the given certificate
 * or none. */
static void
raw_client(const char *cert, const char *key)
{
    raw_ctx = SSL_CTX_new(TLS_client_method());
    CU_ASSERT_PTR_NOT_NULL_FATAL(raw_ctx);
    SSL_CTX_set_min_proto_version(raw_ctx, TLS1_3_VERSION);
    CU_ASSERT_FATAL(SSL_CTX_load_verify_file(raw_ctx,
                                             path(pool, "ca.crt")) == 1);
    SSL_CTX_set_verify(raw_ctx, SSL_VERIFY_PEER, NULL);
    if (cert) {
        CU_ASSERT_FATAL(SSL_CTX_use_certificate_file(raw_ctx, cert,
                                                     SSL_FILETYPE_PEM));
        CU_ASSERT_FATAL(SSL_CTX_use_PrivateKey_file(raw_ctx, key,
                                                    SSL_FILETYPE_PEM));
    }
    raw = SSL_new(raw_ctx);
    CU_ASSERT_PTR_NOT_NULL_FATAL(raw);
    SSL_set_fd(raw, sv[0]);
    SSL_set_connect_state(raw);
    CU_ASSERT_FATAL(SSL_set1_host(raw, "bob") == 1);
}

/* Run the raw client against srv; the raw client sends a request as
 * soon as its own handshake is done.  Returns the server's result. */
static int
raw_handshake_and_request(void)
{
    int src = XM_ERR_BUSY, raw_done = 0, sent = 0;
    short ev;

    fcntl(sv[0], F_SETFL, fcntl(sv[0], F_GETFL) | O_NONBLOCK);
    for (int i = 0; i < STEPS && src == XM_ERR_BUSY; i++) {
        if (!raw_done) {
            int r = SSL_do_handshake(raw);
            if (r == 1)
                raw_done = 1;
            else if (SSL_get_error(raw, r) != SSL_ERROR_WANT_READ &&
                     SSL_get_error(raw, r) != SSL_ERROR_WANT_WRITE)
                raw_done = -1;
            ERR_clear_error();
        }
        if (raw_done == 1 && !sent) {
            /* TLS 1.3: the client may talk right after its Finished,
             * before the server has judged its certificate. */
            size_t w;
            if (SSL_write_ex(raw, "STATUS_REQ", 10, &w) == 1)
                sent = 1;
            ERR_clear_error();
        }
        src = xm_tls_handshake(srv, &ev);
    }
    return src;
}

static void
test_client_without_cert_refused(void)
{
    char buf[64];
    size_t n = 99;
    short ev;

    sctx = ctx_for(pool, "bob", XM_TLS_CIPHERS_AUTO);
    CU_ASSERT_EQUAL_FATAL(xm_tls_conn_new_server(sctx, sv[1], NULL, &srv),
                          XM_OK);
    raw_client(NULL, NULL);
    CU_ASSERT_EQUAL(raw_handshake_and_request(), XM_ERR_TLS);
    CU_ASSERT_PTR_NOT_NULL(strstr(xm_tls_conn_error(srv), "certificate"));
    /* The request that arrived is never handed out. */
    CU_ASSERT_EQUAL(xm_tls_read(srv, buf, sizeof(buf), &n, &ev),
                    XM_ERR_TLS);
    CU_ASSERT_EQUAL(n, 0);
    CU_ASSERT_PTR_NULL(xm_tls_peer_name(srv));
}

static void
test_foreign_ca_client_refused(void)
{
    char buf[64];
    size_t n = 99;
    short ev;

    sctx = ctx_for(pool, "bob", XM_TLS_CIPHERS_AUTO);
    CU_ASSERT_EQUAL_FATAL(xm_tls_conn_new_server(sctx, sv[1], NULL, &srv),
                          XM_OK);
    /* Named alice, but signed by the other pool's CA. */
    raw_client(path(other, "alice.crt"), path(other, "alice.key"));
    CU_ASSERT_EQUAL(raw_handshake_and_request(), XM_ERR_TLS);
    CU_ASSERT_PTR_NOT_NULL(strstr(xm_tls_conn_error(srv),
                                  "certificate refused"));
    CU_ASSERT_EQUAL(xm_tls_read(srv, buf, sizeof(buf), &n, &ev),
                    XM_ERR_TLS);
    CU_ASSERT_EQUAL(n, 0);
}

static void
test_foreign_ca_server_refused(void)
{
    int crc, src;

    sctx = ctx_for(other, "alice", XM_TLS_CIPHERS_AUTO);
    connect_pair("bob", NULL, "alice", NULL);
    handshake_both(&crc, &src);
    CU_ASSERT_EQUAL(crc, XM_ERR_TLS);
    CU_ASSERT_NOT_EQUAL(src, XM_OK);
    CU_ASSERT_PTR_NOT_NULL(strstr(xm_tls_conn_error(cli),
                                  "certificate refused"));
}

/* The server presents mallory's (valid) certificate where the client
 * expects bob. */
static void
test_wrong_server_name_refused(void)
{
    int crc, src;

    connect_pair("alice", "mallory", "bob", NULL);
    handshake_both(&crc, &src);
    CU_ASSERT_EQUAL(crc, XM_ERR_TLS);
    CU_ASSERT_NOT_EQUAL(src, XM_OK);
    CU_ASSERT_PTR_NOT_NULL(strstr(xm_tls_conn_error(cli), "hostname"));
}

/* A pool member that is not the expected one, seen from the server. */
static void
test_wrong_client_name_refused(void)
{
    char buf[16];
    size_t n;
    short ev;
    int crc, src;

    connect_pair("mallory", "bob", "bob", "alice");
    handshake_both(&crc, &src);
    CU_ASSERT_EQUAL(src, XM_ERR_TLS);
    CU_ASSERT_PTR_NOT_NULL(strstr(xm_tls_conn_error(srv), "hostname"));
    /* TLS 1.3: the client learns on its first read. */
    if (crc == XM_OK) {
        int rc = XM_ERR_BUSY;
        for (int i = 0; i < STEPS && rc == XM_ERR_BUSY; i++)
            rc = xm_tls_read(cli, buf, sizeof(buf), &n, &ev);
        CU_ASSERT_EQUAL(rc, XM_ERR_TLS);
    }
}

static void
test_bad_names_refused(void)
{
    cctx = ctx_for(pool, "alice", XM_TLS_CIPHERS_AUTO);
    CU_ASSERT_EQUAL(xm_tls_conn_new_client(cctx, sv[0], NULL, &cli),
                    XM_ERR_INVAL);
    CU_ASSERT_PTR_NULL(cli);
    CU_ASSERT_EQUAL(xm_tls_conn_new_client(cctx, sv[0], "*.pool", &cli),
                    XM_ERR_INVAL);
    CU_ASSERT_EQUAL(xm_tls_conn_new_server(cctx, -1, NULL, &srv),
                    XM_ERR_INVAL);
}

static void
test_bad_files(void)
{
    struct xm_tls_ctx *ctx = NULL;
    char err[512];
    const char *missing = path(tmpdir, "missing.crt");
    const char *junk = path(tmpdir, "junk.pem");
    const char *ca = path(pool, "ca.crt");
    const char *crt = path(pool, "alice.crt");
    const char *key = path(pool, "alice.key");
    int rc;

    rc = xm_tls_ctx_new(missing, crt, key, 0, &ctx, err, sizeof(err));
    CU_ASSERT_EQUAL(rc, XM_ERR_NOTFOUND);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, missing));
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "CA"));
    CU_ASSERT_PTR_NULL(ctx);

    rc = xm_tls_ctx_new(ca, missing, key, 0, &ctx, err, sizeof(err));
    CU_ASSERT_EQUAL(rc, XM_ERR_NOTFOUND);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "certificate file"));
    CU_ASSERT_PTR_NOT_NULL(strstr(err, missing));

    rc = xm_tls_ctx_new(ca, crt, missing, 0, &ctx, err, sizeof(err));
    CU_ASSERT_EQUAL(rc, XM_ERR_NOTFOUND);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "key file"));

    rc = xm_tls_ctx_new(junk, crt, key, 0, &ctx, err, sizeof(err));
    CU_ASSERT_EQUAL(rc, XM_ERR_CONFIG);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, junk));

    rc = xm_tls_ctx_new(ca, junk, key, 0, &ctx, err, sizeof(err));
    CU_ASSERT_EQUAL(rc, XM_ERR_CONFIG);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, junk));

    rc = xm_tls_ctx_new(ca, crt, junk, 0, &ctx, err, sizeof(err));
    CU_ASSERT_EQUAL(rc, XM_ERR_CONFIG);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, junk));

    /* alice's certificate with bob's key. */
    rc = xm_tls_ctx_new(ca, crt, path(pool, "bob.key"), 0, &ctx, err,
                        sizeof(err));
    CU_ASSERT_EQUAL(rc, XM_ERR_CONFIG);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "does not match"));

    /* A certificate of another pool. */
    rc = xm_tls_ctx_new(ca, path(other, "alice.crt"),
                        path(other, "alice.key"), 0, &ctx, err,
                        sizeof(err));
    CU_ASSERT_EQUAL(rc, XM_ERR_CONFIG);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "does not verify"));

    rc = xm_tls_ctx_new(NULL, crt, key, 0, &ctx, err, sizeof(err));
    CU_ASSERT_EQUAL(rc, XM_ERR_CONFIG);
    CU_ASSERT_PTR_NULL(ctx);
}

static const char *
negotiate(enum xm_tls_ciphers client, enum xm_tls_ciphers server)
{
    int crc, src;

    cctx = ctx_for(pool, "alice", client);
    sctx = ctx_for(pool, "bob", server);
    connect_pair("alice", "bob", "bob", "alice");
    handshake_both(&crc, &src);
    CU_ASSERT_EQUAL_FATAL(crc, XM_OK);
    CU_ASSERT_EQUAL_FATAL(src, XM_OK);
    CU_ASSERT_STRING_EQUAL(xm_tls_cipher_name(cli),
                           xm_tls_cipher_name(srv));
    return xm_tls_cipher_name(srv);
}

static void
test_cipher_choice(void)
{
    static const struct {
        enum xm_tls_ciphers client, server;
        const char *want;
    } cases[] = {
        { XM_TLS_CIPHERS_AES_FIRST, XM_TLS_CIPHERS_AES_FIRST,
          "TLS_AES_256_GCM_SHA384" },
        { XM_TLS_CIPHERS_CHACHA_FIRST, XM_TLS_CIPHERS_AES_FIRST,
          "TLS_CHACHA20_POLY1305_SHA256" },
        { XM_TLS_CIPHERS_AES_FIRST, XM_TLS_CIPHERS_CHACHA_FIRST,
          "TLS_CHACHA20_POLY1305_SHA256" },
        { XM_TLS_CIPHERS_CHACHA_FIRST, XM_TLS_CIPHERS_CHACHA_FIRST,
          "TLS_CHACHA20_POLY1305_SHA256" },
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *got;
        if (i > 0) {
            teardown();
            setup();
        }
        got = negotiate(cases[i].client, cases[i].server);
        CU_ASSERT_PTR_NOT_NULL_FATAL(got);
        if (strcmp(got, cases[i].want))
            fprintf(stderr, "case %zu: got %s, want %s\n", i, got,
                    cases[i].want);
        CU_ASSERT_STRING_EQUAL(got, cases[i].want);
    }
}

static void
test_cipher_auto_follows_cpu(void)
{
    const char *suites;

    cctx = ctx_for(pool, "alice", XM_TLS_CIPHERS_AUTO);
    suites = xm_tls_ctx_ciphersuites(cctx);
    if (xm_tls_cpu_has_aes()) {
        CU_ASSERT_EQUAL(strncmp(suites, "TLS_AES_", 8), 0);
    } else {
        CU_ASSERT_EQUAL(strncmp(suites, "TLS_CHACHA20", 12), 0);
    }
}

static void
test_clean_close_and_reset(void)
{
    char buf[16];
    size_t n = 99;
    short ev;
    int crc, src, rc = XM_ERR_BUSY;

    connect_pair("alice", "bob", "bob", "alice");
    handshake_both(&crc, &src);
    CU_ASSERT_EQUAL_FATAL(crc, XM_OK);
    CU_ASSERT_EQUAL_FATAL(src, XM_OK);
    CU_ASSERT_EQUAL(xm_tls_shutdown(cli, &ev), XM_OK);
    for (int i = 0; i < STEPS && rc == XM_ERR_BUSY; i++)
        rc = xm_tls_read(srv, buf, sizeof(buf), &n, &ev);
    CU_ASSERT_EQUAL(rc, XM_OK);
    CU_ASSERT_EQUAL(n, 0);

    /* The server's end just vanishes: the client sees an I/O error,
     * not a clean close. */
    close(sv[1]);
    sv[1] = -1;
    rc = xm_tls_read(cli, buf, sizeof(buf), &n, &ev);
    CU_ASSERT_EQUAL(rc, XM_ERR_IO);
}

static CU_TestInfo tls_tests[] = {
    { "good handshake and data both ways", test_good_handshake_and_data },
    { "records wait for the flush", test_records_wait_for_flush },
    { "server accepts any pool member", test_server_any_pool_member },
    { "no I/O before the handshake", test_no_io_before_handshake },
    { "client without certificate refused",
      test_client_without_cert_refused },
    { "client of a foreign CA refused", test_foreign_ca_client_refused },
    { "server of a foreign CA refused", test_foreign_ca_server_refused },
    { "server with the wrong name refused",
      test_wrong_server_name_refused },
    { "client with the wrong name refused",
      test_wrong_client_name_refused },
    { "bad expected names", test_bad_names_refused },
    { "bad files named in errors", test_bad_files },
    { "cipher choice", test_cipher_choice },
    { "AUTO cipher order follows the CPU", test_cipher_auto_follows_cpu },
    { "clean close and reset", test_clean_close_and_reset },
    CU_TEST_INFO_NULL,
};

CU_SuiteInfo xm_test_suites[] = {
    { "tls", suite_init, suite_cleanup, setup, teardown, tls_tests },
    CU_SUITE_INFO_NULL,
};
