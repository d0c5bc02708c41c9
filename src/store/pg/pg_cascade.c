/*
 * pg_cascade.c - the cascade in the PostgreSQL backend, run by the writer
 * inside its transactions (as sqlite/sq_cascade.c): the rows the cascade's
 * rules read (struct casc_ops), the rows they change, new messages' first
 * steps, send results and step deadlines.
 *
 * Several nodes may change one message: each run locks the message's row
 * (SELECT ... FOR UPDATE) before it reads what the rules need, so that the
 * runs of one message follow one another; a run of cascade operations
 * locks its messages together and reads ahead what they read (pg_run.c).
 * Notes, counters and the logic of the effects and operations are the
 * neutral glue's (store_cascade.c): this file has the SQL they run through.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cascade/cascade_fsm.h"
#include "core/kk_err.h"
#include "core/kk_log.h"
#include "core/kk_mem.h"
#include "core/kk_status.h"
#include "store/pg/pg_int.h"
#include "store/store_casc.h"

#define LOGCTX "cascade"

/* ---- reading rows (writer) ---------------------------------------------- */

#define MSG_ROW_COLS PGC_MSG_COLS

void pgc_msg_row(const PGresult *r, int row, struct casc_msg *m) {
  memset(m, 0, sizeof *m);
  m->id = pg_int(r, row, 0);
  m->account_id = pg_int(r, row, 1);
  pg_copy(r, row, 2, m->public_id, sizeof m->public_id);
  pg_copy(r, row, 3, m->to, sizeof m->to);
  pg_copy(r, row, 4, m->status, sizeof m->status);
  pg_copy(r, row, 5, m->callback_url, sizeof m->callback_url);
  m->step = (int)pg_int(r, row, 6);
  m->attempt_id = pg_int(r, row, 7);
  m->done = (int)pg_int(r, row, 8);
  m->cascade = pg_text(r, row, 9) ? kk_xstrdup(pg_text(r, row, 9)) : NULL;
  m->has_extra = (int)pg_int(r, row, 10);   /* read when a step needs it */
  pg_copy(r, row, 11, m->route, sizeof m->route);
  m->segments = (int)pg_int(r, row, 12);
  pg_copy(r, row, 13, m->channel, sizeof m->channel);
  m->cost = pg_int(r, row, 14);
  m->delivered_twice = (int)pg_int(r, row, 15);
  m->expires_at = pg_int(r, row, 16);
}

/* Locks and reads message id (by_attempt: the message of attempt id).
   0, KK_ENOENT or KK_ESTORE. */
static int msg_load(struct store *s, int64_t id, int by_attempt, struct casc_msg *m) {
  if (pgc_run_msg(s, id, by_attempt, m)) return 0;
  pgc_run_dirty(s);
  if (PG(s)->ws.defer && pgw_flush(s) != 0) return KK_ESTORE;
  struct pg_params p = {0};
  pg_p_int(&p, id);
  int rc;
  PGresult *r = pg_query(&PG(s)->w,
                         by_attempt ? "SELECT " MSG_ROW_COLS " FROM messages WHERE id="
                                      "(SELECT message_id FROM attempts WHERE id=$1::bigint)"
                                      " FOR UPDATE"
                                    : "SELECT " MSG_ROW_COLS " FROM messages"
                                      " WHERE id=$1::bigint FOR UPDATE",
                         &p, &rc);
  if (r == NULL) return KK_ESTORE;
  rc = PQntuples(r) == 1 ? 0 : KK_ENOENT;
  if (rc == 0) pgc_msg_row(r, 0, m);
  PQclear(r);
  return rc;
}

int pgc_msgs_lock(struct store *s, struct pg_rows *ids, struct casc_msg *m, int max) {
  int rc;
  PGresult *r = pg_rows_run(&PG(s)->w, ids,
                            "SELECT " MSG_ROW_COLS " FROM messages WHERE id=ANY($1::bigint[])"
                            " ORDER BY id FOR UPDATE",
                            1, &rc);
  if (r == NULL) return KK_ESTORE;
  int n = 0;
  for (; n < PQntuples(r) && n < max; n++) pgc_msg_row(r, n, &m[n]);
  PQclear(r);
  return n;
}

