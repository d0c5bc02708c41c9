/*
 * smpp_client.c - one upstream SMS route: N SMPP 3.4 transceiver sessions to
 * an SMSC (see smpp_client.h for the contract).
 *
 * Each session walks idle -> connecting -> binding -> bound -> unbinding and
 * back to idle (or to closed once the route is closing); smppc_set_state() is
 * the only place the state changes and it logs every transition. Incoming
 * PDUs are dispatched through the handlers[] table, which also says in which
 * states each PDU is acceptable. Connecting, binding and dropping are in
 * smpp_client_conn.c.
 *
 * The connection itself (framing, batched output, sequence numbers,
 * enquire_link, the window of submits in flight) is an smpp_session, shared
 * with the SMSC role. Every in-flight submit leaves the session's window
 * exactly once: through the resp callback when its submit_sm_resp (or a
 * generic_nack) arrives, or through the lost callback when the session drops.
 * Submits made in one loop iteration share a write.
 *
 * Each session has two timers. The main timer is the reconnect delay while
 * idle, the deadline of the connect, bind or unbind while those are under way,
 * and a periodic tick while bound that sends enquire_link and notices requests
 * left unanswered for resp_timeout_ms. The pause timer ends a throttle pause.
 * The route has one more timer that says when the rate budget refills.
 */
#include "smpp/smpp_client.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/kk_buf.h"
#include "core/kk_err.h"
#include "core/kk_log.h"
#include "core/kk_mem.h"
#include "smpp/smpp_client_int.h"
#include "smpp/smpp_session.h"

/* ---- configuration, names ---------------------------------------------- */

void smpp_client_cfg_defaults(struct smpp_client_cfg *cfg) {
  if (cfg->enquire_link_s == 0) cfg->enquire_link_s = 30;
  if (cfg->resp_timeout_ms == 0) cfg->resp_timeout_ms = 10000;
  if (cfg->reconnect_min_ms == 0) cfg->reconnect_min_ms = 500;
  if (cfg->reconnect_max_ms == 0) cfg->reconnect_max_ms = 30000;
  if (cfg->throttle_pause_ms == 0) cfg->throttle_pause_ms = 1000;
}

const char *smpp_session_state_name(enum smpp_session_state s) {
  switch (s) {
    case SMPP_SESS_IDLE: return "idle";
    case SMPP_SESS_CONNECTING: return "connecting";
    case SMPP_SESS_BINDING: return "binding";
    case SMPP_SESS_BOUND: return "bound";
    case SMPP_SESS_UNBINDING: return "unbinding";
    case SMPP_SESS_CLOSED: return "closed";
  }
  return "unknown";
}

/*
 * The one place a session changes state. Entering idle always means a
 * connection failed or ended, so that transition is logged as a warning; the
 * others are routine.
 */
void smppc_set_state(struct sess *s, enum smpp_session_state to, const char *fmt, ...) {
  char why[256];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(why, sizeof why, fmt, ap);
  va_end(ap);
  enum kk_log_level lvl = to == SMPP_SESS_IDLE ? KK_LOG_WARN : KK_LOG_INFO;
  kk_log(lvl, s->ctx, "%s -> %s: %s", smpp_session_state_name(s->state),
         smpp_session_state_name(to), why);
  s->state = to;
}

/* ---- capacity, rate budget, ready ----------------------------------------- */

/* Milli-tokens of rate budget available now (without spending any). */
static int64_t rate_available(const struct smpp_client *c) {
  if (c->cfg.max_sps <= 0) return INT64_MAX;
  uint64_t elapsed = uv_now(c->loop) - c->tokens_ms;
  int64_t t = c->tokens_milli;
  if (elapsed > 0) {
    if (elapsed > (uint64_t)(c->burst_milli / c->cfg.max_sps) + 1) return c->burst_milli;
    t += (int64_t)elapsed * c->cfg.max_sps;
  }
  return t > c->burst_milli ? c->burst_milli : t;
}

