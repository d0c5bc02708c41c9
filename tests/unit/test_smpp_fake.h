/*
 * test_smpp_fake.h - an in-process fake SMSC and the harness the SMPP client
 * tests share (test_smpp_fake.c).
 *
 * The fake SMSC is a libuv TCP server on 127.0.0.1 (port chosen by the
 * kernel) in the same loop as the client. It speaks through the codec and is
 * steered by a few knobs (reject binds, hold or throttle submits, drop the
 * connection); it counts what it receives so the tests can check the wire.
 */
#ifndef TEST_SMPP_FAKE_H
#define TEST_SMPP_FAKE_H

#include <stdint.h>
#include <uv.h>

#include "core/kk_buf.h"
#include "smpp/smpp_client.h"
#include "smpp/smpp_codec.h"

#define MAX_TOKENS 4096
#define MAX_HELD 256

struct fake;

struct fconn {
  struct fake *f;
  uv_tcp_t tcp;
  struct kk_buf in;         /* bytes received, not yet a whole PDU */
  int held;                 /* submits of this connection left unanswered */
  struct fconn *next;
};

struct held {
  struct fconn *conn;
  uint32_t seq;
};

struct fake {
  uv_loop_t *loop;
  uv_tcp_t srv;
  int port;
  struct fconn *conns;      /* open connections, newest first */

  /* Behaviour. */
  int reject_binds;         /* answer this many binds with ESME_RINVPASWD */
  int hold;                 /* leave submits unanswered until fake_release() */
  int close_after;          /* close a connection holding this many submits */
  int throttle_first;       /* answer this many submits with ESME_RTHROTTLED */

  /* What was received. */
  int accepted, binds, submits, unbinds, unbind_resps, enquire_links;
  int enquire_link_resps, deliver_sm_resps, generic_nacks, undecodable;
  uint32_t last_status, last_seq;   /* of the last response or nack */
  char system_id[32], password[32], dest[32];
  uint8_t interface_version;
  struct held held[MAX_HELD];
  int nheld, max_conn_held;
};

struct h {
  uv_loop_t loop;
  uv_timer_t poll;          /* wakes the loop so waits can check their deadline */
  struct fake f;
  struct smpp_client_cfg cfg;
  struct smpp_client *c;
  int closed;               /* closed_cb ran */
  int state_at_close;       /* session 0's state seen from closed_cb */

  int nresp, nlost, nready, ndeliver;
  int resp_by_token[MAX_TOKENS], lost_by_token[MAX_TOKENS];
  uint32_t last_status;
  char last_id[80];
  int last_id_null;
  uint32_t deliver_status;  /* what deliver sets *status to */
  int defer;                /* deliver defers its answer */
  uint64_t deferred;        /* the handle smpp_client_defer gave */
  uint8_t deliver_esm;
  char deliver_text[160];
  uint64_t next_token;
  uint64_t submit_until;    /* ready submits while there is capacity, up to this token */
};

/* Runs the loop until cond holds or ms pass, then asserts cond. */
#define WAIT(h, cond, ms)                                                   \
  do {                                                                      \
    uint64_t end_ = uv_now(&(h)->loop) + (ms);                              \
    uv_timer_start(&(h)->poll, h_on_poll, 5, 5);                            \
    while (!(cond) && uv_now(&(h)->loop) < end_) uv_run(&(h)->loop, UV_RUN_ONCE); \
    uv_timer_stop(&(h)->poll);                                              \
    ASSERT(cond);                                                           \
  } while (0)

void fake_send_raw(struct fconn *fc, const void *p, size_t n);
void fake_send(struct fconn *fc, const struct smpp_pdu *pdu);
void fake_close_conn(struct fconn *fc);
void fake_answer_one(struct fake *f);
void fake_release(struct fake *f);
/* Wakes the loop so waits can check their deadline. */
void h_on_poll(uv_timer_t *t);
void cb_ready(void *ud);
void cb_closed(void *ud);
struct h *h_new(void);
void h_start(struct h *h);
void spin(struct h *h, int ms);
int h_submit(struct h *h);
int bound(struct h *h, int i);
void h_finish(struct h *h);
void assert_each_once(struct h *h, uint64_t n);

#endif
