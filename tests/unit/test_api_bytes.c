/*
 * test_api_bytes.c - the request handler answers whatever bytes come in,
 * on local requests (no socket) against a real store:
 *   - an answer that cannot be serialised becomes a fixed 500 "internal";
 *   - a path, query or header that is not UTF-8 gets 400 invalid_encoding;
 *   - a 405 names the path's methods in Allow;
 *   - the route table answers 401, 403, 404, 405 and the resource checks in
 *     the order the endpoints always have, for each kind of caller;
 *   - a message whose stored text does not fit its field or is not UTF-8
 *     (written below the API) is still read and shown.
 */
#include <jansson.h>
#include <openssl/sha.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api/api_int.h"
#include "core/kk_log.h"
#include "core/kk_utf8.h"
#include "http/http_server.h"
#include "kk_test.h"
#include "store/store.h"
#include "lib/tmp_store.h"

#define KEY "kk_testkey"

struct env {
  struct tmp_store ts;        /* loop, store, completions */
  struct api api;
  struct store_account acc;
};

/* What a local request was answered. */
struct answer {
  int n;
  int status;
  char ctype[64];
  char headers[256];
  char *body;                /* malloc'd, NUL-terminated */
  json_t *json;              /* the body parsed, when it is JSON */
};

static void wait_done(struct env *e, int want) { ASSERT_EQ(tmp_store_wait(&e->ts, want, 10000), 0); }

static void env_open(struct env *e) {
  memset(e, 0, sizeof *e);
  kk_log_level = KK_LOG_ERROR + 1;
  ASSERT_EQ(tmp_store_open(&e->ts, "api", NULL), 0);
  snprintf(e->acc.name, sizeof e->acc.name, "bytes");
  store_account_create(e->ts.store, &e->acc, tmp_store_done, &e->ts);
  wait_done(e, 1);
  e->api.loop = &e->ts.loop;
  e->api.store = e->ts.store;
  e->api.ready = 1;
  uint8_t hash[32];
  SHA256((const unsigned char *)KEY, strlen(KEY), hash);
  api_keys_add(&e->api.keys, hash, e->acc.id);
}

static void env_close(struct env *e) {
  api_fini(&e->api);
  ASSERT_EQ(tmp_store_close(&e->ts), 0);
}

static void on_answer(void *ud, const struct http_local_answer *ans) {
  struct answer *a = ud;
  a->n++;
  a->status = ans->status;
  snprintf(a->ctype, sizeof a->ctype, "%s", ans->content_type ? ans->content_type : "");
  snprintf(a->headers, sizeof a->headers, "%s", ans->headers);
  a->body = malloc(ans->len + 1);
  memcpy(a->body, ans->body, ans->len);
  a->body[ans->len] = '\0';
  if (strcmp(a->ctype, "application/json") == 0) a->json = json_loadb(ans->body, ans->len, 0, NULL);
}

static void answer_free(struct answer *a) {
  free(a->body);
  json_decref(a->json);
  memset(a, 0, sizeof *a);
}

/* The error code of a JSON error answer ("" when none). */
static const char *code_of(const struct answer *a) {
  const char *c = json_string_value(json_object_get(json_object_get(a->json, "error"), "code"));
  return c ? c : "";
}

/* Runs one request with the account's key (and the extra header, if any)
   to its answer. */
static void call(struct env *e, const char *method, const char *path, const char *qname,
                 const char *qvalue, const char *hname, const char *hvalue, struct answer *out) {
  memset(out, 0, sizeof *out);
  const char *query[2] = {qname, qvalue};
  const char *headers[4] = {"Authorization", "Bearer " KEY, hname, hvalue};
  struct http_req *req = http_local_new(method, path, query, qname ? 1 : 0, headers,
                                        hname ? 2 : 1, "", 0, on_answer, out);
  api_handle(&e->api, req);
  time_t end = time(NULL) + 10;
  while (out->n == 0) {
    ASSERT(time(NULL) < end);
    uv_run(&e->ts.loop, UV_RUN_ONCE);
  }
  ASSERT_EQ(http_local_answers(req), 1);
  http_local_free(req);
}

