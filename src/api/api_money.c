/*
 * api_money.c - balances and the cost calculator:
 *   PATCH /v1/accounts/{id} "billing" ("prepaid" | "postpaid") and
 *     "credit_limit" (operator; api_admin.c passes them here),
 *   POST /v1/accounts/{id}/balance {"amount","ref"} (operator: a top-up),
 *   GET /v1/account's billing, balance, reserved, available, credit_limit,
 *   GET /v1/account/transactions?limit=&cursor= (newest first),
 *   POST /v1/calculator (the seeds' form, money/money_calc.h).
 * Amounts are currency units in JSON, 1/10000 units in the store.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api_int.h"
#include "core/kk_err.h"
#include "core/kk_mem.h"
#include "core/kk_status.h"
#include "http/http_server.h"
#include "money/money_calc.h"
#include "store/store.h"
#include "store/store_money.h"

#define MONEY_MAX 1e9            /* the largest amount a request may name */
#define REACH_DAYS 30

/* x currency units as 1/10000 units, rounded; KK_EINVAL when x is not a
   number in [lo, MONEY_MAX]. */
static int units_of(json_t *v, double lo, int64_t *out) {
  if (!json_is_number(v)) return KK_EINVAL;
  double x = json_number_value(v);
  if (!(x >= lo) || x > MONEY_MAX) return KK_EINVAL;
  *out = llround(x * API_MONEY_SCALE);
  return 0;
}

/* ---- the operator: billing mode, credit limit, top-ups ------------------------ */

int api_money_patch(struct api_call *c, json_t *doc, int64_t account_id) {
  json_t *billing = json_object_get(doc, "billing");
  json_t *limit = json_object_get(doc, "credit_limit");
  if (!billing && !limit) return 0;
  struct store_money_set m = {.account_id = account_id, .prepaid = -1, .credit_limit = -1};
  if (billing) {
    const char *b = json_string_value(billing);
    if (b && strcmp(b, "prepaid") == 0) m.prepaid = 1;
    else if (b && strcmp(b, "postpaid") == 0) m.prepaid = 0;
    else {
      api_error(c->req, 422, "invalid_billing", "billing", "billing: \"prepaid\" or \"postpaid\"");
      return KK_EINVAL;
    }
  }
  if (limit && (json_is_null(limit) ? (m.credit_limit = 0, 0) : units_of(limit, 0, &m.credit_limit))) {
    api_error(c->req, 422, "invalid_credit_limit", "credit_limit",
              "credit_limit: an amount from 0 to 1000000000 (or null for none)");
    return KK_EINVAL;
  }
  /* Queued before the account's own update: committed by the time it answers. */
  store_money_set(c->a->store, &m, NULL, NULL);
  return 0;
}

struct topup_ctx {
  struct http_req *req;
  struct store_money_topup t;
};

static void on_topup(void *arg, int rc) {
  struct topup_ctx *c = arg;
  if (rc) {
    api_error(c->req, 503, "store_unavailable", NULL, "the top-up was not stored: %s",
              kk_strerror(rc));
  } else {
    char at[32];
    api_time(c->t.at, at);
    char id[24];
    snprintf(id, sizeof id, "%lld", (long long)c->t.tx_id);
    api_json(c->req, 200,
             json_pack("{s:o, s:{s:s, s:s, s:o, s:o, s:s, s:o}}", "balance",
                       api_money(c->t.balance), "transaction", "id", id, "kind", "topup",
                       "amount", api_money(c->t.amount), "balance", api_money(c->t.balance),
                       "at", at, "ref", c->t.ref[0] ? json_string(c->t.ref) : json_null()),
             NULL);
  }
  free(c);
}

void api_balance_topup(struct api_call *call) {
  json_t *doc = api_call_body(call);
  if (!doc) return;
  json_t *ref = json_object_get(doc, "ref");
  int64_t amount;
  if (units_of(json_object_get(doc, "amount"), 0, &amount) || amount <= 0) {
    api_error(call->req, 422, "invalid_amount", "amount",
              "amount: a positive amount up to 1000000000");
    return;
  }
  if (ref && !json_is_null(ref) &&
      (!json_is_string(ref) || strlen(json_string_value(ref)) > STORE_MONEY_REF_MAX)) {
    api_error(call->req, 422, "invalid_ref", "ref", "ref: a string of up to 128 bytes");
    return;
  }
  struct topup_ctx *c = kk_xcalloc(1, sizeof *c);   /* freed in on_topup */
  c->req = call->req;
  c->t.account_id = call->acc->id;
  c->t.amount = amount;
  c->t.at = store_now_ms();
  if (json_is_string(ref)) snprintf(c->t.ref, sizeof c->t.ref, "%s", json_string_value(ref));
  store_money_topup(call->a->store, &c->t, on_topup, c);
}

