/*
 * lp_payload.c -- synthetic livepatch payloads for unit tests (see
 * lp_payload.h).
 *
 * The sections are laid out in a small table (name, type, flags,
 * alignment, contents) from the spec, then written with libelf's
 * ELF_C_WRITE, which places them and the section header table itself.
 * The section name string table is built alongside and goes last.
 */
#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lp_payload.h"
#include "xm_err.h"
#include "xm_lpcheck.h"

#define SECS_MAX 16

struct sec {
    const char *name;
    uint32_t type;
    uint64_t flags, align, entsize;
    void *data;
    size_t size;
    uint32_t link;
};

static int __attribute__((format(printf, 4, 5)))
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

void
lp_spec_default(struct lp_spec *s)
{
    memset(s, 0, sizeof(*s));
    s->elfclass = ELFCLASS64;
    s->machine = EM_X86_64;
    s->type = ET_REL;
    s->funcs = s->depends = s->xen_depends = s->build_id = s->symtab = true;
    s->nfuncs = 1;
    s->func_version = XM_LP_PAYLOAD_VERSION;
    s->depends_note_type = NT_GNU_BUILD_ID;
}

/* A GNU build-id style note: namesz 4, descsz 20, type, "GNU", id. */
static void *
note(uint32_t type, const uint8_t id[LP_PAYLOAD_ID_LEN], size_t *len_r)
{
    uint32_t hdr[3] = { 4, LP_PAYLOAD_ID_LEN, type };
    uint8_t *n = calloc(1, 12 + 4 + LP_PAYLOAD_ID_LEN);

    if (!n)
        return NULL;
    memcpy(n, hdr, sizeof(hdr));
    memcpy(n + 12, "GNU", 4);
    memcpy(n + 16, id, LP_PAYLOAD_ID_LEN);
    *len_r = 12 + 4 + LP_PAYLOAD_ID_LEN;
    return n;
}

/* .livepatch.funcs: nfuncs entries (old_size 16, version), then extra
 * bytes. */
static void *
funcs(const struct lp_spec *s, size_t *len_r)
{
    size_t len = s->nfuncs * XM_LP_FUNC_SIZE + s->funcs_extra;
    uint8_t *f = calloc(1, len ? len : 1);
    uint32_t old_size = 16;

    if (!f)
        return NULL;
    for (unsigned i = 0; i < s->nfuncs; i++) {
        memcpy(f + i * XM_LP_FUNC_SIZE + 28, &old_size, 4);
        f[i * XM_LP_FUNC_SIZE + 32] = s->func_version;
    }
    *len_r = len;
    return f;
}

/* The section table of s (without .shstrtab); false without memory. */
static bool
layout(const struct lp_spec *s, struct sec *secs, size_t *n_r)
{
    size_t n = 0, len = 0;

    if (s->build_id) {
        secs[n] = (struct sec){ ".note.gnu.build-id", SHT_NOTE, SHF_ALLOC,
                                4, 0, note(NT_GNU_BUILD_ID, s->self, &len),
                                0, 0 };
        secs[n++].size = len;
        if (!secs[n - 1].data)
            goto nomem;
    }
    if (s->depends) {
        secs[n] = (struct sec){ ".livepatch.depends", SHT_PROGBITS,
                                SHF_ALLOC, 1, 0,
                                note(s->depends_note_type, s->dep, &len),
                                0, 0 };
        secs[n++].size = s->depends_empty ? 0 : len;
        if (!secs[n - 1].data)
            goto nomem;
    }
    if (s->xen_depends) {
        secs[n] = (struct sec){ ".livepatch.xen_depends", SHT_PROGBITS,
                                SHF_ALLOC, 1, 0,
                                note(NT_GNU_BUILD_ID, s->xen, &len), 0, 0 };
        secs[n++].size = len;
        if (!secs[n - 1].data)
            goto nomem;
    }
    if (s->funcs) {
        secs[n] = (struct sec){ ".livepatch.funcs", SHT_PROGBITS,
                                SHF_ALLOC | SHF_WRITE, 8, 0,
                                funcs(s, &len), 0, 0 };
        secs[n++].size = len;
        if (!secs[n - 1].data)
            goto nomem;
    }
    if (s->hook_load) {
        secs[n++] = (struct sec){ ".livepatch.hooks.load", SHT_PROGBITS,
                                  SHF_ALLOC | SHF_WRITE, 8, 0,
                                  calloc(1, 8), 8, 0 };
        if (!secs[n - 1].data)
            goto nomem;
    }
    if (s->pad) {
        secs[n++] = (struct sec){ ".rodata.pad", SHT_PROGBITS, SHF_ALLOC,
                                  1, 0, calloc(1, s->pad), s->pad, 0 };
        if (!secs[n - 1].data)
            goto nomem;
    }
    if (s->bss)
        secs[n++] = (struct sec){ ".bss", SHT_NOBITS,
                                  SHF_ALLOC | SHF_WRITE, 8, 0, NULL,
                                  s->bss, 0 };
    if (s->symtab) {
        size_t esz = s->elfclass == ELFCLASS64 ? 24 : 16;

        secs[n++] = (struct sec){ ".strtab", SHT_STRTAB, 0, 1, 0,
                                  calloc(1, 1), 1, 0 };
        if (!secs[n - 1].data)
            goto nomem;
        secs[n] = (struct sec){ ".symtab", SHT_SYMTAB, 0, 8, esz,
                                calloc(1, esz), esz, (uint32_t)n };
        n++;
        if (!secs[n - 1].data)
            goto nomem;
    }
    *n_r = n;
    return true;
nomem:
    for (size_t i = 0; i < n; i++)
        free(secs[i].data);
    return false;
}

