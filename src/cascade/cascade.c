/*
 * cascade.c - the notes router and the step deadlines (see cascade.h).
 *
 * Notes come after each commit; the router passes them on with the rows
 * they carry, without reading anything. Deadlines: one timer, armed for
 * the earliest deadline a note announced, and a slow poll of the store's
 * deadlines (claims) as a safety net.
 */
#include "cascade/cascade.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/kk_buf.h"
#include "core/kk_err.h"
#include "core/kk_log.h"
#include "core/kk_mem.h"
#include "dispatch/dispatch.h"

#define LOGCTX "cascade"
#define SCAN_MAX 512           /* deadlines read at once */
#define POLL_MS 500            /* safety-net poll of the deadline index */

struct cascade {
  uv_loop_t *loop;
  struct store *store;
  struct dispatch *dispatch;
  struct chan_engine *engine;
  uv_timer_t wait_timer;
  uv_timer_t poll_timer;
  int64_t wait_armed;            /* deadline the wait timer is set for, 0 none */
  int waits_pending;             /* deadline operations not yet committed */
  int stopping;
  int engine_stopped;
  int closing;                   /* handles still to close */
  void (*stop_done)(void *);
  void *stop_ud;
  struct store_wait_due waits[SCAN_MAX];
};

static void pump_waits(struct cascade *c);
static void maybe_close(struct cascade *c);
static void on_wait_timer(uv_timer_t *t) { pump_waits(t->data); }

/* ---- deadlines ---------------------------------------------------------------- */

static void on_timeout_stored(void *arg, int rc) {
  struct cascade *c = arg;
  if (rc) kk_error(LOGCTX, "step deadline not stored: %s", kk_strerror(rc));
  if (--c->waits_pending > 0) return;
  if (c->stopping)
    maybe_close(c);
  else
    pump_waits(c);
}

static void arm_wait(struct cascade *c, int64_t at) {
  if (c->stopping || at <= 0) return;
  if (c->wait_armed && c->wait_armed <= at) return;
  c->wait_armed = at;
  int64_t delay = at - store_now_ms();
  uv_timer_start(&c->wait_timer, on_wait_timer, delay > 0 ? (uint64_t)delay : 0, 0);
}

static void pump_waits(struct cascade *c) {
  if (c->stopping || c->waits_pending > 0) return;
  c->wait_armed = 0;
  int64_t now = store_now_ms();
  int n = 0;
  int64_t next = 0;
  if (store_wait_claim(c->store, now, c->waits, SCAN_MAX, &n, &next) != 0) return;
  for (int i = 0; i < n; i++) {
    c->waits_pending++;
    store_step_timeout(c->store, c->waits[i].msg_id, c->waits[i].step, now, on_timeout_stored, c);
  }
  if (n == 0) arm_wait(c, next);
}

static void on_poll(uv_timer_t *t) {
  struct cascade *c = t->data;
  if (c->wait_armed == 0) pump_waits(c);
}

/* ---- notes from the store -------------------------------------------------- */

/* Channel settings committed (text NULL: deleted) reach the engine's cache. */
static void cfg_noted(struct cascade *c, int64_t account_id, const struct store_note_cfg *n) {
  struct chan_engine *e = c->engine;
  if (strcmp(n->name, "policy") == 0) return;   /* the account's rules (accept_rules.h) */
  if (n->text == NULL) {
    chan_settings_put(e, account_id, n->name, NULL);
    return;
  }
  json_t *o = json_loads(n->text, 0, NULL);
  struct chan_cfg cfg;
  char err[160];
  const char *field;
  if (o == NULL || chan_settings_parse(n->name, o, &cfg, err, sizeof err, &field) != 0)
    kk_error(LOGCTX, "%s settings as stored are unusable and were not changed", n->name);
  else
    chan_settings_put(e, account_id, n->name, &cfg);
  json_decref(o);
}

