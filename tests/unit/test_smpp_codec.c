/*
 * test_smpp_codec.c - SMPP 3.4 framing, decoding and encoding: the golden PDUs
 * in tests/data/smpp decode to the expected fields and re-encode byte for
 * byte; every decode error path answers the right command_status; the encoder
 * refuses over-long fields and small buffers; the dump is one line.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/kk_err.h"
#include "kk_test.h"
#include "smpp/smpp_codec.h"

static int hex_digit(int c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

/* Reads tests/data/smpp/<name>.hex (hex text, '#' comments) into out. */
static size_t load_hex(const char *name, uint8_t *out, size_t cap) {
  char path[512];
  snprintf(path, sizeof path, "%s/smpp/%s.hex", kk_test_data_dir(), name);
  size_t len = 0, n = 0;
  uint8_t *text = kk_test_read_file(path, &len);
  if (text == NULL) kk_test_fail(__FILE__, __LINE__, "cannot read %s", path);
  int hi = -1, comment = 0;
  for (size_t i = 0; i < len; i++) {
    int c = text[i];
    if (comment) {
      comment = c != '\n';
      continue;
    }
    if (c == '#') {
      comment = 1;
      continue;
    }
    if (c == ' ' || c == '\t' || c == '\r' || c == '\n') continue;
    int d = hex_digit(c);
    if (d < 0) kk_test_fail(__FILE__, __LINE__, "%s: bad character '%c'", path, c);
    if (hi < 0) {
      hi = d;
      continue;
    }
    if (n == cap) kk_test_fail(__FILE__, __LINE__, "%s: too long", path);
    out[n++] = (uint8_t)(hi << 4 | d);
    hi = -1;
  }
  free(text);
  if (hi >= 0) kk_test_fail(__FILE__, __LINE__, "%s: odd number of digits", path);
  return n;
}

/* Decodes a golden file and checks that encoding gives the same bytes back. */
static size_t golden(const char *name, uint8_t *buf, size_t cap,
                     struct smpp_pdu *pdu) {
  size_t len = load_hex(name, buf, cap), plen = 0, n = 0;
  struct smpp_err err;
  ASSERT_EQ(smpp_frame(buf, len, &plen), 0);
  ASSERT_EQ(plen, len);
  ASSERT_EQ(smpp_decode(buf, len, pdu, &err), 0);
  ASSERT_EQ(pdu->command_length, len);
  uint8_t out[1024];
  ASSERT_EQ(smpp_encode(pdu, out, sizeof out, &n), 0);
  ASSERT_EQ(n, len);
  ASSERT_MEM_EQ(out, buf, len);
  return len;
}

/* Decodes buf and expects KK_EPROTO with this status at this offset. */
static void expect_error(const uint8_t *buf, size_t len, uint32_t status,
                         size_t offset) {
  struct smpp_pdu pdu;
  struct smpp_err err;
  ASSERT_EQ(smpp_decode(buf, len, &pdu, &err), KK_EPROTO);
  ASSERT_EQ(err.status, status);
  ASSERT_EQ(err.offset, offset);
}

static void put32(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)(v >> 24);
  p[1] = (uint8_t)(v >> 16);
  p[2] = (uint8_t)(v >> 8);
  p[3] = (uint8_t)v;
}

/* Fills in a submit_sm equal to submit_sm_gsm7_alpha.hex. */
static void make_submit(struct smpp_pdu *pdu) {
  memset(pdu, 0, sizeof *pdu);
  pdu->command_id = SMPP_SUBMIT_SM;
  pdu->sequence_number = 7;
  struct smpp_sm *sm = &pdu->body.sm;
  sm->source_addr_ton = 5;
  sm->source_addr = smpp_cstr("KASKAD");
  sm->dest_addr_ton = 1;
  sm->dest_addr_npi = 1;
  sm->destination_addr = smpp_cstr("79161234567");
  sm->registered_delivery = 1;
  sm->short_message = smpp_cstr("Hello world");
}

KK_TEST(smpp_codec_golden_bind_transceiver) {
  uint8_t buf[256];
  struct smpp_pdu pdu;
  golden("bind_transceiver", buf, sizeof buf, &pdu);
  ASSERT_EQ(pdu.command_id, SMPP_BIND_TRANSCEIVER);
  ASSERT_EQ(pdu.sequence_number, 1);
  ASSERT_VIEW_EQ(pdu.body.bind.system_id.p, pdu.body.bind.system_id.len, "kaskad");
  ASSERT_VIEW_EQ(pdu.body.bind.password.p, pdu.body.bind.password.len, "secret");
  ASSERT_EQ(pdu.body.bind.system_type.len, 0);
  ASSERT_EQ(pdu.body.bind.interface_version, 0x34);
  ASSERT_EQ(pdu.body.bind.addr_ton, 0);
  ASSERT_EQ(pdu.body.bind.addr_npi, 0);
  ASSERT_EQ(pdu.body.bind.address_range.len, 0);
  ASSERT_EQ(pdu.ntlv, 0);
}

