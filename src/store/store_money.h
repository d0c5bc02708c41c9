/*
 * store_money.h - balances of prepaid accounts in the store: the billing
 * mode and credit limit, top-ups, the holds taken when a message is
 * accepted, the charges when a provider accepts an attempt, and the
 * transaction log that adds up to the balance.
 *
 * Amounts are in 1/10000 of the currency unit, like the store's costs
 * (a route's prices are in hundredths: STORE_MONEY_PER_HUNDREDTH each).
 *
 * An account without a row here is postpaid: nothing is held or charged.
 * A prepaid account's message is held at insert (the writer's transaction
 * that stores it): hold = what its cascade can cost at most (each step's
 * price, SMS per segment at the dearest price it can be charged: the
 * dearest route it can fail over to, to any operator an HLR answer could
 * still name, m->sms_most, and the price table's when a route may have no
 * price for it), taken only while balance - reserved + credit_limit
 * covers it (a conditional UPDATE, so several writers of one database never
 * overdraw it); else nothing is stored and the message says no_balance.
 * Each attempt the provider accepts is charged its cost (an SMS at the
 * price of the route that took it; balance goes down, a "charge" row in the
 * log, the hold shrinks by as much), never more than what is left of the
 * hold: a cost above it (a price raised since the message was accepted) is
 * charged at the hold, logged and counted (charges_capped), so a prepaid
 * balance never goes below -credit_limit; when the message is done what is left
 * of its hold is released, so the difference between the hold and the
 * charges comes back then. A step that was never accepted is never
 * charged; an attempt charged and then failed in a way its provider does
 * not bill (money_unbilled) gets its charge back once: a "refund" row. Every
 * change is in the transaction of the write that causes it: after a crash
 * the balance, the holds and the log agree.
 */
#ifndef STORE_MONEY_H
#define STORE_MONEY_H

#include <stdint.h>

#include "store/store.h"

/* Writes (store_int.h's list). */
#define STORE_OP_LIST_MONEY(XX)                                                \
  XX(MONEY_SET)         /* struct store_money_set */                           \
  XX(MONEY_TOPUP)       /* struct store_money_topup, the caller's */

#define STORE_MONEY_REF_MAX 128
#define STORE_MONEY_PER_HUNDREDTH 100   /* store units in a route price's unit */
#define STORE_MONEY_PAGE_MAX 1000

/* An account's balance (postpaid, zero, when it has no row). */
struct store_money {
  int prepaid;
  int64_t balance;          /* what the log adds up to */
  int64_t reserved;         /* held for messages not yet done */
  int64_t credit_limit;     /* how far below zero available may go */
};

/* The billing mode and/or the credit limit of an account. */
struct store_money_set {
  int64_t account_id;
  int prepaid;              /* -1: keep */
  int64_t credit_limit;     /* -1: keep */
};
/* Queues the change (copied). done: 0 or KK_ESTORE. */
void store_money_set(struct store *s, const struct store_money_set *m, store_done_cb done,
                     void *arg);

/* A top-up: amount > 0 added to the balance, a "topup" row in the log. */
struct store_money_topup {
  int64_t account_id;
  int64_t amount;
  char ref[STORE_MONEY_REF_MAX + 1];
  int64_t at;
  /* out: */
  int64_t balance;          /* after it */
  int64_t tx_id;
};
/* Queues it; t is borrowed until done (0 or KK_ESTORE). */
void store_money_topup(struct store *s, struct store_money_topup *t, store_done_cb done,
                       void *arg);

/* A row of the log. */
struct store_money_tx {
  int64_t id;
  char kind[12];            /* topup | charge | refund */
  int64_t amount;           /* signed */
  int64_t balance;          /* after it */
  int64_t at;
  char message[40];         /* the message's public id ("" for a top-up) */
  char channel[20];         /* of the charged attempt */
  char ref[STORE_MONEY_REF_MAX + 1];
};

/* Per channel over an account's recent messages: attempts started and
   those that reached the person (delivered or read). */
struct store_money_reach {
  char channel[20];
  int64_t attempts, reached;
};
#define STORE_MONEY_REACH_MAX 8
/* The newest messages a reach read looks at. */
#define STORE_MONEY_REACH_SAMPLE 100000

/* The reads, on a pool thread through rd (store_pool.c). */
struct store_money_reads {
  int (*get)(struct store *s, void *rd, int64_t account_id, struct store_money *out);
  /* newest first, ids below before_id (0: from the newest), at most limit */
  int (*tx_list)(struct store *s, void *rd, int64_t account_id, int64_t before_id, int limit,
                 struct store_money_tx *out, int *n);
  /* messages created at or after since */
  int (*reach)(struct store *s, void *rd, int64_t account_id, int64_t since,
               struct store_money_reach *out, int *n);
};

/* Loop thread; out, n are borrowed until done(arg, rc) (0 or KK_ESTORE). */
void store_money_get_async(struct store *s, int64_t account_id, struct store_money *out,
                           store_done_cb done, void *arg);
void store_money_tx_list_async(struct store *s, int64_t account_id, int64_t before_id,
                               int limit, struct store_money_tx *out, int *n,
                               store_done_cb done, void *arg);
void store_money_reach_async(struct store *s, int64_t account_id, int64_t since,
                             struct store_money_reach *out, int *n, store_done_cb done,
                             void *arg);

/* Writer thread: what a new message may cost at most over its cascade, with
   price(s, account, channel) the price of one unit (an SMS segment's is
   m->sms_price when m->sms_priced). */
int64_t store_money_hold_of(struct store *s, const struct store_msg_new *m,
                            int64_t (*price)(struct store *s, int64_t account_id,
                                             const char *channel));

/* Writer thread: the most one SMS segment of m can be charged (m->sms_most,
   the price table's as well when m->sms_table; as store_money_sms_unit when
   m was not quoted). */
int64_t store_money_sms_most(struct store *s, const struct store_msg_new *m,
                             int64_t (*price)(struct store *s, int64_t account_id,
                                              const char *channel));

/* Writer thread: the price of one SMS segment of m (m->sms_price or the
   price table's). */
int64_t store_money_sms_unit(struct store *s, const struct store_msg_new *m,
                             int64_t (*price)(struct store *s, int64_t account_id,
                                              const char *channel));

#endif
