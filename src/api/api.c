/*
 * api.c - the route table, authentication and the JSON helpers (see api.h,
 * api_int.h).
 */
#include "api/api_int.h"

#include <openssl/crypto.h>
#include <openssl/sha.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/kk_err.h"
#include "core/kk_log.h"
#include "callback/callback.h"
#include "core/kk_rate.h"
#include "cascade/cascade.h"
#include "channel/chan_engine.h"
#include "core/kk_mem.h"
#include "core/kk_utf8.h"
#include "dispatch/dispatch.h"
#include "http/http_router.h"
#include "contact/contact_import.h"
#include "http/http_server.h"
#include "store/store.h"
#include "accept/accept_optout.h"
#include "api/api_links.h"
#include "api/api_optout.h"

#define LOGCTX "api"

/* ---- JSON answers ----------------------------------------------------------- */

/* The path for a log line: valid UTF-8 whatever the request held. */
static const char *log_path(struct http_req *req, char *buf, size_t cap) {
  const char *p = http_req_path(req);
  kk_utf8_sanitize(buf, cap, p, strlen(p));
  return buf;
}

/* The answer when no other can be built: a fixed text that cannot fail. */
static void answer_internal(struct http_req *req, int status) {
  static const char body[] =
      "{\"error\":{\"code\":\"internal\",\"message\":\"the answer could not be built\"}}\n";
  char path[160];
  kk_error(LOGCTX, "%s %s: the %d answer could not be serialised; 500 instead",
           http_req_method(req), log_path(req, path, sizeof path), status);
  api_respond(req, 500, "application/json", body, sizeof body - 1, NULL);
}

char *api_json_text(json_t *doc, size_t *len) {
  /* A NULL doc is what json_pack() gives for a string that is not UTF-8. */
  char *s = doc ? json_dumps(doc, JSON_COMPACT | JSON_REAL_PRECISION(12)) : NULL;
  json_decref(doc);
  if (s == NULL) return NULL;
  size_t n = strlen(s);
  s = kk_xrealloc(s, n + 2);
  s[n++] = '\n';
  s[n] = '\0';
  *len = n;
  return s;
}

void api_json(struct http_req *req, int status, json_t *doc, const char *extra_headers) {
  size_t n = 0;
  char *s = api_json_text(doc, &n);
  if (s == NULL) {
    answer_internal(req, status);
    return;
  }
  api_respond(req, status, "application/json", s, n, extra_headers);
  free(s);
}

void api_json_page(struct http_req *req, const char *key, json_t *rows, int64_t next) {
  json_t *doc = json_object();
  json_object_set_new(doc, key, rows);
  if (next) {
    char cur[32];
    snprintf(cur, sizeof cur, "%lld", (long long)next);
    json_object_set_new(doc, "next_cursor", json_string(cur));
  } else {
    json_object_set_new(doc, "next_cursor", json_null());
  }
  api_json(req, 200, doc, NULL);
}

void api_empty(struct http_req *req, int status) {
  api_respond(req, status, NULL, "", 0, NULL);
}

void api_error(struct http_req *req, int status, const char *code, const char *field,
               const char *fmt, ...) {
  struct api_err e = {.status = status, .code = code, .field = field};
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(e.message, sizeof e.message, fmt, ap);
  va_end(ap);
  api_error_from(req, &e);
}

json_t *api_err_json(const struct api_err *e) {
  /* The message and field may echo input, or be cut inside a character by
     their fixed size: both are made valid UTF-8 first. */
  char message[sizeof e->message], field[sizeof e->message];
  kk_utf8_sanitize(message, sizeof message, e->message, strnlen(e->message, sizeof e->message));
  json_t *err = json_pack("{s:s, s:s}", "code", e->code, "message", message);
  if (err && e->field) {
    kk_utf8_sanitize(field, sizeof field, e->field, strlen(e->field));
    json_object_set_new(err, "field", json_string(field));
  }
  return err;
}

/* An error answer with extra headers (NULL: none). */
static void error_answer(struct http_req *req, const struct api_err *e, const char *extra_headers) {
  json_t *err = api_err_json(e);
  char path[160], message[sizeof e->message];
  kk_utf8_sanitize(message, sizeof message, e->message, strnlen(e->message, sizeof e->message));
  kk_info(LOGCTX, "%s %s -> %d %s: %s", http_req_method(req), log_path(req, path, sizeof path),
          e->status, e->code, message);
  api_json(req, e->status, err ? json_pack("{s:o}", "error", err) : NULL, extra_headers);
}

void api_error_from(struct http_req *req, const struct api_err *e) {
  error_answer(req, e, NULL);
}

void api_not_allowed(struct http_req *req, const char *allow) {
  struct api_err e = {.status = 405, .code = "method_not_allowed"};
  snprintf(e.message, sizeof e.message, "%s is not allowed here; use %s", http_req_method(req),
           allow);
  char hdr[96];
  snprintf(hdr, sizeof hdr, "Allow: %s\r\n", allow);
  error_answer(req, &e, hdr);
}

void api_time(int64_t ms, char out[32]) {
  time_t t = (time_t)(ms / 1000);
  struct tm tm;
  gmtime_r(&t, &tm);
  char tmp[96];
  int n = snprintf(tmp, sizeof tmp, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                   tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(ms % 1000));
  if (n < 0 || n > 31) n = 0;
  memcpy(out, tmp, (size_t)n);
  out[n] = '\0';
}

