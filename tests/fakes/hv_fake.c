/*
 * hv_fake.c -- the in-process hypervisor of the unit tests (hv_fake.h).
 *
 * Domains live in an array kept sorted by domid; payloads in upload
 * order.  Migrations are pending operations polled through the owner's
 * loop: a send writes its prepared stream in small chunks whenever poll
 * says the fd is writable, a receive reads exactly the stream's bytes
 * (one at a time through the header, then the announced length) whenever
 * poll says it is readable.  An operation that must end without I/O (its
 * domain was destroyed) is "ready" and the wake pipe makes poll return.
 */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "hv_fake.h"
#include "xm_err.h"
#include "xm_json.h"

#define STREAM_MAGIC "XMFAKE-STREAM 1"
/* A stream opens as libxl's does: its v2 header and the header of the
 * LIBXC_CONTEXT record (xm_stream.h, XM_LIBXL_PREFIX_LEN bytes), the
 * record's fields in x86's byte order.  libxl 4.17 dies when a stream
 * fails within those bytes, and so does the fake (libxl_would_crash). */
#define LIBXL_PREFIX_LEN HV_FAKE_LIBXL_PREFIX_LEN
#define libxl_prefix hv_fake_libxl_prefix
const uint8_t hv_fake_libxl_prefix[LIBXL_PREFIX_LEN] = {
    'L', 'i', 'b', 'x', 'l', 'F', 'm', 't', 0, 0, 0, 2, 0, 0, 0, 0,
    1, 0, 0, 0, 0, 0, 0, 0,
};
#define STREAM_LINE_MAX 256
#define STREAM_CONFIG_MAX (1024 * 1024)
#define STREAM_ZEROS_MAX (64u * 1024 * 1024)
#define CHUNK 512

struct fdom {
    struct xm_domain d;
    char *config;
    bool suspended;
    bool sending;
    bool deaf;                  /* ignores shutdown requests */
};

struct fpayload {
    struct xm_lp_status st;
    bool pending;
    enum xm_lp_action action;
    unsigned countdown;
};

enum fop_kind { FOP_SEND, FOP_RECV, FOP_CREATE };

struct fop {
    struct fop *next;
    enum fop_kind kind;
    int fd;
    struct xm_hv_async how;
    bool ready;                 /* ends at the next afterpoll with rc */
    int rc;
    char *buf;                  /* send: the stream; recv: bytes so far */
    size_t len;                 /* send: stream length; recv: used */
    size_t pos;                 /* send: bytes written */
    size_t want;                /* recv: total expected, 0 = header */
    size_t zeros_at, zeros;     /* recv: where the zero bytes are */
    unsigned pattern;           /* recv: and what they hold */
    uint32_t domid;             /* send: the domain */
    /* recv, create */
    char name[XM_DOMNAME_MAX + 1];
    char *config;
    uint32_t *domid_r;
    struct xm_domain in;        /* fields read from the stream header */
};

struct hv_fake {
    struct fault fault;
    struct xm_hostinfo host;
    struct fdom *doms;
    size_t n_doms;
    uint32_t next_domid;
    struct fpayload *lps;
    size_t n_lps;
    unsigned lp_defer;
    struct fop *ops;
    int wake[2];
    bool wake_armed;
    size_t stream_zeros;        /* zero bytes in a send's stream */
    unsigned stream_pattern;    /* 1: every fourth page of them text */
};

/* ---- domains ---------------------------------------------------- */

static bool
name_is_transient(const char *name)
{
    static const char *const suffixes[] = { "--incoming", "--migratedaway" };
    size_t len = strlen(name);

    for (size_t i = 0; i < 2; i++) {
        size_t sl = strlen(suffixes[i]);
        if (len >= sl && strcmp(name + len - sl, suffixes[i]) == 0)
            return true;
    }
    return false;
}

static int
check_name(const char *name)
{
    if (!name || !name[0])
        return XM_ERR_INVAL;
    if (strnlen(name, XM_DOMNAME_MAX + 1) > XM_DOMNAME_MAX)
        return XM_ERR_TOOBIG;
    return XM_OK;
}

static struct fdom *
find_domid(struct hv_fake *f, uint32_t domid)
{
    for (size_t i = 0; i < f->n_doms; i++)
        if (f->doms[i].d.domid == domid)
            return &f->doms[i];
    return NULL;
}

static struct fdom *
find_name(struct hv_fake *f, const char *name)
{
    for (size_t i = 0; i < f->n_doms; i++)
        if (strcmp(f->doms[i].d.name, name) == 0)
            return &f->doms[i];
    return NULL;
}

static char *
default_config(const struct xm_domain *d)
{
    struct xm_jgen *g = xm_jgen_new(false);
    char uuid[37];
    char *text = NULL;
    const uint8_t *u = d->uuid;

    if (!g)
        return NULL;
    snprintf(uuid, sizeof(uuid),
             "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-"
             "%02x%02x%02x%02x%02x%02x",
             u[0], u[1], u[2], u[3], u[4], u[5], u[6], u[7], u[8], u[9],
             u[10], u[11], u[12], u[13], u[14], u[15]);
    xm_jgen_map_open(g);
    xm_jgen_key(g, "c_info");
    xm_jgen_map_open(g);
    xm_jgen_kv_str(g, "name", d->name);
    xm_jgen_kv_str(g, "uuid", uuid);
    xm_jgen_map_close(g);
    xm_jgen_key(g, "b_info");
    xm_jgen_map_open(g);
    xm_jgen_kv_uint(g, "max_memkb", d->mem_kib);
    xm_jgen_kv_uint(g, "max_vcpus", d->vcpus);
    xm_jgen_map_close(g);
    xm_jgen_map_close(g);
    if (xm_jgen_take(g, &text))
        text = NULL;
    xm_jgen_free(g);
    return text;
}

