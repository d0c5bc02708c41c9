/*
 * pg_rows.c - many rows of one table written by one statement: each column
 * is gathered into an array parameter (its text form, "{1,2}",
 * "{\"a\",NULL}") and the statement takes them row by row with unnest().
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/kk_err.h"
#include "core/kk_mem.h"
#include "store/pg/pg_int.h"

static void put(struct pg_col *c, const char *s, size_t n) {
  if (c->len + n + 2 > c->cap) {
    c->cap = (c->len + n + 2) * 2 + 64;
    c->buf = kk_xrealloc(c->buf, c->cap);
  }
  memcpy(c->buf + c->len, s, n);
  c->len += n;
}

/* The separator before the next element of c (the first opens the array). */
static void next(struct pg_rows *r, int col) {
  struct pg_col *c = &r->col[col];
  put(c, c->len ? "," : "{", 1);
}

int pg_fmt_int(char out[PG_INT_CHARS], int64_t v) {
  /* digits from the right, no format to parse: ids and times are most of
     what a run's arrays and a statement's parameters hold */
  char tmp[PG_INT_CHARS], *e = tmp + sizeof tmp, *p = e;
  uint64_t u = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;
  do {
    *--p = (char)('0' + u % 10);
    u /= 10;
  } while (u);
  if (v < 0) *--p = '-';
  int n = (int)(e - p);
  memcpy(out, p, (size_t)n);
  out[n] = '\0';
  return n;
}

void pg_rows_int(struct pg_rows *r, int col, int64_t v) {
  char num[PG_INT_CHARS];
  int n = pg_fmt_int(num, v);
  next(r, col);
  put(&r->col[col], num, (size_t)n);
}

void pg_rows_opt(struct pg_rows *r, int col, int64_t v) {
  if (v) {
    pg_rows_int(r, col, v);
  } else {
    next(r, col);
    put(&r->col[col], "NULL", 4);
  }
}

void pg_rows_text(struct pg_rows *r, int col, const char *s) {
  next(r, col);
  struct pg_col *c = &r->col[col];
  if (s == NULL) {
    put(c, "NULL", 4);
    return;
  }
  put(c, "\"", 1);
  for (const char *p = s; *p;) {
    size_t run = strcspn(p, "\"\\");
    put(c, p, run);
    p += run;
    if (*p) {
      char esc[2] = {'\\', *p++};
      put(c, esc, 2);
    }
  }
  put(c, "\"", 1);
}

void pg_rows_end(struct pg_rows *r) { r->n++; }

/* The columns 0..ncols-1 as parameters (array texts closed). */
static void rows_params(struct pg_rows *r, int ncols, struct pg_params *p) {
  for (int i = 0; i < ncols; i++) {
    struct pg_col *col = &r->col[i];
    if (col->len == 0) put(col, "{", 1);
    col->buf[col->len] = '}';
    col->buf[col->len + 1] = '\0';
    pg_p_text(p, col->buf);
  }
}

PGresult *pg_rows_run(struct pg_conn *c, struct pg_rows *r, const char *sql, int ncols, int *rc) {
  struct pg_params p = {0};
  rows_params(r, ncols, &p);
  PGresult *res = pg_query(c, sql, &p, rc);
  pg_rows_clear(r);
  return res;
}

int pg_rows_cmd(struct pg_conn *c, struct pg_rows *r, const char *sql, int ncols) {
  struct pg_params p = {0};
  rows_params(r, ncols, &p);
  int rc = pg_cmd(c, sql, &p);
  pg_rows_clear(r);
  return rc;
}

void pg_rows_clear(struct pg_rows *r) {
  for (int i = 0; i < PG_MAX_PARAMS; i++) r->col[i].len = 0;
  r->n = 0;
}

void pg_rows_free(struct pg_rows *r) {
  for (int i = 0; i < PG_MAX_PARAMS; i++) free(r->col[i].buf);
  memset(r, 0, sizeof *r);
}
