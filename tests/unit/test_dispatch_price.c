/* test_dispatch_price.c - routes' lanes and prices per operator, the
   choice of a route with failover, and the errors that take a route down. */
#include <jansson.h>
#include <string.h>

#include "core/kk_err.h"
#include "dispatch/dispatch.h"
#include "dispatch/dispatch_price.h"
#include "smpp/smpp_codec.h"
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
  ASSERT_EQ(dispatch_price_for(&p, DISPATCH_LANE_STREAM, "7740000076", NULL), -1);
  ASSERT_EQ(parse("{\"lane\":\"bulk\",\"prices\":{\"default\":3.5,"
                  "\"operators\":{\"7740000076\":2.9,\"ПАО \\\"МегаФон\\\"\":3.1}}}",
                  &p, err), 0);
  ASSERT_EQ(p.lanes, 1u << DISPATCH_LANE_BULK);
  ASSERT_EQ(dispatch_price_for(&p, DISPATCH_LANE_BULK, "7740000076", "ПАО \"МТС\""), 290);
  ASSERT_EQ(dispatch_price_for(&p, DISPATCH_LANE_BULK, "7812014560", "ПАО \"МегаФон\""), 310);
  ASSERT_EQ(dispatch_price_for(&p, DISPATCH_LANE_BULK, "7713076301", NULL), 350);
  ASSERT_EQ(dispatch_lane_of("advertising"), DISPATCH_LANE_BULK);
  ASSERT_EQ(dispatch_lane_of("service"), DISPATCH_LANE_STREAM);
  ASSERT_EQ(dispatch_lane_of("transactional"), DISPATCH_LANE_STREAM);
  static const char *bad[] = {
      "{\"lane\":\"fast\"}", "{\"lane\":1}", "{\"prices\":[]}", "{\"prices\":{\"default\":-1}}",
      "{\"prices\":{\"default\":\"3\"}}", "{\"prices\":{\"operators\":{\"x\":10001}}}",
      "{\"prices\":{\"fallback\":1}}", "{\"prices\":{\"operators\":{\"\":1}}}",
      "{\"prices\":{\"default\":{}}}", "{\"prices\":{\"default\":{\"fast\":1}}}",
      "{\"prices\":{\"default\":{\"stream\":\"1\"}}}",
      "{\"prices\":{\"operators\":{\"x\":{\"bulk\":-2}}}}",
      "{\"prices\":{\"operators\":{\"x\":{\"stream\":null}}}}",
      "{\"prices\":{\"operators\":{\"x\":[1,2]}}}",
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
  ASSERT_EQ(dispatch_price_most(&p, DISPATCH_LANE_STREAM, 1, "7740000076", NULL, &every), 150);
  ASSERT_EQ(every, 1);
  ASSERT_EQ(dispatch_price_most(&p, DISPATCH_LANE_STREAM, 1, "7713076301", NULL, &every), 200);
  /* not sure (an HLR answer to come): the dearest operator's */
  ASSERT_EQ(dispatch_price_most(&p, DISPATCH_LANE_STREAM, 0, "7740000076", NULL, &every), 325);
  ASSERT_EQ(every, 1);
  /* a route without a default may serve none of them */
  ASSERT_EQ(dispatch_price_most(&listed, DISPATCH_LANE_STREAM, 1, "7812014560", NULL, &every), -1);
  ASSERT_EQ(every, 0);
  ASSERT_EQ(dispatch_price_most(&listed, DISPATCH_LANE_STREAM, 0, "7740000076", NULL, &every), 150);
  ASSERT_EQ(every, 0);
}

KK_TEST(dispatch_route_trouble_only_for_the_routes_own_errors) {
  static const uint32_t trouble[] = {SMPP_ESME_RSYSERR, SMPP_ESME_RSUBMITFAIL, SMPP_ESME_RX_T_APPN,
                                     SMPP_ESME_RINVBNDSTS, SMPP_ESME_RALYBND, SMPP_ESME_RBINDFAIL,
                                     SMPP_ESME_RINVPASWD, SMPP_ESME_RINVSYSID};
  for (size_t i = 0; i < sizeof trouble / sizeof trouble[0]; i++)
    ASSERT_EQ(dispatch_status_route_trouble(trouble[i]), 1);
  /* a number's own refusal, a message the route cannot take, throttling */
  static const uint32_t not_route[] = {SMPP_ESME_ROK, SMPP_ESME_RINVDSTADR, SMPP_ESME_RINVSRCADR,
                                       SMPP_ESME_RINVDSTTON, SMPP_ESME_RINVMSGLEN,
                                       SMPP_ESME_RX_P_APPN, SMPP_ESME_RX_R_APPN,
                                       SMPP_ESME_RTHROTTLED, SMPP_ESME_RMSGQFUL,
                                       SMPP_ESME_RDELIVERYFAILURE, 0x0400u};
  for (size_t i = 0; i < sizeof not_route / sizeof not_route[0]; i++)
    ASSERT_EQ(dispatch_status_route_trouble(not_route[i]), 0);
}

