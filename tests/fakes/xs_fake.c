/*
 * xs_fake.c -- an in-process xenstore for the unit tests (xs_fake.h).
 *
 * The store is a tree of nodes, each with a value and a permission list
 * that behaves as xenstored's does for the cases the project relies on:
 * the first entry names the owner (full access) and the access of every
 * domain not listed, dom0 may do anything, a node created by a write
 * inherits its parent's list with the owner set to the creating domain
 * when that is a guest, and node names use xenstored's character set.
 * A transaction works on a private copy of the whole tree and commits by
 * swapping it in; the commit fails with XM_ERR_BUSY when the store has
 * changed since the copy was made.  Watches fire on the path and below,
 * once on registration, only for connections allowed to read the node;
 * each connection's event queue is signalled by a pipe that is readable
 * exactly while events are queued.  xs_fake_count_nodes does not count
 * the root.
 */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "xm_err.h"
#include "xs_fake.h"

#define FAKE_TOKEN_MAX 64

#define PERM_R 1u
#define PERM_W 2u

struct node {
    char *name;                 /* one segment; "" for the root */
    char *value;
    size_t len;
    struct xm_xs_perm perms[XM_XS_PERMS_MAX];
    unsigned nperms;
    struct node *child;         /* first child, in creation order */
    struct node *next;          /* next sibling */
};

/* A change to report once it is visible: fires watches, and for a
 * write the test's hook. */
struct change {
    char *path;
    char *value;                /* NULL unless a write */
    size_t len;
    bool removed;               /* rm: watches below fire too */
    struct xm_xs_perm perms[XM_XS_PERMS_MAX];
    unsigned nperms;
    struct change *next;
};

struct txn {
    xm_xs_txn id;
    struct conn *conn;
    struct node *root;          /* the private copy */
    unsigned long gen;          /* store generation at start */
    struct change *changes, **changes_tail;
    struct txn *next;
};

struct watch {
    char *path;
    char *token;
    struct watch *next;
};

struct event {
    char *path;
    char *token;
    struct event *next;
};

struct conn {
    struct xs_fake *f;
    uint32_t domid;
    struct watch *watches;
    struct event *events, **events_tail;
    int pipe_fd[2];
    struct conn *next;
};

struct xs_fake {
    struct node *root;
    unsigned long gen;          /* bumped on every committed change */
    struct fault fault;
    struct conn *conns;
    struct txn *txns;
    xm_xs_txn next_txn;
    xs_fake_write_hook *hook;
    void *hook_arg;
};

/* ---- nodes ---- */

static void
node_free(struct node *n)
{
    while (n) {
        struct node *next = n->next;

        node_free(n->child);
        free(n->name);
        free(n->value);
        free(n);
        n = next;
    }
}

static struct node *
node_new(const char *name, size_t name_len)
{
    struct node *n = calloc(1, sizeof(*n));

    if (!n)
        return NULL;
    n->name = strndup(name, name_len);
    n->value = strdup("");
    if (!n->name || !n->value) {
        free(n->name);
        free(n->value);
        free(n);
        return NULL;
    }
    return n;
}

/* Deep copy of n and its siblings. */
static struct node *
node_copy(const struct node *n)
{
    struct node *head = NULL, **tail = &head;

    for (; n; n = n->next) {
        struct node *c = calloc(1, sizeof(*c));

        if (!c)
            goto fail;
        *tail = c;
        tail = &c->next;
        c->name = strdup(n->name);
        c->value = malloc(n->len + 1);
        if (!c->name || !c->value)
            goto fail;
        memcpy(c->value, n->value, n->len + 1);
        c->len = n->len;
        memcpy(c->perms, n->perms, sizeof(c->perms));
        c->nperms = n->nperms;
        if (n->child) {
            c->child = node_copy(n->child);
            if (!c->child)
                goto fail;
        }
    }
    return head;
fail:
    node_free(head);
    return NULL;
}

static unsigned
node_count(const struct node *n)
{
    unsigned count = 0;

    for (; n; n = n->next)
        count += 1 + node_count(n->child);
    return count;
}

