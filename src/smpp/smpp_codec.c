/*
 * smpp_codec.c - SMPP 3.4 framing, decoding, encoding and dumping.
 *
 * The PDUs and their body fields come from smpp_pdu.def, expanded below into
 * static tables of field descriptors; the decoder, the encoder and the dump
 * are loops over those tables, so a field is described once.
 *
 * A response with a non-zero command_status may come without a body. The
 * decoder then leaves every body string as a view with a NULL pointer, and the
 * encoder writes such a response (no body strings set, no TLVs) as a bare
 * header again, so that decoding and re-encoding give the same bytes. A body
 * string that was present but empty points at its NUL in the buffer.
 */
#include "smpp/smpp_codec.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "core/kk_err.h"

enum field_type { F_END, F_CSTR, F_TIME, F_INT, F_FLAGS, F_SM };

/* One body field: how it is coded, where it lives in struct smpp_pdu. */
struct field {
  enum field_type type;
  unsigned max;        /* F_CSTR: maximum length including the NUL */
  uint32_t status;     /* F_TIME: command_status for a bad length */
  size_t off;          /* offset of the member in struct smpp_pdu */
  const char *dump;    /* label for smpp_dump, or NULL */
};

struct command {
  uint32_t id;
  const char *name;
  const struct field *body;
  int tlvs;            /* optional parameters may follow the body */
};

struct tlv_rule {
  uint16_t tag;
  unsigned min, max;
};

#define FIELD_OFF(m) offsetof(struct smpp_pdu, body.m)

/* The body layouts: one static array per BODY, ended by an F_END entry. */
#define BODY(b) static const struct field body_##b[] = {
#define BODY_END {F_END, 0, 0, 0, NULL}};
#define CSTR(m, max, dump) {F_CSTR, (max), 0, FIELD_OFF(m), (dump)},
#define TIME(m, status, dump) {F_TIME, 17, (status), FIELD_OFF(m), (dump)},
#define INT(m, dump) {F_INT, 0, 0, FIELD_OFF(m), (dump)},
#define FLAGS(m, dump) {F_FLAGS, 0, 0, FIELD_OFF(m), (dump)},
#define SM(m, dump) {F_SM, 0, 0, FIELD_OFF(m), (dump)},
#define PDU(name, id, body, tlvs)
#define TLV(tag, min, max)
#include "smpp_pdu.def"
#undef BODY
#undef BODY_END
#undef CSTR
#undef TIME
#undef INT
#undef FLAGS
#undef SM
#undef PDU
#undef TLV

/* The supported commands and the known optional parameters. */
#define BODY(b)
#define BODY_END
#define CSTR(m, max, dump)
#define TIME(m, status, dump)
#define INT(m, dump)
#define FLAGS(m, dump)
#define SM(m, dump)
#define PDU(name, id, body, tlvs) {(id), #name, body_##body, (tlvs)},
#define TLV(tag, min, max)
static const struct command commands[] = {
#include "smpp_pdu.def"
};
#undef PDU
#define PDU(name, id, body, tlvs)
#undef TLV
#define TLV(tag, min, max) {(tag), (min), (max)},
static const struct tlv_rule tlv_rules[] = {
#include "smpp_pdu.def"
};
#undef BODY
#undef BODY_END
#undef CSTR
#undef TIME
#undef INT
#undef FLAGS
#undef SM
#undef PDU
#undef TLV

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

/* The command_status names that kaskad knows, for logs. */
#define STATUS_MAP(XX)                                                   \
  XX(ESME_ROK) XX(ESME_RINVMSGLEN) XX(ESME_RINVCMDLEN) XX(ESME_RINVCMDID) \
  XX(ESME_RINVBNDSTS) XX(ESME_RALYBND) XX(ESME_RSYSERR)                  \
  XX(ESME_RINVSRCADR) XX(ESME_RINVDSTADR) XX(ESME_RBINDFAIL)             \
  XX(ESME_RINVPASWD) XX(ESME_RINVSYSID) XX(ESME_RMSGQFUL)                \
  XX(ESME_RINVESMCLASS) XX(ESME_RSUBMITFAIL) XX(ESME_RINVSRCTON)         \
  XX(ESME_RINVSRCNPI) XX(ESME_RINVDSTTON) XX(ESME_RINVDSTNPI)            \
  XX(ESME_RTHROTTLED) XX(ESME_RINVSCHED) XX(ESME_RINVEXPIRY)             \
  XX(ESME_RX_T_APPN) XX(ESME_RX_P_APPN) XX(ESME_RX_R_APPN)               \
  XX(ESME_RINVOPTPARSTREAM) XX(ESME_ROPTPARNOTALLWD) XX(ESME_RINVPARLEN) \
  XX(ESME_RMISSINGOPTPARAM) XX(ESME_RINVOPTPARAMVAL)                     \
  XX(ESME_RDELIVERYFAILURE) XX(ESME_RUNKNOWNERR)

