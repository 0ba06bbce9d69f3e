/*
 * xm_err.h -- the project's error codes.
 *
 * Every function of the core library that can fail returns an int rc:
 * XM_OK (0) or one of the negative XM_ERR_* codes below.  A syscall's
 * own return goes in a variable named r, and errno is translated once,
 * where the syscall is made (xm_err_from_errno).  xm_strerror gives the
 * short English text that goes into logs and job error results.
 */
#ifndef XM_ERR_H
#define XM_ERR_H

enum {
    XM_OK = 0,
    XM_ERR_NOMEM = -1,       /* out of memory */
    XM_ERR_INVAL = -2,       /* malformed input (request, message, file) */
    XM_ERR_IO = -3,          /* read/write/socket failure */
    XM_ERR_NOTFOUND = -4,    /* no such domain, key, payload, host */
    XM_ERR_EXISTS = -5,      /* already there (name clash, duplicate id) */
    XM_ERR_BUSY = -6,        /* try again later (EBUSY/EAGAIN) */
    XM_ERR_TIMEOUT = -7,     /* a deadline passed */
    XM_ERR_PROTO = -8,       /* peer broke the protocol */
    XM_ERR_PERM = -9,        /* permission denied */
    XM_ERR_HV = -10,         /* the hypervisor or libxl refused */
    XM_ERR_XS = -11,         /* xenstore failure */
    XM_ERR_TOOBIG = -12,     /* over a length or size limit */
    XM_ERR_STATE = -13,      /* wrong state for this action */
    XM_ERR_CONFIG = -14,     /* bad configuration */
    XM_ERR_TLS = -15,        /* TLS handshake or certificate failure */
    XM_ERR_CANCELLED = -16,  /* stopped on request */
    XM_ERR_NOSPACE = -17,    /* disk full */
    XM_ERR_UNSUPPORTED = -18 /* feature not available here */
};

/* Short English text for rc; never NULL. */
const char *xm_strerror(int rc);

/* Map an errno value to the nearest XM_ERR_* code. */
int xm_err_from_errno(int errnum);

/* Stable machine-readable name, e.g. "timeout", for JSON results. */
const char *xm_err_name(int rc);

#endif /* XM_ERR_H */
