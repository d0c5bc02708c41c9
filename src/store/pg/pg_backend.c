/*
 * pg_backend.c - the PostgreSQL backend's table (store_int.h: struct
 * store_backend): connecting (and reconnecting after the connection was
 * lost), the transactions and savepoints the writer runs each batch in, the
 * kind of a failure from its SQLSTATE, ids from sequences a block at a time,
 * and claims of due rows with leases.
 *
 * One writer thread owns the write connection (w) and group-commits the
 * queued operations; the loop thread reads through its own connection (r).
 * Each store is a node (pg_node.c): a row in nodes, made at open, its
 * lease renewed by the writer about every second, removed at close.
 * synchronous_commit is on: a commit returns once the server has made it
 * durable.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/kk_err.h"
#include "core/kk_log.h"
#include "core/kk_mem.h"
#include "store/pg/pg_int.h"

#define LOGCTX "store"

/* ---- transactions ------------------------------------------------------- */

/* A connection lost since the last batch is opened again first; BEGIN that
   fails because the connection went meanwhile is tried once more (nothing
   has run yet). The transaction then runs in pipeline mode (pg_pipe.c):
   the writes of the batch's operations go out without waiting for their
   answers, which come back with the next read or the COMMIT. */
static int pgb_begin(struct store *s) {
  struct pg_store *q = PG(s);
  struct pg_conn *w = &q->w;
  if (pg_conn_ensure(w) != 0) return KK_ESTORE;
  int rc = pg_cmd(w, "BEGIN", NULL);
  if (rc != 0 && PQstatus(w->db) != CONNECTION_OK && pg_conn_ensure(w) == 0)
    rc = pg_cmd(w, "BEGIN", NULL);
  if (rc == 0 && pg_pipe_begin(w) != 0) {
    kk_error(LOGCTX, "cannot enter pipeline mode: %s", PQerrorMessage(w->db));
    w->fault = STORE_FAULT_IO;
    rc = KK_ESTORE;
  }
  /* Another node's writer may hold rows this batch needs: the first tries
     give up on a lock soon and run again (the other has committed by
     then, or the order differs); the later ones wait longer. The SET goes
     out with the batch's first statements. */
  if (rc == 0) {
    w->lock_ms = s->lock_try < PG_LOCK_SHORT_TRIES ? PG_LOCK_SHORT_MS : PG_LOCK_LONG_MS;
    char set[48];
    snprintf(set, sizeof set, "SET LOCAL lock_timeout=%d", w->lock_ms);
    rc = pg_cmd(w, set, NULL);
  }
  q->cstats_begin = q->ws.cstats;
  pg_sms_ahead_clear(s);
  pgc_run_clear(s, 1);
  pgc_keyed_forget(s);
  q->writer_pid = PQbackendPID(w->db);
  q->writer_up = 1;
  if (s->main) PG(s->main)->lane_pids[q->lane_no] = q->writer_pid;
  pgn_begin(q);
  return rc == 0 ? 0 : KK_ESTORE;
}

/* COMMIT of a transaction the server has aborted answers ROLLBACK, without
   an error: that is a failure too (pg_pipe_commit). */
static int pgb_commit(struct store *s) {
  struct pg_conn *w = &PG(s)->w;
  pg_sms_ahead_clear(s);
  pgc_run_clear(s, 0);
  if (w->pipe) return pg_pipe_commit(w) == 0 ? 0 : KK_ESTORE;
  int rc;
  PGresult *r = pg_query(w, "COMMIT", NULL, &rc);
  if (r && strcmp(PQcmdStatus(r), "COMMIT") != 0) {
    kk_error(LOGCTX, "the transaction was rolled back by the server");
    w->fault = STORE_FAULT_OTHER;
    rc = KK_ESTORE;
  }
  PQclear(r);
  return rc == 0 ? 0 : KK_ESTORE;
}

static int in_tx(struct pg_conn *c) {
  PGTransactionStatusType t = PQtransactionStatus(c->db);
  return t == PQTRANS_INTRANS || t == PQTRANS_INERROR || t == PQTRANS_ACTIVE;
}