void pgc_att_cols(const PGresult *r, int row, int i, struct casc_att *a) {
  a->msg_id = pg_int(r, row, i);
  pg_copy(r, row, i + 1, a->channel, sizeof a->channel);
  pg_copy(r, row, i + 2, a->status, sizeof a->status);
  a->step = (int)pg_int(r, row, i + 3);
  a->sent_at = pg_int(r, row, i + 4);
  a->delivered_at = pg_int(r, row, i + 5);
  a->read_at = pg_int(r, row, i + 6);
  a->segments = (int)pg_int(r, row, i + 7);
  a->parts_sent = pg_int(r, row, i + 8);
  a->parts_delivered = (int)pg_int(r, row, i + 9);
  a->scope = pg_int(r, row, i + 10);
  a->tries = (int)pg_int(r, row, i + 11);
  a->parts_dirty = 0;
  a->priced = 0;
  a->price = 0;
}

int pgc_att_load(struct store *s, int64_t id, struct casc_att *a) {
  if (pgc_run_att(s, id, a)) return 0;
  if (PG(s)->ws.defer && pgw_flush(s) != 0) return KK_ESTORE;
  struct pg_params p = {0};
  pg_p_int(&p, id);
  int rc;
  PGresult *r = pg_query(&PG(s)->w, "SELECT " PGW_ATT_COLS " FROM attempts WHERE id=$1::bigint",
                         &p, &rc);
  if (r == NULL) return KK_ESTORE;
  rc = PQntuples(r) == 1 ? 0 : KK_ENOENT;
  if (rc == 0) pgc_att_cols(r, 0, 0, a);
  PQclear(r);
  return rc;
}

static int att_cost(struct store *s, int64_t id, int64_t *cost) {
  if (PG(s)->ws.defer && pgw_flush(s) != 0) return KK_ESTORE;
  struct pg_params p = {0};
  pg_p_int(&p, id);
  int rc;
  PGresult *r = pg_query(&PG(s)->w, "SELECT cost FROM attempts WHERE id=$1::bigint", &p, &rc);
  if (r == NULL) return KK_ESTORE;
  *cost = PQntuples(r) == 1 ? pg_int(r, 0, 0) : 0;
  PQclear(r);
  return 0;
}

/* A keyed setting (kind 's' scope, 'p' price) the transaction has read:
   1 with *v; keep: remember *v (while there is room). Each transaction
   starts without any, and a write of a setting forgets them (pgc_keyed_forget). */
static int keyed_kept(struct store *s, char kind, int64_t account, const char *channel,
                      int64_t *v, int keep) {
  struct pgw_state *w = &PG(s)->ws;
  const int cap = (int)(sizeof w->keyed / sizeof w->keyed[0]);
  if (strlen(channel) >= sizeof w->keyed[0].channel) return 0;
  for (int i = 0; i < w->nkeyed; i++)
    if (w->keyed[i].kind == kind && w->keyed[i].account == account &&
        strcmp(w->keyed[i].channel, channel) == 0) {
      *v = w->keyed[i].v;
      return 1;
    }
  if (keep && w->nkeyed < cap) {
    struct pgw_keyed *k = &w->keyed[w->nkeyed++];
    k->kind = kind;
    k->account = account;
    k->v = *v;
    snprintf(k->channel, sizeof k->channel, "%s", channel);
  }
  return 0;
}

void pgc_keyed_forget(struct store *s) { PG(s)->ws.nkeyed = 0; }

/* One number of a keyed setting: the account's, else the operator's (0);
   none when neither has a row. */
static int64_t keyed_int(struct store *s, const char *sql, int64_t account_id,
                         const char *channel, int64_t none) {
  struct pg_params p = {0};
  pg_p_text(&p, channel);
  pg_p_int(&p, account_id);
  int rc;
  PGresult *r = pg_query(&PG(s)->w, sql, &p, &rc);
  int64_t v = none;
  if (r && PQntuples(r) > 0) v = pg_int(r, 0, 0);
  PQclear(r);
  return v;
}

