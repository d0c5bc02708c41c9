/*
 * test_link_url.c - tracked links' pure part (link/link_url.h): the URLs
 * found in texts and where they end, the rewrite, codes, UTM tags.
 */
#include <stdlib.h>
#include <string.h>

#include "core/kk_err.h"
#include "kk_test.h"
#include "link/link_url.h"

/* The URLs of text, joined by '|'. */
static const char *urls(const char *text) {
  static char out[1024];
  out[0] = '\0';
  size_t at = 0, s, n, len = strlen(text);
  while (link_url_next(text, len, at, &s, &n)) {
    if (out[0]) strcat(out, "|");
    strncat(out, text + s, n);
    at = s + n;
  }
  return out;
}

KK_TEST(link_url_finds_and_ends_urls) {
  ASSERT_STR_EQ(urls("Скидка https://shop.ru/a?b=1#c тут"), "https://shop.ru/a?b=1#c");
  ASSERT_STR_EQ(urls("HTTP://Shop.ru and http://x.ru/"), "HTTP://Shop.ru|http://x.ru/");
  /* sentence punctuation at the end is not part of it */
  ASSERT_STR_EQ(urls("Go to https://a.ru/x. Then http://b.ru, or http://c.ru!?"),
                "https://a.ru/x|http://b.ru|http://c.ru");
  ASSERT_STR_EQ(urls("see (https://a.ru/wiki/X_(y)) now"), "https://a.ru/wiki/X_(y)");
  ASSERT_STR_EQ(urls("(https://a.ru/x)"), "https://a.ru/x");
  ASSERT_STR_EQ(urls("[https://a.ru/x]"), "https://a.ru/x");
  /* quotes, guillemets, brackets of HTML, whitespace of any kind */
  ASSERT_STR_EQ(urls("«https://a.ru/акция»"), "https://a.ru/акция");
  ASSERT_STR_EQ(urls("<a href=\"https://a.ru/p?q=1\">x</a>"), "https://a.ru/p?q=1");
  ASSERT_STR_EQ(urls("“https://a.ru”"), "https://a.ru");
  ASSERT_STR_EQ(urls("https://a.ru\xc2\xa0дальше"), "https://a.ru");
  ASSERT_STR_EQ(urls("https://a.ru\tx\nhttps://b.ru\r"), "https://a.ru|https://b.ru");
  ASSERT_STR_EQ(urls("https://a.ru—скидка https://b.ru…"), "https://a.ru|https://b.ru");
  ASSERT_STR_EQ(urls("https://a.ru{{x}}"), "https://a.ru");
  /* a non-ASCII host */
  ASSERT_STR_EQ(urls("на https://магазин.рф/скидки."), "https://магазин.рф/скидки");
  /* not URLs: no host, glued to a word, another scheme, a scheme alone */
  ASSERT_STR_EQ(urls("http:// x https:///a xhttp://a.ru ftp://a.ru http:/a.ru"), "");
  ASSERT_STR_EQ(urls("https://"), "");
  ASSERT_STR_EQ(urls("http://."), "");
  /* a byte that is not UTF-8 ends it */
  ASSERT_STR_EQ(urls("http://a.ru/\xff\xfe"), "http://a.ru/");
  ASSERT_STR_EQ(urls("http://a.ru/\xd0"), "http://a.ru/");
}

static const char *short_of(void *arg, const char *url, size_t n) {
  int *k = arg;
  if (n >= 8 && memcmp(url, "http://k", 8) == 0) return NULL;   /* our own: kept */
  static char out[32];
  snprintf(out, sizeof out, "http://k/r/%d", ++*k);
  return out;
}

KK_TEST(link_url_rewrite_replaces_each_url) {
  int k = 0, n;
  size_t len;
  const char *t = "A https://a.ru/x. B «http://b.ru» C http://k/u/1 D";
  char *out = link_rewrite(t, strlen(t), short_of, &k, &len, &n);
  ASSERT_STR_EQ(out, "A http://k/r/1. B «http://k/r/2» C http://k/u/1 D");
  ASSERT_EQ(len, strlen(out));
  ASSERT_EQ(n, 2);
  free(out);
  out = link_rewrite("", 0, short_of, &k, &len, &n);
  ASSERT_STR_EQ(out, "");
  ASSERT_EQ(n, 0);
  free(out);
  /* the replacement may be longer than the whole text */
  k = 0;
  out = link_rewrite("http://a", 8, short_of, &k, &len, NULL);
  ASSERT_STR_EQ(out, "http://k/r/1");
  free(out);
}

KK_TEST(link_url_codes_are_base62_and_differ) {
  char a[LINK_CODE_LEN + 1], b[LINK_CODE_LEN + 1];
  link_code_new(a);
  link_code_new(b);
  ASSERT_EQ(strlen(a), LINK_CODE_LEN);
  ASSERT(link_code_valid(a));
  ASSERT(strcmp(a, b) != 0);
  ASSERT(!link_code_valid("short"));
  ASSERT(!link_code_valid("AAAAAAAAAAA-"));
  ASSERT(!link_code_valid(NULL));
  ASSERT(link_code_valid("AAAAAAAAAAAz"));
}

static const char *utm(const char *url) {
  static char out[LINK_UTM_MAX];
  int n = link_utm_add(url, "sms", "spring-1", out, sizeof out);
  ASSERT(n >= 0);
  ASSERT_EQ(n, strlen(out));
  return out;
}

KK_TEST(link_url_utm_tags_added_own_kept_fragment_last) {
  ASSERT_STR_EQ(utm("https://a.ru"),
                "https://a.ru?utm_source=kaskad&utm_medium=sms&utm_campaign=spring-1");
  ASSERT_STR_EQ(utm("https://a.ru/p?x=1#top"),
                "https://a.ru/p?x=1&utm_source=kaskad&utm_medium=sms&utm_campaign=spring-1#top");
  ASSERT_STR_EQ(utm("https://a.ru/p?"),
                "https://a.ru/p?utm_source=kaskad&utm_medium=sms&utm_campaign=spring-1");
  ASSERT_STR_EQ(utm("https://a.ru/p?x=1&"),
                "https://a.ru/p?x=1&utm_source=kaskad&utm_medium=sms&utm_campaign=spring-1");
  /* the link's own tags stay, only the missing ones are added */
  ASSERT_STR_EQ(utm("https://a.ru/?utm_source=vk&utm_content=b#f?utm_medium=x"),
                "https://a.ru/?utm_source=vk&utm_content=b&utm_medium=sms&utm_campaign=spring-1"
                "#f?utm_medium=x");
  ASSERT_STR_EQ(utm("https://a.ru/?utm_source=1&utm_medium=2&utm_campaign=3"),
                "https://a.ru/?utm_source=1&utm_medium=2&utm_campaign=3");
  /* a tag's name is matched whole */
  ASSERT_STR_EQ(utm("https://a.ru/?xutm_source=1"),
                "https://a.ru/?xutm_source=1&utm_source=kaskad&utm_medium=sms&utm_campaign=spring-1");
  /* what may not stand in a header is percent-encoded */
  ASSERT_STR_EQ(utm("https://магазин.рф/a b\r\n"),
                "https://%D0%BC%D0%B0%D0%B3%D0%B0%D0%B7%D0%B8%D0%BD.%D1%80%D1%84/a%20b%0D%0A"
                "?utm_source=kaskad&utm_medium=sms&utm_campaign=spring-1");
  char small[16];
  ASSERT_EQ(link_utm_add("https://a.ru/long", "sms", "c", small, sizeof small), KK_ENOSPC);
}
