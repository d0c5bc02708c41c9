/*
 * smpp_session.h - one SMPP 3.4 connection, whichever side of it we are:
 * the part the ESME role (smpp_client), the SMSC role (the simulator, the
 * server for customers) share.
 *
 * A session reads PDUs from a connected libuv stream, frames and decodes them
 * and hands each to its owner through ops->pdu; it answers what needs no
 * decision on its own: enquire_link, a request that does not decode
 * (generic_nack with the decoder's status), a request the owner does not
 * take (generic_nack ESME_RINVCMDID). Output is batched: PDUs queued with
 * smpp_session_send() collect in one buffer and go out with one uv_write per
 * smpp_session_flush(); while a write is under way new PDUs collect for the
 * next one. Sequence numbers run from 1 to 0x7FFFFFFF and wrap, skipping
 * those still outstanding. Requests sent with smpp_session_request() stay in
 * the window (a small open-addressing table keyed by sequence number, no
 * allocation per PDU) until smpp_session_complete() takes them out;
 * smpp_session_tick() notices those left unanswered too long and keeps the
 * link alive with enquire_link.
 *
 * The session owns its buffers, not the stream: the owner connects or
 * accepts, calls smpp_session_start() with the stream, and closes the stream
 * itself once ops->closed has told it the connection is over (or when it
 * decides so), calling smpp_session_stop() first. The stream's data slot
 * points at the session while it is started; smpp_session_ud() leads back to
 * the owner. The session logs nothing: the owner knows the context.
 */
#ifndef SMPP_SESSION_H
#define SMPP_SESSION_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "core/kk_buf.h"
#include "smpp/smpp_codec.h"

struct smpp_session;

struct smpp_session_ops {
  /* A PDU that decoded and that the session did not handle itself (views
     valid during the call only). Returns 0 when handled, or KK_ENOENT when
     this role does not take the command: a request is then answered with
     generic_nack ESME_RINVCMDID. */
  int (*pdu)(struct smpp_session *ss, const struct smpp_pdu *pdu);
  /* Optional: a PDU with a usable header that does not decode. A request has
     already been answered with generic_nack carrying err->status. */
  void (*bad)(struct smpp_session *ss, const struct smpp_pdu *pdu, const struct smpp_err *err);
  /* The connection is over or must end. rc says why: KK_OK (drained after
     smpp_session_drain(), or our unbind was answered), KK_ECLOSED (the peer
     closed), KK_EIO (a read or write failed), KK_EPROTO (unframeable input; a
     generic_nack is queued, so drain to send it or close at once) or
     KK_ENOSPC (input overflow). why is text for the log, valid during the
     call. The owner calls smpp_session_stop() and closes the stream. */
  void (*closed)(struct smpp_session *ss, int rc, const char *why);
  /* Optional: a read was handled (the end of one batch of received PDUs;
     the place to flush other sessions or offer capacity). */
  void (*read_done)(struct smpp_session *ss);
};

struct smpp_session_cfg {
  const char *peer;         /* "SMSC" or "ESME": names the peer in closed's why */
  size_t rbuf_size;         /* read area, > SMPP_MAX_PDU_LEN */
  size_t out_max;           /* queued output beyond which send fails */
  size_t out_high;          /* output waiting that pauses reading, 0 = never */
  int window;               /* requests outstanding at once, 0 = no window */
  uint8_t *scratch;         /* encode area the owner shares between its sessions, */
  size_t scratch_len;       /*   or NULL: PDUs up to 1 KiB, encoded on the stack */
};

/* One outstanding request: a slot of the window. */
struct smpp_session_req {
  uint32_t seq;             /* sequence_number; 0 marks an empty slot */
  uint64_t token;           /* the owner's token */
  uint64_t sent_ms;         /* loop time the request was queued */
};

/* Fields are read-only for the owner unless noted. */
struct smpp_session {
  struct smpp_session_cfg cfg;
  struct smpp_session_ops ops;
  void *ud;
  uv_stream_t *stream;      /* NULL while stopped */
  uv_write_t wreq;
  int open;                 /* started, and the stream may be read and written */
  int reading;              /* uv_read_start active */
  int writing;              /* wreq is in flight with wout */
  int draining;             /* close once queued output is written */
  int uv_err;               /* libuv's code of the last failed write start */
  char drain_why[96];

  uint8_t *rbuf;            /* cfg.rbuf_size bytes; a partial PDU stays at the front */
  size_t rlen;
  struct kk_buf out;        /* PDUs queued since the last write began */
  struct kk_buf wout;       /* PDUs being written */

