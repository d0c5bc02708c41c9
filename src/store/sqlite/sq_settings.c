/*
 * sq_settings.c - routes, channel settings, prices and named cascades in the
 * SQLite backend; each change is handed out as a note after its commit.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/kk_err.h"
#include "core/kk_mem.h"
#include "store/sqlite/sq_int.h"

/* ---- routes ------------------------------------------------------------ */

int sq_route_put(struct store *s, struct store_op *op) {
  struct store_route_data *d = op->data;
  int rc;
  if (d->config) {
    sqlite3_stmt *st = sq_stmt(&SQ(s)->w, ST_ROUTE_PUT);
    sq_bind_text(st, 1, d->name);
    sq_bind_text(st, 2, d->config);
    sqlite3_bind_int64(st, 3, store_now_ms());
    rc = sq_step_done(&SQ(s)->w, st);
  } else {
    sqlite3_stmt *st = sq_stmt(&SQ(s)->w, ST_ROUTE_DEL);
    sq_bind_text(st, 1, d->name);
    rc = sq_step_done(&SQ(s)->w, st);
  }
  if (rc == 0) note_cfg(s, STORE_NOTE_ROUTE, 0, d->name, d->config, NULL, 0);
  return rc;   /* d's strings are freed with the operation */
}

int sq_routes_each(struct store *s,
                      void (*fn)(void *arg, const char *name, const char *config),
                      void *arg) {
  sqlite3_stmt *st = sq_stmt(&SQ(s)->r, ST_ROUTE_ALL);
  int rc;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW)
    fn(arg, (const char *)sqlite3_column_text(st, 0), (const char *)sqlite3_column_text(st, 1));
  sqlite3_reset(st);
  return rc == SQLITE_DONE ? 0 : KK_ESTORE;
}

/* ---- settings: channels, prices, named cascades --------------------------- */

/* Where each setting lives. */
static const struct {
  enum stmt_id put, del;
  enum store_note_kind note;  /* what the commit tells its subscribers */
} settings[] = {
    [STORE_SET_CHANNEL] = {ST_CHSET_PUT, ST_CHSET_DEL, STORE_NOTE_CHANNEL_CFG},
    [STORE_SET_PRICE] = {ST_PRICE_PUT, ST_PRICE_DEL, STORE_NOTE_PRICE},
    [STORE_SET_CASCADE] = {ST_CASC_PUT, ST_CASC_DEL, STORE_NOTE_CASCADE_CFG},
};

int sq_setting_put(struct store *s, struct store_op *op) {
  struct store_setting_data *d = op->data;
  /* Settings change: forget what was remembered of them. */
  memset(SQ(s)->price_memo, 0, sizeof SQ(s)->price_memo);
  memset(SQ(s)->scope_memo, 0, sizeof SQ(s)->scope_memo);
  int number = d->what == STORE_SET_PRICE;
  int del = number ? d->num < 0 : d->value == NULL;
  sqlite3_stmt *st = sq_stmt(&SQ(s)->w, del ? settings[d->what].del : settings[d->what].put);
  sqlite3_bind_int64(st, 1, d->account_id);
  sq_bind_text(st, 2, d->key);
  if (!del) {
    if (!number) {
      sq_bind_text(st, 3, d->value);
      sqlite3_bind_int64(st, 4, store_now_ms());
    } else {
      sqlite3_bind_int64(st, 3, d->num);
    }
  }
  int rc = sq_step_done(&SQ(s)->w, st);
  if (rc == 0)
    note_cfg(s, settings[d->what].note, d->account_id, d->key, del ? NULL : d->value, NULL,
             d->num);
  return rc;   /* d->value is freed with the operation */
}

/* Calls fn with each row (account_id, key, text) of statement id's. */
static int each_keyed_text(struct store *s, enum stmt_id id,
                           void (*fn)(void *arg, int64_t account_id, const char *key,
                                      const char *text),
                           void *arg) {
  sqlite3_stmt *st = sq_stmt(&SQ(s)->r, id);
  int rc;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW)
    fn(arg, sqlite3_column_int64(st, 0), (const char *)sqlite3_column_text(st, 1),
       (const char *)sqlite3_column_text(st, 2));
  sqlite3_reset(st);
  return rc == SQLITE_DONE ? 0 : KK_ESTORE;
}

int sq_channels_each(struct store *s,
                     void (*fn)(void *arg, int64_t account_id, const char *channel,
                                const char *config),
                     void *arg) {
  return each_keyed_text(s, ST_CHSET_ALL, fn, arg);
}

int sq_prices_each(struct store *s,
                      void (*fn)(void *arg, int64_t account_id, const char *channel,
                                 int64_t price),
                      void *arg) {
  sqlite3_stmt *st = sq_stmt(&SQ(s)->r, ST_PRICE_ALL);
  int rc;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW)
    fn(arg, sqlite3_column_int64(st, 0), (const char *)sqlite3_column_text(st, 1),
       sqlite3_column_int64(st, 2));
  sqlite3_reset(st);
  return rc == SQLITE_DONE ? 0 : KK_ESTORE;
}

int sq_cascades_all(struct store *s,
                    void (*fn)(void *arg, int64_t account_id, const char *name,
                               const char *steps),
                    void *arg) {
  return each_keyed_text(s, ST_CASC_EVERY, fn, arg);
}
