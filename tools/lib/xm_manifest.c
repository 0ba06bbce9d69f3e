/*
 * xm_manifest.c -- XSA manifests and the decision to livepatch.
 *
 * A manifest is hostile input like any file: every field has one type,
 * unknown and repeated keys are refused, payload paths may not leave the
 * manifest's directory, hex is checked, payload names follow
 * xm_lp_name_check and are unique.  read_file() is the only I/O;
 * everything else is pure over plain structs.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <openssl/evp.h>
#include <regex.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "xm_err.h"
#include "xm_json.h"
#include "xm_manifest.h"

#define HEXLEN (2 * XM_BUILDID_MAX + 1)
#define TEXT_MAX 4096               /* title, verify command and regex */

__attribute__((format(printf, 4, 5)))
static int
fail(char *err_r, size_t errlen, int rc, const char *fmt, ...)
{
    va_list ap;

    if (err_r && errlen) {
        va_start(ap, fmt);
        vsnprintf(err_r, errlen, fmt, ap);
        va_end(ap);
    }
    return rc;
}

void
xm_manifest_init(struct xm_manifest *m)
{
    memset(m, 0, sizeof(*m));
}

void
xm_manifest_dispose(struct xm_manifest *m)
{
    if (!m)
        return;
    for (size_t i = 0; i < m->npayloads; i++) {
        free(m->payloads[i].file);
        free(m->payloads[i].xen_build_ids);
    }
    free(m->payloads);
    free(m->dir);
    free(m->title);
    free(m->verify_command);
    free(m->verify_expect);
    xm_manifest_init(m);
}

/* ---- reading ----------------------------------------------------- */

/* The whole file, at most XM_MANIFEST_MAX_BYTES, NUL-terminated. */
static int
read_file(const char *path, char **text_r, size_t *len_r, char *err_r,
          size_t errlen)
{
    int fd = -1, rc;
    char *buf = NULL;
    size_t len = 0;
    ssize_t r;

    *text_r = NULL;
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        rc = fail(err_r, errlen, xm_err_from_errno(errno), "%s: %s", path,
                  strerror(errno));
        goto out;
    }
    buf = malloc(XM_MANIFEST_MAX_BYTES + 1);
    if (!buf) {
        rc = fail(err_r, errlen, XM_ERR_NOMEM, "out of memory");
        goto out;
    }
    for (;;) {
        r = read(fd, buf + len, XM_MANIFEST_MAX_BYTES + 1 - len);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            rc = fail(err_r, errlen, XM_ERR_IO, "%s: %s", path,
                      strerror(errno));
            goto out;
        }
        if (r == 0)
            break;
        len += (size_t)r;
        if (len > XM_MANIFEST_MAX_BYTES) {
            rc = fail(err_r, errlen, XM_ERR_TOOBIG,
                      "%s: larger than %d bytes", path,
                      XM_MANIFEST_MAX_BYTES);
            goto out;
        }
    }
    buf[len] = '\0';
    *text_r = buf;
    buf = NULL;                     /* the caller owns it */
    *len_r = len;
    rc = XM_OK;

out:
    if (fd >= 0)
        close(fd);
    free(buf);
    return rc;
}

/* ---- validation helpers ------------------------------------------ */

/* Every key of obj is one of allowed (NULL-terminated), once. */
static int
check_keys(const xm_json *obj, const char *where,
           const char *const *allowed, char *err_r, size_t errlen)
{
    size_t n = xm_json_len(obj);

    for (size_t i = 0; i < n; i++) {
        const char *k = xm_json_key_at(obj, i);
        bool known = false;

        for (size_t a = 0; allowed[a] && !known; a++)
            known = !strcmp(k, allowed[a]);
        if (!known)
            return fail(err_r, errlen, XM_ERR_INVAL,
                        "%s: unknown field \"%s\"", where, k);
        for (size_t j = 0; j < i; j++)
            if (!strcmp(k, xm_json_key_at(obj, j)))
                return fail(err_r, errlen, XM_ERR_INVAL,
                            "%s: field \"%s\" given twice", where, k);
    }
    return XM_OK;
}

