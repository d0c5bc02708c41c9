/*
 * store_cascade.c - the backend-neutral side of channels and cascades: the
 * steps' text, the cascade's counters, the clamp of reported times, what
 * the channel and cascade writes of store.h queue (the backend carries each
 * out: store_int.h, STORE_OP_LIST_CASCADE) and the claims that hand out due
 * channel attempts and step deadlines.
 *
 * The rules themselves are pure (cascade/cascade_fsm.h). The glue that
 * runs them (store_casc.h: casc_run_*) is here too: it turns a message's
 * row into what the rules read, asks them again until they need nothing
 * more, makes the notes and counters of their effects and decides which
 * rows each effect writes; and it carries out the cascade's operations (a
 * send's result, a step's deadline, cancelling a scheduled message). The
 * backend loads and writes the rows, in its SQL, inside its transactions
 * (struct casc_ops: sqlite/sq_cascade.c, pg/pg_cascade.c).
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/kk_err.h"
#include "core/kk_jscan.h"
#include "core/kk_mem.h"
#include "core/kk_status.h"
#include "money/money_bill.h"
#include "store/store_casc.h"

/* ---- steps ---------------------------------------------------------------- */

int store_steps_parse(const char *text, struct store_step *out) {
  if (text == NULL || text[0] == '\0') {
    memset(out, 0, sizeof *out);
    snprintf(out->channel, sizeof out->channel, "sms");
    snprintf(out->wait, sizeof out->wait, "delivered");
    return 1;
  }
  /* "channel/wait/timeout_ms,..." (store_steps_format) */
  int n = 0;
  const char *p = text;
  while (*p && n < STORE_MAX_STEPS) {
    struct store_step *st = &out[n];
    memset(st, 0, sizeof *st);
    size_t len = strcspn(p, "/");
    if (len == 0 || len >= sizeof st->channel || p[len] != '/') return -1;
    memcpy(st->channel, p, len);
    p += len + 1;
    len = strcspn(p, "/");
    if (len == 0 || len >= sizeof st->wait || p[len] != '/') return -1;
    memcpy(st->wait, p, len);
    p += len + 1;
    char *end;
    long long ms = strtoll(p, &end, 10);
    if (end == p || ms < 0 || (*end != ',' && *end != '\0')) return -1;
    st->timeout_ms = ms;
    n++;
    p = *end == ',' ? end + 1 : end;
  }
  return *p ? -1 : n;
}

int store_steps_format(const struct store_step *steps, int n, char *out, size_t cap) {
  size_t o = 0;
  for (int i = 0; i < n; i++) {
    int k = snprintf(out + o, cap - o, "%s%s/%s/%lld", i ? "," : "", steps[i].channel,
                     steps[i].wait, (long long)steps[i].timeout_ms);
    if (k < 0 || (size_t)k >= cap - o) return KK_ENOSPC;
    o += (size_t)k;
  }
  return 0;
}

/* ---- counters, times, rows ---------------------------------------------------- */

/* Every writer's counts together. */
void store_get_cascade_stats(struct store *s, struct store_cascade_stats *out) {
  pthread_mutex_lock(&s->mu);
  *out = s->cstats;
  pthread_mutex_unlock(&s->mu);
  for (int i = 0; i < s->nlanes; i++) {
    struct store_cascade_stats l;
    store_get_cascade_stats(s->lanes[i], &l);
    for (int c = 0; c < KK_CHAN_COUNT; c++) {
      out->seen[c] |= l.seen[c];
      out->started[c] += l.started[c];
      out->skipped[c] += l.skipped[c];
      out->sent[c] += l.sent[c];
      out->delivered[c] += l.delivered[c];
      out->read[c] += l.read[c];
      out->failed[c] += l.failed[c];
      out->timeout[c] += l.timeout[c];
      out->fallthrough[c] += l.fallthrough[c];
      out->late[c] += l.late[c];
    }
    out->delivered_twice += l.delivered_twice;
    out->finished += l.finished;
    out->held_quiet += l.held_quiet;
    out->charges_capped += l.charges_capped;
  }
}

