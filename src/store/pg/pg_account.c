/*
 * pg_account.c - accounts and API keys in the PostgreSQL backend: the
 * writes (on the writer thread, in the batch's transaction) and the reads
 * (on the loop thread, through its connection).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/kk_err.h"
#include "core/kk_log.h"
#include "store/pg/pg_int.h"

#define LOGCTX "store"

/* An account's columns as read_account() reads them. */
#define ACC_COLS "id,public_id,name,sms_route,callback_secret,created_at,"      \
                 "suspended,senders,countries,roaming_ads"

static void account_row(const PGresult *r, int row, struct store_account *out) {
  memset(out, 0, sizeof *out);
  out->id = pg_int(r, row, 0);
  pg_copy(r, row, 1, out->public_id, sizeof out->public_id);
  pg_copy(r, row, 2, out->name, sizeof out->name);
  pg_copy(r, row, 3, out->sms_route, sizeof out->sms_route);
  pg_copy(r, row, 4, out->callback_secret, sizeof out->callback_secret);
  out->created_at = pg_int(r, row, 5);
  out->suspended = (int)pg_int(r, row, 6);
  pg_copy(r, row, 7, out->senders, sizeof out->senders);
  pg_copy(r, row, 8, out->countries, sizeof out->countries);
  pg_copy(r, row, 9, out->roaming_ads, sizeof out->roaming_ads);
}

int pg_account_read(struct pg_conn *c, int64_t id, struct store_account *out) {
  struct pg_params p = {0};
  pg_p_int(&p, id);
  int rc;
  PGresult *r = pg_query(c, "SELECT " ACC_COLS " FROM accounts WHERE id=$1::bigint", &p, &rc);
  if (r == NULL) return KK_ESTORE;
  rc = PQntuples(r) > 0 ? 0 : KK_ENOENT;
  if (rc == 0) account_row(r, 0, out);
  PQclear(r);
  return rc;
}

int pg_account_create(struct store *s, struct store_op *op) {
  struct store_account *a = op->data;
  struct pg_params p = {0};
  pg_p_text(&p, a->public_id);
  pg_p_text(&p, a->name);
  pg_p_text(&p, a->sms_route);
  pg_p_text(&p, a->callback_secret);
  pg_p_int(&p, a->created_at);
  pg_p_text(&p, a->senders[0] ? a->senders : "[]");
  pg_p_text(&p, a->countries[0] ? a->countries : "[]");
  pg_p_text(&p, a->roaming_ads);
  int rc;
  PGresult *r = pg_query(&PG(s)->w,
                         "INSERT INTO accounts(public_id,name,sms_route,callback_secret,"
                         "created_at,senders,countries,roaming_ads)"
                         " VALUES($1,$2,$3,$4,$5::bigint,$6,$7,$8)"
                         " RETURNING " ACC_COLS,
                         &p, &rc);
  if (r == NULL) return rc;
  struct store_account row;
  account_row(r, 0, &row);
  PQclear(r);
  a->id = row.id;
  note_account(s, &row);
  return 0;
}

int pg_account_update(struct store *s, struct store_op *op) {
  struct store_account *a = op->data;
  struct pg_params p = {0};
  pg_p_text(&p, a->name);
  pg_p_text(&p, a->sms_route);
  pg_p_int(&p, a->suspended);
  pg_p_text(&p, a->senders[0] ? a->senders : "[]");
  pg_p_text(&p, a->countries[0] ? a->countries : "[]");
  pg_p_text(&p, a->roaming_ads);
  pg_p_int(&p, a->id);
  int rc;
  PGresult *r = pg_query(&PG(s)->w,
                         "UPDATE accounts SET name=$1, sms_route=$2, suspended=$3::int,"
                         " senders=$4, countries=$5, roaming_ads=$6"
                         " WHERE id=$7::bigint RETURNING " ACC_COLS,
                         &p, &rc);
  if (r == NULL) return rc;
  if (PQntuples(r) > 0) {
    struct store_account row;
    account_row(r, 0, &row);
    note_account(s, &row);
  }
  PQclear(r);
  return 0;
}

int pg_accounts_each(struct store *s, void (*fn)(void *arg, const struct store_account *a),
                     void *arg) {
  int rc;
  PGresult *r = pg_read(&PG(s)->r, "SELECT " ACC_COLS " FROM accounts ORDER BY id", NULL, &rc);
  if (r == NULL) return KK_ESTORE;
  struct store_account a;
  for (int i = 0; i < PQntuples(r); i++) {
    account_row(r, i, &a);
    fn(arg, &a);
  }
  PQclear(r);
  return 0;
}

int pg_key_add(struct store *s, struct store_op *op) {
  struct store_key_data *k = op->data;
  struct pg_params p = {0};
  pg_p_int(&p, k->account_id);
  pg_p_bytes(&p, k->hash, 32);
  pg_p_text(&p, k->prefix);
  pg_p_int(&p, store_now_ms());
  int rc = pg_cmd(&PG(s)->w,
                  "INSERT INTO api_keys(account_id,key_hash,prefix,created_at)"
                  " VALUES($1::bigint,$2::bytea,$3,$4::bigint)",
                  &p);
  if (rc == 0) note_cfg(s, STORE_NOTE_KEY_ADD, k->account_id, k->prefix, NULL, k->hash, 0);
  return rc;
}

