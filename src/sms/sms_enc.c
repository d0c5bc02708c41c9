/*
 * sms_enc.c - SMS text encoding: picks GSM-7 or UCS-2 for a UTF-8 text,
 * counts its segments, splits it into concatenated parts with a UDH, and
 * decodes received short messages back to UTF-8.
 *
 * Splitting is greedy: a part is filled until the next character no longer
 * fits, so an extension character (ESC + code) or a surrogate pair always
 * moves to the next part whole. sms_analyze() and sms_encode() lay a text out
 * with the same code, so the segment count always matches the parts made.
 */
#include "sms/sms_enc.h"

#include <limits.h>
#include <string.h>

#include "core/kk_err.h"
#include "core/kk_utf8.h"
#include "sms/sms_gsm7.h"

#define GSM7_SINGLE 160   /* septets in an unsegmented message */
#define GSM7_PART 153     /* septets per part after the 6-octet UDH */
#define UCS2_SINGLE 70    /* UTF-16 units in an unsegmented message */
#define UCS2_PART 67      /* UTF-16 units per part after the UDH */

#define REPLACEMENT 0xFFFD

/* ---- UTF-8 in and out ---- */

/* ---- Laying a text out in parts ---- */

/* Septets (GSM-7) or UTF-16 units (UCS-2) that cp takes in the given coding. */
static size_t char_units(enum sms_coding coding, uint32_t cp) {
  if (coding == SMS_CODING_GSM7) return sms_gsm7_from_cp(cp) >= SMS_GSM7_EXT ? 2 : 1;
  return cp > 0xFFFF ? 2 : 1;
}

/* Tracks the part the next character goes to while a text is laid out. */
struct layout {
  size_t cap;   /* units per part */
  int part;     /* 0-based index of the part being filled */
  size_t used;  /* units already in that part */
};

/* Starts a layout for a text of the given coding and total units. */
static void layout_init(struct layout *l, enum sms_coding coding, size_t units) {
  size_t single = coding == SMS_CODING_GSM7 ? GSM7_SINGLE : UCS2_SINGLE;
  size_t part = coding == SMS_CODING_GSM7 ? GSM7_PART : UCS2_PART;
  l->cap = units <= single ? single : part;
  l->part = 0;
  l->used = 0;
}

/*
 * Places a character of w units, moving to a new part when it does not fit
 * in the current one, and returns the index of the part it went to. The part
 * count stops growing at INT_MAX rather than overflow on absurd inputs.
 */
static int layout_place(struct layout *l, size_t w) {
  if (l->used + w > l->cap && l->part < INT_MAX - 1) {
    l->part++;
    l->used = 0;
  }
  l->used += w;
  return l->part;
}

/* Counts the parts a valid UTF-8 text takes (the text is already checked). */
static int count_segments(const uint8_t *s, size_t len, enum sms_coding coding,
                          size_t units) {
  struct layout l;
  uint32_t cp;
  layout_init(&l, coding, units);
  for (size_t i = 0; i < len;) {
    kk_utf8_next(s, len, &i, &cp);
    layout_place(&l, char_units(coding, cp));
  }
  return l.part + 1;
}

int sms_analyze(const char *utf8, size_t len, struct sms_info *out) {
  const uint8_t *s = (const uint8_t *)utf8;
  size_t chars = 0, septets = 0, utf16 = 0;
  int gsm = 1;

  memset(out, 0, sizeof *out);
  if (len == 0) return KK_EINVAL;
  for (size_t i = 0; i < len;) {
    uint32_t cp;
    int rc = kk_utf8_next(s, len, &i, &cp);
    if (rc != 0) return rc;
    chars++;
    utf16 += cp > 0xFFFF ? 2 : 1;
    if (gsm) {
      int g = sms_gsm7_from_cp(cp);
      if (g < 0)
        gsm = 0;
      else
        septets += g >= SMS_GSM7_EXT ? 2 : 1;
    }
  }
  out->coding = gsm ? SMS_CODING_GSM7 : SMS_CODING_UCS2;
  out->chars = chars;
  out->units = gsm ? septets : utf16;
  out->segments = count_segments(s, len, out->coding, out->units);
  return out->segments > SMS_MAX_PARTS ? KK_ETOOBIG : 0;
}

/* ---- Encoding ---- */

static void put_u8(struct sms_part *p, unsigned v) {
  p->data[p->len++] = (uint8_t)v;
}

static void put_u16be(struct sms_part *p, unsigned v) {
  put_u8(p, (v >> 8) & 0xFF);
  put_u8(p, v & 0xFF);
}

/* Writes the concatenation header: 8-bit reference, total, 1-based seq. */
static void put_udh(struct sms_part *p, uint8_t ref, int total, int seq) {
  put_u8(p, 0x05);   /* header length after this octet */
  put_u8(p, 0x00);   /* IEI: concatenated message, 8-bit reference */
  put_u8(p, 0x03);   /* IE length */
  put_u8(p, ref);
  put_u8(p, (unsigned)total);
  put_u8(p, (unsigned)seq);
}

/* Appends cp in the given coding; the caller has checked that it fits. */
static void put_char(struct sms_part *p, enum sms_coding coding, uint32_t cp) {
  if (coding == SMS_CODING_GSM7) {
    int g = sms_gsm7_from_cp(cp);
    if (g >= SMS_GSM7_EXT) put_u8(p, SMS_GSM7_ESC);
    put_u8(p, (unsigned)g & 0x7F);
  } else if (cp > 0xFFFF) {
    uint32_t v = cp - 0x10000;
    put_u16be(p, 0xD800 | (v >> 10));
    put_u16be(p, 0xDC00 | (v & 0x3FF));
  } else {
    put_u16be(p, cp);
  }
}

