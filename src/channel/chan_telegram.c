/*
 * chan_telegram.c - the Telegram Bot API (PROTOCOLS.md 2.1): sendMessage or
 * sendPhoto to a chat id, an optional inline link button, the answer
 * (including flood control), the webhook's secret token check and
 * setWebhook. The Bot API reports nothing after "sent".
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "channel/chan_int.h"
#include "core/kk_crypto.h"
#include "core/kk_err.h"

#define TG_HOST "https://api.telegram.org"
#define TG_CAPTION_MAX 1024
#define TG_TEXT_MAX 4096

/* The bot token goes into the URL's path as it is: digits, ':' and
   A-Z a-z 0-9 _ - (what @BotFather hands out). */
static int tg_check(const struct chan_cfg *cfg, char *error, size_t errcap) {
  size_t digits = strspn(cfg->token, "0123456789");
  if (cfg->token[0] && !(digits > 0 && cfg->token[digits] == ':' &&
                         chan_charset(cfg->token + digits + 1, "_-")))
    return chan_error(error, errcap, KK_EINVAL,
                      "invalid_token: a Telegram bot token is digits, ':' and A-Z a-z 0-9 _ -");
  return 0;
}

/* Starts req as a JSON POST to the bot method. */
static void tg_req(const struct chan_cfg *cfg, const char *method, struct chan_req *req) {
  chan_req_start(req, "POST", chan_concat(chan_base(cfg, TG_HOST), "/bot", cfg->token, "/",
                                          method, (char *)NULL));
  chan_req_header(req, "Content-Type", "application/json");
}

/* chat_id: a number when the address is one, else the string ("@channel"). */
static json_t *chat_id(const char *address) {
  int64_t id;
  if (chan_parse_int64(address, &id) == 0) return json_integer(id);
  return chan_jstr(address);
}

static int tg_build(const struct chan_cfg *cfg, const struct chan_msg *m, struct chan_req *req,
                    char *error, size_t errcap) {
  memset(req, 0, sizeof *req);
  if (!cfg->token[0]) return chan_error(error, errcap, KK_ENOENT, "token is not set");
  int rc = tg_check(cfg, error, errcap);
  if (rc) return rc;
  if (!chan_set(m->address))
    return chan_error(error, errcap, KK_EINVAL, "telegram_chat_id is not set");
  rc = chan_msg_utf8(m, error, errcap);
  if (rc) return rc;
  size_t chars = chan_utf8_count(m->text);
  int photo = chan_set(m->image) && chars <= TG_CAPTION_MAX;
  if (!photo && (chars < 1 || chars > TG_TEXT_MAX))
    return chan_error(error, errcap, KK_EINVAL, "text must be 1 to %d characters", TG_TEXT_MAX);

  json_t *o = json_object();
  int bad = 0;
  chan_jset(o, "chat_id", chat_id(m->address), &bad);
  if (photo) {
    chan_jset(o, "photo", chan_jstr(m->image), &bad);
    chan_jset(o, "caption", chan_jstr(m->text), &bad);
  } else {
    chan_jset(o, "text", chan_jstr(m->text), &bad);
    chan_jset(o, "disable_notification", json_false(), &bad);
  }
  if (chan_set(m->button_caption) && chan_set(m->button_url))
    chan_jset(o, "reply_markup",
              json_pack("{s:[[{s:s, s:s}]]}", "inline_keyboard", "text", m->button_caption,
                        "url", m->button_url),
              &bad);
  if (bad) {
    json_decref(o);
    o = NULL;
  }
  tg_req(cfg, photo ? "sendPhoto" : "sendMessage", req);
  if (chan_req_json(req, o) != 0) {
    chan_req_free(req);
    return chan_error(error, errcap, KK_EINVAL, "the request cannot be encoded");
  }
  return 0;
}

/* kaskad's words for the Bot API's usual descriptions (the description
   itself is not shown: it is whatever the answer says). */
static const char *known_words(const char *desc) {
  static const char *const known[][2] = {
      {"blocked by the user", "the person blocked the bot"},
      {"chat not found", "no such chat"},
      {"user is deactivated", "the person's account is deleted"},
      {"bot was kicked", "the bot was removed from the chat"},
      {"Too Many Requests", "flood control, try again later"},
  };
  for (size_t i = 0; desc && i < sizeof known / sizeof known[0]; i++)
    if (strstr(desc, known[i][0])) return known[i][1];
  return NULL;
}

