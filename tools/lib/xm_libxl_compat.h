/*
 * xm_libxl_compat.h -- the one place that includes libxl.h.
 *
 * It pins LIBXL_API_VERSION (so a newer libxl keeps the 4.14 API we were
 * written against) and hides every libxl signature that differs between
 * versions behind a small static inline xm_libxl_* wrapper, guarded by
 * the LIBXL_HAVE_* macros libxl itself defines.  The backend
 * (xm_hv_libxl.c) calls only the wrappers for those functions, so porting
 * to another libxl touches this header alone.
 *
 * It also declares the backend's pure error mappings, so that the unit
 * tests can check them without a hypervisor.
 */
#ifndef XM_LIBXL_COMPAT_H
#define XM_LIBXL_COMPAT_H

#if defined(LIBXL_API_VERSION) && LIBXL_API_VERSION != 0x041400
#error "libxl.h must be included through xm_libxl_compat.h only"
#endif
#define LIBXL_API_VERSION 0x041400

#include <libxl.h>
#include <libxl_utils.h>
#include <stdint.h>

/*
 * Memory a domain with this configuration needs on a host (target plus
 * shadow/IOMMU/video overhead).  Since Xen 4.13 libxl takes the whole
 * config and defaults it in place; before, a const build_info.
 */
static inline int
xm_libxl_need_memory(libxl_ctx *ctx, libxl_domain_config *d_config,
                     uint32_t domid, uint64_t *need_kib_r)
{
#if defined(LIBXL_HAVE_DOMAIN_NEED_MEMORY_CONFIG)
    return libxl_domain_need_memory(ctx, d_config, domid, need_kib_r);
#else
    uint32_t need = 0;
    int lrc;

    (void)domid;
    lrc = libxl_domain_need_memory(ctx, &d_config->b_info, &need);
    *need_kib_r = need;
    return lrc;
#endif
}

/*
 * Restore (migrate-receive) a domain from restore_fd.  The domain is
 * left paused: libxl never unpauses, xl does it itself unless asked for
 * a paused guest.  No send-back fd (that is for COLO checkpointing).
 */
static inline int
xm_libxl_create_restore(libxl_ctx *ctx, libxl_domain_config *d_config,
                        uint32_t *domid_r, int restore_fd,
                        const libxl_domain_restore_params *params,
                        const libxl_asyncop_how *ao_how)
{
#if defined(LIBXL_HAVE_DOMAIN_CREATE_RESTORE_SEND_BACK_FD)
    return libxl_domain_create_restore(ctx, d_config, domid_r, restore_fd,
                                       -1, params, ao_how, NULL);
#else
    return libxl_domain_create_restore(ctx, d_config, domid_r, restore_fd,
                                       params, ao_how, NULL);
#endif
}

/* Restore parameters of a plain (not checkpointed) libxl v2 stream, as
 * xl migrate-receive uses them. */
static inline void
xm_libxl_restore_params_init(libxl_domain_restore_params *params)
{
    libxl_domain_restore_params_init(params);
#if defined(LIBXL_HAVE_CHECKPOINTED_STREAM)
    params->checkpointed_stream = LIBXL_CHECKPOINTED_STREAM_NONE;
#else
    params->checkpointed_stream = 0;
#endif
    params->stream_version = 2;
}

/* Live-suspend domid into fd (the sending half of a migration).  On ARM
 * libxl defines LIBXL_HAVE_NO_SUSPEND_RESUME and refuses. */
static inline int
xm_libxl_suspend_live(libxl_ctx *ctx, uint32_t domid, int fd,
                      const libxl_asyncop_how *ao_how)
{
#if defined(LIBXL_HAVE_NO_SUSPEND_RESUME)
    (void)ctx; (void)domid; (void)fd; (void)ao_how;
    return ERROR_NI;
#else
    return libxl_domain_suspend(ctx, domid, fd, LIBXL_SUSPEND_LIVE, ao_how);
#endif
}

/* Resume a guest whose suspend was cancelled; suspend_cancel = 1 is the
 * co-operative resume the guest supports after a live suspend. */
static inline int
xm_libxl_resume(libxl_ctx *ctx, uint32_t domid,
                const libxl_asyncop_how *ao_how)
{
#if defined(LIBXL_HAVE_NO_SUSPEND_RESUME)
    (void)ctx; (void)domid; (void)ao_how;
    return ERROR_NI;
#else
    return libxl_domain_resume(ctx, domid, 1, ao_how);
#endif
}

/* The stored configuration of a running domain (synchronous). */
static inline int
xm_libxl_retrieve_config(libxl_ctx *ctx, uint32_t domid,
                         libxl_domain_config *d_config)
{
#if defined(LIBXL_HAVE_FN_USING_QMP_ASYNC)
    return libxl_retrieve_domain_configuration(ctx, domid, d_config, NULL);
#else
    return libxl_retrieve_domain_configuration(ctx, domid, d_config);
#endif
}

/* libxl's ERROR_* code to the project's XM_ERR_* (0 stays 0). */
int xm_libxl_err(int lrc);

/* A livepatch hypercall's errno to XM_ERR_*: EBUSY/EAGAIN are "busy"
 * (another action in progress), ENOENT no such payload, EEXIST a payload
 * of that name is loaded, the rest as xm_err_from_errno. */
int xm_lp_errno(int errnum);

#endif /* XM_LIBXL_COMPAT_H */
