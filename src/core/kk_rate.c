/*
 * kk_rate.c - token buckets in an open-addressing table (see kk_rate.h).
 */
#include "core/kk_rate.h"

#include <stdlib.h>
#include <string.h>

#include "core/kk_mem.h"

struct bucket {
  int64_t key;
  double tokens;
  int64_t at;                 /* when tokens was last brought up to date */
  int used;
};

struct kk_rate {
  double rate, burst;
  int max_keys, nkeys;
  size_t cap;                 /* a power of two, at least twice max_keys */
  struct bucket *b;
};

struct kk_rate *kk_rate_new(double rate, double burst, int max_keys) {
  struct kk_rate *r = kk_xcalloc(1, sizeof *r);   /* freed by kk_rate_free() */
  r->rate = rate > 0 ? rate : 1;
  r->burst = burst >= 1 ? burst : 1;
  r->max_keys = max_keys > 0 ? max_keys : 1024;
  r->cap = 16;
  while (r->cap < 2 * (size_t)r->max_keys) r->cap *= 2;
  r->b = kk_xcalloc(r->cap, sizeof r->b[0]);
  return r;
}

void kk_rate_free(struct kk_rate *r) {
  if (r == NULL) return;
  free(r->b);
  free(r);
}

static struct bucket *find(struct kk_rate *r, int64_t key, int64_t now_ms) {
  uint64_t h = (uint64_t)key * 0x9E3779B97F4A7C15ULL;
  size_t i = (size_t)(h >> 32) & (r->cap - 1);
  for (;; i = (i + 1) & (r->cap - 1)) {
    struct bucket *b = &r->b[i];
    if (b->used && b->key == key) return b;
    if (!b->used) {
      if (r->nkeys >= r->max_keys) {
        /* Full: start again, every key with a full bucket. */
        memset(r->b, 0, r->cap * sizeof r->b[0]);
        r->nkeys = 0;
        return find(r, key, now_ms);
      }
      b->used = 1;
      b->key = key;
      b->tokens = r->burst;
      b->at = now_ms;
      r->nkeys++;
      return b;
    }
  }
}

int64_t kk_rate_take(struct kk_rate *r, int64_t key, int64_t now_ms) {
  struct bucket *b = find(r, key, now_ms);
  if (now_ms > b->at) {
    b->tokens += (double)(now_ms - b->at) * r->rate / 1000.0;
    if (b->tokens > r->burst) b->tokens = r->burst;
    b->at = now_ms;
  }
  if (b->tokens >= 1) {
    b->tokens -= 1;
    return 0;
  }
  int64_t wait = (int64_t)((1 - b->tokens) * 1000.0 / r->rate) + 1;
  return wait > 0 ? wait : 1;
}
