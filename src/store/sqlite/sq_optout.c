/*
 * sq_optout.c - the stop-list and consents in the SQLite backend; each
 * change is handed out as a note after its commit (the store keeps both
 * in memory for the policy checks).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/kk_err.h"
#include "core/kk_hash.h"
#include "policy/pol_consent.h"
#include "store/store_contact.h"
#include "store/sqlite/sq_int.h"

static uint32_t channel_bit(const char *channel);

/* The mask of phone's current consents, as the writer sees it now. */
static int current_mask(struct conn *w, int64_t account_id, const char *phone, uint32_t *mask) {
  sqlite3_stmt *st = sq_stmt(w, ST_CS_CURRENT);
  sqlite3_bind_int64(st, 1, account_id);
  sq_bind_text(st, 2, phone);
  int rc;
  *mask = 0;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    const char *ch = (const char *)sqlite3_column_text(st, 0);
    *mask |= channel_bit(ch);
  }
  sqlite3_reset(st);
  return rc == SQLITE_DONE ? 0 : KK_ESTORE;
}

/* The bit of a consent's channel in a mask ("all": every channel). */
static uint32_t channel_bit(const char *channel) {
  return pol_consent_bit(channel && strcmp(channel, "all") != 0 ? channel : "");
}

/* After a change of phone's consents to mask (those current now): its
   note, and the phone's contact follows (yes while one is current;
   recorded: the source and time of rec) unless contact_done (its row was
   just written so). */
static int changed(struct store *s, int64_t account_id, const char *phone,
                   const struct store_consent *rec, uint32_t mask, int contact_done) {
  struct conn *w = &SQ(s)->w;
  store_optout_note_consent(s, account_id, phone, mask);
  if (contact_done) return 0;
  sqlite3_stmt *st = sq_stmt(w, ST_CS_CONTACT);
  sqlite3_bind_int64(st, 1, account_id);
  sq_bind_text(st, 2, phone);
  sqlite3_bind_int(st, 3, mask != 0);
  sq_bind_text(st, 4, rec ? rec->source : NULL);
  if (rec) sqlite3_bind_int64(st, 5, rec->at);
  else sqlite3_bind_null(st, 5);
  return sq_step_done(w, st);
}

/* Withdraws phone's current consents of channel ("all": every one); *n
   the rows changed. */
static int withdraw(struct store *s, int64_t account_id, const char *phone, const char *channel,
                    int64_t at, const char *by, int *n) {
  struct conn *w = &SQ(s)->w;
  sqlite3_stmt *st = sq_stmt(w, ST_CS_WITHDRAW);
  sqlite3_bind_int64(st, 1, account_id);
  sq_bind_text(st, 2, phone);
  sqlite3_bind_int64(st, 3, at);
  sq_bind_text(st, 4, by);
  sq_bind_text(st, 5, channel);
  int rc = sq_step_done(w, st);
  if (rc != 0) return rc;
  *n = sqlite3_changes(w->db);
  if (*n == 0) return 0;
  uint32_t mask;
  rc = current_mask(w, account_id, phone, &mask);
  return rc != 0 ? rc : changed(s, account_id, phone, NULL, mask, 0);
}

/* Records c (its id and recorded_at set); mask: the phone's current
   consents before it; contact_done: as changed(). */
static int record(struct store *s, int64_t account_id, struct store_consent *c, int64_t now,
                  uint32_t mask, int contact_done) {
  struct conn *w = &SQ(s)->w;
  sqlite3_stmt *st = sq_stmt(w, ST_CS_INSERT);
  sqlite3_bind_int64(st, 1, account_id);
  sq_bind_text(st, 2, c->phone);
  sq_bind_text(st, 3, c->channel);
  sq_bind_text(st, 4, c->source);
  sq_bind_text(st, 5, c->text && c->text[0] ? c->text : NULL);
  sq_bind_text(st, 6, c->ip[0] ? c->ip : NULL);
  sqlite3_bind_int64(st, 7, c->at);
  sqlite3_bind_int64(st, 8, now);
  int rc = sq_step_done(w, st);
  if (rc != 0) return rc;
  c->id = sqlite3_last_insert_rowid(w->db);
  c->recorded_at = now;
  return changed(s, account_id, c->phone, c, mask | channel_bit(c->channel), contact_done);
}

