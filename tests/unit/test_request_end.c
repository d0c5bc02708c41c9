/*
 * test_request_end.c - the end hook of an HTTP request (http_req_on_end):
 * it runs once, when a request answered at once has been sent, when one
 * answered later (after the handler returned) has been sent, when its
 * client went away before the body arrived or while its answer was pending
 * (the server then serves the next one), and when a local request is freed.
 */
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <arpa/inet.h>
#include <unistd.h>
#include <uv.h>

#include "core/kk_log.h"
#include "http/http_server.h"
#include "kk_test.h"

/* The server's side. */
struct env {
  uv_loop_t loop;
  uv_timer_t tick;           /* wakes the loop every 5 ms */
  uv_timer_t later;          /* answers a deferred request */
  struct http_server *srv;
  int port;
  int handled, ended;        /* handler calls, end hook calls */
  int ended_answered;        /* end hooks of requests that had an answer given */
  int answered;              /* answers given */
  int defer_ms;              /* 0: answer in the handler; else that much later */
  struct http_req *pending;  /* the request the timer answers */
  void *end_arg_seen;        /* the hook's arg, as given */
};

static void on_tick(uv_timer_t *t) { (void)t; }

/* Request state that lives as long as the request (what the API's call is). */
struct req_state {
  struct env *e;
  int answered;
  char path[64];
};

static void on_end(void *arg, struct http_req *req) {
  struct req_state *st = arg;
  st->e->ended++;
  st->e->end_arg_seen = arg;
  if (st->answered) st->e->ended_answered++;
  /* The request is still readable here. */
  ASSERT_STR_EQ(http_req_path(req), st->path);
  free(st);
}

static void answer(struct http_req *req) {
  struct req_state *st = http_req_data(req);
  st->answered = 1;
  st->e->answered++;
  /* The state is still there after the handler returned. */
  char body[96];
  int n = snprintf(body, sizeof body, "answered %s\n", st->path);
  http_respond(req, 200, "text/plain", body, (size_t)n, NULL);
}

static void on_later(uv_timer_t *t) {
  struct env *e = t->data;
  struct http_req *req = e->pending;
  e->pending = NULL;
  if (req) answer(req);
}

static void handler(void *ud, struct http_req *req) {
  struct env *e = ud;
  e->handled++;
  struct req_state *st = http_req_data(req);
  ASSERT(st != NULL);
  if (e->defer_ms == 0) {
    answer(req);
    return;
  }
  e->pending = req;
  uv_timer_start(&e->later, on_later, (uint64_t)e->defer_ms, 0);
}

/* The pre-check makes the request's state and sets its end hook. */
static void precheck(void *ud, struct http_req *req) {
  struct env *e = ud;
  struct req_state *st = calloc(1, sizeof *st);
  st->e = e;
  snprintf(st->path, sizeof st->path, "%s", http_req_path(req));
  http_req_set_data(req, st);
  http_req_on_end(req, on_end, st);
}

static void env_open(struct env *e) {
  kk_log_level = KK_LOG_ERROR;
  memset(e, 0, sizeof *e);
  ASSERT_EQ(uv_loop_init(&e->loop), 0);
  uv_timer_init(&e->loop, &e->tick);
  uv_timer_start(&e->tick, on_tick, 5, 5);
  uv_timer_init(&e->loop, &e->later);
  e->later.data = e;
  struct http_server_opts o = {.host = "127.0.0.1", .port = 0, .max_body = 4096,
                               .conn_timeout_s = 5, .max_conns = 16, .precheck = precheck};
  e->srv = http_server_new(&e->loop, &o, handler, e);
  ASSERT_EQ(http_server_start(e->srv), 0);
  e->port = http_server_port(e->srv);
}

static void env_close(struct env *e) {
  http_server_stop(e->srv);
  uv_close((uv_handle_t *)&e->tick, NULL);
  uv_close((uv_handle_t *)&e->later, NULL);
  uv_run(&e->loop, UV_RUN_DEFAULT);
  ASSERT_EQ(uv_loop_close(&e->loop), 0);
}

/* ---- the client, on a thread of its own (blocking sockets) ------------------- */

struct client {
  int port;
  const char *request;       /* sent as is */
  int close_after_send;      /* 1: closes without reading */
  char reply[512];
  atomic_int done;
  pthread_t thread;
};