static const struct {
  uint32_t status;
  const char *name;
} status_names[] = {
#define XX(name) {SMPP_##name, #name},
  STATUS_MAP(XX)
#undef XX
};

static const struct command *find_command(uint32_t id) {
  for (size_t i = 0; i < NELEM(commands); i++)
    if (commands[i].id == id) return &commands[i];
  return NULL;
}

static const struct tlv_rule *find_tlv_rule(uint16_t tag) {
  for (size_t i = 0; i < NELEM(tlv_rules); i++)
    if (tlv_rules[i].tag == tag) return &tlv_rules[i];
  return NULL;
}

/* Whether a TLV value of this length is allowed for its tag. */
static int tlv_len_ok(uint16_t tag, size_t len) {
  const struct tlv_rule *r = find_tlv_rule(tag);
  if (len > 0xFFFF) return 0;
  return r == NULL || (len >= r->min && len <= r->max);
}

static struct smpp_str *str_at(struct smpp_pdu *pdu, const struct field *f) {
  return (struct smpp_str *)((char *)pdu + f->off);
}

static const struct smpp_str *cstr_at(const struct smpp_pdu *pdu,
                                      const struct field *f) {
  return (const struct smpp_str *)((const char *)pdu + f->off);
}

static uint8_t *u8_at(struct smpp_pdu *pdu, const struct field *f) {
  return (uint8_t *)pdu + f->off;
}

static uint8_t cu8_at(const struct smpp_pdu *pdu, const struct field *f) {
  return *((const uint8_t *)pdu + f->off);
}