/* Records c on top of the phone's consents current now. */
static int record_now(struct store *s, int64_t account_id, struct store_consent *c,
                      int64_t now) {
  uint32_t mask;
  int rc = current_mask(&SQ(s)->w, account_id, c->phone, &mask);
  return rc != 0 ? rc : record(s, account_id, c, now, mask, 0);
}

/* ---- what a write knows of its phones' consents ------------------------------ */

#define KNOW_MIN_ROWS 16        /* smaller writes read each phone */
#define KNOW_SCAN_PER_ROW 2     /* index rows read per contact, at most */

/* The two bits of phone in a Bloom filter of SQ_CONSENT_BLOOM_WORDS. */
static void bloom_bits(const char *phone, uint32_t *b1, uint32_t *b2) {
  uint64_t h = kk_fnv_str(KK_FNV_SEED, phone);
  uint32_t mask = SQ_CONSENT_BLOOM_WORDS * 64 - 1;
  *b1 = (uint32_t)h & mask;
  *b2 = (uint32_t)(h >> 32) & mask;
}

static void bloom_add(struct sq_consent_known *k, const char *phone) {
  uint32_t b1, b2;
  bloom_bits(phone, &b1, &b2);
  k->bits[b1 / 64] |= 1ULL << (b1 % 64);
  k->bits[b2 / 64] |= 1ULL << (b2 % 64);
}

/* Whether phone may have consent records (1 unless k knows it has none). */
static int may_have(const struct sq_consent_known *k, const char *phone) {
  if (k == NULL || !k->known) return 1;
  uint32_t b1, b2;
  bloom_bits(phone, &b1, &b2);
  return (k->bits[b1 / 64] >> (b1 % 64) & 1) && (k->bits[b2 / 64] >> (b2 % 64) & 1);
}

int sq_consent_know(struct store *s, int64_t account_id, const struct store_contact *rows, int n,
                    struct sq_consent_known *k) {
  k->known = 0;
  /* the range of the phones whose consent column is set (those read) */
  const char *lo = NULL, *hi = NULL;
  int m = 0;
  for (int i = 0; i < n; i++) {
    if (rows[i].consent < 0) continue;
    m++;
    if (lo == NULL || strcmp(rows[i].phone, lo) < 0) lo = rows[i].phone;
    if (hi == NULL || strcmp(rows[i].phone, hi) > 0) hi = rows[i].phone;
  }
  if (m < KNOW_MIN_ROWS) return 0;
  memset(k->bits, 0, sizeof k->bits);
  int cap = m * KNOW_SCAN_PER_ROW, got = 0, rc;
  struct conn *w = &SQ(s)->w;
  sqlite3_stmt *st = sq_stmt(w, ST_CS_PHONES);
  sqlite3_bind_int64(st, 1, account_id);
  sq_bind_text(st, 2, lo);
  sq_bind_text(st, 3, hi);
  sqlite3_bind_int(st, 4, cap + 1);
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    got++;
    bloom_add(k, (const char *)sqlite3_column_text(st, 0));
  }
  sqlite3_reset(st);
  if (rc != SQLITE_DONE) return KK_ESTORE;
  k->known = got <= cap;   /* more: too many to be worth it, read each */
  return 0;
}

