/*
 * dispatch_int.h - what the dispatcher's files share and nobody else uses:
 * jobs, routes and the dispatcher itself, and the functions one file calls
 * in another.
 *
 * dispatch.c       the dispatcher: new/start/stop/free, the due scan, notes,
 *                  the SMS driver's sender
 * dispatch_send.c  jobs, route queues, the delayed heap and held list, submit_sm
 *                  and the SMSC's answers to it
 * dispatch_deliver.c  what the SMSC delivers: receipts and MO
 * dispatch_route.c routes and their sessions, their JSON and metrics
 *
 * A job is one message on its way out: its text, which parts still need a
 * submit_sm, which are in flight. Jobs wait in their route's FIFO queue (or in
 * the delayed heap while a retry backoff or a deferral runs). A submit's token is the job's
 * address with the part index in its low 4 bits (jobs are 16-byte aligned);
 * a job is freed only when no part of it is in flight, so a token never
 * outlives its job.
 */
#ifndef DISPATCH_INT_H
#define DISPATCH_INT_H

#include <stdint.h>
#include <string.h>
#include <uv.h>

#include "dispatch/dispatch.h"
#include "dispatch/dispatch_delay.h"
#include "dispatch/dispatch_lane.h"
#include "smpp/smpp_client.h"
#include "sms/sms_enc.h"
#include "store/store.h"

#define LOGCTX "dispatch"
#define SCAN_BATCH 1000
#define SCAN_LOCKED_MS 20         /* a scan held by a locked row waits this long */
#define AHEAD_MAX 10000           /* stream jobs past max_queued while catching up */
#define SMS_LEASE_MS (10LL * 60 * 1000)  /* how long an SMS the scan claims is this node's */

#define ROUTE_ERR_RUN 5           /* errors in a row that take a route down */

struct route;
struct dispatch_hlr_wait;

struct job {
  struct job *next;          /* in a route queue, the orphan or held list */
  struct dispatch *d;
  int64_t msg_id;
  int64_t attempt_id;
  int64_t account_id;
  int64_t expires_at;
  int64_t not_before;        /* delayed until (ms) */
  uint64_t delay_seq;        /* arrival in the delayed heap (ties go FIFO) */
  int delay_at;              /* index in the delayed heap; -1: not in it */
  char to[24];
  char sender[24];
  char route[64];
  char *text;                /* owned */
  struct sms_encoded *enc;   /* owned; made at the first submit */
  uint32_t pending;          /* parts (bit i = part i+1) still to submit */
  uint32_t inflight;         /* parts submitted, no answer yet */
  int nparts;                /* 0 until encoded */
  int resumed;               /* reloaded with some parts already accepted: pending is set */
  int tries;                 /* temporary failures so far */
  int queued;                /* 1 while in a queue or list */
  int ended;                 /* failed or expired: drop when nothing in flight */
  uint8_t lane;              /* enum dispatch_lane, from the message's class */
  uint8_t recheck;           /* the rules again once it is due (pol_due.h) */
  uint8_t scheduled;         /* the message is scheduled: the store says whether it
                                still goes once it is due (store_sms_begin) */
  char msg_class[16];
  uint8_t chosen;            /* the route is the dispatcher's choice (may fail over) */
  uint8_t resolved;          /* operator known (register and HLR asked) */
  uint8_t roaming;           /* the HLR says the subscriber is roaming */
  int64_t price;             /* per segment on its route, hundredths; -1: none */
  char inn[16];              /* the operator's INN ("" unknown) */
  char op[80];               /* the operator's name ("" unknown) */
  struct dispatch_hlr_wait *wait;  /* HLR lookup under way (in d->resolving) */
};

struct route_counters {
  uint64_t accepted, submitted_parts, submit_errors, throttled, retried, lost;
  uint64_t failed, expired;
  uint64_t dlr_delivered, dlr_failed, dlr_expired, dlr_unmatched, mo;
};

struct route {
  struct route *next;
  struct dispatch *d;
  struct dispatch_route_cfg cfg;
  struct smpp_client *client;   /* NULL once closing */
  struct dispatch_lq q[DISPATCH_LANE_COUNT];  /* stream first, then bulk */
  struct dispatch_bucket bk[DISPATCH_LANE_COUNT];
  uv_timer_t *lane_timer;       /* wakes the pump when a lane's rate allows */
  int queued;
  int64_t bound_at;             /* last seen bound (or created) */
  int err_run;                  /* signs of trouble in a row (dispatch_status_route_trouble,
                                   submits without an answer) */
  int64_t down_until;           /* down after an error run until then */
  int down;                     /* as last looked at by the health timer */
  uint8_t ref;                  /* concatenation reference, rotates */
  struct route_counters n;
  uint64_t gen;                 /* unique per route object, for deferred answers */
  int removed;                  /* replaced or deleted; freed when closed */
};

