/*
 * sq_chan.c - the channel side of the SQLite writer and readers: channel
 * sends that are due, requests marked before they go, provider statuses
 * matched to attempts, statuses and receipts that came before what they are
 * about (capped per scope, expired by time), and when people last wrote to a
 * WhatsApp number. Channel settings, prices and named cascades are in
 * sq_settings.c.
 *
 * What a status means for its message is decided by the cascade's rules
 * (sq_cascade.c, casc_attempt_event).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/kk_err.h"
#include "core/kk_log.h"
#include "core/kk_mem.h"
#include "store/sqlite/sq_int.h"

#define LOGCTX "cascade"

/* ---- operations: channel sends ------------------------------------------- */

static void chan_due_row(sqlite3_stmt *st, struct store_chan_due *d) {
  memset(d, 0, sizeof *d);
  d->attempt_id = sqlite3_column_int64(st, 0);
  d->msg_id = sqlite3_column_int64(st, 1);
  d->account_id = sqlite3_column_int64(st, 2);
  d->scope = sqlite3_column_int64(st, 3);
  sq_col_copy(st, 4, d->channel, sizeof d->channel);
  sq_col_copy(st, 5, d->public_id, sizeof d->public_id);
  sq_col_copy(st, 6, d->to, sizeof d->to);
  sq_col_copy(st, 7, d->address, sizeof d->address);
  sq_col_copy(st, 8, d->msg_class, sizeof d->msg_class);
  d->text = sq_col_dup(st, 9);
  d->extra = sqlite3_column_type(st, 10) == SQLITE_NULL ? kk_xstrdup("{}") : sq_col_dup(st, 10);
  d->tries = sqlite3_column_int(st, 11);
  d->due_at = sqlite3_column_int64(st, 12);
  d->expires_at = sqlite3_column_int64(st, 13);
  d->created_at = sqlite3_column_int64(st, 14);
  d->try_at = sqlite3_column_int64(st, 15);
  d->wa_inbound_at = sqlite3_column_int64(st, 16);
  d->chan = kk_chan_parse(d->channel);
}

int sq_chan_due(struct store *s, int64_t now, int64_t *cursor_due, int64_t *cursor_id,
                struct store_chan_due *out, int max, int *n) {
  sqlite3_stmt *st = sq_stmt(&SQ(s)->r, ST_CHAN_DUE);
  sqlite3_bind_int64(st, 1, now);
  sqlite3_bind_int64(st, 2, *cursor_due);
  sqlite3_bind_int64(st, 3, *cursor_id);
  sqlite3_bind_int(st, 4, max);
  int k = 0, rc = SQLITE_DONE;
  while (k < max && (rc = sqlite3_step(st)) == SQLITE_ROW) {
    chan_due_row(st, &out[k]);
    *cursor_due = out[k].due_at;
    *cursor_id = out[k].attempt_id;
    k++;
  }
  sqlite3_reset(st);
  *n = k;
  if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
    for (int i = 0; i < k; i++) store_chan_due_free(&out[i]);
    *n = 0;
    return KK_ESTORE;
  }
  return 0;
}

int64_t sq_wait_next(struct store *s) {
  sqlite3_stmt *st = sq_stmt(&SQ(s)->r, ST_WAIT_NEXT);
  int64_t v = 0;
  if (sqlite3_step(st) == SQLITE_ROW) v = sqlite3_column_int64(st, 0);
  sqlite3_reset(st);
  return v;
}

/* ---- the rows the notes carry ------------------------------------------------ */

/* The row of channel attempt id on the writer's connection, if it is still
   due (a later operation of the batch may have ended it); NULL otherwise. */
static struct store_chan_due *chan_row_w(struct store *s, int64_t id) {
  sqlite3_stmt *st = sq_stmt(&SQ(s)->w, ST_CHAN_GET);
  sqlite3_bind_int64(st, 1, id);
  struct store_chan_due *d = NULL;
  if (sqlite3_step(st) == SQLITE_ROW) {
    d = kk_xmalloc(sizeof *d);   /* freed with the note */
    chan_due_row(st, d);
  }
  sqlite3_reset(st);
  return d;
}

/* The SMS row of message id on the writer's connection, if its current
   attempt is SMS and due; NULL otherwise. */
