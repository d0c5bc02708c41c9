/*
 * fuzz_smpp_session.c - fuzz target for the SMPP session layer. The first
 * byte picks the size of the reads the rest arrives in; the session frames
 * and decodes them as it would from a socket. Checks: the read area never
 * holds a whole PDU left unhandled, every request the owner sees is
 * answered or refused, and after the session closes nothing more is taken.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/kk_err.h"
#include "smpp/smpp_codec.h"
#include "smpp/smpp_session.h"

static void check(int ok) {
  if (!ok) __builtin_trap();
}

struct owner {
  int closed;
  uint64_t token;
};

/* Takes requests in turns and refuses the others, and settles the window
   with any response whose sequence number is outstanding. */
static int on_pdu(struct smpp_session *ss, const struct smpp_pdu *pdu) {
  struct owner *o = smpp_session_ud(ss);
  check(!o->closed);
  if (pdu->command_id & SMPP_RESP) {
    uint64_t token;
    if (smpp_session_complete(ss, pdu->sequence_number, &token) == 0)
      check(token < o->token);
    return 0;
  }
  if (pdu->sequence_number & 1) return KK_ENOENT;
  smpp_session_respond(ss, pdu->command_id | SMPP_RESP, SMPP_ESME_ROK, pdu->sequence_number);
  /* A request of ours, so that responses may find something in the window. */
  struct smpp_pdu req;
  memset(&req, 0, sizeof req);
  req.command_id = SMPP_ENQUIRE_LINK;
  smpp_session_request(ss, &req, o->token++, 0);
  return 0;
}

static void on_closed(struct smpp_session *ss, int rc, const char *why) {
  struct owner *o = smpp_session_ud(ss);
  check(why != NULL && rc <= 0);
  o->closed = 1;
  smpp_session_stop(ss);
}

static const struct smpp_session_ops ops = {.pdu = on_pdu, .closed = on_closed};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size == 0) return 0;
  size_t chunk = (size_t)data[0] % 64 + 1;
  data++;
  size--;
  struct owner o = {0, 0};
  struct smpp_session_cfg cfg = {.peer = "SMSC", .out_max = 1 << 20, .window = 8};
  struct smpp_session *ss = smpp_session_new(&cfg, &ops, &o);
  check(smpp_session_start(ss, NULL) == 0);
  uint32_t late;
  for (size_t off = 0; off < size; off += chunk) {
    size_t n = size - off < chunk ? size - off : chunk;
    size_t took = smpp_session_feed(ss, data + off, n);
    if (o.closed) {
      check(smpp_session_feed(ss, data, size) == 0);
      break;
    }
    check(took == n);
    /* What is kept is less than one whole PDU. */
    size_t plen;
    check(smpp_frame(ss->rbuf, ss->rlen, &plen) == KK_EAGAIN || ss->rlen == 0);
    check(ss->inflight >= 0 && ss->inflight <= cfg.window);
    smpp_session_tick(ss, off, 1000, 500, &late);
  }
  smpp_session_free(ss);
  return 0;
}
