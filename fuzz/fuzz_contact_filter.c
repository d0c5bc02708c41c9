/*
 * fuzz_contact_filter.c - fuzz target for the segment filter parser and its
 * SQL compiler: any text either parses or says where it stopped, and a
 * compiled condition holds no text of the filter (every value is a bound
 * parameter: no quote but the compiler's own — JSON paths, and 'yes' and
 * 'no' for consent and stop_listed — one placeholder per parameter), also
 * when read through the list it names at its top (that test taken as true).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "contact/contact_filter.h"
#include "core/kk_err.h"

static void check(int ok) {
  if (!ok) __builtin_trap();
}

/* Counts occurrences of s in sql. */
static int count(const char *sql, const char *s) {
  int n = 0;
  for (const char *p = sql; (p = strstr(p, s)) != NULL; p += strlen(s)) n++;
  return n;
}

/* The quotes of the compiler's own words: consent and stop_listed read as
   'yes' and 'no' (constants of the compiler, never text of the filter). */
static int fixed_quotes(const char *sql) { return 2 * count(sql, "'yes'") + 2 * count(sql, "'no'"); }

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size > CF_TEXT_MAX + 16) return 0;
  char *text = malloc(size + 1);
  memcpy(text, data, size);
  text[size] = '\0';
  struct cf_node *n;
  struct cf_error e;
  int rc = contact_filter_parse(text, &n, &e);
  check(rc == 0 || rc == KK_EINVAL);
  if (rc != 0) {
    check(n == NULL && e.pos <= strlen(text) + 1 && e.msg[0] != '\0');
    free(text);
    return 0;
  }
  static char sql[1 << 16];
  static struct cf_param ps[4096];
  int np;
  if (contact_filter_sql(n, CF_SQLITE, 1, sql, sizeof sql, ps, 4096, &np) == 0) {
    int quotes = count(sql, "'");
    check(quotes == 2 * count(sql, "'$.'") + 2 * count(sql, "''") + fixed_quotes(sql));
    check(count(sql, "?") == np);
  }
  int full = contact_filter_sql(n, CF_POSTGRES, 1, sql, sizeof sql, ps, 4096, &np) == 0;
  if (full) {
    check(count(sql, "'") == 2 * count(sql, "''") + fixed_quotes(sql));
    check(count(sql, "$") == np);
  }
  /* read through the list it names: that test becomes TRUE, one value fewer */
  const struct cf_node *skip;
  const char *list = contact_filter_read_list(NULL, n, &skip);
  check((list == NULL) == (skip == NULL) && list == contact_filter_list(n));
  int all = np;
  if (full && skip &&
      contact_filter_sql_but(n, skip, CF_POSTGRES, 3, sql, sizeof sql, ps, 4096, &np) == 0) {
    check(strstr(sql, "TRUE") != NULL && count(sql, "$") == np && np == all - 1);
  }
  contact_filter_free(n);
  free(text);
  return 0;
}
