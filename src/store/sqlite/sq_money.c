/*
 * sq_money.c - balances in the SQLite backend (store_money.h). The one
 * writer serialises the holds; the conditional UPDATE keeps them honest
 * all the same.
 */
#include <stdio.h>
#include <string.h>

#include "core/kk_err.h"
#include "store/sqlite/sq_int.h"

/* ---- writes ------------------------------------------------------------------ */

int sq_money_set(struct store *s, struct store_op *op) {
  const struct store_money_set *m = op->data;
  struct conn *w = &SQ(s)->w;
  sqlite3_stmt *st = sq_stmt(w, ST_MON_SET);
  sqlite3_bind_int64(st, 1, m->account_id);
  sqlite3_bind_int64(st, 2, m->prepaid);
  sqlite3_bind_int64(st, 3, m->credit_limit);
  return sq_step_done(w, st);
}

/* Moves the balance by amount and reserved by dres; *balance (NULL: not
   wanted): the balance after (0 when the account has no row). */
static int shift(struct conn *w, int64_t account_id, int64_t amount, int64_t dres,
                 int64_t *balance) {
  sqlite3_stmt *st = sq_stmt(w, ST_MON_MOVE);
  sqlite3_bind_int64(st, 1, account_id);
  sqlite3_bind_int64(st, 2, amount);
  sqlite3_bind_int64(st, 3, dres);
  return sq_step_int64(w, st, balance);
}

/* Moves the balance by amount (reserved by dres) and logs the row. */
static int move(struct conn *w, int64_t account_id, const char *kind, int64_t amount,
                int64_t dres, int64_t at, const char *message, int64_t attempt_id,
                const char *channel, const char *ref, int64_t *balance, int64_t *tx_id) {
  int64_t b;
  int rc = shift(w, account_id, amount, dres, &b);
  if (rc) return rc;
  sqlite3_stmt *st = sq_stmt(w, ST_MTX_INSERT);
  sqlite3_bind_int64(st, 1, account_id);
  sq_bind_text(st, 2, kind);
  sqlite3_bind_int64(st, 3, amount);
  sqlite3_bind_int64(st, 4, b);
  sqlite3_bind_int64(st, 5, at);
  sq_bind_text(st, 6, message);
  sq_bind_opt(st, 7, attempt_id);
  sq_bind_text(st, 8, channel);
  sq_bind_text(st, 9, ref);
  rc = sq_step_done(w, st);
  if (rc == 0 && balance) *balance = b;
  if (rc == 0 && tx_id) *tx_id = sqlite3_last_insert_rowid(w->db);
  return rc;
}

int sq_money_topup(struct store *s, struct store_op *op) {
  struct store_money_topup *t = op->data;
  struct conn *w = &SQ(s)->w;
  sqlite3_stmt *st = sq_stmt(w, ST_MON_ENSURE);
  sqlite3_bind_int64(st, 1, t->account_id);
  int rc = sq_step_done(w, st);
  if (rc) return rc;
  return move(w, t->account_id, "topup", t->amount, 0, t->at, NULL, 0, NULL,
              t->ref[0] ? t->ref : NULL, &t->balance, &t->tx_id);
}

int sq_money_hold(struct store *s, struct store_msg_new *m) {
  struct conn *w = &SQ(s)->w;
  m->no_balance = 0;
  sqlite3_stmt *st = sq_stmt(w, ST_MON_GET);
  sqlite3_bind_int64(st, 1, m->account_id);
  int prepaid = sqlite3_step(st) == SQLITE_ROW && sqlite3_column_int(st, 0) == 1;
  sqlite3_reset(st);
  if (!prepaid) return 0;
  int64_t hold = store_money_hold_of(s, m, casc_price);
  st = sq_stmt(w, ST_MON_RESERVE);
  sqlite3_bind_int64(st, 1, m->account_id);
  sqlite3_bind_int64(st, 2, hold);
  int rc = sq_step_done(w, st);
  if (rc) return rc;
  if (sqlite3_changes(w->db) == 0) {
    m->no_balance = 1;
    return 0;
  }
  if (hold == 0) return 0;
  st = sq_stmt(w, ST_HOLD_INSERT);
  sqlite3_bind_int64(st, 1, m->id);
  sqlite3_bind_int64(st, 2, m->account_id);
  sqlite3_bind_int64(st, 3, hold);
  return sq_step_done(w, st);
}

/* The message's hold: 1 with its account and amount, 0 when none. */
static int hold_get(struct conn *w, int64_t msg_id, int64_t *account_id, int64_t *amount) {
  sqlite3_stmt *st = sq_stmt(w, ST_HOLD_GET);
  sqlite3_bind_int64(st, 1, msg_id);
  int found = sqlite3_step(st) == SQLITE_ROW;
  if (found) {
    *account_id = sqlite3_column_int64(st, 0);
    *amount = sqlite3_column_int64(st, 1);
  }
  sqlite3_reset(st);
  return found;
}

