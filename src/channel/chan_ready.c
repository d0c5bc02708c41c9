/*
 * chan_ready.c - the due queue of the channel engine (see chan_ready.h).
 */
#include "channel/chan_ready.h"

#include <stdlib.h>

#include "core/kk_mem.h"

static size_t slot_of(size_t cap, int64_t id) {
  uint64_t h = (uint64_t)id * 0x9E3779B97F4A7C15ull;
  return (size_t)(h >> 20) & (cap - 1);
}

void chan_ready_init(struct chan_ready *r) {
  *r = (struct chan_ready){.known_cap = 1024};
  r->known = kk_xcalloc(r->known_cap, sizeof *r->known);
}

void chan_ready_fini(struct chan_ready *r) {
  free(r->known);
  free(r->ring);
  *r = (struct chan_ready){0};
}

int chan_ready_has(const struct chan_ready *r, int64_t id) {
  for (size_t i = slot_of(r->known_cap, id);; i = (i + 1) & (r->known_cap - 1)) {
    if (r->known[i] == id) return 1;
    if (r->known[i] == 0) return 0;
  }
}

static void known_put(int64_t *tab, size_t cap, int64_t id) {
  size_t i = slot_of(cap, id);
  while (tab[i] != 0) i = (i + 1) & (cap - 1);
  tab[i] = id;
}

static void known_add(struct chan_ready *r, int64_t id) {
  if ((r->nknown + 1) * 2 > r->known_cap) {
    /* Grows at half full; a burst of due attempts costs 16 bytes each. */
    size_t cap = r->known_cap * 2;
    int64_t *tab = kk_xcalloc(cap, sizeof *tab);
    for (size_t i = 0; i < r->known_cap; i++)
      if (r->known[i]) known_put(tab, cap, r->known[i]);
    free(r->known);
    r->known = tab;
    r->known_cap = cap;
  }
  known_put(r->known, r->known_cap, id);
  r->nknown++;
}

void chan_ready_forget(struct chan_ready *r, int64_t id) {
  size_t cap = r->known_cap, i = slot_of(cap, id);
  while (r->known[i] != id) {
    if (r->known[i] == 0) return;
    i = (i + 1) & (cap - 1);
  }
  r->nknown--;
  /* Backward-shift deletion keeps every probe chain whole. */
  size_t j = i;
  for (;;) {
    r->known[i] = 0;
    for (;;) {
      j = (j + 1) & (cap - 1);
      if (r->known[j] == 0) return;
      size_t k = slot_of(cap, r->known[j]);
      if ((j > i && (k <= i || k > j)) || (j < i && (k <= i && k > j))) break;
    }
    r->known[i] = r->known[j];
    i = j;
  }
}

int chan_ready_push(struct chan_ready *r, int64_t id) { return chan_ready_push_row(r, id, NULL); }

int chan_ready_push_row(struct chan_ready *r, int64_t id, void *row) {
  if (chan_ready_has(r, id)) return 0;
  known_add(r, id);
  if (r->len == r->cap) {
    size_t cap = r->cap ? 2 * r->cap : 1024;
    struct chan_ready_item *ring = kk_xmalloc(cap * sizeof *ring);
    for (size_t i = 0; i < r->len; i++) ring[i] = r->ring[(r->head + i) % r->cap];
    free(r->ring);
    r->ring = ring;
    r->cap = cap;
    r->head = 0;
  }
  r->ring[(r->head + r->len) % r->cap] = (struct chan_ready_item){id, row};
  r->len++;
  return 1;
}

int64_t chan_ready_pop(struct chan_ready *r) { return chan_ready_pop_row(r, NULL); }

int64_t chan_ready_pop_row(struct chan_ready *r, void **row) {
  int64_t id = r->ring[r->head].id;
  if (row) *row = r->ring[r->head].row;
  r->head = (r->head + 1) % r->cap;
  r->len--;
  return id;
}