static void on_rate_timer(uv_timer_t *t);

/* Arms the refill timer for the moment the budget holds a submit again, if
   it does not now and the timer is not already running. */
static void rate_arm(struct smpp_client *c) {
  if (c->cfg.max_sps <= 0 || uv_is_active((uv_handle_t *)&c->rate_timer)) return;
  int64_t avail = rate_available(c);
  if (avail >= 1000) return;
  int64_t wait = (1000 - avail + c->cfg.max_sps - 1) / c->cfg.max_sps;
  uv_timer_start(&c->rate_timer, on_rate_timer, (uint64_t)(wait > 0 ? wait : 1), 0);
}

/* Spends one submit of the rate budget; arms the refill timer when it runs out. */
static void rate_spend(struct smpp_client *c) {
  if (c->cfg.max_sps <= 0) return;
  c->tokens_milli = rate_available(c) - 1000;
  c->tokens_ms = uv_now(c->loop);
  rate_arm(c);
}

static int sess_can_submit(const struct sess *s) {
  return s->state == SMPP_SESS_BOUND && s->ss->open && !s->paused &&
         s->ss->inflight < s->c->cfg.window;
}

int smpp_client_capacity(const struct smpp_client *c) {
  if (c->closing) return 0;
  int n = 0;
  for (int i = 0; i < c->nsess; i++) {
    const struct sess *s = &c->sess[i];
    if (sess_can_submit(s)) n += c->cfg.window - s->ss->inflight;
  }
  if (c->cfg.max_sps > 0) {
    int64_t tokens = rate_available(c) / 1000;
    if (tokens < n) n = (int)tokens;
  }
  return n;
}

int smpp_client_inflight(const struct smpp_client *c) { return c->st.inflight; }

/* Calls ready when something freed capacity since the last call and there is some. */
static void fire_ready(struct smpp_client *c) {
  if (!c->want_ready || c->closing || c->cbs.ready == NULL) return;
  if (smpp_client_capacity(c) <= 0) {
    /* A timer that fired before a later spend's refill, or a window freed
       while the budget is spent: without a timer nothing would call again. */
    rate_arm(c);
    return;
  }
  c->want_ready = 0;
  c->cbs.ready(c->ud);
}

static void on_rate_timer(uv_timer_t *t) {
  struct smpp_client *c = t->data;
  c->want_ready = 1;
  fire_ready(c);
}

/* ---- output ---------------------------------------------------------------- */

/* The write could not even start; drop from a timer rather than from inside
   the caller's submit. */
static void on_write_failed(uv_timer_t *t) {
  struct sess *s = t->data;
  smppc_drop(s, "write failed: %s", uv_strerror(s->write_error));
}

/* Starts a write of everything queued unless one is already under way. */
void smppc_flush(struct sess *s) {
  if (smpp_session_flush(s->ss) < 0) {
    s->write_error = s->ss->uv_err;
    uv_timer_start(&s->timer, on_write_failed, 0, 0);
  }
}

/* Queues pdu (with a sequence_number already set) and flushes. On failure
   the session is dropped and the error returned. */
int smppc_send_pdu(struct sess *s, const struct smpp_pdu *pdu) {
  int rc = smpp_session_send(s->ss, pdu);
  if (rc == KK_ECLOSED) return rc;
  if (rc < 0) {
    smppc_drop(s, "cannot send %s: %s", smpp_cmd_name(pdu->command_id), kk_strerror(rc));
    return rc;
  }
  smppc_flush(s);
  return 0;
}

/* Sends a header-only or empty-bodied response to a request. */
static void send_resp(struct sess *s, uint32_t command_id, uint32_t status, uint32_t seq) {
  struct smpp_pdu pdu;
  memset(&pdu, 0, sizeof pdu);
  pdu.command_id = command_id;
  pdu.command_status = status;
  pdu.sequence_number = seq;
  smppc_send_pdu(s, &pdu);
}

/* ---- timers while connected -------------------------------------------------- */

