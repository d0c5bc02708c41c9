/*
 * test_store_pg.c - the store's contract for accounts, keys, routes,
 * settings and retention against PostgreSQL (a fresh database per test on
 * the server in KASKAD_TEST_PG; without it every test here is reported not
 * run), and what several nodes on one database rely on: ids no two stores
 * share, claims that grant a row to one node at a time until its lease
 * ends, a savepoint that leaves nothing half-written, and a lost connection
 * that fails the batch as a fault and is made again.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "core/kk_err.h"
#include "core/kk_log.h"
#include "kk_test.h"
#include "lib/tmp_pg.h"
#include "lib/tmp_store.h"
#include "store/pg/pg_int.h"
#include "store/store.h"
#include "store/store_int.h"

struct env {
  struct tmp_pg db;
  struct tmp_store st[2];   /* two stores (nodes) on the same database */
  int nst;
  PGconn *sql;              /* the test's own connection */
  int64_t lease_ms;         /* the nodes' lease (0: the default) */
};

static void need_pg(void) {
  kk_test_need_pg();
}

static void env_store(struct env *e) {
  struct store_opts o = {.store_url = e->db.url, .node_lease_ms = e->lease_ms};
  ASSERT_EQ(tmp_store_open(&e->st[e->nst], "pgstore", &o), 0);
  e->nst++;
}

static void env_open_lease(struct env *e, int nstores, int64_t lease_ms) {
  need_pg();
  kk_log_level = KK_LOG_ERROR;
  memset(e, 0, sizeof *e);
  e->lease_ms = lease_ms;
  ASSERT_EQ(tmp_pg_new(&e->db), 0);
  for (int i = 0; i < nstores; i++) env_store(e);
  e->sql = tmp_pg_connect(&e->db);
  ASSERT(e->sql != NULL);
}

static void env_open(struct env *e, int nstores) { env_open_lease(e, nstores, 0); }

static void env_close(struct env *e) {
  for (int i = 0; i < e->nst; i++) ASSERT_EQ(tmp_store_close(&e->st[i]), 0);
  PQfinish(e->sql);
  ASSERT_EQ(tmp_pg_drop(&e->db), 0);
}

/* One number from a query of the test's connection. */
static int64_t sql_int(struct env *e, const char *sql) {
  PGresult *r = tmp_pg_exec(e->sql, sql);
  ASSERT(r != NULL);
  ASSERT(PQntuples(r) == 1);
  int64_t v = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
  PQclear(r);
  return v;
}

static void sql_do(struct env *e, const char *sql) {
  PGresult *r = tmp_pg_exec(e->sql, sql);
  ASSERT(r != NULL);
  PQclear(r);
}

/* Waits for the operations queued on store i so far. */
static int wait_store(struct env *e, int i, int want) {
  return tmp_store_wait(&e->st[i], want, 10000);
}

/* ---- a function run on a store's writer thread, inside its batch ------ */

struct call {
  int (*fn)(struct store *s, struct call *c);
  int64_t ids[2000];
  int n;
  unsigned char granted[64];
  int64_t lease_ms;
  int hold_ms;              /* sleep this long inside the transaction */
  int claimed;              /* set (atomically) once the claim has run */
  PGconn *killer;           /* lost-connection test: the connection that kills */
};

static int call_exec(struct store *s, struct store_op *op) {
  struct call *c = op->data;
  return c->fn(s, c);
}

static void submit_call(struct env *e, int i, struct call *c) {
  struct store *s = e->st[i].store;
  store_submit(s, store_atomic(store_op_new(call_exec, tmp_store_done, &e->st[i], c, 1)));
}

/* ---- open and migrate ---------------------------------------------------- */

KK_TEST(store_pg_opens_and_migrates_twice) {
  struct env e;
  env_open(&e, 2);   /* the second finds the schema made by the first */
  ASSERT_EQ(sql_int(&e, "SELECT MAX(version) FROM schema_version"), pg_schema_latest());
  ASSERT_EQ(sql_int(&e, "SELECT COUNT(*) FROM nodes"), 2);
  /* a node's heartbeat moves about once a second, idle as it is */
  struct timespec ts = {2, 500 * 1000000L};
  nanosleep(&ts, NULL);
  ASSERT_EQ(sql_int(&e, "SELECT COUNT(*) FROM nodes WHERE heartbeat_at>=started_at+1000"), 2);
  /* commits are durable when they return */
  PGresult *r = tmp_pg_exec(PG(e.st[0].store)->r.db, "SHOW synchronous_commit");
  ASSERT(r != NULL);
  ASSERT_STR_EQ(PQgetvalue(r, 0, 0), "on");
  PQclear(r);
  /* closed and opened again: nothing migrates twice, the node row goes */
  tmp_store_db_close(&e.st[0]);
  ASSERT_EQ(sql_int(&e, "SELECT COUNT(*) FROM nodes"), 1);
  struct store_opts o = {.store_url = e.db.url};
  ASSERT_EQ(tmp_store_db_open(&e.st[0], &o), 0);
  ASSERT_EQ(sql_int(&e, "SELECT COUNT(*) FROM schema_version"), pg_schema_latest());
  ASSERT_EQ(sql_int(&e, "SELECT COUNT(*) FROM nodes"), 2);
  /* a schema newer than this kaskad knows is refused */
  sql_do(&e, "INSERT INTO schema_version(version) VALUES(99)");
  tmp_store_db_close(&e.st[1]);
  kk_log_level = KK_LOG_ERROR + 1;
  ASSERT_EQ(tmp_store_db_open(&e.st[1], &o), KK_ESTORE);
  e.st[1].store = NULL;
  env_close(&e);
}

