/*
 * http_client.c - outbound HTTP(S)/SMTP over libcurl's multi-socket
 * interface, driven by libuv (see http_client.h).
 *
 * libcurl says which sockets to watch (on_curl_socket) and when to wake it
 * (on_curl_timer); each socket gets a uv_poll_t, the wake-up is one
 * uv_timer_t. When a socket is ready or the timer fires, the event goes to
 * curl_multi_socket_action() and finished transfers are collected.
 *
 * A socket's uv_poll_t lives as long as the socket (libcurl closes it through
 * on_close_socket), not just while a transfer uses it: a kept-alive
 * connection stays watched for reading between requests, so the next request
 * on it changes nothing in epoll. Starting and stopping a poll handle per
 * request cost several epoll_ctl calls each time.
 *
 * A call owns copies of everything it sends (URL, headers, body) until its
 * transfer ends; then its callback runs and the call is freed.
 *
 * Where a request may connect is decided in on_open_socket(), which libcurl
 * calls with each address it is about to connect to (after DNS, so a name
 * that resolves to a refused address is caught, every time it is resolved).
 * A refused address gets no socket; libcurl then tries the host's next
 * address or fails the transfer, which ends with "address_not_allowed".
 */
#include "http/http_client.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/kk_buf.h"
#include "core/kk_err.h"
#include "core/kk_log.h"
#include "core/kk_mem.h"

#define LOGCTX "http-client"
#define DEFAULT_MAX_BODY (64 * 1024)
#define DEFAULT_TIMEOUT_MS 10000

/* One request in flight. Freed by call_free() after its callback. */
struct call {
  struct http_client *c;
  struct call *prev, *next;          /* in c->calls */
  CURL *easy;
  struct curl_slist *headers;        /* owned */
  struct curl_slist *rcpt;           /* SMTP recipients, owned */
  char *body;                        /* request body copy, owned */
  size_t body_len, body_off;         /* SMTP upload position */
  struct kk_buf resp;                /* response body, capped */
  int capped;                        /* 1: the response passed the cap */
  char retry_after[64];
  char errbuf[CURL_ERROR_SIZE];
  char refused[96];                  /* the last address refused, "" if none */
  int smtp;                          /* an SMTP upload (its handle is not kept) */
  http_client_cb cb;
  void *arg;
};

/* A socket of libcurl's, from its first use to its close; freed in the
   poll handle's close callback. */
struct sock {
  struct http_client *c;
  struct sock *prev, *next;
  curl_socket_t fd;
  int events;                        /* what the poll handle watches now */
  int in_use;                        /* 1: a transfer asked for it; 0: idle */
  uv_poll_t poll;
};

struct http_client {
  uv_loop_t *loop;
  CURLM *multi;
  uv_timer_t timer;
  struct call *calls;
  int ncalls;
  struct sock *socks;
  struct sock **byfd;                /* socks by descriptor, nbyfd long */
  size_t nbyfd;
  size_t max_body;
  CURL *idle[256];                   /* finished HTTP handles kept for reuse */
  int nidle;
  int closing;                       /* 1: http_client_stop() was called */
  int pending_closes;                /* handles whose close callback is due */
  void (*close_done)(void *ud);
  void *close_ud;
};

static void maybe_free(struct http_client *c);

/* The operator's allow list: set once at start, read by every client. */
static struct kk_net_allow allowed;

void http_client_allow(const struct kk_net_allow *allow) {
  if (allow)
    allowed = *allow;
  else
    memset(&allowed, 0, sizeof allowed);
}

const struct kk_net_allow *http_client_allowed(void) { return &allowed; }

/* ---- calls ------------------------------------------------------------- */

static void call_unlink(struct call *k) {
  struct http_client *c = k->c;
  if (k->prev)
    k->prev->next = k->next;
  else
    c->calls = k->next;
  if (k->next) k->next->prev = k->prev;
  c->ncalls--;
}

static void call_free(struct call *k) {
  struct http_client *c = k->c;
  if (k->easy) {
    curl_multi_remove_handle(c->multi, k->easy);
    /* A handle is cheaper to reset than to make again. */
    if (!c->closing && !k->smtp && c->nidle < (int)(sizeof c->idle / sizeof c->idle[0])) {
      curl_easy_reset(k->easy);
      c->idle[c->nidle++] = k->easy;
    } else {
      curl_easy_cleanup(k->easy);
    }
  }
  curl_slist_free_all(k->headers);
  curl_slist_free_all(k->rcpt);
  free(k->body);
  kk_buf_fini(&k->resp);
  free(k);
}

