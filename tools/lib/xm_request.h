/*
 * xm_request.h -- the request an xl subcommand hands to xenmaintd.
 *
 * The client writes one JSON request to /tool/xenmaint/request/<id>; the
 * agent parses it with xm_request_parse and answers under
 * /tool/xenmaint/job/<id>/.  Both sides share this code so that the
 * encoder and the strict parser cannot drift apart.  The parser treats
 * its input as hostile: unknown fields, wrong types, numbers out of
 * range, bad host names, relative payload paths and fields that do not
 * belong to the op are errors whose message names the field.
 *
 * JSON form (fields other than version and op depend on the op):
 *   {"version":1,"op":"drain","dry_run":true,"to":["B"],"parallel":2,
 *    "timeout":600,"notice":0,"blocked":"refuse"}
 *
 *   op            fields it may carry
 *   drain         dry_run to parallel timeout notice blocked compress
 *   undrain       stay timeout compress
 *   patch-apply   payload (required) in_place timeout, and the drain's
 *                 dry_run to parallel notice blocked compress (without
 *                 in_place)
 *   patch-revert  name (required) timeout
 *   patch-check   payload (required)
 *   patch-list    -
 *   status        -
 */
#ifndef XM_REQUEST_H
#define XM_REQUEST_H

#include <stdbool.h>
#include <stddef.h>

#define XM_REQ_VERSION 1
#define XM_REQ_ID_MAX 64         /* longest request id, without the NUL */
#define XM_REQ_NEW_ID_LEN 16     /* length of ids made by xm_request_new_id */
#define XM_REQ_HOST_MAX 63       /* longest host name */
#define XM_REQ_TO_MAX 32         /* most target hosts in one drain */
#define XM_REQ_PARALLEL_MAX 64   /* most concurrent migrations */
#define XM_REQ_TIMEOUT_MAX 604800u /* one week, in seconds */
#define XM_REQ_NOTICE_MAX 86400u   /* one day, in seconds */
#define XM_REQ_PATH_MAX 1024     /* longest payload path, without the NUL */
#define XM_REQ_NAME_MAX 127      /* longest livepatch name */
#define XM_REQ_COMPRESS_MAX 31   /* longest compress value */

enum xm_req_op {
    XM_OP_DRAIN,
    XM_OP_UNDRAIN,
    XM_OP_PATCH_APPLY,
    XM_OP_PATCH_REVERT,
    XM_OP_PATCH_LIST,
    XM_OP_PATCH_CHECK,
    XM_OP_STATUS,
};

/* What a drain does with a guest that cannot be migrated. */
enum xm_req_blocked {
    XM_BLOCKED_REFUSE,    /* refuse the whole drain (default) */
    XM_BLOCKED_SKIP,      /* leave it running here, drain the rest */
    XM_BLOCKED_SHUTDOWN,  /* shut it down (after the notice, if any) */
};

struct xm_request {
    int version;                /* XM_REQ_VERSION */
    enum xm_req_op op;
    bool dry_run;               /* drain, patch apply */
    char **to;                  /* drain: allowed target hosts */
    unsigned n_to;
    unsigned parallel;          /* drain: 0 = agent default */
    unsigned timeout_s;         /* 0 = agent default */
    unsigned notice_s;          /* drain: maintenance notice given to
                                 * guests before they move (or are shut
                                 * down); any blocked policy */
    enum xm_req_blocked blocked;
    bool stay;                  /* undrain: do not bring guests back */
    char *payload;              /* patch apply/check: absolute dom0 path */
    bool in_place;              /* patch apply: without draining */
    char *name;                 /* patch revert: livepatch name */
    char compress[XM_REQ_COMPRESS_MAX + 1]; /* drain, undrain, patch
                                 * apply: the migration streams'
                                 * compression as `--compress` spells it
                                 * ("zstd:3"), [a-z0-9:]; "" = the agent's
                                 * default (not encoded).  The agent
                                 * parses it (xm_comp_spec_parse). */
};

/* Idempotent: dispose frees what the request owns and re-inits it. */
void xm_request_init(struct xm_request *req);
void xm_request_dispose(struct xm_request *req);

/* Parse a request.  On error *req_r is left initialised (empty) and
 * err_r names the offending field.  XM_ERR_INVAL or XM_ERR_NOMEM. */
int xm_request_parse(const char *json, size_t len, struct xm_request *req_r,
                     char *err_r, size_t errlen);

/* Encode req (checked as strictly as the parser checks) into a heap
 * string.  XM_ERR_INVAL when req would not parse back. */
int xm_request_encode(const struct xm_request *req, char **json_r);

/* [A-Za-z0-9_-]{1,64}: the schema's <id> (xenstored refuses "." in names). */
bool xm_request_id_valid(const char *id);
/* [A-Za-z0-9._-]{1,63} */
bool xm_request_host_valid(const char *host);
/* [A-Za-z0-9._-]{1,127} */
bool xm_request_patch_name_valid(const char *name);
/* [a-z0-9:]{1,31}: a compress value the request carries (whether it
 * names an algorithm is the agent's to say). */
bool xm_request_compress_valid(const char *compress);

/* A fresh id, [a-z0-9]{16}, from getrandom(2); len must be at least
 * XM_REQ_NEW_ID_LEN + 1 (XM_ERR_TOOBIG otherwise). */
int xm_request_new_id(char *buf, size_t len);

enum xm_job_state {
    XM_JOB_QUEUED,
    XM_JOB_RUNNING,
    XM_JOB_DONE,
    XM_JOB_FAILED,
};

const char *xm_job_state_name(enum xm_job_state state);
/* XM_OK, or XM_ERR_INVAL for a name that is not a job state. */
int xm_job_state_parse(const char *name, enum xm_job_state *state_r);

const char *xm_req_op_name(enum xm_req_op op);
int xm_req_op_parse(const char *name, enum xm_req_op *op_r);
const char *xm_req_blocked_name(enum xm_req_blocked blocked);
int xm_req_blocked_parse(const char *name, enum xm_req_blocked *blocked_r);

#endif /* XM_REQUEST_H */
