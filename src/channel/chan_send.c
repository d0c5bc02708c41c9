/*
 * chan_send.c - one channel attempt from its read to its committed result
 * (see chan_engine.h): building its request, batching (VK's execute),
 * marking requests before they go (store_chan_trying), WhatsApp's window,
 * and what the provider's answer means (retries with backoff).
 *
 * A send is in the engine's ready set from the moment it is read until the
 * store has committed its result, so it is never sent twice at once.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "channel/chan_engine_int.h"
#include "core/kk_err.h"
#include "core/kk_hold.h"
#include "core/kk_jscan.h"
#include "core/kk_log.h"
#include "core/kk_mem.h"

#define LOGCTX CHAN_LOGCTX

struct chan_send {
  struct chan_engine *e;
  struct chan_send *next_marked; /* in e->marked: marked, waiting for a request slot */
  struct store_chan_due row;     /* text and extra owned */
  const struct chan_driver *drv;
  struct chan_req req;
  int64_t started_ms;
};

static void send_free(struct chan_send *k) {
  free(k->row.text);
  free(k->row.extra);
  chan_req_free(&k->req);
  free(k);
}

/* k leaves: its id may be taken again, the engine may go on. */
static void send_leave(struct chan_send *k) {
  struct chan_engine *e = k->e;
  chan_ready_forget(&e->ready, k->row.attempt_id);
  e->ninflight--;
  send_free(k);
  chan_engine_send_done(e);
}

static void on_result_stored(void *arg, int rc) {
  struct chan_send *k = arg;
  if (rc) kk_error(LOGCTX, "attempt %lld: result not stored: %s", (long long)k->row.attempt_id,
                   kk_strerror(rc));
  send_leave(k);
}

static void store_result(struct chan_send *k, enum store_chan_outcome outcome,
                         const char *provider_id, const char *error, int64_t retry_at) {
  struct store_chan_result r = {.attempt_id = k->row.attempt_id, .outcome = outcome,
                                .provider_id = provider_id, .error = error,
                                .at = store_now_ms(), .retry_at = retry_at, .units = 1};
  store_chan_result(k->e->store, &r, on_result_stored, k);
}

static long backoff_ms(const struct chan_engine *e, int tries) {
  long d = e->o.retry_min_ms;
  for (int i = 0; i < tries && d < e->o.retry_max_ms; i++) d *= 2;
  return d < e->o.retry_max_ms ? d : e->o.retry_max_ms;
}

/* What a temporary failure means: again after the backoff, or failed when
   the validity ends first. */
static void store_retry(struct chan_send *k, const struct chan_result *res, int64_t now) {
  long delay = res->retry_after_ms > 0 ? res->retry_after_ms : backoff_ms(k->e, k->row.tries);
  if (now + delay >= k->row.expires_at) {
    char why[200];
    snprintf(why, sizeof why, "validity ended: %s", res->error);
    store_result(k, STORE_CHAN_FAILED, NULL, why, 0);
    return;
  }
  kk_info(LOGCTX, "message %s: %s answered %s [%s]; again in %ld ms", k->row.public_id,
          k->row.channel, res->error, res->detail, delay);
  store_result(k, STORE_CHAN_RETRY, NULL, res->error, now + delay);
}

