/*
 * store_cascade.c - the cascade state machine, run by the SQLite writer
 * inside its transactions (see "cascades and channels" in store.h), and the
 * channel settings, prices and named cascades it reads.
 *
 * Every status of every channel comes through casc_attempt_event(): it
 * updates the attempt, decides whether the current step succeeded or must
 * pass on, starts the next usable step, and recomputes the message (status,
 * channel, cost, "delivered twice") in the same transaction, so a crash
 * leaves either all of it or none. What the loop must do next (send a
 * channel attempt, queue an SMS, arm a deadline) is recorded as notes that
 * reach the loop only after the commit.
 *
 * Also here: when people last wrote to a WhatsApp number, which decides at
 * send time whether a WhatsApp step may send a text.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "channel/channel.h"
#include "core/kk_err.h"
#include "core/kk_log.h"
#include "core/kk_mem.h"
#include "core/kk_utf8.h"
#include "store/store_int.h"

#define LOGCTX "cascade"

/* ---- steps ---------------------------------------------------------------- */

int store_steps_parse(const char *text, struct store_step *out) {
  if (text == NULL || text[0] == '\0') {
    memset(out, 0, sizeof *out);
    snprintf(out->channel, sizeof out->channel, "sms");
    snprintf(out->wait, sizeof out->wait, "delivered");
    return 1;
  }
  /* "channel/wait/timeout_ms,..." (store_steps_format) */
  int n = 0;
  const char *p = text;
  while (*p && n < STORE_MAX_STEPS) {
    struct store_step *st = &out[n];
    memset(st, 0, sizeof *st);
    size_t len = strcspn(p, "/");
    if (len == 0 || len >= sizeof st->channel || p[len] != '/') return -1;
    memcpy(st->channel, p, len);
    p += len + 1;
    len = strcspn(p, "/");
    if (len == 0 || len >= sizeof st->wait || p[len] != '/') return -1;
    memcpy(st->wait, p, len);
    p += len + 1;
    char *end;
    long long ms = strtoll(p, &end, 10);
    if (end == p || ms < 0 || (*end != ',' && *end != '\0')) return -1;
    st->timeout_ms = ms;
    n++;
    p = *end == ',' ? end + 1 : end;
  }
  return *p ? -1 : n;
}

int store_steps_format(const struct store_step *steps, int n, char *out, size_t cap) {
  size_t o = 0;
  for (int i = 0; i < n; i++) {
    int k = snprintf(out + o, cap - o, "%s%s/%s/%lld", i ? "," : "", steps[i].channel,
                     steps[i].wait, (long long)steps[i].timeout_ms);
    if (k < 0 || (size_t)k >= cap - o) return KK_ENOSPC;
    o += (size_t)k;
  }
  return 0;
}

/* ---- counters ------------------------------------------------------------ */

/* The counter slot of a channel (created on first use). Caller holds mu. */
static int slot(struct store_cascade_stats *c, const char *channel) {
  for (int i = 0; i < c->n; i++)
    if (strcmp(c->channel[i], channel) == 0) return i;
  if (c->n == STORE_CHAN_SLOTS) return STORE_CHAN_SLOTS - 1;
  snprintf(c->channel[c->n], sizeof c->channel[0], "%s", channel);
  return c->n++;
}

enum counter { C_STARTED, C_SKIPPED, C_SENT, C_DELIVERED, C_READ, C_FAILED, C_TIMEOUT,
               C_FALLTHROUGH, C_LATE, C_TWICE, C_FINISHED };

static void count(struct store *s, const char *channel, enum counter which) {
  /* Writer-local; published with the batch (store_sqlite.c run_batch). */
  struct store_cascade_stats *c = &s->cstats_w;
  int i = which == C_TWICE || which == C_FINISHED ? 0 : slot(c, channel);
  switch (which) {
  case C_STARTED: c->started[i]++; break;
  case C_SKIPPED: c->skipped[i]++; break;
  case C_SENT: c->sent[i]++; break;
  case C_DELIVERED: c->delivered[i]++; break;
  case C_READ: c->read[i]++; break;
  case C_FAILED: c->failed[i]++; break;
  case C_TIMEOUT: c->timeout[i]++; break;
  case C_FALLTHROUGH: c->fallthrough[i]++; break;
  case C_LATE: c->late[i]++; break;
  case C_TWICE: c->delivered_twice++; break;
  case C_FINISHED: c->finished++; break;
  }
}

void store_get_cascade_stats(struct store *s, struct store_cascade_stats *out) {
  pthread_mutex_lock(&s->mu);
  *out = s->cstats;
  pthread_mutex_unlock(&s->mu);
}

/* ---- reading rows (writer) ---------------------------------------------- */

struct msg_row {
  int64_t id, account_id;
  char public_id[40];
  char to[24];
  char status[16];
  char callback_url[520];
  int step;
  int64_t attempt_id;
  int done;
  char *cascade;            /* malloc'd */
  char *extra;              /* malloc'd, read by start_from only */
  int has_extra;
  int event_recorded;       /* msg_refresh wrote the message's event */
  /* row changes msg_refresh writes together with the status (one UPDATE) */
  int w_done;               /* the cascade ended: done, no due time, no deadline */
  int w_clear_due;          /* the SMS attempt needs the dispatcher no more */
  int w_wait;               /* set wait_until to w_wait_until */
  int64_t w_wait_until;
  char route[64];
  int segments;
  char channel[20];
  int64_t cost;
  int delivered_twice;
  int delivered_twice_db;   /* as read, to see a change */
  int64_t expires_at;       /* the message's validity ends then */
  /* a message being inserted: its row is written after its first step has
     started, so start_from and msg_refresh leave what they decide here */
  int ins;
  int64_t due_at, wait_until;
};

static void msg_row_free(struct msg_row *m) {
  free(m->cascade);
  free(m->extra);
  m->cascade = m->extra = NULL;
}

static int msg_load(struct store *s, int64_t id, struct msg_row *m) {
  sqlite3_stmt *st = sq_stmt(&s->w, ST_MSG_ROW);
  sqlite3_bind_int64(st, 1, id);
  int rc = sqlite3_step(st);
  if (rc != SQLITE_ROW) {
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? KK_ENOENT : KK_ESTORE;
  }
  memset(m, 0, sizeof *m);
  m->id = id;
  m->account_id = sqlite3_column_int64(st, 0);
  sq_col_copy(st, 1, m->public_id, sizeof m->public_id);
  sq_col_copy(st, 2, m->to, sizeof m->to);
  sq_col_copy(st, 3, m->status, sizeof m->status);
  sq_col_copy(st, 4, m->callback_url, sizeof m->callback_url);
  m->step = sqlite3_column_int(st, 5);
  m->attempt_id = sqlite3_column_int64(st, 6);
  m->done = sqlite3_column_int(st, 7);
  m->cascade = sqlite3_column_type(st, 8) == SQLITE_NULL ? NULL : sq_col_dup(st, 8);
  m->has_extra = sqlite3_column_int(st, 9);   /* read when a step needs it */
  sq_col_copy(st, 10, m->route, sizeof m->route);
  m->segments = sqlite3_column_int(st, 11);
  sq_col_copy(st, 12, m->channel, sizeof m->channel);
  m->cost = sqlite3_column_int64(st, 13);
  m->delivered_twice = m->delivered_twice_db = sqlite3_column_int(st, 14);
  m->expires_at = sqlite3_column_int64(st, 15);
  sqlite3_reset(st);
  return 0;
}