KK_TEST(smpp_codec_golden_bind_transceiver_resp) {
  uint8_t buf[256];
  struct smpp_pdu pdu;
  golden("bind_transceiver_resp", buf, sizeof buf, &pdu);
  ASSERT_EQ(pdu.command_id, SMPP_BIND_TRANSCEIVER_RESP);
  ASSERT_EQ(pdu.command_status, SMPP_ESME_ROK);
  ASSERT_VIEW_EQ(pdu.body.system_id.p, pdu.body.system_id.len, "SMSC");
  ASSERT_EQ(pdu.ntlv, 1);
  const struct smpp_tlv *t = smpp_tlv_find(&pdu, SMPP_TLV_SC_INTERFACE_VERSION);
  ASSERT(t != NULL);
  ASSERT_EQ(t->val.len, 1);
  ASSERT_EQ(t->val.p[0], 0x34);
}

KK_TEST(smpp_codec_golden_submit_gsm7_alpha) {
  uint8_t buf[256];
  struct smpp_pdu pdu;
  golden("submit_sm_gsm7_alpha", buf, sizeof buf, &pdu);
  const struct smpp_sm *sm = &pdu.body.sm;
  ASSERT_EQ(pdu.command_id, SMPP_SUBMIT_SM);
  ASSERT_EQ(pdu.sequence_number, 7);
  ASSERT_EQ(sm->service_type.len, 0);
  ASSERT_EQ(sm->source_addr_ton, 5);
  ASSERT_EQ(sm->source_addr_npi, 0);
  ASSERT_VIEW_EQ(sm->source_addr.p, sm->source_addr.len, "KASKAD");
  ASSERT_EQ(sm->dest_addr_ton, 1);
  ASSERT_EQ(sm->dest_addr_npi, 1);
  ASSERT_VIEW_EQ(sm->destination_addr.p, sm->destination_addr.len, "79161234567");
  ASSERT_EQ(sm->esm_class, 0);
  ASSERT_EQ(sm->schedule_delivery_time.len, 0);
  ASSERT_EQ(sm->validity_period.len, 0);
  ASSERT_EQ(sm->registered_delivery, 1);
  ASSERT_EQ(sm->data_coding, 0);
  ASSERT_VIEW_EQ(sm->short_message.p, sm->short_message.len, "Hello world");
  ASSERT_EQ(pdu.ntlv, 0);
}

KK_TEST(smpp_codec_golden_submit_ucs2_udh) {
  uint8_t buf[256];
  struct smpp_pdu pdu;
  golden("submit_sm_ucs2_udh", buf, sizeof buf, &pdu);
  const struct smpp_sm *sm = &pdu.body.sm;
  static const uint8_t ud[] = {0x05, 0x00, 0x03, 0x2a, 0x02, 0x01, 0x04, 0x1f,
                               0x04, 0x40, 0x04, 0x38, 0x04, 0x32, 0x04, 0x35,
                               0x04, 0x42};
  ASSERT_EQ(pdu.sequence_number, 8);
  ASSERT_EQ(sm->esm_class, SMPP_ESM_UDHI);
  ASSERT_EQ(sm->data_coding, 0x08);
  ASSERT_EQ(sm->short_message.len, sizeof ud);
  ASSERT_MEM_EQ(sm->short_message.p, ud, sizeof ud);
}

KK_TEST(smpp_codec_golden_submit_validity) {
  uint8_t buf[256];
  struct smpp_pdu pdu;
  golden("submit_sm_validity", buf, sizeof buf, &pdu);
  const struct smpp_sm *sm = &pdu.body.sm;
  ASSERT_VIEW_EQ(sm->source_addr.p, sm->source_addr.len, "79160000001");
  ASSERT_EQ(sm->priority_flag, 1);
  ASSERT_EQ(sm->schedule_delivery_time.len, 0);
  ASSERT_VIEW_EQ(sm->validity_period.p, sm->validity_period.len,
                 "000000010000000R");
  ASSERT_EQ(sm->registered_delivery, 0);
  ASSERT_EQ(sm->data_coding, 1);
  ASSERT_VIEW_EQ(sm->short_message.p, sm->short_message.len, "test");
}

KK_TEST(smpp_codec_golden_submit_resp) {
  uint8_t buf[256];
  struct smpp_pdu pdu;
  golden("submit_sm_resp", buf, sizeof buf, &pdu);
  ASSERT_EQ(pdu.command_id, SMPP_SUBMIT_SM_RESP);
  ASSERT_EQ(pdu.sequence_number, 7);
  ASSERT_VIEW_EQ(pdu.body.message_id.p, pdu.body.message_id.len, "1a2b3c4d");
}

KK_TEST(smpp_codec_golden_submit_resp_error) {
  uint8_t buf[256];
  struct smpp_pdu pdu;
  golden("submit_sm_resp_error", buf, sizeof buf, &pdu);
  ASSERT_EQ(pdu.command_id, SMPP_SUBMIT_SM_RESP);
  ASSERT_EQ(pdu.command_status, SMPP_ESME_RTHROTTLED);
  ASSERT_EQ(pdu.sequence_number, 10);
  ASSERT(pdu.body.message_id.p == NULL);
  ASSERT_EQ(pdu.body.message_id.len, 0);
}

