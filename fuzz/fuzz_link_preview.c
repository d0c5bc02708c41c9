/*
 * fuzz_link_preview.c - fuzz target for telling link previews from people
 * (link/link_preview.h): any user agent gives 0 or 1, the same each time;
 * a HEAD is always a preview, and so is any user agent with a known
 * fetcher's name put in front of it.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "link/link_preview.h"

static void check(int ok) {
  if (!ok) __builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size > 4096) return 0;
  char *ua = malloc(size + 32);
  memcpy(ua, data, size);
  ua[size] = '\0';   /* a header's value ends at its first NUL */
  int r = link_preview("GET", ua);
  check(r == 0 || r == 1);
  check(link_preview("GET", ua) == r);
  check(link_preview("HEAD", ua) == 1);
  memmove(ua + 12, ua, strlen(ua) + 1);
  memcpy(ua, "TelegramBot ", 12);
  check(link_preview("GET", ua) == 1);
  free(ua);
  return 0;
}
