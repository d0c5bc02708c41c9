/*
 * test_store_pg_read.c - the PostgreSQL backend's reads answer as the
 * SQLite backend's: the same rows are written with SQL into a PostgreSQL
 * store (a fresh database on the server in KASKAD_TEST_PG; without it every
 * test here is reported not run) and into a SQLite store, and each read of
 * struct store_reads is asked the same questions of both: one message, the
 * listings with their pages and examination bounds, campaign reports,
 * replies, and the due work the claims hand out. Rows another live node
 * holds (999999 here) are left out of the reads of due work; a dead node's
 * (999998, its lease ended) are not.
 */
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "core/kk_err.h"
#include "core/kk_log.h"
#include "kk_test.h"
#include "lib/tmp_pg.h"
#include "lib/tmp_store.h"
#include "store/pg/pg_int.h"
#include "store/store.h"
#include "store/store_int.h"

/* Two stores with the same rows: [0] PostgreSQL, [1] SQLite. */
struct both {
  struct tmp_pg db;
  struct tmp_store st[2];
  PGconn *pg;               /* the test's connections */
  sqlite3 *lite;
  void *rd[2];              /* a pool reader of each */
};

static void pg_do(struct both *b, const char *sql);

static void both_open(struct both *b) {
  kk_test_need_pg();
  kk_log_level = KK_LOG_ERROR;
  memset(b, 0, sizeof *b);
  ASSERT_EQ(tmp_pg_new(&b->db), 0);
  struct store_opts o = {.store_url = b->db.url};
  ASSERT_EQ(tmp_store_open(&b->st[0], "pgread", &o), 0);
  ASSERT_EQ(tmp_store_open(&b->st[1], "sqread", NULL), 0);
  b->pg = tmp_pg_connect(&b->db);
  ASSERT(b->pg != NULL);
  pg_do(b, "INSERT INTO nodes(id,name,started_at,heartbeat_at,lease_until) VALUES"
           " (999999,'live',1,1," PG_NOW_MS "+600000),(999998,'dead',1,1,1)");
  char path[TMP_STORE_DIR_MAX + 16];
  snprintf(path, sizeof path, "%s/kaskad.db", b->st[1].dir);
  ASSERT_EQ(sqlite3_open(path, &b->lite), SQLITE_OK);
  sqlite3_busy_timeout(b->lite, 5000);
  for (int i = 0; i < 2; i++) {
    struct store *s = b->st[i].store;
    b->rd[i] = s->be->reader_open(s);
    ASSERT(b->rd[i] != NULL);
  }
}

static void both_close(struct both *b) {
  for (int i = 0; i < 2; i++) b->st[i].store->be->reader_close(b->st[i].store, b->rd[i]);
  sqlite3_close(b->lite);
  PQfinish(b->pg);
  for (int i = 0; i < 2; i++) ASSERT_EQ(tmp_store_close(&b->st[i]), 0);
  ASSERT_EQ(tmp_pg_drop(&b->db), 0);
}

static void pg_do(struct both *b, const char *sql) {
  PGresult *r = tmp_pg_exec(b->pg, sql);
  ASSERT(r != NULL);
  PQclear(r);
}

/* Runs sql (standard SQL both understand) on both databases. */
static void both_do(struct both *b, const char *sql) {
  pg_do(b, sql);
  char *err = NULL;
  if (sqlite3_exec(b->lite, sql, NULL, NULL, &err) != SQLITE_OK) {
    fprintf(stderr, "sqlite: %s: %s\n", sql, err ? err : "?");
    sqlite3_free(err);
    ASSERT(0);
  }
}

static struct store *pgs(struct both *b) { return b->st[0].store; }

/* ---- rows ------------------------------------------------------------------ */

/* Message id of account acc to phone `to` (status, campaign: NULL for
   none), created at 1000*id, with an SMS attempt 10*id. */
