/*
 * fuzz_phone_plan.c - fuzz target for the numbering-plan register parser.
 * The input is the register and the zone table, split at the first NUL
 * byte; every parsed plan answers lookups with strings it holds.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "core/kk_err.h"
#include "phone/phone_plan.h"

static void check(int ok) {
  if (!ok) __builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const char *def = (const char *)data;
  const char *nul = memchr(data, 0, size);
  size_t len = nul ? (size_t)(nul - def) : size;
  const char *tz = nul ? nul + 1 : "";
  size_t tz_len = nul ? size - len - 1 : 0;
  struct phone_plan *p;
  int skipped;
  int rc = phone_plan_parse(def, len, tz, tz_len, &p, &skipped);
  check(rc == 0 || rc == KK_EINVAL || rc == KK_EUTF8);
  if (rc != 0) {
    check(p == NULL);
    return 0;
  }
  check(phone_plan_size(p) > 0 && skipped >= 0);
  static const char *nums[] = {"79000000000", "79161234567", "79999999999", "7900", "1"};
  for (size_t i = 0; i < sizeof nums / sizeof nums[0]; i++) {
    struct phone_plan_info in;
    if (phone_plan_lookup(p, nums[i], &in) == 0)
      /* each a piece of the input (the INN the operator's name when it has
         none), Windows-1251 grown to at most 3 bytes a character */
      check(in.operator_name && in.inn && in.region && in.timezone &&
            strlen(in.operator_name) < 3 * size + 64 && strlen(in.inn) < 3 * size + 64 &&
            strlen(in.region) < 3 * size + 64 && strlen(in.timezone) < 3 * size + 64);
  }
  phone_plan_free(p);
  return 0;
}
