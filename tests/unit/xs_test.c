/*
 * xs_test.c -- the xenstore wrappers (xm_xs.c) and the in-process double
 * (tests/fakes/xs_fake.c) they are tested against.
 *
 * Every test gets a fresh store with two connections: dom0 (the agent)
 * and guest domain 5, so permission checks can be seen to bite.  The
 * real backend needs xenstored and is exercised in the lab.
 */
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "xm_err.h"
#include "xm_xs.h"
#include "xs_fake.h"

static struct xs_fake *store;
static struct xm_xs dom0;
static struct xm_xs guest;

/* CUnit's per-test setup cannot report failure: without a store there
 * is nothing to test, so stop loudly. */
static void
setup(void)
{
    store = xs_fake_new();
    if (!store || xs_fake_connect(store, 0, &dom0) != XM_OK ||
        xs_fake_connect(store, 5, &guest) != XM_OK)
        abort();
}

static void
teardown(void)
{
    xm_xs_close(&dom0);
    xm_xs_close(&guest);
    xs_fake_free(store);
    store = NULL;
}

static void
set_perms_text(struct xm_xs *xs, const char *path, const char *text)
{
    struct xm_xs_perm perms[XM_XS_PERMS_MAX];
    unsigned n = 0;

    CU_ASSERT_EQUAL_FATAL(xm_xs_parse_perms(text, perms, XM_XS_PERMS_MAX,
                                            &n), XM_OK);
    CU_ASSERT_EQUAL_FATAL(xs->ops->set_perms(xs->ctx, XM_XS_NO_TXN, path,
                                             perms, n), XM_OK);
}

/* Read path and compare; NULL expected means "must fail with rc". */
static void
expect_value(struct xm_xs *xs, const char *path, const char *expected)
{
    char *v = NULL;

    CU_ASSERT_EQUAL(xm_xs_read(xs, XM_XS_NO_TXN, path, &v), XM_OK);
    CU_ASSERT_PTR_NOT_NULL_FATAL(v);
    CU_ASSERT_STRING_EQUAL(v, expected);
    free(v);
}

static unsigned
drain_events(struct xm_xs *xs, const char *want_path, const char *want_token)
{
    char *path = NULL, *token = NULL;
    unsigned hits = 0;

    while (xs->ops->next_event(xs->ctx, &path, &token) == XM_OK) {
        if (strcmp(path, want_path) == 0 && strcmp(token, want_token) == 0)
            hits++;
        free(path);
        free(token);
    }
    return hits;
}

static int
fd_readable(struct xm_xs *xs)
{
    struct pollfd pfd = { .fd = xs->ops->watch_fd(xs->ctx),
                          .events = POLLIN };

    return poll(&pfd, 1, 0) == 1 && (pfd.revents & POLLIN);
}

/* ---- basic operations ---- */

static void
test_write_read(void)
{
    char *v = NULL;
    size_t len = 0;

    CU_ASSERT_EQUAL(xm_xs_write_str(&dom0, XM_XS_NO_TXN, "/a/b/c", "hello"),
                    XM_OK);
    expect_value(&dom0, "/a/b/c", "hello");
    /* Parents were created, empty. */
    expect_value(&dom0, "/a/b", "");
    CU_ASSERT_EQUAL(xs_fake_count_nodes(store), 3);
    CU_ASSERT_EQUAL(xm_xs_writef(&dom0, XM_XS_NO_TXN, "/a/n", "%u-%s", 42u,
                                 "x"), XM_OK);
    CU_ASSERT_EQUAL(dom0.ops->read(dom0.ctx, XM_XS_NO_TXN, "/a/n", &v,
                                   &len), XM_OK);
    CU_ASSERT_EQUAL(len, 4);
    CU_ASSERT_STRING_EQUAL(v, "42-x");
    free(v);
    v = NULL;
    CU_ASSERT_EQUAL(xs_fake_peek(store, "/a/b/c", &v), XM_OK);
    CU_ASSERT_STRING_EQUAL(v, "hello");
    free(v);
}

static void
test_read_missing(void)
{
    char *v = (char *)"sentinel";

    CU_ASSERT_EQUAL(xm_xs_read(&dom0, XM_XS_NO_TXN, "/nothing", &v),
                    XM_ERR_NOTFOUND);
    CU_ASSERT_PTR_NULL(v);
    CU_ASSERT_EQUAL(xm_xs_read(&dom0, XM_XS_NO_TXN, "relative", &v),
                    XM_ERR_INVAL);
    CU_ASSERT_EQUAL(xm_xs_read(&dom0, XM_XS_NO_TXN, "/bad/", &v),
                    XM_ERR_INVAL);
    /* xenstored's character set has no dot. */
    CU_ASSERT_EQUAL(xm_xs_write_str(&dom0, XM_XS_NO_TXN, "/a.b", "1"),
                    XM_ERR_INVAL);
}

