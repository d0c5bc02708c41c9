/*
 * test_channel_hooks.c - the verification of inbound provider callbacks by
 * each driver: good and forged signatures, wrong secrets, stale timestamps,
 * malformed bodies, VK confirmation, WhatsApp GET verification and the
 * messages people send, which open WhatsApp's window. Signatures were
 * produced independently (Python's hmac).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "channel/chan_int.h"
#include "channel/channel.h"
#include "core/kk_crypto.h"
#include "core/kk_err.h"
#include "kk_test.h"
#include "lib/chan_fake.h"
#include "test_channel.h"

/* ---- helpers -------------------------------------------------------------- */

static struct chan_hook_in hook_in(struct chan_fake *f, const char *method, const char *body) {
  return chan_fake_in(f, method, body, strlen(body), NOW_MS);
}

static int run_hook(const char *name, const struct chan_cfg *cfg, struct chan_fake *f,
                    const char *method, const char *body, struct chan_hook_out *out) {
  struct chan_hook_in in = hook_in(f, method, body);
  memset(out, 0x5a, sizeof *out);
  return drv(name)->hook(cfg, &in, out);
}

/* Signs body with key into hex[65] and puts it in f as header name. */
static void sign(struct chan_fake *f, const char *name, const char *key, const char *body,
                 char hex[65]) {
  ASSERT_EQ(kk_hmac_sha256_hex(key, strlen(key), body, strlen(body), hex), 0);
  chan_fake_add_header(f, name, hex);
}

/* Signs body as WhatsApp does into sig[80] ("sha256=<hex>") and puts it in
   f as X-Hub-Signature-256 (f keeps the pointer: sig must outlive it). */
static void wa_sign(struct chan_fake *f, const char *secret, const char *body, char sig[80]) {
  ASSERT_EQ(chan_fake_sign_wa(secret, body, strlen(body), sig), 0);
  chan_fake_add_header(f, "X-Hub-Signature-256", sig);
}

