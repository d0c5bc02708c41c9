/*
 * smpp_dlr.h - SMSC delivery receipts (deliver_sm with esm_class & 0x04).
 *
 * Pure functions. The TLVs receipted_message_id / message_state /
 * network_error_code win over the receipt text when present. The text parser
 * tolerates the variants seen in the field (PROTOCOLS.md 1.3): "Text:" or
 * "text:", 10- or 12-digit dates, fields in any order, spaces inside the text
 * part, missing optional fields.
 */
#ifndef SMPP_DLR_H
#define SMPP_DLR_H

#include <stddef.h>

#include "smpp/smpp_codec.h"

/* Values match the SMPP message_state TLV. */
enum smpp_msg_state {
  SMPP_STATE_UNKNOWN_NONE = 0,  /* not given */
  SMPP_STATE_ENROUTE = 1,
  SMPP_STATE_DELIVERED = 2,
  SMPP_STATE_EXPIRED = 3,
  SMPP_STATE_DELETED = 4,
  SMPP_STATE_UNDELIVERABLE = 5,
  SMPP_STATE_ACCEPTED = 6,
  SMPP_STATE_UNKNOWN = 7,
  SMPP_STATE_REJECTED = 8,
};

struct smpp_dlr {
  struct smpp_str id;           /* the message id the SMSC gave in submit_sm_resp */
  enum smpp_msg_state state;
  int final;                    /* 1 unless ENROUTE / ACCEPTED */
  int err;                      /* err: field or network_error_code; -1 if absent */
  int sub, dlvrd;               /* -1 if absent */
  struct smpp_str submit_date;  /* 10 or 12 digits, empty if absent */
  struct smpp_str done_date;
  struct smpp_str text;         /* the rest after "text:", may be empty */
};

/*
 * Parses a receipt text ("id:... sub:... stat:DELIVRD ..."). Returns 0 or
 * KK_EPROTO when no id or no recognisable stat is present.
 */
int smpp_dlr_parse_text(const uint8_t *p, size_t len, struct smpp_dlr *out);

/*
 * Reads a receipt from a decoded deliver_sm: TLVs first, then the text
 * (short_message, or message_payload when short_message is empty). Returns 0,
 * KK_EINVAL when the PDU is not a receipt (esm_class type bits), or KK_EPROTO.
 */
int smpp_dlr_from_pdu(const struct smpp_pdu *pdu, struct smpp_dlr *out);

/* "DELIVRD", "UNDELIV", ... for a state. */
const char *smpp_state_name(enum smpp_msg_state s);

/*
 * SMSCs differ in whether receipts give the id in the same base as
 * submit_sm_resp. Writes the other representation of id into out: a decimal id
 * as lower-case hex, a hex id (digits and a-f/A-F) as decimal. Returns 0, or
 * KK_EINVAL when no alternative exists (not a number, or more than 64 bits).
 */
int smpp_msgid_alt(struct smpp_str id, char *out, size_t cap);

#endif
