/*
 * test_channel_requests.c - the channel drivers' requests, byte for byte:
 * the exact request of every driver (method, URL, each header, the whole
 * body) for plain and rich messages, VK's execute batches, webhook
 * registrations, the settings that go into paths, and WhatsApp's window
 * (inside it a text goes, outside it the template or nothing). Expected
 * bodies were produced independently (Python's json.dumps with compact
 * separators, urllib.parse.quote, base64).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "channel/chan_int.h"
#include "channel/channel.h"
#include "core/kk_crypto.h"
#include "core/kk_err.h"
#include "kk_test.h"
#include "test_channel.h"

/* ---- expected bodies ------------------------------------------------------ */

#define VB_TEXT \
  "{\"receiver\":\"01234567890A=\",\"min_api_version\":1,\"sender\":{\"name\":\"kaskad\"}," \
  "\"tracking_data\":\"42\",\"type\":\"text\",\"text\":\"Привет\"}"
#define VB_PIC \
  "{\"receiver\":\"01234567890A=\",\"min_api_version\":1,\"sender\":{\"name\":\"Shop\"}," \
  "\"tracking_data\":\"42\",\"type\":\"picture\",\"text\":\"Привет\"," \
  "\"media\":\"https://img.test/a.png\"}"
#define VB_RICH_IMG \
  "{\"receiver\":\"01234567890A=\",\"min_api_version\":2,\"sender\":{\"name\":\"Shop\"}," \
  "\"tracking_data\":\"42\",\"type\":\"rich_media\",\"rich_media\":{\"Type\":\"rich_media\"," \
  "\"ButtonsGroupColumns\":6,\"ButtonsGroupRows\":7,\"BgColor\":\"#FFFFFF\"," \
  "\"Buttons\":[{\"Columns\":6,\"Rows\":3,\"ActionType\":\"none\"," \
  "\"Image\":\"https://img.test/a.png\"},{\"Columns\":6,\"Rows\":3," \
  "\"ActionType\":\"none\",\"Text\":\"Привет\"},{\"Columns\":6," \
  "\"Rows\":1,\"ActionType\":\"open-url\",\"ActionBody\":\"https://pay.test/1\"," \
  "\"Text\":\"Оплатить\"}]},\"alt_text\":\"Привет\"}"
#define VB_RICH \
  "{\"receiver\":\"01234567890A=\",\"min_api_version\":2,\"sender\":{\"name\":\"Shop\"}," \
  "\"tracking_data\":\"42\",\"type\":\"rich_media\",\"rich_media\":{\"Type\":\"rich_media\"," \
  "\"ButtonsGroupColumns\":6,\"ButtonsGroupRows\":7,\"BgColor\":\"#FFFFFF\"," \
  "\"Buttons\":[{\"Columns\":6,\"Rows\":6,\"ActionType\":\"none\"," \
  "\"Text\":\"Привет\"},{\"Columns\":6,\"Rows\":1,\"ActionType\":\"open-url\"," \
  "\"ActionBody\":\"https://pay.test/1\",\"Text\":\"Оплатить\"}]}," \
  "\"alt_text\":\"Привет\"}"
#define VBM_TEXT \
  "{\"phone\":\"79161234567\",\"sender\":\"kaskad\",\"message_id\":\"42\"," \
  "\"category\":\"transactional\",\"ttl\":86400,\"text\":\"Привет\"}"
#define VBM_FULL \
  "{\"phone\":\"79161234567\",\"sender\":\"Shop\",\"message_id\":\"42\"," \
  "\"category\":\"promotional\",\"ttl\":600,\"text\":\"Привет\"," \
  "\"image\":\"https://img.test/a.png\",\"button\":{\"caption\":\"Оплатить\"," \
  "\"url\":\"https://pay.test/1\"}}"
#define VB_REG \
  "{\"url\":\"https://kaskad.test/hooks/viber\",\"event_types\":[\"delivered\"," \
  "\"seen\",\"failed\",\"subscribed\",\"unsubscribed\",\"conversation_started\",\"message\"]," \
  "\"send_name\":true,\"send_photo\":false}"
#define TG_TEXT \
  "{\"chat_id\":123456789,\"text\":\"Привет \\\"мир\\\"\\n/start\"," \
  "\"disable_notification\":false}"
#define TG_BTN \
  "{\"chat_id\":\"@kaskad_news\",\"text\":\"Привет\",\"disable_notification\":false," \
  "\"reply_markup\":{\"inline_keyboard\":[[{\"text\":\"Оплатить\"," \
  "\"url\":\"https://pay.test/1\"}]]}}"
#define TG_PHOTO \
  "{\"chat_id\":-1001234567890,\"photo\":\"https://img.test/a.png\"," \
  "\"caption\":\"Привет\",\"reply_markup\":{\"inline_keyboard\":[[{\"text\":\"Оплатить\"," \
  "\"url\":\"https://pay.test/1\"}]]}}"
