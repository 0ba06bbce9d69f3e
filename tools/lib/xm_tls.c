/*
 * xm_tls.c -- mutual TLS 1.3 between agents over OpenSSL 3 (see
 * xm_tls.h).
 *
 * The context trusts exactly the pool CA file (the system store is
 * never loaded), requires a peer certificate on both ends, and speaks
 * TLS 1.3 only, without session tickets.  The expected peer name is
 * handed to OpenSSL's own chain verification (SSL_set1_host), so a
 * wrong name fails the handshake like an untrusted certificate does.
 * Each OpenSSL call is preceded by ERR_clear_error so that the error
 * queue describes that call alone.
 *
 * A record is at most 16 KiB; written one by one, a migration stream
 * costs a send() per record, and dear ones in a dom0 (a PV system call
 * goes through the hypervisor).  So records are written into a
 * buffering BIO in front of the socket, which the caller flushes
 * (xm_tls_flush) once it has handed over what it has, and records are
 * read ahead, as many as the socket has and the buffer holds, in one
 * read().
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#elif defined(__aarch64__)
#include <asm/hwcap.h>
#include <sys/auxv.h>
#endif

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "xm_err.h"
#include "xm_proto.h"
#include "xm_tls.h"

#define SUITES_AES_FIRST \
    "TLS_AES_256_GCM_SHA384:TLS_AES_128_GCM_SHA256:" \
    "TLS_CHACHA20_POLY1305_SHA256"
#define SUITES_CHACHA_FIRST \
    "TLS_CHACHA20_POLY1305_SHA256:TLS_AES_128_GCM_SHA256:" \
    "TLS_AES_256_GCM_SHA384"

/* CN or SAN DNS name, exact match. */
#define HOST_CHECK_FLAGS \
    (X509_CHECK_FLAG_NO_WILDCARDS | X509_CHECK_FLAG_ALWAYS_CHECK_SUBJECT)

struct xm_tls_ctx {
    SSL_CTX *ssl_ctx;
    const char *suites;
};

enum conn_state {
    CONN_HANDSHAKE,
    CONN_OPEN,
    CONN_FAILED,
};

/* Bytes of records written (or read ahead) per system call, at most. */
#define IO_BUF (128 * 1024)

struct xm_tls_conn {
    SSL *ssl;
    BIO *wbio;                    /* the buffer in front of the socket
                                   * (owned by ssl) */
    int fd;                       /* not owned */
    enum conn_state state;
    int rc;                       /* final error once FAILED */
    char peer_name[XM_PROTO_HOST_MAX + 1];
    char err[256];
};

/* ---- CPU ---- */

#if !defined(__x86_64__) && !defined(__i386__) && \
    !(defined(__aarch64__) && defined(HWCAP_AES))
/* Elsewhere, the kernel's view: an "aes" flag or feature. */
static bool
cpuinfo_has_aes(void)
{
    FILE *f = fopen("/proc/cpuinfo", "re");
    char line[4096];
    bool found = false;

    if (!f)
        return false;
    while (!found && fgets(line, sizeof(line), f)) {
        char *p;
        if (strncmp(line, "flags", 5) && strncmp(line, "Features", 8))
            continue;
        p = strchr(line, ':');
        for (p = p ? strtok(p + 1, " \t\n") : NULL; p;
             p = strtok(NULL, " \t\n"))
            if (!strcmp(p, "aes"))
                found = true;
        break;                    /* the first CPU speaks for all */
    }
    fclose(f);
    return found;
}
#endif

bool
xm_tls_cpu_has_aes(void)
{
#if defined(__x86_64__) || defined(__i386__)
    unsigned a, b, c, d;

    if (__get_cpuid(1, &a, &b, &c, &d))
        return (c & bit_AES) != 0;
    return false;
#elif defined(__aarch64__) && defined(HWCAP_AES)
    return (getauxval(AT_HWCAP) & HWCAP_AES) != 0;
#else
    return cpuinfo_has_aes();
#endif
}

/* ---- errors ---- */

/* The first OpenSSL reason queued (the root cause; later entries wrap
 * it, e.g. "PEM lib"), or fallback. */
