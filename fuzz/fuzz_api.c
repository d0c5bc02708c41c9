/*
 * fuzz_api.c - fuzz target for the whole HTTP request handler (api_precheck, api_handle):
 * routing, authentication, every endpoint's validation and answers, on a
 * real store in a temporary folder.
 *
 * Input: byte 0 is flags (bits 0-1: the Authorization header: none, a valid
 * account key, the operator key, or the one given in the input; bit 2: no
 * cascade, as while kaskad stops). The rest is text lines:
 *
 *   METHOD
 *   TARGET            path?query, %-decoded as libmicrohttpd does
 *   Name: value       headers, up to an empty line
 *
 *   body              every byte after the empty line
 *
 * Invariants: the request is answered exactly once, with a status from 100
 * to 599; an application/json answer parses as JSON (so it is UTF-8); a 405
 * names the allowed methods in Allow.
 *
 * The numbering register is a small one parsed here (GET /v1/numbers
 * answers from it), and contact imports run in the store's folder as the
 * daemon runs them (POST /v1/contacts/import streams the body to a file, a
 * reader thread imports it; /v1/imports/{id} and its errors.csv read it).
 *
 * Nothing leaves the process: channel sends are never started (the cascade
 * does not hear about stored messages), customer callbacks have no sender,
 * and the two requests that would reach out at once (PUT of an SMPP route,
 * which connects, and PUT of Telegram or Viber settings, which registers a
 * webhook) are turned into POST; their settings parsers get the body
 * directly instead. The store's folder is removed at exit.
 */
#include <jansson.h>
#include <microhttpd.h>
#include <openssl/sha.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#include "api/api_int.h"
#include "cascade/cascade.h"
#include "channel/channel.h"
#include "contact/contact_import.h"
#include "core/kk_log.h"
#include "dispatch/dispatch.h"
#include "http/http_server.h"
#include "phone/phone_plan.h"
#include "store/store.h"
#include "lib/tmp_store.h"

#define ADMIN_KEY "fuzz-operator-key"
#define ACCOUNT_KEY "kk_fuzzaccountkey000000000000000000000000000000000"
#define MAX_PAIRS 32

static void check(int ok) {
  if (!ok) __builtin_trap();
}

static struct {
  uv_loop_t *loop;
  struct store *store;
  struct dispatch *dispatch;
  struct cascade *cascade;
  struct api api;
  struct phone_plan *plan;
  struct contact_imports *imports;
  uv_timer_t watchdog;
  char dir[TMP_STORE_DIR_MAX];
  int ready;
} g;

static void on_done(void *arg, int rc) { check(rc == 0); }

/* Runs the loop until every queued store operation has completed. */
static void drain_store(void) {
  while (store_pending(g.store) > 0) uv_run(g.loop, UV_RUN_ONCE);
}

static void cleanup(void) {
  if (!g.ready) return;
  if (g.imports) contact_imports_stop(g.imports);
  drain_store();
  store_close(g.store);
  if (g.imports) contact_imports_free(g.imports);
  phone_plan_free(g.plan);
  tmp_store_dir_rm(g.dir);
}

/* A register of two ranges and their zones (the ministry's format). */
static const char PLAN_DEF[] =
    "АВС/ DEF;От;До;Емкость;Оператор;Регион;Территория ГАР;ИНН\n"
    "911;4500000;4999999;500000;ПАО \"МТС\";Калининградская обл.;"
    "Калининградская область;7740000076\n"
    "916;0000000;9999999;10000000;ПАО \"МТС\";г. Москва;г. Москва;7740000076\n";
static const char PLAN_TZ[] = "territory_gar;iana_tz;utc_offset\n"
                              "Калининградская область;Europe/Kaliningrad;+2\n"
                              "г. Москва;Europe/Moscow;+3\n";

