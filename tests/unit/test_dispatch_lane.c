/* test_dispatch_lane.c - a route's two lanes: queues in order per account
   and fair between accounts, stream before bulk, a rate per lane that lets
   bulk take what stream leaves. */
#include <string.h>

#include "dispatch/dispatch_int.h"
#include "dispatch/dispatch_lane.h"
#include "kk_test.h"

KK_TEST(dispatch_lane_queue_fifo_and_head) {
  struct dispatch_lq q;
  dispatch_lq_init(&q);
  ASSERT(dispatch_lq_pop(&q) == NULL);
  struct job j[4];
  memset(j, 0, sizeof j);
  dispatch_lq_push(&q, &j[0], 0);
  dispatch_lq_push(&q, &j[1], 0);
  dispatch_lq_push(&q, &j[2], 1);   /* back first in line (throttled) */
  ASSERT_EQ(q.n, 3);
  ASSERT(dispatch_lq_pop(&q) == &j[2]);
  ASSERT(dispatch_lq_pop(&q) == &j[0]);
  ASSERT(dispatch_lq_pop(&q) == &j[1]);
  ASSERT(dispatch_lq_pop(&q) == NULL);
  ASSERT_EQ(q.n, 0);
  /* the tail is right again after emptying, and after a head push on empty */
  dispatch_lq_push(&q, &j[3], 1);
  dispatch_lq_push(&q, &j[0], 0);
  ASSERT(dispatch_lq_pop(&q) == &j[3]);
  ASSERT(dispatch_lq_pop(&q) == &j[0]);
  ASSERT(q.cur == NULL && q.prev == NULL && q.n == 0);
}

/* One account's backlog does not hold another's job: the accounts take one
   job each in turn, each account's in their order; a job sent back goes
   first, its account's turn next; a cancel finds a job in any account. */
static int is_job(struct job *j, void *arg) { return j == arg; }

KK_TEST(dispatch_lane_queue_takes_accounts_in_turn) {
  struct dispatch_lq q;
  dispatch_lq_init(&q);
  struct job a[5], b[2], c;
  memset(a, 0, sizeof a);
  memset(b, 0, sizeof b);
  memset(&c, 0, sizeof c);
  for (int i = 0; i < 5; i++) a[i].account_id = 7;
  for (int i = 0; i < 2; i++) b[i].account_id = 7 + DISPATCH_LQ_SLOTS;   /* same slot */
  c.account_id = 9;
  for (int i = 0; i < 5; i++) dispatch_lq_push(&q, &a[i], 0);
  dispatch_lq_push(&q, &b[0], 0);
  dispatch_lq_push(&q, &b[1], 0);
  ASSERT_EQ(q.n, 7);
  ASSERT(dispatch_lq_each(&q, is_job, &b[1]) == 1);
  ASSERT(dispatch_lq_each(&q, is_job, &c) == 0);
  ASSERT(dispatch_lq_peek(&q) == &a[0]);
  ASSERT(dispatch_lq_pop(&q) == &a[0]);
  ASSERT(dispatch_lq_pop(&q) == &b[0]);
  /* a newcomer waits for the accounts queued before it, not their backlogs */
  dispatch_lq_push(&q, &c, 0);
  ASSERT(dispatch_lq_pop(&q) == &a[1]);
  ASSERT(dispatch_lq_pop(&q) == &b[1]);
  ASSERT(dispatch_lq_pop(&q) == &c);
  /* b's job sent back: first in line, though a's turn came */
  dispatch_lq_push(&q, &b[1], 1);
  ASSERT(dispatch_lq_peek(&q) == &b[1]);
  ASSERT(dispatch_lq_pop(&q) == &b[1]);
  for (int i = 2; i < 5; i++) ASSERT(dispatch_lq_pop(&q) == &a[i]);
  ASSERT(dispatch_lq_pop(&q) == NULL);
  ASSERT(q.cur == NULL && q.n == 0);
  for (int i = 0; i < DISPATCH_LQ_SLOTS; i++) ASSERT(q.slot[i] == NULL);
}

/* Takes what is left in both lanes (their accounts' sub-queues are freed
   as they empty). */
static void drain(struct dispatch_lq q[DISPATCH_LANE_COUNT]) {
  for (int l = 0; l < DISPATCH_LANE_COUNT; l++)
    while (dispatch_lq_pop(&q[l])) {
    }
}

