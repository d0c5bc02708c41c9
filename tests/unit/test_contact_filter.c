/* test_contact_filter.c - the segment filter language: parse, errors, SQL. */
#include <string.h>

#include "contact/contact_filter.h"
#include "core/kk_err.h"
#include "kk_test.h"

/* Compiles text for d; the SQL into sql, the parameters' texts joined by
   '|' into params. */
static void sql_of(const char *text, enum cf_dialect d, char *sql, size_t cap, char *params,
                   size_t pcap) {
  struct cf_node *n;
  struct cf_error e;
  int rc = contact_filter_parse(text, &n, &e);
  if (rc != 0) kk_test_fail(__FILE__, __LINE__, "\"%s\" at %zu: %s", text, e.pos, e.msg);
  struct cf_param ps[64];
  int np;
  ASSERT_EQ(contact_filter_sql(n, d, 1, sql, cap, ps, 64, &np), 0);
  params[0] = '\0';
  for (int i = 0; i < np; i++) {
    if (i) strncat(params, "|", pcap - strlen(params) - 1);
    if (ps[i].is_num) strncat(params, "#", pcap - strlen(params) - 1);
    strncat(params, ps[i].str, pcap - strlen(params) - 1);
  }
  contact_filter_free(n);
}

KK_TEST(contact_filter_compiles_to_bound_sql) {
  static const struct {
    const char *text, *sqlite, *pg, *params;
  } cases[] = {
      {"city = 'Казань'", "(json_extract(c.attrs, '$.' || ?) = ?)", "((c.attrs->>$1::text) = $2::text)",
       "city|Казань"},
      {"orders >= 2", "(kk_num(json_extract(c.attrs, '$.' || ?)) >= ?)",
       "(kk_num((c.attrs->>$1::text)) >= $2::float8)", "orders|#2"},
      {"attrs.name = 'x'", "(json_extract(c.attrs, '$.' || ?) = ?)", "((c.attrs->>$1::text) = $2::text)",
       "name|x"},
      {"name != 'O''Brien'", "(c.name IS NULL OR c.name <> ?)", "(c.name IS NULL OR c.name <> $1::text)",
       "O'Brien"},
      {"list = 'vip'",
       "EXISTS (SELECT 1 FROM contact_lists l WHERE l.account_id = c.account_id AND l.phone = "
       "c.phone AND l.list = ?)",
       "EXISTS (SELECT 1 FROM contact_lists l WHERE l.account_id = c.account_id AND l.phone = "
       "c.phone AND l.list = $1::text)",
       "vip"},
      {"list != 'vip'",
       "NOT EXISTS (SELECT 1 FROM contact_lists l WHERE l.account_id = c.account_id AND l.phone = "
       "c.phone AND l.list = ?)",
       NULL, "vip"},
      {"region in ('Москва', 'Город Москва')", "(c.region IN (?, ?))", "(c.region IN ($1::text, $2::text))",
       "Москва|Город Москва"},
      {"email exists", "(c.email IS NOT NULL AND c.email <> '')", NULL, ""},
      {"list exists", "(c.lists IS NOT NULL AND c.lists <> '')",
       "EXISTS (SELECT 1 FROM contact_lists l WHERE l.account_id = c.account_id AND l.phone = "
       "c.phone)",
       ""},
      {"EXISTS email", "(c.email IS NOT NULL AND c.email <> '')", NULL, ""},
      {"name contains 'Ив'", "(instr(c.name, ?) > 0)", "(strpos(c.name, $1::text) > 0)", "Ив"},
      {"a = 1 or b = 2 and not c = 3",
       "((kk_num(json_extract(c.attrs, '$.' || ?)) = ?) OR ((kk_num(json_extract(c.attrs, '$.' || ?))"
       " = ?) AND NOT COALESCE((kk_num(json_extract(c.attrs, '$.' || ?)) = ?), FALSE)))",
       NULL, "a|#1|b|#2|c|#3"},
      /* the cheaper side first: the same result, less work per row */
      {"(a = 1 or b = 2) and c = 3", NULL, NULL, "c|#3|a|#1|b|#2"},
      {"city = 'K' and list = 'vip'",
       "(EXISTS (SELECT 1 FROM contact_lists l WHERE l.account_id = c.account_id AND l.phone = "
       "c.phone AND l.list = ?) AND (json_extract(c.attrs, '$.' || ?) = ?))",
       NULL, "vip|city|K"},
      {"  phone='79161234567'  ", "(c.phone = ?)", "(c.phone = $1::text)", "79161234567"},
      {"score > -1.5", "(kk_num(json_extract(c.attrs, '$.' || ?)) > ?)", NULL, "score|#-1.5"},
      {"consent = 'yes'", "((CASE c.consent WHEN 1 THEN 'yes' WHEN 0 THEN 'no' END) = ?)",
       "((CASE c.consent WHEN 1 THEN 'yes' WHEN 0 THEN 'no' END) = $1::text)", "yes"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    char sql[1024], params[256];
    sql_of(cases[i].text, CF_SQLITE, sql, sizeof sql, params, sizeof params);
    if (cases[i].sqlite) ASSERT_STR_EQ(sql, cases[i].sqlite);
    ASSERT_STR_EQ(params, cases[i].params);
    sql_of(cases[i].text, CF_POSTGRES, sql, sizeof sql, params, sizeof params);
    if (cases[i].pg) ASSERT_STR_EQ(sql, cases[i].pg);
    ASSERT_STR_EQ(params, cases[i].params);
  }
  /* and binds tighter than or */
  char sql[1024], params[256];
  sql_of("a = 1 or b = 2 and c = 3", CF_SQLITE, sql, sizeof sql, params, sizeof params);
  ASSERT(strstr(sql, " OR (") != NULL);
}

KK_TEST(contact_filter_errors_say_where) {
  static const struct {
    const char *text;
    size_t pos;
    const char *msg;
  } bad[] = {
      {"", 0, "empty"},
      {"city =", 6, "'string' or a number"},
      {"city = 'Казань", 7, "closing quote"},
      {"city 'x'", 5, "comparison"},
      {"(a = 1", 6, "')'"},
      {"a = 1 b = 2", 6, "the end"},
      {"a = 1 and", 9, "name"},
      {"and = 1", 0, "not \"and\""},
      {"a in 1", 5, "'('"},
      {"a in (1, 2", 10, "')'"},
      {"a = 1x", 4, "not a number"},
      {"list < 'x'", 5, "list takes"},
      {"name contains 5", 14, "'string'"},
      {"a.b.c = 1", 0, "attribute name"},
      {"a = 1.", 4, "point"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    struct cf_node *n = (struct cf_node *)1;
    struct cf_error e;
    ASSERT_EQ(contact_filter_parse(bad[i].text, &n, &e), KK_EINVAL);
    ASSERT(n == NULL);
    if (e.pos != bad[i].pos || strstr(e.msg, bad[i].msg) == NULL)
      kk_test_fail(__FILE__, __LINE__, "\"%s\": at %zu \"%s\", want %zu \"%s\"", bad[i].text,
                   e.pos, e.msg, bad[i].pos, bad[i].msg);
  }
}

KK_TEST(contact_filter_bounds) {
  static char text[CF_TEXT_MAX + 64];
  struct cf_node *n;
  struct cf_error e;
  /* nesting */
  size_t k = 0;
  for (int i = 0; i < CF_DEPTH_MAX + 1; i++) text[k++] = '(';
  strcpy(text + k, "a = 1");
  k += 5;
  for (int i = 0; i < CF_DEPTH_MAX + 1; i++) text[k++] = ')';
  text[k] = '\0';
  ASSERT_EQ(contact_filter_parse(text, &n, &e), KK_EINVAL);
  ASSERT(strstr(e.msg, "levels") != NULL);
  /* parts */
  k = 0;
  for (int i = 0; i < CF_NODES_MAX; i++) k += (size_t)sprintf(text + k, "%sa = 1", i ? " or " : "");
  ASSERT_EQ(contact_filter_parse(text, &n, &e), KK_EINVAL);
  ASSERT(strstr(e.msg, "parts") != NULL);
  /* length */
  memset(text, ' ', CF_TEXT_MAX + 1);
  strcpy(text + CF_TEXT_MAX + 1, "a = 1");
  ASSERT_EQ(contact_filter_parse(text, &n, &e), KK_EINVAL);
  /* a condition that does not fit the caller's buffers */
  ASSERT_EQ(contact_filter_parse("a = 1 and b = 2", &n, &e), 0);
  char sql[16];
  struct cf_param ps[8];
  int np;
  ASSERT_EQ(contact_filter_sql(n, CF_SQLITE, 1, sql, sizeof sql, ps, 8, &np), KK_ENOSPC);
  char big[512];
  ASSERT_EQ(contact_filter_sql(n, CF_SQLITE, 1, big, sizeof big, ps, 3, &np), KK_ENOSPC);
  contact_filter_free(n);
}

/* The list a count may start from: only one every match must be in. */
KK_TEST(contact_filter_list_at_the_top) {
  static const struct {
    const char *text, *list;
  } cases[] = {
      {"list = 'vip'", "vip"},
      {"city = 'Kazan' and orders >= 10 and list = 'vip'", "vip"},
      {"list = 'a' and list = 'b'", "a"},
      {"list = 'vip' or city = 'Kazan'", NULL},
      {"not list = 'vip'", NULL},
      {"list != 'vip'", NULL},
      {"list in ('vip', 'base')", NULL},
      {"list exists", NULL},
      {"list = 5", NULL},
      {"city = 'vip'", NULL},
      {"(list = 'vip' or a = 1) and b = 2", NULL},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    struct cf_node *n;
    struct cf_error e;
    ASSERT_EQ(contact_filter_parse(cases[i].text, &n, &e), 0);
    const char *l = contact_filter_list(n);
    if (cases[i].list == NULL) ASSERT(l == NULL);
    else ASSERT_STR_EQ(l, cases[i].list);
    contact_filter_free(n);
  }
  ASSERT(contact_filter_list(NULL) == NULL);
}

/* A read through the list a filter names does not test that membership
   again; another list's stays. */
KK_TEST(contact_filter_read_through_its_list) {
  struct cf_node *n;
  struct cf_error e;
  ASSERT_EQ(contact_filter_parse("city = 'K' and list = 'vip' and list != 'stop'", &n, &e), 0);
  const struct cf_node *skip;
  ASSERT_STR_EQ(contact_filter_read_list(NULL, n, &skip), "vip");
  ASSERT(skip == contact_filter_list_node(n));
  char sql[1024];
  struct cf_param ps[8];
  int np;
  ASSERT_EQ(contact_filter_sql_but(n, skip, CF_POSTGRES, 3, sql, sizeof sql, ps, 8, &np), 0);
  ASSERT_STR_EQ(sql, "(NOT EXISTS (SELECT 1 FROM contact_lists l WHERE l.account_id = "
                     "c.account_id AND l.phone = c.phone AND l.list = $3::text) AND (TRUE AND "
                     "((c.attrs->>$4::text) = $5::text)))");
  ASSERT_EQ(np, 3);
  ASSERT_STR_EQ(ps[0].str, "stop");
  /* a listing of another list keeps the test */
  ASSERT_STR_EQ(contact_filter_read_list("news", n, &skip), "news");
  ASSERT(skip == NULL);
  ASSERT_STR_EQ(contact_filter_read_list("vip", n, &skip), "vip");
  ASSERT(skip != NULL);
  contact_filter_free(n);
  ASSERT(contact_filter_read_list(NULL, NULL, &skip) == NULL && skip == NULL);
}
