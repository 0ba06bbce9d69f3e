/*
 * plan_test.c -- the drain planner: every blocker reason, the host
 * filters (cordoned, source, --to, cpupools, anti-affinity, vCPUs), the
 * preferred host, determinism, input validation, and the guarantee that
 * the plan places every guest the naive strategy places.  The guarantee
 * is checked against a reference naive planner written here, plainly
 * (a scan of all hosts per guest), over thousands of seeded random
 * instances, each plan also checked for validity on its own.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "xm_err.h"
#include "xm_plan.h"

#define GIB (1024ull * 1024)            /* in KiB */
#define MAXH 16
#define MAXG 32

/* ---- fixture --------------------------------------------------------- */

static struct xm_plan_host hosts[MAXH];
static struct xm_plan_guest guests[MAXG];
static struct xm_plan_input input;
static struct xm_plan plan;

static void
fixture_setup(void)
{
    memset(hosts, 0, sizeof(hosts));
    memset(guests, 0, sizeof(guests));
    memset(&input, 0, sizeof(input));
    input.hosts = hosts;
    input.guests = guests;
    xm_plan_init(&plan);
}

static void
fixture_teardown(void)
{
    xm_plan_dispose(&plan);
}

static struct xm_plan_host *
add_host(const char *name, uint64_t free_gib)
{
    struct xm_plan_host *h = &hosts[input.n_hosts++];

    h->name = name;
    h->mem_free_kib = free_gib * GIB;
    h->n_pcpus = 8;
    return h;
}

static struct xm_plan_guest *
add_guest(const char *name, uint64_t mem_gib)
{
    struct xm_plan_guest *g = &guests[input.n_guests];

    g->name = name;
    g->domid = (uint32_t)input.n_guests + 1;
    g->mem_kib = mem_gib * GIB;
    g->vcpus = 1;
    input.n_guests++;
    return g;
}

static int
compute(void)
{
    xm_plan_dispose(&plan);
    return xm_plan_compute(&input, &plan);
}

/* The target of guest i, -1 when blocked. */
static int
target(size_t i)
{
    return plan.results[i].target;
}

static unsigned
reasons(size_t i)
{
    return plan.results[i].reasons;
}

/* Does guest i's detail mention s?  False when there is no detail. */
static bool
detail_has(size_t i, const char *s)
{
    const char *d = plan.results[i].detail;

    return d && strstr(d, s);
}

/* ---- reference naive planner ----------------------------------------- */

static bool
ref_has(const char *const *v, size_t n, const char *s)
{
    for (size_t i = 0; i < n; i++) {
        if (strcmp(v[i], s) == 0)
            return true;
    }
    return false;
}

static bool
ref_eligible(const struct xm_plan_input *in, size_t h)
{
    const struct xm_plan_host *host = &in->hosts[h];

    if (host->cordoned || host->is_source)
        return false;
    return !in->n_allowed || ref_has(in->allowed, in->n_allowed, host->name);
}

static bool
ref_hard(const struct xm_plan_guest *g)
{
    return g->pci_passthrough || g->local_storage || g->unmovable;
}

/* Can host h take guest g, given what is placed so far in target[]? */
static bool
ref_takes(const struct xm_plan_input *in, const int *target,
          const uint64_t *free_kib, const uint64_t *vcpus, size_t h,
          size_t gi, bool check_mem)
{
    const struct xm_plan_host *host = &in->hosts[h];
    const struct xm_plan_guest *g = &in->guests[gi];

    if (!ref_eligible(in, h))
        return false;
    if (g->cpupool && !ref_has(host->cpupools, host->n_cpupools, g->cpupool))
        return false;
    if (check_mem && free_kib[h] < g->mem_kib)
        return false;
    if (host->vcpu_ratio_pct &&
        vcpus[h] + g->vcpus >
        (uint64_t)host->n_pcpus * host->vcpu_ratio_pct / 100)
        return false;
    if (g->group) {
        if (ref_has(host->groups, host->n_groups, g->group))
            return false;
        for (size_t j = 0; j < in->n_guests; j++) {
            if (target[j] == (int)h && in->guests[j].group &&
                strcmp(in->guests[j].group, g->group) == 0)
                return false;
        }
    }
    return true;
}

static const struct xm_plan_input *ref_sort_input;

static int
ref_cmp(const void *a, const void *b)
{
    size_t i = *(const size_t *)a, j = *(const size_t *)b;
    const struct xm_plan_guest *x = &ref_sort_input->guests[i];
    const struct xm_plan_guest *y = &ref_sort_input->guests[j];
    int r;

    if (x->mem_kib != y->mem_kib)
        return x->mem_kib > y->mem_kib ? -1 : 1;
    r = strcmp(x->name, y->name);
    return r ? r : (i < j ? -1 : i > j);
}