static void add_msg(struct both *b, int64_t id, int64_t acc, const char *to, const char *status,
                    const char *campaign, int64_t due_at, int64_t wait_until) {
  char sql[1200], camp[48] = "NULL", due[24] = "NULL", wait[24] = "NULL", idem[24] = "NULL";
  if (id % 3 == 0) snprintf(idem, sizeof idem, "'k%lld'", (long long)id);
  if (campaign) snprintf(camp, sizeof camp, "'%s'", campaign);
  if (due_at) snprintf(due, sizeof due, "%lld", (long long)due_at);
  if (wait_until) snprintf(wait, sizeof wait, "%lld", (long long)wait_until);
  snprintf(sql, sizeof sql,
           "INSERT INTO messages(id,public_id,account_id,idem_key,to_number,sender,body,class,"
           "encoding,segments,status,channel,callback_url,created_at,expires_at,updated_at,"
           "due_at,route,step,attempt_id,wait_until,done,cost,sms_only_cost,delivered_twice,"
           "campaign) VALUES(%lld,'m%lld',%lld,%s,'%s','SHOP','text %lld','service','gsm7',1,"
           "'%s','sms','http://cb/%lld',%lld,%lld,%lld,%s,'r1',0,%lld,%s,%d,%lld,%lld,%d,%s);"
           "INSERT INTO attempts(id,message_id,channel,route,status,segments,parts_sent,"
           "provider_id,error,created_at,sent_at,step,cost) VALUES(%lld,%lld,'sms','r1',"
           "'%s',1,%d,'p%lld',%s,%lld,%lld,0,%lld)",
           (long long)id, (long long)id, (long long)acc, idem, to,
           (long long)id, status, (long long)id, (long long)id * 1000,
           (long long)id * 1000 + 3600000, (long long)id * 1000 + 5, due, (long long)id * 10,
           wait, id % 4 == 0, (long long)id * 7, (long long)id * 9, (int)(id % 5 == 0), camp,
           (long long)id * 10, (long long)id, status, (int)(id % 2), (long long)id,
           id % 2 ? "NULL" : "'busy'", (long long)id * 1000, (long long)id * 1000 + 1,
           (long long)id * 3);
  both_do(b, sql);
}

/* ---- comparing answers -------------------------------------------------------- */

static void same_view(const struct store_msg_view *a, const struct store_msg_view *c) {
  ASSERT_STR_EQ(a->public_id, c->public_id);
  ASSERT_STR_EQ(a->to, c->to);
  ASSERT_STR_EQ(a->sender, c->sender);
  ASSERT_STR_EQ(a->msg_class, c->msg_class);
  ASSERT_STR_EQ(a->status, c->status);
  ASSERT_STR_EQ(a->encoding, c->encoding);
  ASSERT_STR_EQ(a->channel, c->channel);
  ASSERT_STR_EQ(a->idem_key, c->idem_key);
  ASSERT_STR_EQ(a->callback_url, c->callback_url);
  ASSERT_STR_EQ(a->campaign, c->campaign);
  ASSERT_EQ(a->segments, c->segments);
  ASSERT_EQ(a->created_at, c->created_at);
  ASSERT_EQ(a->expires_at, c->expires_at);
  ASSERT_EQ(a->updated_at, c->updated_at);
  ASSERT_EQ(a->cost, c->cost);
  ASSERT_EQ(a->sms_only_cost, c->sms_only_cost);
  ASSERT_EQ(a->delivered_twice, c->delivered_twice);
  ASSERT_EQ(a->done, c->done);
  ASSERT_EQ(a->nattempts, c->nattempts);
  for (int i = 0; i < a->nattempts; i++) {
    const struct store_attempt_view *x = &a->attempts[i], *y = &c->attempts[i];
    ASSERT_STR_EQ(x->channel, y->channel);
    ASSERT_STR_EQ(x->route, y->route);
    ASSERT_STR_EQ(x->status, y->status);
    ASSERT_STR_EQ(x->provider_id, y->provider_id);
    ASSERT_STR_EQ(x->error, y->error);
    ASSERT_EQ(x->segments, y->segments);
    ASSERT_EQ(x->step, y->step);
    ASSERT_EQ(x->cost, y->cost);
    ASSERT_EQ(x->created_at, y->created_at);
    ASSERT_EQ(x->sent_at, y->sent_at);
    ASSERT_EQ(x->delivered_at, y->delivered_at);
    ASSERT_EQ(x->read_at, y->read_at);
  }
  ASSERT((a->text == NULL) == (c->text == NULL));
  if (a->text) ASSERT_STR_EQ(a->text, c->text);
}

