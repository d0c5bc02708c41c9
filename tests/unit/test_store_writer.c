/*
 * test_store_writer.c - the store's backend-neutral writer against a fake
 * backend (tests/lib/store_fake.c): group commit, an operation that fails
 * in its savepoint, notes handed out only after a commit, kept operations
 * tried again after a lock, and giving up. No database takes part, which
 * also shows that the writer needs none.
 */
#include <string.h>
#include <uv.h>

#include "core/kk_err.h"
#include "kk_test.h"
#include "lib/store_fake.h"

struct wenv {
  uv_loop_t loop;
  uv_timer_t tick;
  struct store *s;
  int ndone, nfailed, nnotes;
};

static void on_tick(uv_timer_t *t) { (void)t; }

static void wopen(struct wenv *e) {
  memset(e, 0, sizeof *e);
  ASSERT_EQ(uv_loop_init(&e->loop), 0);
  uv_timer_init(&e->loop, &e->tick);
  uv_timer_start(&e->tick, on_tick, 5, 5);
  struct store_opts o = {.dir = "/nonexistent"};
  ASSERT_EQ(store_open_with(&e->loop, &o, &store_fake_backend, &e->s), 0);
}

static void wclose(struct wenv *e) {
  store_close(e->s);
  uv_close((uv_handle_t *)&e->tick, NULL);
  uv_run(&e->loop, UV_RUN_DEFAULT);
  ASSERT_EQ(uv_loop_close(&e->loop), 0);
}

/* Runs the loop until want operations are done (10 s at most). */
static void wwait(struct wenv *e, int want) {
  uint64_t until = uv_now(&e->loop) + 10000;
  while (e->ndone < want && uv_now(&e->loop) < until) uv_run(&e->loop, UV_RUN_ONCE);
  ASSERT_EQ(e->ndone, want);
}

static void on_done(void *arg, int rc) {
  struct wenv *e = arg;
  e->ndone++;
  if (rc != 0) e->nfailed++;
}

static void on_notes(void *ud, const struct store_note *notes, int n) {
  (void)notes;
  ((struct wenv *)ud)->nnotes += n;
}

/* An operation's body: one note, and the rc its data asks for. */
static int exec_fake(struct store *s, struct store_op *op) {
  STORE_FAKE(s)->ops_in_last_batch++;
  note(s, STORE_NOTE_WAIT, 1, 0, 0);
  return op->data ? *(int *)op->data : 0;
}

static void submit(struct wenv *e, const int *rc, int atomic, int keep) {
  struct store_op *op = store_op_new(exec_fake, on_done, e, (void *)rc, 1);
  if (atomic) store_atomic(op);
  if (keep) store_keep(op);
  store_submit(e->s, op);
}

KK_TEST(store_writer_group_commits_against_a_fake_backend) {
  struct wenv e;
  wopen(&e);
  ASSERT_EQ(store_subscribe(e.s, on_notes, &e), 0);
  for (int i = 0; i < 200; i++) submit(&e, NULL, 0, 0);
  wwait(&e, 200);
  struct store_fake *f = STORE_FAKE(e.s);
  ASSERT_EQ(e.nfailed, 0);
  ASSERT_EQ(e.nnotes, 200);
  ASSERT(f->batches_committed >= 1 && f->batches_committed <= 200);
  ASSERT_EQ(f->begins, f->commits);
  ASSERT_EQ(f->rollbacks, 0);
  ASSERT_EQ(f->savepoints, 0);       /* plain operations need none */
  struct store_stats st;
  store_get_stats(e.s, &st);
  ASSERT_EQ((int)st.ops, 200);
  ASSERT_EQ((int)st.commits, f->commits);
  wclose(&e);
}

KK_TEST(store_writer_rolls_back_a_failed_atomic_op_alone) {
  struct wenv e;
  wopen(&e);
  ASSERT_EQ(store_subscribe(e.s, on_notes, &e), 0);
  static const int exists = KK_EEXIST;
  submit(&e, NULL, 1, 0);
  submit(&e, &exists, 1, 0);
  submit(&e, NULL, 1, 0);
  wwait(&e, 3);
  struct store_fake *f = STORE_FAKE(e.s);
  ASSERT_EQ(e.nfailed, 1);
  ASSERT_EQ(e.nnotes, 2);            /* the failed one's note went with it */
  ASSERT_EQ(f->savepoints, 3);
  ASSERT_EQ(f->releases, 3);
  ASSERT_EQ(f->rollbacks_to, 1);
  ASSERT(f->undone >= 1);
  ASSERT_EQ(f->rollbacks, 0);
  wclose(&e);
}

