/*
 * dispatch_hlr.h - HLR/MNP lookups: which operator serves a number now
 * (the numbering register names the operator it was given to; a ported
 * number has moved) and whether it is roaming. The operator's lookup
 * service answers `GET <hlr_url>?phone=<E.164 digits>` with
 * {"ported": bool, "operator": "...", "inn": "...", "roaming": bool}.
 *
 * Answers are cached per number for ttl (a failed lookup for a few
 * seconds, so a service that is down is not asked once per message);
 * the cache holds at most max_entries numbers, the oldest going first.
 * Lookups of a number already under way wait for the same request.
 * Loop thread only.
 */
#ifndef DISPATCH_HLR_H
#define DISPATCH_HLR_H

#include <stdint.h>
#include <uv.h>

struct dispatch_hlr;
struct dispatch_hlr_wait;

struct dispatch_hlr_opts {
  const char *url;            /* the service; copied */
  long timeout_ms;            /* one lookup; default 2000 */
  int64_t ttl_ms;             /* an answer is kept this long; default 24 h */
  long max_entries;           /* numbers cached at most; default 200,000 */
};

/* What the service said. Strings valid during the callback only. */
struct dispatch_hlr_answer {
  int ported;
  int roaming;
  const char *operator_name;  /* "" when the service did not say */
  const char *inn;            /* "" when the service did not say */
};

/* rc: 0 and the answer, KK_EIO (no answer: down, timeout, an HTTP error),
   KK_EPROTO (an answer that is not one), KK_ECLOSED (the lookup service
   is being freed). */
typedef void (*dispatch_hlr_cb)(void *arg, int rc, const struct dispatch_hlr_answer *a);

/* NULL when libcurl cannot start. Ends with dispatch_hlr_stop. */
struct dispatch_hlr *dispatch_hlr_new(uv_loop_t *loop, const struct dispatch_hlr_opts *o);
/* Aborts lookups under way (their callbacks run with KK_ECLOSED), then
   frees h; done(ud) runs once all is closed. */
void dispatch_hlr_stop(struct dispatch_hlr *h, void (*done)(void *ud), void *ud);

/*
 * Looks e164 up. From the cache the callback runs at once and NULL is
 * returned; otherwise the callback runs later, unless the returned wait is
 * cancelled before (dispatch_hlr_cancel: the callback never runs). A wait
 * is gone once its callback has run: cancel only one whose callback has not.
 */
struct dispatch_hlr_wait *dispatch_hlr_lookup(struct dispatch_hlr *h, const char *e164,
                                              dispatch_hlr_cb cb, void *arg);
void dispatch_hlr_cancel(struct dispatch_hlr *h, struct dispatch_hlr_wait *w);
/* 1 and the cached answer for e164 in out (strings valid until the next
   lookup), 0 when none is cached (nothing is asked, nothing counted). */
int dispatch_hlr_peek(struct dispatch_hlr *h, const char *e164, struct dispatch_hlr_answer *out);

/* Counters for /metrics. */
struct dispatch_hlr_stats {
  uint64_t lookups, cache_hits, failures;
  long cached;
};
void dispatch_hlr_get_stats(const struct dispatch_hlr *h, struct dispatch_hlr_stats *out);

#endif
