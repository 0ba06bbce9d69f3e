/*
 * xl_patch.c -- `xl patch apply|revert|list|check`: hypervisor
 * livepatches through xenmaintd.
 *
 * A small table maps each action to its request op, its one positional
 * argument (a payload or manifest path made absolute here, a livepatch
 * name, or none) and how long to wait.  apply drains the host around
 * the patch unless --in-place; check only tells whether a manifest's
 * patch would apply here (exit 4 when it would not).
 */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "xl.h"

#define CMD "patch"

enum patch_arg { ARG_NONE, ARG_PATH, ARG_NAME };

static const struct patch_action {
    const char *name;
    enum xm_req_op op;
    enum patch_arg arg;
    const char *arg_name;     /* for messages */
    bool in_place_ok;
    unsigned deadline_s;
} patch_actions[] = {
    { "apply", XM_OP_PATCH_APPLY, ARG_PATH, "PAYLOAD|MANIFEST", true,
      3600 },
    { "revert", XM_OP_PATCH_REVERT, ARG_NAME, "NAME", false, 3600 },
    { "list", XM_OP_PATCH_LIST, ARG_NONE, NULL, false, 60 },
    { "check", XM_OP_PATCH_CHECK, ARG_PATH, "MANIFEST", false, 120 },
};

enum { OPT_IN_PLACE = 256, OPT_JSON };

int
main_patch(int argc, char **argv)
{
    static const struct option longopts[] = {
        { "in-place", no_argument, NULL, OPT_IN_PLACE },
        { "json", no_argument, NULL, OPT_JSON },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    const struct patch_action *action = NULL;
    struct xm_request req;
    struct xm_reply reply;
    char what[32];
    bool json = false, in_place = false;
    int opt, rc;

    xm_request_init(&req);
    xm_reply_init(&reply);

    if (argc < 2 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "--help") == 0) {
        xl_print_usage(xm_cmd_lookup(CMD), argc < 2 ? stderr : stdout);
        rc = argc < 2 ? XM_EXIT_USAGE : XM_EXIT_OK;
        goto out;
    }
    for (size_t i = 0; i < sizeof(patch_actions) / sizeof(*patch_actions);
         i++)
        if (strcmp(argv[1], patch_actions[i].name) == 0)
            action = &patch_actions[i];
    if (!action) {
        rc = xl_usage_error(CMD, "unknown action '%s' (want apply, revert, "
                            "list or check)", argv[1]);
        goto out;
    }
    snprintf(what, sizeof(what), "xl patch %s", action->name);
    req.op = action->op;

    /* The action's own options: argv[1] plays argv[0]. */
    argc--;
    argv++;
    optind = 0;
    while ((opt = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
        switch (opt) {
        case OPT_IN_PLACE:
            in_place = true;
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
    if (in_place && !action->in_place_ok) {
        rc = xl_usage_error(CMD, "--in-place only goes with apply");
        goto out;
    }
    req.in_place = in_place;

    if (action->arg == ARG_NONE) {
        if (optind < argc) {
            rc = xl_usage_error(CMD, "%s takes no argument, got '%s'",
                                action->name, argv[optind]);
            goto out;
        }
    } else {
        if (optind >= argc) {
            rc = xl_usage_error(CMD, "%s needs %s", action->name,
                                action->arg_name);
            goto out;
        }
        if (optind + 1 < argc) {
            rc = xl_usage_error(CMD, "unexpected argument '%s'",
                                argv[optind + 1]);
            goto out;
        }
        if (action->arg == ARG_PATH) {
            rc = xl_abs_path(CMD, action->arg_name, argv[optind],
                             &req.payload);
            if (rc)
                goto out;
        } else {
            if (!xm_request_patch_name_valid(argv[optind])) {
                rc = xl_usage_error(CMD, "invalid livepatch name '%s' "
                                    "(want letters, digits, '.', '_', "
                                    "'-'; at most %d)", argv[optind],
                                    XM_REQ_NAME_MAX);
                goto out;
            }
            req.name = strdup(argv[optind]);
            if (!req.name) {
                fputs("xl patch: out of memory\n", stderr);
                rc = XM_EXIT_FAILED;
                goto out;
            }
        }
    }

    rc = xl_run_request(what, &req, action->deadline_s, json, &reply);
    if (rc)
        goto out;
    rc = xm_reply_render_failure(&reply, what, json, stdout, stderr);
    if (rc >= 0)
        goto out;
    if (json)
        xm_reply_print_json(&reply, stdout);
    else
        xm_patch_print(reply.result, stdout);
    rc = action->op == XM_OP_PATCH_CHECK
             ? xm_patch_check_exit_code(reply.result) : XM_EXIT_OK;

out:
    xm_reply_dispose(&reply);
    xm_request_dispose(&req);
    return rc;
}
