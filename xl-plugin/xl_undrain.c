/*
 * xl_undrain.c -- `xl undrain`: put this host back in service.
 *
 * Asks xenmaintd to mark the host active again and, unless --stay is
 * given, to bring back the guests that the drain moved away.  Renders
 * the moves like `xl drain` does.
 */
#include <getopt.h>
#include <stdlib.h>

#include "xl.h"

#define CMD "undrain"
#define DEADLINE_S 3600u

enum { OPT_STAY = 256, OPT_JSON };

int
main_undrain(int argc, char **argv)
{
    static const struct option longopts[] = {
        { "stay", no_argument, NULL, OPT_STAY },
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
    req.op = XM_OP_UNDRAIN;

    while ((opt = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
        switch (opt) {
        case OPT_STAY:
            req.stay = true;
            break;
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

    rc = xl_run_request("xl undrain", &req, DEADLINE_S, json, &reply);
    if (rc)
        goto out;
    rc = xm_reply_render_failure(&reply, "xl undrain", json, stdout,
                                 stderr);
    if (rc >= 0)
        goto out;
    if (json) {
        xm_reply_print_json(&reply, stdout);
        rc = XM_EXIT_OK;
    } else if (xm_json_get(reply.result, "moves")) {
        xm_drain_print(reply.result, false, stdout);
        rc = xm_drain_exit_code(reply.result, false);
    } else {
        fputs("Host back in service.\n", stdout);
        rc = XM_EXIT_OK;
    }
    if (json && xm_json_get(reply.result, "moves"))
        rc = xm_drain_exit_code(reply.result, false);

out:
    xm_reply_dispose(&reply);
    xm_request_dispose(&req);
    return rc;
}
