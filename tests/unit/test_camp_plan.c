/* test_camp_plan.c - campaign planning: local send windows, the rate over
   all recipients, spill to the next day, the end, unknown zones. */
#include <stdlib.h>
#include <time.h>

#include "campaign/camp_plan.h"
#include "core/kk_err.h"
#include "core/kk_tz.h"
#include "kk_test.h"

#define MIN 60000LL
#define H (60 * MIN)
/* 2026-12-07T00:00Z, a Monday */
#define DAY0 1796601600000LL

KK_TEST(camp_plan_rate_without_window) {
  struct camp_recipient r[3] = {{"Europe/Moscow", 0, 0}, {"Europe/Moscow", 0, 0},
                                {NULL, 180, 0}};
  struct camp_plan_opts o = {.start_ms = DAY0, .per_minute = 60};
  ASSERT_EQ(camp_plan(r, 3, &o), 3);
  int64_t at[3] = {r[0].at, r[1].at, r[2].at};
  /* one a second, in some order */
  int64_t lo = at[0] < at[1] ? at[0] : at[1];
  lo = lo < at[2] ? lo : at[2];
  ASSERT_EQ(lo, DAY0);
  ASSERT_EQ(at[0] + at[1] + at[2], 3 * DAY0 + 3000);
}

KK_TEST(camp_plan_local_windows) {
  /* 10:00-20:00 local; the campaign starts at 05:00Z: 08:00 in Moscow, 15:00 in
     Vladivostok, 07:00 in Kaliningrad */
  struct camp_recipient r[3] = {{"Europe/Moscow", 0, 0}, {"Asia/Vladivostok", 0, 0},
                                {"Europe/Kaliningrad", 0, 0}};
  struct camp_plan_opts o = {.start_ms = DAY0 + 5 * H, .window = {600, 1200}};
  ASSERT_EQ(camp_plan(r, 3, &o), 3);
  ASSERT_EQ(r[1].at, DAY0 + 5 * H);   /* open already */
  ASSERT_EQ(r[0].at, DAY0 + 7 * H);   /* 10:00 MSK */
  ASSERT_EQ(r[2].at, DAY0 + 8 * H);   /* 10:00 Kaliningrad */
  /* started at 11:00Z, Vladivostok's window (00:00-10:00Z) has passed: tomorrow */
  struct camp_recipient v = {"Asia/Vladivostok", 0, 0};
  o.start_ms = DAY0 + 11 * H;
  ASSERT_EQ(camp_plan(&v, 1, &o), 1);
  ASSERT_EQ(v.at, DAY0 + 24 * H);
}

KK_TEST(camp_plan_window_across_midnight_and_spill) {
  /* 22:00-02:00 UTC, 2 a minute, 600 recipients: 4 h hold 480, the rest
     go the next night */
  size_t n = 600;
  struct camp_recipient *r = calloc(n, sizeof *r);
  for (size_t i = 0; i < n; i++) r[i].offset_min = 0;
  struct camp_plan_opts o = {.start_ms = DAY0 + 12 * H, .window = {22 * 60, 2 * 60},
                             .per_minute = 2};
  ASSERT_EQ(camp_plan(r, n, &o), (long)n);
  long first_night = 0;
  for (size_t i = 0; i < n; i++) {
    int64_t t = r[i].at;
    ASSERT(t >= DAY0 + 22 * H);
    int64_t m = (t / MIN) % (24 * 60);
    ASSERT(m >= 22 * 60 || m < 2 * 60);
    if (t < DAY0 + 26 * H) first_night++;
  }
  ASSERT_EQ(first_night, 480);
  free(r);
}