static const char *
ssl_reason(const char *fallback)
{
    unsigned long e = ERR_peek_error();
    const char *s = e ? ERR_reason_error_string(e) : NULL;

    return s ? s : fallback;
}

/* ---- context ---- */

/* Can path be opened for reading?  XM_OK or an error with err_r set. */
static int
check_readable(const char *what, const char *path, char *err_r,
               size_t errlen)
{
    struct stat st;
    FILE *f;
    int r, errnum;

    if (!path || !*path) {
        snprintf(err_r, errlen, "%s file not given", what);
        return XM_ERR_CONFIG;
    }
    f = fopen(path, "re");
    if (!f) {
        errnum = errno;
        snprintf(err_r, errlen, "%s file %s: %s", what, path,
                 strerror(errnum));
        return xm_err_from_errno(errnum);
    }
    r = fstat(fileno(f), &st);
    errnum = errno;
    fclose(f);
    if (r < 0) {
        snprintf(err_r, errlen, "%s file %s: %s", what, path,
                 strerror(errnum));
        return xm_err_from_errno(errnum);
    }
    if (!S_ISREG(st.st_mode)) {
        snprintf(err_r, errlen, "%s file %s: not a regular file", what,
                 path);
        return XM_ERR_CONFIG;
    }
    return XM_OK;
}

/* Load every certificate of the CA file into the context's store. */
static int
load_ca(SSL_CTX *ssl_ctx, const char *ca_file, char *err_r, size_t errlen)
{
    X509_STORE *store = SSL_CTX_get_cert_store(ssl_ctx);
    FILE *f = NULL;
    X509 *cert = NULL;
    unsigned n = 0;
    int rc;

    f = fopen(ca_file, "re");
    if (!f) {
        int errnum = errno;
        rc = xm_err_from_errno(errnum);
        snprintf(err_r, errlen, "CA file %s: %s", ca_file,
                 strerror(errnum));
        goto out;
    }
    ERR_clear_error();
    while ((cert = PEM_read_X509(f, NULL, NULL, NULL)) != NULL) {
        if (!X509_STORE_add_cert(store, cert)) {
            rc = XM_ERR_CONFIG;
            snprintf(err_r, errlen, "CA file %s: %s", ca_file,
                     ssl_reason("cannot add certificate"));
            goto out;
        }
        X509_free(cert);
        cert = NULL;
        n++;
    }
    if (n == 0) {
        rc = XM_ERR_CONFIG;
        snprintf(err_r, errlen, "CA file %s: no PEM certificate in it",
                 ca_file);
        goto out;
    }
    ERR_clear_error();            /* the end-of-file "error" */
    rc = XM_OK;
out:
    X509_free(cert);
    if (f)
        fclose(f);
    return rc;
}

/* Read a PEM private key (apart from using it, so that a file that is
 * not a key and a key of another certificate are told apart). */
static int
load_key(const char *key_file, EVP_PKEY **key_r, char *err_r,
         size_t errlen)
{
    FILE *f;
    int errnum;

    *key_r = NULL;
    f = fopen(key_file, "re");
    if (!f) {
        errnum = errno;
        snprintf(err_r, errlen, "key file %s: %s", key_file,
                 strerror(errnum));
        return xm_err_from_errno(errnum);
    }
    ERR_clear_error();
    *key_r = PEM_read_PrivateKey(f, NULL, NULL, NULL);
    fclose(f);
    if (!*key_r) {
        snprintf(err_r, errlen, "key file %s: not a PEM private key (%s)",
                 key_file, ssl_reason("unreadable"));
        return XM_ERR_CONFIG;
    }
    return XM_OK;
}

/* Is our own certificate one the CA vouches for?  Catches a host set up
 * with the files of two pools at start-up rather than at each peer. */
