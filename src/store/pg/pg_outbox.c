/*
 * pg_outbox.c - the customer callbacks' outbox in the PostgreSQL backend
 * (as sqlite/sq_outbox.c): a delivery try's result, a deferred row, and
 * the trim of accounts that hold too many rows.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/kk_err.h"
#include "store/pg/pg_int.h"

int pg_outbox_result(struct store *s, struct store_op *op) {
  struct store_outbox_data *d = op->data;
  struct pg_params p = {0};
  if (d->delivered) {
    pg_p_int(&p, d->id);
    return pg_cmd(&PG(s)->w, "DELETE FROM outbox WHERE id=$1::bigint", &p);
  }
  pg_p_int(&p, d->due_at);
  pg_p_text(&p, d->error);
  pg_p_int(&p, d->id);
  return pg_cmd(&PG(s)->w,
                "UPDATE outbox SET tries=tries+1, due_at=$1::bigint, last_error=$2"
                " WHERE id=$3::bigint",
                &p);
}

int pg_outbox_defer(struct store *s, struct store_op *op) {
  struct store_outbox_data *d = op->data;
  struct pg_params p = {0};
  pg_p_int(&p, d->due_at);
  pg_p_int(&p, d->id);
  return pg_cmd(&PG(s)->w,
                "UPDATE outbox SET due_at=$1::bigint WHERE id=$2::bigint",
                &p);
}

/* Drops the oldest rows of one account beyond t->keep, at most the rest of
   t->max_delete; records what it dropped in t. */
static int trim_account(struct store *s, struct store_outbox_trim *t, int64_t account_id) {
  struct pg_params p = {0};
  pg_p_int(&p, account_id);
  pg_p_int(&p, t->keep + (t->max_delete - t->dropped));   /* counted at most so far */
  int rc;
  PGresult *r = pg_query(&PG(s)->w,
                         "SELECT COUNT(*) FROM (SELECT 1 FROM outbox WHERE account_id=$1::bigint"
                         " LIMIT $2::bigint) t",
                         &p, &rc);
  if (r == NULL) return KK_ESTORE;
  int64_t excess = pg_int(r, 0, 0) - t->keep;
  PQclear(r);
  if (excess <= 0) return 0;
  if (excess > t->max_delete - t->dropped) excess = t->max_delete - t->dropped;
  struct pg_params q = {0};
  pg_p_int(&q, account_id);
  pg_p_int(&q, excess);
  r = pg_query(&PG(s)->w,
               "DELETE FROM outbox WHERE id IN (SELECT id FROM outbox"
               " WHERE account_id=$1::bigint ORDER BY id LIMIT $2::bigint FOR UPDATE)",
               &q, &rc);
  if (r == NULL) return rc;
  int64_t gone = strtoll(PQcmdTuples(r), NULL, 10);
  PQclear(r);
  t->dropped += gone;
  if (t->naccounts < STORE_TRIM_ACCOUNTS) {
    t->account_id[t->naccounts] = account_id;
    t->account_dropped[t->naccounts++] = gone;
  }
  return 0;
}

int pg_outbox_trim(struct store *s, struct store_op *op) {
  struct store_outbox_trim *t = op->data;
  int64_t after = 0;
  t->dropped = 0;
  t->naccounts = 0;
  while (t->dropped < t->max_delete) {
    struct pg_params p = {0};
    pg_p_int(&p, after);
    int rc;
    /* one index seek per account (outbox_account) */
    PGresult *r = pg_query(&PG(s)->w,
                           "SELECT account_id FROM outbox WHERE account_id>$1::bigint"
                           " ORDER BY account_id LIMIT 1",
                           &p, &rc);
    if (r == NULL) return KK_ESTORE;
    int found = PQntuples(r) > 0;
    if (found) after = pg_int(r, 0, 0);
    PQclear(r);
    if (!found) return 0;
    if ((rc = trim_account(s, t, after)) != 0) return rc;
  }
  return 0;
}
