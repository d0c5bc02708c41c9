/*
 * camp_plan.c - planned send times of a campaign's recipients. See
 * camp_plan.h.
 *
 * A min-heap holds each recipient with the earliest instant its window
 * allows; the campaign's clock hands out slots at the rate. The recipient on
 * top takes the later of the free slot and its own earliest instant; if its
 * window has closed by then it goes back with tomorrow's opening.
 *
 * Planned a batch at a time, the instants the earlier batches took are kept
 * as spans, not as one clock: a batch whose last recipients wait for a
 * window that opens tomorrow (Vladivostok's, planned in Moscow's afternoon)
 * must not push the next batch's Moscow recipients, whose window is open,
 * to tomorrow too. A send finds the first instant at or after its own that
 * keeps gap away from every span taken.
 */
#include "campaign/camp_plan.h"

#include <stdlib.h>
#include <string.h>

#include "core/kk_err.h"
#include "core/kk_mem.h"
#include "core/kk_tz.h"

struct item {
  int64_t earliest;
  size_t idx;
};

static void sift_down(struct item *h, size_t n, size_t i) {
  for (;;) {
    size_t l = 2 * i + 1, m = i;
    if (l < n && h[l].earliest < h[m].earliest) m = l;
    if (l + 1 < n && h[l + 1].earliest < h[m].earliest) m = l + 1;
    if (m == i) return;
    struct item t = h[i];
    h[i] = h[m];
    h[m] = t;
    i = m;
  }
}

/* The wait window: the complement of the send window. */
static struct pol_window wait_of(const struct pol_window *w) {
  struct pol_window c = {w->to_min, w->from_min};
  return c;
}

/* The first instant at or after t when the recipient may be sent to (t
   itself when its window is open or there is none); -1 for an unknown zone. */
static int64_t open_at(const struct camp_recipient *r, const struct pol_window *wait, int64_t t) {
  int64_t until;
  int rc = pol_window_until(wait, r->timezone, r->offset_min, t, &until);
  if (rc < 0) return -1;
  return rc == 1 ? until : t;
}

int64_t camp_plan_gap(const struct camp_plan_opts *o, size_t total) {
  if (o->per_minute > 0) return (60000 + o->per_minute - 1) / o->per_minute;
  if (o->spread_ms > 0 && total > 1) return o->spread_ms / (int64_t)(total - 1);
  return 0;
}

void camp_spans_free(struct camp_spans *s) {
  free(s->span);
  *s = (struct camp_spans){0};
}

struct camp_spans camp_spans_copy(const struct camp_spans *a) {
  struct camp_spans c = *a;
  c.span = NULL;
  c.cap = 0;
  if (a->n) {
    c.cap = a->n;
    c.span = kk_xmalloc(a->n * sizeof *c.span);   /* freed by camp_spans_free */
    memcpy(c.span, a->span, a->n * sizeof *c.span);
  }
  return c;
}

int64_t camp_spans_next(const struct camp_spans *t, int64_t gap) {
  int64_t last = t->n ? t->span[t->n - 1][1] + gap : 0;
  return last > t->floor ? last : t->floor;
}

/* Appends [from, to] (at or after the last span) to s, joining the last span
   when fewer than two gaps lie between (no send fits there anyway). */
static void span_add(struct camp_spans *s, int64_t from, int64_t to, int64_t gap) {
  if (s->n && from - s->span[s->n - 1][1] < 2 * gap) {
    if (to > s->span[s->n - 1][1]) s->span[s->n - 1][1] = to;
    return;
  }
  if (s->n == s->cap) {
    s->cap = s->cap ? 2 * s->cap : 16;
    s->span = kk_xrealloc(s->span, s->cap * sizeof *s->span);
  }
  s->span[s->n][0] = from;
  s->span[s->n][1] = to;
  s->n++;
}

