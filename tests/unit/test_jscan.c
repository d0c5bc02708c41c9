/*
 * test_jscan.c - kk_jscan: members read from a JSON object's text, decoded
 * as json_loads decodes them, and NULL for a text it cannot walk.
 */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "core/kk_jscan.h"
#include "kk_test.h"

KK_TEST(jscan_member) {
  const char *t = "{\"a\":\"x\\\"}\",\"texts\":{\"vk\":\"V {a}\",\"sms\":\"S\"},"
                  "\"n\":12,\"l\":[1,{\"b\":\"]\"}],\"t\":true, \"a\" : \"last\"}";
  size_t n = 0;
  const char *v = kk_jscan_member(t, strlen(t), "texts", &n);
  ASSERT(v != NULL);
  ASSERT_EQ(n, strlen("{\"vk\":\"V {a}\",\"sms\":\"S\"}"));
  size_t m = 0;
  const char *s = kk_jscan_member(v, n, "sms", &m);
  char *str = kk_jscan_string(s, m);
  ASSERT_STR_EQ(str, "S");
  free(str);
  s = kk_jscan_member(v, n, "vk", &m);
  str = kk_jscan_string(s, m);
  ASSERT_STR_EQ(str, "V {a}");
  free(str);
  ASSERT(kk_jscan_member(v, n, "viber", &m) == NULL);
  v = kk_jscan_member(t, strlen(t), "a", &n);   /* the last of two */
  str = kk_jscan_string(v, n);
  ASSERT_STR_EQ(str, "last");
  free(str);
  v = kk_jscan_member(t, strlen(t), "n", &n);
  ASSERT(v && n == 2 && memcmp(v, "12", 2) == 0);
  ASSERT(kk_jscan_string(v, n) == NULL);
  ASSERT(kk_jscan_member(t, strlen(t), "b", &n) == NULL);   /* nested: not a member */
  ASSERT(kk_jscan_member("{}", 2, "a", &n) == NULL);
  ASSERT(kk_jscan_member("[1]", 3, "a", &n) == NULL);
  ASSERT(kk_jscan_member("{\"a\":\"x", 7, "a", &n) == NULL);
}

KK_TEST(jscan_pick) {
  const char *t = "{\"vk_id\":\"12\",\"quiet\":{\"tz\":\"Europe/Moscow\",\"from\":21,\"to\":9},"
                  "\"texts\":{\"vk\":\"\\u0417\\n\"},\"e\":\"a\\\\b\"}";
  const char *keys[] = {"quiet", "vk_id", NULL, "viber_id", "e", "texts"};
  json_t *o = kk_jscan_pick(t, keys, 6);
  json_t *whole = json_loads(t, 0, NULL);
  ASSERT(o != NULL && whole != NULL);
  ASSERT(json_equal(o, whole));
  json_decref(o);
  const char *some[] = {"vk_id"};
  o = kk_jscan_pick(t, some, 1);
  ASSERT_EQ(json_object_size(o), 1);
  ASSERT_STR_EQ(json_string_value(json_object_get(o, "vk_id")), "12");
  json_decref(o);
  json_decref(whole);
  ASSERT(kk_jscan_pick("{\"a\":1", some, 1) == NULL);
  ASSERT(kk_jscan_pick("nope", some, 1) == NULL);
  ASSERT(kk_jscan_pick("{\"vk_id\":tru}", some, 1) == NULL);
}