/* What the batch counted goes with it (it may be run again). */
static void pgb_rollback(struct store *s) {
  struct pg_conn *w = &PG(s)->w;
  pg_sms_ahead_clear(s);
  pgc_run_clear(s, 0);
  pg_pipe_abandon(w);
  if (in_tx(w)) PQclear(PQexec(w->db, "ROLLBACK"));
  PG(s)->ws.cstats = PG(s)->cstats_begin;
}

/* An operation that may fail on its own runs outside the pipeline: its
   statements wait for their answers, so that its failure is seen (and
   undone) before the next one's statements run. RELEASE and ROLLBACK TO go
   out with what follows them. */
static int pgb_savepoint(struct store *s) {
  struct pg_conn *w = &PG(s)->w;
  int rc = pg_cmd(w, "SAVEPOINT op", NULL);
  if (pg_pipe_wait(w, 1) != 0) rc = KK_ESTORE;
  return rc == 0 ? 0 : KK_ESTORE;
}
static void pgb_release(struct store *s) {
  struct pg_conn *w = &PG(s)->w;
  pg_pipe_wait(w, 0);
  pg_cmd(w, "RELEASE SAVEPOINT op", NULL);
}
static void pgb_rollback_to(struct store *s) {
  struct pg_conn *w = &PG(s)->w;
  pg_pipe_wait(w, 0);
  pg_cmd(w, "ROLLBACK TO SAVEPOINT op", NULL);
}
static int pgb_in_tx(struct store *s) { return in_tx(&PG(s)->w); }

static int pgb_fault(struct store *s) {
  struct pg_conn *w = &PG(s)->w;
  if (w->db == NULL || PQstatus(w->db) != CONNECTION_OK) return STORE_FAULT_IO;
  return w->fault ? w->fault : STORE_FAULT_OTHER;
}

static void pgb_fault_clear(struct store *s) {
  PG(s)->w.fault = STORE_FAULT_NONE;
  PG(s)->w.sqlstate[0] = '\0';
  PG(s)->w.conflict = 0;
}

static int pgb_lock_conflict(struct store *s) { return PG(s)->w.conflict; }

/* The node's heartbeat and the other nodes' news ride along with the work
   that is committing (pg_node.c), then the notes' rows are read. */
static void pgb_before_commit(struct store *s, double t_ms) {
  /* a run of SMS operations ends with its last one: nothing waits here (a
     write that failed fails the COMMIT) */
  pg_sms_ahead_end(s);
  pgn_before_commit(s);
  /* the notes' rows and the expiry of early rows (pg_chan.c) */
  pgw_before_commit(s, t_ms);
}

static void pgb_undone(struct store *s) {
  pgw_undone(s);
  pgn_undone(PG(s));
}

static void pgb_publish(struct store *s) { pgw_publish(s); }

/* ---- ids and claims ---------------------------------------------------------- */

/* The sequences advance by PG_ID_BLOCK: nextval gives the first id of a
   block no other store gets. */
static int64_t pgb_new_id(struct store *s, enum store_id_kind kind) {
  struct pg_store *q = PG(s);
  int k = kind == STORE_ID_MESSAGE ? 0 : 1;
  if (q->next_id[k] >= q->end_id[k]) {
    int rc;
    PGresult *r = pg_query(&q->w, k == 0 ? "SELECT nextval('message_ids')"
                                         : "SELECT nextval('attempt_ids')",
                           NULL, &rc);
    if (r == NULL) return 0;
    q->next_id[k] = pg_int(r, 0, 0);
    q->end_id[k] = q->next_id[k] + PG_ID_BLOCK;
    PQclear(r);
    if (q->next_id[k] <= 0) return 0;
  }
  return q->next_id[k]++;
}

/* Where each kind of due work is marked. */
static const struct {
  const char *table, *by;
} claim_cols[] = {
    [STORE_CLAIM_SMS] = {"messages", "claimed_by"},
    [STORE_CLAIM_CHANNEL] = {"attempts", "claimed_by"},
    [STORE_CLAIM_WAIT] = {"messages", "wait_claimed_by"},
    [STORE_CLAIM_OUTBOX] = {"outbox", "claimed_by"},
};

