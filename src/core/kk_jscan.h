/*
 * kk_jscan.h - members of a JSON object read from its text without parsing
 * the rest. A message's extra JSON carries the rendered text of every
 * channel of its cascade; each step needs a few of its members (an address,
 * the quiet hours, its own channel's text), and a whole parse of the extra
 * at each step allocates every text again. These walk the text once, skip
 * what is not asked for, and decode only what is.
 *
 * The text is trusted to be JSON as json_dumps writes it (the extra is
 * always written so); a text they cannot walk gives NULL, and the caller
 * parses it whole instead.
 */
#ifndef KK_JSCAN_H
#define KK_JSCAN_H

#include <jansson.h>
#include <stddef.h>

/* The value of member key of the object in text[0..len), as written (its
   *vlen bytes: a string with its quotes, an object with its braces), or NULL
   when the object has no such member or the text is not an object that can
   be walked. Of several members with that key, the last (as json_loads). */
const char *kk_jscan_member(const char *text, size_t len, const char *key, size_t *vlen);

/* A new object with the members keys[0..n) of the object in text (those it
   has; a NULL key is skipped), each decoded as json_loads would; NULL when
   the text cannot be walked (then parse it whole). The caller owns it. */
json_t *kk_jscan_pick(const char *text, const char *const *keys, int n);

/* The value at v (vlen bytes, as kk_jscan_member gives it) when it is a
   string: a new string (malloc'd, the caller frees it), else NULL. */
char *kk_jscan_string(const char *v, size_t vlen);

#endif
