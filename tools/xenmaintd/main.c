/*
 * main.c -- xenmaintd, the xenmaint agent of one dom0.
 *
 * Reads the configuration (xl.cfg syntax, default
 * SYSCONFDIR/xenmaint/xenmaint.conf), connects to xenstore and the
 * hypervisor, starts the peer link, and runs the one event loop until
 * SIGTERM or SIGINT.  Without -F it detaches, and the parent returns
 * only once the agent is ready (its xenstore tree published), so a
 * service manager or a script can rely on "xenmaintd && xl ...".
 *
 *   xenmaintd [-F] [-n] [-v] [-c CONFIG] [-p PIDFILE]
 */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "agent.h"
#include "loop.h"
#include "peer.h"
#include "xm_config.h"
#include "xm_err.h"
#include "xm_hv.h"
#include "xm_log.h"
#include "xm_xs.h"

#ifndef XM_SYSCONFDIR
#define XM_SYSCONFDIR "/etc"
#endif
#ifndef XM_RUNSTATEDIR
#define XM_RUNSTATEDIR "/run"
#endif

#define DEFAULT_CONFIG XM_SYSCONFDIR "/xenmaint/xenmaint.conf"
#define DEFAULT_PIDFILE XM_RUNSTATEDIR "/xenmaintd.pid"

struct options {
    const char *config;
    const char *pidfile;
    bool foreground;
    bool check_only;
    bool verbose;
};

static void
usage(FILE *out)
{
    fprintf(out,
            "usage: xenmaintd [-F] [-n] [-v] [-c CONFIG] [-p PIDFILE]\n"
            "  -c CONFIG   configuration file (default %s)\n"
            "  -p PIDFILE  pid file (default %s)\n"
            "  -F          stay in the foreground, log to stderr\n"
            "  -n          check the configuration and exit\n"
            "  -v          log debug messages\n"
            "  -V          print the version and exit\n",
            DEFAULT_CONFIG, DEFAULT_PIDFILE);
}

/* Take the pid file: an flock held for the agent's life tells a second
 * instance that one runs. */
static int
take_pidfile(const char *path, int *fd_r)
{
    char buf[32];
    int fd, n;

    fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) {
        xm_log_err("%s: %s", path, strerror(errno));
        return XM_ERR_IO;
    }
    if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
        n = read(fd, buf, sizeof(buf) - 1);
        buf[n > 0 ? n : 0] = '\0';
        buf[strcspn(buf, "\n")] = '\0';
        xm_log_err("another xenmaintd runs (pid %s, %s)",
                   buf[0] ? buf : "?", path);
        close(fd);
        return XM_ERR_EXISTS;
    }
    n = snprintf(buf, sizeof(buf), "%d\n", (int)getpid());
    if (ftruncate(fd, 0) < 0 || write(fd, buf, n) != n) {
        xm_log_err("%s: cannot write: %s", path, strerror(errno));
        close(fd);
        return XM_ERR_IO;
    }
    *fd_r = fd;
    return XM_OK;
}

/* Detach; the parent waits on ready_fd for one byte from the child. */
static int
daemonize(int *ready_fd_r)
{
    int pipefd[2], status;
    pid_t pid;
    char ok;

    if (pipe2(pipefd, O_CLOEXEC) < 0)
        return XM_ERR_IO;
    pid = fork();
    if (pid < 0)
        return XM_ERR_IO;
    if (pid > 0) {
        close(pipefd[1]);
        if (read(pipefd[0], &ok, 1) == 1 && ok == 'r')
            _exit(0);
        /* the child failed before it was ready; it said why */
        waitpid(pid, &status, WNOHANG);
        _exit(1);
    }
    close(pipefd[0]);
    if (setsid() < 0)
        return XM_ERR_IO;
    pid = fork();
    if (pid < 0)
        return XM_ERR_IO;
    if (pid > 0)
        _exit(0);
    if (chdir("/") < 0)
        return XM_ERR_IO;
    int devnull = open("/dev/null", O_RDWR);
    if (devnull >= 0) {
        dup2(devnull, 0);
        dup2(devnull, 1);
        dup2(devnull, 2);
        if (devnull > 2)
            close(devnull);
    }
    *ready_fd_r = pipefd[1];
    return XM_OK;
}

