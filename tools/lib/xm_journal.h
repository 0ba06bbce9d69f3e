/*
 * xm_journal.h -- the migration journal: what each side of a live
 * migration has committed to, on disk, so that an agent restarted at any
 * moment finds out what to do with the guest (xm_mig_recover in
 * xm_migrate.h).
 *
 * Two halves:
 *  - the record (xm_journal_rec) and its encoding, a small versioned
 *    JSON document; decoding treats the text as hostile;
 *  - a file store in a state directory: one file per migration id and
 *    side, replaced atomically (write a temporary file, fsync it, rename
 *    it over the old one, fsync the directory).  Write errors come back
 *    as rc (XM_ERR_NOSPACE, XM_ERR_IO) so that the caller refuses to
 *    start a migration it cannot journal.  The file operations go
 *    through a small table (xm_journal_io) that tests replace to inject
 *    ENOSPC or EIO at any step.
 * Library code: nothing here logs; errors carry the file's path.
 */
#ifndef XM_JOURNAL_H
#define XM_JOURNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "xm_hv.h"
#include "xm_proto.h"

#define XM_JOURNAL_VERSION 1
#define XM_MIG_ID_MAX 63              /* [A-Za-z0-9_-]{1,63} */
#define XM_JOURNAL_FILE_MAX (16u * 1024) /* a record file's size limit */

enum xm_mig_side {
    XM_MIG_SOURCE = 1,
    XM_MIG_TARGET = 2,
};

/* Journal phases.  Numbers are internal; files carry the names. */
enum xm_jphase {
    XM_JP_SENDING = 1,   /* source: about to offer / sending */
    XM_JP_RECEIVING,     /* target: accepted, restoring --incoming */
    XM_JP_READY,         /* target: whole guest held paused */
    XM_JP_GO,            /* source: about to send GO (point of no
                          * return); target: GO received */
    XM_JP_DONE,          /* guest runs on the target */
    XM_JP_ABORTED,       /* guest stays on (or went back to) source */
};

struct xm_journal_rec {
    char id[XM_MIG_ID_MAX + 1];
    enum xm_mig_side side;
    char name[XM_DOMNAME_MAX + 1];    /* the guest's own name */
    uint8_t uuid[16];
    char source[XM_PROTO_HOST_MAX + 1];
    char target[XM_PROTO_HOST_MAX + 1];
    uint32_t src_domid;
    uint32_t dst_domid;               /* 0 until the target restored */
    enum xm_jphase phase;
    int64_t created_s;                /* wall clock, seconds */
    int64_t updated_s;
};

/* "receiving", or NULL for a value that is not a phase. */
const char *xm_jphase_name(int phase);
/* "source" / "target", or NULL. */
const char *xm_mig_side_name(int side);
/* A migration id as the schema spells it: [A-Za-z0-9_-]{1,63}. */
bool xm_mig_id_valid(const char *id);
/* A guest name we accept: 1..XM_DOMNAME_MAX printable ASCII bytes,
 * no '/' and no trailing "--incoming" / "--migratedaway". */
bool xm_mig_name_valid(const char *name);
/* Every field within its limits and consistent (phase fits the side). */
int xm_journal_rec_check(const struct xm_journal_rec *rec);

/* The record as a JSON document (heap, NUL-terminated). */
int xm_journal_encode(const struct xm_journal_rec *rec, char **json_r);
/* Parse len bytes.  XM_ERR_INVAL (malformed, a field missing or out of
 * range), XM_ERR_UNSUPPORTED (another version), XM_ERR_TOOBIG (over
 * XM_JOURNAL_FILE_MAX); err_r names the problem. */
int xm_journal_decode(const char *text, size_t len,
                      struct xm_journal_rec *rec_r, char *err_r,
                      size_t errlen);

/* ---- the file store ---- */

/* The system calls the store makes, replaceable for fault injection.
 * Each returns what the system call does (-1 and errno on failure). */
struct xm_journal_io {
    int (*open)(void *ctx, const char *path, int flags, mode_t mode);
    ssize_t (*write)(void *ctx, int fd, const void *buf, size_t len);
    int (*fsync)(void *ctx, int fd);
    int (*rename)(void *ctx, const char *from, const char *to);
    int (*close)(void *ctx, int fd);
    void *ctx;
};

/* The real system calls. */
extern const struct xm_journal_io xm_journal_io_real;

struct xm_journal;

/* A store over the existing directory dir; io NULL for the real calls
 * (copied).  XM_ERR_NOTFOUND when dir is missing, XM_ERR_INVAL when it
 * is not a directory. */
int xm_journal_new(const char *dir, const struct xm_journal_io *io,
                   struct xm_journal **j_r);
void xm_journal_free(struct xm_journal *j);     /* accepts NULL */

/* Write rec (checked first) as the record of (rec->id, rec->side),
 * replacing any older one atomically.  On failure the older record, if
 * any, is still there and whole; err_r names the path and the step. */
int xm_journal_put(struct xm_journal *j, const struct xm_journal_rec *rec,
                   char *err_r, size_t errlen);
/* Read the record of (id, side).  XM_ERR_NOTFOUND when there is none;
 * a corrupt, truncated or oversized file is an error (see
 * xm_journal_decode) with the path in err_r, never a crash. */
int xm_journal_load(struct xm_journal *j, const char *id,
                    enum xm_mig_side side, struct xm_journal_rec *rec_r,
                    char *err_r, size_t errlen);
/* Remove the record of (id, side); XM_ERR_NOTFOUND when absent. */
int xm_journal_remove(struct xm_journal *j, const char *id,
                      enum xm_mig_side side);

struct xm_journal_entry {
    char id[XM_MIG_ID_MAX + 1];
    enum xm_mig_side side;
};
/* The records present, sorted by id then side (heap array the caller
 * frees with free()).  Files that are not records (temporary files,
 * other names) are skipped; their content is not read here. */
int xm_journal_list(struct xm_journal *j, struct xm_journal_entry **ents_r,
                    size_t *n_r);

#endif /* XM_JOURNAL_H */