int api_parse_time(const char *s, int64_t *ms) {
  char *end;
  long long v = strtoll(s, &end, 10);
  if (*s && *end == '\0') {
    if (v < 0) return KK_EINVAL;
    *ms = v;
    return 0;
  }
  struct tm tm;
  memset(&tm, 0, sizeof tm);
  const char *p = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
  if (p == NULL) return KK_EINVAL;
  int frac = 0;
  if (*p == '.') {
    p++;
    int digits = 0;
    while (*p >= '0' && *p <= '9') {
      if (digits < 3) frac = frac * 10 + (*p - '0');
      digits++;
      p++;
    }
    while (digits < 3) {
      frac *= 10;
      digits++;
    }
  }
  /* Z, or an offset from UTC: +03:00 is three hours ahead of it. */
  int off = 0;
  if (strcmp(p, "Z") != 0 && strcmp(p, "z") != 0) {
    if ((p[0] != '+' && p[0] != '-') || strlen(p) != 6 || p[3] != ':') return KK_EINVAL;
    for (int i = 1; i < 6; i++)
      if (i != 3 && (p[i] < '0' || p[i] > '9')) return KK_EINVAL;
    int hh = (p[1] - '0') * 10 + (p[2] - '0'), mm = (p[4] - '0') * 10 + (p[5] - '0');
    if (hh > 23 || mm > 59) return KK_EINVAL;
    off = (hh * 60 + mm) * (p[0] == '-' ? -1 : 1);
  }
  *ms = ((int64_t)timegm(&tm) - off * 60LL) * 1000 + frac;
  return 0;
}

json_t *api_body_json(struct http_req *req) {
  size_t len;
  const char *body = http_req_body(req, &len);
  json_error_t jerr;
  json_t *doc = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
  if (doc == NULL) {
    api_error(req, 400, "invalid_json", NULL, "body is not valid JSON: %s (line %d, column %d)",
              jerr.text, jerr.line, jerr.column);
    return NULL;
  }
  if (!json_is_object(doc)) {
    json_decref(doc);
    api_error(req, 400, "invalid_json", NULL, "body must be a JSON object");
    return NULL;
  }
  return doc;
}

/* ---- keys ------------------------------------------------------------------ */

static size_t slot_of(const struct api_keys *k, const uint8_t hash[32]) {
  uint64_t h;
  memcpy(&h, hash, sizeof h);
  return (size_t)h & (k->cap - 1);
}

void api_keys_add(struct api_keys *k, const uint8_t hash[32], int64_t account_id) {
  if ((k->n + 1) * 2 > k->cap) {
    struct api_keys bigger = {.cap = k->cap ? k->cap * 2 : 64};
    bigger.slots = kk_xcalloc(bigger.cap, sizeof *bigger.slots);
    for (size_t i = 0; i < k->cap; i++)
      if (k->slots[i].account_id > 0)
        api_keys_add(&bigger, k->slots[i].hash, k->slots[i].account_id);
    free(k->slots);
    *k = bigger;
  }
  size_t i = slot_of(k, hash);
  while (k->slots[i].account_id && memcmp(k->slots[i].hash, hash, 32) != 0)
    i = (i + 1) & (k->cap - 1);
  if (!k->slots[i].account_id) k->n++;
  memcpy(k->slots[i].hash, hash, 32);
  k->slots[i].account_id = account_id;
}

struct api_key_slot *api_keys_slot(const struct api_keys *k, const uint8_t hash[32]) {
  if (k->cap == 0) return NULL;
  size_t i = slot_of(k, hash);
  while (k->slots[i].account_id) {
    if (k->slots[i].account_id > 0 && memcmp(k->slots[i].hash, hash, 32) == 0)
      return &k->slots[i];
    i = (i + 1) & (k->cap - 1);
  }
  return NULL;
}

int64_t api_keys_find(const struct api_keys *k, const uint8_t hash[32]) {
  struct api_key_slot *sl = api_keys_slot(k, hash);
  return sl ? sl->account_id : 0;
}

void api_keys_del(struct api_keys *k, const uint8_t hash[32]) {
  struct api_key_slot *sl = api_keys_slot(k, hash);
  /* The slot stays taken (-1) so that the keys probed past it are found. */
  if (sl) sl->account_id = -1;
}

static void load_key(void *arg, const uint8_t hash[32], int64_t account_id) {
  api_keys_add(arg, hash, account_id);
}

static void load_hold(void *arg, int64_t account_id) { kk_hold_set(arg, account_id, 1); }

/* The store's notes this module owns: keys added and revoked, accounts
   suspended or resumed. A change takes effect with its commit, before the
   request that made it is answered, for requests and queued work alike. */
static void on_notes(void *ud, const struct store_note *notes, int n) {
  struct api *a = ud;
  for (int i = 0; i < n; i++) {
    const struct store_note *t = &notes[i];
    switch (t->kind) {
    case STORE_NOTE_KEY_ADD:
      api_keys_add(&a->keys, t->cfg->hash, t->account_id);
      break;
    case STORE_NOTE_KEY_REVOKE:
      api_keys_del(&a->keys, t->cfg->hash);
      break;
    case STORE_NOTE_ACCOUNT:
      kk_hold_set(&a->hold, t->account_id, t->at != 0);
      break;
    default:
      break;
    }
  }
}

