/*
 * test_smpp_session.c - the SMPP session layer without a transport: bytes go
 * in through smpp_session_feed(), what the session answers is read back from
 * its output queue, and the clock is whatever the test passes.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <uv.h>

#include "core/kk_err.h"
#include "kk_test.h"
#include "smpp/smpp_codec.h"
#include "smpp/smpp_session.h"

#define MAX_SEEN 16

/* What the owner's callbacks saw. */
struct seen {
  int npdu, nbad, nclosed;
  uint32_t cmd[MAX_SEEN], seq[MAX_SEEN];
  int closed_rc;
  int refuse;               /* pdu returns KK_ENOENT */
  int bad_status;           /* err->status of the last bad PDU */
};

static int on_pdu(struct smpp_session *ss, const struct smpp_pdu *pdu) {
  struct seen *w = smpp_session_ud(ss);
  if (w->npdu < MAX_SEEN) {
    w->cmd[w->npdu] = pdu->command_id;
    w->seq[w->npdu] = pdu->sequence_number;
  }
  w->npdu++;
  return w->refuse ? KK_ENOENT : 0;
}

static void on_bad(struct smpp_session *ss, const struct smpp_pdu *pdu,
                   const struct smpp_err *err) {
  (void)pdu;
  struct seen *w = smpp_session_ud(ss);
  w->nbad++;
  w->bad_status = (int)err->status;
}

static void on_closed(struct smpp_session *ss, int rc, const char *why) {
  (void)why;
  struct seen *w = smpp_session_ud(ss);
  w->nclosed++;
  w->closed_rc = rc;
  smpp_session_stop(ss);
}

static const struct smpp_session_ops ops = {on_pdu, on_bad, on_closed, NULL};

/* A started session with no stream; window requests at most. */
static struct smpp_session *new_session(struct seen *w, int window) {
  memset(w, 0, sizeof *w);
  struct smpp_session_cfg cfg = {
      .peer = "SMSC", .rbuf_size = 2 * SMPP_MAX_PDU_LEN, .out_max = 1 << 20, .window = window};
  struct smpp_session *ss = smpp_session_new(&cfg, &ops, w);
  ASSERT_EQ(smpp_session_start(ss, NULL), 0);
  return ss;
}

/* Encodes a PDU into buf; returns its length. */
static size_t encode(const struct smpp_pdu *pdu, uint8_t *buf, size_t cap) {
  size_t n;
  ASSERT_EQ(smpp_encode(pdu, buf, cap, &n), 0);
  return n;
}

static size_t encode_header(uint32_t cmd, uint32_t status, uint32_t seq, uint8_t *buf) {
  struct smpp_pdu pdu;
  memset(&pdu, 0, sizeof pdu);
  pdu.command_id = cmd;
  pdu.command_status = status;
  pdu.sequence_number = seq;
  return encode(&pdu, buf, 64);
}

/* Decodes the i-th PDU queued for output into *out. Returns 0 or KK_ENOENT. */
static int queued(const struct smpp_session *ss, int i, struct smpp_pdu *out) {
  size_t off = 0, n;
  while (off < ss->out.len && smpp_frame((const uint8_t *)ss->out.p + off,
                                         ss->out.len - off, &n) == 0) {
    if (i-- == 0) {
      struct smpp_err err;
      ASSERT_EQ(smpp_decode((const uint8_t *)ss->out.p + off, n, out, &err), 0);
      return 0;
    }
    off += n;
  }
  return KK_ENOENT;
}

