/*
 * xm_hv_libxl.c -- the real hypervisor backend: libxl and libxenctrl.
 *
 * xm_hv_libxl_open makes one libxl context and one xc interface sharing
 * one xentoollog logger (xm_progress.h: messages to xm_log, libxc's
 * migration progress to whoever xm_hv_libxl_set_progress names), and
 * returns the ops table of xm_hv.h.  Domain operations go through libxl
 * (via the wrappers of xm_libxl_compat.h), livepatch and the build-id
 * through libxenctrl.
 *
 * Migrations are libxl asynchronous operations.  libxl may run an ao
 * callback from inside any later libxl call (even from inside the call
 * that started it), so the callback only records the result; afterpoll
 * hands finished operations to their owner.  That keeps the promise of
 * xm_hv.h: how->done runs exactly once, from the owner's event loop.
 *
 * Nothing here logs above debug level; libxl's own messages at XTL_ERROR
 * and above go through the logger to xm_log.
 */

/*
 * xenctrl.h pulls in Xen's public headers, which use GNU C (anonymous
 * unions, aligned attributes) and refuse to compile under a strict
 * -std=c11 (they test __STRICT_ANSI__).  The project builds with
 * _GNU_SOURCE anyway, so this file alone opts back into GNU C.
 */
#undef __STRICT_ANSI__

#include <assert.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include <xenctrl.h>
#include <xentoollog.h>

#include "xm_err.h"
#include "xm_hv.h"
#include "xm_libxl_compat.h"
#include "xm_progress.h"

/*
 * Memory a guest needs beyond its allocation when libxl cannot tell
 * (its stored configuration is unavailable): LIBXL_MAXMEM_CONSTANT
 * (1 MiB) plus libxl's default shadow/p2m allowance of 1 MiB per vCPU
 * and 8 KiB per MiB of guest memory (libxl_get_required_shadow_memory).
 * An overestimate for PV guests, which is the safe side for a planner.
 */
#define HV_OVERHEAD_FIXED_KIB 1024u
#define HV_OVERHEAD_VCPU_KIB 1024u
#define HV_OVERHEAD_PER_MIB_KIB 8u

/* How long close waits for aborted migrations to finish. */
#define HV_CLOSE_DRAIN_MS 30000

/* The list of livepatch payloads can change between the size query and
 * the listing; retry that many times, then report busy. */
#define HV_LP_LIST_TRIES 5

struct hv_op {
    struct hv_op *next;
    struct hv_libxl *owner;
    libxl_asyncop_how ao;       /* identifies the op to libxl_ao_abort */
    struct xm_hv_async how;
    bool finished;              /* libxl called back; rc is valid */
    int lrc;                    /* libxl's result */
    /* migrate_recv and create only */
    bool restoring;
    libxl_domain_config d_config;
    libxl_domain_restore_params params;
    uint32_t domid;
    uint32_t *domid_r;
};

struct hv_libxl {
    struct xm_progress_logger *logger;
    libxl_ctx *ctx;
    xc_interface *xch;
    struct hv_op *ops;          /* started, not yet handed back */
};

/* ---- error mapping ------------------------------------------------ */

int
xm_libxl_err(int lrc)
{
    switch (lrc) {
    case 0:
        return XM_OK;
    case ERROR_NOMEM:
        return XM_ERR_NOMEM;
    case ERROR_INVAL:
        return XM_ERR_INVAL;
    case ERROR_NOTFOUND:
    case ERROR_DOMAIN_NOTFOUND:
        return XM_ERR_NOTFOUND;
    case ERROR_TIMEDOUT:
    case ERROR_GUEST_TIMEDOUT:
        return XM_ERR_TIMEOUT;
    case ERROR_BUFFERFULL:
        return XM_ERR_TOOBIG;
    case ERROR_ABORTED:
        return XM_ERR_CANCELLED;
    case ERROR_NI:
    case ERROR_FEATURE_REMOVED:
    case ERROR_NOPARAVIRT:
        return XM_ERR_UNSUPPORTED;
    default:
        return XM_ERR_HV;
    }
}

int
xm_lp_errno(int errnum)
{
    switch (errnum) {
    case EBUSY:
    case EAGAIN:
        return XM_ERR_BUSY;
    case ENOENT:
        return XM_ERR_NOTFOUND;
    case EEXIST:
        return XM_ERR_EXISTS;
    default:
        return xm_err_from_errno(errnum);
    }
}

/* libxc returns -1 and sets errno; a few paths return -errno. */
static int
xc_errno(int r)
{
    if (r < -1)
        return -r;
    return errno ? errno : EIO;
}

/* ---- helpers ---------------------------------------------------- */

