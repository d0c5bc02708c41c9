/* test_tz.c - IANA time zones: names, offsets, wall times across clock changes. */
#include <time.h>

#include "core/kk_err.h"
#include "core/kk_tz.h"
#include "kk_test.h"

/* 2026-01-15T12:00Z and 2026-07-15T12:00Z */
#define WINTER 1768478400000LL
#define SUMMER 1784116800000LL

KK_TEST(tz_names) {
  static const char *ok[] = {"Europe/Moscow", "Asia/Vladivostok", "Europe/Kaliningrad",
                             "Europe/Kiev", "America/New_York", "UTC", "Asia/Kamchatka"};
  for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) ASSERT(kk_tz_valid(ok[i]));
  static const char *bad[] = {"", "Mars/Olympus_Mons", "GMT+03:00", "+03:00", "Europe/Москва",
                              "Europe/Moscow/../../etc/passwd", "europe/moscow ",
                              "Aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    if (kk_tz_valid(bad[i])) kk_test_fail(__FILE__, __LINE__, "\"%s\" is taken as a zone", bad[i]);
  int off;
  ASSERT_EQ(kk_tz_offset("Mars/Olympus_Mons", WINTER, &off), KK_ENOENT);
}

KK_TEST(tz_offsets) {
  static const struct {
    const char *zone;
    int winter, summer;
  } z[] = {
      {"Europe/Kaliningrad", 120, 120}, {"Europe/Moscow", 180, 180},
      {"Asia/Novosibirsk", 420, 420},   {"Asia/Vladivostok", 600, 600},
      {"America/New_York", -300, -240}, {"Europe/Berlin", 60, 120},
  };
  for (size_t i = 0; i < sizeof z / sizeof z[0]; i++) {
    int w, s;
    ASSERT_EQ(kk_tz_offset(z[i].zone, WINTER, &w), 0);
    ASSERT_EQ(kk_tz_offset(z[i].zone, SUMMER, &s), 0);
    ASSERT_EQ(w, z[i].winter);
    ASSERT_EQ(s, z[i].summer);
  }
}

KK_TEST(tz_wall_times) {
  int64_t t;
  /* 10:00 in Vladivostok is 00:00 UTC */
  ASSERT_EQ(kk_tz_local_to_utc("Asia/Vladivostok", 2026, 12, 6, 10, 0, &t), 0);
  ASSERT_EQ(t, 1796515200000LL);
  /* Berlin springs forward at 02:00 on 2026-03-29: 02:30 does not exist, it is 03:30 CEST */
  ASSERT_EQ(kk_tz_local_to_utc("Europe/Berlin", 2026, 3, 29, 2, 30, &t), 0);
  ASSERT_EQ(t, 1774747800000LL);  /* 01:30Z */
  /* and falls back on 2026-10-25: 02:30 happens twice, the first is CEST */
  ASSERT_EQ(kk_tz_local_to_utc("Europe/Berlin", 2026, 10, 25, 2, 30, &t), 0);
  ASSERT_EQ(t, 1792888200000LL);  /* 00:30Z */
  ASSERT_EQ(kk_tz_local_to_utc("Europe/Berlin", 2026, 2, 31, 10, 0, &t), KK_EINVAL);
  ASSERT_EQ(kk_tz_local_to_utc("Europe/Berlin", 2026, 13, 1, 10, 0, &t), KK_EINVAL);
  ASSERT_EQ(kk_tz_local_to_utc("Nowhere/Land", 2026, 1, 1, 10, 0, &t), KK_ENOENT);
  struct tm tm;
  ASSERT_EQ(kk_tz_local("Asia/Vladivostok", 1796515200000LL, &tm), 0);
  ASSERT_EQ(tm.tm_year, 126);
  ASSERT_EQ(tm.tm_mon, 11);
  ASSERT_EQ(tm.tm_mday, 6);
  ASSERT_EQ(tm.tm_hour, 10);
  ASSERT_EQ(tm.tm_wday, 0);  /* a Sunday */
}
