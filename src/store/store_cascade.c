/*
 * store_cascade.c - the backend-neutral side of channels and cascades: the
 * steps' text, the cascade's counters, the clamp of reported times, what
 * the channel and cascade writes of store.h queue (the backend carries each
 * out: store_int.h, STORE_OP_LIST_CASCADE) and the claims that hand out due
 * channel attempts and step deadlines.
 *
 * The rules themselves are pure (cascade/cascade_fsm.h); the backend runs
 * them inside its transactions (sqlite/sq_cascade.c).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/kk_err.h"
#include "core/kk_mem.h"
#include "store/store_int.h"

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

void store_get_cascade_stats(struct store *s, struct store_cascade_stats *out) {
  pthread_mutex_lock(&s->mu);
  *out = s->cstats;
  pthread_mutex_unlock(&s->mu);
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
  snprintf(d->provider_id, sizeof d->provider_id, "%s", r->provider_id ? r->provider_id : "");
  snprintf(d->error, sizeof d->error, "%s", r->error ? r->error : "");
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
  snprintf(d->channel, sizeof d->channel, "%s", st->channel);
  snprintf(d->provider_id, sizeof d->provider_id, "%s", st->provider_id ? st->provider_id : "");
  snprintf(d->peer, sizeof d->peer, "%s", st->peer ? st->peer : "");
  snprintf(d->status, sizeof d->status, "%s", st->status);
  snprintf(d->error, sizeof d->error, "%s", st->error ? st->error : "");
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
  snprintf(d->phone, sizeof d->phone, "%s", phone);
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
    if (rc == 0 && granted[i])
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
    if (granted[i]) out[k++] = out[i];
  *n = k;
  return 0;
}
