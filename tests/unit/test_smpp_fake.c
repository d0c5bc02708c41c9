/*
 * test_smpp_fake.c - the fake SMSC and the harness of the SMPP client tests
 * (see test_smpp_fake.h). Every test closes the client and the fake, runs
 * the loop dry, checks that uv_loop_close() succeeds and, under
 * AddressSanitizer, that nothing leaked.
 */
#include "test_smpp_fake.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "core/kk_err.h"
#include "core/kk_log.h"
#include "kk_test.h"

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/lsan_interface.h>
#endif

/* ---- fake SMSC ------------------------------------------------------------ */

struct wreq {
  uv_write_t req;
  uint8_t data[];
};

static void fake_on_write(uv_write_t *req, int status) {
  free(req);
}

void fake_send_raw(struct fconn *fc, const void *p, size_t n) {
  if (uv_is_closing((uv_handle_t *)&fc->tcp)) return;
  struct wreq *w = malloc(sizeof *w + n);
  ASSERT(w != NULL);
  memcpy(w->data, p, n);
  uv_buf_t b = uv_buf_init((char *)w->data, (unsigned)n);
  ASSERT_EQ(uv_write(&w->req, (uv_stream_t *)&fc->tcp, &b, 1, fake_on_write), 0);
}

void fake_send(struct fconn *fc, const struct smpp_pdu *pdu) {
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

void fake_close_conn(struct fconn *fc) {
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
void fake_answer_one(struct fake *f) {
  char id[32];
  ASSERT(f->nheld > 0);
  struct held h = f->held[0];
  memmove(f->held, f->held + 1, (size_t)(f->nheld - 1) * sizeof f->held[0]);
  f->nheld--;
  h.conn->held--;
  snprintf(id, sizeof id, "mid-%u", h.seq);
  fake_resp(h.conn, SMPP_SUBMIT_SM_RESP, SMPP_ESME_ROK, h.seq, id);
}

void fake_release(struct fake *f) {
  while (f->nheld > 0) fake_answer_one(f);
}

/* ---- harness ---------------------------------------------------------------- */

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

void cb_ready(void *ud) {
  struct h *h = ud;
  h->nready++;
  while (h->next_token < h->submit_until && smpp_client_capacity(h->c) > 0)
    ASSERT_EQ(h_submit(h), 0);
}

void cb_closed(void *ud) {
  struct h *h = ud;
  h->closed++;
  h->state_at_close = smpp_client_session_state(h->c, 0);
}

void h_on_poll(uv_timer_t *t) {
  (void)t;
}

/* Sets up the loop, the fake SMSC and a default configuration. */
struct h *h_new(void) {
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

void h_start(struct h *h) {
  struct smpp_client_cbs cbs = {cb_resp, cb_lost, cb_deliver, cb_ready};
  h->c = smpp_client_new(&h->loop, &h->cfg, &cbs, h);
  ASSERT(h->c != NULL);
}

/* Runs the loop for about ms. */
void spin(struct h *h, int ms) {
  uint64_t end = uv_now(&h->loop) + (uint64_t)ms;
  uv_timer_start(&h->poll, h_on_poll, 5, 5);
  while (uv_now(&h->loop) < end) uv_run(&h->loop, UV_RUN_ONCE);
  uv_timer_stop(&h->poll);
}

int h_submit(struct h *h) {
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

int bound(struct h *h, int i) {
  return smpp_client_session_state(h->c, i) == SMPP_SESS_BOUND;
}

/* Closes the client (unless the test did) and the fake, and checks that the
   loop closes and nothing leaked. */
void h_finish(struct h *h) {
  if (h->c && !h->closed) {
    smpp_client_stop(h->c, cb_closed);
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
void assert_each_once(struct h *h, uint64_t n) {
  for (uint64_t t = 0; t < n; t++) ASSERT_EQ(h->resp_by_token[t] + h->lost_by_token[t], 1);
}