/* Marks the rows no other live node holds (free, this node's, or a dead
   node's) as this node's. Rows another transaction has locked are skipped:
   that one is claiming or changing them. Those still free as committed are
   answered STORE_CLAIM_BUSY (a writer's batch changing the message, or
   another node's claim or take-over not committed yet: only a later claim
   can tell), the others STORE_CLAIM_HELD. The claim lasts while the node
   lives (pg_node.c); lease_ms is the longest a row may wait unsent before
   another node may send it, which a live node's lease never ends. */
static int pgb_claim(struct store *s, enum store_claim_kind kind, const int64_t *ids, int n,
                     int64_t lease_ms, unsigned char *granted) {
  struct pg_store *q = PG(s);
  (void)lease_ms;
  if (n <= 0) return 0;
  memset(granted, STORE_CLAIM_HELD, (size_t)n);
  if ((unsigned)kind >= sizeof claim_cols / sizeof claim_cols[0]) return KK_ESTORE;
  char *arr = pg_id_array(ids, n);   /* freed below */
  char sql[1024];
  const char *t = claim_cols[kind].table, *by = claim_cols[kind].by;
  char free_for[200];
  snprintf(free_for, sizeof free_for, PG_FREE_FOR("%s", "$1"), by, by, by);
  /* the outer SELECT sees the rows as committed before the UPDATE */
  snprintf(sql, sizeof sql,
           "WITH c AS (UPDATE %s SET %s=$1::bigint WHERE id IN (SELECT id FROM %s"
           " WHERE id=ANY($2::bigint[]) AND %s FOR UPDATE SKIP LOCKED) RETURNING id)"
           " SELECT id,%d FROM c UNION ALL SELECT id,%d FROM %s WHERE id=ANY($2::bigint[])"
           " AND %s AND id NOT IN (SELECT id FROM c)",
           t, by, t, free_for, STORE_CLAIM_GOT, STORE_CLAIM_BUSY, t, free_for);
  struct pg_params p = {0};
  pg_p_int(&p, q->node_id);
  pg_p_text(&p, arr);
  /* the writer claims inside its batch; the loop thread on its own
     connection, each claim a transaction of its own */
  int rc, writer = pthread_equal(pthread_self(), s->thread);
  PGresult *r = writer ? pg_query(&q->w, sql, &p, &rc) : pg_read(&q->r, sql, &p, &rc);
  free(arr);
  if (r == NULL) return KK_ESTORE;
  for (int row = 0; row < PQntuples(r); row++) {
    int64_t id = pg_int(r, row, 0);
    int answer = (int)pg_int(r, row, 1);
    for (int i = 0; i < n; i++)
      if (ids[i] == id) granted[i] = (unsigned char)answer;
  }
  PQclear(r);
  return 0;
}

/* ---- open / close -------------------------------------------------------- */

static void open_failed(struct pg_store *q) {
  pgn_stop(q);
  pg_conn_close(&q->w);
  pg_conn_close(&q->r);
  free(q->url);
  free(q);
}

static int pgb_open(const struct store_opts *opts, struct store **out) {
  struct pg_store *q = kk_xcalloc(1, sizeof *q);   /* freed by the writer part */
  q->url = kk_xstrdup(opts->store_url);
  q->ws.early_cap = opts->early_cap > 0 ? opts->early_cap : 10000;
  if (pg_conn_open(&q->w, opts->store_url) != 0 || pg_migrate(&q->w) != 0 ||
      pg_conn_open(&q->r, opts->store_url) != 0) {
    open_failed(q);
    return KK_ESTORE;
  }
  if (pgn_open(q, opts) != 0) {
    open_failed(q);
    return KK_ESTORE;
  }
  kk_info(LOGCTX, "opened PostgreSQL database %s as node %lld", PQdb(q->w.db),
          (long long)q->node_id);
  *out = &q->base;
  return 0;
}

/* Another writer of the node s (store_opts.writers): a connection of its
   own whose rows are the node's (the columns' default), no reads, no
   heartbeat and no listening (the node's first writer does those). */
