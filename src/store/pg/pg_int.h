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
#include <pthread.h>
#include <stdint.h>

#include "store/store_int.h"
#include "store/pg/pg_money.h"

#define PG_ID_BLOCK 1000          /* ids a store takes from a sequence at a time */
#define PG_LOCK_MS 1000           /* longest wait for a row lock (lock_timeout) */
/* The writer's batch: its first tries wait PG_LOCK_SHORT_MS for a row lock
   another node's writer holds, the later ones PG_LOCK_LONG_MS (a batch that
   met a lock is run again whole: store_writer.c). */
#define PG_LOCK_SHORT_MS 200
#define PG_LOCK_LONG_MS 2000
#define PG_LOCK_SHORT_TRIES 3
#define PG_HEARTBEAT_MS 1000.0    /* how often the writer renews its node's lease */
#define PG_IDLE_MS 500            /* an idle writer's empty commit (the beat, other
                                     nodes' configuration changes) */
#define PG_LEASE_MS 10000         /* a node's lease unless the setting node_lease says */
#define PG_PEERS_MAX 64
#define PG_PEER_PAYLOAD 7900      /* bytes of a NOTIFY payload at most (the server's
                                     limit is 8000) */
#define PG_MAX_PARAMS 32
/* The listener's own entry among the notifications it keeps for the writer
   (no channel of the server's): its connection was made again, and what
   the other nodes sent meanwhile is lost (pg_node.c). */
#define PG_CATCH_UP " catch up"

/* The server's clock in milliseconds since the Unix epoch (leases compare
   with it, so that nodes whose clocks differ agree on when one ends). */
#define PG_NOW_MS "(EXTRACT(EPOCH FROM clock_timestamp())*1000)::bigint"

/* A row of due work is free for node $N (named by the placeholder n) when
   no node holds it, this node does, or its holder's lease has ended
   (pg_node.c): a live node keeps its rows as long as it beats. */
#define PG_FREE_FOR(by, n)                                                      \
  "(" by " IS NULL OR " by "=" n "::bigint OR " by " NOT IN (SELECT id FROM nodes" \
  " WHERE lease_until>" PG_NOW_MS "))"
/* A statement the writer's connection keeps prepared (pg_pipe.c). */
struct pg_stmt {
  char *sql;                /* owned */
  unsigned hash;
  int ok;                   /* its preparation was answered */
  char name[16];
};

/* A connection and what its last failure was. */
struct pg_conn {
  PGconn *db;
  int fault;                /* STORE_FAULT_* of the last failed statement */
  char sqlstate[6];         /* its SQLSTATE ("" when the connection itself failed) */
  int conflict;             /* a statement met another transaction's lock (deadlock,
                               lock_timeout, serialization) since fault_clear */
  int lock_ms;              /* the writer transaction's lock_timeout (0: the session's) */
  /* the session a reconnect sets up again (pg_conn_session) */
  char node[24];            /* "" or the node whose rows this connection writes */
  int listen;               /* 1: it hears the nodes' configuration changes */
  int resets;               /* times the connection was made again (pg_conn_ensure) */
  /* the writer's pipeline (pg_pipe.c), while a batch's transaction is open */
  int pipe;                 /* in pipeline mode */
  int wait;                 /* left for a savepoint's operation (pg_pipe_wait) */
  int queued;               /* statements sent whose answers are not read yet */
  int perr;                 /* the pipeline's first failure (KK_EEXIST, KK_ESTORE), or 0 */
  struct pg_stmt *stmts;    /* owned: prepared on the server session stmt_pid */
  int nstmts, stmt_seq, stmt_pid;
};

/* ---- the writer's state for messages, SMS, channels and cascades ---------- */

/* Early statuses and receipts: how long they are kept, how many the expiry
   deletes per table and run, and how often the writer runs it (as SQLite). */
#define PGW_EARLY_KEEP_MS (24LL * 3600 * 1000)
#define PGW_EARLY_EXPIRE_BATCH 1000
#define PGW_EARLY_EXPIRE_EVERY_MS 1000.0
/* Held rows looked at again: at most this many remembered (the oldest
   forgotten first), looked at 1 s and 5 s after the hold, at most
   PGW_RECHECK_BATCH of them per batch. */
