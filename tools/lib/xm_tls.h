/*
 * xm_tls.h -- mutual TLS 1.3 between agents, non-blocking, for one
 * poll() loop.
 *
 * Each host holds a certificate signed by the pool's CA (made with
 * xenmaint-pki).  Both ends require the other's certificate, verify it
 * against the pool CA only (never the system store), and check that it
 * names the expected host: its CN or a subjectAltName DNS name equals
 * the configured peer name.  A server that accepts any pool member
 * passes no name and reads the verified one with xm_tls_peer_name.
 * Nothing is read from a connection before its handshake and that
 * verification have succeeded.
 *
 * Every call returns at once: XM_OK, XM_ERR_BUSY with the poll events
 * to wait for (POLLIN or POLLOUT) in *events_r, or an error.  The
 * connection does not own its fd (the caller closes it) but puts it in
 * non-blocking mode.  Writing to a peer that has gone raises SIGPIPE:
 * programs using this ignore SIGPIPE.  No logging: the last failure of
 * a context or connection is described in text for the caller's log.
 */
#ifndef XM_TLS_H
#define XM_TLS_H

#include <stdbool.h>
#include <stddef.h>

struct xm_tls_ctx;
struct xm_tls_conn;

/* TLS 1.3 ciphersuite preference.  AUTO puts AES-GCM first when the CPU
 * has AES instructions and ChaCha20-Poly1305 first when it has not
 * (ChaCha is several times faster in software, e.g. under emulation).
 * The server's order decides, except that a client preferring ChaCha
 * gets it: so ChaCha is used whenever either end lacks AES. */
enum xm_tls_ciphers {
    XM_TLS_CIPHERS_AUTO,
    XM_TLS_CIPHERS_AES_FIRST,
    XM_TLS_CIPHERS_CHACHA_FIRST,
};

/* Does this CPU have AES instructions (x86 AES-NI, ARMv8 AES)? */
bool xm_tls_cpu_has_aes(void);

/* A context from the pool CA, this host's certificate and its private
 * key (PEM files).  On failure err_r (errlen bytes) names the bad file
 * and says what is wrong with it: XM_ERR_NOTFOUND/XM_ERR_PERM/... when
 * it cannot be opened, XM_ERR_CONFIG when it cannot be used (not PEM,
 * key not matching the certificate, certificate not from that CA). */
int xm_tls_ctx_new(const char *ca_file, const char *cert_file,
                   const char *key_file, enum xm_tls_ciphers ciphers,
                   struct xm_tls_ctx **ctx_r, char *err_r, size_t errlen);
void xm_tls_ctx_free(struct xm_tls_ctx *ctx);      /* accepts NULL */
/* The TLS 1.3 ciphersuite list in the order this context prefers. */
const char *xm_tls_ctx_ciphersuites(const struct xm_tls_ctx *ctx);

/* Wrap a connected socket.  A client must name the server it expects;
 * a server may name the client it expects or pass NULL to accept any
 * certificate of the pool.  XM_ERR_INVAL for a bad name. */
int xm_tls_conn_new_client(struct xm_tls_ctx *ctx, int fd,
                           const char *expected_name,
                           struct xm_tls_conn **conn_r);
int xm_tls_conn_new_server(struct xm_tls_ctx *ctx, int fd,
                           const char *expected_name,
                           struct xm_tls_conn **conn_r);
void xm_tls_conn_free(struct xm_tls_conn *conn);   /* accepts NULL */

/* Drive the handshake: XM_OK when done and the peer verified,
 * XM_ERR_BUSY (see *events_r), XM_ERR_TLS when refused (a missing or
 * untrusted certificate, the wrong name; see xm_tls_conn_error), or
 * XM_ERR_IO when the peer went away.  Failures are final.  Under TLS
 * 1.3 the client finishes before the server has checked the client's
 * certificate: a client refused then sees XM_ERR_TLS on its first read.
 * The caller bounds the handshake with its own timer. */
int xm_tls_handshake(struct xm_tls_conn *conn, short *events_r);

/* Read up to len bytes: XM_OK with *got_r > 0; XM_OK with *got_r == 0
 * when the peer closed cleanly (close_notify); XM_ERR_BUSY; XM_ERR_IO
 * (reset, EOF without close_notify); XM_ERR_TLS.  XM_ERR_STATE before
 * the handshake succeeded.  TLS buffers records: after POLLIN, read
 * until XM_ERR_BUSY. */
int xm_tls_read(struct xm_tls_conn *conn, void *buf, size_t len,
                size_t *got_r, short *events_r);
/* Write up to len bytes: XM_OK with *put_r > 0 (maybe fewer than len);
 * XM_ERR_BUSY, after which the next call must pass the same bytes
 * again at its start (the buffer may move); errors as xm_tls_read. */
int xm_tls_write(struct xm_tls_conn *conn, const void *buf, size_t len,
                 size_t *put_r, short *events_r);
/* What xm_tls_write took waits in a buffer (records are sent several
 * per system call): hand it to the socket.  XM_OK once all went,
 * XM_ERR_BUSY (POLLOUT: call again), errors as xm_tls_read. */
int xm_tls_flush(struct xm_tls_conn *conn, short *events_r);
/* Bytes of records taken but not yet given to the socket. */
size_t xm_tls_unsent(const struct xm_tls_conn *conn);
/* Send close_notify: XM_OK, XM_ERR_BUSY, or an error (then just close
 * the fd). */
int xm_tls_shutdown(struct xm_tls_conn *conn, short *events_r);

/* After the handshake: the peer's verified host name (its certificate
 * CN), or NULL before. */
const char *xm_tls_peer_name(const struct xm_tls_conn *conn);
/* After the handshake: does the peer's certificate name this host (CN
 * or a subjectAltName DNS name, no wildcards)? */
bool xm_tls_peer_has_name(const struct xm_tls_conn *conn,
                          const char *name);
/* The negotiated ciphersuite, e.g. "TLS_AES_256_GCM_SHA384", or NULL
 * before the handshake. */
const char *xm_tls_cipher_name(const struct xm_tls_conn *conn);
/* Text of the last failure on conn ("" if none). */
const char *xm_tls_conn_error(const struct xm_tls_conn *conn);

#endif /* XM_TLS_H */