static int pgb_lane_open(struct store *s, struct store **out) {
  struct pg_store *m = PG(s);
  if (m->nlanes_opened + 1 >= STORE_WRITERS_MAX) return KK_ESTORE;
  struct pg_store *q = kk_xcalloc(1, sizeof *q);   /* freed by the writer part */
  q->url = kk_xstrdup(m->url);
  q->ws.early_cap = m->ws.early_cap;
  q->node_id = m->node_id;
  q->lease_ms = m->lease_ms;
  snprintf(q->node_name, sizeof q->node_name, "%s", m->node_name);
  int rc = pg_conn_open(&q->w, q->url);
  snprintf(q->w.node, sizeof q->w.node, "%lld", (long long)q->node_id);
  if (rc != 0 || pg_conn_session(&q->w) != 0) {
    pg_conn_close(&q->w);
    free(q->url);
    free(q);
    return KK_ESTORE;
  }
  q->lane_no = m->nlanes_opened++;
  *out = &q->base;
  return 0;
}

/* Pool thread: a read connection of its own (freed by pgb_reader_close). */
static void *pgb_reader_open(struct store *s) {
  struct pg_conn *c = kk_xcalloc(1, sizeof *c);
  if (pg_conn_open(c, PG(s)->url) != 0) {
    pg_conn_close(c);
    free(c);
    return NULL;
  }
  return c;
}

static void pgb_reader_close(struct store *s, void *rd) {
  pg_conn_close(rd);
  free(rd);
}

/* After the writer has stopped: the node's row goes, and with it its
   claims (pg_node.c). */
static void pgb_close(struct store *s) {
  struct pg_store *q = PG(s);
  pgn_stop(q);
  if (s->main == NULL && q->w.db && pg_conn_ensure(&q->w) == 0) pgn_close(q);
  pg_conn_close(&q->w);
  pg_conn_close(&q->r);
  free(q->url);
  q->napplied = q->nheard;   /* what was heard and not committed goes */
  pgn_begin(q);
  free(q->heard);
  pg_sms_ahead_clear(s);
  pgw_close(s);
}