/* What the provider's answer means for one send: stores its result. */
static void send_result(struct chan_send *k, const struct http_client_resp *resp,
                        struct chan_result *res) {
  struct chan_counters *n = chan_engine_counters(k->e, k->row.channel);
  n->req_ms_sum += resp->total_ms;
  if (resp->refused) {
    /* The settings lead where kaskad does not connect: no retry can help. */
    res->outcome = CHAN_CONFIG;
    snprintf(res->error, sizeof res->error, "%s", resp->error);
  }
  if (resp->status == 0 && res->error[0] == '\0')
    snprintf(res->error, sizeof res->error, "no answer: %s", resp->error);
  switch (res->outcome) {
  case CHAN_OK: {
    n->req_ok++;
    char pid[72];
    if (res->provider_id[0])
      snprintf(pid, sizeof pid, "%s", res->provider_id);
    else
      snprintf(pid, sizeof pid, "%lld.%s@kaskad", (long long)k->row.attempt_id, k->row.public_id);
    kk_debug(LOGCTX, "message %s: %s accepted it as %s", k->row.public_id, k->row.channel, pid);
    store_result(k, STORE_CHAN_SENT, pid, NULL, 0);
    return;
  }
  case CHAN_RETRY:
    n->req_retry++;
    store_retry(k, res, store_now_ms());
    return;
  case CHAN_CONFIG:
    n->req_config++;
    kk_warnx(LOGCTX, "message %s: %s refused the account's settings: %s [%s]", k->row.public_id,
             k->row.channel, res->error, res->detail);
    store_result(k, STORE_CHAN_FAILED, NULL, res->error, 0);
    return;
  case CHAN_FAIL:
  default:
    n->req_failed++;
    kk_info(LOGCTX, "message %s: %s failed: %s [%s]", k->row.public_id, k->row.channel,
            res->error, res->detail);
    store_result(k, STORE_CHAN_FAILED, NULL, res->error, 0);
    return;
  }
}

static void on_reply(void *arg, const struct http_client_resp *resp) {
  struct chan_send *k = arg;
  chan_engine_request_done(k->e);
  if (k->e->stopping && resp->status == 0) {
    send_leave(k);   /* aborted at stop: the attempt stays due in the store */
    return;
  }
  struct chan_result res;
  memset(&res, 0, sizeof res);
  k->drv->parse_reply(resp->status, resp->body, resp->body_len, resp->retry_after, &res);
  send_result(k, resp, &res);
}

/* The request could not start: tried again after the backoff. */
static void store_not_started(struct chan_send *k) {
  store_result(k, STORE_CHAN_RETRY, NULL, "cannot start the request",
               store_now_ms() + backoff_ms(k->e, k->row.tries));
}

/* Puts k's own request on the wire (its slot in nrequests is taken). */
static void request_start(struct chan_engine *e, struct chan_send *k) {
  struct http_client_req hr = chan_engine_http_req(e, &k->req);
  if (e->http == NULL || http_client_do(e->http, &hr, on_reply, k) != 0) {
    e->nrequests--;
    store_not_started(k);
  }
}

/* ---- batches: several sends in one request (VK's execute) ------------------ */

struct chan_batch {
  struct chan_engine *e;
  const struct chan_cfg *cfg;    /* the settings every send of it was built with */
  struct chan_req req;
  int n;
  struct chan_send *k[CHAN_BATCH_MAX];
  const struct chan_req *reqs[CHAN_BATCH_MAX];   /* each send's own request */
};

static void on_batch_reply(void *arg, const struct http_client_resp *resp) {
  struct chan_batch *b = arg;
  struct chan_engine *e = b->e;
  chan_engine_request_done(e);
  int aborted = e->stopping && resp->status == 0;
  struct chan_result res[CHAN_BATCH_MAX];
  if (!aborted)
    b->k[0]->drv->parse_batch_reply(resp->status, resp->body, resp->body_len, resp->retry_after,
                                    res, b->n);
  for (int i = 0; i < b->n; i++) {
    if (aborted)
      send_leave(b->k[i]);
    else
      send_result(b->k[i], resp, &res[i]);
  }
  chan_req_free(&b->req);
  free(b);
}

/* Sends an open batch: one send alone as itself, more in one request, or one
   by one when they do not fit in one. The batch's slot in nrequests was
   taken when it was opened. */
static void batch_flush(struct chan_engine *e, struct chan_batch *b) {
  if (b->n > 1 && b->k[0]->drv->batch(b->cfg, (const struct chan_req *const *)b->reqs, b->n,
                                      &b->req) == 0) {
    struct http_client_req hr = chan_engine_http_req(e, &b->req);
    if (e->http && http_client_do(e->http, &hr, on_batch_reply, b) == 0) return;
    for (int i = 0; i < b->n; i++) store_not_started(b->k[i]);
    e->nrequests--;
  } else {
    for (int i = 0; i < b->n; i++) {
      if (i > 0) e->nrequests++;
      request_start(e, b->k[i]);
    }
  }
  chan_req_free(&b->req);
  free(b);
}

