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
#include "core/kk_utf8.h"
#include "http/http_client.h"

#define LOGCTX "callback"
#define BATCH_MAX 256                      /* outbox rows read at once */
#define MAX_BACKOFF_MS (3600LL * 1000)     /* longest delay between tries */
#define MAX_RESPONSE_BODY (64 * 1024)      /* response bytes read, then dropped */
#define STOP_GRACE_MAX_MS 3000             /* longest wait for requests at stop */
#define ACCOUNTS_MAX 64                    /* accounts with due rows read at once */
#define HOSTS_MAX 256                      /* circuit breakers kept */
#define HOST_KEY_MAX 160                   /* bytes of a host:port key */
#define TRIM_MAX_DELETE 10000              /* waiting rows dropped at most per run */
#define CLAIM_LEASE_MS (5LL * 60 * 1000)   /* a claimed row is this node's that long */

/* The circuit breaker of one host: closed (open_until 0), open (until
   open_until) or half-open (open_until passed; one probe may go). */
struct host {
  char key[HOST_KEY_MAX];            /* "" when the slot is free */
  int fails;                         /* failed tries in a row */
  int probing;                       /* 1: the half-open probe is under way */
  int64_t open_until;
  int64_t used;                      /* last use, for eviction */
};

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
  int probe;                         /* 1: the half-open probe of its host */
  char host[HOST_KEY_MAX];           /* its circuit breaker's key */
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
  int64_t rr_after;                  /* round robin: the account served last */
  int want_room, want_limit;         /* want_rows() of the account being claimed */
  uv_timer_t trim_timer;             /* drops waiting rows over the cap */
  int trimming;                      /* 1: a trim is queued in the store */
  struct store_outbox_trim trim;
  struct host hosts[HOSTS_MAX];
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

/* ---- circuit breakers ----------------------------------------------------- */

/* Writes the "host:port" part of url (lower case) into out. */
static void host_key(const char *url, char *out, size_t cap) {
  const char *p = strstr(url, "://");
  p = p ? p + 3 : url;
  size_t n = 0;
  while (p[n] && p[n] != '/' && p[n] != '?' && p[n] != '#') n++;
  /* Credentials are not part of the host. */
  const char *at = memchr(p, '@', n);
  if (at) {
    n -= (size_t)(at + 1 - p);
    p = at + 1;
  }
  size_t i = 0;
  for (; i < n && i + 1 < cap; i++) {
    char ch = p[i];
    out[i] = (ch >= 'A' && ch <= 'Z') ? (char)(ch + 32) : ch;
  }
  out[i] = '\0';
}

/* The breaker of key, created closed when absent (evicting the least
   recently used closed one, or the least recently used of all). */
static struct host *host_get(struct callback *c, const char *key, int64_t now) {
  struct host *free_slot = NULL, *lru = NULL, *lru_closed = NULL;
  for (int i = 0; i < HOSTS_MAX; i++) {
    struct host *h = &c->hosts[i];
    if (h->key[0] == '\0') {
      if (!free_slot) free_slot = h;
      continue;
    }
    if (strcmp(h->key, key) == 0) {
      h->used = now;
      return h;
    }
    if (!lru || h->used < lru->used) lru = h;
    if (h->open_until == 0 && !h->probing && (!lru_closed || h->used < lru_closed->used))
      lru_closed = h;
  }
  struct host *h = free_slot ? free_slot : lru_closed ? lru_closed : lru;
  memset(h, 0, sizeof *h);
  snprintf(h->key, sizeof h->key, "%s", key);
  h->used = now;
  return h;
}

/* Records the outcome of a try for its host's breaker. A failure that
   says nothing about the host (a 4xx other than 429) counts as neither. */
static void host_result(struct callback *c, struct request *r, long status) {
  int64_t now = store_now_ms();
  struct host *h = host_get(c, r->host, now);
  if (r->probe) h->probing = 0;
  if (status >= 200 && status <= 299) {
    if (h->open_until) kk_info(LOGCTX, "host %s answers again: circuit closed", h->key);
    h->fails = 0;
    h->open_until = 0;
    return;
  }
  if (status != 0 && status != 429 && status < 500) return;
  h->fails++;
  if (r->probe || (h->open_until == 0 && h->fails >= c->o.breaker_failures)) {
    h->open_until = now + c->o.breaker_cooldown_ms;
    c->st.breaker_opens++;
    kk_warnx(LOGCTX, "host %s: %d failed tries in a row: circuit open for %ld ms", h->key,
             h->fails, c->o.breaker_cooldown_ms);
  }
}

/* ---- the in-flight set ---------------------------------------------------- */