static int
check_own_cert(SSL_CTX *ssl_ctx, const char *ca_file, const char *cert_file,
               char *err_r, size_t errlen)
{
    X509_STORE_CTX *vctx = NULL;
    X509 *cert = SSL_CTX_get0_certificate(ssl_ctx);
    STACK_OF(X509) *chain = NULL;
    int rc;

    vctx = X509_STORE_CTX_new();
    if (!vctx) {
        rc = XM_ERR_NOMEM;
        goto out;
    }
    SSL_CTX_get0_chain_certs(ssl_ctx, &chain);
    if (!X509_STORE_CTX_init(vctx, SSL_CTX_get_cert_store(ssl_ctx), cert,
                             chain)) {
        rc = XM_ERR_NOMEM;
        goto out;
    }
    if (X509_verify_cert(vctx) != 1) {
        rc = XM_ERR_CONFIG;
        snprintf(err_r, errlen,
                 "certificate file %s does not verify against CA file "
                 "%s: %s", cert_file, ca_file,
                 X509_verify_cert_error_string(
                     X509_STORE_CTX_get_error(vctx)));
        goto out;
    }
    rc = XM_OK;
out:
    X509_STORE_CTX_free(vctx);
    ERR_clear_error();
    return rc;
}

int
xm_tls_ctx_new(const char *ca_file, const char *cert_file,
               const char *key_file, enum xm_tls_ciphers ciphers,
               struct xm_tls_ctx **ctx_r, char *err_r, size_t errlen)
{
    struct xm_tls_ctx *ctx = NULL;
    EVP_PKEY *key = NULL;
    char dummy[1];
    int rc;

    *ctx_r = NULL;
    if (!err_r || errlen == 0) {
        err_r = dummy;
        errlen = sizeof(dummy);
    }
    err_r[0] = '\0';
    rc = check_readable("CA", ca_file, err_r, errlen);
    if (rc)
        goto out;
    rc = check_readable("certificate", cert_file, err_r, errlen);
    if (rc)
        goto out;
    rc = check_readable("key", key_file, err_r, errlen);
    if (rc)
        goto out;

    ctx = calloc(1, sizeof(*ctx));
    if (!ctx) {
        rc = XM_ERR_NOMEM;
        goto out;
    }
    ERR_clear_error();
    ctx->ssl_ctx = SSL_CTX_new(TLS_method());
    if (!ctx->ssl_ctx) {
        rc = XM_ERR_NOMEM;
        snprintf(err_r, errlen, "TLS context: %s", ssl_reason("failed"));
        goto out;
    }
    if (!SSL_CTX_set_min_proto_version(ctx->ssl_ctx, TLS1_3_VERSION) ||
        !SSL_CTX_set_max_proto_version(ctx->ssl_ctx, TLS1_3_VERSION)) {
        rc = XM_ERR_TLS;
        snprintf(err_r, errlen, "TLS 1.3: %s", ssl_reason("unavailable"));
        goto out;
    }

    rc = load_ca(ctx->ssl_ctx, ca_file, err_r, errlen);
    if (rc)
        goto out;
    ERR_clear_error();
    if (SSL_CTX_use_certificate_chain_file(ctx->ssl_ctx, cert_file) != 1) {
        rc = XM_ERR_CONFIG;
        snprintf(err_r, errlen,
                 "certificate file %s: not a PEM certificate (%s)",
                 cert_file, ssl_reason("unreadable"));
        goto out;
    }
    rc = load_key(key_file, &key, err_r, errlen);
    if (rc)
        goto out;
    ERR_clear_error();
    if (SSL_CTX_use_PrivateKey(ctx->ssl_ctx, key) != 1 ||
        SSL_CTX_check_private_key(ctx->ssl_ctx) != 1) {
        rc = XM_ERR_CONFIG;
        snprintf(err_r, errlen, "key file %s does not match certificate "
                 "file %s", key_file, cert_file);
        goto out;
    }
    rc = check_own_cert(ctx->ssl_ctx, ca_file, cert_file, err_r, errlen);
    if (rc)
        goto out;

    SSL_CTX_set_verify(ctx->ssl_ctx,
                       SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT,
                       NULL);
    SSL_CTX_set_verify_depth(ctx->ssl_ctx, 2);

