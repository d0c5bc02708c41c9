/*
 * store.h - the durable store: every SQL statement of kaskad lives behind
 * this interface. The queue and the writer are backend-neutral
 * (store_writer.c); SQL lives in a backend behind a table of functions
 * (store_int.h: struct store_backend): SQLite in sqlite/, PostgreSQL in pg/
 * (the configuration so far).
 *
 * Writes are asynchronous and group-committed: the caller queues an operation
 * with a done callback; a writer thread runs many queued operations in one
 * transaction (each inside its own savepoint, so one failing operation leaves
 * nothing half-written and does not disturb the others), commits once, and the
 * done callbacks run on the loop thread after the commit that holds them. A
 * client is acknowledged from a done callback, never before.
 *
 * Accounts and named cascades are answered from memory (store_cache.c,
 * kept by the notes of each commit). Other reads are synchronous, on the
 * loop thread, through a separate connection (WAL lets it read while the
 * writer writes), except those that may take long (listings, reports, a
 * message with its attempts): these run on the store's pool threads, each
 * through a connection of its own, and answer in a done callback on the
 * loop thread (the *_async functions). Nothing is read on the loop thread to
 * send: the notes carry the rows (store_note) and due work is handed out by
 * claims.
 *
 * Times are milliseconds since the Unix epoch (int64_t).
 */
#ifndef STORE_H
#define STORE_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "core/kk_status.h"

struct store;

#define STORE_WRITERS_MAX 8   /* write connections of one node at most */
#define STORE_WRITERS_ALL_MAX 64   /* store_opts.writers at most */

struct store_opts {
  const char *dir;          /* data folder; the database is DIR/kaskad.db */
  int synchronous_full;     /* 1: synchronous=FULL (default), 0: NORMAL */
  int max_batch;            /* operations per transaction, default 4096 */
  int early_cap;            /* early statuses (per webhook scope) and early
                               receipts (per route) held at most; 10000 */
  /* ---- the database ---- */
  const char *store_url;    /* NULL: SQLite in dir; "postgresql://user:pass@host/db"
                               (or "postgres://"): PostgreSQL (in progress: every read;
                               the configuration's writes) */
  const char *node_name;    /* this node in the nodes list (NULL: host:pid) */
  int64_t node_lease_ms;    /* PostgreSQL: a node silent this long is dead and
                               its work is taken over; default 10000 */
  int writers;              /* PostgreSQL: write connections (and threads) of
                               all the live nodes together, 1 to
                               STORE_WRITERS_ALL_MAX, default 1: each node opens
                               up to STORE_WRITERS_MAX and writes through its
                               share (store_writers_share) */
};

/*
 * Opens (creating if needed) the database, runs the schema migrations and
 * starts the writer thread. The backend follows opts->store_url (SQLite when
 * it is NULL). Done callbacks run on loop. Returns 0 or
 * KK_ESTORE (logged). Close with store_close().
 */
int store_open(uv_loop_t *loop, const struct store_opts *opts, struct store **out);

/*
 * Waits until every queued operation has committed and its done callback has
 * run (the loop keeps running meanwhile only if the caller runs it: call this
 * after the loop has stopped, or use store_pending() to drain first), then
 * stops the writer and closes the database. Frees s.
 */
void store_close(struct store *s);

/* 1 when this process alone has the database (SQLite: the data folder is
   locked), so that whatever a killed kaskad held in it is free at the next
   start; 0 with several nodes on one database (PostgreSQL). */
int store_exclusive(const struct store *s);

/* Operations queued and not yet completed (done callback not yet run). */
int store_pending(const struct store *s);

/*
 * Store faults. A commit that fails because the database is locked (another
 * process holds it longer than the busy timeout, 1 s) or for an I/O error
 * fails its operations with KK_ESTORE, except those that record what a
 * provider was asked or answered (results of sends, marks of requests under
 * way, SMS statuses, callback results): these are committed again, in their
 * order, with a growing pause (up to 1 s), until they succeed or the store
 * closes. Nothing waits longer than that; while the store is degraded the
 * writer probes it every second and clears the state on success.
 */
/* 1 while writes fail (the last commit failed for a lock or an I/O error). */
int store_degraded(struct store *s);
/* From now on a failed commit is final for every operation, kept ones too
   (their done callbacks get KK_ESTORE): for a stop that ran out of time. */
void store_give_up(struct store *s);

/* ---- accounts and keys ---------------------------------------------- */

struct store_account {
  int64_t id;
  char public_id[40];       /* "acc_..." */
  char name[256];
  char sms_route[64];       /* empty: the default route */
  char callback_secret[80]; /* HMAC key for callbacks to this account */
  int64_t created_at;
  int suspended;            /* 1: its keys are refused and its work waits */
  char senders[1024];       /* JSON array of registered sender names ("": []) */
  char countries[256];      /* JSON array of ISO country codes; [] = all */
  char roaming_ads[8];      /* advertising SMS to a roaming subscriber: defer
                               ("" = defer), drop or allow */
};

typedef void (*store_done_cb)(void *arg, int rc);

/* Queues creation of an account; on success *acc (caller-owned, alive until
   done) receives the id, public_id and a fresh callback_secret. */
void store_account_create(struct store *s, struct store_account *acc,
                          store_done_cb done, void *arg);
/* Queues an update of name, sms_route, suspended, senders and countries of
   the account acc->id. */