static void on_notes(void *ud, const struct store_note *notes, int n) {
  struct cascade *c = ud;
  if (c->stopping) return;
  int64_t now = store_now_ms();
  for (int i = 0; i < n; i++) {
    const struct store_note *t = &notes[i];
    switch (t->kind) {
    case STORE_NOTE_SMS_NEW:   /* its row came with the note */
      chan_engine_submit_new(c->engine, KK_CHAN_SMS, t->due);
      break;
    case STORE_NOTE_SMS:       /* so did this one's, unless it ended already */
      if (t->due) chan_engine_submit(c->engine, KK_CHAN_SMS, t->due);
      break;
    case STORE_NOTE_CHANNEL:
      chan_engine_due(c->engine, t->chan, t->at, now);
      break;
    case STORE_NOTE_CHANNEL_END:
      chan_engine_ended(c->engine, t->attempt_id);
      break;
    case STORE_NOTE_WAIT:
      arm_wait(c, t->at);
      break;
    case STORE_NOTE_SMS_CANCEL:
      chan_engine_cancel(c->engine, KK_CHAN_SMS, t->attempt_id);
      break;
    case STORE_NOTE_CHANNEL_CFG:
      cfg_noted(c, t->account_id, t->cfg);
      break;
    default:   /* routes, keys, accounts: other modules' */
      break;
    }
  }
  chan_engine_kick(c->engine);
}

/* ---- life cycle ----------------------------------------------------------------- */

/* The SMS channel's sender: dispatch/ submits its steps over SMPP. */
static int sms_sender(struct chan_engine *e, struct dispatch *d) {
  struct chan_sender s;
  dispatch_sender(d, &s);
  return chan_engine_sender(e, "sms", &s);
}

struct cascade *cascade_new(uv_loop_t *loop, struct store *store, struct dispatch *dispatch,
                            const struct chan_engine_opts *opts) {
  struct chan_engine *e = chan_engine_new(loop, store, opts);
  if (e == NULL) return NULL;
  if (dispatch && sms_sender(e, dispatch) != 0) kk_warnx(LOGCTX, "no SMS driver to send through");
  /* Freed by cascade_free(). */
  struct cascade *c = kk_xcalloc(1, sizeof *c);
  c->loop = loop;
  c->store = store;
  c->dispatch = dispatch;
  c->engine = e;
  uv_timer_init(loop, &c->wait_timer);
  uv_timer_init(loop, &c->poll_timer);
  c->wait_timer.data = c->poll_timer.data = c;
  store_subscribe(store, on_notes, c);
  return c;
}

int cascade_start(struct cascade *c) {
  if (chan_engine_start(c->engine) != 0) return KK_ESTORE;
  uv_timer_start(&c->wait_timer, on_wait_timer, 0, 0);
  uv_timer_start(&c->poll_timer, on_poll, POLL_MS, POLL_MS);
  return 0;
}

void cascade_clock_moved(struct cascade *c) {
  int64_t now = store_now_ms();
  chan_engine_due(c->engine, NULL, now, now);
  if (!c->stopping) uv_timer_start(&c->wait_timer, on_wait_timer, 0, 0);
}

int cascade_busy(const struct cascade *c) {
  return chan_engine_busy(c->engine) + c->waits_pending;
}

struct chan_engine *cascade_engine(struct cascade *c) { return c ? c->engine : NULL; }

static void on_closed(uv_handle_t *h) {
  struct cascade *c = h->data;
  if (--c->closing > 0) return;
  if (c->stop_done) c->stop_done(c->stop_ud);
}

/* Once the engine has stopped and no deadline waits for its commit, closes
   the timers. */
static void maybe_close(struct cascade *c) {
  if (!c->stopping || !c->engine_stopped || c->waits_pending > 0 || c->closing) return;
  c->closing = 2;
  uv_close((uv_handle_t *)&c->wait_timer, on_closed);
  uv_close((uv_handle_t *)&c->poll_timer, on_closed);
}

