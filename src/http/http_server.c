/*
 * http_server.c - libmicrohttpd on the libuv loop (see http_server.h).
 *
 * MHD runs in "external epoll" mode: its epoll descriptor is polled by
 * uv_poll, and MHD_run() is called when it is readable and when MHD's own
 * timeout expires. A request whose answer is not ready is suspended with
 * MHD_suspend_connection() and resumed by http_respond().
 */
#include "http/http_server.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "core/kk_err.h"
#include "core/kk_log.h"
#include "core/kk_mem.h"

#define LOGCTX "http"

/* One TCP connection: the deadline by which its current request must have
   arrived whole. libmicrohttpd's own timeout restarts with every byte, so a
   client sending a byte a second would hold its connection forever. */
struct http_conn {
  struct http_conn *prev, *next;
  int fd;
  uint64_t deadline;         /* loop ms; 0 while a request is being answered */
};

struct http_server {
  uv_loop_t *loop;
  struct MHD_Daemon *mhd;
  uv_poll_t poll;
  uv_timer_t timer;
  uv_check_t check;          /* runs MHD after callbacks that resumed requests */
  uv_timer_t reaper;         /* closes connections past their deadline, every second */
  struct http_conn *conns;   /* every open connection */
  uint64_t request_ms;       /* time a request may take to arrive whole */
  int closing;
  int handles_open;
  int need_run;
  int inflight;
  int port;
  int listener;              /* opts.listener */
  char *tls_cert, *tls_key;  /* PEM copies (NULL: plain HTTP); MHD keeps the pointers */
  size_t max_body;
  http_precheck_fn precheck;
  http_handler_fn handler;
  void *ud;
  struct http_server_opts o;  /* as given to http_server_new; o.host is host */
  char host[64];
};

struct http_req {
  struct http_server *srv;
  struct MHD_Connection *conn;
  char method[16];
  char *path;
  char *body;
  size_t body_len;
  int too_big;
  int handled;               /* handler called */
  int suspended;
  struct MHD_Response *resp; /* set by http_respond */
  int status;
  void *data;
  struct http_local *local;  /* set for a local request (no connection) */
  int64_t checked;           /* left by the pre-check for the handler */
  http_req_end_fn on_end;    /* runs once when the request is freed (NULL: none) */
  void *on_end_arg;
  /* a streamed body (http_req_stream_body): pieces go to sink, not to body */
  http_body_fn sink;
  void *sink_arg;
  size_t max_body;           /* this request's limit (the server's unless streamed) */
  int sink_failed;
};

/* What a local request has instead of a connection. */
struct http_local {
  char **query;              /* nquery name, value pairs; values may be NULL */
  int nquery;
  char **headers;            /* nheaders name, value pairs */
  int nheaders;
  http_local_fn done;
  void *ud;
  int answers;
};

static void schedule_run(struct http_server *srv);
static void on_timer(uv_timer_t *h);

static struct http_conn *conn_of(struct MHD_Connection *conn) {
  const union MHD_ConnectionInfo *ci =
      MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
  return ci ? ci->socket_context : NULL;
}

static void on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
                          enum MHD_ConnectionNotificationCode toe) {
  struct http_server *srv = cls;
  struct http_conn *hc = *socket_context;
  if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    hc = kk_xcalloc(1, sizeof *hc);
    hc->fd = ci ? ci->connect_fd : -1;
    hc->deadline = uv_now(srv->loop) + srv->request_ms;
    hc->next = srv->conns;
    if (srv->conns) srv->conns->prev = hc;
    srv->conns = hc;
    *socket_context = hc;
  } else if (hc) {
    if (hc->prev) hc->prev->next = hc->next;
    else srv->conns = hc->next;
    if (hc->next) hc->next->prev = hc->prev;
    free(hc);
    *socket_context = NULL;
  }
}