void store_account_update(struct store *s, struct store_account *acc,
                          store_done_cb done, void *arg);
/* Reads an account by public id (0, KK_ENOENT). Loop thread: answered
   from the accounts the store holds in memory (store_cache.h), as of the
   last commit whose notes were delivered. */
int store_account_get(struct store *s, const char *public_id, struct store_account *out);
int store_account_get_by_id(struct store *s, int64_t id, struct store_account *out);

/* ---- bounds of the configuration held in memory ----------------------- */
/* Accounts at most: store_account_create fails with KK_ENOSPC at the bound
   (the accounts whose creation is queued count as made). */
#define STORE_ACCOUNTS_MAX 100000
/* Named cascades per account: store_cascade_put of a name the account does
   not have fails with KK_ENOSPC when it has this many. */
#define STORE_CASCADES_MAX 32

/* Queues storing a key hash (32 bytes, SHA-256) for an account. */
void store_key_add(struct store *s, int64_t account_id, const uint8_t hash[32],
                   const char *prefix, store_done_cb done, void *arg);

/* Calls fn for every active key (at start-up, to fill the key cache). */
int store_keys_each(struct store *s,
                    void (*fn)(void *arg, const uint8_t hash[32], int64_t account_id),
                    void *arg);

/* A kaskad process of the database (SQLite: this one) and the due work it
   holds: messages whose SMS is due, channel attempts due, step deadlines,
   callbacks waiting. */
struct store_node {
  int64_t id;
  char name[128];
  int64_t started_at, heartbeat_at;   /* ms since the epoch */
  int alive;                /* its heartbeat is within its lease */
  int64_t messages, attempts, waits, outbox;
};
#define STORE_NODES_MAX 64
/* The nodes, oldest first (at most STORE_NODES_MAX into out, *n of them),
   read on a pool thread; then done(arg, rc) on the loop thread (0 or
   KK_ESTORE). out and n are borrowed until done. */
void store_nodes_list(struct store *s, struct store_node *out, int *n, store_done_cb done,
                      void *arg);

/* Calls fn for every key of an account, active or revoked (revoked_at 0:
   active), oldest first, on a pool thread; then done(arg, rc) on the loop
   thread (0 or KK_ESTORE). fn_arg is borrowed until done. */
void store_keys_list_async(struct store *s, int64_t account_id,
                           void (*fn)(void *arg, const char *prefix, int64_t created_at,
                                      int64_t revoked_at),
                           void *fn_arg, store_done_cb done, void *arg);

/* Revocation of the active keys with a prefix (caller-owned, alive until
   done). The operation fails with KK_ENOENT when no such key is active. */
#define STORE_REVOKE_MAX 8
struct store_key_revoke {
  char prefix[16];
  int64_t account_id;       /* 0: any account's key */
  /* out: */
  int n;                    /* keys revoked */
  uint8_t hash[STORE_REVOKE_MAX][32];
  int64_t owner[STORE_REVOKE_MAX];
};
void store_key_revoke(struct store *s, struct store_key_revoke *k, store_done_cb done,
                      void *arg);

/* Calls fn for every suspended account (at start-up). 0 or KK_ESTORE. */
int store_accounts_suspended(struct store *s, void (*fn)(void *arg, int64_t account_id),
                             void *arg);

/*
 * One bounded step of the retention job (caller-owned, alive until done):
 * examines up to max messages after after_id in id order, and deletes those
 * that are finished and were last updated before cutoff, with their attempts,
 * SMS parts and events (callbacks leave the outbox when they end). Stops at
 * the first message created at or after cutoff. after_id moves past what was
 * examined; more says whether older messages may remain.
 */
#define STORE_RETENTION_MAX 500
struct store_retention {
  int64_t cutoff;
  int64_t after_id;
  int max;
  /* out: */
  int deleted;
  int more;
};
void store_retention(struct store *s, struct store_retention *r, store_done_cb done, void *arg);

/* ---- routes ----------------------------------------------------------- */

/* Queues an upsert (config is a JSON text, copied) or delete (config NULL). */
void store_route_put(struct store *s, const char *name, const char *config,
                     store_done_cb done, void *arg);
int store_routes_each(struct store *s,
                      void (*fn)(void *arg, const char *name, const char *config),
                      void *arg);

/* ---- messages -------------------------------------------------------- */

#define STORE_MAX_STEPS 8
#define STORE_MAX_ATTEMPTS 16     /* steps plus skipped ones, as shown */
#define STORE_CAMPAIGN_MAX 64     /* bytes of a campaign name */