/* A required string field (optional when s_r may stay NULL: opt). */
static int
get_text(const xm_json *obj, const char *where, const char *key, bool opt,
         size_t max, const char **s_r, char *err_r, size_t errlen)
{
    int rc = xm_json_get_str(obj, key, s_r);

    if (rc == XM_ERR_NOTFOUND && opt) {
        *s_r = NULL;
        return XM_OK;
    }
    if (rc == XM_ERR_NOTFOUND)
        return fail(err_r, errlen, XM_ERR_INVAL, "%s: \"%s\" is missing",
                    where, key);
    if (rc)
        return fail(err_r, errlen, XM_ERR_INVAL,
                    "%s: \"%s\" must be a string", where, key);
    if (!(*s_r)[0] || strnlen(*s_r, max + 1) > max)
        return fail(err_r, errlen, XM_ERR_INVAL,
                    "%s: \"%s\" must have 1 to %zu bytes", where, key, max);
    for (const char *p = *s_r; *p; p++)
        if ((unsigned char)*p < ' ' || *p == 0x7f)
            return fail(err_r, errlen, XM_ERR_INVAL,
                        "%s: \"%s\" holds a control character", where,
                        key);
    return XM_OK;
}

static int
dup_text(const char *s, char **copy_r, char *err_r, size_t errlen)
{
    *copy_r = strdup(s);
    return *copy_r ? XM_OK : fail(err_r, errlen, XM_ERR_NOMEM,
                                  "out of memory");
}

static int
get_buildid(const xm_json *v, const char *where, const char *key,
            struct xm_buildid *id_r, char *err_r, size_t errlen)
{
    const char *s;

    if (xm_json_as_str(v, &s) || xm_buildid_parse(s, id_r))
        return fail(err_r, errlen, XM_ERR_INVAL,
                    "%s: \"%s\" must be a build-id in hex (2 to %d even "
                    "hex digits)", where, key, 2 * XM_BUILDID_MAX);
    return XM_OK;
}

/*
 * A payload file: relative, no "..", no empty name, within PATH_MAX
 * once joined to the manifest's directory.
 */
static int
check_file(const char *file, const char *dir, const char *where,
           char *err_r, size_t errlen)
{
    const char *p = file;

    if (file[0] == '/')
        return fail(err_r, errlen, XM_ERR_INVAL,
                    "%s: \"file\" must be relative to the manifest", where);
    if (strlen(dir) + 1 + strlen(file) >= PATH_MAX)
        return fail(err_r, errlen, XM_ERR_INVAL,
                    "%s: \"file\" is longer than PATH_MAX", where);
    while (*p) {
        size_t n = strcspn(p, "/");

        if (n == 0 || (n == 2 && !strncmp(p, "..", 2)))
            return fail(err_r, errlen, XM_ERR_INVAL,
                        "%s: \"file\" must stay below the manifest's "
                        "directory (no \"..\", no empty component)", where);
        p += n;
        if (*p == '/' && !p[1])
            return fail(err_r, errlen, XM_ERR_INVAL,
                        "%s: \"file\" names a directory", where);
        if (*p == '/')
            p++;
    }
    return XM_OK;
}

static int
parse_sha256(const char *hex, uint8_t out[XM_SHA256_LEN])
{
    struct xm_buildid id;

    if (strnlen(hex, 2 * XM_SHA256_LEN + 1) != 2 * XM_SHA256_LEN ||
        xm_buildid_parse(hex, &id) || id.len != XM_SHA256_LEN)
        return XM_ERR_INVAL;
    memcpy(out, id.id, XM_SHA256_LEN);
    return XM_OK;
}

static int
parse_build_ids(const xm_json *arr, const char *where,
                struct xm_manifest_payload *p, char *err_r, size_t errlen)
{
    size_t n = xm_json_len(arr);

