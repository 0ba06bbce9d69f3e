/*
 * xm_xs_real.c -- the xenstore interface over libxenstore.
 *
 * The backend the agent and the xl subcommands use on a real host: one
 * xs_open(0) connection (socket to xenstored in dom0, or the xenbus
 * device), the ops of xm_xs.h mapped one to one onto libxenstore, and
 * errno translated once here.  xenstored is another process and what it
 * returns is treated as input: values, names and permission lists over
 * the limits of xm_xs.h are errors, never silently truncated.
 *
 * Watch events: libxenstore queues them in a reader thread and signals a
 * pipe whose read end xs_fileno returns.  xs_check_watch takes one event
 * without blocking and may drain the pipe while more events are queued,
 * so a caller must call next_event until it says XM_ERR_BUSY each time
 * the fd polls readable, not once per wake-up.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <xenstore.h>

#include "xm_err.h"
#include "xm_xs.h"

#define XS_TOKEN_MAX 64
#define XS_DOMID_LIMIT 0x7FF0u

struct xs_real {
    struct xs_handle *h;
    int watch_fd;
};

/* errno after a failed libxenstore call, as a project code. */
static int
xs_errno_rc(void)
{
    switch (errno) {
    case ENOENT: return XM_ERR_NOTFOUND;
    case EACCES: case EPERM: return XM_ERR_PERM;
    case EAGAIN: return XM_ERR_BUSY;
    case EEXIST: return XM_ERR_EXISTS;
    case EINVAL: return XM_ERR_INVAL;
    case ENOMEM: return XM_ERR_NOMEM;
    case E2BIG: case ENOSPC: return XM_ERR_TOOBIG;
    default: return XM_ERR_XS;
    }
}

static int
check_path(const char *path)
{
    if (!path || path[0] != '/')
        return XM_ERR_INVAL;
    if (strnlen(path, XM_XS_PATH_MAX) >= XM_XS_PATH_MAX)
        return XM_ERR_TOOBIG;
    return XM_OK;
}

static int
real_read(void *ctx, xm_xs_txn t, const char *path, char **value_r,
          size_t *len_r)
{
    struct xs_real *x = ctx;
    unsigned int len = 0;
    char *v = NULL;
    int rc;

    *value_r = NULL;
    if (len_r)
        *len_r = 0;
    rc = check_path(path);
    if (rc)
        goto out;
    v = xs_read(x->h, t, path, &len);
    if (!v) {
        rc = xs_errno_rc();
        goto out;
    }
    if (len > XM_XS_VALUE_MAX) {
        rc = XM_ERR_TOOBIG;
        goto out;
    }
    /* libxenstore NUL-terminates; a NUL inside is not a valid value. */
    if (memchr(v, '\0', len)) {
        rc = XM_ERR_INVAL;
        goto out;
    }
    *value_r = v;
    v = NULL; /* caller owns it */
    if (len_r)
        *len_r = len;
out:
    free(v);
    return rc;
}

static int
real_write(void *ctx, xm_xs_txn t, const char *path, const char *value,
           size_t len)
{
    struct xs_real *x = ctx;
    int rc;

    rc = check_path(path);
    if (rc)
        return rc;
    if (len > XM_XS_VALUE_MAX)
        return XM_ERR_TOOBIG;
    if (!xs_write(x->h, t, path, value, (unsigned int)len))
        return xs_errno_rc();
    return XM_OK;
}

static int
real_mkdir(void *ctx, xm_xs_txn t, const char *path)
{
    struct xs_real *x = ctx;
    int rc;

    rc = check_path(path);
    if (rc)
        return rc;
    if (!xs_mkdir(x->h, t, path))
        return xs_errno_rc();
    return XM_OK;
}

static int
real_rm(void *ctx, xm_xs_txn t, const char *path)
{
    struct xs_real *x = ctx;
    int rc;

    rc = check_path(path);
    if (rc)
        return rc;
    if (!xs_rm(x->h, t, path)) {
        rc = xs_errno_rc();
        /* Removing what is not there is success in xm_xs.h. */
        return rc == XM_ERR_NOTFOUND ? XM_OK : rc;
    }
    return XM_OK;
}

