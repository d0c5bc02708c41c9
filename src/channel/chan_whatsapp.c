/*
 * chan_whatsapp.c - the WhatsApp Cloud API (PROTOCOLS.md 5): a text inside
 * the customer-service window (m->wa_window), else an approved template
 * (m->wa_template), else nothing; the answer and its error codes, the
 * webhook's GET verification, the signed status notifications (sent,
 * delivered, read, failed) and the messages people send, which open the
 * window.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "channel/chan_int.h"
#include "core/kk_crypto.h"
#include "core/kk_err.h"

#define WA_HOST "https://graph.facebook.com"
#define WA_VERSION "v21.0"
#define WA_CHALLENGE_MAX 200
/* The attempt's error when neither a text nor a template may go. */
#define WA_WINDOW_CLOSED                                                   \
  "whatsapp_window_closed: the recipient has not written within 24 h and " \
  "there is no whatsapp_template"

/* The "template" object from {"name","language","params":[...]}: a new
   reference for the caller, NULL when spec is not valid. */
static json_t *template_of(const char *spec) {
  json_t *t = json_loads(spec, 0, NULL);
  const char *name = chan_jget_str(t, "name"), *lang = chan_jget_str(t, "language");
  json_t *params = json_object_get(t, "params");
  json_t *out = NULL, *list = json_array();
  int bad = !chan_set(name) || !chan_set(lang) || (params && !json_is_array(params));
  size_t i;
  json_t *p;
  json_array_foreach(params, i, p) {
    if (!json_is_string(p)) bad = 1;
    else if (json_array_append_new(list, json_pack("{s:s, s:s}", "type", "text", "text",
                                                   json_string_value(p))))
      bad = 1;
  }
  if (!bad) {
    out = json_pack("{s:s, s:{s:s}}", "name", name, "language", "code", lang);
    if (out && json_array_size(list) > 0)
      chan_jset(out, "components", json_pack("[{s:s, s:O}]", "type", "body", "parameters", list),
                &bad);
    if (bad) {
      json_decref(out);
      out = NULL;
    }
  }
  json_decref(list);
  json_decref(t);
  return out;
}

/* phone_number_id and api_version go into the URL's path, the token into
   the Authorization header, all as they are. */
static int wa_check(const struct chan_cfg *cfg, char *error, size_t errcap) {
  const char *v = cfg->api_version;
  size_t major = v[0] == 'v' ? strspn(v + 1, "0123456789") : 0;
  int version_ok = !v[0] || (major > 0 && (v[1 + major] == '\0' ||
                                           (v[1 + major] == '.' && v[2 + major] &&
                                            strspn(v + 2 + major, "0123456789") ==
                                                strlen(v + 2 + major))));
  if (cfg->token[0] && !chan_charset(cfg->token, "._~+/=-"))
    return chan_error(error, errcap, KK_EINVAL,
                      "invalid_token: a WhatsApp access token is A-Z a-z 0-9 . _ ~ + / = and -");
  for (const char *p = cfg->phone_number_id; *p; p++)
    if (*p < '0' || *p > '9')
      return chan_error(error, errcap, KK_EINVAL, "invalid_phone_number_id: digits only");
  if (!version_ok)
    return chan_error(error, errcap, KK_EINVAL, "invalid_api_version: like v21.0");
  return 0;
}

static int wa_build(const struct chan_cfg *cfg, const struct chan_msg *m, struct chan_req *req,
                    char *error, size_t errcap) {
  memset(req, 0, sizeof *req);
  if (!cfg->token[0]) return chan_error(error, errcap, KK_ENOENT, "token is not set");
  if (!cfg->phone_number_id[0])
    return chan_error(error, errcap, KK_ENOENT, "phone_number_id is not set");
  if (!chan_set(m->to)) return chan_error(error, errcap, KK_EINVAL, "phone is not set");
  int rc = wa_check(cfg, error, errcap);
  if (!rc) rc = chan_msg_utf8(m, error, errcap);
  if (rc) return rc;
  /* Inside the window the text goes (free, even when a template is given);
     outside it only the template may. */
  json_t *t = NULL;
  if (!m->wa_window) {
    if (!chan_set(m->wa_template)) return chan_error(error, errcap, KK_EINVAL, WA_WINDOW_CLOSED);
    t = template_of(m->wa_template);
    if (t == NULL) return chan_error(error, errcap, KK_EINVAL, "wa_template is not valid");
  }

  json_t *o = json_object();
  int bad = 0;
  chan_jset(o, "messaging_product", json_string("whatsapp"), &bad);
  chan_jset(o, "recipient_type", json_string("individual"), &bad);
  chan_jset(o, "to", chan_jstr(m->to), &bad);
  if (t) {
    chan_jset(o, "type", json_string("template"), &bad);
    chan_jset(o, "template", t, &bad);
  } else {
    chan_jset(o, "type", json_string("text"), &bad);
    chan_jset(o, "text", json_pack("{s:s, s:b}", "body", chan_str(m->text), "preview_url", 0),
              &bad);
  }
  if (bad) {
    json_decref(o);
    o = NULL;
  }
  const char *version = cfg->api_version[0] ? cfg->api_version : WA_VERSION;
  chan_req_start(req, "POST", chan_concat(chan_base(cfg, WA_HOST), "/", version, "/",
                                          cfg->phone_number_id, "/messages", (char *)NULL));
  chan_req_header(req, "Content-Type", "application/json");
  chan_req_bearer(req, cfg->token);
  if (chan_req_json(req, o) != 0) {
    chan_req_free(req);
    return chan_error(error, errcap, KK_EINVAL, "the request cannot be encoded");
  }
  return 0;
}

