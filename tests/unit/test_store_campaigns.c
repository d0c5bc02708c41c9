/*
 * test_store_campaigns.c - the store's contract for campaigns, the same on
 * SQLite and on PostgreSQL (store_pg_*: a fresh database on the server in
 * KASKAD_TEST_PG): settings saved only while draft, status moves only from
 * the statuses given, recipients written and set while planned (a retried
 * one stays planned with its new time and its tries; one whose message was
 * made is created even after a cancel), the figures kept by
 * variant and status in the same commit as each change (planning again,
 * cancel), the planning's batches stored with where it is after each (not
 * under another node's lease), the export read a page at a time in seq order, unknown
 * campaigns, and a campaign runner's messages inserted without the urgency
 * of a stream message's; on SQLite, the figures of a campaign's messages
 * (kept by the writer) equal a count of the messages after inserts, a
 * message's change and a refused insert in the same batches.
 */
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/kk_err.h"
#include "core/kk_log.h"
#include "kk_test.h"
#include "lib/tmp_pg.h"
#include "lib/tmp_store.h"
#include "store/store.h"
#include "store/store_campaign.h"

#define ACC 7
#define NAME "spring"
#define N 1203   /* recipients: more than two pages of the export */

struct sync {
  int done, rc;
};
static void on_sync(void *arg, int rc) {
  struct sync *y = arg;
  y->rc = rc;
  y->done = 1;
}
static int sync_wait(struct tmp_store *t, struct sync *y) {
  int rc = tmp_store_run_until(t, &y->done, 1, 20000);
  return rc ? rc : y->rc;
}

static int camp_write(struct tmp_store *t, struct store_camp_op *o) {
  struct sync y = {0, 0};
  o->account_id = ACC;
  if (!o->name[0]) snprintf(o->name, sizeof o->name, "%s", NAME);
  store_campaign_write(t->store, o, on_sync, &y);
  return sync_wait(t, &y);
}

static int move_of(struct tmp_store *t, const char *name, const char *from, const char *to) {
  struct store_camp_op o = {.kind = STORE_CAMP_STATUS, .from = from};
  snprintf(o.name, sizeof o.name, "%s", name);
  snprintf(o.to, sizeof o.to, "%s", to);
  int rc = camp_write(t, &o);
  return rc ? -1 : o.ok;
}
static int move(struct tmp_store *t, const char *from, const char *to) {
  return move_of(t, NAME, from, to);
}

/* The kept figures: the recipients of variant v (-2: any) in status s. */
struct counts {
  struct store_camp_count rows[STORE_CAMP_COUNTS_MAX];
  int n;
  char *spec;
};
static int counts_read(struct tmp_store *t, const char *name, struct counts *c) {
  struct sync y = {0, 0};
  free(c->spec);
  store_camp_counts_async(t->store, ACC, name, c->rows, STORE_CAMP_COUNTS_MAX, &c->n, &c->spec,
                          on_sync, &y);
  return sync_wait(t, &y);
}
static int64_t rcpts(const struct counts *c, int v, const char *status) {
  char key[24];
  snprintf(key, sizeof key, "r:%s", status);
  int64_t n = 0;
  for (int i = 0; i < c->n; i++)
    if ((v == -2 || c->rows[i].variant == v) && strcmp(c->rows[i].status, key) == 0)
      n += c->rows[i].n;
  return n;
}

struct seen {
  int n;
  int64_t last_seq;
  int in_order, with_vars, retried;
};
static int on_row(void *arg, const struct store_camp_export_row *x) {
  struct seen *s = arg;
  if (x->r.seq <= s->last_seq) s->in_order = 0;
  s->last_seq = x->r.seq;
  s->n++;
  if (x->r.vars && strstr(x->r.vars, "\"name\"")) s->with_vars++;
  if (x->r.tries == 1 && strcmp(x->r.reason, "no_route") == 0) s->retried++;
  return x->msg_status[0] ? KK_EINVAL : 0;   /* no message was made */
}
static int export(struct tmp_store *t, const char *name, struct seen *s) {
  struct sync y = {0, 0};
  memset(s, 0, sizeof *s);
  s->in_order = 1;
  store_camp_export_async(t->store, ACC, name, on_row, s, on_sync, &y);
  return sync_wait(t, &y);
}