void casc_att_cols(sqlite3_stmt *st, int i, struct casc_att *a) {
  a->msg_id = sqlite3_column_int64(st, i);
  sq_col_copy(st, i + 1, a->channel, sizeof a->channel);
  sq_col_copy(st, i + 2, a->status, sizeof a->status);
  a->step = sqlite3_column_int(st, i + 3);
  a->sent_at = sqlite3_column_int64(st, i + 4);
  a->delivered_at = sqlite3_column_int64(st, i + 5);
  a->read_at = sqlite3_column_int64(st, i + 6);
  a->segments = sqlite3_column_int(st, i + 7);
  a->parts_sent = sqlite3_column_int64(st, i + 8);
  a->parts_delivered = sqlite3_column_int(st, i + 9);
  a->scope = sqlite3_column_int64(st, i + 10);
  a->tries = sqlite3_column_int(st, i + 11);
  a->parts_dirty = 0;
}

int casc_att_load(struct store *s, int64_t id, struct casc_att *a) {
  sqlite3_stmt *st = sq_stmt(&s->w, ST_ATT_ROW);
  sqlite3_bind_int64(st, 1, id);
  int rc = sqlite3_step(st);
  if (rc == SQLITE_ROW) casc_att_cols(st, 0, a);
  sqlite3_reset(st);
  return rc == SQLITE_ROW ? 0 : rc == SQLITE_DONE ? KK_ENOENT : KK_ESTORE;
}

/* A remembered value for (account, channel), or NULL. */
static struct store_memo *memo_find(struct store_memo *tab, int64_t account_id,
                                    const char *channel) {
  for (int i = 0; i < 32; i++)
    if (tab[i].used && tab[i].account_id == account_id && strcmp(tab[i].channel, channel) == 0)
      return &tab[i];
  return NULL;
}

static void memo_put(struct store_memo *tab, int64_t account_id, const char *channel,
                     int64_t value) {
  int i = 0;
  while (i < 32 && tab[i].used) i++;
  if (i == 32) {           /* full: start over; a few lookups repeat */
    memset(tab, 0, 32 * sizeof *tab);
    i = 0;
  }
  tab[i].used = 1;
  tab[i].account_id = account_id;
  snprintf(tab[i].channel, sizeof tab[i].channel, "%s", channel);
  tab[i].value = value;
}

int64_t casc_price(struct store *s, int64_t account_id, const char *channel) {
  struct store_memo *mm = memo_find(s->price_memo, account_id, channel);
  if (mm) return mm->value;
  sqlite3_stmt *st = sq_stmt(&s->w, ST_PRICE_GET);
  sq_bind_text(st, 1, channel);
  sqlite3_bind_int64(st, 2, account_id);
  int64_t p = 0;
  if (sqlite3_step(st) == SQLITE_ROW) p = sqlite3_column_int64(st, 0);
  sqlite3_reset(st);
  memo_put(s->price_memo, account_id, channel, p);
  return p;
}

/* Whose settings a channel uses for an account: the account's, the
   operator's (0), or -1 when neither has any. */
static int64_t chan_scope(struct store *s, int64_t account_id, const char *channel) {
  struct store_memo *mm = memo_find(s->scope_memo, account_id, channel);
  if (mm) return mm->value;
  sqlite3_stmt *st = sq_stmt(&s->w, ST_CHAN_SCOPE);
  sq_bind_text(st, 1, channel);
  sqlite3_bind_int64(st, 2, account_id);
  int64_t scope = -1;
  if (sqlite3_step(st) == SQLITE_ROW) scope = sqlite3_column_int64(st, 0);
  sqlite3_reset(st);
  memo_put(s->scope_memo, account_id, channel, scope);
  return scope;
}

/* ---- levels ---------------------------------------------------------------- */

/* What an attempt reached: 3 read, 2 delivered, 1 sent, 0 nothing. */
static int level_of(const char *status, int64_t sent_at, int64_t delivered_at, int64_t read_at) {
  if (read_at) return 3;
  if (delivered_at) return 2;
  if (sent_at && strcmp(status, "failed") != 0 && strcmp(status, "expired") != 0) return 1;
  return 0;
}

static int wait_level(const char *wait) {
  if (strcmp(wait, "read") == 0) return 3;
  if (strcmp(wait, "delivered") == 0) return 2;
  return 1;
}

static const char *level_name(int level) {
  static const char *const names[] = {"", "sent", "delivered", "read"};
  return names[level];
}

/* ---- the message's own status ------------------------------------------- */

/* Appends the event and, when the message has a callback URL, the outbox row. */
static int record_event(struct store *s, const struct msg_row *m, int64_t attempt_id,
                        const char *status, const char *channel, const char *error,
                        int64_t cost, int64_t at) {
  struct conn *c = &s->w;
  sqlite3_stmt *st = sq_stmt(c, ST_EVENT_INSERT);
  sqlite3_bind_int64(st, 1, m->id);
  sqlite3_bind_int64(st, 2, attempt_id);
  sq_bind_text(st, 3, status);
  sqlite3_bind_int64(st, 4, at);
  sq_bind_text(st, 5, error);
  int rc = sq_step_done(c, st);
  if (rc || m->callback_url[0] == '\0') return rc;

  json_t *j = json_pack("{s:s, s:s, s:s, s:s, s:I}", "id", m->public_id, "status", status,
                        "channel", channel, "to", m->to, "at", (json_int_t)at);
  json_object_set_new(j, "cost", json_real((double)cost / 10000.0));
  if (error) {
    /* Provider and SMSC texts are bytes: only UTF-8 goes into the JSON. */
    char eb[256];
    kk_utf8_sanitize(eb, sizeof eb, error, strlen(error));
    json_object_set_new(j, "error", json_string(eb));
  }
  char *payload = j ? json_dumps(j, JSON_COMPACT | JSON_REAL_PRECISION(12)) : NULL;
  json_decref(j);
  if (payload == NULL) {
    /* Losing one callback is better than failing the status change with it. */
    kk_error(LOGCTX, "message %lld: callback for %s not built", (long long)m->id, status);
    return 0;
  }
  st = sq_stmt(c, ST_OUTBOX_INSERT);
  sqlite3_bind_int64(st, 1, m->account_id);
  sqlite3_bind_int64(st, 2, m->id);
  sq_bind_text(st, 3, m->callback_url);
  sq_bind_text(st, 4, payload);
  sqlite3_bind_int64(st, 5, at);
  rc = sq_step_done(c, st);
  free(payload);
  return rc;
}

/* What one change of one attempt means for its message. */
struct change {
  int64_t attempt_id;       /* 0: none (every step skipped) */
  const char *channel;
  int level;                /* what the attempt has reached now */
  int64_t cost;             /* added to the message's cost */
  const char *end_status;   /* failed / expired, if the cascade ends without success */
  const char *error;
  int lowered;              /* the attempt lost a level it had (sent, then failed) */
  int expired;              /* the cascade ends because the validity ended */
};

static int level_of_status(const char *st) {
  if (strcmp(st, "read") == 0) return 3;
  if (strcmp(st, "delivered") == 0) return 2;
  if (strcmp(st, "sent") == 0) return 1;
  return 0;
}

/*
 * Moves the message by one change: its status is the best any attempt has
 * reached (the channel that reached it first keeps it), or, once the cascade
 * is over with nothing reached, failed / expired. Writes and records an event
 * only when something changed.
 */
static int msg_fin_write(struct conn *c, const struct msg_row *m, const char *status,
                         const char *channel, int64_t cost, int64_t at);

/*
 * When the wait of a step that started (or was handed to its provider) at
 * `at` ends: after its timeout, but never after the message's validity, so
 * that a long timeout cannot keep a message "sent" past expires_at. A
 * messenger step without a timeout (the last) waits until the validity
 * ends; an SMS step without one keeps waiting for its receipt (the SMS
 * centre has the same validity and reports the expiry itself). 0: none.
 */