KK_TEST(store_pg_refuses_an_unknown_store_and_a_dead_server) {
  need_pg();
  kk_log_level = KK_LOG_ERROR + 1;
  uv_loop_t loop;
  uv_loop_init(&loop);
  struct store *s = NULL;
  struct store_opts o = {.store_url = "mysql://x/y"};
  ASSERT_EQ(store_open(&loop, &o, &s), KK_ESTORE);
  o.store_url = "postgresql://nobody@127.0.0.1:1/none?connect_timeout=2";
  ASSERT_EQ(store_open(&loop, &o, &s), KK_ESTORE);
  ASSERT(s == NULL);
  ASSERT_EQ(uv_loop_close(&loop), 0);
}

/* ---- accounts and keys ---------------------------------------------------- */

static void on_account(void *arg, const struct store_account *a) {
  struct store_account *seen = arg;
  seen[a->id < 3 ? a->id : 0] = *a;
}

static void on_id(void *arg, int64_t id) { *(int64_t *)arg = id; }

struct keys_seen {
  int n;
  uint8_t hash[4][32];
  int64_t owner[4];
  int64_t revoked[4];
  char prefix[4][16];
};

static void on_key(void *arg, const uint8_t hash[32], int64_t account_id) {
  struct keys_seen *k = arg;
  if (k->n < 4) {
    memcpy(k->hash[k->n], hash, 32);
    k->owner[k->n++] = account_id;
  }
}

static void on_key_row(void *arg, const char *prefix, int64_t created_at, int64_t revoked_at) {
  struct keys_seen *k = arg;
  if (k->n < 4) {
    snprintf(k->prefix[k->n], sizeof k->prefix[0], "%s", prefix);
    ASSERT(created_at > 0);
    k->revoked[k->n++] = revoked_at;
  }
}

KK_TEST(store_pg_accounts_and_keys) {
  struct env e;
  env_open(&e, 1);
  struct store *s = e.st[0].store;
  struct store_account a = {0}, b = {0};
  snprintf(a.name, sizeof a.name, "Alpha");
  snprintf(b.name, sizeof b.name, "Beta");
  snprintf(b.senders, sizeof b.senders, "[\"SHOP\"]");
  store_account_create(s, &a, tmp_store_done, &e.st[0]);
  store_account_create(s, &b, tmp_store_done, &e.st[0]);
  ASSERT_EQ(wait_store(&e, 0, 2), 0);
  ASSERT(a.id > 0 && b.id > a.id);

  struct store_account got;
  ASSERT_EQ(store_account_get(s, b.public_id, &got), 0);
  ASSERT_EQ(got.id, b.id);
  ASSERT_STR_EQ(got.name, "Beta");
  ASSERT_STR_EQ(got.senders, "[\"SHOP\"]");
  ASSERT_STR_EQ(got.countries, "[]");
  ASSERT_STR_EQ(got.callback_secret, b.callback_secret);
  ASSERT_EQ(store_account_get_by_id(s, a.id, &got), 0);
  ASSERT_STR_EQ(got.public_id, a.public_id);
  ASSERT_EQ(store_account_get(s, "acc_none", &got), KK_ENOENT);
  ASSERT_EQ(store_account_get_by_id(s, 999, &got), KK_ENOENT);

  a.suspended = 1;
  snprintf(a.name, sizeof a.name, "Alpha's 'quoted' name; DROP TABLE accounts");
  store_account_update(s, &a, tmp_store_done, &e.st[0]);
  ASSERT_EQ(wait_store(&e, 0, 3), 0);
  int64_t susp = 0;
  ASSERT_EQ(store_accounts_suspended(s, on_id, &susp), 0);
  ASSERT_EQ(susp, a.id);
  struct store_account seen[3];
  memset(seen, 0, sizeof seen);
  ASSERT_EQ(s->be->read.accounts_each(s, on_account, seen), 0);
  ASSERT_STR_EQ(seen[a.id].name, a.name);
  ASSERT_EQ(seen[a.id].suspended, 1);
  ASSERT_STR_EQ(seen[b.id].public_id, b.public_id);

  /* keys: two of a's, one of b's; a hash used twice is refused */
  uint8_t h1[32], h2[32], h3[32];
  memset(h1, 0x11, 32);
  memset(h2, 0x00, 32);   /* zero bytes travel as bytes */
  memset(h3, 0xfe, 32);
  store_key_add(s, a.id, h1, "kk_aaaa", tmp_store_done, &e.st[0]);
  store_key_add(s, a.id, h2, "kk_bbbb", tmp_store_done, &e.st[0]);
  store_key_add(s, b.id, h3, "kk_cccc", tmp_store_done, &e.st[0]);
  ASSERT_EQ(wait_store(&e, 0, 6), 0);
  store_key_add(s, b.id, h1, "kk_dddd", tmp_store_done, &e.st[0]);
  ASSERT_EQ(wait_store(&e, 0, 7), KK_EEXIST);
  e.st[0].rc = 0;
  struct keys_seen k = {0};
  ASSERT_EQ(store_keys_each(s, on_key, &k), 0);
  ASSERT_EQ(k.n, 3);
  ASSERT_MEM_EQ(k.hash[0], h1, 32);
  ASSERT_MEM_EQ(k.hash[1], h2, 32);
  ASSERT_MEM_EQ(k.hash[2], h3, 32);
  ASSERT_EQ(k.owner[2], b.id);

  /* revoke: by prefix, within an account; the second time nothing is active */
  struct store_key_revoke rv = {.account_id = b.id};
  snprintf(rv.prefix, sizeof rv.prefix, "kk_bbbb");
  store_key_revoke(s, &rv, tmp_store_done, &e.st[0]);
  ASSERT_EQ(wait_store(&e, 0, 8), KK_ENOENT);   /* not b's key */
  e.st[0].rc = 0;
  rv.account_id = 0;
  store_key_revoke(s, &rv, tmp_store_done, &e.st[0]);
  ASSERT_EQ(wait_store(&e, 0, 9), 0);
  ASSERT_EQ(rv.n, 1);
  ASSERT_EQ(rv.owner[0], a.id);
  ASSERT_MEM_EQ(rv.hash[0], h2, 32);
  store_key_revoke(s, &rv, tmp_store_done, &e.st[0]);
  ASSERT_EQ(wait_store(&e, 0, 10), KK_ENOENT);
  memset(&k, 0, sizeof k);
  ASSERT_EQ(store_keys_each(s, on_key, &k), 0);
  ASSERT_EQ(k.n, 2);
  memset(&k, 0, sizeof k);
  ASSERT_EQ(tmp_store_keys_list(&e.st[0], a.id, on_key_row, &k), 0);
  ASSERT_EQ(k.n, 2);
  ASSERT_STR_EQ(k.prefix[0], "kk_aaaa");
  ASSERT_EQ(k.revoked[0], 0);
  ASSERT_STR_EQ(k.prefix[1], "kk_bbbb");
  ASSERT(k.revoked[1] > 0);
  env_close(&e);
}

