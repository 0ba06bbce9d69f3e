/*
 * hv_test.c -- the hypervisor interface: the fake hypervisor's rules
 * (memory accounting, livepatch states, fault injection), a live
 * migration between two fakes over a socketpair driven by a small poll
 * loop, the build-id hex form, the real backend's error mappings, and
 * the fake clock.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "clock_fake.h"
#include "harness.h"
#include "hv_fake.h"
#include "xm_clock.h"
#include "xm_err.h"
#include "xm_hv.h"
#include "xm_libxl_compat.h"

#define GIB (1024u * 1024u)     /* in KiB */

/* ---- fixture ---------------------------------------------------- */

static struct hv_fake *src_fake, *dst_fake;
static struct xm_hv src, dst;
static int sv[2] = { -1, -1 };

struct done_rec {
    int calls;
    int rc;
};

static void
record_done(void *arg, int rc)
{
    struct done_rec *d = arg;

    d->calls++;
    d->rc = rc;
}

/* Per-test fixture: two empty hosts and a socketpair between them.  A
 * failure here is the machine's, not the code's: stop loudly. */
static void
setup(void)
{
    src_fake = hv_fake_new();
    dst_fake = hv_fake_new();
    if (!src_fake || !dst_fake
        || socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
        abort();
    hv_fake_connect(src_fake, &src);
    hv_fake_connect(dst_fake, &dst);
}

static void
teardown(void)
{
    xm_hv_close(&src);
    xm_hv_close(&dst);
    hv_fake_free(src_fake);
    hv_fake_free(dst_fake);
    src_fake = dst_fake = NULL;
    for (int i = 0; i < 2; i++) {
        if (sv[i] >= 0)
            close(sv[i]);
        sv[i] = -1;
    }
}

static struct xm_domain
domain(const char *name, uint64_t mem_kib)
{
    struct xm_domain d;

    memset(&d, 0, sizeof(d));
    strcpy(d.name, name);
    d.mem_kib = mem_kib;
    d.cur_mem_kib = mem_kib - 1024;
    d.vcpus = 2;
    for (int i = 0; i < 16; i++)
        d.uuid[i] = (uint8_t)(0xa0 + i);
    return d;
}

static void
set_host(struct hv_fake *f, uint64_t total_kib, uint64_t free_kib)
{
    struct xm_hostinfo hi;

    memset(&hi, 0, sizeof(hi));
    hi.total_kib = total_kib;
    hi.free_kib = free_kib;
    hi.nr_cpus = 4;
    strcpy(hi.xen_version, "4.17.5");
    hv_fake_set_hostinfo(f, &hi);
}

/*
 * The agent's loop in miniature: both backends' fds in one poll().
 * Runs until stop() says so or max_rounds passed; returns the rounds.
 */
static int
run_loop(struct xm_hv **hvs, int n_hv, int (*stop)(void *), void *arg,
         int max_rounds)
{
    struct pollfd fds[16];
    int round;

    for (round = 0; round < max_rounds && !stop(arg); round++) {
        int start[4], end[4];
        int total = 0;
        int timeout = 1000;

        for (int i = 0; i < n_hv; i++) {
            int cap = (int)(sizeof(fds) / sizeof(fds[0]));
            start[i] = total;
            CU_ASSERT_EQUAL_FATAL(hvs[i]->ops->beforepoll(hvs[i]->ctx, fds,
                                      total, &cap, &timeout), XM_OK);
            end[i] = total = cap;
        }
        CU_ASSERT_FATAL(poll(fds, (nfds_t)total, timeout) >= 0);
        for (int i = 0; i < n_hv; i++)
            hvs[i]->ops->afterpoll(hvs[i]->ctx, fds, start[i], end[i]);
    }
    return round;
}

struct two_done {
    struct done_rec *a, *b;
};

static int
both_done(void *arg)
{
    struct two_done *t = arg;

    return t->a->calls > 0 && (!t->b || t->b->calls > 0);
}

/* ---- memory accounting ------------------------------------------ */

static void
test_memory_accounting(void)
{
    struct xm_domain d1 = domain("vm1", 3 * GIB);
    struct xm_domain d2 = domain("vm2", 3 * GIB);
    struct xm_domain d3 = domain("vm3", 3 * GIB);
    struct xm_hostinfo hi;
    struct xm_domain *list = NULL;
    size_t n = 0;

    set_host(src_fake, 8 * GIB, 8 * GIB);
    CU_ASSERT_EQUAL(hv_fake_add_domain(src_fake, &d1), XM_OK);
    CU_ASSERT_EQUAL(hv_fake_add_domain(src_fake, &d2), XM_OK);
    CU_ASSERT_EQUAL(hv_fake_free_kib(src_fake), 2 * GIB);
    CU_ASSERT_EQUAL(hv_fake_add_domain(src_fake, &d3), XM_ERR_NOMEM);
    CU_ASSERT_EQUAL(hv_fake_count_domains(src_fake), 2);

    CU_ASSERT_EQUAL(src.ops->hostinfo(src.ctx, &hi), XM_OK);
    CU_ASSERT_EQUAL(hi.total_kib, 8 * GIB);
    CU_ASSERT_EQUAL(hi.free_kib, 2 * GIB);

    CU_ASSERT_EQUAL(src.ops->list_domains(src.ctx, &list, &n), XM_OK);
    CU_ASSERT_EQUAL_FATAL(n, 2);
    CU_ASSERT_EQUAL(list[0].domid, 1);
    CU_ASSERT_STRING_EQUAL(list[0].name, "vm1");
    CU_ASSERT_EQUAL(list[1].domid, 2);
    free(list);

    CU_ASSERT_EQUAL(src.ops->destroy(src.ctx, 1), XM_OK);
    CU_ASSERT_EQUAL(src.ops->destroy(src.ctx, 1), XM_ERR_NOTFOUND);
    CU_ASSERT_EQUAL(hv_fake_free_kib(src_fake), 5 * GIB);
    CU_ASSERT_EQUAL(hv_fake_add_domain(src_fake, &d3), XM_OK);
    CU_ASSERT_PTR_NULL(hv_fake_find(src_fake, "vm1"));
    CU_ASSERT_EQUAL(hv_fake_find(src_fake, "vm3")->domid, 3);
}

static void
test_domain_rules(void)
{
    struct xm_domain d = domain("web", GIB);
    struct xm_domain t = domain("db--incoming", GIB);
    uint32_t id = 0;
    char *json = NULL;

    CU_ASSERT_EQUAL(hv_fake_add_domain_config(src_fake, &d, NULL, &id),
                    XM_OK);
    CU_ASSERT_EQUAL(id, 1);
    CU_ASSERT_EQUAL(hv_fake_add_domain(src_fake, &d), XM_ERR_EXISTS);
    t.domid = 7;
    CU_ASSERT_EQUAL(hv_fake_add_domain(src_fake, &t), XM_OK);
    CU_ASSERT(hv_fake_find(src_fake, "db--incoming")->flags
              & XM_DOM_TRANSIENT);
    CU_ASSERT_FALSE(hv_fake_find(src_fake, "web")->flags & XM_DOM_TRANSIENT);

    CU_ASSERT_EQUAL(src.ops->rename(src.ctx, 1, "db--incoming"),
                    XM_ERR_EXISTS);
    CU_ASSERT_EQUAL(src.ops->rename(src.ctx, 1, ""), XM_ERR_INVAL);
    CU_ASSERT_EQUAL(src.ops->rename(src.ctx, 9, "x"), XM_ERR_NOTFOUND);
    CU_ASSERT_EQUAL(src.ops->rename(src.ctx, 1, "web--migratedaway"), XM_OK);
    CU_ASSERT(hv_fake_find_domid(src_fake, 1)->flags & XM_DOM_TRANSIENT);

    CU_ASSERT_EQUAL(src.ops->pause(src.ctx, 1), XM_OK);
    CU_ASSERT(hv_fake_find_domid(src_fake, 1)->flags & XM_DOM_PAUSED);
    CU_ASSERT_EQUAL(src.ops->unpause(src.ctx, 1), XM_OK);
    CU_ASSERT_FALSE(hv_fake_find_domid(src_fake, 1)->flags & XM_DOM_PAUSED);
    CU_ASSERT_EQUAL(src.ops->resume(src.ctx, 1), XM_ERR_STATE);

    CU_ASSERT_EQUAL(src.ops->domain_config(src.ctx, 1, &json), XM_OK);
    CU_ASSERT_PTR_NOT_NULL_FATAL(json);
    CU_ASSERT_PTR_NOT_NULL(strstr(json, "\"name\":\"web\""));
    free(json);
    CU_ASSERT_EQUAL(src.ops->domain_config(src.ctx, 42, &json),
                    XM_ERR_NOTFOUND);
    CU_ASSERT_PTR_NULL(json);
}

/* ---- livepatch -------------------------------------------------- */

static void
upload(const char *name)
{
    static const char payload[] = "\177ELF fake payload";

    CU_ASSERT_EQUAL(src.ops->lp_upload(src.ctx, name, payload,
                                       sizeof(payload)), XM_OK);
}

static int
lp_state(const char *name)
{
    struct xm_lp_status st;
    int rc = src.ops->lp_get(src.ctx, name, &st);

    return rc ? rc : st.state;
}

static void
test_lp_states(void)
{
    static const char payload[] = "x";

    upload("p1");
    CU_ASSERT_EQUAL(src.ops->lp_upload(src.ctx, "p1", payload, 1),
                    XM_ERR_EXISTS);
    CU_ASSERT_EQUAL(src.ops->lp_upload(src.ctx, "p2", payload, 0),
                    XM_ERR_INVAL);
    CU_ASSERT_EQUAL(lp_state("p1"), XM_LP_CHECKED);
    CU_ASSERT_EQUAL(src.ops->lp_action(src.ctx, "p1", XM_LP_REVERT, 0),
                    XM_ERR_STATE);
    CU_ASSERT_EQUAL(src.ops->lp_action(src.ctx, "p1", XM_LP_APPLY, 0),
                    XM_OK);
    CU_ASSERT_EQUAL(lp_state("p1"), XM_LP_APPLIED);
    CU_ASSERT_EQUAL(src.ops->lp_action(src.ctx, "p1", XM_LP_APPLY, 0),
                    XM_ERR_STATE);
    CU_ASSERT_EQUAL(src.ops->lp_action(src.ctx, "p1", XM_LP_UNLOAD, 0),
                    XM_ERR_STATE);
    CU_ASSERT_EQUAL(src.ops->lp_action(src.ctx, "p1", XM_LP_REVERT, 0),
                    XM_OK);
    CU_ASSERT_EQUAL(lp_state("p1"), XM_LP_CHECKED);
    CU_ASSERT_EQUAL(src.ops->lp_action(src.ctx, "p1", XM_LP_UNLOAD, 0),
                    XM_OK);
    CU_ASSERT_EQUAL(lp_state("p1"), XM_ERR_NOTFOUND);
    CU_ASSERT_EQUAL(src.ops->lp_action(src.ctx, "p1", XM_LP_APPLY, 0),
                    XM_ERR_NOTFOUND);
}

static void
test_lp_replace(void)
{
    struct xm_lp_status *list = NULL;
    size_t n = 0;

    upload("a");
    upload("b");
    upload("c");
    CU_ASSERT_EQUAL(src.ops->lp_action(src.ctx, "a", XM_LP_APPLY, 0), XM_OK);
    CU_ASSERT_EQUAL(src.ops->lp_action(src.ctx, "b", XM_LP_APPLY, 0), XM_OK);
    CU_ASSERT_EQUAL(src.ops->lp_action(src.ctx, "c", XM_LP_REPLACE, 0),
                    XM_OK);
    CU_ASSERT_EQUAL(src.ops->lp_list(src.ctx, &list, &n), XM_OK);
    CU_ASSERT_EQUAL_FATAL(n, 3);
    CU_ASSERT_STRING_EQUAL(list[0].name, "a");
    CU_ASSERT_EQUAL(list[0].state, XM_LP_CHECKED);
    CU_ASSERT_EQUAL(list[1].state, XM_LP_CHECKED);
    CU_ASSERT_STRING_EQUAL(list[2].name, "c");
    CU_ASSERT_EQUAL(list[2].state, XM_LP_APPLIED);
    free(list);
}

static void
test_lp_name_limits(void)
{
    char name[XM_LP_NAME_MAX + 2];
    struct xm_lp_status st;

    memset(name, 'n', sizeof(name) - 1);
    name[sizeof(name) - 1] = '\0';          /* XM_LP_NAME_MAX + 1 chars */
    CU_ASSERT_EQUAL(src.ops->lp_upload(src.ctx, name, "x", 1),
                    XM_ERR_TOOBIG);
    CU_ASSERT_EQUAL(src.ops->lp_action(src.ctx, name, XM_LP_APPLY, 0),
                    XM_ERR_TOOBIG);
    CU_ASSERT_EQUAL(src.ops->lp_get(src.ctx, name, &st), XM_ERR_TOOBIG);
    name[XM_LP_NAME_MAX] = '\0';            /* exactly the limit: fine */
    CU_ASSERT_EQUAL(src.ops->lp_upload(src.ctx, name, "x", 1), XM_OK);
    CU_ASSERT_EQUAL(lp_state(name), XM_LP_CHECKED);
}

static void
test_lp_fault_second_action(void)
{
    struct fault *ft = hv_fake_fault(src_fake);

    upload("a");
    upload("b");
    CU_ASSERT_EQUAL(fault_arm(ft, "lp_action", 2, XM_ERR_BUSY), 0);
    CU_ASSERT_EQUAL(src.ops->lp_action(src.ctx, "a", XM_LP_APPLY, 0), XM_OK);
    CU_ASSERT_EQUAL(src.ops->lp_action(src.ctx, "b", XM_LP_APPLY, 0),
                    XM_ERR_BUSY);
    CU_ASSERT_EQUAL(lp_state("b"), XM_LP_CHECKED);   /* untouched */
    CU_ASSERT_EQUAL(src.ops->lp_action(src.ctx, "b", XM_LP_APPLY, 0), XM_OK);
    CU_ASSERT_EQUAL(fault_count(ft, "lp_action"), 3);

    /* Per-verb names: only reverts fail. */
    CU_ASSERT_EQUAL(fault_arm(ft, "lp_revert", XM_FAULT_ALWAYS,
                              XM_ERR_HV), 0);
    CU_ASSERT_EQUAL(src.ops->lp_action(src.ctx, "a", XM_LP_REVERT, 0),
                    XM_ERR_HV);
    CU_ASSERT_EQUAL(lp_state("a"), XM_LP_APPLIED);
}

static void
test_lp_deferred_action(void)
{
    struct xm_lp_status st;

    upload("a");
    upload("b");
    hv_fake_lp_defer(src_fake, 2);
    CU_ASSERT_EQUAL(src.ops->lp_action(src.ctx, "a", XM_LP_APPLY, 0), XM_OK);
    CU_ASSERT_EQUAL(src.ops->lp_get(src.ctx, "a", &st), XM_OK);
    CU_ASSERT_EQUAL(st.rc, -EAGAIN);
    CU_ASSERT_EQUAL(st.state, XM_LP_CHECKED);
    CU_ASSERT_EQUAL(src.ops->lp_action(src.ctx, "b", XM_LP_APPLY, 0),
                    XM_ERR_BUSY);
    CU_ASSERT_EQUAL(src.ops->lp_get(src.ctx, "a", &st), XM_OK);
    CU_ASSERT_EQUAL(st.rc, -EAGAIN);
    CU_ASSERT_EQUAL(src.ops->lp_get(src.ctx, "a", &st), XM_OK);
    CU_ASSERT_EQUAL(st.rc, 0);
    CU_ASSERT_EQUAL(st.state, XM_LP_APPLIED);
}

static void
test_lp_action_result_fault(void)
{
    struct xm_lp_status st;

    upload("a");
    fault_arm(hv_fake_fault(src_fake), "lp_action_result", 1, -ETIMEDOUT);
    CU_ASSERT_EQUAL(src.ops->lp_action(src.ctx, "a", XM_LP_APPLY, 0), XM_OK);
    CU_ASSERT_EQUAL(src.ops->lp_get(src.ctx, "a", &st), XM_OK);
    CU_ASSERT_EQUAL(st.rc, -ETIMEDOUT);
    CU_ASSERT_EQUAL(st.state, XM_LP_CHECKED);
}

/* ---- migration -------------------------------------------------- */

struct migration {
    struct done_rec send, recv;
    uint32_t new_domid;
    uint32_t src_domid;
};

/* src has "vm1" (1 GiB); start sending it on sv[0], receiving on sv[1]. */
static void
start_migration(struct migration *m, const char *recv_name)
{
    struct xm_domain d = domain("vm1", GIB);
    struct xm_hv_async send_how = { record_done, &m->send };
    struct xm_hv_async recv_how = { record_done, &m->recv };
    char *json = NULL;

    memset(m, 0, sizeof(*m));
    d.flags = XM_DOM_HVM;
    CU_ASSERT_EQUAL_FATAL(hv_fake_add_domain_config(src_fake, &d, NULL,
                                                    &m->src_domid), XM_OK);
    CU_ASSERT_EQUAL_FATAL(src.ops->domain_config(src.ctx, m->src_domid,
                                                 &json), XM_OK);
    CU_ASSERT_EQUAL(src.ops->migrate_send(src.ctx, m->src_domid, sv[0],
                                          &send_how), XM_OK);
    CU_ASSERT_EQUAL(dst.ops->migrate_recv(dst.ctx, json, recv_name, sv[1],
                                          &m->new_domid, &recv_how), XM_OK);
    free(json);
    /* Nothing completes before the loop runs. */
    CU_ASSERT_EQUAL(m->send.calls, 0);
    CU_ASSERT_EQUAL(m->recv.calls, 0);
}

static void
run_migration(struct migration *m)
{
    struct xm_hv *hvs[] = { &src, &dst };
    struct two_done t = { &m->send, &m->recv };

    CU_ASSERT(run_loop(hvs, 2, both_done, &t, 50) < 50);
}

static void
test_migration_socketpair(void)
{
    struct migration m;
    const struct xm_domain *in;
    struct xm_domain *list = NULL;
    size_t n = 0;

    set_host(dst_fake, 4 * GIB, 4 * GIB);
    start_migration(&m, "vm1--incoming");
    CU_ASSERT_EQUAL(hv_fake_pending(src_fake), 1);
    run_migration(&m);
    CU_ASSERT_EQUAL(m.send.calls, 1);
    CU_ASSERT_EQUAL(m.send.rc, XM_OK);
    CU_ASSERT_EQUAL(m.recv.calls, 1);
    CU_ASSERT_EQUAL(m.recv.rc, XM_OK);
    CU_ASSERT_EQUAL(hv_fake_pending(src_fake), 0);
    CU_ASSERT_EQUAL(hv_fake_pending(dst_fake), 0);

    in = hv_fake_find(dst_fake, "vm1--incoming");
    CU_ASSERT_PTR_NOT_NULL_FATAL(in);
    CU_ASSERT_EQUAL(in->domid, m.new_domid);
    CU_ASSERT(in->flags & XM_DOM_PAUSED);
    CU_ASSERT(in->flags & XM_DOM_TRANSIENT);
    CU_ASSERT(in->flags & XM_DOM_HVM);
    CU_ASSERT_EQUAL(in->mem_kib, GIB);
    CU_ASSERT_EQUAL(in->uuid[15], 0xaf);
    CU_ASSERT_EQUAL(hv_fake_free_kib(dst_fake), 3 * GIB);
    CU_ASSERT_STRING_EQUAL(hv_fake_config(dst_fake, m.new_domid),
                           hv_fake_config(src_fake, m.src_domid));

    /* The source copy stays, suspended, until resumed or destroyed. */
    CU_ASSERT(hv_fake_suspended(src_fake, m.src_domid));
    CU_ASSERT_EQUAL(src.ops->list_domains(src.ctx, &list, &n), XM_OK);
    CU_ASSERT_EQUAL_FATAL(n, 1);
    CU_ASSERT(list[0].flags & XM_DOM_SUSPENDED);
    free(list);
    CU_ASSERT_EQUAL(src.ops->unpause(src.ctx, m.src_domid), XM_ERR_STATE);
    CU_ASSERT_EQUAL(src.ops->resume(src.ctx, m.src_domid), XM_OK);
    CU_ASSERT_FALSE(hv_fake_suspended(src_fake, m.src_domid));
    CU_ASSERT_EQUAL(src.ops->resume(src.ctx, m.src_domid), XM_ERR_STATE);

    /* Undo on the target: the memory comes back. */
    CU_ASSERT_EQUAL(dst.ops->destroy(dst.ctx, m.new_domid), XM_OK);
    CU_ASSERT_EQUAL(hv_fake_free_kib(dst_fake), 4 * GIB);
}

static void
test_migration_target_full(void)
{
    struct migration m;

    set_host(dst_fake, 4 * GIB, GIB / 2);
    start_migration(&m, "vm1--incoming");
    run_migration(&m);
    CU_ASSERT_EQUAL(m.send.rc, XM_OK);
    CU_ASSERT_EQUAL(m.recv.rc, XM_ERR_NOMEM);
    CU_ASSERT_EQUAL(m.new_domid, UINT32_MAX);
    CU_ASSERT_EQUAL(hv_fake_count_domains(dst_fake), 0);
    CU_ASSERT_EQUAL(hv_fake_free_kib(dst_fake), GIB / 2);
}

static void
test_migration_send_fails(void)
{
    struct migration m;

    fault_arm(hv_fake_fault(src_fake), "migrate_send_done", 1, XM_ERR_IO);
    start_migration(&m, "vm1--incoming");
    run_migration(&m);
    CU_ASSERT_EQUAL(m.send.calls, 1);
    CU_ASSERT_EQUAL(m.send.rc, XM_ERR_IO);
    CU_ASSERT_FALSE(hv_fake_suspended(src_fake, m.src_domid));
}

static void
test_migration_sync_faults(void)
{
    struct xm_domain d = domain("vm1", GIB);
    struct done_rec rec = { 0, 0 };
    struct xm_hv_async how = { record_done, &rec };
    uint32_t id = 0;

    CU_ASSERT_EQUAL(hv_fake_add_domain_config(src_fake, &d, NULL, &id),
                    XM_OK);
    fault_arm(hv_fake_fault(src_fake), "migrate_send", 1, XM_ERR_HV);
    CU_ASSERT_EQUAL(src.ops->migrate_send(src.ctx, id, sv[0], &how),
                    XM_ERR_HV);
    CU_ASSERT_EQUAL(src.ops->migrate_send(src.ctx, 99, sv[0], &how),
                    XM_ERR_NOTFOUND);
    CU_ASSERT_EQUAL(dst.ops->migrate_recv(dst.ctx, "{}", "", sv[1], &id,
                                          &how), XM_ERR_INVAL);
    CU_ASSERT_EQUAL(src.ops->migrate_send(src.ctx, id, sv[0], &how), XM_OK);
    CU_ASSERT_EQUAL(src.ops->migrate_send(src.ctx, id, sv[0], &how),
                    XM_ERR_BUSY);
    CU_ASSERT_EQUAL(src.ops->pause(src.ctx, id), XM_ERR_BUSY);
    /* No done for refused starts; close reports the one in flight. */
    CU_ASSERT_EQUAL(rec.calls, 0);
    xm_hv_close(&src);
    CU_ASSERT_EQUAL(rec.calls, 1);
    CU_ASSERT_EQUAL(rec.rc, XM_ERR_CANCELLED);
}

static void
test_migration_destroyed_midway(void)
{
    struct xm_domain d = domain("vm1", GIB);
    struct done_rec rec = { 0, 0 };
    struct xm_hv_async how = { record_done, &rec };
    struct xm_hv *hvs[] = { &src };
    struct two_done t = { &rec, NULL };
    uint32_t id = 0;

    CU_ASSERT_EQUAL(hv_fake_add_domain_config(src_fake, &d, NULL, &id),
                    XM_OK);
    /* Destroyed before any I/O: only the wake pipe ends the send. */
    CU_ASSERT_EQUAL(src.ops->migrate_send(src.ctx, id, sv[0], &how), XM_OK);
    CU_ASSERT_EQUAL(src.ops->destroy(src.ctx, id), XM_OK);
    CU_ASSERT(run_loop(hvs, 1, both_done, &t, 5) < 5);
    CU_ASSERT_EQUAL(rec.rc, XM_ERR_NOTFOUND);
}

static void
test_recv_garbage(void)
{
    static const char junk[] = "HELLO WORLD\nthis is not a stream\n";
    struct done_rec rec = { 0, 0 };
    struct xm_hv_async how = { record_done, &rec };
    struct xm_hv *hvs[] = { &dst };
    struct two_done t = { &rec, NULL };
    uint32_t id = 0;

    CU_ASSERT_EQUAL(dst.ops->migrate_recv(dst.ctx, "{}", "vm", sv[1], &id,
                                          &how), XM_OK);
    CU_ASSERT_EQUAL(write(sv[0], hv_fake_libxl_prefix,
                          HV_FAKE_LIBXL_PREFIX_LEN),
                    HV_FAKE_LIBXL_PREFIX_LEN);
    CU_ASSERT_EQUAL(write(sv[0], junk, sizeof(junk) - 1),
                    (ssize_t)sizeof(junk) - 1);
    CU_ASSERT(run_loop(hvs, 1, both_done, &t, 10) < 10);
    CU_ASSERT_EQUAL(rec.rc, XM_ERR_PROTO);
    CU_ASSERT_EQUAL(hv_fake_count_domains(dst_fake), 0);
}

static void
test_recv_eof(void)
{
    struct done_rec rec = { 0, 0 };
    struct xm_hv_async how = { record_done, &rec };
    struct xm_hv *hvs[] = { &dst };
    struct two_done t = { &rec, NULL };
    uint32_t id = 0;

    CU_ASSERT_EQUAL(dst.ops->migrate_recv(dst.ctx, "{}", "vm", sv[1], &id,
                                          &how), XM_OK);
    CU_ASSERT_EQUAL(write(sv[0], hv_fake_libxl_prefix,
                          HV_FAKE_LIBXL_PREFIX_LEN),
                    HV_FAKE_LIBXL_PREFIX_LEN);
    CU_ASSERT_EQUAL(write(sv[0], "XMFAKE-STR", 10), 10);
    close(sv[0]);
    sv[0] = -1;
    CU_ASSERT(run_loop(hvs, 1, both_done, &t, 10) < 10);
    CU_ASSERT_EQUAL(rec.rc, XM_ERR_IO);
}

/* Does a restore whose stream is the len bytes of p, then end of file,
 * kill the process (as libxl 4.17 does within its opening)?  Run in a
 * child: true when it died of SIGABRT. */
static bool
recv_kills(const void *p, size_t len)
{
    pid_t pid;
    int st = 0;

    fflush(NULL);
    pid = fork();
    if (pid == 0) {
        struct done_rec rec = { 0, 0 };
        struct xm_hv_async how = { record_done, &rec };
        struct xm_hv *hvs[] = { &dst };
        struct two_done t = { &rec, NULL };
        uint32_t id = 0;
        int ps[2];

        close(STDERR_FILENO);   /* the fake's message: expected here */
        /* a socketpair of its own: the parent keeps sv[] open */
        if (socketpair(AF_UNIX, SOCK_STREAM, 0, ps)
            || dst.ops->migrate_recv(dst.ctx, "{}", "vm", ps[1], &id, &how)
            || (len && write(ps[0], p, len) != (ssize_t)len))
            _exit(2);
        close(ps[0]);
        run_loop(hvs, 1, both_done, &t, 10);
        _exit(rec.calls ? 0 : 3);
    }
    if (pid < 0 || waitpid(pid, &st, 0) != pid)
        return false;
    return WIFSIGNALED(st) && WTERMSIG(st) == SIGABRT;
}

static void
test_recv_early_eof_kills(void)
{
    uint8_t bad[HV_FAKE_LIBXL_PREFIX_LEN];

    CU_ASSERT_TRUE(recv_kills(NULL, 0));
    CU_ASSERT_TRUE(recv_kills(hv_fake_libxl_prefix,
                              HV_FAKE_LIBXL_PREFIX_LEN - 1));
    memcpy(bad, hv_fake_libxl_prefix, sizeof(bad));
    bad[0] = 'X';
    CU_ASSERT_TRUE(recv_kills(bad, sizeof(bad)));
    /* past the opening, a cut stream is an ordinary failure */
    CU_ASSERT_FALSE(recv_kills(hv_fake_libxl_prefix,
                               HV_FAKE_LIBXL_PREFIX_LEN));
}

static void
test_beforepoll_too_small(void)
{
    struct xm_domain d = domain("vm1", GIB);
    struct done_rec rec = { 0, 0 };
    struct xm_hv_async how = { record_done, &rec };
    struct pollfd fds[2];
    uint32_t id = 0;
    int n = 1, timeout = -1;

    CU_ASSERT_EQUAL(hv_fake_add_domain_config(src_fake, &d, NULL, &id),
                    XM_OK);
    CU_ASSERT_EQUAL(src.ops->beforepoll(src.ctx, fds, 1, &n, &timeout),
                    XM_OK);
    CU_ASSERT_EQUAL(n, 1);                  /* nothing to watch */
    CU_ASSERT_EQUAL(src.ops->migrate_send(src.ctx, id, sv[0], &how), XM_OK);
    n = 1;
    CU_ASSERT_EQUAL(src.ops->beforepoll(src.ctx, fds, 1, &n, &timeout),
                    XM_ERR_TOOBIG);
    CU_ASSERT_EQUAL(n, 2);
    CU_ASSERT_EQUAL(src.ops->beforepoll(src.ctx, fds, 1, &n, &timeout),
                    XM_OK);
    CU_ASSERT_EQUAL(n, 2);
    CU_ASSERT_EQUAL(fds[1].fd, sv[0]);
    CU_ASSERT_EQUAL(fds[1].events, POLLOUT);
    /* rec lives on this stack: end the send before returning. */
    xm_hv_close(&src);
    CU_ASSERT_EQUAL(rec.calls, 1);
    CU_ASSERT_EQUAL(rec.rc, XM_ERR_CANCELLED);
}

/* ---- helpers of xm_hv.h and the real backend -------------------- */

static void
test_buildid_hex(void)
{
    static const uint8_t id[] = { 0x00, 0x01, 0xab, 0xff, 0x10 };
    uint8_t big[XM_BUILDID_MAX + 8];
    char hex[2 * XM_BUILDID_MAX + 1];

    xm_buildid_hex(id, sizeof(id), hex);
    CU_ASSERT_STRING_EQUAL(hex, "0001abff10");
    xm_buildid_hex(id, 0, hex);
    CU_ASSERT_STRING_EQUAL(hex, "");
    xm_buildid_hex(NULL, 4, hex);
    CU_ASSERT_STRING_EQUAL(hex, "");
    memset(big, 0xee, sizeof(big));
    xm_buildid_hex(big, sizeof(big), hex);  /* clamped, no overflow */
    CU_ASSERT_EQUAL(strlen(hex), 2 * XM_BUILDID_MAX);
}

static void
test_libxl_err_mapping(void)
{
    CU_ASSERT_EQUAL(xm_libxl_err(0), XM_OK);
    CU_ASSERT_EQUAL(xm_libxl_err(ERROR_NOMEM), XM_ERR_NOMEM);
    CU_ASSERT_EQUAL(xm_libxl_err(ERROR_INVAL), XM_ERR_INVAL);
    CU_ASSERT_EQUAL(xm_libxl_err(ERROR_NOTFOUND), XM_ERR_NOTFOUND);
    CU_ASSERT_EQUAL(xm_libxl_err(ERROR_DOMAIN_NOTFOUND), XM_ERR_NOTFOUND);
    CU_ASSERT_EQUAL(xm_libxl_err(ERROR_TIMEDOUT), XM_ERR_TIMEOUT);
    CU_ASSERT_EQUAL(xm_libxl_err(ERROR_GUEST_TIMEDOUT), XM_ERR_TIMEOUT);
    CU_ASSERT_EQUAL(xm_libxl_err(ERROR_BUFFERFULL), XM_ERR_TOOBIG);
    CU_ASSERT_EQUAL(xm_libxl_err(ERROR_ABORTED), XM_ERR_CANCELLED);
    CU_ASSERT_EQUAL(xm_libxl_err(ERROR_NI), XM_ERR_UNSUPPORTED);
    CU_ASSERT_EQUAL(xm_libxl_err(ERROR_FAIL), XM_ERR_HV);
    CU_ASSERT_EQUAL(xm_libxl_err(-9999), XM_ERR_HV);

    CU_ASSERT_EQUAL(xm_lp_errno(EBUSY), XM_ERR_BUSY);
    CU_ASSERT_EQUAL(xm_lp_errno(EAGAIN), XM_ERR_BUSY);
    CU_ASSERT_EQUAL(xm_lp_errno(ENOENT), XM_ERR_NOTFOUND);
    CU_ASSERT_EQUAL(xm_lp_errno(EEXIST), XM_ERR_EXISTS);
    CU_ASSERT_EQUAL(xm_lp_errno(EPERM), XM_ERR_PERM);
    CU_ASSERT_EQUAL(xm_lp_errno(ENOMEM), XM_ERR_NOMEM);
}

/* ---- clocks ----------------------------------------------------- */

static void
test_clock_fake(void)
{
    struct clock_fake cf;
    struct xm_clock c;

    clock_fake_init(&cf, 1000, 1700000000);
    clock_fake_as_clock(&cf, &c);
    CU_ASSERT_EQUAL(xm_clock_mono_ms(&c), 1000);
    CU_ASSERT_EQUAL(xm_clock_wall_s(&c), 1700000000);
    clock_fake_advance(&cf, 1500);
    CU_ASSERT_EQUAL(xm_clock_mono_ms(&c), 2500);
    CU_ASSERT_EQUAL(xm_clock_wall_s(&c), 1700000001);
    clock_fake_advance(&cf, 500);
    CU_ASSERT_EQUAL(xm_clock_wall_s(&c), 1700000002);
    clock_fake_set_wall(&cf, 5);            /* wall steps back ... */
    CU_ASSERT_EQUAL(xm_clock_wall_s(&c), 5);
    CU_ASSERT_EQUAL(xm_clock_mono_ms(&c), 3000);  /* ... mono does not */
    CU_ASSERT_EQUAL(cf.reads, 7);
}

static void
test_clock_real(void)
{
    int64_t a = xm_clock_mono_ms(&xm_clock_real);
    int64_t b = xm_clock_mono_ms(&xm_clock_real);

    CU_ASSERT(a > 0);
    CU_ASSERT(b >= a);
    CU_ASSERT(xm_clock_wall_s(&xm_clock_real) > 1600000000);
}

static CU_TestInfo fake_tests[] = {
    { "memory accounting", test_memory_accounting },
    { "domain rules", test_domain_rules },
    { "livepatch states", test_lp_states },
    { "livepatch replace", test_lp_replace },
    { "livepatch name limits", test_lp_name_limits },
    { "fault: 2nd lp_action busy", test_lp_fault_second_action },
    { "livepatch deferred action", test_lp_deferred_action },
    { "livepatch action result fault", test_lp_action_result_fault },
    CU_TEST_INFO_NULL,
};

static CU_TestInfo migration_tests[] = {
    { "two fakes over a socketpair", test_migration_socketpair },
    { "target without memory", test_migration_target_full },
    { "send fails asynchronously", test_migration_send_fails },
    { "refused starts and close", test_migration_sync_faults },
    { "domain destroyed mid-send", test_migration_destroyed_midway },
    { "receiver rejects garbage", test_recv_garbage },
    { "a stream cut within libxl's opening kills, as in libxl 4.17",
      test_recv_early_eof_kills },
    { "receiver sees EOF", test_recv_eof },
    { "beforepoll needs room", test_beforepoll_too_small },
    CU_TEST_INFO_NULL,
};

static CU_TestInfo helper_tests[] = {
    { "build-id hex", test_buildid_hex },
    { "libxl and livepatch error mapping", test_libxl_err_mapping },
    { "fake clock", test_clock_fake },
    { "real clock", test_clock_real },
    CU_TEST_INFO_NULL,
};

CU_SuiteInfo xm_test_suites[] = {
    { "hv_fake", NULL, NULL, setup, teardown, fake_tests },
    { "hv_migration", NULL, NULL, setup, teardown, migration_tests },
    { "hv_helpers", NULL, NULL, NULL, NULL, helper_tests },
    CU_SUITE_INFO_NULL,
};
