/*
 * fake_hook.h - a provider's callback request as a channel driver's hook()
 * sees it (struct chan_hook_in), without an HTTP server: a few headers and
 * query values, for unit tests and fuzz targets.
 */
#ifndef KK_FAKE_HOOK_H
#define KK_FAKE_HOOK_H

#include <stddef.h>
#include <stdint.h>

#include "channel/channel.h"

#define FAKE_HOOK_MAX 8

/* Names and values are the caller's (not copied); keep them alive while the
   request is used. */
struct fake_hook {
  const char *h[FAKE_HOOK_MAX][2];
  int nh;
  const char *q[FAKE_HOOK_MAX][2];
  int nq;
};

/* Adds a header (found case-insensitively) or a query value; a NULL value
   reads as absent. Over FAKE_HOOK_MAX of either, the rest are dropped. */
void fake_hook_header(struct fake_hook *f, const char *name, const char *value);
void fake_hook_query(struct fake_hook *f, const char *name, const char *value);

/* The request hook() gets: method, body (len bytes, the caller's) and f's
   headers and query, seen at now_ms. */
struct chan_hook_in fake_hook_in(struct fake_hook *f, const char *method, const char *body,
                                 size_t len, int64_t now_ms);

#endif