static bool
name_is_transient(const char *name)
{
    static const char *const suffixes[] = { "--incoming", "--migratedaway" };
    size_t len = strlen(name);

    for (size_t i = 0; i < sizeof(suffixes) / sizeof(suffixes[0]); i++) {
        size_t sl = strlen(suffixes[i]);
        if (len >= sl && strcmp(name + len - sl, suffixes[i]) == 0)
            return true;
    }
    return false;
}

static bool
defbool_true(libxl_defbool b)
{
    return !libxl_defbool_is_default(b) && libxl_defbool_val(b);
}

/* Is domid gone (as opposed to libxl failing for another reason)? */
static bool
domain_gone(struct hv_libxl *h, uint32_t domid)
{
    libxl_dominfo info;
    int lrc;

    libxl_dominfo_init(&info);
    lrc = libxl_domain_info(h->ctx, &info, domid);
    libxl_dominfo_dispose(&info);
    return lrc == ERROR_DOMAIN_NOTFOUND;
}

/* Copy a C string into a fixed buffer; XM_ERR_TOOBIG when it does not
 * fit (the buffer then holds a truncated copy). */
static int
copy_name(char *dst, size_t size, const char *src)
{
    size_t len = strlen(src);

    if (len >= size) {
        memcpy(dst, src, size - 1);
        dst[size - 1] = '\0';
        return XM_ERR_TOOBIG;
    }
    memcpy(dst, src, len + 1);
    return XM_OK;
}

static int
check_lp_name(const char *name, char buf_r[XEN_LIVEPATCH_NAME_SIZE])
{
    size_t len;

    if (!name || !name[0])
        return XM_ERR_INVAL;
    len = strnlen(name, XM_LP_NAME_MAX + 1);
    if (len > XM_LP_NAME_MAX)
        return XM_ERR_TOOBIG;
    /* libxenctrl takes a non-const name; the hypervisor wants it NUL
     * padded, never stack garbage. */
    memset(buf_r, 0, XEN_LIVEPATCH_NAME_SIZE);
    memcpy(buf_r, name, len);
    return XM_OK;
}

/* ---- domains ---------------------------------------------------- */

/*
 * What the configuration tells: the memory a target needs and the flags
 * that stop a migration.  Returns XM_ERR_NOTFOUND when the domain went
 * away meanwhile.
 */
static int
fill_from_config(struct hv_libxl *h, const libxl_dominfo *info,
                 struct xm_domain *d)
{
    libxl_domain_config cfg;
    uint64_t need_kib = 0;
    int lrc;
    int rc;

    libxl_domain_config_init(&cfg);
    lrc = xm_libxl_retrieve_config(h->ctx, info->domid, &cfg);
    if (!lrc) {
        if (cfg.num_pcidevs > 0)
            d->flags |= XM_DOM_PCI;
        if (defbool_true(cfg.b_info.disable_migrate))
            d->flags |= XM_DOM_NOMIGRATE;
        lrc = xm_libxl_need_memory(h->ctx, &cfg, info->domid, &need_kib);
    } else {
        /* No stored config: there is nothing a target could restore
         * the guest from, so it cannot be migrated. */
        d->flags |= XM_DOM_NOMIGRATE;
    }
    if (lrc && domain_gone(h, info->domid)) {
        rc = XM_ERR_NOTFOUND;
        goto out;
    }
    if (lrc || need_kib == 0) {
        uint64_t cur = info->current_memkb + info->outstanding_memkb;
        need_kib = cur + HV_OVERHEAD_FIXED_KIB
            + (uint64_t)HV_OVERHEAD_VCPU_KIB * info->vcpu_online
            + HV_OVERHEAD_PER_MIB_KIB * (cur / 1024);
    }
    d->mem_kib = need_kib;
    rc = XM_OK;
out:
    libxl_domain_config_dispose(&cfg);
    return rc;
}

/* One domain's entry; XM_ERR_NOTFOUND when it vanished meanwhile. */
static int
fill_domain(struct hv_libxl *h, const libxl_dominfo *info,
            struct xm_domain *d)
{
    char *name = NULL;
    char *pool = NULL;
    int rc;

    memset(d, 0, sizeof(*d));
    d->domid = info->domid;
    memcpy(d->uuid, libxl_uuid_bytearray_const(&info->uuid), 16);
    d->cur_mem_kib = info->current_memkb;
    d->vcpus = info->vcpu_online;
    d->cpupool_id = info->cpupool;
    if (info->domain_type == LIBXL_DOMAIN_TYPE_HVM)
        d->flags |= XM_DOM_HVM;
    if (info->paused)
        d->flags |= XM_DOM_PAUSED;
    if (info->shutdown && !info->dying &&
        info->shutdown_reason == LIBXL_SHUTDOWN_REASON_SUSPEND)
        d->flags |= XM_DOM_SUSPENDED;
    else if (info->dying || info->shutdown)
        d->flags |= XM_DOM_DYING;

