/* test_pol_stop.c - the in-memory (account, phone) set, the stop-list's
   and the consent's rules. */
#include <stdio.h>
#include <string.h>

#include "core/kk_err.h"
#include "kk_test.h"
#include "policy/pol_consent.h"
#include "policy/pol_set.h"
#include "policy/pol_stop.h"
#include "policy/pol_words.h"

KK_TEST(pol_set_keys) {
  ASSERT_EQ(pol_set_key(""), 0);
  ASSERT_EQ(pol_set_key("79a"), 0);
  ASSERT_EQ(pol_set_key("1234567890123456"), 0);   /* 16 digits */
  ASSERT(pol_set_key("79161234567") == pol_set_key("+79161234567"));
  ASSERT(pol_set_key("07") != pol_set_key("7"));
  ASSERT(pol_set_key("999999999999999") != 0);
}

KK_TEST(pol_set_put_get_remove) {
  struct pol_set s;
  pol_set_init(&s);
  ASSERT_EQ(pol_set_get(&s, 1, pol_set_key("79161234567")), 0);
  ASSERT_EQ(pol_set_put(&s, 1, pol_set_key("79161234567"), 3), 0);
  ASSERT_EQ(pol_set_get(&s, 1, pol_set_key("79161234567")), 3);
  ASSERT_EQ(pol_set_get(&s, 2, pol_set_key("79161234567")), 0);   /* accounts apart */
  ASSERT_EQ(pol_set_put(&s, 1, pol_set_key("79161234567"), 0), 0);
  ASSERT_EQ(pol_set_get(&s, 1, pol_set_key("79161234567")), 0);
  ASSERT_EQ((long)s.n, 0);
  ASSERT_EQ(pol_set_put(&s, 1, 0, 1), KK_EINVAL);
  ASSERT_EQ(pol_set_put(&s, -1, 5, 1), KK_EINVAL);
  pol_set_fini(&s);
}

/* Many phones, every other removed: the rest are all still found (the
   backward shift keeps every probe run whole). */
KK_TEST(pol_set_many) {
  struct pol_set s;
  pol_set_init(&s);
  const int n = 200000;
  char ph[24];
  for (int i = 0; i < n; i++) {
    snprintf(ph, sizeof ph, "7916%07d", i);
    ASSERT_EQ(pol_set_put(&s, 1 + i % 3, pol_set_key(ph), 1 + (uint32_t)(i % 5)), 0);
  }
  ASSERT_EQ((long)s.n, n);
  for (int i = 0; i < n; i += 2) {
    snprintf(ph, sizeof ph, "7916%07d", i);
    ASSERT_EQ(pol_set_put(&s, 1 + i % 3, pol_set_key(ph), 0), 0);
  }
  ASSERT_EQ((long)s.n, n / 2);
  for (int i = 0; i < n; i++) {
    snprintf(ph, sizeof ph, "7916%07d", i);
    uint32_t want = i % 2 ? 1 + (uint32_t)(i % 5) : 0;
    ASSERT_EQ(pol_set_get(&s, 1 + i % 3, pol_set_key(ph)), want);
  }
  /* 16 bytes a slot, at most 3/4 full: under 43 bytes a phone */
  ASSERT(s.cap * sizeof *s.v < (size_t)n * 43);
  pol_set_fini(&s);
}

KK_TEST(pol_set_bound) {
  struct pol_set s;
  pol_set_init(&s);
  s.max = 3;
  for (int i = 1; i <= 3; i++) ASSERT_EQ(pol_set_put(&s, 1, (uint64_t)i, 1), 0);
  ASSERT_EQ(pol_set_put(&s, 1, 4, 1), KK_ENOSPC);
  ASSERT_EQ(pol_set_put(&s, 1, 3, 2), 0);   /* a change of one held is no new entry */
  ASSERT_EQ(pol_set_put(&s, 1, 3, 0), 0);
  ASSERT_EQ(pol_set_put(&s, 1, 4, 1), 0);
  pol_set_fini(&s);
}