static int64_t wait_deadline(const struct msg_row *m, const char *channel, int64_t at,
                             int64_t timeout_ms) {
  int64_t t = timeout_ms > 0 ? at + timeout_ms : 0;
  if (t == 0 && strcmp(channel, "sms") == 0) return 0;
  if (m->expires_at > 0 && (t == 0 || t > m->expires_at)) t = m->expires_at;
  return t;
}

static int msg_refresh(struct store *s, struct msg_row *m, int64_t at, const struct change *ch) {
  int best = level_of_status(m->status);
  const char *status = m->status;
  const char *channel = m->channel;
  const char *error = NULL;
  char best_ch[20] = "";
  if (ch->lowered) {
    /* An attempt lost what it had reached (sent, then failed): the best of
       the others decides now. Rare, so the attempts are read again. */
    struct conn *c = &s->w;
    sqlite3_stmt *st = sq_stmt(c, ST_ATT_OF_MSG);
    sqlite3_bind_int64(st, 1, m->id);
    int b = 0;
    int64_t b_at = 0;
    while (sqlite3_step(st) == SQLITE_ROW) {
      char as[16];
      sq_col_copy(st, 2, as, sizeof as);
      int64_t t[3] = {sqlite3_column_int64(st, 3), sqlite3_column_int64(st, 4),
                      sqlite3_column_int64(st, 5)};
      int lvl = level_of(as, t[0], t[1], t[2]);
      if (lvl > b || (lvl == b && lvl > 0 && t[lvl - 1] < b_at)) {
        b = lvl;
        b_at = lvl ? t[lvl - 1] : 0;
        sq_col_copy(st, 1, best_ch, sizeof best_ch);
      }
    }
    sqlite3_reset(st);
    best = b;
    if (b > 0) {
      status = level_name(b);
      channel = best_ch;
    } else {
      /* While the cascade goes on, the message keeps its status. */
      status = m->done ? (ch->end_status ? ch->end_status : "failed") : m->status;
      channel = ch->channel ? ch->channel : "";
      if (m->done) error = ch->error;
    }
  } else if (ch->level > best) {
    status = level_name(ch->level);
    channel = ch->channel;
  } else if (best == 0 && !m->done && ch->channel && ch->channel[0]) {
    channel = ch->channel;     /* nothing reached yet: the step being tried */
  } else if (m->done && best == 0) {
    status = ch->end_status ? ch->end_status : "failed";
    if (ch->channel && ch->channel[0]) channel = ch->channel;
    error = ch->error ? ch->error
                      : ch->attempt_id ? NULL : "no channel of the cascade could be used";
  }
  if (ch->expired && m->done && level_of_status(status) < 2) {
    /* Handed over, never confirmed, and out of time: the message expired. */
    status = "expired";
    error = ch->error;
  }
  int64_t cost = m->cost + ch->cost;
  int changed = strcmp(status, m->status) != 0;
  if (!changed && strcmp(channel, m->channel) == 0 && cost == m->cost &&
      m->delivered_twice == m->delivered_twice_db && !m->w_done && !m->w_clear_due &&
      !m->w_wait)
    return 0;
  struct conn *c = &s->w;
  if (m->ins) {
    if (m->w_done) m->done = 1;
    if (m->w_done || m->w_clear_due) m->due_at = 0;
    if (m->w_done) m->wait_until = 0;
    else if (m->w_wait) m->wait_until = m->w_wait_until;
  } else {
    int rc = msg_fin_write(c, m, status, channel, cost, at);
    if (rc) return rc;
  }
  m->w_done = m->w_clear_due = m->w_wait = 0;
  char chbuf[20];
  snprintf(chbuf, sizeof chbuf, "%s", channel);
  snprintf(m->channel, sizeof m->channel, "%s", chbuf);
  m->cost = cost;
  m->delivered_twice_db = m->delivered_twice;
  if (!changed) return 0;
  snprintf(m->status, sizeof m->status, "%s", status);
  m->event_recorded = 1;
  return record_event(s, m, ch->attempt_id, m->status, m->channel, error, cost, at);
}

/* Writes the message's status and the row changes msg_refresh gathered. */
static int msg_fin_write(struct conn *c, const struct msg_row *m, const char *status,
                         const char *channel, int64_t cost, int64_t at) {
  sqlite3_stmt *st = sq_stmt(c, ST_MSG_FIN);
  sq_bind_text(st, 1, status);
  sq_bind_text(st, 2, channel);
  sqlite3_bind_int64(st, 3, cost);
  sqlite3_bind_int(st, 4, m->delivered_twice);
  sqlite3_bind_int64(st, 5, at);
  sqlite3_bind_int(st, 6, m->w_done);
  sqlite3_bind_int(st, 7, m->w_clear_due);
  sqlite3_bind_int(st, 8, m->w_wait);
  sqlite3_bind_int64(st, 9, m->w_wait_until);
  sqlite3_bind_int64(st, 10, m->id);
  return sq_step_done(c, st);
}

/* ---- starting steps ------------------------------------------------------- */

/* The address the message has for a channel, or NULL. */
static const char *address_for(const struct msg_row *m, json_t *extra, const char *channel) {
  const struct chan_driver *drv = chan_driver(channel);
  if (drv == NULL) return NULL;
  if (drv->address_field) {
    const char *a = json_string_value(json_object_get(extra, drv->address_field));
    if (a && a[0]) return a;
    if (!drv->phone_fallback) return NULL;
  }
  return m->to[0] ? m->to : NULL;
}

static int attempt_insert(struct store *s, const struct msg_row *m, int step, const char *channel,
                          const char *status, const char *address, int64_t scope,
                          const char *error, int64_t at, int64_t due_at, int64_t *id) {
  struct conn *c = &s->w;
  int sms = strcmp(channel, "sms") == 0;
  int64_t aid = s->next_att_id++;   /* the writer numbers the rows it adds */
  sqlite3_stmt *st = sq_stmt(c, ST_ATT_INSERT);
  sqlite3_bind_int64(st, 1, aid);
  sqlite3_bind_int64(st, 2, m->id);
  sqlite3_bind_int(st, 3, step);
  sq_bind_text(st, 4, channel);
  sq_bind_text(st, 5, sms ? m->route : NULL);
  sq_bind_text(st, 6, status);
  sqlite3_bind_int(st, 7, sms ? m->segments : 1);
  sq_bind_text(st, 8, address);
  sqlite3_bind_int64(st, 9, scope);
  sq_bind_text(st, 10, error);
  sqlite3_bind_int64(st, 11, at);
  sq_bind_opt(st, 12, due_at);
  int rc = sq_step_done(c, st);
  if (rc == 0 && id) *id = aid;
  return rc;
}

/* The message moves to step j (attempt id); 0 times are NULL. */
static int msg_step_write(struct conn *c, const struct msg_row *m, int j, int64_t id,
                          int64_t due_at, int64_t wait_until, int64_t at, const char *channel) {
  sqlite3_stmt *st = sq_stmt(c, ST_MSG_STEP);
  sqlite3_bind_int(st, 1, j);
  sqlite3_bind_int64(st, 2, id);
  sq_bind_opt(st, 3, due_at);
  sq_bind_opt(st, 4, wait_until);
  sqlite3_bind_int64(st, 5, at);
  sq_bind_text(st, 6, channel);
  sqlite3_bind_int64(st, 7, m->id);
  return sq_step_done(c, st);
}

/*
 * Starts the first usable step at or after `from`: steps without an address
 * or a configured channel become skipped attempts. When none is left the
 * cascade is over. *started receives the new attempt (0 when none).
 */
