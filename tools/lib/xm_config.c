/*
 * xm_config.c -- load and validate the agent's configuration with
 * libxlutil (see xm_config.h).
 *
 * libxlutil writes its own diagnostics, with file and line, to a FILE we
 * give it; that FILE is a memory stream here so the first diagnostic can
 * be returned to the caller instead of being printed.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "xm_libxl_compat.h"
#include <libxlutil.h>

#include "xm_compress.h"
#include "xm_config.h"
#include "xm_err.h"

#ifndef XM_LOCALSTATEDIR
#define XM_LOCALSTATEDIR "/var"
#endif

struct loader {
    XLU_Config *xlu;
    FILE *report;
    char *report_buf;
    size_t report_len;
    const char *name;
    char *err;
    size_t errlen;
};

static int
fail(struct loader *l, int rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int
fail(struct loader *l, int rc, const char *fmt, ...)
{
    va_list ap;
    int n;

    if (!l->err || !l->errlen)
        return rc;
    n = snprintf(l->err, l->errlen, "%s: ", l->name);
    if (n < 0 || (size_t)n >= l->errlen)
        return rc;
    va_start(ap, fmt);
    vsnprintf(l->err + n, l->errlen - n, fmt, ap);
    va_end(ap);
    return rc;
}

/* The first line libxlutil reported, if any (it names file and line). */
static int
fail_report(struct loader *l, int rc, const char *fallback)
{
    char *nl;

    fflush(l->report);
    if (l->report_buf && l->report_len > 0) {
        nl = strchr(l->report_buf, '\n');
        if (nl)
            *nl = '\0';
        snprintf(l->err, l->errlen, "%s", l->report_buf);
        return rc;
    }
    return fail(l, rc, "%s", fallback);
}

int
xm_config_valid_name(const char *s)
{
    size_t n = 0;

    if (!s)
        return 0;
    for (; s[n]; n++) {
        char c = s[n];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-'))
            return 0;
        if (n >= XM_HOSTNAME_MAX)
            return 0;
    }
    return n > 0;
}

static int
valid_address(const char *s)
{
    size_t n = strlen(s);

    if (n == 0 || n > XM_ADDRESS_MAX)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              (c >= '0' && c <= '9') || c == '.' || c == '-' || c == ':'))
            return 0;
    }
    return 1;
}

void
xm_config_init(struct xm_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    snprintf(cfg->listen_address, sizeof(cfg->listen_address), "0.0.0.0");
    cfg->listen_port = XM_DEFAULT_PORT;
    cfg->max_parallel = 2;
    cfg->migrate_timeout_s = 600;
    cfg->notice_s = 0;
    cfg->jobs_kept = 32;
    snprintf(cfg->compress, sizeof(cfg->compress), "auto");
}

void
xm_config_dispose(struct xm_config *cfg)
{
    free(cfg->peers);
    free(cfg->tls_ca);
    free(cfg->tls_cert);
    free(cfg->tls_key);
    free(cfg->state_dir);
    memset(cfg, 0, sizeof(*cfg));
}

const struct xm_peer_cfg *
xm_config_peer(const struct xm_config *cfg, const char *name)
{
    for (unsigned i = 0; i < cfg->n_peers; i++)
        if (strcmp(cfg->peers[i].name, name) == 0)
            return &cfg->peers[i];
    return NULL;
}

/* Optional string setting: XM_OK with *value_r NULL when absent. */
static int
get_string(struct loader *l, const char *key, const char **value_r)
{
    int r = xlu_cfg_get_string(l->xlu, key, value_r, 0);

    if (r == ESRCH) {
        *value_r = NULL;
        return XM_OK;
    }
    if (r)
        return fail_report(l, XM_ERR_CONFIG, "bad string setting");
    return XM_OK;
}

static int
get_uint(struct loader *l, const char *key, long min, long max,
         unsigned *value_r)
{
    long v;
    int r = xlu_cfg_get_bounded_long(l->xlu, key, min, max, &v, 0);

    if (r == ESRCH)
        return XM_OK;           /* keep the default */
    if (r)
        return fail_report(l, XM_ERR_CONFIG, "bad number");
    *value_r = (unsigned)v;
    return XM_OK;
}

static int
dup_path(struct loader *l, const char *key, const char *value, char **out)
{
    if (!value)
        return XM_OK;
    if (value[0] != '/')
        return fail(l, XM_ERR_CONFIG, "%s: '%s' is not an absolute path",
                    key, value);
    *out = strdup(value);
    return *out ? XM_OK : XM_ERR_NOMEM;
}

