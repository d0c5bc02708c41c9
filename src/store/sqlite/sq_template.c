/*
 * sq_template.c - templates in the SQLite backend; each change is handed
 * out as a note after its commit (the store keeps them in memory).
 */
#include <stdlib.h>

#include "core/kk_err.h"
#include "store/sqlite/sq_int.h"

int sq_template_put(struct store *s, struct store_op *op) {
  struct store_template_data *d = op->data;
  sqlite3_stmt *st = sq_stmt(&SQ(s)->w, d->body ? ST_TPL_PUT : ST_TPL_DEL);
  sqlite3_bind_int64(st, 1, d->account_id);
  sq_bind_text(st, 2, d->name);
  if (d->body) {
    sq_bind_text(st, 3, d->body);
    sqlite3_bind_int64(st, 4, d->at);
    sqlite3_bind_int64(st, 5, d->at);
  }
  int rc = sq_step_done(&SQ(s)->w, st);
  if (rc == 0) note_cfg(s, STORE_NOTE_TEMPLATE_CFG, d->account_id, d->name, d->body, NULL, d->at);
  return rc;   /* d->body is freed with the operation */
}

int sq_templates_all(struct store *s,
                     void (*fn)(void *arg, int64_t account_id, const char *name,
                                const char *body, int64_t created_at, int64_t updated_at),
                     void *arg) {
  sqlite3_stmt *st = sq_stmt(&SQ(s)->r, ST_TPL_ALL);
  int rc;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW)
    fn(arg, sqlite3_column_int64(st, 0), (const char *)sqlite3_column_text(st, 1),
       (const char *)sqlite3_column_text(st, 2), sqlite3_column_int64(st, 3),
       sqlite3_column_int64(st, 4));
  sqlite3_reset(st);
  return rc == SQLITE_DONE ? 0 : KK_ESTORE;
}
