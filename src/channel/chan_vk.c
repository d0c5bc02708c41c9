/*
 * chan_vk.c - VK community messages (PROTOCOLS.md 4): messages.send as a
 * form, up to 25 of them in one execute request, their answers, and the
 * Callback API (confirmation, secret key, message_read as the read status).
 *
 * VK allows a community token 20 requests a second; execute runs up to 25
 * API calls in one request, so batches are what lets a community send more
 * than 20 messages a second.
 *
 * VK has no delivered status: an accepted send is "sent"; a message_read
 * event says every message of ours up to read_message_id in that
 * conversation is read, so the status carries the peer and the id instead of
 * a provider message id.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "channel/chan_int.h"
#include "core/kk_crypto.h"
#include "core/kk_err.h"
#include "core/kk_json.h"
#include "core/kk_utf8.h"

#define VK_HOST "https://api.vk.com"
#define VK_VERSION "5.199"
#define VK_BATCH_MAX 25              /* API calls one execute may make */
#define VK_CODE_MAX (256 * 1024)     /* bytes of code we send in one execute */

/* The intent VK requires for messages outside a dialogue. */
static const char *intent_of(const char *msg_class) {
  if (msg_class && strcmp(msg_class, "advertising") == 0) return "promo_newsletter";
  if (msg_class && strcmp(msg_class, "transactional") == 0) return "purchase_update";
  return "account_update";
}

/* The inline keyboard with one link button, as compact JSON; free() it.
   NULL when caption or url is not UTF-8. */
static char *keyboard_json(const char *caption, const char *url) {
  json_t *kb = json_pack("{s:b, s:[[{s:{s:s, s:s, s:s}}]]}", "inline", 1, "buttons", "action",
                         "type", "open_link", "link", url, "label", caption);
  if (kb == NULL) return NULL;
  char *s = json_dumps(kb, JSON_COMPACT);
  json_decref(kb);
  return s;
}

/* A community token ("vk1.a.<base64url>"); it goes into the form body, but
   anything else is a paste error. */
static int vk_check(const struct chan_cfg *cfg, char *error, size_t errcap) {
  if (cfg->token[0] && !chan_charset(cfg->token, "._-"))
    return chan_error(error, errcap, KK_EINVAL, "invalid_token: a VK token is A-Z a-z 0-9 . _ and -");
  return 0;
}

static int vk_build(const struct chan_cfg *cfg, const struct chan_msg *m, struct chan_req *req,
                    char *error, size_t errcap) {
  memset(req, 0, sizeof *req);
  if (!chan_set(cfg->token)) return chan_error(error, errcap, KK_ENOENT, "token is not set");
  if (vk_check(cfg, error, errcap) != 0) return KK_EINVAL;
  int64_t peer;
  if (chan_parse_int64(m->address, &peer) != 0)
    return chan_error(error, errcap, KK_EINVAL, "vk_id must be a number");
  int rc = chan_msg_utf8(m, error, errcap);
  if (rc) return rc;

  char random_id[24];
  int64_t r = m->attempt_id % 2147483648LL;
  if (r < 0) r += 2147483648LL;
  snprintf(random_id, sizeof random_id, "%" PRId64, r);

  struct kk_buf b;
  kk_buf_init(&b, CHAN_BODY_MAX);
  rc = chan_form_add(&b, "access_token", cfg->token);
  if (!rc) rc = chan_form_add(&b, "v", VK_VERSION);
  if (!rc) rc = chan_form_add(&b, "peer_id", m->address);
  if (!rc) rc = chan_form_add(&b, "random_id", random_id);
  if (!rc) rc = chan_form_add(&b, "message", m->text);
  if (!rc) rc = chan_form_add(&b, "intent", intent_of(m->msg_class));
  if (!rc && chan_set(m->button_caption) && chan_set(m->button_url)) {
    char *kb = keyboard_json(m->button_caption, m->button_url);
    rc = kb ? chan_form_add(&b, "keyboard", kb) : KK_EINVAL;
    free(kb);
  }
  if (rc) {
    kk_buf_fini(&b);
    return chan_error(error, errcap, KK_EINVAL, "message is too long");
  }
  chan_req_start(req, "POST", chan_concat(chan_base(cfg, VK_HOST), "/method/messages.send",
                                          (char *)NULL));
  chan_req_header(req, "Content-Type", "application/x-www-form-urlencoded");
  req->body = kk_buf_take(&b, &req->body_len);
  if (req->body == NULL) req->body = chan_concat("", (char *)NULL);
  return 0;
}

/* How an error code of the API is handled (PROTOCOLS.md 4, the table). */
static void classify_error(long http_status, json_t *err, struct chan_result *res) {
  int64_t code = 0;
  chan_jget_int(err, "error_code", &code);
  const char *msg = chan_jget_str(err, "error_msg");
  enum chan_outcome o = CHAN_FAIL;
  long retry = 0;
  if (code == 5) {
    o = CHAN_CONFIG;
  } else if (code == 6 || code == 9 || code == 29) {
    o = CHAN_RETRY;
    retry = 1000;
  } else if (code == 10) {
    o = CHAN_RETRY;
  }
  chan_res_code(res, o, retry, http_status, code, NULL, msg);
}

