/*
 * pol_quiet.h - local-time windows: quiet hours (21:00-09:00 in the
 * recipient's zone) and campaign send windows (10:00-20:00) are the same
 * question, "is it now inside [from, to) where the recipient is, and when
 * does that end?". A window whose from is after its to spans midnight.
 * Pure but for the tz database (core/kk_tz).
 */
#ifndef POL_QUIET_H
#define POL_QUIET_H

#include <stdint.h>

struct pol_window {
  int from_min, to_min;     /* local minutes of the day, 0..1439; equal: no window */
};

/* "21:00" or "9:30" -> minutes of the day. 0 or KK_EINVAL. */
int pol_hhmm_parse(const char *s, int *min);

/*
 * Whether now_ms falls inside w in the recipient's local time: zone (an
 * IANA name), or NULL to use the fixed offset_min. 1 with *until_ms the UTC
 * instant the window ends (its next `to`), 0 when outside, KK_ENOENT when
 * zone is unknown.
 */
int pol_window_until(const struct pol_window *w, const char *zone, int offset_min, int64_t now_ms,
                     int64_t *until_ms);

#endif
