/*
 * api_cascade.c - cascades and channels in the HTTP API:
 *
 *   validation of a message's cascade steps and per-channel parts (no I/O,
 *   used by api_msg_parse);
 *   PUT/GET/DELETE /v1/channels[/{channel}]   (account key: its own; operator
 *                                              key: the defaults for all)
 *   PUT/GET /v1/prices                        (operator sets; accounts read)
 *   PUT/GET/DELETE /v1/cascades[/{name}]      (named cascades of an account)
 *   GET/POST /v1/hooks/{channel}/{scope}      (provider callbacks, no API key:
 *                                              the provider's signature)
 */
#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "cascade/cascade.h"
#include "channel/channel.h"
#include "core/kk_cfg.h"
#include "core/kk_err.h"
#include "core/kk_log.h"
#include "core/kk_mem.h"
#include "core/kk_net.h"
#include "core/kk_rate.h"
#include "dispatch/dispatch.h"
#include "http/http_client.h"
#include "http/http_server.h"

#define LOGCTX "api"
#define MONEY_SCALE 10000.0    /* prices and costs are kept in 1/10000 units */
#define MAX_PRICE 1000000.0
#define HOOK_SCOPES_MAX 65536  /* webhook scopes with a token bucket at once */

static int refuse(struct api_err *e, int status, const char *code, const char *field,
                  const char *fmt, ...) __attribute__((format(printf, 5, 6)));
static int refuse(struct api_err *e, int status, const char *code, const char *field,
                  const char *fmt, ...) {
  e->status = status;
  e->code = code;
  if (field && field != e->fieldbuf) snprintf(e->fieldbuf, sizeof e->fieldbuf, "%s", field);
  e->field = field ? e->fieldbuf : NULL;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(e->message, sizeof e->message, fmt, ap);
  va_end(ap);
  return -1;
}

/* ---- cascade steps --------------------------------------------------------- */

static const char *const waits[] = {"sent", "delivered", "read"};

static unsigned wait_bit(const char *w) {
  return strcmp(w, "read") == 0 ? CHAN_READ : strcmp(w, "delivered") == 0 ? CHAN_DELIVERED
                                                                            : CHAN_SENT;
}

static const char *default_wait(unsigned reports) {
  return reports & CHAN_DELIVERED ? "delivered" : reports & CHAN_READ ? "read" : "sent";
}

int api_cascade_parse(json_t *v, char *out, size_t cap, struct api_err *e) {
  char f[48];
  if (!json_is_array(v) || json_array_size(v) == 0 || json_array_size(v) > STORE_MAX_STEPS)
    return refuse(e, 422, "invalid_cascade", "cascade",
                  "cascade: a list of 1 to %d steps {\"channel\", \"wait\", \"timeout\"} or the "
                  "name of a saved cascade", STORE_MAX_STEPS);
  struct store_step steps[STORE_MAX_STEPS];
  size_t n = json_array_size(v), i;
  json_t *s;
  json_array_foreach(v, i, s) {
    if (!json_is_object(s)) {
      snprintf(f, sizeof f, "cascade[%zu]", i);
      return refuse(e, 422, "invalid_cascade", f, "%s: a step must be an object", f);
    }
    const char *ch = json_string_value(json_object_get(s, "channel"));
    const struct chan_driver *drv = ch ? chan_driver(ch) : NULL;
    if (drv == NULL) {
      snprintf(f, sizeof f, "cascade[%zu].channel", i);
      return refuse(e, 422, "unknown_channel", f,
                    "%s: one of vk, viber, telegram, telegram_gateway, whatsapp, email, sms", f);
    }
    json_t *wv = json_object_get(s, "wait");
    const char *wait = default_wait(drv->reports);
    if (wv && !json_is_null(wv)) {
      wait = json_string_value(wv);
      int ok = 0;
      for (int k = 0; k < 3; k++) ok |= wait && strcmp(wait, waits[k]) == 0;
      if (!ok) {
        snprintf(f, sizeof f, "cascade[%zu].wait", i);
        return refuse(e, 422, "invalid_wait", f, "%s: sent, delivered or read", f);
      }
      if (!(drv->reports & wait_bit(wait))) {
          char can[64];
        snprintf(f, sizeof f, "cascade[%zu].wait", i);
        return refuse(e, 422, "wait_unsupported", f,
                      "%s: %s reports %s; it can never report %s", f, ch,
                      chan_reports_text(drv->reports, can, sizeof can), wait);
      }
    }
    json_t *tv = json_object_get(s, "timeout");
    long long ms = 0;
    if (tv && !json_is_null(tv)) {
      int bad = 0;
      if (json_is_integer(tv))
        ms = (long long)json_integer_value(tv) * 1000;
      else if (!json_is_string(tv) || kk_parse_duration_ms(json_string_value(tv), &ms) != 0)
        bad = 1;
      if (bad || ms < 1000 || ms > 7LL * 24 * 3600 * 1000) {
        snprintf(f, sizeof f, "cascade[%zu].timeout", i);
        return refuse(e, 422, "invalid_timeout", f,
                      "%s: a duration like \"90s\", \"10m\", \"2h\" (1s to 7d)", f);
      }
    } else if (i + 1 < n) {
      snprintf(f, sizeof f, "cascade[%zu].timeout", i);
      return refuse(e, 422, "timeout_required", f,
                    "%s: every step but the last needs a timeout, after which the next starts", f);
    }
    memset(&steps[i], 0, sizeof steps[i]);
    snprintf(steps[i].channel, sizeof steps[i].channel, "%s", ch);
    snprintf(steps[i].wait, sizeof steps[i].wait, "%s", wait);
    steps[i].timeout_ms = ms;
  }
  if (store_steps_format(steps, (int)n, out, cap) != 0)
    return refuse(e, 422, "invalid_cascade", "cascade", "cascade: too long");
  return 0;
}

