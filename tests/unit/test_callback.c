/*
 * test_callback.c - customer status callbacks: the signature helper against
 * an independently computed HMAC, the backoff schedule, and end-to-end runs
 * from a real store in a temporary folder to an HTTP receiver on 127.0.0.1.
 *
 * The receiver is libmicrohttpd with its own thread(s). It records every
 * request (method, path, headers, body, arrival time), answers with a scripted
 * list of statuses, can hold each request for a while, and counts connections
 * and the largest number of requests it held at once. Each end-to-end test
 * stops the deliverer, closes the store, runs the loop dry and checks that
 * uv_loop_close() succeeds; AddressSanitizer reports any leak.
 */
#include <arpa/inet.h>
#include <curl/curl.h>
#include <jansson.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "callback/callback.h"
#include "core/kk_err.h"
#include "core/kk_log.h"
#include "core/kk_net.h"
#include "http/http_client.h"
#include "store/store.h"
#include "kk_test.h"
#include "lib/tmp_store.h"

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/lsan_interface.h>
#endif

/* ---- the pure helpers ----------------------------------------------------- */

KK_TEST(callback_sign_known_vector) {
  /* Expected values from `openssl dgst -sha256 -hmac KEY` over "<t>.<body>". */
  const char *body = "{\"id\":\"msg_abc\",\"status\":\"delivered\",\"channel\":\"sms\","
                     "\"to\":\"79161234567\",\"at\":1763932800000}";
  char out[128];
  ASSERT_EQ(callback_sign("whsec_0123456789abcdef", 1763932800LL, body, strlen(body), out,
                          sizeof out), 0);
  ASSERT_STR_EQ(out, "t=1763932800,v1=837d1dcca8709b0f2fd5eeaea57f896f"
                     "0777d8acfa2ada134e66d2a30d4274e3");

  /* An empty body signs "<t>." alone. */
  ASSERT_EQ(callback_sign("k", 0, "", 0, out, sizeof out), 0);
  ASSERT_STR_EQ(out, "t=0,v1=6b4a4b8b3c40f1e8f53a3d36682e5f99f7ad2ac1df1c93dfe336f329167641e7");
}

KK_TEST(callback_sign_errors) {
  char out[128];
  ASSERT_EQ(callback_sign("", 1, "x", 1, out, sizeof out), KK_EINVAL);
  ASSERT_EQ(callback_sign(NULL, 1, "x", 1, out, sizeof out), KK_EINVAL);
  /* "t=1,v1=" and 64 hex digits need 72 bytes with the NUL. */
  ASSERT_EQ(callback_sign("k", 1, "x", 1, out, 71), KK_ENOSPC);
  ASSERT_EQ(callback_sign("k", 1, "x", 1, out, 72), 0);
  ASSERT_EQ(strlen(out), 71);
}

KK_TEST(callback_backoff_schedule) {
  ASSERT_EQ(callback_backoff_ms(5000, 1), 5000);
  ASSERT_EQ(callback_backoff_ms(5000, 2), 15000);
  ASSERT_EQ(callback_backoff_ms(5000, 3), 45000);
  ASSERT_EQ(callback_backoff_ms(5000, 7), 3600000);
  ASSERT_EQ(callback_backoff_ms(5000, 11), 3600000);
  ASSERT_EQ(callback_backoff_ms(5000, 1000), 3600000);
  ASSERT_EQ(callback_backoff_ms(100, 2), 300);
}

/* ---- the HTTP receiver ---------------------------------------------------- */

#define RX_MAX 32

struct rx_req {
  char method[8];
  char path[64];
  char ctype[64];
  char ua[64];
  char sig[160];
  char body[1024];
  uint64_t at_ms;             /* arrival, monotonic */
};

struct rx {
  struct MHD_Daemon *d;
  int port;
  pthread_mutex_t mu;
  /* Behaviour. */
  int statuses[RX_MAX];       /* answer to request i; 0: default_status */
  int default_status;
  int hold_ms;                /* keep each request this long before answering */
  int quit;                   /* ends holds early */
  /* What was received. */
  struct rx_req reqs[RX_MAX];
  int nreqs;
  int active, max_active;
  int connections;
};