KK_TEST(smpp_session_frames_across_reads) {
  struct seen w;
  struct smpp_session *ss = new_session(&w, 0);
  uint8_t buf[512];
  size_t len = 0;
  struct smpp_pdu pdu;
  memset(&pdu, 0, sizeof pdu);
  pdu.command_id = SMPP_SUBMIT_SM_RESP;
  pdu.sequence_number = 7;
  pdu.body.message_id = smpp_cstr("abc");
  len += encode(&pdu, buf + len, sizeof buf - len);
  len += encode_header(SMPP_GENERIC_NACK, SMPP_ESME_RINVCMDID, 8, buf + len);
  pdu.sequence_number = 9;
  size_t last = encode(&pdu, buf + len, sizeof buf - len);
  len += last;
  /* One byte at a time: nothing is handled before a PDU is whole. */
  for (size_t i = 0; i < len; i++) {
    ASSERT_EQ(smpp_session_feed(ss, buf + i, 1), 1);
    if (i == 15) ASSERT_EQ(w.npdu, 0);
  }
  ASSERT_EQ(w.npdu, 3);
  ASSERT_EQ(w.seq[0], 7);
  ASSERT_EQ(w.cmd[1], SMPP_GENERIC_NACK);
  ASSERT_EQ(w.seq[2], 9);
  ASSERT_EQ(ss->rlen, 0);
  /* Two and a half PDUs, then the rest. */
  size_t cut = len - 5;
  ASSERT_EQ(smpp_session_feed(ss, buf, cut), cut);
  ASSERT_EQ(w.npdu, 5);
  ASSERT_EQ(ss->rlen, last - 5);        /* the partial third PDU waits at the front */
  ASSERT_EQ(smpp_session_feed(ss, buf + cut, len - cut), len - cut);
  ASSERT_EQ(w.npdu, 6);
  ASSERT_EQ(ss->rlen, 0);
  ASSERT_EQ(w.nbad, 0);
  ASSERT_EQ(w.nclosed, 0);
  smpp_session_free(ss);
}

KK_TEST(smpp_session_window_full_and_sequence_numbers) {
  struct seen w;
  struct smpp_session *ss = new_session(&w, 2);
  struct smpp_pdu pdu;
  memset(&pdu, 0, sizeof pdu);
  pdu.command_id = SMPP_SUBMIT_SM;
  ASSERT_EQ(smpp_session_request(ss, &pdu, 100, 0), 0);
  ASSERT_EQ(pdu.sequence_number, 1);
  ASSERT_EQ(smpp_session_request(ss, &pdu, 101, 0), 0);
  ASSERT_EQ(pdu.sequence_number, 2);
  ASSERT_EQ(ss->inflight, 2);
  ASSERT_EQ(smpp_session_request(ss, &pdu, 102, 0), KK_EBUSY);
  uint64_t token = 0;
  ASSERT_EQ(smpp_session_complete(ss, 3, &token), KK_ENOENT);
  ASSERT_EQ(smpp_session_complete(ss, 1, &token), 0);
  ASSERT_EQ(token, 100);
  ASSERT_EQ(smpp_session_complete(ss, 1, &token), KK_ENOENT);
  /* Wrapping skips numbers still outstanding (2) and never gives 0. */
  ss->next_seq = 0x7FFFFFFFu;
  ASSERT_EQ(smpp_session_request(ss, &pdu, 103, 0), 0);
  ASSERT_EQ(pdu.sequence_number, 0x7FFFFFFFu);
  ASSERT_EQ(smpp_session_complete(ss, 0x7FFFFFFFu, &token), 0);
  ss->next_seq = 2;
  ASSERT_EQ(smpp_session_next_seq(ss), 3);
  /* Two submits queued, each once. */
  struct smpp_pdu out;
  ASSERT_EQ(queued(ss, 1, &out), 0);
  ASSERT_EQ(out.command_id, SMPP_SUBMIT_SM);
  ASSERT_EQ(out.sequence_number, 2);
  ASSERT_EQ(queued(ss, 3, &out), KK_ENOENT);
  smpp_session_free(ss);
}

static void count_token(void *arg, uint64_t token) {
  uint64_t *sum = arg;
  *sum += token;
}

