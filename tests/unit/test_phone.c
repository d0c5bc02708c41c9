/* test_phone.c - E.164 normalisation. */
#include "core/kk_err.h"
#include "kk_test.h"
#include "phone/phone.h"

KK_TEST(phone_forms) {
  static const struct {
    const char *in, *out;
  } ok[] = {
      {"+79161234567", "79161234567"},  {"79161234567", "79161234567"},
      {"89161234567", "79161234567"},   {"9161234567", "79161234567"},
      {"+7 (916) 123-45-67", "79161234567"}, {"8 916 123 45 67", "79161234567"},
      {"+380501234567", "380501234567"}, {"+4915123456789", "4915123456789"},
  };
  char out[32];
  for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
    ASSERT_EQ(phone_normalize(ok[i].in, out, sizeof out), 0);
    ASSERT_STR_EQ(out, ok[i].out);
  }
  static const char *bad[] = {"", "+", "abc", "12345", "+7916123456", "+791612345678",
                              "7916123456a", "+1234567890123456", "0123456789"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    ASSERT_EQ(phone_normalize(bad[i], out, sizeof out), KK_EINVAL);
}
