/*
 * test_store_claims.c - due work handed out by claims (store_sms_claim,
 * store_outbox_claim) on a real SQLite store: SQLite grants every due row;
 * with a backend whose claims hold for their lease (SQLite's table with a
 * claim() that remembers leases, as a backend with several writers would),
 * a row is not handed out twice while its lease holds and is again after
 * it; a finished row is not handed out at all.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <uv.h>

#include "core/kk_err.h"
#include "core/kk_log.h"
#include "store/store.h"
#include "store/store_int.h"
#include "kk_test.h"
#include "lib/tmp_store.h"

static void env_open(struct tmp_store *e) {
  kk_log_level = KK_LOG_ERROR;
  ASSERT_EQ(tmp_store_open(e, "claims", NULL), 0);
}

static void env_close(struct tmp_store *e) { ASSERT_EQ(tmp_store_close(e), 0); }

static void wait_done(struct tmp_store *e, int want) { ASSERT_EQ(tmp_store_wait(e, want, 10000), 0); }

/* ---- a backend whose claims hold for their lease --------------------------- */

static struct lease {
  enum store_claim_kind kind;
  int64_t id;
  double until;             /* monotonic ms */
} leases[64];
static int nleases;

static double mono_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6;
}

static int lease_claim(struct store *s, enum store_claim_kind kind, const int64_t *ids, int n,
                       int64_t lease_ms, unsigned char *granted) {
  (void)s;
  double now = mono_ms();
  for (int i = 0; i < n; i++) {
    struct lease *l = NULL;
    for (int k = 0; k < nleases; k++)
      if (leases[k].kind == kind && leases[k].id == ids[i]) l = &leases[k];
    if (l && l->until > now) {
      granted[i] = 0;       /* another writer holds it */
      continue;
    }
    if (l == NULL) {
      ASSERT(nleases < 64);
      l = &leases[nleases++];
      l->kind = kind;
      l->id = ids[i];
    }
    l->until = now + (double)lease_ms;
    granted[i] = 1;
  }
  return 0;
}

static struct store_backend lease_be;

/* Reopens e's store with SQLite's table and lease_claim. */
static void env_leases(struct tmp_store *e) {
  lease_be = store_sqlite_backend;
  lease_be.claim = lease_claim;
  nleases = 0;
  tmp_store_db_close(e);
  struct store_opts o = {.dir = e->dir};
  ASSERT_EQ(store_open_with(&e->loop, &o, &lease_be, &e->store), 0);
}

/* ---- rows ------------------------------------------------------------------- */

/* A message whose one step is SMS (due now); with a callback_url when url. */
static void put_msg(struct tmp_store *e, const char *public_id, const char *url,
                    struct store_msg_new *out) {
  int64_t now = store_now_ms();
  struct store_msg_new m = {
      .account_id = 1, .public_id = public_id, .to = "79161234567", .text = "hi",
      .msg_class = "service", .encoding = "gsm7", .segments = 1, .route = "r1",
      .callback_url = url, .created_at = now, .expires_at = now + 3600000,
  };
  int want = e->ndone + 1;
  store_msg_insert(e->store, &m, 1, tmp_store_done, e);
  wait_done(e, want);
  ASSERT_EQ(m.rc, 0);
  *out = m;
}

/* Claims due SMS after *cursor (10 at most); returns how many it got, their
   ids in ids. */
static int claim_sms(struct tmp_store *e, int64_t *cursor, int64_t lease_ms, int64_t *ids) {
  struct store_due rows[10];
  int n = 0, more = 0;
  ASSERT_EQ(store_sms_claim(e->store, cursor, lease_ms, rows, 10, &n, &more), 0);
  ASSERT_EQ(more, 0);
  for (int i = 0; i < n; i++) {
    ids[i] = rows[i].id;
    free(rows[i].text);
  }
  return n;
}