/* Write the n sections of secs (the last one .shstrtab, filled here)
 * into fd. */
static int
write_elf(const struct lp_spec *s, int fd, struct sec *secs, size_t n,
          char *shstr, char *err_r, size_t errlen)
{
    Elf *elf;
    GElf_Ehdr eh;
    size_t off = 1;
    int rc = XM_ERR_INVAL;

    if (elf_version(EV_CURRENT) == EV_NONE)
        return fail(err_r, errlen, XM_ERR_INVAL, "libelf: %s",
                    elf_errmsg(-1));
    elf = elf_begin(fd, ELF_C_WRITE, NULL);
    if (!elf)
        return fail(err_r, errlen, XM_ERR_INVAL, "elf_begin: %s",
                    elf_errmsg(-1));
    if (!gelf_newehdr(elf, s->elfclass) || !gelf_getehdr(elf, &eh)) {
        fail(err_r, errlen, rc, "ELF header: %s", elf_errmsg(-1));
        goto out;
    }
    eh.e_ident[EI_DATA] = ELFDATA2LSB;
    eh.e_type = (GElf_Half)s->type;
    eh.e_machine = (GElf_Half)s->machine;
    eh.e_version = EV_CURRENT;
    eh.e_shstrndx = (GElf_Half)n;
    for (size_t i = 0; i < n; i++) {
        Elf_Scn *scn = elf_newscn(elf);
        Elf_Data *d = scn ? elf_newdata(scn) : NULL;
        GElf_Shdr sh;

        if (!d || !gelf_getshdr(scn, &sh)) {
            fail(err_r, errlen, rc, "section %s: %s", secs[i].name,
                 elf_errmsg(-1));
            goto out;
        }
        d->d_buf = secs[i].data;
        d->d_size = secs[i].size;
        d->d_type = ELF_T_BYTE;
        d->d_align = secs[i].align;
        memcpy(shstr + off, secs[i].name, strlen(secs[i].name) + 1);
        sh.sh_name = (GElf_Word)off;
        off += strlen(secs[i].name) + 1;
        sh.sh_type = secs[i].type;
        sh.sh_flags = secs[i].flags;
        sh.sh_addralign = secs[i].align;
        sh.sh_entsize = secs[i].entsize;
        sh.sh_link = secs[i].link;
        if (!gelf_update_shdr(scn, &sh)) {
            fail(err_r, errlen, rc, "section %s: %s", secs[i].name,
                 elf_errmsg(-1));
            goto out;
        }
    }
    if (!gelf_update_ehdr(elf, &eh) || elf_update(elf, ELF_C_WRITE) <= 0) {
        fail(err_r, errlen, rc, "elf_update: %s", elf_errmsg(-1));
        goto out;
    }
    rc = XM_OK;
out:
    elf_end(elf);
    return rc;
}

/* The whole of fd into a heap buffer. */
static int
read_back(int fd, uint8_t **img_r, size_t *len_r, char *err_r,
          size_t errlen)
{
    off_t end = lseek(fd, 0, SEEK_END);
    uint8_t *img;

    if (end < 0)
        return fail(err_r, errlen, XM_ERR_IO, "lseek: %s", strerror(errno));
    img = malloc(end ? (size_t)end : 1);
    if (!img)
        return fail(err_r, errlen, XM_ERR_NOMEM, "out of memory");
    if (pread(fd, img, (size_t)end, 0) != (ssize_t)end) {
        free(img);
        return fail(err_r, errlen, XM_ERR_IO, "short read of the payload");
    }
    *img_r = img;
    *len_r = (size_t)end;
    return XM_OK;
}

int
lp_payload_build(const struct lp_spec *s, const char *path,
                 uint8_t **img_r, size_t *len_r, char *err_r,
                 size_t errlen)
{
    struct sec secs[SECS_MAX];
    size_t n = 0, shstr_len = 1;
    char *shstr = NULL;
    FILE *anon = NULL;
    int fd = -1, rc;

    memset(secs, 0, sizeof(secs));
    if (!layout(s, secs, &n))
        return fail(err_r, errlen, XM_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < n; i++)
        shstr_len += strlen(secs[i].name) + 1;
    shstr_len += sizeof(".shstrtab");
    shstr = calloc(1, shstr_len);
    if (!shstr) {
        rc = fail(err_r, errlen, XM_ERR_NOMEM, "out of memory");
        goto out;
    }
    secs[n++] = (struct sec){ ".shstrtab", SHT_STRTAB, 0, 1, 0, shstr,
                              shstr_len, 0 };
    if (path) {
        fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    } else {
        anon = tmpfile();
        fd = anon ? fileno(anon) : -1;
    }
    if (fd < 0) {
        rc = fail(err_r, errlen, XM_ERR_IO, "%.200s: %s",
                  path ? path : "tmpfile", strerror(errno));
        goto out;
    }
    rc = write_elf(s, fd, secs, n, shstr, err_r, errlen);
    if (!rc && img_r)
        rc = read_back(fd, img_r, len_r, err_r, errlen);
out:
    for (size_t i = 0; i < n; i++)
        free(secs[i].data);     /* shstr is the last, when allocated */
    if (anon)
        fclose(anon);
    else if (fd >= 0)
        close(fd);
    return rc;
}