#define PGW_RECHECK_MAX 4096
#define PGW_RECHECK_BATCH 64

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
  /* Rows this node held early lately, looked at again a little later: a
     part or send another node stored in a batch that crossed the hold
     (neither saw the other's uncommitted row) is matched then. */
  struct pgw_recheck {
    char kind;                  /* 'r' receipt (a = route), 's' status (a = channel) */
    char a[72], pid[72];
    int64_t scope;
    double due;                 /* monotonic ms of the next look */
    int tries;
  } *recheck;                   /* owned: a ring of PGW_RECHECK_MAX */
  int rc_head, rc_n;
  uint64_t early_rechecked;     /* held rows matched by a later look */
  struct pgw_ahead *ahead;  /* pg_sms.c: the rows of a run of SMS results or
                               receipts, read for them all at once; owned */
  int defer_updates;        /* pg_sms.c: defer also holds statuses and ends */
  struct pgw_ids { int64_t *id; int n, cap; } pend[2];   /* owned: the rows of
                               PGW_T_ATT_SET and PGW_T_MSG_FIN that wait */
  /* pg_cascade.c: the channel settings' scopes ('s') and prices ('p') the
     transaction has read (no operation of it changed them since) */
  struct pgw_keyed { int64_t account, v; char channel[20]; char kind; } keyed[16];
  int nkeyed;
  struct pgc_run *crun;     /* pg_cascade.c: a run of cascade operations and
                               the messages it locked for them; owned */
  struct pgw_ids later;     /* owned: messages whose operations this batch
                               handed back (pg_cascade.c) */
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
  /* writer: the node's lease and the other nodes alive at its last beat
     (pg_node.c) */
  int64_t lease_ms;
  char node_name[128];
  int64_t peers[PG_PEERS_MAX];
  int npeers;
  uint64_t beats, taken_over;
  int sweep_more;           /* the last takeover left rows for the next beat */
  /* the heartbeat thread and its connection (pg_node.c) */
  struct pg_conn hb;
  pthread_t hb_thread;
  pthread_mutex_t hb_mu;
  pthread_cond_t hb_cv;
  int hb_stop, hb_started;  /* guarded by hb_mu */
  /* the other nodes' notifications the heartbeat's connection heard, for
     the writer (guarded by hb_mu); the writer's backend, whose own are
     not news; whether the writer runs (the listener may wake it) */
  struct pg_heard *inbox;   /* owned */
  int ninbox, capinbox;
  int hb_resets_seen;       /* heartbeat thread: hb.resets when it last looked */
  /* writer: every route, channel setting, price, named cascade and
     template this node's caches may hold (pg_node.c), so that reading the
     configuration over drops what is gone; owned */
  struct pgn_seen_set {
    struct pgn_seen { int kind; int64_t account_id; char *name; } *v;
    size_t cap, n;
  } seen;
  _Atomic int writer_pid, writer_up;
  /* the node's other writers (store_opts.writers): their server processes,
     whose notifications are not news either; this one's number among them */
  _Atomic int lane_pids[STORE_WRITERS_MAX];
  int nlanes_opened, lane_no;
  char *url;                /* owned: the pool threads' readers connect to it */
  struct pgw_state ws;      /* writer: messages, SMS, channels and cascades */
  struct store_cascade_stats cstats_begin;   /* writer: ws.cstats at the batch's BEGIN */
  /* writer: the other nodes' notifications heard and not yet committed
     with a batch (pg_node.c): applied with each batch until one commits */
  struct pg_heard { char *channel, *payload; } *heard;   /* owned */
  int nheard, capheard, napplied;
};

#define PG(s) ((struct pg_store *)(s))

#define PG_INT_CHARS 24   /* an int64_t in decimal, its sign and NUL */

/* The parameters of one statement (values copied where they are numbers;
   text and bytes are borrowed until the statement has run). */
struct pg_params {
  int n;
  const char *v[PG_MAX_PARAMS];
  int len[PG_MAX_PARAMS];
  int fmt[PG_MAX_PARAMS];   /* 0 text, 1 binary */
  char num[PG_MAX_PARAMS][PG_INT_CHARS];
};

void pg_p_text(struct pg_params *p, const char *s);       /* NULL: SQL NULL */
void pg_p_int(struct pg_params *p, int64_t v);
void pg_p_opt(struct pg_params *p, int64_t v);            /* 0: SQL NULL */
void pg_p_bytes(struct pg_params *p, const void *b, int n);

/* pg_schema.c: the connection ------------------------------------------- */

/* The schema version this kaskad migrates to (its number of migrations). */
int pg_schema_latest(void);

/* Opens a connection to url with kaskad's session settings (synchronous
   commit on, lock_timeout PG_LOCK_MS); the same settings come back on a
   reconnect. 0 or KK_ESTORE (logged; c->db may be left for pg_conn_close). */
int pg_conn_open(struct pg_conn *c, const char *url);
void pg_conn_close(struct pg_conn *c);
/* Reconnects a connection that was lost: 0 when it is usable. */
int pg_conn_ensure(struct pg_conn *c);
/* Sets up what c->node and c->listen ask of the session. 0 or KK_ESTORE. */
int pg_conn_session(struct pg_conn *c);
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

/* The STORE_FAULT_* of a failure with SQLSTATE state (NULL: none) on db. */
int pg_fault_of(const char *state, PGconn *db);
/* 1 when SQLSTATE state is a lock conflict between transactions (40001
   serialization, 40P01 deadlock, 55P03 lock_timeout). */
int pg_lock_conflict(const char *state);

/* pg_pipe.c: the writer's pipeline. While it is on, pg_cmd sends and
   returns at once (0, or the pipeline's failure so far) and pg_query reads
   every answer due, its own last. */