/* A message to insert. Strings are borrowed until the done callback. */
struct store_link_new;
struct store_msg_new {
  int64_t account_id;
  const char *public_id;    /* generated by the caller */
  const char *idem_key;     /* NULL if none */
  const char *to;           /* E.164 without '+' */
  const char *sender;       /* NULL: route default */
  const char *text;
  const char *msg_class;    /* service | transactional | advertising */
  const char *encoding;     /* gsm7 | ucs2 */
  int segments;
  const char *route;        /* SMS route chosen at accept time */
  const char *callback_url; /* NULL if none */
  const char *cascade;      /* steps text (see store_steps_format); NULL:
                               one SMS step waiting for delivered */
  const char *extra;        /* JSON object: vk_id, telegram_chat_id, viber_id,
                               email, image, button, whatsapp_template, code,
                               subject; NULL if none */
  const char *campaign;     /* the campaign it belongs to; NULL if none */
  int variant;              /* its variant in the campaign + 1; 0: none */
  const char *req_hash;     /* hex digest of the request's meaningful fields
                               (kept with an idempotency key); NULL: none */
  int64_t created_at;
  int64_t expires_at;
  int64_t not_before;       /* deferred by policy until then (status
                               scheduled); 0: at once */
  const char *decisions;    /* the policy's decisions (JSON array); NULL: none */
  int64_t cap_at;           /* the frequency caps counted it at this time (0: not
                               counted); several nodes: the others count it too */
  /* tracked links written with it (store_link.h; NULL: none), each of
     campaign variant link_variant (-1: none) */
  const struct store_link_new *links;
  int nlinks;
  int link_variant;
  int sms_priced;           /* 1: sms_price is the price of a segment on the
                               route its SMS is expected to take (dispatch_quote);
                               0: the price table's */
  int64_t sms_price;        /* store units (store_money.h) */
  int sms_quoted;           /* 1: sms_most and sms_table bound what a segment
                               can be charged (dispatch_quote); 0: the hold
                               is at sms_price (or the price table's) */
  int64_t sms_most;         /* the dearest route price it can be charged, store
                               units; -1: none */
  int sms_table;            /* 1: it may be charged the price table's price */
  /* out: */
  int64_t id;               /* row id of the stored (or the earlier) message */
  int64_t attempt_id;       /* its first attempt that is not skipped; 0: none */
  char first_channel[20];   /* that attempt's channel ("" when none) */
  int duplicate;            /* 1: idempotency key seen within 24 h; the fields
                               below describe the earlier message */
  char dup_public_id[40];
  char dup_status[16];
  char dup_encoding[8];
  int dup_segments;
  int64_t dup_created_at;
  int mismatch;             /* 1: the key was used within 24 h for a request
                               with another digest (dup_public_id names that
                               message); nothing was stored */
  int rc;                   /* per-message result within a batch */
  int no_balance;           /* 1: a prepaid account's balance does not cover
                               it (store_money.h); nothing was stored */
};

/* Queues n inserts in one operation (one transaction). done's rc is the
   operation's; each msgs[i].rc says how that message fared. */
void store_msg_insert(struct store *s, struct store_msg_new *msgs, int n,
                      store_done_cb done, void *arg);

/* Cancelling a scheduled message (DELETE /v1/messages/{id}). */
struct store_msg_cancel {
  int64_t account_id;
  char public_id[40];
  int64_t at;
  /* out: */
  int found;                /* 0: no such message in the account */
  int cancelled;            /* 1: it was scheduled and is cancelled now */
  char status[16];          /* its status (before, when not cancelled) */
};
/* Queues cancelling c's message (c borrowed until done): while it is
   scheduled it becomes cancelled (done, never sent: its step is no longer
   due, its hold released, the event and callback written) and the SMS or
   channel step it had waiting is dropped. done's rc is 0 or KK_ESTORE;
   c->found and c->cancelled say what happened. */
void store_msg_cancel(struct store *s, struct store_msg_cancel *c, store_done_cb done, void *arg);

/*
 * A scheduled message's SMS whose time came, before it goes: the store is
 * the arbiter between it and a cancel (DELETE /v1/messages/{id}), on this
 * node or another one of the database. In one write, a message still
 * scheduled becomes accepted (a cancel after that is refused with
 * not_scheduled) and one that is done, cancelled or on another attempt
 * is not sent. b borrowed until done; done's rc is 0 or KK_ESTORE, and
 * b->go says whether it may go.
 */
struct store_sms_begin {
  int64_t msg_id;
  int64_t attempt_id;
  int64_t at;
  int go;                   /* out: 1 it goes, 0 it must not */
};
void store_sms_begin(struct store *s, struct store_sms_begin *b, store_done_cb done, void *arg);

/* What the dispatcher needs to submit a message. */
struct store_due {
  int64_t id;
  int64_t attempt_id;
  int64_t account_id;
  char to[24];
  char sender[24];
  char route[64];
  char *text;               /* malloc'd; the caller frees */
  uint32_t parts_done;      /* bit i set: part i+1 already has a submit_sm_resp */
  int64_t due_at;
  int64_t expires_at;
  char msg_class[16];       /* service, transactional, advertising */
  int64_t created_at;       /* when the message was accepted (due_at past it: it waited) */
  int scheduled;            /* 1: the message is scheduled (store_sms_begin before it goes) */
};

/* Hands out due messages with id > *after_id, in id order: examines up to
   max, claims them for lease_ms and gives those it got into out (*n of
   them; a row another writer of the database holds is that one's to send;
   SQLite has one writer and hands out every row). *after_id moves past the
   rows examined, but stops just before a row another transaction had
   locked (its claim is asked again; *more is 1 then); *more is 1 when max
   were (more may be due). The caller
   frees each out[i].text. Loop thread; 0 or KK_ESTORE. */
int store_sms_claim(struct store *s, int64_t *after_id, int64_t lease_ms, struct store_due *out,
                    int max, int *n, int *more);

/* Appends a policy decision (one JSON object's text, copied; at most 255
   bytes) to message msg_id's decisions (a message refused when it came
   due). done may be NULL. */
void store_msg_decide(struct store *s, int64_t msg_id, const char *decision, store_done_cb done,
                      void *arg);