static void sms_update(struct tmp_store *e, const struct store_msg_new *m, int failed) {
  struct store_sms_update u = {
      .msg_id = m->id, .attempt_id = m->attempt_id, .part = 1, .nparts = 1,
      .route = "r1", .provider_id = "p1", .error = "refused", .at = store_now_ms(),
  };
  int want = e->ndone + 1;
  if (failed)
    store_sms_failed(e->store, &u, tmp_store_done, e);
  else
    store_sms_submitted(e->store, &u, tmp_store_done, e);
  wait_done(e, want);
}

KK_TEST(store_sms_claim_grants_every_due_row_on_sqlite) {
  struct tmp_store e;
  env_open(&e);
  struct store_msg_new m[3];
  put_msg(&e, "msg_a", NULL, &m[0]);
  put_msg(&e, "msg_b", NULL, &m[1]);
  put_msg(&e, "msg_c", NULL, &m[2]);
  int64_t cursor = 0, ids[10];
  ASSERT_EQ(claim_sms(&e, &cursor, 60000, ids), 3);
  for (int i = 0; i < 3; i++) ASSERT_EQ(ids[i], m[i].id);
  ASSERT_EQ(cursor, m[2].id);
  /* Past the cursor: nothing more. */
  ASSERT_EQ(claim_sms(&e, &cursor, 60000, ids), 0);
  ASSERT_EQ(cursor, m[2].id);
  /* One writer: claimed again from the start, every row is granted again. */
  cursor = 0;
  ASSERT_EQ(claim_sms(&e, &cursor, 60000, ids), 3);

  /* max rows examined: more says so, and the cursor goes on from there. */
  struct store_due rows[2];
  int n = 0, more = 0;
  cursor = 0;
  ASSERT_EQ(store_sms_claim(e.store, &cursor, 60000, rows, 2, &n, &more), 0);
  ASSERT_EQ(n, 2);
  ASSERT_EQ(more, 1);
  ASSERT_EQ(cursor, m[1].id);
  for (int i = 0; i < n; i++) free(rows[i].text);
  env_close(&e);
}

KK_TEST(store_sms_claim_holds_a_row_while_its_lease_holds) {
  struct tmp_store e;
  env_open(&e);
  env_leases(&e);
  struct store_msg_new m[2];
  put_msg(&e, "msg_a", NULL, &m[0]);
  put_msg(&e, "msg_b", NULL, &m[1]);
  int64_t cursor = 0, ids[10];
  ASSERT_EQ(claim_sms(&e, &cursor, 200, ids), 2);
  /* Another scan from the start while the leases hold: none is handed out,
     and its cursor still moves past them (they are the holder's to send). */
  cursor = 0;
  ASSERT_EQ(claim_sms(&e, &cursor, 200, ids), 0);
  ASSERT_EQ(cursor, m[1].id);
  /* A new row is the scan's; the held ones are not. */
  struct store_msg_new m3;
  put_msg(&e, "msg_c", NULL, &m3);
  cursor = 0;
  ASSERT_EQ(claim_sms(&e, &cursor, 200, ids), 1);
  ASSERT_EQ(ids[0], m3.id);
  /* The leases end with nothing finished: the rows can be claimed again. */
  struct timespec ts = {0, 250 * 1000 * 1000};
  nanosleep(&ts, NULL);
  cursor = 0;
  ASSERT_EQ(claim_sms(&e, &cursor, 200, ids), 3);
  env_close(&e);
}

KK_TEST(store_sms_claim_skips_finished_rows) {
  struct tmp_store e;
  env_open(&e);
  struct store_msg_new m[3];
  put_msg(&e, "msg_a", NULL, &m[0]);
  put_msg(&e, "msg_b", NULL, &m[1]);
  put_msg(&e, "msg_c", NULL, &m[2]);
  sms_update(&e, &m[0], 1);   /* failed: the cascade ends */
  sms_update(&e, &m[2], 0);   /* submitted, all its parts: sent, no longer due */
  int64_t cursor = 0, ids[10];
  ASSERT_EQ(claim_sms(&e, &cursor, 60000, ids), 1);
  ASSERT_EQ(ids[0], m[1].id);
  env_close(&e);
}

/* ---- the outbox ------------------------------------------------------------- */