/* Largest first, preferred host if it fits, else the most free. */
static size_t
ref_naive(const struct xm_plan_input *in, int *target)
{
    uint64_t free_kib[MAXH], vcpus[MAXH];
    size_t order[MAXG], placed = 0;

    for (size_t h = 0; h < in->n_hosts; h++) {
        free_kib[h] = in->hosts[h].mem_free_kib;
        vcpus[h] = in->hosts[h].n_vcpus;
    }
    for (size_t i = 0; i < in->n_guests; i++) {
        order[i] = i;
        target[i] = -1;
    }
    ref_sort_input = in;
    qsort(order, in->n_guests, sizeof(*order), ref_cmp);
    for (size_t k = 0; k < in->n_guests; k++) {
        size_t gi = order[k];
        const struct xm_plan_guest *g = &in->guests[gi];
        int best = -1;

        if (ref_hard(g))
            continue;
        for (size_t h = 0; g->preferred && h < in->n_hosts; h++) {
            if (strcmp(in->hosts[h].name, g->preferred) == 0 &&
                ref_takes(in, target, free_kib, vcpus, h, gi, true))
                best = (int)h;
        }
        if (best < 0) {
            for (size_t h = 0; h < in->n_hosts; h++) {
                if (ref_takes(in, target, free_kib, vcpus, h, gi, false) &&
                    (best < 0 || free_kib[h] > free_kib[best]))
                    best = (int)h;
            }
        }
        if (best >= 0 && free_kib[best] >= g->mem_kib) {
            target[gi] = best;
            free_kib[best] -= g->mem_kib;
            vcpus[best] += g->vcpus;
            placed++;
        }
    }
    return placed;
}

/*
 * Check a plan on its own terms: every placement allowed, the memory,
 * vCPU and group budgets kept, free memory accounted, every blocked
 * guest explained.  Returns the number of failed checks.
 */
static int
check_valid(const struct xm_plan_input *in, const struct xm_plan *pl)
{
    uint64_t used[MAXH] = { 0 }, vcpus[MAXH] = { 0 };
    int bad = 0;
    size_t n_placed = 0;

    if (pl->n_results != in->n_guests || pl->n_hosts != in->n_hosts)
        return 1;
    for (size_t i = 0; i < in->n_guests; i++) {
        const struct xm_plan_guest *g = &in->guests[i];
        const struct xm_plan_result *r = &pl->results[i];
        int h = r->target;

        if (h < 0) {
            bad += !r->reasons || !r->detail;
            bad += ref_hard(g) &&
                r->reasons != ((g->pci_passthrough ?
                                XM_PLAN_R_PCI_PASSTHROUGH : 0u) |
                               (g->local_storage ?
                                XM_PLAN_R_LOCAL_STORAGE : 0u) |
                               (g->unmovable ? XM_PLAN_R_UNMOVABLE : 0u));
            continue;
        }
        n_placed++;
        bad += r->reasons != 0 || r->detail != NULL;
        bad += ref_hard(g);
        bad += h >= (int)in->n_hosts || !ref_eligible(in, (size_t)h);
        if (h >= (int)in->n_hosts)
            continue;
        bad += g->cpupool && !ref_has(in->hosts[h].cpupools,
                                      in->hosts[h].n_cpupools, g->cpupool);
        used[h] += g->mem_kib;
        vcpus[h] += g->vcpus;
        if (g->group) {
            bad += ref_has(in->hosts[h].groups, in->hosts[h].n_groups,
                           g->group);
            for (size_t j = 0; j < i; j++) {
                bad += pl->results[j].target == h && in->guests[j].group &&
                    strcmp(in->guests[j].group, g->group) == 0;
            }
        }
    }
    for (size_t h = 0; h < in->n_hosts; h++) {
        const struct xm_plan_host *host = &in->hosts[h];

        bad += used[h] > host->mem_free_kib;
        bad += pl->host_free_kib[h] != host->mem_free_kib - used[h];
        bad += vcpus[h] && host->vcpu_ratio_pct &&
            host->n_vcpus + vcpus[h] >
            (uint64_t)host->n_pcpus * host->vcpu_ratio_pct / 100;
    }
    bad += n_placed != pl->n_placed;
    bad += pl->n_placed + pl->n_blocked != in->n_guests;
    return bad;
}

/* ---- reasons, names -------------------------------------------------- */

