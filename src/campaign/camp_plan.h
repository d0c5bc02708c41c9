/*
 * camp_plan.h - when each recipient of a campaign gets its message: inside
 * the campaign's send window in the recipient's own time zone, no earlier
 * than the start, no later than the end, and never faster than the
 * campaign's rate (or spread evenly over a duration) across all its
 * recipients. Pure: no I/O, no clock of its own (core/kk_tz for zones).
 *
 * Recipients whose window opens first go first; a recipient whose window
 * closes before a slot is free waits for its window the next day; one
 * that cannot be placed before the end is left unplanned (expired).
 */
#ifndef CAMP_PLAN_H
#define CAMP_PLAN_H

#include <stddef.h>
#include <stdint.h>

#include "policy/pol_quiet.h"

struct camp_plan_opts {
  int64_t start_ms;          /* not before */
  int64_t end_ms;            /* not after (0: no end) */
  struct pol_window window;  /* local send window [from, to); from == to: any time */
  int per_minute;            /* at most this many a minute (0: see spread_ms) */
  int64_t spread_ms;         /* or: spread evenly over this long (0 with per_minute 0:
                                 as fast as the window allows) */
  long *outside;             /* NULL, or out: how many placed recipients had their
                                window closed at the start and wait for it to open
                                (the reason outside_window) */
};

struct camp_recipient {
  const char *timezone;      /* IANA name, or NULL: offset_min */
  int offset_min;
  int64_t at;                /* out: the planned UTC time; 0: not placed before the end */
};

/*
 * Plans the n recipients in place (their `at`). Returns how many were
 * placed, or KK_EINVAL (a bad window or rate), KK_ENOENT (a zone the tz
 * database does not know: that recipient's at is 0 and planning goes on
 * with the others; the return is still the count placed). Work: n log n.
 */
long camp_plan(struct camp_recipient *r, size_t n, const struct camp_plan_opts *o);

/*
 * The send instants a campaign planned a batch at a time has taken so far,
 * carried from one batch to the next: spans [from, to] (sorted, apart)
 * that hold every instant planned, a later send keeping gap away from each;
 * and before `floor` every instant counts as taken (a campaign whose
 * planning went on after a restart knows only where the last batch left
 * the clock). Zeroed: nothing taken. Owned; camp_spans_free.
 */
struct camp_spans {
  int64_t floor;
  int64_t (*span)[2];
  size_t n, cap;
};
#define CAMP_SPANS_MAX 4096        /* past this, neighbours merge (their gap counts taken) */

/*
 * The same for one batch of a campaign planned a batch at a time: gap ms
 * between two sends (what the rate or the spread over the whole audience
 * gives: camp_plan_gap), and taken the instants the batches before took
 * (in; out: with this batch's). A recipient whose window is open now goes
 * now even if an earlier batch placed others tomorrow. o's per_minute and
 * spread_ms are not read.
 */
long camp_plan_batch(struct camp_recipient *r, size_t n, const struct camp_plan_opts *o,
                     int64_t gap, struct camp_spans *taken);
/* Where a restart's planning may go on from: after the last taken instant,
   gap away (0: nothing taken). */
int64_t camp_spans_next(const struct camp_spans *taken, int64_t gap);
/* A copy of a (its spans owned by the copy). */
struct camp_spans camp_spans_copy(const struct camp_spans *a);
void camp_spans_free(struct camp_spans *s);
/* The ms between two sends of o over total recipients (0: as fast as the
   window allows). */
int64_t camp_plan_gap(const struct camp_plan_opts *o, size_t total);

#endif