/* Rows of account_id in the in-flight set. */
static int account_inflight(const struct callback *c, int64_t account_id) {
  int n = 0;
  for (const struct request *r = c->requests; r; r = r->next)
    if (r->account_id == account_id) n++;
  return n;
}

static int in_flight(const struct callback *c, int64_t outbox_id) {
  for (const struct request *r = c->requests; r; r = r->next)
    if (r->outbox_id == outbox_id) return 1;
  return 0;
}

char *callback_payload(const struct store_outbox *row) {
  if (row->payload && row->payload[0]) return kk_xstrdup(row->payload);
  json_t *j = json_pack("{s:s, s:s, s:s, s:s, s:I}", "id", row->public_id, "status",
                        row->status, "channel", row->channel, "to", row->to, "at",
                        (json_int_t)row->at);
  if (j == NULL) return NULL;
  json_object_set_new(j, "cost", json_real((double)row->cost / 10000.0));
  if (row->has_error) {
    /* Provider and SMSC texts are bytes: only UTF-8 goes into the JSON. */
    char eb[256];
    kk_utf8_sanitize(eb, sizeof eb, row->error, strlen(row->error));
    json_object_set_new(j, "error", json_string(eb));
  }
  char *payload = json_dumps(j, JSON_COMPACT | JSON_REAL_PRECISION(12));
  json_decref(j);
  return payload;
}

/* Takes the row's url, and its payload or what it is built from; the
   request is freed by request_free(). */
static struct request *request_new(struct callback *c, struct store_outbox *row) {
  struct request *r = kk_xcalloc(1, sizeof *r);
  r->c = c;
  r->outbox_id = row->id;
  r->account_id = row->account_id;
  r->tries = row->tries;
  r->url = row->url;
  if (row->payload && row->payload[0]) {
    r->payload = row->payload;
  } else {
    r->payload = callback_payload(row);
    free(row->payload);
  }
  row->url = row->payload = NULL;
  host_key(r->url, r->host, sizeof r->host);
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
  if (r->probe && !r->running) {
    /* A probe that never went out proves nothing: another one may go. */
    host_get(c, r->host, store_now_ms())->probing = 0;
    r->probe = 0;
  }
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
  host_result(c, r, resp->status);
  char error[CURL_ERROR_SIZE + 32];
  if (resp->status)
    snprintf(error, sizeof error, "HTTP %ld", resp->status);
  else
    snprintf(error, sizeof error, "%s", resp->error);
  finish(r, resp->status >= 200 && resp->status <= 299, 0, error);
}

/* ---- sending -------------------------------------------------------------- */

/* Puts r's row off until due_at without a try; r leaves the in-flight set
   once that is stored. */
static void defer(struct request *r, int64_t due_at) {
  struct callback *c = r->c;
  c->st.deferred++;
  free(r->url);
  free(r->payload);
  r->url = r->payload = NULL;
  store_outbox_defer(c->store, r->outbox_id, due_at, on_result_stored, r);
}

/* Whether r may go to its host now: 1, or 0 when it was put off. */
static int breaker_allows(struct request *r) {
  struct callback *c = r->c;
  int64_t now = store_now_ms();
  struct host *h = host_get(c, r->host, now);
  if (h->open_until == 0) return 1;
  if (now < h->open_until) {
    defer(r, h->open_until);
    return 0;
  }
  if (h->probing) {
    /* Half-open with its probe under way: the probe decides. */
    defer(r, now + c->o.timeout_ms);
    return 0;
  }
  h->probing = 1;
  r->probe = 1;
  kk_info(LOGCTX, "host %s: cool-down over, sending one probe", h->key);
  return 1;
}

