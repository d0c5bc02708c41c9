/*
 * chan_hooks.h - provider webhooks: kaskad's URL for them, registering it
 * with providers that have an API for that, and applying one inbound
 * callback (verified by the channel's driver, its statuses and messages
 * committed through the store).
 */
#ifndef CHAN_HOOKS_H
#define CHAN_HOOKS_H

#include <stddef.h>
#include <stdint.h>

#include "channel/channel.h"

struct chan_engine;

/* kaskad's webhook URL for a channel and scope (account id, 0 = operator). */
void chan_hook_url(struct chan_engine *e, int64_t scope, const char *channel, char *out,
                   size_t cap);
/* Registers the webhook with the provider where it has an API for that
   (Telegram setWebhook, Viber set_webhook); done(ud, status, detail) runs
   with status 0 (registered), 1 (not needed) or a negative KK_E* code
   (failed, detail says why). */
void chan_hook_register(struct chan_engine *e, int64_t scope, const char *channel,
                        void (*done)(void *ud, int status, const char *detail), void *ud);
/*
 * Verifies and applies one inbound callback for channel at scope: its
 * statuses, and for WhatsApp when people wrote (the window a text may go
 * in, store_wa_inbound). reply(ud, status, body) runs once: after those are
 * committed when it verified, at once when it did not (401/403/400; logged
 * and counted, nothing applied).
 */
void chan_hook_apply(struct chan_engine *e, const char *channel, int64_t scope,
                     const struct chan_hook_in *in,
                     void (*reply)(void *ud, int status, const char *body), void *ud);

#endif