/* The first instant at or after t that keeps gap away from every span. */
static int64_t free_at(const struct camp_spans *s, int64_t t, int64_t gap) {
  if (t < s->floor) t = s->floor;
  /* the first span that does not end gap or more before t */
  size_t lo = 0, hi = s->n;
  while (lo < hi) {
    size_t m = lo + (hi - lo) / 2;
    if (s->span[m][1] + gap <= t) lo = m + 1;
    else hi = m;
  }
  for (size_t k = lo; k < s->n && s->span[k][0] - gap < t; k++) t = s->span[k][1] + gap;
  return t;
}

/* taken with this batch's spans (in order, each apart from taken's) merged
   in; past CAMP_SPANS_MAX, neighbours pair up. Frees add's spans. */
static void spans_merge(struct camp_spans *taken, struct camp_spans *add, int64_t gap) {
  struct camp_spans out = {.floor = taken->floor};
  size_t i = 0, j = 0;
  while (i < taken->n || j < add->n) {
    int from_taken = j == add->n || (i < taken->n && taken->span[i][0] <= add->span[j][0]);
    int64_t *x = from_taken ? taken->span[i++] : add->span[j++];
    span_add(&out, x[0], x[1], gap);
  }
  while (out.n > CAMP_SPANS_MAX) {
    size_t k = 0;
    for (size_t m = 0; m < out.n; m += 2) {
      out.span[k][0] = out.span[m][0];
      out.span[k][1] = out.span[m + 1 < out.n ? m + 1 : m][1];
      k++;
    }
    out.n = k;
  }
  camp_spans_free(taken);
  camp_spans_free(add);
  *taken = out;
}

long camp_plan(struct camp_recipient *r, size_t n, const struct camp_plan_opts *o) {
  if (o->per_minute < 0 || o->spread_ms < 0) return KK_EINVAL;
  struct camp_spans taken = {0};
  long placed = camp_plan_batch(r, n, o, camp_plan_gap(o, n), &taken);
  camp_spans_free(&taken);
  return placed;
}

long camp_plan_batch(struct camp_recipient *r, size_t n, const struct camp_plan_opts *o,
                     int64_t gap, struct camp_spans *taken) {
  if (gap < 0 || o->window.from_min < 0 || o->window.from_min >= 1440 || o->window.to_min < 0 ||
      o->window.to_min >= 1440)
    return KK_EINVAL;
  struct pol_window wait = wait_of(&o->window);
  if (o->outside) *o->outside = 0;
  struct item *h = kk_xcalloc(n ? n : 1, sizeof *h);   /* freed below */
  size_t hn = 0;
  const char *known = NULL;  /* the last zone found valid (recipients share names) */
  for (size_t i = 0; i < n; i++) {
    r[i].at = 0;
    if (r[i].timezone && r[i].timezone != known) {
      if (!kk_tz_valid(r[i].timezone)) continue;
      known = r[i].timezone;
    }
    int64_t e = open_at(&r[i], &wait, o->start_ms);
    if (e < 0 || (o->end_ms && e > o->end_ms)) continue;
    h[hn++] = (struct item){e, i};
  }
  for (size_t i = hn / 2; i-- > 0;) sift_down(h, hn, i);
  long placed = 0;
  /* this batch's next free send instant, and the instants it takes; without
     a rate nothing is taken (the floor too only paces) */
  int64_t slot = o->start_ms;
  struct camp_spans mine = {0};
  while (hn > 0) {
    struct item top = h[0];
    struct camp_recipient *x = &r[top.idx];
    int64_t t = top.earliest > slot ? top.earliest : slot;
    if (gap > 0) t = free_at(taken, t, gap);
    int64_t e = open_at(x, &wait, t);
    if (e >= 0 && e == t && !(o->end_ms && t > o->end_ms)) {
      x->at = t;
      placed++;
      if (o->outside && open_at(x, &wait, o->start_ms) > o->start_ms) (*o->outside)++;
      slot = t + gap;
      if (gap > 0) span_add(&mine, t, t, gap);
      h[0] = h[--hn];
    } else if (e < 0 || (o->end_ms && e > o->end_ms)) {
      h[0] = h[--hn];  /* its window will not open again before the end */
    } else {
      h[0].earliest = e;  /* its window closed: its next opening */
    }
    sift_down(h, hn, 0);
  }
  free(h);
  spans_merge(taken, &mine, gap);
  return placed;
}
