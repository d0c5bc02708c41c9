/*
 * store_cache.c - accounts by id and by public id, and named cascades by
 * (account, name), held in memory by the neutral store (see store_cache.h).
 *
 * Accounts are never deleted: they live in an array, found through two
 * open-addressing indexes of positions (id, public id). Each account with
 * named cascades has a list of them sorted by name (at most
 * STORE_CASCADES_MAX), found through a third index by account id.
 */
#include "store/store_cache.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/kk_err.h"
#include "core/kk_hash.h"
#include "core/kk_log.h"
#include "core/kk_mem.h"
#include "store/store_int.h"

#define LOGCTX "store"

/* An account as held: the fixed fields, and the long ones malloc'd (most
   accounts have short names and policies). */
struct cache_acc {
  int64_t id, created_at;
  int suspended;
  char public_id[40];
  char sms_route[64];
  char callback_secret[80];
  char roaming_ads[8];
  char *name, *senders, *countries;   /* owned */
};

struct cache_casc {
  char *name, *steps;                 /* owned */
};

/* The named cascades of one account, sorted by name (strcmp). */
struct cache_cascs {
  int64_t account_id;
  struct cache_casc *v;               /* owned */
  int n, cap;
  int pending;                        /* new names queued, not yet done */
};

/* An index of positions (slot value i + 1; 0 is empty), cap a power of 2. */
struct cache_index {
  uint32_t *slot;
  size_t cap;
};

struct store_cache {
  struct cache_acc **acc;             /* owned, nacc of them */
  int nacc, capacc;
  struct cache_index by_id, by_pub;
  struct cache_cascs **casc;          /* owned, ncasc of them */
  int ncasc, capcasc;
  struct cache_index casc_by_id;
  int acc_pending;                    /* creations queued, not yet done */
  int accounts_max, cascades_max;
};

/* ---- hashing and indexes ----------------------------------------------------- */

