/*
 * kk_rate.h - token buckets keyed by a 64-bit number (a scope, an account),
 * for rate limits: each key gets `rate` tokens a second up to `burst`, and
 * every request takes one. Single-threaded (the loop thread).
 */
#ifndef KK_RATE_H
#define KK_RATE_H

#include <stdint.h>

struct kk_rate;

/*
 * Creates a table for at most max_keys keys at once; when more keys come,
 * the table starts again from full buckets (a limit, not an account of
 * use). Never NULL (aborts when out of memory). Free it with kk_rate_free().
 */
struct kk_rate *kk_rate_new(double rate, double burst, int max_keys);
void kk_rate_free(struct kk_rate *r);

/* Takes a token of key at now_ms: 0, or the milliseconds (at least 1) until
   the next token comes, when there is none now. */
int64_t kk_rate_take(struct kk_rate *r, int64_t key, int64_t now_ms);

#endif
