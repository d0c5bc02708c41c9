/* phone.c - E.164 normalisation (see phone.h). */
#include "phone/phone.h"

#include <string.h>

#include "core/kk_err.h"

int phone_normalize(const char *in, char *out, size_t cap) {
  char d[32];
  size_t n = 0;
  int plus = 0;
  const char *p = in;
  while (*p == ' ') p++;
  if (*p == '+') {
    plus = 1;
    p++;
  }
  for (; *p; p++) {
    char c = *p;
    if (c >= '0' && c <= '9') {
      if (n == sizeof d - 1) return KK_EINVAL;
      d[n++] = c;
    } else if (c == ' ' || c == '-' || c == '(' || c == ')' || c == '.') {
      continue;
    } else {
      return KK_EINVAL;
    }
  }
  d[n] = '\0';
  const char *e164 = d;
  char ru[16];
  if (!plus && n == 11 && d[0] == '8') {
    /* Russian trunk prefix: 8 9XX XXX XX XX -> 7 9XX ... */
    ru[0] = '7';
    memcpy(ru + 1, d + 1, 11);
    e164 = ru;
  } else if (!plus && n == 10 && d[0] == '9') {
    /* Russian mobile without country code. */
    ru[0] = '7';
    memcpy(ru + 1, d, 11);
    e164 = ru;
  }
  size_t len = strlen(e164);
  if (len < 8 || len > 15 || e164[0] == '0') return KK_EINVAL;
  /* Russia (+7) numbers have exactly 11 digits. */
  if (e164[0] == '7' && len != 11) return KK_EINVAL;
  if (cap < len + 1) return KK_ENOSPC;
  memcpy(out, e164, len + 1);
  return 0;
}
