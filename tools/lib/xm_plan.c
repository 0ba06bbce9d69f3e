/*
 * xm_plan.c -- the drain planner (see xm_plan.h for the contract).
 *
 * How it works.  Names are interned into small open-addressing tables
 * (hosts, guests, cpupools, anti-affinity groups).  Every eligible target
 * host sits in one ordered set ("tree", a treap keyed by free memory and
 * host index) per cpupool it has, plus one tree of all eligible hosts for
 * guests without a pool, so the host with the most free memory (naive
 * pass) or the tightest fit (best-fit pass) that has the guest's pool is
 * found in O(log H).  Hosts failing the anti-affinity or vCPU check are
 * skipped by walking the tree; hosts whose vCPU capacity is used up leave
 * their trees, so the walk only meets hosts that an actual group member
 * or a large vCPU count rules out.
 *
 * Passes: (1) naive: guests by decreasing memory, each on its preferred
 * host if that fits, else the eligible host with the most free memory;
 * (2) when (1) left movable guests out, best-fit decreasing twice (all
 * guests by size; then the naive pass's guests first, the others after).
 * A best-fit result is taken only when it places every guest the naive
 * pass placed and strictly more in all, so the plan is never worse than
 * naive by construction.  Blocked guests are then explained against the
 * final state: the first of cpupool, memory, vCPUs, anti-affinity that
 * no eligible host satisfies.
 */
#include <assert.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xm_err.h"
#include "xm_plan.h"

#define NONE UINT32_MAX

static const char *const reason_names[] = {
    "pci-passthrough", "local-storage", "unmovable", "no-memory",
    "cpupool", "anti-affinity", "no-target", "vcpu-capacity",
};

const char *
xm_plan_reason_name(unsigned bit)
{
    for (unsigned i = 0; i < sizeof(reason_names) / sizeof(*reason_names);
         i++) {
        if (bit == 1u << i)
            return reason_names[i];
    }
    return NULL;
}

/* ---- hashing and the two kinds of table ------------------------------ */

static uint64_t
hash_str(const char *s)
{
    uint64_t h = 0xcbf29ce484222325ull;      /* FNV-1a */

    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 0x100000001b3ull;
    }
    return h;
}

static uint64_t
mix64(uint64_t x)
{
    x ^= x >> 33;                             /* murmur3 finaliser */
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ull;
    x ^= x >> 33;
    return x;
}

static size_t
table_cap(size_t expect)
{
    size_t cap = 16;

    while (cap < expect * 2 + 1)
        cap *= 2;
    return cap;
}

/* Interned strings (borrowed), ids given in order of first insertion. */
struct strtab {
    const char **keys;
    uint32_t *ids;
    size_t mask;
    uint32_t n;
};

static int
strtab_init(struct strtab *t, size_t expect)
{
    size_t cap = table_cap(expect);

    t->n = 0;
    t->mask = cap - 1;
    t->keys = calloc(cap, sizeof(*t->keys));
    t->ids = calloc(cap, sizeof(*t->ids));
    return t->keys && t->ids ? XM_OK : XM_ERR_NOMEM;
}

static void
strtab_dispose(struct strtab *t)
{
    free(t->keys);
    free(t->ids);
    t->keys = NULL;
    t->ids = NULL;
}

static size_t
strtab_slot(const struct strtab *t, const char *s)
{
    size_t i = hash_str(s) & t->mask;

    while (t->keys[i] && strcmp(t->keys[i], s) != 0)
        i = (i + 1) & t->mask;
    return i;
}

static uint32_t
strtab_find(const struct strtab *t, const char *s)
{
    size_t i = strtab_slot(t, s);

    return t->keys[i] ? t->ids[i] : NONE;
}

/* The id of s, added if new; *added_r says which.  Never fills up: the
 * capacity was sized for every string the caller can add. */
static uint32_t
strtab_add(struct strtab *t, const char *s, bool *added_r)
{
    size_t i = strtab_slot(t, s);

    *added_r = !t->keys[i];
    if (*added_r) {
        assert(t->n < t->mask / 2 + 1);
        t->keys[i] = s;
        t->ids[i] = t->n++;
    }
    return t->ids[i];
}

/* How many guests of a group run on a host: (group, host) -> count. */
struct pairmap {
    uint64_t *keys;              /* 0 = empty */
    uint32_t *counts;
    size_t mask;
};

static uint64_t
pair_key(uint32_t group, uint32_t host)
{
    return ((uint64_t)group + 1) << 32 | host;
}

