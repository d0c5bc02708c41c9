/*
 * fuzz_dispatch_price.c - fuzz target for a route's JSON as the operator
 * API takes it (PUT /v1/routes/{name}): its settings, lanes and prices per
 * operator and lane. A route that parses writes back JSON that parses to
 * the same lanes and prices, a choice among copies of it stays in bounds,
 * and the most a segment can cost is at least what the choice prices it.
 */
#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "core/kk_err.h"
#include "dispatch/dispatch.h"
#include "dispatch/dispatch_price.h"

static void check(int ok) {
  if (!ok) __builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  json_t *o = json_loadb((const char *)data, size, JSON_DECODE_ANY, NULL);
  if (o == NULL) return 0;
  struct dispatch_route_cfg cfg;
  char err[160];
  err[0] = '\0';
  int rc = dispatch_route_cfg_parse(o, "r", &cfg, err, sizeof err);
  check(rc == 0 || (rc == KK_EINVAL && err[0] && strlen(err) < sizeof err));
  json_decref(o);
  if (rc != 0) return 0;
  const struct dispatch_prices *p = &cfg.prices;
  check(p->lanes != 0 && (p->lanes & ~DISPATCH_LANES_ALL) == 0);
  check(p->n >= 0 && p->n <= DISPATCH_PRICES_MAX);
  for (int l = 0; l < DISPATCH_LANE_COUNT; l++) {
    check(p->def[l] >= -1 && p->def[l] <= 1000000);
    for (int i = 0; i < p->n; i++) check(p->op[i].price[l] >= -1 && p->op[i].price[l] <= 1000000);
  }

  /* what GET and the store show parses to the same */
  json_t *back = dispatch_route_cfg_json(&cfg);
  struct dispatch_route_cfg again;
  check(dispatch_route_cfg_parse(back, "r", &again, err, sizeof err) == 0);
  json_decref(back);
  check(again.prices.lanes == p->lanes && again.prices.n == p->n);
  check(memcmp(again.prices.def, p->def, sizeof p->def) == 0);
  for (int i = 0; i < p->n; i++) {
    check(strcmp(again.prices.op[i].key, p->op[i].key) == 0);
    check(memcmp(again.prices.op[i].price, p->op[i].price, sizeof p->op[i].price) == 0);
  }
  check(memcmp(again.lane_sps, cfg.lane_sps, sizeof cfg.lane_sps) == 0);

  struct dispatch_offer offers[3] = {{p, 1}, {&again.prices, 0}, {p, 0}};
  int order[3];
  int64_t price[3];
  for (int lane = 0; lane < DISPATCH_LANE_COUNT; lane++) {
    const char *inn = p->n > 0 ? p->op[0].key : "7740000076";
    int k = dispatch_choose(offers, 3, (enum dispatch_lane)lane, inn, NULL, order, price);
    check(k >= 0 && k <= 3);
    for (int i = 0; i < k; i++) check(order[i] >= 0 && order[i] < 3 && price[i] >= 0);
    /* the most a segment can cost bounds what the choice prices it at */
    for (int sure = 0; sure < 2; sure++) {
      int every;
      int64_t most = dispatch_price_most(p, (enum dispatch_lane)lane, sure, inn, NULL, &every);
      check(most >= -1 && (!every || most >= 0));
      if (k > 0 && (p->lanes & (1u << lane))) check(most >= price[0]);
    }
    for (int i = 1; i < k; i++)
      check(offers[order[i - 1]].up > offers[order[i]].up ||
            (offers[order[i - 1]].up == offers[order[i]].up && price[i - 1] <= price[i]));
  }
  return 0;
}
