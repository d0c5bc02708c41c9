/*
 * test_accept_links.c - a campaign message's URLs made tracked links
 * (accept_links.h) on a rendered template: one code per link and channel,
 * the message's text the same as its SMS text, the public URL's own links
 * left alone, nothing without a public URL or for a message not tracked,
 * and a text the links make too long refused.
 */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "accept/accept.h"
#include "accept/accept_links.h"
#include "core/kk_err.h"
#include "core/kk_log.h"
#include "kk_test.h"
#include "lib/tmp_store.h"
#include "link/link_url.h"
#include "store/store_link.h"
#include "store/store_tpl.h"

#define BODY                                                                   \
  "{\"text\":\"VK: https://a.ru/x and again https://a.ru/x\","                \
  "\"channels\":{\"sms\":{\"text\":\"SMS: https://a.ru/x, off: http://k.example/u/abc\"}}}"

/* The codes of base/r/ links in s, joined by ','. */
static const char *codes(const char *s) {
  static char out[256];
  out[0] = '\0';
  for (const char *p = s; (p = strstr(p, "http://k.example/r/")) != NULL; p += 19) {
    if (out[0]) strcat(out, ",");
    strncat(out, p + 19, LINK_CODE_LEN);
  }
  return out;
}

static void render(struct accept *ac, struct accept_item *it) {
  memset(it, 0, sizeof *it);
  snprintf(it->e164, sizeof it->e164, "79161234567");
  it->template_name = "promo";
  ASSERT_EQ(accept_render_template(ac, 5, "vk/read/30000,sms/delivered/0", it), 0);
  it->campaign = "spring";
  it->track_links = 1;
  it->variant = 2;   /* variant 1, plus one */
  it->m.text = it->text;
}

KK_TEST(accept_links_per_channel_codes) {
  kk_log_level = KK_LOG_ERROR;
  struct tmp_store t;
  ASSERT_EQ(tmp_store_open(&t, "acclinks", NULL), 0);
  store_template_put(t.store, 5, "promo", BODY, tmp_store_done, &t);
  ASSERT_EQ(tmp_store_wait(&t, 1, 10000), 0);
  static const long long ttl[3] = {86400000, 3600000, 86400000};
  struct accept ac;
  accept_init(&ac, t.store, NULL, NULL, ttl);
  struct accept_item it;

  /* no public URL: nothing changes */
  render(&ac, &it);
  ASSERT_EQ(accept_links_make(&ac, &it), 0);
  ASSERT_EQ(it.nlinks, 0);
  ASSERT(strstr(it.text, "https://a.ru/x") != NULL);
  accept_item_fini(&it);

  ac.public_url = "http://k.example/";
  /* not tracked (a message of the API): nothing changes */
  render(&ac, &it);
  it.track_links = 0;
  ASSERT_EQ(accept_links_make(&ac, &it), 0);
  ASSERT_EQ(it.nlinks, 0);
  accept_item_fini(&it);

  render(&ac, &it);
  ASSERT_EQ(accept_links_make(&ac, &it), 0);
  /* the SMS text: one code; the unsubscribe link of the public URL stays */
  ASSERT(strstr(it.text, "https://a.ru") == NULL);
  ASSERT(strstr(it.text, ", off: http://k.example/u/abc") != NULL);
  char sms[64];
  snprintf(sms, sizeof sms, "%s", codes(it.text));
  ASSERT_EQ(strlen(sms), LINK_CODE_LEN);
  ASSERT_STR_EQ(it.m.text, it.text);
  /* VK: its own code, the same for the link's two places */
  json_t *x = json_loads(it.extra, 0, NULL);
  json_t *texts = json_object_get(x, "texts");
  ASSERT_STR_EQ(json_string_value(json_object_get(texts, "sms")), it.text);
  const char *vk = codes(json_string_value(json_object_get(texts, "vk")));
  ASSERT_EQ(strlen(vk), 2 * LINK_CODE_LEN + 1);
  ASSERT(strncmp(vk, vk + LINK_CODE_LEN + 1, LINK_CODE_LEN) == 0);
  ASSERT(strncmp(vk, sms, LINK_CODE_LEN) != 0);
  json_decref(x);
  /* the links go to the store with the message */
  ASSERT_EQ(it.nlinks, 2);
  ASSERT(it.m.links == it.links);
  ASSERT_EQ(it.m.nlinks, 2);
  ASSERT_EQ(it.m.link_variant, 1);
  ASSERT_STR_EQ(it.m.extra, it.extra);
  for (int i = 0; i < it.nlinks; i++) {
    ASSERT_STR_EQ(it.links[i].target, "https://a.ru/x");
    ASSERT(link_code_valid(it.links[i].code));
  }
  ASSERT(strcmp(it.links[0].channel, it.links[1].channel) != 0);
  ASSERT(it.m.segments >= 1);
  accept_item_fini(&it);
  ASSERT(it.links == NULL && it.nlinks == 0);

  /* made again under its key (a batch made again after a restart): new
     codes, the same digest, so the store answers with the first message */
  char hash[65], text[256];
  for (int i = 0; i < 2; i++) {
    render(&ac, &it);
    it.to = "79161234567";
    it.idem_key = "campaign:spring:1";
    ASSERT_EQ(accept_prepare(&ac, 5, "r1", store_now_ms(), &it), 0);
    ASSERT_EQ(it.nlinks, 2);
    if (i == 0) {
      snprintf(hash, sizeof hash, "%s", it.req_hash);
      snprintf(text, sizeof text, "%s", it.m.text);
    } else {
      ASSERT_STR_EQ(it.req_hash, hash);
      ASSERT(strcmp(it.m.text, text) != 0);
    }
    accept_item_fini(&it);
  }

  /* a text the links make longer than SMS_MAX_PARTS segments: refused */
  render(&ac, &it);
  char *longer = malloc(4096);
  size_t o = 0;
  while (o + 16 < 2400) o += (size_t)snprintf(longer + o, 4096 - o, "http://a.b/%03zu ", o);
  free(it.tpl_text);
  it.tpl_text = longer;
  it.text = longer;
  it.text_len = o;
  ASSERT_EQ(accept_links_make(&ac, &it), KK_EINVAL);
  ASSERT_STR_EQ(it.err.code, "text_too_long");
  ASSERT_EQ(it.nlinks, 0);
  accept_item_fini(&it);
  ASSERT_EQ(tmp_store_close(&t), 0);
}