static void on_reaper(uv_timer_t *t) {
  struct http_server *srv = t->data;
  uint64_t now = uv_now(srv->loop);
  int n = 0;
  for (struct http_conn *hc = srv->conns; hc; hc = hc->next) {
    if (hc->deadline == 0 || now < hc->deadline || hc->fd < 0) continue;
    shutdown(hc->fd, SHUT_RDWR); /* MHD sees the end of the stream and closes it */
    hc->deadline = 0;
    n++;
  }
  if (n) {
    kk_warnx(LOGCTX, "closed %d connections whose request did not arrive within %llu ms", n,
             (unsigned long long)srv->request_ms);
    schedule_run(srv);
  }
}

const char *http_req_method(const struct http_req *req) { return req->method; }
const char *http_req_path(const struct http_req *req) { return req->path; }
/* The first pair named name (any case, as libmicrohttpd matches) or NULL. */
static const char *local_lookup(char **pairs, int n, const char *name) {
  for (int i = 0; i < n; i++)
    if (strcasecmp(pairs[2 * i], name) == 0) return pairs[2 * i + 1];
  return NULL;
}

const char *http_req_header(const struct http_req *req, const char *name) {
  if (req->local) return local_lookup(req->local->headers, req->local->nheaders, name);
  return MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, name);
}
const char *http_req_query(const struct http_req *req, const char *name) {
  if (req->local) return local_lookup(req->local->query, req->local->nquery, name);
  return MHD_lookup_connection_value(req->conn, MHD_GET_ARGUMENT_KIND, name);
}

struct kv_walk {
  http_kv_fn fn;
  void *arg;
  int rc;
};

static enum MHD_Result kv_step(void *cls, enum MHD_ValueKind kind, const char *key,
                               const char *value) {
  struct kv_walk *w = cls;
  w->rc = w->fn(w->arg, key, value);
  return w->rc ? MHD_NO : MHD_YES;
}

static int each_kv(const struct http_req *req, enum MHD_ValueKind kind, char **pairs, int n,
                   http_kv_fn fn, void *arg) {
  if (req->local) {
    for (int i = 0; i < n; i++) {
      int rc = fn(arg, pairs[2 * i], pairs[2 * i + 1]);
      if (rc) return rc;
    }
    return 0;
  }
  struct kv_walk w = {fn, arg, 0};
  MHD_get_connection_values(req->conn, kind, kv_step, &w);
  return w.rc;
}

int http_req_each_header(const struct http_req *req, http_kv_fn fn, void *arg) {
  return each_kv(req, MHD_HEADER_KIND, req->local ? req->local->headers : NULL,
                 req->local ? req->local->nheaders : 0, fn, arg);
}
int http_req_each_query(const struct http_req *req, http_kv_fn fn, void *arg) {
  return each_kv(req, MHD_GET_ARGUMENT_KIND, req->local ? req->local->query : NULL,
                 req->local ? req->local->nquery : 0, fn, arg);
}
const char *http_req_body(const struct http_req *req, size_t *len) {
  *len = req->body_len;
  return req->body ? req->body : "";
}
int http_req_listener(const struct http_req *req) { return req->srv->listener; }
void http_req_set_data(struct http_req *req, void *data) { req->data = data; }
void *http_req_data(const struct http_req *req) { return req->data; }
void http_req_set_checked(struct http_req *req, int64_t v) { req->checked = v; }
int64_t http_req_checked(const struct http_req *req) { return req->checked; }
void http_req_stream_body(struct http_req *req, size_t max, http_body_fn fn, void *arg) {
  req->sink = fn;
  req->sink_arg = arg;
  req->max_body = max;
  if (req->local && req->body_len) {
    /* A local request has its body already: it goes to the sink at once. */
    if (req->body_len > max) req->too_big = 1;
    else if (fn(arg, req->body, req->body_len) != 0) req->sink_failed = 1;
  }
}
int http_req_body_failed(const struct http_req *req) { return req->sink_failed; }
size_t http_req_body_len(const struct http_req *req) { return req->body_len; }

void http_req_on_end(struct http_req *req, http_req_end_fn fn, void *arg) {
  req->on_end = fn;
  req->on_end_arg = arg;
}

/* The request is going: its end hook runs, once. */
static void req_end(struct http_req *req) {
  http_req_end_fn fn = req->on_end;
  req->on_end = NULL;
  if (fn) fn(req->on_end_arg, req);
}