/* Enters pipeline mode on c, in a transaction just begun: 0 or KK_ESTORE. */
int pg_pipe_begin(struct pg_conn *c);
/* on: what was sent ahead is read and the pipeline left, so that each
   statement waits for its answer and a failure is the current operation's
   own (its savepoint); off: the pipeline again. 0, or the pipeline's first
   failure. */
int pg_pipe_wait(struct pg_conn *c, int on);
int pg_pipe_send(struct pg_conn *c, const char *sql, const struct pg_params *p);
PGresult *pg_pipe_query(struct pg_conn *c, const char *sql, const struct pg_params *p, int *rc);
/* Commits and leaves pipeline mode: 0 once the COMMIT is durable, else
   KK_ESTORE (or KK_EEXIST) with c->fault set. */
int pg_pipe_commit(struct pg_conn *c);
/* Leaves pipeline mode without committing (answers due are dropped). */
void pg_pipe_abandon(struct pg_conn *c);
/* Frees what the connection's pipeline keeps (pg_conn_close). */
void pg_pipe_free(struct pg_conn *c);

/* Column helpers over a text result. */
int64_t pg_int(const PGresult *r, int row, int col);      /* NULL: 0 */
/* Copies a text column into out (valid UTF-8, cut to cap). */
void pg_copy(const PGresult *r, int row, int col, char *out, size_t cap);
/* The column, or NULL when it is NULL. */
const char *pg_text(const PGresult *r, int row, int col);

/* ---- the backend's writes (struct store_backend.exec) and reads -------- */

/* pg_node.c: the node's row, its lease, taking over the work of dead
   nodes and the configuration changes between nodes */
int pgn_open(struct pg_store *q, const struct store_opts *opts);
void pgn_close(struct pg_store *q);
/* Stops the heartbeat (before close; open_failed too). */
void pgn_stop(struct pg_store *q);
/* Writer, before each commit (an idle one too). */
void pgn_before_commit(struct store *s);
/* Writer, at each batch's BEGIN: what the last commit applied of the other
   nodes' notifications is done with. */
void pgn_begin(struct pg_store *q);
/* Writer, after a rollback: what the batch applied is applied again with
   the next one. */
void pgn_undone(struct pg_store *q);
/* pg_peer.c: the policy's state between nodes (kaskad_pol). Sends the
   batch's notes [0, n) that other nodes apply: 0 or KK_ESTORE. */
int pgp_send(struct store *s, int n);
/* Another node's payload: its notes, marked remote. */
void pgp_apply(struct store *s, const char *payload);
int pg_nodes(struct store *s, void *rd, struct store_node *out, int max, int *n);

/* pg_account.c */
/* Account id through c: 0, KK_ENOENT or KK_ESTORE. */
int pg_account_read(struct pg_conn *c, int64_t id, struct store_account *out);
int pg_account_create(struct store *s, struct store_op *op);
int pg_account_update(struct store *s, struct store_op *op);
int pg_key_add(struct store *s, struct store_op *op);
int pg_key_revoke(struct store *s, struct store_op *op);
int pg_accounts_each(struct store *s, void (*fn)(void *arg, const struct store_account *a),
                     void *arg);
int pg_keys_each(struct store *s,
                 void (*fn)(void *arg, const uint8_t hash[32], int64_t account_id), void *arg);
/* Writer: every account, and every key (added or revoked), as a note of
   the row as it is now: 0 or KK_ESTORE. */
int pg_accounts_note_all(struct store *s);
int pg_keys_note_all(struct store *s);
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
/* v in decimal into out, NUL-terminated; returns its length. */
int pg_fmt_int(char out[PG_INT_CHARS], int64_t v);
void pg_rows_int(struct pg_rows *r, int col, int64_t v);
void pg_rows_opt(struct pg_rows *r, int col, int64_t v);
void pg_rows_text(struct pg_rows *r, int col, const char *s);
void pg_rows_end(struct pg_rows *r);
/* Runs sql with columns 0..ncols-1 as $1..$ncols (as pg_query) and
   forgets the rows. */
PGresult *pg_rows_run(struct pg_conn *c, struct pg_rows *r, const char *sql, int ncols, int *rc);
/* As pg_rows_run for a statement whose rows nobody reads (as pg_cmd: in
   the writer's pipeline it goes without waiting for its answer). */
int pg_rows_cmd(struct pg_conn *c, struct pg_rows *r, const char *sql, int ncols);
void pg_rows_clear(struct pg_rows *r);
void pg_rows_free(struct pg_rows *r);

/* An attempt's provider id: an SMS attempt's is in sms_provider_id since
   migration 20, unless it was stored before. */
#define PG_ATT_PROVIDER_ID "COALESCE(provider_id,sms_provider_id)"

