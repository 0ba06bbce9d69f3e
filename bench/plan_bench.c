/*
 * plan_bench.c -- how fast the drain planner is, and how it compares
 * with the naive strategy on the same instances.
 *
 * Generates synthetic pools with a fixed seed (1k guests over 100 hosts,
 * 30k over 5k, 100k over 10k): guest memory 512 MiB to 16 GiB, 1 to 8
 * vCPUs, some guests in a second cpupool that few hosts have, some in
 * small anti-affinity groups, a few with PCI passthrough or local disks,
 * hosts 90% subscribed (and a tight 100k case at 101%, where the
 * naive pass leaves guests out and the best-fit passes run), one host
 * the source and 1% cordoned.
 * For each size it prints the planner's best time over a few runs, the
 * guests placed and blocked, and the same for a plain naive planner
 * (largest guest first, on the most free eligible host, found by a scan
 * of all hosts), with the ratio of the two times.  Figures, never pass
 * or fail: see bench/README.md.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "xm_err.h"
#include "xm_plan.h"

#define MIB 1024ull                     /* in KiB */
#define GIB (1024ull * 1024)
#define NAME_LEN 32

static const char *const pool0_only[] = { "Pool-0" };
static const char *const pool0_rt[] = { "Pool-0", "rt" };

/* One generated instance, as the planner sees it and as integers. */
struct instance {
    struct xm_plan_host *hosts;
    struct xm_plan_guest *guests;
    size_t n_hosts, n_guests;
    char (*host_names)[NAME_LEN];
    char (*guest_names)[NAME_LEN];
    char (*group_names)[NAME_LEN];
    const char **host_group;            /* one existing group per host */
    int *host_group_id;                 /* -1: none */
    int *guest_group_id;                /* -1: none */
    size_t n_groups;
};

static uint64_t rng_state;

static uint64_t
rng(uint64_t n)
{
    rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
    return (rng_state >> 33) % n;
}

static void *
xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size);

    if (!p) {
        fprintf(stderr, "plan_bench: out of memory\n");
        exit(2);
    }
    return p;
}

static void
instance_generate(struct instance *in, size_t n_guests, size_t n_hosts,
                  unsigned load_pct)
{
    static const uint64_t sizes_mib[] = {
        512, 1024, 1024, 2048, 2048, 2048, 4096, 4096, 8192, 16384,
    };
    uint64_t demand = 0;

    memset(in, 0, sizeof(*in));
    rng_state = 20261122u + n_guests;
    in->n_hosts = n_hosts;
    in->n_guests = n_guests;
    in->hosts = xcalloc(n_hosts, sizeof(*in->hosts));
    in->guests = xcalloc(n_guests, sizeof(*in->guests));
    in->host_names = xcalloc(n_hosts, sizeof(*in->host_names));
    in->guest_names = xcalloc(n_guests, sizeof(*in->guest_names));
    in->n_groups = n_guests / 50 + 1;   /* ~10% of guests, 5 a group */
    in->group_names = xcalloc(in->n_groups, sizeof(*in->group_names));
    in->host_group = xcalloc(n_hosts, sizeof(*in->host_group));
    in->host_group_id = xcalloc(n_hosts, sizeof(*in->host_group_id));
    in->guest_group_id = xcalloc(n_guests, sizeof(*in->guest_group_id));
    for (size_t k = 0; k < in->n_groups; k++)
        snprintf(in->group_names[k], NAME_LEN, "grp%zu", k);

    for (size_t i = 0; i < n_guests; i++) {
        struct xm_plan_guest *g = &in->guests[i];
        uint64_t r = rng(1000);

        snprintf(in->guest_names[i], NAME_LEN, "vm%07zu", i);
        g->name = in->guest_names[i];
        g->domid = (uint32_t)i + 1;
        g->mem_kib = sizes_mib[rng(10)] * MIB + 8 * MIB + rng(4096);
        g->vcpus = 1u << rng(4);
        g->cpupool = rng(20) == 0 ? "rt" : (rng(2) ? "Pool-0" : NULL);
        in->guest_group_id[i] = -1;
        if (rng(10) == 0) {
            in->guest_group_id[i] = (int)rng(in->n_groups);
            g->group = in->group_names[in->guest_group_id[i]];
        }
        g->pci_passthrough = r < 5;
        g->local_storage = r >= 5 && r < 8;
        g->unmovable = r == 8;
        demand += g->mem_kib;
    }
    /* Mean free memory so that the guests fill load_pct of it. */
    for (size_t h = 0; h < n_hosts; h++) {
        struct xm_plan_host *host = &in->hosts[h];
        uint64_t mean = demand / n_hosts * 100 / load_pct;

        snprintf(in->host_names[h], NAME_LEN, "host%05zu", h);
        host->name = in->host_names[h];
        host->mem_free_kib = mean / 2 + rng(mean);
        host->n_pcpus = 32u << rng(3);
        host->vcpu_ratio_pct = rng(2) ? 400 : 0;
        host->n_vcpus = (unsigned)rng(host->n_pcpus * 2);
        host->cpupools = rng(10) == 0 ? pool0_rt : pool0_only;
        host->n_cpupools = host->cpupools == pool0_rt ? 2 : 1;
        in->host_group_id[h] = -1;
        if (rng(50) == 0) {
            in->host_group_id[h] = (int)rng(in->n_groups);
            in->host_group[h] = in->group_names[in->host_group_id[h]];
            host->groups = &in->host_group[h];
            host->n_groups = 1;
        }
        host->cordoned = rng(100) == 0;
        host->is_source = h == 0;
    }
}

