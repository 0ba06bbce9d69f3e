/*
 * lpcheck_test.c -- livepatch pre-flight (xm_lpcheck) against synthetic
 * payloads that each test writes into a temp dir with tests/fakes/
 * lp_payload (libelf): a well-formed one, and ones broken the ways Xen
 * 4.17 refuses (truncated at every few bytes, not ELF, 32-bit, another
 * machine, missing sections, bad notes); then the host checks
 * (hypervisor build-id, stack order, replace, duplicates, size, names)
 * and the name a file path gives.
 */
#include <gelf.h>
#include <libelf.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "lp_payload.h"
#include "xm_err.h"
#include "xm_lpcheck.h"

#define ID_LEN LP_PAYLOAD_ID_LEN

static const uint8_t XEN_ID[ID_LEN] = { 0x5e, 0x00, 0xb0, 0xfd, 0x12, 0xa5,
    0x2f, 0x00, 0x22, 0x68, 0xd3, 0xe3, 0x75, 0xba, 0x74, 0xe8, 0x47, 0x35,
    0xc1, 0xde };
static const char XEN_HEX[] = "5e00b0fd12a52f002268d3e375ba74e84735c1de";
static const char OTHER_HEX[] = "00112233445566778899aabbccddeeff00112233";
static const char SELF_HEX[] = "c64916bae2d8ad63c360cb050482d1f7d9bee1c7";

static char dir[64];
static struct lp_spec S;
static uint8_t *img;
static size_t img_len;
static char err[512];

static void
hex_to(const char *hex, uint8_t out[ID_LEN])
{
    struct xm_buildid id;

    CU_ASSERT_EQUAL_FATAL(xm_buildid_parse(hex, &id), XM_OK);
    CU_ASSERT_EQUAL_FATAL(id.len, ID_LEN);
    memcpy(out, id.id, ID_LEN);
}

static void
setup(void)
{
    snprintf(dir, sizeof(dir), "/tmp/xm-lpcheck-XXXXXX");
    CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(dir));
    lp_spec_default(&S);
    hex_to(SELF_HEX, S.self);
    memcpy(S.dep, XEN_ID, ID_LEN);
    memcpy(S.xen, XEN_ID, ID_LEN);
    img = NULL;
    img_len = 0;
    err[0] = '\0';
    CU_ASSERT_NOT_EQUAL_FATAL(elf_version(EV_CURRENT), EV_NONE);
}

static void
teardown(void)
{
    char cmd[128];

    free(img);
    img = NULL;
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    CU_ASSERT_EQUAL(system(cmd), 0);
}

/* Write the payload of spec s into the temp dir and read it back. */
static void
build(const struct lp_spec *s)
{
    char path[128], msg[256];

    snprintf(path, sizeof(path), "%s/p.livepatch", dir);
    free(img);
    img = NULL;
    img_len = 0;
    msg[0] = '\0';
    if (lp_payload_build(s, path, &img, &img_len, msg, sizeof(msg)))
        fprintf(stderr, "\n  lp_payload_build: %s\n", msg);
    CU_ASSERT_PTR_NOT_NULL_FATAL(img);
}

static int
inspect(struct xm_lp_info *info)
{
    build(&S);
    return xm_lp_inspect(img, img_len, info, err, sizeof(err));
}

static struct xm_lp_hostview
host(const struct xm_lp_loaded *payloads, size_t n)
{
    struct xm_lp_hostview h;

    memset(&h, 0, sizeof(h));
    CU_ASSERT_EQUAL(xm_buildid_parse(XEN_HEX, &h.xen_build_id), XM_OK);
    h.payloads = payloads;
    h.npayloads = n;
    return h;
}

static struct xm_lp_loaded
loaded(const char *name, int state, const char *hex)
{
    struct xm_lp_loaded l;

    memset(&l, 0, sizeof(l));
    snprintf(l.name, sizeof(l.name), "%s", name);
    l.state = state;
    if (hex)
        CU_ASSERT_EQUAL(xm_buildid_parse(hex, &l.build_id), XM_OK);
    return l;
}