static void
test_reason_names(void)
{
    static const char *const want[] = {
        "pci-passthrough", "local-storage", "unmovable", "no-memory",
        "cpupool", "anti-affinity", "no-target", "vcpu-capacity",
    };

    CU_ASSERT_EQUAL(XM_PLAN_R_PCI_PASSTHROUGH, 1u);
    for (unsigned i = 0; i < 8; i++) {
        CU_ASSERT_PTR_NOT_NULL_FATAL(xm_plan_reason_name(1u << i));
        CU_ASSERT_STRING_EQUAL(xm_plan_reason_name(1u << i), want[i]);
        CU_ASSERT((XM_PLAN_R_ALL & (1u << i)) != 0);
    }
    CU_ASSERT_PTR_NULL(xm_plan_reason_name(0));
    CU_ASSERT_PTR_NULL(xm_plan_reason_name(3));
    CU_ASSERT_PTR_NULL(xm_plan_reason_name(1u << 8));
    CU_ASSERT_STRING_EQUAL(xm_plan_reason_name(XM_PLAN_R_NO_TARGET),
                           "no-target");
}

static void
test_hard_blockers(void)
{
    add_host("a", 64);
    add_guest("pci", 1)->pci_passthrough = true;
    add_guest("local", 1)->local_storage = true;
    add_guest("pinned", 1)->unmovable = true;
    struct xm_plan_guest *both = add_guest("both", 1);
    both->pci_passthrough = true;
    both->local_storage = true;
    add_guest("free", 1);

    CU_ASSERT_EQUAL_FATAL(compute(), XM_OK);
    CU_ASSERT_EQUAL(target(0), -1);
    CU_ASSERT_EQUAL(reasons(0), XM_PLAN_R_PCI_PASSTHROUGH);
    CU_ASSERT_EQUAL(reasons(1), XM_PLAN_R_LOCAL_STORAGE);
    CU_ASSERT_EQUAL(reasons(2), XM_PLAN_R_UNMOVABLE);
    CU_ASSERT_EQUAL(reasons(3),
                    XM_PLAN_R_PCI_PASSTHROUGH | XM_PLAN_R_LOCAL_STORAGE);
    CU_ASSERT_PTR_NOT_NULL_FATAL(plan.results[3].detail);
    CU_ASSERT(detail_has(3, "PCI"));
    CU_ASSERT(detail_has(3, "local"));
    CU_ASSERT_EQUAL(target(4), 0);
    CU_ASSERT_PTR_NULL(plan.results[4].detail);
    CU_ASSERT_EQUAL(plan.n_placed, 1);
    CU_ASSERT_EQUAL(plan.n_blocked, 4);
    CU_ASSERT_EQUAL(plan.host_free_kib[0], 63 * GIB);
    CU_ASSERT_EQUAL(check_valid(&input, &plan), 0);
}

static void
test_no_memory(void)
{
    add_host("a", 4);
    add_host("b", 6);
    add_guest("big", 8);
    add_guest("fits", 6);

    CU_ASSERT_EQUAL_FATAL(compute(), XM_OK);
    CU_ASSERT_EQUAL(target(0), -1);
    CU_ASSERT_EQUAL(reasons(0), XM_PLAN_R_NO_MEMORY);
    CU_ASSERT_PTR_NOT_NULL_FATAL(plan.results[0].detail);
    CU_ASSERT(detail_has(0, "8388608 KiB"));
    CU_ASSERT(detail_has(0, "4194304 KiB"));
    CU_ASSERT_EQUAL(target(1), 1);
    CU_ASSERT_EQUAL(plan.host_free_kib[1], 0);
    CU_ASSERT_EQUAL(check_valid(&input, &plan), 0);
}

static void
test_cpupool(void)
{
    static const char *const pool0[] = { "Pool-0" };
    static const char *const rt[] = { "Pool-0", "rt" };

    add_host("a", 64)->cpupools = pool0;
    hosts[0].n_cpupools = 1;
    add_host("b", 8)->cpupools = rt;
    hosts[1].n_cpupools = 2;
    struct xm_plan_host *c = add_host("c", 64);
    c->cpupools = rt;
    c->n_cpupools = 2;
    c->cordoned = true;
    add_guest("rt1", 1)->cpupool = "rt";
    add_guest("gpu", 1)->cpupool = "gpu";
    add_guest("p0", 1)->cpupool = "Pool-0";

    CU_ASSERT_EQUAL_FATAL(compute(), XM_OK);
    CU_ASSERT_EQUAL(target(0), 1);      /* the only eligible rt host */
    CU_ASSERT_EQUAL(target(1), -1);
    CU_ASSERT_EQUAL(reasons(1), XM_PLAN_R_CPUPOOL);
    CU_ASSERT(detail_has(1, "'gpu'"));
    CU_ASSERT_EQUAL(target(2), 0);      /* most free with Pool-0 */

    /* A pool only a cordoned host has is no pool at all. */
    guests[1].cpupool = "rt";
    hosts[1].cordoned = true;
    CU_ASSERT_EQUAL_FATAL(compute(), XM_OK);
    CU_ASSERT_EQUAL(reasons(0), XM_PLAN_R_CPUPOOL);
    CU_ASSERT_EQUAL(reasons(1), XM_PLAN_R_CPUPOOL);
    CU_ASSERT_EQUAL(target(2), 0);
    CU_ASSERT_EQUAL(check_valid(&input, &plan), 0);
}

