/*
 * fuzz_hooks.c - fuzz target for the channel drivers: inbound callbacks,
 * provider answers and, on the side, request building.
 *
 * Input: byte 0 picks the HTTP status and Retry-After for the answers,
 * byte 1 the callback's method, byte 2 how the callback is signed (bits 0-1:
 * correct, missing, wrong, upper-case; bits 2-3: Gateway timestamp fresh,
 * stale, future, not a number; bits 4-6: WhatsApp GET query variants;
 * bit 7: the body is also a wa_template; for the builds bit 3 also opens
 * WhatsApp's window). The rest is the callback body, which every driver's
 * hook() gets with headers made for it from a fixed configuration, so
 * signed bodies reach the JSON code. Every parse_reply() gets both the
 * whole input and the body as an answer; the body is also the text of every
 * build() and the URL of every build_register().
 *
 * Invariants: hook() returns 0 / KK_EAUTH / KK_EPROTO with 200 / 403 / 400,
 * a wrong or missing signature is always refused, at most
 * CHAN_HOOK_MAX_STATUS statuses with known names and CHAN_HOOK_MAX_INBOUND
 * messages from digit-only phones or else from a messenger's user id, no
 * later than now, every output string
 * is NUL-terminated UTF-8; parse_reply() gives a known outcome with sane
 * fields; build() succeeds or says KK_EINVAL.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "channel/chan_int.h"
#include "channel/channel.h"
#include "core/kk_crypto.h"
#include "core/kk_err.h"
#include "lib/chan_fake.h"

#define NOW_MS 1763932810000LL

static void check(int ok) {
  if (!ok) __builtin_trap();
}

/* A NUL-terminated, valid UTF-8 string inside its array. */
static void check_str(const char *s, size_t cap) {
  const char *end = memchr(s, '\0', cap);
  check(end != NULL);
  check(chan_utf8_valid(s, (size_t)(end - s)));
}

/* Applies the signature mode to hex[65]: NULL for missing, else hex. */
static const char *signature_mode(int mode, char *hex) {
  if (mode == 1) return NULL;
  if (mode == 2) hex[0] = hex[0] == '0' ? '1' : '0';
  if (mode == 3)
    for (char *p = hex; *p; p++)
      if (*p >= 'a' && *p <= 'f') *p = (char)(*p - 'a' + 'A');
  return hex;
}

/* Storage for the header values of one request. */
struct values {
  char hex[65];
  char sig[80];
  char ts[32];
};

/* Headers (and query) for driver name, signed over body per flags; the
   values live in v. */
static void make_request(const char *name, const struct chan_cfg *cfg, uint8_t flags,
                         const char *body, size_t len, struct chan_fake *f, struct values *v) {
  int mode = flags & 3;
  char *hex = v->hex, *sig = v->sig, *ts = v->ts;
  memset(f, 0, sizeof *f);
  if (strcmp(name, "viber") == 0) {
    kk_hmac_sha256_hex(cfg->token, strlen(cfg->token), body, len, hex);
    chan_fake_add_header(f, "X-Viber-Content-Signature", signature_mode(mode, hex));
  } else if (strcmp(name, "telegram") == 0) {
    chan_fake_add_header(f, "X-Telegram-Bot-Api-Secret-Token",
               mode == 1 ? NULL : mode == 2 ? "fuzz-secreT" : cfg->secret);
  } else if (strcmp(name, "whatsapp") == 0) {
    kk_hmac_sha256_hex(cfg->secret, strlen(cfg->secret), body, len, hex);
    const char *h = signature_mode(mode, hex);
    if (h) snprintf(sig, sizeof v->sig, "sha256=%.64s", h);
    chan_fake_add_header(f, "X-Hub-Signature-256", h ? sig : NULL);
    static const char *const modes[] = {"subscribe", "unsubscribe"};
    f->q[0][0] = "hub.mode";
    f->q[0][1] = modes[(flags >> 4) & 1];
    f->q[1][0] = "hub.verify_token";
    f->q[1][1] = (flags & 0x20) ? "fuzz-verifY" : cfg->verify_token;
    f->q[2][0] = "hub.challenge";
    f->q[2][1] = (flags & 0x40) ? NULL : body;
    f->nq = 3;
  } else if (strcmp(name, "telegram_gateway") == 0) {
    static const char *const stamps[] = {"1763932810", "1763932509", "1763933111", "17639x"};
    snprintf(ts, sizeof v->ts, "%s", stamps[(flags >> 2) & 3]);
    chan_fake_sign_gw(cfg->token, ts, body, len, hex);
    chan_fake_add_header(f, "X-Request-Timestamp", ts);
    chan_fake_add_header(f, "X-Request-Signature", signature_mode(mode, hex));
  }
}