/* The cascade's steps as the API shows them (new reference). */
static json_t *steps_json(const char *text) {
  struct store_step st[STORE_MAX_STEPS];
  int n = store_steps_parse(text, st);
  json_t *out = json_array();
  for (int i = 0; i < n; i++) {
    json_t *o = json_pack("{s:s, s:s}", "channel", st[i].channel, "wait", st[i].wait);
    long long ms = st[i].timeout_ms;
    if (ms > 0) {
      char t[32];
      if (ms % 3600000 == 0)
        snprintf(t, sizeof t, "%lldh", ms / 3600000);
      else if (ms % 60000 == 0)
        snprintf(t, sizeof t, "%lldm", ms / 60000);
      else if (ms % 1000 == 0)
        snprintf(t, sizeof t, "%llds", ms / 1000);
      else
        snprintf(t, sizeof t, "%lldms", ms);
      json_object_set_new(o, "timeout", json_string(t));
    }
    json_array_append_new(out, o);
  }
  return out;
}

int api_cascade_has(const char *steps, const char *channel) {
  struct store_step st[STORE_MAX_STEPS];
  int n = store_steps_parse(steps, st);
  for (int i = 0; i < n; i++)
    if (strcmp(st[i].channel, channel) == 0) return 1;
  return 0;
}

/* ---- per-channel parts of a message ---------------------------------------- */

static int http_url(const char *u) {
  return u && (strncmp(u, "http://", 7) == 0 || strncmp(u, "https://", 8) == 0) &&
         strlen(u) <= 500 && !strpbrk(u, " \r\n\t\"<>");
}

static int printable(const char *s, size_t max) {
  size_t n = strlen(s);
  if (n == 0 || n > max) return 0;
  for (const char *p = s; *p; p++)
    if ((unsigned char)*p < 0x20) return 0;
  return 1;
}

int api_valid_email(const char *s) {
  const char *at = strchr(s, '@');
  if (!at || at == s || !at[1] || strchr(at + 1, '@') || strlen(s) > 254) return 0;
  for (const char *p = s; *p; p++)
    if ((unsigned char)*p <= 0x20 || strchr("<>()[]\\,;:\"", *p)) return 0;
  return strchr(at + 1, '.') != NULL;
}

/* An id given as a string or a number, as text. */
static const char *id_text(json_t *v, char *buf, size_t cap) {
  if (json_is_integer(v)) {
    snprintf(buf, cap, "%lld", (long long)json_integer_value(v));
    return buf;
  }
  return json_string_value(v);
}

