/*
 * test_tmpl_doc.c - template bodies: what tmpl_parse refuses (with the
 * field and the offset of a broken placeholder) and rendering per channel:
 * variants, the default text, defaults, missing and hostile values, and
 * the bounds of a rendered text.
 */
#include <stdlib.h>
#include <string.h>

#include "core/kk_err.h"
#include "kk_test.h"
#include "template/tmpl_doc.h"

static json_t *parse_ok(const char *body) {
  json_t *doc = NULL;
  struct tmpl_err err;
  int rc = tmpl_parse(body, strlen(body), &doc, &err);
  if (rc != 0) fprintf(stderr, "%s: %s\n", body, err.msg);
  ASSERT_EQ(rc, 0);
  return doc;
}

KK_TEST(tmpl_parse_refuses_with_field_and_position) {
  static const struct {
    const char *body, *field;
    size_t pos;
  } bad[] = {
      {"[]", "", 0},
      {"{\"text\":1}", "text", 0},
      {"{\"text\":\"Hi {{name\"}", "text", 3},
      {"{\"text\":\"ok\",\"channels\":{\"sms\":{\"text\":\"a {{ }} b\"}}}", "channels.sms.text", 2},
      {"{\"text\":\"ok\",\"channels\":{\"fax\":{\"text\":\"x\"}}}", "channels", 0},
      {"{\"text\":\"ok\",\"channels\":{\"sms\":{\"txt\":\"x\"}}}", "channels.sms", 0},
      {"{\"text\":\"ok\",\"channels\":{\"viber\":{\"button\":{\"caption\":\"c\"}}}}",
       "channels.viber.button", 0},
      {"{\"text\":\"ok\",\"channels\":{\"viber\":{\"image\":\"https://x/{{id\"}}}",
       "channels.viber.image", 10},
      {"{\"text\":\"ok\",\"channels\":{\"email\":{\"subject\":\"{{a|b\"}}}",
       "channels.email.subject", 0},
      {"{\"text\":\"ok\",\"channels\":{\"whatsapp\":{\"template\":{\"language\":\"ru\"}}}}",
       "channels.whatsapp.template.name", 0},
      {"{\"text\":\"ok\",\"channels\":{\"whatsapp\":{\"template\":{\"name\":\"n\","
       "\"params\":[\"ok\",\"{{x\"]}}}}",
       "channels.whatsapp.template.params[1]", 0},
      {"{\"channels\":{}}", "text", 0},
      {"{\"text\":\"a\",\"extra\":1}", "template", 0},
      {"{\"text\":\"a\",\"text\":\"b\"}", "", 0},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    json_t *doc = (json_t *)1;
    struct tmpl_err err;
    ASSERT_EQ(tmpl_parse(bad[i].body, strlen(bad[i].body), &doc, &err), KK_EINVAL);
    ASSERT(doc == NULL);
    ASSERT_STR_EQ(err.field, bad[i].field);
    ASSERT_EQ(err.pos, bad[i].pos);
    ASSERT(err.msg[0] != '\0');
  }
  char *big = malloc(TMPL_BODY_MAX + 32);
  memset(big, ' ', TMPL_BODY_MAX + 31);
  memcpy(big, "{\"text\":\"a\"}", 12);
  big[TMPL_BODY_MAX + 31] = '\0';
  json_t *doc;
  struct tmpl_err err;
  ASSERT_EQ(tmpl_parse(big, strlen(big), &doc, &err), KK_ETOOBIG);
  free(big);
}

#define FULL                                                                                 \
  "{\"text\":\"Привет, {{name|клиент}}! Код {{code}}\","                                    \
  "\"channels\":{\"sms\":{\"text\":\"{{name|Клиент}}, код {{code}}\"},"                     \
  "\"viber\":{\"text\":\"Viber: {{code}}\",\"image\":\"https://img/{{code}}.png\","         \
  "\"button\":{\"caption\":\"Открыть\",\"url\":\"https://s/{{code}}\"}},"                   \
  "\"email\":{\"subject\":\"Ваш код {{code}}\",\"body\":\"<p>{{code}}</p>\"},"              \
  "\"whatsapp\":{\"template\":{\"name\":\"otp\",\"language\":\"ru\","                       \
  "\"params\":[\"{{code}}\",\"{{name|друг}}\"]}}}}"

static json_t *render(json_t *doc, enum tmpl_chan ch, json_t *vars, int want_rc,
                      struct tmpl_err *err) {
  struct tmpl_vars v = {.vars = vars};
  json_t *out = NULL;
  ASSERT_EQ(tmpl_render(doc, ch, &v, &out, err), want_rc);
  return out;
}

static const char *str(json_t *o, const char *k) {
  return json_string_value(json_object_get(o, k));
}

