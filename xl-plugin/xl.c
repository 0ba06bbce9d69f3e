/*
 * xl.c -- the xenmaint dispatcher, installed as `xl` in front of the
 * real xl.
 *
 * xl has no plugin hook, so this program takes its name.  It reads xl
 * 4.17's global options exactly as xl does (getopt "+vftTN": -v may
 * repeat, parsing stops at the first non-option), looks the command up
 * in xm_cmd_table and runs it, checking the table's preconditions.  Any
 * other command is handed to the real xl with execv and the original
 * argv, so its input, output and exit status pass through unchanged.
 * `xl help` runs the real `xl help` and then lists our commands.
 *
 * The real xl is XM_REAL_XL (configure --with-real-xl) unless the
 * environment sets XENMAINT_REAL_XL.  Two guards keep us from running
 * ourselves in a loop: the target must not resolve to this executable,
 * and XENMAINT_XL_DEPTH counts how often we exec'd the real xl within
 * one process tree (a wrapper script that execs us again trips it).
 */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "xl.h"
#include "xm_err.h"
#include "xm_xs.h"

#define REAL_XL_ENV "XENMAINT_REAL_XL"
#define DEPTH_ENV "XENMAINT_XL_DEPTH"
#define DEPTH_MAX 4
#define EXIT_EXEC_FAILED 127

int xl_verbose;
bool xl_dry_run;

static const struct xm_cmd_spec *running_cmd;
static volatile sig_atomic_t interrupts;

static void
on_sigint(int sig)
{
    (void)sig;
    if (interrupts < 100)
        interrupts++;
}

static const char *
real_xl_path(void)
{
    const char *env = getenv(REAL_XL_ENV);

    return env && env[0] ? env : XM_REAL_XL;
}

/*
 * Check that path is not this program and that we are not in an exec
 * loop; on success raise the depth counter for the child.  Returns 0 or
 * prints why not and returns -1.
 */
static int
exec_guard(const char *path)
{
    char self[PATH_MAX], target[PATH_MAX];
    const char *depth_env = getenv(DEPTH_ENV);
    long depth = 0;
    char depth_buf[16];

    if (path[0] != '/') {
        fprintf(stderr, "xl: the real xl must be an absolute path, "
                "got '%s' (check %s)\n", path, REAL_XL_ENV);
        return -1;
    }
    if (realpath("/proc/self/exe", self) && realpath(path, target) &&
        strcmp(self, target) == 0) {
        fprintf(stderr, "xl: the real xl (%s) is this xenmaint dispatcher "
                "itself; set %s or configure --with-real-xl to the "
                "Xen toolstack's xl\n", path, REAL_XL_ENV);
        return -1;
    }
    if (depth_env) {
        char *end;

        errno = 0;
        depth = strtol(depth_env, &end, 10);
        if (errno || end == depth_env || *end || depth < 0)
            depth = 0;
    }
    if (depth >= DEPTH_MAX) {
        fprintf(stderr, "xl: %s runs the xenmaint dispatcher again "
                "(%s=%ld): exec loop; point %s at the Xen toolstack's "
                "xl\n", path, DEPTH_ENV, depth, REAL_XL_ENV);
        return -1;
    }
    snprintf(depth_buf, sizeof(depth_buf), "%ld", depth + 1);
    if (setenv(DEPTH_ENV, depth_buf, 1) != 0) {
        fprintf(stderr, "xl: setenv: %s\n", strerror(errno));
        return -1;
    }
    return 0;
}

/* Replace this process with the real xl; returns only on failure. */
static int
exec_real_xl(char **argv)
{
    const char *path = real_xl_path();

    if (exec_guard(path) != 0)
        return EXIT_FAILURE;
    fflush(NULL);
    execv(path, argv);
    fprintf(stderr, "xl: cannot run the real xl %s: %s\n", path,
            strerror(errno));
    return EXIT_EXEC_FAILED;
}

/* Run the real xl with argv as a child; its exit status, shell-style. */
static int
run_real_xl(char **argv)
{
    const char *path = real_xl_path();
    pid_t pid, got;
    int status;

    if (exec_guard(path) != 0)
        return EXIT_FAILURE;
    fflush(NULL);
    pid = fork();
    if (pid < 0) {
        fprintf(stderr, "xl: fork: %s\n", strerror(errno));
        return EXIT_FAILURE;
    }
    if (pid == 0) {
        execv(path, argv);
        fprintf(stderr, "xl: cannot run the real xl %s: %s\n", path,
                strerror(errno));
        _exit(EXIT_EXEC_FAILED);
    }
    do {
        got = waitpid(pid, &status, 0);
    } while (got < 0 && errno == EINTR);
    if (got < 0) {
        fprintf(stderr, "xl: waitpid: %s\n", strerror(errno));
        return EXIT_FAILURE;
    }
    if (WIFEXITED(status))
        return WEXITSTATUS(status);
    if (WIFSIGNALED(status))
        return 128 + WTERMSIG(status);
    return EXIT_FAILURE;
}

