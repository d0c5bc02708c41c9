/*
 * sim_viber.c - the fake Viber API (bot and business): send_message and
 * set_webhook, with the delivered / seen / failed events.
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

/* ---- Viber ---- */

#define VIBER_ERR(code, msg) "{\"status\":" #code ",\"status_message\":\"" msg "\"}"

/* Queues a Viber event callback for message token t. msg_id is the partner
   message_id (JSON text) or NULL; desc is set for "failed". */
static void viber_event(struct sim_chan *ch, const struct capp *app, const char *event,
                        uint64_t t, const char *user, const char *msg_id, const char *desc,
                        int64_t delay) {
  if (app->callback_url[0] == '\0') return;
  struct jw w;
  jw_init(&w, REPLY_MAX);
  jw_fmt(&w,
         "{\"event\":\"%s\",\"timestamp\":%" PRId64 ",\"chat_hostname\":\"" CHAT_HOST
         "\",\"message_token\":%" PRIu64 ",\"user_id\":",
         event, chan_wall_ms() + delay, t);
  jw_cstr(&w, user);
  if (msg_id) {
    jw_lit(&w, ",\"message_id\":");
    jw_lit(&w, msg_id);
  }
  if (desc) {
    jw_lit(&w, ",\"desc\":");
    jw_cstr(&w, desc);
  }
  jw_raw(&w, "}", 1);
  if (w.rc == 0)
    cb_add(ch, SIM_CH_VIBER, SIG_VIBER, app->token, strlen(app->token), app->callback_url, w.b.p,
           w.b.len, delay);
  kk_buf_fini(&w.b);
}

/* The events that follow an accepted message: failed, or delivered and
   maybe seen. */
static void viber_events(struct sim_chan *ch, const struct capp *app, uint64_t t,
                         const char *user, const char *msg_id, int reached) {
  const struct sim_chan_knobs *k = &ch->knobs[SIM_CH_VIBER];
  int64_t d = chan_draw_ms(ch, k->deliver_ms);
  if (!reached) {
    viber_event(ch, app, "failed", t, user, msg_id, "not a Viber user", d);
    return;
  }
  if (chan_rng_hit(ch, k->fail)) {
    viber_event(ch, app, "failed", t, user, msg_id, "simulated failure", d);
    return;
  }
  viber_event(ch, app, "delivered", t, user, msg_id, NULL, d);
  if (chan_hashed_hit(ch, "read", SIM_CH_VIBER, user, k->read))
    viber_event(ch, app, "seen", t, user, msg_id, NULL, d + chan_draw_ms(ch, k->read_ms));
}

static enum sim_chan_handled viber_send(struct sim_chan *ch, const struct sim_chan_req *rq,
                                        struct sim_chan_reply *out, int business) {
  const int c = SIM_CH_VIBER;
  struct capp *app = app_find(ch, c, rq->viber_token);
  if (app == NULL)
    return chan_finish_lit(ch, rq, c, OUT_UNAUTHORIZED, out, 200, VIBER_ERR(2, "invalidAuthToken"));
  json_t *p = json_loadb(rq->body ? rq->body : "", rq->body_len, 0, NULL);
  const char *user = chan_pstr(p, business ? "phone" : "receiver");
  const char *need = chan_pstr(p, business ? "text" : "type");
  char phone[24];
  if (!json_is_object(p) || user == NULL || *user == '\0' || need == NULL || *need == '\0' ||
      (business && chan_phone_digits(user, phone) != 0)) {
    json_decref(p);
    return chan_finish_lit(ch, rq, c, OUT_BAD_REQUEST, out, 200, VIBER_ERR(3, "badData"));
  }
  enum outcome o;
  if (chan_draw_error(ch, c, &o)) {
    json_decref(p);
    if (o == OUT_SERVER_ERROR)
      return chan_finish_lit(ch, rq, c, o, out, 500, VIBER_ERR(1000, "internalServerError"));
    return chan_finish_lit(ch, rq, c, o, out, 200, VIBER_ERR(12, "tooManyRequests"));
  }
  if (business) user = phone;
  int reached = chan_hashed_hit(ch, "reach", c, user, ch->knobs[c].reach);
  if (!business && !reached) {
    json_decref(p);
    return chan_finish_lit(ch, rq, c, OUT_UNREACHED, out, 200,
                           VIBER_ERR(6, "receiverNotSubscribed"));
  }
  uint64_t t = (uint64_t)(VIBER_TOKEN_BASE + ++ch->viber_n);
  ch->stats[c].messages++;
  char *msg_id = NULL;
  const json_t *mid = json_object_get(p, "message_id");
  if (business && mid) msg_id = json_dumps(mid, JSON_COMPACT | JSON_ENCODE_ANY);
  viber_events(ch, app, t, user, msg_id, reached);
  free(msg_id);
  json_decref(p);
  struct jw w;
  jw_init(&w, REPLY_MAX);
  if (business)
    jw_fmt(&w, "{\"status\":0,\"status_message\":\"ok\",\"message_token\":%" PRIu64 "}", t);
  else
    jw_fmt(&w,
           "{\"status\":0,\"status_message\":\"ok\",\"message_token\":%" PRIu64
           ",\"chat_hostname\":\"" CHAT_HOST "\"}",
           t);
  return chan_finish(ch, rq, c, OUT_ACCEPTED, out, 200, &w);
}

