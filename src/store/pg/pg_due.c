/*
 * pg_due.c - the PostgreSQL backend's reads of due work, on the loop
 * thread through its connection (r): the SMS rows, channel attempts, step
 * deadlines and callbacks the neutral part then claims (store_sms_claim,
 * store_chan_claim, store_wait_claim, store_outbox_claim), and when a
 * person last wrote to a WhatsApp number.
 *
 * They answer as the SQLite backend's (sq_msg.c, sq_chan.c, sq_cascade.c,
 * sq_outbox.c), in the same order and over the same indexes, with one
 * difference that only several nodes see: a row another live node holds
 * is left out (its claim would not be granted), so that it does not take
 * the place of rows this node may have. The row readers here serve the
 * notes' rows too (pg_chan.c).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/kk_err.h"
#include "core/kk_log.h"
#include "core/kk_mem.h"
#include "store/pg/pg_int.h"

#define LOGCTX "store"

/* ---- the rows ----------------------------------------------------------------- */

void pg_due_row(const PGresult *r, int i, struct store_due *d) {
  memset(d, 0, sizeof *d);
  d->id = pg_int(r, i, 0);
  d->attempt_id = pg_int(r, i, 1);
  d->account_id = pg_int(r, i, 2);
  pg_copy(r, i, 3, d->to, sizeof d->to);
  pg_copy(r, i, 4, d->sender, sizeof d->sender);
  pg_copy(r, i, 5, d->route, sizeof d->route);
  d->text = kk_xstrdup(PQgetvalue(r, i, 6));
  d->parts_done = (uint32_t)pg_int(r, i, 7);
  d->due_at = pg_int(r, i, 8);
  d->expires_at = pg_int(r, i, 9);
  pg_copy(r, i, 10, d->msg_class, sizeof d->msg_class);
  d->created_at = pg_int(r, i, 11);
  d->scheduled = (int)pg_int(r, i, 12);
}

void pg_chan_row(const PGresult *r, int i, struct store_chan_due *d) {
  memset(d, 0, sizeof *d);
  d->attempt_id = pg_int(r, i, 0);
  d->msg_id = pg_int(r, i, 1);
  d->account_id = pg_int(r, i, 2);
  d->scope = pg_int(r, i, 3);
  pg_copy(r, i, 4, d->channel, sizeof d->channel);
  pg_copy(r, i, 5, d->public_id, sizeof d->public_id);
  pg_copy(r, i, 6, d->to, sizeof d->to);
  pg_copy(r, i, 7, d->address, sizeof d->address);
  pg_copy(r, i, 8, d->msg_class, sizeof d->msg_class);
  d->text = kk_xstrdup(PQgetvalue(r, i, 9));
  d->extra = kk_xstrdup(pg_text(r, i, 10) ? PQgetvalue(r, i, 10) : "{}");
  d->tries = (int)pg_int(r, i, 11);
  d->due_at = pg_int(r, i, 12);
  d->expires_at = pg_int(r, i, 13);
  d->created_at = pg_int(r, i, 14);
  d->try_at = pg_int(r, i, 15);
  d->wa_inbound_at = pg_int(r, i, 16);
  d->chan = kk_chan_parse(d->channel);
}

/* ---- SMS ------------------------------------------------------------------ */

int pg_sms_due(struct store *s, int64_t after_id, struct store_due *out, int max, int *n) {
  struct pg_params p = {0};
  pg_p_int(&p, after_id);
  pg_p_int(&p, max);
  pg_p_int(&p, PG(s)->node_id);
  *n = 0;
  int rc;
  /* over messages_due, as SQLite's DUE_SCAN */
  PGresult *r = pg_read(&PG(s)->r,
                        "SELECT " PG_DUE_COLS " WHERE m.due_at IS NOT NULL AND m.id>$1::bigint"
                        " AND " PG_FREE_FOR("m.claimed_by", "$3")
                        " ORDER BY m.id LIMIT $2::int",
                        &p, &rc);
  if (r == NULL) return KK_ESTORE;
  int k = 0;
  for (int i = 0; i < PQntuples(r) && k < max; i++) pg_due_row(r, i, &out[k++]);
  PQclear(r);
  *n = k;
  return 0;
}

