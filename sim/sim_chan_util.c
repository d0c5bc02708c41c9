/*
 * sim_chan_util.c - small helpers shared by the fake providers: hashes and
 * draws, JSON text written directly (struct jw), answers, request parameters,
 * the u64 map.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "core/kk_buf.h"
#include "core/kk_crypto.h"
#include "core/kk_err.h"
#include "core/kk_log.h"
#include "core/kk_mem.h"
#include "http/http_client.h"
#include "sim_chan_int.h"
#include "sim_knobs.h"
#include "sim_post.h"
#include "sim_rng.h"

/* ---- small helpers ---- */

int64_t chan_wall_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

uint64_t chan_mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

#define FNV_OFFSET 0xcbf29ce484222325ull

static uint64_t fnv(uint64_t h, const void *p, size_t n) {
  const uint8_t *s = p;
  for (size_t i = 0; i < n; i++) {
    h ^= s[i];
    h *= 0x100000001b3ull;
  }
  return h;
}

uint64_t chan_str_hash(const char *s) {
  return chan_mix64(fnv(FNV_OFFSET, s, strlen(s)));
}

/* A draw fixed by (seed, what, channel, addr): hit when it falls under share.
   Shares 0 and 1 are exact. */
int chan_hashed_hit(const struct sim_chan *ch, const char *what, int c, const char *addr,
                    double share) {
  if (share <= 0) return 0;
  if (share >= 1) return 1;
  uint64_t h = fnv(FNV_OFFSET, what, strlen(what) + 1);
  h = fnv(h, chan_names[c], strlen(chan_names[c]) + 1);
  h = fnv(h, addr, strlen(addr));
  h = chan_mix64(h ^ chan_mix64(ch->seed));
  return (double)(h >> 11) * 0x1.0p-53 < share;
}

int chan_rng_hit(struct sim_chan *ch, double share) {
  if (share <= 0) return 0;
  if (share >= 1) return 1;
  return sim_rng_01(&ch->rng) < share;
}

int64_t chan_draw_ms(struct sim_chan *ch, const int r[2]) {
  return sim_rng_range(&ch->rng, r[0], r[1]);
}

void jw_init(struct jw *w, size_t max) {
  kk_buf_init(&w->b, max);
  w->rc = 0;
}

void jw_raw(struct jw *w, const void *p, size_t n) {
  if (w->rc == 0 && n) w->rc = kk_buf_append(&w->b, p, n);
}

void jw_lit(struct jw *w, const char *s) {
  jw_raw(w, s, strlen(s));
}

void jw_fmt(struct jw *w, const char *fmt, ...) {
  if (w->rc) return;
  va_list ap;
  va_start(ap, fmt);
  w->rc = kk_buf_vprintf(&w->b, fmt, ap);
  va_end(ap);
}

/* Length of the well-formed UTF-8 sequence at p (shortest form, no
   surrogates), or 0. */
static size_t utf8_len(const unsigned char *p, size_t n) {
  unsigned c = p[0];
  size_t len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
  if (len == 0 || len > n) return 0;
  uint32_t cp = len == 1 ? c : c & (0x7Fu >> len);
  for (size_t k = 1; k < len; k++) {
    if ((p[k] & 0xC0) != 0x80) return 0;
    cp = cp << 6 | (p[k] & 0x3F);
  }
  if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) ||
      (len == 4 && (cp < 0x10000 || cp > 0x10FFFF)) || (cp >= 0xD800 && cp <= 0xDFFF))
    return 0;
  return len;
}

/* Writes s[0..n) as a JSON string; bytes that are not UTF-8 become U+FFFD. */
void jw_str(struct jw *w, const char *s, size_t n) {
  const unsigned char *p = (const unsigned char *)s;
  jw_raw(w, "\"", 1);
  size_t i = 0, run = 0;
  while (i < n) {
    unsigned char c = p[i];
    if (c >= 0x20 && c < 0x80 && c != '"' && c != '\\') {
      i++;
      continue;
    }
    if (c >= 0x80) {
      size_t l = utf8_len(p + i, n - i);
      if (l) {
        i += l;
        continue;
      }
    }
    jw_raw(w, s + run, i - run);
    char esc[8];
    switch (c) {
    case '"': jw_raw(w, "\\\"", 2); break;
    case '\\': jw_raw(w, "\\\\", 2); break;
    case '\n': jw_raw(w, "\\n", 2); break;
    case '\r': jw_raw(w, "\\r", 2); break;
    case '\t': jw_raw(w, "\\t", 2); break;
    default:
      if (c < 0x20) {
        snprintf(esc, sizeof esc, "\\u%04x", c);
        jw_raw(w, esc, 6);
      } else {
        jw_raw(w, "\\ufffd", 6);
      }
    }
    i++;
    run = i;
  }
  jw_raw(w, s + run, n - run);
  jw_raw(w, "\"", 1);
}

