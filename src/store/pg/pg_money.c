/*
 * pg_money.c - balances in the PostgreSQL backend (store_money.h). Several
 * nodes write one database: a hold is a conditional UPDATE of the account's
 * row (balance - reserved + credit_limit >= hold), which waits for the row
 * lock of another node's transaction and is evaluated again on its commit,
 * so no two nodes spend the same money.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/kk_err.h"
#include "core/kk_mem.h"
#include "store/pg/pg_int.h"
#include "store/store_casc.h"
#include "store/pg/pg_money.h"

/* ---- writes ------------------------------------------------------------------ */

/* An account's row is what every node's writer touches for its messages:
   a batch waits for the other nodes' transactions that hold it, longer than
   for other rows (the try's lock_ms), then the writer's bound comes back. A
   deadlock through it is found by the server's deadlock_timeout (1 s). */
#define MONEY_LOCK_MS 10000

/* Runs sql (with p) under the longer lock wait; 0, KK_EEXIST or KK_ESTORE,
   *res its result when res is not NULL (the caller clears it). */
static int on_account_row(struct pg_conn *w, const char *sql, const struct pg_params *p,
                          PGresult **res) {
  char set[64];
  snprintf(set, sizeof set, "SET LOCAL lock_timeout=%d", MONEY_LOCK_MS);
  int rc = pg_cmd(w, set, NULL);
  if (rc) return rc;
  PGresult *r = pg_query(w, sql, p, &rc);
  if (r == NULL) return rc;
  snprintf(set, sizeof set, "SET LOCAL lock_timeout=%d", w->lock_ms > 0 ? w->lock_ms : PG_LOCK_MS);
  rc = pg_cmd(w, set, NULL);
  if (rc == 0 && res)
    *res = r;
  else
    PQclear(r);
  return rc;
}

int pg_money_set(struct store *s, struct store_op *op) {
  const struct store_money_set *m = op->data;
  struct pg_params p = {0};
  pg_p_int(&p, m->account_id);
  pg_p_int(&p, m->prepaid);
  pg_p_int(&p, m->credit_limit);
  return pg_cmd(&PG(s)->w,
                "INSERT INTO balances(account_id,prepaid,credit_limit)"
                " VALUES($1::bigint,GREATEST($2::int,0),GREATEST($3::bigint,0))"
                " ON CONFLICT(account_id) DO UPDATE SET"
                " prepaid=CASE WHEN $2::int<0 THEN balances.prepaid ELSE $2::int END,"
                " credit_limit=CASE WHEN $3::bigint<0 THEN balances.credit_limit"
                " ELSE $3::bigint END",
                &p);
}

/* Moves the balance by amount (reserved by dres) and logs the row. */
static int move(struct pg_conn *w, int64_t account_id, const char *kind, int64_t amount,
                int64_t dres, int64_t at, const char *message, int64_t attempt_id,
                const char *channel, const char *ref, int64_t *balance, int64_t *tx_id) {
  struct pg_params p = {0};
  pg_p_int(&p, account_id);
  pg_p_int(&p, amount);
  pg_p_int(&p, dres);
  pg_p_text(&p, kind);
  pg_p_int(&p, at);
  pg_p_text(&p, message);
  pg_p_opt(&p, attempt_id);
  pg_p_text(&p, channel);
  pg_p_text(&p, ref);
  PGresult *r = NULL;
  int rc = on_account_row(w,
                         "WITH b AS (UPDATE balances SET balance=balance+$2::bigint,"
                         " reserved=reserved+$3::bigint WHERE account_id=$1::bigint"
                         " RETURNING balance)"
                         " INSERT INTO money_tx(account_id,kind,amount,balance,at,message,"
                         "attempt_id,channel,ref) SELECT $1::bigint,$4,$2::bigint,b.balance,"
                         "$5::bigint,$6,$7::bigint,$8,$9 FROM b RETURNING balance,id",
                         &p, &r);
  if (rc) return rc;
  rc = PQntuples(r) == 1 ? 0 : KK_ESTORE;
  if (rc == 0 && balance) *balance = pg_int(r, 0, 0);
  if (rc == 0 && tx_id) *tx_id = pg_int(r, 0, 1);
  PQclear(r);
  return rc;
}

int pg_money_topup(struct store *s, struct store_op *op) {
  struct store_money_topup *t = op->data;
  struct pg_params p = {0};
  pg_p_int(&p, t->account_id);
  int rc = pg_cmd(&PG(s)->w,
                  "INSERT INTO balances(account_id) VALUES($1::bigint)"
                  " ON CONFLICT(account_id) DO NOTHING",
                  &p);
  if (rc) return rc;
  return move(&PG(s)->w, t->account_id, "topup", t->amount, 0, t->at, NULL, 0, NULL,
              t->ref[0] ? t->ref : NULL, &t->balance, &t->tx_id);
}

