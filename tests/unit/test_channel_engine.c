/*
 * test_channel_engine.c - pieces of the channel engine that run without a
 * store: the due queue (each attempt taken once, in order, through growth
 * and deletions), and the senders of external channels (SMS goes to the
 * sender given for it; a channel the engine sends itself takes none), and
 * the bound of the ready queue.
 */
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "channel/chan_engine.h"
#include "channel/chan_engine_int.h"
#include "channel/chan_ready.h"
#include "core/kk_buf.h"
#include "core/kk_err.h"
#include "kk_test.h"

KK_TEST(channel_ready_once_in_order) {
  struct chan_ready r;
  chan_ready_init(&r);
  /* More than the first table and ring hold, so both grow. */
  for (int64_t id = 1; id <= 5000; id++) ASSERT_EQ(chan_ready_push(&r, id * 7919), 1);
  ASSERT_EQ(chan_ready_push(&r, 7919), 0);          /* queued already */
  ASSERT_EQ((int64_t)r.len, 5000);
  for (int64_t id = 1; id <= 5000; id++) ASSERT_EQ(chan_ready_pop(&r), id * 7919);
  /* Popped but not forgotten: still taken (being sent). */
  ASSERT_EQ(chan_ready_push(&r, 7919), 0);
  ASSERT(chan_ready_has(&r, 5000 * 7919));
  for (int64_t id = 1; id <= 5000; id += 2) chan_ready_forget(&r, id * 7919);
  /* Deletions keep every other probe chain whole. */
  for (int64_t id = 1; id <= 5000; id++) ASSERT_EQ(chan_ready_has(&r, id * 7919), id % 2 == 0);
  ASSERT_EQ(chan_ready_push(&r, 7919), 1);
  ASSERT_EQ((int64_t)r.nknown, 2501);
  chan_ready_forget(&r, 123456789);                  /* unknown: nothing */
  ASSERT_EQ((int64_t)r.nknown, 2501);
  chan_ready_fini(&r);
}

struct seen {
  int64_t submitted[4];
  int nsub;
  int64_t cancelled;
  int stopped;
};

static void fake_submit(void *ud, struct store_due *row) {
  struct seen *s = ud;
  if (s->nsub < 4) s->submitted[s->nsub++] = row->id;
}

/* The step of message msg_id on channel ch, as the store's note hands it. */
static void submit(struct chan_engine *e, enum kk_chan ch, int64_t msg_id) {
  struct store_due row = {.id = msg_id};
  chan_engine_submit(e, ch, &row);
}

static void fake_cancel(void *ud, int64_t attempt_id) { ((struct seen *)ud)->cancelled = attempt_id; }

static void on_stopped(void *ud) { ((struct seen *)ud)->stopped = 1; }

KK_TEST(channel_engine_external_sender) {
  uv_loop_t loop;
  ASSERT_EQ(uv_loop_init(&loop), 0);
  struct chan_engine *e = chan_engine_new(&loop, NULL, NULL);
  ASSERT(e != NULL);
  struct seen s;
  memset(&s, 0, sizeof s);
  struct chan_sender snd = {.submit = fake_submit, .cancel = fake_cancel, .ud = &s};
  /* Only a driver that says it is external takes a sender. */
  ASSERT_EQ(chan_engine_sender(e, "vk", &snd), KK_EINVAL);
  ASSERT_EQ(chan_engine_sender(e, "fax", &snd), KK_EINVAL);
  submit(e, KK_CHAN_SMS, 1);                   /* none yet: dropped */
  ASSERT_EQ(chan_engine_sender(e, "sms", &snd), 0);
  submit(e, KK_CHAN_SMS, 41);
  submit(e, KK_CHAN_SMS, 42);
  submit(e, KK_CHAN_VK, 43);                   /* not external: no sender */
  chan_engine_cancel(e, KK_CHAN_SMS, 77);
  ASSERT_EQ(s.nsub, 2);
  ASSERT_EQ(s.submitted[0], 41);
  ASSERT_EQ(s.submitted[1], 42);
  ASSERT_EQ(s.cancelled, 77);
  /* Nothing was sent, so the metrics name no channel. */
  struct kk_buf b;
  kk_buf_init(&b, 1 << 16);
  chan_engine_metrics(e, &b);
  ASSERT(b.p != NULL);
  ASSERT(strstr(b.p, "channel=\"") == NULL);
  ASSERT(strstr(b.p, "kaskad_channel_inflight 0") != NULL);
  kk_buf_fini(&b);
  chan_engine_stop(e, on_stopped, &s);
  submit(e, KK_CHAN_SMS, 44);                  /* stopping: dropped */
  ASSERT_EQ(s.nsub, 2);
  while (!s.stopped) uv_run(&loop, UV_RUN_ONCE);
  chan_engine_free(e);
  ASSERT_EQ(uv_loop_close(&loop), 0);
}

/* The ready queue holds at most CHAN_READY_MAX rows; the rest stay due in
   the store for a claim once the queue has drained. */
KK_TEST(channel_engine_ready_queue_is_bounded) {
  uv_loop_t loop;
  ASSERT_EQ(uv_loop_init(&loop), 0);
  struct chan_engine *e = chan_engine_new(&loop, NULL, NULL);
  ASSERT(e != NULL);
  for (int64_t id = 1; id <= CHAN_READY_MAX + 10; id++) {
    struct store_chan_due row;
    memset(&row, 0, sizeof row);
    row.attempt_id = id;
    row.text = strdup("hi");
    chan_engine_due(e, &row, 0, 1);
    free(row.text);  /* NULL when the queue took it */
  }
  ASSERT_EQ(e->ready.len, CHAN_READY_MAX);
  ASSERT_EQ(e->left_due, 1);
  struct seen s;
  memset(&s, 0, sizeof s);
  chan_engine_stop(e, on_stopped, &s);
  while (!s.stopped) uv_run(&loop, UV_RUN_ONCE);
  chan_engine_free(e);
  ASSERT_EQ(uv_loop_close(&loop), 0);
}
