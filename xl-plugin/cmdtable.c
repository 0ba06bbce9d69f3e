/*
 * cmdtable.c -- the one table of xenmaint's xl subcommands.
 *
 * Like xl's own tools/xl/xl_cmdtable.c: name, implementation, flags and
 * help text.  The flags are preconditions that the dispatcher (xl.c)
 * checks before and while a command runs: XL_CMD_CAN_DRYRUN admits the
 * global -N, XL_CMD_MODIFIES needs root for requests that change the
 * host, XL_CMD_NEEDS_AGENT needs xenmaintd running.  A command missing
 * from this table goes to the real xl.
 */
#include <string.h>

#include "xl.h"

const struct xm_cmd_spec xm_cmd_table[] = {
    { "drain", &main_drain,
      XL_CMD_NEEDS_AGENT | XL_CMD_MODIFIES | XL_CMD_CAN_DRYRUN,
      "Live-migrate every guest off this host (xenmaint)",
      "[options]",
      "-n, --dry-run         Only plan: show where each guest would go\n"
      "                      (same as the global -N).\n"
      "--to HOST[,HOST...]   Migrate only to these hosts.\n"
      "--parallel N          At most N migration streams at once (1-64).\n"
      "--timeout S           Give up after S seconds (default: agent's).\n"
      "--notice S            Give guests S seconds' notice (or until all\n"
      "                      acknowledge) before they move.\n"
      "--skip-blocked        Leave guests that cannot move running here.\n"
      "--shutdown-blocked    Shut down cleanly the guests that cannot\n"
      "                      move: a PV poweroff request (as xl\n"
      "                      shutdown), waiting up to --timeout per\n"
      "                      guest; never forced: one still running then\n"
      "                      keeps running.  Their configs are kept and\n"
      "                      xl undrain starts them again here (also\n"
      "                      with --stay).\n"
      "--compress C          Compress the migration streams: auto (measure\n"
      "                      the link and the CPU, then choose), none,\n"
      "                      zero (zero pages elided, the rest as is),\n"
      "                      lz4, zstd or zstd:LEVEL (1-22): these two\n"
      "                      elide zero pages too; default: the agent's\n"
      "                      (compress in xenmaint.conf, auto).  A peer\n"
      "                      without compression gets plain streams.\n"
      "--json                Print the agent's result as JSON.\n"
      "-h, --help            Print this help.\n" },
    { "undrain", &main_undrain,
      XL_CMD_NEEDS_AGENT | XL_CMD_MODIFIES,
      "Put this host back in service after a drain (xenmaint)",
      "[options]",
      "--stay                Do not bring the drained guests back (the\n"
      "                      guests xl drain --shutdown-blocked shut down\n"
      "                      are this host's own: they are started here\n"
      "                      even so).\n"
      "--timeout S           Give up after S seconds (default: agent's).\n"
      "--compress C          How the hosts that hold the guests compress\n"
      "                      their streams home: auto, none, zero, lz4,\n"
      "                      zstd or zstd:LEVEL (default: their agent's).\n"
      "--json                Print the agent's result as JSON.\n"
      "-h, --help            Print this help.\n" },
    { "patch", &main_patch,
      XL_CMD_NEEDS_AGENT | XL_CMD_MODIFIES | XL_CMD_CAN_DRYRUN,
      "Apply, revert, list or check hypervisor livepatches (xenmaint)",
      "apply [options] PAYLOAD|MANIFEST\n"
      "       xl patch revert NAME [--json]\n"
      "       xl patch list [--json]\n"
      "       xl patch check MANIFEST [--json]",
      "--in-place            apply: patch with the guests running here.\n"
      "                      Without it, apply drains the host first (as\n"
      "                      xl drain), then checks, uploads, applies and\n"
      "                      verifies the livepatch and brings the guests\n"
      "                      back (as xl undrain), as one job.  Only\n"
      "                      --timeout, --dry-run and --json go with it.\n"
      "-n, --dry-run         apply: plan the drain and check the payload,\n"
      "                      change nothing (same as the global -N).\n"
      "--to HOST[,HOST...]   apply: migrate only to these hosts.\n"
      "--parallel N          apply: at most N streams at once (1-64).\n"
      "--timeout S           apply: give up after S seconds (default:\n"
      "                      agent's).\n"
      "--notice S            apply: give guests S seconds' notice (or until\n"
      "                      all acknowledge) before they move.\n"
      "--skip-blocked        apply: leave guests that cannot move running\n"
      "                      here.\n"
      "--compress C          apply: compress the migration streams, as\n"
      "                      xl drain --compress: auto, none, zero, lz4,\n"
      "                      zstd or zstd:LEVEL; default: the agent's.\n"
      "--json                Print the agent's result as JSON (apply: the\n"
      "                      step and progress events first, one a line).\n"
      "-h, --help            Print this help.\n" },
    { "maint-status", &main_maint_status,
      XL_CMD_NEEDS_AGENT,
      "Show the maintenance state of this host and its peers (xenmaint)",
      "[--json]",
      "--json                Print the agent's result as JSON.\n"
      "-h, --help            Print this help.\n" },
};

const unsigned xm_cmd_table_len =
    sizeof(xm_cmd_table) / sizeof(xm_cmd_table[0]);

const struct xm_cmd_spec *
xm_cmd_lookup(const char *name)
{
    if (!name)
        return NULL;
    for (unsigned i = 0; i < xm_cmd_table_len; i++)
        if (strcmp(xm_cmd_table[i].name, name) == 0)
            return &xm_cmd_table[i];
    return NULL;
}