/* ---- routes and settings --------------------------------------------------- */

struct rows {
  int n;
  char text[8][96];
};

static void on_route(void *arg, const char *name, const char *config) {
  struct rows *r = arg;
  if (r->n < 8) snprintf(r->text[r->n++], sizeof r->text[0], "%s=%s", name, config);
}

static void on_setting(void *arg, int64_t account_id, const char *key, const char *value) {
  struct rows *r = arg;
  if (r->n < 8)
    snprintf(r->text[r->n++], sizeof r->text[0], "%lld/%s=%s", (long long)account_id, key, value);
}

static void on_price(void *arg, int64_t account_id, const char *channel, int64_t price) {
  struct rows *r = arg;
  if (r->n < 8)
    snprintf(r->text[r->n++], sizeof r->text[0], "%lld/%s=%lld", (long long)account_id, channel,
             (long long)price);
}

static void on_cascade(void *arg, const char *name, const char *steps) {
  on_route(arg, name, steps);
}

KK_TEST(store_pg_routes_and_settings) {
  struct env e;
  env_open(&e, 1);
  struct store *s = e.st[0].store;
  struct tmp_store *t = &e.st[0];
  store_route_put(s, "b", "{\"host\":\"h2\"}", tmp_store_done, t);
  store_route_put(s, "a", "{\"host\":\"h1\"}", tmp_store_done, t);
  store_route_put(s, "c", "{}", tmp_store_done, t);
  ASSERT_EQ(wait_store(&e, 0, 3), 0);
  store_route_put(s, "a", "{\"host\":\"h9\"}", tmp_store_done, t);
  store_route_put(s, "c", NULL, tmp_store_done, t);
  ASSERT_EQ(wait_store(&e, 0, 5), 0);
  struct rows r = {0};
  ASSERT_EQ(store_routes_each(s, on_route, &r), 0);
  ASSERT_EQ(r.n, 2);
  ASSERT_STR_EQ(r.text[0], "a={\"host\":\"h9\"}");
  ASSERT_STR_EQ(r.text[1], "b={\"host\":\"h2\"}");

  store_channel_put(s, 0, "vk", "{\"token\":\"t0\"}", tmp_store_done, t);
  store_channel_put(s, 7, "vk", "{\"token\":\"t7\"}", tmp_store_done, t);
  store_channel_put(s, 7, "viber", "{}", tmp_store_done, t);
  store_price_put(s, 0, "sms", 150, tmp_store_done, t);
  store_price_put(s, 7, "sms", 120, tmp_store_done, t);
  store_price_put(s, 7, "vk", 40, tmp_store_done, t);
  store_cascade_put(s, 7, "otp", "vk:30s,sms", tmp_store_done, t);
  store_cascade_put(s, 7, "news", "viber:1h,sms", tmp_store_done, t);
  store_cascade_put(s, 8, "otp", "sms", tmp_store_done, t);
  ASSERT_EQ(wait_store(&e, 0, 14), 0);
  store_channel_put(s, 7, "viber", NULL, tmp_store_done, t);   /* deleted */
  store_price_put(s, 7, "vk", -1, tmp_store_done, t);          /* deleted */
  store_price_put(s, 7, "sms", 125, tmp_store_done, t);        /* replaced */
  store_cascade_put(s, 7, "otp", "vk:60s,sms", tmp_store_done, t);
  ASSERT_EQ(wait_store(&e, 0, 18), 0);

  memset(&r, 0, sizeof r);
  ASSERT_EQ(store_channels_each(s, on_setting, &r), 0);
  ASSERT_EQ(r.n, 2);
  ASSERT_STR_EQ(r.text[0], "0/vk={\"token\":\"t0\"}");
  ASSERT_STR_EQ(r.text[1], "7/vk={\"token\":\"t7\"}");
  memset(&r, 0, sizeof r);
  ASSERT_EQ(store_prices_each(s, on_price, &r), 0);
  ASSERT_EQ(r.n, 2);
  ASSERT_STR_EQ(r.text[0], "0/sms=150");
  ASSERT_STR_EQ(r.text[1], "7/sms=125");
  char *steps = NULL;
  ASSERT_EQ(store_cascade_get(s, 7, "otp", &steps), 0);
  ASSERT_STR_EQ(steps, "vk:60s,sms");
  free(steps);
  ASSERT_EQ(store_cascade_get(s, 9, "otp", &steps), KK_ENOENT);
  memset(&r, 0, sizeof r);
  ASSERT_EQ(store_cascades_each(s, 7, on_cascade, &r), 0);
  ASSERT_EQ(r.n, 2);
  ASSERT_STR_EQ(r.text[0], "news=viber:1h,sms");
  ASSERT_STR_EQ(r.text[1], "otp=vk:60s,sms");
  memset(&r, 0, sizeof r);
  ASSERT_EQ(s->be->read.cascades_all(s, on_setting, &r), 0);
  ASSERT_EQ(r.n, 3);
  ASSERT_STR_EQ(r.text[0], "7/news=viber:1h,sms");
  ASSERT_STR_EQ(r.text[2], "8/otp=sms");
  env_close(&e);
}

