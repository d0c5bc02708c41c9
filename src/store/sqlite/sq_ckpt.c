/*
 * sq_ckpt.c - the SQLite backend's checkpointer: a thread of its own
 * that copies the write-ahead log back into the database file.
 *
 * SQLite normally checkpoints inside the commit that crosses the WAL's size
 * limit: that commit, and every operation queued behind it, then waits for
 * thousands of pages to be copied and fsynced (60-80 ms here). Instead the
 * writer only reports the WAL's size after each commit (a WAL hook); past
 * CKPT_FRAMES this thread copies the log with a PASSIVE checkpoint on its
 * own connection while the writer goes on. The log can only start over once
 * every frame in it is copied, which a busy writer never lets the thread
 * see; so when a pass has left at most CKPT_TOPUP_FRAMES behind, the writer
 * copies that rest itself (a few milliseconds) and its next transaction
 * starts the log over. While an import writes its batches (ck_bulk), whose
 * commits are megabytes each, the writer tops up only once the log is past
 * CKPT_BULK_FRAMES: the thread still copies it every CKPT_FRAMES. Should
 * the log still reach CKPT_FORCE_FRAMES, the writer runs a RESTART
 * checkpoint: slow once, but the file stays bounded.
 */
#include <stdio.h>

#include "core/kk_err.h"
#include "core/kk_log.h"
#include "store/sqlite/sq_int.h"

#define LOGCTX "store"
#define CKPT_FRAMES 10000         /* 40 MiB of 4 KiB pages: fewer, larger
                                     checkpoints copy a busy page fewer times */
#define CKPT_TOPUP_FRAMES 3000    /* left for the writer to copy */
#define CKPT_BULK_FRAMES 65536    /* 256 MiB: the log while an import writes */
#define CKPT_FORCE_FRAMES 100000  /* 400 MiB */
#define CKPT_KEEP_BYTES 67108864  /* the log's file cut back to this size */

/* Writer thread, after each commit. */
static int on_wal(void *arg, sqlite3 *db, const char *name, int nframes) {
  struct store *s = arg;
  if (nframes < CKPT_FRAMES) return SQLITE_OK;
  int log = 0, done = 0;
  if (nframes >= CKPT_FORCE_FRAMES) {
    int rc = sqlite3_wal_checkpoint_v2(db, name, SQLITE_CHECKPOINT_RESTART, &log, &done);
    kk_warnx(LOGCTX, "the log reached %d pages: checkpointed %d in the writer (%s)", nframes,
             done, sqlite3_errstr(rc));
    return SQLITE_OK;
  }
  /* While an import writes, its commits are megabytes each, and the last
     one's pages copied and synced by the writer cost it 20-70 ms a top-up
     (7 a 1,000,000-row import otherwise): the log starts over only past
     CKPT_BULK_FRAMES, the thread copying it every CKPT_FRAMES meanwhile. */
  int hold = SQ(s)->ck_bulk && nframes < CKPT_BULK_FRAMES;
  pthread_mutex_lock(&SQ(s)->ck_mu);
  int topup = !hold && !SQ(s)->ck_want && SQ(s)->ck_copied > 0 &&
              nframes - SQ(s)->ck_copied <= CKPT_TOPUP_FRAMES;
  if (topup) {
    SQ(s)->ck_copied = 0;
  } else if (!SQ(s)->ck_want && (!hold || nframes - SQ(s)->ck_copied >= CKPT_FRAMES)) {
    SQ(s)->ck_want = 1;
    pthread_cond_signal(&SQ(s)->ck_cv);
  }
  pthread_mutex_unlock(&SQ(s)->ck_mu);
  if (topup) {
    int64_t t0 = store_now_ms();
    int rc = sqlite3_wal_checkpoint_v2(db, name, SQLITE_CHECKPOINT_PASSIVE, &log, &done);
    kk_debug(LOGCTX, "checkpoint in the writer: %d of %d pages in %lld ms (%s)", done, log,
             (long long)(store_now_ms() - t0), sqlite3_errstr(rc));
  }
  return SQLITE_OK;
}