/* Insert a domain (copy of *d, domid already chosen) in domid order,
 * taking its memory.  Takes ownership of config on success. */
static int
insert_domain(struct hv_fake *f, const struct xm_domain *d, char *config)
{
    struct fdom *doms;
    size_t at;

    if (d->mem_kib > f->host.free_kib)
        return XM_ERR_NOMEM;
    doms = realloc(f->doms, (f->n_doms + 1) * sizeof(*doms));
    if (!doms)
        return XM_ERR_NOMEM;
    f->doms = doms;
    for (at = 0; at < f->n_doms && doms[at].d.domid < d->domid; at++)
        ;
    memmove(&doms[at + 1], &doms[at], (f->n_doms - at) * sizeof(*doms));
    memset(&doms[at], 0, sizeof(doms[at]));
    doms[at].d = *d;
    doms[at].config = config;
    f->n_doms++;
    f->host.free_kib -= d->mem_kib;
    if (d->domid >= f->next_domid)
        f->next_domid = d->domid + 1;
    return XM_OK;
}

static uint32_t
pick_domid(struct hv_fake *f)
{
    while (find_domid(f, f->next_domid))
        f->next_domid++;
    return f->next_domid;
}

int
hv_fake_add_domain_config(struct hv_fake *f, const struct xm_domain *d,
                          const char *config_json, uint32_t *domid_r)
{
    struct xm_domain copy = *d;
    char *config = NULL;
    int rc;

    copy.name[XM_DOMNAME_MAX] = '\0';
    if (copy.flags & XM_DOM_NAMELESS)
        copy.name[0] = '\0';
    else if ((rc = check_name(copy.name)))
        goto out;
    if ((copy.name[0] && find_name(f, copy.name)) ||
        (copy.domid && find_domid(f, copy.domid))) {
        rc = XM_ERR_EXISTS;
        goto out;
    }
    if (copy.domid == 0)
        copy.domid = pick_domid(f);
    if (name_is_transient(copy.name))
        copy.flags |= XM_DOM_TRANSIENT;
    config = config_json ? strdup(config_json) : default_config(&copy);
    if (!config) {
        rc = XM_ERR_NOMEM;
        goto out;
    }
    rc = insert_domain(f, &copy, config);
    if (rc)
        goto out;
    config = NULL;
    if (domid_r)
        *domid_r = copy.domid;
out:
    free(config);
    return rc;
}

int
hv_fake_add_domain(struct hv_fake *f, const struct xm_domain *d)
{
    return hv_fake_add_domain_config(f, d, NULL, NULL);
}

static void
make_ready(struct hv_fake *f, struct fop *op, int rc)
{
    op->ready = true;
    op->rc = rc;
    if (!f->wake_armed) {
        char c = 'w';
        /* A pipe with room for one byte: cannot block or fail. */
        if (write(f->wake[1], &c, 1) == 1)
            f->wake_armed = true;
    }
}

static void
remove_domain(struct hv_fake *f, struct fdom *dom)
{
    size_t at = (size_t)(dom - f->doms);

    for (struct fop *op = f->ops; op; op = op->next)
        if (op->kind == FOP_SEND && op->domid == dom->d.domid && !op->ready)
            make_ready(f, op, XM_ERR_NOTFOUND);
    f->host.free_kib += dom->d.mem_kib;
    free(dom->config);
    memmove(&f->doms[at], &f->doms[at + 1],
            (f->n_doms - at - 1) * sizeof(*f->doms));
    f->n_doms--;
}

/* ---- test-side API ---------------------------------------------- */

struct hv_fake *
hv_fake_new(void)
{
    struct hv_fake *f = calloc(1, sizeof(*f));

    if (!f)
        return NULL;
    if (pipe2(f->wake, O_CLOEXEC | O_NONBLOCK) < 0) {
        free(f);
        return NULL;
    }
    fault_init(&f->fault);
    f->host.total_kib = 16u * 1024 * 1024;
    f->host.free_kib = f->host.total_kib;
    f->host.nr_cpus = 8;
    snprintf(f->host.xen_version, sizeof(f->host.xen_version), "4.17.5");
    for (unsigned i = 0; i < 20; i++)
        f->host.build_id[i] = (uint8_t)i;
    f->host.build_id_len = 20;
    f->next_domid = 1;
    return f;
}

static void
fop_free(struct fop *op)
{
    free(op->buf);
    free(op->config);
    free(op);
}

void
hv_fake_free(struct hv_fake *f)
{
    if (!f)
        return;
    while (f->ops) {
        struct fop *op = f->ops;
        f->ops = op->next;
        fop_free(op);
    }
    for (size_t i = 0; i < f->n_doms; i++)
        free(f->doms[i].config);
    free(f->doms);
    free(f->lps);
    close(f->wake[0]);
    close(f->wake[1]);
    free(f);
}

struct fault *
hv_fake_fault(struct hv_fake *f)
{
    return &f->fault;
}

void
hv_fake_set_hostinfo(struct hv_fake *f, const struct xm_hostinfo *hi)
{
    f->host = *hi;
}

const struct xm_domain *
hv_fake_find(struct hv_fake *f, const char *name)
{
    struct fdom *dom = find_name(f, name);

    return dom ? &dom->d : NULL;
}