/* ---- retention ----------------------------------------------------------- */

KK_TEST(store_pg_retention_deletes_finished_old_messages) {
  struct env e;
  env_open(&e, 1);
  /* 1, 2: old and done; 3: old, not done; 4: new */
  sql_do(&e, "INSERT INTO messages(id,public_id,account_id,to_number,body,class,encoding,"
             "segments,status,created_at,expires_at,updated_at,done) VALUES"
             " (1,'m1',1,'1','x','service','gsm7',1,'delivered',100,200,150,1),"
             " (2,'m2',1,'1','x','service','gsm7',1,'failed',110,200,160,1),"
             " (3,'m3',1,'1','x','service','gsm7',1,'sent',120,200,170,0),"
             " (4,'m4',1,'1','x','service','gsm7',1,'delivered',5000,6000,5100,1)");
  sql_do(&e, "INSERT INTO attempts(id,message_id,channel,status,created_at) VALUES"
             " (11,1,'sms','delivered',100),(13,3,'sms','sent',120)");
  sql_do(&e, "INSERT INTO sms_parts(route,provider_id,attempt_id,part,state) VALUES"
             " ('r','p1',11,1,'delivered'),('r','p3',13,1,'sent')");
  sql_do(&e, "INSERT INTO events(message_id,status,at) VALUES (1,'delivered',150),(3,'sent',170)");
  struct store_retention r = {.cutoff = 1000, .after_id = 0, .max = 2};
  store_retention(e.st[0].store, &r, tmp_store_done, &e.st[0]);
  ASSERT_EQ(wait_store(&e, 0, 1), 0);
  ASSERT_EQ(r.deleted, 2);
  ASSERT_EQ(r.after_id, 2);
  ASSERT_EQ(r.more, 1);
  store_retention(e.st[0].store, &r, tmp_store_done, &e.st[0]);
  ASSERT_EQ(wait_store(&e, 0, 2), 0);
  ASSERT_EQ(r.deleted, 0);
  ASSERT_EQ(r.after_id, 3);
  ASSERT_EQ(r.more, 0);   /* 4 is newer than the cutoff */
  PGresult *res = tmp_pg_exec(e.sql, "SELECT string_agg(id::text,',' ORDER BY id) FROM messages");
  ASSERT_STR_EQ(PQgetvalue(res, 0, 0), "3,4");
  PQclear(res);
  ASSERT_EQ(sql_int(&e, "SELECT COUNT(*) FROM attempts WHERE message_id IN (1,2)"), 0);
  ASSERT_EQ(sql_int(&e, "SELECT COUNT(*) FROM sms_parts"), 1);
  ASSERT_EQ(sql_int(&e, "SELECT COUNT(*) FROM events"), 1);
  env_close(&e);
}