static int start_from(struct store *s, struct msg_row *m, int from, int64_t at, int64_t *started,
                      char *channel, size_t chcap) {
  struct conn *c = &s->w;
  struct store_step steps[STORE_MAX_STEPS];
  int n = store_steps_parse(m->cascade, steps);
  if (m->has_extra && m->extra == NULL) {
    sqlite3_stmt *st = sq_stmt(c, ST_MSG_EXTRA);
    sqlite3_bind_int64(st, 1, m->id);
    if (sqlite3_step(st) == SQLITE_ROW) m->extra = sq_col_dup(st, 0);
    sqlite3_reset(st);
  }
  json_t *extra = m->extra ? json_loads(m->extra, 0, NULL) : NULL;
  *started = 0;
  int rc = 0;
  for (int j = from; j < n && rc == 0 && *started == 0; j++) {
    const char *ch = steps[j].channel;
    const char *addr = address_for(m, extra, ch);
    if (addr == NULL) {
      const struct chan_driver *drv = chan_driver(ch);
      char why[64];
      snprintf(why, sizeof why, "no %s", drv && drv->address_field && !drv->phone_fallback
                                             ? drv->address_field : "phone number");
      rc = attempt_insert(s, m, j, ch, "skipped", NULL, 0, why, at, 0, NULL);
      count(s, ch, C_SKIPPED);
      continue;
    }
    int64_t scope = 0;
    if (strcmp(ch, "sms") != 0) {
      scope = chan_scope(s, m->account_id, ch);
      if (scope < 0) {
        rc = attempt_insert(s, m, j, ch, "skipped", addr, 0, "channel not configured", at, 0,
                            NULL);
        count(s, ch, C_SKIPPED);
        continue;
      }
    }
    int sms = strcmp(ch, "sms") == 0;
    int64_t id = 0;
    rc = attempt_insert(s, m, j, ch, "sending", addr, scope, NULL, at, sms ? 0 : at, &id);
    if (rc) break;
    int64_t wait_until = wait_deadline(m, ch, at, steps[j].timeout_ms);
    /* Until some attempt reaches something, the message shows the channel
       being tried (as msg_refresh would). */
    int show = level_of_status(m->status) == 0 && !m->done;
    if (m->ins) {
      m->due_at = sms ? at : 0;
      m->wait_until = wait_until;
    } else {
      rc = msg_step_write(c, m, j, id, sms ? at : 0, wait_until, at, show ? ch : m->channel);
      if (rc) break;
    }
    if (show) snprintf(m->channel, sizeof m->channel, "%s", ch);
    m->step = j;
    m->attempt_id = id;
    *started = id;
    if (channel) snprintf(channel, chcap, "%s", ch);
    count(s, ch, C_STARTED);
    if (!sms)
      note(s, STORE_NOTE_CHANNEL, m->id, id, at);
    else if (!m->ins)
      note(s, STORE_NOTE_SMS, m->id, id, at);
    if (wait_until) note(s, STORE_NOTE_WAIT, m->id, id, wait_until);
  }
  json_decref(extra);
  if (rc == 0 && *started == 0) {
    if (m->ins) {
      m->due_at = m->wait_until = 0;
    } else {
      sqlite3_stmt *st = sq_stmt(c, ST_MSG_DONE);
      sqlite3_bind_int64(st, 1, at);
      sqlite3_bind_int64(st, 2, m->id);
      rc = sq_step_done(c, st);
    }
    m->done = 1;
    count(s, "", C_FINISHED);
  }
  return rc;
}

int casc_start(struct store *s, struct store_msg_new *n, struct casc_first *f) {
  struct msg_row m;
  memset(&m, 0, sizeof m);
  m.ins = 1;
  m.id = n->id;
  m.account_id = n->account_id;
  snprintf(m.public_id, sizeof m.public_id, "%s", n->public_id);
  snprintf(m.to, sizeof m.to, "%s", n->to ? n->to : "");
  snprintf(m.status, sizeof m.status, "accepted");
  snprintf(m.callback_url, sizeof m.callback_url, "%s", n->callback_url ? n->callback_url : "");
  m.cascade = n->cascade ? kk_xstrdup(n->cascade) : NULL;
  m.extra = n->extra ? kk_xstrdup(n->extra) : NULL;
  m.has_extra = n->extra != NULL;
  snprintf(m.route, sizeof m.route, "%s", n->route ? n->route : "");
  m.segments = n->segments;
  m.expires_at = n->expires_at;
  n->first_channel[0] = '\0';
  int rc = start_from(s, &m, 0, n->created_at, &n->attempt_id, n->first_channel,
                      sizeof n->first_channel);
  struct change ch = {.attempt_id = n->attempt_id, .channel = n->first_channel};
  if (rc == 0) rc = msg_refresh(s, &m, n->created_at, &ch);
  memset(f, 0, sizeof *f);
  f->step = m.step;
  f->attempt_id = m.attempt_id;
  f->due_at = m.due_at;
  f->wait_until = m.wait_until;
  f->done = m.done;
  f->cost = m.cost;
  snprintf(f->status, sizeof f->status, "%s", m.status);
  snprintf(f->channel, sizeof f->channel, "%s", m.channel);
  msg_row_free(&m);
  return rc;
}

/* The current step has ended: done, or on to the next one. */
static void cascade_done(struct store *s, struct msg_row *m) {
  m->done = 1;
  m->w_done = 1;            /* written by msg_refresh */
  count(s, "", C_FINISHED);
}

/* ---- attempt events ------------------------------------------------------- */

static int rank_attempt(const char *status) {
  if (strcmp(status, "read") == 0) return 3;
  if (strcmp(status, "delivered") == 0) return 2;
  if (strcmp(status, "sent") == 0) return 1;
  return 0;
}