KK_TEST(smpp_session_response_timeout_and_take_all) {
  struct seen w;
  struct smpp_session *ss = new_session(&w, 4);
  struct smpp_pdu pdu;
  memset(&pdu, 0, sizeof pdu);
  pdu.command_id = SMPP_SUBMIT_SM;
  ASSERT_EQ(smpp_session_request(ss, &pdu, 5, 1000), 0);
  ASSERT_EQ(smpp_session_request(ss, &pdu, 6, 1400), 0);
  uint32_t late = 99;
  ASSERT_EQ(smpp_session_tick(ss, 1999, 1000, 0, &late), 0);
  ASSERT_EQ(smpp_session_tick(ss, 2000, 1000, 0, &late), KK_ETIMEDOUT);
  ASSERT_EQ(late, 1);
  uint64_t token;
  ASSERT_EQ(smpp_session_complete(ss, 1, &token), 0);
  ASSERT_EQ(smpp_session_tick(ss, 2000, 1000, 0, &late), 0);
  ASSERT_EQ(smpp_session_tick(ss, 2400, 1000, 0, &late), KK_ETIMEDOUT);
  ASSERT_EQ(late, 2);
  /* What is left is taken exactly once. */
  ASSERT_EQ(smpp_session_request(ss, &pdu, 7, 2400), 0);
  uint64_t sum = 0;
  smpp_session_take_all(ss, count_token, &sum);
  ASSERT_EQ(sum, 13);
  ASSERT_EQ(ss->inflight, 0);
  ASSERT_EQ(smpp_session_tick(ss, 99999, 1000, 0, &late), 0);
  smpp_session_free(ss);
}

KK_TEST(smpp_session_bad_pdu_gets_generic_nack) {
  struct seen w;
  struct smpp_session *ss = new_session(&w, 0);
  uint8_t buf[64];
  /* A submit_sm whose body stops in the middle of service_type. */
  size_t n = encode_header(SMPP_SUBMIT_SM, 0, 41, buf);
  memcpy(buf + n, "CMT", 3);
  buf[3] = (uint8_t)(n + 3);
  ASSERT_EQ(smpp_session_feed(ss, buf, n + 3), n + 3);
  ASSERT_EQ(w.nbad, 1);
  ASSERT_EQ(w.npdu, 0);
  struct smpp_pdu out;
  ASSERT_EQ(queued(ss, 0, &out), 0);
  ASSERT_EQ(out.command_id, SMPP_GENERIC_NACK);
  ASSERT_EQ(out.sequence_number, 41);
  ASSERT_EQ(out.command_status, (uint32_t)w.bad_status);
  ASSERT(out.command_status != SMPP_ESME_ROK);
  /* A broken response is not answered. */
  n = encode_header(SMPP_SUBMIT_SM_RESP, 0, 42, buf);
  memcpy(buf + n, "abc", 3);  /* message_id without its NUL */
  buf[3] = (uint8_t)(n + 3);
  ASSERT_EQ(smpp_session_feed(ss, buf, n + 3), n + 3);
  ASSERT_EQ(w.nbad, 2);
  ASSERT_EQ(queued(ss, 1, &out), KK_ENOENT);
  /* A request the owner does not take: generic_nack ESME_RINVCMDID. */
  w.refuse = 1;
  struct smpp_pdu q;
  memset(&q, 0, sizeof q);
  q.command_id = SMPP_DELIVER_SM;
  q.sequence_number = 43;
  n = encode(&q, buf, sizeof buf);
  ASSERT_EQ(smpp_session_feed(ss, buf, n), n);
  ASSERT_EQ(w.npdu, 1);
  ASSERT_EQ(queued(ss, 1, &out), 0);
  ASSERT_EQ(out.command_id, SMPP_GENERIC_NACK);
  ASSERT_EQ(out.command_status, SMPP_ESME_RINVCMDID);
  ASSERT_EQ(out.sequence_number, 43);
  ASSERT_EQ(w.nclosed, 0);
  smpp_session_free(ss);
}

