/* test_guard.c - request rates and buckets, the held-accounts set, countries
   by calling code. */
#include "api/api_int.h"
#include "core/kk_err.h"
#include "core/kk_hold.h"
#include "kk_test.h"
#include "phone/phone.h"

KK_TEST(guard_rate_parse) {
  struct kk_limit r;
  ASSERT_EQ(kk_limit_parse("200/s", &r), 0);
  ASSERT(r.per_ms > 0.1999 && r.per_ms < 0.2001);
  ASSERT(r.burst > 199.9 && r.burst < 200.1);
  ASSERT_EQ(kk_limit_parse("6000/m:50", &r), 0);
  ASSERT(r.per_ms > 0.0999 && r.per_ms < 0.1001);
  ASSERT(r.burst > 49.9 && r.burst < 50.1);
  ASSERT_EQ(kk_limit_parse("10/h", &r), 0);
  ASSERT(r.burst >= 1); /* at least one request */
  ASSERT_EQ(kk_limit_parse("0", &r), 0);
  ASSERT(r.per_ms == 0);
  static const char *bad[] = {"", "200", "200/d", "-1/s", "x/s", "200/s:", "200/s:0", "200/s 1"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    ASSERT_EQ(kk_limit_parse(bad[i], &r), KK_EINVAL);
}

KK_TEST(guard_bucket) {
  struct kk_limit r;
  ASSERT_EQ(kk_limit_parse("10/s:3", &r), 0);
  struct kk_bucket b = {0};
  int64_t t = 1000;
  for (int i = 0; i < 3; i++) {
    ASSERT_EQ(kk_bucket_wait(&b, &r, t), 0);
    kk_bucket_take(&b, &r);
  }
  int64_t w = kk_bucket_wait(&b, &r, t);
  ASSERT(w > 0 && w <= 101);
  ASSERT_EQ(kk_bucket_wait(&b, &r, t + 100), 0);   /* one token after 100 ms */
  kk_bucket_take(&b, &r);
  ASSERT_EQ(kk_bucket_wait(&b, &r, t + 100000), 0);
  ASSERT(b.tokens <= 3.0001);                  /* never over the burst */
  struct kk_limit off = {0};
  ASSERT_EQ(kk_bucket_wait(&b, &off, t), 0);
}

KK_TEST(guard_hold_set) {
  struct kk_hold h = {0};
  ASSERT_EQ(kk_hold_has(&h, 5), 0);
  ASSERT_EQ(kk_hold_has(NULL, 5), 0);
  for (int64_t id = 20; id > 0; id -= 2) kk_hold_set(&h, id, 1);
  kk_hold_set(&h, 4, 1);
  ASSERT_EQ((long long)h.n, 10);
  ASSERT_EQ(kk_hold_has(&h, 4), 1);
  ASSERT_EQ(kk_hold_has(&h, 5), 0);
  kk_hold_set(&h, 4, 0);
  ASSERT_EQ(kk_hold_has(&h, 4), 0);
  ASSERT_EQ(kk_hold_has(&h, 20), 1);
  ASSERT_EQ(kk_hold_has(&h, 2), 1);
  kk_hold_fini(&h);
}

KK_TEST(guard_country) {
  static const struct {
    const char *num, *iso;
  } ok[] = {{"79161234567", "RU"}, {"77011234567", "KZ"},  {"76012345678", "KZ"},
            {"12125551234", "US"}, {"14165551234", "CA"},  {"18765551234", "JM"},
            {"380501234567", "UA"}, {"4915123456789", "DE"}, {"998901234567", "UZ"},
            {"441234567890", "GB"}};
  char iso[3];
  for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
    ASSERT_EQ(phone_country(ok[i].num, iso), 0);
    ASSERT_STR_EQ(iso, ok[i].iso);
  }
  ASSERT_EQ(phone_country("8881234567", iso), KK_ENOENT);
}
