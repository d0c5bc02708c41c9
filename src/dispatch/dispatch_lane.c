/*
 * dispatch_lane.c - lane queues and rates (see dispatch_lane.h).
 */
#include "dispatch/dispatch_lane.h"

#include <stdlib.h>
#include <string.h>

#include "core/kk_mem.h"
#include "dispatch/dispatch_int.h"

void dispatch_lq_init(struct dispatch_lq *q) { memset(q, 0, sizeof *q); }

static struct dispatch_lsub **slot_of(struct dispatch_lq *q, int64_t account) {
  return &q->slot[(uint64_t)account % DISPATCH_LQ_SLOTS];
}

/* account's sub-queue, or NULL. */
static struct dispatch_lsub *sub_find(struct dispatch_lq *q, int64_t account) {
  struct dispatch_lsub *s = *slot_of(q, account);
  while (s && s->account != account) s = s->hnext;
  return s;
}

/* A new, empty sub-queue for account, in the ring just before cur (its turn
   comes after every account queued now). Allocates; sub_drop frees. */
static struct dispatch_lsub *sub_add(struct dispatch_lq *q, int64_t account) {
  struct dispatch_lsub *s = kk_xcalloc(1, sizeof *s);
  s->account = account;
  s->tail = &s->head;
  struct dispatch_lsub **sl = slot_of(q, account);
  s->hnext = *sl;
  *sl = s;
  if (q->cur == NULL) {
    s->ring = s;
    q->cur = q->prev = s;
  } else {
    s->ring = q->cur;
    q->prev->ring = s;
    q->prev = s;
  }
  return s;
}

/* Takes cur (empty) out of the ring and the table, and frees it. */
static void sub_drop(struct dispatch_lq *q) {
  struct dispatch_lsub *s = q->cur;
  struct dispatch_lsub **sl = slot_of(q, s->account);
  while (*sl != s) sl = &(*sl)->hnext;
  *sl = s->hnext;
  if (s->ring == s) {
    q->cur = q->prev = NULL;
  } else {
    q->prev->ring = s->ring;
    q->cur = s->ring;
  }
  free(s);
}

void dispatch_lq_push(struct dispatch_lq *q, struct job *j, int at_head) {
  struct dispatch_lsub *s = sub_find(q, j->account_id);
  if (s == NULL) s = sub_add(q, j->account_id);
  if (at_head) {
    j->next = s->head;
    s->head = j;
    if (s->tail == &s->head) s->tail = &j->next;
    /* its account's turn next: walk the ring to it (a rare push) */
    while (q->cur != s) {
      q->prev = q->cur;
      q->cur = q->cur->ring;
    }
  } else {
    j->next = NULL;
    *s->tail = j;
    s->tail = &j->next;
  }
  q->n++;
}

struct job *dispatch_lq_pop(struct dispatch_lq *q) {
  struct dispatch_lsub *s = q->cur;
  if (!s) return NULL;
  struct job *j = s->head;
  s->head = j->next;
  j->next = NULL;
  q->n--;
  if (s->head == NULL) {
    sub_drop(q);
  } else {
    q->prev = s;
    q->cur = s->ring;
  }
  return j;
}

struct job *dispatch_lq_peek(const struct dispatch_lq *q) { return q->cur ? q->cur->head : NULL; }

int dispatch_lq_each(const struct dispatch_lq *q, int (*fn)(struct job *j, void *arg), void *arg) {
  const struct dispatch_lsub *s = q->cur;
  if (!s) return 0;
  do {
    for (struct job *j = s->head; j; j = j->next) {
      int rc = fn(j, arg);
      if (rc) return rc;
    }
    s = s->ring;
  } while (s != q->cur);
  return 0;
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
    if (dispatch_lq_peek(&q[l]) == NULL) continue;
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
