/*
 * cascade.h - the cascade on the loop: the notes router and the step
 * deadlines.
 *
 * The decisions themselves (which step succeeded, which comes next, what a
 * late status changes) are made in the transaction that records each status
 * (store.h, "cascades and channels"); after the commit the store hands out
 * notes, and this router passes each to whom it concerns: a channel attempt
 * due to be sent and an SMS step to the channel engine (chan_engine.h, which
 * hands SMS to dispatch/ through the SMS driver's sender), a step deadline
 * to its timer here. Nothing waiting is held in memory: deadlines are read
 * from the store in batches (store_wait_claim), so a restart
 * continues where the last commit left off.
 */
#ifndef CASCADE_H
#define CASCADE_H

#include <stdint.h>
#include <uv.h>

#include "channel/chan_engine.h"
#include "store/store.h"

struct cascade;
struct dispatch;
struct kk_buf;

/* Makes the channel engine too (opts are its settings), with dispatch as the SMS channel's sender.
   Returns NULL when libcurl cannot start. The store and dispatcher must
   outlive it; freed by cascade_free() after cascade_stop()'s done. */
struct cascade *cascade_new(uv_loop_t *loop, struct store *store, struct dispatch *dispatch,
                            const struct chan_engine_opts *opts);
/* Loads the channel settings and starts reading due work. 0 or KK_ESTORE. */
int cascade_start(struct cascade *c);
/* Stops routing notes and firing deadlines, and stops the engine (requests
   in flight are aborted; their attempts stay due in the store); done(ud)
   runs when every handle is closed; then cascade_free(). */
void cascade_stop(struct cascade *c, void (*done)(void *ud), void *ud);
/* Frees a stopped cascade and its engine (NULL: nothing). */
void cascade_free(struct cascade *c);
/* Sends and deadlines not yet committed. */
int cascade_busy(const struct cascade *c);
/* The channel engine it routes to (settings, webhooks; chan_engine.h). */
struct chan_engine *cascade_engine(struct cascade *c);

/* Prometheus lines: the engine's, then per channel attempts, fall-throughs,
   late statuses, messages delivered twice and cascades finished. */
void cascade_metrics(struct cascade *c, struct kk_buf *out);
/* The clock moved forward (the test clock): due channel sends and step
   deadlines are looked for now. */
void cascade_clock_moved(struct cascade *c);

#endif