static void vk_parse_reply(long http_status, const char *body, size_t len,
                           const char *retry_after, struct chan_result *res) {
  chan_res_init(res);
  json_t *j = chan_json_object(body, len);
  int64_t id;
  json_t *err = json_object_get(j, "error");
  if (http_status >= 200 && http_status < 300 && chan_jget_int(j, "response", &id) == 0) {
    char s[24];
    snprintf(s, sizeof s, "%" PRId64, id);
    chan_res_ok(res, s);
  } else if (json_is_object(err) && json_is_integer(json_object_get(err, "error_code"))) {
    classify_error(http_status, err, res);
  } else {
    chan_res_unexpected(res, http_status, retry_after);
  }
  json_decref(j);
}

/* One messages.send as VKScript, API.messages.send({...}), from the form
   vk_build made; the token and the version go once, with execute. The
   fields are written as json_dumps would write them, but directly (an
   object made and dumped for each message cost as much as the rest of the
   batch). */
static int call_of(const struct chan_req *r, struct kk_buf *code) {
  static const char *const fields[] = {"peer_id", "random_id", "message", "intent", "keyboard"};
  int rc = r->body == NULL ? KK_EINVAL : kk_buf_puts(code, "API.messages.send({");
  for (size_t i = 0; i < sizeof fields / sizeof fields[0] && !rc; i++) {
    char *v = chan_form_get(r->body, r->body_len, fields[i]);
    int64_t n = 0;
    if (v == NULL) {
      if (strcmp(fields[i], "keyboard") != 0) rc = KK_EINVAL;   /* the one that may be absent */
    } else if (i < 2 ? chan_parse_int64(v, &n) != 0 : !kk_utf8_valid(v, strlen(v))) {
      rc = KK_EINVAL;
    } else {
      if (i > 0) rc = kk_buf_append(code, ",", 1);
      if (!rc) rc = kk_json_string(code, fields[i], strlen(fields[i]));
      if (!rc) rc = kk_buf_append(code, ":", 1);
      if (!rc && i < 2) rc = kk_json_int(code, n);
      else if (!rc) rc = kk_json_string(code, v, strlen(v));
    }
    free(v);
  }
  if (!rc) rc = kk_buf_puts(code, "})");
  return rc;
}

static int vk_batch(const struct chan_cfg *cfg, const struct chan_req *const *reqs, int n,
                    struct chan_req *out) {
  memset(out, 0, sizeof *out);
  if (n < 1 || n > VK_BATCH_MAX) return KK_ENOSPC;
  struct kk_buf code;
  kk_buf_init(&code, VK_CODE_MAX);
  int rc = kk_buf_puts(&code, "return [");
  for (int i = 0; i < n && !rc; i++) {
    if (i) rc = kk_buf_puts(&code, ",");
    if (!rc) rc = call_of(reqs[i], &code);
  }
  if (!rc) rc = kk_buf_puts(&code, "];");
  struct kk_buf b;
  kk_buf_init(&b, CHAN_BODY_MAX);
  if (!rc) rc = chan_form_add(&b, "access_token", cfg->token);
  if (!rc) rc = chan_form_add(&b, "v", VK_VERSION);
  if (!rc) rc = chan_form_add(&b, "code", code.p);
  kk_buf_fini(&code);
  if (rc) {
    kk_buf_fini(&b);
    return KK_ENOSPC;
  }
  chan_req_start(out, "POST", chan_concat(chan_base(cfg, VK_HOST), "/method/execute", (char *)NULL));
  chan_req_header(out, "Content-Type", "application/x-www-form-urlencoded");
  out->body = kk_buf_take(&b, &out->body_len);
  return 0;
}

/* {"response":[id | false, ...], "execute_errors":[{error_code, error_msg}...]}:
   each false takes the next of execute_errors. An error of the whole request
   is every message's. */