/* {"ok":false,"error_code":E,...}: by E. */
static void classify_error(long http_status, json_t *j, struct chan_result *res) {
  int64_t code = 0, after = 0;
  chan_jget_int(j, "error_code", &code);
  const char *desc = chan_jget_str(j, "description");
  enum chan_outcome o = CHAN_FAIL;
  long retry = 0;
  if (code == 429) {
    o = CHAN_RETRY;
    json_t *params = json_object_get(j, "parameters");
    retry = chan_jget_int(params, "retry_after", &after) == 0 && after > 0 && after <= 86400
                ? (long)after * 1000
                : 1000;
  } else if (code == 401 || code == 404) {
    o = CHAN_CONFIG;
  } else if (code >= 500) {
    o = CHAN_RETRY;
  }
  chan_res_code(res, o, retry, http_status, code, known_words(desc), desc);
}

static void tg_parse_reply(long http_status, const char *body, size_t len,
                           const char *retry_after, struct chan_result *res) {
  chan_res_init(res);
  json_t *j = chan_json_object(body, len);
  json_t *ok = json_object_get(j, "ok");
  int64_t id;
  if (json_is_true(ok) && chan_jget_int(json_object_get(j, "result"), "message_id", &id) == 0) {
    char s[24];
    snprintf(s, sizeof s, "%" PRId64, id);
    chan_res_ok(res, s);
  } else if (json_is_false(ok) && json_is_integer(json_object_get(j, "error_code"))) {
    classify_error(http_status, j, res);
  } else {
    chan_res_unexpected(res, http_status, retry_after);
  }
  json_decref(j);
}

/* A message update: what a person wrote in the chat with the bot. */
static void update_message(json_t *msg, const struct chan_hook_in *in, struct chan_hook_out *out) {
  int64_t chat, date;
  if (msg == NULL || chan_jget_int(json_object_get(msg, "chat"), "id", &chat) != 0) return;
  if (chan_jget_int(msg, "date", &date) != 0) date = 0;
  char user[24];
  snprintf(user, sizeof user, "%" PRId64, chat);
  chan_hook_user_msg(out, in, user, chan_seconds_to_ms(date, in->now_ms),
                     chan_jget_str(msg, "text"), NULL);
}

static int tg_hook(const struct chan_cfg *cfg, const struct chan_hook_in *in,
                   struct chan_hook_out *out) {
  chan_hook_init(out);
  if (!chan_hook_method(in, "POST")) return chan_hook_refuse(out, KK_EPROTO, "not a POST");
  if (!cfg->secret[0]) return chan_hook_refuse(out, KK_EAUTH, "secret is not set");
  if (!kk_str_equal_ct(chan_hook_header(in, "X-Telegram-Bot-Api-Secret-Token"), cfg->secret))
    return chan_hook_refuse(out, KK_EAUTH, "secret token does not match");
  json_t *j = chan_json_object(in->body, in->len);
  int64_t update;
  int rc = chan_jget_int(j, "update_id", &update) == 0
               ? chan_hook_accept(out, "")
               : chan_hook_refuse(out, KK_EPROTO, "not a Telegram update");
  if (rc == 0) update_message(json_object_get(j, "message"), in, out);
  json_decref(j);
  return rc;
}

static int tg_register(const struct chan_cfg *cfg, const char *webhook_url,
                       struct chan_req *req) {
  memset(req, 0, sizeof *req);
  if (!cfg->token[0] || !cfg->secret[0]) return KK_ENOENT;
  if (!chan_set(webhook_url) || tg_check(cfg, NULL, 0) != 0) return KK_EINVAL;
  json_t *o = json_pack("{s:s, s:s, s:[s,s], s:i}", "url", webhook_url, "secret_token",
                        cfg->secret, "allowed_updates", "message", "my_chat_member",
                        "max_connections", 40);
  tg_req(cfg, "setWebhook", req);
  int rc = chan_req_json(req, o);
  if (rc) chan_req_free(req);
  return rc;
}

/* Its settings, in the order their errors are reported. */
static const struct chan_field tg_fields[] = {
    CHAN_FIELD(base_url, CHAN_FIELD_HTTP_BASE),
    CHAN_FIELD(token, CHAN_FIELD_SECRET | CHAN_FIELD_REQUIRED),
    CHAN_FIELD_RULE(secret, CHAN_FIELD_SECRET | CHAN_FIELD_TOKEN_CHARS,
                  "secret: Telegram's secret_token allows A-Z, a-z, 0-9, _ and -"),
    CHAN_FIELD(sender, 0),
};

const struct chan_driver chan_telegram_driver = {
  .name = "telegram",
  CHAN_FIELDS(tg_fields),
  .reports = CHAN_SENT,
  .address_field = "telegram_chat_id",
  .phone_fallback = 0,
  .build = tg_build,
  .parse_reply = tg_parse_reply,
  .hook = tg_hook,
  .build_register = tg_register,
  .check = tg_check,
};
