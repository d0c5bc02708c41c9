/*
 * test_store.c - store operations on a real SQLite store in a temporary
 * folder: when people last wrote to a WhatsApp number (the 24-hour window),
 * kept per (scope, phone), only ever moved forward, and still there after
 * the store is closed and opened again; a campaign's messages, listed and
 * added up per account.
 */
#include <sqlite3.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "core/kk_err.h"
#include "core/kk_log.h"
#include "store/store.h"
#include "store/store_int.h"
#include "kk_test.h"
#include "lib/tmp_store.h"

static void env_open(struct tmp_store *e) {
  kk_log_level = KK_LOG_ERROR;
  ASSERT_EQ(tmp_store_open(e, "store", NULL), 0);
}

static void env_close(struct tmp_store *e) { ASSERT_EQ(tmp_store_close(e), 0); }

/* Runs the loop until the store operations queued so far have completed. */
static void wait_done(struct tmp_store *e, int want) { ASSERT_EQ(tmp_store_wait(e, want, 10000), 0); }

/* Records a message from phone at `at` and waits for its commit. */
static void inbound(struct tmp_store *e, int64_t scope, const char *phone, int64_t at) {
  int want = e->ndone + 1;
  store_wa_inbound(e->store, scope, phone, at, tmp_store_done, e);
  wait_done(e, want);
}

/* The stored time, or -1 when there is none. */
static int64_t last_inbound(struct tmp_store *e, int64_t scope, const char *phone) {
  int64_t at = 0;
  int rc = e->store->be->read.wa_last_inbound(e->store, scope, phone, &at);
  if (rc == KK_ENOENT) return -1;
  ASSERT_EQ(rc, 0);
  return at;
}

