/*
 * kk_tz.h - IANA time zones (Europe/Moscow, Asia/Vladivostok, ...): whether
 * a zone exists, its offset from UTC at an instant, and the instant of a
 * local wall time. Backed by ICU's calendar and its copy of the tz database
 * (Debian's libicu), so that zones with daylight saving time abroad are as
 * right as Russia's fixed ones. Thread-safe: each call opens its own
 * calendar.
 */
#ifndef KK_TZ_H
#define KK_TZ_H

#include <stdint.h>

#define KK_TZ_NAME_MAX 64

/* 1 when name is a zone the tz database knows (a canonical name or an
   alias, e.g. "Europe/Kiev"), 0 otherwise (also for "", "Mars/Base",
   offsets like "+03:00" and names over KK_TZ_NAME_MAX). */
int kk_tz_valid(const char *name);

/* The zone's offset from UTC at utc_ms, in minutes east (Moscow: 180).
   0 or KK_ENOENT (no such zone). */
int kk_tz_offset(const char *name, int64_t utc_ms, int *offset_min);

/* The UTC instant of the wall time y-mo-d h:mi in the zone (a time that
   happens twice: the first; one skipped by a clock change: as if the clock
   had not changed, i.e. later). 0 or KK_ENOENT, KK_EINVAL (a bad date). */
int kk_tz_local_to_utc(const char *name, int y, int mo, int d, int h, int mi, int64_t *utc_ms);

/* The wall time at utc_ms in the zone: fields of out (tm_year from 1900,
   tm_mon 0-11, tm_wday 0 = Sunday). 0 or KK_ENOENT. */
struct tm;
int kk_tz_local(const char *name, int64_t utc_ms, struct tm *out);

#endif