/* Lists with f on both; the same page and cursor. Returns the page size. */
static int same_list(struct both *b, int64_t acc, const struct store_msg_filter *f,
                     int64_t *cursor) {
  struct store_msg_view out[2][12];
  int n[2];
  int64_t next[2];
  ASSERT(f->limit <= 12);
  for (int i = 0; i < 2; i++) {
    struct store *s = b->st[i].store;
    ASSERT_EQ(s->be->read.msg_list(s, b->rd[i], acc, f, out[i], &n[i], &next[i]), 0);
  }
  ASSERT_EQ(n[0], n[1]);
  ASSERT_EQ(next[0], next[1]);
  for (int k = 0; k < n[0]; k++) {
    same_view(&out[0][k], &out[1][k]);
    free(out[0][k].text);
    free(out[1][k].text);
  }
  *cursor = next[0];
  return n[0];
}

/* ---- messages ---------------------------------------------------------------- */

KK_TEST(store_pg_msg_get_answers_as_sqlite) {
  struct both b;
  both_open(&b);
  for (int64_t id = 1; id <= 4; id++) add_msg(&b, id, 1, "79001234567", "delivered", "c1", 0, 0);
  /* a second attempt of message 2 */
  both_do(&b, "INSERT INTO attempts(id,message_id,channel,route,status,segments,created_at,"
              "step,cost,read_at) VALUES(21,2,'viber',NULL,'read',1,2500,1,40,2600)");
  struct store_msg_view v[2];
  for (int i = 0; i < 2; i++) {
    struct store *s = b.st[i].store;
    ASSERT_EQ(s->be->read.msg_get(s, b.rd[i], 1, "m2", &v[i]), 0);
  }
  same_view(&v[0], &v[1]);
  ASSERT_EQ(v[0].nattempts, 2);
  ASSERT_STR_EQ(v[0].attempts[1].channel, "viber");
  ASSERT_EQ(v[0].attempts[1].read_at, 2600);
  /* another account's message, or none, is not found */
  ASSERT_EQ(pgs(&b)->be->read.msg_get(pgs(&b), b.rd[0], 2, "m2", &v[0]), KK_ENOENT);
  ASSERT_EQ(pgs(&b)->be->read.msg_get(pgs(&b), b.rd[0], 1, "nope", &v[0]), KK_ENOENT);
  /* through the pool, as the API reads it */
  ASSERT_EQ(tmp_store_msg_get(&b.st[0], 1, "m4", &v[0]), 0);
  ASSERT_STR_EQ(v[0].idem_key, "");
  ASSERT_EQ(v[0].done, 1);
  both_close(&b);
}

KK_TEST(store_pg_msg_list_pages_and_bounds_as_sqlite) {
  struct both b;
  both_open(&b);
  static const char *const phones[] = {"79001111111", "79002222222"};
  static const char *const statuses[] = {"delivered", "failed", "sent"};
  for (int64_t id = 1; id <= 60; id++)
    add_msg(&b, id, 1 + (id % 7 == 0), phones[id % 2], statuses[id % 3],
            id % 4 == 0 ? NULL : id % 4 == 1 ? "spring" : "autumn", 0, 0);
  /* every filter, paged to the end, with and without text, with a small
     examination bound */
  struct store_msg_filter fs[] = {
      {.limit = 7},
      {.limit = 5, .with_text = 1},
      {.limit = 4, .status = "failed"},
      {.limit = 3, .phone = "79002222222"},
      {.limit = 3, .phone = "79002222222", .status = "sent", .campaign = "spring"},
      {.limit = 6, .campaign = "autumn"},
      {.limit = 6, .campaign = "autumn", .status = "delivered", .from = 10000, .to = 50000},
      {.limit = 10, .max_examine = 8},
      {.limit = 2, .max_examine = 5, .phone = "79001111111"},
      {.limit = 12, .max_examine = 9, .campaign = "spring", .status = "sent"},
      {.limit = 4, .campaign = "none"},
  };
  for (size_t i = 0; i < sizeof fs / sizeof fs[0]; i++) {
    for (int64_t acc = 1; acc <= 2; acc++) {
      struct store_msg_filter f = fs[i];
      int pages = 0, rows = 0;
      int64_t cursor;
      do {
        rows += same_list(&b, acc, &f, &cursor);
        f.before_id = cursor;
        ASSERT(++pages < 100);
      } while (cursor != 0);
      if (i == 0) ASSERT_EQ(rows, acc == 1 ? 52 : 8);
    }
  }
  both_close(&b);
}

