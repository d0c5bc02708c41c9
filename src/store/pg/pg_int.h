/*
 * pg_int.h - what the PostgreSQL backend's files share: the connection, the
 * backend's store, the parameter lists every statement binds, and the
 * helpers that run a statement and say what its failure was. Not for use
 * outside src/store/pg.
 *
 * Every value goes to the server as a bound parameter ($1, $2 ...), never
 * pasted into the SQL text. Results come back as text.
 */
#ifndef PG_INT_H
#define PG_INT_H

#include <libpq-fe.h>
#include <stdint.h>

#include "store/store_int.h"

#define PG_ID_BLOCK 1000          /* ids a store takes from a sequence at a time */
#define PG_LOCK_MS 1000           /* longest wait for a row lock (lock_timeout) */
#define PG_HEARTBEAT_MS 1000.0    /* how often the writer marks its node alive */
#define PG_MAX_PARAMS 32

/* The server's clock in milliseconds since the Unix epoch (leases compare
   with it, so that nodes whose clocks differ agree on when one ends). */
#define PG_NOW_MS "(EXTRACT(EPOCH FROM clock_timestamp())*1000)::bigint"

/* A connection and what its last failure was. */
struct pg_conn {
  PGconn *db;
  int fault;                /* STORE_FAULT_* of the last failed statement */
  char sqlstate[6];         /* its SQLSTATE ("" when the connection itself failed) */
};

/* ---- the writer's state for messages, SMS, channels and cascades ---------- */

/* Early statuses and receipts: how long they are kept, how many the expiry
   deletes per table and run, and how often the writer runs it (as SQLite). */
#define PGW_EARLY_KEEP_MS (24LL * 3600 * 1000)
#define PGW_EARLY_EXPIRE_BATCH 1000
#define PGW_EARLY_EXPIRE_EVERY_MS 1000.0

/* The writer's counters and early-row counts (pg_chan.c): rows held per
   scope ("s<account>" statuses, "r<route>" receipts), counted when first
   needed and forgotten whenever rows go otherwise. */
struct pgw_state {
  struct store_cascade_stats cstats;
  int64_t early_cap;            /* rows one scope may hold */
  double early_next_expire;     /* monotonic ms of the next expiry run */
  struct pgw_early_count { char key[72]; int64_t n; } *ecount;  /* owned */
  int necount, capecount;
  uint64_t early_refused, early_expired;
  struct pg_rows *defer;    /* pg_msg.c: PGW_T_COUNT tables while a batch of
                               new messages is inserted, else NULL */
};

/* The PostgreSQL backend's store: the neutral part first (the writer sees
   only that), then the connections and the writer's state. */
struct pg_store {
  struct store base;
  struct pg_conn w;         /* writer thread's connection */
  struct pg_conn r;         /* loop thread's connection (reads) */
  int64_t node_id;          /* this store's row in nodes: what its claims carry */
  /* writer: the block of ids taken from each sequence, next .. end-1 */
  int64_t next_id[2], end_id[2];
  double next_heartbeat;    /* writer: monotonic ms of the next heartbeat */
  char *url;                /* owned: the pool threads' readers connect to it */
  struct pgw_state ws;      /* writer: messages, SMS, channels and cascades */
};

#define PG(s) ((struct pg_store *)(s))

/* The parameters of one statement (values copied where they are numbers;
   text and bytes are borrowed until the statement has run). */
struct pg_params {
  int n;
  const char *v[PG_MAX_PARAMS];
  int len[PG_MAX_PARAMS];
  int fmt[PG_MAX_PARAMS];   /* 0 text, 1 binary */
  char num[PG_MAX_PARAMS][24];
};

void pg_p_text(struct pg_params *p, const char *s);       /* NULL: SQL NULL */
void pg_p_int(struct pg_params *p, int64_t v);
void pg_p_opt(struct pg_params *p, int64_t v);            /* 0: SQL NULL */
void pg_p_bytes(struct pg_params *p, const void *b, int n);

