/* tmp_store.c - see tmp_store.h. */
#include "tmp_store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/kk_err.h"

static uint64_t mono_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void on_tick(uv_timer_t *h) {}

int tmp_store_db_open(struct tmp_store *t, const struct store_opts *opts) {
  struct store_opts so = {.synchronous_full = 0};
  if (opts) so = *opts;
  so.dir = t->dir;
  return store_open(&t->loop, &so, &t->store);
}

int tmp_store_open(struct tmp_store *t, const char *tag, const struct store_opts *opts) {
  memset(t, 0, sizeof *t);
  int rc = tmp_store_dir_new(t->dir, tag);
  if (rc) return rc;
  if (uv_loop_init(&t->loop) != 0) {
    tmp_store_dir_rm(t->dir);
    return KK_EIO;
  }
  uv_timer_init(&t->loop, &t->tick);
  uv_timer_start(&t->tick, on_tick, 5, 5);
  rc = tmp_store_db_open(t, opts);
  if (rc) {
    t->store = NULL;
    tmp_store_close(t);
  }
  return rc;
}

void tmp_store_db_close(struct tmp_store *t) {
  if (t->store) store_close(t->store);
  t->store = NULL;
  uv_run(&t->loop, UV_RUN_NOWAIT);
}

void tmp_store_done(void *arg, int rc) {
  struct tmp_store *t = arg;
  t->ndone++;
  if (rc) t->rc = rc;
}

int tmp_store_run_until(struct tmp_store *t, const int *count, int want, int timeout_ms) {
  uint64_t end = mono_ms() + (uint64_t)timeout_ms;
  while (*count < want) {
    if (mono_ms() >= end) return KK_ETIMEDOUT;
    uv_run(&t->loop, UV_RUN_ONCE);
  }
  return 0;
}

int tmp_store_wait(struct tmp_store *t, int want, int timeout_ms) {
  int rc = tmp_store_run_until(t, &t->ndone, want, timeout_ms);
  return rc ? rc : t->rc;
}

/* One read answering on the loop: its rc once done ran. */
struct sync_read {
  int done, rc;
};

static void on_sync_read(void *arg, int rc) {
  struct sync_read *r = arg;
  r->rc = rc;
  r->done = 1;
}

static int sync_wait(struct tmp_store *t, struct sync_read *r) {
  int rc = tmp_store_run_until(t, &r->done, 1, 10000);
  return rc ? rc : r->rc;
}

int tmp_store_msg_get(struct tmp_store *t, int64_t account_id, const char *public_id,
                      struct store_msg_view *out) {
  struct sync_read r = {0, 0};
  store_msg_get_async(t->store, account_id, public_id, out, on_sync_read, &r);
  return sync_wait(t, &r);
}

int tmp_store_reply_list(struct tmp_store *t, int64_t account_id,
                         const struct store_reply_filter *f, struct store_reply_view *out,
                         int *n, int64_t *next_cursor) {
  struct sync_read r = {0, 0};
  store_reply_list_async(t->store, account_id, f, out, n, next_cursor, on_sync_read, &r);
  return sync_wait(t, &r);
}

int tmp_store_keys_list(struct tmp_store *t, int64_t account_id,
                        void (*fn)(void *arg, const char *prefix, int64_t created_at,
                                   int64_t revoked_at),
                        void *fn_arg) {
  struct sync_read r = {0, 0};
  store_keys_list_async(t->store, account_id, fn, fn_arg, on_sync_read, &r);
  return sync_wait(t, &r);
}

int tmp_store_close(struct tmp_store *t) {
  tmp_store_db_close(t);
  uv_close((uv_handle_t *)&t->tick, NULL);
  uv_run(&t->loop, UV_RUN_DEFAULT);
  int rc = uv_loop_close(&t->loop) == 0 ? 0 : KK_EBUSY;
  if (tmp_store_dir_rm(t->dir) != 0 && rc == 0) rc = KK_EIO;
  return rc;
}

int tmp_store_dir_new(char dir[TMP_STORE_DIR_MAX], const char *tag) {
  int n = snprintf(dir, TMP_STORE_DIR_MAX, "/tmp/kk-%s-XXXXXX", tag);
  if (n < 0 || n >= TMP_STORE_DIR_MAX || mkdtemp(dir) == NULL) {
    dir[0] = '\0';
    return KK_EIO;
  }
  return 0;
}

int tmp_store_dir_rm(const char *dir) {
  static const char *const files[] = {"kaskad.db", "kaskad.db-wal", "kaskad.db-shm"};
  char path[TMP_STORE_DIR_MAX + 32];
  for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
    snprintf(path, sizeof path, "%s/%s", dir, files[i]);
    unlink(path);
  }
  return rmdir(dir) == 0 ? 0 : KK_EIO;
}