/* Starts the try of r; any failure to start is a failed try. */
static void start(struct request *r) {
  struct callback *c = r->c;
  if (r->payload == NULL) {
    /* Losing one callback is better than retrying what cannot be built. */
    finish(r, 0, 1, "the payload cannot be built");
    return;
  }
  if (!breaker_allows(r)) return;
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

/*
 * How many due rows of an account to claim now (store_outbox_claim): enough
 * to fill the account's and the deliverer's room (rows in flight may be
 * among them); 0 when the account is full, -1 when the deliverer is.
 */
static int want_rows(void *arg, int64_t account_id) {
  struct callback *c = arg;
  if (c->nrequests >= c->o.max_inflight) {
    c->more = 1;
    return -1;
  }
  int busy = account_inflight(c, account_id);
  int room = c->o.per_account - busy;
  if (c->o.max_inflight - c->nrequests < room) room = c->o.max_inflight - c->nrequests;
  if (room <= 0) {
    c->more = 1;
    return 0;
  }
  c->want_room = room;
  c->want_limit = room + busy < BATCH_MAX ? room + busy : BATCH_MAX;
  return c->want_limit;
}

/* The rows of an account claimed for it: a request for each one not yet in
   flight, up to the room want_rows() found. */
static void take_rows(void *arg, int64_t account_id, struct store_outbox *rows, int n) {
  struct callback *c = arg;
  (void)account_id;
  int room = c->want_room;
  if (n == c->want_limit) c->more = 1;
  for (int i = 0; i < n; i++) {
    struct store_outbox *row = &rows[i];
    if (!in_flight(c, row->id) && room > 0) {
      room--;
      start(request_new(c, row));
    } else {
      free(row->url);
      free(row->payload);
    }
  }
}

/* Serves the accounts with due rows in turn, starting after the one served
   last, until the deliverer is full. */
static void on_poll(uv_timer_t *t) {
  struct callback *c = t->data;
  if (c->stopping) return;
  c->more = 0;
  if (c->nrequests >= c->o.max_inflight) {
    c->more = 1;
    return;
  }
  struct store_outbox_claim cl = {
      .now = store_now_ms(), .after = c->rr_after, .lease_ms = CLAIM_LEASE_MS,
      .accounts_max = ACCOUNTS_MAX, .rows = c->batch, .cap = BATCH_MAX,
      .want = want_rows, .take = take_rows, .arg = c,
  };
  store_outbox_claim(c->store, &cl);
  c->rr_after = cl.after;
  if (cl.more) c->more = 1;   /* more accounts may be due: the next poll goes on */
}

/* ---- the cap on waiting rows ---------------------------------------------- */

static void on_trimmed(void *arg, int rc) {
  struct callback *c = arg;
  c->trimming = 0;
  if (rc == 0 && c->trim.dropped > 0) {
    c->st.dropped += (uint64_t)c->trim.dropped;
    for (int i = 0; i < c->trim.naccounts; i++)
      kk_warnx(LOGCTX, "account %lld: %lld waiting callbacks over the cap of %ld dropped (oldest first)",
               (long long)c->trim.account_id[i], (long long)c->trim.account_dropped[i],
               c->o.queue_per_account);
  } else if (rc != 0) {
    kk_error(LOGCTX, "dropping waiting callbacks over the cap failed: %s", kk_strerror(rc));
  }
  if (c->stopping) maybe_shut(c);
}

static void on_trim_timer(uv_timer_t *t) {
  struct callback *c = t->data;
  if (c->stopping || c->trimming) return;
  c->trimming = 1;
  c->trim.keep = c->o.queue_per_account;
  c->trim.max_delete = TRIM_MAX_DELETE;
  store_outbox_trim(c->store, &c->trim, on_trimmed, c);
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
  if (c->o.per_account <= 0) c->o.per_account = 8;
  if (c->o.queue_per_account <= 0) c->o.queue_per_account = 10000;
  if (c->o.breaker_failures <= 0) c->o.breaker_failures = 5;
  if (c->o.breaker_cooldown_ms <= 0) c->o.breaker_cooldown_ms = 30000;
  if (c->o.trim_ms <= 0) c->o.trim_ms = 5000;
  uv_timer_init(loop, &c->poll_timer);
  c->poll_timer.data = c;
  uv_timer_init(loop, &c->trim_timer);
  c->trim_timer.data = c;
  return c;
}

void callback_start(struct callback *c) {
  uv_timer_start(&c->poll_timer, on_poll, 0, (uint64_t)c->o.poll_ms);
  uv_timer_start(&c->trim_timer, on_trim_timer, (uint64_t)c->o.trim_ms,
                 (uint64_t)c->o.trim_ms);
}

void callback_kick(struct callback *c) {
  if (!c->stopping) uv_timer_start(&c->poll_timer, on_poll, 0, (uint64_t)c->o.poll_ms);
}

void callback_stats(const struct callback *c, struct callback_stats *out) {
  *out = c->st;
  out->inflight = c->nrequests;
  int64_t now = store_now_ms();
  for (int i = 0; i < HOSTS_MAX; i++)
    if (c->hosts[i].key[0] && c->hosts[i].open_until > now) out->hosts_open++;
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
  http_client_stop(h, on_http_closed, c);
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
  uv_timer_stop(&c->trim_timer);
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
    if (c->nrequests > 0 || c->trimming) return;
    c->shut = 1;
    close_http(c);
    c->closing += 2;
    uv_close((uv_handle_t *)&c->poll_timer, on_handle_closed);
    uv_close((uv_handle_t *)&c->trim_timer, on_handle_closed);
    return;
  }
  if (c->closing > 0) return;
  void (*done)(void *) = c->stop_done;
  void *ud = c->stop_ud;
  free(c);
  if (done) done(ud);
}
