/*
 * sim_telegram.c - the fake Telegram Bot API (sendMessage and friends,
 * setWebhook, updates pushed by POST /telegram/update) and Telegram Gateway
 * (sendVerificationMessage with its delivery reports).
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

/* ---- Telegram Bot API ---- */

#define TG_ERR(code, desc) "{\"ok\":false,\"error_code\":" #code ",\"description\":\"" desc "\"}"
#define TG_UNAUTHORIZED TG_ERR(401, "Unauthorized")

static const char *const tg_q[] = {"chat_id", "text", "photo", "caption", "url", "secret_token",
                                   NULL};

/* digits ':' then 10 or more of [A-Za-z0-9_-]. */
static int tg_token_ok(const char *t, size_t n) {
  size_t i = 0;
  while (i < n && t[i] >= '0' && t[i] <= '9') i++;
  if (i == 0 || i >= n || t[i] != ':') return 0;
  size_t rest = n - i - 1;
  if (rest < 10) return 0;
  for (size_t k = i + 1; k < n; k++) {
    char ch = t[k];
    if (!((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
          ch == '_' || ch == '-'))
      return 0;
  }
  return 1;
}

/* A chat id: an integer (or its text), or "@username". Fills addr (the
   recipient for the reach draw) and either *id or *uname. */
static int tg_chat(const json_t *p, int64_t *id, const char **uname, char addr[80]) {
  *uname = NULL;
  if (chan_pint(p, "chat_id", id) == 0) {
    if (*id == 0) return KK_EINVAL;
    snprintf(addr, 80, "%" PRId64, *id);
    return 0;
  }
  const char *s = chan_pstr(p, "chat_id");
  size_t n = s ? strlen(s) : 0;
  if (n < 2 || n > 64 || s[0] != '@') return KK_EINVAL;
  *uname = s;
  memcpy(addr, s, n + 1);
  return 0;
}

static void tg_chat_json(struct jw *w, int64_t id, const char *uname) {
  if (uname)
    jw_cstr(w, uname);
  else
    jw_fmt(w, "%" PRId64, id);
}

static enum sim_chan_handled tg_send(struct sim_chan *ch, const struct sim_chan_req *rq,
                                     struct sim_chan_reply *out, struct capp *app, int photo) {
  const int c = SIM_CH_TELEGRAM;
  json_t *p = chan_req_params(rq, tg_q);
  if (p == NULL)
    return chan_finish_lit(ch, rq, c, OUT_BAD_REQUEST, out, 400,
                      TG_ERR(400, "Bad Request: can't parse JSON object"));
  int64_t chat = 0;
  const char *uname;
  char addr[80];
  if (tg_chat(p, &chat, &uname, addr) != 0) {
    json_decref(p);
    return chan_finish_lit(ch, rq, c, OUT_BAD_REQUEST, out, 400,
                      TG_ERR(400, "Bad Request: chat not found"));
  }
  const char *text = chan_pstr(p, photo ? "caption" : "text");
  const char *pic = chan_pstr(p, "photo");
  if (!photo && (text == NULL || *text == '\0')) {
    json_decref(p);
    return chan_finish_lit(ch, rq, c, OUT_BAD_REQUEST, out, 400,
                      TG_ERR(400, "Bad Request: message text is empty"));
  }
  if (photo && (pic == NULL || *pic == '\0')) {
    json_decref(p);
    return chan_finish_lit(ch, rq, c, OUT_BAD_REQUEST, out, 400,
                      TG_ERR(400, "Bad Request: there is no photo in the request"));
  }
  enum outcome o;
  if (chan_draw_error(ch, c, &o)) {
    json_decref(p);
    if (o == OUT_SERVER_ERROR)
      return chan_finish_lit(ch, rq, c, o, out, 500, TG_ERR(500, "Internal Server Error"));
    return chan_finish_lit(ch, rq, c, o, out, 429,
                      "{\"ok\":false,\"error_code\":429,\"description\":\"Too Many Requests: "
                      "retry after 1\",\"parameters\":{\"retry_after\":1}}");
  }
  if (!chan_hashed_hit(ch, "reach", c, addr, ch->knobs[c].reach)) {
    json_decref(p);
    return chan_finish_lit(ch, rq, c, OUT_UNREACHED, out, 403,
                      TG_ERR(403, "Forbidden: bot can't initiate conversation with a user"));
  }
  uint64_t id = ++app->next_id;
  ch->stats[c].messages++;
  struct jw w;
  jw_init(&w, REPLY_MAX);
  jw_fmt(&w,
         "{\"ok\":true,\"result\":{\"message_id\":%" PRIu64 ",\"from\":{\"id\":%d,\"is_bot\":true,"
         "\"first_name\":\"kaskad sim\",\"username\":\"kaskad_sim_bot\"},\"chat\":{\"id\":",
         id, TG_BOT_ID);
  tg_chat_json(&w, chat, uname);
  jw_fmt(&w, ",\"type\":\"%s\"},\"date\":%" PRId64, uname ? "channel" : "private",
         chan_wall_ms() / 1000);
  if (photo) {
    jw_fmt(&w,
           ",\"photo\":[{\"file_id\":\"sim-photo-%" PRIu64 "\",\"file_unique_id\":\"simp%" PRIu64
           "\",\"width\":320,\"height\":240,\"file_size\":20000}]",
           id, id);
    if (text) {
      jw_lit(&w, ",\"caption\":");
      jw_cstr(&w, text);
    }
  } else {
    jw_lit(&w, ",\"text\":");
    jw_cstr(&w, text);
  }
  jw_lit(&w, "}}");
  json_decref(p);
  return chan_finish(ch, rq, c, OUT_ACCEPTED, out, 200, &w);
}

enum sim_chan_handled sim_telegram_handle(struct sim_chan *ch, const struct sim_chan_req *rq,
                                          struct sim_chan_reply *out) {
  const int c = SIM_CH_TELEGRAM;
  const char *t = rq->path + 4;   /* after "/bot" */
  const char *slash = strrchr(t, '/');
  if (slash == NULL || slash == t)
    return chan_finish_lit(ch, rq, c, OUT_NOT_FOUND, out, 404, TG_ERR(404, "Not Found"));
  char *token = kk_xstrndup(t, (size_t)(slash - t));
  const char *method = slash + 1;
  enum sim_chan_handled h;
  if (strcasecmp(method, "setWebhook") == 0) {
    json_t *p = chan_req_params(rq, tg_q);
    const char *url = p ? chan_pstr(p, "url") : NULL;
    struct capp *app;
    if (!tg_token_ok(token, strlen(token))) {
      h = chan_finish_lit(ch, rq, c, OUT_UNAUTHORIZED, out, 401, TG_UNAUTHORIZED);
    } else if (p == NULL || url == NULL) {
      h = chan_finish_lit(ch, rq, c, OUT_BAD_REQUEST, out, 400,
                     TG_ERR(400, "Bad Request: bad webhook: "
                                 "An HTTPS URL must be provided for webhook"));
    } else if ((app = app_upsert(ch, c, token)) == NULL) {
      h = chan_finish_lit(ch, rq, c, OUT_SERVER_ERROR, out, 500, TG_ERR(500, "Too many bots"));
    } else {
      chan_set_str(&app->callback_url, url);
      const char *secret = chan_pstr(p, "secret_token");
      if (secret || !url[0]) chan_set_str(&app->secret, secret);
      h = chan_finish_lit(ch, rq, c, OUT_ACCEPTED, out, 200,
                     url[0] ? "{\"ok\":true,\"result\":true,\"description\":"
                              "\"Webhook was set\"}"
                            : "{\"ok\":true,\"result\":true,\"description\":"
                              "\"Webhook was deleted\"}");
    }
    json_decref(p);
    free(token);
    return h;
  }
  struct capp *app = app_find(ch, c, token);
  free(token);
  if (app == NULL) return chan_finish_lit(ch, rq, c, OUT_UNAUTHORIZED, out, 401, TG_UNAUTHORIZED);
  if (strcasecmp(method, "sendMessage") == 0) return tg_send(ch, rq, out, app, 0);
  if (strcasecmp(method, "sendPhoto") == 0) return tg_send(ch, rq, out, app, 1);
  if (strcasecmp(method, "getMe") == 0)
    return chan_finish_lit(ch, rq, c, OUT_ACCEPTED, out, 200,
                      "{\"ok\":true,\"result\":{\"id\":1,\"is_bot\":true,\"first_name\":"
                      "\"kaskad sim\",\"username\":\"kaskad_sim_bot\"}}");
  if (strcasecmp(method, "deleteWebhook") == 0) {
    chan_set_str(&app->callback_url, "");
    return chan_finish_lit(ch, rq, c, OUT_ACCEPTED, out, 200,
                      "{\"ok\":true,\"result\":true,\"description\":\"Webhook was deleted\"}");
  }
  if (strcasecmp(method, "getWebhookInfo") == 0) {
    struct jw w;
    jw_init(&w, REPLY_MAX);
    jw_lit(&w, "{\"ok\":true,\"result\":{\"url\":");
    jw_cstr(&w, app->callback_url);
    jw_lit(&w, ",\"has_custom_certificate\":false,\"pending_update_count\":0}}");
    return chan_finish(ch, rq, c, OUT_ACCEPTED, out, 200, &w);
  }
  return chan_finish_lit(ch, rq, c, OUT_NOT_FOUND, out, 404, TG_ERR(404, "Not Found"));
}

/* ---- Telegram Gateway ---- */

#define GW_ERR(e) "{\"ok\":false,\"error\":\"" e "\"}"

static const char *const gw_q[] = {"access_token", "phone_number", "code", "ttl", "callback_url",
                                   "payload", "sender_username", "request_id", NULL};

/* A RequestStatus object. payload is JSON text or NULL. */
static void gw_status(struct jw *w, const char *request_id, const char *phone, const char *status,
                      int64_t updated_at, const char *payload) {
  jw_fmt(w, "{\"request_id\":\"%s\",\"phone_number\":", request_id);
  jw_cstr(w, phone);
  jw_fmt(w,
         ",\"request_cost\":0.01,\"delivery_status\":{\"status\":\"%s\",\"updated_at\":%" PRId64
         "}",
         status, updated_at);
  if (payload) {
    jw_lit(w, ",\"payload\":");
    jw_lit(w, payload);
  }
  jw_raw(w, "}", 1);
}

static void gw_report(struct sim_chan *ch, const struct capp *app, const char *url,
                      const char *request_id, const char *phone, const char *status,
                      const char *payload, int64_t delay) {
  struct jw w;
  jw_init(&w, REPLY_MAX);
  gw_status(&w, request_id, phone, status, (chan_wall_ms() + delay) / 1000, payload);
  if (w.rc == 0)
    cb_add(ch, SIM_CH_TGGW, SIG_TGGW, app->gw_key, sizeof app->gw_key, url, w.b.p, w.b.len, delay);
  kk_buf_fini(&w.b);
}

enum sim_chan_handled sim_tggw_handle(struct sim_chan *ch, const struct sim_chan_req *rq,
                                      struct sim_chan_reply *out) {
  const int c = SIM_CH_TGGW;
  const struct sim_chan_knobs *k = &ch->knobs[c];
  json_t *p = chan_req_params(rq, gw_q);
  const char *token = chan_bearer(rq->authorization);
  if (token == NULL && p) token = chan_pstr(p, "access_token");
  struct capp *app = app_find(ch, c, token);
  if (app == NULL) {
    json_decref(p);
    return chan_finish_lit(ch, rq, c, OUT_UNAUTHORIZED, out, 200, GW_ERR("ACCESS_TOKEN_INVALID"));
  }
  const char *phone = p ? chan_pstr(p, "phone_number") : NULL;
  char digits[24];
  if (phone == NULL || chan_phone_digits(phone, digits) != 0) {
    json_decref(p);
    return chan_finish_lit(ch, rq, c, OUT_BAD_REQUEST, out, 200, GW_ERR("PHONE_NUMBER_INVALID"));
  }
  enum outcome o;
  if (chan_draw_error(ch, c, &o)) {
    json_decref(p);
    if (o == OUT_SERVER_ERROR)
      return chan_finish_lit(ch, rq, c, o, out, 500, GW_ERR("INTERNAL_SERVER_ERROR"));
    return chan_finish_lit(ch, rq, c, o, out, 429, GW_ERR("FLOOD_WAIT_1"));
  }
  if (!chan_hashed_hit(ch, "reach", c, digits, k->reach)) {
    json_decref(p);
    return chan_finish_lit(ch, rq, c, OUT_UNREACHED, out, 200,
                           GW_ERR("PHONE_NUMBER_NOT_AVAILABLE"));
  }
  char request_id[48];
  snprintf(request_id, sizeof request_id, "%" PRIx64 "%08" PRIx32, ++ch->gw_n,
           (uint32_t)sim_rng_next(&ch->rng));
  ch->stats[c].messages++;
  char *payload = NULL;
  const json_t *pl = json_object_get(p, "payload");
  if (pl) payload = json_dumps(pl, JSON_COMPACT | JSON_ENCODE_ANY);
  const char *url = chan_pstr(p, "callback_url");
  if (url && *url) {
    int64_t d = chan_draw_ms(ch, k->deliver_ms);
    if (chan_rng_hit(ch, k->fail)) {
      gw_report(ch, app, url, request_id, phone, "expired", payload, d);
    } else {
      gw_report(ch, app, url, request_id, phone, "delivered", payload, d);
      if (chan_hashed_hit(ch, "read", c, digits, k->read))
        gw_report(ch, app, url, request_id, phone, "read", payload,
                  d + chan_draw_ms(ch, k->read_ms));
    }
  }
  struct jw w;
  jw_init(&w, REPLY_MAX);
  jw_lit(&w, "{\"ok\":true,\"result\":");
  gw_status(&w, request_id, phone, "sent", chan_wall_ms() / 1000, payload);
  jw_raw(&w, "}", 1);
  free(payload);
  json_decref(p);
  return chan_finish(ch, rq, c, OUT_ACCEPTED, out, 200, &w);
}


enum sim_chan_handled sim_telegram_update(struct sim_chan *ch, const struct sim_chan_req *rq,
                                          struct sim_chan_reply *out, sim_chan_done_fn done,
                                          void *ctx) {
  json_t *in = chan_body_json(rq);
  const char *token = chan_pstr(in, "token");
  const char *text = chan_pstr(in, "text");
  int64_t chat = 0;
  const char *uname;
  char addr[80];
  if (!json_is_object(in) || token == NULL || text == NULL || tg_chat(in, &chat, &uname, addr)) {
    json_decref(in);
    return chan_ctl_error(out, 400, "bad_request",
                     "token and text are required strings, chat_id an integer or \"@name\"");
  }
  struct capp *app = app_find(ch, SIM_CH_TELEGRAM, token);
  if (app == NULL || app->callback_url[0] == '\0') {
    json_decref(in);
    return chan_ctl_error(out, app ? 409 : 404, app ? "no_webhook" : "no_app",
                     app ? "the bot has no webhook set" : "no telegram app has that token");
  }
  struct op *op = op_new(OP_TG_UPDATE, SIM_CH_TELEGRAM, app->token);
  op->id = ++app->next_update;
  struct jw w;
  jw_init(&w, REPLY_MAX);
  jw_fmt(&w, "{\"update_id\":%" PRIu64 ",\"message\":{\"message_id\":%" PRIu64 ",\"from\":{\"id\":",
         op->id, ++app->next_id);
  tg_chat_json(&w, chat, uname);
  jw_lit(&w, ",\"is_bot\":false,\"first_name\":\"Sim\"},\"chat\":{\"id\":");
  tg_chat_json(&w, chat, uname);
  jw_fmt(&w, ",\"type\":\"private\"},\"date\":%" PRId64 ",\"text\":", chan_wall_ms() / 1000);
  jw_cstr(&w, text);
  jw_lit(&w, "}}");
  json_decref(in);
  const char *hdr[2];
  int nh = 0;
  char h1[300];
  hdr[nh++] = "Content-Type: application/json";
  if (app->secret[0]) {
    snprintf(h1, sizeof h1, "X-Telegram-Bot-Api-Secret-Token: %s", app->secret);
    hdr[nh++] = h1;
  }
  enum sim_chan_handled h = op_start(ch, op, "POST", app->callback_url, hdr, nh, w.b.p, w.b.len,
                                     out, done, ctx);
  kk_buf_fini(&w.b);
  return h;
}