KK_TEST(store_pg_reply_list_pages_as_sqlite) {
  struct both b;
  both_open(&b);
  add_msg(&b, 1, 1, "79001111111", "delivered", NULL, 0, 0);
  char sql[400];
  for (int i = 1; i <= 25; i++) {
    snprintf(sql, sizeof sql,
             "INSERT INTO inbound(id,route,from_number,to_addr,body,at,channel,account_id,"
             "message_id) VALUES(%d,%s,'%s','SHOP','reply %d',%d,'%s',%d,%s)",
             i, i % 2 ? "'r1'" : "NULL", i % 3 ? "79001111111" : "79003333333", i, i * 100,
             i % 4 ? "sms" : "whatsapp", i % 6 ? 1 : 2, i % 5 ? "1" : "NULL");
    both_do(&b, sql);
  }
  struct store_reply_filter fs[] = {
      {.limit = 4},
      {.limit = 3, .channel = "whatsapp"},
      {.limit = 5, .from = "79003333333"},
      {.limit = 2, .from = "79001111111", .channel = "sms"},
  };
  for (size_t i = 0; i < sizeof fs / sizeof fs[0]; i++) {
    struct store_reply_filter f = fs[i];
    int total = 0;
    int64_t next[2];
    do {
      struct store_reply_view out[2][8];
      int n[2];
      for (int k = 0; k < 2; k++) {
        struct store *s = b.st[k].store;
        ASSERT_EQ(s->be->read.reply_list(s, b.rd[k], 1, &f, out[k], &n[k], &next[k]), 0);
      }
      ASSERT_EQ(n[0], n[1]);
      ASSERT_EQ(next[0], next[1]);
      for (int j = 0; j < n[0]; j++) {
        ASSERT_EQ(out[0][j].id, out[1][j].id);
        ASSERT_STR_EQ(out[0][j].channel, out[1][j].channel);
        ASSERT_STR_EQ(out[0][j].from, out[1][j].from);
        ASSERT_STR_EQ(out[0][j].to, out[1][j].to);
        ASSERT_STR_EQ(out[0][j].route, out[1][j].route);
        ASSERT_STR_EQ(out[0][j].text, out[1][j].text);
        ASSERT_STR_EQ(out[0][j].in_reply_to, out[1][j].in_reply_to);
        ASSERT_EQ(out[0][j].at, out[1][j].at);
        free(out[0][j].text);
        free(out[1][j].text);
      }
      total += n[0];
      f.before_id = next[0];
    } while (next[0] != 0 && total < 100);
    if (i == 0) ASSERT_EQ(total, 21);
  }
  both_close(&b);
}

/* ---- due work ------------------------------------------------------------------ */

KK_TEST(store_pg_sms_due_answers_as_sqlite) {
  struct both b;
  both_open(&b);
  for (int64_t id = 1; id <= 30; id++)
    add_msg(&b, id, 1, "79001111111", "accepted", NULL, id % 3 ? 5000 + id : 0, 0);
  both_do(&b, "UPDATE attempts SET parts_sent=5 WHERE id=20");
  int64_t after[2] = {0, 0};
  int total = 0;
  for (int round = 0; round < 20; round++) {
    struct store_due out[2][6];
    int n[2];
    for (int i = 0; i < 2; i++) {
      struct store *s = b.st[i].store;
      ASSERT_EQ(s->be->read.sms_due(s, after[i], out[i], 6, &n[i]), 0);
    }
    ASSERT_EQ(n[0], n[1]);
    for (int k = 0; k < n[0]; k++) {
      struct store_due *x = &out[0][k], *y = &out[1][k];
      ASSERT_EQ(x->id, y->id);
      ASSERT_EQ(x->attempt_id, y->attempt_id);
      ASSERT_EQ(x->account_id, y->account_id);
      ASSERT_STR_EQ(x->to, y->to);
      ASSERT_STR_EQ(x->sender, y->sender);
      ASSERT_STR_EQ(x->route, y->route);
      ASSERT_STR_EQ(x->text, y->text);
      ASSERT_EQ(x->parts_done, y->parts_done);
      ASSERT_EQ(x->due_at, y->due_at);
      ASSERT_EQ(x->expires_at, y->expires_at);
      free(x->text);
      free(y->text);
    }
    if (n[0] == 0) break;
    after[0] = after[1] = out[0][n[0] - 1].id;
    total += n[0];
  }
  ASSERT_EQ(total, 20);
  /* a row another live node holds is left out; a dead node's is back */
  pg_do(&b, "UPDATE messages SET claimed_by=999999 WHERE id=1;"
            "UPDATE messages SET claimed_by=999998 WHERE id=2");
  struct store_due d[4];
  int n;
  ASSERT_EQ(pgs(&b)->be->read.sms_due(pgs(&b), 0, d, 2, &n), 0);
  ASSERT_EQ(n, 2);
  ASSERT_EQ(d[0].id, 2);
  ASSERT_EQ(d[1].id, 4);
  for (int i = 0; i < n; i++) free(d[i].text);
  both_close(&b);
}