KK_TEST(smpp_codec_golden_deliver_receipt_tlv) {
  uint8_t buf[256];
  struct smpp_pdu pdu;
  golden("deliver_sm_receipt_tlv", buf, sizeof buf, &pdu);
  const struct smpp_sm *sm = &pdu.body.sm;
  ASSERT_EQ(pdu.command_id, SMPP_DELIVER_SM);
  ASSERT_EQ(pdu.sequence_number, 42);
  ASSERT_EQ(sm->esm_class, SMPP_ESM_DLR);
  ASSERT_VIEW_EQ(sm->source_addr.p, sm->source_addr.len, "79161234567");
  ASSERT_VIEW_EQ(sm->destination_addr.p, sm->destination_addr.len, "KASKAD");
  ASSERT_EQ(sm->short_message.len, 111);
  ASSERT(memcmp(sm->short_message.p, "id:1a2b3c4d sub:001", 19) == 0);
  ASSERT_EQ(pdu.ntlv, 3);
  ASSERT_EQ(pdu.tlv[0].tag, SMPP_TLV_RECEIPTED_MESSAGE_ID);
  ASSERT_EQ(pdu.tlv[0].val.len, 9);
  ASSERT_MEM_EQ(pdu.tlv[0].val.p, "1a2b3c4d", 9);
  ASSERT_EQ(pdu.tlv[1].tag, SMPP_TLV_MESSAGE_STATE);
  ASSERT_EQ(pdu.tlv[1].val.len, 1);
  ASSERT_EQ(pdu.tlv[1].val.p[0], 2);
  ASSERT_EQ(pdu.tlv[2].tag, SMPP_TLV_NETWORK_ERROR_CODE);
  ASSERT_EQ(pdu.tlv[2].val.len, 3);
  ASSERT_EQ(pdu.tlv[2].val.p[0], 3);
}

KK_TEST(smpp_codec_golden_deliver_receipt_text) {
  uint8_t buf[256];
  struct smpp_pdu pdu;
  golden("deliver_sm_receipt_text", buf, sizeof buf, &pdu);
  const struct smpp_sm *sm = &pdu.body.sm;
  ASSERT_EQ(pdu.sequence_number, 43);
  ASSERT_EQ(sm->esm_class, SMPP_ESM_DLR);
  ASSERT_EQ(sm->short_message.len, 113);
  ASSERT(memcmp(sm->short_message.p, "id:1234567890 ", 14) == 0);
  ASSERT_EQ(pdu.ntlv, 0);
}

KK_TEST(smpp_codec_golden_deliver_mo) {
  uint8_t buf[256];
  struct smpp_pdu pdu;
  golden("deliver_sm_mo", buf, sizeof buf, &pdu);
  const struct smpp_sm *sm = &pdu.body.sm;
  ASSERT_EQ(pdu.command_id, SMPP_DELIVER_SM);
  ASSERT_EQ(sm->esm_class, 0);
  ASSERT_EQ(sm->dest_addr_ton, 0);
  ASSERT_VIEW_EQ(sm->destination_addr.p, sm->destination_addr.len, "1234");
  ASSERT_VIEW_EQ(sm->short_message.p, sm->short_message.len, "STOP");
}

KK_TEST(smpp_codec_golden_deliver_resp) {
  uint8_t buf[64];
  struct smpp_pdu pdu;
  golden("deliver_sm_resp", buf, sizeof buf, &pdu);
  ASSERT_EQ(pdu.command_id, SMPP_DELIVER_SM_RESP);
  ASSERT(pdu.body.message_id.p != NULL);
  ASSERT_EQ(pdu.body.message_id.len, 0);
}

KK_TEST(smpp_codec_golden_header_only) {
  uint8_t buf[64];
  struct smpp_pdu pdu;
  golden("enquire_link", buf, sizeof buf, &pdu);
  ASSERT_EQ(pdu.command_id, SMPP_ENQUIRE_LINK);
  ASSERT_EQ(pdu.sequence_number, 5);
  golden("unbind_resp", buf, sizeof buf, &pdu);
  ASSERT_EQ(pdu.command_id, SMPP_UNBIND_RESP);
  ASSERT_EQ(pdu.sequence_number, 6);
  golden("generic_nack", buf, sizeof buf, &pdu);
  ASSERT_EQ(pdu.command_id, SMPP_GENERIC_NACK);
  ASSERT_EQ(pdu.command_status, SMPP_ESME_RINVCMDID);
  ASSERT_EQ(pdu.sequence_number, 11);
}