    if (ciphers == XM_TLS_CIPHERS_AUTO)
        ciphers = xm_tls_cpu_has_aes() ? XM_TLS_CIPHERS_AES_FIRST
                                       : XM_TLS_CIPHERS_CHACHA_FIRST;
    ctx->suites = ciphers == XM_TLS_CIPHERS_CHACHA_FIRST
                  ? SUITES_CHACHA_FIRST : SUITES_AES_FIRST;
    ERR_clear_error();
    if (SSL_CTX_set_ciphersuites(ctx->ssl_ctx, ctx->suites) != 1) {
        rc = XM_ERR_TLS;
        snprintf(err_r, errlen, "ciphersuites: %s", ssl_reason("refused"));
        goto out;
    }
    /* The server's order decides, but a client that puts ChaCha first
     * (no AES instructions) gets ChaCha. */
    SSL_CTX_set_options(ctx->ssl_ctx, SSL_OP_CIPHER_SERVER_PREFERENCE |
                        SSL_OP_PRIORITIZE_CHACHA | SSL_OP_NO_TICKET);
    SSL_CTX_set_num_tickets(ctx->ssl_ctx, 0);
    SSL_CTX_set_session_cache_mode(ctx->ssl_ctx, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_mode(ctx->ssl_ctx, SSL_MODE_ENABLE_PARTIAL_WRITE |
                     SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    SSL_CTX_set_read_ahead(ctx->ssl_ctx, 1);
    SSL_CTX_set_default_read_buffer_len(ctx->ssl_ctx, IO_BUF);

    *ctx_r = ctx;
    ctx = NULL;                   /* caller owns it */
    rc = XM_OK;
out:
    EVP_PKEY_free(key);
    xm_tls_ctx_free(ctx);
    ERR_clear_error();
    return rc;
}

void
xm_tls_ctx_free(struct xm_tls_ctx *ctx)
{
    if (!ctx)
        return;
    SSL_CTX_free(ctx->ssl_ctx);
    free(ctx);
}

const char *
xm_tls_ctx_ciphersuites(const struct xm_tls_ctx *ctx)
{
    return ctx->suites;
}

/* ---- connections ---- */

static int
conn_new(struct xm_tls_ctx *ctx, int fd, const char *expected_name,
         bool server, struct xm_tls_conn **conn_r)
{
    struct xm_tls_conn *conn = NULL;
    BIO *sock = NULL, *buf = NULL;
    int r, rc;

    *conn_r = NULL;
    if (fd < 0 || (!server && !expected_name))
        return XM_ERR_INVAL;
    if (expected_name && !xm_proto_host_valid(expected_name))
        return XM_ERR_INVAL;
    r = fcntl(fd, F_GETFL);
    if (r < 0 || fcntl(fd, F_SETFL, r | O_NONBLOCK) < 0)
        return xm_err_from_errno(errno);

    conn = calloc(1, sizeof(*conn));
    if (!conn)
        return XM_ERR_NOMEM;
    conn->fd = fd;
    conn->state = CONN_HANDSHAKE;
    ERR_clear_error();
    conn->ssl = SSL_new(ctx->ssl_ctx);
    sock = BIO_new_socket(fd, BIO_NOCLOSE);
    buf = BIO_new(BIO_f_buffer());
    if (!conn->ssl || !sock || !buf ||
        BIO_set_write_buffer_size(buf, IO_BUF) != 1 || !BIO_up_ref(sock)) {
        BIO_free(sock);
        BIO_free(buf);
        rc = XM_ERR_NOMEM;
        goto out;
    }
    /* reads from the socket, writes through the buffer to it; the ssl
     * owns both (sock twice: as its rbio and as buf's next) */
    BIO_push(buf, sock);
    SSL_set_bio(conn->ssl, sock, buf);
    conn->wbio = buf;
    if (expected_name) {
        SSL_set_hostflags(conn->ssl, HOST_CHECK_FLAGS);
        if (!SSL_set1_host(conn->ssl, expected_name)) {
            rc = XM_ERR_NOMEM;
            goto out;
        }
    }
    if (server) {
        SSL_set_accept_state(conn->ssl);
    } else {
        if (!SSL_set_tlsext_host_name(conn->ssl, expected_name)) {
            rc = XM_ERR_NOMEM;
            goto out;
        }
        SSL_set_connect_state(conn->ssl);
    }
    *conn_r = conn;
    conn = NULL;                  /* caller owns it */
    rc = XM_OK;
out:
    xm_tls_conn_free(conn);
    ERR_clear_error();
    return rc;
}

int
xm_tls_conn_new_client(struct xm_tls_ctx *ctx, int fd,
                       const char *expected_name,
                       struct xm_tls_conn **conn_r)
{
    return conn_new(ctx, fd, expected_name, false, conn_r);
}

int
xm_tls_conn_new_server(struct xm_tls_ctx *ctx, int fd,
                       const char *expected_name,
                       struct xm_tls_conn **conn_r)
{
    return conn_new(ctx, fd, expected_name, true, conn_r);
}

void
xm_tls_conn_free(struct xm_tls_conn *conn)
{
    if (!conn)
        return;
    SSL_free(conn->ssl);
    free(conn);
}

static int
conn_fail(struct xm_tls_conn *conn, int rc, const char *what,
          const char *detail)
{
    snprintf(conn->err, sizeof(conn->err), "%s: %s", what, detail);
    conn->state = CONN_FAILED;
    conn->rc = rc;
    return rc;
}

/* Map a failed SSL_* call: XM_ERR_BUSY with events, or a final error. */
static int
conn_result(struct xm_tls_conn *conn, int r, const char *what,
            short *events_r)
{
    int e = SSL_get_error(conn->ssl, r);
    long vr;
    unsigned long qe;

    switch (e) {
    case SSL_ERROR_WANT_READ:
        *events_r = POLLIN;
        return XM_ERR_BUSY;
    case SSL_ERROR_WANT_WRITE:
        *events_r = POLLOUT;
        return XM_ERR_BUSY;
    case SSL_ERROR_ZERO_RETURN:
        return conn_fail(conn, XM_ERR_IO, what, "peer closed the session");
    case SSL_ERROR_SYSCALL:
        return conn_fail(conn, XM_ERR_IO, what,
                         errno ? strerror(errno) : "connection closed");
    default:
        break;
    }
    vr = SSL_get_verify_result(conn->ssl);
    if (vr != X509_V_OK)
        return conn_fail(conn, XM_ERR_TLS,
                         "peer certificate refused",
                         X509_verify_cert_error_string(vr));
    qe = ERR_peek_last_error();
    if (ERR_GET_LIB(qe) == ERR_LIB_SSL &&
        ERR_GET_REASON(qe) == SSL_R_UNEXPECTED_EOF_WHILE_READING)
        return conn_fail(conn, XM_ERR_IO, what, "connection closed");
    return conn_fail(conn, XM_ERR_TLS, what, ssl_reason("TLS failure"));
}

/* The handshake succeeded: record the peer's name. */
static int
conn_verified(struct xm_tls_conn *conn)
{
    X509 *cert = SSL_get0_peer_certificate(conn->ssl);
    X509_NAME *subject;
    unsigned char *cn = NULL;
    int i, n;
    int rc;

    /* The verify mode makes both of these impossible; do not trust a
     * configuration mistake with a peer's data. */
    if (!cert || SSL_get_verify_result(conn->ssl) != X509_V_OK) {
        rc = conn_fail(conn, XM_ERR_TLS, "handshake",
                       "no verified peer certificate");
        goto out;
    }
    subject = X509_get_subject_name(cert);
    i = subject ? X509_NAME_get_index_by_NID(subject, NID_commonName, -1)
                : -1;
    n = i < 0 ? -1 : ASN1_STRING_to_UTF8(&cn,
            X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subject, i)));
    if (n <= 0 || n > XM_PROTO_HOST_MAX ||
        memchr(cn, '\0', (size_t)n)) {
        rc = conn_fail(conn, XM_ERR_TLS, "handshake",
                       "peer certificate CN is not a host name");
        goto out;
    }
    memcpy(conn->peer_name, cn, (size_t)n);
    conn->peer_name[n] = '\0';
    if (!xm_proto_host_valid(conn->peer_name)) {
        conn->peer_name[0] = '\0';
        rc = conn_fail(conn, XM_ERR_TLS, "handshake",
                       "peer certificate CN is not a host name");
        goto out;
    }
    conn->state = CONN_OPEN;
    rc = XM_OK;
out:
    OPENSSL_free(cn);
    return rc;
}

