/*
 * xs_fake.h -- an in-process xenstore for unit tests.
 *
 * One xs_fake is one store (a tree of nodes with values and permissions);
 * xs_fake_connect gives an xm_xs connection to it acting as a domain, so
 * a test can be the agent (dom0) and a guest (domid 5) at once and see
 * permission checks bite.  Each connection has its own watches and event
 * queue, signalled through a pipe so that poll() loops work unchanged.
 * Transactions follow xenstored's rule: a commit fails with XM_ERR_BUSY
 * when the store changed since the transaction started.  Every operation
 * passes through fault_check (tests/fakes/fault.h) with the operation's
 * name ("read", "write", "mkdir", "rm", "directory", "set_perms",
 * "get_perms", "txn_start", "txn_end", "watch", "unwatch").
 */
#ifndef XM_TEST_XS_FAKE_H
#define XM_TEST_XS_FAKE_H

#include <stddef.h>
#include <stdint.h>

#include "fault.h"
#include "xm_xs.h"

struct xs_fake;

struct xs_fake *xs_fake_new(void);
/* Frees the store; every connection must be closed first. */
void xs_fake_free(struct xs_fake *f);
/* A new connection acting as domid; close it with xm_xs_close. */
int xs_fake_connect(struct xs_fake *f, uint32_t domid, struct xm_xs *xs_r);
struct fault *xs_fake_fault(struct xs_fake *f);

/* Called after every successful write by any connection (not inside an
 * uncommitted transaction): lets a test play the other party. */
typedef void xs_fake_write_hook(void *arg, const char *path,
                                const char *value, size_t len);
void xs_fake_on_write(struct xs_fake *f, xs_fake_write_hook *hook,
                      void *arg);

/* Test-side peeks that bypass permissions and faults. */
int xs_fake_peek(struct xs_fake *f, const char *path, char **value_r);
unsigned xs_fake_count_nodes(struct xs_fake *f);

#endif