static bool
valid_path(const char *path)
{
    static const char ok[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
                             "abcdefghijklmnopqrstuvwxyz0123456789-/_@";
    size_t len;

    if (!path || path[0] != '/')
        return false;
    len = strnlen(path, XM_XS_PATH_MAX);
    if (len >= XM_XS_PATH_MAX)
        return false;
    if (len > 1 && path[len - 1] == '/')
        return false;
    if (strstr(path, "//"))
        return false;
    return strspn(path, ok) == len;
}

static struct node *
child_named(struct node *parent, const char *name, size_t name_len)
{
    for (struct node *c = parent->child; c; c = c->next)
        if (strlen(c->name) == name_len &&
            memcmp(c->name, name, name_len) == 0)
            return c;
    return NULL;
}

/* The node at path, or NULL; *nearest_r (optional) is the deepest node
 * that exists on the way and *rest_r where the missing part starts. */
static struct node *
lookup(struct node *root, const char *path, struct node **nearest_r,
       const char **rest_r)
{
    struct node *n = root;
    const char *p = path + 1;

    while (*p) {
        size_t seg = strcspn(p, "/");
        struct node *c = child_named(n, p, seg);

        if (!c) {
            if (nearest_r)
                *nearest_r = n;
            if (rest_r)
                *rest_r = p;
            return NULL;
        }
        n = c;
        p += seg;
        if (*p == '/')
            p++;
    }
    if (nearest_r)
        *nearest_r = n;
    if (rest_r)
        *rest_r = p;
    return n;
}

static unsigned
access_bits(char access)
{
    switch (access) {
    case 'r': return PERM_R;
    case 'w': return PERM_W;
    case 'b': return PERM_R | PERM_W;
    default: return 0;
    }
}

/* xenstored's rule: dom0 and the owner get everything, a listed domain
 * its entry, everybody else the first entry's access. */
static unsigned
perm_for(const struct xm_xs_perm *perms, unsigned n, uint32_t domid)
{
    if (domid == 0 || n == 0 || perms[0].domid == domid)
        return PERM_R | PERM_W;
    for (unsigned i = 1; i < n; i++)
        if (perms[i].domid == domid)
            return access_bits(perms[i].access);
    return access_bits(perms[0].access);
}

static unsigned
node_perm(const struct node *n, uint32_t domid)
{
    return perm_for(n->perms, n->nperms, domid);
}

/* ---- events ---- */

static int
enqueue(struct conn *c, const char *path, const char *token)
{
    struct event *e = calloc(1, sizeof(*e));
    char byte = 'w';

    if (!e)
        return XM_ERR_NOMEM;
    e->path = strdup(path);
    e->token = strdup(token);
    if (!e->path || !e->token) {
        free(e->path);
        free(e->token);
        free(e);
        return XM_ERR_NOMEM;
    }
    if (!c->events) {
        /* Empty to non-empty: make the fd readable. */
        if (write(c->pipe_fd[1], &byte, 1) != 1) {
            free(e->path);
            free(e->token);
            free(e);
            return XM_ERR_IO;
        }
    }
    *c->events_tail = e;
    c->events_tail = &e->next;
    return XM_OK;
}

/* Is path equal to or below watched? */
static bool
path_within(const char *path, const char *watched)
{
    size_t wl = strlen(watched);

    if (strcmp(watched, "/") == 0)
        return path[0] == '/';
    return strncmp(path, watched, wl) == 0 &&
           (path[wl] == '\0' || path[wl] == '/');
}

static void
fire(struct xs_fake *f, const struct change *ch)
{
    for (struct conn *c = f->conns; c; c = c->next) {
        if (!(perm_for(ch->perms, ch->nperms, c->domid) & PERM_R))
            continue;
        for (struct watch *w = c->watches; w; w = w->next) {
            if (path_within(ch->path, w->path))
                (void)enqueue(c, ch->path, w->token);
            else if (ch->removed && path_within(w->path, ch->path))
                (void)enqueue(c, w->path, w->token);
        }
    }
}

static void
change_free(struct change *ch)
{
    while (ch) {
        struct change *next = ch->next;

        free(ch->path);
        free(ch->value);
        free(ch);
        ch = next;
    }
}

static struct change *
change_new(const char *path, const struct node *n, bool is_write,
           bool removed)
{
    struct change *ch = calloc(1, sizeof(*ch));

    if (!ch)
        return NULL;
    ch->path = strdup(path);
    if (!ch->path)
        goto fail;
    if (is_write) {
        ch->value = malloc(n->len + 1);
        if (!ch->value)
            goto fail;
        memcpy(ch->value, n->value, n->len + 1);
        ch->len = n->len;
    }
    ch->removed = removed;
    memcpy(ch->perms, n->perms, sizeof(ch->perms));
    ch->nperms = n->nperms;
    return ch;
fail:
    change_free(ch);
    return NULL;
}

static void
publish(struct xs_fake *f, struct change *ch)
{
    fire(f, ch);
    if (ch->value && f->hook)
        f->hook(f->hook_arg, ch->path, ch->value, ch->len);
}

/* Report a change: at once outside a transaction, at commit inside. */
static int
record(struct conn *c, struct txn *tx, const char *path,
       const struct node *n, bool is_write, bool removed)
{
    struct change *ch = change_new(path, n, is_write, removed);

    if (!ch)
        return XM_ERR_NOMEM;
    if (tx) {
        *tx->changes_tail = ch;
        tx->changes_tail = &ch->next;
        return XM_OK;
    }
    c->f->gen++;
    publish(c->f, ch);
    change_free(ch);
    return XM_OK;
}

/* ---- connection plumbing ---- */

/* The tree an operation works on: the store, or the transaction's copy
 * (which must belong to this connection). */
static int
tree_for(struct conn *c, xm_xs_txn t, struct node **root_r,
         struct txn **tx_r)
{
    *tx_r = NULL;
    *root_r = c->f->root;
    if (t == XM_XS_NO_TXN)
        return XM_OK;
    for (struct txn *tx = c->f->txns; tx; tx = tx->next) {
        if (tx->id == t && tx->conn == c) {
            *tx_r = tx;
            *root_r = tx->root;
            return XM_OK;
        }
    }
    return XM_ERR_INVAL;
}

/* Error for a missing node: xenstored answers EACCES rather than ENOENT
 * when the caller may not read the deepest existing ancestor. */
static int
missing_rc(const struct conn *c, const struct node *nearest)
{
    return node_perm(nearest, c->domid) & PERM_R ? XM_ERR_NOTFOUND
                                                 : XM_ERR_PERM;
}

/* Create the missing part of path below nearest; returns the leaf. */
static int
create_path(struct conn *c, struct node *nearest, const char *rest,
            struct node **leaf_r)
{
    struct node *parent = nearest;
    const char *p = rest;

    *leaf_r = NULL;
    while (*p) {
        size_t seg = strcspn(p, "/");
        struct node *n = node_new(p, seg);

        if (!n)
            return XM_ERR_NOMEM;
        memcpy(n->perms, parent->perms, sizeof(n->perms));
        n->nperms = parent->nperms;
        if (c->domid != 0)
            n->perms[0].domid = c->domid;
        /* Append: directory lists children in creation order. */
        struct node **tail = &parent->child;
        while (*tail)
            tail = &(*tail)->next;
        *tail = n;
        parent = n;
        p += seg;
        if (*p == '/')
            p++;
    }
    *leaf_r = parent;
    return XM_OK;
}

/* The node at path, created (with its parents) when missing; the
 * caller must be allowed to write it or its deepest existing
 * ancestor.  *created_r says which. */
static int
get_for_write(struct conn *c, struct node *root, const char *path,
              struct node **node_r, bool *created_r)
{
    struct node *nearest = NULL;
    const char *rest = NULL;
    struct node *n;

    *node_r = NULL;
    *created_r = false;
    n = lookup(root, path, &nearest, &rest);
    if (n) {
        if (!(node_perm(n, c->domid) & PERM_W))
            return XM_ERR_PERM;
        *node_r = n;
        return XM_OK;
    }
    if (!(node_perm(nearest, c->domid) & PERM_W))
        return XM_ERR_PERM;
    *created_r = true;
    return create_path(c, nearest, rest, node_r);
}

/* ---- the ops ---- */

static int
fake_read(void *ctx, xm_xs_txn t, const char *path, char **value_r,
          size_t *len_r)
{
    struct conn *c = ctx;
    struct node *root, *nearest = NULL, *n;
    struct txn *tx;
    int rc;

    *value_r = NULL;
    if (len_r)
        *len_r = 0;
    rc = fault_check(&c->f->fault, "read");
    if (rc)
        return rc;
    if (!valid_path(path))
        return XM_ERR_INVAL;
    rc = tree_for(c, t, &root, &tx);
    if (rc)
        return rc;
    n = lookup(root, path, &nearest, NULL);
    if (!n)
        return missing_rc(c, nearest);
    if (!(node_perm(n, c->domid) & PERM_R))
        return XM_ERR_PERM;
    if (memchr(n->value, '\0', n->len))
        return XM_ERR_INVAL;
    *value_r = malloc(n->len + 1);
    if (!*value_r)
        return XM_ERR_NOMEM;
    memcpy(*value_r, n->value, n->len + 1);
    if (len_r)
        *len_r = n->len;
    return XM_OK;
}

static int
fake_write(void *ctx, xm_xs_txn t, const char *path, const char *value,
           size_t len)
{
    struct conn *c = ctx;
    struct node *root, *n;
    struct txn *tx;
    bool created;
    char *copy;
    int rc;

    rc = fault_check(&c->f->fault, "write");
    if (rc)
        return rc;
    if (!valid_path(path) || (!value && len))
        return XM_ERR_INVAL;
    if (len > XM_XS_VALUE_MAX)
        return XM_ERR_TOOBIG;
    rc = tree_for(c, t, &root, &tx);
    if (rc)
        return rc;
    copy = malloc(len + 1);
    if (!copy)
        return XM_ERR_NOMEM;
    if (len)
        memcpy(copy, value, len);
    copy[len] = '\0';
    rc = get_for_write(c, root, path, &n, &created);
    if (rc) {
        free(copy);
        return rc;
    }
    free(n->value);
    n->value = copy;
    n->len = len;
    return record(c, tx, path, n, true, false);
}

static int
fake_mkdir(void *ctx, xm_xs_txn t, const char *path)
{
    struct conn *c = ctx;
    struct node *root, *n;
    struct txn *tx;
    bool created;
    int rc;

    rc = fault_check(&c->f->fault, "mkdir");
    if (rc)
        return rc;
    if (!valid_path(path))
        return XM_ERR_INVAL;
    rc = tree_for(c, t, &root, &tx);
    if (rc)
        return rc;
    rc = get_for_write(c, root, path, &n, &created);
    if (rc || !created)
        return rc; /* an existing node is left alone, as xenstored does */
    return record(c, tx, path, n, false, false);
}

/* Unlink n (found at path) from its parent in root. */
static void
unlink_node(struct node *root, const char *path, struct node *n)
{
    const char *slash = strrchr(path, '/');
    char parent_path[XM_XS_PATH_MAX];
    struct node *parent, **pp;

    if (slash == path) {
        strcpy(parent_path, "/");
    } else {
        memcpy(parent_path, path, (size_t)(slash - path));
        parent_path[slash - path] = '\0';
    }
    parent = lookup(root, parent_path, NULL, NULL);
    assert(parent); /* n was found through it */
    for (pp = &parent->child; *pp != n; pp = &(*pp)->next)
        ;
    *pp = n->next;
    n->next = NULL;
}

static int
fake_rm(void *ctx, xm_xs_txn t, const char *path)
{
    struct conn *c = ctx;
    struct node *root, *n;
    struct change *ch;
    struct txn *tx;
    int rc;

    rc = fault_check(&c->f->fault, "rm");
    if (rc)
        return rc;
    if (!valid_path(path) || strcmp(path, "/") == 0)
        return XM_ERR_INVAL;
    rc = tree_for(c, t, &root, &tx);
    if (rc)
        return rc;
    n = lookup(root, path, NULL, NULL);
    if (!n)
        return XM_OK;
    if (!(node_perm(n, c->domid) & PERM_W))
        return XM_ERR_PERM;
    /* Take what the watches need before the node goes. */
    ch = change_new(path, n, false, true);
    if (!ch)
        return XM_ERR_NOMEM;
    unlink_node(root, path, n);
    node_free(n);
    if (tx) {
        *tx->changes_tail = ch;
        tx->changes_tail = &ch->next;
        return XM_OK;
    }
    c->f->gen++;
    publish(c->f, ch);
    change_free(ch);
    return XM_OK;
}

static int
fake_directory(void *ctx, xm_xs_txn t, const char *path, char ***names_r,
               unsigned *n_r)
{
    struct conn *c = ctx;
    struct node *root, *nearest = NULL, *n;
    struct txn *tx;
    char **names = NULL;
    unsigned count = 0, i = 0;
    int rc;

    *names_r = NULL;
    *n_r = 0;
    rc = fault_check(&c->f->fault, "directory");
    if (rc)
        return rc;
    if (!valid_path(path))
        return XM_ERR_INVAL;
    rc = tree_for(c, t, &root, &tx);
    if (rc)
        return rc;
    n = lookup(root, path, &nearest, NULL);
    if (!n)
        return missing_rc(c, nearest);
    if (!(node_perm(n, c->domid) & PERM_R))
        return XM_ERR_PERM;
    for (struct node *ch = n->child; ch; ch = ch->next)
        count++;
    names = calloc(count ? count : 1, sizeof(*names));
    if (!names)
        return XM_ERR_NOMEM;
    for (struct node *ch = n->child; ch; ch = ch->next, i++) {
        names[i] = strdup(ch->name);
        if (!names[i]) {
            xm_xs_free_list(names, i);
            return XM_ERR_NOMEM;
        }
    }
    *names_r = names;
    *n_r = count;
    return XM_OK;
}

static int
fake_set_perms(void *ctx, xm_xs_txn t, const char *path,
               const struct xm_xs_perm *perms, unsigned np)
{
    struct conn *c = ctx;
    struct node *root, *nearest = NULL, *n;
    struct txn *tx;
    int rc;

    rc = fault_check(&c->f->fault, "set_perms");
    if (rc)
        return rc;
    if (!valid_path(path) || np == 0)
        return XM_ERR_INVAL;
    if (np > XM_XS_PERMS_MAX)
        return XM_ERR_TOOBIG;
    for (unsigned i = 0; i < np; i++)
        if (!strchr("nrwb", perms[i].access) || perms[i].access == '\0')
            return XM_ERR_INVAL;
    rc = tree_for(c, t, &root, &tx);
    if (rc)
        return rc;
    n = lookup(root, path, &nearest, NULL);
    if (!n)
        return missing_rc(c, nearest);
    /* Only the owner (or dom0) may, and a guest may not give the node
     * away. */
    if (c->domid != 0 &&
        (n->nperms == 0 || n->perms[0].domid != c->domid ||
         perms[0].domid != c->domid))
        return XM_ERR_PERM;
    memset(n->perms, 0, sizeof(n->perms));
    memcpy(n->perms, perms, np * sizeof(*perms));
    n->nperms = np;
    return record(c, tx, path, n, false, false);
}

static int
fake_get_perms(void *ctx, xm_xs_txn t, const char *path,
               struct xm_xs_perm *perms_r, unsigned max, unsigned *n_r)
{
    struct conn *c = ctx;
    struct node *root, *nearest = NULL, *n;
    struct txn *tx;
    int rc;

    *n_r = 0;
    rc = fault_check(&c->f->fault, "get_perms");
    if (rc)
        return rc;
    if (!valid_path(path))
        return XM_ERR_INVAL;
    rc = tree_for(c, t, &root, &tx);
    if (rc)
        return rc;
    n = lookup(root, path, &nearest, NULL);
    if (!n)
        return missing_rc(c, nearest);
    if (!(node_perm(n, c->domid) & PERM_R))
        return XM_ERR_PERM;
    if (n->nperms > max)
        return XM_ERR_TOOBIG;
    memcpy(perms_r, n->perms, n->nperms * sizeof(*perms_r));
    *n_r = n->nperms;
    return XM_OK;
}

static void
txn_free(struct txn *tx)
{
    if (!tx)
        return;
    node_free(tx->root);
    change_free(tx->changes);
    free(tx);
}

static void
txn_unlink(struct xs_fake *f, struct txn *tx)
{
    for (struct txn **pp = &f->txns; *pp; pp = &(*pp)->next) {
        if (*pp == tx) {
            *pp = tx->next;
            tx->next = NULL;
            return;
        }
    }
}

static int
fake_txn_start(void *ctx, xm_xs_txn *t_r)
{
    struct conn *c = ctx;
    struct xs_fake *f = c->f;
    struct txn *tx;
    int rc;

    *t_r = XM_XS_NO_TXN;
    rc = fault_check(&f->fault, "txn_start");
    if (rc)
        return rc;
    tx = calloc(1, sizeof(*tx));
    if (!tx)
        return XM_ERR_NOMEM;
    tx->root = node_copy(f->root);
    if (!tx->root) {
        free(tx);
        return XM_ERR_NOMEM;
    }
    if (++f->next_txn == XM_XS_NO_TXN)
        f->next_txn = 1;
    tx->id = f->next_txn;
    tx->conn = c;
    tx->gen = f->gen;
    tx->changes_tail = &tx->changes;
    tx->next = f->txns;
    f->txns = tx;
    *t_r = tx->id;
    return XM_OK;
}

static int
fake_txn_end(void *ctx, xm_xs_txn t, bool abort)
{
    struct conn *c = ctx;
    struct xs_fake *f = c->f;
    struct node *root;
    struct txn *tx;
    int rc;

    rc = fault_check(&f->fault, "txn_end");
    if (rc)
        return rc;
    if (t == XM_XS_NO_TXN)
        return XM_ERR_INVAL;
    rc = tree_for(c, t, &root, &tx);
    if (rc)
        return rc;
    txn_unlink(f, tx);
    if (abort) {
        txn_free(tx);
        return XM_OK;
    }
    if (tx->gen != f->gen) {
        txn_free(tx);
        return XM_ERR_BUSY;
    }
    node_free(f->root);
    f->root = tx->root;
    tx->root = NULL;
    if (tx->changes)
        f->gen++;
    /* Hooks may write to the store; the change list is ours alone. */
    for (struct change *ch = tx->changes; ch; ch = ch->next)
        publish(f, ch);
    txn_free(tx);
    return XM_OK;
}

static bool
valid_watch(const char *path, const char *token)
{
    if (!token || strnlen(token, FAKE_TOKEN_MAX + 1) > FAKE_TOKEN_MAX)
        return false;
    if (path && path[0] == '@') /* @introduceDomain, @releaseDomain */
        return strnlen(path, XM_XS_PATH_MAX) < XM_XS_PATH_MAX;
    return valid_path(path);
}

static int
fake_watch(void *ctx, const char *path, const char *token)
{
    struct conn *c = ctx;
    struct watch *w;
    int rc;

    rc = fault_check(&c->f->fault, "watch");
    if (rc)
        return rc;
    if (!valid_watch(path, token))
        return XM_ERR_INVAL;
    for (w = c->watches; w; w = w->next)
        if (strcmp(w->path, path) == 0 && strcmp(w->token, token) == 0)
            return XM_ERR_EXISTS;
    w = calloc(1, sizeof(*w));
    if (!w)
        return XM_ERR_NOMEM;
    w->path = strdup(path);
    w->token = strdup(token);
    if (!w->path || !w->token) {
        free(w->path);
        free(w->token);
        free(w);
        return XM_ERR_NOMEM;
    }
    w->next = c->watches;
    c->watches = w;
    /* xenstored fires every new watch once, whether the node exists or
     * not, so the watcher reads the initial state. */
    return enqueue(c, path, token);
}

static int
fake_unwatch(void *ctx, const char *path, const char *token)
{
    struct conn *c = ctx;
    int rc;

    rc = fault_check(&c->f->fault, "unwatch");
    if (rc)
        return rc;
    if (!valid_watch(path, token))
        return XM_ERR_INVAL;
    for (struct watch **pp = &c->watches; *pp; pp = &(*pp)->next) {
        struct watch *w = *pp;

        if (strcmp(w->path, path) == 0 && strcmp(w->token, token) == 0) {
            *pp = w->next;
            free(w->path);
            free(w->token);
            free(w);
            return XM_OK;
        }
    }
    return XM_ERR_NOTFOUND;
}

static int
fake_watch_fd(void *ctx)
{
    struct conn *c = ctx;

    return c->pipe_fd[0];
}

static int
fake_next_event(void *ctx, char **path_r, char **token_r)
{
    struct conn *c = ctx;
    struct event *e = c->events;
    char byte;

    *path_r = NULL;
    *token_r = NULL;
    if (!e)
        return XM_ERR_BUSY;
    c->events = e->next;
    if (!c->events) {
        c->events_tail = &c->events;
        /* Non-empty to empty: the fd stops being readable. */
        if (read(c->pipe_fd[0], &byte, 1) != 1) {
            /* Cannot happen: one byte was written when the queue filled. */
            assert(!"xs_fake: event pipe out of step");
        }
    }
    *path_r = e->path;
    *token_r = e->token;
    free(e);
    return XM_OK;
}

static int
fake_own_domid(void *ctx, uint32_t *domid_r)
{
    struct conn *c = ctx;

    *domid_r = c->domid;
    return XM_OK;
}

static void
fake_close(void *ctx)
{
    struct conn *c = ctx;
    struct xs_fake *f;

    if (!c)
        return;
    f = c->f;
    /* Abandon its open transactions. */
    for (struct txn **pp = &f->txns; *pp;) {
        struct txn *tx = *pp;

        if (tx->conn == c) {
            *pp = tx->next;
            txn_free(tx);
        } else {
            pp = &tx->next;
        }
    }
    for (struct conn **pp = &f->conns; *pp; pp = &(*pp)->next) {
        if (*pp == c) {
            *pp = c->next;
            break;
        }
    }
    while (c->watches) {
        struct watch *w = c->watches;

        c->watches = w->next;
        free(w->path);
        free(w->token);
        free(w);
    }
    while (c->events) {
        struct event *e = c->events;

        c->events = e->next;
        free(e->path);
        free(e->token);
        free(e);
    }
    close(c->pipe_fd[0]);
    close(c->pipe_fd[1]);
    free(c);
}

static const struct xm_xs_ops fake_ops = {
    .read = fake_read,
    .write = fake_write,
    .mkdir = fake_mkdir,
    .rm = fake_rm,
    .directory = fake_directory,
    .set_perms = fake_set_perms,
    .get_perms = fake_get_perms,
    .txn_start = fake_txn_start,
    .txn_end = fake_txn_end,
    .watch = fake_watch,
    .unwatch = fake_unwatch,
    .watch_fd = fake_watch_fd,
    .next_event = fake_next_event,
    .own_domid = fake_own_domid,
    .close = fake_close,
};

/* ---- the store ---- */

struct xs_fake *
xs_fake_new(void)
{
    struct xs_fake *f = calloc(1, sizeof(*f));

    if (!f)
        return NULL;
    f->root = node_new("", 0);
    if (!f->root) {
        free(f);
        return NULL;
    }
    /* The root is dom0's, as in a fresh xenstored. */
    f->root->perms[0].domid = 0;
    f->root->perms[0].access = 'n';
    f->root->nperms = 1;
    fault_init(&f->fault);
    return f;
}

void
xs_fake_free(struct xs_fake *f)
{
    if (!f)
        return;
    assert(!f->conns); /* close every connection first */
    node_free(f->root);
    free(f);
}

int
xs_fake_connect(struct xs_fake *f, uint32_t domid, struct xm_xs *xs_r)
{
    struct conn *c = NULL;
    int rc;

    xs_r->ops = NULL;
    xs_r->ctx = NULL;
    c = calloc(1, sizeof(*c));
    if (!c)
        return XM_ERR_NOMEM;
    c->f = f;
    c->domid = domid;
    c->events_tail = &c->events;
    if (pipe2(c->pipe_fd, O_CLOEXEC | O_NONBLOCK) != 0) {
        rc = xm_err_from_errno(errno);
        free(c);
        return rc;
    }
    c->next = f->conns;
    f->conns = c;
    xs_r->ops = &fake_ops;
    xs_r->ctx = c;
    return XM_OK;
}

struct fault *
xs_fake_fault(struct xs_fake *f)
{
    return &f->fault;
}

void
xs_fake_on_write(struct xs_fake *f, xs_fake_write_hook *hook, void *arg)
{
    f->hook = hook;
    f->hook_arg = arg;
}

int
xs_fake_peek(struct xs_fake *f, const char *path, char **value_r)
{
    struct node *n;

    *value_r = NULL;
    if (!valid_path(path))
        return XM_ERR_INVAL;
    n = lookup(f->root, path, NULL, NULL);
    if (!n)
        return XM_ERR_NOTFOUND;
    *value_r = malloc(n->len + 1);
    if (!*value_r)
        return XM_ERR_NOMEM;
    memcpy(*value_r, n->value, n->len + 1);
    return XM_OK;
}

unsigned
xs_fake_count_nodes(struct xs_fake *f)
{
    return node_count(f->root) - 1;
}
