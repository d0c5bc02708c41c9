/*
 * api_channels.c - channel settings and prices in the HTTP API:
 *
 *   PUT/GET/DELETE /v1/channels[/{channel}]   (account key: its own; operator
 *                                              key: the defaults for all)
 *   PUT/GET /v1/prices                        (operator sets; accounts read)
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
#define MAX_PRICE 1000000.0

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
    if (drv->reports & api_wait_bit(api_waits[k])) json_array_append_new(reports, json_string(api_waits[k]));
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
  if (rc == KK_EAUTH) return api_refuse(e, 422, "url_not_allowed", field, "%s: %s", field, why);
  if (rc) return api_refuse(e, 422, "invalid_settings", field, "%s: %s", field, why);
  return 0;
}

/* The checks of settings beyond their shape (chan_settings_parse): where the
   URLs lead, the one option smtp_url may carry, and the driver's character
   sets of what goes into a URL or header. 0, or KK_EINVAL with e set. */
static int settings_refused(const char *channel, const struct chan_cfg *cfg, struct api_err *e) {
  if (cfg->base_url[0] && strpbrk(cfg->base_url, "?#\\"))
    return api_refuse(e, 422, "invalid_settings", "base_url",
                  "base_url: the provider's scheme and host only, e.g. https://api.vk.com");
  if (cfg->base_url[0] && url_refused("base_url", cfg->base_url, "http,https", e)) return KK_EINVAL;
  if (cfg->smtp_url[0]) {
    if (url_refused("smtp_url", cfg->smtp_url, "smtp,smtps", e)) return KK_EINVAL;
    const char *q = strpbrk(cfg->smtp_url, "?#");
    if (q && (strcmp(q, HTTP_CLIENT_SMTP_PLAIN) != 0 || strncmp(cfg->smtp_url, "smtp://", 7) != 0))
      return api_refuse(e, 422, "invalid_settings", "smtp_url",
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
        return api_refuse(e, 422, codes[i], codes[i] + 8, "%s:%s", codes[i] + 8, why + n + 1);
    }
    return api_refuse(e, 422, "invalid_settings", NULL, "%s", why);
  }
  return 0;
}

/* Before the method: the engine is running and the channel is one of its. */
int api_channel_check(struct api_call *c) {
  const char *channel = api_param(c, "channel");
  if (c->a->cascade == NULL) {
    api_error(c->req, 503, "shutting_down", NULL, "kaskad is stopping; retry later");
    return KK_ECLOSED;
  }
  if (channel && chan_driver(channel) == NULL) {
    api_error(c->req, 404, "unknown_channel", NULL,
              "no channel %s (vk, viber, telegram, telegram_gateway, whatsapp, email, sms)",
              channel);
    return KK_ENOENT;
  }
  return 0;
}

void api_channels_list(struct api_call *c) {
  int n;
  const struct chan_driver *const *all = chan_drivers(&n);
  json_t *arr = json_array();
  for (int i = 0; i < n; i++)
    json_array_append_new(arr, channel_json(c->a, all[i]->name, c->account_id, c->admin));
  api_json(c->req, 200, json_pack("{s:o}", "channels", arr), NULL);
}

void api_channel_get(struct api_call *c) {
  api_json(c->req, 200, channel_json(c->a, api_param(c, "channel"), c->account_id, c->admin),
           NULL);
}

void api_channel_delete(struct api_call *c) {
  struct api *a = c->a;
  const char *channel = api_param(c, "channel");
  int64_t owner = c->admin ? 0 : c->account_id;
  struct chan_engine *eng = cascade_engine(a->cascade);
  const struct chan_cfg *own = chan_settings_get(eng, owner, channel, NULL);
  if (own == NULL || (owner && own == chan_settings_get(eng, 0, channel, NULL))) {
    api_error(c->req, 404, "not_found", NULL, "no %s settings of your own", channel);
    return;
  }
  struct chan_put *p = kk_xcalloc(1, sizeof *p);
  *p = (struct chan_put){.a = a, .req = c->req, .account_id = owner, .admin = c->admin,
                         .deleting = 1};
  snprintf(p->channel, sizeof p->channel, "%s", channel);
  store_channel_put(a->store, owner, channel, NULL, on_channel_saved, p);
}

/* A masked secret sent back unchanged keeps the stored one. */
static void keep_secrets(struct api_call *c, json_t *doc, const char *channel, int64_t owner) {
  int64_t scope = 0;
  struct chan_engine *eng = cascade_engine(c->a->cascade);
  const struct chan_cfg *old = chan_settings_get(eng, owner, channel, &scope);
  if (!old || scope != owner) return;
  json_t *prev = api_call_own(c, chan_settings_json(old));
  for (size_t i = 0; i < sizeof secret_fields / sizeof secret_fields[0]; i++) {
    const char *v = json_string_value(json_object_get(doc, secret_fields[i]));
    json_t *pv = json_object_get(prev, secret_fields[i]);
    if (v && strncmp(v, "****", 4) == 0 && pv) json_object_set(doc, secret_fields[i], pv);
  }
}

