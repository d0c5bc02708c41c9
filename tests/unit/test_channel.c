/*
 * test_channel.c - the channel drivers' table and shared pieces, and the
 * classification of each documented provider answer (accepted, retry after
 * a hint or backoff, permanent, settings error), provider text never echoed
 * to the account.
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

/* ---- helpers -------------------------------------------------------------- */

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
  /* SMS alone is sent by another module (dispatch/ over SMPP). */
  for (int i = 0; i < n; i++) ASSERT_EQ(all[i]->external, strcmp(all[i]->name, "sms") == 0);
  for (int i = 0; i < n; i++) ASSERT_EQ(chan_driver_index(order[i]), i);
  ASSERT_EQ(chan_driver_index("fax"), KK_ENOENT);
  ASSERT(n <= CHAN_MAX_DRIVERS - 1);   /* a spare slot for counters of unknown names */
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

KK_TEST(channel_form_add) {
  struct kk_buf b;
  kk_buf_init(&b, 4096);
  ASSERT_EQ(chan_form_add(&b, "a", "x y&z~"), 0);
  ASSERT_EQ(chan_form_add(&b, "n", NULL), 0);
  ASSERT_STR_EQ(b.p, "a=x%20y%26z~&n=");
  /* a value longer than a chunk of escapes, read back whole */
  char text[400];
  for (int i = 0; i < 199; i++) memcpy(text + 2 * i, "\xd0\x96", 2);
  text[398] = '!';
  text[399] = '\0';
  ASSERT_EQ(chan_form_add(&b, "message", text), 0);
  ASSERT_EQ(b.len, strlen("a=x%20y%26z~&n=&message=") + 399 * 3);   /* "!" is escaped too */
  char *v = chan_form_get(b.p, b.len, "message");
  ASSERT_STR_EQ(v, text);
  free(v);
  kk_buf_fini(&b);
  /* what does not fit is refused */
  kk_buf_init(&b, 64);
  ASSERT_EQ(chan_form_add(&b, "message", text), KK_ENOSPC);
  kk_buf_fini(&b);
}

/* ---- providers' answers --------------------------------------------------- */

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
