/*
 * chan_engine_int.h - what the channel engine's files share (chan_engine.c,
 * chan_send.c, chan_settings.c, chan_hooks.c) and nobody else uses.
 */
#ifndef CHAN_ENGINE_INT_H
#define CHAN_ENGINE_INT_H

#include "channel/chan_engine.h"
#include "channel/chan_ready.h"
#include "http/http_client.h"

#define CHAN_LOGCTX "channel"
#define CHAN_SCAN_MAX 512         /* rows claimed at once */
#define CHAN_READY_MAX 20000      /* rows held in the ready queue; more wait in the
                                     store until the queue drains (a claim brings them) */
#define CHAN_MAX_OPEN_BATCHES 8   /* settings with a batch filling at once */

/* Per-channel counters of the engine (the store counts the state machine),
   indexed like chan_drivers(). */
struct chan_counters {
  int used;                      /* shown in the metrics once anything happened */
  uint64_t req_ok, req_retry, req_failed, req_config;
  uint64_t hook_applied, hook_unmatched, hook_forged, hook_malformed;
  double req_ms_sum;
};

/* Settings of one channel for one scope, in a list. */
struct chan_cfg_entry {
  struct chan_cfg_entry *next;
  int64_t account_id;
  char channel[20];
  struct chan_cfg cfg;
};

struct chan_send;
struct chan_batch;

struct chan_engine {
  uv_loop_t *loop;
  struct store *store;
  struct chan_engine_opts o;
  struct http_client *http;
  struct chan_cfg_entry *cfgs;
  uv_timer_t send_timer;
  uv_timer_t scan_timer;         /* when the next retry comes due */
  uv_timer_t poll_timer;         /* the safety-net scan; the grace at stop */
  struct chan_ready ready;       /* attempts due now, and every one taken */
  int ninflight;                 /* sends from their read to their committed result */
  int nrequests;                 /* of those, provider requests on the wire (an open
                                    batch counts as one) */
  struct chan_batch *open[CHAN_MAX_OPEN_BATCHES];   /* batches filling in a pump */
  int nopen;
  struct chan_send **try_q;      /* sends to mark before they go */
  int ntry, try_cap;
  struct chan_send *marked, *marked_tail;   /* marked, waiting for a request slot */
  int stopping;
  int closing;                   /* handles still to close */
  void (*stop_done)(void *);
  void *stop_ud;
  struct chan_counters cnt[CHAN_MAX_DRIVERS];
  struct chan_sender senders[CHAN_MAX_DRIVERS];   /* of the external channels */
  struct store_chan_due *rows;   /* CHAN_SCAN_MAX, for claims (allocated at the first) */
  int left_due;                  /* rows were left in the store with the queue full */
  pol_due_fn due_fn;             /* the rules again when due; NULL: none */
  void *due_ud;
};

/* The counters of a channel (a spare slot for an unknown name). */
struct chan_counters *chan_engine_counters(struct chan_engine *e, const char *channel);
/* The request a driver built, as libcurl's side takes it. */
struct http_client_req chan_engine_http_req(const struct chan_engine *e, const struct chan_req *r);

/* chan_send.c: one due attempt from its read to its committed result. */
void chan_send_start(struct chan_engine *e, struct store_chan_due *row);
/* Puts the marked sends on the wire while there is room. */
void chan_send_marked(struct chan_engine *e);
/* Ends a pump: flushes open batches and marks what must be marked. */
void chan_send_flush(struct chan_engine *e);
/* At stop: marked sends that did not go lose their marks and leave. */
void chan_send_drop_marked(struct chan_engine *e);
/* Called when a send leaves (chan_engine.c): the engine may pump or close. */
void chan_engine_send_done(struct chan_engine *e);
/* Pumps the sends on the next loop turn. */
void chan_engine_pump_soon(struct chan_engine *e);
/* A request slot is free again. */
void chan_engine_request_done(struct chan_engine *e);

#endif
