/*
 * api_policy.c - GET|PUT /v1/policy: the account's rules (quiet hours,
 * frequency caps, prohibited content, foreign messengers; accept_rules.h),
 * stored as the account's settings row "policy" and held in memory by the
 * accept path. PUT replaces the document: the keys it leaves out are back
 * to their defaults; keys this module does not know are kept as given.
 * roaming_ads (what becomes of an advertising SMS to a subscriber in
 * roaming) is the account's own setting, the one the operator's
 * PATCH /v1/accounts/{id} sets: shown here from the account, and a PUT that
 * names it updates the account (one that leaves it out leaves it as it is).
 *
 * POST /v1/test/clock (operator, only with the setting test_clock = on)
 * moves kaskad's clock forward, so tests see quiet hours end without
 * waiting for them.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "accept/accept_rules.h"
#include "api/api_int.h"
#include "cascade/cascade.h"
#include "core/kk_err.h"
#include "core/kk_mem.h"
#include "core/kk_net.h"
#include "dispatch/dispatch.h"
#include "http/http_client.h"
#include "policy/pol_words.h"

/* A PUT waiting for its commit. */
struct policy_put {
  struct http_req *req;
  struct api *a;
  char *text;                   /* owned */
  int roaming;                  /* 1: acc's roaming_ads is to be stored first */
  struct store_account acc;     /* alive until the update is done */
};

/* The document with the reply words' defaults (policy/pol_words.h) for the
   keys it leaves out, and the account's roaming_ads. */
static void answer(struct http_req *req, const char *text, const struct store_account *acc) {
  json_t *doc = json_loads(text, 0, NULL);
  if (!json_is_object(doc)) {
    json_decref(doc);
    doc = json_object();
  }
  struct pol_words *w = kk_xmalloc(sizeof *w);
  const char *field;
  char err[8];
  (void)pol_words_parse(text, w, &field, err, sizeof err);
  char *words = pol_words_doc(w);
  free(w);
  json_t *wd = json_loads(words ? words : "{}", 0, NULL);
  free(words);
  const char *k;
  json_t *v;
  json_object_foreach(wd, k, v) {
    json_t *have = json_object_get(doc, k);
    if (have == NULL || json_is_null(have)) json_object_set(doc, k, v);
  }
  json_decref(wd);
  if (acc) json_object_set_new(doc, "roaming_ads", json_string(API_ROAMING_ADS(acc)));
  api_json(req, 200, doc, NULL);
}

/* The account of the call (NULL when it is gone). */
static const struct store_account *account_of(struct api *a, int64_t id,
                                              struct store_account *out) {
  return store_account_get_by_id(a->store, id, out) == 0 ? out : NULL;
}

void api_policy_get(struct api_call *c) {
  const struct accept_rules *ru = c->a->accept.rules;
  const struct pol_rules *r = accept_rules_of(ru, c->account_id);
  char *text = pol_rules_doc(r, accept_rules_doc(ru, c->account_id));
  struct store_account acc;
  answer(c->req, text, account_of(c->a, c->account_id, &acc));
  free(text);
}

static void on_saved(void *arg, int rc) {
  struct policy_put *p = arg;
  struct store_account acc;
  if (rc)
    api_error(p->req, 503, "store_unavailable", NULL, "the policy could not be stored");
  else   /* in force with the commit (the store's note) */
    answer(p->req, p->text, p->roaming ? &p->acc : account_of(p->a, p->acc.id, &acc));
  free(p->text);
  free(p);
}

/* The account's roaming_ads stored: then the document. */
static void on_account_saved(void *arg, int rc) {
  struct policy_put *p = arg;
  if (rc) {
    api_error(p->req, 503, "store_unavailable", NULL, "roaming_ads could not be stored");
    free(p->text);
    free(p);
    return;
  }
  store_channel_put(p->a->store, p->acc.id, ACCEPT_RULES_ROW, p->text, on_saved, p);
}

void api_policy_put(struct api_call *c) {
  json_t *doc = api_call_body(c);
  if (!doc) return;
  if (!json_is_object(doc)) {
    api_error(c->req, 422, "invalid_policy", NULL, "the policy is a JSON object");
    return;
  }
  /* Freed in on_saved. */
  struct policy_put *p = kk_xcalloc(1, sizeof *p);
  p->req = c->req;
  p->a = c->a;
  p->acc.id = c->account_id;
  json_t *roaming = json_object_get(doc, "roaming_ads");
  if (roaming) {
    struct api_err e = {0};
    if (store_account_get_by_id(c->a->store, c->account_id, &p->acc) != 0) {
      free(p);
      api_error(c->req, 401, "unauthorized", NULL, "the key's account no longer exists");
      return;
    }
    if (api_roaming_ads_parse(roaming, p->acc.roaming_ads, sizeof p->acc.roaming_ads, &e)) {
      free(p);
      api_error_from(c->req, &e);
      return;
    }
    p->roaming = 1;
    json_object_del(doc, "roaming_ads");   /* the account holds it */
  }
  char *body = json_dumps(doc, JSON_COMPACT);
  struct pol_rules r;
  const char *field = NULL;
  char err[200];
  struct pol_words *w = kk_xmalloc(sizeof *w);
  int bad = pol_words_parse(body, w, &field, err, sizeof err) != 0;
  /* where replies_webhook leads: as a message's callback_url */
  int urc = bad || !w->replies_webhook[0]
                ? 0
                : kk_net_url_check(w->replies_webhook, "http,https", http_client_allowed(), err,
                                   sizeof err);
  free(w);
  if (urc) {
    free(body);
    free(p);
    api_error(c->req, 422, urc == KK_EAUTH ? "url_not_allowed" : "invalid_policy",
              "replies_webhook", "replies_webhook: %s", err);
    return;
  }
  if (bad || pol_rules_parse(body, &r, &field, err, sizeof err) != 0) {
    free(body);
    free(p);
    api_error(c->req, 422, "invalid_policy", field, "%s", err);
    return;
  }
  p->text = pol_rules_doc(&r, body);
  free(body);
  if (p->roaming)
    store_account_update(c->a->store, &p->acc, on_account_saved, p);
  else
    store_channel_put(c->a->store, c->account_id, ACCEPT_RULES_ROW, p->text, on_saved, p);
}

void api_test_clock(struct api_call *c) {
  if (!c->a->test_clock) {
    api_error(c->req, 404, "not_found", NULL, "the test clock is off (setting test_clock)");
    return;
  }
  json_t *doc = api_call_body(c);
  if (!doc) return;
  json_t *shift = json_object_get(doc, "shift");
  int64_t ms = 0;
  if (json_is_integer(shift) && json_integer_value(shift) > 0)
    ms = json_integer_value(shift) * 1000;
  else if (!json_is_string(shift) || pol_period_parse(json_string_value(shift), &ms) != 0) {
    api_error(c->req, 422, "invalid_shift", "shift", "shift: \"12h\", \"30m\" or seconds");
    return;
  }
  store_clock_shift(ms);
  /* What waited for a time now past goes now. */
  dispatch_clock_moved(c->a->dispatch);
  if (c->a->cascade) cascade_clock_moved(c->a->cascade);
  char now[32];
  api_time(store_now_ms(), now);
  api_json(c->req, 200, json_pack("{s:s}", "now", now), NULL);
}
