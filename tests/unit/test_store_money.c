/*
 * test_store_money.c - balances in the store (store_money.h) on both
 * backends: holds at insert, refusal when they do not fit, the charge when
 * the SMSC accepts, the release when the message is done (a permanent
 * failure gives its hold back), the credit limit, the log adding up, a
 * charge never above the hold, the reach read's cut-off, and two nodes of
 * one PostgreSQL sharing one balance.
 */
#include <stdio.h>
#include <string.h>

#include "core/kk_err.h"
#include "kk_test.h"
#include "store/store.h"
#include "store/store_money.h"
#include "store_contract.h"

#define PRICE 20000            /* 2.00 a segment */

static int want;
#define RUN(t, call)                                                           \
  do {                                                                         \
    want = (t)->ndone + 1;                                                     \
    (t)->rc = 0;                                                               \
    call;                                                                      \
    ASSERT_EQ(tmp_store_wait((t), want, 10000), 0);                            \
  } while (0)

/* A new SMS message of account 1, created now. */
static struct store_msg_new sms_of(const char *pid, int segments) {
  int64_t now = store_now_ms();
  return (struct store_msg_new){
      .account_id = 1, .public_id = pid, .to = "79161234567", .text = "hello",
      .msg_class = "service", .encoding = "gsm7", .segments = segments, .route = "r1",
      .created_at = now, .expires_at = now + 86400000,
  };
}

/* Inserts one SMS message of account 1 through t: 1 stored, 0 refused. */
static int send_one(struct tmp_store *t, const char *pid, int segments,
                    struct store_msg_new *out) {
  struct store_msg_new m = sms_of(pid, segments);
  RUN(t, store_msg_insert(t->store, &m, 1, tmp_store_done, t));
  ASSERT_EQ(m.rc, 0);
  if (out) *out = m;
  return !m.no_balance;
}

static void set(struct tmp_store *t, int prepaid, int64_t credit) {
  struct store_money_set m = {.account_id = 1, .prepaid = prepaid, .credit_limit = credit};
  RUN(t, store_money_set(t->store, &m, tmp_store_done, t));
}

static int64_t topup(struct tmp_store *t, int64_t amount) {
  struct store_money_topup u = {.account_id = 1, .amount = amount, .at = store_now_ms()};
  snprintf(u.ref, sizeof u.ref, "inv");
  RUN(t, store_money_topup(t->store, &u, tmp_store_done, t));
  return u.balance;
}

/* The log adds up to the balance, and the holds to reserved. */
static void adds_up(struct sc_env *e) {
  ASSERT_EQ(e->num(e, "SELECT COALESCE(SUM(amount),0) FROM money_tx WHERE account_id=1"),
            e->num(e, "SELECT balance FROM balances WHERE account_id=1"));
  ASSERT_EQ(e->num(e, "SELECT COALESCE(SUM(amount),0) FROM money_holds WHERE account_id=1"),
            e->num(e, "SELECT reserved FROM balances WHERE account_id=1"));
}

