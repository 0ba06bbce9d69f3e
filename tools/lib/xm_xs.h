/*
 * xm_xs.h -- the xenstore interface.
 *
 * The agent and the xl subcommands reach xenstore only through this small
 * table of operations, so that unit tests can run them against the
 * in-process double in tests/fakes/xs_fake.c (which also injects faults)
 * while the lab runs them against the real xenstored through libxenstore
 * (xm_xs_real.c).
 *
 * Conventions: every path is an absolute xenstore path that is listed in
 * xenstore-schema/schema.txt.  Values are byte strings of at most
 * XM_XS_VALUE_MAX bytes; read returns a NUL-terminated heap copy that the
 * caller frees.  Permissions use xenstore-chmod's text form, one entry per
 * element: "n0" (owner dom0, nobody else), "r5" (domain 5 may read),
 * "b5", "w5", "n5".  The first element names the owner and the access of
 * every domain not listed.  All functions return XM_OK or an XM_ERR_*
 * code; XM_ERR_NOTFOUND for a missing key, XM_ERR_BUSY when a transaction
 * must be retried (EAGAIN from xenstored).
 */
#ifndef XM_XS_H
#define XM_XS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define XM_XS_PATH_MAX 256     /* longest path we build or accept */
#define XM_XS_VALUE_MAX 4096   /* longest value we write or accept */
#define XM_XS_PERMS_MAX 8      /* permission entries per key */

typedef uint32_t xm_xs_txn;    /* 0 means "no transaction" */
#define XM_XS_NO_TXN ((xm_xs_txn)0)

struct xm_xs_perm {
    uint32_t domid;
    char access;               /* 'n' none, 'r' read, 'w' write, 'b' both */
};

struct xm_xs_ops {
    /* Read path.  *value_r is a heap string (NUL-terminated, also NUL
     * inside never happens for valid keys); *len_r (may be NULL) its
     * length. */
    int (*read)(void *ctx, xm_xs_txn t, const char *path,
                char **value_r, size_t *len_r);
    int (*write)(void *ctx, xm_xs_txn t, const char *path,
                 const char *value, size_t len);
    int (*mkdir)(void *ctx, xm_xs_txn t, const char *path);
    /* Remove path and everything under it; a missing path is XM_OK. */
    int (*rm)(void *ctx, xm_xs_txn t, const char *path);
    /* Children of path: *names_r is a heap array of n heap strings,
     * freed with xm_xs_free_list. */
    int (*directory)(void *ctx, xm_xs_txn t, const char *path,
                     char ***names_r, unsigned *n_r);
    int (*set_perms)(void *ctx, xm_xs_txn t, const char *path,
                     const struct xm_xs_perm *perms, unsigned n);
    int (*get_perms)(void *ctx, xm_xs_txn t, const char *path,
                     struct xm_xs_perm *perms_r, unsigned max,
                     unsigned *n_r);
    int (*txn_start)(void *ctx, xm_xs_txn *t_r);
    /* End a transaction: commit (abort == false) or abort.  A commit that
     * lost a race returns XM_ERR_BUSY: run the whole body again. */
    int (*txn_end)(void *ctx, xm_xs_txn t, bool abort);
    /* Watches.  The token is a short caller string echoed back. */
    int (*watch)(void *ctx, const char *path, const char *token);
    int (*unwatch)(void *ctx, const char *path, const char *token);
    /* An fd that becomes readable when watch events are queued. */
    int (*watch_fd)(void *ctx);
    /* Take the next queued event without blocking: XM_OK with heap
     * strings in *path_r and *token_r, or XM_ERR_BUSY when none is
     * queued. */
    int (*next_event)(void *ctx, char **path_r, char **token_r);
    /* Our own domain id (0 in dom0). */
    int (*own_domid)(void *ctx, uint32_t *domid_r);
    void (*close)(void *ctx);
};

struct xm_xs {
    const struct xm_xs_ops *ops;
    void *ctx;
};

/* The real backend: connects to xenstored through libxenstore. */
int xm_xs_real_open(struct xm_xs *xs_r);

/* Convenience wrappers (xm_xs.c), all through ops. */
void xm_xs_close(struct xm_xs *xs);
void xm_xs_free_list(char **names, unsigned n);
int xm_xs_read(struct xm_xs *xs, xm_xs_txn t, const char *path,
               char **value_r);
int xm_xs_write_str(struct xm_xs *xs, xm_xs_txn t, const char *path,
                    const char *value);
/* printf-style value; path is a plain string. */
int xm_xs_writef(struct xm_xs *xs, xm_xs_txn t, const char *path,
                 const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Build a path from a format into buf (XM_XS_PATH_MAX bytes); the format
 * must be a literal listed in the schema, e.g.
 * "/tool/xenmaint/job/%s/state".  XM_ERR_TOOBIG when it does not fit. */
int xm_xs_path(char *buf, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Parse "n0 r5" style text into perms. */
int xm_xs_parse_perms(const char *text, struct xm_xs_perm *perms_r,
                      unsigned max, unsigned *n_r);

/*
 * Run body(xs, t, arg) inside a transaction, retrying when the commit
 * loses a race (at most max_tries times, XM_ERR_BUSY after that).  A body
 * error aborts the transaction and is returned as is.
 */
typedef int xm_xs_txn_body(struct xm_xs *xs, xm_xs_txn t, void *arg);
int xm_xs_transact(struct xm_xs *xs, xm_xs_txn_body *body, void *arg,
                   unsigned max_tries);

#endif /* XM_XS_H */
