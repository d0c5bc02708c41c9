/*
 * api_admin.c - the operator's endpoints (accounts, keys, routes) and an
 * account's view of itself.
 *
 *   POST  /v1/accounts               {"name"}            -> 201 account
 *   GET   /v1/accounts/{id}                              -> account
 *   PATCH /v1/accounts/{id}          {"name","sms_route","suspended","senders",
 *                                     "countries"} -> account
 *   POST  /v1/accounts/{id}/keys                          -> 201 {"key"} (shown once)
 *   GET   /v1/accounts/{id}/keys                          -> the keys' prefixes
 *   PUT   /v1/routes/{name}          route settings       -> route with live state
 *   GET   /v1/routes[/{name}], DELETE /v1/routes/{name}
 *   GET   /v1/account                (account key)        -> own account
 */
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "core/kk_err.h"
#include "core/kk_log.h"
#include "core/kk_mem.h"
#include "dispatch/dispatch.h"
#include "http/http_server.h"
#include "store/store.h"

#define LOGCTX "api"

struct admin_ctx {
  struct api *a;
  struct http_req *req;
  struct store_account acc;
  char key[80];
  char prefix[16];
  uint8_t hash[32];
  char route_name[64];
  struct dispatch_route_cfg route;
  int deleting;
};

static json_t *account_json(const struct store_account *acc, int with_secret) {
  char created[32];
  api_time(acc->created_at, created);
  json_t *o = json_pack("{s:s, s:s, s:o, s:s}", "id", acc->public_id, "name", acc->name,
                        "sms_route", acc->sms_route[0] ? json_string(acc->sms_route) : json_null(),
                        "created_at", created);
  if (with_secret) json_object_set_new(o, "callback_secret", json_string(acc->callback_secret));
  json_object_set_new(o, "suspended", json_boolean(acc->suspended));
  json_t *senders = json_loads(acc->senders[0] ? acc->senders : "[]", 0, NULL);
  json_t *countries = json_loads(acc->countries[0] ? acc->countries : "[]", 0, NULL);
  json_object_set_new(o, "senders", senders ? senders : json_array());
  json_object_set_new(o, "countries", countries ? countries : json_array());
  return o;
}

static int valid_name(const char *s, size_t max) {
  size_t n = strlen(s);
  if (n == 0 || n > max) return 0;
  for (const char *p = s; *p; p++)
    if ((unsigned char)*p < 0x20) return 0;
  return 1;
}

/* Takes "senders" and "countries" from doc into acc when present; answers
   422 and returns -1 when one is not valid. */
static int policy_patch(json_t *doc, struct store_account *acc, struct http_req *req) {
  struct api_err e = {0};
  json_t *v = json_object_get(doc, "senders");
  if (v && api_senders_parse(v, acc->senders, sizeof acc->senders, &e) != 0) {
    api_error_from(req, &e);
    return -1;
  }
  v = json_object_get(doc, "countries");
  if (v && api_countries_parse(v, acc->countries, sizeof acc->countries, &e) != 0) {
    api_error_from(req, &e);
    return -1;
  }
  return 0;
}

/* 1 when an SMS route of that name exists now (from the file or the API). */
static int route_exists(struct api *a, const char *name) {
  const char *r = dispatch_route_pick(a->dispatch, name);
  return r && strcmp(r, name) == 0;
}

static void on_account_saved(void *arg, int rc) {
  struct admin_ctx *c = arg;
  if (rc) {
    api_error(c->req, 503, "store_unavailable", NULL, "account not saved: %s", kk_strerror(rc));
  } else {
    /* Suspension took effect with the commit (the store's note). */
    api_json(c->req, strcmp(http_req_method(c->req), "POST") == 0 ? 201 : 200,
             account_json(&c->acc, 1), NULL);
  }
  free(c);
}

static void on_key_saved(void *arg, int rc) {
  struct admin_ctx *c = arg;
  if (rc) {
    api_error(c->req, 503, "store_unavailable", NULL, "key not saved: %s", kk_strerror(rc));
  } else {
    kk_info(LOGCTX, "key %.12s... created for account %s", c->key, c->acc.public_id);
    api_json(c->req, 201,
             json_pack("{s:s, s:s, s:s}", "key", c->key, "prefix", c->prefix, "account_id",
                       c->acc.public_id),
             NULL);
  }
  OPENSSL_cleanse(c->key, sizeof c->key);
  free(c);
}

