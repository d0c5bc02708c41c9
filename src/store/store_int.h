/*
 * store_int.h - what the store's backend-neutral part (the writer, the
 * notes) and its backends share: the queued-operation and store types, the
 * table of functions a backend provides, and the helpers that queue. Not for
 * use outside src/store.
 *
 * The writer (store_writer.c) knows no database: it opens, begins, commits
 * and rolls back through struct store_backend. A backend allocates its own
 * store with struct store as its first member and keeps its connections and
 * caches after it (sqlite/sq_int.h: struct sq_store).
 */
#ifndef STORE_INT_H
#define STORE_INT_H

#include <pthread.h>

#include "store/store.h"
#include "store/store_contact.h"
#include "store/store_optout.h"
#include "store/store_money.h"

/* ---- plain SQL (store_backend.sql) --------------------------------------- */

/* An argument: text (t; NULL: SQL NULL) when is_text, else the number i. */
struct store_sql_arg {
  int is_text;
  const char *t;
  int64_t i;
};
#define SQL_T(x) ((struct store_sql_arg){.is_text = 1, .t = (x)})
#define SQL_I(x) ((struct store_sql_arg){.i = (x)})
typedef int (*store_sql_row_fn)(void *arg, const char *const *cols, int ncols);
/* Runs text with the arguments that follow through s's backend (rd: a
   pool thread's reader; NULL: the writer), each row to fn(arg, ...). */
#define STORE_SQL(s, rd, text, fn, arg, ...)                                      \
  ((s)->be->sql((s), (rd), (text), (const struct store_sql_arg[]){__VA_ARGS__},  \
                (int)(sizeof((const struct store_sql_arg[]){__VA_ARGS__}) /       \
                      sizeof(struct store_sql_arg)),                              \
                (fn), (arg)))
/* store_sql.c: the same for a query that answers one row (or none): fn
   (NULL: none) reads the first row only. 0 when a row came, KK_ENOENT when
   none did, or the backend's error. */
int store_sql_one(struct store *s, void *rd, const char *text, const struct store_sql_arg *a,
                  int n, store_sql_row_fn fn, void *arg);
#define STORE_SQL_ONE(s, rd, text, fn, arg, ...)                                      \
  store_sql_one((s), (rd), (text), (const struct store_sql_arg[]){__VA_ARGS__},      \
                (int)(sizeof((const struct store_sql_arg[]){__VA_ARGS__}) /           \
                      sizeof(struct store_sql_arg)),                                  \
                (fn), (arg))
/* A column as the row functions get it: its number (NULL: 0), its text
   copied into out[cap] (NULL: ""), or a copy of it (malloc'd; NULL: NULL). */
int64_t store_col_num(const char *col);
void store_col_copy(char *out, size_t cap, const char *col);
char *store_col_dup(const char *col);

/* ---- operations -------------------------------------------------------- */

struct store_op;
typedef int (*op_exec_fn)(struct store *s, struct store_op *op);

/* One queued write. Allocated by the queuing function, freed on the loop
   thread after its done callback ran. */
struct store_op {
  struct store_op *next;
  op_exec_fn exec;      /* runs on the writer thread, inside a savepoint */
  store_done_cb done;   /* runs on the loop thread after the commit */
  void *arg;
  int rc;
  int weight;           /* rows this operation touches, for batching */
  int atomic;           /* may fail on its own (constraints): runs in a savepoint */
  void *data;           /* op-specific, freed with free() unless borrowed */
  int borrowed;         /* 1: data belongs to the caller */
  int keep;             /* lost, it would lose or repeat a send: a commit that
                           fails for a lock or an I/O error is tried again
                           (in order) until it succeeds or the store closes */
  int urgent;           /* someone waits for it (a stream message's insert):
                           queued ahead of the others, behind earlier urgent
                           ones, in a batch kept short (store_urgent) */
  double queued_ms;     /* urgent: when it was queued (monotonic), for the wait */
  int64_t tenant;       /* urgent: the account whose request waits (0: none);
                           urgent operations are taken in turns by tenant */
  double turn;          /* urgent: its place in those turns (store_submit) */
  int later;            /* times it was handed back (STORE_LATER) */
  uint64_t lane;        /* 0: the store's first writer; else one of the others
                           (store_submit; store_lane_of_msg): one message's SMS
                           results keep one writer, so they keep their order */
  /* NULL, or frees what data points to (before data itself), when the
     operation is done: exec may run more than once (a batch tried again
     whole after a lock conflict), so it leaves data as it found it */
  void (*data_free)(void *data);
};

