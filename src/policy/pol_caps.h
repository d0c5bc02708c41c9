/*
 * pol_caps.h - frequency caps across all channels: how many messages of a
 * class an account sent to a phone lately. One open-addressing table per
 * (account, class) maps the phone (its E.164 digits as a number) to a ring
 * of its newest send times (seconds), so a check is one probe whatever the
 * number of phones. The ring is as long as the table's caps need (the
 * largest max plus one, pol_caps_ring; POL_CAP_RING_DEFAULT until told):
 * 8 + 4 * ring bytes a phone (entries * 4/3 slots), 24 for the default.
 * A table takes at most the memory `limit` phones of the default ring
 * take (a longer ring: fewer phones). Past it, phones whose newest send
 * left every window are swept out; when none can be, the phone is not
 * counted (and passes) and pol_caps_full says how many sends were not.
 * Loop thread; not shared between processes.
 */
#ifndef POL_CAPS_H
#define POL_CAPS_H

#include <stddef.h>
#include <stdint.h>

#include "policy/pol_rules.h"

struct pol_caps;

/* A new set of tables holding at most limit phones each (0: 4,000,000);
   freed by pol_caps_free. */
struct pol_caps *pol_caps_new(size_t limit);
void pol_caps_free(struct pol_caps *c);

/* How many of account's messages of class cls went to phone in
   (now_ms - per_ms, now_ms]; with *oldest_ms the earliest of those (0: none). */
int pol_caps_count(const struct pol_caps *c, int64_t account_id, int cls, const char *phone,
                   int64_t now_ms, int64_t per_ms, int64_t *oldest_ms);
/* The same, counting only sends in (now_ms - per_ms, now_ms]: those not
   yet due (deferred ones counted at their due time) left out. */
int pol_caps_count_due(const struct pol_caps *c, int64_t account_id, int cls, const char *phone,
                       int64_t now_ms, int64_t per_ms);
/* Sets the ring of (account, cls)'s table to ring times a phone (1 ..
   POL_CAP_RING_MAX; the newest kept when it shrinks). 0 or KK_EINVAL. */
int pol_caps_ring(struct pol_caps *c, int64_t account_id, int cls, int ring);
/* Records a send at at_ms. 0, or KK_ENOSPC when the table is full. */
int pol_caps_add(struct pol_caps *c, int64_t account_id, int cls, const char *phone,
                 int64_t at_ms);
/* Phones held over all tables. */
size_t pol_caps_size(const struct pol_caps *c);
/* The bytes the tables' slots take. */
size_t pol_caps_bytes(const struct pol_caps *c);
/* Sends not counted because a table was full. */
uint64_t pol_caps_full(const struct pol_caps *c);

#endif
