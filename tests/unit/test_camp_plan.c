/* test_camp_plan.c - campaign planning: local send windows, the rate over
   all recipients, spill to the next day, the end, unknown zones. */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "api/api_camp.h"
#include "campaign/camp_plan.h"
#include "core/kk_err.h"
#include "core/kk_tz.h"
#include "kk_test.h"

#define MINUTE 60000LL
#define H (60 * MINUTE)
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
    int64_t m = (t / MINUTE) % (24 * 60);
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
  struct camp_plan_opts sp = {.start_ms = DAY0, .spread_ms = 4 * MINUTE};
  ASSERT_EQ(camp_plan(s, 5, &sp), 5);
  int64_t sum = 0, max = 0;
  for (int i = 0; i < 5; i++) {
    sum += s[i].at - DAY0;
    if (s[i].at - DAY0 > max) max = s[i].at - DAY0;
  }
  ASSERT_EQ(max, 4 * MINUTE);
  ASSERT_EQ(sum, 10 * MINUTE);
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
  int64_t gap = camp_plan_gap(&o, N);
  struct camp_spans taken = {0};
  ASSERT_EQ(gap, 1000);
  for (int at = 0; at < N; at += B) {
    int64_t before = camp_spans_next(&taken, gap);
    ASSERT_EQ(camp_plan_batch(part + at, B, &o, gap, &taken), B);
    /* the next free instant */
    ASSERT_EQ(camp_spans_next(&taken, gap), DAY0 + (int64_t)(at + B) * 1000);
    for (int i = at; i < at + B; i++) ASSERT(part[i].at >= (before ? before : DAY0));
    /* a restart here knows only where the clock is: it goes on from there */
    struct camp_spans after = {.floor = camp_spans_next(&taken, gap)};
    camp_spans_free(&taken);
    taken = after;
  }
  camp_spans_free(&taken);
  int64_t sa = 0, sp = 0;
  for (int i = 0; i < N; i++) sa += all[i].at - DAY0, sp += part[i].at - DAY0;
  ASSERT_EQ(sa, sp);   /* the same instants, one a second */
  qsort(part, N, sizeof *part, cmp_at);
  for (int i = 1; i < N; i++) ASSERT_EQ(part[i].at - part[i - 1].at, 1000);
  /* a spread over the whole audience: its gap from the audience's size */
  struct camp_plan_opts sp2 = {.start_ms = DAY0, .spread_ms = 999 * 1000};
  ASSERT_EQ(camp_plan_gap(&sp2, N), 1000);
  ASSERT_EQ(camp_plan_batch(part, 1, &o, -1, &taken), KK_EINVAL);
  free(all);
  free(part);
}

KK_TEST(camp_plan_window_across_midnight_russian_zones) {
  /* 22:00-02:00 local, started at 12:00Z: Moscow (UTC+3) opens at 19:00Z and
     closes at 23:00Z, Vladivostok (UTC+10) at 12:00Z and 16:00Z; one a
     minute, 300 each: 240 the first night, the rest the next */
  size_t n = 600;
  struct camp_recipient *r = calloc(n, sizeof *r);
  for (size_t i = 0; i < n; i++) r[i].timezone = i % 2 ? "Asia/Vladivostok" : "Europe/Moscow";
  struct camp_plan_opts o = {.start_ms = DAY0 + 12 * H, .window = {22 * 60, 2 * 60},
                             .per_minute = 1};
  ASSERT_EQ(camp_plan(r, n, &o), (long)n);
  long first_night[2] = {0, 0};
  for (size_t i = 0; i < n; i++) {
    int k = (int)(i % 2);
    int64_t local = r[i].at + (k ? 10 : 3) * H;
    int64_t m = (local / MINUTE) % (24 * 60);
    ASSERT(m >= 22 * 60 || m < 2 * 60);   /* inside the window in its own zone */
    if (r[i].at < DAY0 + (k ? 16 : 23) * H) first_night[k]++;
  }
  /* Vladivostok's night (12:00-16:00Z) is its own; Moscow's (19:00-23:00Z)
     too: 240 minutes each */
  ASSERT_EQ(first_night[1], 240);
  ASSERT_EQ(first_night[0], 240);
  free(r);
}