static void
test_value_limits(void)
{
    char *big = malloc(XM_XS_VALUE_MAX + 2);
    char *v = NULL;

    CU_ASSERT_PTR_NOT_NULL_FATAL(big);
    memset(big, 'x', XM_XS_VALUE_MAX);
    big[XM_XS_VALUE_MAX] = '\0';
    CU_ASSERT_EQUAL(xm_xs_write_str(&dom0, XM_XS_NO_TXN, "/v", big), XM_OK);
    CU_ASSERT_EQUAL(xm_xs_read(&dom0, XM_XS_NO_TXN, "/v", &v), XM_OK);
    CU_ASSERT_EQUAL(strlen(v), XM_XS_VALUE_MAX);
    free(v);
    big[XM_XS_VALUE_MAX] = 'y';
    big[XM_XS_VALUE_MAX + 1] = '\0';
    CU_ASSERT_EQUAL(xm_xs_write_str(&dom0, XM_XS_NO_TXN, "/v", big),
                    XM_ERR_TOOBIG);
    CU_ASSERT_EQUAL(xm_xs_writef(&dom0, XM_XS_NO_TXN, "/v", "%s", big),
                    XM_ERR_TOOBIG);
    free(big);
    /* The old value is untouched. */
    CU_ASSERT_EQUAL(xs_fake_peek(store, "/v", &v), XM_OK);
    CU_ASSERT_EQUAL(strlen(v), XM_XS_VALUE_MAX);
    free(v);
}

static void
test_rm(void)
{
    CU_ASSERT_EQUAL(xm_xs_write_str(&dom0, XM_XS_NO_TXN, "/r/x/y", "1"),
                    XM_OK);
    CU_ASSERT_EQUAL(xm_xs_write_str(&dom0, XM_XS_NO_TXN, "/r/z", "2"),
                    XM_OK);
    CU_ASSERT_EQUAL(dom0.ops->rm(dom0.ctx, XM_XS_NO_TXN, "/r/x"), XM_OK);
    CU_ASSERT_EQUAL(xs_fake_count_nodes(store), 2);
    CU_ASSERT_EQUAL(dom0.ops->rm(dom0.ctx, XM_XS_NO_TXN, "/r/x"), XM_OK);
    CU_ASSERT_EQUAL(dom0.ops->rm(dom0.ctx, XM_XS_NO_TXN, "/"), XM_ERR_INVAL);
    expect_value(&dom0, "/r/z", "2");
}

static void
test_directory(void)
{
    char **names = NULL;
    unsigned n = 0;

    CU_ASSERT_EQUAL(xm_xs_write_str(&dom0, XM_XS_NO_TXN, "/d/one", "1"),
                    XM_OK);
    CU_ASSERT_EQUAL(dom0.ops->mkdir(dom0.ctx, XM_XS_NO_TXN, "/d/two"),
                    XM_OK);
    CU_ASSERT_EQUAL(xm_xs_write_str(&dom0, XM_XS_NO_TXN, "/d/two/deep", "3"),
                    XM_OK);
    CU_ASSERT_EQUAL(dom0.ops->directory(dom0.ctx, XM_XS_NO_TXN, "/d",
                                        &names, &n), XM_OK);
    CU_ASSERT_EQUAL_FATAL(n, 2);
    CU_ASSERT_STRING_EQUAL(names[0], "one");
    CU_ASSERT_STRING_EQUAL(names[1], "two");
    xm_xs_free_list(names, n);
    CU_ASSERT_EQUAL(dom0.ops->directory(dom0.ctx, XM_XS_NO_TXN, "/d/one",
                                        &names, &n), XM_OK);
    CU_ASSERT_EQUAL(n, 0);
    xm_xs_free_list(names, n);
    CU_ASSERT_EQUAL(dom0.ops->directory(dom0.ctx, XM_XS_NO_TXN, "/nope",
                                        &names, &n), XM_ERR_NOTFOUND);
    xm_xs_free_list(NULL, 0);
}

/* ---- permissions ---- */

