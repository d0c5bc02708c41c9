/*
 * kk_json.c - JSON written as jansson's json_dumps writes it (kk_json.h).
 */
#include <stdint.h>
#include <stdlib.h>

#include "core/kk_err.h"
#include "core/kk_json.h"

int kk_json_string(struct kk_buf *b, const char *s, size_t n) {
  static const char hex[] = "0123456789ABCDEF";
  int rc = kk_buf_append(b, "\"", 1);
  size_t run = 0;   /* s[run..i) is copied as it is */
  for (size_t i = 0; i < n && rc == 0; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c >= 0x20 && c != '"' && c != '\\') continue;
    rc = kk_buf_append(b, s + run, i - run);
    run = i + 1;
    const char *esc = c == '"'    ? "\\\""
                      : c == '\\' ? "\\\\"
                      : c == '\b' ? "\\b"
                      : c == '\f' ? "\\f"
                      : c == '\n' ? "\\n"
                      : c == '\r' ? "\\r"
                      : c == '\t' ? "\\t"
                                  : NULL;
    char u[7] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15], '\0'};
    if (rc == 0) rc = kk_buf_puts(b, esc ? esc : u);
  }
  if (rc == 0) rc = kk_buf_append(b, s + run, n - run);
  if (rc == 0) rc = kk_buf_append(b, "\"", 1);
  return rc;
}

int kk_json_int(struct kk_buf *b, int64_t v) {
  char d[24], *p = d + sizeof d;   /* written from its end */
  uint64_t u = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;
  do *--p = (char)('0' + u % 10);
  while ((u /= 10) > 0);
  if (v < 0) *--p = '-';
  return kk_buf_append(b, p, (size_t)(d + sizeof d - p));
}

static int write_at(struct kk_buf *b, const json_t *v, int depth) {
  switch (json_typeof(v)) {
  case JSON_OBJECT: {
    if (depth >= KK_JSON_DEPTH) return KK_EINVAL;
    int rc = kk_buf_append(b, "{", 1);
    json_t *o = (json_t *)v;   /* jansson's iterators take no const */
    void *first = json_object_iter(o);
    for (void *it = first; it && rc == 0; it = json_object_iter_next(o, it)) {
      if (it != first) rc = kk_buf_append(b, ",", 1);
      if (rc == 0)
        rc = kk_json_string(b, json_object_iter_key(it), json_object_iter_key_len(it));
      if (rc == 0) rc = kk_buf_append(b, ":", 1);
      if (rc == 0) rc = write_at(b, json_object_iter_value(it), depth + 1);
    }
    return rc ? rc : kk_buf_append(b, "}", 1);
  }
  case JSON_ARRAY: {
    if (depth >= KK_JSON_DEPTH) return KK_EINVAL;
    int rc = kk_buf_append(b, "[", 1);
    for (size_t i = 0; i < json_array_size(v) && rc == 0; i++) {
      if (i > 0) rc = kk_buf_append(b, ",", 1);
      if (rc == 0) rc = write_at(b, json_array_get(v, i), depth + 1);
    }
    return rc ? rc : kk_buf_append(b, "]", 1);
  }
  case JSON_STRING: return kk_json_string(b, json_string_value(v), json_string_length(v));
  case JSON_INTEGER: return kk_json_int(b, json_integer_value(v));
  case JSON_TRUE: return kk_buf_puts(b, "true");
  case JSON_FALSE: return kk_buf_puts(b, "false");
  case JSON_NULL: return kk_buf_puts(b, "null");
  default: return KK_EINVAL;   /* a real: jansson's formatting is its own */
  }
}

int kk_json_write(struct kk_buf *b, const json_t *v) {
  return v ? write_at(b, v, 0) : KK_EINVAL;
}

char *kk_json_dumps(const json_t *v) {
  if (!json_is_object(v) && !json_is_array(v)) return NULL;
  struct kk_buf b;
  kk_buf_init(&b, SIZE_MAX / 2);
  if (kk_json_write(&b, v) != 0) {
    kk_buf_fini(&b);
    return json_dumps(v, JSON_COMPACT);   /* a real, or deeper than ours */
  }
  return kk_buf_take(&b, NULL);   /* freed by the caller */
}
