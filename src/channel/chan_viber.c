/*
 * chan_viber.c - Viber (PROTOCOLS.md 3): the REST Bot API for subscribers
 * known by viber_id (send_message: text, picture, rich_media with a link
 * button), Viber Business Messages through a partner for everyone else (by
 * phone, our own partner JSON), the answers of both, the signed callbacks
 * (delivered, seen, failed, expired) and set_webhook.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "channel/chan_int.h"
#include "core/kk_crypto.h"
#include "core/kk_err.h"

#define VIBER_HOST "https://chatapi.viber.com"

static const char *sender_name(const struct chan_cfg *cfg) {
  return cfg->sender[0] ? cfg->sender : "kaskad";
}

/* Starts req as a POST to base + path with Viber's two headers. */
static void viber_req(const struct chan_cfg *cfg, const char *path, struct chan_req *req) {
  chan_req_start(req, "POST", chan_concat(chan_base(cfg, VIBER_HOST), path, (char *)NULL));
  chan_req_header(req, "Content-Type", "application/json");
  chan_req_header(req, "X-Viber-Auth-Token", cfg->token);
}

/* One rich_media button without an action. */
static json_t *plain_button(int rows, const char *key, const char *value) {
  return json_pack("{s:i, s:i, s:s, s:s}", "Columns", 6, "Rows", rows, "ActionType", "none",
                   key, value);
}

/* The rich_media object: image (if any), text, then the link button. A new
   reference, NULL when a value is not UTF-8. */
static json_t *rich_media(const struct chan_msg *m) {
  json_t *buttons = json_array();
  int bad = 0;
  if (chan_set(m->image)) {
    if (json_array_append_new(buttons, plain_button(3, "Image", m->image))) bad = 1;
    if (json_array_append_new(buttons, plain_button(3, "Text", chan_str(m->text)))) bad = 1;
  } else {
    if (json_array_append_new(buttons, plain_button(6, "Text", chan_str(m->text)))) bad = 1;
  }
  json_t *link = json_pack("{s:i, s:i, s:s, s:s, s:s}", "Columns", 6, "Rows", 1, "ActionType",
                           "open-url", "ActionBody", m->button_url, "Text", m->button_caption);
  if (json_array_append_new(buttons, link)) bad = 1;
  if (bad) {
    json_decref(buttons);
    return NULL;
  }
  return json_pack("{s:s, s:i, s:i, s:s, s:o}", "Type", "rich_media", "ButtonsGroupColumns", 6,
                   "ButtonsGroupRows", 7, "BgColor", "#FFFFFF", "Buttons", buttons);
}

/* send_message of the bot API to m->address. */
static int build_bot(const struct chan_cfg *cfg, const struct chan_msg *m, struct chan_req *req) {
  int button = chan_set(m->button_caption) && chan_set(m->button_url);
  char tracking[24];
  snprintf(tracking, sizeof tracking, "%" PRId64, m->attempt_id);
  json_t *o = json_object();
  int bad = 0;
  chan_jset(o, "receiver", chan_jstr(m->address), &bad);
  chan_jset(o, "min_api_version", json_integer(button ? 2 : 1), &bad);
  chan_jset(o, "sender", json_pack("{s:s}", "name", sender_name(cfg)), &bad);
  chan_jset(o, "tracking_data", json_string(tracking), &bad);
  if (button) {
    chan_jset(o, "type", json_string("rich_media"), &bad);
    chan_jset(o, "rich_media", rich_media(m), &bad);
    chan_jset(o, "alt_text", chan_jstr(m->text), &bad);
  } else if (chan_set(m->image)) {
    chan_jset(o, "type", json_string("picture"), &bad);
    chan_jset(o, "text", chan_jstr(m->text), &bad);
    chan_jset(o, "media", chan_jstr(m->image), &bad);
  } else {
    chan_jset(o, "type", json_string("text"), &bad);
    chan_jset(o, "text", chan_jstr(m->text), &bad);
  }
  viber_req(cfg, "/pa/send_message", req);
  if (bad) {
    json_decref(o);
    o = NULL;
  }
  return chan_req_json(req, o);
}

