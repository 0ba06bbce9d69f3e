/*
 * agent_int.h -- what agent.c (requests, jobs) and agent_ops.c (the
 * operations) share inside the agent.  Not an interface for anyone else.
 */
#ifndef XM_AGENT_INT_H
#define XM_AGENT_INT_H

#include <stdio.h>

#include "agent.h"
#include "migexec.h"
#include "xm_journal.h"
#include "xm_migrate.h"
#include "xm_request.h"

/* How a step of another job answers (see job_child_new). */
typedef void job_done_fn(void *arg, int code, const char *result,
                         const char *message);

struct job {
    struct agent *a;
    char id[XM_REQ_ID_MAX + 1];
    struct xm_request req;
    bool parsed;                /* req holds a valid request */
    struct job *next;
    /* A step of another job (a patch apply's drain and undrain): it has
     * its parent's id (its per-guest keys and cancel key are the
     * parent's), is not in the job list, and answers through done
     * instead of xenstore.  Its progress maps into the parent's as
     * pct_base + pct * pct_span / 100. */
    job_done_fn *done;
    void *done_arg;
    unsigned pct_base, pct_span;
};

struct mig;
/* A migration's owner hears of every report; after final it must
 * forget m (it is freed from the loop soon after). */
typedef void mig_notify_fn(void *arg, struct mig *m, bool final);

/* One live migration of this agent, either side. */
struct mig {
    struct agent *a;
    struct mig *next;
    struct migexec *x;
    struct migexec_chan ch;     /* ch.ctx: the peer link's channel */
    enum xm_mig_side side;
    struct xm_mig_ident ident;
    char peer[XM_PROTO_HOST_MAX + 1];
    uint64_t mem_kib;
    uint64_t guest_kib;         /* source: the guest's memory now */
    bool started;               /* source: the executor was started */
    bool final;
    enum xm_mig_state state;
    struct xm_mig_result res;   /* res.why points at why */
    char why[XM_MIG_WHY_MAX];
    uint64_t bytes;
    struct migexec_stats stats; /* the stream and the downtime */
    int64_t t0_ms, t1_ms;
    mig_notify_fn *notify;
    void *notify_arg;
    struct xm_loop_timer *reap;
};

/* While a source migration's guest is down, the other source streams
 * are held (agent_mig.c), for at most this long. */
#define MIG_DOWN_FIRST_MS 5000

/* A guest that runs again here after its move (the target unpaused it)
 * is not back yet for its users: its kernel thaws, xenbus and its
 * devices reconnect, on this host's CPU.  For this long the other
 * streams here are held as while it was down (agent_mig.c); in the lab
 * this cut what compressed streams (CPU-bound on the target) added to
 * a guest's largest tick gap, at no cost to a drain's time
 * (doc/migration.md). */
#define MIG_RESUME_GRACE_MS 400

/* A finished migration, as status reports it (agent_mig.c). */
#define MIG_PAST_MAX 8
struct mig_past {
    char id[XM_MIG_ID_MAX + 1];
    char guest[XM_DOMNAME_MAX + 1];
    char peer[XM_PROTO_HOST_MAX + 1];
    bool source;
    char state[16];             /* mig_move_state */
    char why[XM_MIG_WHY_MAX];
    uint64_t bytes;
    int64_t ms;                 /* how long it took */
    int64_t ended_s;            /* wall clock */
    struct migexec_stats stats;
};

struct agent {
    struct agent_deps d;
    struct xm_journal *journal; /* state_dir/migrations */
    struct mig *migs;
    struct drain *drain;        /* the drain or undrain running */
    struct drain *pulls;        /* peers' undrains we serve */
    struct mig_progress *mig_progress;  /* agent_mig.c: libxc's reports */
    struct xm_loop_timer *down_timer;   /* agent_mig.c: a guest down too
                                         * long holds no more */
    unsigned n_held;                    /* source streams held for it */
    int64_t resume_until;               /* a guest that runs here
                                         * again resumes till then
                                         * (mono ms; 0: none yet) */
    bool guest_down;                    /* one of ours is down: no new
                                         * offer meanwhile */
    struct flow *patch;         /* the patch apply running */
    /* the last finished migrations: a ring, past_next the slot the
     * next one takes (the newest is just before it) */
    struct mig_past past[MIG_PAST_MAX];
    unsigned n_past, past_next;
    struct xm_loop_fd *xs_fd;
    struct job *jobs;           /* running */
    char **done_ids;            /* finished, oldest first */
    unsigned n_done;
    char state[32];             /* host state, as in the schema */
    char reason[256];
    bool started;
    bool stopping;              /* agent_stop was called */
    int failed;                 /* why the agent stopped itself */
};

/* agent.c */
int agent_publish_host(struct agent *a);
void job_progress(struct job *job, unsigned pct);
/* Answer the job and free it: result (JSON) or, on failure, code and
 * message (result may then be NULL for the standard error object). */
void job_finish(struct job *job, int code, const char *result,
                const char *message);
/* Answer the job with the document in g, or with the generator's error
 * when g could not produce one. */
void job_finish_json(struct job *job, struct xm_jgen *g);
/* A step of parent running op with the parent's options (dry_run only
 * for a drain); NULL without memory.  The caller runs it with
 * agent_drain_job / agent_undrain_job; done hears its answer once. */
struct job *job_child_new(struct job *parent, enum xm_req_op op,
                          bool dry_run, job_done_fn *done, void *arg,
                          unsigned pct_base, unsigned pct_span);
/* Free a step that will never answer (the agent is going away). */
void job_child_discard(struct job *job);
/* A job that is being run again after an agent restart (patch apply):
 * listed like a new one, its keys under its old id. */