/* "NAME=ADDRESS:PORT"; ADDRESS may be [v6]. */
static int
parse_peer(struct loader *l, unsigned idx, const char *spec,
           struct xm_peer_cfg *peer)
{
    const char *eq = strchr(spec, '=');
    const char *addr, *colon;
    char *end;
    unsigned long port;
    size_t alen;

    if (!eq || eq == spec || (size_t)(eq - spec) > XM_HOSTNAME_MAX)
        goto bad;
    memcpy(peer->name, spec, eq - spec);
    peer->name[eq - spec] = '\0';
    if (!xm_config_valid_name(peer->name))
        goto bad;
    addr = eq + 1;
    colon = strrchr(addr, ':');
    if (!colon)
        goto bad;
    alen = colon - addr;
    if (alen >= 2 && addr[0] == '[' && addr[alen - 1] == ']') {
        addr++;
        alen -= 2;
    }
    if (alen == 0 || alen > XM_ADDRESS_MAX)
        goto bad;
    memcpy(peer->address, addr, alen);
    peer->address[alen] = '\0';
    if (!valid_address(peer->address))
        goto bad;
    errno = 0;
    port = strtoul(colon + 1, &end, 10);
    if (errno || *end || colon[1] == '\0' || port == 0 || port > 65535)
        goto bad;
    peer->port = (uint16_t)port;
    return XM_OK;
bad:
    return fail(l, XM_ERR_CONFIG,
                "peers[%u]: '%s' is not NAME=ADDRESS:PORT", idx, spec);
}

static int
load_peers(struct loader *l, struct xm_config *cfg)
{
    XLU_ConfigList *list = NULL;
    int n = 0, r, rc;

    r = xlu_cfg_get_list(l->xlu, "peers", &list, &n, 0);
    if (r == ESRCH)
        return XM_OK;
    if (r)
        return fail_report(l, XM_ERR_CONFIG, "peers: not a list");
    if (n > XM_PEERS_MAX)
        return fail(l, XM_ERR_CONFIG, "peers: %d entries, at most %d",
                    n, XM_PEERS_MAX);
    if (n == 0)
        return XM_OK;
    cfg->peers = calloc(n, sizeof(*cfg->peers));
    if (!cfg->peers)
        return XM_ERR_NOMEM;
    for (int i = 0; i < n; i++) {
        const char *spec = xlu_cfg_get_listitem(list, i);
        if (!spec)
            return fail(l, XM_ERR_CONFIG, "peers[%d]: not a string", i);
        rc = parse_peer(l, i, spec, &cfg->peers[i]);
        if (rc)
            return rc;
        if (strcmp(cfg->peers[i].name, cfg->host_name) == 0)
            return fail(l, XM_ERR_CONFIG,
                        "peers[%d]: '%s' is this host's own name", i,
                        cfg->peers[i].name);
        for (int j = 0; j < i; j++)
            if (strcmp(cfg->peers[j].name, cfg->peers[i].name) == 0)
                return fail(l, XM_ERR_CONFIG,
                            "peers[%d]: '%s' is listed twice", i,
                            cfg->peers[i].name);
        cfg->n_peers = i + 1;
    }
    return XM_OK;
}

