/* test_http_resp.c - HTTP/1.x response heads and chunked bodies. */
#include <string.h>

#include "core/kk_err.h"
#include "http/http_resp.h"
#include "kk_test.h"

KK_TEST(http_resp_head_fields) {
  static const char r[] =
      "HTTP/1.1 429 Too Many Requests\r\nContent-Length: 12\r\nretry-after:  7 \r\n"
      "Connection: keep-alive, Close\r\n\r\n{\"ok\":false}";
  struct http_resp_head h;
  long n = http_resp_head_parse(r, sizeof r - 1, &h);
  ASSERT_EQ(n, (long)(strstr(r, "{") - r));
  ASSERT_EQ(h.status, 429);
  ASSERT_EQ(h.content_length, 12);
  ASSERT_EQ(h.chunked, 0);
  ASSERT_EQ(h.close, 1);
  ASSERT_STR_EQ(h.retry_after, "7");
}

KK_TEST(http_resp_head_partial_and_forms) {
  static const char r[] = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
  struct http_resp_head h;
  for (size_t i = 0; i < sizeof r - 3; i++) ASSERT_EQ(http_resp_head_parse(r, i, &h), 0);
  /* bare LF, HTTP/1.0 closes unless kept alive, chunked wins over a length */
  ASSERT_EQ(http_resp_head_parse("HTTP/1.0 200 OK\n\n", 17, &h), 17);
  ASSERT_EQ(h.close, 1);
  ASSERT_EQ(h.content_length, -1);
  static const char ka[] = "HTTP/1.0 204 No Content\r\nConnection: keep-alive\r\n\r\n";
  ASSERT_EQ(http_resp_head_parse(ka, sizeof ka - 1, &h), (long)sizeof ka - 1);
  ASSERT_EQ(h.close, 0);
  static const char ch[] = "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n";
  ASSERT_EQ(http_resp_head_parse(ch, sizeof ch - 1, &h), (long)sizeof ch - 1);
  ASSERT_EQ(h.chunked, 1);
  ASSERT_EQ(h.content_length, -1);
}

KK_TEST(http_resp_head_refused) {
  static const char *bad[] = {
      "HTTP/2 200 OK\r\n\r\n",        "HTTP/1.1 20 OK\r\n\r\n",
      "HTTP/1.1 700 Odd\r\n\r\n",     "SMTP/1.1 200 OK\r\n\r\n",
      "HTTP/1.1 200 OK\r\nNoColon\r\n\r\n",
      "HTTP/1.1 200 OK\r\nContent-Length: 1x\r\n\r\n",
      "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
      "HTTP/1.1 200 OK\r\n folded\r\n\r\n",
  };
  struct http_resp_head h;
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    ASSERT_EQ(http_resp_head_parse(bad[i], strlen(bad[i]), &h), KK_EPROTO);
  static char big[HTTP_RESP_HEAD_MAX + 10];
  memset(big, 'a', sizeof big);
  memcpy(big, "HTTP/1.1 200 OK\r\nX: ", 20);
  ASSERT_EQ(http_resp_head_parse(big, sizeof big, &h), KK_ETOOBIG);
}

/* Fed one byte at a time and in one piece, the same body comes out. */
KK_TEST(http_chunked_bodies) {
  static const char body[] = "4\r\nWiki\r\n5;ext=1\r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n0\r\nX: y\r\n\r\nNEXT";
  for (int bytewise = 0; bytewise < 2; bytewise++) {
    struct http_chunked c;
    memset(&c, 0, sizeof c);
    struct kk_buf out;
    kk_buf_init(&out, 1024);
    size_t off = 0;
    int done = 0;
    while (!done && off < sizeof body - 1) {
      size_t n = bytewise ? 1 : sizeof body - 1 - off;
      long used = http_chunked_feed(&c, body + off, n, &out, &done);
      ASSERT(used >= 0);
      off += (size_t)used;
    }
    ASSERT_EQ(done, 1);
    ASSERT_STR_EQ(body + off, "NEXT");
    ASSERT_STR_EQ(out.p, "Wikipedia in\r\n\r\nchunks.");
    kk_buf_fini(&out);
  }
  static const char *bad[] = {"x\r\n", "4\r\nWikiXX", "\r\n", "1234567890abcdef0\r\n"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    struct http_chunked c;
    memset(&c, 0, sizeof c);
    struct kk_buf out;
    kk_buf_init(&out, 1024);
    int done = 0;
    ASSERT_EQ(http_chunked_feed(&c, bad[i], strlen(bad[i]), &out, &done), KK_EPROTO);
    kk_buf_fini(&out);
  }
}
