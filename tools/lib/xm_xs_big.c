/*
 * xm_xs_big.c -- chunked xenstore values (see xm_xs_big.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xm_err.h"
#include "xm_xs_big.h"

#define CHUNK_MARK "@chunks "

int
xm_xs_write_big(struct xm_xs *xs, xm_xs_txn t, const char *path,
                const char *value, size_t len)
{
    char sub[XM_XS_PATH_MAX], mark[32];
    size_t n, i;
    int rc;

    if (len <= XM_XS_CHUNK)
        return xs->ops->write(xs->ctx, t, path, value, len);
    n = (len + XM_XS_CHUNK - 1) / XM_XS_CHUNK;
    if (n > XM_XS_CHUNKS_MAX)
        return XM_ERR_TOOBIG;
    for (i = 0; i < n; i++) {
        size_t off = i * XM_XS_CHUNK;
        size_t piece = len - off < XM_XS_CHUNK ? len - off : XM_XS_CHUNK;
        int k = snprintf(sub, sizeof(sub), "%s/%zu", path, i);
        if (k < 0 || (size_t)k >= sizeof(sub))
            return XM_ERR_TOOBIG;
        rc = xs->ops->write(xs->ctx, t, sub, value + off, piece);
        if (rc)
            return rc;
    }
    snprintf(mark, sizeof(mark), CHUNK_MARK "%zu", n);
    return xs->ops->write(xs->ctx, t, path, mark, strlen(mark));
}

int
xm_xs_read_big(struct xm_xs *xs, xm_xs_txn t, const char *path,
               char **value_r, size_t *len_r)
{
    char sub[XM_XS_PATH_MAX];
    char *head = NULL, *all = NULL, *piece = NULL, *end;
    size_t hlen = 0, n, len = 0, plen;
    int rc;

    rc = xs->ops->read(xs->ctx, t, path, &head, &hlen);
    if (rc)
        return rc;
    if (strncmp(head, CHUNK_MARK, strlen(CHUNK_MARK)) != 0) {
        *value_r = head;
        if (len_r)
            *len_r = hlen;
        return XM_OK;
    }
    n = strtoul(head + strlen(CHUNK_MARK), &end, 10);
    if (*end != '\0' || n == 0 || n > XM_XS_CHUNKS_MAX) {
        rc = XM_ERR_INVAL;
        goto out;
    }
    all = malloc(n * XM_XS_CHUNK + 1);
    if (!all) {
        rc = XM_ERR_NOMEM;
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        int k = snprintf(sub, sizeof(sub), "%s/%zu", path, i);
        if (k < 0 || (size_t)k >= sizeof(sub)) {
            rc = XM_ERR_TOOBIG;
            goto out;
        }
        rc = xs->ops->read(xs->ctx, t, sub, &piece, &plen);
        if (rc)
            goto out;
        /* every chunk but the last is full; none is larger */
        if (plen > XM_XS_CHUNK || (i + 1 < n && plen != XM_XS_CHUNK)) {
            rc = XM_ERR_INVAL;
            goto out;
        }
        memcpy(all + len, piece, plen);
        len += plen;
        free(piece);
        piece = NULL;
    }
    all[len] = '\0';
    *value_r = all;
    all = NULL;
    if (len_r)
        *len_r = len;
    rc = XM_OK;
out:
    free(head);
    free(piece);
    free(all);
    return rc;
}
