/*
 * xm_xs_big.h -- values larger than one xenstore message.
 *
 * xenstored carries at most 4096 bytes in a message, and a drain plan or
 * a pool status can be longer.  A big value is stored as chunks: the
 * node itself holds "@chunks N" and its children 0..N-1 hold consecutive
 * pieces of at most XM_XS_CHUNK bytes.  A value that fits is stored
 * as is.  "@" cannot start a JSON text, so a reader tells the two apart
 * without a flag.  Writers write the chunks first and the node last, so
 * a reader that saw the node sees every chunk.
 */
#ifndef XM_XS_BIG_H
#define XM_XS_BIG_H

#include <stddef.h>

#include "xm_xs.h"

#define XM_XS_CHUNK 3072u
#define XM_XS_CHUNKS_MAX 256u    /* 768 KiB at most */

int xm_xs_write_big(struct xm_xs *xs, xm_xs_txn t, const char *path,
                    const char *value, size_t len);
/* Heap, NUL-terminated; *len_r may be NULL. */
int xm_xs_read_big(struct xm_xs *xs, xm_xs_txn t, const char *path,
                   char **value_r, size_t *len_r);

#endif /* XM_XS_BIG_H */