/* Recipients from seq from + 1 to N, a batch at a time, each with where the
   planning is after it (the last one: running, when last). */
static void add_rows(struct tmp_store *t, int from, int last) {
  static struct store_camp_rcpt rows[STORE_CAMP_BATCH];
  for (int at = from; at < N;) {
    int k = 0;
    for (; k < STORE_CAMP_BATCH && at < N; k++, at++) {
      struct store_camp_rcpt *r = &rows[k];
      memset(r, 0, sizeof *r);
      r->seq = at + 1;
      snprintf(r->phone, sizeof r->phone, "7916%07d", at % 10000000);
      r->variant = at % 2;
      r->planned_at = 1000 + at;
      r->vars = at % 3 == 0 ? "{\"v\":{\"name\":\"Анна\"},\"a\":{}}" : NULL;
      snprintf(r->status, sizeof r->status, "planned");
    }
    struct store_camp_op o = {.kind = STORE_CAMP_ADD, .rows = rows, .n = k, .plan_slot = 1000 + at,
                              .plan_gap = 1, .finish_at = 1000 + at - 1, .last = last && at == N};
    snprintf(o.plan_after, sizeof o.plan_after, "%s", rows[k - 1].phone);
    snprintf(o.owner, sizeof o.owner, "node-a");
    ASSERT_EQ(camp_write(t, &o), 0);
    ASSERT(o.ok);
    ASSERT_EQ(o.recipients, at - from);
    ASSERT_STR_EQ(o.status, last && at == N ? "running" : "planning");
  }
}

static int camp_get(struct tmp_store *t, struct store_campaign *c) {
  struct sync y = {0, 0};
  store_campaign_get_async(t->store, ACC, NAME, c, on_sync, &y);
  return sync_wait(t, &y);
}

