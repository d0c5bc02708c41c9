/*
 * link_url.h - tracked links, the pure part: finding the http(s) URLs of a
 * text, replacing them, the short link's code and the UTM tags a click's
 * target gets. No I/O but the random bytes of a new code (getrandom).
 *
 * A URL is "http://" or "https://" (any letter case) not glued to a letter
 * or digit before it, with a host (a letter, digit, '[' or non-ASCII
 * letter right after "//"), up to the first character that ends URLs in
 * text: whitespace (Unicode's too), a control, one of " < > ` { } | \ ^,
 * a quotation mark or guillemet (« » “ ” „ ‘ ’ ‹ ›), an ellipsis or a
 * dash (– —), or a byte that is not UTF-8. Punctuation that ends a
 * sentence (. , ; : ! ? ' *) is not part of it at its end, nor a ')' or
 * ']' that closes nothing opened inside it.
 */
#ifndef LINK_URL_H
#define LINK_URL_H

#include <stddef.h>

#define LINK_CODE_LEN 12       /* base62 characters of a code: 71 random bits */
#define LINK_URL_MAX 2048      /* bytes of a URL made a tracked link; longer ones stay */
#define LINK_UTM_MAX (3 * LINK_URL_MAX + 512)   /* bytes of a target with its tags */

/* The next URL of text[0..len) at or after `from`: 1 with its start and
   length, or 0 when there is none. */
int link_url_next(const char *text, size_t len, size_t from, size_t *start, size_t *ulen);

/* What a URL becomes: fn(arg, url, ulen) returns the replacement (a
   NUL-terminated string it keeps alive until link_rewrite returns), or
   NULL to leave the URL as it is. */
typedef const char *(*link_replace_fn)(void *arg, const char *url, size_t ulen);

/* text[0..len) with each URL replaced by fn's answer: a malloc'd string
   (the caller frees) with its length in *out_len, and the number of URLs
   replaced in *n (NULL: not wanted). */
char *link_rewrite(const char *text, size_t len, link_replace_fn fn, void *arg, size_t *out_len,
                   int *n);

/* A new code: LINK_CODE_LEN characters of [0-9A-Za-z] from the operating
   system's random source, NUL-terminated. */
void link_code_new(char out[LINK_CODE_LEN + 1]);
/* 1 when s can be a code (its length and alphabet). */
int link_code_valid(const char *s);

/*
 * The target a click goes to: url with utm_source=kaskad, utm_medium=channel
 * and utm_campaign=campaign added to its query (each one the URL does not
 * have already: the URL's own are kept), before its fragment; every byte
 * that may not stand in a Location header as it is (controls, spaces,
 * non-ASCII, " < > \ ^ ` { | }) percent-encoded. Into out (cap bytes,
 * NUL-terminated): its length, or KK_ENOSPC.
 */
int link_utm_add(const char *url, const char *channel, const char *campaign, char *out,
                 size_t cap);

#endif