static struct store_due *sms_row_w(struct store *s, int64_t id) {
  sqlite3_stmt *st = sq_stmt(&SQ(s)->w, ST_DUE_GET);
  sqlite3_bind_int64(st, 1, id);
  struct store_due *d = NULL;
  if (sqlite3_step(st) == SQLITE_ROW) {
    d = kk_xcalloc(1, sizeof *d);   /* freed with the note */
    sq_due_row(st, d);
  }
  sqlite3_reset(st);
  return d;
}

void sq_notes_rows(struct store *s, int64_t now) {
  for (int i = 0; i < s->nw; i++) {
    struct store_note *t = &s->wnotes[i];
    if (t->kind == STORE_NOTE_CHANNEL && t->chan == NULL && t->at <= now)
      t->chan = chan_row_w(s, t->attempt_id);
    else if (t->kind == STORE_NOTE_SMS && t->due == NULL)
      t->due = sms_row_w(s, t->msg_id);
  }
}

/* ---- early statuses and receipts: per-scope caps and expiry ----------------- */

void casc_early_forget(struct store *s) { SQ(s)->necount = 0; }

/* The held-row count of key, counted with one query over the scope's index
   when it is not known; NULL when the count fails. */
static struct early_count *early_count(struct store *s, const char *key) {
  for (int i = 0; i < SQ(s)->necount; i++)
    if (strcmp(SQ(s)->ecount[i].key, key) == 0) return &SQ(s)->ecount[i];
  sqlite3_stmt *st;
  if (key[0] == 's') {
    st = sq_stmt(&SQ(s)->w, ST_ESTAT_COUNT);
    sqlite3_bind_int64(st, 1, strtoll(key + 1, NULL, 10));
  } else {
    st = sq_stmt(&SQ(s)->w, ST_EARLY_COUNT);
    sq_bind_text(st, 1, key + 1);
  }
  int rc = sqlite3_step(st);
  int64_t n = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
  sqlite3_reset(st);
  if (rc != SQLITE_ROW) return NULL;
  if (SQ(s)->necount == SQ(s)->capecount) {
    /* Grows with the scopes that sent early rows since the last expiry run
       (accounts and routes), then starts again from nothing. */
    if (SQ(s)->capecount >= 4096) {
      SQ(s)->necount = 0;
    } else {
      SQ(s)->capecount = SQ(s)->capecount ? 2 * SQ(s)->capecount : 16;
      SQ(s)->ecount = kk_xrealloc(SQ(s)->ecount, (size_t)SQ(s)->capecount * sizeof SQ(s)->ecount[0]);
    }
  }
  struct early_count *e = &SQ(s)->ecount[SQ(s)->necount++];
  snprintf(e->key, sizeof e->key, "%s", key);
  e->n = n;
  return e;
}

int casc_early_admit(struct store *s, const char *key) {
  struct early_count *e = early_count(s, key);
  if (e == NULL) return 1;   /* not counted: the cap is checked next time */
  if (e->n >= SQ(s)->early_cap) {
    /* Said once per power of two, so that a flood does not flood the log. */
    SQ(s)->early_refused_w++;
    if ((SQ(s)->early_refused_w & (SQ(s)->early_refused_w - 1)) == 0)
      kk_warnx(LOGCTX, "scope %s holds %lld early statuses or receipts, the most it may:"
               " refusing more (%llu refused so far)", key + 1, (long long)e->n,
               (unsigned long long)SQ(s)->early_refused_w);
    return 0;
  }
  e->n++;  /* a replaced row counts twice until the next recount: on the safe side */
  return 1;
}

int casc_early_expire(struct store *s, int64_t cutoff) {
  static const enum stmt_id ids[2] = {ST_ESTAT_EXPIRE, ST_EARLY_EXPIRE};
  int gone = 0;
  for (int i = 0; i < 2; i++) {
    sqlite3_stmt *st = sq_stmt(&SQ(s)->w, ids[i]);
    sqlite3_bind_int64(st, 1, cutoff);
    sqlite3_bind_int(st, 2, EARLY_EXPIRE_BATCH);
    int rc = sq_step_done(&SQ(s)->w, st);
    if (rc) return rc;
    gone += sqlite3_changes(SQ(s)->w.db);
  }
  if (gone == 0) return 0;
  SQ(s)->early_expired_w += (uint64_t)gone;
  return casc_early_check(s);
}