static const char exit_code_help[] =
    "Exit codes:\n"
    "  0    success (drain: the host is empty; dry run: every guest\n"
    "       can move; patch check: applicable or already patched;\n"
    "       patch apply: patched or already patched, and every guest\n"
    "       back)\n"
    "  1    the operation failed\n"
    "  2    usage error\n"
    "  3    xenmaintd is not running or not answering\n"
    "  4    blocked: guests that cannot move (nothing done, or refused);\n"
    "       patch check: no payload applies to this hypervisor;\n"
    "       patch apply: refused, nothing changed\n"
    "  5    timed out\n"
    "  6    partial: some guests moved, some did not (patch apply:\n"
    "       patched, but not every guest came back)\n"
    "  7    patch apply: reboot required (no livepatch for this\n"
    "       hypervisor; the host is left drained)\n"
    "  8    patch apply: verification failed, the livepatch was\n"
    "       reverted (the host is left drained and cordoned)\n"
    "  130  interrupted (Ctrl-C twice)\n";

void
xl_print_usage(const struct xm_cmd_spec *spec, FILE *out)
{
    fprintf(out, "Usage: xl [-v]%s %s %s\n\n%s.\n",
            (spec->flags & XL_CMD_CAN_DRYRUN) ? " [-N]" : "", spec->name,
            spec->usage, spec->summary);
    if (spec->options && spec->options[0])
        fprintf(out, "\nOptions:\n\n%s", spec->options);
    fprintf(out, "\n%s", exit_code_help);
}

static void
print_our_commands(FILE *out)
{
    fputs("\nxenmaint commands (served by xenmaintd on this host):\n\n",
          out);
    for (unsigned i = 0; i < xm_cmd_table_len; i++)
        fprintf(out, " %-19s %s\n", xm_cmd_table[i].name,
                xm_cmd_table[i].summary);
    fputs("\nUse 'xl help <command>' for the options and exit codes of "
          "these.\n", out);
}

/* The real `xl help` (argv given, or a plain one), then our commands. */
static int
do_help(char **argv)
{
    char *plain[] = { (char *)"xl", (char *)"help", NULL };
    int status = run_real_xl(argv ? argv : plain);

    print_our_commands(stdout);
    fflush(stdout);
    return status;
}

int
xl_usage_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, "xl %s: ", cmd);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\nTry 'xl help %s'.\n", cmd);
    return XM_EXIT_USAGE;
}

int
xl_option_error(const char *cmd, int opt, char **argv)
{
    const char *arg = optind > 0 ? argv[optind - 1] : "?";

    if (opt == ':')
        return xl_usage_error(cmd, "option %s needs a value", arg);
    if (optopt)
        return xl_usage_error(cmd, "unknown option -%c", optopt);
    return xl_usage_error(cmd, "unknown option %s", arg);
}

int
xl_parse_uint(const char *cmd, const char *opt, const char *arg,
              unsigned max, unsigned *n_r)
{
    unsigned long n;
    char *end;

    if (!arg || arg[0] < '0' || arg[0] > '9')
        return xl_usage_error(cmd, "%s needs a number, got '%s'", opt,
                              arg ? arg : "");
    errno = 0;
    n = strtoul(arg, &end, 10);
    if (errno || *end || n > max)
        return xl_usage_error(cmd, "%s must be a number from 0 to %u, "
                              "got '%s'", opt, max, arg);
    *n_r = (unsigned)n;
    return XM_EXIT_OK;
}

int
xl_abs_path(const char *cmd, const char *what, const char *arg,
            char **path_r)
{
    char *path;

    *path_r = NULL;
    if (!arg || !arg[0])
        return xl_usage_error(cmd, "%s: empty path", what);
    path = realpath(arg, NULL);
    if (!path)
        return xl_usage_error(cmd, "%s %s: %s", what, arg,
                              strerror(errno));
    if (strlen(path) > XM_REQ_PATH_MAX) {
        free(path);
        return xl_usage_error(cmd, "%s %s: path too long", what, arg);
    }
    *path_r = path;
    return XM_EXIT_OK;
}

