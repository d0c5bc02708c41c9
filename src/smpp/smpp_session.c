/*
 * smpp_session.c - one SMPP connection: framing, batched output, sequence
 * numbers, the window of outstanding requests (see smpp_session.h).
 *
 * Input is parsed straight from one read area: libuv reads into the free
 * space after the bytes kept, whole PDUs are handled where they lie, and only
 * a partial PDU at the end moves to the front. A partial PDU is shorter than
 * SMPP_MAX_PDU_LEN, so a read area larger than that always has room.
 */
#include "smpp/smpp_session.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/kk_err.h"
#include "core/kk_mem.h"

/* Sequence numbers run from 1 to this value and wrap. */
#define SEQ_MAX 0x7FFFFFFFu
/* Encode area on the stack when the owner gives none. */
#define STACK_SCRATCH 1024

struct smpp_session *smpp_session_new(const struct smpp_session_cfg *cfg,
                                      const struct smpp_session_ops *ops, void *ud) {
  struct smpp_session *ss = kk_xcalloc(1, sizeof *ss);
  ss->cfg = *cfg;
  if (ss->cfg.peer == NULL) ss->cfg.peer = "peer";
  if (ss->cfg.rbuf_size <= SMPP_MAX_PDU_LEN) ss->cfg.rbuf_size = 2 * SMPP_MAX_PDU_LEN;
  ss->ops = *ops;
  ss->ud = ud;
  ss->wreq.data = ss;
  ss->rbuf = kk_xmalloc(ss->cfg.rbuf_size);
  kk_buf_init(&ss->out, cfg->out_max);
  kk_buf_init(&ss->wout, cfg->out_max);
  ss->next_seq = 1;
  if (cfg->window > 0) {
    uint32_t slots = 4;
    while (slots < (uint32_t)cfg->window * 2) slots *= 2;
    ss->win = kk_xcalloc(slots, sizeof *ss->win);
    ss->mask = slots - 1;
  }
  return ss;
}

void smpp_session_free(struct smpp_session *ss) {
  if (ss == NULL) return;
  kk_buf_fini(&ss->out);
  kk_buf_fini(&ss->wout);
  free(ss->rbuf);
  free(ss->win);
  free(ss);
}

/* ---- the window ------------------------------------------------------------ */

/* Returns the slot holding seq, or KK_ENOENT. */
static int win_find(const struct smpp_session *ss, uint32_t seq) {
  if (ss->win == NULL) return KK_ENOENT;
  uint32_t i = seq & ss->mask;
  while (ss->win[i].seq != 0) {
    if (ss->win[i].seq == seq) return (int)i;
    i = (i + 1) & ss->mask;
  }
  return KK_ENOENT;
}

static void win_put(struct smpp_session *ss, uint32_t seq, uint64_t token, uint64_t now) {
  uint32_t i = seq & ss->mask;
  while (ss->win[i].seq != 0) i = (i + 1) & ss->mask;
  ss->win[i].seq = seq;
  ss->win[i].token = token;
  ss->win[i].sent_ms = now;
  ss->inflight++;
}

/*
 * Empties slot pos. Later entries of the same probe run move back into the
 * hole when their home slot allows it, so lookups never need tombstones.
 */
static void win_remove(struct smpp_session *ss, uint32_t pos) {
  uint32_t i = pos, j = pos;
  for (;;) {
    j = (j + 1) & ss->mask;
    if (ss->win[j].seq == 0) break;
    uint32_t home = ss->win[j].seq & ss->mask;
    int stays = i <= j ? (i < home && home <= j) : (i < home || home <= j);
    if (!stays) {
      ss->win[i] = ss->win[j];
      i = j;
    }
  }
  ss->win[i].seq = 0;
  ss->inflight--;
}

uint32_t smpp_session_next_seq(struct smpp_session *ss) {
  uint32_t seq;
  do {
    seq = ss->next_seq;
    ss->next_seq = seq >= SEQ_MAX ? 1 : seq + 1;
  } while (win_find(ss, seq) >= 0);
  return seq;
}

int smpp_session_complete(struct smpp_session *ss, uint32_t seq, uint64_t *token) {
  int pos = win_find(ss, seq);
  if (pos < 0) return KK_ENOENT;
  *token = ss->win[pos].token;
  win_remove(ss, (uint32_t)pos);
  return 0;
}

