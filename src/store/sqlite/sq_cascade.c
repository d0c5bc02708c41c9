/*
 * sq_cascade.c - the cascade, run by the SQLite writer inside its
 * transactions (see "cascades and channels" in store.h): what the cascade's
 * rules need from the rows, and the rows they change.
 *
 * Every status of every channel comes through casc_attempt_event(), every
 * step deadline through sq_step_timeout() and every new message through
 * casc_start(): each loads the message's rows, has the neutral glue
 * (store_casc.h) ask the cascade's rules what follows, giving them the rows
 * they ask for (sq_casc_ops), and writes what they decided in the same
 * transaction, so a crash leaves either all of it or none. What the loop
 * must do next (send a channel attempt, queue an SMS, arm a deadline) is
 * recorded as notes that reach the loop only after the commit.
 *
 * The channel side (due sends, provider statuses, early statuses, settings)
 * is in sq_chan.c.
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cascade/cascade_fsm.h"
#include "core/kk_err.h"
#include "core/kk_log.h"
#include "core/kk_mem.h"
#include "core/kk_status.h"
#include "store/sqlite/sq_int.h"

#define LOGCTX "cascade"

/* ---- reading rows (writer) ---------------------------------------------- */

static int msg_load(struct store *s, int64_t id, struct casc_msg *m) {
  sqlite3_stmt *st = sq_stmt(&SQ(s)->w, ST_MSG_ROW);
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
  m->delivered_twice = sqlite3_column_int(st, 14);
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
  a->priced = 0;
  a->price = 0;
}

int casc_att_load(struct store *s, int64_t id, struct casc_att *a) {
  sqlite3_stmt *st = sq_stmt(&SQ(s)->w, ST_ATT_ROW);
  sqlite3_bind_int64(st, 1, id);
  int rc = sqlite3_step(st);
  if (rc == SQLITE_ROW) casc_att_cols(st, 0, a);
  sqlite3_reset(st);
  return rc == SQLITE_ROW ? 0 : rc == SQLITE_DONE ? KK_ENOENT : KK_ESTORE;
}

static int att_cost(struct store *s, int64_t id, int64_t *cost) {
  sqlite3_stmt *st = sq_stmt(&SQ(s)->w, ST_ATT_COST);
  sqlite3_bind_int64(st, 1, id);
  int rc = sqlite3_step(st);
  *cost = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
  sqlite3_reset(st);
  return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : KK_ESTORE;
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
  struct store_memo *mm = memo_find(SQ(s)->price_memo, account_id, channel);
  if (mm) return mm->value;
  sqlite3_stmt *st = sq_stmt(&SQ(s)->w, ST_PRICE_GET);
  sq_bind_text(st, 1, channel);
  sqlite3_bind_int64(st, 2, account_id);
  int64_t p = 0;
  if (sqlite3_step(st) == SQLITE_ROW) p = sqlite3_column_int64(st, 0);
  sqlite3_reset(st);
  memo_put(SQ(s)->price_memo, account_id, channel, p);
  return p;
}

/* Whose settings a channel uses for an account: the account's, the
   operator's (0), or -1 when neither has any. */
static int64_t chan_scope(struct store *s, int64_t account_id, const char *channel) {
  struct store_memo *mm = memo_find(SQ(s)->scope_memo, account_id, channel);
  if (mm) return mm->value;
  sqlite3_stmt *st = sq_stmt(&SQ(s)->w, ST_CHAN_SCOPE);
  sq_bind_text(st, 1, channel);
  sqlite3_bind_int64(st, 2, account_id);
  int64_t scope = -1;
  if (sqlite3_step(st) == SQLITE_ROW) scope = sqlite3_column_int64(st, 0);
  sqlite3_reset(st);
  memo_put(SQ(s)->scope_memo, account_id, channel, scope);
  return scope;
}

/* ---- load, rules, write ------------------------------------------------------ */

