/*
 * dispatch_price.c - a route's lanes and prices, and the choice of a route.
 * See dispatch_price.h.
 */
#include "dispatch/dispatch_price.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/kk_err.h"
#include "core/kk_utf8.h"
#include "policy/pol_rules.h"

enum dispatch_lane dispatch_lane_of(const char *msg_class) {
  /* the class table's (policy/pol_rules.h) */
  return pol_class_rule_named(msg_class)->lane == POL_LANE_BULK ? DISPATCH_LANE_BULK
                                                                : DISPATCH_LANE_STREAM;
}

/* A price in currency units (0 .. 10,000) -> hundredths. */
static int price_of(json_t *v, int64_t *out) {
  if (!json_is_number(v)) return KK_EINVAL;
  double x = json_number_value(v);
  if (!(x >= 0 && x <= 10000)) return KK_EINVAL;
  *out = (int64_t)llround(x * 100);
  return 0;
}

static const char *const lane_names[DISPATCH_LANE_COUNT] = {"stream", "bulk"};

/* A price for every lane (a number), or per lane ({"stream": x, "bulk": y},
   at least one; a lane not given stays -1) into out. 0, or KK_EINVAL with
   the reason, naming what (the JSON path), in err. */
static int lane_prices_of(json_t *v, const char *what, int64_t out[DISPATCH_LANE_COUNT],
                          char *err, size_t errcap) {
  for (int l = 0; l < DISPATCH_LANE_COUNT; l++) out[l] = -1;
  if (json_is_number(v)) {
    if (price_of(v, &out[0]) != 0) goto bad;
    for (int l = 1; l < DISPATCH_LANE_COUNT; l++) out[l] = out[0];
    return 0;
  }
  if (!json_is_object(v) || json_object_size(v) == 0) goto bad;
  const char *key;
  json_t *x;
  json_object_foreach(v, key, x) {
    int l = 0;
    while (l < DISPATCH_LANE_COUNT && strcmp(key, lane_names[l]) != 0) l++;
    if (l == DISPATCH_LANE_COUNT || price_of(x, &out[l]) != 0) goto bad;
  }
  return 0;
bad:
  snprintf(err, errcap, "%s: a price from 0 to 10000, or {\"stream\": price, \"bulk\": price}",
           what);
  return KK_EINVAL;
}

/* "operators": {"INN or name": price, ...} into out. */
static int operators_of(json_t *v, struct dispatch_prices *out, char *err, size_t errcap) {
  if (!json_is_object(v)) {
    snprintf(err, errcap, "prices.operators: {\"INN or name\": price}");
    return KK_EINVAL;
  }
  const char *op;
  json_t *p;
  json_object_foreach(v, op, p) {
    size_t len = strlen(op);
    if (len == 0 || len >= sizeof out->op[0].key || !kk_utf8_valid(op, len)) {
      snprintf(err, errcap, "prices.operators: a key is an INN or a name of 1-63 bytes");
      return KK_EINVAL;
    }
    if (out->n == DISPATCH_PRICES_MAX) {
      snprintf(err, errcap, "prices.operators: at most %d", DISPATCH_PRICES_MAX);
      return KK_EINVAL;
    }
    char what[64];
    snprintf(what, sizeof what, "prices.operators.%.40s", op);
    if (lane_prices_of(p, what, out->op[out->n].price, err, errcap) != 0) return KK_EINVAL;
    memcpy(out->op[out->n++].key, op, len + 1);
  }
  return 0;
}

int dispatch_prices_parse(json_t *route, struct dispatch_prices *out, char *err, size_t errcap) {
  memset(out, 0, sizeof *out);
  out->lanes = DISPATCH_LANES_ALL;
  for (int l = 0; l < DISPATCH_LANE_COUNT; l++) out->def[l] = -1;
  json_t *lane = json_object_get(route, "lane");
  if (lane && !json_is_null(lane)) {
    const char *l = json_string_value(lane);
    if (l && strcmp(l, "stream") == 0) out->lanes = 1u << DISPATCH_LANE_STREAM;
    else if (l && strcmp(l, "bulk") == 0) out->lanes = 1u << DISPATCH_LANE_BULK;
    else if (l && strcmp(l, "both") == 0) out->lanes = DISPATCH_LANES_ALL;
    else {
      snprintf(err, errcap, "lane: stream, bulk or both");
      return KK_EINVAL;
    }
  }
  json_t *prices = json_object_get(route, "prices");
  if (prices == NULL || json_is_null(prices)) return 0;
  if (!json_is_object(prices)) {
    snprintf(err, errcap, "prices: {\"default\": 3.5, \"operators\": {\"INN or name\": 2.9}}");
    return KK_EINVAL;
  }
  const char *key;
  json_t *v;
  json_object_foreach(prices, key, v) {
    if (strcmp(key, "default") == 0) {
      if (!json_is_null(v) && lane_prices_of(v, "prices.default", out->def, err, errcap) != 0)
        return KK_EINVAL;
    } else if (strcmp(key, "operators") == 0) {
      if (operators_of(v, out, err, errcap) != 0) return KK_EINVAL;
    } else {
      snprintf(err, errcap, "prices.%.40s: unknown (default, operators)", key);
      return KK_EINVAL;
    }
  }
  return 0;
}