static void
test_perms_dom0_only(void)
{
    char *v = NULL;

    CU_ASSERT_EQUAL(xm_xs_write_str(&dom0, XM_XS_NO_TXN, "/p/secret", "s"),
                    XM_OK);
    set_perms_text(&dom0, "/p", "n0");
    set_perms_text(&dom0, "/p/secret", "n0");
    CU_ASSERT_EQUAL(xm_xs_read(&guest, XM_XS_NO_TXN, "/p/secret", &v),
                    XM_ERR_PERM);
    CU_ASSERT_PTR_NULL(v);
    CU_ASSERT_EQUAL(xm_xs_write_str(&guest, XM_XS_NO_TXN, "/p/secret", "g"),
                    XM_ERR_PERM);
    /* Creating below a node it cannot write is refused too, and a
     * missing key under an unreadable one is "denied", not "absent". */
    CU_ASSERT_EQUAL(xm_xs_write_str(&guest, XM_XS_NO_TXN, "/p/new", "g"),
                    XM_ERR_PERM);
    CU_ASSERT_EQUAL(xm_xs_read(&guest, XM_XS_NO_TXN, "/p/none", &v),
                    XM_ERR_PERM);
    CU_ASSERT_EQUAL(guest.ops->rm(guest.ctx, XM_XS_NO_TXN, "/p/secret"),
                    XM_ERR_PERM);
    expect_value(&dom0, "/p/secret", "s");
}

static void
test_perms_guest_readable(void)
{
    struct xm_xs_perm perms[XM_XS_PERMS_MAX];
    unsigned n = 0;
    char *v = NULL;

    CU_ASSERT_EQUAL(xm_xs_write_str(&dom0, XM_XS_NO_TXN, "/g/notice", "hi"),
                    XM_OK);
    set_perms_text(&dom0, "/g", "n0 r5");
    set_perms_text(&dom0, "/g/notice", "n0 r5");
    expect_value(&guest, "/g/notice", "hi");
    CU_ASSERT_EQUAL(xm_xs_write_str(&guest, XM_XS_NO_TXN, "/g/notice", "x"),
                    XM_ERR_PERM);
    CU_ASSERT_EQUAL(guest.ops->get_perms(guest.ctx, XM_XS_NO_TXN,
                                         "/g/notice", perms,
                                         XM_XS_PERMS_MAX, &n), XM_OK);
    CU_ASSERT_EQUAL_FATAL(n, 2);
    CU_ASSERT_EQUAL(perms[0].domid, 0);
    CU_ASSERT_EQUAL(perms[0].access, 'n');
    CU_ASSERT_EQUAL(perms[1].domid, 5);
    CU_ASSERT_EQUAL(perms[1].access, 'r');
    /* A third domain is not listed: it gets the first entry's "n". */
    struct xm_xs other;
    CU_ASSERT_EQUAL_FATAL(xs_fake_connect(store, 7, &other), XM_OK);
    CU_ASSERT_EQUAL(xm_xs_read(&other, XM_XS_NO_TXN, "/g/notice", &v),
                    XM_ERR_PERM);
    xm_xs_close(&other);
    /* The guest may not change permissions of a node it does not own. */
    CU_ASSERT_EQUAL(guest.ops->set_perms(guest.ctx, XM_XS_NO_TXN,
                                         "/g/notice", perms, 1),
                    XM_ERR_PERM);
}

static void
test_perms_guest_owned(void)
{
    struct xm_xs_perm perms[XM_XS_PERMS_MAX];
    unsigned n = 0;

    CU_ASSERT_EQUAL(dom0.ops->mkdir(dom0.ctx, XM_XS_NO_TXN,
                                    "/local/domain/5/data"), XM_OK);
    set_perms_text(&dom0, "/local/domain/5/data", "b5");
    /* The guest writes in its own area; the new key is its own. */
    CU_ASSERT_EQUAL(xm_xs_write_str(&guest, XM_XS_NO_TXN,
                                    "/local/domain/5/data/ack", "ack"),
                    XM_OK);
    CU_ASSERT_EQUAL(dom0.ops->get_perms(dom0.ctx, XM_XS_NO_TXN,
                                        "/local/domain/5/data/ack", perms,
                                        XM_XS_PERMS_MAX, &n), XM_OK);
    CU_ASSERT_EQUAL(n, 1);
    CU_ASSERT_EQUAL(perms[0].domid, 5);
    expect_value(&dom0, "/local/domain/5/data/ack", "ack");
    /* A key dom0 creates inherits the parent's owner, 5. */
    CU_ASSERT_EQUAL(xm_xs_write_str(&dom0, XM_XS_NO_TXN,
                                    "/local/domain/5/data/x", "0"), XM_OK);
    expect_value(&guest, "/local/domain/5/data/x", "0");
    CU_ASSERT_EQUAL(xm_xs_write_str(&guest, XM_XS_NO_TXN,
                                    "/local/domain/6/data/x", "1"),
                    XM_ERR_PERM);
}