/* ---- the account: its balance and its log ------------------------------------ */

void api_money_fields(json_t *o, const struct store_money *m) {
  json_object_set_new(o, "billing", json_string(m->prepaid ? "prepaid" : "postpaid"));
  json_object_set_new(o, "balance", api_money(m->balance));
  json_object_set_new(o, "reserved", api_money(m->reserved));
  json_object_set_new(o, "credit_limit", api_money(m->credit_limit));
  json_object_set_new(o, "available", api_money(m->balance - m->reserved + m->credit_limit));
}

struct account_ctx {
  struct http_req *req;
  json_t *doc;
  struct store_money m;
};

static void on_account_money(void *arg, int rc) {
  struct account_ctx *c = arg;
  if (rc) {
    json_decref(c->doc);
    api_error(c->req, 503, "store_unavailable", NULL, "cannot read the balance now");
  } else {
    api_money_fields(c->doc, &c->m);
    api_json(c->req, 200, c->doc, NULL);
  }
  free(c);
}

void api_money_answer_account(struct api_call *call, int64_t account_id, json_t *doc) {
  struct account_ctx *c = kk_xcalloc(1, sizeof *c);   /* freed in on_account_money */
  c->req = call->req;
  c->doc = doc;
  store_money_get_async(call->a->store, account_id, &c->m, on_account_money, c);
}

struct tx_ctx {
  struct http_req *req;
  int limit;
  struct store_money_tx *rows;
  int n;
};

static void on_tx(void *arg, int rc) {
  struct tx_ctx *c = arg;
  if (rc) {
    api_error(c->req, 503, "store_unavailable", NULL, "cannot list transactions now");
  } else {
    json_t *arr = json_array();
    for (int i = 0; i < c->n; i++) {
      const struct store_money_tx *t = &c->rows[i];
      char id[24], at[32];
      snprintf(id, sizeof id, "%lld", (long long)t->id);
      api_time(t->at, at);
      json_t *o = json_pack("{s:s, s:s, s:o, s:o, s:s}", "id", id, "kind", t->kind, "amount",
                            api_money(t->amount), "balance", api_money(t->balance), "at", at);
      json_object_set_new(o, "message", t->message[0] ? json_string(t->message) : json_null());
      json_object_set_new(o, "channel", t->channel[0] ? json_string(t->channel) : json_null());
      json_t *ref = t->ref[0] ? json_string(t->ref) : json_null();
      json_object_set_new(o, "ref", ref ? ref : json_null());
      json_array_append_new(arr, o);
    }
    api_json_page(c->req, "transactions", arr, c->n == c->limit ? c->rows[c->n - 1].id : 0);
  }
  free(c->rows);
  free(c);
}

void api_account_transactions(struct api_call *call) {
  const char *s;
  int limit = 100;
  int64_t before = 0;
  char *end;
  if ((s = http_req_query(call->req, "limit")) != NULL) {
    long l = strtol(s, &end, 10);
    if (*end || l < 1 || l > STORE_MONEY_PAGE_MAX) {
      api_error(call->req, 422, "invalid_limit", "limit", "limit: 1 to 1000");
      return;
    }
    limit = (int)l;
  }
  if ((s = http_req_query(call->req, "cursor")) != NULL) {
    long long cur = strtoll(s, &end, 10);
    if (*end || cur <= 0) {
      api_error(call->req, 422, "invalid_cursor", "cursor",
                "cursor: use next_cursor from a listing");
      return;
    }
    before = cur;
  }
  struct tx_ctx *c = kk_xcalloc(1, sizeof *c);   /* freed in on_tx */
  c->req = call->req;
  c->limit = limit;
  c->rows = kk_xcalloc((size_t)limit, sizeof *c->rows);
  store_money_tx_list_async(call->a->store, call->account_id, before, limit, c->rows, &c->n,
                            on_tx, c);
}

