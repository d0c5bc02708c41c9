/*
 * pg_contact.c - contacts, lists and imports in the PostgreSQL backend (see
 * store_contact.h; the tables of migration 5, pg_schema.c): the writes on
 * the writer thread, the reads on the pool's connections. Long reads (an
 * export, an import's refused rows) go page by page over the primary key,
 * so that no result holds more than a page.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "contact/contact_filter.h"
#include "core/kk_err.h"
#include "core/kk_log.h"
#include "core/kk_mem.h"
#include "store/pg/pg_int.h"

#define PAGE 1000   /* rows of one page of a long read */
#define LOGCTX "store"

/* "" is SQL NULL: an absent field. */
static void p_opt_text(struct pg_params *p, const char *s) { pg_p_text(p, s && *s ? s : NULL); }

/* $1 account, $2 phone, $3 name, $4 email, $5 timezone, $6 its source,
   $7 operator, $8 region, $9 vk_id, $10 telegram_chat_id, $11 viber_id,
   $12 attrs, $13 consent, $14 its source, $15 its time, $16 import; the
   time is the server's. The first CTE sees the row as it was. */
#define CT_UPSERT                                                              \
  "WITH old AS (SELECT import_id FROM contacts WHERE account_id=$1::bigint"     \
  " AND phone=$2), up AS (INSERT INTO contacts(account_id,phone,name,email,"   \
  "timezone,timezone_source,operator,region,vk_id,telegram_chat_id,viber_id,"  \
  "attrs,consent,consent_source,consent_at,import_id,created_at,updated_at)"   \
  " VALUES($1::bigint,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12::jsonb,$13::int,$14," \
  "$15::bigint,$16::bigint," PG_NOW_MS "," PG_NOW_MS ")"                        \
  " ON CONFLICT(account_id,phone) DO UPDATE SET "
#define CT_UPSERT_END                                                          \
  " RETURNING 1) SELECT (SELECT import_id FROM old), EXISTS(SELECT 1 FROM old)," \
  " (SELECT COUNT(*) FROM up)"

static const char merge_sql[] =
    CT_UPSERT
    "name=COALESCE(excluded.name,contacts.name),"
    " email=COALESCE(excluded.email,contacts.email),"
    " timezone=CASE WHEN excluded.timezone_source='explicit'"
    " OR contacts.timezone_source<>'explicit' THEN excluded.timezone"
    " ELSE contacts.timezone END,"
    " timezone_source=CASE WHEN excluded.timezone_source='explicit'"
    " OR contacts.timezone_source<>'explicit' THEN excluded.timezone_source"
    " ELSE contacts.timezone_source END,"
    " operator=COALESCE(excluded.operator,contacts.operator),"
    " region=COALESCE(excluded.region,contacts.region),"
    " vk_id=COALESCE(excluded.vk_id,contacts.vk_id),"
    " telegram_chat_id=COALESCE(excluded.telegram_chat_id,contacts.telegram_chat_id),"
    " viber_id=COALESCE(excluded.viber_id,contacts.viber_id),"
    " attrs=CASE WHEN excluded.attrs IS NULL THEN contacts.attrs"
    " WHEN contacts.attrs IS NULL THEN excluded.attrs"
    " ELSE contacts.attrs || excluded.attrs END,"
    " consent=COALESCE(excluded.consent,contacts.consent),"
    " consent_source=COALESCE(excluded.consent_source,contacts.consent_source),"
    " consent_at=COALESCE(excluded.consent_at,contacts.consent_at),"
    " import_id=COALESCE(excluded.import_id,contacts.import_id),"
    " updated_at=excluded.updated_at" CT_UPSERT_END;

static const char replace_sql[] =
    CT_UPSERT
    "name=excluded.name, email=excluded.email, timezone=excluded.timezone,"
    " timezone_source=excluded.timezone_source, operator=excluded.operator,"
    " region=excluded.region, vk_id=excluded.vk_id,"
    " telegram_chat_id=excluded.telegram_chat_id, viber_id=excluded.viber_id,"
    " attrs=excluded.attrs, consent=excluded.consent,"
    " consent_source=excluded.consent_source, consent_at=excluded.consent_at,"
    " updated_at=excluded.updated_at" CT_UPSERT_END;

static void contact_params(struct pg_params *p, int64_t account_id,
                           const struct store_contact *c, int64_t import_id) {
  pg_p_int(p, account_id);
  pg_p_text(p, c->phone);
  p_opt_text(p, c->name);
  p_opt_text(p, c->email);
  p_opt_text(p, c->timezone);
  pg_p_text(p, c->tz_source[0] ? c->tz_source : "default");
  p_opt_text(p, c->operator_name);
  p_opt_text(p, c->region);
  p_opt_text(p, c->vk_id);
  p_opt_text(p, c->telegram_chat_id);
  p_opt_text(p, c->viber_id);
  p_opt_text(p, c->attrs && strcmp(c->attrs, "{}") != 0 ? c->attrs : NULL);
  if (c->consent >= 0) pg_p_int(p, c->consent);
  else pg_p_text(p, NULL);
  p_opt_text(p, c->consent_source);
  pg_p_opt(p, c->consent_at);
  pg_p_opt(p, import_id);
}

