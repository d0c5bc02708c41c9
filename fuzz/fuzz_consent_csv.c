/*
 * fuzz_consent_csv.c - fuzz target for consents from CSV: any bytes, fed
 * in pieces whose size the first byte picks; every good row has a phone
 * of digits, a source, a known channel and a time not ahead of now, every
 * refused row a reason, and lines only grow.
 */
#include <stdint.h>
#include <string.h>

#include "contact/consent_csv.h"
#include "core/kk_err.h"
#include "policy/pol_consent.h"

#define NOW 1800000000000LL

static void check(int ok) {
  if (!ok) __builtin_trap();
}

static void on_row(void *arg, long line, const struct store_consent *r) {
  long *last = arg;
  check(line > *last);
  *last = line;
  size_t n = strlen(r->phone);
  check(n >= 8 && n <= 15 && strspn(r->phone, "0123456789") == n);
  check(r->source[0] != '\0');
  check(pol_consent_bit(r->channel) != 0);
  check(r->at <= NOW + 60000);
  check(r->text == NULL || strlen(r->text) <= STORE_CONSENT_TEXT_MAX);
}

static void on_reject(void *arg, const struct consent_csv_reject *r) {
  long *last = arg;
  check(r->line > *last);
  *last = r->line;
  check(r->reason && r->reason[0] && r->detail);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size == 0) return 0;
  size_t step = (size_t)data[0] % 17 + 1;
  data++, size--;
  long last = 0;
  struct consent_csv_opts o = {.country = "RU", .now = NOW, .row = on_row, .reject = on_reject,
                               .arg = &last};
  struct consent_csv *c = consent_csv_new(&o);
  int rc = 0;
  for (size_t i = 0; i < size && rc == 0; i += step)
    rc = consent_csv_feed(c, (const char *)data + i, size - i < step ? size - i : step);
  if (rc == 0) rc = consent_csv_end(c);
  check(rc == 0 || (rc == KK_EINVAL && consent_csv_error(c)[0]));
  consent_csv_free(c);
  return 0;
}
