/*
 * api_camp_dry.c - POST /v1/campaigns/{name}/dry-run (while draft): what
 * the campaign would do, with nothing stored. Its audience is read as start
 * reads it (camp_audience_read, on the store's pool), planned off the loop
 * (camp_audience_plan), and each recipient's message, made and read as the
 * runner makes it (camp_message_of, camp_item_of: tracked links at their
 * real length), judged by the accept path in trial mode (accept_req.dry:
 * every check made, nothing stored or counted), STORE_CAMP_BATCH at a time
 * with the loop free between batches.
 *
 * The answer: recipients, accepted, rejected by reason, deferrals (quiet
 * hours, outside the send window), messages per channel estimated from the
 * reach given in the body ({"reach":{"vk":0.6}}) or else measured over the
 * account's last 30 days (SMS reaches everyone it is sent to), SMS segments,
 * estimated cost and the saving against SMS alone from the price table, and
 * the planned start and finish.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api_camp.h"
#include "api/api_int.h"
#include "core/kk_err.h"
#include "core/kk_mem.h"
#include "core/kk_status.h"
#include "http/http_server.h"
#include "store/store_campaign.h"
#include "store/store_money.h"

#define REACH_DAYS 30

struct dry {
  struct api_call *call;
  struct api *a;
  int64_t account;                  /* counted in a->dry_accounts */
  struct store_campaign camp;
  json_t *doc;                      /* the campaign's settings (owned) */
  struct camp_spec sp;
  json_t *body_reach;               /* the body's reach, or NULL (owned) */
  double reach[KK_CHAN_COUNT];
  int given[KK_CHAN_COUNT];
  struct store_money_reach measured[STORE_MONEY_REACH_MAX];
  int nmeasured;
  int64_t price[KK_CHAN_COUNT];
  struct camp_audience *aud;
  int64_t now, start, paced_finish;
  int64_t *window_at;               /* each recipient's first moment in its window */
  /* a batch being judged */
  size_t at;
  int nb;
  json_t *msgs;
  struct api_msg_item parsed[STORE_CAMP_BATCH];
  struct accept_item items[STORE_CAMP_BATCH];
  struct accept_req req;
  uv_work_t work;
  uv_timer_t timer;
  /* the tallies */
  json_t *rejected;
  int64_t accepted, quiet, outside_window;
  double sent[KK_CHAN_COUNT], delivered[KK_CHAN_COUNT], segments, cost, sms_only;
};

static void dry_free(struct dry *d) {
  json_decref(d->doc);
  json_decref(d->body_reach);
  json_decref(d->rejected);
  store_campaign_fini(&d->camp);
  camp_audience_free(d->aud);
  free(d->window_at);
  free(d);
}

static void on_timer_closed(uv_handle_t *h) { dry_free(h->data); }

/* Answers and frees d (through its timer's close). The account may start
   another dry run at once: its answer can reach the client, and the
   client's next request this process, before the close has run. */
static void dry_end(struct dry *d, json_t *doc) {
  struct api *a = d->a;
  for (int i = 0; i < a->ndry; i++)
    if (a->dry_accounts[i] == d->account) {
      a->dry_accounts[i] = a->dry_accounts[--a->ndry];
      break;
    }
  if (doc) api_json(d->call->req, 200, doc, NULL);
  uv_close((uv_handle_t *)&d->timer, on_timer_closed);
}

static void add_count(json_t *o, const char *key, int64_t n) {
  json_t *v = json_object_get(o, key);
  json_object_set_new(o, key, json_integer((v ? json_integer_value(v) : 0) + (json_int_t)n));
}

static json_t *time_json(int64_t ms) {
  if (ms <= 0) return json_null();
  char t[32];
  api_time(ms, t);
  return json_string(t);
}

