/* test_phone_plan.c - the numbering-plan register: parsing and lookup. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/kk_err.h"
#include "kk_test.h"
#include "phone/phone_plan.h"

static const char DEF[] =
    "\xEF\xBB\xBF" "АВС/ DEF;От;До;Емкость;Оператор;Регион;Территория ГАР;ИНН\n"
    "911;4500000;4999999;500000;ПАО \"Мобильные ТелеСистемы\";Калининградская обл.;"
    "Калининградская область;7740000076\r\n"
    "913;8900000;9599999;700000;ПАО \"МТС\";Новосибирская обл.;Новосибирская область;7740000076\n"
    "913;9600000;9600000;1;ПАО \"МТС\";Новосибирская обл.;Новосибирская область;7740000076\n"
    "954;1010000;1019999;10000;ЗАО \"ДЖИ ТИ ЭН ТИ\";Российская Федерация;Российская Федерация;"
    "7720585980\n"
    "\n"
    "999;0000000;0000099;100;ООО \"Норильск\";Красноярский край;"
    "г. Норильск|г.о. город Норильск|Красноярский край;123\n"
    /* skipped: wrong field count, bad code, reversed range, no holder, overlap */
    "924;2300000;2699999;400000;ПАО \"МегаФон\";Приморский край\n"
    "92x;2300000;2699999;400000;A;B;C;1\n"
    "924;2699999;2300000;400000;A;B;C;1\n"
    "925;0000000;0000009;10;;B;C;1\n"
    "913;9000000;9000009;10;ООО \"Другой\";Новосибирская обл.;Новосибирская область;777";

static const char TZ[] =
    "territory_gar;iana_tz;utc_offset;msk_offset;note;def_rows\n"
    "Калининградская область;Europe/Kaliningrad;+2;+-1;;113\n"
    "Новосибирская область;Asia/Novosibirsk;+7;+4;;248\n"
    "Российская Федерация;;;;\"nationwide; no single region\";37\n"
    "г. Норильск|г.о. город Норильск|Красноярский край;Asia/Krasnoyarsk;+7:00;+4;;1\n";

KK_TEST(phone_plan_parse_and_lookup) {
  struct phone_plan *p;
  int skipped = -1;
  ASSERT_EQ(phone_plan_parse(DEF, strlen(DEF), TZ, strlen(TZ), &p, &skipped), 0);
  ASSERT_EQ(phone_plan_size(p), 5);
  ASSERT_EQ(skipped, 5);
  struct phone_plan_info in;
  ASSERT_EQ(phone_plan_lookup(p, "79114512345", &in), 0);
  /* one INN, two spellings: the one with more numbers names both */
  ASSERT_STR_EQ(in.operator_name, "ПАО \"МТС\"");
  ASSERT_STR_EQ(in.inn, "7740000076");
  ASSERT_STR_EQ(in.region, "Калининградская область");
  ASSERT_STR_EQ(in.timezone, "Europe/Kaliningrad");
  ASSERT_EQ(in.utc_offset_min, 120);
  /* range edges */
  ASSERT_EQ(phone_plan_lookup(p, "79114500000", &in), 0);
  ASSERT_EQ(phone_plan_lookup(p, "79114999999", &in), 0);
  ASSERT_EQ(phone_plan_lookup(p, "79114499999", &in), KK_ENOENT);
  ASSERT_EQ(phone_plan_lookup(p, "79115000000", &in), KK_ENOENT);
  ASSERT_EQ(phone_plan_lookup(p, "79139600000", &in), 0);
  ASSERT_STR_EQ(in.timezone, "Asia/Novosibirsk");
  ASSERT_EQ(in.utc_offset_min, 420);
  /* the overlapping range was dropped: the first one answers */
  ASSERT_EQ(phone_plan_lookup(p, "79139000005", &in), 0);
  ASSERT_STR_EQ(in.inn, "7740000076");
  /* nationwide: no region, no zone */
  ASSERT_EQ(phone_plan_lookup(p, "79541015555", &in), 0);
  ASSERT_STR_EQ(in.region, "");
  ASSERT_STR_EQ(in.timezone, "");
  /* a municipality path: the subject is its last part */
  ASSERT_EQ(phone_plan_lookup(p, "79990000050", &in), 0);
  ASSERT_STR_EQ(in.region, "Красноярский край");
  ASSERT_STR_EQ(in.timezone, "Asia/Krasnoyarsk");
  /* not a Russian mobile number, or not a number */
  static const char *none[] = {"", "7911451234", "791145123456", "380501234567", "7911451234x",
                               "74951234567", "10000000000"};
  for (size_t i = 0; i < sizeof none / sizeof none[0]; i++)
    ASSERT_EQ(phone_plan_lookup(p, none[i], &in), KK_ENOENT);
  phone_plan_free(p);
}