KK_TEST(camp_plan_end_spread_and_unknown_zone) {
  struct camp_recipient r[4] = {{NULL, 0, 0}, {NULL, 0, 0}, {NULL, 0, 0}, {"Nowhere/Land", 0, 0}};
  /* 1 a minute, ending after 90 s: two placed */
  struct camp_plan_opts o = {.start_ms = DAY0, .end_ms = DAY0 + 90000, .per_minute = 1};
  ASSERT_EQ(camp_plan(r, 4, &o), 2);
  ASSERT_EQ(r[3].at, 0);
  int unplaced = 0;
  for (int i = 0; i < 3; i++) unplaced += r[i].at == 0;
  ASSERT_EQ(unplaced, 1);
  /* spread over 4 minutes: a minute apart */
  struct camp_recipient s[5] = {{NULL, 0, 0}, {NULL, 0, 0}, {NULL, 0, 0}, {NULL, 0, 0}, {NULL, 0, 0}};
  struct camp_plan_opts sp = {.start_ms = DAY0, .spread_ms = 4 * MIN};
  ASSERT_EQ(camp_plan(s, 5, &sp), 5);
  int64_t sum = 0, max = 0;
  for (int i = 0; i < 5; i++) {
    sum += s[i].at - DAY0;
    if (s[i].at - DAY0 > max) max = s[i].at - DAY0;
  }
  ASSERT_EQ(max, 4 * MIN);
  ASSERT_EQ(sum, 10 * MIN);
  struct camp_plan_opts bad = {.window = {1440, 0}};
  ASSERT_EQ(camp_plan(s, 5, &bad), KK_EINVAL);
}

static int cmp_at(const void *a, const void *b) {
  int64_t x = ((const struct camp_recipient *)a)->at, y = ((const struct camp_recipient *)b)->at;
  return x < y ? -1 : x > y;
}

/* Many recipients over Russia's zones: every send inside its local window,
   never two closer than the rate allows. */
KK_TEST(camp_plan_many_zones_keep_window_and_rate) {
  static const char *zones[] = {"Europe/Kaliningrad", "Europe/Moscow", "Asia/Yekaterinburg",
                                "Asia/Novosibirsk",   "Asia/Irkutsk",  "Asia/Vladivostok",
                                "Asia/Kamchatka"};
  size_t n = 20000;
  struct camp_recipient *r = calloc(n, sizeof *r);
  for (size_t i = 0; i < n; i++) r[i].timezone = zones[i % 7];
  struct camp_plan_opts o = {.start_ms = DAY0, .window = {10 * 60, 20 * 60}, .per_minute = 500};
  ASSERT_EQ(camp_plan(r, n, &o), (long)n);
  for (size_t i = 0; i < n; i++) {
    struct tm tm;
    ASSERT_EQ(kk_tz_local(r[i].timezone, r[i].at, &tm), 0);
    int m = tm.tm_hour * 60 + tm.tm_min;
    ASSERT(m >= 600 && m < 1200);
  }
  qsort(r, n, sizeof *r, cmp_at);
  for (size_t i = 1; i < n; i++) ASSERT(r[i].at - r[i - 1].at >= 120);
  free(r);
}

/* A campaign planned a batch at a time (a restart between any two): the
   slot carried from batch to batch keeps the rate over all of them, and the
   times are those of the whole audience planned at once. */
KK_TEST(camp_plan_batches_carry_the_rate) {
  enum { N = 1000, B = 250 };
  struct camp_recipient *all = calloc(N, sizeof *all), *part = calloc(N, sizeof *part);
  for (int i = 0; i < N; i++)
    all[i].timezone = part[i].timezone = i % 2 ? "Europe/Moscow" : "Asia/Vladivostok";
  struct camp_plan_opts o = {.start_ms = DAY0, .per_minute = 60};
  ASSERT_EQ(camp_plan(all, N, &o), N);
  int64_t gap = camp_plan_gap(&o, N), slot = 0;
  ASSERT_EQ(gap, 1000);
  for (int at = 0; at < N; at += B) {
    int64_t before = slot;
    ASSERT_EQ(camp_plan_batch(part + at, B, &o, gap, &slot), B);
    ASSERT_EQ(slot, DAY0 + (int64_t)(at + B) * 1000);   /* the next free instant */
    for (int i = at; i < at + B; i++) ASSERT(part[i].at >= (before ? before : DAY0));
  }
  int64_t sa = 0, sp = 0;
  for (int i = 0; i < N; i++) sa += all[i].at - DAY0, sp += part[i].at - DAY0;
  ASSERT_EQ(sa, sp);   /* the same instants, one a second */
  qsort(part, N, sizeof *part, cmp_at);
  for (int i = 1; i < N; i++) ASSERT_EQ(part[i].at - part[i - 1].at, 1000);
  /* a spread over the whole audience: its gap from the audience's size */
  struct camp_plan_opts sp2 = {.start_ms = DAY0, .spread_ms = 999 * 1000};
  ASSERT_EQ(camp_plan_gap(&sp2, N), 1000);
  ASSERT_EQ(camp_plan_batch(part, 1, &o, -1, &slot), KK_EINVAL);
  free(all);
  free(part);
}
