/*
 * contact_csv.h - reads a contact base from CSV as a marketer exports it:
 * UTF-8 (with or without a BOM) or Windows-1251, `,` or `;` between
 * fields, RFC 4180 quotes (newlines inside quoted fields), phones written
 * every possible way. Fields are split by libcsv; this module detects the
 * encoding and separator, maps the header, checks and normalises each row,
 * and says why a row is refused. No I/O: the caller feeds bytes in any
 * pieces (the import reads its file off the loop thread).
 *
 * Header names (case and spaces ignored): `phone` (required), `name`,
 * `email`, `timezone`, `vk_id`, `telegram_chat_id`, `viber_id`, `lists`
 * (`|`-separated), `consent` (yes/no), `consent_source`, `consent_at`;
 * every other column is an attribute.
 *
 * A bad row never stops the reading: it is passed to the reject callback
 * with its first line, a reason code and its raw text, and the next row is
 * read. A quoted field that is never closed is cut off after
 * CONTACT_CSV_ROW_MAX bytes or CONTACT_CSV_ROW_LINES lines: its first line
 * is refused (`broken_quote`) and reading starts again on the line after it.
 */
#ifndef CONTACT_CSV_H
#define CONTACT_CSV_H

#include <stddef.h>
#include <stdint.h>

#define CONTACT_CSV_COLS_MAX 64       /* columns of a file */
#define CONTACT_CSV_LISTS_MAX 32      /* lists of one row */
#define CONTACT_CSV_ROW_MAX (256u << 10)  /* bytes of one row */
#define CONTACT_CSV_ROW_LINES 1000    /* lines of one row (newlines inside quotes) */
#define CONTACT_CSV_VALUE_MAX 65536   /* bytes of one known field or attribute value */
#define CONTACT_CSV_NAME_MAX 64       /* bytes of an attribute's name */

enum contact_csv_encoding { CONTACT_CSV_UTF8, CONTACT_CSV_CP1251 };

/* One good row. Every string is NUL-terminated UTF-8, borrowed for the
   callback's duration; NULL when the column is absent or the field empty. */
struct contact_csv_row {
  long line;                        /* the row's first line in the file, 1-based */
  char phone[16];                   /* E.164 digits without '+' */
  const char *name, *email, *timezone, *vk_id, *telegram_chat_id, *viber_id;
  const char *lists[CONTACT_CSV_LISTS_MAX];
  int nlists;
  int consent;                      /* -1 not given, 0 no, 1 yes */
  const char *consent_source;
  int64_t consent_at;               /* ms since the epoch; 0: not given */
  const char *attr_name[CONTACT_CSV_COLS_MAX];
  const char *attr_value[CONTACT_CSV_COLS_MAX];
  int nattrs;
};

/* A refused row: reason is a stable code (no_phone, invalid_phone,
   invalid_timezone, wrong_column_count, broken_quote, not_utf8,
   invalid_consent, invalid_consent_at, too_many_lists, value_too_long,
   row_too_long); detail says more in words. */
struct contact_csv_reject {
  long line;
  const char *reason;
  const char *detail;
  const char *raw;                  /* the row as it was in the file (UTF-8 if it was) */
  size_t raw_len;
};

struct contact_csv_opts {
  const char *country;              /* default country of national numbers ("RU") */
  /* 1 when name is a time zone kaskad knows; NULL: the tz database's (kk_tz_valid) */
  int (*tz_valid)(void *arg, const char *name);
  void (*row)(void *arg, const struct contact_csv_row *r);
  void (*reject)(void *arg, const struct contact_csv_reject *r);
  void *arg;
};

struct contact_csv;

/* A reader; free with contact_csv_free. Options are copied. */
struct contact_csv *contact_csv_new(const struct contact_csv_opts *o);
void contact_csv_free(struct contact_csv *c);

/*
 * Reads the next n bytes of the file. Rows are reported as they complete.
 * 0, or KK_EINVAL when the file cannot be read as a contact base (no
 * header, no phone column, too many columns, a header name twice:
 * contact_csv_error says which); after that every call returns KK_EINVAL.
 */
int contact_csv_feed(struct contact_csv *c, const char *p, size_t n);
/* The end of the file: reports the last row. 0 or KK_EINVAL as feed. */
int contact_csv_end(struct contact_csv *c);

/* Why the file cannot be read ("" when it can). */
const char *contact_csv_error(const struct contact_csv *c);
/* What was detected (valid once the header was read). */
char contact_csv_separator(const struct contact_csv *c);
enum contact_csv_encoding contact_csv_encoding(const struct contact_csv *c);
/* Rows read (good and refused) and bytes consumed so far. */
long contact_csv_rows(const struct contact_csv *c);
uint64_t contact_csv_offset(const struct contact_csv *c);

/* A date as CRMs write it (2026-12-06, 2026-12-06 10:00[:00], RFC 3339 with
   Z or an offset, 06.12.2026 [10:00[:00]]) -> ms since the epoch (a time
   without an offset is UTC). 0 or KK_EINVAL. */
int contact_csv_parse_time(const char *s, int64_t *ms);

#endif
