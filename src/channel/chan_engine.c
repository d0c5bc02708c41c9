/*
 * chan_engine.c - the channel engine (see chan_engine.h): its life cycle,
 * the pump that turns due attempts into sends (chan_send.c), the reads of
 * the store's due index, and the engine's metrics.
 *
 * Work comes from the store in two ways: the rows the notes router hands
 * over after a commit (chan_engine_due, chan_engine_submit) and claims of
 * the store's due attempts (at start, when retries come due, and by a slow
 * poll as a safety net). Nothing is read from the store to send.
 */
#include "channel/chan_engine.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "channel/chan_engine_int.h"
#include "core/kk_buf.h"
#include "core/kk_err.h"
#include "core/kk_log.h"
#include "core/kk_mem.h"

#define LOGCTX CHAN_LOGCTX
#define POLL_MS 500            /* safety-net poll of the due index */

static void pump_sends(struct chan_engine *e);
static void scan_due(struct chan_engine *e);
static void maybe_close(struct chan_engine *e);
static void on_send_timer(uv_timer_t *t) { pump_sends(t->data); }
static void on_scan_timer(uv_timer_t *t) { scan_due(t->data); }

struct chan_counters *chan_engine_counters(struct chan_engine *e, const char *channel) {
  int i = chan_driver_index(channel);
  /* The last slot is spare: no driver has it (CHAN_MAX_DRIVERS > count). */
  struct chan_counters *n = &e->cnt[i >= 0 ? i : CHAN_MAX_DRIVERS - 1];
  n->used = 1;
  return n;
}

struct http_client_req chan_engine_http_req(const struct chan_engine *e, const struct chan_req *r) {
  return (struct http_client_req){
      .method = r->method,
      .url = r->url,
      .headers = (const char *const *)r->headers,
      .nheaders = r->nheaders,
      .body = r->body,
      .body_len = r->body_len,
      .timeout_ms = e->o.request_timeout_ms,
      .mail_from = r->mail_from,
      .mail_rcpt = r->mail_rcpt,
      .username = r->username,
      .password = r->password,
  };
}

void chan_engine_pump_soon(struct chan_engine *e) {
  uv_timer_start(&e->send_timer, on_send_timer, 0, 0);
}

void chan_engine_send_done(struct chan_engine *e) {
  if (!e->stopping)
    chan_engine_pump_soon(e);
  else
    maybe_close(e);
}

void chan_engine_request_done(struct chan_engine *e) {
  e->nrequests--;
  if (!e->stopping && e->ready.len > 0) chan_engine_pump_soon(e);
}

/* ---- the pump ---------------------------------------------------------------- */

/* Sends queued attempts while there is room. */
static void pump_sends(struct chan_engine *e) {
  chan_send_marked(e);
  /* Results waiting for their commit are bounded too (a slow disk slows
     sending down instead of filling memory). */
  while (!e->stopping && e->nrequests < e->o.max_inflight &&
         e->ninflight < 8 * e->o.max_inflight && e->ready.len > 0) {
    void *p;
    int64_t id = chan_ready_pop_row(&e->ready, &p);
    struct store_chan_due *row = p;
    if (row == NULL || !chan_ready_has(&e->ready, id)) {
      /* no longer due (chan_engine_ended): a status, a timeout, the end;
         or queued without its row (a claim brings it again) */
      if (row) store_chan_due_free(row);
      free(row);
      chan_ready_forget(&e->ready, id);
      continue;
    }
    chan_send_start(e, row);
    free(row);
  }
  chan_send_flush(e);
  /* Rows left in the store while the queue was full: claim them once it
     has drained to half. */
  if (e->left_due && !e->stopping && e->ready.len < CHAN_READY_MAX / 2) {
    e->left_due = 0;
    uv_timer_start(&e->scan_timer, on_scan_timer, 0, 0);
  }
}

/* Queues a copy of row (taking its text and extra) unless its attempt is
   queued or being sent already (row is then left as it is, the caller's). */
static void ready_add(struct chan_engine *e, struct store_chan_due *row) {
  if (chan_ready_has(&e->ready, row->attempt_id)) return;
  if (e->ready.len >= CHAN_READY_MAX) {
    e->left_due = 1;  /* it stays due in the store */
    return;
  }
  struct store_chan_due *k = kk_xmalloc(sizeof *k);   /* freed when popped */
  *k = *row;
  row->text = row->extra = NULL;
  if (!chan_ready_push_row(&e->ready, k->attempt_id, k)) {
    store_chan_due_free(k);
    free(k);
  }
}

/* Claims every attempt due now into the ready queue (at start, when
   retries come due, and as a slow safety net). */
