/*
 * chan_tggw.c - the Telegram Gateway API (PROTOCOLS.md 2.2): verification
 * codes by phone with sendVerificationMessage, its answer, and the signed
 * delivery reports (RequestStatus) it POSTs to the callback_url.
 *
 * Only codes travel this way: the code is m->code or the first run of 4-8
 * digits in the text, and Telegram writes the message itself.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "channel/chan_int.h"
#include "core/kk_crypto.h"
#include "core/kk_err.h"

#define GW_HOST "https://gatewayapi.telegram.org"
#define GW_STALE_S 300

static int is_digit(char c) {
  return c >= '0' && c <= '9';
}

/* Copies the code into out[9]: m->code (must be 4-8 digits), else the first
   maximal run of 4-8 digits of the text. 0 or KK_EINVAL with error. */
static int find_code(const struct chan_msg *m, char out[9], char *error, size_t errcap) {
  if (chan_set(m->code)) {
    size_t n = strlen(m->code);
    for (size_t i = 0; i < n; i++)
      if (!is_digit(m->code[i])) n = 0;
    if (n < 4 || n > 8) return chan_error(error, errcap, KK_EINVAL, "code must be 4-8 digits");
    memcpy(out, m->code, n + 1);
    return 0;
  }
  const char *p = chan_str(m->text);
  while (*p) {
    if (!is_digit(*p)) {
      p++;
      continue;
    }
    size_t n = 0;
    while (is_digit(p[n])) n++;
    if (n >= 4 && n <= 8) {
      memcpy(out, p, n);
      out[n] = '\0';
      return 0;
    }
    p += n;
  }
  return chan_error(error, errcap, KK_EINVAL, "no 4-8 digit code in the text");
}

/* The token goes into the Authorization header as it is. */
static int gw_check(const struct chan_cfg *cfg, char *error, size_t errcap) {
  if (cfg->token[0] && !chan_charset(cfg->token, "._~+/=:-"))
    return chan_error(error, errcap, KK_EINVAL,
                      "invalid_token: a Gateway token is A-Z a-z 0-9 . _ ~ + / = : and -");
  return 0;
}

static int gw_build(const struct chan_cfg *cfg, const struct chan_msg *m, struct chan_req *req,
                    char *error, size_t errcap) {
  memset(req, 0, sizeof *req);
  if (!cfg->token[0]) return chan_error(error, errcap, KK_ENOENT, "token is not set");
  if (gw_check(cfg, error, errcap) != 0) return KK_EINVAL;
  if (!chan_set(m->to)) return chan_error(error, errcap, KK_EINVAL, "phone is not set");
  char code[9];
  int rc = find_code(m, code, error, errcap);
  if (rc) return rc;

  char payload[24];
  char *phone = chan_concat("+", m->to, (char *)NULL);
  snprintf(payload, sizeof payload, "%" PRId64, m->attempt_id);
  json_t *o = json_object();
  int bad = 0;
  chan_jset(o, "phone_number", chan_jstr(phone), &bad);
  free(phone);
  chan_jset(o, "code", json_string(code), &bad);
  if (m->ttl_s > 0)
    chan_jset(o, "ttl", json_integer(m->ttl_s < 30 ? 30 : m->ttl_s > 3600 ? 3600 : m->ttl_s),
              &bad);
  if (chan_set(m->callback_url)) chan_jset(o, "callback_url", chan_jstr(m->callback_url), &bad);
  chan_jset(o, "payload", json_string(payload), &bad);
  if (cfg->sender[0]) chan_jset(o, "sender_username", chan_jstr(cfg->sender), &bad);
  if (bad) {
    json_decref(o);
    o = NULL;
  }
  chan_req_start(req, "POST", chan_concat(chan_base(cfg, GW_HOST), "/sendVerificationMessage",
                                          (char *)NULL));
  chan_req_header(req, "Content-Type", "application/json");
  chan_req_bearer(req, cfg->token);
  if (chan_req_json(req, o) != 0) {
    chan_req_free(req);
    return chan_error(error, errcap, KK_EINVAL, "the request cannot be encoded");
  }
  return 0;
}

/* FLOOD_WAIT_<n> as n seconds in ms; 0 when there is no number. */
static long flood_wait_ms(const char *err) {
  const char *p = err + strlen("FLOOD_WAIT");
  if (*p == '_') p++;
  long s = 0;
  for (; is_digit(*p); p++) {
    s = s * 10 + (*p - '0');
    if (s > 86400) return 86400L * 1000;
  }
  return *p == '\0' ? s * 1000 : 0;
}

/* {"ok":false,"error":"X"}: by X. */
static void classify_error(long http_status, const char *err, const char *retry_after,
                           struct chan_result *res) {
  /* The error is a code; anything else the answer says is not shown. */
  const char *code = chan_code_text(err);
  if (strcmp(err, "ACCESS_TOKEN_INVALID") == 0 || strcmp(err, "ACCESS_TOKEN_REQUIRED") == 0)
    chan_res_set(res, CHAN_CONFIG, 0, "%s (HTTP %ld)", code, http_status);
  else if (strncmp(err, "FLOOD_WAIT", 10) == 0)
    chan_res_set(res, CHAN_RETRY, flood_wait_ms(err), "%s (HTTP %ld)", code, http_status);
  else if (http_status == 429)
    chan_res_set(res, CHAN_RETRY, chan_retry_after_ms(retry_after), "%s (HTTP %ld)", code,
                 http_status);
  else
    chan_res_set(res, CHAN_FAIL, 0, "%s (HTTP %ld)", code, http_status);
  chan_res_detail(res, err);
}