int
xl_parse_targets(const char *cmd, const char *arg, struct xm_request *req)
{
    char *copy = strdup(arg ? arg : ""), *save = NULL, *host;
    int rc = XM_EXIT_OK;

    if (!copy) {
        fprintf(stderr, "xl %s: out of memory\n", cmd);
        return XM_EXIT_FAILED;
    }
    for (host = strtok_r(copy, ",", &save); host;
         host = strtok_r(NULL, ",", &save)) {
        char **grown;

        if (!xm_request_host_valid(host)) {
            rc = xl_usage_error(cmd, "--to: invalid host name '%s' (want "
                                "letters, digits, '.', '_', '-'; at most "
                                "%d)", host, XM_REQ_HOST_MAX);
            goto out;
        }
        for (unsigned i = 0; i < req->n_to; i++) {
            if (strcmp(req->to[i], host) == 0) {
                rc = xl_usage_error(cmd, "--to: host %s given twice", host);
                goto out;
            }
        }
        if (req->n_to >= XM_REQ_TO_MAX) {
            rc = xl_usage_error(cmd, "--to: at most %d hosts",
                                XM_REQ_TO_MAX);
            goto out;
        }
        grown = realloc(req->to, (req->n_to + 1) * sizeof(*req->to));
        if (!grown || !(grown[req->n_to] = strdup(host))) {
            if (grown)
                req->to = grown;
            fprintf(stderr, "xl %s: out of memory\n", cmd);
            rc = XM_EXIT_FAILED;
            goto out;
        }
        req->to = grown;
        req->n_to++;
    }
    if (req->n_to == 0)
        rc = xl_usage_error(cmd, "--to needs at least one host name");

out:
    free(copy);
    return rc;
}

/* Requests that only read, which need neither root nor -N care. */
static bool
request_modifies(const struct xm_request *req)
{
    switch (req->op) {
    case XM_OP_DRAIN:
    case XM_OP_PATCH_APPLY:           /* a dry run only plans */
        return !req->dry_run;
    case XM_OP_UNDRAIN:
    case XM_OP_PATCH_REVERT:
        return true;
    case XM_OP_PATCH_LIST:
    case XM_OP_PATCH_CHECK:
    case XM_OP_STATUS:
        return false;
    }
    return true;
}

static void
show_progress(void *arg, const char *state, unsigned percent)
{
    const char *what = arg;

    if (xl_verbose > 0)
        fprintf(stderr, "%s: %s %u%%\n", what, state, percent);
    else
        fprintf(stderr, "\r%s: %s %3u%%", what, state, percent);
}

int
xl_run_request(const char *what, const struct xm_request *req,
               unsigned deadline_s, bool json, struct xm_reply *reply_r)
{
    struct xm_client_opts opts = { 0 };
    struct xm_xs xs = { 0 };
    struct sigaction sa, old_sa;
    bool connected = false, progress_shown = false, handler = false;
    unsigned flags = running_cmd ? running_cmd->flags : 0;
    int rc, exit_code = XM_EXIT_FAILED;

    xm_reply_init(reply_r);
    if ((flags & XL_CMD_MODIFIES) && request_modifies(req) &&
        geteuid() != 0) {
        fprintf(stderr, "%s: must be run as root\n", what);
        goto out;
    }
    if (!(flags & XL_CMD_NEEDS_AGENT)) {
        /* Every command in the table talks to the agent today. */
        fprintf(stderr, "%s: internal error: command does not declare "
                "that it needs xenmaintd\n", what);
        goto out;
    }
    rc = xm_xs_real_open(&xs);
    if (rc) {
        fprintf(stderr, "%s: cannot connect to xenstore: %s (is this "
                "dom0?)\n", what, xm_strerror(rc));
        if (json)
            fprintf(stdout, "{\"error\":{\"code\":\"xenstore\","
                    "\"message\":\"cannot connect to xenstore\"}}\n");
        exit_code = XM_EXIT_NO_AGENT;
        goto out;
    }
    connected = true;

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_sigint;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0;                    /* no SA_RESTART: wake poll */
    interrupts = 0;
    if (sigaction(SIGINT, &sa, &old_sa) == 0)
        handler = true;

    opts.deadline_ms = (deadline_s ? deadline_s : 60) * 1000u;
    opts.interrupts = &interrupts;
    opts.check_pid = true;
    if (!json && (xl_verbose > 0 || isatty(STDERR_FILENO))) {
        opts.progress = show_progress;
        opts.progress_arg = (void *)what;
        progress_shown = xl_verbose == 0;
    }
    if (xl_verbose > 1)
        fprintf(stderr, "%s: sending %s request to xenmaintd\n", what,
                xm_req_op_name(req->op));
    rc = xm_client_call(&xs, req, &opts, reply_r);
    if (progress_shown && reply_r->id[0])
        fputs("\r\033[K", stderr);
    if (xl_verbose > 0 && reply_r->id[0])
        fprintf(stderr, "%s: job %s: %s\n", what, reply_r->id,
                reply_r->outcome == XM_CALL_ANSWERED
                    ? xm_job_state_name(reply_r->state) : "no answer");
    if (reply_r->cancel_sent && reply_r->outcome != XM_CALL_ANSWERED)
        fprintf(stderr, "%s: asked xenmaintd to cancel job %s\n", what,
                reply_r->id);
    exit_code = XM_EXIT_OK;
    (void)rc;                 /* the reply's outcome says what happened */

out:
    if (handler)
        sigaction(SIGINT, &old_sa, NULL);
    if (connected)
        xm_xs_close(&xs);
    return exit_code;
}

