/*
 * store_campaign.h - campaigns in the store (store_campaign.c): a
 * campaign's settings (the JSON of PUT /v1/campaigns/{name}) and status,
 * and its recipients, each with its variant, planned time, message and
 * status. The same SQL runs on both backends (store_backend.sql).
 *
 * Statuses: a campaign is draft, planning (its audience being resolved and
 * planned), running, paused, done or cancelled; a recipient is planned
 * (waiting for its time), created (its message made: message holds the id),
 * rejected (the accept path refused it: reason), cancelled or expired. A
 * recipient refused for a passing reason (no route now) stays planned, later,
 * with its tries counted.
 */
#ifndef STORE_CAMPAIGN_H
#define STORE_CAMPAIGN_H

#include <stdint.h>

#include "store/store.h"

#define STORE_CAMP_BATCH 1000       /* recipients of one write or one due read */
#define STORE_CAMP_LIST_MAX 200     /* campaigns or recipients of one page */
#define STORE_CAMP_NSTATUS 5        /* recipient statuses, in this order: */
extern const char *const store_camp_rcpt_statuses[STORE_CAMP_NSTATUS];

struct store_camp_rcpt {
  int64_t seq;              /* 1, 2, ... in the order of the audience */
  char phone[16];
  int variant;              /* index into the campaign's variants */
  int64_t planned_at;       /* UTC ms; 0 when it could not be placed */
  char *vars;               /* JSON object of the contact's fields (malloc'd; NULL: none) */
  char status[12];
  char message[40];         /* public id once created */
  char reason[48];          /* the refusal's code */
  int tries;                /* times a message was refused for a passing reason */
};
void store_camp_rcpt_free(struct store_camp_rcpt *r, int n);

struct store_campaign {
  char name[STORE_CAMPAIGN_MAX + 1];
  char status[12];
  char *spec;               /* malloc'd JSON */
  int64_t recipients;       /* planned so far (all of them once running) */
  /* where its planning is, as of its last batch stored (STORE_CAMP_ADD):
     the audience read up to this phone (given phones: this many of them, in
     decimal), the next free send instant at its rate, the gap between two
     sends (-1: not known yet) */
  char plan_after[16];
  int64_t plan_slot, plan_gap;
  int64_t created_at, updated_at, started_at, finish_at;
  int64_t count[STORE_CAMP_NSTATUS];   /* recipients by status: left 0 by the reads
                                          below, see store_camp_rcpt_counts */
};
void store_campaign_fini(struct store_campaign *c);

enum store_camp_kind {
  STORE_CAMP_PUT,           /* spec saved while draft (or new): ok 0 otherwise */
  STORE_CAMP_STATUS,        /* from one of `from` to `to` (see below) */
  STORE_CAMP_ADD,           /* a batch of the planning campaign's rows inserted (seq, phone,
                               variant, planned_at, vars, status) with where its planning
                               is after them (plan_*), unless it is no longer planning or
                               another owner holds it: ok. recipients: the campaign's count
                               after them; last: it is then running */
  STORE_CAMP_SET,           /* rows' status, message, reason, planned_at and tries
                               set (by seq) while planned */
  STORE_CAMP_EXPIRE,        /* every planned recipient expired */
  STORE_CAMP_LEASE,         /* the planning or running campaign held by `owner` until lease_until,
                               unless another owner holds it: ok */
};

/* One write; the caller's until done. */
struct store_camp_op {
  enum store_camp_kind kind;
  int64_t account_id;
  char name[STORE_CAMPAIGN_MAX + 1];
  int64_t at;
  const char *spec;         /* PUT */
  const char *from;         /* STATUS: the statuses it may change from, ",a,b," */
  char to[12];              /* STATUS: the new one. cancelled: planned recipients
                               cancelled too; planning: planned from the start (its
                               rows deleted); done: only when none is planned */
  int64_t recipients;       /* ADD, out: how many are planned */
  int64_t finish_at;        /* ADD: the last planned time of these rows */
  struct store_camp_rcpt *rows;   /* ADD, SET */
  int n;
  char owner[40];           /* LEASE; ADD: the lease it is written under */
  int64_t lease_until;
  char plan_after[16];      /* ADD: the campaign's plan_* after these rows */
  int64_t plan_slot, plan_gap;
  int last;                 /* ADD: the last batch */
  /* out */
  int found;                /* the campaign exists */
  int ok;                   /* it was changed */
  char status[12];          /* its status after */
};
void store_campaign_write(struct store *s, struct store_camp_op *op, store_done_cb done,
                          void *arg);