/* One request's body as it arrives. */
struct rx_body {
  char buf[1024];
  size_t len;
};

static uint64_t mono_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void copy_header(struct MHD_Connection *conn, const char *name, char *out, size_t cap) {
  const char *v = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, name);
  snprintf(out, cap, "%s", v ? v : "");
}

static enum MHD_Result rx_handle(void *cls, struct MHD_Connection *conn, const char *url,
                                 const char *method, const char *version,
                                 const char *upload_data, size_t *upload_size,
                                 void **con_cls) {
  struct rx *rx = cls;
  struct rx_body *b = *con_cls;
  if (b == NULL) {
    b = calloc(1, sizeof *b);   /* freed in rx_completed */
    *con_cls = b;
    pthread_mutex_lock(&rx->mu);
    if (++rx->active > rx->max_active) rx->max_active = rx->active;
    pthread_mutex_unlock(&rx->mu);
    return MHD_YES;
  }
  if (*upload_size) {
    size_t n = *upload_size;
    if (n > sizeof b->buf - 1 - b->len) n = sizeof b->buf - 1 - b->len;
    memcpy(b->buf + b->len, upload_data, n);
    b->len += n;
    *upload_size = 0;
    return MHD_YES;
  }
  pthread_mutex_lock(&rx->mu);
  int i = rx->nreqs < RX_MAX ? rx->nreqs++ : RX_MAX - 1;
  struct rx_req *q = &rx->reqs[i];
  snprintf(q->method, sizeof q->method, "%s", method);
  snprintf(q->path, sizeof q->path, "%s", url);
  copy_header(conn, "Content-Type", q->ctype, sizeof q->ctype);
  copy_header(conn, "User-Agent", q->ua, sizeof q->ua);
  copy_header(conn, "X-Kaskad-Signature", q->sig, sizeof q->sig);
  memcpy(q->body, b->buf, b->len);
  q->body[b->len] = '\0';
  q->at_ms = mono_ms();
  int status = rx->statuses[i] ? rx->statuses[i] : rx->default_status;
  int hold = rx->hold_ms;
  pthread_mutex_unlock(&rx->mu);

  for (int waited = 0; waited < hold; waited += 5) {
    pthread_mutex_lock(&rx->mu);
    int quit = rx->quit;
    pthread_mutex_unlock(&rx->mu);
    if (quit) break;
    usleep(5000);
  }
  pthread_mutex_lock(&rx->mu);
  rx->active--;
  pthread_mutex_unlock(&rx->mu);

  struct MHD_Response *resp =
      MHD_create_response_from_buffer(2, (void *)"ok", MHD_RESPMEM_PERSISTENT);
  enum MHD_Result r = MHD_queue_response(conn, (unsigned)status, resp);
  MHD_destroy_response(resp);
  return r;
}

static void rx_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe) {
  free(*con_cls);
  *con_cls = NULL;
}

static void rx_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
                          enum MHD_ConnectionNotificationCode toe) {
  struct rx *rx = cls;
  if (toe != MHD_CONNECTION_NOTIFY_STARTED) return;
  pthread_mutex_lock(&rx->mu);
  rx->connections++;
  pthread_mutex_unlock(&rx->mu);
}

/* Starts the receiver on 127.0.0.1 with a port chosen by the kernel. */
static void rx_start(struct rx *rx, int thread_per_connection) {
  pthread_mutex_init(&rx->mu, NULL);
  if (rx->default_status == 0) rx->default_status = 200;
  struct sockaddr_in sa;
  memset(&sa, 0, sizeof sa);
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD;
  if (thread_per_connection) flags |= MHD_USE_THREAD_PER_CONNECTION;
  rx->d = MHD_start_daemon(flags, 0, NULL, NULL, rx_handle, rx,
                           MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
                           MHD_OPTION_NOTIFY_COMPLETED, rx_completed, rx,
                           MHD_OPTION_NOTIFY_CONNECTION, rx_connection, rx,
                           MHD_OPTION_END);
  ASSERT(rx->d != NULL);
  const union MHD_DaemonInfo *info = MHD_get_daemon_info(rx->d, MHD_DAEMON_INFO_BIND_PORT);
  ASSERT(info != NULL && info->port != 0);
  rx->port = info->port;
}

