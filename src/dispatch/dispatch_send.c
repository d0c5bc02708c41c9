/*
 * dispatch_send.c - jobs, route queues and submitting (see dispatch_int.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/kk_err.h"
#include "core/kk_hold.h"
#include "core/kk_log.h"
#include "core/kk_mem.h"
#include "dispatch/dispatch_int.h"

/* ---- jobs ----------------------------------------------------------------- */

struct job *dispatch_job_new(struct dispatch *d) {
  struct job *j = aligned_alloc(16, (sizeof(struct job) + 15) & ~(size_t)15);
  if (j == NULL) abort();
  memset(j, 0, sizeof *j);
  j->d = d;
  j->price = -1;
  j->delay_at = -1;
  d->jobs++;
  return j;
}

void dispatch_job_free(struct dispatch *d, struct job *j) {
  free(j->text);
  free(j->enc);
  free(j);
  d->jobs--;
}

static uint64_t token_of(struct job *j, int part_idx) {
  return (uint64_t)(uintptr_t)j | (uint64_t)part_idx;
}

static struct job *token_job(uint64_t token, int *part_idx) {
  *part_idx = (int)(token & 15);
  return (struct job *)(uintptr_t)(token & ~(uint64_t)15);
}

void dispatch_queue_push(struct route *r, struct job *j, int at_head) {
  j->queued = 1;
  dispatch_lq_push(&r->q[j->lane < DISPATCH_LANE_COUNT ? j->lane : 0], j, at_head);
  r->queued++;
}

static struct job *queue_pop_lane(struct route *r, int lane) {
  struct job *j = dispatch_lq_pop(&r->q[lane]);
  if (!j) return NULL;
  j->queued = 0;
  r->queued--;
  return j;
}

struct job *dispatch_queue_pop(struct route *r) {
  for (int l = 0; l < DISPATCH_LANE_COUNT; l++)
    if (dispatch_lq_peek(&r->q[l])) return queue_pop_lane(r, l);
  return NULL;
}

static void delay_arm(struct dispatch *d) {
  struct job *first = dispatch_dq_peek(&d->delayed);
  if (first == NULL) {
    uv_timer_stop(&d->delay_timer);
    return;
  }
  int64_t wait = first->not_before - now_ms();
  uv_timer_start(&d->delay_timer, d->delay_timer.timer_cb, wait > 0 ? (uint64_t)wait : 0, 0);
}

static void delay_push(struct dispatch *d, struct job *j) {
  dispatch_dq_push(&d->delayed, j);
  j->queued = 1;
  /* The timer moves only for a job that is now due first. */
  if (dispatch_dq_peek(&d->delayed) == j) delay_arm(d);
}

void dispatch_on_delay_timer(uv_timer_t *t) {
  struct dispatch *d = t->data;
  int64_t now = now_ms();
  struct job *j;
  while ((j = dispatch_dq_peek(&d->delayed)) && j->not_before <= now) {
    dispatch_dq_pop(&d->delayed);
    j->queued = 0;
    dispatch_job_route(d, j, 0);
  }
  delay_arm(d);
}

void dispatch_clock_moved(struct dispatch *d) { dispatch_on_delay_timer(&d->delay_timer); }

/* Held jobs whose account was released, or whose validity ended, go back
   to their route (which sends or expires them). */
void dispatch_on_hold_timer(uv_timer_t *t) {
  struct dispatch *d = t->data;
  int64_t now = now_ms();
  struct job **pp = &d->held;
  while (*pp) {
    struct job *j = *pp;
    if (now < j->expires_at && kk_hold_has(d->opts.hold, j->account_id)) {
      pp = &j->next;
      continue;
    }
    *pp = j->next;
    j->next = NULL;
    j->queued = 0;
    dispatch_job_route(d, j, 0);
  }
  if (d->held == NULL) uv_timer_stop(t);
}

/* A scheduled job whose time came, asking the store whether it still goes
   (store_sms_begin): the job is this one's until the answer. */
struct begin {
  struct store_sms_begin b;
  struct job *j;
};

