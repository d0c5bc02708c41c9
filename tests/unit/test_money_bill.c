/* test_money_bill.c - the failures a provider does not bill. */
#include "kk_test.h"
#include "money/money_bill.h"

KK_TEST(money_bill_sms_receipts_and_submit_errors) {
  ASSERT_EQ(money_unbilled("sms", "REJECTD err:001"), 1);
  ASSERT_EQ(money_unbilled("sms", "rejectd"), 1);
  ASSERT_EQ(money_unbilled("sms", "ESME_RINVDSTADR (0x0000000b)"), 1);
  ASSERT_EQ(money_unbilled("sms", "UNDELIV err:001"), 0);
  ASSERT_EQ(money_unbilled("sms", "EXPIRED"), 0);
  ASSERT_EQ(money_unbilled("sms", "DELETED"), 0);
  ASSERT_EQ(money_unbilled("sms", NULL), 0);
  ASSERT_EQ(money_unbilled("sms", ""), 0);
}

KK_TEST(money_bill_messengers_and_email) {
  ASSERT_EQ(money_unbilled("whatsapp", "131026: message undeliverable"), 1);
  ASSERT_EQ(money_unbilled("viber", NULL), 1);
  ASSERT_EQ(money_unbilled("telegram", "Forbidden: bot was blocked by the user"), 1);
  ASSERT_EQ(money_unbilled("email", "550 no such user"), 0);
  ASSERT_EQ(money_unbilled(NULL, "x"), 0);
}