static int
pairmap_init(struct pairmap *p, size_t expect)
{
    size_t cap = table_cap(expect);

    p->mask = cap - 1;
    p->keys = calloc(cap, sizeof(*p->keys));
    p->counts = calloc(cap, sizeof(*p->counts));
    return p->keys && p->counts ? XM_OK : XM_ERR_NOMEM;
}

static int
pairmap_copy(struct pairmap *dst, const struct pairmap *src)
{
    size_t cap = src->mask + 1;

    dst->mask = src->mask;
    dst->keys = malloc(cap * sizeof(*dst->keys));
    dst->counts = malloc(cap * sizeof(*dst->counts));
    if (!dst->keys || !dst->counts)
        return XM_ERR_NOMEM;
    memcpy(dst->keys, src->keys, cap * sizeof(*dst->keys));
    memcpy(dst->counts, src->counts, cap * sizeof(*dst->counts));
    return XM_OK;
}

static void
pairmap_dispose(struct pairmap *p)
{
    free(p->keys);
    free(p->counts);
    p->keys = NULL;
    p->counts = NULL;
}

static size_t
pairmap_slot(const struct pairmap *p, uint64_t key)
{
    size_t i = mix64(key) & p->mask;

    while (p->keys[i] && p->keys[i] != key)
        i = (i + 1) & p->mask;
    return i;
}

static uint32_t
pairmap_get(const struct pairmap *p, uint32_t group, uint32_t host)
{
    size_t i = pairmap_slot(p, pair_key(group, host));

    return p->keys[i] ? p->counts[i] : 0;
}

static void
pairmap_inc(struct pairmap *p, uint32_t group, uint32_t host)
{
    uint64_t key = pair_key(group, host);
    size_t i = pairmap_slot(p, key);

    p->keys[i] = key;
    p->counts[i]++;
}

/* ---- the problem, validated and indexed ------------------------------ */

struct host_info {
    uint64_t vcpu_cap;           /* UINT64_MAX: unlimited */
    uint32_t first_member;       /* its tree memberships: [first, end) */
    uint32_t end_member;
    bool eligible;
};

struct guest_info {
    uint32_t tree;               /* 0: all hosts; NONE: pool unknown */
    uint32_t group;              /* NONE: no group */
    uint32_t preferred;          /* host index or NONE */
    unsigned hard;               /* XM_PLAN_R_* of its own flags */
};

struct problem {
    const struct xm_plan_input *in;
    struct host_info *hosts;
    struct guest_info *guests;
    struct strtab pools;
    struct strtab groups;
    uint32_t n_trees;            /* 1 + number of pools */
    uint32_t *tree_size;         /* eligible hosts per tree */
    uint32_t n_members;
    uint32_t *member_host;       /* membership -> host */
    uint32_t *member_tree;       /* membership -> tree */
    uint32_t n_eligible;
    struct pairmap base_groups;  /* the groups the hosts already run */
    uint32_t *order;             /* movable guests, largest first */
    uint32_t n_order;
};

static void
problem_dispose(struct problem *p)
{
    free(p->hosts);
    free(p->guests);
    strtab_dispose(&p->pools);
    strtab_dispose(&p->groups);
    free(p->tree_size);
    free(p->member_host);
    free(p->member_tree);
    pairmap_dispose(&p->base_groups);
    free(p->order);
    memset(p, 0, sizeof(*p));
}

static bool
name_ok(const char *s)
{
    return s && *s;
}

static bool
names_ok(const char *const *v, size_t n)
{
    if (n && !v)
        return false;
    for (size_t i = 0; i < n; i++) {
        if (!name_ok(v[i]))
            return false;
    }
    return true;
}

static int
check_hosts(const struct xm_plan_input *in, struct strtab *names)
{
    bool added;

    for (size_t h = 0; h < in->n_hosts; h++) {
        const struct xm_plan_host *host = &in->hosts[h];

        if (!name_ok(host->name))
            return XM_ERR_INVAL;
        strtab_add(names, host->name, &added);
        if (!added)
            return XM_ERR_INVAL;
        if (host->vcpu_ratio_pct && !host->n_pcpus)
            return XM_ERR_INVAL;
        if (host->n_vcpus > XM_PLAN_MAX_HOST_VCPUS)
            return XM_ERR_INVAL;
        if (!names_ok(host->cpupools, host->n_cpupools) ||
            !names_ok(host->groups, host->n_groups))
            return XM_ERR_INVAL;
    }
    return XM_OK;
}

