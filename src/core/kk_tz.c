/*
 * kk_tz.c - IANA time zones through ICU's calendar. See kk_tz.h.
 */
#include "core/kk_tz.h"

#include <string.h>
#include <time.h>
#include <unicode/ucal.h>
#include <unicode/ustring.h>

#include "core/kk_err.h"

/* Opens a Gregorian calendar in zone name (caller closes), NULL when ICU
   does not know the zone (it would silently give GMT). */
static UCalendar *open_zone(const char *name) {
  size_t n = name ? strlen(name) : 0;
  if (n == 0 || n >= KK_TZ_NAME_MAX) return NULL;
  UChar id[KK_TZ_NAME_MAX];
  for (size_t i = 0; i <= n; i++) {
    unsigned char ch = (unsigned char)name[i];
    if (ch >= 0x80) return NULL;  /* zone names are ASCII */
    id[i] = ch;
  }
  UErrorCode err = U_ZERO_ERROR;
  UChar canon[KK_TZ_NAME_MAX * 2];
  UBool system = 0;
  ucal_getCanonicalTimeZoneID(id, (int32_t)n, canon, (int32_t)(sizeof canon / sizeof canon[0]),
                              &system, &err);
  if (U_FAILURE(err) || !system) return NULL;
  err = U_ZERO_ERROR;
  UCalendar *cal = ucal_open(id, (int32_t)n, "en_US_POSIX", UCAL_GREGORIAN, &err);
  if (U_FAILURE(err)) {
    if (cal) ucal_close(cal);
    return NULL;
  }
  return cal;
}

int kk_tz_valid(const char *name) {
  UCalendar *cal = open_zone(name);
  if (cal == NULL) return 0;
  ucal_close(cal);
  return 1;
}

int kk_tz_offset(const char *name, int64_t utc_ms, int *offset_min) {
  UCalendar *cal = open_zone(name);
  if (cal == NULL) return KK_ENOENT;
  UErrorCode err = U_ZERO_ERROR;
  ucal_setMillis(cal, (UDate)utc_ms, &err);
  int32_t zone = ucal_get(cal, UCAL_ZONE_OFFSET, &err);
  int32_t dst = ucal_get(cal, UCAL_DST_OFFSET, &err);
  ucal_close(cal);
  if (U_FAILURE(err)) return KK_ENOENT;
  *offset_min = (zone + dst) / 60000;
  return 0;
}

int kk_tz_local_to_utc(const char *name, int y, int mo, int d, int h, int mi, int64_t *utc_ms) {
  if (mo < 1 || mo > 12 || d < 1 || d > 31 || h < 0 || h > 23 || mi < 0 || mi > 59 || y < 1970 ||
      y > 9999)
    return KK_EINVAL;
  static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
  if (d > mdays[mo - 1] || (mo == 2 && d == 29 && !leap)) return KK_EINVAL;
  UCalendar *cal = open_zone(name);
  if (cal == NULL) return KK_ENOENT;
  UErrorCode err = U_ZERO_ERROR;
  ucal_setAttribute(cal, UCAL_REPEATED_WALL_TIME, UCAL_WALLTIME_FIRST);
  ucal_setAttribute(cal, UCAL_SKIPPED_WALL_TIME, UCAL_WALLTIME_LAST);
  ucal_clear(cal);
  ucal_setDateTime(cal, y, mo - 1, d, h, mi, 0, &err);
  UDate t = ucal_getMillis(cal, &err);
  ucal_close(cal);
  if (U_FAILURE(err)) return KK_EINVAL;
  *utc_ms = (int64_t)t;
  return 0;
}

int kk_tz_local(const char *name, int64_t utc_ms, struct tm *out) {
  UCalendar *cal = open_zone(name);
  if (cal == NULL) return KK_ENOENT;
  UErrorCode err = U_ZERO_ERROR;
  ucal_setMillis(cal, (UDate)utc_ms, &err);
  memset(out, 0, sizeof *out);
  out->tm_year = ucal_get(cal, UCAL_YEAR, &err) - 1900;
  out->tm_mon = ucal_get(cal, UCAL_MONTH, &err);
  out->tm_mday = ucal_get(cal, UCAL_DATE, &err);
  out->tm_hour = ucal_get(cal, UCAL_HOUR_OF_DAY, &err);
  out->tm_min = ucal_get(cal, UCAL_MINUTE, &err);
  out->tm_sec = ucal_get(cal, UCAL_SECOND, &err);
  out->tm_wday = ucal_get(cal, UCAL_DAY_OF_WEEK, &err) - 1;
  ucal_close(cal);
  return U_FAILURE(err) ? KK_ENOENT : 0;
}
