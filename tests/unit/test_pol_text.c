/* test_pol_text.c - text as the rules compare it: case, ё, look-alikes,
   separators inside words; stop words matched whole. */
#include <stdint.h>
#include <string.h>
#include <unicode/uchar.h>

#include "core/kk_utf8.h"
#include "kk_test.h"
#include "policy/pol_text.h"

KK_TEST(pol_text_normalizes) {
  static const struct {
    const char *in, *out;
  } cases[] = {
      {"СТОП", "стоп"},
      {"  Stop!!! ", "stop"},
      {"CTOП", "стоп"},                    /* Latin C, T, O in a Cyrillic word */
      {"Ёлка и ёж", "елка и еж"},
      {"в.о.д.к.а", "водка"},
      {"в-о-д-к-а по 100 р", "водка по 100 р"},
      {"в о д к а", "водка"},
      {"я и ты", "я и ты"},                /* two one-letter words stay apart */
      {"vo-dka", "vo dka"},
      {"онлайн-казино", "онлайн казино"},
      {"v.o.d.k.a", "vodka"},
      {"B0ДKA", "водка"},                   /* digits and Latin in Cyrillic */
      {"Order 100500 is ready", "order 100500 is ready"},
      {"Ваш код: 1234.", "ваш код 1234"},
      {"🙂👍", ""},
      {"ГРУППА «ВИНО»", "группа вино"},
  };
  char out[256];
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    size_t n = pol_text_normalize(cases[i].in, strlen(cases[i].in), out, sizeof out);
    ASSERT_STR_EQ(out, cases[i].out);
    ASSERT_EQ(n, strlen(cases[i].out));
  }
  ASSERT_EQ(pol_text_normalize("\xff", 1, out, sizeof out), 0);
  /* a text longer than out is cut at a word */
  char small[8];
  pol_text_normalize("один два три", strlen("один два три"), small, sizeof small);
  ASSERT_STR_EQ(small, "");
  pol_text_normalize("ab cd ef", 8, small, sizeof small);
  ASSERT_STR_EQ(small, "ab cd");
}

KK_TEST(pol_text_stop_words) {
  static const char *const stop[] = {"STOP", "СТОП", "ОТПИСКА", "ОТПИСАТЬСЯ", "UNSUBSCRIBE"};
  static const char *yes[] = {"stop", "Стоп.", " СТОП ", "CTOП", "отписаться!", "Unsubscribe",
                              "с т о п"};
  static const char *no[] = {"stop please", "не стоп", "стопка", "", "!!!", "Подписаться"};
  for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++)
    if (!pol_text_is_one_of(yes[i], strlen(yes[i]), stop, 5))
      kk_test_fail(__FILE__, __LINE__, "\"%s\" is not taken as a stop word", yes[i]);
  for (size_t i = 0; i < sizeof no / sizeof no[0]; i++)
    if (pol_text_is_one_of(no[i], strlen(no[i]), stop, 5))
      kk_test_fail(__FILE__, __LINE__, "\"%s\" is taken as a stop word", no[i]);
}

/* The table that folds ASCII, Latin-1 and Cyrillic folds as ICU does; a
   text with other letters (ß, Greek) is folded by ICU. */
KK_TEST(pol_text_fold_table_matches_icu) {
  static const uint32_t ranges[][2] = {{'A', 'Z'}, {0xC0, 0xDE}, {0x401, 0x401},
                                       {0x410, 0x44F}, {0x451, 0x451}};
  for (size_t r = 0; r < sizeof ranges / sizeof ranges[0]; r++)
    for (uint32_t cp = ranges[r][0]; cp <= ranges[r][1]; cp++) {
      if (cp == 0xD7) continue;   /* ×, not a letter */
      uint8_t in[16], want[16];
      size_t n = 0, m = 0;
      in[n++] = 'q';
      n += kk_utf8_put(cp, in + n);
      in[n++] = 'q';
      in[n] = '\0';
      UChar32 f = u_foldCase((UChar32)cp, U_FOLD_CASE_DEFAULT);
      if (f == 0x451) f = 0x435;   /* ё as е */
      want[m++] = 'q';
      m += kk_utf8_put((uint32_t)f, want + m);
      want[m++] = 'q';
      want[m] = '\0';
      char out[32];
      pol_text_normalize((const char *)in, n, out, sizeof out);
      if (strcmp(out, (const char *)want) != 0)
        kk_test_fail(__FILE__, __LINE__, "U+%04X: got \"%s\", want \"%s\"", cp, out, want);
    }
  char out[64];
  pol_text_normalize("STRAßE ΣΟΦΙΑ", strlen("STRAßE ΣΟΦΙΑ"), out, sizeof out);
  ASSERT_STR_EQ(out, "strasse σοφια");
}
