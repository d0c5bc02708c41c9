/*
 * sim_sess.c - the simulated SMSC's connections: accepting, handing each to
 * an smpp_session (the SMPP connection code kaskad's client uses too), and
 * closing.
 *
 * Output is coalesced: PDUs produced while handling one read (or one timer
 * run) are queued on the session, which goes on the SMSC's dirty list, and
 * written with one uv_write when the handler finishes. When a peer stops
 * reading, the session stops reading too (SIM_OUT_HIGH) and is dropped once
 * SIM_OUT_MAX bytes are queued.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/kk_err.h"
#include "core/kk_log.h"
#include "core/kk_mem.h"
#include "sim_smsc_int.h"

static const struct smpp_session_ops session_ops;

int sim_sess_usable(const struct sim_sess *s) {
  return !s->closing && !s->ss->draining && smpp_session_backlog(s->ss) < SIM_OUT_HIGH;
}

struct sim_sess *sim_sess_find(struct sim_smsc *m, uint64_t id) {
  struct sim_sess *s = m->slots[id & ((1u << SIM_SLOT_BITS) - 1)];
  return s && s->id == id ? s : NULL;
}

static void mark_dirty(struct sim_sess *s) {
  if (s->dirty) return;
  s->dirty = 1;
  s->dirty_next = s->smsc->dirty;
  s->smsc->dirty = s;
}

/* Frees the session once libuv is done with its handle (and so with any
   write of the smpp_session). */
static void on_close(uv_handle_t *h) {
  struct sim_sess *s = h->data;
  struct sim_smsc *m = s->smsc;
  if (s->dirty) {
    struct sim_sess **pp = &m->dirty;
    while (*pp != s) pp = &(*pp)->dirty_next;
    *pp = s->dirty_next;
  }
  smpp_session_free(s->ss);
  free(s);
}

void sim_sess_stop(struct sim_sess *s, const char *why) {
  if (s->closing) return;
  struct sim_smsc *m = s->smsc;
  s->closing = 1;
  if (s->id) {
    m->slots[s->id & ((1u << SIM_SLOT_BITS) - 1)] = NULL;
    while (m->slots_hi > 1 && m->slots[m->slots_hi - 1] == NULL) m->slots_hi--;
    m->nsessions--;
    m->stats.disconnects++;
    kk_info(s->ctx, "closed: %s", why);
  }
  smpp_session_stop(s->ss);
  s->tcp.data = s;                    /* the smpp_session had it while open */
  uv_close((uv_handle_t *)&s->tcp, on_close);
}

/* Starts writing the queued output unless a write is already in flight. */
static void flush(struct sim_sess *s) {
  if (s->closing) return;
  if (smpp_session_flush(s->ss) < 0) sim_sess_stop(s, uv_strerror(s->ss->uv_err));
}

void sim_sess_flush_all(struct sim_smsc *m) {
  while (m->dirty) {
    struct sim_sess *s = m->dirty;
    m->dirty = s->dirty_next;
    s->dirty = 0;
    s->dirty_next = NULL;
    flush(s);
  }
}

int sim_sess_send(struct sim_sess *s, const struct smpp_pdu *pdu) {
  if (s->closing) return KK_ECLOSED;
  int rc = smpp_session_send(s->ss, pdu);
  if (rc == KK_ENOSPC) {
    sim_sess_stop(s, "peer does not read its responses");
    return KK_ENOSPC;
  }
  if (rc) {
    kk_error(s->ctx, "cannot encode %s seq=%u: %s", smpp_cmd_name(pdu->command_id),
             pdu->sequence_number, kk_strerror(rc));
    return rc;
  }
  mark_dirty(s);
  return 0;
}

void sim_sess_drain(struct sim_sess *s, const char *why) {
  if (s->closing) return;
  smpp_session_drain(s->ss, why);
}

/* The session's PDUs go to sim_smsc.c. */
static int on_pdu(struct smpp_session *ss, const struct smpp_pdu *p) {
  return sim_smsc_on_pdu(smpp_session_ud(ss), p);
}

static void on_bad(struct smpp_session *ss, const struct smpp_pdu *p,
                   const struct smpp_err *err) {
  sim_smsc_on_bad(smpp_session_ud(ss), p, err);
}

