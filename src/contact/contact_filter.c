/*
 * contact_filter.c - the segment filter language: parser and SQL compiler.
 * See contact_filter.h.
 *
 *   or      := and ("or" and)*
 *   and     := unary ("and" unary)*
 *   unary   := "not" unary | primary
 *   primary := "(" or ")" | "exists" name | name "exists"
 *            | name op value | name "contains" string | name "in" "(" value ("," value)* ")"
 */
#include "contact/contact_filter.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/kk_err.h"
#include "core/kk_mem.h"
#include "core/kk_utf8.h"

static const char *const field_names[CF_F_COUNT] = {
    [CF_F_ATTR] = "", [CF_F_PHONE] = "phone", [CF_F_NAME] = "name", [CF_F_EMAIL] = "email",
    [CF_F_TIMEZONE] = "timezone", [CF_F_OPERATOR] = "operator", [CF_F_REGION] = "region",
    [CF_F_VK_ID] = "vk_id", [CF_F_TELEGRAM_CHAT_ID] = "telegram_chat_id",
    [CF_F_VIBER_ID] = "viber_id", [CF_F_CONSENT] = "consent", [CF_F_STOP_LISTED] = "stop_listed",
    [CF_F_LIST] = "list",
};

/* ---- parser ------------------------------------------------------------------ */

struct parser {
  const char *text, *p;
  int nodes, depth;
  struct cf_error *err;
  int failed;
};

static int fail(struct parser *ps, const char *at, const char *fmt, ...) {
  if (!ps->failed) {
    ps->failed = 1;
    ps->err->pos = (size_t)(at - ps->text);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(ps->err->msg, sizeof ps->err->msg, fmt, ap);
    va_end(ap);
  }
  return KK_EINVAL;
}

