/*
 * kk_arena.h - a bump allocator for what lives exactly as long as one piece
 * of work (an HTTP request): allocations are never freed one by one, all of
 * them go at once with kk_arena_free().
 *
 * The first chunk is inside the struct, so a request whose strings fit in
 * it allocates nothing from the heap; bigger requests add chunks (each at
 * least twice the last), which kk_arena_free() returns.
 */
#ifndef KK_ARENA_H
#define KK_ARENA_H

#include <stddef.h>

#define KK_ARENA_FIRST 2048

struct kk_arena_chunk;
struct kk_arena_defer;

struct kk_arena {
  struct kk_arena_chunk *chunks; /* heap chunks, newest first */
  char *p;                       /* free space of the current chunk */
  size_t left;                   /* its bytes */
  size_t next;                   /* size of the next heap chunk */
  struct kk_arena_defer *defers; /* run by kk_arena_free, newest first */
  _Alignas(max_align_t) char first[KK_ARENA_FIRST];
};

void kk_arena_init(struct kk_arena *ar);
/* n bytes aligned for any type, owned by the arena (never NULL: aborts when
   memory runs out, like kk_xmalloc). */
void *kk_arena_alloc(struct kk_arena *ar, size_t n);
/* n zeroed bytes, owned by the arena. */
void *kk_arena_zalloc(struct kk_arena *ar, size_t n);
/* A copy of s (or of its first n bytes, NUL-terminated), owned by the arena. */
char *kk_arena_strdup(struct kk_arena *ar, const char *s);
char *kk_arena_strndup(struct kk_arena *ar, const char *s, size_t n);
/* printf into the arena. */
char *kk_arena_printf(struct kk_arena *ar, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Has kk_arena_free() call fn(p) (before it frees the chunks, the newest
   first): for what the arena's owner must release with the rest but that
   lives elsewhere (a JSON document, say). */
void kk_arena_defer(struct kk_arena *ar, void (*fn)(void *), void *p);
/* Runs the deferred calls and frees every chunk; the arena is empty and usable again. */
void kk_arena_free(struct kk_arena *ar);

#endif
