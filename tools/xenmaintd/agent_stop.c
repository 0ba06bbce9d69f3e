/*
 * agent_stop.c -- guests a drain shuts down and the undrain starts again.
 *
 * `xl drain --shutdown-blocked`: a guest that cannot be migrated (PCI
 * passthrough, local disk, no room anywhere) is asked to power itself
 * off, never forced.  Before the request its libxl config is kept in
 * state_dir/stopped/UUID (one small JSON document: name, uuid, config),
 * so the guest can be started again even when no config file exists on
 * this host (it may have arrived by migration).  A guest that does not
 * shut down within the drain's per-guest timeout keeps running: the
 * request is withdrawn and its record dropped.  A shut-down domain is
 * destroyed (its memory freed; it already stopped).
 *
 * `xl undrain` starts every recorded guest again on this host, paused
 * while libxl builds it, then unpaused; the record goes when the guest
 * runs (or was found running already).  A start that fails keeps the
 * record for the next undrain.
 *
 * The drain owns its struct stop array; a start's libxl operation may
 * outlive the drain only when the agent is going away, and then owns
 * its entry (orphan).
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent_int.h"
#include "xm_err.h"
#include "xm_json.h"
#include "xm_log.h"

#define STOPPED_DIR "stopped"
#define STOPPED_MAX 1024
#define RECORD_MAX (1024 * 1024)

static void
stopped_path(const struct agent *a, const uint8_t uuid[16], char *buf,
             size_t len)
{
    char hex[33];

    xm_mig_uuid_hex(uuid, hex);
    snprintf(buf, len, "%s/" STOPPED_DIR "/%s", a->d.cfg->state_dir, hex);
}

struct record_fill {
    const char *name;
    const uint8_t *uuid;
    const char *config;
};

static int
fill_record(FILE *out, void *arg)
{
    const struct record_fill *r = arg;
    struct xm_jgen *g = xm_jgen_new(false);
    const char *text;
    char hex[33];
    size_t len;
    int rc;

    if (!g)
        return XM_ERR_NOMEM;
    xm_mig_uuid_hex(r->uuid, hex);
    xm_jgen_map_open(g);
    xm_jgen_kv_str(g, "name", r->name);
    xm_jgen_kv_str(g, "uuid", hex);
    xm_jgen_key(g, "config");
    xm_jgen_raw(g, r->config, strlen(r->config));
    xm_jgen_map_close(g);
    rc = xm_jgen_finish(g, &text, &len);
    if (!rc && fwrite(text, 1, len, out) != len)
        rc = XM_ERR_IO;
    xm_jgen_free(g);
    return rc;
}

/* Keep dom's config so that the undrain can start it again. */
static int
record_save(struct agent *a, const struct xm_domain *dom)
{
    struct record_fill r = { .name = dom->name, .uuid = dom->uuid };
    char path[600];
    char *config = NULL;
    xm_json *doc = NULL;
    int rc;

    rc = a->d.hv->ops->domain_config(a->d.hv->ctx, dom->domid, &config);
    if (rc)
        return rc;
    /* libxl's JSON goes into ours raw: it must be one valid value */
    if (strlen(config) > RECORD_MAX ||
        xm_json_parse(config, strlen(config), &doc, NULL, 0)) {
        free(config);
        return XM_ERR_INVAL;
    }
    xm_json_free(doc);
    r.config = config;
    snprintf(path, sizeof(path), "%s/" STOPPED_DIR, a->d.cfg->state_dir);
    if (mkdir(path, 0700) != 0 && errno != EEXIST) {
        free(config);
        return xm_err_from_errno(errno);
    }
    stopped_path(a, dom->uuid, path, sizeof(path));
    rc = agent_replace_file(path, fill_record, &r);
    free(config);
    return rc;
}

static void
record_drop(struct agent *a, const uint8_t uuid[16])
{
    char path[600];

    stopped_path(a, uuid, path, sizeof(path));
    if (unlink(path) != 0 && errno != ENOENT)
        xm_log_warn("cannot remove %s: %s", path, strerror(errno));
}

