/*
 * test_sms.c - the SMS text encoder: coding choice, unit and segment counts,
 * splitting into concatenated parts, exact part bytes, UTF-8 validation and
 * decoding of received short messages.
 */
#include "core/kk_err.h"
#include "kk_test.h"
#include "sms/sms_enc.h"
#include "sms/sms_gsm7.h"

#define TEXT_MAX 8192

/* A test text: a repeated na times, then b nb times, then c nc times. */
struct text_case {
  const char *name;
  const char *a;
  int na;
  const char *b;
  int nb;
  const char *c;
  int nc;
  int rc;                  /* what sms_analyze() and sms_encode() return */
  enum sms_coding coding;
  size_t chars;
  size_t units;
  int segments;
};

#define GSM SMS_CODING_GSM7
#define UCS SMS_CODING_UCS2

static const struct text_case cases[] = {
  {"empty", "", 0, "", 0, "", 0, KK_EINVAL, GSM, 0, 0, 0},
  {"one_char", "a", 1, "", 0, "", 0, 0, GSM, 1, 1, 1},
  {"gsm_160", "a", 160, "", 0, "", 0, 0, GSM, 160, 160, 1},
  {"gsm_161", "a", 161, "", 0, "", 0, 0, GSM, 161, 161, 2},
  {"gsm_306", "a", 306, "", 0, "", 0, 0, GSM, 306, 306, 2},
  {"gsm_307", "a", 307, "", 0, "", 0, 0, GSM, 307, 307, 3},
  {"cyr_70", "ж", 70, "", 0, "", 0, 0, UCS, 70, 70, 1},
  {"cyr_71", "ж", 71, "", 0, "", 0, 0, UCS, 71, 71, 2},
  {"cyr_134", "ж", 134, "", 0, "", 0, 0, UCS, 134, 134, 2},
  {"cyr_135", "ж", 135, "", 0, "", 0, 0, UCS, 135, 135, 3},
  {"euro", "€", 1, "", 0, "", 0, 0, GSM, 1, 2, 1},
  {"caret", "^", 1, "", 0, "", 0, 0, GSM, 1, 2, 1},
  {"braces", "{}", 1, "", 0, "", 0, 0, GSM, 2, 4, 1},
  {"gsm_158_euro", "a", 158, "€", 1, "", 0, 0, GSM, 159, 160, 1},
  {"gsm_159_euro", "a", 159, "€", 1, "", 0, 0, GSM, 160, 161, 2},
  /* The euro would take septets 153 and 154 of part 1: it moves to part 2. */
  {"esc_straddle", "a", 152, "€", 1, "a", 10, 0, GSM, 163, 164, 2},
  /* 306 septets fit two parts of 153 only if the ESC pair could be split. */
  {"esc_straddle_extra_part", "a", 152, "€", 1, "a", 152, 0, GSM, 305, 306, 3},
  {"emoji_only", "\xF0\x9F\x98\x80", 1, "", 0, "", 0, 0, UCS, 1, 2, 1},
  {"emoji_fills_single", "ж", 68, "\xF0\x9F\x98\x80", 1, "", 0, 0, UCS, 69, 70, 1},
  {"emoji_over_single", "ж", 69, "\xF0\x9F\x98\x80", 1, "", 0, 0, UCS, 70, 71, 2},
  /* The pair would take units 67 and 68 of part 1: it moves to part 2. */
  {"emoji_part_edge", "ж", 66, "\xF0\x9F\x98\x80", 1, "ok", 2, 0, UCS, 71, 72, 2},
  {"emoji_extra_part", "ж", 66, "\xF0\x9F\x98\x80", 1, "ж", 66, 0, UCS, 133, 134, 3},
  {"mix_cyr_latin", "Привет, world!", 1, "", 0, "", 0, 0, UCS, 14, 14, 1},
  /* In UCS-2 an extension character is one unit like any other. */
  {"ext_in_ucs2", "Цена 5€ {скидка}", 1, "", 0, "", 0, 0, UCS, 16, 16, 1},
  {"at_sign", "@", 1, "", 0, "", 0, 0, GSM, 1, 1, 1},
  {"cr_lf", "a\r\nb", 1, "", 0, "", 0, 0, GSM, 4, 4, 1},
  {"basic_table", "@£$¥èéùìòÇØøÅåÄÖÑÜäöñüàßÉÆæ§¿¡¤ΔΦΓΛΩΠΨΣΘΞ_", 1, "", 0, "", 0, 0,
   GSM, 42, 42, 1},
  {"ext_table", "\f^{}\\[~]|€", 1, "", 0, "", 0, 0, GSM, 10, 20, 1},
  {"backtick", "`", 1, "", 0, "", 0, 0, UCS, 1, 1, 1},
  {"small_c_cedilla", "ç", 1, "", 0, "", 0, 0, UCS, 1, 1, 1},
  {"greek_small", "α", 1, "", 0, "", 0, 0, UCS, 1, 1, 1},
  {"gsm_then_cyr", "a", 100, "я", 1, "", 0, 0, UCS, 101, 101, 2},
  {"max_parts", "a", 153 * 16, "", 0, "", 0, 0, GSM, 2448, 2448, 16},
  {"too_big", "a", 153 * 16 + 1, "", 0, "", 0, KK_ETOOBIG, GSM, 2449, 2449, 17},
  {"too_big_ucs2", "ж", 67 * 16 + 1, "", 0, "", 0, KK_ETOOBIG, UCS, 1073, 1073, 17},
};