#define TG_REG \
  "{\"url\":\"https://kaskad.test/hooks/telegram\",\"secret_token\":\"tg_secret-1\"," \
  "\"allowed_updates\":[\"message\",\"my_chat_member\"],\"max_connections\":40}"
#define GW_MIN \
  "{\"phone_number\":\"+79161234567\",\"code\":\"4321\",\"payload\":\"42\"}"
#define GW_FULL \
  "{\"phone_number\":\"+79161234567\",\"code\":\"55555\",\"ttl\":30," \
  "\"callback_url\":\"https://kaskad.test/hooks/telegram_gateway\"," \
  "\"payload\":\"42\",\"sender_username\":\"kaskad_bot\"}"
#define WA_TEXT \
  "{\"messaging_product\":\"whatsapp\",\"recipient_type\":\"individual\"," \
  "\"to\":\"79161234567\",\"type\":\"text\",\"text\":{\"body\":\"Привет\"," \
  "\"preview_url\":false}}"
#define WA_TPL \
  "{\"messaging_product\":\"whatsapp\",\"recipient_type\":\"individual\"," \
  "\"to\":\"79161234567\",\"type\":\"template\",\"template\":{\"name\":\"order_status\"," \
  "\"language\":{\"code\":\"ru\"},\"components\":[{\"type\":\"body\"," \
  "\"parameters\":[{\"type\":\"text\",\"text\":\"12345\"},{\"type\":\"text\"," \
  "\"text\":\"завтра\"}]}]}}"
#define WA_TPL0 \
  "{\"messaging_product\":\"whatsapp\",\"recipient_type\":\"individual\"," \
  "\"to\":\"79161234567\",\"type\":\"template\",\"template\":{\"name\":\"hello_world\"," \
  "\"language\":{\"code\":\"en_US\"}}}"
#define EM_PLAIN \
  "From: noreply@kaskad.test\r\n" \
  "To: ivan@example.com\r\n" \
  "Subject: =?UTF-8?B?0JLQsNGIINC30LDQutCw0Lcg0LPQvtGC0L7Qsg==?=\r\n" \
  "Message-ID: <42.msg_abc@kaskad>\r\n" \
  "MIME-Version: 1.0\r\n" \
  "Content-Type: text/plain; charset=UTF-8\r\n" \
  "Content-Transfer-Encoding: 8bit\r\n" \
  "\r\n" \
  "Ваш заказ готов\r\n" \
  "Заберите его до 20:00.\r\n" \
  "Спасибо\r\n"
#define EM_FULL \
  "From: =?UTF-8?B?0JrQsNGE0LUg0KDQvtC80LDRiNC60LA=?= <noreply@kaskad.test>\r\n" \
  "To: ivan@example.com\r\n" \
  "Subject: =?UTF-8?B?0KfQtdC6?=\r\n" \
  "Message-ID: <42.msg_abc@kaskad>\r\n" \
  "MIME-Version: 1.0\r\n" \
  "Content-Type: text/plain; charset=UTF-8\r\n" \
  "Content-Transfer-Encoding: 8bit\r\n" \
  "\r\n" \
  "Итого 100 ₽\r\n" \
  "\r\n" \
  "Оплатить: https://pay.test/1\r\n" \
  "\r\n" \
  "https://img.test/a.png\r\n"
#define EM_LONG_SUBJ \
  "=?UTF-8?B?0JbQltCW0JbQltCW0JbQltCW0JbQltCW0JbQltCW0JbQltCW0JbQltCW0JbQltCW0JbQlt" \
  "CW0JbQltCW0JbQltCW0JbQltCW0JbQltCW0JbQltCW0JbQltCW0JbQltCW0JbQltCW0JbQltCW0JbQlt" \
  "CW0JbQltCW?="

/* ---- helpers -------------------------------------------------------------- */

static void assert_headers(const struct chan_req *r, const char *h1, const char *h2) {
  ASSERT_EQ(r->nheaders, h2 ? 2 : 1);
  ASSERT_STR_EQ(r->headers[0], h1);
  if (h2) ASSERT_STR_EQ(r->headers[1], h2);
}

static void assert_body(const struct chan_req *r, const char *body) {
  ASSERT(r->body != NULL);
  ASSERT_EQ(r->body_len, strlen(body));
  ASSERT_STR_EQ(r->body, body);
}

/* Builds m with driver name; asserts success and the method and URL. */
static void build_ok(const char *name, const struct chan_cfg *cfg, const struct chan_msg *m,
                     struct chan_req *r, const char *url) {
  char err[128] = "";
  int rc = drv(name)->build(cfg, m, r, err, sizeof err);
  if (rc != 0) kk_test_fail(__FILE__, __LINE__, "%s build: %d %s", name, rc, err);
  ASSERT_STR_EQ(r->method, "POST");
  ASSERT_STR_EQ(r->url, url);
}

