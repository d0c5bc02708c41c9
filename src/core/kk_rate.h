/*
 * kk_rate.h - token-bucket rate limits: a limit (tokens a millisecond, a
 * burst), one bucket per thing limited, and a bounded table of buckets keyed
 * by a 64-bit number (a scope, an account). Each request takes one token.
 * Single-threaded (the loop thread).
 */
#ifndef KK_RATE_H
#define KK_RATE_H

#include <stdint.h>

/* A rate: burst tokens, refilled at per_ms a millisecond. */
struct kk_limit {
  double per_ms;             /* 0: no limit */
  double burst;
};

struct kk_bucket {
  double tokens;
  int64_t at;                /* ms of the last refill; 0: never used (full) */
};

/* Parses "200/s", "6000/m", "50/h", each with an optional ":BURST" (default:
   one second's worth, at least 1), or "0"/"off" (no limit). 0 or KK_EINVAL. */
int kk_limit_parse(const char *s, struct kk_limit *out);

/* Refills b to now: 0 when a token is there (take it with kk_bucket_take),
   else the milliseconds (at least 1) until one is. Always 0 without a limit. */
int64_t kk_bucket_wait(struct kk_bucket *b, const struct kk_limit *l, int64_t now);
/* Takes a token (after kk_bucket_wait answered 0). */
void kk_bucket_take(struct kk_bucket *b, const struct kk_limit *l);

struct kk_rate;

/*
 * Creates a table of buckets for at most max_keys keys at once, each with
 * `rate` tokens a second up to `burst`; when more keys come, the table
 * starts again from full buckets (a limit, not an account of use). Never
 * NULL (aborts when out of memory). Free it with kk_rate_free().
 */
struct kk_rate *kk_rate_new(double rate, double burst, int max_keys);
void kk_rate_free(struct kk_rate *r);

/* Takes a token of key at now_ms: 0, or the milliseconds (at least 1) until
   the next token comes, when there is none now. */
int64_t kk_rate_take(struct kk_rate *r, int64_t key, int64_t now_ms);

#endif