static int
load_settings(struct loader *l, struct xm_config *cfg)
{
    const char *s;
    unsigned port = cfg->listen_port;
    int rc;

    rc = get_string(l, "host_name", &s);
    if (rc)
        return rc;
    if (s) {
        if (!xm_config_valid_name(s))
            return fail(l, XM_ERR_CONFIG, "host_name: '%s' is not a valid "
                        "host name ([A-Za-z0-9._-], 1 to 63)", s);
        snprintf(cfg->host_name, sizeof(cfg->host_name), "%s", s);
    } else {
        char buf[256] = "";
        char *dot;
        if (gethostname(buf, sizeof(buf) - 1) != 0)
            return fail(l, XM_ERR_CONFIG, "host_name: not set and "
                        "gethostname failed");
        dot = strchr(buf, '.');
        if (dot)
            *dot = '\0';
        if (!xm_config_valid_name(buf))
            return fail(l, XM_ERR_CONFIG, "host_name: not set and the "
                        "system host name '%s' is not usable", buf);
        snprintf(cfg->host_name, sizeof(cfg->host_name), "%.63s", buf);
    }

    rc = get_string(l, "listen_address", &s);
    if (rc)
        return rc;
    if (s) {
        if (!valid_address(s))
            return fail(l, XM_ERR_CONFIG, "listen_address: '%s' is not an "
                        "address", s);
        snprintf(cfg->listen_address, sizeof(cfg->listen_address), "%s", s);
    }
    rc = get_uint(l, "listen_port", 1, 65535, &port);
    if (rc)
        return rc;
    cfg->listen_port = (uint16_t)port;

    rc = load_peers(l, cfg);
    if (rc)
        return rc;

    if ((rc = get_string(l, "tls_ca", &s)) ||
        (rc = dup_path(l, "tls_ca", s, &cfg->tls_ca)) ||
        (rc = get_string(l, "tls_cert", &s)) ||
        (rc = dup_path(l, "tls_cert", s, &cfg->tls_cert)) ||
        (rc = get_string(l, "tls_key", &s)) ||
        (rc = dup_path(l, "tls_key", s, &cfg->tls_key)))
        return rc;
    if ((cfg->tls_ca || cfg->tls_cert || cfg->tls_key) &&
        !(cfg->tls_ca && cfg->tls_cert && cfg->tls_key))
        return fail(l, XM_ERR_CONFIG, "tls_ca, tls_cert and tls_key go "
                    "together: set all three or none");

    rc = get_string(l, "state_dir", &s);
    if (rc)
        return rc;
    rc = dup_path(l, "state_dir", s ? s : XM_LOCALSTATEDIR "/lib/xenmaint",
                  &cfg->state_dir);
    if (rc)
        return rc;

    if ((rc = get_uint(l, "max_parallel", 1, 64, &cfg->max_parallel)) ||
        (rc = get_uint(l, "migrate_timeout", 10, 86400,
                       &cfg->migrate_timeout_s)) ||
        (rc = get_uint(l, "notice", 0, 86400, &cfg->notice_s)) ||
        (rc = get_uint(l, "jobs_kept", 1, 1024, &cfg->jobs_kept)))
        return rc;

    rc = get_string(l, "compress", &s);
    if (rc)
        return rc;
    if (s) {
        struct xm_comp_spec spec;
        char why[160];

        if (strlen(s) > XM_COMPRESS_SPEC_MAX ||
            xm_comp_spec_parse(s, &spec, why, sizeof(why)) != XM_OK)
            return fail(l, XM_ERR_CONFIG, "compress: %s",
                        strlen(s) > XM_COMPRESS_SPEC_MAX
                        ? "longer than 31 characters" : why);
        snprintf(cfg->compress, sizeof(cfg->compress), "%s", s);
    }
    return XM_OK;
}

static int
load(const char *name, const char *path, const char *data, size_t len,
     struct xm_config *cfg_r, char *err_r, size_t errlen)
{
    struct loader l = { .name = name, .err = err_r, .errlen = errlen };
    int r, rc;

    if (err_r && errlen)
        err_r[0] = '\0';
    xm_config_init(cfg_r);
    l.report = open_memstream(&l.report_buf, &l.report_len);
    if (!l.report)
        return XM_ERR_NOMEM;
    l.xlu = xlu_cfg_init(l.report, name);
    if (!l.xlu) {
        rc = XM_ERR_NOMEM;
        goto out;
    }
    if (path) {
        r = xlu_cfg_readfile(l.xlu, path);
        if (r == ENOENT || r == EACCES) {
            rc = fail(&l, XM_ERR_CONFIG, "cannot read: %s", strerror(r));
            goto out;
        }
    } else {
        if (len > 1024 * 1024) {
            rc = fail(&l, XM_ERR_TOOBIG, "larger than 1 MiB");
            goto out;
        }
        r = xlu_cfg_readdata(l.xlu, data, (int)len);
    }
    if (r) {
        rc = fail_report(&l, XM_ERR_CONFIG, "syntax error");
        goto out;
    }
    rc = load_settings(&l, cfg_r);
out:
    if (l.xlu)
        xlu_cfg_destroy(l.xlu);
    fclose(l.report);
    free(l.report_buf);
    if (rc)
        xm_config_dispose(cfg_r);
    return rc;
}

int
xm_config_load_file(const char *path, struct xm_config *cfg_r,
                    char *err_r, size_t errlen)
{
    return load(path, path, NULL, 0, cfg_r, err_r, errlen);
}

int
xm_config_load_data(const char *name, const char *data, size_t len,
                    struct xm_config *cfg_r, char *err_r, size_t errlen)
{
    return load(name, NULL, data, len, cfg_r, err_r, errlen);
}
