/*
 * pg_optout.c - the stop-list and consents in the PostgreSQL backend; each
 * change is handed out as a note after its commit, as in the SQLite
 * backend. Another node learns of it only through the nodes' notification
 * channel (store_optout.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/kk_err.h"
#include "core/kk_mem.h"
#include "policy/pol_consent.h"
#include "store/store_contact.h"
#include "store/pg/pg_int.h"

#define PAGE 1000
#define CONSENT_COLS "id,phone,channel,source,text,ip,at,recorded_at,withdrawn_at,withdrawn_by"

static int current_mask(struct pg_conn *w, int64_t account_id, const char *phone,
                        uint32_t *mask) {
  struct pg_params p = {0};
  pg_p_int(&p, account_id);
  pg_p_text(&p, phone);
  int rc;
  PGresult *r = pg_query(w,
                         "SELECT DISTINCT channel FROM consents WHERE account_id=$1::bigint"
                         " AND phone=$2 AND withdrawn_at IS NULL",
                         &p, &rc);
  if (r == NULL) return rc;
  *mask = 0;
  for (int i = 0; i < PQntuples(r); i++) {
    const char *ch = PQgetvalue(r, i, 0);
    *mask |= pol_consent_bit(strcmp(ch, "all") != 0 ? ch : "");
  }
  PQclear(r);
  return 0;
}

/* After a change of phone's consents: the note of the mask now current,
   and the phone's contact follows (yes while one is current; recorded: the
   source and time of rec). */
static int changed(struct store *s, int64_t account_id, const char *phone,
                   const struct store_consent *rec) {
  struct pg_conn *w = &PG(s)->w;
  uint32_t mask;
  int rc = current_mask(w, account_id, phone, &mask);
  if (rc != 0) return rc;
  store_optout_note_consent(s, account_id, phone, mask);
  struct pg_params p = {0};
  pg_p_int(&p, account_id);
  pg_p_text(&p, phone);
  pg_p_int(&p, mask != 0);
  pg_p_text(&p, rec ? rec->source : NULL);
  if (rec) pg_p_int(&p, rec->at);
  else pg_p_text(&p, NULL);
  return pg_cmd(w,
                "UPDATE contacts SET consent=$3::int, consent_source=COALESCE($4,consent_source),"
                " consent_at=COALESCE($5::bigint,consent_at)"
                " WHERE account_id=$1::bigint AND phone=$2",
                &p);
}

static int withdraw(struct store *s, int64_t account_id, const char *phone, const char *channel,
                    int64_t at, const char *by, int *n) {
  struct pg_conn *w = &PG(s)->w;
  struct pg_params p = {0};
  pg_p_int(&p, account_id);
  pg_p_text(&p, phone);
  pg_p_int(&p, at);
  pg_p_text(&p, by);
  pg_p_text(&p, channel);
  int rc;
  PGresult *r = pg_query(w,
                         "UPDATE consents SET withdrawn_at=$3::bigint, withdrawn_by=$4"
                         " WHERE account_id=$1::bigint AND phone=$2 AND withdrawn_at IS NULL"
                         " AND ($5='all' OR channel=$5) RETURNING id",
                         &p, &rc);
  if (r == NULL) return rc;
  *n = PQntuples(r);
  PQclear(r);
  return *n > 0 ? changed(s, account_id, phone, NULL) : 0;
}

/* Records c (its id and recorded_at set). */
static int record(struct store *s, int64_t account_id, struct store_consent *c, int64_t now) {
  struct pg_params p = {0};
  pg_p_int(&p, account_id);
  pg_p_text(&p, c->phone);
  pg_p_text(&p, c->channel);
  pg_p_text(&p, c->source);
  pg_p_text(&p, c->text && c->text[0] ? c->text : NULL);
  pg_p_text(&p, c->ip[0] ? c->ip : NULL);
  pg_p_int(&p, c->at);
  pg_p_int(&p, now);
  int rc;
  PGresult *r = pg_query(&PG(s)->w,
                         "INSERT INTO consents(account_id,phone,channel,source,text,ip,at,"
                         "recorded_at) VALUES($1::bigint,$2,$3,$4,$5,$6,$7::bigint,$8::bigint)"
                         " RETURNING id",
                         &p, &rc);
  if (r == NULL) return rc;
  c->id = pg_int(r, 0, 0);
  PQclear(r);
  c->recorded_at = now;
  return changed(s, account_id, c->phone, c);
}