/* The encoder works from a struct filled by hand, not only from a decode. */
KK_TEST(smpp_codec_encode_matches_golden) {
  uint8_t want[256], out[256];
  size_t len = load_hex("submit_sm_gsm7_alpha", want, sizeof want), n = 0;
  struct smpp_pdu pdu;
  make_submit(&pdu);
  pdu.command_length = 12345;  /* ignored: the encoder computes it */
  ASSERT_EQ(smpp_encode(&pdu, out, sizeof out, &n), 0);
  ASSERT_EQ(n, len);
  ASSERT_MEM_EQ(out, want, len);

  /* An error response left without a body string is a bare header. */
  len = load_hex("submit_sm_resp_error", want, sizeof want);
  memset(&pdu, 0, sizeof pdu);
  pdu.command_id = SMPP_SUBMIT_SM_RESP;
  pdu.command_status = SMPP_ESME_RTHROTTLED;
  pdu.sequence_number = 10;
  ASSERT_EQ(smpp_encode(&pdu, out, sizeof out, &n), 0);
  ASSERT_EQ(n, len);
  ASSERT_MEM_EQ(out, want, len);
}

/* An error response that does carry a body keeps it through a round trip. */
KK_TEST(smpp_codec_error_resp_with_body) {
  static const uint8_t in[] = {0, 0, 0, 17, 0x80, 0, 0, 4, 0, 0, 0, 0x45,
                               0, 0, 0, 3, 0};
  struct smpp_pdu pdu;
  struct smpp_err err;
  uint8_t out[64];
  size_t n = 0;
  ASSERT_EQ(smpp_decode(in, sizeof in, &pdu, &err), 0);
  ASSERT_EQ(pdu.command_status, SMPP_ESME_RSUBMITFAIL);
  ASSERT(pdu.body.message_id.p != NULL);
  ASSERT_EQ(smpp_encode(&pdu, out, sizeof out, &n), 0);
  ASSERT_EQ(n, sizeof in);
  ASSERT_MEM_EQ(out, in, sizeof in);

  /* A successful response must have its body. */
  static const uint8_t bare[] = {0, 0, 0, 16, 0x80, 0, 0, 4, 0, 0, 0, 0,
                                 0, 0, 0, 3};
  expect_error(bare, sizeof bare, SMPP_ESME_RINVPARLEN, 16);
}

KK_TEST(smpp_codec_message_payload) {
  static uint8_t payload[3000];
  for (size_t i = 0; i < sizeof payload; i++) payload[i] = (uint8_t)('a' + i % 26);
  struct smpp_pdu pdu, back;
  struct smpp_err err;
  make_submit(&pdu);
  pdu.body.sm.short_message = smpp_cstr(NULL);
  ASSERT_EQ(smpp_tlv_add(&pdu, SMPP_TLV_MESSAGE_PAYLOAD, payload, sizeof payload), 0);
  static uint8_t out[4096];
  size_t n = 0;
  ASSERT_EQ(smpp_encode(&pdu, out, sizeof out, &n), 0);
  ASSERT_EQ(n, 61 - 11 + 4 + sizeof payload);
  ASSERT_EQ(smpp_decode(out, n, &back, &err), 0);
  ASSERT_EQ(back.body.sm.short_message.len, 0);
  ASSERT_EQ(back.ntlv, 1);
  ASSERT_EQ(back.tlv[0].val.len, sizeof payload);
  ASSERT_MEM_EQ(back.tlv[0].val.p, payload, sizeof payload);
}

KK_TEST(smpp_codec_frame) {
  uint8_t buf[64];
  size_t len = load_hex("enquire_link", buf, sizeof buf), plen = 0;
  ASSERT_EQ(smpp_frame(buf, 0, &plen), KK_EAGAIN);
  ASSERT_EQ(smpp_frame(buf, 3, &plen), KK_EAGAIN);
  ASSERT_EQ(smpp_frame(buf, 15, &plen), KK_EAGAIN);
  memcpy(buf + len, buf, len);  /* two PDUs back to back */
  ASSERT_EQ(smpp_frame(buf, 2 * len, &plen), 0);
  ASSERT_EQ(plen, 16);

  uint8_t big[20] = {0};
  put32(big, 20);
  ASSERT_EQ(smpp_frame(big, 18, &plen), KK_EAGAIN);
  ASSERT_EQ(smpp_frame(big, 20, &plen), 0);
  ASSERT_EQ(plen, 20);
  put32(big, 15);
  ASSERT_EQ(smpp_frame(big, 20, &plen), KK_EPROTO);
  put32(big, 0);
  ASSERT_EQ(smpp_frame(big, 15, &plen), KK_EAGAIN);
  ASSERT_EQ(smpp_frame(big, 16, &plen), KK_EPROTO);
  put32(big, SMPP_MAX_PDU_LEN + 1);
  ASSERT_EQ(smpp_frame(big, 20, &plen), KK_EPROTO);
  put32(big, SMPP_MAX_PDU_LEN);
  ASSERT_EQ(smpp_frame(big, 20, &plen), KK_EAGAIN);
}

