/*
 * store_cache.h - the accounts and named cascades the store keeps in memory
 * (backend-neutral, loop thread). Not for use outside src/store (and the
 * store's unit tests).
 *
 * Both are small, bounded configuration that every API request reads (its
 * account) and a send with a named cascade reads again: answered from
 * memory, no read costs a round trip to the database. The cache is filled
 * once when the store opens, through the backend's accounts_each and
 * cascades_all, and then changes only with the notes of each commit
 * (STORE_NOTE_ACCOUNT carries the whole row, STORE_NOTE_CASCADE_CFG the
 * name and steps), before the subscribers and the done callbacks see them:
 * a write is visible after its commit and not before.
 *
 * The bounds (store.h: STORE_ACCOUNTS_MAX, STORE_CASCADES_MAX) are kept on
 * the loop thread, counting the creations queued and not yet done as made.
 */
#ifndef STORE_CACHE_H
#define STORE_CACHE_H

#include "store/store.h"

struct store_cache;

/* A new, empty cache (freed with store_cache_free; NULL is fine there). */
struct store_cache *store_cache_new(void);
void store_cache_free(struct store_cache *c);

/* Fills s->cache through the backend's reads (a backend without them
   leaves it empty). Before the writer starts. 0 or KK_ESTORE. */
int store_cache_fill(struct store *s);

/* Loop thread: applies a commit's notes to s->cache. */
void store_cache_apply(struct store *s, const struct store_note *notes, int n);

/* Loop thread: 0 when one more account may be created (counted as made
   until store_cache_account_done), or KK_ENOSPC at STORE_ACCOUNTS_MAX. */
int store_cache_account_admit(struct store *s);
void store_cache_account_done(struct store *s);
/* Loop thread: 0 when account_id may save cascade name (a name it has, or
   one more under STORE_CASCADES_MAX; a new name is counted until
   store_cache_cascade_done(s, account_id, 1)), or KK_ENOSPC. *counted says
   whether it was counted. */
int store_cache_cascade_admit(struct store *s, int64_t account_id, const char *name,
                              int *counted);
void store_cache_cascade_done(struct store *s, int64_t account_id, int counted);

/* Accounts held (tests, metrics). */
int store_cache_accounts(const struct store *s);
/* Tests only: lower bounds than STORE_ACCOUNTS_MAX / STORE_CASCADES_MAX. */
void store_cache_set_bounds(struct store *s, int accounts_max, int cascades_max);

#endif