const struct xm_domain *
hv_fake_find_domid(struct hv_fake *f, uint32_t domid)
{
    struct fdom *dom = find_domid(f, domid);

    return dom ? &dom->d : NULL;
}

const char *
hv_fake_config(struct hv_fake *f, uint32_t domid)
{
    struct fdom *dom = find_domid(f, domid);

    return dom ? dom->config : NULL;
}

bool
hv_fake_suspended(struct hv_fake *f, uint32_t domid)
{
    struct fdom *dom = find_domid(f, domid);

    return dom && dom->suspended;
}

size_t
hv_fake_count_domains(struct hv_fake *f)
{
    return f->n_doms;
}

uint64_t
hv_fake_free_kib(struct hv_fake *f)
{
    return f->host.free_kib;
}

unsigned
hv_fake_pending(struct hv_fake *f)
{
    unsigned n = 0;

    for (struct fop *op = f->ops; op; op = op->next)
        n++;
    return n;
}

void
hv_fake_lp_defer(struct hv_fake *f, unsigned gets)
{
    f->lp_defer = gets;
}

/* ---- domain operations ------------------------------------------ */

static int
fk_list_domains(void *ctx, struct xm_domain **doms_r, size_t *n_r)
{
    struct hv_fake *f = ctx;
    struct xm_domain *doms;
    int rc;

    *doms_r = NULL;
    *n_r = 0;
    rc = fault_check(&f->fault, "list_domains");
    if (rc)
        return rc;
    doms = calloc(f->n_doms ? f->n_doms : 1, sizeof(*doms));
    if (!doms)
        return XM_ERR_NOMEM;
    for (size_t i = 0; i < f->n_doms; i++) {
        doms[i] = f->doms[i].d;
        if (f->doms[i].suspended)
            doms[i].flags |= XM_DOM_SUSPENDED;
    }
    *doms_r = doms;
    *n_r = f->n_doms;
    return XM_OK;
}

static int
fk_hostinfo(void *ctx, struct xm_hostinfo *info_r)
{
    struct hv_fake *f = ctx;
    int rc;

    memset(info_r, 0, sizeof(*info_r));
    rc = fault_check(&f->fault, "hostinfo");
    if (rc)
        return rc;
    *info_r = f->host;
    return XM_OK;
}

static int
fk_domain_config(void *ctx, uint32_t domid, char **json_r)
{
    struct hv_fake *f = ctx;
    struct fdom *dom;
    int rc;

    *json_r = NULL;
    rc = fault_check(&f->fault, "domain_config");
    if (rc)
        return rc;
    dom = find_domid(f, domid);
    if (!dom)
        return XM_ERR_NOTFOUND;
    *json_r = strdup(dom->config);
    return *json_r ? XM_OK : XM_ERR_NOMEM;
}

static int
fk_rename(void *ctx, uint32_t domid, const char *new_name)
{
    struct hv_fake *f = ctx;
    struct fdom *dom, *other;
    int rc;

    rc = fault_check(&f->fault, "rename");
    if (rc)
        return rc;
    rc = check_name(new_name);
    if (rc)
        return rc;
    dom = find_domid(f, domid);
    if (!dom)
        return XM_ERR_NOTFOUND;
    other = find_name(f, new_name);
    if (other && other != dom)
        return XM_ERR_EXISTS;
    snprintf(dom->d.name, sizeof(dom->d.name), "%s", new_name);
    dom->d.flags &= ~(unsigned)XM_DOM_TRANSIENT;
    if (name_is_transient(new_name))
        dom->d.flags |= XM_DOM_TRANSIENT;
    return XM_OK;
}

/* The domain for a state change: found, not dying, not mid-send. */
static int
live_domain(struct hv_fake *f, uint32_t domid, struct fdom **dom_r)
{
    struct fdom *dom = find_domid(f, domid);

    *dom_r = dom;
    if (!dom)
        return XM_ERR_NOTFOUND;
    if (dom->d.flags & XM_DOM_DYING)
        return XM_ERR_STATE;
    if (dom->sending)
        return XM_ERR_BUSY;
    return XM_OK;
}

static int
fk_pause(void *ctx, uint32_t domid)
{
    struct hv_fake *f = ctx;
    struct fdom *dom;
    int rc;

    rc = fault_check(&f->fault, "pause");
    if (!rc)
        rc = live_domain(f, domid, &dom);
    if (rc)
        return rc;
    dom->d.flags |= XM_DOM_PAUSED;
    return XM_OK;
}

static int
fk_unpause(void *ctx, uint32_t domid)
{
    struct hv_fake *f = ctx;
    struct fdom *dom;
    int rc;

    rc = fault_check(&f->fault, "unpause");
    if (!rc)
        rc = live_domain(f, domid, &dom);
    if (rc)
        return rc;
    if (dom->suspended)
        return XM_ERR_STATE;    /* needs resume, not unpause */
    dom->d.flags &= ~(unsigned)XM_DOM_PAUSED;
    return XM_OK;
}

static int
fk_resume(void *ctx, uint32_t domid)
{
    struct hv_fake *f = ctx;
    struct fdom *dom;
    int rc;

    rc = fault_check(&f->fault, "resume");
    if (!rc)
        rc = live_domain(f, domid, &dom);
    if (rc)
        return rc;
    if (!dom->suspended)
        return XM_ERR_STATE;
    dom->suspended = false;
    return XM_OK;
}

