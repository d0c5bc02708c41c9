/*
 * callback.c - customer status callbacks over libcurl's multi-socket
 * interface, driven by libuv (see callback.h).
 *
 * libcurl tells us which sockets to watch (on_curl_socket) and when to wake
 * it up (on_curl_timer); each watched socket gets a uv_poll_t, and the wake-up
 * is one uv_timer_t. When a socket is ready or the timer fires, we hand the
 * event to curl_multi_socket_action() and then collect finished transfers.
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
  CURL *easy;                        /* the transfer; NULL when none runs */
  struct curl_slist *headers;        /* owned by the transfer */
  size_t body_len;                   /* response body bytes seen */
  int body_capped;                   /* 1: the body passed MAX_RESPONSE_BODY */
  char errbuf[CURL_ERROR_SIZE];      /* libcurl's detail on failure */
};

/* A socket libcurl asked us to watch. */
struct sock {
  struct callback *c;
  struct sock *prev, *next;          /* in c->socks while open */
  curl_socket_t fd;
  uv_poll_t poll;
};

struct callback {
  uv_loop_t *loop;
  struct store *store;
  struct callback_opts o;            /* with defaults filled in */
  CURLM *multi;                      /* NULL once shut down */
  uv_timer_t poll_timer;             /* outbox polling; at stop, the grace timer */
  uv_timer_t curl_timer;             /* libcurl's wake-up */
  struct request *requests;          /* the in-flight set */
  int nrequests;
  struct sock *socks;                /* sockets being watched */
  int more;                          /* 1: the last read may have left due rows */
  int stopping;                      /* 1: callback_stop() was called */
  int shut;                          /* 1: handles are closing */
  int closing;                       /* handles whose close callback is pending */
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

/* Ends the transfer, if one runs (the row is left as it is in the store). */
static void request_end_transfer(struct request *r) {
  if (r->easy == NULL) return;
  curl_multi_remove_handle(r->c->multi, r->easy);
  curl_easy_cleanup(r->easy);
  curl_slist_free_all(r->headers);
  r->easy = NULL;
  r->headers = NULL;
}

/* Removes r from the in-flight set and frees it. */
static void request_free(struct request *r) {
  struct callback *c = r->c;
  request_end_transfer(r);
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
  request_end_transfer(r);
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

/* Hands every finished transfer to finish(). */
static void collect_done(struct callback *c) {
  CURLMsg *m;
  int left;
  while ((m = curl_multi_info_read(c->multi, &left)) != NULL) {
    if (m->msg != CURLMSG_DONE) continue;
    /* m is invalid once the handle is removed: copy what is needed first. */
    CURL *easy = m->easy_handle;
    CURLcode res = m->data.result;
    char *priv = NULL;
    long code = 0;
    curl_easy_getinfo(easy, CURLINFO_PRIVATE, &priv);
    struct request *r = (struct request *)priv;
    curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &code);
    int status_ok = code >= 200 && code <= 299;
    char error[CURL_ERROR_SIZE + 32];
    if (res == CURLE_OK || (res == CURLE_WRITE_ERROR && r->body_capped)) {
      /* A 2xx whose body we stopped reading was still received. */
      snprintf(error, sizeof error, "HTTP %ld", code);
      finish(r, status_ok, 0, error);
    } else {
      snprintf(error, sizeof error, "%s", r->errbuf[0] ? r->errbuf : curl_easy_strerror(res));
      int permanent = res == CURLE_UNSUPPORTED_PROTOCOL || res == CURLE_URL_MALFORMAT;
      finish(r, 0, permanent, error);
    }
  }
}

/* ---- libcurl driven by libuv ---------------------------------------------- */

static void on_sock_closed(uv_handle_t *h) {
  struct sock *k = h->data;
  struct callback *c = k->c;
  free(k);
  c->closing--;
  maybe_shut(c);
}

/* Stops watching a socket; k is freed in its close callback. */
static void sock_close(struct sock *k) {
  struct callback *c = k->c;
  if (k->prev)
    k->prev->next = k->next;
  else
    c->socks = k->next;
  if (k->next) k->next->prev = k->prev;
  c->closing++;
  uv_close((uv_handle_t *)&k->poll, on_sock_closed);
}

static void on_sock_event(uv_poll_t *p, int status, int events) {
  struct sock *k = p->data;
  struct callback *c = k->c;
  int flags = 0;
  if (status < 0) flags |= CURL_CSELECT_ERR;
  if (events & UV_READABLE) flags |= CURL_CSELECT_IN;
  if (events & UV_WRITABLE) flags |= CURL_CSELECT_OUT;
  int running;
  curl_multi_socket_action(c->multi, k->fd, flags, &running);
  collect_done(c);
}

/* libcurl: start, change or stop watching fd. */
static int on_curl_socket(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp) {
  struct callback *c = userp;
  struct sock *k = socketp;
  if (what == CURL_POLL_REMOVE) {
    if (k) sock_close(k);
    return 0;
  }
  if (k == NULL) {
    /* Freed in on_sock_closed(), after sock_close(). */
    k = kk_xcalloc(1, sizeof *k);
    k->c = c;
    k->fd = fd;
    if (uv_poll_init_socket(c->loop, &k->poll, fd) != 0) {
      kk_error(LOGCTX, "cannot watch socket %d", (int)fd);
      free(k);
      return -1;
    }
    k->poll.data = k;
    k->next = c->socks;
    if (c->socks) c->socks->prev = k;
    c->socks = k;
    curl_multi_assign(c->multi, fd, k);
  }
  int events = 0;
  if (what & CURL_POLL_IN) events |= UV_READABLE;
  if (what & CURL_POLL_OUT) events |= UV_WRITABLE;
  uv_poll_start(&k->poll, events, on_sock_event);
  return 0;
}

static void on_curl_timeout(uv_timer_t *t) {
  struct callback *c = t->data;
  int running;
  curl_multi_socket_action(c->multi, CURL_SOCKET_TIMEOUT, 0, &running);
  collect_done(c);
}

/* libcurl: call me back in timeout_ms (-1: no need). */
static int on_curl_timer(CURLM *multi, long timeout_ms, void *userp) {
  struct callback *c = userp;
  if (timeout_ms < 0)
    uv_timer_stop(&c->curl_timer);
  else
    uv_timer_start(&c->curl_timer, on_curl_timeout, (uint64_t)timeout_ms, 0);
  return 0;
}

/* Counts the response body and drops it; stops reading past the cap. */
static size_t on_body(char *data, size_t size, size_t nmemb, void *ud) {
  struct request *r = ud;
  size_t n = size * nmemb;
  r->body_len += n;
  if (r->body_len > MAX_RESPONSE_BODY) {
    r->body_capped = 1;
    return 0;
  }
  return n;
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
  r->headers = curl_slist_append(r->headers, "Content-Type: application/json");
  r->headers = curl_slist_append(r->headers, header);
  r->headers = curl_slist_append(r->headers, "Expect:");
  r->easy = curl_easy_init();
  if (r->easy == NULL || r->headers == NULL) {
    finish(r, 0, 0, "cannot set up the request");
    return;
  }
  CURL *e = r->easy;
  curl_easy_setopt(e, CURLOPT_PRIVATE, r);
  curl_easy_setopt(e, CURLOPT_URL, r->url);
  curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, c->o.timeout_ms);
  curl_easy_setopt(e, CURLOPT_POST, 1L);
  curl_easy_setopt(e, CURLOPT_POSTFIELDS, r->payload);
  curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, (long)strlen(r->payload));
  curl_easy_setopt(e, CURLOPT_HTTPHEADER, r->headers);
  curl_easy_setopt(e, CURLOPT_USERAGENT, "kaskad");
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(e, CURLOPT_WRITEDATA, r);
  curl_easy_setopt(e, CURLOPT_ERRORBUFFER, r->errbuf);
  if (curl_multi_add_handle(c->multi, e) != CURLM_OK) {
    curl_easy_cleanup(e);
    r->easy = NULL;
    finish(r, 0, 0, "cannot start the request");
  }
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
  CURLM *multi = curl_multi_init();
  if (multi == NULL) {
    kk_error(LOGCTX, "cannot start libcurl");
    return NULL;
  }
  /* Freed in on_handle_closed(), after callback_stop(). */
  struct callback *c = kk_xcalloc(1, sizeof *c);
  c->loop = loop;
  c->store = store;
  if (opts) c->o = *opts;
  if (c->o.timeout_ms <= 0) c->o.timeout_ms = 10000;
  if (c->o.max_inflight <= 0) c->o.max_inflight = 64;
  if (c->o.max_tries <= 0) c->o.max_tries = 12;
  if (c->o.backoff_ms <= 0) c->o.backoff_ms = 5000;
  if (c->o.poll_ms <= 0) c->o.poll_ms = 200;
  c->multi = multi;
  curl_multi_setopt(multi, CURLMOPT_SOCKETFUNCTION, on_curl_socket);
  curl_multi_setopt(multi, CURLMOPT_SOCKETDATA, c);
  curl_multi_setopt(multi, CURLMOPT_TIMERFUNCTION, on_curl_timer);
  curl_multi_setopt(multi, CURLMOPT_TIMERDATA, c);
  /* Keep one idle connection per possible request, for reuse. */
  curl_multi_setopt(multi, CURLMOPT_MAXCONNECTS, (long)c->o.max_inflight);
  uv_timer_init(loop, &c->poll_timer);
  uv_timer_init(loop, &c->curl_timer);
  c->poll_timer.data = c->curl_timer.data = c;
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

