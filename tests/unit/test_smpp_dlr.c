/*
 * test_smpp_dlr.c - delivery receipts: the receipt text variants SMSCs send,
 * receipts read from deliver_sm PDUs (TLVs beat text), garbage, and the
 * decimal/hex message id conversion.
 */
#include <stdio.h>
#include <string.h>

#include "core/kk_err.h"
#include "kk_test.h"
#include "smpp/smpp_codec.h"
#include "smpp/smpp_dlr.h"

/* Parses a NUL-terminated receipt text. */
static int parse(const char *s, struct smpp_dlr *d) {
  return smpp_dlr_parse_text((const uint8_t *)s, strlen(s), d);
}

/* A deliver_sm receipt with the given text and no TLVs. */
static void make_receipt(struct smpp_pdu *pdu, const char *text) {
  memset(pdu, 0, sizeof *pdu);
  pdu->command_id = SMPP_DELIVER_SM;
  pdu->sequence_number = 1;
  pdu->body.sm.source_addr = smpp_cstr("79161234567");
  pdu->body.sm.destination_addr = smpp_cstr("KASKAD");
  pdu->body.sm.esm_class = SMPP_ESM_DLR;
  pdu->body.sm.short_message = smpp_cstr(text);
}

KK_TEST(smpp_dlr_standard) {
  struct smpp_dlr d;
  ASSERT_EQ(parse("id:1a2b3c4d sub:001 dlvrd:001 submit date:2501011200 "
                  "done date:2501011201 stat:DELIVRD err:000 text:Hello world",
                  &d), 0);
  ASSERT_VIEW_EQ(d.id.p, d.id.len, "1a2b3c4d");
  ASSERT_EQ(d.sub, 1);
  ASSERT_EQ(d.dlvrd, 1);
  ASSERT_VIEW_EQ(d.submit_date.p, d.submit_date.len, "2501011200");
  ASSERT_VIEW_EQ(d.done_date.p, d.done_date.len, "2501011201");
  ASSERT_EQ(d.state, SMPP_STATE_DELIVERED);
  ASSERT_EQ(d.final, 1);
  ASSERT_EQ(d.err, 0);
  ASSERT_VIEW_EQ(d.text.p, d.text.len, "Hello world");
}

KK_TEST(smpp_dlr_capitalised_keys) {
  struct smpp_dlr d;
  ASSERT_EQ(parse("id:0123456789 sub:001 dlvrd:000 submit date:2501011200 "
                  "done date:2501011300 stat:UNDELIV err:034 Text:Privet",
                  &d), 0);
  ASSERT_VIEW_EQ(d.id.p, d.id.len, "0123456789");
  ASSERT_EQ(d.dlvrd, 0);
  ASSERT_EQ(d.state, SMPP_STATE_UNDELIVERABLE);
  ASSERT_EQ(d.err, 34);
  ASSERT_VIEW_EQ(d.text.p, d.text.len, "Privet");
  /* Every key, any case. */
  ASSERT_EQ(parse("ID:77 SUB:002 DLVRD:002 Submit Date:2501011200 "
                  "DONE DATE:2501011300 Stat:delivrd ERR:000 TEXT:x", &d), 0);
  ASSERT_VIEW_EQ(d.id.p, d.id.len, "77");
  ASSERT_EQ(d.sub, 2);
  ASSERT_EQ(d.dlvrd, 2);
  ASSERT_VIEW_EQ(d.submit_date.p, d.submit_date.len, "2501011200");
  ASSERT_VIEW_EQ(d.done_date.p, d.done_date.len, "2501011300");
  ASSERT_EQ(d.state, SMPP_STATE_DELIVERED);
  ASSERT_EQ(d.err, 0);
  ASSERT_VIEW_EQ(d.text.p, d.text.len, "x");
}

KK_TEST(smpp_dlr_twelve_digit_dates) {
  struct smpp_dlr d;
  ASSERT_EQ(parse("id:5 sub:001 dlvrd:001 submit date:250101120000 "
                  "done date:250101120105 stat:DELIVRD err:000 text:", &d), 0);
  ASSERT_VIEW_EQ(d.submit_date.p, d.submit_date.len, "250101120000");
  ASSERT_VIEW_EQ(d.done_date.p, d.done_date.len, "250101120105");
  ASSERT_EQ(d.text.len, 0);
  /* Other lengths are not dates. */
  ASSERT_EQ(parse("id:5 submit date:25010112 done date:2501011201a stat:DELIVRD",
                  &d), 0);
  ASSERT_EQ(d.submit_date.len, 0);
  ASSERT_EQ(d.done_date.len, 0);
}

