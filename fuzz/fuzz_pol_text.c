/*
 * fuzz_pol_text.c - fuzz target for the rules' text normalisation and the
 * content filter: any bytes give valid UTF-8 words within the buffer,
 * normalising twice changes nothing, a hit names its category and words.
 */
#include <stdint.h>
#include <string.h>

#include "core/kk_utf8.h"
#include "policy/pol_content.h"
#include "policy/pol_text.h"

static void check(int ok) {
  if (!ok) __builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size > 4096) return 0;
  static char a[1 << 15], b[1 << 15];
  size_t n = pol_text_normalize((const char *)data, size, a, sizeof a);
  check(n < sizeof a && strlen(a) == n && kk_utf8_valid(a, n));
  check(n == 0 || (a[0] != ' ' && a[n - 1] != ' ' && strstr(a, "  ") == NULL));
  size_t m = pol_text_normalize(a, n, b, sizeof b);
  check(m == n && memcmp(a, b, n) == 0);
  static const char *const words[] = {"STOP", "СТОП"};
  pol_text_is_one_of((const char *)data, size, words, 2);
  static const char *const own[] = {"мой*", "две части"};
  struct pol_content_hit hit;
  if (pol_content_check((const char *)data, size, POL_CAT_ALL, own, 2, &hit))
    check(hit.category < POL_CAT_COUNT && hit.words[0] != '\0');
  return 0;
}