/* One record file; XM_ERR_INVAL when it is not ours or is damaged. */
static int
record_load(const char *path, struct stop *s)
{
    char *buf = NULL;
    const char *name, *uuid;
    const xm_json *config;
    struct xm_jgen *g = NULL;
    xm_json *doc = NULL;
    size_t len = 0;
    FILE *f;
    int rc = XM_ERR_INVAL;

    f = fopen(path, "r");
    if (!f)
        return xm_err_from_errno(errno);
    buf = malloc(RECORD_MAX + 1);
    if (buf)
        len = fread(buf, 1, RECORD_MAX + 1, f);
    fclose(f);
    if (!buf)
        return XM_ERR_NOMEM;
    if (len == 0 || len > RECORD_MAX ||
        xm_json_parse(buf, len, &doc, NULL, 0) ||
        xm_json_get_str(doc, "name", &name) || !xm_mig_name_valid(name) ||
        xm_json_get_str(doc, "uuid", &uuid) ||
        xm_mig_uuid_parse(uuid, s->dom.uuid) ||
        !(config = xm_json_get(doc, "config")) ||
        xm_json_type(config) != XM_JSON_OBJECT)
        goto out;
    snprintf(s->dom.name, sizeof(s->dom.name), "%s", name);
    g = xm_jgen_new(false);
    if (!g) {
        rc = XM_ERR_NOMEM;
        goto out;
    }
    xm_jgen_json(g, config);
    rc = xm_jgen_take(g, &s->config);
out:
    xm_jgen_free(g);
    xm_json_free(doc);
    free(buf);
    return rc;
}

static void
set_state(struct stop *s, const char *state, const char *why)
{
    snprintf(s->state, sizeof(s->state), "%s", state);
    snprintf(s->why, sizeof(s->why), "%s", why ? why : "");
}

bool
stop_finished(const struct stop *s)
{
    return strcmp(s->state, "queued") && strcmp(s->state, "asked") &&
           strcmp(s->state, "starting");
}

struct stop *
stop_new(struct agent *a)
{
    struct stop *s = calloc(1, sizeof(*s));

    if (s) {
        s->a = a;
        set_state(s, "queued", NULL);
    }
    return s;
}

void
stop_free(struct stop *s)
{
    if (!s)
        return;
    if (s->pending) {
        s->orphan = true;       /* the start's callback frees it */
        return;
    }
    free(s->config);
    free(s);
}

/* ---- drain: shut down ---- */

/* Withdraw a poweroff request the guest did not act on. */
static void
withdraw(struct agent *a, uint32_t domid)
{
    char path[XM_XS_PATH_MAX];

    if (xm_xs_path(path, "/local/domain/%u/control/shutdown", domid) ==
        XM_OK)
        a->d.xs->ops->rm(a->d.xs->ctx, XM_XS_NO_TXN, path);
}

void
stop_shutdown(struct stop *s, int64_t now_ms)
{
    struct agent *a = s->a;
    char why[XM_MIG_WHY_MAX];
    int rc;

    rc = record_save(a, &s->dom);
    if (rc) {
        snprintf(why, sizeof(why), "not shut down: cannot keep its "
                 "config for the undrain (%s)", xm_strerror(rc));
        set_state(s, "running", why);
        xm_log_warn("drain: %s: %s", s->dom.name, why);
        return;
    }
    rc = a->d.hv->ops->shutdown(a->d.hv->ctx, s->dom.domid);
    if (rc) {
        record_drop(a, s->dom.uuid);
        snprintf(why, sizeof(why), "%s", rc == XM_ERR_UNSUPPORTED
                 ? "the guest has no PV shutdown support (nothing forced)"
                 : xm_strerror(rc));
        set_state(s, "running", why);
        xm_log_warn("drain: cannot shut %s down: %s", s->dom.name, why);
        return;
    }
    s->t0_ms = now_ms;
    set_state(s, "asked", NULL);
    xm_log_info("drain: %s (domain %u) asked to power off", s->dom.name,
                s->dom.domid);
}

/* s's domain in doms, the same uuid and domid, or NULL. */
static const struct xm_domain *
find_dom(const struct xm_domain *doms, size_t n, const uint8_t uuid[16],
         uint32_t domid)
{
    for (size_t i = 0; i < n; i++)
        if (doms[i].domid == domid && !memcmp(doms[i].uuid, uuid, 16))
            return &doms[i];
    return NULL;
}

void
stops_poll(struct agent *a, struct stop **v, size_t n, unsigned timeout_s,
           int64_t now_ms)
{
    struct xm_domain *doms = NULL;
    size_t n_doms = 0;
    bool any = false;

    for (size_t i = 0; i < n; i++)
        any = any || !strcmp(v[i]->state, "asked");
    if (!any || a->d.hv->ops->list_domains(a->d.hv->ctx, &doms, &n_doms))
        return;
    for (size_t i = 0; i < n; i++) {
        struct stop *s = v[i];
        const struct xm_domain *d;
        char why[XM_MIG_WHY_MAX];
        int rc;

        if (strcmp(s->state, "asked"))
            continue;
        d = find_dom(doms, n_doms, s->dom.uuid, s->dom.domid);
        if (!d || (d->flags & XM_DOM_DYING)) {
            rc = d ? a->d.hv->ops->destroy(a->d.hv->ctx, d->domid) : XM_OK;
            if (rc && rc != XM_ERR_NOTFOUND)
                xm_log_warn("drain: %s shut down; destroying its domain "
                            "failed: %s", s->dom.name, xm_strerror(rc));
            set_state(s, "shut-down", NULL);
            xm_log_info("drain: %s shut down (xl undrain starts it "
                        "again)", s->dom.name);
        } else if (now_ms - s->t0_ms >= (int64_t)timeout_s * 1000) {
            withdraw(a, s->dom.domid);
            record_drop(a, s->dom.uuid);
            snprintf(why, sizeof(why), "did not shut down within %u s "
                     "(still running here)", timeout_s);
            set_state(s, "running", why);
            xm_log_warn("drain: %s %s", s->dom.name, why);
        }
    }
    free(doms);
}