static json_t *answer(struct dry *d) {
  json_t *channels = json_object(), *reach = json_object();
  for (int c = 0; c < KK_CHAN_COUNT; c++) {
    if (d->sent[c] <= 0) continue;
    json_t *o = json_pack("{s:I, s:I}", "messages", (json_int_t)llround(d->sent[c]), "delivered",
                          (json_int_t)llround(d->delivered[c]));
    if (c == KK_CHAN_SMS) json_object_set_new(o, "segments", json_integer(llround(d->segments)));
    json_object_set_new(channels, kk_chan_name((enum kk_chan)c), o);
    if (c != KK_CHAN_SMS)
      json_object_set_new(reach, kk_chan_name((enum kk_chan)c),
                          json_pack("{s:f, s:s}", "value", d->reach[c], "source",
                                    d->given[c] ? "given" : "measured"));
  }
  int64_t cost = llround(d->cost), sms_only = llround(d->sms_only);
  int64_t finish = d->accepted ? d->paced_finish : 0;
  json_t *rejected = d->rejected;
  d->rejected = NULL;
  return json_pack("{s:s, s:I, s:I, s:o, s:{s:I, s:I}, s:o, s:o, s:o, s:o, s:o, s:o, s:o}",
                   "campaign", d->camp.name, "recipients", (json_int_t)d->aud->n, "accepted",
                   (json_int_t)d->accepted, "rejected", rejected, "deferred", "quiet_hours",
                   (json_int_t)d->quiet, "outside_window", (json_int_t)d->outside_window,
                   "channels", channels, "reach", reach, "cost", api_money(cost),
                   "sms_only_cost", api_money(sms_only), "saving", api_money(sms_only - cost),
                   "planned_start_at", time_json(d->start), "planned_finish_at",
                   time_json(finish));
}

/* The reach of channel c over its recipients so far (SMS: all). */
static double reach_of(struct dry *d, enum kk_chan c) {
  return c == KK_CHAN_SMS ? 1.0 : d->reach[c];
}

/* One message that would be stored: its steps as the cascade would take them. */
static void estimate(struct dry *d, const struct accept_item *it) {
  struct store_step st[STORE_MAX_STEPS];
  int n = store_steps_parse(it->m.cascade, st);
  json_t *extra = it->m.extra ? json_loads(it->m.extra, 0, NULL) : NULL;
  double left = 1.0;
  int segments = it->m.segments > 0 ? it->m.segments : 1;
  /* a segment at the price of the route the SMS would take, else the table's */
  double sms_unit = (double)(it->m.sms_priced ? it->m.sms_price : d->price[KK_CHAN_SMS]);
  for (int i = 0; i < n && left > 0; i++) {
    enum kk_chan c = kk_chan_parse(st[i].channel);
    if (c == KK_CHAN_NONE) continue;
    const char *field = kk_chan_address_field(c);
    if (field && !kk_chan_phone_fallback(c) && !json_is_string(json_object_get(extra, field)))
      continue;   /* no address: the step is skipped */
    double r = reach_of(d, c);
    d->sent[c] += left;
    d->delivered[c] += left * r;
    if (c == KK_CHAN_SMS) {
      d->segments += left * segments;
      d->cost += left * sms_unit * segments;
    } else {
      d->cost += left * (double)d->price[c];
    }
    left *= 1 - r;
  }
  json_decref(extra);
  d->sms_only += sms_unit * segments;
}

static void next_batch(struct dry *d);
static void on_timer(uv_timer_t *t) { next_batch(t->data); }

static void batch_free(struct dry *d) {
  for (int i = 0; i < d->nb; i++) {
    api_msg_item_fini(&d->parsed[i]);
    accept_item_fini(&d->items[i]);
  }
  d->nb = 0;
  json_decref(d->msgs);
  d->msgs = NULL;
}

static void on_judged(void *ud, struct accept_req *req, int rc) {
  struct dry *d = ud;
  (void)req;
  if (rc) {
    batch_free(d);
    api_error(d->call->req, 503, "store_unavailable", NULL, "cannot judge the messages now");
    dry_end(d, NULL);
    return;
  }
  for (int i = 0; i < d->nb; i++) {
    const struct accept_item *it = &d->items[i];
    if (it->result == ACCEPT_STORED) {
      d->accepted++;
      if (it->m.not_before > d->now) d->quiet++;
      estimate(d, it);
    } else {
      const char *code = d->parsed[i].err.code ? d->parsed[i].err.code : it->err.code;
      add_count(d->rejected, code ? code : "refused", 1);
    }
  }
  batch_free(d);
  uv_timer_start(&d->timer, on_timer, 0, 0);   /* the loop free between batches */
}