/* Sends unbind (the route is closing) and waits a bounded time for unbind_resp. */
static void start_unbind(struct sess *s) {
  int rc = smpp_session_unbind(s->ss);
  if (rc == KK_ECLOSED) return;
  if (rc < 0) {
    smppc_drop(s, "cannot send unbind: %s", kk_strerror(rc));
    return;
  }
  smppc_flush(s);
  smppc_set_state(s, SMPP_SESS_UNBINDING, "route closing, %d submits in flight", s->ss->inflight);
  uv_timer_start(&s->timer, smppc_on_deadline, (uint64_t)s->c->cfg.resp_timeout_ms, 0);
}

/* The connect, bind or unbind took longer than resp_timeout_ms. */
void smppc_on_deadline(uv_timer_t *t) {
  struct sess *s = t->data;
  int ms = s->c->cfg.resp_timeout_ms;
  switch (s->state) {
    case SMPP_SESS_CONNECTING: smppc_drop(s, "connect timed out after %d ms", ms); break;
    case SMPP_SESS_BINDING: smppc_drop(s, "no bind_transceiver_resp within %d ms", ms); break;
    case SMPP_SESS_UNBINDING: smppc_drop(s, "unbind not completed within %d ms", ms); break;
    default: break;
  }
}

/*
 * Periodic work of a bound session: drain before unbinding when the route is
 * closing, notice unanswered requests, send enquire_link when it is due.
 */
static void on_tick(uv_timer_t *t) {
  struct sess *s = t->data;
  struct smpp_client *c = s->c;
  uint64_t now = uv_now(c->loop);
  if (s->state != SMPP_SESS_BOUND) return;
  if (c->closing) {
    /* While closing, the drain deadline decides how long submits may wait. */
    if (s->ss->inflight == 0 || now >= c->close_deadline) start_unbind(s);
    return;
  }
  uint32_t late;
  int rc = smpp_session_tick(s->ss, now, (uint64_t)c->cfg.resp_timeout_ms,
                             (uint64_t)c->cfg.enquire_link_s * 1000, &late);
  if (rc == KK_ETIMEDOUT && late == 0) {
    smppc_drop(s, "no enquire_link_resp within %d ms", c->cfg.resp_timeout_ms);
  } else if (rc == KK_ETIMEDOUT) {
    smppc_drop(s, "no submit_sm_resp within %d ms (sequence %u)", c->cfg.resp_timeout_ms, late);
  } else if (rc < 0 && rc != KK_ECLOSED) {
    smppc_drop(s, "cannot send enquire_link: %s", kk_strerror(rc));
  } else {
    smppc_flush(s);
  }
}

static void on_pause_end(uv_timer_t *t) {
  struct sess *s = t->data;
  s->paused = 0;
  kk_debug(s->ctx, "pause over");
  s->c->want_ready = 1;
  fire_ready(s->c);
}

/* Stops new submits on this session for ms (a later pause extends it). */
static void pause_session(struct sess *s, int ms, uint32_t status) {
  if (ms < 1) ms = 1;
  if (!s->paused)
    kk_warnx(s->ctx, "%s: pausing submits for %d ms", smpp_status_name(status), ms);
  s->paused = 1;
  uv_timer_start(&s->pause_timer, on_pause_end, (uint64_t)ms, 0);
}

/* ---- incoming PDUs ------------------------------------------------------------- */

static void on_bind_resp(struct sess *s, const struct smpp_pdu *pdu) {
  struct smpp_client *c = s->c;
  if (pdu->sequence_number != s->bind_seq) {
    c->st.protocol_errors++;
    kk_warnx(s->ctx, "bind_transceiver_resp with unexpected sequence %u",
             pdu->sequence_number);
    return;
  }
  s->bind_seq = 0;
  if (pdu->command_status != SMPP_ESME_ROK) {
    smppc_drop(s, "bind_transceiver rejected: %s (0x%08x)", smpp_status_name(pdu->command_status),
         pdu->command_status);
    return;
  }
  s->backoff_ms = c->cfg.reconnect_min_ms;
  s->ss->enq_last_ms = uv_now(c->loop);
  c->st.reconnects++;
  smppc_set_state(s, SMPP_SESS_BOUND, "bound to SMSC \"%.*s\"", (int)pdu->body.system_id.len,
            (const char *)pdu->body.system_id.p);
  uv_timer_start(&s->timer, on_tick, (uint64_t)c->tick_ms, (uint64_t)c->tick_ms);
  c->want_ready = 1;
}

