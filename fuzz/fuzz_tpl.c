/*
 * fuzz_tpl.c - fuzz target for template rendering and the SMS lint: the
 * input is a template, then (after the first NUL) a value every
 * placeholder gets; a value is never expanded again, so the result is at
 * most the template plus one value per placeholder.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/kk_err.h"
#include "core/kk_utf8.h"
#include "template/tpl.h"

static void check(int ok) {
  if (!ok) __builtin_trap();
}

static const char *value(void *arg, const char *name) {
  return strcmp(name, "none") == 0 ? NULL : arg;
}

static void count(void *arg, const char *name, int has_default, size_t pos) { ++*(int *)arg; }

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const char *tpl = (const char *)data;
  const char *nul = memchr(data, 0, size);
  size_t len = nul ? (size_t)(nul - tpl) : size;
  char *val = malloc(size - len + 1);
  memcpy(val, nul ? nul + 1 : "", nul ? size - len - 1 : 0);
  val[nul ? size - len - 1 : 0] = '\0';
  static char out[1 << 16];
  size_t n = 0;
  struct tpl_error e;
  int rc = tpl_render(tpl, len, value, val, out, sizeof out, &n, &e);
  check(rc == 0 || rc == KK_EINVAL || rc == KK_ENOENT || rc == KK_ETOOBIG);
  check(n < sizeof out && out[n] == '\0');
  int holes = 0;
  if (tpl_each(tpl, len, count, &holes, &e) == 0 && rc == 0)
    check(n <= len + (size_t)holes * strlen(val));
  if (rc == 0 && kk_utf8_valid(out, n)) {
    struct tpl_lint l[8];
    int k = tpl_lint_sms(out, n, tpl, len, 1, val[0] ? val : NULL, l, 8);
    check(k >= 0 && k <= 8);
  }
  free(val);
  return 0;
}
