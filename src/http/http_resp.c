/*
 * http_resp.c - HTTP/1.x response heads and chunked bodies (see http_resp.h).
 *
 * Lenient where servers differ harmlessly (bare LF line ends, spaces around
 * values, header names in any case), strict where a mistake would misframe
 * the next response on a kept-alive connection (Content-Length, chunk sizes).
 */
#include "http/http_resp.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "core/kk_err.h"

/* Length of the head through its blank line, or 0 when it has not all come. */
static size_t head_end(const char *buf, size_t len) {
  for (size_t i = 0; i < len; i++) {
    if (buf[i] != '\n') continue;
    if (i + 1 < len && buf[i + 1] == '\n') return i + 2;
    if (i + 2 < len && buf[i + 1] == '\r' && buf[i + 2] == '\n') return i + 3;
  }
  return 0;
}

/* value[0..n) without the spaces and tabs around it */
static void trim(const char **value, size_t *n) {
  while (*n && (**value == ' ' || **value == '\t')) {
    (*value)++;
    (*n)--;
  }
  while (*n && ((*value)[*n - 1] == ' ' || (*value)[*n - 1] == '\t' || (*value)[*n - 1] == '\r'))
    (*n)--;
}

static int name_is(const char *name, size_t n, const char *want) {
  return n == strlen(want) && strncasecmp(name, want, n) == 0;
}

/* 1 when the comma-separated list value[0..n) holds token (any case). */
static int has_token(const char *value, size_t n, const char *token) {
  size_t tl = strlen(token);
  size_t i = 0;
  while (i < n) {
    size_t j = i;
    while (j < n && value[j] != ',') j++;
    const char *t = value + i;
    size_t tn = j - i;
    trim(&t, &tn);
    if (tn == tl && strncasecmp(t, token, tl) == 0) return 1;
    i = j + 1;
  }
  return 0;
}

static int header(struct http_resp_head *h, const char *name, size_t nn, const char *value,
                  size_t vn, int *keep_alive) {
  trim(&name, &nn);
  trim(&value, &vn);
  if (name_is(name, nn, "content-length")) {
    if (vn == 0 || vn > 18) return KK_EPROTO;
    long long v = 0;
    for (size_t i = 0; i < vn; i++) {
      if (value[i] < '0' || value[i] > '9') return KK_EPROTO;
      v = v * 10 + (value[i] - '0');
    }
    if (h->content_length >= 0 && h->content_length != v) return KK_EPROTO;
    h->content_length = v;
  } else if (name_is(name, nn, "transfer-encoding")) {
    h->chunked = has_token(value, vn, "chunked");
  } else if (name_is(name, nn, "connection")) {
    if (has_token(value, vn, "close")) h->close = 1;
    if (has_token(value, vn, "keep-alive")) *keep_alive = 1;
  } else if (name_is(name, nn, "retry-after")) {
    size_t n = vn < sizeof h->retry_after - 1 ? vn : sizeof h->retry_after - 1;
    memcpy(h->retry_after, value, n);
    h->retry_after[n] = '\0';
  }
  return 0;
}