int sq_consent_plan(struct store *s, int64_t account_id, const struct store_contact *c,
                    int64_t now, const struct sq_consent_known *k, struct sq_contact_consent *p) {
  p->record = 0;
  p->mask = 0;
  if (c->consent != 1) return 0;
  int rc = may_have(k, c->phone) ? current_mask(&SQ(s)->w, account_id, c->phone, &p->mask) : 0;
  if (rc != 0 || (p->mask & POL_CONSENT_ALL)) return rc;   /* one is current already */
  store_consent_of_contact(c, now, &p->rec);
  p->record = 1;
  return 0;
}

int sq_consent_apply(struct store *s, int64_t account_id, const struct store_contact *c,
                     int64_t now, struct sq_consent_known *k, struct sq_contact_consent *p,
                     int contact_done) {
  int n;
  /* a phone without records has none current to withdraw */
  if (c->consent == 0)
    return may_have(k, c->phone) ? withdraw(s, account_id, c->phone, "all", now, "import", &n)
                                 : 0;
  if (!p->record) return 0;
  if (k && k->known) bloom_add(k, c->phone);   /* a later row of the phone reads it */
  return record(s, account_id, &p->rec, now, p->mask, contact_done);
}

int sq_consent_apply_new(struct store *s, int64_t account_id, const struct store_contact *c,
                         int64_t now, struct sq_consent_known *k,
                         const struct sq_contact_consent *p, struct sq_consent_rows *q) {
  if (c->consent != 1 || !p->record) {
    struct sq_contact_consent one = *p;
    return sq_consent_apply(s, account_id, c, now, k, &one, 1);
  }
  if (k && k->known) bloom_add(k, c->phone);
  q->mask[q->n] = p->mask;
  q->rec[q->n++] = p->rec;
  return q->n == SQ_CONSENT_ROWS ? sq_consent_rows_flush(s, account_id, now, q) : 0;
}

int sq_consent_rows_flush(struct store *s, int64_t account_id, int64_t now,
                          struct sq_consent_rows *q) {
  struct conn *w = &SQ(s)->w;
  int rc = 0;
  if (q->n == SQ_CONSENT_ROWS) {
    sqlite3_stmt *st = sq_stmt(w, ST_CS_INSERTN);
    for (int i = 0; i < q->n; i++) {
      const struct store_consent *c = &q->rec[i];
      int at = i * 8;
      sqlite3_bind_int64(st, at + 1, account_id);
      sq_bind_text(st, at + 2, c->phone);
      sq_bind_text(st, at + 3, c->channel);
      sq_bind_text(st, at + 4, c->source);
      sq_bind_text(st, at + 5, c->text && c->text[0] ? c->text : NULL);
      sq_bind_text(st, at + 6, c->ip[0] ? c->ip : NULL);
      sqlite3_bind_int64(st, at + 7, c->at);
      sqlite3_bind_int64(st, at + 8, now);
    }
    rc = sq_step_done(w, st);
    for (int i = 0; rc == 0 && i < q->n; i++)
      rc = changed(s, account_id, q->rec[i].phone, &q->rec[i],
                   q->mask[i] | channel_bit(q->rec[i].channel), 1);
  } else {
    for (int i = 0; rc == 0 && i < q->n; i++)
      rc = record(s, account_id, &q->rec[i], now, q->mask[i], 1);
  }
  q->n = 0;
  return rc;
}

int sq_stop_write(struct store *s, struct store_op *op) {
  struct store_stop_batch *b = op->data;
  struct conn *w = &SQ(s)->w;
  b->changed = 0;
  for (int i = 0; i < b->n; i++) {
    const struct store_stop_row *r = &b->rows[i];
    sqlite3_stmt *st = sq_stmt(w, r->reason[0] ? ST_STOP_PUT : ST_STOP_DEL);
    sqlite3_bind_int64(st, 1, b->account_id);
    sq_bind_text(st, 2, r->phone);
    if (r->reason[0]) {
      sq_bind_text(st, 3, r->reason);
      sq_bind_text(st, 4, r->channel[0] ? r->channel : NULL);
      sqlite3_bind_int64(st, 5, b->at);
    }
    int rc = sq_step_done(w, st);
    if (rc != 0) return rc;
    if (sqlite3_changes(w->db) > 0) {
      b->changed++;
      store_optout_note_stop(s, b->account_id, r->phone, r->reason);
    }
    int n;
    if (r->reason[0] && r->withdraw &&
        (rc = withdraw(s, b->account_id, r->phone, "all", b->at, r->reason, &n)) != 0)
      return rc;
  }
  return 0;
}

