/*
 * store_money.c - the backend-neutral part of balances (store_money.h):
 * queuing the writes, the reads in the pool, and what a new message holds.
 */
#include "store/store_money.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/kk_log.h"
#include "core/kk_mem.h"
#include "store/store_casc.h"
#include "store/store_int.h"

#define LOGCTX "store"

void store_money_set(struct store *s, const struct store_money_set *m, store_done_cb done,
                     void *arg) {
  struct store_money_set *d = kk_xmalloc(sizeof *d);   /* freed after done */
  *d = *m;
  store_submit(s, store_atomic(store_op_of(s, STORE_OP_MONEY_SET, done, arg, d, 0)));
}

void store_money_topup(struct store *s, struct store_money_topup *t, store_done_cb done,
                       void *arg) {
  store_submit(s, store_keep(store_atomic(store_op_of(s, STORE_OP_MONEY_TOPUP, done, arg, t, 1))));
}

/* ---- reads in the pool ------------------------------------------------------- */

struct money_job {
  int what;
  int64_t account_id, arg;
  int limit;
  void *out;
  int *n;
};
enum { J_GET, J_TX, J_REACH };

static int pool_money(struct store *s, void *rd, void *job) {
  struct money_job *j = job;
  const struct store_money_reads *r = &s->be->read.money;
  switch (j->what) {
  case J_GET: return r->get(s, rd, j->account_id, j->out);
  case J_TX: return r->tx_list(s, rd, j->account_id, j->arg, j->limit, j->out, j->n);
  default: return r->reach(s, rd, j->account_id, j->arg, j->out, j->n);
  }
}

static void run_job(struct store *s, int what, int64_t account_id, int64_t arg, int limit,
                    void *out, int *n, store_done_cb done, void *done_arg) {
  struct money_job *j = kk_xcalloc(1, sizeof *j);   /* freed by the pool after done */
  j->what = what;
  j->account_id = account_id;
  j->arg = arg;
  j->limit = limit;
  j->out = out;
  j->n = n;
  store_pool_run(s, pool_money, j, done, done_arg);
}

void store_money_get_async(struct store *s, int64_t account_id, struct store_money *out,
                           store_done_cb done, void *arg) {
  run_job(s, J_GET, account_id, 0, 0, out, NULL, done, arg);
}

void store_money_tx_list_async(struct store *s, int64_t account_id, int64_t before_id,
                               int limit, struct store_money_tx *out, int *n,
                               store_done_cb done, void *arg) {
  if (limit <= 0 || limit > STORE_MONEY_PAGE_MAX) limit = STORE_MONEY_PAGE_MAX;
  run_job(s, J_TX, account_id, before_id, limit, out, n, done, arg);
}

void store_money_reach_async(struct store *s, int64_t account_id, int64_t since,
                             struct store_money_reach *out, int *n, store_done_cb done,
                             void *arg) {
  run_job(s, J_REACH, account_id, since, STORE_MONEY_REACH_MAX, out, n, done, arg);
}

/* ---- holds ------------------------------------------------------------------- */

int64_t store_money_hold_of(struct store *s, const struct store_msg_new *m,
                            int64_t (*price)(struct store *s, int64_t account_id,
                                             const char *channel)) {
  struct store_step steps[STORE_MAX_STEPS];
  int n = store_steps_parse(m->cascade, steps);
  int64_t hold = 0;
  for (int i = 0; i < n; i++) {
    int sms = strcmp(steps[i].channel, "sms") == 0;
    if (sms && (!m->to || !m->to[0])) continue;
    if (sms)
      hold += store_money_sms_most(s, m, price) * (m->segments > 0 ? m->segments : 1);
    else
      hold += price(s, m->account_id, steps[i].channel);
  }
  return hold;
}

int64_t store_money_sms_unit(struct store *s, const struct store_msg_new *m,
                             int64_t (*price)(struct store *s, int64_t account_id,
                                              const char *channel)) {
  return m->sms_priced ? m->sms_price : price(s, m->account_id, "sms");
}

int64_t store_money_sms_most(struct store *s, const struct store_msg_new *m,
                             int64_t (*price)(struct store *s, int64_t account_id,
                                              const char *channel)) {
  if (!m->sms_quoted) return store_money_sms_unit(s, m, price);
  int64_t most = m->sms_most;
  if (m->sms_table || most < 0) {
    int64_t t = price(s, m->account_id, "sms");
    if (t > most) most = t;
  }
  return most;
}

void store_money_route_price(struct casc_att *a, const struct store_sms_update *u) {
  a->priced = u->priced && u->price >= 0;
  a->price = a->priced ? u->price * STORE_MONEY_PER_HUNDREDTH : 0;
}

int64_t store_money_take(struct casc_run *r, int64_t cost, int64_t held) {
  if (cost <= held) return cost;
  /* The hold is the most the message can cost; a dearer charge (prices
     raised since it was accepted) would overdraw the balance. */
  r->stats->charges_capped++;
  kk_warnx(LOGCTX, "message %s: a charge of %lld above what is left of its hold (%lld),"
           " charged %lld", r->m->public_id, (long long)cost, (long long)held, (long long)held);
  return held;
}
