/*
 * api.c - request routing, authentication and the JSON helpers (see api.h).
 */
#include "api/api.h"

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
#include "cascade/cascade.h"
#include "core/kk_mem.h"
#include "dispatch/dispatch.h"
#include "http/http_server.h"
#include "store/store.h"

#define LOGCTX "api"

/* ---- JSON answers ----------------------------------------------------------- */

static void count_status(struct http_req *req, int status);

void api_json(struct http_req *req, int status, json_t *doc, const char *extra_headers) {
  char *s = json_dumps(doc, JSON_COMPACT | JSON_REAL_PRECISION(12));
  json_decref(doc);
  size_t n = strlen(s);
  s = kk_xrealloc(s, n + 2);
  s[n++] = '\n';
  s[n] = '\0';
  count_status(req, status);
  http_respond(req, status, "application/json", s, n, extra_headers);
  free(s);
}

void api_empty(struct http_req *req, int status) {
  count_status(req, status);
  http_respond(req, status, NULL, "", 0, NULL);
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

void api_error_from(struct http_req *req, const struct api_err *e) {
  json_t *err = json_pack("{s:s, s:s}", "code", e->code, "message", e->message);
  if (e->field) json_object_set_new(err, "field", json_string(e->field));
  kk_info(LOGCTX, "%s %s -> %d %s: %s", http_req_method(req), http_req_path(req), e->status,
          e->code, e->message);
  api_json(req, e->status, json_pack("{s:o}", "error", err), NULL);
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
  if (strcmp(p, "Z") != 0 && strcmp(p, "+00:00") != 0) return KK_EINVAL;
  *ms = (int64_t)timegm(&tm) * 1000 + frac;
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
      if (k->slots[i].account_id) api_keys_add(&bigger, k->slots[i].hash, k->slots[i].account_id);
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

int64_t api_keys_find(const struct api_keys *k, const uint8_t hash[32]) {
  if (k->cap == 0) return 0;
  size_t i = slot_of(k, hash);
  while (k->slots[i].account_id) {
    if (memcmp(k->slots[i].hash, hash, 32) == 0) return k->slots[i].account_id;
    i = (i + 1) & (k->cap - 1);
  }
  return 0;
}

static void load_key(void *arg, const uint8_t hash[32], int64_t account_id) {
  api_keys_add(arg, hash, account_id);
}

int api_init(struct api *a) {
  return store_keys_each(a->store, load_key, &a->keys);
}

void api_fini(struct api *a) {
  free(a->keys.slots);
  a->keys.slots = NULL;
  a->keys.cap = a->keys.n = 0;
}

/* ---- routing ---------------------------------------------------------------- */

static void count_status(struct http_req *req, int status) {
  struct api *a = http_req_data(req);
  if (a && status >= 100 && status < 600) a->http_by_class[status / 100]++;
}

enum caller { CALLER_NONE, CALLER_ADMIN, CALLER_ACCOUNT };

/* Works out who is calling; *account_id is set for account keys. */
static enum caller authenticate(struct api *a, struct http_req *req, int64_t *account_id) {
  const char *h = http_req_header(req, "Authorization");
  if (h == NULL || strncmp(h, "Bearer ", 7) != 0) return CALLER_NONE;
  const char *key = h + 7;
  size_t len = strlen(key);
  if (len == 0 || len > 200) return CALLER_NONE;
  size_t alen = strlen(a->admin_key);
  if (alen && alen == len && CRYPTO_memcmp(key, a->admin_key, len) == 0) return CALLER_ADMIN;
  uint8_t hash[32];
  SHA256((const unsigned char *)key, len, hash);
  *account_id = api_keys_find(&a->keys, hash);
  return *account_id ? CALLER_ACCOUNT : CALLER_NONE;
}

/* Splits "/v1/name/id/sub" into its segments (at most 4); returns the count. */
static int split_path(const char *path, char seg[4][128]) {
  int n = 0;
  const char *p = path;
  while (*p == '/') p++;
  while (*p) {
    if (n == 4) return -1;          /* more segments than any endpoint has */
    const char *e = strchr(p, '/');
    size_t len = e ? (size_t)(e - p) : strlen(p);
    if (len >= 128) return -1;
    memcpy(seg[n], p, len);
    seg[n][len] = '\0';
    n++;
    if (!e) break;
    p = e + 1;
  }
  return n;
}

static void method_not_allowed(struct http_req *req) {
  api_error(req, 405, "method_not_allowed", NULL, "%s is not allowed on %s",
            http_req_method(req), http_req_path(req));
}

void api_handle(void *ud, struct http_req *req) {
  struct api *a = ud;
  http_req_set_data(req, a);
  const char *m = http_req_method(req);
  const char *path = http_req_path(req);

  if (strcmp(path, "/healthz") == 0) {
    if (a->ready && !a->draining) {
      count_status(req, 200);
      http_respond(req, 200, "text/plain", "ok\n", 3, NULL);
    } else {
      count_status(req, 503);
      http_respond(req, 503, "text/plain", "starting or stopping\n", 21, NULL);
    }
    return;
  }
  if (strcmp(path, "/metrics") == 0) {
    struct kk_buf b;
    kk_buf_init(&b, 4 << 20);
    api_metrics(a, &b);
    count_status(req, 200);
    http_respond(req, 200, "text/plain; version=0.0.4", b.p ? b.p : "", b.len, NULL);
    kk_buf_fini(&b);
    return;
  }

  char seg[4][128];
  int n = split_path(path, seg);
  if (n < 2 || strcmp(seg[0], "v1") != 0) {
    api_error(req, 404, "not_found", NULL, "no such endpoint: %s", path);
    return;
  }
  if (strcmp(seg[1], "hooks") == 0) {
    /* Providers authenticate with their own signatures, not API keys. */
    if (n != 4 || a->cascade == NULL) {
      api_error(req, 404, "not_found", NULL, "no such endpoint: %s", path);
      return;
    }
    api_hooks(a, req, seg[2], seg[3]);
    return;
  }
  int64_t account_id = 0;
  enum caller who = authenticate(a, req, &account_id);
  if (who == CALLER_NONE) {
    api_error(req, 401, "unauthorized", NULL,
              "missing or unknown API key (Authorization: Bearer <key>)");
    return;
  }
  const char *coll = seg[1];
  const char *id = n > 2 ? seg[2] : NULL;
  const char *sub = n > 3 ? seg[3] : NULL;

  if (strcmp(coll, "accounts") == 0 || strcmp(coll, "routes") == 0) {
    if (who != CALLER_ADMIN) {
      api_error(req, 403, "forbidden", NULL, "this endpoint needs the operator key");
      return;
    }
    if (coll[0] == 'a')
      api_accounts(a, req, id, sub);
    else if (sub)
      api_error(req, 404, "not_found", NULL, "no such endpoint: %s", path);
    else
      api_routes(a, req, id);
    return;
  }
  if (strcmp(coll, "channels") == 0 && !sub) {
    api_channels(a, req, who == CALLER_ADMIN, account_id, id);
    return;
  }
  if (strcmp(coll, "prices") == 0 && !id) {
    api_prices(a, req, who == CALLER_ADMIN, account_id);
    return;
  }
  if (who != CALLER_ACCOUNT) {
    api_error(req, 403, "forbidden", NULL, "the operator key has no account: use an account key");
    return;
  }
  if (strcmp(coll, "cascades") == 0 && !sub) {
    api_cascades(a, req, account_id, id);
    return;
  }
  if (strcmp(coll, "campaigns") == 0 && id && sub && strcmp(sub, "report") == 0) {
    if (strcmp(m, "GET") == 0)
      api_campaign_report(a, req, account_id, id);
    else
      method_not_allowed(req);
    return;
  }
  if (strcmp(coll, "replies") == 0 && !id) {
    if (strcmp(m, "GET") == 0)
      api_replies_list(a, req, account_id);
    else
      method_not_allowed(req);
    return;
  }
  if (strcmp(coll, "account") == 0 && !id) {
    if (strcmp(m, "GET") == 0)
      api_account_self(a, req, account_id);
    else
      method_not_allowed(req);
    return;
  }
  if (strcmp(coll, "messages") == 0 && !sub) {
    if (id && strcmp(id, "batch") == 0) {
      if (strcmp(m, "POST") == 0)
        api_messages_post(a, req, account_id, 1);
      else
        method_not_allowed(req);
    } else if (id) {
      if (strcmp(m, "GET") == 0)
        api_messages_get(a, req, account_id, id);
      else
        method_not_allowed(req);
    } else if (strcmp(m, "POST") == 0) {
      api_messages_post(a, req, account_id, 0);
    } else if (strcmp(m, "GET") == 0) {
      api_messages_list(a, req, account_id);
    } else {
      method_not_allowed(req);
    }
    return;
  }
  api_error(req, 404, "not_found", NULL, "no such endpoint: %s", path);
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
  struct store_stats st;
  store_get_stats(a->store, &st);
  hist(o, "kaskad_store_commit_seconds", "Store transaction time (begin to durable commit)",
       st.commit_hist, store_commit_bounds_ms, 1e-3, st.commit_sum_ms, st.commits);
  hist(o, "kaskad_store_batch_size", "Operations per store commit", st.batch_hist,
       store_batch_bounds, 1, (double)st.batch_sum, st.commits);
  kk_buf_printf(o, "# HELP kaskad_store_errors_total Failed commits\n"
                   "# TYPE kaskad_store_errors_total counter\nkaskad_store_errors_total %llu\n"
                   "# HELP kaskad_store_pending Operations waiting for a commit\n"
                   "# TYPE kaskad_store_pending gauge\nkaskad_store_pending %d\n",
                (unsigned long long)st.errors, store_pending(a->store));
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
  }
  dispatch_metrics(a->dispatch, o);
  if (a->cascade) cascade_metrics(a->cascade, o);
}