static void gw_parse_reply(long http_status, const char *body, size_t len,
                           const char *retry_after, struct chan_result *res) {
  chan_res_init(res);
  if (http_status == 0 || http_status >= 500) {
    chan_res_unexpected(res, http_status, retry_after);
    return;
  }
  json_t *j = chan_json_object(body, len);
  json_t *ok = json_object_get(j, "ok");
  const char *id = chan_jget_str(json_object_get(j, "result"), "request_id");
  const char *err = chan_jget_str(j, "error");
  if (json_is_true(ok) && id && id[0] && http_status >= 200 && http_status < 300)
    chan_res_ok(res, id);
  else if (json_is_false(ok) && err && err[0])
    classify_error(http_status, err, retry_after, res);
  else
    chan_res_unexpected(res, http_status, retry_after);
  json_decref(j);
}

/* Checks X-Request-Timestamp and X-Request-Signature. 0 or a refusal. */
static int verify(const struct chan_cfg *cfg, const struct chan_hook_in *in,
                  struct chan_hook_out *out) {
  if (!cfg->token[0]) return chan_hook_refuse(out, KK_EAUTH, "token is not set");
  const char *ts = chan_hook_header(in, "X-Request-Timestamp");
  const char *sig = chan_hook_header(in, "X-Request-Signature");
  if (ts == NULL || sig == NULL) return chan_hook_refuse(out, KK_EAUTH, "signature is missing");
  size_t tslen = strlen(ts);
  int64_t t = 0;
  for (size_t i = 0; i < tslen; i++)
    if (!is_digit(ts[i])) tslen = 0;
  if (tslen == 0 || tslen > 12) return chan_hook_refuse(out, KK_EAUTH, "bad timestamp");
  for (size_t i = 0; i < tslen; i++) t = t * 10 + (ts[i] - '0');

  uint8_t key[32], mac[32];
  kk_sha256(cfg->token, strlen(cfg->token), key);
  const void *parts[3] = {ts, "\n", in->body};
  size_t lens[3] = {tslen, 1, in->len};
  char want[65];
  if (kk_hmac_sha256(key, sizeof key, parts, lens, 3, mac) != 0)
    return chan_hook_refuse(out, KK_EAUTH, "cannot compute the signature");
  kk_hex(mac, sizeof mac, want);
  if (!chan_hex_equal_ct(sig, want))
    return chan_hook_refuse(out, KK_EAUTH, "signature does not match");
  int64_t now = in->now_ms / 1000;
  if (t - now > GW_STALE_S || now - t > GW_STALE_S)
    return chan_hook_refuse(out, KK_EAUTH, "stale timestamp");
  return 0;
}

/* The delivery status of a RequestStatus, if any. */
static void delivery_status(json_t *j, const char *request_id, const struct chan_hook_in *in,
                            struct chan_hook_out *out) {
  json_t *ds = json_object_get(j, "delivery_status");
  const char *s = chan_jget_str(ds, "status");
  if (s == NULL) return;
  int64_t t;
  int64_t at = chan_jget_int(ds, "updated_at", &t) == 0 ? chan_seconds_to_ms(t, in->now_ms)
                                                        : in->now_ms;
  if (strcmp(s, "revoked") == 0) {
    struct chan_status *st = chan_hook_status(out, request_id, "failed", at);
    if (st) chan_copy(st->error, sizeof st->error, "revoked");
  } else if (strcmp(s, "sent") == 0 || strcmp(s, "delivered") == 0 || strcmp(s, "read") == 0 ||
             strcmp(s, "expired") == 0) {
    chan_hook_status(out, request_id, s, at);
  }
}

static int gw_hook(const struct chan_cfg *cfg, const struct chan_hook_in *in,
                   struct chan_hook_out *out) {
  chan_hook_init(out);
  if (!chan_hook_method(in, "POST")) return chan_hook_refuse(out, KK_EPROTO, "not a POST");
  int rc = verify(cfg, in, out);
  if (rc) return rc;
  json_t *j = chan_json_object(in->body, in->len);
  const char *id = chan_jget_str(j, "request_id");
  if (id == NULL) {
    rc = chan_hook_refuse(out, KK_EPROTO, "no request_id");
  } else {
    delivery_status(j, id, in, out);
    rc = chan_hook_accept(out, "");
  }
  json_decref(j);
  return rc;
}

/* Its settings, in the order their errors are reported. */
static const struct chan_field gw_fields[] = {
    CHAN_FIELD(base_url, CHAN_FIELD_HTTP_BASE),
    CHAN_FIELD(token, CHAN_FIELD_SECRET | CHAN_FIELD_REQUIRED),
    CHAN_FIELD(sender, 0),
};

const struct chan_driver chan_tggw_driver = {
  .name = "telegram_gateway",
  CHAN_FIELDS(gw_fields),
  .reports = CHAN_SENT | CHAN_DELIVERED | CHAN_READ,
  .address_field = NULL,
  .phone_fallback = 0,
  .build = gw_build,
  .parse_reply = gw_parse_reply,
  .hook = gw_hook,
  .build_register = NULL,
  .check = gw_check,
};
