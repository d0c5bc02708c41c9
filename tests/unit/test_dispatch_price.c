/* test_dispatch_price.c - routes' lanes and prices per operator, and the
   choice of a route with failover. */
#include <jansson.h>
#include <string.h>

#include "core/kk_err.h"
#include "dispatch/dispatch_price.h"
#include "kk_test.h"

static int parse(const char *json, struct dispatch_prices *p, char *err) {
  json_t *o = json_loads(json, 0, NULL);
  ASSERT(o != NULL);
  int rc = dispatch_prices_parse(o, p, err, 160);
  json_decref(o);
  return rc;
}

KK_TEST(dispatch_prices_parse_and_price) {
  struct dispatch_prices p;
  char err[160];
  ASSERT_EQ(parse("{\"host\":\"x\"}", &p, err), 0);
  ASSERT_EQ(p.lanes, DISPATCH_LANES_ALL);
  ASSERT_EQ(dispatch_price_for(&p, "7740000076", NULL), -1);
  ASSERT_EQ(parse("{\"lane\":\"bulk\",\"prices\":{\"default\":3.5,"
                  "\"operators\":{\"7740000076\":2.9,\"ПАО \\\"МегаФон\\\"\":3.1}}}",
                  &p, err), 0);
  ASSERT_EQ(p.lanes, 1u << DISPATCH_LANE_BULK);
  ASSERT_EQ(dispatch_price_for(&p, "7740000076", "ПАО \"МТС\""), 290);
  ASSERT_EQ(dispatch_price_for(&p, "7812014560", "ПАО \"МегаФон\""), 310);
  ASSERT_EQ(dispatch_price_for(&p, "7713076301", NULL), 350);
  ASSERT_EQ(dispatch_lane_of("advertising"), DISPATCH_LANE_BULK);
  ASSERT_EQ(dispatch_lane_of("service"), DISPATCH_LANE_STREAM);
  ASSERT_EQ(dispatch_lane_of("transactional"), DISPATCH_LANE_STREAM);
  static const char *bad[] = {
      "{\"lane\":\"fast\"}", "{\"lane\":1}", "{\"prices\":[]}", "{\"prices\":{\"default\":-1}}",
      "{\"prices\":{\"default\":\"3\"}}", "{\"prices\":{\"operators\":{\"x\":10001}}}",
      "{\"prices\":{\"fallback\":1}}", "{\"prices\":{\"operators\":{\"\":1}}}",
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    err[0] = '\0';
    ASSERT_EQ(parse(bad[i], &p, err), KK_EINVAL);
    ASSERT(err[0] != '\0');
  }
  /* written back as read */
  ASSERT_EQ(parse("{\"lane\":\"stream\",\"prices\":{\"default\":3.5,\"operators\":{\"1\":2}}}", &p,
                  err), 0);
  json_t *o = json_object();
  dispatch_prices_json(&p, o);
  char *s = json_dumps(o, JSON_SORT_KEYS | JSON_COMPACT);
  ASSERT_STR_EQ(s, "{\"lane\":\"stream\",\"prices\":{\"default\":3.5,\"operators\":{\"1\":2.0}}}");
  free(s);
  json_decref(o);
}

KK_TEST(dispatch_choose_cheapest_up_with_failover) {
  struct dispatch_prices cheap, dear, mts_only, stream_only;
  char err[160];
  ASSERT_EQ(parse("{\"prices\":{\"default\":3.0}}", &cheap, err), 0);
  ASSERT_EQ(parse("{\"prices\":{\"default\":3.5}}", &dear, err), 0);
  ASSERT_EQ(parse("{\"prices\":{\"operators\":{\"7740000076\":2.5}}}", &mts_only, err), 0);
  ASSERT_EQ(parse("{\"lane\":\"stream\",\"prices\":{\"default\":1.0}}", &stream_only, err), 0);
  struct dispatch_offer o[4] = {{&dear, 1}, {&cheap, 1}, {&mts_only, 1}, {&stream_only, 1}};
  int order[4];
  int64_t price[4];
  /* MTS advertising: the MTS-only route, then cheap, then dear (stream_only serves no bulk) */
  ASSERT_EQ(dispatch_choose(o, 4, DISPATCH_LANE_BULK, "7740000076", NULL, order, price), 3);
  ASSERT_EQ(order[0], 2);
  ASSERT_EQ(price[0], 250);
  ASSERT_EQ(order[1], 1);
  ASSERT_EQ(order[2], 0);
  /* Beeline service: stream_only is cheapest; MTS-only does not serve Beeline */
  ASSERT_EQ(dispatch_choose(o, 4, DISPATCH_LANE_STREAM, "7713076301", NULL, order, price), 3);
  ASSERT_EQ(order[0], 3);
  /* the cheap route down: failover to the next up, the down one last */
  o[3].up = 0;
  ASSERT_EQ(dispatch_choose(o, 4, DISPATCH_LANE_STREAM, "7713076301", NULL, order, price), 3);
  ASSERT_EQ(order[0], 1);
  ASSERT_EQ(order[1], 0);
  ASSERT_EQ(order[2], 3);
  /* back up: first again */
  o[3].up = 1;
  ASSERT_EQ(dispatch_choose(o, 4, DISPATCH_LANE_STREAM, "7713076301", NULL, order, NULL), 3);
  ASSERT_EQ(order[0], 3);
  /* equal prices keep the given order */
  struct dispatch_offer same[2] = {{&cheap, 1}, {&cheap, 1}};
  ASSERT_EQ(dispatch_choose(same, 2, DISPATCH_LANE_BULK, NULL, NULL, order, NULL), 2);
  ASSERT_EQ(order[0], 0);
  ASSERT_EQ(dispatch_choose(o, 0, DISPATCH_LANE_BULK, NULL, NULL, order, NULL), 0);
}

KK_TEST(dispatch_price_most_bounds_a_charge) {
  struct dispatch_prices p, listed;
  char err[160];
  ASSERT_EQ(parse("{\"prices\":{\"default\":2.0,\"operators\":{\"7740000076\":1.5,"
                  "\"7812014560\":3.25}}}", &p, err), 0);
  ASSERT_EQ(parse("{\"prices\":{\"operators\":{\"7740000076\":1.5}}}", &listed, err), 0);
  int every = -1;
  /* the operator for sure: its price */
  ASSERT_EQ(dispatch_price_most(&p, 1, "7740000076", NULL, &every), 150);
  ASSERT_EQ(every, 1);
  ASSERT_EQ(dispatch_price_most(&p, 1, "7713076301", NULL, &every), 200);
  /* not sure (an HLR answer to come): the dearest operator's */
  ASSERT_EQ(dispatch_price_most(&p, 0, "7740000076", NULL, &every), 325);
  ASSERT_EQ(every, 1);
  /* a route without a default may serve none of them */
  ASSERT_EQ(dispatch_price_most(&listed, 1, "7812014560", NULL, &every), -1);
  ASSERT_EQ(every, 0);
  ASSERT_EQ(dispatch_price_most(&listed, 0, "7740000076", NULL, &every), 150);
  ASSERT_EQ(every, 0);
}
