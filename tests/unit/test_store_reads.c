/*
 * test_store_reads.c - the reads that run on the store's pool threads and
 * answer on the loop (store_msg_get_async, store_reply_list_async,
 * store_keys_list_async): they answer what the loop's own connection or
 * the database reads, many may be in flight at once, and store_close()
 * answers those still in flight before the store goes.
 */
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "core/kk_err.h"
#include "core/kk_log.h"
#include "store/store.h"
#include "kk_test.h"
#include "lib/tmp_store.h"

static void env_open(struct tmp_store *e) {
  kk_log_level = KK_LOG_ERROR;
  ASSERT_EQ(tmp_store_open(e, "reads", NULL), 0);
}

static void env_close(struct tmp_store *e) { ASSERT_EQ(tmp_store_close(e), 0); }

static void wait_done(struct tmp_store *e, int want) { ASSERT_EQ(tmp_store_wait(e, want, 10000), 0); }

static void put_msg(struct tmp_store *e, int64_t account_id, const char *public_id,
                    const char *to, struct store_msg_new *out) {
  int64_t now = store_now_ms();
  struct store_msg_new m = {
      .account_id = account_id, .public_id = public_id, .to = to, .text = "hi",
      .msg_class = "service", .encoding = "gsm7", .segments = 1, .route = "r1",
      .campaign = "c1", .created_at = now, .expires_at = now + 3600000,
  };
  int want = e->ndone + 1;
  store_msg_insert(e->store, &m, 1, tmp_store_done, e);
  wait_done(e, want);
  ASSERT_EQ(m.rc, 0);
  *out = m;
}

/* Reports m's SMS submitted and delivered. */
static void deliver(struct tmp_store *e, const struct store_msg_new *m, const char *pid) {
  struct store_sms_update u = {.msg_id = m->id, .attempt_id = m->attempt_id, .part = 1,
                               .nparts = 1, .route = "r1", .provider_id = pid,
                               .at = store_now_ms()};
  int want = e->ndone + 1;
  store_sms_submitted(e->store, &u, tmp_store_done, e);
  struct store_receipt r = {.route = "r1", .ids = {pid, NULL}, .state = "delivered",
                            .at = store_now_ms()};
  store_receipt_apply(e->store, &r, tmp_store_done, e);
  wait_done(e, want + 1);
}

KK_TEST(store_msg_get_async_answers_as_the_loop_reads) {
  struct tmp_store e;
  env_open(&e);
  int want = e.ndone + 1;
  store_price_put(e.store, 0, "sms", 23500, tmp_store_done, &e);
  wait_done(&e, want);
  struct store_msg_new m1, m2;
  put_msg(&e, 1, "msg_r1", "79161234567", &m1);
  put_msg(&e, 1, "msg_r2", "79161234568", &m2);
  deliver(&e, &m1, "p1");

  /* The listing on the loop's connection reads the same row. */
  struct store_msg_filter f = {.limit = 10};
  struct store_msg_view rows[10];
  int n = 0;
  int64_t next = 0;
  ASSERT_EQ(store_msg_list(e.store, 1, &f, rows, &n, &next), 0);
  ASSERT_EQ(n, 2);
  const struct store_msg_view *l = strcmp(rows[0].public_id, "msg_r1") == 0 ? &rows[0] : &rows[1];

  struct store_msg_view v;
  ASSERT_EQ(tmp_store_msg_get(&e, 1, "msg_r1", &v), 0);
  ASSERT_STR_EQ(v.public_id, l->public_id);
  ASSERT_STR_EQ(v.to, l->to);
  ASSERT_STR_EQ(v.status, l->status);
  ASSERT_STR_EQ(v.status, "delivered");
  ASSERT_STR_EQ(v.channel, l->channel);
  ASSERT_STR_EQ(v.campaign, l->campaign);
  ASSERT_EQ(v.cost, l->cost);
  ASSERT_EQ(v.cost, 23500);
  ASSERT_EQ(v.created_at, l->created_at);
  ASSERT_EQ(v.updated_at, l->updated_at);
  ASSERT_EQ(v.done, l->done);
  ASSERT_EQ(v.nattempts, 1);
  ASSERT_STR_EQ(v.attempts[0].channel, "sms");
  ASSERT_STR_EQ(v.attempts[0].status, "delivered");
  ASSERT_STR_EQ(v.attempts[0].provider_id, "p1");
  ASSERT(v.text == NULL);

  /* Another account's, an unknown one, an id too long to be one. */
  ASSERT_EQ(tmp_store_msg_get(&e, 2, "msg_r1", &v), KK_ENOENT);
  ASSERT_EQ(tmp_store_msg_get(&e, 1, "msg_nope", &v), KK_ENOENT);
  char longid[200];
  memset(longid, 'x', sizeof longid - 1);
  longid[sizeof longid - 1] = '\0';
  ASSERT_EQ(tmp_store_msg_get(&e, 1, longid, &v), KK_ENOENT);
  env_close(&e);
}

