/*
 * fuzz_smpp.c - fuzz target for the SMPP codec. Frames and decodes the input;
 * a PDU that decodes must re-encode to the same bytes and decode again to the
 * same fields. The dump runs on every decode, good or bad.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "smpp/smpp_codec.h"

static void check(int ok) {
  if (!ok) __builtin_trap();
}

static int same_str(const struct smpp_str *a, const struct smpp_str *b) {
  if ((a->p == NULL) != (b->p == NULL) || a->len != b->len) return 0;
  return a->len == 0 || memcmp(a->p, b->p, a->len) == 0;
}

static int same_bind(const struct smpp_bind *a, const struct smpp_bind *b) {
  return same_str(&a->system_id, &b->system_id) &&
         same_str(&a->password, &b->password) &&
         same_str(&a->system_type, &b->system_type) &&
         a->interface_version == b->interface_version &&
         a->addr_ton == b->addr_ton && a->addr_npi == b->addr_npi &&
         same_str(&a->address_range, &b->address_range);
}

static int same_sm(const struct smpp_sm *a, const struct smpp_sm *b) {
  return same_str(&a->service_type, &b->service_type) &&
         a->source_addr_ton == b->source_addr_ton &&
         a->source_addr_npi == b->source_addr_npi &&
         same_str(&a->source_addr, &b->source_addr) &&
         a->dest_addr_ton == b->dest_addr_ton &&
         a->dest_addr_npi == b->dest_addr_npi &&
         same_str(&a->destination_addr, &b->destination_addr) &&
         a->esm_class == b->esm_class && a->protocol_id == b->protocol_id &&
         a->priority_flag == b->priority_flag &&
         same_str(&a->schedule_delivery_time, &b->schedule_delivery_time) &&
         same_str(&a->validity_period, &b->validity_period) &&
         a->registered_delivery == b->registered_delivery &&
         a->replace_if_present_flag == b->replace_if_present_flag &&
         a->data_coding == b->data_coding &&
         a->sm_default_msg_id == b->sm_default_msg_id &&
         same_str(&a->short_message, &b->short_message);
}

static int same_body(const struct smpp_pdu *a, const struct smpp_pdu *b) {
  switch (a->command_id) {
  case SMPP_BIND_RECEIVER:
  case SMPP_BIND_TRANSMITTER:
  case SMPP_BIND_TRANSCEIVER:
    return same_bind(&a->body.bind, &b->body.bind);
  case SMPP_BIND_RECEIVER_RESP:
  case SMPP_BIND_TRANSMITTER_RESP:
  case SMPP_BIND_TRANSCEIVER_RESP:
    return same_str(&a->body.system_id, &b->body.system_id);
  case SMPP_SUBMIT_SM:
  case SMPP_DELIVER_SM:
    return same_sm(&a->body.sm, &b->body.sm);
  case SMPP_SUBMIT_SM_RESP:
  case SMPP_DELIVER_SM_RESP:
    return same_str(&a->body.message_id, &b->body.message_id);
  }
  return 1;
}

static int same_pdu(const struct smpp_pdu *a, const struct smpp_pdu *b) {
  if (a->command_length != b->command_length || a->command_id != b->command_id ||
      a->command_status != b->command_status ||
      a->sequence_number != b->sequence_number || a->ntlv != b->ntlv)
    return 0;
  for (int i = 0; i < a->ntlv; i++)
    if (a->tlv[i].tag != b->tlv[i].tag || !same_str(&a->tlv[i].val, &b->tlv[i].val))
      return 0;
  return same_body(a, b);
}

/* Decodes one whole PDU and, when it is valid, checks the round trip. */
static void round_trip(const uint8_t *data, size_t len) {
  struct smpp_pdu a, b;
  struct smpp_err err;
  char line[512];
  int rc = smpp_decode(data, len, &a, &err);
  check(smpp_dump(&a, line, sizeof line) < sizeof line);
  if (rc != 0) {
    check(err.status != 0 && err.offset <= len);
    return;
  }
  check(a.command_length == len);
  /* Exactly len bytes of room: the encoder may not want more. */
  uint8_t *out = malloc(len);
  size_t n = 0;
  check(out != NULL);
  check(smpp_encode(&a, out, len, &n) == 0);
  check(n == len && memcmp(out, data, len) == 0);
  check(smpp_decode(out, n, &b, &err) == 0);
  check(same_pdu(&a, &b));
  free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  size_t plen = 0;
  int framed = smpp_frame(data, size, &plen);
  if (framed == 0) {
    check(plen >= SMPP_HEADER_LEN && plen <= size && plen <= SMPP_MAX_PDU_LEN);
    round_trip(data, plen);
  }
  /* The whole input as one PDU: it decodes only if it frames as one. */
  struct smpp_pdu pdu;
  if (smpp_decode(data, size, &pdu, NULL) == 0) check(framed == 0 && plen == size);
  return 0;
}