static int write_one(struct pg_conn *w, struct store_contact_batch *b,
                     const struct store_contact *c) {
  struct pg_params p = {0};
  contact_params(&p, b->account_id, c, b->import_id);
  int rc;
  PGresult *r = pg_query(w, b->mode == STORE_CONTACT_REPLACE ? replace_sql : merge_sql, &p, &rc);
  if (r == NULL) return rc;
  int64_t seen_import = pg_int(r, 0, 0);
  int existed = strcmp(PQgetvalue(r, 0, 1), "t") == 0;
  PQclear(r);
  if (!existed) b->created++;
  else if (b->import_id && seen_import == b->import_id) b->duplicates++;
  else b->updated++;
  if (b->mode == STORE_CONTACT_REPLACE && existed) {
    struct pg_params q = {0};
    pg_p_int(&q, b->account_id);
    pg_p_text(&q, c->phone);
    if ((rc = pg_cmd(w, "DELETE FROM contact_lists WHERE account_id=$1::bigint AND phone=$2",
                     &q)) != 0)
      return rc;
  }
  for (int i = 0; i < c->nlists && i < STORE_CONTACT_LISTS_MAX; i++) {
    struct pg_params q = {0};
    pg_p_int(&q, b->account_id);
    pg_p_text(&q, c->lists[i]);
    pg_p_text(&q, c->phone);
    if ((rc = pg_cmd(w,
                     "INSERT INTO contact_lists(account_id,list,phone)"
                     " VALUES($1::bigint,$2,$3) ON CONFLICT DO NOTHING",
                     &q)) != 0)
      return rc;
  }
  return 0;
}

/* An import's step: its refused rows (up to the bound) and its counts. */
static int import_step(struct pg_conn *w, struct store_contact_batch *b) {
  struct pg_params p = {0};
  pg_p_int(&p, b->import_id);
  int rc;
  PGresult *r = pg_query(w, "SELECT errors_kept FROM imports WHERE id=$1::bigint FOR UPDATE", &p,
                         &rc);
  if (r == NULL) return rc;
  if (PQntuples(r) == 0) {
    PQclear(r);
    return KK_ENOENT;
  }
  int64_t kept = pg_int(r, 0, 0);
  PQclear(r);
  /* the refused rows kept, with one statement */
  int added = 0;
  if (b->nerrs > 0 && kept < STORE_IMPORT_ERRORS_MAX) {
    struct pg_rows *rows = kk_xcalloc(1, sizeof *rows);
    pg_rows_int(rows, 0, b->import_id);
    pg_rows_int(rows, 1, kept);
    for (int i = 0; i < b->nerrs && kept + added < STORE_IMPORT_ERRORS_MAX; i++, added++) {
      pg_rows_int(rows, 2, b->errs[i].line);
      pg_rows_text(rows, 3, b->errs[i].reason);
      pg_rows_text(rows, 4, b->errs[i].raw ? b->errs[i].raw : "");
    }
    r = pg_rows_run(w, rows,
                    "INSERT INTO import_errors(import_id,n,line,reason,raw)"
                    " SELECT ($1::bigint[])[1],($2::bigint[])[1]+o-1,l,re,raw FROM"
                    " unnest($3::bigint[],$4::text[],$5::text[]) WITH ORDINALITY AS t(l,re,raw,o)",
                    5, &rc);
    pg_rows_free(rows);
    free(rows);
    if (r == NULL) return rc;
    PQclear(r);
  }
  struct pg_params q = {0};
  int64_t v[] = {b->rows_read,  b->created, b->updated, b->nerrs,      b->duplicates,
                 b->offset,     added,      b->import_id, b->rows_before};
  for (int i = 0; i < 9; i++) pg_p_int(&q, v[i]);
  r = pg_query(w,
               "UPDATE imports SET rows_done=rows_done+$1::bigint, created=created+$2::bigint,"
               " updated=updated+$3::bigint, rejected=rejected+$4::bigint,"
               " duplicates=duplicates+$5::bigint, bytes_done=$6::bigint,"
               " bytes_total=GREATEST(bytes_total,$6::bigint),"
               " errors_kept=errors_kept+$7::bigint, updated_at=" PG_NOW_MS
               " WHERE id=$8::bigint AND status='running' AND rows_done=$9::bigint"
               " RETURNING 1",
               &q, &rc);
  if (r == NULL) return rc;
  int n = PQntuples(r);
  PQclear(r);
  /* an import no longer running, or whose batch before did not commit,
     takes no rows */
  return n == 1 ? 0 : KK_ENOENT;
}

/* ---- a batch of contacts, a few statements for all of it ---------------------- */

/* The upsert of many contacts, each a row of the arrays $3.. (one phone
   once): $1[1] the account, $2[1] the import (NULL: none). Answers each
   row's place, the import that wrote it last and whether it was there. */
#define CT_MANY(set)                                                              \
  "WITH v AS (SELECT * FROM unnest($3::text[],$4::text[],$5::text[],$6::text[],"   \
  "$7::text[],$8::text[],$9::text[],$10::text[],$11::text[],$12::text[],$13::text[]," \
  "$14::int[],$15::text[],$16::bigint[]) WITH ORDINALITY AS t(phone,name,email,"    \
  "timezone,tz_source,operator,region,vk_id,telegram_chat_id,viber_id,attrs,consent," \
  "consent_source,consent_at,ord)),"                                                \
  " old AS (SELECT c.phone,c.import_id FROM contacts c WHERE"                       \
  " c.account_id=($1::bigint[])[1] AND c.phone IN (SELECT phone FROM v)),"          \
  " up AS (INSERT INTO contacts(account_id,phone,name,email,timezone,"             \
  "timezone_source,operator,region,vk_id,telegram_chat_id,viber_id,attrs,consent,"  \
  "consent_source,consent_at,import_id,created_at,updated_at)"                     \
  " SELECT ($1::bigint[])[1],phone,name,email,timezone,tz_source,operator,region,"  \
  "vk_id,telegram_chat_id,viber_id,attrs::jsonb,consent,consent_source,consent_at," \
  "($2::bigint[])[1]," PG_NOW_MS "," PG_NOW_MS " FROM v ORDER BY phone"            \
  " ON CONFLICT(account_id,phone) DO UPDATE SET " set " RETURNING 1)"               \
  " SELECT v.ord,old.import_id,(old.phone IS NOT NULL)::int FROM v"                 \
  " LEFT JOIN old ON old.phone=v.phone"