static void skip_space(struct parser *ps) {
  while (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\n' || *ps->p == '\r') ps->p++;
}

/* A name's byte: ASCII letters, digits, '_', '.', and any byte of a
   multi-byte UTF-8 character (Cyrillic column names). */
static int name_byte(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '.' || c >= 0x80;
}

/* The word at p (a name or keyword), its length; 0 when none. */
static size_t word_len(const char *p) {
  size_t n = 0;
  if ((unsigned char)p[0] >= '0' && (unsigned char)p[0] <= '9') return 0;
  while (name_byte((unsigned char)p[n])) n++;
  return n;
}

static int is_kw(const char *p, size_t n, const char *kw) {
  return n == strlen(kw) && strncasecmp(p, kw, n) == 0;
}

/* Consumes keyword kw when it is the next word. */
static int accept_kw(struct parser *ps, const char *kw) {
  skip_space(ps);
  size_t n = word_len(ps->p);
  if (!is_kw(ps->p, n, kw)) return 0;
  ps->p += n;
  return 1;
}

static int accept_ch(struct parser *ps, char c) {
  skip_space(ps);
  if (*ps->p != c) return 0;
  ps->p++;
  return 1;
}

static struct cf_node *node_new(struct parser *ps, enum cf_kind kind) {
  if (++ps->nodes > CF_NODES_MAX) {
    fail(ps, ps->p, "the filter has more than %d parts", CF_NODES_MAX);
    return NULL;
  }
  struct cf_node *n = kk_xcalloc(1, sizeof *n);
  n->kind = kind;
  return n;
}

static const char *const keywords[] = {"and", "or", "not", "in", "contains", "exists"};

/* A field or attribute name into n. */
static int parse_name(struct parser *ps, struct cf_node *n) {
  skip_space(ps);
  const char *s = ps->p;
  size_t len = word_len(s);
  if (len == 0) return fail(ps, s, "a field or attribute name was expected");
  for (size_t i = 0; i < sizeof keywords / sizeof keywords[0]; i++)
    if (is_kw(s, len, keywords[i])) return fail(ps, s, "a name was expected, not \"%s\"", keywords[i]);
  if (!kk_utf8_valid(s, len)) return fail(ps, s, "a name that is not UTF-8");
  ps->p += len;
  n->field = CF_F_ATTR;
  if (len > 6 && strncmp(s, "attrs.", 6) == 0) {
    s += 6;
    len -= 6;
  } else {
    for (int f = 1; f < CF_F_COUNT; f++)
      if (len == strlen(field_names[f]) && memcmp(s, field_names[f], len) == 0) n->field = f;
    if (len == 5 && memcmp(s, "lists", 5) == 0) n->field = CF_F_LIST;
  }
  if (n->field != CF_F_ATTR) return 0;
  if (len >= CF_NAME_MAX || memchr(s, '.', len))
    return fail(ps, s, "an attribute name is up to %d letters, digits and _", CF_NAME_MAX - 1);
  memcpy(n->name, s, len);
  n->name[len] = '\0';
  return 0;
}

/* A 'string' or a number into v. */
static int parse_value(struct parser *ps, struct cf_value *v) {
  skip_space(ps);
  const char *s = ps->p;
  if (*s == '\'') {
    char *out = kk_xmalloc(strlen(s) + 1);
    size_t n = 0;
    const char *p = s + 1;
    for (;;) {
      if (*p == '\0') {
        free(out);
        return fail(ps, s, "a string without its closing quote");
      }
      if (*p == '\'') {
        if (p[1] != '\'') break;
        p++;
      }
      out[n++] = *p++;
    }
    out[n] = '\0';
    if (!kk_utf8_valid(out, n)) {
      free(out);
      return fail(ps, s, "a string that is not UTF-8");
    }
    ps->p = p + 1;
    v->str = out;
    return 0;
  }
  const char *p = s;
  if (*p == '-' || *p == '+') p++;
  const char *d = p;
  while (*p >= '0' && *p <= '9') p++;
  if (p == d) return fail(ps, s, "a 'string' or a number was expected");
  if (*p == '.') {
    p++;
    const char *f = p;
    while (*p >= '0' && *p <= '9') p++;
    if (p == f) return fail(ps, s, "a number with nothing after its point");
  }
  if (name_byte((unsigned char)*p) || p - s > 32) return fail(ps, s, "not a number");
  v->is_num = 1;
  v->str = kk_xmalloc((size_t)(p - s) + 1);
  memcpy(v->str, s, (size_t)(p - s));
  v->str[p - s] = '\0';
  v->num = strtod(v->str, NULL);
  ps->p = p;
  return 0;
}

static struct cf_node *parse_or(struct parser *ps);

static struct cf_node *parse_primary(struct parser *ps) {
  skip_space(ps);
  if (*ps->p == '(') {
    const char *open = ps->p++;
    if (++ps->depth > CF_DEPTH_MAX) {
      fail(ps, open, "more than %d levels of parentheses", CF_DEPTH_MAX);
      return NULL;
    }
    struct cf_node *n = parse_or(ps);
    ps->depth--;
    if (n && !accept_ch(ps, ')')) {
      fail(ps, ps->p, "a ')' was expected for the '(' at %zu", (size_t)(open - ps->text));
      contact_filter_free(n);
      return NULL;
    }
    return n;
  }
  struct cf_node *n = node_new(ps, CF_EXISTS);
  if (n == NULL) return NULL;
  if (accept_kw(ps, "exists")) {
    if (parse_name(ps, n) == 0) return n;
    contact_filter_free(n);
    return NULL;
  }
  if (parse_name(ps, n) != 0) goto bad;
  skip_space(ps);
  const char *at = ps->p;
  static const struct { const char *s; enum cf_op op; } ops[] = {
      {"<=", CF_LE}, {">=", CF_GE}, {"!=", CF_NE}, {"<>", CF_NE},
      {"=", CF_EQ},  {"<", CF_LT},  {">", CF_GT},
  };
  for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++) {
    size_t l = strlen(ops[i].s);
    if (strncmp(at, ops[i].s, l) != 0) continue;
    ps->p += l;
    n->kind = CF_CMP;
    n->op = ops[i].op;
    n->vals = kk_xcalloc(1, sizeof *n->vals);
    n->nvals = 1;
    if (parse_value(ps, &n->vals[0]) != 0) goto bad;
    if (n->field == CF_F_LIST && n->op != CF_EQ && n->op != CF_NE) {
      fail(ps, at, "list takes =, !=, in or exists");
      goto bad;
    }
    return n;
  }
  if (accept_kw(ps, "exists")) return n;
  if (accept_kw(ps, "contains")) {
    if (n->field == CF_F_LIST) {
      fail(ps, at, "list takes =, !=, in or exists");
      goto bad;
    }
    n->kind = CF_CONTAINS;
    n->vals = kk_xcalloc(1, sizeof *n->vals);
    n->nvals = 1;
    const char *v = (skip_space(ps), ps->p);
    if (parse_value(ps, &n->vals[0]) != 0) goto bad;
    if (n->vals[0].is_num) {
      fail(ps, v, "contains takes a 'string'");
      goto bad;
    }
    return n;
  }
  if (accept_kw(ps, "in")) {
    n->kind = CF_IN;
    if (!accept_ch(ps, '(')) {
      fail(ps, ps->p, "a '(' was expected after in");
      goto bad;
    }
    int cap = 0;
    do {
      if (n->nvals == CF_IN_MAX) {
        fail(ps, ps->p, "more than %d values in one in (…)", CF_IN_MAX);
        goto bad;
      }
      if (n->nvals == cap) {
        cap = cap ? cap * 2 : 4;
        n->vals = kk_xrealloc(n->vals, (size_t)cap * sizeof *n->vals);
      }
      memset(&n->vals[n->nvals], 0, sizeof n->vals[0]);
      n->nvals++;
      if (parse_value(ps, &n->vals[n->nvals - 1]) != 0) goto bad;
    } while (accept_ch(ps, ','));
    if (!accept_ch(ps, ')')) {
      fail(ps, ps->p, "a ',' or ')' was expected");
      goto bad;
    }
    return n;
  }
  fail(ps, at, "a comparison (= != < <= > >= contains in exists) was expected");
bad:
  contact_filter_free(n);
  return NULL;
}