int casc_attempt_event(struct store *s, int64_t attempt_id, const struct casc_att *pre,
                       const char *status, const char *provider_id, const char *error,
                       int64_t at, int units) {
  struct conn *c = &s->w;
  struct casc_att a;
  int rc = 0;
  if (pre)
    a = *pre;
  else
    rc = casc_att_load(s, attempt_id, &a);
  if (rc == KK_ENOENT) {
    kk_warnx(LOGCTX, "status %s for attempt %lld, which does not exist", status,
             (long long)attempt_id);
    return 0;
  }
  if (rc) return rc;
  struct msg_row m;
  rc = msg_load(s, a.msg_id, &m);
  if (rc == KK_ENOENT) return 0;
  if (rc) return rc;

  int current = !m.done && m.attempt_id == attempt_id;
  char next_channel[20] = "";
  int before = level_of(a.status, a.sent_at, a.delivered_at, a.read_at);
  int failure = strcmp(status, "failed") == 0 || strcmp(status, "expired") == 0;
  int64_t sent_at = a.sent_at, delivered_at = a.delivered_at, read_at = a.read_at;
  char new_status[16];
  snprintf(new_status, sizeof new_status, "%s", a.status);
  int64_t cost = 0;
  if (failure) {
    /* A failure after delivery or reading changes nothing we knew. */
    if (before >= 2 || strcmp(a.status, "failed") == 0 || strcmp(a.status, "expired") == 0 ||
        strcmp(a.status, "skipped") == 0) {
      msg_row_free(&m);
      return 0;
    }
    snprintf(new_status, sizeof new_status, "%s", status);
  } else {
    int r = rank_attempt(status);
    if (r == 0) {
      msg_row_free(&m);
      return 0;
    }
    if (!sent_at) {
      sent_at = at;
      cost = casc_price(s, m.account_id, a.channel) * (units > 0 ? units : 1);
    }
    if (r == 2 && !delivered_at) delivered_at = at;
    if (r == 3 && !read_at) read_at = at;
    /* The attempt's status moves forward only; a late one overwrites
       "timeout" so the report shows what finally happened. */
    if (r > rank_attempt(a.status)) snprintf(new_status, sizeof new_status, "%s", status);
  }
  int after = level_of(new_status, sent_at, delivered_at, read_at);
  if (strcmp(new_status, a.status) == 0 && after == before && cost == 0 &&
      delivered_at == a.delivered_at && read_at == a.read_at && provider_id == NULL &&
      !a.parts_dirty) {
    msg_row_free(&m);     /* a repeated status */
    return 0;
  }
  sqlite3_stmt *st = sq_stmt(c, ST_ATT_SET);
  sq_bind_text(st, 1, new_status);
  sq_bind_opt(st, 2, sent_at);
  sq_bind_opt(st, 3, delivered_at);
  sq_bind_opt(st, 4, read_at);
  sq_bind_text(st, 5, provider_id && provider_id[0] ? provider_id : NULL);
  sq_bind_text(st, 6, error && error[0] ? error : NULL);
  sqlite3_bind_int64(st, 7, cost);
  sqlite3_bind_int64(st, 8, a.parts_sent);
  sqlite3_bind_int64(st, 9, attempt_id);
  rc = sq_step_done(c, st);
  if (rc) goto out;
  int attempt_changed = strcmp(new_status, a.status) != 0;
  if (attempt_changed) {
    if (after > before && after >= 1 && before < 1) count(s, a.channel, C_SENT);
    if (after >= 2 && before < 2 && after == 2) count(s, a.channel, C_DELIVERED);
    if (after == 3 && before < 3) count(s, a.channel, C_READ);
    if (failure) count(s, a.channel, C_FAILED);
    if (!current) count(s, a.channel, C_LATE);
  }

  /* Did a second channel also reach the person? (The first step that is
     still current has no earlier attempt that could have.) */
  if (after >= 2 && before < 2 && !(current && a.step == 0)) {
    sqlite3_stmt *q = sq_stmt(c, ST_ATT_OF_MSG);
    sqlite3_bind_int64(q, 1, m.id);
    int others = 0;
    while (sqlite3_step(q) == SQLITE_ROW) {
      if (sqlite3_column_int64(q, 0) == attempt_id) continue;
      char qs[16];
      sq_col_copy(q, 2, qs, sizeof qs);
      if (level_of(qs, sqlite3_column_int64(q, 3), sqlite3_column_int64(q, 4),
                   sqlite3_column_int64(q, 5)) >= 2)
        others++;
    }
    sqlite3_reset(q);
    if (others > 0) {
      m.delivered_twice++;
      count(s, a.channel, C_TWICE);
    }
  }

  if (current) {
    struct store_step steps[STORE_MAX_STEPS];
    int n = store_steps_parse(m.cascade, steps);
    int wl = a.step < n ? wait_level(steps[a.step].wait) : 1;
    /* An SMS whose parts are all out is no longer due for the dispatcher. */
    if (strcmp(a.channel, "sms") == 0 && (after >= 1 || failure)) m.w_clear_due = 1;
    if (after >= wl) {
      cascade_done(s, &m);
    } else if (!a.sent_at && sent_at && a.step < n && steps[a.step].timeout_ms > 0) {
      /* The wait starts when the provider has the message: time in kaskad's
         queue or in provider retries does not eat the step's window. */
      int64_t wait_until = wait_deadline(&m, a.channel, at, steps[a.step].timeout_ms);
      m.w_wait = 1;
      m.w_wait_until = wait_until;
      note(s, STORE_NOTE_WAIT, m.id, attempt_id, wait_until);
    } else if (failure) {
      if (a.step + 1 < n) count(s, a.channel, C_FALLTHROUGH);
      int64_t started;
      /* Write what is pending first: the next step sets the row on its own. */
      if (m.w_clear_due) {
        st = sq_stmt(c, ST_MSG_CLEAR_DUE);
        sqlite3_bind_int64(st, 1, m.id);
        rc = sq_step_done(c, st);
        m.w_clear_due = 0;
        if (rc) goto out;
      }
      rc = start_from(s, &m, a.step + 1, at, &started, next_channel, sizeof next_channel);
    }
    if (rc) goto out;
  }
  struct change ch = {.attempt_id = attempt_id,
                      .channel = next_channel[0] ? next_channel : a.channel,
                      .level = after, .cost = cost,
                      .end_status = failure ? status : "failed",
                      .error = failure ? error : NULL,
                      .lowered = after < before};
  rc = msg_refresh(s, &m, at, &ch);
  if (rc == 0 && attempt_changed && !m.event_recorded) {
    /* The trace: the attempt's own change, unless the message's event (same
       attempt) already tells it. */
    st = sq_stmt(c, ST_EVENT_INSERT);
    sqlite3_bind_int64(st, 1, m.id);
    sqlite3_bind_int64(st, 2, attempt_id);
    char ev[40];
    snprintf(ev, sizeof ev, "%s:%s", a.channel, new_status);
    sq_bind_text(st, 3, ev);
    sqlite3_bind_int64(st, 4, at);
    sq_bind_text(st, 5, error && error[0] ? error : NULL);
    rc = sq_step_done(c, st);
  }
out:
  msg_row_free(&m);
  return rc;
}

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
}

int store_chan_due(struct store *s, int64_t now, struct store_chan_due *out, int max, int *n) {
  sqlite3_stmt *st = sq_stmt(&s->r, ST_CHAN_DUE);
  sqlite3_bind_int64(st, 1, now);
  sqlite3_bind_int(st, 2, max);
  int k = 0, rc = SQLITE_DONE;
  while (k < max && (rc = sqlite3_step(st)) == SQLITE_ROW) chan_due_row(st, &out[k++]);
  sqlite3_reset(st);
  *n = k;
  if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
    for (int i = 0; i < k; i++) {
      free(out[i].text);
      free(out[i].extra);
    }
    *n = 0;
    return KK_ESTORE;
  }
  return 0;
}

int store_chan_get(struct store *s, int64_t attempt_id, struct store_chan_due *out) {
  sqlite3_stmt *st = sq_stmt(&s->r, ST_CHAN_GET);
  sqlite3_bind_int64(st, 1, attempt_id);
  int rc = sqlite3_step(st);
  if (rc == SQLITE_ROW) chan_due_row(st, out);
  sqlite3_reset(st);
  return rc == SQLITE_ROW ? 0 : rc == SQLITE_DONE ? KK_ENOENT : KK_ESTORE;
}

int store_chan_due_ids(struct store *s, int64_t now, int64_t *cursor_due, int64_t *cursor_id,
                       int64_t *ids, int max, int *n) {
  sqlite3_stmt *st = sq_stmt(&s->r, ST_CHAN_DUE_IDS);
  sqlite3_bind_int64(st, 1, now);
  sqlite3_bind_int64(st, 2, *cursor_due);
  sqlite3_bind_int64(st, 3, *cursor_id);
  sqlite3_bind_int(st, 4, max);
  int k = 0, rc;
  while (k < max && (rc = sqlite3_step(st)) == SQLITE_ROW) {
    ids[k++] = sqlite3_column_int64(st, 0);
    *cursor_id = ids[k - 1];
    *cursor_due = sqlite3_column_int64(st, 1);
  }
  sqlite3_reset(st);
  *n = k;
  return 0;
}