static int
check_guests(const struct xm_plan_input *in, struct strtab *names)
{
    bool added;

    for (size_t i = 0; i < in->n_guests; i++) {
        const struct xm_plan_guest *g = &in->guests[i];

        if (!name_ok(g->name) || !g->mem_kib || !g->vcpus ||
            g->vcpus > XM_PLAN_MAX_VCPUS)
            return XM_ERR_INVAL;
        if ((g->cpupool && !*g->cpupool) || (g->group && !*g->group) ||
            (g->preferred && !*g->preferred))
            return XM_ERR_INVAL;
        strtab_add(names, g->name, &added);
        if (!added)
            return XM_ERR_INVAL;
    }
    return XM_OK;
}

/* Which hosts may receive: not cordoned, not a source, allowed. */
static int
mark_eligible(struct problem *p, const struct strtab *host_names)
{
    const struct xm_plan_input *in = p->in;

    if (!names_ok(in->allowed, in->n_allowed))
        return XM_ERR_INVAL;
    for (size_t i = 0; i < in->n_allowed; i++) {
        uint32_t h = strtab_find(host_names, in->allowed[i]);

        if (h == NONE)
            return XM_ERR_NOTFOUND;
        p->hosts[h].eligible = true;
    }
    for (size_t h = 0; h < in->n_hosts; h++) {
        const struct xm_plan_host *host = &in->hosts[h];
        struct host_info *hi = &p->hosts[h];

        if (!in->n_allowed)
            hi->eligible = true;
        if (host->cordoned || host->is_source)
            hi->eligible = false;
        p->n_eligible += hi->eligible;
        hi->vcpu_cap = host->vcpu_ratio_pct ?
            (uint64_t)host->n_pcpus * host->vcpu_ratio_pct / 100 :
            UINT64_MAX;
    }
    return XM_OK;
}

/* Intern the pools and lay out each eligible host's tree memberships. */
static int
index_pools(struct problem *p)
{
    const struct xm_plan_input *in = p->in;
    size_t n_pool_names = 0;
    uint32_t *last_host = NULL;
    bool added;
    int rc;

    for (size_t h = 0; h < in->n_hosts; h++)
        n_pool_names += in->hosts[h].n_cpupools;
    rc = strtab_init(&p->pools, n_pool_names);
    if (rc)
        return rc;
    for (size_t h = 0; h < in->n_hosts; h++) {
        for (size_t k = 0; k < in->hosts[h].n_cpupools; k++)
            strtab_add(&p->pools, in->hosts[h].cpupools[k], &added);
    }
    p->n_trees = p->pools.n + 1;
    p->tree_size = calloc(p->n_trees, sizeof(*p->tree_size));
    last_host = malloc(p->n_trees * sizeof(*last_host));
    p->member_host = malloc((n_pool_names + in->n_hosts + 1) *
                            sizeof(*p->member_host));
    p->member_tree = malloc((n_pool_names + in->n_hosts + 1) *
                            sizeof(*p->member_tree));
    if (!p->tree_size || !last_host || !p->member_host || !p->member_tree) {
        rc = XM_ERR_NOMEM;
        goto out;
    }
    for (uint32_t t = 0; t < p->n_trees; t++)
        last_host[t] = NONE;
    for (uint32_t h = 0; h < in->n_hosts; h++) {
        struct host_info *hi = &p->hosts[h];

        hi->first_member = hi->end_member = p->n_members;
        if (!hi->eligible)
            continue;
        for (size_t k = 0; k <= in->hosts[h].n_cpupools; k++) {
            uint32_t t = k == 0 ? 0 :
                strtab_find(&p->pools, in->hosts[h].cpupools[k - 1]) + 1;

            if (last_host[t] == h)
                continue;               /* a pool listed twice */
            last_host[t] = h;
            p->member_host[p->n_members] = h;
            p->member_tree[p->n_members] = t;
            p->n_members++;
            p->tree_size[t]++;
        }
        hi->end_member = p->n_members;
    }
    rc = XM_OK;
out:
    free(last_host);
    return rc;
}