/* ---- undrain: start again ---- */

int
stops_load(struct agent *a, struct stop ***v_r, size_t *n_r)
{
    char path[600];
    struct stop **v = NULL;
    struct dirent *e;
    size_t n = 0;
    DIR *dir;
    int rc = XM_OK;

    *v_r = NULL;
    *n_r = 0;
    snprintf(path, sizeof(path), "%s/" STOPPED_DIR, a->d.cfg->state_dir);
    dir = opendir(path);
    if (!dir)
        return errno == ENOENT ? XM_OK : xm_err_from_errno(errno);
    while (n < STOPPED_MAX && (e = readdir(dir))) {
        uint8_t uuid[16];
        struct stop *s, **grown;
        char file[1024];

        if (xm_mig_uuid_parse(e->d_name, uuid))
            continue;           /* ".", "..", a temporary file */
        s = stop_new(a);
        grown = s ? realloc(v, (n + 1) * sizeof(*v)) : NULL;
        if (!grown) {
            stop_free(s);
            rc = XM_ERR_NOMEM;
            break;
        }
        v = grown;
        snprintf(file, sizeof(file), "%s/%s", path, e->d_name);
        rc = record_load(file, s);
        if (rc || memcmp(s->dom.uuid, uuid, 16)) {
            xm_log_warn("%s: not a record of a stopped guest, skipped "
                        "(%s)", file, rc ? xm_strerror(rc)
                                         : "its uuid is not its name");
            stop_free(s);
            rc = XM_OK;
            continue;
        }
        v[n++] = s;
    }
    closedir(dir);
    if (rc) {
        for (size_t i = 0; i < n; i++)
            stop_free(v[i]);
        free(v);
        return rc;
    }
    *v_r = v;
    *n_r = n;
    return XM_OK;
}

/* The start failed: the record stays for the next undrain. */
static void
start_failed(struct stop *s, int rc)
{
    char why[XM_MIG_WHY_MAX];

    snprintf(why, sizeof(why), "cannot start it: %s (kept for the next "
             "undrain)", xm_strerror(rc));
    set_state(s, "failed", why);
    xm_log_warn("undrain: %s: %s", s->dom.name, why);
}

static void
start_done(void *arg, int rc)
{
    struct stop *s = arg;
    struct agent *a = s->a;

    s->pending = false;
    if (s->orphan) {
        stop_free(s);
        return;
    }
    if (!rc)
        rc = a->d.hv->ops->unpause(a->d.hv->ctx, s->new_domid);
    if (rc) {
        if (s->new_domid != UINT32_MAX && s->new_domid != 0)
            a->d.hv->ops->destroy(a->d.hv->ctx, s->new_domid);
        start_failed(s, rc);
        return;
    }
    record_drop(a, s->dom.uuid);
    set_state(s, "running", NULL);
    xm_log_info("undrain: %s started again (domain %u)", s->dom.name,
                s->new_domid);
}

void
stop_start(struct stop *s)
{
    struct agent *a = s->a;
    struct xm_hv_async how = { .done = start_done, .arg = s };
    struct xm_domain *doms = NULL;
    size_t n = 0;
    int rc;

    rc = a->d.hv->ops->list_domains(a->d.hv->ctx, &doms, &n);
    for (size_t i = 0; !rc && i < n; i++) {
        bool same = !memcmp(doms[i].uuid, s->dom.uuid, 16) ||
                    !strcmp(doms[i].name, s->dom.name);

        if (!same)
            continue;
        if (!(doms[i].flags & XM_DOM_DYING)) {
            /* started by hand meanwhile, or never shut down */
            free(doms);
            record_drop(a, s->dom.uuid);
            set_state(s, "running", "already running");
            return;
        }
        /* the shell of its shutdown (an agent restarted before it
         * destroyed it): gone first, so the name is free */
        rc = a->d.hv->ops->destroy(a->d.hv->ctx, doms[i].domid);
        if (rc == XM_ERR_NOTFOUND)
            rc = XM_OK;
    }
    free(doms);
    s->new_domid = UINT32_MAX;
    if (!rc)
        rc = a->d.hv->ops->create(a->d.hv->ctx, s->config, s->dom.name,
                                  &s->new_domid, &how);
    if (rc) {
        start_failed(s, rc);
        return;
    }
    s->pending = true;
    set_state(s, "starting", NULL);
}
