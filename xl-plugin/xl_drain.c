/*
 * xl_drain.c -- `xl drain`: live-migrate every guest off this host.
 *
 * Parses the options into a drain request, hands it to xenmaintd through
 * xl_run_request and renders the plan or the outcome: a table of moves
 * (GUEST DOMID MEMORY -> TARGET STATE WHY), each migration's stream
 * (libxl's bytes, the wire's, the compression, the downtime) and the
 * guests that cannot move.  While a real drain runs, each migration's
 * progress is shown as the agent writes it (xm_guest_view: bars on a
 * terminal, one line per phase otherwise, JSON events with --json, the
 * result last).  --compress says how the streams go (the agent checks
 * the name; xl only its characters).  A dry
 * run (-n, --dry-run or the global -N) only plans, and prints as it
 * always did.  The exit code says whether the host is empty (see
 * README.md).
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "xl.h"
#include "xm_err.h"

#define CMD "drain"
#define DEFAULT_DEADLINE_S 3600u
#define DEADLINE_GRACE_S 60u     /* the agent times out first */
#define GUEST_READ_MS 250u       /* read the per-guest keys at most 4/s */

enum { OPT_TO = 256, OPT_PARALLEL, OPT_TIMEOUT, OPT_NOTICE,
       OPT_SKIP_BLOCKED, OPT_SHUTDOWN_BLOCKED, OPT_JSON, OPT_COMPRESS };

int
main_drain(int argc, char **argv)
{
    static const struct option longopts[] = {
        { "dry-run", no_argument, NULL, 'n' },
        { "to", required_argument, NULL, OPT_TO },
        { "parallel", required_argument, NULL, OPT_PARALLEL },
        { "timeout", required_argument, NULL, OPT_TIMEOUT },
        { "notice", required_argument, NULL, OPT_NOTICE },
        { "skip-blocked", no_argument, NULL, OPT_SKIP_BLOCKED },
        { "shutdown-blocked", no_argument, NULL, OPT_SHUTDOWN_BLOCKED },
        { "json", no_argument, NULL, OPT_JSON },
        { "compress", required_argument, NULL, OPT_COMPRESS },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    struct xm_request req;
    struct xm_reply reply;
    struct xm_guest_view view;
    struct xm_job_hooks hooks;
    bool json = false, skip = false, shutdown = false, refused = false;
    unsigned deadline_s;
    int opt, rc;

    xm_request_init(&req);
    xm_reply_init(&reply);
    xm_guest_view_init(&view, XM_VIEW_LINES, stdout, stderr, "xl drain");
    req.op = XM_OP_DRAIN;
    req.dry_run = xl_dry_run;

    while ((opt = getopt_long(argc, argv, ":nh", longopts, NULL)) != -1) {
        switch (opt) {
        case 'n':
            req.dry_run = true;
            break;
        case OPT_TO:
            rc = xl_parse_targets(CMD, optarg, &req);
            if (rc)
                goto out;
            break;
        case OPT_PARALLEL:
            rc = xl_parse_count(CMD, "--parallel", optarg,
                                XM_REQ_PARALLEL_MAX, &req.parallel);
            if (rc)
                goto out;
            break;
        case OPT_TIMEOUT:
            rc = xl_parse_count(CMD, "--timeout", optarg,
                                XM_REQ_TIMEOUT_MAX, &req.timeout_s);
            if (rc)
                goto out;
            break;
        case OPT_NOTICE:
            rc = xl_parse_uint(CMD, "--notice", optarg, XM_REQ_NOTICE_MAX,
                               &req.notice_s);
            if (rc)
                goto out;
            break;
        case OPT_SKIP_BLOCKED:
            skip = true;
            break;
        case OPT_SHUTDOWN_BLOCKED:
            shutdown = true;
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
    if (skip && shutdown) {
        rc = xl_usage_error(CMD, "--skip-blocked and --shutdown-blocked "
                            "exclude each other");
        goto out;
    }
    /* --notice goes with any drain: the time guests are given before
     * they move (or are shut down, with --shutdown-blocked). */
    req.blocked = skip ? XM_BLOCKED_SKIP
                : shutdown ? XM_BLOCKED_SHUTDOWN : XM_BLOCKED_REFUSE;

    /* --timeout bounds each guest, not the drain: the agent ends every
     * migration itself, so xl only guards against a vanished agent. */
    deadline_s = DEFAULT_DEADLINE_S;
    if (!req.dry_run && req.timeout_s &&
        req.timeout_s * 4 + DEADLINE_GRACE_S > deadline_s)
        deadline_s = req.timeout_s * 4 + DEADLINE_GRACE_S;
    /* A real drain shows its migrations as they go; a dry run has none,
     * and its output stays one document. */
    if (!req.dry_run) {
        view.mode = json ? XM_VIEW_JSON
                  : isatty(STDOUT_FILENO) && xl_verbose == 0
                  ? XM_VIEW_TTY : XM_VIEW_LINES;
        view.min_interval_ms = GUEST_READ_MS;
        xm_guest_view_hooks(&view, &hooks);
        /* xl_run_request builds the client's options itself. */
        xm_client_set_job_hooks(&hooks);
    }
    rc = xl_run_request("xl drain", &req, deadline_s, json, &reply);
    xm_client_set_job_hooks(NULL);
    if (rc)
        goto out;
    rc = xm_reply_render_failure(&reply, "xl drain", json, stdout, stderr);
    if (rc >= 0) {
        /* A failed drain may still say what it did or planned. */
        if (!json && reply.result &&
            (xm_json_get(reply.result, "moves") ||
             xm_json_get(reply.result, "blocked")))
            xm_drain_print(reply.result, req.dry_run, stdout);
        goto out;
    }
    if (json)
        xm_reply_print_json(&reply, stdout);
    else
        xm_drain_print(reply.result, req.dry_run, stdout);
    rc = xm_drain_exit_code(reply.result, req.dry_run);
    if (!json && rc == XM_EXIT_BLOCKED)
        fprintf(stderr, "xl drain: %s: some guests cannot move\n",
                req.dry_run ? "plan blocked"
                : xm_json_get_bool(reply.result, "refused", &refused) ==
                  XM_OK && refused ? "refused" : "blocked");
    else if (!json && rc == XM_EXIT_PARTIAL)
        fputs("xl drain: partial: some guests are still here\n", stderr);
    else if (!json && !req.dry_run && rc == XM_EXIT_FAILED)
        fputs("xl drain: failed: no guest moved\n", stderr);

out:
    xm_guest_view_dispose(&view);
    xm_reply_dispose(&reply);
    xm_request_dispose(&req);
    return rc;
}