static int
index_groups(struct problem *p)
{
    const struct xm_plan_input *in = p->in;
    size_t n_pairs = 0;
    bool added;
    int rc;

    for (size_t h = 0; h < in->n_hosts; h++)
        n_pairs += in->hosts[h].n_groups;
    rc = strtab_init(&p->groups, n_pairs + in->n_guests);
    if (rc)
        return rc;
    rc = pairmap_init(&p->base_groups, n_pairs + in->n_guests);
    if (rc)
        return rc;
    for (uint32_t h = 0; h < in->n_hosts; h++) {
        for (size_t k = 0; k < in->hosts[h].n_groups; k++) {
            uint32_t g = strtab_add(&p->groups, in->hosts[h].groups[k],
                                    &added);

            if (!pairmap_get(&p->base_groups, g, h))
                pairmap_inc(&p->base_groups, g, h);
        }
    }
    for (size_t i = 0; i < in->n_guests; i++) {
        const char *group = in->guests[i].group;

        p->guests[i].group = group ?
            strtab_add(&p->groups, group, &added) : NONE;
    }
    return XM_OK;
}

/* What the guests are sorted by: largest first, then name, then index. */
struct size_key {
    uint64_t mem_kib;
    const char *name;
    uint32_t guest;
};

static int
cmp_by_size(const void *a, const void *b)
{
    const struct size_key *x = a, *y = b;
    int r;

    if (x->mem_kib != y->mem_kib)
        return x->mem_kib > y->mem_kib ? -1 : 1;
    r = strcmp(x->name, y->name);
    if (r)
        return r;
    return x->guest < y->guest ? -1 : x->guest > y->guest;
}

static int
sort_by_size(struct problem *p)
{
    struct size_key *keys = malloc((p->n_order + 1) * sizeof(*keys));

    if (!keys)
        return XM_ERR_NOMEM;
    for (uint32_t k = 0; k < p->n_order; k++) {
        const struct xm_plan_guest *g = &p->in->guests[p->order[k]];

        keys[k] = (struct size_key){ g->mem_kib, g->name, p->order[k] };
    }
    qsort(keys, p->n_order, sizeof(*keys), cmp_by_size);
    for (uint32_t k = 0; k < p->n_order; k++)
        p->order[k] = keys[k].guest;
    free(keys);
    return XM_OK;
}

static int
problem_init(struct problem *p, const struct xm_plan_input *in)
{
    struct strtab host_names = { 0 }, guest_names = { 0 };
    int rc;

    memset(p, 0, sizeof(*p));
    p->in = in;
    if (in->n_hosts > XM_PLAN_MAX_HOSTS || in->n_guests > XM_PLAN_MAX_GUESTS)
        return XM_ERR_TOOBIG;
    if ((in->n_hosts && !in->hosts) || (in->n_guests && !in->guests))
        return XM_ERR_INVAL;
    p->hosts = calloc(in->n_hosts + 1, sizeof(*p->hosts));
    p->guests = calloc(in->n_guests + 1, sizeof(*p->guests));
    p->order = malloc((in->n_guests + 1) * sizeof(*p->order));
    if (!p->hosts || !p->guests || !p->order)
        return XM_ERR_NOMEM;
    rc = strtab_init(&host_names, in->n_hosts);
    if (rc)
        goto out;
    rc = strtab_init(&guest_names, in->n_guests);
    if (rc)
        goto out;
    rc = check_hosts(in, &host_names);
    if (rc)
        goto out;
    rc = check_guests(in, &guest_names);
    if (rc)
        goto out;
    rc = mark_eligible(p, &host_names);
    if (rc)
        goto out;
    rc = index_pools(p);
    if (rc)
        goto out;
    rc = index_groups(p);
    if (rc)
        goto out;

    for (uint32_t i = 0; i < in->n_guests; i++) {
        const struct xm_plan_guest *g = &in->guests[i];
        struct guest_info *gi = &p->guests[i];

        gi->hard = (g->pci_passthrough ? XM_PLAN_R_PCI_PASSTHROUGH : 0) |
            (g->local_storage ? XM_PLAN_R_LOCAL_STORAGE : 0) |
            (g->unmovable ? XM_PLAN_R_UNMOVABLE : 0);
        gi->tree = 0;
        if (g->cpupool) {
            uint32_t pool = strtab_find(&p->pools, g->cpupool);

            gi->tree = pool == NONE ? NONE : pool + 1;
        }
        gi->preferred = g->preferred ?
            strtab_find(&host_names, g->preferred) : NONE;
        if (!gi->hard)
            p->order[p->n_order++] = i;
    }
    rc = sort_by_size(p);
out:
    strtab_dispose(&host_names);
    strtab_dispose(&guest_names);
    return rc;
}

/* ---- one placement pass ---------------------------------------------- */

/*
 * The trees order hosts by (free memory, tie key), ascending.  In the
 * naive pass the tie key is the reversed host index, so the last node is
 * the most free host with the lowest index and walking backwards visits
 * equal hosts by index; in the best-fit pass the tie key is the index,
 * and walking forwards from the first fitting node does the same.
 */
