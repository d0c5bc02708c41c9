/*
 * api_guard.c - abuse controls: request rates per key and per account, the
 * keys of an account and their revocation, registered senders and allowed
 * countries, and the retention job that deletes finished messages.
 *
 *   GET    /v1/accounts/{id}/keys   (operator)  -> {"keys":[{prefix,created_at,
 *                                                   revoked_at,active}]}
 *   DELETE /v1/keys/{prefix}        (operator, or an account key for its own
 *                                    account's keys) -> 204
 *
 * A request is one token of its key's bucket and one of its account's, taken
 * before its body is read; a batch is one request (its size is bounded by
 * the batch limit and max_body).
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api_int.h"
#include "core/kk_err.h"
#include "core/kk_log.h"
#include "core/kk_mem.h"
#include "http/http_server.h"
#include "phone/phone.h"
#include "store/store.h"

#define LOGCTX "api"
#define MAX_SENDERS 100
#define MAX_COUNTRIES 100

/* ---- rates -------------------------------------------------------------------- */

struct kk_bucket *api_acct_bucket(struct api_accts *t, int64_t id) {
  if ((t->n + 1) * 2 > t->cap) {
    /* Grows with the accounts that have used a key: bounded by the accounts. */
    struct api_accts bigger = {.cap = t->cap ? t->cap * 2 : 64};
    bigger.slots = kk_xcalloc(bigger.cap, sizeof *bigger.slots);
    for (size_t i = 0; i < t->cap; i++)
      if (t->slots[i].id) *api_acct_bucket(&bigger, t->slots[i].id) = t->slots[i].bucket;
    free(t->slots);
    *t = bigger;
  }
  size_t i = (size_t)((uint64_t)id * 0x9E3779B97F4A7C15ULL >> 20) & (t->cap - 1);
  while (t->slots[i].id && t->slots[i].id != id) i = (i + 1) & (t->cap - 1);
  if (t->slots[i].id == 0) {
    t->slots[i].id = id;
    t->n++;
  }
  return &t->slots[i].bucket;
}

/* ---- keys --------------------------------------------------------------------- */

static void key_row(void *arg, const char *prefix, int64_t created_at, int64_t revoked_at) {
  json_t *arr = arg;
  char created[32], revoked[32];
  api_time(created_at, created);
  json_t *o = json_pack("{s:s, s:s, s:b}", "prefix", prefix, "created_at", created, "active",
                        revoked_at == 0);
  if (revoked_at) {
    api_time(revoked_at, revoked);
    json_object_set_new(o, "revoked_at", json_string(revoked));
  } else {
    json_object_set_new(o, "revoked_at", json_null());
  }
  json_array_append_new(arr, o);
}

/* A key listing being read in the store's pool (key_row fills arr there). */
struct keys_ctx {
  struct http_req *req;
  char account[40];          /* the account's public id */
  json_t *arr;
};

/* Store done callback of a listing: answers and frees c. */
static void on_keys(void *arg, int rc) {
  struct keys_ctx *c = arg;
  if (rc != 0) {
    json_decref(c->arr);
    api_error(c->req, 503, "store_unavailable", NULL, "cannot read the keys now");
  } else {
    api_json(c->req, 200, json_pack("{s:s, s:o}", "account_id", c->account, "keys", c->arr),
             NULL);
  }
  free(c);
}

void api_keys_list(struct api_call *call) {
  /* Freed in on_keys(), which answers (the read runs in the store's pool). */
  struct keys_ctx *c = kk_xcalloc(1, sizeof *c);
  c->req = call->req;
  snprintf(c->account, sizeof c->account, "%s", call->acc->public_id);
  c->arr = json_array();
  store_keys_list_async(call->a->store, call->acc->id, key_row, c->arr, on_keys, c);
}

struct revoke_ctx {
  struct api *a;
  struct http_req *req;
  struct store_key_revoke k;
};