int64_t store_clamp_at(int64_t at, int64_t now) {
  if (at == 0) return now;
  if (at > now + STORE_CLAMP_MS) return now + STORE_CLAMP_MS;
  if (at < now - STORE_CLAMP_MS) return now - STORE_CLAMP_MS;
  return at;
}

void store_chan_due_free(struct store_chan_due *d) {
  free(d->text);
  free(d->extra);
  d->text = d->extra = NULL;
}

/* ---- writes --------------------------------------------------------------------- */

void store_chan_trying(struct store *s, const int64_t *ids, int n, int64_t at,
                       store_done_cb done, void *arg) {
  /* Freed with the operation. */
  struct store_trying_data *d = kk_xmalloc(sizeof *d + (size_t)n * sizeof d->ids[0]);
  d->at = at;
  d->n = n;
  memcpy(d->ids, ids, (size_t)n * sizeof d->ids[0]);
  struct store_op *op = store_keep(store_op_of(s, STORE_OP_CHAN_TRYING, done, arg, d, 0));
  op->weight = n;
  store_submit(s, op);
}

void store_chan_result(struct store *s, const struct store_chan_result *r,
                       store_done_cb done, void *arg) {
  struct store_chan_result_data *d = kk_xcalloc(1, sizeof *d);   /* freed with the op */
  d->r = *r;
  kk_scopy(d->provider_id, sizeof d->provider_id, r->provider_id);
  kk_scopy(d->error, sizeof d->error, r->error);
  d->r.provider_id = d->provider_id;
  d->r.error = d->error;
  struct store_op *op = store_keep(store_op_of(s, STORE_OP_CHAN_RESULT, done, arg, d, 0));
  op->weight = 4;
  store_submit(s, op);
}

void store_chan_status(struct store *s, struct store_chan_status *st,
                       store_done_cb done, void *arg) {
  struct store_chan_status_data *d = kk_xcalloc(1, sizeof *d);   /* freed with the op */
  st->at = store_clamp_at(st->at, store_now_ms());
  d->st = st;
  kk_scopy(d->channel, sizeof d->channel, st->channel);
  kk_scopy(d->provider_id, sizeof d->provider_id, st->provider_id);
  kk_scopy(d->peer, sizeof d->peer, st->peer);
  kk_scopy(d->status, sizeof d->status, st->status);
  kk_scopy(d->error, sizeof d->error, st->error);
  struct store_op *op = store_op_of(s, STORE_OP_CHAN_STATUS, done, arg, d, 0);
  op->weight = 4;
  store_submit(s, op);
}

void store_step_timeout(struct store *s, int64_t msg_id, int step, int64_t at,
                        store_done_cb done, void *arg) {
  struct store_timeout_data *d = kk_xcalloc(1, sizeof *d);   /* freed with the op */
  d->msg_id = msg_id;
  d->step = step;
  d->at = at;
  struct store_op *op = store_op_of(s, STORE_OP_STEP_TIMEOUT, done, arg, d, 0);
  op->weight = 5;
  store_submit(s, op);
}

void store_wa_inbound(struct store *s, int64_t scope, const char *phone, int64_t at,
                      store_done_cb done, void *arg) {
  struct store_wa_data *d = kk_xcalloc(1, sizeof *d);   /* freed with the op */
  d->scope = scope;
  kk_scopy(d->phone, sizeof d->phone, phone);
  d->at = at;
  store_submit(s, store_op_of(s, STORE_OP_WA_INBOUND, done, arg, d, 0));
}

void store_early_expire(struct store *s, int64_t now, store_done_cb done, void *arg) {
  struct store_early_expire_data *d = kk_xcalloc(1, sizeof *d);   /* freed with the op */
  d->now = now;
  store_submit(s, store_op_of(s, STORE_OP_EARLY_EXPIRE, done, arg, d, 0));
}

/* ---- claims ----------------------------------------------------------------------- */

#define CLAIM_MAX 512   /* rows claimed at once */