KK_TEST(camp_variant_shares_within_one_percent) {
  /* 10,000 recipients: each variant within 1 % of the recipients of its
     share, at the end and on the way, and a recipient's variant the same
     every time */
  struct camp_spec two = {.nvariants = 2}, three = {.nvariants = 3};
  two.variants[0].share = two.variants[1].share = 0.5;
  three.variants[0].share = 0.7;
  three.variants[1].share = 0.2;
  three.variants[2].share = 0.1;
  const struct camp_spec *specs[2] = {&two, &three};
  for (int s = 0; s < 2; s++) {
    int count[3] = {0, 0, 0};
    for (int64_t seq = 1; seq <= 10000; seq++) {
      int v = camp_variant_of(specs[s], "spring", seq);
      ASSERT(v >= 0 && v < specs[s]->nvariants);
      ASSERT_EQ(camp_variant_of(specs[s], "spring", seq), v);
      count[v]++;
      /* at every count on the way, too: within 1 % of the recipients so far */
      if (seq % 1000 == 0)
        for (int k = 0; k < specs[s]->nvariants; k++) {
          double want = specs[s]->variants[k].share * (double)seq;
          ASSERT(count[k] >= want - 0.01 * (double)seq && count[k] <= want + 0.01 * (double)seq);
        }
    }
    for (int v = 0; v < specs[s]->nvariants; v++) {
      int want = (int)(specs[s]->variants[v].share * 10000 + 0.5);
      ASSERT(count[v] >= want - 100 && count[v] <= want + 100);
    }
    /* another campaign splits its recipients otherwise */
    int same = 0;
    for (int64_t seq = 1; seq <= 1000; seq++)
      same += camp_variant_of(specs[s], "spring", seq) == camp_variant_of(specs[s], "autumn", seq);
    ASSERT(same < 1000);
  }
}

/* Planned a batch at a time with a window and zones whose windows open at
   different hours: a batch's last recipients placed tomorrow (Vladivostok's
   window has closed) do not push the next batch's Moscow recipients, whose
   window is open, to tomorrow; the times are the whole audience's, rate and
   window kept. */
static void batched_like_whole(int per_minute, int batch) {
  enum { N = 2000 };
  struct camp_recipient *all = calloc(N, sizeof *all), *part = calloc(N, sizeof *part);
  static const char *const zones[3] = {"Asia/Vladivostok", "Europe/Moscow", "Europe/Kaliningrad"};
  for (int i = 0; i < N; i++) all[i].timezone = part[i].timezone = zones[i % 3];
  /* 11:00Z: 14:00 in Moscow, 13:00 in Kaliningrad, 21:00 in Vladivostok */
  struct camp_plan_opts o = {.start_ms = DAY0 + 11 * H, .window = {600, 1200},
                             .per_minute = per_minute};
  ASSERT_EQ(camp_plan(all, N, &o), N);
  int64_t gap = camp_plan_gap(&o, N);
  struct camp_spans taken = {0};
  for (int at = 0; at < N; at += batch) {
    int k = N - at < batch ? N - at : batch;
    ASSERT_EQ(camp_plan_batch(part + at, (size_t)k, &o, gap, &taken), k);
  }
  camp_spans_free(&taken);
  int today = 0;
  for (int i = 0; i < N; i++) {
    int off = part[i].timezone == zones[0] ? 10 : part[i].timezone == zones[1] ? 3 : 2;
    int64_t m = ((part[i].at + off * H) / MINUTE) % (24 * 60);
    ASSERT(m >= 600 && m < 1200);   /* inside the window in its own zone */
    if (part[i].timezone != zones[0]) {
      /* Moscow's and Kaliningrad's window is open (or opens) today */
      ASSERT(part[i].at < DAY0 + 24 * H);
      today++;
    } else {
      ASSERT(part[i].at >= DAY0 + 24 * H);   /* 10:00 in Vladivostok: 00:00Z tomorrow */
    }
  }
  ASSERT(today > N / 2);
  qsort(all, N, sizeof *all, cmp_at);
  qsort(part, N, sizeof *part, cmp_at);
  for (int i = 0; i < N; i++) {
    if (per_minute == 0) ASSERT_EQ(part[i].at, all[i].at);
    if (i > 0 && gap > 0) ASSERT(part[i].at - part[i - 1].at >= gap);
  }
  free(all);
  free(part);
}

KK_TEST(camp_plan_batches_with_windows_in_several_zones) {
  batched_like_whole(0, 300);     /* as fast as the windows allow */
  batched_like_whole(600, 300);   /* ten a second */
  batched_like_whole(30, 250);    /* one in two seconds */
}