static int
real_directory(void *ctx, xm_xs_txn t, const char *path, char ***names_r,
               unsigned *n_r)
{
    struct xs_real *x = ctx;
    unsigned int num = 0;
    char **raw = NULL;
    char **names = NULL;
    unsigned n = 0;
    int rc;

    *names_r = NULL;
    *n_r = 0;
    rc = check_path(path);
    if (rc)
        goto out;
    raw = xs_directory(x->h, t, path, &num);
    if (!raw) {
        rc = xs_errno_rc();
        goto out;
    }
    /* One block from libxenstore; the interface wants one heap string
     * per name, freed by xm_xs_free_list. */
    names = calloc(num ? num : 1, sizeof(*names));
    if (!names) {
        rc = XM_ERR_NOMEM;
        goto out;
    }
    for (n = 0; n < num; n++) {
        if (strnlen(raw[n], XM_XS_PATH_MAX) >= XM_XS_PATH_MAX) {
            rc = XM_ERR_TOOBIG;
            goto out;
        }
        names[n] = strdup(raw[n]);
        if (!names[n]) {
            rc = XM_ERR_NOMEM;
            goto out;
        }
    }
    *names_r = names;
    *n_r = n;
    names = NULL; /* caller owns them */
out:
    xm_xs_free_list(names, n);
    free(raw);
    return rc;
}

static int
real_set_perms(void *ctx, xm_xs_txn t, const char *path,
               const struct xm_xs_perm *perms, unsigned n)
{
    struct xs_real *x = ctx;
    struct xs_permissions xp[XM_XS_PERMS_MAX];
    int rc;

    rc = check_path(path);
    if (rc)
        return rc;
    if (n == 0)
        return XM_ERR_INVAL;
    if (n > XM_XS_PERMS_MAX)
        return XM_ERR_TOOBIG;
    for (unsigned i = 0; i < n; i++) {
        xp[i].id = perms[i].domid;
        switch (perms[i].access) {
        case 'n': xp[i].perms = XS_PERM_NONE; break;
        case 'r': xp[i].perms = XS_PERM_READ; break;
        case 'w': xp[i].perms = XS_PERM_WRITE; break;
        case 'b': xp[i].perms = XS_PERM_READ | XS_PERM_WRITE; break;
        default: return XM_ERR_INVAL;
        }
    }
    if (!xs_set_permissions(x->h, t, path, xp, n))
        return xs_errno_rc();
    return XM_OK;
}

static int
real_get_perms(void *ctx, xm_xs_txn t, const char *path,
               struct xm_xs_perm *perms_r, unsigned max, unsigned *n_r)
{
    struct xs_real *x = ctx;
    struct xs_permissions *xp = NULL;
    unsigned int num = 0;
    int rc;

    *n_r = 0;
    rc = check_path(path);
    if (rc)
        goto out;
    xp = xs_get_permissions(x->h, t, path, &num);
    if (!xp) {
        rc = xs_errno_rc();
        goto out;
    }
    if (num == 0) {
        rc = XM_ERR_XS;
        goto out;
    }
    if (num > max) {
        rc = XM_ERR_TOOBIG;
        goto out;
    }
    for (unsigned i = 0; i < num; i++) {
        unsigned bits = xp[i].perms & (XS_PERM_READ | XS_PERM_WRITE);

        perms_r[i].domid = xp[i].id;
        perms_r[i].access = bits == (XS_PERM_READ | XS_PERM_WRITE) ? 'b'
                          : bits == XS_PERM_READ ? 'r'
                          : bits == XS_PERM_WRITE ? 'w' : 'n';
    }
    *n_r = num;
out:
    free(xp);
    return rc;
}

static int
real_txn_start(void *ctx, xm_xs_txn *t_r)
{
    struct xs_real *x = ctx;
    xs_transaction_t t;

    *t_r = XM_XS_NO_TXN;
    t = xs_transaction_start(x->h);
    if (t == XBT_NULL)
        return xs_errno_rc();
    *t_r = t;
    return XM_OK;
}

static int
real_txn_end(void *ctx, xm_xs_txn t, bool abort)
{
    struct xs_real *x = ctx;

    if (t == XM_XS_NO_TXN)
        return XM_ERR_INVAL;
    if (!xs_transaction_end(x->h, t, abort)) {
        /* EAGAIN means the commit lost a race: xs_errno_rc gives BUSY. */
        return xs_errno_rc();
    }
    return XM_OK;
}

static int
check_token(const char *token)
{
    if (!token || strnlen(token, XS_TOKEN_MAX + 1) > XS_TOKEN_MAX)
        return XM_ERR_INVAL;
    return XM_OK;
}

static int
real_watch(void *ctx, const char *path, const char *token)
{
    struct xs_real *x = ctx;
    int rc;

    rc = check_path(path);
    if (!rc)
        rc = check_token(token);
    if (rc)
        return rc;
    if (!xs_watch(x->h, path, token))
        return xs_errno_rc();
    return XM_OK;
}