int64_t pgc_price(struct store *s, int64_t account_id, const char *channel) {
  int64_t v;
  if (keyed_kept(s, 'p', account_id, channel, &v, 0)) return v;
  v = keyed_int(s,
                "SELECT price FROM prices WHERE channel=$1 AND account_id IN ($2::bigint,0)"
                " ORDER BY account_id DESC LIMIT 1",
                account_id, channel, 0);
  keyed_kept(s, 'p', account_id, channel, &v, 1);
  return v;
}

/* Whose settings a channel uses for an account (casc_ops.scope). */
static int64_t chan_scope(struct store *s, int64_t account_id, const char *channel) {
  int64_t v;
  if (keyed_kept(s, 's', account_id, channel, &v, 0)) return v;
  v = keyed_int(s,
                "SELECT account_id FROM channel_settings WHERE channel=$1"
                " AND account_id IN ($2::bigint,0) ORDER BY account_id DESC LIMIT 1",
                account_id, channel, -1);
  keyed_kept(s, 's', account_id, channel, &v, 1);
  return v;
}

/* The message's extra JSON (casc_ops.extra). */
static char *load_extra(struct store *s, int64_t msg_id) {
  struct pg_params p = {0};
  pg_p_int(&p, msg_id);
  int rc;
  PGresult *r = pg_query(&PG(s)->w, "SELECT extra FROM messages WHERE id=$1::bigint", &p, &rc);
  char *x = NULL;
  if (r && PQntuples(r) > 0) x = kk_xstrdup(PQgetvalue(r, 0, 0));
  PQclear(r);
  return x;
}

/* Every attempt of the message (casc_ops.attempts). */
static int load_attempts(struct store *s, int64_t msg_id, struct cfsm_att *att, int max,
                         int *natt) {
  if (pgc_run_attempts(s, msg_id, att, max, natt)) return 0;
  if (PG(s)->ws.defer && pgw_flush(s) != 0) return KK_ESTORE;
  struct pg_params p = {0};
  pg_p_int(&p, msg_id);
  pg_p_int(&p, max);
  int rc;
  PGresult *r = pg_query(&PG(s)->w,
                         "SELECT id,channel,status,sent_at,delivered_at,read_at FROM attempts"
                         " WHERE message_id=$1::bigint ORDER BY id LIMIT $2::int",
                         &p, &rc);
  *natt = 0;
  if (r == NULL) return KK_ESTORE;
  int n = 0;
  for (int i = 0; i < PQntuples(r) && n < max; i++) {
    struct cfsm_att *a = &att[n++];
    char text[20];
    memset(a, 0, sizeof *a);
    a->id = pg_int(r, i, 0);
    pg_copy(r, i, 1, text, sizeof text);
    a->chan = kk_chan_parse(text);
    pg_copy(r, i, 2, text, sizeof text);
    a->status = kk_status_parse(text);
    a->sent_at = pg_int(r, i, 3);
    a->delivered_at = pg_int(r, i, 4);
    a->read_at = pg_int(r, i, 5);
  }
  PQclear(r);
  *natt = n;
  return 0;
}

/* ---- the rows the rules change -------------------------------------------- */

static int event_row(struct store *s, int64_t msg_id, int64_t attempt_id, const char *status,
                     int64_t at, const char *detail) {
  struct pg_rows *rows = pgw_deferred(s, PGW_T_EVENTS);
  if (rows) {
    pg_rows_int(rows, 0, msg_id);
    pg_rows_int(rows, 1, attempt_id);
    pg_rows_text(rows, 2, status);
    pg_rows_int(rows, 3, at);
    pg_rows_text(rows, 4, detail);
    pg_rows_end(rows);
    return 0;
  }
  struct pg_params p = {0};
  pg_p_int(&p, msg_id);
  pg_p_int(&p, attempt_id);
  pg_p_text(&p, status);
  pg_p_int(&p, at);
  pg_p_text(&p, detail);
  return pg_cmd(&PG(s)->w,
                "INSERT INTO events(message_id,attempt_id,status,at,detail)"
                " VALUES($1::bigint,$2::bigint,$3,$4::bigint,$5)",
                &p);
}