static void check_hook_out(int rc, const struct chan_hook_out *out) {
  check(rc == 0 || rc == KK_EAUTH || rc == KK_EPROTO);
  if (rc == 0) check(out->http_status == 200);
  if (rc == KK_EAUTH) check(out->http_status == 401 || out->http_status == 403);
  if (rc == KK_EPROTO) check(out->http_status == 400);
  check(out->nstatus >= 0 && out->nstatus <= CHAN_HOOK_MAX_STATUS);
  if (rc != 0) check(out->nstatus == 0);
  check_str(out->reply, sizeof out->reply);
  check_str(out->reason, sizeof out->reason);
  static const char *const names[] = {"sent", "delivered", "read", "failed", "expired"};
  for (int i = 0; i < out->nstatus; i++) {
    const struct chan_status *st = &out->st[i];
    check_str(st->provider_id, sizeof st->provider_id);
    check_str(st->status, sizeof st->status);
    check_str(st->error, sizeof st->error);
    check_str(st->peer, sizeof st->peer);
    int known = 0;
    for (size_t k = 0; k < sizeof names / sizeof names[0]; k++)
      known |= strcmp(st->status, names[k]) == 0;
    check(known);
  }
  check(out->ninbound >= 0 && out->ninbound <= CHAN_HOOK_MAX_INBOUND);
  if (rc != 0) check(out->ninbound == 0);
  for (int i = 0; i < out->ninbound; i++) {
    const char *from = out->in[i].from, *user = out->in[i].user;
    check(memchr(from, '\0', sizeof out->in[i].from) != NULL);
    check_str(user, sizeof out->in[i].user);
    check_str(out->in[i].text, sizeof out->in[i].text);
    /* a phone of digits, or else a messenger's user id */
    if (from[0] != '\0')
      check(strspn(from, "0123456789") == strlen(from) && user[0] == '\0');
    else
      check(user[0] != '\0');
    check(out->in[i].at > 0 && out->in[i].at <= NOW_MS);
  }
}

static void run_hooks(const struct chan_cfg *cfg, uint8_t method, uint8_t flags,
                      const char *body, size_t len) {
  static const char *const methods[] = {"POST", "POST", "GET", "PUT"};
  const char *m = methods[method & 3];
  int n;
  const struct chan_driver *const *all = chan_drivers(&n);
  for (int i = 0; i < n; i++) {
    if (all[i]->hook == NULL) continue;
    struct chan_fake f;
    struct values v;
    make_request(all[i]->name, cfg, flags, body, len, &f, &v);
    struct chan_hook_in in = {m, body, len, chan_fake_header, chan_fake_query, &f, NOW_MS};
    struct chan_hook_out out;
    memset(&out, 0x5a, sizeof out);
    int rc = all[i]->hook(cfg, &in, &out);
    check_hook_out(rc, &out);
    /* A forged or missing signature never gets through a POST. */
    if (strcmp(m, "POST") == 0 && ((flags & 3) == 1 || (flags & 3) == 2) &&
        strcmp(all[i]->name, "vk") != 0)
      check(rc == KK_EAUTH);
  }
}

