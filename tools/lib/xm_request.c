/*
 * xm_request.c -- encoding and strict parsing of client requests.
 *
 * One table (request_fields) says, for every JSON field, which ops may
 * carry it; both the encoder and the parser follow it, so a request the
 * encoder writes always parses back to the same struct.  The parser
 * reads from xenstore, i.e. from anything in dom0 that can write there:
 * every rejection says which field was wrong and why.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "xm_err.h"
#include "xm_json.h"
#include "xm_request.h"

#define OPBIT(op) (1u << (op))
#define OPS_ALL (OPBIT(XM_OP_DRAIN) | OPBIT(XM_OP_UNDRAIN) | \
                 OPBIT(XM_OP_PATCH_APPLY) | OPBIT(XM_OP_PATCH_REVERT) | \
                 OPBIT(XM_OP_PATCH_LIST) | OPBIT(XM_OP_PATCH_CHECK) | \
                 OPBIT(XM_OP_STATUS))
/* a patch apply drains first: it takes the drain's options */
#define OPS_DRAINING (OPBIT(XM_OP_DRAIN) | OPBIT(XM_OP_PATCH_APPLY))

enum request_field {
    F_VERSION, F_OP, F_DRY_RUN, F_TO, F_PARALLEL, F_TIMEOUT, F_NOTICE,
    F_BLOCKED, F_STAY, F_PAYLOAD, F_IN_PLACE, F_NAME, F_COMPRESS, F_COUNT
};

static const struct {
    const char *name;
    unsigned ops;        /* OPBIT()s of the ops that may carry it */
    unsigned required;   /* OPBIT()s of the ops that must carry it */
} request_fields[F_COUNT] = {
    [F_VERSION] = { "version", OPS_ALL, OPS_ALL },
    [F_OP] = { "op", OPS_ALL, OPS_ALL },
    [F_DRY_RUN] = { "dry_run", OPS_DRAINING, 0 },
    [F_TO] = { "to", OPS_DRAINING, 0 },
    [F_PARALLEL] = { "parallel", OPS_DRAINING, 0 },
    [F_TIMEOUT] = { "timeout", OPBIT(XM_OP_DRAIN) | OPBIT(XM_OP_UNDRAIN) |
                    OPBIT(XM_OP_PATCH_APPLY) | OPBIT(XM_OP_PATCH_REVERT),
                    0 },
    [F_NOTICE] = { "notice", OPS_DRAINING, 0 },
    [F_BLOCKED] = { "blocked", OPS_DRAINING, 0 },
    [F_STAY] = { "stay", OPBIT(XM_OP_UNDRAIN), 0 },
    [F_PAYLOAD] = { "payload",
                    OPBIT(XM_OP_PATCH_APPLY) | OPBIT(XM_OP_PATCH_CHECK),
                    OPBIT(XM_OP_PATCH_APPLY) | OPBIT(XM_OP_PATCH_CHECK) },
    [F_IN_PLACE] = { "in_place", OPBIT(XM_OP_PATCH_APPLY), 0 },
    [F_NAME] = { "name", OPBIT(XM_OP_PATCH_REVERT),
                 OPBIT(XM_OP_PATCH_REVERT) },
    [F_COMPRESS] = { "compress", OPS_DRAINING | OPBIT(XM_OP_UNDRAIN), 0 },
};

static const char *const op_names[] = {
    [XM_OP_DRAIN] = "drain",
    [XM_OP_UNDRAIN] = "undrain",
    [XM_OP_PATCH_APPLY] = "patch-apply",
    [XM_OP_PATCH_REVERT] = "patch-revert",
    [XM_OP_PATCH_LIST] = "patch-list",
    [XM_OP_PATCH_CHECK] = "patch-check",
    [XM_OP_STATUS] = "status",
};
#define N_OPS (sizeof(op_names) / sizeof(op_names[0]))

static const char *const blocked_names[] = {
    [XM_BLOCKED_REFUSE] = "refuse",
    [XM_BLOCKED_SKIP] = "skip",
    [XM_BLOCKED_SHUTDOWN] = "shutdown",
};
#define N_BLOCKED (sizeof(blocked_names) / sizeof(blocked_names[0]))

