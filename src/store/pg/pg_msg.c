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

/* What the message would cost as SMS only: its segments at the price of
   the route its SMS would take, else the price table's. */
static int64_t sms_cost(struct store *s, const struct store_msg_new *m, struct price_memo *pm) {
  if (!m->to || !m->to[0]) return 0;
  if (m->sms_priced) return m->sms_price * m->segments;
  if (!pm->known || pm->account_id != m->account_id) {
    pm->account_id = m->account_id;
    pm->price = pgc_price(s, m->account_id, "sms");
    pm->known = 1;
  }
  return pm->price * m->segments;
}

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
  int rc = pg_money_hold(s, m, -1);
  if (rc || m->no_balance) return rc;
  int nw = s->nw;
  struct store_cascade_stats stats = PG(s)->ws.cstats;
  struct casc_first f;
  rc = pgc_start(s, m, &f);
  if (rc) return rc;
  int64_t cost = sms_cost(s, m, pm);
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
  pg_p_int(&p, cost);
  pg_p_int(&p, f.step);
  pg_p_opt(&p, f.attempt_id);
  pg_p_opt(&p, f.due_at);
  pg_p_opt(&p, f.wait_until);
  pg_p_int(&p, f.done);
  pg_p_int(&p, f.cost);
  pg_p_text(&p, m->campaign);
  pg_p_text(&p, m->idem_key ? m->req_hash : NULL);
  pg_p_opt(&p, m->variant);
  PGresult *r = pg_query(&PG(s)->w,
                         "INSERT INTO messages(id,public_id,account_id,idem_key,to_number,"
                         "sender,body,class,encoding,segments,status,channel,callback_url,"
                         "created_at,expires_at,updated_at,cascade,extra,route,sms_only_cost,"
                         "step,attempt_id,due_at,wait_until,done,cost,campaign,req_hash,variant)"
                         " VALUES($1::bigint,$2,$3::bigint,$4,$5,$6,$7,$8,$9,"
                         "$10::int,$11,$12,$13,$14::bigint,$15::bigint,$14::bigint,$16,$17,"
                         "$18,$19::bigint,$20::int,$21::bigint,$22::bigint,$23::bigint,"
                         "$24::int,$25::bigint,$26,$27,$28::int-1)"
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
    if ((rc = pg_money_unhold(s, id)) != 0) return rc;
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

/* ---- batches: the rows of many messages by a few statements --------------- */

/* The rows a batch's messages add, each table by one statement. */
static const struct {
  const char *sql;
  int ncols;
} tables[PGW_T_COUNT] = {
    [PGW_T_ATTEMPTS] = {"INSERT INTO attempts(id,message_id,step,channel,route,status,"
                        "segments,address,scope,error,created_at,due_at)"
                        " SELECT * FROM unnest($1::bigint[],$2::bigint[],$3::int[],"
                        "$4::text[],$5::text[],$6::text[],$7::int[],$8::text[],"
                        "$9::bigint[],$10::text[],$11::bigint[],$12::bigint[])",
                        12},
    [PGW_T_EVENTS] = {"INSERT INTO events(message_id,attempt_id,status,at,detail)"
                      " SELECT * FROM unnest($1::bigint[],$2::bigint[],$3::text[],"
                      "$4::bigint[],$5::text[])",
                      5},
    [PGW_T_OUTBOX] = {"INSERT INTO outbox(account_id,message_id,url,payload,due_at,at,"
                      "public_id,status,channel,to_number,cost,error)"
                      " SELECT a,b,c,'',d,d,e,f,g,h,i,j FROM unnest($1::bigint[],"
                      "$2::bigint[],$3::text[],$4::bigint[],$5::text[],$6::text[],"
                      "$7::text[],$8::text[],$9::bigint[],$10::text[])"
                      " AS t(a,b,c,d,e,f,g,h,i,j)",
                      10},
    [PGW_T_ATT_SET] = {"UPDATE attempts a SET status=t.st, sent_at=t.s, delivered_at=t.d,"
                       " read_at=t.r, provider_id=CASE WHEN a.channel='sms' THEN a.provider_id"
                       " ELSE COALESCE(a.provider_id,t.pid) END,"
                       " sms_provider_id=CASE WHEN a.channel='sms' THEN"
                       " COALESCE(a.sms_provider_id,t.pid) END,"
                       " error=COALESCE(t.err,a.error), cost=a.cost+t.cost, due_at=NULL,"
                       " parts_sent=t.ps FROM unnest($1::text[],$2::bigint[],$3::bigint[],"
                       "$4::bigint[],$5::text[],$6::text[],$7::bigint[],$8::bigint[],"
                       "$9::bigint[]) AS t(st,s,d,r,pid,err,cost,ps,id) WHERE a.id=t.id",
                       9},
    [PGW_T_MSG_FIN] = {"UPDATE messages m SET status=t.st, channel=t.ch, cost=t.cost,"
                       " delivered_twice=t.dt, updated_at=t.up,"
                       " done=CASE WHEN t.fd<>0 THEN 1 ELSE m.done END,"
                       " due_at=CASE WHEN t.fd<>0 OR t.fc<>0 THEN NULL ELSE m.due_at END,"
                       " wait_until=CASE WHEN t.fd<>0 THEN NULL WHEN t.fw<>0 THEN t.t0"
                       " ELSE m.wait_until END FROM unnest($1::text[],$2::text[],$3::bigint[],"
                       "$4::int[],$5::bigint[],$6::int[],$7::int[],$8::int[],$9::bigint[],"
                       "$10::bigint[]) AS t(st,ch,cost,dt,up,fd,fc,fw,t0,id) WHERE m.id=t.id",
                       10},
    [PGW_T_PARTS] = {"INSERT INTO sms_parts(route,provider_id,attempt_id,part,state)"
                     " SELECT r,p,a,n,'sent' FROM unnest($1::text[],$2::text[],$3::bigint[],"
                     "$4::int[]) AS t(r,p,a,n) ON CONFLICT(route,provider_id) DO UPDATE SET"
                     " attempt_id=excluded.attempt_id, part=excluded.part, state='sent'",
                     4},
};

#define MSG_BATCH_SQL                                                          \
  "INSERT INTO messages(id,public_id,account_id,idem_key,to_number,sender,"   \
  "body,class,encoding,segments,status,channel,callback_url,created_at,"      \
  "expires_at,updated_at,cascade,extra,route,sms_only_cost,step,attempt_id,"  \
  "due_at,wait_until,done,cost,campaign,req_hash,variant)"                    \
  " SELECT c1,c2,c3,c4,c5,c6,c7,c8,c9,c10,c11,c12,c13,c14,c15,c14,c16,c17,"   \
  "c18,c19,c20,c21,c22,c23,c24,c25,c26,c27,c28-1 FROM unnest($1::bigint[],"   \
  "$2::text[],$3::bigint[],$4::text[],$5::text[],$6::text[],$7::text[],"      \
  "$8::text[],$9::text[],$10::int[],$11::text[],$12::text[],$13::text[],"     \
  "$14::bigint[],$15::bigint[],$16::text[],$17::text[],$18::text[],"          \
  "$19::bigint[],$20::int[],$21::bigint[],$22::bigint[],$23::bigint[],"       \
  "$24::int[],$25::bigint[],$26::text[],$27::text[],$28::int[])"              \
  " AS t(c1,c2,c3,c4,c5,c6,c7,c8,c9,c10,c11,c12,c13,c14,c15,c16,c17,c18,c19," \
  "c20,c21,c22,c23,c24,c25,c26,c27,c28) ORDER BY c3,c4"
/* With idempotency keys: a key another node stored meanwhile inserts no
   row (a batch without keys cannot meet one, and is not inserted as one
   that might: the server's speculative insertion costs a record more per
   row) */
#define MSG_BATCH_KEYED_SQL                                                    \
  MSG_BATCH_SQL " ON CONFLICT(account_id,idem_key) WHERE idem_key IS NOT NULL" \
                " DO NOTHING RETURNING id"
#define MSG_BATCH_COLS 28

struct pg_rows *pgw_deferred(struct store *s, enum pgw_table table) {
  struct pg_rows *d = PG(s)->ws.defer;
  return d ? &d[table] : NULL;
}

int pgw_pending(struct store *s, enum pgw_table table, int64_t id) {
  struct pgw_ids *p = &PG(s)->ws.pend[table == PGW_T_MSG_FIN];
  for (int i = 0; i < p->n; i++)
    if (p->id[i] == id) return 1;
  if (p->n == p->cap) {
    p->cap = p->cap ? p->cap * 2 : 64;
    p->id = kk_xrealloc(p->id, (size_t)p->cap * sizeof *p->id);   /* freed by pgw_close */
  }
  p->id[p->n++] = id;
  return 0;
}

int pgw_flush(struct store *s) {
  struct pg_rows *d = PG(s)->ws.defer;
  PG(s)->ws.pend[0].n = PG(s)->ws.pend[1].n = 0;
  for (int t = 0; d && t < PGW_T_COUNT; t++) {
    if (d[t].n == 0) continue;
    /* (what fails fails the next read or the COMMIT) */
    int rc = pg_rows_cmd(&PG(s)->w, &d[t], tables[t].sql, tables[t].ncols);
    if (rc != 0) return rc;
  }
  return 0;
}

/* Gathers message m's row (as insert_one writes it) into rows. */
static void msg_row_add(struct pg_rows *rows, const struct store_msg_new *m,
                        const struct casc_first *f, int64_t sms_cost) {
  int c = 0;
  pg_rows_int(rows, c++, m->id);
  pg_rows_text(rows, c++, m->public_id);
  pg_rows_int(rows, c++, m->account_id);
  pg_rows_text(rows, c++, m->idem_key);
  pg_rows_text(rows, c++, m->to);
  pg_rows_text(rows, c++, m->sender);
  pg_rows_text(rows, c++, m->text);
  pg_rows_text(rows, c++, m->msg_class);
  pg_rows_text(rows, c++, m->encoding);
  pg_rows_int(rows, c++, m->segments);
  pg_rows_text(rows, c++, f->status);
  pg_rows_text(rows, c++, f->channel);
  pg_rows_text(rows, c++, m->callback_url);
  pg_rows_int(rows, c++, m->created_at);
  pg_rows_int(rows, c++, m->expires_at);
  pg_rows_text(rows, c++, m->cascade);
  pg_rows_text(rows, c++, m->extra);
  pg_rows_text(rows, c++, m->route);
  pg_rows_int(rows, c++, sms_cost);
  pg_rows_int(rows, c++, f->step);
  pg_rows_opt(rows, c++, f->attempt_id);
  pg_rows_opt(rows, c++, f->due_at);
  pg_rows_opt(rows, c++, f->wait_until);
  pg_rows_int(rows, c++, f->done);
  pg_rows_int(rows, c++, f->cost);
  pg_rows_text(rows, c++, m->campaign);
  pg_rows_text(rows, c++, m->idem_key ? m->req_hash : NULL);
  pg_rows_opt(rows, c++, m->variant);
  pg_rows_end(rows);
}

#define BATCH_CONFLICT 1   /* a key was stored meanwhile: one message at a time */

/*
 * The messages of d with their first steps, the rows of each table by one
 * statement: their attempts, events and outbox rows wait (pgw_deferred)
 * until every message has started, then the messages' rows follow. When an
 * idempotency key turns out to be stored meanwhile (by another node, or
 * twice in the batch), everything is undone to the savepoint taken first
 * and BATCH_CONFLICT returned.
 */
static int insert_batch(struct store *s, struct store_insert_data *d) {
  struct pg_conn *w = &PG(s)->w;
  int keyed = 0;
  for (int i = 0; i < d->n; i++) keyed |= d->msgs[i].idem_key != NULL;
  if (keyed && pg_cmd(w, "SAVEPOINT msgs", NULL) != 0) return KK_ESTORE;
  int nw = s->nw;
  struct store_cascade_stats stats = PG(s)->ws.cstats;
  struct pg_rows *defer = kk_xcalloc(PGW_T_COUNT, sizeof *defer);   /* freed below */
  struct pg_rows rows = {0};
  int64_t *due = kk_xcalloc((size_t)d->n, sizeof *due);   /* freed below; -1: not stored */
  struct price_memo pm = {0};
  signed char *prepaid = kk_xcalloc((size_t)d->n, 1);   /* freed below */
  int rc = pg_money_prepaid(s, d->msgs, d->n, prepaid);
  PG(s)->ws.defer = defer;
  for (int i = 0; i < d->n && rc == 0; i++) {
    struct store_msg_new *m = &d->msgs[i];
    m->duplicate = m->mismatch = 0;
    m->rc = 0;
    due[i] = -1;
    if (m->idem_key) {
      rc = idem_find(s, m);
      if (rc == IDEM_ANSWERED) {
        rc = 0;
        continue;
      }
      if (rc > 0) rc = 0;
      if (rc) break;
    }
    m->id = s->be->new_id(s, STORE_ID_MESSAGE);
    if (m->id <= 0) rc = KK_ESTORE;
    if (rc == 0) rc = pg_money_hold(s, m, prepaid[i]);
    if (rc == 0 && m->no_balance) continue;
    struct casc_first f;
    if (rc == 0) rc = pgc_start(s, m, &f);
    if (rc) {
      m->rc = rc;
      break;
    }
    msg_row_add(&rows, m, &f, sms_cost(s, m, &pm));
    due[i] = f.due_at;
  }
  if (rc == 0) rc = pgw_flush(s);
  PG(s)->ws.defer = NULL;
  int conflict = 0;
  if (rc == 0 && rows.n > 0) {
    int want = rows.n;
    PGresult *r = pg_rows_run(w, &rows, keyed ? MSG_BATCH_KEYED_SQL : MSG_BATCH_SQL " RETURNING id",
                              MSG_BATCH_COLS, &rc);
    if (r && PQntuples(r) != want) conflict = 1;
    PQclear(r);
  }
  for (int t = 0; t < PGW_T_COUNT; t++) pg_rows_free(&defer[t]);
  pg_rows_free(&rows);
  free(defer);
  free(prepaid);
  if (conflict && !keyed) rc = KK_ESTORE;   /* only that index is let pass */
  if (conflict && rc == 0) {
    rc = pg_cmd(w, "ROLLBACK TO SAVEPOINT msgs", NULL);
    notes_truncate(s, nw);
    PG(s)->ws.cstats = stats;
    for (int i = 0; i < d->n; i++) {
      d->msgs[i].attempt_id = 0;
      d->msgs[i].first_channel[0] = '\0';
    }
  }
  if (keyed && rc == 0) rc = pg_cmd(w, "RELEASE SAVEPOINT msgs", NULL);
  if (rc == 0 && !conflict) {
    for (int i = 0; i < d->n; i++)
      if (due[i] >= 0 && strcmp(d->msgs[i].first_channel, "sms") == 0)
        note_new_sms(s, &d->msgs[i], due[i]);
  }
  free(due);
  if (rc) {
    for (int i = 0; i < d->n; i++)
      if (d->msgs[i].rc == 0) d->msgs[i].rc = rc;
    return rc;
  }
  return conflict ? BATCH_CONFLICT : 0;
}

/* The policy's decisions of the messages stored new (rare: written apart
   from the batch's rows). */
static int insert_decisions(struct store *s, struct store_insert_data *d) {
  for (int i = 0; i < d->n; i++) {
    const struct store_msg_new *m = &d->msgs[i];
    if (m->decisions == NULL || m->duplicate || m->mismatch) continue;
    struct pg_params p = {0};
    pg_p_text(&p, m->decisions);
    pg_p_int(&p, m->id);
    int rc = pg_cmd(&PG(s)->w, "UPDATE messages SET decisions=$1 WHERE id=$2::bigint", &p);
    if (rc) return rc;
  }
  return 0;
}

/* The sends the frequency caps counted, as notes the other nodes hear
   (pg_node.c): they count them too. */
static void cap_notes(struct store *s, const struct store_insert_data *d) {
  for (int i = 0; i < d->n; i++) {
    const struct store_msg_new *m = &d->msgs[i];
    if (m->cap_at && m->to && m->to[0] && m->rc == 0 && !m->duplicate && !m->mismatch &&
        !m->no_balance)
      note_cfg(s, STORE_NOTE_CAP_SEND, m->account_id, m->to, m->msg_class, NULL, m->cap_at);
  }
}

static int inserted(struct store *s, struct store_insert_data *d) {
  int rc = insert_decisions(s, d);
  if (rc == 0) rc = store_links_insert(s, d->msgs, d->n);
  if (rc == 0) cap_notes(s, d);
  return rc;
}

int pg_msg_insert(struct store *s, struct store_op *op) {
  struct store_insert_data *d = op->data;
  if (d->n > 1) {
    int rc = insert_batch(s, d);
    if (rc != BATCH_CONFLICT) return rc ? rc : inserted(s, d);
  }
  struct price_memo pm = {0};
  /* One message at a time; a batch is all or nothing: one failing message
     fails the operation. */
  for (int i = 0; i < d->n; i++) {
    d->msgs[i].rc = insert_one(s, &d->msgs[i], &pm);
    if (d->msgs[i].rc) return d->msgs[i].rc;
  }
  return inserted(s, d);
}
