/* test_pol_rules.c - the account's rules as data (policy document, class
   table), the frequency caps' table, and a cascade step that falls through
   inside the recipient's quiet hours. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cascade/cascade_fsm.h"
#include "core/kk_err.h"
#include "kk_test.h"
#include "policy/pol_caps.h"
#include "policy/pol_content.h"
#include "policy/pol_rules.h"
#include "policy/pol_stop.h"

#define H (3600 * 1000LL)
#define D (24 * H)
/* 2026-12-06T00:00Z */
#define DAY0 1796515200000LL

KK_TEST(pol_rules_defaults_and_class_table) {
  struct pol_rules r;
  pol_rules_default(&r);
  ASSERT_EQ(r.quiet.from_min, 21 * 60);
  ASSERT_EQ(r.quiet.to_min, 9 * 60);
  ASSERT_STR_EQ(r.default_tz, "Europe/Moscow");
  ASSERT_EQ(r.ncaps, 0);
  ASSERT_EQ(r.no_foreign, 0);
  /* advertising waits out quiet hours and is checked for content; service
     and transactional are not */
  ASSERT_EQ(r.cls[2].quiet, 1);
  ASSERT_EQ(r.cls[2].content, 1);
  ASSERT_EQ(r.cls[0].quiet, 0);
  ASSERT_EQ(r.cls[1].content, 0);
  ASSERT_EQ(r.cls[0].fallthrough_quiet, 1);
  ASSERT_EQ(!!(r.content_on & (1u << POL_CAT_ALCOHOL)), 1);
  ASSERT_EQ(!!(r.content_on & (1u << POL_CAT_OWN)), 0);
}

/* The class table holds everything a class may do, and the checks that
   read it (the stop-list's rule, the lane) follow it. */
KK_TEST(pol_class_table) {
  ASSERT_EQ(pol_class_index("service"), 0);
  ASSERT_EQ(pol_class_index("transactional"), 1);
  ASSERT_EQ(pol_class_index("advertising"), 2);
  ASSERT_EQ(pol_class_index("promo"), -1);
  ASSERT_EQ(pol_class_index(NULL), -1);
  const struct pol_class_rule *sv = pol_class_rule_named("service"),
                              *tr = pol_class_rule_named("transactional"),
                              *ad = pol_class_rule_named("advertising");
  ASSERT(pol_class_rule_named("promo") == sv);   /* unknown: service's */
  ASSERT(pol_class_rule(7) == sv);
  /* advertising: consent, quiet hours, content, the bulk lane, checked
     again when due, no allowance through a stop */
  ASSERT_EQ(ad->consent, 1);
  ASSERT_EQ(ad->quiet, 1);
  ASSERT_EQ(ad->content, 1);
  ASSERT_EQ(ad->lane, POL_LANE_BULK);
  ASSERT_EQ(ad->due_check, 1);
  ASSERT_EQ(ad->stop_allow, 0u);
  ASSERT_EQ(ad->complaint_passes, 0);
  /* service and transactional: none of those, the stream lane; a stop
     passed only by the account's allowance; a complaint passes service */
  const struct pol_class_rule *other[] = {sv, tr};
  for (int i = 0; i < 2; i++) {
    ASSERT_EQ(other[i]->consent, 0);
    ASSERT_EQ(other[i]->quiet, 0);
    ASSERT_EQ(other[i]->content, 0);
    ASSERT_EQ(other[i]->lane, POL_LANE_STREAM);
    ASSERT_EQ(other[i]->due_check, 0);
  }
  ASSERT_EQ(sv->stop_allow, POL_ALLOW_SERVICE);
  ASSERT_EQ(tr->stop_allow, POL_ALLOW_TRANSACTIONAL);
  ASSERT_EQ(sv->complaint_passes, 1);
  ASSERT_EQ(tr->complaint_passes, 0);
  /* every class: the stop-list, the caps the account sets for it, and a
     cascade step falling through waits out quiet hours */
  for (int i = 0; i < POL_CLASSES; i++) {
    ASSERT_EQ(pol_class_rule(i)->stop, 1);
    ASSERT_EQ(pol_class_rule(i)->caps, 1);
    ASSERT_EQ(pol_class_rule(i)->fallthrough_quiet, 1);
  }
  /* an account's rules start from the table */
  struct pol_rules r;
  pol_rules_default(&r);
  ASSERT_EQ(memcmp(&r.cls[2], ad, sizeof *ad), 0);
  /* the stop-list's rule follows it: a complaint passes service by
     default; a plain stop does not, unless the account allows service */
  ASSERT_EQ(pol_stop_refuses(POL_STOP_COMPLAINT, 0, 0), 0);
  ASSERT_EQ(pol_stop_refuses(POL_STOP_COMPLAINT, 1, 0), 1);
  ASSERT_EQ(pol_stop_refuses(POL_STOP_COMPLAINT, 2, 3), 1);
  for (unsigned why = POL_STOP_REPLY; why < POL_STOP_NREASONS; why++) {
    if (why == POL_STOP_COMPLAINT) continue;
    ASSERT_EQ(pol_stop_refuses(why, 0, 0), 1);
    ASSERT_EQ(pol_stop_refuses(why, 1, 0), 1);
    ASSERT_EQ(pol_stop_refuses(why, 0, POL_ALLOW_SERVICE), 0);
    ASSERT_EQ(pol_stop_refuses(why, 1, POL_ALLOW_SERVICE), 1);
    ASSERT_EQ(pol_stop_refuses(why, 2, 3), 1);
  }
}