static void batch_close(struct chan_engine *e, int i) {
  struct chan_batch *b = e->open[i];
  memmove(e->open + i, e->open + i + 1, (size_t)(e->nopen - i - 1) * sizeof e->open[0]);
  e->nopen--;
  batch_flush(e, b);
}

/* Adds k to the open batch of its settings (opening one if needed). */
static void batch_add(struct chan_engine *e, struct chan_send *k, const struct chan_cfg *cfg) {
  int i;
  for (i = 0; i < e->nopen && e->open[i]->cfg != cfg; i++) {
  }
  if (i == e->nopen) {
    if (e->nopen == CHAN_MAX_OPEN_BATCHES) batch_close(e, 0);
    /* Freed by batch_flush() or on_batch_reply(). */
    struct chan_batch *b = kk_xcalloc(1, sizeof *b);
    b->e = e;
    b->cfg = cfg;
    i = e->nopen;
    e->open[e->nopen++] = b;
    e->nrequests++;
  }
  struct chan_batch *b = e->open[i];
  b->k[b->n] = k;
  b->reqs[b->n++] = &k->req;
  if (b->n == k->drv->batch_max || b->n == CHAN_BATCH_MAX) batch_close(e, i);
}

/* ---- marking requests before they go ---------------------------------------
   A provider without an idempotency key would get a send twice if kaskad
   were killed while its request was under way and sent it again after the
   restart. So such a send is marked in the store (attempts.try_at) before its
   request starts; a marked attempt read after a restart fails as
   interrupted instead of going again, and the cascade goes on. */

struct trying {
  struct chan_engine *e;
  int n;
  int64_t *ids;                  /* the sends' attempt ids, for the store */
  struct chan_send *k[];
};

/* A group of n sends for store_chan_trying(); freed by on_marked() or
   on_unmarked(). The caller fills k[] and ids[]. */
static struct trying *trying_new(struct chan_engine *e, int n) {
  struct trying *t = kk_xmalloc(sizeof *t + (size_t)n * sizeof t->k[0]);
  t->e = e;
  t->n = n;
  t->ids = kk_xmalloc((size_t)n * sizeof *t->ids);
  return t;
}

static void trying_free(struct trying *t) {
  free(t->ids);
  free(t);
}

static void on_unmarked(void *arg, int rc) {
  struct trying *t = arg;
  for (int i = 0; i < t->n; i++) send_leave(t->k[i]);
  trying_free(t);
}

static void marked_append(struct chan_engine *e, struct chan_send *k) {
  k->next_marked = NULL;
  if (e->marked_tail)
    e->marked_tail->next_marked = k;
  else
    e->marked = k;
  e->marked_tail = k;
}

static void on_marked(void *arg, int rc) {
  struct trying *t = arg;
  struct chan_engine *e = t->e;
  if (e->stopping) {
    /* Never sent: the marks go, so that after the restart they are sent. */
    store_chan_trying(e->store, t->ids, t->n, 0, on_unmarked, t);
    return;
  }
  for (int i = 0; i < t->n; i++) {
    if (rc == 0)
      marked_append(e, t->k[i]);
    else
      store_result(t->k[i], STORE_CHAN_RETRY, NULL, "cannot mark the request in the store",
                   store_now_ms() + backoff_ms(e, t->k[i]->row.tries));
  }
  trying_free(t);
  if (e->marked) chan_engine_pump_soon(e);
}

void chan_send_drop_marked(struct chan_engine *e) {
  int n = 0;
  for (struct chan_send *k = e->marked; k; k = k->next_marked) n++;
  if (n == 0) return;
  struct trying *t = trying_new(e, n);
  n = 0;
  for (struct chan_send *k = e->marked; k; k = k->next_marked) {
    t->k[n] = k;
    t->ids[n++] = k->row.attempt_id;
  }
  e->marked = e->marked_tail = NULL;
  store_chan_trying(e->store, t->ids, t->n, 0, on_unmarked, t);
}

/* Marks the sends gathered by a pump; once that is committed they wait in
   e->marked for a request slot (until then they count in ninflight only, so
   a slow commit does not hold other requests back). */