/* ---- the ELF checks ---------------------------------------------- */

static void
test_good(void)
{
    struct xm_lp_info info;
    struct xm_lp_hostview h = host(NULL, 0);
    char hex[2 * XM_BUILDID_MAX + 1];

    CU_ASSERT_EQUAL_FATAL(inspect(&info), XM_OK);
    CU_ASSERT_EQUAL(info.size, img_len);
    CU_ASSERT_EQUAL(info.nfuncs, 1);
    CU_ASSERT_EQUAL(info.hooks, 0);
    xm_buildid_hex(info.build_id.id, info.build_id.len, hex);
    CU_ASSERT_STRING_EQUAL(hex, SELF_HEX);
    xm_buildid_hex(info.depends.id, info.depends.len, hex);
    CU_ASSERT_STRING_EQUAL(hex, XEN_HEX);
    xm_buildid_hex(info.xen_depends.id, info.xen_depends.len, hex);
    CU_ASSERT_STRING_EQUAL(hex, XEN_HEX);
    CU_ASSERT_EQUAL(xm_lp_preflight(&info, "xsa999", &h, false, err,
                                    sizeof(err)), XM_OK);
    CU_ASSERT_EQUAL(xm_lp_preflight(&info, "xsa999", &h, true, err,
                                    sizeof(err)), XM_OK);
}

static void
test_hooks_only(void)
{
    struct xm_lp_info info;

    S.funcs = false;
    S.hook_load = true;
    CU_ASSERT_EQUAL_FATAL(inspect(&info), XM_OK);
    CU_ASSERT_EQUAL(info.nfuncs, 0);
    CU_ASSERT_EQUAL(info.hooks, XM_LP_HOOK_LOAD);
}

static void
test_truncated(void)
{
    struct xm_lp_info info;
    size_t cuts = 0;

    build(&S);
    for (size_t cut = 0; cut < img_len; cut += 3) {
        int rc = xm_lp_inspect(img, cut, &info, err, sizeof(err));

        CU_ASSERT_NOT_EQUAL(rc, XM_OK);
        CU_ASSERT(err[0] != '\0');
        CU_ASSERT_EQUAL(info.size, 0);
        cuts++;
    }
    CU_ASSERT(cuts > 100);
    CU_ASSERT_EQUAL(xm_lp_inspect(img, img_len, &info, err, sizeof(err)),
                    XM_OK);
}

static void
test_not_elf(void)
{
    struct xm_lp_info info;
    static const char text[] = "#!/bin/sh\necho this is not a payload\n";
    uint8_t zeros[256] = { 0 };

    CU_ASSERT_EQUAL(xm_lp_inspect(text, sizeof(text), &info, err,
                                  sizeof(err)), XM_ERR_INVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "not an ELF"));
    CU_ASSERT_EQUAL(xm_lp_inspect(zeros, sizeof(zeros), &info, err,
                                  sizeof(err)), XM_ERR_INVAL);
    CU_ASSERT_EQUAL(xm_lp_inspect(NULL, 0, &info, err, sizeof(err)),
                    XM_ERR_INVAL);
    CU_ASSERT_EQUAL(xm_lp_inspect("\177ELF", 4, &info, err, sizeof(err)),
                    XM_ERR_INVAL);
}

static void
test_elf32(void)
{
    struct xm_lp_info info;

    S.elfclass = ELFCLASS32;
    S.machine = EM_386;
    CU_ASSERT_EQUAL(inspect(&info), XM_ERR_UNSUPPORTED);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "ELFCLASS64"));
}

static void
test_wrong_machine(void)
{
    struct xm_lp_info info;

    S.machine = EM_AARCH64;
    CU_ASSERT_EQUAL(inspect(&info), XM_ERR_UNSUPPORTED);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "EM_X86_64"));
}

