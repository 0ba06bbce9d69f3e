/*
 * xm_patchflow.c -- the patch apply's journal record, its JSON form, and
 * the decision of a restarted agent (see xm_patchflow.h).
 *
 * The record is small and versioned:
 *   {"version":1,"job":"k3x...","phase":"applying","request":"{...}",
 *    "name":"xen_hello_world","xsa":"XSA-900","payload_build_id":"ab..",
 *    "xen_build_id":"cd..","replace":false,"in_place":false,
 *    "reason":"","updated":1700000000}
 * The request is carried as a string (the request JSON as the agent
 * parsed it) so that a resumed flow drains and undrains with the
 * options it was given.  Decoding is strict: unknown fields, wrong
 * types and out-of-range values are errors naming the field.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xm_err.h"
#include "xm_json.h"
#include "xm_patchflow.h"

static const char *const phase_names[] = {
    [XM_PF_DRAINING] = "draining",
    [XM_PF_UPLOADING] = "uploading",
    [XM_PF_APPLYING] = "applying",
    [XM_PF_VERIFYING] = "verifying",
    [XM_PF_UNDRAINING] = "undraining",
    [XM_PF_DONE] = "done",
    [XM_PF_FAILED] = "failed",
    [XM_PF_REBOOT_REQUIRED] = "reboot-required",
};

#define N_PHASES (sizeof(phase_names) / sizeof(*phase_names))

static void __attribute__((format(printf, 3, 4)))
set_err(char *err_r, size_t errlen, const char *fmt, ...)
{
    va_list ap;

    if (!err_r || !errlen)
        return;
    va_start(ap, fmt);
    vsnprintf(err_r, errlen, fmt, ap);
    va_end(ap);
}

void
xm_pf_rec_init(struct xm_pf_rec *r)
{
    memset(r, 0, sizeof(*r));
}

void
xm_pf_rec_dispose(struct xm_pf_rec *r)
{
    free(r->request);
    xm_pf_rec_init(r);
}

const char *
xm_pf_phase_name(int phase)
{
    if (phase < XM_PF_DRAINING || (size_t)phase >= N_PHASES)
        return NULL;
    return phase_names[phase];
}

bool
xm_pf_phase_final(enum xm_pf_phase phase)
{
    return phase == XM_PF_DONE || phase == XM_PF_FAILED ||
           phase == XM_PF_REBOOT_REQUIRED;
}

/* printable ASCII, no control characters, within max bytes */
static bool
text_ok(const char *s, size_t max)
{
    size_t n = strnlen(s, max + 1);

    if (n > max)
        return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
            return false;
    return true;
}

int
xm_pf_rec_check(const struct xm_pf_rec *r, char *err_r, size_t errlen)
{
    if (!xm_request_id_valid(r->job)) {
        set_err(err_r, errlen, "\"job\": not a job id");
        return XM_ERR_INVAL;
    }
    if (!xm_pf_phase_name((int)r->phase)) {
        set_err(err_r, errlen, "\"phase\": unknown");
        return XM_ERR_INVAL;
    }
    if (!r->request || !r->request[0] ||
        strlen(r->request) > XM_PF_REQUEST_MAX) {
        set_err(err_r, errlen, "\"request\": missing or longer than %u "
                "bytes", XM_PF_REQUEST_MAX);
        return XM_ERR_INVAL;
    }
    if (r->name[0] && !xm_request_patch_name_valid(r->name)) {
        set_err(err_r, errlen, "\"name\": not a livepatch name");
        return XM_ERR_INVAL;
    }
    /* from the upload on, the flow knows its payload and hypervisor */
    if (r->phase >= XM_PF_UPLOADING && r->phase <= XM_PF_UNDRAINING &&
        (!r->name[0] || !r->payload_id.len || !r->xen_id.len)) {
        set_err(err_r, errlen, "phase %s needs \"name\", "
                "\"payload_build_id\" and \"xen_build_id\"",
                phase_names[r->phase]);
        return XM_ERR_INVAL;
    }
    if (r->phase == XM_PF_REBOOT_REQUIRED && !r->xen_id.len) {
        set_err(err_r, errlen, "phase reboot-required needs "
                "\"xen_build_id\"");
        return XM_ERR_INVAL;
    }
    if (!text_ok(r->xsa, XM_XSA_MAX) || !text_ok(r->reason,
                                                XM_PF_REASON_MAX - 1)) {
        set_err(err_r, errlen, "\"xsa\" or \"reason\": too long or not "
                "printable");
        return XM_ERR_INVAL;
    }
    if (r->payload_id.len > XM_BUILDID_MAX || r->xen_id.len > XM_BUILDID_MAX) {
        set_err(err_r, errlen, "a build-id is too long");
        return XM_ERR_INVAL;
    }
    return XM_OK;
}

