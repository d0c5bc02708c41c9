/*
 * accept_rand.c - random bytes in blocks for accept's ids (see
 * accept_rand.h).
 */
#include "accept/accept_rand.h"

#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <stdlib.h>
#include <string.h>

void accept_rand_take(struct accept_rand *r, void *out, size_t n) {
  if (n == 0 || n > sizeof r->buf) abort();
  if (r->left < n) {
    if (RAND_bytes(r->buf, (int)sizeof r->buf) != 1) abort();
    r->left = sizeof r->buf;
    r->draws++;
  }
  unsigned char *at = r->buf + (sizeof r->buf - r->left);
  memcpy(out, at, n);
  OPENSSL_cleanse(at, n);   /* handed out once: nothing of it stays behind */
  r->left -= n;
}
