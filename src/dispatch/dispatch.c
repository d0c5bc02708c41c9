/*
 * dispatch.c - from the store to the SMSC and back (see dispatch.h): the
 * dispatcher's life, the due scan that refills it from the store, and the
 * store's notes. The files it is made of are listed in dispatch_int.h.
 */
#include "dispatch/dispatch.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/kk_log.h"
#include "core/kk_mem.h"
#include "dispatch/dispatch_int.h"

/* ---- refilling from the store ---------------------------------------------- */

static void job_from_due(struct dispatch *d, const struct store_due *due) {
  struct job *j = dispatch_job_new(d);
  j->msg_id = due->id;
  j->attempt_id = due->attempt_id;
  j->account_id = due->account_id;
  j->expires_at = due->expires_at;
  j->not_before = due->due_at;
  snprintf(j->to, sizeof j->to, "%s", due->to);
  snprintf(j->sender, sizeof j->sender, "%s", due->sender);
  snprintf(j->route, sizeof j->route, "%s", due->route);
  j->text = due->text;
  j->lane = (uint8_t)dispatch_lane_of(due->msg_class);
  snprintf(j->msg_class, sizeof j->msg_class, "%s", due->msg_class);
  /* The rules again before it goes when it waited: also when its time
     passed while kaskad was down (it comes out of the scan due at once). */
  j->recheck = !due->parts_done && pol_due_wanted(due->msg_class, due->created_at, due->due_at);
  j->price = -1;
  j->scheduled = due->scheduled && !due->parts_done;
  if (due->parts_done) {
    /* Some parts were accepted before a restart: only the rest goes out. */
    j->resumed = 1;
    j->pending = ~due->parts_done;
  }
  dispatch_job_place(d, j);
}

void dispatch_set_due_check(struct dispatch *d, pol_due_fn fn, void *ud) {
  d->due_fn = fn;
  d->due_ud = ud;
}

/* 1 when row id was already taken ahead of the scan (and forgets it);
   ids behind it are forgotten too (their rows were not due any more). */
static int taken_ahead(struct dispatch *d, int64_t id) {
  while (d->ahead_at < d->nahead && d->ahead[d->ahead_at] < id) d->ahead_at++;
  int hit = d->ahead_at < d->nahead && d->ahead[d->ahead_at] == id;
  if (hit) d->ahead_at++;
  if (d->ahead_at == d->nahead) d->ahead_at = d->nahead = 0;
  return hit;
}

static void refill(struct dispatch *d) {
  struct store_due *rows = d->scan_rows;
  if (!d->backlog || d->stopping) return;
  if (d->jobs >= d->opts.max_queued / 2) return;
  if (uv_now(d->loop) < d->scan_after) return;
  int n = 0, more = 0;
  int64_t cursor = d->cursor;
  if (store_sms_claim(d->store, &cursor, SMS_LEASE_MS, rows, SCAN_BATCH, &n, &more) != 0)
    return;
  /* Held at a row another transaction locks (it stays before the cursor,
     to be claimed once that commits): asked again a little later. */
  if (n == 0 && more && cursor == d->cursor) d->scan_after = uv_now(d->loop) + SCAN_LOCKED_MS;
  for (int i = 0; i < n; i++) {
    d->cursor = rows[i].id;
    if (d->nahead && taken_ahead(d, rows[i].id)) {
      free(rows[i].text);
      continue;
    }
    job_from_due(d, &rows[i]);
  }
  /* Rows another writer claimed are past the cursor too: they are its (a
     row only locked is not: the cursor stops before it). */
  d->cursor = cursor;
  if (!more) {
    d->backlog = 0;
    kk_debug(LOGCTX, "caught up with the store at message %lld", (long long)d->cursor);
  }
}

static void on_check(uv_check_t *h) {
  struct dispatch *d = h->data;
  refill(d);
  if (!d->backlog || d->jobs >= d->opts.max_queued / 2 || d->stopping) uv_check_stop(h);
}

/* A stream message (a code, a notice) past the cursor while the dispatcher
   catches up with the store does not wait for the scan to reach it behind a
   campaign: it is taken now and the scan skips its row. 1 when taken
   (row->text taken over). */