/* pg_schema.c: the connection ------------------------------------------- */

/* Opens a connection to url with kaskad's session settings (synchronous
   commit on, lock_timeout PG_LOCK_MS); the same settings come back on a
   reconnect. 0 or KK_ESTORE (logged; c->db may be left for pg_conn_close). */
int pg_conn_open(struct pg_conn *c, const char *url);
void pg_conn_close(struct pg_conn *c);
/* Reconnects a connection that was lost: 0 when it is usable. */
int pg_conn_ensure(struct pg_conn *c);
/* Applies the migrations the database has not had yet, under an advisory
   lock (nodes starting together migrate once). 0 or KK_ESTORE. */
int pg_migrate(struct pg_conn *c);

/* Runs sql with p (NULL: none) and returns its result (PQclear it) when it
   succeeded, else NULL with *rc KK_EEXIST (a constraint) or KK_ESTORE and
   c->fault set. */
PGresult *pg_query(struct pg_conn *c, const char *sql, const struct pg_params *p, int *rc);
/* A statement whose rows are not needed: 0, KK_EEXIST or KK_ESTORE. */
int pg_cmd(struct pg_conn *c, const char *sql, const struct pg_params *p);
/* A read outside a transaction: as pg_query, but a lost connection is
   reconnected and the read tried once more. */
PGresult *pg_read(struct pg_conn *c, const char *sql, const struct pg_params *p, int *rc);

/* Column helpers over a text result. */
int64_t pg_int(const PGresult *r, int row, int col);      /* NULL: 0 */
/* Copies a text column into out (valid UTF-8, cut to cap). */
void pg_copy(const PGresult *r, int row, int col, char *out, size_t cap);
/* The column, or NULL when it is NULL. */
const char *pg_text(const PGresult *r, int row, int col);

/* ---- the backend's writes (struct store_backend.exec) and reads -------- */

/* pg_account.c */
int pg_account_create(struct store *s, struct store_op *op);
int pg_account_update(struct store *s, struct store_op *op);
int pg_key_add(struct store *s, struct store_op *op);
int pg_key_revoke(struct store *s, struct store_op *op);
int pg_accounts_each(struct store *s, void (*fn)(void *arg, const struct store_account *a),
                     void *arg);
int pg_keys_each(struct store *s,
                 void (*fn)(void *arg, const uint8_t hash[32], int64_t account_id), void *arg);
int pg_keys_rows(struct store *s, void *rd, int64_t account_id,
                 void (*fn)(void *arg, const char *prefix, int64_t created_at,
                            int64_t revoked_at),
                 void *arg);
int pg_accounts_suspended(struct store *s, void (*fn)(void *arg, int64_t account_id), void *arg);
/* pg_settings.c */
int pg_route_put(struct store *s, struct store_op *op);
int pg_setting_put(struct store *s, struct store_op *op);
int pg_routes_each(struct store *s, void (*fn)(void *arg, const char *name, const char *config),
                   void *arg);
int pg_channels_each(struct store *s,
                     void (*fn)(void *arg, int64_t account_id, const char *channel,
                                const char *config),
                     void *arg);
int pg_prices_each(struct store *s,
                   void (*fn)(void *arg, int64_t account_id, const char *channel, int64_t price),
                   void *arg);
int pg_cascades_all(struct store *s,
                    void (*fn)(void *arg, int64_t account_id, const char *name,
                               const char *steps),
                    void *arg);
/* pg_template.c */
int pg_template_put(struct store *s, struct store_op *op);
int pg_templates_all(struct store *s,
                     void (*fn)(void *arg, int64_t account_id, const char *name,
                                const char *body, int64_t created_at, int64_t updated_at),
                     void *arg);
/* pg_retention.c */
int pg_retention(struct store *s, struct store_op *op);

/* ---- messages, SMS, callbacks, channels and cascades: the writes ---------- */

/* An attempt's columns as pgc_att_cols() reads them. */
#define PGW_ATT_COLS "message_id,channel,status,step,sent_at,delivered_at,read_at,"  \
                     "segments,parts_sent,parts_delivered,scope,tries"