static uint32_t get_u32(const uint8_t *p) {
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static uint16_t get_u16(const uint8_t *p) {
  return (uint16_t)(p[0] << 8 | p[1]);
}

static int is_field_string(enum field_type t) {
  return t == F_CSTR || t == F_TIME || t == F_SM;
}

/*
 * Whether *pdu is an error response sent without a body: its command_status is
 * non-zero, it has no TLVs and none of its body strings is set.
 */
static int body_omitted(const struct command *cmd, const struct smpp_pdu *pdu) {
  if (!(pdu->command_id & SMPP_RESP) || pdu->command_status == 0 ||
      pdu->ntlv != 0)
    return 0;
  for (const struct field *f = cmd->body; f->type != F_END; f++)
    if (!is_field_string(f->type) || cstr_at(pdu, f)->p != NULL) return 0;
  return 1;
}

int smpp_frame(const uint8_t *buf, size_t len, size_t *pdu_len) {
  if (len < SMPP_HEADER_LEN) return KK_EAGAIN;
  uint32_t n = get_u32(buf);
  if (n < SMPP_HEADER_LEN || n > SMPP_MAX_PDU_LEN) return KK_EPROTO;
  if (len < n) return KK_EAGAIN;
  *pdu_len = n;
  return 0;
}

/* The decoder's position in one PDU. */
struct reader {
  const uint8_t *buf;
  size_t len;
  size_t pos;
  struct smpp_err *err;
};

static int fail(struct reader *r, uint32_t status, size_t offset) {
  r->err->status = status;
  r->err->offset = offset;
  return KK_EPROTO;
}

/* Reads a C-octet string of at most max octets including its NUL. */
static int read_cstr(struct reader *r, unsigned max, uint32_t status,
                     struct smpp_str *out) {
  size_t room = r->len - r->pos;
  size_t limit = room < max ? room : max;
  const uint8_t *start = r->buf + r->pos;
  const uint8_t *nul = memchr(start, 0, limit);
  if (nul == NULL) return fail(r, status, r->pos);
  out->p = start;
  out->len = (size_t)(nul - start);
  r->pos += out->len + 1;
  return 0;
}

static int read_u8(struct reader *r, uint8_t *out) {
  if (r->pos >= r->len) return fail(r, SMPP_ESME_RINVCMDLEN, r->pos);
  *out = r->buf[r->pos++];
  return 0;
}

/* Reads sm_length and short_message. */
static int read_sm(struct reader *r, struct smpp_str *out) {
  uint8_t n;
  int rc = read_u8(r, &n);
  if (rc != 0) return rc;
  if (n > 254 || n > r->len - r->pos)
    return fail(r, SMPP_ESME_RINVMSGLEN, r->pos - 1);
  out->p = r->buf + r->pos;
  out->len = n;
  r->pos += n;
  return 0;
}

static int read_field(struct reader *r, const struct field *f,
                      struct smpp_pdu *pdu) {
  size_t at = r->pos;
  int rc;
  switch (f->type) {
  case F_CSTR:
    return read_cstr(r, f->max, SMPP_ESME_RINVPARLEN, str_at(pdu, f));
  case F_TIME:
    rc = read_cstr(r, f->max, SMPP_ESME_RINVPARLEN, str_at(pdu, f));
    if (rc == 0 && str_at(pdu, f)->len != 0 && str_at(pdu, f)->len != 16)
      return fail(r, f->status, at);
    return rc;
  case F_INT:
  case F_FLAGS:
    return read_u8(r, u8_at(pdu, f));
  case F_SM:
    return read_sm(r, str_at(pdu, f));
  case F_END:
    break;
  }
  return 0;
}

/* Reads the optional parameters that fill the rest of the PDU. */
static int read_tlvs(struct reader *r, struct smpp_pdu *pdu) {
  while (r->pos < r->len) {
    size_t at = r->pos;
    if (r->len - at < 4) return fail(r, SMPP_ESME_RINVOPTPARSTREAM, at);
    uint16_t tag = get_u16(r->buf + at);
    uint16_t n = get_u16(r->buf + at + 2);
    if (n > r->len - at - 4) return fail(r, SMPP_ESME_RINVOPTPARSTREAM, at);
    if (pdu->ntlv >= SMPP_MAX_TLVS)
      return fail(r, SMPP_ESME_RINVOPTPARSTREAM, at);
    if (!tlv_len_ok(tag, n)) return fail(r, SMPP_ESME_RINVPARLEN, at);
    struct smpp_tlv *t = &pdu->tlv[pdu->ntlv++];
    t->tag = tag;
    t->val.p = r->buf + at + 4;
    t->val.len = n;
    r->pos = at + 4 + n;
  }
  return 0;
}

int smpp_decode(const uint8_t *buf, size_t len, struct smpp_pdu *pdu,
                struct smpp_err *err) {
  struct smpp_err unused;
  struct reader r = {buf, len, 0, err ? err : &unused};
  r.err->status = SMPP_ESME_ROK;
  r.err->offset = 0;
  memset(pdu, 0, sizeof *pdu);
  if (len < SMPP_HEADER_LEN) return fail(&r, SMPP_ESME_RINVCMDLEN, 0);

  pdu->command_length = get_u32(buf);
  pdu->command_id = get_u32(buf + 4);
  pdu->command_status = get_u32(buf + 8);
  pdu->sequence_number = get_u32(buf + 12);
  if (pdu->command_length != len || len > SMPP_MAX_PDU_LEN)
    return fail(&r, SMPP_ESME_RINVCMDLEN, 0);
  const struct command *cmd = find_command(pdu->command_id);
  if (cmd == NULL) return fail(&r, SMPP_ESME_RINVCMDID, 4);

  r.pos = SMPP_HEADER_LEN;
  if (len == SMPP_HEADER_LEN && (pdu->command_id & SMPP_RESP) &&
      pdu->command_status != 0)
    return 0;
  for (const struct field *f = cmd->body; f->type != F_END; f++) {
    int rc = read_field(&r, f, pdu);
    if (rc != 0) return rc;
  }
  if (r.pos == len) return 0;
  if (!cmd->tlvs) return fail(&r, SMPP_ESME_RINVCMDLEN, r.pos);
  return read_tlvs(&r, pdu);
}

/* The encoder's position in the output buffer. */
struct writer {
  uint8_t *out;
  size_t cap;
  size_t n;
};

static int put(struct writer *w, const void *p, size_t n) {
  if (n > w->cap - w->n) return KK_ENOSPC;
  if (n > 0) memcpy(w->out + w->n, p, n);
  w->n += n;
  return 0;
}

static int put_u8(struct writer *w, uint8_t v) {
  return put(w, &v, 1);
}

static int put_u16(struct writer *w, uint16_t v) {
  uint8_t b[2] = {(uint8_t)(v >> 8), (uint8_t)v};
  return put(w, b, 2);
}

static int put_u32(struct writer *w, uint32_t v) {
  uint8_t b[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8),
                  (uint8_t)v};
  return put(w, b, 4);
}