/* ---- watches ---- */

static void
test_watch_fd(void)
{
    CU_ASSERT_FALSE(fd_readable(&dom0));
    CU_ASSERT_EQUAL(dom0.ops->watch(dom0.ctx, "/w", "tok"), XM_OK);
    /* Fires once on registration. */
    CU_ASSERT_TRUE(fd_readable(&dom0));
    CU_ASSERT_EQUAL(drain_events(&dom0, "/w", "tok"), 1);
    CU_ASSERT_FALSE(fd_readable(&dom0));
    CU_ASSERT_EQUAL(dom0.ops->watch(dom0.ctx, "/w", "tok"), XM_ERR_EXISTS);

    /* A write below fires with the written path. */
    CU_ASSERT_EQUAL(xm_xs_write_str(&dom0, XM_XS_NO_TXN, "/w/a/b", "1"),
                    XM_OK);
    CU_ASSERT_TRUE(fd_readable(&dom0));
    CU_ASSERT_EQUAL(drain_events(&dom0, "/w/a/b", "tok"), 1);
    /* A sibling with a common prefix does not. */
    CU_ASSERT_EQUAL(xm_xs_write_str(&dom0, XM_XS_NO_TXN, "/wx", "1"), XM_OK);
    CU_ASSERT_FALSE(fd_readable(&dom0));
    /* rm fires on the removed path. */
    CU_ASSERT_EQUAL(dom0.ops->rm(dom0.ctx, XM_XS_NO_TXN, "/w"), XM_OK);
    CU_ASSERT_EQUAL(drain_events(&dom0, "/w", "tok"), 1);

    CU_ASSERT_EQUAL(dom0.ops->unwatch(dom0.ctx, "/w", "tok"), XM_OK);
    CU_ASSERT_EQUAL(dom0.ops->unwatch(dom0.ctx, "/w", "tok"),
                    XM_ERR_NOTFOUND);
    CU_ASSERT_EQUAL(xm_xs_write_str(&dom0, XM_XS_NO_TXN, "/w", "1"), XM_OK);
    CU_ASSERT_FALSE(fd_readable(&dom0));
}

static void
test_watch_permissions(void)
{
    CU_ASSERT_EQUAL(dom0.ops->mkdir(dom0.ctx, XM_XS_NO_TXN, "/s"), XM_OK);
    set_perms_text(&dom0, "/s", "n0");
    CU_ASSERT_EQUAL(guest.ops->watch(guest.ctx, "/s", "g"), XM_OK);
    CU_ASSERT_EQUAL(drain_events(&guest, "/s", "g"), 1);
    /* A change the guest may not read is not reported to it. */
    CU_ASSERT_EQUAL(xm_xs_write_str(&dom0, XM_XS_NO_TXN, "/s/k", "1"), XM_OK);
    CU_ASSERT_FALSE(fd_readable(&guest));
    set_perms_text(&dom0, "/s/k", "n0 r5");
    CU_ASSERT_TRUE(fd_readable(&guest));
    CU_ASSERT_EQUAL(drain_events(&guest, "/s/k", "g"), 1);
}

