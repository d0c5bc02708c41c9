/* test_tpl.c - template rendering (defaults, missing and hostile values)
   and the SMS lint. */
#include <string.h>

#include "core/kk_err.h"
#include "kk_test.h"
#include "template/tpl.h"

/* name=value pairs, NULL-terminated. */
static const char *lookup(void *arg, const char *name) {
  const char *const *kv = arg;
  for (; kv[0]; kv += 2)
    if (strcmp(kv[0], name) == 0) return kv[1];
  return NULL;
}

static int render(const char *tpl, const char *const *kv, char *out, size_t cap,
                  struct tpl_error *e) {
  return tpl_render(tpl, strlen(tpl), lookup, (void *)kv, out, cap, NULL, e);
}

KK_TEST(tpl_renders_values_and_defaults) {
  static const char *const kv[] = {"name", "Анна", "attrs.city", "Казань", "code", "{{name}}",
                                   "empty", "", NULL};
  static const struct {
    const char *tpl, *want;
  } ok[] = {
      {"Здравствуйте, {{name}}!", "Здравствуйте, Анна!"},
      {"{{ name }}", "Анна"},
      {"{{missing|клиент}}, {{name|клиент}}", "клиент, Анна"},
      {"{{missing | уважаемый клиент }}.", "уважаемый клиент."},
      {"{{missing|}}x", "x"},
      {"{{attrs.city}}", "Казань"},
      {"код {{code}}", "код {{name}}"},            /* a value is never expanded again */
      {"{{empty|default}}", ""},                    /* an empty value is a value */
      {"no placeholders }} { here", "no placeholders }} { here"},
      {"", ""},
      {"{{name}}{{name}}", "АннаАнна"},
  };
  char out[256];
  struct tpl_error e;
  for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
    int rc = render(ok[i].tpl, kv, out, sizeof out, &e);
    if (rc != 0) kk_test_fail(__FILE__, __LINE__, "\"%s\": %d %s", ok[i].tpl, rc, e.msg);
    ASSERT_STR_EQ(out, ok[i].want);
  }
  size_t n;
  ASSERT_EQ(tpl_render("{{name}}", 8, lookup, (void *)kv, out, sizeof out, &n, &e), 0);
  ASSERT_EQ(n, strlen("Анна"));
}

KK_TEST(tpl_refuses_missing_broken_and_long) {
  static const char *const kv[] = {"name", "Анна", "long", "0123456789", NULL};
  char out[16];
  struct tpl_error e;
  ASSERT_EQ(render("Hi {{ phone }}", kv, out, sizeof out, &e), KK_ENOENT);
  ASSERT_STR_EQ(e.name, "phone");
  ASSERT_EQ(e.pos, 3);
  static const struct {
    const char *tpl;
    size_t pos;
  } bad[] = {{"{{}}", 0}, {"x {{name", 2}, {"{{name|abc", 0}, {"{{na me}}", 0},
             {"{{name|{{x}}}}", 0}, {"{{-}}", 0}};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    ASSERT_EQ(render(bad[i].tpl, kv, out, sizeof out, &e), KK_EINVAL);
    ASSERT_EQ(e.pos, bad[i].pos);
    ASSERT(e.msg[0] != '\0');
  }
  ASSERT_EQ(render("{{long}}{{long}}", kv, out, sizeof out, &e), KK_ETOOBIG);
  ASSERT(strstr(e.msg, "15 bytes") != NULL);
  ASSERT_EQ(render("{{long}}", kv, out, sizeof out, &e), 0);
}

static int codes(const char *text, const char *tpl, int adv, const char *sender, char *names,
                 size_t cap) {
  struct tpl_lint l[8];
  int n = tpl_lint_sms(text, strlen(text), tpl, tpl ? strlen(tpl) : 0, adv, sender, l, 8);
  names[0] = '\0';
  for (int i = 0; i < n; i++) {
    if (i) strncat(names, ",", cap - strlen(names) - 1);
    strncat(names, tpl_lint_name(l[i].code), cap - strlen(names) - 1);
    ASSERT(l[i].text[0] != '\0');
  }
  return n;
}

KK_TEST(tpl_lint_warns_what_a_marketer_misses) {
  char names[128], text[400];
  /* a typographic quote in a Latin text */
  codes("Your order \xe2\x80\x9c" "42\xe2\x80\x9d is ready", NULL, 0, NULL, names, sizeof names);
  ASSERT_STR_EQ(names, "ucs2_forced");
  /* a Cyrillic text is UCS-2 by nature */
  codes("Ваш заказ готов", NULL, 0, NULL, names, sizeof names);
  ASSERT_STR_EQ(names, "");
  /* 161 GSM-7 characters: one over a single SMS */
  memset(text, 'a', 161);
  text[161] = '\0';
  codes(text, NULL, 0, NULL, names, sizeof names);
  ASSERT_STR_EQ(names, "segment_edge");
  text[160] = '\0';
  codes(text, NULL, 0, NULL, names, sizeof names);
  ASSERT_STR_EQ(names, "");
  /* 71 Cyrillic characters: one over */
  text[0] = '\0';
  for (int i = 0; i < 71; i++) strcat(text, "я");
  codes(text, NULL, 0, NULL, names, sizeof names);
  ASSERT_STR_EQ(names, "segment_edge");
  codes("Sale at http://shop.example/x", NULL, 0, NULL, names, sizeof names);
  ASSERT_STR_EQ(names, "link_not_https");
  codes("Sale at https://shop.example/x", NULL, 0, NULL, names, sizeof names);
  ASSERT_STR_EQ(names, "");
  codes("Скидки 20% до воскресенья", NULL, 1, "SHOP", names, sizeof names);
  ASSERT_STR_EQ(names, "ad_no_sender");
  codes("Shop: скидки 20% до воскресенья", NULL, 1, "SHOP", names, sizeof names);
  ASSERT_STR_EQ(names, "");
  codes("Скидки 20%", NULL, 0, "SHOP", names, sizeof names);   /* not advertising */
  ASSERT_STR_EQ(names, "");
  codes("Hi Anna", "Hi {{name}} {{city|}}", 0, NULL, names, sizeof names);
  ASSERT_STR_EQ(names, "no_default");
  struct tpl_lint l[2];
  ASSERT_EQ(tpl_lint_sms("Hi", 2, "Hi {{name}} {{x}}", 17, 0, NULL, l, 2), 1);
  ASSERT(strstr(l[0].text, "{{name}}, {{x}}") != NULL);
  /* at most max warnings */
  ASSERT_EQ(tpl_lint_sms("http://x", 8, "{{a}}", 5, 1, "SHOP", l, 1), 1);
}