/* The outbox row with what m's callback tells (casc_ops.outbox). */
static int outbox_row(struct store *s, const struct casc_msg *m, const char *status,
                      const char *channel, const char *error, int64_t cost, int64_t at) {
  struct pg_rows *rows = pgw_deferred(s, PGW_T_OUTBOX);
  if (rows) {
    pg_rows_int(rows, 0, m->account_id);
    pg_rows_int(rows, 1, m->id);
    pg_rows_text(rows, 2, m->callback_url);
    pg_rows_int(rows, 3, at);
    pg_rows_text(rows, 4, m->public_id);
    pg_rows_text(rows, 5, status);
    pg_rows_text(rows, 6, channel);
    pg_rows_text(rows, 7, m->to);
    pg_rows_int(rows, 8, cost);
    pg_rows_text(rows, 9, error);
    pg_rows_end(rows);
    return 0;
  }
  struct pg_params p = {0};
  pg_p_int(&p, m->account_id);
  pg_p_int(&p, m->id);
  pg_p_text(&p, m->callback_url);
  pg_p_int(&p, at);
  pg_p_text(&p, m->public_id);
  pg_p_text(&p, status);
  pg_p_text(&p, channel);
  pg_p_text(&p, m->to);
  pg_p_int(&p, cost);
  pg_p_text(&p, error);
  return pg_cmd(&PG(s)->w,
                "INSERT INTO outbox(account_id,message_id,url,payload,due_at,at,public_id,"
                "status,channel,to_number,cost,error) VALUES($1::bigint,$2::bigint,$3,'',"
                "$4::bigint,$4::bigint,$5,$6,$7,$8,$9::bigint,$10)",
                &p);
}

static int fx_att_set(struct casc_run *r, const struct cfsm_fx *f) {
  struct pg_rows *rows = PG(r->s)->ws.defer_updates ? pgw_deferred(r->s, PGW_T_ATT_SET) : NULL;
  if (rows) {
    pg_rows_text(rows, 0, kk_status_name(f->status));
    pg_rows_opt(rows, 1, f->t0);
    pg_rows_opt(rows, 2, f->t1);
    pg_rows_opt(rows, 3, f->t2);
    pg_rows_text(rows, 4, r->provider_id && r->provider_id[0] ? r->provider_id : NULL);
    pg_rows_text(rows, 5, r->error && r->error[0] ? r->error : NULL);
    pg_rows_int(rows, 6, f->cost);
    pg_rows_int(rows, 7, r->parts_sent);
    pg_rows_int(rows, 8, f->attempt_id);
    pg_rows_end(rows);
    return 0;
  }
  struct pg_params p = {0};
  pg_p_text(&p, kk_status_name(f->status));
  pg_p_opt(&p, f->t0);
  pg_p_opt(&p, f->t1);
  pg_p_opt(&p, f->t2);
  pg_p_text(&p, r->provider_id && r->provider_id[0] ? r->provider_id : NULL);
  pg_p_text(&p, r->error && r->error[0] ? r->error : NULL);
  pg_p_int(&p, f->cost);
  pg_p_int(&p, r->parts_sent);
  pg_p_int(&p, f->attempt_id);
  return pg_cmd(&PG(r->s)->w,
                "UPDATE attempts SET status=$1, sent_at=$2::bigint, delivered_at=$3::bigint,"
                " read_at=$4::bigint, provider_id=COALESCE(provider_id,$5::text),"
                " error=COALESCE($6::text,error), cost=cost+$7::bigint, due_at=NULL,"
                " parts_sent=$8::bigint WHERE id=$9::bigint",
                &p);
}

