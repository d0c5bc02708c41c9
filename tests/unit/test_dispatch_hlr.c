/*
 * test_dispatch_hlr.c - HLR/MNP lookups against a fake service on 127.0.0.1
 * (libmicrohttpd in its own thread): answers, one request for lookups of
 * the same number at once, the cache, its bound and its ttl, a failure
 * remembered, a cancelled wait, a stop with lookups under way.
 */
#include <arpa/inet.h>
#include <curl/curl.h>
#include <microhttpd.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/kk_err.h"
#include "core/kk_log.h"
#include "core/kk_net.h"
#include "dispatch/dispatch_hlr.h"
#include "http/http_client.h"
#include "kk_test.h"

struct svc {
  struct MHD_Daemon *d;
  int port;
  pthread_mutex_t mu;
  int requests;
  int status;          /* the answer's status */
  int hold_ms;         /* before answering */
};

static enum MHD_Result svc_handle(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *up,
                                  size_t *up_size, void **con_cls) {
  struct svc *s = cls;
  if (*con_cls == NULL) {
    *con_cls = s;
    return MHD_YES;
  }
  pthread_mutex_lock(&s->mu);
  s->requests++;
  int status = s->status, hold = s->hold_ms;
  pthread_mutex_unlock(&s->mu);
  if (hold) usleep((useconds_t)hold * 1000);
  const char *phone = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "phone");
  char body[256];
  int n = snprintf(body, sizeof body,
                   "{\"phone\":\"%s\",\"ported\":true,\"operator\":\"Op\",\"inn\":\"7812014560\","
                   "\"roaming\":false}", phone ? phone : "");
  struct MHD_Response *r = MHD_create_response_from_buffer((size_t)n, body, MHD_RESPMEM_MUST_COPY);
  enum MHD_Result rc = MHD_queue_response(conn, (unsigned)status, r);
  MHD_destroy_response(r);
  return rc;
}

static void svc_start(struct svc *s) {
  memset(s, 0, sizeof *s);
  pthread_mutex_init(&s->mu, NULL);
  s->status = 200;
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  s->d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD, 0,
                          NULL, NULL, svc_handle, s, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
                          MHD_OPTION_END);
  ASSERT(s->d != NULL);
  s->port = MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_BIND_PORT)->port;
}

static int svc_requests(struct svc *s) {
  pthread_mutex_lock(&s->mu);
  int n = s->requests;
  pthread_mutex_unlock(&s->mu);
  return n;
}

struct got {
  int n, rc, ported;
  char inn[16];
};

static void on_got(void *arg, int rc, const struct dispatch_hlr_answer *a) {
  struct got *g = arg;
  g->n++;
  g->rc = rc;
  if (a) {
    g->ported = a->ported;
    snprintf(g->inn, sizeof g->inn, "%s", a->inn);
  }
}

static void on_stopped(void *ud) { *(int *)ud = 1; }

static void on_tick(uv_timer_t *t) { (void)t; }

/* Runs the loop until *v reaches want. A tick keeps uv_run from sleeping
   after a timer's callback has already brought what was waited for. */
static void run_until(uv_loop_t *loop, const int *v, int want) {
  struct timespec t0, t;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  uv_timer_t tick;
  uv_timer_init(loop, &tick);
  uv_timer_start(&tick, on_tick, 10, 10);
  while (*v < want) {
    uv_run(loop, UV_RUN_ONCE);
    clock_gettime(CLOCK_MONOTONIC, &t);
    if (t.tv_sec - t0.tv_sec > 10) kk_test_fail(__FILE__, __LINE__, "timed out");
  }
  uv_close((uv_handle_t *)&tick, NULL);
  uv_run(loop, UV_RUN_NOWAIT);
}

