/*
 * chan_fake.c - fakes for the channel drivers (see chan_fake.h).
 */
#include "lib/chan_fake.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "core/kk_crypto.h"
#include "core/kk_err.h"

const char *chan_fake_header(void *ctx, const char *name) {
  struct chan_fake *f = ctx;
  for (int i = 0; i < f->nh; i++)
    if (strcasecmp(f->h[i][0], name) == 0) return f->h[i][1];
  return NULL;
}

const char *chan_fake_query(void *ctx, const char *name) {
  struct chan_fake *f = ctx;
  for (int i = 0; i < f->nq; i++)
    if (strcmp(f->q[i][0], name) == 0) return f->q[i][1];
  return NULL;
}

void chan_fake_add_header(struct chan_fake *f, const char *name, const char *value) {
  if (value == NULL || f->nh == CHAN_FAKE_MAX) return;
  f->h[f->nh][0] = name;
  f->h[f->nh][1] = value;
  f->nh++;
}

void chan_fake_add_query(struct chan_fake *f, const char *name, const char *value) {
  if (value == NULL || f->nq == CHAN_FAKE_MAX) return;
  f->q[f->nq][0] = name;
  f->q[f->nq][1] = value;
  f->nq++;
}

struct chan_hook_in chan_fake_in(struct chan_fake *f, const char *method, const char *body,
                                 size_t len, int64_t now_ms) {
  return (struct chan_hook_in){.method = method, .body = body, .len = len,
                               .header = chan_fake_header, .query = chan_fake_query,
                               .ctx = f, .now_ms = now_ms};
}

int chan_fake_sign_wa(const char *secret, const char *body, size_t len, char sig[80]) {
  char hex[65];
  int rc = kk_hmac_sha256_hex(secret, strlen(secret), body, len, hex);
  if (rc != 0) return rc;
  snprintf(sig, 80, "sha256=%s", hex);
  return 0;
}

int chan_fake_sign_gw(const char *token, const char *ts, const char *body, size_t len,
                      char hex[65]) {
  uint8_t key[32], mac[32];
  kk_sha256(token, strlen(token), key);
  const void *parts[3] = {ts, "\n", body};
  size_t lens[3] = {strlen(ts), 1, len};
  int rc = kk_hmac_sha256(key, sizeof key, parts, lens, 3, mac);
  if (rc != 0) return rc;
  kk_hex(mac, sizeof mac, hex);
  return 0;
}

struct chan_cfg chan_fake_cfg_all(void) {
  struct chan_cfg c;
  memset(&c, 0, sizeof c);
  strcpy(c.base_url, "http://127.0.0.1:1");
  strcpy(c.token, "fuzz-token");
  strcpy(c.secret, "fuzz-secret");
  strcpy(c.sender, "fuzz");
  c.group_id = 1;
  strcpy(c.confirmation, "confirm-1");
  strcpy(c.phone_number_id, "123");
  strcpy(c.verify_token, "fuzz-verify");
  strcpy(c.smtp_url, "smtp://127.0.0.1:2525");
  strcpy(c.from, "from@kaskad.test");
  return c;
}
