/*
 * dispatch.c - from the store to the SMSC and back (see dispatch.h).
 *
 * A job is one message on its way out: its text, which parts still need a
 * submit_sm, which are in flight. Jobs wait in their route's FIFO queue (or in
 * the delayed list while a retry backoff runs). A submit's token is the job's
 * address with the part index in its low 4 bits (jobs are 16-byte aligned);
 * a job is freed only when no part of it is in flight, so a token never
 * outlives its job.
 */
#include "dispatch/dispatch.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/kk_buf.h"
#include "core/kk_err.h"
#include "core/kk_hold.h"
#include "core/kk_log.h"
#include "core/kk_mem.h"
#include "sms/sms_enc.h"
#include "smpp/smpp_dlr.h"

#define LOGCTX "dispatch"
#define SCAN_BATCH 1000

struct route;

struct job {
  struct job *next;          /* in a route queue, the orphan list or the delayed list */
  int64_t msg_id;
  int64_t attempt_id;
  int64_t account_id;
  int64_t expires_at;
  int64_t not_before;        /* delayed until (ms) */
  char to[24];
  char sender[24];
  char route[64];
  char *text;                /* owned */
  struct sms_encoded *enc;   /* owned; made at the first submit */
  uint32_t pending;          /* parts (bit i = part i+1) still to submit */
  uint32_t inflight;         /* parts submitted, no answer yet */
  int nparts;                /* 0 until encoded */
  int resumed;               /* reloaded with some parts already accepted: pending is set */
  int tries;                 /* temporary failures so far */
  int queued;                /* 1 while in a queue or list */
  int ended;                 /* failed or expired: drop when nothing in flight */
};

struct route_counters {
  uint64_t accepted, submitted_parts, submit_errors, throttled, retried, lost;
  uint64_t failed, expired;
  uint64_t dlr_delivered, dlr_failed, dlr_expired, dlr_unmatched, mo;
};

struct route {
  struct route *next;
  struct dispatch *d;
  struct dispatch_route_cfg cfg;
  struct smpp_client *client;   /* NULL once closing */
  struct job *q_head, **q_tail;
  int queued;
  uint8_t ref;                  /* concatenation reference, rotates */
  struct route_counters n;
  uint64_t gen;                 /* unique per route object, for deferred answers */
  int removed;                  /* replaced or deleted; freed when closed */
};

struct dispatch {
  uv_loop_t *loop;
  struct store *store;
  struct dispatch_opts opts;
  struct route *routes;         /* sorted by name */
  struct route *dead;           /* closing, waiting for closed_cb */
  struct job *orphans;          /* jobs whose route does not exist */
  struct job *delayed;          /* sorted by not_before */
  struct job *held;             /* jobs of suspended accounts (opts.hold) */
  uv_timer_t delay_timer;
  uv_timer_t hold_timer;        /* looks at the held jobs every second */
  uv_check_t check;             /* refills from the store when asked */
  int jobs;                     /* jobs alive */
  int backlog;                  /* 1: some due messages are only in the store */
  int64_t cursor;               /* highest message id loaded */
  int stopping;
  int closing_clients;
  void (*stop_done)(void *);
  void *stop_ud;
  struct store_due *scan_rows;  /* SCAN_BATCH rows for refill() */
  uint64_t next_gen;            /* gen of the next route object */
  int unsettled;                /* parts answered by the SMSC, not yet committed */
  int unsettled_cap;            /* sum of window x sessions over the routes */
};

static int64_t now_ms(void) { return store_now_ms(); }

/* ---- jobs ----------------------------------------------------------------- */

static struct job *job_new(struct dispatch *d) {
  struct job *j = aligned_alloc(16, (sizeof(struct job) + 15) & ~(size_t)15);
  if (j == NULL) abort();
  memset(j, 0, sizeof *j);
  d->jobs++;
  return j;
}