/* Builds m and expects rc with the error text err_text. */
static void build_fails(const char *name, const struct chan_cfg *cfg, const struct chan_msg *m,
                        int rc, const char *err_text) {
  struct chan_req r;
  char err[128] = "";
  ASSERT_EQ(drv(name)->build(cfg, m, &r, err, sizeof err), rc);
  ASSERT_STR_EQ(err, err_text);
  chan_req_free(&r);
}

/* ---- requests, driver by driver -------------------------------------------- */

KK_TEST(channel_vk_build_plain) {
  struct chan_cfg cfg = vk_cfg();
  struct chan_msg m = msg("12345", "Привет, мир! a&b=c d~");
  m.attempt_id = 4294967301LL; /* random_id = 5 */
  m.image = "https://img.test/a.png"; /* ignored: VK needs an upload */
  struct chan_req r;
  build_ok("vk", &cfg, &m, &r, "https://api.vk.com/method/messages.send");
  assert_headers(&r, "Content-Type: application/x-www-form-urlencoded", NULL);
  assert_body(&r, "access_token=vk1.a-token&v=5.199&peer_id=12345&random_id=5&message="
                  "%D0%9F%D1%80%D0%B8%D0%B2%D0%B5%D1%82%2C%20%D0%BC%D0%B8%D1%80%21%20a%26b%3Dc"
                  "%20d~&intent=account_update");
  chan_req_free(&r);

  m.msg_class = "transactional";
  strcpy(cfg.base_url, "http://127.0.0.1:9100");
  build_ok("vk", &cfg, &m, &r, "http://127.0.0.1:9100/method/messages.send");
  ASSERT(strstr(r.body, "&intent=purchase_update") != NULL);
  chan_req_free(&r);
  m.msg_class = "service";
  build_ok("vk", &cfg, &m, &r, "http://127.0.0.1:9100/method/messages.send");
  ASSERT(strstr(r.body, "&intent=account_update") != NULL);
  chan_req_free(&r);
}

KK_TEST(channel_vk_build_keyboard) {
  struct chan_cfg cfg = vk_cfg();
  strcpy(cfg.token, "T");
  struct chan_msg m = msg("-77", "Sale 50%");
  m.attempt_id = 4294967295LL;
  m.msg_class = "advertising";
  m.button_caption = "Открыть";
  m.button_url = "https://ex.com/p?a=1&b=2";
  struct chan_req r;
  build_ok("vk", &cfg, &m, &r, "https://api.vk.com/method/messages.send");
  assert_headers(&r, "Content-Type: application/x-www-form-urlencoded", NULL);
  assert_body(&r,
              "access_token=T&v=5.199&peer_id=-77&random_id=2147483647&message=Sale%2050%25"
              "&intent=promo_newsletter&keyboard=%7B%22inline%22%3Atrue%2C%22buttons%22%3A%5B%5B"
              "%7B%22action%22%3A%7B%22type%22%3A%22open_link%22%2C%22link%22%3A%22https%3A%2F%2F"
              "ex.com%2Fp%3Fa%3D1%26b%3D2%22%2C%22label%22%3A%22%D0%9E%D1%82%D0%BA%D1%80%D1%8B%D1"
              "%82%D1%8C%22%7D%7D%5D%5D%7D");
  chan_req_free(&r);

  /* Only a caption: no keyboard. */
  m.button_url = NULL;
  build_ok("vk", &cfg, &m, &r, "https://api.vk.com/method/messages.send");
  ASSERT(strstr(r.body, "keyboard") == NULL);
  chan_req_free(&r);
}

KK_TEST(channel_vk_build_errors) {
  struct chan_cfg cfg = vk_cfg();
  struct chan_msg m = msg("id12345", "hi");
  build_fails("vk", &cfg, &m, KK_EINVAL, "vk_id must be a number");
  m.address = NULL;
  build_fails("vk", &cfg, &m, KK_EINVAL, "vk_id must be a number");
  m.address = "12345";
  cfg.token[0] = '\0';
  build_fails("vk", &cfg, &m, KK_ENOENT, "token is not set");
}

/* Two sends in one execute: the token and version once, each message as an
   API.messages.send call with the fields of its own form. */