    name = libxl_domid_to_name(h->ctx, info->domid);
    if (!name) {
        if (domain_gone(h, info->domid)) {
            rc = XM_ERR_NOTFOUND;
            goto out;
        }
        /* Still there without its xenstore entries (xl shows "(null)"):
         * a destroy cut short between removing them and the hypervisor
         * call, e.g. by a killed toolstack (libxl pauses the domain
         * first).  Listed, so recovery can finish the destroy and the
         * host is not empty while it runs, but never moved; paused or
         * shut down, nobody can bring it back: dying. */
        d->flags |= XM_DOM_NAMELESS | XM_DOM_NOMIGRATE;
        if (info->shutdown || info->paused)
            d->flags = (d->flags & ~XM_DOM_SUSPENDED) | XM_DOM_DYING;
        d->mem_kib = d->cur_mem_kib;
        rc = XM_OK;
        goto out;
    }
    /* A name we cannot carry whole must not be acted on by name: keep
     * the guest visible (the host is not empty) but unmovable. */
    if (copy_name(d->name, sizeof(d->name), name))
        d->flags |= XM_DOM_NOMIGRATE;
    if (name_is_transient(name))
        d->flags |= XM_DOM_TRANSIENT;

    pool = libxl_cpupoolid_to_name(h->ctx, info->cpupool);
    if (pool)
        copy_name(d->cpupool, sizeof(d->cpupool), pool);

    if (d->flags & (XM_DOM_DYING | XM_DOM_TRANSIENT)) {
        /* A dying domain's config may already be gone, and a migration's
         * NAME--incoming has none stored until its restore is done
         * (asking libxl then logs an error at every listing, one per
         * offer a target checks); no target will need either. */
        d->mem_kib = d->cur_mem_kib;
        rc = XM_OK;
        goto out;
    }
    rc = fill_from_config(h, info, d);
out:
    free(name);
    free(pool);
    return rc;
}

static int
cmp_domid(const void *a, const void *b)
{
    const struct xm_domain *x = a, *y = b;

    return (x->domid > y->domid) - (x->domid < y->domid);
}

static int
hvl_list_domains(void *ctx, struct xm_domain **doms_r, size_t *n_r)
{
    struct hv_libxl *h = ctx;
    libxl_dominfo *infos = NULL;
    struct xm_domain *doms = NULL;
    int nb = 0;
    size_t n = 0;
    int rc;

    *doms_r = NULL;
    *n_r = 0;
    infos = libxl_list_domain(h->ctx, &nb);
    if (!infos) {
        rc = XM_ERR_HV;
        goto out;
    }
    doms = calloc(nb > 0 ? (size_t)nb : 1, sizeof(*doms));
    if (!doms) {
        rc = XM_ERR_NOMEM;
        goto out;
    }
    for (int i = 0; i < nb; i++) {
        if (infos[i].domid == 0)
            continue;
        rc = fill_domain(h, &infos[i], &doms[n]);
        if (rc == XM_ERR_NOTFOUND)
            continue;           /* vanished during the listing */
        if (rc)
            goto out;
        n++;
    }
    qsort(doms, n, sizeof(*doms), cmp_domid);
    *doms_r = doms;
    *n_r = n;
    doms = NULL;
    rc = XM_OK;
out:
    if (infos)
        libxl_dominfo_list_free(infos, nb);
    free(doms);
    return rc;
}

/* The running hypervisor's build-id (XENVER_build_id); length 0 when
 * the hypervisor has none or will not say (EPERM, ENODATA). */
static int
get_build_id(struct hv_libxl *h, struct xm_hostinfo *info)
{
    const size_t bufsize = XC_PAGE_SIZE;
    xen_build_id_t *bid = NULL;
    int r;
    int rc;

    bid = calloc(1, bufsize);
    if (!bid)
        return XM_ERR_NOMEM;
    bid->len = bufsize - sizeof(*bid);
    errno = 0;
    r = xc_version(h->xch, XENVER_build_id, bid);
    if (r < 0) {
        int e = xc_errno(r);
        rc = (e == EPERM || e == ENODATA) ? XM_OK : xm_err_from_errno(e);
        info->build_id_len = 0;
        goto out;
    }
    if ((unsigned)r > XM_BUILDID_MAX || (size_t)r > bid->len) {
        rc = XM_ERR_TOOBIG;
        goto out;
    }
    memcpy(info->build_id, bid->buf, (size_t)r);
    info->build_id_len = (unsigned)r;
    rc = XM_OK;
out:
    free(bid);
    return rc;
}

