/*
 * test_store_pg_casc.c - the store's contract for channels and cascades on
 * PostgreSQL (store_contract.c, run on SQLite by test_store_contract.c):
 * VK -> Viber -> SMS moved by send results, provider statuses, the SMS
 * centre's answer and its receipt; early receipts and statuses matched
 * later; step deadlines. And a status arriving on one node for an attempt
 * the other node started; a step deadline for a message another node's
 * batch holds, handed back until that commits.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "core/kk_err.h"
#include "kk_test.h"
#include "store/store.h"
#include "store_contract.h"

KK_TEST(store_pg_casc_vk_viber_sms) {
  struct sc_pg p;
  sc_pg_open(&p, 1);
  sc_cascade_vk_viber_sms(&p.e[0]);
  sc_pg_close(&p);
}

KK_TEST(store_pg_casc_early_receipt_and_status) {
  struct sc_pg p;
  sc_pg_open(&p, 1);
  sc_early_receipt_and_status(&p.e[0]);
  sc_pg_close(&p);
}

KK_TEST(store_pg_casc_sms_runs) {
  struct sc_pg p;
  sc_pg_open(&p, 1);
  sc_sms_runs(&p.e[0]);
  sc_pg_close(&p);
}

KK_TEST(store_pg_casc_cascade_runs) {
  struct sc_pg p;
  sc_pg_open(&p, 1);
  sc_cascade_runs(&p.e[0]);
  sc_pg_close(&p);
}

KK_TEST(store_pg_casc_step_timeout) {
  struct sc_pg p;
  sc_pg_open(&p, 1);
  sc_step_timeout(&p.e[0]);
  sc_pg_close(&p);
}

KK_TEST(store_pg_casc_held_message_handed_back) {
  struct sc_pg p;
  sc_pg_open(&p, 1);
  sc_pg_held_message(&p);
  sc_pg_close(&p);
}

KK_TEST(store_pg_casc_cancel_scheduled) {
  struct sc_pg p;
  sc_pg_open(&p, 1);
  sc_cancel_scheduled(&p.e[0]);
  sc_pg_close(&p);
}

/* Node 1 holds a scheduled SMS; node 0 cancels it. */
KK_TEST(store_pg_casc_sms_begin_two_nodes) {
  struct sc_pg p;
  sc_pg_open(&p, 2);
  sc_sms_begin(&p.e[1], &p.e[0]);
  sc_pg_close(&p);
}

/* Node 0 stores an SMS and its part; the receipt reaches node 1's session:
   the part is found through the database. An early receipt held by node 1
   is applied by node 0's submit_sm_resp. */
KK_TEST(store_pg_casc_receipt_on_another_node) {
  struct sc_pg p;
  sc_pg_open(&p, 2);
  int64_t now = store_now_ms() - 1000;
  struct store_msg_new m[2] = {
      {.account_id = 1, .public_id = "n1", .to = "7916", .text = "hello",
       .msg_class = "service", .encoding = "gsm7", .segments = 1, .route = "r1",
       .created_at = now, .expires_at = now + 86400000},
      {.account_id = 1, .public_id = "n2", .to = "7916", .text = "hello",
       .msg_class = "service", .encoding = "gsm7", .segments = 1, .route = "r1",
       .created_at = now, .expires_at = now + 86400000},
  };
  int w = p.st[0].ndone + 1;
  store_msg_insert(p.st[0].store, m, 2, tmp_store_done, &p.st[0]);
  ASSERT_EQ(tmp_store_wait(&p.st[0], w, 10000), 0);
  struct store_sms_update u = {.msg_id = m[0].id, .attempt_id = m[0].attempt_id, .part = 1,
                               .nparts = 1, .route = "r1", .provider_id = "P1", .at = now};
  store_sms_submitted(p.st[0].store, &u, tmp_store_done, &p.st[0]);
  ASSERT_EQ(tmp_store_wait(&p.st[0], w + 1, 10000), 0);
  struct store_receipt r = {.route = "r1", .ids = {"p1", NULL}, .state = "delivered",
                            .at = now + 10};
  store_receipt_apply(p.st[1].store, &r, tmp_store_done, &p.st[1]);
  ASSERT_EQ(tmp_store_wait(&p.st[1], p.st[1].ndone + 1, 10000), 0);
  ASSERT_EQ(r.matched, 1);
  char sql[128];
  snprintf(sql, sizeof sql, "SELECT COUNT(*) FROM messages WHERE id=%lld AND status='delivered'",
           (long long)m[0].id);
  ASSERT_EQ(p.e[0].num(&p.e[0], sql), 1);
  /* early on node 1, applied by node 0 */
  struct store_receipt r2 = {.route = "r1", .ids = {"p2", NULL}, .state = "delivered",
                             .at = now + 20};
  store_receipt_apply(p.st[1].store, &r2, tmp_store_done, &p.st[1]);
  ASSERT_EQ(tmp_store_wait(&p.st[1], p.st[1].ndone + 1, 10000), 0);
  ASSERT_EQ(r2.matched, 0);
  u.msg_id = m[1].id;
  u.attempt_id = m[1].attempt_id;
  u.provider_id = "P2";
  store_sms_submitted(p.st[0].store, &u, tmp_store_done, &p.st[0]);
  ASSERT_EQ(tmp_store_wait(&p.st[0], p.st[0].ndone + 1, 10000), 0);
  snprintf(sql, sizeof sql, "SELECT COUNT(*) FROM messages WHERE id=%lld AND status='delivered'",
           (long long)m[1].id);
  ASSERT_EQ(p.e[0].num(&p.e[0], sql), 1);
  ASSERT_EQ(p.e[0].num(&p.e[0], "SELECT COUNT(*) FROM early_receipts"), 0);
  sc_pg_close(&p);
}