/* Throttling: one answer in 64 weighs in the moving share; a session pauses
   when the share reaches a tenth (about seven throttles in a row, or an SMSC
   refusing a tenth of the traffic), not for an isolated refusal, which the
   caller simply sends again. */
#define THROTTLE_WEIGHT (1.0 / 64)
#define THROTTLE_PAUSE_SHARE 0.10

static void note_answer(struct sess *s, uint32_t status) {
  int throttled = status == SMPP_ESME_RTHROTTLED;
  s->throttle_avg += THROTTLE_WEIGHT * ((throttled ? 1.0 : 0.0) - s->throttle_avg);
  if (throttled && s->throttle_avg >= THROTTLE_PAUSE_SHARE) {
    pause_session(s, s->c->cfg.throttle_pause_ms, status);
    s->throttle_avg = 0;
  }
}

/* Takes the submit with this sequence number out of the table and reports it
   through resp. Returns 0, or KK_ENOENT when no such submit is in flight. */
static int complete_submit(struct sess *s, uint32_t seq, uint32_t status,
                           const struct smpp_str *message_id) {
  struct smpp_client *c = s->c;
  uint64_t token;
  if (smpp_session_complete(s->ss, seq, &token) < 0) return KK_ENOENT;
  c->st.inflight--;
  note_answer(s, status);
  if (status == SMPP_ESME_ROK) {
    c->st.resp_ok++;
  } else {
    c->st.resp_error++;
    if (status == SMPP_ESME_RTHROTTLED) {
      c->st.throttled++;
    } else if (status == SMPP_ESME_RMSGQFUL) {
      pause_session(s, c->cfg.throttle_pause_ms / 10, status);
    }
  }
  char id[66];
  const char *idp = NULL;
  if (message_id != NULL && message_id->len > 0) {
    size_t n = message_id->len < sizeof id - 1 ? message_id->len : sizeof id - 1;
    memcpy(id, message_id->p, n);
    id[n] = '\0';
    idp = id;
  }
  kk_debug(s->ctx, "submit_sm_resp sequence %u: %s", seq, smpp_status_name(status));
  c->want_ready = 1;
  if (c->cbs.resp) c->cbs.resp(c->ud, token, status, idp);
  /* A closing route unbinds as soon as the last response is in. */
  if (c->closing && s->state == SMPP_SESS_BOUND && s->ss->inflight == 0) start_unbind(s);
  return 0;
}

static void on_submit_resp(struct sess *s, const struct smpp_pdu *pdu) {
  if (complete_submit(s, pdu->sequence_number, pdu->command_status, &pdu->body.message_id) < 0) {
    s->c->st.protocol_errors++;
    kk_warnx(s->ctx, "submit_sm_resp for unknown sequence %u", pdu->sequence_number);
  }
}

static void on_deliver_sm(struct sess *s, const struct smpp_pdu *pdu) {
  struct smpp_client *c = s->c;
  uint32_t status = SMPP_ESME_ROK;
  c->st.deliver_sm++;
  c->delivering = s;
  c->delivering_seq = pdu->sequence_number;
  c->deferred = 0;
  if (c->cbs.deliver) c->cbs.deliver(c->ud, pdu, &status);
  c->delivering = NULL;
  if (!c->deferred) send_resp(s, SMPP_DELIVER_SM_RESP, status, pdu->sequence_number);
}

/* A handle: 24 bits of the session's connection count, 8 of its index, 32 of
   the sequence_number. */
