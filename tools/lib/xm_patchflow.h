/*
 * xm_patchflow.h -- the journal of `xl patch apply` and what an agent
 * restarted in the middle of one does next.
 *
 * A patch apply runs drain -> pre-flight -> upload -> apply -> verify ->
 * undrain (without the drain and undrain when in place).  Before each
 * step with an effect the agent writes the flow's record to
 * state_dir/patch-flow (atomically: temporary file, fsync, rename), so
 * that an agent killed at any point finds, at its next start, the step
 * it was in.  xm_pf_resume decides from that record and what the
 * hypervisor holds now whether to drain again, upload again, apply,
 * verify, undrain, or stop with a reason; it never applies a payload
 * the hypervisor reports applied (an apply is never done twice).
 *
 * Pure code: the record, its JSON form (decoded as hostile input) and
 * the decisions.  The agent (agent_patch.c) does the I/O.
 */
#ifndef XM_PATCHFLOW_H
#define XM_PATCHFLOW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "xm_hv.h"
#include "xm_lpcheck.h"
#include "xm_manifest.h"
#include "xm_request.h"

#define XM_PF_VERSION 1
#define XM_PF_FILE_MAX (32u * 1024)     /* a record's size limit */
#define XM_PF_REQUEST_MAX (16u * 1024)  /* the request it carries */
#define XM_PF_REASON_MAX 512

/* Phases.  Numbers are internal; the file carries the names. */
enum xm_pf_phase {
    XM_PF_DRAINING = 1,     /* the drain runs (or is about to) */
    XM_PF_UPLOADING,        /* pre-flight passed; upload issued */
    XM_PF_APPLYING,         /* uploaded; apply/replace issued */
    XM_PF_VERIFYING,        /* applied; verification runs */
    XM_PF_UNDRAINING,       /* verified; the undrain runs */
    XM_PF_DONE,             /* patched (and guests asked home) */
    XM_PF_FAILED,           /* stopped; reason says why */
    XM_PF_REBOOT_REQUIRED,  /* drained for a reboot: no payload fits */
};

struct xm_pf_rec {
    char job[XM_REQ_ID_MAX + 1];        /* the patch apply's job id */
    enum xm_pf_phase phase;
    char *request;                      /* the request, as JSON (owned) */
    char name[XM_LP_NAME_MAX + 1];      /* livepatch; "" until chosen */
    char xsa[XM_XSA_MAX + 1];           /* "" without a manifest */
    struct xm_buildid payload_id;       /* len 0 until pre-flight */
    struct xm_buildid xen_id;           /* the hypervisor it is for */
    bool replace;                       /* applied with REPLACE */
    bool in_place;
    char reason[XM_PF_REASON_MAX];      /* FAILED, REBOOT_REQUIRED */
    int64_t updated_s;                  /* wall clock */
};

void xm_pf_rec_init(struct xm_pf_rec *r);
void xm_pf_rec_dispose(struct xm_pf_rec *r);        /* idempotent */

/* "draining", ... or NULL for a value that is not a phase. */
const char *xm_pf_phase_name(int phase);
/* The flow is over: nothing to resume. */
bool xm_pf_phase_final(enum xm_pf_phase phase);

/* Every field within its limits and consistent with the phase. */
int xm_pf_rec_check(const struct xm_pf_rec *r, char *err_r, size_t errlen);
/* The record as JSON (heap, NUL-terminated); XM_ERR_INVAL if it fails
 * xm_pf_rec_check. */
int xm_pf_encode(const struct xm_pf_rec *r, char **json_r);
/* Parse len bytes into *r_r (initialised here; dispose it even on
 * failure).  XM_ERR_INVAL, XM_ERR_UNSUPPORTED (another version),
 * XM_ERR_TOOBIG, XM_ERR_NOMEM; err_r names the problem. */
int xm_pf_decode(const char *text, size_t len, struct xm_pf_rec *r_r,
                 char *err_r, size_t errlen);

/* What the restarted agent does with an unfinished flow. */
enum xm_pf_next {
    XM_PF_NEXT_NOTHING = 1, /* the flow is over */
    XM_PF_NEXT_DRAIN,       /* drain (again): re-planned on live state */
    XM_PF_NEXT_PREFLIGHT,   /* the payload is not loaded: pre-flight and
                             * upload again */
    XM_PF_NEXT_APPLY,       /* loaded, not applied: apply it */
    XM_PF_NEXT_VERIFY,      /* applied: verify */
    XM_PF_NEXT_UNDRAIN,     /* verified: bring the guests home */
    XM_PF_NEXT_FAIL,        /* stop, host left cordoned: reason says why */
};

/* The payload as the hypervisor has it now. */
struct xm_pf_seen {
    struct xm_buildid xen_id;   /* the running hypervisor's build-id */
    bool loaded;                /* the record's payload is loaded */
    enum xm_lp_state state;     /* when loaded */
};

/* Decide; reason_r gets one English sentence for XM_PF_NEXT_FAIL (and
 * a note for the others). */
enum xm_pf_next xm_pf_resume(const struct xm_pf_rec *r,
                             const struct xm_pf_seen *seen, char *reason_r,
                             size_t reasonlen);

/* A host left in reboot-required by r runs a hypervisor other than the
 * one r was for: it was rebooted (into, one hopes, a fixed build). */
bool xm_pf_rebooted(const struct xm_pf_rec *r,
                    const struct xm_buildid *running);

#endif /* XM_PATCHFLOW_H */