#define NCASES (sizeof cases / sizeof cases[0])

/* Fails the current test with the case name in the message. */
#define CASE_ASSERT(t, cond)                                                \
  do {                                                                      \
    if (!(cond))                                                            \
      kk_test_fail(__FILE__, __LINE__, "%s: assertion failed: %s", (t)->name, #cond); \
  } while (0)

static size_t append_rep(char *buf, size_t n, const char *s, int times) {
  size_t len = strlen(s);
  for (int i = 0; i < times; i++) {
    ASSERT(n + len < TEXT_MAX);
    memcpy(buf + n, s, len);
    n += len;
  }
  return n;
}

/* Builds the text of t into buf (TEXT_MAX bytes, NUL-ended); returns its length. */
static size_t build_text(const struct text_case *t, char *buf) {
  size_t n = 0;
  n = append_rep(buf, n, t->a, t->na);
  n = append_rep(buf, n, t->b, t->nb);
  n = append_rep(buf, n, t->c, t->nc);
  buf[n] = '\0';
  return n;
}

/*
 * Checks every part of e: the UDH, the payload size limits, that no ESC pair
 * or surrogate pair is cut at the end of a part, and that decoding the parts
 * in order gives back the original text.
 */
static void check_parts(const struct text_case *t, const char *text, size_t len,
                        const struct sms_encoded *e, uint8_t ref) {
  char back[TEXT_MAX];
  size_t n = 0;
  for (int k = 0; k < e->nparts; k++) {
    const struct sms_part *p = &e->part[k];
    const uint8_t *pay = p->data;
    size_t plen = p->len;
    if (e->udhi) {
      uint8_t udh[6] = {0x05, 0x00, 0x03, ref, (uint8_t)e->nparts, (uint8_t)(k + 1)};
      CASE_ASSERT(t, p->len > 6);
      ASSERT_MEM_EQ(p->data, udh, 6);
      pay += 6;
      plen -= 6;
    }
    CASE_ASSERT(t, plen > 0);
    if (e->coding == SMS_CODING_GSM7) {
      CASE_ASSERT(t, plen <= (e->udhi ? 153u : 160u));
      for (size_t i = 0; i < plen; i++) {
        CASE_ASSERT(t, pay[i] < 0x80);
        if (pay[i] == 0x1B) i++;
        CASE_ASSERT(t, i < plen);
      }
    } else {
      CASE_ASSERT(t, plen % 2 == 0);
      CASE_ASSERT(t, plen <= (e->udhi ? 134u : 140u));
      CASE_ASSERT(t, pay[plen - 2] < 0xD8 || pay[plen - 2] > 0xDB);
    }
    int rc = sms_decode((uint8_t)e->coding, pay, plen, back + n, sizeof back - n);
    CASE_ASSERT(t, rc >= 0);
    n += (size_t)rc;
  }
  CASE_ASSERT(t, n == len);
  CASE_ASSERT(t, memcmp(back, text, len) == 0);
}

KK_TEST(sms_analyze_table) {
  char text[TEXT_MAX];
  for (size_t i = 0; i < NCASES; i++) {
    const struct text_case *t = &cases[i];
    size_t len = build_text(t, text);
    struct sms_info info;
    int rc = sms_analyze(text, len, &info);
    CASE_ASSERT(t, rc == t->rc);
    CASE_ASSERT(t, info.coding == t->coding);
    CASE_ASSERT(t, info.chars == t->chars);
    CASE_ASSERT(t, info.units == t->units);
    CASE_ASSERT(t, info.segments == t->segments);
  }
}

KK_TEST(sms_encode_table_round_trip) {
  char text[TEXT_MAX];
  struct sms_encoded e;
  for (size_t i = 0; i < NCASES; i++) {
    const struct text_case *t = &cases[i];
    size_t len = build_text(t, text);
    uint8_t ref = (uint8_t)(0x40 + i);
    int rc = sms_encode(text, len, ref, &e);
    CASE_ASSERT(t, rc == t->rc);
    if (rc != 0) continue;
    CASE_ASSERT(t, e.coding == t->coding);
    CASE_ASSERT(t, e.nparts == t->segments);
    CASE_ASSERT(t, e.udhi == (t->segments > 1));
    check_parts(t, text, len, &e, ref);
  }
}

KK_TEST(sms_encode_gsm7_single_bytes) {
  struct sms_encoded e;
  const char *text = "@£$ Hi [x] €\r\n";
  const uint8_t want[] = {0x00, 0x01, 0x02, 0x20, 0x48, 0x69, 0x20, 0x1B, 0x3C, 0x78,
                          0x1B, 0x3E, 0x20, 0x1B, 0x65, 0x0D, 0x0A};
  ASSERT_EQ(sms_encode(text, strlen(text), 7, &e), 0);
  ASSERT_EQ(e.coding, SMS_CODING_GSM7);
  ASSERT_EQ(e.nparts, 1);
  ASSERT_EQ(e.udhi, 0);
  ASSERT_EQ(e.part[0].len, sizeof want);
  ASSERT_MEM_EQ(e.part[0].data, want, sizeof want);
}

KK_TEST(sms_encode_gsm7_concat_bytes) {
  /* 152 'a', then a euro that does not fit in part 1, then eight 'b'. */
  char text[TEXT_MAX];
  struct sms_encoded e;
  const struct text_case t = {"concat", "a", 152, "€", 1, "b", 8, 0, GSM, 0, 0, 0};
  size_t len = build_text(&t, text);
  ASSERT_EQ(sms_encode(text, len, 0xA7, &e), 0);
  ASSERT_EQ(e.nparts, 2);
  ASSERT_EQ(e.udhi, 1);

  uint8_t p1[6 + 152];
  memcpy(p1, "\x05\x00\x03\xA7\x02\x01", 6);
  memset(p1 + 6, 0x61, 152);
  ASSERT_EQ(e.part[0].len, sizeof p1);
  ASSERT_MEM_EQ(e.part[0].data, p1, sizeof p1);

  const uint8_t p2[] = {0x05, 0x00, 0x03, 0xA7, 0x02, 0x02, 0x1B, 0x65,
                        0x62, 0x62, 0x62, 0x62, 0x62, 0x62, 0x62, 0x62};
  ASSERT_EQ(e.part[1].len, sizeof p2);
  ASSERT_MEM_EQ(e.part[1].data, p2, sizeof p2);
}

KK_TEST(sms_encode_gsm7_full_parts) {
  /* 307 septets: two full parts of 153 and one septet in a third. */
  char text[TEXT_MAX];
  struct sms_encoded e;
  const struct text_case t = {"full", "x", 307, "", 0, "", 0, 0, GSM, 0, 0, 0};
  size_t len = build_text(&t, text);
  ASSERT_EQ(sms_encode(text, len, 0xFF, &e), 0);
  ASSERT_EQ(e.nparts, 3);
  ASSERT_EQ(e.part[0].len, 6 + 153);
  ASSERT_EQ(e.part[1].len, 6 + 153);
  ASSERT_EQ(e.part[2].len, 6 + 1);
  ASSERT_MEM_EQ(e.part[2].data, "\x05\x00\x03\xFF\x03\x03x", 7);
}

KK_TEST(sms_encode_ucs2_single_bytes) {
  struct sms_encoded e;
  const char *text = "Привет!";
  const uint8_t want[] = {0x04, 0x1F, 0x04, 0x40, 0x04, 0x38, 0x04, 0x32,
                          0x04, 0x35, 0x04, 0x42, 0x00, 0x21};
  ASSERT_EQ(sms_encode(text, strlen(text), 1, &e), 0);
  ASSERT_EQ(e.coding, SMS_CODING_UCS2);
  ASSERT_EQ(e.nparts, 1);
  ASSERT_EQ(e.udhi, 0);
  ASSERT_EQ(e.part[0].len, sizeof want);
  ASSERT_MEM_EQ(e.part[0].data, want, sizeof want);
}

KK_TEST(sms_encode_ucs2_emoji_at_boundary) {
  /* 66 units of Cyrillic leave one unit in part 1: the pair goes to part 2. */
  char text[TEXT_MAX];
  struct sms_encoded e;
  const struct text_case t = {"emoji", "ж", 66, "\xF0\x9F\x98\x80", 1, "ok", 2, 0, UCS, 0, 0, 0};
  size_t len = build_text(&t, text);
  ASSERT_EQ(sms_encode(text, len, 0x10, &e), 0);
  ASSERT_EQ(e.coding, SMS_CODING_UCS2);
  ASSERT_EQ(e.nparts, 2);
  ASSERT_EQ(e.udhi, 1);

  uint8_t p1[6 + 132];
  memcpy(p1, "\x05\x00\x03\x10\x02\x01", 6);
  for (int i = 0; i < 66; i++) {
    p1[6 + 2 * i] = 0x04;
    p1[7 + 2 * i] = 0x36;
  }
  ASSERT_EQ(e.part[0].len, sizeof p1);
  ASSERT_MEM_EQ(e.part[0].data, p1, sizeof p1);

  const uint8_t p2[] = {0x05, 0x00, 0x03, 0x10, 0x02, 0x02, 0xD8, 0x3D,
                        0xDE, 0x00, 0x00, 0x6F, 0x00, 0x6B, 0x00, 0x6F, 0x00, 0x6B};
  ASSERT_EQ(e.part[1].len, sizeof p2);
  ASSERT_MEM_EQ(e.part[1].data, p2, sizeof p2);
}

KK_TEST(sms_encode_ucs2_emoji_fits_part) {
  /* 65 units leave exactly two: the pair ends part 1. */
  char text[TEXT_MAX];
  struct sms_encoded e;
  const struct text_case t = {"emoji", "ж", 65, "\xF0\x9F\x98\x80", 1, "ж", 5, 0, UCS, 0, 0, 0};
  size_t len = build_text(&t, text);
  ASSERT_EQ(sms_encode(text, len, 0x11, &e), 0);
  ASSERT_EQ(e.nparts, 2);
  ASSERT_EQ(e.part[0].len, 6 + 134);
  ASSERT_MEM_EQ(e.part[0].data + 6 + 130, "\xD8\x3D\xDE\x00", 4);
  ASSERT_EQ(e.part[1].len, 6 + 10);
}

KK_TEST(sms_encode_errors_clear_output) {
  struct sms_encoded e;
  ASSERT_EQ(sms_encode("", 0, 1, &e), KK_EINVAL);
  ASSERT_EQ(e.nparts, 0);
  ASSERT_EQ(sms_encode("ab\xC0\xAF", 4, 1, &e), KK_EUTF8);
  ASSERT_EQ(e.nparts, 0);
}

KK_TEST(sms_utf8_invalid) {
  static const struct {
    const char *s;
    size_t len;
  } bad[] = {
    {"\xC0\x80", 2},              /* overlong NUL */
    {"\xC1\xBF", 2},              /* overlong two-byte */
    {"\xE0\x80\x80", 3},          /* overlong three-byte */
    {"\xE0\x9F\xBF", 3},          /* overlong U+07FF */
    {"\xF0\x80\x80\x80", 4},      /* overlong four-byte */
    {"\xF0\x8F\xBF\xBF", 4},      /* overlong U+FFFF */
    {"\xED\xA0\x80", 3},          /* high surrogate U+D800 */
    {"\xED\xBF\xBF", 3},          /* low surrogate U+DFFF */
    {"\xED\xA0\xBD\xED\xB8\x80", 6}, /* a surrogate pair written as UTF-8 */
    {"\xF4\x90\x80\x80", 4},      /* U+110000 */
    {"\xF5\x80\x80\x80", 4},      /* lead byte beyond the range */
    {"\xF8\x88\x80\x80\x80", 5},  /* five-byte form */
    {"\xFF", 1},
    {"\xFE", 1},
    {"\x80", 1},                  /* stray continuation */
    {"a\xBF", 2},
    {"\xE2\x82", 2},              /* truncated euro */
    {"abc\xC3", 4},               /* truncated at the end */
    {"\xF0\x9F\x98", 3},          /* truncated emoji */
    {"\xC3\x28", 2},              /* bad continuation */
    {"\xE2\x28\xA1", 3},
    {"\xF0\x9F\x28\x80", 4},
    {"a\0b", 3},                  /* U+0000 is refused too */
    {"\0", 1},
  };
  struct sms_info info;
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    int rc = sms_analyze(bad[i].s, bad[i].len, &info);
    if (rc != KK_EUTF8)
      kk_test_fail(__FILE__, __LINE__, "case %zu: rc %d, want KK_EUTF8", i, rc);
  }
}