KK_TEST(channel_vk_batch_request) {
  struct chan_cfg cfg = vk_cfg();
  struct chan_msg a = msg("12345", "Привет & \"hi\"");
  a.attempt_id = 4294967301LL; /* random_id = 5 */
  struct chan_msg b = msg("-77", "Sale 50%");
  b.attempt_id = 6;
  b.msg_class = "advertising";
  b.button_caption = "Open";
  b.button_url = "https://ex.com/p?a=1&b=2";
  struct chan_req ra, rb, out;
  build_ok("vk", &cfg, &a, &ra, "https://api.vk.com/method/messages.send");
  build_ok("vk", &cfg, &b, &rb, "https://api.vk.com/method/messages.send");
  const struct chan_req *reqs[] = {&ra, &rb};
  const struct chan_driver *d = drv("vk");
  ASSERT_EQ(d->batch_max, 25);
  ASSERT_EQ(d->batch(&cfg, reqs, 2, &out), 0);
  ASSERT_STR_EQ(out.method, "POST");
  ASSERT_STR_EQ(out.url, "https://api.vk.com/method/execute");
  assert_headers(&out, "Content-Type: application/x-www-form-urlencoded", NULL);
  ASSERT(strncmp(out.body, "access_token=vk1.a-token&v=5.199&code=", 38) == 0);
  char *code = chan_form_get(out.body, out.body_len, "code");
  ASSERT(code != NULL);
  ASSERT_STR_EQ(code,
                "return [API.messages.send({\"peer_id\":12345,\"random_id\":5,\"message\":"
                "\"Привет & \\\"hi\\\"\",\"intent\":\"account_update\"}),"
                "API.messages.send({\"peer_id\":-77,\"random_id\":6,\"message\":\"Sale 50%\","
                "\"intent\":\"promo_newsletter\",\"keyboard\":\"{\\\"inline\\\":true,"
                "\\\"buttons\\\":[[{\\\"action\\\":{\\\"type\\\":\\\"open_link\\\",\\\"link\\\":"
                "\\\"https://ex.com/p?a=1&b=2\\\",\\\"label\\\":\\\"Open\\\"}}]]}\"})];");
  free(code);
  chan_req_free(&out);
  /* More than an execute may run */
  const struct chan_req *many[26];
  for (int i = 0; i < 26; i++) many[i] = &ra;
  ASSERT_EQ(d->batch(&cfg, many, 26, &out), KK_ENOSPC);
  chan_req_free(&out);
  chan_req_free(&ra);
  chan_req_free(&rb);
}

/* A text's escapes in the batch are what json_dumps writes. */
KK_TEST(channel_vk_batch_escapes_as_json) {
  struct chan_cfg cfg = vk_cfg();
  const char *text = "a\x01\x1f\t\r\n\b\f\\\"/ё\x7f z";
  struct chan_msg a = msg("12345", text);
  a.attempt_id = 5;
  struct chan_req ra, out;
  build_ok("vk", &cfg, &a, &ra, "https://api.vk.com/method/messages.send");
  const struct chan_req *reqs[] = {&ra};
  ASSERT_EQ(drv("vk")->batch(&cfg, reqs, 1, &out), 0);
  char *code = chan_form_get(out.body, out.body_len, "code");
  json_t *o = json_pack("{s:I, s:I, s:s, s:s}", "peer_id", (json_int_t)12345, "random_id",
                        (json_int_t)5, "message", text, "intent", "account_update");
  char *js = json_dumps(o, JSON_COMPACT);
  char want[512];
  snprintf(want, sizeof want, "return [API.messages.send(%s)];", js);
  ASSERT_STR_EQ(code, want);
  free(js);
  json_decref(o);
  free(code);
  chan_req_free(&out);
  chan_req_free(&ra);
}

KK_TEST(channel_viber_build_bot) {
  struct chan_cfg cfg = viber_cfg();
  struct chan_msg m = msg("01234567890A=", "Привет");
  struct chan_req r;
  build_ok("viber", &cfg, &m, &r, "https://chatapi.viber.com/pa/send_message");
  assert_headers(&r, "Content-Type: application/json", "X-Viber-Auth-Token: viber-token");
  assert_body(&r, VB_TEXT);
  chan_req_free(&r);

  strcpy(cfg.sender, "Shop");
  strcpy(cfg.base_url, "http://127.0.0.1:9101");
  m.image = "https://img.test/a.png";
  build_ok("viber", &cfg, &m, &r, "http://127.0.0.1:9101/pa/send_message");
  assert_headers(&r, "Content-Type: application/json", "X-Viber-Auth-Token: viber-token");
  assert_body(&r, VB_PIC);
  chan_req_free(&r);

  m.button_caption = "Оплатить";
  m.button_url = "https://pay.test/1";
  build_ok("viber", &cfg, &m, &r, "http://127.0.0.1:9101/pa/send_message");
  assert_body(&r, VB_RICH_IMG);
  chan_req_free(&r);

  m.image = NULL;
  build_ok("viber", &cfg, &m, &r, "http://127.0.0.1:9101/pa/send_message");
  assert_body(&r, VB_RICH);
  chan_req_free(&r);
}