static void rx_stop(struct rx *rx) {
  pthread_mutex_lock(&rx->mu);
  rx->quit = 1;
  pthread_mutex_unlock(&rx->mu);
  MHD_stop_daemon(rx->d);
  pthread_mutex_destroy(&rx->mu);
}

static int rx_count(struct rx *rx) {
  pthread_mutex_lock(&rx->mu);
  int n = rx->nreqs;
  pthread_mutex_unlock(&rx->mu);
  return n;
}

/* The payload is built from the outbox row's fields byte for byte as the
   customer has always received it: key order, cost as a decimal with 12
   significant digits, error only when there is one (even empty), invalid
   UTF-8 replaced. A row written with a payload keeps it. */
KK_TEST(callback_payload_bytes) {
  static const struct {
    const char *id, *status, *channel, *to;
    long long at, cost;
    const char *error;
    const char *want;
  } rows[] = {
      {"msg_a1", "delivered", "sms", "79161234567", 1763932800000LL, 35000, NULL,
       "{\"id\":\"msg_a1\",\"status\":\"delivered\",\"channel\":\"sms\",\"to\":\"79161234567\","
       "\"at\":1763932800000,\"cost\":3.5}"},
      {"msg_a2", "failed", "viber", "79161234567", 1763932800123LL, 0,
       "0x0b bad \xff\xfe dest \"q\"",
       "{\"id\":\"msg_a2\",\"status\":\"failed\",\"channel\":\"viber\",\"to\":\"79161234567\","
       "\"at\":1763932800123,\"cost\":0.0,\"error\":\"0x0b bad \xef\xbf\xbd\xef\xbf\xbd dest "
       "\\\"q\\\"\"}"},
      {"msg_a3", "sent", "", "", 1, 17, NULL,
       "{\"id\":\"msg_a3\",\"status\":\"sent\",\"channel\":\"\",\"to\":\"\",\"at\":1,"
       "\"cost\":0.0017}"},
      {"msg_a4", "read", "vk", "79161234567", 1763932800000LL, 12345678901LL, "",
       "{\"id\":\"msg_a4\",\"status\":\"read\",\"channel\":\"vk\",\"to\":\"79161234567\","
       "\"at\":1763932800000,\"cost\":1234567.8901,\"error\":\"\"}"},
  };
  for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
    struct store_outbox o;
    memset(&o, 0, sizeof o);
    snprintf(o.public_id, sizeof o.public_id, "%s", rows[i].id);
    snprintf(o.status, sizeof o.status, "%s", rows[i].status);
    snprintf(o.channel, sizeof o.channel, "%s", rows[i].channel);
    snprintf(o.to, sizeof o.to, "%s", rows[i].to);
    o.at = rows[i].at;
    o.cost = rows[i].cost;
    o.has_error = rows[i].error != NULL;
    snprintf(o.error, sizeof o.error, "%s", rows[i].error ? rows[i].error : "");
    o.payload = (char *)"";
    char *p = callback_payload(&o);
    ASSERT_STR_EQ(p, rows[i].want);
    free(p);
  }
  struct store_outbox old = {.payload = (char *)"{\"id\":\"msg_old\"}"};
  char *p = callback_payload(&old);
  ASSERT_STR_EQ(p, "{\"id\":\"msg_old\"}");
  free(p);
}

/* ---- a store with one account --------------------------------------------- */

struct env {
  struct tmp_store ts;        /* loop, store, folder, completions */
  struct store_account acc;
  struct callback *cb;
  int stopped;
};

/* Runs the loop until *counter reaches want, failing after 10 s. */
static void run_until_count(struct env *e, const int *counter, int want) {
  ASSERT_EQ(tmp_store_run_until(&e->ts, counter, want, 10000), 0);
}

/* Runs the loop for ms milliseconds. */
static void run_for(struct env *e, int ms) {
  uint64_t end = mono_ms() + (uint64_t)ms;
  while (mono_ms() < end) uv_run(&e->ts.loop, UV_RUN_ONCE);
}

