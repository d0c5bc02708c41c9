/* test_pol_content.c - prohibited content: tricky spellings are caught,
   ordinary service texts are not. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kk_test.h"
#include "policy/pol_content.h"

static int check(const char *text, unsigned enabled, struct pol_content_hit *hit) {
  return pol_content_check(text, strlen(text), enabled, NULL, 0, hit);
}

KK_TEST(pol_content_catches_tricky_spellings) {
  static const struct {
    const char *text;
    enum pol_category cat;
    const char *words;
  } hits[] = {
      {"Скидка 30% на водку до воскресенья!", POL_CAT_ALCOHOL, "водку"},
      {"Скидка на ВоДкУ", POL_CAT_ALCOHOL, "водку"},
      {"Акция: в.о.д.к.а по 299 р", POL_CAT_ALCOHOL, "водка"},
      {"в о д к а со скидкой", POL_CAT_ALCOHOL, "водка"},
      {"B0ДKA дёшево", POL_CAT_ALCOHOL, "водка"},          /* Latin B, K and a zero */
      {"Коньячный дом приглашает", POL_CAT_ALCOHOL, "коньячный"},
      {"Новое пиво в баре", POL_CAT_ALCOHOL, "пиво"},
      {"Craft beer night", POL_CAT_ALCOHOL, "beer"},
      {"Игристое к празднику", POL_CAT_ALCOHOL, "игристое"},
      {"Вейпы и жидкости в наличии", POL_CAT_TOBACCO, "вейпы"},
      {"Кальянная на Арбате", POL_CAT_TOBACCO, "кальянная"},
      {"Электронные сигареты оптом", POL_CAT_TOBACCO, "электронные сигареты"},
      {"Травматические пистолеты без лицензии", POL_CAT_WEAPONS, "травматические пистолеты"},
      {"Купить п-а-т-р-о-н-ы", POL_CAT_WEAPONS, "патроны"},
      {"Антибиотики без рецепта с доставкой", POL_CAT_MEDICINES, "антибиотики"},
      {"Виагра недорого", POL_CAT_MEDICINES, "виагра"},
      {"Онлайн-казино: бонус 100%", POL_CAT_GAMBLING, "казино"},
      {"Ставки на спорт с кэшбэком", POL_CAT_GAMBLING, "ставки на спорт"},
      {"Играй в покер!", POL_CAT_GAMBLING, "покер"},
      {"Гарантированный доход 30% в месяц", POL_CAT_PYRAMIDS, "гарантированный доход"},
      {"Пассивный доход без вложений", POL_CAT_PYRAMIDS, "пассивный доход"},
      {"Double your money in a week", POL_CAT_PYRAMIDS, "double your money"},
  };
  for (size_t i = 0; i < sizeof hits / sizeof hits[0]; i++) {
    struct pol_content_hit hit;
    if (!check(hits[i].text, POL_CAT_ALL, &hit))
      kk_test_fail(__FILE__, __LINE__, "\"%s\" passes", hits[i].text);
    ASSERT_STR_EQ(pol_category_name(hit.category), pol_category_name(hits[i].cat));
    ASSERT_STR_EQ(hit.words, hits[i].words);
  }
  /* a category switched off */
  struct pol_content_hit hit;
  ASSERT_EQ(check("Новое пиво в баре", POL_CAT_ALL & ~(1u << POL_CAT_ALCOHOL), &hit), 0);
}

KK_TEST(pol_content_own_words) {
  static const char *const own[] = {"конкурент", "быстрые деньги", "займ*"};
  struct pol_content_hit hit;
  const char *t = "Займы до зарплаты за 5 минут";
  ASSERT_EQ(pol_content_check(t, strlen(t), POL_CAT_ALL, own, 3, &hit), 1);
  ASSERT_EQ(hit.category, POL_CAT_OWN);
  ASSERT_STR_EQ(hit.words, "займы");
  t = "Быстрые деньги: звоните";
  ASSERT_EQ(pol_content_check(t, strlen(t), POL_CAT_ALL, own, 3, &hit), 1);
  ASSERT_STR_EQ(hit.words, "быстрые деньги");
  t = "Быстрые доставки";
  ASSERT_EQ(pol_content_check(t, strlen(t), POL_CAT_ALL, own, 3, &hit), 0);
  ASSERT_EQ(pol_content_check(t, strlen(t), 0, own, 3, &hit), 0);
  ASSERT_EQ(pol_category_of("gambling"), POL_CAT_GAMBLING);
  ASSERT_EQ(pol_category_of("cats"), -1);
}

/* No ordinary service message trips the filter (tests/data/policy). */
KK_TEST(pol_content_no_false_alarm_on_service_texts) {
  char path[512];
  snprintf(path, sizeof path, "%s/policy/service_texts.txt", kk_test_data_dir());
  size_t len;
  char *all = (char *)kk_test_read_file(path, &len);
  ASSERT(all != NULL);
  int lines = 0;
  for (char *line = strtok(all, "\n"); line; line = strtok(NULL, "\n")) {
    struct pol_content_hit hit;
    if (check(line, POL_CAT_ALL, &hit))
      kk_test_fail(__FILE__, __LINE__, "\"%s\": %s (%s)", line, pol_category_name(hit.category),
                   hit.words);
    lines++;
  }
  ASSERT(lines >= 200);
  free(all);
}
