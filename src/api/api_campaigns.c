/*
 * api_campaigns.c - campaign names and GET /v1/campaigns/{campaign}/report.
 *
 * A campaign is a campaign object (api_camps.c) or just the name messages
 * were sent with ("campaign" in POST /v1/messages); both count. The report
 * reads the figures the store keeps as the campaign goes (store_camp_counts:
 * a few rows per variant and channel, never the messages themselves):
 * recipients by status, messages by status, per channel and per variant
 * sent, delivered, read, failed, opted out and cost, "delivered twice", and
 * the saving against SMS alone.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api_int.h"
#include "api/api_links.h"
#include "core/kk_err.h"
#include "core/kk_mem.h"
#include "api/api_camp.h"
#include "store/store.h"
#include "store/store_campaign.h"

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

/* Figures of one channel or one variant. */
struct figures {
  int64_t recipients, messages, sent, delivered, read, failed, opted_out, cost, sms_only_cost;
};

static int is(const char *s, const char *a) { return strcmp(s, a) == 0; }

/* Adds row k (not a recipients' row) to f. */
static void figures_add(struct figures *f, const struct store_camp_count *k) {
  if (is(k->status, "opted_out")) {
    f->opted_out += k->n;
    return;
  }
  f->messages += k->n;
  f->cost += k->cost;
  f->sms_only_cost += k->sms_only_cost;
  if (is(k->status, "sent") || is(k->status, "delivered") || is(k->status, "read")) f->sent += k->n;
  if (is(k->status, "delivered") || is(k->status, "read")) f->delivered += k->n;
  if (is(k->status, "read")) f->read += k->n;
  if (is(k->status, "failed")) f->failed += k->n;
}

static json_t *figures_json(const struct figures *f) {
  return json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:o}", "messages", (json_int_t)f->messages,
                   "sent", (json_int_t)f->sent, "delivered", (json_int_t)f->delivered, "read",
                   (json_int_t)f->read, "failed", (json_int_t)f->failed, "opted_out",
                   (json_int_t)f->opted_out, "cost", api_money(f->cost));
}

static void add_count(json_t *o, const char *key, int64_t n) {
  json_t *v = json_object_get(o, key);
  json_int_t had = v ? json_integer_value(v) : 0;
  json_object_set_new(o, key, json_integer(had + (json_int_t)n));
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
  struct store_camp_count rows[STORE_CAMP_COUNTS_MAX];
  int n;
  char *spec;                       /* the campaign object's settings; NULL: none */
  struct api_links_counts links;    /* the clicks part, read at the same time */
  int reads, rc, links_rc;          /* reads under way; their results */
};

/* by_variant: the campaign's variants in order, each with its figures. */
static json_t *variants_json(const struct report_ctx *c) {
  json_t *doc = c->spec ? json_loads(c->spec, 0, NULL) : NULL;
  struct camp_spec sp = {0};
  struct api_err e = {0};
  json_t *out = json_array();
  if (doc == NULL || camp_spec_parse(doc, &sp, &e) != 0) {
    json_decref(doc);
    return out;
  }
  for (int v = 0; v < sp.nvariants; v++) {
    struct figures f = {0};
    json_t *rs = json_object();
    for (int i = 0; i < c->n; i++) {
      const struct store_camp_count *k = &c->rows[i];
      if (k->variant != v) continue;
      if (strncmp(k->status, "r:", 2) == 0) {
        f.recipients += k->n;
        add_count(rs, k->status + 2, k->n);
      } else {
        figures_add(&f, k);
      }
    }
    json_t *o = figures_json(&f);
    json_object_set_new(o, "variant", json_integer(v));
    json_object_set_new(o, "template", json_string(sp.variants[v].tmpl));
    json_object_set_new(o, "share", json_real(sp.variants[v].share));
    json_object_set_new(o, "recipients", json_integer((json_int_t)f.recipients));
    json_object_set_new(o, "by_recipient_status", rs);
    json_object_set_new(o, "sms_only_cost", api_money(f.sms_only_cost));
    json_object_set_new(o, "savings", api_money(f.sms_only_cost - f.cost));
    json_array_append_new(out, o);
  }
  json_decref(doc);
  return out;
}