KK_TEST(smpp_session_unframeable_input_closes) {
  struct seen w;
  struct smpp_session *ss = new_session(&w, 0);
  uint8_t buf[16];
  size_t n = encode_header(SMPP_ENQUIRE_LINK, 0, 51, buf);
  buf[3] = 5;               /* command_length below the header */
  ASSERT_EQ(n, 16);
  smpp_session_feed(ss, buf, n);
  ASSERT_EQ(w.nclosed, 1);
  ASSERT_EQ(w.closed_rc, KK_EPROTO);
  ASSERT_EQ(w.npdu, 0);
  ASSERT_EQ(ss->open, 0);
  /* Stopped: nothing more is taken. */
  ASSERT_EQ(smpp_session_feed(ss, buf, n), 0);
  smpp_session_free(ss);
}

static void on_closed_keep(struct smpp_session *ss, int rc, const char *why) {
  (void)why;
  struct seen *w = smpp_session_ud(ss);
  w->nclosed++;
  w->closed_rc = rc;
}

KK_TEST(smpp_session_unframeable_input_queues_nack) {
  struct seen w;
  memset(&w, 0, sizeof w);
  /* An owner that will drain rather than stop finds the nack queued. */
  struct smpp_session_ops keep = ops;
  keep.closed = on_closed_keep;
  struct smpp_session_cfg cfg = {.peer = "ESME", .out_max = 1 << 20};
  struct smpp_session *ss = smpp_session_new(&cfg, &keep, &w);
  ASSERT_EQ(smpp_session_start(ss, NULL), 0);
  ASSERT_EQ(ss->cfg.rbuf_size, 2 * SMPP_MAX_PDU_LEN);
  uint8_t buf[16];
  encode_header(SMPP_ENQUIRE_LINK, 0, 52, buf);
  buf[0] = 0x7F;            /* command_length far above SMPP_MAX_PDU_LEN */
  smpp_session_feed(ss, buf, sizeof buf);
  ASSERT_EQ(w.nclosed, 1);
  ASSERT_EQ(w.closed_rc, KK_EPROTO);
  ASSERT_EQ(w.npdu, 0);
  struct smpp_pdu out;
  ASSERT_EQ(queued(ss, 0, &out), 0);
  ASSERT_EQ(out.command_id, SMPP_GENERIC_NACK);
  ASSERT_EQ(out.command_status, SMPP_ESME_RINVCMDLEN);
  ASSERT_EQ(out.sequence_number, 52);
  ASSERT_EQ(queued(ss, 1, &out), KK_ENOENT);
  smpp_session_stop(ss);
  smpp_session_free(ss);
}

KK_TEST(smpp_session_enquire_link) {
  struct seen w;
  struct smpp_session *ss = new_session(&w, 0);
  uint8_t buf[64];
  /* The peer's enquire_link is answered by the session itself. */
  size_t n = encode_header(SMPP_ENQUIRE_LINK, 0, 61, buf);
  smpp_session_feed(ss, buf, n);
  ASSERT_EQ(w.npdu, 0);
  struct smpp_pdu out;
  ASSERT_EQ(queued(ss, 0, &out), 0);
  ASSERT_EQ(out.command_id, SMPP_ENQUIRE_LINK_RESP);
  ASSERT_EQ(out.sequence_number, 61);
  /* Ours goes out once enquire_ms have passed since the link came up. */
  ss->enq_last_ms = 1000;
  uint32_t late;
  ASSERT_EQ(smpp_session_tick(ss, 1500, 300, 1000, &late), 0);
  ASSERT_EQ(ss->enq_seq, 0);
  ASSERT_EQ(smpp_session_tick(ss, 2000, 300, 1000, &late), 0);
  uint32_t seq = ss->enq_seq;
  ASSERT(seq != 0);
  ASSERT_EQ(queued(ss, 1, &out), 0);
  ASSERT_EQ(out.command_id, SMPP_ENQUIRE_LINK);
  ASSERT_EQ(out.sequence_number, seq);
  /* Only one outstanding at a time. */
  ASSERT_EQ(smpp_session_tick(ss, 2100, 300, 1, &late), 0);
  ASSERT_EQ(queued(ss, 2, &out), KK_ENOENT);
  /* Its answer clears it and is not passed on; a stray one is. */
  n = encode_header(SMPP_ENQUIRE_LINK_RESP, 0, seq, buf);
  smpp_session_feed(ss, buf, n);
  ASSERT_EQ(ss->enq_seq, 0);
  ASSERT_EQ(w.npdu, 0);
  smpp_session_feed(ss, buf, n);
  ASSERT_EQ(w.npdu, 1);
  /* Unanswered for timeout_ms: KK_ETIMEDOUT with late = 0. */
  ASSERT_EQ(smpp_session_tick(ss, 3000, 300, 1000, &late), 0);
  ASSERT(ss->enq_seq != 0);
  late = 99;
  ASSERT_EQ(smpp_session_tick(ss, 3300, 300, 1000, &late), KK_ETIMEDOUT);
  ASSERT_EQ(late, 0);
  smpp_session_free(ss);
}

