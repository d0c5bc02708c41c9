/*
 * fuzz_sms.c - fuzz target for the SMS text encoder and decoder.
 *
 * The first input byte is the concatenation reference and picks the
 * data_coding for sms_decode(); the rest is the text. Checked invariants:
 * sms_analyze() and sms_encode() agree; parts carry a well-formed UDH exactly
 * when there are several; no part is over its limit or ends inside an ESC
 * pair or a surrogate pair; parts are filled greedily; decoding the parts of
 * a valid text gives back the text; sms_decode() always produces valid UTF-8
 * without a NUL inside and truncates cleanly. A broken invariant traps.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/kk_err.h"
#include "sms/sms_enc.h"

#define CHECK(c)                      \
  do {                                \
    if (!(c)) __builtin_trap();       \
  } while (0)

/* Units taken by the first character of a part's payload. */
static size_t first_units(enum sms_coding coding, const uint8_t *pay) {
  if (coding == SMS_CODING_GSM7) return pay[0] == 0x1B ? 2 : 1;
  return pay[0] >= 0xD8 && pay[0] <= 0xDB ? 2 : 1;
}

/* Checks one part's payload and returns the units it holds. */
static size_t check_payload(enum sms_coding coding, const uint8_t *pay, size_t plen) {
  CHECK(plen > 0);
  if (coding == SMS_CODING_GSM7) {
    for (size_t i = 0; i < plen; i++) {
      CHECK(pay[i] < 0x80);
      if (pay[i] == 0x1B) {
        i++;
        CHECK(i < plen);              /* an ESC pair is never cut */
        CHECK(pay[i] != 0x1B);
      }
    }
    return plen;
  }
  CHECK(plen % 2 == 0);
  for (size_t i = 0; i < plen; i += 2) {
    unsigned hi = pay[i];
    if (hi >= 0xD8 && hi <= 0xDB) {
      CHECK(i + 2 < plen);            /* a surrogate pair is never cut */
      CHECK(pay[i + 2] >= 0xDC && pay[i + 2] <= 0xDF);
      i += 2;
    } else {
      CHECK(hi < 0xDC || hi > 0xDF);
    }
  }
  return plen / 2;
}

static void check_encode(const char *text, size_t len, uint8_t ref) {
  struct sms_info info;
  struct sms_encoded *e = malloc(sizeof *e);
  int ra = sms_analyze(text, len, &info);
  int re = sms_encode(text, len, ref, e);

  CHECK(ra == re);
  CHECK(ra == 0 || ra == KK_EINVAL || ra == KK_EUTF8 || ra == KK_ETOOBIG);
  CHECK(ra != KK_EINVAL || len == 0);
  if (ra == KK_ETOOBIG) CHECK(info.segments > SMS_MAX_PARTS);
  if (ra != 0) {
    free(e);
    return;
  }

  int gsm = info.coding == SMS_CODING_GSM7;
  size_t single = gsm ? 160 : 70, cap = gsm ? 153 : 67;
  CHECK(info.coding == SMS_CODING_GSM7 || info.coding == SMS_CODING_UCS2);
  CHECK(info.chars >= 1 && info.chars <= len);
  CHECK(info.units >= info.chars && info.units <= 2 * info.chars);
  CHECK(e->coding == info.coding);
  CHECK(e->nparts == info.segments);
  CHECK(e->nparts >= 1 && e->nparts <= SMS_MAX_PARTS);
  CHECK(e->udhi == (e->nparts > 1));
  CHECK((info.units <= single) == (e->nparts == 1));

  char *back = malloc(len + 1);
  size_t n = 0, units = 0;
  for (int k = 0; k < e->nparts; k++) {
    const struct sms_part *p = &e->part[k];
    const uint8_t *pay = p->data;
    size_t plen = p->len;
    CHECK(plen <= SMS_PART_MAX);
    if (e->udhi) {
      CHECK(plen > 6);
      CHECK(pay[0] == 0x05 && pay[1] == 0x00 && pay[2] == 0x03);
      CHECK(pay[3] == ref && pay[4] == e->nparts && pay[5] == k + 1);
      pay += 6;
      plen -= 6;
    }
    size_t u = check_payload(e->coding, pay, plen);
    CHECK(u <= (e->udhi ? cap : single));
    if (!gsm) CHECK(plen <= 140 - (e->udhi ? 6 : 0));
    /* Greedy filling: the next part's first character did not fit here. */
    if (k + 1 < e->nparts) CHECK(u + first_units(e->coding, e->part[k + 1].data + 6) > cap);
    units += u;

    int r = sms_decode((uint8_t)e->coding, pay, plen, back + n, len + 1 - n);
    CHECK(r >= 0);
    n += (size_t)r;
  }
  CHECK(units == info.units);
  CHECK(n == len && memcmp(back, text, len) == 0);
  free(back);
  free(e);
}

static void check_decode(uint8_t dc, const uint8_t *p, size_t len) {
  struct sms_info info;
  size_t cap = 3 * len + 1;   /* no octet grows to more than 3 UTF-8 bytes */
  char *out = malloc(cap);
  int n = sms_decode(dc, p, len, out, cap);
  CHECK(n >= 0 && (size_t)n < cap && out[n] == '\0');
  CHECK(strlen(out) == (size_t)n);   /* no NUL inside the text */
  if (n > 0) CHECK(sms_analyze(out, (size_t)n, &info) != KK_EUTF8);

  /* A smaller buffer gets a NUL-ended prefix made of whole characters. */
  if (n > 0) {
    size_t small = (size_t)n / 2 + 1;
    char *part = malloc(small);
    CHECK(sms_decode(dc, p, len, part, small) == KK_ENOSPC);
    size_t m = strnlen(part, small);
    CHECK(m < small && memcmp(part, out, m) == 0);
    if (m > 0) CHECK(sms_analyze(part, m, &info) != KK_EUTF8);
    free(part);
  }
  free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static const uint8_t codings[] = {0x00, 0x01, 0x03, 0x08};
  if (size == 0) return 0;
  uint8_t ref = data[0];
  uint8_t dc = data[0] < 0x80 ? codings[data[0] & 3] : data[0];
  const uint8_t *rest = data + 1;
  size_t len = size - 1;

  check_encode((const char *)rest, len, ref);
  check_decode(dc, rest, len);
  return 0;
}
