/*
 * xm_json.c -- the JSON interface of xm_json.h, implemented with yajl 2.
 *
 * The generator wraps yajl_gen and keeps the first failure so callers
 * check once.  The parser wraps yajl_tree: input arrives with a length
 * (xenstore values, peer payloads), so it is copied to a NUL-terminated
 * buffer first and an embedded NUL is refused.  xm_json is yajl_val in
 * disguise; nothing outside this file may know that.
 */
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yajl/yajl_gen.h>
#include <yajl/yajl_tree.h>

#include "xm_err.h"
#include "xm_json.h"

#define JGEN_DEPTH_MAX 64

/* yajl does not check that a close matches its open, nor that the
 * document is complete when its buffer is taken: the stack does. */
struct xm_jgen {
    yajl_gen gen;
    int rc;                     /* first error, or XM_OK */
    unsigned depth;
    char stack[JGEN_DEPTH_MAX]; /* 'm' map, 'a' array */
};

static int
gen_status_rc(yajl_gen_status st)
{
    switch (st) {
    case yajl_gen_status_ok:
        return XM_OK;
    case yajl_gen_invalid_string:
        return XM_ERR_INVAL;
    default:
        return XM_ERR_INVAL;
    }
}

#define GEN_STEP(g, call)                                   \
    do {                                                    \
        if ((g)->rc == XM_OK)                               \
            (g)->rc = gen_status_rc(call);                  \
    } while (0)

struct xm_jgen *
xm_jgen_new(bool pretty)
{
    struct xm_jgen *g = calloc(1, sizeof(*g));

    if (!g)
        return NULL;
    g->gen = yajl_gen_alloc(NULL);
    if (!g->gen) {
        free(g);
        return NULL;
    }
    yajl_gen_config(g->gen, yajl_gen_validate_utf8, 1);
    if (pretty) {
        yajl_gen_config(g->gen, yajl_gen_beautify, 1);
        yajl_gen_config(g->gen, yajl_gen_indent_string, "  ");
    }
    return g;
}

void
xm_jgen_free(struct xm_jgen *g)
{
    if (!g)
        return;
    yajl_gen_free(g->gen);
    free(g);
}

static void
push(struct xm_jgen *g, char kind)
{
    if (g->rc)
        return;
    if (g->depth >= JGEN_DEPTH_MAX) {
        g->rc = XM_ERR_TOOBIG;
        return;
    }
    g->stack[g->depth++] = kind;
}

static void
pop(struct xm_jgen *g, char kind)
{
    if (g->rc)
        return;
    if (g->depth == 0 || g->stack[g->depth - 1] != kind) {
        g->rc = XM_ERR_INVAL;
        return;
    }
    g->depth--;
}

void
xm_jgen_map_open(struct xm_jgen *g)
{
    push(g, 'm');
    GEN_STEP(g, yajl_gen_map_open(g->gen));
}

void
xm_jgen_map_close(struct xm_jgen *g)
{
    pop(g, 'm');
    GEN_STEP(g, yajl_gen_map_close(g->gen));
}

void
xm_jgen_array_open(struct xm_jgen *g)
{
    push(g, 'a');
    GEN_STEP(g, yajl_gen_array_open(g->gen));
}

void
xm_jgen_array_close(struct xm_jgen *g)
{
    pop(g, 'a');
    GEN_STEP(g, yajl_gen_array_close(g->gen));
}

void
xm_jgen_str(struct xm_jgen *g, const char *s)
{
    if (!s) {
        xm_jgen_null(g);
        return;
    }
    GEN_STEP(g, yajl_gen_string(g->gen, (const unsigned char *)s,
                                strlen(s)));
}

void
xm_jgen_key(struct xm_jgen *g, const char *key)
{
    if (!key) {
        if (g->rc == XM_OK)
            g->rc = XM_ERR_INVAL;
        return;
    }
    xm_jgen_str(g, key);
}

void
xm_jgen_int(struct xm_jgen *g, int64_t v)
{
    GEN_STEP(g, yajl_gen_integer(g->gen, (long long)v));
}

void
xm_jgen_uint(struct xm_jgen *g, uint64_t v)
{
    if (v > INT64_MAX) {
        if (g->rc == XM_OK)
            g->rc = XM_ERR_TOOBIG;
        return;
    }
    xm_jgen_int(g, (int64_t)v);
}

void
xm_jgen_double(struct xm_jgen *g, double v)
{
    if (!isfinite(v)) {
        if (g->rc == XM_OK)
            g->rc = XM_ERR_INVAL;
        return;
    }
    GEN_STEP(g, yajl_gen_double(g->gen, v));
}

