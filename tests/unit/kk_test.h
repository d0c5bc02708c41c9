/*
 * kk_test.h - the unit test runner's registration and assertions.
 *
 * Each KK_TEST(name) registers itself at start-up; the runner (test_main.c)
 * runs every test in a forked child under alarm(), prints "ok N - name" or
 * "not ok N - name: file:line: detail", and ends with "N passed, N failed".
 * A test fails when an assertion fails, when it crashes or times out, and in
 * a sanitizer build when it leaks memory. Assertions print both values.
 */
#ifndef KK_TEST_H
#define KK_TEST_H

#include <stdint.h>
#include <stdio.h>
#include <string.h>

struct kk_test {
  const char *name;
  void (*fn)(void);
  struct kk_test *next;
};

void kk_test_register(struct kk_test *t);
void kk_test_fail(const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4), noreturn));
/* Hex-dumps n bytes of p into out (at most cap bytes, NUL-terminated). */
const char *kk_test_hex(const void *p, size_t n, char *out, size_t cap);
/* Reads a whole file into a malloc'd buffer (free() it); NULL on error. */
uint8_t *kk_test_read_file(const char *path, size_t *len);
/* Directory holding test data files ("tests/data" unless KK_TEST_DATA). */
const char *kk_test_data_dir(void);

/* Fails the test when KASKAD_TEST_PG is not set. Only a test whose name
   begins with "store_pg" may call it (else it fails): tools/run-tests.sh
   runs those apart, on a PostgreSQL cluster of its own, so no PostgreSQL
   test can go unrun in silence. */
void kk_test_need_pg(void);

#define KK_TEST(fn_)                                                   \
  static void fn_(void);                                               \
  static struct kk_test fn_##_entry = {#fn_, fn_, NULL};               \
  __attribute__((constructor)) static void fn_##_register(void) {      \
    kk_test_register(&fn_##_entry);                                    \
  }                                                                    \
  static void fn_(void)

#define ASSERT(c)                                                      \
  do {                                                                 \
    if (!(c)) kk_test_fail(__FILE__, __LINE__, "assertion failed: %s", #c); \
  } while (0)

#define ASSERT_EQ(a, b)                                                \
  do {                                                                 \
    long long a_ = (long long)(a), b_ = (long long)(b);                \
    if (a_ != b_)                                                      \
      kk_test_fail(__FILE__, __LINE__, "%s == %s: %lld != %lld", #a, #b, a_, b_); \
  } while (0)

#define ASSERT_STR_EQ(a, b)                                            \
  do {                                                                 \
    const char *a_ = (a), *b_ = (b);                                   \
    if (a_ == NULL || b_ == NULL || strcmp(a_, b_) != 0)               \
      kk_test_fail(__FILE__, __LINE__, "%s == %s: \"%s\" != \"%s\"", #a, #b, \
                   a_ ? a_ : "(null)", b_ ? b_ : "(null)");            \
  } while (0)

/* Compares a (ptr, len) view with a C string. */
#define ASSERT_VIEW_EQ(p, n, s)                                        \
  do {                                                                 \
    const char *p_ = (const char *)(p), *s_ = (s);                     \
    size_t n_ = (n);                                                   \
    if (n_ != strlen(s_) || (n_ && memcmp(p_, s_, n_) != 0))           \
      kk_test_fail(__FILE__, __LINE__, "%s == %s: \"%.*s\" != \"%s\"", #p, #s, \
                   (int)n_, p_ ? p_ : "", s_);                         \
  } while (0)

#define ASSERT_MEM_EQ(a, b, n)                                         \
  do {                                                                 \
    size_t n_ = (n);                                                   \
    if (memcmp((a), (b), n_) != 0) {                                   \
      char ha_[256], hb_[256];                                         \
      kk_test_fail(__FILE__, __LINE__, "%s == %s: %s != %s", #a, #b,   \
                   kk_test_hex((a), n_, ha_, sizeof ha_),              \
                   kk_test_hex((b), n_, hb_, sizeof hb_));             \
    }                                                                  \
  } while (0)

#endif