/*
 * Xen's extraversion is ".<patch><tag>" (".5", ".5-pre"): the dotted
 * numeric part joins xen_version ("4.17.5"), the rest is xen_extra
 * ("-pre"), so that xen_version + xen_extra is the full version.
 */
static void
split_version(int major, int minor, const char *extra,
              struct xm_hostinfo *info)
{
    size_t num = 0;

    if (!extra)
        extra = "";
    while (extra[num] == '.' || (extra[num] >= '0' && extra[num] <= '9'))
        num++;
    snprintf(info->xen_version, sizeof(info->xen_version), "%d.%d%.*s",
             major, minor, (int)num, extra);
    snprintf(info->xen_extra, sizeof(info->xen_extra), "%s", extra + num);
}

static int
hvl_hostinfo(void *ctx, struct xm_hostinfo *info_r)
{
    struct hv_libxl *h = ctx;
    const libxl_version_info *ver;
    libxl_physinfo phys;
    const uint64_t page_kib = XC_PAGE_SIZE / 1024;
    uint64_t avail;
    int lrc;
    int rc;

    memset(info_r, 0, sizeof(*info_r));
    libxl_physinfo_init(&phys);
    lrc = libxl_get_physinfo(h->ctx, &phys);
    if (lrc) {
        rc = xm_libxl_err(lrc);
        goto out;
    }
    info_r->total_kib = phys.total_pages * page_kib;
    /* Outstanding claims are promised to domains being built. */
    avail = phys.free_pages > phys.outstanding_pages
        ? phys.free_pages - phys.outstanding_pages : 0;
    info_r->free_kib = avail * page_kib;
    info_r->nr_cpus = phys.nr_cpus;

    ver = libxl_get_version_info(h->ctx);
    if (!ver) {
        rc = XM_ERR_HV;
        goto out;
    }
    split_version(ver->xen_version_major, ver->xen_version_minor,
                  ver->xen_version_extra, info_r);
    rc = get_build_id(h, info_r);
out:
    libxl_physinfo_dispose(&phys);
    return rc;
}

static int
hvl_domain_config(void *ctx, uint32_t domid, char **json_r)
{
    struct hv_libxl *h = ctx;
    libxl_domain_config cfg;
    char *json = NULL;
    int lrc;
    int rc;

    *json_r = NULL;
    libxl_domain_config_init(&cfg);
    lrc = xm_libxl_retrieve_config(h->ctx, domid, &cfg);
    if (lrc) {
        rc = xm_libxl_err(lrc);
        goto out;
    }
    /* As xl migrate: the target picks the domid. */
    cfg.c_info.domid = 0;
    json = libxl_domain_config_to_json(h->ctx, &cfg);
    if (!json) {
        rc = XM_ERR_NOMEM;
        goto out;
    }
    *json_r = json;
    rc = XM_OK;
out:
    libxl_domain_config_dispose(&cfg);
    return rc;
}

static int
check_domname(const char *name)
{
    if (!name || !name[0])
        return XM_ERR_INVAL;
    if (strnlen(name, XM_DOMNAME_MAX + 1) > XM_DOMNAME_MAX)
        return XM_ERR_TOOBIG;
    return XM_OK;
}

static int
hvl_rename(void *ctx, uint32_t domid, const char *new_name)
{
    struct hv_libxl *h = ctx;
    uint32_t other;
    int rc;

    rc = check_domname(new_name);
    if (rc)
        return rc;
    /* libxl reports a clash as ERROR_INVAL; tell it apart first (libxl
     * still checks again inside its own transaction). */
    if (libxl_name_to_domid(h->ctx, new_name, &other) == 0 && other != domid)
        return XM_ERR_EXISTS;
    return xm_libxl_err(libxl_domain_rename(h->ctx, domid, NULL, new_name));
}

static int
hvl_pause(void *ctx, uint32_t domid)
{
    struct hv_libxl *h = ctx;

    return xm_libxl_err(libxl_domain_pause(h->ctx, domid, NULL));
}

static int
hvl_unpause(void *ctx, uint32_t domid)
{
    struct hv_libxl *h = ctx;

    return xm_libxl_err(libxl_domain_unpause(h->ctx, domid, NULL));
}

static int
hvl_resume(void *ctx, uint32_t domid)
{
    struct hv_libxl *h = ctx;

    return xm_libxl_err(xm_libxl_resume(h->ctx, domid, NULL));
}

