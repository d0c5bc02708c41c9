/*
 * store_contract.h - the store's contract for messages, SMS, callbacks,
 * channels and cascades, written once and run on each backend: every
 * function takes an open store (on its tmp_store loop) and a way to read
 * one number from the database with a query of the test's own (SQL that
 * SQLite and PostgreSQL both run). Each asserts (kk_test.h).
 */
#ifndef STORE_CONTRACT_H
#define STORE_CONTRACT_H

#include <stdint.h>

#include "lib/tmp_pg.h"
#include "lib/tmp_store.h"

struct sc_env {
  struct tmp_store *t;
  /* One number from sql (one row, one column; NULL reads as 0). */
  int64_t (*num)(struct sc_env *e, const char *sql);
  void *ctx;                /* num's */
};

/* Environments: a SQLite store; nstores stores (nodes) on one fresh
   PostgreSQL database (the test is reported not run without
   KASKAD_TEST_PG). */
struct sc_sq {
  struct tmp_store st;
  struct sc_env e;
};
void sc_sqlite_open(struct sc_sq *q);
void sc_sqlite_close(struct sc_sq *q);
struct sc_pg {
  struct tmp_pg db;
  struct tmp_store st[2];
  int nst;
  PGconn *sql;              /* the test's own connection */
  struct sc_env e[2];
};
void sc_pg_open(struct sc_pg *p, int nstores);
/* The same with each store writing through `writers` connections. */
void sc_pg_open_writers(struct sc_pg *p, int nstores, int writers);
void sc_pg_close(struct sc_pg *p);
/* Two nodes: node 1 holds a VK status early while node 0 stores the send's
   answer in a batch that crossed the hold (neither saw the other's row);
   node 1 looks again a second later and the status is applied. */
void sc_pg_crossed_status(struct sc_pg *p);
/* A step's deadline for a message whose row another node's open batch
   holds: handed back to later batches, writing nothing and rolling no
   batch back, until that commits; then applied. */
void sc_pg_held_message(struct sc_pg *p);

/* A batch of n messages (half SMS, half VK -> Viber -> SMS) in one
   operation: every one stored, their first steps noted with their rows,
   the counters moved. */
void sc_batch_insert_and_notes(struct sc_env *e, int n);
/* A batch whose texts hold quotes, braces, backslashes and non-ASCII
   letters, and two messages with one key: stored as given, one message
   for the key. */
void sc_batch_text_and_keys(struct sc_env *e);
/* VK fails, Viber fails by its status, SMS is sent and delivered by its
   receipt: the message ends delivered, with events and callbacks. */
void sc_cascade_vk_viber_sms(struct sc_env *e);
/* A receipt before its part's submit_sm_resp, and a channel status before
   its send's answer: held, then applied when the part or send is stored. */
void sc_early_receipt_and_status(struct sc_env *e);
/* A step's deadline passes: the next step starts; a stale one changes
   nothing. */
/* SMS results and receipts of many messages queued together (runs of them
   in one batch): parts of one message, held receipts, repeats. */
void sc_sms_runs(struct sc_env *e);
void sc_cascade_runs(struct sc_env *e);
void sc_step_timeout(struct sc_env *e);
/* Messages deferred an hour (SMS and VK first steps) are cancelled: done,
   their steps no longer due, the event and callback written, the VK row's
   end noted; a message not scheduled, another account's or unknown is not. */
void sc_cancel_scheduled(struct sc_env *e);
/* A scheduled SMS whose time came (store_sms_begin), accepted on b and
   cancelled through a (the same store on SQLite, two nodes on PostgreSQL). */
void sc_sms_begin(struct sc_env *b, struct sc_env *a);
/* Messages from people: the account and message they answer; WhatsApp
   windows only move forward. */
void sc_inbound(struct sc_env *e);
/* The outbox: a delivered row goes, a failed try counts, a deferred row
   moves, a trim drops an account's oldest beyond what it may keep. */
void sc_outbox(struct sc_env *e);
/* A batch with a message that cannot be stored leaves nothing of any of
   its messages: no row, no note; the same key twice gives one
   message. */
void sc_rollback_and_idempotency(struct sc_env *e);

#endif
