/*
 * smpp_client.h - one upstream SMS route: N SMPP 3.4 transceiver sessions to
 * an SMSC, with windowing, a rate limit, keep-alive and reconnects.
 *
 * The client moves PDUs; it knows nothing about messages or the store. The
 * caller hands it submit_sm PDUs tagged with a 64-bit token and learns the
 * outcome of each through exactly one callback: resp (a submit_sm_resp came)
 * or lost (the session closed before any response came; the caller decides
 * whether to resend). deliver_sm PDUs (receipts and MO) are passed up and
 * answered with deliver_sm_resp after the callback returns.
 *
 * Sessions: connect -> bind_transceiver -> bound. enquire_link every
 * enquire_link_s while bound; a request without a response within
 * resp_timeout_ms closes the session (its in-flight submits are reported lost).
 * Isolated ESME_RTHROTTLED answers only come back through resp (the caller
 * resends); when they make up a tenth of a session's recent answers, the
 * session pauses for throttle_pause_ms.
 * Reconnect with exponential backoff between reconnect_min_ms and
 * reconnect_max_ms. A submit_sm_resp with a run of ESME_RTHROTTLED (see above)
 * pauses that session for throttle_pause_ms; ESME_RMSGQFUL pauses it for a
 * tenth of that. On
 * garbage from the SMSC the session answers generic_nack (bad command id) or
 * closes (unframeable stream). Everything runs on the caller's uv loop.
 */
#ifndef SMPP_CLIENT_H
#define SMPP_CLIENT_H

#include <stdint.h>
#include <uv.h>

#include "smpp/smpp_codec.h"

struct smpp_client_cfg {
  char name[64];            /* route name, for logs */
  char host[256];
  int port;
  char system_id[16];
  char password[9];
  char system_type[13];
  int sessions;             /* binds to keep open, >= 1 */
  int window;               /* unacknowledged submits per session, >= 1 */
  int max_sps;              /* submit_sm per second over the whole route, 0 = unlimited */
  int enquire_link_s;       /* default 30 */
  int resp_timeout_ms;      /* default 10000 */
  int reconnect_min_ms;     /* default 500 */
  int reconnect_max_ms;     /* default 30000 */
  int throttle_pause_ms;    /* default 1000 */
};

/* Fills the defaults above into the zero fields of cfg. */
void smpp_client_cfg_defaults(struct smpp_client_cfg *cfg);

enum smpp_session_state {
  SMPP_SESS_IDLE,           /* waiting to reconnect */
  SMPP_SESS_CONNECTING,
  SMPP_SESS_BINDING,
  SMPP_SESS_BOUND,
  SMPP_SESS_UNBINDING,
  SMPP_SESS_CLOSED,
};

struct smpp_client_stats {
  int sessions;             /* configured */
  int bound;                /* sessions in SMPP_SESS_BOUND */
  int inflight;             /* submits sent and not yet answered */
  uint64_t submitted;       /* submit_sm written */
  uint64_t resp_ok;         /* submit_sm_resp with ESME_ROK */
  uint64_t resp_error;      /* submit_sm_resp with another status */
  uint64_t throttled;       /* ESME_RTHROTTLED answers */
  uint64_t lost;            /* submits reported lost */
  uint64_t deliver_sm;      /* deliver_sm received */
  uint64_t reconnects;      /* sessions (re)established */
  uint64_t protocol_errors; /* garbage or unexpected PDUs received */
};

struct smpp_client;

struct smpp_client_cbs {
  /* A submit_sm_resp arrived. message_id is NUL-terminated, NULL when absent. */
  void (*resp)(void *ud, uint64_t token, uint32_t status, const char *message_id);
  /* The session closed before a response to this submit arrived. */
  void (*lost)(void *ud, uint64_t token);
  /* A deliver_sm arrived (views valid during the call only). Set *status to the
     deliver_sm_resp command_status (it is ESME_ROK on entry), or call
     smpp_client_defer() to answer later with smpp_client_deliver_resp(). */
  void (*deliver)(void *ud, const struct smpp_pdu *pdu, uint32_t *status);
  /* Capacity became available (a session bound, a response freed a window
     slot, a pause or rate interval ended): the caller may submit again. */
  void (*ready)(void *ud);
};

/*
 * Creates the route and starts connecting its sessions. Copies cfg and cbs.
 * Stop (and so free) with smpp_client_stop().
 */
struct smpp_client *smpp_client_new(uv_loop_t *loop, const struct smpp_client_cfg *cfg,
                                    const struct smpp_client_cbs *cbs, void *ud);

/*
 * How many submit_sm may be written right now (bound sessions' free window
 * slots, limited by the rate budget). 0 means wait for the ready callback.
 */
int smpp_client_capacity(const struct smpp_client *c);

/* Submits written and not yet answered (nor reported lost), all sessions. */
int smpp_client_inflight(const struct smpp_client *c);

/*
 * Sends a submit_sm (command_id and sequence_number are set by the client; the
 * PDU's views need live only during the call: it is encoded at once).
 * Returns 0 (exactly one of resp/lost will follow), KK_EBUSY when there is no
 * capacity, or KK_EINVAL when the PDU does not encode.
 */
int smpp_client_submit(struct smpp_client *c, uint64_t token, const struct smpp_pdu *submit);

/*
 * Called from inside the deliver callback: the deliver_sm_resp is not sent
 * when the callback returns but by smpp_client_deliver_resp() with the handle
 * returned here (e.g. once the receipt is committed). Returns 0 when called
 * outside a deliver callback.
 */
uint64_t smpp_client_defer(struct smpp_client *c);
/*
 * Answers a deferred deliver_sm. Returns 0, or KK_ECLOSED when the session
 * that received it has closed since (the SMSC then delivers it again).
 */
int smpp_client_deliver_resp(struct smpp_client *c, uint64_t handle, uint32_t status);

void smpp_client_get_stats(const struct smpp_client *c, struct smpp_client_stats *out);
/* State of session i (0 <= i < cfg.sessions). */
enum smpp_session_state smpp_client_session_state(const struct smpp_client *c, int i);
const char *smpp_session_state_name(enum smpp_session_state s);

/*
 * Stops the route: no new submits; bound sessions wait up to resp_timeout_ms
 * for outstanding responses, then unbind and close. Submits still unanswered
 * are reported lost. closed_cb(ud) runs once every handle is closed; the
 * client is freed after it returns. Calling submit after stop is KK_ECLOSED.
 */
void smpp_client_stop(struct smpp_client *c, void (*closed_cb)(void *ud));

#endif
