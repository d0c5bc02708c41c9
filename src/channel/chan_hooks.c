/*
 * chan_hooks.c - provider webhooks (see chan_hooks.h): kaskad's URL for
 * them, their registration with Telegram and Viber, and applying a verified
 * callback's statuses and messages through the store.
 */
#include "channel/chan_hooks.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "channel/chan_engine_int.h"
#include "core/kk_err.h"
#include "core/kk_log.h"
#include "core/kk_mem.h"

#define LOGCTX CHAN_LOGCTX

void chan_hook_url(struct chan_engine *e, int64_t scope, const char *channel, char *out,
                   size_t cap) {
  char who[48] = "default";
  if (scope) {
    struct store_account acc;
    if (store_account_get_by_id(e->store, scope, &acc) == 0)
      snprintf(who, sizeof who, "%s", acc.public_id);
  }
  size_t n = strlen(e->o.public_url);
  while (n > 0 && e->o.public_url[n - 1] == '/') n--;
  snprintf(out, cap, "%.*s/v1/hooks/%s/%s", (int)n, e->o.public_url, channel, who);
}

/* ---- applying a callback ---------------------------------------------------- */

/* A verified callback whose statuses (and messages from people) are being
   stored: as many items as it had statuses (a callback is small; the parsed
   form is not). */
struct hook_ctx {
  struct chan_engine *e;
  char channel[20];
  int left;                          /* operations not yet committed */
  int rc;                            /* the first that failed, 0 if none */
  char reply[256];                   /* the answer once they are */
  void (*reply_fn)(void *ud, int status, const char *body);
  void *ud;
  int n;
  struct hook_item {
    struct chan_status cs;           /* what st points into */
    struct store_chan_status st;
  } item[];
};

/* One operation of the callback is committed; the last one answers. */
static void hook_stored(struct hook_ctx *h, int rc) {
  if (rc && !h->rc) h->rc = rc;
  if (--h->left > 0) return;
  struct chan_counters *n = chan_engine_counters(h->e, h->channel);
  int matched = 0;
  for (int i = 0; i < h->n; i++) matched += h->item[i].st.matched > 0;
  n->hook_applied += (uint64_t)matched;
  n->hook_unmatched += (uint64_t)(h->n - matched);
  h->reply_fn(h->ud, h->rc ? 503 : 200, h->rc ? "" : h->reply);
  free(h);
}

static void on_status_stored(void *arg, int rc) {
  struct hook_ctx *h = arg;
  if (rc) kk_error(LOGCTX, "%s callback: status not stored: %s", h->channel, kk_strerror(rc));
  hook_stored(h, rc);
}

static void on_inbound_stored(void *arg, int rc) {
  struct hook_ctx *h = arg;
  if (rc)
    kk_error(LOGCTX, "%s callback: a person's message not stored: %s", h->channel,
             kk_strerror(rc));
  hook_stored(h, rc);
}

/* Stores what a verified callback says; its context answers at the end. */
static void hook_store(struct chan_engine *e, int64_t scope, const struct chan_hook_out *out,
                       int ninbound, struct hook_ctx *h) {
  for (int i = 0; i < out->nstatus; i++) {
    struct hook_item *it = &h->item[i];
    it->cs = out->st[i];
    const struct chan_status *s = &it->cs;
    it->st = (struct store_chan_status){
        .channel = h->channel, .scope = scope, .provider_id = s->provider_id,
        .peer = s->peer, .read_upto = s->read_upto, .status = s->status,
        .error = s->error[0] ? s->error : NULL, .at = s->at ? s->at : store_now_ms()};
    store_chan_status(e->store, &it->st, on_status_stored, h);
  }
  int wa = strcmp(h->channel, "whatsapp") == 0;
  for (int i = 0; i < ninbound; i++) {
    /* A WhatsApp message opens its window. */
    if (wa) store_wa_inbound(e->store, scope, out->in[i].from, out->in[i].at, on_inbound_stored, h);
    /* And the message itself, for the account's GET /v1/replies and its
       stop, start and help words. */
    struct store_inbound rin = {.channel = h->channel, .scope = scope, .from = out->in[i].from,
                                .user = out->in[i].user, .text = out->in[i].text,
                                .at = out->in[i].at};
    store_inbound_add(e->store, &rin, on_inbound_stored, h);
  }
}

