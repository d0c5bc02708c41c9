/*
 * consent_csv.h - consent records in bulk from CSV (POST
 * /v1/consents/import): the contact base reader (contact_csv.h) reads the
 * file, so encodings, separators, quotes and phones are read as in a
 * contact import; this module maps its columns to a consent record and
 * says why a row is refused. No I/O.
 *
 * Columns (header names, case ignored): `phone` (required), `source`
 * (required in each row), `text` (the text shown), `ip`, `at` (when the
 * person agreed: a date as contact_csv_parse_time reads it, not in the
 * future; empty: now), `channel` (`all`, the default, or a channel of
 * pol_consent.h). Other columns are ignored.
 */
#ifndef CONSENT_CSV_H
#define CONSENT_CSV_H

#include <stddef.h>
#include <stdint.h>

#include "store/store_optout.h"

/* A refused row: line (1-based), a stable reason (the contact reader's,
   or missing_source, invalid_at, invalid_channel, value_too_long) and
   its detail; both borrowed for the callback. */
struct consent_csv_reject {
  long line;
  const char *reason;
  const char *detail;
};

struct consent_csv_opts {
  const char *country;      /* default country of national numbers ("RU") */
  int64_t now;              /* the default and the bound of `at` */
  /* a good row: r is borrowed for the call (r->text too) */
  void (*row)(void *arg, long line, const struct store_consent *r);
  void (*reject)(void *arg, const struct consent_csv_reject *r);
  void *arg;
};

struct consent_csv;
/* A reader; free with consent_csv_free. Options are copied. */
struct consent_csv *consent_csv_new(const struct consent_csv_opts *o);
void consent_csv_free(struct consent_csv *c);
/* The next n bytes, then the end: 0, or KK_EINVAL when the file cannot be
   read (consent_csv_error says why). */
int consent_csv_feed(struct consent_csv *c, const char *p, size_t n);
int consent_csv_end(struct consent_csv *c);
const char *consent_csv_error(const struct consent_csv *c);

#endif