static void next_batch(struct dry *d) {
  struct camp_audience *p = d->aud;
  if (d->at >= p->n) {
    dry_end(d, answer(d));
    return;
  }
  d->msgs = json_array();
  d->nb = 0;
  int variant[STORE_CAMP_BATCH];
  memset(d->parsed, 0, sizeof d->parsed);
  memset(d->items, 0, sizeof d->items);
  for (; d->nb < STORE_CAMP_BATCH && d->at < p->n; d->at++) {
    if (p->r[d->at].at == 0) {   /* past end_at */
      add_count(d->rejected, "expired", 1);
      continue;
    }
    if (d->window_at[d->at] > d->start) d->outside_window++;
    /* the recipient's message as the runner makes it (its row as stored) */
    struct store_camp_rcpt x = {.seq = (int64_t)d->at + 1, .variant = p->variant[d->at],
                                .vars = p->vars[d->at]};
    snprintf(x.phone, sizeof x.phone, "%s", p->phone[d->at]);
    json_array_append_new(d->msgs, camp_message_of(&d->sp, d->camp.name, &x));
    variant[d->nb++] = x.variant;
  }
  d->req = (struct accept_req){.account_id = d->call->account_id, .items = d->items, .n = d->nb,
                               .done = on_judged, .ud = d, .dry = 1};
  /* judged as the runner has them judged, tracked links included (made at
     their real length; a dry run stores none) */
  for (int i = 0; i < d->nb; i++)
    camp_item_of(d->call->a, &d->sp, d->req.account_id, json_array_get(d->msgs, (size_t)i),
                 variant[i], &d->parsed[i], &d->items[i]);
  if (accept_submit(&d->call->a->accept, &d->req) != 0) {
    batch_free(d);
    api_error(d->call->req, 503, "store_unavailable", NULL, "cannot judge the messages now");
    dry_end(d, NULL);
  }
}

/* Off the loop: the plan at the campaign's pace (its finish), and each
   recipient's first moment in its window (the deferrals). */
static void plan_work(uv_work_t *w) {
  struct dry *d = w->data;
  struct camp_audience *p = d->aud;
  camp_audience_plan(p, &d->sp, d->camp.name, d->now, 0);
  d->window_at = kk_xcalloc(p->n ? p->n : 1, sizeof *d->window_at);
  for (size_t i = 0; i < p->n; i++) d->window_at[i] = p->r[i].at;
  camp_audience_plan(p, &d->sp, d->camp.name, d->now, 1);
  d->paced_finish = p->finish_at;
}

static void plan_after(uv_work_t *w, int status) {
  struct dry *d = w->data;
  if (status != 0) {
    api_error(d->call->req, 503, "unavailable", NULL, "cannot plan the campaign now");
    dry_end(d, NULL);
    return;
  }
  next_batch(d);
}

static void on_audience(void *arg, int rc) {
  struct dry *d = arg;
  if (rc && !(rc == KK_ENOSPC && d->aud->full)) {
    if (rc == KK_ENOENT)
      api_error(d->call->req, 422, "unknown_audience", "audience", "no such list or segment");
    else
      api_error(d->call->req, 503, "store_unavailable", NULL, "cannot read the audience now");
    dry_end(d, NULL);
    return;
  }
  d->work.data = d;
  uv_queue_work(d->call->a->loop, &d->work, plan_work, plan_after);
}

static void on_reach(void *arg, int rc) {
  struct dry *d = arg;
  if (rc) {
    api_error(d->call->req, 503, "store_unavailable", NULL, "cannot measure reach now");
    dry_end(d, NULL);
    return;
  }
  for (int k = 0; k < d->nmeasured; k++) {
    enum kk_chan c = kk_chan_parse(d->measured[k].channel);
    if (c != KK_CHAN_NONE && !d->given[c] && d->measured[k].attempts > 0)
      d->reach[c] = (double)d->measured[k].reached / (double)d->measured[k].attempts;
  }
  d->aud = kk_xcalloc(1, sizeof *d->aud);   /* freed by dry_free */
  camp_audience_read(d->call->a, d->call->account_id, &d->sp, d->aud, on_audience, d);
}