static void
instance_free(struct instance *in)
{
    free(in->hosts);
    free(in->guests);
    free(in->host_names);
    free(in->guest_names);
    free(in->group_names);
    free(in->host_group);
    free(in->host_group_id);
    free(in->guest_group_id);
}

/* ---- the naive baseline: a scan of every host for every guest -------- */

static const struct instance *sort_instance;

static int
cmp_largest(const void *a, const void *b)
{
    size_t i = *(const size_t *)a, j = *(const size_t *)b;
    uint64_t x = sort_instance->guests[i].mem_kib;
    uint64_t y = sort_instance->guests[j].mem_kib;

    if (x != y)
        return x > y ? -1 : 1;
    /* Names are vm<index>: name order is index order. */
    return i < j ? -1 : i > j;
}

static bool
has_rt(const struct xm_plan_host *h)
{
    return h->n_cpupools == 2;
}

static size_t
naive_plan(const struct instance *in)
{
    size_t n = in->n_guests, placed = 0;
    size_t *order = xcalloc(n, sizeof(*order));
    uint64_t *free_kib = xcalloc(in->n_hosts, sizeof(*free_kib));
    uint64_t *vcpus = xcalloc(in->n_hosts, sizeof(*vcpus));
    int *target = xcalloc(n, sizeof(*target));
    /* Groups placed on each host: a short list per host. */
    int **placed_groups = xcalloc(in->n_hosts, sizeof(*placed_groups));
    size_t *n_placed_groups = xcalloc(in->n_hosts, sizeof(size_t));

    for (size_t h = 0; h < in->n_hosts; h++) {
        free_kib[h] = in->hosts[h].mem_free_kib;
        vcpus[h] = in->hosts[h].n_vcpus;
    }
    for (size_t i = 0; i < n; i++)
        order[i] = i;
    sort_instance = in;
    qsort(order, n, sizeof(*order), cmp_largest);
    for (size_t k = 0; k < n; k++) {
        size_t i = order[k];
        const struct xm_plan_guest *g = &in->guests[i];
        int group = in->guest_group_id[i];
        long best = -1;

        target[i] = -1;
        if (g->pci_passthrough || g->local_storage || g->unmovable)
            continue;
        for (size_t h = 0; h < in->n_hosts; h++) {
            const struct xm_plan_host *host = &in->hosts[h];
            bool clash = false;

            if (host->cordoned || host->is_source)
                continue;
            if (g->cpupool && g->cpupool[0] == 'r' && !has_rt(host))
                continue;
            if (best >= 0 && free_kib[h] <= free_kib[best])
                continue;
            if (host->vcpu_ratio_pct && vcpus[h] + g->vcpus >
                (uint64_t)host->n_pcpus * host->vcpu_ratio_pct / 100)
                continue;
            if (group >= 0) {
                clash = in->host_group_id[h] == group;
                for (size_t j = 0; !clash && j < n_placed_groups[h]; j++)
                    clash = placed_groups[h][j] == group;
            }
            if (!clash)
                best = (long)h;
        }
        if (best < 0 || free_kib[best] < g->mem_kib)
            continue;
        free_kib[best] -= g->mem_kib;
        vcpus[best] += g->vcpus;
        target[i] = (int)best;
        placed++;
        if (group >= 0) {
            size_t m = n_placed_groups[best]++;
            int *grown = realloc(placed_groups[best],
                                 (m + 1) * sizeof(**placed_groups));

            if (!grown) {
                fprintf(stderr, "plan_bench: out of memory\n");
                exit(2);
            }
            placed_groups[best] = grown;
            grown[m] = group;
        }
    }
    for (size_t h = 0; h < in->n_hosts; h++)
        free(placed_groups[h]);
    free(placed_groups);
    free(n_placed_groups);
    free(order);
    free(free_kib);
    free(vcpus);
    free(target);
    return placed;
}