int pg_consent_of_contact(struct store *s, int64_t account_id, const struct store_contact *c,
                          int64_t now) {
  if (c->consent < 0) return 0;
  int n;
  if (c->consent == 0) return withdraw(s, account_id, c->phone, "all", now, "import", &n);
  uint32_t mask;
  int rc = current_mask(&PG(s)->w, account_id, c->phone, &mask);
  if (rc != 0 || (mask & POL_CONSENT_ALL)) return rc;   /* one is current already */
  struct store_consent r;
  store_consent_of_contact(c, now, &r);
  return record(s, account_id, &r, now);
}

/* The consent columns "no" of rows[idx[0..n-1]]: their current consents
   withdrawn and their contacts no longer consenting, one statement. */
static int withdraw_many(struct store *s, int64_t account_id, const struct store_contact *rows,
                         const int *idx, int n, int64_t now, struct pg_rows *r) {
  pg_rows_clear(r);
  pg_rows_int(r, 0, account_id);
  pg_rows_int(r, 1, now);
  for (int k = 0; k < n; k++)
    if (rows[idx[k]].consent == 0) pg_rows_text(r, 2, rows[idx[k]].phone);
  if (r->col[2].len == 0) return 0;
  int rc;
  PGresult *res =
      pg_rows_run(&PG(s)->w, r,
                  "WITH w AS (UPDATE consents SET withdrawn_at=($2::bigint[])[1],"
                  " withdrawn_by='import' WHERE account_id=($1::bigint[])[1]"
                  " AND phone=ANY($3::text[]) AND withdrawn_at IS NULL RETURNING phone),"
                  " c AS (UPDATE contacts SET consent=0 WHERE account_id=($1::bigint[])[1]"
                  " AND phone IN (SELECT phone FROM w))"
                  " SELECT DISTINCT phone FROM w",
                  3, &rc);
  if (res == NULL) return rc;
  /* every channel's withdrawn: nothing is current */
  for (int i = 0; i < PQntuples(res); i++)
    store_optout_note_consent(s, account_id, PQgetvalue(res, i, 0), 0);
  PQclear(res);
  return 0;
}

/* The consent columns "yes" of rows[idx[0..n-1]]: a consent for every
   channel recorded for each phone with none current, and its contact
   follows; three statements at most. */
static int record_many(struct store *s, int64_t account_id, const struct store_contact *rows,
                       const int *idx, int n, int64_t now, struct pg_rows *r) {
  struct pg_conn *w = &PG(s)->w;
  pg_rows_clear(r);
  pg_rows_int(r, 0, account_id);
  int *yes = kk_xmalloc((size_t)(n > 0 ? n : 1) * sizeof *yes);
  uint32_t *mask = kk_xcalloc((size_t)(n > 0 ? n : 1), sizeof *mask);
  int ny = 0;
  for (int k = 0; k < n; k++)
    if (rows[idx[k]].consent == 1) {
      yes[ny++] = idx[k];
      pg_rows_text(r, 1, rows[idx[k]].phone);
    }
  int rc = 0;
  PGresult *res = NULL;
  if (ny > 0)
    res = pg_rows_run(w, r,
                      "SELECT v.ord,c.channel FROM unnest($2::text[]) WITH ORDINALITY"
                      " AS v(phone,ord) JOIN consents c ON c.account_id=($1::bigint[])[1]"
                      " AND c.phone=v.phone AND c.withdrawn_at IS NULL",
                      2, &rc);
  if (res != NULL) {
    for (int i = 0; i < PQntuples(res); i++) {
      int64_t ord = pg_int(res, i, 0);
      const char *ch = PQgetvalue(res, i, 1);
      if (ord >= 1 && ord <= ny) mask[ord - 1] |= pol_consent_bit(strcmp(ch, "all") != 0 ? ch : "");
    }
    PQclear(res);
    pg_rows_int(r, 0, account_id);
    pg_rows_int(r, 1, now);
    for (int k = 0; k < ny; k++) {
      if (mask[k] & POL_CONSENT_ALL) continue;   /* one is current already */
      struct store_consent c;
      store_consent_of_contact(&rows[yes[k]], now, &c);
      pg_rows_text(r, 2, c.phone);
      pg_rows_text(r, 3, c.source);
      pg_rows_int(r, 4, c.at);
    }
    if (r->col[2].len > 0) {
      res = pg_rows_run(w, r,
                        "WITH v AS (SELECT * FROM unnest($3::text[],$4::text[],$5::bigint[])"
                        " AS t(phone,source,at)),"
                        " i AS (INSERT INTO consents(account_id,phone,channel,source,at,"
                        "recorded_at) SELECT ($1::bigint[])[1],phone,'all',source,at,"
                        "($2::bigint[])[1] FROM v)"
                        " UPDATE contacts c SET consent=1, consent_source=v.source,"
                        " consent_at=v.at FROM v WHERE c.account_id=($1::bigint[])[1]"
                        " AND c.phone=v.phone",
                        5, &rc);
      if (res != NULL) {
        PQclear(res);
        for (int k = 0; k < ny; k++)
          if (!(mask[k] & POL_CONSENT_ALL))
            store_optout_note_consent(s, account_id, rows[yes[k]].phone,
                                      mask[k] | POL_CONSENT_ALL);
      }
    }
    pg_rows_clear(r);
  }
  free(mask);
  free(yes);
  return res == NULL && ny > 0 ? rc : 0;
}

