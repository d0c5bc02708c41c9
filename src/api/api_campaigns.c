/*
 * api_campaigns.c - campaign names and GET /v1/campaigns/{campaign}/report.
 *
 * A campaign is, for now, the name a message was sent with ("campaign" in
 * POST /v1/messages); the report adds up that account's messages of it:
 * statuses, the channels that got them there, "delivered twice", cost and
 * the saving against SMS alone.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api_int.h"
#include "api/api_links.h"
#include "core/kk_err.h"
#include "core/kk_mem.h"
#include "store/store.h"

_Static_assert(STORE_CAMPAIGN_MAX == 64, "API_CAMPAIGN_RULE states the limit");

int api_campaign_valid(const char *s, size_t len) {
  if (len == 0 || len > STORE_CAMPAIGN_MAX) return 0;
  for (size_t i = 0; i < len; i++) {
    char c = s[i];
    int ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
             c == '_' || c == '-' || c == '.';
    if (!ok) return 0;
  }
  return 1;
}

/* What the report gathers from the store's groups. */
struct report {
  json_t *by_status;         /* status -> messages */
  json_t *by_channel;        /* channel -> messages that reached sent or better there */
};

static void add_count(json_t *o, const char *key, int64_t n) {
  json_t *v = json_object_get(o, key);
  json_int_t had = v ? json_integer_value(v) : 0;
  json_object_set_new(o, key, json_integer(had + (json_int_t)n));
}

/* A status some channel reached (the message's channel is the one that got
   there first); other messages show the step being tried or the last one. */
static int reached(const char *status) {
  return strcmp(status, "sent") == 0 || strcmp(status, "delivered") == 0 ||
         strcmp(status, "read") == 0;
}

static void on_group(void *arg, const char *status, const char *channel, int64_t n) {
  struct report *r = arg;
  add_count(r->by_status, status, n);
  if (reached(status) && channel[0]) add_count(r->by_channel, channel, n);
}

/* by_status in the order of a message's life (steals o, returns a new object). */
static json_t *in_life_order(json_t *o) {
  json_t *out = json_object();
  for (int i = 0; i < API_MSG_NSTATUSES; i++) {
    json_t *v = json_object_get(o, api_msg_statuses[i]);
    if (v) json_object_set(out, api_msg_statuses[i], v);
  }
  json_object_update_missing(out, o);
  json_decref(o);
  return out;
}

/* A report being read in the store's thread pool. */
struct report_ctx {
  struct http_req *req;
  struct api *a;                    /* and account_id: the clicks part's read */
  int64_t account_id;
  char campaign[STORE_CAMPAIGN_MAX + 1];
  struct report r;                  /* filled on a pool thread, then read here */
  struct store_campaign_totals t;
};

/* Store done callback of a report: answers and frees c. */
static void on_report(void *arg, int rc) {
  struct report_ctx *c = arg;
  struct report r = c->r;
  struct store_campaign_totals t = c->t;
  struct http_req *req = c->req;
  const char *campaign = c->campaign;
  if (rc) {
    json_decref(r.by_status);
    json_decref(r.by_channel);
    if (rc == KK_ENOENT)
      api_error(req, 404, "not_found", NULL, "no message of campaign %s in this account",
                campaign);
    else
      api_error(req, 503, "store_unavailable", NULL, "cannot read the campaign now");
    free(c);
    return;
  }
  json_t *doc = json_pack("{s:s, s:I, s:o, s:o, s:I, s:I, s:o, s:o, s:o}", "campaign", campaign,
                          "messages", (json_int_t)t.messages, "by_status",
                          in_life_order(r.by_status), "by_channel", r.by_channel,
                          "delivered_twice", (json_int_t)t.delivered_twice,
                          "messages_delivered_twice", (json_int_t)t.messages_delivered_twice,
                          "cost", api_money(t.cost), "sms_only_cost", api_money(t.sms_only_cost),
                          "savings", api_money(t.sms_only_cost - t.cost));
  /* the clicks and conversions (api_links.c) answer it */
  api_links_report(c->a, req, c->account_id, campaign, doc);
  free(c);
}

void api_campaign_report(struct api_call *call) {
  struct http_req *req = call->req;
  const char *campaign = api_param(call, "name");
  if (!api_campaign_valid(campaign, strlen(campaign))) {
    api_error(req, 422, "invalid_campaign", "campaign", "campaign: %s", API_CAMPAIGN_RULE);
    return;
  }
  /* Freed in on_report(); the sums are read in the store's thread pool, and
     the JSON objects are touched only by that read until it is done. */
  struct report_ctx *c = kk_xcalloc(1, sizeof *c);
  c->req = req;
  c->a = call->a;
  c->account_id = call->account_id;
  snprintf(c->campaign, sizeof c->campaign, "%s", campaign);
  c->r.by_status = json_object();
  c->r.by_channel = json_object();
  store_campaign_report_async(call->a->store, call->account_id, c->campaign, on_group, &c->r, &c->t,
                              on_report, c);
}