KK_TEST(sms_utf8_valid_edges) {
  static const struct {
    const char *s;
    size_t len;
  } good[] = {
    {"\x7F", 1},
    {"\xC2\x80", 2},              /* U+0080 */
    {"\xDF\xBF", 2},              /* U+07FF */
    {"\xE0\xA0\x80", 3},          /* U+0800 */
    {"\xED\x9F\xBF", 3},          /* U+D7FF, just below the surrogates */
    {"\xEE\x80\x80", 3},          /* U+E000, just above them */
    {"\xEF\xBF\xBF", 3},          /* U+FFFF */
    {"\xF0\x90\x80\x80", 4},      /* U+10000 */
    {"\xF4\x8F\xBF\xBF", 4},      /* U+10FFFF */
    {"\x01", 1},                  /* U+0001 is valid, but not GSM */
  };
  struct sms_info info;
  for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
    int rc = sms_analyze(good[i].s, good[i].len, &info);
    if (rc != 0) kk_test_fail(__FILE__, __LINE__, "case %zu: rc %d, want 0", i, rc);
    ASSERT_EQ(info.coding, SMS_CODING_UCS2);
  }
}

/* Decodes and compares with the expected UTF-8 text. */
static void check_decode(int line, uint8_t dc, const char *in, size_t len, const char *want) {
  char out[256];
  int rc = sms_decode(dc, (const uint8_t *)in, len, out, sizeof out);
  if (rc != (int)strlen(want) || strcmp(out, want) != 0)
    kk_test_fail(__FILE__, line, "coding %u: rc %d \"%s\", want \"%s\"", dc, rc, out, want);
}

