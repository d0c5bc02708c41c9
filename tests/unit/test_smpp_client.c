/*
 * test_smpp_client.c - the SMPP route client against an in-process fake SMSC
 * (test_smpp_fake.c).
 */
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "core/kk_err.h"
#include "core/kk_log.h"
#include "kk_test.h"
#include "smpp/smpp_client.h"
#include "smpp/smpp_codec.h"
#include "test_smpp_fake.h"

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

  smpp_client_stop(h->c, cb_closed);
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
  smpp_client_stop(h->c, cb_closed);
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