/* What exec returns for an operation whose rows another node's writer
   holds now: it has written nothing, and the writer hands it back to a later
   batch (ahead of the queue, in its order) instead of waiting for the lock.
   After STORE_LATER_MAX hand-backs the backend waits for the lock instead. */
#define STORE_LATER 1
#define STORE_LATER_MAX 64

/* Why a commit failed: kept operations are tried again after a lock or an
   I/O error, which pass; another error (a bug, a corrupt file) would fail
   every time. */
enum { STORE_FAULT_NONE, STORE_FAULT_BUSY, STORE_FAULT_IO, STORE_FAULT_OTHER };

/*
 * The writes of the store.h API, by kind. The queuing functions are
 * backend-neutral (store_config.c, store_msg.c, ...): they copy what the
 * caller gives into op->data, say whether the write may fail on its own
 * (store_atomic) or must not be lost (store_keep), and queue it; the
 * backend carries it out with its function for the kind (struct
 * store_backend.exec), on the writer thread inside the batch's transaction,
 * reading op->data as named here.
 */
/* Channels and cascades (queued in store_cascade.c). */
#define STORE_OP_LIST_CASCADE(XX)                                              \
  XX(CHAN_TRYING)       /* struct store_trying_data */                         \
  XX(CHAN_RESULT)       /* struct store_chan_result_data */                    \
  XX(CHAN_STATUS)       /* struct store_chan_status_data */                    \
  XX(STEP_TIMEOUT)      /* struct store_timeout_data */                        \
  XX(WA_INBOUND)        /* struct store_wa_data */                             \
  XX(EARLY_EXPIRE)      /* struct store_early_expire_data */

/* Templates (queued in store_tpl.c). */
#define STORE_OP_LIST_TEMPLATE(XX)                                             \
  XX(TEMPLATE_PUT)      /* struct store_template_data */

#define STORE_OP_LIST(XX)                                                      \
  XX(ACCOUNT_CREATE)    /* struct store_account, the caller's */               \
  XX(ACCOUNT_UPDATE)    /* struct store_account, the caller's */               \
  XX(KEY_ADD)           /* struct store_key_data */                            \
  XX(KEY_REVOKE)        /* struct store_key_revoke, the caller's */            \
  XX(ROUTE_PUT)         /* struct store_route_data */                          \
  XX(SETTING_PUT)       /* struct store_setting_data */                        \
  XX(RETENTION)         /* struct store_retention, the caller's */            \
  /* messages, SMS and callbacks (store_msg.c, store_outbox.c) */              \
  XX(MSG_INSERT)        /* struct store_insert_data */                         \
  XX(MSG_CANCEL)        /* struct store_msg_cancel, the caller's */            \
  XX(SMS_SUBMITTED)     /* struct store_sms_data */                            \
  XX(SMS_FAILED)        /* struct store_sms_data */                            \
  XX(SMS_EXPIRED)       /* struct store_sms_data */                            \
  XX(SMS_RETRY)         /* struct store_sms_data */                            \
  XX(MSG_DECIDE)        /* struct store_decide_data */                         \
  XX(RECEIPT)           /* struct store_receipt_data */                        \
  XX(INBOUND)           /* struct store_inbound_data */                        \
  XX(OUTBOX_RESULT)     /* struct store_outbox_data */                         \
  XX(OUTBOX_DEFER)      /* struct store_outbox_data */                         \
  XX(OUTBOX_TRIM)       /* struct store_outbox_trim, the caller's */           \
  STORE_OP_LIST_CASCADE(XX)                                                    \
  STORE_OP_LIST_TEMPLATE(XX)                                                   \
  /* contacts and imports (store_contact.c) */                                 \
  STORE_OP_LIST_CONTACT(XX)                                                    \
  /* the stop-list and consents (store_optout.c) */                            \
  STORE_OP_LIST_OPTOUT(XX)                                                    \
  /* balances (store_money.c) */                                               \
  STORE_OP_LIST_MONEY(XX)                                                      \
  /* campaigns (store_campaign.c) */                                           \
  XX(CAMPAIGN)          /* struct store_camp_op, the caller's */