/* Runs sql, its $1 the n ids as a bigint[]: the first at id, each next
   stride bytes on (a field of an array of structs). Its result (the caller
   clears it), or NULL with *rc. */
static PGresult *any_id(struct pg_conn *w, const int64_t *id, size_t stride, int n,
                        const char *sql, int *rc) {
  struct pg_rows ids = {0};
  const char *at = (const char *)id;
  for (int i = 0; i < n; i++, at += stride) {
    int64_t v;
    memcpy(&v, at, sizeof v);
    pg_rows_int(&ids, 0, v);
    pg_rows_end(&ids);
  }
  PGresult *r = pg_rows_run(w, &ids, sql, 1, rc);
  pg_rows_free(&ids);
  return r;
}

/* An account of a batch and whether it is prepaid. */
struct acct_flag {
  int64_t id;
  int prepaid;
};

static int cmp_acct(const void *a, const void *b) {
  int64_t x = ((const struct acct_flag *)a)->id, y = ((const struct acct_flag *)b)->id;
  return (x > y) - (x < y);
}

/* The flag of account id among the k sorted accounts (NULL: not there). */
static struct acct_flag *acct_find(struct acct_flag *acc, int k, int64_t id) {
  struct acct_flag key = {.id = id};
  return bsearch(&key, acc, (size_t)k, sizeof *acc, cmp_acct);
}

int pg_money_prepaid(struct store *s, const struct store_msg_new *msgs, int n,
                     signed char *prepaid) {
  if (n <= 0) return 0;
  /* the batch's accounts, each once: sorted, duplicates dropped */
  struct acct_flag *acc = kk_xcalloc((size_t)n, sizeof *acc);   /* freed below */
  for (int i = 0; i < n; i++) acc[i].id = msgs[i].account_id;
  qsort(acc, (size_t)n, sizeof *acc, cmp_acct);
  int k = 0;
  for (int i = 0; i < n; i++)
    if (k == 0 || acc[k - 1].id != acc[i].id) acc[k++] = acc[i];
  int rc;
  PGresult *r = any_id(&PG(s)->w, &acc[0].id, sizeof *acc, k,
                       "SELECT account_id FROM balances WHERE account_id=ANY($1::bigint[])"
                       " AND prepaid=1",
                       &rc);
  if (r == NULL) {
    free(acc);
    return rc;
  }
  for (int row = 0; row < PQntuples(r); row++) {
    struct acct_flag *a = acct_find(acc, k, pg_int(r, row, 0));
    if (a) a->prepaid = 1;
  }
  PQclear(r);
  for (int i = 0; i < n; i++) {
    struct acct_flag *a = acct_find(acc, k, msgs[i].account_id);
    prepaid[i] = a && a->prepaid;
  }
  free(acc);
  return 0;
}

int pg_money_hold(struct store *s, struct store_msg_new *m, int prepaid) {
  struct pg_conn *w = &PG(s)->w;
  m->no_balance = 0;
  struct pg_params p = {0};
  pg_p_int(&p, m->account_id);
  int rc;
  PGresult *r;
  if (prepaid < 0) {
    r = pg_query(w, "SELECT prepaid FROM balances WHERE account_id=$1::bigint", &p, &rc);
    if (r == NULL) return rc;
    prepaid = PQntuples(r) == 1 && pg_int(r, 0, 0) == 1;
    PQclear(r);
  }
  if (!prepaid) return 0;
  int64_t hold = store_money_hold_of(s, m, pgc_price);
  pg_p_int(&p, hold);
  r = NULL;
  rc = on_account_row(w,
                      "UPDATE balances SET reserved=reserved+$2::bigint WHERE account_id=$1::bigint"
                      " AND prepaid=1 AND balance-reserved+credit_limit>=$2::bigint RETURNING 1",
                      &p, &r);
  if (rc) return rc;
  int held = PQntuples(r) == 1;
  PQclear(r);
  if (!held) {
    m->no_balance = 1;
    return 0;
  }
  if (hold == 0) return 0;
  struct pg_params h = {0};
  pg_p_int(&h, m->id);
  pg_p_int(&h, m->account_id);
  pg_p_int(&h, hold);
  return pg_cmd(w,
                "INSERT INTO money_holds(message_id,account_id,amount)"
                " VALUES($1::bigint,$2::bigint,$3::bigint)",
                &h);
}

