/*
 * agent.h -- the heart of xenmaintd.
 *
 * The agent owns this host's part of /tool/xenmaint: it creates the tree
 * with the schema's permissions, publishes the host's state, takes the
 * requests the xl subcommands write under /tool/xenmaint/request and
 * answers each under /tool/xenmaint/job/<id>.  It reaches the world only
 * through the interfaces it is given (xenstore, hypervisor, clock, event
 * loop, peers), so the unit tests run it against the doubles and the lab
 * against real Xen.
 */
#ifndef XM_AGENT_H
#define XM_AGENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "loop.h"
#include "xm_clock.h"
#include "xm_config.h"
#include "xm_hv.h"
#include "xm_json.h"
#include "xm_xs.h"

/* What a peer said about itself (or why it could not say). */
struct agent_peer_status {
    const char *name;
    int rc;                     /* XM_OK, or why the peer is unreachable */
    const char *error;          /* text when rc != XM_OK */
    const xm_json *status;      /* the peer's host block (see
                                 * agent_host_status) when rc == XM_OK */
};

typedef void agent_peer_status_fn(void *arg,
                                  const struct agent_peer_status *st,
                                  unsigned n);

/* The peer transport as the agent sees it.  query_status asks each named
 * peer for its host block and calls done exactly once, from the event
 * loop, with one entry per name in the same order; the entries live only
 * during the call. */
struct agent_peer_ops {
    int (*query_status)(void *ctx, const char *const *names, unsigned n,
                        agent_peer_status_fn *done, void *arg);
};

struct agent_peers {
    const struct agent_peer_ops *ops;
    void *ctx;
};

struct agent_deps {
    const struct xm_config *cfg;
    struct xm_xs *xs;
    struct xm_hv *hv;
    const struct xm_clock *clock;
    struct xm_loop *loop;
    struct agent_peers peers;
    int pid;                    /* published as agent/pid */
};

struct agent;

int agent_new(const struct agent_deps *deps, struct agent **agent_r);
/* Frees the agent (accepts NULL); call agent_stop first. */
void agent_free(struct agent *a);

/* Create the xenstore tree, publish the host, watch for requests, and
 * write agent/pid last.  Requests already waiting are taken at once. */
int agent_start(struct agent *a);
/* Remove agent/pid and stop watching: clients see the agent gone. */
void agent_stop(struct agent *a);

/* This host's status block (the "hosts" entries of maint-status and the
 * answer to a peer's STATUS_REQ), generated into g as one JSON object. */
int agent_host_status(struct agent *a, struct xm_jgen *g);

/* XM_OK, or why the agent stopped the loop by itself (it lost
 * xenstore): the daemon then exits non-zero. */
int agent_failed(const struct agent *a);

/* Jobs still running (for tests and shutdown). */
unsigned agent_jobs_running(const struct agent *a);

#endif /* XM_AGENT_H */
