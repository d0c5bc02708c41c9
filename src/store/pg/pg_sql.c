/*
 * pg_sql.c - plain SQL in the PostgreSQL backend (store_backend.sql): the
 * `?` of the statement numbered $1, $2, ... and its arguments as text.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/kk_err.h"
#include "core/kk_mem.h"
#include "store/pg/pg_int.h"

#define SQL_MAX_COLS 32

int pg_sql(struct store *s, void *rd, const char *sql, const struct store_sql_arg *a, int n,
           store_sql_row_fn fn, void *arg) {
  if (n > PG_MAX_PARAMS) return KK_ESTORE;
  size_t len = strlen(sql);
  char *text = kk_xmalloc(len + 4 * (size_t)n + 1);   /* freed below */
  size_t o = 0;
  int k = 0;
  for (size_t i = 0; i < len; i++) {
    if (sql[i] == '?' && k < n)
      o += (size_t)sprintf(text + o, "$%d", ++k);
    else
      text[o++] = sql[i];
  }
  text[o] = '\0';
  struct pg_params p = {0};
  for (int i = 0; i < n; i++) {
    if (a[i].is_text)
      pg_p_text(&p, a[i].t);
    else
      pg_p_int(&p, a[i].i);
  }
  int rc = 0;
  PGresult *r = rd ? pg_read(rd, text, &p, &rc) : pg_query(&PG(s)->w, text, &p, &rc);
  free(text);
  if (r == NULL) return rc ? rc : KK_ESTORE;
  int nc = PQnfields(r);
  if (nc > SQL_MAX_COLS) nc = SQL_MAX_COLS;
  for (int row = 0; fn && row < PQntuples(r); row++) {
    const char *cols[SQL_MAX_COLS];
    for (int i = 0; i < nc; i++) cols[i] = PQgetisnull(r, row, i) ? NULL : PQgetvalue(r, row, i);
    if (fn(arg, cols, nc)) break;
  }
  PQclear(r);
  return 0;
}