KK_TEST(smpp_codec_truncated_header) {
  uint8_t buf[64];
  size_t len = load_hex("enquire_link", buf, sizeof buf);
  struct smpp_pdu pdu;
  for (size_t k = 0; k < len; k++)
    expect_error(buf, k, SMPP_ESME_RINVCMDLEN, 0);
  ASSERT_EQ(smpp_decode(buf, 0, &pdu, NULL), KK_EPROTO);
}

KK_TEST(smpp_codec_bad_command_length) {
  uint8_t buf[256];
  size_t len = load_hex("submit_sm_gsm7_alpha", buf, sizeof buf);
  struct smpp_pdu pdu;
  struct smpp_err err;
  put32(buf, (uint32_t)len + 1);
  ASSERT_EQ(smpp_decode(buf, len, &pdu, &err), KK_EPROTO);
  ASSERT_EQ(err.status, SMPP_ESME_RINVCMDLEN);
  /* The header is filled in so that the caller can answer it. */
  ASSERT_EQ(pdu.sequence_number, 7);
  ASSERT_EQ(pdu.command_id, SMPP_SUBMIT_SM);
  put32(buf, 15);
  expect_error(buf, len, SMPP_ESME_RINVCMDLEN, 0);
}

KK_TEST(smpp_codec_unknown_command) {
  uint8_t buf[64];
  size_t len = load_hex("enquire_link", buf, sizeof buf);
  struct smpp_pdu pdu;
  struct smpp_err err;
  put32(buf + 4, 0x00000103);  /* data_sm, which kaskad does not speak */
  ASSERT_EQ(smpp_decode(buf, len, &pdu, &err), KK_EPROTO);
  ASSERT_EQ(err.status, SMPP_ESME_RINVCMDID);
  ASSERT_EQ(err.offset, 4);
  ASSERT_EQ(pdu.sequence_number, 5);
  ASSERT_STR_EQ(smpp_cmd_name(0x00000103), "unknown");
}

KK_TEST(smpp_codec_extra_bytes) {
  uint8_t buf[64];
  size_t len = load_hex("enquire_link", buf, sizeof buf);
  buf[len++] = 0;
  put32(buf, (uint32_t)len);
  expect_error(buf, len, SMPP_ESME_RINVCMDLEN, 16);

  /* A bind request has no optional parameters in SMPP 3.4. */
  len = load_hex("bind_transceiver", buf, sizeof buf);
  memcpy(buf + len, "\x02\x10\x00\x01\x34", 5);
  put32(buf, (uint32_t)len + 5);
  expect_error(buf, len + 5, SMPP_ESME_RINVCMDLEN, len);
}

KK_TEST(smpp_codec_string_without_nul) {
  uint8_t buf[64];
  /* A bind_transceiver whose system_id runs to the end of the PDU. */
  size_t len = load_hex("bind_transceiver", buf, sizeof buf);
  put32(buf, 16 + 6);
  expect_error(buf, 16 + 6, SMPP_ESME_RINVPARLEN, 16);
  /* The password runs to the end. */
  put32(buf, 16 + 7 + 3);
  expect_error(buf, 16 + 7 + 3, SMPP_ESME_RINVPARLEN, 23);
  /* address_range is missing altogether. */
  put32(buf, (uint32_t)len - 1);
  expect_error(buf, len - 1, SMPP_ESME_RINVPARLEN, len - 1);
  /* interface_version is missing. */
  put32(buf, 16 + 7 + 7 + 1);
  expect_error(buf, 16 + 7 + 7 + 1, SMPP_ESME_RINVCMDLEN, 31);
}

KK_TEST(smpp_codec_overlong_system_id) {
  uint8_t buf[64] = {0};
  /* 15 characters and the NUL fit; 16 characters do not. */
  for (int k = 15; k <= 16; k++) {
    size_t len = 16 + (size_t)k + 1 + 1 + 1 + 3 + 1;
    memset(buf, 0, sizeof buf);
    put32(buf, (uint32_t)len);
    put32(buf + 4, SMPP_BIND_TRANSMITTER);
    put32(buf + 12, 1);
    memset(buf + 16, 'a', (size_t)k);
    if (k == 15) {
      struct smpp_pdu pdu;
      ASSERT_EQ(smpp_decode(buf, len, &pdu, NULL), 0);
      ASSERT_EQ(pdu.body.bind.system_id.len, 15);
    } else {
      expect_error(buf, len, SMPP_ESME_RINVPARLEN, 16);
    }
  }
}

KK_TEST(smpp_codec_bad_times) {
  uint8_t buf[256];
  size_t len = load_hex("submit_sm_validity", buf, sizeof buf);
  /* Shorten validity_period to 15 characters: "00000001000000R". */
  size_t at = 16 + 1 + 14 + 14 + 3 + 1;  /* the validity_period */
  ASSERT_EQ(buf[at + 15], 'R');
  memmove(buf + at + 14, buf + at + 15, len - at - 15);
  put32(buf, (uint32_t)len - 1);
  expect_error(buf, len - 1, SMPP_ESME_RINVEXPIRY, at);

  /* A schedule_delivery_time of two characters. */
  len = load_hex("submit_sm_gsm7_alpha", buf, sizeof buf);
  at = 16 + 1 + 9 + 14 + 3;
  ASSERT_EQ(buf[at], 0);
  memmove(buf + at + 2, buf + at, len - at);
  buf[at] = '1';
  buf[at + 1] = 'R';
  put32(buf, (uint32_t)len + 2);
  expect_error(buf, len + 2, SMPP_ESME_RINVSCHED, at);
}