static void trying_flush(struct chan_engine *e) {
  if (e->ntry == 0) return;
  struct trying *t = trying_new(e, e->ntry);
  for (int i = 0; i < e->ntry; i++) {
    t->k[i] = e->try_q[i];
    t->ids[i] = e->try_q[i]->row.attempt_id;
  }
  e->ntry = 0;
  store_chan_trying(e->store, t->ids, t->n, store_now_ms(), on_marked, t);
}

static void trying_add(struct chan_engine *e, struct chan_send *k) {
  if (e->ntry == e->try_cap) {
    e->try_cap = e->try_cap ? 2 * e->try_cap : 64;
    e->try_q = kk_xrealloc(e->try_q, (size_t)e->try_cap * sizeof *e->try_q);
  }
  e->try_q[e->ntry++] = k;
}

void chan_send_marked(struct chan_engine *e) {
  while (!e->stopping && e->marked && e->nrequests < e->o.max_inflight) {
    struct chan_send *k = e->marked;
    e->marked = k->next_marked;
    if (e->marked == NULL) e->marked_tail = NULL;
    e->nrequests++;
    request_start(e, k);
  }
}

void chan_send_flush(struct chan_engine *e) {
  while (e->nopen > 0) batch_flush(e, e->open[--e->nopen]);
  trying_flush(e);
}

/* ---- starting a send --------------------------------------------------------- */

/* WhatsApp: whether the recipient wrote to the number of the attempt's
   scope within the window (the row says when, as the store had it). */
static int wa_window_open(const struct store_chan_due *row, int64_t now) {
  return row->wa_inbound_at != 0 && now - row->wa_inbound_at < CHAN_WA_WINDOW_MS;
}

/* Builds k's request with cfg (the fields of the message come from its
   extra JSON). 0, or a KK_E* code with err saying why. */
static int send_build(struct chan_engine *e, struct chan_send *k, const struct chan_cfg *cfg,
                      int64_t scope, char *err, size_t errcap) {
  /* Only the members a send reads (the extra also carries the other
     channels' texts); the whole of it when it cannot be walked. */
  const char *keys[] = {"button", "whatsapp_template", "subject", "image", "code",
                        k->drv->address_field};
  json_t *x = k->row.extra ? kk_jscan_pick(k->row.extra, keys, sizeof keys / sizeof keys[0])
                           : NULL;
  char *own = NULL;
  if (x) {
    size_t tlen = 0, clen = 0;
    const char *t = kk_jscan_member(k->row.extra, strlen(k->row.extra), "texts", &tlen);
    const char *c = t ? kk_jscan_member(t, tlen, k->row.channel, &clen) : NULL;
    own = c ? kk_jscan_string(c, clen) : NULL;
  } else {
    x = json_loads(k->row.extra, 0, NULL);
    const char *o = json_string_value(json_object_get(json_object_get(x, "texts"), k->row.channel));
    own = o ? kk_xstrdup(o) : NULL;
  }
  json_t *button = json_object_get(x, "button");
  json_t *tpl = json_object_get(x, "whatsapp_template");
  char *tpl_text = tpl ? json_dumps(tpl, JSON_COMPACT) : NULL;
  /* Only the Gateway takes a callback URL in the request; the URL of an
     account's webhook costs a read of the account. */
  char hook[512] = "";
  if (strcmp(k->row.channel, "telegram_gateway") == 0)
    chan_hook_url(e, scope, k->row.channel, hook, sizeof hook);
  /* A channel that falls back to the phone (Viber business messages) gets no
     address of its own then. */
  const char *address = k->row.address;
  if (k->drv->address_field && k->drv->phone_fallback &&
      json_object_get(x, k->drv->address_field) == NULL)
    address = NULL;
  /* A message sent by template carries each channel's own text (own). */
  struct chan_msg m = {
      .attempt_id = k->row.attempt_id,
      .public_id = k->row.public_id,
      .to = k->row.to,
      .address = address,
      .text = own ? own : k->row.text,
      .subject = json_string_value(json_object_get(x, "subject")),
      .image = json_string_value(json_object_get(x, "image")),
      .button_caption = json_string_value(json_object_get(button, "caption")),
      .button_url = json_string_value(json_object_get(button, "url")),
      .wa_template = tpl_text,
      .wa_window = k->row.chan == KK_CHAN_WHATSAPP && wa_window_open(&k->row, k->started_ms),
      .code = json_string_value(json_object_get(x, "code")),
      .msg_class = k->row.msg_class,
      .ttl_s = (int)((k->row.expires_at - k->started_ms) / 1000),
      .callback_url = hook[0] ? hook : NULL,
  };
  int rc = k->drv->build(cfg, &m, &k->req, err, errcap);
  free(tpl_text);
  free(own);
  json_decref(x);
  if (rc != 0 && !err[0]) snprintf(err, errcap, "%s", kk_strerror(rc));
  return rc;
}