static void
test_not_relocatable(void)
{
    struct xm_lp_info info;

    S.type = ET_EXEC;
    CU_ASSERT_EQUAL(inspect(&info), XM_ERR_INVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "ET_REL"));
}

static void
test_missing_funcs(void)
{
    struct xm_lp_info info;

    S.funcs = false;
    CU_ASSERT_EQUAL(inspect(&info), XM_ERR_INVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, ".livepatch.funcs"));
}

static void
test_missing_notes(void)
{
    struct xm_lp_info info;

    S.xen_depends = false;
    CU_ASSERT_EQUAL(inspect(&info), XM_ERR_INVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, ".livepatch.xen_depends"));
    CU_ASSERT_PTR_NULL(strstr(err, ".note.gnu.build-id"));

    S.xen_depends = true;
    S.depends = false;
    S.build_id = false;
    CU_ASSERT_EQUAL(inspect(&info), XM_ERR_INVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, ".livepatch.depends"));
    CU_ASSERT_PTR_NOT_NULL(strstr(err, ".note.gnu.build-id"));
    CU_ASSERT_PTR_NULL(strstr(err, "xen_depends"));
}

static void
test_bad_sections(void)
{
    struct xm_lp_info info;

    S.depends_note_type = 1;            /* NT_GNU_ABI_TAG */
    CU_ASSERT_EQUAL(inspect(&info), XM_ERR_INVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, ".livepatch.depends"));
    S.depends_note_type = NT_GNU_BUILD_ID;

    S.depends_empty = 1;
    CU_ASSERT_EQUAL(inspect(&info), XM_ERR_INVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "empty"));
    S.depends_empty = 0;

    S.func_version = 1;
    CU_ASSERT_EQUAL(inspect(&info), XM_ERR_INVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "version"));
    S.func_version = XM_LP_PAYLOAD_VERSION;

    S.funcs_extra = 8;
    CU_ASSERT_EQUAL(inspect(&info), XM_ERR_INVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "multiple"));
    S.funcs_extra = 0;

    S.symtab = false;
    CU_ASSERT_EQUAL(inspect(&info), XM_ERR_INVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "symbol table"));
    S.symtab = true;

    S.bss = XM_LP_MAX_SIZE + 1;
    CU_ASSERT_EQUAL(inspect(&info), XM_ERR_TOOBIG);
    S.bss = 4096;
    CU_ASSERT_EQUAL(inspect(&info), XM_OK);
}

/* ---- the host checks --------------------------------------------- */

static void
test_wrong_xen(void)
{
    struct xm_lp_info info;
    struct xm_lp_hostview h = host(NULL, 0);

    hex_to(OTHER_HEX, S.xen);
    CU_ASSERT_EQUAL_FATAL(inspect(&info), XM_OK);
    CU_ASSERT_EQUAL(xm_lp_preflight(&info, "xsa999", &h, false, err,
                                    sizeof(err)), XM_ERR_STATE);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, OTHER_HEX));
    CU_ASSERT_PTR_NOT_NULL(strstr(err, XEN_HEX));
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "xen_depends"));

    h.xen_build_id.len = 0;
    CU_ASSERT_EQUAL(xm_lp_preflight(&info, "xsa999", &h, false, err,
                                    sizeof(err)), XM_ERR_NOTFOUND);
}

