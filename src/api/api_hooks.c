/*
 * api_hooks.c - provider callbacks in the HTTP API:
 *
 *   GET/POST /v1/hooks/{channel}/{scope}      (no API key: the provider's
 *                                              signature, checked by its driver)
 */
#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api_int.h"
#include "cascade/cascade.h"
#include "channel/channel.h"
#include "core/kk_cfg.h"
#include "core/kk_err.h"
#include "core/kk_log.h"
#include "core/kk_mem.h"
#include "core/kk_net.h"
#include "core/kk_rate.h"
#include "dispatch/dispatch.h"
#include "http/http_client.h"
#include "http/http_server.h"

#define LOGCTX "api"
#define HOOK_SCOPES_MAX 65536  /* webhook scopes with a token bucket at once */

/* ---- provider callbacks ---------------------------------------------------------- */

static const char *hook_header(void *ctx, const char *name) { return http_req_header(ctx, name); }
static const char *hook_query(void *ctx, const char *name) { return http_req_query(ctx, name); }

static void on_hook_reply(void *ud, int status, const char *body) {
  struct http_req *req = ud;
  api_respond(req, status, "text/plain", body, strlen(body), NULL);
}

/*
 * A scope's webhook takes hook_rate requests a second (twice that in a
 * burst), so that one scope's flood cannot fill the store's writer; beyond
 * that it answers 429 with Retry-After, which providers retry. 1, or 0 when
 * answered.
 */
static int hook_allowed(struct api *a, struct http_req *req, const char *channel,
                        int64_t scope) {
  if (a->hook_limit == NULL) {
    double rate = a->hook_rate > 0 ? (double)a->hook_rate : 200.0;
    a->hook_limit = kk_rate_new(rate, 2 * rate, HOOK_SCOPES_MAX);
  }
  int64_t wait = kk_rate_take(a->hook_limit, scope, (int64_t)uv_now(a->loop));
  if (wait == 0) return 1;
  a->hooks_limited++;
  char header[64];
  snprintf(header, sizeof header, "Retry-After: %lld\r\n", (long long)((wait + 999) / 1000));
  if ((a->hooks_limited & (a->hooks_limited - 1)) == 0)
    kk_warnx(LOGCTX, "%s webhook of scope %lld over its rate: 429 (%llu so far)", channel,
             (long long)scope, (unsigned long long)a->hooks_limited);
  struct api_err e = {.status = 429, .code = "rate_limited"};
  snprintf(e.message, sizeof e.message, "too many webhook requests for this scope; retry later");
  json_t *err = json_pack("{s:s, s:s}", "code", e.code, "message", e.message);
  api_json(req, 429, json_pack("{s:o}", "error", err), header);
  return 0;
}

/* Before the method: webhooks exist only while the engine runs. */
int api_hook_check(struct api_call *c) {
  if (c->a->cascade != NULL) return 0;
  api_not_found(c);
  return KK_ECLOSED;
}

void api_hook(struct api_call *c) {
  struct api *a = c->a;
  struct http_req *req = c->req;
  const char *m = http_req_method(req);
  const char *channel = api_param(c, "channel");
  const char *scope_id = api_param(c, "scope");
  int64_t scope = 0;
  if (strcmp(scope_id, "default") != 0) {
    struct store_account acc;
    if (store_account_get(a->store, scope_id, &acc) != 0) {
      kk_warnx(LOGCTX, "%s callback for unknown account %.40s refused", channel, scope_id);
      api_error(req, 404, "not_found", NULL, "no such webhook");
      return;
    }
    scope = acc.id;
  }
  if (!hook_allowed(a, req, channel, scope)) return;
  size_t len = 0;
  const char *body = http_req_body(req, &len);
  struct chan_hook_in in = {.method = m, .body = body ? body : "", .len = body ? len : 0,
                            .header = hook_header, .query = hook_query, .ctx = req,
                            .now_ms = store_now_ms()};
  chan_hook_apply(cascade_engine(a->cascade), channel, scope, &in, on_hook_reply, req);
}
