/*
 * sq_sql.c - plain SQL in the SQLite backend (store_backend.sql): one
 * statement bound, stepped and reset, prepared once for the last
 * SQ_SQL_CACHE texts the connection ran (a campaign's runner sets each of
 * its recipients with the same statement); and the campaigns' tables
 * (sq_int.h: SQ_CAMPAIGN_MIGRATION).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/kk_err.h"
#include "core/kk_log.h"
#include "store/sqlite/sq_int.h"

#define LOGCTX "store"
#define SQL_MAX_COLS 32

/* sql prepared on c: the one kept for the same text, or a new one kept in
   the place of the oldest. NULL when it does not compile. */
static sqlite3_stmt *prepared(struct conn *c, const char *sql) {
  for (int i = 0; i < SQ_SQL_CACHE; i++)
    if (c->sql[i] && strcmp(sqlite3_sql(c->sql[i]), sql) == 0) return c->sql[i];
  sqlite3_stmt *st;
  if (sqlite3_prepare_v3(c->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &st, NULL) != SQLITE_OK) {
    kk_error(LOGCTX, "prepare failed: %s: %s", sqlite3_errmsg(c->db), sql);
    return NULL;
  }
  unsigned k = c->sql_next++ % SQ_SQL_CACHE;
  sqlite3_finalize(c->sql[k]);
  c->sql[k] = st;
  return st;
}

int sq_sql(struct store *s, void *rd, const char *sql, const struct store_sql_arg *a, int n,
           store_sql_row_fn fn, void *arg) {
  struct conn *c = rd ? rd : &SQ(s)->w;
  sqlite3_stmt *st = prepared(c, sql);
  if (st == NULL) return KK_ESTORE;
  for (int i = 0; i < n; i++) {
    if (!a[i].is_text)
      sqlite3_bind_int64(st, i + 1, a[i].i);
    else if (a[i].t)
      sqlite3_bind_text(st, i + 1, a[i].t, -1, SQLITE_TRANSIENT);
    else
      sqlite3_bind_null(st, i + 1);
  }
  int rc, stop = 0;
  while (!stop && (rc = sqlite3_step(st)) == SQLITE_ROW) {
    if (fn == NULL) continue;
    int nc = sqlite3_column_count(st);
    if (nc > SQL_MAX_COLS) nc = SQL_MAX_COLS;
    const char *cols[SQL_MAX_COLS];
    for (int i = 0; i < nc; i++) cols[i] = (const char *)sqlite3_column_text(st, i);
    stop = fn(arg, cols, nc);
  }
  if (stop) rc = SQLITE_DONE;
  int out = 0;
  if (rc == SQLITE_CONSTRAINT) {
    out = KK_EEXIST;
  } else if (rc != SQLITE_DONE) {
    c->err = rc;
    kk_error(LOGCTX, "%s: %s", sqlite3_errmsg(c->db), sql);
    out = KK_ESTORE;
  }
  sqlite3_reset(st);
  sqlite3_clear_bindings(st);
  return out;
}