int api_init(struct api *a) {
  if (store_accounts_suspended(a->store, load_hold, &a->hold) != 0) return KK_ESTORE;
  if (store_keys_each(a->store, load_key, &a->keys) != 0) return KK_ESTORE;
  if (store_subscribe(a->store, on_notes, a) != 0) return KK_ENOSPC;
  accept_init(&a->accept, a->store, a->dispatch, a->cascade, a->ttl_ms);
  if (accept_optout_add(&a->accept) != 0 || store_subscribe(a->store, api_optout_notes, a) != 0)
    return KK_ENOSPC;
  if (accept_rules_init(&a->rules, a->store, a->plan, a->quiet_default) != 0) return KK_ESTORE;
  a->accept.rules = &a->rules;
  /* The rules again when a message or a cascade step comes due. */
  if (a->dispatch) dispatch_set_due_check(a->dispatch, accept_rules_due, &a->accept);
  if (a->cascade) chan_engine_set_due_check(cascade_engine(a->cascade), accept_rules_due, &a->accept);
  a->accept.public_url = a->public_url[0] ? a->public_url : NULL;
  a->subscribed = 1;
  return 0;
}

void api_stop(struct api *a) {
  contact_imports_stop(a->imports);   /* contact imports: readers stop */
  api_links_stop(a);                  /* clicks gathered: written */
  if (!a->subscribed) return;
  store_unsubscribe(a->store, on_notes, a);
  store_unsubscribe(a->store, api_optout_notes, a);
  accept_rules_fini(&a->rules);
  a->accept.rules = NULL;
  a->subscribed = 0;
}

void api_fini(struct api *a) {
  api_stop(a);
  contact_imports_free(a->imports);
  a->imports = NULL;
  api_links_free(a);
  api_campaign_memo_free(a);
  free(a->keys.slots);
  a->keys.slots = NULL;
  kk_rate_free(a->hook_limit);
  a->hook_limit = NULL;
  a->keys.cap = a->keys.n = 0;
  free(a->accts.slots);
  memset(&a->accts, 0, sizeof a->accts);
  kk_hold_fini(&a->hold);
}

/* ---- routing ---------------------------------------------------------------- */

void api_count_status(struct http_req *req, int status) {
  struct api_call *c = http_req_data(req);
  if (c && status >= 100 && status < 600) c->a->http_by_class[status / 100]++;
}

void api_respond(struct http_req *req, int status, const char *content_type, const char *body,
                 size_t len, const char *extra_headers) {
  api_count_status(req, status);
  http_respond(req, status, content_type, body, len, extra_headers);
}

/* Who called: 0 (answered: refused), API_OPERATOR or API_ACCOUNT. */

/* Works out who is calling; *account_id and *slot are set for account keys. */
static unsigned authenticate(struct api *a, struct http_req *req, int64_t *account_id,
                                struct api_key_slot **slot) {
  const char *h = http_req_header(req, "Authorization");
  if (h == NULL || strncmp(h, "Bearer ", 7) != 0) return 0;
  const char *key = h + 7;
  size_t len = strlen(key);
  if (len == 0 || len > 200) return 0;
  size_t alen = strlen(a->admin_key);
  if (alen && alen == len && CRYPTO_memcmp(key, a->admin_key, len) == 0) return API_OPERATOR;
  uint8_t hash[32];
  SHA256((const unsigned char *)key, len, hash);
  *slot = api_keys_slot(&a->keys, hash);
  *account_id = *slot ? (*slot)->account_id : 0;
  return *account_id ? API_ACCOUNT : 0;
}

static void rate_limited(struct api *a, struct http_req *req, int64_t wait_ms, const char *what) {
  char hdr[48];
  long long secs = (wait_ms + 999) / 1000;
  snprintf(hdr, sizeof hdr, "Retry-After: %lld\r\n", secs > 0 ? secs : 1);
  a->rate_limited++;
  kk_info(LOGCTX, "%s %s -> 429 rate_limited (%s)", http_req_method(req), http_req_path(req),
          what);
  json_t *err = json_pack("{s:s, s:s}", "code", "rate_limited", "message",
                          "too many requests; retry after the time in Retry-After");
  api_json(req, 429, json_pack("{s:o}", "error", err), hdr);
}

/*
 * Who is calling, with the abuse controls: an unknown key gets 401, a
 * suspended account's key 403, a request over the key's or the account's
 * rate 429 (each answered here, returning 0). Run once a request,
 * by the pre-check before its body is read, or by api_handle.
 */
static unsigned gate(struct api *a, struct http_req *req, int64_t *account_id) {
  struct api_key_slot *slot = NULL;
  unsigned who = authenticate(a, req, account_id, &slot);
  if (who == 0) {
    api_error(req, 401, "unauthorized", NULL,
              "missing or unknown API key (Authorization: Bearer <key>)");
    return 0;
  }
  if (who == API_OPERATOR) return who;
  if (kk_hold_has(&a->hold, *account_id)) {
    api_error(req, 403, "account_suspended", NULL,
              "this account is suspended; ask the operator");
    return 0;
  }
  int64_t now = (int64_t)(uv_hrtime() / 1000000);
  struct kk_bucket *ab = api_acct_bucket(&a->accts, *account_id);
  int64_t wk = kk_bucket_wait(&slot->bucket, &a->rate_key, now);
  int64_t wa = kk_bucket_wait(ab, &a->rate_account, now);
  if (wk || wa) {
    rate_limited(a, req, wk > wa ? wk : wa, wk >= wa ? "key" : "account");
    return 0;
  }
  kk_bucket_take(&slot->bucket, &a->rate_key);
  kk_bucket_take(ab, &a->rate_account);
  return who;
}