uint64_t smpp_client_defer(struct smpp_client *c) {
  struct sess *s = c->delivering;
  if (s == NULL) return 0;
  c->deferred = 1;
  return ((uint64_t)(s->gen & 0xFFFFFF) << 40) | ((uint64_t)(s->idx & 0xFF) << 32) |
         c->delivering_seq;
}

int smpp_client_deliver_resp(struct smpp_client *c, uint64_t handle, uint32_t status) {
  int idx = (int)((handle >> 32) & 0xFF);
  if (idx >= c->nsess) return KK_EINVAL;
  struct sess *s = &c->sess[idx];
  if ((s->gen & 0xFFFFFF) != (uint32_t)(handle >> 40) || !s->ss->open ||
      (s->state != SMPP_SESS_BOUND && s->state != SMPP_SESS_UNBINDING))
    return KK_ECLOSED;
  send_resp(s, SMPP_DELIVER_SM_RESP, status, (uint32_t)handle);
  return 0;
}

/* An enquire_link_resp or unbind_resp that answers nothing we sent (the
   session takes those that do). */
static void on_stray_resp(struct sess *s, const struct smpp_pdu *pdu) {
  (void)s;
  (void)pdu;
}

/* The SMSC unbinds: answer, then close once the answer is written. Submits
   still in flight are reported lost when the session drops. */
static void on_unbind(struct sess *s, const struct smpp_pdu *pdu) {
  send_resp(s, SMPP_UNBIND_RESP, SMPP_ESME_ROK, pdu->sequence_number);
  if (!s->ss->open) return;
  if (s->state != SMPP_SESS_UNBINDING) {
    smppc_set_state(s, SMPP_SESS_UNBINDING, "unbind from the SMSC, %d submits in flight",
              s->ss->inflight);
    uv_timer_start(&s->timer, smppc_on_deadline, (uint64_t)s->c->cfg.resp_timeout_ms, 0);
  }
  smpp_session_drain(s->ss, "unbound by the SMSC");
}

/* generic_nack: the SMSC could not make sense of one of our requests. */
static void on_generic_nack(struct sess *s, const struct smpp_pdu *pdu) {
  struct smpp_client *c = s->c;
  uint32_t seq = pdu->sequence_number;
  uint32_t status = pdu->command_status ? pdu->command_status : SMPP_ESME_RUNKNOWNERR;
  c->st.protocol_errors++;
  kk_warnx(s->ctx, "generic_nack %s for sequence %u", smpp_status_name(status), seq);
  if (seq == 0) return;
  if (seq == s->bind_seq) {
    smppc_drop(s, "bind_transceiver answered with generic_nack %s", smpp_status_name(status));
  } else if (seq == s->ss->unbind_seq) {
    smppc_drop(s, "unbind answered with generic_nack");
  } else if (seq == s->ss->enq_seq) {
    s->ss->enq_seq = 0;
  } else {
    complete_submit(s, seq, status, NULL);
  }
}

#define ST(x) (1u << SMPP_SESS_##x)

/* What to do with each PDU the SMSC may send, and in which states. */
static const struct pdu_handler {
  uint32_t command_id;
  unsigned states;          /* ST() bits of the states that accept it */
  void (*fn)(struct sess *s, const struct smpp_pdu *pdu);
} handlers[] = {
    {SMPP_BIND_TRANSCEIVER_RESP, ST(BINDING), on_bind_resp},
    {SMPP_SUBMIT_SM_RESP, ST(BOUND) | ST(UNBINDING), on_submit_resp},
    {SMPP_DELIVER_SM, ST(BOUND) | ST(UNBINDING), on_deliver_sm},
    {SMPP_ENQUIRE_LINK_RESP, ST(BOUND) | ST(UNBINDING), on_stray_resp},
    {SMPP_UNBIND, ST(BOUND) | ST(UNBINDING), on_unbind},
    {SMPP_UNBIND_RESP, ST(UNBINDING), on_stray_resp},
    {SMPP_GENERIC_NACK, ST(BINDING) | ST(BOUND) | ST(UNBINDING), on_generic_nack},
};

