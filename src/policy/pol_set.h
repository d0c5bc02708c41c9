/*
 * pol_set.h - a compact map of (account, phone) to a small value, held in
 * memory for the policy checks (the stop-list, current consents): one
 * open-addressing table of 16-byte slots, linear probing, grown at 3/4
 * load, deletions by backward shift (no tombstones). A phone is its E.164
 * digits as a number (at most 15 digits). Bounded: POL_SET_MAX entries in
 * all (a put past it fails with KK_ENOSPC). Pure; one thread.
 */
#ifndef POL_SET_H
#define POL_SET_H

#include <stddef.h>
#include <stdint.h>

#define POL_SET_MAX (32 * 1024 * 1024)   /* entries of one set (about 1 GiB at most) */

struct pol_set_slot {
  uint64_t phone;           /* 0: empty */
  uint32_t account;
  uint32_t value;
};

struct pol_set {
  struct pol_set_slot *v;   /* owned, cap of them (0 or a power of 2) */
  size_t cap, n;
  size_t max;               /* the bound (POL_SET_MAX; tests lower it) */
};

void pol_set_init(struct pol_set *s);
void pol_set_fini(struct pol_set *s);
/* The phone's digits ("79161234567", an optional '+') as a key; 0 when not
   1 to 15 digits. */
uint64_t pol_set_key(const char *phone);
/* The value of (account, phone), 0 when absent. */
uint32_t pol_set_get(const struct pol_set *s, int64_t account, uint64_t phone);
/* Sets (account, phone) to value (0 removes). 0, KK_EINVAL (a key of 0 or
   an account id past 32 bits) or KK_ENOSPC (the bound). */
int pol_set_put(struct pol_set *s, int64_t account, uint64_t phone, uint32_t value);

#endif