static void add_headers(struct MHD_Response *r, const char *extra) {
  while (extra && *extra) {
    const char *colon = strchr(extra, ':');
    const char *eol = strstr(extra, "\r\n");
    if (!colon || !eol || colon > eol) break;
    char name[128], value[512];
    size_t nl = (size_t)(colon - extra);
    const char *v = colon + 1;
    while (*v == ' ') v++;
    size_t vl = (size_t)(eol - v);
    if (nl < sizeof name && vl < sizeof value) {
      memcpy(name, extra, nl);
      name[nl] = '\0';
      memcpy(value, v, vl);
      value[vl] = '\0';
      MHD_add_response_header(r, name, value);
    }
    extra = eol + 2;
  }
}

static void local_respond(struct http_req *req, int status, const char *content_type,
                          const char *body, size_t len, const char *extra_headers) {
  struct http_local *l = req->local;
  if (l->answers++) return; /* answered already */
  req->status = status;
  struct http_local_answer ans = {status, content_type, extra_headers ? extra_headers : "",
                                  body, len};
  if (l->done) l->done(l->ud, &ans);
}

void http_respond(struct http_req *req, int status, const char *content_type,
                  const char *body, size_t len, const char *extra_headers) {
  if (req->local) {
    local_respond(req, status, content_type, body, len, extra_headers);
    return;
  }
  if (req->resp) return; /* answered already */
  req->resp = MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY);
  if (content_type) MHD_add_response_header(req->resp, "Content-Type", content_type);
  add_headers(req->resp, extra_headers);
  req->status = status;
  if (req->suspended) {
    req->suspended = 0;
    req->srv->inflight--;
    MHD_resume_connection(req->conn);
    schedule_run(req->srv);
  }
}

void http_respond_fd(struct http_req *req, int status, const char *content_type, int fd,
                     uint64_t size, const char *extra_headers) {
  if (req->local) {
    /* A local request: the bytes are read into memory (tests). */
    char *buf = kk_xmalloc(size + 1);
    size_t got = 0;
    while (got < size) {
      ssize_t n = pread(fd, buf + got, size - got, (off_t)got);
      if (n <= 0) break;
      got += (size_t)n;
    }
    close(fd);
    local_respond(req, status, content_type, buf, got, extra_headers);
    free(buf);
    return;
  }
  if (req->resp) {
    close(fd);
    return; /* answered already */
  }
  req->resp = MHD_create_response_from_fd64(size, fd);
  if (req->resp == NULL) {
    close(fd);
    static const char msg[] =
        "{\"error\":{\"code\":\"internal\",\"message\":\"cannot send the file\"}}";
    http_respond(req, 500, "application/json", msg, sizeof msg - 1, NULL);
    return;
  }
  if (content_type) MHD_add_response_header(req->resp, "Content-Type", content_type);
  add_headers(req->resp, extra_headers);
  req->status = status;
  if (req->suspended) {
    req->suspended = 0;
    req->srv->inflight--;
    MHD_resume_connection(req->conn);
    schedule_run(req->srv);
  }
}

static enum MHD_Result queue_resp(struct http_req *req) {
  enum MHD_Result r = MHD_queue_response(req->conn, (unsigned)req->status, req->resp);
  MHD_destroy_response(req->resp);
  req->resp = NULL;
  return r;
}

