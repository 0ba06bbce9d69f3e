/*
 * xm_lpcheck.c -- pre-flight checks of a livepatch payload.
 *
 * xm_lp_inspect walks the payload with libelf (gelf) the way Xen 4.17's
 * livepatch_elf_load() and load_payload_data() do: header, section
 * table bounds, one symbol table, the three mandatory notes and at least
 * one patching section; it keeps the build-ids for xm_lp_preflight,
 * which replays the checks of livepatch_upload() (name, size, duplicate,
 * hypervisor build-id) and of the APPLY/REPLACE actions (build_id_dep():
 * the stack order).  The ELF image is hostile input: every offset is
 * bounded before libelf is asked for the bytes behind it.
 */
#include <gelf.h>
#include <libelf.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xm_err.h"
#include "xm_lpcheck.h"

#define HEXLEN (2 * XM_BUILDID_MAX + 1)
#define SEC_MAX 1024                /* Xen: "Too many sections" */

static const char SEC_DEPENDS[] = ".livepatch.depends";
static const char SEC_XEN_DEPENDS[] = ".livepatch.xen_depends";
static const char SEC_BUILD_ID[] = ".note.gnu.build-id";
static const char SEC_FUNCS[] = ".livepatch.funcs";

/* The optional patching sections (check_patching_sections()). */
static const struct {
    const char *name;
    unsigned hook;                  /* XM_LP_HOOK_*, 0 for funcs */
} patching[] = {
    { ".livepatch.funcs", 0 },
    { ".livepatch.hooks.load", XM_LP_HOOK_LOAD },
    { ".livepatch.hooks.unload", XM_LP_HOOK_UNLOAD },
    { ".livepatch.hooks.preapply", XM_LP_HOOK_PREAPPLY },
    { ".livepatch.hooks.apply", XM_LP_HOOK_APPLY },
    { ".livepatch.hooks.postapply", XM_LP_HOOK_POSTAPPLY },
    { ".livepatch.hooks.prerevert", XM_LP_HOOK_PREREVERT },
    { ".livepatch.hooks.revert", XM_LP_HOOK_REVERT },
    { ".livepatch.hooks.postrevert", XM_LP_HOOK_POSTREVERT },
};
#define NPATCHING (sizeof(patching) / sizeof(patching[0]))

__attribute__((format(printf, 4, 5)))
static int
fail(char *err_r, size_t errlen, int rc, const char *fmt, ...)
{
    va_list ap;

    if (err_r && errlen) {
        va_start(ap, fmt);
        vsnprintf(err_r, errlen, fmt, ap);
        va_end(ap);
    }
    return rc;
}

static void
hex_of(const struct xm_buildid *id, char hex_r[HEXLEN])
{
    xm_buildid_hex(id->id, id->len, hex_r);
    if (!id->len)
        snprintf(hex_r, HEXLEN, "(none)");
}

bool
xm_buildid_equal(const struct xm_buildid *a, const struct xm_buildid *b)
{
    return a->len == b->len && a->len <= XM_BUILDID_MAX &&
           memcmp(a->id, b->id, a->len) == 0;
}

static int
hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int
xm_buildid_parse(const char *hex, struct xm_buildid *id_r)
{
    size_t n;

    memset(id_r, 0, sizeof(*id_r));
    if (!hex)
        return XM_ERR_INVAL;
    n = strnlen(hex, 2 * XM_BUILDID_MAX + 1);
    if (n == 0 || n % 2 || n > 2 * XM_BUILDID_MAX)
        return XM_ERR_INVAL;
    for (size_t i = 0; i < n; i += 2) {
        int hi = hexval(hex[i]), lo = hexval(hex[i + 1]);

        if (hi < 0 || lo < 0) {
            memset(id_r, 0, sizeof(*id_r));
            return XM_ERR_INVAL;
        }
        id_r->id[i / 2] = (uint8_t)(hi << 4 | lo);
    }
    id_r->len = (unsigned)(n / 2);
    return XM_OK;
}

/* ---- inspect ----------------------------------------------------- */

struct found {
    size_t index;                   /* 0: not seen */
    GElf_Shdr shdr;
};