static void *client_main(void *arg) {
  struct client *c = arg;
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)c->port)};
  inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
  if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0) {
    size_t len = strlen(c->request);
    if (write(fd, c->request, len) == (ssize_t)len && !c->close_after_send) {
      size_t got = 0;
      ssize_t n;
      while (got < sizeof c->reply - 1 &&
             (n = read(fd, c->reply + got, sizeof c->reply - 1 - got)) > 0)
        got += (size_t)n;
      c->reply[got] = '\0';
    }
  }
  if (fd >= 0) close(fd);
  atomic_store(&c->done, 1);
  return NULL;
}

static void client_start(struct client *c, int port, const char *request, int close_after_send) {
  memset(c, 0, sizeof *c);
  c->port = port;
  c->request = request;
  c->close_after_send = close_after_send;
  ASSERT_EQ(pthread_create(&c->thread, NULL, client_main, c), 0);
}

/* Runs the loop until the client is done and *count reaches want. */
static void run_until(struct env *e, struct client *c, const int *count, int want) {
  uint64_t end = uv_now(&e->loop) + 10000;
  while ((c && !atomic_load(&c->done)) || *count < want) {
    ASSERT(uv_now(&e->loop) < end);
    uv_run(&e->loop, UV_RUN_ONCE);
  }
  if (c) pthread_join(c->thread, NULL);
}

#define GET(path) "GET " path " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"

KK_TEST(request_end_runs_once_after_an_answer) {
  struct env e;
  env_open(&e);
  struct client c;
  client_start(&c, e.port, GET("/now"), 0);
  run_until(&e, &c, &e.ended, 1);
  ASSERT(strstr(c.reply, "200") != NULL);
  ASSERT(strstr(c.reply, "answered /now") != NULL);
  ASSERT_EQ(e.handled, 1);
  ASSERT_EQ(e.ended, 1);
  ASSERT_EQ(e.ended_answered, 1);
  env_close(&e);
  ASSERT_EQ(e.ended, 1);
}

KK_TEST(request_end_answer_after_the_handler_returned) {
  struct env e;
  env_open(&e);
  e.defer_ms = 30;
  struct client c;
  client_start(&c, e.port, GET("/later"), 0);
  run_until(&e, &c, &e.ended, 1);
  ASSERT(strstr(c.reply, "answered /later") != NULL);
  ASSERT_EQ(e.handled, 1);
  ASSERT_EQ(e.answered, 1);
  ASSERT_EQ(e.ended, 1);
  env_close(&e);
  ASSERT_EQ(e.ended, 1);
}

KK_TEST(request_end_when_the_client_goes_away) {
  struct env e;
  env_open(&e);
  /* Gone while its answer is pending: the answer is given into a closed
     connection, the request ends once, and the server serves the next. */
  e.defer_ms = 100;
  struct client c;
  client_start(&c, e.port, GET("/gone"), 1);
  run_until(&e, &c, &e.answered, 1);
  run_until(&e, NULL, &e.ended, 1);
  ASSERT_EQ(e.handled, 1);
  ASSERT_EQ(e.ended, 1);
  /* Gone before its body arrived: never handled, ended all the same. */
  client_start(&c, e.port,
               "POST /cut HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n0123456789", 1);
  run_until(&e, &c, &e.ended, 2);
  ASSERT_EQ(e.handled, 1);
  e.defer_ms = 0;
  client_start(&c, e.port, GET("/next"), 0);
  run_until(&e, &c, &e.ended, 3);
  ASSERT(strstr(c.reply, "answered /next") != NULL);
  env_close(&e);
  ASSERT_EQ(e.ended, 3);
}

static void local_done(void *ud, const struct http_local_answer *ans) {
  (void)ans;
  (*(int *)ud)++;
}

KK_TEST(request_end_of_a_local_request) {
  struct env e;
  memset(&e, 0, sizeof e);
  int answers = 0;
  struct http_req *req = http_local_new("GET", "/local", NULL, 0, NULL, 0, "", 0, local_done,
                                        &answers);
  precheck(&e, req);
  struct req_state *st = http_req_data(req);
  http_respond(req, 204, NULL, "", 0, NULL);
  ASSERT_EQ(answers, 1);
  ASSERT_EQ(e.ended, 0);
  http_local_free(req);
  ASSERT_EQ(e.ended, 1);
  ASSERT(e.end_arg_seen == st);
}
