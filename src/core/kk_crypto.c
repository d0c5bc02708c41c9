/*
 * kk_crypto.c - SHA-256 and HMAC-SHA256 helpers (see kk_crypto.h).
 */
#include "core/kk_crypto.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/sha.h>
#include <string.h>

#include "core/kk_err.h"

void kk_sha256(const void *p, size_t n, uint8_t out[32]) {
  SHA256(p, n, out);
}

int kk_hmac_sha256(const void *key, size_t keylen, const void *const *parts,
                   const size_t *lens, int nparts, uint8_t out[32]) {
  if (key == NULL || keylen == 0) return KK_EINVAL;
  int ok = 0;
  size_t maclen = 0;
  EVP_MAC *alg = EVP_MAC_fetch(NULL, "HMAC", NULL);
  EVP_MAC_CTX *ctx = alg ? EVP_MAC_CTX_new(alg) : NULL;
  if (ctx) {
    char digest[] = "SHA256";
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
        OSSL_PARAM_construct_end(),
    };
    ok = EVP_MAC_init(ctx, key, keylen, params) == 1;
    for (int i = 0; ok && i < nparts; i++)
      if (lens[i] > 0) ok = EVP_MAC_update(ctx, parts[i], lens[i]) == 1;
    ok = ok && EVP_MAC_final(ctx, out, &maclen, 32) == 1 && maclen == 32;
  }
  EVP_MAC_CTX_free(ctx);
  EVP_MAC_free(alg);
  return ok ? 0 : KK_EIO;
}

void kk_hex(const uint8_t *p, size_t n, char *out) {
  static const char digits[] = "0123456789abcdef";
  for (size_t i = 0; i < n; i++) {
    out[2 * i] = digits[p[i] >> 4];
    out[2 * i + 1] = digits[p[i] & 15];
  }
  out[2 * n] = '\0';
}

int kk_hmac_sha256_hex(const void *key, size_t keylen, const void *msg, size_t n,
                       char out[65]) {
  uint8_t mac[32];
  const void *parts[1] = {msg};
  size_t lens[1] = {n};
  int rc = kk_hmac_sha256(key, keylen, parts, lens, 1, mac);
  if (rc) return rc;
  kk_hex(mac, 32, out);
  return 0;
}

int kk_str_equal_ct(const char *a, const char *b) {
  if (a == NULL || b == NULL) return 0;
  size_t la = strlen(a), lb = strlen(b);
  if (la != lb) return 0;
  return CRYPTO_memcmp(a, b, la) == 0;
}