/* The caller as the pre-check found it (http_req_checked: -1 the
   operator, > 0 an account), or as gate() finds it now. */
static unsigned caller_of(struct api *a, struct http_req *req, int64_t *account_id) {
  int64_t v = http_req_checked(req);
  if (v == -1) return API_OPERATOR;
  if (v > 0) {
    *account_id = v;
    return API_ACCOUNT;
  }
  return gate(a, req, account_id);
}

/* http_kv_fn: nonzero when a name or value is not valid UTF-8. */
static int kv_bad_utf8(void *arg, const char *name, const char *value) {
  return !kk_utf8_valid(name, strlen(name)) || (value && !kk_utf8_valid(value, strlen(value)));
}

/* The part of the request that is not UTF-8 ("path", "query", "header"), or
   NULL when all of it is. Handlers echo these in answers and logs and copy
   them into fixed fields, so they must never see anything else. */
static const char *bad_encoding(struct http_req *req) {
  const char *path = http_req_path(req);
  if (!kk_utf8_valid(path, strlen(path))) return "path";
  if (http_req_each_query(req, kv_bad_utf8, NULL)) return "query";
  if (http_req_each_header(req, kv_bad_utf8, NULL)) return "header";
  return NULL;
}

/* ---- the route table ------------------------------------------------------- */

static void healthz(struct api_call *c) {
  struct api *a = c->a;
  if (a->ready && !a->draining && store_degraded(a->store)) {
    api_respond(c->req, 503, "text/plain", "store unavailable\n", 18, NULL);
  } else if (a->ready && !a->draining) {
    api_respond(c->req, 200, "text/plain", "ok\n", 3, NULL);
  } else {
    api_respond(c->req, 503, "text/plain", "starting or stopping\n", 21, NULL);
  }
}

static void metrics(struct api_call *c) {
  struct kk_buf b;
  kk_buf_init(&b, 4 << 20);
  api_metrics(c->a, &b);
  api_respond(c->req, 200, "text/plain; version=0.0.4", b.p ? b.p : "", b.len, NULL);
  kk_buf_fini(&b);
}

void api_not_found(struct api_call *c) {
  api_error(c->req, 404, "not_found", NULL, "no such endpoint: %s", http_req_path(c->req));
}

/*
 * Every endpoint. A path belongs to the routes of the first pattern that
 * matches it (http_router.h), so literals come before parameters and the
 * catch-alls last: those answer 404 to the callers a resource admits and
 * 403 to the others, as the resources beside them do. A 405's Allow lists
 * the pattern's methods in this order. (Matching a send takes some 40 ns.)
 */
