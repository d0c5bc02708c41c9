/*
 * camp_plan.c - planned send times of a campaign's recipients. See
 * camp_plan.h.
 *
 * A min-heap holds each recipient with the earliest instant its window
 * allows; the campaign's clock hands out slots at the rate. The recipient on
 * top takes the later of the free slot and its own earliest instant; if its
 * window has closed by then it goes back with tomorrow's opening.
 */
#include "campaign/camp_plan.h"

#include <stdlib.h>

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

long camp_plan(struct camp_recipient *r, size_t n, const struct camp_plan_opts *o) {
  if (o->per_minute < 0 || o->spread_ms < 0) return KK_EINVAL;
  int64_t slot = 0;
  return camp_plan_batch(r, n, o, camp_plan_gap(o, n), &slot);
}

long camp_plan_batch(struct camp_recipient *r, size_t n, const struct camp_plan_opts *o,
                     int64_t gap, int64_t *slot_io) {
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
  /* the campaign's next free send instant */
  int64_t slot = *slot_io > o->start_ms ? *slot_io : o->start_ms;
  while (hn > 0) {
    struct item top = h[0];
    struct camp_recipient *x = &r[top.idx];
    int64_t t = top.earliest > slot ? top.earliest : slot;
    int64_t e = open_at(x, &wait, t);
    if (e >= 0 && e == t && !(o->end_ms && t > o->end_ms)) {
      x->at = t;
      placed++;
      if (o->outside && open_at(x, &wait, o->start_ms) > o->start_ms) (*o->outside)++;
      slot = t + gap;
      h[0] = h[--hn];
    } else if (e < 0 || (o->end_ms && e > o->end_ms)) {
      h[0] = h[--hn];  /* its window will not open again before the end */
    } else {
      h[0].earliest = e;  /* its window closed: its next opening */
    }
    sift_down(h, hn, 0);
  }
  free(h);
  *slot_io = slot;
  return placed;
}
