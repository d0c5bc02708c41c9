/*
 * test_channel_settings.c - the channel settings (chan_settings.h): each
 * driver declares its fields and the parser walks that table; fields of
 * another channel, wrong types and forms are refused with the field named;
 * what a channel needs is required; the stored JSON reads back the same.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "channel/chan_settings.h"
#include "channel/channel.h"
#include "core/kk_err.h"
#include "kk_test.h"

/* Parses text for channel; returns the code, err and the field named. */
static int parse(const char *channel, const char *text, struct chan_cfg *cfg, char *err,
                 size_t cap, const char **field) {
  json_t *j = json_loads(text, 0, NULL);
  if (j == NULL) kk_test_fail(__FILE__, __LINE__, "bad JSON in the test: %s", text);
  int rc = chan_settings_parse(channel, j, cfg, err, cap, field);
  /* *field may point into j: copy what the test needs before freeing. */
  static char field_copy[64];
  if (*field) {
    snprintf(field_copy, sizeof field_copy, "%s", *field);
    *field = field_copy;
  }
  json_decref(j);
  return rc;
}

#define ASSERT_REFUSED(channel, text, want_field, want_err)                   \
  do {                                                                        \
    struct chan_cfg c_;                                                       \
    char e_[200] = "";                                                        \
    const char *f_ = NULL;                                                    \
    ASSERT_EQ(parse(channel, text, &c_, e_, sizeof e_, &f_), KK_EINVAL);      \
    ASSERT_STR_EQ(f_ ? f_ : "(none)", want_field);                            \
    ASSERT_STR_EQ(e_, want_err);                                              \
  } while (0)

KK_TEST(channel_settings_every_driver_declares_fields) {
  int n = 0;
  const struct chan_driver *const *all = chan_drivers(&n);
  for (int i = 0; i < n; i++) {
    ASSERT(all[i]->nfields > 0);
    for (int k = 0; k < all[i]->nfields; k++) {
      const struct chan_field *f = &all[i]->fields[k];
      ASSERT(f->off + ((f->flags & CHAN_FIELD_INT) ? sizeof(int64_t) : f->cap) <=
             sizeof(struct chan_cfg));
      /* The secrets GET masks are marked as such in every table. */
      if (strcmp(f->name, "token") == 0 || strcmp(f->name, "secret") == 0 ||
          strcmp(f->name, "verify_token") == 0)
        ASSERT(f->flags & CHAN_FIELD_SECRET);
    }
  }
}

KK_TEST(channel_settings_parse_fields) {
  struct chan_cfg c;
  char err[200];
  const char *field;
  ASSERT_EQ(parse("vk", "{\"token\":\"t\",\"secret\":\"s\",\"group_id\":7,\"confirmation\":\"c\","
                        "\"base_url\":\"http://127.0.0.1:9/\",\"sender\":null,"
                        "\"webhook_url\":\"x\",\"source\":\"account\"}",
                  &c, err, sizeof err, &field),
            0);
  ASSERT_STR_EQ(c.token, "t");
  ASSERT_STR_EQ(c.secret, "s");
  ASSERT_EQ(c.group_id, 7);
  ASSERT_STR_EQ(c.confirmation, "c");
  ASSERT_STR_EQ(c.base_url, "http://127.0.0.1:9");   /* the trailing '/' dropped */
  ASSERT_STR_EQ(c.sender, "");
  ASSERT_EQ(parse("sms", "{\"sender\":\"Shop\"}", &c, err, sizeof err, &field), 0);
  ASSERT_STR_EQ(c.sender, "Shop");
  ASSERT_EQ(parse("email", "{\"smtp_url\":\"smtps://mail.test:465\",\"from\":\"a@b.test\"}", &c,
                  err, sizeof err, &field),
            0);
  ASSERT_EQ(parse("whatsapp", "{\"token\":\"t\",\"phone_number_id\":\"1\",\"verify_token\":\"v\","
                              "\"api_version\":\"v21.0\",\"secret\":\"s\"}",
                  &c, err, sizeof err, &field),
            0);
  ASSERT_STR_EQ(c.verify_token, "v");
}