/* Which of the sections we look for is this, if any; note duplicates. */
static int
note_section(const char *name, size_t index, const GElf_Shdr *shdr,
             struct found *dep, struct found *xdep, struct found *bid,
             struct found pat[NPATCHING], char *err_r, size_t errlen)
{
    struct found *f = NULL;

    if (!strcmp(name, SEC_DEPENDS))
        f = dep;
    else if (!strcmp(name, SEC_XEN_DEPENDS))
        f = xdep;
    else if (!strcmp(name, SEC_BUILD_ID))
        f = bid;
    for (size_t i = 0; !f && i < NPATCHING; i++)
        if (!strcmp(name, patching[i].name))
            f = &pat[i];
    if (!f)
        return XM_OK;
    if (f->index)
        return fail(err_r, errlen, XM_ERR_INVAL,
                    "section %s is present more than once", name);
    if (shdr->sh_size == 0)
        return fail(err_r, errlen, XM_ERR_INVAL, "section %s is empty",
                    name);
    f->index = index;
    f->shdr = *shdr;
    return XM_OK;
}

/*
 * A GNU build-id note at the start of a section, checked as Xen's
 * xen_build_id_check() does (type NT_GNU_BUILD_ID, owner "GNU").  The
 * livepatch build tools put the depends notes in PROGBITS sections, so
 * the bytes are read as notes whatever the section type.
 */
static int
read_buildid(Elf *elf, const char *name, const struct found *f,
             struct xm_buildid *id_r, char *err_r, size_t errlen)
{
    Elf_Data *d;
    GElf_Nhdr nh;
    size_t name_off, desc_off;
    const char *owner;

    if (f->shdr.sh_size <= sizeof(Elf64_Nhdr))
        return fail(err_r, errlen, XM_ERR_INVAL,
                    "section %s is too small for a note", name);
    d = elf_getdata_rawchunk(elf, (int64_t)f->shdr.sh_offset,
                             (size_t)f->shdr.sh_size, ELF_T_NHDR);
    if (!d || !gelf_getnote(d, 0, &nh, &name_off, &desc_off))
        return fail(err_r, errlen, XM_ERR_INVAL,
                    "section %s does not hold a valid ELF note", name);
    owner = (const char *)d->d_buf + name_off;
    if (nh.n_type != NT_GNU_BUILD_ID || nh.n_namesz != 4 ||
        memcmp(owner, "GNU", 4) != 0)
        return fail(err_r, errlen, XM_ERR_INVAL,
                    "section %s is not a GNU build-id note", name);
    if (nh.n_descsz == 0 || nh.n_descsz > XM_BUILDID_MAX)
        return fail(err_r, errlen, XM_ERR_INVAL,
                    "section %s: build-id of %u bytes (1 to %d)", name,
                    (unsigned)nh.n_descsz, XM_BUILDID_MAX);
    memcpy(id_r->id, (const uint8_t *)d->d_buf + desc_off, nh.n_descsz);
    id_r->len = nh.n_descsz;
    return XM_OK;
}

/* .livepatch.funcs: whole entries of the version Xen 4.17 knows, each
 * with a size to patch (prepare_payload()). */
static int
check_funcs(Elf *elf, const struct found *f, unsigned *nfuncs_r,
            char *err_r, size_t errlen)
{
    Elf_Data *d;
    size_t n;

    if (f->shdr.sh_type == SHT_NOBITS ||
        f->shdr.sh_size % XM_LP_FUNC_SIZE)
        return fail(err_r, errlen, XM_ERR_INVAL,
                    "%s is %llu bytes, not a multiple of %d", SEC_FUNCS,
                    (unsigned long long)f->shdr.sh_size, XM_LP_FUNC_SIZE);
    d = elf_getdata_rawchunk(elf, (int64_t)f->shdr.sh_offset,
                             (size_t)f->shdr.sh_size, ELF_T_BYTE);
    if (!d || d->d_size != f->shdr.sh_size)
        return fail(err_r, errlen, XM_ERR_INVAL, "%s is unreadable",
                    SEC_FUNCS);
    n = d->d_size / XM_LP_FUNC_SIZE;
    for (size_t i = 0; i < n; i++) {
        const uint8_t *e = (const uint8_t *)d->d_buf + i * XM_LP_FUNC_SIZE;
        uint32_t old_size;

        /* name, new_addr, old_addr, new_size, old_size, version */
        memcpy(&old_size, e + 28, sizeof(old_size));
        if (e[32] != XM_LP_PAYLOAD_VERSION)
            return fail(err_r, errlen, XM_ERR_INVAL,
                        "%s entry %zu has version %u, Xen 4.17 wants %d",
                        SEC_FUNCS, i, e[32], XM_LP_PAYLOAD_VERSION);
        if (old_size == 0)
            return fail(err_r, errlen, XM_ERR_INVAL,
                        "%s entry %zu has no old_size", SEC_FUNCS, i);
    }
    *nfuncs_r = (unsigned)n;
    return XM_OK;
}

