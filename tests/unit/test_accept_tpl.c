/*
 * test_accept_tpl.c - accept's template hook on a real store: a message
 * by template is rendered per step of its cascade (the SMS step's variant
 * is the text, each other step's in extra "texts", rich parts the message
 * gives win), a missing variable and an unknown template are refused with
 * their codes, and the contact hook fills what vars does not.
 */
#include <jansson.h>
#include <string.h>

#include "accept/accept.h"
#include "core/kk_err.h"
#include "core/kk_log.h"
#include "kk_test.h"
#include "lib/tmp_store.h"
#include "store/store_tpl.h"

#define BODY                                                                                       \
  "{\"text\":\"Hi {{name|there}}, "                                                                \
  "{{code}}\",\"channels\":{\"sms\":{\"text\":\"SMS {{code}}\"},"                                  \
  "\"viber\":{\"text\":\"V "                                                                       \
  "{{attrs.city}}\",\"image\":\"https://i/{{code}}\"}}}"

static const char *contact(void *ud, int64_t account_id, const char *e164, const char *name) {
  (void)ud;
  if (account_id == 5 && strcmp(e164, "+79161234567") == 0 && strcmp(name, "attrs.city") == 0)
    return "Kazan";
  return NULL;
}

KK_TEST(accept_template_renders_per_step) {
  kk_log_level = KK_LOG_ERROR;
  struct tmp_store t;
  ASSERT_EQ(tmp_store_open(&t, "acctpl", NULL), 0);
  store_template_put(t.store, 5, "promo", BODY, tmp_store_done, &t);
  ASSERT_EQ(tmp_store_wait(&t, 1, 10000), 0);
  static const long long ttl[3] = {86400000, 3600000, 86400000};
  struct accept ac;
  accept_init(&ac, t.store, NULL, NULL, ttl);
  ac.contact_field = contact;
  json_t *vars = json_pack("{s:s}", "code", "{{name}}"); /* a hostile value */
  struct accept_item it;
  memset(&it, 0, sizeof it);
  snprintf(it.e164, sizeof it.e164, "+79161234567");
  it.template_name = "promo";
  it.vars = vars;
  it.extra = "{\"viber_id\":\"v1\",\"image\":\"https://own\"}";
  static const char *const steps = "viber/delivered/30000,vk/read/30000,sms/delivered/0";
  ASSERT_EQ(accept_render_template(&ac, 5, steps, &it), 0);
  ASSERT_STR_EQ(it.text, "SMS {{name}}");
  ASSERT_EQ(it.text_len, strlen("SMS {{name}}"));
  json_t *x = json_loads(it.extra, 0, NULL);
  ASSERT(x != NULL);
  json_t *texts = json_object_get(x, "texts");
  ASSERT_STR_EQ(json_string_value(json_object_get(texts, "viber")), "V Kazan");
  ASSERT_STR_EQ(json_string_value(json_object_get(texts, "vk")), "Hi there, {{name}}");
  /* the SMS step's text is the message's: no entry of its own */
  ASSERT(json_object_get(texts, "sms") == NULL);
  ASSERT_STR_EQ(json_string_value(json_object_get(x, "image")), "https://own"); /* the message's */
  ASSERT_STR_EQ(json_string_value(json_object_get(x, "viber_id")), "v1");
  json_decref(x);

  /* one text for every step: no "texts" at all, unless a text has a link
     (each channel's links are tracked apart) */
  store_template_put(t.store, 5, "plain", "{\"text\":\"Hello\"}", tmp_store_done, &t);
  store_template_put(t.store, 5, "link", "{\"text\":\"See HTTPS://k.example/a\"}",
                     tmp_store_done, &t);
  ASSERT_EQ(tmp_store_wait(&t, 3, 10000), 0);   /* with the first */
  it.template_name = "plain";
  it.extra = NULL;
  ASSERT_EQ(accept_render_template(&ac, 5, steps, &it), 0);
  ASSERT_STR_EQ(it.text, "Hello");
  ASSERT_STR_EQ(it.extra, "{}");
  /* the idempotency digest is over the extra with every text, as before */
  x = json_loads(it.digest_extra, 0, NULL);
  ASSERT_EQ(json_object_size(json_object_get(x, "texts")), 3);
  json_decref(x);
  it.template_name = "link";
  ASSERT_EQ(accept_render_template(&ac, 5, steps, &it), 0);
  x = json_loads(it.extra, 0, NULL);
  ASSERT_EQ(json_object_size(json_object_get(x, "texts")), 3);
  ASSERT(it.digest_extra == NULL);
  json_decref(x);
  it.template_name = "promo";
  it.extra = "{\"viber_id\":\"v1\",\"image\":\"https://own\"}";

  /* no SMS step: the first step's text */
  ASSERT_EQ(accept_render_template(&ac, 5, "vk/read/30000", &it), 0);
  ASSERT_STR_EQ(it.text, "Hi there, {{name}}");
  /* another recipient: no contact field, so the viber step misses it */
  snprintf(it.e164, sizeof it.e164, "+79160000000");
  ASSERT_EQ(accept_render_template(&ac, 5, "viber/delivered/30000,sms/delivered/0", &it),
            KK_EINVAL);
  ASSERT_STR_EQ(it.err.code, "missing_variable");
  ASSERT(strstr(it.err.message, "\"attrs.city\"") != NULL);
  /* missing on the SMS step */
  json_t *none = json_object();
  it.vars = none;
  it.result = ACCEPT_PENDING;
  ASSERT_EQ(accept_render_template(&ac, 5, "", &it), KK_EINVAL);
  ASSERT_STR_EQ(it.err.code, "missing_variable");
  ASSERT(strstr(it.err.message, "\"code\"") != NULL);
  /* another account's template is not found */
  ASSERT_EQ(accept_render_template(&ac, 6, NULL, &it), KK_EINVAL);
  ASSERT_STR_EQ(it.err.code, "unknown_template");
  accept_item_fini(&it);
  json_decref(none);
  json_decref(vars);
  ASSERT_EQ(tmp_store_close(&t), 0);
}