KK_TEST(pol_stop_rules) {
  ASSERT_EQ(pol_stop_reason_of("complaint"), POL_STOP_COMPLAINT);
  ASSERT_EQ(pol_stop_reason_of("nope"), POL_STOP_NONE);
  ASSERT(strcmp(pol_stop_reason_name(POL_STOP_REPLY), "reply") == 0);
  /* a stop: everything refused unless the class is allowed; advertising always */
  ASSERT_EQ(pol_stop_refuses(POL_STOP_REPLY, 2, 3), 1);
  ASSERT_EQ(pol_stop_refuses(POL_STOP_REPLY, 1, 0), 1);
  ASSERT_EQ(pol_stop_refuses(POL_STOP_REPLY, 1, POL_ALLOW_TRANSACTIONAL), 0);
  ASSERT_EQ(pol_stop_refuses(POL_STOP_REPLY, 0, POL_ALLOW_SERVICE), 0);
  /* a complaint: transactional refused whatever the account allows;
     service passes, allowed or not */
  ASSERT_EQ(pol_stop_refuses(POL_STOP_COMPLAINT, 1, 3), 1);
  ASSERT_EQ(pol_stop_refuses(POL_STOP_COMPLAINT, 0, 3), 0);
  ASSERT_EQ(pol_stop_refuses(POL_STOP_COMPLAINT, 0, 0), 0);
  ASSERT_EQ(pol_stop_refuses(POL_STOP_NONE, 2, 0), 0);
}

KK_TEST(pol_consent_rules) {
  ASSERT_EQ(pol_consent_bit("all"), POL_CONSENT_ALL);
  ASSERT_EQ(pol_consent_bit(""), POL_CONSENT_ALL);
  ASSERT_EQ(pol_consent_bit("fax"), 0);
  ASSERT_EQ(pol_consent_covers(POL_CONSENT_ALL, "viber"), 1);
  ASSERT_EQ(pol_consent_covers(pol_consent_bit("sms"), NULL), 1);
  ASSERT_EQ(pol_consent_covers(pol_consent_bit("sms"), "viber"), 0);
  ASSERT_EQ(pol_consent_covers(0, "sms"), 0);
  ASSERT(strcmp(pol_consent_channel(pol_consent_bit("viber")), "viber") == 0);
}

KK_TEST(pol_words_defaults_and_own) {
  struct pol_words w;
  const char *field = NULL;
  char err[200];
  ASSERT_EQ(pol_words_parse(NULL, &w, &field, err, sizeof err), 0);
  ASSERT_EQ(pol_words_match(&w, " Стоп! ", strlen(" Стоп! ")), POL_REPLY_STOP);
  ASSERT_EQ(pol_words_match(&w, "unsubscribe.", 12), POL_REPLY_STOP);
  ASSERT_EQ(pol_words_match(&w, "СТАРТ", strlen("СТАРТ")), POL_REPLY_START);
  ASSERT_EQ(pol_words_match(&w, "help?", 5), POL_REPLY_HELP);
  ASSERT_EQ(pol_words_match(&w, "стоп, а когда доставка?", strlen("стоп, а когда доставка?")),
            POL_REPLY_NONE);
  ASSERT_EQ(w.allow, 0u);

  const char *doc = "{\"stop_words\":[\"Хватит\",\"no more\"],\"help_text\":\"Пишите\","
                    "\"stop_list_allows\":[\"transactional\"],\"other\":1}";
  ASSERT_EQ(pol_words_parse(doc, &w, &field, err, sizeof err), 0);
  ASSERT_EQ(pol_words_match(&w, "ХВАТИТ!!", strlen("ХВАТИТ!!")), POL_REPLY_STOP);
  ASSERT_EQ(pol_words_match(&w, " No-more ", 9), POL_REPLY_STOP);
  ASSERT_EQ(pol_words_match(&w, "STOP", 4), POL_REPLY_NONE);    /* the list replaced */
  ASSERT_EQ(pol_words_match(&w, "start", 5), POL_REPLY_START);  /* left out: default */
  ASSERT_STR_EQ(w.help_text, "Пишите");
  ASSERT_EQ(w.allow, (unsigned)POL_ALLOW_TRANSACTIONAL);

  static const char *const bad[][2] = {
      {"{\"stop_words\":\"STOP\"}", "stop_words"},
      {"{\"stop_words\":[]}", "stop_words"},
      {"{\"help_words\":[\"!!!\"]}", "help_words"},
      {"{\"stop_reply\":\"\"}", "stop_reply"},
      {"{\"stop_list_allows\":[\"advertising\"]}", "stop_list_allows"},
      {"{\"replies_webhook\":\"ftp://x\"}", "replies_webhook"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    field = NULL;
    ASSERT_EQ(pol_words_parse(bad[i][0], &w, &field, err, sizeof err), KK_EINVAL);
    ASSERT_STR_EQ(field, bad[i][1]);
    ASSERT_EQ(pol_words_match(&w, "STOP", 4), POL_REPLY_STOP);   /* the defaults */
  }
}