static int64_t scalar(struct store *s, enum stmt_id id) {
  sqlite3_stmt *st = sq_stmt(&s->r, id);
  int64_t v = 0;
  if (sqlite3_step(st) == SQLITE_ROW) v = sqlite3_column_int64(st, 0);
  sqlite3_reset(st);
  return v;
}

int64_t store_chan_next_due(struct store *s) { return scalar(s, ST_CHAN_NEXT); }
int64_t store_wait_next(struct store *s) { return scalar(s, ST_WAIT_NEXT); }

/* ---- early statuses and receipts: per-scope caps and expiry ----------------- */

int64_t store_clamp_at(int64_t at, int64_t now) {
  if (at == 0) return now;
  if (at > now + STORE_CLAMP_MS) return now + STORE_CLAMP_MS;
  if (at < now - STORE_CLAMP_MS) return now - STORE_CLAMP_MS;
  return at;
}

void casc_early_forget(struct store *s) { s->necount = 0; }

/* The held-row count of key, counted with one query over the scope's index
   when it is not known; NULL when the count fails. */
static struct early_count *early_count(struct store *s, const char *key) {
  for (int i = 0; i < s->necount; i++)
    if (strcmp(s->ecount[i].key, key) == 0) return &s->ecount[i];
  sqlite3_stmt *st;
  if (key[0] == 's') {
    st = sq_stmt(&s->w, ST_ESTAT_COUNT);
    sqlite3_bind_int64(st, 1, strtoll(key + 1, NULL, 10));
  } else {
    st = sq_stmt(&s->w, ST_EARLY_COUNT);
    sq_bind_text(st, 1, key + 1);
  }
  int rc = sqlite3_step(st);
  int64_t n = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
  sqlite3_reset(st);
  if (rc != SQLITE_ROW) return NULL;
  if (s->necount == s->capecount) {
    /* Grows with the scopes that sent early rows since the last expiry run
       (accounts and routes), then starts again from nothing. */
    if (s->capecount >= 4096) {
      s->necount = 0;
    } else {
      s->capecount = s->capecount ? 2 * s->capecount : 16;
      s->ecount = kk_xrealloc(s->ecount, (size_t)s->capecount * sizeof s->ecount[0]);
    }
  }
  struct early_count *e = &s->ecount[s->necount++];
  snprintf(e->key, sizeof e->key, "%s", key);
  e->n = n;
  return e;
}

int casc_early_admit(struct store *s, const char *key) {
  struct early_count *e = early_count(s, key);
  if (e == NULL) return 1;   /* not counted: the cap is checked next time */
  if (e->n >= s->early_cap) {
    /* Said once per power of two, so that a flood does not flood the log. */
    s->early_refused_w++;
    if ((s->early_refused_w & (s->early_refused_w - 1)) == 0)
      kk_warnx(LOGCTX, "scope %s holds %lld early statuses or receipts, the most it may:"
               " refusing more (%llu refused so far)", key + 1, (long long)e->n,
               (unsigned long long)s->early_refused_w);
    return 0;
  }
  e->n++;  /* a replaced row counts twice until the next recount: on the safe side */
  return 1;
}

int casc_early_expire(struct store *s, int64_t cutoff) {
  static const enum stmt_id ids[2] = {ST_ESTAT_EXPIRE, ST_EARLY_EXPIRE};
  int gone = 0;
  for (int i = 0; i < 2; i++) {
    sqlite3_stmt *st = sq_stmt(&s->w, ids[i]);
    sqlite3_bind_int64(st, 1, cutoff);
    sqlite3_bind_int(st, 2, EARLY_EXPIRE_BATCH);
    int rc = sq_step_done(&s->w, st);
    if (rc) return rc;
    gone += sqlite3_changes(s->w.db);
  }
  if (gone == 0) return 0;
  s->early_expired_w += (uint64_t)gone;
  return casc_early_check(s);
}

struct early_expire_data { int64_t now; };

static int exec_early_expire(struct store *s, struct store_op *op) {
  struct early_expire_data *d = op->data;
  return casc_early_expire(s, d->now - EARLY_KEEP_MS);
}

void store_early_expire(struct store *s, int64_t now, store_done_cb done, void *arg) {
  struct early_expire_data *d = kk_xcalloc(1, sizeof *d);  /* freed with the operation */
  d->now = now;
  store_submit(s, store_op_new(exec_early_expire, done, arg, d, 0));
}

/* Applies the statuses a provider reported before its id was stored. */
static int apply_early(struct store *s, int64_t attempt_id, const char *provider_id) {
  struct conn *c = &s->w;
  struct casc_att a;
  if (!s->estat_any) return 0;  /* nearly always: nothing came early */
  if (casc_att_load(s, attempt_id, &a) != 0) return 0;
  sqlite3_stmt *st = sq_stmt(c, ST_ESTAT_GET);
  sq_bind_text(st, 1, a.channel);
  sqlite3_bind_int64(st, 2, a.scope);
  sq_bind_text(st, 3, provider_id);
  struct { char status[12]; char error[128]; int64_t at; } held[8];
  int n = 0;
  while (n < 8 && sqlite3_step(st) == SQLITE_ROW) {
    sq_col_copy(st, 0, held[n].status, sizeof held[n].status);
    sq_col_copy(st, 1, held[n].error, sizeof held[n].error);
    held[n].at = sqlite3_column_int64(st, 2);
    n++;
  }
  sqlite3_reset(st);
  if (n == 0) return 0;
  st = sq_stmt(c, ST_ESTAT_DEL);
  sq_bind_text(st, 1, a.channel);
  sqlite3_bind_int64(st, 2, a.scope);
  sq_bind_text(st, 3, provider_id);
  int rc = sq_step_done(c, st);
  if (rc == 0) rc = casc_early_check(s);
  for (int i = 0; i < n && rc == 0; i++)
    rc = casc_attempt_event(s, attempt_id, NULL, held[i].status, NULL,
                            held[i].error[0] ? held[i].error : NULL, held[i].at, 0);
  return rc;
}

struct chan_result_data {
  struct store_chan_result r;
  char provider_id[72];
  char error[160];
};

static int exec_chan_result(struct store *s, struct store_op *op) {
  struct chan_result_data *d = op->data;
  struct store_chan_result *r = &d->r;
  if (r->outcome == STORE_CHAN_RETRY) {
    sqlite3_stmt *st = sq_stmt(&s->w, ST_ATT_RETRY);
    sqlite3_bind_int64(st, 1, r->retry_at);
    sq_bind_text(st, 2, d->error[0] ? d->error : NULL);
    sqlite3_bind_int64(st, 3, r->attempt_id);
    int rc = sq_step_done(&s->w, st);
    if (rc == 0) note(s, STORE_NOTE_CHANNEL, 0, r->attempt_id, r->retry_at);
    return rc;
  }
  if (r->outcome == STORE_CHAN_SENT) {
    int rc = casc_attempt_event(s, r->attempt_id, NULL, "sent", d->provider_id, NULL, r->at,
                                r->units);
    return rc ? rc : apply_early(s, r->attempt_id, d->provider_id);
  }
  return casc_attempt_event(s, r->attempt_id, NULL, "failed", NULL, d->error, r->at, 0);
}

void store_chan_result(struct store *s, const struct store_chan_result *r,
                       store_done_cb done, void *arg) {
  struct chan_result_data *d = kk_xcalloc(1, sizeof *d);
  d->r = *r;
  snprintf(d->provider_id, sizeof d->provider_id, "%s", r->provider_id ? r->provider_id : "");
  snprintf(d->error, sizeof d->error, "%s", r->error ? r->error : "");
  d->r.provider_id = d->provider_id;
  d->r.error = d->error;
  struct store_op *op = store_keep(store_op_new(exec_chan_result, done, arg, d, 0));
  op->weight = 4;
  store_submit(s, op);
}