int api_extra_parse(json_t *o, char **out, int *has_address, struct api_err *e) {
  json_t *x = json_object();
  char buf[32];
  *out = NULL;
  *has_address = 0;
  const char *s;
  json_t *v;
#define FAIL(...) do { json_decref(x); return refuse(e, 422, __VA_ARGS__); } while (0)
  if ((v = json_object_get(o, "vk_id")) && !json_is_null(v)) {
    s = id_text(v, buf, sizeof buf);
    int ok = s && *s && strlen(s) <= 19;
    for (const char *p = s; ok && *p; p++) ok = isdigit((unsigned char)*p);
    if (!ok) FAIL("invalid_vk_id", "vk_id", "vk_id: the VK user id (digits)");
    json_object_set_new(x, "vk_id", json_string(s));
    *has_address = 1;
  }
  if ((v = json_object_get(o, "telegram_chat_id")) && !json_is_null(v)) {
    s = id_text(v, buf, sizeof buf);
    int ok = s && *s && strlen(s) <= 64;
    if (ok && s[0] == '@') {
      for (const char *p = s + 1; ok && *p; p++) ok = isalnum((unsigned char)*p) || *p == '_';
      ok = ok && strlen(s) >= 2;
    } else {
      for (const char *p = s; ok && *p; p++) ok = isdigit((unsigned char)*p) || (p == s && *p == '-');
    }
    if (!ok)
      FAIL("invalid_telegram_chat_id", "telegram_chat_id",
           "telegram_chat_id: a chat id (digits, may start with -) or @channelname");
    json_object_set_new(x, "telegram_chat_id", json_string(s));
    *has_address = 1;
  }
  if ((v = json_object_get(o, "viber_id")) && !json_is_null(v)) {
    s = json_string_value(v);
    if (!s || !printable(s, 64)) FAIL("invalid_viber_id", "viber_id", "viber_id: the Viber user id");
    json_object_set_new(x, "viber_id", json_string(s));
    *has_address = 1;
  }
  if ((v = json_object_get(o, "email")) && !json_is_null(v)) {
    s = json_string_value(v);
    if (!s || !api_valid_email(s)) FAIL("invalid_email", "email", "email: an address like name@example.com");
    json_object_set_new(x, "email", json_string(s));
    *has_address = 1;
  }
  if ((v = json_object_get(o, "image")) && !json_is_null(v)) {
    s = json_string_value(v);
    if (!http_url(s)) FAIL("invalid_image", "image", "image: an http(s) URL of up to 500 characters");
    json_object_set_new(x, "image", json_string(s));
  }
  if ((v = json_object_get(o, "button")) && !json_is_null(v)) {
    const char *cap = json_string_value(json_object_get(v, "caption"));
    const char *url = json_string_value(json_object_get(v, "url"));
    if (!cap || !printable(cap, 64))
      FAIL("invalid_button", "button.caption", "button.caption: 1 to 64 characters");
    if (!http_url(url)) FAIL("invalid_button", "button.url", "button.url: an http(s) URL");
    json_object_set_new(x, "button", json_pack("{s:s, s:s}", "caption", cap, "url", url));
  }
  if ((v = json_object_get(o, "whatsapp_template")) && !json_is_null(v)) {
    const char *name = json_string_value(json_object_get(v, "name"));
    json_t *lang = json_object_get(v, "language");
    json_t *params = json_object_get(v, "params");
    if (!name || !printable(name, 512))
      FAIL("invalid_whatsapp_template", "whatsapp_template.name",
           "whatsapp_template.name: the approved template's name");
    if (lang && (!json_is_string(lang) || !printable(json_string_value(lang), 15)))
      FAIL("invalid_whatsapp_template", "whatsapp_template.language",
           "whatsapp_template.language: a language code like \"ru\"");
    json_t *t = json_pack("{s:s, s:s}", "name", name, "language",
                          lang ? json_string_value(lang) : "ru");
    if (params && !json_is_null(params)) {
      size_t i;
      json_t *p;
      int ok = json_is_array(params) && json_array_size(params) <= 20;
      json_array_foreach(params, i, p) ok = ok && json_is_string(p);
      if (!ok) {
        json_decref(t);
        FAIL("invalid_whatsapp_template", "whatsapp_template.params",
             "whatsapp_template.params: a list of up to 20 strings");
      }
      json_object_set(t, "params", params);
    }
    json_object_set_new(x, "whatsapp_template", t);
  }
  if ((v = json_object_get(o, "code")) && !json_is_null(v)) {
    s = json_string_value(v);
    size_t n = s ? strlen(s) : 0;
    int ok = n >= 4 && n <= 8;
    for (size_t i = 0; ok && i < n; i++) ok = isdigit((unsigned char)s[i]);
    if (!ok) FAIL("invalid_code", "code", "code: 4 to 8 digits (sent by telegram_gateway)");
    json_object_set_new(x, "code", json_string(s));
  }
  if ((v = json_object_get(o, "subject")) && !json_is_null(v)) {
    s = json_string_value(v);
    if (!s || !printable(s, 200)) FAIL("invalid_subject", "subject", "subject: 1 to 200 characters");
    json_object_set_new(x, "subject", json_string(s));
  }
#undef FAIL
  if (json_object_size(x) > 0) *out = json_dumps(x, JSON_COMPACT);
  json_decref(x);
  return 0;
}