/* pg_msg.c */
int pg_msg_insert(struct store *s, struct store_op *op);
int pg_msg_cancel(struct store *s, struct store_op *op);
/* pg_sql.c */
int pg_sql(struct store *s, void *rd, const char *sql, const struct store_sql_arg *a, int n,
           store_sql_row_fn fn, void *arg);
/* The start of campaign_counts_keep() (PG_CAMP_COUNTS_MIGRATION, then
   PG_CAMP_DELTAS_MIGRATION): an UPDATE of a message that changes none of
   the columns counted changes no figure. */
#define PG_CAMP_KEEP_SAME                                                      \
  " IF TG_OP='UPDATE' THEN"                                                    \
  "  IF OLD.status IS NOT DISTINCT FROM NEW.status"                            \
  "   AND OLD.channel IS NOT DISTINCT FROM NEW.channel"                        \
  "   AND OLD.cost IS NOT DISTINCT FROM NEW.cost"                              \
  "   AND OLD.sms_only_cost IS NOT DISTINCT FROM NEW.sms_only_cost"            \
  "   AND OLD.delivered_twice IS NOT DISTINCT FROM NEW.delivered_twice THEN"   \
  "   RETURN NULL; END IF;"
/* A change of a campaign's figures as a row of its own (sign 1 or -1 for
   message R): the triggers of PG_CAMP_DELTAS_MIGRATION. */
#define PG_CAMP_DELTA(R, SIGN)                                                 \
  "INSERT INTO campaign_count_deltas VALUES(" R ".account_id," R ".campaign,"  \
  "COALESCE(" R ".variant,-1),COALESCE(" R ".channel,'')," R ".status," SIGN "," \
  SIGN "*COALESCE(" R ".cost,0)," SIGN "*COALESCE(" R ".sms_only_cost,0),"     \
  SIGN "*COALESCE(" R ".delivered_twice,0),"                                   \
  SIGN "*CASE WHEN COALESCE(" R ".delivered_twice,0)>0 THEN 1 ELSE 0 END);"
/* Migration 18: the triggers no longer update the shared counter rows of
   campaign_counts in each writer's transaction (nodes moving one
   campaign's messages waited on each other there, and deadlocked): they
   insert rows of changes into campaign_count_deltas, which lock nothing
   shared. Reads sum both (the view campaign_figures); a node's heartbeat
   folds the changes into campaign_counts about every second
   (PG_CAMP_FOLD), one node at a time. */
#define PG_CAMP_DELTAS_MIGRATION                                               \
  ("CREATE TABLE campaign_count_deltas(LIKE campaign_counts);"               \
   "CREATE INDEX campaign_count_deltas_campaign"                               \
   " ON campaign_count_deltas(account_id, campaign);"                          \
   "CREATE VIEW campaign_figures AS SELECT * FROM campaign_counts"             \
   " UNION ALL SELECT * FROM campaign_count_deltas;"                           \
   "CREATE OR REPLACE FUNCTION campaign_counts_keep() RETURNS trigger AS $$ BEGIN"\
   PG_CAMP_KEEP_SAME " " PG_CAMP_DELTA("OLD", "-1")                            \
   " END IF; " PG_CAMP_DELTA("NEW", "1") " RETURN NULL; END $$ LANGUAGE plpgsql;"\
   "CREATE OR REPLACE FUNCTION campaign_counts_stop() RETURNS trigger AS $$ BEGIN"\
   " INSERT INTO campaign_count_deltas SELECT account_id,campaign,"            \
   " COALESCE(variant,-1),COALESCE(NEW.channel,channel,''),'opted_out',1,0,0,0,0"\
   " FROM (SELECT account_id,campaign,variant,channel FROM messages"           \
   " WHERE to_number=NEW.phone AND account_id=NEW.account_id"                  \
   " AND created_at>=NEW.created_at-2592000000 ORDER BY id DESC LIMIT 1) m"    \
   " WHERE campaign IS NOT NULL; RETURN NULL; END $$ LANGUAGE plpgsql;"        \
   "CREATE OR REPLACE FUNCTION campaign_counts_rcpt() RETURNS trigger AS $$ BEGIN"\
   " IF TG_OP<>'INSERT' THEN"                                                  \
   "  INSERT INTO campaign_count_deltas VALUES(OLD.account_id,OLD.campaign,"   \
   "  OLD.variant,'','r:'||OLD.status,-1,0,0,0,0);"                            \
   " END IF; IF TG_OP<>'DELETE' THEN"                                          \
   "  INSERT INTO campaign_count_deltas VALUES(NEW.account_id,NEW.campaign,"   \
   "  NEW.variant,'','r:'||NEW.status,1,0,0,0,0);"                             \
   " END IF; RETURN NULL; END $$ LANGUAGE plpgsql;")
/* Folds the rows of changes into the counters: one statement (so a read
   sees them either side, never both), by one node at a time (the others
   skip: the advisory lock), the counters' rows updated in key order. */
