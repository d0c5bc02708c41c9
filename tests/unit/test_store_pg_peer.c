/*
 * test_store_pg_peer.c - two stores (nodes) on one PostgreSQL database: a
 * stop-list write through one reaches the other's copy in memory without a
 * restart, however many phones it had (many lines to a NOTIFY payload, as
 * many payloads as it takes), and taking them off again does too; an idle
 * node hears it at once, not at its next idle commit. A change made while
 * a node's listening connection was lost reaches it once that connection
 * is made again (its configuration is read over), and so does a deletion:
 * a named cascade, a template and a route deleted and a key revoked
 * meanwhile are dropped from its caches.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/kk_err.h"
#include "core/kk_log.h"
#include "kk_test.h"
#include "lib/tmp_pg.h"
#include "lib/tmp_store.h"
#include "store/pg/pg_int.h"
#include "store/store.h"
#include "store/store_optout.h"
#include "store/store_tpl.h"

#define PHONES 2000   /* ~50,000 bytes of lines: several payloads */

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6;
}

static void phone_of(int i, char out[16]) { snprintf(out, 16, "7916%07d", 3000000 + i); }

/* Runs b's loop until every phone of account has reason want (0: none) in
   its copy, up to 3 s: the milliseconds it took, or -1. */
static double wait_copy(struct tmp_store *b, int64_t account, unsigned want, double t0) {
  int never = 0;
  while (now_ms() - t0 < 3000) {
    int all = 1;
    for (int i = 0; i < PHONES && all; i++) {
      char p[16];
      phone_of(i, p);
      all = (store_stop_reason(b->store, account, p) != 0) == (want != 0);
    }
    if (all) return now_ms() - t0;
    tmp_store_run_until(b, &never, 1, 5);
  }
  return -1;
}

/* A new database with two nodes a and b on it (named na and nb), b's
   writer up: its listener wakes that once it has run (its first idle
   commit, idle_ms after the open). */
static void two_nodes(struct tmp_pg *db, struct tmp_store *a, const char *na, struct tmp_store *b,
                      const char *nb) {
  kk_test_need_pg();
  kk_log_level = KK_LOG_ERROR;
  ASSERT_EQ(tmp_pg_new(db), 0);
  struct store_opts o = {.store_url = db->url};
  ASSERT_EQ(tmp_store_open(a, na, &o), 0);
  ASSERT_EQ(tmp_store_open(b, nb, &o), 0);
  int never = 0;
  for (int i = 0; i < 400 && !PG(b->store)->writer_up; i++) tmp_store_run_until(b, &never, 1, 5);
  ASSERT(PG(b->store)->writer_up);
}

/* Both nodes closed, their database dropped. */
static void two_nodes_end(struct tmp_pg *db, struct tmp_store *a, struct tmp_store *b) {
  ASSERT_EQ(tmp_store_close(a), 0);
  ASSERT_EQ(tmp_store_close(b), 0);
  ASSERT_EQ(tmp_pg_drop(db), 0);
}

KK_TEST(store_pg_stoplist_reaches_the_other_node) {
  struct tmp_pg db;
  static struct tmp_store a, b;
  two_nodes(&db, &a, "pgpeerA", &b, "pgpeerB");
  struct store_account acc = {0};
  snprintf(acc.name, sizeof acc.name, "A");
  store_account_create(a.store, &acc, tmp_store_done, &a);
  ASSERT_EQ(tmp_store_wait(&a, 1, 10000), 0);

  static struct store_stop_row rows[PHONES];
  for (int i = 0; i < PHONES; i++) {
    memset(&rows[i], 0, sizeof rows[i]);
    phone_of(i, rows[i].phone);
    snprintf(rows[i].reason, sizeof rows[i].reason, "complaint");
  }
  struct store_stop_batch put = {.account_id = acc.id, .at = 1, .rows = rows, .n = PHONES};
  store_stop_write(a.store, &put, tmp_store_done, &a);
  ASSERT_EQ(tmp_store_wait(&a, 2, 10000), 0);
  double t0 = now_ms();   /* committed on A */
  ASSERT_EQ(put.changed, PHONES);
  double ms = wait_copy(&b, acc.id, 1, t0);
  if (getenv("KASKAD_TEST_VERBOSE")) fprintf(stderr, "put: %.1f ms\n", ms);
  ASSERT(ms >= 0);
  ASSERT(ms < 400);   /* B is idle: it is woken, not left to its next idle commit */
  /* taken off again */
  for (int i = 0; i < PHONES; i++) rows[i].withdraw = 1, rows[i].reason[0] = '\0';
  struct store_stop_batch del = {.account_id = acc.id, .at = 2, .rows = rows, .n = PHONES};
  store_stop_write(a.store, &del, tmp_store_done, &a);
  ASSERT_EQ(tmp_store_wait(&a, 3, 10000), 0);
  t0 = now_ms();
  ms = wait_copy(&b, acc.id, 0, t0);
  ASSERT(ms >= 0);
  ASSERT(ms < 400);
  /* another account's copy is untouched */
  char p[16];
  phone_of(0, p);
  ASSERT_EQ(store_stop_reason(b.store, acc.id + 1, p), 0);
  two_nodes_end(&db, &a, &b);
}

/* Runs b's loop until its cached cascade name of account has steps, up to
   ms: 1 when it has, else 0. */
static int wait_cascade(struct tmp_store *b, int64_t account, const char *name, const char *steps,
                        int ms) {
  int never = 0;
  double t0 = now_ms();
  while (now_ms() - t0 < ms) {
    char *v = NULL;
    int same = store_cascade_get(b->store, account, name, &v) == 0 && strcmp(v, steps) == 0;
    free(v);
    if (same) return 1;
    tmp_store_run_until(b, &never, 1, 5);
  }
  return 0;
}

