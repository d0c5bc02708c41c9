/*
 * smpp_client_conn.c - a route session's connection: name lookup, connect,
 * bind_transceiver, and the way down (drop: the submits in flight are
 * reported lost, then a reconnect after a backoff with jitter, or closed
 * when the route is stopping).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/kk_err.h"
#include "core/kk_log.h"
#include "smpp/smpp_client_int.h"
#include "smpp/smpp_session.h"

/* ---- teardown ------------------------------------------------------------- */

/* Picks the next reconnect delay: the backoff base plus up to a quarter of it
   as jitter, never above reconnect_max_ms; then doubles the base. */
static int next_backoff(struct sess *s) {
  struct smpp_client *c = s->c;
  int base = s->backoff_ms;
  c->rng ^= c->rng << 13;
  c->rng ^= c->rng >> 7;
  c->rng ^= c->rng << 17;
  int jitter = base >= 4 ? (int)(c->rng % (uint64_t)(base / 4 + 1)) : 0;
  int delay = base + jitter;
  if (delay > c->cfg.reconnect_max_ms) delay = c->cfg.reconnect_max_ms;
  s->backoff_ms = base > c->cfg.reconnect_max_ms / 2 ? c->cfg.reconnect_max_ms : base * 2;
  return delay;
}

void smppc_on_retry(uv_timer_t *t) {
  smppc_connect(t->data);
}

/*
 * Runs when a dropped session may have nothing left under way: once its socket
 * is closed and no name lookup is pending, an idle session arms its reconnect
 * and a closed one lets the route finish.
 */
void smppc_settle(struct sess *s) {
  if (s->tcp_open || s->gai_pending) return;
  if (s->state == SMPP_SESS_CLOSED) {
    smppc_check_finish(s->c);
  } else if (s->state == SMPP_SESS_IDLE && !s->c->closing &&
             !uv_is_active((uv_handle_t *)&s->timer)) {
    uv_timer_start(&s->timer, smppc_on_retry, (uint64_t)s->retry_ms, 0);
  }
}

static void on_tcp_close(uv_handle_t *h) {
  struct sess *s = h->data;
  s->tcp_open = 0;
  smppc_settle(s);
}

static void lost_one(void *arg, uint64_t token) {
  struct smpp_client *c = arg;
  c->st.inflight--;
  c->st.lost++;
  if (c->cbs.lost) c->cbs.lost(c->ud, token);
}

/* Reports every submit still in the window as lost, each exactly once. */
static void report_lost(struct sess *s) {
  smpp_session_take_all(s->ss, lost_one, s->c);
}

/*
 * Ends the current connection attempt or session for the given reason: closes
 * the socket, forgets pending requests, reports the in-flight submits lost and
 * goes idle (reconnecting later) or, when the route is closing, closed.
 */
void smppc_drop(struct sess *s, const char *fmt, ...) {
  struct smpp_client *c = s->c;
  if (s->state == SMPP_SESS_IDLE || s->state == SMPP_SESS_CLOSED) return;
  char why[200];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(why, sizeof why, fmt, ap);
  va_end(ap);

  /* A host name may resolve to several addresses: after a failed attempt the
     next one is tried. */
  if (s->state == SMPP_SESS_CONNECTING) s->addr_pick++;
  if (s->ss->inflight > 0) {
    size_t n = strlen(why);
    snprintf(why + n, sizeof why - n, ", %d submits lost", s->ss->inflight);
  }
  uv_timer_stop(&s->timer);
  uv_timer_stop(&s->pause_timer);
  s->paused = 0;
  s->bind_seq = 0;
  smpp_session_stop(s->ss);
  if (c->closing) {
    smppc_set_state(s, SMPP_SESS_CLOSED, "%s", why);
  } else {
    s->retry_ms = next_backoff(s);
    smppc_set_state(s, SMPP_SESS_IDLE, "%s; reconnecting in %d ms", why, s->retry_ms);
  }
  if (s->tcp_open && !uv_is_closing((uv_handle_t *)&s->tcp)) {
    s->tcp.data = s;        /* the session had it while started */
    uv_close((uv_handle_t *)&s->tcp, on_tcp_close);
  }
  if (s->gai_pending) uv_cancel((uv_req_t *)&s->gai_req);
  report_lost(s);
  smppc_settle(s);
}

/* ---- connecting and binding ------------------------------------------------ */

