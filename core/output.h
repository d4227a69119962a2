/* The one way ocellus writes files. A reader never sees half of an output, and a failed
 * or killed write leaves the previous output as it was:
 *
 *  - A file is written under a temporary name in its own folder (".NAME.oc-tmp.PID.RAND",
 *    created with O_EXCL | O_NOFOLLOW, so that nothing planted there is followed or
 *    overwritten), fsync'd, renamed over NAME, and the folder fsync'd.
 *  - A folder output (a checkpoint, a dataset, a model) is written whole into a sibling
 *    temporary folder, each file fsync'd, and then exchanged with the old folder in one
 *    rename (renameat2 RENAME_EXCHANGE), so that DIR is at every moment either the whole
 *    old output or the whole new one. Entries of the old folder that the new one does not
 *    write are carried over (hard links). A symlink at DIR is replaced, not followed.
 *  - A folder output is locked while written (flock on ".NAME.oc-lock" beside it): a
 *    second writer fails at once with "DIR is being written by process N".
 *  - Temporaries of writers that died (killed, power loss) are removed by the next write
 *    of the same output: for a folder, any temporary of it (the lock proves its writer
 *    gone); for a file, those whose process no longer exists.
 * Every write, fsync, close and rename is checked; errors name the output. */
#ifndef OC_OUTPUT_H
#define OC_OUTPUT_H
#include <stddef.h>

#include "ocellus.h"

/* ---- files ------------------------------------------------------------------------ */

typedef struct oc_out_file oc_out_file;

/* Starts writing path (replaced when committed). */
oc_status oc_out_open(const char *path, oc_out_file **out);
/* Buffered; the first failure is returned here or by oc_out_commit. */
oc_status oc_out_write(oc_out_file *f, const void *data, size_t n);
/* Flushes, fsyncs, closes and renames into place, then fsyncs the folder. Frees f, also
 * on failure (the temporary is removed then). */
oc_status oc_out_commit(oc_out_file *f);
/* Gives up: the temporary is removed, path is untouched. Frees f; NULL is allowed. */
void oc_out_abort(oc_out_file *f);

/* Writes data to path atomically: oc_out_open + oc_out_write + oc_out_commit. */
oc_status oc_write_file_atomic(const char *path, const void *data, size_t size);

/* ---- folders ---------------------------------------------------------------------- */

typedef struct oc_out_lock oc_out_lock;

/* Locks dir's output for this process (parents of dir are created). Fails with OC_ERR_IO
 * "DIR is being written by process N" if another process (or another lock in this one)
 * holds it. */
oc_status oc_out_lock_acquire(const char *dir, oc_out_lock **out);
void oc_out_lock_release(oc_out_lock *lock); /* NULL is allowed */
/* 1 if lock is dir's (the same path as given). */
int oc_out_lock_is_for(const oc_out_lock *lock, const char *dir);

typedef struct oc_out_dir oc_out_dir;

/* Starts a folder output at dir. lock: dir's lock when the caller holds it across
 * several outputs (a training run), else NULL (one is taken until commit or abort). */
oc_status oc_out_dir_begin(const char *dir, oc_out_lock *lock, oc_out_dir **out);
/* Creates a file of the new folder (name may hold '/' for a subfolder made with
 * oc_out_dir_mkdir); commit it with oc_out_commit (fsync'd, no rename). */
oc_status oc_out_dir_create(oc_out_dir *d, const char *name, oc_out_file **out);
oc_status oc_out_dir_write(oc_out_dir *d, const char *name, const void *data, size_t n);
oc_status oc_out_dir_mkdir(oc_out_dir *d, const char *name);
/* Puts the new folder in place of the old (carrying over the old folder's entries that
 * the new one lacks), fsyncs, removes the old. Frees d, also on failure (the new folder
 * is removed then and dir is left as it was). */
oc_status oc_out_dir_commit(oc_out_dir *d);
/* Gives up: dir is left as it was. Frees d; NULL is allowed. */
void oc_out_dir_abort(oc_out_dir *d);

/* mkdir -p (every mkdir checked; existing folders are fine). */
oc_status oc_make_dirs(const char *path);
#endif