/* Runs the callback once and frees the call. */
static void call_finish(struct call *k, long status, const char *error) {
  struct http_client_resp r;
  memset(&r, 0, sizeof r);
  r.status = status;
  r.body = k->resp.p ? k->resp.p : "";
  r.body_len = k->resp.len;
  r.retry_after = k->retry_after[0] ? k->retry_after : NULL;
  r.error = error ? error : "";
  r.refused = error && (strncmp(error, "address_not_allowed:", 20) == 0 ||
                        strncmp(error, "tls_required:", 13) == 0);
  if (k->easy) {
    double t = 0;
    curl_easy_getinfo(k->easy, CURLINFO_TOTAL_TIME, &t);
    r.total_ms = t * 1000.0;
  }
  call_unlink(k);
  k->cb(k->arg, &r);
  call_free(k);
}

static void collect_done(struct http_client *c) {
  CURLMsg *m;
  int left;
  while (c->multi && (m = curl_multi_info_read(c->multi, &left)) != NULL) {
    if (m->msg != CURLMSG_DONE) continue;
    CURL *easy = m->easy_handle;
    CURLcode res = m->data.result;
    char *priv = NULL;
    long code = 0;
    curl_easy_getinfo(easy, CURLINFO_PRIVATE, &priv);
    curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &code);
    struct call *k = (struct call *)priv;
    if (res == CURLE_OK || (res == CURLE_WRITE_ERROR && k->capped)) {
      call_finish(k, code, NULL);
    } else {
      /* SMTP refusals end with an error but carry the server's code. */
      char err[CURL_ERROR_SIZE];
      if (k->refused[0] && res == CURLE_COULDNT_CONNECT)
        snprintf(err, sizeof err, "address_not_allowed: %s", k->refused);
      else if (res == CURLE_USE_SSL_FAILED)
        snprintf(err, sizeof err, "tls_required: the SMTP server offers no STARTTLS "
                                  "(an smtp_url ending in " HTTP_CLIENT_SMTP_PLAIN
                                  " sends in the clear)");
      else
        snprintf(err, sizeof err, "%s", k->errbuf[0] ? k->errbuf : curl_easy_strerror(res));
      int smtp_code = code >= 400 && code < 600 &&
                      (res == CURLE_LOGIN_DENIED || res == CURLE_SEND_ERROR ||
                       res == CURLE_RECV_ERROR || res == CURLE_WEIRD_SERVER_REPLY ||
                       res == CURLE_UPLOAD_FAILED || res == CURLE_QUOTE_ERROR);
      call_finish(k, smtp_code ? code : 0, err);
    }
  }
}

/* ---- libcurl driven by libuv --------------------------------------------- */

static void on_handle_closed(uv_handle_t *h) {
  struct http_client *c = h->data;
  c->pending_closes--;
  maybe_free(c);
}

static void on_sock_closed(uv_handle_t *h) {
  struct sock *s = h->data;
  struct http_client *c = s->c;
  free(s);
  c->pending_closes--;
  maybe_free(c);
}

static void sock_close(struct sock *s) {
  struct http_client *c = s->c;
  if ((size_t)s->fd < c->nbyfd && c->byfd[s->fd] == s) c->byfd[s->fd] = NULL;
  if (s->prev)
    s->prev->next = s->next;
  else
    c->socks = s->next;
  if (s->next) s->next->prev = s->prev;
  c->pending_closes++;
  uv_close((uv_handle_t *)&s->poll, on_sock_closed);
}

static void on_sock_event(uv_poll_t *p, int status, int events);

/* Watches what is wanted, touching the poll handle only on a change. */
static void sock_watch(struct sock *s, int events) {
  if (events == s->events) return;
  s->events = events;
  if (events)
    uv_poll_start(&s->poll, events, on_sock_event);
  else
    uv_poll_stop(&s->poll);
}