static void on_revoked(void *arg, int rc) {
  struct revoke_ctx *c = arg;
  if (rc == KK_ENOENT) {
    api_error(c->req, 404, "not_found", NULL, "no active key with prefix %s", c->k.prefix);
  } else if (rc) {
    api_error(c->req, 503, "store_unavailable", NULL, "key not revoked: %s", kk_strerror(rc));
  } else {
    /* Committed: the store's note dropped the keys from the cache before
       this answer, so the next request with them is refused. */
    kk_info(LOGCTX, "key %s revoked (%d)", c->k.prefix, c->k.n);
    api_empty(c->req, 204);
  }
  free(c);
}

static int valid_prefix(const char *p) {
  size_t n = strlen(p);
  if (n < 4 || n > 15 || strncmp(p, "kk_", 3) != 0) return 0;
  for (const char *q = p + 3; *q; q++)
    if (!isxdigit((unsigned char)*q)) return 0;
  return 1;
}

/* The operator (account_id 0) revokes any key, an account only its own. */
void api_key_revoke(struct api_call *call) {
  const char *prefix = api_param(call, "prefix");
  if (!valid_prefix(prefix)) {
    api_error(call->req, 404, "not_found", NULL, "no active key with that prefix");
    return;
  }
  /* Freed in on_revoked. */
  struct revoke_ctx *c = kk_xcalloc(1, sizeof *c);
  c->a = call->a;
  c->req = call->req;
  snprintf(c->k.prefix, sizeof c->k.prefix, "%s", prefix);
  c->k.account_id = call->account_id;
  store_key_revoke(call->a->store, &c->k, on_revoked, c);
}

/* ---- senders and countries ------------------------------------------------------ */

static int refuse(struct api_err *e, const char *code, const char *field, const char *msg) {
  e->status = 422;
  e->code = code;
  e->field = field;
  snprintf(e->message, sizeof e->message, "%s", msg);
  return KK_EINVAL;
}

/* A registered sender as it is compared: a number without its '+'. */
static const char *sender_key(const char *s) { return s[0] == '+' ? s + 1 : s; }

int api_senders_parse(json_t *v, char *out, size_t cap, struct api_err *e) {
  static const char rule[] =
      "senders: an array of up to 100 sender names (1 to 11 printable ASCII characters) "
      "or numbers (up to 15 digits)";
  if (!json_is_array(v) || json_array_size(v) > MAX_SENDERS)
    return refuse(e, "invalid_senders", "senders", rule);
  json_t *norm = json_array();
  size_t i;
  json_t *x;
  json_array_foreach(v, i, x) {
    const char *s = json_string_value(x);
    size_t n = s ? strlen(s) : 0;
    int digits = n > 0;
    for (size_t j = 0; j < n; j++) {
      unsigned char ch = (unsigned char)s[j];
      if (ch < 0x20 || ch > 0x7e) n = 0;
      if (!isdigit(ch) && !(j == 0 && ch == '+')) digits = 0;
    }
    if (n == 0 || (digits ? n > 16 : n > 11)) {
      json_decref(norm);
      return refuse(e, "invalid_senders", "senders", rule);
    }
    json_array_append_new(norm, json_string(sender_key(s)));
  }
  char *text = json_dumps(norm, JSON_COMPACT);
  json_decref(norm);
  int ok = text && strlen(text) < cap;
  if (ok) snprintf(out, cap, "%s", text);
  free(text);
  return ok ? 0 : refuse(e, "invalid_senders", "senders", rule);
}

