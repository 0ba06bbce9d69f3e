/*
 * xl_undrain.c -- `xl undrain`: put this host back in service.
 *
 * Asks xenmaintd to mark the host active again and, unless --stay is
 * given, to bring back the guests that the drain moved away (their
 * current hosts compress the streams as --compress says).  While they
 * come home, each migration's progress is shown as for `xl drain`
 * (xm_guest_view); then a table GUEST FROM STATE WHY, each migration's
 * stream and downtime, the guests whose current host refused to send
 * them and the peers that could not be reached.  Exit 0 only when every
 * guest came home (or, with --stay, when there was nothing to do); see
 * README.md.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "xl.h"

#define CMD "undrain"
#define DEFAULT_DEADLINE_S 3600u
#define DEADLINE_GRACE_S 60u     /* the agent times out first */
#define GUEST_READ_MS 250u       /* read the per-guest keys at most 4/s */

enum { OPT_STAY = 256, OPT_TIMEOUT, OPT_JSON, OPT_COMPRESS };

int
main_undrain(int argc, char **argv)
{
    static const struct option longopts[] = {
        { "stay", no_argument, NULL, OPT_STAY },
        { "timeout", required_argument, NULL, OPT_TIMEOUT },
        { "json", no_argument, NULL, OPT_JSON },
        { "compress", required_argument, NULL, OPT_COMPRESS },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    struct xm_request req;
    struct xm_reply reply;
    struct xm_guest_view view;
    struct xm_job_hooks hooks;
    bool json = false;
    unsigned deadline_s;
    int opt, rc;

    xm_request_init(&req);
    xm_reply_init(&reply);
    xm_guest_view_init(&view, XM_VIEW_LINES, stdout, stderr, "xl undrain");
    req.op = XM_OP_UNDRAIN;

    while ((opt = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
        switch (opt) {
        case OPT_STAY:
            req.stay = true;
            break;
        case OPT_TIMEOUT:
            rc = xl_parse_count(CMD, "--timeout", optarg,
                                XM_REQ_TIMEOUT_MAX, &req.timeout_s);
            if (rc)
                goto out;
            break;
        case OPT_JSON:
            json = true;
            break;
        case OPT_COMPRESS:
            rc = xl_parse_compress(CMD, optarg, &req);
            if (rc)
                goto out;
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

    deadline_s = req.timeout_s ? req.timeout_s + DEADLINE_GRACE_S
                               : DEFAULT_DEADLINE_S;
    view.mode = json ? XM_VIEW_JSON
              : isatty(STDOUT_FILENO) && xl_verbose == 0 ? XM_VIEW_TTY
              : XM_VIEW_LINES;
    view.homecoming = true;
    view.min_interval_ms = GUEST_READ_MS;
    xm_guest_view_hooks(&view, &hooks);
    /* xl_run_request builds the client's options itself. */
    xm_client_set_job_hooks(&hooks);
    rc = xl_run_request("xl undrain", &req, deadline_s, json, &reply);
    xm_client_set_job_hooks(NULL);
    if (rc)
        goto out;
    rc = xm_reply_render_failure(&reply, "xl undrain", json, stdout,
                                 stderr);
    if (rc >= 0) {
        /* A failed undrain may still say which guests came home. */
        if (!json && reply.result &&
            (xm_json_get(reply.result, "moves") ||
             xm_json_get(reply.result, "refused") ||
             xm_json_get(reply.result, "unreachable")))
            xm_undrain_print(reply.result, stdout);
        goto out;
    }
    if (json)
        xm_reply_print_json(&reply, stdout);
    else
        xm_undrain_print(reply.result, stdout);
    rc = xm_undrain_exit_code(reply.result);
    if (!json && rc == XM_EXIT_PARTIAL)
        fputs("xl undrain: partial: some guests did not come back\n",
              stderr);
    else if (!json && rc == XM_EXIT_FAILED)
        fputs("xl undrain: failed: no guest came back\n", stderr);

out:
    xm_guest_view_dispose(&view);
    xm_reply_dispose(&reply);
    xm_request_dispose(&req);
    return rc;
}
