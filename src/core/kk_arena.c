/*
 * kk_arena.c - a bump allocator in chunks (see kk_arena.h).
 */
#include "core/kk_arena.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/kk_mem.h"

#define ALIGN _Alignof(max_align_t)

struct kk_arena_chunk {
  struct kk_arena_chunk *next;
  _Alignas(max_align_t) char data[];
};

struct kk_arena_defer {
  struct kk_arena_defer *next;
  void (*fn)(void *);
  void *p;
};

void kk_arena_init(struct kk_arena *ar) {
  ar->chunks = NULL;
  ar->defers = NULL;
  ar->p = ar->first;
  ar->left = sizeof ar->first;
  ar->next = 2 * KK_ARENA_FIRST;
}

/* Makes a heap chunk with room for at least n bytes the current one. */
static void grow(struct kk_arena *ar, size_t n) {
  size_t size = ar->next;
  while (size < n) size *= 2;
  struct kk_arena_chunk *c = kk_xmalloc(sizeof *c + size);
  c->next = ar->chunks;
  ar->chunks = c;
  ar->p = c->data;
  ar->left = size;
  ar->next = size * 2;
}

void *kk_arena_alloc(struct kk_arena *ar, size_t n) {
  if (n == 0) n = 1;
  if (n > SIZE_MAX / 2 - ALIGN) abort();
  size_t padded = (n + ALIGN - 1) & ~(size_t)(ALIGN - 1);
  if (padded > ar->left) grow(ar, padded);
  void *p = ar->p;
  ar->p += padded;
  ar->left -= padded;
  return p;
}

void *kk_arena_zalloc(struct kk_arena *ar, size_t n) {
  void *p = kk_arena_alloc(ar, n);
  memset(p, 0, n);
  return p;
}

char *kk_arena_strndup(struct kk_arena *ar, const char *s, size_t n) {
  size_t len = strnlen(s, n);
  char *d = kk_arena_alloc(ar, len + 1);
  memcpy(d, s, len);
  d[len] = '\0';
  return d;
}

char *kk_arena_strdup(struct kk_arena *ar, const char *s) {
  return kk_arena_strndup(ar, s, SIZE_MAX);
}

char *kk_arena_printf(struct kk_arena *ar, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  if (n < 0) n = 0;
  char *d = kk_arena_alloc(ar, (size_t)n + 1);
  va_start(ap, fmt);
  vsnprintf(d, (size_t)n + 1, fmt, ap);
  va_end(ap);
  return d;
}

void kk_arena_defer(struct kk_arena *ar, void (*fn)(void *), void *p) {
  struct kk_arena_defer *d = kk_arena_alloc(ar, sizeof *d);
  *d = (struct kk_arena_defer){.next = ar->defers, .fn = fn, .p = p};
  ar->defers = d;
}

void kk_arena_free(struct kk_arena *ar) {
  for (struct kk_arena_defer *d = ar->defers; d; d = d->next) d->fn(d->p);
  struct kk_arena_chunk *c = ar->chunks;
  while (c) {
    struct kk_arena_chunk *next = c->next;
    free(c);
    c = next;
  }
  kk_arena_init(ar);
}