/* Status changes from the SMS path. Each is one queued operation; done may be
   NULL. They also append the event and, if the message has a callback_url, an
   outbox row, in the same transaction. */
struct store_sms_update {
  int64_t msg_id;
  int64_t attempt_id;
  int part;                 /* 1-based part number */
  int nparts;
  const char *route;
  const char *provider_id;  /* submit_sm_resp message_id (SUBMITTED) */
  uint32_t smpp_status;     /* FAILED: the command_status */
  const char *error;        /* FAILED / EXPIRED: text for the attempt */
  int64_t at;
  int64_t due_at;           /* RETRY: the next try */
  int priced;               /* SUBMITTED: 1 when route and price go on the
                               attempt (the dispatcher's choice) */
  int64_t price;            /* the route's price per segment, hundredths */
};

void store_sms_submitted(struct store *s, const struct store_sms_update *u,
                         store_done_cb done, void *arg);
void store_sms_failed(struct store *s, const struct store_sms_update *u,
                      store_done_cb done, void *arg);
void store_sms_expired(struct store *s, const struct store_sms_update *u,
                       store_done_cb done, void *arg);
void store_sms_retry(struct store *s, const struct store_sms_update *u,
                     store_done_cb done, void *arg);

/* A delivery receipt: candidate provider ids (the id as received and its
   other base), the route, the final state. */
struct store_receipt {
  const char *route;
  const char *ids[2];       /* NULL-padded */
  const char *state;        /* delivered | failed | expired */
  const char *error;        /* e.g. "UNDELIV err:001" */
  int64_t at;               /* clamped in place (store_clamp_at) */
  int matched;              /* out: 1 if a part was found; 0: no part has this id
                               yet, the receipt is kept and applied when a
                               submit_sm_resp names it (within 24 h; at most
                               early_cap receipts per route are kept) */
};
void store_receipt_apply(struct store *s, struct store_receipt *r,
                         store_done_cb done, void *arg);

/* An MO message (copied): store_inbound_add on channel sms. */
void store_mo_add(struct store *s, const char *route, const char *from,
                  const char *to, const char *text, int64_t at,
                  store_done_cb done, void *arg);

/* ---- replies: messages people send to kaskad's numbers ---------------- */

struct store_inbound {
  const char *channel;      /* sms | whatsapp | vk | viber | telegram */
  int64_t scope;            /* the account whose number or bot received it; 0:
                               the operator's (the number's assigned account,
                               else the account whose message last went to
                               `from` within 30 days, on `route` for SMS) */
  const char *route;        /* the SMS route it came on; NULL otherwise */
  const char *from;         /* the person's phone; "" when only user is known */
  const char *user;         /* VK, Viber, Telegram: the person's id there (the
                               phone is looked up by it); NULL otherwise */
  const char *to;           /* the number or sender name it was sent to, or NULL */
  const char *text;
  int64_t at;
};
/* Queues storing an inbound message with the account it belongs to
   (everything is copied). */
void store_inbound_add(struct store *s, const struct store_inbound *in, store_done_cb done,
                       void *arg);

struct store_reply_view {
  int64_t id;
  char channel[20];
  char from[32];            /* the phone; "" when none was found for user */
  char user[72];            /* the messenger's id of the person, "" for SMS */
  char attributed_by[16];   /* number | bot | last_message | "" (no account) */
  char to[32];
  char route[64];
  char *text;               /* malloc'd; the caller frees */
  char in_reply_to[40];     /* public id of the message it answers, "" if none */
  int64_t at;
};
struct store_reply_filter {
  const char *channel;      /* NULL: any */
  const char *from;         /* the person's phone; NULL: any */
  int64_t before_id;        /* paging cursor; 0 = newest */
  int limit;
};
/* Lists the account's inbound messages newest first over an index, at most
   f->limit rows; *next_cursor is 0 at the end. On a pool thread; done(arg,
   rc) on the loop thread (0 or KK_ESTORE). f's strings, out, n and
   next_cursor are borrowed until done. */
void store_reply_list_async(struct store *s, int64_t account_id,
                            const struct store_reply_filter *f, struct store_reply_view *out,
                            int *n, int64_t *next_cursor, store_done_cb done, void *arg);

/* ---- reading messages ---------------------------------------------- */

struct store_attempt_view {
  int step;
  char channel[20];
  char route[64];
  char status[16];
  char provider_id[72];
  int segments;
  int64_t cost;             /* in 1/10000 of the currency unit */
  int64_t price;            /* SMS: the route's price per segment, hundredths; -1 none */
  char error[128];
  int64_t created_at, sent_at, delivered_at, read_at;   /* 0 = none */
};

struct store_msg_view {
  char public_id[40];
  char to[24];
  char sender[24];
  char msg_class[16];
  char status[16];
  char encoding[8];
  int segments;
  char channel[20];
  char idem_key[129];       /* 1 to 128 bytes (api_messages.c) */
  char callback_url[512];
  char campaign[STORE_CAMPAIGN_MAX + 1];  /* "" when none */
  int64_t created_at, expires_at, updated_at;
  int64_t cost, sms_only_cost;   /* 1/10000 units */
  int delivered_twice;      /* extra attempts that also delivered or were read */
  int done;                 /* 1: the cascade has ended */
  int nattempts;
  struct store_attempt_view attempts[STORE_MAX_ATTEMPTS];
  char *text;               /* malloc'd, or NULL: only listings with with_text */
  char decisions[768];      /* the policy's decisions (JSON array; "": none);
                               store_msg_get_async only */
};

