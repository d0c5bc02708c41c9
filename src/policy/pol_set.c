/*
 * pol_set.c - the (account, phone) -> value map of pol_set.h.
 */
#include "policy/pol_set.h"

#include <stdlib.h>
#include <string.h>

#include "core/kk_err.h"
#include "core/kk_mem.h"

void pol_set_init(struct pol_set *s) {
  memset(s, 0, sizeof *s);
  s->max = POL_SET_MAX;
}

void pol_set_fini(struct pol_set *s) {
  free(s->v);
  s->v = NULL;
  s->cap = s->n = 0;
}

uint64_t pol_set_key(const char *phone) {
  if (phone == NULL) return 0;
  if (*phone == '+') phone++;
  uint64_t k = 0;
  int n = 0;
  for (; *phone; phone++, n++) {
    if (*phone < '0' || *phone > '9' || n == 15) return 0;
    k = k * 10 + (uint64_t)(*phone - '0');
  }
  /* A leading 1 marks the length: "07" and "7" stay apart. */
  return n == 0 ? 0 : k + (uint64_t)1000000000000000ULL * (uint64_t)n;
}

static size_t hash(uint32_t account, uint64_t phone) {
  uint64_t h = phone * 0x9E3779B97F4A7C15ULL ^ ((uint64_t)account * 0xC2B2AE3D27D4EB4FULL);
  h ^= h >> 29;
  h *= 0xBF58476D1CE4E5B9ULL;
  h ^= h >> 32;
  return (size_t)h;
}

/* The slot of (account, phone), or the empty slot where it would go. */
static size_t find(const struct pol_set *s, uint32_t account, uint64_t phone) {
  size_t mask = s->cap - 1, i = hash(account, phone) & mask;
  while (s->v[i].phone && !(s->v[i].phone == phone && s->v[i].account == account))
    i = (i + 1) & mask;
  return i;
}

uint32_t pol_set_get(const struct pol_set *s, int64_t account, uint64_t phone) {
  if (s->cap == 0 || phone == 0 || account < 0 || account > UINT32_MAX) return 0;
  const struct pol_set_slot *e = &s->v[find(s, (uint32_t)account, phone)];
  return e->phone ? e->value : 0;
}

static void grow(struct pol_set *s) {
  size_t ncap = s->cap ? s->cap * 2 : 1024;
  struct pol_set_slot *old = s->v;
  size_t ocap = s->cap;
  s->v = kk_xcalloc(ncap, sizeof *s->v);   /* freed by pol_set_fini or the next grow */
  s->cap = ncap;
  for (size_t i = 0; i < ocap; i++)
    if (old[i].phone) s->v[find(s, old[i].account, old[i].phone)] = old[i];
  free(old);
}

/* Removes slot i, shifting back the entries of its run that belong before it. */
static void remove_at(struct pol_set *s, size_t i) {
  size_t mask = s->cap - 1, j = i;
  for (;;) {
    j = (j + 1) & mask;
    if (s->v[j].phone == 0) break;
    size_t home = hash(s->v[j].account, s->v[j].phone) & mask;
    /* j's entry may move to i when its home is not within (i, j] */
    if ((j > i && (home <= i || home > j)) || (j < i && (home <= i && home > j))) {
      s->v[i] = s->v[j];
      i = j;
    }
  }
  memset(&s->v[i], 0, sizeof s->v[i]);
  s->n--;
}

int pol_set_put(struct pol_set *s, int64_t account, uint64_t phone, uint32_t value) {
  if (phone == 0 || account < 0 || account > UINT32_MAX) return KK_EINVAL;
  if (s->cap == 0) {
    if (value == 0) return 0;
    grow(s);
  }
  size_t i = find(s, (uint32_t)account, phone);
  if (s->v[i].phone) {
    if (value) s->v[i].value = value;
    else remove_at(s, i);
    return 0;
  }
  if (value == 0) return 0;
  if (s->n >= s->max) return KK_ENOSPC;
  if ((s->n + 1) * 4 > s->cap * 3) {
    grow(s);
    i = find(s, (uint32_t)account, phone);
  }
  s->v[i] = (struct pol_set_slot){phone, (uint32_t)account, value};
  s->n++;
  return 0;
}
