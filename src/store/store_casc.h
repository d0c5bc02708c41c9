/*
 * store_casc.h - the cascade's glue that every backend shares
 * (store_cascade.c): a message and an attempt as the rules read them, one
 * run of the rules (cascade/cascade_fsm.h) and what it asks for. A backend
 * loads the rows, gives the run what it asks through struct casc_ops, and
 * writes the effects that are rows (casc_run_write calls it back for
 * those); notes and counters are made here. Not for use outside src/store.
 */
#ifndef STORE_CASC_H
#define STORE_CASC_H

#include <jansson.h>

#include "cascade/cascade_fsm.h"
#include "store/store_int.h"

/* A message's row as a run reads it. */
struct casc_msg {
  int64_t id, account_id;
  char public_id[40];
  char to[24];
  char status[16];
  char callback_url[520];
  int step;
  int64_t attempt_id;
  int done;
  char *cascade;            /* malloc'd */
  char *extra;              /* malloc'd, read when a step starts */
  int has_extra;
  char route[64];
  int segments;
  char channel[20];
  int64_t cost;
  int delivered_twice;
  int64_t expires_at;       /* the message's validity ends then */
  int ins;                  /* being inserted: its row is written after the start */
  int64_t due_at, wait_until;
  /* the message's money hold, when the backend read it with the row under
     its lock (hold_read): its amount, -1 when it has none */
  int hold_read;
  int64_t hold;
};
/* Frees what m owns. */
void casc_msg_free(struct casc_msg *m);

/* An attempt as the state machine reads it. */
struct casc_att {
  int64_t msg_id;
  char channel[20];
  char status[16];
  int step;
  int64_t sent_at, delivered_at, read_at;
  int segments;
  int64_t parts_sent;       /* SMS: bit i set when part i+1 was accepted */
  int parts_delivered;
  int64_t scope;            /* whose channel settings sent it */
  int tries;                /* provider requests that asked to be retried */
  int parts_dirty;          /* parts_sent changed here and is not written yet */
  /* SMS: the price of a segment on the route that took it (store units),
     when the dispatcher priced it (set by the submit_sm_resp that makes it
     sent; a loaded attempt has none): its charge; else the price table's */
  int priced;
  int64_t price;
};
/* a as the rules see it (id: its row id). */
void casc_att_to_fsm(const struct casc_att *a, int64_t id, struct cfsm_att *out);

/* A step held for the recipient's quiet hours (an ATT_ADD effect whose
   error is quiet_hours) as a decision of its message: 1 with its JSON
   object in out ({"at","rule","outcome":"deferred","reason","channel",
   "until": its t2}), 0 for any other effect. */
int casc_hold_decision(const struct cfsm_fx *f, const char *channel, char *out, size_t cap);

/* A status a provider reported before its attempt was known. */
#define CASC_HELD_MAX 8
struct casc_held {
  char status[12];
  char error[128];
  int64_t at;
};

struct casc_run;
/* What a run asks its backend for, on the writer thread inside the batch's
   transaction. */
struct casc_ops {
  /* The message's extra JSON (malloc'd; NULL: none). */
  char *(*extra)(struct store *s, int64_t msg_id);
  /* Whose settings a channel uses for an account: the account's, the
     operator's (0), or -1 when neither has any. */
  int64_t (*scope)(struct store *s, int64_t account_id, const char *channel);
  /* The price of one unit on channel for account (0 if none). */
  int64_t (*price)(struct store *s, int64_t account_id, const char *channel);
  /* Every attempt of the message (id, chan, status and times), at most
     max, into att; *n the count. 0 or KK_ESTORE. */
  int (*attempts)(struct store *s, int64_t msg_id, struct cfsm_att *att, int max, int *n);
  /*
   * The rows the rules' effects change (casc_run_write says which, with
   * what); each 0, KK_EEXIST or KK_ESTORE.
   */
  /* Before any effect that is a row (NULL: nothing to do first). */
  int (*before)(struct casc_run *r, const struct cfsm_fx *f);
  /* ATT_SET: the attempt's status and times, r's provider id and error,
     its cost and the parts sent. */
  int (*att_set)(struct casc_run *r, const struct cfsm_fx *f);
  /* ATT_ADD: attempt id of the message at step f->step; why: what holds
     it back or fails it (NULL: nothing). */
  int (*att_add)(struct casc_run *r, const struct cfsm_fx *f, int64_t id, const char *why);
  /* A decision (one JSON object) appended to the message's. */
  int (*decide)(struct casc_run *r, const char *decision);
  /* MSG_STEP and MSG_FIN: the message's step, or its status and end. */
  int (*msg_step)(struct casc_run *r, const struct cfsm_fx *f);
  int (*msg_fin)(struct casc_run *r, const struct cfsm_fx *f);
  /* MSG_DONE (done at t), MSG_CLEAR_DUE, MSG_WAIT (waits until t). */
  int (*msg_mark)(struct casc_run *r, enum cfsm_fx_kind kind, int64_t t);
  /* An event row of message msg_id; the outbox row of m's callback. */
  int (*event)(struct store *s, int64_t msg_id, int64_t attempt_id, const char *status,
               int64_t at, const char *detail);
  int (*outbox)(struct store *s, const struct casc_msg *m, const char *status,
                const char *channel, const char *error, int64_t cost, int64_t at);
  /* Reads attempt id: 0, KK_ENOENT or KK_ESTORE. */
  int (*att_load)(struct store *s, int64_t id, struct casc_att *a);
  /* What attempt id costs as written so far: 0 or KK_ESTORE. */
  int (*att_cost)(struct store *s, int64_t id, int64_t *cost);
  /* Balances (store_money.h): the attempt of f (ATT_SET) was accepted by
     its provider and costs f->cost; the message is done. Each does nothing
     to a message without a hold. 0 or KK_ESTORE. */
  int (*charge)(struct casc_run *r, const struct cfsm_fx *f);
  int (*release)(struct casc_run *r);
  /* The attempt of f (ATT_SET) failed in a way its provider does not bill:
     what it was charged comes back, once (nothing when it was not). */
  int (*refund)(struct casc_run *r, const struct cfsm_fx *f);

