/*
 * callback.h - delivers customer status callbacks (webhooks) from the store's
 * outbox, signed, with retries.
 *
 * The deliverer polls the outbox for due rows and POSTs each row's JSON
 * payload to its URL with libcurl's multi interface, driven by the libuv loop
 * (no threads). Every request carries
 *
 *   Content-Type: application/json
 *   User-Agent: kaskad
 *   X-Kaskad-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256>
 *
 * where the HMAC key is the account's callback_secret (its text, as stored)
 * and the message is "<t>.<raw body>". A 2xx answer deletes the row. Any other
 * outcome (another status, a timeout, a refused connection) is a failed try:
 * the row is due again after 5 s, 15 s, 45 s, ... (capped at 1 h), and after
 * max_tries tries it is deleted and a warning is logged. A row is never sent
 * twice at the same time: it stays in the in-flight set from the moment it is
 * read until the store has committed the result of its try.
 *
 * Accounts share the deliverer fairly: due rows are read per account, the
 * accounts with due rows taken in turn (round robin, by account id), and
 * one account has at most per_account rows in flight, so a customer whose
 * endpoint never answers holds only its own slots. Each host (host:port of
 * the URL) has a circuit breaker: after breaker_failures failed tries in a
 * row (transport errors, timeouts, 5xx and 429 answers) it opens, and the
 * host's rows are put off until the cool-down is over, without a request
 * and without counting a try; then one row is sent as a probe (half-open),
 * whose success closes the breaker and whose failure opens it again. An
 * account may have queue_per_account rows waiting; every trim_ms the
 * oldest rows beyond that are dropped (counted and logged), since newer
 * statuses supersede older ones.
 *
 * The caller must have called curl_global_init() before callback_new().
 * Everything runs on the loop thread.
 */
#ifndef CALLBACK_H
#define CALLBACK_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "store/store.h"

struct callback;

/* Zero (or a negative value) in any field selects its default. */
struct callback_opts {
  long timeout_ms;          /* one request, from connect to last byte; 10000 */
  int max_inflight;         /* rows being delivered at once; 64 */
  int max_tries;            /* tries before giving up; 12 */
  long backoff_ms;          /* delay after the first failed try; 5000 */
  long poll_ms;             /* how often the outbox is read; 200 */
  int per_account;          /* rows of one account being delivered at once; 8 */
  long queue_per_account;   /* rows one account may have waiting; 10000 */
  int breaker_failures;     /* failed tries in a row that open a host's breaker; 5 */
  long breaker_cooldown_ms; /* how long an open breaker sends nothing; 30000 */
  long trim_ms;             /* how often waiting rows over the cap are dropped; 5000 */
};

struct callback_stats {
  uint64_t sent_ok;         /* tries answered with 2xx */
  uint64_t failed_tries;    /* tries that failed (each retry and each last try) */
  uint64_t gave_up;         /* rows dropped after their last try */
  uint64_t dropped;         /* waiting rows dropped over an account's cap */
  uint64_t breaker_opens;   /* times a host's circuit breaker opened */
  uint64_t deferred;        /* rows put off because their host's breaker was open */
  int inflight;             /* rows in the in-flight set now */
  int hosts_open;           /* hosts whose breaker is open now */
};

/*
 * Creates the deliverer (idle until callback_start()). Returns NULL when
 * libcurl cannot start (logged). Free it with callback_stop(). The store must
 * stay open until callback_stop()'s done callback has run.
 */
struct callback *callback_new(uv_loop_t *loop, struct store *store,
                              const struct callback_opts *opts);
/* Starts polling the outbox (the first poll on the next loop turn). */
void callback_start(struct callback *c);

/* Says that new rows may be due now: the outbox is read on the next turn. */
void callback_kick(struct callback *c);

/*
 * Stops polling and lets requests in flight finish for at most the request
 * timeout (3 s at most); requests still running then are aborted, and their
 * rows stay due, to be sent after a restart. Once the store has committed the
 * results of finished tries and every handle is closed, c is freed and
 * done(ud) runs on the loop. Only callback_stats() may be called between
 * callback_stop() and done (a second callback_stop() is ignored); nothing
 * may use c after done.
 */
void callback_stop(struct callback *c, void (*done)(void *ud), void *ud);

/* Copies the counters (for /metrics). */
void callback_stats(const struct callback *c, struct callback_stats *out);

/*
 * Writes the X-Kaskad-Signature header value "t=<t>,v1=<64 hex digits>" for
 * body into out (cap bytes, NUL-terminated). Returns 0, KK_EINVAL for an empty
 * secret, KK_ENOSPC when out is too small, or KK_EIO when OpenSSL fails.
 */
int callback_sign(const char *secret, long long t, const char *body, size_t len,
                  char *out, size_t cap);

/* The delay before the next try after failed_tries failed tries (1, 2, ...):
   first_ms, then three times the previous delay, capped at one hour. */
int64_t callback_backoff_ms(long first_ms, int failed_tries);

/* The JSON body of an outbox row's callback (malloc'd; the caller frees it):
   the row's own payload when it was written with one, else
   {"id","status","channel","to","at","cost"[,"error"]} from its fields.
   NULL when it cannot be built. */
char *callback_payload(const struct store_outbox *row);

#endif
