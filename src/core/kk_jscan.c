/*
 * kk_jscan.c - members of a JSON object read from its text (kk_jscan.h).
 */
#include "core/kk_jscan.h"

#include <stdlib.h>
#include <string.h>

#include "core/kk_mem.h"

#define DEPTH_MAX 64

static const char *skip_ws(const char *p, const char *end) {
  while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')) p++;
  return p;
}

/* Past the string whose opening quote is at p, or NULL when it does not end. */
static const char *skip_string(const char *p, const char *end) {
  for (p++; p < end; p++) {
    if (*p == '\\') {
      p++;
    } else if (*p == '"') {
      return p + 1;
    }
  }
  return NULL;
}

/* Past the value at p (whitespace skipped before it), or NULL. */
static const char *skip_value(const char *p, const char *end) {
  if (p >= end) return NULL;
  if (*p == '"') return skip_string(p, end);
  if (*p == '{' || *p == '[') {
    int depth = 0;
    while (p < end) {
      if (*p == '"') {
        p = skip_string(p, end);
        if (p == NULL) return NULL;
        continue;
      }
      if (*p == '{' || *p == '[') {
        if (++depth > DEPTH_MAX) return NULL;
      } else if (*p == '}' || *p == ']') {
        if (--depth == 0) return p + 1;
      }
      p++;
    }
    return NULL;
  }
  /* a number, true, false or null */
  const char *s = p;
  while (p < end && *p != ',' && *p != '}' && *p != ']' && *p != ' ' && *p != '\t' &&
         *p != '\n' && *p != '\r')
    p++;
  return p > s ? p : NULL;
}

const char *kk_jscan_member(const char *text, size_t len, const char *key, size_t *vlen) {
  const char *p = text, *end = text + len, *found = NULL;
  size_t klen = strlen(key);
  p = skip_ws(p, end);
  if (p >= end || *p != '{') return NULL;
  p = skip_ws(p + 1, end);
  if (p < end && *p == '}') return NULL;
  for (;;) {
    if (p >= end || *p != '"') return NULL;
    const char *k = p + 1, *kend = skip_string(p, end);
    if (kend == NULL) return NULL;
    /* a key written with an escape never equals a plain one here: json_dumps
       writes plain ASCII as it is */
    int match = (size_t)(kend - 1 - k) == klen && memcmp(k, key, klen) == 0;
    p = skip_ws(kend, end);
    if (p >= end || *p != ':') return NULL;
    p = skip_ws(p + 1, end);
    const char *v = p;
    p = skip_value(p, end);
    if (p == NULL) return NULL;
    if (match) {
      found = v;
      *vlen = (size_t)(p - v);
    }
    p = skip_ws(p, end);
    if (p < end && *p == ',') {
      p = skip_ws(p + 1, end);
      continue;
    }
    if (p < end && *p == '}') return found;
    return NULL;
  }
}

/* The value at v decoded: a plain string (no escapes) directly, anything
   else through jansson. NULL when it is not valid JSON. */
static json_t *decode(const char *v, size_t vlen) {
  if (vlen >= 2 && v[0] == '"' && memchr(v, '\\', vlen) == NULL)
    return json_stringn(v + 1, vlen - 2);
  return json_loadb(v, vlen, JSON_DECODE_ANY, NULL);
}

json_t *kk_jscan_pick(const char *text, const char *const *keys, int n) {
  size_t len = strlen(text), vlen = 0;
  /* one walk to see that the text can be walked at all */
  const char *p = skip_ws(text, text + len);
  if (p >= text + len || *p != '{' || skip_value(p, text + len) == NULL) return NULL;
  json_t *o = json_object();
  for (int i = 0; i < n; i++) {
    if (keys[i] == NULL || json_object_get(o, keys[i])) continue;
    const char *v = kk_jscan_member(text, len, keys[i], &vlen);
    if (v == NULL) continue;
    json_t *x = decode(v, vlen);
    if (x == NULL) {
      json_decref(o);
      return NULL;
    }
    json_object_set_new(o, keys[i], x);
  }
  return o;
}

char *kk_jscan_string(const char *v, size_t vlen) {
  if (vlen < 2 || v[0] != '"') return NULL;
  if (memchr(v, '\\', vlen) == NULL) return kk_xstrndup(v + 1, vlen - 2);
  json_t *x = json_loadb(v, vlen, JSON_DECODE_ANY, NULL);
  char *s = json_is_string(x) ? kk_xstrdup(json_string_value(x)) : NULL;
  json_decref(x);
  return s;
}