/* The ELF header (livepatch_header_check(), arch_livepatch_verify_elf()). */
static int
check_header(Elf *elf, size_t len, GElf_Ehdr *eh_r, char *err_r,
             size_t errlen)
{
    const char *ident;
    size_t idlen = 0;

    if (elf_kind(elf) != ELF_K_ELF)
        return fail(err_r, errlen, XM_ERR_INVAL, "not an ELF file");
    ident = elf_getident(elf, &idlen);
    if (!ident || idlen < EI_NIDENT || len < sizeof(Elf64_Ehdr))
        return fail(err_r, errlen, XM_ERR_INVAL,
                    "truncated ELF header (%zu bytes)", len);
    if (ident[EI_CLASS] != ELFCLASS64)
        return fail(err_r, errlen, XM_ERR_UNSUPPORTED,
                    "ELF class %d: Xen on x86-64 needs ELFCLASS64",
                    ident[EI_CLASS]);
    if (ident[EI_DATA] != ELFDATA2LSB)
        return fail(err_r, errlen, XM_ERR_UNSUPPORTED,
                    "ELF data encoding %d: x86-64 needs ELFDATA2LSB",
                    ident[EI_DATA]);
    if (!gelf_getehdr(elf, eh_r))
        return fail(err_r, errlen, XM_ERR_INVAL, "unreadable ELF header");
    if (eh_r->e_machine != EM_X86_64)
        return fail(err_r, errlen, XM_ERR_UNSUPPORTED,
                    "ELF machine %u: Xen on x86-64 needs EM_X86_64 (%d)",
                    eh_r->e_machine, EM_X86_64);
    if (eh_r->e_type != ET_REL)
        return fail(err_r, errlen, XM_ERR_INVAL,
                    "ELF type %u: a payload is relocatable (ET_REL)",
                    eh_r->e_type);
    if (eh_r->e_version != EV_CURRENT ||
        ident[EI_VERSION] != EV_CURRENT || ident[EI_ABIVERSION] != 0 ||
        (ident[EI_OSABI] != ELFOSABI_NONE &&
         ident[EI_OSABI] != ELFOSABI_FREEBSD) || eh_r->e_phnum != 0)
        return fail(err_r, errlen, XM_ERR_INVAL,
                    "ELF version, OS ABI or program headers not as Xen "
                    "wants them");
    if (eh_r->e_shnum == 0 || eh_r->e_shnum >= SEC_MAX)
        return fail(err_r, errlen, XM_ERR_INVAL,
                    "%u sections (1 to %d)", eh_r->e_shnum, SEC_MAX - 1);
    if (eh_r->e_shstrndx == SHN_UNDEF ||
        eh_r->e_shstrndx >= eh_r->e_shnum)
        return fail(err_r, errlen, XM_ERR_INVAL,
                    "section name table index %u out of range",
                    eh_r->e_shstrndx);
    if (eh_r->e_shentsize < sizeof(Elf64_Shdr))
        return fail(err_r, errlen, XM_ERR_INVAL,
                    "section header size %u", eh_r->e_shentsize);
    if (eh_r->e_shoff >= len || (len - eh_r->e_shoff) /
        eh_r->e_shentsize < eh_r->e_shnum)
        return fail(err_r, errlen, XM_ERR_INVAL,
                    "section headers run past the end of the file "
                    "(truncated?)");
    return XM_OK;
}

