/*
 * sim_whatsapp.c - the fake WhatsApp Cloud API: /vN.N/<id>/messages with the
 * 24-hour window, status webhooks and inbound messages (POST
 * /whatsapp/inbound).
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

/* ---- WhatsApp Cloud API ---- */

#define WA_ERR(msg, type, code) \
  "{\"error\":{\"message\":\"" msg "\",\"type\":\"" type "\",\"code\":" #code "}}"
#define WA_BAD_PARAM WA_ERR("(#100) Invalid parameter", "OAuthException", 100)

/* "/v<digits>.<digits>/<id>/messages": copies <id> into id. */
int sim_whatsapp_path(const char *p, char id[64]) {
  if (p[0] != '/' || p[1] != 'v') return 0;
  p += 2;
  const char *s = p;
  while (*p >= '0' && *p <= '9') p++;
  if (p == s || *p != '.') return 0;
  s = ++p;
  while (*p >= '0' && *p <= '9') p++;
  if (p == s || *p != '/') return 0;
  s = ++p;
  const char *slash = strchr(s, '/');
  if (slash == NULL || slash == s || (size_t)(slash - s) >= 64 || strcmp(slash, "/messages") != 0)
    return 0;
  memcpy(id, s, (size_t)(slash - s));
  id[slash - s] = '\0';
  return 1;
}

/* The value object of a webhook POST: everything up to "statuses" or
   "messages". */
static void wa_head(struct jw *w, const char *pnid) {
  jw_lit(w, "{\"object\":\"whatsapp_business_account\",\"entry\":[{\"id\":");
  jw_cstr(w, pnid);
  jw_lit(w, ",\"changes\":[{\"field\":\"messages\",\"value\":{\"messaging_product\":\"whatsapp\","
            "\"metadata\":{\"display_phone_number\":\"" WA_DISPLAY_PHONE "\",\"phone_number_id\":");
  jw_cstr(w, pnid);
  jw_raw(w, "}", 1);
}

static void wa_status(struct sim_chan *ch, const struct capp *app, const char *pnid,
                      const char *wamid, const char *to, const char *status, int64_t delay,
                      int err_code, const char *err_title, const char *category) {
  struct jw w;
  jw_init(&w, REPLY_MAX);
  wa_head(&w, pnid);
  jw_fmt(&w, ",\"statuses\":[{\"id\":\"%s\",\"status\":\"%s\",\"timestamp\":\"%" PRId64
             "\",\"recipient_id\":\"%s\"",
         wamid, status, (chan_wall_ms() + delay) / 1000, to);
  if (err_code)
    jw_fmt(&w,
           ",\"errors\":[{\"code\":%d,\"title\":\"%s\",\"message\":\"%s\",\"error_data\":"
           "{\"details\":\"%s\"}}]",
           err_code, err_title, err_title, err_title);
  else
    jw_fmt(&w, ",\"pricing\":{\"billable\":true,\"pricing_model\":\"PMP\",\"category\":\"%s\"}",
           category);
  jw_lit(&w, "}]}}]}]}");
  if (w.rc == 0)
    cb_add(ch, SIM_CH_WHATSAPP, SIG_WA, app->secret, strlen(app->secret), app->callback_url,
           w.b.p, w.b.len, delay);
  kk_buf_fini(&w.b);
}

static const char *const wa_media[] = {"image", "document", "video", "audio", "sticker",
                                       "interactive", "location", "contacts", "reaction", NULL};

