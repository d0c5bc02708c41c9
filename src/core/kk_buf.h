/*
 * kk_buf.h - a growable byte buffer with a hard cap.
 *
 * Every buffer is created with a maximum size; appends that would pass it fail
 * with KK_ENOSPC and leave the buffer unchanged. The data is always followed by
 * a NUL byte (not counted in len) so text can be used as a C string.
 */
#ifndef KK_BUF_H
#define KK_BUF_H

#include <stdarg.h>
#include <stddef.h>

struct kk_buf {
  char *p;      /* data, NUL-terminated; NULL until the first append */
  size_t len;   /* bytes used */
  size_t cap;   /* bytes allocated (excluding the NUL) */
  size_t max;   /* hard cap on len */
};

void kk_buf_init(struct kk_buf *b, size_t max);
/* Frees the storage; the buffer may be reused after kk_buf_init. */
void kk_buf_fini(struct kk_buf *b);
int kk_buf_append(struct kk_buf *b, const void *p, size_t n);
int kk_buf_puts(struct kk_buf *b, const char *s);
int kk_buf_printf(struct kk_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
int kk_buf_vprintf(struct kk_buf *b, const char *fmt, va_list ap);
/* Drops the first n bytes. */
void kk_buf_consume(struct kk_buf *b, size_t n);
void kk_buf_reset(struct kk_buf *b);
/* Hands the storage to the caller (free() it); the buffer becomes empty. */
char *kk_buf_take(struct kk_buf *b, size_t *len);

#endif