static void
test_anti_affinity(void)
{
    static const char *const db[] = { "db" };

    add_host("a", 64)->groups = db;     /* already runs a db guest */
    hosts[0].n_groups = 1;
    add_host("b", 8);
    add_host("c", 4);
    add_guest("db1", 2)->group = "db";
    add_guest("db2", 2)->group = "db";
    add_guest("db3", 2)->group = "db";
    add_guest("web", 2)->group = "web";

    CU_ASSERT_EQUAL_FATAL(compute(), XM_OK);
    /* a has the most room but a db member: db1 and db2 go to b and c. */
    CU_ASSERT_NOT_EQUAL(target(0), 0);
    CU_ASSERT_NOT_EQUAL(target(1), 0);
    CU_ASSERT(target(0) >= 0 && target(1) >= 0);
    CU_ASSERT_NOT_EQUAL(target(0), target(1));
    CU_ASSERT_EQUAL(target(2), -1);
    CU_ASSERT_EQUAL(reasons(2), XM_PLAN_R_ANTI_AFFINITY);
    CU_ASSERT(detail_has(2, "'db'"));
    CU_ASSERT_EQUAL(target(3), 0);
    CU_ASSERT_EQUAL(check_valid(&input, &plan), 0);
}

static void
test_vcpu_capacity(void)
{
    struct xm_plan_host *a = add_host("a", 64);

    a->n_pcpus = 2;
    a->vcpu_ratio_pct = 150;            /* 3 vCPUs */
    a->n_vcpus = 1;
    add_host("b", 2);
    add_guest("wide", 4)->vcpus = 3;
    add_guest("two", 4)->vcpus = 2;
    add_guest("one", 1)->vcpus = 1;

    CU_ASSERT_EQUAL_FATAL(compute(), XM_OK);
    CU_ASSERT_EQUAL(target(0), -1);
    CU_ASSERT_EQUAL(reasons(0), XM_PLAN_R_VCPU_CAPACITY);
    CU_ASSERT_EQUAL(target(1), 0);
    CU_ASSERT_EQUAL(target(2), 1);      /* a is full of vCPUs now */
    CU_ASSERT_EQUAL(check_valid(&input, &plan), 0);

    /* Unlimited when the ratio is 0. */
    a->vcpu_ratio_pct = 0;
    CU_ASSERT_EQUAL_FATAL(compute(), XM_OK);
    CU_ASSERT_EQUAL(target(0), 0);
    CU_ASSERT_EQUAL(target(1), 0);
    CU_ASSERT_EQUAL(plan.n_blocked, 0);
}

static void
test_no_target(void)
{
    add_host("src", 64)->is_source = true;
    add_host("cord", 64)->cordoned = true;
    add_guest("g", 1);
    add_guest("pci", 1)->pci_passthrough = true;

    CU_ASSERT_EQUAL_FATAL(compute(), XM_OK);
    CU_ASSERT_EQUAL(reasons(0), XM_PLAN_R_NO_TARGET);
    CU_ASSERT_PTR_NOT_NULL(plan.results[0].detail);
    CU_ASSERT_EQUAL(reasons(1), XM_PLAN_R_PCI_PASSTHROUGH);
    CU_ASSERT_EQUAL(plan.host_free_kib[0], 64 * GIB);
    CU_ASSERT_EQUAL(plan.host_free_kib[1], 64 * GIB);
}

static void
test_cordoned_and_source(void)
{
    add_host("src", 128)->is_source = true;
    add_host("cord", 96)->cordoned = true;
    add_host("small", 8);
    add_host("smaller", 4);
    add_guest("g1", 2);
    add_guest("g2", 2);
    add_guest("g3", 2);
    add_guest("g4", 2);

    CU_ASSERT_EQUAL_FATAL(compute(), XM_OK);
    CU_ASSERT_EQUAL(plan.n_placed, 4);
    for (size_t i = 0; i < 4; i++)
        CU_ASSERT(target(i) == 2 || target(i) == 3);
    CU_ASSERT_EQUAL(plan.host_free_kib[0], 128 * GIB);
    CU_ASSERT_EQUAL(plan.host_free_kib[1], 96 * GIB);
    CU_ASSERT_EQUAL(check_valid(&input, &plan), 0);
}