/* Reads on the pool; done(arg, rc) with 0, KK_ENOENT or KK_ESTORE. out is
   borrowed until then. */
void store_campaign_get_async(struct store *s, int64_t account_id, const char *name,
                              struct store_campaign *out, store_done_cb done, void *arg);
/* A page of the account's campaigns after `after` (name order); *n rows
   (spec, counts left empty), next "" at the end. */
void store_campaigns_list_async(struct store *s, int64_t account_id, const char *after,
                                int limit, struct store_campaign *out, int *n, char *next,
                                store_done_cb done, void *arg);
/* A page of a campaign's recipients with seq > after (status NULL: any);
   vars not read. */
void store_camp_rcpts_async(struct store *s, int64_t account_id, const char *name,
                            const char *status, int64_t after, int limit,
                            struct store_camp_rcpt *out, int *n, store_done_cb done, void *arg);
/* Up to limit planned recipients due at now (planned_at <= now), earliest
   first, with vars; *next the planned time of the next one (0: none). */
void store_camp_due_async(struct store *s, int64_t account_id, const char *name, int64_t now,
                          int limit, struct store_camp_rcpt *out, int *n, int64_t *next,
                          store_done_cb done, void *arg);
/* Campaigns of any account in planning or running (up to max), with spec. */
struct store_camp_ref {
  int64_t account_id;
  char name[STORE_CAMPAIGN_MAX + 1];
  char status[12];
};
void store_camps_active_async(struct store *s, struct store_camp_ref *out, int max, int *n,
                              store_done_cb done, void *arg);

/* One recipient of the export, with its message's state when it has one. */
struct store_camp_export_row {
  struct store_camp_rcpt r;   /* vars borrowed for the call */
  char msg_status[12];        /* "" without a message */
  char channel[20];
  int64_t cost;
  int64_t created_at, updated_at;
  int done;                   /* the message reached its final state */
  int64_t clicks;             /* on its tracked links (store_link.h), every channel */
};
typedef int (*store_camp_export_fn)(void *arg, const struct store_camp_export_row *row);
/* Each recipient of the campaign in seq order to fn on a pool thread, read
   STORE_CAMP_BATCH at a time (never the whole campaign at once); fn
   returns nonzero to stop (that value becomes rc). KK_ENOENT: no such
   campaign. */
void store_camp_export_async(struct store *s, int64_t account_id, const char *name,
                             store_camp_export_fn fn, void *fn_arg, store_done_cb done,
                             void *arg);

/* A campaign's figures as kept while it goes (by the store, in the
   transaction of each change): one row per variant, channel and status. */
#define STORE_CAMP_COUNTS_MAX 2048
struct store_camp_count {
  int variant;              /* -1: messages sent with the campaign's name by the API */
  char channel[20];         /* "" for recipients and messages not yet on a channel */
  char status[24];          /* a message status; "opted_out"; or "r:" and a recipient's */
  int64_t n;                /* messages (recipients, opt-outs) */
  int64_t cost, sms_only_cost;
  int64_t twice;            /* second deliveries */
  int64_t twice_msgs;       /* messages delivered twice */
};
/* The campaign's rows into out (up to max; *n), and its settings (*spec,
   malloc'd; NULL when there is no campaign object of that name, only
   messages sent with it). KK_ENOENT: neither. */
void store_camp_counts_async(struct store *s, int64_t account_id, const char *name,
                             struct store_camp_count *out, int max, int *n, char **spec,
                             store_done_cb done, void *arg);
/* The recipients by status (count[STORE_CAMP_NSTATUS], indexed as
   store_camp_rcpt_statuses) that the n rows of store_camp_counts_async hold:
   their "r:" rows summed over variants. */
void store_camp_rcpt_counts(const struct store_camp_count *rows, int n, int64_t *count);

/* The columns where a campaign's planning is (SQLite's migration 27,
   PostgreSQL's 21). */
#define STORE_CAMP_PLAN_MIGRATION                                              \
  ("ALTER TABLE campaigns ADD COLUMN plan_after TEXT NOT NULL DEFAULT '';"     \
   "ALTER TABLE campaigns ADD COLUMN plan_slot BIGINT NOT NULL DEFAULT 0;"     \
   "ALTER TABLE campaigns ADD COLUMN plan_gap BIGINT NOT NULL DEFAULT -1;")

#endif
