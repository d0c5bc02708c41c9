/*
 * fuzz_jscan.c - the members of a message's extra read from its text
 * (kk_jscan): any bytes are walked without a crash or a read past them,
 * and for an object as the writer stores it (json_dumps, JSON_COMPACT) the
 * members picked, and each member's raw value, decode to what jansson's
 * own parse gives.
 */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/kk_jscan.h"

static const char *const keys[] = {"quiet", "vk_id", "texts", "a", "", "viber_id", "sms"};
#define NKEYS ((int)(sizeof keys / sizeof keys[0]))

static void check(const char *text, size_t len, json_t *want) {
  for (int i = 0; i < NKEYS; i++) {
    size_t vlen = 0;
    const char *v = kk_jscan_member(text, len, keys[i], &vlen);
    if (v && (v < text || v + vlen > text + len)) __builtin_trap();
    char *str = v ? kk_jscan_string(v, vlen) : NULL;
    if (want) {
      json_t *w = json_object_get(want, keys[i]);
      if ((v == NULL) != (w == NULL)) __builtin_trap();
      if (v) {
        json_t *got = json_loadb(v, vlen, JSON_DECODE_ANY, NULL);
        if (got == NULL || !json_equal(got, w)) __builtin_trap();
        json_decref(got);
        if ((str != NULL) != json_is_string(w)) __builtin_trap();
        if (str && strcmp(str, json_string_value(w)) != 0) __builtin_trap();
      }
    }
    free(str);
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  /* raw bytes: walked or refused, never overrun (a copy with no NUL after it) */
  char *raw = malloc(size ? size : 1);
  if (size) memcpy(raw, data, size);
  check(raw, size, NULL);
  free(raw);
  json_t *doc = json_loadb((const char *)data, size, 0, NULL);
  if (doc == NULL) return 0;
  if (json_is_object(doc)) {
    char *text = json_dumps(doc, JSON_COMPACT);
    if (text) {
      json_t *pick = kk_jscan_pick(text, keys, NKEYS);
      if (pick == NULL) __builtin_trap();   /* json_dumps' text is always walked */
      for (int i = 0; i < NKEYS; i++) {
        json_t *w = json_object_get(doc, keys[i]), *g = json_object_get(pick, keys[i]);
        if ((w == NULL) != (g == NULL) || (w && !json_equal(w, g))) __builtin_trap();
      }
      json_decref(pick);
      check(text, strlen(text), doc);
      free(text);
    }
  }
  json_decref(doc);
  return 0;
}
