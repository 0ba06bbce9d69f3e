/*
 * config_test.c -- the agent's configuration: a full file, defaults, and
 * every refusal naming the setting (and the line, where libxlutil can).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"
#include "xm_config.h"
#include "xm_err.h"

static struct xm_config cfg;
static char err[256];

static void
setup(void)
{
    memset(&cfg, 0, sizeof(cfg));
    err[0] = '\0';
}

static void
teardown(void)
{
    xm_config_dispose(&cfg);
}

static int
load(const char *text)
{
    return xm_config_load_data("test.conf", text, strlen(text), &cfg, err,
                               sizeof(err));
}

static void
test_full(void)
{
    int rc = load("host_name = \"A\"\n"
                  "listen_address = \"192.0.2.1\"\n"
                  "listen_port = 7000\n"
                  "peers = [ \"B=192.0.2.2:7000\", \"C=[2001:db8::3]:7001\" ]\n"
                  "tls_ca = \"/etc/xenmaint/pki/ca.crt\"\n"
                  "tls_cert = \"/etc/xenmaint/pki/host.crt\"\n"
                  "tls_key = \"/etc/xenmaint/pki/host.key\"\n"
                  "state_dir = \"/var/lib/xm\"\n"
                  "max_parallel = 3\n"
                  "migrate_timeout = 900\n");
    CU_ASSERT_EQUAL_FATAL(rc, XM_OK);
    CU_ASSERT_STRING_EQUAL(cfg.host_name, "A");
    CU_ASSERT_STRING_EQUAL(cfg.listen_address, "192.0.2.1");
    CU_ASSERT_EQUAL(cfg.listen_port, 7000);
    CU_ASSERT_EQUAL_FATAL(cfg.n_peers, 2);
    CU_ASSERT_STRING_EQUAL(cfg.peers[0].name, "B");
    CU_ASSERT_STRING_EQUAL(cfg.peers[0].address, "192.0.2.2");
    CU_ASSERT_EQUAL(cfg.peers[0].port, 7000);
    CU_ASSERT_STRING_EQUAL(cfg.peers[1].address, "2001:db8::3");
    CU_ASSERT_EQUAL(cfg.peers[1].port, 7001);
    CU_ASSERT_PTR_NOT_NULL(xm_config_peer(&cfg, "C"));
    CU_ASSERT_PTR_NULL(xm_config_peer(&cfg, "D"));
    CU_ASSERT_STRING_EQUAL(cfg.tls_key, "/etc/xenmaint/pki/host.key");
    CU_ASSERT_STRING_EQUAL(cfg.state_dir, "/var/lib/xm");
    CU_ASSERT_EQUAL(cfg.max_parallel, 3);
    CU_ASSERT_EQUAL(cfg.migrate_timeout_s, 900);
}

static void
test_defaults(void)
{
    CU_ASSERT_EQUAL_FATAL(load("host_name = \"solo\"\n"), XM_OK);
    CU_ASSERT_EQUAL(cfg.listen_port, XM_DEFAULT_PORT);
    CU_ASSERT_EQUAL(cfg.n_peers, 0);
    CU_ASSERT_PTR_NULL(cfg.tls_ca);
    CU_ASSERT_EQUAL(cfg.max_parallel, 2);
    CU_ASSERT_PTR_NOT_NULL(strstr(cfg.state_dir, "/lib/xenmaint"));
}

static void
test_host_name_defaults_to_system(void)
{
    CU_ASSERT_EQUAL_FATAL(load("listen_port = 7474\n"), XM_OK);
    CU_ASSERT(strlen(cfg.host_name) > 0);
}

static void
expect_error(const char *text, const char *needle)
{
    int rc = load(text);
    CU_ASSERT_EQUAL(rc, XM_ERR_CONFIG);
    if (!strstr(err, needle))
        fprintf(stderr, "\n  error was: %s (wanted %s)\n", err, needle);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, needle));
    xm_config_dispose(&cfg);
}

static void
test_errors(void)
{
    expect_error("host_name = \"A B\"\n", "host_name");
    expect_error("host_name = \"A\"\npeers = [ \"B\" ]\n", "peers[0]");
    expect_error("host_name = \"A\"\npeers = [ \"B=x:0\" ]\n", "peers[0]");
    expect_error("host_name = \"A\"\npeers = [ \"B=x:70000\" ]\n",
                 "NAME=ADDRESS:PORT");
    expect_error("host_name = \"A\"\npeers = [ \"A=x:1\" ]\n", "own name");
    expect_error("host_name = \"A\"\n"
                 "peers = [ \"B=x:1\", \"B=y:2\" ]\n", "twice");
    expect_error("host_name = \"A\"\ntls_ca = \"/ca\"\n", "all three");
    expect_error("host_name = \"A\"\ntls_ca = \"ca.crt\"\n",
                 "absolute path");
    expect_error("host_name = \"A\"\nstate_dir = \"rel\"\n", "state_dir");
}

static void
test_errors_with_line_numbers(void)
{
    /* libxlutil names the file and the line */
    expect_error("host_name = \"A\"\nlisten_port = 99999\n", "test.conf:2");
    expect_error("host_name = \"A\"\n\nmax_parallel = \"x\"\n",
                 "test.conf:3");
    expect_error("host_name = \"A\"\nlisten_port = = 3\n", "test.conf:2");
}

