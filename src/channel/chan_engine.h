/*
 * chan_engine.h - the channel engine on the loop: it sends channel attempts
 * through their drivers, keeps the channel settings in memory
 * (chan_settings.h) and applies provider webhooks (chan_hooks.h).
 *
 * The decisions (which step succeeded, which comes next, what a late status
 * changes) are made by the cascade rules in the transaction that records
 * each status; after the commit the notes router (cascade/cascade.h) hands
 * the engine what became due: a channel attempt to send now or later, an
 * SMS step for its sender. Nothing waiting is held in memory: due attempts
 * are read from the store's index in batches, so a restart continues where
 * the last commit left off.
 *
 * Sending: libcurl multi on the loop (http_client.h), at most max_inflight
 * requests at once. Sends to a provider that takes several in one request
 * (VK's execute, chan_driver.batch) and that come due together with the
 * same settings go in one request, up to its batch_max; each still gets its
 * own result. A provider's 429 or 5xx (or no answer) is retried after its
 * Retry-After or with backoff (retry_min .. retry_max, doubling) until the
 * message's validity ends; a permanent error fails the step at once. A
 * request to a provider without an idempotency key is marked in the store
 * before it starts (store_chan_trying); one found marked after a restart
 * was under way at a crash and fails as interrupted rather than going
 * twice. VK's requests go again (its random_id makes the repeat harmless).
 * A WhatsApp attempt's row says when its recipient last wrote
 * (store_chan_due.wa_inbound_at): a text inside the 24-hour window, else
 * the template, else the step fails without a request. A channel whose driver
 * is external (SMS) is handed to the chan_sender given for it.
 */
#ifndef CHAN_ENGINE_H
#define CHAN_ENGINE_H

#include <stdint.h>
#include <uv.h>

#include "channel/chan_hooks.h"
#include "channel/chan_settings.h"
#include "channel/channel.h"
#include "policy/pol_due.h"
#include "store/store.h"

struct chan_engine;
struct kk_buf;
struct kk_hold;

struct chan_engine_opts {
  const char *public_url;     /* kaskad's public base URL, for webhook URLs */
  long request_timeout_ms;    /* one provider request; 10000 */
  int max_inflight;           /* provider requests at once; 256 */
  long retry_min_ms;          /* first backoff; 1000 */
  long retry_max_ms;          /* longest backoff; 300000 */
  const struct kk_hold *hold; /* accounts whose sends wait (suspended); may be NULL */
};

/* Returns NULL when libcurl cannot start; freed by chan_engine_free() after
   chan_engine_stop()'s done. The store must outlive it. */
struct chan_engine *chan_engine_new(uv_loop_t *loop, struct store *store,
                                    const struct chan_engine_opts *opts);
/* Sets the rules that run again when an attempt comes due (pol_due.h): a
   deferred one (due later than it was made: quiet hours, a retry) and
   every advertising one, just before its request is built; refused, the
   attempt fails with the reason as its error (and the cascade goes on as
   after any failure). */
void chan_engine_set_due_check(struct chan_engine *e, pol_due_fn fn, void *ud);

/* Where an external channel's steps go (SMS: dispatch_sender). 0, or
   KK_EINVAL for a channel whose driver is not external. */
int chan_engine_sender(struct chan_engine *e, const char *channel, const struct chan_sender *s);
/* Loads the channel settings and starts reading due attempts. 0 or KK_ESTORE. */
int chan_engine_start(struct chan_engine *e);
/* Stops sending: requests in flight get a short grace, then are aborted
   (their attempts stay due in the store). done(ud) runs when every handle
   is closed; then chan_engine_free(). */
void chan_engine_stop(struct chan_engine *e, void (*done)(void *ud), void *ud);
/* Frees a stopped engine (NULL: nothing). */
void chan_engine_free(struct chan_engine *e);
/* Sends from their read to their committed result. */
int chan_engine_busy(const struct chan_engine *e);

/* ---- what the notes router hands over ------------------------------------ */

/* A channel attempt is due at at (ms): row (the note's; the engine takes
   its text and extra) is sent when at <= now; without a row, or later, a
   claim brings it then. Call chan_engine_kick() after a batch of these. */
void chan_engine_due(struct chan_engine *e, struct store_chan_due *row, int64_t at, int64_t now);
/* A channel attempt is no longer due: a row of it still queued does not go. */
void chan_engine_ended(struct chan_engine *e, int64_t attempt_id);
/* Starts sending what chan_engine_due() queued (on the next loop turn). */
void chan_engine_kick(struct chan_engine *e);
/* An external channel's step became current later in a cascade: its row
   came with the store's note (see chan_sender.submit). */
void chan_engine_submit(struct chan_engine *e, enum kk_chan ch, struct store_due *row);
/* A new message's first step is on an external channel: its row came with
   the store's note (see chan_sender.submit_new). */
void chan_engine_submit_new(struct chan_engine *e, enum kk_chan ch, struct store_due *row);
/* An external channel's step timed out. */
void chan_engine_cancel(struct chan_engine *e, enum kk_chan ch, int64_t attempt_id);

/* Prometheus lines: per channel requests and callbacks, requests in flight. */
void chan_engine_metrics(struct chan_engine *e, struct kk_buf *out);

#endif
