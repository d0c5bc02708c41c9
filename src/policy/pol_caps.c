/*
 * pol_caps.c - send times per (account, class, phone). See pol_caps.h.
 *
 * A table's slots are runs of 32-bit words: the phone (two words; 0 0:
 * empty) and then the ring of its newest send times (ring words). The
 * ring's size is the table's, so an account whose caps allow 2 keeps 3
 * times a phone and one that allows 100 keeps 101.
 */
#include "policy/pol_caps.h"

#include <stdlib.h>
#include <string.h>

#include "core/kk_err.h"
#include "core/kk_mem.h"

#define EPOCH_S 1577836800LL      /* times are seconds since 2020 (uint32: to 2156) */
#define DEFAULT_LIMIT 4000000u
#define PHONE_WORDS 2

struct table {
  int64_t account_id;
  int cls;
  int ring;                       /* times kept a phone */
  size_t stride;                  /* words a slot: PHONE_WORDS + ring */
  uint32_t *w;                    /* cap slots */
  size_t cap, n;                  /* cap a power of two */
  size_t limit;                   /* phones at most */
};

struct pol_caps {
  size_t limit;                   /* phones a table of the default ring holds at most */
  struct table *t;                /* grown by doubling; freed by pol_caps_free */
  int nt, tcap;
  uint64_t full;
};

struct pol_caps *pol_caps_new(size_t limit) {
  /* Freed by pol_caps_free. */
  struct pol_caps *c = kk_xcalloc(1, sizeof *c);
  c->limit = limit ? limit : DEFAULT_LIMIT;
  return c;
}

void pol_caps_free(struct pol_caps *c) {
  if (c == NULL) return;
  for (int i = 0; i < c->nt; i++) free(c->t[i].w);
  free(c->t);
  free(c);
}

static uint64_t phone_key(const char *phone) {
  uint64_t k = 0;
  for (const char *p = phone; *p >= '0' && *p <= '9' && p - phone < 18; p++)
    k = k * 10 + (uint64_t)(*p - '0');
  return k ? k : 1;
}

static uint64_t mix(uint64_t x) {
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdULL;
  x ^= x >> 33;
  x *= 0xc4ceb9fe1a85ec53ULL;
  return x ^ (x >> 33);
}

static uint32_t *slot_at(const struct table *t, size_t i) { return t->w + i * t->stride; }
static uint64_t phone_of(const uint32_t *s) { return (uint64_t)s[0] << 32 | s[1]; }
static uint32_t *times_of(uint32_t *s) { return s + PHONE_WORDS; }

/* The memory a table may take is what the default ring's slots take for
   the limit's phones: a longer ring holds fewer phones. */
static size_t limit_of(const struct pol_caps *c, int ring) {
  size_t words = (size_t)(PHONE_WORDS + POL_CAP_RING_DEFAULT);
  size_t l = c->limit * words / (size_t)(PHONE_WORDS + ring);
  return l ? l : 1;
}

static struct table *table_of(const struct pol_caps *c, int64_t account_id, int cls) {
  for (int i = 0; i < c->nt; i++)
    if (c->t[i].account_id == account_id && c->t[i].cls == cls) return (struct table *)&c->t[i];
  return NULL;
}

static struct table *table_new(struct pol_caps *c, int64_t account_id, int cls) {
  if (c->nt == c->tcap) {
    c->tcap = c->tcap ? c->tcap * 2 : 8;
    c->t = kk_xrealloc(c->t, (size_t)c->tcap * sizeof *c->t);
  }
  struct table *t = &c->t[c->nt++];
  memset(t, 0, sizeof *t);
  t->account_id = account_id;
  t->cls = cls;
  t->ring = POL_CAP_RING_DEFAULT;
  t->stride = PHONE_WORDS + (size_t)t->ring;
  t->limit = limit_of(c, t->ring);
  return t;
}

static uint32_t *find(const struct table *t, uint64_t k) {
  if (t == NULL || t->cap == 0) return NULL;
  for (size_t i = mix(k) & (t->cap - 1);; i = (i + 1) & (t->cap - 1)) {
    uint32_t *s = slot_at(t, i);
    uint64_t p = phone_of(s);
    if (p == k) return s;
    if (p == 0) return NULL;
  }
}

static uint32_t secs(int64_t ms) {
  int64_t s = ms / 1000 - EPOCH_S;
  return s < 1 ? 1 : (uint32_t)s;
}

int pol_caps_count(const struct pol_caps *c, int64_t account_id, int cls, const char *phone,
                   int64_t now_ms, int64_t per_ms, int64_t *oldest_ms) {
  *oldest_ms = 0;
  const struct table *t = table_of(c, account_id, cls);
  uint32_t *s = find(t, phone_key(phone));
  if (s == NULL) return 0;
  const uint32_t *tm = times_of(s);
  uint32_t from = secs(now_ms - per_ms), oldest = 0;
  int n = 0;
  for (int i = 0; i < t->ring; i++)
    if (tm[i] && tm[i] > from) {
      n++;
      if (oldest == 0 || tm[i] < oldest) oldest = tm[i];
    }
  if (oldest) *oldest_ms = ((int64_t)oldest + EPOCH_S) * 1000;
  return n;
}

