/*
 * sim_chan.h - the simulator's fake messenger providers: VK, Viber (bot and
 * business), Telegram (Bot API and Gateway) and WhatsApp Cloud API, served on
 * the control API's HTTP port in each provider's own request and answer
 * format, with their status callbacks (signed as the provider signs them)
 * POSTed back after simulated delays.
 *
 * The module also owns what the SMTP sink (sim_smtp.h) shares with the
 * providers: the per-channel knobs, the ring of received requests and the
 * per-channel counters.
 *
 * Provider accounts ("apps") are known by token; they come from the control
 * API (POST /apps) or from the provider's own webhook calls (Telegram
 * setWebhook, Viber set_webhook). Every provider request is recorded in a
 * ring of SIM_CHAN_RING_CAP entries and SIM_CHAN_RING_BYTES bytes, oldest
 * dropped first.
 *
 * Everything runs on the caller's libuv loop. Answers that need a round trip
 * to a webhook first (POST /apps, Viber set_webhook, POST /telegram/update,
 * POST /whatsapp/inbound) are given later through a done callback.
 */
#ifndef SIM_CHAN_H
#define SIM_CHAN_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#define SIM_CHAN_RING_CAP 100000          /* recorded requests kept */
#define SIM_CHAN_RING_BYTES (256u << 20)  /* and the bytes they may hold */

enum sim_chan_id {
  SIM_CH_VK,
  SIM_CH_VIBER,
  SIM_CH_TELEGRAM,
  SIM_CH_TGGW,                            /* "telegram_gateway" */
  SIM_CH_WHATSAPP,
  SIM_CH_EMAIL,                           /* the SMTP sink */
  SIM_CH_COUNT
};

/* One channel's knobs (GET/POST /channels/config). */
struct sim_chan_knobs {
  double reach;          /* share of recipients who can be reached, 0..1 */
  double read;           /* share of reached recipients who read */
  int deliver_ms[2];     /* delay of "delivered" after the send: [min, max] */
  int read_ms[2];        /* delay of "read" after "delivered" */
  double throttle;       /* share of sends answered with the rate-limit error */
  double server_error;   /* share of sends answered with HTTP 500 */
  double fail;           /* share of reached recipients whose message then fails */
};

struct sim_chan;

/* A request on the HTTP port, as sim_http.c received it. Borrowed. */
struct sim_chan_req {
  const char *method;
  const char *path;                       /* without the query */
  const char *content_type;               /* these three headers, NULL when absent */
  const char *authorization;
  const char *viber_token;                /* X-Viber-Auth-Token */
  const char *body;                       /* NUL-terminated (may hold NULs before len) */
  size_t body_len;
  /* Returns a decoded query argument or NULL. */
  const char *(*query)(void *ctx, const char *name);
  void *query_ctx;
};

/* An answer: JSON unless content_type says otherwise. body is malloc'd and
   passes to whoever receives the reply. */
struct sim_chan_reply {
  unsigned status;
  const char *content_type;               /* static; NULL = application/json */
  char *body;
  size_t len;
};

/* Receives a deferred answer (the body is the receiver's to free). */
typedef void (*sim_chan_done_fn)(void *ctx, struct sim_chan_reply *r);

enum sim_chan_handled {
  SIM_CHAN_NOT_MINE = 0,                  /* not a path of this module */
  SIM_CHAN_ANSWERED,                      /* *out holds the answer */
  SIM_CHAN_LATER,                         /* done(ctx, ...) will run exactly once,
                                             never before sim_chan_handle returns */
};

/*
 * Starts the module on loop: the callback client and timer. channels_json is
 * initial knobs as for POST /channels/config, or NULL. Returns 0 with *out
 * set, KK_EINVAL (bad channels_json; err says why, *out NULL) or KK_EIO.
 */
int sim_chan_start(uv_loop_t *loop, uint64_t seed, const char *channels_json,
                   char *err, size_t errcap, struct sim_chan **out);
/* Answers every deferred request with 503, drops pending callbacks and
   closes the handles. */
void sim_chan_stop(struct sim_chan *ch);
/* Frees everything; call after sim_chan_stop once uv_run has returned. */
void sim_chan_free(struct sim_chan *ch);

/*
 * Handles a provider request (/method/..., /pa/..., /vbm/..., /bot...,
 * /sendVerificationMessage, /vN.N/<id>/messages) or a channel control path
 * (/apps, /channels/..., /telegram/update, /whatsapp/inbound).
 */
enum sim_chan_handled sim_chan_handle(struct sim_chan *ch, const struct sim_chan_req *rq,
                                      struct sim_chan_reply *out, sim_chan_done_fn done,
                                      void *ctx);

/* POST /reset: clears the ring, the counters and pending callbacks; with
   apps set, forgets every app too. */
void sim_chan_reset(struct sim_chan *ch, int apps);

/* ---- for the SMTP sink ---- */

/* The channel's knobs (read live). */
const struct sim_chan_knobs *sim_chan_knobs(const struct sim_chan *ch, enum sim_chan_id c);
/* 1 when the recipient is reached under the channel's reach knob (a hash of
   the seed, the channel and addr: the same address always answers alike). */
int sim_chan_reached(const struct sim_chan *ch, enum sim_chan_id c, const char *addr);

/* An accepted mail. rcpt holds nrcpt addresses. */
struct sim_chan_mail {
  const char *from;
  const char *const *rcpt;
  size_t nrcpt;
  const char *data;                       /* the message, dot-stuffing undone */
  size_t len;
};
/* Records an accepted mail in the ring and counts it. */
void sim_chan_record_mail(struct sim_chan *ch, const struct sim_chan_mail *m);
/* Counts a refused e-mail recipient or message; reason is "unreached",
   "no_such_user" or "too_big". */
void sim_chan_count_refused(struct sim_chan *ch, enum sim_chan_id c, const char *reason);

#endif