KK_TEST(smpp_codec_sm_length) {
  uint8_t buf[512];
  size_t len = load_hex("submit_sm_gsm7_alpha", buf, sizeof buf);
  size_t at = len - 12;  /* sm_length */
  ASSERT_EQ(buf[at], 11);
  buf[at] = 12;  /* one octet past the end */
  expect_error(buf, len, SMPP_ESME_RINVMSGLEN, at);
  buf[at] = 0xFF;  /* above the maximum of 254 */
  memset(buf + len, 'x', 255 - 11);
  put32(buf, (uint32_t)(len + 255 - 11));
  expect_error(buf, len + 255 - 11, SMPP_ESME_RINVMSGLEN, at);
  /* 254 octets are allowed. */
  buf[at] = 254;
  put32(buf, (uint32_t)(len + 254 - 11));
  struct smpp_pdu pdu;
  ASSERT_EQ(smpp_decode(buf, len + 254 - 11, &pdu, NULL), 0);
  ASSERT_EQ(pdu.body.sm.short_message.len, 254);
  /* The PDU ends before sm_length. */
  put32(buf, (uint32_t)at);
  expect_error(buf, at, SMPP_ESME_RINVCMDLEN, at);
}

KK_TEST(smpp_codec_broken_tlv) {
  uint8_t buf[256];
  size_t len = load_hex("deliver_sm_receipt_tlv", buf, sizeof buf);
  size_t last = len - 7;  /* network_error_code */
  /* Its length runs past the end. */
  buf[last + 3] = 4;
  expect_error(buf, len, SMPP_ESME_RINVOPTPARSTREAM, last);
  /* Only part of a TLV header. */
  buf[last + 3] = 3;
  put32(buf, (uint32_t)last + 3);
  expect_error(buf, last + 3, SMPP_ESME_RINVOPTPARSTREAM, last);
  /* The value is cut short. */
  put32(buf, (uint32_t)len - 1);
  expect_error(buf, len - 1, SMPP_ESME_RINVOPTPARSTREAM, last);
  /* message_state must be one octet. */
  len = load_hex("deliver_sm_receipt_tlv", buf, sizeof buf);
  memcpy(buf + last, "\x04\x27\x00\x02\x02\x00", 6);
  put32(buf, (uint32_t)last + 6);
  expect_error(buf, last + 6, SMPP_ESME_RINVPARLEN, last);
  /* An unknown tag of any length is kept. */
  memcpy(buf + last, "\x14\x01\x00\x02\xab\xcd", 6);
  struct smpp_pdu pdu;
  ASSERT_EQ(smpp_decode(buf, last + 6, &pdu, NULL), 0);
  ASSERT_EQ(pdu.ntlv, 3);
  ASSERT_EQ(pdu.tlv[2].tag, 0x1401);
  ASSERT_EQ(pdu.tlv[2].val.len, 2);
  ASSERT(smpp_tlv_find(&pdu, SMPP_TLV_NETWORK_ERROR_CODE) == NULL);
}

KK_TEST(smpp_codec_too_many_tlvs) {
  uint8_t buf[512];
  size_t base = load_hex("submit_sm_gsm7_alpha", buf, sizeof buf);
  size_t len = base;
  struct smpp_pdu pdu;
  for (int i = 0; i < SMPP_MAX_TLVS + 1; i++) {
    memcpy(buf + len, "\x14\x00\x00\x01", 4);
    buf[len + 4] = (uint8_t)i;
    len += 5;
  }
  put32(buf, (uint32_t)len);
  expect_error(buf, len, SMPP_ESME_RINVOPTPARSTREAM, len - 5);
  put32(buf, (uint32_t)len - 5);
  ASSERT_EQ(smpp_decode(buf, len - 5, &pdu, NULL), 0);
  ASSERT_EQ(pdu.ntlv, SMPP_MAX_TLVS);
  ASSERT_EQ(pdu.tlv[SMPP_MAX_TLVS - 1].val.p[0], SMPP_MAX_TLVS - 1);

  uint8_t out[512];
  size_t n = 0;
  ASSERT_EQ(smpp_encode(&pdu, out, sizeof out, &n), 0);
  ASSERT_EQ(n, len - 5);
  ASSERT_MEM_EQ(out, buf, n);
  ASSERT_EQ(smpp_tlv_add(&pdu, 0x1400, "x", 1), KK_ENOSPC);
  pdu.ntlv = SMPP_MAX_TLVS + 1;
  ASSERT_EQ(smpp_encode(&pdu, out, sizeof out, &n), KK_EINVAL);
}