static void
test_watch_poll_two_connections(void)
{
    struct pollfd pfd[2];
    int r;

    CU_ASSERT_EQUAL(dom0.ops->mkdir(dom0.ctx, XM_XS_NO_TXN, "/q"), XM_OK);
    set_perms_text(&dom0, "/q", "n0 r5");
    CU_ASSERT_EQUAL(dom0.ops->watch(dom0.ctx, "/q", "a"), XM_OK);
    CU_ASSERT_EQUAL(guest.ops->watch(guest.ctx, "/q", "b"), XM_OK);
    drain_events(&dom0, "", "");
    drain_events(&guest, "", "");
    CU_ASSERT_EQUAL(xm_xs_write_str(&dom0, XM_XS_NO_TXN, "/q/x", "1"), XM_OK);
    CU_ASSERT_EQUAL(xm_xs_write_str(&dom0, XM_XS_NO_TXN, "/q/y", "2"), XM_OK);
    pfd[0].fd = dom0.ops->watch_fd(dom0.ctx);
    pfd[1].fd = guest.ops->watch_fd(guest.ctx);
    pfd[0].events = pfd[1].events = POLLIN;
    r = poll(pfd, 2, 1000);
    CU_ASSERT_EQUAL(r, 2);
    /* Both events wait in order behind one readable fd. */
    char *path = NULL, *token = NULL;
    CU_ASSERT_EQUAL(guest.ops->next_event(guest.ctx, &path, &token), XM_OK);
    CU_ASSERT_STRING_EQUAL(path, "/q/x");
    CU_ASSERT_STRING_EQUAL(token, "b");
    free(path);
    free(token);
    CU_ASSERT_TRUE(fd_readable(&guest));
    CU_ASSERT_EQUAL(guest.ops->next_event(guest.ctx, &path, &token), XM_OK);
    CU_ASSERT_STRING_EQUAL(path, "/q/y");
    free(path);
    free(token);
    CU_ASSERT_EQUAL(guest.ops->next_event(guest.ctx, &path, &token),
                    XM_ERR_BUSY);
    CU_ASSERT_PTR_NULL(path);
    CU_ASSERT_FALSE(fd_readable(&guest));
    CU_ASSERT_EQUAL(drain_events(&dom0, "/q/y", "a"), 1);
}

/* ---- transactions ---- */

static void
test_txn_isolation(void)
{
    xm_xs_txn t = XM_XS_NO_TXN;
    char *v = NULL;

    CU_ASSERT_EQUAL(dom0.ops->watch(dom0.ctx, "/t", "tok"), XM_OK);
    drain_events(&dom0, "", "");
    CU_ASSERT_EQUAL_FATAL(dom0.ops->txn_start(dom0.ctx, &t), XM_OK);
    CU_ASSERT_NOT_EQUAL(t, XM_XS_NO_TXN);
    CU_ASSERT_EQUAL(xm_xs_write_str(&dom0, t, "/t/k", "in"), XM_OK);
    CU_ASSERT_EQUAL(xm_xs_read(&dom0, XM_XS_NO_TXN, "/t/k", &v),
                    XM_ERR_NOTFOUND);
    CU_ASSERT_FALSE(fd_readable(&dom0));
    CU_ASSERT_EQUAL(xm_xs_read(&dom0, t, "/t/k", &v), XM_OK);
    CU_ASSERT_STRING_EQUAL(v, "in");
    free(v);
    /* Another connection cannot use this transaction. */
    CU_ASSERT_EQUAL(xm_xs_read(&guest, t, "/t/k", &v), XM_ERR_INVAL);
    CU_ASSERT_EQUAL(dom0.ops->txn_end(dom0.ctx, t, false), XM_OK);
    expect_value(&dom0, "/t/k", "in");
    CU_ASSERT_EQUAL(drain_events(&dom0, "/t/k", "tok"), 1);
}

static void
test_txn_abort(void)
{
    xm_xs_txn t = XM_XS_NO_TXN;

    CU_ASSERT_EQUAL_FATAL(dom0.ops->txn_start(dom0.ctx, &t), XM_OK);
    CU_ASSERT_EQUAL(xm_xs_write_str(&dom0, t, "/ab", "x"), XM_OK);
    CU_ASSERT_EQUAL(dom0.ops->txn_end(dom0.ctx, t, true), XM_OK);
    CU_ASSERT_EQUAL(xs_fake_count_nodes(store), 0);
    CU_ASSERT_EQUAL(dom0.ops->txn_end(dom0.ctx, t, false), XM_ERR_INVAL);
}

static void
test_txn_conflict(void)
{
    xm_xs_txn t = XM_XS_NO_TXN;

    CU_ASSERT_EQUAL_FATAL(dom0.ops->txn_start(dom0.ctx, &t), XM_OK);
    CU_ASSERT_EQUAL(xm_xs_write_str(&dom0, t, "/c/mine", "1"), XM_OK);
    /* Someone else changes the store meanwhile. */
    CU_ASSERT_EQUAL(xm_xs_write_str(&dom0, XM_XS_NO_TXN, "/c/theirs", "2"),
                    XM_OK);
    CU_ASSERT_EQUAL(dom0.ops->txn_end(dom0.ctx, t, false), XM_ERR_BUSY);
    CU_ASSERT_EQUAL(xs_fake_count_nodes(store), 2); /* /c, /c/theirs */
}

struct race {
    unsigned runs;
    unsigned races;     /* how many runs are disturbed */
};