static struct dispatch_hlr *open_hlr_ttl(uv_loop_t *loop, struct svc *s, long max,
                                        int64_t ttl_ms) {
  kk_log_level = KK_LOG_ERROR;
  ASSERT_EQ(curl_global_init(CURL_GLOBAL_DEFAULT), CURLE_OK);
  struct kk_net_allow allow;
  ASSERT_EQ(kk_net_allow_parse("127.0.0.1/32", &allow, NULL, 0), 0);
  http_client_allow(&allow);
  ASSERT_EQ(uv_loop_init(loop), 0);
  char url[64];
  snprintf(url, sizeof url, "http://127.0.0.1:%d/hlr", s->port);
  struct dispatch_hlr_opts o = {.url = url, .max_entries = max, .ttl_ms = ttl_ms};
  struct dispatch_hlr *h = dispatch_hlr_new(loop, &o);
  ASSERT(h != NULL);
  return h;
}

static struct dispatch_hlr *open_hlr(uv_loop_t *loop, struct svc *s, long max) {
  return open_hlr_ttl(loop, s, max, 0);
}

static void on_waited(uv_timer_t *t) { ++*(int *)t->data; }

/* Runs the loop for ms (its clock moves on). */
static void run_for(uv_loop_t *loop, uint64_t ms) {
  int done = 0;
  uv_timer_t t;
  uv_timer_init(loop, &t);
  t.data = &done;
  uv_timer_start(&t, on_waited, ms, 0);
  run_until(loop, &done, 1);
  uv_close((uv_handle_t *)&t, NULL);
  uv_run(loop, UV_RUN_NOWAIT);
}

static void close_hlr(uv_loop_t *loop, struct dispatch_hlr *h, struct svc *s) {
  int stopped = 0;
  dispatch_hlr_stop(h, on_stopped, &stopped);
  run_until(loop, &stopped, 1);
  MHD_stop_daemon(s->d);
  uv_run(loop, UV_RUN_DEFAULT);
  ASSERT_EQ(uv_loop_close(loop), 0);
  pthread_mutex_destroy(&s->mu);
  http_client_allow(NULL);
  curl_global_cleanup();
}

KK_TEST(dispatch_hlr_answers_coalesces_and_caches) {
  struct svc s;
  svc_start(&s);
  uv_loop_t loop;
  struct dispatch_hlr *h = open_hlr(&loop, &s, 3);
  struct got a = {0}, b = {0}, c = {0};
  ASSERT(dispatch_hlr_lookup(h, "79161234567", on_got, &a) != NULL);
  ASSERT(dispatch_hlr_lookup(h, "79161234567", on_got, &b) != NULL);  /* same request */
  run_until(&loop, &b.n, 1);
  ASSERT_EQ(a.n, 1);
  ASSERT_EQ(a.rc, 0);
  ASSERT_EQ(a.ported, 1);
  ASSERT_STR_EQ(a.inn, "7812014560");
  ASSERT_EQ(svc_requests(&s), 1);
  /* from the cache: at once */
  ASSERT(dispatch_hlr_lookup(h, "79161234567", on_got, &c) == NULL);
  ASSERT_EQ(c.n, 1);
  ASSERT_EQ(svc_requests(&s), 1);
  /* the bound: three numbers at most, the oldest goes first */
  struct got g[4] = {{0}};
  const char *more[] = {"79160000001", "79160000002", "79160000003"};
  for (int i = 0; i < 3; i++) {
    dispatch_hlr_lookup(h, more[i], on_got, &g[i]);
    run_until(&loop, &g[i].n, 1);
  }
  struct dispatch_hlr_stats st;
  dispatch_hlr_get_stats(h, &st);
  ASSERT_EQ(st.cached, 3);
  ASSERT(dispatch_hlr_lookup(h, "79161234567", on_got, &g[3]) != NULL);  /* evicted: asked again */
  run_until(&loop, &g[3].n, 1);
  ASSERT_EQ(svc_requests(&s), 5);
  /* a bad number is refused at once */
  struct got bad = {0};
  ASSERT(dispatch_hlr_lookup(h, "7916x", on_got, &bad) == NULL);
  ASSERT_EQ(bad.rc, KK_EPROTO);
  close_hlr(&loop, h, &s);
}

