/*
 * cascade.h - the cascade engine on the loop: it sends channel attempts
 * through their drivers, fires step deadlines, applies provider callbacks,
 * and keeps the channel settings in memory.
 *
 * The decisions themselves (which step succeeded, which comes next, what a
 * late status changes) are made by the store in the transaction that records
 * each status (store.h, "cascades and channels"); after the commit the store
 * hands the engine notes: a channel attempt to send, an SMS attempt for the
 * dispatcher, a deadline to arm. Nothing waiting is held in memory: due
 * attempts and deadlines are read from the store's indexes in batches, so a
 * restart continues where the last commit left off.
 *
 * Sending: libcurl multi on the loop (http_client.h), at most max_inflight
 * requests at once. Sends to a provider that takes several in one request
 * (VK's execute, chan_driver.batch) and that come due together with the same
 * settings go in one request, up to its batch_max; each still gets its own
 * result. A provider's 429 or 5xx (or no answer) is retried after
 * its Retry-After or with backoff (retry_min .. retry_max, doubling) until the
 * message's validity ends; a permanent error fails the step at once. A
 * request to a provider without an idempotency key is marked in the store
 * before it starts (store_chan_trying); one found marked after a restart was
 * under way at a crash and fails as interrupted rather than going twice. VK's
 * requests go again (its random_id makes the repeat harmless). A WhatsApp attempt first reads when its recipient last
 * wrote (store_wa_last_inbound): a text inside the 24-hour window, else the
 * template, else the step fails without a request.
 */
#ifndef CASCADE_H
#define CASCADE_H

#include <jansson.h>
#include <stdint.h>
#include <uv.h>

#include "channel/channel.h"
#include "store/store.h"

struct cascade;
struct dispatch;
struct kk_buf;

struct kk_hold;

struct cascade_opts {
  const char *public_url;     /* kaskad's public base URL, for webhook URLs */
  long request_timeout_ms;    /* one provider request; 10000 */
  int max_inflight;           /* provider requests at once; 256 */
  long retry_min_ms;          /* first backoff; 1000 */
  long retry_max_ms;          /* longest backoff; 300000 */
  const struct kk_hold *hold; /* accounts whose sends wait (suspended); may be NULL */
};

/* Returns NULL when libcurl cannot start. The store and dispatcher must
   outlive it. */
struct cascade *cascade_new(uv_loop_t *loop, struct store *store, struct dispatch *dispatch,
                            const struct cascade_opts *opts);
/* Loads the channel settings and starts reading due work. 0 or KK_ESTORE. */
int cascade_start(struct cascade *c);
/* Stops sending (requests in flight are aborted; their attempts stay due in
   the store) and frees c; done(ud) runs when every handle is closed. */
void cascade_stop(struct cascade *c, void (*done)(void *ud), void *ud);
/* Requests in flight and results not yet committed. */
int cascade_busy(const struct cascade *c);

/* ---- channel settings ---------------------------------------------------- */

/*
 * Validates a PUT /v1/channels/{channel} body into cfg. Unknown fields are
 * refused here (a mistyped secret name must not pass silently). Returns 0,
 * or KK_EINVAL with err naming the field.
 */
int cascade_cfg_parse(const char *channel, json_t *obj, struct chan_cfg *cfg, char *err,
                      size_t errcap, const char **field);
/* The settings as stored JSON (new reference). */
json_t *cascade_cfg_json(const struct chan_cfg *cfg);
/* The effective settings of a channel for an account: the account's own,
   else the operator's (account 0); NULL when neither. *scope receives whose. */
const struct chan_cfg *cascade_cfg(struct cascade *c, int64_t account_id, const char *channel,
                                   int64_t *scope);
/* Replaces (cfg NULL: removes) the cached settings after their commit. */
void cascade_cfg_set(struct cascade *c, int64_t account_id, const char *channel,
                     const struct chan_cfg *cfg);
/* kaskad's webhook URL for a channel and scope (account id, 0 = operator). */
void cascade_webhook_url(struct cascade *c, int64_t scope, const char *channel, char *out,
                         size_t cap);
/* Registers the webhook with the provider where it has an API for that
   (Telegram setWebhook, Viber set_webhook); done(ud, status, detail) runs
   with status 0 (registered), 1 (not needed) or -1 (failed, detail says why). */
void cascade_register(struct cascade *c, int64_t scope, const char *channel,
                      void (*done)(void *ud, int status, const char *detail), void *ud);

/* ---- provider callbacks -------------------------------------------------- */

/*
 * Verifies and applies one inbound callback for channel at scope: its
 * statuses, and for WhatsApp when people wrote (the window a text may go
 * in, store_wa_inbound). reply(ud, status, body) runs once: after those are
 * committed when it verified, at once when it did not (401/403/400; logged
 * and counted, nothing applied).
 */
void cascade_hook(struct cascade *c, const char *channel, int64_t scope,
                  const struct chan_hook_in *in,
                  void (*reply)(void *ud, int status, const char *body), void *ud);

/* Prometheus lines: per channel sends, outcomes, fall-throughs, callbacks. */
void cascade_metrics(struct cascade *c, struct kk_buf *out);

#endif