static int fx_att_add(struct casc_run *r, const struct cfsm_fx *f, int64_t aid, const char *why) {
  struct casc_msg *m = r->m;
  int sending = f->status == KK_ST_SENDING;
  int sms = f->chan == KK_CHAN_SMS;
  struct pg_rows *rows = pgw_deferred(r->s, PGW_T_ATTEMPTS);
  if (rows) {
    pg_rows_int(rows, 0, aid);
    pg_rows_int(rows, 1, m->id);
    pg_rows_int(rows, 2, f->step);
    pg_rows_text(rows, 3, r->steps[f->step].channel);
    pg_rows_text(rows, 4, sms ? m->route : NULL);
    pg_rows_text(rows, 5, kk_status_name(f->status));
    pg_rows_int(rows, 6, sms ? m->segments : 1);
    pg_rows_text(rows, 7, f->use == CFSM_USE_NO_ADDRESS ? NULL : r->addr[f->step]);
    pg_rows_int(rows, 8, sending ? r->scope[f->step] : 0);
    pg_rows_text(rows, 9, why);
    pg_rows_int(rows, 10, f->t1);
    pg_rows_opt(rows, 11, f->t0);
    pg_rows_end(rows);
    return 0;
  }
  struct pg_params p = {0};
  pg_p_int(&p, aid);
  pg_p_int(&p, m->id);
  pg_p_int(&p, f->step);
  pg_p_text(&p, r->steps[f->step].channel);
  pg_p_text(&p, sms ? m->route : NULL);
  pg_p_text(&p, kk_status_name(f->status));
  pg_p_int(&p, sms ? m->segments : 1);
  pg_p_text(&p, f->use == CFSM_USE_NO_ADDRESS ? NULL : r->addr[f->step]);
  pg_p_int(&p, sending ? r->scope[f->step] : 0);
  pg_p_text(&p, why);
  pg_p_int(&p, f->t1);
  pg_p_opt(&p, f->t0);
  return pg_cmd(&PG(r->s)->w,
                "INSERT INTO attempts(id,message_id,step,channel,route,status,segments,"
                "address,scope,error,created_at,due_at) VALUES($1::bigint,$2::bigint,"
                "$3::int,$4,$5,$6,$7::int,$8,$9::bigint,$10,$11::bigint,$12::bigint)",
                &p);
}

/* A decision appended to the message's (casc_ops.decide). */
static int fx_decide(struct casc_run *r, const char *decision) {
  struct pg_params p = {0};
  pg_p_text(&p, decision);
  pg_p_int(&p, r->m->id);
  return pg_cmd(&PG(r->s)->w,
                "UPDATE messages SET decisions=(COALESCE(decisions,'[]')::jsonb"
                " || jsonb_build_array($1::jsonb))::text WHERE id=$2::bigint",
                &p);
}

static int fx_msg_step(struct casc_run *r, const struct cfsm_fx *f) {
  struct pg_params p = {0};
  pg_p_int(&p, f->step);
  pg_p_int(&p, casc_att_id(r, f->attempt_id));
  pg_p_opt(&p, f->t0);
  pg_p_opt(&p, f->t1);
  pg_p_int(&p, f->t2);
  pg_p_text(&p, kk_chan_name(f->chan));
  pg_p_int(&p, r->m->id);
  return pg_cmd(&PG(r->s)->w,
                "UPDATE messages SET step=$1::int, attempt_id=$2::bigint, due_at=$3::bigint,"
                " wait_until=$4::bigint, updated_at=$5::bigint, channel=$6 WHERE id=$7::bigint",
                &p);
}

