/*
 * peer.h -- the link between this agent and the agents of its peers.
 *
 * Agents talk over TCP with mutual TLS (tools/lib/xm_tls.h), each
 * connection opening with the versioned hello and then carrying typed,
 * length-checked frames (tools/lib/xm_proto.h).  A peer is accepted only
 * when its certificate, signed by the pool's CA, names a host of our
 * peer list, and its hello names the same host; before that not a byte
 * of a request is read.  The link gives the agent its peer transport
 * (struct agent_peers) and answers the peers' questions with the
 * agent's own state.
 */
#ifndef XM_PEER_H
#define XM_PEER_H

#include <stdint.h>

#include "agent.h"
#include "loop.h"
#include "xm_config.h"

#define PEER_QUERY_TIMEOUT_MS 8000
#define PEER_IDLE_TIMEOUT_MS 30000

struct peer_link;

int peer_link_new(const struct xm_config *cfg, struct xm_loop *loop,
                  struct peer_link **link_r);
/* The agent whose state answers STATUS_REQ. */
void peer_link_set_agent(struct peer_link *link, struct agent *agent);
/* The feature bits offered in our hellos from now on: those of this
 * build (XM_PROTO_FEATURES) by default, fewer to play an older agent
 * (tests). */
void peer_link_set_features(struct peer_link *link, uint32_t features);
/* Load the TLS material and listen (when TLS is configured). */
int peer_link_start(struct peer_link *link);
struct agent_peers peer_link_ops(struct peer_link *link);
/* Answer pending queries "stopped" and close every connection (a
 * migration channel's quietly); the channels stay until closed. */
void peer_link_shutdown(struct peer_link *link);    /* accepts NULL */
/* Closes every connection; pending queries are answered "stopped". */
void peer_link_free(struct peer_link *link);        /* accepts NULL */
/* The port actually bound (tests listen on port 0). */
int peer_link_port(const struct peer_link *link);

#endif /* XM_PEER_H */