enum store_op_kind {
#define XX(kind) STORE_OP_##kind,
  STORE_OP_LIST(XX)
#undef XX
  STORE_OP_COUNT
};

/* ---- what the queued writes carry ------------------------------------------ */

struct store_key_data {
  int64_t account_id;
  uint8_t hash[32];
  char prefix[16];
};

struct store_route_data {
  char *name;               /* owned */
  char *config;             /* owned; NULL: delete */
};

/* The settings kept as (account, key) -> value. */
enum store_setting { STORE_SET_CHANNEL, STORE_SET_PRICE, STORE_SET_CASCADE };
struct store_setting_data {
  enum store_setting what;
  int64_t account_id;       /* 0: the operator's */
  char key[72];             /* channel or cascade name */
  char *value;              /* owned; CHANNEL, CASCADE: NULL deletes */
  int64_t num;              /* PRICE: < 0 deletes */
};

/* ---- what the writes of messages, SMS and callbacks carry ------------------ */

/* MSG_INSERT: n messages, all or none (each msgs[i].rc says how it fared). */
struct store_insert_data {
  struct store_msg_new *msgs;   /* the caller's, alive until done */
  int n;
};

/* SMS_SUBMITTED, SMS_FAILED, SMS_EXPIRED, SMS_RETRY: the caller's update,
   copied; u's strings point into this struct ("" when the caller gave
   none). */
struct store_sms_data {
  struct store_sms_update u;
  char route[64];
  char provider_id[72];
  char error[160];
};

/* RECEIPT: the receipt's fields, copied; the ids in lower case (SMSC ids
   are matched without regard to letter case). r->matched is the answer. */
struct store_receipt_data {
  struct store_receipt *r;      /* the caller's, alive until done */
  char route[64];
  char ids[2][72];              /* "" when absent */
  char state[16];
  char error[128];
};

/* INBOUND: a message from a person, copied (route, to: "" when none). */
struct store_inbound_data {
  char channel[20], route[64], from[32], to[32], user[72];
  int64_t scope, at;
  char text[];                  /* NUL-terminated */
};

/* OUTBOX_RESULT: delivered (the row goes) or tried again at due_at with
   error; OUTBOX_DEFER: the row's due time moves to due_at, no try counted. */
struct store_outbox_data {
  int64_t id;
  int delivered;
  int64_t due_at;
  char error[160];
};

/* ---- what the channel and cascade writes carry (store_cascade.c) ------------ */

/* A due channel attempt's columns, in the SQL both backends speak: each
   backend's row reader (sq_chan.c, pg_chan.c) takes them in this order. */
#define STORE_CHAN_COLS "a.id,a.message_id,m.account_id,a.scope,a.channel,"          \
                        "m.public_id,m.to_number,a.address,m.class,m.body,m.extra,"  \
                        "a.tries,a.due_at,m.expires_at,m.created_at,a.try_at,"       \
                        "w.last_inbound FROM attempts a"                             \
                        " JOIN messages m ON m.id=a.message_id"                      \
                        " LEFT JOIN wa_windows w ON a.channel='whatsapp'"            \
                        " AND w.scope=a.scope AND w.phone=m.to_number"

/* Marks of requests under way: ids[0..n) get try_at `at` (0 clears). */
struct store_trying_data {
  int64_t at;
  int n;
  int64_t ids[];
};

/* A send's outcome; r.provider_id and r.error point into the struct. */
struct store_chan_result_data {
  struct store_chan_result r;
  char provider_id[72];
  char error[160];
};

/* A provider's status: the strings copied, st the caller's (its at clamped,
   matched written back), alive until done. */
