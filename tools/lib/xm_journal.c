/*
 * xm_journal.c -- migration journal records and their file store (see
 * xm_journal.h).
 *
 * A record file is "<id>.<side>.json" in the store's directory (ids
 * carry no dots, so the name parses back).  Replacing one goes through
 * ".<id>.<side>.tmp": write, fsync, rename over, fsync the directory.
 * A crash at any step leaves either the old record or the new one, and
 * at worst a stray temporary file that list() skips and the next put
 * truncates.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "xm_err.h"
#include "xm_journal.h"
#include "xm_json.h"

/* A failed call's error; an injected or odd failure that left errno 0
 * is still a failure, never XM_OK. */
static int
sys_err(void)
{
    return errno ? xm_err_from_errno(errno) : XM_ERR_IO;
}

#define SUFFIX_IN "--incoming"
#define SUFFIX_AWAY "--migratedaway"

struct xm_journal {
    char *dir;
    struct xm_journal_io io;
};

static const char *const phase_names[] = {
    [XM_JP_SENDING] = "sending",
    [XM_JP_RECEIVING] = "receiving",
    [XM_JP_READY] = "ready",
    [XM_JP_GO] = "go",
    [XM_JP_DONE] = "done",
    [XM_JP_ABORTED] = "aborted",
};

const char *
xm_jphase_name(int phase)
{
    if (phase < XM_JP_SENDING || phase > XM_JP_ABORTED)
        return NULL;
    return phase_names[phase];
}

const char *
xm_mig_side_name(int side)
{
    switch (side) {
    case XM_MIG_SOURCE: return "source";
    case XM_MIG_TARGET: return "target";
    default: return NULL;
    }
}

bool
xm_mig_id_valid(const char *id)
{
    size_t n = 0;

    if (!id)
        return false;
    for (; id[n]; n++) {
        char c = id[n];
        if (n >= XM_MIG_ID_MAX)
            return false;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              (c >= '0' && c <= '9') || c == '-' || c == '_'))
            return false;
    }
    return n > 0;
}

static bool
ends_with(const char *s, size_t n, const char *suffix)
{
    size_t m = strlen(suffix);
    return n >= m && memcmp(s + n - m, suffix, m) == 0;
}

bool
xm_mig_name_valid(const char *name)
{
    size_t n = 0;

    if (!name)
        return false;
    for (; name[n]; n++) {
        unsigned char c = (unsigned char)name[n];
        if (n >= XM_DOMNAME_MAX || c < 0x21 || c > 0x7e || c == '/')
            return false;
    }
    if (n == 0)
        return false;
    return !ends_with(name, n, SUFFIX_IN) && !ends_with(name, n, SUFFIX_AWAY);
}

int
xm_journal_rec_check(const struct xm_journal_rec *rec)
{
    if (!xm_mig_id_valid(rec->id) || !xm_mig_name_valid(rec->name))
        return XM_ERR_INVAL;
    if (!xm_mig_side_name(rec->side) || !xm_jphase_name(rec->phase))
        return XM_ERR_INVAL;
    if (!memchr(rec->source, '\0', sizeof(rec->source)) ||
        !memchr(rec->target, '\0', sizeof(rec->target)) ||
        !xm_proto_host_valid(rec->source) ||
        !xm_proto_host_valid(rec->target))
        return XM_ERR_INVAL;
    switch (rec->phase) {
    case XM_JP_SENDING:
        if (rec->side != XM_MIG_SOURCE)
            return XM_ERR_INVAL;
        break;
    case XM_JP_RECEIVING:
    case XM_JP_READY:
        if (rec->side != XM_MIG_TARGET)
            return XM_ERR_INVAL;
        break;
    default:
        break;
    }
    if (rec->created_s < 0 || rec->updated_s < rec->created_s)
        return XM_ERR_INVAL;
    return XM_OK;
}

/* ---- encoding ---- */

static void
uuid_fmt(const uint8_t u[16], char out[37])
{
    static const char hex[] = "0123456789abcdef";
    size_t o = 0;

    for (unsigned i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            out[o++] = '-';
        out[o++] = hex[u[i] >> 4];
        out[o++] = hex[u[i] & 15];
    }
    out[o] = '\0';
}