void api_accounts(struct api *a, struct http_req *req, const char *id, const char *sub) {
  const char *m = http_req_method(req);
  if (id == NULL) {
    if (strcmp(m, "POST") != 0) {
      api_not_allowed(req, "POST");
      return;
    }
    json_t *doc = api_body_json(req);
    if (!doc) return;
    json_t *name = json_object_get(doc, "name");
    if (!json_is_string(name) || !valid_name(json_string_value(name), 200)) {
      json_decref(doc);
      api_error(req, 422, "invalid_name", "name", "name: a string of 1 to 200 characters");
      return;
    }
    struct admin_ctx *c = kk_xcalloc(1, sizeof *c);
    c->a = a;
    c->req = req;
    snprintf(c->acc.name, sizeof c->acc.name, "%s", json_string_value(name));
    json_t *route = json_object_get(doc, "sms_route");
    if (json_is_string(route))
      snprintf(c->acc.sms_route, sizeof c->acc.sms_route, "%s", json_string_value(route));
    if (policy_patch(doc, &c->acc, req) != 0) {
      json_decref(doc);
      free(c);
      return;
    }
    json_decref(doc);
    store_account_create(a->store, &c->acc, on_account_saved, c);
    return;
  }
  struct admin_ctx *c = kk_xcalloc(1, sizeof *c);
  c->a = a;
  c->req = req;
  if (store_account_get(a->store, id, &c->acc) != 0) {
    free(c);
    api_error(req, 404, "not_found", NULL, "no account %s", id);
    return;
  }
  if (sub && strcmp(sub, "keys") == 0) {
    if (strcmp(m, "GET") == 0) {
      api_keys_list(a, req, &c->acc);
      free(c);
      return;
    }
    if (strcmp(m, "POST") != 0) {
      free(c);
      api_not_allowed(req, "GET, POST");
      return;
    }
    unsigned char raw[24];
    if (RAND_bytes(raw, sizeof raw) != 1) abort();
    char *p = c->key + sprintf(c->key, "kk_");
    for (size_t i = 0; i < sizeof raw; i++) p += sprintf(p, "%02x", raw[i]);
    OPENSSL_cleanse(raw, sizeof raw);
    /* Keys carry 192 random bits, so a plain SHA-256 is enough to store them. */
    SHA256((const unsigned char *)c->key, strlen(c->key), c->hash);
    snprintf(c->prefix, sizeof c->prefix, "%.11s", c->key);
    store_key_add(a->store, c->acc.id, c->hash, c->prefix, on_key_saved, c);
    return;
  }
  if (sub) {
    free(c);
    api_error(req, 404, "not_found", NULL, "no such endpoint: %s", http_req_path(req));
    return;
  }
  if (strcmp(m, "GET") == 0) {
    api_json(req, 200, account_json(&c->acc, 1), NULL);
    free(c);
    return;
  }
  if (strcmp(m, "PATCH") != 0) {
    free(c);
    api_not_allowed(req, "GET, PATCH");
    return;
  }
  json_t *doc = api_body_json(req);
  if (!doc) {
    free(c);
    return;
  }
  json_t *name = json_object_get(doc, "name");
  json_t *route = json_object_get(doc, "sms_route");
  if (name && (!json_is_string(name) || !valid_name(json_string_value(name), 200))) {
    json_decref(doc);
    free(c);
    api_error(req, 422, "invalid_name", "name", "name: a string of 1 to 200 characters");
    return;
  }
  if (route && !json_is_null(route) &&
      (!json_is_string(route) || strlen(json_string_value(route)) >= sizeof c->acc.sms_route)) {
    json_decref(doc);
    free(c);
    api_error(req, 422, "invalid_route", "sms_route", "sms_route: a route name or null");
    return;
  }
  if (json_is_string(route) && !route_exists(a, json_string_value(route))) {
    api_error(req, 422, "unknown_route", "sms_route",
              "sms_route: no route \"%s\" (GET /v1/routes lists them)", json_string_value(route));
    json_decref(doc);
    free(c);
    return;
  }
  json_t *susp = json_object_get(doc, "suspended");
  if (susp && !json_is_boolean(susp)) {
    json_decref(doc);
    free(c);
    api_error(req, 422, "invalid_suspended", "suspended", "suspended: true or false");
    return;
  }
  if (policy_patch(doc, &c->acc, req) != 0) {
    json_decref(doc);
    free(c);
    return;
  }
  if (susp) c->acc.suspended = json_is_true(susp);
  if (name) snprintf(c->acc.name, sizeof c->acc.name, "%s", json_string_value(name));
  if (route)
    snprintf(c->acc.sms_route, sizeof c->acc.sms_route, "%s",
             json_is_string(route) ? json_string_value(route) : "");
  json_decref(doc);
  store_account_update(a->store, &c->acc, on_account_saved, c);
}