static const struct api_route routes[] = {
    /* Sends first: the table is scanned in order, and they are most requests. */
    {{"GET", "/v1/messages"}, API_ACCOUNT, api_messages_list, NULL},
    {{"POST", "/v1/messages"}, API_ACCOUNT, api_messages_post, NULL},
    {{"POST", "/v1/messages/batch"}, API_ACCOUNT, api_messages_batch, NULL},
    {{"GET", "/v1/messages/{id}"}, API_ACCOUNT, api_messages_get, NULL},
    {{"DELETE", "/v1/messages/{id}"}, API_ACCOUNT, api_messages_cancel, NULL},
    {{"*", "/healthz"}, API_PUBLIC, healthz, NULL},
    {{"*", "/metrics"}, API_PUBLIC, metrics, NULL},
    {{"GET", "/v1/hooks/{channel}/{scope}"}, API_PROVIDER, api_hook, api_hook_check},
    {{"POST", "/v1/hooks/{channel}/{scope}"}, API_PROVIDER, api_hook, api_hook_check},
    {{"*", "/v1/hooks/*"}, API_PROVIDER, api_not_found, NULL},
    /* unsubscribe links (api_unsub.c): people, no key */
    {{"GET", "/u/{code}"}, API_PROVIDER, api_unsub_page, NULL},
    {{"POST", "/u/{code}"}, API_PROVIDER, api_unsub_post, NULL},
    /* tracked links (api_links.c): people, no key */
    {{"GET", "/r/{code}"}, API_PROVIDER, api_link_click, NULL},
    {{"HEAD", "/r/{code}"}, API_PROVIDER, api_link_click, NULL},
    {{"POST", "/v1/accounts"}, API_OPERATOR, api_account_create, NULL},
    {{"GET", "/v1/accounts/{id}"}, API_OPERATOR, api_account_get, api_account_check},
    {{"PATCH", "/v1/accounts/{id}"}, API_OPERATOR, api_account_patch, api_account_check},
    {{"GET", "/v1/accounts/{id}/keys"}, API_OPERATOR, api_keys_list, api_account_check},
    {{"POST", "/v1/accounts/{id}/keys"}, API_OPERATOR, api_account_key_create, api_account_check},
    {{"POST", "/v1/accounts/{id}/balance"}, API_OPERATOR, api_balance_topup, api_account_check},
    {{"GET", "/v1/accounts/{id}/inbound"}, API_OPERATOR, api_inbound_get, api_account_check},
    {{"PUT", "/v1/accounts/{id}/inbound"}, API_OPERATOR, api_inbound_put, api_account_check},
    {{"DELETE", "/v1/accounts/{id}/inbound"}, API_OPERATOR, api_inbound_delete, api_account_check},
    {{"*", "/v1/accounts/{id}/*"}, API_OPERATOR, api_not_found, api_account_check},
    {{"GET", "/v1/routes"}, API_OPERATOR, api_routes_list, NULL},
    {{"GET", "/v1/routes/{name}"}, API_OPERATOR, api_route_get, NULL},
    {{"PUT", "/v1/routes/{name}"}, API_OPERATOR, api_route_put, NULL},
    {{"DELETE", "/v1/routes/{name}"}, API_OPERATOR, api_route_delete, NULL},
    {{"*", "/v1/routes/*"}, API_OPERATOR, api_not_found, NULL},
    {{"GET", "/v1/nodes"}, API_OPERATOR, api_nodes_list, NULL},
    {{"GET", "/v1/channels"}, API_KEYED, api_channels_list, api_channel_check},
    {{"GET", "/v1/channels/{channel}"}, API_KEYED, api_channel_get, api_channel_check},
    {{"PUT", "/v1/channels/{channel}"}, API_KEYED, api_channel_put, api_channel_check},
    {{"DELETE", "/v1/channels/{channel}"}, API_KEYED, api_channel_delete, api_channel_check},
    {{"DELETE", "/v1/keys/{prefix}"}, API_KEYED, api_key_revoke, NULL},
    {{"GET", "/v1/prices"}, API_KEYED, api_prices_get, NULL},
    {{"PUT", "/v1/prices"}, API_KEYED, api_prices_put, NULL},
    {{"GET", "/v1/cascades"}, API_ACCOUNT, api_cascades_list, NULL},
    {{"GET", "/v1/cascades/{name}"}, API_ACCOUNT, api_cascade_get, api_cascade_check},
    {{"PUT", "/v1/cascades/{name}"}, API_ACCOUNT, api_cascade_put, api_cascade_check},
    {{"DELETE", "/v1/cascades/{name}"}, API_ACCOUNT, api_cascade_delete, api_cascade_check},
    /* templates */
    {{"GET", "/v1/templates"}, API_ACCOUNT, api_templates_list, NULL},
    {{"GET", "/v1/templates/{name}"}, API_ACCOUNT, api_template_get, api_template_check},
    {{"PUT", "/v1/templates/{name}"}, API_ACCOUNT, api_template_put, api_template_check},
    {{"DELETE", "/v1/templates/{name}"}, API_ACCOUNT, api_template_delete, api_template_check},
    {{"POST", "/v1/templates/{name}/preview"}, API_ACCOUNT, api_template_preview,
     api_template_check},
    {{"GET", "/v1/campaigns/{name}/report"}, API_ACCOUNT, api_campaign_report, NULL},
    {{"GET", "/v1/campaigns"}, API_ACCOUNT, api_camps_list, NULL},
    {{"GET", "/v1/campaigns/{name}"}, API_ACCOUNT, api_camp_get, NULL},
    {{"PUT", "/v1/campaigns/{name}"}, API_ACCOUNT, api_camp_put, NULL},
    {{"POST", "/v1/campaigns/{name}/start"}, API_ACCOUNT, api_camp_start, NULL},
    {{"POST", "/v1/campaigns/{name}/pause"}, API_ACCOUNT, api_camp_pause, NULL},
    {{"POST", "/v1/campaigns/{name}/resume"}, API_ACCOUNT, api_camp_resume, NULL},
    {{"POST", "/v1/campaigns/{name}/cancel"}, API_ACCOUNT, api_camp_cancel, NULL},
    {{"GET", "/v1/campaigns/{name}/recipients"}, API_ACCOUNT, api_camp_recipients, NULL},
    {{"POST", "/v1/conversions"}, API_ACCOUNT, api_conversion_post, NULL},
    {{"GET", "/v1/campaigns/{name}/recipients.csv"}, API_ACCOUNT, api_camp_recipients_csv, NULL},
    {{"POST", "/v1/campaigns/{name}/dry-run"}, API_ACCOUNT, api_camp_dry_run, NULL},
    {{"GET", "/v1/replies"}, API_ACCOUNT, api_replies_list, NULL},
    {{"GET", "/v1/numbers/{phone}"}, API_KEYED, api_number_get, NULL},
    {{"GET", "/v1/account"}, API_ACCOUNT, api_account_self, NULL},
    {{"GET", "/v1/policy"}, API_ACCOUNT, api_policy_get, NULL},
    {{"PUT", "/v1/policy"}, API_ACCOUNT, api_policy_put, NULL},
    {{"POST", "/v1/test/clock"}, API_OPERATOR, api_test_clock, NULL},
    {{"GET", "/v1/account/transactions"}, API_ACCOUNT, api_account_transactions, NULL},
    {{"POST", "/v1/calculator"}, API_ACCOUNT, api_calculator, NULL},
    /* contact bases (api_contacts.c) */
    {{"POST", "/v1/contacts/import"}, API_ACCOUNT, api_contacts_import, NULL},
    {{"GET", "/v1/contacts"}, API_ACCOUNT, api_contacts_list, NULL},
    {{"GET", "/v1/contacts.csv"}, API_ACCOUNT, api_contacts_csv, NULL},
    {{"GET", "/v1/contacts/{phone}"}, API_ACCOUNT, api_contact_get, NULL},
    {{"PUT", "/v1/contacts/{phone}"}, API_ACCOUNT, api_contact_put, NULL},
    {{"PATCH", "/v1/contacts/{phone}"}, API_ACCOUNT, api_contact_patch, NULL},
    {{"DELETE", "/v1/contacts/{phone}"}, API_ACCOUNT, api_contact_delete, NULL},
    {{"GET", "/v1/lists"}, API_ACCOUNT, api_lists_get, NULL},
    {{"GET", "/v1/segments"}, API_ACCOUNT, api_segments_list, NULL},
    {{"GET", "/v1/segments/{name}"}, API_ACCOUNT, api_segment_get, NULL},
    {{"PUT", "/v1/segments/{name}"}, API_ACCOUNT, api_segment_put, NULL},
    {{"DELETE", "/v1/segments/{name}"}, API_ACCOUNT, api_segment_delete, NULL},
    {{"GET", "/v1/imports/{id}"}, API_ACCOUNT, api_import_get, NULL},
    {{"GET", "/v1/imports/{id}/errors.csv"}, API_ACCOUNT, api_import_errors_csv, NULL},
    /* the stop-list and consents (api_stoplist.c, api_consents.c) */
    {{"GET", "/v1/stoplist"}, API_ACCOUNT, api_stoplist_list, NULL},
    {{"GET", "/v1/stoplist.csv"}, API_ACCOUNT, api_stoplist_csv, NULL},
    {{"POST", "/v1/stoplist/import"}, API_ACCOUNT, api_stoplist_import, NULL},
    {{"GET", "/v1/stoplist/{phone}"}, API_ACCOUNT, api_stoplist_get, NULL},
    {{"PUT", "/v1/stoplist/{phone}"}, API_ACCOUNT, api_stoplist_put, NULL},
    {{"DELETE", "/v1/stoplist/{phone}"}, API_ACCOUNT, api_stoplist_delete, NULL},
    {{"GET", "/v1/consents.csv"}, API_ACCOUNT, api_consents_csv, NULL},
    {{"POST", "/v1/consents/import"}, API_ACCOUNT, api_consents_import, NULL},
    {{"GET", "/v1/consents/{phone}"}, API_ACCOUNT, api_consent_get, NULL},
    {{"PUT", "/v1/consents/{phone}"}, API_ACCOUNT, api_consent_put, NULL},
    {{"DELETE", "/v1/consents/{phone}"}, API_ACCOUNT, api_consent_delete, NULL},
    {{"*", "/v1/*"}, API_ACCOUNT, api_not_found, NULL},
};