static int
hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static int
uuid_parse(const char *s, uint8_t u_r[16])
{
    unsigned o = 0;

    if (strlen(s) != 36)
        return XM_ERR_INVAL;
    for (unsigned i = 0; i < 36;) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (s[i] != '-')
                return XM_ERR_INVAL;
            i++;
            continue;
        }
        int hi = hexval(s[i]), lo = hexval(s[i + 1]);
        if (hi < 0 || lo < 0)
            return XM_ERR_INVAL;
        u_r[o++] = (uint8_t)(hi << 4 | lo);
        i += 2;
    }
    return XM_OK;
}

int
xm_journal_encode(const struct xm_journal_rec *rec, char **json_r)
{
    struct xm_jgen *g = NULL;
    char uuid[37];
    int rc;

    *json_r = NULL;
    rc = xm_journal_rec_check(rec);
    if (rc)
        return rc;
    g = xm_jgen_new(true);
    if (!g)
        return XM_ERR_NOMEM;
    uuid_fmt(rec->uuid, uuid);
    xm_jgen_map_open(g);
    xm_jgen_kv_int(g, "version", XM_JOURNAL_VERSION);
    xm_jgen_kv_str(g, "id", rec->id);
    xm_jgen_kv_str(g, "side", xm_mig_side_name(rec->side));
    xm_jgen_kv_str(g, "name", rec->name);
    xm_jgen_kv_str(g, "uuid", uuid);
    xm_jgen_kv_str(g, "source", rec->source);
    xm_jgen_kv_str(g, "target", rec->target);
    xm_jgen_kv_uint(g, "src_domid", rec->src_domid);
    xm_jgen_kv_uint(g, "dst_domid", rec->dst_domid);
    xm_jgen_kv_str(g, "phase", xm_jphase_name(rec->phase));
    xm_jgen_kv_int(g, "created", rec->created_s);
    xm_jgen_kv_int(g, "updated", rec->updated_s);
    xm_jgen_map_close(g);
    rc = xm_jgen_take(g, json_r);
    xm_jgen_free(g);
    return rc;
}

static void
set_err(char *err_r, size_t errlen, const char *msg)
{
    if (err_r && errlen)
        snprintf(err_r, errlen, "%s", msg);
}

static void
key_err(char *err_r, size_t errlen, const char *key, const char *what)
{
    if (err_r && errlen)
        snprintf(err_r, errlen, "\"%s\" %s", key, what);
}

/* Copy obj[key] (a string shorter than size) into dst. */
static int
get_strbuf(const xm_json *obj, const char *key, char *dst, size_t size,
           char *err_r, size_t errlen)
{
    const char *s;
    int rc = xm_json_get_str(obj, key, &s);

    if (rc) {
        key_err(err_r, errlen, key, rc == XM_ERR_NOTFOUND ? "is missing" :
                "is not a string");
        return XM_ERR_INVAL;
    }
    if (strlen(s) >= size) {
        key_err(err_r, errlen, key, "is too long");
        return XM_ERR_INVAL;
    }
    memcpy(dst, s, strlen(s) + 1);
    return XM_OK;
}

static int
get_u32(const xm_json *obj, const char *key, uint32_t *v_r,
        char *err_r, size_t errlen)
{
    uint64_t v;

    if (xm_json_get_uint(obj, key, &v) || v > UINT32_MAX) {
        key_err(err_r, errlen, key, "is missing or out of range");
        return XM_ERR_INVAL;
    }
    *v_r = (uint32_t)v;
    return XM_OK;
}

