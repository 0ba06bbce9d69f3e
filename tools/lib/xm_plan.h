/*
 * xm_plan.h -- the drain planner: where does each guest go?
 *
 * Pure code over plain structs (no libxl, no xenstore, no I/O, no
 * clock).  The agent fills an xm_plan_input from the pool's host reports
 * and the source's domain list; xm_plan_compute answers, for every
 * guest, a target host or the reasons it cannot move.  `xl drain` shows
 * the same plan in dry-run mode, and undrain uses the preferred ("home")
 * host of each guest.
 *
 * The planner first runs the naive strategy (largest guest first, each
 * on the eligible host with the most free memory, its preferred host
 * first when that one fits) and then looks for a better packing that
 * keeps every guest the naive pass placed; the result is never worse
 * than the naive one.  Same input, same output: ties go to the lower
 * host index, then to the guest name.
 */
#ifndef XM_PLAN_H
#define XM_PLAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Input limits; more is XM_ERR_TOOBIG. */
#define XM_PLAN_MAX_HOSTS (1u << 20)
#define XM_PLAN_MAX_GUESTS (1u << 22)
#define XM_PLAN_MAX_VCPUS 4096u          /* per guest */
#define XM_PLAN_MAX_HOST_VCPUS (1u << 24) /* running on a host */

/* Why a guest stays where it is: bits of xm_plan_result.reasons. */
enum {
    XM_PLAN_R_PCI_PASSTHROUGH = 1u << 0, /* "pci-passthrough" */
    XM_PLAN_R_LOCAL_STORAGE = 1u << 1,   /* "local-storage" */
    XM_PLAN_R_UNMOVABLE = 1u << 2,       /* "unmovable" (pinned) */
    XM_PLAN_R_NO_MEMORY = 1u << 3,       /* "no-memory" */
    XM_PLAN_R_CPUPOOL = 1u << 4,         /* "cpupool" */
    XM_PLAN_R_ANTI_AFFINITY = 1u << 5,   /* "anti-affinity" */
    XM_PLAN_R_NO_TARGET = 1u << 6,       /* "no-target" */
    XM_PLAN_R_VCPU_CAPACITY = 1u << 7,   /* "vcpu-capacity" */
    XM_PLAN_R_ALL = (1u << 8) - 1
};

/*
 * Stable machine name of one reason bit ("no-memory"), shared by the
 * agent's JSON and the CLI; NULL when bit is not exactly one known bit.
 */
const char *xm_plan_reason_name(unsigned bit);

struct xm_plan_host {
    const char *name;              /* unique, non-empty */
    uint64_t mem_free_kib;         /* free for new guests now */
    unsigned n_pcpus;
    unsigned n_vcpus;              /* vCPUs already running there */
    unsigned vcpu_ratio_pct;       /* vCPUs allowed per 100 pCPUs, e.g.
                                    * 400 = 4 per pCPU; 0 = unlimited */
    const char *const *cpupools;   /* names of the cpupools it has */
    size_t n_cpupools;
    const char *const *groups;     /* anti-affinity groups it runs */
    size_t n_groups;
    bool cordoned;                 /* receives nothing */
    bool is_source;                /* being drained: never a target */
};

struct xm_plan_guest {
    const char *name;              /* unique, non-empty */
    uint32_t domid;
    uint64_t mem_kib;              /* needed on a target, incl. overhead;
                                    * not 0 */
    unsigned vcpus;                /* 1 .. XM_PLAN_MAX_VCPUS */
    const char *cpupool;           /* target must have it; NULL: any */
    const char *group;             /* anti-affinity group or NULL */
    const char *preferred;         /* host tried first (undrain: home)
                                    * or NULL; unknown names ignored */
    bool pci_passthrough;          /* each of these three blocks it */
    bool local_storage;
    bool unmovable;
};

/*
 * Strings are borrowed for the length of the call.  n_allowed == 0 means
 * every host may receive (`xl drain` without --to); otherwise only the
 * named hosts may.
 */
struct xm_plan_input {
    const struct xm_plan_host *hosts;
    size_t n_hosts;
    const struct xm_plan_guest *guests;
    size_t n_guests;
    const char *const *allowed;
    size_t n_allowed;
};

struct xm_plan_result {
    int target;                    /* index into the input's hosts, -1 */
    unsigned reasons;              /* XM_PLAN_R_* bits; 0 when placed */
    char *detail;                  /* one line for humans when blocked,
                                    * NULL when placed */
};

/* Owns all its memory; results[i] answers the input's guests[i]. */
struct xm_plan {
    struct xm_plan_result *results;
    size_t n_results;
    size_t n_placed;
    size_t n_blocked;
    size_t n_placed_naive;         /* what the naive pass alone placed */
    uint64_t *host_free_kib;       /* per input host, after placement */
    size_t n_hosts;
};

void xm_plan_init(struct xm_plan *plan);
/* Frees what plan owns and leaves it initialised; idempotent. */
void xm_plan_dispose(struct xm_plan *plan);

/*
 * Compute the plan into *plan_r (initialised or disposed by the caller;
 * left initialised on failure).  XM_ERR_INVAL: a NULL or empty name, a
 * duplicate host or guest name, a guest with no memory or a vCPU count
 * out of range, a host with a vCPU ratio but no pCPUs;
 * XM_ERR_NOTFOUND: a name in allowed that is no host; XM_ERR_TOOBIG:
 * over the limits above; XM_ERR_NOMEM.
 */
int xm_plan_compute(const struct xm_plan_input *in, struct xm_plan *plan_r);

#endif /* XM_PLAN_H */
