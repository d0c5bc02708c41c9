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
#include "lib/tmp_store.h"

static void fopen_store(struct tmp_store *e, int early_cap) {
  kk_log_level = KK_LOG_ERROR;
  struct store_opts so = {.synchronous_full = 0, .early_cap = early_cap};
  ASSERT_EQ(tmp_store_open(e, "fair", &so), 0);
}

static void fclose_store(struct tmp_store *e) { ASSERT_EQ(tmp_store_close(e), 0); }

static void fwait(struct tmp_store *e, int want) { ASSERT_EQ(tmp_store_wait(e, want, 20000), 0); }

/* An unmatched status of scope for provider id pid at `at`; returns the
   time the store kept. */
static int64_t early_status(struct tmp_store *e, int64_t scope, const char *pid, int64_t at) {
  struct store_chan_status st = {.channel = "whatsapp", .scope = scope, .provider_id = pid,
                                 .status = "delivered", .at = at};
  int want = e->ndone + 1;
  store_chan_status(e->store, &st, tmp_store_done, e);
  fwait(e, want);
  ASSERT_EQ(st.matched, 0);
  return st.at;
}

/* One number from SQL over the database, read with a connection of the
   test's own. */
static int64_t sql_int(const struct tmp_store *e, const char *sql) {
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

static void expire(struct tmp_store *e, int64_t now) {
  int want = e->ndone + 1;
  store_early_expire(e->store, now, tmp_store_done, e);
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
  struct tmp_store e;
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
  struct tmp_store e;
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
    store_receipt_apply(e.store, &r, tmp_store_done, &e);
    fwait(&e, want);
    ASSERT_EQ(r.matched, 0);
  }
  ASSERT_EQ(sql_int(&e, "SELECT COUNT(*) FROM early_receipts WHERE route='rA'"), 5);
  struct store_stats ss;
  store_get_stats(e.store, &ss);
  ASSERT_EQ(ss.early_refused, 15 + 5);
  fclose_store(&e);
}

/* ---- listings and reports over indexes ------------------------------------ */

#include "store/sqlite/sq_int.h"

/* Whether the plan of sql reads messages only through an index. */
static int plan_uses_index(sqlite3 *db, const char *sql, char *why, size_t cap) {
  char eqp[4096];
  snprintf(eqp, sizeof eqp, "EXPLAIN QUERY PLAN %s", sql);
  sqlite3_stmt *st = NULL;
  ASSERT_EQ(sqlite3_prepare_v2(db, eqp, -1, &st, NULL), SQLITE_OK);
  int ok = 1, seen = 0;
  while (sqlite3_step(st) == SQLITE_ROW) {
    const char *d = (const char *)sqlite3_column_text(st, 3);
    if (strstr(d, "messages") == NULL) continue;
    seen = 1;
    if (strncmp(d, "SCAN", 4) == 0 || strstr(d, "USING") == NULL) {
      snprintf(why, cap, "%s", d);
      ok = 0;
    }
  }
  sqlite3_finalize(st);
  return ok && seen;
}

KK_TEST(fair_list_and_report_queries_use_an_index) {
  struct tmp_store e;
  fopen_store(&e, 0);
  char path[128];
  snprintf(path, sizeof path, "%s/kaskad.db", e.dir);
  sqlite3 *db = NULL;
  ASSERT_EQ(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
  const enum stmt_id ids[] = {ST_MSG_SCAN_ACC, ST_MSG_SCAN_TO,
                              ST_MSG_SCAN_CAMPAIGN, ST_MSG_VIEW};
  for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++) {
    char why[256] = "";
    if (!plan_uses_index(db, stmt_sql[ids[i]], why, sizeof why))
      kk_test_fail(__FILE__, __LINE__, "full scan in %s: %s", stmt_sql[ids[i]], why);
  }
  sqlite3_close(db);
  fclose_store(&e);
}

/* Stores n messages of account_id (to numbers 7916000000i) in batches. */
static void bulk(struct tmp_store *e, int64_t account_id, int n) {
  enum { BATCH = 2000 };
  static struct store_msg_new m[BATCH];
  static char ids[BATCH][32], to[BATCH][24];
  static int serial;
  int64_t now = store_now_ms();
  for (int done = 0; done < n;) {
    int k = n - done < BATCH ? n - done : BATCH;
    for (int i = 0; i < k; i++) {
      snprintf(ids[i], sizeof ids[i], "msg_b%d", serial++);
      snprintf(to[i], sizeof to[i], "7916%07d", (done + i) % 10000000);
      m[i] = (struct store_msg_new){
          .account_id = account_id, .public_id = ids[i], .to = to[i], .text = "bulk",
          .msg_class = "service", .encoding = "gsm7", .segments = 1, .route = "r1",
          .created_at = now, .expires_at = now + 3600000};
    }
    int want = e->ndone + 1;
    store_msg_insert(e->store, m, k, tmp_store_done, e);
    fwait(e, want);
    done += k;
  }
}

