/*
 * test_store_cache.c - the accounts and named cascades the store holds in
 * memory (store_cache.c): filled at open they equal the tables; a created or
 * updated account and a saved or deleted cascade are seen after their
 * commit and not before; the bounds on accounts and on cascades per account.
 */
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/kk_err.h"
#include "core/kk_log.h"
#include "kk_test.h"
#include "lib/tmp_store.h"
#include "store/store.h"
#include "store/store_cache.h"
#include "store/store_int.h"

#define STEPS_A "[{\"channel\":\"sms\",\"wait\":\"delivered\"}]"
#define STEPS_B "[{\"channel\":\"vk\",\"wait\":\"read\"},{\"channel\":\"sms\",\"wait\":\"delivered\"}]"

static void env_open(struct tmp_store *e) {
  kk_log_level = KK_LOG_ERROR;
  ASSERT_EQ(tmp_store_open(e, "cache", NULL), 0);
}

/* Results of queued writes, one slot each. */
struct results {
  int rc[16];
  int n;
  struct tmp_store *e;
};
struct slot {
  struct results *r;
  int i;
};

static void slot_done(void *arg, int rc) {
  struct slot *sl = arg;
  sl->r->rc[sl->i] = rc;
  sl->r->e->ndone++;
}

static void create(struct tmp_store *e, struct store_account *a, const char *name) {
  memset(a, 0, sizeof *a);
  snprintf(a->name, sizeof a->name, "%s", name);
  int want = e->ndone + 1;
  store_account_create(e->store, a, tmp_store_done, e);
  ASSERT_EQ(tmp_store_wait(e, want, 10000), 0);
  ASSERT(a->id > 0);
}

static void cascade_put(struct tmp_store *e, int64_t account_id, const char *name,
                        const char *steps) {
  int want = e->ndone + 1;
  store_cascade_put(e->store, account_id, name, steps, tmp_store_done, e);
  ASSERT_EQ(tmp_store_wait(e, want, 10000), 0);
}

/* Collects a listing "name=steps;..." */
static void collect(void *arg, const char *name, const char *steps) {
  char *out = arg;
  size_t n = strlen(out);
  snprintf(out + n, 4096 - n, "%s=%s;", name, steps);
}

static void text_col(sqlite3_stmt *st, int i, char *out, size_t cap) {
  const unsigned char *t = sqlite3_column_text(st, i);
  snprintf(out, cap, "%s", t ? (const char *)t : "");
}

/* The accounts table, row by row, against what the store answers. */
static int check_accounts(struct tmp_store *e, sqlite3 *db) {
  sqlite3_stmt *st;
  ASSERT_EQ(sqlite3_prepare_v2(db,
                               "SELECT id,public_id,name,sms_route,callback_secret,created_at,"
                               "suspended,senders,countries FROM accounts ORDER BY id",
                               -1, &st, NULL),
            SQLITE_OK);
  int n = 0;
  while (sqlite3_step(st) == SQLITE_ROW) {
    struct store_account want, by_id, by_pub;
    memset(&want, 0, sizeof want);
    want.id = sqlite3_column_int64(st, 0);
    text_col(st, 1, want.public_id, sizeof want.public_id);
    text_col(st, 2, want.name, sizeof want.name);
    text_col(st, 3, want.sms_route, sizeof want.sms_route);
    text_col(st, 4, want.callback_secret, sizeof want.callback_secret);
    want.created_at = sqlite3_column_int64(st, 5);
    want.suspended = sqlite3_column_int(st, 6);
    text_col(st, 7, want.senders, sizeof want.senders);
    text_col(st, 8, want.countries, sizeof want.countries);
    ASSERT_EQ(store_account_get_by_id(e->store, want.id, &by_id), 0);
    ASSERT_EQ(store_account_get(e->store, want.public_id, &by_pub), 0);
    ASSERT(memcmp(&by_id, &want, sizeof want) == 0);
    ASSERT(memcmp(&by_pub, &want, sizeof want) == 0);
    n++;
  }
  sqlite3_finalize(st);
  return n;
}

/* The cascades table of account_id against store_cascades_each and _get. */
static void check_cascades(struct tmp_store *e, sqlite3 *db, int64_t account_id) {
  sqlite3_stmt *st;
  ASSERT_EQ(sqlite3_prepare_v2(db, "SELECT name,steps FROM cascades WHERE account_id=?"
                               " ORDER BY name", -1, &st, NULL),
            SQLITE_OK);
  sqlite3_bind_int64(st, 1, account_id);
  char want[4096] = "", got[4096] = "";
  while (sqlite3_step(st) == SQLITE_ROW) {
    char name[64], steps[1024];
    text_col(st, 0, name, sizeof name);
    text_col(st, 1, steps, sizeof steps);
    collect(want, name, steps);
    char *one = NULL;
    ASSERT_EQ(store_cascade_get(e->store, account_id, name, &one), 0);
    ASSERT_STR_EQ(one, steps);
    free(one);
  }
  sqlite3_finalize(st);
  ASSERT_EQ(store_cascades_each(e->store, account_id, collect, got), 0);
  ASSERT_STR_EQ(got, want);
}