/* A Viber Business Message to the phone, through the partner API. */
static int build_vbm(const struct chan_cfg *cfg, const struct chan_msg *m, struct chan_req *req) {
  char id[24];
  snprintf(id, sizeof id, "%" PRId64, m->attempt_id);
  int advertising = m->msg_class && strcmp(m->msg_class, "advertising") == 0;
  json_t *o = json_object();
  int bad = 0;
  chan_jset(o, "phone", chan_jstr(m->to), &bad);
  chan_jset(o, "sender", json_string(sender_name(cfg)), &bad);
  chan_jset(o, "message_id", json_string(id), &bad);
  chan_jset(o, "category", json_string(advertising ? "promotional" : "transactional"), &bad);
  chan_jset(o, "ttl", json_integer(m->ttl_s > 0 ? m->ttl_s : 86400), &bad);
  chan_jset(o, "text", chan_jstr(m->text), &bad);
  if (chan_set(m->image)) chan_jset(o, "image", chan_jstr(m->image), &bad);
  if (chan_set(m->button_caption) && chan_set(m->button_url))
    chan_jset(o, "button",
              json_pack("{s:s, s:s}", "caption", m->button_caption, "url", m->button_url), &bad);
  viber_req(cfg, "/vbm/v1/messages", req);
  if (bad) {
    json_decref(o);
    o = NULL;
  }
  return chan_req_json(req, o);
}

/* The token goes into the X-Viber-Auth-Token header as it is. */
static int viber_check(const struct chan_cfg *cfg, char *error, size_t errcap) {
  if (cfg->token[0] && !chan_charset(cfg->token, "_-"))
    return chan_error(error, errcap, KK_EINVAL,
                      "invalid_token: a Viber token is A-Z a-z 0-9 _ and -");
  return 0;
}

static int viber_build(const struct chan_cfg *cfg, const struct chan_msg *m,
                       struct chan_req *req, char *error, size_t errcap) {
  memset(req, 0, sizeof *req);
  if (!chan_set(cfg->token)) return chan_error(error, errcap, KK_ENOENT, "token is not set");
  int rc = viber_check(cfg, error, errcap);
  if (!rc) rc = chan_msg_utf8(m, error, errcap);
  if (rc) return rc;
  if (!chan_set(m->address) && !chan_set(m->to))
    return chan_error(error, errcap, KK_EINVAL, "neither viber_id nor phone is set");
  rc = chan_set(m->address) ? build_bot(cfg, m, req) : build_vbm(cfg, m, req);
  if (rc) {
    chan_req_free(req);
    return chan_error(error, errcap, KK_EINVAL, "the request cannot be encoded");
  }
  return 0;
}

/* The status codes of the API (PROTOCOLS.md 3.1). */
static enum chan_outcome status_outcome(int64_t status) {
  switch (status) {
    case 12:
      return CHAN_RETRY;
    case 2:
    case 7:
    case 8:
    case 9:
    case 15:
      return CHAN_CONFIG;
    default:
      return CHAN_FAIL; /* 5, 6, 11 and anything else */
  }
}

/* message_token as decimal text into out[cap]; 0 or KK_ENOENT. */
static int token_text(json_t *o, char *out, size_t cap) {
  int64_t v;
  const char *s = chan_jget_str(o, "message_token");
  if (chan_jget_int(o, "message_token", &v) == 0) {
    snprintf(out, cap, "%" PRId64, v);
    return 0;
  }
  if (s && s[0]) {
    chan_copy(out, cap, s);
    return 0;
  }
  return KK_ENOENT;
}

static void viber_parse_reply(long http_status, const char *body, size_t len,
                              const char *retry_after, struct chan_result *res) {
  chan_res_init(res);
  if (chan_http_temporary(http_status)) {
    chan_res_unexpected(res, http_status, retry_after);
    return;
  }
  json_t *j = chan_json_object(body, len);
  int64_t status;
  char token[72];
  if (chan_jget_int(j, "status", &status) != 0) {
    chan_res_unexpected(res, http_status, retry_after);
  } else if (status == 0) {
    if (http_status == 200 && token_text(j, token, sizeof token) == 0)
      chan_res_ok(res, token);
    else
      chan_res_unexpected(res, http_status, retry_after);
  } else {
    enum chan_outcome o = status_outcome(status);
    chan_res_code(res, o, o == CHAN_RETRY ? 1000 : 0, http_status, status, NULL,
                  chan_jget_str(j, "status_message"));
  }
  json_decref(j);
}