static void
test_stack(void)
{
    struct xm_lp_info info;
    struct xm_lp_loaded l[3];
    struct xm_lp_hostview h;

    l[0] = loaded("base", XM_LP_APPLIED, OTHER_HEX);
    l[1] = loaded("hello", XM_LP_APPLIED,
                  "1111111111111111111111111111111111111111");
    l[2] = loaded("idle", XM_LP_CHECKED,
                  "2222222222222222222222222222222222222222");
    h = host(l, 3);

    /* Stacks on the hypervisor, but hello is on top. */
    CU_ASSERT_EQUAL_FATAL(inspect(&info), XM_OK);
    CU_ASSERT_EQUAL(xm_lp_preflight(&info, "xsa999", &h, false, err,
                                    sizeof(err)), XM_ERR_STATE);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "hello"));
    CU_ASSERT_PTR_NOT_NULL(strstr(err, XEN_HEX));
    CU_ASSERT_PTR_NOT_NULL(strstr(err,
                           "1111111111111111111111111111111111111111"));
    /* A replacement goes on the hypervisor whatever is applied. */
    CU_ASSERT_EQUAL(xm_lp_preflight(&info, "xsa999", &h, true, err,
                                    sizeof(err)), XM_OK);

    /* On the top (a loaded-only payload is not on the stack). */
    hex_to("1111111111111111111111111111111111111111", S.dep);
    CU_ASSERT_EQUAL_FATAL(inspect(&info), XM_OK);
    CU_ASSERT_EQUAL(xm_lp_preflight(&info, "xsa999", &h, false, err,
                                    sizeof(err)), XM_OK);
    CU_ASSERT_EQUAL(xm_lp_preflight(&info, "xsa999", &h, true, err,
                                    sizeof(err)), XM_ERR_STATE);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "replacement"));

    /* On a payload below the top. */
    hex_to(OTHER_HEX, S.dep);
    CU_ASSERT_EQUAL_FATAL(inspect(&info), XM_OK);
    CU_ASSERT_EQUAL(xm_lp_preflight(&info, "xsa999", &h, false, err,
                                    sizeof(err)), XM_ERR_STATE);

    /* Top of unknown build-id: fail closed. */
    l[1].build_id.len = 0;
    CU_ASSERT_EQUAL(xm_lp_preflight(&info, "xsa999", &h, false, err,
                                    sizeof(err)), XM_ERR_NOTFOUND);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "hello"));
}

static void
test_depends_on_nothing(void)
{
    struct xm_lp_info info;
    struct xm_lp_loaded l = loaded("idle", XM_LP_CHECKED, NULL);
    struct xm_lp_hostview h = host(&l, 1);

    hex_to(OTHER_HEX, S.dep);
    CU_ASSERT_EQUAL_FATAL(inspect(&info), XM_OK);
    CU_ASSERT_EQUAL(xm_lp_preflight(&info, "xsa999", &h, false, err,
                                    sizeof(err)), XM_ERR_STATE);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "nothing is applied"));
    CU_ASSERT_PTR_NOT_NULL(strstr(err, OTHER_HEX));
    CU_ASSERT_PTR_NOT_NULL(strstr(err, XEN_HEX));
    CU_ASSERT_PTR_NULL(xm_lp_stack_top(&h));
}

static void
test_duplicate(void)
{
    struct xm_lp_info info;
    struct xm_lp_loaded l[2];
    struct xm_lp_hostview h;

    l[0] = loaded("xsa999", XM_LP_CHECKED, NULL);
    l[1] = loaded("old-name", XM_LP_CHECKED, SELF_HEX);
    h = host(l, 1);
    CU_ASSERT_EQUAL_FATAL(inspect(&info), XM_OK);
    CU_ASSERT_EQUAL(xm_lp_preflight(&info, "xsa999", &h, false, err,
                                    sizeof(err)), XM_ERR_EXISTS);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "xsa999"));
    h = host(l, 2);
    CU_ASSERT_EQUAL(xm_lp_preflight(&info, "xsa1000", &h, false, err,
                                    sizeof(err)), XM_ERR_EXISTS);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "old-name"));
    CU_ASSERT_PTR_NOT_NULL(strstr(err, SELF_HEX));
}