struct store_chan_status_data {
  struct store_chan_status *st;
  char channel[20], provider_id[72], peer[32], status[12], error[128];
};

/* The deadline of step `step` of msg_id, passed at `at`. */
struct store_timeout_data {
  int64_t msg_id;
  int step;
  int64_t at;
};

/* A WhatsApp message from phone to scope's number at `at`. */
struct store_wa_data {
  int64_t scope;
  char phone[24];
  int64_t at;
};

/* An expiry run of early statuses and receipts reported before now - 24 h. */
struct store_early_expire_data {
  int64_t now;
};

/* ---- what the template writes carry (store_tpl.c) -------------------------- */

/* TEMPLATE_PUT: account_id's template name saved (body) or deleted (NULL)
   at `at`; the backend notes STORE_NOTE_TEMPLATE_CFG (at: `at`). */
struct store_template_data {
  int64_t account_id;
  int64_t at;
  char name[72];
  char *body;               /* owned; NULL: delete */
};

/* ---- what a backend reads -------------------------------------------------- */

/*
 * The reads of the store.h API that a backend answers, on the calling
 * thread through a connection of that thread's (store.h says which thread
 * may call each). Their arguments and results are those of the store.h
 * function of the same name.
 */
struct store_reads {
  int (*keys_each)(struct store *s,
                   void (*fn)(void *arg, const uint8_t hash[32], int64_t account_id), void *arg);
  int (*accounts_suspended)(struct store *s, void (*fn)(void *arg, int64_t account_id),
                            void *arg);
  int (*routes_each)(struct store *s, void (*fn)(void *arg, const char *name, const char *config),
                     void *arg);
  int (*channels_each)(struct store *s,
                       void (*fn)(void *arg, int64_t account_id, const char *channel,
                                  const char *config),
                       void *arg);
  int (*prices_each)(struct store *s,
                     void (*fn)(void *arg, int64_t account_id, const char *channel,
                                int64_t price),
                     void *arg);
  /* Pool thread: the nodes and the work each holds (store_nodes_list). */
  int (*nodes)(struct store *s, void *rd, struct store_node *out, int max, int *n);
  /* What the store holds in memory (store_cache.h), read once at open: every
     account, and every named cascade of every account. 0 or KK_ESTORE. */
  int (*accounts_each)(struct store *s, void (*fn)(void *arg, const struct store_account *a),
                       void *arg);
  int (*cascades_all)(struct store *s,
                      void (*fn)(void *arg, int64_t account_id, const char *name,
                                 const char *steps),
                      void *arg);
  /* Every template of every account (store_tpl.c), read once at open. */
  int (*templates_all)(struct store *s,
                       void (*fn)(void *arg, int64_t account_id, const char *name,
                                  const char *body, int64_t created_at, int64_t updated_at),
                       void *arg);
  /* Channels and cascades. The due rows a claim examines (loop thread):
     up to max channel attempts due at now after the cursor (due_at, id), in
     that order, moving it (rows as store_chan_claim hands them out, text
     and extra malloc'd); up to max step deadlines passed at now, earliest
     first; the earliest deadline still to come (0: none). */
  int (*chan_due)(struct store *s, int64_t now, int64_t *cursor_due, int64_t *cursor_id,
                  struct store_chan_due *out, int max, int *n);
  int (*wait_due)(struct store *s, int64_t now, struct store_wait_due *out, int max, int *n);
  int64_t (*wait_next)(struct store *s);
  /* When phone last wrote to scope's WhatsApp number (0, KK_ENOENT,
     KK_ESTORE): what the notes and claims carry, for tests and tools. */
  int (*wa_last_inbound)(struct store *s, int64_t scope, const char *phone, int64_t *at);
  /* Reads in the pool (store_pool.c), on a pool thread through rd, that
     thread's reader (store_backend.reader_open). */
  int (*msg_get)(struct store *s, void *rd, int64_t account_id, const char *public_id,
                 struct store_msg_view *out);
  int (*msg_list)(struct store *s, void *rd, int64_t account_id,
                  const struct store_msg_filter *f, struct store_msg_view *out, int *n,
                  int64_t *next_cursor);
  int (*reply_list)(struct store *s, void *rd, int64_t account_id,
                    const struct store_reply_filter *f, struct store_reply_view *out, int *n,
                    int64_t *next_cursor);
  int (*keys_rows)(struct store *s, void *rd, int64_t account_id,
                   void (*fn)(void *arg, const char *prefix, int64_t created_at,
                              int64_t revoked_at),
                   void *arg);
  /* Due work that the neutral part claims before it hands it out, on the
     loop thread: sms_due, up to max due SMS rows with id > after_id in id
     order (the caller frees text); outbox_accounts, up to max accounts
     after `after`, in id order, with rows due at now; outbox_due, up to max
     of one account's rows due at now, earliest first (the caller frees url
     and payload). 0 or KK_ESTORE. */
  int (*sms_due)(struct store *s, int64_t after_id, struct store_due *out, int max, int *n);
  int (*outbox_accounts)(struct store *s, int64_t now, int64_t after, int64_t *out, int max,
                         int *n);
  int (*outbox_due)(struct store *s, int64_t account_id, int64_t now, struct store_outbox *out,
                    int max, int *n);
  /* Contacts and imports (store_contact.h), in the pool. */
  struct store_contact_reads contact;
  /* The stop-list and consents (store_optout.h). */
  struct store_optout_reads optout;
  /* Balances (store_money.h), in the pool. */
  struct store_money_reads money;
};

