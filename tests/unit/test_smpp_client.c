/*
 * test_smpp_client.c - the SMPP route client against an in-process fake SMSC.
 *
 * The fake SMSC is a libuv TCP server on 127.0.0.1 (port chosen by the
 * kernel) in the same loop as the client. It speaks through the codec and is
 * steered by a few knobs (reject binds, hold or throttle submits, drop the
 * connection); it counts what it receives so the tests can check the wire.
 * Every test closes the client and the fake, runs the loop dry, checks that
 * uv_loop_close() succeeds and, under AddressSanitizer, that nothing leaked.
 */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "core/kk_buf.h"
#include "core/kk_err.h"
#include "core/kk_log.h"
#include "smpp/smpp_client.h"
#include "smpp/smpp_codec.h"
#include "kk_test.h"

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/lsan_interface.h>
#endif

#define MAX_TOKENS 4096
#define MAX_HELD 256

/* ---- fake SMSC ------------------------------------------------------------ */

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

struct wreq {
  uv_write_t req;
  uint8_t data[];
};

static void fake_on_write(uv_write_t *req, int status) {
  free(req);
}

static void fake_send_raw(struct fconn *fc, const void *p, size_t n) {
  if (uv_is_closing((uv_handle_t *)&fc->tcp)) return;
  struct wreq *w = malloc(sizeof *w + n);
  ASSERT(w != NULL);
  memcpy(w->data, p, n);
  uv_buf_t b = uv_buf_init((char *)w->data, (unsigned)n);
  ASSERT_EQ(uv_write(&w->req, (uv_stream_t *)&fc->tcp, &b, 1, fake_on_write), 0);
}

static void fake_send(struct fconn *fc, const struct smpp_pdu *pdu) {
  uint8_t buf[1024];
  size_t n;
  ASSERT_EQ(smpp_encode(pdu, buf, sizeof buf, &n), 0);
  fake_send_raw(fc, buf, n);
}

static void fake_resp(struct fconn *fc, uint32_t id, uint32_t status, uint32_t seq,
                      const char *str) {
  struct smpp_pdu pdu;
  memset(&pdu, 0, sizeof pdu);
  pdu.command_id = id;
  pdu.command_status = status;
  pdu.sequence_number = seq;
  if (str) pdu.body.message_id = smpp_cstr(str);
  fake_send(fc, &pdu);
}

static void fake_on_conn_close(uv_handle_t *h) {
  struct fconn *fc = h->data;
  kk_buf_fini(&fc->in);
  free(fc);
}

static void fake_close_conn(struct fconn *fc) {
  struct fake *f = fc->f;
  if (uv_is_closing((uv_handle_t *)&fc->tcp)) return;
  int j = 0;
  for (int i = 0; i < f->nheld; i++)
    if (f->held[i].conn != fc) f->held[j++] = f->held[i];
  f->nheld = j;
  for (struct fconn **pp = &f->conns; *pp; pp = &(*pp)->next) {
    if (*pp == fc) {
      *pp = fc->next;
      break;
    }
  }
  uv_close((uv_handle_t *)&fc->tcp, fake_on_conn_close);
}

static void copy_view(char *dst, size_t cap, struct smpp_str v) {
  size_t n = v.len < cap - 1 ? v.len : cap - 1;
  memcpy(dst, v.p, n);
  dst[n] = '\0';
}

static void fake_submit(struct fconn *fc, const struct smpp_pdu *pdu) {
  struct fake *f = fc->f;
  char id[32];
  f->submits++;
  copy_view(f->dest, sizeof f->dest, pdu->body.sm.destination_addr);
  if (f->throttle_first > 0) {
    f->throttle_first--;
    fake_resp(fc, SMPP_SUBMIT_SM_RESP, SMPP_ESME_RTHROTTLED, pdu->sequence_number, NULL);
    return;
  }
  if (f->hold) {
    ASSERT(f->nheld < MAX_HELD);
    f->held[f->nheld].conn = fc;
    f->held[f->nheld].seq = pdu->sequence_number;
    f->nheld++;
    fc->held++;
    if (fc->held > f->max_conn_held) f->max_conn_held = fc->held;
    if (f->close_after > 0 && fc->held >= f->close_after) fake_close_conn(fc);
    return;
  }
  snprintf(id, sizeof id, "mid-%d", f->submits);
  fake_resp(fc, SMPP_SUBMIT_SM_RESP, SMPP_ESME_ROK, pdu->sequence_number, id);
}