    if (!arr || xm_json_type(arr) != XM_JSON_ARRAY)
        return fail(err_r, errlen, XM_ERR_INVAL,
                    "%s: \"xen_build_ids\" must be an array", where);
    if (n == 0 || n > XM_MANIFEST_MAX_BUILDS)
        return fail(err_r, errlen, XM_ERR_INVAL,
                    "%s: \"xen_build_ids\" must list 1 to %d build-ids",
                    where, XM_MANIFEST_MAX_BUILDS);
    p->xen_build_ids = calloc(n, sizeof(*p->xen_build_ids));
    if (!p->xen_build_ids)
        return fail(err_r, errlen, XM_ERR_NOMEM, "out of memory");
    p->nxen_build_ids = n;
    for (size_t i = 0; i < n; i++) {
        int rc = get_buildid(xm_json_at(arr, i), where, "xen_build_ids",
                             &p->xen_build_ids[i], err_r, errlen);

        if (rc)
            return rc;
        for (size_t j = 0; j < i; j++)
            if (xm_buildid_equal(&p->xen_build_ids[j],
                                 &p->xen_build_ids[i]))
                return fail(err_r, errlen, XM_ERR_INVAL,
                            "%s: \"xen_build_ids\" lists an id twice",
                            where);
    }
    return XM_OK;
}

static int
parse_payload(const xm_json *v, size_t idx, const char *dir,
              struct xm_manifest_payload *p, char *err_r, size_t errlen)
{
    static const char *const keys[] = { "name", "file", "sha256",
        "xen_build_ids", "depends", "build_id", "replace", NULL };
    char where[32];
    const char *s;
    const xm_json *f;
    char why[160];
    int rc;

    snprintf(where, sizeof(where), "payloads[%zu]", idx);
    if (xm_json_type(v) != XM_JSON_OBJECT)
        return fail(err_r, errlen, XM_ERR_INVAL, "%s must be an object",
                    where);
    rc = check_keys(v, where, keys, err_r, errlen);
    if (rc)
        return rc;

    rc = get_text(v, where, "name", false, XM_LP_NAME_MAX, &s, err_r,
                  errlen);
    if (rc)
        return rc;
    if (xm_lp_name_check(s, 0, why, sizeof(why)))
        return fail(err_r, errlen, XM_ERR_INVAL, "%s: \"name\": %s", where,
                    why);
    memcpy(p->name, s, strlen(s) + 1);

    rc = get_text(v, where, "file", false, PATH_MAX, &s, err_r, errlen);
    if (!rc)
        rc = check_file(s, dir, where, err_r, errlen);
    if (!rc)
        rc = dup_text(s, &p->file, err_r, errlen);
    if (rc)
        return rc;

    rc = get_text(v, where, "sha256", false, 2 * XM_SHA256_LEN, &s, err_r,
                  errlen);
    if (!rc && parse_sha256(s, p->sha256))
        rc = fail(err_r, errlen, XM_ERR_INVAL,
                  "%s: \"sha256\" must be 64 hex digits", where);
    if (rc)
        return rc;

    f = xm_json_get(v, "xen_build_ids");
    if (!f)
        return fail(err_r, errlen, XM_ERR_INVAL,
                    "%s: \"xen_build_ids\" is missing", where);
    rc = parse_build_ids(f, where, p, err_r, errlen);
    if (rc)
        return rc;

    f = xm_json_get(v, "depends");
    if (f && xm_json_type(f) != XM_JSON_NULL) {
        rc = get_buildid(f, where, "depends", &p->depends, err_r, errlen);
        if (rc)
            return rc;
    }
    f = xm_json_get(v, "build_id");
    if (f) {
        rc = get_buildid(f, where, "build_id", &p->build_id, err_r,
                         errlen);
        if (rc)
            return rc;
    }
    rc = xm_json_get_bool(v, "replace", &p->replace);
    if (rc == XM_ERR_NOTFOUND)
        p->replace = false;
    else if (rc)
        return fail(err_r, errlen, XM_ERR_INVAL,
                    "%s: \"replace\" must be true or false", where);
    if (p->replace && p->depends.len)
        return fail(err_r, errlen, XM_ERR_INVAL,
                    "%s: a replacement stacks on the hypervisor: "
                    "\"depends\" must be null", where);
    return XM_OK;
}