/* The rows a backend numbers. */
enum store_id_kind { STORE_ID_MESSAGE, STORE_ID_ATTEMPT };

/* The due work a backend hands out by claims. */
enum store_claim_kind { STORE_CLAIM_SMS, STORE_CLAIM_CHANNEL, STORE_CLAIM_WAIT, STORE_CLAIM_OUTBOX };

/* What a claim answers for each row (store_backend.claim). */
enum store_claim_answer {
  STORE_CLAIM_HELD = 0,     /* another writer holds it: that one's to send */
  STORE_CLAIM_GOT = 1,      /* this writer's now */
  STORE_CLAIM_BUSY = 2,     /* free, but another transaction has it locked now
                               (a writer changing the message, another node's
                               claim or take-over not yet committed): ask again */
};

/* What a backend provides. Every function but open and close runs on the
   writer thread; transaction functions return 0 or KK_ESTORE. */
struct store_backend {
  const char *name;
  /* 1 when one process at a time has the database (its data folder is
     locked): what a killed process held is free at the next start. */
  int exclusive;
  /* Allocates the store (at least sizeof(struct store), the rest its own,
     zeroed) and opens the database: 0 or KK_ESTORE (nothing left open). */
  int (*open)(const struct store_opts *opts, struct store **out);
  /* NULL (one writer), or opens another writer of the open store s: a
     store allocated as open's, with its own connection, that runs the
     operations given it (no reads, no node duties). Closed by close. */
  int (*lane_open)(struct store *s, struct store **out);
  /* After the writer has stopped: closes what open opened. The store
     itself is freed by the writer part. */
  void (*close)(struct store *s);
  int (*begin)(struct store *s);     /* a write transaction */
  int (*commit)(struct store *s);
  void (*rollback)(struct store *s); /* the open transaction, if one is */
  int (*savepoint)(struct store *s);
  void (*release)(struct store *s);
  void (*rollback_to)(struct store *s);
  /* Whether a transaction is still open (a failed operation may have made
     the database roll back the whole of it). */
  int (*in_tx)(struct store *s);
  /* The kind of the last failure (STORE_FAULT_*), and forgetting it. */
  int (*fault)(struct store *s);
  void (*fault_clear)(struct store *s);
  /* Inside the batch's transaction, before its commit: housekeeping that
     rides along (mono_ms: the batch's start, monotonic). */
  void (*before_commit)(struct store *s, double mono_ms);
  /* An idle writer commits an empty batch (running before_commit) every
     idle_ms, so that what rides along goes on without work (a node's
     heartbeat); 0: it sleeps until work comes. */
  long idle_ms;
  /* A rollback undid what the backend's writer state knew. */
  void (*undone)(struct store *s);
  /* NULL, or 1 when the batch just failed on a lock conflict with another
     writer of the same database (a deadlock, a lock wait that timed out, a
     serialization failure): the batch is run again whole, up to
     STORE_LOCK_TRIES times, its begin seeing s->lock_try (0 first). */
  int (*lock_conflict)(struct store *s);
  /* mu held, after each batch: copies the backend's counters into
     s->stats and s->cstats. */
  void (*publish)(struct store *s);
  /* Writer thread, inside a transaction: the id of a new row of kind, which
     no other writer of the same database gives (SQLite has one writer and
     counts on from MAX(id) read at open; a backend with several writers
     takes them from a sequence, a block at a time). 0: none (KK_ESTORE). */
  int64_t (*new_id)(struct store *s, enum store_id_kind kind);
  /* Claims due rows of kind (ids[0..n-1]) for this writer for lease_ms:
     granted[i] = STORE_CLAIM_GOT for each row it got, STORE_CLAIM_HELD for
     a row another writer holds (it is that one's to send), STORE_CLAIM_BUSY
     for one it could not lock now. A row not finished when the lease ends can
     be claimed again. SQLite has one writer and grants every row; a backend
     with several marks the rows (UPDATE ... FOR UPDATE SKIP LOCKED).
     0 or KK_ESTORE. The loop thread calls it too, for the work it hands
     out (store_sms_claim, store_outbox_claim, store_chan_claim,
     store_wait_claim), through a connection of that thread's. */
  int (*claim)(struct store *s, enum store_claim_kind kind, const int64_t *ids, int n,
               int64_t lease_ms, unsigned char *granted);
  /* Pool thread (store_pool.c), before its first read: a read connection
     of that thread's (NULL when it cannot be opened; the read fails and the
     next one tries again). reader_close closes it when the store closes. */
  void *(*reader_open)(struct store *s);
  void (*reader_close)(struct store *s, void *rd);
  /* One statement of SQL both databases speak, with `?` for each of the n
     arguments (a backend that numbers them renumbers), through rd (a pool
     thread's reader) or, rd NULL, the writer inside its transaction. fn
     gets each row's columns as text (NULL for SQL NULL) and returns 0 to
     go on. 0, KK_EEXIST (a constraint) or KK_ESTORE. What a module with a
     few plain tables writes and reads through (store_campaign.c). */
  int (*sql)(struct store *s, void *rd, const char *sql, const struct store_sql_arg *a, int n,
             store_sql_row_fn fn, void *arg);
  int sql_args_max;         /* the arguments one statement of sql takes at most */
  /* The writes, by kind (STORE_OP_LIST), and the reads. */
  op_exec_fn exec[STORE_OP_COUNT];
  struct store_reads read;
};