KK_TEST(smpp_dlr_reordered) {
  struct smpp_dlr d;
  ASSERT_EQ(parse("stat:EXPIRED err:012 done date:2501021200 id:abc-42 "
                  "sub:001 submit date:2501011200 dlvrd:000 text:late", &d), 0);
  ASSERT_VIEW_EQ(d.id.p, d.id.len, "abc-42");
  ASSERT_EQ(d.state, SMPP_STATE_EXPIRED);
  ASSERT_EQ(d.final, 1);
  ASSERT_EQ(d.err, 12);
  ASSERT_EQ(d.sub, 1);
  ASSERT_EQ(d.dlvrd, 0);
  ASSERT_VIEW_EQ(d.submit_date.p, d.submit_date.len, "2501011200");
  ASSERT_VIEW_EQ(d.done_date.p, d.done_date.len, "2501021200");
  ASSERT_VIEW_EQ(d.text.p, d.text.len, "late");
  /* A repeated key keeps its first value. */
  ASSERT_EQ(parse("id:1 stat:ENROUTE id:2 stat:DELIVRD", &d), 0);
  ASSERT_VIEW_EQ(d.id.p, d.id.len, "1");
  ASSERT_EQ(d.state, SMPP_STATE_ENROUTE);
  ASSERT_EQ(d.final, 0);
}

KK_TEST(smpp_dlr_missing_fields) {
  struct smpp_dlr d;
  ASSERT_EQ(parse("id:42 submit date:2501011200 done date:2501011201 stat:REJECTD",
                  &d), 0);
  ASSERT_VIEW_EQ(d.id.p, d.id.len, "42");
  ASSERT_EQ(d.state, SMPP_STATE_REJECTED);
  ASSERT_EQ(d.sub, -1);
  ASSERT_EQ(d.dlvrd, -1);
  ASSERT_EQ(d.err, -1);
  ASSERT_EQ(d.text.len, 0);
  /* No dates either; empty values are absent. */
  ASSERT_EQ(parse("id:42 sub: dlvrd: stat:DELETED err:", &d), 0);
  ASSERT_EQ(d.state, SMPP_STATE_DELETED);
  ASSERT_EQ(d.sub, -1);
  ASSERT_EQ(d.dlvrd, -1);
  ASSERT_EQ(d.err, -1);
  ASSERT_EQ(d.submit_date.len, 0);
  ASSERT_EQ(d.done_date.len, 0);
}

KK_TEST(smpp_dlr_hex_and_decimal_ids) {
  struct smpp_dlr d;
  char alt[32];
  /* An SMSC that answered submit_sm_resp "169552957" sends the id in hex. */
  ASSERT_EQ(parse("id:0A1B2C3D sub:001 dlvrd:001 stat:DELIVRD err:000", &d), 0);
  ASSERT_VIEW_EQ(d.id.p, d.id.len, "0A1B2C3D");
  ASSERT_EQ(smpp_msgid_alt(d.id, alt, sizeof alt), 0);
  ASSERT_STR_EQ(alt, "169552957");
  /* And the other way round. */
  ASSERT_EQ(parse("id:169552957 stat:DELIVRD", &d), 0);
  ASSERT_VIEW_EQ(d.id.p, d.id.len, "169552957");
  ASSERT_EQ(smpp_msgid_alt(d.id, alt, sizeof alt), 0);
  ASSERT_STR_EQ(alt, "a1b2c3d");
  /* A UUID-like id has no alternative. */
  ASSERT_EQ(parse("id:6f1c-44aa stat:DELIVRD", &d), 0);
  ASSERT_EQ(smpp_msgid_alt(d.id, alt, sizeof alt), KK_EINVAL);
}

KK_TEST(smpp_dlr_text_with_spaces_and_colons) {
  struct smpp_dlr d;
  ASSERT_EQ(parse("id:9 sub:001 dlvrd:001 submit date:2501011200 "
                  "done date:2501011201 stat:DELIVRD err:000 "
                  "text:Code: 1234, valid till 12:30 id:fake stat:UNDELIV", &d), 0);
  ASSERT_VIEW_EQ(d.text.p, d.text.len,
                 "Code: 1234, valid till 12:30 id:fake stat:UNDELIV");
  ASSERT_VIEW_EQ(d.id.p, d.id.len, "9");
  ASSERT_EQ(d.state, SMPP_STATE_DELIVERED);
}