/* -h or --help among a subcommand's options (before any "--"). */
static bool
wants_help(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--") == 0)
            return false;
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0)
            return true;
    }
    return false;
}

int
main(int argc, char **argv)
{
    const struct xm_cmd_spec *spec;
    char **orig_argv = NULL;
    bool help = false;
    const char *cmd;
    int opt, ret;

    /* getopt with "+" does not permute, but keep the caller's argv
     * beyond doubt: the real xl must see exactly what we were given. */
    orig_argv = calloc((size_t)argc + 1, sizeof(*orig_argv));
    if (!orig_argv) {
        fputs("xl: out of memory\n", stderr);
        return EXIT_FAILURE;
    }
    memcpy(orig_argv, argv, (size_t)argc * sizeof(*argv));

    opterr = 0;                 /* the real xl reports its own errors */
    while ((opt = getopt(argc, argv, "+vftTNh")) >= 0) {
        switch (opt) {
        case 'v':
            xl_verbose++;
            break;
        case 'N':
            xl_dry_run = true;
            break;
        case 'f':
        case 't':
        case 'T':
            break;              /* meaningful to the real xl only */
        case 'h':
            help = true;        /* not an xl 4.17 option: ours */
            break;
        default:
            /* Let the real xl say "unknown global option" itself. */
            ret = exec_real_xl(orig_argv);
            goto out;
        }
    }
    cmd = optind < argc ? argv[optind] : NULL;

    if (help || !cmd) {
        ret = do_help(NULL);
        /* xl without a command prints help and fails; keep that. */
        if (!help && ret == EXIT_SUCCESS)
            ret = EXIT_FAILURE;
        goto out;
    }
    if (strcmp(cmd, "help") == 0) {
        const char *topic = optind + 1 < argc ? argv[optind + 1] : NULL;

        spec = xm_cmd_lookup(topic);
        if (spec) {
            xl_print_usage(spec, stdout);
            ret = EXIT_SUCCESS;
        } else if (topic) {
            ret = exec_real_xl(orig_argv);
        } else {
            ret = do_help(orig_argv);
        }
        goto out;
    }

    spec = xm_cmd_lookup(cmd);
    if (!spec) {
        ret = exec_real_xl(orig_argv);
        goto out;
    }

    argc -= optind;
    argv += optind;
    optind = 0;                 /* full getopt reset for the command */
    if (!wants_help(argc, argv) && xl_dry_run &&
        !(spec->flags & XL_CMD_CAN_DRYRUN)) {
        ret = xl_usage_error(spec->name, "command does not implement -N "
                             "(dryrun) option");
        goto out;
    }
    running_cmd = spec;
    ret = spec->impl(argc, argv);

out:
    free(orig_argv);
    fflush(stdout);
    return ret;
}

int
xl_parse_count(const char *cmd, const char *opt, const char *arg,
               unsigned max, unsigned *n_r)
{
    int rc = xl_parse_uint(cmd, opt, arg, max, n_r);

    if (rc == XM_EXIT_OK && *n_r == 0)
        rc = xl_usage_error(cmd, "%s must be at least 1", opt);
    return rc;
}

int
xl_parse_compress(const char *cmd, const char *arg, struct xm_request *req)
{
    if (!xm_request_compress_valid(arg))
        return xl_usage_error(cmd, "--compress: '%s' is not auto, none, "
                              "lz4, zstd or zstd:LEVEL", arg);
    snprintf(req->compress, sizeof(req->compress), "%s", arg);
    return XM_EXIT_OK;
}
