/*
 * channel.c - the driver table, the request object and the helpers
 * every driver shares (chan_int.h): form and JSON bodies, UTF-8 checks,
 * answer classification and the building blocks of webhook verification.
 */
#include "channel/channel.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "channel/chan_int.h"
#include "core/kk_crypto.h"
#include "core/kk_err.h"
#include "core/kk_json.h"
#include "core/kk_mem.h"

/* Cascade display order, which is that of enum kk_chan. */
static const struct chan_driver *const drivers[] = {
  [KK_CHAN_VK] = &chan_vk_driver,
  [KK_CHAN_VIBER] = &chan_viber_driver,
  [KK_CHAN_TELEGRAM] = &chan_telegram_driver,
  [KK_CHAN_TELEGRAM_GATEWAY] = &chan_tggw_driver,
  [KK_CHAN_WHATSAPP] = &chan_whatsapp_driver,
  [KK_CHAN_EMAIL] = &chan_email_driver,
  [KK_CHAN_SMS] = &chan_sms_driver,
};

#define NDRIVERS ((int)(sizeof drivers / sizeof drivers[0]))
_Static_assert(NDRIVERS < CHAN_MAX_DRIVERS, "CHAN_MAX_DRIVERS leaves no spare slot");
_Static_assert(NDRIVERS == KK_CHAN_COUNT, "a driver per channel, in the order of enum kk_chan");

const struct chan_driver *chan_driver_of(enum kk_chan ch) {
  return ch >= 0 && ch < NDRIVERS ? drivers[ch] : NULL;
}

int chan_driver_index_of(enum kk_chan ch) { return ch >= 0 && ch < NDRIVERS ? ch : KK_ENOENT; }

const struct chan_driver *chan_driver(const char *name) {
  if (name == NULL) return NULL;
  for (int i = 0; i < NDRIVERS; i++)
    if (strcmp(drivers[i]->name, name) == 0) return drivers[i];
  return NULL;
}

int chan_driver_index(const char *name) {
  if (name == NULL) return KK_ENOENT;
  for (int i = 0; i < NDRIVERS; i++)
    if (strcmp(drivers[i]->name, name) == 0) return i;
  return KK_ENOENT;
}

const struct chan_driver *const *chan_drivers(int *n) {
  if (n) *n = NDRIVERS;
  return drivers;
}

const char *chan_reports_text(unsigned reports, char *out, size_t cap) {
  static const char *const names[] = {"sent", "delivered", "read"};
  const char *have[3];
  int k = 0;
  for (int i = 0; i < 3; i++)
    if (reports & (1u << i)) have[k++] = names[i];
  if (cap == 0) return out;
  if (k == 0) snprintf(out, cap, "nothing");
  else if (k == 1) snprintf(out, cap, "%s", have[0]);
  else if (k == 2) snprintf(out, cap, "%s and %s", have[0], have[1]);
  else snprintf(out, cap, "%s, %s and %s", have[0], have[1], have[2]);
  return out;
}

/* ---- the request ---------------------------------------------------------- */

void chan_req_free(struct chan_req *r) {
  if (r == NULL) return;
  free(r->url);
  for (int i = 0; i < r->nheaders && i < CHAN_MAX_HEADERS; i++) free(r->headers[i]);
  free(r->body);
  free(r->mail_from);
  free(r->mail_rcpt);
  free(r->username);
  free(r->password);
  memset(r, 0, sizeof *r);
}

int chan_req_header(struct chan_req *r, const char *name, const char *value) {
  if (r->nheaders < 0 || r->nheaders >= CHAN_MAX_HEADERS) return KK_ENOSPC;
  r->headers[r->nheaders++] = chan_concat(name, ": ", chan_str(value), (char *)NULL);
  return 0;
}

void chan_req_start(struct chan_req *req, const char *method, char *url) {
  memset(req, 0, sizeof *req);
  snprintf(req->method, sizeof req->method, "%s", method);
  req->url = url;
}