/* What an existing contact keeps (merge) or loses (replace): as merge_sql
   and replace_sql, after their "SET". */
#define CT_SET_MERGE (sizeof CT_UPSERT - 1)

static const char *set_of(const char *one) { return one + CT_SET_MERGE; }

/* The upsert text of mode with the batch form (built once per mode). */
static const char *many_sql(int replace) {
  static char sql[2][4096];
  char *out = sql[replace];
  if (out[0] == '\0') {
    const char *set = set_of(replace ? replace_sql : merge_sql);
    size_t n = strlen(set) - (sizeof CT_UPSERT_END - 1);   /* without the single form's end */
    snprintf(out, sizeof sql[0], CT_MANY("%.*s"), (int)n, set);
  }
  return out;
}

/* Writes rows[idx[0..n-1]] (no phone twice) with one upsert, then their
   lists; counts created, updated and duplicates. 0 or the failure. */
static int write_round(struct pg_conn *w, struct store_contact_batch *b, const int *idx, int n,
                       struct pg_rows *r) {
  int replace = b->mode == STORE_CONTACT_REPLACE;
  pg_rows_clear(r);
  pg_rows_int(r, 0, b->account_id);
  pg_rows_opt(r, 1, b->import_id);
  for (int k = 0; k < n; k++) {
    const struct store_contact *c = &b->rows[idx[k]];
    const char *text[] = {c->phone, c->name, c->email, c->timezone, NULL, c->operator_name,
                          c->region, c->vk_id, c->telegram_chat_id, c->viber_id};
    for (int i = 0; i < 10; i++) {
      if (i == 4) pg_rows_text(r, 6, c->tz_source[0] ? c->tz_source : "default");
      else pg_rows_text(r, 2 + i, text[i][0] ? text[i] : NULL);
    }
    pg_rows_text(r, 12, c->attrs && c->attrs[0] && strcmp(c->attrs, "{}") != 0 ? c->attrs : NULL);
    if (c->consent >= 0) pg_rows_int(r, 13, c->consent);
    else pg_rows_text(r, 13, NULL);
    pg_rows_text(r, 14, c->consent_source[0] ? c->consent_source : NULL);
    pg_rows_opt(r, 15, c->consent_at);
    pg_rows_end(r);
  }
  int rc;
  PGresult *res = pg_rows_run(w, r, many_sql(replace), 16, &rc);
  if (res == NULL) return rc;
  int nres = PQntuples(res);
  /* phones of contacts that were there: their lists go (replace) */
  for (int i = 0; i < nres; i++) {
    int existed = (int)pg_int(res, i, 2);
    int64_t seen_import = pg_int(res, i, 1);
    if (!existed) b->created++;
    else if (b->import_id && seen_import == b->import_id) b->duplicates++;
    else b->updated++;
    int64_t ord = pg_int(res, i, 0);
    if (replace && existed && ord >= 1 && ord <= n) {
      pg_rows_text(r, 0, b->rows[idx[ord - 1]].phone);
      pg_rows_end(r);
    }
  }
  PQclear(res);
  if (r->n > 0) {
    pg_rows_int(r, 1, b->account_id);
    res = pg_rows_run(w, r,
                      "DELETE FROM contact_lists WHERE account_id=($2::bigint[])[1]"
                      " AND phone=ANY($1::text[])",
                      2, &rc);
    if (res == NULL) return rc;
    PQclear(res);
  }
  pg_rows_int(r, 0, b->account_id);
  for (int k = 0; k < n; k++) {
    const struct store_contact *c = &b->rows[idx[k]];
    for (int i = 0; i < c->nlists && i < STORE_CONTACT_LISTS_MAX; i++) {
      pg_rows_text(r, 1, c->lists[i]);
      pg_rows_text(r, 2, c->phone);
    }
  }
  if (r->col[1].len == 0) {
    pg_rows_clear(r);
    return 0;
  }
  res = pg_rows_run(w, r,
                    "INSERT INTO contact_lists(account_id,list,phone)"
                    " SELECT ($1::bigint[])[1],l,p FROM unnest($2::text[],$3::text[]) AS t(l,p)"
                    " ORDER BY p,l ON CONFLICT DO NOTHING",
                    3, &rc);
  if (res == NULL) return rc;
  PQclear(res);
  return 0;
}

/* The round of each row: how many rows before it have its phone (a phone
   twice in a batch is written twice, in order: the later values win). */