int pg_money_holds_read(struct store *s, struct casc_msg *m, int n) {
  if (n <= 0) return 0;
  for (int i = 0; i < n; i++) {
    m[i].hold_read = 1;
    m[i].hold = -1;
  }
  int rc;
  PGresult *r = any_id(&PG(s)->w, &m[0].id, sizeof *m, n,
                       "SELECT message_id,amount FROM money_holds"
                       " WHERE message_id=ANY($1::bigint[])",
                       &rc);
  if (r == NULL) {
    for (int i = 0; i < n; i++) m[i].hold_read = 0;
    return rc;
  }
  for (int row = 0; row < PQntuples(r); row++) {
    int64_t id = pg_int(r, row, 0);
    for (int i = 0; i < n; i++)
      if (m[i].id == id) m[i].hold = pg_int(r, row, 1);
  }
  PQclear(r);
  return 0;
}

/* The message's hold: 1 with its account and amount, 0 when none, or an
   error (< 0). */
static int hold_get(struct pg_conn *w, int64_t msg_id, int64_t *account_id, int64_t *amount) {
  struct pg_params p = {0};
  pg_p_int(&p, msg_id);
  int rc;
  PGresult *r = pg_query(w, "SELECT account_id,amount FROM money_holds WHERE message_id=$1::bigint",
                         &p, &rc);
  if (r == NULL) return rc;
  int found = PQntuples(r) == 1;
  if (found) {
    *account_id = pg_int(r, 0, 0);
    *amount = pg_int(r, 0, 1);
  }
  PQclear(r);
  return found;
}

/* The hold of run r's message, as read with its row (pg_money_holds_read)
   or read now: as hold_get. */
static int run_hold(struct casc_run *r, int64_t *account_id, int64_t *amount) {
  const struct casc_msg *m = r->m;
  if (!m->hold_read) return hold_get(&PG(r->s)->w, m->id, account_id, amount);
  if (m->hold < 0) return 0;
  *account_id = m->account_id;   /* a hold is its message's account's */
  *amount = m->hold;
  return 1;
}

int pg_money_charge(struct casc_run *r, const struct cfsm_fx *f) {
  struct pg_conn *w = &PG(r->s)->w;
  int64_t account_id, held;
  int found = run_hold(r, &account_id, &held);
  if (found <= 0) return found;
  int64_t take = store_money_take(r, f->cost, held);
  if (take <= 0) return 0;
  struct pg_params p = {0};
  pg_p_int(&p, held - take);
  pg_p_int(&p, r->m->id);
  int rc = pg_cmd(w, "UPDATE money_holds SET amount=$1::bigint WHERE message_id=$2::bigint", &p);
  if (rc) return rc;
  if (r->m->hold_read) r->m->hold = held - take;
  return move(w, account_id, "charge", -take, -take, f->t0, r->m->public_id,
              casc_att_id(r, f->attempt_id), kk_chan_name(f->chan), NULL, NULL, NULL);
}

/* Gives back hold held of message id to account_id. */
static int unhold(struct pg_conn *w, int64_t id, int64_t account_id, int64_t held) {
  struct pg_params p = {0};
  pg_p_int(&p, id);
  int rc = pg_cmd(w, "DELETE FROM money_holds WHERE message_id=$1::bigint", &p);
  if (rc) return rc;
  struct pg_params b = {0};
  pg_p_int(&b, account_id);
  pg_p_int(&b, held);
  return on_account_row(w,
                        "UPDATE balances SET reserved=reserved-$2::bigint"
                        " WHERE account_id=$1::bigint",
                        &b, NULL);
}

int pg_money_unhold(struct store *s, int64_t id) {
  struct pg_conn *w = &PG(s)->w;
  int64_t account_id, held;
  int found = hold_get(w, id, &account_id, &held);
  if (found <= 0) return found;
  return unhold(w, id, account_id, held);
}

int pg_money_refund(struct casc_run *r, const struct cfsm_fx *f) {
  struct pg_conn *w = &PG(r->s)->w;
  int64_t attempt_id = casc_att_id(r, f->attempt_id);
  struct pg_params p = {0};
  pg_p_int(&p, attempt_id);
  int rc;
  PGresult *res = pg_query(w,
                           "SELECT account_id,amount,kind FROM money_tx WHERE attempt_id=$1::bigint"
                           " AND kind IN ('charge','refund')",
                           &p, &rc);
  if (res == NULL) return rc;
  int64_t account_id = 0, charged = 0;
  int refunded = 0;
  for (int i = 0; i < PQntuples(res); i++) {
    if (strcmp(PQgetvalue(res, i, 2), "refund") == 0) {
      refunded = 1;
      continue;
    }
    account_id = pg_int(res, i, 0);
    charged -= pg_int(res, i, 1);
  }
  PQclear(res);
  if (refunded || charged <= 0) return 0;   /* once; nothing charged: nothing back */
  return move(w, account_id, "refund", charged, 0, store_now_ms(), r->m->public_id, attempt_id,
              kk_chan_name(f->chan), NULL, NULL, NULL);
}