static void
test_allowed_targets(void)
{
    static const char *const to_b[] = { "b" };
    static const char *const to_cd[] = { "c", "d" };
    static const char *const to_x[] = { "b", "x" };

    add_host("a", 64);
    add_host("b", 8);
    add_host("c", 32)->cordoned = true;
    add_host("d", 16)->is_source = true;
    add_guest("g1", 2);
    add_guest("g2", 8);

    input.allowed = to_b;
    input.n_allowed = 1;
    CU_ASSERT_EQUAL_FATAL(compute(), XM_OK);
    CU_ASSERT_EQUAL(target(1), 1);
    CU_ASSERT_EQUAL(target(0), -1);     /* b is full after g2 */
    CU_ASSERT_EQUAL(reasons(0), XM_PLAN_R_NO_MEMORY);
    CU_ASSERT_EQUAL(plan.host_free_kib[0], 64 * GIB);

    /* Allowed but cordoned or draining: still no target. */
    input.allowed = to_cd;
    input.n_allowed = 2;
    CU_ASSERT_EQUAL_FATAL(compute(), XM_OK);
    CU_ASSERT_EQUAL(reasons(0), XM_PLAN_R_NO_TARGET);
    CU_ASSERT_EQUAL(reasons(1), XM_PLAN_R_NO_TARGET);

    input.allowed = to_x;
    CU_ASSERT_EQUAL(compute(), XM_ERR_NOTFOUND);
    CU_ASSERT_PTR_NULL(plan.results);
}

static void
test_preferred_host(void)
{
    add_host("a", 64);
    add_host("home", 8);
    add_host("cord", 8)->cordoned = true;
    add_guest("g1", 4)->preferred = "home";
    add_guest("g2", 2);
    add_guest("g3", 8)->preferred = "home";   /* no longer fits */
    add_guest("g4", 2)->preferred = "cord";
    add_guest("g5", 1)->preferred = "gone";

    CU_ASSERT_EQUAL_FATAL(compute(), XM_OK);
    CU_ASSERT_EQUAL(plan.n_blocked, 0);
    CU_ASSERT_EQUAL(target(2), 1);      /* largest first: g3 home */
    CU_ASSERT_EQUAL(target(0), 0);      /* home is full: most free */
    CU_ASSERT_EQUAL(target(1), 0);
    CU_ASSERT_EQUAL(target(3), 0);      /* a cordoned home is ignored */
    CU_ASSERT_EQUAL(target(4), 0);      /* an unknown one too */

    /* The home is honoured when it fits, though others have more room. */
    guests[2].preferred = NULL;
    CU_ASSERT_EQUAL_FATAL(compute(), XM_OK);
    CU_ASSERT_EQUAL(target(0), 1);
    CU_ASSERT_EQUAL(check_valid(&input, &plan), 0);
}

static void
test_ties_by_host_order(void)
{
    add_host("a", 8);
    add_host("b", 8);
    add_guest("x", 1);
    CU_ASSERT_EQUAL_FATAL(compute(), XM_OK);
    CU_ASSERT_EQUAL(target(0), 0);

    /* Equal guests go by name, whatever the input order. */
    hosts[0].mem_free_kib = 2 * GIB;
    hosts[1].mem_free_kib = 1 * GIB;
    guests[0].name = "zz";
    guests[0].mem_kib = 2 * GIB;
    add_guest("aa", 2);
    CU_ASSERT_EQUAL_FATAL(compute(), XM_OK);
    CU_ASSERT_EQUAL(target(1), 0);
    CU_ASSERT_EQUAL(target(0), -1);
}

/* Naive puts 4 on the 6 GiB host and leaves a 3 out; 3+3 | 4 fits all. */
static void
test_better_than_naive(void)
{
    int naive[MAXG];

    add_host("six", 6);
    add_host("four", 4);
    add_guest("g4", 4);
    add_guest("g3a", 3);
    add_guest("g3b", 3);

    CU_ASSERT_EQUAL(ref_naive(&input, naive), 2);
    CU_ASSERT_EQUAL_FATAL(compute(), XM_OK);
    CU_ASSERT_EQUAL(plan.n_placed_naive, 2);
    CU_ASSERT_EQUAL(plan.n_placed, 3);
    CU_ASSERT_EQUAL(target(0), 1);
    CU_ASSERT_EQUAL(target(1), 0);
    CU_ASSERT_EQUAL(target(2), 0);
    CU_ASSERT_EQUAL(plan.host_free_kib[0], 0);
    CU_ASSERT_EQUAL(plan.host_free_kib[1], 0);
    CU_ASSERT_EQUAL(check_valid(&input, &plan), 0);
}

