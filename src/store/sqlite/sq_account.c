/*
 * sq_account.c - accounts and API keys in the SQLite backend.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/kk_err.h"
#include "core/kk_log.h"
#include "core/kk_mem.h"
#include "store/sqlite/sq_int.h"

#define LOGCTX "store"

static int note_row(struct store *s, int64_t id);

/* ---- accounts and keys ------------------------------------------------- */

int sq_account_create(struct store *s, struct store_op *op) {
  struct store_account *a = op->data;
  sqlite3_stmt *st = sq_stmt(&SQ(s)->w, ST_ACC_INSERT);
  sq_bind_text(st, 1, a->public_id);
  sq_bind_text(st, 2, a->name);
  sq_bind_text(st, 3, a->sms_route);
  sq_bind_text(st, 4, a->callback_secret);
  sqlite3_bind_int64(st, 5, a->created_at);
  sq_bind_text(st, 6, a->senders[0] ? a->senders : "[]");
  sq_bind_text(st, 7, a->countries[0] ? a->countries : "[]");
  sq_bind_text(st, 8, a->roaming_ads);
  int rc = sq_step_done(&SQ(s)->w, st);
  if (rc == 0) {
    a->id = sqlite3_last_insert_rowid(SQ(s)->w.db);
    rc = note_row(s, a->id);
  }
  return rc;
}

int sq_account_update(struct store *s, struct store_op *op) {
  struct store_account *a = op->data;
  sqlite3_stmt *st = sq_stmt(&SQ(s)->w, ST_ACC_UPDATE);
  sq_bind_text(st, 1, a->name);
  sq_bind_text(st, 2, a->sms_route);
  sqlite3_bind_int(st, 3, a->suspended);
  sq_bind_text(st, 4, a->senders[0] ? a->senders : "[]");
  sq_bind_text(st, 5, a->countries[0] ? a->countries : "[]");
  sq_bind_text(st, 6, a->roaming_ads);
  sqlite3_bind_int64(st, 7, a->id);
  int rc = sq_step_done(&SQ(s)->w, st);
  if (rc == 0) rc = note_row(s, a->id);
  return rc;
}

/* The account's columns (ACC_COLS) of the row st is on. */
static void account_cols(sqlite3_stmt *st, struct store_account *out) {
  memset(out, 0, sizeof *out);
  out->id = sqlite3_column_int64(st, 0);
    sq_col_copy(st, 1, out->public_id, sizeof out->public_id);
    sq_col_copy(st, 2, out->name, sizeof out->name);
    sq_col_copy(st, 3, out->sms_route, sizeof out->sms_route);
    sq_col_copy(st, 4, out->callback_secret, sizeof out->callback_secret);
    out->created_at = sqlite3_column_int64(st, 5);
    out->suspended = sqlite3_column_int(st, 6);
    sq_col_copy(st, 7, out->senders, sizeof out->senders);
    sq_col_copy(st, 8, out->countries, sizeof out->countries);
    sq_col_copy(st, 9, out->roaming_ads, sizeof out->roaming_ads);
}

/* Writer: the note of account id created or updated, with its whole row as
   this transaction wrote it (no row, no note). 0 or KK_ESTORE. */
static int note_row(struct store *s, int64_t id) {
  struct conn *w = &SQ(s)->w;
  sqlite3_stmt *st = sq_stmt(w, ST_ACC_GET_ID);
  sqlite3_bind_int64(st, 1, id);
  int rc = sqlite3_step(st);
  if (rc == SQLITE_ROW) {
    struct store_account row;
    account_cols(st, &row);
    sqlite3_reset(st);
    note_account(s, &row);
    return 0;
  }
  sqlite3_reset(st);
  if (rc == SQLITE_DONE) return 0;
  kk_error(LOGCTX, "read account: %s", sqlite3_errmsg(w->db));
  return KK_ESTORE;
}

int sq_accounts_each(struct store *s, void (*fn)(void *arg, const struct store_account *a),
                     void *arg) {
  sqlite3_stmt *st = sq_stmt(&SQ(s)->r, ST_ACC_ALL);
  struct store_account row;
  int rc;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    account_cols(st, &row);
    fn(arg, &row);
  }
  sqlite3_reset(st);
  return rc == SQLITE_DONE ? 0 : KK_ESTORE;
}

