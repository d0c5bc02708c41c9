/*
 * kk_json.h - JSON written as json_dumps(v, JSON_COMPACT) writes it, byte
 * for byte, at a fraction of its cost. jansson writes each string through a
 * callback a few characters at a time and records every object and array it
 * enters to catch loops; a campaign's messages and their sends dump a few
 * such documents each, with the texts of every channel in them. What these
 * write must stay jansson's exactly: an idempotency digest covers a
 * message's extra as dumped, and stored digests are compared with new ones.
 *
 * A value they do not write as jansson would (a real number: jansson's own
 * formatting of doubles; nesting deeper than KK_JSON_DEPTH) is refused, and
 * kk_json_dumps falls back to json_dumps for it.
 */
#ifndef KK_JSON_H
#define KK_JSON_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "core/kk_buf.h"

#define KK_JSON_DEPTH 32   /* objects and arrays within one another */

/* s[0..n) as a JSON string (its quotes; the quote, the backslash and the
   control characters escaped; other bytes, UTF-8, as they are) onto b.
   0 or KK_ENOSPC. */
int kk_json_string(struct kk_buf *b, const char *s, size_t n);

/* v as a JSON integer ("%" PRId64) onto b. 0 or KK_ENOSPC. */
int kk_json_int(struct kk_buf *b, int64_t v);

/* v (any value) onto b. 0, KK_ENOSPC, or KK_EINVAL for a value refused (a
   real, or too deep): b then holds part of it. */
int kk_json_write(struct kk_buf *b, const json_t *v);

/* As json_dumps(v, JSON_COMPACT): a new string (malloc'd, the caller frees
   it), or NULL when v is not an object or an array. */
char *kk_json_dumps(const json_t *v);

#endif
