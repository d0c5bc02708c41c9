/*
 * http_resp.h - reading an HTTP/1.x response as it arrives: its head (status
 * line and the headers a client acts on) and a chunked body.
 *
 * Both parsers work on what has arrived so far and say when they need more,
 * so a caller can feed them straight from its read buffer. Neither allocates
 * except into the caller's kk_buf.
 */
#ifndef HTTP_RESP_H
#define HTTP_RESP_H

#include <stddef.h>

#include "core/kk_buf.h"

#define HTTP_RESP_HEAD_MAX 16384   /* a longer head is refused */

struct http_resp_head {
  int status;                 /* 100-599 */
  long long content_length;   /* -1: not given */
  int chunked;                /* Transfer-Encoding: chunked */
  int close;                  /* the server closes after this response */
  char retry_after[64];       /* Retry-After value, "" when absent */
};

/* Parses the head at buf[0..len). Returns the head's length, through its
   blank line, once it is complete; 0 while more bytes are needed; KK_EPROTO when
   it is not an HTTP/1.x response head, KK_ETOOBIG when it passes
   HTTP_RESP_HEAD_MAX. */
long http_resp_head_parse(const char *buf, size_t len, struct http_resp_head *h);

/* A chunked body being decoded; zero it before the first call. */
struct http_chunked {
  int state;
  unsigned long long left;    /* bytes of the current chunk still to come */
  int digits;                 /* hex digits of the current size line */
};

/* Decodes buf[0..len) into out. Returns the bytes consumed (all of them
   unless the body ended inside buf), KK_EPROTO on a malformed body (a chunk size
   of more than 15 hex digits too), KK_ETOOBIG when out is full. *done is set to 1 once the last chunk and trailers are read. */
long http_chunked_feed(struct http_chunked *c, const char *buf, size_t len, struct kk_buf *out,
                       int *done);

#endif