int chan_req_json(struct chan_req *req, json_t *body) {
  if (body == NULL) return KK_EINVAL;
  char *s = kk_json_dumps(body);   /* freed with the request */
  json_decref(body);
  if (s == NULL) return KK_EINVAL;
  req->body = s;
  req->body_len = strlen(s);
  return 0;
}

static int unreserved(unsigned char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
         c == '-' || c == '.' || c == '_' || c == '~';
}

int chan_form_add(struct kk_buf *b, const char *key, const char *value) {
  static const char hex[] = "0123456789ABCDEF";
  int rc = 0;
  if (b->len > 0) rc = kk_buf_puts(b, "&");
  if (!rc) rc = kk_buf_puts(b, key);
  if (!rc) rc = kk_buf_puts(b, "=");
  /* Escaped into out and appended a chunk at a time (a text is mostly
     escapes; an append a byte cost about as much as the rest of a VK send). */
  char out[256];
  size_t o = 0;
  for (const unsigned char *p = (const unsigned char *)chan_str(value); !rc && *p; p++) {
    if (unreserved(*p)) {
      out[o++] = (char)*p;
    } else {
      out[o++] = '%';
      out[o++] = hex[*p >> 4];
      out[o++] = hex[*p & 15];
    }
    if (o > sizeof out - 3) {
      rc = kk_buf_append(b, out, o);
      o = 0;
    }
  }
  if (!rc && o > 0) rc = kk_buf_append(b, out, o);
  return rc;
}

/* The value of hex digit ch, or -1 when ch is none ("no value", not an error). */
static int hexdigit(char ch) {
  if (ch >= '0' && ch <= '9') return ch - '0';
  if (ch >= 'a' && ch <= 'f') return ch - 'a' + 10;
  if (ch >= 'A' && ch <= 'F') return ch - 'A' + 10;
  return -1;
}

char *chan_form_get(const char *body, size_t len, const char *key) {
  size_t klen = strlen(key), i = 0;
  while (i < len) {
    size_t end = i;
    while (end < len && body[end] != '&') end++;
    if (end - i > klen && body[i + klen] == '=' && memcmp(body + i, key, klen) == 0) {
      /* Freed by the caller. */
      char *out = kk_xmalloc(end - i - klen);
      size_t o = 0;
      for (size_t j = i + klen + 1; j < end; j++) {
        if (body[j] == '+') {
          out[o++] = ' ';
        } else if (body[j] != '%') {
          out[o++] = body[j];
        } else {
          int hi = j + 2 < end ? hexdigit(body[j + 1]) : -1;
          int lo = hi >= 0 ? hexdigit(body[j + 2]) : -1;
          if (lo < 0 || (hi == 0 && lo == 0)) {
            free(out);
            return NULL;
          }
          out[o++] = (char)(hi * 16 + lo);
          j += 2;
        }
      }
      out[o] = '\0';
      return out;
    }
    i = end + 1;
  }
  return NULL;
}

json_t *chan_jstr(const char *s) {
  return json_string(chan_str(s));
}

void chan_jset(json_t *o, const char *key, json_t *v, int *bad) {
  if (v == NULL || json_object_set_new(o, key, v) != 0) *bad = 1;
}

/* ---- strings -------------------------------------------------------------- */

const char *chan_str(const char *s) {
  return s ? s : "";
}

int chan_set(const char *s) {
  return s != NULL && s[0] != '\0';
}

const char *chan_base(const struct chan_cfg *cfg, const char *real) {
  return cfg->base_url[0] ? cfg->base_url : real;
}

/* Cuts a UTF-8 sequence that the end of s left incomplete. */
static void utf8_trim_tail(char *s) {
  size_t n = strlen(s), i = n;
  while (i > 0 && ((unsigned char)s[i - 1] & 0xC0) == 0x80 && n - i < 3) i--;
  if (i == 0) return;
  unsigned char lead = (unsigned char)s[i - 1];
  size_t want = lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : lead >= 0xC0 ? 2 : 1;
  if (want > 1 && n - (i - 1) < want) s[i - 1] = '\0';
}