static void on_begun(void *arg, int rc) {
  struct begin *x = arg;   /* from job_begin */
  struct job *j = x->j;
  struct dispatch *d = j->d;
  int go = x->b.go;
  free(x);
  j->queued = 0;
  if (d->stopping) {
    /* still due in the store: it goes after the restart */
    dispatch_job_free(d, j);
  } else if (rc) {
    kk_warnx(LOGCTX, "message %lld: cannot start it now (%s), trying again in a second",
             (long long)j->msg_id, kk_strerror(rc));
    j->not_before = now_ms() + 1000;
    dispatch_job_route(d, j, 0);
  } else if (!go) {
    kk_info(LOGCTX, "message %lld: cancelled or done before its time, not sent",
            (long long)j->msg_id);
    dispatch_job_free(d, j);
  } else {
    j->scheduled = 0;
    dispatch_job_route(d, j, 0);
  }
}

static void job_begin(struct dispatch *d, struct job *j) {
  struct begin *x = kk_xcalloc(1, sizeof *x);   /* freed in on_begun */
  x->j = j;
  x->b.msg_id = j->msg_id;
  x->b.attempt_id = j->attempt_id;
  x->b.at = now_ms();
  j->queued = 1;
  store_sms_begin(d->store, &x->b, on_begun, x);
}

/* Puts a job where it can next make progress. */
void dispatch_job_route(struct dispatch *d, struct job *j, int at_head) {
  if (j->not_before > now_ms()) {
    delay_push(d, j);
    return;
  }
  if (j->recheck && d->due_fn) {
    /* Due now: the rules again (a consent withdrawn, a stop meanwhile). */
    j->recheck = 0;
    int64_t wait = 0;
    struct pol_due due = {.msg_id = j->msg_id, .account_id = j->account_id, .to = j->to,
                          .msg_class = j->msg_class, .channel = "sms", .text = j->text,
                          .wait_until = &wait};
    const char *why = d->due_fn(d->due_ud, &due);
    if (why == NULL && wait > now_ms()) {
      /* Inside its quiet hours now: it waits for their end (in the store too,
         so a restart keeps it waiting), and is looked at again then. */
      j->not_before = wait;
      j->recheck = 1;
      struct store_sms_update u = {.msg_id = j->msg_id, .attempt_id = j->attempt_id,
                                   .error = "quiet_hours", .at = now_ms(), .due_at = wait};
      store_sms_retry(d->store, &u, dispatch_store_done_log, NULL);
      delay_push(d, j);
      return;
    }
    if (why) {
      struct store_sms_update u = {.msg_id = j->msg_id, .attempt_id = j->attempt_id,
                                   .route = j->route, .error = why, .at = now_ms()};
      store_sms_failed(d->store, &u, dispatch_store_done_log, NULL);
      dispatch_job_free(d, j);
      return;
    }
  }
  if (j->scheduled) {
    /* a cancel, here or on another node, may have come first */
    job_begin(d, j);
    return;
  }
  if (!j->resolved) {
    /* back from a roaming deferral: looked at again */
    dispatch_job_place(d, j);
    return;
  }
  struct route *r = route_find(d, j->route);
  if (r && j->chosen && !dispatch_route_up(r, now_ms()) && dispatch_rechoose(d, j))
    r = route_find(d, j->route);
  if (r == NULL) {
    j->next = d->orphans;
    d->orphans = j;
    j->queued = 1;
    return;
  }
  dispatch_queue_push(r, j, at_head);
  dispatch_pump(r);
}

/* ---- submitting ----------------------------------------------------------- */

static int is_digits(const char *s) {
  if (*s == '+') s++;
  if (!*s) return 0;
  for (; *s; s++)
    if (*s < '0' || *s > '9') return 0;
  return 1;
}

