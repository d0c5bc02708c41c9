/*
 * test_arena.c - kk_arena: aligned bump allocations, chunks added past the
 * inline one, copies, and one free that returns them all (ASan checks the
 * bounds and LeakSanitizer that nothing is left); calls deferred to the
 * free run once.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/kk_arena.h"
#include "kk_test.h"

KK_TEST(arena_small_and_aligned) {
  struct kk_arena ar;
  kk_arena_init(&ar);
  char *a = kk_arena_alloc(&ar, 3);
  int64_t *b = kk_arena_alloc(&ar, sizeof *b);
  ASSERT_EQ((uintptr_t)b % _Alignof(max_align_t), 0);
  memcpy(a, "ab", 3);
  *b = 42;
  ASSERT(ar.chunks == NULL);   /* still the inline chunk */
  ASSERT_STR_EQ(a, "ab");
  char *z = kk_arena_zalloc(&ar, 100);
  for (int i = 0; i < 100; i++) ASSERT_EQ(z[i], 0);
  kk_arena_free(&ar);
}

KK_TEST(arena_grows_and_frees_once) {
  struct kk_arena ar;
  kk_arena_init(&ar);
  char *keep[200];
  for (int i = 0; i < 200; i++) {
    keep[i] = kk_arena_printf(&ar, "item %d of %s", i, "many");
    memset(kk_arena_alloc(&ar, 100), 0xAB, 100);
  }
  ASSERT(ar.chunks != NULL);
  /* Earlier allocations stay where they were as chunks are added. */
  ASSERT_STR_EQ(keep[0], "item 0 of many");
  ASSERT_STR_EQ(keep[199], "item 199 of many");
  /* One allocation larger than a chunk gets a chunk of its own size. */
  char *big = kk_arena_alloc(&ar, 1 << 20);
  memset(big, 1, 1 << 20);
  kk_arena_free(&ar);
  ASSERT(ar.chunks == NULL);
  /* Usable again after the free. */
  ASSERT_STR_EQ(kk_arena_strndup(&ar, "abcdef", 3), "abc");
  ASSERT_STR_EQ(kk_arena_strdup(&ar, ""), "");
  kk_arena_free(&ar);
}

static void count_call(void *p) {
  int *n = p;
  *n = *n * 10 + 1;
}

static void free_heap(void *p) { free(p); }

KK_TEST(arena_runs_deferred_calls_once) {
  struct kk_arena ar;
  kk_arena_init(&ar);
  int n = 0;
  kk_arena_defer(&ar, count_call, &n);
  kk_arena_defer(&ar, count_call, &n);
  kk_arena_defer(&ar, free_heap, malloc(64));  /* LeakSanitizer: freed */
  ASSERT_EQ(n, 0);
  kk_arena_free(&ar);
  ASSERT_EQ(n, 11);
  kk_arena_free(&ar);   /* nothing runs twice */
  ASSERT_EQ(n, 11);
}