static void vk_parse_batch_reply(long http_status, const char *body, size_t len,
                                 const char *retry_after, struct chan_result *res, int n) {
  for (int i = 0; i < n; i++) chan_res_init(&res[i]);
  json_t *j = chan_json_object(body, len);
  json_t *list = json_object_get(j, "response"), *errs = json_object_get(j, "execute_errors");
  json_t *err = json_object_get(j, "error");
  if (http_status >= 200 && http_status < 300 && json_is_array(list) &&
      json_array_size(list) == (size_t)n) {
    size_t next_err = 0;
    for (int i = 0; i < n; i++) {
      json_t *v = json_array_get(list, (size_t)i);
      json_t *e = json_is_integer(v) ? NULL : json_array_get(errs, next_err++);
      if (json_is_integer(v)) {
        char s[24];
        snprintf(s, sizeof s, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        chan_res_ok(&res[i], s);
      } else if (json_is_object(e) && json_is_integer(json_object_get(e, "error_code"))) {
        classify_error(http_status, e, &res[i]);
      } else {
        chan_res_set(&res[i], CHAN_FAIL, 0, "execute gave no result for this message");
      }
    }
  } else {
    if (json_is_object(err) && json_is_integer(json_object_get(err, "error_code")))
      classify_error(http_status, err, &res[0]);
    else
      chan_res_unexpected(&res[0], http_status, retry_after);
    for (int i = 1; i < n; i++) res[i] = res[0];
  }
  json_decref(j);
}

/* A message_read event: one "read" status for the peer. */
static void read_status(json_t *obj, const struct chan_hook_in *in, struct chan_hook_out *out) {
  int64_t peer, upto;
  if (chan_jget_int(obj, "peer_id", &peer) != 0 && chan_jget_int(obj, "from_id", &peer) != 0)
    return;
  if (chan_jget_int(obj, "read_message_id", &upto) != 0) return;
  struct chan_status *st = chan_hook_status(out, "", "read", in->now_ms);
  if (st == NULL) return;
  snprintf(st->peer, sizeof st->peer, "%" PRId64, peer);
  st->read_upto = upto;
}

/* A message_new event: what a person wrote to the community (object.message
   since API 5.103, the object itself before). */
static void message_new(json_t *obj, const struct chan_hook_in *in, struct chan_hook_out *out) {
  json_t *msg = json_object_get(obj, "message");
  if (!json_is_object(msg)) msg = obj;
  int64_t from, date;
  if (chan_jget_int(msg, "from_id", &from) != 0 || from <= 0) return;   /* not a person */
  if (chan_jget_int(msg, "date", &date) != 0) date = 0;
  char user[24];
  snprintf(user, sizeof user, "%" PRId64, from);
  chan_hook_user_msg(out, in, user, chan_seconds_to_ms(date, in->now_ms),
                     chan_jget_str(msg, "text"), NULL);
}

/* The confirmation request: answered with the configured string. */
static int confirm(const struct chan_cfg *cfg, json_t *j, struct chan_hook_out *out) {
  const char *secret = chan_jget_str(j, "secret");
  if (cfg->secret[0] && secret && !kk_str_equal_ct(secret, cfg->secret))
    return chan_hook_refuse(out, KK_EAUTH, "secret does not match");
  if (!cfg->confirmation[0]) return chan_hook_refuse(out, KK_EAUTH, "confirmation is not set");
  return chan_hook_accept(out, cfg->confirmation);
}

static int vk_hook(const struct chan_cfg *cfg, const struct chan_hook_in *in,
                   struct chan_hook_out *out) {
  chan_hook_init(out);
  if (!chan_hook_method(in, "POST")) return chan_hook_refuse(out, KK_EPROTO, "not a POST");
  json_t *j = chan_json_object(in->body, in->len);
  const char *type = chan_jget_str(j, "type");
  int rc;
  int64_t group = 0;
  if (type == NULL) {
    rc = chan_hook_refuse(out, KK_EPROTO, "not a VK event");
  } else if (cfg->group_id != 0 &&
             (chan_jget_int(j, "group_id", &group) != 0 || group != cfg->group_id)) {
    rc = chan_hook_refuse(out, KK_EAUTH, "group_id does not match");
  } else if (strcmp(type, "confirmation") == 0) {
    rc = confirm(cfg, j, out);
  } else if (!cfg->secret[0]) {
    rc = chan_hook_refuse(out, KK_EAUTH, "secret is not set");
  } else if (!kk_str_equal_ct(chan_jget_str(j, "secret"), cfg->secret)) {
    rc = chan_hook_refuse(out, KK_EAUTH, "secret does not match");
  } else {
    if (strcmp(type, "message_read") == 0) read_status(json_object_get(j, "object"), in, out);
    if (strcmp(type, "message_new") == 0) message_new(json_object_get(j, "object"), in, out);
    rc = chan_hook_accept(out, "ok");
  }
  json_decref(j);
  return rc;
}

/* Its settings, in the order their errors are reported. */
static const struct chan_field vk_fields[] = {
    CHAN_FIELD(base_url, CHAN_FIELD_HTTP_BASE),
    CHAN_FIELD(token, CHAN_FIELD_SECRET | CHAN_FIELD_REQUIRED),
    CHAN_FIELD(secret, CHAN_FIELD_SECRET),
    CHAN_FIELD(sender, 0),
    CHAN_FIELD(group_id, CHAN_FIELD_INT),
    CHAN_FIELD(confirmation, 0),
};

const struct chan_driver chan_vk_driver = {
  .name = "vk",
  CHAN_FIELDS(vk_fields),
  .reports = CHAN_SENT | CHAN_READ,
  .address_field = "vk_id",
  .phone_fallback = 0,
  .resend_safe = 1,
  .build = vk_build,
  .parse_reply = vk_parse_reply,
  .batch_max = VK_BATCH_MAX,
  .batch = vk_batch,
  .parse_batch_reply = vk_parse_batch_reply,
  .hook = vk_hook,
  .build_register = NULL,
  .check = vk_check,
};