int pg_consent_of_contacts(struct store *s, int64_t account_id, const struct store_contact *rows,
                           const int *idx, int n, int64_t now, struct pg_rows *r) {
  int rc = withdraw_many(s, account_id, rows, idx, n, now, r);
  return rc != 0 ? rc : record_many(s, account_id, rows, idx, n, now, r);
}

int pg_stop_write(struct store *s, struct store_op *op) {
  struct store_stop_batch *b = op->data;
  struct pg_conn *w = &PG(s)->w;
  b->changed = 0;
  for (int i = 0; i < b->n; i++) {
    const struct store_stop_row *row = &b->rows[i];
    struct pg_params p = {0};
    pg_p_int(&p, b->account_id);
    pg_p_text(&p, row->phone);
    int rc;
    PGresult *r;
    if (row->reason[0]) {
      pg_p_text(&p, row->reason);
      pg_p_text(&p, row->channel[0] ? row->channel : NULL);
      pg_p_int(&p, b->at);
      r = pg_query(w,
                   "INSERT INTO stoplist(account_id,phone,reason,channel,created_at)"
                   " VALUES($1::bigint,$2,$3,$4,$5::bigint) ON CONFLICT(account_id,phone)"
                   " DO UPDATE SET reason=excluded.reason, channel=excluded.channel"
                   " WHERE stoplist.reason<>excluded.reason RETURNING phone",
                   &p, &rc);
    } else {
      r = pg_query(w,
                   "DELETE FROM stoplist WHERE account_id=$1::bigint AND phone=$2"
                   " RETURNING phone",
                   &p, &rc);
    }
    if (r == NULL) return rc;
    int changed = PQntuples(r) > 0;
    PQclear(r);
    if (changed) {
      b->changed++;
      store_optout_note_stop(s, b->account_id, row->phone, row->reason);
    }
    int n;
    if (row->reason[0] && row->withdraw &&
        (rc = withdraw(s, b->account_id, row->phone, "all", b->at, row->reason, &n)) != 0)
      return rc;
  }
  return 0;
}

int pg_consent_write(struct store *s, struct store_op *op) {
  struct store_consent_op *o = op->data;
  struct store_consent *c = &o->c;
  if (o->withdraw) {
    int n, rc = withdraw(s, o->account_id, c->phone, c->channel, c->withdrawn_at,
                         c->withdrawn_by, &n);
    return rc != 0 ? rc : n == 0 ? KK_ENOENT : 0;
  }
  for (int i = 0; i < o->n; i++) {
    int rc = record(s, o->account_id, &o->rows[i], o->now);
    if (rc != 0) return rc;
  }
  return o->n > 0 ? 0 : record(s, o->account_id, c, o->now);
}