int store_chan_claim(struct store *s, int64_t now, int64_t *cursor_due, int64_t *cursor_id,
                     struct store_chan_due *out, int max, int *n, int *more) {
  if (max > CLAIM_MAX) max = CLAIM_MAX;
  *n = 0;
  *more = 0;
  int got = 0;
  int rc = s->be->read.chan_due(s, now, cursor_due, cursor_id, out, max, &got);
  if (rc) return rc;
  int64_t ids[CLAIM_MAX];
  unsigned char granted[CLAIM_MAX];
  for (int i = 0; i < got; i++) ids[i] = out[i].attempt_id;
  if (got > 0) rc = s->be->claim(s, STORE_CLAIM_CHANNEL, ids, got, STORE_CHAN_LEASE_MS, granted);
  int k = 0;
  for (int i = 0; i < got; i++) {
    if (rc == 0 && granted[i] == STORE_CLAIM_GOT)
      out[k++] = out[i];
    else
      store_chan_due_free(&out[i]);   /* another node's, or not claimed */
  }
  if (rc) return rc;
  *n = k;
  *more = got == max;
  return 0;
}

int store_wait_claim(struct store *s, int64_t now, struct store_wait_due *out, int max, int *n,
                     int64_t *next) {
  if (max > CLAIM_MAX) max = CLAIM_MAX;
  *n = 0;
  *next = 0;
  int got = 0;
  int rc = s->be->read.wait_due(s, now, out, max, &got);
  if (rc) return rc;
  if (got == 0) {
    *next = s->be->read.wait_next(s);
    return 0;
  }
  int64_t ids[CLAIM_MAX];
  unsigned char granted[CLAIM_MAX];
  for (int i = 0; i < got; i++) ids[i] = out[i].msg_id;
  rc = s->be->claim(s, STORE_CLAIM_WAIT, ids, got, STORE_WAIT_LEASE_MS, granted);
  if (rc) return rc;
  int k = 0;
  for (int i = 0; i < got; i++)
    if (granted[i] == STORE_CLAIM_GOT) out[k++] = out[i];
  *n = k;
  return 0;
}

/* ---- the rules' glue (store_casc.h) ---------------------------------------------- */

_Static_assert(CFSM_MAX_STEPS == STORE_MAX_STEPS, "the rules see every step");

static void iso_ms(int64_t ms, char out[32]) {
  time_t t = (time_t)(ms / 1000);
  struct tm tm;
  gmtime_r(&t, &tm);
  snprintf(out, 32, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", (tm.tm_year + 1900) % 10000,
           (tm.tm_mon + 1) % 100, tm.tm_mday % 100, tm.tm_hour % 100, tm.tm_min % 100,
           tm.tm_sec % 100, (int)(ms % 1000));
}

int casc_hold_decision(const struct cfsm_fx *f, const char *channel, char *out, size_t cap) {
  if (f->kind != CFSM_FX_ATT_ADD || f->error == NULL || strcmp(f->error, "quiet_hours") != 0)
    return 0;
  char at[32], until[32];
  iso_ms(f->t1, at);
  iso_ms(f->t2, until);
  snprintf(out, cap,
           "{\"at\":\"%s\",\"rule\":\"quiet_hours\",\"outcome\":\"deferred\","
           "\"reason\":\"quiet_hours\",\"channel\":\"%s\",\"until\":\"%s\"}",
           at, channel, until);
  return 1;
}

void casc_msg_free(struct casc_msg *m) {
  free(m->cascade);
  free(m->extra);
  m->cascade = m->extra = NULL;
}

void casc_att_to_fsm(const struct casc_att *a, int64_t id, struct cfsm_att *out) {
  out->id = id;
  out->chan = kk_chan_parse(a->channel);
  out->status = kk_status_parse(a->status);
  out->step = a->step;
  out->sent_at = a->sent_at;
  out->delivered_at = a->delivered_at;
  out->read_at = a->read_at;
  out->tries = a->tries;
}

