/*
 * test_store_cascade_claims.c - due channel attempts and step deadlines
 * handed out by claims (store_chan_claim, store_wait_claim) on a real
 * SQLite store whose claim() is replaced by one that leases rows as a
 * backend with several writers would: a row is granted once while its
 * lease holds, a finished row is never handed out, rows come in due order.
 * And the notes carry the rows their subscribers need: a note's row equals
 * what the tables hold.
 */
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/kk_err.h"
#include "core/kk_log.h"
#include "core/kk_mem.h"
#include "store/store.h"
#include "store/store_int.h"
#include "kk_test.h"
#include "lib/tmp_store.h"

/* ---- a backend that leases what it grants ----------------------------------- */

#define LEASES 64
static struct lease { int kind; int64_t id, until; } leases[LEASES];
static int nleases;
static int64_t lease_clock;   /* the leases' time, moved by the tests */

static int lease_claim(struct store *s, enum store_claim_kind kind, const int64_t *ids, int n,
                       int64_t lease_ms, unsigned char *granted) {
  (void)s;
  for (int i = 0; i < n; i++) {
    struct lease *l = NULL;
    for (int j = 0; j < nleases; j++)
      if (leases[j].kind == (int)kind && leases[j].id == ids[i]) l = &leases[j];
    if (l && l->until > lease_clock) {
      granted[i] = 0;   /* another writer holds it */
      continue;
    }
    if (l == NULL) {
      if (nleases == LEASES) return KK_ESTORE;
      l = &leases[nleases++];
    }
    *l = (struct lease){(int)kind, ids[i], lease_clock + lease_ms};
    granted[i] = 1;
  }
  return 0;
}

static struct store_backend lease_backend;

static void env_open(struct tmp_store *e) {
  kk_log_level = KK_LOG_ERROR;
  nleases = 0;
  lease_clock = 0;
  lease_backend = store_sqlite_backend;
  lease_backend.claim = lease_claim;
  ASSERT_EQ(tmp_store_open(e, "claims", NULL), 0);
  tmp_store_db_close(e);
  struct store_opts so = {.dir = e->dir};
  ASSERT_EQ(store_open_with(&e->loop, &so, &lease_backend, &e->store), 0);
}

static void wait_done(struct tmp_store *e, int want) { ASSERT_EQ(tmp_store_wait(e, want, 10000), 0); }

static void channel_put(struct tmp_store *e, const char *channel) {
  int want = e->ndone + 1;
  store_channel_put(e->store, 0, channel, "{}", tmp_store_done, e);
  wait_done(e, want);
}

/* Stores a message with the steps given, created at `at`; *out receives it. */
static void put_msg(struct tmp_store *e, const char *public_id, const char *cascade,
                    const char *extra, int64_t at, struct store_msg_new *out) {
  struct store_msg_new m = {
      .account_id = 1, .public_id = public_id, .to = "79161234567", .text = "hello",
      .msg_class = "service", .encoding = "gsm7", .segments = 1, .route = "r1",
      .cascade = cascade, .extra = extra, .created_at = at, .expires_at = at + 86400000,
  };
  int want = e->ndone + 1;
  store_msg_insert(e->store, &m, 1, tmp_store_done, e);
  wait_done(e, want);
  ASSERT_EQ(m.rc, 0);
  ASSERT(m.attempt_id != 0);
  *out = m;
}

static void chan_result(struct tmp_store *e, int64_t attempt_id, enum store_chan_outcome o,
                        int64_t at) {
  struct store_chan_result r = {.attempt_id = attempt_id, .outcome = o, .provider_id = "p",
                                .error = o == STORE_CHAN_FAILED ? "no" : NULL, .at = at,
                                .units = 1};
  int want = e->ndone + 1;
  store_chan_result(e->store, &r, tmp_store_done, e);
  wait_done(e, want);
}

/* Claims channel attempts due at now: their attempt ids into ids, the count. */
static int claim_chan(struct tmp_store *e, int64_t now, int64_t *ids, int max) {
  struct store_chan_due rows[16];
  int64_t cd = 0, ci = 0;
  int n = 0, more = 0, k = 0;
  do {
    ASSERT_EQ(store_chan_claim(e->store, now, &cd, &ci, rows, 16, &n, &more), 0);
    for (int i = 0; i < n; i++) {
      if (k < max) ids[k++] = rows[i].attempt_id;
      store_chan_due_free(&rows[i]);
    }
  } while (more);
  return k;
}

#define T0 1763932800000LL
#define TG_EXTRA "{\"telegram_chat_id\":\"42\"}"