#define PG_CAMP_FOLD                                                           \
  "WITH l AS (SELECT pg_try_advisory_xact_lock(7310451) AS got),"              \
  " d AS (DELETE FROM campaign_count_deltas WHERE (SELECT got FROM l)"         \
  " RETURNING *)"                                                              \
  " INSERT INTO campaign_counts SELECT account_id,campaign,variant,channel,"   \
  "status,SUM(n),SUM(cost),SUM(sms_only_cost),SUM(twice),SUM(twice_msgs)"      \
  " FROM d GROUP BY account_id,campaign,variant,channel,status"                \
  " ORDER BY account_id,campaign,variant,channel,status"                       \
  " ON CONFLICT(account_id,campaign,variant,channel,status) DO UPDATE SET"     \
  " n=campaign_counts.n+excluded.n,cost=campaign_counts.cost+excluded.cost,"   \
  "sms_only_cost=campaign_counts.sms_only_cost+excluded.sms_only_cost,"        \
  "twice=campaign_counts.twice+excluded.twice,"                                \
  "twice_msgs=campaign_counts.twice_msgs+excluded.twice_msgs"
/* Campaigns (store_campaign.c), as SQLite's SQ_CAMPAIGN_MIGRATION. */
#define PG_CAMPAIGN_MIGRATION                                                  \
  ("CREATE TABLE campaigns("                                                   \
   " account_id BIGINT NOT NULL, name TEXT NOT NULL, spec TEXT NOT NULL,"      \
   " status TEXT NOT NULL, recipients BIGINT NOT NULL DEFAULT 0,"              \
   " created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL,"                  \
   " started_at BIGINT, finish_at BIGINT, lease_by TEXT, lease_until BIGINT,"  \
   " PRIMARY KEY(account_id, name));"                                          \
   "CREATE INDEX campaigns_status ON campaigns(status);"                       \
   "CREATE TABLE campaign_recipients("                                         \
   " account_id BIGINT NOT NULL, campaign TEXT NOT NULL, seq BIGINT NOT NULL," \
   " phone TEXT NOT NULL, variant INT NOT NULL, planned_at BIGINT NOT NULL,"   \
   " vars TEXT, status TEXT NOT NULL, message TEXT, reason TEXT,"              \
   " PRIMARY KEY(account_id, campaign, seq));"                                 \
   "CREATE INDEX campaign_recipients_due ON campaign_recipients"               \
   "(account_id, campaign, status, planned_at);")
/* A campaign's figures kept as it goes (SQLite's SQ_CAMP_COUNTS_MIGRATION),
   by triggers in the transaction of each change (recipients added: by the
   write that adds them, store_campaign.c). */
#define PG_CAMP_COUNT_ADD(R)                                                   \
  "INSERT INTO campaign_counts VALUES(" R ".account_id," R ".campaign,"        \
  "COALESCE(" R ".variant,-1),COALESCE(" R ".channel,'')," R ".status,1,"      \
  "COALESCE(" R ".cost,0),COALESCE(" R ".sms_only_cost,0),"                    \
  "COALESCE(" R ".delivered_twice,0),"                                         \
  "CASE WHEN COALESCE(" R ".delivered_twice,0)>0 THEN 1 ELSE 0 END)"           \
  " ON CONFLICT(account_id,campaign,variant,channel,status) DO UPDATE SET"     \
  " n=campaign_counts.n+1,cost=campaign_counts.cost+excluded.cost,"            \
  "sms_only_cost=campaign_counts.sms_only_cost+excluded.sms_only_cost,"        \
  "twice=campaign_counts.twice+excluded.twice,"                                \
  "twice_msgs=campaign_counts.twice_msgs+excluded.twice_msgs;"