static void on_camp(void *arg, int rc) {
  struct dry *d = arg;
  struct api_call *call = d->call;
  if (rc) {
    if (rc == KK_ENOENT)
      api_error(call->req, 404, "not_found", NULL, "no such campaign");
    else
      api_error(call->req, 503, "store_unavailable", NULL, "cannot read the campaign now");
    dry_end(d, NULL);
    return;
  }
  if (strcmp(d->camp.status, "draft") != 0) {
    api_error(call->req, 409, "not_draft", NULL,
              "campaign %s is %s: a dry run is for a campaign not started", d->camp.name,
              d->camp.status);
    dry_end(d, NULL);
    return;
  }
  struct api_err e = {0};
  d->doc = json_loads(d->camp.spec ? d->camp.spec : "", 0, NULL);
  if (camp_spec_parse(d->doc, &d->sp, &e) != 0) {
    api_error_from(call->req, &e);
    dry_end(d, NULL);
    return;
  }
  d->now = store_now_ms();
  d->start = d->sp.start_at > d->now ? d->sp.start_at : d->now;
  for (int c = 0; c < KK_CHAN_COUNT; c++) d->price[c] = api_price_of(call, kk_chan_name(c));
  store_money_reach_async(call->a->store, call->account_id,
                          d->now - (int64_t)REACH_DAYS * 86400000, d->measured, &d->nmeasured,
                          on_reach, d);
}

/* The body's reach ({"vk":0.6, ...}: shares from 0 to 1) into d; nonzero
   having answered 422. */
static int reach_parse(struct api_call *call, json_t *reach, struct dry *d) {
  const char *k;
  json_t *v;
  if (!json_is_object(reach)) goto bad;
  json_object_foreach(reach, k, v) {
    enum kk_chan c = kk_chan_parse(k);
    double x = json_is_number(v) ? json_number_value(v) : -1;
    if (c == KK_CHAN_NONE || !(x >= 0 && x <= 1)) goto bad;
    d->reach[c] = x;
    d->given[c] = 1;
  }
  return 0;
bad:
  api_error(call->req, 422, "invalid_reach", "reach",
            "reach: an object of channel to the share reached, from 0 to 1, e.g. {\"vk\":0.6}");
  return KK_EINVAL;
}

void api_camp_dry_run(struct api_call *call) {
  const char *name = api_param(call, "name");
  if (!api_campaign_valid(name, strlen(name))) {
    api_error(call->req, 422, "invalid_campaign", "campaign", "campaign: %s", API_CAMPAIGN_RULE);
    return;
  }
  size_t len = 0;
  http_req_body(call->req, &len);
  json_t *body = NULL;
  if (len > 0 && (body = api_call_body(call)) == NULL) return;
  struct api *a = call->a;
  for (int i = 0; i < a->ndry; i++)
    if (a->dry_accounts[i] == call->account_id) {
      api_error(call->req, 409, "dry_run_running", NULL,
                "a dry run of this account is running; wait for its answer");
      return;
    }
  if (a->ndry >= API_DRY_RUNS) {
    api_error(call->req, 429, "dry_runs_busy", NULL, "too many dry runs are running; try later");
    return;
  }
  /* Freed by dry_end (through the timer's close). */
  struct dry *d = kk_xcalloc(1, sizeof *d);
  d->call = call;
  d->a = a;
  d->account = call->account_id;
  a->dry_accounts[a->ndry++] = d->account;
  d->rejected = json_object();
  uv_timer_init(call->a->loop, &d->timer);
  d->timer.data = d;
  json_t *reach = json_object_get(body, "reach");
  if (reach && !json_is_null(reach) && reach_parse(call, reach, d) != 0) {
    dry_end(d, NULL);
    return;
  }
  store_campaign_get_async(call->a->store, call->account_id, name, &d->camp, on_camp, d);
}