KK_TEST(store_chan_claim_leases_finished_and_order) {
  struct tmp_store e;
  env_open(&e);
  channel_put(&e, "telegram");
  struct store_msg_new m1, m2, m3;
  put_msg(&e, "msg_a", "telegram/delivered/60000", TG_EXTRA, T0 - 3000, &m1);
  put_msg(&e, "msg_b", "telegram/delivered/60000", TG_EXTRA, T0 - 1000, &m2);
  put_msg(&e, "msg_c", "telegram/delivered/60000", TG_EXTRA, T0 - 2000, &m3);
  int64_t ids[16];
  /* Nothing is due before its time. */
  ASSERT_EQ(claim_chan(&e, T0 - 3001, ids, 16), 0);
  /* Due order: by due time, whatever the order of the rows. */
  ASSERT_EQ(claim_chan(&e, T0, ids, 16), 3);
  ASSERT_EQ(ids[0], m1.attempt_id);
  ASSERT_EQ(ids[1], m3.attempt_id);
  ASSERT_EQ(ids[2], m2.attempt_id);
  /* Granted once while the lease holds. */
  lease_clock += STORE_CHAN_LEASE_MS - 1;
  ASSERT_EQ(claim_chan(&e, T0, ids, 16), 0);
  /* The lease over, the rows (not finished) can be claimed again. */
  lease_clock += 2;
  ASSERT_EQ(claim_chan(&e, T0, ids, 16), 3);
  /* Finished rows are never handed out, lease or none. */
  chan_result(&e, m3.attempt_id, STORE_CHAN_FAILED, T0);
  chan_result(&e, m1.attempt_id, STORE_CHAN_SENT, T0);
  lease_clock += STORE_CHAN_LEASE_MS + 1;
  ASSERT_EQ(claim_chan(&e, T0 + 1000, ids, 16), 1);
  ASSERT_EQ(ids[0], m2.attempt_id);
  /* A retry is due again at its own time, in due order. */
  struct store_chan_result r = {.attempt_id = m2.attempt_id, .outcome = STORE_CHAN_RETRY,
                                .error = "busy", .at = T0, .retry_at = T0 + 5000};
  int want = e.ndone + 1;
  store_chan_result(e.store, &r, tmp_store_done, &e);
  wait_done(&e, want);
  lease_clock += STORE_CHAN_LEASE_MS + 1;
  ASSERT_EQ(claim_chan(&e, T0 + 4999, ids, 16), 0);
  ASSERT_EQ(claim_chan(&e, T0 + 5000, ids, 16), 1);
  ASSERT_EQ(claim_chan(&e, T0 + 5000, ids, 16), 0);
  ASSERT_EQ(tmp_store_close(&e), 0);
}

KK_TEST(store_wait_claim_leases_finished_and_order) {
  struct tmp_store e;
  env_open(&e);
  channel_put(&e, "telegram");
  struct store_msg_new m1, m2;
  put_msg(&e, "msg_a", "telegram/sent/60000", TG_EXTRA, T0, &m1);
  put_msg(&e, "msg_b", "telegram/delivered/60000", TG_EXTRA, T0, &m2);
  /* A step's time runs from its provider's answer: m2's first. */
  chan_result(&e, m2.attempt_id, STORE_CHAN_SENT, T0 + 1000);
  chan_result(&e, m1.attempt_id, STORE_CHAN_SENT, T0 + 2000);
  struct store_wait_due w[8];
  int n = -1;
  int64_t next = -1;
  /* m1 waited for "sent" and has it: its cascade is over, no deadline. */
  ASSERT_EQ(store_wait_claim(e.store, T0 + 60000, w, 8, &n, &next), 0);
  ASSERT_EQ(n, 0);
  ASSERT_EQ(next, T0 + 61000);
  ASSERT_EQ(store_wait_claim(e.store, T0 + 61000, w, 8, &n, &next), 0);
  ASSERT_EQ(n, 1);
  ASSERT_EQ(w[0].msg_id, m2.id);
  ASSERT_EQ(w[0].step, 0);
  ASSERT_EQ(w[0].wait_until, T0 + 61000);
  /* Granted once while the lease holds. */
  ASSERT_EQ(store_wait_claim(e.store, T0 + 70000, w, 8, &n, &next), 0);
  ASSERT_EQ(n, 0);
  lease_clock += STORE_WAIT_LEASE_MS;
  ASSERT_EQ(store_wait_claim(e.store, T0 + 70000, w, 8, &n, &next), 0);
  ASSERT_EQ(n, 1);
  /* Its deadline carried out, the cascade ends: never handed out again. */
  int want = e.ndone + 1;
  store_step_timeout(e.store, m2.id, 0, T0 + 70000, tmp_store_done, &e);
  wait_done(&e, want);
  lease_clock += STORE_WAIT_LEASE_MS;
  ASSERT_EQ(store_wait_claim(e.store, T0 + 999999, w, 8, &n, &next), 0);
  ASSERT_EQ(n, 0);
  ASSERT_EQ(next, 0);
  /* Due order: the earliest deadline first. */
  struct store_msg_new m3, m4;
  put_msg(&e, "msg_c", "telegram/delivered/5000", TG_EXTRA, T0, &m3);
  put_msg(&e, "msg_d", "telegram/delivered/5000", TG_EXTRA, T0, &m4);
  chan_result(&e, m4.attempt_id, STORE_CHAN_SENT, T0 + 100);
  chan_result(&e, m3.attempt_id, STORE_CHAN_SENT, T0 + 200);
  ASSERT_EQ(store_wait_claim(e.store, T0 + 10000, w, 8, &n, &next), 0);
  ASSERT_EQ(n, 2);
  ASSERT_EQ(w[0].msg_id, m4.id);
  ASSERT_EQ(w[1].msg_id, m3.id);
  ASSERT_EQ(tmp_store_close(&e), 0);
}