KK_TEST(smpp_session_unbind_answered_closes) {
  struct seen w;
  struct smpp_session *ss = new_session(&w, 0);
  ASSERT_EQ(smpp_session_unbind(ss), 0);
  uint32_t seq = ss->unbind_seq;
  struct smpp_pdu out;
  ASSERT_EQ(queued(ss, 0, &out), 0);
  ASSERT_EQ(out.command_id, SMPP_UNBIND);
  ASSERT_EQ(out.sequence_number, seq);
  uint8_t buf[64];
  size_t n = encode_header(SMPP_UNBIND_RESP, 0, seq + 1, buf);
  smpp_session_feed(ss, buf, n);
  ASSERT_EQ(w.nclosed, 0);
  ASSERT_EQ(w.npdu, 1);
  n = encode_header(SMPP_UNBIND_RESP, 0, seq, buf);
  smpp_session_feed(ss, buf, n);
  ASSERT_EQ(w.nclosed, 1);
  ASSERT_EQ(w.closed_rc, KK_OK);
  ASSERT_EQ(smpp_session_send(ss, &out), KK_ECLOSED);
  smpp_session_free(ss);
}

KK_TEST(smpp_session_drain_without_output_closes_at_once) {
  struct seen w;
  struct smpp_session *ss = new_session(&w, 0);
  smpp_session_drain(ss, "bye");
  ASSERT_EQ(w.nclosed, 1);
  ASSERT_EQ(w.closed_rc, KK_OK);
  smpp_session_free(ss);
}

/* ---- over a real stream ---------------------------------------------------- */

struct pair {
  uv_loop_t loop;
  uv_pipe_t a, b;           /* a: the session's; b: the peer's */
  uint8_t got[4096];        /* what the peer read */
  size_t ngot;
  int peer_eof;
};

static void peer_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  (void)suggested;
  struct pair *p = h->data;
  buf->base = (char *)p->got + p->ngot;
  buf->len = sizeof p->got - p->ngot;
}

static void peer_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf) {
  (void)buf;
  struct pair *p = st->data;
  if (nread < 0) {
    p->peer_eof = 1;
    uv_read_stop(st);
    return;
  }
  p->ngot += (size_t)nread;
}

static void peer_write_done(uv_write_t *req, int status) {
  ASSERT_EQ(status, 0);
  free(req);
}

static void peer_write(struct pair *p, const void *data, size_t n) {
  uv_write_t *req = malloc(sizeof *req);
  uv_buf_t b = uv_buf_init((char *)data, (unsigned)n);
  ASSERT_EQ(uv_write(req, (uv_stream_t *)&p->b, &b, 1, peer_write_done), 0);
}