static void contract(struct tmp_store *t) {
  struct counts c = {0};
  struct seen s;
  ASSERT_EQ(counts_read(t, NAME, &c), KK_ENOENT);
  ASSERT_EQ(export(t, NAME, &s), KK_ENOENT);

  /* settings while draft */
  struct store_camp_op put = {.kind = STORE_CAMP_PUT,
                              .spec = "{\"audience\":{\"list\":\"b\"},\"template\":\"a\"}"};
  ASSERT_EQ(camp_write(t, &put), 0);
  ASSERT(put.ok);
  ASSERT_STR_EQ(put.status, "draft");
  ASSERT_EQ(counts_read(t, NAME, &c), 0);
  ASSERT(c.spec != NULL && strstr(c.spec, "\"list\"") != NULL);
  ASSERT_EQ(c.n, 0);
  ASSERT_EQ(export(t, NAME, &s), 0);
  ASSERT_EQ(s.n, 0);

  /* moves only from the statuses given */
  ASSERT_EQ(move(t, ",running,", "paused"), 0);
  ASSERT_EQ(move(t, ",draft,", "planning"), 1);
  struct store_camp_op again = put;
  memset(again.name, 0, sizeof again.name);
  ASSERT_EQ(camp_write(t, &again), 0);
  ASSERT(!(again.ok));   /* no longer a draft */
  ASSERT_STR_EQ(again.status, "planning");

  /* a planning stopped after its second batch: where it is, as stored */
  struct store_campaign got;
  ASSERT_EQ(camp_get(t, &got), 0);
  ASSERT_STR_EQ(got.plan_after, "");
  ASSERT_EQ(got.plan_gap, -1);
  store_campaign_fini(&got);
  add_rows(t, N - 2 * STORE_CAMP_BATCH, 0);   /* seq 204.. first: the same rows as below */
  ASSERT_EQ(camp_get(t, &got), 0);
  ASSERT_STR_EQ(got.status, "planning");
  ASSERT_EQ(got.recipients, 2 * STORE_CAMP_BATCH);
  ASSERT_EQ(got.plan_slot, 1000 + N);
  ASSERT_EQ(got.plan_gap, 1);
  ASSERT_EQ(got.finish_at, 1000 + N - 1);
  store_campaign_fini(&got);
  /* a batch under another node's lease is not stored */
  struct store_camp_op ls = {.kind = STORE_CAMP_LEASE, .at = 1, .lease_until = 9e12};
  snprintf(ls.owner, sizeof ls.owner, "node-b");
  ASSERT_EQ(camp_write(t, &ls), 0);
  ASSERT(ls.ok);
  struct store_camp_rcpt one = {.seq = 9999, .phone = "79160000000", .status = "planned"};
  struct store_camp_op theirs = {.kind = STORE_CAMP_ADD, .rows = &one, .n = 1};
  snprintf(theirs.owner, sizeof theirs.owner, "node-a");
  ASSERT_EQ(camp_write(t, &theirs), 0);
  ASSERT(!theirs.ok);
  ASSERT_STR_EQ(theirs.status, "planning");
  snprintf(ls.owner, sizeof ls.owner, "node-a");
  ls.at = 9e12 + 1;   /* theirs has run out */
  ASSERT_EQ(camp_write(t, &ls), 0);
  ASSERT(ls.ok);

  ASSERT_EQ(counts_read(t, NAME, &c), 0);
  ASSERT_EQ(rcpts(&c, -2, "planned"), 2 * STORE_CAMP_BATCH);

  /* planning from the start again drops the rows and their figures */
  ASSERT_EQ(move(t, ",planning,", "planning"), 1);
  ASSERT_EQ(camp_get(t, &got), 0);
  ASSERT_EQ(got.recipients, 0);
  ASSERT_EQ(got.plan_gap, -1);
  ASSERT_STR_EQ(got.plan_after, "");
  store_campaign_fini(&got);
  ASSERT_EQ(counts_read(t, NAME, &c), 0);
  ASSERT_EQ(rcpts(&c, -2, "planned"), 0);

  /* recipients: the figures by variant follow each write; the last batch
     makes it running */
  add_rows(t, 0, 1);
  ASSERT_EQ(counts_read(t, NAME, &c), 0);
  ASSERT_EQ(rcpts(&c, -2, "planned"), N);
  ASSERT_EQ(rcpts(&c, 0, "planned"), (N + 1) / 2);
  ASSERT_EQ(rcpts(&c, 1, "planned"), N / 2);
  ASSERT_EQ(move(t, ",planning,", "running"), 0);

  /* seq 1 created, 2 rejected, 3 refused for no route: planned later */
  struct store_camp_rcpt set[3];
  memset(set, 0, sizeof set);
  for (int i = 0; i < 3; i++) {
    set[i].seq = i + 1;
    set[i].planned_at = 1000 + i;
  }
  snprintf(set[0].status, sizeof set[0].status, "created");
  snprintf(set[0].message, sizeof set[0].message, "msg_none");
  snprintf(set[1].status, sizeof set[1].status, "rejected");
  snprintf(set[1].reason, sizeof set[1].reason, "missing_variable");
  snprintf(set[2].status, sizeof set[2].status, "planned");
  snprintf(set[2].reason, sizeof set[2].reason, "no_route");
  set[2].planned_at = 999999999;
  set[2].tries = 1;
  struct store_camp_op so = {.kind = STORE_CAMP_SET, .rows = set, .n = 3};
  ASSERT_EQ(camp_write(t, &so), 0);
  /* set again: only planned ones change (the retried one takes it) */
  set[2].tries = 2;
  snprintf(set[0].status, sizeof set[0].status, "rejected");
  struct store_camp_rcpt second[2] = {set[0], set[1]};
  struct store_camp_op so2 = {.kind = STORE_CAMP_SET, .rows = second, .n = 2};
  ASSERT_EQ(camp_write(t, &so2), 0);
  ASSERT_EQ(counts_read(t, NAME, &c), 0);
  ASSERT_EQ(rcpts(&c, 0, "created"), 1);   /* seq 1: variant 0 */
  ASSERT_EQ(rcpts(&c, 1, "rejected"), 1);  /* seq 2: variant 1 */
  ASSERT_EQ(rcpts(&c, -2, "planned"), N - 2);

  /* the due read: earliest first, the retried one last, with its tries */
  static struct store_camp_rcpt due[STORE_CAMP_BATCH];
  int n = 0;
  int64_t next = 0;
  struct sync y = {0, 0};
  store_camp_due_async(t->store, ACC, NAME, 2000000, STORE_CAMP_BATCH, due, &n, &next, on_sync,
                       &y);
  ASSERT_EQ(sync_wait(t, &y), 0);
  ASSERT_EQ(n, STORE_CAMP_BATCH);
  ASSERT_EQ(due[0].seq, 4);
  ASSERT_EQ(due[0].tries, 0);
  store_camp_rcpt_free(due, n);

  /* the export: every recipient once, in seq order, a page at a time */
  ASSERT_EQ(export(t, NAME, &s), 0);   /* seq 1's message is not stored: no state of it */
  ASSERT_EQ(s.n, N);
  ASSERT(s.in_order);
  ASSERT_EQ(s.with_vars, (N + 2) / 3);
  ASSERT_EQ(s.retried, 1);

  /* cancel: the planned ones cancelled, in the figures too */
  ASSERT_EQ(move(t, ",running,paused,", "cancelled"), 1);
  ASSERT_EQ(counts_read(t, NAME, &c), 0);
  ASSERT_EQ(rcpts(&c, -2, "planned"), 0);
  ASSERT_EQ(rcpts(&c, -2, "cancelled"), N - 2);
  /* a slice given to the accept path before the cancel: seq 4's message
     was made, so it is created (not left cancelled without it); seq 5's
     refusal and seq 6's retry leave them cancelled */
  struct store_camp_rcpt late[3];
  memset(late, 0, sizeof late);
  for (int i = 0; i < 3; i++) late[i].seq = 4 + i;
  snprintf(late[0].status, sizeof late[0].status, "created");
  snprintf(late[0].message, sizeof late[0].message, "msg_late");
  snprintf(late[1].status, sizeof late[1].status, "rejected");
  snprintf(late[1].reason, sizeof late[1].reason, "missing_variable");
  snprintf(late[2].status, sizeof late[2].status, "planned");
  snprintf(late[2].reason, sizeof late[2].reason, "no_route");
  struct store_camp_op so3 = {.kind = STORE_CAMP_SET, .rows = late, .n = 3};
  ASSERT_EQ(camp_write(t, &so3), 0);
  ASSERT_EQ(counts_read(t, NAME, &c), 0);
  ASSERT_EQ(rcpts(&c, -2, "created"), 2);
  ASSERT_EQ(rcpts(&c, 1, "created"), 1);     /* seq 4: variant 1 */
  ASSERT_EQ(rcpts(&c, -2, "rejected"), 1);   /* seq 2's still */
  ASSERT_EQ(rcpts(&c, -2, "planned"), 0);
  ASSERT_EQ(rcpts(&c, -2, "cancelled"), N - 3);
  int64_t all = 0;
  for (int i = 0; i < c.n; i++)
    if (strncmp(c.rows[i].status, "r:", 2) == 0) all += c.rows[i].n;
  ASSERT_EQ(all, N);   /* each recipient in exactly one state */
  free(c.spec);
}