/* Checks a message body; returns 0 and sets *is_template, or KK_EINVAL. */
static int wa_check(const json_t *p, int *is_template) {
  const char *mp = chan_pstr(p, "messaging_product");
  const char *to = chan_pstr(p, "to");
  const char *type = chan_pstr(p, "type");
  if (mp == NULL || strcmp(mp, "whatsapp") != 0 || to == NULL || *to == '\0') return KK_EINVAL;
  if (json_object_get(p, "type") && type == NULL) return KK_EINVAL;
  if (type == NULL) type = "text";
  *is_template = strcmp(type, "template") == 0;
  if (strcmp(type, "text") == 0) {
    const char *body = chan_pstr(json_object_get(p, "text"), "body");
    return body && *body ? 0 : KK_EINVAL;
  }
  if (*is_template) {
    const json_t *t = json_object_get(p, "template");
    const char *name = chan_pstr(t, "name");
    const char *lang = chan_pstr(json_object_get(t, "language"), "code");
    const json_t *comp = json_object_get(t, "components");
    if (name == NULL || *name == '\0' || lang == NULL || *lang == '\0') return KK_EINVAL;
    return comp == NULL || json_is_array(comp) ? 0 : KK_EINVAL;
  }
  for (int i = 0; wa_media[i]; i++)
    if (strcmp(type, wa_media[i]) == 0)
      return json_is_object(json_object_get(p, type)) ? 0 : KK_EINVAL;
  return KK_EINVAL;
}

enum sim_chan_handled sim_whatsapp_handle(struct sim_chan *ch, const struct sim_chan_req *rq,
                                          struct sim_chan_reply *out, const char *pnid) {
  const int c = SIM_CH_WHATSAPP;
  const struct sim_chan_knobs *k = &ch->knobs[c];
  const char *token = chan_bearer(rq->authorization);
  if (token == NULL && rq->query) token = rq->query(rq->query_ctx, "access_token");
  struct capp *app = app_find(ch, c, token);
  if (app == NULL)
    return chan_finish_lit(ch, rq, c, OUT_UNAUTHORIZED, out, 401,
                      WA_ERR("Invalid OAuth access token", "OAuthException", 190));
  if (app->phone_number_id[0] && strcmp(app->phone_number_id, pnid) != 0)
    return chan_finish_lit(ch, rq, c, OUT_NOT_FOUND, out, 400,
                      WA_ERR("Unsupported post request", "GraphMethodException", 100));
  json_t *p = json_loadb(rq->body ? rq->body : "", rq->body_len, 0, NULL);
  int is_template = 0;
  char to[24];
  if (!json_is_object(p) || wa_check(p, &is_template) != 0 ||
      chan_phone_digits(chan_pstr(p, "to"), to) != 0) {
    json_decref(p);
    return chan_finish_lit(ch, rq, c, OUT_BAD_REQUEST, out, 400, WA_BAD_PARAM);
  }
  json_decref(p);
  enum outcome o;
  if (chan_draw_error(ch, c, &o)) {
    if (o == OUT_SERVER_ERROR)
      return chan_finish_lit(ch, rq, c, o, out, 500,
                        WA_ERR("An unknown error has occurred.", "OAuthException", 1));
    return chan_finish_lit(ch, rq, c, o, out, 429,
                           WA_ERR("Rate limit hit", "OAuthException", 130429));
  }
  char wamid[64];
  snprintf(wamid, sizeof wamid, "wamid.SIM%012" PRIX64 "%08" PRIX32, ++ch->wa_n,
           (uint32_t)sim_rng_next(&ch->rng));
  ch->stats[c].messages++;
  if (app->callback_url[0]) {
    const char *cat = is_template ? "utility" : "service";
    int64_t d = chan_draw_ms(ch, k->deliver_ms);
    const uint64_t *opened = map_get(&app->window, chan_nonzero(chan_str_hash(to)));
    int in_window = opened && chan_wall_ms() - (int64_t)*opened < WINDOW_MS;
    if (!is_template && !in_window) {
      wa_status(ch, app, pnid, wamid, to, "failed", d, 131047, "Re-engagement message", cat);
    } else if (!chan_hashed_hit(ch, "reach", c, to, k->reach) || chan_rng_hit(ch, k->fail)) {
      wa_status(ch, app, pnid, wamid, to, "sent", 0, 0, NULL, cat);
      wa_status(ch, app, pnid, wamid, to, "failed", d, 131026, "Message undeliverable", cat);
    } else {
      wa_status(ch, app, pnid, wamid, to, "sent", 0, 0, NULL, cat);
      wa_status(ch, app, pnid, wamid, to, "delivered", d, 0, NULL, cat);
      if (chan_hashed_hit(ch, "read", c, to, k->read))
        wa_status(ch, app, pnid, wamid, to, "read", d + chan_draw_ms(ch, k->read_ms), 0, NULL, cat);
    }
  }
  struct jw w;
  jw_init(&w, REPLY_MAX);
  jw_fmt(&w,
         "{\"messaging_product\":\"whatsapp\",\"contacts\":[{\"input\":\"%s\",\"wa_id\":\"%s\"}],"
         "\"messages\":[{\"id\":\"%s\"}]}",
         to, to, wamid);
  return chan_finish(ch, rq, c, OUT_ACCEPTED, out, 200, &w);
}


