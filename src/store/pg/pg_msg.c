/*
 * pg_msg.c - new messages in the PostgreSQL backend (as sqlite/sq_msg.c):
 * idempotency, numbering and the first step, written in the batch's
 * transaction.
 *
 * An idempotency key is unique across the nodes of one database (the
 * unique index messages_idem): when two nodes insert the same key at once,
 * the second's insert waits for the first's commit, inserts nothing (ON
 * CONFLICT DO NOTHING), undoes what it started for its message (attempts,
 * events, outbox rows, notes, counters) and answers with the message the
 * first stored, as it would have had it seen the key first.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/kk_err.h"
#include "core/kk_log.h"
#include "core/kk_mem.h"
#include "store/pg/pg_int.h"
#include "store/store_casc.h"

#define LOGCTX "store"

#define IDEM_WINDOW_MS (24LL * 3600 * 1000)

/* The row of a new message whose first step is SMS, as the dispatcher reads
   it, made from what the writer has in hand. */
static void note_new_sms(struct store *s, const struct store_msg_new *m, int64_t due_at) {
  struct store_due *d = kk_xmalloc(sizeof *d);   /* freed with the note */
  d->id = m->id;
  d->attempt_id = m->attempt_id;
  d->account_id = m->account_id;
  snprintf(d->to, sizeof d->to, "%s", m->to);
  snprintf(d->sender, sizeof d->sender, "%s", m->sender ? m->sender : "");
  snprintf(d->route, sizeof d->route, "%s", m->route ? m->route : "");
  d->text = kk_xstrdup(m->text);
  d->parts_done = 0;
  d->due_at = due_at;
  d->expires_at = m->expires_at;
  note_due(s, d);
}

enum { IDEM_NONE, IDEM_ANSWERED, IDEM_CLEARED };

/* Looks for the account's message with m's key: IDEM_ANSWERED when one of
   the last 24 h has it (m says which, as a duplicate or a mismatch),
   IDEM_CLEARED when an older one gave it up, IDEM_NONE; or KK_ESTORE. */
static int idem_find(struct store *s, struct store_msg_new *m) {
  struct pg_params p = {0};
  pg_p_int(&p, m->account_id);
  pg_p_text(&p, m->idem_key);
  int rc;
  PGresult *r = pg_query(&PG(s)->w,
                         "SELECT id,public_id,status,encoding,segments,created_at,req_hash"
                         " FROM messages WHERE account_id=$1::bigint AND idem_key=$2",
                         &p, &rc);
  if (r == NULL) return KK_ESTORE;
  if (PQntuples(r) == 0) {
    PQclear(r);
    return IDEM_NONE;
  }
  int64_t id = pg_int(r, 0, 0), created = pg_int(r, 0, 5);
  if (m->created_at - created < IDEM_WINDOW_MS) {
    /* The same key for another request: nothing is stored or sent. Rows
       from before the digest was kept match any request. */
    const char *h = pg_text(r, 0, 6);
    pg_copy(r, 0, 1, m->dup_public_id, sizeof m->dup_public_id);
    if (m->req_hash && h && strcmp(h, m->req_hash) != 0) {
      m->mismatch = 1;
    } else {
      m->id = id;
      m->duplicate = 1;
      pg_copy(r, 0, 2, m->dup_status, sizeof m->dup_status);
      pg_copy(r, 0, 3, m->dup_encoding, sizeof m->dup_encoding);
      m->dup_segments = (int)pg_int(r, 0, 4);
      m->dup_created_at = created;
    }
    PQclear(r);
    return IDEM_ANSWERED;
  }
  PQclear(r);
  /* An older message keeps its row but gives up the key. */
  struct pg_params c = {0};
  pg_p_int(&c, id);
  rc = pg_cmd(&PG(s)->w, "UPDATE messages SET idem_key=NULL WHERE id=$1::bigint", &c);
  return rc ? rc : IDEM_CLEARED;
}

/* What another node's message with the same key made this one undo: the
   rows its start wrote, its notes and its counters. */
static int undo_start(struct store *s, int64_t id, int nw,
                      const struct store_cascade_stats *stats) {
  static const char *const rows[] = {
      "DELETE FROM attempts WHERE message_id=$1::bigint",
      "DELETE FROM events WHERE message_id=$1::bigint",
      "DELETE FROM outbox WHERE message_id=$1::bigint",
  };
  struct pg_params p = {0};
  pg_p_int(&p, id);
  for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
    int rc = pg_cmd(&PG(s)->w, rows[i], &p);
    if (rc) return rc;
  }
  notes_truncate(s, nw);
  PG(s)->ws.cstats = *stats;
  return 0;
}