int
xm_pf_encode(const struct xm_pf_rec *r, char **json_r)
{
    char hex[2 * XM_BUILDID_MAX + 1];
    struct xm_jgen *g;
    int rc;

    *json_r = NULL;
    rc = xm_pf_rec_check(r, NULL, 0);
    if (rc)
        return rc;
    g = xm_jgen_new(false);
    if (!g)
        return XM_ERR_NOMEM;
    xm_jgen_map_open(g);
    xm_jgen_kv_int(g, "version", XM_PF_VERSION);
    xm_jgen_kv_str(g, "job", r->job);
    xm_jgen_kv_str(g, "phase", phase_names[r->phase]);
    xm_jgen_kv_str(g, "request", r->request);
    xm_jgen_kv_str(g, "name", r->name);
    xm_jgen_kv_str(g, "xsa", r->xsa);
    xm_buildid_hex(r->payload_id.id, r->payload_id.len, hex);
    xm_jgen_kv_str(g, "payload_build_id", hex);
    xm_buildid_hex(r->xen_id.id, r->xen_id.len, hex);
    xm_jgen_kv_str(g, "xen_build_id", hex);
    xm_jgen_kv_bool(g, "replace", r->replace);
    xm_jgen_kv_bool(g, "in_place", r->in_place);
    xm_jgen_kv_str(g, "reason", r->reason);
    xm_jgen_kv_int(g, "updated", r->updated_s);
    xm_jgen_map_close(g);
    rc = xm_jgen_take(g, json_r);
    xm_jgen_free(g);
    return rc;
}

static const char *const known_fields[] = {
    "version", "job", "phase", "request", "name", "xsa",
    "payload_build_id", "xen_build_id", "replace", "in_place", "reason",
    "updated",
};

/* obj[key], a string of at most max bytes, copied into buf. */
static int
get_text(const xm_json *obj, const char *key, char *buf, size_t size,
         char *err_r, size_t errlen)
{
    const char *s;

    if (xm_json_get_str(obj, key, &s) != XM_OK) {
        set_err(err_r, errlen, "\"%s\": missing or not a string", key);
        return XM_ERR_INVAL;
    }
    if (strlen(s) >= size) {
        set_err(err_r, errlen, "\"%s\": longer than %zu bytes", key,
                size - 1);
        return XM_ERR_INVAL;
    }
    memcpy(buf, s, strlen(s) + 1);
    return XM_OK;
}

static int
get_id(const xm_json *obj, const char *key, struct xm_buildid *id,
       char *err_r, size_t errlen)
{
    char hex[2 * XM_BUILDID_MAX + 1];
    int rc = get_text(obj, key, hex, sizeof(hex), err_r, errlen);

    if (rc)
        return rc;
    memset(id, 0, sizeof(*id));
    if (hex[0] && xm_buildid_parse(hex, id) != XM_OK) {
        set_err(err_r, errlen, "\"%s\": not a build-id", key);
        return XM_ERR_INVAL;
    }
    return XM_OK;
}