static void on_sock_event(uv_poll_t *p, int status, int events) {
  struct sock *s = p->data;
  struct http_client *c = s->c;
  if (!s->in_use) {
    /* An idle kept-alive connection: the server closed it (or sent what
       nobody asked for). libcurl finds out when it next tries to reuse it;
       until then there is nothing to watch. */
    sock_watch(s, 0);
    return;
  }
  int flags = 0;
  if (status < 0) flags |= CURL_CSELECT_ERR;
  if (events & UV_READABLE) flags |= CURL_CSELECT_IN;
  if (events & UV_WRITABLE) flags |= CURL_CSELECT_OUT;
  int running;
  curl_multi_socket_action(c->multi, s->fd, flags, &running);
  collect_done(c);
}

static struct sock *sock_of(struct http_client *c, curl_socket_t fd) {
  return fd >= 0 && (size_t)fd < c->nbyfd ? c->byfd[fd] : NULL;
}

static int on_curl_socket(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp) {
  struct http_client *c = userp;
  struct sock *s = socketp ? socketp : sock_of(c, fd);
  if (what == CURL_POLL_REMOVE) {
    /* Between transfers: keep watching for the server closing it. */
    if (s) {
      s->in_use = 0;
      sock_watch(s, s->events ? UV_READABLE : 0);
    }
    return 0;
  }
  if (s == NULL) {
    /* Freed in on_sock_closed(), after on_close_socket(). */
    s = kk_xcalloc(1, sizeof *s);
    s->c = c;
    s->fd = fd;
    if (uv_poll_init_socket(c->loop, &s->poll, fd) != 0) {
      kk_error(LOGCTX, "cannot watch socket %d", (int)fd);
      free(s);
      return -1;   /* curl's socket callback contract: -1 fails the transfer */
    }
    s->poll.data = s;
    s->next = c->socks;
    if (c->socks) c->socks->prev = s;
    c->socks = s;
    if ((size_t)fd >= c->nbyfd) {
      size_t n = c->nbyfd ? c->nbyfd : 64;
      while (n <= (size_t)fd) n *= 2;
      c->byfd = kk_xrealloc(c->byfd, n * sizeof *c->byfd);
      memset(c->byfd + c->nbyfd, 0, (n - c->nbyfd) * sizeof *c->byfd);
      c->nbyfd = n;
    }
    c->byfd[fd] = s;
  }
  if (socketp == NULL) curl_multi_assign(c->multi, fd, s);
  s->in_use = 1;
  int events = 0;
  if (what & CURL_POLL_IN) events |= UV_READABLE;
  if (what & CURL_POLL_OUT) events |= UV_WRITABLE;
  sock_watch(s, events);
  return 0;
}

/* libcurl is about to connect to address: a socket when it may, else none
   (and the call remembers why). */
static curl_socket_t on_open_socket(void *clientp, curlsocktype purpose,
                                    struct curl_sockaddr *address) {
  struct call *k = clientp;
  (void)purpose;
  char text[64];
  const char *why = NULL;
  if (!kk_net_sockaddr_allowed(&allowed, &address->addr, text, sizeof text, &why)) {
    snprintf(k->refused, sizeof k->refused, "%s is a %s address", text, why);
    kk_warnx(LOGCTX, "connection to %s refused: a %s address (outbound_allow)", text, why);
    return CURL_SOCKET_BAD;
  }
  return socket(address->family, address->socktype | SOCK_CLOEXEC, address->protocol);
}

/* Copies url into out[cap] without the "?tls=off" suffix; 1 when it had it. */
static int smtp_plain(const char *url, char *out, size_t cap) {
  size_t n = strlen(url), s = sizeof HTTP_CLIENT_SMTP_PLAIN - 1;
  int plain = n >= s && strcmp(url + n - s, HTTP_CLIENT_SMTP_PLAIN) == 0;
  if (plain) n -= s;
  snprintf(out, cap, "%.*s", (int)n, url);
  return plain;
}

/* libcurl closes a socket: its poll handle goes first. */
static int on_close_socket(void *clientp, curl_socket_t fd) {
  struct http_client *c = clientp;
  struct sock *s = sock_of(c, fd);
  if (s) sock_close(s);
  return close(fd);
}