/* ---- money ------------------------------------------------------------------- */

json_t *api_money(int64_t units) { return json_real((double)units / MONEY_SCALE); }

/* ---- channel settings ---------------------------------------------------------- */

/* "****" and the last 4 characters (all masked when short). */
static json_t *masked(const char *s) {
  size_t n = strlen(s);
  if (n == 0) return NULL;
  char out[16];
  if (n >= 12) {
    /* The last 4 bytes, moved forward to a character boundary: a cut
       character would make the string unusable in JSON, and the caller
       would then show the secret unmasked. */
    const char *tail = s + n - 4;
    while (tail < s + n && ((unsigned char)*tail & 0xC0) == 0x80) tail++;
    snprintf(out, sizeof out, "****%s", tail);
  } else
    snprintf(out, sizeof out, "****");
  return json_string(out);
}

static const char *const secret_fields[] = {"token", "secret", "verify_token"};

static json_t *channel_json(struct api *a, const char *channel, int64_t account_id, int admin) {
  const struct chan_driver *drv = chan_driver(channel);
  json_t *reports = json_array();
  for (int k = 0; k < 3; k++)
    if (drv->reports & wait_bit(waits[k])) json_array_append_new(reports, json_string(waits[k]));
  json_t *o = json_pack("{s:s, s:o}", "channel", channel, "reports", reports);
  if (strcmp(channel, "sms") == 0) {
    const char *route = dispatch_route_pick(a->dispatch, NULL);
    json_object_set_new(o, "configured", json_boolean(route != NULL));
  }
  int64_t scope = 0;
  const struct chan_cfg *cfg = admin ? chan_settings_get(cascade_engine(a->cascade), 0, channel, &scope)
                                     : chan_settings_get(cascade_engine(a->cascade), account_id, channel, &scope);
  if (cfg == NULL) {
    if (strcmp(channel, "sms") != 0) json_object_set_new(o, "configured", json_false());
    json_object_set_new(o, "source", json_null());
    return o;
  }
  if (strcmp(channel, "sms") != 0) json_object_set_new(o, "configured", json_true());
  json_object_set_new(o, "source", json_string(scope ? "account" : "default"));
  json_t *settings = chan_settings_json(cfg);
  for (size_t i = 0; i < sizeof secret_fields / sizeof secret_fields[0]; i++) {
    json_t *v = json_object_get(settings, secret_fields[i]);
    if (v) json_object_set_new(settings, secret_fields[i], masked(json_string_value(v)));
  }
  json_object_update(o, settings);
  json_decref(settings);
  if (drv->hook || strcmp(channel, "telegram_gateway") == 0) {
    char url[512];
    chan_hook_url(cascade_engine(a->cascade), scope, channel, url, sizeof url);
    json_object_set_new(o, "webhook_url", json_string(url));
  }
  return o;
}

struct chan_put {
  struct api *a;
  struct http_req *req;
  int64_t account_id;       /* 0: the operator's defaults */
  int admin;
  char channel[20];
  struct chan_cfg cfg;
  int deleting;
};

static void on_registered(void *ud, int status, const char *detail) {
  struct chan_put *p = ud;
  json_t *o = channel_json(p->a, p->channel, p->account_id, p->admin);
  if (status != 1) {
    json_t *w = json_pack("{s:b}", "registered", status == 0);
    if (status < 0) json_object_set_new(w, "error", json_string(detail));
    json_object_set_new(o, "webhook_registration", w);
  }
  api_json(p->req, 200, o, NULL);
  free(p);
}

static void on_channel_saved(void *arg, int rc) {
  struct chan_put *p = arg;
  if (rc) {
    api_error(p->req, 503, "store_unavailable", NULL, "the settings could not be stored");
    free(p);
    return;
  }
  /* The send engine's settings changed with the commit (the store's note). */
  if (p->deleting) {
    kk_info(LOGCTX, "%s settings removed (%s)", p->channel, p->account_id ? "account" : "defaults");
    api_empty(p->req, 204);
    free(p);
    return;
  }
  kk_info(LOGCTX, "%s settings stored (%s)", p->channel, p->account_id ? "account" : "defaults");
  chan_hook_register(cascade_engine(p->a->cascade), p->account_id, p->channel, on_registered, p);
}

/* Where a URL of the settings may lead (kk_net_url_check): a literal address
   outside the operator's ranges, localhost or a user name in the URL is
   refused here already; a host name is checked when kaskad connects. */