/* Why k cannot go at all (NULL: it may): no driver, validity over, or a
   mark from a request a stop interrupted. */
static const char *send_refused(const struct chan_send *k) {
  if (k->drv == NULL || k->drv->build == NULL) return "no driver for this channel";
  if (k->started_ms >= k->row.expires_at) return "validity ended before it could be sent";
  if (k->row.try_at && !k->drv->resend_safe)
    return "interrupted: kaskad stopped while the request was under way; not sent again, "
           "so that the person does not get it twice";
  return NULL;
}

void chan_send_start(struct chan_engine *e, struct store_chan_due *row) {
  /* Freed by send_free() once its result is committed. */
  struct chan_send *k = kk_xcalloc(1, sizeof *k);
  k->e = e;
  k->row = *row;
  row->text = row->extra = NULL;
  e->ninflight++;   /* its id is in the ready set since it was queued */
  k->started_ms = store_now_ms();
  k->drv = chan_driver_of(k->row.chan);
  if (kk_hold_has(e->o.hold, k->row.account_id) && k->drv && k->drv->build &&
      k->started_ms < k->row.expires_at) {
    /* Its account is suspended: the attempt stays due in the store, and the
       safety-net poll brings it back (sent once released, expired as usual). */
    chan_ready_forget(&e->ready, k->row.attempt_id);
    e->ninflight--;
    send_free(k);
    return;
  }
  const char *why = send_refused(k);
  if (why == NULL && e->due_fn &&
      pol_due_wanted(k->row.msg_class, k->row.created_at, k->row.due_at)) {
    int64_t wait = 0;
    struct pol_due due = {.msg_id = k->row.msg_id, .account_id = k->row.account_id,
                          .to = k->row.to, .msg_class = k->row.msg_class,
                          .channel = k->row.channel, .text = k->row.text,
                          .wait_until = &wait};
    why = e->due_fn(e->due_ud, &due);
    if (why == NULL && wait > k->started_ms) {
      /* Due inside its quiet hours: it waits in the store for their end (a
         restart keeps it waiting) and is looked at again then. */
      store_result(k, STORE_CHAN_WAIT, NULL, "quiet_hours", wait);
      return;
    }
  }
  if (why) {
    store_result(k, STORE_CHAN_FAILED, NULL, why, 0);
    return;
  }
  /* The settings it was started with; if they are gone, the effective ones. */
  int64_t scope = 0;
  const struct chan_cfg *cfg = chan_settings_find(e, k->row.scope, k->row.channel);
  if (cfg)
    scope = k->row.scope;
  else
    cfg = chan_settings_get(e, k->row.account_id, k->row.channel, NULL);
  if (cfg == NULL) {
    store_result(k, STORE_CHAN_FAILED, NULL, "channel not configured", 0);
    return;
  }
  char err[160] = "";
  if (send_build(e, k, cfg, scope, err, sizeof err) != 0) {
    store_result(k, STORE_CHAN_FAILED, NULL, err, 0);
    return;
  }
  if (k->drv->batch_max > 1 && k->drv->batch) {
    batch_add(e, k, cfg);
  } else if (!k->drv->resend_safe) {
    trying_add(e, k);
  } else {
    e->nrequests++;
    request_start(e, k);
  }
}
