/*
 * fuzz_contact_csv.c - fuzz target for the contact base reader: any bytes,
 * fed in pieces whose size the first byte picks; every reported row has a
 * phone of digits and UTF-8 fields, every refused row a reason, and lines
 * only grow.
 */
#include <stdint.h>
#include <string.h>

#include "contact/contact_csv.h"
#include "core/kk_err.h"
#include "core/kk_utf8.h"

static void check(int ok) {
  if (!ok) __builtin_trap();
}

static void utf8(const char *s) {
  if (s) check(kk_utf8_valid(s, strlen(s)));
}

static void on_row(void *arg, const struct contact_csv_row *r) {
  long *last = arg;
  check(r->line > *last);
  *last = r->line;
  size_t n = strlen(r->phone);
  check(n >= 8 && n <= 15 && strspn(r->phone, "0123456789") == n);
  utf8(r->name), utf8(r->email), utf8(r->timezone), utf8(r->vk_id), utf8(r->consent_source);
  check(r->nlists >= 0 && r->nlists <= CONTACT_CSV_LISTS_MAX);
  for (int i = 0; i < r->nlists; i++) utf8(r->lists[i]);
  for (int i = 0; i < r->nattrs; i++) utf8(r->attr_name[i]), utf8(r->attr_value[i]);
}

static void on_reject(void *arg, const struct contact_csv_reject *r) {
  long *last = arg;
  check(r->line > *last);
  *last = r->line;
  check(r->reason && r->reason[0] && r->detail && r->raw);
  check(r->raw_len <= CONTACT_CSV_ROW_MAX * 3 + 8);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size == 0) return 0;
  size_t step = (size_t)data[0] % 17 + 1;
  data++, size--;
  long last = 0;
  struct contact_csv_opts o = {.country = "RU", .row = on_row, .reject = on_reject, .arg = &last};
  struct contact_csv *c = contact_csv_new(&o);
  int rc = 0;
  for (size_t i = 0; i < size && rc == 0; i += step)
    rc = contact_csv_feed(c, (const char *)data + i, size - i < step ? size - i : step);
  if (rc == 0) rc = contact_csv_end(c);
  check(rc == 0 || (rc == KK_EINVAL && contact_csv_error(c)[0]));
  contact_csv_free(c);
  return 0;
}