static const char *const job_state_names[] = {
    [XM_JOB_QUEUED] = "queued",
    [XM_JOB_RUNNING] = "running",
    [XM_JOB_DONE] = "done",
    [XM_JOB_FAILED] = "failed",
};
#define N_JOB_STATES (sizeof(job_state_names) / sizeof(job_state_names[0]))

static int
name_lookup(const char *const *names, size_t n, const char *name,
            unsigned *index_r)
{
    if (!name)
        return XM_ERR_INVAL;
    for (size_t i = 0; i < n; i++) {
        if (strcmp(names[i], name) == 0) {
            *index_r = (unsigned)i;
            return XM_OK;
        }
    }
    return XM_ERR_INVAL;
}

const char *
xm_req_op_name(enum xm_req_op op)
{
    if ((unsigned)op >= N_OPS)
        return "unknown";
    return op_names[op];
}

int
xm_req_op_parse(const char *name, enum xm_req_op *op_r)
{
    unsigned i;
    int rc = name_lookup(op_names, N_OPS, name, &i);

    if (rc == XM_OK)
        *op_r = (enum xm_req_op)i;
    return rc;
}

const char *
xm_req_blocked_name(enum xm_req_blocked blocked)
{
    if ((unsigned)blocked >= N_BLOCKED)
        return "unknown";
    return blocked_names[blocked];
}

int
xm_req_blocked_parse(const char *name, enum xm_req_blocked *blocked_r)
{
    unsigned i;
    int rc = name_lookup(blocked_names, N_BLOCKED, name, &i);

    if (rc == XM_OK)
        *blocked_r = (enum xm_req_blocked)i;
    return rc;
}

const char *
xm_job_state_name(enum xm_job_state state)
{
    if ((unsigned)state >= N_JOB_STATES)
        return "unknown";
    return job_state_names[state];
}

int
xm_job_state_parse(const char *name, enum xm_job_state *state_r)
{
    unsigned i;
    int rc = name_lookup(job_state_names, N_JOB_STATES, name, &i);

    if (rc == XM_OK)
        *state_r = (enum xm_job_state)i;
    return rc;
}

/* Every character of s is in [A-Za-z0-9._-] and 1 <= strlen(s) <= max. */
static bool
name_chars_valid(const char *s, size_t max)
{
    size_t n;

    if (!s)
        return false;
    n = strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                  "0123456789._-");
    return n >= 1 && n <= max && s[n] == '\0';
}

bool
xm_request_id_valid(const char *id)
{
    /* The schema's <id>: xenstored refuses '.' in a node name, and an
     * id is one. */
    return name_chars_valid(id, XM_REQ_ID_MAX) && !strchr(id, '.');
}

bool
xm_request_host_valid(const char *host)
{
    return name_chars_valid(host, XM_REQ_HOST_MAX);
}

bool
xm_request_patch_name_valid(const char *name)
{
    return name_chars_valid(name, XM_REQ_NAME_MAX);
}

bool
xm_request_compress_valid(const char *compress)
{
    size_t n;

    if (!compress)
        return false;
    n = strspn(compress, "abcdefghijklmnopqrstuvwxyz0123456789:");
    return n >= 1 && n <= XM_REQ_COMPRESS_MAX && compress[n] == '\0';
}

/* Absolute, at most XM_REQ_PATH_MAX bytes, no control characters. */
static bool
payload_path_valid(const char *path)
{
    size_t n;

    if (!path || path[0] != '/')
        return false;
    n = strlen(path);
    if (n > XM_REQ_PATH_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)path[i];
        if (c < 0x20 || c == 0x7f)
            return false;
    }
    return true;
}