static void
test_better_than_naive_pools(void)
{
    static const char *const p[] = { "Pool-0" };
    int naive[MAXG];

    /* 10 | 6, guests 6, 5, 5: naive strands a 5; best fit does not. */
    add_host("ten", 10)->cpupools = p;
    hosts[0].n_cpupools = 1;
    add_host("six", 6)->cpupools = p;
    hosts[1].n_cpupools = 1;
    add_guest("g6", 6)->cpupool = "Pool-0";
    add_guest("g5a", 5)->cpupool = "Pool-0";
    add_guest("g5b", 5);
    add_guest("pci", 1)->pci_passthrough = true;

    CU_ASSERT_EQUAL(ref_naive(&input, naive), 2);
    CU_ASSERT_EQUAL_FATAL(compute(), XM_OK);
    CU_ASSERT_EQUAL(plan.n_placed_naive, 2);
    CU_ASSERT_EQUAL(plan.n_placed, 3);
    CU_ASSERT_EQUAL(target(0), 1);
    CU_ASSERT_EQUAL(target(3), -1);
    CU_ASSERT_EQUAL(check_valid(&input, &plan), 0);
}

/* When naive places all, the plan is the naive one: most free first. */
static void
test_naive_spread_kept(void)
{
    add_host("a", 16);
    add_host("b", 16);
    add_guest("g1", 2);
    add_guest("g2", 2);

    CU_ASSERT_EQUAL_FATAL(compute(), XM_OK);
    CU_ASSERT_EQUAL(target(0), 0);
    CU_ASSERT_EQUAL(target(1), 1);
}

/* ---- determinism, validation, empty inputs --------------------------- */

static void
test_deterministic(void)
{
    static const char *const db[] = { "db" };
    struct xm_plan again;

    add_host("a", 7)->groups = db;
    hosts[0].n_groups = 1;
    add_host("b", 7);
    add_host("c", 5);
    add_guest("g1", 3)->group = "db";
    add_guest("g2", 3);
    add_guest("g3", 3);
    add_guest("g4", 3)->group = "db";
    add_guest("g5", 4);
    add_guest("g6", 2);

    CU_ASSERT_EQUAL_FATAL(compute(), XM_OK);
    xm_plan_init(&again);
    CU_ASSERT_EQUAL_FATAL(xm_plan_compute(&input, &again), XM_OK);
    CU_ASSERT_EQUAL(again.n_placed, plan.n_placed);
    for (size_t i = 0; i < input.n_guests; i++) {
        CU_ASSERT_EQUAL(again.results[i].target, target(i));
        CU_ASSERT_EQUAL(again.results[i].reasons, reasons(i));
        if (plan.results[i].detail && again.results[i].detail) {
            CU_ASSERT_STRING_EQUAL(again.results[i].detail,
                                   plan.results[i].detail);
        } else {
            CU_ASSERT_PTR_EQUAL(again.results[i].detail,
                                plan.results[i].detail);
        }
    }
    for (size_t h = 0; h < input.n_hosts; h++)
        CU_ASSERT_EQUAL(again.host_free_kib[h], plan.host_free_kib[h]);
    xm_plan_dispose(&again);
    xm_plan_dispose(&again);            /* idempotent */
    CU_ASSERT_PTR_NULL(again.results);
}

static void
expect_inval(void)
{
    CU_ASSERT_EQUAL(compute(), XM_ERR_INVAL);
    CU_ASSERT_PTR_NULL(plan.results);
    CU_ASSERT_PTR_NULL(plan.host_free_kib);
    CU_ASSERT_EQUAL(plan.n_results, 0);
}