static int
hvl_destroy(void *ctx, uint32_t domid)
{
    struct hv_libxl *h = ctx;

    return xm_libxl_err(libxl_domain_destroy(h->ctx, domid, NULL));
}

/* The PV poweroff request (control/shutdown); a guest without PV
 * drivers answers ERROR_NOPARAVIRT: XM_ERR_UNSUPPORTED, nothing forced. */
static int
hvl_shutdown(void *ctx, uint32_t domid)
{
    struct hv_libxl *h = ctx;

    return xm_libxl_err(libxl_domain_shutdown(h->ctx, domid, NULL));
}

/* ---- asynchronous operations ------------------------------------ */

/* libxl's ao callback: may run inside any libxl call; record only. */
static void
op_callback(libxl_ctx *lctx, int lrc, void *for_callback)
{
    struct hv_op *op = for_callback;

    (void)lctx;
    op->finished = true;
    op->lrc = lrc;
}

static struct hv_op *
op_new(struct hv_libxl *h, const struct xm_hv_async *how)
{
    struct hv_op *op = calloc(1, sizeof(*op));

    if (!op)
        return NULL;
    op->owner = h;
    op->how = *how;
    op->ao.callback = op_callback;
    op->ao.u.for_callback = op;
    op->domid = INVALID_DOMID;
    libxl_domain_config_init(&op->d_config);
    libxl_domain_restore_params_init(&op->params);
    return op;
}

static void
op_free(struct hv_op *op)
{
    if (!op)
        return;
    libxl_domain_config_dispose(&op->d_config);
    libxl_domain_restore_params_dispose(&op->params);
    free(op);
}

static void
op_link(struct hv_libxl *h, struct hv_op *op)
{
    op->next = h->ops;
    h->ops = op;
}

/* Hand every finished operation back to its owner.  Unlinked before the
 * callback, which may start new operations. */
static void
deliver_finished(struct hv_libxl *h)
{
    for (;;) {
        struct hv_op **pp = &h->ops;
        struct hv_op *op;
        int rc;

        while (*pp && !(*pp)->finished)
            pp = &(*pp)->next;
        op = *pp;
        if (!op)
            return;
        *pp = op->next;
        rc = xm_libxl_err(op->lrc);
        if (op->restoring && op->domid_r)
            *op->domid_r = rc ? UINT32_MAX : op->domid;
        op->how.done(op->how.arg, rc);
        op_free(op);
    }
}

static bool
any_finished(const struct hv_libxl *h)
{
    for (const struct hv_op *op = h->ops; op; op = op->next)
        if (op->finished)
            return true;
    return false;
}

/* op->d_config from config_json, named name, its domid left to Xen
 * (never trust a domid from a peer or a file). */
static int
op_config(struct hv_libxl *h, struct hv_op *op, const char *config_json,
          const char *name)
{
    if (libxl_domain_config_from_json(h->ctx, &op->d_config, config_json))
        return XM_ERR_INVAL;    /* a config libxl rejects */
    free(op->d_config.c_info.name);
    op->d_config.c_info.name = strdup(name);
    if (!op->d_config.c_info.name)
        return XM_ERR_NOMEM;
    op->d_config.c_info.domid = INVALID_DOMID;
    return XM_OK;
}

/*
 * On a synchronous failure the op was never started (libxl calls back
 * only when the initiating call returned 0) and done is never called.
 */
static int
hvl_migrate_send(void *ctx, uint32_t domid, int fd,
                 const struct xm_hv_async *how)
{
    struct hv_libxl *h = ctx;
    struct hv_op *op = NULL;
    int lrc;
    int rc;

    assert(how && how->done);
    if (fd < 0)
        return XM_ERR_INVAL;
    op = op_new(h, how);
    if (!op)
        return XM_ERR_NOMEM;
    /* Linked first: libxl may call back before it returns. */
    op_link(h, op);
    lrc = xm_libxl_suspend_live(h->ctx, domid, fd, &op->ao);
    if (lrc) {
        h->ops = op->next;
        op_free(op);
        rc = xm_libxl_err(lrc);
        goto out;
    }
    rc = XM_OK;
out:
    return rc;
}

static int
hvl_migrate_recv(void *ctx, const char *config_json, const char *name,
                 int fd, uint32_t *domid_r, const struct xm_hv_async *how)
{
    struct hv_libxl *h = ctx;
    struct hv_op *op = NULL;
    int lrc;
    int rc;

    assert(how && how->done);
    if (!config_json || fd < 0) {
        rc = XM_ERR_INVAL;
        goto out;
    }
    rc = check_domname(name);
    if (rc)
        goto out;
    op = op_new(h, how);
    if (!op) {
        rc = XM_ERR_NOMEM;
        goto out;
    }
    op->restoring = true;
    op->domid_r = domid_r;
    rc = op_config(h, op, config_json, name);
    if (rc)
        goto out;
    xm_libxl_restore_params_init(&op->params);

    op_link(h, op);
    lrc = xm_libxl_create_restore(h->ctx, &op->d_config, &op->domid, fd,
                                  &op->params, &op->ao);
    if (lrc) {
        h->ops = op->next;
        rc = xm_libxl_err(lrc);
        goto out;
    }
    op = NULL;                  /* h->ops owns it */
    rc = XM_OK;
out:
    op_free(op);
    return rc;
}

