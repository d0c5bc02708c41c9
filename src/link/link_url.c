/*
 * link_url.c - URLs in texts, short link codes and UTM tags (link_url.h).
 */
#include "link/link_url.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "core/kk_err.h"
#include "core/kk_mem.h"

/* The code point at p (n bytes left) into *cp: its length in bytes, or 0
   when the bytes there are not UTF-8 (overlong forms and surrogates
   included). */
static size_t utf8_at(const unsigned char *p, size_t n, uint32_t *cp) {
  if (n == 0) return 0;
  unsigned c = p[0];
  size_t len;
  uint32_t v, min;
  if (c < 0x80) {
    *cp = c;
    return 1;
  } else if ((c & 0xE0) == 0xC0) {
    len = 2, v = c & 0x1F, min = 0x80;
  } else if ((c & 0xF0) == 0xE0) {
    len = 3, v = c & 0x0F, min = 0x800;
  } else if ((c & 0xF8) == 0xF0) {
    len = 4, v = c & 0x07, min = 0x10000;
  } else {
    return 0;
  }
  if (n < len) return 0;
  for (size_t i = 1; i < len; i++) {
    if ((p[i] & 0xC0) != 0x80) return 0;
    v = (v << 6) | (p[i] & 0x3F);
  }
  if (v < min || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF)) return 0;
  *cp = v;
  return len;
}

/* 1 when code point c ends a URL in text. */
static int ends_url(uint32_t c) {
  if (c <= 0x20 || c == 0x7F) return 1;
  if (c < 0x80) return strchr("\"<>`{}|\\^", (int)c) != NULL;
  if (c >= 0x80 && c <= 0x9F) return 1;           /* C1 controls */
  switch (c) {
  case 0x00A0: case 0x00AB: case 0x00BB: case 0x1680: case 0x2013: case 0x2014:
  case 0x2018: case 0x2019: case 0x201A: case 0x201C: case 0x201D: case 0x201E:
  case 0x2026: case 0x2028: case 0x2029: case 0x2039: case 0x203A: case 0x202F:
  case 0x205F: case 0x3000: case 0xFEFF:
    return 1;
  }
  return c >= 0x2000 && c <= 0x200B;               /* spaces of every width */
}

