/*
 * chan_fake.h - fakes for the channel drivers' tests and fuzzers: an
 * inbound HTTP request as a driver's hook() reads it (headers, query), the
 * signatures providers put on their callbacks, and settings for each
 * driver.
 */
#ifndef CHAN_FAKE_H
#define CHAN_FAKE_H

#include <stddef.h>
#include <stdint.h>

#include "channel/channel.h"

/* A fake inbound request: up to 8 headers (names case-insensitive) and 8
   query values. Values are borrowed: they must outlive the hook() call. */
#define CHAN_FAKE_MAX 8
struct chan_fake {
  const char *h[CHAN_FAKE_MAX][2];
  int nh;
  const char *q[CHAN_FAKE_MAX][2];
  int nq;
};

/* chan_hook_in.header / .query over a struct chan_fake (ctx). */
const char *chan_fake_header(void *ctx, const char *name);
const char *chan_fake_query(void *ctx, const char *name);
/* Adds a header / query value; a NULL value (absent) or a full fake adds
   nothing. */
void chan_fake_add_header(struct chan_fake *f, const char *name, const char *value);
void chan_fake_add_query(struct chan_fake *f, const char *name, const char *value);
/* The callback a driver's hook() gets: method, body[0..len), f, now. */
struct chan_hook_in chan_fake_in(struct chan_fake *f, const char *method, const char *body,
                                 size_t len, int64_t now_ms);

/* WhatsApp's X-Hub-Signature-256 of body: "sha256=<hex>" into sig[80]. 0
   or a KK_E* code. */
int chan_fake_sign_wa(const char *secret, const char *body, size_t len, char sig[80]);
/* The Telegram Gateway's X-Request-Signature of body at timestamp ts: hex
   of HMAC-SHA256 keyed by SHA-256(token) over "ts\nbody", into hex[65]. */
int chan_fake_sign_gw(const char *token, const char *ts, const char *body, size_t len,
                      char hex[65]);

/* Settings with every field set (a value for each driver), as the fuzzers
   use them. */
struct chan_cfg chan_fake_cfg_all(void);

#endif
