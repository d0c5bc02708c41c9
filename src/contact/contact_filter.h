/*
 * contact_filter.h - the segment filter language: parsed into a tree by a
 * hand-written recursive-descent parser, compiled into a parameterised SQL
 * condition. Pure: no I/O, no store.
 *
 *   city = 'Казань' and orders >= 2 and list = 'vip'
 *   not (email exists) or region in ('Москва', 'Город Москва')
 *   name contains 'Ив' and attrs.source != 'import'
 *
 * Comparisons = != < <= > >=, `contains`, `in (…)`, `exists` (before or
 * after the name), `and`, `or`, `not`, parentheses; keywords in any case.
 * Values are 'strings' ('' inside for a quote) or numbers. A name is a
 * contact field (phone, name, email, timezone, operator, region, vk_id,
 * telegram_chat_id, viber_id, consent, stop_listed, list), else an attribute
 * (`attrs.city` or `city`); an attribute compared with a number compares as
 * a number (a value that is not one never matches). consent and stop_listed
 * compare as 'yes' or 'no'.
 *
 * The compiled condition never holds text of the filter: every value and
 * attribute name is a bound parameter.
 */
#ifndef CONTACT_FILTER_H
#define CONTACT_FILTER_H

#include <stddef.h>

#define CF_TEXT_MAX 4096     /* bytes of filter text */
#define CF_NODES_MAX 256     /* comparisons and operators */
#define CF_DEPTH_MAX 32      /* nesting of parentheses and not */
#define CF_IN_MAX 1000       /* values of one in (…) */
#define CF_NAME_MAX 64       /* bytes of a name */

enum cf_kind { CF_AND, CF_OR, CF_NOT, CF_CMP, CF_IN, CF_CONTAINS, CF_EXISTS };
enum cf_op { CF_EQ, CF_NE, CF_LT, CF_LE, CF_GT, CF_GE };

struct cf_value {
  int is_num;
  double num;
  char *str;               /* owned; the literal's text (numbers too) */
};

/* A contact field a filter may name, or CF_F_ATTR for an attribute. */
enum cf_field {
  CF_F_ATTR, CF_F_PHONE, CF_F_NAME, CF_F_EMAIL, CF_F_TIMEZONE, CF_F_OPERATOR, CF_F_REGION,
  CF_F_VK_ID, CF_F_TELEGRAM_CHAT_ID, CF_F_VIBER_ID, CF_F_CONSENT, CF_F_STOP_LISTED, CF_F_LIST,
  CF_F_COUNT
};

struct cf_node {
  enum cf_kind kind;
  enum cf_op op;           /* CF_CMP */
  enum cf_field field;     /* CF_CMP, CF_IN, CF_CONTAINS, CF_EXISTS */
  char name[CF_NAME_MAX];  /* the attribute's name (CF_F_ATTR) */
  struct cf_value *vals;   /* owned; 1 for CMP and CONTAINS, n for IN */
  int nvals;
  struct cf_node *a, *b;   /* owned; AND, OR: both; NOT: a */
};

/* Where a filter stopped parsing and why. */
struct cf_error {
  size_t pos;              /* byte offset into the text */
  char msg[96];
};

/* Parses text (NUL-terminated). 0 and *out (free with contact_filter_free),
   or KK_EINVAL with *err filled. */
int contact_filter_parse(const char *text, struct cf_node **out, struct cf_error *err);
void contact_filter_free(struct cf_node *n);

/* The list every contact the filter matches is in, when it says so at its
   top (list = 'x', alone or as a side of its top-level and), else NULL;
   borrowed from n. A count can then read that list's members only. */
const char *contact_filter_list(const struct cf_node *n);
/* The condition that names it (list = 'x'), or NULL; borrowed from n. */
const struct cf_node *contact_filter_list_node(const struct cf_node *n);
/* The list a read of the contacts meeting cond (NULL: all) goes through:
   list when not NULL (a listing of one list), else the one cond names at
   its top, else NULL (the whole base). *skip: the condition of cond that
   membership of that list meets already (for contact_filter_sql_but), or
   NULL. */
const char *contact_filter_read_list(const char *list, const struct cf_node *cond,
                                     const struct cf_node **skip);
/* The SQL flavour of a backend. */
enum cf_dialect { CF_SQLITE, CF_POSTGRES };

/* One bound parameter of a compiled condition, in order; borrowed from the
   tree (valid while it lives). */
struct cf_param {
  int is_num;
  double num;
  const char *str;
};

/*
 * Compiles n into a condition over the contacts row `c` (columns named like
 * the fields, attributes in the JSON column c.attrs, lists in
 * contact_lists(account_id, phone, list), on SQLite also c.lists (whether
 * the contact is in any); kk_num(text) -> a number or NULL,
 * defined by the backend). Writes NUL-terminated SQL into sql (cap bytes)
 * with placeholders `?` (SQLite) or `$first_param::text|float8, …`
 * (PostgreSQL), and the
 * parameters into params (cap_params). 0, or KK_ENOSPC.
 */
int contact_filter_sql(const struct cf_node *n, enum cf_dialect d, int first_param, char *sql,
                       size_t cap, struct cf_param *params, int cap_params, int *nparams);
/* As contact_filter_sql, with the condition skip (a node of n, NULL: none)
   compiled as TRUE: a query that reads the members of the list
   contact_filter_list_node() names does not test their membership again. */
int contact_filter_sql_but(const struct cf_node *n, const struct cf_node *skip,
                           enum cf_dialect d, int first_param, char *sql, size_t cap,
                           struct cf_param *params, int cap_params, int *nparams);

#endif
