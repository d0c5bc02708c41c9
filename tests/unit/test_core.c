/* test_core.c - kk_buf and kk_err. */
#include <string.h>

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

KK_TEST(core_buf_printf_room) {
  struct kk_buf b;
  kk_buf_init(&b, 100);
  ASSERT_EQ(kk_buf_printf(&b, "%s", "ab"), 0);     /* the first: no room yet */
  ASSERT_EQ(kk_buf_printf(&b, "-%d-", 7), 0);      /* into the room there is */
  ASSERT_STR_EQ(b.p, "ab-7-");
  size_t room = b.cap - b.len;
  char big[200];
  memset(big, 'x', sizeof big);
  big[room + 10] = '\0';                          /* more than the room: grown */
  ASSERT_EQ(kk_buf_printf(&b, "%s", big), 0);
  ASSERT_EQ(b.len, 5 + room + 10);
  ASSERT(strncmp(b.p, "ab-7-xxx", 8) == 0);
  /* past the cap: refused, the buffer as it was */
  size_t len = b.len;
  big[100] = '\0';
  ASSERT_EQ(kk_buf_printf(&b, "%s", big), KK_ENOSPC);
  ASSERT_EQ(b.len, len);
  ASSERT_EQ(strlen(b.p), len);
  kk_buf_fini(&b);
}

KK_TEST(core_err_names) {
  ASSERT_STR_EQ(kk_err_name(KK_EAGAIN), "EAGAIN");
  ASSERT_STR_EQ(kk_strerror(KK_OK), "ok");
  ASSERT_STR_EQ(kk_strerror(-999), "unknown error");
}