static struct cf_node *parse_unary(struct parser *ps) {
  skip_space(ps);
  const char *at = ps->p;
  if (!accept_kw(ps, "not")) return parse_primary(ps);
  if (++ps->depth > CF_DEPTH_MAX) {
    fail(ps, at, "more than %d levels of not and parentheses", CF_DEPTH_MAX);
    return NULL;
  }
  struct cf_node *n = node_new(ps, CF_NOT);
  if (n) n->a = parse_unary(ps);
  ps->depth--;
  if (n && n->a == NULL) {
    contact_filter_free(n);
    return NULL;
  }
  return n;
}

static struct cf_node *parse_binary(struct parser *ps, enum cf_kind kind) {
  struct cf_node *l = kind == CF_OR ? parse_binary(ps, CF_AND) : parse_unary(ps);
  while (l && accept_kw(ps, kind == CF_OR ? "or" : "and")) {
    struct cf_node *n = node_new(ps, kind);
    struct cf_node *r = n ? (kind == CF_OR ? parse_binary(ps, CF_AND) : parse_unary(ps)) : NULL;
    if (r == NULL) {
      free(n);
      contact_filter_free(l);
      return NULL;
    }
    n->a = l;
    n->b = r;
    l = n;
  }
  return l;
}

static struct cf_node *parse_or(struct parser *ps) { return parse_binary(ps, CF_OR); }

int contact_filter_parse(const char *text, struct cf_node **out, struct cf_error *err) {
  *out = NULL;
  memset(err, 0, sizeof *err);
  struct parser ps = {.text = text, .p = text, .err = err};
  if (strlen(text) > CF_TEXT_MAX) return fail(&ps, text + CF_TEXT_MAX, "the filter is over %d bytes", CF_TEXT_MAX);
  skip_space(&ps);
  if (*ps.p == '\0') return fail(&ps, ps.p, "the filter is empty");
  struct cf_node *n = parse_or(&ps);
  if (n == NULL) return KK_EINVAL;
  skip_space(&ps);
  if (*ps.p != '\0') {
    contact_filter_free(n);
    return fail(&ps, ps.p, "and, or or the end was expected");
  }
  *out = n;
  return 0;
}

void contact_filter_free(struct cf_node *n) {
  if (n == NULL) return;
  contact_filter_free(n->a);
  contact_filter_free(n->b);
  for (int i = 0; i < n->nvals; i++) free(n->vals[i].str);
  free(n->vals);
  free(n);
}

/* ---- compiler ------------------------------------------------------------------ */

