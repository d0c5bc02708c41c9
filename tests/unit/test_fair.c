/*
 * test_fair.c - what keeps one tenant from hurting another in the store:
 * provider times clamped to now, early statuses and receipts capped per
 * scope and expired by time only (never because of another scope's input),
 * and listing and report queries that run over an index.
 */
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "core/kk_err.h"
#include "core/kk_log.h"
#include "store/store.h"
#include "kk_test.h"

struct fenv {
  uv_loop_t loop;
  uv_timer_t tick;            /* wakes the loop while a test waits */
  char dir[64];
  struct store *store;
  int ndone, rc;
};

static uint64_t fmono_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void ftick(uv_timer_t *t) {}

static void fdone(void *arg, int rc) {
  struct fenv *e = arg;
  e->ndone++;
  if (rc) e->rc = rc;
}

static void fopen_store(struct fenv *e, int early_cap) {
  memset(e, 0, sizeof *e);
  kk_log_level = KK_LOG_ERROR;
  snprintf(e->dir, sizeof e->dir, "/tmp/kk-fair-XXXXXX");
  ASSERT(mkdtemp(e->dir) != NULL);
  ASSERT_EQ(uv_loop_init(&e->loop), 0);
  uv_timer_init(&e->loop, &e->tick);
  uv_timer_start(&e->tick, ftick, 5, 5);
  struct store_opts so = {.dir = e->dir, .synchronous_full = 0, .early_cap = early_cap};
  ASSERT_EQ(store_open(&e->loop, &so, &e->store), 0);
}

static void fclose_store(struct fenv *e) {
  store_close(e->store);
  uv_run(&e->loop, UV_RUN_NOWAIT);
  uv_close((uv_handle_t *)&e->tick, NULL);
  uv_run(&e->loop, UV_RUN_DEFAULT);
  ASSERT_EQ(uv_loop_close(&e->loop), 0);
  ASSERT_EQ(kk_test_rm_store_dir(e->dir), 0);
}

static void fwait(struct fenv *e, int want) {
  uint64_t end = fmono_ms() + 20000;
  while (e->ndone < want) {
    ASSERT(fmono_ms() < end);
    uv_run(&e->loop, UV_RUN_ONCE);
  }
  ASSERT_EQ(e->rc, 0);
}

/* An unmatched status of scope for provider id pid at `at`; returns the
   time the store kept. */
static int64_t early_status(struct fenv *e, int64_t scope, const char *pid, int64_t at) {
  struct store_chan_status st = {.channel = "whatsapp", .scope = scope, .provider_id = pid,
                                 .status = "delivered", .at = at};
  int want = e->ndone + 1;
  store_chan_status(e->store, &st, fdone, e);
  fwait(e, want);
  ASSERT_EQ(st.matched, 0);
  return st.at;
}

/* One number from SQL over the database, read with a connection of the
   test's own. */