#define DECODE(dc, in, want) check_decode(__LINE__, (dc), (in), sizeof(in) - 1, (want))

KK_TEST(sms_decode_gsm7) {
  DECODE(0x00, "\x00\x01\x02\x03\x24\x40\x60\x7F", "@£$¥¤¡¿à");
  DECODE(0x00, "\x10\x1A\x11\x1C\x1F\x5F", "ΔΞ_ÆÉ§");
  DECODE(0x00, "Hi\x1B\x65!", "Hi€!");
  DECODE(0x00, "\x1B\x14\x1B\x28\x1B\x29\x1B\x2F\x1B\x3C\x1B\x3D\x1B\x3E\x1B\x40",
         "^{}\\[~]|");
  DECODE(0x00, "\x1B\x0A", "\f");
  DECODE(0x00, "a\r\nb", "a\r\nb");
  /* An extension code with no character falls back to the basic table. */
  DECODE(0x00, "\x1B\x41\x1B\x00", "A@");
  /* ESC ESC and a lone ESC at the end show as a space. */
  DECODE(0x00, "\x1B\x1Bx", " x");
  DECODE(0x00, "x\x1B", "x ");
  /* Octets that are not septets cannot be mapped. */
  DECODE(0x00, "a\x80\x1B\xFF", "a\xEF\xBF\xBD\xEF\xBF\xBD");
}

