/*
 * xm_schema.c -- matching paths and checking values against the
 * xenstore schema (xm_schema.h).
 *
 * The table itself is generated from xenstore-schema/schema.txt; this
 * file is the code around it.  Everything that comes from xenstore is
 * hostile: paths are length-checked before they are split, placeholder
 * segments must obey their rules, and values are checked by type with a
 * small JSON validator of our own (bounded nesting, no allocation) so
 * the check has no dependency on a JSON library.
 */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "xm_err.h"
#include "xm_schema.h"

#define SCHEMA_ID_MAX 64
#define SCHEMA_HOST_MAX 63
#define SCHEMA_DOMID_LIMIT 0x7FF0u      /* DOMID_FIRST_RESERVED */
#define SCHEMA_JSON_DEPTH 32
#define SCHEMA_TRIES 8

/* ---- path matching ---- */

static bool
all_in(const char *s, size_t len, const char *extra)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];

        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
            (c >= '0' && c <= '9'))
            continue;
        if (c == '\0' || !strchr(extra, c))
            return false;
    }
    return true;
}

/* Does the segment seg (len bytes) satisfy placeholder ph ("<id>")? */
static bool
placeholder_ok(const char *ph, size_t ph_len, const char *seg, size_t len)
{
    if (ph_len == 4 && memcmp(ph, "<id>", 4) == 0)
        /* No '.': xenstored refuses it in node names. */
        return len >= 1 && len <= SCHEMA_ID_MAX && all_in(seg, len, "_-");
    if (ph_len == 6 && memcmp(ph, "<host>", 6) == 0)
        return len >= 1 && len <= SCHEMA_HOST_MAX &&
               all_in(seg, len, "._-");
    if (ph_len == 3 && memcmp(ph, "<n>", 3) == 0) {
        /* chunk index of a big value (xm_xs_big.h): 0..255 */
        unsigned v = 0;

        if (len < 1 || len > 3 || (seg[0] == '0' && len > 1))
            return false;
        for (size_t i = 0; i < len; i++) {
            if (seg[i] < '0' || seg[i] > '9')
                return false;
            v = v * 10 + (unsigned)(seg[i] - '0');
        }
        return v < 256;
    }
    if (ph_len == 7 && memcmp(ph, "<domid>", 7) == 0) {
        unsigned long v = 0;

        if (len < 1 || len > 5 || (seg[0] == '0' && len > 1))
            return false;
        for (size_t i = 0; i < len; i++) {
            if (seg[i] < '0' || seg[i] > '9')
                return false;
            v = v * 10 + (unsigned long)(seg[i] - '0');
        }
        return v < SCHEMA_DOMID_LIMIT;
    }
    return false;
}

/* Number of placeholders used when path matches pattern, or -1. */
static int
match(const char *pattern, const char *path)
{
    const char *p = pattern, *s = path;
    int placeholders = 0;

    while (*p == '/' && *s == '/') {
        size_t plen, slen;

        p++;
        s++;
        plen = strcspn(p, "/");
        slen = strcspn(s, "/");
        if (plen > 2 && p[0] == '<' && p[plen - 1] == '>') {
            if (!placeholder_ok(p, plen, s, slen))
                return -1;
            placeholders++;
        } else if (plen != slen || memcmp(p, s, plen) != 0) {
            return -1;
        }
        p += plen;
        s += slen;
    }
    return *p == '\0' && *s == '\0' ? placeholders : -1;
}

const struct xm_schema_key *
xm_schema_find(const char *path)
{
    const struct xm_schema_key *best = NULL;
    int best_ph = -1;
    size_t len;

    if (!path)
        return NULL;
    len = strnlen(path, XM_XS_PATH_MAX);
    if (len == 0 || len >= XM_XS_PATH_MAX || path[0] != '/')
        return NULL;
    for (unsigned i = 0; i < xm_schema_nkeys; i++) {
        int ph = match(xm_schema_keys[i].pattern, path);

        if (ph >= 0 && (best_ph < 0 || ph < best_ph)) {
            best = &xm_schema_keys[i];
            best_ph = ph;
        }
    }
    return best;
}

/* ---- values ---- */

static bool
parse_uint(const char *v, size_t len, uint64_t *out_r)
{
    uint64_t x = 0;

    if (len == 0 || len > 20 || (v[0] == '0' && len > 1))
        return false;
    for (size_t i = 0; i < len; i++) {
        unsigned d;

        if (v[i] < '0' || v[i] > '9')
            return false;
        d = (unsigned)(v[i] - '0');
        if (x > (UINT64_MAX - d) / 10)
            return false;
        x = x * 10 + d;
    }
    *out_r = x;
    return true;
}