/*
 * A PDU with a usable header that does not decode (the session has answered
 * a request with generic_nack). A broken submit_sm_resp still settles its
 * submit, as lost: the outcome is unknown, which is what lost tells the
 * caller; other responses are ignored.
 */
static void on_bad_pdu(struct smpp_session *ss, const struct smpp_pdu *pdu,
                       const struct smpp_err *err) {
  struct sess *s = smpp_session_ud(ss);
  struct smpp_client *c = s->c;
  c->st.protocol_errors++;
  kk_warnx(s->ctx, "undecodable PDU (command_id 0x%08x, sequence %u): %s at offset %zu",
           pdu->command_id, pdu->sequence_number, smpp_status_name(err->status),
           err->offset);
  uint64_t token;
  if (pdu->command_id == SMPP_SUBMIT_SM_RESP &&
      smpp_session_complete(ss, pdu->sequence_number, &token) == 0) {
    c->st.inflight--;
    c->st.lost++;
    c->want_ready = 1;
    if (c->cbs.lost) c->cbs.lost(c->ud, token);
  }
}

/* A decoded PDU the session did not answer itself: dispatched through
   handlers[]. Returns KK_ENOENT for one an ESME never receives (the session
   answers a request with generic_nack). */
static int on_pdu(struct smpp_session *ss, const struct smpp_pdu *pdu) {
  struct sess *s = smpp_session_ud(ss);
  if (KK_LOG_DEBUG >= kk_log_level) {
    char dump[512];
    smpp_dump(pdu, dump, sizeof dump);
    kk_debug(s->ctx, "received %s", dump);
  }
  for (size_t i = 0; i < sizeof handlers / sizeof handlers[0]; i++) {
    const struct pdu_handler *h = &handlers[i];
    if (h->command_id != pdu->command_id) continue;
    if (h->states & (1u << s->state)) {
      h->fn(s, pdu);
      return 0;
    }
    s->c->st.protocol_errors++;
    kk_warnx(s->ctx, "unexpected %s (sequence %u) while %s", smpp_cmd_name(pdu->command_id),
             pdu->sequence_number, smpp_session_state_name(s->state));
    if (!(pdu->command_id & SMPP_RESP))
      send_resp(s, pdu->command_id | SMPP_RESP, SMPP_ESME_RINVBNDSTS, pdu->sequence_number);
    return 0;
  }
  s->c->st.protocol_errors++;
  kk_warnx(s->ctx, "unexpected %s (sequence %u)", smpp_cmd_name(pdu->command_id),
           pdu->sequence_number);
  return KK_ENOENT;
}

/* The connection ended (or must: unframeable input, a drained unbind). */
static void on_session_closed(struct smpp_session *ss, int rc, const char *why) {
  struct sess *s = smpp_session_ud(ss);
  if (rc == KK_EPROTO) {
    s->c->st.protocol_errors++;
    smppc_drop(s, "%s, closing", why);
  } else {
    smppc_drop(s, "%s", why);
  }
}

/* A batch of received PDUs was handled: answers queued by the handlers go
   out in one write, and freed capacity is offered. */
static void on_read_done(struct smpp_session *ss) {
  struct sess *s = smpp_session_ud(ss);
  smppc_flush(s);
  fire_ready(s->c);
}

static const struct smpp_session_ops session_ops = {
    .pdu = on_pdu,
    .bad = on_bad_pdu,
    .closed = on_session_closed,
    .read_done = on_read_done,
};

/* ---- public API ------------------------------------------------------------------ */

/* Allocates the route and its sessions; freed by free_client() once the last
   handle closes after smpp_client_stop(). */