static int
parse_payloads(const xm_json *arr, const char *dir, struct xm_manifest *m,
               char *err_r, size_t errlen)
{
    size_t n = xm_json_len(arr);

    if (!arr)
        return fail(err_r, errlen, XM_ERR_INVAL, "\"payloads\" is missing");
    if (xm_json_type(arr) != XM_JSON_ARRAY)
        return fail(err_r, errlen, XM_ERR_INVAL,
                    "\"payloads\" must be an array");
    if (n > XM_MANIFEST_MAX_PAYLOADS)
        return fail(err_r, errlen, XM_ERR_INVAL,
                    "more than %d payloads", XM_MANIFEST_MAX_PAYLOADS);
    if (n == 0)
        return XM_OK;
    m->payloads = calloc(n, sizeof(*m->payloads));
    if (!m->payloads)
        return fail(err_r, errlen, XM_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) {
        int rc;

        m->npayloads = i + 1;       /* dispose frees what is filled */
        rc = parse_payload(xm_json_at(arr, i), i, dir, &m->payloads[i],
                           err_r, errlen);
        if (rc)
            return rc;
        for (size_t j = 0; j < i; j++)
            if (!strcmp(m->payloads[j].name, m->payloads[i].name))
                return fail(err_r, errlen, XM_ERR_INVAL,
                            "payloads[%zu]: name \"%s\" is already used "
                            "by payloads[%zu]", i, m->payloads[i].name, j);
    }
    return XM_OK;
}

static int
parse_verify(const xm_json *v, struct xm_manifest *m, char *err_r,
             size_t errlen)
{
    static const char *const keys[] = { "command", "expect", NULL };
    const char *cmd, *expect;
    regex_t re;
    int r, rc;

    if (xm_json_type(v) != XM_JSON_OBJECT)
        return fail(err_r, errlen, XM_ERR_INVAL,
                    "\"verify\" must be an object");
    rc = check_keys(v, "verify", keys, err_r, errlen);
    if (!rc)
        rc = get_text(v, "verify", "command", false, TEXT_MAX, &cmd, err_r,
                      errlen);
    if (!rc)
        rc = get_text(v, "verify", "expect", false, TEXT_MAX, &expect,
                      err_r, errlen);
    if (rc)
        return rc;
    r = regcomp(&re, expect, REG_EXTENDED | REG_NOSUB);
    if (r != 0)
        return fail(err_r, errlen, XM_ERR_INVAL,
                    "verify: \"expect\" is not a valid extended regex");
    regfree(&re);
    rc = dup_text(cmd, &m->verify_command, err_r, errlen);
    if (!rc)
        rc = dup_text(expect, &m->verify_expect, err_r, errlen);
    return rc;
}

static int
parse_doc(const xm_json *doc, const char *dir, struct xm_manifest *m,
          char *err_r, size_t errlen)
{
    static const char *const keys[] = { "version", "xsa", "title",
        "payloads", "no_payload", "verify", NULL };
    const xm_json *v;
    const char *s;
    uint64_t version;
    size_t n;
    int rc;

    if (xm_json_type(doc) != XM_JSON_OBJECT)
        return fail(err_r, errlen, XM_ERR_INVAL,
                    "a manifest is a JSON object");
    rc = check_keys(doc, "manifest", keys, err_r, errlen);
    if (rc)
        return rc;

    rc = xm_json_get_uint(doc, "version", &version);
    if (rc == XM_ERR_NOTFOUND)
        return fail(err_r, errlen, XM_ERR_INVAL, "\"version\" is missing");
    if (rc || version != XM_MANIFEST_VERSION)
        return fail(err_r, errlen, XM_ERR_INVAL,
                    "\"version\" must be the number %d",
                    XM_MANIFEST_VERSION);

    rc = get_text(doc, "manifest", "xsa", false, XM_XSA_MAX, &s, err_r,
                  errlen);
    if (rc)
        return rc;
    n = strlen(s);
    if (n < 5 || strncmp(s, "XSA-", 4) || strspn(s + 4, "0123456789") !=
        n - 4)
        return fail(err_r, errlen, XM_ERR_INVAL,
                    "\"xsa\" must look like XSA-123");
    memcpy(m->xsa, s, n + 1);

    rc = get_text(doc, "manifest", "title", false, TEXT_MAX, &s, err_r,
                  errlen);
    if (!rc)
        rc = dup_text(s, &m->title, err_r, errlen);
    if (rc)
        return rc;

    rc = parse_payloads(xm_json_get(doc, "payloads"), dir, m, err_r,
                        errlen);
    if (rc)
        return rc;

    rc = get_text(doc, "manifest", "no_payload", false, 32, &s, err_r,
                  errlen);
    if (rc)
        return rc;
    if (!strcmp(s, "reboot-required"))
        m->no_payload = XM_NO_PAYLOAD_REBOOT;
    else if (!strcmp(s, "not-affected"))
        m->no_payload = XM_NO_PAYLOAD_NOT_AFFECTED;
    else
        return fail(err_r, errlen, XM_ERR_INVAL,
                    "\"no_payload\" must be \"reboot-required\" or "
                    "\"not-affected\"");

    v = xm_json_get(doc, "verify");
    if (v)
        return parse_verify(v, m, err_r, errlen);
    return XM_OK;
}