static uint64_t hash_id(int64_t id) {
  uint64_t x = (uint64_t)id + 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

static uint64_t hash_str(const char *s) { return kk_fnv_str(KK_FNV_SEED, s); }

/* Puts position pos at the first free slot from hash h (the index has room). */
static void index_put(struct cache_index *ix, uint64_t h, int pos) {
  size_t i = (size_t)h & (ix->cap - 1);
  while (ix->slot[i]) i = (i + 1) & (ix->cap - 1);
  ix->slot[i] = (uint32_t)pos + 1;
}

static void index_fini(struct cache_index *ix) {
  free(ix->slot);
  ix->slot = NULL;
  ix->cap = 0;
}

/* Empties ix with room for twice n entries (at least 64 slots). */
static void index_reset(struct cache_index *ix, int n) {
  size_t cap = 64;
  while (cap < (size_t)n * 2 + 2) cap *= 2;
  if (cap != ix->cap) {
    free(ix->slot);
    ix->slot = kk_xcalloc(cap, sizeof *ix->slot);
    ix->cap = cap;
  } else {
    memset(ix->slot, 0, cap * sizeof *ix->slot);
  }
}

static int acc_find_id(const struct store_cache *c, int64_t id) {
  if (c->by_id.cap == 0) return -1;
  for (size_t i = (size_t)hash_id(id) & (c->by_id.cap - 1); c->by_id.slot[i];
       i = (i + 1) & (c->by_id.cap - 1))
    if (c->acc[c->by_id.slot[i] - 1]->id == id) return (int)c->by_id.slot[i] - 1;
  return -1;
}

static int acc_find_pub(const struct store_cache *c, const char *public_id) {
  if (c->by_pub.cap == 0) return -1;
  for (size_t i = (size_t)hash_str(public_id) & (c->by_pub.cap - 1); c->by_pub.slot[i];
       i = (i + 1) & (c->by_pub.cap - 1))
    if (strcmp(c->acc[c->by_pub.slot[i] - 1]->public_id, public_id) == 0)
      return (int)c->by_pub.slot[i] - 1;
  return -1;
}

static struct cache_cascs *cascs_find(const struct store_cache *c, int64_t account_id) {
  if (c->casc_by_id.cap == 0) return NULL;
  for (size_t i = (size_t)hash_id(account_id) & (c->casc_by_id.cap - 1); c->casc_by_id.slot[i];
       i = (i + 1) & (c->casc_by_id.cap - 1))
    if (c->casc[c->casc_by_id.slot[i] - 1]->account_id == account_id)
      return c->casc[c->casc_by_id.slot[i] - 1];
  return NULL;
}

/* ---- the cache ---------------------------------------------------------------- */

struct store_cache *store_cache_new(void) {
  struct store_cache *c = kk_xcalloc(1, sizeof *c);
  c->accounts_max = STORE_ACCOUNTS_MAX;
  c->cascades_max = STORE_CASCADES_MAX;
  return c;
}

static void acc_free(struct cache_acc *a) {
  free(a->name);
  free(a->senders);
  free(a->countries);
  free(a);
}

void store_cache_free(struct store_cache *c) {
  if (c == NULL) return;
  for (int i = 0; i < c->nacc; i++) acc_free(c->acc[i]);
  free(c->acc);
  for (int i = 0; i < c->ncasc; i++) {
    struct cache_cascs *l = c->casc[i];
    for (int j = 0; j < l->n; j++) {
      free(l->v[j].name);
      free(l->v[j].steps);
    }
    free(l->v);
    free(l);
  }
  free(c->casc);
  index_fini(&c->by_id);
  index_fini(&c->by_pub);
  index_fini(&c->casc_by_id);
  free(c);
}

/* Copies the row into a (the long fields replaced). */
static void acc_set(struct cache_acc *a, const struct store_account *r) {
  a->id = r->id;
  a->created_at = r->created_at;
  a->suspended = r->suspended;
  snprintf(a->public_id, sizeof a->public_id, "%s", r->public_id);
  snprintf(a->sms_route, sizeof a->sms_route, "%s", r->sms_route);
  snprintf(a->callback_secret, sizeof a->callback_secret, "%s", r->callback_secret);
  snprintf(a->roaming_ads, sizeof a->roaming_ads, "%s", r->roaming_ads);
  free(a->name);
  free(a->senders);
  free(a->countries);
  a->name = kk_xstrdup(r->name);
  a->senders = kk_xstrdup(r->senders);
  a->countries = kk_xstrdup(r->countries);
}

static void acc_get(const struct cache_acc *a, struct store_account *out) {
  memset(out, 0, sizeof *out);
  out->id = a->id;
  out->created_at = a->created_at;
  out->suspended = a->suspended;
  kk_scopy(out->public_id, sizeof out->public_id, a->public_id);
  kk_scopy(out->sms_route, sizeof out->sms_route, a->sms_route);
  kk_scopy(out->callback_secret, sizeof out->callback_secret, a->callback_secret);
  kk_scopy(out->name, sizeof out->name, a->name);
  kk_scopy(out->senders, sizeof out->senders, a->senders);
  kk_scopy(out->countries, sizeof out->countries, a->countries);
  kk_scopy(out->roaming_ads, sizeof out->roaming_ads, a->roaming_ads);
}

/* Adds or replaces the account of row r->id. */
static void acc_upsert(struct store_cache *c, const struct store_account *r) {
  int pos = acc_find_id(c, r->id);
  if (pos >= 0) {
    struct cache_acc *a = c->acc[pos];
    if (strcmp(a->public_id, r->public_id) != 0) {
      /* A public id never changes; should it, the index is made again. */
      acc_set(a, r);
      index_reset(&c->by_pub, c->nacc);
      for (int i = 0; i < c->nacc; i++) index_put(&c->by_pub, hash_str(c->acc[i]->public_id), i);
    } else {
      acc_set(a, r);
    }
    return;
  }
  if (c->nacc == c->capacc) {
    c->capacc = c->capacc ? 2 * c->capacc : 64;
    c->acc = kk_xrealloc(c->acc, (size_t)c->capacc * sizeof *c->acc);
  }
  struct cache_acc *a = kk_xcalloc(1, sizeof *a);
  acc_set(a, r);
  pos = c->nacc++;
  c->acc[pos] = a;
  if ((size_t)c->nacc * 2 > c->by_id.cap) {
    index_reset(&c->by_id, c->nacc);
    index_reset(&c->by_pub, c->nacc);
    for (int i = 0; i < c->nacc; i++) {
      index_put(&c->by_id, hash_id(c->acc[i]->id), i);
      index_put(&c->by_pub, hash_str(c->acc[i]->public_id), i);
    }
  } else {
    index_put(&c->by_id, hash_id(a->id), pos);
    index_put(&c->by_pub, hash_str(a->public_id), pos);
  }
}

/* The cascade list of account_id, made empty when it has none. */
static struct cache_cascs *cascs_of(struct store_cache *c, int64_t account_id) {
  struct cache_cascs *l = cascs_find(c, account_id);
  if (l) return l;
  if (c->ncasc == c->capcasc) {
    c->capcasc = c->capcasc ? 2 * c->capcasc : 64;
    c->casc = kk_xrealloc(c->casc, (size_t)c->capcasc * sizeof *c->casc);
  }
  l = kk_xcalloc(1, sizeof *l);
  l->account_id = account_id;
  int pos = c->ncasc++;
  c->casc[pos] = l;
  if ((size_t)c->ncasc * 2 > c->casc_by_id.cap) {
    index_reset(&c->casc_by_id, c->ncasc);
    for (int i = 0; i < c->ncasc; i++) index_put(&c->casc_by_id, hash_id(c->casc[i]->account_id), i);
  } else {
    index_put(&c->casc_by_id, hash_id(account_id), pos);
  }
  return l;
}

/* Where name is in l (*found 1), or where it would go. */
static int casc_pos(const struct cache_cascs *l, const char *name, int *found) {
  int lo = 0, hi = l->n;
  while (lo < hi) {
    int mid = (lo + hi) / 2;
    int d = strcmp(l->v[mid].name, name);
    if (d == 0) {
      *found = 1;
      return mid;
    }
    if (d < 0) lo = mid + 1;
    else hi = mid;
  }
  *found = 0;
  return lo;
}

/* Saves (steps) or deletes (NULL) account_id's cascade name. */
static void casc_set(struct store_cache *c, int64_t account_id, const char *name,
                     const char *steps) {
  struct cache_cascs *l = steps ? cascs_of(c, account_id) : cascs_find(c, account_id);
  if (l == NULL) return;
  int found;
  int i = casc_pos(l, name, &found);
  if (found) {
    free(l->v[i].steps);
    if (steps) {
      l->v[i].steps = kk_xstrdup(steps);
      return;
    }
    free(l->v[i].name);
    memmove(&l->v[i], &l->v[i + 1], (size_t)(l->n - i - 1) * sizeof *l->v);
    l->n--;
    return;
  }
  if (!steps) return;
  if (l->n == l->cap) {
    l->cap = l->cap ? 2 * l->cap : 4;
    l->v = kk_xrealloc(l->v, (size_t)l->cap * sizeof *l->v);
  }
  memmove(&l->v[i + 1], &l->v[i], (size_t)(l->n - i) * sizeof *l->v);
  l->v[i].name = kk_xstrdup(name);
  l->v[i].steps = kk_xstrdup(steps);
  l->n++;
}

/* ---- filling and keeping up to date -------------------------------------------- */

static void fill_account(void *arg, const struct store_account *a) { acc_upsert(arg, a); }

static void fill_cascade(void *arg, int64_t account_id, const char *name, const char *steps) {
  casc_set(arg, account_id, name, steps);
}

int store_cache_fill(struct store *s) {
  const struct store_reads *rd = &s->be->read;
  if (rd->accounts_each && rd->accounts_each(s, fill_account, s->cache) != 0) {
    kk_error(LOGCTX, "the accounts could not be read");
    return KK_ESTORE;
  }
  if (rd->cascades_all && rd->cascades_all(s, fill_cascade, s->cache) != 0) {
    kk_error(LOGCTX, "the named cascades could not be read");
    return KK_ESTORE;
  }
  return 0;
}

void store_cache_apply(struct store *s, const struct store_note *notes, int n) {
  struct store_cache *c = s->cache;
  for (int i = 0; i < n; i++) {
    const struct store_note *t = &notes[i];
    if (t->kind == STORE_NOTE_ACCOUNT && t->acc)
      acc_upsert(c, t->acc);
    else if (t->kind == STORE_NOTE_CASCADE_CFG && t->cfg)
      casc_set(c, t->account_id, t->cfg->name, t->cfg->text);
  }
}

/* ---- the bounds -------------------------------------------------------------------- */

int store_cache_account_admit(struct store *s) {
  struct store_cache *c = s->cache;
  if (c->nacc + c->acc_pending >= c->accounts_max) return KK_ENOSPC;
  c->acc_pending++;
  return 0;
}

void store_cache_account_done(struct store *s) {
  if (s->cache->acc_pending > 0) s->cache->acc_pending--;
}

int store_cache_cascade_admit(struct store *s, int64_t account_id, const char *name,
                              int *counted) {
  struct store_cache *c = s->cache;
  *counted = 0;
  struct cache_cascs *l = cascs_find(c, account_id);
  int found = 0;
  if (l) casc_pos(l, name, &found);
  if (found) return 0;
  int have = l ? l->n + l->pending : 0;
  if (have >= c->cascades_max) return KK_ENOSPC;
  cascs_of(c, account_id)->pending++;
  *counted = 1;
  return 0;
}

void store_cache_cascade_done(struct store *s, int64_t account_id, int counted) {
  if (!counted) return;
  struct cache_cascs *l = cascs_find(s->cache, account_id);
  if (l && l->pending > 0) l->pending--;
}

int store_cache_accounts(const struct store *s) { return s->cache->nacc; }

void store_cache_set_bounds(struct store *s, int accounts_max, int cascades_max) {
  s->cache->accounts_max = accounts_max;
  s->cache->cascades_max = cascades_max;
}

/* ---- the reads of store.h, answered from memory ---------------------------------- */

int store_account_get(struct store *s, const char *public_id, struct store_account *out) {
  int pos = acc_find_pub(s->cache, public_id);
  if (pos < 0) return KK_ENOENT;
  acc_get(s->cache->acc[pos], out);
  return 0;
}

int store_account_get_by_id(struct store *s, int64_t id, struct store_account *out) {
  int pos = acc_find_id(s->cache, id);
  if (pos < 0) return KK_ENOENT;
  acc_get(s->cache->acc[pos], out);
  return 0;
}

int store_cascade_get(struct store *s, int64_t account_id, const char *name, char **out) {
  struct cache_cascs *l = cascs_find(s->cache, account_id);
  int found = 0;
  int i = l ? casc_pos(l, name, &found) : 0;
  if (!found) return KK_ENOENT;
  *out = kk_xstrdup(l->v[i].steps);
  return 0;
}

int store_cascades_each(struct store *s, int64_t account_id,
                        void (*fn)(void *arg, const char *name, const char *steps), void *arg) {
  struct cache_cascs *l = cascs_find(s->cache, account_id);
  for (int i = 0; l && i < l->n; i++) fn(arg, l->v[i].name, l->v[i].steps);
  return 0;
}
