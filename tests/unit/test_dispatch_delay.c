/* test_dispatch_delay.c - the delayed jobs' heap: due order, ties in the
   order they came, removal from anywhere, and a large random run checked
   against a sort. */
#include <stdlib.h>
#include <string.h>

#include "dispatch/dispatch_delay.h"
#include "dispatch/dispatch_int.h"
#include "kk_test.h"

KK_TEST(dispatch_delay_order_and_ties) {
  struct dispatch_dq q;
  dispatch_dq_init(&q);
  ASSERT(dispatch_dq_peek(&q) == NULL);
  ASSERT(dispatch_dq_pop(&q) == NULL);
  struct job j[6];
  memset(j, 0, sizeof j);
  int64_t at[6] = {30, 10, 20, 10, 30, 10};
  for (int i = 0; i < 6; i++) {
    j[i].not_before = at[i];
    dispatch_dq_push(&q, &j[i]);
  }
  ASSERT_EQ(q.n, 6);
  ASSERT(dispatch_dq_peek(&q) == &j[1]);
  /* 10s in the order pushed, then 20, then the 30s in order */
  int want[6] = {1, 3, 5, 2, 0, 4};
  for (int i = 0; i < 6; i++) {
    struct job *got = dispatch_dq_pop(&q);
    ASSERT(got == &j[want[i]]);
    ASSERT_EQ(got->delay_at, -1);
  }
  ASSERT(dispatch_dq_pop(&q) == NULL);
  dispatch_dq_fini(&q);
}

KK_TEST(dispatch_delay_remove_anywhere) {
  struct dispatch_dq q;
  dispatch_dq_init(&q);
  struct job j[10];
  memset(j, 0, sizeof j);
  for (int i = 0; i < 10; i++) {
    j[i].not_before = 100 - i * 7 % 31;
    dispatch_dq_push(&q, &j[i]);
  }
  /* the first, a middle one and the last in the array */
  struct job *first = dispatch_dq_peek(&q);
  dispatch_dq_remove(&q, first);
  dispatch_dq_remove(&q, &j[5]);   /* j[4] is the first */
  dispatch_dq_remove(&q, q.a[q.n - 1]);
  ASSERT_EQ(q.n, 7);
  int64_t last = -1;
  struct job *k;
  while ((k = dispatch_dq_pop(&q))) {
    ASSERT(k != first && k != &j[5]);
    ASSERT(k->not_before >= last);
    last = k->not_before;
  }
  dispatch_dq_fini(&q);
}

static int by_time_then_seq(const void *a, const void *b) {
  const struct job *x = *(struct job *const *)a, *y = *(struct job *const *)b;
  if (x->not_before != y->not_before) return x->not_before < y->not_before ? -1 : 1;
  return x->delay_seq < y->delay_seq ? -1 : (x->delay_seq > y->delay_seq);
}

KK_TEST(dispatch_delay_random_against_sort) {
  enum { N = 20000 };
  struct job *j = calloc(N, sizeof *j);
  struct job **want = malloc(N * sizeof *want);
  struct dispatch_dq q;
  dispatch_dq_init(&q);
  unsigned seed = 7;
  for (int i = 0; i < N; i++) {
    seed = seed * 1103515245u + 12345u;
    j[i].not_before = (seed >> 16) % 500;   /* many ties */
    dispatch_dq_push(&q, &j[i]);
  }
  /* a third removed (cancelled), from wherever they are */
  for (int i = 0; i < N; i += 3) dispatch_dq_remove(&q, &j[i]);
  int n = 0;
  for (int i = 0; i < N; i++)
    if (i % 3) want[n++] = &j[i];
  qsort(want, (size_t)n, sizeof *want, by_time_then_seq);
  ASSERT_EQ(q.n, n);
  for (int i = 0; i < n; i++) ASSERT(dispatch_dq_pop(&q) == want[i]);
  ASSERT_EQ(q.n, 0);
  ASSERT(q.cap <= 128);   /* shrunk as it emptied */
  dispatch_dq_fini(&q);
  free(want);
  free(j);
}
