/*
 * fuzz_link_url.c - fuzz target for the URL finder of tracked links and
 * the UTM tags (link/link_url.h): every URL found lies inside the input,
 * in order, begins with its scheme and holds no whitespace, control or
 * quote; the text rewritten holds none; a target with its tags is safe in
 * a header.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "link/link_url.h"

static void check(int ok) {
  if (!ok) __builtin_trap();
}

static const char *replace(void *arg, const char *url, size_t n) {
  (void)url;
  (void)n;
  (*(int *)arg)++;
  return "X";
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size > 8192) return 0;
  const char *t = (const char *)data;
  size_t at = 0, s, n, total = 0;
  int found = 0;
  static char out[LINK_UTM_MAX];
  while (link_url_next(t, size, at, &s, &n)) {
    check(s >= at && n > 0 && s + n <= size);
    check(strncasecmp(t + s, "http://", 7) == 0 || strncasecmp(t + s, "https://", 8) == 0);
    for (size_t i = s; i < s + n; i++)
      check((unsigned char)t[i] > 0x20 && t[i] != 0x7f && t[i] != '"' && t[i] != '<' &&
            t[i] != '>');
    char *url = malloc(n + 1);
    memcpy(url, t + s, n);
    url[n] = '\0';
    if (n <= LINK_URL_MAX) {
      int len = link_utm_add(url, "sms", "c-1", out, sizeof out);
      check(len > 0 && (size_t)len == strlen(out));
      for (int i = 0; i < len; i++) check((unsigned char)out[i] > 0x20 && out[i] != 0x7f);
    }
    free(url);
    found++;
    total += n;
    at = s + n;
  }
  int k = 0, replaced;
  size_t len;
  char *r = link_rewrite(t, size, replace, &k, &len, &replaced);
  check(replaced == found && k == found && len == size - total + (size_t)found);
  check(!link_url_next(r, len, 0, &s, &n));
  free(r);
  return 0;
}