KK_TEST(smpp_dlr_state_names) {
  static const struct {
    const char *stat;
    enum smpp_msg_state state;
    int final;
  } cases[] = {
    {"DELIVRD", SMPP_STATE_DELIVERED, 1},   {"EXPIRED", SMPP_STATE_EXPIRED, 1},
    {"DELETED", SMPP_STATE_DELETED, 1},     {"UNDELIV", SMPP_STATE_UNDELIVERABLE, 1},
    {"ACCEPTD", SMPP_STATE_ACCEPTED, 0},    {"UNKNOWN", SMPP_STATE_UNKNOWN, 1},
    {"REJECTD", SMPP_STATE_REJECTED, 1},    {"ENROUTE", SMPP_STATE_ENROUTE, 0},
    {"DELIVERED", SMPP_STATE_DELIVERED, 1}, {"Undeliverable", SMPP_STATE_UNDELIVERABLE, 1},
    {"REJECTED", SMPP_STATE_REJECTED, 1},   {"enroute", SMPP_STATE_ENROUTE, 0},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    char text[64];
    struct smpp_dlr d;
    snprintf(text, sizeof text, "id:1 stat:%s err:000", cases[i].stat);
    ASSERT_EQ(parse(text, &d), 0);
    ASSERT_EQ(d.state, cases[i].state);
    ASSERT_EQ(d.final, cases[i].final);
  }
  ASSERT_STR_EQ(smpp_state_name(SMPP_STATE_DELIVERED), "DELIVRD");
  ASSERT_STR_EQ(smpp_state_name(SMPP_STATE_UNDELIVERABLE), "UNDELIV");
  ASSERT_STR_EQ(smpp_state_name(SMPP_STATE_ENROUTE), "ENROUTE");
  ASSERT_STR_EQ(smpp_state_name(SMPP_STATE_REJECTED), "REJECTD");
}

KK_TEST(smpp_dlr_garbage) {
  struct smpp_dlr d;
  ASSERT_EQ(parse("", &d), KK_EPROTO);
  ASSERT_EQ(parse("Hello, how are you?", &d), KK_EPROTO);
  ASSERT_EQ(parse("id:123 sub:001 dlvrd:001", &d), KK_EPROTO);      /* no stat */
  ASSERT_EQ(parse("sub:001 stat:DELIVRD err:000", &d), KK_EPROTO);  /* no id */
  ASSERT_EQ(parse("id: stat:DELIVRD", &d), KK_EPROTO);              /* empty id */
  ASSERT_EQ(parse("id:1 stat:DELIVR", &d), KK_EPROTO);
  ASSERT_EQ(parse("id:1 stat:DELIVRDX", &d), KK_EPROTO);
  ASSERT_EQ(parse("xid:1 xstat:DELIVRD", &d), KK_EPROTO);
  ASSERT_EQ(parse("text:id:1 stat:DELIVRD", &d), KK_EPROTO);  /* all text */
  ASSERT_EQ(smpp_dlr_parse_text(NULL, 0, &d), KK_EPROTO);
  /* A NUL counted into the text by the SMSC is dropped. */
  ASSERT_EQ(smpp_dlr_parse_text((const uint8_t *)"id:1 stat:DELIVRD text:a\0", 25, &d), 0);
  ASSERT_VIEW_EQ(d.text.p, d.text.len, "a");
}

KK_TEST(smpp_dlr_from_pdu_text_only) {
  struct smpp_pdu pdu;
  struct smpp_dlr d;
  make_receipt(&pdu, "id:1234567890 sub:001 dlvrd:000 submit date:2501011200 "
                     "done date:2501011300 stat:UNDELIV err:001 text:Hello world");
  ASSERT_EQ(smpp_dlr_from_pdu(&pdu, &d), 0);
  ASSERT_VIEW_EQ(d.id.p, d.id.len, "1234567890");
  ASSERT_EQ(d.state, SMPP_STATE_UNDELIVERABLE);
  ASSERT_EQ(d.err, 1);
  ASSERT_VIEW_EQ(d.text.p, d.text.len, "Hello world");
}