/* ---- channel attempts -------------------------------------------------------- */

int pg_chan_due(struct store *s, int64_t now, int64_t *cursor_due, int64_t *cursor_id,
                struct store_chan_due *out, int max, int *n) {
  struct pg_params p = {0};
  pg_p_int(&p, now);
  pg_p_int(&p, *cursor_due);
  pg_p_int(&p, *cursor_id);
  pg_p_int(&p, max);
  pg_p_int(&p, PG(s)->node_id);
  *n = 0;
  int rc;
  /* over attempts_due (due_at, id), as SQLite's CHAN_DUE */
  PGresult *r = pg_read(&PG(s)->r,
                        "SELECT " PG_CHAN_COLS
                        " WHERE a.due_at IS NOT NULL AND a.due_at<=$1::bigint"
                        " AND (a.due_at,a.id)>($2::bigint,$3::bigint)"
                        " AND " PG_FREE_FOR("a.claimed_by", "$5")
                        " ORDER BY a.due_at,a.id LIMIT $4::int",
                        &p, &rc);
  if (r == NULL) return KK_ESTORE;
  int k = 0;
  for (int i = 0; i < PQntuples(r) && k < max; i++) {
    struct store_chan_due *d = &out[k++];
    pg_chan_row(r, i, d);
    *cursor_due = d->due_at;
    *cursor_id = d->attempt_id;
  }
  PQclear(r);
  *n = k;
  return 0;
}

/* ---- step deadlines ---------------------------------------------------------------- */

int pg_wait_due(struct store *s, int64_t now, struct store_wait_due *out, int max, int *n) {
  struct pg_params p = {0};
  pg_p_int(&p, now);
  pg_p_int(&p, max);
  pg_p_int(&p, PG(s)->node_id);
  *n = 0;
  int rc;
  /* over messages_wait, as SQLite's WAIT_DUE */
  PGresult *r = pg_read(&PG(s)->r,
                        "SELECT id,step,wait_until FROM messages WHERE wait_until IS NOT NULL"
                        " AND wait_until<=$1::bigint"
                        " AND " PG_FREE_FOR("wait_claimed_by", "$3")
                        " ORDER BY wait_until LIMIT $2::int",
                        &p, &rc);
  if (r == NULL) return KK_ESTORE;
  int k = 0;
  for (int i = 0; i < PQntuples(r) && k < max; i++, k++) {
    out[k].msg_id = pg_int(r, i, 0);
    out[k].step = (int)pg_int(r, i, 1);
    out[k].wait_until = pg_int(r, i, 2);
  }
  PQclear(r);
  *n = k;
  return 0;
}

/* The earliest deadline of the rows this node may claim: those another
   node holds wake it when their lease ends (at the latest its poll does). */
int64_t pg_wait_next(struct store *s) {
  struct pg_params p = {0};
  pg_p_int(&p, PG(s)->node_id);
  int rc;
  PGresult *r = pg_read(&PG(s)->r,
                        "SELECT wait_until FROM messages WHERE wait_until IS NOT NULL"
                        " AND " PG_FREE_FOR("wait_claimed_by", "$1")
                        " ORDER BY wait_until LIMIT 1",
                        &p, &rc);
  if (r == NULL) return 0;
  int64_t v = PQntuples(r) > 0 ? pg_int(r, 0, 0) : 0;
  PQclear(r);
  return v;
}

/* ---- WhatsApp windows ------------------------------------------------------------------ */

int pg_wa_last_inbound(struct store *s, int64_t scope, const char *phone, int64_t *at) {
  struct pg_params p = {0};
  pg_p_int(&p, scope);
  pg_p_text(&p, phone);
  int rc;
  PGresult *r = pg_read(&PG(s)->r,
                        "SELECT last_inbound FROM wa_windows WHERE scope=$1::bigint"
                        " AND phone=$2",
                        &p, &rc);
  if (r == NULL) return KK_ESTORE;
  rc = PQntuples(r) > 0 ? 0 : KK_ENOENT;
  if (rc == 0) *at = pg_int(r, 0, 0);
  PQclear(r);
  return rc;
}

