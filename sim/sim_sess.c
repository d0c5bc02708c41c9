/*
 * sim_sess.c - the simulated SMSC's connections: accepting, reading and
 * framing PDUs, queueing answers and writing them in batches, closing.
 *
 * Output is coalesced: PDUs produced while handling one read (or one timer
 * run) are appended to the session's out buffer and written with one
 * uv_write when the handler finishes. While a write is in flight new PDUs
 * collect in out, and the write callback sends them. When a peer stops
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

static size_t backlog(const struct sim_sess *s) {
  return s->out.len + s->wout.len;
}

int sim_sess_usable(const struct sim_sess *s) {
  return !s->closing && !s->draining && backlog(s) < SIM_OUT_HIGH;
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

/* Frees the session once libuv is done with its handle. */
static void on_close(uv_handle_t *h) {
  struct sim_sess *s = h->data;
  struct sim_smsc *m = s->smsc;
  if (s->dirty) {
    struct sim_sess **pp = &m->dirty;
    while (*pp != s) pp = &(*pp)->dirty_next;
    *pp = s->dirty_next;
  }
  kk_buf_fini(&s->out);
  kk_buf_fini(&s->wout);
  free(s->rbuf);
  free(s);
}

void sim_sess_close(struct sim_sess *s, const char *why) {
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
  uv_close((uv_handle_t *)&s->tcp, on_close);
}

static void start_reading(struct sim_sess *s);
static void flush(struct sim_sess *s);

static void on_write(uv_write_t *req, int status) {
  struct sim_sess *s = req->data;
  s->writing = 0;
  kk_buf_reset(&s->wout);
  if (s->closing) return;
  if (status < 0) {
    sim_sess_close(s, uv_strerror(status));
    return;
  }
  if (s->out.len) {
    flush(s);
  } else if (s->draining) {
    sim_sess_close(s, s->drain_why);
    return;
  }
  if (!s->reading && !s->draining && backlog(s) < SIM_OUT_HIGH / 2) start_reading(s);
}

/* Starts writing the queued output unless a write is already in flight. */
static void flush(struct sim_sess *s) {
  if (s->closing || s->writing || s->out.len == 0) return;
  struct kk_buf t = s->wout;
  s->wout = s->out;
  s->out = t;
  uv_buf_t b = uv_buf_init(s->wout.p, (unsigned)s->wout.len);
  s->wreq.data = s;
  int rc = uv_write(&s->wreq, (uv_stream_t *)&s->tcp, &b, 1, on_write);
  if (rc) {
    sim_sess_close(s, uv_strerror(rc));
    return;
  }
  s->writing = 1;
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
  /* Everything the SMSC sends is small; 1 KiB holds the largest deliver_sm. */
  uint8_t tmp[1024];
  size_t n;
  int rc = smpp_encode(pdu, tmp, sizeof tmp, &n);
  if (rc) {
    kk_error(s->ctx, "cannot encode %s seq=%u: %s", smpp_cmd_name(pdu->command_id),
             pdu->sequence_number, kk_strerror(rc));
    return rc;
  }
  if (kk_buf_append(&s->out, tmp, n)) {
    sim_sess_close(s, "peer does not read its responses");
    return KK_ENOSPC;
  }
  mark_dirty(s);
  return 0;
}

void sim_sess_drain_close(struct sim_sess *s, const char *why) {
  if (s->closing || s->draining) return;
  s->draining = 1;
  s->drain_why = why;
  if (s->reading) {
    uv_read_stop((uv_stream_t *)&s->tcp);
    s->reading = 0;
  }
  if (!s->writing && s->out.len == 0)
    sim_sess_close(s, why);
  else
    mark_dirty(s);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  struct sim_sess *s = h->data;
  buf->base = (char *)s->rbuf + s->rlen;
  buf->len = SIM_RBUF - s->rlen;
}

/* Answers a stream that cannot be framed and closes: it cannot resynchronise. */
static void frame_error(struct sim_sess *s, const uint8_t *p, size_t len) {
  struct smpp_pdu nack;
  memset(&nack, 0, sizeof nack);
  nack.command_id = SMPP_GENERIC_NACK;
  nack.command_status = SMPP_ESME_RINVCMDLEN;
  if (len >= SMPP_HEADER_LEN)
    nack.sequence_number = (uint32_t)p[12] << 24 | (uint32_t)p[13] << 16 |
                           (uint32_t)p[14] << 8 | p[15];
  kk_warnx(s->ctx, "bad command_length, closing");
  s->smsc->stats.generic_nacks++;
  sim_sess_send(s, &nack);
  sim_sess_drain_close(s, "unframeable input");
}

static void on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf) {
  struct sim_sess *s = st->data;
  if (nread < 0) {
    sim_sess_close(s, nread == UV_EOF ? "peer closed" : uv_strerror((int)nread));
    return;
  }
  s->rlen += (size_t)nread;
  size_t off = 0;
  while (!s->closing && !s->draining) {
    size_t plen;
    int rc = smpp_frame(s->rbuf + off, s->rlen - off, &plen);
    if (rc == KK_EAGAIN) break;
    if (rc) {
      frame_error(s, s->rbuf + off, s->rlen - off);
      break;
    }
    sim_smsc_on_pdu(s, s->rbuf + off, plen);
    off += plen;
  }
  if (off == s->rlen) {
    s->rlen = 0;
  } else if (off > 0) {
    memmove(s->rbuf, s->rbuf + off, s->rlen - off);
    s->rlen -= off;
  }
  if (s->reading && !s->closing && backlog(s) >= SIM_OUT_HIGH) {
    uv_read_stop(st);
    s->reading = 0;
  }
  sim_sess_flush_all(s->smsc);
}

static void start_reading(struct sim_sess *s) {
  int rc = uv_read_start((uv_stream_t *)&s->tcp, on_alloc, on_read);
  if (rc) {
    sim_sess_close(s, uv_strerror(rc));
    return;
  }
  s->reading = 1;
}

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
  kk_buf_init(&s->out, SIM_OUT_MAX);
  kk_buf_init(&s->wout, SIM_OUT_MAX);
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
  s->rbuf = kk_xmalloc(SIM_RBUF);
  char peer[80];
  peer_name(&s->tcp, peer, sizeof peer);
  snprintf(s->ctx, sizeof s->ctx, "smsc[%s]", peer);
  uv_tcp_nodelay(&s->tcp, 1);
  kk_info(s->ctx, "connected");
  start_reading(s);
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