static void fake_pdu(struct fconn *fc, const uint8_t *p, size_t n) {
  struct fake *f = fc->f;
  struct smpp_pdu pdu;
  struct smpp_err err;
  if (smpp_decode(p, n, &pdu, &err) < 0) {
    f->undecodable++;
    return;
  }
  switch (pdu.command_id) {
    case SMPP_BIND_TRANSCEIVER:
      f->binds++;
      copy_view(f->system_id, sizeof f->system_id, pdu.body.bind.system_id);
      copy_view(f->password, sizeof f->password, pdu.body.bind.password);
      f->interface_version = pdu.body.bind.interface_version;
      if (f->reject_binds > 0) {
        f->reject_binds--;
        fake_resp(fc, SMPP_BIND_TRANSCEIVER_RESP, SMPP_ESME_RINVPASWD, pdu.sequence_number,
                  NULL);
      } else {
        fake_resp(fc, SMPP_BIND_TRANSCEIVER_RESP, SMPP_ESME_ROK, pdu.sequence_number,
                  "fakesmsc");
      }
      break;
    case SMPP_SUBMIT_SM:
      fake_submit(fc, &pdu);
      break;
    case SMPP_ENQUIRE_LINK:
      f->enquire_links++;
      fake_resp(fc, SMPP_ENQUIRE_LINK_RESP, SMPP_ESME_ROK, pdu.sequence_number, NULL);
      break;
    case SMPP_UNBIND:
      f->unbinds++;
      fake_resp(fc, SMPP_UNBIND_RESP, SMPP_ESME_ROK, pdu.sequence_number, NULL);
      break;
    case SMPP_UNBIND_RESP:
      f->unbind_resps++;
      f->last_seq = pdu.sequence_number;
      break;
    case SMPP_ENQUIRE_LINK_RESP:
      f->enquire_link_resps++;
      f->last_status = pdu.command_status;
      f->last_seq = pdu.sequence_number;
      break;
    case SMPP_DELIVER_SM_RESP:
      f->deliver_sm_resps++;
      f->last_status = pdu.command_status;
      f->last_seq = pdu.sequence_number;
      break;
    case SMPP_GENERIC_NACK:
      f->generic_nacks++;
      f->last_status = pdu.command_status;
      f->last_seq = pdu.sequence_number;
      break;
    default:
      break;
  }
}

static void fake_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  buf->base = malloc(suggested);
  buf->len = buf->base ? suggested : 0;
}

static void fake_on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf) {
  struct fconn *fc = st->data;
  if (nread < 0) {
    fake_close_conn(fc);
  } else if (nread > 0) {
    ASSERT_EQ(kk_buf_append(&fc->in, buf->base, (size_t)nread), 0);
    size_t off = 0, n;
    while (!uv_is_closing((uv_handle_t *)&fc->tcp) &&
           smpp_frame((const uint8_t *)fc->in.p + off, fc->in.len - off, &n) == 0) {
      fake_pdu(fc, (const uint8_t *)fc->in.p + off, n);
      off += n;
    }
    kk_buf_consume(&fc->in, off);
  }
  free(buf->base);
}

static void fake_on_connection(uv_stream_t *srv, int status) {
  struct fake *f = srv->data;
  ASSERT_EQ(status, 0);
  struct fconn *fc = calloc(1, sizeof *fc);
  ASSERT(fc != NULL);
  fc->f = f;
  kk_buf_init(&fc->in, 1 << 20);
  ASSERT_EQ(uv_tcp_init(f->loop, &fc->tcp), 0);
  fc->tcp.data = fc;
  ASSERT_EQ(uv_accept(srv, (uv_stream_t *)&fc->tcp), 0);
  fc->next = f->conns;
  f->conns = fc;
  f->accepted++;
  ASSERT_EQ(uv_read_start((uv_stream_t *)&fc->tcp, fake_alloc, fake_on_read), 0);
}

static void fake_start(struct fake *f, uv_loop_t *loop) {
  struct sockaddr_in addr;
  struct sockaddr_storage bound;
  int len = sizeof bound;
  f->loop = loop;
  ASSERT_EQ(uv_tcp_init(loop, &f->srv), 0);
  f->srv.data = f;
  ASSERT_EQ(uv_ip4_addr("127.0.0.1", 0, &addr), 0);
  ASSERT_EQ(uv_tcp_bind(&f->srv, (const struct sockaddr *)&addr, 0), 0);
  ASSERT_EQ(uv_listen((uv_stream_t *)&f->srv, 16, fake_on_connection), 0);
  ASSERT_EQ(uv_tcp_getsockname(&f->srv, (struct sockaddr *)&bound, &len), 0);
  f->port = ntohs(((struct sockaddr_in *)&bound)->sin_port);
  ASSERT(f->port > 0);
}

static void fake_stop(struct fake *f) {
  while (f->conns) fake_close_conn(f->conns);
  uv_close((uv_handle_t *)&f->srv, NULL);
}

/* Answers the oldest held submit with ESME_ROK. */
static void fake_answer_one(struct fake *f) {
  char id[32];
  ASSERT(f->nheld > 0);
  struct held h = f->held[0];
  memmove(f->held, f->held + 1, (size_t)(f->nheld - 1) * sizeof f->held[0]);
  f->nheld--;
  h.conn->held--;
  snprintf(id, sizeof id, "mid-%u", h.seq);
  fake_resp(h.conn, SMPP_SUBMIT_SM_RESP, SMPP_ESME_ROK, h.seq, id);
}