/* A new domain from its config, left paused (libxl never unpauses). */
static int
hvl_create(void *ctx, const char *config_json, const char *name,
           uint32_t *domid_r, const struct xm_hv_async *how)
{
    struct hv_libxl *h = ctx;
    struct hv_op *op = NULL;
    int lrc;
    int rc;

    assert(how && how->done);
    if (!config_json) {
        rc = XM_ERR_INVAL;
        goto out;
    }
    rc = check_domname(name);
    if (rc)
        goto out;
    op = op_new(h, how);
    if (!op) {
        rc = XM_ERR_NOMEM;
        goto out;
    }
    op->restoring = true;       /* it reports a domid the same way */
    op->domid_r = domid_r;
    rc = op_config(h, op, config_json, name);
    if (rc)
        goto out;
    op_link(h, op);
    lrc = libxl_domain_create_new(h->ctx, &op->d_config, &op->domid,
                                  &op->ao, NULL);
    if (lrc) {
        h->ops = op->next;
        rc = xm_libxl_err(lrc);
        goto out;
    }
    op = NULL;                  /* h->ops owns it */
    rc = XM_OK;
out:
    op_free(op);
    return rc;
}

/* ---- livepatch -------------------------------------------------- */

static int
hvl_lp_upload(void *ctx, const char *name, const void *payload, size_t len)
{
    struct hv_libxl *h = ctx;
    char nbuf[XEN_LIVEPATCH_NAME_SIZE];
    int r;
    int rc;

    rc = check_lp_name(name, nbuf);
    if (rc)
        return rc;
    if (!payload || len == 0)
        return XM_ERR_INVAL;
    if (len > UINT32_MAX)
        return XM_ERR_TOOBIG;
    errno = 0;
    /* libxenctrl only reads the payload (bounce buffer, direction IN). */
    r = xc_livepatch_upload(h->xch, nbuf,
                            (unsigned char *)(uintptr_t)payload,
                            (uint32_t)len);
    if (r)
        return xm_lp_errno(xc_errno(r));
    return XM_OK;
}

static int
hvl_lp_get(void *ctx, const char *name, struct xm_lp_status *st_r)
{
    struct hv_libxl *h = ctx;
    char nbuf[XEN_LIVEPATCH_NAME_SIZE];
    xen_livepatch_status_t st;
    int r;
    int rc;

    memset(st_r, 0, sizeof(*st_r));
    rc = check_lp_name(name, nbuf);
    if (rc)
        return rc;
    memset(&st, 0, sizeof(st));
    errno = 0;
    r = xc_livepatch_get(h->xch, nbuf, &st);
    if (r)
        return xm_lp_errno(xc_errno(r));
    memcpy(st_r->name, nbuf, sizeof(st_r->name));
    st_r->state = (int)st.state;
    st_r->rc = st.rc;
    return XM_OK;
}