/* ---- ids ----------------------------------------------------------------- */

static int take_ids(struct store *s, struct call *c) {
  for (int i = 0; i < c->n; i++) {
    c->ids[i] = s->be->new_id(s, i % 2 ? STORE_ID_ATTEMPT : STORE_ID_MESSAGE);
    if (c->ids[i] <= 0) return KK_ESTORE;
  }
  return 0;
}

static int cmp_id(const void *a, const void *b) {
  int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
  return x < y ? -1 : x > y;
}

KK_TEST(store_pg_new_ids_are_unique_across_stores) {
  struct env e;
  env_open(&e, 2);
  static struct call c[2];
  for (int i = 0; i < 2; i++) {
    c[i].fn = take_ids;
    c[i].n = 2000;   /* 1000 of each kind: crosses a block */
    submit_call(&e, i, &c[i]);
  }
  ASSERT_EQ(wait_store(&e, 0, 1), 0);
  ASSERT_EQ(wait_store(&e, 1, 1), 0);
  /* per kind, the two stores' ids together are all different */
  for (int kind = 0; kind < 2; kind++) {
    static int64_t all[2000];
    int n = 0;
    for (int i = 0; i < 2; i++)
      for (int j = kind; j < c[i].n; j += 2) all[n++] = c[i].ids[j];
    qsort(all, (size_t)n, sizeof all[0], cmp_id);
    for (int j = 1; j < n; j++) ASSERT(all[j] != all[j - 1]);
  }
  env_close(&e);
}

/* ---- claims ------------------------------------------------------------------ */