void chan_copy(char *dst, size_t cap, const char *src) {
  if (cap == 0) return;
  size_t n = strlen(chan_str(src));
  if (n < cap) {
    memcpy(dst, chan_str(src), n + 1);
    return;
  }
  memcpy(dst, src, cap - 1);
  dst[cap - 1] = '\0';
  utf8_trim_tail(dst);
}

static void vfmt(char *dst, size_t cap, const char *fmt, va_list ap) {
  if (cap == 0) return;
  int n = vsnprintf(dst, cap, fmt, ap);
  if (n < 0) dst[0] = '\0';
  else if ((size_t)n >= cap) utf8_trim_tail(dst);
}

void chan_fmt(char *dst, size_t cap, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vfmt(dst, cap, fmt, ap);
  va_end(ap);
}

int chan_error(char *error, size_t errcap, int rc, const char *fmt, ...) {
  if (error == NULL) return rc;
  va_list ap;
  va_start(ap, fmt);
  vfmt(error, errcap, fmt, ap);
  va_end(ap);
  return rc;
}

char *chan_concat(const char *first, ...) {
  size_t n = 0;
  va_list ap;
  va_start(ap, first);
  for (const char *s = first; s; s = va_arg(ap, const char *)) n += strlen(s);
  va_end(ap);
  char *out = kk_xmalloc(n + 1), *p = out;
  va_start(ap, first);
  for (const char *s = first; s; s = va_arg(ap, const char *)) {
    size_t k = strlen(s);
    memcpy(p, s, k);
    p += k;
  }
  va_end(ap);
  *p = '\0';
  return out;
}

int chan_utf8_valid(const char *s, size_t n) {
  const unsigned char *p = (const unsigned char *)s;
  size_t i = 0;
  while (i < n) {
    unsigned c = p[i];
    size_t k;
    unsigned cp;
    if (c < 0x80) {
      i++;
      continue;
    } else if (c >= 0xC2 && c <= 0xDF) {
      k = 1;
      cp = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
      k = 2;
      cp = c & 0x0F;
    } else if (c >= 0xF0 && c <= 0xF4) {
      k = 3;
      cp = c & 0x07;
    } else {
      return 0;
    }
    if (n - i - 1 < k) return 0;
    for (size_t j = 1; j <= k; j++) {
      if ((p[i + j] & 0xC0) != 0x80) return 0;
      cp = (cp << 6) | (p[i + j] & 0x3F);
    }
    if ((k == 2 && cp < 0x800) || (k == 3 && (cp < 0x10000 || cp > 0x10FFFF)) ||
        (cp >= 0xD800 && cp <= 0xDFFF))
      return 0;
    i += k + 1;
  }
  return 1;
}

size_t chan_utf8_count(const char *s) {
  size_t n = 0;
  for (const unsigned char *p = (const unsigned char *)chan_str(s); *p; p++)
    if ((*p & 0xC0) != 0x80) n++;
  return n;
}

size_t chan_utf8_prefix(const char *s, size_t max) {
  const unsigned char *p = (const unsigned char *)chan_str(s);
  size_t i = 0, count = 0;
  while (p[i]) {
    if ((p[i] & 0xC0) != 0x80) {
      if (count == max) break;
      count++;
    }
    i++;
  }
  return i;
}

int chan_msg_utf8(const struct chan_msg *m, char *error, size_t errcap) {
  const struct {
    const char *name, *value;
  } fields[] = {
    {"text", m->text},
    {"subject", m->subject},
    {"image", m->image},
    {"button caption", m->button_caption},
    {"button url", m->button_url},
    {"address", m->address},
  };
  for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
    const char *v = chan_str(fields[i].value);
    if (!chan_utf8_valid(v, strlen(v)))
      return chan_error(error, errcap, KK_EINVAL, "%s is not valid UTF-8", fields[i].name);
  }
  return 0;
}

int chan_charset(const char *s, const char *extra) {
  if (!chan_set(s)) return 0;
  for (const unsigned char *p = (const unsigned char *)s; *p; p++)
    if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
          strchr(extra, *p)))
      return 0;
  return 1;
}