int api_countries_parse(json_t *v, char *out, size_t cap, struct api_err *e) {
  static const char rule[] =
      "countries: an array of ISO 3166 country codes such as \"RU\" (empty: all)";
  if (!json_is_array(v) || json_array_size(v) > MAX_COUNTRIES)
    return refuse(e, "invalid_countries", "countries", rule);
  size_t i;
  json_t *x;
  json_array_foreach(v, i, x) {
    const char *s = json_string_value(x);
    if (!s || strlen(s) != 2 || !isupper((unsigned char)s[0]) || !isupper((unsigned char)s[1]))
      return refuse(e, "invalid_countries", "countries", rule);
  }
  char *text = json_dumps(v, JSON_COMPACT);
  int ok = text && strlen(text) < cap;
  if (ok) snprintf(out, cap, "%s", text);
  free(text);
  return ok ? 0 : refuse(e, "invalid_countries", "countries", rule);
}

int api_roaming_ads_parse(json_t *v, char *out, size_t cap, struct api_err *e) {
  const char *r = json_is_null(v) ? "defer" : json_string_value(v);
  if (r && strcmp(r, "send") == 0) r = "allow";
  if (!r || (strcmp(r, "defer") != 0 && strcmp(r, "drop") != 0 && strcmp(r, "allow") != 0))
    return refuse(e, "invalid_roaming_ads", "roaming_ads", "roaming_ads: defer, drop or allow");
  /* stored empty for the default */
  snprintf(out, cap, "%s", strcmp(r, "defer") == 0 ? "" : r);
  return 0;
}

/* ---- retention ------------------------------------------------------------------- */

struct api_retention {
  struct api *a;
  uv_timer_t timer;
  long long retention_ms;
  struct store_retention step;
  int running;               /* a pass is under way */
  int stopping;
  int closed;                /* its timer is closed */
  int deleted;               /* in this pass */
};

static void retention_next(struct api_retention *r);

static void on_retention_step(void *arg, int rc) {
  struct api_retention *r = arg;
  if (rc) {
    kk_error(LOGCTX, "retention: %s", kk_strerror(rc));
  } else {
    r->deleted += r->step.deleted;
    r->a->retention_deleted += (uint64_t)r->step.deleted;
  }
  if (rc == 0 && r->step.more && !r->stopping) {
    retention_next(r);
    return;
  }
  if (r->deleted) kk_info(LOGCTX, "retention: deleted %d finished messages", r->deleted);
  r->running = 0;
  if (r->closed) free(r);
}

/* One bounded step: a short store operation, so that the writer commits
   other work between steps. */
static void retention_next(struct api_retention *r) {
  int64_t after = r->step.after_id, cutoff = r->step.cutoff;
  memset(&r->step, 0, sizeof r->step);
  r->step.after_id = after;
  r->step.cutoff = cutoff;
  r->step.max = STORE_RETENTION_MAX;
  store_retention(r->a->store, &r->step, on_retention_step, r);
}

static void on_retention_timer(uv_timer_t *t) {
  struct api_retention *r = t->data;
  if (r->running || r->stopping) return;
  r->running = 1;
  r->deleted = 0;
  r->step.after_id = 0;
  r->step.cutoff = store_now_ms() - r->retention_ms;
  retention_next(r);
}

void api_retention_start(struct api *a, long long retention_ms) {
  if (retention_ms <= 0) return;
  /* Freed by api_retention_stop (or by its last step, if one is under way). */
  struct api_retention *r = kk_xcalloc(1, sizeof *r);
  r->a = a;
  r->retention_ms = retention_ms;
  uv_timer_init(a->loop, &r->timer);
  r->timer.data = r;
  /* Often enough that messages go soon after they pass the limit. */
  long long every = retention_ms / 2;
  if (every > 60000) every = 60000;
  if (every < 1000) every = 1000;
  uv_timer_start(&r->timer, on_retention_timer, (uint64_t)every, (uint64_t)every);
  a->retention = r;
}

static void on_retention_closed(uv_handle_t *h) {
  struct api_retention *r = h->data;
  r->closed = 1;
  if (!r->running) free(r);
}

void api_retention_stop(struct api *a) {
  struct api_retention *r = a->retention;
  if (r == NULL) return;
  a->retention = NULL;
  r->stopping = 1;
  uv_close((uv_handle_t *)&r->timer, on_retention_closed);
}