static void
test_missing_file(void)
{
    int rc = xm_config_load_file("/nonexistent/xenmaint.conf", &cfg, err,
                                 sizeof(err));
    CU_ASSERT_EQUAL(rc, XM_ERR_CONFIG);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "/nonexistent/xenmaint.conf"));
}

static void
test_file(void)
{
    char path[] = "/tmp/xm-config-XXXXXX";
    int fd = mkstemp(path);
    static const char text[] = "host_name = \"filehost\"\n";

    CU_ASSERT_FATAL(fd >= 0);
    CU_ASSERT_EQUAL(write(fd, text, sizeof(text) - 1),
                    (ssize_t)(sizeof(text) - 1));
    close(fd);
    CU_ASSERT_EQUAL(xm_config_load_file(path, &cfg, err, sizeof(err)),
                    XM_OK);
    CU_ASSERT_STRING_EQUAL(cfg.host_name, "filehost");
    unlink(path);
}

/* compress: the pool's default for migration streams, "auto" when not
 * set, checked as `--compress` is. */
static void
test_compress(void)
{
    static const char *const good[] = {
        "auto", "none", "lz4", "zstd", "zstd:1", "zstd:19",
    };

    CU_ASSERT_EQUAL_FATAL(load("host_name = \"A\"\n"), XM_OK);
    CU_ASSERT_STRING_EQUAL(cfg.compress, "auto");
    xm_config_dispose(&cfg);
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        char text[128];

        snprintf(text, sizeof(text), "host_name = \"A\"\ncompress = "
                 "\"%s\"\n", good[i]);
        CU_ASSERT_EQUAL_FATAL(load(text), XM_OK);
        CU_ASSERT_STRING_EQUAL(cfg.compress, good[i]);
        xm_config_dispose(&cfg);
    }
    expect_error("host_name = \"A\"\ncompress = \"gzip\"\n",
                 "compress: compression 'gzip': unknown algorithm");
    expect_error("host_name = \"A\"\ncompress = \"zstd:0\"\n",
                 "out of range");
    expect_error("host_name = \"A\"\ncompress = \"lz4:1\"\n",
                 "takes no level");
    expect_error("host_name = \"A\"\ncompress = \"zstd:000000000000000000"
                 "000000000000001\"\n", "longer than 31");
    expect_error("host_name = \"A\"\ncompress = 3\n", "algorithm '3'");
}

static CU_TestInfo config_tests[] = {
    { "full configuration", test_full },
    { "defaults", test_defaults },
    { "host name defaults to the system's", test_host_name_defaults_to_system },
    { "refusals name the setting", test_errors },
    { "refusals name the line", test_errors_with_line_numbers },
    { "missing file", test_missing_file },
    { "load from a file", test_file },
    { "compress", test_compress },
    CU_TEST_INFO_NULL,
};

CU_SuiteInfo xm_test_suites[] = {
    { "config", NULL, NULL, setup, teardown, config_tests },
    CU_SUITE_INFO_NULL,
};
