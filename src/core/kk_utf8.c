/*
 * kk_utf8.c - UTF-8 validation and safe copies (see kk_utf8.h).
 */
#include "core/kk_utf8.h"

#include <string.h>

#include "core/kk_err.h"
#include "core/kk_mem.h"

/* U+FFFD REPLACEMENT CHARACTER */
static const char replacement[] = "\xEF\xBF\xBD";

size_t kk_utf8_char_len(const char *s, size_t left) {
  const unsigned char *p = (const unsigned char *)s;
  if (left == 0 || p[0] == 0) return 0;
  unsigned c = p[0];
  if (c < 0x80) return 1;
  size_t k;
  unsigned lo = 0x80, hi = 0xBF;   /* the allowed range of the second byte */
  if (c >= 0xC2 && c <= 0xDF) {
    k = 2;
  } else if (c >= 0xE0 && c <= 0xEF) {
    k = 3;
    if (c == 0xE0) lo = 0xA0;      /* overlong */
    if (c == 0xED) hi = 0x9F;      /* surrogates */
  } else if (c >= 0xF0 && c <= 0xF4) {
    k = 4;
    if (c == 0xF0) lo = 0x90;      /* overlong */
    if (c == 0xF4) hi = 0x8F;      /* above U+10FFFF */
  } else {
    return 0;
  }
  if (left < k || p[1] < lo || p[1] > hi) return 0;
  for (size_t i = 2; i < k; i++)
    if ((p[i] & 0xC0) != 0x80) return 0;
  return k;
}

int kk_utf8_valid(const char *s, size_t len) {
  size_t i = 0;
  while (i < len) {
    if ((unsigned char)s[i] >= 0x01 && (unsigned char)s[i] < 0x80) {
      i++;
      continue;
    }
    size_t k = kk_utf8_char_len(s + i, len - i);
    if (k == 0) return 0;
    i += k;
  }
  return 1;
}

size_t kk_utf8_cut(const char *s, size_t len, size_t max) {
  if (len <= max) return len;
  size_t n = max;
  /* Step back over continuation bytes to the start of the cut character. */
  while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80) n--;
  return n;
}

size_t kk_utf8_copy(char *out, size_t cap, const char *in, size_t len) {
  size_t n = kk_utf8_cut(in, len, cap - 1);
  if (n) memcpy(out, in, n);
  out[n] = '\0';
  return n;
}

size_t kk_utf8_sanitize(char *out, size_t cap, const char *in, size_t len) {
  size_t i = 0, o = 0;
  while (i < len) {
    unsigned char c = (unsigned char)in[i];
    if (c >= 0x01 && c < 0x80) {   /* ASCII, most of what passes here */
      if (o + 1 > cap - 1) break;
      out[o++] = (char)c;
      i++;
      continue;
    }
    size_t k = kk_utf8_char_len(in + i, len - i);
    const char *src = k ? in + i : replacement;
    size_t n = k ? k : 3;
    if (o + n > cap - 1) break;
    memcpy(out + o, src, n);
    o += n;
    i += k ? k : 1;
  }
  out[o] = '\0';
  return o;
}

char *kk_utf8_sanitize_dup(const char *in, size_t len, size_t *outlen) {
  /* Each input byte becomes at most three output bytes. */
  size_t cap = len * 3 + 1;
  char *out = kk_xmalloc(cap);
  size_t n = kk_utf8_sanitize(out, cap, in, len);
  if (outlen) *outlen = n;
  return out;
}

/*
 * Reads one code point from s[*i..len) into *cp and advances *i. Rejects
 * stray continuation bytes, truncated sequences, overlong forms, UTF-16
 * surrogates, values above U+10FFFF and U+0000 with KK_EUTF8. A NUL has no
 * place in a message text, and the texts come from C strings elsewhere.
 */
int kk_utf8_next(const uint8_t *s, size_t len, size_t *i, uint32_t *cp) {
  uint8_t b = s[*i];
  size_t n;
  uint32_t v, min;

  if (b < 0x80) {
    if (b == 0) return KK_EUTF8;
    *cp = b;
    (*i)++;
    return 0;
  }
  if ((b & 0xE0) == 0xC0) {
    n = 2, v = b & 0x1F, min = 0x80;
  } else if ((b & 0xF0) == 0xE0) {
    n = 3, v = b & 0x0F, min = 0x800;
  } else if ((b & 0xF8) == 0xF0) {
    n = 4, v = b & 0x07, min = 0x10000;
  } else {
    return KK_EUTF8;
  }
  if (len - *i < n) return KK_EUTF8;
  for (size_t k = 1; k < n; k++) {
    uint8_t c = s[*i + k];
    if ((c & 0xC0) != 0x80) return KK_EUTF8;
    v = (v << 6) | (c & 0x3F);
  }
  if (v < min || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF)) return KK_EUTF8;
  *cp = v;
  *i += n;
  return 0;
}

/* Writes cp as UTF-8 into b (room for 4 bytes); returns the byte count. */
size_t kk_utf8_put(uint32_t cp, uint8_t *b) {
  if (cp < 0x80) {
    b[0] = (uint8_t)cp;
    return 1;
  }
  if (cp < 0x800) {
    b[0] = (uint8_t)(0xC0 | (cp >> 6));
    b[1] = (uint8_t)(0x80 | (cp & 0x3F));
    return 2;
  }
  if (cp < 0x10000) {
    b[0] = (uint8_t)(0xE0 | (cp >> 12));
    b[1] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
    b[2] = (uint8_t)(0x80 | (cp & 0x3F));
    return 3;
  }
  b[0] = (uint8_t)(0xF0 | (cp >> 18));
  b[1] = (uint8_t)(0x80 | ((cp >> 12) & 0x3F));
  b[2] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
  b[3] = (uint8_t)(0x80 | (cp & 0x3F));
  return 4;
}
