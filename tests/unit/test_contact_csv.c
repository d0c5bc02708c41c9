/* test_contact_csv.c - a contact base from CSV: encodings, separators,
   quotes, bad rows and their reasons, any split of the bytes. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "contact/contact_csv.h"
#include "core/kk_err.h"
#include "kk_test.h"

/* What a reading produced, as text: one line per row. */
struct seen {
  char out[1 << 16];
  int good, bad;
};

static void add(struct seen *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void add(struct seen *s, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  size_t n = strlen(s->out);
  vsnprintf(s->out + n, sizeof s->out - n, fmt, ap);
  va_end(ap);
}

static void on_row(void *arg, const struct contact_csv_row *r) {
  struct seen *s = arg;
  s->good++;
  add(s, "%ld:%s", r->line, r->phone);
  if (r->name) add(s, " name=%s", r->name);
  if (r->email) add(s, " email=%s", r->email);
  if (r->timezone) add(s, " tz=%s", r->timezone);
  for (int i = 0; i < r->nlists; i++) add(s, " list=%s", r->lists[i]);
  if (r->consent >= 0) add(s, " consent=%d", r->consent);
  if (r->consent_at) add(s, " at=%lld", (long long)r->consent_at);
  for (int i = 0; i < r->nattrs; i++) add(s, " %s=%s", r->attr_name[i], r->attr_value[i]);
  add(s, "\n");
}

static void on_reject(void *arg, const struct contact_csv_reject *r) {
  struct seen *s = arg;
  s->bad++;
  add(s, "%ld!%s [%.*s]\n", r->line, r->reason, r->raw_len > 80 ? 80 : (int)r->raw_len, r->raw);
}

/* Reads text fed in pieces of step bytes (0: all at once). */
static int read_csv(const char *text, size_t len, size_t step, struct seen *s, char *sep) {
  memset(s, 0, sizeof *s);
  struct contact_csv_opts o = {.country = "RU", .row = on_row, .reject = on_reject, .arg = s};
  struct contact_csv *c = contact_csv_new(&o);
  int rc = 0;
  for (size_t i = 0; i < len && rc == 0; i += step ? step : len)
    rc = contact_csv_feed(c, text + i, step && len - i > step ? step : len - i);
  if (rc == 0) rc = contact_csv_end(c);
  if (sep) *sep = contact_csv_separator(c);
  if (rc != 0) add(s, "error: %s\n", contact_csv_error(c));
  contact_csv_free(c);
  return rc;
}

static void expect(const char *text, const char *want, char want_sep) {
  struct seen s, t;
  char sep;
  size_t len = strlen(text);
  read_csv(text, len, 0, &s, &sep);
  if (strcmp(s.out, want) != 0) kk_test_fail(__FILE__, __LINE__, "got:\n%s\nwant:\n%s", s.out, want);
  ASSERT_EQ(sep, want_sep);
  /* any split of the bytes reads the same */
  static const size_t steps[] = {1, 2, 3, 7, 64};
  for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
    read_csv(text, len, steps[i], &t, NULL);
    if (strcmp(s.out, t.out) != 0)
      kk_test_fail(__FILE__, __LINE__, "step %zu got:\n%s\nwant:\n%s", steps[i], t.out, s.out);
  }
}

KK_TEST(contact_csv_phone_forms_and_columns) {
  expect("phone,name,email,city,lists,consent,consent_at\n"
         "+7 (916) 123-45-67,Анна,a@x.ru,Казань,vip|new,yes,2026-01-02T03:04:05Z\n"
         "89161234568, Борис ,,Москва,,no,06.12.2026\n"
         "9161234569,,,,, ,\n"
         "8-916-123-45-70,,,,,,\n"
         "79161234571,,,,,,\n",
         "2:79161234567 name=Анна email=a@x.ru list=vip list=new consent=1 at=1767323045000 "
         "city=Казань\n"
         "3:79161234568 name=Борис consent=0 at=1796515200000 city=Москва\n"
         "4:79161234569\n5:79161234570\n6:79161234571\n",
         ',');
}

KK_TEST(contact_csv_semicolon_bom_crlf_quotes) {
  expect("\xEF\xBB\xBF" "Phone;Name;Comment\r\n"
         "79161234567;\"Иванов; Иван\";\"line one\r\nline \"\"two\"\"\"\r\n"
         "\r\n"
         "79161234568;Пётр;\r\n",
         "2:79161234567 name=Иванов; Иван comment=line one\nline \"two\"\n"
         "5:79161234568 name=Пётр\n",
         ';');
}

KK_TEST(contact_csv_windows_1251) {
  /* "phone;name\n79161234567;Иван\n" in Windows-1251 */
  expect("phone;name\n79161234567;\xc8\xe2\xe0\xed\n", "2:79161234567 name=Иван\n", ';');
}

KK_TEST(contact_csv_bad_rows_are_reported_and_skipped) {
  expect("phone,name,timezone\n"
         ",Нет телефона,\n"
         "abc,Буквы,\n"
         "79161234567,Too,many,columns\n"
         "79161234568,Too few\n"
         "79161234569,Bad zone,Mars/Olympus Mons\n"
         "79161234570,a\"b,\n"
         "79161234571,\"closed\"x,\n"
         "79161234572,Good,Europe/Moscow\n",
         "2!no_phone [,Нет телефона,]\n"
         "3!invalid_phone [abc,Буквы,]\n"
         "4!wrong_column_count [79161234567,Too,many,columns]\n"
         "5!wrong_column_count [79161234568,Too few]\n"
         "6!invalid_timezone [79161234569,Bad zone,Mars/Olympus Mons]\n"
         "7!broken_quote [79161234570,a\"b,]\n"
         "8!broken_quote [79161234571,\"closed\"x,]\n"
         "9:79161234572 name=Good tz=Europe/Moscow\n",
         ',');
}