/* One section header within the image (elf_resolve_sections()). */
static int
check_shdr(size_t i, const GElf_Shdr *sh, size_t len, char *err_r,
           size_t errlen)
{
    if (sh->sh_offset < sizeof(Elf64_Ehdr) ||
        (sh->sh_type != SHT_NOBITS &&
         (sh->sh_offset > len || sh->sh_size > len - sh->sh_offset)))
        return fail(err_r, errlen, XM_ERR_INVAL,
                    "section %zu data lies outside the file (truncated?)",
                    i);
    if (sh->sh_addralign & (sh->sh_addralign - 1))
        return fail(err_r, errlen, XM_ERR_INVAL,
                    "section %zu alignment %llu is not a power of two", i,
                    (unsigned long long)sh->sh_addralign);
    if (sh->sh_addralign && sh->sh_addr % sh->sh_addralign)
        return fail(err_r, errlen, XM_ERR_INVAL,
                    "section %zu address is not aligned", i);
    if ((sh->sh_flags & (SHF_WRITE | SHF_ALLOC)) &&
        sh->sh_type == SHT_NOBITS && sh->sh_size > XM_LP_MAX_SIZE)
        return fail(err_r, errlen, XM_ERR_TOOBIG,
                    "section %zu: %llu bytes of .bss, Xen allows %u", i,
                    (unsigned long long)sh->sh_size, XM_LP_MAX_SIZE);
    return XM_OK;
}

static int
inspect_elf(Elf *elf, size_t len, struct xm_lp_info *info, char *err_r,
            size_t errlen)
{
    GElf_Ehdr eh;
    struct found dep = { 0 }, xdep = { 0 }, bid = { 0 };
    struct found pat[NPATCHING];
    char missing[128] = "";
    size_t nsymtab = 0;
    int rc;

    memset(pat, 0, sizeof(pat));
    rc = check_header(elf, len, &eh, err_r, errlen);
    if (rc)
        return rc;
    for (size_t i = 1; i < eh.e_shnum; i++) {
        Elf_Scn *scn = elf_getscn(elf, i);
        GElf_Shdr sh;
        const char *name;

        if (!scn || !gelf_getshdr(scn, &sh))
            return fail(err_r, errlen, XM_ERR_INVAL,
                        "section %zu header is unreadable", i);
        rc = check_shdr(i, &sh, len, err_r, errlen);
        if (rc)
            return rc;
        name = elf_strptr(elf, eh.e_shstrndx, sh.sh_name);
        if (!name)
            return fail(err_r, errlen, XM_ERR_INVAL,
                        "section %zu name is not within the section "
                        "name table", i);
        if (sh.sh_type == SHT_SYMTAB) {
            nsymtab++;
            if (sh.sh_link >= eh.e_shnum)
                return fail(err_r, errlen, XM_ERR_INVAL,
                            "symbol table string index out of range");
        }
        rc = note_section(name, i, &sh, &dep, &xdep, &bid, pat, err_r,
                          errlen);
        if (rc)
            return rc;
    }
    if (nsymtab != 1)
        return fail(err_r, errlen, XM_ERR_INVAL,
                    nsymtab ? "more than one symbol table"
                            : "no symbol table");

    /* check_special_sections(): all three are mandatory in 4.17. */
    if (!dep.index)
        strcat(missing, " .livepatch.depends");
    if (!xdep.index)
        strcat(missing, " .livepatch.xen_depends");
    if (!bid.index)
        strcat(missing, " .note.gnu.build-id");
    if (missing[0])
        return fail(err_r, errlen, XM_ERR_INVAL,
                    "missing section(s):%s", missing);

    /* check_patching_sections(): at least one. */
    info->hooks = 0;
    for (size_t i = 1; i < NPATCHING; i++)
        if (pat[i].index)
            info->hooks |= patching[i].hook;
    if (!pat[0].index && !info->hooks)
        return fail(err_r, errlen, XM_ERR_INVAL,
                    "missing section %s (and no hook section): nothing "
                    "to patch", SEC_FUNCS);
    if (pat[0].index) {
        rc = check_funcs(elf, &pat[0], &info->nfuncs, err_r, errlen);
        if (rc)
            return rc;
    }

    rc = read_buildid(elf, SEC_BUILD_ID, &bid, &info->build_id, err_r,
                      errlen);
    if (!rc)
        rc = read_buildid(elf, SEC_DEPENDS, &dep, &info->depends, err_r,
                          errlen);
    if (!rc)
        rc = read_buildid(elf, SEC_XEN_DEPENDS, &xdep, &info->xen_depends,
                          err_r, errlen);
    return rc;
}

