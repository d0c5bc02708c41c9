/*
 * test_api.c - the send request parser's handling of "campaign": a name of
 * 1 to 64 characters A-Z a-z 0-9 _ - . that the message carries to the
 * store; anything else is refused with 422 invalid_campaign on that field.
 */
#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "api/api_int.h"
#include "core/kk_err.h"
#include "kk_test.h"

#define NOW 1700000000000LL

/* A parsed message: the parse's storage and what accept/ made of it. */
struct parsed {
  struct api_msg_item p;
  struct accept_item it;
};

/* Parses one message object given as JSON text and prepares it as
   accept/ would (number, class, text, the message to store); returns
   api_msg_parse's result and leaves the item in *x (api_msg_item_fini()
   and json_decref() of *doc are the caller's). */
static int parse(const char *text, json_t **doc, struct parsed *x) {
  static const long long ttl[3] = {86400000, 3600000, 86400000};
  struct accept ac;
  accept_init(&ac, NULL, NULL, NULL, ttl);
  *doc = json_loads(text, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, NULL);
  ASSERT(*doc != NULL);
  memset(x, 0, sizeof *x);
  int rc = api_msg_parse(*doc, NULL, &x->p, &x->it);
  if (rc == 0) ASSERT_EQ(accept_prepare(&ac, 1, "", NOW, &x->it), 0);
  return rc;
}

/* Asserts that the message text is refused for its campaign. */
static void refused(const char *text) {
  json_t *doc;
  struct parsed x;
  int rc = parse(text, &doc, &x);
  if (rc == 0) kk_test_fail(__FILE__, __LINE__, "accepted: %s", text);
  ASSERT_EQ(x.p.err.status, 422);
  ASSERT_STR_EQ(x.p.err.code, "invalid_campaign");
  ASSERT_STR_EQ(x.p.err.field, "campaign");
  api_msg_item_fini(&x.p);
  json_decref(doc);
}

/* A message object with campaign name into text. */
static void with_campaign(char *text, size_t cap, const char *name) {
  snprintf(text, cap, "{\"to\":\"+79161234567\",\"text\":\"hi\",\"campaign\":\"%s\"}", name);
}

KK_TEST(api_campaign_valid_names) {
  ASSERT(api_campaign_valid("spring-sale.2026_A", 18));
  ASSERT(api_campaign_valid("x", 1));
  char name[STORE_CAMPAIGN_MAX + 2];
  memset(name, 'a', sizeof name);
  ASSERT(api_campaign_valid(name, STORE_CAMPAIGN_MAX));
  ASSERT(!api_campaign_valid(name, STORE_CAMPAIGN_MAX + 1));
  ASSERT(!api_campaign_valid("", 0));
  ASSERT(!api_campaign_valid("a b", 3));
  ASSERT(!api_campaign_valid("a/b", 3));
  ASSERT(!api_campaign_valid("a%20", 4));
  ASSERT(!api_campaign_valid("весна", strlen("весна")));
  /* The length decides, not a NUL inside. */
  ASSERT(!api_campaign_valid("ab\0cd", 5));
}

KK_TEST(api_msg_parse_campaign) {
  json_t *doc;
  struct parsed x;
  ASSERT_EQ(parse("{\"to\":\"+79161234567\",\"text\":\"hi\",\"campaign\":\"spring-sale.2026\"}",
                  &doc, &x), 0);
  ASSERT_STR_EQ(x.it.m.campaign, "spring-sale.2026");
  api_msg_item_fini(&x.p);
  json_decref(doc);

  /* Absent or null: no campaign. */
  ASSERT_EQ(parse("{\"to\":\"+79161234567\",\"text\":\"hi\"}", &doc, &x), 0);
  ASSERT(x.it.m.campaign == NULL);
  api_msg_item_fini(&x.p);
  json_decref(doc);
  ASSERT_EQ(parse("{\"to\":\"+79161234567\",\"text\":\"hi\",\"campaign\":null}", &doc, &x), 0);
  ASSERT(x.it.m.campaign == NULL);
  api_msg_item_fini(&x.p);
  json_decref(doc);

  refused("{\"to\":\"+79161234567\",\"text\":\"hi\",\"campaign\":\"\"}");
  refused("{\"to\":\"+79161234567\",\"text\":\"hi\",\"campaign\":\"black friday\"}");
  refused("{\"to\":\"+79161234567\",\"text\":\"hi\",\"campaign\":\"a\\u0000b\"}");
  refused("{\"to\":\"+79161234567\",\"text\":\"hi\",\"campaign\":\"распродажа\"}");
  refused("{\"to\":\"+79161234567\",\"text\":\"hi\",\"campaign\":42}");
  refused("{\"to\":\"+79161234567\",\"text\":\"hi\",\"campaign\":[\"a\"]}");

  /* 64 characters pass, 65 do not. */
  char text[160], name[STORE_CAMPAIGN_MAX + 2];
  memset(name, 'q', STORE_CAMPAIGN_MAX);
  name[STORE_CAMPAIGN_MAX] = '\0';
  with_campaign(text, sizeof text, name);
  ASSERT_EQ(parse(text, &doc, &x), 0);
  ASSERT_STR_EQ(x.it.m.campaign, name);
  api_msg_item_fini(&x.p);
  json_decref(doc);
  strcat(name, "q");
  with_campaign(text, sizeof text, name);
  refused(text);
}

