/* kk_mem.c - aborting allocators (see kk_mem.h). */
#include "core/kk_mem.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void oom(size_t n) {
  fprintf(stderr, "kaskad: out of memory allocating %zu bytes\n", n);
  abort();
}

void *kk_xmalloc(size_t n) {
  void *p = malloc(n ? n : 1);
  if (p == NULL) oom(n);
  return p;
}

void *kk_xcalloc(size_t count, size_t n) {
  void *p = calloc(count ? count : 1, n ? n : 1);
  if (p == NULL) oom(count * n);
  return p;
}

void *kk_xrealloc(void *p, size_t n) {
  void *q = realloc(p, n ? n : 1);
  if (q == NULL) oom(n);
  return q;
}

char *kk_xstrdup(const char *s) { return kk_xstrndup(s, strlen(s)); }

char *kk_xstrndup(const char *s, size_t n) {
  char *p = kk_xmalloc(n + 1);
  memcpy(p, s, n);
  p[n] = '\0';
  return p;
}