void smpp_session_take_all(struct smpp_session *ss, void (*fn)(void *arg, uint64_t token),
                           void *arg) {
  for (uint32_t i = 0; ss->win != NULL && i <= ss->mask; i++) {
    if (ss->win[i].seq == 0) continue;
    uint64_t token = ss->win[i].token;
    ss->win[i].seq = 0;
    ss->inflight--;
    fn(arg, token);
  }
}

/* ---- output ---------------------------------------------------------------- */

static void on_write(uv_write_t *req, int status);

int smpp_session_flush(struct smpp_session *ss) {
  if (ss->writing || !ss->open || ss->stream == NULL || ss->out.len == 0) return 0;
  struct kk_buf tmp = ss->wout;
  ss->wout = ss->out;
  ss->out = tmp;
  uv_buf_t b = uv_buf_init(ss->wout.p, (unsigned)ss->wout.len);
  int rc = uv_write(&ss->wreq, ss->stream, &b, 1, on_write);
  if (rc < 0) {
    kk_buf_reset(&ss->wout);
    ss->open = 0;
    ss->uv_err = rc;
    return KK_EIO;
  }
  ss->writing = 1;
  return 0;
}

static void start_reading(struct smpp_session *ss);

static void on_write(uv_write_t *req, int status) {
  struct smpp_session *ss = req->data;
  ss->writing = 0;
  kk_buf_reset(&ss->wout);
  /* A cancelled write belongs to a session whose stream is being closed. */
  if (!ss->open || status == UV_ECANCELED) return;
  if (status < 0) {
    char why[96];
    snprintf(why, sizeof why, "write failed: %s", uv_strerror(status));
    ss->ops.closed(ss, KK_EIO, why);
    return;
  }
  if (ss->out.len > 0) {
    if (smpp_session_flush(ss) < 0) {
      char why[96];
      snprintf(why, sizeof why, "write failed: %s", uv_strerror(ss->uv_err));
      ss->ops.closed(ss, KK_EIO, why);
    }
    return;
  }
  if (ss->draining) {
    ss->ops.closed(ss, KK_OK, ss->drain_why);
    return;
  }
  if (!ss->reading && ss->cfg.out_high > 0 && smpp_session_backlog(ss) < ss->cfg.out_high / 2)
    start_reading(ss);
}

int smpp_session_send(struct smpp_session *ss, const struct smpp_pdu *pdu) {
  if (!ss->open) return KK_ECLOSED;
  uint8_t stack[STACK_SCRATCH];
  uint8_t *buf = ss->cfg.scratch ? ss->cfg.scratch : stack;
  size_t cap = ss->cfg.scratch ? ss->cfg.scratch_len : sizeof stack;
  size_t n;
  if (smpp_encode(pdu, buf, cap, &n) < 0) return KK_EINVAL;
  if (kk_buf_append(&ss->out, buf, n) < 0) return KK_ENOSPC;
  return 0;
}

int smpp_session_respond(struct smpp_session *ss, uint32_t command_id, uint32_t status,
                         uint32_t seq) {
  struct smpp_pdu pdu;
  memset(&pdu, 0, sizeof pdu);
  pdu.command_id = command_id;
  pdu.command_status = status;
  pdu.sequence_number = seq;
  return smpp_session_send(ss, &pdu);
}

int smpp_session_request(struct smpp_session *ss, struct smpp_pdu *pdu, uint64_t token,
                         uint64_t now) {
  if (!ss->open) return KK_ECLOSED;
  if (ss->win == NULL || ss->inflight >= ss->cfg.window) return KK_EBUSY;
  pdu->sequence_number = smpp_session_next_seq(ss);
  int rc = smpp_session_send(ss, pdu);
  if (rc < 0) return rc;
  win_put(ss, pdu->sequence_number, token, now);
  return 0;
}