#define PG_CAMP_COUNTS_MIGRATION                                               \
  ("ALTER TABLE messages ADD COLUMN variant INT;"                              \
   "ALTER TABLE campaign_recipients ADD COLUMN tries INT NOT NULL DEFAULT 0;"  \
   "CREATE TABLE campaign_counts("                                             \
   " account_id BIGINT NOT NULL, campaign TEXT NOT NULL,"                      \
   " variant INT NOT NULL, channel TEXT NOT NULL, status TEXT NOT NULL,"       \
   " n BIGINT NOT NULL, cost BIGINT NOT NULL, sms_only_cost BIGINT NOT NULL,"  \
   " twice BIGINT NOT NULL, twice_msgs BIGINT NOT NULL,"                       \
   " PRIMARY KEY(account_id, campaign, variant, channel, status));"            \
   "INSERT INTO campaign_counts SELECT account_id,campaign,-1,"                \
   "COALESCE(channel,''),status,COUNT(*),COALESCE(SUM(cost),0),"               \
   "COALESCE(SUM(sms_only_cost),0),COALESCE(SUM(delivered_twice),0),"          \
   "COUNT(*) FILTER (WHERE delivered_twice>0) FROM messages"                   \
   " WHERE campaign IS NOT NULL"                                               \
   " GROUP BY account_id,campaign,COALESCE(channel,''),status;"                \
   "INSERT INTO campaign_counts SELECT account_id,campaign,variant,'',"        \
   "'r:'||status,COUNT(*),0,0,0,0 FROM campaign_recipients"                    \
   " GROUP BY account_id,campaign,variant,status;"                             \
   "CREATE FUNCTION campaign_counts_keep() RETURNS trigger AS $$ BEGIN"        \
   PG_CAMP_KEEP_SAME                                                           \
   "  UPDATE campaign_counts SET n=n-1,cost=cost-COALESCE(OLD.cost,0),"        \
   "  sms_only_cost=sms_only_cost-COALESCE(OLD.sms_only_cost,0),"              \
   "  twice=twice-COALESCE(OLD.delivered_twice,0),"                            \
   "  twice_msgs=twice_msgs-CASE WHEN COALESCE(OLD.delivered_twice,0)>0"       \
   "  THEN 1 ELSE 0 END WHERE account_id=OLD.account_id"                       \
   "  AND campaign=OLD.campaign AND variant=COALESCE(OLD.variant,-1)"          \
   "  AND channel=COALESCE(OLD.channel,'') AND status=OLD.status;"             \
   " END IF; " PG_CAMP_COUNT_ADD("NEW") " RETURN NULL; END $$ LANGUAGE plpgsql;"\
   "CREATE TRIGGER campaign_counts_new AFTER INSERT ON messages FOR EACH ROW"  \
   " WHEN (NEW.campaign IS NOT NULL) EXECUTE FUNCTION campaign_counts_keep();" \
   "CREATE TRIGGER campaign_counts_change AFTER UPDATE OF status,channel,cost," \
   "sms_only_cost,delivered_twice ON messages FOR EACH ROW"                    \
   " WHEN (NEW.campaign IS NOT NULL) EXECUTE FUNCTION campaign_counts_keep();" \
   "CREATE FUNCTION campaign_counts_stop() RETURNS trigger AS $$ BEGIN"        \
   " INSERT INTO campaign_counts SELECT account_id,campaign,"                  \
   " COALESCE(variant,-1),COALESCE(NEW.channel,channel,''),'opted_out',1,0,0,0,0"\
   " FROM (SELECT account_id,campaign,variant,channel FROM messages"           \
   " WHERE to_number=NEW.phone AND account_id=NEW.account_id"                  \
   " AND created_at>=NEW.created_at-2592000000 ORDER BY id DESC LIMIT 1) m"    \
   " WHERE campaign IS NOT NULL"                                               \
   " ON CONFLICT(account_id,campaign,variant,channel,status) DO UPDATE SET"    \
   " n=campaign_counts.n+1; RETURN NULL; END $$ LANGUAGE plpgsql;"             \
   "CREATE TRIGGER campaign_counts_stop AFTER INSERT ON stoplist FOR EACH ROW" \
   " EXECUTE FUNCTION campaign_counts_stop();"                                 \
   "CREATE FUNCTION campaign_counts_rcpt() RETURNS trigger AS $$ BEGIN"        \
   " IF TG_OP<>'INSERT' THEN"                                                  \
   "  UPDATE campaign_counts SET n=n-1 WHERE account_id=OLD.account_id"        \
   "  AND campaign=OLD.campaign AND variant=OLD.variant AND channel=''"        \
   "  AND status='r:'||OLD.status;"                                            \
   " END IF; IF TG_OP<>'DELETE' THEN"                                          \
   "  INSERT INTO campaign_counts VALUES(NEW.account_id,NEW.campaign,"         \
   "  NEW.variant,'','r:'||NEW.status,1,0,0,0,0)"                              \
   "  ON CONFLICT(account_id,campaign,variant,channel,status) DO UPDATE SET"   \
   "  n=campaign_counts.n+1;"                                                  \
   " END IF; RETURN NULL; END $$ LANGUAGE plpgsql;"                            \
   "CREATE TRIGGER campaign_counts_rcpt AFTER DELETE"                          \
   " ON campaign_recipients FOR EACH ROW EXECUTE FUNCTION campaign_counts_rcpt();"\
   "CREATE TRIGGER campaign_counts_rcpt_change AFTER UPDATE OF status"         \
   " ON campaign_recipients FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status)"\
   " EXECUTE FUNCTION campaign_counts_rcpt();")
/* While a batch of new messages is inserted, the attempts, events and
   outbox rows their first steps add wait to be written together (before
   the messages' rows): table's rows, or NULL when rows are written at once. */
enum pgw_table {
  PGW_T_ATTEMPTS, PGW_T_EVENTS, PGW_T_OUTBOX,
  /* while a run of SMS operations writes (pg_sms.c, ws.defer_updates):
     attempts' statuses (CFSM_FX_ATT_SET) and messages' ends
     (CFSM_FX_MSG_FIN), at most one of each row until the next flush */
  PGW_T_ATT_SET, PGW_T_MSG_FIN,
  PGW_T_PARTS,              /* SMS parts a run of submit_sm_resp results stores */
  PGW_T_COUNT
};
struct pg_rows *pgw_deferred(struct store *s, enum pgw_table table);
/* Whether row id of table (PGW_T_ATT_SET, PGW_T_MSG_FIN) waits; else
   remembers that it will. */