KK_TEST(dispatch_lane_stream_always_first) {
  struct dispatch_lq q[DISPATCH_LANE_COUNT];
  struct dispatch_bucket b[DISPATCH_LANE_COUNT];
  for (int l = 0; l < DISPATCH_LANE_COUNT; l++) {
    dispatch_lq_init(&q[l]);
    dispatch_bucket_init(&b[l], 0, 0);
  }
  int64_t wait;
  ASSERT_EQ(dispatch_lane_next(q, b, 0, &wait), -1);
  ASSERT_EQ(wait, 0);
  struct job bulk[3], stream;
  memset(bulk, 0, sizeof bulk);
  memset(&stream, 0, sizeof stream);
  for (int i = 0; i < 3; i++) dispatch_lq_push(&q[DISPATCH_LANE_BULK], &bulk[i], 0);
  ASSERT_EQ(dispatch_lane_next(q, b, 0, &wait), DISPATCH_LANE_BULK);
  /* a stream job that comes after queued bulk ones goes before them */
  dispatch_lq_push(&q[DISPATCH_LANE_STREAM], &stream, 0);
  ASSERT_EQ(dispatch_lane_next(q, b, 0, &wait), DISPATCH_LANE_STREAM);
  ASSERT(dispatch_lq_pop(&q[DISPATCH_LANE_STREAM]) == &stream);
  ASSERT_EQ(dispatch_lane_next(q, b, 0, &wait), DISPATCH_LANE_BULK);
  drain(q);
}

KK_TEST(dispatch_lane_rates) {
  struct dispatch_bucket b;
  dispatch_bucket_init(&b, 0, 0);
  for (int i = 0; i < 1000; i++) ASSERT(dispatch_bucket_take(&b, 0));
  /* 100 a second: bursts of 5, then one every 10 ms */
  dispatch_bucket_init(&b, 100, 1000);
  int got = 0;
  while (dispatch_bucket_take(&b, 1000)) got++;
  ASSERT_EQ(got, 5);
  ASSERT(dispatch_bucket_wait(&b, 1000) > 0 && dispatch_bucket_wait(&b, 1000) <= 11);
  ASSERT(!dispatch_bucket_take(&b, 1005));
  ASSERT(dispatch_bucket_take(&b, 1010));
  got = 0;
  for (int64_t t = 1010; t <= 2010; t++)
    while (dispatch_bucket_take(&b, t)) got++;
  ASSERT(got >= 99 && got <= 101);
  /* slow rates still give one token */
  dispatch_bucket_init(&b, 1, 0);
  ASSERT(dispatch_bucket_take(&b, 0));
  ASSERT(!dispatch_bucket_take(&b, 500));
  ASSERT(dispatch_bucket_take(&b, 1000));
}

KK_TEST(dispatch_lane_bulk_takes_what_stream_leaves) {
  struct dispatch_lq q[DISPATCH_LANE_COUNT];
  struct dispatch_bucket b[DISPATCH_LANE_COUNT];
  for (int l = 0; l < DISPATCH_LANE_COUNT; l++) dispatch_lq_init(&q[l]);
  dispatch_bucket_init(&b[DISPATCH_LANE_STREAM], 1, 0);   /* one a second */
  dispatch_bucket_init(&b[DISPATCH_LANE_BULK], 2, 0);     /* two a second */
  struct job s[2], k[2];
  memset(s, 0, sizeof s);
  memset(k, 0, sizeof k);
  for (int i = 0; i < 2; i++) {
    dispatch_lq_push(&q[DISPATCH_LANE_STREAM], &s[i], 0);
    dispatch_lq_push(&q[DISPATCH_LANE_BULK], &k[i], 0);
  }
  int64_t wait;
  ASSERT_EQ(dispatch_lane_next(q, b, 0, &wait), DISPATCH_LANE_STREAM);
  ASSERT(dispatch_bucket_take(&b[DISPATCH_LANE_STREAM], 0));
  /* stream is out of tokens: bulk goes */
  ASSERT_EQ(dispatch_lane_next(q, b, 0, &wait), DISPATCH_LANE_BULK);
  ASSERT(dispatch_bucket_take(&b[DISPATCH_LANE_BULK], 0));
  /* both wait now: the sooner of the two */
  ASSERT_EQ(dispatch_lane_next(q, b, 10, &wait), -1);
  ASSERT(wait > 0 && wait <= 491);
  ASSERT_EQ(dispatch_lane_next(q, b, 1000, &wait), DISPATCH_LANE_STREAM);
  drain(q);
}