KK_TEST(api_json_failure_answers_500) {
  struct env e;
  env_open(&e);
  struct answer a = {0};
  struct http_req *req = http_local_new("GET", "/x", NULL, 0, NULL, 0, "", 0, on_answer, &a);
  /* A NULL document: what json_pack() gives for a string that is not UTF-8. */
  api_json(req, 200, NULL, NULL);
  ASSERT_EQ(a.n, 1);
  ASSERT_EQ(a.status, 500);
  ASSERT(a.json != NULL);
  ASSERT_STR_EQ(code_of(&a), "internal");
  http_local_free(req);
  answer_free(&a);

  /* A document json_dumps() refuses. */
  req = http_local_new("GET", "/x", NULL, 0, NULL, 0, "", 0, on_answer, &a);
  api_json(req, 200, json_pack("{s:o}", "x", json_string_nocheck("\xff")), NULL);
  ASSERT_EQ(a.status, 500);
  ASSERT_STR_EQ(code_of(&a), "internal");
  http_local_free(req);
  answer_free(&a);

  /* An error message cut inside a character by its field still answers. */
  req = http_local_new("GET", "/x", NULL, 0, NULL, 0, "", 0, on_answer, &a);
  struct api_err err = {.status = 422, .code = "invalid_phone", .field = "to"};
  memset(err.message, 'a', sizeof err.message);
  memcpy(err.message + sizeof err.message - 2, "\xD1", 2);   /* half a letter, then NUL */
  api_error_from(req, &err);
  ASSERT_EQ(a.status, 422);
  ASSERT_STR_EQ(code_of(&a), "invalid_phone");
  http_local_free(req);
  answer_free(&a);
  env_close(&e);
}

KK_TEST(api_refuses_bytes_that_are_not_utf8) {
  struct env e;
  env_open(&e);
  struct answer a;
  static const char *const paths[] = {"/\xff", "/v1/messages/\xff", "/v1/channels/\xff",
                                      "/v1/cascades/\xff", "/v1/messages/\xD1\x8F\xD1"};
  for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
    call(&e, "GET", paths[i], NULL, NULL, NULL, NULL, &a);
    ASSERT_EQ(a.status, 400);
    ASSERT_STR_EQ(code_of(&a), "invalid_encoding");
    answer_free(&a);
  }
  call(&e, "DELETE", "/v1/messages/\xff", NULL, NULL, NULL, NULL, &a);
  ASSERT_EQ(a.status, 400);
  answer_free(&a);
  call(&e, "GET", "/v1/messages", "status", "\xff", NULL, NULL, &a);
  ASSERT_EQ(a.status, 400);
  ASSERT_STR_EQ(code_of(&a), "invalid_encoding");
  answer_free(&a);
  call(&e, "GET", "/v1/messages", "\xff", "1", NULL, NULL, &a);
  ASSERT_EQ(a.status, 400);
  answer_free(&a);
  call(&e, "GET", "/v1/messages", NULL, NULL, "X-Note", "caf\xe9", &a);
  ASSERT_EQ(a.status, 400);
  ASSERT_STR_EQ(code_of(&a), "invalid_encoding");
  answer_free(&a);
  /* UTF-8 is fine, and echoed whole. */
  call(&e, "GET", "/v1/messages/я", NULL, NULL, "X-Note", "café", &a);
  ASSERT_EQ(a.status, 404);
  ASSERT(strstr(a.body, "я") != NULL);
  answer_free(&a);
  env_close(&e);
}

KK_TEST(api_405_names_allowed_methods) {
  struct env e;
  env_open(&e);
  struct answer a;
  call(&e, "PUT", "/v1/messages", NULL, NULL, NULL, NULL, &a);
  ASSERT_EQ(a.status, 405);
  ASSERT_STR_EQ(a.headers, "Allow: GET, POST\r\n");
  answer_free(&a);
  call(&e, "PUT", "/v1/messages/msg_1", NULL, NULL, NULL, NULL, &a);
  ASSERT_EQ(a.status, 405);
  ASSERT_STR_EQ(a.headers, "Allow: GET, DELETE\r\n");
  answer_free(&a);
  call(&e, "GET", "/v1/messages/batch", NULL, NULL, NULL, NULL, &a);
  ASSERT_EQ(a.status, 405);
  ASSERT_STR_EQ(a.headers, "Allow: POST\r\n");
  answer_free(&a);
  call(&e, "POST", "/v1/cascades", NULL, NULL, NULL, NULL, &a);
  ASSERT_EQ(a.status, 405);
  ASSERT_STR_EQ(a.headers, "Allow: GET\r\n");
  answer_free(&a);
  env_close(&e);
}