KK_TEST(smpp_dlr_from_pdu_tlv_only) {
  struct smpp_pdu pdu;
  struct smpp_dlr d;
  make_receipt(&pdu, "");
  ASSERT_EQ(smpp_dlr_from_pdu(&pdu, &d), KK_EPROTO);
  ASSERT_EQ(smpp_tlv_add(&pdu, SMPP_TLV_RECEIPTED_MESSAGE_ID, "1a2b3c4d", 9), 0);
  ASSERT_EQ(smpp_dlr_from_pdu(&pdu, &d), KK_EPROTO);  /* still no state */
  ASSERT_EQ(smpp_tlv_add(&pdu, SMPP_TLV_MESSAGE_STATE, "\x05", 1), 0);
  ASSERT_EQ(smpp_tlv_add(&pdu, SMPP_TLV_NETWORK_ERROR_CODE, "\x03\x01\x0b", 3), 0);
  ASSERT_EQ(smpp_dlr_from_pdu(&pdu, &d), 0);
  ASSERT_VIEW_EQ(d.id.p, d.id.len, "1a2b3c4d");  /* the NUL is stripped */
  ASSERT_EQ(d.state, SMPP_STATE_UNDELIVERABLE);
  ASSERT_EQ(d.final, 1);
  ASSERT_EQ(d.err, 0x010b);
  ASSERT_EQ(d.sub, -1);
  ASSERT_EQ(d.dlvrd, -1);
  ASSERT_EQ(d.submit_date.len, 0);
  ASSERT_EQ(d.text.len, 0);
}

KK_TEST(smpp_dlr_tlv_beats_text) {
  struct smpp_pdu pdu;
  struct smpp_dlr d;
  make_receipt(&pdu, "id:1234567890 sub:001 dlvrd:000 submit date:2501011200 "
                     "done date:2501011300 stat:UNDELIV err:001 text:Hello");
  ASSERT_EQ(smpp_tlv_add(&pdu, SMPP_TLV_RECEIPTED_MESSAGE_ID, "499602D2", 8), 0);
  ASSERT_EQ(smpp_tlv_add(&pdu, SMPP_TLV_MESSAGE_STATE, "\x02", 1), 0);
  ASSERT_EQ(smpp_tlv_add(&pdu, SMPP_TLV_NETWORK_ERROR_CODE, "\x03\x00\x05", 3), 0);
  ASSERT_EQ(smpp_dlr_from_pdu(&pdu, &d), 0);
  ASSERT_VIEW_EQ(d.id.p, d.id.len, "499602D2");  /* no NUL to strip here */
  ASSERT_EQ(d.state, SMPP_STATE_DELIVERED);
  ASSERT_EQ(d.err, 5);
  /* What the TLVs do not give still comes from the text. */
  ASSERT_EQ(d.sub, 1);
  ASSERT_VIEW_EQ(d.done_date.p, d.done_date.len, "2501011300");
  ASSERT_VIEW_EQ(d.text.p, d.text.len, "Hello");

  /* A message_state out of range is ignored in favour of the text. */
  pdu.tlv[1].val.p = (const uint8_t *)"\x09";
  ASSERT_EQ(smpp_dlr_from_pdu(&pdu, &d), 0);
  ASSERT_EQ(d.state, SMPP_STATE_UNDELIVERABLE);
}

KK_TEST(smpp_dlr_from_pdu_payload_and_type) {
  struct smpp_pdu pdu;
  struct smpp_dlr d;
  static const char text[] = "id:77 stat:ENROUTE err:000";
  make_receipt(&pdu, "");
  ASSERT_EQ(smpp_tlv_add(&pdu, SMPP_TLV_MESSAGE_PAYLOAD, text, strlen(text)), 0);
  ASSERT_EQ(smpp_dlr_from_pdu(&pdu, &d), 0);
  ASSERT_VIEW_EQ(d.id.p, d.id.len, "77");
  ASSERT_EQ(d.state, SMPP_STATE_ENROUTE);
  ASSERT_EQ(d.final, 0);

  /* An ordinary MO message is not a receipt, nor is a submit_sm. */
  make_receipt(&pdu, "id:1 stat:DELIVRD");
  pdu.body.sm.esm_class = 0;
  ASSERT_EQ(smpp_dlr_from_pdu(&pdu, &d), KK_EINVAL);
  pdu.body.sm.esm_class = SMPP_ESM_DLR | SMPP_ESM_UDHI;
  ASSERT_EQ(smpp_dlr_from_pdu(&pdu, &d), 0);
  pdu.command_id = SMPP_SUBMIT_SM;
  ASSERT_EQ(smpp_dlr_from_pdu(&pdu, &d), KK_EINVAL);
}