/* A price per lane as JSON: a number when the lanes agree, else an object
   of the lanes that have one; null when none has. */
static json_t *lane_prices_json(const int64_t p[DISPATCH_LANE_COUNT]) {
  int same = 1, any = 0;
  for (int l = 0; l < DISPATCH_LANE_COUNT; l++) {
    same &= p[l] == p[0];
    any |= p[l] >= 0;
  }
  if (!any) return json_null();
  if (same) return json_real(p[0] / 100.0);
  json_t *o = json_object();
  for (int l = 0; l < DISPATCH_LANE_COUNT; l++)
    if (p[l] >= 0) json_object_set_new(o, lane_names[l], json_real(p[l] / 100.0));
  return o;
}

void dispatch_prices_json(const struct dispatch_prices *p, json_t *route) {
  const char *lane = p->lanes == DISPATCH_LANES_ALL ? "both"
                     : p->lanes == (1u << DISPATCH_LANE_STREAM) ? "stream"
                                                                : "bulk";
  json_object_set_new(route, "lane", json_string(lane));
  if (!dispatch_prices_any(p)) return;
  json_t *prices = json_object(), *ops = json_object();
  json_object_set_new(prices, "default", lane_prices_json(p->def));
  for (int i = 0; i < p->n; i++)
    json_object_set_new(ops, p->op[i].key, lane_prices_json(p->op[i].price));
  json_object_set_new(prices, "operators", ops);
  json_object_set_new(route, "prices", prices);
}

int dispatch_prices_any(const struct dispatch_prices *p) {
  for (int l = 0; l < DISPATCH_LANE_COUNT; l++)
    if (p->def[l] >= 0) return 1;
  return p->n > 0;
}

int64_t dispatch_price_for(const struct dispatch_prices *p, enum dispatch_lane lane,
                           const char *inn, const char *name) {
  for (int i = 0; i < p->n; i++)
    if ((inn && strcmp(p->op[i].key, inn) == 0) || (name && strcmp(p->op[i].key, name) == 0))
      return p->op[i].price[lane] >= 0 ? p->op[i].price[lane] : p->def[lane];
  return p->def[lane];
}

int64_t dispatch_price_most(const struct dispatch_prices *p, enum dispatch_lane lane, int sure,
                            const char *inn, const char *name, int *every) {
  if (sure) {
    int64_t x = dispatch_price_for(p, lane, inn, name);
    *every = x >= 0;
    return x;
  }
  int64_t most = p->def[lane];
  for (int i = 0; i < p->n; i++)
    if (p->op[i].price[lane] > most) most = p->op[i].price[lane];
  *every = p->def[lane] >= 0;
  return most;
}

int dispatch_choose(const struct dispatch_offer *o, int n, enum dispatch_lane lane,
                    const char *inn, const char *name, int *order, int64_t *price) {
  int k = 0;
  int64_t pr[DISPATCH_CHOOSE_MAX];
  if (n > DISPATCH_CHOOSE_MAX) n = DISPATCH_CHOOSE_MAX;
  for (int i = 0; i < n; i++) {
    if (!(o[i].prices->lanes & (1u << lane))) continue;
    int64_t p = dispatch_price_for(o[i].prices, lane, inn, name);
    if (p < 0) continue;
    /* insertion by (up, price, index): n is a handful of routes */
    int j = k++;
    while (j > 0) {
      int a = order[j - 1];
      int better = o[i].up != o[a].up ? o[i].up > o[a].up : p < pr[j - 1];
      if (!better) break;
      order[j] = a;
      pr[j] = pr[j - 1];
      j--;
    }
    order[j] = i;
    pr[j] = p;
  }
  if (price)
    for (int i = 0; i < k; i++) price[i] = pr[i];
  return k;
}