void chan_hook_apply(struct chan_engine *e, const char *channel, int64_t scope,
                     const struct chan_hook_in *in,
                     void (*reply)(void *ud, int status, const char *body), void *ud) {
  const struct chan_driver *drv = chan_driver(channel);
  const struct chan_cfg *cfg = chan_settings_find(e, scope, channel);
  if (drv == NULL || drv->hook == NULL || cfg == NULL) {
    reply(ud, 404, "");
    return;
  }
  struct chan_hook_out out;   /* the driver clears what it uses (chan_hook_init) */
  int rc = drv->hook(cfg, in, &out);
  struct chan_counters *n = chan_engine_counters(e, channel);
  if (rc != 0) {
    if (rc == KK_EAUTH)
      n->hook_forged++;
    else
      n->hook_malformed++;
    kk_warnx(LOGCTX, "%s callback for %s refused (%d): %s", channel,
             scope ? "an account" : "the operator's settings", out.http_status,
             out.reason[0] ? out.reason : kk_strerror(rc));
    reply(ud, out.http_status ? out.http_status : (rc == KK_EAUTH ? 403 : 400), "");
    return;
  }
  int ninbound = out.ninbound;
  if (out.nstatus == 0 && ninbound == 0) {
    reply(ud, out.http_status ? out.http_status : 200, out.reply);
    return;
  }
  /* Freed in hook_stored() once every status and message is committed. */
  struct hook_ctx *h = kk_xmalloc(sizeof *h + (size_t)out.nstatus * sizeof h->item[0]);
  h->e = e;
  snprintf(h->channel, sizeof h->channel, "%s", channel);
  memcpy(h->reply, out.reply, sizeof h->reply);
  h->reply_fn = reply;
  h->ud = ud;
  h->n = out.nstatus;
  /* a WhatsApp message: its window and its text */
  h->left = out.nstatus + (strcmp(channel, "whatsapp") == 0 ? 2 : 1) * ninbound;
  h->rc = 0;
  hook_store(e, scope, &out, ninbound, h);
}

/* ---- webhook registration ------------------------------------------------------ */

struct reg_ctx {
  struct chan_req req;
  void (*done)(void *ud, int status, const char *detail);
  void *ud;
  char channel[20];
};

/* The answer to a registration in kaskad's words: the provider's body is
   never echoed (the URL may lead anywhere the account chose), only the HTTP
   status and the provider's numeric error code. 1 when it succeeded. */
static int registration_verdict(const struct http_client_resp *resp, char *detail, size_t cap) {
  if (resp->status == 0) {
    snprintf(detail, cap, "%s", resp->refused ? resp->error : "the provider did not answer");
    return 0;
  }
  if (resp->status < 200 || resp->status > 299) {
    snprintf(detail, cap, "the provider refused the registration (HTTP %ld)", resp->status);
    return 0;
  }
  /* Both providers answer 200 with a verdict in the body: Telegram
     {"ok":false,"error_code":N}, Viber {"status":N} (0 is success). */
  json_t *j = json_loadb(resp->body, resp->body_len, 0, NULL);
  json_t *okv = json_object_get(j, "ok");
  json_t *st = json_object_get(j, "status");
  json_t *code = okv ? json_object_get(j, "error_code") : st;
  int ok = okv ? json_is_true(okv) : st ? json_is_integer(st) && json_integer_value(st) == 0 : 1;
  if (!ok && json_is_integer(code))
    snprintf(detail, cap, "the provider refused the registration (HTTP %ld, code %lld)",
             resp->status, (long long)json_integer_value(code));
  else if (!ok)
    snprintf(detail, cap, "the provider's answer is not a success (HTTP %ld)", resp->status);
  json_decref(j);
  return ok;
}

static void reg_free(struct reg_ctx *r) {
  chan_req_free(&r->req);
  free(r);
}

static void on_registered(void *arg, const struct http_client_resp *resp) {
  struct reg_ctx *r = arg;
  char detail[200] = "";
  int ok = registration_verdict(resp, detail, sizeof detail);
  if (ok)
    kk_info(LOGCTX, "%s webhook registered", r->channel);
  else
    kk_warnx(LOGCTX, "%s webhook registration failed: %s", r->channel, detail);
  r->done(r->ud, ok ? 0 : KK_EPROTO, ok ? "" : detail);
  reg_free(r);
}

void chan_hook_register(struct chan_engine *e, int64_t scope, const char *channel,
                        void (*done)(void *ud, int status, const char *detail), void *ud) {
  const struct chan_driver *drv = chan_driver(channel);
  const struct chan_cfg *cfg = chan_settings_find(e, scope, channel);
  if (drv == NULL || drv->build_register == NULL || cfg == NULL) {
    done(ud, 1, "");
    return;
  }
  /* Freed in on_registered() or below. */
  struct reg_ctx *r = kk_xcalloc(1, sizeof *r);
  r->done = done;
  r->ud = ud;
  snprintf(r->channel, sizeof r->channel, "%s", channel);
  char url[512];
  chan_hook_url(e, scope, channel, url, sizeof url);
  if (drv->build_register(cfg, url, &r->req) != 0) {
    reg_free(r);
    done(ud, KK_EINVAL, "cannot build the registration request");
    return;
  }
  struct http_client_req hr = chan_engine_http_req(e, &r->req);
  if (e->http == NULL || http_client_do(e->http, &hr, on_registered, r) != 0) {
    reg_free(r);
    done(ud, KK_EIO, "cannot start the request");
  }
}