int
xm_request_new_id(char *buf, size_t len)
{
    static const char alphabet[] = "abcdefghijklmnopqrstuvwxyz0123456789";
    unsigned char bytes[64];
    size_t have = 0, used = sizeof(bytes);

    if (!buf || len < XM_REQ_NEW_ID_LEN + 1)
        return XM_ERR_TOOBIG;
    while (have < XM_REQ_NEW_ID_LEN) {
        if (used == sizeof(bytes)) {
            ssize_t r = getrandom(bytes, sizeof(bytes), 0);
            if (r < 0) {
                if (errno == EINTR)
                    continue;
                return xm_err_from_errno(errno);
            }
            if ((size_t)r != sizeof(bytes))
                continue;
            used = 0;
        }
        /* Reject 252..255 so that every character is equally likely. */
        unsigned char b = bytes[used++];
        if (b >= 252)
            continue;
        buf[have++] = alphabet[b % 36];
    }
    buf[have] = '\0';
    return XM_OK;
}

void
xm_request_init(struct xm_request *req)
{
    memset(req, 0, sizeof(*req));
    req->version = XM_REQ_VERSION;
    req->op = XM_OP_STATUS;
    req->blocked = XM_BLOCKED_REFUSE;
}

void
xm_request_dispose(struct xm_request *req)
{
    if (!req)
        return;
    for (unsigned i = 0; i < req->n_to; i++)
        free(req->to[i]);
    free(req->to);
    free(req->payload);
    free(req->name);
    xm_request_init(req);
}

