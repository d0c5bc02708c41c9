/* kk_buf.c - capped growable buffer (see kk_buf.h). */
#include "core/kk_buf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/kk_err.h"
#include "core/kk_mem.h"

void kk_buf_init(struct kk_buf *b, size_t max) {
  b->p = NULL;
  b->len = 0;
  b->cap = 0;
  b->max = max;
}

void kk_buf_fini(struct kk_buf *b) {
  free(b->p);
  b->p = NULL;
  b->len = b->cap = 0;
}

static int reserve(struct kk_buf *b, size_t extra) {
  if (extra > b->max - b->len) return KK_ENOSPC;
  size_t need = b->len + extra;
  if (need <= b->cap && b->p != NULL) return 0;
  size_t cap = b->cap ? b->cap : 64;
  while (cap < need) cap *= 2;
  if (cap > b->max) cap = b->max;
  b->p = kk_xrealloc(b->p, cap + 1);
  b->cap = cap;
  return 0;
}

int kk_buf_append(struct kk_buf *b, const void *p, size_t n) {
  int rc = reserve(b, n);
  if (rc) return rc;
  if (n) memcpy(b->p + b->len, p, n);
  b->len += n;
  b->p[b->len] = '\0';
  return 0;
}

int kk_buf_puts(struct kk_buf *b, const char *s) {
  return kk_buf_append(b, s, strlen(s));
}

int kk_buf_vprintf(struct kk_buf *b, const char *fmt, va_list ap) {
  /* Into the room there is first (cap never passes max): formatted a second
     time only when it did not fit. */
  size_t room = b->p ? b->cap - b->len : 0;
  va_list ap2;
  va_copy(ap2, ap);
  int n = vsnprintf(b->p ? b->p + b->len : NULL, b->p ? room + 1 : 0, fmt, ap2);
  va_end(ap2);
  if (n >= 0 && b->p && (size_t)n <= room) {
    b->len += (size_t)n;
    return 0;
  }
  if (b->p) b->p[b->len] = '\0';   /* what did not fit is dropped */
  if (n < 0) return KK_EINVAL;
  int rc = reserve(b, (size_t)n);
  if (rc) return rc;
  vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
  b->len += (size_t)n;
  return 0;
}

int kk_buf_printf(struct kk_buf *b, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int rc = kk_buf_vprintf(b, fmt, ap);
  va_end(ap);
  return rc;
}

void kk_buf_consume(struct kk_buf *b, size_t n) {
  if (n >= b->len) {
    b->len = 0;
  } else {
    memmove(b->p, b->p + n, b->len - n);
    b->len -= n;
  }
  if (b->p) b->p[b->len] = '\0';
}

void kk_buf_reset(struct kk_buf *b) {
  b->len = 0;
  if (b->p) b->p[0] = '\0';
}

char *kk_buf_take(struct kk_buf *b, size_t *len) {
  char *p = b->p;
  if (len) *len = b->len;
  if (p == NULL) {
    p = kk_xmalloc(1);
    p[0] = '\0';
  }
  b->p = NULL;
  b->len = b->cap = 0;
  return p;
}
