/*
 * kk_crypto.h - the few digests kaskad needs, over OpenSSL: SHA-256 and
 * HMAC-SHA256 in raw and lower-case hex form, and a constant-time compare.
 * Used by callback signing, provider webhook verification and the simulator.
 */
#ifndef KK_CRYPTO_H
#define KK_CRYPTO_H

#include <stddef.h>
#include <stdint.h>

/* out receives the 32-byte SHA-256 of p. */
void kk_sha256(const void *p, size_t n, uint8_t out[32]);

/*
 * HMAC-SHA256 over the concatenation of up to nparts pieces (parts[i], lens[i])
 * with key (key, keylen). Returns 0 or KK_EIO (OpenSSL failure) / KK_EINVAL
 * (empty key).
 */
int kk_hmac_sha256(const void *key, size_t keylen, const void *const *parts,
                   const size_t *lens, int nparts, uint8_t out[32]);

/* Writes 2n lower-case hex digits and a NUL into out (2n+1 bytes). */
void kk_hex(const uint8_t *p, size_t n, char *out);

/* HMAC-SHA256 of one message as 64 hex digits + NUL in out[65]. */
int kk_hmac_sha256_hex(const void *key, size_t keylen, const void *msg, size_t n,
                       char out[65]);

/* 1 when a and b are equal strings, compared in time independent of content
   (lengths may leak). NULL never equals anything. */
int kk_str_equal_ct(const char *a, const char *b);

#endif