/* Inbound ids of account_id, newest first, read with a connection of the
   test's own. */
static int inbound_ids(const struct tmp_store *e, int64_t account_id, int64_t *ids, int max) {
  char path[128];
  snprintf(path, sizeof path, "%s/kaskad.db", e->dir);
  sqlite3 *db = NULL;
  ASSERT_EQ(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
  sqlite3_stmt *st = NULL;
  ASSERT_EQ(sqlite3_prepare_v2(db, "SELECT id FROM inbound WHERE account_id=? ORDER BY id DESC",
                               -1, &st, NULL),
            SQLITE_OK);
  sqlite3_bind_int64(st, 1, account_id);
  int n = 0;
  while (n < max && sqlite3_step(st) == SQLITE_ROW) ids[n++] = sqlite3_column_int64(st, 0);
  sqlite3_finalize(st);
  sqlite3_close(db);
  return n;
}

KK_TEST(store_reply_list_async_pages_newest_first) {
  struct tmp_store e;
  env_open(&e);
  struct store_msg_new m;
  put_msg(&e, 1, "msg_q", "79161234567", &m);
  int want = e.ndone;
  for (int i = 0; i < 5; i++) {
    char text[32];
    snprintf(text, sizeof text, "reply %d", i);
    store_mo_add(e.store, "r1", "79161234567", "kaskad", text, store_now_ms(), tmp_store_done,
                 &e);
  }
  /* Someone no message went to: the operator's, listed to no account. */
  store_mo_add(e.store, "r1", "79990000000", "kaskad", "stray", store_now_ms(), tmp_store_done,
               &e);
  wait_done(&e, want + 6);
  int64_t ids[8];
  ASSERT_EQ(inbound_ids(&e, 1, ids, 8), 5);

  struct store_reply_filter f = {.limit = 3};
  struct store_reply_view rows[3];
  int n = 0;
  int64_t next = 0;
  ASSERT_EQ(tmp_store_reply_list(&e, 1, &f, rows, &n, &next), 0);
  ASSERT_EQ(n, 3);
  for (int i = 0; i < n; i++) {
    ASSERT_EQ(rows[i].id, ids[i]);
    ASSERT_STR_EQ(rows[i].channel, "sms");
    ASSERT_STR_EQ(rows[i].in_reply_to, "msg_q");
    char text[32];
    snprintf(text, sizeof text, "reply %d", 4 - i);
    ASSERT_STR_EQ(rows[i].text, text);
    free(rows[i].text);
  }
  ASSERT_EQ(next, ids[2]);
  f.before_id = next;
  ASSERT_EQ(tmp_store_reply_list(&e, 1, &f, rows, &n, &next), 0);
  ASSERT_EQ(n, 2);
  ASSERT_EQ(rows[0].id, ids[3]);
  ASSERT_EQ(rows[1].id, ids[4]);
  ASSERT_EQ(next, 0);
  for (int i = 0; i < n; i++) free(rows[i].text);
  /* Filters: from, channel. */
  struct store_reply_filter g = {.limit = 10, .from = "79990000000"};
  ASSERT_EQ(tmp_store_reply_list(&e, 1, &g, rows, &n, &next), 0);
  ASSERT_EQ(n, 0);
  struct store_reply_filter h = {.limit = 3, .channel = "whatsapp"};
  ASSERT_EQ(tmp_store_reply_list(&e, 1, &h, rows, &n, &next), 0);
  ASSERT_EQ(n, 0);
  env_close(&e);
}

struct keys_seen {
  int n;
  char prefix[4][16];
  int revoked[4];
};

static void on_key(void *arg, const char *prefix, int64_t created_at, int64_t revoked_at) {
  struct keys_seen *k = arg;
  ASSERT(created_at > 0);
  if (k->n < 4) {
    snprintf(k->prefix[k->n], sizeof k->prefix[k->n], "%s", prefix);
    k->revoked[k->n] = revoked_at != 0;
  }
  k->n++;
}

KK_TEST(store_keys_list_async_lists_active_and_revoked) {
  struct tmp_store e;
  env_open(&e);
  uint8_t h1[32] = {1}, h2[32] = {2}, h3[32] = {3};
  int want = e.ndone;
  store_key_add(e.store, 1, h1, "kk_aaaa", tmp_store_done, &e);
  store_key_add(e.store, 1, h2, "kk_bbbb", tmp_store_done, &e);
  store_key_add(e.store, 2, h3, "kk_cccc", tmp_store_done, &e);
  wait_done(&e, want + 3);
  struct store_key_revoke r = {.prefix = "kk_aaaa", .account_id = 1};
  store_key_revoke(e.store, &r, tmp_store_done, &e);
  wait_done(&e, want + 4);

  struct keys_seen k = {0};
  ASSERT_EQ(tmp_store_keys_list(&e, 1, on_key, &k), 0);
  ASSERT_EQ(k.n, 2);
  ASSERT_STR_EQ(k.prefix[0], "kk_aaaa");
  ASSERT_EQ(k.revoked[0], 1);
  ASSERT_STR_EQ(k.prefix[1], "kk_bbbb");
  ASSERT_EQ(k.revoked[1], 0);
  struct keys_seen none = {0};
  ASSERT_EQ(tmp_store_keys_list(&e, 7, on_key, &none), 0);
  ASSERT_EQ(none.n, 0);
  env_close(&e);
}

/* Many gets at once, each with its own answer. */
#define NREADS 200
struct get_slot {
  struct store_msg_view v;
  int done, rc;
};

static void on_get(void *arg, int rc) {
  struct get_slot *g = arg;
  g->done++;
  g->rc = rc;
}

static int count_done(const struct get_slot *g, int n) {
  int k = 0;
  for (int i = 0; i < n; i++) k += g[i].done;
  return k;
}

KK_TEST(store_async_reads_many_in_flight) {
  struct tmp_store e;
  env_open(&e);
  struct store_msg_new m[4];
  const char *names[4] = {"msg_m0", "msg_m1", "msg_m2", "msg_m3"};
  for (int i = 0; i < 4; i++) put_msg(&e, 1, names[i], "79161234567", &m[i]);
  struct get_slot *g = calloc(NREADS, sizeof *g);
  ASSERT(g != NULL);
  for (int i = 0; i < NREADS; i++)
    store_msg_get_async(e.store, i % 5 == 4 ? 2 : 1, names[i % 4], &g[i].v, on_get, &g[i]);
  ASSERT(store_pending(e.store) >= 1);
  int n = 0;
  for (int tries = 0; tries < 2000 && (n = count_done(g, NREADS)) < NREADS; tries++)
    uv_run(&e.loop, UV_RUN_ONCE);
  ASSERT_EQ(n, NREADS);
  ASSERT_EQ(store_pending(e.store), 0);
  for (int i = 0; i < NREADS; i++) {
    ASSERT_EQ(g[i].done, 1);
    if (i % 5 == 4) {
      ASSERT_EQ(g[i].rc, KK_ENOENT);   /* another account's */
    } else {
      ASSERT_EQ(g[i].rc, 0);
      ASSERT_STR_EQ(g[i].v.public_id, names[i % 4]);
      ASSERT_EQ(g[i].v.nattempts, 1);
    }
  }
  free(g);
  env_close(&e);
}

KK_TEST(store_close_answers_reads_in_flight) {
  struct tmp_store e;
  env_open(&e);
  struct store_msg_new m;
  put_msg(&e, 1, "msg_x", "79161234567", &m);
  struct get_slot *g = calloc(40, sizeof *g);
  ASSERT(g != NULL);
  for (int i = 0; i < 40; i++) store_msg_get_async(e.store, 1, "msg_x", &g[i].v, on_get, &g[i]);
  /* Closed at once, the loop never run: each read is still answered, once,
     before store_close returns. */
  store_close(e.store);
  e.store = NULL;
  for (int i = 0; i < 40; i++) {
    ASSERT_EQ(g[i].done, 1);
    ASSERT_EQ(g[i].rc, 0);
    ASSERT_STR_EQ(g[i].v.public_id, "msg_x");
  }
  free(g);
  env_close(&e);
}