/* Node 1 holds a receipt early while node 0 stores its part in a batch that
   crossed the hold (neither saw the other's row: made here by hiding the
   held row while the part is stored). Node 1 looks at what it held again a
   second later: the receipt is applied, the held row gone. */
KK_TEST(store_pg_casc_crossed_receipt_matched_later) {
  struct sc_pg p;
  sc_pg_open(&p, 2);
  int64_t now = store_now_ms() - 1000;
  struct store_msg_new m = {.account_id = 1, .public_id = "n3", .to = "7916", .text = "hello",
                            .msg_class = "service", .encoding = "gsm7", .segments = 1,
                            .route = "r1", .created_at = now, .expires_at = now + 86400000};
  store_msg_insert(p.st[0].store, &m, 1, tmp_store_done, &p.st[0]);
  ASSERT_EQ(tmp_store_wait(&p.st[0], p.st[0].ndone + 1, 10000), 0);
  struct store_receipt r = {.route = "r1", .ids = {"p3", NULL}, .state = "delivered",
                            .at = now + 10};
  store_receipt_apply(p.st[1].store, &r, tmp_store_done, &p.st[1]);
  ASSERT_EQ(tmp_store_wait(&p.st[1], p.st[1].ndone + 1, 10000), 0);
  ASSERT_EQ(r.matched, 0);
  ASSERT_EQ(p.e[0].num(&p.e[0], "UPDATE early_receipts SET route='hidden' WHERE"
                                " provider_id='p3' RETURNING 1"), 1);
  struct store_sms_update u = {.msg_id = m.id, .attempt_id = m.attempt_id, .part = 1,
                               .nparts = 1, .route = "r1", .provider_id = "P3", .at = now};
  store_sms_submitted(p.st[0].store, &u, tmp_store_done, &p.st[0]);
  ASSERT_EQ(tmp_store_wait(&p.st[0], p.st[0].ndone + 1, 10000), 0);
  ASSERT_EQ(p.e[0].num(&p.e[0], "UPDATE early_receipts SET route='r1' WHERE"
                                " provider_id='p3' RETURNING 1"), 1);
  char sql[128];
  snprintf(sql, sizeof sql, "SELECT COUNT(*) FROM messages WHERE id=%lld AND status='delivered'",
           (long long)m.id);
  int delivered = 0;
  for (int i = 0; i < 100 && !delivered; i++) {   /* node 1's idle writer looks again */
    struct timespec ts = {0, 100000000L};
    nanosleep(&ts, NULL);
    delivered = p.e[0].num(&p.e[0], sql) == 1;
  }
  ASSERT(delivered);
  ASSERT_EQ(p.e[0].num(&p.e[0], "SELECT COUNT(*) FROM early_receipts"), 0);
  sc_pg_close(&p);
}

KK_TEST(store_pg_casc_crossed_status_matched_later) {
  struct sc_pg p;
  sc_pg_open(&p, 2);
  sc_pg_crossed_status(&p);
  sc_pg_close(&p);
}