static void env_open(struct env *e) {
  memset(e, 0, sizeof *e);
  kk_log_level = KK_LOG_ERROR;
  ASSERT_EQ(curl_global_init(CURL_GLOBAL_DEFAULT), CURLE_OK);
  /* The receivers listen on loopback, which is refused unless allowed. */
  struct kk_net_allow allow;
  ASSERT_EQ(kk_net_allow_parse("127.0.0.1/32", &allow, NULL, 0), 0);
  http_client_allow(&allow);
  ASSERT_EQ(tmp_store_open(&e->ts, "callback", NULL), 0);
  snprintf(e->acc.name, sizeof e->acc.name, "Test account");
  store_account_create(e->ts.store, &e->acc, tmp_store_done, &e->ts);
  run_until_count(e, &e->ts.ndone, 1);
  ASSERT_EQ(e->ts.rc, 0);
  ASSERT(e->acc.id > 0);
  ASSERT(strncmp(e->acc.callback_secret, "whsec_", 6) == 0);
}

/*
 * Stores a message with a callback URL and reports it submitted, which
 * writes one outbox row ("sent"). Returns the status change's time.
 */
static int64_t env_add_message(struct env *e, const char *public_id, const char *url) {
  struct store_msg_new m = {
      .account_id = e->acc.id, .public_id = public_id, .to = "79161234567",
      .text = "Your code is 1234", .msg_class = "transactional", .encoding = "gsm7",
      .segments = 1, .route = "sim", .callback_url = url,
      .created_at = store_now_ms(), .expires_at = store_now_ms() + 3600000,
  };
  int want = e->ts.ndone + 1;
  store_msg_insert(e->ts.store, &m, 1, tmp_store_done, &e->ts);
  run_until_count(e, &e->ts.ndone, want);
  ASSERT_EQ(e->ts.rc, 0);
  ASSERT_EQ(m.rc, 0);

  char provider_id[64];
  snprintf(provider_id, sizeof provider_id, "p-%s", public_id);
  struct store_sms_update u = {
      .msg_id = m.id, .attempt_id = m.attempt_id, .part = 1, .nparts = 1,
      .route = "sim", .provider_id = provider_id, .at = store_now_ms(),
  };
  want = e->ts.ndone + 1;
  store_sms_submitted(e->ts.store, &u, tmp_store_done, &e->ts);
  run_until_count(e, &e->ts.ndone, want);
  ASSERT_EQ(e->ts.rc, 0);
  return u.at;
}

/* Copies the payload of the single due outbox row, as the deliverer builds
   it from the row's fields, into out. */
static void env_only_payload(struct env *e, char *out, size_t cap) {
  struct store_outbox rows[4];
  int n = 0;
  ASSERT_EQ(store_outbox_due(e->ts.store, store_now_ms(), rows, 4, &n), 0);
  ASSERT_EQ(n, 1);
  ASSERT_STR_EQ(rows[0].payload, "");   /* the store writes fields, not JSON */
  char *p = callback_payload(&rows[0]);
  ASSERT(p != NULL);
  snprintf(out, cap, "%s", p);
  free(p);
  for (int i = 0; i < n; i++) {
    free(rows[i].url);
    free(rows[i].payload);
  }
}