static void run_replies(uint8_t sel, const uint8_t *data, size_t size) {
  static const long statuses[] = {200, 200, 0, 250, 400, 401, 403, 404,
                                  429, 500, 503, 530, 535, 550, 451, 201};
  static const char *const retry[] = {NULL, "5", "x", "99999999999999999999"};
  long status = statuses[sel & 15];
  const char *ra = retry[(sel >> 4) & 3];
  int n;
  const struct chan_driver *const *all = chan_drivers(&n);
  for (int i = 0; i < n; i++) {
    if (all[i]->parse_reply == NULL) continue;
    struct chan_result res;
    memset(&res, 0x5a, sizeof res);
    all[i]->parse_reply(status, (const char *)data, size, ra, &res);
    check(res.outcome == CHAN_OK || res.outcome == CHAN_RETRY || res.outcome == CHAN_FAIL ||
          res.outcome == CHAN_CONFIG);
    check_str(res.provider_id, sizeof res.provider_id);
    check_str(res.error, sizeof res.error);
    check_str(res.detail, sizeof res.detail);
    check(res.retry_after_ms >= 0 && res.retry_after_ms <= 86400L * 1000);
    if (res.outcome != CHAN_RETRY) check(res.retry_after_ms == 0);
    if (res.outcome == CHAN_OK && strcmp(all[i]->name, "email") != 0)
      check(res.provider_id[0] != '\0');
    if (res.outcome != CHAN_OK) check(res.error[0] != '\0');
  }
}

static void run_builds(const struct chan_cfg *cfg, uint8_t flags, const char *text) {
  int n;
  const struct chan_driver *const *all = chan_drivers(&n);
  for (int i = 0; i < n; i++) {
    if (all[i]->build == NULL) continue;
    const char *name = all[i]->name;
    struct chan_msg m;
    memset(&m, 0, sizeof m);
    m.attempt_id = (int64_t)flags * 1000003;
    m.public_id = "msg_fuzz";
    m.to = "79161234567";
    m.address = strcmp(name, "vk") == 0         ? "12345"
                : strcmp(name, "telegram") == 0 ? "-100123"
                : strcmp(name, "viber") == 0    ? ((flags & 1) ? "viber-id" : NULL)
                : strcmp(name, "email") == 0    ? "to@kaskad.test"
                                                : NULL;
    m.text = text;
    m.image = (flags & 2) ? "https://img.test/a.png" : NULL;
    m.button_caption = (flags & 4) ? "Open" : NULL;
    m.button_url = (flags & 4) ? "https://ex.test/" : NULL;
    m.wa_template = (flags & 0x80) ? text : NULL;
    m.wa_window = (flags & 8) != 0;
    m.ttl_s = flags & 0x40 ? 7 : 0;
    struct chan_req req;
    char err[160];
    err[0] = '\0';
    int rc = all[i]->build(cfg, &m, &req, err, sizeof err);
    check(rc == 0 || rc == KK_EINVAL);
    if (rc == 0) {
      check(req.url != NULL && req.body != NULL && req.body_len == strlen(req.body));
      check(req.nheaders >= 0 && req.nheaders <= CHAN_MAX_HEADERS);
    } else {
      check(err[0] != '\0');
      check_str(err, sizeof err);
    }
    chan_req_free(&req);
    if (all[i]->build_register) {
      rc = all[i]->build_register(cfg, text, &req);
      check(rc == 0 || rc == KK_EINVAL);
      if (rc == 0) check(req.url != NULL && req.body != NULL && req.nheaders > 0);
      chan_req_free(&req);
    }
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  struct chan_cfg cfg = chan_fake_cfg_all();
  run_replies(size > 0 ? data[0] : 0, data, size);
  if (size < 3) return 0;
  size_t len = size - 3;
  run_replies(data[0], data + 3, len);
  char *body = malloc(len + 1);
  memcpy(body, data + 3, len);
  body[len] = '\0';
  run_hooks(&cfg, data[1], data[2], body, len);
  run_builds(&cfg, data[2], body);
  free(body);
  return 0;
}
