/*
 * xm_xs.c -- convenience wrappers over the xenstore interface (xm_xs.h).
 *
 * Everything here goes through the ops table, so the same code runs
 * against libxenstore (xm_xs_real.c) and the unit tests' in-process
 * double.  The wrappers add what every caller would otherwise repeat:
 * length limits on paths and values, printf-style values and paths,
 * the text form of permissions, and the transaction retry loop.
 */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xm_err.h"
#include "xm_xs.h"

/* Domain ids are 16 bits wide in Xen; DOMID_FIRST_RESERVED is 0x7FF0. */
#define XS_DOMID_LIMIT 0x7FF0u

static int
check_path(const char *path)
{
    if (!path || path[0] != '/')
        return XM_ERR_INVAL;
    if (strnlen(path, XM_XS_PATH_MAX) >= XM_XS_PATH_MAX)
        return XM_ERR_TOOBIG;
    return XM_OK;
}

void
xm_xs_close(struct xm_xs *xs)
{
    if (!xs || !xs->ops)
        return;
    xs->ops->close(xs->ctx);
    xs->ops = NULL;
    xs->ctx = NULL;
}

void
xm_xs_free_list(char **names, unsigned n)
{
    if (!names)
        return;
    for (unsigned i = 0; i < n; i++)
        free(names[i]);
    free(names);
}

int
xm_xs_read(struct xm_xs *xs, xm_xs_txn t, const char *path, char **value_r)
{
    int rc;

    *value_r = NULL;
    rc = check_path(path);
    if (rc)
        return rc;
    return xs->ops->read(xs->ctx, t, path, value_r, NULL);
}

int
xm_xs_write_str(struct xm_xs *xs, xm_xs_txn t, const char *path,
                const char *value)
{
    size_t len;
    int rc;

    rc = check_path(path);
    if (rc)
        return rc;
    len = strnlen(value, XM_XS_VALUE_MAX + 1);
    if (len > XM_XS_VALUE_MAX)
        return XM_ERR_TOOBIG;
    return xs->ops->write(xs->ctx, t, path, value, len);
}

int
xm_xs_writef(struct xm_xs *xs, xm_xs_txn t, const char *path,
             const char *fmt, ...)
{
    char *buf = NULL;
    va_list ap;
    int r;
    int rc;

    rc = check_path(path);
    if (rc)
        goto out;
    buf = malloc(XM_XS_VALUE_MAX + 1);
    if (!buf) {
        rc = XM_ERR_NOMEM;
        goto out;
    }
    va_start(ap, fmt);
    r = vsnprintf(buf, XM_XS_VALUE_MAX + 1, fmt, ap);
    va_end(ap);
    if (r < 0) {
        rc = XM_ERR_INVAL;
        goto out;
    }
    if ((size_t)r > XM_XS_VALUE_MAX) {
        rc = XM_ERR_TOOBIG;
        goto out;
    }
    rc = xs->ops->write(xs->ctx, t, path, buf, (size_t)r);
out:
    free(buf);
    return rc;
}

int
xm_xs_path(char *buf, const char *fmt, ...)
{
    va_list ap;
    int r;

    va_start(ap, fmt);
    r = vsnprintf(buf, XM_XS_PATH_MAX, fmt, ap);
    va_end(ap);
    if (r < 0) {
        buf[0] = '\0';
        return XM_ERR_INVAL;
    }
    if (r >= XM_XS_PATH_MAX) {
        /* Never leave a truncated path behind for a careless caller. */
        buf[0] = '\0';
        return XM_ERR_TOOBIG;
    }
    return XM_OK;
}

/* One "r5" style element; *end_r points past it. */
static int
parse_perm(const char *s, struct xm_xs_perm *perm_r, const char **end_r)
{
    unsigned long domid = 0;
    const char *p = s + 1;

    switch (s[0]) {
    case 'n': case 'r': case 'w': case 'b':
        break;
    default:
        return XM_ERR_INVAL;
    }
    if (!isdigit((unsigned char)*p))
        return XM_ERR_INVAL;
    /* Digits by hand: strtoul would accept signs and spaces. */
    while (isdigit((unsigned char)*p)) {
        domid = domid * 10 + (unsigned long)(*p - '0');
        if (domid >= XS_DOMID_LIMIT)
            return XM_ERR_INVAL;
        p++;
    }
    if (*p != '\0' && *p != ' ' && *p != '\t')
        return XM_ERR_INVAL;
    perm_r->access = s[0];
    perm_r->domid = (uint32_t)domid;
    *end_r = p;
    return XM_OK;
}

int
xm_xs_parse_perms(const char *text, struct xm_xs_perm *perms_r,
                  unsigned max, unsigned *n_r)
{
    const char *p = text;
    unsigned n = 0;
    int rc;

    *n_r = 0;
    if (!text)
        return XM_ERR_INVAL;
    for (;;) {
        struct xm_xs_perm perm;

        while (*p == ' ' || *p == '\t')
            p++;
        if (*p == '\0')
            break;
        rc = parse_perm(p, &perm, &p);
        if (rc)
            return rc;
        if (n >= max)
            return XM_ERR_TOOBIG;
        perms_r[n++] = perm;
    }
    if (n == 0)
        return XM_ERR_INVAL;
    *n_r = n;
    return XM_OK;
}

int
xm_xs_transact(struct xm_xs *xs, xm_xs_txn_body *body, void *arg,
               unsigned max_tries)
{
    int rc = XM_ERR_BUSY;

    if (max_tries == 0)
        return XM_ERR_INVAL;
    for (unsigned try = 0; try < max_tries; try++) {
        xm_xs_txn t = XM_XS_NO_TXN;

        rc = xs->ops->txn_start(xs->ctx, &t);
        if (rc)
            return rc;
        rc = body(xs, t, arg);
        if (rc) {
            /* The body's error is the one the caller needs to see. */
            (void)xs->ops->txn_end(xs->ctx, t, true);
            return rc;
        }
        rc = xs->ops->txn_end(xs->ctx, t, false);
        if (rc != XM_ERR_BUSY)
            return rc;
    }
    return XM_ERR_BUSY;
}