struct daemon_state {
    struct xm_loop *loop;
    struct agent *agent;
    unsigned signals;
    struct xm_loop_timer *wait;
};

/* Stopping waits for the migrations in flight (each bounded by its own
 * timeouts): a guest is never left half-moved by a service restart. */
static void
on_stop_wait(void *arg)
{
    struct daemon_state *ds = arg;
    unsigned n = agent_migrations_busy(ds->agent);

    ds->wait = NULL;            /* fired: gone */
    if (n == 0) {
        xm_loop_stop(ds->loop);
        return;
    }
    if (xm_loop_add_timer(ds->loop, 500, on_stop_wait, ds, &ds->wait))
        xm_loop_stop(ds->loop);
}

static void
on_signal(void *arg, int fd, short revents)
{
    struct daemon_state *ds = arg;
    struct signalfd_siginfo si;

    (void)revents;
    while (read(fd, &si, sizeof(si)) == sizeof(si)) {
        if (si.ssi_signo == SIGHUP) {
            xm_log_info("SIGHUP: nothing to reload; restart to change "
                        "the configuration");
            continue;
        }
        agent_stop(ds->agent);
        if (++ds->signals == 1 && agent_migrations_busy(ds->agent)) {
            xm_log_info("signal %u: stopping once the %u migration(s) in "
                        "flight end (again: stop now, the journal "
                        "resumes them at start)", si.ssi_signo,
                        agent_migrations_busy(ds->agent));
            if (!ds->wait)
                on_stop_wait(ds);
            continue;
        }
        xm_log_info("signal %u: stopping", si.ssi_signo);
        xm_loop_stop(ds->loop);
    }
}

static int
make_state_dir(const char *dir)
{
    if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
        xm_log_err("state directory %s: %s", dir, strerror(errno));
        return XM_ERR_IO;
    }
    return XM_OK;
}