static int rounds_of(const struct store_contact_batch *b, int *round) {
  int cap = 1;
  while (cap < 2 * b->n) cap <<= 1;
  int *slot = kk_xmalloc((size_t)cap * sizeof *slot);   /* row index + 1, 0: empty */
  memset(slot, 0, (size_t)cap * sizeof *slot);
  int most = 0;
  for (int i = 0; i < b->n; i++) {
    const char *ph = b->rows[i].phone;
    uint32_t h = 2166136261u;
    for (const char *p = ph; *p; p++) h = (h ^ (uint8_t)*p) * 16777619u;
    uint32_t at = h & (uint32_t)(cap - 1);
    round[i] = 0;
    /* the last row of this phone so far, if any: one more than its round */
    while (slot[at] && strcmp(b->rows[slot[at] - 1].phone, ph) != 0) at = (at + 1) & (uint32_t)(cap - 1);
    if (slot[at]) round[i] = round[slot[at] - 1] + 1;
    slot[at] = i + 1;
    if (round[i] > most) most = round[i];
  }
  free(slot);
  return most + 1;
}

int pg_contact_write(struct store *s, struct store_op *op) {
  struct store_contact_batch *b = op->data;
  b->created = b->updated = b->duplicates = 0;
  if (b->n < 0 || b->n > STORE_CONTACT_BATCH_MAX) return KK_EINVAL;
  if (b->n == 1) {
    int rc = write_one(&PG(s)->w, b, &b->rows[0]);
    if (rc == 0) rc = pg_consent_of_contact(s, b->account_id, &b->rows[0], store_now_ms());
    if (rc != 0) return rc;
    return b->import_id ? import_step(&PG(s)->w, b) : 0;
  }
  int rc = 0;
  if (b->n > 1) {
    int *round = kk_xmalloc((size_t)b->n * sizeof *round);
    int *idx = kk_xmalloc((size_t)b->n * sizeof *idx);
    struct pg_rows *r = kk_xcalloc(1, sizeof *r);
    int rounds = rounds_of(b, round);
    /* the contacts, then their consent columns, each round in order */
    for (int pass = 0; pass < 2; pass++) {
      int64_t now = store_now_ms();
      for (int k = 0; k < rounds && rc == 0; k++) {
        int n = 0;
        for (int i = 0; i < b->n; i++)
          if (round[i] == k) idx[n++] = i;
        rc = pass == 0 ? write_round(&PG(s)->w, b, idx, n, r)
                       : pg_consent_of_contacts(s, b->account_id, b->rows, idx, n, now, r);
      }
    }
    pg_rows_free(r);
    free(r);
    free(idx);
    free(round);
  }
  if (rc != 0) return rc;
  return b->import_id ? import_step(&PG(s)->w, b) : 0;
}

int pg_contact_delete(struct store *s, struct store_op *op) {
  struct store_contact_key *k = op->data;
  struct pg_params p = {0};
  pg_p_int(&p, k->account_id);
  pg_p_text(&p, k->phone);
  int rc;
  PGresult *r = pg_query(&PG(s)->w,
                         "DELETE FROM contacts WHERE account_id=$1::bigint AND phone=$2"
                         " RETURNING 1",
                         &p, &rc);
  if (r == NULL) return rc;
  int n = PQntuples(r);
  PQclear(r);
  if (n == 0) return KK_ENOENT;
  return pg_cmd(&PG(s)->w, "DELETE FROM contact_lists WHERE account_id=$1::bigint AND phone=$2",
                &p);
}

static int import_start(struct pg_conn *w, struct store_import_op *o) {
  struct store_import *m = &o->imp;
  struct pg_params p = {0};
  pg_p_int(&p, m->account_id);
  p_opt_text(&p, m->list);
  pg_p_text(&p, m->file);
  pg_p_int(&p, m->bytes_total);
  int rc;
  PGresult *r = pg_query(w,
                         "INSERT INTO imports(account_id,status,list,file,bytes_total,"
                         "created_at,updated_at) VALUES($1::bigint,'running',$2,$3,$4::bigint,"
                         PG_NOW_MS "," PG_NOW_MS ") RETURNING id,created_at",
                         &p, &rc);
  if (r == NULL) return rc;
  m->id = pg_int(r, 0, 0);
  m->created_at = m->updated_at = pg_int(r, 0, 1);
  PQclear(r);
  snprintf(m->status, sizeof m->status, "running");
  struct pg_params q = {0};
  pg_p_int(&q, m->account_id);
  pg_p_int(&q, STORE_IMPORTS_KEPT);
  r = pg_query(w,
               "DELETE FROM imports WHERE id IN (SELECT id FROM imports"
               " WHERE account_id=$1::bigint ORDER BY id DESC LIMIT 50 OFFSET $2::bigint)"
               " RETURNING id,file",
               &q, &rc);
  if (r == NULL) return rc;
  o->nremoved = 0;
  for (int i = 0; i < PQntuples(r) && o->nremoved < STORE_IMPORTS_KEPT; i++) {
    struct pg_params e = {0};
    pg_p_int(&e, pg_int(r, i, 0));
    if ((rc = pg_cmd(w, "DELETE FROM import_errors WHERE import_id=$1::bigint", &e)) != 0) {
      PQclear(r);
      return rc;
    }
    pg_copy(r, i, 1, o->removed_file[o->nremoved], sizeof o->removed_file[0]);
    o->nremoved++;
  }
  PQclear(r);
  return 0;
}