static bool
check_int(const char *v, size_t len)
{
    uint64_t x;

    if (len > 0 && v[0] == '-') {
        /* "-0" is not a canonical number. */
        if (!parse_uint(v + 1, len - 1, &x) || x == 0)
            return false;
        return x <= (uint64_t)INT64_MAX + 1;
    }
    return parse_uint(v, len, &x) && x <= (uint64_t)INT64_MAX;
}

static bool
check_string(const char *v, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)v[i];

        if ((c < 0x20 && c != '\t') || c == 0x7f)
            return false;
    }
    return true;
}

static bool
check_hex(const char *v, size_t len)
{
    if (len == 0 || len % 2)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = v[i];

        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') ||
              (c >= 'A' && c <= 'F')))
            return false;
    }
    return true;
}

static bool
check_enum(const char *values, const char *v, size_t len)
{
    const char *p = values;

    while (p && *p) {
        size_t n = strcspn(p, ",");

        if (n == len && memcmp(p, v, len) == 0)
            return true;
        p += n;
        if (*p == ',')
            p++;
    }
    return false;
}

/* A small RFC 8259 validator: no tree, no allocation. */
struct jscan {
    const char *s;
    size_t len, pos;
};

static void
j_space(struct jscan *j)
{
    while (j->pos < j->len && strchr(" \t\r\n", j->s[j->pos]) &&
           j->s[j->pos] != '\0')
        j->pos++;
}

static bool
j_lit(struct jscan *j, const char *word)
{
    size_t n = strlen(word);

    if (j->len - j->pos < n || memcmp(j->s + j->pos, word, n) != 0)
        return false;
    j->pos += n;
    return true;
}

static bool
j_digits(struct jscan *j)
{
    size_t start = j->pos;

    while (j->pos < j->len && j->s[j->pos] >= '0' && j->s[j->pos] <= '9')
        j->pos++;
    return j->pos > start;
}

static bool
j_number(struct jscan *j)
{
    if (j->pos < j->len && j->s[j->pos] == '-')
        j->pos++;
    if (j->pos < j->len && j->s[j->pos] == '0')
        j->pos++;
    else if (!j_digits(j))
        return false;
    if (j->pos < j->len && j->s[j->pos] == '.') {
        j->pos++;
        if (!j_digits(j))
            return false;
    }
    if (j->pos < j->len && (j->s[j->pos] == 'e' || j->s[j->pos] == 'E')) {
        j->pos++;
        if (j->pos < j->len && (j->s[j->pos] == '+' || j->s[j->pos] == '-'))
            j->pos++;
        if (!j_digits(j))
            return false;
    }
    return true;
}

static bool
j_string(struct jscan *j)
{
    if (j->pos >= j->len || j->s[j->pos] != '"')
        return false;
    j->pos++;
    while (j->pos < j->len) {
        unsigned char c = (unsigned char)j->s[j->pos++];

        if (c == '"')
            return true;
        if (c < 0x20)
            return false;
        if (c != '\\')
            continue;
        if (j->pos >= j->len)
            return false;
        c = (unsigned char)j->s[j->pos++];
        if (c == 'u') {
            if (j->len - j->pos < 4 || !check_hex(j->s + j->pos, 4))
                return false;
            j->pos += 4;
        } else if (!strchr("\"\\/bfnrt", c) || c == '\0') {
            return false;
        }
    }
    return false;
}

static bool
j_value(struct jscan *j, unsigned depth)
{
    char c;

    if (depth > SCHEMA_JSON_DEPTH)
        return false;
    j_space(j);
    if (j->pos >= j->len)
        return false;
    c = j->s[j->pos];
    if (c == '"')
        return j_string(j);
    if (c == '{' || c == '[') {
        char close = c == '{' ? '}' : ']';

        j->pos++;
        j_space(j);
        if (j->pos < j->len && j->s[j->pos] == close) {
            j->pos++;
            return true;
        }
        for (;;) {
            if (c == '{') {
                j_space(j);
                if (!j_string(j))
                    return false;
                j_space(j);
                if (j->pos >= j->len || j->s[j->pos] != ':')
                    return false;
                j->pos++;
            }
            if (!j_value(j, depth + 1))
                return false;
            j_space(j);
            if (j->pos >= j->len)
                return false;
            if (j->s[j->pos] == close) {
                j->pos++;
                return true;
            }
            if (j->s[j->pos] != ',')
                return false;
            j->pos++;
        }
    }
    if (c == 't')
        return j_lit(j, "true");
    if (c == 'f')
        return j_lit(j, "false");
    if (c == 'n')
        return j_lit(j, "null");
    return j_number(j);
}

