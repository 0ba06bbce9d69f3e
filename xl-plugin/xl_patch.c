/*
 * xl_patch.c -- `xl patch apply|revert|list|check`: hypervisor
 * livepatches through xenmaintd.
 *
 * A small table maps each action to its request op, its one positional
 * argument (a payload or manifest path made absolute here, a livepatch
 * name, or none) and how long to wait.  check only tells whether a
 * manifest's patch would apply here (exit 4 when it would not).
 *
 * apply without --in-place is one job of the agent: drain, pre-flight,
 * upload, apply, verify, undrain.  It takes the drain's options (--to,
 * --parallel, --timeout, --notice, --skip-blocked, --compress,
 * -n/--dry-run or the global -N), and while it runs shows each step as
 * the agent writes it (job/<id>/step) above the per-guest progress of
 * the drain's and the undrain's migrations (xm_step_view over
 * xm_guest_view, as xl drain shows them).  The result is printed by
 * xm_patch_print: the steps, the drain's and the undrain's tables, the
 * verification and the host's final state; xm_patch_apply_exit_code
 * says how it ended (README.md).
 */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "xl.h"

#define CMD "patch"
#define DRAIN_DEADLINE_S 3600u    /* as xl drain: without --timeout */
#define UNDRAIN_DEADLINE_S 3600u  /* as xl undrain: without --timeout */
#define DEADLINE_GRACE_S 60u      /* the agent times out first */
#define GUEST_READ_MS 250u        /* read the job's keys at most 4/s */

enum patch_arg { ARG_NONE, ARG_PATH, ARG_NAME };

static const struct patch_action {
    const char *name;
    enum xm_req_op op;
    enum patch_arg arg;
    const char *arg_name;     /* for messages */
    bool drain_options;       /* --in-place, the drain's options, -N */
    unsigned deadline_s;      /* apply: see apply_deadline_s */
} patch_actions[] = {
    { "apply", XM_OP_PATCH_APPLY, ARG_PATH, "PAYLOAD|MANIFEST", true,
      3600 },
    { "revert", XM_OP_PATCH_REVERT, ARG_NAME, "NAME", false, 3600 },
    { "list", XM_OP_PATCH_LIST, ARG_NONE, NULL, false, 60 },
    { "check", XM_OP_PATCH_CHECK, ARG_PATH, "MANIFEST", false, 120 },
};

enum { OPT_IN_PLACE = 256, OPT_JSON, OPT_TO, OPT_PARALLEL, OPT_TIMEOUT,
       OPT_NOTICE, OPT_SKIP_BLOCKED, OPT_COMPRESS };

/*
 * How long xl waits for an apply.  In place: the patch alone.  Around a
 * drain: what xl drain waits (--timeout bounds each migration, so up to
 * four times it, at least an hour) plus what xl undrain waits (--timeout
 * and a grace, or an hour); the agent ends the job itself, this only
 * guards against a vanished agent.  At most about 3.0e6 s, which still
 * fits the client's unsigned milliseconds.
 */
static unsigned
apply_deadline_s(const struct xm_request *req)
{
    unsigned drain_s = DRAIN_DEADLINE_S, undrain_s = UNDRAIN_DEADLINE_S;
    unsigned t = req->timeout_s;

    if (req->in_place || req->dry_run)
        return t + DEADLINE_GRACE_S > DRAIN_DEADLINE_S
                   ? t + DEADLINE_GRACE_S : DRAIN_DEADLINE_S;
    if (t) {
        if (t * 4 + DEADLINE_GRACE_S > drain_s)
            drain_s = t * 4 + DEADLINE_GRACE_S;
        undrain_s = t + DEADLINE_GRACE_S;
    }
    return drain_s + undrain_s;
}

/* A failed apply's result may still say which steps ran and what the
 * drain did: print them as for a done one. */
static bool
result_has_details(const xm_json *result)
{
    static const char *const keys[] = {
        "steps", "drain", "undrain", "verify", "host_state",
    };

    if (!result || xm_json_type(result) != XM_JSON_OBJECT)
        return false;
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
        if (xm_json_get(result, keys[i]))
            return true;
    return false;
}

