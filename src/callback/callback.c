/*
 * callback.c - customer status callbacks, sent with http_client (libcurl
 * multi on the loop; see callback.h).
 *
 * A request lives from the moment its outbox row is read until the store has
 * committed the result of its try; the list of live requests is the in-flight
 * set, so a row is never read into a second request meanwhile. The set holds
 * at most max_inflight requests, which bounds memory together with the
 * fixed-size read batch and the response body cap.
 */
#include "callback/callback.h"

#include <curl/curl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/kk_crypto.h"
#include "core/kk_err.h"
#include "core/kk_log.h"
#include "core/kk_mem.h"
#include "http/http_client.h"

#define LOGCTX "callback"
#define BATCH_MAX 256                      /* outbox rows read at once */
#define MAX_BACKOFF_MS (3600LL * 1000)     /* longest delay between tries */
#define MAX_RESPONSE_BODY (64 * 1024)      /* response bytes read, then dropped */
#define STOP_GRACE_MAX_MS 3000             /* longest wait for requests at stop */

/* One outbox row being delivered, from its read to its committed result. */
struct request {
  struct callback *c;
  struct request *prev, *next;       /* in c->requests */
  int64_t outbox_id;
  int64_t account_id;
  int tries;                         /* failed tries before this one */
  char *url;                         /* owned; NULL once the try is over */
  char *payload;                     /* owned; NULL once the try is over */
  int running;                       /* 1: its HTTP request is on the wire */
};

struct callback {
  uv_loop_t *loop;
  struct store *store;
  struct callback_opts o;            /* with defaults filled in */
  struct http_client *http;          /* NULL once closed */
  uv_timer_t poll_timer;             /* outbox polling; at stop, the grace timer */
  struct request *requests;          /* the in-flight set */
  int nrequests;
  int more;                          /* 1: the last read may have left due rows */
  int stopping;                      /* 1: callback_stop() was called */
  int aborting;                      /* 1: the stop grace is over */
  int shut;                          /* 1: handles are closing */
  int closing;                       /* closes whose callback is pending */
  void (*stop_done)(void *ud);
  void *stop_ud;
  struct callback_stats st;
  struct store_outbox batch[BATCH_MAX];
};

static void on_poll(uv_timer_t *t);
static void maybe_shut(struct callback *c);

/* ---- signing -------------------------------------------------------------- */

int callback_sign(const char *secret, long long t, const char *body, size_t len,
                  char *out, size_t cap) {
  size_t keylen = secret ? strlen(secret) : 0;
  if (keylen == 0) return KK_EINVAL;
  /* The signed message is "<t>." followed by the body. */
  char prefix[32];
  int np = snprintf(prefix, sizeof prefix, "%lld.", t);
  const void *parts[2] = {prefix, body};
  size_t lens[2] = {(size_t)np, len};
  uint8_t mac[32];
  if (kk_hmac_sha256(secret, keylen, parts, lens, 2, mac) != 0) return KK_EIO;
  char hex[65];
  kk_hex(mac, 32, hex);
  int n = snprintf(out, cap, "t=%lld,v1=%s", t, hex);
  if (n < 0 || (size_t)n >= cap) return KK_ENOSPC;
  return 0;
}

int64_t callback_backoff_ms(long first_ms, int failed_tries) {
  int64_t d = first_ms;
  for (int i = 1; i < failed_tries && d < MAX_BACKOFF_MS; i++) d *= 3;
  return d < MAX_BACKOFF_MS ? d : MAX_BACKOFF_MS;
}

/* ---- the in-flight set ---------------------------------------------------- */

static int in_flight(const struct callback *c, int64_t outbox_id) {
  for (const struct request *r = c->requests; r; r = r->next)
    if (r->outbox_id == outbox_id) return 1;
  return 0;
}

/* Takes the row's url and payload; the request is freed by request_free(). */
static struct request *request_new(struct callback *c, struct store_outbox *row) {
  struct request *r = kk_xcalloc(1, sizeof *r);
  r->c = c;
  r->outbox_id = row->id;
  r->account_id = row->account_id;
  r->tries = row->tries;
  r->url = row->url;
  r->payload = row->payload;
  row->url = row->payload = NULL;
  r->next = c->requests;
  if (c->requests) c->requests->prev = r;
  c->requests = r;
  c->nrequests++;
  return r;
}

/* Removes r from the in-flight set and frees it. */
static void request_free(struct request *r) {
  struct callback *c = r->c;
  if (r->prev)
    r->prev->next = r->next;
  else
    c->requests = r->next;
  if (r->next) r->next->prev = r->prev;
  c->nrequests--;
  free(r->url);
  free(r->payload);
  free(r);
}