/* Any thread, once the store is open: an idle writer runs its empty batch
   now rather than at its next idle_ms (another node has news for it). */
void store_poke(struct store *s);

extern const struct store_backend store_sqlite_backend;
/* PostgreSQL (src/store/pg/): store_opts.store_url "postgresql://..." */
extern const struct store_backend store_pg_backend;

/* store_open() with the backend be (store_open: SQLite). */
int store_open_with(uv_loop_t *loop, const struct store_opts *opts,
                    const struct store_backend *be, struct store **out);

#define STORE_TURN_SLOTS 256
#define STORE_LANE_HINTS (1u << 20)

struct store {
  const struct store_backend *be;
  uv_loop_t *loop;
  pthread_t thread;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  struct store_op *q_head, **q_tail;       /* queued, guarded by mu */
  struct store_op **q_urgent;   /* where the next urgent operation goes: after
                                   the q_nurgent urgent ones at the head */
  int q_nurgent;
  double urgent_at;             /* writer: when a batch last took urgent ones */
  /* Turns among urgent operations, guarded by mu (store_submit): an
     operation's turn is its tenant's last turn (or the turn last taken,
     if later) plus its rows, and the queue's urgent part is kept in turn
     order, so a tenant's single message goes ahead of another tenant's
     queued batches. Tenants are kept in STORE_TURN_SLOTS slots by id; two
     in one slot share their turns (never going ahead of their own). */
  double turn_taken;            /* the turn of the last urgent operation taken */
  double turn_last[STORE_TURN_SLOTS];
  int64_t turn_tenant;          /* the tenant of the last urgent operation queued */
  double mixed_at;              /* when urgent operations of another tenant came */
  int q_weight;                 /* rows queued, guarded by mu */
  int w_wait;                   /* what the writer waits for (W_*), guarded by mu */
  struct store_op *done_head, **done_tail; /* committed, guarded by mu */
  int stop;                     /* guarded by mu */
  int degraded;                 /* guarded by mu: the last commit failed for a lock
                                   or an I/O error, and none has succeeded since */
  int retrying;                 /* guarded by mu: kept operations waiting to be
                                   committed again */
  int final;                    /* guarded by mu: failures are final (closing, or
                                   store_give_up) */
  int pending;                  /* loop thread only */
  int max_batch;
  int lock_try;                 /* writer: the current batch's try after lock
                                   conflicts (0 the first) */
  int poked;                    /* guarded by mu: an idle writer commits now
                                   (store_poke) */
  uv_async_t async;
  struct store_stats stats;     /* guarded by mu */
  struct store_cascade_stats cstats;   /* guarded by mu: published per commit */
  /* notes (store_notes.c): produced by the writer during a batch (wnotes),
     handed to the loop after its commit (lnotes, guarded by mu), delivered
     to the subscribers (loop thread) */
  struct store_sub { store_note_fn fn; void *ud; } subs[STORE_MAX_SUBSCRIBERS];
  int nsubs;
  struct store_note *wnotes, *lnotes;
  int nw, capw, nl, capl;
  /* accounts and named cascades held in memory (store_cache.c), loop thread */
  struct store_cache *cache;
  /* templates held in memory (store_tpl.c), loop thread */
  struct store_tpls *tpls;
  /* this node (store_nodes_list on a store of one node) */
  char node_name[128];
  int64_t started_at;
  /* the stop-list and current consents held in memory (store_optout.c), loop thread */
  struct store_optout *optout;
  /* reads off the loop (store_pool.c); NULL until the first */
  struct store_pool *pool;
  /* A backend with several writers per node (PostgreSQL, store_opts.writers):
     each other writer is a store of its own (lanes[]: its queue, thread and
     connection) whose notes and done callbacks reach this one's loop,
     caches and subscribers; main is the store a lane serves (NULL in the
     store itself). Loop thread. */
  struct store *main;
  struct store *lanes[STORE_WRITERS_MAX - 1];
  int nlanes;
  int writers_all;              /* store_opts.writers */
  int writers_use;              /* the writers that take work now, 1 to
                                   1 + nlanes (atomic: the first writer's
                                   thread sets it, the loop reads it) */
  uint8_t *lane_hint;           /* owned: the writer + 1 of an SMS part's
                                   (route, provider id) by hash, so that its
                                   receipt goes on the writer of its message */
};

