/*
 * h2o_uv.c - the same bench server as mhd_uv.c on libh2o (the libuv build
 * of h2o's library), one libuv loop, one thread, HTTP/1.1.
 *
 *   h2o_uv PORT [TIMEOUT_S]     (TIMEOUT_S defaults to 30: http1 req_timeout)
 *
 *   GET  /ping   200 "ok"
 *   POST /echo   a JSON body in, 202 and a ~200-byte JSON out, at once
 *   POST /later  the same, answered from a 1 ms uv_timer: the handler returns
 *                and h2o_send_inline() is called later from the timer
 *   bodies over 1 MiB: 413 (max_request_entity_size, before the handler)
 *
 * h2o hands a request to the handler once its whole body has arrived
 * (Content-Length or chunked), as kaskad's http_server.c does.
 */
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include <h2o.h>

#define MAX_BODY (1024 * 1024)

static h2o_globalconf_t config;
static h2o_context_t ctx;
static h2o_accept_ctx_t accept_ctx;
static uv_tcp_t listener;
static uv_signal_t sig_term, sig_int;
static unsigned long long seq;
static int pending, stopping;

/* The same reply as mhd_uv.c builds. */
static size_t make_reply(const char *body, size_t len, char *out, size_t cap) {
  while (len && (*body == ' ' || *body == '\t' || *body == '\r' || *body == '\n')) body++, len--;
  if (len < 2 || body[0] != '{' || memchr(body, '}', len) == NULL) return 0;
  const char *key = memmem(body, len, "\"to\"", 4);
  if (!key) return 0;
  const char *p = key + 4, *end = body + len;
  while (p < end && (*p == ' ' || *p == ':')) p++;
  if (p >= end || *p != '"') return 0;
  p++;
  const char *q = memchr(p, '"', (size_t)(end - p));
  if (!q || q - p > 32) return 0;
  int n = snprintf(out, cap,
                   "{\"id\":\"01HZX%019llu\",\"status\":\"accepted\",\"to\":\"%.*s\","
                   "\"parts\":1,\"encoding\":\"gsm7\",\"body_bytes\":%zu,"
                   "\"route\":\"default\",\"created_at\":\"2026-01-01T00:00:00.000Z\"}",
                   ++seq, (int)(q - p), p, len);
  return n > 0 && (size_t)n < cap ? (size_t)n : 0;
}

static void respond(h2o_req_t *req, int status, const char *reason, const char *type,
                    const char *body, size_t len) {
  req->res.status = status;
  req->res.reason = reason;
  h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL, type, strlen(type));
  req->res.content_length = len;
  h2o_send_inline(req, body, len); /* copies body into the request's pool */
}

static void reply(h2o_req_t *req) {
  char out[512];
  size_t len = req->entity.base ? req->entity.len : 0;
  size_t n = make_reply(req->entity.base ? req->entity.base : "", len, out, sizeof out);
  if (n)
    respond(req, 202, "Accepted", "application/json", out, n);
  else
    respond(req, 400, "Bad Request", "application/json", "{\"error\":\"bad json\"}", 20);
}

/*
 * A later answer. The timer lives in malloc'd memory (uv_close is
 * asynchronous); a guard in the request's pool tells it when h2o disposes
 * of the request first (the client went away), so it never answers a dead
 * request.
 */
struct later;
struct guard {
  struct later *l;
};
struct later {
  uv_timer_t timer;
  h2o_req_t *req;
  struct guard *guard;
};

static void guard_dispose(void *p) {
  struct guard *g = p;
  if (g->l) g->l->req = NULL;
}

static void later_closed(uv_handle_t *h) { free(h->data); }

/* Open connections go with the process: enough for a bench server. */
static void stop_now(void) { exit(0); }

static void later_fire(uv_timer_t *t) {
  struct later *l = t->data;
  if (l->req) {
    l->guard->l = NULL;
    reply(l->req);
  }
  uv_close((uv_handle_t *)t, later_closed);
  if (--pending == 0 && stopping) stop_now();
}