static void setup(void) {
  kk_log_level = KK_LOG_ERROR + 1; /* quiet: the fuzzer prints enough */
  g.loop = uv_default_loop();
  check(tmp_store_dir_new(g.dir, "fuzz-api") == 0);
  struct store_opts so = {.dir = g.dir, .synchronous_full = 0};
  check(store_open(g.loop, &so, &g.store) == 0);
  g.ready = 1;
  atexit(cleanup);
  struct dispatch_opts dopts = {0};
  g.dispatch = dispatch_new(g.loop, g.store, &dopts);
  struct chan_engine_opts kopts = {.public_url = "http://127.0.0.1:8080"};
  g.cascade = cascade_new(g.loop, g.store, g.dispatch, &kopts);
  check(g.cascade != NULL);
  store_unsubscribe(g.store, NULL, g.cascade); /* no channel sends */
  uv_timer_init(g.loop, &g.watchdog);

  /* One account with a known key. */
  static struct store_account acc;
  snprintf(acc.name, sizeof acc.name, "fuzz");
  store_account_create(g.store, &acc, on_done, NULL);
  drain_store();
  uint8_t hash[32];
  SHA256((const unsigned char *)ACCOUNT_KEY, strlen(ACCOUNT_KEY), hash);
  store_key_add(g.store, acc.id, hash, "kk_fuzzacco", on_done, NULL);
  drain_store();

  g.api.loop = g.loop;
  g.api.store = g.store;
  g.api.dispatch = g.dispatch;
  g.api.cascade = g.cascade;
  snprintf(g.api.admin_key, sizeof g.api.admin_key, "%s", ADMIN_KEY);
  g.api.ttl_ms[0] = g.api.ttl_ms[2] = 86400000;
  g.api.ttl_ms[1] = 3600000;
  check(phone_plan_parse(PLAN_DEF, strlen(PLAN_DEF), PLAN_TZ, strlen(PLAN_TZ), &g.plan, NULL) == 0);
  g.api.plan = g.plan;
  g.imports = contact_imports_new(g.loop, g.store, g.plan, g.dir);
  check(g.imports != NULL);
  drain_store();   /* the start's marking of imports left running */
  g.api.imports = g.imports;
  g.api.max_import = 1 << 20;
  check(api_init(&g.api) == 0);
  g.api.ready = 1;
}

/* ---- the input as a request ------------------------------------------------- */

struct request {
  char *text;                /* the input after byte 0, NUL-terminated, cut into pieces */
  const char *method, *path, *body;
  size_t body_len;
  const char *query[2 * MAX_PAIRS], *headers[2 * MAX_PAIRS];
  int nquery, nheaders;
};

/* The next line of *p (cut at '\n', NULL at the end of the text). */
static char *next_line(char **p, char *end) {
  if (*p >= end) return NULL;
  char *line = *p, *nl = memchr(line, '\n', (size_t)(end - line));
  if (nl) {
    *nl = '\0';
    *p = nl + 1;
  } else {
    *p = end;
  }
  return line;
}

/* libmicrohttpd's decoding of a query part: '+' is a space, then %XX. */
static void unescape_arg(char *s) {
  for (char *c = s; *c; c++)
    if (*c == '+') *c = ' ';
  MHD_http_unescape(s);
}

static void parse_query(struct request *r, char *q) {
  while (q && *q && r->nquery < MAX_PAIRS) {
    char *amp = strchr(q, '&');
    if (amp) *amp = '\0';
    char *eq = strchr(q, '=');
    if (eq) *eq = '\0';
    unescape_arg(q);
    if (eq) unescape_arg(eq + 1);
    r->query[2 * r->nquery] = q;
    r->query[2 * r->nquery + 1] = eq ? eq + 1 : NULL;
    r->nquery++;
    q = amp ? amp + 1 : NULL;
  }
}

static void parse_request(struct request *r, const uint8_t *data, size_t size, uint8_t flags) {
  memset(r, 0, sizeof *r);
  r->text = malloc(size + 1);
  memcpy(r->text, data, size);
  r->text[size] = '\0';
  char *p = r->text, *end = r->text + size;
  char *line = next_line(&p, end);
  r->method = line && *line ? line : "GET";
  static char root[2];
  char *target = next_line(&p, end);
  if (target == NULL || *target == '\0') target = strcpy(root, "/");
  char *qm = strchr(target, '?');
  if (qm) *qm = '\0';
  MHD_http_unescape(target);  /* the path as the server hands it over */
  r->path = target;
  if (qm) parse_query(r, qm + 1);
  int auth = flags & 3;
  if (auth == 1 || auth == 2) {
    r->headers[0] = "Authorization";
    r->headers[1] = auth == 1 ? "Bearer " ACCOUNT_KEY : "Bearer " ADMIN_KEY;
    r->nheaders = 1;
  }
  while ((line = next_line(&p, end)) != NULL && *line && r->nheaders < MAX_PAIRS) {
    char *colon = strchr(line, ':');
    if (colon == NULL) continue;
    *colon = '\0';
    char *v = colon + 1;
    while (*v == ' ') v++;
    r->headers[2 * r->nheaders] = line;
    r->headers[2 * r->nheaders + 1] = v;
    r->nheaders++;
  }
  r->body = p;
  r->body_len = (size_t)(end - p);
}