/* Counts one of the rules' counters in the writer's (published with the
   batch). A channel kaskad does not know is not counted per channel. */
static void count(struct store_cascade_stats *c, enum kk_chan chan, enum cfsm_counter which) {
  if (which == CFSM_C_TWICE) {
    c->delivered_twice++;
    return;
  }
  if (which == CFSM_C_FINISHED) {
    c->finished++;
    return;
  }
  if (which == CFSM_C_HELD) {
    c->held_quiet++;
    return;
  }
  if (chan < 0 || chan >= KK_CHAN_COUNT) return;
  c->seen[chan] = 1;
  switch (which) {
  case CFSM_C_STARTED: c->started[chan]++; break;
  case CFSM_C_SKIPPED: c->skipped[chan]++; break;
  case CFSM_C_SENT: c->sent[chan]++; break;
  case CFSM_C_DELIVERED: c->delivered[chan]++; break;
  case CFSM_C_READ: c->read[chan]++; break;
  case CFSM_C_FAILED: c->failed[chan]++; break;
  case CFSM_C_TIMEOUT: c->timeout[chan]++; break;
  case CFSM_C_FALLTHROUGH: c->fallthrough[chan]++; break;
  case CFSM_C_LATE: c->late[chan]++; break;
  default: break;
  }
}

void casc_run_init(struct casc_run *r, struct store *s, const struct casc_ops *ops,
                   struct store_cascade_stats *stats, struct casc_msg *m) {
  /* The effects are written by the rules: not cleared on every event. */
  memset(r, 0, offsetof(struct casc_run, out));
  r->out.need = 0;
  r->out.nfx = 0;
  r->s = s;
  r->ops = ops;
  r->stats = stats;
  r->m = m;
  struct cfsm_msg *c = &r->cm;
  c->status = kk_status_parse(m->status);
  c->chan = kk_chan_parse(m->channel);
  c->step = m->step;
  c->attempt_id = m->attempt_id;
  c->done = m->done;
  c->cost = m->cost;
  c->delivered_twice = m->delivered_twice;
  c->expires_at = m->expires_at;
  c->inserting = m->ins;
  c->natt = -1;
  r->nsteps = store_steps_parse(m->cascade, r->steps);
  if (r->nsteps < 0) r->nsteps = 0;
  c->nsteps = r->nsteps;
  for (int j = 0; j < r->nsteps; j++) {
    c->steps[j].chan = kk_chan_parse(r->steps[j].channel);
    c->steps[j].wait = strcmp(r->steps[j].wait, "read") == 0        ? 3
                       : strcmp(r->steps[j].wait, "delivered") == 0 ? 2
                                                                    : 1;
    c->steps[j].timeout_ms = r->steps[j].timeout_ms;
  }
}

void casc_run_free(struct casc_run *r) { json_decref(r->extra); }

/* The address the message has for a step's channel, or NULL. */
static const char *address_for(const struct casc_msg *m, json_t *extra, enum kk_chan chan) {
  if (chan == KK_CHAN_NONE) return NULL;
  const char *field = kk_chan_address_field(chan);
  if (field) {
    const char *a = json_string_value(json_object_get(extra, field));
    if (a && a[0]) return a;
    if (!kk_chan_phone_fallback(chan)) return NULL;
  }
  return m->to[0] ? m->to : NULL;
}