/* fn(arg, account_id, phone, the third column) for each row of sql. */
static int rows3(struct store *s, const char *sql,
                 void (*fn)(void *arg, int64_t account_id, const char *phone, const char *v),
                 void *arg) {
  int rc;
  PGresult *r = pg_read(&PG(s)->r, sql, NULL, &rc);
  if (r == NULL) return KK_ESTORE;
  for (int i = 0; i < PQntuples(r); i++)
    fn(arg, pg_int(r, i, 0), PQgetvalue(r, i, 1), PQgetvalue(r, i, 2));
  PQclear(r);
  return 0;
}

int pg_stop_all(struct store *s,
                void (*fn)(void *arg, int64_t account_id, const char *phone, const char *reason),
                void *arg) {
  return rows3(s, "SELECT account_id,phone,reason FROM stoplist", fn, arg);
}

int pg_consent_all(struct store *s,
                   void (*fn)(void *arg, int64_t account_id, const char *phone,
                              const char *channel),
                   void *arg) {
  return rows3(s, "SELECT account_id,phone,channel FROM consents WHERE withdrawn_at IS NULL", fn,
               arg);
}

int pg_stop_each(struct store *s, void *rd, int64_t account_id, const char *phone,
                 const char *after, int limit, store_stop_fn fn, void *arg) {
  (void)s;
  char cur[16];
  snprintf(cur, sizeof cur, "%s", after ? after : "");
  int left = limit > 0 ? limit : -1, seen = 0;
  for (;;) {
    struct pg_params p = {0};
    pg_p_int(&p, account_id);
    pg_p_text(&p, phone ? phone : cur);
    int want = left < 0 || left > PAGE ? PAGE : left, rc;
    pg_p_int(&p, want);
    PGresult *r = pg_read(rd,
                          phone ? "SELECT phone,reason,channel,created_at FROM stoplist"
                                  " WHERE account_id=$1::bigint AND phone=$2 LIMIT $3::int"
                                : "SELECT phone,reason,channel,created_at FROM stoplist"
                                  " WHERE account_id=$1::bigint AND phone>$2"
                                  " ORDER BY phone COLLATE \"C\" LIMIT $3::int",
                          &p, &rc);
    if (r == NULL) return KK_ESTORE;
    int rows = PQntuples(r), stop = 0;
    for (int i = 0; i < rows && !stop; i++) {
      struct store_stop_entry e;
      pg_copy(r, i, 0, e.phone, sizeof e.phone);
      pg_copy(r, i, 1, e.reason, sizeof e.reason);
      pg_copy(r, i, 2, e.channel, sizeof e.channel);
      e.at = pg_int(r, i, 3);
      snprintf(cur, sizeof cur, "%s", e.phone);
      seen++;
      stop = fn(arg, &e);
    }
    PQclear(r);
    if (stop) return stop;
    if (left > 0) left -= rows;
    if (phone || rows < want || left == 0) break;
  }
  return phone && seen == 0 ? KK_ENOENT : 0;
}

int pg_consent_each(struct store *s, void *rd, int64_t account_id, const char *phone,
                    store_consent_fn fn, void *arg) {
  (void)s;
  char cur_phone[16] = "";
  int64_t cur_id = 0;
  int seen = 0;
  for (;;) {
    struct pg_params p = {0};
    pg_p_int(&p, account_id);
    pg_p_text(&p, phone ? phone : cur_phone);
    pg_p_int(&p, cur_id);
    pg_p_int(&p, PAGE);
    int rc;
    PGresult *r = pg_read(rd,
                          phone ? "SELECT " CONSENT_COLS " FROM consents WHERE"
                                  " account_id=$1::bigint AND phone=$2 AND id>$3::bigint"
                                  " ORDER BY id LIMIT $4::int"
                                : "SELECT " CONSENT_COLS " FROM consents WHERE"
                                  " account_id=$1::bigint AND (phone COLLATE \"C\",id)>($2,"
                                  "$3::bigint) ORDER BY phone COLLATE \"C\",id LIMIT $4::int",
                          &p, &rc);
    if (r == NULL) return KK_ESTORE;
    int rows = PQntuples(r), stop = 0;
    for (int i = 0; i < rows && !stop; i++) {
      struct store_consent c;
      memset(&c, 0, sizeof c);
      c.id = pg_int(r, i, 0);
      pg_copy(r, i, 1, c.phone, sizeof c.phone);
      pg_copy(r, i, 2, c.channel, sizeof c.channel);
      pg_copy(r, i, 3, c.source, sizeof c.source);
      const char *t = pg_text(r, i, 4);
      c.text = kk_xstrdup(t ? t : "");
      pg_copy(r, i, 5, c.ip, sizeof c.ip);
      c.at = pg_int(r, i, 6);
      c.recorded_at = pg_int(r, i, 7);
      c.withdrawn_at = pg_int(r, i, 8);
      pg_copy(r, i, 9, c.withdrawn_by, sizeof c.withdrawn_by);
      snprintf(cur_phone, sizeof cur_phone, "%s", c.phone);
      cur_id = c.id;
      seen++;
      stop = fn(arg, &c);
      free(c.text);
    }
    PQclear(r);
    if (stop) return stop;
    if (rows < PAGE) break;
  }
  return phone && seen == 0 ? KK_ENOENT : 0;
}