int pg_import_change(struct store *s, struct store_op *op) {
  struct store_import_op *o = op->data;
  struct pg_conn *w = &PG(s)->w;
  struct pg_params p = {0};
  switch (o->what) {
  case STORE_IMPORT_START:
    return import_start(w, o);
  case STORE_IMPORT_FINISH:
    pg_p_text(&p, o->imp.status);
    p_opt_text(&p, o->imp.error);
    pg_p_int(&p, o->imp.id);
    return pg_cmd(w,
                  "UPDATE imports SET status=$1, error=$2, rows_total=rows_done,"
                  " updated_at=" PG_NOW_MS " WHERE id=$3::bigint AND status='running'",
                  &p);
  default:
    pg_p_text(&p, o->imp.error[0] ? o->imp.error : "interrupted: kaskad stopped");
    return pg_cmd(w,
                  "UPDATE imports SET status='failed', error=$1, rows_total=rows_done,"
                  " updated_at=" PG_NOW_MS " WHERE status='running'",
                  &p);
  }
}

/* ---- reads ------------------------------------------------------------------ */

#define CONTACT_FIELDS                                                         \
  "SELECT c.phone,c.name,c.email,c.timezone,c.timezone_source,c.operator,"     \
  "c.region,c.vk_id,c.telegram_chat_id,c.viber_id,c.attrs::text,c.consent,"    \
  "c.consent_source,c.consent_at,c.stop_listed,c.created_at,c.updated_at,"
#define CONTACT_SEL                                                            \
  CONTACT_FIELDS "array_to_json(ARRAY(SELECT l.list FROM contact_lists l"      \
  " WHERE l.account_id=c.account_id AND l.phone=c.phone ORDER BY l.list"       \
  " COLLATE \"C\" LIMIT 32))::text"

static void contact_row(const PGresult *r, int i, struct store_contact *c) {
  memset(c, 0, sizeof *c);
  pg_copy(r, i, 0, c->phone, sizeof c->phone);
  pg_copy(r, i, 1, c->name, sizeof c->name);
  pg_copy(r, i, 2, c->email, sizeof c->email);
  pg_copy(r, i, 3, c->timezone, sizeof c->timezone);
  pg_copy(r, i, 4, c->tz_source, sizeof c->tz_source);
  pg_copy(r, i, 5, c->operator_name, sizeof c->operator_name);
  pg_copy(r, i, 6, c->region, sizeof c->region);
  pg_copy(r, i, 7, c->vk_id, sizeof c->vk_id);
  pg_copy(r, i, 8, c->telegram_chat_id, sizeof c->telegram_chat_id);
  pg_copy(r, i, 9, c->viber_id, sizeof c->viber_id);
  if (!PQgetisnull(r, i, 10)) c->attrs = kk_xstrdup(PQgetvalue(r, i, 10));
  c->consent = PQgetisnull(r, i, 11) ? -1 : (int)pg_int(r, i, 11);
  pg_copy(r, i, 12, c->consent_source, sizeof c->consent_source);
  c->consent_at = pg_int(r, i, 13);
  c->stop_listed = (int)pg_int(r, i, 14);
  c->created_at = pg_int(r, i, 15);
  c->updated_at = pg_int(r, i, 16);
  json_t *a = json_loads(PQgetvalue(r, i, 17), 0, NULL);
  size_t k;
  json_t *v;
  json_array_foreach(a, k, v) {
    if (c->nlists >= STORE_CONTACT_LISTS_MAX || !json_is_string(v)) break;
    snprintf(c->lists[c->nlists++], sizeof c->lists[0], "%s", json_string_value(v));
  }
  json_decref(a);
}

int pg_contact_get(struct store *s, void *rd, int64_t account_id, const char *phone,
                   struct store_contact *out) {
  (void)s;
  struct pg_params p = {0};
  pg_p_int(&p, account_id);
  pg_p_text(&p, phone);
  int rc;
  PGresult *r =
      pg_read(rd, CONTACT_SEL " FROM contacts c WHERE c.account_id=$1::bigint AND c.phone=$2",
              &p, &rc);
  if (r == NULL) return KK_ESTORE;
  rc = PQntuples(r) == 1 ? 0 : KK_ENOENT;
  if (rc == 0) contact_row(r, 0, out);
  PQclear(r);
  return rc;
}

/* A statement whose text params are head's (n, values; NULL: SQL NULL)
   followed by cond's condition (with skip, a node of it, taken as true:
   contact_filter_sql_but): head, " AND " cond, tail. NULL with *rc
   (KK_ETIMEDOUT when the statement timeout cut it) or the result, whose
   status is want (PGRES_TUPLES_OK: a query; PGRES_COMMAND_OK: a cursor's
   declaration). */
static PGresult *filtered_exec(struct pg_conn *c, const char *head, const char *tail, int n,
                               const char *const *vals, const struct cf_node *cond,
                               const struct cf_node *skip, ExecStatusType want, int *rc) {
  enum { SQL_CAP = 32768, CF_PARAMS = 1200 };
  char *sql = kk_xmalloc(SQL_CAP);
  struct cf_param *cp = kk_xcalloc(CF_PARAMS, sizeof *cp);
  const char **v = kk_xcalloc((size_t)n + CF_PARAMS, sizeof *v);
  char (*num)[32] = kk_xcalloc(CF_PARAMS, sizeof *num);
  PGresult *r = NULL;
  int np = 0;
  size_t hl = strlen(head);
  memcpy(sql, head, hl + 1);
  *rc = 0;
  if (cond) {
    memcpy(sql + hl, " AND ", 6);
    hl += 5;
    *rc = contact_filter_sql_but(cond, skip, CF_POSTGRES, n + 1, sql + hl,
                                 SQL_CAP - hl - strlen(tail) - 1, cp, CF_PARAMS, &np);
    hl += strlen(sql + hl);
  }
  snprintf(sql + hl, SQL_CAP - hl, "%s", tail);
  for (int i = 0; i < n; i++) v[i] = vals[i];
  for (int i = 0; i < np; i++) {
    if (cp[i].is_num) {
      snprintf(num[i], sizeof num[i], "%.17g", cp[i].num);
      v[n + i] = num[i];
    } else {
      v[n + i] = cp[i].str;
    }
  }
  if (*rc == 0 && pg_conn_ensure(c) != 0) *rc = KK_ESTORE;
  if (*rc == 0) {
    r = PQexecParams(c->db, sql, n + np, NULL, v, NULL, NULL, 0);
    if (PQresultStatus(r) != want) {
      const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
      snprintf(c->sqlstate, sizeof c->sqlstate, "%s", state ? state : "");
      *rc = state && strcmp(state, "57014") == 0 ? KK_ETIMEDOUT : KK_ESTORE;
      if (*rc == KK_ESTORE) kk_error(LOGCTX, "a filter's query: %s", PQerrorMessage(c->db));
      PQclear(r);
      r = NULL;
    }
  }
  free(num);
  free(v);
  free(cp);
  free(sql);
  return r;
}