KK_TEST(dispatch_prices_per_lane) {
  struct dispatch_prices p;
  char err[160];
  /* default per lane; МТС cheaper for bulk only; МегаФон per lane; a name at one price */
  ASSERT_EQ(parse("{\"prices\":{\"default\":{\"stream\":3.5,\"bulk\":2.25},"
                  "\"operators\":{\"7740000076\":{\"bulk\":1.9},"
                  "\"7812014560\":{\"stream\":3,\"bulk\":2},\"Т2\":2.8}}}", &p, err), 0);
  ASSERT_EQ(dispatch_prices_any(&p), 1);
  ASSERT_EQ(dispatch_price_for(&p, DISPATCH_LANE_STREAM, "7740000076", NULL), 350);
  ASSERT_EQ(dispatch_price_for(&p, DISPATCH_LANE_BULK, "7740000076", NULL), 190);
  ASSERT_EQ(dispatch_price_for(&p, DISPATCH_LANE_STREAM, "7812014560", NULL), 300);
  ASSERT_EQ(dispatch_price_for(&p, DISPATCH_LANE_BULK, "7812014560", NULL), 200);
  ASSERT_EQ(dispatch_price_for(&p, DISPATCH_LANE_STREAM, NULL, "Т2"), 280);
  ASSERT_EQ(dispatch_price_for(&p, DISPATCH_LANE_BULK, NULL, "Т2"), 280);
  ASSERT_EQ(dispatch_price_for(&p, DISPATCH_LANE_BULK, "7713076301", NULL), 225);
  /* the dearest for a lane when the operator is not known for sure */
  int every;
  ASSERT_EQ(dispatch_price_most(&p, DISPATCH_LANE_STREAM, 0, NULL, NULL, &every), 350);
  ASSERT_EQ(dispatch_price_most(&p, DISPATCH_LANE_BULK, 0, NULL, NULL, &every), 280);
  /* a lane without a default serves only the operators priced for it */
  struct dispatch_prices q;
  ASSERT_EQ(parse("{\"prices\":{\"default\":{\"stream\":2},"
                  "\"operators\":{\"7740000076\":{\"bulk\":1}}}}", &q, err), 0);
  ASSERT_EQ(dispatch_price_for(&q, DISPATCH_LANE_BULK, "7740000076", NULL), 100);
  ASSERT_EQ(dispatch_price_for(&q, DISPATCH_LANE_BULK, "7812014560", NULL), -1);
  ASSERT_EQ(dispatch_price_for(&q, DISPATCH_LANE_STREAM, "7740000076", NULL), 200);
  /* the choice follows the lane: one route, two lanes, two prices */
  struct dispatch_prices flat;
  ASSERT_EQ(parse("{\"prices\":{\"default\":2.0}}", &flat, err), 0);
  struct dispatch_offer o[2] = {{&flat, 1}, {&p, 1}};
  int order[2];
  int64_t price[2];
  ASSERT_EQ(dispatch_choose(o, 2, DISPATCH_LANE_BULK, "7740000076", NULL, order, price), 2);
  ASSERT_EQ(order[0], 1);
  ASSERT_EQ(price[0], 190);
  ASSERT_EQ(dispatch_choose(o, 2, DISPATCH_LANE_STREAM, "7740000076", NULL, order, price), 2);
  ASSERT_EQ(order[0], 0);
  ASSERT_EQ(price[0], 200);
  /* written back: a number where the lanes agree, per lane where not */
  json_t *out = json_object();
  dispatch_prices_json(&q, out);
  char *s = json_dumps(out, JSON_SORT_KEYS | JSON_COMPACT);
  ASSERT_STR_EQ(s, "{\"lane\":\"both\",\"prices\":{\"default\":{\"stream\":2.0},"
                   "\"operators\":{\"7740000076\":{\"bulk\":1.0}}}}");
  free(s);
  json_decref(out);
}