KK_TEST(phone_plan_windows_1251_and_empty) {
  /* "913;8900000;9599999;700000;МТС;Новосибирск;Новосибирская область;1" in cp1251 */
  static const char cp[] = "913;8900000;9599999;700000;\xcc\xd2\xd1;X;"
                           "\xcd\xee\xe2\xee\xf1\xe8\xe1\xe8\xf0\xf1\xea\xe0\xff "
                           "\xee\xe1\xeb\xe0\xf1\xf2\xfc;1\n";
  struct phone_plan *p;
  ASSERT_EQ(phone_plan_parse(cp, strlen(cp), TZ, strlen(TZ), &p, NULL), 0);
  struct phone_plan_info in;
  ASSERT_EQ(phone_plan_lookup(p, "79139123456", &in), 0);
  ASSERT_STR_EQ(in.operator_name, "МТС");
  ASSERT_STR_EQ(in.timezone, "Asia/Novosibirsk");
  phone_plan_free(p);
  ASSERT_EQ(phone_plan_parse("", 0, "", 0, &p, NULL), KK_EINVAL);
  ASSERT(p == NULL);
  static const char junk[] = "a;b;c\n;;;;;;;\n\"\n";
  ASSERT_EQ(phone_plan_parse(junk, strlen(junk), "", 0, &p, NULL), KK_EINVAL);
  ASSERT_EQ(phone_plan_open("/nonexistent-folder", &p), KK_EIO);
}

/* The register itself (KASKAD_NUMBERING or ../shared/data/numbering-ru):
   numbers of four time zones. A register that is missing or unreadable is a
   failure, never a test not run. */
KK_TEST(phone_plan_register_four_cities) {
  const char *dir = getenv("KASKAD_NUMBERING");
  if (dir == NULL) dir = "../shared/data/numbering-ru";
  struct phone_plan *p;
  int rc = phone_plan_open(dir, &p);
  if (rc != 0) kk_test_fail(__FILE__, __LINE__, "no numbering register at %s (rc %d)", dir, rc);
  ASSERT(phone_plan_size(p) > 10000);
  static const struct {
    const char *phone, *inn, *tz;
    int off;
  } want[] = {
      {"79114512345", "7740000076", "Europe/Kaliningrad", 120}, /* MTS, Kaliningrad */
      {"79161234567", "7740000076", "Europe/Moscow", 180},      /* MTS, Moscow */
      {"79139123456", "7740000076", "Asia/Novosibirsk", 420},   /* MTS, Novosibirsk */
      {"79242345678", "7812014560", "Asia/Vladivostok", 600},   /* MegaFon, Vladivostok */
  };
  for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
    struct phone_plan_info in;
    ASSERT_EQ(phone_plan_lookup(p, want[i].phone, &in), 0);
    ASSERT_STR_EQ(in.inn, want[i].inn);
    ASSERT_STR_EQ(in.timezone, want[i].tz);
    ASSERT_EQ(in.utc_offset_min, want[i].off);
    ASSERT(in.operator_name[0] != '\0' && in.region[0] != '\0');
  }
  phone_plan_free(p);
}