void
xm_jgen_bool(struct xm_jgen *g, bool v)
{
    GEN_STEP(g, yajl_gen_bool(g->gen, v));
}

void
xm_jgen_null(struct xm_jgen *g)
{
    GEN_STEP(g, yajl_gen_null(g->gen));
}

void
xm_jgen_kv_str(struct xm_jgen *g, const char *key, const char *s)
{
    xm_jgen_key(g, key);
    xm_jgen_str(g, s);
}

void
xm_jgen_kv_int(struct xm_jgen *g, const char *key, int64_t v)
{
    xm_jgen_key(g, key);
    xm_jgen_int(g, v);
}

void
xm_jgen_kv_uint(struct xm_jgen *g, const char *key, uint64_t v)
{
    xm_jgen_key(g, key);
    xm_jgen_uint(g, v);
}

void
xm_jgen_kv_bool(struct xm_jgen *g, const char *key, bool v)
{
    xm_jgen_key(g, key);
    xm_jgen_bool(g, v);
}

void
xm_jgen_json(struct xm_jgen *g, const xm_json *v)
{
    size_t i, n;

    switch (xm_json_type(v)) {
    case XM_JSON_NULL:
        xm_jgen_null(g);
        break;
    case XM_JSON_BOOL: {
        bool b = false;
        xm_json_as_bool(v, &b);
        xm_jgen_bool(g, b);
        break;
    }
    case XM_JSON_NUMBER: {
        const struct yajl_val_s *y = (const struct yajl_val_s *)v;
        const char *text = y->u.number.r;
        GEN_STEP(g, yajl_gen_number(g->gen, text, strlen(text)));
        break;
    }
    case XM_JSON_STRING: {
        const char *s = NULL;
        xm_json_as_str(v, &s);
        xm_jgen_str(g, s);
        break;
    }
    case XM_JSON_ARRAY:
        xm_jgen_array_open(g);
        n = xm_json_len(v);
        for (i = 0; i < n; i++)
            xm_jgen_json(g, xm_json_at(v, i));
        xm_jgen_array_close(g);
        break;
    case XM_JSON_OBJECT:
        xm_jgen_map_open(g);
        n = xm_json_len(v);
        for (i = 0; i < n; i++) {
            xm_jgen_key(g, xm_json_key_at(v, i));
            xm_jgen_json(g, xm_json_value_at(v, i));
        }
        xm_jgen_map_close(g);
        break;
    }
}

void
xm_jgen_raw(struct xm_jgen *g, const char *json, size_t len)
{
    xm_json *doc = NULL;
    int rc;

    if (g->rc != XM_OK)
        return;
    rc = xm_json_parse(json, len, &doc, NULL, 0);
    if (rc) {
        g->rc = rc;
        return;
    }
    xm_jgen_json(g, doc);
    xm_json_free(doc);
}

int
xm_jgen_finish(struct xm_jgen *g, const char **text_r, size_t *len_r)
{
    const unsigned char *buf = NULL;
    size_t len = 0;

    if (g->rc)
        return g->rc;
    if (g->depth != 0)
        return XM_ERR_INVAL;        /* an open map or array */
    if (yajl_gen_get_buf(g->gen, &buf, &len) != yajl_gen_status_ok)
        return XM_ERR_INVAL;
    *text_r = (const char *)buf;
    if (len_r)
        *len_r = len;
    return XM_OK;
}

int
xm_jgen_take(struct xm_jgen *g, char **text_r)
{
    const char *text;
    size_t len;
    char *copy;
    int rc;

    rc = xm_jgen_finish(g, &text, &len);
    if (rc)
        return rc;
    copy = malloc(len + 1);
    if (!copy)
        return XM_ERR_NOMEM;
    memcpy(copy, text, len);
    copy[len] = '\0';
    *text_r = copy;
    return XM_OK;
}

/* ---- parsed trees ---- */

#define Y(v) ((const struct yajl_val_s *)(v))

int
xm_json_parse(const char *text, size_t len, xm_json **doc_r,
              char *err_r, size_t errlen)
{
    char ybuf[256];
    char *copy = NULL;
    yajl_val v;
    int rc;

    *doc_r = NULL;
    if (err_r && errlen)
        err_r[0] = '\0';
    if (!text || memchr(text, '\0', len)) {
        if (err_r && errlen)
            snprintf(err_r, errlen, "NUL byte inside JSON text");
        return XM_ERR_INVAL;
    }
    copy = malloc(len + 1);
    if (!copy)
        return XM_ERR_NOMEM;
    memcpy(copy, text, len);
    copy[len] = '\0';
    ybuf[0] = '\0';
    v = yajl_tree_parse(copy, ybuf, sizeof(ybuf));
    if (!v) {
        if (err_r && errlen) {
            /* yajl's message spans lines; keep the first one. */
            char *nl = strchr(ybuf, '\n');
            if (nl)
                *nl = '\0';
            snprintf(err_r, errlen, "%s",
                     ybuf[0] ? ybuf : "malformed JSON");
        }
        rc = XM_ERR_INVAL;
        goto out;
    }
    *doc_r = (xm_json *)v;
    rc = XM_OK;
out:
    free(copy);
    return rc;
}

