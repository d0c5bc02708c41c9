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
#define PG_MAX_PARAMS 16

/* The server's clock in milliseconds since the Unix epoch (leases compare
   with it, so that nodes whose clocks differ agree on when one ends). */
#define PG_NOW_MS "(EXTRACT(EPOCH FROM clock_timestamp())*1000)::bigint"

/* A connection and what its last failure was. */
struct pg_conn {
  PGconn *db;
  int fault;                /* STORE_FAULT_* of the last failed statement */
  char sqlstate[6];         /* its SQLSTATE ("" when the connection itself failed) */
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
/* pg_retention.c */
int pg_retention(struct store *s, struct store_op *op);

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
                     store_contact_fn fn, void *arg);

#endif
