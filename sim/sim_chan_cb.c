/*
 * sim_chan_cb.c - the status callback queue (a min-heap on one timer), the
 * deferred answers that wait for a webhook, and the steps every provider send
 * shares.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "core/kk_buf.h"
#include "core/kk_crypto.h"
#include "core/kk_err.h"
#include "core/kk_log.h"
#include "core/kk_mem.h"
#include "http/http_client.h"
#include "sim_chan_int.h"
#include "sim_knobs.h"
#include "sim_post.h"
#include "sim_rng.h"

/* ---- the callback queue ---- */

static int job_before(const struct cbjob *a, const struct cbjob *b) {
  return a->due < b->due || (a->due == b->due && a->order < b->order);
}

static void heap_push(struct sim_chan *ch, struct cbjob *j) {
  if (ch->hn == ch->hcap) {
    ch->hcap = ch->hcap ? ch->hcap * 2 : 1024;
    ch->heap = kk_xrealloc(ch->heap, ch->hcap * sizeof *ch->heap);
  }
  size_t i = ch->hn++;
  while (i > 0) {
    size_t up = (i - 1) / 2;
    if (!job_before(j, ch->heap[up])) break;
    ch->heap[i] = ch->heap[up];
    i = up;
  }
  ch->heap[i] = j;
}

static struct cbjob *heap_pop(struct sim_chan *ch) {
  struct cbjob *top = ch->heap[0];
  struct cbjob *last = ch->heap[--ch->hn];
  size_t i = 0, n = ch->hn;
  for (;;) {
    size_t l = 2 * i + 1, r = l + 1, m = i;
    const struct cbjob *best = last;
    if (l < n && job_before(ch->heap[l], best)) {
      m = l;
      best = ch->heap[l];
    }
    if (r < n && job_before(ch->heap[r], best)) m = r;
    if (m == i) break;
    ch->heap[i] = ch->heap[m];
    i = m;
  }
  if (n) ch->heap[i] = last;
  return top;
}

static void on_cb_timer(uv_timer_t *t);

/* Makes sure the timer fires when the earliest callback is due. */
static void cb_arm(struct sim_chan *ch) {
  if (ch->closing || ch->hn == 0 || ch->inflight >= CB_INFLIGHT_MAX) return;
  int64_t now = (int64_t)uv_now(ch->loop);
  int64_t due = ch->heap[0]->due;
  if (ch->armed_at >= 0 && ch->armed_at <= due) return;
  int64_t delay = due > now ? due - now : 0;
  uv_timer_start(&ch->timer, on_cb_timer, (uint64_t)delay, 0);
  ch->armed_at = now + delay;
}

void cb_free_all(struct sim_chan *ch) {
  while (ch->hn) free(ch->heap[--ch->hn]);
}

/* The URL a callback goes to: urls itself, or, when it lists several
   separated by spaces (the nodes behind what a load balancer would be),
   the next of them in turn. *len is its length; not NUL-terminated. */
static const char *cb_url(struct sim_chan *ch, const char *urls, size_t *len) {
  size_t n = 0;
  for (const char *p = urls; *p;) {
    while (*p == ' ') p++;
    if (*p) n++;
    while (*p && *p != ' ') p++;
  }
  size_t pick = n > 1 ? (size_t)(ch->cb_turn++ % n) : 0;
  const char *p = urls;
  for (;;) {
    while (*p == ' ') p++;
    size_t l = strcspn(p, " ");
    if (pick-- == 0 || p[l] == '\0') {
      *len = l;
      return p;
    }
    p += l;
  }
}

/* Queues a callback of channel c to url (or the next of the urls it lists)
   after delay ms; body is copied. */
void cb_add(struct sim_chan *ch, int c, enum sig s, const void *key, size_t key_len,
            const char *url, const char *body, size_t body_len, int64_t delay) {
  if (ch->closing) return;
  if (ch->hn >= CB_QUEUED_MAX) {
    ch->stats[c].cb_dropped++;
    return;
  }
  size_t url_len;
  url = cb_url(ch, url, &url_len);
  struct cbjob *j = kk_xmalloc(sizeof *j + url_len + 1 + key_len + 1 + body_len + 1);
  memset(j, 0, sizeof *j);
  j->ch = ch;
  j->gen = ch->gen;
  j->channel = (uint8_t)c;
  j->sig = (uint8_t)s;
  j->max_attempts = s == SIG_TGGW ? GW_ATTEMPTS : CB_ATTEMPTS;
  j->url = j->data;
  memcpy(j->url, url, url_len);
  j->url[url_len] = '\0';
  j->key = j->url + url_len + 1;
  if (key_len) memcpy(j->key, key, key_len);
  j->key[key_len] = '\0';
  j->key_len = key_len;
  j->body = j->key + key_len + 1;
  memcpy(j->body, body, body_len);
  j->body[body_len] = '\0';
  j->body_len = body_len;
  j->due = (int64_t)uv_now(ch->loop) + delay;
  j->order = ch->next_order++;
  heap_push(ch, j);
  ch->stats[c].queued++;
  cb_arm(ch);
}