/* Reads one message of the account with its attempts, on a pool thread;
   done(arg, rc) on the loop thread: 0, KK_ENOENT (absent or another's) or
   KK_ESTORE. public_id is copied; out is borrowed until done. */
void store_msg_get_async(struct store *s, int64_t account_id, const char *public_id,
                         struct store_msg_view *out, store_done_cb done, void *arg);

#define STORE_LIST_EXAMINE 10000  /* rows a listing examines at most */

struct store_msg_filter {
  const char *status;       /* NULL: any */
  const char *campaign;     /* NULL: any (with or without one) */
  const char *phone;        /* to_number, E.164 without '+'; NULL: any */
  int64_t from, to;         /* created_at range, 0 = open */
  int64_t before_id;        /* paging cursor: rows with id < before_id; 0 = newest */
  int limit;
  int max_examine;          /* rows examined at most; 0: STORE_LIST_EXAMINE */
  int with_text;            /* 1: fill each view's text (the caller frees it) */
};
/*
 * Lists messages of the account, newest first, over one index (the phone's,
 * the campaign's or the account's, in that order of choice);
 * the other conditions are checked on the rows the index gives, and at most
 * max_examine rows are examined. *next_cursor is 0 at the end; otherwise it
 * continues the listing, also when the page is short (or empty) because the
 * examination bound was reached.
 */
int store_msg_list(struct store *s, int64_t account_id, const struct store_msg_filter *f,
                   struct store_msg_view *out, int *n, int64_t *next_cursor);
/*
 * Calls fn for each message of the account created at from or later,
 * newest first, through a read connection opened for the call (at start:
 * the frequency caps' counts). Any backend; 0 or KK_ESTORE.
 */
int store_msg_each_since(struct store *s, int64_t account_id, int64_t from,
                         void (*fn)(void *arg, const struct store_msg_view *v), void *arg);
/*
 * The same on a pool thread through a read-only connection of its own, so
 * that the loop thread does not wait for it; done(arg, rc) runs on the
 * loop thread. f's strings, out, n and next_cursor are borrowed until done.
 */
void store_msg_list_async(struct store *s, int64_t account_id, const struct store_msg_filter *f,
                          struct store_msg_view *out, int *n, int64_t *next_cursor,
                          store_done_cb done, void *arg);

/* ---- cascades and channels ------------------------------------------------ */

/*
 * A cascade is a list of steps {channel, wait, timeout_ms} (wait: sent |
 * delivered | read; timeout_ms 0 = none, allowed on the last step), stored as
 * the text "channel/wait/timeout_ms,..." (store_steps_format), which the
 * writer reads on every status without a JSON parser.
 * The store runs the state machine inside its transactions: a message starts
 * at its first step whose channel the message has an address for and the
 * account (or the operator) has configured; the others are recorded as
 * "skipped" attempts. A step succeeds when its attempt reaches the wait
 * status; when it fails or its deadline (messages.wait_until) passes, the
 * next usable step starts in the same transaction. A status for an attempt
 * that is no longer current is recorded on it and changes no step.
 */
struct store_step {
  char channel[20];
  char wait[12];
  int64_t timeout_ms;
};
/* Parses the steps text into out (STORE_MAX_STEPS); NULL or "" is one SMS
   step waiting for delivered. Returns the count, or -1. */
int store_steps_parse(const char *text, struct store_step *out);
/* Writes n steps as text into out. 0 or KK_ENOSPC. */
int store_steps_format(const struct store_step *steps, int n, char *out, size_t cap);

/*
 * Notes: what a commit changed, handed to the modules that subscribed
 * (store_subscribe), on the loop thread, after the commit and before the
 * done callbacks of its operations. They are the only way work and changes
 * leave the store: a new SMS goes to the dispatcher, a channel attempt to
 * the send engine, a changed route, key or account to the caches that hold
 * it. A note about a configuration names what changed and carries its new
 * value, so a cache (on this node today, on others later) applies it without
 * reading the row back.
 */