static int64_t sql_int(const struct fenv *e, const char *sql) {
  char path[128];
  snprintf(path, sizeof path, "%s/kaskad.db", e->dir);
  sqlite3 *db = NULL;
  ASSERT_EQ(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
  sqlite3_stmt *st = NULL;
  ASSERT_EQ(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
  ASSERT_EQ(sqlite3_step(st), SQLITE_ROW);
  int64_t n = sqlite3_column_int64(st, 0);
  sqlite3_finalize(st);
  sqlite3_close(db);
  return n;
}

static void expire(struct fenv *e, int64_t now) {
  int want = e->ndone + 1;
  store_early_expire(e->store, now, fdone, e);
  fwait(e, want);
}

KK_TEST(fair_clamp_provider_times) {
  const int64_t now = 1800000000000LL;
  ASSERT_EQ(store_clamp_at(0, now), now);
  ASSERT_EQ(store_clamp_at(now - 1000, now), now - 1000);
  ASSERT_EQ(store_clamp_at(now + 4000000000000LL, now), now + STORE_CLAMP_MS);
  ASSERT_EQ(store_clamp_at(1, now), now - STORE_CLAMP_MS);
}

KK_TEST(fair_early_expiry_only_by_time_never_for_another_scope) {
  struct fenv e;
  fopen_store(&e, 0);
  int64_t now = store_now_ms();
  early_status(&e, 1, "a1", now - 4 * 60 * 1000);
  early_status(&e, 1, "a2", now + 4 * 60 * 1000);
  /* Another scope's far-future status is clamped and deletes nothing. */
  int64_t kept = early_status(&e, 2, "b1", now + 10LL * 365 * 24 * 3600 * 1000);
  ASSERT(kept <= store_now_ms() + STORE_CLAMP_MS);
  ASSERT(kept >= now);
  ASSERT_EQ(sql_int(&e, "SELECT COUNT(*) FROM early_statuses WHERE scope=1"), 2);
  /* Within the day nothing expires; a day after a1 only a1 does. */
  expire(&e, now + 3600 * 1000);
  ASSERT_EQ(sql_int(&e, "SELECT COUNT(*) FROM early_statuses"), 3);
  expire(&e, now + 24LL * 3600 * 1000);
  ASSERT_EQ(sql_int(&e, "SELECT COUNT(*) FROM early_statuses WHERE scope=1"), 1);
  ASSERT_EQ(sql_int(&e, "SELECT COUNT(*) FROM early_statuses WHERE provider_id='a2'"), 1);
  ASSERT_EQ(sql_int(&e, "SELECT COUNT(*) FROM early_statuses WHERE scope=2"), 1);
  expire(&e, now + 25LL * 3600 * 1000);
  ASSERT_EQ(sql_int(&e, "SELECT COUNT(*) FROM early_statuses"), 0);
  struct store_stats ss;
  store_get_stats(e.store, &ss);
  ASSERT_EQ(ss.early_expired, 3);
  /* The expiry deletes by the index on at, not by a scan of the table. */
  ASSERT_EQ(sql_int(&e, "SELECT COUNT(*) FROM sqlite_master WHERE name='early_statuses_at'"), 1);
  ASSERT_EQ(sql_int(&e, "SELECT COUNT(*) FROM sqlite_master WHERE name='early_receipts_at'"), 1);
  fclose_store(&e);
}

KK_TEST(fair_early_rows_capped_per_scope) {
  struct fenv e;
  fopen_store(&e, 5);
  int64_t now = store_now_ms();
  char pid[16];
  for (int i = 0; i < 20; i++) {
    snprintf(pid, sizeof pid, "x%d", i);
    early_status(&e, 3, pid, now + 10LL * 365 * 24 * 3600 * 1000);
  }
  ASSERT_EQ(sql_int(&e, "SELECT COUNT(*) FROM early_statuses WHERE scope=3"), 5);
  /* Another scope is not affected by the full one. */
  early_status(&e, 4, "y1", now);
  ASSERT_EQ(sql_int(&e, "SELECT COUNT(*) FROM early_statuses WHERE scope=4"), 1);
  /* Receipts before their submit_sm_resp: capped per route. */
  for (int i = 0; i < 10; i++) {
    char id[16];
    snprintf(id, sizeof id, "r%d", i);
    struct store_receipt r = {.route = "rA", .ids = {id, NULL}, .state = "delivered",
                              .at = now};
    int want = e.ndone + 1;
    store_receipt_apply(e.store, &r, fdone, &e);
    fwait(&e, want);
    ASSERT_EQ(r.matched, 0);
  }
  ASSERT_EQ(sql_int(&e, "SELECT COUNT(*) FROM early_receipts WHERE route='rA'"), 5);
  struct store_stats ss;
  store_get_stats(e.store, &ss);
  ASSERT_EQ(ss.early_refused, 15 + 5);
  fclose_store(&e);
}
