/*
 * store_sql.c - what the backend-neutral reads and writes in plain SQL
 * (store_backend.sql) share: a query of one row with its not-found answer,
 * and the columns as text.
 */
#include <stdio.h>
#include <stdlib.h>

#include "core/kk_err.h"
#include "core/kk_mem.h"
#include "store/store_int.h"

struct one {
  store_sql_row_fn fn;
  void *arg;
  int found;
};

static int on_one(void *arg, const char *const *cols, int n) {
  struct one *o = arg;
  o->found = 1;
  if (o->fn) o->fn(o->arg, cols, n);
  return 1;
}

int store_sql_one(struct store *s, void *rd, const char *text, const struct store_sql_arg *a,
                  int n, store_sql_row_fn fn, void *arg) {
  struct one o = {fn, arg, 0};
  int rc = s->be->sql(s, rd, text, a, n, on_one, &o);
  return rc ? rc : o.found ? 0 : KK_ENOENT;
}

int64_t store_col_num(const char *col) { return col ? strtoll(col, NULL, 10) : 0; }

void store_col_copy(char *out, size_t cap, const char *col) { kk_scopy(out, cap, col); }

char *store_col_dup(const char *col) { return col ? kk_xstrdup(col) : NULL; }