/* The export reads every row (a campaign whose recipients have no message). */
static void export_pages(struct tmp_store *t) {
  struct store_camp_op put = {.kind = STORE_CAMP_PUT, .spec = "{}"};
  snprintf(put.name, sizeof put.name, "pages");
  ASSERT_EQ(camp_write(t, &put), 0);
  ASSERT_EQ(move_of(t, "pages", ",draft,", "planning"), 1);
  static struct store_camp_rcpt rows[3];
  memset(rows, 0, sizeof rows);
  struct seen s;
  for (int i = 0; i < 3; i++) {
    rows[i].seq = i + 1;
    snprintf(rows[i].phone, sizeof rows[i].phone, "790300000%02d", i & 63);
    rows[i].vars = "{\"v\":{\"name\":\"x\"}}";
    snprintf(rows[i].status, sizeof rows[i].status, "planned");
  }
  struct store_camp_op o = {.kind = STORE_CAMP_ADD, .rows = rows, .n = 3};
  snprintf(o.name, sizeof o.name, "pages");
  ASSERT_EQ(camp_write(t, &o), 0);
  ASSERT_EQ(export(t, "pages", &s), 0);
  ASSERT_EQ(s.n, 3);
  ASSERT(s.in_order);
  ASSERT_EQ(s.with_vars, 3);
  ASSERT_EQ(export(t, "nothing", &s), KK_ENOENT);
}

