/* test_money_calc.c - the cost calculator: the seed's form, segments, the
   cascade's saving, bad inputs. */
#include <string.h>

#include "core/kk_err.h"
#include "kk_test.h"
#include "money/money_calc.h"

/* The seed's form as it opens: 100 subscribers, one send a month, 70
   Cyrillic characters, no service or transactional traffic (all
   advertising): a segment each, and no saving. */
KK_TEST(money_calc_seed_form) {
  struct money_calc_in in = {.subscribers = 100, .sends_per_month = 1,
                             .alphabet = MONEY_CYRILLIC, .chars = 70, .sms_price = 350,
                             .nsteps = 1, .step_price = {120}, .step_reach = {600}};
  struct money_calc_out out;
  ASSERT_EQ(money_calc(&in, &out, NULL), 0);
  ASSERT_EQ(out.segments, 1);
  ASSERT_EQ(out.messages, 100);
  ASSERT_EQ(out.sms_only, 35000);
  ASSERT_EQ(out.with_cascade, 35000);
  ASSERT_EQ(out.saving, 0);
}

KK_TEST(money_calc_cascade_saves_on_service_traffic) {
  /* 200,000 subscribers, 4 sends, 140 Cyrillic characters (3 segments of 67),
     all service; Viber 1.20 reaching 60 %, then VK 0.50 reaching 50 % of the
     rest, then SMS 3.50 a segment */
  struct money_calc_in in = {.subscribers = 200000, .sends_per_month = 4,
                             .alphabet = MONEY_CYRILLIC, .chars = 140, .service_pct = 100,
                             .sms_price = 350, .nsteps = 2, .step_price = {120, 50},
                             .step_reach = {600, 500}};
  struct money_calc_out out;
  ASSERT_EQ(money_calc(&in, &out, NULL), 0);
  ASSERT_EQ(out.segments, 3);
  ASSERT_EQ(out.messages, 800000);
  ASSERT_EQ(out.sms_only, 800000LL * 1050);
  /* per message: 1.20 + 0.4 * 0.50 + 0.2 * 10.50 = 3.50 */
  ASSERT_EQ(out.with_cascade, 800000LL * 350);
  ASSERT_EQ(out.saving, 800000LL * 700);
  ASSERT_EQ(out.sms_sent, 160000);
  /* half service, the rest advertising at its own price */
  in.service_pct = 30;
  in.transactional_pct = 20;
  in.sms_price_ads = 400;
  ASSERT_EQ(money_calc(&in, &out, NULL), 0);
  ASSERT_EQ(out.sms_only, 400000LL * 1050 + 400000LL * 1200);
  ASSERT_EQ(out.with_cascade, 400000LL * 350 + 400000LL * 1200);
}

KK_TEST(money_calc_segments_and_bad_input) {
  static const struct {
    enum money_alphabet a;
    int chars, seg;
  } seg[] = {{MONEY_LATIN, 160, 1}, {MONEY_LATIN, 161, 2}, {MONEY_LATIN, 306, 2},
             {MONEY_LATIN, 307, 3}, {MONEY_CYRILLIC, 70, 1}, {MONEY_CYRILLIC, 71, 2},
             {MONEY_CYRILLIC, 134, 2}, {MONEY_CYRILLIC, 350, 6}};
  for (size_t i = 0; i < sizeof seg / sizeof seg[0]; i++) {
    struct money_calc_in in = {.subscribers = 1, .sends_per_month = 1, .alphabet = seg[i].a,
                               .chars = seg[i].chars, .sms_price = 1};
    struct money_calc_out out;
    ASSERT_EQ(money_calc(&in, &out, NULL), 0);
    ASSERT_EQ(out.segments, seg[i].seg);
  }
  struct money_calc_in in = {.subscribers = 1, .sends_per_month = 1, .chars = 1, .sms_price = 1};
  struct money_calc_out out;
  const char *field = NULL;
  in.service_pct = 60;
  in.transactional_pct = 50;
  ASSERT_EQ(money_calc(&in, &out, &field), KK_EINVAL);
  ASSERT_STR_EQ(field, "transactional_share");
  in.transactional_pct = 0;
  in.sends_per_month = 32;
  ASSERT_EQ(money_calc(&in, &out, &field), KK_EINVAL);
  ASSERT_STR_EQ(field, "sends_per_month");
  in.sends_per_month = 1;
  in.nsteps = 1;
  in.step_reach[0] = 1001;
  ASSERT_EQ(money_calc(&in, &out, &field), KK_EINVAL);
  ASSERT_STR_EQ(field, "cascade");
}