/* Whether steps from `from` on can start, up to the first that can. */
static void fill_use(struct casc_run *r, int from) {
  struct casc_msg *m = r->m;
  if (m->has_extra && m->extra == NULL) m->extra = r->ops->extra(r->s, m->id);
  if (r->extra == NULL && m->extra) {
    /* Only what the steps need (the extra also carries every channel's text):
       the quiet hours and each step's address field. */
    const char *keys[1 + STORE_MAX_STEPS];
    int nk = 0;
    keys[nk++] = "quiet";
    for (int j = 0; j < r->nsteps && nk < 1 + STORE_MAX_STEPS; j++)
      keys[nk++] = r->cm.steps[j].chan == KK_CHAN_NONE ? NULL
                                                       : kk_chan_address_field(r->cm.steps[j].chan);
    r->extra = kk_jscan_pick(m->extra, keys, nk);
    if (r->extra == NULL) r->extra = json_loads(m->extra, 0, NULL);
  }
  /* The recipient's quiet hours, as the policy gave them at accept. */
  json_t *q = json_object_get(r->extra, "quiet");
  if (json_is_string(json_object_get(q, "tz"))) {
    r->cm.quiet_tz = json_string_value(json_object_get(q, "tz"));
    r->cm.quiet_from = (int)json_integer_value(json_object_get(q, "from"));
    r->cm.quiet_to = (int)json_integer_value(json_object_get(q, "to"));
  }
  for (int j = from; j < r->nsteps; j++) {
    enum kk_chan ch = r->cm.steps[j].chan;
    r->addr[j] = address_for(m, r->extra, ch);
    if (r->addr[j] == NULL) {
      r->cm.use[j] = CFSM_USE_NO_ADDRESS;
      continue;
    }
    if (ch != KK_CHAN_SMS) {
      r->scope[j] = r->ops->scope(r->s, m->account_id, r->steps[j].channel);
      if (r->scope[j] < 0) {
        r->cm.use[j] = CFSM_USE_NO_CONFIG;
        continue;
      }
    }
    r->cm.use[j] = CFSM_USE_OK;
    break;
  }
}

/* Gives the rules what they asked for. 0 or KK_ESTORE. */
static int run_supply(struct casc_run *r, struct cfsm_event *ev, const char *channel) {
  unsigned need = r->out.need;
  if (need & CFSM_NEED_USE) fill_use(r, r->out.need_from);
  if ((need & CFSM_NEED_PRICE) && ev) {
    ev->price = r->unit_priced ? r->unit_price : r->ops->price(r->s, r->m->account_id, channel);
    ev->price_known = 1;
  }
  if (need & CFSM_NEED_ATTEMPTS)
    return r->ops->attempts(r->s, r->m->id, r->cm.att, CFSM_MAX_ATT, &r->cm.natt);
  return 0;
}

int casc_run_start(struct casc_run *r, int64_t at) {
  fill_use(r, 0);
  int rc = 0;
  do {
    cfsm_start(&r->cm, at, &r->out);
  } while (r->out.need && (rc = run_supply(r, NULL, NULL)) == 0);
  return rc;
}

int casc_run_event(struct casc_run *r, const struct cfsm_att *fa, struct cfsm_event *ev,
                   const char *channel) {
  int rc = 0;
  do {
    cfsm_event(&r->cm, fa, ev, &r->out);
  } while (r->out.need && (rc = run_supply(r, ev, channel)) == 0);
  return rc;
}

int casc_run_deadline(struct casc_run *r, const struct cfsm_att *fa, int step, int64_t at) {
  int rc = 0;
  do {
    cfsm_deadline(&r->cm, fa, step, at, &r->out);
  } while (r->out.need && (rc = run_supply(r, NULL, NULL)) == 0);
  return rc;
}

/* What keeps an attempt added from being sent (empty: nothing). */
static void att_why(const struct cfsm_fx *f, char *why, size_t cap) {
  why[0] = '\0';
  if (f->use == CFSM_USE_NO_CONFIG) {
    snprintf(why, cap, "channel not configured");
  } else if (f->use == CFSM_USE_NO_ADDRESS) {
    const char *field = kk_chan_address_field(f->chan);
    snprintf(why, cap, "no %s",
             field && !kk_chan_phone_fallback(f->chan) ? field : "phone number");
  } else if (f->error) {
    snprintf(why, cap, "%s", f->error);   /* held: quiet_hours */
  }
}

