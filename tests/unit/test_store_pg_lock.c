/*
 * test_store_pg_lock.c - a writer's batch that meets another transaction's
 * row lock on PostgreSQL (another node's writer): it gives up the lock
 * wait (lock_timeout) or is chosen as a deadlock's victim, and is run again
 * whole until it commits; its operations are answered once, with success,
 * and nothing of a failed try is left. The other side is the test's own
 * connection, driven from a thread of its own while the store's loop runs.
 */
#include <pthread.h>
#include <stdatomic.h>
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
#include "store/store_int.h"

struct lenv {
  struct tmp_pg db;
  struct tmp_store st;
  PGconn *sql;              /* the other transaction's connection */
};

static void lenv_open(struct lenv *e) {
  kk_test_need_pg();
  kk_log_level = KK_LOG_ERROR + 1;   /* the conflicts are logged as they happen */
  memset(e, 0, sizeof *e);
  ASSERT_EQ(tmp_pg_new(&e->db), 0);
  struct store_opts o = {.store_url = e->db.url};
  ASSERT_EQ(tmp_store_open(&e->st, "pglock", &o), 0);
  e->sql = tmp_pg_connect(&e->db);
  ASSERT(e->sql != NULL);
}

static void lenv_close(struct lenv *e) {
  ASSERT_EQ(tmp_store_close(&e->st), 0);
  PQfinish(e->sql);
  ASSERT_EQ(tmp_pg_drop(&e->db), 0);
}

static void sql_do(PGconn *c, const char *sql) {
  PGresult *r = tmp_pg_exec(c, sql);
  ASSERT(r != NULL);
  PQclear(r);
}

static void sleep_ms(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

struct rows {
  char text[4][96];
  int n;
};

static void on_route(void *arg, const char *name, const char *config) {
  struct rows *r = arg;
  if (r->n < 4) snprintf(r->text[r->n++], sizeof r->text[0], "%s=%s", name, config);
}

/* ---- a lock held longer than the first tries wait ---------------------------- */

static void *commit_later(void *arg) {
  struct lenv *e = arg;
  sleep_ms(700);   /* past the short tries (3 x 200 ms) */
  sql_do(e->sql, "COMMIT");
  return NULL;
}

KK_TEST(store_pg_lock_timeout_runs_the_batch_again) {
  struct lenv e;
  lenv_open(&e);
  struct store *s = e.st.store;
  store_route_put(s, "r", "{\"v\":1}", tmp_store_done, &e.st);
  ASSERT_EQ(tmp_store_wait(&e.st, 1, 10000), 0);
  /* another writer holds the route's row */
  sql_do(e.sql, "BEGIN");
  sql_do(e.sql, "UPDATE routes SET config='{\"v\":\"other\"}' WHERE name='r'");
  pthread_t th;
  ASSERT_EQ(pthread_create(&th, NULL, commit_later, &e), 0);
  /* queued together: one batch, run again whole */
  store_route_put(s, "q", "{}", tmp_store_done, &e.st);
  store_route_put(s, "r", "{\"v\":2}", tmp_store_done, &e.st);
  int rc = tmp_store_wait(&e.st, 3, 10000);
  pthread_join(th, NULL);
  ASSERT_EQ(rc, 0);
  struct store_stats st;
  store_get_stats(s, &st);
  ASSERT(st.lock_retries >= 1);
  ASSERT_EQ(st.errors, 0);
  ASSERT_EQ(st.degraded, 0);
  struct rows r = {0};
  ASSERT_EQ(store_routes_each(s, on_route, &r), 0);
  ASSERT_EQ(r.n, 2);
  ASSERT_STR_EQ(r.text[0], "q={}");
  ASSERT_STR_EQ(r.text[1], "r={\"v\":2}");   /* written after the other's commit */
  lenv_close(&e);
}

/* ---- a deadlock: the batch is the victim ------------------------------------- */

/* Run in the store's batch: locks b, then a (which the test's transaction
   holds); on its first run it waits on a while the test's transaction waits
   on b, and the server breaks the cycle by failing this one (the deadlock
   check after 100 ms, or its lock_timeout). */
struct cycle {
  atomic_int runs;
  atomic_int holding_b;     /* the first run holds b and is about to wait on a */
  PGconn *other;
};

static int lock_b_then_a(struct store *s, struct store_op *op) {
  struct cycle *c = op->data;
  struct pg_conn *w = &PG(s)->w;
  int first = atomic_fetch_add(&c->runs, 1) == 0;
  if (first && pg_cmd(w, "SET LOCAL deadlock_timeout='100ms'", NULL) != 0) return KK_ESTORE;
  int rc = pg_cmd(w, "UPDATE routes SET config='{\"by\":\"store\"}' WHERE name='b'", NULL);
  if (rc) return rc;
  if (first) atomic_store(&c->holding_b, 1);
  return pg_cmd(w, "UPDATE routes SET config='{\"by\":\"store\"}' WHERE name='a'", NULL);
}

static void *other_takes_b(void *arg) {
  struct cycle *c = arg;
  while (!atomic_load(&c->holding_b)) sleep_ms(1);
  sleep_ms(20);   /* the store waits on a by now */
  sql_do(c->other, "UPDATE routes SET config='{\"by\":\"other\"}' WHERE name='b'");
  sql_do(c->other, "COMMIT");
  return NULL;
}

KK_TEST(store_pg_deadlock_victim_runs_the_batch_again) {
  struct lenv e;
  lenv_open(&e);
  struct store *s = e.st.store;
  store_route_put(s, "a", "{}", tmp_store_done, &e.st);
  store_route_put(s, "b", "{}", tmp_store_done, &e.st);
  ASSERT_EQ(tmp_store_wait(&e.st, 2, 10000), 0);
  sql_do(e.sql, "BEGIN");
  sql_do(e.sql, "UPDATE routes SET config='{\"by\":\"other\"}' WHERE name='a'");
  static struct cycle c;
  atomic_store(&c.runs, 0);
  atomic_store(&c.holding_b, 0);
  c.other = e.sql;
  pthread_t th;
  ASSERT_EQ(pthread_create(&th, NULL, other_takes_b, &c), 0);
  store_submit(s, store_atomic(store_op_new(lock_b_then_a, tmp_store_done, &e.st, &c, 1)));
  store_route_put(s, "c", "{}", tmp_store_done, &e.st);   /* same batch */
  int rc = tmp_store_wait(&e.st, 4, 10000);
  pthread_join(th, NULL);
  ASSERT_EQ(rc, 0);
  ASSERT(atomic_load(&c.runs) >= 2);
  struct store_stats st;
  store_get_stats(s, &st);
  ASSERT(st.lock_retries >= 1);
  ASSERT_EQ(st.errors, 0);
  /* the other transaction committed between the tries; the batch's run
     that committed wrote both rows after it */
  struct rows r = {0};
  ASSERT_EQ(store_routes_each(s, on_route, &r), 0);
  ASSERT_EQ(r.n, 3);
  ASSERT_STR_EQ(r.text[0], "a={\"by\":\"store\"}");
  ASSERT_STR_EQ(r.text[1], "b={\"by\":\"store\"}");
  ASSERT_STR_EQ(r.text[2], "c={}");
  lenv_close(&e);
}