/* One event's status, if it is one we track. */
static void event_status(json_t *j, const char *event, const struct chan_hook_in *in,
                         struct chan_hook_out *out) {
  static const struct {
    const char *event, *status;
  } map[] = {
    {"delivered", "delivered"},
    {"seen", "read"},
    {"failed", "failed"},
    {"expired", "expired"},
  };
  const char *status = NULL;
  for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
    if (strcmp(event, map[i].event) == 0) status = map[i].status;
  char token[72];
  if (status == NULL || token_text(j, token, sizeof token) != 0) return;
  int64_t at;
  if (chan_jget_int(j, "timestamp", &at) != 0 || at <= 0) at = in->now_ms;
  struct chan_status *st = chan_hook_status(out, token, status, at);
  if (st && strcmp(status, "failed") == 0)
    chan_copy(st->error, sizeof st->error, chan_jget_str(j, "desc"));
}

/* A "message" event: what a person wrote to the bot (sender.id). */
static void event_message(json_t *j, const struct chan_hook_in *in, struct chan_hook_out *out) {
  json_t *msg = json_object_get(j, "message");
  int64_t at;
  if (chan_jget_int(j, "timestamp", &at) != 0) at = 0;
  chan_hook_user_msg(out, in, chan_jget_str(json_object_get(j, "sender"), "id"), at,
                     chan_jget_str(msg, "text"), chan_jget_str(msg, "type"));
}

static int viber_hook(const struct chan_cfg *cfg, const struct chan_hook_in *in,
                      struct chan_hook_out *out) {
  chan_hook_init(out);
  if (!chan_hook_method(in, "POST")) return chan_hook_refuse(out, KK_EPROTO, "not a POST");
  if (!cfg->token[0]) return chan_hook_refuse(out, KK_EAUTH, "token is not set");
  char want[65];
  if (kk_hmac_sha256_hex(cfg->token, strlen(cfg->token), in->body, in->len, want) != 0)
    return chan_hook_refuse(out, KK_EAUTH, "cannot compute the signature");
  if (!chan_hex_equal_ct(chan_hook_header(in, "X-Viber-Content-Signature"), want))
    return chan_hook_refuse(out, KK_EAUTH, "signature does not match");
  json_t *j = chan_json_object(in->body, in->len);
  const char *event = chan_jget_str(j, "event");
  int rc;
  if (event == NULL) {
    rc = chan_hook_refuse(out, KK_EPROTO, "not a Viber event");
  } else {
    if (strcmp(event, "message") == 0)
      event_message(j, in, out);
    else
      event_status(j, event, in, out);
    rc = chan_hook_accept(out, "");
  }
  json_decref(j);
  return rc;
}

static int viber_register(const struct chan_cfg *cfg, const char *webhook_url,
                          struct chan_req *req) {
  memset(req, 0, sizeof *req);
  if (!cfg->token[0]) return KK_ENOENT;
  if (!chan_set(webhook_url) || viber_check(cfg, NULL, 0) != 0) return KK_EINVAL;
  json_t *o = json_pack("{s:s, s:[s,s,s,s,s,s,s], s:b, s:b}", "url", webhook_url, "event_types",
                        "delivered", "seen", "failed", "subscribed", "unsubscribed",
                        "conversation_started", "message", "send_name", 1, "send_photo", 0);
  viber_req(cfg, "/pa/set_webhook", req);
  int rc = chan_req_json(req, o);
  if (rc) chan_req_free(req);
  return rc;
}

/* Its settings, in the order their errors are reported. */
static const struct chan_field viber_fields[] = {
    CHAN_FIELD(base_url, CHAN_FIELD_HTTP_BASE),
    CHAN_FIELD(token, CHAN_FIELD_SECRET | CHAN_FIELD_REQUIRED),
    CHAN_FIELD(sender, 0),
};

const struct chan_driver chan_viber_driver = {
  .name = "viber",
  CHAN_FIELDS(viber_fields),
  .reports = CHAN_SENT | CHAN_DELIVERED | CHAN_READ,
  .address_field = "viber_id",
  .phone_fallback = 1,
  .build = viber_build,
  .parse_reply = viber_parse_reply,
  .hook = viber_hook,
  .build_register = viber_register,
  .check = viber_check,
};