/* The attempt; a step held for quiet hours is a decision of its message too. */
static int att_add(struct casc_run *r, const struct cfsm_fx *f) {
  char why[64];
  att_why(f, why, sizeof why);
  int64_t id = r->s->be->new_id(r->s, STORE_ID_ATTEMPT);
  if (id <= 0) return KK_ESTORE;
  int rc = r->ops->att_add(r, f, id, why[0] ? why : NULL);
  if (rc == 0 && f->status == KK_ST_SENDING) r->new_id = id;
  char hold[256];
  if (rc == 0 && casc_hold_decision(f, r->steps[f->step].channel, hold, sizeof hold))
    rc = r->ops->decide(r, hold);
  return rc;
}

int casc_record_event(struct store *s, const struct casc_ops *ops, const struct casc_msg *m,
                      int64_t attempt_id, const char *status, const char *channel,
                      const char *error, int64_t cost, int64_t at) {
  int rc = ops->event(s, m->id, attempt_id, status, at, error);
  if (rc || m->callback_url[0] == '\0') return rc;
  return ops->outbox(s, m, status, channel, error, cost, at);
}

/* Writes one effect that is a row through the backend's ops. */
static int write_row(struct casc_run *r, const struct cfsm_fx *f) {
  const struct casc_ops *o = r->ops;
  if (o->before) {
    int rc = o->before(r, f);
    if (rc) return rc;
  }
  switch (f->kind) {
  case CFSM_FX_ATT_SET: return o->att_set(r, f);
  case CFSM_FX_ATT_ADD: return att_add(r, f);
  case CFSM_FX_MSG_STEP: return o->msg_step(r, f);
  case CFSM_FX_MSG_DONE:
  case CFSM_FX_MSG_CLEAR_DUE:
  case CFSM_FX_MSG_WAIT: return o->msg_mark(r, f->kind, f->t0);
  case CFSM_FX_MSG_FIN: return o->msg_fin(r, f);
  case CFSM_FX_EVENT:
    return casc_record_event(r->s, o, r->m, casc_att_id(r, f->attempt_id),
                             kk_status_name(f->status), kk_chan_name(f->chan), f->error, f->cost,
                             f->t0);
  case CFSM_FX_TRACE: {
    char ev[40];
    snprintf(ev, sizeof ev, "%s:%s", kk_chan_name(f->chan), kk_status_name(f->status));
    return o->event(r->s, r->m->id, f->attempt_id, ev, f->t0, f->error);
  }
  default: return 0;   /* notes and counters: written by no backend */
  }
}

int casc_run_write(struct casc_run *r) {
  static const enum store_note_kind notes[] = {
      [CFSM_NOTE_SMS] = STORE_NOTE_SMS, [CFSM_NOTE_CHANNEL] = STORE_NOTE_CHANNEL,
      [CFSM_NOTE_WAIT] = STORE_NOTE_WAIT, [CFSM_NOTE_SMS_CANCEL] = STORE_NOTE_SMS_CANCEL};
  for (int i = 0; i < r->out.nfx; i++) {
    const struct cfsm_fx *f = &r->out.fx[i];
    int rc = 0;
    if (f->kind == CFSM_FX_NOTE)
      note(r->s, notes[f->flags], r->m->id, casc_att_id(r, f->attempt_id), f->t0);
    else if (f->kind == CFSM_FX_COUNT)
      count(r->stats, f->chan, (enum cfsm_counter)f->flags);
    else
      rc = write_row(r, f);
    if (rc == 0 && f->kind == CFSM_FX_ATT_SET && f->cost > 0) rc = r->ops->charge(r, f);
    if (rc == 0 && f->kind == CFSM_FX_ATT_SET && f->refund) rc = r->ops->refund(r, f);
    if (rc) return rc;
    /* A row of the attempt waiting in the send engine must not go any more. */
    if (f->kind == CFSM_FX_ATT_SET && f->chan != KK_CHAN_SMS)
      note(r->s, STORE_NOTE_CHANNEL_END, r->m->id, f->attempt_id, f->t0);
  }
  struct casc_msg *m = r->m;
  const struct cfsm_msg *c = &r->cm;
  if (c->done && !m->done) {
    int rc = r->ops->release(r);
    if (rc) return rc;
  }
  m->step = c->step;
  m->attempt_id = casc_att_id(r, c->attempt_id);
  m->done = c->done;
  m->cost = c->cost;
  m->delivered_twice = c->delivered_twice;
  m->due_at = c->due_at;
  m->wait_until = c->wait_until;
  kk_scopy(m->status, sizeof m->status, kk_status_name(c->status));
  kk_scopy(m->channel, sizeof m->channel, kk_chan_name(c->chan));
  return 0;
}