static void
test_oversized(void)
{
    struct xm_lp_info info;
    struct xm_lp_hostview h = host(NULL, 0);

    S.pad = XM_LP_MAX_SIZE;
    CU_ASSERT_EQUAL_FATAL(inspect(&info), XM_OK);
    CU_ASSERT(info.size > XM_LP_MAX_SIZE);
    CU_ASSERT_EQUAL(xm_lp_preflight(&info, "xsa999", &h, false, err,
                                    sizeof(err)), XM_ERR_TOOBIG);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "2097152"));

    S.pad = 0;
    CU_ASSERT_EQUAL_FATAL(inspect(&info), XM_OK);
    h.max_size = info.size;
    CU_ASSERT_EQUAL(xm_lp_preflight(&info, "xsa999", &h, false, err,
                                    sizeof(err)), XM_OK);
    h.max_size = info.size - 1;
    CU_ASSERT_EQUAL(xm_lp_preflight(&info, "xsa999", &h, false, err,
                                    sizeof(err)), XM_ERR_TOOBIG);
}

static void
test_names(void)
{
    char name[200];
    struct xm_lp_info info;
    struct xm_lp_hostview h = host(NULL, 0);

    memset(name, 'a', sizeof(name));
    name[XM_LP_NAME_MAX] = '\0';
    CU_ASSERT_EQUAL(xm_lp_name_check(name, 0, err, sizeof(err)), XM_OK);
    name[XM_LP_NAME_MAX] = 'a';
    name[XM_LP_NAME_MAX + 1] = '\0';
    CU_ASSERT_EQUAL(xm_lp_name_check(name, 0, err, sizeof(err)),
                    XM_ERR_TOOBIG);
    CU_ASSERT_EQUAL(xm_lp_name_check("", 0, err, sizeof(err)),
                    XM_ERR_INVAL);
    CU_ASSERT_EQUAL(xm_lp_name_check(NULL, 0, err, sizeof(err)),
                    XM_ERR_INVAL);
    CU_ASSERT_EQUAL(xm_lp_name_check("a/b", 0, err, sizeof(err)),
                    XM_ERR_INVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "0x2f"));
    CU_ASSERT_EQUAL(xm_lp_name_check("a b", 0, err, sizeof(err)),
                    XM_ERR_INVAL);
    CU_ASSERT_EQUAL(xm_lp_name_check("a\nb", 0, err, sizeof(err)),
                    XM_ERR_INVAL);
    CU_ASSERT_EQUAL(xm_lp_name_check("caf\xc3\xa9", 0, err, sizeof(err)),
                    XM_ERR_INVAL);
    CU_ASSERT_EQUAL(xm_lp_name_check("xsa999-4.17_x+1", 0, err,
                                     sizeof(err)), XM_OK);
    CU_ASSERT_EQUAL(xm_lp_name_check("abcdef", 5, err, sizeof(err)),
                    XM_ERR_TOOBIG);

    CU_ASSERT_EQUAL_FATAL(inspect(&info), XM_OK);
    CU_ASSERT_EQUAL(xm_lp_preflight(&info, "bad/name", &h, false, err,
                                    sizeof(err)), XM_ERR_INVAL);
    h.name_max = 4;
    CU_ASSERT_EQUAL(xm_lp_preflight(&info, "xsa999", &h, false, err,
                                    sizeof(err)), XM_ERR_TOOBIG);
}