/* The stop grace is over: aborts the transfers still running. */
static void on_grace_over(uv_timer_t *t) {
  struct callback *c = t->data;
  struct request *r = c->requests;
  while (r) {
    struct request *next = r->next;
    if (r->easy) {
      kk_warnx(LOGCTX, "outbox row %lld: request to %s aborted at stop", (long long)r->outbox_id,
               r->url);
      request_free(r);
    }
    r = next;
  }
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
 * Once stopping and no request is left: ends libcurl, closes every handle
 * and, when the last close callback has run, frees c and calls stop_done.
 */
static void maybe_shut(struct callback *c) {
  if (!c->stopping) return;
  if (!c->shut) {
    if (c->nrequests > 0) return;
    c->shut = 1;
    /* Cleaning up may report sockets to remove through on_curl_socket. */
    curl_multi_cleanup(c->multi);
    c->multi = NULL;
    while (c->socks) sock_close(c->socks);
    c->closing += 2;
    uv_close((uv_handle_t *)&c->poll_timer, on_handle_closed);
    uv_close((uv_handle_t *)&c->curl_timer, on_handle_closed);
    return;
  }
  if (c->closing > 0) return;
  void (*done)(void *) = c->stop_done;
  void *ud = c->stop_ud;
  free(c);
  if (done) done(ud);
}