static void money_contract(struct sc_env *e) {
  struct tmp_store *t = e->t;
  RUN(t, store_price_put(t->store, 1, "sms", PRICE, tmp_store_done, t));
  /* postpaid: stored, nothing held */
  ASSERT_EQ(send_one(t, "p0", 3, NULL), 1);
  ASSERT_EQ(e->num(e, "SELECT COUNT(*) FROM money_holds"), 0);
  /* prepaid with 5.00: two one-segment messages fit, the third does not */
  set(t, 1, -1);
  ASSERT_EQ(topup(t, 50000), 50000);
  struct store_msg_new a, b;
  ASSERT_EQ(send_one(t, "a", 1, &a), 1);
  ASSERT_EQ(send_one(t, "b", 1, &b), 1);
  ASSERT_EQ(send_one(t, "c", 1, NULL), 0);
  ASSERT_EQ(e->num(e, "SELECT COUNT(*) FROM messages WHERE public_id='c'"), 0);
  ASSERT_EQ(e->num(e, "SELECT reserved FROM balances WHERE account_id=1"), 2 * PRICE);
  adds_up(e);
  /* a is accepted by the SMSC: charged, its hold used up; delivered: done */
  struct store_sms_update u = {.msg_id = a.id, .attempt_id = a.attempt_id, .part = 1,
                               .nparts = 1, .route = "r1", .provider_id = "pa",
                               .at = store_now_ms()};
  RUN(t, store_sms_submitted(t->store, &u, tmp_store_done, t));
  ASSERT_EQ(e->num(e, "SELECT balance FROM balances WHERE account_id=1"), 50000 - PRICE);
  ASSERT_EQ(e->num(e, "SELECT COUNT(*) FROM money_tx WHERE kind='charge'"), 1);
  struct store_receipt r = {.route = "r1", .ids = {"pa", NULL}, .state = "delivered",
                            .at = store_now_ms()};
  RUN(t, store_receipt_apply(t->store, &r, tmp_store_done, t));
  ASSERT_EQ(r.matched, 1);
  ASSERT_EQ(e->num(e, "SELECT COUNT(*) FROM messages WHERE public_id='a' AND done=1"), 1);
  /* b fails for good: not charged, its hold given back */
  struct store_sms_update f = {.msg_id = b.id, .attempt_id = b.attempt_id, .part = 1,
                               .nparts = 1, .route = "r1", .smpp_status = 0x0b,
                               .error = "ESME_RINVDSTADR", .at = store_now_ms()};
  RUN(t, store_sms_failed(t->store, &f, tmp_store_done, t));
  ASSERT_EQ(e->num(e, "SELECT reserved FROM balances WHERE account_id=1"), 0);
  ASSERT_EQ(e->num(e, "SELECT COUNT(*) FROM money_holds"), 0);
  ASSERT_EQ(e->num(e, "SELECT balance FROM balances WHERE account_id=1"), 50000 - PRICE);
  ASSERT_EQ(e->num(e, "SELECT COUNT(*) FROM money_tx WHERE kind='charge'"), 1);
  adds_up(e);
  /* 3.00 left and a credit limit of 2.00: two segments fit, one more does
     not until a top-up of 1.00 */
  set(t, -1, 20000);
  ASSERT_EQ(send_one(t, "d", 2, NULL), 1);
  ASSERT_EQ(send_one(t, "e", 1, NULL), 0);
  ASSERT_EQ(topup(t, 10000), 40000);
  ASSERT_EQ(send_one(t, "f", 1, NULL), 1);
  ASSERT_EQ(send_one(t, "g", 1, NULL), 0);
  /* postpaid again: nothing refused */
  set(t, 0, -1);
  ASSERT_EQ(send_one(t, "h", 5, NULL), 1);
  adds_up(e);
}

/* Inserts one SMS of account 1 quoted at most `most` a segment (store
   units; table: the price table's may apply too). */
static int send_quoted(struct tmp_store *t, const char *pid, int64_t most, int table,
                       struct store_msg_new *out) {
  struct store_msg_new m = sms_of(pid, 1);
  m.sms_priced = 1;
  m.sms_price = most / 2;
  m.sms_quoted = 1;
  m.sms_most = most;
  m.sms_table = table;
  RUN(t, store_msg_insert(t->store, &m, 1, tmp_store_done, t));
  ASSERT_EQ(m.rc, 0);
  if (out) *out = m;
  return !m.no_balance;
}

/* The hold is the most a message can be charged, and a charge above it
   (a price raised since) is taken at the hold: the balance never goes
   below zero. */
static void money_cap_contract(struct sc_env *e) {
  struct tmp_store *t = e->t;
  RUN(t, store_price_put(t->store, 1, "sms", PRICE, tmp_store_done, t));
  set(t, 1, -1);
  ASSERT_EQ(topup(t, 2 * PRICE), 2 * PRICE);
  /* held at the dearest route (3.00), not at the expected one (1.50) */
  struct store_msg_new a;
  ASSERT_EQ(send_quoted(t, "q1", 30000, 0, &a), 1);
  ASSERT_EQ(e->num(e, "SELECT amount FROM money_holds"), 30000);
  /* the price table's (2.00) counts when a route may have no price */
  ASSERT_EQ(send_quoted(t, "q2", 5000, 1, NULL), 0);   /* 1.00 left: 2.00 does not fit */
  ASSERT_EQ(topup(t, PRICE), 3 * PRICE);
  struct store_msg_new b;
  ASSERT_EQ(send_quoted(t, "q3", 5000, 1, &b), 1);
  ASSERT_EQ(e->num(e, "SELECT reserved FROM balances WHERE account_id=1"), 30000 + PRICE);
  adds_up(e);
  /* a is accepted on a route priced 4.00 now: charged 3.00, its hold */
  struct store_cascade_stats cs0, cs1;
  store_get_cascade_stats(t->store, &cs0);
  struct store_sms_update u = {.msg_id = a.id, .attempt_id = a.attempt_id, .part = 1,
                               .nparts = 1, .route = "r1", .provider_id = "qa",
                               .at = store_now_ms(), .priced = 1, .price = 400};
  RUN(t, store_sms_submitted(t->store, &u, tmp_store_done, t));
  ASSERT_EQ(e->num(e, "SELECT amount FROM money_tx WHERE kind='charge'"), -30000);
  ASSERT_EQ(e->num(e, "SELECT balance FROM balances WHERE account_id=1"), 3 * PRICE - 30000);
  store_get_cascade_stats(t->store, &cs1);
  ASSERT_EQ(cs1.charges_capped - cs0.charges_capped, 1);
  /* b at 1.50, under its hold: charged as priced, the rest released */
  struct store_sms_update v = {.msg_id = b.id, .attempt_id = b.attempt_id, .part = 1,
                               .nparts = 1, .route = "r1", .provider_id = "qb",
                               .at = store_now_ms(), .priced = 1, .price = 150};
  RUN(t, store_sms_submitted(t->store, &v, tmp_store_done, t));
  ASSERT_EQ(e->num(e, "SELECT balance FROM balances WHERE account_id=1"), 3 * PRICE - 45000);
  ASSERT_EQ(e->num(e, "SELECT MIN(balance) FROM money_tx WHERE account_id=1") >= 0, 1);
  store_get_cascade_stats(t->store, &cs0);
  ASSERT_EQ(cs0.charges_capped, cs1.charges_capped);
  adds_up(e);
}