static void
test_name_from_path(void)
{
    char name[XM_LP_NAME_MAX + 1], small[4], long_path[300];

    CU_ASSERT_EQUAL(xm_lp_name_from_path("/srv/xsa/xsa999.livepatch", name,
                                         sizeof(name)), XM_OK);
    CU_ASSERT_STRING_EQUAL(name, "xsa999");
    /* Like xen-livepatch: only the last extension goes. */
    CU_ASSERT_EQUAL(xm_lp_name_from_path("xsa999-4.17.5.livepatch", name,
                                         sizeof(name)), XM_OK);
    CU_ASSERT_STRING_EQUAL(name, "xsa999-4.17.5");
    CU_ASSERT_EQUAL(xm_lp_name_from_path("a.b/noext", name, sizeof(name)),
                    XM_OK);
    CU_ASSERT_STRING_EQUAL(name, "noext");
    CU_ASSERT_EQUAL(xm_lp_name_from_path("dir/.livepatch", name,
                                         sizeof(name)), XM_ERR_INVAL);
    CU_ASSERT_STRING_EQUAL(name, "");
    CU_ASSERT_EQUAL(xm_lp_name_from_path("dir/", name, sizeof(name)),
                    XM_ERR_INVAL);
    CU_ASSERT_EQUAL(xm_lp_name_from_path("", name, sizeof(name)),
                    XM_ERR_INVAL);
    CU_ASSERT_EQUAL(xm_lp_name_from_path("my patch.livepatch", name,
                                         sizeof(name)), XM_ERR_INVAL);
    CU_ASSERT_STRING_EQUAL(name, "");
    CU_ASSERT_EQUAL(xm_lp_name_from_path("xsa999.livepatch", small,
                                         sizeof(small)), XM_ERR_TOOBIG);
    memset(long_path, 'x', sizeof(long_path));
    memcpy(long_path + 200, ".livepatch", 11);
    CU_ASSERT_EQUAL(xm_lp_name_from_path(long_path, name, sizeof(name)),
                    XM_ERR_TOOBIG);
}

static void
test_buildid_parse(void)
{
    struct xm_buildid id;
    char hex[2 * XM_BUILDID_MAX + 3];

    CU_ASSERT_EQUAL(xm_buildid_parse("5E00b0", &id), XM_OK);
    CU_ASSERT_EQUAL(id.len, 3);
    CU_ASSERT_EQUAL(id.id[0], 0x5e);
    CU_ASSERT_EQUAL(xm_buildid_parse("5e0", &id), XM_ERR_INVAL);
    CU_ASSERT_EQUAL(id.len, 0);
    CU_ASSERT_EQUAL(xm_buildid_parse("5g", &id), XM_ERR_INVAL);
    CU_ASSERT_EQUAL(xm_buildid_parse("", &id), XM_ERR_INVAL);
    CU_ASSERT_EQUAL(xm_buildid_parse(NULL, &id), XM_ERR_INVAL);
    memset(hex, 'a', sizeof(hex));
    hex[2 * XM_BUILDID_MAX] = '\0';
    CU_ASSERT_EQUAL(xm_buildid_parse(hex, &id), XM_OK);
    CU_ASSERT_EQUAL(id.len, XM_BUILDID_MAX);
    hex[2 * XM_BUILDID_MAX] = 'a';
    hex[2 * XM_BUILDID_MAX + 2] = '\0';
    CU_ASSERT_EQUAL(xm_buildid_parse(hex, &id), XM_ERR_INVAL);
}

static CU_TestInfo elf_tests[] = {
    { "well-formed payload", test_good },
    { "hooks without funcs", test_hooks_only },
    { "truncated at every 3 bytes", test_truncated },
    { "not ELF", test_not_elf },
    { "32-bit ELF", test_elf32 },
    { "wrong machine", test_wrong_machine },
    { "not relocatable", test_not_relocatable },
    { "missing .livepatch.funcs", test_missing_funcs },
    { "missing notes named", test_missing_notes },
    { "bad notes, funcs, symtab, bss", test_bad_sections },
    CU_TEST_INFO_NULL,
};

static CU_TestInfo host_tests[] = {
    { "wrong xen build-id", test_wrong_xen },
    { "depends vs top of stack, replace", test_stack },
    { "depends when nothing is applied", test_depends_on_nothing },
    { "duplicate name and build-id", test_duplicate },
    { "oversized", test_oversized },
    { "name rules", test_names },
    { "name from path", test_name_from_path },
    { "build-id hex", test_buildid_parse },
    CU_TEST_INFO_NULL,
};

CU_SuiteInfo xm_test_suites[] = {
    { "lpcheck-elf", NULL, NULL, setup, teardown, elf_tests },
    { "lpcheck-host", NULL, NULL, setup, teardown, host_tests },
    CU_SUITE_INFO_NULL,
};