static void on_curl_timeout(uv_timer_t *t) {
  struct http_client *c = t->data;
  int running;
  curl_multi_socket_action(c->multi, CURL_SOCKET_TIMEOUT, 0, &running);
  collect_done(c);
}

static int on_curl_timer(CURLM *multi, long timeout_ms, void *userp) {
  struct http_client *c = userp;
  if (timeout_ms < 0)
    uv_timer_stop(&c->timer);
  else
    uv_timer_start(&c->timer, on_curl_timeout, (uint64_t)timeout_ms, 0);
  return 0;
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *ud) {
  struct call *k = ud;
  size_t n = size * nmemb;
  if (kk_buf_append(&k->resp, data, n) != 0) {
    k->capped = 1;
    return 0;
  }
  return n;
}

static size_t on_header(char *data, size_t size, size_t nmemb, void *ud) {
  struct call *k = ud;
  size_t n = size * nmemb;
  static const char name[] = "retry-after:";
  if (n > sizeof name - 1 && strncasecmp(data, name, sizeof name - 1) == 0) {
    size_t i = sizeof name - 1, j = n;
    while (i < n && (data[i] == ' ' || data[i] == '\t')) i++;
    while (j > i && (data[j - 1] == '\r' || data[j - 1] == '\n' || data[j - 1] == ' ')) j--;
    size_t len = j - i < sizeof k->retry_after - 1 ? j - i : sizeof k->retry_after - 1;
    memcpy(k->retry_after, data + i, len);
    k->retry_after[len] = '\0';
  }
  return n;
}

/* SMTP upload: hands out the message body. */
static size_t on_read(char *buf, size_t size, size_t nmemb, void *ud) {
  struct call *k = ud;
  size_t room = size * nmemb, left = k->body_len - k->body_off;
  size_t n = left < room ? left : room;
  if (n) memcpy(buf, k->body + k->body_off, n);
  k->body_off += n;
  return n;
}

/* ---- API ------------------------------------------------------------------- */

struct http_client *http_client_new(uv_loop_t *loop, size_t max_body) {
  CURLM *multi = curl_multi_init();
  if (multi == NULL) {
    kk_error(LOGCTX, "cannot start libcurl");
    return NULL;
  }
  /* Freed in maybe_free() after http_client_stop(). */
  struct http_client *c = kk_xcalloc(1, sizeof *c);
  c->loop = loop;
  c->multi = multi;
  c->max_body = max_body ? max_body : DEFAULT_MAX_BODY;
  curl_multi_setopt(multi, CURLMOPT_SOCKETFUNCTION, on_curl_socket);
  curl_multi_setopt(multi, CURLMOPT_SOCKETDATA, c);
  curl_multi_setopt(multi, CURLMOPT_TIMERFUNCTION, on_curl_timer);
  curl_multi_setopt(multi, CURLMOPT_TIMERDATA, c);
  curl_multi_setopt(multi, CURLMOPT_MAXCONNECTS, 2048L);
  curl_multi_setopt(multi, CURLMOPT_MAX_HOST_CONNECTIONS, 1024L);
  uv_timer_init(loop, &c->timer);
  c->timer.data = c;
  return c;
}

