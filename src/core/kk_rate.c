/*
 * kk_rate.c - token buckets, and a table of them in open addressing (see
 * kk_rate.h).
 */
#include "core/kk_rate.h"

#include <stdlib.h>
#include <string.h>

#include "core/kk_err.h"
#include "core/kk_mem.h"

int kk_limit_parse(const char *s, struct kk_limit *out) {
  memset(out, 0, sizeof *out);
  if (strcmp(s, "0") == 0 || strcmp(s, "off") == 0) return 0;
  char *end;
  double n = strtod(s, &end);
  if (end == s || n <= 0 || n > 1e9 || *end != '/') return KK_EINVAL;
  double unit_ms;
  switch (end[1]) {
  case 's': unit_ms = 1000; break;
  case 'm': unit_ms = 60000; break;
  case 'h': unit_ms = 3600000; break;
  default: return KK_EINVAL;
  }
  const char *p = end + 2;
  /* One second's worth by default, and at least one request. */
  double burst = n * 1000 / unit_ms;
  if (*p == ':') {
    burst = strtod(p + 1, &end);
    if (end == p + 1 || burst < 1 || burst > 1e9) return KK_EINVAL;
    p = end;
  }
  if (*p) return KK_EINVAL;
  out->per_ms = n / unit_ms;
  out->burst = burst < 1 ? 1 : burst;
  return 0;
}

int64_t kk_bucket_wait(struct kk_bucket *b, const struct kk_limit *l, int64_t now) {
  if (l->per_ms <= 0) return 0;
  if (b->at == 0) {
    b->tokens = l->burst;
  } else if (now > b->at) {
    b->tokens += (double)(now - b->at) * l->per_ms;
    if (b->tokens > l->burst) b->tokens = l->burst;
  }
  b->at = now;
  if (b->tokens >= 1) return 0;
  int64_t ms = (int64_t)((1 - b->tokens) / l->per_ms) + 1;
  return ms > 0 ? ms : 1;
}

void kk_bucket_take(struct kk_bucket *b, const struct kk_limit *l) {
  if (l->per_ms > 0) b->tokens -= 1;
}

struct slot {
  int64_t key;
  int used;
  struct kk_bucket bucket;
};

struct kk_rate {
  struct kk_limit limit;
  int max_keys, nkeys;
  size_t cap;                 /* a power of two, at least twice max_keys */
  struct slot *s;
};

struct kk_rate *kk_rate_new(double rate, double burst, int max_keys) {
  struct kk_rate *r = kk_xcalloc(1, sizeof *r);   /* freed by kk_rate_free() */
  r->limit.per_ms = (rate > 0 ? rate : 1) / 1000.0;
  r->limit.burst = burst >= 1 ? burst : 1;
  r->max_keys = max_keys > 0 ? max_keys : 1024;
  r->cap = 16;
  while (r->cap < 2 * (size_t)r->max_keys) r->cap *= 2;
  r->s = kk_xcalloc(r->cap, sizeof r->s[0]);
  return r;
}

void kk_rate_free(struct kk_rate *r) {
  if (r == NULL) return;
  free(r->s);
  free(r);
}

static struct slot *find(struct kk_rate *r, int64_t key) {
  uint64_t h = (uint64_t)key * 0x9E3779B97F4A7C15ULL;
  size_t i = (size_t)(h >> 32) & (r->cap - 1);
  for (;; i = (i + 1) & (r->cap - 1)) {
    struct slot *s = &r->s[i];
    if (s->used && s->key == key) return s;
    if (!s->used) {
      if (r->nkeys >= r->max_keys) {
        /* Full: start again, every key with a full bucket. */
        memset(r->s, 0, r->cap * sizeof r->s[0]);
        r->nkeys = 0;
        return find(r, key);
      }
      s->used = 1;
      s->key = key;
      r->nkeys++;
      return s;
    }
  }
}

int64_t kk_rate_take(struct kk_rate *r, int64_t key, int64_t now_ms) {
  struct slot *s = find(r, key);
  int64_t wait = kk_bucket_wait(&s->bucket, &r->limit, now_ms);
  if (wait == 0) kk_bucket_take(&s->bucket, &r->limit);
  return wait;
}
