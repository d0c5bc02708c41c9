/*
 * pg_settings.c - routes, channel settings, prices and named cascades in
 * the PostgreSQL backend; each change is handed out as a note after its
 * commit, as in the SQLite backend.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/kk_err.h"
#include "core/kk_mem.h"
#include "store/pg/pg_int.h"

/* ---- routes ------------------------------------------------------------ */

int pg_route_put(struct store *s, struct store_op *op) {
  struct store_route_data *d = op->data;
  struct pg_params p = {0};
  pg_p_text(&p, d->name);
  int rc;
  if (d->config) {
    pg_p_text(&p, d->config);
    pg_p_int(&p, store_now_ms());
    rc = pg_cmd(&PG(s)->w,
                "INSERT INTO routes(name,config,updated_at) VALUES($1,$2,$3::bigint)"
                " ON CONFLICT(name) DO UPDATE SET config=excluded.config,"
                " updated_at=excluded.updated_at",
                &p);
  } else {
    rc = pg_cmd(&PG(s)->w, "DELETE FROM routes WHERE name=$1", &p);
  }
  if (rc == 0) note_cfg(s, STORE_NOTE_ROUTE, 0, d->name, d->config, NULL, 0);
  return rc;   /* d's strings are freed with the operation (it may run again) */
}

int pg_routes_each(struct store *s, void (*fn)(void *arg, const char *name, const char *config),
                   void *arg) {
  int rc;
  PGresult *r = pg_read(&PG(s)->r, "SELECT name,config FROM routes ORDER BY name COLLATE \"C\"",
                        NULL, &rc);
  if (r == NULL) return KK_ESTORE;
  for (int i = 0; i < PQntuples(r); i++) fn(arg, PQgetvalue(r, i, 0), PQgetvalue(r, i, 1));
  PQclear(r);
  return 0;
}

/* ---- settings: channels, prices, named cascades --------------------------- */

/* Where each setting lives ($1 the account, $2 the key, $3 the value, $4
   the time). */
static const struct {
  const char *put, *del;
  enum store_note_kind note;  /* what the commit tells its subscribers */
} settings[] = {
    [STORE_SET_CHANNEL] = {"INSERT INTO channel_settings(account_id,channel,config,updated_at)"
                           " VALUES($1::bigint,$2,$3,$4::bigint)"
                           " ON CONFLICT(account_id,channel) DO UPDATE SET"
                           " config=excluded.config, updated_at=excluded.updated_at",
                           "DELETE FROM channel_settings WHERE account_id=$1::bigint"
                           " AND channel=$2",
                           STORE_NOTE_CHANNEL_CFG},
    [STORE_SET_PRICE] = {"INSERT INTO prices(account_id,channel,price)"
                         " VALUES($1::bigint,$2,$3::bigint)"
                         " ON CONFLICT(account_id,channel) DO UPDATE SET price=excluded.price",
                         "DELETE FROM prices WHERE account_id=$1::bigint AND channel=$2",
                         STORE_NOTE_PRICE},
    [STORE_SET_CASCADE] = {"INSERT INTO cascades(account_id,name,steps,updated_at)"
                           " VALUES($1::bigint,$2,$3,$4::bigint)"
                           " ON CONFLICT(account_id,name) DO UPDATE SET"
                           " steps=excluded.steps, updated_at=excluded.updated_at",
                           "DELETE FROM cascades WHERE account_id=$1::bigint AND name=$2",
                           STORE_NOTE_CASCADE_CFG},
};

int pg_setting_put(struct store *s, struct store_op *op) {
  struct store_setting_data *d = op->data;
  pgc_keyed_forget(s);
  int number = d->what == STORE_SET_PRICE;
  int del = number ? d->num < 0 : d->value == NULL;
  struct pg_params p = {0};
  pg_p_int(&p, d->account_id);
  pg_p_text(&p, d->key);
  if (!del) {
    if (!number) {
      pg_p_text(&p, d->value);
      pg_p_int(&p, store_now_ms());
    } else {
      pg_p_int(&p, d->num);
    }
  }
  int rc = pg_cmd(&PG(s)->w, del ? settings[d->what].del : settings[d->what].put, &p);
  if (rc == 0)
    note_cfg(s, settings[d->what].note, d->account_id, d->key, del ? NULL : d->value, NULL,
             d->num);
  return rc;   /* d->value is freed with the operation (it may run again) */
}

/* Calls fn with each row (account_id, key, text) of sql's, in its order. */
static int each_keyed_text(struct store *s, const char *sql,
                           void (*fn)(void *arg, int64_t account_id, const char *key,
                                      const char *text),
                           void *arg) {
  int rc;
  PGresult *r = pg_read(&PG(s)->r, sql, NULL, &rc);
  if (r == NULL) return KK_ESTORE;
  for (int i = 0; i < PQntuples(r); i++)
    fn(arg, pg_int(r, i, 0), PQgetvalue(r, i, 1), PQgetvalue(r, i, 2));
  PQclear(r);
  return 0;
}

int pg_channels_each(struct store *s,
                     void (*fn)(void *arg, int64_t account_id, const char *channel,
                                const char *config),
                     void *arg) {
  return each_keyed_text(s,
                         "SELECT account_id,channel,config FROM channel_settings"
                         " ORDER BY account_id,channel COLLATE \"C\"",
                         fn, arg);
}

int pg_prices_each(struct store *s,
                   void (*fn)(void *arg, int64_t account_id, const char *channel, int64_t price),
                   void *arg) {
  int rc;
  PGresult *r = pg_read(&PG(s)->r,
                        "SELECT account_id,channel,price FROM prices"
                        " ORDER BY account_id,channel COLLATE \"C\"",
                        NULL, &rc);
  if (r == NULL) return KK_ESTORE;
  for (int i = 0; i < PQntuples(r); i++)
    fn(arg, pg_int(r, i, 0), PQgetvalue(r, i, 1), pg_int(r, i, 2));
  PQclear(r);
  return 0;
}

int pg_cascades_all(struct store *s,
                    void (*fn)(void *arg, int64_t account_id, const char *name,
                               const char *steps),
                    void *arg) {
  return each_keyed_text(s,
                         "SELECT account_id,name,steps FROM cascades"
                         " ORDER BY account_id,name COLLATE \"C\"",
                         fn, arg);
}