int
xm_journal_decode(const char *text, size_t len, struct xm_journal_rec *rec_r,
                  char *err_r, size_t errlen)
{
    xm_json *doc = NULL;
    struct xm_journal_rec rec;
    const char *s;
    char uuid[37];
    int64_t version;
    int rc;

    memset(rec_r, 0, sizeof(*rec_r));
    memset(&rec, 0, sizeof(rec));
    if (err_r && errlen)
        err_r[0] = '\0';
    if (len > XM_JOURNAL_FILE_MAX) {
        set_err(err_r, errlen, "record larger than the limit");
        return XM_ERR_TOOBIG;
    }
    rc = xm_json_parse(text, len, &doc, err_r, errlen);
    if (rc)
        return rc == XM_ERR_NOMEM ? rc : XM_ERR_INVAL;
    rc = XM_ERR_INVAL;
    if (xm_json_type(doc) != XM_JSON_OBJECT) {
        set_err(err_r, errlen, "record is not a JSON object");
        goto out;
    }
    if (xm_json_get_int(doc, "version", &version)) {
        set_err(err_r, errlen, "missing or bad \"version\"");
        goto out;
    }
    if (version != XM_JOURNAL_VERSION) {
        set_err(err_r, errlen, "unsupported record version");
        rc = XM_ERR_UNSUPPORTED;
        goto out;
    }
    if (get_strbuf(doc, "id", rec.id, sizeof(rec.id), err_r, errlen) ||
        get_strbuf(doc, "name", rec.name, sizeof(rec.name), err_r,
                   errlen) ||
        get_strbuf(doc, "uuid", uuid, sizeof(uuid), err_r, errlen) ||
        get_strbuf(doc, "source", rec.source, sizeof(rec.source), err_r,
                   errlen) ||
        get_strbuf(doc, "target", rec.target, sizeof(rec.target), err_r,
                   errlen) ||
        get_u32(doc, "src_domid", &rec.src_domid, err_r, errlen) ||
        get_u32(doc, "dst_domid", &rec.dst_domid, err_r, errlen))
        goto out;
    if (uuid_parse(uuid, rec.uuid)) {
        set_err(err_r, errlen, "\"uuid\" is malformed");
        goto out;
    }
    if (xm_json_get_str(doc, "side", &s)) {
        set_err(err_r, errlen, "missing or bad \"side\"");
        goto out;
    }
    if (strcmp(s, "source") == 0)
        rec.side = XM_MIG_SOURCE;
    else if (strcmp(s, "target") == 0)
        rec.side = XM_MIG_TARGET;
    else {
        set_err(err_r, errlen, "unknown \"side\"");
        goto out;
    }
    if (xm_json_get_str(doc, "phase", &s)) {
        set_err(err_r, errlen, "missing or bad \"phase\"");
        goto out;
    }
    for (int p = XM_JP_SENDING; p <= XM_JP_ABORTED; p++)
        if (strcmp(s, phase_names[p]) == 0)
            rec.phase = (enum xm_jphase)p;
    if (!rec.phase) {
        set_err(err_r, errlen, "unknown \"phase\"");
        goto out;
    }
    if (xm_json_get_int(doc, "created", &rec.created_s) ||
        xm_json_get_int(doc, "updated", &rec.updated_s)) {
        set_err(err_r, errlen, "missing or bad timestamps");
        goto out;
    }
    if (xm_journal_rec_check(&rec)) {
        set_err(err_r, errlen, "record fields are inconsistent");
        goto out;
    }
    *rec_r = rec;
    rc = XM_OK;
out:
    xm_json_free(doc);
    return rc;
}

/* ---- the real system calls ---- */

static int
real_open(void *ctx, const char *path, int flags, mode_t mode)
{
    return open(path, flags, mode);
}

static ssize_t
real_write(void *ctx, int fd, const void *buf, size_t len)
{
    return write(fd, buf, len);
}

static int
real_fsync(void *ctx, int fd)
{
    return fsync(fd);
}

static int
real_rename(void *ctx, const char *from, const char *to)
{
    return rename(from, to);
}

static int
real_close(void *ctx, int fd)
{
    return close(fd);
}

const struct xm_journal_io xm_journal_io_real = {
    .open = real_open,
    .write = real_write,
    .fsync = real_fsync,
    .rename = real_rename,
    .close = real_close,
    .ctx = NULL,
};

/* ---- the store ---- */

int
xm_journal_new(const char *dir, const struct xm_journal_io *io,
               struct xm_journal **j_r)
{
    struct xm_journal *j = NULL;
    struct stat st;