static void fake_release(struct fake *f) {
  while (f->nheld > 0) fake_answer_one(f);
}

/* ---- harness ---------------------------------------------------------------- */

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

static int h_submit(struct h *h);

static void cb_resp(void *ud, uint64_t token, uint32_t status, const char *message_id) {
  struct h *h = ud;
  ASSERT(token < MAX_TOKENS);
  h->resp_by_token[token]++;
  h->nresp++;
  h->last_status = status;
  h->last_id_null = message_id == NULL;
  snprintf(h->last_id, sizeof h->last_id, "%s", message_id ? message_id : "");
}

static void cb_lost(void *ud, uint64_t token) {
  struct h *h = ud;
  ASSERT(token < MAX_TOKENS);
  h->lost_by_token[token]++;
  h->nlost++;
}

static void cb_deliver(void *ud, const struct smpp_pdu *pdu, uint32_t *status) {
  struct h *h = ud;
  ASSERT_EQ(*status, SMPP_ESME_ROK);
  h->ndeliver++;
  h->deliver_esm = pdu->body.sm.esm_class;
  copy_view(h->deliver_text, sizeof h->deliver_text, pdu->body.sm.short_message);
  *status = h->deliver_status;
  if (h->defer) h->deferred = smpp_client_defer(h->c);
}

static void cb_ready(void *ud) {
  struct h *h = ud;
  h->nready++;
  while (h->next_token < h->submit_until && smpp_client_capacity(h->c) > 0)
    ASSERT_EQ(h_submit(h), 0);
}

static void cb_closed(void *ud) {
  struct h *h = ud;
  h->closed++;
  h->state_at_close = smpp_client_session_state(h->c, 0);
}

static void on_poll(uv_timer_t *t) {}

/* Sets up the loop, the fake SMSC and a default configuration. */
static struct h *h_new(void) {
  struct h *h = calloc(1, sizeof *h);
  ASSERT(h != NULL);
  kk_log_level = KK_LOG_ERROR;
  /* Writing to a socket the peer has closed must fail, not kill the test. */
  signal(SIGPIPE, SIG_IGN);
  ASSERT_EQ(uv_loop_init(&h->loop), 0);
  ASSERT_EQ(uv_timer_init(&h->loop, &h->poll), 0);
  fake_start(&h->f, &h->loop);
  struct smpp_client_cfg *cfg = &h->cfg;
  snprintf(cfg->name, sizeof cfg->name, "test");
  snprintf(cfg->host, sizeof cfg->host, "127.0.0.1");
  cfg->port = h->f.port;
  snprintf(cfg->system_id, sizeof cfg->system_id, "kaskad");
  snprintf(cfg->password, sizeof cfg->password, "secret");
  cfg->sessions = 1;
  cfg->window = 10;
  cfg->resp_timeout_ms = 1000;
  cfg->reconnect_min_ms = 20;
  cfg->reconnect_max_ms = 200;
  cfg->throttle_pause_ms = 200;
  return h;
}

static void h_start(struct h *h) {
  struct smpp_client_cbs cbs = {cb_resp, cb_lost, cb_deliver, cb_ready};
  h->c = smpp_client_new(&h->loop, &h->cfg, &cbs, h);
  ASSERT(h->c != NULL);
}

/* Runs the loop until cond holds or ms pass, then asserts cond. */
#define WAIT(h, cond, ms)                                                   \
  do {                                                                      \
    uint64_t end_ = uv_now(&(h)->loop) + (ms);                              \
    uv_timer_start(&(h)->poll, on_poll, 5, 5);                              \
    while (!(cond) && uv_now(&(h)->loop) < end_) uv_run(&(h)->loop, UV_RUN_ONCE); \
    uv_timer_stop(&(h)->poll);                                              \
    ASSERT(cond);                                                           \
  } while (0)

/* Runs the loop for about ms. */
static void spin(struct h *h, int ms) {
  uint64_t end = uv_now(&h->loop) + (uint64_t)ms;
  uv_timer_start(&h->poll, on_poll, 5, 5);
  while (uv_now(&h->loop) < end) uv_run(&h->loop, UV_RUN_ONCE);
  uv_timer_stop(&h->poll);
}

static int h_submit(struct h *h) {
  struct smpp_pdu pdu;
  memset(&pdu, 0, sizeof pdu);
  pdu.body.sm.source_addr_ton = 5;
  pdu.body.sm.source_addr = smpp_cstr("kaskad");
  pdu.body.sm.dest_addr_ton = 1;
  pdu.body.sm.dest_addr_npi = 1;
  pdu.body.sm.destination_addr = smpp_cstr("79161234567");
  pdu.body.sm.registered_delivery = 1;
  pdu.body.sm.short_message = smpp_cstr("hello");
  ASSERT(h->next_token < MAX_TOKENS);
  int rc = smpp_client_submit(h->c, h->next_token, &pdu);
  if (rc == 0) h->next_token++;
  return rc;
}

