/*
 * xm_err.c -- text and errno mapping for the project's error codes.
 */
#include <errno.h>

#include "xm_err.h"

static const struct {
    int rc;
    const char *name;
    const char *text;
} xm_errors[] = {
    { XM_OK, "ok", "success" },
    { XM_ERR_NOMEM, "nomem", "out of memory" },
    { XM_ERR_INVAL, "invalid", "invalid input" },
    { XM_ERR_IO, "io", "input/output error" },
    { XM_ERR_NOTFOUND, "notfound", "not found" },
    { XM_ERR_EXISTS, "exists", "already exists" },
    { XM_ERR_BUSY, "busy", "busy, try again" },
    { XM_ERR_TIMEOUT, "timeout", "timed out" },
    { XM_ERR_PROTO, "protocol", "protocol error" },
    { XM_ERR_PERM, "permission", "permission denied" },
    { XM_ERR_HV, "hypervisor", "hypervisor or libxl error" },
    { XM_ERR_XS, "xenstore", "xenstore error" },
    { XM_ERR_TOOBIG, "toobig", "over a size limit" },
    { XM_ERR_STATE, "state", "wrong state for this action" },
    { XM_ERR_CONFIG, "config", "configuration error" },
    { XM_ERR_TLS, "tls", "TLS error" },
    { XM_ERR_CANCELLED, "cancelled", "cancelled" },
    { XM_ERR_NOSPACE, "nospace", "no space left on device" },
    { XM_ERR_UNSUPPORTED, "unsupported", "not supported" },
};

#define N_ERRORS (sizeof(xm_errors) / sizeof(xm_errors[0]))

const char *
xm_strerror(int rc)
{
    for (unsigned i = 0; i < N_ERRORS; i++)
        if (xm_errors[i].rc == rc)
            return xm_errors[i].text;
    return "unknown error";
}

const char *
xm_err_name(int rc)
{
    for (unsigned i = 0; i < N_ERRORS; i++)
        if (xm_errors[i].rc == rc)
            return xm_errors[i].name;
    return "unknown";
}

int
xm_err_from_errno(int errnum)
{
    switch (errnum) {
    case 0: return XM_OK;
    case ENOMEM: return XM_ERR_NOMEM;
    case EINVAL: case E2BIG: case ERANGE: return XM_ERR_INVAL;
    case ENOENT: case ESRCH: return XM_ERR_NOTFOUND;
    case EEXIST: return XM_ERR_EXISTS;
    case EBUSY: case EAGAIN: return XM_ERR_BUSY;
    case ETIMEDOUT: return XM_ERR_TIMEOUT;
    case EACCES: case EPERM: return XM_ERR_PERM;
    case EPROTO: case EBADMSG: return XM_ERR_PROTO;
    case EFBIG: case EMSGSIZE: case ENAMETOOLONG: return XM_ERR_TOOBIG;
    case ENOSPC: case EDQUOT: return XM_ERR_NOSPACE;
    case ECANCELED: return XM_ERR_CANCELLED;
    case EOPNOTSUPP: case ENOSYS: return XM_ERR_UNSUPPORTED;
    default: return XM_ERR_IO;
    }
}