/* The whole report from the kept rows. */
static json_t *report_doc(const struct report_ctx *c) {
  json_t *by_status = json_object(), *by_channel = json_object(), *rstatus = json_object();
  json_t *channels = json_object();
  struct figures all = {0};
  int64_t twice = 0, twice_msgs = 0;
  for (int i = 0; i < c->n; i++) {
    const struct store_camp_count *k = &c->rows[i];
    if (strncmp(k->status, "r:", 2) == 0) {
      all.recipients += k->n;
      add_count(rstatus, k->status + 2, k->n);
      continue;
    }
    figures_add(&all, k);
    twice += k->twice;
    twice_msgs += k->twice_msgs;
    if (!is(k->status, "opted_out")) add_count(by_status, k->status, k->n);
    if (!k->channel[0]) continue;
    if (is(k->status, "sent") || is(k->status, "delivered") || is(k->status, "read"))
      add_count(by_channel, k->channel, k->n);
  }
  /* per channel, each channel's rows together (they come ordered by variant first) */
  for (int i = 0; i < c->n; i++) {
    const char *ch = c->rows[i].channel;
    if (!ch[0] || strncmp(c->rows[i].status, "r:", 2) == 0 || json_object_get(channels, ch))
      continue;
    struct figures f = {0};
    for (int j = i; j < c->n; j++)
      if (is(c->rows[j].channel, ch) && strncmp(c->rows[j].status, "r:", 2) != 0)
        figures_add(&f, &c->rows[j]);
    json_object_set_new(channels, ch, figures_json(&f));
  }
  json_t *doc = json_pack(
      "{s:s, s:I, s:o, s:o, s:o, s:I, s:I, s:o, s:o, s:o, s:I, s:o}", "campaign", c->campaign,
      "messages", (json_int_t)all.messages, "by_status", in_life_order(by_status), "by_channel",
      by_channel, "channels", channels, "delivered_twice", (json_int_t)twice,
      "messages_delivered_twice", (json_int_t)twice_msgs, "cost", api_money(all.cost),
      "sms_only_cost", api_money(all.sms_only_cost), "savings",
      api_money(all.sms_only_cost - all.cost), "opted_out", (json_int_t)all.opted_out,
      "by_variant", variants_json(c));
  if (c->spec) {
    json_object_set_new(doc, "recipients", json_integer((json_int_t)all.recipients));
    json_object_set_new(doc, "by_recipient_status", rstatus);
  } else {
    json_decref(rstatus);
  }
  return doc;
}

/* Answers the report once both its reads are done, and frees c. */
static void report_answer(struct report_ctx *c) {
  if (--c->reads > 0) return;
  struct http_req *req = c->req;
  int rc = c->rc ? c->rc : c->links_rc;
  if (rc == KK_ENOENT)
    api_error(req, 404, "not_found", NULL, "no campaign or message of campaign %s in this account",
              c->campaign);
  else if (rc)
    api_error(req, 503, "store_unavailable", NULL, "cannot read the campaign now");
  else {
    json_t *doc = report_doc(c);
    api_links_counts_add(&c->links, doc);   /* the clicks and conversions (api_links.c) */
    api_json(req, 200, doc, NULL);
  }
  free(c->spec);
  free(c);
}

/* Store done callbacks of the report's two reads (on the store's pool, side
   by side: one wait for a pool thread and the loop, not two in turn). */
static void on_report(void *arg, int rc) {
  struct report_ctx *c = arg;
  c->rc = rc;
  report_answer(c);
}

static void on_clicks(void *arg, int rc) {
  struct report_ctx *c = arg;
  c->links_rc = rc;
  report_answer(c);
}

void api_campaign_report(struct api_call *call) {
  struct http_req *req = call->req;
  const char *campaign = api_param(call, "name");
  if (!api_campaign_valid(campaign, strlen(campaign))) {
    api_error(req, 422, "invalid_campaign", "campaign", "campaign: %s", API_CAMPAIGN_RULE);
    return;
  }
  /* Freed in on_report(); filled by the read in the store's thread pool. */
  struct report_ctx *c = kk_xcalloc(1, sizeof *c);
  c->req = req;
  c->a = call->a;
  c->account_id = call->account_id;
  snprintf(c->campaign, sizeof c->campaign, "%s", campaign);
  c->reads = 2;
  store_camp_counts_async(call->a->store, call->account_id, c->campaign, c->rows,
                          STORE_CAMP_COUNTS_MAX, &c->n, &c->spec, on_report, c);
  api_links_counts_read(call->a, call->account_id, c->campaign, &c->links, on_clicks, c);
}