int chan_parse_int64(const char *s, int64_t *v) {
  if (!chan_set(s)) return KK_EINVAL;
  const char *p = s[0] == '-' ? s + 1 : s;
  if (*p == '\0') return KK_EINVAL;
  for (const char *q = p; *q; q++)
    if (*q < '0' || *q > '9') return KK_EINVAL;
  errno = 0;
  long long x = strtoll(s, NULL, 10);
  if (errno == ERANGE) return KK_ERANGE;
  *v = (int64_t)x;
  return 0;
}

/* ---- answers -------------------------------------------------------------- */

json_t *chan_json_object(const char *body, size_t len) {
  if (body == NULL || len == 0 || len > CHAN_PARSE_MAX) return NULL;
  json_t *j = json_loadb(body, len, 0, NULL);
  if (j != NULL && !json_is_object(j)) {
    json_decref(j);
    j = NULL;
  }
  return j;
}

const char *chan_jget_str(json_t *o, const char *key) {
  json_t *v = json_is_object(o) ? json_object_get(o, key) : NULL;
  return json_is_string(v) ? json_string_value(v) : NULL;
}

int chan_jget_int(json_t *o, const char *key, int64_t *v) {
  json_t *j = json_is_object(o) ? json_object_get(o, key) : NULL;
  if (!json_is_integer(j)) return KK_ENOENT;
  *v = (int64_t)json_integer_value(j);
  return 0;
}

void chan_res_init(struct chan_result *res) {
  memset(res, 0, sizeof *res);
  res->outcome = CHAN_FAIL;
}

void chan_res_ok(struct chan_result *res, const char *provider_id) {
  chan_res_init(res);
  res->outcome = CHAN_OK;
  chan_copy(res->provider_id, sizeof res->provider_id, provider_id);
}

void chan_res_set(struct chan_result *res, enum chan_outcome outcome, long retry_after_ms,
                  const char *fmt, ...) {
  chan_res_init(res);
  res->outcome = outcome;
  res->retry_after_ms = outcome == CHAN_RETRY && retry_after_ms > 0 ? retry_after_ms : 0;
  va_list ap;
  va_start(ap, fmt);
  vfmt(res->error, sizeof res->error, fmt, ap);
  va_end(ap);
}

void chan_res_detail(struct chan_result *res, const char *desc) {
  size_t n = 0;
  for (const unsigned char *p = (const unsigned char *)chan_str(desc);
       *p && n + 1 < sizeof res->detail; p++)
    res->detail[n++] = *p >= 0x20 && *p < 0x7F ? (char)*p : '?';
  res->detail[n] = '\0';
}

/* kaskad's words for an outcome the provider gave with an error code. */
static const char *outcome_words(enum chan_outcome outcome) {
  switch (outcome) {
    case CHAN_CONFIG:
      return "the provider refused the account's settings";
    case CHAN_RETRY:
      return "the provider asked to try again later";
    default:
      return "the provider refused the message";
  }
}

void chan_res_code(struct chan_result *res, enum chan_outcome outcome, long retry_after_ms,
                   long http_status, int64_t code, const char *words, const char *desc) {
  chan_res_set(res, outcome, retry_after_ms, "%" PRId64 " %s (HTTP %ld)", code,
               words ? words : outcome_words(outcome), http_status);
  chan_res_detail(res, desc);
}

const char *chan_code_text(const char *s) {
  size_t n = chan_set(s) ? strlen(s) : 0;
  return n >= 1 && n <= 64 && chan_charset(s, "_.-") ? s : "unknown_error";
}

int chan_http_temporary(long http_status) {
  return http_status == 0 || http_status == 429 || http_status >= 500;
}

long chan_retry_after_ms(const char *retry_after) {
  if (!chan_set(retry_after)) return 0;
  long s = 0;
  for (const char *p = retry_after; *p; p++) {
    if (*p < '0' || *p > '9') return 0;
    s = s * 10 + (*p - '0');
    if (s > 86400) return 86400L * 1000;
  }
  return s * 1000;
}

