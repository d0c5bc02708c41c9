/*
 * dispatch.h - hands stored messages to upstream SMS routes and brings their
 * outcomes back to the store.
 *
 * Messages come in two ways: from the store's notes straight after the
 * commit that acknowledged them (a new message, or an SMS step started later
 * in a cascade), and from the store's due index (at start-up, and when more
 * messages are waiting than memory holds). Route changes come as notes too. Each message is submitted
 * part by part on its route; submit_sm_resp, receipts and MO go to the store.
 * Temporary SMSC errors are retried with backoff until the message's validity
 * ends; throttling requeues at the head of the route's queue; permanent
 * errors fail the message with the SMPP status. Everything runs on the loop.
 */
#ifndef DISPATCH_H
#define DISPATCH_H

#include <jansson.h>
#include <stdint.h>

#include "policy/pol_due.h"
#include <uv.h>

#include "channel/channel.h"
#include "dispatch/dispatch_price.h"
#include "smpp/smpp_client.h"
#include "store/store.h"

struct dispatch;
struct kk_hold;
struct phone_plan;
struct dispatch_hlr;

struct dispatch_opts {
  long long retry_min_ms;
  long long retry_max_ms;
  int max_queued;            /* jobs held in memory; default 100000 */
  const struct kk_hold *hold; /* accounts whose messages wait (suspended); may be NULL */
  char default_route[64];    /* the route of accounts without their own ("":
                                the only route, when there is exactly one) */
  const struct phone_plan *plan; /* the numbering register (operators); may be NULL */
  struct dispatch_hlr *hlr;  /* HLR/MNP lookups; may be NULL (dispatch_set_hlr) */
  long long route_down_ms;   /* a route unbound this long is down; default 10 s */
};

/* Route settings beyond the SMPP session ones. */
struct dispatch_route_cfg {
  struct smpp_client_cfg smpp;
  uint8_t gsm_data_coding;   /* data_coding for GSM-7 texts, default 0x00 */
  struct dispatch_prices prices;  /* lanes served and prices per operator */
  int lane_sps[DISPATCH_LANE_COUNT];  /* submit_sm a second per lane, 0 = no own limit */
};

struct dispatch *dispatch_new(uv_loop_t *loop, struct store *store,
                              const struct dispatch_opts *opts);

/* Sets the rules that run again when a message comes due (pol_due.h): an
   SMS deferred when it was accepted (its due time was ahead when it was
   handed out), and every advertising one, is looked at by fn just before
   its first part goes; refused, it fails with the reason as its error. */
void dispatch_set_due_check(struct dispatch *d, pol_due_fn fn, void *ud);

/* Sets or clears (NULL) the HLR/MNP lookup service; lookups under way end
   with the service's own stop. */
void dispatch_set_hlr(struct dispatch *d, struct dispatch_hlr *hlr);

/* The route settings as the store keeps them and GET shows them (new
   reference). */
json_t *dispatch_route_cfg_json(const struct dispatch_route_cfg *cfg);

/* Loads what is due from the store and starts submitting. */
void dispatch_start(struct dispatch *d);

/* Creates or replaces a route (a replaced route rebinds; its queued messages
   move to the new one). Returns 0 or KK_EINVAL. */
int dispatch_route_put(struct dispatch *d, const struct dispatch_route_cfg *cfg);
/* Reads route name's settings from a JSON object (numbers may be given as
   strings). 0, or KK_EINVAL with the reason in err. */
int dispatch_route_cfg_parse(json_t *o, const char *name, struct dispatch_route_cfg *cfg,
                             char *err, size_t errcap);
/* Removes a route; its queued messages wait for a route of that name. */
int dispatch_route_del(struct dispatch *d, const char *name);
/* The name of the route an account's message goes to: want if that route
   exists, else the default route (the setting, or the only route there is);
   NULL when there is none: no route, several and no default, or the default
   names none. */
const char *dispatch_route_pick(struct dispatch *d, const char *want);
/* What an SMS of a prepaid account may cost per segment (hundredths). */
struct dispatch_quote {
  int64_t expected;         /* on the route it is expected to take; -1: none
                               (the price table's) */
  int64_t most;             /* the highest route price it can be charged: on
                               any route it can fail over to, to any operator
                               an HLR answer not yet known could name; -1: none */
  int table;                /* 1: it may go by a route without a price for its
                               operator, charged the price table's price */
};
/* The quote for an SMS of account acc (NULL: unknown) to e164 of msg_class,
   chosen the way the dispatcher chooses (operator from the register or a
   cached HLR answer, lane, the routes up now), route being the one accept
   gave it (dispatch_route_pick). A prepaid account's message is held at the
   most it can cost, so its charge never takes the balance past its hold. */
void dispatch_quote(struct dispatch *d, const struct store_account *acc, const char *route,
                    const char *e164, const char *msg_class, struct dispatch_quote *q);
/* 1 when a submit_sm_resp status says the route (its SMSC or its session)
   is in trouble, not the one message: a system error, a failed submit, a
   temporary application error, a bind problem. A run of these (or of
   submits that got no answer) takes a route down for route_down_ms;
   a number's own refusal or throttling does not. */
int dispatch_status_route_trouble(uint32_t status);
/* How many routes there are. */
int dispatch_route_count(const struct dispatch *d);
/* The default_route setting ("" when not set). */
const char *dispatch_default_route(const struct dispatch *d);
/* Routes and their live state as a JSON array (new reference). */
json_t *dispatch_routes_json(struct dispatch *d, const char *only);

/* A message whose SMS step started later in its cascade (row->text is taken
   over). */
void dispatch_enqueue_due(struct dispatch *d, struct store_due *row);

/* The SMS step of a message timed out: parts not yet submitted are dropped
   (a part in flight still reports its outcome). */
void dispatch_cancel(struct dispatch *d, int64_t attempt_id);

/* The SMS driver's sender for the channel engine (chan_engine_sender):
   submit() queues the step's row (the store's note carries it) like
   dispatch_enqueue_due(); cancel() is dispatch_cancel(). */
void dispatch_sender(struct dispatch *d, struct chan_sender *out);

/* Prometheus text lines for the dispatcher's metrics, appended to out. */
struct kk_buf;
void dispatch_metrics(struct dispatch *d, struct kk_buf *out);
/* The clock moved forward (the test clock): what waited for a time now
   past goes now. */
void dispatch_clock_moved(struct dispatch *d);

/* Counts a message accepted for a route (for metrics). */
void dispatch_count_accepted(struct dispatch *d, const char *route, int n);

/* Jobs held in memory and submits in flight. */
int dispatch_busy(const struct dispatch *d);

/* Stops the routes (unbind); done(ud) runs when every session is closed. */
void dispatch_stop(struct dispatch *d, void (*done)(void *ud), void *ud);
void dispatch_free(struct dispatch *d);

#endif