static int url_refused(const char *field, const char *url, const char *schemes,
                       struct api_err *e) {
  char why[200];
  int rc = kk_net_url_check(url, schemes, http_client_allowed(), why, sizeof why);
  if (rc == KK_EAUTH) return refuse(e, 422, "url_not_allowed", field, "%s: %s", field, why);
  if (rc) return refuse(e, 422, "invalid_settings", field, "%s: %s", field, why);
  return 0;
}

/* The checks of settings beyond their shape (chan_settings_parse): where the
   URLs lead, the one option smtp_url may carry, and the driver's character
   sets of what goes into a URL or header. 0, or -1 with e set. */
static int settings_refused(const char *channel, const struct chan_cfg *cfg, struct api_err *e) {
  if (cfg->base_url[0] && strpbrk(cfg->base_url, "?#\\"))
    return refuse(e, 422, "invalid_settings", "base_url",
                  "base_url: the provider's scheme and host only, e.g. https://api.vk.com");
  if (cfg->base_url[0] && url_refused("base_url", cfg->base_url, "http,https", e)) return -1;
  if (cfg->smtp_url[0]) {
    if (url_refused("smtp_url", cfg->smtp_url, "smtp,smtps", e)) return -1;
    const char *q = strpbrk(cfg->smtp_url, "?#");
    if (q && (strcmp(q, HTTP_CLIENT_SMTP_PLAIN) != 0 || strncmp(cfg->smtp_url, "smtp://", 7) != 0))
      return refuse(e, 422, "invalid_settings", "smtp_url",
                    "smtp_url: the only option is " HTTP_CLIENT_SMTP_PLAIN
                    " at the end of an smtp:// URL (no STARTTLS)");
  }
  const struct chan_driver *drv = chan_driver(channel);
  char why[200] = "";
  if (drv && drv->check && drv->check(cfg, why, sizeof why) != 0) {
    static const char *const codes[] = {"invalid_token", "invalid_phone_number_id",
                                        "invalid_api_version"};
    for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++) {
      size_t n = strlen(codes[i]);
      if (strncmp(why, codes[i], n) == 0 && why[n] == ':')
        return refuse(e, 422, codes[i], codes[i] + 8, "%s:%s", codes[i] + 8, why + n + 1);
    }
    return refuse(e, 422, "invalid_settings", NULL, "%s", why);
  }
  return 0;
}

void api_channels(struct api *a, struct http_req *req, int admin, int64_t account_id,
                  const char *channel) {
  const char *m = http_req_method(req);
  if (a->cascade == NULL) {
    api_error(req, 503, "shutting_down", NULL, "kaskad is stopping; retry later");
    return;
  }
  if (channel && chan_driver(channel) == NULL) {
    api_error(req, 404, "unknown_channel", NULL,
              "no channel %s (vk, viber, telegram, telegram_gateway, whatsapp, email, sms)", channel);
    return;
  }
  if (strcmp(m, "GET") == 0) {
    if (channel) {
      api_json(req, 200, channel_json(a, channel, account_id, admin), NULL);
      return;
    }
    int n;
    const struct chan_driver *const *all = chan_drivers(&n);
    json_t *arr = json_array();
    for (int i = 0; i < n; i++)
      json_array_append_new(arr, channel_json(a, all[i]->name, account_id, admin));
    api_json(req, 200, json_pack("{s:o}", "channels", arr), NULL);
    return;
  }
  if (!channel) {
    api_not_allowed(req, "GET");
    return;
  }
  int64_t owner = admin ? 0 : account_id;
  if (strcmp(m, "DELETE") == 0) {
    if (chan_settings_get(cascade_engine(a->cascade), owner, channel, NULL) == NULL ||
        (owner && chan_settings_get(cascade_engine(a->cascade), owner, channel, NULL) ==
                      chan_settings_get(cascade_engine(a->cascade), 0, channel, NULL))) {
      api_error(req, 404, "not_found", NULL, "no %s settings of your own", channel);
      return;
    }
    struct chan_put *p = kk_xcalloc(1, sizeof *p);
    *p = (struct chan_put){.a = a, .req = req, .account_id = owner, .admin = admin, .deleting = 1};
    snprintf(p->channel, sizeof p->channel, "%s", channel);
    store_channel_put(a->store, owner, channel, NULL, on_channel_saved, p);
    return;
  }
  if (strcmp(m, "PUT") != 0) {
    api_not_allowed(req, "GET, PUT, DELETE");
    return;
  }
  json_t *doc = api_body_json(req);
  if (!doc) return;
  /* A masked secret sent back unchanged keeps the stored one. */
  int64_t scope = 0;
  const struct chan_cfg *old = chan_settings_get(cascade_engine(a->cascade), owner, channel, &scope);
  if (old && scope == owner) {
    json_t *prev = chan_settings_json(old);
    for (size_t i = 0; i < sizeof secret_fields / sizeof secret_fields[0]; i++) {
      const char *v = json_string_value(json_object_get(doc, secret_fields[i]));
      json_t *pv = json_object_get(prev, secret_fields[i]);
      if (v && strncmp(v, "****", 4) == 0 && pv) json_object_set(doc, secret_fields[i], pv);
    }
    json_decref(prev);
  }
  /* Freed in on_registered() or on_channel_saved(). */
  struct chan_put *p = kk_xcalloc(1, sizeof *p);
  *p = (struct chan_put){.a = a, .req = req, .account_id = owner, .admin = admin};
  snprintf(p->channel, sizeof p->channel, "%s", channel);
  json_t *snd = json_object_get(doc, "sender");
  if (strcmp(channel, "sms") == 0 && snd && !json_is_null(snd) &&
      (!json_is_string(snd) || !api_valid_sender(json_string_value(snd)))) {
    /* The default sender goes out as the per-message one would. */
    free(p);
    json_decref(doc);
    api_error(req, 422, "invalid_sender", "sender", "sender: %s", API_SENDER_RULE);
    return;
  }
  char err[200];
  const char *field = NULL;
  if (chan_settings_parse(channel, doc, &p->cfg, err, sizeof err, &field) != 0) {
    free(p);
    api_error(req, 422, "invalid_settings", field, "%s", err);   /* field lives in doc */
    json_decref(doc);
    return;
  }
  struct api_err e;
  if (settings_refused(channel, &p->cfg, &e) != 0) {
    free(p);
    api_error_from(req, &e);
    json_decref(doc);
    return;
  }
  json_decref(doc);
  json_t *j = chan_settings_json(&p->cfg);
  char *text = json_dumps(j, JSON_COMPACT);
  json_decref(j);
  store_channel_put(a->store, owner, channel, text, on_channel_saved, p);
  free(text);
}