void chan_res_unexpected(struct chan_result *res, long http_status, const char *retry_after) {
  if (chan_http_temporary(http_status))
    chan_res_set(res, CHAN_RETRY, chan_retry_after_ms(retry_after), "unexpected answer %ld",
                 http_status);
  else
    chan_res_set(res, CHAN_FAIL, 0, "unexpected answer %ld", http_status);
}

/* ---- callbacks ------------------------------------------------------------ */

void chan_hook_init(struct chan_hook_out *out) {
  /* The statuses and messages are cleared one by one as they are added. */
  out->http_status = 400;
  out->reply[0] = out->reason[0] = '\0';
  out->nstatus = 0;
  out->ninbound = 0;
}

int chan_hook_refuse(struct chan_hook_out *out, int rc, const char *reason) {
  out->http_status = rc == KK_EAUTH ? 403 : 400;
  out->nstatus = 0;
  out->ninbound = 0;
  out->reply[0] = '\0';
  chan_copy(out->reason, sizeof out->reason, reason);
  return rc == KK_EAUTH ? KK_EAUTH : KK_EPROTO;
}

int chan_hook_accept(struct chan_hook_out *out, const char *reply) {
  out->http_status = 200;
  out->reason[0] = '\0';
  chan_copy(out->reply, sizeof out->reply, reply);
  return 0;
}

const char *chan_hook_header(const struct chan_hook_in *in, const char *name) {
  return in->header ? in->header(in->ctx, name) : NULL;
}

const char *chan_hook_query(const struct chan_hook_in *in, const char *name) {
  return in->query ? in->query(in->ctx, name) : NULL;
}

int chan_hook_method(const struct chan_hook_in *in, const char *method) {
  return in->method != NULL && strcmp(in->method, method) == 0;
}

int chan_hex_equal_ct(const char *given, const char *expected) {
  if (given == NULL || expected == NULL) return 0;
  char low[65];
  size_t n = strlen(given);
  if (n != 64) return 0;
  for (size_t i = 0; i < 64; i++) {
    char c = given[i];
    low[i] = c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
  }
  low[64] = '\0';
  return kk_str_equal_ct(low, expected);
}

struct chan_status *chan_hook_status(struct chan_hook_out *out, const char *provider_id,
                                     const char *status, int64_t at) {
  if (out->nstatus < 0 || out->nstatus >= CHAN_HOOK_MAX_STATUS) return NULL;
  struct chan_status *st = &out->st[out->nstatus++];
  memset(st, 0, sizeof *st);
  chan_copy(st->provider_id, sizeof st->provider_id, provider_id);
  chan_copy(st->status, sizeof st->status, status);
  st->at = at;
  return st;
}

struct chan_inbound *chan_hook_inbound(struct chan_hook_out *out, const char *from, int64_t at) {
  if (out->ninbound < 0 || out->ninbound >= CHAN_HOOK_MAX_INBOUND) return NULL;
  struct chan_inbound *m = &out->in[out->ninbound++];
  memset(m, 0, sizeof *m);
  chan_copy(m->from, sizeof m->from, from);
  m->at = at;
  return m;
}

void chan_hook_user_msg(struct chan_hook_out *out, const struct chan_hook_in *in,
                        const char *user, int64_t at, const char *text, const char *type) {
  if (user == NULL || user[0] == '\0' || strlen(user) >= sizeof out->in[0].user) return;
  struct chan_inbound *m = chan_hook_inbound(out, "", at > 0 && at < in->now_ms ? at : in->now_ms);
  if (m == NULL) return;
  chan_copy(m->user, sizeof m->user, user);
  if (text)
    chan_copy(m->text, sizeof m->text, text);
  else
    chan_fmt(m->text, sizeof m->text, "[%.40s]", type ? type : "message");
}

int64_t chan_seconds_to_ms(int64_t s, int64_t fallback) {
  /* Up to the year 5000 or so; anything else is not a real time. */
  if (s <= 0 || s > 100000000000LL) return fallback;
  return s * 1000;
}

int chan_req_bearer(struct chan_req *r, const char *token) {
  char *auth = chan_concat("Bearer ", token, (char *)NULL);
  int rc = chan_req_header(r, "Authorization", auth);
  free(auth);
  return rc;
}