void smpp_session_drain(struct smpp_session *ss, const char *why) {
  if (!ss->open || ss->draining) return;
  ss->draining = 1;
  snprintf(ss->drain_why, sizeof ss->drain_why, "%s", why);
  if (ss->reading) {
    uv_read_stop(ss->stream);
    ss->reading = 0;
  }
  if (!ss->writing && ss->out.len == 0) {
    ss->ops.closed(ss, KK_OK, ss->drain_why);
    return;
  }
  if (smpp_session_flush(ss) < 0) {
    char why2[96];
    snprintf(why2, sizeof why2, "write failed: %s", uv_strerror(ss->uv_err));
    ss->ops.closed(ss, KK_EIO, why2);
  }
}

/* ---- keep-alive, unbind ------------------------------------------------------- */

int smpp_session_tick(struct smpp_session *ss, uint64_t now, uint64_t timeout_ms,
                      uint64_t enquire_ms, uint32_t *late) {
  if (ss->enq_seq != 0 && now - ss->enq_sent_ms >= timeout_ms) {
    *late = 0;
    return KK_ETIMEDOUT;
  }
  for (uint32_t i = 0; ss->inflight > 0 && i <= ss->mask; i++) {
    if (ss->win[i].seq != 0 && now - ss->win[i].sent_ms >= timeout_ms) {
      *late = ss->win[i].seq;
      return KK_ETIMEDOUT;
    }
  }
  if (enquire_ms == 0 || ss->enq_seq != 0 || now - ss->enq_last_ms < enquire_ms) return 0;
  struct smpp_pdu pdu;
  memset(&pdu, 0, sizeof pdu);
  pdu.command_id = SMPP_ENQUIRE_LINK;
  pdu.sequence_number = smpp_session_next_seq(ss);
  int rc = smpp_session_send(ss, &pdu);
  if (rc < 0) return rc;
  ss->enq_seq = pdu.sequence_number;
  ss->enq_sent_ms = now;
  ss->enq_last_ms = now;
  return 0;
}

int smpp_session_unbind(struct smpp_session *ss) {
  struct smpp_pdu pdu;
  memset(&pdu, 0, sizeof pdu);
  pdu.command_id = SMPP_UNBIND;
  pdu.sequence_number = smpp_session_next_seq(ss);
  int rc = smpp_session_send(ss, &pdu);
  if (rc == 0) ss->unbind_seq = pdu.sequence_number;
  return rc;
}

/* ---- input ------------------------------------------------------------------ */

/* What the session answers itself. Returns 1 when the PDU was handled. */
static int builtin(struct smpp_session *ss, const struct smpp_pdu *pdu) {
  switch (pdu->command_id) {
    case SMPP_ENQUIRE_LINK:
      smpp_session_respond(ss, SMPP_ENQUIRE_LINK_RESP, SMPP_ESME_ROK, pdu->sequence_number);
      return 1;
    case SMPP_ENQUIRE_LINK_RESP:
      if (ss->enq_seq == 0 || pdu->sequence_number != ss->enq_seq) return 0;
      ss->enq_seq = 0;
      return 1;
    case SMPP_UNBIND_RESP:
      if (ss->unbind_seq == 0 || pdu->sequence_number != ss->unbind_seq) return 0;
      ss->unbind_seq = 0;
      ss->ops.closed(ss, KK_OK, "unbound");
      return 1;
    default:
      return 0;
  }
}

static void handle_pdu(struct smpp_session *ss, const uint8_t *p, size_t n) {
  struct smpp_pdu pdu;
  struct smpp_err err;
  if (smpp_decode(p, n, &pdu, &err) < 0) {
    if (!(pdu.command_id & SMPP_RESP))
      smpp_session_respond(ss, SMPP_GENERIC_NACK, err.status, pdu.sequence_number);
    if (ss->ops.bad) ss->ops.bad(ss, &pdu, &err);
    return;
  }
  if (builtin(ss, &pdu)) return;
  if (ss->ops.pdu(ss, &pdu) == KK_ENOENT && !(pdu.command_id & SMPP_RESP) && ss->open)
    smpp_session_respond(ss, SMPP_GENERIC_NACK, SMPP_ESME_RINVCMDID, pdu.sequence_number);
}

/* Input that cannot be framed: the stream cannot resynchronise. A
   generic_nack is queued for the owner to send or drop. */