static int is_alnum(unsigned char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* The length of the scheme at p ("http://" 7, "https://" 8), or 0. */
static size_t scheme_at(const char *p, size_t n) {
  static const char *const schemes[] = {"https://", "http://"};
  for (int i = 0; i < 2; i++) {
    size_t k = strlen(schemes[i]);
    if (n >= k && strncasecmp(p, schemes[i], k) == 0) return k;
  }
  return 0;
}

/* The URL's length once sentence punctuation and brackets that close
   nothing inside it are taken off its end. */
static size_t trim(const char *u, size_t n, size_t min) {
  for (;;) {
    if (n <= min) return n;
    char c = u[n - 1];
    if (strchr(".,;:!?'*", c)) {
      n--;
      continue;
    }
    if (c == ')' || c == ']') {
      char open = c == ')' ? '(' : '[';
      int depth = 0;
      for (size_t i = 0; i < n; i++) depth += u[i] == open ? 1 : u[i] == c ? -1 : 0;
      if (depth < 0) {
        n--;
        continue;
      }
    }
    return n;
  }
}

int link_url_next(const char *text, size_t len, size_t from, size_t *start, size_t *ulen) {
  const unsigned char *t = (const unsigned char *)text;
  for (size_t i = from; i < len; i++) {
    if (t[i] != 'h' && t[i] != 'H') continue;
    if (i > 0 && is_alnum(t[i - 1])) continue;
    size_t k = scheme_at(text + i, len - i);
    if (k == 0) continue;
    size_t j = i + k;
    /* a host: a letter or digit, an IPv6 bracket or a letter beyond ASCII */
    if (j >= len || !(is_alnum(t[j]) || t[j] == '[' || t[j] >= 0x80)) continue;
    while (j < len) {
      uint32_t cp;
      size_t n = utf8_at(t + j, len - j, &cp);
      if (n == 0 || ends_url(cp)) break;
      j += n;
    }
    size_t n = trim(text + i, j - i, k + 1);
    if (n <= k) continue;
    *start = i;
    *ulen = n;
    return 1;
  }
  return 0;
}

char *link_rewrite(const char *text, size_t len, link_replace_fn fn, void *arg, size_t *out_len,
                   int *n) {
  size_t cap = len + 1, o = 0, at = 0, s, ul;
  char *out = kk_xmalloc(cap);
  int count = 0;
  while (link_url_next(text, len, at, &s, &ul)) {
    const char *rep = fn(arg, text + s, ul);
    size_t keep = s - at, rl = rep ? strlen(rep) : ul;
    if (o + keep + rl + 1 > cap) {
      cap = 2 * (o + keep + rl + 1);
      out = kk_xrealloc(out, cap);
    }
    memcpy(out + o, text + at, keep);
    o += keep;
    memcpy(out + o, rep ? rep : text + s, rl);
    o += rl;
    count += rep != NULL;
    at = s + ul;
  }
  if (o + (len - at) + 1 > cap) {
    cap = o + (len - at) + 1;
    out = kk_xrealloc(out, cap);
  }
  memcpy(out + o, text + at, len - at);
  o += len - at;
  out[o] = '\0';
  if (out_len) *out_len = o;
  if (n) *n = count;
  return out;
}

static const char b62[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

void link_code_new(char out[LINK_CODE_LEN + 1]) {
  int k = 0;
  while (k < LINK_CODE_LEN) {
    unsigned char b[32];
    if (getrandom(b, sizeof b, 0) != (ssize_t)sizeof b) abort();   /* no randomness: a bug */
    /* 248 = 4 * 62: bytes past it are dropped, so that each character is
       as likely as any other */
    for (size_t i = 0; i < sizeof b && k < LINK_CODE_LEN; i++)
      if (b[i] < 248) out[k++] = b62[b[i] % 62];
  }
  out[LINK_CODE_LEN] = '\0';
}

int link_code_valid(const char *s) {
  if (s == NULL || strlen(s) != LINK_CODE_LEN) return 0;
  for (; *s; s++)
    if (!is_alnum((unsigned char)*s)) return 0;
  return 1;
}

/* ---- UTM tags ------------------------------------------------------------------ */

/* Appends s[0..n) to out at *o, percent-encoding what may not stand in a
   header; 0 or KK_ENOSPC. */
static int put(char *out, size_t cap, size_t *o, const char *s, size_t n) {
  static const char hex[] = "0123456789ABCDEF";
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    int esc = c <= 0x20 || c >= 0x7F || strchr("\"<>\\^`{|}", c) != NULL;
    if (*o + (esc ? 3 : 1) >= cap) return KK_ENOSPC;
    if (esc) {
      out[(*o)++] = '%';
      out[(*o)++] = hex[c >> 4];
      out[(*o)++] = hex[c & 15];
    } else {
      out[(*o)++] = (char)c;
    }
  }
  return 0;
}

/* 1 when the query q[0..n) has a parameter named name. */
static int has_param(const char *q, size_t n, const char *name) {
  size_t k = strlen(name);
  for (size_t i = 0; i < n;) {
    size_t e = i;
    while (e < n && q[e] != '&') e++;
    size_t key = i;
    while (key < e && q[key] != '=') key++;
    if (key - i == k && strncmp(q + i, name, k) == 0) return 1;
    i = e + 1;
  }
  return 0;
}

/* A tag's value: letters, digits and - . _ ~ as they are, the rest
   percent-encoded. */
static int put_value(char *out, size_t cap, size_t *o, const char *v) {
  static const char hex[] = "0123456789ABCDEF";
  for (; *v; v++) {
    unsigned char c = (unsigned char)*v;
    int plain = is_alnum(c) || c == '-' || c == '.' || c == '_' || c == '~';
    if (*o + (plain ? 1 : 3) >= cap) return KK_ENOSPC;
    if (plain) {
      out[(*o)++] = (char)c;
    } else {
      out[(*o)++] = '%';
      out[(*o)++] = hex[c >> 4];
      out[(*o)++] = hex[c & 15];
    }
  }
  return 0;
}

int link_utm_add(const char *url, const char *channel, const char *campaign, char *out,
                 size_t cap) {
  if (cap == 0) return KK_ENOSPC;
  size_t len = strlen(url);
  const char *hash = memchr(url, '#', len);
  size_t before = hash ? (size_t)(hash - url) : len;
  const char *qm = memchr(url, '?', before);
  const char *q = qm ? qm + 1 : url + before;
  size_t qn = qm ? before - (size_t)(q - url) : 0;
  size_t o = 0;
  if (put(out, cap, &o, url, before) != 0) return KK_ENOSPC;
  const char *names[3] = {"utm_source", "utm_medium", "utm_campaign"};
  const char *values[3] = {"kaskad", channel ? channel : "", campaign ? campaign : ""};
  int sep = qm == NULL ? '?' : (qn > 0 && q[qn - 1] != '&') ? '&' : 0;
  for (int i = 0; i < 3; i++) {
    if (has_param(q, qn, names[i]) || !values[i][0]) continue;
    size_t k = strlen(names[i]);
    if (o + k + 3 >= cap) return KK_ENOSPC;
    if (sep) out[o++] = (char)sep;
    memcpy(out + o, names[i], k);
    o += k;
    out[o++] = '=';
    if (put_value(out, cap, &o, values[i]) != 0) return KK_ENOSPC;
    sep = '&';
  }
  if (hash && put(out, cap, &o, hash, len - before) != 0) return KK_ENOSPC;
  out[o] = '\0';
  return (int)o;
}
