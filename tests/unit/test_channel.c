/*
 * test_channel.c - the channel drivers, byte for byte: the exact request of
 * every driver (method, URL, each header, the whole body) for plain and rich
 * messages, the classification of each documented provider answer, and the
 * verification of inbound callbacks (good and forged signatures, wrong
 * secrets, stale timestamps, malformed bodies, VK confirmation, WhatsApp
 * GET verification and the messages people send, which open WhatsApp's
 * window; inside it a text goes, outside it the template or nothing).
 * Expected bodies were produced independently (Python's json.dumps with
 * compact separators, urllib.parse.quote, base64, hmac).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "channel/chan_int.h"
#include "channel/channel.h"
#include "core/kk_crypto.h"
#include "core/kk_err.h"
#include "kk_test.h"

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
  "\"seen\",\"failed\",\"subscribed\",\"unsubscribed\",\"conversation_started\"]," \
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

static const struct chan_driver *drv(const char *name) {
  const struct chan_driver *d = chan_driver(name);
  if (d == NULL) kk_test_fail(__FILE__, __LINE__, "no driver %s", name);
  return d;
}

/* A message with the fields every test shares; the rest is NULL. */
static struct chan_msg msg(const char *address, const char *text) {
  struct chan_msg m;
  memset(&m, 0, sizeof m);
  m.attempt_id = 42;
  m.public_id = "msg_abc";
  m.to = "79161234567";
  m.address = address;
  m.text = text;
  return m;
}

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

static struct chan_result reply(const char *name, long status, const char *body) {
  struct chan_result res;
  memset(&res, 0x5a, sizeof res);
  drv(name)->parse_reply(status, body, strlen(body), NULL, &res);
  return res;
}

#define ASSERT_REPLY(name, status, body, want, id_or_error, retry)             \
  do {                                                                        \
    struct chan_result r_ = reply(name, status, body);                        \
    ASSERT_EQ(r_.outcome, want);                                              \
    ASSERT_EQ(r_.retry_after_ms, retry);                                      \
    if ((want) == CHAN_OK) ASSERT_STR_EQ(r_.provider_id, id_or_error);         \
    else ASSERT_STR_EQ(r_.error, id_or_error);                                \
  } while (0)

/* A fake inbound HTTP request: headers (case-insensitive) and query. */
struct fake {
  const char *h[8][2];
  int nh;
  const char *q[8][2];
  int nq;
};

static const char *fake_header(void *ctx, const char *name) {
  struct fake *f = ctx;
  for (int i = 0; i < f->nh; i++)
    if (strcasecmp(f->h[i][0], name) == 0) return f->h[i][1];
  return NULL;
}

static const char *fake_query(void *ctx, const char *name) {
  struct fake *f = ctx;
  for (int i = 0; i < f->nq; i++)
    if (strcmp(f->q[i][0], name) == 0) return f->q[i][1];
  return NULL;
}

static void fake_add_header(struct fake *f, const char *name, const char *value) {
  f->h[f->nh][0] = name;
  f->h[f->nh][1] = value;
  f->nh++;
}

static void fake_add_query(struct fake *f, const char *name, const char *value) {
  f->q[f->nq][0] = name;
  f->q[f->nq][1] = value;
  f->nq++;
}

#define NOW_MS 1763932810000LL

static struct chan_hook_in hook_in(struct fake *f, const char *method, const char *body) {
  struct chan_hook_in in = {method, body, strlen(body), fake_header, fake_query, f, NOW_MS};
  return in;
}

static int run_hook(const char *name, const struct chan_cfg *cfg, struct fake *f,
                    const char *method, const char *body, struct chan_hook_out *out) {
  struct chan_hook_in in = hook_in(f, method, body);
  memset(out, 0x5a, sizeof *out);
  return drv(name)->hook(cfg, &in, out);
}

/* ---- the table and the pieces ---------------------------------------------- */

KK_TEST(channel_driver_table) {
  int n = 0;
  const struct chan_driver *const *all = chan_drivers(&n);
  const char *order[] = {"vk", "viber", "telegram", "telegram_gateway", "whatsapp", "email", "sms"};
  ASSERT_EQ(n, 7);
  for (int i = 0; i < n; i++) {
    ASSERT_STR_EQ(all[i]->name, order[i]);
    ASSERT(chan_driver(order[i]) == all[i]);
  }
  ASSERT(chan_driver("fax") == NULL);
  ASSERT(chan_driver(NULL) == NULL);

  ASSERT_EQ(drv("vk")->reports, CHAN_SENT | CHAN_READ);
  ASSERT_EQ(drv("viber")->reports, CHAN_SENT | CHAN_DELIVERED | CHAN_READ);
  ASSERT_EQ(drv("telegram")->reports, CHAN_SENT);
  ASSERT_EQ(drv("telegram_gateway")->reports, CHAN_SENT | CHAN_DELIVERED | CHAN_READ);
  ASSERT_EQ(drv("whatsapp")->reports, CHAN_SENT | CHAN_DELIVERED | CHAN_READ);
  ASSERT_EQ(drv("email")->reports, CHAN_SENT);
  ASSERT_EQ(drv("sms")->reports, CHAN_SENT | CHAN_DELIVERED);

  ASSERT_STR_EQ(drv("vk")->address_field, "vk_id");
  ASSERT_STR_EQ(drv("viber")->address_field, "viber_id");
  ASSERT_EQ(drv("viber")->phone_fallback, 1);
  ASSERT_STR_EQ(drv("telegram")->address_field, "telegram_chat_id");
  ASSERT_STR_EQ(drv("email")->address_field, "email");
  ASSERT(drv("telegram_gateway")->address_field == NULL);
  ASSERT(drv("whatsapp")->address_field == NULL);
  ASSERT(drv("sms")->address_field == NULL);

  const struct chan_driver *sms = drv("sms");
  ASSERT(sms->build == NULL && sms->parse_reply == NULL && sms->hook == NULL &&
         sms->build_register == NULL);
  ASSERT(drv("email")->hook == NULL);
  ASSERT(drv("vk")->build_register == NULL);
  ASSERT(drv("whatsapp")->build_register == NULL);
  ASSERT(drv("telegram_gateway")->build_register == NULL);
  ASSERT(drv("viber")->build_register != NULL);
  ASSERT(drv("telegram")->build_register != NULL);
}

KK_TEST(channel_reports_text) {
  char buf[64];
  ASSERT_STR_EQ(chan_reports_text(CHAN_SENT, buf, sizeof buf), "sent");
  ASSERT_STR_EQ(chan_reports_text(CHAN_SENT | CHAN_READ, buf, sizeof buf), "sent and read");
  ASSERT_STR_EQ(chan_reports_text(CHAN_SENT | CHAN_DELIVERED, buf, sizeof buf),
                "sent and delivered");
  ASSERT_STR_EQ(chan_reports_text(CHAN_SENT | CHAN_DELIVERED | CHAN_READ, buf, sizeof buf),
                "sent, delivered and read");
  ASSERT_STR_EQ(chan_reports_text(0, buf, sizeof buf), "nothing");
  ASSERT_STR_EQ(chan_reports_text(CHAN_SENT | CHAN_DELIVERED | CHAN_READ, buf, 6), "sent,");
}

KK_TEST(channel_req_header_and_free) {
  struct chan_req r;
  memset(&r, 0, sizeof r);
  for (int i = 0; i < CHAN_MAX_HEADERS; i++) ASSERT_EQ(chan_req_header(&r, "X-N", "v"), 0);
  ASSERT_EQ(chan_req_header(&r, "X-N", "v"), KK_ENOSPC);
  ASSERT_EQ(r.nheaders, CHAN_MAX_HEADERS);
  ASSERT_STR_EQ(r.headers[7], "X-N: v");
  chan_req_free(&r);
  ASSERT_EQ(r.nheaders, 0);
  ASSERT(r.headers[0] == NULL);
  chan_req_free(&r);  /* twice is harmless */
  chan_req_free(NULL);
}