/* ---- inbound numbers and bots ------------------------------------------------ */

int pg_inbound_set(struct store *s, struct store_op *op) {
  struct store_inbound_set *set = op->data;
  struct pg_conn *w = &PG(s)->w;
  struct pg_params p = {0};
  pg_p_int(&p, set->account_id);
  int rc = pg_cmd(w, "DELETE FROM inbound_owners WHERE account_id=$1::bigint", &p);
  for (int i = 0; rc == 0 && i < set->n; i++) {
    struct pg_params q = {0};
    pg_p_text(&q, set->rows[i].kind);
    pg_p_text(&q, set->rows[i].address);
    pg_p_int(&q, set->account_id);
    pg_p_int(&q, set->at);
    rc = pg_cmd(w,
                "INSERT INTO inbound_owners(kind,address,account_id,created_at)"
                " VALUES($1,$2,$3::bigint,$4::bigint) ON CONFLICT(kind,address)"
                " DO UPDATE SET account_id=excluded.account_id",
                &q);
  }
  return rc;
}

int pg_inbound_owned(struct store *s, void *rd, int64_t account_id,
                     struct store_inbound_owned *out, int max, int *n) {
  (void)s;
  struct pg_params p = {0};
  pg_p_int(&p, account_id);
  pg_p_int(&p, max);
  int rc;
  PGresult *r = pg_read(rd,
                        "SELECT kind,address FROM inbound_owners WHERE account_id=$1::bigint"
                        " ORDER BY kind COLLATE \"C\",address COLLATE \"C\" LIMIT $2::int",
                        &p, &rc);
  *n = 0;
  if (r == NULL) return KK_ESTORE;
  for (int i = 0; i < PQntuples(r) && i < max; i++) {
    pg_copy(r, i, 0, out[i].kind, sizeof out[i].kind);
    pg_copy(r, i, 1, out[i].address, sizeof out[i].address);
    (*n)++;
  }
  PQclear(r);
  return 0;
}

/* ---- unsubscribe links -------------------------------------------------------- */

int pg_unsub_put(struct store *s, struct store_op *op) {
  const struct store_unsub *u = op->data;
  struct pg_params p = {0};
  pg_p_text(&p, u->code);
  pg_p_int(&p, u->account_id);
  pg_p_text(&p, u->phone);
  pg_p_int(&p, u->at);
  return pg_cmd(&PG(s)->w,
                "INSERT INTO unsubscribe_codes(code,account_id,phone,created_at)"
                " VALUES($1,$2::bigint,$3,$4::bigint) ON CONFLICT(code) DO NOTHING",
                &p);
}

int pg_unsub_get(struct store *s, void *rd, const char *code, int64_t *account, char phone[16]) {
  (void)s;
  struct pg_params p = {0};
  pg_p_text(&p, code);
  int rc;
  PGresult *r = pg_read(rd, "SELECT account_id,phone FROM unsubscribe_codes WHERE code=$1", &p,
                        &rc);
  if (r == NULL) return KK_ESTORE;
  rc = PQntuples(r) > 0 ? 0 : KK_ENOENT;
  if (rc == 0) {
    *account = pg_int(r, 0, 0);
    pg_copy(r, 0, 1, phone, 16);
  }
  PQclear(r);
  return rc;
}
