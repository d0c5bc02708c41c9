/*
 * dispatch_lane.c - lane queues and rates (see dispatch_lane.h).
 */
#include "dispatch/dispatch_lane.h"

#include "dispatch/dispatch_int.h"

void dispatch_lq_init(struct dispatch_lq *q) {
  q->head = NULL;
  q->tail = &q->head;
  q->n = 0;
}

void dispatch_lq_push(struct dispatch_lq *q, struct job *j, int at_head) {
  if (at_head) {
    j->next = q->head;
    q->head = j;
    if (q->tail == &q->head) q->tail = &j->next;
  } else {
    j->next = NULL;
    *q->tail = j;
    q->tail = &j->next;
  }
  q->n++;
}

struct job *dispatch_lq_pop(struct dispatch_lq *q) {
  struct job *j = q->head;
  if (!j) return NULL;
  q->head = j->next;
  if (q->head == NULL) q->tail = &q->head;
  j->next = NULL;
  q->n--;
  return j;
}

static double burst_of(int rate) { return rate >= 20 ? rate / 20.0 : 1.0; }

void dispatch_bucket_init(struct dispatch_bucket *b, int rate, int64_t now_ms) {
  b->rate = rate;
  b->tokens = rate > 0 ? burst_of(rate) : 0;
  b->last_ms = now_ms;
}

static void refill(struct dispatch_bucket *b, int64_t now_ms) {
  if (now_ms <= b->last_ms) return;
  b->tokens += (double)(now_ms - b->last_ms) * b->rate / 1000.0;
  double max = burst_of(b->rate);
  if (b->tokens > max) b->tokens = max;
  b->last_ms = now_ms;
}

int dispatch_bucket_take(struct dispatch_bucket *b, int64_t now_ms) {
  if (b->rate <= 0) return 1;
  refill(b, now_ms);
  if (b->tokens < 1.0) return 0;
  b->tokens -= 1.0;
  return 1;
}

int64_t dispatch_bucket_wait(struct dispatch_bucket *b, int64_t now_ms) {
  if (b->rate <= 0) return 0;
  refill(b, now_ms);
  if (b->tokens >= 1.0) return 0;
  int64_t ms = (int64_t)((1.0 - b->tokens) * 1000.0 / b->rate) + 1;
  return ms;
}

int dispatch_lane_next(struct dispatch_lq q[DISPATCH_LANE_COUNT],
                       struct dispatch_bucket b[DISPATCH_LANE_COUNT], int64_t now_ms,
                       int64_t *wait_ms) {
  int64_t wait = 0;
  for (int l = 0; l < DISPATCH_LANE_COUNT; l++) {
    if (q[l].head == NULL) continue;
    int64_t w = dispatch_bucket_wait(&b[l], now_ms);
    if (w == 0) {
      *wait_ms = 0;
      return l;
    }
    if (wait == 0 || w < wait) wait = w;
  }
  *wait_ms = wait;
  return -1;
}
