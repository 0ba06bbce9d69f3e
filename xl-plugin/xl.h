/*
 * xl.h -- the xenmaint `xl` dispatcher, its command table and the
 * helpers its subcommands share.
 *
 * Our `xl` sits in front of the real xl: it reads xl's global options,
 * runs the subcommands listed in xm_cmd_table (cmdtable.c) and execs the
 * real xl for everything else.  Each subcommand lives in its own file
 * (xl_drain.c, xl_undrain.c, xl_patch.c, xl_maint_status.c) and talks to
 * xenmaintd through client.h.  The table's flags state each command's
 * preconditions; xl.c checks them, not the subcommands.
 */
#ifndef XL_PLUGIN_XL_H
#define XL_PLUGIN_XL_H

#include <signal.h>
#include <stdbool.h>
#include <stdio.h>

#include "client.h"
#include "xm_request.h"

#define XL_CMD_NEEDS_AGENT (1u << 0)  /* talks to xenmaintd */
#define XL_CMD_MODIFIES (1u << 1)     /* changes the host: needs root */
#define XL_CMD_CAN_DRYRUN (1u << 2)   /* honours the global -N */

struct xm_cmd_spec {
    const char *name;
    int (*impl)(int argc, char **argv);   /* argv[0] is the name */
    unsigned flags;                       /* XL_CMD_* */
    const char *summary;                  /* one line, for `xl help` */
    const char *usage;                    /* after "xl <name> " */
    const char *options;                  /* option lines, or "" */
};

extern const struct xm_cmd_spec xm_cmd_table[];
extern const unsigned xm_cmd_table_len;
const struct xm_cmd_spec *xm_cmd_lookup(const char *name);

/* Set by the dispatcher from the global options. */
extern int xl_verbose;                      /* number of -v */
extern bool xl_dry_run;                     /* -N */

/* The subcommands. */
int main_drain(int argc, char **argv);
int main_undrain(int argc, char **argv);
int main_patch(int argc, char **argv);
int main_maint_status(int argc, char **argv);

/* `xl help <name>`: usage, options and exit codes of one command. */
void xl_print_usage(const struct xm_cmd_spec *spec, FILE *out);
/* "xl <cmd>: <message>" and a hint on stderr; returns XM_EXIT_USAGE. */
int xl_usage_error(const char *cmd, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* After getopt returned '?' or ':' (optstrings start with ':'), say
 * which option was wrong; returns XM_EXIT_USAGE. */
int xl_option_error(const char *cmd, int opt, char **argv);
/* A decimal number in [0, max], or a usage error naming opt. */
int xl_parse_uint(const char *cmd, const char *opt, const char *arg,
                  unsigned max, unsigned *n_r);
/* An absolute, resolved path for a file argument (heap), or a usage
 * error naming what. */
int xl_abs_path(const char *cmd, const char *what, const char *arg,
                char **path_r);
/* --to A,B,C: add each host to req->to, checking its name, that none
 * is given twice and that there are at most XM_REQ_TO_MAX; a usage error
 * naming cmd otherwise (XM_EXIT_FAILED when out of memory). */
int xl_parse_targets(const char *cmd, const char *arg,
                     struct xm_request *req);
/* A count of at least 1 and at most max (--parallel, --timeout). */
int xl_parse_count(const char *cmd, const char *opt, const char *arg,
                   unsigned max, unsigned *n_r);
/* --compress SPEC into req (the agent says whether it has the
 * algorithm). */
int xl_parse_compress(const char *cmd, const char *arg,
                      struct xm_request *req);

/*
 * Connect to xenstore, check the preconditions of the running command
 * (root for a modifying request, the agent for the rest), send req and
 * wait at most deadline_s (0: 60 s).  XM_OK with *reply_r filled, or the
 * exit code to return (the error already printed).
 */
int xl_run_request(const char *what, const struct xm_request *req,
                   unsigned deadline_s, bool json,
                   struct xm_reply *reply_r);

#endif /* XL_PLUGIN_XL_H */
