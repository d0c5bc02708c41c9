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
 *
 * While a campaign object still has recipients to create (its report's
 * by_recipient_status has "planned"), dashboards poll its report. The last
 * report read is then kept (struct report_memo) and answers at once, on the
 * loop, for up to REPORT_KEEP_MS; once it is REPORT_FRESH_MS old, a request
 * that it answers also starts a read of the store in the background that
 * replaces it. So a running campaign's figures are at most REPORT_FRESH_MS
 * plus one read behind, polling costs the store at most one read per
 * campaign every REPORT_FRESH_MS, and a report is not held up behind the
 * store's pool and the loop's turns. A report not asked for within
 * REPORT_KEEP_MS, and every report of a campaign that has created all of its
 * messages (or of a name only), is read afresh.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api_int.h"
#include "api/api_links.h"
#include "core/kk_err.h"
#include "core/kk_hash.h"
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
  int64_t recipients, messages, sent, delivered, read, failed, expired, opted_out, cost,
      sms_only_cost, twice;
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
  f->twice += k->twice;
  if (is(k->status, "expired")) f->expired += k->n;
  if (is(k->status, "sent") || is(k->status, "delivered") || is(k->status, "read")) f->sent += k->n;
  if (is(k->status, "delivered") || is(k->status, "read")) f->delivered += k->n;
  if (is(k->status, "read")) f->read += k->n;
  if (is(k->status, "failed")) f->failed += k->n;
}

static json_t *figures_json(const struct figures *f) {
  return json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:o, s:o, s:o, s:I}", "messages",
                   (json_int_t)f->messages, "sent", (json_int_t)f->sent, "delivered",
                   (json_int_t)f->delivered, "read", (json_int_t)f->read, "failed",
                   (json_int_t)f->failed, "expired", (json_int_t)f->expired, "opted_out",
                   (json_int_t)f->opted_out, "cost", api_money(f->cost), "sms_only_cost",
                   api_money(f->sms_only_cost), "savings", api_money(f->sms_only_cost - f->cost),
                   "delivered_twice", (json_int_t)f->twice);
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

#define REPORT_MEMO_SLOTS 64     /* direct-mapped by account and campaign */
#define REPORT_FRESH_MS 200      /* a kept report older than this is read again */
#define REPORT_KEEP_MS 1000      /* ... and one older than this no longer answers */

/* One running campaign's last report. */
struct report_memo {
  int64_t account_id;            /* 0: empty */
  char campaign[STORE_CAMPAIGN_MAX + 1];
  char *body;                    /* the answer, JSON and a newline; owned; NULL: none */
  size_t len;
  uint64_t read_at;              /* loop ms its reads began */
  uint64_t seq;                  /* of the read it came from, or of the forgetting */
  int refreshing;                /* a read that replaces it is under way */
};

struct report_memos {
  uint64_t seq;                  /* reads started and forgettings, in order */
  struct report_memo slot[REPORT_MEMO_SLOTS];
};

static struct report_memo *memo_slot(struct api *a, int64_t account_id, const char *campaign) {
  uint64_t h = kk_fnv_str(KK_FNV_SEED ^ (uint64_t)account_id, campaign);
  return &a->report_memo->slot[h % REPORT_MEMO_SLOTS];
}

static int memo_is(const struct report_memo *m, int64_t account_id, const char *campaign) {
  return m->account_id == account_id && strcmp(m->campaign, campaign) == 0;
}

/* Makes m campaign's, empty, as of seq. */
static void memo_reset(struct report_memo *m, int64_t account_id, const char *campaign,
                       uint64_t seq) {
  free(m->body);
  *m = (struct report_memo){.account_id = account_id, .seq = seq};
  snprintf(m->campaign, sizeof m->campaign, "%s", campaign);
}

void api_campaign_memo_forget(struct api *a, int64_t account_id, const char *campaign) {
  if (a->report_memo == NULL) return;
  /* a read begun before now keeps nothing (its seq is lower) */
  memo_reset(memo_slot(a, account_id, campaign), account_id, campaign, ++a->report_memo->seq);
}

void api_campaign_memo_free(struct api *a) {
  if (a->report_memo == NULL) return;
  for (int i = 0; i < REPORT_MEMO_SLOTS; i++) free(a->report_memo->slot[i].body);
  free(a->report_memo);
  a->report_memo = NULL;
}

/* A report being read in the store's thread pool (req NULL: a kept report's
   refresh, answering nobody). */
