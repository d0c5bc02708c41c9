/*
 * kk_hold.c - the set of held accounts (see kk_hold.h).
 */
#include "core/kk_hold.h"

#include <stdlib.h>
#include <string.h>

#include "core/kk_mem.h"

/* The index of the first id >= account_id. */
static size_t lower(const struct kk_hold *h, int64_t account_id) {
  size_t lo = 0, hi = h->n;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (h->ids[mid] < account_id)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo;
}

int kk_hold_has(const struct kk_hold *h, int64_t account_id) {
  if (h == NULL || h->n == 0) return 0;
  size_t i = lower(h, account_id);
  return i < h->n && h->ids[i] == account_id;
}

void kk_hold_set(struct kk_hold *h, int64_t account_id, int on) {
  size_t i = lower(h, account_id);
  int has = i < h->n && h->ids[i] == account_id;
  if (on && !has) {
    if (h->n == h->cap) {
      h->cap = h->cap ? h->cap * 2 : 8;
      h->ids = kk_xrealloc(h->ids, h->cap * sizeof *h->ids);
    }
    memmove(h->ids + i + 1, h->ids + i, (h->n - i) * sizeof *h->ids);
    h->ids[i] = account_id;
    h->n++;
  } else if (!on && has) {
    memmove(h->ids + i, h->ids + i + 1, (h->n - i - 1) * sizeof *h->ids);
    h->n--;
  }
}

void kk_hold_fini(struct kk_hold *h) {
  free(h->ids);
  memset(h, 0, sizeof *h);
}