/* Runs one request with the Authorization header auth (NULL: none) to its
   answer. */
static void call_as(struct env *e, const char *auth, const char *method, const char *path,
                    struct answer *out) {
  memset(out, 0, sizeof *out);
  const char *headers[2] = {"Authorization", auth};
  struct http_req *req = http_local_new(method, path, NULL, 0, headers, auth ? 1 : 0, "", 0,
                                        on_answer, out);
  api_handle(&e->api, req);
  time_t end = time(NULL) + 10;
  while (out->n == 0) {
    ASSERT(time(NULL) < end);
    uv_run(&e->ts.loop, UV_RUN_ONCE);
  }
  http_local_free(req);
}

/* One request's status, error code and Allow header. */
static void expect(struct env *e, const char *auth, const char *method, const char *path,
                   int status, const char *code, const char *allow) {
  struct answer a;
  call_as(e, auth, method, path, &a);
  if (a.status != status || strcmp(code_of(&a), code) != 0)
    kk_test_fail(__FILE__, __LINE__, "%s %s: %d %s, want %d %s", method, path, a.status,
                 code_of(&a), status, code);
  char hdr[96] = "";
  if (allow) snprintf(hdr, sizeof hdr, "Allow: %s\r\n", allow);
  if (strcmp(a.headers, hdr) != 0)
    kk_test_fail(__FILE__, __LINE__, "%s %s: headers \"%s\"", method, path, a.headers);
  answer_free(&a);
}

KK_TEST(api_routes_answer_in_order) {
  struct env e;
  env_open(&e);
  snprintf(e.api.admin_key, sizeof e.api.admin_key, "operator-key");
  const char *acct = "Bearer " KEY, *op = "Bearer operator-key";
  char path[128];
  /* Anyone: exact public paths; longer paths and unknown roots are absent
     before any key is looked at. */
  expect(&e, NULL, "GET", "/healthz", 200, "", NULL);
  expect(&e, NULL, "DELETE", "/healthz", 200, "", NULL);
  expect(&e, NULL, "GET", "/healthz/", 404, "not_found", NULL);
  expect(&e, NULL, "GET", "/v1/a/b/c/d", 404, "not_found", NULL);
  expect(&e, NULL, "GET", "/other", 404, "not_found", NULL);
  expect(&e, NULL, "GET", "/v1/messages", 401, "unauthorized", NULL);
  expect(&e, NULL, "GET", "/v1/nothing", 401, "unauthorized", NULL);
  /* Provider hooks take no key; without the engine they are absent, even
     for a method they do not have. */
  expect(&e, NULL, "PUT", "/v1/hooks/vk/default", 404, "not_found", NULL);
  expect(&e, NULL, "GET", "/v1/hooks/vk", 404, "not_found", NULL);
  /* An account key: the operator's resources are forbidden whatever the
     method or path below them; unknown paths elsewhere are absent. */
  expect(&e, acct, "DELETE", "/v1/accounts", 403, "forbidden", NULL);
  expect(&e, acct, "GET", "/v1/routes/x/y", 403, "forbidden", NULL);
  expect(&e, acct, "GET", "/v1/nothing", 404, "not_found", NULL);
  expect(&e, acct, "GET", "/v1/keys", 404, "not_found", NULL);
  expect(&e, acct, "GET", "/v1/channels/vk/extra", 404, "not_found", NULL);
  expect(&e, acct, "GET", "/v1/messages/", 200, "", NULL);
  expect(&e, acct, "PUT", "/v1/messages/", 405, "method_not_allowed", "GET, POST");
  /* The resource checks come before the 405. */
  expect(&e, acct, "POST", "/v1/cascades/bad!name", 422, "invalid_name", NULL);
  expect(&e, acct, "POST", "/v1/cascades/good", 405, "method_not_allowed", "GET, PUT, DELETE");
  expect(&e, acct, "GET", "/v1/cascades/bad!name", 404, "not_found", NULL);
  expect(&e, acct, "POST", "/v1/channels", 503, "shutting_down", NULL);
  /* The operator key: the account API is forbidden, unknown paths too. */
  expect(&e, op, "GET", "/v1/messages", 403, "forbidden", NULL);
  expect(&e, op, "GET", "/v1/nothing", 403, "forbidden", NULL);
  expect(&e, op, "GET", "/v1/routes/x/y", 404, "not_found", NULL);
  expect(&e, op, "PUT", "/v1/accounts/acc_missing", 404, "not_found", NULL);
  expect(&e, op, "GET", "/v1/accounts/acc_missing/other", 404, "not_found", NULL);
  snprintf(path, sizeof path, "/v1/accounts/%s", e.acc.public_id);
  expect(&e, op, "POST", path, 405, "method_not_allowed", "GET, PATCH");
  expect(&e, op, "GET", path, 200, "", NULL);
  snprintf(path, sizeof path, "/v1/accounts/%s/other", e.acc.public_id);
  expect(&e, op, "GET", path, 404, "not_found", NULL);
  snprintf(path, sizeof path, "/v1/accounts/%s/keys", e.acc.public_id);
  expect(&e, op, "DELETE", path, 405, "method_not_allowed", "GET, POST");
  expect(&e, op, "DELETE", "/v1/keys/kk_00", 404, "not_found", NULL);
  env_close(&e);
}