KK_TEST(sms_decode_ascii_latin1) {
  DECODE(0x01, "Hi \x80!", "Hi \xEF\xBF\xBD!");
  DECODE(0x03, "\xE9t\xE9 \xA3\xFF", "été £ÿ");
  DECODE(0x04, "caf\xE9", "café");     /* other codings are read as Latin-1 */
  DECODE(0x02, "\xC0", "À");
}

KK_TEST(sms_decode_ucs2) {
  DECODE(0x08, "\x04\x1F\x00\x21", "П!");
  DECODE(0x08, "\xD8\x3D\xDE\x00", "\xF0\x9F\x98\x80");
  DECODE(0x08, "\xDB\xFF\xDF\xFF", "\xF4\x8F\xBF\xBF");
  /* Lone surrogates become U+FFFD; the unit after a lone high one is kept. */
  DECODE(0x08, "\xD8\x3D\x00\x41", "\xEF\xBF\xBD" "A");
  DECODE(0x08, "\xDE\x00\x00\x41", "\xEF\xBF\xBD" "A");
  DECODE(0x08, "\x00\x41\xD8\x3D", "A\xEF\xBF\xBD");
  DECODE(0x08, "\xD8\x3D\xD8\x3D\xDE\x00", "\xEF\xBF\xBD\xF0\x9F\x98\x80");
  /* An odd last octet cannot be a unit. */
  DECODE(0x08, "\x00\x41\x00", "A\xEF\xBF\xBD");
}