static void __attribute__((format(printf, 3, 4)))
set_err(char *err_r, size_t errlen, const char *fmt, ...)
{
    va_list ap;

    if (!err_r || errlen == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(err_r, errlen, fmt, ap);
    va_end(ap);
}

/*
 * Check what the parser would check, on a struct: used by the encoder
 * so that it never writes a request the agent must reject.
 */
static int
request_check(const struct xm_request *req, char *err_r, size_t errlen)
{
    unsigned bit;

    if (req->version != XM_REQ_VERSION) {
        set_err(err_r, errlen, "version: must be %d", XM_REQ_VERSION);
        return XM_ERR_INVAL;
    }
    if ((unsigned)req->op >= N_OPS) {
        set_err(err_r, errlen, "op: unknown op");
        return XM_ERR_INVAL;
    }
    bit = OPBIT(req->op);
    if (req->n_to > XM_REQ_TO_MAX) {
        set_err(err_r, errlen, "to: more than %d hosts", XM_REQ_TO_MAX);
        return XM_ERR_INVAL;
    }
    for (unsigned i = 0; i < req->n_to; i++) {
        if (!xm_request_host_valid(req->to[i])) {
            set_err(err_r, errlen, "to: invalid host name");
            return XM_ERR_INVAL;
        }
    }
    if (req->parallel > XM_REQ_PARALLEL_MAX) {
        set_err(err_r, errlen, "parallel: more than %d",
                XM_REQ_PARALLEL_MAX);
        return XM_ERR_INVAL;
    }
    if (req->timeout_s > XM_REQ_TIMEOUT_MAX) {
        set_err(err_r, errlen, "timeout: more than %u", XM_REQ_TIMEOUT_MAX);
        return XM_ERR_INVAL;
    }
    if (req->notice_s > XM_REQ_NOTICE_MAX) {
        set_err(err_r, errlen, "notice: more than %u", XM_REQ_NOTICE_MAX);
        return XM_ERR_INVAL;
    }
    if ((unsigned)req->blocked >= N_BLOCKED) {
        set_err(err_r, errlen, "blocked: unknown policy");
        return XM_ERR_INVAL;
    }
    if ((request_fields[F_PAYLOAD].required & bit) &&
        !payload_path_valid(req->payload)) {
        set_err(err_r, errlen, "payload: must be an absolute path");
        return XM_ERR_INVAL;
    }
    if ((request_fields[F_NAME].required & bit) &&
        !xm_request_patch_name_valid(req->name)) {
        set_err(err_r, errlen, "name: invalid livepatch name");
        return XM_ERR_INVAL;
    }
    if (req->compress[0] && (!(request_fields[F_COMPRESS].ops & bit) ||
                             !xm_request_compress_valid(req->compress))) {
        set_err(err_r, errlen, "compress: invalid value");
        return XM_ERR_INVAL;
    }
    return XM_OK;
}

int
xm_request_encode(const struct xm_request *req, char **json_r)
{
    struct xm_jgen *g = NULL;
    unsigned bit;
    int rc;

    *json_r = NULL;
    rc = request_check(req, NULL, 0);
    if (rc)
        goto out;
    bit = OPBIT(req->op);
    g = xm_jgen_new(false);
    if (!g) {
        rc = XM_ERR_NOMEM;
        goto out;
    }
    xm_jgen_map_open(g);
    xm_jgen_kv_int(g, "version", req->version);
    xm_jgen_kv_str(g, "op", xm_req_op_name(req->op));
    if (request_fields[F_DRY_RUN].ops & bit)
        xm_jgen_kv_bool(g, "dry_run", req->dry_run);
    if (request_fields[F_TO].ops & bit) {
        xm_jgen_key(g, "to");
        xm_jgen_array_open(g);
        for (unsigned i = 0; i < req->n_to; i++)
            xm_jgen_str(g, req->to[i]);
        xm_jgen_array_close(g);
    }
    if (request_fields[F_PARALLEL].ops & bit)
        xm_jgen_kv_uint(g, "parallel", req->parallel);
    if (request_fields[F_TIMEOUT].ops & bit)
        xm_jgen_kv_uint(g, "timeout", req->timeout_s);
    if (request_fields[F_NOTICE].ops & bit)
        xm_jgen_kv_uint(g, "notice", req->notice_s);
    if (request_fields[F_BLOCKED].ops & bit)
        xm_jgen_kv_str(g, "blocked", xm_req_blocked_name(req->blocked));
    if (request_fields[F_STAY].ops & bit)
        xm_jgen_kv_bool(g, "stay", req->stay);
    if (request_fields[F_PAYLOAD].ops & bit)
        xm_jgen_kv_str(g, "payload", req->payload);
    if (request_fields[F_IN_PLACE].ops & bit)
        xm_jgen_kv_bool(g, "in_place", req->in_place);
    if (request_fields[F_NAME].ops & bit)
        xm_jgen_kv_str(g, "name", req->name);
    /* Only when given: the agent's default otherwise. */
    if ((request_fields[F_COMPRESS].ops & bit) && req->compress[0])
        xm_jgen_kv_str(g, "compress", req->compress);
    xm_jgen_map_close(g);
    rc = xm_jgen_take(g, json_r);

out:
    xm_jgen_free(g);
    return rc;
}

/* A number in [0, max] read from v, into *n_r. */
static int
parse_uint_field(const xm_json *v, const char *field, unsigned max,
                 unsigned *n_r, char *err_r, size_t errlen)
{
    uint64_t n;

    if (xm_json_type(v) != XM_JSON_NUMBER) {
        set_err(err_r, errlen, "%s: must be a number", field);
        return XM_ERR_INVAL;
    }
    if (xm_json_as_uint(v, &n) != XM_OK || n > max) {
        set_err(err_r, errlen, "%s: must be an integer from 0 to %u",
                field, max);
        return XM_ERR_INVAL;
    }
    *n_r = (unsigned)n;
    return XM_OK;
}

static int
parse_bool_field(const xm_json *v, const char *field, bool *b_r,
                 char *err_r, size_t errlen)
{
    if (xm_json_as_bool(v, b_r) != XM_OK) {
        set_err(err_r, errlen, "%s: must be true or false", field);
        return XM_ERR_INVAL;
    }
    return XM_OK;
}

static int
parse_str_field(const xm_json *v, const char *field, const char **s_r,
                char *err_r, size_t errlen)
{
    if (xm_json_as_str(v, s_r) != XM_OK) {
        set_err(err_r, errlen, "%s: must be a string", field);
        return XM_ERR_INVAL;
    }
    return XM_OK;
}

static int
parse_to(const xm_json *v, struct xm_request *req, char *err_r,
         size_t errlen)
{
    size_t n;

    if (xm_json_type(v) != XM_JSON_ARRAY) {
        set_err(err_r, errlen, "to: must be an array of host names");
        return XM_ERR_INVAL;
    }
    n = xm_json_len(v);
    if (n > XM_REQ_TO_MAX) {
        set_err(err_r, errlen, "to: more than %d hosts", XM_REQ_TO_MAX);
        return XM_ERR_INVAL;
    }
    if (n == 0)
        return XM_OK;
    req->to = calloc(n, sizeof(*req->to));
    if (!req->to)
        return XM_ERR_NOMEM;
    for (size_t i = 0; i < n; i++) {
        const char *host;

        if (xm_json_as_str(xm_json_at(v, i), &host) != XM_OK) {
            set_err(err_r, errlen, "to[%zu]: must be a string", i);
            return XM_ERR_INVAL;
        }
        if (!xm_request_host_valid(host)) {
            set_err(err_r, errlen,
                    "to[%zu]: invalid host name (want [A-Za-z0-9._-]"
                    "{1,%d})", i, XM_REQ_HOST_MAX);
            return XM_ERR_INVAL;
        }
        for (unsigned j = 0; j < req->n_to; j++) {
            if (strcmp(req->to[j], host) == 0) {
                set_err(err_r, errlen, "to[%zu]: host %s listed twice",
                        i, host);
                return XM_ERR_INVAL;
            }
        }
        req->to[i] = strdup(host);
        if (!req->to[i])
            return XM_ERR_NOMEM;
        req->n_to++;
    }
    return XM_OK;
}

/* Parse one field of a request whose op is known (or the op itself). */
static int
parse_field(enum request_field f, const xm_json *v, struct xm_request *req,
            char *err_r, size_t errlen)
{
    const char *name = request_fields[f].name;
    const char *s;
    unsigned n;
    int rc;

    switch (f) {
    case F_VERSION:
        if (xm_json_type(v) != XM_JSON_NUMBER) {
            set_err(err_r, errlen, "version: must be a number");
            return XM_ERR_INVAL;
        }
        rc = parse_uint_field(v, name, XM_REQ_VERSION, &n, err_r, errlen);
        if (rc || n != XM_REQ_VERSION) {
            set_err(err_r, errlen, "version: unsupported, want %d",
                    XM_REQ_VERSION);
            return XM_ERR_INVAL;
        }
        req->version = (int)n;
        return XM_OK;
    case F_OP:
        return XM_OK;                   /* read before the other fields */
    case F_DRY_RUN:
        return parse_bool_field(v, name, &req->dry_run, err_r, errlen);
    case F_TO:
        return parse_to(v, req, err_r, errlen);
    case F_PARALLEL:
        return parse_uint_field(v, name, XM_REQ_PARALLEL_MAX,
                                &req->parallel, err_r, errlen);
    case F_TIMEOUT:
        return parse_uint_field(v, name, XM_REQ_TIMEOUT_MAX,
                                &req->timeout_s, err_r, errlen);
    case F_NOTICE:
        return parse_uint_field(v, name, XM_REQ_NOTICE_MAX,
                                &req->notice_s, err_r, errlen);
    case F_BLOCKED:
        rc = parse_str_field(v, name, &s, err_r, errlen);
        if (rc)
            return rc;
        if (xm_req_blocked_parse(s, &req->blocked) != XM_OK) {
            set_err(err_r, errlen,
                    "blocked: must be refuse, skip or shutdown");
            return XM_ERR_INVAL;
        }
        return XM_OK;
    case F_STAY:
        return parse_bool_field(v, name, &req->stay, err_r, errlen);
    case F_PAYLOAD:
        rc = parse_str_field(v, name, &s, err_r, errlen);
        if (rc)
            return rc;
        if (!payload_path_valid(s)) {
            set_err(err_r, errlen, "payload: must be an absolute path of "
                    "at most %d bytes without control characters",
                    XM_REQ_PATH_MAX);
            return XM_ERR_INVAL;
        }
        req->payload = strdup(s);
        return req->payload ? XM_OK : XM_ERR_NOMEM;
    case F_IN_PLACE:
        return parse_bool_field(v, name, &req->in_place, err_r, errlen);
    case F_NAME:
        rc = parse_str_field(v, name, &s, err_r, errlen);
        if (rc)
            return rc;
        if (!xm_request_patch_name_valid(s)) {
            set_err(err_r, errlen, "name: invalid livepatch name (want "
                    "[A-Za-z0-9._-]{1,%d})", XM_REQ_NAME_MAX);
            return XM_ERR_INVAL;
        }
        req->name = strdup(s);
        return req->name ? XM_OK : XM_ERR_NOMEM;
    case F_COMPRESS:
        rc = parse_str_field(v, name, &s, err_r, errlen);
        if (rc)
            return rc;
        if (!xm_request_compress_valid(s)) {
            set_err(err_r, errlen, "compress: want [a-z0-9:]{1,%d}, e.g. "
                    "auto, none, zero, lz4, zstd or zstd:3",
                    XM_REQ_COMPRESS_MAX);
            return XM_ERR_INVAL;
        }
        memcpy(req->compress, s, strlen(s) + 1);
        return XM_OK;
    case F_COUNT:
        break;
    }
    return XM_ERR_INVAL;
}

int
xm_request_parse(const char *json, size_t len, struct xm_request *req_r,
                 char *err_r, size_t errlen)
{
    xm_json *doc = NULL;
    const char *op_name;
    char jerr[128] = "";
    bool seen[F_COUNT] = { false };
    unsigned bit;
    int rc;

    xm_request_init(req_r);
    set_err(err_r, errlen, "%s", "");
    if (!json) {
        set_err(err_r, errlen, "request: empty");
        rc = XM_ERR_INVAL;
        goto out;
    }
    rc = xm_json_parse(json, len, &doc, jerr, sizeof(jerr));
    if (rc) {
        if (rc != XM_ERR_NOMEM) {
            set_err(err_r, errlen, "request: not JSON: %s", jerr);
            rc = XM_ERR_INVAL;
        }
        goto out;
    }
    if (xm_json_type(doc) != XM_JSON_OBJECT) {
        set_err(err_r, errlen, "request: must be a JSON object");
        rc = XM_ERR_INVAL;
        goto out;
    }

    /* The op decides which other fields are allowed: read it first. */
    rc = xm_json_get_str(doc, "op", &op_name);
    if (rc == XM_ERR_NOTFOUND) {
        set_err(err_r, errlen, "op: missing");
        rc = XM_ERR_INVAL;
        goto out;
    } else if (rc) {
        set_err(err_r, errlen, "op: must be a string");
        rc = XM_ERR_INVAL;
        goto out;
    }
    if (xm_req_op_parse(op_name, &req_r->op) != XM_OK) {
        set_err(err_r, errlen, "op: unknown op");
        rc = XM_ERR_INVAL;
        goto out;
    }
    bit = OPBIT(req_r->op);

    for (size_t i = 0; i < xm_json_len(doc); i++) {
        const char *key = xm_json_key_at(doc, i);
        enum request_field f;

        for (f = 0; f < F_COUNT; f++)
            if (key && strcmp(key, request_fields[f].name) == 0)
                break;
        if (f == F_COUNT) {
            set_err(err_r, errlen, "%.64s: unknown field",
                    key ? key : "(null)");
            rc = XM_ERR_INVAL;
            goto out;
        }
        if (seen[f]) {
            set_err(err_r, errlen, "%s: given twice", key);
            rc = XM_ERR_INVAL;
            goto out;
        }
        seen[f] = true;
        if (!(request_fields[f].ops & bit)) {
            set_err(err_r, errlen, "%s: not allowed with op %s", key,
                    xm_req_op_name(req_r->op));
            rc = XM_ERR_INVAL;
            goto out;
        }
        rc = parse_field(f, xm_json_value_at(doc, i), req_r, err_r,
                         errlen);
        if (rc)
            goto out;
    }
    for (enum request_field f = 0; f < F_COUNT; f++) {
        if ((request_fields[f].required & bit) && !seen[f]) {
            set_err(err_r, errlen, "%s: missing", request_fields[f].name);
            rc = XM_ERR_INVAL;
            goto out;
        }
    }
    rc = XM_OK;

out:
    if (rc)
        xm_request_dispose(req_r);
    if (rc == XM_ERR_NOMEM)
        set_err(err_r, errlen, "request: out of memory");
    xm_json_free(doc);
    return rc;
}