int sq_money_charge(struct casc_run *r, const struct cfsm_fx *f) {
  struct conn *w = &SQ(r->s)->w;
  int64_t account_id, held;
  if (!hold_get(w, r->m->id, &account_id, &held)) return 0;
  int64_t take = store_money_take(r, f->cost, held);
  if (take <= 0) return 0;
  /* a hold taken whole is gone: the message's release has nothing left */
  sqlite3_stmt *st = sq_stmt(w, take == held ? ST_HOLD_DEL : ST_HOLD_SET);
  if (take == held) {
    sqlite3_bind_int64(st, 1, r->m->id);
  } else {
    sqlite3_bind_int64(st, 1, held - take);
    sqlite3_bind_int64(st, 2, r->m->id);
  }
  int rc = sq_step_done(w, st);
  if (rc) return rc;
  return move(w, account_id, "charge", -take, -take, f->t0, r->m->public_id,
              casc_att_id(r, f->attempt_id), kk_chan_name(f->chan), NULL, NULL, NULL);
}

int sq_money_refund(struct casc_run *r, const struct cfsm_fx *f) {
  struct conn *w = &SQ(r->s)->w;
  int64_t attempt_id = casc_att_id(r, f->attempt_id);
  sqlite3_stmt *st = sq_stmt(w, ST_MTX_OF_ATTEMPT);
  sqlite3_bind_int64(st, 1, attempt_id);
  int64_t account_id = 0, charged = 0;
  int refunded = 0, rc;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    if (strcmp((const char *)sqlite3_column_text(st, 2), "refund") == 0) {
      refunded = 1;
      continue;
    }
    account_id = sqlite3_column_int64(st, 0);
    charged -= sqlite3_column_int64(st, 1);
  }
  sqlite3_reset(st);
  if (rc != SQLITE_DONE) return KK_ESTORE;
  if (refunded || charged <= 0) return 0;   /* once; nothing charged: nothing back */
  return move(w, account_id, "refund", charged, 0, store_now_ms(), r->m->public_id, attempt_id,
              kk_chan_name(f->chan), NULL, NULL, NULL);
}

int sq_money_release(struct casc_run *r) {
  struct conn *w = &SQ(r->s)->w;
  int64_t account_id, held;
  if (!hold_get(w, r->m->id, &account_id, &held)) return 0;
  int rc = shift(w, account_id, 0, -held, NULL);
  if (rc) return rc;
  sqlite3_stmt *st = sq_stmt(w, ST_HOLD_DEL);
  sqlite3_bind_int64(st, 1, r->m->id);
  return sq_step_done(w, st);
}

/* ---- reads ------------------------------------------------------------------- */

int sq_money_get(struct store *s, void *rd, int64_t account_id, struct store_money *out) {
  (void)s;
  memset(out, 0, sizeof *out);
  sqlite3_stmt *st = sq_stmt(rd, ST_MON_GET);
  sqlite3_bind_int64(st, 1, account_id);
  int rc = sqlite3_step(st);
  if (rc == SQLITE_ROW) {
    out->prepaid = sqlite3_column_int(st, 0) == 1;
    out->balance = sqlite3_column_int64(st, 1);
    out->reserved = sqlite3_column_int64(st, 2);
    out->credit_limit = sqlite3_column_int64(st, 3);
  }
  sqlite3_reset(st);
  return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : KK_ESTORE;
}

int sq_money_tx_list(struct store *s, void *rd, int64_t account_id, int64_t before_id, int limit,
                     struct store_money_tx *out, int *n) {
  (void)s;
  *n = 0;
  sqlite3_stmt *st = sq_stmt(rd, ST_MTX_LIST);
  sqlite3_bind_int64(st, 1, account_id);
  sqlite3_bind_int64(st, 2, before_id);
  sqlite3_bind_int(st, 3, limit);
  int rc;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW && *n < limit) {
    struct store_money_tx *t = &out[(*n)++];
    memset(t, 0, sizeof *t);
    t->id = sqlite3_column_int64(st, 0);
    sq_col_copy(st, 1, t->kind, sizeof t->kind);
    t->amount = sqlite3_column_int64(st, 2);
    t->balance = sqlite3_column_int64(st, 3);
    t->at = sqlite3_column_int64(st, 4);
    sq_col_copy(st, 5, t->message, sizeof t->message);
    sq_col_copy(st, 6, t->channel, sizeof t->channel);
    sq_col_copy(st, 7, t->ref, sizeof t->ref);
  }
  sqlite3_reset(st);
  return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : KK_ESTORE;
}

int sq_money_reach(struct store *s, void *rd, int64_t account_id, int64_t since,
                   struct store_money_reach *out, int *n) {
  (void)s;
  *n = 0;
  sqlite3_stmt *st = sq_stmt(rd, ST_MON_REACH);
  sqlite3_bind_int64(st, 1, account_id);
  sqlite3_bind_int64(st, 2, since);
  sqlite3_bind_int(st, 3, STORE_MONEY_REACH_SAMPLE);
  int rc;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    if (*n == STORE_MONEY_REACH_MAX) continue;
    struct store_money_reach *x = &out[(*n)++];
    sq_col_copy(st, 0, x->channel, sizeof x->channel);
    x->attempts = sqlite3_column_int64(st, 1);
    x->reached = sqlite3_column_int64(st, 2);
  }
  sqlite3_reset(st);
  return rc == SQLITE_DONE ? 0 : KK_ESTORE;
}