void
xm_json_free(xm_json *doc)
{
    if (doc)
        yajl_tree_free((yajl_val)doc);
}

enum xm_json_type
xm_json_type(const xm_json *v)
{
    if (!v)
        return XM_JSON_NULL;
    switch (Y(v)->type) {
    case yajl_t_string: return XM_JSON_STRING;
    case yajl_t_number: return XM_JSON_NUMBER;
    case yajl_t_object: return XM_JSON_OBJECT;
    case yajl_t_array: return XM_JSON_ARRAY;
    case yajl_t_true:
    case yajl_t_false: return XM_JSON_BOOL;
    default: return XM_JSON_NULL;
    }
}

const xm_json *
xm_json_get(const xm_json *obj, const char *key)
{
    if (!obj || Y(obj)->type != yajl_t_object || !key)
        return NULL;
    for (size_t i = 0; i < Y(obj)->u.object.len; i++)
        if (strcmp(Y(obj)->u.object.keys[i], key) == 0)
            return (const xm_json *)Y(obj)->u.object.values[i];
    return NULL;
}

size_t
xm_json_len(const xm_json *v)
{
    if (!v)
        return 0;
    if (Y(v)->type == yajl_t_array)
        return Y(v)->u.array.len;
    if (Y(v)->type == yajl_t_object)
        return Y(v)->u.object.len;
    return 0;
}

const xm_json *
xm_json_at(const xm_json *arr, size_t i)
{
    if (!arr || Y(arr)->type != yajl_t_array || i >= Y(arr)->u.array.len)
        return NULL;
    return (const xm_json *)Y(arr)->u.array.values[i];
}

const char *
xm_json_key_at(const xm_json *obj, size_t i)
{
    if (!obj || Y(obj)->type != yajl_t_object || i >= Y(obj)->u.object.len)
        return NULL;
    return Y(obj)->u.object.keys[i];
}

const xm_json *
xm_json_value_at(const xm_json *obj, size_t i)
{
    if (!obj || Y(obj)->type != yajl_t_object || i >= Y(obj)->u.object.len)
        return NULL;
    return (const xm_json *)Y(obj)->u.object.values[i];
}

int
xm_json_as_str(const xm_json *v, const char **s_r)
{
    if (!v || Y(v)->type != yajl_t_string)
        return XM_ERR_INVAL;
    *s_r = Y(v)->u.string;
    return XM_OK;
}

int
xm_json_as_int(const xm_json *v, int64_t *n_r)
{
    if (!v || Y(v)->type != yajl_t_number ||
        !(Y(v)->u.number.flags & YAJL_NUMBER_INT_VALID))
        return XM_ERR_INVAL;
    *n_r = Y(v)->u.number.i;
    return XM_OK;
}

int
xm_json_as_uint(const xm_json *v, uint64_t *n_r)
{
    int64_t n;
    int rc = xm_json_as_int(v, &n);

    if (rc)
        return rc;
    if (n < 0)
        return XM_ERR_INVAL;
    *n_r = (uint64_t)n;
    return XM_OK;
}

int
xm_json_as_bool(const xm_json *v, bool *b_r)
{
    if (!v)
        return XM_ERR_INVAL;
    if (Y(v)->type == yajl_t_true)
        *b_r = true;
    else if (Y(v)->type == yajl_t_false)
        *b_r = false;
    else
        return XM_ERR_INVAL;
    return XM_OK;
}

#define GET_TYPED(fn, type)                                            \
    int                                                                \
    xm_json_get_##fn(const xm_json *obj, const char *key, type out_r)  \
    {                                                                  \
        const xm_json *v = xm_json_get(obj, key);                      \
        if (!v)                                                        \
            return XM_ERR_NOTFOUND;                                    \
        return xm_json_as_##fn(v, out_r);                              \
    }

GET_TYPED(str, const char **)
GET_TYPED(int, int64_t *)
GET_TYPED(uint, uint64_t *)
GET_TYPED(bool, bool *)