/* ---- callbacks --------------------------------------------------------------------------- */

/* Accounts with rows due at now after `after`, in id order: a skip scan
   over outbox_account (account_id, due_at), one index seek per account as
   SQLite's OUTBOX_NEXT_ACC loop, ending once max due ones are found.
   $1 after, $2 now, $3 max. */
#define OUTBOX_ACCOUNTS_SQL                                                       \
  "WITH RECURSIVE a(account_id, due_at, ndue) AS ("                              \
  " (SELECT account_id, due_at, (due_at<=$2::bigint)::int FROM outbox"           \
  "  WHERE account_id>$1::bigint ORDER BY account_id, due_at LIMIT 1)"           \
  " UNION ALL"                                                                    \
  " SELECT x.account_id, x.due_at, a.ndue+(x.due_at<=$2::bigint)::int FROM a,"    \
  "  LATERAL (SELECT account_id, due_at FROM outbox WHERE account_id>a.account_id" \
  "  ORDER BY account_id, due_at LIMIT 1) x WHERE a.ndue<$3::int)"                 \
  " SELECT account_id FROM a WHERE due_at<=$2::bigint ORDER BY account_id LIMIT $3::int"

int pg_outbox_accounts(struct store *s, int64_t now, int64_t after, int64_t *out, int max,
                       int *n) {
  *n = 0;
  if (max <= 0) return 0;
  struct pg_params p = {0};
  pg_p_int(&p, after);
  pg_p_int(&p, now);
  pg_p_int(&p, max);
  int rc;
  PGresult *r = pg_read(&PG(s)->r, OUTBOX_ACCOUNTS_SQL, &p, &rc);
  if (r == NULL) return KK_ESTORE;
  int k = 0;
  for (int i = 0; i < PQntuples(r) && k < max; i++) out[k++] = pg_int(r, i, 0);
  PQclear(r);
  *n = k;
  return 0;
}

int pg_outbox_due(struct store *s, int64_t account_id, int64_t now, struct store_outbox *out,
                  int max, int *n) {
  struct pg_params p = {0};
  pg_p_int(&p, account_id);
  pg_p_int(&p, now);
  pg_p_int(&p, max);
  pg_p_int(&p, PG(s)->node_id);
  *n = 0;
  int rc;
  /* over outbox_account, as SQLite's OUTBOX_DUE_ACC */
  PGresult *r = pg_read(&PG(s)->r,
                        "SELECT id,account_id,url,payload,tries,public_id,status,channel,"
                        "to_number,at,cost,error FROM outbox WHERE account_id=$1::bigint"
                        " AND due_at<=$2::bigint"
                        " AND " PG_FREE_FOR("claimed_by", "$4")
                        " ORDER BY due_at LIMIT $3::int",
                        &p, &rc);
  if (r == NULL) return KK_ESTORE;
  int k = 0;
  for (int i = 0; i < PQntuples(r) && k < max; i++) {
    struct store_outbox *o = &out[k++];
    memset(o, 0, sizeof *o);
    o->id = pg_int(r, i, 0);
    o->account_id = pg_int(r, i, 1);
    o->url = kk_xstrdup(PQgetvalue(r, i, 2));
    o->payload = kk_xstrdup(PQgetvalue(r, i, 3));
    o->tries = (int)pg_int(r, i, 4);
    pg_copy(r, i, 5, o->public_id, sizeof o->public_id);
    pg_copy(r, i, 6, o->status, sizeof o->status);
    pg_copy(r, i, 7, o->channel, sizeof o->channel);
    pg_copy(r, i, 8, o->to, sizeof o->to);
    o->at = pg_int(r, i, 9);
    o->cost = pg_int(r, i, 10);
    o->has_error = !PQgetisnull(r, i, 11);
    pg_copy(r, i, 11, o->error, sizeof o->error);
  }
  PQclear(r);
  *n = k;
  return 0;
}