/* ---- the rows the notes carry ----------------------------------------------------- */

struct seen_notes {
  struct store_chan_due chan[4];   /* copies of CHANNEL notes' rows */
  int nchan, nchan_bare;
  struct store_due sms[4];         /* copies of SMS notes' rows */
  int nsms;
  int64_t ended[4];                /* CHANNEL_END attempts */
  int nended;
};

static void on_notes(void *ud, const struct store_note *notes, int n) {
  struct seen_notes *s = ud;
  for (int i = 0; i < n; i++) {
    const struct store_note *t = &notes[i];
    if (t->kind == STORE_NOTE_CHANNEL && t->chan && s->nchan < 4) {
      struct store_chan_due *d = &s->chan[s->nchan++];
      *d = *t->chan;
      d->text = kk_xstrdup(t->chan->text);
      d->extra = kk_xstrdup(t->chan->extra);
    } else if (t->kind == STORE_NOTE_CHANNEL) {
      s->nchan_bare++;
    } else if (t->kind == STORE_NOTE_SMS && t->due && s->nsms < 4) {
      s->sms[s->nsms] = *t->due;
      s->sms[s->nsms++].text = kk_xstrdup(t->due->text);
    } else if (t->kind == STORE_NOTE_CHANNEL_END && s->nended < 4) {
      s->ended[s->nended++] = t->attempt_id;
    }
  }
}

static void seen_free(struct seen_notes *s) {
  for (int i = 0; i < s->nchan; i++) store_chan_due_free(&s->chan[i]);
  for (int i = 0; i < s->nsms; i++) free(s->sms[i].text);
}

static void assert_same_chan(const struct store_chan_due *a, const struct store_chan_due *b) {
  ASSERT_EQ(a->msg_id, b->msg_id);
  ASSERT_EQ(a->attempt_id, b->attempt_id);
  ASSERT_EQ(a->account_id, b->account_id);
  ASSERT_EQ(a->scope, b->scope);
  ASSERT_EQ((int)a->chan, (int)b->chan);
  ASSERT_STR_EQ(a->channel, b->channel);
  ASSERT_STR_EQ(a->public_id, b->public_id);
  ASSERT_STR_EQ(a->to, b->to);
  ASSERT_STR_EQ(a->address, b->address);
  ASSERT_STR_EQ(a->msg_class, b->msg_class);
  ASSERT_STR_EQ(a->text, b->text);
  ASSERT_STR_EQ(a->extra, b->extra);
  ASSERT_EQ(a->tries, b->tries);
  ASSERT_EQ(a->try_at, b->try_at);
  ASSERT_EQ(a->due_at, b->due_at);
  ASSERT_EQ(a->expires_at, b->expires_at);
  ASSERT_EQ(a->created_at, b->created_at);
  ASSERT_EQ(a->wa_inbound_at, b->wa_inbound_at);
}

