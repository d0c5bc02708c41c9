/*
 * smpp_codec.h - SMPP 3.4 PDU framing, decoding and encoding.
 *
 * Pure functions: no I/O, no configuration, no globals, no allocation.
 * Decoded strings are (pointer, length) views into the caller's buffer and
 * are valid while that buffer is. Lengths exclude the terminating NUL;
 * the maximum lengths of SMPP 3.4 (which include the NUL) are enforced on
 * both decode and encode. The field list of every PDU is in smpp_pdu.def.
 */
#ifndef SMPP_CODEC_H
#define SMPP_CODEC_H

#include <stddef.h>
#include <stdint.h>

#define SMPP_HEADER_LEN 16
#define SMPP_MAX_PDU_LEN 70000   /* message_payload may hold up to 64 KiB */
#define SMPP_MAX_TLVS 16

/* command_id values */
#define SMPP_GENERIC_NACK          0x80000000u
#define SMPP_BIND_RECEIVER         0x00000001u
#define SMPP_BIND_TRANSMITTER      0x00000002u
#define SMPP_SUBMIT_SM             0x00000004u
#define SMPP_DELIVER_SM            0x00000005u
#define SMPP_UNBIND                0x00000006u
#define SMPP_BIND_TRANSCEIVER      0x00000009u
#define SMPP_ENQUIRE_LINK          0x00000015u
#define SMPP_RESP                  0x80000000u   /* response bit */
#define SMPP_BIND_RECEIVER_RESP    0x80000001u
#define SMPP_BIND_TRANSMITTER_RESP 0x80000002u
#define SMPP_SUBMIT_SM_RESP        0x80000004u
#define SMPP_DELIVER_SM_RESP       0x80000005u
#define SMPP_UNBIND_RESP           0x80000006u
#define SMPP_BIND_TRANSCEIVER_RESP 0x80000009u
#define SMPP_ENQUIRE_LINK_RESP     0x80000015u

/* command_status values used by kaskad (SMPP 3.4 section 5.1.3) */
#define SMPP_ESME_ROK              0x00000000u
#define SMPP_ESME_RINVMSGLEN       0x00000001u
#define SMPP_ESME_RINVCMDLEN       0x00000002u
#define SMPP_ESME_RINVCMDID        0x00000003u
#define SMPP_ESME_RINVBNDSTS       0x00000004u
#define SMPP_ESME_RALYBND          0x00000005u
#define SMPP_ESME_RSYSERR          0x00000008u
#define SMPP_ESME_RINVSRCADR       0x0000000Au
#define SMPP_ESME_RINVDSTADR       0x0000000Bu
#define SMPP_ESME_RBINDFAIL        0x0000000Du
#define SMPP_ESME_RINVPASWD        0x0000000Eu
#define SMPP_ESME_RINVSYSID        0x0000000Fu
#define SMPP_ESME_RMSGQFUL         0x00000014u
#define SMPP_ESME_RINVESMCLASS     0x00000043u
#define SMPP_ESME_RSUBMITFAIL      0x00000045u
#define SMPP_ESME_RINVSRCTON       0x00000048u
#define SMPP_ESME_RINVSRCNPI       0x00000049u
#define SMPP_ESME_RINVDSTTON       0x00000050u
#define SMPP_ESME_RINVDSTNPI       0x00000051u
#define SMPP_ESME_RTHROTTLED       0x00000058u
#define SMPP_ESME_RINVSCHED        0x00000061u
#define SMPP_ESME_RINVEXPIRY       0x00000062u
#define SMPP_ESME_RX_T_APPN        0x00000064u
#define SMPP_ESME_RX_P_APPN        0x00000065u
#define SMPP_ESME_RX_R_APPN        0x00000066u
#define SMPP_ESME_RINVOPTPARSTREAM 0x000000C0u
#define SMPP_ESME_ROPTPARNOTALLWD  0x000000C1u
#define SMPP_ESME_RINVPARLEN       0x000000C2u
#define SMPP_ESME_RMISSINGOPTPARAM 0x000000C3u
#define SMPP_ESME_RINVOPTPARAMVAL  0x000000C4u
#define SMPP_ESME_RDELIVERYFAILURE 0x000000FEu
#define SMPP_ESME_RUNKNOWNERR      0x000000FFu

/* TLV tags */
#define SMPP_TLV_RECEIPTED_MESSAGE_ID 0x001E
#define SMPP_TLV_SAR_MSG_REF_NUM      0x020C
#define SMPP_TLV_SAR_TOTAL_SEGMENTS   0x020E
#define SMPP_TLV_SAR_SEGMENT_SEQNUM   0x020F
#define SMPP_TLV_SC_INTERFACE_VERSION 0x0210
#define SMPP_TLV_NETWORK_ERROR_CODE   0x0423
#define SMPP_TLV_MESSAGE_PAYLOAD      0x0424
#define SMPP_TLV_MESSAGE_STATE        0x0427

/* esm_class bits */
#define SMPP_ESM_UDHI        0x40
#define SMPP_ESM_TYPE_MASK   0x3C
#define SMPP_ESM_DLR         0x04   /* SMSC delivery receipt (deliver_sm) */

