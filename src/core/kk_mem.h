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

void *kk_xmalloc(size_t n);
void *kk_xcalloc(size_t count, size_t n);
void *kk_xrealloc(void *p, size_t n);
char *kk_xstrdup(const char *s);
/* Copies n bytes of s and a terminating NUL. */
char *kk_xstrndup(const char *s, size_t n);

#endif