static int
fk_destroy(void *ctx, uint32_t domid)
{
    struct hv_fake *f = ctx;
    struct fdom *dom;
    int rc;

    rc = fault_check(&f->fault, "destroy");
    if (rc)
        return rc;
    dom = find_domid(f, domid);
    if (!dom)
        return XM_ERR_NOTFOUND;
    remove_domain(f, dom);
    return XM_OK;
}

static int
fk_shutdown(void *ctx, uint32_t domid)
{
    struct hv_fake *f = ctx;
    struct fdom *dom;
    int rc;

    rc = fault_check(&f->fault, "shutdown");
    if (!rc)
        rc = live_domain(f, domid, &dom);
    if (rc)
        return rc;
    if (!dom->deaf)
        dom->d.flags |= XM_DOM_DYING;   /* shut down, until destroyed */
    return XM_OK;
}

void
hv_fake_ignore_shutdown(struct hv_fake *f, uint32_t domid)
{
    struct fdom *dom = find_domid(f, domid);

    if (dom)
        dom->deaf = true;
}

/* ---- migration -------------------------------------------------- */

int
hv_fake_stream_zeros(struct hv_fake *f, size_t n)
{
    if (n > STREAM_ZEROS_MAX)
        return XM_ERR_INVAL;
    f->stream_zeros = n;
    return XM_OK;
}

void
hv_fake_stream_pattern(struct hv_fake *f, bool text_pages)
{
    f->stream_pattern = text_pages;
}

/* Byte i of the "zeros" region with pattern p: all zero, or every
 * fourth 4 KiB page a line of text over and over. */
static uint8_t
region_byte(size_t i, unsigned p)
{
    static const char text[] = "xenmaint fake guest page\n";

    if (!p || (i >> 12) % 4)
        return 0;
    return (uint8_t)text[i % (sizeof(text) - 1)];
}

static char *
build_stream(const struct hv_fake *f, const struct fdom *dom,
             size_t *len_r)
{
    const struct xm_domain *d = &dom->d;
    char hex[33];
    size_t clen = strlen(dom->config), zeros = f->stream_zeros;
    size_t cap = LIBXL_PREFIX_LEN + 512 + zeros + clen;
    char *buf = malloc(cap);
    int n;

    if (!buf)
        return NULL;
    for (unsigned i = 0; i < 16; i++)
        snprintf(hex + 2 * i, 3, "%02x", d->uuid[i]);
    memcpy(buf, libxl_prefix, LIBXL_PREFIX_LEN);
    n = snprintf(buf + LIBXL_PREFIX_LEN, cap - LIBXL_PREFIX_LEN,
                 STREAM_MAGIC "\nname %s\nuuid %s\n"
                 "mem %" PRIu64 " %" PRIu64 "\nvcpus %u\nflags %u\n"
                 "zeros %zu %u\nconfig %zu\n",
                 d->name, hex, d->mem_kib, d->cur_mem_kib, d->vcpus,
                 d->flags, zeros, f->stream_pattern, clen);
    if (n < 0 || LIBXL_PREFIX_LEN + (size_t)n + zeros + clen + 5 > cap) {
        free(buf);
        return NULL;
    }
    n += LIBXL_PREFIX_LEN;
    memset(buf + n, 0, zeros);
    for (size_t i = 0; f->stream_pattern && i < zeros; i++)
        buf[n + i] = (char)region_byte(i, f->stream_pattern);
    memcpy(buf + n + zeros, dom->config, clen);
    memcpy(buf + n + zeros + clen, "\nEND\n", 5);
    *len_r = (size_t)n + zeros + clen + 5;
    return buf;
}

static struct fop *
fop_new(struct hv_fake *f, enum fop_kind kind, int fd,
        const struct xm_hv_async *how)
{
    struct fop *op = calloc(1, sizeof(*op));
    struct fop **pp = &f->ops;

    if (!op)
        return NULL;
    op->kind = kind;
    op->fd = fd;
    op->how = *how;
    /* Appended: operations complete in the order they started. */
    while (*pp)
        pp = &(*pp)->next;
    *pp = op;
    return op;
}

static int
fk_migrate_send(void *ctx, uint32_t domid, int fd,
                const struct xm_hv_async *how)
{
    struct hv_fake *f = ctx;
    struct fdom *dom;
    struct fop *op;
    char *stream;
    size_t len = 0;
    int rc;

    assert(how && how->done);
    rc = fault_check(&f->fault, "migrate_send");
    if (rc)
        return rc;
    if (fd < 0)
        return XM_ERR_INVAL;
    rc = live_domain(f, domid, &dom);
    if (rc)
        return rc;
    if (dom->suspended)
        return XM_ERR_STATE;
    stream = build_stream(f, dom, &len);
    if (!stream)
        return XM_ERR_NOMEM;
    op = fop_new(f, FOP_SEND, fd, how);
    if (!op) {
        free(stream);
        return XM_ERR_NOMEM;
    }
    op->buf = stream;
    op->len = len;
    op->domid = domid;
    dom->sending = true;
    return XM_OK;
}

static int
fk_migrate_recv(void *ctx, const char *config_json, const char *name,
                int fd, uint32_t *domid_r, const struct xm_hv_async *how)
{
    struct hv_fake *f = ctx;
    struct fop *op;
    int rc;

    assert(how && how->done);
    rc = fault_check(&f->fault, "migrate_recv");
    if (rc)
        return rc;
    if (!config_json || !config_json[0] || fd < 0)
        return XM_ERR_INVAL;
    rc = check_name(name);
    if (rc)
        return rc;
    if (find_name(f, name))
        return XM_ERR_EXISTS;
    op = fop_new(f, FOP_RECV, fd, how);
    if (!op)
        return XM_ERR_NOMEM;
    snprintf(op->name, sizeof(op->name), "%s", name);
    op->config = strdup(config_json);
    op->domid_r = domid_r;
    if (!op->config)
        make_ready(f, op, XM_ERR_NOMEM);
    return XM_OK;
}

