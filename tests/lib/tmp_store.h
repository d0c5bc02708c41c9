/*
 * tmp_store.h - a real store (SQLite) in a fresh folder under /tmp, on a loop
 * of its own, for unit tests and fuzz targets: open it, run the loop until
 * what was queued has completed, close it and remove the folder.
 */
#ifndef KK_TMP_STORE_H
#define KK_TMP_STORE_H

#include <uv.h>

#include "store/store.h"

#define TMP_STORE_DIR_MAX 64

/* The loop has a timer that wakes it every 5 ms, so that running it once
   never blocks for long while a caller waits for a thread's answer. */
struct tmp_store {
  uv_loop_t loop;
  uv_timer_t tick;
  char dir[TMP_STORE_DIR_MAX];
  struct store *store;
  int ndone, rc;              /* completions counted by tmp_store_done, last failure */
};

/* Makes the folder /tmp/kk-<tag>-XXXXXX, the loop and a store there with
   opts (its dir is t's; NULL for the defaults), synchronous=normal unless
   opts say otherwise. 0, or KK_E* with nothing left behind. */
int tmp_store_open(struct tmp_store *t, const char *tag, const struct store_opts *opts);

/* Closes the store alone (the folder and loop stay), and opens it again in
   the same folder with opts (as tmp_store_open). */
void tmp_store_db_close(struct tmp_store *t);
int tmp_store_db_open(struct tmp_store *t, const struct store_opts *opts);

/* A store completion callback for arg = the tmp_store: counts one, keeps a
   failure in rc. */
void tmp_store_done(void *arg, int rc);

/* Runs the loop until *count reaches want: 0, or KK_ETIMEDOUT after
   timeout_ms. */
int tmp_store_run_until(struct tmp_store *t, const int *count, int want, int timeout_ms);

/* tmp_store_run_until for t's own count of completions; then t->rc. */
int tmp_store_wait(struct tmp_store *t, int want, int timeout_ms);

/* The reads that answer on the loop (store.h, *_async), made synchronous for
   tests: each queues the read and runs t's loop until its done callback
   has run; returns the read's rc (KK_ETIMEDOUT after 10 s). */
int tmp_store_msg_get(struct tmp_store *t, int64_t account_id, const char *public_id,
                      struct store_msg_view *out);
int tmp_store_reply_list(struct tmp_store *t, int64_t account_id,
                         const struct store_reply_filter *f, struct store_reply_view *out,
                         int *n, int64_t *next_cursor);
int tmp_store_keys_list(struct tmp_store *t, int64_t account_id,
                        void (*fn)(void *arg, const char *prefix, int64_t created_at,
                                   int64_t revoked_at),
                        void *fn_arg);

/* Closes the store (if open) and the loop and removes the folder: 0, or
   KK_EBUSY when a handle of the caller's is still open on the loop, KK_EIO
   when the folder could not be removed. */
int tmp_store_close(struct tmp_store *t);

/* Makes the empty folder /tmp/kk-<tag>-XXXXXX into dir; 0, or KK_EIO with
   dir "" (tag is a short name: the path must fit TMP_STORE_DIR_MAX). */
int tmp_store_dir_new(char dir[TMP_STORE_DIR_MAX], const char *tag);

/* Removes a closed store's folder with its database, WAL and shared-memory
   files; 0 when the folder is gone, else KK_EIO. */
int tmp_store_dir_rm(const char *dir);

#endif
