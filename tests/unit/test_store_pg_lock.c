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

/* ---- a due SMS another transaction has locked -------------------------------- */

/* A message of this node whose one step is SMS, due now. */
static int64_t put_sms(struct lenv *e, const char *public_id, int want) {
  int64_t now = store_now_ms();
  struct store_msg_new m = {
      .account_id = 1, .public_id = public_id, .to = "79161234567", .text = "hi",
      .msg_class = "service", .encoding = "gsm7", .segments = 1, .route = "r1",
      .created_at = now, .expires_at = now + 3600000,
  };
  store_msg_insert(e->st.store, &m, 1, tmp_store_done, &e->st);
  ASSERT_EQ(tmp_store_wait(&e->st, want, 10000), 0);
  ASSERT_EQ(m.rc, 0);
  return m.id;
}

/* Claims due SMS after *cursor; returns how many it got, their ids in ids. */
static int claim_sms(struct store *s, int64_t *cursor, int *more, int64_t *ids) {
  struct store_due rows[10];
  int n = 0;
  ASSERT_EQ(store_sms_claim(s, cursor, 60000, rows, 10, &n, more), 0);
  for (int i = 0; i < n; i++) {
    ids[i] = rows[i].id;
    free(rows[i].text);
  }
  return n;
}

/* A writer's batch that changes a due message (another node's writer, or
   this node's) holds its row's lock while the scan claims: the row is not
   another node's to send, so the scan's cursor stops before it, and the
   claim after that batch commits gets it (and the rows after it). */
KK_TEST(store_pg_sms_claim_keeps_a_locked_row_ahead_of_the_cursor) {
  struct lenv e;
  lenv_open(&e);
  struct store *s = e.st.store;
  int64_t m1 = put_sms(&e, "msg_a", 1), m2 = put_sms(&e, "msg_b", 2), m3 = put_sms(&e, "msg_c", 3);
  char sql[160];
  snprintf(sql, sizeof sql, "UPDATE messages SET updated_at=updated_at+1 WHERE id=%lld",
           (long long)m2);
  sql_do(e.sql, "BEGIN");
  sql_do(e.sql, sql);
  int64_t cursor = 0, ids[10];
  int more = 0;
  ASSERT_EQ(claim_sms(s, &cursor, &more, ids), 1);
  ASSERT_EQ(ids[0], m1);
  ASSERT_EQ(cursor, m2 - 1);
  ASSERT_EQ(more, 1);
  /* still locked: nothing, and the cursor stays */
  ASSERT_EQ(claim_sms(s, &cursor, &more, ids), 0);
  ASSERT_EQ(cursor, m2 - 1);
  sql_do(e.sql, "COMMIT");
  ASSERT_EQ(claim_sms(s, &cursor, &more, ids), 2);
  ASSERT_EQ(ids[0], m2);
  ASSERT_EQ(ids[1], m3);
  ASSERT_EQ(cursor, m3);
  ASSERT_EQ(more, 0);
  /* a row another live node holds is that one's: passed, not waited for */
  int64_t m4 = put_sms(&e, "msg_d", 4);
  sql_do(e.sql, "INSERT INTO nodes(id,name,started_at,heartbeat_at,lease_until)"
                " VALUES(900,'other',0,0,(extract(epoch from now())*1000)::bigint+600000)");
  snprintf(sql, sizeof sql, "UPDATE messages SET claimed_by=900 WHERE id=%lld", (long long)m4);
  sql_do(e.sql, sql);
  int64_t m5 = put_sms(&e, "msg_e", 5);
  cursor = m3;
  ASSERT_EQ(claim_sms(s, &cursor, &more, ids), 1);
  ASSERT_EQ(ids[0], m5);
  ASSERT_EQ(cursor, m5);
  lenv_close(&e);
}