struct out {
  char *sql;
  size_t cap, len;
  enum cf_dialect d;
  int next;               /* the next placeholder's number (PostgreSQL) */
  struct cf_param *params;
  int cap_params, n;
  int full;
  const struct cf_node *skip;   /* a condition taken as true (NULL: none) */
};

static void put(struct out *o, const char *s) {
  size_t l = strlen(s);
  if (o->len + l >= o->cap) {
    o->full = 1;
    return;
  }
  memcpy(o->sql + o->len, s, l + 1);
  o->len += l;
}

/* Binds a parameter and writes its placeholder. */
static void bind(struct out *o, int is_num, double num, const char *str) {
  if (o->n == o->cap_params) {
    o->full = 1;
    return;
  }
  o->params[o->n++] = (struct cf_param){.is_num = is_num, .num = num, .str = str};
  if (o->d == CF_SQLITE) {
    put(o, "?");
  } else {
    /* typed: an untyped parameter would take its type from the column */
    char ph[24];
    snprintf(ph, sizeof ph, "$%d::%s", o->next++, is_num ? "float8" : "text");
    put(o, ph);
  }
}

static void bind_value(struct out *o, const struct cf_value *v, int as_num) {
  if (as_num) bind(o, 1, v->num, v->str);
  else bind(o, 0, 0, v->str);
}

/* The value expression of n's field: a column, or an attribute (numeric:
   through kk_num). */
static void value_expr(struct out *o, const struct cf_node *n, int num) {
  if (n->field == CF_F_CONSENT) {   /* stored 1, 0 or NULL; named yes and no */
    put(o, "(CASE c.consent WHEN 1 THEN 'yes' WHEN 0 THEN 'no' END)");
    return;
  }
  if (n->field == CF_F_STOP_LISTED) {
    put(o, "(CASE WHEN c.stop_listed <> 0 THEN 'yes' ELSE 'no' END)");
    return;
  }
  if (n->field != CF_F_ATTR) {
    put(o, "c.");
    put(o, field_names[n->field]);
    return;
  }
  if (num) put(o, "kk_num(");
  if (o->d == CF_SQLITE) {
    put(o, "json_extract(c.attrs, '$.' || ");
    bind(o, 0, 0, n->name);
    put(o, ")");
  } else {
    put(o, "(c.attrs->>");
    bind(o, 0, 0, n->name);
    put(o, ")");
  }
  if (num) put(o, ")");
}

static const char *const op_sql[] = {[CF_EQ] = " = ", [CF_NE] = " <> ", [CF_LT] = " < ",
                                     [CF_LE] = " <= ", [CF_GT] = " > ", [CF_GE] = " >= "};

static void list_member(struct out *o, const struct cf_node *n, int negate) {
  if (n->kind == CF_EXISTS && o->d == CF_SQLITE) {
    /* SQLite holds a contact's lists in its row too: no index by phone */
    put(o, "(c.lists IS NOT NULL AND c.lists <> '')");
    return;
  }
  put(o, negate ? "NOT EXISTS (" : "EXISTS (");
  put(o, "SELECT 1 FROM contact_lists l WHERE l.account_id = c.account_id AND l.phone = c.phone");
  if (n->kind == CF_EXISTS) {
    put(o, ")");
    return;
  }
  put(o, " AND l.list");
  if (n->kind == CF_IN) {
    put(o, " IN (");
    for (int i = 0; i < n->nvals; i++) {
      if (i) put(o, ", ");
      bind_value(o, &n->vals[i], 0);
    }
    put(o, "))");
    return;
  }
  put(o, " = ");
  bind_value(o, &n->vals[0], 0);
  put(o, ")");
}

const struct cf_node *contact_filter_list_node(const struct cf_node *n) {
  if (n == NULL) return NULL;
  if (n->kind == CF_CMP && n->field == CF_F_LIST && n->op == CF_EQ && n->nvals == 1 &&
      !n->vals[0].is_num)
    return n;
  if (n->kind != CF_AND) return NULL;
  const struct cf_node *l = contact_filter_list_node(n->a);
  return l ? l : contact_filter_list_node(n->b);
}

const char *contact_filter_list(const struct cf_node *n) {
  const struct cf_node *l = contact_filter_list_node(n);
  return l ? l->vals[0].str : NULL;
}