KK_TEST(store_pg_chan_and_wait_due_answer_as_sqlite) {
  struct both b;
  both_open(&b);
  for (int64_t id = 1; id <= 12; id++)
    add_msg(&b, id, 1, "79001111111", "accepted", NULL, 0, id % 2 ? 9000 + id : 0);
  char sql[400];
  for (int i = 1; i <= 12; i++) {
    snprintf(sql, sizeof sql,
             "INSERT INTO attempts(id,message_id,channel,status,created_at,step,address,scope,"
             "tries,due_at,try_at) VALUES(%d,%d,'%s','queued',100,1,'a%d',%d,%d,%d,%s)",
             500 + i, i, i % 3 ? "vk" : "whatsapp", i, i % 2, i % 4, 7000 + (i % 5), 
             i % 2 ? "NULL" : "6000");
    both_do(&b, sql);
  }
  both_do(&b, "UPDATE messages SET extra='{\"vk\":1}' WHERE id=4;"
              "INSERT INTO wa_windows(scope,phone,last_inbound) VALUES(0,'79001111111',4242)");
  /* channel attempts due at 7003, in (due_at, id) order, 4 at a time */
  int64_t cd[2] = {0, 0}, ci[2] = {0, 0};
  int total = 0;
  for (int round = 0; round < 10; round++) {
    struct store_chan_due out[2][4];
    int n[2];
    for (int i = 0; i < 2; i++) {
      struct store *s = b.st[i].store;
      ASSERT_EQ(s->be->read.chan_due(s, 7003, &cd[i], &ci[i], out[i], 4, &n[i]), 0);
    }
    ASSERT_EQ(n[0], n[1]);
    ASSERT_EQ(cd[0], cd[1]);
    ASSERT_EQ(ci[0], ci[1]);
    for (int k = 0; k < n[0]; k++) {
      struct store_chan_due *x = &out[0][k], *y = &out[1][k];
      ASSERT_EQ(x->attempt_id, y->attempt_id);
      ASSERT_EQ(x->msg_id, y->msg_id);
      ASSERT_EQ(x->account_id, y->account_id);
      ASSERT_EQ(x->scope, y->scope);
      ASSERT_EQ(x->chan, y->chan);
      ASSERT_STR_EQ(x->channel, y->channel);
      ASSERT_STR_EQ(x->public_id, y->public_id);
      ASSERT_STR_EQ(x->to, y->to);
      ASSERT_STR_EQ(x->address, y->address);
      ASSERT_STR_EQ(x->msg_class, y->msg_class);
      ASSERT_STR_EQ(x->text, y->text);
      ASSERT_STR_EQ(x->extra, y->extra);
      ASSERT_EQ(x->tries, y->tries);
      ASSERT_EQ(x->try_at, y->try_at);
      ASSERT_EQ(x->due_at, y->due_at);
      ASSERT_EQ(x->expires_at, y->expires_at);
      ASSERT_EQ(x->created_at, y->created_at);
      ASSERT_EQ(x->wa_inbound_at, y->wa_inbound_at);
      store_chan_due_free(x);
      store_chan_due_free(y);
    }
    total += n[0];
    if (n[0] < 4) break;
  }
  ASSERT_EQ(total, 10);   /* due_at 7000..7003: i%5 != 4 */
  /* step deadlines passed at 9009, earliest first; the next to come */
  struct store_wait_due w[2][8];
  int n[2];
  for (int i = 0; i < 2; i++) {
    struct store *s = b.st[i].store;
    ASSERT_EQ(s->be->read.wait_due(s, 9009, w[i], 8, &n[i]), 0);
    ASSERT_EQ(s->be->read.wait_next(s), 9001);
  }
  ASSERT_EQ(n[0], 5);
  ASSERT_EQ(n[0], n[1]);
  for (int k = 0; k < n[0]; k++) {
    ASSERT_EQ(w[0][k].msg_id, w[1][k].msg_id);
    ASSERT_EQ(w[0][k].step, w[1][k].step);
    ASSERT_EQ(w[0][k].wait_until, w[1][k].wait_until);
  }
  /* WhatsApp windows */
  int64_t at[2] = {0, 0};
  for (int i = 0; i < 2; i++) {
    struct store *s = b.st[i].store;
    ASSERT_EQ(s->be->read.wa_last_inbound(s, 0, "79001111111", &at[i]), 0);
    ASSERT_EQ(s->be->read.wa_last_inbound(s, 1, "79001111111", &at[i]), KK_ENOENT);
  }
  ASSERT_EQ(at[0], 4242);
  /* deadlines and attempts another node holds are left out */
  pg_do(&b, "UPDATE messages SET wait_claimed_by=999999 WHERE id=1;"
            "UPDATE attempts SET claimed_by=999999");
  struct store *s = pgs(&b);
  ASSERT_EQ(s->be->read.wait_due(s, 9009, w[0], 8, &n[0]), 0);
  ASSERT_EQ(n[0], 4);
  ASSERT_EQ(w[0][0].msg_id, 3);
  ASSERT_EQ(s->be->read.wait_next(s), 9003);
  struct store_chan_due c[4];
  int64_t z0 = 0, z1 = 0;
  ASSERT_EQ(s->be->read.chan_due(s, 7003, &z0, &z1, c, 4, &n[0]), 0);
  ASSERT_EQ(n[0], 0);
  both_close(&b);
}