  uint32_t next_seq;        /* next sequence_number to hand out */
  struct smpp_session_req *win;  /* the window, mask + 1 slots (NULL without one) */
  uint32_t mask;
  int inflight;             /* occupied slots */

  uint32_t enq_seq;         /* our outstanding enquire_link, 0 if none (the owner
                               may clear it, e.g. on a generic_nack for it) */
  uint64_t enq_sent_ms;     /* when enq_seq was sent */
  uint64_t enq_last_ms;     /* when the last enquire_link was due; the owner sets
                               it when the link comes up (e.g. at bind) */
  uint32_t unbind_seq;      /* our outstanding unbind, 0 if none */
};

/* Allocates a stopped session; cfg and ops are copied. Free with
   smpp_session_free() once its stream is closed. */
struct smpp_session *smpp_session_new(const struct smpp_session_cfg *cfg,
                                      const struct smpp_session_ops *ops, void *ud);
void smpp_session_free(struct smpp_session *ss);
static inline void *smpp_session_ud(const struct smpp_session *ss) {
  return ss->ud;
}

/* The stream is connected: empties the buffers, restarts sequence numbers
   at 1 and starts reading. The window must be empty. Returns 0 or KK_EIO
   (ss->uv_err says why). */
int smpp_session_start(struct smpp_session *ss, uv_stream_t *stream);
/* The connection is going away: stops reading, forgets queued output, partial
   input and our enquire_link and unbind. The window keeps its requests for
   smpp_session_take_all(). A write under way ends with UV_ECANCELED once the
   owner closes the stream. */
void smpp_session_stop(struct smpp_session *ss);

/* Queues a PDU (its sequence_number already set). Returns 0, KK_ECLOSED,
   KK_EINVAL (it does not encode) or KK_ENOSPC (cfg.out_max reached). */
int smpp_session_send(struct smpp_session *ss, const struct smpp_pdu *pdu);
/* Queues a header-only response (generic_nack, enquire_link_resp...). */
int smpp_session_respond(struct smpp_session *ss, uint32_t command_id, uint32_t status,
                         uint32_t seq);
/* Starts writing the queued output unless a write is under way. Returns 0,
   or KK_EIO when the write could not start (ss->uv_err says why; the session
   is no longer open and the owner ends it, outside any send of its own). */
int smpp_session_flush(struct smpp_session *ss);
/* Stops reading; once the queued output is written, closed(KK_OK, why) is
   called (at once when nothing is queued or being written). */
void smpp_session_drain(struct smpp_session *ss, const char *why);
/* Output queued or being written, in bytes. */
static inline size_t smpp_session_backlog(const struct smpp_session *ss) {
  return ss->out.len + ss->wout.len;
}

/* Hands out the next sequence_number, skipping those in the window. */
uint32_t smpp_session_next_seq(struct smpp_session *ss);
/* Sends a request that enters the window: sets its sequence_number (also
   stored in pdu), queues it and remembers token and now. Returns 0,
   KK_EBUSY (the window is full), KK_ECLOSED, KK_EINVAL or KK_ENOSPC. */
int smpp_session_request(struct smpp_session *ss, struct smpp_pdu *pdu, uint64_t token,
                         uint64_t now);
/* Takes the request with this sequence number out of the window. Returns 0
   with *token set, or KK_ENOENT. */
int smpp_session_complete(struct smpp_session *ss, uint32_t seq, uint64_t *token);
/* Empties the window, calling fn(arg, token) once for each request (each
   slot is empty before its call). */
void smpp_session_take_all(struct smpp_session *ss, void (*fn)(void *arg, uint64_t token),
                           void *arg);
/*
 * Periodic work: returns KK_ETIMEDOUT when our enquire_link (*late = 0) or a
 * request in the window (*late = its sequence number) has waited timeout_ms
 * for its answer; otherwise sends enquire_link when enquire_ms (0 = never)
 * have passed since the last one was due, and returns 0 or the send's error.
 */
int smpp_session_tick(struct smpp_session *ss, uint64_t now, uint64_t timeout_ms,
                      uint64_t enquire_ms, uint32_t *late);
/* Sends unbind; its unbind_resp calls closed(KK_OK, "unbound"). Returns 0 or
   the send's error. */
int smpp_session_unbind(struct smpp_session *ss);

/* Feeds received bytes as a read would (for tests and fuzzers; the bytes are
   copied into the read area, at most what fits). Returns the bytes taken. */
size_t smpp_session_feed(struct smpp_session *ss, const void *p, size_t n);

#endif