    *j_r = NULL;
    if (!dir || !*dir)
        return XM_ERR_INVAL;
    if (stat(dir, &st) != 0)
        return sys_err();
    if (!S_ISDIR(st.st_mode))
        return XM_ERR_INVAL;
    j = calloc(1, sizeof(*j));
    if (!j)
        return XM_ERR_NOMEM;
    j->dir = strdup(dir);
    if (!j->dir) {
        free(j);
        return XM_ERR_NOMEM;
    }
    j->io = io ? *io : xm_journal_io_real;
    *j_r = j;
    return XM_OK;
}

void
xm_journal_free(struct xm_journal *j)
{
    if (!j)
        return;
    free(j->dir);
    free(j);
}

/* path_r gets "<dir>/<prefix><id>.<side>.<ext>". */
static int
rec_path(const struct xm_journal *j, const char *prefix, const char *id,
         enum xm_mig_side side, const char *ext, char **path_r)
{
    const char *sn = xm_mig_side_name(side);

    *path_r = NULL;
    if (!xm_mig_id_valid(id) || !sn)
        return XM_ERR_INVAL;
    if (asprintf(path_r, "%s/%s%s.%s.%s", j->dir, prefix, id, sn, ext) < 0) {
        *path_r = NULL;
        return XM_ERR_NOMEM;
    }
    return XM_OK;
}

static void
path_err(char *err_r, size_t errlen, const char *path, const char *step,
         int rc)
{
    if (err_r && errlen)
        snprintf(err_r, errlen, "%s: %s: %s", path, step, xm_strerror(rc));
}

int
xm_journal_put(struct xm_journal *j, const struct xm_journal_rec *rec,
               char *err_r, size_t errlen)
{
    const struct xm_journal_io *io = &j->io;
    char *text = NULL, *tmp = NULL, *path = NULL;
    int fd = -1, dfd = -1;
    size_t len, off = 0;
    int rc;

    if (err_r && errlen)
        err_r[0] = '\0';
    rc = xm_journal_encode(rec, &text);
    if (rc)
        goto out;
    rc = rec_path(j, ".", rec->id, rec->side, "tmp", &tmp);
    if (!rc)
        rc = rec_path(j, "", rec->id, rec->side, "json", &path);
    if (rc)
        goto out;
    len = strlen(text);
    fd = io->open(io->ctx, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
                  0600);
    if (fd < 0) {
        rc = sys_err();
        path_err(err_r, errlen, tmp, "open", rc);
        goto out;
    }
    while (off < len) {
        ssize_t r = io->write(io->ctx, fd, text + off, len - off);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            rc = r < 0 ? sys_err() : XM_ERR_IO;
            path_err(err_r, errlen, tmp, "write", rc);
            goto out_unlink;
        }
        off += (size_t)r;
    }
    if (io->fsync(io->ctx, fd) != 0) {
        rc = sys_err();
        path_err(err_r, errlen, tmp, "fsync", rc);
        goto out_unlink;
    }
    {
        int r = io->close(io->ctx, fd);
        fd = -1;
        if (r != 0) {
            rc = sys_err();
            path_err(err_r, errlen, tmp, "close", rc);
            goto out_unlink;
        }
    }
    if (io->rename(io->ctx, tmp, path) != 0) {
        rc = sys_err();
        path_err(err_r, errlen, path, "rename", rc);
        goto out_unlink;
    }
    /* The new record is in place; make its name durable. */
    dfd = io->open(io->ctx, j->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0);
    if (dfd < 0 || io->fsync(io->ctx, dfd) != 0) {
        rc = sys_err();
        path_err(err_r, errlen, j->dir, "fsync directory", rc);
        goto out;
    }
    rc = XM_OK;
    goto out;
out_unlink:
    /* Second tier: the temporary file must not linger half-written. */
    unlink(tmp);
out:
    if (fd >= 0)
        io->close(io->ctx, fd);
    if (dfd >= 0)
        io->close(io->ctx, dfd);
    free(text);
    free(tmp);
    free(path);
    return rc;
}

int
xm_journal_load(struct xm_journal *j, const char *id, enum xm_mig_side side,
                struct xm_journal_rec *rec_r, char *err_r, size_t errlen)
{
    char *path = NULL, *buf = NULL;
    char why[160];
    int fd = -1;
    size_t len = 0;
    int rc;