static int
fk_create(void *ctx, const char *config_json, const char *name,
          uint32_t *domid_r, const struct xm_hv_async *how)
{
    struct hv_fake *f = ctx;
    struct fop *op;
    int rc;

    assert(how && how->done);
    rc = fault_check(&f->fault, "create");
    if (rc)
        return rc;
    if (!config_json || !config_json[0])
        return XM_ERR_INVAL;
    rc = check_name(name);
    if (rc)
        return rc;
    op = fop_new(f, FOP_CREATE, -1, how);
    if (!op)
        return XM_ERR_NOMEM;
    snprintf(op->name, sizeof(op->name), "%s", name);
    op->config = strdup(config_json);
    op->domid_r = domid_r;
    make_ready(f, op, op->config ? XM_OK : XM_ERR_NOMEM);
    return XM_OK;
}

/* The created domain, paused: its uuid, memory and vCPUs from the
 * config (the fake's own shape, see default_config). */
static int
finish_create(struct hv_fake *f, struct fop *op)
{
    const xm_json *c_info, *b_info;
    const char *uuid = NULL;
    xm_json *doc = NULL;
    struct xm_domain d;
    uint64_t mem = 0, vcpus = 1;
    int rc;

    rc = fault_check(&f->fault, "create_done");
    if (rc)
        return rc;
    if (find_name(f, op->name))
        return XM_ERR_EXISTS;
    if (xm_json_parse(op->config, strlen(op->config), &doc, NULL, 0))
        return XM_ERR_INVAL;
    memset(&d, 0, sizeof(d));
    c_info = xm_json_get(doc, "c_info");
    b_info = xm_json_get(doc, "b_info");
    if (!xm_json_get_str(c_info, "uuid", &uuid)) {
        unsigned k = 0;
        for (const char *p = uuid; *p && k < 32; p++) {
            unsigned v;
            if (*p == '-' || sscanf(p, "%1x", &v) != 1)
                continue;
            d.uuid[k / 2] |= (uint8_t)(k % 2 ? v : v << 4);
            k++;
        }
    }
    xm_json_get_uint(b_info, "max_memkb", &mem);
    xm_json_get_uint(b_info, "max_vcpus", &vcpus);
    xm_json_free(doc);
    snprintf(d.name, sizeof(d.name), "%s", op->name);
    d.mem_kib = mem ? mem : 1;
    d.cur_mem_kib = d.mem_kib;
    d.vcpus = vcpus && vcpus < 4096 ? (unsigned)vcpus : 1;
    d.flags = XM_DOM_PAUSED;
    d.domid = pick_domid(f);
    rc = insert_domain(f, &d, op->config);
    if (rc)
        return rc;
    op->config = NULL;          /* the domain owns it */
    if (op->domid_r)
        *op->domid_r = d.domid;
    return XM_OK;
}

/*
 * libxl 4.17 calls its save/restore helper's completion callback, unset
 * until the helper runs, when a stream fails before the helper started
 * (within its first LIBXL_PREFIX_LEN bytes): the process dies of a NULL
 * call.  The fake dies too, saying why, so no test can pass on a path
 * that kills the real agent.
 */
static void
libxl_would_crash(const char *what, size_t done)
{
    fprintf(stderr, "hv_fake: %s failed after %zu of the stream's first "
            "%d bytes: libxl 4.17 dies here (NULL completion callback)\n",
            what, done, LIBXL_PREFIX_LEN);
    abort();
}

/* Send: write what poll allows.  Returns true when the op is over. */
static bool
send_progress(struct hv_fake *f, struct fop *op)
{
    struct pollfd p = { .fd = op->fd, .events = POLLOUT };

    while (op->pos < op->len && poll(&p, 1, 0) == 1) {
        size_t n = op->len - op->pos < CHUNK ? op->len - op->pos : CHUNK;
        ssize_t r;

        if (!(p.revents & POLLOUT)) {
            make_ready(f, op, XM_ERR_IO);
            return true;
        }
        r = send(op->fd, op->buf + op->pos, n, MSG_NOSIGNAL);
        if (r < 0 && errno == ENOTSOCK)
            r = write(op->fd, op->buf + op->pos, n);
        if (r < 0) {
            if (errno == EINTR || errno == EAGAIN)
                continue;
            if (op->pos < LIBXL_PREFIX_LEN)
                libxl_would_crash("a save's stream", op->pos);
            make_ready(f, op, xm_err_from_errno(errno));
            return true;
        }
        op->pos += (size_t)r;
    }
    return op->pos == op->len;
}

/* Copy the line at buf[*pos] (without its newline) into line_r.
 * 1: got one; 0: not all there yet; XM_ERR_PROTO: too long. */
static int
stream_line(const struct fop *op, size_t *pos, char line_r[STREAM_LINE_MAX])
{
    const char *start = op->buf + *pos;
    size_t avail = op->len - *pos;
    const char *nl = memchr(start, '\n', avail);

    if (!nl)
        return avail >= STREAM_LINE_MAX ? XM_ERR_PROTO : 0;
    if ((size_t)(nl - start) >= STREAM_LINE_MAX)
        return XM_ERR_PROTO;
    memcpy(line_r, start, (size_t)(nl - start));
    line_r[nl - start] = '\0';
    *pos += (size_t)(nl - start) + 1;
    return 1;
}