/* ---- the calculator ------------------------------------------------------------ */

struct calc_ctx {
  struct http_req *req;
  struct money_calc_in in;
  char chan[MONEY_CALC_STEPS][20];
  int given[MONEY_CALC_STEPS];      /* the step's reach came with the request */
  struct store_money_reach reach[STORE_MONEY_REACH_MAX];
  int nreach;
};

/* The account's price of a channel, its own over the operator's (0: none). */
struct price_find {
  int64_t account_id;
  const char *channel;
  int64_t own, def;
  int has_own;
};

static void price_row(void *arg, int64_t account_id, const char *channel, int64_t price) {
  struct price_find *f = arg;
  if (strcmp(channel, f->channel) != 0) return;
  if (account_id == f->account_id) {
    f->own = price;
    f->has_own = 1;
  } else if (account_id == 0) {
    f->def = price;
  }
}

int64_t api_price_of(struct api_call *c, const char *channel) {
  struct price_find f = {.account_id = c->account_id, .channel = channel};
  store_prices_each(c->a->store, price_row, &f);
  return f.has_own ? f.own : f.def;
}

static void calc_answer(struct calc_ctx *c) {
  for (int i = 0; i < c->in.nsteps; i++) {
    if (c->given[i]) continue;
    c->in.step_reach[i] = 0;
    for (int k = 0; k < c->nreach; k++)
      if (strcmp(c->reach[k].channel, c->chan[i]) == 0 && c->reach[k].attempts > 0)
        c->in.step_reach[i] = (int)(c->reach[k].reached * 1000 / c->reach[k].attempts);
  }
  struct money_calc_out out;
  const char *field = NULL;
  if (money_calc(&c->in, &out, &field) != 0) {
    api_error(c->req, 422, "invalid_calculation", field, "%s: out of range", field);
    return;
  }
  json_t *steps = json_array();
  for (int i = 0; i < c->in.nsteps; i++)
    json_array_append_new(steps, json_pack("{s:s, s:o, s:f, s:s}", "channel", c->chan[i],
                                           "price", api_money(c->in.step_price[i]), "reach",
                                           c->in.step_reach[i] / 1000.0, "reach_source",
                                           c->given[i] ? "given" : "measured"));
  api_json(c->req, 200,
           json_pack("{s:i, s:I, s:o, s:o, s:o, s:o, s:I, s:o, s:o}", "segments", out.segments,
                     "messages", (json_int_t)out.messages, "sms_price", api_money(c->in.sms_price),
                     "sms_only", api_money(out.sms_only), "with_cascade",
                     api_money(out.with_cascade), "saving", api_money(out.saving), "sms_sent",
                     (json_int_t)out.sms_sent, "cascade", steps, "period", json_string("month")),
           NULL);
}

static void on_reach(void *arg, int rc) {
  struct calc_ctx *c = arg;
  if (rc)
    api_error(c->req, 503, "store_unavailable", NULL, "cannot measure reach now");
  else
    calc_answer(c);
  free(c);
}

/* An integer field in [lo, hi] into *out; nonzero when answered 422. */
static int int_field(struct api_call *call, json_t *doc, const char *name, int required,
                     int64_t lo, int64_t hi, int64_t *out) {
  json_t *v = json_object_get(doc, name);
  if (!v && !required) return 0;
  double x = json_is_number(v) ? json_number_value(v) : NAN;
  if (!(x >= (double)lo && x <= (double)hi) || x != floor(x)) {
    api_error(call->req, 422, "invalid_field", name, "%s: a whole number from %lld to %lld",
              name, (long long)lo, (long long)hi);
    return KK_EINVAL;
  }
  *out = (int64_t)x;
  return 0;
}

/* The cascade's steps before SMS into c (from "cascade": channel names or a
   saved cascade's name; absent: the saved cascade "default", else none). */
