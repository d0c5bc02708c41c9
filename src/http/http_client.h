/*
 * http_client.h - outbound HTTP(S) and SMTP requests over libcurl's multi
 * socket interface, driven by a libuv loop (no threads).
 *
 * One client holds one curl multi handle, so connections to the same host
 * are reused across requests. Each request has its own total timeout. The
 * answer (status, body up to a cap, Retry-After) comes to a callback on the
 * loop thread. SMTP requests (smtp:// or smtps:// URLs) upload the body as
 * the message, with MAIL FROM / RCPT TO from the request.
 *
 * Every connection is checked once its address is known (after DNS, before
 * connect): addresses kk_net refuses by default (loopback, private,
 * link-local, metadata, ...) are not connected to unless the operator's allow
 * list (http_client_allow) holds them. Redirects are never followed, proxy
 * settings of the environment are ignored (the check must see the real
 * peer), HTTP requests speak only http/https and SMTP only smtp/smtps.
 *
 * SMTP: smtps:// is TLS from the start; smtp:// must upgrade with STARTTLS
 * (the transfer fails when the server does not offer it), unless the URL
 * ends in "?tls=off" (stripped before use), which sends in the clear.
 *
 * The caller must have called curl_global_init() before http_client_new().
 */
#ifndef HTTP_CLIENT_H
#define HTTP_CLIENT_H

#include <stddef.h>
#include <uv.h>

#include "core/kk_net.h"

struct http_client;

/* The SMTP URL suffix that turns STARTTLS off. */
#define HTTP_CLIENT_SMTP_PLAIN "?tls=off"

/* Sets the ranges every client may reach beyond the public internet (the
   outbound_allow setting; copied). Call it at start, before any request. */
void http_client_allow(const struct kk_net_allow *allow);
/* The ranges set by http_client_allow() (none until then). */
const struct kk_net_allow *http_client_allowed(void);

/* A request; every field is copied by http_client_do(). */
struct http_client_req {
  const char *method;        /* "GET", "POST", "PUT", ... (ignored for SMTP) */
  const char *url;
  const char *const *headers;  /* "Name: value" strings */
  int nheaders;
  const char *body;          /* may be NULL */
  size_t body_len;
  long timeout_ms;           /* whole request; 0 = 10000 */
  /* SMTP only */
  const char *mail_from;
  const char *mail_rcpt;
  const char *username;
  const char *password;
};

/* The answer. Valid only during the callback. */
struct http_client_resp {
  long status;               /* HTTP status or final SMTP reply code; 0 = no answer */
  const char *body;          /* NUL-terminated, at most the body cap */
  size_t body_len;
  const char *retry_after;   /* Retry-After header value or NULL */
  const char *error;         /* libcurl's error text when status is 0, else "" */
  int refused;               /* 1: kaskad refused the request itself, and the same
                                request will be refused again: error is
                                "address_not_allowed: ..." (every address of the
                                host is refused) or "tls_required: ..." (the SMTP
                                server offers no STARTTLS) */
  double total_ms;
};

typedef void (*http_client_cb)(void *arg, const struct http_client_resp *resp);

/* max_body: response bytes kept (0 = 64 KiB). Returns NULL when libcurl
   cannot start (logged). */
struct http_client *http_client_new(uv_loop_t *loop, size_t max_body);

/* Starts a request; cb(arg, resp) runs exactly once on the loop, unless the
   client is closed first (then it runs with status 0 and error "closed").
   Returns 0 or KK_EINVAL. */
int http_client_do(struct http_client *c, const struct http_client_req *req,
                   http_client_cb cb, void *arg);

/* Requests running now. */
int http_client_active(const struct http_client *c);

/* Aborts running requests (their callbacks run with status 0), closes the
   handles and frees c; done(ud) runs on the loop when all is closed. */
void http_client_stop(struct http_client *c, void (*done)(void *ud), void *ud);

#endif
