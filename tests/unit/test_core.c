/* test_core.c - kk_buf and kk_err. */
#include "core/kk_buf.h"
#include "core/kk_err.h"
#include "kk_test.h"

KK_TEST(core_buf_cap) {
  struct kk_buf b;
  kk_buf_init(&b, 8);
  ASSERT_EQ(kk_buf_puts(&b, "abcd"), 0);
  ASSERT_EQ(kk_buf_printf(&b, "%d", 1234), 0);
  ASSERT_EQ(kk_buf_puts(&b, "x"), KK_ENOSPC);
  ASSERT_STR_EQ(b.p, "abcd1234");
  kk_buf_consume(&b, 2);
  ASSERT_STR_EQ(b.p, "cd1234");
  kk_buf_fini(&b);
}

KK_TEST(core_err_names) {
  ASSERT_STR_EQ(kk_err_name(KK_EAGAIN), "EAGAIN");
  ASSERT_STR_EQ(kk_strerror(KK_OK), "ok");
  ASSERT_STR_EQ(kk_strerror(-999), "unknown error");
}