struct dispatch {
  uv_loop_t *loop;
  struct store *store;
  pol_due_fn due_fn;            /* the rules again when due; NULL: none */
  void *due_ud;
  struct dispatch_opts opts;
  struct route *routes;         /* sorted by name */
  struct route *dead;           /* closing, waiting for closed_cb */
  struct job *orphans;          /* jobs whose route does not exist */
  struct dispatch_dq delayed;   /* waiting for their not_before */
  struct job *held;             /* jobs of suspended accounts (opts.hold) */
  struct job *resolving;        /* jobs waiting for an HLR answer */
  uv_timer_t health_timer;      /* routes up or down, every 500 ms */
  uv_timer_t delay_timer;
  uv_timer_t hold_timer;        /* looks at the held jobs every second */
  uv_check_t check;             /* refills from the store when asked */
  int jobs;                     /* jobs alive */
  int backlog;                  /* 1: some due messages are only in the store */
  int64_t cursor;               /* highest message id loaded */
  uint64_t scan_after;          /* loop ms: no scan before (a locked row held it) */
  int stopping;
  int closing_clients;
  void (*stop_done)(void *);
  void *stop_ud;
  struct store_due *scan_rows;  /* SCAN_BATCH rows for refill() */
  int64_t *ahead;               /* ids of stream messages taken from their notes
                                   past the cursor while catching up (ascending;
                                   the scan skips them) */
  int nahead, ahead_at, ahead_cap;
  uint64_t next_gen;            /* gen of the next route object */
  int unsettled;                /* parts answered by the SMSC, not yet committed */
  int unsettled_cap;            /* sum of window x sessions over the routes */
  int bulk_stalled;             /* bulk waits for answers to be committed (the
                                   next commit of one pumps the routes again) */
};

static inline int64_t now_ms(void) { return store_now_ms(); }

static inline struct route *route_find(struct dispatch *d, const char *name) {
  for (struct route *r = d->routes; r; r = r->next)
    if (strcmp(r->cfg.smpp.name, name) == 0) return r;
  return NULL;
}

/* ---- dispatch_send.c ---- */

/* A new job (owned by the dispatcher, counted in d->jobs; never NULL). */
struct job *dispatch_job_new(struct dispatch *d);
/* Frees j and what it owns. */
void dispatch_job_free(struct dispatch *d, struct job *j);
/* Puts a job where it can next make progress: the delayed heap, its route's
   queue (at the head or the tail), or the orphans when the route is missing. */
void dispatch_job_route(struct dispatch *d, struct job *j, int at_head);
void dispatch_queue_push(struct route *r, struct job *j, int at_head);
/* The job at the head of r's queue, taken off it; NULL when empty. */
struct job *dispatch_queue_pop(struct route *r);
/* A store callback that logs a failure (arg unused). */
void dispatch_store_done_log(void *arg, int rc);
/* Submits from the heads of r's lanes while the route has capacity. */
void dispatch_pump(struct route *r);
/* Recomputes d->unsettled_cap from the routes' windows and sessions. */
void dispatch_recount_cap(struct dispatch *d);
void dispatch_on_delay_timer(uv_timer_t *t);
void dispatch_on_hold_timer(uv_timer_t *t);
/* The route sessions' callbacks (struct smpp_client_cbs; ud is the route). */
void dispatch_on_resp(void *ud, uint64_t token, uint32_t status, const char *message_id);
void dispatch_on_lost(void *ud, uint64_t token);
void dispatch_on_ready(void *ud);

/* ---- dispatch_choose.c ---- */

/* A job just made from a due row: finds its operator (register, HLR),
   applies the roaming rule and chooses its route, then routes it. */
void dispatch_job_place(struct dispatch *d, struct job *j);
/* 1 when r can take messages now (bound, or not unbound for long, and not
   after a run of errors). */
int dispatch_route_up(const struct route *r, int64_t now);
/* Chooses again for a chosen job whose route is down; 1 when it moved. */
int dispatch_rechoose(struct dispatch *d, struct job *j);
void dispatch_on_health_timer(uv_timer_t *t);
/* A job in d->resolving is taken off it (cancelling its lookup). */
void dispatch_resolving_drop(struct dispatch *d, struct job *j);

/* ---- dispatch_deliver.c ---- */

void dispatch_on_deliver(void *ud, const struct smpp_pdu *pdu, uint32_t *status);

/* ---- dispatch_route.c ---- */

/* Takes r off the routes and stops its sessions; it is freed when they are
   closed, and its queued jobs become orphans. */
void dispatch_route_retire(struct dispatch *d, struct route *r);

#endif