static void big_export(struct tmp_store *t) {
  struct store_camp_op put = {.kind = STORE_CAMP_PUT, .spec = "{}"};
  snprintf(put.name, sizeof put.name, "big");
  ASSERT_EQ(camp_write(t, &put), 0);
  ASSERT_EQ(move_of(t, "big", ",draft,", "planning"), 1);
  static struct store_camp_rcpt rows[STORE_CAMP_BATCH];
  for (int at = 0; at < N;) {
    int k = 0;
    for (; k < STORE_CAMP_BATCH && at < N; k++, at++) {
      memset(&rows[k], 0, sizeof rows[k]);
      rows[k].seq = at + 1;
      snprintf(rows[k].phone, sizeof rows[k].phone, "7916%07d", at % 10000000);
      rows[k].tries = 0;
      snprintf(rows[k].status, sizeof rows[k].status, "planned");
    }
    struct store_camp_op o = {.kind = STORE_CAMP_ADD, .rows = rows, .n = k};
    snprintf(o.name, sizeof o.name, "big");
    ASSERT_EQ(camp_write(t, &o), 0);
  }
  struct store_camp_rcpt r = {.seq = 7, .planned_at = 5};
  snprintf(r.status, sizeof r.status, "planned");
  snprintf(r.reason, sizeof r.reason, "no_route");
  r.tries = 1;
  struct store_camp_op so = {.kind = STORE_CAMP_SET, .rows = &r, .n = 1};
  snprintf(so.name, sizeof so.name, "big");
  ASSERT_EQ(camp_write(t, &so), 0);
  struct seen s;
  ASSERT_EQ(export(t, "big", &s), 0);
  ASSERT_EQ(s.n, N);
  ASSERT(s.in_order);
  ASSERT_EQ(s.retried, 1);
}

static void all_of(struct tmp_store *t) {
  contract(t);
  export_pages(t);
  big_export(t);
}

/* A campaign runner's messages (those with a variant) are not urgent:
   nobody waits for their commit, and an urgent insert keeps the writer's
   batches short for the others while the runner makes messages. A stream
   message's insert still is, with a campaign's name or without. */