/* store_notes.c, on the writer thread: a note of the current batch. */
void note(struct store *s, enum store_note_kind kind, int64_t msg_id, int64_t attempt_id,
          int64_t at);
/* A new message's SMS row, taken over (due and due->text are malloc'd). */
void note_due(struct store *s, struct store_due *due);
/* store_msg.c, on the writer thread: the note of a new message whose first
   step is SMS, its row as the dispatcher reads it (store_due_get) made from
   what the writer has in hand. */
void note_new_sms(struct store *s, const struct store_msg_new *m, int64_t due_at);
/* A configuration note: name and text (NULL: deleted) are copied; hash may
   be NULL. */
void note_cfg(struct store *s, enum store_note_kind kind, int64_t account_id, const char *name,
              const char *text, const uint8_t *hash, int64_t at);
/* An account created or updated: its whole row as committed (copied). */
void note_account(struct store *s, const struct store_account *a);
/* Drops the notes after the first n (a savepoint rolled back). */
void notes_truncate(struct store *s, int n);
/* Moves the batch's notes to the loop (after a commit) or drops them. */
void notes_commit(struct store *s, int ok);
/* Loop thread, mu held: takes the committed notes (*n of them; the caller
   passes them to notes_deliver). */
struct store_note *notes_take(struct store *s, int *n);
/* Loop thread: hands notes to the subscribers, then frees them. */
void notes_deliver(struct store *s, struct store_note *notes, int n);
/* Frees notes that will not be delivered. */
void notes_free(struct store_note *notes, int n);