/* The price of one SMS unit for the account, read once per operation. */
struct price_memo {
  int64_t account_id, price;
  int known;
};

static int insert_one(struct store *s, struct store_msg_new *m, struct price_memo *pm) {
  m->duplicate = m->mismatch = 0;
  if (m->idem_key) {
    int rc = idem_find(s, m);
    if (rc < 0) return rc;
    if (rc == IDEM_ANSWERED) return 0;
  }
  /* The first usable step starts first, so the row is written once with
     it; what it started goes out as notes. */
  m->id = s->be->new_id(s, STORE_ID_MESSAGE);
  if (m->id <= 0) return KK_ESTORE;
  int nw = s->nw;
  struct store_cascade_stats stats = PG(s)->ws.cstats;
  struct pgc_first f;
  int rc = pgc_start(s, m, &f);
  if (rc) return rc;
  int64_t sms_cost = 0;
  if (m->to && m->to[0]) {
    if (!pm->known || pm->account_id != m->account_id) {
      pm->account_id = m->account_id;
      pm->price = pgc_price(s, m->account_id, "sms");
      pm->known = 1;
    }
    sms_cost = pm->price * m->segments;
  }
  struct pg_params p = {0};
  pg_p_int(&p, m->id);
  pg_p_text(&p, m->public_id);
  pg_p_int(&p, m->account_id);
  pg_p_text(&p, m->idem_key);
  pg_p_text(&p, m->to);
  pg_p_text(&p, m->sender);
  pg_p_text(&p, m->text);
  pg_p_text(&p, m->msg_class);
  pg_p_text(&p, m->encoding);
  pg_p_int(&p, m->segments);
  pg_p_text(&p, f.status);
  pg_p_text(&p, f.channel);
  pg_p_text(&p, m->callback_url);
  pg_p_int(&p, m->created_at);
  pg_p_int(&p, m->expires_at);
  pg_p_text(&p, m->cascade);
  pg_p_text(&p, m->extra);
  pg_p_text(&p, m->route);
  pg_p_int(&p, sms_cost);
  pg_p_int(&p, f.step);
  pg_p_opt(&p, f.attempt_id);
  pg_p_opt(&p, f.due_at);
  pg_p_opt(&p, f.wait_until);
  pg_p_int(&p, f.done);
  pg_p_int(&p, f.cost);
  pg_p_text(&p, m->campaign);
  pg_p_text(&p, m->idem_key ? m->req_hash : NULL);
  PGresult *r = pg_query(&PG(s)->w,
                         "INSERT INTO messages(id,public_id,account_id,idem_key,to_number,"
                         "sender,body,class,encoding,segments,status,channel,callback_url,"
                         "created_at,expires_at,updated_at,cascade,extra,route,sms_only_cost,"
                         "step,attempt_id,due_at,wait_until,done,cost,campaign,req_hash)"
                         " VALUES($1::bigint,$2,$3::bigint,$4,$5,$6,$7,$8,$9,"
                         "$10::int,$11,$12,$13,$14::bigint,$15::bigint,$14::bigint,$16,$17,"
                         "$18,$19::bigint,$20::int,$21::bigint,$22::bigint,$23::bigint,"
                         "$24::int,$25::bigint,$26,$27)"
                         " ON CONFLICT(account_id,idem_key) WHERE idem_key IS NOT NULL"
                         " DO NOTHING RETURNING id",
                         &p, &rc);
  if (r == NULL) return rc;
  int stored = PQntuples(r) == 1;
  PQclear(r);
  if (!stored) {
    /* Another node stored the key meanwhile (its commit came first). */
    int64_t id = m->id;
    m->attempt_id = 0;
    m->first_channel[0] = '\0';
    if ((rc = undo_start(s, id, nw, &stats)) != 0) return rc;
    rc = idem_find(s, m);
    if (rc < 0) return rc;
    if (rc != IDEM_ANSWERED) {
      kk_error(LOGCTX, "idempotency key of message %lld: conflict without a row",
               (long long)id);
      return KK_ESTORE;
    }
    return 0;
  }
  if (strcmp(m->first_channel, "sms") == 0) note_new_sms(s, m, f.due_at);
  return 0;
}

int pg_msg_insert(struct store *s, struct store_op *op) {
  struct store_insert_data *d = op->data;
  struct price_memo pm = {0};
  /* A batch is all or nothing: one failing message fails the operation. */
  for (int i = 0; i < d->n; i++) {
    d->msgs[i].rc = insert_one(s, &d->msgs[i], &pm);
    if (d->msgs[i].rc) return d->msgs[i].rc;
  }
  return 0;
}