static uint64_t urgent_after_insert(struct tmp_store *t, const char *id, const char *campaign,
                                    int variant) {
  int64_t now = store_now_ms();
  struct store_msg_new m = {.account_id = ACC, .public_id = id, .to = "79161234567",
                            .text = "hi", .msg_class = "service", .encoding = "gsm7",
                            .segments = 1, .route = "r1", .campaign = campaign,
                            .variant = variant, .created_at = now, .expires_at = now + 3600000};
  int want = t->ndone + 1;
  store_msg_insert(t->store, &m, 1, tmp_store_done, t);
  ASSERT_EQ(tmp_store_wait(t, want, 20000), 0);
  ASSERT_EQ(t->rc, 0);
  struct store_stats st;
  store_get_stats(t->store, &st);
  return st.urgent;
}

KK_TEST(store_campaign_messages_not_urgent) {
  kk_log_level = KK_LOG_ERROR;
  struct tmp_store t;
  ASSERT_EQ(tmp_store_open(&t, "campurgent", NULL), 0);
  uint64_t before = urgent_after_insert(&t, "msg_u1", NULL, 0);
  ASSERT_EQ(before, 1);
  ASSERT_EQ(urgent_after_insert(&t, "msg_u2", NAME, 1), before);
  ASSERT_EQ(urgent_after_insert(&t, "msg_u3", NAME, 0), before + 1);
  ASSERT_EQ(urgent_after_insert(&t, "msg_u4", NULL, 0), before + 2);
  ASSERT_EQ(tmp_store_close(&t), 0);
}

/* SQLite: the figures kept of a campaign's messages, against a count of
   the messages themselves: each (variant, channel, status) the same
   messages, cost and second deliveries, none kept that is not there. */
static const char recount_sql[] =
    "WITH kept AS (SELECT account_id,campaign,variant,channel,status,SUM(n),SUM(cost),"
    "SUM(sms_only_cost),SUM(twice),SUM(twice_msgs) FROM campaign_counts"
    " WHERE status NOT LIKE 'r:%' AND status<>'opted_out' GROUP BY 1,2,3,4,5"
    " HAVING SUM(n)<>0),"
    " counted AS (SELECT account_id,campaign,COALESCE(variant,-1),COALESCE(channel,''),status,"
    "COUNT(*),COALESCE(SUM(cost),0),COALESCE(SUM(sms_only_cost),0),"
    "COALESCE(SUM(delivered_twice),0),COALESCE(SUM(delivered_twice>0),0) FROM messages"
    " WHERE campaign IS NOT NULL GROUP BY 1,2,3,4,5)"
    " SELECT (SELECT COUNT(*) FROM (SELECT * FROM kept EXCEPT SELECT * FROM counted))"
    "+(SELECT COUNT(*) FROM (SELECT * FROM counted EXCEPT SELECT * FROM kept)),"
    " (SELECT COUNT(*) FROM kept)";