/* ---- timing ---------------------------------------------------------- */

static double
now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int
bench_one(size_t n_guests, size_t n_hosts, unsigned load_pct, int runs,
          int naive_runs)
{
    struct instance inst;
    struct xm_plan_input input = { 0 };
    struct xm_plan plan;
    double best = 0, naive_best = 0;
    size_t naive_placed = 0;
    int rc = XM_OK;

    instance_generate(&inst, n_guests, n_hosts, load_pct);
    input.hosts = inst.hosts;
    input.n_hosts = inst.n_hosts;
    input.guests = inst.guests;
    input.n_guests = inst.n_guests;
    xm_plan_init(&plan);
    for (int r = 0; r < runs; r++) {
        double t0 = now_ms(), t;

        xm_plan_dispose(&plan);
        rc = xm_plan_compute(&input, &plan);
        t = now_ms() - t0;
        if (rc) {
            fprintf(stderr, "plan_bench: xm_plan_compute: %s\n",
                    xm_strerror(rc));
            goto out;
        }
        if (r == 0 || t < best)
            best = t;
    }
    for (int r = 0; r < naive_runs; r++) {
        double t0 = now_ms(), t;

        naive_placed = naive_plan(&inst);
        t = now_ms() - t0;
        if (r == 0 || t < naive_best)
            naive_best = t;
    }
    printf("%7zu %6zu %4u%% | %8.1f %7zu %7zu | %8.1f %7zu | %6.1fx %s\n",
           n_guests, n_hosts, load_pct, best, plan.n_placed, plan.n_blocked,
           naive_best, naive_placed, naive_best / best,
           plan.n_placed_naive == naive_placed ? "" : "(naive differs!)");
out:
    xm_plan_dispose(&plan);
    instance_free(&inst);
    return rc;
}

int
main(void)
{
    printf(" guests  hosts  load |  plan ms  placed blocked | naive ms "
           " placed | speed-up\n");
    if (bench_one(1000, 100, 90, 5, 3) ||
        bench_one(30000, 5000, 90, 5, 1) ||
        bench_one(100000, 10000, 90, 3, 1) ||
        bench_one(100000, 10000, 101, 3, 1))
        return 1;
    return 0;
}