KK_TEST(api_parse_time_offsets) {
  int64_t ms;
  ASSERT_EQ(api_parse_time("2026-03-01T09:00:00Z", &ms), 0);
  int64_t utc = ms;
  ASSERT_EQ(api_parse_time("2026-03-01T12:00:00+03:00", &ms), 0);
  ASSERT_EQ(ms, utc);
  ASSERT_EQ(api_parse_time("2026-03-01T19:00:00+10:00", &ms), 0);
  ASSERT_EQ(ms, utc);
  ASSERT_EQ(api_parse_time("2026-03-01T05:30:00-03:30", &ms), 0);
  ASSERT_EQ(ms, utc);
  ASSERT_EQ(api_parse_time("2026-03-01T09:00:00.250+00:00", &ms), 0);
  ASSERT_EQ(ms, utc + 250);
  ASSERT(api_parse_time("2026-03-01T09:00:00+3:00", &ms) != 0);
  ASSERT(api_parse_time("2026-03-01T09:00:00+03:60", &ms) != 0);
  ASSERT(api_parse_time("2026-03-01T09:00:00+24:00", &ms) != 0);
  ASSERT(api_parse_time("2026-03-01T09:00:00+03:00x", &ms) != 0);
  ASSERT(api_parse_time("2026-03-01T09:00:00", &ms) != 0);
}

KK_TEST(api_msg_parse_send_at) {
  json_t *doc;
  struct parsed x;
  ASSERT_EQ(parse("{\"to\":\"+79161234567\",\"text\":\"hi\",\"send_at\":\"2999-01-01T00:00:00Z\"}",
                  &doc, &x), KK_EINVAL);
  ASSERT_STR_EQ(x.p.err.code, "send_at_too_far");
  api_msg_item_fini(&x.p);
  json_decref(doc);
  ASSERT_EQ(parse("{\"to\":\"+79161234567\",\"text\":\"hi\",\"send_at\":\"2001-01-01T00:00:00Z\"}",
                  &doc, &x), KK_EINVAL);
  ASSERT_STR_EQ(x.p.err.code, "send_at_in_past");
  api_msg_item_fini(&x.p);
  json_decref(doc);
  char text[160], at[40];
  time_t t = (time_t)(store_now_ms() / 1000) + 86400;
  strftime(at, sizeof at, "%Y-%m-%dT%H:%M:%SZ", gmtime(&t));
  snprintf(text, sizeof text, "{\"to\":\"+79161234567\",\"text\":\"hi\",\"send_at\":\"%s\"}", at);
  ASSERT_EQ(parse(text, &doc, &x), 0);
  ASSERT_EQ(x.it.send_at, (int64_t)t * 1000);
  api_msg_item_fini(&x.p);
  json_decref(doc);
  const char *bad[] = {"{\"to\":\"+79161234567\",\"text\":\"hi\",\"send_at\":\"tomorrow\"}",
                       "{\"to\":\"+79161234567\",\"text\":\"hi\",\"send_at\":1}"};
  for (int i = 0; i < 2; i++) {
    ASSERT_EQ(parse(bad[i], &doc, &x), KK_EINVAL);
    ASSERT_STR_EQ(x.p.err.code, "invalid_send_at");
    ASSERT_STR_EQ(x.p.err.field, "send_at");
    api_msg_item_fini(&x.p);
    json_decref(doc);
  }
}