KK_TEST(channel_viber_build_business) {
  struct chan_cfg cfg = viber_cfg();
  struct chan_msg m = msg(NULL, "Привет");
  struct chan_req r;
  build_ok("viber", &cfg, &m, &r, "https://chatapi.viber.com/vbm/v1/messages");
  assert_headers(&r, "Content-Type: application/json", "X-Viber-Auth-Token: viber-token");
  assert_body(&r, VBM_TEXT);
  chan_req_free(&r);

  strcpy(cfg.sender, "Shop");
  m.address = "";
  m.msg_class = "advertising";
  m.ttl_s = 600;
  m.image = "https://img.test/a.png";
  m.button_caption = "Оплатить";
  m.button_url = "https://pay.test/1";
  build_ok("viber", &cfg, &m, &r, "https://chatapi.viber.com/vbm/v1/messages");
  assert_body(&r, VBM_FULL);
  chan_req_free(&r);

  cfg.token[0] = '\0';
  build_fails("viber", &cfg, &m, KK_ENOENT, "token is not set");
  cfg = viber_cfg();
  m.to = NULL;
  build_fails("viber", &cfg, &m, KK_EINVAL, "neither viber_id nor phone is set");
  m = msg("01234567890A=", "\xff\xfe");
  build_fails("viber", &cfg, &m, KK_EINVAL, "text is not valid UTF-8");
}

KK_TEST(channel_viber_register) {
  struct chan_cfg cfg = viber_cfg();
  struct chan_req r;
  ASSERT_EQ(drv("viber")->build_register(&cfg, "https://kaskad.test/hooks/viber", &r), 0);
  ASSERT_STR_EQ(r.method, "POST");
  ASSERT_STR_EQ(r.url, "https://chatapi.viber.com/pa/set_webhook");
  assert_headers(&r, "Content-Type: application/json", "X-Viber-Auth-Token: viber-token");
  assert_body(&r, VB_REG);
  chan_req_free(&r);
  cfg.token[0] = '\0';
  ASSERT_EQ(drv("viber")->build_register(&cfg, "https://kaskad.test/hooks/viber", &r), KK_ENOENT);
  chan_req_free(&r);
}

KK_TEST(channel_telegram_build) {
  struct chan_cfg cfg = tg_cfg();
  struct chan_msg m = msg("123456789", "Привет \"мир\"\n/start");
  struct chan_req r;
  build_ok("telegram", &cfg, &m, &r, "https://api.telegram.org/bot123456:ABC-def_GHI/sendMessage");
  assert_headers(&r, "Content-Type: application/json", NULL);
  assert_body(&r, TG_TEXT);
  chan_req_free(&r);

  strcpy(cfg.base_url, "http://127.0.0.1:9102");
  m = msg("@kaskad_news", "Привет");
  m.button_caption = "Оплатить";
  m.button_url = "https://pay.test/1";
  build_ok("telegram", &cfg, &m, &r, "http://127.0.0.1:9102/bot123456:ABC-def_GHI/sendMessage");
  assert_headers(&r, "Content-Type: application/json", NULL);
  assert_body(&r, TG_BTN);
  chan_req_free(&r);

  m.address = "-1001234567890";
  m.image = "https://img.test/a.png";
  build_ok("telegram", &cfg, &m, &r, "http://127.0.0.1:9102/bot123456:ABC-def_GHI/sendPhoto");
  assert_headers(&r, "Content-Type: application/json", NULL);
  assert_body(&r, TG_PHOTO);
  chan_req_free(&r);
}

KK_TEST(channel_telegram_build_lengths) {
  struct chan_cfg cfg = tg_cfg();
  /* 1024 two-byte characters still fit a caption; 1025 go as a message. */
  char *text = malloc(2 * 4097 + 1);
  for (int i = 0; i < 4097; i++) memcpy(text + 2 * i, "Ж", 2);
  text[2 * 1024] = '\0';
  struct chan_msg m = msg("1", text);
  m.image = "https://img.test/a.png";
  struct chan_req r;
  build_ok("telegram", &cfg, &m, &r, "https://api.telegram.org/bot123456:ABC-def_GHI/sendPhoto");
  chan_req_free(&r);
  memcpy(text + 2 * 1024, "Ж", 2);
  text[2 * 1025] = '\0';
  build_ok("telegram", &cfg, &m, &r, "https://api.telegram.org/bot123456:ABC-def_GHI/sendMessage");
  ASSERT(strstr(r.body, "\"photo\"") == NULL);
  chan_req_free(&r);
  /* 4096 characters fit, 4097 do not. */
  for (int i = 0; i < 4097; i++) memcpy(text + 2 * i, "Ж", 2);
  text[2 * 4096] = '\0';
  m.image = NULL;
  build_ok("telegram", &cfg, &m, &r, "https://api.telegram.org/bot123456:ABC-def_GHI/sendMessage");
  chan_req_free(&r);
  text[2 * 4096] = (char)0xD0;
  text[2 * 4097] = '\0';
  build_fails("telegram", &cfg, &m, KK_EINVAL, "text must be 1 to 4096 characters");
  free(text);

  m = msg("1", "");
  build_fails("telegram", &cfg, &m, KK_EINVAL, "text must be 1 to 4096 characters");
  /* An empty caption is fine for a photo. */
  m.image = "https://img.test/a.png";
  build_ok("telegram", &cfg, &m, &r, "https://api.telegram.org/bot123456:ABC-def_GHI/sendPhoto");
  chan_req_free(&r);
  m = msg(NULL, "hi");
  build_fails("telegram", &cfg, &m, KK_EINVAL, "telegram_chat_id is not set");
  m = msg("1", "hi");
  cfg.token[0] = '\0';
  build_fails("telegram", &cfg, &m, KK_ENOENT, "token is not set");
}