/* Signs a Gateway report: X-Request-Timestamp ts and its signature. */
static void gw_sign(struct chan_fake *f, const char *token, const char *ts, const char *body,
                    char hex[65]) {
  ASSERT_EQ(chan_fake_sign_gw(token, ts, body, strlen(body), hex), 0);
  chan_fake_add_header(f, "X-Request-Timestamp", ts);
  chan_fake_add_header(f, "X-Request-Signature", hex);
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

/* ---- callbacks, driver by driver ------------------------------------------- */

KK_TEST(channel_vk_hook_confirmation) {
  struct chan_cfg cfg = vk_cfg();
  struct chan_fake f = {0};
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
  struct chan_fake f = {0};
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
  struct chan_fake f = {0};
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

KK_TEST(channel_viber_hook) {
  struct chan_cfg cfg = viber_cfg();
  struct chan_hook_out out;
  const char *seen = "{\"event\":\"seen\",\"timestamp\":1763932800123,\"message_token\":"
                     "5741311803571721087,\"user_id\":\"01234567890A=\"}";
  /* The fixed vector (Python hmac), in upper case. */
  struct chan_fake f = {0};
  chan_fake_add_header(&f, "x-viber-content-signature",
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
  struct chan_fake g = {0};
  sign(&g, "X-Viber-Content-Signature", "viber-token", failed, hex);
  ASSERT_EQ(run_hook("viber", &cfg, &g, "POST", failed, &out), 0);
  ASSERT_EQ(out.nstatus, 1);
  ASSERT_STR_EQ(out.st[0].status, "failed");
  ASSERT_STR_EQ(out.st[0].provider_id, "123");
  ASSERT_STR_EQ(out.st[0].error, "failure description");

  const char *delivered = "{\"event\":\"delivered\",\"message_token\":77}";
  struct chan_fake h = {0};
  sign(&h, "X-Viber-Content-Signature", "viber-token", delivered, hex);
  ASSERT_EQ(run_hook("viber", &cfg, &h, "POST", delivered, &out), 0);
  ASSERT_EQ(out.nstatus, 1);
  ASSERT_STR_EQ(out.st[0].status, "delivered");
  ASSERT_EQ(out.st[0].at, NOW_MS);

  const char *expired = "{\"event\":\"expired\",\"message_token\":78,\"timestamp\":5}";
  struct chan_fake e = {0};
  sign(&e, "X-Viber-Content-Signature", "viber-token", expired, hex);
  ASSERT_EQ(run_hook("viber", &cfg, &e, "POST", expired, &out), 0);
  ASSERT_STR_EQ(out.st[0].status, "expired");
  ASSERT_EQ(out.st[0].at, 5);

  const char *webhook = "{\"event\":\"webhook\",\"timestamp\":1,\"message_token\":1}";
  struct chan_fake w = {0};
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
  struct chan_fake f = {0};
  sign(&f, "X-Viber-Content-Signature", "other-token", body, hex);
  ASSERT_EQ(run_hook("viber", &cfg, &f, "POST", body, &out), KK_EAUTH);
  ASSERT_EQ(out.http_status, 403);
  ASSERT_EQ(out.nstatus, 0);
  /* No signature. */
  struct chan_fake none = {0};
  ASSERT_EQ(run_hook("viber", &cfg, &none, "POST", body, &out), KK_EAUTH);
  ASSERT_EQ(out.http_status, 403);
  /* A correct signature of another body. */
  struct chan_fake g = {0};
  sign(&g, "X-Viber-Content-Signature", "viber-token", "{}", hex);
  ASSERT_EQ(run_hook("viber", &cfg, &g, "POST", body, &out), KK_EAUTH);
  /* No token in the settings. */
  struct chan_fake h = {0};
  sign(&h, "X-Viber-Content-Signature", "viber-token", body, hex);
  cfg.token[0] = '\0';
  ASSERT_EQ(run_hook("viber", &cfg, &h, "POST", body, &out), KK_EAUTH);
  ASSERT_EQ(out.http_status, 403);
  /* Signed but malformed. */
  cfg = viber_cfg();
  const char *bad[] = {"{\"event\":", "[1]", "{\"no_event\":1}"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    struct chan_fake k = {0};
    sign(&k, "X-Viber-Content-Signature", "viber-token", bad[i], hex);
    ASSERT_EQ(run_hook("viber", &cfg, &k, "POST", bad[i], &out), KK_EPROTO);
    ASSERT_EQ(out.http_status, 400);
  }
}

KK_TEST(channel_telegram_hook) {
  struct chan_cfg cfg = tg_cfg();
  struct chan_hook_out out;
  const char *update = "{\"update_id\":10000,\"message\":{\"message_id\":1,\"text\":\"/start\"}}";
  struct chan_fake f = {0};
  chan_fake_add_header(&f, "X-Telegram-Bot-Api-Secret-Token", "tg_secret-1");
  ASSERT_EQ(run_hook("telegram", &cfg, &f, "POST", update, &out), 0);
  ASSERT_EQ(out.http_status, 200);
  ASSERT_STR_EQ(out.reply, "");
  ASSERT_EQ(out.nstatus, 0);
  ASSERT_EQ(run_hook("telegram", &cfg, &f, "POST", "{\"message\":{}}", &out), KK_EPROTO);
  ASSERT_EQ(out.http_status, 400);
  ASSERT_EQ(run_hook("telegram", &cfg, &f, "POST", "{\"update_id\":\"1\"}", &out), KK_EPROTO);
  ASSERT_EQ(run_hook("telegram", &cfg, &f, "POST", "nope", &out), KK_EPROTO);

  struct chan_fake g = {0};
  chan_fake_add_header(&g, "X-Telegram-Bot-Api-Secret-Token", "tg_secret-2");
  ASSERT_EQ(run_hook("telegram", &cfg, &g, "POST", update, &out), KK_EAUTH);
  ASSERT_EQ(out.http_status, 403);
  struct chan_fake none = {0};
  ASSERT_EQ(run_hook("telegram", &cfg, &none, "POST", update, &out), KK_EAUTH);
  struct chan_fake empty = {0};
  chan_fake_add_header(&empty, "X-Telegram-Bot-Api-Secret-Token", "");
  cfg.secret[0] = '\0';
  ASSERT_EQ(run_hook("telegram", &cfg, &empty, "POST", update, &out), KK_EAUTH);
  ASSERT_EQ(out.http_status, 403);
}

KK_TEST(channel_tggw_hook) {
  struct chan_cfg cfg = gw_cfg();
  struct chan_hook_out out;
  const char *read = "{\"request_id\":\"eWc9Qx\",\"delivery_status\":{\"status\":\"read\","
                     "\"updated_at\":1763932800}}";
  /* The fixed vector (Python hmac over SHA-256("gw-token")). */
  struct chan_fake f = {0};
  chan_fake_add_header(&f, "X-Request-Timestamp", "1763932810");
  chan_fake_add_header(&f, "X-Request-Signature",
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
    struct chan_fake g = {0};
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
  struct chan_fake h = {0};
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
  struct chan_fake f = {0};
  gw_sign(&f, "other", "1763932810", body, hex);
  ASSERT_EQ(run_hook("telegram_gateway", &cfg, &f, "POST", body, &out), KK_EAUTH);
  ASSERT_EQ(out.http_status, 403);
  /* Signed with the token itself instead of its SHA-256. */
  struct chan_fake g = {0};
  char msgbuf[256];
  snprintf(msgbuf, sizeof msgbuf, "1763932810\n%s", body);
  ASSERT_EQ(kk_hmac_sha256_hex("gw-token", 8, msgbuf, strlen(msgbuf), hex), 0);
  chan_fake_add_header(&g, "X-Request-Timestamp", "1763932810");
  chan_fake_add_header(&g, "X-Request-Signature", hex);
  ASSERT_EQ(run_hook("telegram_gateway", &cfg, &g, "POST", body, &out), KK_EAUTH);
  /* Stale and future timestamps, correctly signed. */
  struct chan_fake s = {0};
  gw_sign(&s, "gw-token", "1763932509", body, hex);
  ASSERT_EQ(run_hook("telegram_gateway", &cfg, &s, "POST", body, &out), KK_EAUTH);
  ASSERT_EQ(out.http_status, 403);
  ASSERT_STR_EQ(out.reason, "stale timestamp");
  struct chan_fake edge = {0};
  gw_sign(&edge, "gw-token", "1763932510", body, hex);
  ASSERT_EQ(run_hook("telegram_gateway", &cfg, &edge, "POST", body, &out), 0);
  struct chan_fake fut = {0};
  gw_sign(&fut, "gw-token", "1763933111", body, hex);
  ASSERT_EQ(run_hook("telegram_gateway", &cfg, &fut, "POST", body, &out), KK_EAUTH);
  ASSERT_STR_EQ(out.reason, "stale timestamp");
  /* Missing headers, a timestamp that is not a number. */
  struct chan_fake none = {0};
  ASSERT_EQ(run_hook("telegram_gateway", &cfg, &none, "POST", body, &out), KK_EAUTH);
  struct chan_fake nots = {0};
  gw_sign(&nots, "gw-token", "1763932810", body, hex);
  nots.h[0][1] = "+1763932810";
  ASSERT_EQ(run_hook("telegram_gateway", &cfg, &nots, "POST", body, &out), KK_EAUTH);
  /* No token in the settings. */
  struct chan_fake t = {0};
  gw_sign(&t, "gw-token", "1763932810", body, hex);
  cfg.token[0] = '\0';
  ASSERT_EQ(run_hook("telegram_gateway", &cfg, &t, "POST", body, &out), KK_EAUTH);
  cfg = gw_cfg();
  /* Signed but malformed. */
  const char *bad[] = {"{\"delivery_status\":{\"status\":\"read\"}}", "{", "[]",
                       "{\"request_id\":5}"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    struct chan_fake k = {0};
    gw_sign(&k, "gw-token", "1763932810", bad[i], hex);
    ASSERT_EQ(run_hook("telegram_gateway", &cfg, &k, "POST", bad[i], &out), KK_EPROTO);
    ASSERT_EQ(out.http_status, 400);
  }
}

KK_TEST(channel_whatsapp_hook_verify) {
  struct chan_cfg cfg = wa_cfg();
  struct chan_hook_out out;
  struct chan_fake f = {0};
  chan_fake_add_query(&f, "hub.mode", "subscribe");
  chan_fake_add_query(&f, "hub.verify_token", "verify-me");
  chan_fake_add_query(&f, "hub.challenge", "1158201444");
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
  struct chan_fake none = {0};
  cfg = wa_cfg();
  ASSERT_EQ(run_hook("whatsapp", &cfg, &none, "GET", "", &out), KK_EAUTH);
}

KK_TEST(channel_whatsapp_hook_statuses) {
  struct chan_cfg cfg = wa_cfg();
  struct chan_hook_out out;
  char hex[65], sig[80];
  ASSERT_EQ(kk_hmac_sha256_hex("app-secret", 10, wa_statuses, strlen(wa_statuses), hex), 0);
  snprintf(sig, sizeof sig, "sha256=%s", hex);
  struct chan_fake f = {0};
  chan_fake_add_header(&f, "X-Hub-Signature-256", sig);
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
  struct chan_fake f = {0};
  wa_sign(&f, "app-secret", body, sig);
  struct chan_hook_out out;
  ASSERT_EQ(run_hook("whatsapp", &cfg, &f, "POST", body, &out), 0);
  ASSERT_EQ(out.nstatus, CHAN_HOOK_MAX_STATUS);
  ASSERT_STR_EQ(out.st[31].provider_id, "w31");
}

KK_TEST(channel_whatsapp_hook_messages) {
  struct chan_cfg cfg = wa_cfg();
  struct chan_hook_out out;
  char sig[80];
  struct chan_fake f = {0};
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
  struct chan_fake g = {0};
  chan_fake_add_header(&g, "X-Hub-Signature-256", "sha256=00");
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
  struct chan_fake f = {0};
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
  struct chan_fake f = {0};
  chan_fake_add_header(&f, "X-Hub-Signature-256", sig);
  ASSERT_EQ(run_hook("whatsapp", &cfg, &f, "POST", wa_statuses, &out), KK_EAUTH);
  ASSERT_EQ(out.http_status, 403);
  ASSERT_EQ(out.nstatus, 0);
  /* The right digest without its prefix. */
  ASSERT_EQ(kk_hmac_sha256_hex("app-secret", 10, wa_statuses, strlen(wa_statuses), hex), 0);
  struct chan_fake g = {0};
  chan_fake_add_header(&g, "X-Hub-Signature-256", hex);
  ASSERT_EQ(run_hook("whatsapp", &cfg, &g, "POST", wa_statuses, &out), KK_EAUTH);
  struct chan_fake none = {0};
  ASSERT_EQ(run_hook("whatsapp", &cfg, &none, "POST", wa_statuses, &out), KK_EAUTH);
  /* No app secret in the settings. */
  snprintf(sig, sizeof sig, "sha256=%s", hex);
  struct chan_fake h = {0};
  chan_fake_add_header(&h, "X-Hub-Signature-256", sig);
  cfg.secret[0] = '\0';
  ASSERT_EQ(run_hook("whatsapp", &cfg, &h, "POST", wa_statuses, &out), KK_EAUTH);
  ASSERT_EQ(out.http_status, 403);
  /* Signed but not a JSON object. */
  cfg = wa_cfg();
  const char *bad[] = {"{\"entry\":", "[]", ""};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    struct chan_fake k = {0};
    wa_sign(&k, "app-secret", bad[i], sig);
    ASSERT_EQ(run_hook("whatsapp", &cfg, &k, "POST", bad[i], &out), KK_EPROTO);
    ASSERT_EQ(out.http_status, 400);
  }
  ASSERT_EQ(run_hook("whatsapp", &cfg, &none, "PUT", "", &out), KK_EPROTO);
}

/* A person's message to the bot: the messenger's user id, the text, the time. */
KK_TEST(channel_messenger_hook_messages) {
  struct chan_hook_out out;
  char hex[65];
  struct chan_cfg vb = viber_cfg();
  const char *msg = "{\"event\":\"message\",\"timestamp\":1763932800123,\"message_token\":9,"
                    "\"sender\":{\"id\":\"01234567890A=\",\"name\":\"Ира\"},"
                    "\"message\":{\"type\":\"text\",\"text\":\"Стоп!\"}}";
  struct chan_fake f = {0};
  sign(&f, "X-Viber-Content-Signature", "viber-token", msg, hex);
  ASSERT_EQ(run_hook("viber", &vb, &f, "POST", msg, &out), 0);
  ASSERT_EQ(out.nstatus, 0);
  ASSERT_EQ(out.ninbound, 1);
  ASSERT_STR_EQ(out.in[0].from, "");
  ASSERT_STR_EQ(out.in[0].user, "01234567890A=");
  ASSERT_STR_EQ(out.in[0].text, "Стоп!");
  ASSERT_EQ(out.in[0].at, 1763932800123LL);
  const char *pic = "{\"event\":\"message\",\"sender\":{\"id\":\"u2\"},"
                    "\"message\":{\"type\":\"picture\"}}";
  struct chan_fake g = {0};
  sign(&g, "X-Viber-Content-Signature", "viber-token", pic, hex);
  ASSERT_EQ(run_hook("viber", &vb, &g, "POST", pic, &out), 0);
  ASSERT_EQ(out.ninbound, 1);
  ASSERT_STR_EQ(out.in[0].text, "[picture]");
  ASSERT_EQ(out.in[0].at, NOW_MS);

  struct chan_cfg tg = tg_cfg();
  struct chan_fake t = {0};
  chan_fake_add_header(&t, "X-Telegram-Bot-Api-Secret-Token", tg.secret);
  ASSERT_EQ(run_hook("telegram", &tg, &t, "POST",
                     "{\"update_id\":5,\"message\":{\"message_id\":1,\"from\":{\"id\":5551},"
                     "\"chat\":{\"id\":5551,\"type\":\"private\"},\"date\":1763932700,"
                     "\"text\":\"STOP\"}}",
                     &out), 0);
  ASSERT_EQ(out.ninbound, 1);
  ASSERT_STR_EQ(out.in[0].user, "5551");
  ASSERT_STR_EQ(out.in[0].text, "STOP");
  ASSERT_EQ(out.in[0].at, 1763932700000LL);

  struct chan_cfg vk = vk_cfg();
  struct chan_fake v = {0};
  ASSERT_EQ(run_hook("vk", &vk, &v, "POST",
                     "{\"type\":\"message_new\",\"object\":{\"message\":{\"id\":3,\"from_id\":777,"
                     "\"peer_id\":777,\"date\":1763932600,\"text\":\"отписаться\"}},"
                     "\"group_id\":229000001,\"secret\":\"vk_secret\"}",
                     &out), 0);
  ASSERT_EQ(out.ninbound, 1);
  ASSERT_STR_EQ(out.in[0].user, "777");
  ASSERT_STR_EQ(out.in[0].text, "отписаться");
  ASSERT_EQ(out.in[0].at, 1763932600000LL);
  /* A community's own message (from_id < 0) is nobody's reply. */
  ASSERT_EQ(run_hook("vk", &vk, &v, "POST",
                     "{\"type\":\"message_new\",\"object\":{\"message\":{\"from_id\":-229000001,"
                     "\"text\":\"x\"}},\"group_id\":229000001,\"secret\":\"vk_secret\"}",
                     &out), 0);
  ASSERT_EQ(out.ninbound, 0);
}