/* An answer older than the ttl is not used: the number is asked again. */
KK_TEST(dispatch_hlr_answer_expires_after_ttl) {
  struct svc s;
  svc_start(&s);
  uv_loop_t loop;
  struct dispatch_hlr *h = open_hlr_ttl(&loop, &s, 10, 300);
  struct got a = {0}, b = {0}, c = {0}, d = {0};
  struct dispatch_hlr_answer ans;
  ASSERT_EQ(dispatch_hlr_peek(h, "79161234567", &ans), 0);
  ASSERT(dispatch_hlr_lookup(h, "79161234567", on_got, &a) != NULL);
  run_until(&loop, &a.n, 1);
  ASSERT_EQ(a.rc, 0);
  /* within the ttl: from the cache */
  ASSERT_EQ(dispatch_hlr_peek(h, "79161234567", &ans), 1);
  ASSERT_STR_EQ(ans.inn, "7812014560");
  ASSERT(dispatch_hlr_lookup(h, "79161234567", on_got, &b) == NULL);
  ASSERT_EQ(b.n, 1);
  ASSERT_EQ(svc_requests(&s), 1);
  /* past it: not cached any more, asked again */
  run_for(&loop, 400);
  ASSERT_EQ(dispatch_hlr_peek(h, "79161234567", &ans), 0);
  ASSERT(dispatch_hlr_lookup(h, "79161234567", on_got, &c) != NULL);
  run_until(&loop, &c.n, 1);
  ASSERT_EQ(c.rc, 0);
  ASSERT_EQ(c.ported, 1);
  ASSERT_EQ(svc_requests(&s), 2);
  /* the new answer is cached for a ttl of its own */
  ASSERT(dispatch_hlr_lookup(h, "79161234567", on_got, &d) == NULL);
  ASSERT_EQ(svc_requests(&s), 2);
  struct dispatch_hlr_stats st;
  dispatch_hlr_get_stats(h, &st);
  ASSERT_EQ(st.cached, 1);
  close_hlr(&loop, h, &s);
}

KK_TEST(dispatch_hlr_failure_cancel_and_stop) {
  struct svc s;
  svc_start(&s);
  s.status = 500;
  uv_loop_t loop;
  struct dispatch_hlr *h = open_hlr(&loop, &s, 0);
  struct got a = {0}, b = {0};
  dispatch_hlr_lookup(h, "79161234567", on_got, &a);
  run_until(&loop, &a.n, 1);
  ASSERT_EQ(a.rc, KK_EIO);
  /* remembered: not asked again at once */
  ASSERT(dispatch_hlr_lookup(h, "79161234567", on_got, &b) == NULL);
  ASSERT_EQ(b.rc, KK_EIO);
  ASSERT_EQ(svc_requests(&s), 1);
  /* a cancelled wait never hears back; a stop answers the rest */
  pthread_mutex_lock(&s.mu);
  s.status = 200;
  s.hold_ms = 300;
  pthread_mutex_unlock(&s.mu);
  struct got c = {0}, d = {0};
  struct dispatch_hlr_wait *w = dispatch_hlr_lookup(h, "79160000009", on_got, &c);
  ASSERT(w != NULL);
  ASSERT(dispatch_hlr_lookup(h, "79160000009", on_got, &d) != NULL);
  dispatch_hlr_cancel(h, w);
  int stopped = 0;
  dispatch_hlr_stop(h, on_stopped, &stopped);
  run_until(&loop, &stopped, 1);
  ASSERT_EQ(c.n, 0);
  ASSERT_EQ(d.n, 1);
  ASSERT_EQ(d.rc, KK_ECLOSED);
  uv_run(&loop, UV_RUN_DEFAULT);
  ASSERT_EQ(uv_loop_close(&loop), 0);
  MHD_stop_daemon(s.d);
  pthread_mutex_destroy(&s.mu);
  http_client_allow(NULL);
  curl_global_cleanup();
}
