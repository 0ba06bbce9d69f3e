/*
 * agent_int.h -- what agent.c (requests, jobs) and agent_ops.c (the
 * operations) share inside the agent.  Not an interface for anyone else.
 */
#ifndef XM_AGENT_INT_H
#define XM_AGENT_INT_H

#include "agent.h"
#include "xm_request.h"

struct job {
    struct agent *a;
    char id[XM_REQ_ID_MAX + 1];
    struct xm_request req;
    bool parsed;                /* req holds a valid request */
    struct job *next;
};

struct agent {
    struct agent_deps d;
    struct xm_loop_fd *xs_fd;
    struct job *jobs;           /* running */
    char **done_ids;            /* finished, oldest first */
    unsigned n_done;
    char state[32];             /* host state, as in the schema */
    char reason[128];
    bool started;
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

/* agent_ops.c */
void agent_load_state(struct agent *a);
void agent_run_job(struct job *job);

/* agent_patch.c: patch check, apply, revert */
void agent_patch_job(struct job *job);

#endif /* XM_AGENT_INT_H */