static int
racy_body(struct xm_xs *xs, xm_xs_txn t, void *arg)
{
    struct race *race = arg;
    char *v = NULL;
    unsigned long count = 0;
    int rc;

    race->runs++;
    rc = xm_xs_read(xs, t, "/counter", &v);
    if (rc == XM_OK)
        count = strtoul(v, NULL, 10);
    else if (rc != XM_ERR_NOTFOUND)
        return rc;
    free(v);
    if (race->runs <= race->races) {
        /* Another writer slips in outside the transaction. */
        rc = xm_xs_write_str(&guest, XM_XS_NO_TXN, "/other", "x");
        if (rc)
            return rc;
    }
    return xm_xs_writef(xs, t, "/counter", "%lu", count + 1);
}

static void
test_transact_retries(void)
{
    struct race race = { .runs = 0, .races = 2 };

    /* The guest may write /other: give it its own node. */
    CU_ASSERT_EQUAL(dom0.ops->mkdir(dom0.ctx, XM_XS_NO_TXN, "/other"), XM_OK);
    set_perms_text(&dom0, "/other", "b5");
    CU_ASSERT_EQUAL(xm_xs_transact(&dom0, racy_body, &race, 5), XM_OK);
    CU_ASSERT_EQUAL(race.runs, 3);
    expect_value(&dom0, "/counter", "1");
}

static void
test_transact_gives_up(void)
{
    struct race race = { .runs = 0, .races = 100 };

    CU_ASSERT_EQUAL(dom0.ops->mkdir(dom0.ctx, XM_XS_NO_TXN, "/other"), XM_OK);
    set_perms_text(&dom0, "/other", "b5");
    CU_ASSERT_EQUAL(xm_xs_transact(&dom0, racy_body, &race, 4),
                    XM_ERR_BUSY);
    CU_ASSERT_EQUAL(race.runs, 4);
    CU_ASSERT_EQUAL(xs_fake_count_nodes(store), 1); /* only /other */
    CU_ASSERT_EQUAL(xm_xs_transact(&dom0, racy_body, &race, 0),
                    XM_ERR_INVAL);
}

static int
failing_body(struct xm_xs *xs, xm_xs_txn t, void *arg)
{
    unsigned *runs = arg;
    int rc;

    (*runs)++;
    rc = xm_xs_write_str(xs, t, "/half", "done");
    if (rc)
        return rc;
    return XM_ERR_STATE;
}

static void
test_transact_body_error(void)
{
    unsigned runs = 0;

    CU_ASSERT_EQUAL(xm_xs_transact(&dom0, failing_body, &runs, 5),
                    XM_ERR_STATE);
    CU_ASSERT_EQUAL(runs, 1);
    /* Aborted: nothing of it is left. */
    CU_ASSERT_EQUAL(xs_fake_count_nodes(store), 0);
}

/* ---- fault injection ---- */

static void
test_fault_second_write(void)
{
    struct fault *fault = xs_fake_fault(store);

    CU_ASSERT_EQUAL(fault_arm(fault, "write", 2, XM_ERR_IO), 0);
    CU_ASSERT_EQUAL(xm_xs_write_str(&dom0, XM_XS_NO_TXN, "/f1", "1"), XM_OK);
    CU_ASSERT_EQUAL(xm_xs_write_str(&dom0, XM_XS_NO_TXN, "/f2", "2"),
                    XM_ERR_IO);
    CU_ASSERT_EQUAL(xm_xs_write_str(&dom0, XM_XS_NO_TXN, "/f3", "3"), XM_OK);
    CU_ASSERT_EQUAL(fault_count(fault, "write"), 3);
    CU_ASSERT_EQUAL(xs_fake_count_nodes(store), 2);
    char *v = NULL;
    CU_ASSERT_EQUAL(xs_fake_peek(store, "/f2", &v), XM_ERR_NOTFOUND);
}