/*
 * Parse the header received so far.  0: incomplete; 1: complete, and
 * op->want is the whole stream's length; XM_ERR_PROTO: malformed.
 */
static int
parse_header(struct fop *op)
{
    char line[STREAM_LINE_MAX];
    char hex[33];
    uint64_t mem = 0, cur = 0;
    unsigned vcpus = 0, flags = 0;
    size_t clen = 0, zeros = 0, pos = LIBXL_PREFIX_LEN;
    unsigned pattern = 0;
    int r;

    if (op->len < LIBXL_PREFIX_LEN)
        return 0;
    for (int i = 0; i < 8; i++) {
        r = stream_line(op, &pos, line);
        if (r <= 0)
            return r;
        switch (i) {
        case 0:
            r = strcmp(line, STREAM_MAGIC) == 0;
            break;
        case 1:
            r = strncmp(line, "name ", 5) == 0 && line[5]
                && strlen(line + 5) <= XM_DOMNAME_MAX;
            break;
        case 2:
            r = sscanf(line, "uuid %32[0-9a-f]", hex) == 1
                && strlen(hex) == 32;
            break;
        case 3:
            r = sscanf(line, "mem %" SCNu64 " %" SCNu64, &mem, &cur) == 2;
            break;
        case 4:
            r = sscanf(line, "vcpus %u", &vcpus) == 1;
            break;
        case 5:
            r = sscanf(line, "flags %u", &flags) == 1;
            break;
        case 6:
            r = sscanf(line, "zeros %zu %u", &zeros, &pattern) >= 1
                && zeros <= STREAM_ZEROS_MAX && pattern <= 1;
            break;
        case 7:
            r = sscanf(line, "config %zu", &clen) == 1
                && clen <= STREAM_CONFIG_MAX;
            break;
        }
        if (!r)
            return XM_ERR_PROTO;
    }
    for (unsigned i = 0; i < 16; i++) {
        unsigned byte;
        sscanf(hex + 2 * i, "%2x", &byte);
        op->in.uuid[i] = (uint8_t)byte;
    }
    op->in.mem_kib = mem;
    op->in.cur_mem_kib = cur;
    op->in.vcpus = vcpus;
    op->in.flags = flags;
    op->zeros_at = pos;
    op->zeros = zeros;
    op->pattern = pattern;
    op->want = pos + zeros + clen + 5;  /* zeros, config, "\nEND\n" */
    return 1;
}

/* The restored domain, once the stream is whole. */
static int
finish_recv(struct hv_fake *f, struct fop *op)
{
    struct xm_domain d;
    int rc;

    if (memcmp(op->buf + op->len - 5, "\nEND\n", 5) != 0)
        return XM_ERR_PROTO;
    for (size_t i = 0; i < op->zeros; i++)
        if ((uint8_t)op->buf[op->zeros_at + i] !=
            region_byte(i, op->pattern))
            return XM_ERR_PROTO;    /* the guest's memory came damaged */
    rc = fault_check(&f->fault, "migrate_recv_done");
    if (rc)
        return rc;
    if (find_name(f, op->name))
        return XM_ERR_EXISTS;
    memset(&d, 0, sizeof(d));
    memcpy(d.uuid, op->in.uuid, sizeof(d.uuid));
    snprintf(d.name, sizeof(d.name), "%s", op->name);
    d.mem_kib = op->in.mem_kib;
    d.cur_mem_kib = op->in.cur_mem_kib;
    d.vcpus = op->in.vcpus;
    /* What travels with the guest; the rest is this host's view. */
    d.flags = (op->in.flags & (XM_DOM_HVM | XM_DOM_NOMIGRATE |
                               XM_DOM_LOCAL_DISK)) | XM_DOM_PAUSED;
    if (name_is_transient(d.name))
        d.flags |= XM_DOM_TRANSIENT;
    d.domid = pick_domid(f);
    rc = insert_domain(f, &d, op->config);
    if (rc)
        return rc;
    op->config = NULL;          /* the domain owns it */
    if (op->domid_r)
        *op->domid_r = d.domid;
    return XM_OK;
}

/* Receive: read what poll allows, never past the stream's end.  Returns
 * true when the op is over (op->ready then says how). */