KK_TEST(channel_telegram_register) {
  struct chan_cfg cfg = tg_cfg();
  struct chan_req r;
  ASSERT_EQ(drv("telegram")->build_register(&cfg, "https://kaskad.test/hooks/telegram", &r), 0);
  ASSERT_STR_EQ(r.method, "POST");
  ASSERT_STR_EQ(r.url, "https://api.telegram.org/bot123456:ABC-def_GHI/setWebhook");
  assert_headers(&r, "Content-Type: application/json", NULL);
  assert_body(&r, TG_REG);
  chan_req_free(&r);
  cfg.secret[0] = '\0';
  ASSERT_EQ(drv("telegram")->build_register(&cfg, "https://kaskad.test/hooks/telegram", &r),
            KK_ENOENT);
  chan_req_free(&r);
}

KK_TEST(channel_tggw_build) {
  struct chan_cfg cfg = gw_cfg();
  struct chan_msg m = msg(NULL, "Код 12 и 123456789, ваш код: 4321 (не 56789)");
  struct chan_req r;
  build_ok("telegram_gateway", &cfg, &m, &r,
           "https://gatewayapi.telegram.org/sendVerificationMessage");
  assert_headers(&r, "Content-Type: application/json", "Authorization: Bearer gw-token");
  assert_body(&r, GW_MIN);
  chan_req_free(&r);

  strcpy(cfg.base_url, "http://127.0.0.1:9103");
  strcpy(cfg.sender, "kaskad_bot");
  m.code = "55555";
  m.ttl_s = 10;
  m.callback_url = "https://kaskad.test/hooks/telegram_gateway";
  build_ok("telegram_gateway", &cfg, &m, &r, "http://127.0.0.1:9103/sendVerificationMessage");
  assert_headers(&r, "Content-Type: application/json", "Authorization: Bearer gw-token");
  assert_body(&r, GW_FULL);
  chan_req_free(&r);

  m.ttl_s = 5000;
  build_ok("telegram_gateway", &cfg, &m, &r, "http://127.0.0.1:9103/sendVerificationMessage");
  ASSERT(strstr(r.body, "\"ttl\":3600,") != NULL);
  chan_req_free(&r);
  m.ttl_s = 600;
  build_ok("telegram_gateway", &cfg, &m, &r, "http://127.0.0.1:9103/sendVerificationMessage");
  ASSERT(strstr(r.body, "\"ttl\":600,") != NULL);
  chan_req_free(&r);

  /* Runs of 9 and 3 digits are skipped; 8 is the longest. */
  m = msg(NULL, "123456789 123 12345678");
  build_ok("telegram_gateway", &cfg, &m, &r, "http://127.0.0.1:9103/sendVerificationMessage");
  ASSERT(strstr(r.body, "\"code\":\"12345678\"") != NULL);
  chan_req_free(&r);
}

KK_TEST(channel_tggw_build_errors) {
  struct chan_cfg cfg = gw_cfg();
  struct chan_msg m = msg(NULL, "no code 123 here 123456789");
  build_fails("telegram_gateway", &cfg, &m, KK_EINVAL, "no 4-8 digit code in the text");
  m.code = "123";
  build_fails("telegram_gateway", &cfg, &m, KK_EINVAL, "code must be 4-8 digits");
  m.code = "123456789";
  build_fails("telegram_gateway", &cfg, &m, KK_EINVAL, "code must be 4-8 digits");
  m.code = "12a4";
  build_fails("telegram_gateway", &cfg, &m, KK_EINVAL, "code must be 4-8 digits");
  m.code = "1234";
  cfg.token[0] = '\0';
  build_fails("telegram_gateway", &cfg, &m, KK_ENOENT, "token is not set");
}