KK_TEST(sms_decode_nul) {
  /* A zero character would end the C string early: it becomes U+FFFD. */
  DECODE(0x01, "a\x00" "b", "a\xEF\xBF\xBD" "b");
  DECODE(0x03, "\x00", "\xEF\xBF\xBD");
  DECODE(0x08, "\x00\x00\x00\x41", "\xEF\xBF\xBD" "A");
  /* In GSM-7 the zero septet is '@'. */
  DECODE(0x00, "a\x00", "a@");
}

KK_TEST(sms_gsm7_tables_agree) {
  /* Every basic septet but ESC and every extension code map both ways. */
  for (int c = 0; c < 0x80; c++) {
    if (c == SMS_GSM7_ESC) continue;
    if (sms_gsm7_from_cp(sms_gsm7_basic_cp((uint8_t)c)) != c)
      kk_test_fail(__FILE__, __LINE__, "basic septet 0x%02X does not map back", c);
  }
  int ext = 0;
  for (int c = 0; c < 0x80; c++) {
    int32_t cp = sms_gsm7_ext_cp((uint8_t)c);
    if (cp < 0) continue;
    ext++;
    if (sms_gsm7_from_cp((uint32_t)cp) != (SMS_GSM7_EXT | c))
      kk_test_fail(__FILE__, __LINE__, "extension code 0x%02X does not map back", c);
  }
  ASSERT_EQ(ext, 10);
  /* Nothing else is GSM-7: 127 basic characters and 10 extension ones. */
  int total = 0;
  for (uint32_t cp = 0; cp <= 0x10FFFF; cp++) total += sms_gsm7_from_cp(cp) >= 0;
  ASSERT_EQ(total, 127 + 10);
  ASSERT_EQ(sms_gsm7_from_cp(0x001B), -1);
  ASSERT_EQ(sms_gsm7_from_cp(0x0060), -1);   /* backtick */
  ASSERT_EQ(sms_gsm7_from_cp(0x00E7), -1);   /* small c with cedilla */
  ASSERT_EQ(sms_gsm7_from_cp(0x0391), -1);   /* Greek capital Alpha */
  ASSERT_EQ(sms_gsm7_from_cp(0x110000), -1);
}

KK_TEST(sms_decode_nospace) {
  char out[8];
  const uint8_t abc[] = {'a', 'b', 'c'};
  const uint8_t latin[] = {'h', 0xE9, 'l'};
  ASSERT_EQ(sms_decode(0x01, abc, 3, out, 4), 3);
  ASSERT_STR_EQ(out, "abc");
  ASSERT_EQ(sms_decode(0x01, abc, 3, out, 3), KK_ENOSPC);
  ASSERT_STR_EQ(out, "ab");
  /* A character that does not fit whole is left out. */
  ASSERT_EQ(sms_decode(0x03, latin, 3, out, 3), KK_ENOSPC);
  ASSERT_STR_EQ(out, "h");
  ASSERT_EQ(sms_decode(0x03, latin, 3, out, 1), KK_ENOSPC);
  ASSERT_STR_EQ(out, "");
  ASSERT_EQ(sms_decode(0x03, latin, 3, NULL, 0), KK_ENOSPC);
  ASSERT_EQ(sms_decode(0x08, NULL, 0, out, 1), 0);
  ASSERT_STR_EQ(out, "");
}
