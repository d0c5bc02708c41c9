/*
 * dispatch_lane.h - a route's two lanes (stream: service and transactional;
 * bulk: advertising): a queue of jobs per lane, fair between accounts (each
 * account's jobs in their order, the accounts taking one job each in turn,
 * so one account's backlog does not hold another's message), and a token
 * bucket per lane for its own rate. The route's pump takes from stream
 * whenever stream has a job and a token, and from bulk with what is left.
 * Pure (the time is given); loop thread.
 */
#ifndef DISPATCH_LANE_H
#define DISPATCH_LANE_H

#include <stdint.h>

#include "dispatch/dispatch_price.h"

struct job;

/* One account's jobs in a lane, linked through job->next, in their order. */
struct dispatch_lsub {
  int64_t account;
  struct job *head, **tail;
  struct dispatch_lsub *ring;    /* the next account with jobs, in turn (circular) */
  struct dispatch_lsub *hnext;   /* in the lane's table by account */
};

#define DISPATCH_LQ_SLOTS 64

/* A lane's queue: the accounts with jobs in a ring, cur's turn next. */
struct dispatch_lq {
  struct dispatch_lsub *cur, *prev;   /* prev->ring == cur; NULL when empty */
  struct dispatch_lsub *slot[DISPATCH_LQ_SLOTS];
  int n;                              /* jobs */
};

void dispatch_lq_init(struct dispatch_lq *q);
/* Queues j (its account_id says whose) behind its account's jobs; at_head:
   ahead of them, and its account's turn next (a job sent back: throttled). */
void dispatch_lq_push(struct dispatch_lq *q, struct job *j, int at_head);
/* The next job in turn, taken off; NULL when empty. */
struct job *dispatch_lq_pop(struct dispatch_lq *q);
/* The job dispatch_lq_pop would take, left in place; NULL when empty. */
struct job *dispatch_lq_peek(const struct dispatch_lq *q);
/* Calls fn on each queued job until it returns nonzero; returns that. */
int dispatch_lq_each(const struct dispatch_lq *q, int (*fn)(struct job *j, void *arg), void *arg);

/* A lane's rate: rate tokens a second, bursts of at most a twentieth of a
   second's worth (at least one). rate 0: no limit. */
struct dispatch_bucket {
  int rate;
  double tokens;
  int64_t last_ms;
};

void dispatch_bucket_init(struct dispatch_bucket *b, int rate, int64_t now_ms);
/* 1 and a token taken when one is there at now_ms; else 0. */
int dispatch_bucket_take(struct dispatch_bucket *b, int64_t now_ms);
/* Milliseconds until the next token (0: one is there). */
int64_t dispatch_bucket_wait(struct dispatch_bucket *b, int64_t now_ms);

/* The lane the pump serves next: stream when it has a job and a token, else
   bulk likewise; -1 when neither can go now (*wait_ms: how long until a
   waiting lane's next token, 0 when both are empty). */
int dispatch_lane_next(struct dispatch_lq q[DISPATCH_LANE_COUNT],
                       struct dispatch_bucket b[DISPATCH_LANE_COUNT], int64_t now_ms,
                       int64_t *wait_ms);

#endif