static int bound(struct h *h, int i) {
  return smpp_client_session_state(h->c, i) == SMPP_SESS_BOUND;
}

/* Closes the client (unless the test did) and the fake, and checks that the
   loop closes and nothing leaked. */
static void h_finish(struct h *h) {
  if (h->c && !h->closed) {
    smpp_client_close(h->c, cb_closed);
    WAIT(h, h->closed, 3000);
  }
  ASSERT_EQ(h->closed, 1);
  ASSERT_EQ(h->state_at_close, SMPP_SESS_CLOSED);
  fake_stop(&h->f);
  uv_close((uv_handle_t *)&h->poll, NULL);
  ASSERT_EQ(uv_run(&h->loop, UV_RUN_DEFAULT), 0);
  ASSERT_EQ(uv_loop_close(&h->loop), 0);
  free(h);
#if defined(__SANITIZE_ADDRESS__)
  ASSERT_EQ(__lsan_do_recoverable_leak_check(), 0);
#endif
}

/* Every token below n got exactly one outcome. */
static void assert_each_once(struct h *h, uint64_t n) {
  for (uint64_t t = 0; t < n; t++) ASSERT_EQ(h->resp_by_token[t] + h->lost_by_token[t], 1);
}

/* ---- tests --------------------------------------------------------------------- */

KK_TEST(smpp_client_bind_submit_resp) {
  struct h *h = h_new();
  h_start(h);
  WAIT(h, bound(h, 0), 1000);
  ASSERT_EQ(h->f.binds, 1);
  ASSERT_STR_EQ(h->f.system_id, "kaskad");
  ASSERT_STR_EQ(h->f.password, "secret");
  ASSERT_EQ(h->f.interface_version, 0x34);
  WAIT(h, h->nready >= 1, 500);
  ASSERT_EQ(smpp_client_capacity(h->c), 10);

  ASSERT_EQ(h_submit(h), 0);
  ASSERT_EQ(smpp_client_capacity(h->c), 9);
  WAIT(h, h->nresp == 1, 1000);
  ASSERT_EQ(h->resp_by_token[0], 1);
  ASSERT_EQ(h->last_status, SMPP_ESME_ROK);
  ASSERT_EQ(h->last_id_null, 0);
  ASSERT_STR_EQ(h->last_id, "mid-1");
  ASSERT_STR_EQ(h->f.dest, "79161234567");

  struct smpp_client_stats st;
  smpp_client_get_stats(h->c, &st);
  ASSERT_EQ(st.sessions, 1);
  ASSERT_EQ(st.bound, 1);
  ASSERT_EQ(st.inflight, 0);
  ASSERT_EQ(st.submitted, 1);
  ASSERT_EQ(st.resp_ok, 1);
  ASSERT_EQ(st.resp_error, 0);
  ASSERT_EQ(st.reconnects, 1);
  ASSERT_EQ(st.lost, 0);
  h_finish(h);
}

KK_TEST(smpp_client_window_respected) {
  struct h *h = h_new();
  h->cfg.sessions = 2;
  h->cfg.window = 3;
  h->f.hold = 1;
  h_start(h);
  WAIT(h, bound(h, 0) && bound(h, 1), 1000);
  ASSERT_EQ(smpp_client_capacity(h->c), 6);
  int n = 0;
  while (smpp_client_capacity(h->c) > 0) {
    ASSERT_EQ(h_submit(h), 0);
    n++;
  }
  ASSERT_EQ(n, 6);
  ASSERT_EQ(h_submit(h), KK_EBUSY);
  WAIT(h, h->f.nheld == 6, 1000);
  spin(h, 30);
  ASSERT_EQ(h->f.submits, 6);
  ASSERT_EQ(h->f.max_conn_held, 3);
  ASSERT_EQ(smpp_client_capacity(h->c), 0);
  struct smpp_client_stats st;
  smpp_client_get_stats(h->c, &st);
  ASSERT_EQ(st.inflight, 6);

  /* One answer frees one slot and says so through ready. */
  int ready0 = h->nready;
  fake_answer_one(&h->f);
  WAIT(h, h->nresp == 1, 1000);
  WAIT(h, h->nready > ready0, 500);
  ASSERT_EQ(smpp_client_capacity(h->c), 1);
  ASSERT_EQ(h_submit(h), 0);
  ASSERT_EQ(h_submit(h), KK_EBUSY);

  fake_release(&h->f);
  WAIT(h, h->nresp == 6, 1000);
  WAIT(h, h->f.nheld == 1, 1000);
  fake_release(&h->f);
  WAIT(h, h->nresp == 7, 1000);
  ASSERT_EQ(smpp_client_capacity(h->c), 6);
  assert_each_once(h, h->next_token);
  h_finish(h);
}