/* A receipt PDU decoded by the codec gives its receipt, id from the TLV. */
KK_TEST(smpp_dlr_from_decoded_pdu) {
  static const uint8_t head[] = {
      0, 0, 0, 0, 0, 0, 0, 5, 0, 0, 0, 0, 0, 0, 0, 9,  /* deliver_sm seq 9 */
      0, 1, 1, '7', '9', '1', '6', '1', '2', '3', '4', '5', '6', '7', 0,
      5, 0, 'K', 'A', 'S', 'K', 'A', 'D', 0,
      0x04, 0, 0, 0, 0, 0, 0, 0, 0};
  static const char text[] = "id:1a2b3c4d sub:001 dlvrd:001 stat:DELIVRD Text:Hi";
  static const uint8_t tlvs[] = {0x00, 0x1e, 0x00, 0x09, '1', 'a', '2', 'b',
                                 '3', 'c', '4', 'd', 0, 0x04, 0x27, 0x00,
                                 0x01, 0x02};
  uint8_t buf[256];
  size_t n = 0;
  memcpy(buf, head, sizeof head);
  n = sizeof head;
  buf[n++] = (uint8_t)strlen(text);
  memcpy(buf + n, text, strlen(text));
  n += strlen(text);
  memcpy(buf + n, tlvs, sizeof tlvs);
  n += sizeof tlvs;
  buf[3] = (uint8_t)n;

  struct smpp_pdu pdu;
  struct smpp_err err;
  struct smpp_dlr d;
  ASSERT_EQ(smpp_decode(buf, n, &pdu, &err), 0);
  ASSERT_EQ(smpp_dlr_from_pdu(&pdu, &d), 0);
  ASSERT_VIEW_EQ(d.id.p, d.id.len, "1a2b3c4d");
  ASSERT(d.id.p == pdu.tlv[0].val.p);
  ASSERT_EQ(d.state, SMPP_STATE_DELIVERED);
  ASSERT_EQ(d.err, -1);
  ASSERT_VIEW_EQ(d.text.p, d.text.len, "Hi");
}

KK_TEST(smpp_dlr_msgid_alt) {
  char out[32];
  ASSERT_EQ(smpp_msgid_alt(smpp_cstr("12345"), out, sizeof out), 0);
  ASSERT_STR_EQ(out, "3039");
  ASSERT_EQ(smpp_msgid_alt(smpp_cstr("0"), out, sizeof out), 0);
  ASSERT_STR_EQ(out, "0");
  ASSERT_EQ(smpp_msgid_alt(smpp_cstr("ff"), out, sizeof out), 0);
  ASSERT_STR_EQ(out, "255");
  ASSERT_EQ(smpp_msgid_alt(smpp_cstr("499602D2"), out, sizeof out), 0);
  ASSERT_STR_EQ(out, "1234567890");
  ASSERT_EQ(smpp_msgid_alt(smpp_cstr("18446744073709551615"), out, sizeof out), 0);
  ASSERT_STR_EQ(out, "ffffffffffffffff");
  ASSERT_EQ(smpp_msgid_alt(smpp_cstr("ffffffffffffffff"), out, sizeof out), 0);
  ASSERT_STR_EQ(out, "18446744073709551615");
  /* Past 64 bits in both bases: 2^64 in decimal is a 20-digit hex number. */
  ASSERT_EQ(smpp_msgid_alt(smpp_cstr("18446744073709551616"), out, sizeof out),
            KK_EINVAL);
  ASSERT_EQ(smpp_msgid_alt(smpp_cstr("1ffffffffffffffff"), out, sizeof out),
            KK_EINVAL);
  ASSERT_EQ(smpp_msgid_alt(smpp_cstr(""), out, sizeof out), KK_EINVAL);
  ASSERT_EQ(smpp_msgid_alt(smpp_cstr("0x1f"), out, sizeof out), KK_EINVAL);
  ASSERT_EQ(smpp_msgid_alt(smpp_cstr("abc-1"), out, sizeof out), KK_EINVAL);
  ASSERT_EQ(smpp_msgid_alt(smpp_cstr(" 12"), out, sizeof out), KK_EINVAL);
  /* The id is a view: only its len bytes count. */
  struct smpp_str part = {(const uint8_t *)"255xyz", 3};
  ASSERT_EQ(smpp_msgid_alt(part, out, sizeof out), 0);
  ASSERT_STR_EQ(out, "ff");
  /* Too small a buffer. */
  ASSERT_EQ(smpp_msgid_alt(smpp_cstr("1234567890"), out, 8), KK_ENOSPC);
  ASSERT_EQ(smpp_msgid_alt(smpp_cstr("1234567890"), out, 9), 0);
  ASSERT_STR_EQ(out, "499602d2");
}