static void send_bind(struct sess *s) {
  const struct smpp_client_cfg *cfg = &s->c->cfg;
  struct smpp_pdu pdu;
  memset(&pdu, 0, sizeof pdu);
  pdu.command_id = SMPP_BIND_TRANSCEIVER;
  pdu.sequence_number = s->bind_seq = smpp_session_next_seq(s->ss);
  pdu.body.bind.system_id = smpp_cstr(cfg->system_id);
  pdu.body.bind.password = smpp_cstr(cfg->password);
  pdu.body.bind.system_type = smpp_cstr(cfg->system_type);
  pdu.body.bind.interface_version = INTERFACE_VERSION;
  smppc_send_pdu(s, &pdu);
}

static void on_connect(uv_connect_t *req, int status) {
  struct sess *s = req->data;
  /* Cancelled: the session was dropped while connecting. */
  if (status == UV_ECANCELED || s->state != SMPP_SESS_CONNECTING) return;
  if (status < 0) {
    smppc_drop(s, "connect failed: %s", uv_strerror(status));
    return;
  }
  if (smpp_session_start(s->ss, (uv_stream_t *)&s->tcp) < 0) {
    smppc_drop(s, "cannot read: %s", uv_strerror(s->ss->uv_err));
    return;
  }
  smppc_set_state(s, SMPP_SESS_BINDING, "connected, binding as transceiver \"%s\"",
            s->c->cfg.system_id);
  uv_timer_start(&s->timer, smppc_on_deadline, (uint64_t)s->c->cfg.resp_timeout_ms, 0);
  send_bind(s);
}

static void do_connect(struct sess *s, const struct sockaddr *addr) {
  int rc = uv_tcp_init(s->c->loop, &s->tcp);
  if (rc < 0) {
    smppc_drop(s, "cannot create socket: %s", uv_strerror(rc));
    return;
  }
  s->tcp.data = s;
  s->tcp_open = 1;
  uv_tcp_nodelay(&s->tcp, 1);
  rc = uv_tcp_connect(&s->connect_req, &s->tcp, addr, on_connect);
  if (rc < 0) smppc_drop(s, "connect failed: %s", uv_strerror(rc));
}

static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res) {
  struct sess *s = req->data;
  s->gai_pending = 0;
  if (s->state != SMPP_SESS_CONNECTING) {
    /* The attempt was dropped while the lookup ran. */
    uv_freeaddrinfo(res);
    smppc_settle(s);
    return;
  }
  if (status < 0 || res == NULL) {
    uv_freeaddrinfo(res);
    smppc_drop(s, "cannot resolve %s: %s", s->c->cfg.host, uv_strerror(status));
    return;
  }
  unsigned n = 0;
  for (struct addrinfo *ai = res; ai; ai = ai->ai_next) n++;
  struct addrinfo *ai = res;
  for (unsigned i = s->addr_pick % n; i > 0; i--) ai = ai->ai_next;
  do_connect(s, ai->ai_addr);
  uv_freeaddrinfo(res);
}

/* Starts a connection attempt: numeric hosts directly, names via getaddrinfo. */
void smppc_connect(struct sess *s) {
  struct smpp_client *c = s->c;
  smppc_set_state(s, SMPP_SESS_CONNECTING, "connecting to %s:%d", c->cfg.host, c->cfg.port);
  s->gen++;
  s->bind_seq = 0;
  uv_timer_start(&s->timer, smppc_on_deadline, (uint64_t)c->cfg.resp_timeout_ms, 0);

  union {
    struct sockaddr sa;
    struct sockaddr_in in4;
    struct sockaddr_in6 in6;
  } addr;
  if (uv_ip4_addr(c->cfg.host, c->cfg.port, &addr.in4) == 0 ||
      uv_ip6_addr(c->cfg.host, c->cfg.port, &addr.in6) == 0) {
    do_connect(s, &addr.sa);
    return;
  }
  char port[16];
  snprintf(port, sizeof port, "%d", c->cfg.port);
  struct addrinfo hints;
  memset(&hints, 0, sizeof hints);
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  int rc = uv_getaddrinfo(c->loop, &s->gai_req, on_resolved, c->cfg.host, port, &hints);
  if (rc < 0) {
    smppc_drop(s, "cannot resolve %s: %s", c->cfg.host, uv_strerror(rc));
    return;
  }
  s->gai_pending = 1;
}