/* One attempt at the whole list; XM_ERR_BUSY when it changed under us. */
static int
lp_list_once(struct hv_libxl *h, struct xm_lp_status **list_r, size_t *n_r)
{
    xen_livepatch_status_t *info = NULL;
    struct xm_lp_status *list = NULL;
    char *names = NULL;
    char *meta = NULL;
    uint32_t *len = NULL;
    uint32_t *meta_len = NULL;
    unsigned int nr = 0, done = 0, left = 0;
    uint32_t name_total = 0, meta_total = 0, off = 0;
    int r;
    int rc;

    errno = 0;
    r = xc_livepatch_list_get_sizes(h->xch, &nr, &name_total, &meta_total);
    if (r) {
        rc = xm_lp_errno(xc_errno(r));
        goto out;
    }
    if (nr == 0) {
        rc = XM_OK;
        goto out;
    }
    info = calloc(nr, sizeof(*info));
    len = calloc(nr, sizeof(*len));
    meta_len = calloc(nr, sizeof(*meta_len));
    names = calloc((size_t)name_total + 1, 1);
    meta = calloc((size_t)meta_total + 1, 1);
    list = calloc(nr, sizeof(*list));
    if (!info || !len || !meta_len || !names || !meta || !list) {
        rc = XM_ERR_NOMEM;
        goto out;
    }
    errno = 0;
    r = xc_livepatch_list(h->xch, nr, 0, info, names, len, name_total,
                          meta, meta_len, meta_total, &done, &left);
    if (r) {
        int e = xc_errno(r);
        rc = e == EAGAIN ? XM_ERR_BUSY : xm_lp_errno(e);
        goto out;
    }
    if (done != nr || left != 0) {
        rc = XM_ERR_BUSY;
        goto out;
    }
    /* Names are packed back to back, len[i] bytes each (with the NUL);
     * check every length against what we allocated. */
    for (unsigned i = 0; i < nr; i++) {
        if (len[i] == 0 || len[i] > XEN_LIVEPATCH_NAME_SIZE
            || len[i] > name_total - off) {
            rc = XM_ERR_PROTO;
            goto out;
        }
        size_t nl = strnlen(names + off, len[i]);
        if (nl > XM_LP_NAME_MAX)
            nl = XM_LP_NAME_MAX;
        memcpy(list[i].name, names + off, nl);
        list[i].name[nl] = '\0';
        list[i].state = (int)info[i].state;
        list[i].rc = info[i].rc;
        off += len[i];
    }
    *list_r = list;
    *n_r = nr;
    list = NULL;
    rc = XM_OK;
out:
    free(info);
    free(len);
    free(meta_len);
    free(names);
    free(meta);
    free(list);
    return rc;
}

static int
hvl_lp_list(void *ctx, struct xm_lp_status **list_r, size_t *n_r)
{
    struct hv_libxl *h = ctx;
    int rc = XM_ERR_BUSY;

    *list_r = NULL;
    *n_r = 0;
    for (int i = 0; i < HV_LP_LIST_TRIES && rc == XM_ERR_BUSY; i++)
        rc = lp_list_once(h, list_r, n_r);
    return rc;
}

static int
hvl_lp_action(void *ctx, const char *name, enum xm_lp_action action,
              uint32_t timeout_ns)
{
    struct hv_libxl *h = ctx;
    char nbuf[XEN_LIVEPATCH_NAME_SIZE];
    int r;
    int rc;

    rc = check_lp_name(name, nbuf);
    if (rc)
        return rc;
    errno = 0;
    switch (action) {
    case XM_LP_APPLY:
        r = xc_livepatch_apply(h->xch, nbuf, timeout_ns, 0);
        break;
    case XM_LP_REVERT:
        r = xc_livepatch_revert(h->xch, nbuf, timeout_ns, 0);
        break;
    case XM_LP_REPLACE:
        r = xc_livepatch_replace(h->xch, nbuf, timeout_ns, 0);
        break;
    case XM_LP_UNLOAD:
        r = xc_livepatch_unload(h->xch, nbuf, timeout_ns, 0);
        break;
    default:
        return XM_ERR_INVAL;
    }
    if (r) {
        int e = xc_errno(r);
        /* The name is checked and flags are 0: Xen's EINVAL here means
         * the payload is in the wrong state for the action. */
        return e == EINVAL ? XM_ERR_STATE : xm_lp_errno(e);
    }
    return XM_OK;
}

/* ---- event loop ------------------------------------------------- */

static int
hvl_beforepoll(void *ctx, struct pollfd *fds, int first, int *nfds_io,
               int *timeout_ms_io)
{
    struct hv_libxl *h = ctx;
    struct timeval now;
    int space = *nfds_io - first;
    int lrc;

    assert(first >= 0 && space >= 0);
    gettimeofday(&now, NULL);
    lrc = libxl_osevent_beforepoll(h->ctx, &space,
                                   fds ? fds + first : NULL,
                                   timeout_ms_io, now);
    *nfds_io = first + space;
    /* Results recorded during some other libxl call: do not sleep. */
    if (any_finished(h))
        *timeout_ms_io = 0;
    if (lrc == ERROR_BUFFERFULL)
        return XM_ERR_TOOBIG;
    return xm_libxl_err(lrc);
}

static void
hvl_afterpoll(void *ctx, struct pollfd *fds, int first, int nfds)
{
    struct hv_libxl *h = ctx;
    struct timeval now;

    assert(first >= 0 && nfds >= first);
    gettimeofday(&now, NULL);
    libxl_osevent_afterpoll(h->ctx, nfds - first,
                            fds ? fds + first : NULL, now);
    deliver_finished(h);
}

/* ---- open and close --------------------------------------------- */

/*
 * Operations still running at close: ask libxl to abort them and drive
 * its events until they call back (bounded), then report each one.
 */