static int
real_unwatch(void *ctx, const char *path, const char *token)
{
    struct xs_real *x = ctx;
    int rc;

    rc = check_path(path);
    if (!rc)
        rc = check_token(token);
    if (rc)
        return rc;
    if (!xs_unwatch(x->h, path, token))
        return xs_errno_rc();
    return XM_OK;
}

static int
real_watch_fd(void *ctx)
{
    struct xs_real *x = ctx;

    return x->watch_fd;
}

static int
real_next_event(void *ctx, char **path_r, char **token_r)
{
    struct xs_real *x = ctx;
    char **ev = NULL;
    char *path = NULL;
    char *token = NULL;
    int rc = XM_OK;

    *path_r = NULL;
    *token_r = NULL;
    errno = 0;
    ev = xs_check_watch(x->h);
    if (!ev) {
        rc = errno == EAGAIN ? XM_ERR_BUSY : XM_ERR_XS;
        goto out;
    }
    /* The event is consumed either way; an oversized one is reported
     * and the caller goes on with the next. */
    if (strnlen(ev[XS_WATCH_PATH], XM_XS_PATH_MAX) >= XM_XS_PATH_MAX ||
        strnlen(ev[XS_WATCH_TOKEN], XS_TOKEN_MAX + 1) > XS_TOKEN_MAX) {
        rc = XM_ERR_TOOBIG;
        goto out;
    }
    path = strdup(ev[XS_WATCH_PATH]);
    token = strdup(ev[XS_WATCH_TOKEN]);
    if (!path || !token) {
        rc = XM_ERR_NOMEM;
        goto out;
    }
    *path_r = path;
    *token_r = token;
    path = token = NULL; /* caller owns them */
out:
    free(path);
    free(token);
    free(ev); /* path and token live in the same block */
    return rc;
}

static int
real_own_domid(void *ctx, uint32_t *domid_r)
{
    struct xs_real *x = ctx;
    unsigned long domid = 0;
    unsigned int len = 0;
    char *v = NULL;
    int rc = XM_OK;

    *domid_r = 0;
    /* A relative path: our own /local/domain/<domid>/domid.  dom0 may
     * not have one (older toolstacks never wrote it). */
    v = xs_read(x->h, XBT_NULL, "domid", &len);
    if (!v) {
        rc = xs_errno_rc();
        if (rc == XM_ERR_NOTFOUND)
            rc = XM_OK; /* dom0 */
        goto out;
    }
    if (len == 0 || len > 5) {
        rc = XM_ERR_INVAL;
        goto out;
    }
    for (unsigned i = 0; i < len; i++) {
        if (v[i] < '0' || v[i] > '9') {
            rc = XM_ERR_INVAL;
            goto out;
        }
        domid = domid * 10 + (unsigned long)(v[i] - '0');
    }
    if (domid >= XS_DOMID_LIMIT) {
        rc = XM_ERR_INVAL;
        goto out;
    }
    *domid_r = (uint32_t)domid;
out:
    free(v);
    return rc;
}

static void
real_close(void *ctx)
{
    struct xs_real *x = ctx;

    if (!x)
        return;
    xs_close(x->h);
    free(x);
}

static const struct xm_xs_ops real_ops = {
    .read = real_read,
    .write = real_write,
    .mkdir = real_mkdir,
    .rm = real_rm,
    .directory = real_directory,
    .set_perms = real_set_perms,
    .get_perms = real_get_perms,
    .txn_start = real_txn_start,
    .txn_end = real_txn_end,
    .watch = real_watch,
    .unwatch = real_unwatch,
    .watch_fd = real_watch_fd,
    .next_event = real_next_event,
    .own_domid = real_own_domid,
    .close = real_close,
};

int
xm_xs_real_open(struct xm_xs *xs_r)
{
    struct xs_real *x = NULL;
    int rc;

    xs_r->ops = NULL;
    xs_r->ctx = NULL;
    x = calloc(1, sizeof(*x));
    if (!x) {
        rc = XM_ERR_NOMEM;
        goto out;
    }
    x->watch_fd = -1;
    x->h = xs_open(0);
    if (!x->h) {
        rc = XM_ERR_XS; /* no xenstored socket, no xenbus device */
        goto out;
    }
    /* Create the event pipe now, so that the fd is stable from the
     * first poll() on, before any watch is set. */
    x->watch_fd = xs_fileno(x->h);
    if (x->watch_fd < 0) {
        rc = XM_ERR_XS;
        goto out;
    }
    xs_r->ops = &real_ops;
    xs_r->ctx = x;
    x = NULL; /* the connection owns it */
    rc = XM_OK;
out:
    if (x) {
        xs_close(x->h);
        free(x);
    }
    return rc;
}