int
xm_lp_inspect(const void *data, size_t len, struct xm_lp_info *info_r,
              char *err_r, size_t errlen)
{
    char *image = NULL;
    Elf *elf = NULL;
    struct xm_lp_info info;
    int rc;

    memset(info_r, 0, sizeof(*info_r));
    memset(&info, 0, sizeof(info));
    if (err_r && errlen)
        err_r[0] = '\0';
    if (!data || len < EI_NIDENT) {
        rc = fail(err_r, errlen, XM_ERR_INVAL, "not an ELF file (%zu "
                  "bytes)", data ? len : 0);
        goto out;
    }
    if (elf_version(EV_CURRENT) == EV_NONE) {
        rc = fail(err_r, errlen, XM_ERR_UNSUPPORTED, "libelf: %s",
                  elf_errmsg(-1));
        goto out;
    }
    /* libelf wants a mutable, aligned image: give it a private copy. */
    image = malloc(len);
    if (!image) {
        rc = fail(err_r, errlen, XM_ERR_NOMEM, "out of memory");
        goto out;
    }
    memcpy(image, data, len);
    elf = elf_memory(image, len);
    if (!elf) {
        rc = fail(err_r, errlen, XM_ERR_INVAL, "not an ELF file: %s",
                  elf_errmsg(-1));
        goto out;
    }
    info.size = len;
    rc = inspect_elf(elf, len, &info, err_r, errlen);
    if (rc)
        goto out;
    *info_r = info;

out:
    if (elf)
        elf_end(elf);
    free(image);
    return rc;
}

/* ---- preflight --------------------------------------------------- */

int
xm_lp_name_check(const char *name, size_t name_max, char *err_r,
                 size_t errlen)
{
    size_t n;

    if (!name_max || name_max > XM_LP_NAME_MAX)
        name_max = XM_LP_NAME_MAX;
    if (!name || !name[0])
        return fail(err_r, errlen, XM_ERR_INVAL, "empty payload name");
    n = strnlen(name, name_max + 1);
    if (n > name_max)
        return fail(err_r, errlen, XM_ERR_TOOBIG,
                    "payload name longer than %zu bytes", name_max);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)name[i];

        if (c <= ' ' || c >= 0x7f || c == '/')
            return fail(err_r, errlen, XM_ERR_INVAL,
                        "payload name has byte 0x%02x at %zu (printable "
                        "ASCII without blanks or '/')", c, i);
    }
    return XM_OK;
}

int
xm_lp_name_from_path(const char *path, char *name_r, size_t namelen)
{
    const char *base, *dot;
    size_t n;
    int rc;

    if (namelen)
        name_r[0] = '\0';
    if (!path || !path[0])
        return XM_ERR_INVAL;
    base = strrchr(path, '/');
    base = base ? base + 1 : path;
    dot = strrchr(base, '.');
    n = dot ? (size_t)(dot - base) : strlen(base);
    if (n == 0)
        return XM_ERR_INVAL;
    if (n >= namelen)
        return XM_ERR_TOOBIG;
    memcpy(name_r, base, n);
    name_r[n] = '\0';
    rc = xm_lp_name_check(name_r, 0, NULL, 0);
    if (rc)
        name_r[0] = '\0';
    return rc;
}

const struct xm_lp_loaded *
xm_lp_stack_top(const struct xm_lp_hostview *host)
{
    for (size_t i = host->npayloads; i-- > 0;)
        if (host->payloads[i].state == XM_LP_APPLIED)
            return &host->payloads[i];
    return NULL;
}