KK_TEST(accept_links_viber_button) {
  kk_log_level = KK_LOG_ERROR;
  struct tmp_store t;
  ASSERT_EQ(tmp_store_open(&t, "acclinksvb", NULL), 0);
  store_template_put(t.store, 5, "promo",
                     "{\"text\":\"SMS: https://a.ru/x\",\"channels\":{\"viber\":{\"text\":"
                     "\"Viber: https://a.ru/x\",\"button\":{\"caption\":\"Open\","
                     "\"url\":\"https://a.ru/btn?x=1\"}}}}",
                     tmp_store_done, &t);
  ASSERT_EQ(tmp_store_wait(&t, 1, 10000), 0);
  static const long long ttl[3] = {86400000, 3600000, 86400000};
  struct accept ac;
  accept_init(&ac, t.store, NULL, NULL, ttl);
  ac.public_url = "http://k.example";
  struct accept_item it;
  memset(&it, 0, sizeof it);
  snprintf(it.e164, sizeof it.e164, "79161234567");
  it.template_name = "promo";
  ASSERT_EQ(accept_render_template(&ac, 5, "viber/read/30000,sms/delivered/0", &it), 0);
  it.campaign = "spring";
  it.track_links = 1;
  it.m.text = it.text;
  ASSERT_EQ(accept_links_make(&ac, &it), 0);
  json_t *x = json_loads(it.extra, 0, NULL);
  const char *url = json_string_value(json_object_get(json_object_get(x, "button"), "url"));
  ASSERT(url != NULL);
  ASSERT_EQ(strlen(codes(url)), LINK_CODE_LEN);
  ASSERT_EQ(strlen(url), strlen("http://k.example/r/") + LINK_CODE_LEN);
  ASSERT_STR_EQ(json_string_value(json_object_get(json_object_get(x, "button"), "caption")), "Open");
  /* three links: the SMS text's, the Viber text's and the button's, the
     button's counted as Viber's */
  ASSERT_EQ(it.nlinks, 3);
  int found = 0;
  for (int i = 0; i < it.nlinks; i++)
    if (strcmp(it.links[i].target, "https://a.ru/btn?x=1") == 0) {
      ASSERT_STR_EQ(it.links[i].channel, "viber");
      ASSERT(strstr(url, it.links[i].code) != NULL);
      found = 1;
    }
  ASSERT(found);
  json_decref(x);
  accept_item_fini(&it);
  ASSERT_EQ(tmp_store_close(&t), 0);
}