KK_TEST(smpp_client_isolated_throttle_does_not_pause) {
  struct h *h = h_new();
  h->f.throttle_first = 1;
  h_start(h);
  WAIT(h, bound(h, 0), 1000);
  ASSERT_EQ(h_submit(h), 0);
  WAIT(h, h->nresp == 1, 1000);
  ASSERT_EQ(h->last_status, SMPP_ESME_RTHROTTLED);
  ASSERT_EQ(h->last_id_null, 1);
  /* One refusal is the caller's to resend; the session keeps sending. */
  ASSERT(smpp_client_capacity(h->c) > 0);
  ASSERT_EQ(h_submit(h), 0);
  WAIT(h, h->nresp == 2, 1000);
  ASSERT_EQ(h->last_status, SMPP_ESME_ROK);
  h_finish(h);
}

KK_TEST(smpp_client_throttled_pauses) {
  struct h *h = h_new();
  h->f.throttle_first = 8;
  h_start(h);
  WAIT(h, bound(h, 0), 1000);
  /* A run of refusals: the session pauses. */
  for (int i = 0; i < 8; i++) {
    ASSERT_EQ(h_submit(h), 0);
    WAIT(h, h->nresp == i + 1, 1000);
    ASSERT_EQ(h->last_status, SMPP_ESME_RTHROTTLED);
    if (smpp_client_capacity(h->c) == 0) break;
  }
  uint64_t t0 = uv_now(&h->loop);
  ASSERT(h->nresp >= 5 && h->nresp <= 8);
  /* The only session is paused: no capacity, submits refused. */
  ASSERT_EQ(smpp_client_capacity(h->c), 0);
  ASSERT_EQ(h_submit(h), KK_EBUSY);
  struct smpp_client_stats st;
  smpp_client_get_stats(h->c, &st);
  ASSERT_EQ(st.throttled, h->nresp);
  ASSERT_EQ(st.resp_error, h->nresp);
  h->f.throttle_first = 0;
  int before = h->nresp;

  int ready0 = h->nready;
  WAIT(h, smpp_client_capacity(h->c) > 0, 1500);
  ASSERT(uv_now(&h->loop) - t0 >= 100);
  WAIT(h, h->nready > ready0, 500);
  ASSERT_EQ(h_submit(h), 0);
  WAIT(h, h->nresp == before + 1, 1000);
  ASSERT_EQ(h->last_status, SMPP_ESME_ROK);
  h_finish(h);
}

KK_TEST(smpp_client_bind_rejected_then_retried) {
  struct h *h = h_new();
  h->f.reject_binds = 1;
  h_start(h);
  WAIT(h, bound(h, 0), 2000);
  ASSERT_EQ(h->f.binds, 2);
  ASSERT_EQ(h->f.accepted, 2);
  struct smpp_client_stats st;
  smpp_client_get_stats(h->c, &st);
  ASSERT_EQ(st.reconnects, 1);
  ASSERT_EQ(h_submit(h), 0);
  WAIT(h, h->nresp == 1, 1000);
  h_finish(h);
}

KK_TEST(smpp_client_drop_reports_lost_once) {
  struct h *h = h_new();
  h->cfg.window = 5;
  h->f.hold = 1;
  h->f.close_after = 3;
  h_start(h);
  WAIT(h, bound(h, 0), 1000);
  for (int i = 0; i < 3; i++) ASSERT_EQ(h_submit(h), 0);
  WAIT(h, h->nlost == 3, 1000);
  for (int t = 0; t < 3; t++) {
    ASSERT_EQ(h->lost_by_token[t], 1);
    ASSERT_EQ(h->resp_by_token[t], 0);
  }
  struct smpp_client_stats st;
  smpp_client_get_stats(h->c, &st);
  ASSERT_EQ(st.lost, 3);
  ASSERT_EQ(st.inflight, 0);

  /* The session comes back and works again; nothing is reported twice. */
  h->f.hold = 0;
  h->f.close_after = 0;
  WAIT(h, h->f.binds == 2 && bound(h, 0), 2000);
  ASSERT_EQ(h_submit(h), 0);
  WAIT(h, h->nresp == 1, 1000);
  ASSERT_EQ(h->resp_by_token[3], 1);
  spin(h, 50);
  ASSERT_EQ(h->nlost, 3);
  assert_each_once(h, h->next_token);
  smpp_client_get_stats(h->c, &st);
  ASSERT_EQ(st.reconnects, 2);
  h_finish(h);
}

KK_TEST(smpp_client_resp_timeout_closes_session) {
  struct h *h = h_new();
  h->cfg.resp_timeout_ms = 200;
  h->f.hold = 1;
  h_start(h);
  WAIT(h, bound(h, 0), 1000);
  ASSERT_EQ(h_submit(h), 0);
  WAIT(h, h->nlost == 1, 1500);
  ASSERT_EQ(h->lost_by_token[0], 1);
  h->f.hold = 0;
  WAIT(h, h->f.binds == 2 && bound(h, 0), 2000);
  /* The fake never answered: nothing late can arrive for the lost submit. */
  spin(h, 30);
  ASSERT_EQ(h->nresp, 0);
  h_finish(h);
}