/* {"error":{"message","code"}}: by code, then by HTTP status. Any other code
   fails the step at once: 131047 (re-engagement, the window closed before
   the text arrived) too, even when the message has a template (it is not
   sent again as one). */
static void classify_error(long http_status, json_t *err, const char *retry_after,
                           struct chan_result *res) {
  int64_t code = 0;
  chan_jget_int(err, "code", &code);
  const char *msg = chan_jget_str(err, "message");
  enum chan_outcome o = CHAN_FAIL;
  long retry = 0;
  if (code == 130429 || code == 131056 || code == 131048 || code == 80007) {
    o = CHAN_RETRY;
    retry = chan_retry_after_ms(retry_after);
  } else if (code == 0 || code == 190 || http_status == 401) {
    o = CHAN_CONFIG;
  } else if (http_status == 429 || http_status >= 500) {
    o = CHAN_RETRY;
    retry = chan_retry_after_ms(retry_after);
  }
  chan_res_code(res, o, retry, http_status, code, NULL, msg);
}

static void wa_parse_reply(long http_status, const char *body, size_t len,
                           const char *retry_after, struct chan_result *res) {
  chan_res_init(res);
  if (http_status == 0 || http_status >= 500) {
    chan_res_unexpected(res, http_status, retry_after);
    return;
  }
  json_t *j = chan_json_object(body, len);
  const char *id = chan_jget_str(json_array_get(json_object_get(j, "messages"), 0), "id");
  json_t *err = json_object_get(j, "error");
  if (http_status >= 200 && http_status < 300 && id && id[0])
    chan_res_ok(res, id);
  else if (json_is_object(err) && json_is_integer(json_object_get(err, "code")))
    classify_error(http_status, err, retry_after, res);
  else
    chan_res_unexpected(res, http_status, retry_after);
  json_decref(j);
}

/* GET ?hub.mode=subscribe&hub.verify_token=...&hub.challenge=... */
static int verify_get(const struct chan_cfg *cfg, const struct chan_hook_in *in,
                      struct chan_hook_out *out) {
  const char *mode = chan_hook_query(in, "hub.mode");
  const char *token = chan_hook_query(in, "hub.verify_token");
  const char *challenge = chan_hook_query(in, "hub.challenge");
  if (!cfg->verify_token[0]) return chan_hook_refuse(out, KK_EAUTH, "verify_token is not set");
  if (mode == NULL || strcmp(mode, "subscribe") != 0 ||
      !kk_str_equal_ct(token, cfg->verify_token))
    return chan_hook_refuse(out, KK_EAUTH, "verify_token does not match");
  size_t n = challenge ? strlen(challenge) : 0;
  if (n < 1 || n > WA_CHALLENGE_MAX) return chan_hook_refuse(out, KK_EPROTO, "bad hub.challenge");
  for (size_t i = 0; i < n; i++)
    if (challenge[i] < 0x20 || challenge[i] > 0x7E)
      return chan_hook_refuse(out, KK_EPROTO, "bad hub.challenge");
  return chan_hook_accept(out, challenge);
}

/* The time of a status or message: "timestamp" (unix seconds, text or
   number) or now. */
static int64_t event_time(json_t *s, int64_t now_ms) {
  int64_t t;
  if (chan_jget_int(s, "timestamp", &t) == 0) return chan_seconds_to_ms(t, now_ms);
  const char *text = chan_jget_str(s, "timestamp");
  if (text && chan_parse_int64(text, &t) == 0) return chan_seconds_to_ms(t, now_ms);
  return now_ms;
}