/* ---- the runs every backend makes ------------------------------------------ */

int casc_new(struct store *s, const struct casc_ops *ops, struct store_cascade_stats *stats,
             struct store_msg_new *n, struct casc_first *f) {
  struct casc_msg m;
  memset(&m, 0, sizeof m);
  m.ins = 1;
  m.id = n->id;
  m.account_id = n->account_id;
  kk_scopy(m.public_id, sizeof m.public_id, n->public_id);
  kk_scopy(m.to, sizeof m.to, n->to);
  kk_scopy(m.status, sizeof m.status, "accepted");
  kk_scopy(m.callback_url, sizeof m.callback_url, n->callback_url);
  m.cascade = n->cascade ? kk_xstrdup(n->cascade) : NULL;
  m.extra = n->extra ? kk_xstrdup(n->extra) : NULL;
  m.has_extra = n->extra != NULL;
  kk_scopy(m.route, sizeof m.route, n->route);
  m.segments = n->segments;
  m.expires_at = n->expires_at;
  struct casc_run r;
  casc_run_init(&r, s, ops, stats, &m);
  /* A message the policy deferred starts its first step then. */
  int64_t start = n->not_before > n->created_at ? n->not_before : n->created_at;
  int rc = casc_run_start(&r, start);
  if (rc == 0) rc = casc_run_write(&r);
  n->attempt_id = r.new_id;
  kk_scopy(n->first_channel, sizeof n->first_channel, r.new_id ? r.steps[m.step].channel : "");
  memset(f, 0, sizeof *f);
  f->step = m.step;
  f->attempt_id = m.attempt_id;
  f->due_at = m.due_at;
  f->wait_until = m.wait_until;
  f->done = m.done;
  f->cost = m.cost;
  kk_scopy(f->status, sizeof f->status, start > n->created_at && !m.done ? "scheduled" : m.status);
  kk_scopy(f->channel, sizeof f->channel, m.channel);
  casc_run_free(&r);
  casc_msg_free(&m);
  return rc;
}

int casc_event(struct store *s, const struct casc_ops *ops, struct store_cascade_stats *stats,
               struct casc_msg *m, const struct casc_att *a, int64_t attempt_id,
               const char *status, const char *provider_id, const char *error, int64_t at,
               int units) {
  struct casc_run r;
  casc_run_init(&r, s, ops, stats, m);
  r.provider_id = provider_id;
  r.error = error;
  r.parts_sent = a->parts_sent;
  r.unit_priced = a->priced;
  r.unit_price = a->price;
  struct cfsm_att fa;
  casc_att_to_fsm(a, attempt_id, &fa);
  struct cfsm_event ev = {.status = kk_status_parse(status), .error = error, .at = at,
                          .units = units, .force_write = provider_id != NULL || a->parts_dirty,
                          .unbilled = money_unbilled(a->channel, error)};
  int rc = 0;
  if (ev.unbilled && a->sent_at && (ev.status == KK_ST_FAILED || ev.status == KK_ST_EXPIRED))
    rc = ops->att_cost(s, attempt_id, &ev.charged);
  if (rc == 0) rc = casc_run_event(&r, &fa, &ev, a->channel);
  if (rc == 0) rc = casc_run_write(&r);
  casc_run_free(&r);
  casc_msg_free(m);
  return rc;
}