/* Outbox rows: account, due_at. */
static void add_outbox(struct both *b, int id, int acc, int due) {
  char sql[400];
  snprintf(sql, sizeof sql,
           "INSERT INTO outbox(id,account_id,message_id,url,payload,tries,due_at,at,public_id,"
           "status,channel,to_number,cost,error) VALUES(%d,%d,1,'http://cb/%d','',%d,%d,%d,"
           "'m%d','delivered','sms','7900',%d,%s)",
           id, acc, id, id % 3, due, due - 1, id, id * 5, id % 2 ? "'e\\x'" : "NULL");
  both_do(b, sql);
}

KK_TEST(store_pg_outbox_due_answers_as_sqlite) {
  struct both b;
  both_open(&b);
  /* accounts 1..9: account a's rows are due at 100*a, 100*a+50 */
  int id = 1;
  for (int a = 1; a <= 9; a++) {
    add_outbox(&b, id++, a, 100 * a + 50);
    add_outbox(&b, id++, a, 100 * a);
  }
  /* accounts with rows due at 650 after each start, 3 at a time */
  static const int64_t starts[] = {0, 2, 5, 6, 9};
  for (size_t k = 0; k < sizeof starts / sizeof starts[0]; k++) {
    int64_t acc[2][3];
    int n[2];
    for (int i = 0; i < 2; i++) {
      struct store *s = b.st[i].store;
      ASSERT_EQ(s->be->read.outbox_accounts(s, 650, starts[k], acc[i], 3, &n[i]), 0);
    }
    ASSERT_EQ(n[0], n[1]);
    for (int j = 0; j < n[0]; j++) ASSERT_EQ(acc[0][j], acc[1][j]);
    if (k == 2) ASSERT_EQ(n[0], 1);   /* only account 6 */
  }
  /* one account's rows, earliest first */
  for (int64_t now = 0; now <= 800; now += 120) {
    struct store_outbox o[2][4];
    int n[2];
    for (int i = 0; i < 2; i++) {
      struct store *s = b.st[i].store;
      ASSERT_EQ(s->be->read.outbox_due(s, 3, now + 300, o[i], 4, &n[i]), 0);
    }
    ASSERT_EQ(n[0], n[1]);
    for (int j = 0; j < n[0]; j++) {
      ASSERT_EQ(o[0][j].id, o[1][j].id);
      ASSERT_EQ(o[0][j].account_id, o[1][j].account_id);
      ASSERT_STR_EQ(o[0][j].url, o[1][j].url);
      ASSERT_STR_EQ(o[0][j].payload, o[1][j].payload);
      ASSERT_EQ(o[0][j].tries, o[1][j].tries);
      ASSERT_STR_EQ(o[0][j].public_id, o[1][j].public_id);
      ASSERT_STR_EQ(o[0][j].status, o[1][j].status);
      ASSERT_STR_EQ(o[0][j].channel, o[1][j].channel);
      ASSERT_STR_EQ(o[0][j].to, o[1][j].to);
      ASSERT_EQ(o[0][j].at, o[1][j].at);
      ASSERT_EQ(o[0][j].cost, o[1][j].cost);
      ASSERT_EQ(o[0][j].has_error, o[1][j].has_error);
      ASSERT_STR_EQ(o[0][j].error, o[1][j].error);
      for (int i = 0; i < 2; i++) {
        free(o[i][j].url);
        free(o[i][j].payload);
      }
    }
  }
  /* a row another node holds is left out */
  pg_do(&b, "UPDATE outbox SET claimed_by=999999 WHERE id=6");
  struct store_outbox o[4];
  int n;
  ASSERT_EQ(pgs(&b)->be->read.outbox_due(pgs(&b), 3, 1000, o, 4, &n), 0);
  ASSERT_EQ(n, 1);
  ASSERT_EQ(o[0].id, 5);
  free(o[0].url);
  free(o[0].payload);
  both_close(&b);
}