int
xm_manifest_parse(const char *text, size_t len, const char *dir,
                  struct xm_manifest *m_r, char *err_r, size_t errlen)
{
    xm_json *doc = NULL;
    char jerr[160];
    int rc;

    xm_manifest_init(m_r);
    if (err_r && errlen)
        err_r[0] = '\0';
    if (!dir || !dir[0] || strlen(dir) >= PATH_MAX) {
        rc = fail(err_r, errlen, XM_ERR_INVAL, "bad manifest directory");
        goto out;
    }
    if (len > XM_MANIFEST_MAX_BYTES) {
        rc = fail(err_r, errlen, XM_ERR_TOOBIG, "manifest larger than %d "
                  "bytes", XM_MANIFEST_MAX_BYTES);
        goto out;
    }
    rc = xm_json_parse(text, len, &doc, jerr, sizeof(jerr));
    if (rc) {
        rc = fail(err_r, errlen, XM_ERR_INVAL, "not JSON: %s", jerr);
        goto out;
    }
    rc = dup_text(dir, &m_r->dir, err_r, errlen);
    if (!rc)
        rc = parse_doc(doc, dir, m_r, err_r, errlen);

out:
    xm_json_free(doc);
    if (rc)
        xm_manifest_dispose(m_r);
    return rc;
}

int
xm_manifest_load(const char *path, struct xm_manifest *m_r, char *err_r,
                 size_t errlen)
{
    char *text = NULL, *dir = NULL;
    const char *slash;
    size_t len = 0;
    int rc;

    xm_manifest_init(m_r);
    if (!path || !path[0] || strlen(path) >= PATH_MAX)
        return fail(err_r, errlen, XM_ERR_INVAL, "bad manifest path");
    slash = strrchr(path, '/');
    if (!slash)
        dir = strdup(".");
    else if (slash == path)
        dir = strdup("/");
    else
        dir = strndup(path, (size_t)(slash - path));
    if (!dir) {
        rc = fail(err_r, errlen, XM_ERR_NOMEM, "out of memory");
        goto out;
    }
    rc = read_file(path, &text, &len, err_r, errlen);
    if (rc)
        goto out;
    rc = xm_manifest_parse(text, len, dir, m_r, err_r, errlen);

out:
    free(text);
    free(dir);
    return rc;
}

/* ---- payload checks ---------------------------------------------- */

int
xm_manifest_payload_path(const struct xm_manifest *m, size_t idx,
                         char *path_r, size_t pathlen)
{
    int r;

    if (idx >= m->npayloads || !m->dir)
        return XM_ERR_INVAL;
    if (pathlen > PATH_MAX)
        pathlen = PATH_MAX;
    r = snprintf(path_r, pathlen, "%s%s%s", m->dir,
                 m->dir[strlen(m->dir) - 1] == '/' ? "" : "/",
                 m->payloads[idx].file);
    if (r < 0 || (size_t)r >= pathlen)
        return XM_ERR_TOOBIG;
    return XM_OK;
}