static int fx_msg_fin(struct casc_run *r, const struct cfsm_fx *f) {
  struct pg_rows *rows = PG(r->s)->ws.defer_updates ? pgw_deferred(r->s, PGW_T_MSG_FIN) : NULL;
  if (rows) {
    pg_rows_text(rows, 0, kk_status_name(f->status));
    pg_rows_text(rows, 1, kk_chan_name(f->chan));
    pg_rows_int(rows, 2, f->cost);
    pg_rows_int(rows, 3, f->delivered_twice);
    pg_rows_int(rows, 4, f->t1);
    pg_rows_int(rows, 5, (f->flags & CFSM_FIN_DONE) != 0);
    pg_rows_int(rows, 6, (f->flags & CFSM_FIN_CLEAR_DUE) != 0);
    pg_rows_int(rows, 7, (f->flags & CFSM_FIN_WAIT) != 0);
    pg_rows_int(rows, 8, f->t0);
    pg_rows_int(rows, 9, r->m->id);
    pg_rows_end(rows);
    return 0;
  }
  struct pg_params p = {0};
  pg_p_text(&p, kk_status_name(f->status));
  pg_p_text(&p, kk_chan_name(f->chan));
  pg_p_int(&p, f->cost);
  pg_p_int(&p, f->delivered_twice);
  pg_p_int(&p, f->t1);
  pg_p_int(&p, (f->flags & CFSM_FIN_DONE) != 0);
  pg_p_int(&p, (f->flags & CFSM_FIN_CLEAR_DUE) != 0);
  pg_p_int(&p, (f->flags & CFSM_FIN_WAIT) != 0);
  pg_p_int(&p, f->t0);
  pg_p_int(&p, r->m->id);
  return pg_cmd(&PG(r->s)->w,
                "UPDATE messages SET status=$1, channel=$2, cost=$3::bigint,"
                " delivered_twice=$4::int, updated_at=$5::bigint,"
                " done=CASE WHEN $6::int<>0 THEN 1 ELSE done END,"
                " due_at=CASE WHEN $6::int<>0 OR $7::int<>0 THEN NULL ELSE due_at END,"
                " wait_until=CASE WHEN $6::int<>0 THEN NULL WHEN $8::int<>0 THEN $9::bigint"
                " ELSE wait_until END WHERE id=$10::bigint",
                &p);
}

/* MSG_DONE, MSG_CLEAR_DUE, MSG_WAIT (casc_ops.msg_mark). */
static int fx_msg_mark(struct casc_run *r, enum cfsm_fx_kind kind, int64_t t) {
  struct pg_params p = {0};
  if (kind != CFSM_FX_MSG_CLEAR_DUE) pg_p_int(&p, t);
  pg_p_int(&p, r->m->id);
  return pg_cmd(&PG(r->s)->w,
                kind == CFSM_FX_MSG_DONE ? "UPDATE messages SET done=1, due_at=NULL,"
                                           " wait_until=NULL, updated_at=$1::bigint"
                                           " WHERE id=$2::bigint"
                : kind == CFSM_FX_MSG_WAIT
                    ? "UPDATE messages SET wait_until=$1::bigint WHERE id=$2::bigint"
                    : "UPDATE messages SET due_at=NULL WHERE id=$1::bigint",
                &p);
}

/* Before a row of an effect (casc_ops.before). */
static int before_write(struct casc_run *r, const struct cfsm_fx *f) {
  pgc_run_dirty(r->s);
  /* Attempts that wait are written before anything that could read or
     change them (a new message's start only adds rows: nothing waits then);
     events and outbox rows nothing here changes. In a run of SMS
     operations a status or an end waits too, unless its row already does;
     any other write to a message or an attempt is written after them. */
  struct pg_rows *d = PG(r->s)->ws.defer;
  if (d && f->kind != CFSM_FX_ATT_ADD && f->kind != CFSM_FX_EVENT &&
      f->kind != CFSM_FX_TRACE) {
    int flush = d[PGW_T_ATTEMPTS].n > 0;
    if (f->kind == CFSM_FX_ATT_SET && PG(r->s)->ws.defer_updates)
      flush |= pgw_pending(r->s, PGW_T_ATT_SET, f->attempt_id);
    else if (f->kind == CFSM_FX_MSG_FIN && PG(r->s)->ws.defer_updates)
      flush |= pgw_pending(r->s, PGW_T_MSG_FIN, r->m->id);
    else
      flush |= d[PGW_T_ATT_SET].n > 0 || d[PGW_T_MSG_FIN].n > 0;
    if (flush) {
      int rc = pgw_flush(r->s);
      if (rc) return rc;
      /* what was flushed is forgotten: this row waits from now */
      if (f->kind == CFSM_FX_ATT_SET && PG(r->s)->ws.defer_updates)
        pgw_pending(r->s, PGW_T_ATT_SET, f->attempt_id);
      else if (f->kind == CFSM_FX_MSG_FIN && PG(r->s)->ws.defer_updates)
        pgw_pending(r->s, PGW_T_MSG_FIN, r->m->id);
    }
  }
  return 0;
}