int pgw_pending(struct store *s, enum pgw_table table, int64_t id);
/* Sends the rows that wait, one statement per table, without waiting for
   the answers (a write that is not an insert comes next): 0, or the
   pipeline's failure so far (what fails, fails the next read or the
   COMMIT). */
int pgw_flush(struct store *s);
/* pg_sms.c */
int pg_sms_submitted(struct store *s, struct store_op *op);
int pg_sms_failed(struct store *s, struct store_op *op);
int pg_sms_expired(struct store *s, struct store_op *op);
int pg_sms_retry(struct store *s, struct store_op *op);
int pg_msg_decide(struct store *s, struct store_op *op);
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
/* The rows of due work as the claims and the notes hand them out, for
   every read of them: "SELECT " PG_CHAN_COLS " WHERE ..." gives the columns
   pg_chan_row reads at row i (text and extra malloc'd: store_chan_due_free),
   PG_DUE_COLS those pg_due_row reads (text malloc'd). */
#define PG_CHAN_COLS STORE_CHAN_COLS
#define PG_DUE_COLS "m.id,a.id,m.account_id,m.to_number,m.sender,a.route,"        \
                    "m.body,a.parts_sent,m.due_at,m.expires_at,m.class,m.created_at," \
                    "(m.status='scheduled')::int"                               \
                    " FROM messages m"                                          \
                    " JOIN attempts a ON a.id=m.attempt_id AND a.channel='sms'"
void pg_chan_row(const PGresult *r, int i, struct store_chan_due *d);
void pg_due_row(const PGresult *r, int i, struct store_due *d);
/* "{1,2,3}" of ids, an array parameter (malloc'd; the caller frees). */
char *pg_id_array(const int64_t *ids, int n);
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
/* Remembers a row held early (kind 'r': a receipt of route a under pid;
   's': a status of channel a, scope, pid) to be looked at again. */
void pgw_recheck_add(struct store *s, char kind, const char *a, const char *pid, int64_t scope);
/* Looked at again (pg_sms.c, pg_cascade.c): 1 when the held row now has
   its part or send and was applied, 0 when not, else KK_ESTORE. */
int pg_sms_early_recheck(struct store *s, const char *route, const char *pid);
/* Forgets the rows read ahead for SMS operations (a batch begins or ends). */
void pg_sms_ahead_clear(struct store *s);
/* Writes what a run of SMS operations left waiting and forgets its rows:
   0 or KK_ESTORE. */
int pg_sms_ahead_end(struct store *s);
int pgc_early_recheck(struct store *s, const char *channel, int64_t scope, const char *pid);

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
/* pgc_attempt_event with the message m already locked and read (taken:
   m is freed) and the attempt a as read after it. */
struct casc_msg;
int pgc_attempt_event_of(struct store *s, struct casc_msg *m, int64_t attempt_id,
                         const struct casc_att *a, const char *status, const char *provider_id,
                         const char *error, int64_t at, int units);
/* Locks and reads the messages of ids (a column of ids, cleared), in id
   order, into m (at most max; the caller frees each): how many, or
   KK_ESTORE. */
int pgc_msgs_lock(struct store *s, struct pg_rows *ids, struct casc_msg *m, int max);
/* A message's columns as pgc_msg_row() reads them into m (its strings
   malloc'd: casc_msg_free). */
#define PGC_MSG_COLS                                                          \
  "id,account_id,public_id,to_number,status,callback_url,step,attempt_id,"   \
  "done,cascade,(extra IS NOT NULL)::int,route,segments,channel,cost,"       \
  "delivered_twice,expires_at"
void pgc_msg_row(const PGresult *r, int row, struct casc_msg *m);
/* Before a cascade operation (a send's result, a provider's status, a
   step's deadline) runs: the first of a run of them locks the messages of
   the whole run in one statement, skipping those another writer holds.
   0: op may run; STORE_LATER: its message is held elsewhere (or an earlier
   operation of the batch on it was handed back), op must write nothing
   and is handed back; KK_ESTORE. */
int pgc_run_take(struct store *s, struct store_op *op);
/* After the operation pgc_run_take gave: the run ends with its last one.
   Returns rc. */
int pgc_run_done(struct store *s, int rc);
/* pg_run.c: what the running operation of a run reads, as the run read
   it ahead. Message id (by_attempt: the message of attempt id), taken
   (moved into *m), while no operation took it: 1, else 0. */
int pgc_run_msg(struct store *s, int64_t id, int by_attempt, struct casc_msg *m);
/* Attempt id and the attempts of message msg_id (as casc_ops.attempts),
   while nothing of the message taken last is written: 1, else 0. */