/* The message's extra JSON (casc_ops.extra). */
static char *load_extra(struct store *s, int64_t msg_id) {
  sqlite3_stmt *st = sq_stmt(&SQ(s)->w, ST_MSG_EXTRA);
  sqlite3_bind_int64(st, 1, msg_id);
  char *x = NULL;
  if (sqlite3_step(st) == SQLITE_ROW) x = sq_col_dup(st, 0);
  sqlite3_reset(st);
  return x;
}

/* Every attempt of the message, as the rules ask for them when an attempt
   reached the person or lost what it had (casc_ops.attempts). */
static int load_attempts(struct store *s, int64_t msg_id, struct cfsm_att *att, int max, int *natt) {
  sqlite3_stmt *st = sq_stmt(&SQ(s)->w, ST_ATT_OF_MSG);
  sqlite3_bind_int64(st, 1, msg_id);
  int n = 0, rc;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW && n < max) {
    struct cfsm_att *a = &att[n++];
    char text[20];
    memset(a, 0, sizeof *a);
    a->id = sqlite3_column_int64(st, 0);
    sq_col_copy(st, 1, text, sizeof text);
    a->chan = kk_chan_parse(text);
    sq_col_copy(st, 2, text, sizeof text);
    a->status = kk_status_parse(text);
    a->sent_at = sqlite3_column_int64(st, 3);
    a->delivered_at = sqlite3_column_int64(st, 4);
    a->read_at = sqlite3_column_int64(st, 5);
  }
  sqlite3_reset(st);
  *natt = n;
  return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : KK_ESTORE;
}

/* Appends the event and, when the message has a callback URL, the outbox
   row with what the callback tells (callback/ builds its JSON). */
static int record_event(struct store *s, const struct casc_msg *m, int64_t attempt_id,
                        const char *status, const char *channel, const char *error,
                        int64_t cost, int64_t at) {
  struct conn *c = &SQ(s)->w;
  sqlite3_stmt *st = sq_stmt(c, ST_EVENT_INSERT);
  sqlite3_bind_int64(st, 1, m->id);
  sqlite3_bind_int64(st, 2, attempt_id);
  sq_bind_text(st, 3, status);
  sqlite3_bind_int64(st, 4, at);
  sq_bind_text(st, 5, error);
  int rc = sq_step_done(c, st);
  if (rc || m->callback_url[0] == '\0') return rc;
  st = sq_stmt(c, ST_OUTBOX_INSERT);
  sqlite3_bind_int64(st, 1, m->account_id);
  sqlite3_bind_int64(st, 2, m->id);
  sq_bind_text(st, 3, m->callback_url);
  sqlite3_bind_int64(st, 4, at);
  sq_bind_text(st, 5, m->public_id);
  sq_bind_text(st, 6, status);
  sq_bind_text(st, 7, channel);
  sq_bind_text(st, 8, m->to);
  sqlite3_bind_int64(st, 9, cost);
  sq_bind_text(st, 10, error);
  return sq_step_done(c, st);
}

static int fx_att_set(struct casc_run *r, const struct cfsm_fx *f) {
  sqlite3_stmt *st = sq_stmt(&SQ(r->s)->w, ST_ATT_SET);
  sq_bind_text(st, 1, kk_status_name(f->status));
  sq_bind_opt(st, 2, f->t0);
  sq_bind_opt(st, 3, f->t1);
  sq_bind_opt(st, 4, f->t2);
  sq_bind_text(st, 5, r->provider_id && r->provider_id[0] ? r->provider_id : NULL);
  sq_bind_text(st, 6, r->error && r->error[0] ? r->error : NULL);
  sqlite3_bind_int64(st, 7, f->cost);
  sqlite3_bind_int64(st, 8, r->parts_sent);
  sqlite3_bind_int64(st, 9, f->attempt_id);
  return sq_step_done(&SQ(r->s)->w, st);
}

