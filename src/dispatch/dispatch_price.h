/*
 * dispatch_price.h - what an SMS route serves and at what price: its lanes
 * (stream for service and transactional messages, bulk for advertising, or
 * both) and its price per segment by mobile operator (keyed by the
 * operator's INN, as the numbering register groups ranges, or by its name),
 * with a default for the rest; and the choice of a route for a message:
 * the cheapest route that serves the lane and the operator and is up, the
 * others in order behind it for failover. Pure.
 *
 * In a route's JSON: "lane": "stream" | "bulk" | "both" (default both),
 * "prices": {"default": 3.5, "operators": {"7740000076": 2.9, "МТС": 3.0}}
 * (currency units; kept in hundredths). Wherever a price goes it may be an
 * object of a price per lane instead, {"stream": 2.9, "bulk": 2.4}, so one
 * route serving both lanes prices them apart; an operator's lane not given
 * there costs the default's for that lane.
 */
#ifndef DISPATCH_PRICE_H
#define DISPATCH_PRICE_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

enum dispatch_lane { DISPATCH_LANE_STREAM, DISPATCH_LANE_BULK, DISPATCH_LANE_COUNT };
#define DISPATCH_LANES_ALL ((1u << DISPATCH_LANE_COUNT) - 1)
#define DISPATCH_PRICES_MAX 64
#define DISPATCH_CHOOSE_MAX 64      /* routes a choice looks at */

struct dispatch_prices {
  unsigned lanes;             /* a bit per lane */
  /* per segment and lane, hundredths; -1: only the listed operators */
  int64_t def[DISPATCH_LANE_COUNT];
  int n;
  struct dispatch_op_price {
    char key[64];             /* INN or operator name, as given */
    int64_t price[DISPATCH_LANE_COUNT];   /* -1: the default's for the lane */
  } op[DISPATCH_PRICES_MAX];
};

/* The lane of a message class ("advertising": bulk; the others: stream). */
enum dispatch_lane dispatch_lane_of(const char *msg_class);

/* Reads "lane" and "prices" of a route's JSON object into out (absent:
   both lanes, no price). 0, or KK_EINVAL with the reason in err. */
int dispatch_prices_parse(json_t *route, struct dispatch_prices *out, char *err, size_t errcap);
/* Writes them back into route (for GET /v1/routes). */
void dispatch_prices_json(const struct dispatch_prices *p, json_t *route);

/* 1 when the route has a price at all (the dispatcher chooses among
   priced routes). */
int dispatch_prices_any(const struct dispatch_prices *p);

/* The price of a segment on lane to the operator (inn and/or name, either
   may be NULL), or -1 when the route has no price for them. */
int64_t dispatch_price_for(const struct dispatch_prices *p, enum dispatch_lane lane,
                           const char *inn, const char *name);

/* The most a segment on lane can cost on the route: to the operator (inn, name)
   when sure, else to whichever operator; -1 when it serves none of them.
   *every is set to 1 when it serves every operator that could be meant (so
   no other route is needed for one), else 0. */
int64_t dispatch_price_most(const struct dispatch_prices *p, enum dispatch_lane lane, int sure,
                            const char *inn, const char *name, int *every);

/* A route as the choice sees it. */
struct dispatch_offer {
  const struct dispatch_prices *prices;
  int up;                     /* bound and not failing */
};

/*
 * The routes that serve lane and the operator, best first: those up before
 * those down, then the cheaper, then in the order given. Writes their
 * indexes into order (room for n) and their prices into price (may be
 * NULL); returns how many. order[0] is the route to use while it is up.
 * Looks at the first DISPATCH_CHOOSE_MAX routes.
 */
int dispatch_choose(const struct dispatch_offer *o, int n, enum dispatch_lane lane,
                    const char *inn, const char *name, int *order, int64_t *price);

#endif