int sq_key_add(struct store *s, struct store_op *op) {
  struct store_key_data *k = op->data;
  sqlite3_stmt *st = sq_stmt(&SQ(s)->w, ST_KEY_INSERT);
  sqlite3_bind_int64(st, 1, k->account_id);
  sqlite3_bind_blob(st, 2, k->hash, 32, SQLITE_STATIC);
  sq_bind_text(st, 3, k->prefix);
  sqlite3_bind_int64(st, 4, store_now_ms());
  int rc = sq_step_done(&SQ(s)->w, st);
  if (rc == 0) note_cfg(s, STORE_NOTE_KEY_ADD, k->account_id, k->prefix, NULL, k->hash, 0);
  return rc;
}

int sq_keys_each(struct store *s,
                    void (*fn)(void *arg, const uint8_t hash[32], int64_t account_id),
                    void *arg) {
  sqlite3_stmt *st = sq_stmt(&SQ(s)->r, ST_KEY_ALL);
  int rc;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    if (sqlite3_column_bytes(st, 0) != 32) continue;
    fn(arg, sqlite3_column_blob(st, 0), sqlite3_column_int64(st, 1));
  }
  sqlite3_reset(st);
  return rc == SQLITE_DONE ? 0 : KK_ESTORE;
}

int sq_keys_list(struct store *s, void *rd, int64_t account_id,
                 void (*fn)(void *arg, const char *prefix, int64_t created_at,
                            int64_t revoked_at),
                 void *arg) {
  (void)s;
  sqlite3_stmt *st = sq_stmt(rd, ST_KEY_LIST);
  sqlite3_bind_int64(st, 1, account_id);
  int rc;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW)
    fn(arg, (const char *)sqlite3_column_text(st, 0), sqlite3_column_int64(st, 1),
       sqlite3_column_int64(st, 2));
  sqlite3_reset(st);
  return rc == SQLITE_DONE ? 0 : KK_ESTORE;
}

int sq_key_revoke(struct store *s, struct store_op *op) {
  struct store_key_revoke *k = op->data;
  sqlite3_stmt *st = sq_stmt(&SQ(s)->w, ST_KEY_FIND);
  sq_bind_text(st, 1, k->prefix);
  sqlite3_bind_int64(st, 2, k->account_id);
  int64_t ids[STORE_REVOKE_MAX];
  k->n = 0;
  int rc;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW && k->n < STORE_REVOKE_MAX) {
    if (sqlite3_column_bytes(st, 1) != 32) continue;
    ids[k->n] = sqlite3_column_int64(st, 0);
    memcpy(k->hash[k->n], sqlite3_column_blob(st, 1), 32);
    k->owner[k->n] = sqlite3_column_int64(st, 2);
    k->n++;
  }
  sqlite3_reset(st);
  if (rc != SQLITE_ROW && rc != SQLITE_DONE) return KK_ESTORE;
  if (k->n == 0) return KK_ENOENT;
  int64_t now = store_now_ms();
  for (int i = 0; i < k->n; i++) {
    st = sq_stmt(&SQ(s)->w, ST_KEY_REVOKE);
    sqlite3_bind_int64(st, 1, now);
    sqlite3_bind_int64(st, 2, ids[i]);
    if ((rc = sq_step_done(&SQ(s)->w, st)) != 0) return rc;
    note_cfg(s, STORE_NOTE_KEY_REVOKE, k->owner[i], k->prefix, NULL, k->hash[i], 0);
  }
  return 0;
}

int sq_accounts_suspended(struct store *s, void (*fn)(void *arg, int64_t account_id),
                             void *arg) {
  sqlite3_stmt *st = sq_stmt(&SQ(s)->r, ST_ACC_SUSPENDED);
  int rc;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) fn(arg, sqlite3_column_int64(st, 0));
  sqlite3_reset(st);
  return rc == SQLITE_DONE ? 0 : KK_ESTORE;
}