static void
drain_ops(struct hv_libxl *h)
{
    struct pollfd *fds = NULL;
    int cap = 0;
    int waited = 0;

    for (struct hv_op *op = h->ops; op; op = op->next)
        libxl_ao_abort(h->ctx, &op->ao);
    while (h->ops && waited < HV_CLOSE_DRAIN_MS) {
        int n = cap;
        int timeout = 100;
        int rc = hvl_beforepoll(h, fds, 0, &n, &timeout);

        if (rc == XM_ERR_TOOBIG) {
            struct pollfd *bigger = realloc(fds, (size_t)n * sizeof(*fds));
            if (!bigger)
                break;
            fds = bigger;
            cap = n;
            continue;
        }
        if (rc)
            break;
        if (timeout < 0 || timeout > 100)
            timeout = 100;
        if (poll(fds, (nfds_t)n, timeout) < 0 && errno != EINTR)
            break;
        waited += timeout > 0 ? timeout : 1;
        hvl_afterpoll(h, fds, 0, n);
    }
    free(fds);
    /* Whatever never finished: its owner still hears of it once. */
    while (h->ops) {
        struct hv_op *op = h->ops;
        h->ops = op->next;
        if (op->restoring && op->domid_r)
            *op->domid_r = UINT32_MAX;
        op->how.done(op->how.arg, XM_ERR_CANCELLED);
        /* libxl may still hold op->d_config: leak it rather than free
         * memory libxl could touch while the context goes away. */
    }
}

static void
hvl_close(void *ctx)
{
    struct hv_libxl *h = ctx;

    if (!h)
        return;
    if (h->ctx && h->ops)
        drain_ops(h);
    if (h->xch)
        xc_interface_close(h->xch);
    if (h->ctx)
        libxl_ctx_free(h->ctx);
    xm_progress_logger_free(h->logger);
    free(h);
}

static const struct xm_hv_ops hv_libxl_ops = {
    .list_domains = hvl_list_domains,
    .hostinfo = hvl_hostinfo,
    .domain_config = hvl_domain_config,
    .rename = hvl_rename,
    .pause = hvl_pause,
    .unpause = hvl_unpause,
    .resume = hvl_resume,
    .destroy = hvl_destroy,
    .shutdown = hvl_shutdown,
    .migrate_send = hvl_migrate_send,
    .migrate_recv = hvl_migrate_recv,
    .create = hvl_create,
    .lp_upload = hvl_lp_upload,
    .lp_get = hvl_lp_get,
    .lp_list = hvl_lp_list,
    .lp_action = hvl_lp_action,
    .beforepoll = hvl_beforepoll,
    .afterpoll = hvl_afterpoll,
    .close = hvl_close,
};

static const libxl_childproc_hooks childproc_hooks = {
    .chldowner = libxl_sigchld_owner_libxl_always_selective_reap,
};

int
xm_hv_libxl_open(struct xm_hv *hv_r)
{
    struct hv_libxl *h = NULL;
    int lrc;
    int rc;

    hv_r->ops = NULL;
    hv_r->ctx = NULL;
    h = calloc(1, sizeof(*h));
    if (!h) {
        rc = XM_ERR_NOMEM;
        goto out;
    }
    rc = xm_progress_logger_new(XTL_ERROR, xm_progress_to_xm_log, NULL,
                                NULL, &h->logger);
    if (rc)
        goto out;
    lrc = libxl_ctx_alloc(&h->ctx, LIBXL_VERSION, 0,
                          xm_progress_logger_xtl(h->logger));
    if (lrc) {
        h->ctx = NULL;
        rc = XM_ERR_HV;
        goto out;
    }
    /* libxl reaps only its own children (the save/restore helpers);
     * the agent reaps its own (a manifest's verify command) itself. */
    libxl_childproc_setmode(h->ctx, &childproc_hooks, NULL);
    h->xch = xc_interface_open(xm_progress_logger_xtl(h->logger),
                               xm_progress_logger_xtl(h->logger), 0);
    if (!h->xch) {
        rc = errno == EACCES || errno == EPERM ? XM_ERR_PERM : XM_ERR_HV;
        goto out;
    }
    hv_r->ops = &hv_libxl_ops;
    hv_r->ctx = h;
    h = NULL;
    rc = XM_OK;
out:
    hvl_close(h);
    return rc;
}

int
xm_hv_libxl_set_progress(struct xm_hv *hv, xm_progress_fn *fn, void *arg)
{
    struct hv_libxl *h = hv->ctx;

    if (hv->ops != &hv_libxl_ops || !h)
        return XM_ERR_UNSUPPORTED;
    xm_progress_set_progress(h->logger, fn, arg);
    return XM_OK;
}