struct list_wait { int done, rc; };
static void on_list(void *arg, int rc) {
  struct list_wait *w = arg;
  w->done = 1;
  w->rc = rc;
}

/* One round trip of an insert of account_id through the loop, in ms. */
static double accept_ms(struct tmp_store *e, int64_t account_id, int i) {
  char id[32];
  snprintf(id, sizeof id, "msg_acc%d", i);
  int64_t now = store_now_ms();
  struct store_msg_new m = {.account_id = account_id, .public_id = id, .to = "79990000000",
                            .text = "hi", .msg_class = "service", .encoding = "gsm7",
                            .segments = 1, .route = "r1", .created_at = now,
                            .expires_at = now + 3600000};
  struct timespec a, b;
  clock_gettime(CLOCK_MONOTONIC, &a);
  int want = e->ndone + 1;
  store_msg_insert(e->store, &m, 1, tmp_store_done, e);
  fwait(e, want);
  clock_gettime(CLOCK_MONOTONIC, &b);
  return (double)(b.tv_sec - a.tv_sec) * 1e3 + (double)(b.tv_nsec - a.tv_nsec) / 1e6;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

/* Median accept latency of account 2 over 30 inserts; with lists set, an
   asynchronous listing of account 1 is kept running meanwhile. */
static double accept_median(struct tmp_store *e, const struct store_msg_filter *lists, int *nlists) {
  static struct store_msg_view rows[100];
  double ms[30];
  struct list_wait w = {.done = 1};
  int n = 0;
  int64_t next = 0;
  for (int i = 0; i < 30; i++) {
    if (lists && w.done) {
      for (int k = 0; k < n; k++) free(rows[k].text);
      n = 0;
      w.done = 0;
      (*nlists)++;
      store_msg_list_async(e->store, 1, &lists[*nlists % 2], rows, &n, &next, on_list, &w);
    }
    static int serial;
    ms[i] = accept_ms(e, 2, serial++);
  }
  ASSERT_EQ(tmp_store_run_until(e, &w.done, 1, 20000), 0);
  for (int k = 0; k < n; k++) free(rows[k].text);
  qsort(ms, 30, sizeof ms[0], cmp_double);
  return ms[15];
}

KK_TEST(fair_list_bounded_and_off_the_loop_over_a_large_history) {
  struct tmp_store e;
  fopen_store(&e, 0);
  bulk(&e, 1, 200000);
  static struct store_msg_view rows[100];
  int n = -1;
  int64_t next = -1;
  /* A phone with no message: the phone's index answers at once. */
  struct store_msg_filter f = {.phone = "70000000000", .limit = 100};
  ASSERT_EQ(store_msg_list(e.store, 1, &f, rows, &n, &next), 0);
  ASSERT_EQ(n, 0);
  ASSERT_EQ(next, 0);
  /* A phone with one: found, with its text. */
  f = (struct store_msg_filter){.phone = "79160123456", .limit = 100, .with_text = 1};
  ASSERT_EQ(store_msg_list(e.store, 1, &f, rows, &n, &next), 0);
  ASSERT_EQ(n, 1);
  ASSERT_EQ(strcmp(rows[0].to, "79160123456"), 0);
  ASSERT_EQ(strcmp(rows[0].text, "bulk"), 0);
  free(rows[0].text);
  /* A time range that matches nothing: at most STORE_LIST_EXAMINE rows are
     examined, and the answer says where to go on. */
  f = (struct store_msg_filter){.to = 1, .limit = 100};
  ASSERT_EQ(store_msg_list(e.store, 1, &f, rows, &n, &next), 0);
  ASSERT_EQ(n, 0);
  ASSERT(next > 0);
  int64_t first_next = next;
  f.before_id = next;
  ASSERT_EQ(store_msg_list(e.store, 1, &f, rows, &n, &next), 0);
  ASSERT_EQ(first_next - next, STORE_LIST_EXAMINE);

  /* Account 2's accepts while account 1 lists in a loop in the thread pool. */
  double base = accept_median(&e, NULL, NULL);
  struct store_msg_filter lists[2] = {{.to = 1, .limit = 100, .with_text = 1},
                                      {.phone = "70000000001", .limit = 100, .with_text = 1}};
  int nlists = 0;
  double during = accept_median(&e, lists, &nlists);
  ASSERT(nlists > 0);
  if (during > 10 * base + 20)
    kk_test_fail(__FILE__, __LINE__, "accepts %.2f ms alone, %.2f ms while listing", base, during);
  fclose_store(&e);
}