enum store_note_kind {
  STORE_NOTE_SMS = 1,       /* an SMS attempt became current: due is its row (NULL
                               when it was no longer due by the commit) */
  STORE_NOTE_CHANNEL,       /* a channel attempt is due to be sent at `at`
                               (attempts.due_at): chan is its row when it is due
                               by the commit, NULL when it comes due later (a
                               claim brings it then) or ended in the same commit */
  STORE_NOTE_WAIT,          /* a step deadline was set at wait_until */
  STORE_NOTE_SMS_CANCEL,    /* an SMS step timed out: drop its unsent parts */
  STORE_NOTE_SMS_NEW,       /* a new message whose first step is SMS: due is its row */
  STORE_NOTE_ROUTE,         /* SMS route cfg->name put (cfg->text: its settings JSON)
                               or deleted (cfg->text NULL) */
  STORE_NOTE_CHANNEL_CFG,   /* account_id's (0: the operator's) settings of channel
                               cfg->name put (cfg->text) or deleted (NULL) */
  STORE_NOTE_PRICE,         /* account_id's price of channel cfg->name: at (-1: removed) */
  STORE_NOTE_CASCADE_CFG,   /* account_id's named cascade cfg->name saved (cfg->text:
                               its steps) or deleted (NULL) */
  STORE_NOTE_ACCOUNT,       /* account_id created or updated (acc: its row as
                               committed); at: 1 when suspended */
  STORE_NOTE_KEY_ADD,       /* a key of account_id was added: cfg->hash */
  STORE_NOTE_KEY_REVOKE,    /* a key of account_id was revoked: cfg->hash */
  STORE_NOTE_CHANNEL_END,   /* channel attempt attempt_id is no longer due (a status,
                               a timeout, a failure): a row of it waiting to be sent
                               must not go */
  STORE_NOTE_TEMPLATE_CFG,  /* account_id's template cfg->name saved (cfg->text: its
                               body JSON; at: when) or deleted (NULL) */
  STORE_NOTE_STOP,          /* account_id's phone cfg->name stop-listed: at is the
                               reason (pol_stop.h; 0: removed) */
  STORE_NOTE_CONSENT,       /* account_id's phone cfg->name: at is the mask of its
                               current consents (pol_consent.h; 0: none) */
  STORE_NOTE_OPTOUT_REPLY,  /* account_id's phone cfg->name replied a stop, start
                               or help word (cfg->text "stop sms"; at: when) */
  STORE_NOTE_CAP_SEND,      /* a message of account_id's to phone cfg->name, class
                               cfg->text, was counted by the frequency caps at `at`
                               (store_msg_new.cap_at) where it was accepted */
};
/* The value a configuration note carries. */
struct store_note_cfg {
  char name[72];
  char *text;               /* NULL: deleted */
  uint8_t hash[32];
};
struct store_note {
  enum store_note_kind kind;
  int64_t msg_id;
  int64_t attempt_id;
  int64_t at;               /* WAIT: the deadline; CHANNEL: due time */
  int64_t account_id;       /* configuration notes */
  /* Owned by the store and freed after delivery. SMS_NEW, SMS: one
     subscriber (the dispatcher) may take due->text, leaving NULL. CHANNEL:
     one subscriber (the send engine) may take chan->text and chan->extra. */
  struct store_due *due;
  struct store_note_cfg *cfg;
  struct store_account *acc;  /* ACCOUNT: the whole row */
  struct store_chan_due *chan;
  int remote;               /* 1: another node's change, heard from the database
                               (the stop-list, consents, counted sends): what this
                               node's own commits did not apply already */
};
typedef void (*store_note_fn)(void *ud, const struct store_note *notes, int n);
#define STORE_MAX_SUBSCRIBERS 8
/* Subscribes fn to every commit's notes (each subscriber sees them all, in
   the order of subscription, and skips the kinds it does not own). 0, or
   KK_ENOSPC past STORE_MAX_SUBSCRIBERS. */
int store_subscribe(struct store *s, store_note_fn fn, void *ud);
/* Removes the subscription (before ud is freed); fn NULL: every one of ud. */
void store_unsubscribe(struct store *s, store_note_fn fn, void *ud);

/* A channel attempt to send (not SMS), as a claim or a note hands it out. */
struct store_chan_due {
  int64_t msg_id, attempt_id, account_id;
  int64_t scope;            /* account whose settings apply; 0: the operator's */
  enum kk_chan chan;        /* the channel (KK_CHAN_NONE: one kaskad does not know) */
  char channel[20];
  char public_id[40];
  char to[24];
  char address[256];
  char msg_class[16];
  char *text;               /* malloc'd */
  char *extra;              /* malloc'd JSON ("{}" when none) */
  int tries;
  int64_t try_at;           /* a request was marked under way then (0: none) */
  int64_t due_at, expires_at, created_at;
  int64_t wa_inbound_at;    /* WhatsApp: when `to` last wrote to the number of
                               scope (its 24-hour window); 0: never, or another
                               channel */
};
/* Frees what a row owns (text, extra); d itself is the caller's. */
void store_chan_due_free(struct store_chan_due *d);
/* How long a claimed channel attempt or step deadline is this node's. */
#define STORE_CHAN_LEASE_MS (60LL * 1000)
#define STORE_WAIT_LEASE_MS (30LL * 1000)
/* Claims up to max channel attempts due at now, in due order, after the
   cursor (due_at, id), which moves past the last one examined (start at 0,
   0): out[0..*n) are the rows this node got (the backend's claim; rows
   another node holds are left out, so *n may be less than max while more
   remain: go on while *more). The caller frees each with
   store_chan_due_free. Loop thread; 0 or KK_ESTORE. */
int store_chan_claim(struct store *s, int64_t now, int64_t *cursor_due, int64_t *cursor_id,
                     struct store_chan_due *out, int max, int *n, int *more);
/* Marks the attempts ids[0..n) as having a request under way since at (0
   clears the mark), for sends that must not go twice (cascade.h). ids is
   copied. */
void store_chan_trying(struct store *s, const int64_t *ids, int n, int64_t at,
                       store_done_cb done, void *arg);

/* WAIT: not sent, due again at retry_at without counting a try (the rules
   made it wait when it came due: quiet hours). */