KK_TEST(store_money_sqlite_charge_capped_at_hold) {
  struct sc_sq q;
  sc_sqlite_open(&q);
  money_cap_contract(&q.e);
  sc_sqlite_close(&q);
}

KK_TEST(store_pg_money_charge_capped_at_hold) {
  struct sc_pg p;
  sc_pg_open(&p, 1);
  money_cap_contract(&p.e[0]);
  sc_pg_close(&p);
}

/* Inserts one SMS of account 1 created at `at`. */
static void send_at(struct tmp_store *t, const char *pid, int64_t at) {
  struct store_msg_new m = sms_of(pid, 1);
  m.created_at = at;
  RUN(t, store_msg_insert(t->store, &m, 1, tmp_store_done, t));
  ASSERT_EQ(m.rc, 0);
}

/* SMS attempts the reach read counts for account 1 since `since`. */
static int64_t sms_reach(struct tmp_store *t, int64_t since) {
  struct store_money_reach r[STORE_MONEY_REACH_MAX];
  int n = -1;
  RUN(t, store_money_reach_async(t->store, 1, since, r, &n, tmp_store_done, t));
  ASSERT_EQ(t->rc, 0);
  for (int i = 0; i < n; i++)
    if (strcmp(r[i].channel, "sms") == 0) return r[i].attempts;
  return 0;
}

/* The measured reach looks at the account's messages since the cut-off
   only (the calculator's last 30 days): older ones do not count. */
static void reach_contract(struct sc_env *e) {
  struct tmp_store *t = e->t;
  int64_t now = store_now_ms(), day = 86400000;
  send_at(t, "old1", now - 40 * day);
  send_at(t, "old2", now - 31 * day);
  send_at(t, "new1", now - 29 * day);
  send_at(t, "new2", now);
  ASSERT_EQ(e->num(e, "SELECT COUNT(*) FROM attempts WHERE channel='sms'"), 4);
  ASSERT_EQ(sms_reach(t, now - 30 * day), 2);
  ASSERT_EQ(sms_reach(t, 0), 4);
  ASSERT_EQ(sms_reach(t, now + day), 0);
}

KK_TEST(store_money_sqlite_reach_since) {
  struct sc_sq q;
  sc_sqlite_open(&q);
  reach_contract(&q.e);
  sc_sqlite_close(&q);
}

KK_TEST(store_pg_money_reach_since) {
  struct sc_pg p;
  sc_pg_open(&p, 1);
  reach_contract(&p.e[0]);
  sc_pg_close(&p);
}

KK_TEST(store_money_sqlite) {
  struct sc_sq q;
  sc_sqlite_open(&q);
  money_contract(&q.e);
  sc_sqlite_close(&q);
}

KK_TEST(store_pg_money) {
  struct sc_pg p;
  sc_pg_open(&p, 1);
  money_contract(&p.e[0]);
  sc_pg_close(&p);
}

/* Two nodes, one balance for three messages: turn by turn, three stored. */
KK_TEST(store_pg_money_two_nodes_share_one_balance) {
  struct sc_pg p;
  sc_pg_open(&p, 2);
  struct tmp_store *t0 = p.e[0].t, *t1 = p.e[1].t;
  RUN(t0, store_price_put(t0->store, 1, "sms", PRICE, tmp_store_done, t0));
  set(t0, 1, -1);
  topup(t1, 3 * PRICE);
  int stored = 0;
  for (int i = 0; i < 8; i++) {
    char pid[16];
    snprintf(pid, sizeof pid, "n%d", i);
    stored += send_one(i % 2 ? t1 : t0, pid, 1, NULL);
  }
  ASSERT_EQ(stored, 3);
  ASSERT_EQ(p.e[0].num(&p.e[0], "SELECT reserved FROM balances WHERE account_id=1"), 3 * PRICE);
  adds_up(&p.e[0]);
  sc_pg_close(&p);
}