const char *contact_filter_read_list(const char *list, const struct cf_node *cond,
                                     const struct cf_node **skip) {
  const struct cf_node *top = contact_filter_list_node(cond);
  if (list == NULL && top) list = top->vals[0].str;
  *skip = top && list && strcmp(list, top->vals[0].str) == 0 ? top : NULL;
  return list;
}

/* What a condition costs a row, roughly: a column 1, a list (an index
   seek) 2, an attribute (the JSON read) 4; AND and OR the sum. The
   cheaper side of AND and OR goes first, so that a cheap test that fails
   (or holds, for OR) spares the dear one: the same result in any order. */
static int cost(const struct cf_node *n) {
  switch (n->kind) {
  case CF_AND:
  case CF_OR:
    return cost(n->a) + cost(n->b);
  case CF_NOT:
    return cost(n->a);
  default:
    return n->field == CF_F_ATTR ? 4 : n->field == CF_F_LIST ? 2 : 1;
  }
}

static void compile(struct out *o, const struct cf_node *n) {
  int num = n->field == CF_F_ATTR && n->nvals > 0 && n->vals[0].is_num;
  if (n == o->skip) {
    put(o, "TRUE");
    return;
  }
  switch (n->kind) {
  case CF_AND:
  case CF_OR: {
    int swap = cost(n->b) < cost(n->a);
    put(o, "(");
    compile(o, swap ? n->b : n->a);
    put(o, n->kind == CF_AND ? " AND " : " OR ");
    compile(o, swap ? n->a : n->b);
    put(o, ")");
    return;
  }
  case CF_NOT:
    /* A missing value makes a comparison unknown: "not" of it holds. */
    put(o, "NOT COALESCE(");
    compile(o, n->a);
    put(o, ", FALSE)");
    return;
  case CF_EXISTS:
    if (n->field == CF_F_LIST) return list_member(o, n, 0);
    put(o, "(");
    value_expr(o, n, 0);
    put(o, " IS NOT NULL AND ");
    value_expr(o, n, 0);
    put(o, " <> '')");
    return;
  case CF_CONTAINS:
    put(o, o->d == CF_SQLITE ? "(instr(" : "(strpos(");
    value_expr(o, n, 0);
    put(o, ", ");
    bind_value(o, &n->vals[0], 0);
    put(o, ") > 0)");
    return;
  case CF_IN:
    if (n->field == CF_F_LIST) return list_member(o, n, 0);
    put(o, "(");
    value_expr(o, n, num);
    put(o, " IN (");
    for (int i = 0; i < n->nvals; i++) {
      if (i) put(o, ", ");
      /* One kind per list: the first value's (a number list compares as numbers). */
      bind_value(o, &n->vals[i], num && n->vals[i].is_num);
    }
    put(o, "))");
    return;
  case CF_CMP:
    if (n->field == CF_F_LIST && (n->op == CF_EQ || n->op == CF_NE))
      return list_member(o, n, n->op == CF_NE);
    put(o, "(");
    if (n->op == CF_NE) {
      /* "city != 'X'" holds for a contact without a city. */
      value_expr(o, n, num);
      put(o, " IS NULL OR ");
    }
    value_expr(o, n, num);
    put(o, op_sql[n->op]);
    bind_value(o, &n->vals[0], num);
    put(o, ")");
    return;
  }
}

int contact_filter_sql(const struct cf_node *n, enum cf_dialect d, int first_param, char *sql,
                       size_t cap, struct cf_param *params, int cap_params, int *nparams) {
  return contact_filter_sql_but(n, NULL, d, first_param, sql, cap, params, cap_params, nparams);
}

int contact_filter_sql_but(const struct cf_node *n, const struct cf_node *skip,
                           enum cf_dialect d, int first_param, char *sql, size_t cap,
                           struct cf_param *params, int cap_params, int *nparams) {
  struct out o = {.sql = sql, .cap = cap, .d = d, .next = first_param, .params = params,
                  .cap_params = cap_params, .skip = skip};
  if (cap == 0) return KK_ENOSPC;
  sql[0] = '\0';
  compile(&o, n);
  *nparams = o.n;
  return o.full ? KK_ENOSPC : 0;
}