/* ---- operations: requests under way ------------------------------------ */

struct trying_data {
  int64_t at;
  int n;
  int64_t ids[];
};

static int exec_chan_trying(struct store *s, struct store_op *op) {
  struct trying_data *d = op->data;
  sqlite3_stmt *st = sq_stmt(&s->w, ST_ATT_TRYING);
  for (int i = 0; i < d->n; i++) {
    if (d->at)
      sqlite3_bind_int64(st, 1, d->at);
    else
      sqlite3_bind_null(st, 1);
    sqlite3_bind_int64(st, 2, d->ids[i]);
    int rc = sq_step_done(&s->w, st);
    if (rc) return rc;
  }
  return 0;
}

void store_chan_trying(struct store *s, const int64_t *ids, int n, int64_t at,
                       store_done_cb done, void *arg) {
  /* Freed with the operation. */
  struct trying_data *d = kk_xmalloc(sizeof *d + (size_t)n * sizeof d->ids[0]);
  d->at = at;
  d->n = n;
  memcpy(d->ids, ids, (size_t)n * sizeof d->ids[0]);
  struct store_op *op = store_keep(store_op_new(exec_chan_trying, done, arg, d, 0));
  op->weight = n;
  store_submit(s, op);
}

/* ---- operations: provider statuses ------------------------------------- */

struct chan_status_data {
  struct store_chan_status *st;   /* caller's, alive until done */
  char channel[20], provider_id[72], peer[32], status[12], error[128];
};

static int exec_chan_status(struct store *s, struct store_op *op) {
  struct chan_status_data *d = op->data;
  struct conn *c = &s->w;
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
    if (rc == 0) s->estat_any = 1;
    return rc;
  }
  return 0;
}

void store_chan_status(struct store *s, struct store_chan_status *st,
                       store_done_cb done, void *arg) {
  struct chan_status_data *d = kk_xcalloc(1, sizeof *d);
  st->at = store_clamp_at(st->at, store_now_ms());
  d->st = st;
  snprintf(d->channel, sizeof d->channel, "%s", st->channel);
  snprintf(d->provider_id, sizeof d->provider_id, "%s", st->provider_id ? st->provider_id : "");
  snprintf(d->peer, sizeof d->peer, "%s", st->peer ? st->peer : "");
  snprintf(d->status, sizeof d->status, "%s", st->status);
  snprintf(d->error, sizeof d->error, "%s", st->error ? st->error : "");
  struct store_op *op = store_op_new(exec_chan_status, done, arg, d, 0);
  op->weight = 4;
  store_submit(s, op);
}

/* ---- operations: step deadlines ------------------------------------------- */

int store_wait_due(struct store *s, int64_t now, struct store_wait_due *out, int max, int *n) {
  sqlite3_stmt *st = sq_stmt(&s->r, ST_WAIT_DUE);
  sqlite3_bind_int64(st, 1, now);
  sqlite3_bind_int(st, 2, max);
  int k = 0;
  while (k < max && sqlite3_step(st) == SQLITE_ROW) {
    out[k].msg_id = sqlite3_column_int64(st, 0);
    out[k].step = sqlite3_column_int(st, 1);
    out[k].wait_until = sqlite3_column_int64(st, 2);
    k++;
  }
  sqlite3_reset(st);
  *n = k;
  return 0;
}

struct timeout_data {
  int64_t msg_id;
  int step;
  int64_t at;
};

static int exec_step_timeout(struct store *s, struct store_op *op) {
  struct timeout_data *d = op->data;
  struct conn *c = &s->w;
  struct msg_row m;
  int rc = msg_load(s, d->msg_id, &m);
  if (rc == KK_ENOENT) return 0;
  if (rc) return rc;
  if (m.done || m.step != d->step) {
    msg_row_free(&m);
    return 0;
  }
  struct casc_att a;
  memset(&a, 0, sizeof a);
  rc = casc_att_load(s, m.attempt_id, &a);
  /* At the end of the validity the cascade ends here: no later step starts. */
  int expired = m.expires_at > 0 && d->at >= m.expires_at;
  if (rc == 0 && !expired && strcmp(a.channel, "sms") != 0 && strcmp(a.status, "sending") == 0 &&
      a.tries == 0) {
    /* Not tried yet: it waits in kaskad's own send queue (a backlog). The
       step's time runs from the provider's answer, so the deadline moves on
       rather than a backlog turning into needless sends on the next
       channels. A provider that answers "later" (tries > 0) or not at all
       (the request's timeout counts as a try) still times the step out. */
    struct store_step steps[STORE_MAX_STEPS];
    int n = store_steps_parse(m.cascade, steps);
    int64_t ms = d->step < n ? steps[d->step].timeout_ms : 0;
    if (ms > 0) {
      int64_t until = wait_deadline(&m, a.channel, d->at, ms);
      sqlite3_stmt *st = sq_stmt(c, ST_MSG_WAIT);
      sqlite3_bind_int64(st, 1, until);
      sqlite3_bind_int64(st, 2, m.id);
      rc = sq_step_done(c, st);
      if (rc == 0) note(s, STORE_NOTE_WAIT, m.id, m.attempt_id, until);
      msg_row_free(&m);
      return rc;
    }
  }
  if (rc == 0 && (strcmp(a.status, "sending") == 0 || strcmp(a.status, "sent") == 0 ||
                  strcmp(a.status, "delivered") == 0)) {
    /* "timeout" says the step passed on, "expired" that the validity ended
       during it; the timestamps keep what it reached. */
    const char *end = expired ? "expired" : "timeout";
    sqlite3_stmt *st = sq_stmt(c, ST_ATT_SET);
    sq_bind_text(st, 1, end);
    sq_bind_opt(st, 2, a.sent_at);
    sq_bind_opt(st, 3, a.delivered_at);
    sq_bind_opt(st, 4, a.read_at);
    sqlite3_bind_null(st, 5);
    sqlite3_bind_null(st, 6);
    sqlite3_bind_int64(st, 7, 0);
    sqlite3_bind_int64(st, 8, a.parts_sent);
    sqlite3_bind_int64(st, 9, m.attempt_id);
    rc = sq_step_done(c, st);
    if (rc == 0) {
      st = sq_stmt(c, ST_EVENT_INSERT);
      sqlite3_bind_int64(st, 1, m.id);
      sqlite3_bind_int64(st, 2, m.attempt_id);
      char ev[40];
      snprintf(ev, sizeof ev, "%s:%s", a.channel, end);
      sq_bind_text(st, 3, ev);
      sqlite3_bind_int64(st, 4, d->at);
      sqlite3_bind_null(st, 5);
      rc = sq_step_done(c, st);
    }
    count(s, a.channel, C_TIMEOUT);
    if (!expired) count(s, a.channel, C_FALLTHROUGH);
  } else if (rc == KK_ENOENT) {
    rc = 0;
  }
  if (rc == 0) {
    if (strcmp(a.channel, "sms") == 0) {
      sqlite3_stmt *st = sq_stmt(c, ST_MSG_CLEAR_DUE);
      sqlite3_bind_int64(st, 1, m.id);
      rc = sq_step_done(c, st);
      note(s, STORE_NOTE_SMS_CANCEL, m.id, m.attempt_id, d->at);
    }
  }
  int64_t started = 0;
  char next_channel[20] = "";
  if (rc == 0 && expired)
    cascade_done(s, &m);
  else if (rc == 0)
    rc = start_from(s, &m, d->step + 1, d->at, &started, next_channel, sizeof next_channel);
  struct change ch = {.attempt_id = started ? started : m.attempt_id,
                      .channel = next_channel[0] ? next_channel : a.channel,
                      .end_status = expired ? "expired" : "failed",
                      .expired = expired,
                      .error = expired ? "the validity ended before a step reached what it "
                                         "waited for"
                                       : "no step reached what it waited for in time"};
  if (rc == 0) rc = msg_refresh(s, &m, d->at, &ch);
  msg_row_free(&m);
  return rc;
}