/* The connection ends: a stream that cannot be framed gets its generic_nack
   written first (it cannot resynchronise), the rest closes now. */
static void on_closed(struct smpp_session *ss, int rc, const char *why) {
  struct sim_sess *s = smpp_session_ud(ss);
  if (rc == KK_EPROTO) {
    kk_warnx(s->ctx, "bad command_length, closing");
    s->smsc->stats.generic_nacks++;
    mark_dirty(s);
    sim_sess_drain(s, "unframeable input");
    return;
  }
  sim_sess_stop(s, why);
}

/* Answers produced while handling a read go out together (the session's
   own answers, such as enquire_link_resp, included). */
static void on_read_done(struct smpp_session *ss) {
  struct sim_sess *s = smpp_session_ud(ss);
  if (s->ss->out.len > 0) mark_dirty(s);
  sim_sess_flush_all(s->smsc);
}

static const struct smpp_session_ops session_ops = {
    .pdu = on_pdu,
    .bad = on_bad,
    .closed = on_closed,
    .read_done = on_read_done,
};

static void peer_name(uv_tcp_t *tcp, char *out, size_t cap) {
  struct sockaddr_storage ss;
  int len = sizeof ss;
  char host[64] = "?";
  int port = 0, v6 = 0;
  if (uv_tcp_getpeername(tcp, (struct sockaddr *)&ss, &len) == 0) {
    if (ss.ss_family == AF_INET6) {
      v6 = 1;
      uv_ip6_name((struct sockaddr_in6 *)&ss, host, sizeof host);
      port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    } else {
      uv_ip4_name((struct sockaddr_in *)&ss, host, sizeof host);
      port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
    }
  }
  snprintf(out, cap, v6 ? "[%s]:%d" : "%s:%d", host, port);
}

/* Accepts a connection into a new session, which on_close frees. */
static void on_connection(uv_stream_t *server, int status) {
  struct sim_smsc *m = server->data;
  if (status < 0) {
    kk_warnx("smsc", "accept: %s", uv_strerror(status));
    return;
  }
  struct sim_sess *s = kk_xcalloc(1, sizeof *s);
  s->smsc = m;
  static const struct smpp_session_cfg cfg = {
      .peer = "ESME",
      .rbuf_size = SIM_RBUF,
      .out_max = SIM_OUT_MAX,
      .out_high = SIM_OUT_HIGH,
  };
  s->ss = smpp_session_new(&cfg, &session_ops, s);
  uv_tcp_init(m->loop, &s->tcp);
  s->tcp.data = s;
  if (uv_accept(server, (uv_stream_t *)&s->tcp) != 0 || m->closing) {
    uv_close((uv_handle_t *)&s->tcp, on_close);
    return;
  }
  size_t slot = 1;
  while (slot < SIM_MAX_SESSIONS && m->slots[slot]) slot++;
  if (slot == SIM_MAX_SESSIONS) {
    kk_warnx("smsc", "refusing a connection: %d already open", SIM_MAX_SESSIONS - 1);
    uv_close((uv_handle_t *)&s->tcp, on_close);
    return;
  }
  s->id = (++m->next_serial << SIM_SLOT_BITS) | slot;
  m->slots[slot] = s;
  if (slot + 1 > m->slots_hi) m->slots_hi = slot + 1;
  m->nsessions++;
  char peer[80];
  peer_name(&s->tcp, peer, sizeof peer);
  snprintf(s->ctx, sizeof s->ctx, "smsc[%s]", peer);
  uv_tcp_nodelay(&s->tcp, 1);
  kk_info(s->ctx, "connected");
  if (smpp_session_start(s->ss, (uv_stream_t *)&s->tcp) < 0)
    sim_sess_stop(s, uv_strerror(s->ss->uv_err));
}

int sim_sess_listen(struct sim_smsc *m, const struct sockaddr *addr) {
  int rc = uv_tcp_bind(&m->listener, addr, 0);
  if (rc == 0) rc = uv_listen((uv_stream_t *)&m->listener, 256, on_connection);
  if (rc) {
    kk_error("smsc", "cannot listen: %s", uv_strerror(rc));
    return KK_EIO;
  }
  return 0;
}