/* One entry of value.statuses[]. */
static void one_status(json_t *s, const struct chan_hook_in *in, struct chan_hook_out *out) {
  const char *id = chan_jget_str(s, "id"), *status = chan_jget_str(s, "status");
  if (id == NULL || status == NULL) return;
  if (strcmp(status, "sent") != 0 && strcmp(status, "delivered") != 0 &&
      strcmp(status, "read") != 0 && strcmp(status, "failed") != 0)
    return;
  struct chan_status *st = chan_hook_status(out, id, status, event_time(s, in->now_ms));
  if (st == NULL || strcmp(status, "failed") != 0) return;
  json_t *e = json_array_get(json_object_get(s, "errors"), 0);
  int64_t code;
  const char *title = chan_jget_str(e, "title");
  if (chan_jget_int(e, "code", &code) == 0 && chan_set(title))
    chan_fmt(st->error, sizeof st->error, "%" PRId64 " %s", code, title);
  else if (chan_jget_int(e, "code", &code) == 0)
    chan_fmt(st->error, sizeof st->error, "%" PRId64, code);
  else
    chan_copy(st->error, sizeof st->error, title);
}

/* A WhatsApp id as kaskad writes phones: E.164 digits without '+'. */
static int wa_id_ok(const char *from) {
  size_t n = from ? strlen(from) : 0;
  return n >= 8 && n <= 15 && from[0] != '0' && strspn(from, "0123456789") == n;
}

/* One entry of value.messages[]: a person wrote (any type of message), which
   opens the window. A time ahead of ours counts as now. */
static void one_message(json_t *msg, const struct chan_hook_in *in, struct chan_hook_out *out) {
  const char *from = chan_jget_str(msg, "from");
  if (!wa_id_ok(from)) return;
  int64_t at = event_time(msg, in->now_ms);
  struct chan_inbound *m = chan_hook_inbound(out, from, at < in->now_ms ? at : in->now_ms);
  if (m == NULL) return;
  /* A text message's body; other types (image, location, ...) by their name. */
  const char *body = chan_jget_str(json_object_get(msg, "text"), "body");
  const char *type = chan_jget_str(msg, "type");
  char t[41];
  chan_copy(t, sizeof t, type ? type : "message");
  if (body)
    chan_copy(m->text, sizeof m->text, body);
  else
    chan_fmt(m->text, sizeof m->text, "[%s]", t);
}

/* entry[].changes[].value.statuses[] and .messages[] */
static void changes(json_t *j, const struct chan_hook_in *in, struct chan_hook_out *out) {
  size_t i, k, n;
  json_t *entry, *change, *s;
  json_array_foreach(json_object_get(j, "entry"), i, entry) {
    json_array_foreach(json_object_get(entry, "changes"), k, change) {
      json_t *value = json_object_get(change, "value");
      json_array_foreach(json_object_get(value, "statuses"), n, s) one_status(s, in, out);
      json_array_foreach(json_object_get(value, "messages"), n, s) one_message(s, in, out);
    }
  }
}

static int wa_hook(const struct chan_cfg *cfg, const struct chan_hook_in *in,
                   struct chan_hook_out *out) {
  chan_hook_init(out);
  if (chan_hook_method(in, "GET")) return verify_get(cfg, in, out);
  if (!chan_hook_method(in, "POST")) return chan_hook_refuse(out, KK_EPROTO, "not a GET or POST");
  if (!cfg->secret[0]) return chan_hook_refuse(out, KK_EAUTH, "secret is not set");
  const char *sig = chan_hook_header(in, "X-Hub-Signature-256");
  char want[65];
  if (sig == NULL || strncmp(sig, "sha256=", 7) != 0)
    return chan_hook_refuse(out, KK_EAUTH, "signature is missing");
  if (kk_hmac_sha256_hex(cfg->secret, strlen(cfg->secret), in->body, in->len, want) != 0)
    return chan_hook_refuse(out, KK_EAUTH, "cannot compute the signature");
  if (!chan_hex_equal_ct(sig + 7, want))
    return chan_hook_refuse(out, KK_EAUTH, "signature does not match");
  json_t *j = chan_json_object(in->body, in->len);
  if (j == NULL) return chan_hook_refuse(out, KK_EPROTO, "not a JSON object");
  changes(j, in, out);
  json_decref(j);
  return chan_hook_accept(out, "");
}

/* Its settings, in the order their errors are reported. */
static const struct chan_field wa_fields[] = {
    CHAN_FIELD(base_url, CHAN_FIELD_HTTP_BASE),
    CHAN_FIELD(token, CHAN_FIELD_SECRET | CHAN_FIELD_REQUIRED),
    CHAN_FIELD(secret, CHAN_FIELD_SECRET),
    CHAN_FIELD(sender, 0),
    CHAN_FIELD(phone_number_id, CHAN_FIELD_REQUIRED),
    CHAN_FIELD(verify_token, CHAN_FIELD_SECRET),
    CHAN_FIELD(api_version, 0),
};

const struct chan_driver chan_whatsapp_driver = {
  .name = "whatsapp",
  CHAN_FIELDS(wa_fields),
  .reports = CHAN_SENT | CHAN_DELIVERED | CHAN_READ,
  .address_field = NULL,
  .phone_fallback = 0,
  .build = wa_build,
  .parse_reply = wa_parse_reply,
  .hook = wa_hook,
  .build_register = NULL,
  .check = wa_check,
};