int
xm_tls_handshake(struct xm_tls_conn *conn, short *events_r)
{
    int r;

    *events_r = 0;
    if (conn->state == CONN_OPEN)
        return XM_OK;
    if (conn->state == CONN_FAILED)
        return conn->rc;
    ERR_clear_error();
    errno = 0;
    r = SSL_do_handshake(conn->ssl);
    if (r == 1)
        return conn_verified(conn);
    return conn_result(conn, r, "handshake", events_r);
}

int
xm_tls_read(struct xm_tls_conn *conn, void *buf, size_t len,
            size_t *got_r, short *events_r)
{
    int r, e;

    *got_r = 0;
    *events_r = 0;
    if (conn->state == CONN_FAILED)
        return conn->rc;
    if (conn->state != CONN_OPEN)
        return XM_ERR_STATE;
    if (len == 0)
        return XM_ERR_INVAL;
    ERR_clear_error();
    errno = 0;
    r = SSL_read_ex(conn->ssl, buf, len, got_r);
    if (r == 1)
        return XM_OK;
    e = SSL_get_error(conn->ssl, r);
    if (e == SSL_ERROR_ZERO_RETURN)
        return XM_OK;             /* close_notify: *got_r == 0 */
    return conn_result(conn, r, "read", events_r);
}