static int take_ahead(struct dispatch *d, struct store_due *row) {
  if (!d->backlog || dispatch_lane_of(row->msg_class) != DISPATCH_LANE_STREAM ||
      d->jobs >= d->opts.max_queued + AHEAD_MAX)
    return 0;
  if (d->ahead_at > 0 && d->ahead_at * 2 >= d->nahead) {
    memmove(d->ahead, d->ahead + d->ahead_at, (size_t)(d->nahead - d->ahead_at) * sizeof *d->ahead);
    d->nahead -= d->ahead_at;
    d->ahead_at = 0;
  }
  if (d->nahead == d->ahead_cap) {
    d->ahead_cap = d->ahead_cap ? 2 * d->ahead_cap : 256;
    d->ahead = kk_xrealloc(d->ahead, (size_t)d->ahead_cap * sizeof *d->ahead);
  }
  int i = d->nahead++;   /* kept ascending: notes may come a little out of order */
  while (i > d->ahead_at && d->ahead[i - 1] > row->id) {
    d->ahead[i] = d->ahead[i - 1];
    i--;
  }
  d->ahead[i] = row->id;
  job_from_due(d, row);
  row->text = NULL;
  return 1;
}

/* A message that was just committed with SMS as its first step (its row
   from the note; row->text is taken over). */
static void enqueue_new(struct dispatch *d, struct store_due *row) {
  if (d->stopping || row->id <= d->cursor) return;
  if (take_ahead(d, row)) return;
  if (d->backlog || d->jobs >= d->opts.max_queued) {
    /* Leave it in the store; a scan will bring it. */
    if (!d->backlog) {
      d->backlog = 1;
      uv_check_start(&d->check, on_check);
    }
    return;
  }
  d->cursor = row->id;
  job_from_due(d, row);
  row->text = NULL;
}

void dispatch_enqueue_due(struct dispatch *d, struct store_due *row) {
  /* While catching up, a scan past the cursor brings it anyway (a stream
     message is taken ahead of it). */
  if (!d->stopping && d->backlog && row->id > d->cursor && take_ahead(d, row)) return;
  if (d->stopping || (d->backlog && row->id > d->cursor)) {
    free(row->text);
    row->text = NULL;
    return;
  }
  job_from_due(d, row);
  row->text = NULL;
}

/* Ends j if it is the attempt *arg names: 1 then. */
static int cancel_job(struct job *j, void *arg) {
  if (j->attempt_id != *(const int64_t *)arg) return 0;
  j->ended = 1;
  j->pending = 0;
  return 1;
}

static int cancel_in(struct job *list, int64_t attempt_id) {
  for (struct job *j = list; j; j = j->next)
    if (cancel_job(j, &attempt_id)) return 1;
  return 0;
}

void dispatch_cancel(struct dispatch *d, int64_t attempt_id) {
  /* Rare (an SMS step with a timeout that passed): a scan is fine. Ended jobs
     are dropped where they wait; a job being submitted stops after the parts
     in flight. */
  for (struct route *r = d->routes; r; r = r->next)
    for (int l = 0; l < DISPATCH_LANE_COUNT; l++)
      if (dispatch_lq_each(&r->q[l], cancel_job, &attempt_id)) return;
  for (int i = 0; i < d->delayed.n; i++) {
    struct job *j = d->delayed.a[i];
    if (j->attempt_id != attempt_id) continue;
    /* Waiting for its time, nothing of it in flight: dropped now. */
    dispatch_dq_remove(&d->delayed, j);
    if (d->delayed.n == 0) uv_timer_stop(&d->delay_timer);
    dispatch_job_free(d, j);
    return;
  }
  if (cancel_in(d->resolving, attempt_id) || cancel_in(d->orphans, attempt_id) ||
      cancel_in(d->held, attempt_id))
    return;
  kk_debug(LOGCTX, "attempt %lld: nothing queued to cancel", (long long)attempt_id);
}

/* ---- notes from the store -------------------------------------------------- */

/* A route put (with its stored settings) or deleted. */
static void route_noted(struct dispatch *d, const struct store_note_cfg *c) {
  if (c->text == NULL) {
    dispatch_route_del(d, c->name);
    return;
  }
  json_t *o = json_loads(c->text, 0, NULL);
  struct dispatch_route_cfg rc;
  char err[160];
  if (o == NULL || dispatch_route_cfg_parse(o, c->name, &rc, err, sizeof err) != 0)
    kk_error(LOGCTX, "route %s as stored is unusable and was not changed", c->name);
  else
    dispatch_route_put(d, &rc);
  json_decref(o);
}

/* The store's notes this module owns: route changes. SMS steps come
   through the SMS driver's sender (dispatch_sender), from the notes router. */
static void on_notes(void *ud, const struct store_note *notes, int n) {
  struct dispatch *d = ud;
  if (d->stopping) return;
  for (int i = 0; i < n; i++)
    if (notes[i].kind == STORE_NOTE_ROUTE) route_noted(d, notes[i].cfg);
}