/* No endpoint has more than four segments; longer paths are not looked at. */
static const struct http_router router = {routes, sizeof routes / sizeof routes[0],
                                          sizeof routes[0], 4};

const char *api_param(const struct api_call *c, const char *name) {
  return http_match_param(c->m, name);
}

static void release_json(void *doc) { json_decref(doc); }

json_t *api_call_own(struct api_call *c, json_t *doc) {
  if (doc) kk_arena_defer(&c->arena, release_json, doc);
  return doc;
}

json_t *api_call_body(struct api_call *c) { return api_call_own(c, api_body_json(c->req)); }

/* The request's end: its call goes, with what its arena holds. */
static void call_end(void *arg, struct http_req *req) {
  (void)req;
  struct api_call *c = arg;
  kk_arena_free(&c->arena);
  free(c);
}

/* The request's call, made when it is first seen; freed when the request
   ends (call_end). */
static struct api_call *call_of(struct api *a, struct http_req *req) {
  struct api_call *c = http_req_data(req);
  if (c) return c;
  c = kk_xcalloc(1, sizeof *c);
  c->a = a;
  c->req = req;
  c->m = &c->match;
  kk_arena_init(&c->arena);
  http_req_set_data(req, c);
  http_req_on_end(req, call_end, c);
  return c;
}

/* The route of the request's path (NULL: none), with its match in c,
   matched once a request. Public routes answer only at their exact path. */
static const struct api_route *route_of(struct api_call *c) {
  if (c->routed) return c->route;
  c->routed = 1;
  const char *path = http_req_path(c->req);
  c->res = http_router_match(&router, http_req_method(c->req), path, &c->match);
  c->route = NULL;
  if (c->res == HTTP_ROUTE_NO_PATH) return NULL;
  const struct api_route *rt = &routes[c->match.route];
  if (rt->caller == API_PUBLIC && strcmp(path, rt->r.pattern) != 0) return NULL;
  c->route = rt;
  return rt;
}

void api_precheck(void *ud, struct http_req *req) {
  struct api *a = ud;
  struct api_call *c = call_of(a, req);
  /* Bytes that are not UTF-8 are refused before anything else looks at them
     (api_handle says so again for requests that come without a pre-check). */
  if (bad_encoding(req)) {
    api_handle(ud, req);
    return;
  }
  /* Only what api_handle authenticates: the routes that take keys. */
  const struct api_route *rt = route_of(c);
  if (rt == NULL || !(rt->caller & API_KEYED)) return;
  int64_t account_id = 0;
  unsigned who = gate(a, req, &account_id);
  if (who) http_req_set_checked(req, who == API_OPERATOR ? -1 : account_id);
  /* contact imports: the body is streamed to a file */
  if (who == API_ACCOUNT && rt->fn == api_contacts_import && c->res == HTTP_ROUTE_FOUND) {
    c->account_id = account_id;
    api_contacts_import_precheck(c);
  }
}

/* With a separate admin listener, 1 when path is not served on the
   listener the request came to: /metrics only on the admin one, provider
   hooks only on the public one. Keys are checked after authentication. */
static int wrong_listener(const struct api *a, struct http_req *req, const char *path) {
  if (!a->admin_split) return 0;
  int admin = http_req_listener(req) == API_LISTENER_ADMIN;
  if (strcmp(path, "/metrics") == 0) return !admin;
  return admin && strncmp(path, "/v1/hooks/", 10) == 0;
}