void jw_cstr(struct jw *w, const char *s) {
  if (s == NULL)
    jw_lit(w, "null");
  else
    jw_str(w, s, strlen(s));
}

/* Hands the text over as a reply. */
enum sim_chan_handled chan_give(struct sim_chan_reply *out, unsigned status, struct jw *w) {
  out->content_type = NULL;
  if (w->rc) {
    kk_buf_fini(&w->b);
    out->status = 500;
    out->body = kk_xstrdup("{\"error\":{\"code\":\"too_big\",\"message\":\"answer too large\"}}");
    out->len = strlen(out->body);
    return SIM_CHAN_ANSWERED;
  }
  out->status = status;
  out->body = kk_buf_take(&w->b, &out->len);
  if (out->body == NULL) {
    out->body = kk_xstrdup("");
    out->len = 0;
  }
  return SIM_CHAN_ANSWERED;
}

enum sim_chan_handled chan_give_lit(struct sim_chan_reply *out, unsigned status,
                                    const char *json) {
  out->status = status;
  out->content_type = NULL;
  out->body = kk_xstrdup(json);
  out->len = strlen(json);
  return SIM_CHAN_ANSWERED;
}

/* Replies with v (reference taken over). */
enum sim_chan_handled chan_give_json(struct sim_chan_reply *out, unsigned status, json_t *v) {
  char *s = v ? json_dumps(v, JSON_COMPACT) : NULL;
  json_decref(v);
  if (s == NULL)
    return chan_give_lit(out, 500, "{\"error\":{\"code\":\"internal\",\"message\":\"?\"}}");
  out->status = status;
  out->content_type = NULL;
  out->body = s;
  out->len = strlen(s);
  return SIM_CHAN_ANSWERED;
}

/* A control API error: {"error":{"code","message"}}. */
enum sim_chan_handled chan_ctl_error(struct sim_chan_reply *out, unsigned status,
                                     const char *code, const char *message) {
  return chan_give_json(out, status,
                   json_pack("{s:{s:s,s:s}}", "error", "code", code, "message", message));
}

static int hexval(int c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

/* Decodes %XX and '+' in place; returns the new length. */
static size_t url_decode(char *s) {
  char *o = s;
  for (char *p = s; *p; p++) {
    if (*p == '+') {
      *o++ = ' ';
    } else if (*p == '%' && hexval(p[1]) >= 0 && hexval(p[2]) >= 0) {
      *o++ = (char)(hexval(p[1]) * 16 + hexval(p[2]));
      p += 2;
    } else {
      *o++ = *p;
    }
  }
  *o = '\0';
  return (size_t)(o - s);
}

/* Appends s percent-encoded (RFC 3986 unreserved kept). */
void jw_urlenc(struct jw *w, const char *s) {
  for (; *s; s++) {
    unsigned char c = (unsigned char)*s;
    if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
        c == '-' || c == '_' || c == '.' || c == '~')
      jw_raw(w, s, 1);
    else
      jw_fmt(w, "%%%02X", c);
  }
}

/* Adds the fields of a form body to p as strings; the first of a name wins. */
static void form_into(json_t *p, const char *body, size_t len) {
  char *buf = kk_xstrndup(body, len);
  char *s = buf;
  for (;;) {
    char *amp = strchr(s, '&');
    if (amp) *amp = '\0';
    if (*s) {
      char *eq = strchr(s, '=');
      size_t vlen = 0;
      if (eq) {
        *eq = '\0';
        vlen = url_decode(eq + 1);
      }
      url_decode(s);
      if (*s && json_object_get(p, s) == NULL)
        json_object_set_new(p, s, json_stringn(eq ? eq + 1 : "", vlen));
    }
    if (amp == NULL) break;
    s = amp + 1;
  }
  free(buf);
}

static int looks_json(const struct sim_chan_req *rq) {
  if (rq->content_type && strcasestr(rq->content_type, "json")) return 1;
  for (size_t i = 0; i < rq->body_len; i++) {
    char c = rq->body[i];
    if (c == ' ' || c == '\t' || c == '\r' || c == '\n') continue;
    return c == '{';
  }
  return 0;
}

/*
 * The request's parameters as a JSON object: a JSON body as it is, else the
 * fields of a form body as strings; the query arguments named in qnames fill
 * in what the body lacks. Returns NULL when a JSON body is not an object.
 */
