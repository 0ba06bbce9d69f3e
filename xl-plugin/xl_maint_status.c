/*
 * xl_maint_status.c -- `xl maint-status`: what xenmaintd knows about
 * this host and its peers.
 *
 * One block per host: state (active, draining, drained...), memory, Xen
 * version and build id, livepatches and guests.  Reads only.
 */
#include <getopt.h>

#include "xl.h"

#define CMD "maint-status"
#define DEADLINE_S 60u

enum { OPT_JSON = 256 };

int
main_maint_status(int argc, char **argv)
{
    static const struct option longopts[] = {
        { "json", no_argument, NULL, OPT_JSON },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    struct xm_request req;
    struct xm_reply reply;
    bool json = false;
    int opt, rc;

    xm_request_init(&req);
    xm_reply_init(&reply);
    req.op = XM_OP_STATUS;

    while ((opt = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
        switch (opt) {
        case OPT_JSON:
            json = true;
            break;
        case 'h':
            xl_print_usage(xm_cmd_lookup(CMD), stdout);
            rc = XM_EXIT_OK;
            goto out;
        default:
            rc = xl_option_error(CMD, opt, argv);
            goto out;
        }
    }
    if (optind < argc) {
        rc = xl_usage_error(CMD, "unexpected argument '%s'", argv[optind]);
        goto out;
    }

    rc = xl_run_request("xl maint-status", &req, DEADLINE_S, json, &reply);
    if (rc)
        goto out;
    rc = xm_reply_render_failure(&reply, "xl maint-status", json, stdout,
                                 stderr);
    if (rc >= 0)
        goto out;
    if (json)
        xm_reply_print_json(&reply, stdout);
    else
        xm_status_print(reply.result, stdout);
    rc = XM_EXIT_OK;

out:
    xm_reply_dispose(&reply);
    xm_request_dispose(&req);
    return rc;
}