/* The SMS channel's sender (chan_sender): a new message's first SMS step
   and a step that became current later in a cascade come with their rows
   (the store's notes carry them). Both are queued. */
static void sender_submit_new(void *ud, struct store_due *row) {
  struct dispatch *d = ud;
  dispatch_count_accepted(d, row->route, 1);
  enqueue_new(d, row);
}

static void sender_submit(void *ud, struct store_due *row) { dispatch_enqueue_due(ud, row); }

static void sender_cancel(void *ud, int64_t attempt_id) { dispatch_cancel(ud, attempt_id); }

void dispatch_sender(struct dispatch *d, struct chan_sender *out) {
  *out = (struct chan_sender){.submit_new = sender_submit_new, .submit = sender_submit,
                              .cancel = sender_cancel, .ud = d};
}

/* ---- the dispatcher ------------------------------------------------------- */

struct dispatch *dispatch_new(uv_loop_t *loop, struct store *store,
                              const struct dispatch_opts *opts) {
  struct dispatch *d = kk_xcalloc(1, sizeof *d);
  d->loop = loop;
  d->store = store;
  d->opts = *opts;
  d->scan_rows = kk_xcalloc(SCAN_BATCH, sizeof *d->scan_rows);
  dispatch_dq_init(&d->delayed);
  if (d->opts.max_queued <= 0) d->opts.max_queued = 100000;
  if (d->opts.retry_min_ms <= 0) d->opts.retry_min_ms = 2000;
  if (d->opts.retry_max_ms < d->opts.retry_min_ms) d->opts.retry_max_ms = d->opts.retry_min_ms;
  if (d->opts.route_down_ms <= 0) d->opts.route_down_ms = 10000;
  uv_timer_init(loop, &d->health_timer);
  d->health_timer.data = d;
  uv_timer_init(loop, &d->delay_timer);
  d->delay_timer.data = d;
  d->delay_timer.timer_cb = dispatch_on_delay_timer;
  uv_timer_init(loop, &d->hold_timer);
  d->hold_timer.data = d;
  d->hold_timer.timer_cb = dispatch_on_hold_timer;
  uv_check_init(loop, &d->check);
  d->check.data = d;
  d->check.check_cb = on_check;
  store_subscribe(store, on_notes, d);
  return d;
}

void dispatch_set_hlr(struct dispatch *d, struct dispatch_hlr *hlr) { d->opts.hlr = hlr; }

void dispatch_start(struct dispatch *d) {
  uv_timer_start(&d->health_timer, dispatch_on_health_timer, 500, 500);
  d->backlog = 1;
  d->cursor = 0;
  uv_check_start(&d->check, on_check);
}

void dispatch_stop(struct dispatch *d, void (*done)(void *ud), void *ud) {
  d->stopping = 1;
  store_unsubscribe(d->store, on_notes, d);
  d->stop_done = done;
  d->stop_ud = ud;
  uv_check_stop(&d->check);
  uv_timer_stop(&d->delay_timer);
  uv_timer_stop(&d->hold_timer);
  uv_timer_stop(&d->health_timer);
  d->closing_clients = 0;
  for (struct route *r = d->routes; r; r = r->next) d->closing_clients++;
  for (struct route *r = d->dead; r; r = r->next) d->closing_clients++;
  if (d->closing_clients == 0) {
    if (done) done(ud);
    return;
  }
  while (d->routes) dispatch_route_retire(d, d->routes);
}

static void free_list(struct dispatch *d, struct job *j) {
  while (j) {
    struct job *next = j->next;
    dispatch_job_free(d, j);
    j = next;
  }
}

static void on_handle_closed(uv_handle_t *h) {
  struct dispatch *d = h->data;
  if (h == (uv_handle_t *)&d->check) {
    free(d->scan_rows);
    free(d->ahead);
    free(d);
  }
}

void dispatch_free(struct dispatch *d) {
  store_unsubscribe(d->store, on_notes, d);
  free_list(d, d->orphans);
  for (struct job *w; (w = dispatch_dq_pop(&d->delayed));) dispatch_job_free(d, w);
  dispatch_dq_fini(&d->delayed);
  free_list(d, d->held);
  while (d->resolving) {
    struct job *j = d->resolving;
    dispatch_resolving_drop(d, j);
    dispatch_job_free(d, j);
  }
  d->orphans = d->held = NULL;
  uv_close((uv_handle_t *)&d->health_timer, NULL);
  uv_close((uv_handle_t *)&d->delay_timer, NULL);
  uv_close((uv_handle_t *)&d->hold_timer, NULL);
  uv_close((uv_handle_t *)&d->check, on_handle_closed);
}