/* Authenticates a keyed route's caller into c; 0, or nonzero when answered
   (401, 403, 429, or 404 on the listener the key does not belong to). */
static int authorize(struct api_call *c, const struct api_route *rt) {
  struct api *a = c->a;
  unsigned who = caller_of(a, c->req, &c->account_id);
  if (who == 0) return 1;
  if (a->admin_split &&
      (who == API_OPERATOR) != (http_req_listener(c->req) == API_LISTENER_ADMIN)) {
    /* The operator key works only on the admin listener, account keys only
       on the public one: elsewhere the endpoints are absent. */
    api_not_found(c);
    return 1;
  }
  c->admin = who == API_OPERATOR;
  if (c->admin) c->account_id = 0;
  if (rt->caller & who) return 0;
  if (who == API_ACCOUNT)
    api_error(c->req, 403, "forbidden", NULL, "this endpoint needs the operator key");
  else
    api_error(c->req, 403, "forbidden", NULL,
              "the operator key has no account: use an account key");
  return 1;
}

/* Runs the route: who may call it, its check, the method, the handler. */
static void run(struct api_call *c, const struct api_route *rt, int res) {
  if ((rt->caller & API_KEYED) && authorize(c, rt)) return;
  if (rt->check && rt->check(c)) return;
  if (res == HTTP_ROUTE_NO_METHOD)
    api_not_allowed(c->req, c->m->allow);
  else
    rt->fn(c);
}

void api_handle(void *ud, struct http_req *req) {
  struct api *a = ud;
  struct api_call *c = call_of(a, req);
  const char *path = http_req_path(req);
  const char *bad = bad_encoding(req);
  if (bad) {
    api_error(req, 400, "invalid_encoding", NULL,
              "the request's %s is not valid UTF-8 (after %%-decoding)", bad);
    return;
  }
  const struct api_route *rt = route_of(c);
  if (rt == NULL || wrong_listener(a, req, path)) {
    api_error(req, 404, "not_found", NULL, "no such endpoint: %s", path);
    return;
  }
  run(c, rt, c->res);
}

/* ---- metrics ---------------------------------------------------------------- */

static void hist(struct kk_buf *o, const char *name, const char *help, const uint64_t *buckets,
                 const double *bounds, double scale, double sum, uint64_t count) {
  kk_buf_printf(o, "# HELP %s %s\n# TYPE %s histogram\n", name, help, name);
  uint64_t cum = 0;
  for (int i = 0; i < STORE_HIST_BUCKETS; i++) {
    cum += buckets[i];
    kk_buf_printf(o, "%s_bucket{le=\"%g\"} %llu\n", name, bounds[i] * scale,
                  (unsigned long long)cum);
  }
  cum += buckets[STORE_HIST_BUCKETS];
  kk_buf_printf(o, "%s_bucket{le=\"+Inf\"} %llu\n%s_sum %g\n%s_count %llu\n", name,
                (unsigned long long)cum, name, sum * scale, name, (unsigned long long)count);
}