/* Whether a view is usable: it has bytes behind it when it is not empty. */
static int view_ok(const struct smpp_str *s) {
  return s->len == 0 || s->p != NULL;
}

/* Writes a C-octet string; it must fit max with its NUL and hold no NUL. */
static int put_cstr(struct writer *w, const struct smpp_str *s, unsigned max) {
  if (!view_ok(s) || s->len + 1 > max || (s->len && memchr(s->p, 0, s->len)))
    return KK_EINVAL;
  int rc = put(w, s->p, s->len);
  return rc != 0 ? rc : put_u8(w, 0);
}

static int put_field(struct writer *w, const struct field *f,
                     const struct smpp_pdu *pdu) {
  const struct smpp_str *s;
  int rc;
  switch (f->type) {
  case F_CSTR:
    return put_cstr(w, cstr_at(pdu, f), f->max);
  case F_TIME:
    s = cstr_at(pdu, f);
    if (s->len != 0 && s->len != 16) return KK_EINVAL;
    return put_cstr(w, s, f->max);
  case F_INT:
  case F_FLAGS:
    return put_u8(w, cu8_at(pdu, f));
  case F_SM:
    s = cstr_at(pdu, f);
    if (!view_ok(s) || s->len > 254) return KK_EINVAL;
    rc = put_u8(w, (uint8_t)s->len);
    return rc != 0 ? rc : put(w, s->p, s->len);
  case F_END:
    break;
  }
  return 0;
}

static int put_tlv(struct writer *w, const struct smpp_tlv *t) {
  if (!view_ok(&t->val) || !tlv_len_ok(t->tag, t->val.len)) return KK_EINVAL;
  int rc = put_u16(w, t->tag);
  if (rc == 0) rc = put_u16(w, (uint16_t)t->val.len);
  if (rc == 0) rc = put(w, t->val.p, t->val.len);
  return rc;
}

int smpp_encode(const struct smpp_pdu *pdu, uint8_t *out, size_t cap, size_t *n) {
  const struct command *cmd = find_command(pdu->command_id);
  if (cmd == NULL || pdu->ntlv < 0 || pdu->ntlv > SMPP_MAX_TLVS ||
      (pdu->ntlv > 0 && !cmd->tlvs))
    return KK_EINVAL;

  struct writer w = {out, cap, 0};
  int rc = put_u32(&w, 0);  /* command_length, set at the end */
  if (rc == 0) rc = put_u32(&w, pdu->command_id);
  if (rc == 0) rc = put_u32(&w, pdu->command_status);
  if (rc == 0) rc = put_u32(&w, pdu->sequence_number);
  if (rc != 0) return rc;
  if (!body_omitted(cmd, pdu)) {
    for (const struct field *f = cmd->body; f->type != F_END; f++)
      if ((rc = put_field(&w, f, pdu)) != 0) return rc;
  }
  for (int i = 0; i < pdu->ntlv; i++)
    if ((rc = put_tlv(&w, &pdu->tlv[i])) != 0) return rc;
  if (w.n > SMPP_MAX_PDU_LEN) return KK_EINVAL;

  uint32_t total = (uint32_t)w.n;
  out[0] = (uint8_t)(total >> 24);
  out[1] = (uint8_t)(total >> 16);
  out[2] = (uint8_t)(total >> 8);
  out[3] = (uint8_t)total;
  *n = w.n;
  return 0;
}

const struct smpp_tlv *smpp_tlv_find(const struct smpp_pdu *pdu, uint16_t tag) {
  for (int i = 0; i < pdu->ntlv && i < SMPP_MAX_TLVS; i++)
    if (pdu->tlv[i].tag == tag) return &pdu->tlv[i];
  return NULL;
}