static void refuse_too_big(struct http_req *req) {
  static const char msg[] =
      "{\"error\":{\"code\":\"body_too_large\",\"message\":\"request body over the limit\"}}";
  kk_warnx(LOGCTX, "%s %s: body over %zu bytes refused", req->method, req->path,
           req->max_body);
  http_respond(req, 413, "application/json", msg, sizeof msg - 1, "Connection: close\r\n");
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version,
                                  const char *upload, size_t *upload_size, void **con_cls) {
  struct http_server *srv = cls;
  struct http_req *req = *con_cls;
  if (req == NULL) {
    req = kk_xcalloc(1, sizeof *req);
    req->srv = srv;
    req->conn = conn;
    snprintf(req->method, sizeof req->method, "%s", method);
    req->path = kk_xstrdup(url);
    *con_cls = req;
    req->max_body = srv->max_body;
    const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Length");
    unsigned long long announced = cl ? strtoull(cl, NULL, 10) : 0;
    /* A body far over the server's limit is refused before anything looks
       at the request, unless it may be one a route streams (the pre-check
       says, and then its own limit applies). */
    if (srv->precheck && (announced <= 2 * (unsigned long long)srv->max_body ||
                          strcmp(method, "POST") == 0)) {
      srv->precheck(srv->ud, req);
      if (req->resp) {
        /* Refused before its body was read: the connection cannot be
           reused, since the body would follow. */
        req->handled = 1;
        MHD_add_response_header(req->resp, "Connection", "close");
        return queue_resp(req);
      }
    }
    if (announced > req->max_body) {
      req->too_big = 1;
      /* A body a little over the limit is read and thrown away, and the
         answer follows it: a client still sending when the connection
         closed would see a reset instead of the 413. A larger one is
         refused before it is sent; MHD closes the connection after. */
      if (announced > 2 * (unsigned long long)req->max_body) {
        req->handled = 1;
        refuse_too_big(req);
        return queue_resp(req);
      }
    }
    return MHD_YES;
  }
  if (*upload_size && req->sink) {
    /* A streamed body: each piece to the sink; its arrival keeps the
       connection's deadline moving (a large upload takes its time). */
    if (!req->too_big && !req->sink_failed && req->body_len + *upload_size <= req->max_body) {
      if (req->sink(req->sink_arg, upload, *upload_size) != 0) req->sink_failed = 1;
      req->body_len += *upload_size;
      struct http_conn *hc = conn_of(conn);
      if (hc && hc->deadline) hc->deadline = uv_now(srv->loop) + srv->request_ms;
    } else if (!req->sink_failed) {
      req->too_big = 1;
    }
    *upload_size = 0;
    return MHD_YES;
  }
  if (*upload_size) {
    if (!req->too_big && req->body_len + *upload_size <= req->max_body) {
      req->body = kk_xrealloc(req->body, req->body_len + *upload_size + 1);
      memcpy(req->body + req->body_len, upload, *upload_size);
      req->body_len += *upload_size;
      req->body[req->body_len] = '\0';
    } else {
      req->too_big = 1;
    }
    *upload_size = 0;
    return MHD_YES;
  }
  if (req->resp) return queue_resp(req);
  if (req->handled) {
    /* Resumed without an answer: cannot happen, answer 500 rather than hang. */
    http_respond(req, 500, "application/json",
                 "{\"error\":{\"code\":\"internal\",\"message\":\"no answer\"}}", 52, NULL);
    return queue_resp(req);
  }
  req->handled = 1;
  struct http_conn *hc = conn_of(conn);
  if (hc) hc->deadline = 0; /* arrived whole */
  if (req->too_big) {
    refuse_too_big(req);
    return queue_resp(req);
  }
  srv->handler(srv->ud, req);
  if (req->resp) return queue_resp(req);
  req->suspended = 1;
  srv->inflight++;
  MHD_suspend_connection(conn);
  return MHD_YES;
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe) {
  struct http_req *req = *con_cls;
  if (req == NULL) return;
  struct http_conn *hc = conn_of(conn);
  if (hc) hc->deadline = uv_now(req->srv->loop) + req->srv->request_ms; /* the next one */
  req_end(req);
  if (req->resp) MHD_destroy_response(req->resp);
  free(req->path);
  free(req->body);
  free(req);
  *con_cls = NULL;
}

static void run_mhd(struct http_server *srv) {
  if (!srv->mhd) return;
  srv->need_run = 0;
  MHD_run(srv->mhd);
  MHD_UNSIGNED_LONG_LONG t;
  if (MHD_get_timeout(srv->mhd, &t) == MHD_YES)
    uv_timer_start(&srv->timer, on_timer, t, 0);
}

static void on_poll(uv_poll_t *h, int status, int events) { run_mhd(h->data); }
static void on_timer(uv_timer_t *h) { run_mhd(h->data); }
static void on_check(uv_check_t *h) {
  struct http_server *srv = h->data;
  if (srv->need_run) run_mhd(srv);
}

static void schedule_run(struct http_server *srv) { srv->need_run = 1; }

