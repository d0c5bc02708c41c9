/*
 * test_store_tpl.c - the store's contract for templates, on SQLite and on
 * PostgreSQL (KASKAD_TEST_PG; without it the store_pg_ test is not run):
 * a put is seen after its commit, in name order per account; an update
 * keeps created_at; a delete goes; the per-account and size bounds refuse
 * without writing; and a store opened again holds what the table holds.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/store_tpl.h"
#include "core/kk_err.h"
#include "core/kk_log.h"
#include "kk_test.h"
#include "lib/tmp_pg.h"
#include "lib/tmp_store.h"
#include "store/store.h"

/* One put, waited for: its rc. */
static int put(struct tmp_store *t, int64_t account_id, const char *name, const char *body) {
  int want = t->ndone + 1;
  t->rc = 0;
  store_template_put(t->store, account_id, name, body, tmp_store_done, t);
  int rc = tmp_store_wait(t, want, 10000);
  t->rc = 0;
  return rc;
}

static void collect(void *arg, const struct store_template *tp) {
  char *out = arg;
  size_t n = strlen(out);
  snprintf(out + n, 1024 - n, "%s=%s;", tp->name, tp->body);
}

static void listing(struct tmp_store *t, int64_t account_id, char *out) {
  out[0] = '\0';
  store_templates_each(t->store, account_id, collect, out);
}

/* The contract; reopen opens the store again in the same database. */
static void contract(struct tmp_store *t, int (*reopen)(struct tmp_store *t, void *arg),
                     void *arg) {
  char l[1024];
  ASSERT_EQ(put(t, 7, "promo", "{\"text\":\"a\"}"), 0);
  ASSERT_EQ(put(t, 7, "bonus", "{\"text\":\"b\"}"), 0);
  ASSERT_EQ(put(t, 8, "promo", "{\"text\":\"other\"}"), 0);
  listing(t, 7, l);
  ASSERT_STR_EQ(l, "bonus={\"text\":\"b\"};promo={\"text\":\"a\"};");
  listing(t, 8, l);
  ASSERT_STR_EQ(l, "promo={\"text\":\"other\"};");
  listing(t, 9, l);
  ASSERT_STR_EQ(l, "");
  const struct store_template *tp = store_template_find(t->store, 7, "promo");
  ASSERT(tp != NULL);
  int64_t created = tp->created_at;
  ASSERT(created > 0);
  ASSERT_EQ(put(t, 7, "promo", "{\"text\":\"a2\"}"), 0);
  tp = store_template_find(t->store, 7, "promo");
  ASSERT_STR_EQ(tp->body, "{\"text\":\"a2\"}");
  ASSERT_EQ(put(t, 7, "bonus", NULL), 0);
  ASSERT(store_template_find(t->store, 7, "bonus") == NULL);
  ASSERT(store_template_find(t->store, 8, "bonus") == NULL);

  /* bounds: names per account (a name it has may be saved again), size */
  store_templates_set_bound(t->store, 2);
  ASSERT_EQ(put(t, 7, "second", "{\"text\":\"s\"}"), 0);
  ASSERT_EQ(put(t, 7, "third", "{\"text\":\"t\"}"), KK_ENOSPC);
  ASSERT_EQ(put(t, 7, "second", "{\"text\":\"s2\"}"), 0);
  ASSERT_EQ(put(t, 8, "third", "{\"text\":\"t\"}"), 0);
  size_t big = STORE_TEMPLATE_BYTES + 1;
  char *body = malloc(big + 1);
  memset(body, 'x', big);
  body[big] = '\0';
  ASSERT_EQ(put(t, 9, "big", body), KK_ETOOBIG);
  free(body);
  ASSERT(store_template_find(t->store, 7, "third") == NULL);
  ASSERT(store_template_find(t->store, 9, "big") == NULL);
  ASSERT_EQ(put(t, 7, "", "{\"text\":\"s\"}"), KK_EINVAL);

  /* opened again: filled from the table */
  ASSERT_EQ(reopen(t, arg), 0);
  listing(t, 7, l);
  ASSERT_STR_EQ(l, "promo={\"text\":\"a2\"};second={\"text\":\"s2\"};");
  listing(t, 8, l);
  ASSERT_STR_EQ(l, "promo={\"text\":\"other\"};third={\"text\":\"t\"};");
  tp = store_template_find(t->store, 7, "promo");
  ASSERT(tp != NULL);
  ASSERT_EQ(tp->created_at, created);
  ASSERT(tp->updated_at >= created);
}

static int reopen_sqlite(struct tmp_store *t, void *arg) {
  (void)arg;
  tmp_store_db_close(t);
  return tmp_store_db_open(t, NULL);
}

KK_TEST(store_templates_contract) {
  kk_log_level = KK_LOG_ERROR;
  struct tmp_store t;
  ASSERT_EQ(tmp_store_open(&t, "tpl", NULL), 0);
  contract(&t, reopen_sqlite, NULL);
  ASSERT_EQ(tmp_store_close(&t), 0);
}

static int reopen_pg(struct tmp_store *t, void *arg) {
  tmp_store_db_close(t);
  return tmp_store_db_open(t, arg);
}

KK_TEST(store_pg_templates_contract) {
  kk_test_need_pg();
  kk_log_level = KK_LOG_ERROR;
  static struct tmp_pg db;
  ASSERT_EQ(tmp_pg_new(&db), 0);
  struct store_opts o = {.store_url = db.url};
  struct tmp_store t;
  ASSERT_EQ(tmp_store_open(&t, "pgtpl", &o), 0);
  contract(&t, reopen_pg, &o);
  ASSERT_EQ(tmp_store_close(&t), 0);
  ASSERT_EQ(tmp_pg_drop(&db), 0);
}