static enum sim_chan_handled viber_set_webhook(struct sim_chan *ch, const struct sim_chan_req *rq,
                                               struct sim_chan_reply *out,
                                               sim_chan_done_fn done, void *ctx) {
  const int c = SIM_CH_VIBER;
  const char *token = rq->viber_token;
  if (token == NULL || *token == '\0')
    return chan_finish_lit(ch, rq, c, OUT_UNAUTHORIZED, out, 200, VIBER_ERR(2, "invalidAuthToken"));
  json_t *p = json_loadb(rq->body ? rq->body : "", rq->body_len, 0, NULL);
  const char *url = chan_pstr(p, "url");
  if (url == NULL) {
    json_decref(p);
    return chan_finish_lit(ch, rq, c, OUT_BAD_REQUEST, out, 200, VIBER_ERR(3, "badData"));
  }
  struct capp *app = app_upsert(ch, c, token);
  if (app == NULL) {
    json_decref(p);
    return chan_finish_lit(ch, rq, c, OUT_SERVER_ERROR, out, 500, VIBER_ERR(1000, "tooManyApps"));
  }
  chan_set_str(&app->callback_url, url);
  json_decref(p);
  if (app->callback_url[0] == '\0')   /* an empty url removes the webhook */
    return chan_finish_lit(ch, rq, c, OUT_ACCEPTED, out, 200, VIBER_ERR(0, "ok"));
  struct jw w;
  jw_init(&w, REPLY_MAX);
  jw_fmt(&w,
         "{\"event\":\"webhook\",\"timestamp\":%" PRId64 ",\"chat_hostname\":\"" CHAT_HOST
         "\",\"message_token\":%" PRIu64 "}",
         chan_wall_ms(), (uint64_t)(VIBER_TOKEN_BASE + ++ch->viber_n));
  const char *hdr[4];
  int nh = 0;
  char h1[160], h2[160];
  hdr[nh++] = "Content-Type: application/json";
  chan_sign(SIG_VIBER, app->token, strlen(app->token), w.b.p, w.b.len, h1, h2, hdr, &nh);
  struct op *op = op_new(OP_VIBER_WEBHOOK, c, token);
  rec_from_req(&op->rec, c, rq);
  op->has_rec = 1;
  enum sim_chan_handled h = op_start(ch, op, "POST", app->callback_url, hdr, nh, w.b.p, w.b.len,
                                     out, done, ctx);
  kk_buf_fini(&w.b);
  return h;
}

enum sim_chan_handled sim_viber_inbound(struct sim_chan *ch, const struct sim_chan_req *rq,
                                        struct sim_chan_reply *out, sim_chan_done_fn done,
                                        void *ctx) {
  const int c = SIM_CH_VIBER;
  json_t *in = chan_body_json(rq);
  const char *token = chan_pstr(in, "token");
  const char *user = chan_pstr(in, "user_id");
  const char *text = chan_pstr(in, "text");
  if (!json_is_object(in) || token == NULL || user == NULL || *user == '\0' || text == NULL) {
    json_decref(in);
    return chan_ctl_error(out, 400, "bad_request", "token, user_id and text are required strings");
  }
  struct capp *app = app_find(ch, c, token);
  if (app == NULL || app->callback_url[0] == '\0') {
    json_decref(in);
    return chan_ctl_error(out, app ? 409 : 404, app ? "no_webhook" : "no_app",
                          app ? "the bot has no webhook set" : "no viber app has that token");
  }
  uint64_t t = (uint64_t)(VIBER_TOKEN_BASE + ++ch->viber_n);
  struct jw w;
  jw_init(&w, REPLY_MAX);
  jw_fmt(&w,
         "{\"event\":\"message\",\"timestamp\":%" PRId64 ",\"chat_hostname\":\"" CHAT_HOST
         "\",\"message_token\":%" PRIu64 ",\"sender\":{\"id\":",
         chan_wall_ms(), t);
  jw_cstr(&w, user);
  jw_lit(&w, ",\"name\":\"Sim User\",\"api_version\":10},\"message\":{\"type\":\"text\",\"text\":");
  jw_cstr(&w, text);
  jw_lit(&w, "},\"silent\":false}");
  json_decref(in);
  const char *hdr[4];
  int nh = 0;
  char h1[160], h2[160];
  hdr[nh++] = "Content-Type: application/json";
  chan_sign(SIG_VIBER, app->token, strlen(app->token), w.b.p, w.b.len, h1, h2, hdr, &nh);
  struct op *op = op_new(OP_USER_MESSAGE, c, app->token);
  snprintf(op->msgid, sizeof op->msgid, "%" PRIu64, t);
  enum sim_chan_handled h = op_start(ch, op, "POST", app->callback_url, hdr, nh, w.b.p, w.b.len,
                                     out, done, ctx);
  kk_buf_fini(&w.b);
  return h;
}

enum sim_chan_handled sim_viber_handle(struct sim_chan *ch, const struct sim_chan_req *rq,
                                       struct sim_chan_reply *out, sim_chan_done_fn done,
                                       void *ctx) {
  if (strcmp(rq->path, "/pa/send_message") == 0) return viber_send(ch, rq, out, 0);
  if (strcmp(rq->path, "/vbm/v1/messages") == 0) return viber_send(ch, rq, out, 1);
  if (strcmp(rq->path, "/pa/set_webhook") == 0) return viber_set_webhook(ch, rq, out, done, ctx);
  return chan_finish_lit(ch, rq, SIM_CH_VIBER, OUT_NOT_FOUND, out, 404,
                    VIBER_ERR(3, "badData: unknown method"));
}