int
xm_manifest_payload_check(const struct xm_manifest *m, size_t idx,
                          const void *data, size_t len, char *err_r,
                          size_t errlen)
{
    uint8_t md[EVP_MAX_MD_SIZE];
    unsigned mdlen = 0;
    char want[2 * XM_SHA256_LEN + 1], got[2 * EVP_MAX_MD_SIZE + 1];

    if (idx >= m->npayloads)
        return fail(err_r, errlen, XM_ERR_INVAL, "no payload %zu", idx);
    if (!data && len)
        return fail(err_r, errlen, XM_ERR_INVAL, "no data");
    if (!EVP_Digest(data ? data : "", len, md, &mdlen, EVP_sha256(),
                    NULL) || mdlen != XM_SHA256_LEN)
        return fail(err_r, errlen, XM_ERR_NOMEM, "sha256 failed");
    if (!memcmp(md, m->payloads[idx].sha256, XM_SHA256_LEN))
        return XM_OK;
    xm_buildid_hex(m->payloads[idx].sha256, XM_SHA256_LEN, want);
    xm_buildid_hex(md, XM_SHA256_LEN, got);
    return fail(err_r, errlen, XM_ERR_INVAL,
                "%s: sha256 is %s, the manifest says %s",
                m->payloads[idx].file, got, want);
}

static bool
for_build(const struct xm_manifest_payload *p, const struct xm_buildid *id)
{
    for (size_t i = 0; i < p->nxen_build_ids; i++)
        if (xm_buildid_equal(&p->xen_build_ids[i], id))
            return true;
    return false;
}

int
xm_manifest_payload_match(const struct xm_manifest *m, size_t idx,
                          const struct xm_lp_info *info, char *err_r,
                          size_t errlen)
{
    const struct xm_manifest_payload *p;
    char a[HEXLEN], b[HEXLEN];

    if (idx >= m->npayloads)
        return fail(err_r, errlen, XM_ERR_INVAL, "no payload %zu", idx);
    p = &m->payloads[idx];
    xm_buildid_hex(info->xen_depends.id, info->xen_depends.len, a);
    if (!for_build(p, &info->xen_depends))
        return fail(err_r, errlen, XM_ERR_INVAL,
                    "%s: built for hypervisor %s, which the manifest does "
                    "not list in xen_build_ids", p->name, a);
    if (p->depends.len ? !xm_buildid_equal(&p->depends, &info->depends)
                       : !for_build(p, &info->depends)) {
        xm_buildid_hex(info->depends.id, info->depends.len, a);
        xm_buildid_hex(p->depends.id, p->depends.len, b);
        return fail(err_r, errlen, XM_ERR_INVAL,
                    "%s: .livepatch.depends is %s, the manifest says %s",
                    p->name, a, p->depends.len ? b : "the hypervisor");
    }
    if (p->build_id.len && !xm_buildid_equal(&p->build_id,
                                             &info->build_id)) {
        xm_buildid_hex(info->build_id.id, info->build_id.len, a);
        xm_buildid_hex(p->build_id.id, p->build_id.len, b);
        return fail(err_r, errlen, XM_ERR_INVAL,
                    "%s: build-id is %s, the manifest says %s", p->name, a,
                    b);
    }
    return XM_OK;
}

bool
xm_manifest_verify_output(const struct xm_manifest *m, const char *output)
{
    regex_t re;
    bool ok;

    if (!m->verify_expect)
        return true;
    if (!output || regcomp(&re, m->verify_expect, REG_EXTENDED | REG_NOSUB))
        return false;
    ok = regexec(&re, output, 0, NULL, 0) == 0;
    regfree(&re);
    return ok;
}

/* ---- the decision ------------------------------------------------ */

__attribute__((format(printf, 5, 6)))
static void
decide(struct xm_patch_decision *d, enum xm_patch_verdict verdict,
       enum xm_patch_why why, int payload, const char *fmt, ...)
{
    va_list ap;

    d->verdict = verdict;
    d->why = why;
    d->payload = payload;
    va_start(ap, fmt);
    vsnprintf(d->reason, sizeof(d->reason), fmt, ap);
    va_end(ap);
}

/* Is loaded payload l this manifest payload?  By build-id when both are
 * known, else by name. */
static bool
same_payload(const struct xm_manifest_payload *p,
             const struct xm_lp_loaded *l)
{
    if (p->build_id.len && l->build_id.len)
        return xm_buildid_equal(&p->build_id, &l->build_id);
    return !strncmp(p->name, l->name, sizeof(l->name));
}

/* Would p go on top of the applied stack (build_id_dep())? */
static bool
fits_stack(const struct xm_manifest_payload *p,
           const struct xm_lp_hostview *host)
{
    const struct xm_lp_loaded *top = xm_lp_stack_top(host);

    if (p->replace)
        return true;
    if (!top)
        return !p->depends.len ||
               xm_buildid_equal(&p->depends, &host->xen_build_id);
    return p->depends.len && xm_buildid_equal(&p->depends, &top->build_id);
}