enum store_chan_outcome { STORE_CHAN_SENT, STORE_CHAN_RETRY, STORE_CHAN_FAILED, STORE_CHAN_WAIT };
struct store_chan_result {
  int64_t attempt_id;
  enum store_chan_outcome outcome;
  const char *provider_id;  /* SENT */
  const char *error;        /* RETRY, WAIT (why) / FAILED */
  int64_t at;
  int64_t retry_at;         /* RETRY, WAIT */
  int units;                /* SENT: billable units (1) */
};
/* Queues the outcome of a send. */
void store_chan_result(struct store *s, const struct store_chan_result *r,
                       store_done_cb done, void *arg);

/* A status from a provider's callback. */
struct store_chan_status {
  const char *channel;
  int64_t scope;            /* whose webhook it came to */
  const char *provider_id;  /* "" for a VK read (peer/read_upto) */
  const char *peer;
  int64_t read_upto;
  const char *status;       /* sent | delivered | read | failed | expired */
  const char *error;
  int64_t at;               /* clamped in place (store_clamp_at) */
  int matched;              /* out: attempts it applied to; 0: kept for the
                               send's answer (24 h, at most early_cap per
                               scope) */
};
void store_chan_status(struct store *s, struct store_chan_status *st,
                       store_done_cb done, void *arg);

/* Step deadlines that have passed: (msg_id, step) pairs, earliest first. */
struct store_wait_due { int64_t msg_id; int step; int64_t wait_until; };
/* Claims up to max step deadlines passed at now, earliest first (those
   another node holds are left out). When none is handed out, *next is the
   earliest deadline still to come (0: none). Loop thread; 0 or KK_ESTORE. */
int store_wait_claim(struct store *s, int64_t now, struct store_wait_due *out, int max, int *n,
                     int64_t *next);
/* Queues the deadline of step `step` of msg_id: if it is still the current
   step and the cascade has not ended, its attempt becomes "timeout" and the
   next usable step starts. */
void store_step_timeout(struct store *s, int64_t msg_id, int step, int64_t at,
                        store_done_cb done, void *arg);

/* Channel settings (account_id 0: the operator's defaults), JSON text. */
void store_channel_put(struct store *s, int64_t account_id, const char *channel,
                       const char *config /* NULL: delete */, store_done_cb done, void *arg);
int store_channels_each(struct store *s,
                        void (*fn)(void *arg, int64_t account_id, const char *channel,
                                   const char *config),
                        void *arg);

/* Prices in 1/10000 units (account_id 0: the operator's); price < 0 deletes. */
void store_price_put(struct store *s, int64_t account_id, const char *channel, int64_t price,
                     store_done_cb done, void *arg);
int store_prices_each(struct store *s,
                      void (*fn)(void *arg, int64_t account_id, const char *channel,
                                 int64_t price),
                      void *arg);

/* Named cascades of an account (steps JSON text; NULL deletes). */
void store_cascade_put(struct store *s, int64_t account_id, const char *name, const char *steps,
                       store_done_cb done, void *arg);
/* Copies the steps JSON of a named cascade (malloc'd into *out) or KK_ENOENT.
   Loop thread; this and store_cascades_each (in name order) answer from
   memory (store_cache.h). */
int store_cascade_get(struct store *s, int64_t account_id, const char *name, char **out);
int store_cascades_each(struct store *s, int64_t account_id,
                        void (*fn)(void *arg, const char *name, const char *steps), void *arg);

/*
 * WhatsApp's 24-hour customer-service window: when a person last wrote to
 * the WhatsApp number of a scope (the account whose settings and webhook
 * it is; 0: the operator's), one row per (scope, phone).
 */
/* Queues recording a message from phone at `at`; a time before the one
   stored changes nothing. phone is copied. The time reaches the send engine
   with each WhatsApp attempt (store_chan_due.wa_inbound_at). */
void store_wa_inbound(struct store *s, int64_t scope, const char *phone, int64_t at,
                      store_done_cb done, void *arg);

/* Counters of the cascade's rules, per channel (for /metrics), indexed by
   enum kk_chan (core/kk_status.h). */
struct store_cascade_stats {
  unsigned char seen[KK_CHAN_COUNT];       /* the channel has counted something */
  uint64_t started[KK_CHAN_COUNT];         /* attempts started */
  uint64_t skipped[KK_CHAN_COUNT];
  uint64_t sent[KK_CHAN_COUNT];
  uint64_t delivered[KK_CHAN_COUNT];
  uint64_t read[KK_CHAN_COUNT];
  uint64_t failed[KK_CHAN_COUNT];
  uint64_t timeout[KK_CHAN_COUNT];
  uint64_t fallthrough[KK_CHAN_COUNT];     /* steps on this channel that passed on */
  uint64_t late[KK_CHAN_COUNT];            /* statuses after the step had ended */
  uint64_t delivered_twice;
  uint64_t finished;                       /* cascades that ended */
  uint64_t held_quiet;                     /* fall-throughs held for quiet hours */
  uint64_t charges_capped;                 /* charges above their message's hold,
                                              taken at the hold */
};
void store_get_cascade_stats(struct store *s, struct store_cascade_stats *out);

/* ---- callbacks outbox ------------------------------------------------ */

struct store_outbox {
  int64_t id;
  int64_t account_id;
  char *url;                /* malloc'd */
  char *payload;            /* malloc'd JSON of a row written so; "" when the row holds
                               the event's fields below (callback/ builds the JSON) */
  int tries;
  /* the event the callback tells of */
  char public_id[40];
  char status[16];
  char channel[20];
  char to[24];
  int64_t at;
  int64_t cost;             /* in 1/10000 of the currency unit */
  int has_error;
  char error[256];          /* as the provider or SMS centre gave it (bytes) */
};
/* Reads up to max rows due at now, earliest first (the caller frees
   url/payload). For tests and tools: the deliverer claims its rows
   (store_outbox_claim). */
