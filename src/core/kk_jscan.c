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

/* Calls each(key, klen, value, vlen, arg) for every member of the object in
   text[0..len), in order (the key without its quotes, the value as written).
   0 when the whole object was walked, -1 when it cannot be. */
static int walk(const char *text, size_t len,
                void (*each)(const char *k, size_t klen, const char *v, size_t vlen, void *arg),
                void *arg) {
  const char *p = text, *end = text + len;
  p = skip_ws(p, end);
  if (p >= end || *p != '{') return -1;
  p = skip_ws(p + 1, end);
  if (p < end && *p == '}') return 0;
  for (;;) {
    if (p >= end || *p != '"') return -1;
    const char *k = p + 1, *kend = skip_string(p, end);
    if (kend == NULL) return -1;
    p = skip_ws(kend, end);
    if (p >= end || *p != ':') return -1;
    p = skip_ws(p + 1, end);
    const char *v = p;
    p = skip_value(p, end);
    if (p == NULL) return -1;
    each(k, (size_t)(kend - 1 - k), v, (size_t)(p - v), arg);
    p = skip_ws(p, end);
    if (p < end && *p == ',') {
      p = skip_ws(p + 1, end);
      continue;
    }
    return p < end && *p == '}' ? 0 : -1;
  }
}

/* A key written with an escape never equals a plain one here: json_dumps
   writes plain ASCII as it is. */
static int key_is(const char *k, size_t klen, const char *key) {
  return strlen(key) == klen && memcmp(k, key, klen) == 0;
}

struct one {
  const char *key, *v;
  size_t vlen;
};

static void one_each(const char *k, size_t klen, const char *v, size_t vlen, void *arg) {
  struct one *o = arg;
  if (!key_is(k, klen, o->key)) return;
  o->v = v;   /* the last of several, as json_loads */
  o->vlen = vlen;
}

const char *kk_jscan_member(const char *text, size_t len, const char *key, size_t *vlen) {
  struct one o = {key, NULL, 0};
  if (walk(text, len, one_each, &o) != 0 || o.v == NULL) return NULL;
  *vlen = o.vlen;
  return o.v;
}

/* The value at v decoded: a plain string (no escapes) directly, anything
   else through jansson. NULL when it is not valid JSON. */
static json_t *decode(const char *v, size_t vlen) {
  if (vlen >= 2 && v[0] == '"' && memchr(v, '\\', vlen) == NULL)
    return json_stringn(v + 1, vlen - 2);
  return json_loadb(v, vlen, JSON_DECODE_ANY, NULL);
}

struct pick {
  const char *const *keys;
  int n;
  const char **v;   /* each key's value, NULL when absent */
  size_t *vlen;
};

static void pick_each(const char *k, size_t klen, const char *v, size_t vlen, void *arg) {
  struct pick *pk = arg;
  for (int i = 0; i < pk->n; i++)
    if (pk->keys[i] && key_is(k, klen, pk->keys[i])) {
      pk->v[i] = v;   /* the last of several, as json_loads */
      pk->vlen[i] = vlen;
    }
}

json_t *kk_jscan_pick(const char *text, const char *const *keys, int n) {
  const char **v = kk_xcalloc((size_t)n + 1, sizeof *v);     /* freed below */
  size_t *vlen = kk_xcalloc((size_t)n + 1, sizeof *vlen);   /* freed below */
  struct pick pk = {keys, n, v, vlen};
  json_t *o = NULL;
  if (walk(text, strlen(text), pick_each, &pk) == 0) {
    o = json_object();
    for (int i = 0; i < n && o; i++) {
      if (v[i] == NULL || json_object_get(o, keys[i])) continue;
      json_t *x = decode(v[i], vlen[i]);
      if (x == NULL) {
        json_decref(o);
        o = NULL;
      } else {
        json_object_set_new(o, keys[i], x);
      }
    }
  }
  free(v);
  free(vlen);
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