int pg_money_release(struct casc_run *r) {
  int64_t account_id, held;
  int found = run_hold(r, &account_id, &held);
  if (found <= 0) return found;
  int rc = unhold(&PG(r->s)->w, r->m->id, account_id, held);
  if (rc == 0 && r->m->hold_read) r->m->hold = -1;
  return rc;
}

/* ---- reads ------------------------------------------------------------------- */

int pg_money_get(struct store *s, void *rd, int64_t account_id, struct store_money *out) {
  (void)s;
  memset(out, 0, sizeof *out);
  struct pg_params p = {0};
  pg_p_int(&p, account_id);
  int rc;
  PGresult *r = pg_read(rd,
                        "SELECT prepaid,balance,reserved,credit_limit FROM balances"
                        " WHERE account_id=$1::bigint",
                        &p, &rc);
  if (r == NULL) return KK_ESTORE;
  if (PQntuples(r) == 1) {
    out->prepaid = pg_int(r, 0, 0) == 1;
    out->balance = pg_int(r, 0, 1);
    out->reserved = pg_int(r, 0, 2);
    out->credit_limit = pg_int(r, 0, 3);
  }
  PQclear(r);
  return 0;
}

int pg_money_tx_list(struct store *s, void *rd, int64_t account_id, int64_t before_id, int limit,
                     struct store_money_tx *out, int *n) {
  (void)s;
  *n = 0;
  struct pg_params p = {0};
  pg_p_int(&p, account_id);
  pg_p_int(&p, before_id);
  pg_p_int(&p, limit);
  int rc;
  PGresult *r = pg_read(rd,
                        "SELECT id,kind,amount,balance,at,message,channel,ref FROM money_tx"
                        " WHERE account_id=$1::bigint AND ($2::bigint=0 OR id<$2::bigint)"
                        " ORDER BY id DESC LIMIT $3::int",
                        &p, &rc);
  if (r == NULL) return KK_ESTORE;
  for (int i = 0; i < PQntuples(r) && i < limit; i++) {
    struct store_money_tx *t = &out[(*n)++];
    memset(t, 0, sizeof *t);
    t->id = pg_int(r, i, 0);
    pg_copy(r, i, 1, t->kind, sizeof t->kind);
    t->amount = pg_int(r, i, 2);
    t->balance = pg_int(r, i, 3);
    t->at = pg_int(r, i, 4);
    pg_copy(r, i, 5, t->message, sizeof t->message);
    pg_copy(r, i, 6, t->channel, sizeof t->channel);
    pg_copy(r, i, 7, t->ref, sizeof t->ref);
  }
  PQclear(r);
  return 0;
}

int pg_money_reach(struct store *s, void *rd, int64_t account_id, int64_t since,
                   struct store_money_reach *out, int *n) {
  (void)s;
  *n = 0;
  struct pg_params p = {0};
  pg_p_int(&p, account_id);
  pg_p_int(&p, since);
  pg_p_int(&p, STORE_MONEY_REACH_SAMPLE);
  int rc;
  PGresult *r = pg_read(rd,
                        "SELECT channel,COUNT(*),"
                        "SUM((delivered_at IS NOT NULL OR read_at IS NOT NULL)::int)"
                        " FROM attempts WHERE message_id IN (SELECT id FROM messages"
                        " WHERE account_id=$1::bigint AND created_at>=$2::bigint"
                        " ORDER BY id DESC LIMIT $3::int) AND status<>'skipped'"
                        " GROUP BY channel ORDER BY channel",
                        &p, &rc);
  if (r == NULL) return KK_ESTORE;
  for (int i = 0; i < PQntuples(r) && *n < STORE_MONEY_REACH_MAX; i++) {
    struct store_money_reach *x = &out[(*n)++];
    pg_copy(r, i, 0, x->channel, sizeof x->channel);
    x->attempts = pg_int(r, i, 1);
    x->reached = pg_int(r, i, 2);
  }
  PQclear(r);
  return 0;
}