/* What B's notes say of a route and a key, as a dispatcher and an API
   would hold them: 1 present, 0 gone, -1 never heard of. */
struct seen_cfg {
  int route, key;
  uint8_t hash[32];
};

static void on_cfg(void *ud, const struct store_note *notes, int n) {
  struct seen_cfg *c = ud;
  for (int i = 0; i < n; i++) {
    const struct store_note *t = &notes[i];
    if (t->kind == STORE_NOTE_ROUTE && strcmp(t->cfg->name, "r1") == 0)
      c->route = t->cfg->text != NULL;
    if ((t->kind == STORE_NOTE_KEY_ADD || t->kind == STORE_NOTE_KEY_REVOKE) &&
        memcmp(t->cfg->hash, c->hash, 32) == 0)
      c->key = t->kind == STORE_NOTE_KEY_ADD;
  }
}

/* Runs b's loop until its caches hold (1) or lack (0) each of: account 7's
   cascade "d" and template "t1", route "r1" and the key; up to ms: 1 when
   they do, else 0. */
static int wait_held(struct tmp_store *b, const struct seen_cfg *c, int want, int ms) {
  int never = 0;
  double t0 = now_ms();
  while (now_ms() - t0 < ms) {
    char *v = NULL;
    int casc = store_cascade_get(b->store, 7, "d", &v) == 0;
    free(v);
    int tpl = store_template_find(b->store, 7, "t1") != NULL;
    if (casc == want && tpl == want && c->route == want && c->key == want) return 1;
    tmp_store_run_until(b, &never, 1, 5);
  }
  return 0;
}

/* Runs sql on c (no rows wanted). */
static void sql_do(PGconn *c, const char *sql) {
  PGresult *r = tmp_pg_exec(c, sql);
  ASSERT(r != NULL);
  PQclear(r);
}

KK_TEST(store_pg_change_missed_while_listening_is_read_again) {
  struct tmp_pg db;
  static struct tmp_store a, b;
  two_nodes(&db, &a, "pgcatchA", &b, "pgcatchB");
  PGconn *sql = PQconnectdb(db.admin);   /* on another database: it shuts this one */
  ASSERT(PQstatus(sql) == CONNECTION_OK);
  const char *v1 = "[{\"channel\":\"sms\"}]", *v2 = "[{\"channel\":\"vk\"}]";
  store_cascade_put(a.store, 7, "c", v1, tmp_store_done, &a);
  ASSERT_EQ(tmp_store_wait(&a, 1, 10000), 0);
  ASSERT(wait_cascade(&b, 7, "c", v1, 3000));   /* heard as it happened */
  /* what is deleted while B cannot hear: a named cascade, a template, a
     route, and a key revoked */
  static struct seen_cfg seen = {.route = -1, .key = -1};
  memset(seen.hash, 0xab, sizeof seen.hash);
  ASSERT_EQ(store_subscribe(b.store, on_cfg, &seen), 0);
  struct store_account acc = {0};
  snprintf(acc.name, sizeof acc.name, "K");
  store_account_create(a.store, &acc, tmp_store_done, &a);
  ASSERT_EQ(tmp_store_wait(&a, 2, 10000), 0);
  store_key_add(a.store, acc.id, seen.hash, "kk_catch", tmp_store_done, &a);
  store_cascade_put(a.store, 7, "d", v1, tmp_store_done, &a);
  store_template_put(a.store, 7, "t1", "{\"text\":\"hi\"}", tmp_store_done, &a);
  store_route_put(a.store, "r1", "{\"smsc\":\"x\"}", tmp_store_done, &a);
  ASSERT_EQ(tmp_store_wait(&a, 6, 10000), 0);
  ASSERT(wait_held(&b, &seen, 1, 3000));

  /* B's listening connection is lost, and cannot be made again until the
     change is committed: its NOTIFY reaches no connection of B's */
  char q[256];
  snprintf(q, sizeof q, "ALTER DATABASE \"%s\" ALLOW_CONNECTIONS false", db.name);
  sql_do(sql, q);
  snprintf(q, sizeof q, "SELECT pg_terminate_backend(%d, 5000)", PQbackendPID(PG(b.store)->hb.db));
  sql_do(sql, q);
  store_cascade_put(a.store, 7, "c", v2, tmp_store_done, &a);
  store_cascade_put(a.store, 7, "d", NULL, tmp_store_done, &a);
  store_template_put(a.store, 7, "t1", NULL, tmp_store_done, &a);
  store_route_put(a.store, "r1", NULL, tmp_store_done, &a);
  struct store_key_revoke rk = {.account_id = 0};
  snprintf(rk.prefix, sizeof rk.prefix, "kk_catch");
  store_key_revoke(a.store, &rk, tmp_store_done, &a);
  ASSERT_EQ(tmp_store_wait(&a, 11, 10000), 0);
  ASSERT_EQ(rk.n, 1);
  ASSERT(!wait_cascade(&b, 7, "c", v2, 300));   /* not heard */
  ASSERT(wait_held(&b, &seen, 1, 10));           /* still held */
  snprintf(q, sizeof q, "ALTER DATABASE \"%s\" ALLOW_CONNECTIONS true", db.name);
  sql_do(sql, q);
  /* once made again, B reads its configuration over, and drops what is gone */
  ASSERT(wait_cascade(&b, 7, "c", v2, 5000));
  ASSERT(wait_held(&b, &seen, 0, 3000));
  store_unsubscribe(b.store, on_cfg, &seen);
  PQfinish(sql);
  two_nodes_end(&db, &a, &b);
}