static bool
check_json(const char *v, size_t len)
{
    struct jscan j = { .s = v, .len = len, .pos = 0 };

    if (!j_value(&j, 0))
        return false;
    j_space(&j);
    return j.pos == len;
}

int
xm_schema_check_value(const struct xm_schema_key *key, const char *value,
                      size_t len)
{
    uint64_t x;
    bool ok = false;

    if (!key || (!value && len))
        return XM_ERR_INVAL;
    if (len > XM_XS_VALUE_MAX)
        return XM_ERR_TOOBIG;
    if (len && memchr(value, '\0', len))
        return XM_ERR_INVAL;
    switch (key->type) {
    case XM_SCHEMA_DIR:
        ok = len == 0;
        break;
    case XM_SCHEMA_STRING:
        ok = check_string(value, len);
        break;
    case XM_SCHEMA_UINT:
        ok = parse_uint(value, len, &x) &&
             (!(key->flags & XM_SCHEMA_F_RANGE) ||
              (x >= key->min && x <= key->max));
        break;
    case XM_SCHEMA_INT:
        ok = check_int(value, len);
        break;
    case XM_SCHEMA_BOOL:
        ok = len == 1 && (value[0] == '0' || value[0] == '1');
        break;
    case XM_SCHEMA_JSON:
        ok = check_json(value, len);
        break;
    case XM_SCHEMA_HEX:
        ok = check_hex(value, len);
        break;
    case XM_SCHEMA_ENUM:
        ok = len > 0 && check_enum(key->enum_values, value, len);
        break;
    }
    return ok ? XM_OK : XM_ERR_INVAL;
}

/* ---- permissions ---- */

int
xm_schema_perms(const struct xm_schema_key *key, uint32_t domid,
                struct xm_xs_perm *perms_r, unsigned max, unsigned *n_r)
{
    char text[128];
    char num[16];
    const char *p;
    size_t out = 0;

    *n_r = 0;
    if (!key || !key->perms)
        return XM_ERR_INVAL;
    if (strstr(key->perms, "<domid>") && domid >= SCHEMA_DOMID_LIMIT)
        return XM_ERR_INVAL;
    snprintf(num, sizeof(num), "%u", (unsigned)domid);
    for (p = key->perms; *p;) {
        const char *add = p;
        size_t n = 1;

        if (strncmp(p, "<domid>", 7) == 0) {
            add = num;
            n = strlen(num);
            p += 7;
        } else {
            p++;
        }
        if (out + n >= sizeof(text))
            return XM_ERR_TOOBIG;
        memcpy(text + out, add, n);
        out += n;
    }
    text[out] = '\0';
    return xm_xs_parse_perms(text, perms_r, max, n_r);
}

/* ---- the agent's tree ---- */

static bool
under_root(const char *pattern)
{
    static const char root[] = "/tool/xenmaint";
    size_t n = sizeof(root) - 1;

    return strncmp(pattern, root, n) == 0 &&
           (pattern[n] == '\0' || pattern[n] == '/');
}

static unsigned
depth(const char *path)
{
    unsigned d = 0;

    for (; *path; path++)
        d += *path == '/';
    return d;
}

static int
create_tree_body(struct xm_xs *xs, xm_xs_txn t, void *arg)
{
    unsigned max_depth = 0;
    int rc;

    (void)arg;
    for (unsigned i = 0; i < xm_schema_nkeys; i++)
        if (depth(xm_schema_keys[i].pattern) > max_depth)
            max_depth = depth(xm_schema_keys[i].pattern);
    /* Parents before children, whatever the order of schema.txt. */
    for (unsigned d = 1; d <= max_depth; d++) {
        for (unsigned i = 0; i < xm_schema_nkeys; i++) {
            const struct xm_schema_key *k = &xm_schema_keys[i];
            struct xm_xs_perm perms[XM_XS_PERMS_MAX];
            unsigned n = 0;

            if (!(k->flags & XM_SCHEMA_F_DIR) ||
                (k->flags & XM_SCHEMA_F_PLACEHOLDER) ||
                !under_root(k->pattern) || depth(k->pattern) != d)
                continue;
            rc = xm_schema_perms(k, 0, perms, XM_XS_PERMS_MAX, &n);
            if (rc)
                return rc;
            rc = xs->ops->mkdir(xs->ctx, t, k->pattern);
            if (rc)
                return rc;
            rc = xs->ops->set_perms(xs->ctx, t, k->pattern, perms, n);
            if (rc)
                return rc;
        }
    }
    return XM_OK;
}

int
xm_schema_create_tree(struct xm_xs *xs)
{
    return xm_xs_transact(xs, create_tree_body, NULL, SCHEMA_TRIES);
}