void api_account_self(struct api *a, struct http_req *req, int64_t account_id) {
  struct store_account acc;
  if (store_account_get_by_id(a->store, account_id, &acc) != 0) {
    api_error(req, 404, "not_found", NULL, "account not found");
    return;
  }
  api_json(req, 200, account_json(&acc, 1), NULL);
}

/* ---- routes ------------------------------------------------------------------ */

int api_route_cfg_parse(json_t *o, const char *name, struct dispatch_route_cfg *cfg, char *err,
                        size_t errcap) {
  return dispatch_route_cfg_parse(o, name, cfg, err, errcap);
}

static json_t *route_settings_json(const struct dispatch_route_cfg *cfg) {
  const struct smpp_client_cfg *s = &cfg->smpp;
  return json_pack("{s:s, s:s, s:i, s:s, s:s, s:s, s:i, s:i, s:i, s:i, s:i, s:i, s:i, s:i, s:i}",
                   "protocol", "smpp", "host", s->host, "port", s->port, "system_id",
                   s->system_id, "password", s->password, "system_type", s->system_type,
                   "sessions", s->sessions, "window", s->window, "max_sps", s->max_sps,
                   "data_coding", cfg->gsm_data_coding, "enquire_link", s->enquire_link_s,
                   "resp_timeout_ms", s->resp_timeout_ms, "throttle_pause_ms",
                   s->throttle_pause_ms, "reconnect_min_ms", s->reconnect_min_ms,
                   "reconnect_max_ms", s->reconnect_max_ms);
}

static void on_route_saved(void *arg, int rc) {
  struct admin_ctx *c = arg;
  struct api *a = c->a;
  if (rc) {
    api_error(c->req, 503, "store_unavailable", NULL, "route not saved: %s", kk_strerror(rc));
  } else if (c->deleting) {
    api_empty(c->req, 204);
  } else {
    /* The route changed with the commit (the store's note to dispatch). */
    json_t *arr = dispatch_routes_json(a->dispatch, c->route_name);
    json_t *r = json_incref(json_array_get(arr, 0));
    json_decref(arr);
    api_json(c->req, 200, r ? r : json_object(), NULL);
  }
  free(c);
}

void api_routes(struct api *a, struct http_req *req, const char *name) {
  const char *m = http_req_method(req);
  if (strcmp(m, "GET") == 0) {
    json_t *arr = dispatch_routes_json(a->dispatch, name);
    if (name) {
      json_t *r = json_incref(json_array_get(arr, 0));
      json_decref(arr);
      if (!r) {
        api_error(req, 404, "not_found", NULL, "no route %s", name);
        return;
      }
      api_json(req, 200, r, NULL);
      return;
    }
    api_json(req, 200, json_pack("{s:o}", "routes", arr), NULL);
    return;
  }
  if (!name) {
    api_not_allowed(req, "GET");
    return;
  }
  struct admin_ctx *c = kk_xcalloc(1, sizeof *c);
  c->a = a;
  c->req = req;
  snprintf(c->route_name, sizeof c->route_name, "%s", name);
  if (strcmp(m, "DELETE") == 0) {
    json_t *arr = dispatch_routes_json(a->dispatch, name);
    size_t n = json_array_size(arr);
    json_decref(arr);
    if (n == 0) {
      free(c);
      api_error(req, 404, "not_found", NULL, "no route %s", name);
      return;
    }
    if (strcmp(name, dispatch_default_route(a->dispatch)) == 0) {
      free(c);
      api_error(req, 409, "route_in_use", NULL,
                "route %s is the default_route; change that setting first", name);
      return;
    }
    c->deleting = 1;
    store_route_put(a->store, name, NULL, on_route_saved, c);
    return;
  }
  if (strcmp(m, "PUT") != 0) {
    free(c);
    api_not_allowed(req, "GET, PUT, DELETE");
    return;
  }
  json_t *doc = api_body_json(req);
  if (!doc) {
    free(c);
    return;
  }
  char err[160];
  if (api_route_cfg_parse(doc, name, &c->route, err, sizeof err) != 0) {
    json_decref(doc);
    free(c);
    api_error(req, 422, "invalid_route", NULL, "%s", err);
    return;
  }
  json_decref(doc);
  json_t *settings = route_settings_json(&c->route);
  char *text = json_dumps(settings, JSON_COMPACT | JSON_SORT_KEYS);
  json_decref(settings);
  store_route_put(a->store, name, text, on_route_saved, c);
  free(text);
}
