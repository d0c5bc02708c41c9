/*
 * test_store_pg_peer.c - two stores (nodes) on one PostgreSQL database: a
 * stop-list write through one reaches the other's copy in memory without a
 * restart, however many phones it had (many lines to a NOTIFY payload, as
 * many payloads as it takes), and taking them off again does too; an idle
 * node hears it at once, not at its next idle commit.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/kk_err.h"
#include "core/kk_log.h"
#include "kk_test.h"
#include "lib/tmp_pg.h"
#include "lib/tmp_store.h"
#include "store/pg/pg_int.h"
#include "store/store.h"
#include "store/store_optout.h"

#define PHONES 2000   /* ~50,000 bytes of lines: several payloads */

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6;
}

static void phone_of(int i, char out[16]) { snprintf(out, 16, "7916%07d", 3000000 + i); }

/* Runs b's loop until every phone of account has reason want (0: none) in
   its copy, up to 3 s: the milliseconds it took, or -1. */
static double wait_copy(struct tmp_store *b, int64_t account, unsigned want, double t0) {
  int never = 0;
  while (now_ms() - t0 < 3000) {
    int all = 1;
    for (int i = 0; i < PHONES && all; i++) {
      char p[16];
      phone_of(i, p);
      all = (store_stop_reason(b->store, account, p) != 0) == (want != 0);
    }
    if (all) return now_ms() - t0;
    tmp_store_run_until(b, &never, 1, 5);
  }
  return -1;
}

KK_TEST(store_pg_stoplist_reaches_the_other_node) {
  kk_test_need_pg();
  kk_log_level = KK_LOG_ERROR;
  struct tmp_pg db;
  ASSERT_EQ(tmp_pg_new(&db), 0);
  struct store_opts o = {.store_url = db.url};
  static struct tmp_store a, b;
  ASSERT_EQ(tmp_store_open(&a, "pgpeerA", &o), 0);
  ASSERT_EQ(tmp_store_open(&b, "pgpeerB", &o), 0);
  /* B's listener wakes its writer once that has run (its first idle
     commit, idle_ms after the open) */
  int never = 0;
  for (int i = 0; i < 400 && !PG(b.store)->writer_up; i++) tmp_store_run_until(&b, &never, 1, 5);
  ASSERT(PG(b.store)->writer_up);
  struct store_account acc = {0};
  snprintf(acc.name, sizeof acc.name, "A");
  store_account_create(a.store, &acc, tmp_store_done, &a);
  ASSERT_EQ(tmp_store_wait(&a, 1, 10000), 0);

  static struct store_stop_row rows[PHONES];
  for (int i = 0; i < PHONES; i++) {
    memset(&rows[i], 0, sizeof rows[i]);
    phone_of(i, rows[i].phone);
    snprintf(rows[i].reason, sizeof rows[i].reason, "complaint");
  }
  struct store_stop_batch put = {.account_id = acc.id, .at = 1, .rows = rows, .n = PHONES};
  store_stop_write(a.store, &put, tmp_store_done, &a);
  ASSERT_EQ(tmp_store_wait(&a, 2, 10000), 0);
  double t0 = now_ms();   /* committed on A */
  ASSERT_EQ(put.changed, PHONES);
  double ms = wait_copy(&b, acc.id, 1, t0);
  if (getenv("KASKAD_TEST_VERBOSE")) fprintf(stderr, "put: %.1f ms\n", ms);
  ASSERT(ms >= 0);
  ASSERT(ms < 400);   /* B is idle: it is woken, not left to its next idle commit */
  /* taken off again */
  for (int i = 0; i < PHONES; i++) rows[i].withdraw = 1, rows[i].reason[0] = '\0';
  struct store_stop_batch del = {.account_id = acc.id, .at = 2, .rows = rows, .n = PHONES};
  store_stop_write(a.store, &del, tmp_store_done, &a);
  ASSERT_EQ(tmp_store_wait(&a, 3, 10000), 0);
  t0 = now_ms();
  ms = wait_copy(&b, acc.id, 0, t0);
  ASSERT(ms >= 0);
  ASSERT(ms < 400);
  /* another account's copy is untouched */
  char p[16];
  phone_of(0, p);
  ASSERT_EQ(store_stop_reason(b.store, acc.id + 1, p), 0);
  ASSERT_EQ(tmp_store_close(&a), 0);
  ASSERT_EQ(tmp_store_close(&b), 0);
  ASSERT_EQ(tmp_pg_drop(&db), 0);
}
