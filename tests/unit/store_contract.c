/*
 * store_contract.c - the store's contract for messages, SMS, callbacks,
 * channels and cascades, run on each backend (store_contract.h).
 */
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/kk_err.h"
#include "core/kk_log.h"
#include "core/kk_status.h"
#include "kk_test.h"
#include "store/store.h"
#include "store_contract.h"

/* ---- environments ------------------------------------------------------------- */

static int64_t sq_num(struct sc_env *e, const char *sql) {
  char path[128];
  snprintf(path, sizeof path, "%s/kaskad.db", e->t->dir);
  sqlite3 *db = NULL;
  ASSERT_EQ(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
  sqlite3_stmt *st = NULL;
  if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
    fprintf(stderr, "%s: %s\n", sql, sqlite3_errmsg(db));
  ASSERT(st != NULL);
  ASSERT_EQ(sqlite3_step(st), SQLITE_ROW);
  int64_t v = sqlite3_column_int64(st, 0);
  sqlite3_finalize(st);
  sqlite3_close(db);
  return v;
}

void sc_sqlite_open(struct sc_sq *q) {
  kk_log_level = KK_LOG_ERROR;
  memset(q, 0, sizeof *q);
  ASSERT_EQ(tmp_store_open(&q->st, "contract", NULL), 0);
  q->e = (struct sc_env){.t = &q->st, .num = sq_num};
}

void sc_sqlite_close(struct sc_sq *q) { ASSERT_EQ(tmp_store_close(&q->st), 0); }

static int64_t pg_num(struct sc_env *e, const char *sql) {
  PGresult *r = tmp_pg_exec(e->ctx, sql);
  ASSERT(r != NULL);
  ASSERT_EQ(PQntuples(r), 1);
  int64_t v = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
  PQclear(r);
  return v;
}

void sc_pg_open(struct sc_pg *p, int nstores) { sc_pg_open_writers(p, nstores, 1); }

void sc_pg_open_writers(struct sc_pg *p, int nstores, int writers) {
  kk_test_need_pg();
  kk_log_level = KK_LOG_ERROR;
  memset(p, 0, sizeof *p);
  ASSERT_EQ(tmp_pg_new(&p->db), 0);
  p->sql = tmp_pg_connect(&p->db);
  ASSERT(p->sql != NULL);
  for (int i = 0; i < nstores && i < 2; i++) {
    struct store_opts o = {.store_url = p->db.url, .writers = writers};
    ASSERT_EQ(tmp_store_open(&p->st[i], "pgc", &o), 0);
    p->e[i] = (struct sc_env){.t = &p->st[i], .num = pg_num, .ctx = p->sql};
    p->nst++;
  }
}

void sc_pg_close(struct sc_pg *p) {
  for (int i = 0; i < p->nst; i++) ASSERT_EQ(tmp_store_close(&p->st[i]), 0);
  PQfinish(p->sql);
  ASSERT_EQ(tmp_pg_drop(&p->db), 0);
}

#define VVS "vk/delivered/60000,viber/delivered/60000,sms/delivered/0"
#define VV_EXTRA "{\"vk_id\":\"11\",\"viber_id\":\"22\"}"
#define PHONE "79161234567"

/* ---- notes ----------------------------------------------------------------- */

#define SEEN_MAX 256
static struct seen {
  int sms_new, sms, chan, chan_rows, chan_end;
  int64_t chan_att[SEEN_MAX];       /* CHANNEL notes' attempts */
  int64_t sms_att[SEEN_MAX], sms_msg[SEEN_MAX];   /* SMS and SMS_NEW notes' rows */
} seen;

static void on_notes(void *ud, const struct store_note *notes, int n) {
  (void)ud;
  for (int i = 0; i < n; i++) {
    const struct store_note *t = &notes[i];
    if (t->kind == STORE_NOTE_SMS_NEW || t->kind == STORE_NOTE_SMS) {
      if (t->kind == STORE_NOTE_SMS_NEW) seen.sms_new++;
      else seen.sms++;
      int k = seen.sms_new + seen.sms - 1;
      if (t->due && k < SEEN_MAX) {
        seen.sms_att[k] = t->due->attempt_id;
        seen.sms_msg[k] = t->due->id;
        ASSERT_STR_EQ(t->due->text, "hello");
      }
    } else if (t->kind == STORE_NOTE_CHANNEL) {
      if (seen.chan < SEEN_MAX) seen.chan_att[seen.chan] = t->attempt_id;
      seen.chan++;
      if (t->chan) {
        seen.chan_rows++;
        ASSERT_EQ(t->chan->attempt_id, t->attempt_id);
        ASSERT_STR_EQ(t->chan->text, "hello");
      }
    } else if (t->kind == STORE_NOTE_CHANNEL_END) {
      seen.chan_end++;
    }
  }
}

static void watch(struct sc_env *e) {
  memset(&seen, 0, sizeof seen);
  ASSERT_EQ(store_subscribe(e->t->store, on_notes, NULL), 0);
}

static void unwatch(struct sc_env *e) { store_unsubscribe(e->t->store, on_notes, NULL); }

/* ---- helpers ------------------------------------------------------------------ */

/* Runs the operation `call` queues and waits for it: its rc. */
static int run_want;
static void run_begin(struct sc_env *e) {
  run_want = e->t->ndone + 1;
  e->t->rc = 0;
}
static int run_end(struct sc_env *e) {
  int rc = tmp_store_wait(e->t, run_want, 10000);
  e->t->rc = 0;
  return rc;
}
#define RUN_RC(e, call) (run_begin(e), (call), run_end(e))
#define RUN(e, call) ASSERT_EQ(RUN_RC(e, call), 0)

static int64_t numf(struct sc_env *e, const char *fmt, long long a) {
  char sql[512];
  snprintf(sql, sizeof sql, fmt, a);
  return e->num(e, sql);
}

static struct store_msg_new msg(const char *pid, const char *cascade, const char *extra,
                                int64_t at) {
  struct store_msg_new m = {
      .account_id = 1, .public_id = pid, .to = PHONE, .text = "hello",
      .msg_class = "service", .encoding = "gsm7", .segments = 1, .route = "r1",
      .cascade = cascade, .extra = extra, .created_at = at, .expires_at = at + 86400000,
  };
  return m;
}

static void put(struct sc_env *e, struct store_msg_new *m) {
  RUN(e, store_msg_insert(e->t->store, m, 1, tmp_store_done, e->t));
  ASSERT_EQ(m->rc, 0);
}

static void channels(struct sc_env *e) {
  RUN(e, store_channel_put(e->t->store, 0, "vk", "{}", tmp_store_done, e->t));
  RUN(e, store_channel_put(e->t->store, 0, "viber", "{}", tmp_store_done, e->t));
}

static void chan_result(struct sc_env *e, int64_t att, enum store_chan_outcome o,
                        const char *pid, int64_t at) {
  struct store_chan_result r = {.attempt_id = att, .outcome = o, .provider_id = pid,
                                .error = o == STORE_CHAN_FAILED ? "no" : NULL, .at = at,
                                .units = 1};
  RUN(e, store_chan_result(e->t->store, &r, tmp_store_done, e->t));
}

static int chan_status(struct sc_env *e, const char *channel, const char *pid,
                       const char *status, int64_t at) {
  struct store_chan_status st = {.channel = channel, .scope = 0, .provider_id = pid,
                                 .peer = "", .status = status, .error = "", .at = at};
  RUN(e, store_chan_status(e->t->store, &st, tmp_store_done, e->t));
  return st.matched;
}

static void submitted(struct sc_env *e, const struct store_msg_new *m, int64_t att,
                      const char *pid, int64_t at) {
  struct store_sms_update u = {.msg_id = m->id, .attempt_id = att, .part = 1, .nparts = 1,
                               .route = "r1", .provider_id = pid, .at = at};
  RUN(e, store_sms_submitted(e->t->store, &u, tmp_store_done, e->t));
}

static int receipt(struct sc_env *e, const char *id, const char *state, int64_t at) {
  struct store_receipt r = {.route = "r1", .ids = {id, NULL}, .state = state, .at = at};
  RUN(e, store_receipt_apply(e->t->store, &r, tmp_store_done, e->t));
  return r.matched;
}

static int64_t msg_is(struct sc_env *e, int64_t id, const char *status) {
  char sql[160];
  snprintf(sql, sizeof sql, "SELECT COUNT(*) FROM messages WHERE id=%lld AND status='%s'",
           (long long)id, status);
  return e->num(e, sql);
}

/* ---- the contract -------------------------------------------------------------- */

void sc_batch_insert_and_notes(struct sc_env *e, int n) {
  static struct store_msg_new m[SEEN_MAX];
  static char pid[SEEN_MAX][16];
  ASSERT(n <= SEEN_MAX);
  channels(e);
  watch(e);
  struct store_cascade_stats c0, c1;
  store_get_cascade_stats(e->t->store, &c0);
  int64_t now = store_now_ms() - 1000;
  for (int i = 0; i < n; i++) {
    snprintf(pid[i], sizeof pid[i], "b%d", i);
    m[i] = i % 2 ? msg(pid[i], VVS, VV_EXTRA, now) : msg(pid[i], NULL, NULL, now);
  }
  RUN(e, store_msg_insert(e->t->store, m, n, tmp_store_done, e->t));
  int sms = (n + 1) / 2, vk = n / 2;
  for (int i = 0; i < n; i++) {
    ASSERT_EQ(m[i].rc, 0);
    ASSERT(m[i].id > 0 && m[i].attempt_id > 0 && !m[i].duplicate);
    ASSERT_STR_EQ(m[i].first_channel, i % 2 ? "vk" : "sms");
    if (i > 0) ASSERT(m[i].id != m[i - 1].id);
  }
  /* every first step noted with its row */
  ASSERT_EQ(seen.sms_new, sms);
  ASSERT_EQ(seen.chan, vk);
  ASSERT_EQ(seen.chan_rows, vk);
  for (int i = 0; i < sms; i++) {
    ASSERT_EQ(seen.sms_msg[i], m[2 * i].id);
    ASSERT_EQ(seen.sms_att[i], m[2 * i].attempt_id);
  }
  for (int i = 0; i < vk; i++) ASSERT_EQ(seen.chan_att[i], m[2 * i + 1].attempt_id);
  ASSERT_EQ(e->num(e, "SELECT COUNT(*) FROM messages"), n);
  ASSERT_EQ(e->num(e, "SELECT COUNT(*) FROM attempts"), n);
  ASSERT_EQ(e->num(e, "SELECT COUNT(*) FROM messages WHERE due_at IS NOT NULL"), sms);
  ASSERT_EQ(numf(e, "SELECT COUNT(*) FROM attempts WHERE id=%lld AND due_at IS NOT NULL",
                 (long long)m[1 % n].attempt_id), n > 1);
  store_get_cascade_stats(e->t->store, &c1);
  ASSERT_EQ(c1.started[KK_CHAN_SMS] - c0.started[KK_CHAN_SMS], (uint64_t)sms);
  ASSERT_EQ(c1.started[KK_CHAN_VK] - c0.started[KK_CHAN_VK], (uint64_t)vk);
  unwatch(e);
}

void sc_cascade_vk_viber_sms(struct sc_env *e) {
  channels(e);
  watch(e);
  struct store_cascade_stats c0, c1;
  store_get_cascade_stats(e->t->store, &c0);
  int64_t now = store_now_ms() - 1000;
  struct store_msg_new m = msg("c1", VVS, VV_EXTRA, now);
  m.callback_url = "http://cb.example/x";
  put(e, &m);
  ASSERT_STR_EQ(m.first_channel, "vk");
  ASSERT_EQ(seen.chan, 1);
  /* VK fails: Viber starts, noted with its row; VK's row must not go */
  chan_result(e, m.attempt_id, STORE_CHAN_FAILED, NULL, now + 10);
  ASSERT_EQ(seen.chan, 2);
  ASSERT_EQ(seen.chan_rows, 2);
  ASSERT(seen.chan_end >= 1);
  int64_t viber = seen.chan_att[1];
  ASSERT(viber != m.attempt_id);
  ASSERT_EQ(numf(e, "SELECT COUNT(*) FROM attempts WHERE message_id=%lld", (long long)m.id), 2);
  /* Viber is sent, then its status says it failed: SMS starts */
  chan_result(e, viber, STORE_CHAN_SENT, "vb1", now + 20);
  ASSERT_EQ(chan_status(e, "viber", "vb1", "failed", now + 30), 1);
  ASSERT_EQ(seen.sms, 1);
  int64_t sms = seen.sms_att[0];
  ASSERT_EQ(seen.sms_msg[0], m.id);
  /* the SMS centre takes it, and its receipt says delivered */
  submitted(e, &m, sms, "ABC1", now + 40);
  ASSERT_EQ(receipt(e, "abc1", "delivered", now + 50), 1);
  ASSERT_EQ(msg_is(e, m.id, "delivered"), 1);
  ASSERT_EQ(numf(e, "SELECT COUNT(*) FROM messages WHERE id=%lld AND channel='sms'"
                    " AND due_at IS NULL", (long long)m.id), 1);
  ASSERT_EQ(numf(e, "SELECT COUNT(*) FROM attempts WHERE message_id=%lld AND"
                    " ((channel='vk' AND status='failed') OR (channel='viber' AND"
                    " status='failed' AND provider_id='vb1') OR (channel='sms' AND"
                    " status='delivered'))", (long long)m.id), 3);
  ASSERT(numf(e, "SELECT COUNT(*) FROM events WHERE message_id=%lld", (long long)m.id) >= 3);
  ASSERT(numf(e, "SELECT COUNT(*) FROM outbox WHERE message_id=%lld AND status='delivered'",
              (long long)m.id) == 1);
  /* a repeated receipt changes nothing */
  ASSERT_EQ(receipt(e, "ABC1", "failed", now + 60), 1);
  ASSERT_EQ(msg_is(e, m.id, "delivered"), 1);
  store_get_cascade_stats(e->t->store, &c1);
  ASSERT_EQ(c1.failed[KK_CHAN_VK] - c0.failed[KK_CHAN_VK], 1u);
  ASSERT_EQ(c1.sent[KK_CHAN_VIBER] - c0.sent[KK_CHAN_VIBER], 1u);
  ASSERT_EQ(c1.failed[KK_CHAN_VIBER] - c0.failed[KK_CHAN_VIBER], 1u);
  ASSERT_EQ(c1.sent[KK_CHAN_SMS] - c0.sent[KK_CHAN_SMS], 1u);
  ASSERT_EQ(c1.delivered[KK_CHAN_SMS] - c0.delivered[KK_CHAN_SMS], 1u);
  unwatch(e);
}

void sc_early_receipt_and_status(struct sc_env *e) {
  channels(e);
  int64_t now = store_now_ms() - 1000;
  struct store_msg_new m = msg("e1", NULL, NULL, now);
  put(e, &m);
  /* the receipt comes before the part is known: held */
  ASSERT_EQ(receipt(e, "XYZ9", "delivered", now + 10), 0);
  ASSERT_EQ(e->num(e, "SELECT COUNT(*) FROM early_receipts"), 1);
  ASSERT_EQ(msg_is(e, m.id, "delivered"), 0);
  /* the part's submit_sm_resp applies it */
  submitted(e, &m, m.attempt_id, "xyz9", now + 20);
  ASSERT_EQ(msg_is(e, m.id, "delivered"), 1);
  ASSERT_EQ(e->num(e, "SELECT COUNT(*) FROM early_receipts"), 0);
  /* a VK status before the send's answer: held, applied with it */
  struct store_msg_new v = msg("e2", "vk/delivered/60000,sms/delivered/0", VV_EXTRA, now);
  put(e, &v);
  ASSERT_EQ(chan_status(e, "vk", "vk9", "delivered", now + 30), 0);
  ASSERT_EQ(e->num(e, "SELECT COUNT(*) FROM early_statuses"), 1);
  chan_result(e, v.attempt_id, STORE_CHAN_SENT, "vk9", now + 20);
  ASSERT_EQ(e->num(e, "SELECT COUNT(*) FROM early_statuses"), 0);
  ASSERT_EQ(msg_is(e, v.id, "delivered"), 1);
  /* early rows older than a day expire */
  ASSERT_EQ(receipt(e, "old1", "delivered", now), 0);
  RUN(e, store_early_expire(e->t->store, store_now_ms() + 25LL * 3600 * 1000, tmp_store_done,
                            e->t));
  ASSERT_EQ(e->num(e, "SELECT COUNT(*) FROM early_receipts"), 0);
  struct store_stats st;
  store_get_stats(e->t->store, &st);
  ASSERT(st.early_expired >= 1);
}

/* Queues the operations `calls` queue (n of them) and waits for them all:
   queued together, the writer runs them in as few batches as it can. */
static void run_many(struct sc_env *e, int n) {
  ASSERT_EQ(tmp_store_wait(e->t, run_want + n - 1, 10000), 0);
  e->t->rc = 0;
}

void sc_sms_runs(struct sc_env *e) {
  channels(e);
  int64_t now = store_now_ms() - 1000;
  enum { N = 12 };
  static struct store_msg_new m[N];
  static char pubs[N][16];
  for (int i = 0; i < N; i++) {
    snprintf(pubs[i], sizeof pubs[i], "run%d", i);
    m[i] = msg(pubs[i], NULL, NULL, now);
    if (i == 0) m[i].segments = 2;   /* two parts, each its own submit_sm_resp */
  }
  RUN(e, store_msg_insert(e->t->store, m, N, tmp_store_done, e->t));
  /* message 1's receipt comes first and is held */
  ASSERT_EQ(receipt(e, "P1", "delivered", now + 5), 0);
  /* every part's submit_sm_resp at once; message 0's two parts side by side */
  static char pid[N + 1][16];
  run_begin(e);
  int queued = 0;
  for (int i = 0; i < N; i++) {
    for (int part = 1; part <= m[i].segments; part++, queued++) {
      snprintf(pid[queued], sizeof pid[0], "p%d%s", i, part > 1 ? "b" : "");
      struct store_sms_update u = {.msg_id = m[i].id, .attempt_id = m[i].attempt_id,
                                   .part = part, .nparts = m[i].segments, .route = "r1",
                                   .provider_id = pid[queued], .at = now + 10};
      store_sms_submitted(e->t->store, &u, tmp_store_done, e->t);
    }
  }
  run_many(e, queued);
  ASSERT_EQ(e->num(e, "SELECT COUNT(*) FROM sms_parts"), N + 1);
  ASSERT_EQ(e->num(e, "SELECT COUNT(*) FROM early_receipts"), 0);
  ASSERT_EQ(msg_is(e, m[0].id, "sent"), 1);
  ASSERT_EQ(msg_is(e, m[1].id, "delivered"), 1);   /* the held receipt applied */
  for (int i = 2; i < N; i++) ASSERT_EQ(msg_is(e, m[i].id, "sent"), 1);
  /* every receipt at once: message 0's two parts, a receipt repeated, a
     failure, and one for a part nobody knows (held) */
  static const char *const ids[] = {"P0", "P0B", "P2", "P2", "P3", "P4", "P5", "P6",
                                    "P7", "P8", "P9", "P10", "P11", "nobody"};
  enum { NR = sizeof ids / sizeof ids[0] };
  static struct store_receipt r[NR];
  run_begin(e);
  for (int i = 0; i < NR; i++) {
    r[i] = (struct store_receipt){.route = "r1", .ids = {ids[i], NULL},
                                  .state = i == 4 ? "failed" : "delivered", .at = now + 20};
    store_receipt_apply(e->t->store, &r[i], tmp_store_done, e->t);
  }
  run_many(e, NR);
  for (int i = 0; i < NR - 1; i++) ASSERT_EQ(r[i].matched, 1);
  ASSERT_EQ(r[NR - 1].matched, 0);
  ASSERT_EQ(e->num(e, "SELECT COUNT(*) FROM early_receipts"), 1);
  ASSERT_EQ(msg_is(e, m[0].id, "delivered"), 1);
  ASSERT_EQ(msg_is(e, m[3].id, "delivered"), 0);
  for (int i = 1; i < N; i++)
    if (i != 3) ASSERT_EQ(msg_is(e, m[i].id, "delivered"), 1);
  /* one event per status: sent and delivered each once per message */
  ASSERT_EQ(e->num(e, "SELECT COUNT(*) FROM events WHERE status='delivered'"), N - 1);
  ASSERT_EQ(e->num(e, "SELECT COUNT(*) FROM events WHERE status='sent'"), N);
}

/* Cascade operations queued together, so that the writer runs them as one
   run (on PostgreSQL it reads their messages' rows ahead): each ends as it
   would one at a time. A status held early for a send whose result comes
   later in the run; a status after its send's result; a retry, then the
   attempt's send and its status; a step's deadline after its send. */
void sc_cascade_runs(struct sc_env *e) {
  channels(e);
  int64_t now = store_now_ms() - 1000;
  enum { N = 4 };
  static struct store_msg_new m[N];
  static const char *pubs[N] = {"cr0", "cr1", "cr2", "cr3"};
  for (int i = 0; i < N; i++) {
    m[i] = msg(pubs[i], "vk/delivered/60000,sms/delivered/0", VV_EXTRA, now);
    put(e, &m[i]);
  }
  static struct store_chan_result r[5];
  static struct store_chan_status st[3];
  r[0] = (struct store_chan_result){.attempt_id = m[0].attempt_id, .outcome = STORE_CHAN_SENT,
                                    .provider_id = "c0", .at = now + 20, .units = 1};
  r[1] = (struct store_chan_result){.attempt_id = m[1].attempt_id, .outcome = STORE_CHAN_SENT,
                                    .provider_id = "c1", .at = now + 20, .units = 1};
  r[2] = (struct store_chan_result){.attempt_id = m[2].attempt_id, .outcome = STORE_CHAN_RETRY,
                                    .error = "busy", .retry_at = now + 30, .at = now + 20};
  r[3] = (struct store_chan_result){.attempt_id = m[2].attempt_id, .outcome = STORE_CHAN_SENT,
                                    .provider_id = "c2", .at = now + 40, .units = 1};
  r[4] = (struct store_chan_result){.attempt_id = m[3].attempt_id, .outcome = STORE_CHAN_SENT,
                                    .provider_id = "c3", .at = now + 20, .units = 1};
  for (int i = 0; i < 3; i++)
    st[i] = (struct store_chan_status){.channel = "vk", .scope = 0, .peer = "",
                                       .status = "delivered", .error = "", .at = now + 50};
  st[0].provider_id = "c0";
  st[1].provider_id = "c1";
  st[2].provider_id = "c2";
  run_begin(e);
  struct store *s = e->t->store;
  store_chan_status(s, &st[0], tmp_store_done, e->t);   /* before its send: held */
  store_chan_result(s, &r[0], tmp_store_done, e->t);
  store_chan_result(s, &r[1], tmp_store_done, e->t);
  store_chan_status(s, &st[1], tmp_store_done, e->t);
  store_chan_result(s, &r[2], tmp_store_done, e->t);
  store_chan_result(s, &r[3], tmp_store_done, e->t);
  store_chan_status(s, &st[2], tmp_store_done, e->t);
  store_chan_result(s, &r[4], tmp_store_done, e->t);
  store_step_timeout(s, m[3].id, 0, now + 120000, tmp_store_done, e->t);
  run_many(e, 9);
  for (int i = 0; i < 3; i++) ASSERT_EQ(msg_is(e, m[i].id, "delivered"), 1);
  ASSERT_EQ(e->num(e, "SELECT COUNT(*) FROM early_statuses"), 0);
  ASSERT_EQ(numf(e, "SELECT tries FROM attempts WHERE id=%lld", (long long)m[2].attempt_id), 1);
  /* the deadline moved m[3] to its SMS step */
  ASSERT_EQ(numf(e, "SELECT step FROM messages WHERE id=%lld", (long long)m[3].id), 1);
  ASSERT_EQ(numf(e, "SELECT COUNT(*) FROM attempts WHERE message_id=%lld", (long long)m[3].id),
            2);
  for (int i = 0; i < 3; i++)
    ASSERT_EQ(numf(e, "SELECT COUNT(*) FROM attempts WHERE message_id=%lld", (long long)m[i].id),
              1);
}

void sc_step_timeout(struct sc_env *e) {
  channels(e);
  watch(e);
  int64_t now = store_now_ms() - 1000;
  struct store_msg_new m = msg("t1", VVS, VV_EXTRA, now);
  put(e, &m);
  chan_result(e, m.attempt_id, STORE_CHAN_SENT, "v1", now + 10);
  int64_t until = numf(e, "SELECT wait_until FROM messages WHERE id=%lld", (long long)m.id);
  ASSERT(until > now);
  RUN(e, store_step_timeout(e->t->store, m.id, 0, until, tmp_store_done, e->t));
  ASSERT_EQ(numf(e, "SELECT COUNT(*) FROM attempts WHERE message_id=%lld", (long long)m.id), 2);
  ASSERT_EQ(numf(e, "SELECT COUNT(*) FROM attempts WHERE message_id=%lld AND channel='vk'"
                    " AND status='timeout'", (long long)m.id), 1);
  ASSERT_EQ(numf(e, "SELECT step FROM messages WHERE id=%lld", (long long)m.id), 1);
  ASSERT_EQ(seen.chan, 2);
  /* the same deadline again: not the current step any more */
  RUN(e, store_step_timeout(e->t->store, m.id, 0, until, tmp_store_done, e->t));
  ASSERT_EQ(numf(e, "SELECT COUNT(*) FROM attempts WHERE message_id=%lld", (long long)m.id), 2);
  unwatch(e);
}

void sc_cancel_scheduled(struct sc_env *e) {
  channels(e);
  int64_t now = store_now_ms() - 1000, later = now + 3600000;
  /* an SMS and a VK first step, each deferred an hour; one sent now */
  struct store_msg_new a = msg("s1", NULL, NULL, now), b = msg("s2", VVS, VV_EXTRA, now),
                       c = msg("s3", NULL, NULL, now);
  a.not_before = b.not_before = later;
  a.callback_url = "http://cb.example/x";
  put(e, &a);
  put(e, &b);
  put(e, &c);
  ASSERT_EQ(msg_is(e, a.id, "scheduled"), 1);
  ASSERT_EQ(msg_is(e, b.id, "scheduled"), 1);
  int64_t outbox0 = e->num(e, "SELECT COUNT(*) FROM outbox");
  int64_t cancels = 0, ends = 0;
  struct store_msg_cancel x = {.account_id = 1, .at = now + 5};
  const struct store_msg_new *both[2] = {&a, &b};
  for (int i = 0; i < 2; i++) {
    watch(e);
    snprintf(x.public_id, sizeof x.public_id, "%s", both[i]->public_id);
    RUN(e, store_msg_cancel(e->t->store, &x, tmp_store_done, e->t));
    ASSERT(x.found && x.cancelled);
    ASSERT_STR_EQ(x.status, "cancelled");
    ASSERT_EQ(msg_is(e, both[i]->id, "cancelled"), 1);
    ASSERT_EQ(numf(e, "SELECT COUNT(*) FROM messages WHERE id=%lld AND done=1 AND due_at IS NULL"
                      " AND wait_until IS NULL", (long long)both[i]->id), 1);
    ASSERT_EQ(numf(e, "SELECT COUNT(*) FROM attempts WHERE id=%lld AND status='cancelled'"
                      " AND due_at IS NULL", (long long)both[i]->attempt_id), 1);
    ASSERT_EQ(numf(e, "SELECT COUNT(*) FROM events WHERE message_id=%lld AND status='cancelled'",
                   (long long)both[i]->id), 1);
    ends += seen.chan_end;
    unwatch(e);
    cancels++;
  }
  ASSERT_EQ(cancels, 2);
  ASSERT_EQ(ends, 1);   /* the VK step's row must not go */
  /* the one with a callback URL has its callback */
  ASSERT_EQ(e->num(e, "SELECT COUNT(*) FROM outbox") - outbox0, 1);
  /* again: found, not scheduled any more; one sent now; another account's; unknown */
  RUN(e, store_msg_cancel(e->t->store, &x, tmp_store_done, e->t));
  ASSERT(x.found && !x.cancelled);
  ASSERT_STR_EQ(x.status, "cancelled");
  snprintf(x.public_id, sizeof x.public_id, "s3");
  RUN(e, store_msg_cancel(e->t->store, &x, tmp_store_done, e->t));
  ASSERT(x.found && !x.cancelled);
  ASSERT_EQ(msg_is(e, c.id, "cancelled"), 0);
  x.account_id = 2;
  RUN(e, store_msg_cancel(e->t->store, &x, tmp_store_done, e->t));
  ASSERT(!x.found);
  x.account_id = 1;
  snprintf(x.public_id, sizeof x.public_id, "nothing");
  RUN(e, store_msg_cancel(e->t->store, &x, tmp_store_done, e->t));
  ASSERT(!x.found);
}

void sc_sms_begin(struct sc_env *b, struct sc_env *a) {
  int64_t now = store_now_ms() - 1000, later = now + 3600000;
  /* b accepts three scheduled SMS and one sent now */
  struct store_msg_new m[4] = {msg("g1", NULL, NULL, now), msg("g2", NULL, NULL, now),
                               msg("g3", NULL, NULL, now), msg("g4", NULL, NULL, now)};
  for (int i = 0; i < 4; i++) {
    if (i < 3) m[i].not_before = later;
    put(b, &m[i]);
  }
  /* the time of the first comes: it goes, accepted; a cancel after that is refused */
  struct store_sms_begin g = {.msg_id = m[0].id, .attempt_id = m[0].attempt_id, .at = later};
  RUN(b, store_sms_begin(b->t->store, &g, tmp_store_done, b->t));
  ASSERT_EQ(g.go, 1);
  ASSERT_EQ(msg_is(b, m[0].id, "accepted"), 1);
  struct store_msg_cancel x = {.account_id = 1, .at = later + 1};
  snprintf(x.public_id, sizeof x.public_id, "g1");
  RUN(a, store_msg_cancel(a->t->store, &x, tmp_store_done, a->t));
  ASSERT(x.found && !x.cancelled);
  ASSERT_STR_EQ(x.status, "accepted");
  /* the second is cancelled through a first: it does not go */
  snprintf(x.public_id, sizeof x.public_id, "g2");
  RUN(a, store_msg_cancel(a->t->store, &x, tmp_store_done, a->t));
  ASSERT(x.found && x.cancelled);
  g = (struct store_sms_begin){.msg_id = m[1].id, .attempt_id = m[1].attempt_id, .at = later};
  RUN(b, store_sms_begin(b->t->store, &g, tmp_store_done, b->t));
  ASSERT_EQ(g.go, 0);
  ASSERT_EQ(msg_is(b, m[1].id, "cancelled"), 1);
  /* another attempt than the message's current one: not this one's to send */
  g = (struct store_sms_begin){.msg_id = m[2].id, .attempt_id = m[2].attempt_id + 1000, .at = later};
  RUN(b, store_sms_begin(b->t->store, &g, tmp_store_done, b->t));
  ASSERT_EQ(g.go, 0);
  ASSERT_EQ(msg_is(b, m[2].id, "scheduled"), 1);
  /* one that was never scheduled goes, as it is */
  g = (struct store_sms_begin){.msg_id = m[3].id, .attempt_id = m[3].attempt_id, .at = later};
  RUN(b, store_sms_begin(b->t->store, &g, tmp_store_done, b->t));
  ASSERT_EQ(g.go, 1);
  ASSERT_EQ(msg_is(b, m[3].id, "scheduled"), 0);
}

void sc_inbound(struct sc_env *e) {
  int64_t now = store_now_ms() - 1000;
  struct store_msg_new m = msg("i1", NULL, NULL, now);
  put(e, &m);
  struct store_inbound in = {.channel = "sms", .scope = 0, .route = "r1", .from = "+" PHONE,
                             .to = "kaskad", .text = "yes", .at = now + 10};
  RUN(e, store_inbound_add(e->t->store, &in, tmp_store_done, e->t));
  ASSERT_EQ(numf(e, "SELECT COUNT(*) FROM inbound WHERE account_id=1 AND message_id=%lld"
                    " AND from_number='" PHONE "' AND body='yes' AND route='r1'",
                 (long long)m.id), 1);
  /* from a phone no message went to: the operator's */
  in.from = "79000000000";
  RUN(e, store_inbound_add(e->t->store, &in, tmp_store_done, e->t));
  ASSERT_EQ(e->num(e, "SELECT COUNT(*) FROM inbound WHERE account_id IS NULL"
                      " AND message_id IS NULL"), 1);
  /* WhatsApp windows move forward only */
  RUN(e, store_wa_inbound(e->t->store, 5, PHONE, 1000, tmp_store_done, e->t));
  RUN(e, store_wa_inbound(e->t->store, 5, PHONE, 500, tmp_store_done, e->t));
  ASSERT_EQ(e->num(e, "SELECT last_inbound FROM wa_windows WHERE scope=5"), 1000);
  RUN(e, store_wa_inbound(e->t->store, 5, PHONE, 2000, tmp_store_done, e->t));
  ASSERT_EQ(e->num(e, "SELECT last_inbound FROM wa_windows WHERE scope=5"), 2000);
}

void sc_outbox(struct sc_env *e) {
  int64_t now = store_now_ms() - 1000;
  static const char *const pids[3] = {"o1", "o2", "o3"};
  for (int i = 0; i < 3; i++) {
    struct store_msg_new m = msg(pids[i], NULL, NULL, now);
    m.callback_url = "http://cb.example/o";
    put(e, &m);
    struct store_sms_update u = {.msg_id = m.id, .attempt_id = m.attempt_id, .error = "bad",
                                 .at = now + 10};
    RUN(e, store_sms_failed(e->t->store, &u, tmp_store_done, e->t));
  }
  int64_t total = e->num(e, "SELECT COUNT(*) FROM outbox");
  ASSERT(total >= 3);
  ASSERT_EQ(e->num(e, "SELECT COUNT(*) FROM outbox WHERE status='failed' AND account_id=1"), 3);
  int64_t id1 = e->num(e, "SELECT MIN(id) FROM outbox");
  RUN(e, store_outbox_result(e->t->store, id1, 1, 0, NULL, tmp_store_done, e->t));
  ASSERT_EQ(numf(e, "SELECT COUNT(*) FROM outbox WHERE id=%lld", (long long)id1), 0);
  int64_t id2 = e->num(e, "SELECT MIN(id) FROM outbox");
  RUN(e, store_outbox_result(e->t->store, id2, 0, now + 5000, "503", tmp_store_done, e->t));
  ASSERT_EQ(numf(e, "SELECT tries FROM outbox WHERE id=%lld", (long long)id2), 1);
  ASSERT_EQ(numf(e, "SELECT due_at FROM outbox WHERE id=%lld", (long long)id2), now + 5000);
  RUN(e, store_outbox_defer(e->t->store, id2, now + 9000, tmp_store_done, e->t));
  ASSERT_EQ(numf(e, "SELECT due_at FROM outbox WHERE id=%lld", (long long)id2), now + 9000);
  ASSERT_EQ(numf(e, "SELECT tries FROM outbox WHERE id=%lld", (long long)id2), 1);
  /* the trim keeps one row of the account: its newest */
  static struct store_outbox_trim t;
  memset(&t, 0, sizeof t);
  t.keep = 1;
  t.max_delete = 100;
  RUN(e, store_outbox_trim(e->t->store, &t, tmp_store_done, e->t));
  ASSERT_EQ(t.dropped, total - 2);
  ASSERT_EQ(t.naccounts, 1);
  ASSERT_EQ(t.account_id[0], 1);
  ASSERT_EQ(e->num(e, "SELECT COUNT(*) FROM outbox"), 1);
}

void sc_rollback_and_idempotency(struct sc_env *e) {
  channels(e);
  watch(e);
  int64_t now = store_now_ms() - 1000;
  /* the third has the first's public id: the whole batch fails */
  struct store_msg_new m[3] = {msg("r1", NULL, NULL, now), msg("r2", VVS, VV_EXTRA, now),
                               msg("r1", NULL, NULL, now)};
  ASSERT_EQ(RUN_RC(e, store_msg_insert(e->t->store, m, 3, tmp_store_done, e->t)), KK_EEXIST);
  ASSERT_EQ(e->num(e, "SELECT COUNT(*) FROM messages"), 0);
  ASSERT_EQ(e->num(e, "SELECT COUNT(*) FROM attempts"), 0);
  ASSERT_EQ(e->num(e, "SELECT COUNT(*) FROM events"), 0);
  ASSERT_EQ(seen.sms_new + seen.chan + seen.sms, 0);
  /* the same key twice: one message */
  struct store_msg_new a = msg("k1", NULL, NULL, now);
  a.idem_key = "key-1";
  a.req_hash = "h1";
  put(e, &a);
  ASSERT_EQ(a.duplicate, 0);
  struct store_msg_new b = msg("k2", NULL, NULL, now + 10);
  b.idem_key = "key-1";
  b.req_hash = "h1";
  put(e, &b);
  ASSERT_EQ(b.duplicate, 1);
  ASSERT_EQ(b.id, a.id);
  ASSERT_STR_EQ(b.dup_public_id, "k1");
  ASSERT_EQ(b.dup_segments, 1);
  /* the same key for another request: refused, nothing stored */
  struct store_msg_new c = msg("k3", NULL, NULL, now + 20);
  c.idem_key = "key-1";
  c.req_hash = "h2";
  put(e, &c);
  ASSERT_EQ(c.mismatch, 1);
  ASSERT_EQ(e->num(e, "SELECT COUNT(*) FROM messages"), 1);
  ASSERT_EQ(seen.sms_new, 1);
  unwatch(e);
}

void sc_batch_text_and_keys(struct sc_env *e) {
  int64_t now = store_now_ms() - 1000;
  static const char odd[] = "he said \"hi\", {x} \\ NULL \xd0\xbf\xd1\x80\xd0\xb8";
  struct store_msg_new m[4] = {msg("x1", NULL, NULL, now), msg("x2", NULL, NULL, now),
                               msg("x3", NULL, NULL, now), msg("x4", NULL, NULL, now)};
  m[0].text = odd;
  m[0].campaign = "c,\"1\"";
  m[1].idem_key = m[2].idem_key = "same";
  m[1].req_hash = m[2].req_hash = "h";
  m[3].sender = "Shop";
  RUN(e, store_msg_insert(e->t->store, m, 4, tmp_store_done, e->t));
  ASSERT_EQ(m[1].duplicate, 0);
  ASSERT_EQ(m[2].duplicate, 1);
  ASSERT_EQ(m[2].id, m[1].id);
  ASSERT_STR_EQ(m[2].dup_public_id, "x2");
  ASSERT_EQ(e->num(e, "SELECT COUNT(*) FROM messages"), 3);
  ASSERT_EQ(e->num(e, "SELECT COUNT(*) FROM attempts"), 3);
  ASSERT_EQ(e->num(e, "SELECT COUNT(*) FROM messages WHERE body='he said \"hi\", {x} \\ NULL"
                      " \xd0\xbf\xd1\x80\xd0\xb8' AND campaign='c,\"1\"' AND sender IS NULL"),
            1);
  ASSERT_EQ(e->num(e, "SELECT COUNT(*) FROM messages WHERE sender='Shop'"), 1);
}

void sc_pg_crossed_status(struct sc_pg *p) {
  struct sc_env *e0 = &p->e[0], *e1 = &p->e[1];
  channels(e0);
  int64_t now = store_now_ms() - 1000;
  struct store_msg_new v = msg("x2", "vk/delivered/60000,sms/delivered/0", VV_EXTRA, now);
  put(e0, &v);
  ASSERT_EQ(chan_status(e1, "vk", "vk77", "delivered", now + 30), 0);   /* held by node 1 */
  ASSERT_EQ(e0->num(e0, "UPDATE early_statuses SET channel='hidden' WHERE provider_id='vk77'"
                        " RETURNING 1"), 1);
  chan_result(e0, v.attempt_id, STORE_CHAN_SENT, "vk77", now + 20);   /* sees nothing held */
  ASSERT_EQ(e0->num(e0, "UPDATE early_statuses SET channel='vk' WHERE provider_id='vk77'"
                        " RETURNING 1"), 1);
  int delivered = 0;
  for (int i = 0; i < 100 && !delivered; i++) {   /* node 1's idle writer looks again */
    struct timespec ts = {0, 100000000L};
    nanosleep(&ts, NULL);
    delivered = msg_is(e0, v.id, "delivered") == 1;
  }
  ASSERT(delivered);
  ASSERT_EQ(e0->num(e0, "SELECT COUNT(*) FROM early_statuses"), 0);
}

void sc_pg_held_message(struct sc_pg *p) {
  struct sc_env *e = &p->e[0];
  channels(e);
  int64_t now = store_now_ms() - 1000;
  struct store_msg_new m = msg("h1", VVS, VV_EXTRA, now);
  put(e, &m);
  chan_result(e, m.attempt_id, STORE_CHAN_SENT, "vh1", now + 10);
  int64_t until = numf(e, "SELECT wait_until FROM messages WHERE id=%lld", (long long)m.id);
  /* another node's open batch holds the message's row */
  char q[128];
  snprintf(q, sizeof q, "SELECT id FROM messages WHERE id=%lld FOR UPDATE", (long long)m.id);
  PQclear(tmp_pg_exec(p->sql, "BEGIN"));
  ASSERT_EQ(e->num(e, q), m.id);
  run_begin(e);
  store_step_timeout(e->t->store, m.id, 0, until, tmp_store_done, e->t);
  struct store_stats st;
  for (int i = 0; i < 400; i++) {
    store_get_stats(e->t->store, &st);
    if (st.handed_back >= 3) break;
    struct timespec ts = {0, 5000000L};
    nanosleep(&ts, NULL);
  }
  /* handed back batch after batch, nothing written, no batch rolled back */
  ASSERT(st.handed_back >= 3);
  ASSERT_EQ(numf(e, "SELECT COUNT(*) FROM attempts WHERE message_id=%lld", (long long)m.id), 1);
  ASSERT_EQ(e->t->ndone, run_want - 1);   /* not answered yet */
  PQclear(tmp_pg_exec(p->sql, "COMMIT"));
  /* the other commits: the deadline is applied at the next batch */
  ASSERT_EQ(run_end(e), 0);
  ASSERT_EQ(numf(e, "SELECT COUNT(*) FROM attempts WHERE message_id=%lld", (long long)m.id), 2);
  ASSERT_EQ(numf(e, "SELECT step FROM messages WHERE id=%lld", (long long)m.id), 1);
  store_get_stats(e->t->store, &st);
  ASSERT_EQ(st.lock_retries, 0);
  ASSERT_EQ(st.errors, 0);
}
