/*
 * smpp_dlr.c - delivery receipts: the receipt text of SMPP 3.4 Appendix B as
 * SMSCs really send it, the receipt TLVs, and message id base conversion.
 *
 * The text is a list of "key:value" tokens separated by white space; the keys
 * are matched without regard to case, the values run to the next white space,
 * except that of "text:", which runs to the end. Unknown tokens are skipped.
 */
#include "smpp/smpp_dlr.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "core/kk_err.h"

enum dlr_key { K_ID, K_SUB, K_DLVRD, K_SUBMIT_DATE, K_DONE_DATE, K_STAT, K_ERR,
               K_TEXT };

/* The receipt keys, without their colon. */
static const struct {
  enum dlr_key key;
  const char *name;
} keys[] = {
  {K_ID, "id"},
  {K_SUB, "sub"},
  {K_DLVRD, "dlvrd"},
  {K_SUBMIT_DATE, "submit date"},
  {K_DONE_DATE, "done date"},
  {K_STAT, "stat"},
  {K_ERR, "err"},
  {K_TEXT, "text"},
};

/* stat: values, the abbreviations of Appendix B first, then spelled out. */
static const struct {
  const char *name;
  enum smpp_msg_state state;
} states[] = {
  {"DELIVRD", SMPP_STATE_DELIVERED},
  {"EXPIRED", SMPP_STATE_EXPIRED},
  {"DELETED", SMPP_STATE_DELETED},
  {"UNDELIV", SMPP_STATE_UNDELIVERABLE},
  {"ACCEPTD", SMPP_STATE_ACCEPTED},
  {"UNKNOWN", SMPP_STATE_UNKNOWN},
  {"REJECTD", SMPP_STATE_REJECTED},
  {"ENROUTE", SMPP_STATE_ENROUTE},
  {"DELIVERED", SMPP_STATE_DELIVERED},
  {"UNDELIVERABLE", SMPP_STATE_UNDELIVERABLE},
  {"REJECTED", SMPP_STATE_REJECTED},
  {"ACCEPTED", SMPP_STATE_ACCEPTED},
};

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

