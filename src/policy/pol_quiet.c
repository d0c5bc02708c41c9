/*
 * pol_quiet.c - local-time windows. See pol_quiet.h.
 */
#include "policy/pol_quiet.h"

#include <time.h>

#include "core/kk_err.h"
#include "core/kk_tz.h"

int pol_hhmm_parse(const char *s, int *min) {
  int h = 0, m = 0, i = 0, hd = 0;
  while (s[i] >= '0' && s[i] <= '9' && hd < 2) h = h * 10 + (s[i++] - '0'), hd++;
  if (hd == 0 || s[i++] != ':') return KK_EINVAL;
  for (int k = 0; k < 2; k++, i++) {
    if (s[i] < '0' || s[i] > '9') return KK_EINVAL;
    m = m * 10 + (s[i] - '0');
  }
  if (s[i] != '\0' || h > 23 || m > 59) return KK_EINVAL;
  *min = h * 60 + m;
  return 0;
}

/* The local wall time at now (zone, or UTC + offset_min). */
static int local_at(const char *zone, int offset_min, int64_t now_ms, struct tm *tm) {
  if (zone) return kk_tz_local(zone, now_ms, tm);
  time_t t = (time_t)(now_ms / 1000 + (int64_t)offset_min * 60);
  gmtime_r(&t, tm);
  return 0;
}

/* The UTC instant of local y-mo-d at min (minutes of the day). */
static int utc_of(const char *zone, int offset_min, struct tm day, int min, int64_t *out) {
  day.tm_hour = min / 60;
  day.tm_min = min % 60;
  day.tm_sec = 0;
  time_t t = timegm(&day);  /* normalises a day past the month's end */
  struct tm n;
  gmtime_r(&t, &n);
  if (zone)
    return kk_tz_local_to_utc(zone, n.tm_year + 1900, n.tm_mon + 1, n.tm_mday, n.tm_hour,
                              n.tm_min, out);
  *out = ((int64_t)t - (int64_t)offset_min * 60) * 1000;
  return 0;
}

int pol_window_until(const struct pol_window *w, const char *zone, int offset_min, int64_t now_ms,
                     int64_t *until_ms) {
  if (w->from_min == w->to_min) return 0;
  struct tm tm;
  if (local_at(zone, offset_min, now_ms, &tm) != 0) return KK_ENOENT;
  int m = tm.tm_hour * 60 + tm.tm_min;
  int inside = w->from_min < w->to_min ? (m >= w->from_min && m < w->to_min)
                                       : (m >= w->from_min || m < w->to_min);
  if (!inside) return 0;
  struct tm day = {.tm_year = tm.tm_year, .tm_mon = tm.tm_mon, .tm_mday = tm.tm_mday};
  if (m >= w->to_min) day.tm_mday++;  /* it ends tomorrow */
  if (utc_of(zone, offset_min, day, w->to_min, until_ms) != 0) return KK_ENOENT;
  return 1;
}