/* The claims the loop thread makes read and claim through its own
   connection (the writer's is its thread's alone): rows it gets are
   marked as this node's, rows another node holds are not handed out. */
KK_TEST(store_pg_claims_on_the_loop_thread_mark_rows_as_this_nodes) {
  struct both b;
  both_open(&b);
  for (int64_t id = 1; id <= 6; id++)
    add_msg(&b, id, 1, "79001111111", "accepted", NULL, 5000 + id, id <= 3 ? 9000 + id : 0);
  pg_do(&b, "UPDATE messages SET claimed_by=999999 WHERE id=2;"
            "UPDATE messages SET wait_claimed_by=999999 WHERE id=3");
  struct store *s = pgs(&b);
  int64_t node = PG(s)->node_id, after = 0;
  struct store_due d[8];
  int n, more;
  ASSERT_EQ(store_sms_claim(s, &after, 30000, d, 8, &n, &more), 0);
  ASSERT_EQ(n, 5);
  ASSERT_EQ(more, 0);
  for (int i = 0; i < n; i++) {
    ASSERT(d[i].id != 2);
    free(d[i].text);
  }
  char sql[200];
  snprintf(sql, sizeof sql, "SELECT COUNT(*) FROM messages WHERE claimed_by=%lld",
           (long long)node);
  PGresult *r = tmp_pg_exec(b.pg, sql);
  ASSERT(r != NULL);
  ASSERT_STR_EQ(PQgetvalue(r, 0, 0), "5");
  PQclear(r);
  struct store_wait_due w[4];
  int64_t next;
  ASSERT_EQ(store_wait_claim(s, 9010, w, 4, &n, &next), 0);
  ASSERT_EQ(n, 2);
  ASSERT_EQ(w[0].msg_id, 1);
  ASSERT_EQ(w[1].msg_id, 2);
  /* claimed again by the same node: granted again (its lease renewed) */
  ASSERT_EQ(store_wait_claim(s, 9010, w, 4, &n, &next), 0);
  ASSERT_EQ(n, 2);
  both_close(&b);
}

/* ---- the schema -------------------------------------------------------------------- */

KK_TEST(store_pg_reads_have_their_indexes) {
  struct both b;
  both_open(&b);
  static const char *const want[] = {
      "attempts_message:message_id, id", "attempts_due:due_at, id",
      "messages_campaign:account_id, campaign, id", "outbox_account:account_id, due_at",
      "messages_to:to_number, id", "inbound_account_from:account_id, from_number, id",
  };
  for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
    char name[64], sql[300];
    snprintf(name, sizeof name, "%.*s", (int)(strchr(want[i], ':') - want[i]), want[i]);
    snprintf(sql, sizeof sql,
             "SELECT indexdef FROM pg_indexes WHERE indexname='%s'", name);
    PGresult *r = tmp_pg_exec(b.pg, sql);
    ASSERT(r != NULL && PQntuples(r) == 1);
    if (strstr(PQgetvalue(r, 0, 0), strchr(want[i], ':') + 1) == NULL)
      kk_test_fail(__FILE__, __LINE__, "%s: %s", name, PQgetvalue(r, 0, 0));
    PQclear(r);
  }
  both_close(&b);
}