static void frame_error(struct smpp_session *ss, const uint8_t *p, size_t len) {
  uint32_t seq = 0;
  if (len >= SMPP_HEADER_LEN)
    seq = (uint32_t)p[12] << 24 | (uint32_t)p[13] << 16 | (uint32_t)p[14] << 8 | p[15];
  smpp_session_respond(ss, SMPP_GENERIC_NACK, SMPP_ESME_RINVCMDLEN, seq);
  char why[96];
  snprintf(why, sizeof why, "unframeable data from the %s", ss->cfg.peer);
  ss->ops.closed(ss, KK_EPROTO, why);
}

/* Handles the whole PDUs in the read area and keeps the partial one. Stops
   when the session stops or drains. */
static void process(struct smpp_session *ss) {
  size_t off = 0;
  while (ss->open && !ss->draining && off < ss->rlen) {
    size_t n;
    int rc = smpp_frame(ss->rbuf + off, ss->rlen - off, &n);
    if (rc == KK_EAGAIN) break;
    if (rc < 0) {
      frame_error(ss, ss->rbuf + off, ss->rlen - off);
      break;
    }
    handle_pdu(ss, ss->rbuf + off, n);
    off += n;
  }
  if (!ss->open) {
    ss->rlen = 0;
  } else if (off == ss->rlen) {
    ss->rlen = 0;
  } else if (off > 0) {
    memmove(ss->rbuf, ss->rbuf + off, ss->rlen - off);
    ss->rlen -= off;
  }
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  (void)suggested;
  struct smpp_session *ss = h->data;
  buf->base = (char *)ss->rbuf + ss->rlen;
  buf->len = ss->cfg.rbuf_size - ss->rlen;
}

static void on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf) {
  (void)buf;
  struct smpp_session *ss = st->data;
  if (nread < 0) {
    char why[96];
    if (nread == UV_EOF)
      snprintf(why, sizeof why, "connection closed by the %s", ss->cfg.peer);
    else
      snprintf(why, sizeof why, "read failed: %s", uv_strerror((int)nread));
    ss->ops.closed(ss, nread == UV_EOF ? KK_ECLOSED : KK_EIO, why);
    return;
  }
  if (nread == 0 || !ss->open) return;
  ss->rlen += (size_t)nread;
  process(ss);
  if (ss->open && ss->reading && ss->cfg.out_high > 0 &&
      smpp_session_backlog(ss) >= ss->cfg.out_high) {
    uv_read_stop(st);
    ss->reading = 0;
  }
  if (ss->ops.read_done) ss->ops.read_done(ss);
}

size_t smpp_session_feed(struct smpp_session *ss, const void *p, size_t n) {
  if (!ss->open || ss->draining) return 0;
  size_t room = ss->cfg.rbuf_size - ss->rlen;
  if (n > room) n = room;
  memcpy(ss->rbuf + ss->rlen, p, n);
  ss->rlen += n;
  process(ss);
  if (ss->ops.read_done) ss->ops.read_done(ss);
  return n;
}

static void start_reading(struct smpp_session *ss) {
  int rc = uv_read_start(ss->stream, on_alloc, on_read);
  if (rc < 0) {
    char why[96];
    snprintf(why, sizeof why, "cannot read: %s", uv_strerror(rc));
    ss->ops.closed(ss, KK_EIO, why);
    return;
  }
  ss->reading = 1;
}

/* ---- start, stop ---------------------------------------------------------------- */

int smpp_session_start(struct smpp_session *ss, uv_stream_t *stream) {
  ss->stream = stream;
  ss->rlen = 0;
  kk_buf_reset(&ss->out);
  ss->next_seq = 1;
  ss->enq_seq = ss->unbind_seq = 0;
  ss->draining = 0;
  ss->uv_err = 0;
  if (stream == NULL) {
    /* No transport (tests): output stays queued in ss->out. */
    ss->open = 1;
    return 0;
  }
  stream->data = ss;
  int rc = uv_read_start(stream, on_alloc, on_read);
  if (rc < 0) {
    ss->uv_err = rc;
    return KK_EIO;
  }
  ss->reading = 1;
  ss->open = 1;
  return 0;
}

void smpp_session_stop(struct smpp_session *ss) {
  if (ss->reading && ss->stream != NULL) uv_read_stop(ss->stream);
  ss->reading = 0;
  ss->open = 0;
  ss->rlen = 0;
  kk_buf_reset(&ss->out);
  ss->enq_seq = ss->unbind_seq = 0;
}