static void
test_invalid_input(void)
{
    static const char *const bad_pools[] = { "Pool-0", NULL };
    static const char *const bad_allowed[] = { NULL };

    add_host("a", 8);
    add_host("b", 8);
    add_guest("g", 1);
    CU_ASSERT_EQUAL_FATAL(compute(), XM_OK);

    guests[0].mem_kib = 0;
    expect_inval();
    guests[0].mem_kib = GIB;
    guests[0].vcpus = 0;
    expect_inval();
    guests[0].vcpus = XM_PLAN_MAX_VCPUS + 1;
    expect_inval();
    guests[0].vcpus = 1;
    hosts[1].name = "a";
    expect_inval();
    hosts[1].name = NULL;
    expect_inval();
    hosts[1].name = "";
    expect_inval();
    hosts[1].name = "b";
    guests[0].name = NULL;
    expect_inval();
    guests[0].name = "g";
    add_guest("g", 1);                  /* duplicate guest name */
    expect_inval();
    guests[1].name = "h";
    guests[1].cpupool = "";
    expect_inval();
    guests[1].cpupool = NULL;
    hosts[0].vcpu_ratio_pct = 100;
    hosts[0].n_pcpus = 0;
    expect_inval();
    hosts[0].n_pcpus = 4;
    hosts[0].cpupools = bad_pools;
    hosts[0].n_cpupools = 2;
    expect_inval();
    hosts[0].cpupools = NULL;
    expect_inval();
    hosts[0].n_cpupools = 0;
    input.allowed = bad_allowed;
    input.n_allowed = 1;
    expect_inval();
    input.n_allowed = 0;
    input.hosts = NULL;
    expect_inval();
    input.hosts = hosts;
    CU_ASSERT_EQUAL(compute(), XM_OK);
}

static void
test_empty(void)
{
    CU_ASSERT_EQUAL_FATAL(compute(), XM_OK);
    CU_ASSERT_EQUAL(plan.n_results, 0);
    CU_ASSERT_EQUAL(plan.n_placed, 0);

    add_host("a", 8);
    CU_ASSERT_EQUAL_FATAL(compute(), XM_OK);
    CU_ASSERT_EQUAL(plan.n_results, 0);
    CU_ASSERT_EQUAL(plan.n_blocked, 0);
    CU_ASSERT_EQUAL_FATAL(plan.n_hosts, 1);
    CU_ASSERT_EQUAL(plan.host_free_kib[0], 8 * GIB);

    input.n_hosts = 0;
    add_guest("g1", 1);
    add_guest("g2", 1)->cpupool = "rt";
    add_guest("g3", 1)->unmovable = true;
    CU_ASSERT_EQUAL_FATAL(compute(), XM_OK);
    CU_ASSERT_EQUAL(plan.n_blocked, 3);
    CU_ASSERT_EQUAL(reasons(0), XM_PLAN_R_NO_TARGET);
    CU_ASSERT_EQUAL(reasons(1), XM_PLAN_R_NO_TARGET);
    CU_ASSERT_EQUAL(reasons(2), XM_PLAN_R_UNMOVABLE);
}

/* ---- the guarantee, over random instances ---------------------------- */

static uint64_t rng_state;

static unsigned
rng(unsigned n)
{
    rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
    return (unsigned)((rng_state >> 33) % n);
}

static const char *const host_names[MAXH] = {
    "h0", "h1", "h2", "h3", "h4", "h5", "h6", "h7",
    "h8", "h9", "h10", "h11", "h12", "h13", "h14", "h15",
};
static const char *const guest_names[MAXG] = {
    "g0", "g1", "g2", "g3", "g4", "g5", "g6", "g7", "g8", "g9", "g10",
    "g11", "g12", "g13", "g14", "g15", "g16", "g17", "g18", "g19",
    "g20", "g21", "g22", "g23", "g24", "g25", "g26", "g27", "g28",
    "g29", "g30", "g31",
};
static const char *const pool_sets[][2] = {
    { "p0", "p1" }, { "p0", NULL }, { "p1", NULL },
};
static const char *const group_sets[][1] = { { "a" }, { "b" } };
static const char *allowed_names[MAXH];