json_t *chan_req_params(const struct sim_chan_req *rq, const char *const *qnames) {
  json_t *p;
  if (rq->body_len > 0 && looks_json(rq)) {
    p = json_loadb(rq->body, rq->body_len, 0, NULL);
    if (!json_is_object(p)) {
      json_decref(p);
      return NULL;
    }
  } else {
    p = json_object();
    if (rq->body_len > 0) form_into(p, rq->body, rq->body_len);
  }
  for (size_t i = 0; qnames && qnames[i] && rq->query; i++) {
    if (json_object_get(p, qnames[i])) continue;
    const char *v = rq->query(rq->query_ctx, qnames[i]);
    if (v) json_object_set_new(p, qnames[i], json_string(v));
  }
  return p;
}

const char *chan_pstr(const json_t *p, const char *k) {
  const json_t *v = json_object_get(p, k);
  return json_is_string(v) ? json_string_value(v) : NULL;
}

static int parse_i64(const char *s, int64_t *out) {
  if (s == NULL || *s == '\0') return KK_EINVAL;
  char *end;
  errno = 0;
  long long v = strtoll(s, &end, 10);
  if (errno || *end != '\0' || (s[0] != '-' && (s[0] < '0' || s[0] > '9'))) return KK_EINVAL;
  *out = v;
  return 0;
}

/* An integer parameter, given as a number or as decimal text. Returns 0,
   KK_ENOENT (absent) or KK_EINVAL. */
int chan_pint(const json_t *p, const char *k, int64_t *out) {
  const json_t *v = json_object_get(p, k);
  if (v == NULL) return KK_ENOENT;
  if (json_is_integer(v)) {
    *out = json_integer_value(v);
    return 0;
  }
  if (json_is_string(v)) return parse_i64(json_string_value(v), out);
  return KK_EINVAL;
}

const char *chan_bearer(const char *auth) {
  if (auth == NULL || strncasecmp(auth, "Bearer ", 7) != 0) return NULL;
  auth += 7;
  while (*auth == ' ') auth++;
  return *auth ? auth : NULL;
}

/* Copies a phone number without its '+' into out; returns 0 when it is 5
   to 20 digits. */
int chan_phone_digits(const char *s, char out[24]) {
  if (s == NULL) return KK_EINVAL;
  if (*s == '+') s++;
  size_t n = strlen(s);
  if (n < 5 || n > 20) return KK_EINVAL;
  for (size_t i = 0; i < n; i++)
    if (s[i] < '0' || s[i] > '9') return KK_EINVAL;
  memcpy(out, s, n + 1);
  return 0;
}

/* Compares an answer body with want, ignoring whitespace around the body. */
int chan_body_equals(const char *body, size_t len, const char *want) {
  while (len && (body[len - 1] == '\n' || body[len - 1] == '\r' || body[len - 1] == ' ')) len--;
  while (len && (*body == ' ' || *body == '\n' || *body == '\r')) {
    body++;
    len--;
  }
  return len == strlen(want) && memcmp(body, want, len) == 0;
}

/* ---- maps ---- */

void map_fini(struct u64map *m) {
  free(m->keys);
  free(m->vals);
  memset(m, 0, sizeof *m);
}

uint64_t *map_get(const struct u64map *m, uint64_t key) {
  if (m->mask == 0) return NULL;
  for (size_t i = (size_t)chan_mix64(key) & m->mask;; i = (i + 1) & m->mask) {
    if (m->keys[i] == key) return &m->vals[i];
    if (m->keys[i] == 0) return NULL;
  }
}


static void map_grow(struct u64map *m) {
  struct u64map old = *m;
  size_t slots = old.mask ? (old.mask + 1) * 2 : 64;
  m->keys = kk_xcalloc(slots, sizeof *m->keys);
  m->vals = kk_xcalloc(slots, sizeof *m->vals);
  m->mask = slots - 1;
  m->used = 0;
  for (size_t i = 0; old.mask && i <= old.mask; i++)
    if (old.keys[i]) map_put(m, old.keys[i], old.vals[i]);
  map_fini(&old);
}

void map_put(struct u64map *m, uint64_t key, uint64_t val) {
  if (m->mask == 0 || (m->used + 1) * 2 > m->mask + 1) map_grow(m);
  size_t i = (size_t)chan_mix64(key) & m->mask;
  while (m->keys[i] != 0 && m->keys[i] != key) i = (i + 1) & m->mask;
  if (m->keys[i] == 0) m->used++;
  m->keys[i] = key;
  m->vals[i] = val;
}