static int
run(const struct options *opt, const struct xm_config *cfg, int ready_fd)
{
    struct xm_xs xs = { 0 };
    struct xm_hv hv = { 0 };
    struct xm_loop *loop = NULL;
    struct peer_link *link = NULL;
    struct agent *agent = NULL;
    struct daemon_state ds = { 0 };
    struct xm_loop_source hv_src;
    struct agent_deps deps;
    sigset_t mask;
    int sfd = -1, pidfd = -1, rc;

    rc = make_state_dir(cfg->state_dir);
    if (rc)
        goto out;
    rc = take_pidfile(opt->pidfile, &pidfd);
    if (rc)
        goto out;

    sigemptyset(&mask);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    sigaddset(&mask, SIGHUP);
    sigprocmask(SIG_BLOCK, &mask, NULL);
    signal(SIGPIPE, SIG_IGN);
    sfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
    if (sfd < 0) {
        rc = XM_ERR_IO;
        goto out;
    }

    rc = xm_xs_real_open(&xs);
    if (rc) {
        xm_log_err("cannot connect to xenstore: %s", xm_strerror(rc));
        goto out;
    }
    rc = xm_hv_libxl_open(&hv);
    if (rc) {
        xm_log_err("cannot open libxl/libxenctrl: %s", xm_strerror(rc));
        goto out;
    }
    loop = xm_loop_new(&xm_clock_real);
    if (!loop) {
        rc = XM_ERR_NOMEM;
        goto out;
    }
    hv_src.before = hv.ops->beforepoll;
    hv_src.after = hv.ops->afterpoll;
    hv_src.ctx = hv.ctx;
    rc = xm_loop_add_source(loop, &hv_src);
    if (rc)
        goto out;

    rc = peer_link_new(cfg, loop, &link);
    if (rc)
        goto out;

    memset(&deps, 0, sizeof(deps));
    deps.cfg = cfg;
    deps.xs = &xs;
    deps.hv = &hv;
    deps.clock = &xm_clock_real;
    deps.loop = loop;
    deps.peers = peer_link_ops(link);
    deps.pid = (int)getpid();
    rc = agent_new(&deps, &agent);
    if (rc)
        goto out;
    peer_link_set_agent(link, agent);
    rc = peer_link_start(link);
    if (rc)
        goto out;
    ds.loop = loop;
    ds.agent = agent;
    rc = xm_loop_add_fd(loop, sfd, POLLIN, on_signal, &ds, NULL);
    if (rc)
        goto out;
    rc = agent_start(agent);
    if (rc)
        goto out;
    xm_log_info("xenmaintd %s ready: host %s, %u peer(s)", PACKAGE_VERSION,
                cfg->host_name, cfg->n_peers);
    if (ready_fd >= 0) {
        if (write(ready_fd, "r", 1) != 1)
            xm_log_warn("cannot tell the parent we are ready");
        close(ready_fd);
        ready_fd = -1;
    }
    rc = xm_loop_run(loop);
    if (rc)
        xm_log_err("event loop: %s", xm_strerror(rc));
    else
        rc = agent_failed(agent);
out:
    if (agent)
        agent_stop(agent);
    if (ds.wait)
        xm_loop_cancel_timer(loop, ds.wait);
    /* questions to peers are answered while the agent still exists */
    peer_link_shutdown(link);
    agent_free(agent);
    peer_link_free(link);
    xm_loop_free(loop);
    if (hv.ops)
        xm_hv_close(&hv);
    if (xs.ops)
        xm_xs_close(&xs);
    if (sfd >= 0)
        close(sfd);
    if (pidfd >= 0) {
        unlink(opt->pidfile);
        close(pidfd);
    }
    if (ready_fd >= 0)
        close(ready_fd);
    return rc;
}

int
main(int argc, char **argv)
{
    struct options opt = { DEFAULT_CONFIG, DEFAULT_PIDFILE, false, false,
                           false };
    struct xm_config cfg;
    char err[512];
    int c, rc, ready_fd = -1;

    while ((c = getopt(argc, argv, "c:p:FnvVh")) != -1) {
        switch (c) {
        case 'c': opt.config = optarg; break;
        case 'p': opt.pidfile = optarg; break;
        case 'F': opt.foreground = true; break;
        case 'n': opt.check_only = true; break;
        case 'v': opt.verbose = true; break;
        case 'V': printf("xenmaintd %s\n", PACKAGE_VERSION); return 0;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind != argc) {
        usage(stderr);
        return 2;
    }

    rc = xm_config_load_file(opt.config, &cfg, err, sizeof(err));
    if (opt.check_only) {
        if (rc) {
            fprintf(stderr, "%s\n", err);
            return 1;
        }
        printf("configuration OK\n");
        xm_config_dispose(&cfg);
        return 0;
    }
    if (rc) {
        fprintf(stderr, "xenmaintd: %s\n", err);
        return 1;
    }

    if (!opt.foreground) {
        /* the parent prints nothing: errors before readiness go to
         * syslog, and the parent exits 1 */
        rc = daemonize(&ready_fd);
        if (rc) {
            fprintf(stderr, "xenmaintd: cannot detach\n");
            xm_config_dispose(&cfg);
            return 1;
        }
    }
    xm_log_open("xenmaintd", opt.foreground,
                opt.verbose ? XM_LOG_DEBUG : XM_LOG_INFO);
    rc = run(&opt, &cfg, ready_fd);
    xm_log_close();
    xm_config_dispose(&cfg);
    return rc ? 1 : 0;
}