KK_TEST(smpp_client_deliver_sm_answered) {
  struct h *h = h_new();
  h->deliver_status = SMPP_ESME_RX_T_APPN;
  h_start(h);
  WAIT(h, bound(h, 0), 1000);
  const char *text =
      "id:abc123 sub:001 dlvrd:001 submit date:2501011200 done date:2501011201 "
      "stat:DELIVRD err:000 text:hello";
  struct smpp_pdu pdu;
  memset(&pdu, 0, sizeof pdu);
  pdu.command_id = SMPP_DELIVER_SM;
  pdu.sequence_number = 77;
  pdu.body.sm.source_addr = smpp_cstr("79161234567");
  pdu.body.sm.destination_addr = smpp_cstr("kaskad");
  pdu.body.sm.esm_class = SMPP_ESM_DLR;
  pdu.body.sm.short_message = smpp_cstr(text);
  fake_send(h->f.conns, &pdu);
  WAIT(h, h->f.deliver_sm_resps == 1, 1000);
  ASSERT_EQ(h->ndeliver, 1);
  ASSERT_EQ(h->deliver_esm, SMPP_ESM_DLR);
  ASSERT_STR_EQ(h->deliver_text, text);
  ASSERT_EQ(h->f.last_seq, 77);
  ASSERT_EQ(h->f.last_status, SMPP_ESME_RX_T_APPN);
  struct smpp_client_stats st;
  smpp_client_get_stats(h->c, &st);
  ASSERT_EQ(st.deliver_sm, 1);
  h_finish(h);
}

static void send_receipt(struct h *h, uint32_t seq) {
  struct smpp_pdu pdu;
  memset(&pdu, 0, sizeof pdu);
  pdu.command_id = SMPP_DELIVER_SM;
  pdu.sequence_number = seq;
  pdu.body.sm.source_addr = smpp_cstr("79161234567");
  pdu.body.sm.destination_addr = smpp_cstr("kaskad");
  pdu.body.sm.esm_class = SMPP_ESM_DLR;
  pdu.body.sm.short_message = smpp_cstr("id:1 stat:DELIVRD err:000 text:");
  fake_send(h->f.conns, &pdu);
}

KK_TEST(smpp_client_deliver_sm_deferred_answer) {
  struct h *h = h_new();
  h->defer = 1;
  h_start(h);
  WAIT(h, bound(h, 0), 1000);
  ASSERT_EQ(smpp_client_defer(h->c), 0); /* outside a deliver callback */
  send_receipt(h, 78);
  WAIT(h, h->ndeliver == 1, 1000);
  /* A submit's round trip passes while the receipt stays unanswered. */
  ASSERT_EQ(h_submit(h), 0);
  WAIT(h, h->nresp == 1, 1000);
  ASSERT_EQ(h->f.deliver_sm_resps, 0);
  ASSERT(h->deferred != 0);
  ASSERT_EQ(smpp_client_deliver_resp(h->c, h->deferred, SMPP_ESME_RX_T_APPN), 0);
  WAIT(h, h->f.deliver_sm_resps == 1, 1000);
  ASSERT_EQ(h->f.last_seq, 78);
  ASSERT_EQ(h->f.last_status, SMPP_ESME_RX_T_APPN);
  /* A handle from a connection that has since dropped answers nothing. */
  send_receipt(h, 79);
  WAIT(h, h->ndeliver == 2, 1000);
  uint64_t stale = h->deferred;
  fake_close_conn(h->f.conns);
  WAIT(h, h->f.binds == 2 && bound(h, 0), 3000);
  ASSERT_EQ(smpp_client_deliver_resp(h->c, stale, SMPP_ESME_ROK), KK_ECLOSED);
  ASSERT_EQ(h->f.deliver_sm_resps, 1);
  h_finish(h);
}

KK_TEST(smpp_client_unknown_command_gets_generic_nack) {
  struct h *h = h_new();
  h_start(h);
  WAIT(h, bound(h, 0), 1000);
  /* A well-formed header with a command id nobody defines. */
  static const uint8_t raw[16] = {0, 0, 0, 16, 0, 0, 0x07, 0x77, 0, 0, 0, 0, 0, 0, 0, 42};
  fake_send_raw(h->f.conns, raw, sizeof raw);
  WAIT(h, h->f.generic_nacks == 1, 1000);
  ASSERT_EQ(h->f.last_status, SMPP_ESME_RINVCMDID);
  ASSERT_EQ(h->f.last_seq, 42);
  struct smpp_client_stats st;
  smpp_client_get_stats(h->c, &st);
  ASSERT_EQ(st.protocol_errors, 1);
  /* The session survives and keeps working. */
  ASSERT(bound(h, 0));
  ASSERT_EQ(h_submit(h), 0);
  WAIT(h, h->nresp == 1, 1000);
  ASSERT_EQ(h->f.accepted, 1);
  h_finish(h);
}

