/*
 * dispatch_delay.c - the delayed jobs' heap (see dispatch_delay.h).
 */
#include "dispatch/dispatch_delay.h"

#include <stdlib.h>

#include "core/kk_mem.h"
#include "dispatch/dispatch_int.h"

#define DQ_MIN_CAP 64

void dispatch_dq_init(struct dispatch_dq *q) {
  q->a = NULL;
  q->n = q->cap = 0;
  q->seq = 0;
}

void dispatch_dq_fini(struct dispatch_dq *q) {
  free(q->a);
  dispatch_dq_init(q);
}

/* 1 when a is due before b (earlier, or as early and older). */
static int before(const struct job *a, const struct job *b) {
  return a->not_before < b->not_before ||
         (a->not_before == b->not_before && a->delay_seq < b->delay_seq);
}

static void place(struct dispatch_dq *q, int i, struct job *j) {
  q->a[i] = j;
  j->delay_at = i;
}

static void sift_up(struct dispatch_dq *q, int i) {
  struct job *j = q->a[i];
  while (i > 0) {
    int p = (i - 1) / 2;
    if (!before(j, q->a[p])) break;
    place(q, i, q->a[p]);
    i = p;
  }
  place(q, i, j);
}

static void sift_down(struct dispatch_dq *q, int i) {
  struct job *j = q->a[i];
  for (;;) {
    int c = 2 * i + 1;
    if (c >= q->n) break;
    if (c + 1 < q->n && before(q->a[c + 1], q->a[c])) c++;
    if (!before(q->a[c], j)) break;
    place(q, i, q->a[c]);
    i = c;
  }
  place(q, i, j);
}

void dispatch_dq_push(struct dispatch_dq *q, struct job *j) {
  if (q->n == q->cap) {
    q->cap = q->cap ? 2 * q->cap : DQ_MIN_CAP;
    q->a = kk_xrealloc(q->a, (size_t)q->cap * sizeof *q->a);
  }
  j->delay_seq = q->seq++;
  q->a[q->n] = j;
  sift_up(q, q->n++);
}

struct job *dispatch_dq_peek(const struct dispatch_dq *q) { return q->n ? q->a[0] : NULL; }

void dispatch_dq_remove(struct dispatch_dq *q, struct job *j) {
  int i = j->delay_at;
  j->delay_at = -1;
  struct job *last = q->a[--q->n];
  if (i < q->n) {
    place(q, i, last);
    if (i > 0 && before(last, q->a[(i - 1) / 2]))
      sift_up(q, i);
    else
      sift_down(q, i);
  }
  /* Shrunk when a quarter is used, so a mass deferral's memory goes with it. */
  if (q->cap > DQ_MIN_CAP && q->n < q->cap / 4) {
    q->cap /= 2;
    q->a = kk_xrealloc(q->a, (size_t)q->cap * sizeof *q->a);
  }
}

struct job *dispatch_dq_pop(struct dispatch_dq *q) {
  struct job *j = dispatch_dq_peek(q);
  if (j) dispatch_dq_remove(q, j);
  return j;
}