int sq_consent_write(struct store *s, struct store_op *op) {
  struct store_consent_op *o = op->data;
  struct store_consent *c = &o->c;
  if (o->withdraw) {
    int n, rc = withdraw(s, o->account_id, c->phone, c->channel, c->withdrawn_at,
                         c->withdrawn_by, &n);
    return rc != 0 ? rc : n == 0 ? KK_ENOENT : 0;
  }
  for (int i = 0; i < o->n; i++) {
    int rc = record_now(s, o->account_id, &o->rows[i], o->now);
    if (rc != 0) return rc;
  }
  return o->n > 0 ? 0 : record_now(s, o->account_id, c, o->now);
}

/* fn(arg, account_id, phone, the third column) for each row of statement id. */
static int rows3(struct store *s, enum stmt_id id,
                 void (*fn)(void *arg, int64_t account_id, const char *phone, const char *v),
                 void *arg) {
  sqlite3_stmt *st = sq_stmt(&SQ(s)->r, id);
  int rc;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW)
    fn(arg, sqlite3_column_int64(st, 0), (const char *)sqlite3_column_text(st, 1),
       (const char *)sqlite3_column_text(st, 2));
  sqlite3_reset(st);
  return rc == SQLITE_DONE ? 0 : KK_ESTORE;
}

int sq_stop_all(struct store *s,
                void (*fn)(void *arg, int64_t account_id, const char *phone, const char *reason),
                void *arg) {
  return rows3(s, ST_STOP_ALL, fn, arg);
}

int sq_consent_all(struct store *s,
                   void (*fn)(void *arg, int64_t account_id, const char *phone,
                              const char *channel),
                   void *arg) {
  return rows3(s, ST_CS_ALL, fn, arg);
}

int sq_stop_each(struct store *s, void *rd, int64_t account_id, const char *phone,
                 const char *after, int limit, store_stop_fn fn, void *arg) {
  (void)s;
  struct conn *c = rd;
  sqlite3_stmt *st = sq_stmt(c, phone ? ST_STOP_ONE : ST_STOP_PAGE);
  sqlite3_bind_int64(st, 1, account_id);
  sq_bind_text(st, 2, phone ? phone : after);
  if (!phone) sqlite3_bind_int64(st, 3, limit > 0 ? limit : -1);
  int rc, stop = 0, rows = 0;
  while (!stop && (rc = sqlite3_step(st)) == SQLITE_ROW) {
    struct store_stop_entry e;
    sq_col_copy(st, 0, e.phone, sizeof e.phone);
    sq_col_copy(st, 1, e.reason, sizeof e.reason);
    sq_col_copy(st, 2, e.channel, sizeof e.channel);
    e.at = sqlite3_column_int64(st, 3);
    rows++;
    stop = fn(arg, &e);
  }
  sqlite3_reset(st);
  if (stop) return stop;
  if (rc != SQLITE_DONE) return KK_ESTORE;
  return phone && rows == 0 ? KK_ENOENT : 0;
}

