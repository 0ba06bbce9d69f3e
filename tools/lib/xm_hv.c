/*
 * xm_hv.c -- backend-independent helpers of the hypervisor interface
 * (xm_hv.h): closing a connection, whichever backend opened it, and the
 * hex form of a hypervisor build-id as it appears in logs, xenstore and
 * the peer protocol.
 */
#include "xm_hv.h"

void
xm_hv_close(struct xm_hv *hv)
{
    if (!hv || !hv->ops)
        return;
    hv->ops->close(hv->ctx);
    hv->ops = NULL;
    hv->ctx = NULL;
}

void
xm_buildid_hex(const uint8_t *id, unsigned len, char *hex_r)
{
    static const char digits[] = "0123456789abcdef";
    unsigned i;

    if (!id)
        len = 0;
    else if (len > XM_BUILDID_MAX)
        len = XM_BUILDID_MAX;       /* hex_r holds no more than this */
    for (i = 0; i < len; i++) {
        hex_r[2 * i] = digits[id[i] >> 4];
        hex_r[2 * i + 1] = digits[id[i] & 0xf];
    }
    hex_r[2 * i] = '\0';
}
