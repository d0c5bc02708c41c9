/*
 * pol_caps.c - send times per (account, class, phone). See pol_caps.h.
 */
#include "policy/pol_caps.h"

#include <stdlib.h>
#include <string.h>

#include "core/kk_err.h"
#include "core/kk_mem.h"

#define EPOCH_S 1577836800LL      /* times are seconds since 2020 (uint32: to 2156) */
#define DEFAULT_LIMIT 4000000u

struct slot {
  uint64_t phone;                 /* 0: empty */
  uint32_t t[POL_CAP_MAX_COUNT];  /* a ring: t[head] is the oldest once full; 0: unused */
};

struct table {
  int64_t account_id;
  int cls;
  struct slot *slots;
  size_t cap, n;                  /* cap a power of two */
};

struct pol_caps {
  size_t limit;
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
  for (int i = 0; i < c->nt; i++) free(c->t[i].slots);
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

static struct table *table_of(const struct pol_caps *c, int64_t account_id, int cls) {
  for (int i = 0; i < c->nt; i++)
    if (c->t[i].account_id == account_id && c->t[i].cls == cls) return (struct table *)&c->t[i];
  return NULL;
}

static struct slot *find(const struct table *t, uint64_t k) {
  if (t == NULL || t->cap == 0) return NULL;
  for (size_t i = mix(k) & (t->cap - 1);; i = (i + 1) & (t->cap - 1)) {
    if (t->slots[i].phone == k) return &t->slots[i];
    if (t->slots[i].phone == 0) return NULL;
  }
}

static uint32_t secs(int64_t ms) {
  int64_t s = ms / 1000 - EPOCH_S;
  return s < 1 ? 1 : (uint32_t)s;
}

int pol_caps_count(const struct pol_caps *c, int64_t account_id, int cls, const char *phone,
                   int64_t now_ms, int64_t per_ms, int64_t *oldest_ms) {
  *oldest_ms = 0;
  const struct slot *s = find(table_of(c, account_id, cls), phone_key(phone));
  if (s == NULL) return 0;
  uint32_t from = secs(now_ms - per_ms), oldest = 0;
  int n = 0;
  for (int i = 0; i < POL_CAP_MAX_COUNT; i++)
    if (s->t[i] && s->t[i] > from) {
      n++;
      if (oldest == 0 || s->t[i] < oldest) oldest = s->t[i];
    }
  if (oldest) *oldest_ms = ((int64_t)oldest + EPOCH_S) * 1000;
  return n;
}

int pol_caps_count_due(const struct pol_caps *c, int64_t account_id, int cls, const char *phone,
                       int64_t now_ms, int64_t per_ms) {
  const struct slot *s = find(table_of(c, account_id, cls), phone_key(phone));
  if (s == NULL) return 0;
  uint32_t from = secs(now_ms - per_ms), to = secs(now_ms);
  int n = 0;
  for (int i = 0; i < POL_CAP_MAX_COUNT; i++) n += s->t[i] && s->t[i] > from && s->t[i] <= to;
  return n;
}

static void put(struct table *t, const struct slot *s) {
  for (size_t i = mix(s->phone) & (t->cap - 1);; i = (i + 1) & (t->cap - 1))
    if (t->slots[i].phone == 0) {
      t->slots[i] = *s;
      t->n++;
      return;
    }
}

/* Rebuilds t with room for want phones, leaving out those whose newest send
   is before keep_after (seconds; 0 keeps all). */
static void rehash(struct table *t, size_t want, uint32_t keep_after) {
  size_t cap = 1024;
  while (cap * 3 < want * 4) cap <<= 1;
  struct slot *old = t->slots;
  size_t ocap = t->cap;
  /* Freed by the next rehash or pol_caps_free. */
  t->slots = kk_xcalloc(cap, sizeof *t->slots);
  t->cap = cap;
  t->n = 0;
  for (size_t i = 0; i < ocap; i++) {
    if (old[i].phone == 0) continue;
    uint32_t newest = 0;
    for (int j = 0; j < POL_CAP_MAX_COUNT; j++)
      if (old[i].t[j] > newest) newest = old[i].t[j];
    if (newest > keep_after) put(t, &old[i]);
  }
  free(old);
}

int pol_caps_add(struct pol_caps *c, int64_t account_id, int cls, const char *phone,
                 int64_t at_ms) {
  struct table *t = table_of(c, account_id, cls);
  if (t == NULL) {
    if (c->nt == c->tcap) {
      c->tcap = c->tcap ? c->tcap * 2 : 8;
      c->t = kk_xrealloc(c->t, (size_t)c->tcap * sizeof *c->t);
    }
    t = &c->t[c->nt++];
    memset(t, 0, sizeof *t);
    t->account_id = account_id;
    t->cls = cls;
  }
  uint64_t k = phone_key(phone);
  struct slot *s = find(t, k);
  if (s == NULL) {
    if (t->n >= c->limit) {
      /* Sweep out phones whose newest send is older than any window. */
      rehash(t, t->n, secs(at_ms - POL_CAP_MAX_PER_MS));
      if (t->n >= c->limit) {
        c->full++;
        return KK_ENOSPC;
      }
    }
    if ((t->n + 1) * 4 > t->cap * 3) rehash(t, t->n + 1 > t->cap ? t->n + 1 : t->cap, 0);
    struct slot fresh = {.phone = k};
    put(t, &fresh);
    s = find(t, k);
  }
  /* Replace the oldest (or an unused) time. */
  int at = 0;
  for (int i = 1; i < POL_CAP_MAX_COUNT; i++)
    if (s->t[i] < s->t[at]) at = i;
  s->t[at] = secs(at_ms);
  return 0;
}

size_t pol_caps_size(const struct pol_caps *c) {
  size_t n = 0;
  for (int i = 0; i < c->nt; i++) n += c->t[i].n;
  return n;
}

uint64_t pol_caps_full(const struct pol_caps *c) { return c->full; }