/* Runs SQL on the store's database beside the open store. */
static void env_sql(struct env *e, const char *sql) {
  char path[128];
  snprintf(path, sizeof path, "%s/kaskad.db", e->ts.dir);
  sqlite3 *db = NULL;
  ASSERT_EQ(sqlite3_open(path, &db), SQLITE_OK);
  sqlite3_busy_timeout(db, 5000);
  ASSERT_EQ(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
  ASSERT_EQ(sqlite3_changes(db), 1);
  sqlite3_close(db);
}

static void on_stopped(void *ud) {
  struct env *e = ud;
  e->stopped = 1;
}

/* Stops the deliverer, closes the store and the loop, removes the folder. */
static void env_close(struct env *e) {
  if (e->cb) {
    callback_stop(e->cb, on_stopped, e);
    run_until_count(e, &e->stopped, 1);
    e->cb = NULL;
  }
  ASSERT_EQ(tmp_store_close(&e->ts), 0);
  curl_global_cleanup();
}

/* Fails the test if anything allocated so far is no longer referenced. */
static void assert_no_leaks(void) {
#if defined(__SANITIZE_ADDRESS__)
  ASSERT_EQ(__lsan_do_recoverable_leak_check(), 0);
#endif
}

/* The receiver's hook URL. */
static void hook_url(const struct rx *rx, char *url, size_t cap) {
  snprintf(url, cap, "http://127.0.0.1:%d/hook", rx->port);
}

/* Ends an end-to-end test: the env, then the receiver, then no leaks. */
static void env_end(struct env *e, struct rx *rx) {
  env_close(e);
  rx_stop(rx);
  assert_no_leaks();
}

/* Checks a signature header the way a customer would, with the account secret. */
static void assert_signature_ok(const char *header, const char *secret, const char *body) {
  long long t = -1;
  char hex[80] = "";
  ASSERT_EQ(sscanf(header, "t=%lld,v1=%79s", &t, hex), 2);
  long long now = (long long)time(NULL);
  ASSERT(t > now - 60 && t <= now + 1);

  char msg[1100];
  int n = snprintf(msg, sizeof msg, "%lld.%s", t, body);
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int maclen = 0;
  ASSERT(HMAC(EVP_sha256(), secret, (int)strlen(secret), (const unsigned char *)msg,
              (size_t)n, mac, &maclen) != NULL);
  char want[2 * EVP_MAX_MD_SIZE + 1];
  for (unsigned i = 0; i < maclen; i++) snprintf(want + 2 * i, 3, "%02x", mac[i]);
  ASSERT_STR_EQ(hex, want);
}

/* State of the deliverer, read on the loop thread. */
static int cb_idle(struct env *e) {
  struct callback_stats st;
  callback_stats(e->cb, &st);
  return st.inflight == 0;
}

/* Runs the loop until the outbox is empty and nothing is in flight. */
static void run_until_outbox_empty(struct env *e) {
  uint64_t end = mono_ms() + 10000;
  while (!(store_outbox_next_due(e->ts.store) == 0 && cb_idle(e))) {
    ASSERT(mono_ms() < end);
    uv_run(&e->ts.loop, UV_RUN_ONCE);
  }
}

/* ---- end to end ----------------------------------------------------------- */

KK_TEST(callback_retry_then_delivered) {
  struct rx rx = {.statuses = {500, 200}};
  rx_start(&rx, 0);
  struct env e;
  env_open(&e);
  char url[128];
  hook_url(&rx, url, sizeof url);
  int64_t at = env_add_message(&e, "msg_cb_retry_1", url);
  ASSERT(store_outbox_next_due(e.ts.store) != 0);
  char payload[1024];
  env_only_payload(&e, payload, sizeof payload);

  struct callback_opts o = {.timeout_ms = 3000, .max_inflight = 4, .max_tries = 5,
                            .backoff_ms = 150, .poll_ms = 20};
  e.cb = callback_new(&e.ts.loop, e.ts.store, &o);
  ASSERT(e.cb != NULL);
  callback_start(e.cb);
  callback_kick(e.cb);
  run_until_outbox_empty(&e);
  /* Nothing more may arrive once the row is gone. */
  run_for(&e, 300);
  ASSERT_EQ(rx_count(&rx), 2);

  for (int i = 0; i < 2; i++) {
    struct rx_req *q = &rx.reqs[i];
    ASSERT_STR_EQ(q->method, "POST");
    ASSERT_STR_EQ(q->path, "/hook");
    ASSERT_STR_EQ(q->ctype, "application/json");
    ASSERT_STR_EQ(q->ua, "kaskad");
    ASSERT_STR_EQ(q->body, payload);
    assert_signature_ok(q->sig, e.acc.callback_secret, q->body);
    json_error_t jerr;
    json_t *j = json_loads(q->body, 0, &jerr);
    ASSERT(j != NULL);
    ASSERT_STR_EQ(json_string_value(json_object_get(j, "id")), "msg_cb_retry_1");
    ASSERT_STR_EQ(json_string_value(json_object_get(j, "status")), "sent");
    ASSERT_STR_EQ(json_string_value(json_object_get(j, "channel")), "sms");
    ASSERT_STR_EQ(json_string_value(json_object_get(j, "to")), "79161234567");
    ASSERT_EQ(json_integer_value(json_object_get(j, "at")), at);
    json_decref(j);
  }
  /* The retry waited for the backoff. */
  ASSERT(rx.reqs[1].at_ms - rx.reqs[0].at_ms >= 140);

  struct callback_stats st;
  callback_stats(e.cb, &st);
  ASSERT_EQ(st.sent_ok, 1);
  ASSERT_EQ(st.failed_tries, 1);
  ASSERT_EQ(st.gave_up, 0);
  ASSERT_EQ(st.inflight, 0);
  env_end(&e, &rx);
}

/* A row written before the store kept the event's fields holds its JSON:
   that JSON is what is sent. */
KK_TEST(callback_row_with_payload_sent_as_written) {
  struct rx rx = {.statuses = {200}};
  rx_start(&rx, 0);
  struct env e;
  env_open(&e);
  char url[128];
  hook_url(&rx, url, sizeof url);
  env_add_message(&e, "msg_cb_old_1", url);
  env_sql(&e, "UPDATE outbox SET payload='{\"id\":\"msg_cb_old_1\",\"status\":\"sent\"}',"
              " public_id=NULL, status=NULL, channel=NULL, to_number=NULL, cost=NULL,"
              " error=NULL, at=NULL");
  struct callback_opts o = {.timeout_ms = 3000, .max_inflight = 4, .max_tries = 5,
                            .backoff_ms = 150, .poll_ms = 20};
  e.cb = callback_new(&e.ts.loop, e.ts.store, &o);
  ASSERT(e.cb != NULL);
  callback_start(e.cb);
  callback_kick(e.cb);
  run_until_outbox_empty(&e);
  ASSERT_EQ(rx_count(&rx), 1);
  ASSERT_STR_EQ(rx.reqs[0].body, "{\"id\":\"msg_cb_old_1\",\"status\":\"sent\"}");
  assert_signature_ok(rx.reqs[0].sig, e.acc.callback_secret, rx.reqs[0].body);
  env_end(&e, &rx);
}

/* Runs the callback sender with o until the outbox is empty and checks that
   the one callback failed every try (received `received` times) and was
   given up; closes e and rx. */
static void expect_given_up(struct env *e, struct rx *rx, const struct callback_opts *o,
                            int received) {
  e->cb = callback_new(&e->ts.loop, e->ts.store, o);
  ASSERT(e->cb != NULL);
  callback_start(e->cb);
  run_until_outbox_empty(e);
  run_for(e, 200);
  ASSERT_EQ(rx_count(rx), received);
  struct callback_stats st;
  callback_stats(e->cb, &st);
  ASSERT_EQ(st.sent_ok, 0);
  ASSERT_EQ(st.failed_tries, o->max_tries);
  ASSERT_EQ(st.gave_up, 1);
  env_end(e, rx);
}

KK_TEST(callback_gives_up_after_max_tries) {
  struct rx rx = {.default_status = 503};
  rx_start(&rx, 0);
  struct env e;
  env_open(&e);
  char url[128];
  hook_url(&rx, url, sizeof url);
  env_add_message(&e, "msg_cb_giveup_1", url);

  struct callback_opts o = {.timeout_ms = 3000, .max_tries = 3, .backoff_ms = 30, .poll_ms = 10};
  expect_given_up(&e, &rx, &o, 3);
}

KK_TEST(callback_to_loopback_refused_unless_allowed) {
  struct rx rx = {.default_status = 200};
  rx_start(&rx, 0);
  struct env e;
  env_open(&e);
  http_client_allow(NULL);
  char url[128];
  hook_url(&rx, url, sizeof url);
  env_add_message(&e, "msg_cb_refused_1", url);

  struct callback_opts o = {.timeout_ms = 3000, .max_tries = 2, .backoff_ms = 30, .poll_ms = 10};
  expect_given_up(&e, &rx, &o, 0);
}

KK_TEST(callback_connection_refused_is_retried) {
  /* A port that was just free: nothing listens there. */
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  ASSERT(fd >= 0);
  struct sockaddr_in sa;
  memset(&sa, 0, sizeof sa);
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
  socklen_t sl = sizeof sa;
  ASSERT_EQ(getsockname(fd, (struct sockaddr *)&sa, &sl), 0);
  close(fd);

  struct env e;
  env_open(&e);
  char url[128];
  snprintf(url, sizeof url, "http://127.0.0.1:%d/hook", ntohs(sa.sin_port));
  env_add_message(&e, "msg_cb_refused_1", url);

  struct callback_opts o = {.timeout_ms = 2000, .max_tries = 2, .backoff_ms = 20, .poll_ms = 10};
  e.cb = callback_new(&e.ts.loop, e.ts.store, &o);
  ASSERT(e.cb != NULL);
  callback_start(e.cb);
  run_until_outbox_empty(&e);
  struct callback_stats st;
  callback_stats(e.cb, &st);
  ASSERT_EQ(st.sent_ok, 0);
  ASSERT_EQ(st.failed_tries, 2);
  ASSERT_EQ(st.gave_up, 1);
  env_close(&e);
  assert_no_leaks();
}

KK_TEST(callback_inflight_limit_and_reuse) {
  struct rx rx = {.hold_ms = 80};
  rx_start(&rx, 1);
  struct env e;
  env_open(&e);
  char url[128];
  hook_url(&rx, url, sizeof url);
  enum { N = 6 };
  for (int i = 0; i < N; i++) {
    char id[40];
    snprintf(id, sizeof id, "msg_cb_many_%d", i);
    env_add_message(&e, id, url);
  }

  struct callback_opts o = {.timeout_ms = 3000, .max_inflight = 2, .poll_ms = 10};
  e.cb = callback_new(&e.ts.loop, e.ts.store, &o);
  ASSERT(e.cb != NULL);
  callback_start(e.cb);
  run_until_outbox_empty(&e);
  run_for(&e, 100);

  /* Every message exactly once, never more than two at a time, and the two
     connections were reused. */
  ASSERT_EQ(rx_count(&rx), N);
  int seen[N] = {0};
  for (int i = 0; i < N; i++) {
    int k = -1;
    ASSERT(sscanf(strstr(rx.reqs[i].body, "msg_cb_many_"), "msg_cb_many_%d", &k) == 1);
    ASSERT(k >= 0 && k < N);
    seen[k]++;
  }
  for (int i = 0; i < N; i++) ASSERT_EQ(seen[i], 1);
  ASSERT_EQ(rx.max_active, 2);
  ASSERT(rx.connections <= 2);
  struct callback_stats st;
  callback_stats(e.cb, &st);
  ASSERT_EQ(st.sent_ok, N);
  ASSERT_EQ(st.failed_tries, 0);
  env_end(&e, &rx);
}

KK_TEST(callback_stop_aborts_slow_request) {
  struct rx rx = {.hold_ms = 15000};
  rx_start(&rx, 0);
  struct env e;
  env_open(&e);
  char url[128];
  hook_url(&rx, url, sizeof url);
  env_add_message(&e, "msg_cb_slow_1", url);

  struct callback_opts o = {.timeout_ms = 10000, .poll_ms = 10};
  e.cb = callback_new(&e.ts.loop, e.ts.store, &o);
  ASSERT(e.cb != NULL);
  callback_start(e.cb);
  uint64_t end = mono_ms() + 5000;
  while (rx_count(&rx) == 0) {
    ASSERT(mono_ms() < end);
    uv_run(&e.ts.loop, UV_RUN_ONCE);
  }
  /* The stop waits at most 3 s, then aborts; the row stays for a restart. */
  uint64_t t0 = mono_ms();
  callback_stop(e.cb, on_stopped, &e);
  e.cb = NULL;
  run_until_count(&e, &e.stopped, 1);
  uint64_t took = mono_ms() - t0;
  ASSERT(took >= 2900 && took < 6000);
  ASSERT(store_outbox_next_due(e.ts.store) != 0);
  env_end(&e, &rx);
}