static int fx_att_add(struct casc_run *r, const struct cfsm_fx *f) {
  struct casc_msg *m = r->m;
  const char *ch = r->steps[f->step].channel;
  int sending = f->status == KK_ST_SENDING;
  int sms = f->chan == KK_CHAN_SMS;
  char why[64] = "";
  if (f->use == CFSM_USE_NO_CONFIG) {
    snprintf(why, sizeof why, "channel not configured");
  } else if (f->use == CFSM_USE_NO_ADDRESS) {
    const char *field = kk_chan_address_field(f->chan);
    snprintf(why, sizeof why, "no %s",
             field && !kk_chan_phone_fallback(f->chan) ? field : "phone number");
  } else if (f->error) {
    snprintf(why, sizeof why, "%s", f->error);   /* held: quiet_hours */
  }
  int64_t aid = sq_new_id(r->s, STORE_ID_ATTEMPT);
  sqlite3_stmt *st = sq_stmt(&SQ(r->s)->w, ST_ATT_INSERT);
  sqlite3_bind_int64(st, 1, aid);
  sqlite3_bind_int64(st, 2, m->id);
  sqlite3_bind_int(st, 3, f->step);
  sq_bind_text(st, 4, ch);
  sq_bind_text(st, 5, sms ? m->route : NULL);
  sq_bind_text(st, 6, kk_status_name(f->status));
  sqlite3_bind_int(st, 7, sms ? m->segments : 1);
  sq_bind_text(st, 8, f->use == CFSM_USE_NO_ADDRESS ? NULL : r->addr[f->step]);
  sqlite3_bind_int64(st, 9, sending ? r->scope[f->step] : 0);
  sq_bind_text(st, 10, why[0] ? why : NULL);
  sqlite3_bind_int64(st, 11, f->t1);
  sq_bind_opt(st, 12, f->t0);
  int rc = sq_step_done(&SQ(r->s)->w, st);
  if (rc == 0 && sending) r->new_id = aid;
  char hold[256];
  if (rc == 0 && casc_hold_decision(f, ch, hold, sizeof hold)) {
    st = sq_stmt(&SQ(r->s)->w, ST_MSG_DECIDE);
    sq_bind_text(st, 1, hold);
    sqlite3_bind_int64(st, 2, m->id);
    rc = sq_step_done(&SQ(r->s)->w, st);
  }
  return rc;
}

static int fx_msg_step(struct casc_run *r, const struct cfsm_fx *f) {
  sqlite3_stmt *st = sq_stmt(&SQ(r->s)->w, ST_MSG_STEP);
  sqlite3_bind_int(st, 1, f->step);
  sqlite3_bind_int64(st, 2, casc_att_id(r, f->attempt_id));
  sq_bind_opt(st, 3, f->t0);
  sq_bind_opt(st, 4, f->t1);
  sqlite3_bind_int64(st, 5, f->t2);
  sq_bind_text(st, 6, kk_chan_name(f->chan));
  sqlite3_bind_int64(st, 7, r->m->id);
  return sq_step_done(&SQ(r->s)->w, st);
}

static int fx_msg_fin(struct casc_run *r, const struct cfsm_fx *f) {
  sqlite3_stmt *st = sq_stmt(&SQ(r->s)->w, ST_MSG_FIN);
  sq_bind_text(st, 1, kk_status_name(f->status));
  sq_bind_text(st, 2, kk_chan_name(f->chan));
  sqlite3_bind_int64(st, 3, f->cost);
  sqlite3_bind_int(st, 4, f->delivered_twice);
  sqlite3_bind_int64(st, 5, f->t1);
  sqlite3_bind_int(st, 6, (f->flags & CFSM_FIN_DONE) != 0);
  sqlite3_bind_int(st, 7, (f->flags & CFSM_FIN_CLEAR_DUE) != 0);
  sqlite3_bind_int(st, 8, (f->flags & CFSM_FIN_WAIT) != 0);
  sqlite3_bind_int64(st, 9, f->t0);
  sqlite3_bind_int64(st, 10, r->m->id);
  return sq_step_done(&SQ(r->s)->w, st);
}