static void cb_send(struct sim_chan *ch, struct cbjob *j);

static void on_cb_answer(void *arg, const struct http_client_resp *resp) {
  struct cbjob *j = arg;
  struct sim_chan *ch = j->ch;
  struct chan_stats *st = &ch->stats[j->channel];
  int current = j->gen == ch->gen;
  ch->inflight--;
  int ok = j->sig == SIG_TGGW ? resp->status == 200 : resp->status >= 200 && resp->status < 300;
  if (current) {
    st->inflight--;
    if (ok)
      st->cb_ok++;
    else
      st->cb_failed++;
  }
  if (!ok && current && !ch->closing && j->attempts < j->max_attempts) {
    kk_debug(LOGCTX, "%s callback to %s: %ld %s; again in 1 s", chan_names[j->channel], j->url,
             resp->status, resp->error);
    j->due = (int64_t)uv_now(ch->loop) + CB_RETRY_MS;
    j->order = ch->next_order++;
    heap_push(ch, j);
    st->queued++;
  } else {
    if (!ok && current && !ch->closing) {
      st->cb_given_up++;
      kk_info(LOGCTX, "%s callback to %s given up after %d attempts (last: %ld %s)",
              chan_names[j->channel], j->url, j->attempts, resp->status, resp->error);
    }
    free(j);
  }
  cb_arm(ch);
}

static void cb_send(struct sim_chan *ch, struct cbjob *j) {
  const char *hdr[4];
  int nh = 0;
  char h1[160], h2[160];
  hdr[nh++] = "Content-Type: application/json";
  chan_sign((enum sig)j->sig, j->key, j->key_len, j->body, j->body_len, h1, h2, hdr, &nh);
  struct http_client_req req = {
    .method = "POST",
    .url = j->url,
    .headers = hdr,
    .nheaders = nh,
    .body = j->body,
    .body_len = j->body_len,
    .timeout_ms = CB_TIMEOUT_MS,
  };
  j->attempts++;
  ch->stats[j->channel].cb_sent++;
  ch->stats[j->channel].inflight++;
  ch->inflight++;
  int rc = ch->post ? sim_post_do(ch->post, &req, on_cb_answer, j) : KK_EINVAL;
  if (rc != 0 && ch->client) rc = http_client_do(ch->client, &req, on_cb_answer, j);
  if (rc != 0) {
    struct http_client_resp r;
    memset(&r, 0, sizeof r);
    r.body = "";
    r.error = "cannot start the request";
    on_cb_answer(j, &r);
  }
}

static void on_cb_timer(uv_timer_t *t) {
  struct sim_chan *ch = t->data;
  ch->armed_at = -1;
  int64_t now = (int64_t)uv_now(ch->loop);
  size_t n = 0;
  while (ch->hn && ch->heap[0]->due <= now && ch->inflight < CB_INFLIGHT_MAX && n < CB_BATCH &&
         !ch->closing) {
    struct cbjob *j = heap_pop(ch);
    ch->stats[j->channel].queued--;
    cb_send(ch, j);
    n++;
  }
  cb_arm(ch);
}

/* ---- deferred answers ---- */

void op_free(struct op *op) {
  free(op->token);
  if (op->has_rec) free(op->rec.blob);
  free(op);
}

void op_unlink(struct op *op) {
  struct sim_chan *ch = op->ch;
  if (op->prev)
    op->prev->next = op->next;
  else if (ch->ops == op)
    ch->ops = op->next;
  if (op->next) op->next->prev = op->prev;
  op->prev = op->next = NULL;
}

/* Builds the answer to op's request from the webhook's answer (status 0:
   none; error then says why) and applies what it tells. */