/* ---- results -------------------------------------------------------------- */

/* Copies the message's public id from the payload into out, for log lines. */
static void payload_msg_id(const char *payload, char *out, size_t cap) {
  json_t *j = payload ? json_loads(payload, 0, NULL) : NULL;
  const char *id = json_string_value(json_object_get(j, "id"));
  snprintf(out, cap, "%s", id ? id : "?");
  json_decref(j);
}

/* Store done callback of a try's result: the row may be read again now. */
static void on_result_stored(void *arg, int rc) {
  struct request *r = arg;
  struct callback *c = r->c;
  if (rc != 0)
    kk_error(LOGCTX, "outbox row %lld: result not stored: %s", (long long)r->outbox_id,
             kk_strerror(rc));
  request_free(r);
  if (c->stopping)
    maybe_shut(c);
  else if (c->more)
    uv_timer_start(&c->poll_timer, on_poll, 0, (uint64_t)c->o.poll_ms);
}

/*
 * Ends a try: ok says whether the customer took it; permanent failures are
 * not retried. Queues the row's deletion or its next due time; the request
 * leaves the in-flight set when that has been committed.
 */
static void finish(struct request *r, int ok, int permanent, const char *error) {
  struct callback *c = r->c;
  if (ok) {
    c->st.sent_ok++;
    store_outbox_result(c->store, r->outbox_id, 1, 0, NULL, on_result_stored, r);
  } else {
    int failed = r->tries + 1;
    char msg_id[48];
    payload_msg_id(r->payload, msg_id, sizeof msg_id);
    c->st.failed_tries++;
    if (permanent || failed >= c->o.max_tries) {
      char why[200];
      snprintf(why, sizeof why, "gave up: %s", error);
      c->st.gave_up++;
      kk_warnx(LOGCTX, "message %s: gave up after %d tries to %s: %s", msg_id, failed,
               r->url, error);
      store_outbox_result(c->store, r->outbox_id, 1, 0, why, on_result_stored, r);
    } else {
      int64_t delay = callback_backoff_ms(c->o.backoff_ms, failed);
      kk_info(LOGCTX, "message %s: try %d to %s failed: %s; next in %lld ms", msg_id,
              failed, r->url, error, (long long)delay);
      store_outbox_result(c->store, r->outbox_id, 0, store_now_ms() + delay, error,
                          on_result_stored, r);
    }
  }
  free(r->url);
  free(r->payload);
  r->url = r->payload = NULL;
}

/* http_client: the answer to a try (or its abort at stop). */
static void on_response(void *arg, const struct http_client_resp *resp) {
  struct request *r = arg;
  struct callback *c = r->c;
  r->running = 0;
  if (c->aborting && resp->status == 0) {
    /* Aborted at stop: the row stays due, to be sent after a restart. */
    kk_warnx(LOGCTX, "outbox row %lld: request to %s aborted at stop", (long long)r->outbox_id,
             r->url);
    request_free(r);
    maybe_shut(c);
    return;
  }
  char error[CURL_ERROR_SIZE + 32];
  if (resp->status)
    snprintf(error, sizeof error, "HTTP %ld", resp->status);
  else
    snprintf(error, sizeof error, "%s", resp->error);
  finish(r, resp->status >= 200 && resp->status <= 299, 0, error);
}

/* ---- sending -------------------------------------------------------------- */

/* Starts the try of r; any failure to start is a failed try. */
static void start(struct request *r) {
  struct callback *c = r->c;
  struct store_account acc;
  int rc = store_account_get_by_id(c->store, r->account_id, &acc);
  if (rc != 0) {
    char error[96];
    snprintf(error, sizeof error, "account %lld: %s", (long long)r->account_id, kk_strerror(rc));
    finish(r, 0, rc == KK_ENOENT, error);
    return;
  }
  char sig[160], header[200];
  rc = callback_sign(acc.callback_secret, (long long)time(NULL), r->payload,
                     strlen(r->payload), sig, sizeof sig);
  if (rc != 0) {
    finish(r, 0, 0, "cannot sign the payload");
    return;
  }
  snprintf(header, sizeof header, "X-Kaskad-Signature: %s", sig);
  const char *headers[] = {"Content-Type: application/json", header};
  struct http_client_req req = {.method = "POST", .url = r->url, .headers = headers,
                                .nheaders = 2, .body = r->payload,
                                .body_len = strlen(r->payload), .timeout_ms = c->o.timeout_ms};
  if (strncmp(r->url, "http://", 7) != 0 && strncmp(r->url, "https://", 8) != 0) {
    finish(r, 0, 1, "not an http(s) URL");
    return;
  }
  if (c->http == NULL || http_client_do(c->http, &req, on_response, r) != 0) {
    finish(r, 0, 0, "cannot start the request");
    return;
  }
  r->running = 1;
}

