/*
 * api_steps.c - what a message may say about its channels, checked without
 * I/O for api_msg_parse and the named cascades: cascade steps (channel,
 * wait level, timeout) and the per-channel parts (addresses, e-mail,
 * image, button, WhatsApp template), and money as the API shows it.
 */
#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api_int.h"
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

int api_refuse(struct api_err *e, int status, const char *code, const char *field,
               const char *fmt, ...) {
  e->status = status;
  e->code = code;
  if (field && field != e->fieldbuf) snprintf(e->fieldbuf, sizeof e->fieldbuf, "%s", field);
  e->field = field ? e->fieldbuf : NULL;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(e->message, sizeof e->message, fmt, ap);
  va_end(ap);
  return KK_EINVAL;
}

/* ---- cascade steps --------------------------------------------------------- */

const char *const api_waits[3] = {"sent", "delivered", "read"};

unsigned api_wait_bit(const char *w) {
  return strcmp(w, "read") == 0 ? CHAN_READ : strcmp(w, "delivered") == 0 ? CHAN_DELIVERED
                                                                            : CHAN_SENT;
}

static const char *default_wait(unsigned reports) {
  return reports & CHAN_DELIVERED ? "delivered" : reports & CHAN_READ ? "read" : "sent";
}

int api_cascade_parse(json_t *v, char *out, size_t cap, struct api_err *e) {
  char f[48];
  if (!json_is_array(v) || json_array_size(v) == 0 || json_array_size(v) > STORE_MAX_STEPS)
    return api_refuse(e, 422, "invalid_cascade", "cascade",
                  "cascade: a list of 1 to %d steps {\"channel\", \"wait\", \"timeout\"} or the "
                  "name of a saved cascade", STORE_MAX_STEPS);
  struct store_step steps[STORE_MAX_STEPS];
  size_t n = json_array_size(v), i;
  json_t *s;
  json_array_foreach(v, i, s) {
    if (!json_is_object(s)) {
      snprintf(f, sizeof f, "cascade[%zu]", i);
      return api_refuse(e, 422, "invalid_cascade", f, "%s: a step must be an object", f);
    }
    const char *ch = json_string_value(json_object_get(s, "channel"));
    const struct chan_driver *drv = ch ? chan_driver(ch) : NULL;
    if (drv == NULL) {
      snprintf(f, sizeof f, "cascade[%zu].channel", i);
      return api_refuse(e, 422, "unknown_channel", f,
                    "%s: one of vk, viber, telegram, telegram_gateway, whatsapp, email, sms", f);
    }
    json_t *wv = json_object_get(s, "wait");
    const char *wait = default_wait(drv->reports);
    if (wv && !json_is_null(wv)) {
      wait = json_string_value(wv);
      int ok = 0;
      for (int k = 0; k < 3; k++) ok |= wait && strcmp(wait, api_waits[k]) == 0;
      if (!ok) {
        snprintf(f, sizeof f, "cascade[%zu].wait", i);
        return api_refuse(e, 422, "invalid_wait", f, "%s: sent, delivered or read", f);
      }
      if (!(drv->reports & api_wait_bit(wait))) {
          char can[64];
        snprintf(f, sizeof f, "cascade[%zu].wait", i);
        return api_refuse(e, 422, "wait_unsupported", f,
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
        return api_refuse(e, 422, "invalid_timeout", f,
                      "%s: a duration like \"90s\", \"10m\", \"2h\" (1s to 7d)", f);
      }
    } else if (i + 1 < n) {
      snprintf(f, sizeof f, "cascade[%zu].timeout", i);
      return api_refuse(e, 422, "timeout_required", f,
                    "%s: every step but the last needs a timeout, after which the next starts", f);
    }
    memset(&steps[i], 0, sizeof steps[i]);
    snprintf(steps[i].channel, sizeof steps[i].channel, "%s", ch);
    snprintf(steps[i].wait, sizeof steps[i].wait, "%s", wait);
    steps[i].timeout_ms = ms;
  }
  if (store_steps_format(steps, (int)n, out, cap) != 0)
    return api_refuse(e, 422, "invalid_cascade", "cascade", "cascade: too long");
  return 0;
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

int api_extra_parse(json_t *o, json_t **out, int *has_address, struct api_err *e) {
  json_t *x = json_object();
  char buf[32];
  *out = NULL;
  *has_address = 0;
  const char *s;
  json_t *v;
#define FAIL(...) do { json_decref(x); return api_refuse(e, 422, __VA_ARGS__); } while (0)
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
  /* A one-time code or a security alert: its cascade falls through even in
     the recipient's quiet hours. */
  if ((v = json_object_get(o, "urgent")) && !json_is_null(v)) {
    if (!json_is_boolean(v)) FAIL("invalid_urgent", "urgent", "urgent: true or false");
    if (json_is_true(v)) json_object_set_new(x, "urgent", json_true());
  }
  if ((v = json_object_get(o, "subject")) && !json_is_null(v)) {
    s = json_string_value(v);
    if (!s || !printable(s, 200)) FAIL("invalid_subject", "subject", "subject: 1 to 200 characters");
    json_object_set_new(x, "subject", json_string(s));
  }
#undef FAIL
  if (json_object_size(x) > 0) *out = x;
  else json_decref(x);
  return 0;
}

/* ---- money ------------------------------------------------------------------- */

json_t *api_money(int64_t units) { return json_real((double)units / API_MONEY_SCALE); }