  /*
   * What the operations of the cascade (casc_chan_result, casc_timeout,
   * casc_cancel) need of the backend.
   */
  /* Reads (and locks, where rows are locked) message id; by public id of
     an account. 0, KK_ENOENT or KK_ESTORE. */
  int (*msg_load)(struct store *s, int64_t id, struct casc_msg *m);
  int (*msg_find)(struct store *s, int64_t account_id, const char *public_id,
                  struct casc_msg *m);
  /* Scheduled message m cancelled at `at`: its row and its attempt's,
     its hold released. */
  int (*msg_cancel)(struct store *s, const struct casc_msg *m, int64_t at);
  /* The provider asked for attempt_id to be tried again at retry_at. */
  int (*att_retry)(struct store *s, int64_t attempt_id, int64_t retry_at, const char *error,
                   int counts_try);
  /* A status of attempt attempt_id (as casc_event; pre: the attempt as
     read already, or NULL). */
  int (*att_event)(struct store *s, int64_t attempt_id, const struct casc_att *pre,
                   const char *status, const char *provider_id, const char *error, int64_t at,
                   int units);
  /* The statuses provider_id reported before attempt_id had it, taken
     from where they wait: into held (at most CASC_HELD_MAX), *n of them.
     0 or KK_ESTORE. */
  int (*early)(struct store *s, int64_t attempt_id, const char *provider_id,
               struct casc_held *held, int *n);
};
/*
 * The operations each backend names alike, as static functions of its
 * cascade file (sqlite/sq_cascade.c, pg/pg_cascade.c) and its balances
 * (P: sq or pg, as P##_money_charge): its table lists these and sets the
 * others (price, before, att_load, msg_load, att_event) itself.
 */
#define CASC_OPS_ALIKE(P)                                                      \
  .extra = load_extra, .scope = chan_scope, .attempts = load_attempts,         \
  .att_set = fx_att_set, .att_add = fx_att_add, .decide = fx_decide,           \
  .msg_step = fx_msg_step, .msg_fin = fx_msg_fin, .msg_mark = fx_msg_mark,     \
  .event = event_row, .outbox = outbox_row, .att_cost = att_cost,              \
  .charge = P##_money_charge, .release = P##_money_release,                    \
  .refund = P##_money_refund, .msg_find = msg_find, .msg_cancel = msg_cancel,  \
  .att_retry = att_retry, .early = take_early

/*
 * One run of the rules on one message: what the store read for them, what
 * it found when they asked, and what carrying out their effects needs.
 */
struct casc_run {
  struct store *s;
  const struct casc_ops *ops;
  struct store_cascade_stats *stats;   /* the writer's counters */
  struct casc_msg *m;
  struct cfsm_msg cm;
  struct store_step steps[STORE_MAX_STEPS];
  int nsteps;
  json_t *extra;            /* the message's extra fields, parsed when a step starts */
  const char *addr[STORE_MAX_STEPS];   /* a step's address (borrowed from extra or m) */
  int64_t scope[STORE_MAX_STEPS];
  /* the event's attempt, for its row */
  const char *provider_id, *error;
  int64_t parts_sent;
  int unit_priced;          /* the event's attempt was priced by its route */
  int64_t unit_price;
  int64_t new_id;           /* the attempt the run started (CFSM_NEW_ATT) */
  struct cfsm_out out;
};