/* Parses the settings of a PUT into cfg; nonzero when answered 422. */
static int settings_read(struct api_call *c, json_t *doc, const char *channel,
                         struct chan_cfg *cfg) {
  json_t *snd = json_object_get(doc, "sender");
  if (strcmp(channel, "sms") == 0 && snd && !json_is_null(snd) &&
      (!json_is_string(snd) || !api_valid_sender(json_string_value(snd)))) {
    /* The default sender goes out as the per-message one would. */
    api_error(c->req, 422, "invalid_sender", "sender", "sender: %s", API_SENDER_RULE);
    return KK_EINVAL;
  }
  char err[200];
  const char *field = NULL;
  if (chan_settings_parse(channel, doc, cfg, err, sizeof err, &field) != 0) {
    api_error(c->req, 422, "invalid_settings", field, "%s", err);   /* field lives in doc */
    return KK_EINVAL;
  }
  struct api_err e;
  if (settings_refused(channel, cfg, &e) != 0) {
    api_error_from(c->req, &e);
    return KK_EINVAL;
  }
  return 0;
}

void api_channel_put(struct api_call *c) {
  struct api *a = c->a;
  const char *channel = api_param(c, "channel");
  int64_t owner = c->admin ? 0 : c->account_id;
  json_t *doc = api_call_body(c);
  if (!doc) return;
  keep_secrets(c, doc, channel, owner);
  struct chan_cfg *cfg = kk_arena_zalloc(&c->arena, sizeof *cfg);
  if (settings_read(c, doc, channel, cfg) != 0) return;
  /* Freed in on_registered() or on_channel_saved(). */
  struct chan_put *p = kk_xcalloc(1, sizeof *p);
  *p = (struct chan_put){.a = a, .req = c->req, .account_id = owner, .admin = c->admin};
  snprintf(p->channel, sizeof p->channel, "%s", channel);
  p->cfg = *cfg;
  json_t *j = api_call_own(c, chan_settings_json(&p->cfg));
  char *text = json_dumps(j, JSON_COMPACT);
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

void api_prices_get(struct api_call *c) { answer_prices(c->a, c->req, c->admin, c->account_id); }

/* The account a PUT /v1/prices names (0: the defaults); nonzero when answered. */
static int price_owner(struct api_call *c, json_t *doc, int64_t *owner) {
  json_t *acc = json_object_get(doc, "account");
  *owner = 0;
  if (!acc || json_is_null(acc)) return 0;
  struct store_account *ac = kk_arena_zalloc(&c->arena, sizeof *ac);
  if (!json_is_string(acc) || store_account_get(c->a->store, json_string_value(acc), ac) != 0) {
    api_error(c->req, 422, "unknown_account", "account", "account: no such account");
    return KK_ENOENT;
  }
  *owner = ac->id;
  return 0;
}

/* Checks the "prices" object; nonzero when answered 422. */
static int prices_refused(struct api_call *c, json_t *prices) {
  if (!json_is_object(prices) || json_object_size(prices) == 0) {
    api_error(c->req, 422, "invalid_prices", "prices",
              "prices: an object like {\"sms\": 2.5, \"vk\": 0.1} (null removes one)");
    return KK_EINVAL;
  }
  const char *ch;
  json_t *v;
  json_object_foreach(prices, ch, v) {
    char f[48];
    snprintf(f, sizeof f, "prices.%.30s", ch);
    if (chan_driver(ch) == NULL) {
      api_error(c->req, 422, "unknown_channel", f, "%s: not a channel", f);
      return KK_EINVAL;
    }
    if (!json_is_null(v) && (!json_is_number(v) || json_number_value(v) < 0 ||
                             json_number_value(v) > MAX_PRICE)) {
      api_error(c->req, 422, "invalid_price", f, "%s: a number from 0 to 1000000", f);
      return KK_EINVAL;
    }
  }
  return 0;
}

void api_prices_put(struct api_call *c) {
  struct api *a = c->a;
  if (!c->admin) {
    api_error(c->req, 403, "forbidden", NULL, "prices are set with the operator key");
    return;
  }
  json_t *doc = api_call_body(c);
  int64_t owner;
  if (!doc || price_owner(c, doc, &owner) != 0) return;
  json_t *prices = json_object_get(doc, "prices");
  if (prices_refused(c, prices) != 0) return;
  /* Freed in on_price_saved() after the last one. */
  struct price_put *p = kk_xcalloc(1, sizeof *p);
  *p = (struct price_put){.a = a, .req = c->req, .admin = c->admin, .account_id = c->account_id};
  p->left = (int)json_object_size(prices);
  const char *ch;
  json_t *v;
  json_object_foreach(prices, ch, v) {
    int64_t units = json_is_null(v) ? -1 : llround(json_number_value(v) * API_MONEY_SCALE);
    store_price_put(a->store, owner, ch, units, on_price_saved, p);
  }
}