KK_TEST(channel_whatsapp_build) {
  struct chan_cfg cfg = wa_cfg();
  struct chan_msg m = msg(NULL, "Привет");
  m.wa_window = 1;
  struct chan_req r;
  build_ok("whatsapp", &cfg, &m, &r, "https://graph.facebook.com/v21.0/106540352242922/messages");
  assert_headers(&r, "Content-Type: application/json", "Authorization: Bearer EAAG-token");
  assert_body(&r, WA_TEXT);
  chan_req_free(&r);

  strcpy(cfg.base_url, "http://127.0.0.1:9104");
  strcpy(cfg.api_version, "v22.0");
  m.wa_window = 0;
  m.wa_template =
      "{\"name\":\"order_status\",\"language\":\"ru\",\"params\":[\"12345\",\"завтра\"]}";
  build_ok("whatsapp", &cfg, &m, &r, "http://127.0.0.1:9104/v22.0/106540352242922/messages");
  assert_headers(&r, "Content-Type: application/json", "Authorization: Bearer EAAG-token");
  assert_body(&r, WA_TPL);
  chan_req_free(&r);

  m.wa_template = "{\"name\":\"hello_world\",\"language\":\"en_US\"}";
  build_ok("whatsapp", &cfg, &m, &r, "http://127.0.0.1:9104/v22.0/106540352242922/messages");
  assert_body(&r, WA_TPL0);
  chan_req_free(&r);
  m.wa_template = "{\"name\":\"hello_world\",\"language\":\"en_US\",\"params\":[]}";
  build_ok("whatsapp", &cfg, &m, &r, "http://127.0.0.1:9104/v22.0/106540352242922/messages");
  assert_body(&r, WA_TPL0);
  chan_req_free(&r);
}

KK_TEST(channel_whatsapp_build_window) {
  struct chan_cfg cfg = wa_cfg();
  struct chan_msg m = msg(NULL, "Привет");
  const char *url = "https://graph.facebook.com/v21.0/106540352242922/messages";
  struct chan_req r;
  /* Closed, no template: nothing may go, and no request is built. */
  m.wa_window = 0;
  build_fails("whatsapp", &cfg, &m, KK_EINVAL,
              "whatsapp_window_closed: the recipient has not written within 24 h and there "
              "is no whatsapp_template");
  /* Closed, a template: the template. */
  m.wa_template =
      "{\"name\":\"order_status\",\"language\":\"ru\",\"params\":[\"12345\",\"завтра\"]}";
  build_ok("whatsapp", &cfg, &m, &r, url);
  assert_body(&r, WA_TPL);
  chan_req_free(&r);
  /* Open: the text, even with a template (free inside the window). */
  m.wa_window = 1;
  build_ok("whatsapp", &cfg, &m, &r, url);
  assert_headers(&r, "Content-Type: application/json", "Authorization: Bearer EAAG-token");
  assert_body(&r, WA_TEXT);
  chan_req_free(&r);
  /* Open: a template that would not do is not looked at. */
  m.wa_template = "{";
  build_ok("whatsapp", &cfg, &m, &r, url);
  assert_body(&r, WA_TEXT);
  chan_req_free(&r);
  /* Missing settings are still named first. */
  m.wa_window = 0;
  m.wa_template = NULL;
  cfg.token[0] = '\0';
  build_fails("whatsapp", &cfg, &m, KK_ENOENT, "token is not set");
}

KK_TEST(channel_whatsapp_build_errors) {
  struct chan_cfg cfg = wa_cfg();
  struct chan_msg m = msg(NULL, "hi");
  const char *bad[] = {"{", "[]", "{\"name\":\"x\"}", "{\"language\":\"ru\"}",
                       "{\"name\":1,\"language\":\"ru\"}",
                       "{\"name\":\"x\",\"language\":\"ru\",\"params\":\"a\"}",
                       "{\"name\":\"x\",\"language\":\"ru\",\"params\":[\"a\",1]}"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    m.wa_template = bad[i];
    build_fails("whatsapp", &cfg, &m, KK_EINVAL, "wa_template is not valid");
  }
  m.wa_template = NULL;
  cfg.phone_number_id[0] = '\0';
  build_fails("whatsapp", &cfg, &m, KK_ENOENT, "phone_number_id is not set");
  cfg = wa_cfg();
  cfg.token[0] = '\0';
  build_fails("whatsapp", &cfg, &m, KK_ENOENT, "token is not set");
}

KK_TEST(channel_email_build_plain) {
  struct chan_cfg cfg = email_cfg();
  struct chan_msg m = msg("ivan@example.com", "Ваш заказ готов\nЗаберите его до 20:00.\r\nСпасибо");
  struct chan_req r;
  build_ok("email", &cfg, &m, &r, "smtp://127.0.0.1:2525");
  ASSERT_EQ(r.nheaders, 0);
  ASSERT_STR_EQ(r.mail_from, "<noreply@kaskad.test>");
  ASSERT_STR_EQ(r.mail_rcpt, "<ivan@example.com>");
  ASSERT(r.username == NULL && r.password == NULL);
  assert_body(&r, EM_PLAIN);
  chan_req_free(&r);
}