    memset(rec_r, 0, sizeof(*rec_r));
    if (err_r && errlen)
        err_r[0] = '\0';
    rc = rec_path(j, "", id, side, "json", &path);
    if (rc)
        return rc;
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) {
        rc = sys_err();
        if (rc != XM_ERR_NOTFOUND)
            path_err(err_r, errlen, path, "open", rc);
        goto out;
    }
    buf = malloc(XM_JOURNAL_FILE_MAX + 1);
    if (!buf) {
        rc = XM_ERR_NOMEM;
        goto out;
    }
    for (;;) {
        ssize_t r = read(fd, buf + len, XM_JOURNAL_FILE_MAX + 1 - len);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            rc = sys_err();
            path_err(err_r, errlen, path, "read", rc);
            goto out;
        }
        if (r == 0)
            break;
        len += (size_t)r;
        if (len > XM_JOURNAL_FILE_MAX)
            break;
    }
    rc = xm_journal_decode(buf, len, rec_r, why, sizeof(why));
    if (rc) {
        if (err_r && errlen)
            snprintf(err_r, errlen, "%s: %s", path, why);
        goto out;
    }
    if (strcmp(rec_r->id, id) != 0 || rec_r->side != side) {
        memset(rec_r, 0, sizeof(*rec_r));
        rc = XM_ERR_INVAL;
        if (err_r && errlen)
            snprintf(err_r, errlen, "%s: record names another migration",
                     path);
    }
out:
    if (fd >= 0)
        close(fd);
    free(buf);
    free(path);
    return rc;
}

int
xm_journal_remove(struct xm_journal *j, const char *id,
                  enum xm_mig_side side)
{
    char *path = NULL;
    int rc = rec_path(j, "", id, side, "json", &path);

    if (rc)
        return rc;
    if (unlink(path) != 0)
        rc = sys_err();
    free(path);
    return rc;
}

/* "<id>.<side>.json" -> entry; false for any other name. */
static bool
parse_name(const char *name, struct xm_journal_entry *e_r)
{
    const char *dot = strchr(name, '.');
    size_t n = dot ? (size_t)(dot - name) : 0;

    if (!dot || n == 0 || n > XM_MIG_ID_MAX)
        return false;
    if (strcmp(dot, ".source.json") == 0)
        e_r->side = XM_MIG_SOURCE;
    else if (strcmp(dot, ".target.json") == 0)
        e_r->side = XM_MIG_TARGET;
    else
        return false;
    memcpy(e_r->id, name, n);
    e_r->id[n] = '\0';
    return xm_mig_id_valid(e_r->id);
}

static int
entry_cmp(const void *a, const void *b)
{
    const struct xm_journal_entry *x = a, *y = b;
    int c = strcmp(x->id, y->id);

    return c ? c : (int)x->side - (int)y->side;
}

int
xm_journal_list(struct xm_journal *j, struct xm_journal_entry **ents_r,
                size_t *n_r)
{
    struct xm_journal_entry *ents = NULL, e;
    size_t n = 0, alloc = 0;
    DIR *d = NULL;
    struct dirent *de;
    int rc = XM_OK;

    *ents_r = NULL;
    *n_r = 0;
    d = opendir(j->dir);
    if (!d)
        return sys_err();
    for (;;) {
        errno = 0;
        de = readdir(d);
        if (!de) {
            if (errno)
                rc = sys_err();
            break;
        }
        if (!parse_name(de->d_name, &e))
            continue;
        if (n == alloc) {
            size_t na = alloc ? alloc * 2 : 8;
            struct xm_journal_entry *ne = realloc(ents, na * sizeof(*ne));
            if (!ne) {
                rc = XM_ERR_NOMEM;
                break;
            }
            ents = ne;
            alloc = na;
        }
        ents[n++] = e;
    }
    closedir(d);
    if (rc) {
        free(ents);
        return rc;
    }
    if (n)
        qsort(ents, n, sizeof(*ents), entry_cmp);
    *ents_r = ents;
    *n_r = n;
    return XM_OK;
}
