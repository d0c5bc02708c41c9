/*
 * kk_utf8.h - UTF-8 checks and copies that never leave a broken character.
 *
 * Text that reaches a JSON answer, a log line or a fixed-size buffer goes
 * through these: JSON encoders refuse malformed UTF-8, and a copy cut in the
 * middle of a multi-byte character is malformed even when its source was not.
 * "Valid" means well-formed UTF-8 as RFC 3629 defines it: no overlong forms,
 * no surrogates (U+D800-U+DFFF), nothing above U+10FFFF.
 */
#ifndef KK_UTF8_H
#define KK_UTF8_H

#include <stddef.h>
#include <stdint.h>

/* 1 when s[0..len) is valid UTF-8 and holds no NUL byte, else 0. */
int kk_utf8_valid(const char *s, size_t len);

/* The length (1 to 4) of the valid character starting at s, which has left
   bytes; 0 when the bytes there do not start a valid character (or s[0] is
   NUL). */
size_t kk_utf8_char_len(const char *s, size_t left);

/* The longest prefix of valid UTF-8 s[0..len) that is at most max bytes and
   ends at a character boundary. */
size_t kk_utf8_cut(const char *s, size_t len, size_t max);

/*
 * Copies valid UTF-8 in[0..len) into out (cap > 0 bytes, NUL included),
 * cutting at a character boundary when it does not fit. Returns the bytes
 * copied (without the NUL). For input that may be malformed use
 * kk_utf8_sanitize.
 */
size_t kk_utf8_copy(char *out, size_t cap, const char *in, size_t len);

/*
 * Copies in[0..len) into out (cap > 0 bytes, NUL included) as valid UTF-8:
 * every byte that does not belong to a valid character (NUL included) becomes
 * U+FFFD, and the copy stops at the last whole character that fits. Returns
 * the bytes written (without the NUL).
 */
size_t kk_utf8_sanitize(char *out, size_t cap, const char *in, size_t len);

/* kk_utf8_sanitize into a malloc'd string of the right size (the caller
   frees it); *outlen (may be NULL) receives its length. Never NULL. */
char *kk_utf8_sanitize_dup(const char *in, size_t len, size_t *outlen);

/*
 * Reads one code point from s[*i..len) into *cp and advances *i. 0, or
 * KK_EUTF8 for a stray continuation byte, a truncated sequence, an overlong
 * form, a UTF-16 surrogate, a value above U+10FFFF or U+0000.
 */
int kk_utf8_next(const uint8_t *s, size_t len, size_t *i, uint32_t *cp);

/* Writes cp as UTF-8 into b (room for 4 bytes); returns the byte count. */
size_t kk_utf8_put(uint32_t cp, uint8_t *b);

#endif