static void pair_open(struct pair *p) {
  memset(p, 0, sizeof *p);
  uv_os_sock_t fds[2];
  ASSERT_EQ(uv_loop_init(&p->loop), 0);
  ASSERT_EQ(uv_socketpair(SOCK_STREAM, 0, fds, 0, 0), 0);
  ASSERT_EQ(uv_pipe_init(&p->loop, &p->a, 0), 0);
  ASSERT_EQ(uv_pipe_init(&p->loop, &p->b, 0), 0);
  ASSERT_EQ(uv_pipe_open(&p->a, fds[0]), 0);
  ASSERT_EQ(uv_pipe_open(&p->b, fds[1]), 0);
  p->b.data = p;
  ASSERT_EQ(uv_read_start((uv_stream_t *)&p->b, peer_alloc, peer_read), 0);
}

/* Runs the loop until cond or a bounded number of turns. */
#define TURN_UNTIL(p, cond)                                                  \
  for (int turns_ = 0; !(cond) && turns_ < 1000; turns_++) uv_run(&(p)->loop, UV_RUN_NOWAIT)

static void pair_close(struct pair *p, struct smpp_session *ss) {
  uv_close((uv_handle_t *)&p->a, NULL);
  uv_close((uv_handle_t *)&p->b, NULL);
  ASSERT_EQ(uv_run(&p->loop, UV_RUN_DEFAULT), 0);
  ASSERT_EQ(uv_loop_close(&p->loop), 0);
  smpp_session_free(ss);
}

KK_TEST(smpp_session_stream_answers_and_drains) {
  struct pair p;
  pair_open(&p);
  struct seen w;
  memset(&w, 0, sizeof w);
  struct smpp_session_cfg cfg = {.peer = "SMSC", .out_max = 1 << 20};
  struct smpp_session *ss = smpp_session_new(&cfg, &ops, &w);
  ASSERT_EQ(smpp_session_start(ss, (uv_stream_t *)&p.a), 0);
  /* Two enquire_links in one write, split oddly: both answered in one batch. */
  uint8_t buf[32];
  encode_header(SMPP_ENQUIRE_LINK, 0, 71, buf);
  encode_header(SMPP_ENQUIRE_LINK, 0, 72, buf + 16);
  peer_write(&p, buf, 20);
  TURN_UNTIL(&p, ss->rlen == 4);
  peer_write(&p, buf + 20, 12);
  TURN_UNTIL(&p, ss->out.len == 32);
  ASSERT_EQ(smpp_session_flush(ss), 0);
  TURN_UNTIL(&p, p.ngot == 32);
  ASSERT_EQ(p.ngot, 32);
  struct smpp_pdu out;
  struct smpp_err err;
  ASSERT_EQ(smpp_decode(p.got + 16, 16, &out, &err), 0);
  ASSERT_EQ(out.command_id, SMPP_ENQUIRE_LINK_RESP);
  ASSERT_EQ(out.sequence_number, 72);
  /* Drain: what is queued is written first, then closed(KK_OK). */
  ASSERT_EQ(smpp_session_respond(ss, SMPP_UNBIND_RESP, 0, 73), 0);
  smpp_session_drain(ss, "unbound");
  ASSERT_EQ(w.nclosed, 0);
  TURN_UNTIL(&p, w.nclosed == 1);
  ASSERT_EQ(w.closed_rc, KK_OK);
  ASSERT_EQ(p.ngot, 48);
  pair_close(&p, ss);
}

KK_TEST(smpp_session_stream_peer_close) {
  struct pair p;
  pair_open(&p);
  struct seen w;
  memset(&w, 0, sizeof w);
  struct smpp_session_cfg cfg = {.peer = "ESME", .out_max = 1 << 20};
  struct smpp_session *ss = smpp_session_new(&cfg, &ops, &w);
  ASSERT_EQ(smpp_session_start(ss, (uv_stream_t *)&p.a), 0);
  uv_close((uv_handle_t *)&p.b, NULL);
  TURN_UNTIL(&p, w.nclosed == 1);
  ASSERT_EQ(w.closed_rc, KK_ECLOSED);
  uv_close((uv_handle_t *)&p.a, NULL);
  ASSERT_EQ(uv_run(&p.loop, UV_RUN_DEFAULT), 0);
  ASSERT_EQ(uv_loop_close(&p.loop), 0);
  smpp_session_free(ss);
}