long http_resp_head_parse(const char *buf, size_t len, struct http_resp_head *h) {
  memset(h, 0, sizeof *h);
  h->content_length = -1;
  size_t end = head_end(buf, len);
  if (end == 0) return len > HTTP_RESP_HEAD_MAX ? KK_ETOOBIG : 0;
  if (end > HTTP_RESP_HEAD_MAX) return KK_ETOOBIG;
  /* HTTP/1.x NNN reason */
  if (end < 13 || memcmp(buf, "HTTP/1.", 7) != 0 || (buf[7] != '0' && buf[7] != '1') ||
      buf[8] != ' ')
    return KK_EPROTO;
  int st = 0;
  for (int i = 9; i < 12; i++) {
    if (buf[i] < '0' || buf[i] > '9') return KK_EPROTO;
    st = st * 10 + (buf[i] - '0');
  }
  if (st < 100 || st > 599 || (buf[12] != ' ' && buf[12] != '\r' && buf[12] != '\n')) return KK_EPROTO;
  h->status = st;
  int http10 = buf[7] == '0', keep_alive = 0;
  size_t i = 0;
  while (i < end && buf[i] != '\n') i++;
  i++;
  while (i < end) {
    size_t j = i;
    while (j < end && buf[j] != '\n') j++;
    size_t n = j - i;
    if (n && buf[i + n - 1] == '\r') n--;
    if (n == 0) break;                        /* the blank line */
    if (buf[i] == ' ' || buf[i] == '\t') return KK_EPROTO;   /* folded lines are obsolete */
    const char *colon = memchr(buf + i, ':', n);
    if (colon == NULL) return KK_EPROTO;
    size_t nn = (size_t)(colon - (buf + i));
    if (header(h, buf + i, nn, colon + 1, n - nn - 1, &keep_alive) != 0) return KK_EPROTO;
    i = j + 1;
  }
  if (http10 && !keep_alive) h->close = 1;
  if (h->chunked) h->content_length = -1;
  return (long)end;
}

enum { CH_SIZE, CH_EXT, CH_SIZE_LF, CH_DATA, CH_DATA_CR, CH_DATA_LF, CH_TRAILER, CH_TRAILER_LINE,
       CH_DONE };

/* The value of hex digit ch, or -1 when ch is none ("no value", not an error). */
static int hexval(char ch) {
  if (ch >= '0' && ch <= '9') return ch - '0';
  if (ch >= 'a' && ch <= 'f') return ch - 'a' + 10;
  if (ch >= 'A' && ch <= 'F') return ch - 'A' + 10;
  return -1;
}

long http_chunked_feed(struct http_chunked *c, const char *buf, size_t len, struct kk_buf *out,
                       int *done) {
  size_t i = 0;
  *done = c->state == CH_DONE;
  while (i < len && c->state != CH_DONE) {
    char ch = buf[i];
    switch (c->state) {
    case CH_SIZE: {
      int v = hexval(ch);
      if (v >= 0) {
        if (++c->digits > 15) return KK_EPROTO;
        c->left = c->left * 16 + (unsigned)v;
        i++;
        break;
      }
      if (c->digits == 0) return KK_EPROTO;
      c->state = (ch == ';' || ch == ' ' || ch == '\t') ? CH_EXT : CH_SIZE_LF;
      if (c->state == CH_EXT) i++;
      break;
    }
    case CH_EXT:                               /* chunk extensions: ignored */
      if (ch == '\r' || ch == '\n') c->state = CH_SIZE_LF;
      else i++;
      break;
    case CH_SIZE_LF:
      if (ch == '\r') {
        i++;
        break;
      }
      if (ch != '\n') return KK_EPROTO;
      i++;
      c->digits = 0;
      c->state = c->left ? CH_DATA : CH_TRAILER;
      break;
    case CH_DATA: {
      size_t n = len - i;
      if ((unsigned long long)n > c->left) n = (size_t)c->left;
      if (kk_buf_append(out, buf + i, n) != 0) return KK_ETOOBIG;
      i += n;
      c->left -= n;
      if (c->left == 0) c->state = CH_DATA_CR;
      break;
    }
    case CH_DATA_CR:
      if (ch == '\r') {
        i++;
        c->state = CH_DATA_LF;
        break;
      }
      c->state = CH_DATA_LF;
      break;
    case CH_DATA_LF:
      if (ch != '\n') return KK_EPROTO;
      i++;
      c->state = CH_SIZE;
      break;
    case CH_TRAILER:                           /* at the start of a trailer line */
      if (ch == '\r') {
        i++;
        break;
      }
      i++;
      c->state = ch == '\n' ? CH_DONE : CH_TRAILER_LINE;
      break;
    case CH_TRAILER_LINE:
      i++;
      if (ch == '\n') c->state = CH_TRAILER;
      break;
    }
  }
  *done = c->state == CH_DONE;
  return (long)i;
}
