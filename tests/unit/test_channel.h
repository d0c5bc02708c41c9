/*
 * test_channel.h - what the channel drivers' tests share: the driver by
 * name, a message with the common fields, and each driver's settings.
 */
#ifndef TEST_CHANNEL_H
#define TEST_CHANNEL_H

#include <string.h>

#include "channel/channel.h"
#include "kk_test.h"

#define NOW_MS 1763932810000LL

static inline const struct chan_driver *drv(const char *name) {
  const struct chan_driver *d = chan_driver(name);
  if (d == NULL) kk_test_fail(__FILE__, __LINE__, "no driver %s", name);
  return d;
}

/* A message with the fields every test shares; the rest is NULL. */
static inline struct chan_msg msg(const char *address, const char *text) {
  struct chan_msg m;
  memset(&m, 0, sizeof m);
  m.attempt_id = 42;
  m.public_id = "msg_abc";
  m.to = "79161234567";
  m.address = address;
  m.text = text;
  return m;
}

static inline struct chan_cfg vk_cfg(void) {
  struct chan_cfg c;
  memset(&c, 0, sizeof c);
  strcpy(c.token, "vk1.a-token");
  strcpy(c.secret, "vk_secret");
  strcpy(c.confirmation, "a1b2c3d4");
  c.group_id = 229000001;
  return c;
}

static inline struct chan_cfg viber_cfg(void) {
  struct chan_cfg c;
  memset(&c, 0, sizeof c);
  strcpy(c.token, "viber-token");
  return c;
}

static inline struct chan_cfg tg_cfg(void) {
  struct chan_cfg c;
  memset(&c, 0, sizeof c);
  strcpy(c.token, "123456:ABC-def_GHI");
  strcpy(c.secret, "tg_secret-1");
  return c;
}

static inline struct chan_cfg gw_cfg(void) {
  struct chan_cfg c;
  memset(&c, 0, sizeof c);
  strcpy(c.token, "gw-token");
  return c;
}

static inline struct chan_cfg wa_cfg(void) {
  struct chan_cfg c;
  memset(&c, 0, sizeof c);
  strcpy(c.token, "EAAG-token");
  strcpy(c.secret, "app-secret");
  strcpy(c.phone_number_id, "106540352242922");
  strcpy(c.verify_token, "verify-me");
  return c;
}

static inline struct chan_cfg email_cfg(void) {
  struct chan_cfg c;
  memset(&c, 0, sizeof c);
  strcpy(c.smtp_url, "smtp://127.0.0.1:2525");
  strcpy(c.from, "noreply@kaskad.test");
  return c;
}

#endif