/* ---- prices -------------------------------------------------------------------- */

struct price_row {
  json_t *defaults, *accounts;
  struct store *store;
  int64_t only;             /* >0: rows of this account and the defaults only */
};

static void collect_price(void *arg, int64_t account_id, const char *channel, int64_t price) {
  struct price_row *r = arg;
  if (account_id == 0) {
    json_object_set_new(r->defaults, channel, api_money(price));
    return;
  }
  if (r->only && account_id != r->only) return;
  struct store_account acc;
  if (store_account_get_by_id(r->store, account_id, &acc) != 0) return;
  json_t *o = json_object_get(r->accounts, acc.public_id);
  if (!o) {
    o = json_object();
    json_object_set_new(r->accounts, acc.public_id, o);
  }
  json_object_set_new(o, channel, api_money(price));
}

struct price_put {
  struct api *a;
  struct http_req *req;
  int left, failed;
  int admin;
  int64_t account_id;
};

static void answer_prices(struct api *a, struct http_req *req, int admin, int64_t account_id) {
  struct price_row r = {json_object(), json_object(), a->store, admin ? 0 : account_id};
  store_prices_each(a->store, collect_price, &r);
  if (admin) {
    api_json(req, 200, json_pack("{s:o, s:o, s:s}", "prices", r.defaults, "accounts", r.accounts,
                                 "unit", "per message; sms per segment"), NULL);
    return;
  }
  /* An account sees what applies to it: the defaults, its own over them. */
  const char *k;
  json_t *v, *own = NULL;
  json_object_foreach(r.accounts, k, v) own = v;
  if (own) json_object_update(r.defaults, own);
  json_decref(r.accounts);
  api_json(req, 200, json_pack("{s:o, s:s}", "prices", r.defaults, "unit",
                               "per message; sms per segment"), NULL);
}

static void on_price_saved(void *arg, int rc) {
  struct price_put *p = arg;
  if (rc) p->failed = 1;
  if (--p->left > 0) return;
  if (p->failed)
    api_error(p->req, 503, "store_unavailable", NULL, "the prices could not be stored");
  else
    answer_prices(p->a, p->req, 1, 0);
  free(p);
}

