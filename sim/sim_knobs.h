/*
 * sim_knobs.h - the simulator's run-time knobs (outcome mix, error
 * injection, delays) and their JSON form, as served by GET/POST /config.
 *
 * The knobs live in one plain struct owned by the caller; the SMSC reads it
 * on every submit, so a change applies to the next PDU.
 */
#ifndef SIM_KNOBS_H
#define SIM_KNOBS_H

#include <jansson.h>

enum sim_msgid_fmt { SIM_MSGID_HEX = 0, SIM_MSGID_DEC = 1 };
enum sim_receipt_id { SIM_RCPT_ID_SAME = 0, SIM_RCPT_ID_ALT = 1 };

struct sim_knobs {
  double delivered;          /* outcome weights, each 0..1 */
  double undeliverable;
  double expired;
  int dlr_delay_ms[2];       /* receipt delay after submit_sm_resp: [min, max] */
  double throttle;           /* per-submit shares of injected errors, 0..1 */
  double queue_full;
  double syserr;
  double reject;
  int max_sps;               /* accepted submits per second per system_id, 0 = unlimited */
  int disconnect_after;      /* drop the connection at its Nth submit (counted since it
                                opened or this knob last changed), 0 = never */
  int resp_delay_ms;         /* delay of every submit_sm_resp */
  int message_id;            /* enum sim_msgid_fmt */
  int receipt_tlvs;          /* 1: receipts carry the receipt TLVs besides the text */
  int receipt_id;            /* enum sim_receipt_id: the id base used in receipts */
  int receipt_retry_ms;      /* resend an unanswered receipt after this long */
  int receipt_attempts;      /* sends of one receipt before giving up */
};

/* Why a knob update was refused; code is "unknown_knob" or "bad_value". */
struct sim_knob_err {
  const char *code;
  char message[160];
};

void sim_knobs_defaults(struct sim_knobs *k);

/* Returns a new JSON object with every knob; the caller json_decref()s it. */
json_t *sim_knobs_to_json(const struct sim_knobs *k);

/*
 * Applies a JSON object holding any subset of the knobs. Either every knob in
 * obj is valid and all are applied, or nothing changes: returns 0, or
 * KK_EINVAL with err filled in.
 */
int sim_knobs_apply(struct sim_knobs *k, const json_t *obj, struct sim_knob_err *err);

/* Reads an integer-valued JSON number (a real must have no fraction):
   0 or KK_EINVAL. */
int sim_json_int(const json_t *v, long long *out);

#endif
