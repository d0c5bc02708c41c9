/*
 * dispatch_delay.h - the jobs that wait for a time (a retry's backoff, a
 * message deferred by the rules or scheduled): a binary min-heap on
 * job->not_before, ties in the order they came (FIFO). Push, pop and removal
 * are O(log n), so a mass deferral (quiet hours on a big campaign) costs the
 * accepts next to it nothing noticeable. Each job knows its place in the
 * heap (job->delay_at, -1 when not in it). The heap's array grows to the
 * jobs it holds (which the dispatcher's max_queued bounds) and shrinks when
 * they leave. Pure; loop thread.
 */
#ifndef DISPATCH_DELAY_H
#define DISPATCH_DELAY_H

#include <stdint.h>

struct job;

struct dispatch_dq {
  struct job **a;   /* owned array; the jobs are not */
  int n, cap;
  uint64_t seq;     /* order of arrival, for ties */
};

void dispatch_dq_init(struct dispatch_dq *q);
/* Frees the array (not the jobs). */
void dispatch_dq_fini(struct dispatch_dq *q);
/* Adds j, keyed by j->not_before. */
void dispatch_dq_push(struct dispatch_dq *q, struct job *j);
/* The job due first, left in place; NULL when empty. */
struct job *dispatch_dq_peek(const struct dispatch_dq *q);
/* The job due first, taken off; NULL when empty. */
struct job *dispatch_dq_pop(struct dispatch_dq *q);
/* Takes j (which is in q) off, wherever it is. */
void dispatch_dq_remove(struct dispatch_dq *q, struct job *j);

#endif