static bool
recv_progress(struct hv_fake *f, struct fop *op)
{
    struct pollfd p = { .fd = op->fd, .events = POLLIN };

    while (poll(&p, 1, 0) == 1) {
        size_t n = op->want ? op->want - op->len : 1;
        char *bigger;
        ssize_t r;

        if (!(p.revents & (POLLIN | POLLHUP))) {
            make_ready(f, op, XM_ERR_IO);
            return true;
        }
        bigger = realloc(op->buf, op->len + n + 1);
        if (!bigger) {
            make_ready(f, op, XM_ERR_NOMEM);
            return true;
        }
        op->buf = bigger;
        r = read(op->fd, op->buf + op->len, n);
        if (r < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        if (r <= 0 && op->len < LIBXL_PREFIX_LEN)
            libxl_would_crash(r == 0 ? "a restore's stream (end of file)"
                                     : "a restore's stream (read error)",
                              op->len);
        if (r <= 0) {
            make_ready(f, op, r == 0 ? XM_ERR_IO
                                     : xm_err_from_errno(errno));
            return true;
        }
        op->len += (size_t)r;
        if (op->len == LIBXL_PREFIX_LEN
            && memcmp(op->buf, libxl_prefix, LIBXL_PREFIX_LEN))
            libxl_would_crash("a restore's stream (bad libxl header)",
                              op->len);
        if (!op->want) {
            int pr = parse_header(op);
            if (pr < 0) {
                make_ready(f, op, pr);
                return true;
            }
        }
        if (op->want && op->len == op->want) {
            make_ready(f, op, finish_recv(f, op));
            return true;
        }
    }
    return false;
}

/* Run every operation's I/O, then complete the ready ones in order. */
static void
run_ops(struct hv_fake *f)
{
    for (struct fop *op = f->ops; op; op = op->next) {
        if (op->ready)
            continue;
        if (op->kind == FOP_SEND && send_progress(f, op) && !op->ready)
            make_ready(f, op, fault_check(&f->fault, "migrate_send_done"));
        else if (op->kind == FOP_RECV)
            recv_progress(f, op);
    }
    for (;;) {
        struct fop **pp = &f->ops;
        struct fop *op;

        while (*pp && !(*pp)->ready)
            pp = &(*pp)->next;
        op = *pp;
        if (!op)
            break;
        *pp = op->next;
        if (op->kind == FOP_SEND) {
            struct fdom *dom = find_domid(f, op->domid);
            if (dom) {
                dom->sending = false;
                if (!op->rc)
                    dom->suspended = true;
            }
        }
        if (op->kind == FOP_CREATE && !op->rc)
            op->rc = finish_create(f, op);
        if (op->rc && op->kind != FOP_SEND && op->domid_r)
            *op->domid_r = UINT32_MAX;
        /* Unlinked first: done may start new operations. */
        op->how.done(op->how.arg, op->rc);
        fop_free(op);
    }
}

/* ---- livepatch -------------------------------------------------- */

static int
check_lp_name(const char *name)
{
    if (!name || !name[0])
        return XM_ERR_INVAL;
    if (strnlen(name, XM_LP_NAME_MAX + 1) > XM_LP_NAME_MAX)
        return XM_ERR_TOOBIG;
    return XM_OK;
}

static struct fpayload *
find_lp(struct hv_fake *f, const char *name)
{
    for (size_t i = 0; i < f->n_lps; i++)
        if (strcmp(f->lps[i].st.name, name) == 0)
            return &f->lps[i];
    return NULL;
}

static int
fk_lp_upload(void *ctx, const char *name, const void *payload, size_t len)
{
    struct hv_fake *f = ctx;
    struct fpayload *lps, *p;
    int rc;

    rc = fault_check(&f->fault, "lp_upload");
    if (rc)
        return rc;
    rc = check_lp_name(name);
    if (rc)
        return rc;
    if (!payload || len == 0)
        return XM_ERR_INVAL;
    if (find_lp(f, name))
        return XM_ERR_EXISTS;
    lps = realloc(f->lps, (f->n_lps + 1) * sizeof(*lps));
    if (!lps)
        return XM_ERR_NOMEM;
    f->lps = lps;
    p = &lps[f->n_lps++];
    memset(p, 0, sizeof(*p));
    snprintf(p->st.name, sizeof(p->st.name), "%s", name);
    p->st.state = XM_LP_CHECKED;
    return XM_OK;
}

/* The action's effect on p, now.  May remove p (unload). */
static void
lp_take_effect(struct hv_fake *f, struct fpayload *p,
               enum xm_lp_action action)
{
    int rc = fault_check(&f->fault, "lp_action_result");

    p->pending = false;
    p->st.rc = rc;
    if (rc)
        return;
    switch (action) {
    case XM_LP_APPLY:
        p->st.state = XM_LP_APPLIED;
        break;
    case XM_LP_REVERT:
        p->st.state = XM_LP_CHECKED;
        break;
    case XM_LP_REPLACE:
        for (size_t i = 0; i < f->n_lps; i++)
            if (f->lps[i].st.state == XM_LP_APPLIED) {
                f->lps[i].st.state = XM_LP_CHECKED;
                f->lps[i].st.rc = 0;
            }
        p->st.state = XM_LP_APPLIED;
        break;
    case XM_LP_UNLOAD: {
        size_t at = (size_t)(p - f->lps);
        memmove(&f->lps[at], &f->lps[at + 1],
                (f->n_lps - at - 1) * sizeof(*f->lps));
        f->n_lps--;
        break;
    }
    }
}

/* A status read of p: a deferred action counts down, then lands.
 * Returns false when p went away (an unload landed). */
static bool
lp_observe(struct hv_fake *f, struct fpayload *p)
{
    if (!p->pending)
        return true;
    if (p->countdown > 0) {
        p->countdown--;
        return true;
    }
    lp_take_effect(f, p, p->action);
    return p->action != XM_LP_UNLOAD || p->st.rc != 0;
}

static int
fk_lp_get(void *ctx, const char *name, struct xm_lp_status *st_r)
{
    struct hv_fake *f = ctx;
    struct fpayload *p;
    int rc;

    memset(st_r, 0, sizeof(*st_r));
    rc = fault_check(&f->fault, "lp_get");
    if (rc)
        return rc;
    rc = check_lp_name(name);
    if (rc)
        return rc;
    p = find_lp(f, name);
    if (!p || !lp_observe(f, p))
        return XM_ERR_NOTFOUND;
    *st_r = p->st;
    return XM_OK;
}

static int
fk_lp_list(void *ctx, struct xm_lp_status **list_r, size_t *n_r)
{
    struct hv_fake *f = ctx;
    struct xm_lp_status *list;
    size_t n = 0;
    int rc;

    *list_r = NULL;
    *n_r = 0;
    rc = fault_check(&f->fault, "lp_list");
    if (rc)
        return rc;
    for (size_t i = 0; i < f->n_lps; )
        if (lp_observe(f, &f->lps[i]))
            i++;
    list = calloc(f->n_lps ? f->n_lps : 1, sizeof(*list));
    if (!list)
        return XM_ERR_NOMEM;
    for (size_t i = 0; i < f->n_lps; i++)
        list[n++] = f->lps[i].st;
    *list_r = list;
    *n_r = n;
    return XM_OK;
}

static int
fk_lp_action(void *ctx, const char *name, enum xm_lp_action action,
             uint32_t timeout_ns)
{
    static const char *const verbs[] = {
        [XM_LP_APPLY] = "lp_apply",
        [XM_LP_REVERT] = "lp_revert",
        [XM_LP_REPLACE] = "lp_replace",
        [XM_LP_UNLOAD] = "lp_unload",
    };
    struct hv_fake *f = ctx;
    struct fpayload *p;
    int need;
    int rc;

    (void)timeout_ns;
    if ((unsigned)action > XM_LP_UNLOAD)
        return XM_ERR_INVAL;
    rc = fault_check(&f->fault, "lp_action");
    if (!rc)
        rc = fault_check(&f->fault, verbs[action]);
    if (rc)
        return rc;
    rc = check_lp_name(name);
    if (rc)
        return rc;
    p = find_lp(f, name);
    if (!p)
        return XM_ERR_NOTFOUND;
    for (size_t i = 0; i < f->n_lps; i++)
        if (f->lps[i].pending)
            return XM_ERR_BUSY;     /* one action at a time, as Xen */
    need = action == XM_LP_REVERT ? XM_LP_APPLIED : XM_LP_CHECKED;
    if (p->st.state != need)
        return XM_ERR_STATE;
    /* Xen unloads synchronously; the rest may be deferred. */
    if (f->lp_defer == 0 || action == XM_LP_UNLOAD) {
        lp_take_effect(f, p, action);
        return XM_OK;
    }
    p->pending = true;
    p->action = action;
    p->countdown = f->lp_defer;
    p->st.rc = -EAGAIN;
    return XM_OK;
}

/* ---- event loop ------------------------------------------------- */

static int
fk_beforepoll(void *ctx, struct pollfd *fds, int first, int *nfds_io,
              int *timeout_ms_io)
{
    struct hv_fake *f = ctx;
    int need = 0;
    int n;

    assert(first >= 0 && *nfds_io >= first);
    for (struct fop *op = f->ops; op; op = op->next)
        if (!op->ready)
            need++;
    if (f->wake_armed)
        need++;
    if (*nfds_io - first < need) {
        *nfds_io = first + need;
        return XM_ERR_TOOBIG;
    }
    n = first;
    for (struct fop *op = f->ops; op; op = op->next) {
        if (op->ready)
            continue;
        fds[n].fd = op->fd;
        fds[n].events = op->kind == FOP_SEND ? POLLOUT : POLLIN;
        fds[n].revents = 0;
        n++;
    }
    if (f->wake_armed) {
        fds[n].fd = f->wake[0];
        fds[n].events = POLLIN;
        fds[n].revents = 0;
        n++;
    }
    (void)timeout_ms_io;        /* no timers in the fake */
    *nfds_io = n;
    return XM_OK;
}

static void
fk_afterpoll(void *ctx, struct pollfd *fds, int first, int nfds)
{
    struct hv_fake *f = ctx;
    char buf[16];

    /* Each op polls its own fd again with a zero timeout, so the
     * revents are not needed (and an op started since beforepoll is
     * served too). */
    (void)fds;
    (void)first;
    (void)nfds;
    run_ops(f);
    /* Every ready op was just completed: nothing left to wake for. */
    if (f->wake_armed) {
        while (read(f->wake[0], buf, sizeof(buf)) > 0)
            ;
        f->wake_armed = false;
    }
}

static void
fk_close(void *ctx)
{
    struct hv_fake *f = ctx;

    while (f->ops) {
        struct fop *op = f->ops;
        f->ops = op->next;
        if (op->kind == FOP_SEND) {
            struct fdom *dom = find_domid(f, op->domid);
            if (dom)
                dom->sending = false;
        }
        if (!op->ready)
            op->rc = XM_ERR_CANCELLED;
        if (op->rc && op->kind != FOP_SEND && op->domid_r)
            *op->domid_r = UINT32_MAX;
        op->how.done(op->how.arg, op->rc);
        fop_free(op);
    }
}

static const struct xm_hv_ops hv_fake_ops = {
    .list_domains = fk_list_domains,
    .hostinfo = fk_hostinfo,
    .domain_config = fk_domain_config,
    .rename = fk_rename,
    .pause = fk_pause,
    .unpause = fk_unpause,
    .resume = fk_resume,
    .destroy = fk_destroy,
    .shutdown = fk_shutdown,
    .migrate_send = fk_migrate_send,
    .migrate_recv = fk_migrate_recv,
    .create = fk_create,
    .lp_upload = fk_lp_upload,
    .lp_get = fk_lp_get,
    .lp_list = fk_lp_list,
    .lp_action = fk_lp_action,
    .beforepoll = fk_beforepoll,
    .afterpoll = fk_afterpoll,
    .close = fk_close,
};

int
hv_fake_connect(struct hv_fake *f, struct xm_hv *hv_r)
{
    hv_r->ops = &hv_fake_ops;
    hv_r->ctx = f;
    return XM_OK;
}