static void
random_instance(uint64_t seed)
{
    memset(hosts, 0, sizeof(hosts));
    memset(guests, 0, sizeof(guests));
    memset(&input, 0, sizeof(input));
    input.hosts = hosts;
    input.guests = guests;
    rng_state = seed * 2654435761u + 1;
    input.n_hosts = 1 + rng(5);
    input.n_guests = 1 + rng(9);
    for (size_t h = 0; h < input.n_hosts; h++) {
        struct xm_plan_host *host = &hosts[h];
        unsigned ps = rng(4);

        host->name = host_names[h];
        host->mem_free_kib = rng(13) * GIB / 2;
        host->n_pcpus = 1 + rng(4);
        host->n_vcpus = rng(3);
        host->vcpu_ratio_pct = rng(4) == 0 ? 100 + 50 * rng(4) : 0;
        if (ps < 3) {
            host->cpupools = pool_sets[ps];
            host->n_cpupools = pool_sets[ps][1] ? 2 : 1;
        }
        if (rng(4) == 0) {
            host->groups = group_sets[rng(2)];
            host->n_groups = 1;
        }
        host->cordoned = rng(10) == 0;
        host->is_source = rng(10) == 0;
        if (rng(3) == 0)
            allowed_names[input.n_allowed++] = host->name;
    }
    input.allowed = rng(4) == 0 ? allowed_names : NULL;
    if (!input.allowed)
        input.n_allowed = 0;
    for (size_t i = 0; i < input.n_guests; i++) {
        struct xm_plan_guest *g = &guests[i];

        g->name = guest_names[i];
        g->domid = (uint32_t)i + 1;
        g->mem_kib = (1 + rng(12)) * GIB / 2;
        g->vcpus = 1 + rng(3);
        if (rng(4) == 0)
            g->cpupool = rng(2) ? "p0" : "p1";
        if (rng(3) == 0)
            g->group = rng(2) ? "a" : "b";
        if (rng(5) == 0)
            g->preferred = host_names[rng(6)];
        g->pci_passthrough = rng(30) == 0;
        g->local_storage = rng(30) == 0;
        g->unmovable = rng(30) == 0;
    }
}

static void
test_never_worse_than_naive(void)
{
    unsigned better = 0, failures = 0;
    int naive[MAXG];

    for (uint64_t seed = 1; seed <= 5000; seed++) {
        size_t n_naive;
        int bad = 0;

        random_instance(seed);
        n_naive = ref_naive(&input, naive);
        if (compute() != XM_OK) {
            failures++;
            continue;
        }
        bad += plan.n_placed_naive != n_naive;
        bad += plan.n_placed < n_naive;
        for (size_t i = 0; i < input.n_guests; i++)
            bad += naive[i] >= 0 && target(i) < 0;
        bad += check_valid(&input, &plan);
        if (bad && failures++ < 5)
            fprintf(stderr, "\nseed %" PRIu64 ": %d failed checks\n",
                    seed, bad);
        better += plan.n_placed > n_naive;
    }
    CU_ASSERT_EQUAL(failures, 0);
    /* The instances must exercise the improvement, not only naive. */
    CU_ASSERT(better > 20);
}

/* Larger random instances: the plan stays valid (no reference here). */
static void
test_valid_on_larger_instances(void)
{
    unsigned failures = 0;

    for (uint64_t seed = 1; seed <= 300; seed++) {
        random_instance(seed + 100000);
        input.n_hosts = MAXH;
        input.n_guests = MAXG;
        input.n_allowed = 0;
        input.allowed = NULL;
        for (size_t h = 0; h < MAXH; h++) {
            hosts[h].name = host_names[h];
            hosts[h].mem_free_kib = rng(17) * GIB;
            hosts[h].n_pcpus = 4;
        }
        for (size_t i = 0; i < MAXG; i++) {
            guests[i].name = guest_names[i];
            guests[i].mem_kib = (1 + rng(8)) * GIB;
            guests[i].vcpus = 1 + rng(4);
            guests[i].group = rng(3) == 0 ? (rng(2) ? "a" : "b") : NULL;
        }
        if (compute() != XM_OK || check_valid(&input, &plan) != 0)
            failures++;
    }
    CU_ASSERT_EQUAL(failures, 0);
}

static CU_TestInfo plan_tests[] = {
    { "reason names", test_reason_names },
    { "hard blockers", test_hard_blockers },
    { "no memory", test_no_memory },
    { "cpupool", test_cpupool },
    { "anti-affinity counts existing members", test_anti_affinity },
    { "vcpu capacity", test_vcpu_capacity },
    { "no target", test_no_target },
    { "cordoned and source hosts receive nothing",
      test_cordoned_and_source },
    { "--to restriction", test_allowed_targets },
    { "preferred (home) host", test_preferred_host },
    { "ties by host order then name", test_ties_by_host_order },
    { "better than naive: 6|4 vs 4,3,3", test_better_than_naive },
    { "better than naive: 10|6 vs 6,5,5", test_better_than_naive_pools },
    { "naive spread kept when it places all", test_naive_spread_kept },
    { "deterministic", test_deterministic },
    { "invalid input", test_invalid_input },
    { "empty inputs", test_empty },
    { "never worse than naive (5000 seeds)", test_never_worse_than_naive },
    { "valid on larger instances", test_valid_on_larger_instances },
    CU_TEST_INFO_NULL,
};

CU_SuiteInfo xm_test_suites[] = {
    { "plan", NULL, NULL, fixture_setup, fixture_teardown, plan_tests },
    CU_SUITE_INFO_NULL,
};