/* pg_rows.c: many rows of one table by one statement, each column an
   array parameter that unnest() turns back into rows. */
struct pg_col { char *buf; size_t len, cap; };
struct pg_rows {
  struct pg_col col[PG_MAX_PARAMS];   /* buffers owned (pg_rows_free) */
  int n;                    /* rows gathered */
};
/* A value of column col of the row being gathered (opt: 0 is NULL; text:
   NULL is NULL). */
void pg_rows_int(struct pg_rows *r, int col, int64_t v);
void pg_rows_opt(struct pg_rows *r, int col, int64_t v);
void pg_rows_text(struct pg_rows *r, int col, const char *s);
void pg_rows_end(struct pg_rows *r);
/* Runs sql with columns 0..ncols-1 as $1..$ncols (as pg_query) and
   forgets the rows. */
PGresult *pg_rows_run(struct pg_conn *c, struct pg_rows *r, const char *sql, int ncols, int *rc);
void pg_rows_clear(struct pg_rows *r);
void pg_rows_free(struct pg_rows *r);

/* pg_msg.c */
int pg_msg_insert(struct store *s, struct store_op *op);
/* While a batch of new messages is inserted, the attempts, events and
   outbox rows their first steps add wait to be written together (before
   the messages' rows): table's rows, or NULL when rows are written at once. */
enum pgw_table { PGW_T_ATTEMPTS, PGW_T_EVENTS, PGW_T_OUTBOX, PGW_T_COUNT };
struct pg_rows *pgw_deferred(struct store *s, enum pgw_table table);
/* Writes the rows that wait (a write that is not an insert comes next):
   0, KK_EEXIST or KK_ESTORE. */
int pgw_flush(struct store *s);
/* pg_sms.c */
int pg_sms_submitted(struct store *s, struct store_op *op);
int pg_sms_failed(struct store *s, struct store_op *op);
int pg_sms_expired(struct store *s, struct store_op *op);
int pg_sms_retry(struct store *s, struct store_op *op);
int pg_receipt(struct store *s, struct store_op *op);
int pg_inbound(struct store *s, struct store_op *op);
/* pg_outbox.c */
int pg_outbox_result(struct store *s, struct store_op *op);
int pg_outbox_defer(struct store *s, struct store_op *op);
int pg_outbox_trim(struct store *s, struct store_op *op);
/* pg_chan.c */
int pg_chan_trying(struct store *s, struct store_op *op);
int pg_chan_status(struct store *s, struct store_op *op);
int pg_wa_inbound(struct store *s, struct store_op *op);
int pg_early_expire(struct store *s, struct store_op *op);
/* pg_cascade.c */
int pg_chan_result(struct store *s, struct store_op *op);
int pg_step_timeout(struct store *s, struct store_op *op);

/* pg_chan.c: the writer's hooks (struct store_backend): the rows the
   batch's notes hand out and the periodic expiry of early rows (before the
   commit), forgetting early counts (a rollback), the counters (publish),
   and what the state owns (close). */
void pgw_before_commit(struct store *s, double mono_ms);
void pgw_undone(struct store *s);
void pgw_publish(struct store *s);
void pgw_close(struct store *s);
/* Whether the scope key may hold one more early row (and counts it). */
int pgw_early_admit(struct store *s, const char *key);
void pgw_early_forget(struct store *s);

/* pg_cascade.c, on the writer thread, in the batch's transaction */
struct casc_att;
/* Reads an attempt from the columns of PGW_ATT_COLS, found from column col. */
void pgc_att_cols(const PGresult *r, int row, int col, struct casc_att *a);
/* Reads attempt id (0, KK_ENOENT, KK_ESTORE). */
int pgc_att_load(struct store *s, int64_t id, struct casc_att *a);
/* An attempt's status changed: the cascade's rules decide what follows
   (as casc_attempt_event of the SQLite backend); the message's row is
   locked first, so that nodes change one message one at a time. */