int
xm_pf_decode(const char *text, size_t len, struct xm_pf_rec *r_r,
             char *err_r, size_t errlen)
{
    xm_json *doc = NULL;
    char phase[32];
    const char *s;
    int64_t n;
    int rc;

    xm_pf_rec_init(r_r);
    set_err(err_r, errlen, "%s", "");
    if (len > XM_PF_FILE_MAX) {
        set_err(err_r, errlen, "record larger than %u bytes",
                XM_PF_FILE_MAX);
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
    for (size_t i = 0; i < xm_json_len(doc); i++) {
        const char *key = xm_json_key_at(doc, i);
        bool known = false;

        for (size_t k = 0; k < sizeof(known_fields) / sizeof(*known_fields);
             k++)
            known = known || (key && !strcmp(key, known_fields[k]));
        if (!known) {
            set_err(err_r, errlen, "unknown field \"%.64s\"",
                    key ? key : "?");
            goto out;
        }
    }
    if (xm_json_get_int(doc, "version", &n)) {
        set_err(err_r, errlen, "\"version\": missing or not a number");
        goto out;
    }
    if (n != XM_PF_VERSION) {
        set_err(err_r, errlen, "record version %lld, not %d",
                (long long)n, XM_PF_VERSION);
        rc = XM_ERR_UNSUPPORTED;
        goto out;
    }
    if (get_text(doc, "job", r_r->job, sizeof(r_r->job), err_r, errlen) ||
        get_text(doc, "phase", phase, sizeof(phase), err_r, errlen) ||
        get_text(doc, "name", r_r->name, sizeof(r_r->name), err_r,
                 errlen) ||
        get_text(doc, "xsa", r_r->xsa, sizeof(r_r->xsa), err_r, errlen) ||
        get_text(doc, "reason", r_r->reason, sizeof(r_r->reason), err_r,
                 errlen) ||
        get_id(doc, "payload_build_id", &r_r->payload_id, err_r, errlen) ||
        get_id(doc, "xen_build_id", &r_r->xen_id, err_r, errlen))
        goto out;
    for (size_t p = XM_PF_DRAINING; p < N_PHASES; p++)
        if (!strcmp(phase, phase_names[p]))
            r_r->phase = (enum xm_pf_phase)p;
    if (!r_r->phase) {
        set_err(err_r, errlen, "\"phase\": unknown '%.32s'", phase);
        goto out;
    }
    if (xm_json_get_bool(doc, "replace", &r_r->replace) ||
        xm_json_get_bool(doc, "in_place", &r_r->in_place)) {
        set_err(err_r, errlen, "\"replace\" / \"in_place\": missing or "
                "not a bool");
        goto out;
    }
    if (xm_json_get_int(doc, "updated", &r_r->updated_s)) {
        set_err(err_r, errlen, "\"updated\": missing or not a number");
        goto out;
    }
    if (xm_json_get_str(doc, "request", &s)) {
        set_err(err_r, errlen, "\"request\": missing or not a string");
        goto out;
    }
    if (strlen(s) > XM_PF_REQUEST_MAX) {
        set_err(err_r, errlen, "\"request\": longer than %u bytes",
                XM_PF_REQUEST_MAX);
        goto out;
    }
    r_r->request = strdup(s);
    if (!r_r->request) {
        rc = XM_ERR_NOMEM;
        goto out;
    }
    rc = xm_pf_rec_check(r_r, err_r, errlen);
out:
    xm_json_free(doc);
    if (rc) {
        char keep[256];

        snprintf(keep, sizeof(keep), "%s", err_r && errlen ? err_r : "");
        xm_pf_rec_dispose(r_r);
        set_err(err_r, errlen, "%s", keep);
    }
    return rc;
}

enum xm_pf_next
xm_pf_resume(const struct xm_pf_rec *r, const struct xm_pf_seen *seen,
             char *reason_r, size_t reasonlen)
{
    char was[2 * XM_BUILDID_MAX + 1], now[2 * XM_BUILDID_MAX + 1];

    set_err(reason_r, reasonlen, "%s", "");
    if (xm_pf_phase_final(r->phase))
        return XM_PF_NEXT_NOTHING;
    if (r->phase == XM_PF_DRAINING) {
        set_err(reason_r, reasonlen, "the drain was interrupted: draining "
                "again, re-planned on the live state");
        return XM_PF_NEXT_DRAIN;
    }
    /* from the upload on: the same hypervisor, or nothing is known */
    if (!xm_buildid_equal(&r->xen_id, &seen->xen_id)) {
        xm_buildid_hex(r->xen_id.id, r->xen_id.len, was);
        xm_buildid_hex(seen->xen_id.id, seen->xen_id.len, now);
        set_err(reason_r, reasonlen, "the hypervisor changed during the "
                "patch (build-id %s when it began, %s now): %s is not "
                "applied by this flow; the host stays cordoned", was, now,
                r->name);
        return XM_PF_NEXT_FAIL;
    }
    if (r->phase == XM_PF_UNDRAINING) {
        set_err(reason_r, reasonlen, "the undrain was interrupted: "
                "bringing the guests home again");
        return XM_PF_NEXT_UNDRAIN;
    }
    if (!seen->loaded) {
        if (r->phase == XM_PF_VERIFYING) {
            set_err(reason_r, reasonlen, "%s was applied but is no longer "
                    "loaded: someone took it out during the patch; the "
                    "host stays cordoned", r->name);
            return XM_PF_NEXT_FAIL;
        }
        set_err(reason_r, reasonlen, "%s is not loaded: pre-flight and "
                "upload again", r->name);
        return XM_PF_NEXT_PREFLIGHT;
    }
    if (seen->state == XM_LP_APPLIED) {
        set_err(reason_r, reasonlen, "%s is applied: verifying it",
                r->name);
        return XM_PF_NEXT_VERIFY;
    }
    if (seen->state == XM_LP_CHECKED) {
        if (r->phase == XM_PF_VERIFYING) {
            set_err(reason_r, reasonlen, "%s was applied but is no longer: "
                    "someone reverted it during the patch; the host stays "
                    "cordoned", r->name);
            return XM_PF_NEXT_FAIL;
        }
        set_err(reason_r, reasonlen, "%s is loaded, not applied: applying "
                "it", r->name);
        return XM_PF_NEXT_APPLY;
    }
    set_err(reason_r, reasonlen, "%s is in an unknown state (%d): the "
            "host stays cordoned", r->name, (int)seen->state);
    return XM_PF_NEXT_FAIL;
}

bool
xm_pf_rebooted(const struct xm_pf_rec *r, const struct xm_buildid *running)
{
    return r->phase == XM_PF_REBOOT_REQUIRED && r->xen_id.len &&
           running->len && !xm_buildid_equal(&r->xen_id, running);
}