static void job_free(struct dispatch *d, struct job *j) {
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

static struct route *route_find(struct dispatch *d, const char *name) {
  for (struct route *r = d->routes; r; r = r->next)
    if (strcmp(r->cfg.smpp.name, name) == 0) return r;
  return NULL;
}

static void pump(struct route *r);
static void job_route(struct dispatch *d, struct job *j, int at_head);

static void queue_push(struct route *r, struct job *j, int at_head) {
  j->queued = 1;
  if (at_head) {
    j->next = r->q_head;
    r->q_head = j;
    if (r->q_tail == &r->q_head) r->q_tail = &j->next;
  } else {
    j->next = NULL;
    *r->q_tail = j;
    r->q_tail = &j->next;
  }
  r->queued++;
}

static struct job *queue_pop(struct route *r) {
  struct job *j = r->q_head;
  if (!j) return NULL;
  r->q_head = j->next;
  if (r->q_head == NULL) r->q_tail = &r->q_head;
  j->next = NULL;
  j->queued = 0;
  r->queued--;
  return j;
}

static void delay_arm(struct dispatch *d) {
  if (d->delayed == NULL) {
    uv_timer_stop(&d->delay_timer);
    return;
  }
  int64_t wait = d->delayed->not_before - now_ms();
  uv_timer_start(&d->delay_timer, d->delay_timer.timer_cb, wait > 0 ? (uint64_t)wait : 0, 0);
}

static void delay_push(struct dispatch *d, struct job *j) {
  struct job **pp = &d->delayed;
  while (*pp && (*pp)->not_before <= j->not_before) pp = &(*pp)->next;
  j->next = *pp;
  *pp = j;
  j->queued = 1;
  delay_arm(d);
}

static void on_delay_timer(uv_timer_t *t) {
  struct dispatch *d = t->data;
  int64_t now = now_ms();
  while (d->delayed && d->delayed->not_before <= now) {
    struct job *j = d->delayed;
    d->delayed = j->next;
    j->next = NULL;
    j->queued = 0;
    job_route(d, j, 0);
  }
  delay_arm(d);
}

/* Held jobs whose account was released, or whose validity ended, go back
   to their route (which sends or expires them). */
static void on_hold_timer(uv_timer_t *t) {
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
    job_route(d, j, 0);
  }
  if (d->held == NULL) uv_timer_stop(t);
}