static int on_req(h2o_handler_t *self, h2o_req_t *req) {
  h2o_iovec_t m = req->method, p = req->path_normalized;
  if (h2o_memis(p.base, p.len, H2O_STRLIT("/ping")) && h2o_memis(m.base, m.len, H2O_STRLIT("GET"))) {
    respond(req, 200, "OK", "text/plain", "ok", 2);
  } else if (h2o_memis(p.base, p.len, H2O_STRLIT("/echo")) && h2o_memis(m.base, m.len, H2O_STRLIT("POST"))) {
    reply(req);
  } else if (h2o_memis(p.base, p.len, H2O_STRLIT("/later")) && h2o_memis(m.base, m.len, H2O_STRLIT("POST"))) {
    struct later *l = malloc(sizeof *l);
    if (!l) abort();
    l->req = req;
    l->guard = h2o_mem_alloc_shared(&req->pool, sizeof *l->guard, guard_dispose);
    l->guard->l = l;
    uv_timer_init(ctx.loop, &l->timer);
    l->timer.data = l;
    uv_timer_start(&l->timer, later_fire, 1, 0);
    pending++;
  } else {
    respond(req, 404, "Not Found", "text/plain", "not found", 9);
  }
  return 0;
}

static void on_accept(uv_stream_t *server, int status) {
  if (status != 0) return;
  uv_tcp_t *conn = malloc(sizeof *conn);
  if (!conn) abort();
  uv_tcp_init(server->loop, conn);
  if (uv_accept(server, (uv_stream_t *)conn) != 0) {
    uv_close((uv_handle_t *)conn, (uv_close_cb)free);
    return;
  }
  uv_tcp_nodelay(conn, 1);
  h2o_socket_t *sock = h2o_uv_socket_create((uv_stream_t *)conn, (uv_close_cb)free);
  h2o_accept(&accept_ctx, sock);
}

static void on_signal(uv_signal_t *s, int signum) {
  stopping = 1; /* answer the requests waiting for a timer first */
  if (pending == 0) stop_now();
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: %s PORT [TIMEOUT_S]\n", argv[0]);
    return 2;
  }
  signal(SIGPIPE, SIG_IGN);
  int port = atoi(argv[1]);
  unsigned timeout_s = argc > 2 ? (unsigned)atoi(argv[2]) : 30;

  h2o_config_init(&config);
  config.max_request_entity_size = MAX_BODY;
  config.http1.req_timeout = (uint64_t)timeout_s * 1000;
  config.http1.upgrade_to_http2 = 0; /* HTTP/1.1 only, like the MHD server */
  h2o_hostconf_t *host = h2o_config_register_host(&config, h2o_iovec_init(H2O_STRLIT("default")), 65535);
  h2o_pathconf_t *path = h2o_config_register_path(host, "/", 0);
  h2o_handler_t *handler = h2o_create_handler(path, sizeof *handler);
  handler->on_req = on_req;

  uv_loop_t *loop = uv_default_loop();
  h2o_context_init(&ctx, loop, &config);
  accept_ctx.ctx = &ctx;
  accept_ctx.hosts = config.hosts;

  struct sockaddr_in sa;
  uv_ip4_addr("127.0.0.1", port, &sa);
  uv_tcp_init(loop, &listener);
  int r = uv_tcp_bind(&listener, (const struct sockaddr *)&sa, 0);
  if (r == 0) r = uv_listen((uv_stream_t *)&listener, 1024, on_accept);
  if (r != 0) {
    fprintf(stderr, "h2o_uv: cannot listen on 127.0.0.1:%d: %s\n", port, uv_strerror(r));
    return 1;
  }
  uv_signal_init(loop, &sig_term);
  uv_signal_init(loop, &sig_int);
  uv_signal_start(&sig_term, on_signal, SIGTERM);
  uv_signal_start(&sig_int, on_signal, SIGINT);
  uv_run(loop, UV_RUN_DEFAULT);
  return 0;
}
