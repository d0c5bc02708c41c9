/* test_pol_quiet.c - local-time windows: quiet hours and send windows in
   the recipient's zone, across midnight. */
#include "core/kk_err.h"
#include "kk_test.h"
#include "policy/pol_quiet.h"

#define H (3600 * 1000LL)
/* 2026-12-06T00:00Z */
#define DAY0 1796515200000LL

KK_TEST(pol_quiet_hours_in_the_recipients_zone) {
  struct pol_window quiet;
  ASSERT_EQ(pol_hhmm_parse("21:00", &quiet.from_min), 0);
  ASSERT_EQ(pol_hhmm_parse("09:00", &quiet.to_min), 0);
  int64_t until;
  /* 19:00Z is 22:00 in Moscow: quiet until 09:00 Moscow = 06:00Z next day */
  ASSERT_EQ(pol_window_until(&quiet, "Europe/Moscow", 0, DAY0 + 19 * H, &until), 1);
  ASSERT_EQ(until, DAY0 + 30 * H);
  /* the same instant is 05:00 next day in Vladivostok: quiet until 09:00 there = 23:00Z */
  ASSERT_EQ(pol_window_until(&quiet, "Asia/Vladivostok", 0, DAY0 + 19 * H, &until), 1);
  ASSERT_EQ(until, DAY0 + 23 * H);
  /* and 21:00 in Kaliningrad: quiet from that minute */
  ASSERT_EQ(pol_window_until(&quiet, "Europe/Kaliningrad", 0, DAY0 + 19 * H, &until), 1);
  ASSERT_EQ(until, DAY0 + 31 * H);
  /* 20:59 in Kaliningrad is not */
  ASSERT_EQ(pol_window_until(&quiet, "Europe/Kaliningrad", 0, DAY0 + 19 * H - 60000, &until), 0);
  /* 09:00 sharp is outside */
  ASSERT_EQ(pol_window_until(&quiet, "Europe/Moscow", 0, DAY0 + 6 * H, &until), 0);
  /* a fixed offset when the zone is unknown to the contact */
  ASSERT_EQ(pol_window_until(&quiet, NULL, 180, DAY0 + 19 * H, &until), 1);
  ASSERT_EQ(until, DAY0 + 30 * H);
  ASSERT_EQ(pol_window_until(&quiet, "Nowhere/Land", 0, DAY0, &until), KK_ENOENT);
}

KK_TEST(pol_send_window_waits_for_its_start) {
  /* a campaign window 10:00-20:00 is a wait from 20:00 to 10:00 */
  struct pol_window wait = {20 * 60, 10 * 60};
  int64_t until;
  /* 08:00 Moscow (05:00Z): wait until 10:00 Moscow (07:00Z) the same day */
  ASSERT_EQ(pol_window_until(&wait, "Europe/Moscow", 0, DAY0 + 5 * H, &until), 1);
  ASSERT_EQ(until, DAY0 + 7 * H);
  ASSERT_EQ(pol_window_until(&wait, "Europe/Moscow", 0, DAY0 + 8 * H, &until), 0);
  /* a window inside one day */
  struct pol_window lunch = {13 * 60, 14 * 60};
  ASSERT_EQ(pol_window_until(&lunch, NULL, 0, DAY0 + 13 * H + 30 * 60000, &until), 1);
  ASSERT_EQ(until, DAY0 + 14 * H);
  struct pol_window none = {0, 0};
  ASSERT_EQ(pol_window_until(&none, NULL, 0, DAY0, &until), 0);
  /* the month's last day rolls over */
  ASSERT_EQ(pol_window_until(&wait, NULL, 0, 1798675200000LL + 21 * H, &until), 1); /* 2026-12-31 */
  ASSERT_EQ(until, 1798675200000LL + 34 * H);
}

KK_TEST(pol_hhmm) {
  int m;
  ASSERT_EQ(pol_hhmm_parse("9:30", &m), 0);
  ASSERT_EQ(m, 570);
  ASSERT_EQ(pol_hhmm_parse("00:00", &m), 0);
  ASSERT_EQ(m, 0);
  static const char *bad[] = {"", "24:00", "12:60", "12", "12:5", "12:000", "a:00", ":30"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    ASSERT_EQ(pol_hhmm_parse(bad[i], &m), KK_EINVAL);
}