KK_TEST(store_channel_note_carries_the_row) {
  struct tmp_store e;
  env_open(&e);
  struct seen_notes seen;
  memset(&seen, 0, sizeof seen);
  ASSERT_EQ(store_subscribe(e.store, on_notes, &seen), 0);
  channel_put(&e, "whatsapp");
  int want = e.ndone + 1;
  store_wa_inbound(e.store, 0, "79161234567", T0 - 3600000, tmp_store_done, &e);
  wait_done(&e, want);
  int64_t now = store_now_ms();
  struct store_msg_new m;
  put_msg(&e, "msg_w", "whatsapp/delivered/60000", NULL, now, &m);
  ASSERT_EQ(seen.nchan, 1);
  const struct store_chan_due *row = &seen.chan[0];
  ASSERT_EQ(row->attempt_id, m.attempt_id);
  ASSERT_EQ((int)row->chan, KK_CHAN_WHATSAPP);
  /* The 24-hour window's start as stored. */
  int64_t last = 0;
  ASSERT_EQ(e.store->be->read.wa_last_inbound(e.store, 0, "79161234567", &last), 0);
  ASSERT_EQ(row->wa_inbound_at, last);
  ASSERT_EQ(row->wa_inbound_at, T0 - 3600000);
  /* The same row as a claim reads from the tables. */
  struct store_chan_due rows[4];
  int64_t cd = 0, ci = 0;
  int n = 0, more = 0;
  ASSERT_EQ(store_chan_claim(e.store, now, &cd, &ci, rows, 4, &n, &more), 0);
  ASSERT_EQ(n, 1);
  assert_same_chan(row, &rows[0]);
  store_chan_due_free(&rows[0]);
  /* A retry later comes without a row (a claim brings it then); a failure
     says the attempt is no longer due. */
  struct store_chan_result r = {.attempt_id = m.attempt_id, .outcome = STORE_CHAN_RETRY,
                                .error = "busy", .at = now, .retry_at = now + 3600000};
  want = e.ndone + 1;
  store_chan_result(e.store, &r, tmp_store_done, &e);
  wait_done(&e, want);
  ASSERT_EQ(seen.nchan, 1);
  ASSERT_EQ(seen.nchan_bare, 1);
  chan_result(&e, m.attempt_id, STORE_CHAN_FAILED, now);
  ASSERT_EQ(seen.nended, 1);
  ASSERT_EQ(seen.ended[0], m.attempt_id);
  store_unsubscribe(e.store, on_notes, &seen);
  seen_free(&seen);
  ASSERT_EQ(tmp_store_close(&e), 0);
}

KK_TEST(store_sms_note_carries_the_row) {
  struct tmp_store e;
  env_open(&e);
  struct seen_notes seen;
  memset(&seen, 0, sizeof seen);
  ASSERT_EQ(store_subscribe(e.store, on_notes, &seen), 0);
  channel_put(&e, "telegram");
  int64_t now = store_now_ms();
  struct store_msg_new m;
  put_msg(&e, "msg_s", "telegram/delivered/60000,sms/delivered/0", TG_EXTRA, now, &m);
  ASSERT_EQ(seen.nsms, 0);
  /* Telegram fails: the SMS step starts, and its note carries its row. */
  chan_result(&e, m.attempt_id, STORE_CHAN_FAILED, now);
  ASSERT_EQ(seen.nended, 1);
  ASSERT_EQ(seen.ended[0], m.attempt_id);
  ASSERT_EQ(seen.nsms, 1);
  const struct store_due *d = &seen.sms[0];
  ASSERT_EQ(d->id, m.id);
  /* What the tables hold, read with a connection of the test's own. */
  char path[128];
  snprintf(path, sizeof path, "%s/kaskad.db", e.dir);
  sqlite3 *db = NULL;
  ASSERT_EQ(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
  sqlite3_stmt *st = NULL;
  ASSERT_EQ(sqlite3_prepare_v2(db,
                               "SELECT a.id,m.account_id,m.to_number,m.sender,a.route,m.body,"
                               "a.parts_sent,m.due_at,m.expires_at,a.channel FROM messages m"
                               " JOIN attempts a ON a.id=m.attempt_id WHERE m.id=?",
                               -1, &st, NULL),
            SQLITE_OK);
  sqlite3_bind_int64(st, 1, m.id);
  ASSERT_EQ(sqlite3_step(st), SQLITE_ROW);
  ASSERT_EQ(d->attempt_id, sqlite3_column_int64(st, 0));
  ASSERT(d->attempt_id != m.attempt_id);
  ASSERT_EQ(d->account_id, sqlite3_column_int64(st, 1));
  ASSERT_STR_EQ(d->to, (const char *)sqlite3_column_text(st, 2));
  ASSERT_STR_EQ(d->sender, sqlite3_column_text(st, 3) ? (const char *)sqlite3_column_text(st, 3) : "");
  ASSERT_STR_EQ(d->route, (const char *)sqlite3_column_text(st, 4));
  ASSERT_STR_EQ(d->text, (const char *)sqlite3_column_text(st, 5));
  ASSERT_EQ((int64_t)d->parts_done, sqlite3_column_int64(st, 6));
  ASSERT_EQ(d->due_at, sqlite3_column_int64(st, 7));
  ASSERT_EQ(d->expires_at, sqlite3_column_int64(st, 8));
  ASSERT_STR_EQ((const char *)sqlite3_column_text(st, 9), "sms");
  sqlite3_finalize(st);
  sqlite3_close(db);
  store_unsubscribe(e.store, on_notes, &seen);
  seen_free(&seen);
  ASSERT_EQ(tmp_store_close(&e), 0);
}