static int calc_steps(struct api_call *call, json_t *doc, struct calc_ctx *c) {
  json_t *casc = json_object_get(doc, "cascade");
  const char *names[STORE_MAX_STEPS];
  int n = 0;
  struct store_step st[STORE_MAX_STEPS];
  char *text = NULL;
  if (json_is_array(casc)) {
    size_t i;
    json_t *v;
    json_array_foreach(casc, i, v) {
      const char *ch = json_string_value(v);
      if (!ch || kk_chan_parse(ch) == KK_CHAN_NONE || n == STORE_MAX_STEPS) {
        api_error(call->req, 422, "invalid_cascade", "cascade",
                  "cascade: up to 8 channel names (or a saved cascade's name)");
        return KK_EINVAL;
      }
      names[n++] = ch;
    }
  } else if (casc && !json_is_null(casc)) {
    if (!json_is_string(casc) ||
        store_cascade_get(call->a->store, call->account_id, json_string_value(casc), &text)) {
      api_error(call->req, 422, "unknown_cascade", "cascade",
                "cascade: channel names or the name of a saved cascade");
      return KK_EINVAL;
    }
  } else {
    store_cascade_get(call->a->store, call->account_id, "default", &text);
  }
  if (text) {
    int k = store_steps_parse(text, st);
    for (int i = 0; i < k; i++) names[n++] = st[i].channel;
  }
  json_t *reach = json_object_get(doc, "reach");
  if (reach && !json_is_object(reach) && !json_is_null(reach)) {
    free(text);
    api_error(call->req, 422, "invalid_reach", "reach",
              "reach: an object of channel to percent reached, e.g. {\"viber\": 60}");
    return KK_EINVAL;
  }
  int rc = 0;
  for (int i = 0; i < n && rc == 0; i++) {
    if (strcmp(names[i], "sms") == 0) break;   /* SMS is the last resort */
    int k = c->in.nsteps++;
    snprintf(c->chan[k], sizeof c->chan[k], "%s", names[i]);
    c->in.step_price[k] = api_price_of(call, names[i]);
    json_t *r = reach ? json_object_get(reach, names[i]) : NULL;
    if (r) {
      double x = json_is_number(r) ? json_number_value(r) : -1;
      if (!(x >= 0 && x <= 100)) {
        api_error(call->req, 422, "invalid_reach", "reach", "reach.%s: a percent from 0 to 100",
                  names[i]);
        rc = KK_EINVAL;
      }
      c->in.step_reach[k] = (int)lround(x * 10);
      c->given[k] = 1;
    }
  }
  free(text);
  return rc;
}

void api_calculator(struct api_call *call) {
  json_t *doc = api_call_body(call);
  if (!doc) return;
  struct calc_ctx *c = kk_xcalloc(1, sizeof *c);   /* freed here or in on_reach */
  c->req = call->req;
  int64_t subs = 0, sends = 0, chars = 0, svc = 0, trx = 0;
  const char *alpha = json_string_value(json_object_get(doc, "alphabet"));
  if (int_field(call, doc, "subscribers", 1, 1, 100000000, &subs) ||
      int_field(call, doc, "sends_per_month", 1, 1, 31, &sends) ||
      int_field(call, doc, "chars", 1, 1, 1530, &chars) ||
      int_field(call, doc, "service_share", 0, 0, 100, &svc) ||
      int_field(call, doc, "transactional_share", 0, 0, 100, &trx)) {
    free(c);
    return;
  }
  if (!alpha || (strcmp(alpha, "cyrillic") != 0 && strcmp(alpha, "latin") != 0)) {
    free(c);
    api_error(call->req, 422, "invalid_alphabet", "alphabet", "alphabet: cyrillic or latin");
    return;
  }
  if (svc + trx > 100) {
    free(c);
    api_error(call->req, 422, "invalid_share", "transactional_share",
              "service_share + transactional_share: at most 100 (the rest is advertising)");
    return;
  }
  c->in.subscribers = subs;
  c->in.sends_per_month = (int)sends;
  c->in.chars = (int)chars;
  c->in.alphabet = strcmp(alpha, "latin") == 0 ? MONEY_LATIN : MONEY_CYRILLIC;
  c->in.service_pct = (int)svc;
  c->in.transactional_pct = (int)trx;
  c->in.sms_price = api_price_of(call, "sms");
  if (calc_steps(call, doc, c) != 0) {
    free(c);
    return;
  }
  int measure = 0;
  for (int i = 0; i < c->in.nsteps; i++) measure |= !c->given[i];
  if (!measure) {
    calc_answer(c);
    free(c);
    return;
  }
  int64_t since = store_now_ms() - (int64_t)REACH_DAYS * 24 * 3600 * 1000;
  store_money_reach_async(call->a->store, call->account_id, since, c->reach, &c->nreach,
                          on_reach, c);
}