static void
test_fault_every_op(void)
{
    static const char *const ops[] = {
        "read", "write", "mkdir", "rm", "directory", "set_perms",
        "get_perms", "txn_start", "txn_end", "watch", "unwatch",
    };
    struct fault *fault = xs_fake_fault(store);
    struct xm_xs_perm perm = { .domid = 0, .access = 'n' };
    struct xm_xs_perm got[XM_XS_PERMS_MAX];
    char **names = NULL;
    char *v = NULL;
    unsigned n = 0;
    xm_xs_txn t = 1;

    for (unsigned i = 0; i < sizeof(ops) / sizeof(ops[0]); i++)
        CU_ASSERT_EQUAL(fault_arm(fault, ops[i], XM_FAULT_ALWAYS,
                                  XM_ERR_XS), 0);
    CU_ASSERT_EQUAL(dom0.ops->read(dom0.ctx, 0, "/x", &v, NULL), XM_ERR_XS);
    CU_ASSERT_EQUAL(dom0.ops->write(dom0.ctx, 0, "/x", "1", 1), XM_ERR_XS);
    CU_ASSERT_EQUAL(dom0.ops->mkdir(dom0.ctx, 0, "/x"), XM_ERR_XS);
    CU_ASSERT_EQUAL(dom0.ops->rm(dom0.ctx, 0, "/x"), XM_ERR_XS);
    CU_ASSERT_EQUAL(dom0.ops->directory(dom0.ctx, 0, "/", &names, &n),
                    XM_ERR_XS);
    CU_ASSERT_EQUAL(dom0.ops->set_perms(dom0.ctx, 0, "/", &perm, 1),
                    XM_ERR_XS);
    CU_ASSERT_EQUAL(dom0.ops->get_perms(dom0.ctx, 0, "/", got,
                                        XM_XS_PERMS_MAX, &n), XM_ERR_XS);
    CU_ASSERT_EQUAL(dom0.ops->txn_start(dom0.ctx, &t), XM_ERR_XS);
    CU_ASSERT_EQUAL(dom0.ops->txn_end(dom0.ctx, 1, false), XM_ERR_XS);
    CU_ASSERT_EQUAL(dom0.ops->watch(dom0.ctx, "/x", "t"), XM_ERR_XS);
    CU_ASSERT_EQUAL(dom0.ops->unwatch(dom0.ctx, "/x", "t"), XM_ERR_XS);
    CU_ASSERT_FALSE(fd_readable(&dom0));
    fault_clear(fault);
    CU_ASSERT_EQUAL(dom0.ops->mkdir(dom0.ctx, 0, "/x"), XM_OK);
}

/* ---- the write hook ---- */

struct hook_log {
    unsigned calls;
    char last[64];
};

static void
hook(void *arg, const char *path, const char *value, size_t len)
{
    struct hook_log *log = arg;

    log->calls++;
    snprintf(log->last, sizeof(log->last), "%s=%.*s", path, (int)len,
             value);
}

static void
test_write_hook(void)
{
    struct hook_log log = { 0 };
    xm_xs_txn t = XM_XS_NO_TXN;

    xs_fake_on_write(store, hook, &log);
    CU_ASSERT_EQUAL(xm_xs_write_str(&dom0, XM_XS_NO_TXN, "/h", "1"), XM_OK);
    CU_ASSERT_EQUAL(log.calls, 1);
    CU_ASSERT_STRING_EQUAL(log.last, "/h=1");
    CU_ASSERT_EQUAL_FATAL(dom0.ops->txn_start(dom0.ctx, &t), XM_OK);
    CU_ASSERT_EQUAL(xm_xs_write_str(&dom0, t, "/h", "2"), XM_OK);
    CU_ASSERT_EQUAL(log.calls, 1); /* not before the commit */
    CU_ASSERT_EQUAL(dom0.ops->txn_end(dom0.ctx, t, false), XM_OK);
    CU_ASSERT_EQUAL(log.calls, 2);
    CU_ASSERT_STRING_EQUAL(log.last, "/h=2");
    CU_ASSERT_EQUAL(dom0.ops->mkdir(dom0.ctx, XM_XS_NO_TXN, "/m"), XM_OK);
    CU_ASSERT_EQUAL(log.calls, 2); /* mkdir is not a write */
}

static void
test_own_domid(void)
{
    uint32_t domid = 99;

    CU_ASSERT_EQUAL(dom0.ops->own_domid(dom0.ctx, &domid), XM_OK);
    CU_ASSERT_EQUAL(domid, 0);
    CU_ASSERT_EQUAL(guest.ops->own_domid(guest.ctx, &domid), XM_OK);
    CU_ASSERT_EQUAL(domid, 5);
}

/* ---- pure helpers ---- */

