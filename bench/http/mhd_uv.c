/*
 * mhd_uv.c - the bench server on kaskad's own HTTP layer.
 *
 * It links src/http/http_server.c unchanged: libmicrohttpd in external-epoll
 * mode (MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_TURBO, 64 KiB per
 * connection, connection timeout, connection limit 4096), its epoll fd polled
 * by uv_poll on one libuv loop, suspend/resume for answers given later.
 *
 *   mhd_uv PORT [TIMEOUT_S]     (TIMEOUT_S defaults to 30, as in kaskad)
 *
 *   GET  /ping   200 "ok"
 *   POST /echo   a JSON body in, 202 and a ~200-byte JSON out, at once
 *   POST /later  the same, answered from a 1 ms uv_timer (the answer that
 *                waits for a store commit in kaskad)
 *   bodies over 1 MiB: 413 (by http_server.c, before the handler)
 *
 * h2o_uv.c behaves the same way; the reply is built by the same code.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "core/kk_log.h"
#include "http/http_server.h"

#define MAX_BODY (1024 * 1024)

static struct http_server *srv;
static uv_signal_t sig_term, sig_int;
static unsigned long long seq;
static int pending, stopping; /* timers not fired yet; a signal came */

/* Looks at the JSON body and writes the reply (as the h2o server does).
 * Returns the reply length, or 0 when the body is not a JSON object with
 * a "to" string. */
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

static void reply(struct http_req *req) {
  char out[512];
  size_t len;
  const char *body = http_req_body(req, &len);
  size_t n = make_reply(body, len, out, sizeof out);
  if (n)
    http_respond(req, 202, "application/json", out, n, NULL);
  else
    http_respond(req, 400, "application/json", "{\"error\":\"bad json\"}", 20, NULL);
}

struct later {
  uv_timer_t timer;
  struct http_req *req;
};

static void later_closed(uv_handle_t *h) { free(h->data); }

static void later_fire(uv_timer_t *t) {
  struct later *l = t->data;
  reply(l->req);
  uv_close((uv_handle_t *)t, later_closed);
  if (--pending == 0 && stopping) http_server_stop(srv);
}

static void handle(void *ud, struct http_req *req) {
  const char *m = http_req_method(req), *p = http_req_path(req);
  if (!strcmp(p, "/ping") && !strcmp(m, "GET")) {
    http_respond(req, 200, "text/plain", "ok", 2, NULL);
  } else if (!strcmp(p, "/echo") && !strcmp(m, "POST")) {
    reply(req);
  } else if (!strcmp(p, "/later") && !strcmp(m, "POST")) {
    struct later *l = malloc(sizeof *l);
    if (!l) abort();
    l->req = req;
    pending++;
    uv_timer_init(uv_default_loop(), &l->timer);
    l->timer.data = l;
    uv_timer_start(&l->timer, later_fire, 1, 0); /* answered from the timer */
  } else {
    http_respond(req, 404, "text/plain", "not found", 9, NULL);
  }
}

static void on_signal(uv_signal_t *s, int signum) {
  uv_signal_stop(&sig_term);
  uv_signal_stop(&sig_int);
  uv_close((uv_handle_t *)&sig_term, NULL);
  uv_close((uv_handle_t *)&sig_int, NULL);
  http_server_quiesce(srv);
  stopping = 1;
  if (pending == 0) http_server_stop(srv); /* else when the last timer fires */
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: %s PORT [TIMEOUT_S]\n", argv[0]);
    return 2;
  }
  signal(SIGPIPE, SIG_IGN);
  kk_log_level = KK_LOG_WARN;
  uv_loop_t *loop = uv_default_loop();
  struct http_server_opts o = {.host = "127.0.0.1",
                               .port = atoi(argv[1]),
                               .max_body = MAX_BODY,
                               .conn_timeout_s = argc > 2 ? atoi(argv[2]) : 30,
                               .max_conns = 4096};
  srv = http_server_new(loop, &o, handle, NULL);
  if (http_server_start(srv) != 0) return 1;
  uv_signal_init(loop, &sig_term);
  uv_signal_init(loop, &sig_int);
  uv_signal_start(&sig_term, on_signal, SIGTERM);
  uv_signal_start(&sig_int, on_signal, SIGINT);
  uv_run(loop, UV_RUN_DEFAULT);
  uv_loop_close(loop);
  return 0;
}