int casc_deadline(struct store *s, const struct casc_ops *ops, struct store_cascade_stats *stats,
                  struct casc_msg *m, int step, int64_t at) {
  if (m->done || m->step != step) {
    casc_msg_free(m);
    return 0;
  }
  struct casc_att a;
  memset(&a, 0, sizeof a);
  int rc = ops->att_load(s, m->attempt_id, &a);
  if (rc != 0 && rc != KK_ENOENT) {
    casc_msg_free(m);
    return rc;
  }
  int gone = rc == KK_ENOENT;
  struct cfsm_att fa;
  casc_att_to_fsm(&a, m->attempt_id, &fa);
  struct casc_run r;
  casc_run_init(&r, s, ops, stats, m);
  r.parts_sent = a.parts_sent;
  rc = casc_run_deadline(&r, gone ? NULL : &fa, step, at);
  if (rc == 0) rc = casc_run_write(&r);
  casc_run_free(&r);
  casc_msg_free(m);
  return rc;
}

/* ---- the operations every backend carries out ---------------------------------- */

int casc_early_apply(struct store *s, const struct casc_ops *ops, int64_t attempt_id,
                     const char *provider_id) {
  struct casc_held held[CASC_HELD_MAX];
  int n = 0;
  int rc = ops->early(s, attempt_id, provider_id, held, &n);
  for (int i = 0; i < n && rc == 0; i++)
    rc = ops->att_event(s, attempt_id, NULL, held[i].status, NULL,
                        held[i].error[0] ? held[i].error : NULL, held[i].at, 0);
  return rc;
}

int casc_chan_result(struct store *s, const struct casc_ops *ops, struct store_op *op) {
  struct store_chan_result_data *d = op->data;
  struct store_chan_result *r = &d->r;
  if (r->outcome == STORE_CHAN_RETRY || r->outcome == STORE_CHAN_WAIT) {
    /* a wait (quiet hours) counts no try */
    int rc = ops->att_retry(s, r->attempt_id, r->retry_at, d->error[0] ? d->error : NULL,
                            r->outcome == STORE_CHAN_RETRY);
    if (rc == 0) note(s, STORE_NOTE_CHANNEL, 0, r->attempt_id, r->retry_at);
    return rc;
  }
  if (r->outcome == STORE_CHAN_SENT) {
    int rc = ops->att_event(s, r->attempt_id, NULL, "sent", d->provider_id, NULL, r->at,
                            r->units);
    return rc ? rc : casc_early_apply(s, ops, r->attempt_id, d->provider_id);
  }
  return ops->att_event(s, r->attempt_id, NULL, "failed", NULL, d->error, r->at, 0);
}

int casc_timeout(struct store *s, const struct casc_ops *ops, struct store_cascade_stats *stats,
                 struct store_op *op) {
  struct store_timeout_data *d = op->data;
  struct casc_msg m;
  int rc = ops->msg_load(s, d->msg_id, &m);
  if (rc == KK_ENOENT) return 0;
  if (rc) return rc;
  return casc_deadline(s, ops, stats, &m, d->step, d->at);
}

int casc_cancel(struct store *s, const struct casc_ops *ops, struct store_op *op) {
  struct store_msg_cancel *c = op->data;
  c->found = c->cancelled = 0;
  struct casc_msg m;
  int rc = ops->msg_find(s, c->account_id, c->public_id, &m);
  if (rc == KK_ENOENT) return 0;
  if (rc) return rc;
  c->found = 1;
  kk_scopy(c->status, sizeof c->status, m.status);
  if (strcmp(m.status, "scheduled") != 0) {
    casc_msg_free(&m);
    return 0;
  }
  rc = ops->msg_cancel(s, &m, c->at);
  if (rc == 0)
    rc = casc_record_event(s, ops, &m, m.attempt_id, "cancelled", m.channel, NULL, 0, c->at);
  if (rc == 0 && m.attempt_id)
    note(s, strcmp(m.channel, "sms") == 0 ? STORE_NOTE_SMS_CANCEL : STORE_NOTE_CHANNEL_END, m.id,
         m.attempt_id, c->at);
  if (rc == 0) {
    c->cancelled = 1;
    snprintf(c->status, sizeof c->status, "cancelled");
  }
  casc_msg_free(&m);
  return rc;
}
