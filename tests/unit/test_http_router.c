/*
 * test_http_router.c - http_router: patterns with literals, parameters and
 * catch-alls; the first matching pattern owns a path; 405 lists its methods
 * in table order; paths split as the API always has.
 */
#include <string.h>

#include "http/http_router.h"
#include "kk_test.h"

struct route {
  struct http_route r;
  int tag;
};

static const struct route table[] = {
    {{"GET", "/v1/messages"}, 1},
    {{"POST", "/v1/messages"}, 2},
    {{"POST", "/v1/messages/batch"}, 3},
    {{"GET", "/v1/messages/{id}"}, 4},
    {{"GET", "/v1/campaigns/{name}/report"}, 5},
    {{"GET", "/v1/hooks/{channel}/{scope}"}, 6},
    {{"POST", "/v1/hooks/{channel}/{scope}"}, 6},
    {{"*", "/healthz"}, 7},
    {{"*", "/v1/*"}, 8},
};

static const struct http_router router = {table, sizeof table / sizeof table[0], sizeof table[0],
                                          4};

static int tag(const char *method, const char *path, enum http_route_result want,
               struct http_match *m) {
  enum http_route_result got = http_router_match(&router, method, path, m);
  if (got != want) return -1;
  return m->route < 0 ? 0 : ((const struct route *)http_router_at(&router, (size_t)m->route))->tag;
}

KK_TEST(router_literals_and_methods) {
  struct http_match m;
  ASSERT_EQ(tag("GET", "/v1/messages", HTTP_ROUTE_FOUND, &m), 1);
  ASSERT_EQ(tag("POST", "/v1/messages", HTTP_ROUTE_FOUND, &m), 2);
  ASSERT_EQ(tag("PUT", "/v1/messages", HTTP_ROUTE_NO_METHOD, &m), 1);
  ASSERT_STR_EQ(m.allow, "GET, POST");
  /* The literal pattern listed first owns "batch". */
  ASSERT_EQ(tag("GET", "/v1/messages/batch", HTTP_ROUTE_NO_METHOD, &m), 3);
  ASSERT_STR_EQ(m.allow, "POST");
  ASSERT_EQ(tag("DELETE", "/v1/messages/msg_1", HTTP_ROUTE_NO_METHOD, &m), 4);
  ASSERT_STR_EQ(m.allow, "GET");
  ASSERT_EQ(tag("GET", "/healthz", HTTP_ROUTE_FOUND, &m), 7);
  ASSERT_EQ(tag("DELETE", "/healthz", HTTP_ROUTE_FOUND, &m), 7);
}

KK_TEST(router_parameters) {
  struct http_match m;
  ASSERT_EQ(tag("GET", "/v1/messages/msg_42", HTTP_ROUTE_FOUND, &m), 4);
  ASSERT_STR_EQ(http_match_param(&m, "id"), "msg_42");
  ASSERT(http_match_param(&m, "name") == NULL);
  ASSERT_EQ(tag("POST", "/v1/hooks/vk/default", HTTP_ROUTE_FOUND, &m), 6);
  ASSERT_STR_EQ(http_match_param(&m, "channel"), "vk");
  ASSERT_STR_EQ(http_match_param(&m, "scope"), "default");
  ASSERT_EQ(tag("PUT", "/v1/hooks/vk/default", HTTP_ROUTE_NO_METHOD, &m), 6);
  ASSERT_STR_EQ(m.allow, "GET, POST");
  ASSERT_EQ(tag("GET", "/v1/campaigns/spring/report", HTTP_ROUTE_FOUND, &m), 5);
  ASSERT_STR_EQ(http_match_param(&m, "name"), "spring");
}

KK_TEST(router_catch_all_and_misses) {
  struct http_match m;
  ASSERT_EQ(tag("GET", "/v1/campaigns/spring/other", HTTP_ROUTE_FOUND, &m), 8);
  ASSERT_EQ(tag("GET", "/v1/hooks/vk", HTTP_ROUTE_FOUND, &m), 8);
  ASSERT_EQ(tag("GET", "/v1/nothing", HTTP_ROUTE_FOUND, &m), 8);
  /* "*" takes one or more segments, not none. */
  ASSERT_EQ(tag("GET", "/v1", HTTP_ROUTE_NO_PATH, &m), 0);
  ASSERT_EQ(m.route, -1);
  ASSERT_EQ(tag("GET", "/", HTTP_ROUTE_NO_PATH, &m), 0);
  ASSERT_EQ(tag("GET", "/other/path", HTTP_ROUTE_NO_PATH, &m), 0);
  /* More segments than max_segs, or one too long: nothing. */
  ASSERT_EQ(tag("GET", "/v1/a/b/c/d", HTTP_ROUTE_NO_PATH, &m), 0);
  char longp[200] = "/v1/messages/";
  memset(longp + 13, 'x', 150);
  longp[163] = '\0';
  ASSERT_EQ(tag("GET", longp, HTTP_ROUTE_NO_PATH, &m), 0);
}

KK_TEST(router_splits_paths_as_before) {
  struct http_match m;
  ASSERT_EQ(tag("GET", "/v1/messages/", HTTP_ROUTE_FOUND, &m), 1);
  ASSERT_EQ(tag("GET", "//v1/messages", HTTP_ROUTE_FOUND, &m), 1);
  /* An empty segment in the middle is a segment. */
  ASSERT_EQ(tag("GET", "/v1//messages", HTTP_ROUTE_FOUND, &m), 8);
  struct http_seg s[4];
  ASSERT_EQ(http_path_split("/a//b/", s, 4), 3);
  ASSERT_EQ(s[1].len, 0);
  ASSERT_EQ(http_path_split("/a/b/c/d/e", s, 4), -1);
  ASSERT_EQ(http_path_split("", s, 4), 0);
}