void store_step_timeout(struct store *s, int64_t msg_id, int step, int64_t at,
                        store_done_cb done, void *arg) {
  struct timeout_data *d = kk_xcalloc(1, sizeof *d);
  d->msg_id = msg_id;
  d->step = step;
  d->at = at;
  struct store_op *op = store_op_new(exec_step_timeout, done, arg, d, 0);
  op->weight = 5;
  store_submit(s, op);
}

/* ---- settings: channels, prices, named cascades --------------------------- */

struct kv_data {
  int64_t account_id;
  char key[72];
  char *value;              /* owned; NULL: delete */
  int64_t num;
  enum stmt_id put, del;
  int kind;                 /* 0 text value, 1 number */
  enum store_note_kind note;  /* what the commit tells its subscribers */
};

static int exec_kv(struct store *s, struct store_op *op) {
  struct kv_data *d = op->data;
  /* Settings change: forget what was remembered of them. */
  memset(s->price_memo, 0, sizeof s->price_memo);
  memset(s->scope_memo, 0, sizeof s->scope_memo);
  int del = d->kind == 0 ? d->value == NULL : d->num < 0;
  sqlite3_stmt *st = sq_stmt(&s->w, del ? d->del : d->put);
  sqlite3_bind_int64(st, 1, d->account_id);
  sq_bind_text(st, 2, d->key);
  if (!del) {
    if (d->kind == 0) {
      sq_bind_text(st, 3, d->value);
      sqlite3_bind_int64(st, 4, store_now_ms());
    } else {
      sqlite3_bind_int64(st, 3, d->num);
    }
  }
  int rc = sq_step_done(&s->w, st);
  if (rc == 0) note_cfg(s, d->note, d->account_id, d->key, del ? NULL : d->value, NULL, d->num);
  free(d->value);
  d->value = NULL;
  return rc;
}

static void kv_put(struct store *s, int64_t account_id, const char *key, const char *value,
                   int64_t num, int kind, enum stmt_id put, enum stmt_id del,
                   enum store_note_kind note, store_done_cb done, void *arg) {
  struct kv_data *d = kk_xcalloc(1, sizeof *d);
  d->account_id = account_id;
  snprintf(d->key, sizeof d->key, "%s", key);
  d->value = value ? kk_xstrdup(value) : NULL;
  d->num = num;
  d->kind = kind;
  d->put = put;
  d->del = del;
  d->note = note;
  store_submit(s, store_atomic(store_op_new(exec_kv, done, arg, d, 0)));
}

void store_channel_put(struct store *s, int64_t account_id, const char *channel,
                       const char *config, store_done_cb done, void *arg) {
  kv_put(s, account_id, channel, config, 0, 0, ST_CHSET_PUT, ST_CHSET_DEL, STORE_NOTE_CHANNEL_CFG,
         done, arg);
}

void store_price_put(struct store *s, int64_t account_id, const char *channel, int64_t price,
                     store_done_cb done, void *arg) {
  kv_put(s, account_id, channel, NULL, price, 1, ST_PRICE_PUT, ST_PRICE_DEL, STORE_NOTE_PRICE, done,
         arg);
}

void store_cascade_put(struct store *s, int64_t account_id, const char *name, const char *steps,
                       store_done_cb done, void *arg) {
  kv_put(s, account_id, name, steps, 0, 0, ST_CASC_PUT, ST_CASC_DEL, STORE_NOTE_CASCADE_CFG,
         done, arg);
}

int store_channels_each(struct store *s,
                        void (*fn)(void *arg, int64_t account_id, const char *channel,
                                   const char *config),
                        void *arg) {
  sqlite3_stmt *st = sq_stmt(&s->r, ST_CHSET_ALL);
  int rc;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW)
    fn(arg, sqlite3_column_int64(st, 0), (const char *)sqlite3_column_text(st, 1),
       (const char *)sqlite3_column_text(st, 2));
  sqlite3_reset(st);
  return rc == SQLITE_DONE ? 0 : KK_ESTORE;
}

int store_prices_each(struct store *s,
                      void (*fn)(void *arg, int64_t account_id, const char *channel,
                                 int64_t price),
                      void *arg) {
  sqlite3_stmt *st = sq_stmt(&s->r, ST_PRICE_ALL);
  int rc;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW)
    fn(arg, sqlite3_column_int64(st, 0), (const char *)sqlite3_column_text(st, 1),
       sqlite3_column_int64(st, 2));
  sqlite3_reset(st);
  return rc == SQLITE_DONE ? 0 : KK_ESTORE;
}

int store_cascade_get(struct store *s, int64_t account_id, const char *name, char **out) {
  sqlite3_stmt *st = sq_stmt(&s->r, ST_CASC_GET);
  sqlite3_bind_int64(st, 1, account_id);
  sq_bind_text(st, 2, name);
  int rc = sqlite3_step(st);
  if (rc == SQLITE_ROW) *out = sq_col_dup(st, 0);
  sqlite3_reset(st);
  return rc == SQLITE_ROW ? 0 : rc == SQLITE_DONE ? KK_ENOENT : KK_ESTORE;
}

int store_cascades_each(struct store *s, int64_t account_id,
                        void (*fn)(void *arg, const char *name, const char *steps), void *arg) {
  sqlite3_stmt *st = sq_stmt(&s->r, ST_CASC_ALL);
  sqlite3_bind_int64(st, 1, account_id);
  int rc;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW)
    fn(arg, (const char *)sqlite3_column_text(st, 0), (const char *)sqlite3_column_text(st, 1));
  sqlite3_reset(st);
  return rc == SQLITE_DONE ? 0 : KK_ESTORE;
}

/* ---- WhatsApp customer-service windows ------------------------------------ */

struct wa_inbound_data {
  int64_t scope;
  char phone[24];
  int64_t at;
};

static int exec_wa_inbound(struct store *s, struct store_op *op) {
  struct wa_inbound_data *d = op->data;
  sqlite3_stmt *st = sq_stmt(&s->w, ST_WA_IN_PUT);
  sqlite3_bind_int64(st, 1, d->scope);
  sq_bind_text(st, 2, d->phone);
  sqlite3_bind_int64(st, 3, d->at);
  return sq_step_done(&s->w, st);
}

void store_wa_inbound(struct store *s, int64_t scope, const char *phone, int64_t at,
                      store_done_cb done, void *arg) {
  struct wa_inbound_data *d = kk_xcalloc(1, sizeof *d);
  d->scope = scope;
  snprintf(d->phone, sizeof d->phone, "%s", phone);
  d->at = at;
  store_submit(s, store_op_new(exec_wa_inbound, done, arg, d, 0));
}

int store_wa_last_inbound(struct store *s, int64_t scope, const char *phone, int64_t *at) {
  sqlite3_stmt *st = sq_stmt(&s->r, ST_WA_IN_GET);
  sqlite3_bind_int64(st, 1, scope);
  sq_bind_text(st, 2, phone);
  int rc = sqlite3_step(st);
  if (rc == SQLITE_ROW) *at = sqlite3_column_int64(st, 0);
  sqlite3_reset(st);
  return rc == SQLITE_ROW ? 0 : rc == SQLITE_DONE ? KK_ENOENT : KK_ESTORE;
}