int sq_consent_each(struct store *s, void *rd, int64_t account_id, const char *phone,
                    store_consent_fn fn, void *arg) {
  (void)s;
  struct conn *c = rd;
  sqlite3_stmt *st = sq_stmt(c, phone ? ST_CS_OF : ST_CS_EACH);
  sqlite3_bind_int64(st, 1, account_id);
  if (phone) sq_bind_text(st, 2, phone);
  int rc, stop = 0, rows = 0;
  while (!stop && (rc = sqlite3_step(st)) == SQLITE_ROW) {
    struct store_consent r;
    memset(&r, 0, sizeof r);
    r.id = sqlite3_column_int64(st, 0);
    sq_col_copy(st, 1, r.phone, sizeof r.phone);
    sq_col_copy(st, 2, r.channel, sizeof r.channel);
    sq_col_copy(st, 3, r.source, sizeof r.source);
    r.text = sq_col_dup(st, 4);
    sq_col_copy(st, 5, r.ip, sizeof r.ip);
    r.at = sqlite3_column_int64(st, 6);
    r.recorded_at = sqlite3_column_int64(st, 7);
    r.withdrawn_at = sqlite3_column_int64(st, 8);
    sq_col_copy(st, 9, r.withdrawn_by, sizeof r.withdrawn_by);
    rows++;
    stop = fn(arg, &r);
    free(r.text);
  }
  sqlite3_reset(st);
  if (stop) return stop;
  if (rc != SQLITE_DONE) return KK_ESTORE;
  return phone && rows == 0 ? KK_ENOENT : 0;
}

/* ---- inbound numbers and bots ------------------------------------------------ */

int sq_inbound_set(struct store *s, struct store_op *op) {
  struct store_inbound_set *set = op->data;
  struct conn *w = &SQ(s)->w;
  sqlite3_stmt *st = sq_stmt(w, ST_IN_OWNER_DEL);
  sqlite3_bind_int64(st, 1, set->account_id);
  int rc = sq_step_done(w, st);
  for (int i = 0; rc == 0 && i < set->n; i++) {
    st = sq_stmt(w, ST_IN_OWNER_PUT);
    sq_bind_text(st, 1, set->rows[i].kind);
    sq_bind_text(st, 2, set->rows[i].address);
    sqlite3_bind_int64(st, 3, set->account_id);
    sqlite3_bind_int64(st, 4, set->at);
    rc = sq_step_done(w, st);
  }
  return rc;
}

int sq_inbound_owned(struct store *s, void *rd, int64_t account_id,
                     struct store_inbound_owned *out, int max, int *n) {
  (void)s;
  sqlite3_stmt *st = sq_stmt(rd, ST_IN_OWNERS_OF);
  sqlite3_bind_int64(st, 1, account_id);
  int rc = SQLITE_DONE;
  *n = 0;
  while (*n < max && (rc = sqlite3_step(st)) == SQLITE_ROW) {
    sq_col_copy(st, 0, out[*n].kind, sizeof out[*n].kind);
    sq_col_copy(st, 1, out[*n].address, sizeof out[*n].address);
    (*n)++;
  }
  sqlite3_reset(st);
  return *n == max || rc == SQLITE_DONE ? 0 : KK_ESTORE;
}

/* ---- unsubscribe links -------------------------------------------------------- */

int sq_unsub_put(struct store *s, struct store_op *op) {
  const struct store_unsub *u = op->data;
  sqlite3_stmt *st = sq_stmt(&SQ(s)->w, ST_UNSUB_PUT);
  sq_bind_text(st, 1, u->code);
  sqlite3_bind_int64(st, 2, u->account_id);
  sq_bind_text(st, 3, u->phone);
  sqlite3_bind_int64(st, 4, u->at);
  return sq_step_done(&SQ(s)->w, st);
}

int sq_unsub_get(struct store *s, void *rd, const char *code, int64_t *account, char phone[16]) {
  (void)s;
  sqlite3_stmt *st = sq_stmt(rd, ST_UNSUB_GET);
  sq_bind_text(st, 1, code);
  int rc = sqlite3_step(st);
  if (rc == SQLITE_ROW) {
    *account = sqlite3_column_int64(st, 0);
    sq_col_copy(st, 1, phone, 16);
  }
  sqlite3_reset(st);
  return rc == SQLITE_ROW ? 0 : rc == SQLITE_DONE ? KK_ENOENT : KK_ESTORE;
}
