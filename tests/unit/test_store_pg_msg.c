/*
 * test_store_pg_msg.c - the store's contract for messages, SMS, inbound
 * messages and callbacks on PostgreSQL (store_contract.c, run on SQLite by
 * test_store_contract.c), and what several nodes on one database rely on:
 * an idempotency key gives one message whichever node stores it first.
 */
#include <stdio.h>
#include <string.h>

#include "core/kk_err.h"
#include "kk_test.h"
#include "store/store.h"
#include "store_contract.h"

KK_TEST(store_pg_msg_batch_insert_and_its_notes) {
  struct sc_pg p;
  sc_pg_open(&p, 1);
  sc_batch_insert_and_notes(&p.e[0], 200);
  sc_pg_close(&p);
}

KK_TEST(store_pg_msg_batch_text_and_keys) {
  struct sc_pg p;
  sc_pg_open(&p, 1);
  sc_batch_text_and_keys(&p.e[0]);
  sc_pg_close(&p);
}

KK_TEST(store_pg_msg_inbound_messages) {
  struct sc_pg p;
  sc_pg_open(&p, 1);
  sc_inbound(&p.e[0]);
  sc_pg_close(&p);
}

KK_TEST(store_pg_msg_outbox) {
  struct sc_pg p;
  sc_pg_open(&p, 1);
  sc_outbox(&p.e[0]);
  sc_pg_close(&p);
}

KK_TEST(store_pg_msg_rollback_and_idempotency) {
  struct sc_pg p;
  sc_pg_open(&p, 1);
  sc_rollback_and_idempotency(&p.e[0]);
  sc_pg_close(&p);
}

/* Two nodes store the same key at once (queued on both before either
   commits): one message, the other answers it as a duplicate. */
KK_TEST(store_pg_msg_idempotency_key_unique_across_nodes) {
  struct sc_pg p;
  sc_pg_open(&p, 2);
  int64_t now = store_now_ms();
  for (int round = 0; round < 5; round++) {
    char key[16], pa[16], pb[16];
    snprintf(key, sizeof key, "key-%d", round);
    snprintf(pa, sizeof pa, "a%d", round);
    snprintf(pb, sizeof pb, "b%d", round);
    struct store_msg_new m[2] = {
        {.account_id = 1, .public_id = pa, .idem_key = key, .req_hash = "h", .to = "7916",
         .text = "hello", .msg_class = "service", .encoding = "gsm7", .segments = 1,
         .route = "r1", .created_at = now, .expires_at = now + 86400000},
        {.account_id = 1, .public_id = pb, .idem_key = key, .req_hash = "h", .to = "7916",
         .text = "hello", .msg_class = "service", .encoding = "gsm7", .segments = 1,
         .route = "r1", .created_at = now, .expires_at = now + 86400000},
    };
    int w0 = p.st[0].ndone + 1, w1 = p.st[1].ndone + 1;
    store_msg_insert(p.st[round % 2].store, &m[round % 2], 1, tmp_store_done, &p.st[round % 2]);
    store_msg_insert(p.st[1 - round % 2].store, &m[1 - round % 2], 1, tmp_store_done,
                     &p.st[1 - round % 2]);
    ASSERT_EQ(tmp_store_wait(&p.st[0], w0, 10000), 0);
    ASSERT_EQ(tmp_store_wait(&p.st[1], w1, 10000), 0);
    ASSERT_EQ(m[0].rc, 0);
    ASSERT_EQ(m[1].rc, 0);
    ASSERT_EQ(m[0].duplicate + m[1].duplicate, 1);
    ASSERT_EQ(m[0].id, m[1].id);
    const struct store_msg_new *dup = m[0].duplicate ? &m[0] : &m[1];
    ASSERT_STR_EQ(dup->dup_public_id, dup == &m[0] ? pb : pa);
    ASSERT_EQ(dup->attempt_id, 0);
    char sql[160];
    snprintf(sql, sizeof sql, "SELECT COUNT(*) FROM messages WHERE idem_key='%s'", key);
    ASSERT_EQ(p.e[0].num(&p.e[0], sql), 1);
  }
  /* nothing of the duplicates' starts is left: one attempt per message */
  ASSERT_EQ(p.e[0].num(&p.e[0], "SELECT COUNT(*) FROM attempts"), 5);
  ASSERT_EQ(p.e[0].num(&p.e[0], "SELECT COUNT(*) FROM messages"), 5);
  sc_pg_close(&p);
}