enum pass_mode { PASS_MOST_FREE, PASS_BEST_FIT };

struct pass {
    const struct problem *p;
    enum pass_mode mode;
    uint64_t *free;              /* per host */
    uint64_t *vcpus;             /* per host */
    uint32_t *left, *right;      /* treap children per membership */
    uint32_t *root;              /* per tree */
    uint64_t *full_max_free;     /* per tree: most free among the hosts
                                  * that left it with no vCPU room */
    struct pairmap groups;
    int32_t *target;             /* per guest */
    size_t n_placed;
};

static void
pass_dispose(struct pass *s)
{
    free(s->free);
    free(s->vcpus);
    free(s->left);
    free(s->right);
    free(s->root);
    free(s->full_max_free);
    pairmap_dispose(&s->groups);
    free(s->target);
    memset(s, 0, sizeof(*s));
}

static uint32_t
node_prio(uint32_t m)
{
    return (uint32_t)mix64((uint64_t)m + 0x9e3779b97f4a7c15ull);
}

static uint32_t
tie_key(const struct pass *s, uint32_t host)
{
    return s->mode == PASS_MOST_FREE ? UINT32_MAX - host : host;
}

/* Compare membership m's key with (f, tk): <0, 0, >0. */
static int
node_cmp(const struct pass *s, uint32_t m, uint64_t f, uint32_t tk)
{
    uint32_t h = s->p->member_host[m];
    uint32_t mtk = tie_key(s, h);

    if (s->free[h] != f)
        return s->free[h] < f ? -1 : 1;
    return mtk < tk ? -1 : mtk > tk;
}

static uint32_t
treap_merge(struct pass *s, uint32_t a, uint32_t b)
{
    if (a == NONE)
        return b;
    if (b == NONE)
        return a;
    if (node_prio(a) > node_prio(b)) {
        s->right[a] = treap_merge(s, s->right[a], b);
        return a;
    }
    s->left[b] = treap_merge(s, a, s->left[b]);
    return b;
}

/* Split t into keys < (f, tk) and keys >= (f, tk). */
static void
treap_split(struct pass *s, uint32_t t, uint64_t f, uint32_t tk,
            uint32_t *lo_r, uint32_t *hi_r)
{
    if (t == NONE) {
        *lo_r = *hi_r = NONE;
    } else if (node_cmp(s, t, f, tk) < 0) {
        treap_split(s, s->right[t], f, tk, &s->right[t], hi_r);
        *lo_r = t;
    } else {
        treap_split(s, s->left[t], f, tk, lo_r, &s->left[t]);
        *hi_r = t;
    }
}

static void
treap_insert(struct pass *s, uint32_t tree, uint32_t m)
{
    uint32_t h = s->p->member_host[m], lo, hi;

    s->left[m] = s->right[m] = NONE;
    treap_split(s, s->root[tree], s->free[h], tie_key(s, h), &lo, &hi);
    s->root[tree] = treap_merge(s, treap_merge(s, lo, m), hi);
}

static uint32_t
treap_erase(struct pass *s, uint32_t t, uint32_t m)
{
    uint32_t h = s->p->member_host[m];
    int c;

    assert(t != NONE);
    if (t == m)
        return treap_merge(s, s->left[t], s->right[t]);
    c = node_cmp(s, t, s->free[h], tie_key(s, h));
    if (c > 0)
        s->left[t] = treap_erase(s, s->left[t], m);
    else
        s->right[t] = treap_erase(s, s->right[t], m);
    return t;
}

static uint32_t
treap_last(const struct pass *s, uint32_t t)
{
    if (t == NONE)
        return NONE;
    while (s->right[t] != NONE)
        t = s->right[t];
    return t;
}

/* The last node whose key is < (f, tk), or NONE. */
static uint32_t
treap_before(const struct pass *s, uint32_t t, uint64_t f, uint32_t tk)
{
    uint32_t best = NONE;

    while (t != NONE) {
        if (node_cmp(s, t, f, tk) < 0) {
            best = t;
            t = s->right[t];
        } else {
            t = s->left[t];
        }
    }
    return best;
}

/* The first node whose key is >= (f, tk), or > it when strict. */
static uint32_t
treap_from(const struct pass *s, uint32_t t, uint64_t f, uint32_t tk,
           bool strict)
{
    uint32_t best = NONE;

    while (t != NONE) {
        int c = node_cmp(s, t, f, tk);

        if (c > 0 || (c == 0 && !strict)) {
            best = t;
            t = s->left[t];
        } else {
            t = s->right[t];
        }
    }
    return best;
}