KK_TEST(channel_hmac_known_answer) {
  /* RFC 4231 test case 2. */
  const char *data = "what do ya want for nothing?";
  char hex[65];
  ASSERT_EQ(kk_hmac_sha256_hex("Jefe", 4, data, strlen(data), hex), 0);
  ASSERT_STR_EQ(hex, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}

/* ---- VK ------------------------------------------------------------------- */

static struct chan_cfg vk_cfg(void) {
  struct chan_cfg c;
  memset(&c, 0, sizeof c);
  strcpy(c.token, "vk1.a-token");
  strcpy(c.secret, "vk_secret");
  strcpy(c.confirmation, "a1b2c3d4");
  c.group_id = 229000001;
  return c;
}

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

KK_TEST(channel_vk_parse_reply) {
  ASSERT_REPLY("vk", 200, "{\"response\":4711}", CHAN_OK, "4711", 0);
  ASSERT_REPLY("vk", 200,
               "{\"error\":{\"error_code\":5,\"error_msg\":\"User authorization failed\"}}",
               CHAN_CONFIG, "5 the provider refused the account's settings (HTTP 200)", 0);
  ASSERT_REPLY("vk", 200,
               "{\"error\":{\"error_code\":6,\"error_msg\":\"Too many requests per second\"}}",
               CHAN_RETRY, "6 the provider asked to try again later (HTTP 200)", 1000);
  ASSERT_REPLY("vk", 200, "{\"error\":{\"error_code\":9,\"error_msg\":\"Flood control\"}}",
               CHAN_RETRY, "9 the provider asked to try again later (HTTP 200)", 1000);
  ASSERT_REPLY("vk", 200, "{\"error\":{\"error_code\":29,\"error_msg\":\"Rate limit reached\"}}",
               CHAN_RETRY, "29 the provider asked to try again later (HTTP 200)", 1000);
  ASSERT_REPLY("vk", 200, "{\"error\":{\"error_code\":10,\"error_msg\":\"Internal server error\"}}",
               CHAN_RETRY, "10 the provider asked to try again later (HTTP 200)", 0);
  const int fails[] = {900, 901, 902, 911, 914, 932, 943, 944, 100};
  for (size_t i = 0; i < sizeof fails / sizeof fails[0]; i++) {
    char body[128], want[80];
    snprintf(body, sizeof body, "{\"error\":{\"error_code\":%d,\"error_msg\":\"x\"}}", fails[i]);
    snprintf(want, sizeof want, "%d the provider refused the message (HTTP 200)", fails[i]);
    ASSERT_REPLY("vk", 200, body, CHAN_FAIL, want, 0);
  }
  ASSERT_REPLY("vk", 200,
               "{\"error\":{\"error_code\":901,\"error_msg\":\"Can't send messages for users "
               "without permission\",\"request_params\":[]}}",
               CHAN_FAIL, "901 the provider refused the message (HTTP 200)", 0);
  ASSERT_REPLY("vk", 200, "<html>", CHAN_FAIL, "unexpected answer 200", 0);
  ASSERT_REPLY("vk", 502, "", CHAN_RETRY, "unexpected answer 502", 0);
  ASSERT_REPLY("vk", 0, "", CHAN_RETRY, "unexpected answer 0", 0);
  ASSERT_REPLY("vk", 404, "{}", CHAN_FAIL, "unexpected answer 404", 0);
  ASSERT_REPLY("vk", 200, "{\"error\":{\"error_code\":5}}", CHAN_CONFIG, "5 the provider refused the account's settings (HTTP 200)", 0);

  /* Retry-After on an unexpected 429; NULL body. */
  struct chan_result res;
  drv("vk")->parse_reply(429, "", 0, "7", &res);
  ASSERT_EQ(res.outcome, CHAN_RETRY);
  ASSERT_EQ(res.retry_after_ms, 7000);
  drv("vk")->parse_reply(0, NULL, 0, NULL, &res);
  ASSERT_EQ(res.outcome, CHAN_RETRY);
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

/* Each false of the answer takes the next execute error; an error of the
   whole request is every send's. */
KK_TEST(channel_vk_batch_reply) {
  const struct chan_driver *d = drv("vk");
  struct chan_result res[4];
  const char *ok = "{\"response\":[101,false,103,false],\"execute_errors\":["
                   "{\"method\":\"messages.send\",\"error_code\":901,\"error_msg\":\"no permission\"},"
                   "{\"method\":\"messages.send\",\"error_code\":10,\"error_msg\":\"Internal\"}]}";
  d->parse_batch_reply(200, ok, strlen(ok), NULL, res, 4);
  ASSERT_EQ(res[0].outcome, CHAN_OK);
  ASSERT_STR_EQ(res[0].provider_id, "101");
  ASSERT_EQ(res[1].outcome, CHAN_FAIL);
  ASSERT_STR_EQ(res[1].error, "901 the provider refused the message (HTTP 200)");
  ASSERT_EQ(res[2].outcome, CHAN_OK);
  ASSERT_STR_EQ(res[2].provider_id, "103");
  ASSERT_EQ(res[3].outcome, CHAN_RETRY);
  ASSERT_STR_EQ(res[3].error, "10 the provider asked to try again later (HTTP 200)");
  const char *whole = "{\"error\":{\"error_code\":6,\"error_msg\":\"Too many requests per second\"}}";
  d->parse_batch_reply(200, whole, strlen(whole), NULL, res, 3);
  for (int i = 0; i < 3; i++) {
    ASSERT_EQ(res[i].outcome, CHAN_RETRY);
    ASSERT_EQ(res[i].retry_after_ms, 1000);
  }
  /* a count that does not match, an answer that is not JSON, no answer */
  const char *short_list = "{\"response\":[1]}";
  d->parse_batch_reply(200, short_list, strlen(short_list), NULL, res, 2);
  ASSERT_EQ(res[0].outcome, CHAN_FAIL);
  ASSERT_EQ(res[1].outcome, CHAN_FAIL);
  d->parse_batch_reply(502, "<html>", 6, NULL, res, 2);
  ASSERT_EQ(res[1].outcome, CHAN_RETRY);
  d->parse_batch_reply(0, NULL, 0, NULL, res, 2);
  ASSERT_EQ(res[0].outcome, CHAN_RETRY);
  /* a false with no error to go with it */
  const char *lone = "{\"response\":[false]}";
  d->parse_batch_reply(200, lone, strlen(lone), NULL, res, 1);
  ASSERT_EQ(res[0].outcome, CHAN_FAIL);
  ASSERT_STR_EQ(res[0].error, "execute gave no result for this message");
}

KK_TEST(channel_form_get) {
  const char *f = "a=1&message=Sale%2050%25+x&b=&bad=%4&z=%00";
  char *v = chan_form_get(f, strlen(f), "message");
  ASSERT_STR_EQ(v, "Sale 50% x");
  free(v);
  v = chan_form_get(f, strlen(f), "b");
  ASSERT_STR_EQ(v, "");
  free(v);
  ASSERT(chan_form_get(f, strlen(f), "bad") == NULL);
  ASSERT(chan_form_get(f, strlen(f), "z") == NULL);
  ASSERT(chan_form_get(f, strlen(f), "mess") == NULL);
  ASSERT(chan_form_get(f, strlen(f), "c") == NULL);
}

KK_TEST(channel_vk_error_not_echoed) {
  char body[1024];
  char msgtext[601];
  /* 300 two-byte characters: the 160-byte error must not split one. */
  for (int i = 0; i < 300; i++) memcpy(msgtext + 2 * i, "Ж", 2);
  msgtext[600] = '\0';
  snprintf(body, sizeof body, "{\"error\":{\"error_code\":901,\"error_msg\":\"%s\"}}", msgtext);
  struct chan_result r = reply("vk", 200, body);
  ASSERT_EQ(r.outcome, CHAN_FAIL);
  /* The account sees kaskad's words; the provider's go to the log, as
     printable ASCII cut to the field. */
  ASSERT_STR_EQ(r.error, "901 the provider refused the message (HTTP 200)");
  ASSERT_EQ(strlen(r.detail), sizeof r.detail - 1);
  for (const char *p = r.detail; *p; p++) ASSERT(*p == '?');
}

KK_TEST(channel_vk_hook_confirmation) {
  struct chan_cfg cfg = vk_cfg();
  struct fake f = {0};
  struct chan_hook_out out;
  ASSERT_EQ(run_hook("vk", &cfg, &f, "POST",
                     "{\"type\":\"confirmation\",\"group_id\":229000001}", &out), 0);
  ASSERT_EQ(out.http_status, 200);
  ASSERT_STR_EQ(out.reply, "a1b2c3d4");
  ASSERT_EQ(out.nstatus, 0);
  /* With the right secret too. */
  ASSERT_EQ(run_hook("vk", &cfg, &f, "POST",
                     "{\"type\":\"confirmation\",\"group_id\":229000001,\"secret\":\"vk_secret\"}",
                     &out), 0);
  ASSERT_STR_EQ(out.reply, "a1b2c3d4");
  /* A wrong secret, another community, no confirmation string. */
  ASSERT_EQ(run_hook("vk", &cfg, &f, "POST",
                     "{\"type\":\"confirmation\",\"group_id\":229000001,\"secret\":\"nope\"}",
                     &out), KK_EAUTH);
  ASSERT_EQ(out.http_status, 403);
  ASSERT_EQ(run_hook("vk", &cfg, &f, "POST", "{\"type\":\"confirmation\",\"group_id\":1}", &out),
            KK_EAUTH);
  ASSERT_EQ(out.http_status, 403);
  cfg.confirmation[0] = '\0';
  ASSERT_EQ(run_hook("vk", &cfg, &f, "POST",
                     "{\"type\":\"confirmation\",\"group_id\":229000001}", &out), KK_EAUTH);
  ASSERT_EQ(out.http_status, 403);
  /* group_id 0 in the settings accepts any community. */
  cfg = vk_cfg();
  cfg.group_id = 0;
  ASSERT_EQ(run_hook("vk", &cfg, &f, "POST", "{\"type\":\"confirmation\",\"group_id\":5}", &out),
            0);
  ASSERT_STR_EQ(out.reply, "a1b2c3d4");
}

KK_TEST(channel_vk_hook_events) {
  struct chan_cfg cfg = vk_cfg();
  struct fake f = {0};
  struct chan_hook_out out;
  ASSERT_EQ(run_hook("vk", &cfg, &f, "POST",
                     "{\"type\":\"message_read\",\"object\":{\"from_id\":12345,\"peer_id\":12345,"
                     "\"read_message_id\":4711},\"group_id\":229000001,\"event_id\":\"e1\","
                     "\"v\":\"5.199\",\"secret\":\"vk_secret\"}",
                     &out), 0);
  ASSERT_EQ(out.http_status, 200);
  ASSERT_STR_EQ(out.reply, "ok");
  ASSERT_EQ(out.nstatus, 1);
  ASSERT_STR_EQ(out.st[0].status, "read");
  ASSERT_STR_EQ(out.st[0].provider_id, "");
  ASSERT_STR_EQ(out.st[0].peer, "12345");
  ASSERT_EQ(out.st[0].read_upto, 4711);
  ASSERT_EQ(out.st[0].at, NOW_MS);

  /* from_id when there is no peer_id. */
  ASSERT_EQ(run_hook("vk", &cfg, &f, "POST",
                     "{\"type\":\"message_read\",\"object\":{\"from_id\":777,"
                     "\"read_message_id\":9},\"group_id\":229000001,\"secret\":\"vk_secret\"}",
                     &out), 0);
  ASSERT_EQ(out.nstatus, 1);
  ASSERT_STR_EQ(out.st[0].peer, "777");
  ASSERT_EQ(out.st[0].read_upto, 9);

  /* Other events: ok, no statuses. */
  ASSERT_EQ(run_hook("vk", &cfg, &f, "POST",
                     "{\"type\":\"message_new\",\"object\":{\"message\":{\"text\":\"hi\"}},"
                     "\"group_id\":229000001,\"secret\":\"vk_secret\"}",
                     &out), 0);
  ASSERT_STR_EQ(out.reply, "ok");
  ASSERT_EQ(out.nstatus, 0);
  ASSERT_EQ(run_hook("vk", &cfg, &f, "POST",
                     "{\"type\":\"message_allow\",\"object\":{\"user_id\":1,\"key\":\"k\"},"
                     "\"group_id\":229000001,\"secret\":\"vk_secret\"}",
                     &out), 0);
  ASSERT_EQ(out.nstatus, 0);
}

KK_TEST(channel_vk_hook_refusals) {
  struct chan_cfg cfg = vk_cfg();
  struct fake f = {0};
  struct chan_hook_out out;
  const char *read = "{\"type\":\"message_read\",\"object\":{\"peer_id\":1,\"read_message_id\":2},"
                     "\"group_id\":229000001,\"secret\":\"%s\"}";
  char body[256];
  snprintf(body, sizeof body, read, "wrong");
  ASSERT_EQ(run_hook("vk", &cfg, &f, "POST", body, &out), KK_EAUTH);
  ASSERT_EQ(out.http_status, 403);
  ASSERT_STR_EQ(out.reason, "secret does not match");
  ASSERT_EQ(out.nstatus, 0);
  /* No secret in the body. */
  ASSERT_EQ(run_hook("vk", &cfg, &f, "POST",
                     "{\"type\":\"message_new\",\"object\":{},\"group_id\":229000001}", &out),
            KK_EAUTH);
  ASSERT_STR_EQ(out.reason, "secret does not match");
  /* No secret in the settings: nothing but confirmation is accepted. */
  snprintf(body, sizeof body, read, "");
  cfg.secret[0] = '\0';
  ASSERT_EQ(run_hook("vk", &cfg, &f, "POST", body, &out), KK_EAUTH);
  ASSERT_EQ(out.http_status, 403);
  cfg = vk_cfg();
  /* Another community. */
  ASSERT_EQ(run_hook("vk", &cfg, &f, "POST",
                     "{\"type\":\"message_new\",\"group_id\":2,\"secret\":\"vk_secret\"}", &out),
            KK_EAUTH);
  /* Malformed. */
  const char *bad[] = {"", "{", "[]", "\"ok\"", "{\"group_id\":229000001}",
                       "{\"type\":5,\"group_id\":229000001}"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    ASSERT_EQ(run_hook("vk", &cfg, &f, "POST", bad[i], &out), KK_EPROTO);
    ASSERT_EQ(out.http_status, 400);
  }
  ASSERT_EQ(run_hook("vk", &cfg, &f, "GET", "", &out), KK_EPROTO);
  ASSERT_EQ(out.http_status, 400);
}

/* ---- Viber ---------------------------------------------------------------- */

static struct chan_cfg viber_cfg(void) {
  struct chan_cfg c;
  memset(&c, 0, sizeof c);
  strcpy(c.token, "viber-token");
  return c;
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

KK_TEST(channel_viber_parse_reply) {
  ASSERT_REPLY("viber", 200,
               "{\"status\":0,\"status_message\":\"ok\",\"message_token\":5741311803571721087,"
               "\"chat_hostname\":\"SN-CHAT-01_\"}",
               CHAN_OK, "5741311803571721087", 0);
  ASSERT_REPLY("viber", 200,
               "{\"status\":0,\"status_message\":\"ok\",\"message_token\":9223372036854775807}",
               CHAN_OK, "9223372036854775807", 0);
  ASSERT_REPLY("viber", 200, "{\"status\":12,\"status_message\":\"tooManyRequests\"}",
               CHAN_RETRY, "12 the provider asked to try again later (HTTP 200)", 1000);
  ASSERT_REPLY("viber", 200, "{\"status\":5,\"status_message\":\"receiverNotRegistered\"}",
               CHAN_FAIL, "5 the provider refused the message (HTTP 200)", 0);
  ASSERT_REPLY("viber", 200, "{\"status\":6,\"status_message\":\"receiverNotSubscribed\"}",
               CHAN_FAIL, "6 the provider refused the message (HTTP 200)", 0);
  ASSERT_REPLY("viber", 200, "{\"status\":11,\"status_message\":\"receiverNoSuitableDevice\"}",
               CHAN_FAIL, "11 the provider refused the message (HTTP 200)", 0);
  const int config[] = {2, 7, 8, 9, 15};
  for (size_t i = 0; i < sizeof config / sizeof config[0]; i++) {
    char body[128], want[80];
    snprintf(body, sizeof body, "{\"status\":%d,\"status_message\":\"m\"}", config[i]);
    snprintf(want, sizeof want, "%d the provider refused the account's settings (HTTP 200)", config[i]);
    ASSERT_REPLY("viber", 200, body, CHAN_CONFIG, want, 0);
  }
  ASSERT_REPLY("viber", 200, "{\"status\":3,\"status_message\":\"badData\"}", CHAN_FAIL,
               "3 the provider refused the message (HTTP 200)", 0);
  ASSERT_REPLY("viber", 429, "", CHAN_RETRY, "unexpected answer 429", 0);
  ASSERT_REPLY("viber", 503, "{\"status\":0,\"message_token\":1}", CHAN_RETRY,
               "unexpected answer 503", 0);
  ASSERT_REPLY("viber", 0, "", CHAN_RETRY, "unexpected answer 0", 0);
  ASSERT_REPLY("viber", 200, "{\"status\":0}", CHAN_FAIL, "unexpected answer 200", 0);
  ASSERT_REPLY("viber", 200, "not json", CHAN_FAIL, "unexpected answer 200", 0);
}

/* Signs body with key into hex[65] and puts it in f as header name. */
static void sign(struct fake *f, const char *name, const char *key, const char *body,
                 char hex[65]) {
  ASSERT_EQ(kk_hmac_sha256_hex(key, strlen(key), body, strlen(body), hex), 0);
  fake_add_header(f, name, hex);
}

/* Signs body as WhatsApp does into sig[80] ("sha256=<hex>") and puts it in
   f as X-Hub-Signature-256 (f keeps the pointer: sig must outlive it). */
static void wa_sign(struct fake *f, const char *secret, const char *body, char sig[80]) {
  char hex[65];
  ASSERT_EQ(kk_hmac_sha256_hex(secret, strlen(secret), body, strlen(body), hex), 0);
  snprintf(sig, 80, "sha256=%s", hex);
  fake_add_header(f, "X-Hub-Signature-256", sig);
}

KK_TEST(channel_viber_hook) {
  struct chan_cfg cfg = viber_cfg();
  struct chan_hook_out out;
  const char *seen = "{\"event\":\"seen\",\"timestamp\":1763932800123,\"message_token\":"
                     "5741311803571721087,\"user_id\":\"01234567890A=\"}";
  /* The fixed vector (Python hmac), in upper case. */
  struct fake f = {0};
  fake_add_header(&f, "x-viber-content-signature",
                  "7811E0A76D9DE02774F89DF993F841223777BA1EF935F7A2CF9F1C1D134435E2");
  ASSERT_EQ(run_hook("viber", &cfg, &f, "POST", seen, &out), 0);
  ASSERT_EQ(out.http_status, 200);
  ASSERT_STR_EQ(out.reply, "");
  ASSERT_EQ(out.nstatus, 1);
  ASSERT_STR_EQ(out.st[0].status, "read");
  ASSERT_STR_EQ(out.st[0].provider_id, "5741311803571721087");
  ASSERT_EQ(out.st[0].at, 1763932800123LL);

  const char *failed = "{\"event\":\"failed\",\"timestamp\":1763932800000,\"message_token\":"
                       "\"123\",\"user_id\":\"u\",\"desc\":\"failure description\"}";
  char hex[65];
  struct fake g = {0};
  sign(&g, "X-Viber-Content-Signature", "viber-token", failed, hex);
  ASSERT_EQ(run_hook("viber", &cfg, &g, "POST", failed, &out), 0);
  ASSERT_EQ(out.nstatus, 1);
  ASSERT_STR_EQ(out.st[0].status, "failed");
  ASSERT_STR_EQ(out.st[0].provider_id, "123");
  ASSERT_STR_EQ(out.st[0].error, "failure description");

  const char *delivered = "{\"event\":\"delivered\",\"message_token\":77}";
  struct fake h = {0};
  sign(&h, "X-Viber-Content-Signature", "viber-token", delivered, hex);
  ASSERT_EQ(run_hook("viber", &cfg, &h, "POST", delivered, &out), 0);
  ASSERT_EQ(out.nstatus, 1);
  ASSERT_STR_EQ(out.st[0].status, "delivered");
  ASSERT_EQ(out.st[0].at, NOW_MS);

  const char *expired = "{\"event\":\"expired\",\"message_token\":78,\"timestamp\":5}";
  struct fake e = {0};
  sign(&e, "X-Viber-Content-Signature", "viber-token", expired, hex);
  ASSERT_EQ(run_hook("viber", &cfg, &e, "POST", expired, &out), 0);
  ASSERT_STR_EQ(out.st[0].status, "expired");
  ASSERT_EQ(out.st[0].at, 5);

  const char *webhook = "{\"event\":\"webhook\",\"timestamp\":1,\"message_token\":1}";
  struct fake w = {0};
  sign(&w, "X-Viber-Content-Signature", "viber-token", webhook, hex);
  ASSERT_EQ(run_hook("viber", &cfg, &w, "POST", webhook, &out), 0);
  ASSERT_EQ(out.nstatus, 0);
}

KK_TEST(channel_viber_hook_refusals) {
  struct chan_cfg cfg = viber_cfg();
  struct chan_hook_out out;
  const char *body = "{\"event\":\"delivered\",\"message_token\":77}";
  char hex[65];
  /* Signed with another key. */
  struct fake f = {0};
  sign(&f, "X-Viber-Content-Signature", "other-token", body, hex);
  ASSERT_EQ(run_hook("viber", &cfg, &f, "POST", body, &out), KK_EAUTH);
  ASSERT_EQ(out.http_status, 403);
  ASSERT_EQ(out.nstatus, 0);
  /* No signature. */
  struct fake none = {0};
  ASSERT_EQ(run_hook("viber", &cfg, &none, "POST", body, &out), KK_EAUTH);
  ASSERT_EQ(out.http_status, 403);
  /* A correct signature of another body. */
  struct fake g = {0};
  sign(&g, "X-Viber-Content-Signature", "viber-token", "{}", hex);
  ASSERT_EQ(run_hook("viber", &cfg, &g, "POST", body, &out), KK_EAUTH);
  /* No token in the settings. */
  struct fake h = {0};
  sign(&h, "X-Viber-Content-Signature", "viber-token", body, hex);
  cfg.token[0] = '\0';
  ASSERT_EQ(run_hook("viber", &cfg, &h, "POST", body, &out), KK_EAUTH);
  ASSERT_EQ(out.http_status, 403);
  /* Signed but malformed. */
  cfg = viber_cfg();
  const char *bad[] = {"{\"event\":", "[1]", "{\"no_event\":1}"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    struct fake k = {0};
    sign(&k, "X-Viber-Content-Signature", "viber-token", bad[i], hex);
    ASSERT_EQ(run_hook("viber", &cfg, &k, "POST", bad[i], &out), KK_EPROTO);
    ASSERT_EQ(out.http_status, 400);
  }
}

/* ---- Telegram Bot API ----------------------------------------------------- */

static struct chan_cfg tg_cfg(void) {
  struct chan_cfg c;
  memset(&c, 0, sizeof c);
  strcpy(c.token, "123456:ABC-def_GHI");
  strcpy(c.secret, "tg_secret-1");
  return c;
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

KK_TEST(channel_telegram_parse_reply) {
  ASSERT_REPLY("telegram", 200,
               "{\"ok\":true,\"result\":{\"message_id\":321,\"chat\":{\"id\":1},\"date\":1,"
               "\"text\":\"hi\"}}",
               CHAN_OK, "321", 0);
  ASSERT_REPLY("telegram", 429,
               "{\"ok\":false,\"error_code\":429,\"description\":\"Too Many Requests: retry after "
               "17\",\"parameters\":{\"retry_after\":17}}",
               CHAN_RETRY, "429 flood control, try again later (HTTP 429)", 17000);
  ASSERT_REPLY("telegram", 429, "{\"ok\":false,\"error_code\":429,\"description\":\"Too Many\"}",
               CHAN_RETRY, "429 the provider asked to try again later (HTTP 429)", 1000);
  ASSERT_REPLY("telegram", 401,
               "{\"ok\":false,\"error_code\":401,\"description\":\"Unauthorized\"}",
               CHAN_CONFIG, "401 the provider refused the account's settings (HTTP 401)", 0);
  ASSERT_REPLY("telegram", 404, "{\"ok\":false,\"error_code\":404,\"description\":\"Not Found\"}",
               CHAN_CONFIG, "404 the provider refused the account's settings (HTTP 404)", 0);
  ASSERT_REPLY("telegram", 403,
               "{\"ok\":false,\"error_code\":403,\"description\":\"Forbidden: bot was blocked by "
               "the user\"}",
               CHAN_FAIL, "403 the person blocked the bot (HTTP 403)", 0);
  ASSERT_REPLY("telegram", 400,
               "{\"ok\":false,\"error_code\":400,\"description\":\"Bad Request: chat not found\"}",
               CHAN_FAIL, "400 no such chat (HTTP 400)", 0);
  ASSERT_REPLY("telegram", 502,
               "{\"ok\":false,\"error_code\":502,\"description\":\"Bad Gateway\"}", CHAN_RETRY,
               "502 the provider asked to try again later (HTTP 502)", 0);
  ASSERT_REPLY("telegram", 502, "<html>bad gateway</html>", CHAN_RETRY, "unexpected answer 502", 0);
  ASSERT_REPLY("telegram", 200, "{\"ok\":true,\"result\":true}", CHAN_FAIL,
               "unexpected answer 200", 0);
  ASSERT_REPLY("telegram", 0, "", CHAN_RETRY, "unexpected answer 0", 0);
}

KK_TEST(channel_telegram_hook) {
  struct chan_cfg cfg = tg_cfg();
  struct chan_hook_out out;
  const char *update = "{\"update_id\":10000,\"message\":{\"message_id\":1,\"text\":\"/start\"}}";
  struct fake f = {0};
  fake_add_header(&f, "X-Telegram-Bot-Api-Secret-Token", "tg_secret-1");
  ASSERT_EQ(run_hook("telegram", &cfg, &f, "POST", update, &out), 0);
  ASSERT_EQ(out.http_status, 200);
  ASSERT_STR_EQ(out.reply, "");
  ASSERT_EQ(out.nstatus, 0);
  ASSERT_EQ(run_hook("telegram", &cfg, &f, "POST", "{\"message\":{}}", &out), KK_EPROTO);
  ASSERT_EQ(out.http_status, 400);
  ASSERT_EQ(run_hook("telegram", &cfg, &f, "POST", "{\"update_id\":\"1\"}", &out), KK_EPROTO);
  ASSERT_EQ(run_hook("telegram", &cfg, &f, "POST", "nope", &out), KK_EPROTO);

  struct fake g = {0};
  fake_add_header(&g, "X-Telegram-Bot-Api-Secret-Token", "tg_secret-2");
  ASSERT_EQ(run_hook("telegram", &cfg, &g, "POST", update, &out), KK_EAUTH);
  ASSERT_EQ(out.http_status, 403);
  struct fake none = {0};
  ASSERT_EQ(run_hook("telegram", &cfg, &none, "POST", update, &out), KK_EAUTH);
  struct fake empty = {0};
  fake_add_header(&empty, "X-Telegram-Bot-Api-Secret-Token", "");
  cfg.secret[0] = '\0';
  ASSERT_EQ(run_hook("telegram", &cfg, &empty, "POST", update, &out), KK_EAUTH);
  ASSERT_EQ(out.http_status, 403);
}

/* ---- Telegram Gateway ----------------------------------------------------- */

static struct chan_cfg gw_cfg(void) {
  struct chan_cfg c;
  memset(&c, 0, sizeof c);
  strcpy(c.token, "gw-token");
  return c;
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

KK_TEST(channel_tggw_parse_reply) {
  ASSERT_REPLY("telegram_gateway", 200,
               "{\"ok\":true,\"result\":{\"request_id\":\"eWc9Qx\",\"phone_number\":\"+7916\","
               "\"request_cost\":0.01,\"delivery_status\":{\"status\":\"sent\",\"updated_at\":1}}}",
               CHAN_OK, "eWc9Qx", 0);
  ASSERT_REPLY("telegram_gateway", 200, "{\"ok\":false,\"error\":\"ACCESS_TOKEN_INVALID\"}",
               CHAN_CONFIG, "ACCESS_TOKEN_INVALID (HTTP 200)", 0);
  ASSERT_REPLY("telegram_gateway", 401, "{\"ok\":false,\"error\":\"ACCESS_TOKEN_REQUIRED\"}",
               CHAN_CONFIG, "ACCESS_TOKEN_REQUIRED (HTTP 401)", 0);
  ASSERT_REPLY("telegram_gateway", 200, "{\"ok\":false,\"error\":\"FLOOD_WAIT_17\"}", CHAN_RETRY,
               "FLOOD_WAIT_17 (HTTP 200)", 17000);
  ASSERT_REPLY("telegram_gateway", 200, "{\"ok\":false,\"error\":\"FLOOD_WAIT\"}", CHAN_RETRY,
               "FLOOD_WAIT (HTTP 200)", 0);
  ASSERT_REPLY("telegram_gateway", 429, "{\"ok\":false,\"error\":\"TOO_MANY\"}", CHAN_RETRY,
               "TOO_MANY (HTTP 429)", 0);
  ASSERT_REPLY("telegram_gateway", 429, "", CHAN_RETRY, "unexpected answer 429", 0);
  ASSERT_REPLY("telegram_gateway", 200, "{\"ok\":false,\"error\":\"PHONE_NUMBER_INVALID\"}",
               CHAN_FAIL, "PHONE_NUMBER_INVALID (HTTP 200)", 0);
  ASSERT_REPLY("telegram_gateway", 400, "{\"ok\":false,\"error\":\"PHONE_NUMBER_NOT_AVAILABLE\"}",
               CHAN_FAIL, "PHONE_NUMBER_NOT_AVAILABLE (HTTP 400)", 0);
  ASSERT_REPLY("telegram_gateway", 500, "{\"ok\":false,\"error\":\"INTERNAL\"}", CHAN_RETRY,
               "unexpected answer 500", 0);
  ASSERT_REPLY("telegram_gateway", 0, "", CHAN_RETRY, "unexpected answer 0", 0);
  ASSERT_REPLY("telegram_gateway", 200, "{\"ok\":true,\"result\":{}}", CHAN_FAIL,
               "unexpected answer 200", 0);
  ASSERT_REPLY("telegram_gateway", 400, "{\"ok\":false,\"error\":\"\"}", CHAN_FAIL,
               "unexpected answer 400", 0);
}

/* Signs a Gateway report: X-Request-Timestamp ts and its signature. */
static void gw_sign(struct fake *f, const char *token, const char *ts, const char *body,
                    char hex[65]) {
  uint8_t key[32], mac[32];
  kk_sha256(token, strlen(token), key);
  const void *parts[3] = {ts, "\n", body};
  size_t lens[3] = {strlen(ts), 1, strlen(body)};
  ASSERT_EQ(kk_hmac_sha256(key, sizeof key, parts, lens, 3, mac), 0);
  kk_hex(mac, sizeof mac, hex);
  fake_add_header(f, "X-Request-Timestamp", ts);
  fake_add_header(f, "X-Request-Signature", hex);
}

KK_TEST(channel_tggw_hook) {
  struct chan_cfg cfg = gw_cfg();
  struct chan_hook_out out;
  const char *read = "{\"request_id\":\"eWc9Qx\",\"delivery_status\":{\"status\":\"read\","
                     "\"updated_at\":1763932800}}";
  /* The fixed vector (Python hmac over SHA-256("gw-token")). */
  struct fake f = {0};
  fake_add_header(&f, "X-Request-Timestamp", "1763932810");
  fake_add_header(&f, "X-Request-Signature",
                  "f1ff89a9e47bb6a295c6de1a009958f7f73a55e1c99bbd147b390e2be97c81b6");
  ASSERT_EQ(run_hook("telegram_gateway", &cfg, &f, "POST", read, &out), 0);
  ASSERT_EQ(out.http_status, 200);
  ASSERT_STR_EQ(out.reply, "");
  ASSERT_EQ(out.nstatus, 1);
  ASSERT_STR_EQ(out.st[0].provider_id, "eWc9Qx");
  ASSERT_STR_EQ(out.st[0].status, "read");
  ASSERT_EQ(out.st[0].at, 1763932800000LL);

  const char *states[][2] = {{"sent", "sent"}, {"delivered", "delivered"},
                             {"expired", "expired"}, {"revoked", "failed"}};
  for (size_t i = 0; i < 4; i++) {
    char body[200], hex[65];
    snprintf(body, sizeof body,
             "{\"request_id\":\"r%zu\",\"delivery_status\":{\"status\":\"%s\"}}", i, states[i][0]);
    struct fake g = {0};
    gw_sign(&g, "gw-token", "1763932700", body, hex);
    ASSERT_EQ(run_hook("telegram_gateway", &cfg, &g, "POST", body, &out), 0);
    ASSERT_EQ(out.nstatus, 1);
    ASSERT_STR_EQ(out.st[0].status, states[i][1]);
    ASSERT_EQ(out.st[0].at, NOW_MS);
    if (i == 3) ASSERT_STR_EQ(out.st[0].error, "revoked");
  }

  /* No delivery_status: verified, nothing to apply. */
  const char *bare = "{\"request_id\":\"x\",\"verification_status\":{\"status\":\"code_valid\"}}";
  char hex[65];
  struct fake h = {0};
  gw_sign(&h, "gw-token", "1763932810", bare, hex);
  ASSERT_EQ(run_hook("telegram_gateway", &cfg, &h, "POST", bare, &out), 0);
  ASSERT_EQ(out.nstatus, 0);
}

KK_TEST(channel_tggw_hook_refusals) {
  struct chan_cfg cfg = gw_cfg();
  struct chan_hook_out out;
  const char *body = "{\"request_id\":\"eWc9Qx\",\"delivery_status\":{\"status\":\"read\"}}";
  char hex[65];
  /* Forged: another token. */
  struct fake f = {0};
  gw_sign(&f, "other", "1763932810", body, hex);
  ASSERT_EQ(run_hook("telegram_gateway", &cfg, &f, "POST", body, &out), KK_EAUTH);
  ASSERT_EQ(out.http_status, 403);
  /* Signed with the token itself instead of its SHA-256. */
  struct fake g = {0};
  char msgbuf[256];
  snprintf(msgbuf, sizeof msgbuf, "1763932810\n%s", body);
  ASSERT_EQ(kk_hmac_sha256_hex("gw-token", 8, msgbuf, strlen(msgbuf), hex), 0);
  fake_add_header(&g, "X-Request-Timestamp", "1763932810");
  fake_add_header(&g, "X-Request-Signature", hex);
  ASSERT_EQ(run_hook("telegram_gateway", &cfg, &g, "POST", body, &out), KK_EAUTH);
  /* Stale and future timestamps, correctly signed. */
  struct fake s = {0};
  gw_sign(&s, "gw-token", "1763932509", body, hex);
  ASSERT_EQ(run_hook("telegram_gateway", &cfg, &s, "POST", body, &out), KK_EAUTH);
  ASSERT_EQ(out.http_status, 403);
  ASSERT_STR_EQ(out.reason, "stale timestamp");
  struct fake edge = {0};
  gw_sign(&edge, "gw-token", "1763932510", body, hex);
  ASSERT_EQ(run_hook("telegram_gateway", &cfg, &edge, "POST", body, &out), 0);
  struct fake fut = {0};
  gw_sign(&fut, "gw-token", "1763933111", body, hex);
  ASSERT_EQ(run_hook("telegram_gateway", &cfg, &fut, "POST", body, &out), KK_EAUTH);
  ASSERT_STR_EQ(out.reason, "stale timestamp");
  /* Missing headers, a timestamp that is not a number. */
  struct fake none = {0};
  ASSERT_EQ(run_hook("telegram_gateway", &cfg, &none, "POST", body, &out), KK_EAUTH);
  struct fake nots = {0};
  gw_sign(&nots, "gw-token", "1763932810", body, hex);
  nots.h[0][1] = "+1763932810";
  ASSERT_EQ(run_hook("telegram_gateway", &cfg, &nots, "POST", body, &out), KK_EAUTH);
  /* No token in the settings. */
  struct fake t = {0};
  gw_sign(&t, "gw-token", "1763932810", body, hex);
  cfg.token[0] = '\0';
  ASSERT_EQ(run_hook("telegram_gateway", &cfg, &t, "POST", body, &out), KK_EAUTH);
  cfg = gw_cfg();
  /* Signed but malformed. */
  const char *bad[] = {"{\"delivery_status\":{\"status\":\"read\"}}", "{", "[]",
                       "{\"request_id\":5}"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    struct fake k = {0};
    gw_sign(&k, "gw-token", "1763932810", bad[i], hex);
    ASSERT_EQ(run_hook("telegram_gateway", &cfg, &k, "POST", bad[i], &out), KK_EPROTO);
    ASSERT_EQ(out.http_status, 400);
  }
}

/* ---- WhatsApp ------------------------------------------------------------- */

static struct chan_cfg wa_cfg(void) {
  struct chan_cfg c;
  memset(&c, 0, sizeof c);
  strcpy(c.token, "EAAG-token");
  strcpy(c.secret, "app-secret");
  strcpy(c.phone_number_id, "106540352242922");
  strcpy(c.verify_token, "verify-me");
  return c;
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

KK_TEST(channel_whatsapp_parse_reply) {
  ASSERT_REPLY("whatsapp", 200,
               "{\"messaging_product\":\"whatsapp\",\"contacts\":[{\"input\":\"79161234567\","
               "\"wa_id\":\"79161234567\"}],"
               "\"messages\":[{\"id\":\"wamid.HBgLNzkxNjEyMzQ1NjcVAgARGBI=\"}]}",
               CHAN_OK, "wamid.HBgLNzkxNjEyMzQ1NjcVAgARGBI=", 0);
  const int retry[] = {130429, 131056, 131048, 80007};
  for (size_t i = 0; i < 4; i++) {
    char body[160], want[80];
    snprintf(body, sizeof body, "{\"error\":{\"message\":\"limit\",\"type\":\"OAuthException\","
             "\"code\":%d,\"fbtrace_id\":\"A\"}}", retry[i]);
    snprintf(want, sizeof want, "%d the provider asked to try again later (HTTP 400)", retry[i]);
    ASSERT_REPLY("whatsapp", 400, body, CHAN_RETRY, want, 0);
  }
  ASSERT_REPLY("whatsapp", 401,
               "{\"error\":{\"message\":\"Invalid OAuth access token\",\"code\":190}}",
               CHAN_CONFIG, "190 the provider refused the account's settings (HTTP 401)", 0);
  ASSERT_REPLY("whatsapp", 400, "{\"error\":{\"message\":\"AuthException\",\"code\":0}}",
               CHAN_CONFIG, "0 the provider refused the account's settings (HTTP 400)", 0);
  ASSERT_REPLY("whatsapp", 401, "{\"error\":{\"message\":\"x\",\"code\":10}}", CHAN_CONFIG,
               "10 the provider refused the account's settings (HTTP 401)", 0);
  ASSERT_REPLY("whatsapp", 429, "{\"error\":{\"message\":\"slow down\",\"code\":4}}", CHAN_RETRY,
               "4 the provider asked to try again later (HTTP 429)", 0);
  /* Re-engagement (the window closed before a text arrived): the step fails
     at once, never retried. */
  ASSERT_REPLY("whatsapp", 400,
               "{\"error\":{\"message\":\"(#131047) Re-engagement message\","
               "\"type\":\"OAuthException\",\"code\":131047,\"error_data\":{\"details\":"
               "\"Message failed to send because more than 24 hours have passed since the "
               "customer last replied to this number.\"},\"fbtrace_id\":\"A\"}}",
               CHAN_FAIL, "131047 the provider refused the message (HTTP 400)", 0);
  const int fail[] = {131047, 131026, 131049, 132000, 132001, 100, 368};
  for (size_t i = 0; i < sizeof fail / sizeof fail[0]; i++) {
    char body[160], want[80];
    snprintf(body, sizeof body, "{\"error\":{\"message\":\"no\",\"code\":%d}}", fail[i]);
    snprintf(want, sizeof want, "%d the provider refused the message (HTTP 400)", fail[i]);
    ASSERT_REPLY("whatsapp", 400, body, CHAN_FAIL, want, 0);
  }
  ASSERT_REPLY("whatsapp", 500, "{\"error\":{\"message\":\"x\",\"code\":1}}", CHAN_RETRY,
               "unexpected answer 500", 0);
  ASSERT_REPLY("whatsapp", 0, "", CHAN_RETRY, "unexpected answer 0", 0);
  ASSERT_REPLY("whatsapp", 200, "{\"messages\":[]}", CHAN_FAIL, "unexpected answer 200", 0);
  ASSERT_REPLY("whatsapp", 429, "", CHAN_RETRY, "unexpected answer 429", 0);
}

KK_TEST(channel_whatsapp_hook_verify) {
  struct chan_cfg cfg = wa_cfg();
  struct chan_hook_out out;
  struct fake f = {0};
  fake_add_query(&f, "hub.mode", "subscribe");
  fake_add_query(&f, "hub.verify_token", "verify-me");
  fake_add_query(&f, "hub.challenge", "1158201444");
  ASSERT_EQ(run_hook("whatsapp", &cfg, &f, "GET", "", &out), 0);
  ASSERT_EQ(out.http_status, 200);
  ASSERT_STR_EQ(out.reply, "1158201444");
  ASSERT_EQ(out.nstatus, 0);

  f.q[1][1] = "verify-you";
  ASSERT_EQ(run_hook("whatsapp", &cfg, &f, "GET", "", &out), KK_EAUTH);
  ASSERT_EQ(out.http_status, 403);
  f.q[1][1] = "verify-me";
  f.q[0][1] = "unsubscribe";
  ASSERT_EQ(run_hook("whatsapp", &cfg, &f, "GET", "", &out), KK_EAUTH);
  f.q[0][1] = "subscribe";
  f.q[2][1] = "bad\nchallenge";
  ASSERT_EQ(run_hook("whatsapp", &cfg, &f, "GET", "", &out), KK_EPROTO);
  ASSERT_EQ(out.http_status, 400);
  f.q[2][1] = "";
  ASSERT_EQ(run_hook("whatsapp", &cfg, &f, "GET", "", &out), KK_EPROTO);
  f.q[2][1] = "1158201444";
  cfg.verify_token[0] = '\0';
  f.q[1][1] = "";
  ASSERT_EQ(run_hook("whatsapp", &cfg, &f, "GET", "", &out), KK_EAUTH);
  ASSERT_EQ(out.http_status, 403);
  struct fake none = {0};
  cfg = wa_cfg();
  ASSERT_EQ(run_hook("whatsapp", &cfg, &none, "GET", "", &out), KK_EAUTH);
}

static const char wa_statuses[] =
    "{\"object\":\"whatsapp_business_account\",\"entry\":[{\"id\":\"1\",\"changes\":[{\"value\":"
    "{\"messaging_product\":\"whatsapp\",\"metadata\":{},\"statuses\":["
    "{\"id\":\"wamid.A\",\"status\":\"delivered\",\"timestamp\":\"1763932800\","
    "\"recipient_id\":\"79161234567\",\"pricing\":{\"billable\":true}},"
    "{\"id\":\"wamid.B\",\"status\":\"failed\",\"timestamp\":1763932801,\"recipient_id\":\"7\","
    "\"errors\":[{\"code\":131026,\"title\":\"Message undeliverable\"}]},"
    "{\"id\":\"wamid.C\",\"status\":\"deleted\",\"timestamp\":\"1\"},"
    "{\"id\":\"wamid.D\",\"status\":\"read\"}]},\"field\":\"messages\"}]},"
    "{\"changes\":[{\"value\":{\"statuses\":[{\"id\":\"wamid.E\",\"status\":\"sent\","
    "\"timestamp\":\"x\"}]}}]}]}";

KK_TEST(channel_whatsapp_hook_statuses) {
  struct chan_cfg cfg = wa_cfg();
  struct chan_hook_out out;
  char hex[65], sig[80];
  ASSERT_EQ(kk_hmac_sha256_hex("app-secret", 10, wa_statuses, strlen(wa_statuses), hex), 0);
  snprintf(sig, sizeof sig, "sha256=%s", hex);
  struct fake f = {0};
  fake_add_header(&f, "X-Hub-Signature-256", sig);
  ASSERT_EQ(run_hook("whatsapp", &cfg, &f, "POST", wa_statuses, &out), 0);
  ASSERT_EQ(out.http_status, 200);
  ASSERT_STR_EQ(out.reply, "");
  ASSERT_EQ(out.nstatus, 4);
  ASSERT_STR_EQ(out.st[0].provider_id, "wamid.A");
  ASSERT_STR_EQ(out.st[0].status, "delivered");
  ASSERT_EQ(out.st[0].at, 1763932800000LL);
  ASSERT_STR_EQ(out.st[1].provider_id, "wamid.B");
  ASSERT_STR_EQ(out.st[1].status, "failed");
  ASSERT_EQ(out.st[1].at, 1763932801000LL);
  ASSERT_STR_EQ(out.st[1].error, "131026 Message undeliverable");
  ASSERT_STR_EQ(out.st[2].provider_id, "wamid.D");
  ASSERT_STR_EQ(out.st[2].status, "read");
  ASSERT_EQ(out.st[2].at, NOW_MS);
  ASSERT_STR_EQ(out.st[3].provider_id, "wamid.E");
  ASSERT_STR_EQ(out.st[3].status, "sent");
  ASSERT_EQ(out.st[3].at, NOW_MS);
  ASSERT_EQ(out.ninbound, 0);

  /* Upper-case hex is accepted too. */
  for (char *p = sig + 7; *p; p++)
    if (*p >= 'a' && *p <= 'f') *p = (char)(*p - 'a' + 'A');
  ASSERT_EQ(run_hook("whatsapp", &cfg, &f, "POST", wa_statuses, &out), 0);
  ASSERT_EQ(out.nstatus, 4);
}

KK_TEST(channel_whatsapp_hook_many) {
  /* 40 statuses: the first 32 are kept. */
  struct chan_cfg cfg = wa_cfg();
  char body[8192];
  size_t n = (size_t)snprintf(body, sizeof body,
                              "{\"entry\":[{\"changes\":[{\"value\":{\"statuses\":[");
  for (int i = 0; i < 40; i++)
    n += (size_t)snprintf(body + n, sizeof body - n, "%s{\"id\":\"w%d\",\"status\":\"read\"}",
                          i ? "," : "", i);
  snprintf(body + n, sizeof body - n, "]}}]}]}");
  char sig[80];
  struct fake f = {0};
  wa_sign(&f, "app-secret", body, sig);
  struct chan_hook_out out;
  ASSERT_EQ(run_hook("whatsapp", &cfg, &f, "POST", body, &out), 0);
  ASSERT_EQ(out.nstatus, CHAN_HOOK_MAX_STATUS);
  ASSERT_STR_EQ(out.st[31].provider_id, "w31");
}

/* Messages people sent, beside a status, in two entries: what opens the window. */
static const char wa_messages[] =
    "{\"object\":\"whatsapp_business_account\",\"entry\":[{\"id\":\"1\",\"changes\":[{"
    "\"field\":\"messages\",\"value\":{\"messaging_product\":\"whatsapp\",\"metadata\":"
    "{\"display_phone_number\":\"15550001055\",\"phone_number_id\":\"1055\"},"
    "\"contacts\":[{\"profile\":{\"name\":\"Anna\"},\"wa_id\":\"79161234567\"}],"
    "\"messages\":[{\"from\":\"79161234567\",\"id\":\"wamid.IN1\",\"timestamp\":"
    "\"1763932700\",\"type\":\"text\",\"text\":{\"body\":\"Привет\"}},"
    "{\"from\":\"4915112345678\",\"id\":\"wamid.IN2\",\"timestamp\":1763932705,"
    "\"type\":\"image\",\"image\":{\"id\":\"1\"}},"
    "{\"from\":\"+79161234568\",\"timestamp\":\"1763932706\"},"
    "{\"from\":\"7916\",\"timestamp\":\"1763932706\"},"
    "{\"from\":\"0791612345678\",\"timestamp\":\"1763932706\"},"
    "{\"from\":79161234569,\"timestamp\":\"1763932706\"},"
    "{\"id\":\"wamid.IN3\",\"timestamp\":\"1763932706\"}],"
    "\"statuses\":[{\"id\":\"wamid.A\",\"status\":\"read\",\"timestamp\":\"1763932800\"}]}}]},"
    "{\"changes\":[{\"value\":{\"messages\":[{\"from\":\"79161234568\"},"
    "{\"from\":\"79161234570\",\"timestamp\":\"1763999999\"},"
    "{\"from\":\"79161234571\",\"timestamp\":\"soon\"}]}}]}]}";

KK_TEST(channel_whatsapp_hook_messages) {
  struct chan_cfg cfg = wa_cfg();
  struct chan_hook_out out;
  char sig[80];
  struct fake f = {0};
  wa_sign(&f, "app-secret", wa_messages, sig);
  ASSERT_EQ(run_hook("whatsapp", &cfg, &f, "POST", wa_messages, &out), 0);
  ASSERT_EQ(out.http_status, 200);
  ASSERT_STR_EQ(out.reply, "");
  ASSERT_EQ(out.nstatus, 1);
  ASSERT_STR_EQ(out.st[0].provider_id, "wamid.A");
  /* Phones as kaskad writes them (digits, 8 to 15, no leading 0); any type. */
  ASSERT_EQ(out.ninbound, 5);
  ASSERT_STR_EQ(out.in[0].from, "79161234567");
  ASSERT_EQ(out.in[0].at, 1763932700000LL);
  ASSERT_STR_EQ(out.in[1].from, "4915112345678");
  ASSERT_EQ(out.in[1].at, 1763932705000LL);
  /* No time: now. A time ahead of now: now. A bad time: now. */
  ASSERT_STR_EQ(out.in[2].from, "79161234568");
  ASSERT_EQ(out.in[2].at, NOW_MS);
  ASSERT_STR_EQ(out.in[3].from, "79161234570");
  ASSERT_EQ(out.in[3].at, NOW_MS);
  ASSERT_STR_EQ(out.in[4].from, "79161234571");
  ASSERT_EQ(out.in[4].at, NOW_MS);

  /* A forged one gives nothing. */
  struct fake g = {0};
  fake_add_header(&g, "X-Hub-Signature-256", "sha256=00");
  ASSERT_EQ(run_hook("whatsapp", &cfg, &g, "POST", wa_messages, &out), KK_EAUTH);
  ASSERT_EQ(out.ninbound, 0);
  ASSERT_EQ(out.nstatus, 0);
}

KK_TEST(channel_whatsapp_hook_many_messages) {
  /* 40 messages: the first 32 are kept. */
  struct chan_cfg cfg = wa_cfg();
  char body[8192];
  size_t n = (size_t)snprintf(body, sizeof body,
                              "{\"entry\":[{\"changes\":[{\"value\":{\"messages\":[");
  for (int i = 0; i < 40; i++)
    n += (size_t)snprintf(body + n, sizeof body - n,
                          "%s{\"from\":\"791600000%02d\",\"timestamp\":\"1763932700\"}",
                          i ? "," : "", i);
  snprintf(body + n, sizeof body - n, "]}}]}]}");
  char sig[80];
  struct fake f = {0};
  wa_sign(&f, "app-secret", body, sig);
  struct chan_hook_out out;
  ASSERT_EQ(run_hook("whatsapp", &cfg, &f, "POST", body, &out), 0);
  ASSERT_EQ(out.ninbound, CHAN_HOOK_MAX_INBOUND);
  ASSERT_STR_EQ(out.in[31].from, "79160000031");
  ASSERT_EQ(out.nstatus, 0);
}

KK_TEST(channel_whatsapp_hook_refusals) {
  struct chan_cfg cfg = wa_cfg();
  struct chan_hook_out out;
  char hex[65], sig[80];
  /* Forged with another secret. */
  ASSERT_EQ(kk_hmac_sha256_hex("other", 5, wa_statuses, strlen(wa_statuses), hex), 0);
  snprintf(sig, sizeof sig, "sha256=%s", hex);
  struct fake f = {0};
  fake_add_header(&f, "X-Hub-Signature-256", sig);
  ASSERT_EQ(run_hook("whatsapp", &cfg, &f, "POST", wa_statuses, &out), KK_EAUTH);
  ASSERT_EQ(out.http_status, 403);
  ASSERT_EQ(out.nstatus, 0);
  /* The right digest without its prefix. */
  ASSERT_EQ(kk_hmac_sha256_hex("app-secret", 10, wa_statuses, strlen(wa_statuses), hex), 0);
  struct fake g = {0};
  fake_add_header(&g, "X-Hub-Signature-256", hex);
  ASSERT_EQ(run_hook("whatsapp", &cfg, &g, "POST", wa_statuses, &out), KK_EAUTH);
  struct fake none = {0};
  ASSERT_EQ(run_hook("whatsapp", &cfg, &none, "POST", wa_statuses, &out), KK_EAUTH);
  /* No app secret in the settings. */
  snprintf(sig, sizeof sig, "sha256=%s", hex);
  struct fake h = {0};
  fake_add_header(&h, "X-Hub-Signature-256", sig);
  cfg.secret[0] = '\0';
  ASSERT_EQ(run_hook("whatsapp", &cfg, &h, "POST", wa_statuses, &out), KK_EAUTH);
  ASSERT_EQ(out.http_status, 403);
  /* Signed but not a JSON object. */
  cfg = wa_cfg();
  const char *bad[] = {"{\"entry\":", "[]", ""};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    struct fake k = {0};
    wa_sign(&k, "app-secret", bad[i], sig);
    ASSERT_EQ(run_hook("whatsapp", &cfg, &k, "POST", bad[i], &out), KK_EPROTO);
    ASSERT_EQ(out.http_status, 400);
  }
  ASSERT_EQ(run_hook("whatsapp", &cfg, &none, "PUT", "", &out), KK_EPROTO);
}

/* ---- e-mail --------------------------------------------------------------- */

static struct chan_cfg email_cfg(void) {
  struct chan_cfg c;
  memset(&c, 0, sizeof c);
  strcpy(c.smtp_url, "smtp://127.0.0.1:2525");
  strcpy(c.from, "noreply@kaskad.test");
  return c;
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

KK_TEST(channel_email_parse_reply) {
  ASSERT_REPLY("email", 250, "250 2.0.0 Ok: queued as 12345", CHAN_OK, "", 0);
  ASSERT_REPLY("email", 535, "535 5.7.8 Authentication credentials invalid\r\n", CHAN_CONFIG,
               "535 5.7.8 the mail server refused the login", 0);
  ASSERT_REPLY("email", 530, "Authentication required", CHAN_CONFIG,
               "530 the mail server refused the login", 0);
  ASSERT_REPLY("email", 550, "No such user\r\nmore", CHAN_FAIL,
               "550 the mail server refused the message", 0);
  ASSERT_STR_EQ(reply("email", 550, "No such user\r\nmore").detail, "No such user");
  ASSERT_REPLY("email", 552, "", CHAN_FAIL, "552 the mail server refused the message", 0);
  ASSERT_EQ(reply("email", 451, "try later").outcome, CHAN_RETRY);
  ASSERT_EQ(reply("email", 421, "").outcome, CHAN_RETRY);
  ASSERT_REPLY("email", 0, "", CHAN_RETRY, "unexpected answer 0", 0);
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