int
main_patch(int argc, char **argv)
{
    static const struct option longopts[] = {
        { "in-place", no_argument, NULL, OPT_IN_PLACE },
        { "json", no_argument, NULL, OPT_JSON },
        { "dry-run", no_argument, NULL, 'n' },
        { "to", required_argument, NULL, OPT_TO },
        { "parallel", required_argument, NULL, OPT_PARALLEL },
        { "timeout", required_argument, NULL, OPT_TIMEOUT },
        { "notice", required_argument, NULL, OPT_NOTICE },
        { "skip-blocked", no_argument, NULL, OPT_SKIP_BLOCKED },
        { "compress", required_argument, NULL, OPT_COMPRESS },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    const struct patch_action *action = NULL;
    struct xm_request req;
    struct xm_reply reply;
    struct xm_guest_view view;
    struct xm_step_view steps;
    struct xm_job_hooks hooks;
    char what[32];
    /* The first option given that only apply takes, and the first that
     * only goes with a drain (not with --in-place). */
    const char *apply_only = NULL, *drain_only = NULL;
    bool json = false, in_place = false, skip = false, hooked = false;
    unsigned deadline_s;
    int opt, rc;

    xm_request_init(&req);
    xm_reply_init(&reply);
    xm_guest_view_init(&view, XM_VIEW_LINES, stdout, stderr,
                       "xl patch apply");
    xm_step_view_init(&steps, &view);

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
    while ((opt = getopt_long(argc, argv, ":nh", longopts, NULL)) != -1) {
        switch (opt) {
        case OPT_IN_PLACE:
            in_place = true;
            if (!apply_only)
                apply_only = "--in-place";
            break;
        case OPT_JSON:
            json = true;
            break;
        case 'n':
            req.dry_run = true;
            if (!apply_only)
                apply_only = "--dry-run";
            break;
        case OPT_TO:
            rc = xl_parse_targets(CMD, optarg, &req);
            if (rc)
                goto out;
            if (!drain_only)
                drain_only = "--to";
            break;
        case OPT_PARALLEL:
            rc = xl_parse_count(CMD, "--parallel", optarg,
                                XM_REQ_PARALLEL_MAX, &req.parallel);
            if (rc)
                goto out;
            if (!drain_only)
                drain_only = "--parallel";
            break;
        case OPT_TIMEOUT:
            rc = xl_parse_count(CMD, "--timeout", optarg,
                                XM_REQ_TIMEOUT_MAX, &req.timeout_s);
            if (rc)
                goto out;
            if (!apply_only)
                apply_only = "--timeout";
            break;
        case OPT_NOTICE:
            rc = xl_parse_uint(CMD, "--notice", optarg, XM_REQ_NOTICE_MAX,
                               &req.notice_s);
            if (rc)
                goto out;
            if (!drain_only)
                drain_only = "--notice";
            break;
        case OPT_SKIP_BLOCKED:
            skip = true;
            if (!drain_only)
                drain_only = "--skip-blocked";
            break;
        case OPT_COMPRESS:
            rc = xl_parse_compress(CMD, optarg, &req);
            if (rc)
                goto out;
            if (!drain_only)
                drain_only = "--compress";
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
    if (!action->drain_options) {
        if (!apply_only)
            apply_only = drain_only;
        if (apply_only) {
            rc = xl_usage_error(CMD, "%s only goes with apply", apply_only);
            goto out;
        }
        if (xl_dry_run) {
            rc = xl_usage_error(CMD, "-N (dry run) only goes with apply");
            goto out;
        }
    }
    if (in_place && drain_only) {
        rc = xl_usage_error(CMD, "%s does not go with --in-place (the "
                            "host is not drained)", drain_only);
        goto out;
    }
    req.in_place = in_place;
    if (action->drain_options) {
        req.dry_run = req.dry_run || xl_dry_run;
        req.blocked = skip ? XM_BLOCKED_SKIP : XM_BLOCKED_REFUSE;
    }

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

    deadline_s = action->deadline_s;
    if (action->op == XM_OP_PATCH_APPLY) {
        deadline_s = apply_deadline_s(&req);
        /* Around a drain: the steps, and the migrations as they go.  A
         * dry run moves nothing and prints one document; in place there
         * is nothing to show but xl's own progress. */
        if (!req.in_place && !req.dry_run) {
            view.mode = json ? XM_VIEW_JSON
                      : isatty(STDOUT_FILENO) && xl_verbose == 0
                      ? XM_VIEW_TTY : XM_VIEW_LINES;
            view.homecoming_by_id = true;
            view.min_interval_ms = GUEST_READ_MS;
            xm_step_view_hooks(&steps, &hooks);
            /* xl_run_request builds the client's options itself. */
            xm_client_set_job_hooks(&hooks);
            hooked = true;
        }
    }
    rc = xl_run_request(what, &req, deadline_s, json, &reply);
    if (hooked)
        xm_client_set_job_hooks(NULL);
    if (rc)
        goto out;
    rc = xm_reply_render_failure(&reply, what, json, stdout, stderr);
    if (rc >= 0) {
        if (action->op == XM_OP_PATCH_APPLY && !json &&
            result_has_details(reply.result))
            xm_patch_print(reply.result, stdout);
        goto out;
    }
    if (json)
        xm_reply_print_json(&reply, stdout);
    else
        xm_patch_print(reply.result, stdout);
    switch (action->op) {
    case XM_OP_PATCH_CHECK:
        rc = xm_patch_check_exit_code(reply.result);
        break;
    case XM_OP_PATCH_APPLY:
        rc = xm_patch_apply_exit_code(reply.result);
        if (!json && rc == XM_EXIT_PARTIAL)
            fputs("xl patch apply: partial: patched, but some guests did "
                  "not come back\n", stderr);
        else if (!json && rc == XM_EXIT_BLOCKED)
            fputs("xl patch apply: plan blocked: some guests cannot "
                  "move\n", stderr);
        else if (!json && rc != XM_EXIT_OK)
            fputs("xl patch apply: failed\n", stderr);
        break;
    default:
        rc = XM_EXIT_OK;
        break;
    }

out:
    xm_guest_view_dispose(&view);
    xm_reply_dispose(&reply);
    xm_request_dispose(&req);
    return rc;
}