/* Formats an absolute SMPP time "YYMMDDhhmmss000+" (UTC). */
static void smpp_time(int64_t ms, char out[32]) {
  time_t t = (time_t)(ms / 1000);
  struct tm tm;
  gmtime_r(&t, &tm);
  snprintf(out, 32, "%02d%02d%02d%02d%02d%02d000+", tm.tm_year % 100, tm.tm_mon + 1,
           tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

void dispatch_store_done_log(void *arg, int rc) {
  (void)arg;
  if (rc) kk_error(LOGCTX, "status update not stored: %s", kk_strerror(rc));
}

static void job_end(struct route *r, struct job *j, const char *status, const char *error) {
  struct store_sms_update u = {.msg_id = j->msg_id, .attempt_id = j->attempt_id,
                               .route = j->route, .error = error, .at = now_ms()};
  if (strcmp(status, "expired") == 0) {
    store_sms_expired(r->d->store, &u, dispatch_store_done_log, NULL);
    r->n.expired++;
  } else {
    store_sms_failed(r->d->store, &u, dispatch_store_done_log, NULL);
    r->n.failed++;
  }
  j->ended = 1;
  j->pending = 0;
}

/* Encodes the job's text once; a text that cannot be encoded fails it. */
static int job_encode(struct route *r, struct job *j) {
  if (j->enc) return 0;
  j->enc = kk_xmalloc(sizeof *j->enc);
  int rc = sms_encode(j->text, strlen(j->text), r->ref, j->enc);
  if (rc) {
    job_end(r, j, "failed", "text cannot be encoded");
    return rc;
  }
  if (j->enc->nparts > 1) r->ref++;
  uint32_t all = j->enc->nparts >= 32 ? 0xffffffffu : ((1u << j->enc->nparts) - 1);
  j->pending = j->resumed ? (j->pending & all) : all;
  j->nparts = j->enc->nparts;
  return 0;
}

static int submit_part(struct route *r, struct job *j, int idx) {
  struct smpp_pdu pdu;
  memset(&pdu, 0, sizeof pdu);
  pdu.command_id = SMPP_SUBMIT_SM;
  struct smpp_sm *sm = &pdu.body.sm;
  const char *src = j->sender;
  if (src[0] == '\0') {
    sm->source_addr_ton = 0;
    sm->source_addr_npi = 0;
  } else if (is_digits(src)) {
    if (*src == '+') src++;
    size_t n = strlen(src);
    sm->source_addr_ton = n <= 8 ? 3 : 1;   /* short code: network specific */
    sm->source_addr_npi = n <= 8 ? 0 : 1;
  } else {
    sm->source_addr_ton = 5;                 /* alphanumeric */
    sm->source_addr_npi = 0;
  }
  sm->source_addr = smpp_cstr(src);
  sm->dest_addr_ton = 1;
  sm->dest_addr_npi = 1;
  sm->destination_addr = smpp_cstr(j->to);
  sm->esm_class = j->enc->udhi ? SMPP_ESM_UDHI : 0;
  sm->registered_delivery = 1;
  sm->data_coding = j->enc->coding == SMS_CODING_UCS2 ? 0x08 : r->cfg.gsm_data_coding;
  char vp[32];
  smpp_time(j->expires_at, vp);
  sm->validity_period = smpp_cstr(vp);
  sm->short_message.p = j->enc->part[idx].data;
  sm->short_message.len = j->enc->part[idx].len;
  return smpp_client_submit(r->client, token_of(j, idx), &pdu);
}

static void on_lane_timer(uv_timer_t *t) { dispatch_pump(t->data); }

/* How many more parts bulk may submit: answers not yet committed and
   submits not yet answered, over all routes, stay a tenth short of the
   room, which is stream's. */
static int bulk_room(const struct dispatch *d) {
  int out = d->unsettled;
  for (const struct route *r = d->routes; r; r = r->next)
    if (r->client) out += smpp_client_inflight(r->client);
  int cap = d->unsettled_cap;
  int reserve = cap >= 10 ? cap / 10 : (cap > 1 ? 1 : 0);
  return cap - reserve - out;
}

/* Submits from the heads of the lanes while the route has capacity: stream
   whenever it has a job its rate allows, bulk with what is left. */
void dispatch_pump(struct route *r) {
  if (r->client == NULL || r->d->stopping) return;
  int64_t now = now_ms();
  for (;;) {
    int cap = smpp_client_capacity(r->client);
    /* A submit counts as in flight until its outcome is committed, so a crash
       resends at most what the windows hold twice over. */
    int room = r->d->unsettled_cap - r->d->unsettled;
    if (room < cap) cap = room;
    if (cap <= 0) return;
    int64_t wait;
    int lane = dispatch_lane_next(r->q, r->bk, now, &wait);
    if (lane < 0) {
      if (wait > 0 && r->lane_timer && !uv_is_active((uv_handle_t *)r->lane_timer))
        uv_timer_start(r->lane_timer, on_lane_timer, (uint64_t)wait, 0);
      break;
    }
    if (lane == DISPATCH_LANE_BULK) {
      /* Bulk leaves a tenth of the windows (and of the room for answers not
         yet committed) to stream, so a code never waits for a slot. */
      int all = r->cfg.smpp.window * (r->cfg.smpp.sessions > 0 ? r->cfg.smpp.sessions : 1);
      int reserve = all >= 10 ? all / 10 : (all > 1 ? 1 : 0);
      if (cap - reserve <= 0) break;
      cap -= reserve;
      /* What bulk has in flight becomes answers waiting for their commit:
         counted now, or a full window's answers would fill the room and
         stream would wait for bulk's commits. */
      int out = bulk_room(r->d);
      if (out <= 0) {
        r->d->bulk_stalled = 1;
        break;
      }
      if (out < cap) cap = out;
    }
    struct job *j = dispatch_lq_peek(&r->q[lane]);
    if (j->ended) {
      queue_pop_lane(r, lane);
      if (j->inflight == 0) dispatch_job_free(r->d, j);
      continue;
    }
    if (now >= j->expires_at) {
      queue_pop_lane(r, lane);
      job_end(r, j, "expired", "validity ended before the SMSC accepted it");
      if (j->inflight == 0) dispatch_job_free(r->d, j);
      continue;
    }
    if (j->inflight == 0 && kk_hold_has(r->d->opts.hold, j->account_id)) {
      /* Its account is suspended: it waits, off the route, until released
         or expired (dispatch_on_hold_timer). */
      queue_pop_lane(r, lane);
      j->next = r->d->held;
      r->d->held = j;
      j->queued = 1;
      if (!uv_is_active((uv_handle_t *)&r->d->hold_timer))
        uv_timer_start(&r->d->hold_timer, r->d->hold_timer.timer_cb, 1000, 1000);
      continue;
    }
    if (job_encode(r, j) != 0) {
      queue_pop_lane(r, lane);
      if (j->inflight == 0) dispatch_job_free(r->d, j);
      continue;
    }
    while (j->pending && cap > 0) {
      if (!dispatch_bucket_take(&r->bk[lane], now)) break;
      int idx = __builtin_ctz(j->pending);
      int rc = submit_part(r, j, idx);
      if (rc == KK_EBUSY) {
        r->bk[lane].tokens += r->bk[lane].rate > 0 ? 1.0 : 0;   /* not spent */
        return;
      }
      if (rc) {
        kk_error(LOGCTX, "message %lld part %d does not encode: %s", (long long)j->msg_id,
                 idx + 1, kk_strerror(rc));
        job_end(r, j, "failed", "message does not encode as submit_sm");
        break;
      }
      j->pending &= ~(1u << idx);
      j->inflight |= 1u << idx;
      cap--;
    }
    if (j->pending == 0) {
      queue_pop_lane(r, lane);
      if (j->ended && j->inflight == 0) dispatch_job_free(r->d, j);
    }
  }
  /* Nothing more can go now: maybe more is waiting in the store. */
  if (r->queued == 0 && r->d->backlog) uv_check_start(&r->d->check, r->d->check.check_cb);
}

/* ---- answers from the SMSC -------------------------------------------------- */

static void pump_all(struct dispatch *d) {
  for (struct route *r = d->routes; r; r = r->next) dispatch_pump(r);
}

/* A submitted part's status update is durable: its slot frees up. */
static void on_submitted_stored(void *arg, int rc) {
  struct dispatch *d = arg;
  if (rc) kk_error(LOGCTX, "status update not stored: %s", kk_strerror(rc));
  d->unsettled--;
  if (d->bulk_stalled || d->unsettled_cap - d->unsettled == 1 || d->unsettled == 0) {
    d->bulk_stalled = 0;
    pump_all(d);
  }
}

void dispatch_recount_cap(struct dispatch *d) {
  d->unsettled_cap = 0;
  for (struct route *r = d->routes; r; r = r->next)
    d->unsettled_cap += r->cfg.smpp.window * (r->cfg.smpp.sessions > 0 ? r->cfg.smpp.sessions : 1);
}

static int status_temporary(uint32_t st) {
  return st == SMPP_ESME_RSYSERR || st == SMPP_ESME_RMSGQFUL || st == SMPP_ESME_RX_T_APPN ||
         st == SMPP_ESME_RINVBNDSTS || st == SMPP_ESME_RALYBND || st == SMPP_ESME_RTHROTTLED;
}

int dispatch_status_route_trouble(uint32_t st) {
  switch (st) {
  case SMPP_ESME_RSYSERR:      /* the SMSC's own failure */
  case SMPP_ESME_RSUBMITFAIL:
  case SMPP_ESME_RX_T_APPN:
  case SMPP_ESME_RINVBNDSTS:   /* the session is not what the SMSC thinks */
  case SMPP_ESME_RALYBND:
  case SMPP_ESME_RBINDFAIL:
  case SMPP_ESME_RINVPASWD:
  case SMPP_ESME_RINVSYSID:
    return 1;
  default:
    return 0;
  }
}

/* One more sign that route r is in trouble (an error of the route's own,
   or a submit that got no answer): a run of them takes it down a while,
   so choices go elsewhere. */
static void route_trouble(struct route *r, const char *what) {
  if (++r->err_run < ROUTE_ERR_RUN) return;
  r->err_run = 0;
  r->down_until = now_ms() + r->d->opts.route_down_ms;
  kk_warnx(LOGCTX, "route %s: %d errors in a row (last: %s), down for %lld ms", r->cfg.smpp.name,
           ROUTE_ERR_RUN, what, (long long)r->d->opts.route_down_ms);
}

/* After a part's answer: free or requeue the job as its state says. */
static void job_settle(struct route *r, struct job *j, int at_head) {
  if (j->inflight) return;           /* other parts still out */
  if (j->ended || (j->pending == 0)) {
    if (!j->queued) dispatch_job_free(r->d, j);
    return;
  }
  if (!j->queued) dispatch_job_route(r->d, j, at_head);
}

void dispatch_on_resp(void *ud, uint64_t token, uint32_t status, const char *message_id) {
  struct route *r = ud;
  int idx;
  struct job *j = token_job(token, &idx);
  j->inflight &= ~(1u << idx);
  if (status == SMPP_ESME_ROK) {
    r->n.submitted_parts++;
    r->err_run = 0;
    struct store_sms_update u = {.msg_id = j->msg_id, .attempt_id = j->attempt_id,
                                 .part = idx + 1, .nparts = j->nparts, .route = j->route,
                                 .provider_id = message_id ? message_id : "", .at = now_ms(),
                                 .priced = j->price >= 0, .price = j->price};
    if (!j->ended) {
      r->d->unsettled++;
      store_sms_submitted(r->d->store, &u, on_submitted_stored, r->d);
    }
    job_settle(r, j, 0);
    return;
  }
  char err[96];
  snprintf(err, sizeof err, "%s (0x%08x)", smpp_status_name(status), status);
  if (status == SMPP_ESME_RTHROTTLED || status == SMPP_ESME_RMSGQFUL) {
    /* The session pauses itself; the part goes back first in line. */
    r->n.throttled++;
    j->pending |= 1u << idx;
    job_settle(r, j, 1);
    return;
  }
  r->n.submit_errors++;
  /* A number's own refusal (a bad or barred destination) says nothing of
     the route: it neither counts nor breaks the run. */
  if (dispatch_status_route_trouble(status)) route_trouble(r, err);
  if (status_temporary(status) && !j->ended) {
    int64_t delay = r->d->opts.retry_min_ms << (j->tries < 16 ? j->tries : 16);
    if (delay > r->d->opts.retry_max_ms) delay = r->d->opts.retry_max_ms;
    j->tries++;
    j->pending |= 1u << idx;
    int64_t now = now_ms();
    if (now + delay >= j->expires_at) {
      job_end(r, j, "expired", err);
    } else {
      r->n.retried++;
      j->not_before = now + delay;
      struct store_sms_update u = {.msg_id = j->msg_id, .attempt_id = j->attempt_id,
                                   .error = err, .at = now, .due_at = j->not_before};
      store_sms_retry(r->d->store, &u, dispatch_store_done_log, NULL);
      kk_info(LOGCTX, "message %lld part %d: %s, retry in %lld ms", (long long)j->msg_id,
              idx + 1, err, (long long)delay);
    }
    job_settle(r, j, 0);
    return;
  }
  if (!j->ended) {
    kk_info(LOGCTX, "message %lld part %d refused: %s", (long long)j->msg_id, idx + 1, err);
    job_end(r, j, "failed", err);
  }
  job_settle(r, j, 0);
}

void dispatch_on_lost(void *ud, uint64_t token) {
  struct route *r = ud;
  int idx;
  struct job *j = token_job(token, &idx);
  j->inflight &= ~(1u << idx);
  r->n.lost++;
  if (r->d->stopping) {
    /* The message stays due in the store and goes out after the restart. */
    j->ended = 1;
    job_settle(r, j, 0);
    return;
  }
  if (!r->removed) route_trouble(r, "no answer to submit_sm");
  j->pending |= 1u << idx;
  job_settle(r, j, 1);
}

void dispatch_on_ready(void *ud) {
  struct route *r = ud;
  r->bound_at = now_ms();
  dispatch_pump(r);
}