static bool
vcpus_fit(const struct pass *s, uint32_t h, unsigned vcpus)
{
    return s->vcpus[h] + vcpus <= s->p->hosts[h].vcpu_cap;
}

static bool
host_takes(const struct pass *s, uint32_t h, const struct xm_plan_guest *g,
           const struct guest_info *gi)
{
    return s->free[h] >= g->mem_kib && vcpus_fit(s, h, g->vcpus) &&
        (gi->group == NONE || !pairmap_get(&s->groups, gi->group, h));
}

static bool
host_in_tree(const struct problem *p, uint32_t h, uint32_t tree)
{
    const struct host_info *hi = &p->hosts[h];

    for (uint32_t m = hi->first_member; m < hi->end_member; m++) {
        if (p->member_tree[m] == tree)
            return true;
    }
    return false;
}

static int
pass_init(struct pass *s, const struct problem *p, enum pass_mode mode)
{
    const struct xm_plan_input *in = p->in;
    int rc;

    memset(s, 0, sizeof(*s));
    s->p = p;
    s->mode = mode;
    s->free = malloc((in->n_hosts + 1) * sizeof(*s->free));
    s->vcpus = malloc((in->n_hosts + 1) * sizeof(*s->vcpus));
    s->left = malloc((p->n_members + 1) * sizeof(*s->left));
    s->right = malloc((p->n_members + 1) * sizeof(*s->right));
    s->root = malloc(p->n_trees * sizeof(*s->root));
    s->full_max_free = calloc(p->n_trees, sizeof(*s->full_max_free));
    s->target = malloc((in->n_guests + 1) * sizeof(*s->target));
    if (!s->free || !s->vcpus || !s->left || !s->right || !s->root ||
        !s->full_max_free || !s->target)
        return XM_ERR_NOMEM;
    rc = pairmap_copy(&s->groups, &p->base_groups);
    if (rc)
        return rc;
    for (size_t i = 0; i < in->n_guests; i++)
        s->target[i] = -1;
    for (uint32_t t = 0; t < p->n_trees; t++)
        s->root[t] = NONE;
    for (uint32_t h = 0; h < in->n_hosts; h++) {
        const struct host_info *hi = &p->hosts[h];

        s->free[h] = in->hosts[h].mem_free_kib;
        s->vcpus[h] = in->hosts[h].n_vcpus;
        for (uint32_t m = hi->first_member; m < hi->end_member; m++) {
            uint32_t t = p->member_tree[m];

            if (vcpus_fit(s, h, 1))
                treap_insert(s, t, m);
            else if (s->free[h] > s->full_max_free[t])
                s->full_max_free[t] = s->free[h];
        }
    }
    return XM_OK;
}

static void
pass_place(struct pass *s, uint32_t i, uint32_t h)
{
    const struct problem *p = s->p;
    const struct xm_plan_guest *g = &p->in->guests[i];
    const struct host_info *hi = &p->hosts[h];
    bool stays;

    for (uint32_t m = hi->first_member; m < hi->end_member; m++) {
        uint32_t t = p->member_tree[m];

        s->root[t] = treap_erase(s, s->root[t], m);
    }
    s->free[h] -= g->mem_kib;
    s->vcpus[h] += g->vcpus;
    stays = vcpus_fit(s, h, 1);
    for (uint32_t m = hi->first_member; m < hi->end_member; m++) {
        uint32_t t = p->member_tree[m];

        if (stays)
            treap_insert(s, t, m);
        else if (s->free[h] > s->full_max_free[t])
            s->full_max_free[t] = s->free[h];
    }
    if (p->guests[i].group != NONE)
        pairmap_inc(&s->groups, p->guests[i].group, h);
    s->target[i] = (int32_t)h;
    s->n_placed++;
}

