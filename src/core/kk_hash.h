/*
 * kk_hash.h - FNV-1a over a NUL-terminated string, from a given start
 * (KK_FNV_SEED, or one with other fields of a key folded in), for the
 * open-addressed tables that key by names.
 */
#ifndef KK_HASH_H
#define KK_HASH_H

#include <stdint.h>

#define KK_FNV_SEED 0xcbf29ce484222325ULL
#define KK_FNV_PRIME 0x100000001b3ULL

/* h folded with the bytes of s. */
static inline uint64_t kk_fnv_str(uint64_t h, const char *s) {
  for (; *s; s++) h = (h ^ (unsigned char)*s) * KK_FNV_PRIME;
  return h;
}

#endif
