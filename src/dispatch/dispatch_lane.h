/*
 * dispatch_lane.h - a route's two lanes: a FIFO queue of jobs per lane
 * (stream: service and transactional; bulk: advertising) and a token bucket
 * per lane for its own rate. The route's pump takes from stream whenever
 * stream has a job and a token, and from bulk with what is left. Pure (the
 * time is given); loop thread.
 */
#ifndef DISPATCH_LANE_H
#define DISPATCH_LANE_H

#include <stdint.h>

#include "dispatch/dispatch_price.h"

struct job;

/* A lane's queue of jobs, linked through job->next. */
struct dispatch_lq {
  struct job *head, **tail;
  int n;
};

void dispatch_lq_init(struct dispatch_lq *q);
void dispatch_lq_push(struct dispatch_lq *q, struct job *j, int at_head);
/* The head, taken off; NULL when empty. */
struct job *dispatch_lq_pop(struct dispatch_lq *q);

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
