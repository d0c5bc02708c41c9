/*
 * fuzz_http_resp.c - fuzz target for the HTTP/1.x response head parser and
 * the chunked body decoder. A head's length must lie inside the input; the
 * decoder, fed the rest in two pieces, must never consume more than it was
 * given nor grow its output past the cap.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "core/kk_err.h"
#include "http/http_resp.h"

static void check(int ok) {
  if (!ok) __builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const char *p = (const char *)data;
  struct http_resp_head h;
  long n = http_resp_head_parse(p, size, &h);
  check(n == KK_EPROTO || n == KK_ETOOBIG || (n >= 0 && n <= (long)size));
  if (n > 0) {
    check(h.status >= 100 && h.status <= 599);
    check(!h.chunked || h.content_length == -1);
    check(memchr(h.retry_after, '\0', sizeof h.retry_after) != NULL);
  }
  size_t off = n > 0 ? (size_t)n : 0;
  struct http_chunked c;
  memset(&c, 0, sizeof c);
  struct kk_buf out;
  kk_buf_init(&out, 256);
  size_t half = off + (size - off) / 2;
  int done = 0;
  long a = http_chunked_feed(&c, p + off, half - off, &out, &done);
  check(a == KK_EPROTO || a == KK_ETOOBIG || (a >= 0 && a <= (long)(half - off)));
  if (a >= 0 && !done) {
    long b = http_chunked_feed(&c, p + half, size - half, &out, &done);
    check(b == KK_EPROTO || b == KK_ETOOBIG || (b >= 0 && b <= (long)(size - half)));
  }
  check(out.len <= 256);
  kk_buf_fini(&out);
  return 0;
}