KK_TEST(smpp_client_unframeable_stream_closes_session) {
  struct h *h = h_new();
  h_start(h);
  WAIT(h, bound(h, 0), 1000);
  /* command_length 4 cannot be a PDU: the stream cannot be resynchronised. */
  static const uint8_t raw[16] = {0, 0, 0, 4, 0, 0, 0, 0x15, 0, 0, 0, 0, 0, 0, 0, 1};
  fake_send_raw(h->f.conns, raw, sizeof raw);
  WAIT(h, h->f.binds == 2 && bound(h, 0), 2000);
  ASSERT_EQ(h->f.accepted, 2);
  ASSERT_EQ(h->f.enquire_link_resps, 0);
  struct smpp_client_stats st;
  smpp_client_get_stats(h->c, &st);
  ASSERT_EQ(st.protocol_errors, 1);
  h_finish(h);
}

KK_TEST(smpp_client_enquire_link_from_smsc_answered) {
  struct h *h = h_new();
  h_start(h);
  WAIT(h, bound(h, 0), 1000);
  struct smpp_pdu pdu;
  memset(&pdu, 0, sizeof pdu);
  pdu.command_id = SMPP_ENQUIRE_LINK;
  pdu.sequence_number = 9;
  fake_send(h->f.conns, &pdu);
  WAIT(h, h->f.enquire_link_resps == 1, 1000);
  ASSERT_EQ(h->f.last_seq, 9);
  ASSERT_EQ(h->f.last_status, SMPP_ESME_ROK);
  h_finish(h);
}

KK_TEST(smpp_client_enquire_link_keepalive) {
  struct h *h = h_new();
  h->cfg.enquire_link_s = 1;
  h_start(h);
  WAIT(h, bound(h, 0), 1000);
  ASSERT_EQ(h->f.enquire_links, 0);
  WAIT(h, h->f.enquire_links == 1, 2000);
  spin(h, 50);
  ASSERT(bound(h, 0));
  ASSERT_EQ(h->f.binds, 1);
  h_finish(h);
}

KK_TEST(smpp_client_unbind_from_smsc) {
  struct h *h = h_new();
  h_start(h);
  WAIT(h, bound(h, 0), 1000);
  struct smpp_pdu pdu;
  memset(&pdu, 0, sizeof pdu);
  pdu.command_id = SMPP_UNBIND;
  pdu.sequence_number = 5;
  fake_send(h->f.conns, &pdu);
  WAIT(h, h->f.unbind_resps == 1, 1000);
  ASSERT_EQ(h->f.last_seq, 5);
  /* The client closes the connection and binds again later. */
  WAIT(h, h->f.binds == 2 && bound(h, 0), 2000);
  ASSERT_EQ(h->f.accepted, 2);
  h_finish(h);
}

KK_TEST(smpp_client_max_sps_limits_rate) {
  struct h *h = h_new();
  h->cfg.window = 100;
  h->cfg.max_sps = 100;
  h->submit_until = MAX_TOKENS;
  h_start(h);
  WAIT(h, bound(h, 0), 1000);
  /* ready fires on bind and drives the submits from then on. */
  WAIT(h, h->next_token > 0, 500);
  uint64_t n0 = h->next_token;
  uint64_t t0 = uv_now(&h->loop);
  spin(h, 300);
  uint64_t n = h->next_token - n0;
  uint64_t ms = uv_now(&h->loop) - t0;
  /* 100 per second over about 300 ms is about 30. The budget can hold a
     burst of 10 and refills with loop time, so even on a slow machine the
     count stays under 10 + ms / 10 (plus one for rounding). The refill timer
     must keep submits going: at least one more burst comes through even when
     the machine is so loaded that the loop barely turns. */
  ASSERT(n >= 10);
  ASSERT(n <= 10 + ms / 10 + 1);
  ASSERT(smpp_client_capacity(h->c) <= 10);
  h->submit_until = 0;
  WAIT(h, (uint64_t)h->nresp == h->next_token, 1000);
  assert_each_once(h, h->next_token);
  h_finish(h);
}

KK_TEST(smpp_client_close_drains_then_unbinds) {
  struct h *h = h_new();
  h->cfg.resp_timeout_ms = 300;
  h->f.hold = 1;
  h_start(h);
  WAIT(h, bound(h, 0), 1000);
  ASSERT_EQ(h_submit(h), 0);
  ASSERT_EQ(h_submit(h), 0);
  WAIT(h, h->f.nheld == 2, 1000);

  smpp_client_close(h->c, cb_closed);
  ASSERT_EQ(h_submit(h), KK_ECLOSED);
  ASSERT_EQ(smpp_client_capacity(h->c), 0);
  /* Responses still arrive while the route drains. */
  fake_answer_one(&h->f);
  WAIT(h, h->nresp == 1, 1000);
  ASSERT_EQ(h->resp_by_token[0], 1);
  ASSERT_EQ(h->f.unbinds, 0);
  ASSERT_EQ(h->closed, 0);
  /* The second is never answered: after the drain deadline the client
     unbinds, closes and reports it lost. */
  WAIT(h, h->closed == 1, 2000);
  ASSERT_EQ(h->f.unbinds, 1);
  ASSERT_EQ(h->lost_by_token[1], 1);
  ASSERT_EQ(h->nlost, 1);
  assert_each_once(h, h->next_token);
  h_finish(h);
}