/* Every cut of every golden PDU is refused or decoded without a stray read. */
KK_TEST(smpp_codec_truncation_sweep) {
  static const char *const names[] = {
      "bind_transceiver", "bind_transceiver_resp", "submit_sm_gsm7_alpha",
      "submit_sm_ucs2_udh", "submit_sm_validity", "submit_sm_resp",
      "deliver_sm_receipt_tlv", "deliver_sm_receipt_text", "deliver_sm_mo"};
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
    uint8_t buf[256];
    size_t len = load_hex(names[i], buf, sizeof buf);
    for (size_t k = 16; k < len; k++) {
      uint8_t *cut = malloc(k);  /* exact size, so ASan sees overreads */
      memcpy(cut, buf, k);
      put32(cut, (uint32_t)k);
      struct smpp_pdu pdu;
      struct smpp_err err;
      int rc = smpp_decode(cut, k, &pdu, &err);
      /* A cut between TLVs still decodes, and must then round-trip. */
      if (rc == 0) {
        uint8_t out[256];
        size_t n = 0;
        ASSERT_EQ(smpp_encode(&pdu, out, sizeof out, &n), 0);
        ASSERT_EQ(n, k);
        ASSERT_MEM_EQ(out, cut, k);
      } else {
        ASSERT(err.offset <= k);
      }
      free(cut);
    }
  }
}

KK_TEST(smpp_codec_encode_overlong) {
  struct smpp_pdu pdu;
  uint8_t out[512];
  size_t n = 0;

  memset(&pdu, 0, sizeof pdu);
  pdu.command_id = SMPP_BIND_TRANSCEIVER;
  pdu.body.bind.system_id = smpp_cstr("0123456789abcde");  /* 15: fits */
  ASSERT_EQ(smpp_encode(&pdu, out, sizeof out, &n), 0);
  pdu.body.bind.system_id = smpp_cstr("0123456789abcdef");  /* 16: too long */
  ASSERT_EQ(smpp_encode(&pdu, out, sizeof out, &n), KK_EINVAL);
  pdu.body.bind.system_id = smpp_cstr("kaskad");
  pdu.body.bind.password = smpp_cstr("123456789");
  ASSERT_EQ(smpp_encode(&pdu, out, sizeof out, &n), KK_EINVAL);

  make_submit(&pdu);
  pdu.body.sm.source_addr = smpp_cstr("123456789012345678901");  /* 21 */
  ASSERT_EQ(smpp_encode(&pdu, out, sizeof out, &n), KK_EINVAL);
  make_submit(&pdu);
  static uint8_t text[255];
  memset(text, 'x', sizeof text);
  pdu.body.sm.short_message.p = text;
  pdu.body.sm.short_message.len = 255;
  ASSERT_EQ(smpp_encode(&pdu, out, sizeof out, &n), KK_EINVAL);
  pdu.body.sm.short_message.len = 254;
  ASSERT_EQ(smpp_encode(&pdu, out, sizeof out, &n), 0);

  /* Times are empty or 16 characters; strings may not hold a NUL. */
  make_submit(&pdu);
  pdu.body.sm.validity_period = smpp_cstr("00000001000000R");
  ASSERT_EQ(smpp_encode(&pdu, out, sizeof out, &n), KK_EINVAL);
  make_submit(&pdu);
  pdu.body.sm.source_addr.len = 7;  /* takes in the NUL of "KASKAD" */
  ASSERT_EQ(smpp_encode(&pdu, out, sizeof out, &n), KK_EINVAL);

  /* TLVs: known lengths, and none on a PDU that takes none. */
  make_submit(&pdu);
  ASSERT_EQ(smpp_tlv_add(&pdu, SMPP_TLV_MESSAGE_STATE, "\x02\x00", 2), 0);
  ASSERT_EQ(smpp_encode(&pdu, out, sizeof out, &n), KK_EINVAL);
  memset(&pdu, 0, sizeof pdu);
  pdu.command_id = SMPP_ENQUIRE_LINK;
  ASSERT_EQ(smpp_tlv_add(&pdu, 0x1400, "x", 1), 0);
  ASSERT_EQ(smpp_encode(&pdu, out, sizeof out, &n), KK_EINVAL);

  /* An unknown command. */
  memset(&pdu, 0, sizeof pdu);
  pdu.command_id = 0x00000103;
  ASSERT_EQ(smpp_encode(&pdu, out, sizeof out, &n), KK_EINVAL);
}

KK_TEST(smpp_codec_encode_small_buffer) {
  struct smpp_pdu pdu;
  uint8_t out[128];
  size_t n = 0, need = 0;
  make_submit(&pdu);
  ASSERT_EQ(smpp_tlv_add(&pdu, SMPP_TLV_MESSAGE_STATE, "\x02", 1), 0);
  ASSERT_EQ(smpp_encode(&pdu, out, sizeof out, &need), 0);
  ASSERT_EQ(need, 61 + 5);
  for (size_t cap = 0; cap < need; cap++) {
    uint8_t *small = malloc(cap ? cap : 1);
    ASSERT_EQ(smpp_encode(&pdu, small, cap, &n), KK_ENOSPC);
    free(small);
  }
}