static const char *
state_name(int state)
{
    return state == XM_LP_APPLIED ? "applied"
           : state == XM_LP_CHECKED ? "loaded" : "unknown";
}

/* livepatch_upload(): name free, build-id not loaded under any name. */
static int
check_unique(const struct xm_lp_info *info, const char *name,
             const struct xm_lp_hostview *host, char *err_r, size_t errlen)
{
    char hex[HEXLEN];

    for (size_t i = 0; i < host->npayloads; i++) {
        const struct xm_lp_loaded *p = &host->payloads[i];

        if (!strncmp(p->name, name, sizeof(p->name)))
            return fail(err_r, errlen, XM_ERR_EXISTS,
                        "a payload named %s is already %s", name,
                        state_name(p->state));
        if (p->build_id.len && xm_buildid_equal(&p->build_id,
                                                &info->build_id)) {
            hex_of(&info->build_id, hex);
            return fail(err_r, errlen, XM_ERR_EXISTS,
                        "build-id %s is already loaded as %.*s (%s)", hex,
                        XM_LP_NAME_MAX, p->name, state_name(p->state));
        }
    }
    return XM_OK;
}

/* build_id_dep(): the first payload, and any REPLACE, stacks on the
 * hypervisor; others on the last applied payload. */
static int
check_stack(const struct xm_lp_info *info,
            const struct xm_lp_hostview *host, bool replace, char *err_r,
            size_t errlen)
{
    const struct xm_lp_loaded *top = replace ? NULL : xm_lp_stack_top(host);
    char want[HEXLEN], got[HEXLEN];

    hex_of(&info->depends, got);
    if (!top) {
        if (xm_buildid_equal(&info->depends, &host->xen_build_id))
            return XM_OK;
        hex_of(&host->xen_build_id, want);
        return fail(err_r, errlen, XM_ERR_STATE,
                    "payload stacks on %s (.livepatch.depends) but %s: "
                    "it must depend on the hypervisor build-id %s", got,
                    replace ? "a replacement goes straight on the "
                              "hypervisor" : "nothing is applied", want);
    }
    if (!top->build_id.len)
        return fail(err_r, errlen, XM_ERR_NOTFOUND,
                    "the build-id of %.*s, top of the applied stack, is "
                    "not known: cannot check .livepatch.depends",
                    XM_LP_NAME_MAX, top->name);
    if (xm_buildid_equal(&info->depends, &top->build_id))
        return XM_OK;
    hex_of(&top->build_id, want);
    return fail(err_r, errlen, XM_ERR_STATE,
                "payload stacks on %s (.livepatch.depends) but the top of "
                "the applied stack is %.*s with build-id %s", got,
                XM_LP_NAME_MAX, top->name, want);
}

int
xm_lp_preflight(const struct xm_lp_info *info, const char *name,
                const struct xm_lp_hostview *host, bool replace,
                char *err_r, size_t errlen)
{
    size_t max_size = host->max_size ? host->max_size : XM_LP_MAX_SIZE;
    char want[HEXLEN], got[HEXLEN];
    int rc;

    if (err_r && errlen)
        err_r[0] = '\0';
    rc = xm_lp_name_check(name, host->name_max, err_r, errlen);
    if (rc)
        return rc;
    if (info->size == 0 || info->size > max_size)
        return fail(err_r, errlen, info->size ? XM_ERR_TOOBIG
                                              : XM_ERR_INVAL,
                    "payload is %zu bytes, the hypervisor takes 1 to %zu",
                    info->size, max_size);
    rc = check_unique(info, name, host, err_r, errlen);
    if (rc)
        return rc;
    if (!host->xen_build_id.len)
        return fail(err_r, errlen, XM_ERR_NOTFOUND,
                    "the running hypervisor's build-id is not known");
    if (!xm_buildid_equal(&info->xen_depends, &host->xen_build_id)) {
        hex_of(&host->xen_build_id, want);
        hex_of(&info->xen_depends, got);
        return fail(err_r, errlen, XM_ERR_STATE,
                    "payload built for hypervisor build-id %s "
                    "(.livepatch.xen_depends), running hypervisor is %s",
                    got, want);
    }
    return check_stack(info, host, replace, err_r, errlen);
}