/* The SMS attempt a is charged its route's price per segment when the
   dispatcher priced it (u, the last part's submit_sm_resp). */
void store_money_route_price(struct casc_att *a, const struct store_sms_update *u);
/* What a charge of cost takes when held is left of its message's hold:
   cost, or held when cost is above it (logged, counted in
   r->stats->charges_capped): a charge never takes more than the hold. */
int64_t store_money_take(struct casc_run *r, int64_t cost, int64_t held);

/* Starts a run on m (the rules' view of its row and steps). */
void casc_run_init(struct casc_run *r, struct store *s, const struct casc_ops *ops,
                   struct store_cascade_stats *stats, struct casc_msg *m);
void casc_run_free(struct casc_run *r);
/* The rules, asked again until they need nothing more: a new message's
   first step at `at`; an event on attempt fa; step's deadline passing at
   `at` (fa NULL: the attempt is gone). 0 or KK_ESTORE. */
int casc_run_start(struct casc_run *r, int64_t at);
int casc_run_event(struct casc_run *r, const struct cfsm_att *fa, struct cfsm_event *ev,
                   const char *channel);
int casc_run_deadline(struct casc_run *r, const struct cfsm_att *fa, int step, int64_t at);
/* Carries out the effects in their order (rows through ops->write) and
   keeps the message's new state in r->m. 0, KK_EEXIST or KK_ESTORE. */
int casc_run_write(struct casc_run *r);
/* What a new message's row holds after its first step started. */
struct casc_first {
  int step;
  int64_t attempt_id;         /* 0: none */
  int64_t due_at, wait_until; /* 0: NULL */
  int done;
  int64_t cost;
  char status[16];
  char channel[20];
};

/*
 * The three runs every backend makes, on the writer thread inside the
 * batch's transaction; the backend loads the rows (its SQL, its locks) and
 * hands them over with its ops and its writer's counters.
 */
/* Starts the first usable step of message n (n->id set), whose row the
   caller inserts next with what *f receives; sets n->attempt_id and
   n->first_channel. 0, KK_EEXIST or KK_ESTORE. */
int casc_new(struct store *s, const struct casc_ops *ops, struct store_cascade_stats *stats,
             struct store_msg_new *n, struct casc_first *f);
/* A status of attempt a (row attempt_id) of message m, which it frees:
   provider_id may be NULL, units is what a "sent" bills. 0, KK_EEXIST or
   KK_ESTORE. */
int casc_event(struct store *s, const struct casc_ops *ops, struct store_cascade_stats *stats,
               struct casc_msg *m, const struct casc_att *a, int64_t attempt_id,
               const char *status, const char *provider_id, const char *error, int64_t at,
               int units);
/* Step `step` of message m (which it frees) ran out at `at`: nothing when
   the message is done or past that step; else the rules with its attempt
   as ops->att_load reads it (or gone). 0, KK_EEXIST or KK_ESTORE. */
int casc_deadline(struct store *s, const struct casc_ops *ops, struct store_cascade_stats *stats,
                  struct casc_msg *m, int step, int64_t at);

/* The operations of the cascade every backend carries out the same way
   (STORE_OP_CHAN_RESULT, STORE_OP_STEP_TIMEOUT, STORE_OP_MSG_CANCEL), with
   its ops and its writer's counters: a send's outcome; a step's deadline;
   cancelling a scheduled message. 0, KK_EEXIST or KK_ESTORE. */
int casc_chan_result(struct store *s, const struct casc_ops *ops, struct store_op *op);
int casc_timeout(struct store *s, const struct casc_ops *ops, struct store_cascade_stats *stats,
                 struct store_op *op);
int casc_cancel(struct store *s, const struct casc_ops *ops, struct store_op *op);
/* Applies the statuses provider_id reported before attempt_id had it
   (ops->early takes them). 0, KK_EEXIST or KK_ESTORE. */
int casc_early_apply(struct store *s, const struct casc_ops *ops, int64_t attempt_id,
                     const char *provider_id);
/* The event of message m and, when it has a callback URL, its outbox row. */
int casc_record_event(struct store *s, const struct casc_ops *ops, const struct casc_msg *m,
                      int64_t attempt_id, const char *status, const char *channel,
                      const char *error, int64_t cost, int64_t at);

/* The attempt id an effect names (CFSM_NEW_ATT: the one the run started). */
static inline int64_t casc_att_id(const struct casc_run *r, int64_t id) {
  return id == CFSM_NEW_ATT ? r->new_id : id;
}

#endif