/* Rows of the window table, read with a connection of the test's own. */
static int window_rows(const struct tmp_store *e) {
  char path[128];
  snprintf(path, sizeof path, "%s/kaskad.db", e->dir);
  sqlite3 *db = NULL;
  ASSERT_EQ(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
  sqlite3_stmt *st = NULL;
  ASSERT_EQ(sqlite3_prepare_v2(db, "SELECT COUNT(*) FROM wa_windows", -1, &st, NULL), SQLITE_OK);
  ASSERT_EQ(sqlite3_step(st), SQLITE_ROW);
  int n = sqlite3_column_int(st, 0);
  sqlite3_finalize(st);
  sqlite3_close(db);
  return n;
}

KK_TEST(store_wa_window_latest_per_scope_and_phone) {
  struct tmp_store e;
  env_open(&e);
  const int64_t t = 1763932800000LL;
  ASSERT_EQ(last_inbound(&e, 0, "79161234567"), -1);

  inbound(&e, 0, "79161234567", t);
  ASSERT_EQ(last_inbound(&e, 0, "79161234567"), t);
  /* An older message (callbacks come in any order) changes nothing. */
  inbound(&e, 0, "79161234567", t - 5000);
  ASSERT_EQ(last_inbound(&e, 0, "79161234567"), t);
  inbound(&e, 0, "79161234567", t + 7000);
  ASSERT_EQ(last_inbound(&e, 0, "79161234567"), t + 7000);

  /* Another phone, another scope (an account's own number): their own rows. */
  ASSERT_EQ(last_inbound(&e, 0, "79161234568"), -1);
  ASSERT_EQ(last_inbound(&e, 5, "79161234567"), -1);
  inbound(&e, 5, "79161234567", t - 1000);
  ASSERT_EQ(last_inbound(&e, 5, "79161234567"), t - 1000);
  ASSERT_EQ(last_inbound(&e, 0, "79161234567"), t + 7000);

  /* Durable: there after the store is opened again, one row per pair. */
  tmp_store_db_close(&e);
  ASSERT_EQ(window_rows(&e), 2);
  ASSERT_EQ(tmp_store_db_open(&e, NULL), 0);
  ASSERT_EQ(last_inbound(&e, 0, "79161234567"), t + 7000);
  ASSERT_EQ(last_inbound(&e, 5, "79161234567"), t - 1000);
  env_close(&e);
}

/* ---- campaigns ------------------------------------------------------------ */

/* Stores one SMS message (campaign may be NULL) and waits for its commit;
   *out receives its row and first attempt. */
static void put_msg(struct tmp_store *e, int64_t account_id, const char *public_id,
                    const char *campaign, int segments, struct store_msg_new *out) {
  int64_t now = store_now_ms();
  struct store_msg_new m = {
      .account_id = account_id, .public_id = public_id, .to = "79161234567", .text = "hi",
      .msg_class = "service", .encoding = "gsm7", .segments = segments, .route = "r1",
      .campaign = campaign, .created_at = now, .expires_at = now + 3600000,
  };
  int want = e->ndone + 1;
  store_msg_insert(e->store, &m, 1, tmp_store_done, e);
  wait_done(e, want);
  ASSERT_EQ(m.rc, 0);
  *out = m;
}

/* Reports message m's single SMS part submitted, then delivered. */
static void deliver_sms(struct tmp_store *e, const struct store_msg_new *m) {
  struct store_sms_update u = {
      .msg_id = m->id, .attempt_id = m->attempt_id, .part = 1, .nparts = 1,
      .route = "r1", .provider_id = "p1", .at = store_now_ms(),
  };
  int want = e->ndone + 1;
  store_sms_submitted(e->store, &u, tmp_store_done, e);
  wait_done(e, want);
  struct store_receipt r = {.route = "r1", .ids = {"p1", NULL}, .state = "delivered",
                            .at = store_now_ms()};
  store_receipt_apply(e->store, &r, tmp_store_done, e);
  wait_done(e, want + 1);
  ASSERT_EQ(r.matched, 1);
}

KK_TEST(store_campaign_listing) {
  struct tmp_store e;
  env_open(&e);
  int want = e.ndone + 1;
  store_price_put(e.store, 0, "sms", 23500, tmp_store_done, &e);   /* 2.35 a segment */
  wait_done(&e, want);
  struct store_msg_new m1, m2, m3, m4, m5;
  put_msg(&e, 1, "msg_c1_a", "spring.sale-1", 1, &m1);
  put_msg(&e, 1, "msg_c1_b", "spring.sale-1", 2, &m2);
  put_msg(&e, 1, "msg_c2", "other", 1, &m3);
  put_msg(&e, 1, "msg_none", NULL, 1, &m4);
  put_msg(&e, 2, "msg_acc2", "spring.sale-1", 1, &m5);
  deliver_sms(&e, &m1);

  /* Listing one campaign, newest first, a page at a time. */
  struct store_msg_view rows[4];
  struct store_msg_filter f = {.campaign = "spring.sale-1", .limit = 1};
  int n = 0;
  int64_t next = 0;
  ASSERT_EQ(store_msg_list(e.store, 1, &f, rows, &n, &next), 0);
  ASSERT_EQ(n, 1);
  ASSERT_STR_EQ(rows[0].public_id, "msg_c1_b");
  ASSERT_STR_EQ(rows[0].campaign, "spring.sale-1");
  ASSERT(next != 0);
  f.before_id = next;
  ASSERT_EQ(store_msg_list(e.store, 1, &f, rows, &n, &next), 0);
  ASSERT_EQ(n, 1);
  ASSERT_STR_EQ(rows[0].public_id, "msg_c1_a");
  ASSERT_STR_EQ(rows[0].status, "delivered");
  ASSERT_EQ(next, 0);
  struct store_msg_filter all = {.limit = 4};
  ASSERT_EQ(store_msg_list(e.store, 1, &all, rows, &n, &next), 0);
  ASSERT_EQ(n, 4);
  ASSERT_STR_EQ(rows[0].public_id, "msg_none");
  ASSERT_STR_EQ(rows[0].campaign, "");
  ASSERT_STR_EQ(rows[1].campaign, "other");

  struct store_msg_view v;
  ASSERT_EQ(tmp_store_msg_get(&e, 1, "msg_c2", &v), 0);
  ASSERT_STR_EQ(v.campaign, "other");
  env_close(&e);
}

/* The SQLite backend carries out every write of the API and answers every
   read (a missing one would abort at the first call). */
KK_TEST(store_sqlite_backend_has_every_write_and_read) {
  const struct store_backend *be = &store_sqlite_backend;
  for (int k = 0; k < STORE_OP_COUNT; k++) ASSERT(be->exec[k] != NULL);
  /* struct store_reads holds only function pointers, of one size here. */
  void (*const *read)(void) = (void (*const *)(void))(const void *)&be->read;
  for (size_t i = 0; i < sizeof be->read / sizeof *read; i++) ASSERT(read[i] != NULL);
  /* What the store holds in memory is read through these, once at open. */
  ASSERT(be->read.accounts_each != NULL);
  ASSERT(be->read.cascades_all != NULL);
  /* Channels and cascades: their writes by kind, the reads the claims
     examine, and the claim itself. */
  static const enum store_op_kind cascade_kinds[] = {
#define XX(kind) STORE_OP_##kind,
      STORE_OP_LIST_CASCADE(XX)
#undef XX
  };
  ASSERT_EQ((int)(sizeof cascade_kinds / sizeof *cascade_kinds), 6);
  for (size_t i = 0; i < sizeof cascade_kinds / sizeof *cascade_kinds; i++)
    ASSERT(be->exec[cascade_kinds[i]] != NULL);
  ASSERT(be->read.chan_due != NULL && be->read.wait_due != NULL);
  ASSERT(be->read.wait_next != NULL && be->read.wa_last_inbound != NULL);
  ASSERT(be->claim != NULL);
  /* The pool's readers and the claims of due work. */
  ASSERT(be->reader_open != NULL);
  ASSERT(be->reader_close != NULL);
  ASSERT(be->claim != NULL);
  ASSERT(be->exec[STORE_OP_MSG_INSERT] != NULL && be->exec[STORE_OP_EARLY_EXPIRE] != NULL);
  ASSERT(be->read.msg_get != NULL && be->read.reply_list != NULL && be->read.keys_rows != NULL);
  ASSERT(be->read.sms_due != NULL && be->read.outbox_accounts != NULL &&
         be->read.outbox_due != NULL);
}