static void scan_due(struct chan_engine *e) {
  if (e->stopping) return;
  if (e->rows == NULL) e->rows = kk_xcalloc(CHAN_SCAN_MAX, sizeof *e->rows);
  int64_t now = store_now_ms(), cur_due = 0, cur_id = 0;
  int n, more;
  do {
    n = more = 0;
    if (store_chan_claim(e->store, now, &cur_due, &cur_id, e->rows, CHAN_SCAN_MAX, &n, &more) != 0)
      break;
    for (int i = 0; i < n; i++) {
      ready_add(e, &e->rows[i]);
      store_chan_due_free(&e->rows[i]);   /* what ready_add did not take */
    }
  } while (more && e->ready.len < CHAN_READY_MAX);
  if (more) e->left_due = 1;
  pump_sends(e);
}

static void on_poll(uv_timer_t *t) {
  struct chan_engine *e = t->data;
  if (e->ready.len == 0) scan_due(e);
}

/* ---- what the notes router hands over ------------------------------------------ */

void chan_engine_due(struct chan_engine *e, struct store_chan_due *row, int64_t at, int64_t now) {
  if (e->stopping) return;
  if (row && at <= now) {
    ready_add(e, row);
    return;
  }
  /* A retry later (or due since the commit): a claim brings it then. */
  uint64_t delay = at > now ? (uint64_t)(at - now) : 0;
  if (!uv_is_active((uv_handle_t *)&e->scan_timer) || delay < uv_timer_get_due_in(&e->scan_timer))
    uv_timer_start(&e->scan_timer, on_scan_timer, delay, 0);
}

void chan_engine_kick(struct chan_engine *e) {
  if (!e->stopping && e->ready.len > 0) chan_engine_pump_soon(e);
}

void chan_engine_ended(struct chan_engine *e, int64_t attempt_id) {
  /* Queued: it is dropped when popped. Being sent: its result comes anyway
     (and it is not due again before that). */
  chan_ready_forget(&e->ready, attempt_id);
}

void chan_engine_submit(struct chan_engine *e, enum kk_chan ch, struct store_due *row) {
  int i = chan_driver_index_of(ch);
  if (e->stopping || i < 0 || e->senders[i].submit == NULL) return;
  e->senders[i].submit(e->senders[i].ud, row);
}

void chan_engine_submit_new(struct chan_engine *e, enum kk_chan ch, struct store_due *row) {
  int i = chan_driver_index_of(ch);
  if (e->stopping || i < 0 || e->senders[i].submit_new == NULL) return;
  e->senders[i].submit_new(e->senders[i].ud, row);
}

void chan_engine_cancel(struct chan_engine *e, enum kk_chan ch, int64_t attempt_id) {
  int i = chan_driver_index_of(ch);
  if (e->stopping || i < 0 || e->senders[i].cancel == NULL) return;
  e->senders[i].cancel(e->senders[i].ud, attempt_id);
}

/* ---- life cycle ------------------------------------------------------------------ */

struct chan_engine *chan_engine_new(uv_loop_t *loop, struct store *store,
                                    const struct chan_engine_opts *opts) {
  struct http_client *http = http_client_new(loop, 64 * 1024);
  if (http == NULL) return NULL;
  /* Freed by chan_engine_free(). */
  struct chan_engine *e = kk_xcalloc(1, sizeof *e);
  e->loop = loop;
  e->store = store;
  e->http = http;
  if (opts) e->o = *opts;
  if (e->o.public_url == NULL) e->o.public_url = "http://127.0.0.1:8080";
  if (e->o.request_timeout_ms <= 0) e->o.request_timeout_ms = 10000;
  if (e->o.max_inflight <= 0) e->o.max_inflight = 256;
  if (e->o.retry_min_ms <= 0) e->o.retry_min_ms = 1000;
  if (e->o.retry_max_ms < e->o.retry_min_ms) e->o.retry_max_ms = 300000;
  chan_ready_init(&e->ready);
  uv_timer_init(loop, &e->send_timer);
  uv_timer_init(loop, &e->scan_timer);
  uv_timer_init(loop, &e->poll_timer);
  e->send_timer.data = e->scan_timer.data = e->poll_timer.data = e;
  return e;
}

int chan_engine_sender(struct chan_engine *e, const char *channel, const struct chan_sender *s) {
  int i = chan_driver_index(channel);
  if (i < 0 || !chan_drivers(NULL)[i]->external) return KK_EINVAL;
  e->senders[i] = *s;
  return 0;
}

void chan_engine_set_due_check(struct chan_engine *e, pol_due_fn fn, void *ud) {
  e->due_fn = fn;
  e->due_ud = ud;
}

int chan_engine_start(struct chan_engine *e) {
  if (chan_settings_load(e) != 0) return KK_ESTORE;
  uv_timer_start(&e->scan_timer, on_scan_timer, 0, 0);
  uv_timer_start(&e->poll_timer, on_poll, POLL_MS, POLL_MS);
  return 0;
}