static void
test_path(void)
{
    char buf[XM_XS_PATH_MAX];
    char longid[XM_XS_PATH_MAX];

    CU_ASSERT_EQUAL(xm_xs_path(buf, "/tool/xenmaint/job/%s/state", "j1"),
                    XM_OK);
    CU_ASSERT_STRING_EQUAL(buf, "/tool/xenmaint/job/j1/state");
    memset(longid, 'a', sizeof(longid) - 1);
    longid[sizeof(longid) - 1] = '\0';
    CU_ASSERT_EQUAL(xm_xs_path(buf, "/tool/xenmaint/job/%s/state", longid),
                    XM_ERR_TOOBIG);
    CU_ASSERT_STRING_EQUAL(buf, "");
    /* Exactly at the limit: XM_XS_PATH_MAX - 1 characters fit. */
    longid[XM_XS_PATH_MAX - 2] = '\0';
    CU_ASSERT_EQUAL(xm_xs_path(buf, "/%s", longid), XM_OK);
    CU_ASSERT_EQUAL(strlen(buf), XM_XS_PATH_MAX - 1);
}

static void
test_parse_perms(void)
{
    struct xm_xs_perm p[XM_XS_PERMS_MAX];
    unsigned n = 99;

    CU_ASSERT_EQUAL(xm_xs_parse_perms("n0 r5", p, XM_XS_PERMS_MAX, &n),
                    XM_OK);
    CU_ASSERT_EQUAL_FATAL(n, 2);
    CU_ASSERT_EQUAL(p[0].access, 'n');
    CU_ASSERT_EQUAL(p[0].domid, 0);
    CU_ASSERT_EQUAL(p[1].access, 'r');
    CU_ASSERT_EQUAL(p[1].domid, 5);
    CU_ASSERT_EQUAL(xm_xs_parse_perms("  b12\tw3 ", p, XM_XS_PERMS_MAX, &n),
                    XM_OK);
    CU_ASSERT_EQUAL(n, 2);
    CU_ASSERT_EQUAL(p[0].domid, 12);
    CU_ASSERT_EQUAL(p[1].access, 'w');

    static const char *const bad[] = {
        "", "   ", "x0", "r", "r-1", "r+1", "r5x", "n0,r5", "r 5",
        "r99999999999999999999", "r32752", "N0",
    };
    for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        CU_ASSERT_EQUAL(xm_xs_parse_perms(bad[i], p, XM_XS_PERMS_MAX, &n),
                        XM_ERR_INVAL);
        CU_ASSERT_EQUAL(n, 0);
    }
    CU_ASSERT_EQUAL(xm_xs_parse_perms("n0 r1 r2", p, 2, &n), XM_ERR_TOOBIG);
    CU_ASSERT_EQUAL(xm_xs_parse_perms(NULL, p, 2, &n), XM_ERR_INVAL);
}

static CU_TestInfo store_tests[] = {
    { "write and read", test_write_read },
    { "missing and invalid paths", test_read_missing },
    { "value length limit", test_value_limits },
    { "rm", test_rm },
    { "directory", test_directory },
    { "own domid", test_own_domid },
    CU_TEST_INFO_NULL,
};

static CU_TestInfo perm_tests[] = {
    { "dom0-only keys", test_perms_dom0_only },
    { "guest-readable keys", test_perms_guest_readable },
    { "guest-owned area", test_perms_guest_owned },
    CU_TEST_INFO_NULL,
};

static CU_TestInfo watch_tests[] = {
    { "events through the fd", test_watch_fd },
    { "events respect permissions", test_watch_permissions },
    { "poll on two connections", test_watch_poll_two_connections },
    CU_TEST_INFO_NULL,
};

static CU_TestInfo txn_tests[] = {
    { "isolation until commit", test_txn_isolation },
    { "abort", test_txn_abort },
    { "conflict is BUSY", test_txn_conflict },
    { "transact retries", test_transact_retries },
    { "transact gives up", test_transact_gives_up },
    { "transact body error", test_transact_body_error },
    CU_TEST_INFO_NULL,
};

static CU_TestInfo fault_tests[] = {
    { "second write fails", test_fault_second_write },
    { "every op can fail", test_fault_every_op },
    { "write hook", test_write_hook },
    CU_TEST_INFO_NULL,
};

static CU_TestInfo helper_tests[] = {
    { "path overflow", test_path },
    { "parse perms", test_parse_perms },
    CU_TEST_INFO_NULL,
};

CU_SuiteInfo xm_test_suites[] = {
    { "xs store", NULL, NULL, setup, teardown, store_tests },
    { "xs permissions", NULL, NULL, setup, teardown, perm_tests },
    { "xs watches", NULL, NULL, setup, teardown, watch_tests },
    { "xs transactions", NULL, NULL, setup, teardown, txn_tests },
    { "xs faults", NULL, NULL, setup, teardown, fault_tests },
    { "xs helpers", NULL, NULL, setup, teardown, helper_tests },
    CU_SUITE_INFO_NULL,
};
