/*
 * kk_hold.h - the set of accounts whose work is held (suspended accounts).
 *
 * The API changes it; the dispatcher and the cascade engine ask it before
 * they start a send. It is small (suspensions are rare), so it is a sorted
 * array, and an empty set costs one comparison per question.
 */
#ifndef KK_HOLD_H
#define KK_HOLD_H

#include <stddef.h>
#include <stdint.h>

struct kk_hold {
  int64_t *ids;             /* sorted, malloc'd */
  size_t n, cap;
};

/* 1 when the account's work is held. h may be NULL (nothing held). */
int kk_hold_has(const struct kk_hold *h, int64_t account_id);
/* Holds (on 1) or releases (on 0) an account's work. */
void kk_hold_set(struct kk_hold *h, int64_t account_id, int on);
void kk_hold_fini(struct kk_hold *h);

#endif