/* Reads due rows and starts a request for each one not yet in flight. */
static void on_poll(uv_timer_t *t) {
  struct callback *c = t->data;
  if (c->stopping) return;
  if (c->nrequests >= c->o.max_inflight) {
    c->more = 1;
    return;
  }
  /* Rows in flight may be among those read, so read enough to fill the room. */
  int limit = c->o.max_inflight < BATCH_MAX ? c->o.max_inflight : BATCH_MAX;
  int n = 0;
  if (store_outbox_due(c->store, store_now_ms(), c->batch, limit, &n) != 0) return;
  c->more = n == limit;
  for (int i = 0; i < n; i++) {
    struct store_outbox *row = &c->batch[i];
    int busy = in_flight(c, row->id);
    if (!busy && c->nrequests < c->o.max_inflight) {
      start(request_new(c, row));
    } else {
      if (!busy) c->more = 1;
      free(row->url);
      free(row->payload);
    }
  }
}

/* ---- life cycle ----------------------------------------------------------- */

struct callback *callback_new(uv_loop_t *loop, struct store *store,
                              const struct callback_opts *opts) {
  struct http_client *http = http_client_new(loop, MAX_RESPONSE_BODY);
  if (http == NULL) return NULL;
  /* Freed in maybe_shut(), after callback_stop(). */
  struct callback *c = kk_xcalloc(1, sizeof *c);
  c->loop = loop;
  c->store = store;
  c->http = http;
  if (opts) c->o = *opts;
  if (c->o.timeout_ms <= 0) c->o.timeout_ms = 10000;
  if (c->o.max_inflight <= 0) c->o.max_inflight = 64;
  if (c->o.max_tries <= 0) c->o.max_tries = 12;
  if (c->o.backoff_ms <= 0) c->o.backoff_ms = 5000;
  if (c->o.poll_ms <= 0) c->o.poll_ms = 200;
  uv_timer_init(loop, &c->poll_timer);
  c->poll_timer.data = c;
  uv_timer_start(&c->poll_timer, on_poll, 0, (uint64_t)c->o.poll_ms);
  return c;
}

void callback_kick(struct callback *c) {
  if (!c->stopping) uv_timer_start(&c->poll_timer, on_poll, 0, (uint64_t)c->o.poll_ms);
}

void callback_stats(const struct callback *c, struct callback_stats *out) {
  *out = c->st;
  out->inflight = c->nrequests;
}

static void on_http_closed(void *ud) {
  struct callback *c = ud;
  c->closing--;
  maybe_shut(c);
}

/* Closes the HTTP client once: requests still running end with status 0. */
static void close_http(struct callback *c) {
  if (c->http == NULL) return;
  struct http_client *h = c->http;
  c->http = NULL;
  c->closing++;
  http_client_close(h, on_http_closed, c);
}

/* The stop grace is over: aborts the transfers still running. */
static void on_grace_over(uv_timer_t *t) {
  struct callback *c = t->data;
  c->aborting = 1;
  close_http(c);
  maybe_shut(c);
}

void callback_stop(struct callback *c, void (*done)(void *ud), void *ud) {
  if (c->stopping) return;
  c->stopping = 1;
  c->stop_done = done;
  c->stop_ud = ud;
  long grace = c->o.timeout_ms < STOP_GRACE_MAX_MS ? c->o.timeout_ms : STOP_GRACE_MAX_MS;
  uv_timer_start(&c->poll_timer, on_grace_over, (uint64_t)grace, 0);
  maybe_shut(c);
}

static void on_handle_closed(uv_handle_t *h) {
  struct callback *c = h->data;
  c->closing--;
  maybe_shut(c);
}

/*
 * Once stopping and no request is left: closes the HTTP client and the timer
 * and, when the last close callback has run, frees c and calls stop_done.
 */
static void maybe_shut(struct callback *c) {
  if (!c->stopping) return;
  if (!c->shut) {
    if (c->nrequests > 0) return;
    c->shut = 1;
    close_http(c);
    c->closing++;
    uv_close((uv_handle_t *)&c->poll_timer, on_handle_closed);
    return;
  }
  if (c->closing > 0) return;
  void (*done)(void *) = c->stop_done;
  void *ud = c->stop_ud;
  free(c);
  if (done) done(ud);
}
