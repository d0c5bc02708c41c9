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
 * recorded as notes that reach the loop only after the commit. What the
 * rules' effects and the cascade's operations (send results, deadlines,
 * cancelling) do is the glue's; this file has the SQL they run through.
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

static void msg_row(sqlite3_stmt *st, void *out) {
  struct casc_msg *m = out;
  memset(m, 0, sizeof *m);
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
}

/* Reads message id: 0, KK_ENOENT or KK_ESTORE. */
static int msg_load(struct store *s, int64_t id, struct casc_msg *m) {
  sqlite3_stmt *st = sq_stmt(&SQ(s)->w, ST_MSG_ROW);
  sqlite3_bind_int64(st, 1, id);
  int rc = sq_lookup(st, msg_row, m);
  if (rc == 0) m->id = id;
  return rc;
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

static void att_row(sqlite3_stmt *st, void *out) { casc_att_cols(st, 0, out); }

int casc_att_load(struct store *s, int64_t id, struct casc_att *a) {
  sqlite3_stmt *st = sq_stmt(&SQ(s)->w, ST_ATT_ROW);
  sqlite3_bind_int64(st, 1, id);
  return sq_lookup(st, att_row, a);
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

/* ---- the rows the rules change (casc_ops) ------------------------------------ */

static int event_row(struct store *s, int64_t msg_id, int64_t attempt_id, const char *status,
                     int64_t at, const char *detail) {
  sqlite3_stmt *st = sq_stmt(&SQ(s)->w, ST_EVENT_INSERT);
  sqlite3_bind_int64(st, 1, msg_id);
  sqlite3_bind_int64(st, 2, attempt_id);
  sq_bind_text(st, 3, status);
  sqlite3_bind_int64(st, 4, at);
  sq_bind_text(st, 5, detail);
  return sq_step_done(&SQ(s)->w, st);
}

/* The outbox row with what m's callback tells (callback/ builds its JSON). */
static int outbox_row(struct store *s, const struct casc_msg *m, const char *status,
                      const char *channel, const char *error, int64_t cost, int64_t at) {
  sqlite3_stmt *st = sq_stmt(&SQ(s)->w, ST_OUTBOX_INSERT);
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
  return sq_step_done(&SQ(s)->w, st);
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

static int fx_att_add(struct casc_run *r, const struct cfsm_fx *f, int64_t id, const char *why) {
  struct casc_msg *m = r->m;
  int sms = f->chan == KK_CHAN_SMS;
  sqlite3_stmt *st = sq_stmt(&SQ(r->s)->w, ST_ATT_INSERT);
  sqlite3_bind_int64(st, 1, id);
  sqlite3_bind_int64(st, 2, m->id);
  sqlite3_bind_int(st, 3, f->step);
  sq_bind_text(st, 4, r->steps[f->step].channel);
  sq_bind_text(st, 5, sms ? m->route : NULL);
  sq_bind_text(st, 6, kk_status_name(f->status));
  sqlite3_bind_int(st, 7, sms ? m->segments : 1);
  sq_bind_text(st, 8, f->use == CFSM_USE_NO_ADDRESS ? NULL : r->addr[f->step]);
  sqlite3_bind_int64(st, 9, f->status == KK_ST_SENDING ? r->scope[f->step] : 0);
  sq_bind_text(st, 10, why);
  sqlite3_bind_int64(st, 11, f->t1);
  sq_bind_opt(st, 12, f->t0);
  return sq_step_done(&SQ(r->s)->w, st);
}

static int fx_decide(struct casc_run *r, const char *decision) {
  sqlite3_stmt *st = sq_stmt(&SQ(r->s)->w, ST_MSG_DECIDE);
  sq_bind_text(st, 1, decision);
  sqlite3_bind_int64(st, 2, r->m->id);
  return sq_step_done(&SQ(r->s)->w, st);
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

/* MSG_DONE, MSG_CLEAR_DUE, MSG_WAIT: the message's id last, t before it
   (but for CLEAR_DUE). */
static int fx_msg_mark(struct casc_run *r, enum cfsm_fx_kind kind, int64_t t) {
  enum stmt_id id = kind == CFSM_FX_MSG_DONE ? ST_MSG_DONE
                    : kind == CFSM_FX_MSG_WAIT ? ST_MSG_WAIT
                                               : ST_MSG_CLEAR_DUE;
  sqlite3_stmt *st = sq_stmt(&SQ(r->s)->w, id);
  int i = 1;
  if (kind != CFSM_FX_MSG_CLEAR_DUE) sqlite3_bind_int64(st, i++, t);
  sqlite3_bind_int64(st, i, r->m->id);
  return sq_step_done(&SQ(r->s)->w, st);
}

static const struct casc_ops sq_casc_ops;


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

/* ---- operations: send results, step deadlines, cancelling ------------------ */

/* The statuses a provider reported before its id was stored (casc_ops.early). */
static int take_early(struct store *s, int64_t attempt_id, const char *provider_id,
                      struct casc_held *held, int *n) {
  struct conn *c = &SQ(s)->w;
  struct casc_att a;
  *n = 0;
  if (!SQ(s)->estat_any) return 0;  /* nearly always: nothing came early */
  if (casc_att_load(s, attempt_id, &a) != 0) return 0;
  sqlite3_stmt *st = sq_stmt(c, ST_ESTAT_GET);
  sq_bind_text(st, 1, a.channel);
  sqlite3_bind_int64(st, 2, a.scope);
  sq_bind_text(st, 3, provider_id);
  int k = 0;
  while (k < CASC_HELD_MAX && sqlite3_step(st) == SQLITE_ROW) {
    sq_col_copy(st, 0, held[k].status, sizeof held[k].status);
    sq_col_copy(st, 1, held[k].error, sizeof held[k].error);
    held[k].at = sqlite3_column_int64(st, 2);
    k++;
  }
  sqlite3_reset(st);
  if (k == 0) return 0;
  st = sq_stmt(c, ST_ESTAT_DEL);
  sq_bind_text(st, 1, a.channel);
  sqlite3_bind_int64(st, 2, a.scope);
  sq_bind_text(st, 3, provider_id);
  int rc = sq_step_done(c, st);
  if (rc == 0) rc = casc_early_check(s);
  if (rc == 0) *n = k;
  return rc;
}

static int att_retry(struct store *s, int64_t attempt_id, int64_t retry_at, const char *error,
                     int counts_try) {
  sqlite3_stmt *st = sq_stmt(&SQ(s)->w, ST_ATT_RETRY);
  sqlite3_bind_int64(st, 1, retry_at);
  sq_bind_text(st, 2, error);
  sqlite3_bind_int64(st, 3, attempt_id);
  sqlite3_bind_int(st, 4, counts_try);
  return sq_step_done(&SQ(s)->w, st);
}

int sq_chan_result(struct store *s, struct store_op *op) {
  return casc_chan_result(s, &sq_casc_ops, op);
}

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
  return casc_timeout(s, &sq_casc_ops, &SQ(s)->cstats_w, op);
}

/* Message public_id of an account (casc_ops.msg_find). */
static int msg_find(struct store *s, int64_t account_id, const char *public_id,
                    struct casc_msg *m) {
  sqlite3_stmt *st = sq_stmt(&SQ(s)->w, ST_MSG_ID_OF);
  sqlite3_bind_int64(st, 1, account_id);
  sq_bind_text(st, 2, public_id);
  int64_t id = 0;
  int rc = sq_lookup(st, sq_row_int64, &id);
  if (rc) return rc;
  return id ? msg_load(s, id, m) : KK_ENOENT;
}

/* Scheduled message m cancelled (casc_ops.msg_cancel). */
static int msg_cancel(struct store *s, const struct casc_msg *m, int64_t at) {
  struct conn *w = &SQ(s)->w;
  sqlite3_stmt *st = sq_stmt(w, ST_MSG_CANCEL);
  sqlite3_bind_int64(st, 1, at);
  sqlite3_bind_int64(st, 2, m->id);
  int rc = sq_step_done(w, st);
  if (rc == 0 && m->attempt_id) {
    st = sq_stmt(w, ST_ATT_CANCEL);
    sqlite3_bind_int64(st, 1, m->attempt_id);
    rc = sq_step_done(w, st);
  }
  struct casc_run r = {.s = s, .m = (struct casc_msg *)m};
  return rc ? rc : sq_money_release(&r);
}

int sq_msg_cancel(struct store *s, struct store_op *op) {
  return casc_cancel(s, &sq_casc_ops, op);
}

static const struct casc_ops sq_casc_ops = {
    CASC_OPS_ALIKE(sq),
    .price = casc_price,
    .att_load = casc_att_load,
    .msg_load = msg_load,
    .att_event = casc_attempt_event,
};