static PGresult *filtered_read(struct pg_conn *c, const char *head, const char *tail, int n,
                               const char *const *vals, const struct cf_node *cond,
                               const struct cf_node *skip, int *rc) {
  return filtered_exec(c, head, tail, n, vals, cond, skip, PGRES_TUPLES_OK, rc);
}

#define PAGE_ALL CONTACT_SEL " FROM contacts c WHERE c.account_id=$1::bigint AND c.phone>$2"
#define PAGE_LIST                                                              \
  CONTACT_SEL " FROM contact_lists m JOIN contacts c"                          \
              " ON c.account_id=m.account_id AND c.phone=m.phone"              \
              " WHERE m.account_id=$1::bigint AND m.list=$4 AND m.phone>$2"
/* The whole base: each contact's lists from one pass over the memberships
   in phone order (a merge), not a lookup per contact */
#define PAGE_BASE                                                              \
  CONTACT_FIELDS "COALESCE(g.lists,'[]') FROM contacts c LEFT JOIN"            \
  " (SELECT l.phone,array_to_json((array_agg(l.list ORDER BY l.list"           \
  " COLLATE \"C\"))[1:32])::text AS lists FROM contact_lists l"               \
  " WHERE l.account_id=$1::bigint AND l.phone>$2 GROUP BY l.phone) g"         \
  " ON g.phone=c.phone"                                                        \
  " WHERE c.account_id=$1::bigint AND c.phone>$2"
#define CURSOR_DECLARE "DECLARE kk_contacts NO SCROLL CURSOR FOR "

/* A page of at most max contacts after `after` (in list when not NULL,
   meeting cond when not NULL), read through the list cond names at its top
   when list is NULL: that list's index, not the whole base. max 0: no
   bound, as the cursor kk_contacts (a result without rows). */
static PGresult *contact_page(void *rd, int64_t account_id, const char *list,
                              const struct cf_node *cond, const char *after, int max, int *rc) {
  char acc[24], lim[16];
  snprintf(acc, sizeof acc, "%lld", (long long)account_id);
  snprintf(lim, sizeof lim, "%d", max);
  const struct cf_node *skip;
  list = contact_filter_read_list(list, cond, &skip);
  const char *vals[] = {acc, after, max ? lim : NULL, list};
  const char *head = list ? PAGE_LIST : max == 0 && cond == NULL ? PAGE_BASE : PAGE_ALL;
  const char *tail = list ? " ORDER BY m.phone LIMIT $3::int" : " ORDER BY c.phone LIMIT $3::int";
  if (max > 0) return filtered_read(rd, head, tail, list ? 4 : 3, vals, cond, skip, rc);
  char *decl = kk_xmalloc(sizeof CURSOR_DECLARE + strlen(head));
  snprintf(decl, sizeof CURSOR_DECLARE + strlen(head), CURSOR_DECLARE "%s", head);
  PGresult *r =
      filtered_exec(rd, decl, tail, list ? 4 : 3, vals, cond, skip, PGRES_COMMAND_OK, rc);
  free(decl);
  return r;
}

/* Bounds the reads of a listing or a count on c (ms; 0: none). */
static void read_bound(struct pg_conn *c, int ms) {
  char sql[64];
  snprintf(sql, sizeof sql, "SET statement_timeout = %d", ms);
  int rc;
  PQclear(pg_read(c, sql, NULL, &rc));
}

int pg_contact_list(struct store *s, void *rd, int64_t account_id,
                    const struct store_contact_filter *f, struct store_contact *out, int *n,
                    char next[16]) {
  (void)s;
  char after[16];
  snprintf(after, sizeof after, "%s", f->after);
  int k = 0, examined = 0, rc;
  next[0] = '\0';
  *n = 0;
  if (f->cond) read_bound(rd, STORE_SEGMENT_COUNT_MS);
  while (examined < STORE_LIST_EXAMINE) {
    PGresult *r = contact_page(rd, account_id, f->list, f->cond, after, PAGE, &rc);
    if (r == NULL) {
      for (int i = 0; i < k; i++) store_contact_fini(&out[i]);
      if (f->cond) read_bound(rd, 0);
      return rc;
    }
    int rows = PQntuples(r);
    for (int i = 0; i < rows; i++) {
      const char *phone = PQgetvalue(r, i, 0), *name = PQgetvalue(r, i, 1);
      int match = !f->q || !*f->q || strncmp(phone, f->q, strlen(f->q)) == 0 ||
                  strstr(name, f->q) != NULL;
      if (match) {
        if (k == f->limit) {
          snprintf(next, 16, "%s", out[k - 1].phone);
          PQclear(r);
          *n = k;
          if (f->cond) read_bound(rd, 0);
          return 0;
        }
        contact_row(r, i, &out[k++]);
      }
      snprintf(after, sizeof after, "%s", phone);
      if (++examined >= STORE_LIST_EXAMINE) {
        snprintf(next, 16, "%s", phone);
        break;
      }
    }
    PQclear(r);
    if (rows < PAGE) break;
  }
  *n = k;
  if (f->cond) read_bound(rd, 0);
  return 0;
}