/* Runs SQL on the store's database with a connection of the test's own. */
static void sql(const struct env *e, const char *text) {
  char path[128];
  snprintf(path, sizeof path, "%s/kaskad.db", e->ts.dir);
  sqlite3 *db = NULL;
  ASSERT_EQ(sqlite3_open(path, &db), SQLITE_OK);
  sqlite3_busy_timeout(db, 5000);
  ASSERT_EQ(sqlite3_exec(db, text, NULL, NULL, NULL), SQLITE_OK);
  sqlite3_close(db);
}

KK_TEST(api_get_of_a_poisoned_row) {
  struct env e;
  env_open(&e);
  /* A key longer than the field it is read into, written below the API
     (which refuses it): "a" and 64 letters of two bytes, 129 bytes. */
  char key[160] = "a";
  for (int i = 0; i < 64; i++) strcat(key, "я");
  struct store_msg_new m = {.account_id = e.acc.id, .public_id = "msg_poison", .idem_key = key,
                            .to = "79161234567", .text = "hi", .msg_class = "service",
                            .encoding = "gsm7", .segments = 1, .route = "",
                            .created_at = 1763932800000LL, .expires_at = 1763932800000LL + 3600000};
  store_msg_insert(e.ts.store, &m, 1, tmp_store_done, &e.ts);
  wait_done(&e, 2);
  struct store_msg_view v;
  ASSERT_EQ(tmp_store_msg_get(&e.ts, e.acc.id, "msg_poison", &v), 0);
  ASSERT(kk_utf8_valid(v.idem_key, strlen(v.idem_key)));
  ASSERT_EQ(strlen(v.idem_key), 127);
  ASSERT_EQ(strncmp(v.idem_key, key, 127), 0);

  /* Bytes that are not UTF-8 in text fields (an SMSC's message id, a sender
     cut by an older version). */
  sql(&e, "UPDATE messages SET sender = X'41D1' WHERE public_id = 'msg_poison';"
          "UPDATE attempts SET provider_id = X'ff00fe', error = X'C0AF' "
          "WHERE message_id = (SELECT id FROM messages WHERE public_id = 'msg_poison');");
  struct answer a;
  for (int i = 0; i < 2; i++) {   /* and again: nothing broke on the way */
    call(&e, "GET", "/v1/messages/msg_poison", NULL, NULL, NULL, NULL, &a);
    ASSERT_EQ(a.status, 200);
    ASSERT(a.json != NULL);
    const char *k = json_string_value(json_object_get(a.json, "idempotency_key"));
    ASSERT(k != NULL && strncmp(k, key, 127) == 0);
    ASSERT_STR_EQ(json_string_value(json_object_get(a.json, "sender")), "A\xEF\xBF\xBD");
    answer_free(&a);
  }
  call(&e, "GET", "/v1/messages", NULL, NULL, NULL, NULL, &a);
  ASSERT_EQ(a.status, 200);
  ASSERT_EQ(json_array_size(json_object_get(a.json, "messages")), 1);
  answer_free(&a);
  env_close(&e);
}