static void recount(struct tmp_store *t, int64_t *differ, int64_t *kept) {
  char path[TMP_STORE_DIR_MAX + 16];
  snprintf(path, sizeof path, "%s/kaskad.db", t->dir);
  sqlite3 *db = NULL;
  ASSERT_EQ(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
  sqlite3_stmt *st = NULL;
  ASSERT_EQ(sqlite3_prepare_v2(db, recount_sql, -1, &st, NULL), SQLITE_OK);
  ASSERT_EQ(sqlite3_step(st), SQLITE_ROW);
  *differ = sqlite3_column_int64(st, 0);
  *kept = sqlite3_column_int64(st, 1);
  sqlite3_finalize(st);
  sqlite3_close(db);
}

KK_TEST(store_campaign_message_figures_sqlite) {
  kk_log_level = KK_LOG_ERROR;
  struct tmp_store t;
  ASSERT_EQ(tmp_store_open(&t, "campfig", NULL), 0);
  int64_t now = store_now_ms();
  static char ids[6][24], keys[6][24];
  struct store_msg_new m[6];
  for (int i = 0; i < 6; i++) {
    snprintf(ids[i], sizeof ids[i], "msg_f%d", i);
    snprintf(keys[i], sizeof keys[i], "k%d", i);
    m[i] = (struct store_msg_new){.account_id = ACC, .public_id = ids[i], .idem_key = keys[i],
                                  .to = "79161234567", .text = "hi", .msg_class = "service",
                                  .encoding = "gsm7", .segments = 1, .route = "r1",
                                  .campaign = i == 5 ? NULL : NAME, .variant = i % 3,
                                  .created_at = now, .expires_at = now + 3600000,
                                  .not_before = i < 3 ? now + 3600000 : 0};
  }
  int want = t.ndone + 1;
  store_msg_insert(t.store, m, 6, tmp_store_done, &t);
  ASSERT_EQ(tmp_store_wait(&t, want, 20000), 0);
  /* the same again: refused as duplicates, nothing counted twice */
  want = t.ndone + 1;
  store_msg_insert(t.store, m, 6, tmp_store_done, &t);
  ASSERT_EQ(tmp_store_wait(&t, want, 20000), 0);
  /* one scheduled message cancelled: its status moves in the figures */
  struct store_msg_cancel c = {.account_id = ACC, .at = now};
  snprintf(c.public_id, sizeof c.public_id, "%s", ids[1]);
  want = t.ndone + 1;
  store_msg_cancel(t.store, &c, tmp_store_done, &t);
  ASSERT_EQ(tmp_store_wait(&t, want, 20000), 0);
  ASSERT(c.cancelled);
  tmp_store_db_close(&t);
  int64_t differ = -1, kept = 0;
  recount(&t, &differ, &kept);
  ASSERT_EQ(differ, 0);
  ASSERT(kept >= 3);   /* cancelled, scheduled and the others' status, by variant */
  ASSERT_EQ(tmp_store_db_open(&t, NULL), 0);
  ASSERT_EQ(tmp_store_close(&t), 0);
}

KK_TEST(store_campaigns_sqlite) {
  kk_log_level = KK_LOG_ERROR;
  struct tmp_store t;
  ASSERT_EQ(tmp_store_open(&t, "campaigns", NULL), 0);
  all_of(&t);
  ASSERT_EQ(tmp_store_close(&t), 0);
}

KK_TEST(store_pg_campaigns) {
  kk_test_need_pg();
  kk_log_level = KK_LOG_ERROR;
  struct tmp_pg db;
  ASSERT_EQ(tmp_pg_new(&db), 0);
  struct tmp_store t;
  struct store_opts o = {.store_url = db.url};
  ASSERT_EQ(tmp_store_open(&t, "pgcampaigns", &o), 0);
  all_of(&t);
  /* the rows of changes are folded into the counters by the heartbeat,
     and the figures read the same after */
  PGconn *sql = PQconnectdb(db.url);
  ASSERT(PQstatus(sql) == CONNECTION_OK);
  int64_t left = -1;
  for (int i = 0; i < 100 && left != 0; i++) {
    int never = 0;
    tmp_store_run_until(&t, &never, 1, 50);
    PGresult *r = tmp_pg_exec(sql, "SELECT count(*) FROM campaign_count_deltas");
    ASSERT(r != NULL);
    left = atoll(PQgetvalue(r, 0, 0));
    PQclear(r);
  }
  ASSERT_EQ(left, 0);
  PQfinish(sql);
  struct counts c = {0};
  ASSERT_EQ(counts_read(&t, NAME, &c), 0);
  ASSERT_EQ(rcpts(&c, -2, "cancelled"), N - 3);   /* seq 4 created after the cancel */
  ASSERT_EQ(rcpts(&c, -2, "created"), 2);
  int64_t all = 0;
  for (int i = 0; i < c.n; i++)
    if (strncmp(c.rows[i].status, "r:", 2) == 0) all += c.rows[i].n;
  ASSERT_EQ(all, N);
  free(c.spec);
  ASSERT_EQ(tmp_store_close(&t), 0);
  ASSERT_EQ(tmp_pg_drop(&db), 0);
}
