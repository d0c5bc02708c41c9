/*
 * kk_mem.h - allocation that never returns NULL.
 *
 * kaskad acknowledges a message only after it is committed to the store, so
 * aborting on out-of-memory loses nothing acknowledged; callers therefore never
 * check these results. Everything returned is freed with free().
 */
#ifndef KK_MEM_H
#define KK_MEM_H

#include <stddef.h>
#include <string.h>

void *kk_xmalloc(size_t n);
void *kk_xcalloc(size_t count, size_t n);
void *kk_xrealloc(void *p, size_t n);
char *kk_xstrdup(const char *s);
/* Copies n bytes of s and a terminating NUL. */
char *kk_xstrndup(const char *s, size_t n);

/* Copies s (NULL: "") into dst of size bytes, cut to fit and NUL-terminated:
   what snprintf(dst, size, "%s", s) does, without parsing a format (the
   writer copies a message's fields a few times per message). */
static inline void kk_scopy(char *dst, size_t size, const char *s) {
  if (size == 0) return;
  size_t n = s ? strnlen(s, size - 1) : 0;
  if (n) memcpy(dst, s, n);
  dst[n] = '\0';
}

#endif