static void log_mhd(void *cls, const char *fmt, va_list ap) {
  char line[512];
  vsnprintf(line, sizeof line, fmt, ap);
  kk_warnx(LOGCTX, "%s", line);
}

static void srv_free(struct http_server *srv) {
  free(srv->tls_cert);
  free(srv->tls_key);
  free(srv);
}

struct http_server *http_server_new(uv_loop_t *loop, const struct http_server_opts *opts,
                                    http_handler_fn handler, void *ud) {
  struct http_server *srv = kk_xcalloc(1, sizeof *srv);
  srv->loop = loop;
  srv->handler = handler;
  srv->ud = ud;
  srv->listener = opts->listener;
  srv->max_body = opts->max_body;
  srv->precheck = opts->precheck;
  srv->request_ms = (uint64_t)(opts->conn_timeout_s > 0 ? opts->conn_timeout_s : 30) * 1000;
  srv->o = *opts;
  snprintf(srv->host, sizeof srv->host, "%s", opts->host ? opts->host : "");
  srv->o.host = srv->host;
  /* HTTPS: MHD keeps the pointers, so the copies live as long as the server. */
  if (opts->tls_cert_pem && opts->tls_key_pem) {
    srv->tls_cert = kk_xstrdup(opts->tls_cert_pem);
    srv->tls_key = kk_xstrdup(opts->tls_key_pem);
  }
  srv->o.tls_cert_pem = srv->tls_cert;
  srv->o.tls_key_pem = srv->tls_key;
  return srv;
}

void http_server_free(struct http_server *srv) {
  if (srv) srv_free(srv);
}

int http_server_start(struct http_server *srv) {
  const struct http_server_opts *opts = &srv->o;
  uv_loop_t *loop = srv->loop;
  struct sockaddr_in sa;
  memset(&sa, 0, sizeof sa);
  sa.sin_family = AF_INET;
  sa.sin_port = htons((uint16_t)opts->port);
  if (inet_pton(AF_INET, opts->host, &sa.sin_addr) != 1) {
    kk_error(LOGCTX, "bad listen address %s", opts->host);
    return KK_EINVAL;
  }
  /* HTTPS: libmicrohttpd's GnuTLS with the key material in memory. */
  unsigned tls_flag = 0;
  struct MHD_OptionItem tls_opts[3] = {{MHD_OPTION_END, 0, NULL}};
  if (srv->tls_cert) {
    if (MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES) {
      kk_error(LOGCTX, "this libmicrohttpd was built without TLS: cannot serve HTTPS");
      return KK_EINVAL;
    }
    tls_flag = MHD_USE_TLS;
    tls_opts[0] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_CERT, 0, srv->tls_cert};
    tls_opts[1] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_KEY, 0, srv->tls_key};
  }
  srv->mhd = MHD_start_daemon(
      MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG | MHD_USE_TURBO | tls_flag,
      0, NULL, NULL, on_request, srv,
      MHD_OPTION_EXTERNAL_LOGGER, log_mhd, NULL,
      MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
      MHD_OPTION_NOTIFY_COMPLETED, on_completed, srv,
      MHD_OPTION_NOTIFY_CONNECTION, on_connection, srv,
      MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)(opts->conn_timeout_s > 0 ? opts->conn_timeout_s : 30),
      MHD_OPTION_CONNECTION_LIMIT, (unsigned)(opts->max_conns > 0 ? opts->max_conns : 4096),
      MHD_OPTION_PER_IP_CONNECTION_LIMIT,
      (unsigned)(opts->max_conns_per_ip > 0 ? opts->max_conns_per_ip : 0),
      /* libmicrohttpd zeroes the whole pool after every request: a pool
         no larger than requests need (headers; bodies are copied out as
         they come) keeps that cheap. */
      MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)16 * 1024,
      MHD_OPTION_LISTEN_BACKLOG_SIZE, 1024u,
      MHD_OPTION_ARRAY, tls_opts,
      MHD_OPTION_END);
  const char *scheme = tls_flag ? "https" : "http";
  if (srv->mhd == NULL) {
    kk_error(LOGCTX, "cannot listen on %s://%s:%d", scheme, opts->host, opts->port);
    return KK_EIO;
  }
  const union MHD_DaemonInfo *di = MHD_get_daemon_info(srv->mhd, MHD_DAEMON_INFO_EPOLL_FD);
  const union MHD_DaemonInfo *pi = MHD_get_daemon_info(srv->mhd, MHD_DAEMON_INFO_BIND_PORT);
  srv->port = pi ? pi->port : opts->port;
  uv_poll_init(loop, &srv->poll, di->epoll_fd);
  srv->poll.data = srv;
  uv_poll_start(&srv->poll, UV_READABLE, on_poll);
  uv_timer_init(loop, &srv->timer);
  srv->timer.data = srv;
  uv_check_init(loop, &srv->check);
  srv->check.data = srv;
  uv_check_start(&srv->check, on_check);
  uv_timer_init(loop, &srv->reaper);
  srv->reaper.data = srv;
  uv_timer_start(&srv->reaper, on_reaper, 1000, 1000);
  srv->handles_open = 4;
  run_mhd(srv);
  kk_info(LOGCTX, "listening on %s://%s:%d%s", scheme, opts->host, srv->port,
          tls_flag ? " (TLS)" : "");
  return 0;
}