int pg_contact_lists(struct store *s, void *rd, int64_t account_id, store_list_size_fn fn,
                     void *arg) {
  (void)s;
  struct pg_params p = {0};
  pg_p_int(&p, account_id);
  pg_p_int(&p, STORE_LISTS_MAX);
  int rc;
  PGresult *r = pg_read(rd,
                        "SELECT list,COUNT(*) FROM contact_lists WHERE account_id=$1::bigint"
                        " GROUP BY list ORDER BY list COLLATE \"C\" LIMIT $2::int",
                        &p, &rc);
  if (r == NULL) return KK_ESTORE;
  for (int i = 0; i < PQntuples(r); i++) fn(arg, PQgetvalue(r, i, 0), pg_int(r, i, 1));
  PQclear(r);
  return 0;
}

int pg_import_get(struct store *s, void *rd, int64_t account_id, int64_t id,
                  struct store_import *out) {
  (void)s;
  struct pg_params p = {0};
  pg_p_int(&p, id);
  pg_p_int(&p, account_id);
  int rc;
  PGresult *r = pg_read(rd,
                        "SELECT id,account_id,status,list,file,error,bytes_total,bytes_done,"
                        "rows_total,rows_done,created,updated,rejected,duplicates,created_at,"
                        "updated_at FROM imports WHERE id=$1::bigint AND account_id=$2::bigint",
                        &p, &rc);
  if (r == NULL) return KK_ESTORE;
  if (PQntuples(r) != 1) {
    PQclear(r);
    return KK_ENOENT;
  }
  memset(out, 0, sizeof *out);
  out->id = pg_int(r, 0, 0);
  out->account_id = pg_int(r, 0, 1);
  pg_copy(r, 0, 2, out->status, sizeof out->status);
  pg_copy(r, 0, 3, out->list, sizeof out->list);
  pg_copy(r, 0, 4, out->file, sizeof out->file);
  pg_copy(r, 0, 5, out->error, sizeof out->error);
  int64_t *nums[] = {&out->bytes_total, &out->bytes_done, &out->rows_total, &out->rows_done,
                     &out->created,     &out->updated,    &out->rejected,   &out->duplicates,
                     &out->created_at,  &out->updated_at};
  for (int i = 0; i < 10; i++) *nums[i] = pg_int(r, 0, 6 + i);
  PQclear(r);
  return 0;
}

int pg_import_errors(struct store *s, void *rd, int64_t account_id, int64_t id,
                     store_import_error_fn fn, void *arg) {
  struct store_import imp;
  int rc = pg_import_get(s, rd, account_id, id, &imp);
  if (rc != 0) return rc;
  int64_t after = -1;
  for (;;) {
    struct pg_params p = {0};
    pg_p_int(&p, id);
    pg_p_int(&p, after);
    pg_p_int(&p, PAGE);
    PGresult *r = pg_read(rd,
                          "SELECT n,line,reason,raw FROM import_errors WHERE import_id=$1::bigint"
                          " AND n>$2::bigint ORDER BY n LIMIT $3::int",
                          &p, &rc);
    if (r == NULL) return KK_ESTORE;
    int rows = PQntuples(r), stop = 0;
    for (int i = 0; i < rows && !stop; i++) {
      after = pg_int(r, i, 0);
      stop = fn(arg, (long)pg_int(r, i, 1), PQgetvalue(r, i, 2), PQgetvalue(r, i, 3));
    }
    PQclear(r);
    if (stop) return stop;
    if (rows < PAGE) return 0;
  }
}

/* One pass over the contacts in one read-only transaction: a cursor
   fetched PAGE rows at a time, so that a segment's export reads its list's
   index (or the base) once, whatever the number of pages. */
int pg_contacts_each(struct store *s, void *rd, int64_t account_id, const char *list,
                     const char *from, int lists, const struct cf_node *cond,
                     store_contact_fn fn, void *arg) {
  (void)s;
  (void)lists;   /* read with the row here: no query of their own to spare */
  struct pg_conn *c = rd;
  char after[16];
  snprintf(after, sizeof after, "%s", from ? from : "");
  int rc;
  PGresult *r = pg_read(c, "BEGIN READ ONLY", NULL, &rc);
  if (r == NULL) return KK_ESTORE;
  PQclear(r);
  /* the whole result is read: planned for its last row, not its first;
     not compiled (JIT), whose cost a plan over a whole base would call for
     and a scan of indexes does not repay */
  r = pg_query(c, "SET LOCAL cursor_tuple_fraction = 1; SET LOCAL jit = off", NULL, &rc);
  if (r) {
    PQclear(r);
    r = contact_page(c, account_id, list, cond, after, 0, &rc);
  }
  int stop = 0;
  char fetch[48];
  snprintf(fetch, sizeof fetch, "FETCH %d FROM kk_contacts", PAGE);
  while (r != NULL && stop == 0) {
    PQclear(r);
    r = pg_query(c, fetch, NULL, &rc);
    if (r == NULL) break;
    int rows = PQntuples(r);
    for (int i = 0; i < rows && !stop; i++) {
      struct store_contact ct;
      contact_row(r, i, &ct);
      stop = fn(arg, &ct);
      store_contact_fini(&ct);
    }
    if (rows < PAGE && !stop) {
      PQclear(r);
      r = pg_query(c, "COMMIT", NULL, &rc);
      if (r == NULL) break;
      PQclear(r);
      return 0;
    }
  }
  if (r) PQclear(r);
  int end_rc;
  PGresult *e = pg_query(c, "ROLLBACK", NULL, &end_rc);
  if (e) PQclear(e);
  return stop ? stop : rc ? rc : KK_ESTORE;
}