const struct store_backend store_pg_backend = {
    .name = "postgresql",
    .open = pgb_open,
    .lane_open = pgb_lane_open,
    .close = pgb_close,
    .reader_open = pgb_reader_open,
    .sql = pg_sql,
    .sql_args_max = PG_MAX_PARAMS,
    .reader_close = pgb_reader_close,
    .begin = pgb_begin,
    .commit = pgb_commit,
    .rollback = pgb_rollback,
    .savepoint = pgb_savepoint,
    .release = pgb_release,
    .rollback_to = pgb_rollback_to,
    .in_tx = pgb_in_tx,
    .fault = pgb_fault,
    .fault_clear = pgb_fault_clear,
    .before_commit = pgb_before_commit,
    .idle_ms = PG_IDLE_MS,
    .undone = pgb_undone,
    .lock_conflict = pgb_lock_conflict,
    .publish = pgb_publish,
    .new_id = pgb_new_id,
    .claim = pgb_claim,
    .exec =
        {
            [STORE_OP_ACCOUNT_CREATE] = pg_account_create,
            [STORE_OP_ACCOUNT_UPDATE] = pg_account_update,
            [STORE_OP_KEY_ADD] = pg_key_add,
            [STORE_OP_KEY_REVOKE] = pg_key_revoke,
            [STORE_OP_ROUTE_PUT] = pg_route_put,
            [STORE_OP_SETTING_PUT] = pg_setting_put,
            [STORE_OP_RETENTION] = pg_retention,
            /* messages, SMS and callbacks (pg_msg.c, pg_sms.c, pg_outbox.c) */
            [STORE_OP_MSG_INSERT] = pg_msg_insert,
            [STORE_OP_MSG_CANCEL] = pg_msg_cancel,
            [STORE_OP_CAMPAIGN] = store_campaign_exec,
            [STORE_OP_SMS_SUBMITTED] = pg_sms_submitted,
            [STORE_OP_SMS_FAILED] = pg_sms_failed,
            [STORE_OP_SMS_EXPIRED] = pg_sms_expired,
            [STORE_OP_SMS_RETRY] = pg_sms_retry,
            [STORE_OP_MSG_DECIDE] = pg_msg_decide,
            [STORE_OP_RECEIPT] = pg_receipt,
            [STORE_OP_INBOUND] = pg_inbound,
            [STORE_OP_OUTBOX_RESULT] = pg_outbox_result,
            [STORE_OP_OUTBOX_DEFER] = pg_outbox_defer,
            [STORE_OP_OUTBOX_TRIM] = pg_outbox_trim,
            /* channels and cascades (pg_chan.c, pg_cascade.c) */
            [STORE_OP_CHAN_TRYING] = pg_chan_trying,
            [STORE_OP_CHAN_RESULT] = pg_chan_result,
            [STORE_OP_CHAN_STATUS] = pg_chan_status,
            [STORE_OP_STEP_TIMEOUT] = pg_step_timeout,
            [STORE_OP_WA_INBOUND] = pg_wa_inbound,
            [STORE_OP_EARLY_EXPIRE] = pg_early_expire,
            /* templates */
            [STORE_OP_TEMPLATE_PUT] = pg_template_put,
            /* contacts and imports (pg_contact.c) */
            [STORE_OP_CONTACT_WRITE] = pg_contact_write,
            [STORE_OP_CONTACT_DELETE] = pg_contact_delete,
            [STORE_OP_STOP_WRITE] = pg_stop_write,
            [STORE_OP_CONSENT_WRITE] = pg_consent_write,
            [STORE_OP_INBOUND_SET] = pg_inbound_set,
            [STORE_OP_UNSUB_PUT] = pg_unsub_put,
            [STORE_OP_IMPORT_CHANGE] = pg_import_change,
            /* balances (pg_money.c) */
            [STORE_OP_MONEY_SET] = pg_money_set,
            [STORE_OP_MONEY_TOPUP] = pg_money_topup,
            [STORE_OP_SEGMENT_PUT] = pg_segment_put,
            [STORE_OP_SEGMENT_DELETE] = pg_segment_delete,
        },
    .read =
        {
            .keys_each = pg_keys_each,
            .keys_rows = pg_keys_rows,
            .nodes = pg_nodes,
            .accounts_suspended = pg_accounts_suspended,
            .routes_each = pg_routes_each,
            .channels_each = pg_channels_each,
            .prices_each = pg_prices_each,
            .accounts_each = pg_accounts_each,
            .cascades_all = pg_cascades_all,
            .templates_all = pg_templates_all,
            /* messages and due work (pg_read.c, pg_due.c) */
            .msg_get = pg_msg_get,
            .msg_list = pg_msg_list,
            .reply_list = pg_reply_list,
            .sms_due = pg_sms_due,
            .chan_due = pg_chan_due,
            .wait_due = pg_wait_due,
            .wait_next = pg_wait_next,
            .wa_last_inbound = pg_wa_last_inbound,
            .outbox_accounts = pg_outbox_accounts,
            .outbox_due = pg_outbox_due,
            /* contacts and imports (pg_contact.c) */
            .contact = {.get = pg_contact_get, .list = pg_contact_list,
                        .lists = pg_contact_lists, .import_get = pg_import_get,
                        .import_errors = pg_import_errors, .each = pg_contacts_each,
                        .segment_get = pg_segment_get, .segments = pg_segments,
                        .count = pg_contact_count, .settle = pg_contacts_settle},
            /* the stop-list and consents (pg_optout.c) */
            .optout = {.inbound = {pg_in_assigned, pg_in_last_to_phone, pg_in_last_to_user,
                                   pg_in_contact_of_user, pg_in_policy_doc, pg_in_outbox_add},
                       .inbound_owned = pg_inbound_owned, .unsub_get = pg_unsub_get,
                       .stop_all = pg_stop_all, .consent_all = pg_consent_all,
                       .stop_each = pg_stop_each, .consent_each = pg_consent_each},
            /* balances (pg_money.c) */
            .money = PG_MONEY_READS,
        },
};