int smpp_tlv_add(struct smpp_pdu *pdu, uint16_t tag, const void *val, size_t len) {
  if (pdu->ntlv < 0 || pdu->ntlv >= SMPP_MAX_TLVS) return KK_ENOSPC;
  struct smpp_tlv *t = &pdu->tlv[pdu->ntlv++];
  t->tag = tag;
  t->val.p = val;
  t->val.len = len;
  return 0;
}

const char *smpp_cmd_name(uint32_t command_id) {
  const struct command *cmd = find_command(command_id);
  return cmd ? cmd->name : "unknown";
}

const char *smpp_status_name(uint32_t command_status) {
  for (size_t i = 0; i < NELEM(status_names); i++)
    if (status_names[i].status == command_status) return status_names[i].name;
  return "unknown";
}

/* The dump's output: appends are truncated at cap, always NUL-terminated. */
struct dump {
  char *out;
  size_t cap;
  size_t n;
};

static void dump_printf(struct dump *d, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void dump_printf(struct dump *d, const char *fmt, ...) {
  if (d->n + 1 >= d->cap) return;
  va_list ap;
  va_start(ap, fmt);
  int k = vsnprintf(d->out + d->n, d->cap - d->n, fmt, ap);
  va_end(ap);
  if (k < 0) return;
  d->n += (size_t)k < d->cap - d->n ? (size_t)k : d->cap - d->n - 1;
}

/* Writes a string in double quotes, with non-printable bytes as \xNN. */
static void dump_quoted(struct dump *d, const struct smpp_str *s) {
  dump_printf(d, "\"");
  for (size_t i = 0; i < s->len && s->p != NULL; i++) {
    uint8_t c = s->p[i];
    if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\')
      dump_printf(d, "%c", c);
    else
      dump_printf(d, "\\x%02x", c);
  }
  dump_printf(d, "\"");
}

static void dump_field(struct dump *d, const struct field *f,
                       const struct smpp_pdu *pdu) {
  dump_printf(d, "%s", f->dump);
  switch (f->type) {
  case F_CSTR:
  case F_TIME:
    dump_quoted(d, cstr_at(pdu, f));
    break;
  case F_INT:
    dump_printf(d, "%u", cu8_at(pdu, f));
    break;
  case F_FLAGS:
    dump_printf(d, "0x%02x", cu8_at(pdu, f));
    break;
  case F_SM:
    dump_printf(d, "%zu", cstr_at(pdu, f)->len);
    break;
  case F_END:
    break;
  }
}

size_t smpp_dump(const struct smpp_pdu *pdu, char *out, size_t cap) {
  struct dump d = {out, cap, 0};
  if (cap == 0) return 0;
  out[0] = '\0';
  const struct command *cmd = find_command(pdu->command_id);
  if (cmd != NULL)
    dump_printf(&d, "%s", cmd->name);
  else
    dump_printf(&d, "unknown(0x%08x)", (unsigned)pdu->command_id);
  dump_printf(&d, " seq=%u", (unsigned)pdu->sequence_number);
  if (pdu->command_status != 0) {
    const char *name = smpp_status_name(pdu->command_status);
    if (strcmp(name, "unknown") != 0)
      dump_printf(&d, " status=%s", name);
    else
      dump_printf(&d, " status=0x%08x", (unsigned)pdu->command_status);
  }
  if (cmd != NULL && !body_omitted(cmd, pdu)) {
    for (const struct field *f = cmd->body; f->type != F_END; f++)
      if (f->dump != NULL) dump_field(&d, f, pdu);
  }
  int ntlv = pdu->ntlv < SMPP_MAX_TLVS ? pdu->ntlv : SMPP_MAX_TLVS;
  for (int i = 0; i < ntlv; i++)
    dump_printf(&d, "%s0x%04x:%zu%s", i == 0 ? " tlv=[" : ",",
                (unsigned)pdu->tlv[i].tag, pdu->tlv[i].val.len,
                i == ntlv - 1 ? "]" : "");
  return d.n;
}

struct smpp_str smpp_cstr(const char *s) {
  struct smpp_str v = {(const uint8_t *)s, s ? strlen(s) : 0};
  return v;
}