struct job *job_resume(struct agent *a, const char *id, const char *json);
/* The step a long job is in: /tool/xenmaint/job/<id>/step. */
void job_step(struct job *job, const char *step);

/* agent_ops.c */
void agent_load_state(struct agent *a);
void agent_run_job(struct job *job);

/* agent_patch.c: patch check, apply, revert */
void agent_patch_job(struct job *job);
/* At start: resume a patch apply the journal says was cut short, and
 * notice a reboot after reboot-required. */
void agent_patch_start(struct agent *a);
void agent_patch_dispose(struct agent *a);
/* A test hook: with XENMAINT_CRASH_AT=name in the agent's environment,
 * the agent kills itself (SIGKILL) when it reaches that point. */
void agent_crash_point(const char *name);

/* agent_ops.c */
/* Names of all configured peers, or of the request's --to list. */
int target_names(struct job *job, const char ***names_r, unsigned *n_r);
/* Ask names for their status; done(job, ...) answers (at once with no
 * peers).  An error: done will not be called. */
int ask_peers(struct job *job, const char *const *names, unsigned n,
               agent_peer_status_fn *done);
/* Replace path atomically: fill writes the new content into a
 * temporary file, which is flushed, synced and renamed over path.  On
 * any error path is untouched and the error returned. */
typedef int agent_fill_fn(FILE *out, void *arg);
int agent_replace_file(const char *path, agent_fill_fn *fill, void *arg);
int agent_set_state(struct agent *a, const char *state, const char *reason);

/* agent_mig.c: the migration table */
int agent_mig_init(struct agent *a);      /* journal + recovery */
void agent_mig_dispose(struct agent *a);
/* Start moving d to target under migration id; timeout_s bounds the
 * stream; compress is the stream's compression as `--compress` spells
 * it (NULL or "": the pool default, xenmaint.conf's compress).  notify
 * hears every report. */
int mig_start_source(struct agent *a, const struct xm_domain *d,
                     const char *target, const char *id,
                     unsigned timeout_s, const char *compress,
                     mig_notify_fn *notify, void *arg, struct mig **m_r);
/* Check a `--compress` value (NULL or "": the pool default) before a
 * drain starts: XM_ERR_INVAL with the reason in err_r. */
int mig_compress_check(struct agent *a, const char *compress, char *err_r,
                       size_t errlen);
/* The stream figures of a move, as members of the open JSON map g:
 * compress, libxl_bytes, wire_bytes, ratio, precopy_rounds, downtime. */
void mig_stats_json(struct xm_jgen *g, const struct migexec_stats *st);
/* m's figures now (live while it runs). */
void mig_stats(const struct mig *m, struct migexec_stats *st_r);
/* The last finished migrations, newest first, as the JSON array
 * "migrations" (status; see doc/protocol.md). */
void mig_past_json(const struct agent *a, struct xm_jgen *g);
/* Roll back before the point of no return (see migexec_abort). */
int mig_abort(struct mig *m, const char *why);
struct mig *mig_find(struct agent *a, const char *id, enum xm_mig_side side);
uint64_t mig_bytes(const struct mig *m);
const char *mig_move_state(const struct mig *m); /* done, stayed, ... */
/* Its stream may still be to send (xm_mig_source_streaming). */
bool mig_streaming(const struct mig *m);
/* Guests that left this host (the undrain brings them back). */
struct away_rec {
    uint8_t uuid[16];
    char name[XM_DOMNAME_MAX + 1];
    char host[XM_PROTO_HOST_MAX + 1];
};
int agent_away_load(struct agent *a, struct away_rec **recs_r, size_t *n_r);

/* agent_stop.c: guests a drain shuts down (--shutdown-blocked) and the
 * undrain starts again.  state: drain "queued", "asked", "shut-down",
 * "running" (it did not shut down), "cancelled"; undrain "queued",
 * "starting", "running", "failed". */
struct stop {
    struct agent *a;
    struct xm_domain dom;       /* drain: the guest; undrain: name, uuid */
    unsigned reasons;           /* drain: why it could not move */
    char detail[160];
    char state[16];
    char why[XM_MIG_WHY_MAX];
    bool acked;                 /* drain: acknowledged its notice */
    int64_t t0_ms;              /* drain: when it was asked */
    char *config;               /* undrain: its libxl config */
    uint32_t new_domid;
    bool pending, orphan;       /* undrain: a create running */
};
struct stop *stop_new(struct agent *a);
void stop_free(struct stop *s); /* a pending one is freed when it ends */
bool stop_finished(const struct stop *s);
/* Keep its config, then ask the guest to power off. */
void stop_shutdown(struct stop *s, int64_t now_ms);
/* The asked ones: shut down (destroyed), or still running after
 * timeout_s (request withdrawn, record dropped). */
void stops_poll(struct agent *a, struct stop **v, size_t n,
                unsigned timeout_s, int64_t now_ms);
/* The records of state_dir/stopped, as "queued" undrain entries. */
int stops_load(struct agent *a, struct stop ***v_r, size_t *n_r);
/* Start the recorded guest again (create, then unpause). */
void stop_start(struct stop *s);

/* agent_drain.c: drain, undrain, and a peer's pull */
void agent_drain_job(struct job *job);
void agent_undrain_job(struct job *job);
int agent_pull(struct agent *a, const char *peer, struct agent_conn *conn,
               const struct xm_frame *f);
/* A target migration changed (the undrain follows its guests home). */
void agent_drain_on_target(struct agent *a, struct mig *m, bool final);
/* No guest of ours is down any more: the drain and the pulls may start
 * their next moves (from the loop, not from the caller's stack). */
void agent_drain_kick(struct agent *a);
void agent_drain_dispose(struct agent *a);

#endif /* XM_AGENT_INT_H */