int store_outbox_due(struct store *s, int64_t now, struct store_outbox *out, int max, int *n);
/* Queues the result of a delivery try: done (delete) or retry at due_at. */
void store_outbox_result(struct store *s, int64_t id, int delivered, int64_t due_at,
                         const char *error, store_done_cb done, void *arg);
/*
 * Hands out due rows by claims, account by account in turn (loop thread).
 * The accounts with rows due at now are visited in id order, at most
 * accounts_max of them, after `after`, then, when `after` was not 0, once
 * more from the first up to `after` (a round robin). For each, want(arg,
 * account) says how many of its due rows to read now (0: none; < 0: stop
 * here); those are read earliest first into rows (want's answer is at most
 * cap), claimed for lease_ms (a row another writer holds is left out) and
 * given to take(arg, account, rows, n), which owns each row's url and
 * payload. An account want did not stop at becomes `after`. 0 or KK_ESTORE.
 */
struct store_outbox_claim {
  int64_t now;
  int64_t after;            /* in/out: the round robin's place */
  int64_t lease_ms;
  int accounts_max;         /* accounts visited per pass */
  struct store_outbox *rows; /* cap rows, the caller's */
  int cap;
  int (*want)(void *arg, int64_t account_id);
  void (*take)(void *arg, int64_t account_id, struct store_outbox *rows, int n);
  void *arg;
  int more;                 /* out: 1 when accounts_max accounts were visited
                               in a pass (more may have rows due) */
};
int store_outbox_claim(struct store *s, struct store_outbox_claim *c);
/* Queues moving a row's due time without counting a try (its host's
   circuit breaker is open). */
void store_outbox_defer(struct store *s, int64_t id, int64_t due_at, store_done_cb done,
                        void *arg);
/* Drops the oldest rows of every account that has more than keep waiting,
   at most max_delete rows in all; says what it dropped. */
#define STORE_TRIM_ACCOUNTS 16
struct store_outbox_trim {
  int64_t keep;             /* in: rows an account may have waiting */
  int64_t max_delete;       /* in: rows deleted at most in one run */
  int64_t dropped;          /* out: rows deleted */
  int naccounts;            /* out: accounts listed below (at most 16) */
  int64_t account_id[STORE_TRIM_ACCOUNTS];
  int64_t account_dropped[STORE_TRIM_ACCOUNTS];
};
/* t is the caller's and must live until done. */
void store_outbox_trim(struct store *s, struct store_outbox_trim *t, store_done_cb done,
                       void *arg);
/* Earliest due_at in the outbox, 0 if empty. */
int64_t store_outbox_next_due(struct store *s);

/* ---- metrics --------------------------------------------------------- */

#define STORE_HIST_BUCKETS 12
struct store_stats {
  uint64_t commits;
  uint64_t ops;
  uint64_t errors;          /* failed commits, of which: */
  uint64_t errors_busy;     /*   the database was locked by another process */
  uint64_t errors_io;       /*   I/O errors, a full disk, a file that cannot be opened */
  uint64_t lock_retries;    /* batches run again whole after a lock conflict with
                               another node's writer (not counted in errors) */
  uint64_t handed_back;     /* operations handed back to a later batch because
                               another node's writer held their rows */
  int degraded;             /* 1: writes fail now (see store_degraded) */
  int retrying;             /* writes that must not be lost, waiting to be tried again */
  /* commit latency histogram, upper bounds in ms: see store_hist_bounds */
  uint64_t commit_hist[STORE_HIST_BUCKETS + 1];  /* last = +Inf */
  double commit_sum_ms;
  uint64_t batch_hist[STORE_HIST_BUCKETS + 1];   /* ops per commit */
  uint64_t batch_sum;
  /* urgent operations (stream inserts): queued to committed, ms */
  uint64_t urgent_hist[STORE_HIST_BUCKETS + 1];
  double urgent_sum_ms;
  uint64_t urgent;
  uint64_t early_refused;   /* early statuses / receipts refused over a scope's cap */
  uint64_t early_expired;   /* early statuses / receipts expired unmatched */
};
extern const double store_commit_bounds_ms[STORE_HIST_BUCKETS];
extern const double store_batch_bounds[STORE_HIST_BUCKETS];
void store_get_stats(struct store *s, struct store_stats *out);

/* A time a provider reported, clamped to now +- STORE_CLAMP_MS (0: now), so
   that no far-future or far-past time makes a row that never expires or
   reorders statuses. */
#define STORE_CLAMP_MS (5LL * 60 * 1000)
int64_t store_clamp_at(int64_t at, int64_t now);

/* Queues an expiry run of early statuses and receipts: those reported before
   now - 24 h go, in one bounded batch (the writer also runs this by itself
   every second). For tests and tools. */
void store_early_expire(struct store *s, int64_t now, store_done_cb done, void *arg);

/* Current time in ms. */
int64_t store_now_ms(void);
/* Moves store_now_ms forward by ms from now on (the test clock; setting
   test_clock). */
void store_clock_shift(int64_t ms);

/* Templates: store/store_tpl.h. */

#endif