struct report_ctx {
  struct http_req *req;
  uint64_t began, seq;              /* loop ms; the reads' place in report_memos.seq */
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

/* 1 if doc is a campaign's that has recipients left to create. */
static int still_creating(const json_t *doc) {
  const json_t *n = json_object_get(json_object_get(doc, "by_recipient_status"), "planned");
  return json_integer_value(n) > 0;
}

/* Keeps body (len bytes, copied) as campaign's report while the campaign
   still creates messages, else forgets any kept one; unless a read begun
   later, or a forgetting, got there first. */
static void memo_settle(const struct report_ctx *c, const char *body, size_t len, int creating) {
  struct api *a = c->a;
  if (a->report_memo == NULL) return;   /* freed: the api is going */
  struct report_memo *m = memo_slot(a, c->account_id, c->campaign);
  int mine = memo_is(m, c->account_id, c->campaign);
  if (mine && c->req == NULL) m->refreshing = 0;
  if (mine && m->seq > c->seq) return;
  if (!creating || body == NULL) {
    if (mine) memo_reset(m, c->account_id, c->campaign, c->seq);
    return;
  }
  int refreshing = mine && m->refreshing;
  memo_reset(m, c->account_id, c->campaign, c->seq);
  m->body = kk_xmalloc(len);
  memcpy(m->body, body, len);
  m->len = len;
  m->read_at = c->began;
  m->refreshing = refreshing;
}

/* Answers the report once both its reads are done (or keeps it, for a
   refresh), and frees c. */
static void report_answer(struct report_ctx *c) {
  if (--c->reads > 0) return;
  struct http_req *req = c->req;
  int rc = c->rc ? c->rc : c->links_rc;
  if (rc) {
    memo_settle(c, NULL, 0, 0);
    if (req && rc == KK_ENOENT)
      api_error(req, 404, "not_found", NULL,
                "no campaign or message of campaign %s in this account", c->campaign);
    else if (req)
      api_error(req, 503, "store_unavailable", NULL, "cannot read the campaign now");
  } else {
    json_t *doc = report_doc(c);
    api_links_counts_add(&c->links, doc);   /* the clicks and conversions (api_links.c) */
    int creating = still_creating(doc);
    size_t n = 0;
    char *s = api_json_text(doc, &n);
    memo_settle(c, s, n, creating);
    if (req && s)
      api_respond(req, 200, "application/json", s, n, NULL);
    else if (req)
      api_error(req, 500, "internal", NULL, "cannot write the report");
    free(s);
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

/* Starts the report's two reads; req NULL: a refresh of the kept one. */
static void report_read(struct api *a, int64_t account_id, const char *campaign,
                        struct http_req *req) {
  /* Freed in report_answer(); filled by the reads in the store's thread pool. */
  struct report_ctx *c = kk_xcalloc(1, sizeof *c);
  c->req = req;
  c->a = a;
  c->began = uv_now(a->loop);
  c->seq = ++a->report_memo->seq;
  a->reports_read++;
  c->account_id = account_id;
  snprintf(c->campaign, sizeof c->campaign, "%s", campaign);
  c->reads = 2;
  store_camp_counts_async(a->store, account_id, c->campaign, c->rows, STORE_CAMP_COUNTS_MAX,
                          &c->n, &c->spec, on_report, c);
  api_links_counts_read(a, account_id, c->campaign, &c->links, on_clicks, c);
}

void api_campaign_report(struct api_call *call) {
  struct http_req *req = call->req;
  struct api *a = call->a;
  const char *campaign = api_param(call, "name");
  if (!api_campaign_valid(campaign, strlen(campaign))) {
    api_error(req, 422, "invalid_campaign", "campaign", "campaign: %s", API_CAMPAIGN_RULE);
    return;
  }
  if (a->report_memo == NULL)
    a->report_memo = kk_xcalloc(1, sizeof *a->report_memo);   /* freed by api_fini */
  struct report_memo *m = memo_slot(a, call->account_id, campaign);
  uint64_t now = uv_now(a->loop);
  if (memo_is(m, call->account_id, campaign) && m->body && now - m->read_at <= REPORT_KEEP_MS) {
    if (now - m->read_at >= REPORT_FRESH_MS && !m->refreshing) {
      m->refreshing = 1;
      report_read(a, call->account_id, campaign, NULL);
    }
    a->reports_kept++;
    api_respond(req, 200, "application/json", m->body, m->len, NULL);
    return;
  }
  report_read(a, call->account_id, campaign, req);
}
