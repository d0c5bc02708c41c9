/*
 * smpp_client_int.h - what the files of the route client share: the route
 * and its sessions. smpp_client.c has the route (capacity, the rate budget,
 * timers of a bound session, the PDUs received, the API);
 * smpp_client_conn.c a session's connection (resolve, connect, bind, drop,
 * reconnect with backoff).
 */
#ifndef SMPP_CLIENT_INT_H
#define SMPP_CLIENT_INT_H

#include <stdint.h>
#include <uv.h>

#include "smpp/smpp_client.h"
#include "smpp/smpp_session.h"

/* Each session reads into a partial PDU plus this much. */
#define READ_CHUNK (64 * 1024)
/* Cap on PDUs waiting to be written (the window bounds the submits among them). */
#define OUT_MAX ((size_t)8 * 1024 * 1024)
#define INTERFACE_VERSION 0x34

struct sess {
  struct smpp_client *c;
  int idx;
  char ctx[96];             /* log context: smpp[route=NAME#i] */
  enum smpp_session_state state;

  struct smpp_session *ss;  /* the connection: framing, output, window */
  uv_tcp_t tcp;             /* initialised once per connection attempt */
  uv_connect_t connect_req;
  uv_getaddrinfo_t gai_req;
  uv_timer_t timer;         /* reconnect delay, deadline or bound tick */
  uv_timer_t pause_timer;   /* end of a throttle pause */

  int tcp_open;             /* tcp initialised and its close callback not yet run */
  int gai_pending;          /* a name lookup is under way */
  int paused;               /* throttled: no new submits until pause_timer */
  double throttle_avg;      /* moving share of ESME_RTHROTTLED among answers */
  int write_error;          /* a uv_write that failed at once, for on_write_failed */
  uint32_t bind_seq;        /* outstanding bind_transceiver, 0 if none */

  uint32_t gen;             /* connection count; tells deferred answers apart */
  unsigned addr_pick;       /* which resolved address to try; moves on after a failure */
  int backoff_ms;           /* base of the next reconnect delay */
  int retry_ms;             /* delay chosen for the pending reconnect */
};

struct smpp_client {
  uv_loop_t *loop;
  struct smpp_client_cfg cfg;
  struct smpp_client_cbs cbs;
  void *ud;

  struct sess *sess;        /* cfg.sessions entries */
  int nsess;
  int rr;                   /* session to try first for the next submit */
  int tick_ms;              /* period of the bound tick */

  uv_timer_t rate_timer;    /* fires when the rate budget has a token again */
  int64_t tokens_milli;     /* rate budget in thousandths of a submit */
  uint64_t tokens_ms;       /* loop time tokens_milli was computed at */
  int64_t burst_milli;      /* most the budget can hold */

  uint8_t *scratch;         /* SMPP_MAX_PDU_LEN bytes to encode into */
  uint64_t rng;             /* xorshift state for reconnect jitter */
  struct smpp_client_stats st;

  struct sess *delivering;  /* session whose deliver_sm is in the deliver callback */
  uint32_t delivering_seq;  /* its sequence_number */
  int deferred;             /* the callback called smpp_client_defer() */
  int want_ready;           /* capacity may have grown since ready last fired */
  int closing;              /* smpp_client_stop() was called */
  int finishing;            /* the final handles are being closed */
  int handles_open;         /* final handles whose close callback is pending */
  uint64_t close_deadline;  /* when draining sessions stop waiting for responses */
  void (*closed_cb)(void *ud);
};

/* smpp_client.c */
/* The one place a session changes state (it logs the transition). */
void smppc_set_state(struct sess *s, enum smpp_session_state to, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Starts a write of everything queued unless one is under way. */
void smppc_flush(struct sess *s);
/* Queues pdu (its sequence_number set) and flushes; on failure the session
   is dropped and the error returned. */
int smppc_send_pdu(struct sess *s, const struct smpp_pdu *pdu);
/* Timer: the connect, bind or unbind took longer than resp_timeout_ms. */
void smppc_on_deadline(uv_timer_t *t);
/* Once every session of a stopping route is closed, closes the timers. */
void smppc_check_finish(struct smpp_client *c);

/* smpp_client_conn.c */
/* Ends the connection attempt or session for a reason (printf format). */
void smppc_drop(struct sess *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Starts a connection attempt. */
void smppc_connect(struct sess *s);
/* Timer: the reconnect delay is over. */
void smppc_on_retry(uv_timer_t *t);
/* Arms the reconnect or lets the route finish once nothing is under way. */
void smppc_settle(struct sess *s);

#endif
