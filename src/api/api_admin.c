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
 *   GET   /v1/nodes                                     -> the nodes and their work
 *
 * Handlers validate into the request's arena and make the context a store
 * callback answers from (a heap copy) only once the request goes to the
 * store, so an early refusal has nothing to free.
 */
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api_int.h"
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
  int creating;              /* a new account: answered 201 */
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
  json_object_set_new(o, "roaming_ads", json_string(API_ROAMING_ADS(acc)));
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
   422 and returns KK_EINVAL when one is not valid. */
static int policy_patch(json_t *doc, struct store_account *acc, struct http_req *req) {
  struct api_err e = {0};
  json_t *v = json_object_get(doc, "senders");
  if (v && api_senders_parse(v, acc->senders, sizeof acc->senders, &e) != 0) {
    api_error_from(req, &e);
    return KK_EINVAL;
  }
  v = json_object_get(doc, "countries");
  if (v && api_countries_parse(v, acc->countries, sizeof acc->countries, &e) != 0) {
    api_error_from(req, &e);
    return KK_EINVAL;
  }
  /* advertising SMS to a roaming subscriber: defer (default), drop, allow
     (also the account's own GET|PUT /v1/policy) */
  v = json_object_get(doc, "roaming_ads");
  if (v && api_roaming_ads_parse(v, acc->roaming_ads, sizeof acc->roaming_ads, &e) != 0) {
    api_error_from(req, &e);
    return KK_EINVAL;
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
  if (rc == KK_ENOSPC) {
    api_error(c->req, 422, "too_many_accounts", NULL, "the service holds %d accounts at most",
              STORE_ACCOUNTS_MAX);
  } else if (rc) {
    api_error(c->req, 503, "store_unavailable", NULL, "account not saved: %s", kk_strerror(rc));
  } else {
    /* Suspension took effect with the commit (the store's note). */
    api_json(c->req, c->creating ? 201 : 200, account_json(&c->acc, 1), NULL);
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

/* The context a store callback answers from, made when the request goes to
   the store (freed by the callback). */
static struct admin_ctx *admin_ctx_new(struct api_call *call) {
  struct admin_ctx *c = kk_xcalloc(1, sizeof *c);
  c->a = call->a;
  c->req = call->req;
  return c;
}

int api_account_check(struct api_call *c) {
  const char *id = api_param(c, "id");
  c->acc = kk_arena_zalloc(&c->arena, sizeof *c->acc);
  if (store_account_get(c->a->store, id, c->acc) != 0) {
    api_error(c->req, 404, "not_found", NULL, "no account %s", id);
    return KK_ENOENT;
  }
  return 0;
}

void api_account_create(struct api_call *call) {
  json_t *doc = api_call_body(call);
  if (!doc) return;
  json_t *name = json_object_get(doc, "name");
  if (!json_is_string(name) || !valid_name(json_string_value(name), 200)) {
    api_error(call->req, 422, "invalid_name", "name", "name: a string of 1 to 200 characters");
    return;
  }
  struct store_account *acc = kk_arena_zalloc(&call->arena, sizeof *acc);
  snprintf(acc->name, sizeof acc->name, "%s", json_string_value(name));
  json_t *route = json_object_get(doc, "sms_route");
  if (json_is_string(route))
    snprintf(acc->sms_route, sizeof acc->sms_route, "%s", json_string_value(route));
  if (policy_patch(doc, acc, call->req) != 0) return;
  struct admin_ctx *c = admin_ctx_new(call);
  c->acc = *acc;
  c->creating = 1;
  store_account_create(call->a->store, &c->acc, on_account_saved, c);
}

void api_account_get(struct api_call *c) {
  api_money_answer_account(c, c->acc->id, account_json(c->acc, 1));
}

void api_account_key_create(struct api_call *call) {
  struct admin_ctx *c = admin_ctx_new(call);
  c->acc = *call->acc;
  unsigned char raw[24];
  if (RAND_bytes(raw, sizeof raw) != 1) abort();
  char *p = c->key + sprintf(c->key, "kk_");
  for (size_t i = 0; i < sizeof raw; i++) p += sprintf(p, "%02x", raw[i]);
  OPENSSL_cleanse(raw, sizeof raw);
  /* Keys carry 192 random bits, so a plain SHA-256 is enough to store them. */
  SHA256((const unsigned char *)c->key, strlen(c->key), c->hash);
  snprintf(c->prefix, sizeof c->prefix, "%.11s", c->key);
  store_key_add(call->a->store, c->acc.id, c->hash, c->prefix, on_key_saved, c);
}

/* Refuses a PATCH body's name, sms_route or suspended (answered: nonzero). */
static int patch_refused(struct api_call *c, json_t *doc) {
  json_t *name = json_object_get(doc, "name");
  json_t *route = json_object_get(doc, "sms_route");
  if (name && (!json_is_string(name) || !valid_name(json_string_value(name), 200))) {
    api_error(c->req, 422, "invalid_name", "name", "name: a string of 1 to 200 characters");
    return KK_EINVAL;
  }
  if (route && !json_is_null(route) &&
      (!json_is_string(route) || strlen(json_string_value(route)) >= sizeof c->acc->sms_route)) {
    api_error(c->req, 422, "invalid_route", "sms_route", "sms_route: a route name or null");
    return KK_EINVAL;
  }
  if (json_is_string(route) && !route_exists(c->a, json_string_value(route))) {
    api_error(c->req, 422, "unknown_route", "sms_route",
              "sms_route: no route \"%s\" (GET /v1/routes lists them)", json_string_value(route));
    return KK_EINVAL;
  }
  json_t *susp = json_object_get(doc, "suspended");
  if (susp && !json_is_boolean(susp)) {
    api_error(c->req, 422, "invalid_suspended", "suspended", "suspended: true or false");
    return KK_EINVAL;
  }
  return 0;
}

void api_account_patch(struct api_call *call) {
  json_t *doc = api_call_body(call);
  if (!doc || patch_refused(call, doc) || policy_patch(doc, call->acc, call->req) != 0 ||
      api_money_patch(call, doc, call->acc->id) != 0)
    return;
  struct store_account *acc = call->acc;
  json_t *name = json_object_get(doc, "name");
  json_t *route = json_object_get(doc, "sms_route");
  json_t *susp = json_object_get(doc, "suspended");
  if (susp) acc->suspended = json_is_true(susp);
  if (name) snprintf(acc->name, sizeof acc->name, "%s", json_string_value(name));
  if (route)
    snprintf(acc->sms_route, sizeof acc->sms_route, "%s",
             json_is_string(route) ? json_string_value(route) : "");
  struct admin_ctx *c = admin_ctx_new(call);
  c->acc = *acc;
  store_account_update(call->a->store, &c->acc, on_account_saved, c);
}

void api_account_self(struct api_call *c) {
  struct store_account *acc = kk_arena_zalloc(&c->arena, sizeof *acc);
  if (store_account_get_by_id(c->a->store, c->account_id, acc) != 0) {
    api_error(c->req, 404, "not_found", NULL, "account not found");
    return;
  }
  api_money_answer_account(c, acc->id, account_json(acc, 1));
}

/* ---- routes ------------------------------------------------------------------ */

int api_route_cfg_parse(json_t *o, const char *name, struct dispatch_route_cfg *cfg, char *err,
                        size_t errcap) {
  return dispatch_route_cfg_parse(o, name, cfg, err, errcap);
}

static json_t *route_settings_json(const struct dispatch_route_cfg *cfg) {
  return dispatch_route_cfg_json(cfg);
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

void api_routes_list(struct api_call *c) {
  api_json(c->req, 200, json_pack("{s:o}", "routes", dispatch_routes_json(c->a->dispatch, NULL)),
           NULL);
}

void api_route_get(struct api_call *c) {
  const char *name = api_param(c, "name");
  json_t *arr = api_call_own(c, dispatch_routes_json(c->a->dispatch, name));
  json_t *r = json_incref(json_array_get(arr, 0));
  if (!r) {
    api_error(c->req, 404, "not_found", NULL, "no route %s", name);
    return;
  }
  api_json(c->req, 200, r, NULL);
}

void api_route_delete(struct api_call *call) {
  struct api *a = call->a;
  const char *name = api_param(call, "name");
  if (json_array_size(api_call_own(call, dispatch_routes_json(a->dispatch, name))) == 0) {
    api_error(call->req, 404, "not_found", NULL, "no route %s", name);
    return;
  }
  if (strcmp(name, dispatch_default_route(a->dispatch)) == 0) {
    api_error(call->req, 409, "route_in_use", NULL,
              "route %s is the default_route; change that setting first", name);
    return;
  }
  struct admin_ctx *c = admin_ctx_new(call);
  snprintf(c->route_name, sizeof c->route_name, "%s", name);
  c->deleting = 1;
  store_route_put(a->store, name, NULL, on_route_saved, c);
}

void api_route_put(struct api_call *call) {
  const char *name = api_param(call, "name");
  json_t *doc = api_call_body(call);
  if (!doc) return;
  struct dispatch_route_cfg *cfg = kk_arena_zalloc(&call->arena, sizeof *cfg);
  char err[160];
  if (api_route_cfg_parse(doc, name, cfg, err, sizeof err) != 0) {
    api_error(call->req, 422, "invalid_route", NULL, "%s", err);
    return;
  }
  struct admin_ctx *c = admin_ctx_new(call);
  snprintf(c->route_name, sizeof c->route_name, "%s", name);
  c->route = *cfg;
  json_t *settings = api_call_own(call, route_settings_json(&c->route));
  char *text = json_dumps(settings, JSON_COMPACT | JSON_SORT_KEYS);
  store_route_put(call->a->store, name, text, on_route_saved, c);
  free(text);
}

/* ---- nodes -------------------------------------------------------------------- */

/* A listing being read in the store's pool (freed by on_nodes, which answers). */
struct nodes_ctx {
  struct http_req *req;
  struct store_node rows[STORE_NODES_MAX];
  int n;
};

static void on_nodes(void *arg, int rc) {
  struct nodes_ctx *c = arg;
  if (rc != 0) {
    api_error(c->req, 503, "store_unavailable", NULL, "cannot read the nodes now");
    free(c);
    return;
  }
  json_t *arr = json_array();
  for (int i = 0; i < c->n; i++) {
    const struct store_node *n = &c->rows[i];
    char started[32], beat[32], id[24];
    api_time(n->started_at, started);
    api_time(n->heartbeat_at, beat);
    snprintf(id, sizeof id, "%lld", (long long)n->id);
    json_array_append_new(
        arr, json_pack("{s:s, s:s, s:s, s:s, s:b, s:{s:I, s:I, s:I, s:I}}", "id", id, "name",
                       n->name, "started_at", started, "heartbeat_at", beat, "alive", n->alive,
                       "holds", "messages", (json_int_t)n->messages, "attempts",
                       (json_int_t)n->attempts, "waits", (json_int_t)n->waits, "outbox",
                       (json_int_t)n->outbox));
  }
  api_json(c->req, 200, json_pack("{s:o}", "nodes", arr), NULL);
  free(c);
}

void api_nodes_list(struct api_call *call) {
  struct nodes_ctx *c = kk_xcalloc(1, sizeof *c);
  c->req = call->req;
  store_nodes_list(call->a->store, c->rows, &c->n, on_nodes, c);
}
