/*
 * xm_lpcheck.h -- pre-flight checks of a livepatch payload.
 *
 * Before xenmaint drains a host to apply a payload it checks, in dom0,
 * what the hypervisor would check at upload and apply time, so that a
 * payload built for another hypervisor, stacked on the wrong payload or
 * simply broken is refused while the guests are still running.  The
 * rules follow Xen 4.17 (xen/common/livepatch.c, livepatch_elf.c):
 *
 *  - xm_lp_inspect reads the ELF image with libelf and extracts what the
 *    hypervisor looks at: the payload's build-id, the build-id of what
 *    it stacks on (.livepatch.depends), the build-id of the hypervisor
 *    it was built for (.livepatch.xen_depends), the function and hook
 *    sections;
 *  - xm_lp_preflight compares that with a plain view of the host: the
 *    running build-id, the loaded payloads, the limits.
 *
 * Both are pure: no I/O, no logging.  Errors come with a message in
 * err_r that names the mismatch (ids in hex).
 */
#ifndef XM_LPCHECK_H
#define XM_LPCHECK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "xm_hv.h"

/*
 * LIVEPATCH_MAX_SIZE, MB(2), in xen/include/xen/livepatch.h: Xen 4.17
 * refuses an upload larger than this (verify_payload() in
 * xen/common/livepatch.c, -EINVAL), and an allocated SHT_NOBITS section
 * larger than this (elf_resolve_sections() in livepatch_elf.c).
 */
#define XM_LP_MAX_SIZE (2u * 1024 * 1024)

/* sizeof(struct livepatch_func) on x86-64, LIVEPATCH_PAYLOAD_VERSION 2
 * (xen/include/public/sysctl.h, Xen 4.17). */
#define XM_LP_FUNC_SIZE 104
#define XM_LP_PAYLOAD_VERSION 2

/* Hook sections found in a payload (xm_lp_info.hooks). */
enum {
    XM_LP_HOOK_LOAD = 1u << 0,          /* .livepatch.hooks.load */
    XM_LP_HOOK_UNLOAD = 1u << 1,        /* .livepatch.hooks.unload */
    XM_LP_HOOK_PREAPPLY = 1u << 2,      /* .livepatch.hooks.preapply */
    XM_LP_HOOK_APPLY = 1u << 3,         /* .livepatch.hooks.apply */
    XM_LP_HOOK_POSTAPPLY = 1u << 4,     /* .livepatch.hooks.postapply */
    XM_LP_HOOK_PREREVERT = 1u << 5,     /* .livepatch.hooks.prerevert */
    XM_LP_HOOK_REVERT = 1u << 6,        /* .livepatch.hooks.revert */
    XM_LP_HOOK_POSTREVERT = 1u << 7,    /* .livepatch.hooks.postrevert */
};

/* A build-id; len 0 means unknown. */
struct xm_buildid {
    uint8_t id[XM_BUILDID_MAX];
    unsigned len;
};

/* What xm_lp_inspect found in a payload. */
struct xm_lp_info {
    size_t size;                    /* bytes of the image */
    struct xm_buildid build_id;     /* .note.gnu.build-id */
    struct xm_buildid depends;      /* .livepatch.depends */
    struct xm_buildid xen_depends;  /* .livepatch.xen_depends */
    unsigned nfuncs;                /* entries of .livepatch.funcs */
    unsigned hooks;                 /* XM_LP_HOOK_* */
};

/* A payload the hypervisor holds. */
struct xm_lp_loaded {
    char name[XM_LP_NAME_MAX + 1];
    int state;                      /* enum xm_lp_state */
    struct xm_buildid build_id;     /* len 0: not known */
};

/*
 * The host as the checks see it.  payloads lists the loaded payloads
 * with the applied ones in the order they were applied (Xen's
 * applied_list): the top of the stack is the last XM_LP_APPLIED entry.
 * Payloads that are only loaded (XM_LP_CHECKED) may sit anywhere.
 * A zero limit means the Xen 4.17 default.
 */
struct xm_lp_hostview {
    struct xm_buildid xen_build_id;     /* the running hypervisor */
    const struct xm_lp_loaded *payloads;
    size_t npayloads;
    size_t max_size;                    /* 0: XM_LP_MAX_SIZE */
    size_t name_max;                    /* 0: XM_LP_NAME_MAX */
};

/*
 * Check that data is a payload Xen 4.17 on x86-64 can load and fill
 * *info_r.  XM_ERR_INVAL (err_r names what is wrong or missing),
 * XM_ERR_UNSUPPORTED (another class, byte order or machine),
 * XM_ERR_TOOBIG (a .bss-like section over XM_LP_MAX_SIZE), XM_ERR_NOMEM.
 * The size of the whole image is a host limit: xm_lp_preflight checks
 * it.
 */
int xm_lp_inspect(const void *data, size_t len, struct xm_lp_info *info_r,
                  char *err_r, size_t errlen);

/*
 * Would the hypervisor take this payload under this name, and apply it
 * (replace: with the REPLACE action, which swaps the whole stack)?
 *   XM_ERR_INVAL   name invalid (xm_lp_name_check);
 *   XM_ERR_TOOBIG  payload or name over the host's limits;
 *   XM_ERR_EXISTS  the name, or the build-id, is already loaded;
 *   XM_ERR_STATE   built for another hypervisor (.livepatch.xen_depends)
 *                  or stacked on something else than the top of the
 *                  applied stack (.livepatch.depends);
 *   XM_ERR_NOTFOUND the check needs a build-id the view lacks (the
 *                  running one, or the top payload's): it fails closed.
 */
int xm_lp_preflight(const struct xm_lp_info *info, const char *name,
                    const struct xm_lp_hostview *host, bool replace,
                    char *err_r, size_t errlen);

/*
 * The payload name rule: 1 to name_max (0: XM_LP_NAME_MAX) bytes.  Xen
 * itself only wants a NUL-terminated string of at most 127 bytes; we
 * also want printable ASCII without blanks or '/', since the name goes
 * into xenstore paths, logs and command lines.
 */
int xm_lp_name_check(const char *name, size_t name_max, char *err_r,
                     size_t errlen);

/*
 * The name `xen-livepatch load FILE` gives a payload: the last path
 * component without its last extension ("a/xsa999.livepatch" ->
 * "xsa999"), as load_func() in tools/misc/xen-livepatch.c does.
 * XM_ERR_INVAL when that leaves an invalid name, XM_ERR_TOOBIG when
 * name_r (namelen bytes) is too small or the name too long.
 */
int xm_lp_name_from_path(const char *path, char *name_r, size_t namelen);

/* Parse a hex build-id ("5e00b0fd..."; even length, 1 to XM_BUILDID_MAX
 * bytes, either case).  XM_ERR_INVAL otherwise. */
int xm_buildid_parse(const char *hex, struct xm_buildid *id_r);

bool xm_buildid_equal(const struct xm_buildid *a, const struct xm_buildid *b);

/* Top of the applied stack, or NULL when nothing is applied. */
const struct xm_lp_loaded *
xm_lp_stack_top(const struct xm_lp_hostview *host);

#endif /* XM_LPCHECK_H */