static int is_space(uint8_t c) {
  return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static int is_digit(uint8_t c) {
  return c >= '0' && c <= '9';
}

static uint8_t lower(uint8_t c) {
  return c >= 'A' && c <= 'Z' ? (uint8_t)(c - 'A' + 'a') : c;
}

/* Whether p[0..len) equals the C string s, ignoring the case of letters. */
static int equal_nocase(const uint8_t *p, size_t len, const char *s) {
  if (strlen(s) != len) return 0;
  for (size_t i = 0; i < len; i++)
    if (lower(p[i]) != lower((uint8_t)s[i])) return 0;
  return 1;
}

/*
 * Matches "key:" at p (len bytes available). Returns the key's index in keys[]
 * and sets *klen to the length matched including the colon, or returns -1.
 */
static int match_key(const uint8_t *p, size_t len, size_t *klen) {
  for (size_t i = 0; i < NELEM(keys); i++) {
    size_t n = strlen(keys[i].name);
    if (n < len && p[n] == ':' && equal_nocase(p, n, keys[i].name)) {
      *klen = n + 1;
      return (int)i;
    }
  }
  return KK_ENOENT;
}

/* A decimal count or error code of up to 9 digits, or -1. */
static int parse_int(struct smpp_str v) {
  if (v.len == 0 || v.len > 9) return -1;
  int n = 0;
  for (size_t i = 0; i < v.len; i++) {
    if (!is_digit(v.p[i])) return -1;
    n = n * 10 + (v.p[i] - '0');
  }
  return n;
}

/* A date of 10 (YYMMDDhhmm) or 12 (YYMMDDhhmmss) digits, else empty. */
static struct smpp_str parse_date(struct smpp_str v) {
  struct smpp_str none = {v.p, 0};
  if (v.len != 10 && v.len != 12) return none;
  for (size_t i = 0; i < v.len; i++)
    if (!is_digit(v.p[i])) return none;
  return v;
}

static enum smpp_msg_state parse_state(struct smpp_str v) {
  for (size_t i = 0; i < NELEM(states); i++)
    if (equal_nocase(v.p, v.len, states[i].name)) return states[i].state;
  return SMPP_STATE_UNKNOWN_NONE;
}

static void dlr_init(struct smpp_dlr *out, const uint8_t *p) {
  memset(out, 0, sizeof *out);
  out->id.p = p;
  out->submit_date.p = p;
  out->done_date.p = p;
  out->text.p = p;
  out->state = SMPP_STATE_UNKNOWN_NONE;
  out->err = -1;
  out->sub = -1;
  out->dlvrd = -1;
}

/* Stores one value; the first occurrence of a key wins. */
static void set_value(struct smpp_dlr *out, enum dlr_key key,
                      struct smpp_str v, unsigned *seen) {
  if (*seen & (1u << key)) return;
  *seen |= 1u << key;
  switch (key) {
  case K_ID: out->id = v; break;
  case K_SUB: out->sub = parse_int(v); break;
  case K_DLVRD: out->dlvrd = parse_int(v); break;
  case K_SUBMIT_DATE: out->submit_date = parse_date(v); break;
  case K_DONE_DATE: out->done_date = parse_date(v); break;
  case K_STAT: out->state = parse_state(v); break;
  case K_ERR: out->err = parse_int(v); break;
  case K_TEXT: out->text = v; break;
  }
}

/* Fills out with whatever fields the text holds; out must be initialised. */
static void scan_text(const uint8_t *p, size_t len, struct smpp_dlr *out) {
  unsigned seen = 0;
  size_t i = 0;
  /* Some SMSCs count the C string's NUL in the text; it is no part of it. */
  while (len > 0 && p[len - 1] == '\0') len--;
  while (i < len) {
    while (i < len && is_space(p[i])) i++;
    if (i == len) break;
    size_t klen = 0;
    int k = match_key(p + i, len - i, &klen);
    size_t start = k >= 0 ? i + klen : i;
    size_t end = start;
    if (k >= 0 && keys[k].key == K_TEXT)
      end = len;
    else
      while (end < len && !is_space(p[end])) end++;
    if (k >= 0) {
      struct smpp_str v = {p + start, end - start};
      set_value(out, keys[k].key, v, &seen);
    }
    i = end;
  }
}

static void set_final(struct smpp_dlr *out) {
  out->final = out->state != SMPP_STATE_ENROUTE &&
               out->state != SMPP_STATE_ACCEPTED;
}

int smpp_dlr_parse_text(const uint8_t *p, size_t len, struct smpp_dlr *out) {
  dlr_init(out, p);
  scan_text(p, len, out);
  set_final(out);
  if (out->id.len == 0 || out->state == SMPP_STATE_UNKNOWN_NONE)
    return KK_EPROTO;
  return 0;
}

/* Applies the receipt TLVs, which beat the text. */
static void apply_tlvs(const struct smpp_pdu *pdu, struct smpp_dlr *out) {
  const struct smpp_tlv *t = smpp_tlv_find(pdu, SMPP_TLV_RECEIPTED_MESSAGE_ID);
  if (t != NULL) {
    struct smpp_str id = t->val;
    while (id.len > 0 && id.p[id.len - 1] == '\0') id.len--;
    if (id.len > 0 && memchr(id.p, 0, id.len) == NULL) out->id = id;
  }
  t = smpp_tlv_find(pdu, SMPP_TLV_MESSAGE_STATE);
  if (t != NULL && t->val.len == 1 && t->val.p[0] >= SMPP_STATE_ENROUTE &&
      t->val.p[0] <= SMPP_STATE_REJECTED)
    out->state = (enum smpp_msg_state)t->val.p[0];
  t = smpp_tlv_find(pdu, SMPP_TLV_NETWORK_ERROR_CODE);
  if (t != NULL && t->val.len == 3)
    out->err = t->val.p[1] << 8 | t->val.p[2];
}

int smpp_dlr_from_pdu(const struct smpp_pdu *pdu, struct smpp_dlr *out) {
  const struct smpp_sm *sm = &pdu->body.sm;
  uint8_t type = sm->esm_class & SMPP_ESM_TYPE_MASK;
  /* 0x04 is an SMSC delivery receipt, 0x20 an intermediate notification. */
  if (pdu->command_id != SMPP_DELIVER_SM || (type != 0x04 && type != 0x20)) {
    dlr_init(out, NULL);
    return KK_EINVAL;
  }
  struct smpp_str text = sm->short_message;
  if (text.len == 0) {
    const struct smpp_tlv *t = smpp_tlv_find(pdu, SMPP_TLV_MESSAGE_PAYLOAD);
    if (t != NULL) text = t->val;
  }
  dlr_init(out, text.p);
  if (text.len > 0) scan_text(text.p, text.len, out);
  apply_tlvs(pdu, out);
  set_final(out);
  if (out->id.len == 0 || out->state == SMPP_STATE_UNKNOWN_NONE)
    return KK_EPROTO;
  return 0;
}

const char *smpp_state_name(enum smpp_msg_state s) {
  switch (s) {
  case SMPP_STATE_UNKNOWN_NONE: return "NONE";
  case SMPP_STATE_ENROUTE: return "ENROUTE";
  case SMPP_STATE_DELIVERED: return "DELIVRD";
  case SMPP_STATE_EXPIRED: return "EXPIRED";
  case SMPP_STATE_DELETED: return "DELETED";
  case SMPP_STATE_UNDELIVERABLE: return "UNDELIV";
  case SMPP_STATE_ACCEPTED: return "ACCEPTD";
  case SMPP_STATE_UNKNOWN: return "UNKNOWN";
  case SMPP_STATE_REJECTED: return "REJECTD";
  }
  return "NONE";
}

static int hex_value(uint8_t c) {
  if (is_digit(c)) return c - '0';
  c = lower(c);
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

/* Reads id in base 10 or 16 into *v; 0, or KK_EINVAL if not a number or too big. */
static int parse_base(struct smpp_str id, unsigned base, uint64_t *v) {
  uint64_t n = 0;
  if (id.len == 0) return KK_EINVAL;
  for (size_t i = 0; i < id.len; i++) {
    int d = hex_value(id.p[i]);
    if (d < 0 || (unsigned)d >= base) return KK_EINVAL;
    if (n > (UINT64_MAX - (unsigned)d) / base) return KK_EINVAL;
    n = n * base + (unsigned)d;
  }
  *v = n;
  return 0;
}

int smpp_msgid_alt(struct smpp_str id, char *out, size_t cap) {
  uint64_t v;
  int k;
  if (id.p == NULL && id.len > 0) return KK_EINVAL;
  if (parse_base(id, 10, &v) == 0)
    k = snprintf(out, cap, "%llx", (unsigned long long)v);
  else if (parse_base(id, 16, &v) == 0)
    k = snprintf(out, cap, "%llu", (unsigned long long)v);
  else
    return KK_EINVAL;
  if (k < 0 || (size_t)k >= cap) return KK_ENOSPC;
  return 0;
}
