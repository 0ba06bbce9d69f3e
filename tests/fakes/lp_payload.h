/*
 * lp_payload.h -- synthetic livepatch payloads for unit tests.
 *
 * Builds, with libelf, an ELF object shaped like a Xen 4.17 livepatch
 * payload: the notes .note.gnu.build-id, .livepatch.depends and
 * .livepatch.xen_depends, a .livepatch.funcs of version-2 entries, a
 * symbol table, and optional extras (a load hook, padding, a .bss).  A
 * spec says which parts to include and how to break them, so that
 * lpcheck_test can feed xm_lpcheck the ways Xen refuses a payload and
 * patch_test can hand the agent a payload that fits the fake
 * hypervisor.  The payload is written to a file and/or returned as
 * bytes.  No CUnit here: errors come back as XM_ERR_* with a message.
 */
#ifndef XM_TEST_LP_PAYLOAD_H
#define XM_TEST_LP_PAYLOAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define LP_PAYLOAD_ID_LEN 20    /* every build-id note carries 20 bytes */

/* What the payload looks like. */
struct lp_spec {
    int elfclass;                   /* ELFCLASS64 */
    int machine;                    /* EM_X86_64 */
    int type;                       /* ET_REL */
    bool funcs, depends, xen_depends, build_id, symtab;
    bool hook_load;                 /* a .livepatch.hooks.load section */
    unsigned nfuncs;                /* entries in .livepatch.funcs */
    uint8_t func_version;           /* each entry's version byte */
    size_t funcs_extra;             /* bytes past whole entries */
    uint32_t depends_note_type;     /* NT_GNU_BUILD_ID */
    size_t depends_empty;           /* 1: .livepatch.depends of 0 bytes */
    uint8_t self[LP_PAYLOAD_ID_LEN];    /* .note.gnu.build-id */
    uint8_t dep[LP_PAYLOAD_ID_LEN];     /* .livepatch.depends */
    uint8_t xen[LP_PAYLOAD_ID_LEN];     /* .livepatch.xen_depends */
    size_t pad;                     /* a PROGBITS section of pad bytes */
    size_t bss;                     /* an alloc NOBITS section */
};

/* A well-formed payload: ELF64 x86-64 ET_REL, every mandatory section,
 * one version-2 function, a symbol table; all build-ids zero. */
void lp_spec_default(struct lp_spec *s);

/*
 * Build the payload of spec s.  With path, write it there (created or
 * truncated, mode 0600); without, into an anonymous temporary file.
 * With img_r, *img_r gets the bytes (heap; the caller frees) and *len_r
 * their number.  XM_OK, or XM_ERR_IO / XM_ERR_NOMEM / XM_ERR_INVAL with
 * err_r saying what failed (err_r may be NULL).
 */
int lp_payload_build(const struct lp_spec *s, const char *path,
                     uint8_t **img_r, size_t *len_r, char *err_r,
                     size_t errlen);

#endif