KK_TEST(contact_csv_unclosed_quote_is_undone) {
  /* A quote never closed: its line is refused, the lines after it read. */
  expect("phone,name\n"
         "79161234567,\"open\n"
         "79161234568,Second\n"
         "79161234569,Third\n",
         "2!broken_quote [79161234567,\"open]\n"
         "3:79161234568 name=Second\n4:79161234569 name=Third\n",
         ',');
  /* ... also when it runs over the line limit in the middle of a file */
  size_t cap = (CONTACT_CSV_ROW_LINES + 10) * 16;
  char *text = malloc(cap);
  size_t n = (size_t)snprintf(text, cap, "phone,name\n79161234567,\"open\n");
  for (int i = 0; i < CONTACT_CSV_ROW_LINES + 5; i++)
    n += (size_t)snprintf(text + n, cap - n, "7916%07d,x\n", i);
  struct seen s;
  ASSERT_EQ(read_csv(text, n, 4096, &s, NULL), 0);
  ASSERT_EQ(s.bad, 1);
  ASSERT_EQ(s.good, CONTACT_CSV_ROW_LINES + 5);
  ASSERT(strncmp(s.out, "2!broken_quote", 14) == 0);
  ASSERT(strstr(s.out, "\n3:79160000000 name=x\n") != NULL);
  free(text);
}

KK_TEST(contact_csv_long_fields_and_lines) {
  size_t big = 10000;
  char *text = malloc(big * 2 + 256);
  int n = sprintf(text, "phone,note\n79161234567,\"");
  for (size_t i = 0; i < big; i++) memcpy(text + n + 2 * i, "я", 2);
  n += (int)(big * 2);
  n += sprintf(text + n, "\"\n79161234568,short\n");
  struct seen s;
  ASSERT_EQ(read_csv(text, (size_t)n, 1000, &s, NULL), 0);
  if (s.good != 2) kk_test_fail(__FILE__, __LINE__, "%.300s", s.out);
  ASSERT_EQ(s.bad, 1 - 1);
  free(text);
  /* a value over CONTACT_CSV_VALUE_MAX, a line over CONTACT_CSV_ROW_MAX */
  size_t huge = CONTACT_CSV_ROW_MAX + 10;
  text = malloc(huge + CONTACT_CSV_VALUE_MAX + 256);
  n = sprintf(text, "phone,note\n79161234567,");
  memset(text + n, 'a', CONTACT_CSV_VALUE_MAX + 1);
  n += CONTACT_CSV_VALUE_MAX + 1;
  n += sprintf(text + n, "\n79161234568,");
  memset(text + n, 'b', huge);
  n += (int)huge;
  n += sprintf(text + n, "\n79161234569,ok\n");
  ASSERT_EQ(read_csv(text, (size_t)n, 4096, &s, NULL), 0);
  ASSERT_EQ(s.good, 1);
  ASSERT_EQ(s.bad, 2);
  ASSERT(strstr(s.out, "2!value_too_long") != NULL);
  if (strstr(s.out, "3!row_too_long") == NULL) kk_test_fail(__FILE__, __LINE__, "%.600s", s.out);
  ASSERT(strstr(s.out, "4:79161234569 note=ok") != NULL);
  free(text);
}

KK_TEST(contact_csv_unusable_files) {
  static const struct {
    const char *text, *err;
  } bad[] = {
      {"", "no header"},
      {"\n\n", "no header"},
      {"name,email\nАнна,a@x.ru\n", "no phone column"},
      {"phone,name,Name\n", "twice"},
      {"phone,\"name\n", "not CSV"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    struct seen s;
    ASSERT_EQ(read_csv(bad[i].text, strlen(bad[i].text), 0, &s, NULL), KK_EINVAL);
    if (strstr(s.out, bad[i].err) == NULL)
      kk_test_fail(__FILE__, __LINE__, "\"%s\": %s", bad[i].text, s.out);
  }
  /* a header alone is an empty base; a trailing separator names no column */
  struct seen s;
  ASSERT_EQ(read_csv("phone;name;\n79161234567;A;\n", 27, 0, &s, NULL), 0);
  ASSERT_STR_EQ(s.out, "2:79161234567 name=A\n");
}

KK_TEST(contact_csv_dates) {
  static const struct {
    const char *s;
    long long ms;
  } ok[] = {
      {"2026-12-06", 1796515200000LL},          {"06.12.2026", 1796515200000LL},
      {"2026-12-06 10:00", 1796551200000LL},    {"2026-12-06T10:00:00Z", 1796551200000LL},
      {"2026-12-06T13:00:00+03:00", 1796551200000LL}, {"06.12.2026 10:00:00", 1796551200000LL},
      {"2026-12-06T10:00:00.123Z", 1796551200000LL},
  };
  for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
    int64_t ms;
    ASSERT_EQ(contact_csv_parse_time(ok[i].s, &ms), 0);
    ASSERT_EQ(ms, ok[i].ms);
  }
  static const char *bad[] = {"", "2026-13-01", "31.02.2026", "2026-12-06T25:00", "yesterday",
                              "2026-12-06Z1", "1969-12-31"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    int64_t ms;
    ASSERT_EQ(contact_csv_parse_time(bad[i], &ms), KK_EINVAL);
  }
}