/* A statement with the message's id last and up to one time before it. */
static int fx_msg_simple(struct casc_run *r, enum stmt_id id, int with_time, int64_t t) {
  sqlite3_stmt *st = sq_stmt(&SQ(r->s)->w, id);
  int i = 1;
  if (with_time) sqlite3_bind_int64(st, i++, t);
  sqlite3_bind_int64(st, i, r->m->id);
  return sq_step_done(&SQ(r->s)->w, st);
}

static int fx_trace(struct casc_run *r, const struct cfsm_fx *f) {
  sqlite3_stmt *st = sq_stmt(&SQ(r->s)->w, ST_EVENT_INSERT);
  sqlite3_bind_int64(st, 1, r->m->id);
  sqlite3_bind_int64(st, 2, f->attempt_id);
  char ev[40];
  snprintf(ev, sizeof ev, "%s:%s", kk_chan_name(f->chan), kk_status_name(f->status));
  sq_bind_text(st, 3, ev);
  sqlite3_bind_int64(st, 4, f->t0);
  sq_bind_text(st, 5, f->error);
  return sq_step_done(&SQ(r->s)->w, st);
}

/* Writes one effect that is a row (casc_ops.write). */
static int fx_write(struct casc_run *r, const struct cfsm_fx *f) {
  switch (f->kind) {
  case CFSM_FX_ATT_SET: return fx_att_set(r, f);
  case CFSM_FX_ATT_ADD: return fx_att_add(r, f);
  case CFSM_FX_MSG_STEP: return fx_msg_step(r, f);
  case CFSM_FX_MSG_DONE: return fx_msg_simple(r, ST_MSG_DONE, 1, f->t0);
  case CFSM_FX_MSG_CLEAR_DUE: return fx_msg_simple(r, ST_MSG_CLEAR_DUE, 0, 0);
  case CFSM_FX_MSG_WAIT: return fx_msg_simple(r, ST_MSG_WAIT, 1, f->t0);
  case CFSM_FX_MSG_FIN: return fx_msg_fin(r, f);
  case CFSM_FX_EVENT:
    return record_event(r->s, r->m, casc_att_id(r, f->attempt_id), kk_status_name(f->status),
                        kk_chan_name(f->chan), f->error, f->cost, f->t0);
  case CFSM_FX_TRACE: return fx_trace(r, f);
  default: return 0;   /* notes and counters: the glue's */
  }
}

static const struct casc_ops sq_casc_ops = {
    .extra = load_extra,
    .scope = chan_scope,
    .price = casc_price,
    .attempts = load_attempts,
    .write = fx_write,
    .att_load = casc_att_load,
    .charge = sq_money_charge,
    .release = sq_money_release,
    .refund = sq_money_refund,
    .att_cost = att_cost,
};

int casc_start(struct store *s, struct store_msg_new *n, struct casc_first *f) {
  return casc_new(s, &sq_casc_ops, &SQ(s)->cstats_w, n, f);
}

/* ---- attempt events ------------------------------------------------------- */

int casc_attempt_event(struct store *s, int64_t attempt_id, const struct casc_att *pre,
                       const char *status, const char *provider_id, const char *error,
                       int64_t at, int units) {
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
  struct casc_msg m;
  rc = msg_load(s, a.msg_id, &m);
  if (rc == KK_ENOENT) return 0;
  if (rc) return rc;
  return casc_event(s, &sq_casc_ops, &SQ(s)->cstats_w, &m, &a, attempt_id, status, provider_id,
                    error, at, units);
}

/* ---- operations: send results ------------------------------------------- */

