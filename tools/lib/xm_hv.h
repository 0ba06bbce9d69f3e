/*
 * xm_hv.h -- the hypervisor interface.
 *
 * Everything xenmaint asks of Xen goes through this table: the domain
 * list, host memory, the build-id, the pieces of a live migration, and
 * the livepatch operations.  xm_hv_libxl.c implements it with libxl and
 * libxenctrl; tests/fakes/hv_fake.c is an in-process hypervisor for unit
 * tests, with fault injection.  Decisions (planner, state machines) never
 * include libxl.h: they see the plain structs below.
 *
 * Slow operations (migrate_send, migrate_recv, create) are asynchronous: they
 * return at once and later call how->done exactly once, from inside the
 * owner's event loop (afterpoll).  The backend's file descriptors and
 * timeouts join the agent's one poll() through beforepoll/afterpoll.
 */
#ifndef XM_HV_H
#define XM_HV_H

#include <poll.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define XM_DOMNAME_MAX 64       /* longest guest name we accept */
#define XM_POOLNAME_MAX 64      /* longest cpupool name */
#define XM_BUILDID_MAX 64       /* build-id bytes (hex is twice that) */
#define XM_LP_NAME_MAX 127      /* XEN_LIVEPATCH_NAME_SIZE - 1 */

/* Why a guest may not move (bits of xm_domain.flags). */
enum {
    XM_DOM_PCI = 1u << 0,        /* PCI passthrough device assigned */
    XM_DOM_NOMIGRATE = 1u << 1,  /* libxl disable_migrate or similar */
    XM_DOM_HVM = 1u << 2,
    XM_DOM_PAUSED = 1u << 3,
    XM_DOM_DYING = 1u << 4,      /* dying or shut down */
    XM_DOM_LOCAL_DISK = 1u << 5, /* a disk only this host can reach */
    XM_DOM_TRANSIENT = 1u << 6,  /* name ends --incoming/--migratedaway */
    XM_DOM_SUSPENDED = 1u << 7,  /* shut down for suspend (a live send
                                  * completed or left it so): not dying */
    XM_DOM_NAMELESS = 1u << 8,   /* its xenstore entries are gone (a
                                  * destroy cut short): name "", never
                                  * moved; paused or shut down, it is
                                  * also dying */
};

struct xm_domain {
    uint32_t domid;
    char name[XM_DOMNAME_MAX + 1];
    uint8_t uuid[16];
    uint64_t mem_kib;           /* memory needed on a target, incl. the
                                 * libxl/Xen overhead */
    uint64_t cur_mem_kib;       /* current allocation */
    unsigned vcpus;
    uint32_t cpupool_id;
    char cpupool[XM_POOLNAME_MAX + 1];
    unsigned flags;             /* XM_DOM_* */
};

struct xm_hostinfo {
    uint64_t total_kib;
    uint64_t free_kib;          /* free for new guests now */
    unsigned nr_cpus;
    char xen_version[32];       /* "4.17.5" */
    char xen_extra[64];         /* XENVER_extraversion, e.g. "-pre" */
    uint8_t build_id[XM_BUILDID_MAX];
    unsigned build_id_len;
};

/* Livepatch payload states, as the hypervisor reports them. */
enum xm_lp_state {
    XM_LP_CHECKED = 1,          /* loaded, not applied */
    XM_LP_APPLIED = 2,
};

struct xm_lp_status {
    char name[XM_LP_NAME_MAX + 1];
    int state;                  /* enum xm_lp_state */
    int rc;                     /* last action's result: 0, or -errno;
                                 * -EAGAIN while an action is pending */
};

enum xm_lp_action {
    XM_LP_APPLY,
    XM_LP_REVERT,
    XM_LP_REPLACE,
    XM_LP_UNLOAD,
};

typedef void xm_hv_done_fn(void *arg, int rc);

struct xm_hv_async {
    xm_hv_done_fn *done;
    void *arg;
};

struct xm_hv_ops {
    /* The domains other than dom0, sorted by domid; *doms_r is a heap
     * array the caller frees. */
    int (*list_domains)(void *ctx, struct xm_domain **doms_r, size_t *n_r);
    int (*hostinfo)(void *ctx, struct xm_hostinfo *info_r);

    /* Guest configuration as libxl JSON (what a target needs to restore
     * it); heap string. */
    int (*domain_config)(void *ctx, uint32_t domid, char **json_r);
    int (*rename)(void *ctx, uint32_t domid, const char *new_name);
    int (*pause)(void *ctx, uint32_t domid);
    int (*unpause)(void *ctx, uint32_t domid);
    /* Resume a guest whose live suspend was cancelled (the source copy
     * after a migration failed before the point of no return). */
    int (*resume)(void *ctx, uint32_t domid);
    int (*destroy)(void *ctx, uint32_t domid);
    /* Ask the guest to power itself off (the PV control/shutdown
     * "poweroff" request) and return at once; the domain later shows
     * XM_DOM_DYING or is gone.  Never forces: XM_ERR_UNSUPPORTED when
     * the guest has no PV shutdown support. */
    int (*shutdown)(void *ctx, uint32_t domid);

    /* Stream the running guest into fd (libxl live suspend).  On success
     * the guest is suspended on this host, still present. */
    int (*migrate_send)(void *ctx, uint32_t domid, int fd,
                        const struct xm_hv_async *how);
    /* Restore a guest from fd, paused, with config_json and the name
     * given; *domid_r is set when the domain is created. */
    int (*migrate_recv)(void *ctx, const char *config_json,
                        const char *name, int fd, uint32_t *domid_r,
                        const struct xm_hv_async *how);
    /* Create and build a domain from config_json (as domain_config
     * gives it) with the name given, left paused; *domid_r is set when
     * the domain is created. */
    int (*create)(void *ctx, const char *config_json, const char *name,
                  uint32_t *domid_r, const struct xm_hv_async *how);

    /* Livepatch (libxenctrl xc_livepatch_*).  timeout_ns 0 lets the
     * hypervisor pick its default quiescing timeout. */
    int (*lp_upload)(void *ctx, const char *name, const void *payload,
                     size_t len);
    int (*lp_get)(void *ctx, const char *name, struct xm_lp_status *st_r);
    int (*lp_list)(void *ctx, struct xm_lp_status **list_r, size_t *n_r);
    int (*lp_action)(void *ctx, const char *name, enum xm_lp_action action,
                     uint32_t timeout_ns);

    /* Event loop integration.  beforepoll appends at most *nfds_io -
     * first entries starting at fds[first]; it sets *nfds_io to the new
     * total and may lower *timeout_ms_io.  XM_ERR_TOOBIG: fds too small,
     * *nfds_io says how many are needed. */
    int (*beforepoll)(void *ctx, struct pollfd *fds, int first,
                      int *nfds_io, int *timeout_ms_io);
    void (*afterpoll)(void *ctx, struct pollfd *fds, int first, int nfds);

    void (*close)(void *ctx);
};

struct xm_hv {
    const struct xm_hv_ops *ops;
    void *ctx;
};

/* The real backend (libxl + libxenctrl). */
int xm_hv_libxl_open(struct xm_hv *hv_r);
void xm_hv_close(struct xm_hv *hv);

/* Hex form of a build-id: hex_r must hold 2 * XM_BUILDID_MAX + 1. */
void xm_buildid_hex(const uint8_t *id, unsigned len, char *hex_r);

#endif /* XM_HV_H */
