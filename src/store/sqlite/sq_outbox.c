/*
 * sq_outbox.c - the customer callbacks' outbox in the SQLite backend.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/kk_err.h"
#include "core/kk_mem.h"
#include "store/sqlite/sq_int.h"

/* ---- outbox ------------------------------------------------------------ */

/* Reads the outbox rows (OUTBOX_COLS) of a bound statement into out, at
   most max, and resets it. */
static int outbox_rows(sqlite3_stmt *st, struct store_outbox *out, int max, int *n) {
  int k = 0;
  while (k < max && sqlite3_step(st) == SQLITE_ROW) {
    struct store_outbox *o = &out[k++];
    o->id = sqlite3_column_int64(st, 0);
    o->account_id = sqlite3_column_int64(st, 1);
    o->url = sq_col_dup(st, 2);
    o->payload = sq_col_dup(st, 3);
    o->tries = sqlite3_column_int(st, 4);
    sq_col_copy(st, 5, o->public_id, sizeof o->public_id);
    sq_col_copy(st, 6, o->status, sizeof o->status);
    sq_col_copy(st, 7, o->channel, sizeof o->channel);
    sq_col_copy(st, 8, o->to, sizeof o->to);
    o->at = sqlite3_column_int64(st, 9);
    o->cost = sqlite3_column_int64(st, 10);
    o->has_error = sqlite3_column_type(st, 11) != SQLITE_NULL;
    sq_col_copy(st, 11, o->error, sizeof o->error);
  }
  sqlite3_reset(st);
  *n = k;
  return 0;
}

int store_outbox_due(struct store *s, int64_t now, struct store_outbox *out, int max, int *n) {
  sqlite3_stmt *st = sq_stmt(&SQ(s)->r, ST_OUTBOX_DUE);
  sqlite3_bind_int64(st, 1, now);
  sqlite3_bind_int(st, 2, max);
  return outbox_rows(st, out, max, n);
}

int sq_outbox_result(struct store *s, struct store_op *op) {
  struct store_outbox_data *d = op->data;
  sqlite3_stmt *st;
  if (d->delivered) {
    st = sq_stmt(&SQ(s)->w, ST_OUTBOX_DEL);
    sqlite3_bind_int64(st, 1, d->id);
  } else {
    st = sq_stmt(&SQ(s)->w, ST_OUTBOX_RETRY);
    sqlite3_bind_int64(st, 1, d->due_at);
    sq_bind_text(st, 2, d->error);
    sqlite3_bind_int64(st, 3, d->id);
  }
  return sq_step_done(&SQ(s)->w, st);
}

int sq_outbox_accounts(struct store *s, int64_t now, int64_t after, int64_t *out, int max,
                       int *n) {
  /* A skip-scan over outbox_account: one index seek per account. */
  sqlite3_stmt *st = sq_stmt(&SQ(s)->r, ST_OUTBOX_NEXT_ACC);
  int k = 0;
  while (k < max) {
    sqlite3_bind_int64(st, 1, after);
    int rc = sqlite3_step(st);
    if (rc != SQLITE_ROW) {
      sqlite3_reset(st);
      if (rc == SQLITE_DONE) break;
      *n = k;
      return KK_ESTORE;
    }
    after = sqlite3_column_int64(st, 0);
    if (sqlite3_column_int64(st, 1) <= now) out[k++] = after;
    sqlite3_reset(st);
  }
  *n = k;
  return 0;
}

int sq_outbox_due(struct store *s, int64_t account_id, int64_t now, struct store_outbox *out,
                  int max, int *n) {
  sqlite3_stmt *st = sq_stmt(&SQ(s)->r, ST_OUTBOX_DUE_ACC);
  sqlite3_bind_int64(st, 1, account_id);
  sqlite3_bind_int64(st, 2, now);
  sqlite3_bind_int(st, 3, max);
  return outbox_rows(st, out, max, n);
}

int sq_outbox_defer(struct store *s, struct store_op *op) {
  struct store_outbox_data *d = op->data;
  sqlite3_stmt *st = sq_stmt(&SQ(s)->w, ST_OUTBOX_DEFER);
  sqlite3_bind_int64(st, 1, d->due_at);
  sqlite3_bind_int64(st, 2, d->id);
  return sq_step_done(&SQ(s)->w, st);
}

/* Drops the oldest rows of one account beyond t->keep, at most the rest of
   t->max_delete; records what it dropped in t. */
static int outbox_trim_account(struct store *s, struct store_outbox_trim *t, int64_t account_id) {
  sqlite3_stmt *st = sq_stmt(&SQ(s)->w, ST_OUTBOX_COUNT_ACC);
  sqlite3_bind_int64(st, 1, account_id);
  int64_t count = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
  sqlite3_reset(st);
  int64_t excess = count - t->keep;
  if (excess <= 0) return 0;
  if (excess > t->max_delete - t->dropped) excess = t->max_delete - t->dropped;
  st = sq_stmt(&SQ(s)->w, ST_OUTBOX_DROP_OLD);
  sqlite3_bind_int64(st, 1, account_id);
  sqlite3_bind_int64(st, 2, excess);
  int rc = sq_step_done(&SQ(s)->w, st);
  if (rc) return rc;
  int64_t gone = sqlite3_changes(SQ(s)->w.db);
  t->dropped += gone;
  if (t->naccounts < STORE_TRIM_ACCOUNTS) {
    t->account_id[t->naccounts] = account_id;
    t->account_dropped[t->naccounts++] = gone;
  }
  return 0;
}

int sq_outbox_trim(struct store *s, struct store_op *op) {
  struct store_outbox_trim *t = op->data;
  sqlite3_stmt *st = sq_stmt(&SQ(s)->w, ST_OUTBOX_NEXT_ACC);
  int64_t after = 0;
  t->dropped = 0;
  t->naccounts = 0;
  while (t->dropped < t->max_delete) {
    sqlite3_bind_int64(st, 1, after);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) after = sqlite3_column_int64(st, 0);
    sqlite3_reset(st);
    if (rc == SQLITE_DONE) return 0;
    if (rc != SQLITE_ROW) return KK_ESTORE;
    if ((rc = outbox_trim_account(s, t, after)) != 0) return rc;
  }
  return 0;
}

int64_t store_outbox_next_due(struct store *s) {
  sqlite3_stmt *st = sq_stmt(&SQ(s)->r, ST_OUTBOX_NEXT);
  int64_t v = 0;
  if (sqlite3_step(st) == SQLITE_ROW) v = sqlite3_column_int64(st, 0);
  sqlite3_reset(st);
  return v;
}
