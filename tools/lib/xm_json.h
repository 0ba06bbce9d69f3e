/*
 * xm_json.h -- the project's small JSON interface.
 *
 * Xen itself is moving from yajl to json-c, so nothing outside xm_json.c
 * includes a yajl header.  Two halves:
 *  - a generator (xm_jgen) that remembers the first error, so a caller
 *    emits a whole document and checks once at xm_jgen_finish;
 *  - a parsed read-only tree (xm_json) with typed getters that treat a
 *    missing key and a key of the wrong type as different errors
 *    (XM_ERR_NOTFOUND and XM_ERR_INVAL), because input is hostile.
 */
#ifndef XM_JSON_H
#define XM_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct xm_jgen;

struct xm_jgen *xm_jgen_new(bool pretty);
void xm_jgen_free(struct xm_jgen *g);            /* accepts NULL */
void xm_jgen_map_open(struct xm_jgen *g);
void xm_jgen_map_close(struct xm_jgen *g);
void xm_jgen_array_open(struct xm_jgen *g);
void xm_jgen_array_close(struct xm_jgen *g);
void xm_jgen_key(struct xm_jgen *g, const char *key);
void xm_jgen_str(struct xm_jgen *g, const char *s);  /* NULL -> null */
void xm_jgen_int(struct xm_jgen *g, int64_t v);
void xm_jgen_uint(struct xm_jgen *g, uint64_t v);   /* > INT64_MAX: error */
void xm_jgen_double(struct xm_jgen *g, double v);
void xm_jgen_bool(struct xm_jgen *g, bool v);
void xm_jgen_null(struct xm_jgen *g);
/* key + value in one call */
void xm_jgen_kv_str(struct xm_jgen *g, const char *key, const char *s);
void xm_jgen_kv_int(struct xm_jgen *g, const char *key, int64_t v);
void xm_jgen_kv_uint(struct xm_jgen *g, const char *key, uint64_t v);
void xm_jgen_kv_bool(struct xm_jgen *g, const char *key, bool v);
/* Emit a parsed value (from xm_json_parse) as it is. */
struct xm_json;
void xm_jgen_json(struct xm_jgen *g, const struct xm_json *v);
/* Splice an already-encoded JSON value (checked by parsing it). */
void xm_jgen_raw(struct xm_jgen *g, const char *json, size_t len);
/* XM_OK and the document (owned by g, valid until the next call on g),
 * or the first error met while generating. */
int xm_jgen_finish(struct xm_jgen *g, const char **text_r, size_t *len_r);
/* As xm_jgen_finish, but a heap copy the caller frees. */
int xm_jgen_take(struct xm_jgen *g, char **text_r);

typedef struct xm_json xm_json;

enum xm_json_type {
    XM_JSON_NULL,
    XM_JSON_BOOL,
    XM_JSON_NUMBER,
    XM_JSON_STRING,
    XM_JSON_ARRAY,
    XM_JSON_OBJECT,
};

/* Parse len bytes.  On error err_r (errlen bytes) names the problem. */
int xm_json_parse(const char *text, size_t len, xm_json **doc_r,
                  char *err_r, size_t errlen);
void xm_json_free(xm_json *doc);                   /* accepts NULL */

enum xm_json_type xm_json_type(const xm_json *v);
/* Member of an object, or NULL (missing, or v not an object). */
const xm_json *xm_json_get(const xm_json *obj, const char *key);
size_t xm_json_len(const xm_json *v);      /* array/object size, else 0 */
const xm_json *xm_json_at(const xm_json *arr, size_t i);
const char *xm_json_key_at(const xm_json *obj, size_t i);
const xm_json *xm_json_value_at(const xm_json *obj, size_t i);

/* Typed reads of a value: XM_ERR_INVAL on the wrong type or range. */
int xm_json_as_str(const xm_json *v, const char **s_r);
int xm_json_as_int(const xm_json *v, int64_t *n_r);
int xm_json_as_uint(const xm_json *v, uint64_t *n_r);
int xm_json_as_bool(const xm_json *v, bool *b_r);

/* Typed reads of obj[key]: XM_ERR_NOTFOUND when absent, XM_ERR_INVAL
 * when of the wrong type.  Strings stay owned by the tree. */
int xm_json_get_str(const xm_json *obj, const char *key, const char **s_r);
int xm_json_get_int(const xm_json *obj, const char *key, int64_t *n_r);
int xm_json_get_uint(const xm_json *obj, const char *key, uint64_t *n_r);
int xm_json_get_bool(const xm_json *obj, const char *key, bool *b_r);

#endif /* XM_JSON_H */