/* Applies the statuses a provider reported before its id was stored. */
static int apply_early(struct store *s, int64_t attempt_id, const char *provider_id) {
  struct conn *c = &SQ(s)->w;
  struct casc_att a;
  if (!SQ(s)->estat_any) return 0;  /* nearly always: nothing came early */
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

int sq_chan_result(struct store *s, struct store_op *op) {
  struct store_chan_result_data *d = op->data;
  struct store_chan_result *r = &d->r;
  if (r->outcome == STORE_CHAN_RETRY || r->outcome == STORE_CHAN_WAIT) {
    sqlite3_stmt *st = sq_stmt(&SQ(s)->w, ST_ATT_RETRY);
    sqlite3_bind_int64(st, 1, r->retry_at);
    sq_bind_text(st, 2, d->error[0] ? d->error : NULL);
    sqlite3_bind_int64(st, 3, r->attempt_id);
    sqlite3_bind_int(st, 4, r->outcome == STORE_CHAN_RETRY);
    int rc = sq_step_done(&SQ(s)->w, st);
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

/* ---- operations: step deadlines ------------------------------------------- */

int sq_wait_due(struct store *s, int64_t now, struct store_wait_due *out, int max, int *n) {
  sqlite3_stmt *st = sq_stmt(&SQ(s)->r, ST_WAIT_DUE);
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

int sq_step_timeout(struct store *s, struct store_op *op) {
  struct store_timeout_data *d = op->data;
  struct casc_msg m;
  int rc = msg_load(s, d->msg_id, &m);
  if (rc == KK_ENOENT) return 0;
  if (rc) return rc;
  return casc_deadline(s, &sq_casc_ops, &SQ(s)->cstats_w, &m, d->step, d->at);
}

/* ---- operations: cancelling a scheduled message ----------------------------- */

int sq_msg_cancel(struct store *s, struct store_op *op) {
  struct store_msg_cancel *c = op->data;
  struct conn *w = &SQ(s)->w;
  sqlite3_stmt *st = sq_stmt(w, ST_MSG_ID_OF);
  sqlite3_bind_int64(st, 1, c->account_id);
  sq_bind_text(st, 2, c->public_id);
  int64_t id = 0;
  int rc = sqlite3_step(st);
  if (rc == SQLITE_ROW) id = sqlite3_column_int64(st, 0);
  sqlite3_reset(st);
  if (rc != SQLITE_ROW && rc != SQLITE_DONE) return KK_ESTORE;
  c->found = c->cancelled = 0;
  if (id == 0) return 0;
  struct casc_msg m;
  rc = msg_load(s, id, &m);
  if (rc == KK_ENOENT) return 0;
  if (rc) return rc;
  c->found = 1;
  snprintf(c->status, sizeof c->status, "%s", m.status);
  if (strcmp(m.status, "scheduled") != 0) {
    casc_msg_free(&m);
    return 0;
  }
  st = sq_stmt(w, ST_MSG_CANCEL);
  sqlite3_bind_int64(st, 1, c->at);
  sqlite3_bind_int64(st, 2, id);
  rc = sq_step_done(w, st);
  if (rc == 0 && m.attempt_id) {
    st = sq_stmt(w, ST_ATT_CANCEL);
    sqlite3_bind_int64(st, 1, m.attempt_id);
    rc = sq_step_done(w, st);
  }
  struct casc_run r = {.s = s, .m = &m};
  if (rc == 0) rc = sq_money_release(&r);
  if (rc == 0) rc = record_event(s, &m, m.attempt_id, "cancelled", m.channel, NULL, 0, c->at);
  if (rc == 0 && m.attempt_id)
    note(s, strcmp(m.channel, "sms") == 0 ? STORE_NOTE_SMS_CANCEL : STORE_NOTE_CHANNEL_END, id,
         m.attempt_id, c->at);
  if (rc == 0) {
    c->cancelled = 1;
    snprintf(c->status, sizeof c->status, "cancelled");
  }
  casc_msg_free(&m);
  return rc;
}