int sq_early_expire(struct store *s, struct store_op *op) {
  struct store_early_expire_data *d = op->data;
  return casc_early_expire(s, d->now - EARLY_KEEP_MS);
}

/* ---- operations: requests under way ------------------------------------ */

int sq_chan_trying(struct store *s, struct store_op *op) {
  struct store_trying_data *d = op->data;
  sqlite3_stmt *st = sq_stmt(&SQ(s)->w, ST_ATT_TRYING);
  for (int i = 0; i < d->n; i++) {
    if (d->at)
      sqlite3_bind_int64(st, 1, d->at);
    else
      sqlite3_bind_null(st, 1);
    sqlite3_bind_int64(st, 2, d->ids[i]);
    int rc = sq_step_done(&SQ(s)->w, st);
    if (rc) return rc;
  }
  return 0;
}

/* ---- operations: provider statuses ------------------------------------- */

int sq_chan_status(struct store *s, struct store_op *op) {
  struct store_chan_status_data *d = op->data;
  struct conn *c = &SQ(s)->w;
  d->st->matched = 0;
  int64_t ids[64];
  struct casc_att first;
  int n = 0;
  sqlite3_stmt *st = NULL;
  if (d->provider_id[0]) {
    st = sq_stmt(c, ST_ATT_BY_PROVIDER);
    sq_bind_text(st, 1, d->channel);
    sq_bind_text(st, 2, d->provider_id);
    sqlite3_bind_int64(st, 3, d->st->scope);
  } else if (d->peer[0] && strcmp(d->channel, "vk") == 0) {
    st = sq_stmt(c, ST_ATT_VK_READ);
    sq_bind_text(st, 1, d->peer);
    sqlite3_bind_int64(st, 2, d->st->scope);
    sqlite3_bind_int64(st, 3, d->st->read_upto);
  }
  while (st && n < 64 && sqlite3_step(st) == SQLITE_ROW) {
    if (n == 0) casc_att_cols(st, 1, &first);
    ids[n++] = sqlite3_column_int64(st, 0);
  }
  if (st) sqlite3_reset(st);
  for (int i = 0; i < n; i++) {
    /* One match (the usual case) is used as read; with more, each is read
       again after the others' changes. */
    int rc = casc_attempt_event(s, ids[i], n == 1 ? &first : NULL, d->status, NULL,
                                d->error[0] ? d->error : NULL, d->st->at, 0);
    if (rc) return rc;
  }
  d->st->matched = n;
  if (n == 0 && d->provider_id[0]) {
    /* The provider may call back before its answer to our send is stored
       (WhatsApp reports "sent" at once): keep the status for a day (the
       writer's expiry runs by time); the send's result applies it
       (apply_early). A scope holds at most early_cap of them. */
    char key[32];
    snprintf(key, sizeof key, "s%lld", (long long)d->st->scope);
    if (!casc_early_admit(s, key)) return 0;
    st = sq_stmt(c, ST_ESTAT_PUT);
    sq_bind_text(st, 1, d->channel);
    sqlite3_bind_int64(st, 2, d->st->scope);
    sq_bind_text(st, 3, d->provider_id);
    sq_bind_text(st, 4, d->status);
    sq_bind_text(st, 5, d->error[0] ? d->error : NULL);
    sqlite3_bind_int64(st, 6, d->st->at);
    int rc = sq_step_done(c, st);
    if (rc == 0) SQ(s)->estat_any = 1;
    return rc;
  }
  return 0;
}

/* ---- WhatsApp customer-service windows ------------------------------------ */

int sq_wa_inbound(struct store *s, struct store_op *op) {
  struct store_wa_data *d = op->data;
  sqlite3_stmt *st = sq_stmt(&SQ(s)->w, ST_WA_IN_PUT);
  sqlite3_bind_int64(st, 1, d->scope);
  sq_bind_text(st, 2, d->phone);
  sqlite3_bind_int64(st, 3, d->at);
  return sq_step_done(&SQ(s)->w, st);
}

int sq_wa_last_inbound(struct store *s, int64_t scope, const char *phone, int64_t *at) {
  sqlite3_stmt *st = sq_stmt(&SQ(s)->r, ST_WA_IN_GET);
  sqlite3_bind_int64(st, 1, scope);
  sq_bind_text(st, 2, phone);
  return sq_lookup(st, sq_row_int64, at);
}