KK_TEST(channel_settings_refusals) {
  ASSERT_REFUSED("vk", "[]", "(none)", "the body must be a JSON object");
  ASSERT_REFUSED("fax", "{}", "(none)", "fax: no such channel");
  /* A field of another channel is not one of this channel's. */
  ASSERT_REFUSED("telegram", "{\"token\":\"t\",\"group_id\":1}", "group_id",
                 "group_id: not a setting of the telegram channel");
  ASSERT_REFUSED("sms", "{\"base_url\":\"http://a.test\"}", "base_url",
                 "base_url: not a setting of the sms channel");
  ASSERT_REFUSED("email", "{\"secret\":\"s\"}", "secret",
                 "secret: not a setting of the email channel");
  ASSERT_REFUSED("vk", "{\"token\":\"t\",\"group_id\":0}", "group_id",
                 "group_id: a positive integer");
  ASSERT_REFUSED("vk", "{\"token\":\"t\",\"group_id\":\"1\"}", "group_id",
                 "group_id: a positive integer");
  ASSERT_REFUSED("vk", "{\"token\":5}", "token", "token: a string of at most 511 characters");
  ASSERT_REFUSED("vk", "{\"token\":\"a\\nb\"}", "token",
                 "token: a string of at most 511 characters");
  ASSERT_REFUSED("viber", "{\"token\":\"t\",\"base_url\":\"ftp://a.test\"}", "base_url",
                 "base_url: the provider's scheme and host only, e.g. https://api.vk.com");
  ASSERT_REFUSED("viber", "{\"token\":\"t\",\"base_url\":\"https://a.test/x\"}", "base_url",
                 "base_url: the provider's scheme and host only, e.g. https://api.vk.com");
  ASSERT_REFUSED("email", "{\"smtp_url\":\"http://a.test\",\"from\":\"a@b.test\"}", "smtp_url",
                 "smtp_url: smtp://host:port or smtps://host:port");
  ASSERT_REFUSED("telegram", "{\"token\":\"t\",\"secret\":\"a b\"}", "secret",
                 "secret: Telegram's secret_token allows A-Z, a-z, 0-9, _ and -");
  /* The form of a field is checked before what is missing. */
  ASSERT_REFUSED("telegram", "{\"secret\":\"a/b\"}", "secret",
                 "secret: Telegram's secret_token allows A-Z, a-z, 0-9, _ and -");
  ASSERT_REFUSED("vk", "{}", "token", "token: required for vk");
  ASSERT_REFUSED("telegram_gateway", "{\"sender\":\"x\"}", "token",
                 "token: required for telegram_gateway");
  ASSERT_REFUSED("whatsapp", "{}", "token", "token: required for whatsapp");
  ASSERT_REFUSED("whatsapp", "{\"token\":\"t\"}", "phone_number_id",
                 "phone_number_id: required for whatsapp");
  ASSERT_REFUSED("email", "{}", "smtp_url", "smtp_url: required for email");
  ASSERT_REFUSED("email", "{\"smtp_url\":\"smtp://a.test:25\"}", "from",
                 "from: required for email");
}

KK_TEST(channel_settings_json_round_trip) {
  struct chan_cfg c, d;
  char err[200];
  const char *field;
  const char *text = "{\"token\":\"t\",\"secret\":\"s\",\"group_id\":7,\"confirmation\":\"c\"}";
  ASSERT_EQ(parse("vk", text, &c, err, sizeof err, &field), 0);
  json_t *j = chan_settings_json(&c);
  char *out = json_dumps(j, JSON_COMPACT);
  ASSERT_STR_EQ(out, "{\"token\":\"t\",\"secret\":\"s\",\"group_id\":7,\"confirmation\":\"c\"}");
  ASSERT_EQ(chan_settings_parse("vk", j, &d, err, sizeof err, &field), 0);
  ASSERT(memcmp(&c, &d, sizeof c) == 0);
  free(out);
  json_decref(j);
}