static enum sim_chan_handled op_finish(struct op *op, long status, const char *body, size_t len,
                                       const char *error, struct sim_chan_reply *out) {
  struct sim_chan *ch = op->ch;
  struct capp *app = app_find(ch, op->channel, op->token);
  switch (op->kind) {
  case OP_VK_CONFIRM:
  case OP_WA_VERIFY: {
    if (app == NULL) return chan_ctl_error(out, 409, "app_gone", "the app was removed meanwhile");
    if (op->kind == OP_VK_CONFIRM) {
      app->confirmed = status == 200 && chan_body_equals(body, len, app->confirmation);
      kk_info(LOGCTX, "vk app confirmation at %s: %ld, %s", app->callback_url, status,
              app->confirmed ? "confirmed" : "not confirmed");
    } else {
      app->verified = status == 200 && chan_body_equals(body, len, op->challenge);
      kk_info(LOGCTX, "whatsapp webhook verification at %s: %ld, %s", app->callback_url, status,
              app->verified ? "verified" : "not verified");
    }
    json_t *o = app_json(app);
    json_object_set_new(o, "check_status", json_integer(status));
    return chan_give_json(out, 200, o);
  }
  case OP_VIBER_WEBHOOK: {
    int ok = status == 200;
    if (op->has_rec) {
      ring_add(ch, &op->rec, ok ? OUT_ACCEPTED : OUT_INVALID_URL);
      ch->stats[SIM_CH_VIBER].n[ok ? OUT_ACCEPTED : OUT_INVALID_URL]++;
      op->has_rec = 0;
    }
    if (!ok) return chan_give_lit(out, 200, "{\"status\":1,\"status_message\":\"invalidUrl\"}");
    return chan_give_lit(out, 200,
                    "{\"status\":0,\"status_message\":\"ok\",\"chat_hostname\":\"" CHAT_HOST
                    "\",\"event_types\":[\"delivered\",\"seen\",\"failed\",\"subscribed\","
                    "\"unsubscribed\",\"conversation_started\"]}");
  }
  case OP_TG_UPDATE:
  case OP_WA_INBOUND:
  case OP_USER_MESSAGE: {
    if (status == 0) {
      char msg[300];
      snprintf(msg, sizeof msg, "the webhook did not answer: %s", error ? error : "?");
      return chan_ctl_error(out, 502, "no_answer", msg);
    }
    struct jw w;
    jw_init(&w, REPLY_MAX);
    if (op->kind == OP_TG_UPDATE)
      jw_fmt(&w, "{\"ok\":true,\"update_id\":%" PRIu64 ",\"status\":%ld,\"body\":", op->id,
             status);
    else
      jw_fmt(&w, "{\"ok\":true,\"message_id\":\"%s\",\"status\":%ld,\"body\":", op->msgid, status);
    jw_str(&w, body, len);
    jw_raw(&w, "}", 1);
    return chan_give(out, 200, &w);
  }
  }
  return chan_ctl_error(out, 500, "internal", "unknown operation");
}

static void on_op_answer(void *arg, const struct http_client_resp *resp) {
  struct op *op = arg;
  op_unlink(op);
  if (op->done) {
    struct sim_chan_reply r;
    memset(&r, 0, sizeof r);
    op_finish(op, resp->status, resp->body ? resp->body : "", resp->body_len, resp->error, &r);
    sim_chan_done_fn done = op->done;
    op->done = NULL;
    done(op->ctx, &r);
  }
  op_free(op);
}

/* Sends op's request; the answer comes later through done, or at once in
   *out when the request cannot start. op is taken over. */
enum sim_chan_handled op_start(struct sim_chan *ch, struct op *op, const char *method,
                               const char *url, const char *const *hdr, int nh,
                               const char *body, size_t len, struct sim_chan_reply *out,
                               sim_chan_done_fn done, void *ctx) {
  op->ch = ch;
  op->done = done;
  op->ctx = ctx;
  size_t url_len;
  url = cb_url(ch, url, &url_len);
  char *one = kk_xstrndup(url, url_len);   /* freed below: the request copies it */
  struct http_client_req req = {
    .method = method,
    .url = one,
    .headers = hdr,
    .nheaders = nh,
    .body = body,
    .body_len = len,
    .timeout_ms = CB_TIMEOUT_MS,
  };
  int started = done && ch->client && http_client_do(ch->client, &req, on_op_answer, op) == 0;
  free(one);
  if (!started) {
    enum sim_chan_handled h = op_finish(op, 0, "", 0, "cannot start the request", out);
    op_free(op);
    return h;
  }
  op->next = ch->ops;
  if (ch->ops) ch->ops->prev = op;
  ch->ops = op;
  return SIM_CHAN_LATER;
}

struct op *op_new(enum op_kind kind, int c, const char *token) {
  struct op *op = kk_xcalloc(1, sizeof *op);
  op->kind = kind;
  op->channel = (enum sim_chan_id)c;
  op->token = kk_xstrdup(token);
  return op;
}

/* ---- common provider steps ---- */

/* Records the request with outcome o and answers with w's text. */
enum sim_chan_handled chan_finish(struct sim_chan *ch, const struct sim_chan_req *rq, int c,
                                  enum outcome o, struct sim_chan_reply *out, unsigned status,
                                  struct jw *w) {
  chan_record(ch, rq, c, o);
  return chan_give(out, status, w);
}

enum sim_chan_handled chan_finish_lit(struct sim_chan *ch, const struct sim_chan_req *rq, int c,
                                      enum outcome o, struct sim_chan_reply *out,
                                      unsigned status, const char *json) {
  chan_record(ch, rq, c, o);
  return chan_give_lit(out, status, json);
}

/* Injected errors of a send: 1 when the request is to be answered with HTTP
   500 (*o set) or the rate-limit error. */
int chan_draw_error(struct sim_chan *ch, int c, enum outcome *o) {
  const struct sim_chan_knobs *k = &ch->knobs[c];
  if (chan_rng_hit(ch, k->server_error)) {
    *o = OUT_SERVER_ERROR;
    return 1;
  }
  if (chan_rng_hit(ch, k->throttle)) {
    *o = OUT_THROTTLED;
    return 1;
  }
  return 0;
}