KK_TEST(pol_rules_parse_and_show) {
  struct pol_rules r;
  const char *field = NULL;
  char err[200];
  const char *doc =
      "{\"quiet_hours\":{\"from\":\"22:30\",\"to\":\"8:00\",\"timezone\":\"Asia/Omsk\"},"
      "\"caps\":[{\"class\":\"advertising\",\"max\":2,\"per\":\"7d\"},"
      "{\"class\":\"transactional\",\"max\":4,\"per\":3600}],\"caps_over\":\"defer\","
      "\"content_rules\":{\"categories\":{\"alcohol\":false},\"words\":[\"распродаж*\"]},"
      "\"no_foreign_messengers\":true,\"stop_words\":[\"STOP\"]}";
  ASSERT_EQ(pol_rules_parse(doc, &r, &field, err, sizeof err), 0);
  ASSERT_EQ(r.quiet.from_min, 22 * 60 + 30);
  ASSERT_EQ(r.quiet.to_min, 8 * 60);
  ASSERT_STR_EQ(r.default_tz, "Asia/Omsk");
  ASSERT_EQ(r.ncaps, 2);
  ASSERT_EQ(r.caps[0].cls, 2);
  ASSERT_EQ(r.caps[0].per_ms, 7 * D);
  ASSERT_EQ(r.caps[1].per_ms, H);
  ASSERT_EQ(r.cap_mode, POL_CAP_DEFER);
  ASSERT_EQ(!!(r.content_on & (1u << POL_CAT_ALCOHOL)), 0);
  ASSERT_EQ(!!(r.content_on & (1u << POL_CAT_OWN)), 1);
  ASSERT_EQ(r.nown, 1);
  ASSERT_EQ(r.no_foreign, 1);
  char *shown = pol_rules_doc(&r, doc);
  ASSERT_EQ(strstr(shown, "\"stop_words\":[\"STOP\"]") != NULL, 1);   /* kept as given */
  ASSERT_EQ(!!(strstr(shown, "\"per\":\"1h\"") != NULL), 1);
  ASSERT_EQ(!!(strstr(shown, "\"from\":\"22:30\"") != NULL), 1);
  struct pol_rules again;
  ASSERT_EQ(pol_rules_parse(shown, &again, &field, err, sizeof err), 0);
  ASSERT_EQ(memcmp(&again, &r, sizeof r), 0);
  free(shown);
  /* quiet hours off */
  ASSERT_EQ(pol_rules_parse("{\"quiet_hours\":null}", &r, &field, err, sizeof err), 0);
  ASSERT_EQ(r.quiet.from_min, r.quiet.to_min);
  static const struct {
    const char *doc, *field;
  } bad[] = {
      {"[]", "policy"},
      {"{\"quiet_hours\":{\"from\":\"24:00\",\"to\":\"9:00\"}}", "quiet_hours"},
      {"{\"quiet_hours\":{\"from\":\"21:00\",\"to\":\"9:00\",\"timezone\":\"Mars/Base\"}}",
       "quiet_hours"},
      {"{\"caps\":[{\"class\":\"advertising\",\"max\":101,\"per\":\"7d\"}]}", "caps"},
      {"{\"caps\":[{\"class\":\"advertising\",\"max\":0,\"per\":\"7d\"}]}", "caps"},
      {"{\"caps\":[{\"class\":\"advertising\",\"max\":2,\"per\":\"366d\"}]}", "caps"},
      {"{\"caps\":[{\"class\":\"advertising\",\"max\":2,\"per\":31622400}]}", "caps"},
      {"{\"caps\":[{\"class\":\"advertising\",\"max\":2,\"per\":\"7w\"}]}", "caps"},
      {"{\"caps_over\":\"drop\"}", "caps_over"},
      {"{\"content_rules\":{\"categories\":{\"own\":true}}}", "content_rules"},
      {"{\"content_rules\":{\"words\":[\"\"]}}", "content_rules"},
      {"{\"no_foreign_messengers\":1}", "no_foreign_messengers"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    field = NULL;
    ASSERT_EQ(pol_rules_parse(bad[i].doc, &r, &field, err, sizeof err), KK_EINVAL);
    ASSERT_STR_EQ(field, bad[i].field);
  }
}

KK_TEST(pol_caps_counts_within_the_window) {
  struct pol_caps *c = pol_caps_new(0);
  int64_t oldest;
  ASSERT_EQ(pol_caps_count(c, 1, 2, "79161234567", DAY0, 7 * D, &oldest), 0);
  ASSERT_EQ(pol_caps_add(c, 1, 2, "79161234567", DAY0), 0);
  ASSERT_EQ(pol_caps_add(c, 1, 2, "79161234567", DAY0 + D), 0);
  ASSERT_EQ(pol_caps_count(c, 1, 2, "79161234567", DAY0 + 2 * D, 7 * D, &oldest), 2);
  ASSERT_EQ(oldest, DAY0);
  /* when due: a send deferred past now is not counted yet */
  ASSERT_EQ(pol_caps_count_due(c, 1, 2, "79161234567", DAY0 + D / 2, 7 * D), 1);
  ASSERT_EQ(pol_caps_count_due(c, 1, 2, "79161234567", DAY0 + D, 7 * D), 2);
  /* another account, class or phone is its own */
  ASSERT_EQ(pol_caps_count(c, 2, 2, "79161234567", DAY0 + 2 * D, 7 * D, &oldest), 0);
  ASSERT_EQ(pol_caps_count(c, 1, 0, "79161234567", DAY0 + 2 * D, 7 * D, &oldest), 0);
  ASSERT_EQ(pol_caps_count(c, 1, 2, "79161234568", DAY0 + 2 * D, 7 * D, &oldest), 0);
  /* the first leaves the window after 7 days */
  ASSERT_EQ(pol_caps_count(c, 1, 2, "79161234567", DAY0 + 7 * D + 1000, 7 * D, &oldest), 1);
  /* the ring keeps the newest POL_CAP_RING_DEFAULT until told more */
  for (int i = 0; i < 10; i++) ASSERT_EQ(pol_caps_add(c, 1, 2, "79161234567", DAY0 + 3 * D + i * 1000), 0);
  ASSERT_EQ(pol_caps_count(c, 1, 2, "79161234567", DAY0 + 4 * D, 7 * D, &oldest), POL_CAP_RING_DEFAULT);
  ASSERT_EQ(oldest, DAY0 + 3 * D + 6000);
  pol_caps_free(c);
}

KK_TEST(pol_caps_bounded_sweeps_old_phones) {
  struct pol_caps *c = pol_caps_new(1000);
  char phone[24];
  for (int i = 0; i < 1000; i++) {
    snprintf(phone, sizeof phone, "7916%07d", i);
    ASSERT_EQ(pol_caps_add(c, 1, 2, phone, DAY0), 0);
  }
  ASSERT_EQ(pol_caps_size(c), 1000);
  /* full while every phone is within a window */
  ASSERT_EQ(pol_caps_add(c, 1, 2, "79990000000", DAY0 + D), KK_ENOSPC);
  ASSERT_EQ(pol_caps_full(c), 1);
  /* past the longest window (365 days) the old ones are swept out */
  ASSERT_EQ(pol_caps_add(c, 1, 2, "79990000000", DAY0 + 300 * D), KK_ENOSPC);
  ASSERT_EQ(pol_caps_add(c, 1, 2, "79990000000", DAY0 + 366 * D), 0);
  ASSERT_EQ(pol_caps_size(c), 1);
  /* the table grows past its first size */
  struct pol_caps *big = pol_caps_new(0);
  for (int i = 0; i < 100000; i++) {
    snprintf(phone, sizeof phone, "7916%07d", i);
    ASSERT_EQ(pol_caps_add(big, 7, 2, phone, DAY0 + i), 0);
  }
  int64_t oldest;
  ASSERT_EQ(pol_caps_size(big), 100000);
  ASSERT_EQ(pol_caps_count(big, 7, 2, "79160099999", DAY0 + D, 7 * D, &oldest), 1);
  pol_caps_free(big);
  pol_caps_free(c);
}

/* Caps up to 100 a year: the table's ring follows the largest cap, a
   longer ring takes more memory a phone and so holds fewer phones. */
KK_TEST(pol_caps_long_rings_and_windows) {
  struct pol_rules r;
  const char *field;
  char err[200];
  ASSERT_EQ(pol_rules_parse("{\"caps\":[{\"class\":\"advertising\",\"max\":100,\"per\":\"365d\"},"
                            "{\"class\":\"advertising\",\"max\":2,\"per\":\"1d\"}]}",
                            &r, &field, err, sizeof err), 0);
  ASSERT_EQ(r.caps[0].max, 100);
  ASSERT_EQ(r.caps[0].per_ms, 365 * D);
  char *doc = pol_rules_doc(&r, NULL);
  ASSERT(strstr(doc, "\"max\":100,\"per\":\"365d\"") != NULL);
  free(doc);

  struct pol_caps *c = pol_caps_new(0);
  int64_t oldest;
  ASSERT_EQ(pol_caps_ring(c, 1, 2, 0), KK_EINVAL);
  ASSERT_EQ(pol_caps_ring(c, 1, 2, POL_CAP_RING_MAX + 1), KK_EINVAL);
  /* four sends in the default ring, then the ring grows: they are kept */
  for (int i = 0; i < 4; i++) ASSERT_EQ(pol_caps_add(c, 1, 2, "79161234567", DAY0 + i * D), 0);
  ASSERT_EQ(pol_caps_ring(c, 1, 2, POL_CAP_RING_MAX), 0);
  ASSERT_EQ(pol_caps_count(c, 1, 2, "79161234567", DAY0 + 5 * D, 365 * D, &oldest), 4);
  ASSERT_EQ(oldest, DAY0);
  /* one a day for 120 days: the newest 101 are kept; within a year, 101 */
  for (int i = 4; i < 120; i++) ASSERT_EQ(pol_caps_add(c, 1, 2, "79161234567", DAY0 + i * D), 0);
  ASSERT_EQ(pol_caps_count(c, 1, 2, "79161234567", DAY0 + 120 * D, 365 * D, &oldest), 101);
  ASSERT_EQ(oldest, DAY0 + 19 * D);
  ASSERT_EQ(pol_caps_count_due(c, 1, 2, "79161234567", DAY0 + 120 * D, 365 * D), 101);
  /* the short cap's window in the same ring */
  ASSERT_EQ(pol_caps_count(c, 1, 2, "79161234567", DAY0 + 119 * D + 1000, D, &oldest), 1);
  /* the oldest leave a year later */
  ASSERT_EQ(pol_caps_count(c, 1, 2, "79161234567", DAY0 + 400 * D, 365 * D, &oldest), 84);
  /* a ring shrunk keeps the newest */
  ASSERT_EQ(pol_caps_ring(c, 1, 2, 3), 0);
  ASSERT_EQ(pol_caps_count(c, 1, 2, "79161234567", DAY0 + 120 * D, 365 * D, &oldest), 3);
  ASSERT_EQ(oldest, DAY0 + 117 * D);
  /* 8 + 4 * 3 bytes a phone, slots at most 4/3 of the phones (1,024 at least) */
  ASSERT_EQ(pol_caps_bytes(c), 1024 * 20);
  pol_caps_free(c);

  /* a table of the longest ring holds 1000 * 6 / 103 phones where the
     default holds 1000; a send past them is not counted */
  struct pol_caps *small = pol_caps_new(1000);
  ASSERT_EQ(pol_caps_ring(small, 1, 2, POL_CAP_RING_MAX), 0);
  char phone[24];
  for (int i = 0; i < 58; i++) {
    snprintf(phone, sizeof phone, "7916%07d", i);
    ASSERT_EQ(pol_caps_add(small, 1, 2, phone, DAY0), 0);
  }
  ASSERT_EQ(pol_caps_add(small, 1, 2, "79990000000", DAY0 + D), KK_ENOSPC);
  ASSERT_EQ(pol_caps_full(small), 1);
  /* a phone already held is still counted */
  ASSERT_EQ(pol_caps_add(small, 1, 2, "79160000001", DAY0 + D), 0);
  pol_caps_free(small);

  /* a million phones with the ring of a cap of 2 (3 times): 20 bytes a
     slot, the slots at most 4/3 of the phones doubled once */
  struct pol_caps *big = pol_caps_new(0);
  ASSERT_EQ(pol_caps_ring(big, 7, 2, 3), 0);
  for (int i = 0; i < 1000000; i++) {
    snprintf(phone, sizeof phone, "791%08d", i);
    ASSERT_EQ(pol_caps_add(big, 7, 2, phone, DAY0 + i), 0);
  }
  ASSERT_EQ(pol_caps_size(big), 1000000);
  ASSERT(pol_caps_bytes(big) <= (size_t)2097152 * 20);
  ASSERT_EQ(pol_caps_count(big, 7, 2, "79100999999", DAY0 + 2 * D, 7 * D, &oldest), 1);
  pol_caps_free(big);
}

/* A VK step times out at 23:00 UTC inside quiet hours 21:00-09:00 UTC: the
   SMS step is created then but due at 09:00; without quiet hours at once. */
static void fall_through(const char *tz, int64_t at, int64_t *due, const char **error) {
  struct cfsm_msg m;
  memset(&m, 0, sizeof m);
  m.status = KK_ST_SENT;
  m.chan = KK_CHAN_VK;
  m.attempt_id = 100;
  m.natt = -1;
  m.nsteps = 2;
  m.steps[0] = (struct cfsm_step){KK_CHAN_VK, 3, 10000};
  m.steps[1] = (struct cfsm_step){KK_CHAN_SMS, 2, 0};
  m.use[0] = m.use[1] = CFSM_USE_OK;
  m.quiet_tz = tz;
  m.quiet_from = 21 * 60;
  m.quiet_to = 9 * 60;
  struct cfsm_att a = {.id = 100, .chan = KK_CHAN_VK, .status = KK_ST_SENT, .step = 0,
                       .sent_at = at - 10000};
  struct cfsm_out out;
  memset(&out, 0, sizeof out);
  for (int i = 0; i < 3; i++) {
    out.need = 0;
    out.nfx = 0;
    cfsm_deadline(&m, &a, 0, at, &out);
    if (!(out.need & CFSM_NEED_ATTEMPTS)) break;
    m.natt = 1;
    m.att[0] = a;
  }
  *due = -1;
  *error = NULL;
  for (int i = 0; i < out.nfx; i++) {
    if (out.fx[i].kind == CFSM_FX_MSG_STEP) *due = out.fx[i].t0;
    if (out.fx[i].kind == CFSM_FX_ATT_ADD) {
      *error = out.fx[i].error;
      ASSERT_EQ(out.fx[i].t1, at);   /* created now */
    }
  }
}

KK_TEST(cascade_fsm_fall_through_waits_out_quiet_hours) {
  int64_t due;
  const char *error;
  fall_through("Etc/UTC", DAY0 + 23 * H, &due, &error);
  ASSERT_EQ(due, DAY0 + 33 * H);
  ASSERT_STR_EQ(error, "quiet_hours");
  fall_through(NULL, DAY0 + 23 * H, &due, &error);
  ASSERT_EQ(due, DAY0 + 23 * H);
  ASSERT_EQ(!!(error == NULL), 1);
  /* outside them: at once */
  fall_through("Etc/UTC", DAY0 + 12 * H, &due, &error);
  ASSERT_EQ(due, DAY0 + 12 * H);
  ASSERT_EQ(!!(error == NULL), 1);
  /* 23:00 UTC is 02:00 in Moscow: quiet until 09:00 Moscow (06:00Z) */
  fall_through("Europe/Moscow", DAY0 + 23 * H, &due, &error);
  ASSERT_EQ(due, DAY0 + 30 * H);
}