static int claim_msgs(struct store *s, struct call *c) {
  int rc = s->be->claim(s, STORE_CLAIM_SMS, c->ids, c->n, c->lease_ms, c->granted);
  __atomic_store_n(&c->claimed, 1, __ATOMIC_SEQ_CST);
  if (c->hold_ms) {
    struct timespec ts = {c->hold_ms / 1000, (long)(c->hold_ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
  }
  return rc;
}

static void add_due_messages(struct env *e, int n) {
  for (int i = 1; i <= n; i++) {
    char sql[320];
    snprintf(sql, sizeof sql,
             "INSERT INTO messages(id,public_id,account_id,to_number,body,class,encoding,"
             "segments,status,created_at,expires_at,updated_at,due_at) VALUES"
             " (%d,'m%d',1,'1','x','service','gsm7',1,'queued',1,2,1,1)", i, i);
    sql_do(e, sql);
  }
}

static void claim_call(struct call *c, int from, int to, int64_t lease_ms, int hold_ms) {
  memset(c, 0, sizeof *c);
  c->fn = claim_msgs;
  for (int id = from; id <= to; id++) c->ids[c->n++] = id;
  c->lease_ms = lease_ms;
  c->hold_ms = hold_ms;
}

KK_TEST(store_pg_claims_grant_each_row_to_one_store) {
  struct env e;
  env_open(&e, 2);
  add_due_messages(&e, 40);
  /* store 0 claims 1..30 and holds its transaction open a while; store 1
     claims 1..40 meanwhile (its rows locked, not yet committed), then again
     after store 0 committed */
  static struct call c0, c1, c2;
  claim_call(&c0, 1, 30, 60000, 300);
  claim_call(&c1, 1, 40, 60000, 0);
  claim_call(&c2, 1, 40, 60000, 0);
  submit_call(&e, 0, &c0);
  for (int i = 0; i < 500 && !__atomic_load_n(&c0.claimed, __ATOMIC_SEQ_CST); i++) {
    struct timespec ts = {0, 10 * 1000000L};
    nanosleep(&ts, NULL);
  }
  submit_call(&e, 1, &c1);
  ASSERT_EQ(wait_store(&e, 0, 1), 0);
  ASSERT_EQ(wait_store(&e, 1, 1), 0);
  submit_call(&e, 1, &c2);
  ASSERT_EQ(wait_store(&e, 1, 2), 0);
  for (int i = 0; i < 40; i++) {
    int by0 = i < 30 && c0.granted[i] == STORE_CLAIM_GOT;
    /* never both, never neither: the rows store 0 had locked, not yet
       committed, are store 1's to ask again for (busy), then store 0's */
    ASSERT_EQ(c1.granted[i], by0 ? STORE_CLAIM_BUSY : STORE_CLAIM_GOT);
    ASSERT_EQ(c2.granted[i], by0 ? STORE_CLAIM_HELD : STORE_CLAIM_GOT);
    /* store 0 claimed first: store 1 skipped the rows it had locked */
    ASSERT_EQ(by0, i < 30);
  }
  ASSERT_EQ(sql_int(&e, "SELECT COUNT(DISTINCT claimed_by) FROM messages"), 2);
  ASSERT_EQ(sql_int(&e, "SELECT COUNT(*) FROM messages WHERE claimed_by IS NULL"), 0);
  /* a store that closes hands its rows back at once: its row goes, and a
     holder without a row is dead (the other store's idle writer may take
     them over meanwhile) */
  int64_t gone = sql_int(&e, "SELECT claimed_by FROM messages WHERE id=(SELECT MIN(id) FROM messages)");
  tmp_store_db_close(&e.st[0]);
  ASSERT_EQ(sql_int(&e, "SELECT COUNT(*) FROM nodes"), 1);
  char q[200];
  snprintf(q, sizeof q, "SELECT COUNT(*) FROM nodes WHERE id=%lld", (long long)gone);
  ASSERT_EQ(sql_int(&e, q), 0);
  snprintf(q, sizeof q,
           "SELECT COUNT(*) FROM messages WHERE claimed_by=%lld OR claimed_by=(SELECT id FROM nodes)",
           (long long)gone);
  ASSERT_EQ(sql_int(&e, q), 40);
  env_close(&e);
}

/* A call that sleeps inside the writer's batch: its node does not beat. */
static int stall(struct store *s, struct call *c) {
  (void)s;
  struct timespec ts = {c->hold_ms / 1000, (long)(c->hold_ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
  return 0;
}

/* Runs store i's loop for ms (its notes are delivered, its writer idles). */
static void run_ms(struct env *e, int i, int ms) {
  int never = 0;
  tmp_store_run_until(&e->st[i], &never, 1, ms);
}

KK_TEST(store_pg_claims_last_while_the_node_beats_then_are_taken_over) {
  struct env e;
  env_open_lease(&e, 2, 3000);
  add_due_messages(&e, 5);
  static struct call a, b, b2, hold;
  /* a claim's lease_ms does not end a live node's claim: its heartbeat
     renews it, idle as it is */
  claim_call(&a, 1, 5, 100, 0);
  submit_call(&e, 0, &a);
  ASSERT_EQ(wait_store(&e, 0, 1), 0);
  for (int i = 0; i < 5; i++) ASSERT_EQ(a.granted[i], 1);
  run_ms(&e, 0, 4000);
  claim_call(&b, 1, 5, 60000, 0);
  submit_call(&e, 1, &b);
  ASSERT_EQ(wait_store(&e, 1, 1), 0);
  for (int i = 0; i < 5; i++) ASSERT_EQ(b.granted[i], 0);   /* a's node lives */
  ASSERT(sql_int(&e, "SELECT COUNT(*) FROM nodes WHERE lease_until>"
                     "(EXTRACT(EPOCH FROM clock_timestamp())*1000)::bigint") == 2);
  /* a writer stalled longer than the lease does not end it: the heartbeat
     has a thread of its own */
  memset(&hold, 0, sizeof hold);
  hold.fn = stall;
  hold.hold_ms = 4000;
  submit_call(&e, 0, &hold);
  run_ms(&e, 1, 4000);
  ASSERT_EQ(wait_store(&e, 0, 2), 0);
  ASSERT_EQ(sql_int(&e, "SELECT COUNT(*) FROM nodes WHERE lease_until>"
                        "(EXTRACT(EPOCH FROM clock_timestamp())*1000)::bigint"), 2);
  /* node 0's heartbeat stops (as when its process dies): node 1 sees its
     lease end, takes its SMS over (a note to its dispatcher) and its claims
     are granted */
  pgn_stop(PG(e.st[0].store));
  run_ms(&e, 1, 5500);
  ASSERT_EQ(sql_int(&e, "SELECT COUNT(*) FROM messages WHERE claimed_by="
                        "(SELECT MAX(id) FROM nodes)"), 5);
  claim_call(&b2, 1, 5, 60000, 0);
  submit_call(&e, 1, &b2);
  ASSERT_EQ(wait_store(&e, 1, 2), 0);
  for (int i = 0; i < 5; i++) ASSERT_EQ(b2.granted[i], 1);
  env_close(&e);
}

/* The rows a node's writer adds are that node's from the start: no other
   node's claim takes them while it lives. */
static int add_rows(struct store *s, struct call *c) {
  (void)c;
  return pg_cmd(&PG(s)->w,
                "INSERT INTO messages(id,public_id,account_id,to_number,body,class,encoding,"
                "segments,status,created_at,expires_at,updated_at,due_at) VALUES"
                " (7,'m7',1,'1','x','service','gsm7',1,'queued',1,2,1,1)", NULL);
}

KK_TEST(store_pg_rows_a_node_writes_are_its_own) {
  struct env e;
  env_open(&e, 2);
  static struct call w, b;
  memset(&w, 0, sizeof w);
  w.fn = add_rows;
  submit_call(&e, 0, &w);
  ASSERT_EQ(wait_store(&e, 0, 1), 0);
  ASSERT_EQ(sql_int(&e, "SELECT COUNT(*) FROM messages WHERE claimed_by=(SELECT MIN(id)"
                        " FROM nodes) AND wait_claimed_by=claimed_by"), 1);
  claim_call(&b, 7, 7, 60000, 0);
  submit_call(&e, 1, &b);
  ASSERT_EQ(wait_store(&e, 1, 1), 0);
  ASSERT_EQ(b.granted[0], 0);
  env_close(&e);
}

/* Every kind of due work can be claimed: SMS sends and step deadlines on
   messages (each with its own lease), channel attempts, callbacks. */
static int claim_kinds(struct store *s, struct call *c) {
  static const enum store_claim_kind kinds[] = {STORE_CLAIM_SMS, STORE_CLAIM_WAIT,
                                                STORE_CLAIM_CHANNEL, STORE_CLAIM_OUTBOX};
  for (int k = 0; k < 4; k++) {
    int rc = s->be->claim(s, kinds[k], c->ids, 1, c->lease_ms, c->granted + k);
    if (rc != 0) return rc;
  }
  return 0;
}

KK_TEST(store_pg_claims_every_kind_of_due_work) {
  struct env e;
  env_open(&e, 2);
  add_due_messages(&e, 1);
  sql_do(&e, "INSERT INTO attempts(id,message_id,channel,status,created_at,due_at)"
             " VALUES (1,1,'vk','queued',1,1)");
  sql_do(&e, "INSERT INTO outbox(id,account_id,message_id,url,payload,due_at)"
             " VALUES (1,1,1,'http://x','',1)");
  static struct call a, b;
  a.fn = b.fn = claim_kinds;
  a.ids[0] = b.ids[0] = 1;
  a.n = b.n = 1;
  a.lease_ms = b.lease_ms = 60000;
  submit_call(&e, 0, &a);
  ASSERT_EQ(wait_store(&e, 0, 1), 0);
  submit_call(&e, 1, &b);
  ASSERT_EQ(wait_store(&e, 1, 1), 0);
  for (int k = 0; k < 4; k++) {
    ASSERT_EQ(a.granted[k], 1);
    ASSERT_EQ(b.granted[k], 0);
  }
  ASSERT_EQ(sql_int(&e, "SELECT COUNT(*) FROM messages WHERE claimed_by IS NOT NULL"
                        " AND wait_claimed_by=claimed_by"), 1);
  ASSERT_EQ(sql_int(&e, "SELECT COUNT(*) FROM attempts WHERE claimed_by IS NOT NULL"), 1);
  ASSERT_EQ(sql_int(&e, "SELECT COUNT(*) FROM outbox WHERE claimed_by IS NOT NULL"), 1);
  env_close(&e);
}

/* ---- savepoints ------------------------------------------------------------ */

/* Writes a route, then a key whose hash is taken: the operation fails after
   half its work. */
static int half_then_fail(struct store *s, struct call *c) {
  (void)c;
  struct store_route_data *d = calloc(1, sizeof *d);
  d->name = strdup("half");
  d->config = strdup("{}");
  struct store_op op = {.data = d};
  int rc = s->be->exec[STORE_OP_ROUTE_PUT](s, &op);
  free(d->name);
  free(d->config);
  free(d);
  if (rc != 0) return rc;
  struct store_key_data k = {.account_id = 1};
  memset(k.hash, 0x42, 32);
  snprintf(k.prefix, sizeof k.prefix, "kk_dup");
  op.data = &k;
  return s->be->exec[STORE_OP_KEY_ADD](s, &op);
}

/* The route notes the commits handed out, in order ("name,name,"). */
static void on_notes(void *ud, const struct store_note *notes, int n) {
  char *seen = ud;
  for (int i = 0; i < n; i++)
    if (notes[i].kind == STORE_NOTE_ROUTE && strlen(seen) + 80 < 256) {
      strcat(seen, notes[i].cfg->name);
      strcat(seen, ",");
    }
}

KK_TEST(store_pg_savepoint_rollback_leaves_nothing_half_written) {
  struct env e;
  env_open(&e, 1);
  struct store *s = e.st[0].store;
  struct tmp_store *t = &e.st[0];
  static char routes_noted[256];
  ASSERT_EQ(store_subscribe(s, on_notes, routes_noted), 0);
  struct store_account a = {0};
  snprintf(a.name, sizeof a.name, "A");
  store_account_create(s, &a, tmp_store_done, t);
  ASSERT_EQ(wait_store(&e, 0, 1), 0);
  uint8_t h[32];
  memset(h, 0x42, 32);
  store_key_add(s, a.id, h, "kk_one", tmp_store_done, t);
  ASSERT_EQ(wait_store(&e, 0, 2), 0);
  /* queued together, so that they share a transaction */
  static struct call c = {.fn = half_then_fail};
  store_route_put(s, "before", "{}", tmp_store_done, t);
  submit_call(&e, 0, &c);
  store_route_put(s, "after", "{}", tmp_store_done, t);
  ASSERT_EQ(wait_store(&e, 0, 5), KK_EEXIST);
  struct rows r = {0};
  ASSERT_EQ(store_routes_each(s, on_route, &r), 0);
  ASSERT_EQ(r.n, 2);
  ASSERT_STR_EQ(r.text[0], "after={}");
  ASSERT_STR_EQ(r.text[1], "before={}");
  ASSERT_EQ(sql_int(&e, "SELECT COUNT(*) FROM api_keys"), 1);
  /* nor a note of what was undone */
  ASSERT_STR_EQ(routes_noted, "before,after,");
  env_close(&e);
}

/* ---- a lost connection --------------------------------------------------------- */

/* Writes a route, then ends the writer's own server process from another
   connection, inside the batch: its commit cannot happen. */
static int kill_writer(struct store *s, struct call *c) {
  struct store_route_data *d = calloc(1, sizeof *d);
  d->name = strdup("lost");
  d->config = strdup("{}");
  struct store_op op = {.data = d};
  int rc = s->be->exec[STORE_OP_ROUTE_PUT](s, &op);
  free(d->name);
  free(d->config);
  free(d);
  if (rc != 0) return rc;
  char sql[96];
  snprintf(sql, sizeof sql, "SELECT pg_terminate_backend(%d, 5000)", PQbackendPID(PG(s)->w.db));
  PGresult *r = tmp_pg_exec(c->killer, sql);
  PQclear(r);
  return 0;
}

KK_TEST(store_pg_lost_connection_is_a_fault_and_reconnects) {
  struct env e;
  env_open(&e, 1);
  struct store *s = e.st[0].store;
  struct tmp_store *t = &e.st[0];
  kk_log_level = KK_LOG_ERROR + 1;
  static struct call c = {.fn = kill_writer};
  c.killer = e.sql;
  submit_call(&e, 0, &c);
  ASSERT_EQ(wait_store(&e, 0, 1), KK_ESTORE);   /* its batch failed */
  struct store_stats st;
  store_get_stats(s, &st);
  ASSERT(st.errors_io >= 1);
  ASSERT_EQ(st.degraded, 1);
  /* the next write connects again and succeeds */
  t->rc = 0;
  store_route_put(s, "kept", "{}", tmp_store_done, t);
  ASSERT_EQ(wait_store(&e, 0, 2), 0);
  ASSERT_EQ(store_degraded(s), 0);
  /* the loop's connection too: a read after it was lost is answered */
  char sql[96];
  snprintf(sql, sizeof sql, "SELECT pg_terminate_backend(%d, 5000)", PQbackendPID(PG(s)->r.db));
  PQclear(tmp_pg_exec(e.sql, sql));
  struct rows r = {0};
  ASSERT_EQ(store_routes_each(s, on_route, &r), 0);
  ASSERT_EQ(r.n, 1);
  ASSERT_STR_EQ(r.text[0], "kept={}");
  env_close(&e);
}

/* ---- the table ------------------------------------------------------------- */

/* The PostgreSQL backend carries out every write of the API (as the
   SQLite one: test_store.c) and answers the configuration's reads; the
   other reads are still SQLite's only, and the daemon does not open a
   PostgreSQL store yet. */
/* (Not named store_pg_*: it needs no server, and the PostgreSQL step of the
   test run selects those by name.) */
/* The PostgreSQL backend carries out every write and answers every read. */
KK_TEST(store_backend_pg_has_every_write_and_read) {
  const struct store_backend *be = &store_pg_backend;
  for (int k = 0; k < STORE_OP_COUNT; k++) ASSERT(be->exec[k] != NULL);
  static const enum store_op_kind cascade_kinds[] = {
#define XX(kind) STORE_OP_##kind,
      STORE_OP_LIST_CASCADE(XX)
#undef XX
  };
  for (size_t i = 0; i < sizeof cascade_kinds / sizeof *cascade_kinds; i++)
    ASSERT(be->exec[cascade_kinds[i]] != NULL);
  ASSERT(be->read.keys_each && be->read.keys_rows && be->read.accounts_suspended);
  ASSERT(be->read.routes_each && be->read.channels_each && be->read.prices_each);
  ASSERT(be->read.accounts_each && be->read.cascades_all);
  /* every read of messages and of due work */
  ASSERT(be->read.msg_get && be->read.msg_list);
  ASSERT(be->read.reply_list && be->read.sms_due && be->read.chan_due);
  ASSERT(be->read.wait_due && be->read.wait_next && be->read.wa_last_inbound);
  ASSERT(be->read.outbox_accounts && be->read.outbox_due);
  ASSERT(be->new_id != NULL && be->claim != NULL);
  ASSERT(be->before_commit != NULL && be->undone != NULL && be->publish != NULL);
}

KK_TEST(store_pg_formats_integers_as_the_server_reads_them) {
  /* no server needed: the text of a parameter or of an array element */
  const int64_t v[] = {0, 7, -7, 10, 1234567890123LL, INT64_MAX, INT64_MIN};
  const char *const want[] = {"0", "7", "-7", "10", "1234567890123", "9223372036854775807",
                              "-9223372036854775808"};
  for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
    char out[PG_INT_CHARS];
    ASSERT_EQ(pg_fmt_int(out, v[i]), (int)strlen(want[i]));
    ASSERT_STR_EQ(out, want[i]);
  }
}