static const struct casc_ops pg_casc_ops;

int pgc_start(struct store *s, struct store_msg_new *n, struct casc_first *f) {
  return casc_new(s, &pg_casc_ops, &PG(s)->ws.cstats, n, f);
}

/* ---- attempt events --------------------------------------------------------- */

int pgc_attempt_event_of(struct store *s, struct casc_msg *m, int64_t attempt_id,
                         const struct casc_att *a, const char *status, const char *provider_id,
                         const char *error, int64_t at, int units) {
  return casc_event(s, &pg_casc_ops, &PG(s)->ws.cstats, m, a, attempt_id, status, provider_id,
                    error, at, units);
}

int pgc_attempt_event(struct store *s, int64_t attempt_id, const struct casc_att *pre,
                      const char *status, const char *provider_id, const char *error,
                      int64_t at, int units) {
  struct casc_att a;
  struct casc_msg m;
  /* The message first (locked), then its attempt as it is now. */
  int rc = pre ? msg_load(s, pre->msg_id, 0, &m) : msg_load(s, attempt_id, 1, &m);
  if (rc == 0 && pre) a = *pre;
  else if (rc == 0 && (rc = pgc_att_load(s, attempt_id, &a)) != 0) casc_msg_free(&m);
  if (rc == KK_ENOENT) {
    kk_warnx(LOGCTX, "status %s for attempt %lld, which does not exist", status,
             (long long)attempt_id);
    return 0;
  }
  if (rc) return rc;
  return casc_event(s, &pg_casc_ops, &PG(s)->ws.cstats, &m, &a, attempt_id, status, provider_id,
                    error, at, units);
}

/* ---- operations: send results, step deadlines, cancelling ------------------ */

/* The statuses a provider reported before its id was stored (each node may
   have kept some: they are in the database), taken (casc_ops.early). */
static int take_early(struct store *s, int64_t attempt_id, const char *provider_id,
                      struct casc_held *held, int *n) {
  struct casc_att a;
  *n = 0;
  if (pgc_run_no_early(s, attempt_id)) return 0;
  if (pgc_att_load(s, attempt_id, &a) != 0) return 0;
  struct pg_params p = {0};
  pg_p_text(&p, a.channel);
  pg_p_int(&p, a.scope);
  pg_p_text(&p, provider_id);
  int rc;
  PGresult *r = pg_query(&PG(s)->w,
                         "WITH d AS (DELETE FROM early_statuses WHERE channel=$1"
                         " AND scope=$2::bigint AND provider_id=$3"
                         " RETURNING status,error,at)"
                         " SELECT status,COALESCE(error,''),at FROM d ORDER BY at LIMIT 8",
                         &p, &rc);
  if (r == NULL) return rc;
  int k = 0;
  for (; k < PQntuples(r) && k < CASC_HELD_MAX; k++) {
    pg_copy(r, k, 0, held[k].status, sizeof held[k].status);
    pg_copy(r, k, 1, held[k].error, sizeof held[k].error);
    held[k].at = pg_int(r, k, 2);
  }
  PQclear(r);
  if (k > 0) pgw_early_forget(s);
  *n = k;
  return rc;
}