struct smpp_client *smpp_client_new(uv_loop_t *loop, const struct smpp_client_cfg *cfg,
                                    const struct smpp_client_cbs *cbs, void *ud) {
  struct smpp_client *c = kk_xcalloc(1, sizeof *c);
  c->loop = loop;
  c->cfg = *cfg;
  c->cfg.name[sizeof c->cfg.name - 1] = '\0';
  c->cfg.host[sizeof c->cfg.host - 1] = '\0';
  c->cfg.system_id[sizeof c->cfg.system_id - 1] = '\0';
  c->cfg.password[sizeof c->cfg.password - 1] = '\0';
  c->cfg.system_type[sizeof c->cfg.system_type - 1] = '\0';
  smpp_client_cfg_defaults(&c->cfg);
  if (c->cfg.sessions < 1) c->cfg.sessions = 1;
  if (c->cfg.window < 1) c->cfg.window = 1;
  if (c->cfg.max_sps < 0) c->cfg.max_sps = 0;
  if (c->cfg.reconnect_max_ms < c->cfg.reconnect_min_ms)
    c->cfg.reconnect_max_ms = c->cfg.reconnect_min_ms;
  if (cbs) c->cbs = *cbs;
  c->ud = ud;

  /* The bound tick runs a few times per timeout or keep-alive interval. */
  int span = c->cfg.resp_timeout_ms;
  if (c->cfg.enquire_link_s * 1000 < span) span = c->cfg.enquire_link_s * 1000;
  c->tick_ms = span / 4;
  if (c->tick_ms < 10) c->tick_ms = 10;
  if (c->tick_ms > 1000) c->tick_ms = 1000;

  /* The rate budget holds a tenth of a second's worth, at least one submit. */
  int burst = c->cfg.max_sps / 10;
  c->burst_milli = (int64_t)(burst > 1 ? burst : 1) * 1000;
  c->tokens_milli = c->burst_milli;
  c->tokens_ms = uv_now(loop);
  uv_timer_init(loop, &c->rate_timer);
  c->rate_timer.data = c;

  c->scratch = kk_xmalloc(SMPP_MAX_PDU_LEN);
  c->rng = uv_hrtime() ^ (uint64_t)(uintptr_t)c ^ 0x9E3779B97F4A7C15ull;
  if (c->rng == 0) c->rng = 1;

  struct smpp_session_cfg scfg = {
      .peer = "SMSC",
      .rbuf_size = (size_t)SMPP_MAX_PDU_LEN + READ_CHUNK,
      .out_max = OUT_MAX,
      .window = c->cfg.window,
      .scratch = c->scratch,
      .scratch_len = SMPP_MAX_PDU_LEN,
  };
  c->nsess = c->cfg.sessions;
  c->sess = kk_xcalloc((size_t)c->nsess, sizeof *c->sess);
  for (int i = 0; i < c->nsess; i++) {
    struct sess *s = &c->sess[i];
    s->c = c;
    s->idx = i;
    snprintf(s->ctx, sizeof s->ctx, "smpp[route=%s#%d]", c->cfg.name, i);
    s->state = SMPP_SESS_IDLE;
    s->ss = smpp_session_new(&scfg, &session_ops, s);
    s->connect_req.data = s;
    s->gai_req.data = s;
    uv_timer_init(loop, &s->timer);
    s->timer.data = s;
    uv_timer_init(loop, &s->pause_timer);
    s->pause_timer.data = s;
    s->backoff_ms = c->cfg.reconnect_min_ms;
    /* The first connection attempt starts on the next loop iteration. */
    s->retry_ms = 0;
    uv_timer_start(&s->timer, smppc_on_retry, 0, 0);
  }
  return c;
}