KK_TEST(smpp_codec_tlv_helpers) {
  struct smpp_pdu pdu;
  memset(&pdu, 0, sizeof pdu);
  ASSERT(smpp_tlv_find(&pdu, SMPP_TLV_MESSAGE_STATE) == NULL);
  for (int i = 0; i < SMPP_MAX_TLVS; i++)
    ASSERT_EQ(smpp_tlv_add(&pdu, (uint16_t)(0x1400 + i), "ab", 2), 0);
  ASSERT_EQ(smpp_tlv_add(&pdu, 0x1500, "ab", 2), KK_ENOSPC);
  ASSERT_EQ(pdu.ntlv, SMPP_MAX_TLVS);
  const struct smpp_tlv *t = smpp_tlv_find(&pdu, 0x1403);
  ASSERT(t == &pdu.tlv[3]);
  struct smpp_str s = smpp_cstr(NULL);
  ASSERT(s.p == NULL && s.len == 0);
  s = smpp_cstr("abc");
  ASSERT_VIEW_EQ(s.p, s.len, "abc");
}

KK_TEST(smpp_codec_names) {
  ASSERT_STR_EQ(smpp_cmd_name(SMPP_SUBMIT_SM), "submit_sm");
  ASSERT_STR_EQ(smpp_cmd_name(SMPP_BIND_TRANSCEIVER_RESP), "bind_transceiver_resp");
  ASSERT_STR_EQ(smpp_cmd_name(SMPP_GENERIC_NACK), "generic_nack");
  ASSERT_STR_EQ(smpp_cmd_name(SMPP_ENQUIRE_LINK_RESP), "enquire_link_resp");
  ASSERT_STR_EQ(smpp_cmd_name(0x12345678), "unknown");
  ASSERT_STR_EQ(smpp_status_name(SMPP_ESME_ROK), "ESME_ROK");
  ASSERT_STR_EQ(smpp_status_name(SMPP_ESME_RTHROTTLED), "ESME_RTHROTTLED");
  ASSERT_STR_EQ(smpp_status_name(SMPP_ESME_RINVOPTPARSTREAM), "ESME_RINVOPTPARSTREAM");
  ASSERT_STR_EQ(smpp_status_name(0x400), "unknown");
}

KK_TEST(smpp_codec_dump) {
  struct smpp_pdu pdu;
  static uint8_t ud[140];
  char line[256];
  make_submit(&pdu);
  pdu.body.sm.esm_class = SMPP_ESM_UDHI;
  pdu.body.sm.data_coding = 0x08;
  pdu.body.sm.short_message.p = ud;
  pdu.body.sm.short_message.len = sizeof ud;
  ASSERT_EQ(smpp_tlv_add(&pdu, SMPP_TLV_MESSAGE_PAYLOAD, "abcdefghijkl", 12), 0);
  size_t n = smpp_dump(&pdu, line, sizeof line);
  ASSERT_STR_EQ(line, "submit_sm seq=7 src=5/0/\"KASKAD\" dst=1/1/\"79161234567\" "
                      "esm=0x40 dc=0x08 sm_len=140 tlv=[0x0424:12]");
  ASSERT_EQ(n, strlen(line));

  /* Truncation keeps the NUL. */
  n = smpp_dump(&pdu, line, 10);
  ASSERT_EQ(n, 9);
  ASSERT_STR_EQ(line, "submit_sm");
  ASSERT_EQ(smpp_dump(&pdu, line, 0), 0);

  /* Header-only and error PDUs; odd bytes are escaped. */
  memset(&pdu, 0, sizeof pdu);
  pdu.command_id = SMPP_SUBMIT_SM_RESP;
  pdu.command_status = SMPP_ESME_RTHROTTLED;
  pdu.sequence_number = 3;
  smpp_dump(&pdu, line, sizeof line);
  ASSERT_STR_EQ(line, "submit_sm_resp seq=3 status=ESME_RTHROTTLED");
  pdu.command_status = 0;
  pdu.body.message_id = smpp_cstr("a\"b\n");
  smpp_dump(&pdu, line, sizeof line);
  ASSERT_STR_EQ(line, "submit_sm_resp seq=3 id=\"a\\x22b\\x0a\"");
  memset(&pdu, 0, sizeof pdu);
  pdu.command_id = 0x103;
  pdu.command_status = 0x999;
  smpp_dump(&pdu, line, sizeof line);
  ASSERT_STR_EQ(line, "unknown(0x00000103) seq=0 status=0x00000999");

  /* A bind never shows its password. */
  uint8_t buf[64];
  size_t len = load_hex("bind_transceiver", buf, sizeof buf);
  ASSERT_EQ(smpp_decode(buf, len, &pdu, NULL), 0);
  smpp_dump(&pdu, line, sizeof line);
  ASSERT_STR_EQ(line, "bind_transceiver seq=1 system_id=\"kaskad\" "
                      "system_type=\"\" version=0x34 range=0/0/\"\"");
}