int http_server_port(const struct http_server *srv) { return srv->port; }
int http_server_inflight(const struct http_server *srv) { return srv->inflight; }

void http_server_quiesce(struct http_server *srv) {
  if (srv->mhd) {
    MHD_socket fd = MHD_quiesce_daemon(srv->mhd);
    if (fd != MHD_INVALID_SOCKET) close(fd);
  }
}

static void on_handle_closed(uv_handle_t *h) {
  struct http_server *srv = h->data;
  if (--srv->handles_open == 0) srv_free(srv);
}

void http_server_stop(struct http_server *srv) {
  if (srv->mhd) {
    MHD_stop_daemon(srv->mhd);
    srv->mhd = NULL;
  }
  uv_close((uv_handle_t *)&srv->poll, on_handle_closed);
  uv_close((uv_handle_t *)&srv->timer, on_handle_closed);
  uv_close((uv_handle_t *)&srv->check, on_handle_closed);
  uv_close((uv_handle_t *)&srv->reaper, on_handle_closed);
}

/* ---- local requests --------------------------------------------------------- */

/* n name, value pairs copied into one malloc'd array (values may be NULL). */
static char **copy_pairs(const char *const *pairs, int n) {
  char **out = kk_xcalloc((size_t)(n > 0 ? 2 * n : 1), sizeof *out);
  for (int i = 0; i < 2 * n; i++) out[i] = pairs[i] ? kk_xstrdup(pairs[i]) : NULL;
  return out;
}

static void free_pairs(char **pairs, int n) {
  for (int i = 0; i < 2 * n; i++) free(pairs[i]);
  free(pairs);
}

struct http_req *http_local_new(const char *method, const char *path,
                                const char *const *query, int nquery,
                                const char *const *headers, int nheaders,
                                const char *body, size_t len, http_local_fn done, void *ud) {
  struct http_req *req = kk_xcalloc(1, sizeof *req);
  struct http_local *l = kk_xcalloc(1, sizeof *l);
  snprintf(req->method, sizeof req->method, "%s", method);
  req->path = kk_xstrdup(path);
  /* The body keeps a NUL after it, as a connection's does. */
  req->body = kk_xmalloc(len + 1);
  if (len) memcpy(req->body, body, len);
  req->body[len] = '\0';
  req->body_len = len;
  req->handled = 1;
  l->query = copy_pairs(query, nquery);
  l->nquery = nquery;
  l->headers = copy_pairs(headers, nheaders);
  l->nheaders = nheaders;
  l->done = done;
  l->ud = ud;
  req->local = l;
  return req;
}

int http_local_answers(const struct http_req *req) { return req->local->answers; }

void http_local_free(struct http_req *req) {
  if (req == NULL) return;
  req_end(req);
  free_pairs(req->local->query, req->local->nquery);
  free_pairs(req->local->headers, req->local->nheaders);
  free(req->local);
  free(req->path);
  free(req->body);
  free(req);
}