/* store_tpl.c: the templates held in memory (loop thread; fill before the
   writer starts). */
struct store_tpls *store_tpls_new(void);
void store_tpls_free(struct store_tpls *t);
int store_tpls_fill(struct store *s);
void store_tpls_apply(struct store *s, const struct store_note *notes, int n);

/* store_campaign.c: the CAMPAIGN write (struct store_camp_op), the same
   on every backend (through store_backend.sql). */
int store_campaign_exec(struct store *s, struct store_op *op);
/* store_link.c: the tracked links of the messages msgs[0..n) that were
   stored new (writer thread, in their insert's transaction). */
int store_links_insert(struct store *s, const struct store_msg_new *msgs, int n);

/* store_pool.c: reads off the loop thread. */
/* A read on a pool thread: fn(s, rd, job) through rd, that thread's reader;
   its return is the done callback's rc. */
typedef int (*store_pool_fn)(struct store *s, void *rd, void *job);
/* Loop thread: queues fn; done(arg, rc) runs on the loop thread after it
   (counted as pending until then), then job is freed with free(). */
void store_pool_run(struct store *s, store_pool_fn fn, void *job, store_done_cb done, void *arg);
/* Loop thread: runs the done callbacks of the reads that finished. */
void store_pool_deliver(struct store *s);
/* store_close: lets the reads queued finish, closes the threads' readers,
   stops the threads and runs the reads' done callbacks. */
void store_pool_stop(struct store *s);

/* A policy decision appended to a message's decisions (MSG_DECIDE). */
struct store_decide_data {
  int64_t msg_id;
  char decision[256];       /* one JSON object */
};

/* Queues op (loop thread) on the writer its lane names. */
void store_submit(struct store *s, struct store_op *op);
/* With several writers, the first writes the new messages (in the order
   of their ids, which the dispatcher's scan of the store relies on) and
   everything but SMS results and receipts; those go on the others by
   message: op->lane = store_lane_of_msg(id). */
uint64_t store_lane_of_msg(int64_t msg_id);
/* Loop thread: remembers that the SMS part (route, pid) belongs to message
   msg_id (its writer now), so that its receipt goes on that
   writer too (store_lane_hinted: op->lane set when one of the ids is
   remembered; else it stays on the first writer, which meets the others'
   rows as another node's). A bounded table by hash: a slot another part
   took over only sends the receipt to another writer. */
void store_lane_hint_set(struct store *s, const char *route, const char *pid, int64_t msg_id);
/* Any thread (the backend, as it counts the live nodes): the node writes
   through its share of store_opts.writers, writers / live_nodes (at least
   one, at most the connections it has); the others stay open and idle, so
   that nodes of one database share its cores instead of outnumbering them. */
void store_writers_share(struct store *s, int live_nodes);
void store_lane_hinted(struct store *s, struct store_op *op, const char *route,
                       const char *const *pids, int npids);
/* Allocates an operation; data is freed after done unless borrowed. */
struct store_op *store_op_new(op_exec_fn exec, store_done_cb done, void *arg, void *data, int borrowed);
/* The same for a write of the store.h API: its body is the backend's
   function for kind. */
struct store_op *store_op_of(struct store *s, enum store_op_kind kind, store_done_cb done,
                             void *arg, void *data, int borrowed);
/* Marks op as one that may fail on its own: it runs in its own savepoint. */
struct store_op *store_atomic(struct store_op *op);
/* Marks op as one that must not be lost (see store_op.keep). */
struct store_op *store_keep(struct store_op *op);
/* Marks op urgent (see struct store_op); returns it. */
struct store_op *store_urgent(struct store_op *op);

#endif