KK_TEST(tmpl_render_per_channel_variants) {
  json_t *doc = parse_ok(FULL);
  json_t *vars = json_pack("{s:s, s:i}", "name", "Анна", "code", 4711);
  struct tmpl_err err;
  json_t *r = render(doc, TMPL_SMS, vars, 0, &err);
  ASSERT_STR_EQ(str(r, "text"), "Анна, код 4711");
  json_decref(r);
  r = render(doc, TMPL_VIBER, vars, 0, &err);
  ASSERT_STR_EQ(str(r, "text"), "Viber: 4711");
  ASSERT_STR_EQ(str(r, "image"), "https://img/4711.png");
  ASSERT_STR_EQ(str(json_object_get(r, "button"), "url"), "https://s/4711");
  ASSERT_STR_EQ(str(json_object_get(r, "button"), "caption"), "Открыть");
  json_decref(r);
  r = render(doc, TMPL_VK, vars, 0, &err);   /* no variant: the default text */
  ASSERT_STR_EQ(str(r, "text"), "Привет, Анна! Код 4711");
  json_decref(r);
  r = render(doc, TMPL_EMAIL, vars, 0, &err);
  ASSERT_STR_EQ(str(r, "subject"), "Ваш код 4711");
  ASSERT_STR_EQ(str(r, "text"), "<p>4711</p>");
  json_decref(r);
  r = render(doc, TMPL_WHATSAPP, vars, 0, &err);
  json_t *wt = json_object_get(r, "whatsapp_template");
  ASSERT_STR_EQ(str(wt, "name"), "otp");
  ASSERT_STR_EQ(json_string_value(json_array_get(json_object_get(wt, "params"), 0)), "4711");
  ASSERT_STR_EQ(json_string_value(json_array_get(json_object_get(wt, "params"), 1)), "Анна");
  json_decref(r);
  json_decref(vars);
  json_decref(doc);
}

KK_TEST(tmpl_render_defaults_missing_and_hostile_values) {
  json_t *doc = parse_ok(FULL);
  struct tmpl_err err;
  /* defaults */
  json_t *vars = json_pack("{s:s}", "code", "1");
  json_t *r = render(doc, TMPL_SMS, vars, 0, &err);
  ASSERT_STR_EQ(str(r, "text"), "Клиент, код 1");
  json_decref(r);
  json_decref(vars);
  /* missing: named, with the field */
  vars = json_pack("{s:s}", "name", "Анна");
  ASSERT(render(doc, TMPL_SMS, vars, KK_ENOENT, &err) == NULL);
  ASSERT_STR_EQ(err.name, "code");
  ASSERT_STR_EQ(err.field, "channels.sms.text");
  ASSERT(render(doc, TMPL_EMAIL, vars, KK_ENOENT, &err) == NULL);
  ASSERT_STR_EQ(err.name, "code");
  json_decref(vars);
  /* hostile values stay as written: never expanded again */
  vars = json_pack("{s:s, s:s}", "name", "{{code}}", "code", "{{name}} \"}\\<b>");
  r = render(doc, TMPL_SMS, vars, 0, &err);
  ASSERT_STR_EQ(str(r, "text"), "{{code}}, код {{name}} \"}\\<b>");
  json_decref(r);
  json_decref(vars);
  /* a value that is not text or a number is no value */
  vars = json_pack("{s:[], s:n}", "name", "code");
  ASSERT(render(doc, TMPL_SMS, vars, KK_ENOENT, &err) == NULL);
  json_decref(vars);
  /* over the bound */
  char *huge = malloc(TMPL_TEXT_MAX);
  memset(huge, 'a', TMPL_TEXT_MAX - 1);
  huge[TMPL_TEXT_MAX - 1] = '\0';
  vars = json_pack("{s:s, s:s}", "name", huge, "code", "12");
  ASSERT(render(doc, TMPL_SMS, vars, KK_ETOOBIG, &err) == NULL);
  ASSERT_STR_EQ(err.field, "channels.sms.text");
  free(huge);
  json_decref(vars);
  json_decref(doc);
}

static const char *contact_field(void *arg, const char *name) {
  (void)arg;
  return strcmp(name, "attrs.city") == 0 ? "Казань" : NULL;
}

KK_TEST(tmpl_render_contact_hook_and_channel_names) {
  json_t *doc = parse_ok("{\"text\":\"{{attrs.city}}: {{x|-}}\"}");
  struct tmpl_vars v = {.contact = contact_field};
  json_t *out;
  struct tmpl_err err;
  ASSERT_EQ(tmpl_render(doc, TMPL_TELEGRAM, &v, &out, &err), 0);
  ASSERT_STR_EQ(str(out, "text"), "Казань: -");
  json_decref(out);
  json_t *vars = json_pack("{s:s}", "attrs.city", "Омск");
  v.vars = vars;   /* vars come first */
  ASSERT_EQ(tmpl_render(doc, TMPL_TELEGRAM, &v, &out, &err), 0);
  ASSERT_STR_EQ(str(out, "text"), "Омск: -");
  json_decref(out);
  json_decref(vars);
  /* a WhatsApp step of a template without text and without a variant */
  json_t *only = parse_ok("{\"channels\":{\"sms\":{\"text\":\"s\"}}}");
  ASSERT_EQ(tmpl_render(only, TMPL_VK, &v, &out, &err), KK_EINVAL);
  json_decref(only);
  ASSERT_EQ(tmpl_chan_of("telegram_gateway"), TMPL_TELEGRAM);
  ASSERT_EQ(tmpl_chan_of("sms"), TMPL_SMS);
  ASSERT_EQ(tmpl_chan_of("fax"), -1);
  json_decref(doc);
}