KK_TEST(channel_email_build_full) {
  struct chan_cfg cfg = email_cfg();
  strcpy(cfg.sender, "Кафе Ромашка");
  strcpy(cfg.token, "smtp-password");
  struct chan_msg m = msg("ivan@example.com", "Итого 100 ₽");
  m.subject = "Чек";
  m.button_caption = "Оплатить";
  m.button_url = "https://pay.test/1";
  m.image = "https://img.test/a.png";
  struct chan_req r;
  build_ok("email", &cfg, &m, &r, "smtp://127.0.0.1:2525");
  ASSERT_STR_EQ(r.username, "noreply@kaskad.test");
  ASSERT_STR_EQ(r.password, "smtp-password");
  assert_body(&r, EM_FULL);
  chan_req_free(&r);
}

KK_TEST(channel_email_subject_cut) {
  struct chan_cfg cfg = email_cfg();
  char text[256] = "";
  for (int i = 0; i < 70; i++) strcat(text, "Ж");
  strcat(text, "\nrest");
  struct chan_msg m = msg("a@b", text);
  struct chan_req r;
  build_ok("email", &cfg, &m, &r, "smtp://127.0.0.1:2525");
  ASSERT(strstr(r.body, "\r\nSubject: " EM_LONG_SUBJ "\r\n") != NULL);
  chan_req_free(&r);
}

KK_TEST(channel_email_build_errors) {
  struct chan_cfg cfg = email_cfg();
  struct chan_msg m = msg("ivan@example.com", "hi");
  const char *bad[] = {"ivan", "@example.com", "ivan@", "a@b@c", "iv an@example.com",
                       "ivan@example.com\r\nBcc: x@y", "<ivan@example.com>", ""};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    m.address = bad[i];
    build_fails("email", &cfg, &m, KK_EINVAL, "email is not an e-mail address");
  }
  m.address = "ivan@example.com";
  cfg.smtp_url[0] = '\0';
  build_fails("email", &cfg, &m, KK_ENOENT, "smtp_url is not set");
  cfg = email_cfg();
  cfg.from[0] = '\0';
  build_fails("email", &cfg, &m, KK_ENOENT, "from is not set");
}

/* Settings that go into a URL's path or a header as they are: a stored bad
   value fails the build with a clear error and nothing is sent. */
KK_TEST(channel_path_values_checked) {
  struct chan_msg m = msg("123456789", "hi");
  struct chan_cfg tg = tg_cfg();
  strcpy(tg.token, "123:abc/../../admin");
  build_fails("telegram", &tg, &m, KK_EINVAL,
              "invalid_token: a Telegram bot token is digits, ':' and A-Z a-z 0-9 _ -");
  struct chan_req r;
  ASSERT_EQ(drv("telegram")->build_register(&tg, "https://kaskad.example/v1/hooks/telegram/x", &r),
            KK_EINVAL);
  chan_req_free(&r);
  strcpy(tg.token, "abc:def");
  ASSERT_EQ(drv("telegram")->check(&tg, NULL, 0), KK_EINVAL);
  strcpy(tg.token, "123456:ABC-def_GHI");
  ASSERT_EQ(drv("telegram")->check(&tg, NULL, 0), 0);

  struct chan_msg wm = msg(NULL, "hi");
  wm.to = "79161234567";
  wm.wa_window = 1;
  struct chan_cfg wa = wa_cfg();
  strcpy(wa.phone_number_id, "1/../../me");
  build_fails("whatsapp", &wa, &wm, KK_EINVAL, "invalid_phone_number_id: digits only");
  wa = wa_cfg();
  static const char *const versions_bad[] = {"v1/../x", "21.0", "v", "v21.", "v21.0.1", "v2x"};
  for (size_t i = 0; i < sizeof versions_bad / sizeof versions_bad[0]; i++) {
    strcpy(wa.api_version, versions_bad[i]);
    build_fails("whatsapp", &wa, &wm, KK_EINVAL, "invalid_api_version: like v21.0");
  }
  strcpy(wa.api_version, "v22");
  ASSERT_EQ(drv("whatsapp")->check(&wa, NULL, 0), 0);
  strcpy(wa.token, "EAAG token");
  ASSERT_EQ(drv("whatsapp")->check(&wa, NULL, 0), KK_EINVAL);

  struct chan_cfg vb = viber_cfg();
  strcpy(vb.token, "tok\r\nX-Injected: 1");
  ASSERT_EQ(drv("viber")->check(&vb, NULL, 0), KK_EINVAL);
  ASSERT_EQ(drv("viber")->build_register(&vb, "https://kaskad.example/v1/hooks/viber/x", &r),
            KK_EINVAL);
  chan_req_free(&r);
  struct chan_cfg gw = gw_cfg();
  strcpy(gw.token, "gw token");
  ASSERT_EQ(drv("telegram_gateway")->check(&gw, NULL, 0), KK_EINVAL);
  struct chan_cfg vk = vk_cfg();
  strcpy(vk.token, "vk1&v=5");
  ASSERT_EQ(drv("vk")->check(&vk, NULL, 0), KK_EINVAL);
  ASSERT(drv("email")->check == NULL);
}