KK_TEST(store_writer_tries_kept_ops_again_after_a_lock) {
  struct wenv e;
  wopen(&e);
  ASSERT_EQ(store_subscribe(e.s, on_notes, &e), 0);
  struct store_fake *f = STORE_FAKE(e.s);
  f->fail_fault = STORE_FAULT_BUSY;
  f->fail_commits = 2;
  submit(&e, NULL, 0, 1);            /* kept: tried until it commits */
  submit(&e, NULL, 0, 0);            /* not kept: fails with the first try */
  wwait(&e, 2);
  ASSERT_EQ(e.nfailed, 1);
  ASSERT_EQ(e.nnotes, 1);            /* only the committed try's note */
  ASSERT_EQ(f->commits, 3);
  ASSERT_EQ(f->rollbacks, 2);
  ASSERT_EQ(f->batches_committed, 1);
  ASSERT_EQ(store_degraded(e.s), 0);
  struct store_stats st;
  store_get_stats(e.s, &st);
  ASSERT_EQ((int)st.errors_busy, 2);
  wclose(&e);
}

KK_TEST(store_writer_gives_up_on_kept_ops_when_told) {
  struct wenv e;
  wopen(&e);
  struct store_fake *f = STORE_FAKE(e.s);
  f->fail_fault = STORE_FAULT_IO;
  f->fail_commits = 1000000;
  submit(&e, NULL, 0, 1);
  uint64_t until = uv_now(&e.loop) + 10000;
  while (!store_degraded(e.s) && uv_now(&e.loop) < until) uv_run(&e.loop, UV_RUN_ONCE);
  ASSERT_EQ(store_degraded(e.s), 1);
  ASSERT_EQ(e.ndone, 0);             /* still kept */
  store_give_up(e.s);
  wwait(&e, 1);
  ASSERT_EQ(e.nfailed, 1);
  wclose(&e);
}

/* Urgent operations (a stream message's insert) go ahead of the others
   queued before them, in their own order. The writer is held in a first
   operation while the rest is queued. */
struct order_rec {
  int seq[512];
  int batch[512];   /* the commits before each one's */
  int n;
  _Atomic int started, go;
};
static struct order_rec order_rec;

static int exec_order(struct store *s, struct store_op *op) {
  int id = *(int *)op->data;
  if (id < 0) {
    order_rec.started = 1;
    while (!order_rec.go) uv_sleep(1);
  }
  if (order_rec.n < 512) {
    order_rec.batch[order_rec.n] = STORE_FAKE(s)->batches_committed;
    order_rec.seq[order_rec.n++] = id;
  }
  return 0;
}

KK_TEST(store_writer_puts_urgent_ops_ahead) {
  struct wenv e;
  wopen(&e);
  static int ids[404];
  memset(&order_rec, 0, sizeof order_rec);
  ids[403] = -1;
  store_submit(e.s, store_op_new(exec_order, on_done, &e, &ids[403], 1));
  while (!order_rec.started) uv_sleep(1);
  for (int i = 0; i < 403; i++) {
    ids[i] = i;
    struct store_op *op = store_op_new(exec_order, on_done, &e, &ids[i], 1);
    op->weight = i < 400 ? 100 : 1;
    if (i >= 400) store_urgent(op);
    store_submit(e.s, op);
  }
  order_rec.go = 1;
  wwait(&e, 404);
  ASSERT_EQ(order_rec.n, 404);
  /* the blocker, then the urgent ones in their order, then the others in theirs */
  ASSERT_EQ(order_rec.seq[0], -1);
  for (int i = 0; i < 3; i++) ASSERT_EQ(order_rec.seq[1 + i], 400 + i);
  for (int i = 0; i < 400; i++) ASSERT_EQ(order_rec.seq[4 + i], i);
  wclose(&e);
}

/* Urgent operations of several tenants are taken in turns by rows: a
   tenant's single insert goes ahead of another tenant's queued batches,
   each tenant's own stay in their order, and while tenants mix a batch of
   urgent ones stays short (the single one commits without the batches). */
KK_TEST(store_writer_takes_tenants_urgent_ops_in_turns) {
  struct wenv e;
  wopen(&e);
  static int ids[8];
  memset(&order_rec, 0, sizeof order_rec);
  ids[0] = -1;
  store_submit(e.s, store_op_new(exec_order, on_done, &e, &ids[0], 1));
  while (!order_rec.started) uv_sleep(1);
  /* tenant 1: three batches of 1,000 messages; tenant 2: one message,
     then another batch of tenant 1, then another message of tenant 2 */
  const int64_t tenant[] = {0, 1, 1, 1, 2, 1, 2};
  const int weight[] = {0, 2000, 2000, 2000, 2, 2000, 2};
  for (int i = 1; i < 7; i++) {
    ids[i] = i;
    struct store_op *op = store_urgent(store_op_new(exec_order, on_done, &e, &ids[i], 1));
    op->weight = weight[i];
    op->tenant = tenant[i];
    store_submit(e.s, op);
  }
  order_rec.go = 1;
  wwait(&e, 7);
  ASSERT_EQ(order_rec.n, 7);
  const int want[] = {-1, 4, 6, 1, 2, 3, 5};
  for (int i = 0; i < 7; i++) ASSERT_EQ(order_rec.seq[i], want[i]);
  /* tenant 2's two singles commit together, apart from tenant 1's batches */
  ASSERT_EQ(order_rec.batch[1], order_rec.batch[2]);
  ASSERT(order_rec.batch[3] > order_rec.batch[2]);
  wclose(&e);
}