int pgc_run_att(struct store *s, int64_t id, struct casc_att *a);
struct cfsm_att;
int pgc_run_attempts(struct store *s, int64_t msg_id, struct cfsm_att *att, int max, int *natt);
/* 1 when the running send's result, of attempt attempt_id, has no status
   held early for it. */
int pgc_run_no_early(struct store *s, int64_t attempt_id);
/* Something is written: the next reads go to the database. */
void pgc_run_dirty(struct store *s);
/* Attempt id is written without its message read first: neither is read
   ahead any more. */
void pgc_run_forget_att(struct store *s, int64_t id);
/* The channel settings and prices the transaction read are read again
   (one of them is written, or a new transaction begins). */
void pgc_keyed_forget(struct store *s);
/* A status was held early: the run's sends' results look for theirs. */
void pgc_run_early_added(struct store *s);
/* Forgets the run (each transaction's end); with batch, the messages
   handed back too (a new batch). */
void pgc_run_clear(struct store *s, int batch);
/* The price of one unit on channel for account (0 if none). */
int64_t pgc_price(struct store *s, int64_t account_id, const char *channel);
/* casc_new (store_casc.h) with this backend's ops and counters. */
struct casc_first;
int pgc_start(struct store *s, struct store_msg_new *n, struct casc_first *f);
/* ---- the reads of messages and of due work (struct store_reads) ---------- */

/* pg_read.c: in the pool, through rd (a struct pg_conn of the thread's) */
int pg_msg_get(struct store *s, void *rd, int64_t account_id, const char *public_id,
               struct store_msg_view *out);
int pg_msg_list(struct store *s, void *rd, int64_t account_id, const struct store_msg_filter *f,
                struct store_msg_view *out, int *n, int64_t *next_cursor);
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
/* pg_optout.c: the stop-list and consents (store_optout.h) */
int pg_stop_write(struct store *s, struct store_op *op);
struct store_contact;
/* In a contact's write: its consent column as a record (store_contact.h). */
int pg_consent_of_contact(struct store *s, int64_t account_id, const struct store_contact *c,
                          int64_t now);
/* The same for rows[idx[0..n-1]] (no phone twice), a few statements for
   all of them; r: the caller's scratch. */
int pg_consent_of_contacts(struct store *s, int64_t account_id, const struct store_contact *rows,
                           const int *idx, int n, int64_t now, struct pg_rows *r);
int pg_consent_write(struct store *s, struct store_op *op);
int pg_stop_all(struct store *s,
                void (*fn)(void *arg, int64_t account_id, const char *phone, const char *reason),
                void *arg);
int pg_consent_all(struct store *s,
                   void (*fn)(void *arg, int64_t account_id, const char *phone,
                              const char *channel),
                   void *arg);
int pg_stop_each(struct store *s, void *rd, int64_t account_id, const char *phone,
                 const char *after, int limit, store_stop_fn fn, void *arg);
int pg_consent_each(struct store *s, void *rd, int64_t account_id, const char *phone,
                    store_consent_fn fn, void *arg);

/* pg_optout.c: inbound numbers and bots (store_optout.h) */
int pg_inbound_set(struct store *s, struct store_op *op);
int pg_unsub_put(struct store *s, struct store_op *op);
int pg_unsub_get(struct store *s, void *rd, const char *code, int64_t *account, char phone[16]);
int pg_inbound_owned(struct store *s, void *rd, int64_t account_id,
                     struct store_inbound_owned *out, int max, int *n);
/* pg_sms.c: whom a person's message belongs to (store_inbound_lookups) */
int pg_in_assigned(struct store *s, const char *kind, const char *address, int64_t *account);
int pg_in_last_to_phone(struct store *s, const char *phone, const char *route, int64_t account,
                        int64_t since, struct store_inbound_hit *hit);
int pg_in_last_to_user(struct store *s, const char *channel, const char *user, int64_t account,
                       int64_t since, struct store_inbound_hit *hit);
int pg_in_contact_of_user(struct store *s, int64_t account, const char *channel,
                          const char *user, char phone[16]);
int pg_in_policy_doc(struct store *s, int64_t account, char **doc);
int pg_in_outbox_add(struct store *s, int64_t account, int64_t msg, const char *url,
                     const char *payload, int64_t at);

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
                     const char *after, int lists, const struct cf_node *cond,
                     store_contact_fn fn, void *arg);
int pg_segment_put(struct store *s, struct store_op *op);
int pg_segment_delete(struct store *s, struct store_op *op);
int pg_segment_get(struct store *s, void *rd, int64_t account_id, const char *name,
                   struct store_segment *out);
int pg_segments(struct store *s, void *rd, int64_t account_id, store_segment_fn fn, void *arg);
/* VACUUM (ANALYZE) of the contacts' tables (outside a transaction). */
int pg_contacts_settle(struct store *s, void *rd);
int pg_contact_count(struct store *s, void *rd, int64_t account_id, const struct cf_node *cond,
                     int64_t *out);

#endif