/* ---- segments ------------------------------------------------------------------ */

int pg_segment_put(struct store *s, struct store_op *op) {
  struct store_segment_key *k = op->data;
  struct pg_params p = {0};
  pg_p_int(&p, k->account_id);
  pg_p_text(&p, k->name);
  pg_p_text(&p, k->filter);
  return pg_cmd(&PG(s)->w,
                "INSERT INTO segments(account_id,name,filter,created_at,updated_at)"
                " VALUES($1::bigint,$2,$3," PG_NOW_MS "," PG_NOW_MS ")"
                " ON CONFLICT(account_id,name) DO UPDATE SET filter=excluded.filter,"
                " updated_at=excluded.updated_at",
                &p);
}

int pg_segment_delete(struct store *s, struct store_op *op) {
  struct store_segment_key *k = op->data;
  struct pg_params p = {0};
  pg_p_int(&p, k->account_id);
  pg_p_text(&p, k->name);
  int rc;
  PGresult *r = pg_query(&PG(s)->w,
                         "DELETE FROM segments WHERE account_id=$1::bigint AND name=$2"
                         " RETURNING 1",
                         &p, &rc);
  if (r == NULL) return rc;
  rc = PQntuples(r) == 0 ? KK_ENOENT : 0;
  PQclear(r);
  return rc;
}

static void segment_row(const PGresult *r, int i, struct store_segment *out) {
  memset(out, 0, sizeof *out);
  pg_copy(r, i, 0, out->name, sizeof out->name);
  pg_copy(r, i, 1, out->filter, sizeof out->filter);
  out->created_at = pg_int(r, i, 2);
  out->updated_at = pg_int(r, i, 3);
  out->count = -1;
}

int pg_segment_get(struct store *s, void *rd, int64_t account_id, const char *name,
                   struct store_segment *out) {
  (void)s;
  struct pg_params p = {0};
  pg_p_int(&p, account_id);
  pg_p_text(&p, name);
  int rc;
  PGresult *r = pg_read(rd,
                        "SELECT name,filter,created_at,updated_at FROM segments"
                        " WHERE account_id=$1::bigint AND name=$2",
                        &p, &rc);
  if (r == NULL) return KK_ESTORE;
  rc = PQntuples(r) == 1 ? 0 : KK_ENOENT;
  if (rc == 0) segment_row(r, 0, out);
  PQclear(r);
  return rc;
}

int pg_segments(struct store *s, void *rd, int64_t account_id, store_segment_fn fn, void *arg) {
  (void)s;
  struct pg_params p = {0};
  pg_p_int(&p, account_id);
  pg_p_int(&p, STORE_SEGMENTS_MAX);
  int rc;
  PGresult *r = pg_read(rd,
                        "SELECT name,filter,created_at,updated_at FROM segments"
                        " WHERE account_id=$1::bigint ORDER BY name COLLATE \"C\" LIMIT $2::int",
                        &p, &rc);
  if (r == NULL) return KK_ESTORE;
  struct store_segment sg;
  for (int i = 0; i < PQntuples(r); i++) {
    segment_row(r, i, &sg);
    fn(arg, &sg);
  }
  PQclear(r);
  return 0;
}

int pg_contact_count(struct store *s, void *rd, int64_t account_id, const struct cf_node *cond,
                     int64_t *out) {
  (void)s;
  char acc[24];
  snprintf(acc, sizeof acc, "%lld", (long long)account_id);
  /* a filter that names a list at its top counts that list's members */
  const struct cf_node *skip;
  const char *list = contact_filter_read_list(NULL, cond, &skip);
  const char *vals[] = {acc, list};
  int rc;
  read_bound(rd, STORE_SEGMENT_COUNT_MS);
  PGresult *r =
      list ? filtered_read(rd,
                           "SELECT COUNT(*) FROM contact_lists m JOIN contacts c"
                           " ON c.account_id=m.account_id AND c.phone=m.phone"
                           " WHERE m.account_id=$1::bigint AND m.list=$2",
                           "", 2, vals, cond, skip, &rc)
           : filtered_read(rd, "SELECT COUNT(*) FROM contacts c WHERE c.account_id=$1::bigint",
                           "", 1, vals, cond, NULL, &rc);
  read_bound(rd, 0);
  if (r == NULL) return rc;
  *out = pg_int(r, 0, 0);
  PQclear(r);
  return 0;
}

int pg_contacts_settle(struct store *s, void *rd) {
  (void)s;
  int rc;
  PGresult *r = pg_read(rd, "VACUUM (ANALYZE) contacts, contact_lists", NULL, &rc);
  if (r == NULL) return rc;
  PQclear(r);
  return 0;
}