struct taken {
  int want;                 /* what want() answers */
  int n;
  int64_t ids[16], accounts[16];
  int wants;                /* calls of want() */
};

static int want_rows(void *arg, int64_t account_id) {
  struct taken *t = arg;
  (void)account_id;
  t->wants++;
  return t->want;
}

static void take_rows(void *arg, int64_t account_id, struct store_outbox *rows, int n) {
  struct taken *t = arg;
  for (int i = 0; i < n; i++) {
    ASSERT(t->n < 16);
    t->accounts[t->n] = account_id;
    t->ids[t->n++] = rows[i].id;
    free(rows[i].url);
    free(rows[i].payload);
  }
}

/* Claims what is due now, round robin from after; returns rows taken. */
static int claim_outbox(struct tmp_store *e, int64_t after, int64_t lease_ms, struct taken *t) {
  struct store_outbox rows[16];
  t->n = 0;
  struct store_outbox_claim c = {
      .now = store_now_ms() + 1, .after = after, .lease_ms = lease_ms, .accounts_max = 8,
      .rows = rows, .cap = 16, .want = want_rows, .take = take_rows, .arg = t,
  };
  ASSERT_EQ(store_outbox_claim(e->store, &c), 0);
  return t->n;
}

/* Two messages with a callback URL, submitted: an outbox row each. */
static void put_callbacks(struct tmp_store *e, struct store_msg_new *m) {
  put_msg(e, "msg_cb_a", "http://127.0.0.1:9/cb", &m[0]);
  put_msg(e, "msg_cb_b", "http://127.0.0.1:9/cb", &m[1]);
  sms_update(e, &m[0], 0);
  sms_update(e, &m[1], 0);
}

KK_TEST(store_outbox_claim_grants_every_due_row_on_sqlite) {
  struct tmp_store e;
  env_open(&e);
  struct store_msg_new m[2];
  put_callbacks(&e, m);
  struct taken t = {.want = 10};
  ASSERT_EQ(claim_outbox(&e, 0, 60000, &t), 2);
  ASSERT_EQ(t.accounts[0], 1);
  ASSERT_EQ(t.wants, 1);
  int64_t a = t.ids[0], b = t.ids[1];
  ASSERT(a != b);
  /* One writer: the same rows again (the deliverer's in-flight set keeps
     it from sending one twice). */
  ASSERT_EQ(claim_outbox(&e, 0, 60000, &t), 2);
  /* want 0: the account is passed over, nothing read. */
  t.want = 0;
  ASSERT_EQ(claim_outbox(&e, 0, 60000, &t), 0);

  /* A delivered callback's row is finished: not handed out again. */
  int want = e.ndone + 1;
  store_outbox_result(e.store, a, 1, 0, NULL, tmp_store_done, &e);
  wait_done(&e, want);
  t.want = 10;
  ASSERT_EQ(claim_outbox(&e, 0, 60000, &t), 1);
  ASSERT_EQ(t.ids[0], b);
  want = e.ndone + 1;
  store_outbox_result(e.store, b, 1, 0, NULL, tmp_store_done, &e);
  wait_done(&e, want);
  ASSERT_EQ(claim_outbox(&e, 0, 60000, &t), 0);
  env_close(&e);
}

KK_TEST(store_outbox_claim_holds_a_row_while_its_lease_holds) {
  struct tmp_store e;
  env_open(&e);
  env_leases(&e);
  struct store_msg_new m[2];
  put_callbacks(&e, m);
  struct taken t = {.want = 1};
  /* One row now: the other stays unclaimed. */
  ASSERT_EQ(claim_outbox(&e, 0, 200, &t), 1);
  int64_t first = t.ids[0];
  t.want = 10;
  ASSERT_EQ(claim_outbox(&e, 0, 200, &t), 1);
  ASSERT(t.ids[0] != first);
  /* Both held now. */
  ASSERT_EQ(claim_outbox(&e, 0, 200, &t), 0);
  struct timespec ts = {0, 250 * 1000 * 1000};
  nanosleep(&ts, NULL);
  ASSERT_EQ(claim_outbox(&e, 0, 200, &t), 2);
  env_close(&e);
}