/* Where guest i goes in this pass, or NONE. */
static uint32_t
pass_choose(const struct pass *s, uint32_t i)
{
    const struct problem *p = s->p;
    const struct xm_plan_guest *g = &p->in->guests[i];
    const struct guest_info *gi = &p->guests[i];
    uint32_t root, m;

    if (gi->tree == NONE)
        return NONE;
    if (gi->preferred != NONE && host_in_tree(p, gi->preferred, gi->tree) &&
        host_takes(s, gi->preferred, g, gi))
        return gi->preferred;
    root = s->root[gi->tree];
    if (s->mode == PASS_MOST_FREE) {
        for (m = treap_last(s, root); m != NONE;) {
            uint32_t h = p->member_host[m];

            if (s->free[h] < g->mem_kib)
                break;
            if (host_takes(s, h, g, gi))
                return h;
            m = treap_before(s, root, s->free[h], tie_key(s, h));
        }
    } else {
        for (m = treap_from(s, root, g->mem_kib, 0, false); m != NONE;) {
            uint32_t h = p->member_host[m];

            if (host_takes(s, h, g, gi))
                return h;
            m = treap_from(s, root, s->free[h], tie_key(s, h), true);
        }
    }
    return NONE;
}

/* Try to place the guests of order[0..n) in that order. */
static void
pass_run(struct pass *s, const uint32_t *order, uint32_t n)
{
    for (uint32_t k = 0; k < n; k++) {
        uint32_t h = pass_choose(s, order[k]);

        if (h != NONE)
            pass_place(s, order[k], h);
    }
}

/* Does pass b place every guest that pass a places? */
static bool
pass_covers(const struct pass *b, const struct pass *a)
{
    for (uint32_t k = 0; k < a->p->n_order; k++) {
        uint32_t i = a->p->order[k];

        if (a->target[i] >= 0 && b->target[i] < 0)
            return false;
    }
    return true;
}

/* ---- explaining the guests left behind ------------------------------- */

static unsigned
soft_reason(const struct pass *s, uint32_t i, uint64_t *most_free_r)
{
    const struct problem *p = s->p;
    const struct xm_plan_guest *g = &p->in->guests[i];
    const struct guest_info *gi = &p->guests[i];
    uint64_t most_free;
    uint32_t root, m;

    *most_free_r = 0;
    if (!p->n_eligible)
        return XM_PLAN_R_NO_TARGET;
    if (gi->tree == NONE || !p->tree_size[gi->tree])
        return XM_PLAN_R_CPUPOOL;
    root = s->root[gi->tree];
    m = treap_last(s, root);
    most_free = s->full_max_free[gi->tree];
    if (m != NONE && s->free[p->member_host[m]] > most_free)
        most_free = s->free[p->member_host[m]];
    *most_free_r = most_free;
    if (most_free < g->mem_kib)
        return XM_PLAN_R_NO_MEMORY;
    /* Hosts with room: do any have the vCPUs?  (The pass's own order
     * does not matter here: walk from the fullest fitting node up.) */
    for (m = treap_from(s, root, g->mem_kib, 0, false); m != NONE;) {
        uint32_t h = p->member_host[m];

        if (vcpus_fit(s, h, g->vcpus))
            return XM_PLAN_R_ANTI_AFFINITY;
        m = treap_from(s, root, s->free[h], tie_key(s, h), true);
    }
    return XM_PLAN_R_VCPU_CAPACITY;
}

static char *
blocked_detail(const struct pass *s, uint32_t i, unsigned reasons,
               uint64_t most_free)
{
    const struct xm_plan_input *in = s->p->in;
    const struct xm_plan_guest *g = &in->guests[i];
    char buf[256];
    size_t len = 0;

    buf[0] = '\0';
    if (reasons & XM_PLAN_R_PCI_PASSTHROUGH)
        len += (size_t)snprintf(buf + len, sizeof(buf) - len, "%s",
                                "has a PCI passthrough device");
    if (reasons & XM_PLAN_R_LOCAL_STORAGE)
        len += (size_t)snprintf(buf + len, sizeof(buf) - len, "%s%s",
                                len ? "; " : "",
                                "uses storage local to this host");
    if (reasons & XM_PLAN_R_UNMOVABLE)
        len += (size_t)snprintf(buf + len, sizeof(buf) - len, "%s%s",
                                len ? "; " : "", "marked unmovable");
    if (reasons & XM_PLAN_R_NO_TARGET)
        snprintf(buf, sizeof(buf), "no eligible target host (all are "
                 "cordoned, being drained or not in the allowed list)");
    if (reasons & XM_PLAN_R_CPUPOOL)
        snprintf(buf, sizeof(buf), "no eligible host has cpupool '%.64s'",
                 g->cpupool ? g->cpupool : "");
    if (reasons & XM_PLAN_R_NO_MEMORY)
        snprintf(buf, sizeof(buf), "needs %" PRIu64 " KiB; the most free "
                 "on an eligible host is %" PRIu64 " KiB", g->mem_kib,
                 most_free);
    if (reasons & XM_PLAN_R_VCPU_CAPACITY)
        snprintf(buf, sizeof(buf), "no eligible host with %" PRIu64
                 " KiB free can run %u more vCPUs", g->mem_kib, g->vcpus);
    if (reasons & XM_PLAN_R_ANTI_AFFINITY)
        snprintf(buf, sizeof(buf), "every eligible host with room "
                 "already runs a guest of group '%.64s'",
                 g->group ? g->group : "");
    return strdup(buf);
}

