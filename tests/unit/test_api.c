/*
 * test_api.c - the send request parser's handling of "campaign": a name of
 * 1 to 64 characters A-Z a-z 0-9 _ - . that the message carries to the
 * store; anything else is refused with 422 invalid_campaign on that field.
 */
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "api/api.h"
#include "kk_test.h"

#define NOW 1700000000000LL

/* Parses one message object given as JSON text; returns api_msg_parse's
   result and leaves the item in *it (api_msg_item_fini() and json_decref()
   of *doc are the caller's). */
static int parse(const char *text, json_t **doc, struct api_msg_item *it) {
  static struct api a = {.ttl_ms = {86400000, 3600000, 86400000}};
  *doc = json_loads(text, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, NULL);
  ASSERT(*doc != NULL);
  memset(it, 0, sizeof *it);
  return api_msg_parse(&a, *doc, 1, NULL, NOW, it);
}

/* Asserts that the message text is refused for its campaign. */
static void refused(const char *text) {
  json_t *doc;
  struct api_msg_item it;
  int rc = parse(text, &doc, &it);
  if (rc == 0) kk_test_fail(__FILE__, __LINE__, "accepted: %s", text);
  ASSERT_EQ(it.err.status, 422);
  ASSERT_STR_EQ(it.err.code, "invalid_campaign");
  ASSERT_STR_EQ(it.err.field, "campaign");
  api_msg_item_fini(&it);
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
  struct api_msg_item it;
  ASSERT_EQ(parse("{\"to\":\"+79161234567\",\"text\":\"hi\",\"campaign\":\"spring-sale.2026\"}",
                  &doc, &it), 0);
  ASSERT_STR_EQ(it.m.campaign, "spring-sale.2026");
  api_msg_item_fini(&it);
  json_decref(doc);

  /* Absent or null: no campaign. */
  ASSERT_EQ(parse("{\"to\":\"+79161234567\",\"text\":\"hi\"}", &doc, &it), 0);
  ASSERT(it.m.campaign == NULL);
  api_msg_item_fini(&it);
  json_decref(doc);
  ASSERT_EQ(parse("{\"to\":\"+79161234567\",\"text\":\"hi\",\"campaign\":null}", &doc, &it), 0);
  ASSERT(it.m.campaign == NULL);
  api_msg_item_fini(&it);
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
  ASSERT_EQ(parse(text, &doc, &it), 0);
  ASSERT_STR_EQ(it.m.campaign, name);
  api_msg_item_fini(&it);
  json_decref(doc);
  strcat(name, "q");
  with_campaign(text, sizeof text, name);
  refused(text);
}