enum sim_chan_handled sim_whatsapp_inbound(struct sim_chan *ch, const struct sim_chan_req *rq,
                                           struct sim_chan_reply *out, sim_chan_done_fn done,
                                           void *ctx) {
  json_t *in = chan_body_json(rq);
  const char *token = chan_pstr(in, "token");
  const char *text = chan_pstr(in, "text");
  char from[24];
  if (!json_is_object(in) || token == NULL || chan_phone_digits(chan_pstr(in, "from"), from) != 0 ||
      (json_object_get(in, "text") && text == NULL)) {
    json_decref(in);
    return chan_ctl_error(out, 400, "bad_request",
                     "token is required, from a phone number, text an optional string");
  }
  struct capp *app = app_find(ch, SIM_CH_WHATSAPP, token);
  if (app == NULL) {
    json_decref(in);
    return chan_ctl_error(out, 404, "no_app", "no whatsapp app has that token");
  }
  if (app->window.used >= WINDOW_MAX) map_fini(&app->window);
  int64_t now = chan_wall_ms();
  map_put(&app->window, chan_nonzero(chan_str_hash(from)), (uint64_t)now);
  char wamid[64];
  snprintf(wamid, sizeof wamid, "wamid.SIMIN%010" PRIX64 "%08" PRIX32, ++ch->wa_n,
           (uint32_t)sim_rng_next(&ch->rng));
  if (app->callback_url[0] == '\0') {
    json_decref(in);
    struct jw w;
    jw_init(&w, REPLY_MAX);
    jw_fmt(&w, "{\"ok\":true,\"message_id\":\"%s\",\"status\":null,\"window_until\":%" PRId64 "}",
           wamid, (int64_t)(now + WINDOW_MS));
    return chan_give(out, 200, &w);
  }
  const char *pnid = app->phone_number_id[0] ? app->phone_number_id : "0";
  struct jw w;
  jw_init(&w, REPLY_MAX);
  wa_head(&w, pnid);
  jw_fmt(&w,
         ",\"contacts\":[{\"profile\":{\"name\":\"Sim User\"},\"wa_id\":\"%s\"}],\"messages\":[{"
         "\"from\":\"%s\",\"id\":\"%s\",\"timestamp\":\"%" PRId64 "\",\"type\":\"text\",\"text\":"
         "{\"body\":",
         from, from, wamid, now / 1000);
  jw_cstr(&w, text ? text : "hello");
  jw_lit(&w, "}}]}}]}]}");
  json_decref(in);
  const char *hdr[4];
  int nh = 0;
  char h1[160], h2[160];
  hdr[nh++] = "Content-Type: application/json";
  chan_sign(SIG_WA, app->secret, strlen(app->secret), w.b.p, w.b.len, h1, h2, hdr, &nh);
  struct op *op = op_new(OP_WA_INBOUND, SIM_CH_WHATSAPP, app->token);
  snprintf(op->msgid, sizeof op->msgid, "%s", wamid);
  enum sim_chan_handled h = op_start(ch, op, "POST", app->callback_url, hdr, nh, w.b.p, w.b.len,
                                     out, done, ctx);
  kk_buf_fini(&w.b);
  return h;
}