void api_metrics(struct api *a, struct kk_buf *o) {
  kk_buf_puts(o, "# HELP kaskad_http_responses_total HTTP answers by status class\n"
                 "# TYPE kaskad_http_responses_total counter\n");
  for (int i = 1; i < 6; i++)
    kk_buf_printf(o, "kaskad_http_responses_total{code=\"%dxx\"} %llu\n", i,
                  (unsigned long long)a->http_by_class[i]);
  kk_buf_printf(o,
                "# HELP kaskad_api_messages_accepted_total Messages acknowledged to clients\n"
                "# TYPE kaskad_api_messages_accepted_total counter\n"
                "kaskad_api_messages_accepted_total %llu\n"
                "# HELP kaskad_api_messages_rejected_total Messages refused by validation\n"
                "# TYPE kaskad_api_messages_rejected_total counter\n"
                "kaskad_api_messages_rejected_total %llu\n"
                "# HELP kaskad_api_idempotent_replays_total Repeats answered with the first message\n"
                "# TYPE kaskad_api_idempotent_replays_total counter\n"
                "kaskad_api_idempotent_replays_total %llu\n",
                (unsigned long long)a->accepted, (unsigned long long)a->rejected,
                (unsigned long long)a->duplicates);
  kk_buf_printf(o,
                "# HELP kaskad_api_rate_limited_total Requests refused over a rate limit\n"
                "# TYPE kaskad_api_rate_limited_total counter\n"
                "kaskad_api_rate_limited_total %llu\n"
                "# HELP kaskad_retention_deleted_total Finished messages deleted by retention\n"
                "# TYPE kaskad_retention_deleted_total counter\n"
                "kaskad_retention_deleted_total %llu\n"
                "# HELP kaskad_campaign_reports_total Campaign reports: answered from the one kept"
                " while the campaign runs, or read from the store\n"
                "# TYPE kaskad_campaign_reports_total counter\n"
                "kaskad_campaign_reports_total{from=\"kept\"} %llu\n"
                "kaskad_campaign_reports_total{from=\"store\"} %llu\n",
                (unsigned long long)a->rate_limited, (unsigned long long)a->retention_deleted,
                (unsigned long long)a->reports_kept, (unsigned long long)a->reports_read);
  struct store_stats st;
  store_get_stats(a->store, &st);
  hist(o, "kaskad_store_commit_seconds", "Store transaction time (begin to durable commit)",
       st.commit_hist, store_commit_bounds_ms, 1e-3, st.commit_sum_ms, st.commits);
  hist(o, "kaskad_store_batch_size", "Operations per store commit", st.batch_hist,
       store_batch_bounds, 1, (double)st.batch_sum, st.commits);
  hist(o, "kaskad_store_urgent_wait_seconds",
       "Stream inserts: time from queued to committed (behind the batch under way)",
       st.urgent_hist, store_commit_bounds_ms, 1e-3, st.urgent_sum_ms, st.urgent);
  kk_buf_printf(o, "# HELP kaskad_store_errors_total Failed commits by cause\n"
                   "# TYPE kaskad_store_errors_total counter\n"
                   "kaskad_store_errors_total{kind=\"busy\"} %llu\n"
                   "kaskad_store_errors_total{kind=\"io\"} %llu\n"
                   "kaskad_store_errors_total{kind=\"other\"} %llu\n"
                   "# HELP kaskad_store_lock_retries_total Batches run again after a lock conflict"
                   " with another node\n"
                   "# TYPE kaskad_store_lock_retries_total counter\n"
                   "kaskad_store_lock_retries_total %llu\n"
                   "# HELP kaskad_store_handed_back_total Operations handed back to a later batch"
                   " while another node held their rows\n"
                   "# TYPE kaskad_store_handed_back_total counter\n"
                   "kaskad_store_handed_back_total %llu\n"
                   "# HELP kaskad_store_degraded 1 while the database cannot be written\n"
                   "# TYPE kaskad_store_degraded gauge\nkaskad_store_degraded %d\n"
                   "# HELP kaskad_store_retrying Results of sends waiting to be stored again\n"
                   "# TYPE kaskad_store_retrying gauge\nkaskad_store_retrying %d\n"
                   "# HELP kaskad_store_pending Operations waiting for a commit\n"
                   "# TYPE kaskad_store_pending gauge\nkaskad_store_pending %d\n",
                (unsigned long long)st.errors_busy, (unsigned long long)st.errors_io,
                (unsigned long long)(st.errors - st.errors_busy - st.errors_io),
                (unsigned long long)st.lock_retries, (unsigned long long)st.handed_back,
                st.degraded,
                st.retrying, store_pending(a->store));
  kk_buf_printf(o, "# HELP kaskad_early_refused_total Early provider statuses and receipts refused over a scope's cap\n"
                   "# TYPE kaskad_early_refused_total counter\nkaskad_early_refused_total %llu\n"
                   "# HELP kaskad_early_expired_total Early provider statuses and receipts expired unmatched\n"
                   "# TYPE kaskad_early_expired_total counter\nkaskad_early_expired_total %llu\n"
                   "# HELP kaskad_hooks_limited_total Provider webhook requests answered 429\n"
                   "# TYPE kaskad_hooks_limited_total counter\nkaskad_hooks_limited_total %llu\n",
                (unsigned long long)st.early_refused, (unsigned long long)st.early_expired,
                (unsigned long long)a->hooks_limited);
  if (a->callback) {
    struct callback_stats cs;
    callback_stats(a->callback, &cs);
    kk_buf_printf(o,
                  "# HELP kaskad_callbacks_sent_total Status callbacks answered 2xx\n"
                  "# TYPE kaskad_callbacks_sent_total counter\nkaskad_callbacks_sent_total %llu\n"
                  "# HELP kaskad_callback_failed_tries_total Callback tries that failed (retried)\n"
                  "# TYPE kaskad_callback_failed_tries_total counter\n"
                  "kaskad_callback_failed_tries_total %llu\n"
                  "# HELP kaskad_callbacks_gave_up_total Callbacks dropped after the last try\n"
                  "# TYPE kaskad_callbacks_gave_up_total counter\nkaskad_callbacks_gave_up_total %llu\n"
                  "# HELP kaskad_callbacks_inflight Callback requests in flight\n"
                  "# TYPE kaskad_callbacks_inflight gauge\nkaskad_callbacks_inflight %d\n",
                  (unsigned long long)cs.sent_ok, (unsigned long long)cs.failed_tries,
                  (unsigned long long)cs.gave_up, cs.inflight);
    kk_buf_printf(o,
                  "# HELP kaskad_callbacks_dropped_total Waiting callbacks dropped over an account's cap\n"
                  "# TYPE kaskad_callbacks_dropped_total counter\nkaskad_callbacks_dropped_total %llu\n"
                  "# HELP kaskad_callback_breaker_opens_total Times a callback host's circuit breaker opened\n"
                  "# TYPE kaskad_callback_breaker_opens_total counter\n"
                  "kaskad_callback_breaker_opens_total %llu\n"
                  "# HELP kaskad_callbacks_deferred_total Callbacks put off while their host's breaker was open\n"
                  "# TYPE kaskad_callbacks_deferred_total counter\nkaskad_callbacks_deferred_total %llu\n"
                  "# HELP kaskad_callback_hosts_open Callback hosts whose circuit breaker is open\n"
                  "# TYPE kaskad_callback_hosts_open gauge\nkaskad_callback_hosts_open %d\n",
                  (unsigned long long)cs.dropped, (unsigned long long)cs.breaker_opens,
                  (unsigned long long)cs.deferred, cs.hosts_open);
  }
  dispatch_metrics(a->dispatch, o);
  if (a->cascade) cascade_metrics(a->cascade, o);
  if (a->accept.rules) accept_rules_metrics(a->accept.rules, o);
}