int smpp_client_submit(struct smpp_client *c, uint64_t token, const struct smpp_pdu *submit) {
  if (c->closing) return KK_ECLOSED;
  if (c->cfg.max_sps > 0 && rate_available(c) < 1000) return KK_EBUSY;
  struct sess *s = NULL;
  for (int k = 0; k < c->nsess; k++) {
    int i = (c->rr + k) % c->nsess;
    if (sess_can_submit(&c->sess[i])) {
      s = &c->sess[i];
      c->rr = (i + 1) % c->nsess;
      break;
    }
  }
  if (s == NULL) return KK_EBUSY;

  struct smpp_pdu pdu = *submit;
  pdu.command_id = SMPP_SUBMIT_SM;
  pdu.command_status = 0;
  int rc = smpp_session_request(s->ss, &pdu, token, uv_now(c->loop));
  if (rc == KK_EINVAL) return KK_EINVAL;
  if (rc < 0) return KK_EBUSY;
  c->st.inflight++;
  rate_spend(c);
  c->st.submitted++;
  kk_debug(s->ctx, "submit_sm sequence %u", pdu.sequence_number);
  smppc_flush(s);
  return 0;
}

void smpp_client_get_stats(const struct smpp_client *c, struct smpp_client_stats *out) {
  *out = c->st;
  out->sessions = c->nsess;
  out->bound = 0;
  for (int i = 0; i < c->nsess; i++)
    if (c->sess[i].state == SMPP_SESS_BOUND) out->bound++;
}

enum smpp_session_state smpp_client_session_state(const struct smpp_client *c, int i) {
  if (i < 0 || i >= c->nsess) return SMPP_SESS_CLOSED;
  return c->sess[i].state;
}

static void free_client(struct smpp_client *c) {
  for (int i = 0; i < c->nsess; i++) {
    struct sess *s = &c->sess[i];
    smpp_session_free(s->ss);
  }
  free(c->sess);
  free(c->scratch);
  free(c);
}

static void on_final_close(uv_handle_t *h) {
  struct smpp_client *c = h->data;
  if (--c->handles_open > 0) return;
  if (c->closed_cb) c->closed_cb(c->ud);
  free_client(c);
}

static void close_final(struct smpp_client *c, uv_handle_t *h) {
  h->data = c;
  c->handles_open++;
  uv_close(h, on_final_close);
}

/* Once every session is closed with nothing under way, closes the timers; the
   last close callback calls closed_cb and frees the route. */
void smppc_check_finish(struct smpp_client *c) {
  if (!c->closing || c->finishing) return;
  for (int i = 0; i < c->nsess; i++) {
    const struct sess *s = &c->sess[i];
    if (s->state != SMPP_SESS_CLOSED || s->tcp_open || s->gai_pending) return;
  }
  c->finishing = 1;
  for (int i = 0; i < c->nsess; i++) {
    close_final(c, (uv_handle_t *)&c->sess[i].timer);
    close_final(c, (uv_handle_t *)&c->sess[i].pause_timer);
  }
  close_final(c, (uv_handle_t *)&c->rate_timer);
  char ctx[96];
  snprintf(ctx, sizeof ctx, "smpp[route=%s]", c->cfg.name);
  kk_info(ctx, "all sessions closed");
}

void smpp_client_stop(struct smpp_client *c, void (*closed_cb)(void *ud)) {
  if (c->closing) return;
  c->closing = 1;
  c->closed_cb = closed_cb;
  c->close_deadline = uv_now(c->loop) + (uint64_t)c->cfg.resp_timeout_ms;
  uv_timer_stop(&c->rate_timer);
  for (int i = 0; i < c->nsess; i++) {
    struct sess *s = &c->sess[i];
    uv_timer_stop(&s->pause_timer);
    s->paused = 0;
    switch (s->state) {
      case SMPP_SESS_IDLE:
        uv_timer_stop(&s->timer);
        smppc_set_state(s, SMPP_SESS_CLOSED, "route closing");
        smppc_settle(s);
        break;
      case SMPP_SESS_CONNECTING:
      case SMPP_SESS_BINDING:
        smppc_drop(s, "route closing");
        break;
      case SMPP_SESS_BOUND:
        /* With submits in flight the tick unbinds once they are answered or
           the drain deadline passes. */
        if (s->ss->inflight == 0) start_unbind(s);
        break;
      case SMPP_SESS_UNBINDING:
      case SMPP_SESS_CLOSED:
        break;
    }
  }
  smppc_check_finish(c);
}
