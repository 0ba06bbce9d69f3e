/*
 * xm_manifest.h -- XSA manifests and the decision to livepatch.
 *
 * An XSA manifest (doc/xsa-manifest.md) names, for one Xen security
 * advisory, the livepatch payloads that fix it, one per hypervisor build
 * (and stack position), with the sha256 of each file; what to do on a
 * host no payload fits (reboot into a fixed Xen, or nothing because the
 * build is not affected); and how to verify the host afterwards.
 *
 * xm_manifest_load reads and validates one (the only I/O here, in one
 * small function); xm_manifest_decide is pure: given the host as
 * xm_lpcheck sees it, the advisory is already patched, applicable with
 * payload i, or not applicable and why.
 */
#ifndef XM_MANIFEST_H
#define XM_MANIFEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "xm_lpcheck.h"

#define XM_MANIFEST_VERSION 1
#define XM_MANIFEST_MAX_BYTES (1024 * 1024)   /* larger files: refused */
#define XM_MANIFEST_MAX_PAYLOADS 64
#define XM_MANIFEST_MAX_BUILDS 64             /* xen_build_ids per payload */
#define XM_XSA_MAX 16                         /* "XSA-" and digits */
#define XM_SHA256_LEN 32

enum xm_no_payload {
    XM_NO_PAYLOAD_REBOOT = 1,       /* "reboot-required" */
    XM_NO_PAYLOAD_NOT_AFFECTED,     /* "not-affected" */
};

struct xm_manifest_payload {
    char name[XM_LP_NAME_MAX + 1];  /* the livepatch name */
    char *file;                     /* relative to the manifest's dir */
    uint8_t sha256[XM_SHA256_LEN];
    struct xm_buildid *xen_build_ids;
    size_t nxen_build_ids;
    struct xm_buildid depends;      /* len 0: stacks on the hypervisor */
    struct xm_buildid build_id;     /* the payload's own; len 0: unknown */
    bool replace;                   /* apply with REPLACE */
};

struct xm_manifest {
    char *dir;                      /* directory of the manifest file */
    char xsa[XM_XSA_MAX + 1];       /* "XSA-999" */
    char *title;
    struct xm_manifest_payload *payloads;
    size_t npayloads;
    enum xm_no_payload no_payload;
    char *verify_command;           /* NULL: no "verify" */
    char *verify_expect;            /* a POSIX extended regex */
};

enum xm_patch_verdict {
    XM_PATCH_ALREADY = 1,           /* a payload of it is applied */
    XM_PATCH_APPLICABLE,            /* apply payloads[payload] */
    XM_PATCH_NOT_APPLICABLE,        /* see why */
};

enum xm_patch_why {
    XM_WHY_NONE = 0,
    XM_WHY_REBOOT_REQUIRED,     /* no payload for this build: reboot */
    XM_WHY_NOT_AFFECTED,        /* no payload for this build: not needed */
    XM_WHY_STACK,               /* payloads for this build, but none fits
                                 * the applied stack */
    XM_WHY_NAME_CLASH,          /* another payload holds the name */
    XM_WHY_UNKNOWN_HOST,        /* running build-id unknown */
};

struct xm_patch_decision {
    enum xm_patch_verdict verdict;
    enum xm_patch_why why;
    int payload;                /* index into m->payloads, or -1 */
    bool loaded;                /* APPLICABLE: already uploaded, not yet
                                 * applied: apply it, do not upload */
    char reason[512];           /* one English sentence */
};

void xm_manifest_init(struct xm_manifest *m);
void xm_manifest_dispose(struct xm_manifest *m);   /* idempotent */

/*
 * Read and validate the manifest at path into *m_r (initialised here;
 * dispose it even on failure).  XM_ERR_IO / XM_ERR_NOTFOUND (cannot
 * read), XM_ERR_TOOBIG, XM_ERR_INVAL (err_r names the field), NOMEM.
 */
int xm_manifest_load(const char *path, struct xm_manifest *m_r,
                     char *err_r, size_t errlen);

/* The same from text already read; dir is the manifest's directory. */
int xm_manifest_parse(const char *text, size_t len, const char *dir,
                      struct xm_manifest *m_r, char *err_r, size_t errlen);

/* What to do on this host.  Pure; always fills *d_r. */
void xm_manifest_decide(const struct xm_manifest *m,
                        const struct xm_lp_hostview *host,
                        struct xm_patch_decision *d_r);

/*
 * The payload file's bytes against the manifest: sha256 (message shows
 * both digests; XM_ERR_INVAL on a mismatch).
 */
int xm_manifest_payload_check(const struct xm_manifest *m, size_t idx,
                              const void *data, size_t len, char *err_r,
                              size_t errlen);

/*
 * The inspected payload against what the manifest says of it: its
 * .livepatch.xen_depends among xen_build_ids, its .livepatch.depends
 * equal to "depends" (or among xen_build_ids when that is null), its
 * build-id equal to "build_id" when given.  XM_ERR_INVAL on a mismatch.
 */
int xm_manifest_payload_match(const struct xm_manifest *m, size_t idx,
                              const struct xm_lp_info *info, char *err_r,
                              size_t errlen);

/* dir + "/" + file of payload idx into path_r; XM_ERR_TOOBIG when it
 * would not fit pathlen bytes or PATH_MAX. */
int xm_manifest_payload_path(const struct xm_manifest *m, size_t idx,
                             char *path_r, size_t pathlen);

/* Does the verify command's output match "expect"?  true when the
 * manifest has no "verify". */
bool xm_manifest_verify_output(const struct xm_manifest *m,
                               const char *output);

#endif /* XM_MANIFEST_H */