int sms_encode(const char *utf8, size_t len, uint8_t ref, struct sms_encoded *out) {
  const uint8_t *s = (const uint8_t *)utf8;
  struct sms_info info;
  struct layout l;

  memset(out, 0, sizeof *out);
  int rc = sms_analyze(utf8, len, &info);
  if (rc != 0) return rc;

  out->coding = info.coding;
  out->nparts = info.segments;
  out->udhi = info.segments > 1;
  if (out->udhi)
    for (int k = 0; k < out->nparts; k++)
      put_udh(&out->part[k], ref, out->nparts, k + 1);

  layout_init(&l, info.coding, info.units);
  for (size_t i = 0; i < len;) {
    uint32_t cp;
    kk_utf8_next(s, len, &i, &cp);
    int k = layout_place(&l, char_units(info.coding, cp));
    put_char(&out->part[k], info.coding, cp);
  }
  return 0;
}

/* ---- Decoding ---- */

/* A NUL-terminated UTF-8 output buffer that stops (full) at its capacity. */
struct text_out {
  char *p;
  size_t cap;   /* bytes, including the terminating NUL */
  size_t n;     /* bytes written, excluding the NUL */
  int full;     /* set once a character did not fit */
};

/*
 * Appends cp whole, or marks the output full and drops it and all after. A
 * NUL (IA5, Latin-1 or UCS-2 zero) becomes U+FFFD: the output is a C string
 * and would silently end there.
 */
static void out_char(struct text_out *o, uint32_t cp) {
  uint8_t b[4];
  size_t n = kk_utf8_put(cp == 0 ? REPLACEMENT : cp, b);
  if (o->full || o->n + n >= o->cap) {
    o->full = 1;
    return;
  }
  memcpy(o->p + o->n, b, n);
  o->n += n;
}

/*
 * GSM-7, one septet per octet. An extension code with no character of its own
 * shows the basic-table character at that code, as GSM 03.38 asks; ESC ESC
 * (reserved for a further table) and a lone ESC at the end show a space.
 */
static void decode_gsm7(const uint8_t *p, size_t len, struct text_out *o) {
  for (size_t i = 0; i < len && !o->full; i++) {
    uint8_t c = p[i];
    if (c >= 0x80) {
      out_char(o, REPLACEMENT);
    } else if (c != SMS_GSM7_ESC || i + 1 == len) {
      out_char(o, sms_gsm7_basic_cp(c));
    } else {
      uint8_t e = p[++i];
      int32_t cp = e < 0x80 ? sms_gsm7_ext_cp(e) : -1;
      if (cp >= 0)
        out_char(o, (uint32_t)cp);
      else if (e < 0x80)
        out_char(o, sms_gsm7_basic_cp(e));
      else
        out_char(o, REPLACEMENT);
    }
  }
}

static void decode_ascii(const uint8_t *p, size_t len, struct text_out *o) {
  for (size_t i = 0; i < len && !o->full; i++)
    out_char(o, p[i] < 0x80 ? p[i] : REPLACEMENT);
}

static void decode_latin1(const uint8_t *p, size_t len, struct text_out *o) {
  for (size_t i = 0; i < len && !o->full; i++)
    out_char(o, p[i]);
}

static int is_high_surrogate(uint32_t u) {
  return u >= 0xD800 && u <= 0xDBFF;
}

static int is_low_surrogate(uint32_t u) {
  return u >= 0xDC00 && u <= 0xDFFF;
}

/* UTF-16BE: pairs are joined; lone surrogates and an odd last byte give U+FFFD. */
static void decode_ucs2(const uint8_t *p, size_t len, struct text_out *o) {
  size_t i = 0;
  while (i + 1 < len && !o->full) {
    uint32_t u = (uint32_t)p[i] << 8 | p[i + 1];
    i += 2;
    if (is_high_surrogate(u) && i + 1 < len) {
      uint32_t lo = (uint32_t)p[i] << 8 | p[i + 1];
      if (is_low_surrogate(lo)) {
        u = 0x10000 + ((u - 0xD800) << 10) + (lo - 0xDC00);
        i += 2;
      }
    }
    out_char(o, is_high_surrogate(u) || is_low_surrogate(u) ? REPLACEMENT : u);
  }
  if (i < len) out_char(o, REPLACEMENT);
}

int sms_decode(uint8_t data_coding, const uint8_t *p, size_t len, char *out, size_t cap) {
  struct text_out o = {out, cap, 0, 0};

  if (cap == 0) return KK_ENOSPC;
  /* The length is returned as an int, so never write more than fits one. */
  if (o.cap > (size_t)INT_MAX) o.cap = (size_t)INT_MAX;
  switch (data_coding) {
  case 0x00:
    decode_gsm7(p, len, &o);
    break;
  case 0x01:
    decode_ascii(p, len, &o);
    break;
  case 0x08:
    decode_ucs2(p, len, &o);
    break;
  default:
    decode_latin1(p, len, &o);
    break;
  }
  out[o.n] = '\0';
  return o.full ? KK_ENOSPC : (int)o.n;
}