/* ---- the plan -------------------------------------------------------- */

void
xm_plan_init(struct xm_plan *plan)
{
    memset(plan, 0, sizeof(*plan));
}

void
xm_plan_dispose(struct xm_plan *plan)
{
    if (!plan)
        return;
    for (size_t i = 0; i < plan->n_results; i++)
        free(plan->results[i].detail);
    free(plan->results);
    free(plan->host_free_kib);
    xm_plan_init(plan);
}

static int
fill_plan(const struct pass *s, size_t n_naive, struct xm_plan *plan)
{
    const struct problem *p = s->p;
    const struct xm_plan_input *in = p->in;

    plan->results = calloc(in->n_guests + 1, sizeof(*plan->results));
    plan->host_free_kib = malloc((in->n_hosts + 1) *
                                 sizeof(*plan->host_free_kib));
    if (!plan->results || !plan->host_free_kib)
        return XM_ERR_NOMEM;
    plan->n_results = in->n_guests;
    plan->n_hosts = in->n_hosts;
    plan->n_placed_naive = n_naive;
    memcpy(plan->host_free_kib, s->free,
           in->n_hosts * sizeof(*plan->host_free_kib));
    for (uint32_t i = 0; i < in->n_guests; i++) {
        struct xm_plan_result *res = &plan->results[i];
        uint64_t most_free = 0;

        res->target = s->target[i];
        if (res->target >= 0) {
            plan->n_placed++;
            continue;
        }
        res->reasons = p->guests[i].hard;
        if (!res->reasons)
            res->reasons = soft_reason(s, i, &most_free);
        res->detail = blocked_detail(s, i, res->reasons, most_free);
        if (!res->detail)
            return XM_ERR_NOMEM;
        plan->n_blocked++;
    }
    return XM_OK;
}

/* The naive pass's guests first, then the others; each part by size. */
static int
naive_first_order(const struct pass *naive, uint32_t **order_r)
{
    const struct problem *p = naive->p;
    uint32_t *order = malloc((p->n_order + 1) * sizeof(*order));
    uint32_t n = 0;

    if (!order)
        return XM_ERR_NOMEM;
    for (uint32_t k = 0; k < p->n_order; k++) {
        if (naive->target[p->order[k]] >= 0)
            order[n++] = p->order[k];
    }
    for (uint32_t k = 0; k < p->n_order; k++) {
        if (naive->target[p->order[k]] < 0)
            order[n++] = p->order[k];
    }
    *order_r = order;
    return XM_OK;
}

int
xm_plan_compute(const struct xm_plan_input *in, struct xm_plan *plan_r)
{
    struct problem p;
    struct pass naive = { 0 }, best_fit = { 0 }, *best = &naive;
    struct pass second = { 0 };
    uint32_t *order = NULL;
    int rc;

    assert(in && plan_r);
    xm_plan_init(plan_r);
    rc = problem_init(&p, in);
    if (rc)
        goto out;
    rc = pass_init(&naive, &p, PASS_MOST_FREE);
    if (rc)
        goto out;
    pass_run(&naive, p.order, p.n_order);

    if (naive.n_placed < p.n_order && p.n_eligible) {
        rc = pass_init(&best_fit, &p, PASS_BEST_FIT);
        if (rc)
            goto out;
        pass_run(&best_fit, p.order, p.n_order);
        if (best_fit.n_placed > best->n_placed &&
            pass_covers(&best_fit, &naive))
            best = &best_fit;

        rc = naive_first_order(&naive, &order);
        if (rc)
            goto out;
        rc = pass_init(&second, &p, PASS_BEST_FIT);
        if (rc)
            goto out;
        pass_run(&second, order, p.n_order);
        if (second.n_placed > best->n_placed &&
            pass_covers(&second, &naive))
            best = &second;
    }
    rc = fill_plan(best, naive.n_placed, plan_r);
out:
    if (rc)
        xm_plan_dispose(plan_r);
    free(order);
    pass_dispose(&naive);
    pass_dispose(&best_fit);
    pass_dispose(&second);
    problem_dispose(&p);
    return rc;
}