int pgc_early_recheck(struct store *s, const char *channel, int64_t scope, const char *pid) {
  struct pg_params p = {0};
  pg_p_text(&p, channel);
  pg_p_text(&p, pid);
  pg_p_int(&p, scope);
  int rc;
  PGresult *r = pg_query(&PG(s)->w,
                         "SELECT a.id FROM attempts a WHERE a.channel=$1 AND a.provider_id=$2"
                         " AND a.scope=$3::bigint AND a.channel<>'sms' AND EXISTS(SELECT 1"
                         " FROM early_statuses e WHERE e.channel=$1 AND e.scope=$3::bigint"
                         " AND e.provider_id=$2) ORDER BY a.id LIMIT 1",
                         &p, &rc);
  if (r == NULL) return KK_ESTORE;
  int64_t attempt_id = PQntuples(r) > 0 ? pg_int(r, 0, 0) : 0;
  PQclear(r);
  if (attempt_id == 0) return 0;
  return casc_early_apply(s, &pg_casc_ops, attempt_id, pid) != 0 ? KK_ESTORE : 1;
}

static int att_retry(struct store *s, int64_t attempt_id, int64_t retry_at, const char *error,
                     int counts_try) {
  pgc_run_forget_att(s, attempt_id);
  struct pg_params p = {0};
  pg_p_int(&p, retry_at);
  pg_p_text(&p, error);
  pg_p_int(&p, attempt_id);
  pg_p_int(&p, counts_try);
  return pg_cmd(&PG(s)->w,
                "UPDATE attempts SET due_at=$1::bigint, tries=tries+$4::int, try_at=NULL,"
                " error=COALESCE($2::text,error) WHERE id=$3::bigint",
                &p);
}

int pg_chan_result(struct store *s, struct store_op *op) {
  int rc = pgc_run_take(s, op);
  return pgc_run_done(s, rc ? rc : casc_chan_result(s, &pg_casc_ops, op));
}

/* Locks and reads message id (casc_ops.msg_load). */
static int msg_lock(struct store *s, int64_t id, struct casc_msg *m) {
  return msg_load(s, id, 0, m);
}

int pg_step_timeout(struct store *s, struct store_op *op) {
  int rc = pgc_run_take(s, op);
  return pgc_run_done(s, rc ? rc : casc_timeout(s, &pg_casc_ops, &PG(s)->ws.cstats, op));
}

/* Locks and reads message public_id of an account (casc_ops.msg_find). */
static int msg_find(struct store *s, int64_t account_id, const char *public_id,
                    struct casc_msg *m) {
  struct pg_params p = {0};
  pg_p_int(&p, account_id);
  pg_p_text(&p, public_id);
  int rc;
  PGresult *r = pg_query(&PG(s)->w, "SELECT " MSG_ROW_COLS " FROM messages"
                                    " WHERE account_id=$1::bigint AND public_id=$2 FOR UPDATE",
                         &p, &rc);
  if (r == NULL) return KK_ESTORE;
  rc = PQntuples(r) == 1 ? 0 : KK_ENOENT;
  if (rc == 0) pgc_msg_row(r, 0, m);
  PQclear(r);
  return rc;
}

/* Scheduled message m cancelled (casc_ops.msg_cancel). */
static int msg_cancel(struct store *s, const struct casc_msg *m, int64_t at) {
  struct pg_conn *w = &PG(s)->w;
  struct pg_params u = {0};
  pg_p_int(&u, at);
  pg_p_int(&u, m->id);
  int rc = pg_cmd(w,
                  "UPDATE messages SET status='cancelled', done=1, due_at=NULL, wait_until=NULL,"
                  " sms_only_cost=0, updated_at=$1::bigint WHERE id=$2::bigint",
                  &u);
  if (rc == 0 && m->attempt_id) {
    struct pg_params a = {0};
    pg_p_int(&a, m->attempt_id);
    rc = pg_cmd(w, "UPDATE attempts SET status='cancelled', due_at=NULL WHERE id=$1::bigint", &a);
  }
  return rc ? rc : pg_money_unhold(s, m->id);
}

int pg_msg_cancel(struct store *s, struct store_op *op) {
  return casc_cancel(s, &pg_casc_ops, op);
}

static const struct casc_ops pg_casc_ops = {
    CASC_OPS_ALIKE(pg),
    .price = pgc_price,
    .before = before_write,
    .att_load = pgc_att_load,
    .msg_load = msg_lock,
    .att_event = pgc_attempt_event,
};
