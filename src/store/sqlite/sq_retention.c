/*
 * sq_retention.c - deleting messages past the retention period, in bounded
 * batches on the writer thread.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/kk_err.h"
#include "store/sqlite/sq_int.h"

/* ---- retention ------------------------------------------------------------ */

static int delete_message(struct store *s, int64_t id) {
  static const enum stmt_id order[] = {ST_RET_PARTS, ST_RET_ATTEMPTS, ST_RET_EVENTS, ST_RET_MSG};
  for (size_t i = 0; i < sizeof order / sizeof order[0]; i++) {
    sqlite3_stmt *st = sq_stmt(&SQ(s)->w, order[i]);
    sqlite3_bind_int64(st, 1, id);
    int rc = sq_step_done(&SQ(s)->w, st);
    if (rc) return rc;
  }
  return 0;
}

int sq_retention(struct store *s, struct store_op *op) {
  struct store_retention *r = op->data;
  sqlite3_stmt *st = sq_stmt(&SQ(s)->w, ST_RET_SCAN);
  sqlite3_bind_int64(st, 1, r->after_id);
  sqlite3_bind_int(st, 2, r->max);
  int64_t victims[STORE_RETENTION_MAX];
  int nv = 0, seen = 0, rc;
  r->more = 0;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    int64_t id = sqlite3_column_int64(st, 0);
    seen++;
    if (sqlite3_column_int64(st, 1) >= r->cutoff) {
      r->more = 0;   /* ids grow with time: the rest are newer */
      seen = -1;
      break;
    }
    r->after_id = id;
    if (sqlite3_column_int(st, 2) && sqlite3_column_int64(st, 3) < r->cutoff &&
        nv < STORE_RETENTION_MAX)
      victims[nv++] = id;
  }
  sqlite3_reset(st);
  if (rc != SQLITE_ROW && rc != SQLITE_DONE) return KK_ESTORE;
  if (seen == r->max) r->more = 1;
  for (int i = 0; i < nv; i++)
    if ((rc = delete_message(s, victims[i])) != 0) return rc;
  r->deleted = nv;
  return 0;
}