int pgc_attempt_event(struct store *s, int64_t attempt_id, const struct casc_att *pre,
                      const char *status, const char *provider_id, const char *error,
                      int64_t at, int units);
/* The price of one unit on channel for account (0 if none). */
int64_t pgc_price(struct store *s, int64_t account_id, const char *channel);
/* What a new message's row holds once its first usable step has started. */
struct pgc_first {
  int step;
  int64_t attempt_id, due_at, wait_until;   /* 0: NULL */
  int done;
  int64_t cost;
  char status[16];
  char channel[20];
};
/* Starts the first usable step of message n (n->id set), whose row the
   caller inserts next; sets n->attempt_id and n->first_channel. */
int pgc_start(struct store *s, struct store_msg_new *n, struct pgc_first *f);
/* ---- the reads of messages and of due work (struct store_reads) ---------- */

/* pg_read.c: in the pool, through rd (a struct pg_conn of the thread's) */
int pg_msg_get(struct store *s, void *rd, int64_t account_id, const char *public_id,
               struct store_msg_view *out);
int pg_msg_list(struct store *s, void *rd, int64_t account_id, const struct store_msg_filter *f,
                struct store_msg_view *out, int *n, int64_t *next_cursor);
int pg_campaign_report(struct store *s, void *rd, int64_t account_id, const char *campaign,
                       store_campaign_group_fn fn, void *arg,
                       struct store_campaign_totals *out);
int pg_reply_list(struct store *s, void *rd, int64_t account_id,
                  const struct store_reply_filter *f, struct store_reply_view *out, int *n,
                  int64_t *next_cursor);
/* pg_due.c: on the loop thread, through r */
int pg_sms_due(struct store *s, int64_t after_id, struct store_due *out, int max, int *n);
int pg_chan_due(struct store *s, int64_t now, int64_t *cursor_due, int64_t *cursor_id,
                struct store_chan_due *out, int max, int *n);
int pg_wait_due(struct store *s, int64_t now, struct store_wait_due *out, int max, int *n);
int64_t pg_wait_next(struct store *s);
int pg_wa_last_inbound(struct store *s, int64_t scope, const char *phone, int64_t *at);
int pg_outbox_accounts(struct store *s, int64_t now, int64_t after, int64_t *out, int max,
                       int *n);
int pg_outbox_due(struct store *s, int64_t account_id, int64_t now, struct store_outbox *out,
                  int max, int *n);
/* pg_contact.c: contacts, lists and imports (store_contact.h) */
int pg_contact_write(struct store *s, struct store_op *op);
int pg_contact_delete(struct store *s, struct store_op *op);
int pg_import_change(struct store *s, struct store_op *op);
int pg_contact_get(struct store *s, void *rd, int64_t account_id, const char *phone,
                   struct store_contact *out);
int pg_contact_list(struct store *s, void *rd, int64_t account_id,
                    const struct store_contact_filter *f, struct store_contact *out, int *n,
                    char next[16]);
int pg_contact_lists(struct store *s, void *rd, int64_t account_id, store_list_size_fn fn,
                     void *arg);
int pg_import_get(struct store *s, void *rd, int64_t account_id, int64_t id,
                  struct store_import *out);
int pg_import_errors(struct store *s, void *rd, int64_t account_id, int64_t id,
                     store_import_error_fn fn, void *arg);
int pg_contacts_each(struct store *s, void *rd, int64_t account_id, const char *list,
                     const struct cf_node *cond, store_contact_fn fn, void *arg);
int pg_segment_put(struct store *s, struct store_op *op);
int pg_segment_delete(struct store *s, struct store_op *op);
int pg_segment_get(struct store *s, void *rd, int64_t account_id, const char *name,
                   struct store_segment *out);
int pg_segments(struct store *s, void *rd, int64_t account_id, store_segment_fn fn, void *arg);
int pg_contact_count(struct store *s, void *rd, int64_t account_id, const struct cf_node *cond,
                     int64_t *out);

#endif