KK_TEST(store_cache_filled_at_open_equals_the_tables) {
  struct tmp_store e;
  env_open(&e);
  struct store_account a, b, c;
  create(&e, &a, "Alpha");
  create(&e, &b, "Beta shop");
  create(&e, &c, "Gamma");
  /* b gets a route, a policy and a suspension. */
  snprintf(b.sms_route, sizeof b.sms_route, "mts");
  snprintf(b.senders, sizeof b.senders, "[\"SHOP\"]");
  snprintf(b.countries, sizeof b.countries, "[\"RU\"]");
  b.suspended = 1;
  int want = e.ndone + 1;
  store_account_update(e.store, &b, tmp_store_done, &e);
  ASSERT_EQ(tmp_store_wait(&e, want, 10000), 0);
  cascade_put(&e, a.id, "zeta", STEPS_A);
  cascade_put(&e, a.id, "alpha", STEPS_B);
  cascade_put(&e, a.id, "mid", STEPS_A);
  cascade_put(&e, a.id, "mid", STEPS_B);
  cascade_put(&e, c.id, "only", STEPS_A);
  cascade_put(&e, c.id, "gone", STEPS_A);
  cascade_put(&e, c.id, "gone", NULL);

  /* As kept by the notes, then as read again at open. */
  for (int round = 0; round < 2; round++) {
    char path[TMP_STORE_DIR_MAX + 16];
    snprintf(path, sizeof path, "%s/kaskad.db", e.dir);
    sqlite3 *db;
    ASSERT_EQ(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    ASSERT_EQ(check_accounts(&e, db), 3);
    ASSERT_EQ(store_cache_accounts(e.store), 3);
    check_cascades(&e, db, a.id);
    check_cascades(&e, db, b.id);
    check_cascades(&e, db, c.id);
    sqlite3_close(db);
    tmp_store_db_close(&e);
    ASSERT_EQ(tmp_store_db_open(&e, NULL), 0);
  }
  struct store_account x;
  ASSERT_EQ(store_account_get(e.store, "acc_nope", &x), KK_ENOENT);
  ASSERT_EQ(store_account_get_by_id(e.store, c.id + 100, &x), KK_ENOENT);
  char *steps = NULL;
  ASSERT_EQ(store_cascade_get(e.store, b.id, "zeta", &steps), KK_ENOENT);
  ASSERT_EQ(store_cascade_get(e.store, c.id, "gone", &steps), KK_ENOENT);
  ASSERT(steps == NULL);
  ASSERT_EQ(tmp_store_close(&e), 0);
}

/* What a done callback saw of the cache. */
struct seen {
  struct tmp_store *e;
  const char *public_id;
  int64_t id;
  int found;
  char name[256];
};

static void seen_done(void *arg, int rc) {
  struct seen *s = arg;
  struct store_account a;
  s->found = store_account_get(s->e->store, s->public_id, &a) == 0;
  if (s->found) snprintf(s->name, sizeof s->name, "%s", a.name);
  if (rc) s->e->rc = rc;
  s->e->ndone++;
}

KK_TEST(store_cache_changes_with_the_commit_not_before) {
  struct tmp_store e;
  env_open(&e);
  struct store_account a;
  memset(&a, 0, sizeof a);
  snprintf(a.name, sizeof a.name, "First");
  struct seen s = {.e = &e, .public_id = a.public_id};
  struct store_account x;
  store_account_create(e.store, &a, seen_done, &s);
  /* Queued: the public id is known, the account is not there yet. */
  ASSERT(a.public_id[0] != '\0');
  ASSERT_EQ(store_account_get(e.store, a.public_id, &x), KK_ENOENT);
  ASSERT_EQ(store_cache_accounts(e.store), 0);
  ASSERT_EQ(tmp_store_wait(&e, 1, 10000), 0);
  ASSERT(s.found);   /* the done callback sees it */
  ASSERT_EQ(store_account_get_by_id(e.store, a.id, &x), 0);
  ASSERT_STR_EQ(x.name, "First");
  ASSERT_STR_EQ(x.senders, "[]");   /* as the row holds it */

  snprintf(a.name, sizeof a.name, "Renamed");
  store_account_update(e.store, &a, seen_done, &s);
  ASSERT_EQ(store_account_get_by_id(e.store, a.id, &x), 0);
  ASSERT_STR_EQ(x.name, "First");
  ASSERT_EQ(tmp_store_wait(&e, 2, 10000), 0);
  ASSERT_STR_EQ(s.name, "Renamed");
  ASSERT_EQ(store_account_get(e.store, a.public_id, &x), 0);
  ASSERT_STR_EQ(x.name, "Renamed");

  char *steps = NULL;
  store_cascade_put(e.store, a.id, "fast", STEPS_A, tmp_store_done, &e);
  ASSERT_EQ(store_cascade_get(e.store, a.id, "fast", &steps), KK_ENOENT);
  ASSERT_EQ(tmp_store_wait(&e, 3, 10000), 0);
  ASSERT_EQ(store_cascade_get(e.store, a.id, "fast", &steps), 0);
  ASSERT_STR_EQ(steps, STEPS_A);
  free(steps);
  store_cascade_put(e.store, a.id, "fast", NULL, tmp_store_done, &e);
  ASSERT_EQ(store_cascade_get(e.store, a.id, "fast", &steps), 0);
  free(steps);
  ASSERT_EQ(tmp_store_wait(&e, 4, 10000), 0);
  ASSERT_EQ(store_cascade_get(e.store, a.id, "fast", &steps), KK_ENOENT);
  ASSERT_EQ(tmp_store_close(&e), 0);
}

KK_TEST(store_cache_bounds_accounts_and_cascades) {
  ASSERT_EQ(STORE_ACCOUNTS_MAX, 100000);
  ASSERT_EQ(STORE_CASCADES_MAX, 32);
  struct tmp_store e;
  env_open(&e);
  struct store_account first;
  create(&e, &first, "One");
  /* Two more accounts at most, three cascades each: three creations queued
     together, the third is refused though none has committed yet. */
  store_cache_set_bounds(e.store, 3, 3);
  struct results r = {.e = &e};
  struct slot sl[16];
  struct store_account acc[3];
  for (int i = 0; i < 3; i++) {
    memset(&acc[i], 0, sizeof acc[i]);
    snprintf(acc[i].name, sizeof acc[i].name, "n%d", i);
    sl[i] = (struct slot){&r, i};
    store_account_create(e.store, &acc[i], slot_done, &sl[i]);
  }
  ASSERT_EQ(tmp_store_wait(&e, 4, 10000), 0);
  ASSERT_EQ(r.rc[0], 0);
  ASSERT_EQ(r.rc[1], 0);
  ASSERT_EQ(r.rc[2], KK_ENOSPC);
  ASSERT_EQ(store_cache_accounts(e.store), 3);
  struct store_account x;
  ASSERT_EQ(store_account_get(e.store, acc[2].public_id, &x), KK_ENOENT);
  /* Refused again once committed, and after opening again. */
  store_account_create(e.store, &acc[2], slot_done, &sl[2]);
  ASSERT_EQ(tmp_store_wait(&e, 5, 10000), 0);
  ASSERT_EQ(r.rc[2], KK_ENOSPC);

  /* Four new names at once: the fourth is refused. */
  static const char *const names[] = {"a", "b", "c", "d"};
  for (int i = 0; i < 4; i++) {
    sl[4 + i] = (struct slot){&r, 4 + i};
    store_cascade_put(e.store, first.id, names[i], STEPS_A, slot_done, &sl[4 + i]);
  }
  ASSERT_EQ(tmp_store_wait(&e, 9, 10000), 0);
  ASSERT_EQ(r.rc[4], 0);
  ASSERT_EQ(r.rc[5], 0);
  ASSERT_EQ(r.rc[6], 0);
  ASSERT_EQ(r.rc[7], KK_ENOSPC);
  char *steps = NULL;
  ASSERT_EQ(store_cascade_get(e.store, first.id, "d", &steps), KK_ENOENT);
  /* A name it has may change; another account has its own count. */
  sl[8] = (struct slot){&r, 8};
  sl[9] = (struct slot){&r, 9};
  store_cascade_put(e.store, first.id, "b", STEPS_B, slot_done, &sl[8]);
  store_cascade_put(e.store, acc[0].id, "d", STEPS_B, slot_done, &sl[9]);
  ASSERT_EQ(tmp_store_wait(&e, 11, 10000), 0);
  ASSERT_EQ(r.rc[8], 0);
  ASSERT_EQ(r.rc[9], 0);
  /* A deleted one makes room. */
  cascade_put(&e, first.id, "a", NULL);
  sl[10] = (struct slot){&r, 10};
  store_cascade_put(e.store, first.id, "d", STEPS_A, slot_done, &sl[10]);
  ASSERT_EQ(tmp_store_wait(&e, 13, 10000), 0);
  ASSERT_EQ(r.rc[10], 0);
  ASSERT_EQ(store_cascade_get(e.store, first.id, "d", &steps), 0);
  free(steps);
  ASSERT_EQ(tmp_store_close(&e), 0);
}