int pol_caps_count_due(const struct pol_caps *c, int64_t account_id, int cls, const char *phone,
                       int64_t now_ms, int64_t per_ms) {
  const struct table *t = table_of(c, account_id, cls);
  uint32_t *s = find(t, phone_key(phone));
  if (s == NULL) return 0;
  const uint32_t *tm = times_of(s);
  uint32_t from = secs(now_ms - per_ms), to = secs(now_ms);
  int n = 0;
  for (int i = 0; i < t->ring; i++) n += tm[i] && tm[i] > from && tm[i] <= to;
  return n;
}

/* Puts the phone k with the newest of its n times (the rest of the ring
   unused) into t. */
static void put(struct table *t, uint64_t k, const uint32_t *tm, int n) {
  for (size_t i = mix(k) & (t->cap - 1);; i = (i + 1) & (t->cap - 1)) {
    uint32_t *s = slot_at(t, i);
    if (phone_of(s) != 0) continue;
    s[0] = (uint32_t)(k >> 32);
    s[1] = (uint32_t)k;
    uint32_t *d = times_of(s);
    memset(d, 0, (size_t)t->ring * sizeof *d);
    if (n <= t->ring) {
      if (n > 0) memcpy(d, tm, (size_t)n * sizeof *d);
    } else {
      /* a shorter ring: the newest ring times (n is at most POL_CAP_RING_MAX) */
      uint32_t sorted[POL_CAP_RING_MAX];
      memcpy(sorted, tm, (size_t)n * sizeof *sorted);
      for (int a = 1; a < n; a++)
        for (int b = a; b > 0 && sorted[b - 1] < sorted[b]; b--) {
          uint32_t x = sorted[b];
          sorted[b] = sorted[b - 1];
          sorted[b - 1] = x;
        }
      memcpy(d, sorted, (size_t)t->ring * sizeof *d);
    }
    t->n++;
    return;
  }
}

/* Rebuilds t with room for want phones and a ring of ring times, leaving
   out the phones whose newest send is before keep_after (seconds; 0 keeps
   all). */
static void rehash(struct table *t, size_t want, uint32_t keep_after, int ring) {
  size_t cap = 1024;
  while (cap * 3 < want * 4) cap <<= 1;
  uint32_t *old = t->w;
  size_t ocap = t->cap, ostride = t->stride;
  int oring = t->ring;
  /* Freed by the next rehash or pol_caps_free. */
  t->w = kk_xcalloc(cap * (PHONE_WORDS + (size_t)ring), sizeof *t->w);
  t->cap = cap;
  t->ring = ring;
  t->stride = PHONE_WORDS + (size_t)ring;
  t->n = 0;
  for (size_t i = 0; i < ocap; i++) {
    uint32_t *s = old + i * ostride;
    uint64_t k = phone_of(s);
    if (k == 0) continue;
    uint32_t newest = 0;
    for (int j = 0; j < oring; j++)
      if (times_of(s)[j] > newest) newest = times_of(s)[j];
    if (newest > keep_after) put(t, k, times_of(s), oring);
  }
  free(old);
}

int pol_caps_ring(struct pol_caps *c, int64_t account_id, int cls, int ring) {
  if (ring < 1 || ring > POL_CAP_RING_MAX) return KK_EINVAL;
  struct table *t = table_of(c, account_id, cls);
  if (t == NULL) t = table_new(c, account_id, cls);
  if (t->ring == ring) return 0;
  t->limit = limit_of(c, ring);
  if (t->cap == 0) {
    t->ring = ring;
    t->stride = PHONE_WORDS + (size_t)ring;
    return 0;
  }
  rehash(t, t->n, 0, ring);
  return 0;
}

int pol_caps_add(struct pol_caps *c, int64_t account_id, int cls, const char *phone,
                 int64_t at_ms) {
  struct table *t = table_of(c, account_id, cls);
  if (t == NULL) t = table_new(c, account_id, cls);
  uint64_t k = phone_key(phone);
  uint32_t *s = find(t, k);
  if (s == NULL) {
    if (t->n >= t->limit) {
      /* Sweep out phones whose newest send is older than any window. */
      rehash(t, t->n, secs(at_ms - POL_CAP_MAX_PER_MS), t->ring);
      if (t->n >= t->limit) {
        c->full++;
        return KK_ENOSPC;
      }
    }
    if ((t->n + 1) * 4 > t->cap * 3) rehash(t, t->n + 1 > t->cap ? t->n + 1 : t->cap, 0, t->ring);
    put(t, k, NULL, 0);
    s = find(t, k);
  }
  /* Replace the oldest (or an unused) time. */
  uint32_t *tm = times_of(s);
  int at = 0;
  for (int i = 1; i < t->ring; i++)
    if (tm[i] < tm[at]) at = i;
  tm[at] = secs(at_ms);
  return 0;
}

size_t pol_caps_size(const struct pol_caps *c) {
  size_t n = 0;
  for (int i = 0; i < c->nt; i++) n += c->t[i].n;
  return n;
}

size_t pol_caps_bytes(const struct pol_caps *c) {
  size_t b = 0;
  for (int i = 0; i < c->nt; i++) b += c->t[i].cap * c->t[i].stride * sizeof *c->t[i].w;
  return b;
}

uint64_t pol_caps_full(const struct pol_caps *c) { return c->full; }