int http_client_do(struct http_client *c, const struct http_client_req *req,
                   http_client_cb cb, void *arg) {
  if (c->closing || req->url == NULL || cb == NULL) return KK_EINVAL;
  int smtp = strncasecmp(req->url, "smtp://", 7) == 0 || strncasecmp(req->url, "smtps://", 8) == 0;
  if (smtp && strlen(req->url) >= 2048) return KK_EINVAL;
  /* Freed by call_free() once its callback has run. */
  struct call *k = kk_xcalloc(1, sizeof *k);
  k->c = c;
  k->cb = cb;
  k->arg = arg;
  kk_buf_init(&k->resp, c->max_body);
  k->smtp = smtp;
  /* SMTP uploads are rare: they get a handle of their own. */
  k->easy = !smtp && c->nidle > 0 ? c->idle[--c->nidle] : curl_easy_init();
  if (k->easy == NULL) {
    call_free(k);
    return KK_EIO;
  }
  CURL *e = k->easy;
  for (int i = 0; i < req->nheaders; i++) k->headers = curl_slist_append(k->headers, req->headers[i]);
  k->headers = curl_slist_append(k->headers, "Expect:");
  if (req->body) {
    k->body = kk_xmalloc(req->body_len + 1);
    memcpy(k->body, req->body, req->body_len);
    k->body[req->body_len] = '\0';
    k->body_len = req->body_len;
  }
  curl_easy_setopt(e, CURLOPT_PRIVATE, k);
  curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(e, CURLOPT_OPENSOCKETFUNCTION, on_open_socket);
  curl_easy_setopt(e, CURLOPT_OPENSOCKETDATA, k);
  curl_easy_setopt(e, CURLOPT_PROXY, "");
  curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, req->timeout_ms > 0 ? req->timeout_ms : DEFAULT_TIMEOUT_MS);
  curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, 5000L);
  curl_easy_setopt(e, CURLOPT_ERRORBUFFER, k->errbuf);
  curl_easy_setopt(e, CURLOPT_CLOSESOCKETFUNCTION, on_close_socket);
  curl_easy_setopt(e, CURLOPT_CLOSESOCKETDATA, c);
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(e, CURLOPT_WRITEDATA, k);
  if (smtp) {
    /* libcurl copies the URL. */
    char url[2048];
    int plain = smtp_plain(req->url, url, sizeof url);
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "smtp,smtps");
    /* smtps:// is TLS from the start; smtp:// must upgrade (STARTTLS). */
    if (strncasecmp(url, "smtp://", 7) == 0)
      curl_easy_setopt(e, CURLOPT_USE_SSL, plain ? (long)CURLUSESSL_NONE : (long)CURLUSESSL_ALL);
    if (req->mail_from) curl_easy_setopt(e, CURLOPT_MAIL_FROM, req->mail_from);
    if (req->mail_rcpt) k->rcpt = curl_slist_append(NULL, req->mail_rcpt);
    curl_easy_setopt(e, CURLOPT_MAIL_RCPT, k->rcpt);
    if (req->username) curl_easy_setopt(e, CURLOPT_USERNAME, req->username);
    if (req->password) curl_easy_setopt(e, CURLOPT_PASSWORD, req->password);
    curl_easy_setopt(e, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(e, CURLOPT_READFUNCTION, on_read);
    curl_easy_setopt(e, CURLOPT_READDATA, k);
    curl_easy_setopt(e, CURLOPT_INFILESIZE, (long)k->body_len);
  } else {
    curl_easy_setopt(e, CURLOPT_URL, req->url);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_USERAGENT, "kaskad");
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, k);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, k->headers);
    const char *method = req->method ? req->method : "GET";
    if (strcmp(method, "GET") == 0) {
      curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
    } else {
      curl_easy_setopt(e, CURLOPT_POST, 1L);
      curl_easy_setopt(e, CURLOPT_POSTFIELDS, k->body ? k->body : "");
      curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, (long)k->body_len);
    }
    if (strcmp(method, "GET") != 0 && strcmp(method, "POST") != 0)
      curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
  }
  k->next = c->calls;
  if (c->calls) c->calls->prev = k;
  c->calls = k;
  c->ncalls++;
  if (curl_multi_add_handle(c->multi, e) != CURLM_OK) {
    call_unlink(k);
    curl_easy_cleanup(e);
    k->easy = NULL;
    call_free(k);
    return KK_EIO;
  }
  return 0;
}

int http_client_active(const struct http_client *c) { return c->ncalls; }

static void maybe_free(struct http_client *c) {
  if (!c->closing || c->pending_closes > 0 || c->calls) return;
  void (*done)(void *) = c->close_done;
  void *ud = c->close_ud;
  free(c->byfd);
  free(c);
  if (done) done(ud);
}

void http_client_stop(struct http_client *c, void (*done)(void *ud), void *ud) {
  if (c->closing) return;
  c->closing = 1;
  c->close_done = done;
  c->close_ud = ud;
  while (c->calls) call_finish(c->calls, 0, "closed");
  while (c->nidle > 0) curl_easy_cleanup(c->idle[--c->nidle]);
  /* Cleaning up may report sockets to remove through on_curl_socket. */
  curl_multi_cleanup(c->multi);
  c->multi = NULL;
  while (c->socks) sock_close(c->socks);
  c->pending_closes++;
  uv_close((uv_handle_t *)&c->timer, on_handle_closed);
}