static void on_engine_stopped(void *ud) {
  struct cascade *c = ud;
  c->engine_stopped = 1;
  maybe_close(c);
}

void cascade_stop(struct cascade *c, void (*done)(void *ud), void *ud) {
  if (c->stopping) return;
  c->stopping = 1;
  c->stop_done = done;
  c->stop_ud = ud;
  store_unsubscribe(c->store, on_notes, c);
  uv_timer_stop(&c->wait_timer);
  uv_timer_stop(&c->poll_timer);
  chan_engine_stop(c->engine, on_engine_stopped, c);
}

void cascade_free(struct cascade *c) {
  if (c == NULL) return;
  chan_engine_free(c->engine);
  free(c);
}

/* ---- metrics ---------------------------------------------------------------------- */

/* Counters of the cascade per channel, as the store keeps them. */
static void attempts_metrics(const struct store_cascade_stats *s, struct kk_buf *o) {
  kk_buf_puts(o, "# HELP kaskad_cascade_attempts_total Cascade attempts by channel and outcome.\n"
                 "# TYPE kaskad_cascade_attempts_total counter\n");
  for (int i = 0; i < KK_CHAN_COUNT; i++) {
    if (!s->seen[i]) continue;
    const char *ch = kk_chan_name(i);
    const struct {
      const char *name;
      uint64_t v;
    } rows[] = {{"started", s->started[i]}, {"skipped", s->skipped[i]}, {"sent", s->sent[i]},
                {"delivered", s->delivered[i]}, {"read", s->read[i]}, {"failed", s->failed[i]},
                {"timeout", s->timeout[i]}};
    for (size_t r = 0; r < sizeof rows / sizeof rows[0]; r++)
      kk_buf_printf(o, "kaskad_cascade_attempts_total{channel=\"%s\",outcome=\"%s\"} %llu\n", ch,
                    rows[r].name, (unsigned long long)rows[r].v);
  }
}

/* A counter with one line per channel the store has seen. */
static void channel_counter(struct kk_buf *o, const char *name, const char *help,
                            const unsigned char *seen, const uint64_t *v) {
  kk_buf_printf(o, "# HELP %s %s\n# TYPE %s counter\n", name, help, name);
  for (int i = 0; i < KK_CHAN_COUNT; i++)
    if (seen[i])
      kk_buf_printf(o, "%s{channel=\"%s\"} %llu\n", name, kk_chan_name(i),
                    (unsigned long long)v[i]);
}

void cascade_metrics(struct cascade *c, struct kk_buf *o) {
  chan_engine_metrics(c->engine, o);
  struct store_cascade_stats s;
  store_get_cascade_stats(c->store, &s);
  attempts_metrics(&s, o);
  channel_counter(o, "kaskad_cascade_fallthrough_total", "Steps that passed on to the next.",
                  s.seen, s.fallthrough);
  channel_counter(o, "kaskad_cascade_late_statuses_total", "Statuses after their step ended.",
                  s.seen, s.late);
  kk_buf_printf(o,
                "# HELP kaskad_cascade_delivered_twice_total Messages that reached a person on "
                "a second channel too.\n# TYPE kaskad_cascade_delivered_twice_total counter\n"
                "kaskad_cascade_delivered_twice_total %llu\n"
                "# HELP kaskad_cascades_finished_total Messages whose cascade has ended.\n"
                "# TYPE kaskad_cascades_finished_total counter\n"
                "kaskad_cascades_finished_total %llu\n"
                "# HELP kaskad_money_charge_capped_total Charges above what was left of their "
                "message's hold, taken at the hold.\n"
                "# TYPE kaskad_money_charge_capped_total counter\n"
                "kaskad_money_charge_capped_total %llu\n",
                (unsigned long long)s.delivered_twice, (unsigned long long)s.finished,
                (unsigned long long)s.charges_capped);
}