void api_prices(struct api *a, struct http_req *req, int admin, int64_t account_id) {
  const char *m = http_req_method(req);
  if (strcmp(m, "GET") == 0) {
    answer_prices(a, req, admin, account_id);
    return;
  }
  if (strcmp(m, "PUT") != 0) {
    api_not_allowed(req, "GET, PUT");
    return;
  }
  if (!admin) {
    api_error(req, 403, "forbidden", NULL, "prices are set with the operator key");
    return;
  }
  json_t *doc = api_body_json(req);
  if (!doc) return;
  int64_t owner = 0;
  json_t *acc = json_object_get(doc, "account");
  if (acc && !json_is_null(acc)) {
    struct store_account ac;
    if (!json_is_string(acc) || store_account_get(a->store, json_string_value(acc), &ac) != 0) {
      json_decref(doc);
      api_error(req, 422, "unknown_account", "account", "account: no such account");
      return;
    }
    owner = ac.id;
  }
  json_t *prices = json_object_get(doc, "prices");
  if (!json_is_object(prices) || json_object_size(prices) == 0) {
    json_decref(doc);
    api_error(req, 422, "invalid_prices", "prices",
              "prices: an object like {\"sms\": 2.5, \"vk\": 0.1} (null removes one)");
    return;
  }
  const char *ch;
  json_t *v;
  json_object_foreach(prices, ch, v) {
    char f[48];
    snprintf(f, sizeof f, "prices.%.30s", ch);
    if (chan_driver(ch) == NULL) {
      json_decref(doc);
      api_error(req, 422, "unknown_channel", f, "%s: not a channel", f);
      return;
    }
    if (!json_is_null(v) && (!json_is_number(v) || json_number_value(v) < 0 ||
                             json_number_value(v) > MAX_PRICE)) {
      json_decref(doc);
      api_error(req, 422, "invalid_price", f, "%s: a number from 0 to 1000000", f);
      return;
    }
  }
  /* Freed in on_price_saved() after the last one. */
  struct price_put *p = kk_xcalloc(1, sizeof *p);
  *p = (struct price_put){.a = a, .req = req, .admin = admin, .account_id = account_id};
  p->left = (int)json_object_size(prices);
  json_object_foreach(prices, ch, v) {
    int64_t units = json_is_null(v) ? -1 : llround(json_number_value(v) * MONEY_SCALE);
    store_price_put(a->store, owner, ch, units, on_price_saved, p);
  }
  json_decref(doc);
}

/* ---- named cascades ------------------------------------------------------------ */

struct casc_list {
  json_t *arr;
};

static void collect_cascade(void *arg, const char *name, const char *steps) {
  struct casc_list *l = arg;
  json_array_append_new(l->arr, json_pack("{s:s, s:o}", "name", name, "steps", steps_json(steps)));
}

struct casc_put {
  struct api *a;
  struct http_req *req;
  char name[64];
  char steps[1024];
  int deleting;
};

static void on_cascade_saved(void *arg, int rc) {
  struct casc_put *p = arg;
  if (rc)
    api_error(p->req, 503, "store_unavailable", NULL, "the cascade could not be stored");
  else if (p->deleting)
    api_empty(p->req, 204);
  else
    api_json(p->req, 200, json_pack("{s:s, s:o}", "name", p->name, "steps", steps_json(p->steps)),
             NULL);
  free(p);
}

static int valid_name(const char *s) {
  size_t n = strlen(s);
  if (n == 0 || n > 63) return 0;
  for (const char *p = s; *p; p++)
    if (!isalnum((unsigned char)*p) && *p != '_' && *p != '-' && *p != '.') return 0;
  return 1;
}