/* A view of bytes inside a buffer owned by someone else. */
struct smpp_str {
  const uint8_t *p;
  size_t len;
};

struct smpp_tlv {
  uint16_t tag;
  struct smpp_str val;
};

/* bind_receiver, bind_transmitter, bind_transceiver */
struct smpp_bind {
  struct smpp_str system_id;      /* max 16 incl. NUL */
  struct smpp_str password;       /* max 9 */
  struct smpp_str system_type;    /* max 13 */
  uint8_t interface_version;
  uint8_t addr_ton;
  uint8_t addr_npi;
  struct smpp_str address_range;  /* max 41 */
};

/* submit_sm and deliver_sm (same body) */
struct smpp_sm {
  struct smpp_str service_type;           /* max 6 */
  uint8_t source_addr_ton;
  uint8_t source_addr_npi;
  struct smpp_str source_addr;            /* max 21 */
  uint8_t dest_addr_ton;
  uint8_t dest_addr_npi;
  struct smpp_str destination_addr;       /* max 21 */
  uint8_t esm_class;
  uint8_t protocol_id;
  uint8_t priority_flag;
  struct smpp_str schedule_delivery_time; /* empty or 16 chars (max 17) */
  struct smpp_str validity_period;        /* empty or 16 chars (max 17) */
  uint8_t registered_delivery;
  uint8_t replace_if_present_flag;
  uint8_t data_coding;
  uint8_t sm_default_msg_id;
  struct smpp_str short_message;          /* 0..254 octets; sm_length is its len */
};

struct smpp_pdu {
  uint32_t command_length;   /* filled by decode and by encode */
  uint32_t command_id;
  uint32_t command_status;
  uint32_t sequence_number;
  union {
    struct smpp_bind bind;          /* bind_* requests */
    struct smpp_str system_id;      /* bind_*_resp: system_id (max 16) */
    struct smpp_sm sm;              /* submit_sm, deliver_sm */
    struct smpp_str message_id;     /* submit_sm_resp, deliver_sm_resp (max 65) */
  } body;
  int ntlv;                         /* TLVs in wire order */
  struct smpp_tlv tlv[SMPP_MAX_TLVS];
};

/* Where and why a decode failed; status is the SMPP command_status to answer. */
struct smpp_err {
  uint32_t status;
  size_t offset;
};

/*
 * Looks at the start of a byte stream. Returns 0 with *pdu_len set when a whole
 * PDU is available, KK_EAGAIN when more bytes are needed (fewer than 16, or
 * fewer than command_length), KK_EPROTO when command_length is below 16 or
 * above SMPP_MAX_PDU_LEN (the stream cannot be resynchronised).
 */
int smpp_frame(const uint8_t *buf, size_t len, size_t *pdu_len);

/*
 * Decodes exactly one PDU (len must equal its command_length). Returns 0 or
 * KK_EPROTO with err filled in: ESME_RINVCMDLEN for a bad length,
 * ESME_RINVCMDID for an unknown command, ESME_RINVMSGLEN / ESME_RINVPARLEN for
 * over-long or unterminated fields, ESME_RINVOPTPARSTREAM for a broken TLV
 * area. The header fields of *pdu are filled whenever len >= 16, so the caller
 * can answer with the right sequence_number. Responses with a non-zero
 * command_status may have an empty body. Unknown TLV tags are kept in tlv[];
 * more than SMPP_MAX_TLVS TLVs is an error.
 */
int smpp_decode(const uint8_t *buf, size_t len, struct smpp_pdu *pdu,
                struct smpp_err *err);

/*
 * Encodes *pdu into out (cap bytes), writing command_length from the encoded
 * size; *n receives the size. The body used is chosen by command_id; TLVs are
 * written from tlv[0..ntlv) in order. Returns 0, KK_ENOSPC (cap too small) or
 * KK_EINVAL (a field longer than its SMPP maximum, unknown command_id).
 */
int smpp_encode(const struct smpp_pdu *pdu, uint8_t *out, size_t cap, size_t *n);

/* Returns the first TLV with this tag, or NULL. */
const struct smpp_tlv *smpp_tlv_find(const struct smpp_pdu *pdu, uint16_t tag);
/* Appends a TLV (the value is a view the caller keeps alive until encoded).
   Returns 0 or KK_ENOSPC when tlv[] is full. */
int smpp_tlv_add(struct smpp_pdu *pdu, uint16_t tag, const void *val, size_t len);

/* Static names for logs: "submit_sm", "ESME_RTHROTTLED" ("unknown" if not known). */
const char *smpp_cmd_name(uint32_t command_id);
const char *smpp_status_name(uint32_t command_status);

/* Writes a one-line human-readable dump of *pdu into out (NUL-terminated,
   truncated to cap). Returns the length written. */
size_t smpp_dump(const struct smpp_pdu *pdu, char *out, size_t cap);

/* Builds a view of a NUL-terminated C string (NULL gives an empty view). */
struct smpp_str smpp_cstr(const char *s);

#endif