int
xm_tls_write(struct xm_tls_conn *conn, const void *buf, size_t len,
             size_t *put_r, short *events_r)
{
    int r;

    *put_r = 0;
    *events_r = 0;
    if (conn->state == CONN_FAILED)
        return conn->rc;
    if (conn->state != CONN_OPEN)
        return XM_ERR_STATE;
    if (len == 0)
        return XM_ERR_INVAL;
    ERR_clear_error();
    errno = 0;
    r = SSL_write_ex(conn->ssl, buf, len, put_r);
    if (r == 1)
        return XM_OK;
    return conn_result(conn, r, "write", events_r);
}

int
xm_tls_flush(struct xm_tls_conn *conn, short *events_r)
{
    *events_r = 0;
    if (conn->state == CONN_FAILED)
        return conn->rc;
    if (conn->state != CONN_OPEN)
        return XM_ERR_STATE;
    if (BIO_wpending(conn->wbio) == 0)
        return XM_OK;
    ERR_clear_error();
    errno = 0;
    if (BIO_flush(conn->wbio) > 0)
        return XM_OK;
    if (BIO_should_retry(conn->wbio)) {
        *events_r = POLLOUT;
        return XM_ERR_BUSY;
    }
    return conn_fail(conn, XM_ERR_IO, "write",
                     errno ? strerror(errno) : "connection closed");
}

size_t
xm_tls_unsent(const struct xm_tls_conn *conn)
{
    int n = BIO_wpending(conn->wbio);

    return n > 0 ? (size_t)n : 0;
}

int
xm_tls_shutdown(struct xm_tls_conn *conn, short *events_r)
{
    int r;

    *events_r = 0;
    if (conn->state == CONN_FAILED)
        return conn->rc;
    if (conn->state != CONN_OPEN)
        return XM_ERR_STATE;
    ERR_clear_error();
    errno = 0;
    r = SSL_shutdown(conn->ssl);
    if (r >= 0)
        return XM_OK;             /* ours sent; not waiting for theirs */
    return conn_result(conn, r, "shutdown", events_r);
}

const char *
xm_tls_peer_name(const struct xm_tls_conn *conn)
{
    return conn->state == CONN_OPEN ? conn->peer_name : NULL;
}

bool
xm_tls_peer_has_name(const struct xm_tls_conn *conn, const char *name)
{
    X509 *cert;

    if (conn->state != CONN_OPEN || !xm_proto_host_valid(name))
        return false;
    cert = SSL_get0_peer_certificate(conn->ssl);
    return cert && X509_check_host(cert, name, strlen(name),
                                   HOST_CHECK_FLAGS, NULL) == 1;
}

const char *
xm_tls_cipher_name(const struct xm_tls_conn *conn)
{
    const SSL_CIPHER *c;

    if (conn->state != CONN_OPEN)
        return NULL;
    c = SSL_get_current_cipher(conn->ssl);
    return c ? SSL_CIPHER_standard_name(c) : NULL;
}

const char *
xm_tls_conn_error(const struct xm_tls_conn *conn)
{
    return conn->err;
}
