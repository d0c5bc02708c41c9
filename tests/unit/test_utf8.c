/*
 * test_utf8.c - kk_utf8: what counts as valid UTF-8, and copies that cut
 * only at character boundaries and replace malformed bytes with U+FFFD.
 */
#include <stdlib.h>
#include <string.h>

#include "core/kk_utf8.h"
#include "kk_test.h"

#define V(s) kk_utf8_valid((s), sizeof(s) - 1)

KK_TEST(utf8_valid) {
  ASSERT(V(""));
  ASSERT(V("plain ascii"));
  ASSERT(V("Ваш код: 1234"));
  ASSERT(V("\xF0\x9F\x98\x80"));            /* U+1F600 */
  ASSERT(V("\xF4\x8F\xBF\xBF"));            /* U+10FFFF */
  ASSERT(V("\xEF\xBF\xBD"));                /* U+FFFD */
  ASSERT(!V("\xff"));
  ASSERT(!V("\x80"));                       /* a lone continuation byte */
  ASSERT(!V("\xD1"));                       /* a cut two-byte character */
  ASSERT(!V("ab\xD1"));
  ASSERT(!V("\xE2\x82"));                   /* a cut three-byte character */
  ASSERT(!V("\xC0\xAF"));                   /* overlong '/' */
  ASSERT(!V("\xE0\x80\xAF"));               /* overlong */
  ASSERT(!V("\xF0\x80\x80\xAF"));           /* overlong */
  ASSERT(!V("\xED\xA0\x80"));               /* surrogate U+D800 */
  ASSERT(!V("\xF4\x90\x80\x80"));           /* U+110000 */
  ASSERT(!V("\xF5\x80\x80\x80"));
  ASSERT(!kk_utf8_valid("a\0b", 3));        /* NUL inside */
  ASSERT_EQ(kk_utf8_char_len("я", 2), 2);
  ASSERT_EQ(kk_utf8_char_len("я", 1), 0);
  ASSERT_EQ(kk_utf8_char_len("", 1), 0);
}

KK_TEST(utf8_cut_and_copy) {
  const char *s = "яяя";                    /* 6 bytes */
  ASSERT_EQ(kk_utf8_cut(s, 6, 6), 6);
  ASSERT_EQ(kk_utf8_cut(s, 6, 5), 4);
  ASSERT_EQ(kk_utf8_cut(s, 6, 4), 4);
  ASSERT_EQ(kk_utf8_cut(s, 6, 1), 0);
  ASSERT_EQ(kk_utf8_cut("a\xF0\x9F\x98\x80", 5, 4), 1);
  char out[6];
  ASSERT_EQ(kk_utf8_copy(out, sizeof out, s, 6), 4);   /* 5 bytes of room: two letters */
  ASSERT_STR_EQ(out, "яя");
  ASSERT_EQ(kk_utf8_copy(out, 1, s, 6), 0);
  ASSERT_STR_EQ(out, "");
  ASSERT_EQ(kk_utf8_copy(out, sizeof out, "abc", 3), 3);
  ASSERT_STR_EQ(out, "abc");
  /* The stored idempotency key of 64 letters, read into 128 bytes. */
  char key[129], small[128];
  for (int i = 0; i < 64; i++) memcpy(key + 2 * i, "я", 2);
  key[128] = '\0';
  ASSERT_EQ(kk_utf8_copy(small, sizeof small, key, 128), 126);
  ASSERT(kk_utf8_valid(small, strlen(small)));
}

KK_TEST(utf8_sanitize) {
  char out[32];
  ASSERT_EQ(kk_utf8_sanitize(out, sizeof out, "ok", 2), 2);
  ASSERT_STR_EQ(out, "ok");
  ASSERT_EQ(kk_utf8_sanitize(out, sizeof out, "/\xff", 2), 4);
  ASSERT_STR_EQ(out, "/\xEF\xBF\xBD");
  ASSERT_EQ(kk_utf8_sanitize(out, sizeof out, "a\0b", 3), 5);
  ASSERT_STR_EQ(out, "a\xEF\xBF\xBD" "b");
  /* A cut character at the end: its lead byte is replaced. */
  ASSERT_EQ(kk_utf8_sanitize(out, sizeof out, "я\xD1", 3), 5);
  ASSERT_STR_EQ(out, "я\xEF\xBF\xBD");
  /* Too long: stops at a whole character that fits. */
  ASSERT_EQ(kk_utf8_sanitize(out, 4, "яя", 4), 2);
  ASSERT_STR_EQ(out, "я");
  ASSERT_EQ(kk_utf8_sanitize(out, 4, "a\xff", 2), 1);
  ASSERT_STR_EQ(out, "a");
  size_t n;
  char *d = kk_utf8_sanitize_dup("\xff\xfe\x80", 3, &n);
  ASSERT_EQ(n, 9);
  ASSERT(kk_utf8_valid(d, n));
  free(d);
  /* Whatever the bytes, the result is valid. */
  unsigned char all[256];
  for (int i = 0; i < 256; i++) all[i] = (unsigned char)(255 - i);
  char big[800];
  n = kk_utf8_sanitize(big, sizeof big, (const char *)all, sizeof all);
  ASSERT(kk_utf8_valid(big, n));
  ASSERT_EQ(strlen(big), n);
}
