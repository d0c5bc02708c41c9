/*
 * test_json.c - kk_json: what it writes is json_dumps(v, JSON_COMPACT) byte
 * for byte, and what it refuses is dumped by jansson instead.
 */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "core/kk_err.h"
#include "core/kk_json.h"
#include "kk_test.h"

/* kk_json_dumps(v) and json_dumps(v, JSON_COMPACT) alike; v released. */
static void assert_as_jansson(json_t *v) {
  char *ours = kk_json_dumps(v), *theirs = json_dumps(v, JSON_COMPACT);
  ASSERT(ours != NULL && theirs != NULL);
  ASSERT_STR_EQ(ours, theirs);
  free(ours);
  free(theirs);
  json_decref(v);
}

KK_TEST(json_dumps_as_jansson) {
  static const char *const docs[] = {
      "{}",
      "[]",
      "{\"a\":[],\"b\":{},\"c\":[{}],\"d\":null,\"e\":true,\"f\":false}",
      "{\"vk_id\":\"1000001\",\"quiet\":{\"tz\":\"Europe/Moscow\",\"from\":21,\"to\":9},"
      "\"texts\":{\"vk\":\"Заказ готов: скидка 10%\",\"sms\":\"Код 1234 ё 🙂\"}}",
      "{\"n\":[0,-1,9223372036854775807,-9223372036854775808,42]}",
      "{\"esc\":\"q\\\" b\\\\ s/ \\b\\f\\n\\r\\t \\u0001\\u001f \\u007f \\u2028 end\"}",
      "{\"k\\\"ey\\n\":1,\"dup\":1,\"z\":2,\"a\":3}",
      "[[[[\"deep\"]]],{\"x\":[1,\"2\",{\"y\":[]}]}]",
  };
  for (size_t i = 0; i < sizeof docs / sizeof docs[0]; i++) {
    json_error_t je;
    json_t *v = json_loads(docs[i], 0, &je);
    ASSERT(v != NULL);
    assert_as_jansson(v);
  }
  /* a NUL inside a string, and members in the order they were set */
  json_t *o = json_object();
  json_object_set_new(o, "zz", json_stringn("a\0b", 3));
  json_object_set_new(o, "aa", json_string(""));
  json_object_set_new(o, "mm", json_integer(7));
  json_object_set_new(o, "zz", json_string("again"));
  assert_as_jansson(o);
}

KK_TEST(json_refused_dumped_by_jansson) {
  /* a real: written by jansson */
  json_t *v = json_pack("{s:f, s:[f]}", "r", 0.1, "l", 1e300);
  struct kk_buf b;
  kk_buf_init(&b, 1024);
  ASSERT_EQ(kk_json_write(&b, v), KK_EINVAL);
  kk_buf_fini(&b);
  assert_as_jansson(v);
  /* deeper than KK_JSON_DEPTH */
  json_t *deep = json_array();
  for (int i = 0; i < KK_JSON_DEPTH + 3; i++) {
    json_t *outer = json_array();
    json_array_append_new(outer, deep);
    deep = outer;
  }
  assert_as_jansson(deep);
  /* not an object or an array: NULL, as json_dumps */
  json_t *s = json_string("x");
  ASSERT(kk_json_dumps(s) == NULL);
  ASSERT(json_dumps(s, JSON_COMPACT) == NULL);
  json_decref(s);
  /* a cap: KK_ENOSPC */
  kk_buf_init(&b, 4);
  json_t *o = json_pack("{s:s}", "key", "value");
  ASSERT_EQ(kk_json_write(&b, o), KK_ENOSPC);
  kk_buf_fini(&b);
  json_decref(o);
}

KK_TEST(json_string_escapes) {
  struct kk_buf b;
  kk_buf_init(&b, 1024);
  ASSERT_EQ(kk_json_string(&b, "a\"b\\c\x01\x7f/ж", strlen("a\"b\\c\x01\x7f/ж")), 0);
  ASSERT_STR_EQ(b.p, "\"a\\\"b\\\\c\\u0001\x7f/ж\"");
  kk_buf_fini(&b);
}