/* Puts a job where it can next make progress. */
static void job_route(struct dispatch *d, struct job *j, int at_head) {
  if (j->not_before > now_ms()) {
    delay_push(d, j);
    return;
  }
  struct route *r = route_find(d, j->route);
  if (r == NULL) {
    j->next = d->orphans;
    d->orphans = j;
    j->queued = 1;
    return;
  }
  queue_push(r, j, at_head);
  pump(r);
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

static void store_done_log(void *arg, int rc) {
  if (rc) kk_error(LOGCTX, "status update not stored: %s", kk_strerror(rc));
}

static void job_end(struct route *r, struct job *j, const char *status, const char *error) {
  struct store_sms_update u = {.msg_id = j->msg_id, .attempt_id = j->attempt_id,
                               .route = j->route, .error = error, .at = now_ms()};
  if (strcmp(status, "expired") == 0) {
    store_sms_expired(r->d->store, &u, store_done_log, NULL);
    r->n.expired++;
  } else {
    store_sms_failed(r->d->store, &u, store_done_log, NULL);
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

/* Submits from the head of the queue while the route has capacity. */
static void pump(struct route *r) {
  if (r->client == NULL || r->d->stopping) return;
  int64_t now = 0;
  while (r->q_head) {
    int cap = smpp_client_capacity(r->client);
    /* A submit counts as in flight until its outcome is committed, so a crash
       resends at most what the windows hold twice over. */
    int room = r->d->unsettled_cap - r->d->unsettled;
    if (room < cap) cap = room;
    if (cap <= 0) return;
    struct job *j = r->q_head;
    if (j->ended) {
      queue_pop(r);
      if (j->inflight == 0) job_free(r->d, j);
      continue;
    }
    if (!now) now = now_ms();
    if (now >= j->expires_at) {
      queue_pop(r);
      job_end(r, j, "expired", "validity ended before the SMSC accepted it");
      if (j->inflight == 0) job_free(r->d, j);
      continue;
    }
    if (j->inflight == 0 && kk_hold_has(r->d->opts.hold, j->account_id)) {
      /* Its account is suspended: it waits, off the route, until released
         or expired (on_hold_timer). */
      queue_pop(r);
      j->next = r->d->held;
      r->d->held = j;
      j->queued = 1;
      if (!uv_is_active((uv_handle_t *)&r->d->hold_timer))
        uv_timer_start(&r->d->hold_timer, r->d->hold_timer.timer_cb, 1000, 1000);
      continue;
    }
    if (job_encode(r, j) != 0) {
      queue_pop(r);
      if (j->inflight == 0) job_free(r->d, j);
      continue;
    }
    while (j->pending && cap > 0) {
      int idx = __builtin_ctz(j->pending);
      int rc = submit_part(r, j, idx);
      if (rc == KK_EBUSY) return;
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
      queue_pop(r);
      if (j->ended && j->inflight == 0) job_free(r->d, j);
    }
  }
  /* The queue is empty: maybe more is waiting in the store. */
  if (r->d->backlog) uv_check_start(&r->d->check, r->d->check.check_cb);
}

/* ---- answers from the SMSC -------------------------------------------------- */

static void pump_all(struct dispatch *d) {
  for (struct route *r = d->routes; r; r = r->next) pump(r);
}

/* A submitted part's status update is durable: its slot frees up. */
static void on_submitted_stored(void *arg, int rc) {
  struct dispatch *d = arg;
  if (rc) kk_error(LOGCTX, "status update not stored: %s", kk_strerror(rc));
  d->unsettled--;
  if (d->unsettled_cap - d->unsettled == 1 || d->unsettled == 0) pump_all(d);
}

static void recount_cap(struct dispatch *d) {
  d->unsettled_cap = 0;
  for (struct route *r = d->routes; r; r = r->next)
    d->unsettled_cap += r->cfg.smpp.window * (r->cfg.smpp.sessions > 0 ? r->cfg.smpp.sessions : 1);
}

static int status_temporary(uint32_t st) {
  return st == SMPP_ESME_RSYSERR || st == SMPP_ESME_RMSGQFUL || st == SMPP_ESME_RX_T_APPN ||
         st == SMPP_ESME_RINVBNDSTS || st == SMPP_ESME_RALYBND || st == SMPP_ESME_RTHROTTLED;
}

/* After a part's answer: free or requeue the job as its state says. */
static void job_settle(struct route *r, struct job *j, int at_head) {
  if (j->inflight) return;           /* other parts still out */
  if (j->ended || (j->pending == 0)) {
    if (!j->queued) job_free(r->d, j);
    return;
  }
  if (!j->queued) job_route(r->d, j, at_head);
}

static void on_resp(void *ud, uint64_t token, uint32_t status, const char *message_id) {
  struct route *r = ud;
  int idx;
  struct job *j = token_job(token, &idx);
  j->inflight &= ~(1u << idx);
  if (status == SMPP_ESME_ROK) {
    r->n.submitted_parts++;
    struct store_sms_update u = {.msg_id = j->msg_id, .attempt_id = j->attempt_id,
                                 .part = idx + 1, .nparts = j->nparts, .route = j->route,
                                 .provider_id = message_id ? message_id : "", .at = now_ms()};
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
      store_sms_retry(r->d->store, &u, store_done_log, NULL);
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

static void on_lost(void *ud, uint64_t token) {
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
  j->pending |= 1u << idx;
  job_settle(r, j, 1);
}

/* A deliver_sm whose deliver_sm_resp waits for the commit of what it brought,
   so that a crash never drops a receipt or an MO the SMSC considers handed
   over. */
struct deferred_ack {
  struct dispatch *d;
  char route[64];
  uint64_t route_gen;
  uint64_t handle;
};

static void defer_ack(struct route *r, struct deferred_ack *a) {
  a->d = r->d;
  snprintf(a->route, sizeof a->route, "%s", r->cfg.smpp.name);
  a->route_gen = r->gen;
  a->handle = smpp_client_defer(r->client);
}

/* Answers the SMSC: ok once stored, a temporary error (it delivers again)
   when the store failed. A route replaced meanwhile has new sessions; the
   SMSC redelivers what the old ones did not answer. */
static void answer_ack(const struct deferred_ack *a, int rc) {
  struct route *r = route_find(a->d, a->route);
  if (r == NULL || r->gen != a->route_gen || r->client == NULL) return;
  smpp_client_deliver_resp(r->client, a->handle, rc ? SMPP_ESME_RX_T_APPN : SMPP_ESME_ROK);
}

struct receipt_ctx {
  struct deferred_ack ack;
  struct store_receipt rec;
  char route[64];
  char id0[72], id1[72];
  char error[96];
};

static void on_receipt_stored(void *arg, int rc) {
  struct receipt_ctx *c = arg;
  answer_ack(&c->ack, rc);
  struct route *r = route_find(c->ack.d, c->route);
  if (rc) kk_error(LOGCTX, "receipt not stored: %s", kk_strerror(rc));
  else if (!c->rec.matched) {
    if (r) r->n.dlr_unmatched++;
    kk_info(LOGCTX, "receipt for message id %s on route %s came before its submit_sm_resp: held",
            c->id0, c->route);
  }
  free(c);
}

static void on_mo_stored(void *arg, int rc) {
  struct deferred_ack *ack = arg;
  if (rc) kk_error(LOGCTX, "MO not stored: %s", kk_strerror(rc));
  answer_ack(ack, rc);
  free(ack);
}

static void on_deliver(void *ud, const struct smpp_pdu *pdu, uint32_t *status) {
  struct route *r = ud;
  const struct smpp_sm *sm = &pdu->body.sm;
  if (r->client == NULL) {
    /* The route is closing (kaskad stops, or its settings changed) while
       its sessions unbind: a temporary error, and the SMSC delivers it
       again on a session that stays. */
    *status = SMPP_ESME_RX_T_APPN;
    return;
  }
  if ((sm->esm_class & SMPP_ESM_TYPE_MASK) == SMPP_ESM_DLR) {
    struct smpp_dlr dlr;
    if (smpp_dlr_from_pdu(pdu, &dlr) != 0) {
      kk_warnx(LOGCTX, "route %s: unreadable delivery receipt ignored", r->cfg.smpp.name);
      return;
    }
    if (!dlr.final) return;
    struct receipt_ctx *c = kk_xcalloc(1, sizeof *c);
    snprintf(c->route, sizeof c->route, "%s", r->cfg.smpp.name);
    snprintf(c->id0, sizeof c->id0, "%.*s", (int)dlr.id.len, (const char *)dlr.id.p);
    if (smpp_msgid_alt(dlr.id, c->id1, sizeof c->id1) != 0) c->id1[0] = '\0';
    const char *state;
    if (dlr.state == SMPP_STATE_DELIVERED) {
      state = "delivered";
      r->n.dlr_delivered++;
    } else if (dlr.state == SMPP_STATE_EXPIRED) {
      state = "expired";
      r->n.dlr_expired++;
    } else {
      state = "failed";
      r->n.dlr_failed++;
    }
    if (dlr.state != SMPP_STATE_DELIVERED) {
      if (dlr.err >= 0)
        snprintf(c->error, sizeof c->error, "%s err:%03d", smpp_state_name(dlr.state), dlr.err);
      else
        snprintf(c->error, sizeof c->error, "%s", smpp_state_name(dlr.state));
    }
    c->rec.route = c->route;
    c->rec.ids[0] = c->id0;
    c->rec.ids[1] = c->id1[0] ? c->id1 : NULL;
    c->rec.state = state;
    c->rec.error = c->error[0] ? c->error : NULL;
    c->rec.at = now_ms();
    defer_ack(r, &c->ack);
    store_receipt_apply(r->d->store, &c->rec, on_receipt_stored, c);
    return;
  }
  /* A mobile-originated message. */
  char text[2048], from[32], to[32];
  const uint8_t *p = sm->short_message.p;
  size_t len = sm->short_message.len;
  if (len == 0) {
    const struct smpp_tlv *t = smpp_tlv_find(pdu, SMPP_TLV_MESSAGE_PAYLOAD);
    if (t) {
      p = t->val.p;
      len = t->val.len;
    }
  }
  if ((sm->esm_class & SMPP_ESM_UDHI) && len > 0 && (size_t)p[0] + 1 <= len) {
    size_t udhl = (size_t)p[0] + 1;
    p += udhl;
    len -= udhl;
  }
  if (sms_decode(sm->data_coding, p, len, text, sizeof text) < 0) text[sizeof text - 1] = '\0';
  snprintf(from, sizeof from, "%.*s", (int)sm->source_addr.len, (const char *)sm->source_addr.p);
  snprintf(to, sizeof to, "%.*s", (int)sm->destination_addr.len,
           (const char *)sm->destination_addr.p);
  r->n.mo++;
  kk_info(LOGCTX, "route %s: MO from %s to %s", r->cfg.smpp.name, from, to);
  struct deferred_ack *ack = kk_xcalloc(1, sizeof *ack);
  defer_ack(r, ack);
  store_mo_add(r->d->store, r->cfg.smpp.name, from, to, text, now_ms(), on_mo_stored, ack);
}

static void on_ready(void *ud) { pump(ud); }

/* ---- refilling from the store ---------------------------------------------- */

static void job_from_due(struct dispatch *d, const struct store_due *due) {
  struct job *j = job_new(d);
  j->msg_id = due->id;
  j->attempt_id = due->attempt_id;
  j->account_id = due->account_id;
  j->expires_at = due->expires_at;
  j->not_before = due->due_at;
  snprintf(j->to, sizeof j->to, "%s", due->to);
  snprintf(j->sender, sizeof j->sender, "%s", due->sender);
  snprintf(j->route, sizeof j->route, "%s", due->route);
  j->text = due->text;
  if (due->parts_done) {
    /* Some parts were accepted before a restart: only the rest goes out. */
    j->resumed = 1;
    j->pending = ~due->parts_done;
  }
  job_route(d, j, 0);
}

static void refill(struct dispatch *d) {
  struct store_due *rows = d->scan_rows;
  if (!d->backlog || d->stopping) return;
  if (d->jobs >= d->opts.max_queued / 2) return;
  int n = 0;
  if (store_due_scan(d->store, d->cursor, rows, SCAN_BATCH, &n) != 0) return;
  for (int i = 0; i < n; i++) {
    d->cursor = rows[i].id;
    job_from_due(d, &rows[i]);
  }
  if (n < SCAN_BATCH) {
    d->backlog = 0;
    kk_debug(LOGCTX, "caught up with the store at message %lld", (long long)d->cursor);
  }
}

static void on_check(uv_check_t *h) {
  struct dispatch *d = h->data;
  refill(d);
  if (!d->backlog || d->jobs >= d->opts.max_queued / 2 || d->stopping) uv_check_stop(h);
}

/* A message that was just committed with SMS as its first step (its row
   from the note; row->text is taken over). */
static void enqueue_new(struct dispatch *d, struct store_due *row) {
  if (d->stopping || row->id <= d->cursor) return;
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
  /* While catching up, a scan past the cursor brings it anyway. */
  if (d->stopping || (d->backlog && row->id > d->cursor)) {
    free(row->text);
    row->text = NULL;
    return;
  }
  job_from_due(d, row);
  row->text = NULL;
}

static int cancel_in(struct job *list, int64_t attempt_id) {
  for (struct job *j = list; j; j = j->next)
    if (j->attempt_id == attempt_id) {
      j->ended = 1;
      j->pending = 0;
      return 1;
    }
  return 0;
}

void dispatch_cancel(struct dispatch *d, int64_t attempt_id) {
  /* Rare (an SMS step with a timeout that passed): a scan is fine. Ended jobs
     are dropped where they wait; a job being submitted stops after the parts
     in flight. */
  for (struct route *r = d->routes; r; r = r->next)
    if (cancel_in(r->q_head, attempt_id)) return;
  if (cancel_in(d->delayed, attempt_id) || cancel_in(d->orphans, attempt_id) ||
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
   comes with its row; a step that became current later in a cascade is read
   from the store (in the caller's read transaction). Both are queued. */
static void sender_submit_new(void *ud, struct store_due *row) {
  struct dispatch *d = ud;
  dispatch_count_accepted(d, row->route, 1);
  enqueue_new(d, row);
}

static void sender_submit(void *ud, int64_t msg_id) {
  struct dispatch *d = ud;
  struct store_due row;
  if (store_due_get(d->store, msg_id, &row) == 0) dispatch_enqueue_due(d, &row);
}

static void sender_cancel(void *ud, int64_t attempt_id) { dispatch_cancel(ud, attempt_id); }

void dispatch_sender(struct dispatch *d, struct chan_sender *out) {
  *out = (struct chan_sender){.submit_new = sender_submit_new, .submit = sender_submit,
                              .cancel = sender_cancel, .ud = d};
}

/* ---- routes ---------------------------------------------------------------- */

struct dispatch *dispatch_new(uv_loop_t *loop, struct store *store,
                              const struct dispatch_opts *opts) {
  struct dispatch *d = kk_xcalloc(1, sizeof *d);
  d->loop = loop;
  d->store = store;
  d->opts = *opts;
  d->scan_rows = kk_xcalloc(SCAN_BATCH, sizeof *d->scan_rows);
  if (d->opts.max_queued <= 0) d->opts.max_queued = 100000;
  if (d->opts.retry_min_ms <= 0) d->opts.retry_min_ms = 2000;
  if (d->opts.retry_max_ms < d->opts.retry_min_ms) d->opts.retry_max_ms = d->opts.retry_min_ms;
  uv_timer_init(loop, &d->delay_timer);
  d->delay_timer.data = d;
  d->delay_timer.timer_cb = on_delay_timer;
  uv_timer_init(loop, &d->hold_timer);
  d->hold_timer.data = d;
  d->hold_timer.timer_cb = on_hold_timer;
  uv_check_init(loop, &d->check);
  d->check.data = d;
  d->check.check_cb = on_check;
  store_subscribe(store, on_notes, d);
  return d;
}

void dispatch_start(struct dispatch *d) {
  d->backlog = 1;
  d->cursor = 0;
  uv_check_start(&d->check, on_check);
}

static void on_client_closed(void *ud) {
  struct route *r = ud;
  struct dispatch *d = r->d;
  for (struct route **pp = &d->dead; *pp; pp = &(*pp)->next)
    if (*pp == r) {
      *pp = r->next;
      break;
    }
  /* Jobs still queued on a removed route wait as orphans. */
  struct job *j;
  while ((j = queue_pop(r)) != NULL) {
    if (j->ended && j->inflight == 0) {
      job_free(d, j);
      continue;
    }
    j->queued = 1;
    j->next = d->orphans;
    d->orphans = j;
  }
  free(r);
  if (d->stopping && --d->closing_clients == 0 && d->stop_done) d->stop_done(d->stop_ud);
}

static void route_retire(struct dispatch *d, struct route *r) {
  for (struct route **pp = &d->routes; *pp; pp = &(*pp)->next)
    if (*pp == r) {
      *pp = r->next;
      break;
    }
  r->removed = 1;
  r->next = d->dead;
  d->dead = r;
  struct smpp_client *c = r->client;
  r->client = NULL;
  smpp_client_stop(c, on_client_closed);
}

/* Moves orphans whose route now exists into its queue. */
static void adopt_orphans(struct dispatch *d) {
  struct job *list = d->orphans, *j;
  d->orphans = NULL;
  while ((j = list) != NULL) {
    list = j->next;
    j->next = NULL;
    j->queued = 0;
    if (j->ended && j->inflight == 0) {
      job_free(d, j);
      continue;
    }
    job_route(d, j, 0);
  }
}

int dispatch_route_put(struct dispatch *d, const struct dispatch_route_cfg *cfg) {
  if (d->stopping) return KK_ECLOSED;
  struct route *old = route_find(d, cfg->smpp.name);
  struct route *r = kk_xcalloc(1, sizeof *r);
  r->d = d;
  r->cfg = *cfg;
  smpp_client_cfg_defaults(&r->cfg.smpp);
  r->q_tail = &r->q_head;
  r->gen = ++d->next_gen;
  r->ref = (uint8_t)(now_ms() & 0xff);
  if (old) {
    /* Take over the queue and counters; the old sessions unbind. */
    r->n = old->n;
    struct job *j;
    while ((j = queue_pop(old)) != NULL) queue_push(r, j, 0);
    route_retire(d, old);
  }
  static const struct smpp_client_cbs cbs = {on_resp, on_lost, on_deliver, on_ready};
  r->client = smpp_client_new(d->loop, &r->cfg.smpp, &cbs, r);
  struct route **pp = &d->routes;
  while (*pp && strcmp((*pp)->cfg.smpp.name, r->cfg.smpp.name) < 0) pp = &(*pp)->next;
  r->next = *pp;
  *pp = r;
  recount_cap(d);
  kk_info(LOGCTX, "route %s -> %s:%d (%d sessions, window %d, max_sps %d)", r->cfg.smpp.name,
          r->cfg.smpp.host, r->cfg.smpp.port, r->cfg.smpp.sessions, r->cfg.smpp.window,
          r->cfg.smpp.max_sps);
  adopt_orphans(d);
  return 0;
}

int dispatch_route_del(struct dispatch *d, const char *name) {
  struct route *r = route_find(d, name);
  if (r == NULL) return KK_ENOENT;
  route_retire(d, r);
  recount_cap(d);
  kk_info(LOGCTX, "route %s removed", name);
  return 0;
}

const char *dispatch_route_pick(struct dispatch *d, const char *want) {
  if (want && *want) {
    struct route *r = route_find(d, want);
    if (r) return r->cfg.smpp.name;
  }
  /* Never a guess among several: a message goes where the operator said. */
  if (d->opts.default_route[0]) {
    struct route *r = route_find(d, d->opts.default_route);
    return r ? r->cfg.smpp.name : NULL;
  }
  return d->routes && d->routes->next == NULL ? d->routes->cfg.smpp.name : NULL;
}

const char *dispatch_default_route(const struct dispatch *d) { return d->opts.default_route; }

int dispatch_route_count(const struct dispatch *d) {
  int n = 0;
  for (const struct route *r = d->routes; r; r = r->next) n++;
  return n;
}

void dispatch_count_accepted(struct dispatch *d, const char *route, int n) {
  struct route *r = route_find(d, route);
  if (r) r->n.accepted += (uint64_t)n;
}

json_t *dispatch_routes_json(struct dispatch *d, const char *only) {
  json_t *arr = json_array();
  for (struct route *r = d->routes; r; r = r->next) {
    if (only && strcmp(only, r->cfg.smpp.name) != 0) continue;
    const struct smpp_client_cfg *c = &r->cfg.smpp;
    struct smpp_client_stats st;
    smpp_client_get_stats(r->client, &st);
    json_t *sessions = json_array();
    for (int i = 0; i < c->sessions; i++)
      json_array_append_new(sessions, json_string(smpp_session_state_name(
                                           smpp_client_session_state(r->client, i))));
    json_array_append_new(
        arr, json_pack("{s:s, s:s, s:s, s:i, s:s, s:s, s:i, s:i, s:i, s:i, s:o, s:{s:i, s:o, "
                       "s:i, s:I, s:I, s:I, s:I, s:I, s:I}}",
                       "name", c->name, "protocol", "smpp", "host", c->host, "port", c->port,
                       "system_id", c->system_id, "system_type", c->system_type, "sessions",
                       c->sessions, "window", c->window, "max_sps", c->max_sps, "data_coding",
                       r->cfg.gsm_data_coding, "session_states", sessions, "state", "bound",
                       st.bound, "bound_ok", json_boolean(st.bound > 0), "inflight", st.inflight,
                       "queued", (json_int_t)r->queued, "submitted", (json_int_t)st.resp_ok,
                       "errors", (json_int_t)(st.resp_error - st.throttled), "throttled",
                       (json_int_t)st.throttled, "reconnects", (json_int_t)st.reconnects,
                       "delivered", (json_int_t)r->n.dlr_delivered));
  }
  return arr;
}

int dispatch_busy(const struct dispatch *d) { return d->jobs; }

void dispatch_metrics(struct dispatch *d, struct kk_buf *o) {
  static const struct {
    const char *name, *help;
    size_t off;
  } counters[] = {
      {"kaskad_messages_accepted_total", "Messages accepted for the route",
       offsetof(struct route_counters, accepted)},
      {"kaskad_sms_parts_submitted_total", "submit_sm answered with ESME_ROK",
       offsetof(struct route_counters, submitted_parts)},
      {"kaskad_sms_submit_errors_total", "submit_sm answered with an error other than throttling",
       offsetof(struct route_counters, submit_errors)},
      {"kaskad_sms_throttled_total", "submit_sm answered ESME_RTHROTTLED or ESME_RMSGQFUL",
       offsetof(struct route_counters, throttled)},
      {"kaskad_sms_retried_total", "Temporary errors retried after a backoff",
       offsetof(struct route_counters, retried)},
      {"kaskad_sms_lost_total", "Submits without answer when a session dropped (resent)",
       offsetof(struct route_counters, lost)},
      {"kaskad_messages_failed_total", "Messages failed by a permanent SMSC error",
       offsetof(struct route_counters, failed)},
      {"kaskad_messages_expired_total", "Messages whose validity ended before submission",
       offsetof(struct route_counters, expired)},
      {"kaskad_messages_delivered_total", "Delivery receipts with DELIVRD",
       offsetof(struct route_counters, dlr_delivered)},
      {"kaskad_receipts_failed_total", "Delivery receipts with a failure state",
       offsetof(struct route_counters, dlr_failed)},
      {"kaskad_receipts_expired_total", "Delivery receipts with EXPIRED",
       offsetof(struct route_counters, dlr_expired)},
      {"kaskad_receipts_early_total", "Receipts held because no submit_sm_resp named their id yet",
       offsetof(struct route_counters, dlr_unmatched)},
      {"kaskad_mo_received_total", "Mobile-originated messages stored",
       offsetof(struct route_counters, mo)},
  };
  for (size_t i = 0; i < sizeof counters / sizeof counters[0]; i++) {
    kk_buf_printf(o, "# HELP %s %s\n# TYPE %s counter\n", counters[i].name, counters[i].help,
                  counters[i].name);
    for (struct route *r = d->routes; r; r = r->next)
      kk_buf_printf(o, "%s{route=\"%s\"} %llu\n", counters[i].name, r->cfg.smpp.name,
                    (unsigned long long)*(uint64_t *)((char *)&r->n + counters[i].off));
  }
  kk_buf_puts(o, "# HELP kaskad_smpp_sessions SMPP sessions by state\n"
                 "# TYPE kaskad_smpp_sessions gauge\n");
  for (struct route *r = d->routes; r; r = r->next) {
    int by[SMPP_SESS_CLOSED + 1] = {0};
    for (int i = 0; i < r->cfg.smpp.sessions; i++) by[smpp_client_session_state(r->client, i)]++;
    for (int s = 0; s <= SMPP_SESS_CLOSED; s++)
      kk_buf_printf(o, "kaskad_smpp_sessions{route=\"%s\",state=\"%s\"} %d\n", r->cfg.smpp.name,
                    smpp_session_state_name((enum smpp_session_state)s), by[s]);
  }
  kk_buf_puts(o, "# HELP kaskad_smpp_inflight submit_sm awaiting submit_sm_resp\n"
                 "# TYPE kaskad_smpp_inflight gauge\n");
  for (struct route *r = d->routes; r; r = r->next) {
    struct smpp_client_stats st;
    smpp_client_get_stats(r->client, &st);
    kk_buf_printf(o, "kaskad_smpp_inflight{route=\"%s\"} %d\n", r->cfg.smpp.name, st.inflight);
  }
  kk_buf_puts(o, "# HELP kaskad_dispatch_queued Messages waiting in memory for a route\n"
                 "# TYPE kaskad_dispatch_queued gauge\n");
  for (struct route *r = d->routes; r; r = r->next)
    kk_buf_printf(o, "kaskad_dispatch_queued{route=\"%s\"} %d\n", r->cfg.smpp.name, r->queued);
  kk_buf_printf(o, "# HELP kaskad_dispatch_jobs Messages held in memory\n"
                   "# TYPE kaskad_dispatch_jobs gauge\nkaskad_dispatch_jobs %d\n", d->jobs);
}

void dispatch_stop(struct dispatch *d, void (*done)(void *ud), void *ud) {
  d->stopping = 1;
  store_unsubscribe(d->store, on_notes, d);
  d->stop_done = done;
  d->stop_ud = ud;
  uv_check_stop(&d->check);
  uv_timer_stop(&d->delay_timer);
  uv_timer_stop(&d->hold_timer);
  d->closing_clients = 0;
  for (struct route *r = d->routes; r; r = r->next) d->closing_clients++;
  for (struct route *r = d->dead; r; r = r->next) d->closing_clients++;
  if (d->closing_clients == 0) {
    if (done) done(ud);
    return;
  }
  while (d->routes) route_retire(d, d->routes);
}

static void free_list(struct dispatch *d, struct job *j) {
  while (j) {
    struct job *next = j->next;
    job_free(d, j);
    j = next;
  }
}

static void on_handle_closed(uv_handle_t *h) {
  struct dispatch *d = h->data;
  if (h == (uv_handle_t *)&d->check) {
    free(d->scan_rows);
    free(d);
  }
}

void dispatch_free(struct dispatch *d) {
  store_unsubscribe(d->store, on_notes, d);
  free_list(d, d->orphans);
  free_list(d, d->delayed);
  free_list(d, d->held);
  d->orphans = d->delayed = d->held = NULL;
  uv_close((uv_handle_t *)&d->delay_timer, NULL);
  uv_close((uv_handle_t *)&d->hold_timer, NULL);
  uv_close((uv_handle_t *)&d->check, on_handle_closed);
}