/* The database file synced on the thread's connection. SQLite syncs it
   only in a checkpoint that copies the whole log, which a busy writer
   leaves to its top-up: that sync then wrote every page the passes had
   copied since the log last started over (384-408 ms of the writer's
   time for an import's 65,536 pages). Synced after each pass, the top-up
   writes only its own. */
static void sync_db(struct store *s) {
  sqlite3_file *f = NULL;
  if (sqlite3_file_control(SQ(s)->ck.db, "main", SQLITE_FCNTL_FILE_POINTER, &f) != SQLITE_OK ||
      f == NULL || f->pMethods == NULL)
    return;
  int rc = f->pMethods->xSync(f, SQLITE_SYNC_NORMAL);
  if (rc != SQLITE_OK)
    kk_warnx(LOGCTX, "checkpoint: the database not synced (%s)", sqlite3_errstr(rc));
}

static void *ckpt_main(void *arg) {
  struct store *s = arg;
  pthread_mutex_lock(&SQ(s)->ck_mu);
  for (;;) {
    while (!SQ(s)->ck_want && !SQ(s)->ck_stop) pthread_cond_wait(&SQ(s)->ck_cv, &SQ(s)->ck_mu);
    if (SQ(s)->ck_stop) break;
    pthread_mutex_unlock(&SQ(s)->ck_mu);
    int log = 0, done = 0;
    int64_t t0 = store_now_ms();
    int rc = sqlite3_wal_checkpoint_v2(SQ(s)->ck.db, NULL, SQLITE_CHECKPOINT_PASSIVE, &log, &done);
    if (rc == SQLITE_OK && done > 0) sync_db(s);
    if (rc != SQLITE_OK && rc != SQLITE_BUSY)
      kk_error(LOGCTX, "checkpoint: %s", sqlite3_errmsg(SQ(s)->ck.db));
    else
      kk_debug(LOGCTX, "checkpoint: %d of %d pages copied in %lld ms", done, log,
               (long long)(store_now_ms() - t0));
    pthread_mutex_lock(&SQ(s)->ck_mu);
    SQ(s)->ck_want = 0;
    SQ(s)->ck_copied = rc == SQLITE_OK ? done : 0;
  }
  pthread_mutex_unlock(&SQ(s)->ck_mu);
  return NULL;
}

void ckpt_bulk(struct store *s, int on) {
  struct sq_store *q = SQ(s);
  if (q->ck_bulk == on) return;
  q->ck_bulk = on;
  /* The log an import let grow is cut back when it next starts over, once
     the import is over: cutting it in the middle (ftruncate of 200 MiB)
     took the writer 118 ms, and the log grew again. */
  char sql[64];
  snprintf(sql, sizeof sql, "PRAGMA journal_size_limit=%lld",
           on ? -1LL : (long long)CKPT_KEEP_BYTES);
  if (sqlite3_exec(q->w.db, sql, NULL, NULL, NULL) != SQLITE_OK)
    kk_warnx(LOGCTX, "the log's size limit: %s", sqlite3_errmsg(q->w.db));
}

int ckpt_start(struct store *s, const char *path, int sync_full) {
  if (conn_open(&SQ(s)->ck, path, sync_full, 0) != 0) return KK_ESTORE;
  pthread_mutex_init(&SQ(s)->ck_mu, NULL);
  pthread_cond_init(&SQ(s)->ck_cv, NULL);
  pthread_create(&SQ(s)->ck_thread, NULL, ckpt_main, s);
  sqlite3_wal_hook(SQ(s)->w.db, on_wal, s);
  return 0;
}

void ckpt_stop(struct store *s) {
  sqlite3_wal_hook(SQ(s)->w.db, NULL, NULL);
  pthread_mutex_lock(&SQ(s)->ck_mu);
  SQ(s)->ck_stop = 1;
  pthread_cond_signal(&SQ(s)->ck_cv);
  pthread_mutex_unlock(&SQ(s)->ck_mu);
  pthread_join(SQ(s)->ck_thread, NULL);
  pthread_mutex_destroy(&SQ(s)->ck_mu);
  pthread_cond_destroy(&SQ(s)->ck_cv);
  conn_close(&SQ(s)->ck);
}