KK_TEST(smpp_client_close_idle_route) {
  struct h *h = h_new();
  h->cfg.sessions = 3;
  h_start(h);
  WAIT(h, bound(h, 0) && bound(h, 1) && bound(h, 2), 1000);
  smpp_client_close(h->c, cb_closed);
  WAIT(h, h->closed == 1, 1000);
  ASSERT_EQ(h->f.unbinds, 3);
  h_finish(h);
}

KK_TEST(smpp_client_close_while_unreachable) {
  struct h *h = h_new();
  /* Nobody listens on the port of a closed server: connects are refused. */
  uv_tcp_t tmp;
  struct sockaddr_in addr;
  struct sockaddr_storage got;
  int len = sizeof got;
  ASSERT_EQ(uv_tcp_init(&h->loop, &tmp), 0);
  ASSERT_EQ(uv_ip4_addr("127.0.0.1", 0, &addr), 0);
  ASSERT_EQ(uv_tcp_bind(&tmp, (const struct sockaddr *)&addr, 0), 0);
  ASSERT_EQ(uv_tcp_getsockname(&tmp, (struct sockaddr *)&got, &len), 0);
  h->cfg.port = ntohs(((struct sockaddr_in *)&got)->sin_port);
  uv_close((uv_handle_t *)&tmp, NULL);
  h_start(h);
  spin(h, 100);
  ASSERT(!bound(h, 0));
  ASSERT_EQ(smpp_client_capacity(h->c), 0);
  ASSERT_EQ(h_submit(h), KK_EBUSY);
  h_finish(h);
}

KK_TEST(smpp_client_many_submits) {
  struct h *h = h_new();
  h->cfg.sessions = 2;
  h->cfg.window = 50;
  h_start(h);
  WAIT(h, bound(h, 0) && bound(h, 1), 1000);
  h->submit_until = 3000;
  cb_ready(h);
  WAIT(h, h->next_token == 3000, 5000);
  WAIT(h, (uint64_t)h->nresp == h->next_token, 1000);
  ASSERT_EQ(h->nlost, 0);
  assert_each_once(h, h->next_token);
  ASSERT_EQ(h->f.submits, (int)h->next_token);
  h_finish(h);
}

KK_TEST(smpp_client_bad_submit_resp_reported_lost) {
  struct h *h = h_new();
  h->f.hold = 1;
  h_start(h);
  WAIT(h, bound(h, 0), 1000);
  ASSERT_EQ(h_submit(h), 0);
  WAIT(h, h->f.nheld == 1, 1000);
  /* A submit_sm_resp whose message_id is longer than SMPP allows. */
  uint8_t raw[16 + 80];
  uint32_t seq = h->f.held[0].seq;
  memset(raw, 0, sizeof raw);
  raw[3] = sizeof raw;
  raw[4] = 0x80;
  raw[7] = 0x04;
  raw[12] = (uint8_t)(seq >> 24);
  raw[13] = (uint8_t)(seq >> 16);
  raw[14] = (uint8_t)(seq >> 8);
  raw[15] = (uint8_t)seq;
  memset(raw + 16, 'a', 79);
  fake_send_raw(h->f.conns, raw, sizeof raw);
  /* Its outcome is unknown: lost, no generic_nack for a response, and the
     session carries on. */
  WAIT(h, h->nlost == 1, 1000);
  ASSERT_EQ(h->lost_by_token[0], 1);
  ASSERT_EQ(h->nresp, 0);
  struct smpp_client_stats st;
  smpp_client_get_stats(h->c, &st);
  ASSERT_EQ(st.protocol_errors, 1);
  ASSERT_EQ(st.inflight, 0);
  spin(h, 30);
  ASSERT_EQ(h->f.generic_nacks, 0);
  ASSERT(bound(h, 0));
  h_finish(h);
}

KK_TEST(smpp_client_resolves_host_name) {
  struct h *h = h_new();
  /* "localhost" may resolve to ::1 first, where nobody listens; the client
     then moves on to the next address. */
  snprintf(h->cfg.host, sizeof h->cfg.host, "localhost");
  h_start(h);
  WAIT(h, bound(h, 0), 2000);
  ASSERT_EQ(h_submit(h), 0);
  WAIT(h, h->nresp == 1, 1000);
  h_finish(h);
}