void api_cascades(struct api *a, struct http_req *req, int64_t account_id, const char *name) {
  const char *m = http_req_method(req);
  if (strcmp(m, "GET") == 0) {
    if (!name) {
      struct casc_list l = {json_array()};
      store_cascades_each(a->store, account_id, collect_cascade, &l);
      api_json(req, 200, json_pack("{s:o}", "cascades", l.arr), NULL);
      return;
    }
    char *steps = NULL;
    if (store_cascade_get(a->store, account_id, name, &steps) != 0) {
      api_error(req, 404, "not_found", NULL, "no cascade %s", name);
      return;
    }
    api_json(req, 200, json_pack("{s:s, s:o}", "name", name, "steps", steps_json(steps)), NULL);
    free(steps);
    return;
  }
  if (!name) {
    api_not_allowed(req, "GET");
    return;
  }
  if (!valid_name(name)) {
    api_error(req, 422, "invalid_name", "name", "name: 1 to 63 of A-Z a-z 0-9 _ - .");
    return;
  }
  /* Freed in on_cascade_saved(). */
  struct casc_put *p = kk_xcalloc(1, sizeof *p);
  p->a = a;
  p->req = req;
  snprintf(p->name, sizeof p->name, "%s", name);
  if (strcmp(m, "DELETE") == 0) {
    char *steps = NULL;
    if (store_cascade_get(a->store, account_id, name, &steps) != 0) {
      free(p);
      api_error(req, 404, "not_found", NULL, "no cascade %s", name);
      return;
    }
    free(steps);
    p->deleting = 1;
    store_cascade_put(a->store, account_id, name, NULL, on_cascade_saved, p);
    return;
  }
  if (strcmp(m, "PUT") != 0) {
    free(p);
    api_not_allowed(req, "GET, PUT, DELETE");
    return;
  }
  json_t *doc = api_body_json(req);
  if (!doc) {
    free(p);
    return;
  }
  struct api_err e;
  memset(&e, 0, sizeof e);
  json_t *steps = json_object_get(doc, "steps");
  if (api_cascade_parse(steps, p->steps, sizeof p->steps, &e) != 0) {
    json_decref(doc);
    free(p);
    if (e.field && strncmp(e.field, "cascade", 7) == 0) {
      char f[48];
      snprintf(f, sizeof f, "steps%.40s", e.field + 7);
      memcpy(e.fieldbuf, f, sizeof f);
      e.field = e.fieldbuf;
    }
    api_error_from(req, &e);
    return;
  }
  json_decref(doc);
  store_cascade_put(a->store, account_id, name, p->steps, on_cascade_saved, p);
}

/* ---- provider callbacks ---------------------------------------------------------- */

static const char *hook_header(void *ctx, const char *name) { return http_req_header(ctx, name); }
static const char *hook_query(void *ctx, const char *name) { return http_req_query(ctx, name); }

static void on_hook_reply(void *ud, int status, const char *body) {
  struct http_req *req = ud;
  struct api *a = http_req_data(req);
  if (a && status >= 100 && status < 600) a->http_by_class[status / 100]++;
  http_respond(req, status, "text/plain", body, strlen(body), NULL);
}

/*
 * A scope's webhook takes hook_rate requests a second (twice that in a
 * burst), so that one scope's flood cannot fill the store's writer; beyond
 * that it answers 429 with Retry-After, which providers retry. 1, or 0 when
 * answered.
 */
static int hook_allowed(struct api *a, struct http_req *req, const char *channel,
                        int64_t scope) {
  if (a->hook_limit == NULL) {
    double rate = a->hook_rate > 0 ? (double)a->hook_rate : 200.0;
    a->hook_limit = kk_rate_new(rate, 2 * rate, HOOK_SCOPES_MAX);
  }
  int64_t wait = kk_rate_take(a->hook_limit, scope, (int64_t)uv_now(a->loop));
  if (wait == 0) return 1;
  a->hooks_limited++;
  char header[64];
  snprintf(header, sizeof header, "Retry-After: %lld\r\n", (long long)((wait + 999) / 1000));
  if ((a->hooks_limited & (a->hooks_limited - 1)) == 0)
    kk_warnx(LOGCTX, "%s webhook of scope %lld over its rate: 429 (%llu so far)", channel,
             (long long)scope, (unsigned long long)a->hooks_limited);
  struct api_err e = {.status = 429, .code = "rate_limited"};
  snprintf(e.message, sizeof e.message, "too many webhook requests for this scope; retry later");
  json_t *err = json_pack("{s:s, s:s}", "code", e.code, "message", e.message);
  api_json(req, 429, json_pack("{s:o}", "error", err), header);
  return 0;
}

void api_hooks(struct api *a, struct http_req *req, const char *channel, const char *scope_id) {
  const char *m = http_req_method(req);
  if (strcmp(m, "POST") != 0 && strcmp(m, "GET") != 0) {
    api_not_allowed(req, "GET, POST");
    return;
  }
  int64_t scope = 0;
  if (strcmp(scope_id, "default") != 0) {
    struct store_account acc;
    if (store_account_get(a->store, scope_id, &acc) != 0) {
      kk_warnx(LOGCTX, "%s callback for unknown account %.40s refused", channel, scope_id);
      api_error(req, 404, "not_found", NULL, "no such webhook");
      return;
    }
    scope = acc.id;
  }
  if (!hook_allowed(a, req, channel, scope)) return;
  size_t len = 0;
  const char *body = http_req_body(req, &len);
  struct chan_hook_in in = {.method = m, .body = body ? body : "", .len = body ? len : 0,
                            .header = hook_header, .query = hook_query, .ctx = req,
                            .now_ms = store_now_ms()};
  chan_hook_apply(cascade_engine(a->cascade), channel, scope, &in, on_hook_reply, req);
}
