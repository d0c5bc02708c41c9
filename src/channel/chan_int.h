/*
 * chan_int.h - what the channel drivers share and nobody else uses: the
 * driver objects, request building (URLs, form and JSON bodies), answer
 * classification, UTF-8 checks and the pieces of webhook verification.
 *
 * Everything here is pure: no I/O, no logging, no global mutable state.
 */
#ifndef CHAN_INT_H
#define CHAN_INT_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "channel/channel.h"
#include "core/kk_buf.h"

extern const struct chan_driver chan_vk_driver;
extern const struct chan_driver chan_viber_driver;
extern const struct chan_driver chan_telegram_driver;
extern const struct chan_driver chan_tggw_driver;
extern const struct chan_driver chan_whatsapp_driver;
extern const struct chan_driver chan_email_driver;
extern const struct chan_driver chan_sms_driver;

/* A chan_field of member n of struct chan_cfg (see channel.h). */
#define CHAN_FIELD(n, fl) \
  {#n, offsetof(struct chan_cfg, n), sizeof(((struct chan_cfg *)0)->n), (fl), NULL}
#define CHAN_FIELD_RULE(n, fl, rule) \
  {#n, offsetof(struct chan_cfg, n), sizeof(((struct chan_cfg *)0)->n), (fl), (rule)}
#define CHAN_FIELDS(t) .fields = (t), .nfields = (int)(sizeof(t) / sizeof((t)[0]))

/* Cap on a request body we build and on a provider body we parse. */
#define CHAN_BODY_MAX (4u << 20)
#define CHAN_PARSE_MAX (1u << 20)

/* ---- small string helpers ---------------------------------------------- */

/* s, or "" when s is NULL. */
const char *chan_str(const char *s);
/* 1 when s is set (not NULL and not ""). */
int chan_set(const char *s);
/* cfg->base_url, or real when it is "". */
const char *chan_base(const struct chan_cfg *cfg, const char *real);
/* Copies src into dst[cap], truncated so that no UTF-8 sequence is split. */
void chan_copy(char *dst, size_t cap, const char *src);
/* Formats into dst[cap] like snprintf, then trims a split UTF-8 sequence. */
void chan_fmt(char *dst, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Writes an error text for build() and returns rc (error may be NULL). */
int chan_error(char *error, size_t errcap, int rc, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Concatenates the strings up to a NULL argument; free() the result. */
char *chan_concat(const char *first, ...);
/* Adds "Authorization: Bearer <token>". Returns 0 or KK_ENOSPC. */
int chan_req_bearer(struct chan_req *r, const char *token);

/* 1 when the n bytes at s are well-formed UTF-8 (no overlongs, surrogates). */
int chan_utf8_valid(const char *s, size_t n);
/* Number of code points in a well-formed UTF-8 string. */
size_t chan_utf8_count(const char *s);
/* Byte length of the longest prefix of s with at most max code points. */
size_t chan_utf8_prefix(const char *s, size_t max);
/* Checks that every text field of m is UTF-8; KK_EINVAL with an error if not. */
int chan_msg_utf8(const struct chan_msg *m, char *error, size_t errcap);

/* 1 when s is not empty and every byte is an ASCII letter, a digit or one
   of extra. */
int chan_charset(const char *s, const char *extra);

/* Parses an optionally negative decimal integer that fills all of s. */
int chan_parse_int64(const char *s, int64_t *v);

/* ---- building requests ------------------------------------------------- */

/* Resets req and sets its method and url (url is taken over, not copied). */
void chan_req_start(struct chan_req *req, const char *method, char *url);
/* Serializes body compactly into req->body (the reference is consumed).
   Returns 0, or KK_EINVAL when body is NULL (a value could not be made). */
int chan_req_json(struct chan_req *req, json_t *body);
/* Appends "&key=value" (no '&' first) to a form body, value percent-encoded
   with everything outside RFC 3986's unreserved set as %XX. */
int chan_form_add(struct kk_buf *b, const char *key, const char *value);
/* The value of key in the form body[0..len), decoded (%XX, '+' for space):
   a new string the caller free()s; NULL when key is absent or the value
   does not decode. */
char *chan_form_get(const char *body, size_t len, const char *key);
/* json_string(s) for a UTF-8 s ("" for NULL); NULL when s is not UTF-8. */
json_t *chan_jstr(const char *s);
/* Adds key: v to object o; a NULL v (or a failure) sets *bad. */
void chan_jset(json_t *o, const char *key, json_t *v, int *bad);

/* ---- classifying answers ------------------------------------------------ */

/* Parses body as a JSON object; NULL when it is not one (or too big).
   The caller json_decref()s the result. */
json_t *chan_json_object(const char *body, size_t len);
/* The string member key of o, or NULL when absent or not a string. */
const char *chan_jget_str(json_t *o, const char *key);
/* The integer member key of o into *v: 0, or KK_ENOENT when absent/not one. */
int chan_jget_int(json_t *o, const char *key, int64_t *v);
/* Resets res to an empty CHAN_FAIL. */
void chan_res_init(struct chan_result *res);
void chan_res_ok(struct chan_result *res, const char *provider_id);
void chan_res_set(struct chan_result *res, enum chan_outcome outcome, long retry_after_ms,
                  const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* chan_res_set with the error "<code> <words> (HTTP <http_status>)": words
   are kaskad's (NULL: those of the outcome), never the provider's text,
   which may come from anywhere the account's base_url leads; desc, the
   provider's description, goes to res->detail for the log. */
void chan_res_code(struct chan_result *res, enum chan_outcome outcome, long retry_after_ms,
                   long http_status, int64_t code, const char *words, const char *desc);
/* Copies the provider's description into res->detail, printable ASCII only. */
void chan_res_detail(struct chan_result *res, const char *desc);
/* s when it looks like an error code (1 to 64 of A-Z a-z 0-9 _ . -), else
   "unknown_error". */
const char *chan_code_text(const char *s);
/* An answer the driver does not know: CHAN_RETRY for 0, 429 and >= 500,
   else CHAN_FAIL "unexpected answer <status>". */
void chan_res_unexpected(struct chan_result *res, long http_status, const char *retry_after);
/* A Retry-After header in seconds as milliseconds (0 when absent or bad). */
long chan_retry_after_ms(const char *retry_after);
/* 1 for the statuses that are always temporary: 0, 429 and >= 500. */
int chan_http_temporary(long http_status);

/* ---- verifying callbacks ------------------------------------------------ */

/* Resets out (http_status 400, nothing else). */
void chan_hook_init(struct chan_hook_out *out);
/* Refuses: KK_EAUTH -> 403, anything else -> 400. Returns rc. */
int chan_hook_refuse(struct chan_hook_out *out, int rc, const char *reason);
/* Accepts with the given reply; returns 0. */
int chan_hook_accept(struct chan_hook_out *out, const char *reply);
/* A request header or query parameter, NULL when absent. */
const char *chan_hook_header(const struct chan_hook_in *in, const char *name);
const char *chan_hook_query(const struct chan_hook_in *in, const char *name);
/* 1 when in->method is method. */
int chan_hook_method(const struct chan_hook_in *in, const char *method);
/* Compares given hex digits (any case) with 64 lower-case hex digits in
   constant time. NULL never matches. */
int chan_hex_equal_ct(const char *given, const char *expected);
/* Appends a status; NULL when out is full (the status is dropped). */
struct chan_status *chan_hook_status(struct chan_hook_out *out, const char *provider_id,
                                     const char *status, int64_t at);
/* Appends a message a person sent; NULL when out is full (it is dropped). */
struct chan_inbound *chan_hook_inbound(struct chan_hook_out *out, const char *from, int64_t at);
/* Appends a messenger's message from user (its id there) at `at` (ms, at
   most in->now_ms) saying text (NULL: "[type]", type NULL: "message"). */
void chan_hook_user_msg(struct chan_hook_out *out, const struct chan_hook_in *in,
                        const char *user, int64_t at, const char *text, const char *type);
/* Unix seconds as ms since the epoch, or fallback when out of range. */
int64_t chan_seconds_to_ms(int64_t s, int64_t fallback);

#endif