/* Segment i of the path as api.c splits it, into out (empty when absent). */
static void segment(const char *path, int i, char out[128]) {
  const char *p = path;
  out[0] = '\0';
  while (*p == '/') p++;
  for (int k = 0; *p; k++) {
    const char *e = strchr(p, '/');
    size_t len = e ? (size_t)(e - p) : strlen(p);
    if (k == i) {
      if (len < 128) {
        memcpy(out, p, len);
        out[len] = '\0';
      }
      return;
    }
    if (!e) return;
    p = e + 1;
  }
}

/* PUT of a route or of Telegram / Viber settings would reach out (see the
   top): their parsers get the body here and the request becomes a POST. */
static void keep_inside(struct request *r) {
  if (strcmp(r->method, "PUT") != 0) return;
  char s0[128], s1[128], s2[128];
  segment(r->path, 0, s0);
  segment(r->path, 1, s1);
  segment(r->path, 2, s2);
  if (strcmp(s0, "v1") != 0) return;
  int route = strcmp(s1, "routes") == 0;
  int reg = strcmp(s1, "channels") == 0 && (strcmp(s2, "telegram") == 0 || strcmp(s2, "viber") == 0);
  if (!route && !reg) return;
  r->method = "POST";
  json_t *doc = json_loadb(r->body, r->body_len, 0, NULL);
  if (doc == NULL) return;
  char err[200];
  if (route) {
    struct dispatch_route_cfg cfg;
    api_route_cfg_parse(doc, s2, &cfg, err, sizeof err);
  } else {
    struct chan_cfg cfg;
    const char *field;
    chan_settings_parse(s2, doc, &cfg, err, sizeof err, &field);
  }
  json_decref(doc);
}

/* ---- running it -------------------------------------------------------------- */

struct outcome {
  int answered;
  int status;
  int json_ok;               /* a JSON answer parsed, or the answer is not JSON */
  int allow_ok;              /* a 405 carries Allow, or it is not a 405 */
};

static void on_answer(void *ud, const struct http_local_answer *ans) {
  struct outcome *o = ud;
  o->answered = 1;
  o->status = ans->status;
  o->json_ok = 1;
  if (ans->content_type && strncmp(ans->content_type, "application/json", 16) == 0) {
    json_t *j = json_loadb(ans->body, ans->len, 0, NULL);
    o->json_ok = j != NULL;
    json_decref(j);
  }
  o->allow_ok = ans->status != 405 || strstr(ans->headers, "Allow: ") != NULL;
}

static void on_watchdog(uv_timer_t *t) {
  (void)t;
  fprintf(stderr, "fuzz_api: the request was not answered within 10 s\n");
  __builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (!g.ready) setup();
  if (size < 1) return 0;
  struct request r;
  parse_request(&r, data + 1, size - 1, data[0]);
  keep_inside(&r);
  g.api.cascade = (data[0] & 4) ? NULL : g.cascade;
  struct outcome o = {0};
  struct http_req *req = http_local_new(r.method, r.path, r.query, r.nquery, r.headers,
                                        r.nheaders, r.body, r.body_len, on_answer, &o);
  uv_timer_start(&g.watchdog, on_watchdog, 10000, 0);
  /* As the server does: the pre-check with the headers, then the handler
     unless the pre-check answered. */
  api_precheck(&g.api, req);
  if (http_local_answers(req) == 0) api_handle(&g.api, req);
  while (!o.answered) uv_run(g.loop, UV_RUN_ONCE);
  uv_timer_stop(&g.watchdog);
  drain_store();               /* anything still to run after the answer */
  check(http_local_answers(req) == 1);
  check(o.status >= 100 && o.status <= 599);
  check(o.json_ok);
  check(o.allow_ok);
  http_local_free(req);
  free(r.text);
  return 0;
}
