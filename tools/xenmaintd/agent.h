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
#include "migexec.h"
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

/* A connection from a peer that no migration owns yet (opaque). */
struct agent_conn;

/* What a migration channel tells its owner (the agent's migration
 * table), from inside the loop. */
struct agent_chan_cb {
    /* A frame for this migration; an error drops the connection (and
     * link(false) follows). */
    int (*frame)(void *arg, const struct xm_frame *f);
    /* The connection came up (outgoing: hellos exchanged) or was lost
     * (or a connect attempt failed). */
    void (*link)(void *arg, bool up);
    /* The connection's send queue went down: the stream may go on. */
    void (*drain)(void *arg);
};

/* The peer transport as the agent sees it.  query_status asks each named
 * peer for its host block and calls done exactly once, from the event
 * loop, with one entry per name in the same order; the entries live only
 * during the call. */
struct agent_peer_ops {
    int (*query_status)(void *ctx, const char *const *names, unsigned n,
                        agent_peer_status_fn *done, void *arg);
    /* One request frame (type, JSON payload) to peer on a connection of
     * its own, answered by one frame of resp_type: done gets it as
     * status (one entry), as for query_status. */
    int (*ask)(void *ctx, const char *peer, uint16_t type,
               const char *json, size_t len, uint16_t resp_type,
               agent_peer_status_fn *done, void *arg);
    /* A channel for one migration to or from peer (migexec.h).  With
     * conn the channel takes that incoming connection; without, it
     * connects when the executor asks.  chan_r gets its migexec ops. */
    int (*chan_open)(void *ctx, const char *peer, struct agent_conn *conn,
                     const struct agent_chan_cb *cb, void *arg,
                     struct migexec_chan *chan_r);
    /* Move an open channel onto conn (a peer that reconnected); the old
     * connection, if any, is closed without a link callback. */
    void (*chan_attach)(void *ctx, void *chan, struct agent_conn *conn);
    /* Close the channel and its connection; no callback follows. */
    void (*chan_close)(void *ctx, void *chan);
    /* Answer on a connection no channel owns. */
    int (*conn_reply)(void *ctx, struct agent_conn *conn, uint16_t type,
                      const char *json, size_t len);
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

/* A migration frame (OFFER, MIGRATE_STATUS_REQ, MIGRATE_PULL) on a
 * connection from peer (its certificate's name) that no channel owns:
 * the agent takes it (chan_open/chan_attach) or answers (conn_reply).
 * An error drops the connection. */
int agent_peer_frame(struct agent *a, const char *peer,
                     struct agent_conn *conn, const struct xm_frame *f);

/* Migrations in flight (for shutdown: the agent stops only when none
 * has a hypervisor operation running). */
unsigned agent_migrations_busy(const struct agent *a);

/* Jobs still running (for tests and shutdown). */
unsigned agent_jobs_running(const struct agent *a);

#endif /* XM_AGENT_H */