/* A key hash read as hex (encode(...,'hex')): 1 when it is 32 bytes. */
static int hash_of(const char *hex, uint8_t out[32]) {
  if (hex == NULL || strlen(hex) != 64) return 0;
  for (int i = 0; i < 32; i++) {
    unsigned v;
    if (sscanf(hex + 2 * i, "%2x", &v) != 1) return 0;
    out[i] = (uint8_t)v;
  }
  return 1;
}

int pg_keys_each(struct store *s,
                 void (*fn)(void *arg, const uint8_t hash[32], int64_t account_id), void *arg) {
  int rc;
  PGresult *r = pg_read(&PG(s)->r,
                        "SELECT encode(key_hash,'hex'),account_id FROM api_keys"
                        " WHERE revoked_at IS NULL ORDER BY id",
                        NULL, &rc);
  if (r == NULL) return KK_ESTORE;
  uint8_t h[32];
  for (int i = 0; i < PQntuples(r); i++)
    if (hash_of(pg_text(r, i, 0), h)) fn(arg, h, pg_int(r, i, 1));
  PQclear(r);
  return 0;
}

int pg_accounts_note_all(struct store *s) {
  int rc;
  PGresult *r = pg_query(&PG(s)->w, "SELECT " ACC_COLS " FROM accounts ORDER BY id", NULL, &rc);
  if (r == NULL) return KK_ESTORE;
  struct store_account a;
  for (int i = 0; i < PQntuples(r); i++) {
    account_row(r, i, &a);
    note_account(s, &a);
  }
  PQclear(r);
  return 0;
}

int pg_keys_note_all(struct store *s) {
  int rc;
  PGresult *r = pg_query(&PG(s)->w,
                         "SELECT encode(key_hash,'hex'),account_id,prefix,"
                         "(revoked_at IS NOT NULL)::int FROM api_keys ORDER BY id",
                         NULL, &rc);
  if (r == NULL) return KK_ESTORE;
  uint8_t h[32];
  for (int i = 0; i < PQntuples(r); i++)
    if (hash_of(pg_text(r, i, 0), h))
      note_cfg(s, pg_int(r, i, 3) ? STORE_NOTE_KEY_REVOKE : STORE_NOTE_KEY_ADD, pg_int(r, i, 1),
               PQgetvalue(r, i, 2), NULL, h, 0);
  PQclear(r);
  return 0;
}

/* Pool thread: an account's keys through rd, that thread's reader. */
int pg_keys_rows(struct store *s, void *rd, int64_t account_id,
                 void (*fn)(void *arg, const char *prefix, int64_t created_at,
                            int64_t revoked_at),
                 void *arg) {
  struct pg_params p = {0};
  pg_p_int(&p, account_id);
  int rc;
  PGresult *r = pg_read(rd,
                        "SELECT prefix,created_at,revoked_at FROM api_keys"
                        " WHERE account_id=$1::bigint ORDER BY id",
                        &p, &rc);
  if (r == NULL) return KK_ESTORE;
  for (int i = 0; i < PQntuples(r); i++)
    fn(arg, PQgetvalue(r, i, 0), pg_int(r, i, 1), pg_int(r, i, 2));
  PQclear(r);
  return 0;
}

int pg_key_revoke(struct store *s, struct store_op *op) {
  struct store_key_revoke *k = op->data;
  struct pg_params p = {0};
  pg_p_text(&p, k->prefix);
  pg_p_int(&p, k->account_id);
  pg_p_int(&p, STORE_REVOKE_MAX);
  int rc;
  PGresult *r = pg_query(&PG(s)->w,
                         "SELECT id,encode(key_hash,'hex'),account_id FROM api_keys"
                         " WHERE prefix=$1 AND revoked_at IS NULL"
                         " AND ($2::bigint=0 OR account_id=$2::bigint)"
                         " ORDER BY id LIMIT $3::int FOR UPDATE",
                         &p, &rc);
  if (r == NULL) return rc;
  int64_t ids[STORE_REVOKE_MAX];
  k->n = 0;
  for (int i = 0; i < PQntuples(r) && k->n < STORE_REVOKE_MAX; i++) {
    if (!hash_of(pg_text(r, i, 1), k->hash[k->n])) continue;
    ids[k->n] = pg_int(r, i, 0);
    k->owner[k->n] = pg_int(r, i, 2);
    k->n++;
  }
  PQclear(r);
  if (k->n == 0) return KK_ENOENT;
  int64_t now = store_now_ms();
  for (int i = 0; i < k->n; i++) {
    struct pg_params u = {0};
    pg_p_int(&u, now);
    pg_p_int(&u, ids[i]);
    rc = pg_cmd(&PG(s)->w, "UPDATE api_keys SET revoked_at=$1::bigint WHERE id=$2::bigint", &u);
    if (rc != 0) return rc;
    note_cfg(s, STORE_NOTE_KEY_REVOKE, k->owner[i], k->prefix, NULL, k->hash[i], 0);
  }
  return 0;
}

int pg_accounts_suspended(struct store *s, void (*fn)(void *arg, int64_t account_id), void *arg) {
  int rc;
  PGresult *r = pg_read(&PG(s)->r, "SELECT id FROM accounts WHERE suspended<>0 ORDER BY id", NULL,
                        &rc);
  if (r == NULL) return KK_ESTORE;
  for (int i = 0; i < PQntuples(r); i++) fn(arg, pg_int(r, i, 0));
  PQclear(r);
  return 0;
}