/* The chosen payload against what is loaded: fresh, loaded, or clash. */
static void
decide_loaded(const struct xm_manifest *m, int idx,
              const struct xm_lp_hostview *host, struct xm_patch_decision *d)
{
    const struct xm_manifest_payload *p = &m->payloads[idx];

    for (size_t i = 0; i < host->npayloads; i++) {
        const struct xm_lp_loaded *l = &host->payloads[i];
        bool name = !strncmp(p->name, l->name, sizeof(l->name));

        if (name && same_payload(p, l)) {
            decide(d, XM_PATCH_APPLICABLE, XM_WHY_NONE, idx,
                   "%s: payload %s is loaded, not applied: apply it",
                   m->xsa, p->name);
            d->loaded = true;
            return;
        }
        if (name || (p->build_id.len && same_payload(p, l))) {
            decide(d, XM_PATCH_NOT_APPLICABLE, XM_WHY_NAME_CLASH, idx,
                   "%s: payload %s cannot be loaded: %s%.*s is already "
                   "loaded", m->xsa, p->name,
                   name ? "another payload named " : "its build-id, as ",
                   XM_LP_NAME_MAX, l->name);
            return;
        }
    }
    decide(d, XM_PATCH_APPLICABLE, XM_WHY_NONE, idx,
           "%s: apply payload %s (%s)%s", m->xsa, p->name, p->file,
           p->replace ? " replacing the applied stack" : "");
}

void
xm_manifest_decide(const struct xm_manifest *m,
                   const struct xm_lp_hostview *host,
                   struct xm_patch_decision *d_r)
{
    char hex[HEXLEN];
    int candidate = -1;

    memset(d_r, 0, sizeof(*d_r));
    d_r->payload = -1;
    for (size_t i = 0; i < m->npayloads; i++)
        for (size_t j = 0; j < host->npayloads; j++) {
            const struct xm_lp_loaded *l = &host->payloads[j];

            if (l->state == XM_LP_APPLIED &&
                same_payload(&m->payloads[i], l)) {
                decide(d_r, XM_PATCH_ALREADY, XM_WHY_NONE, (int)i,
                       "%s: payload %s is applied (as %.*s)", m->xsa,
                       m->payloads[i].name, XM_LP_NAME_MAX, l->name);
                return;
            }
        }
    if (!host->xen_build_id.len) {
        decide(d_r, XM_PATCH_NOT_APPLICABLE, XM_WHY_UNKNOWN_HOST, -1,
               "%s: the running hypervisor's build-id is not known",
               m->xsa);
        return;
    }
    xm_buildid_hex(host->xen_build_id.id, host->xen_build_id.len, hex);
    for (size_t i = 0; i < m->npayloads; i++) {
        if (!for_build(&m->payloads[i], &host->xen_build_id))
            continue;
        if (fits_stack(&m->payloads[i], host)) {
            decide_loaded(m, (int)i, host, d_r);
            return;
        }
        if (candidate < 0)
            candidate = (int)i;
    }
    if (candidate >= 0) {
        const struct xm_lp_loaded *top = xm_lp_stack_top(host);

        decide(d_r, XM_PATCH_NOT_APPLICABLE, XM_WHY_STACK, candidate,
               "%s: payload %s is for hypervisor %s but stacks on another "
               "payload than the top of the applied stack (%.*s)", m->xsa,
               m->payloads[candidate].name, hex, XM_LP_NAME_MAX,
               top ? top->name : "nothing applied");
        return;
    }
    if (m->no_payload == XM_NO_PAYLOAD_NOT_AFFECTED)
        decide(d_r, XM_PATCH_NOT_APPLICABLE, XM_WHY_NOT_AFFECTED, -1,
               "%s: no payload for hypervisor %s, which the manifest says "
               "is not affected", m->xsa, hex);
    else
        decide(d_r, XM_PATCH_NOT_APPLICABLE, XM_WHY_REBOOT_REQUIRED, -1,
               "%s: no payload for hypervisor %s: reboot into a fixed Xen",
               m->xsa, hex);
}