int chan_engine_busy(const struct chan_engine *e) { return e->ninflight; }

static void on_closed(uv_handle_t *h) {
  struct chan_engine *e = h->data;
  if (--e->closing > 0) return;
  if (e->stop_done) e->stop_done(e->stop_ud);
}

static void on_http_closed(void *ud) {
  struct chan_engine *e = ud;
  e->closing += 3;
  uv_close((uv_handle_t *)&e->scan_timer, on_closed);
  uv_close((uv_handle_t *)&e->send_timer, on_closed);
  uv_close((uv_handle_t *)&e->poll_timer, on_closed);
}

/* Once nothing is in flight (or the grace is over), closes libcurl. */
static void maybe_close(struct chan_engine *e) {
  if (!e->stopping || e->http == NULL || e->ninflight > 0) return;
  struct http_client *h = e->http;
  e->http = NULL;
  uv_timer_stop(&e->poll_timer);
  http_client_stop(h, on_http_closed, e);
}

static void on_grace_over(uv_timer_t *t) {
  struct chan_engine *e = t->data;
  if (e->http == NULL) return;
  if (e->ninflight > 0)
    kk_warnx(LOGCTX, "%d provider requests aborted at stop; they are sent again after a restart",
             e->ninflight);
  /* Aborted requests leave the ready set in their reply callbacks. */
  struct http_client *h = e->http;
  e->http = NULL;
  http_client_stop(h, on_http_closed, e);
}

void chan_engine_stop(struct chan_engine *e, void (*done)(void *ud), void *ud) {
  if (e->stopping) return;
  e->stopping = 1;
  e->stop_done = done;
  e->stop_ud = ud;
  uv_timer_stop(&e->send_timer);
  uv_timer_stop(&e->scan_timer);
  chan_send_drop_marked(e);
  /* Requests in flight get a short grace to finish and store their result. */
  uv_timer_start(&e->poll_timer, on_grace_over, 3000, 0);
  maybe_close(e);
}

void chan_engine_free(struct chan_engine *e) {
  if (e == NULL) return;
  chan_settings_clear(e);
  while (e->ready.len > 0) {
    void *p;
    chan_ready_pop_row(&e->ready, &p);
    if (p) store_chan_due_free(p);
    free(p);
  }
  chan_ready_fini(&e->ready);
  free(e->rows);
  free(e->try_q);
  free(e);
}

/* ---- metrics ------------------------------------------------------------------- */

void chan_engine_metrics(struct chan_engine *e, struct kk_buf *o) {
  int nd = 0;
  const struct chan_driver *const *drv = chan_drivers(&nd);
  kk_buf_puts(o, "# HELP kaskad_channel_requests_total Provider requests by channel and result.\n"
                 "# TYPE kaskad_channel_requests_total counter\n");
  for (int i = 0; i < nd; i++) {
    const struct chan_counters *n = &e->cnt[i];
    const char *c = drv[i]->name;
    if (!n->used) continue;
    kk_buf_printf(o,
                  "kaskad_channel_requests_total{channel=\"%s\",result=\"accepted\"} %llu\n"
                  "kaskad_channel_requests_total{channel=\"%s\",result=\"retry\"} %llu\n"
                  "kaskad_channel_requests_total{channel=\"%s\",result=\"failed\"} %llu\n"
                  "kaskad_channel_requests_total{channel=\"%s\",result=\"settings_error\"} %llu\n",
                  c, (unsigned long long)n->req_ok, c, (unsigned long long)n->req_retry, c,
                  (unsigned long long)n->req_failed, c, (unsigned long long)n->req_config);
  }
  kk_buf_puts(o, "# HELP kaskad_channel_callbacks_total Provider callbacks by result.\n"
                 "# TYPE kaskad_channel_callbacks_total counter\n");
  for (int i = 0; i < nd; i++) {
    const struct chan_counters *n = &e->cnt[i];
    const char *c = drv[i]->name;
    if (!n->used) continue;
    kk_buf_printf(o,
                  "kaskad_channel_callbacks_total{channel=\"%s\",result=\"applied\"} %llu\n"
                  "kaskad_channel_callbacks_total{channel=\"%s\",result=\"unmatched\"} %llu\n"
                  "kaskad_channel_callbacks_total{channel=\"%s\",result=\"verification_failed\"} %llu\n"
                  "kaskad_channel_callbacks_total{channel=\"%s\",result=\"malformed\"} %llu\n",
                  c, (unsigned long long)n->hook_applied, c, (unsigned long long)n->hook_unmatched,
                  c, (unsigned long long)n->hook_forged, c, (unsigned long long)n->hook_malformed);
  }
  kk_buf_printf(o, "# TYPE kaskad_channel_inflight gauge\nkaskad_channel_inflight %d\n",
                e->ninflight);
}
