/*
 * sim_chan.c - the fake messenger providers (see sim_chan.h).
 *
 * Sections, in order: knobs; small helpers (hashes and draws, JSON text,
 * request parameters); apps; the ring of received requests; counters; the
 * callback queue; deferred handshakes; the providers (VK, Viber, Telegram Bot
 * API, Telegram Gateway, WhatsApp); the control API; start and shutdown.
 *
 * Status callbacks wait in a binary min-heap keyed by due time (then by
 * insertion order) served by one loop timer, at most CB_INFLIGHT_MAX being
 * sent at once: to a plain http:// address through sim_post (kept-alive
 * connections, little work per request), to anything else through
 * http_client. Their bodies are built when the send is accepted, with the
 * timestamp the event will have; signatures are computed at each attempt.
 * Answers are written as JSON text directly:
 * at thousands of requests a second, building jansson trees only to print
 * them would be most of the work.
 */
#include "sim_chan.h"

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
#include "sim_knobs.h"
#include "sim_post.h"
#include "sim_rng.h"

#define LOGCTX "chan"
#define REPLY_MAX (16u << 20)         /* cap of one answer we build */
#define CB_TIMEOUT_MS 5000            /* one callback POST, whole */
#define CB_RETRY_MS 1000              /* pause before resending a failed callback */
#define CB_ATTEMPTS 4                 /* first send and 3 retries */
#define GW_ATTEMPTS 11                /* Gateway reports: first send and 10 retries */
#define CB_INFLIGHT_MAX 1024          /* callbacks being sent at once, as many as
                                         connections are kept to a host:
                                         providers call back from many servers, and
                                         fewer would cap callbacks at this many per
                                         kaskad commit */
#define CB_QUEUED_MAX 2000000         /* callbacks waiting; more are dropped (counted) */
#define CB_BATCH 4096                 /* callbacks started per timer run */
#define DEDUP_GEN 524288              /* VK random_ids per generation; two are kept */
#define WINDOW_MAX 1000000            /* WhatsApp windows per app; more clear the table */
#define WINDOW_MS (24LL * 3600 * 1000)
#define APP_BUCKETS 1024
#define APPS_MAX 100000
#define REQUESTS_LIMIT_DEFAULT 100
#define REQUESTS_ANSWER_MAX (512u << 20)
#define MS_MAX 86400000
#define VIBER_TOKEN_BASE 5741311803571721087ull
#define CHAT_HOST "SN-sim"
#define VK_API_VERSION "5.199"
#define WA_DISPLAY_PHONE "15550000000"
#define TG_BOT_ID 1

static const char *const chan_names[SIM_CH_COUNT] = {
  "vk", "viber", "telegram", "telegram_gateway", "whatsapp", "email",
};

/* How a provider request ended; recorded as the request's outcome. */
enum outcome {
  OUT_ACCEPTED,
  OUT_DUPLICATE,                      /* VK random_id repeat: answered, nothing sent */
  OUT_UNAUTHORIZED,
  OUT_BAD_REQUEST,
  OUT_THROTTLED,
  OUT_SERVER_ERROR,
  OUT_UNREACHED,
  OUT_NOT_FOUND,
  OUT_INVALID_URL,                    /* Viber set_webhook: the webhook did not answer 200 */
  OUT_NO_SUCH_USER,                   /* SMTP */
  OUT_TOO_BIG,                        /* SMTP */
  OUT_COUNT
};
#define OUT_FIRST_REFUSED OUT_UNAUTHORIZED

static const char *const out_names[OUT_COUNT] = {
  "accepted", "duplicate", "unauthorized", "bad_request", "throttled", "server_error",
  "unreached", "not_found", "invalid_url", "no_such_user", "too_big",
};

struct chan_stats {
  uint64_t n[OUT_COUNT];              /* requests by outcome */
  uint64_t messages;                  /* sends accepted (a message id given) */
  uint64_t cb_sent;                   /* callback POSTs started (retries included) */
  uint64_t cb_ok;                     /* ... answered 2xx (Gateway: 200) */
  uint64_t cb_failed;                 /* ... answered otherwise or not at all */
  uint64_t cb_given_up;               /* callbacks dropped after their last attempt */
  uint64_t cb_dropped;                /* callbacks not queued: the queue was full */
  uint64_t queued;                    /* callbacks waiting now */
  uint64_t inflight;                  /* callbacks being sent now */
};

/* A map from non-zero 64-bit keys to values, open addressing, grows at half load. */
struct u64map {
  uint64_t *keys;                     /* 0 = empty */
  uint64_t *vals;
  size_t mask;                        /* slots - 1; 0 before the first put */
  size_t used;
};

/* A provider account. */
struct capp {
  struct capp *hnext;                 /* bucket chain */
  struct capp *prev, *next;           /* every app, oldest first */
  enum sim_chan_id channel;
  char *token;                        /* these strings are "" when unset, never NULL */
  char *callback_url;
  char *secret;                       /* VK secret, WhatsApp app secret, Telegram secret_token */
  char *confirmation;
  char *verify_token;
  char *phone_number_id;
  int64_t group_id;
  int confirmed;                      /* VK: -1 not checked, else 0/1 */
  int verified;                       /* WhatsApp: likewise */
  uint64_t next_id;                   /* VK / Telegram message ids given so far */
  uint64_t next_update;               /* Telegram update ids given so far */
  struct u64map dedup[2];             /* VK: hash(peer, random_id) -> message id; [0] newest */
  struct u64map window;               /* WhatsApp: hash(recipient) -> window opened (ms) */
  uint8_t gw_key[32];                 /* Gateway: SHA-256 of the token */
};

/* A recorded request. Its fields sit one after another in blob, each
   followed by a NUL; absent ones take no room. */
enum { RF_METHOD, RF_PATH, RF_CT, RF_AUTH, RF_VTOKEN, RF_BODY, RF_FROM, RF_RCPT, RF_COUNT };
#define RF_ABSENT UINT32_MAX

struct rec {
  uint64_t seq;
  int64_t at;                         /* wall clock of receipt, ms */
  uint8_t channel;
  uint8_t outcome;
  uint32_t len[RF_COUNT];             /* RF_ABSENT when the field is absent */
  char *blob;
  size_t bytes;                       /* counted against SIM_CHAN_RING_BYTES */
};

struct ring {
  struct rec *slot;                   /* cap records */
  size_t cap, head, count;
  size_t bytes;
  uint64_t next_seq;                  /* seq of the next record; starts at 1 */
};

enum sig { SIG_NONE, SIG_VIBER, SIG_TGGW, SIG_WA };

/* A status callback to POST. url, key and body live in data. */
struct cbjob {
  int64_t due;                        /* loop time, ms */
  uint64_t order;                     /* ties on due go first in, first out */
  struct sim_chan *ch;
  uint32_t gen;                       /* sim_chan.gen when queued; stale after a reset */
  uint8_t channel;
  uint8_t sig;                        /* enum sig */
  uint8_t attempts;                   /* POSTs started */
  uint8_t max_attempts;
  size_t key_len, body_len;
  char *url, *key, *body;
  char data[];
};

enum op_kind { OP_VK_CONFIRM, OP_WA_VERIFY, OP_VIBER_WEBHOOK, OP_TG_UPDATE, OP_WA_INBOUND };

/* A request answered once a webhook has answered us. */
struct op {
  struct op *prev, *next;             /* in sim_chan.ops */
  struct sim_chan *ch;
  enum op_kind kind;
  enum sim_chan_id channel;
  char *token;                        /* the app, found again when the answer comes */
  sim_chan_done_fn done;              /* NULL once answered */
  void *ctx;
  char challenge[24];                 /* OP_WA_VERIFY */
  uint64_t id;                        /* OP_TG_UPDATE: update_id */
  char msgid[64];                     /* OP_WA_INBOUND: the message's wamid */
  int has_rec;                        /* OP_VIBER_WEBHOOK: the request, recorded at the end */
  struct rec rec;
};

struct sim_chan {
  uv_loop_t *loop;
  uint64_t seed;
  struct sim_rng rng;
  int closing;
  struct sim_chan_knobs knobs[SIM_CH_COUNT];
  struct chan_stats stats[SIM_CH_COUNT];
  struct capp *bucket[APP_BUCKETS];
  struct capp *apps_head, *apps_tail;
  size_t napps;
  struct ring ring;
  struct http_client *client;         /* NULL once closed */
  struct sim_post *post;              /* callbacks to http:// addresses; NULL once closed */
  uv_timer_t timer;                   /* fires the earliest callback */
  int64_t armed_at;                   /* loop time the timer fires, -1 when idle */
  struct cbjob **heap;                /* min-heap of queued callbacks */
  size_t hn, hcap;
  uint64_t next_order;
  uint32_t gen;                       /* bumped by a reset */
  size_t inflight;                    /* callbacks being sent, all generations */
  struct op *ops;                     /* deferred answers */
  uint64_t viber_n, gw_n, wa_n, mail_n;
};

/* ---- knobs ---- */

static int chan_by_name(const char *s) {
  for (int i = 0; i < SIM_CH_COUNT; i++)
    if (strcmp(chan_names[i], s) == 0) return i;
  return -1;
}

enum ktype { K_SHARE, K_RANGE };

struct knob {
  const char *name;
  enum ktype type;
  size_t off;
};

#define KNOB(n, t, f) {n, t, offsetof(struct sim_chan_knobs, f)}
static const struct knob knob_tab[] = {
  KNOB("reach", K_SHARE, reach),
  KNOB("read", K_SHARE, read),
  KNOB("deliver_ms", K_RANGE, deliver_ms),
  KNOB("read_ms", K_RANGE, read_ms),
  KNOB("throttle", K_SHARE, throttle),
  KNOB("server_error", K_SHARE, server_error),
  KNOB("fail", K_SHARE, fail),
};
#define NKNOBS (sizeof knob_tab / sizeof knob_tab[0])

static void knobs_defaults(struct sim_chan_knobs *k) {
  memset(k, 0, sizeof *k);
  k->reach = 1.0;
  k->read = 0.5;
  k->deliver_ms[0] = 50;
  k->deliver_ms[1] = 200;
  k->read_ms[0] = 200;
  k->read_ms[1] = 1000;
}

static json_t *knobs_json(const struct sim_chan_knobs *all) {
  json_t *o = json_object();
  for (int c = 0; c < SIM_CH_COUNT; c++) {
    json_t *kj = json_object();
    for (size_t i = 0; i < NKNOBS; i++) {
      const char *field = (const char *)&all[c] + knob_tab[i].off;
      json_t *v = knob_tab[i].type == K_SHARE
                      ? json_real(*(const double *)field)
                      : json_pack("[ii]", ((const int *)field)[0], ((const int *)field)[1]);
      json_object_set_new(kj, knob_tab[i].name, v);
    }
    json_object_set_new(o, chan_names[c], kj);
  }
  return o;
}

/* Applies {"vk":{...},...}: all or nothing. Returns 0 or KK_EINVAL (err says why). */
static int knobs_apply(struct sim_chan_knobs *all, const json_t *obj, char *err, size_t cap) {
  if (!json_is_object(obj)) {
    snprintf(err, cap, "channel knobs must be a JSON object of channels");
    return KK_EINVAL;
  }
  struct sim_chan_knobs next[SIM_CH_COUNT];
  memcpy(next, all, sizeof next);
  const char *cname;
  json_t *cv;
  json_object_foreach((json_t *)obj, cname, cv) {
    int c = chan_by_name(cname);
    if (c < 0) {
      snprintf(err, cap, "unknown channel \"%.60s\" (vk, viber, telegram, telegram_gateway, "
               "whatsapp, email)", cname);
      return KK_EINVAL;
    }
    if (!json_is_object(cv)) {
      snprintf(err, cap, "%s must be an object of knobs", cname);
      return KK_EINVAL;
    }
    const char *kname;
    json_t *kv;
    json_object_foreach(cv, kname, kv) {
      const struct knob *kn = NULL;
      for (size_t i = 0; i < NKNOBS; i++)
        if (strcmp(knob_tab[i].name, kname) == 0) kn = &knob_tab[i];
      if (kn == NULL) {
        snprintf(err, cap, "unknown knob \"%s.%.60s\"", cname, kname);
        return KK_EINVAL;
      }
      char *field = (char *)&next[c] + kn->off;
      if (kn->type == K_SHARE) {
        if (!json_is_number(kv) || json_number_value(kv) < 0 || json_number_value(kv) > 1) {
          snprintf(err, cap, "%s.%s must be a number from 0 to 1", cname, kn->name);
          return KK_EINVAL;
        }
        *(double *)field = json_number_value(kv);
      } else {
        long long a, b;
        if (!json_is_array(kv) || json_array_size(kv) != 2 ||
            sim_json_int(json_array_get(kv, 0), &a) || sim_json_int(json_array_get(kv, 1), &b) ||
            a < 0 || a > b || b > MS_MAX) {
          snprintf(err, cap, "%s.%s must be [min, max] with 0 <= min <= max <= %d", cname,
                   kn->name, MS_MAX);
          return KK_EINVAL;
        }
        ((int *)field)[0] = (int)a;
        ((int *)field)[1] = (int)b;
      }
    }
  }
  memcpy(all, next, sizeof next);
  return 0;
}

/* ---- small helpers ---- */

static int64_t wall_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static uint64_t mix64(uint64_t z) {
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

static uint64_t str_hash(const char *s) {
  return mix64(fnv(FNV_OFFSET, s, strlen(s)));
}

/* A draw fixed by (seed, what, channel, addr): hit when it falls under share.
   Shares 0 and 1 are exact. */
static int hashed_hit(const struct sim_chan *ch, const char *what, int c, const char *addr,
                      double share) {
  if (share <= 0) return 0;
  if (share >= 1) return 1;
  uint64_t h = fnv(FNV_OFFSET, what, strlen(what) + 1);
  h = fnv(h, chan_names[c], strlen(chan_names[c]) + 1);
  h = fnv(h, addr, strlen(addr));
  h = mix64(h ^ mix64(ch->seed));
  return (double)(h >> 11) * 0x1.0p-53 < share;
}

static int rng_hit(struct sim_chan *ch, double share) {
  if (share <= 0) return 0;
  if (share >= 1) return 1;
  return sim_rng_01(&ch->rng) < share;
}

static int64_t draw_ms(struct sim_chan *ch, const int r[2]) {
  return sim_rng_range(&ch->rng, r[0], r[1]);
}

/* JSON text written into a capped buffer; the first failure sticks. */
struct jw {
  struct kk_buf b;
  int rc;
};

static void jw_init(struct jw *w, size_t max) {
  kk_buf_init(&w->b, max);
  w->rc = 0;
}

static void jw_raw(struct jw *w, const void *p, size_t n) {
  if (w->rc == 0 && n) w->rc = kk_buf_append(&w->b, p, n);
}

static void jw_lit(struct jw *w, const char *s) {
  jw_raw(w, s, strlen(s));
}

static void jw_fmt(struct jw *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void jw_fmt(struct jw *w, const char *fmt, ...) {
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
static void jw_str(struct jw *w, const char *s, size_t n) {
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

static void jw_cstr(struct jw *w, const char *s) {
  if (s == NULL)
    jw_lit(w, "null");
  else
    jw_str(w, s, strlen(s));
}

/* Hands the text over as a reply. */
static enum sim_chan_handled give(struct sim_chan_reply *out, unsigned status, struct jw *w) {
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

static enum sim_chan_handled give_lit(struct sim_chan_reply *out, unsigned status,
                                      const char *json) {
  out->status = status;
  out->content_type = NULL;
  out->body = kk_xstrdup(json);
  out->len = strlen(json);
  return SIM_CHAN_ANSWERED;
}

/* Replies with v (reference taken over). */
static enum sim_chan_handled give_json(struct sim_chan_reply *out, unsigned status, json_t *v) {
  char *s = v ? json_dumps(v, JSON_COMPACT) : NULL;
  json_decref(v);
  if (s == NULL) return give_lit(out, 500, "{\"error\":{\"code\":\"internal\",\"message\":\"?\"}}");
  out->status = status;
  out->content_type = NULL;
  out->body = s;
  out->len = strlen(s);
  return SIM_CHAN_ANSWERED;
}

/* A control API error: {"error":{"code","message"}}. */
static enum sim_chan_handled ctl_error(struct sim_chan_reply *out, unsigned status,
                                       const char *code, const char *message) {
  return give_json(out, status,
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
static void jw_urlenc(struct jw *w, const char *s) {
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
static json_t *req_params(const struct sim_chan_req *rq, const char *const *qnames) {
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

static const char *pstr(const json_t *p, const char *k) {
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
static int pint(const json_t *p, const char *k, int64_t *out) {
  const json_t *v = json_object_get(p, k);
  if (v == NULL) return KK_ENOENT;
  if (json_is_integer(v)) {
    *out = json_integer_value(v);
    return 0;
  }
  if (json_is_string(v)) return parse_i64(json_string_value(v), out);
  return KK_EINVAL;
}

static const char *bearer(const char *auth) {
  if (auth == NULL || strncasecmp(auth, "Bearer ", 7) != 0) return NULL;
  auth += 7;
  while (*auth == ' ') auth++;
  return *auth ? auth : NULL;
}

/* Copies a phone number without its '+' into out; returns 0 when it is 5
   to 20 digits. */
static int phone_digits(const char *s, char out[24]) {
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
static int body_equals(const char *body, size_t len, const char *want) {
  while (len && (body[len - 1] == '\n' || body[len - 1] == '\r' || body[len - 1] == ' ')) len--;
  while (len && (*body == ' ' || *body == '\n' || *body == '\r')) {
    body++;
    len--;
  }
  return len == strlen(want) && memcmp(body, want, len) == 0;
}

/* ---- maps ---- */

static void map_fini(struct u64map *m) {
  free(m->keys);
  free(m->vals);
  memset(m, 0, sizeof *m);
}

static uint64_t *map_get(const struct u64map *m, uint64_t key) {
  if (m->mask == 0) return NULL;
  for (size_t i = (size_t)mix64(key) & m->mask;; i = (i + 1) & m->mask) {
    if (m->keys[i] == key) return &m->vals[i];
    if (m->keys[i] == 0) return NULL;
  }
}

static void map_put(struct u64map *m, uint64_t key, uint64_t val);

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

static void map_put(struct u64map *m, uint64_t key, uint64_t val) {
  if (m->mask == 0 || (m->used + 1) * 2 > m->mask + 1) map_grow(m);
  size_t i = (size_t)mix64(key) & m->mask;
  while (m->keys[i] != 0 && m->keys[i] != key) i = (i + 1) & m->mask;
  if (m->keys[i] == 0) m->used++;
  m->keys[i] = key;
  m->vals[i] = val;
}

/* ---- apps ---- */

static size_t app_bucket(int c, const char *token) {
  return (size_t)(str_hash(token) ^ (uint64_t)c * 0x9E3779B97F4A7C15ull) & (APP_BUCKETS - 1);
}

static struct capp *app_find(const struct sim_chan *ch, int c, const char *token) {
  if (token == NULL) return NULL;
  for (struct capp *a = ch->bucket[app_bucket(c, token)]; a; a = a->hnext)
    if ((int)a->channel == c && strcmp(a->token, token) == 0) return a;
  return NULL;
}

static void set_str(char **field, const char *v) {
  free(*field);
  *field = kk_xstrdup(v ? v : "");
}

/* Returns the app, created (with empty settings) when new; NULL when
   APPS_MAX apps exist. */
static struct capp *app_upsert(struct sim_chan *ch, int c, const char *token) {
  struct capp *a = app_find(ch, c, token);
  if (a) return a;
  if (ch->napps >= APPS_MAX) return NULL;
  a = kk_xcalloc(1, sizeof *a);
  a->channel = (enum sim_chan_id)c;
  a->token = kk_xstrdup(token);
  a->callback_url = kk_xstrdup("");
  a->secret = kk_xstrdup("");
  a->confirmation = kk_xstrdup("");
  a->verify_token = kk_xstrdup("");
  a->phone_number_id = kk_xstrdup("");
  a->confirmed = a->verified = -1;
  kk_sha256(token, strlen(token), a->gw_key);
  size_t b = app_bucket(c, token);
  a->hnext = ch->bucket[b];
  ch->bucket[b] = a;
  a->prev = ch->apps_tail;
  if (ch->apps_tail)
    ch->apps_tail->next = a;
  else
    ch->apps_head = a;
  ch->apps_tail = a;
  ch->napps++;
  return a;
}

static void app_free(struct capp *a) {
  free(a->token);
  free(a->callback_url);
  free(a->secret);
  free(a->confirmation);
  free(a->verify_token);
  free(a->phone_number_id);
  map_fini(&a->dedup[0]);
  map_fini(&a->dedup[1]);
  map_fini(&a->window);
  free(a);
}

static void apps_clear(struct sim_chan *ch) {
  struct capp *a = ch->apps_head;
  while (a) {
    struct capp *next = a->next;
    app_free(a);
    a = next;
  }
  memset(ch->bucket, 0, sizeof ch->bucket);
  ch->apps_head = ch->apps_tail = NULL;
  ch->napps = 0;
}

static json_t *app_json(const struct capp *a) {
  json_t *o = json_pack("{s:s,s:s,s:s?,s:s,s:I,s:s,s:s,s:s}", "channel", chan_names[a->channel],
                        "token", a->token, "callback_url",
                        a->callback_url[0] ? a->callback_url : NULL, "secret", a->secret,
                        "group_id", (json_int_t)a->group_id, "confirmation", a->confirmation,
                        "verify_token", a->verify_token, "phone_number_id", a->phone_number_id);
  if (o == NULL) return json_object();   /* a field that is not UTF-8 */
  if (a->channel == SIM_CH_VK)
    json_object_set_new(o, "confirmed",
                        a->confirmed < 0 ? json_null() : json_boolean(a->confirmed));
  if (a->channel == SIM_CH_WHATSAPP)
    json_object_set_new(o, "verified",
                        a->verified < 0 ? json_null() : json_boolean(a->verified));
  return o;
}

/* VK: the message id already given for (peer, random_id), or 0. */
static uint64_t dedup_get(const struct capp *a, uint64_t key) {
  const uint64_t *v = map_get(&a->dedup[0], key);
  if (v == NULL) v = map_get(&a->dedup[1], key);
  return v ? *v : 0;
}

static void dedup_put(struct capp *a, uint64_t key, uint64_t id) {
  if (a->dedup[0].used >= DEDUP_GEN) {
    map_fini(&a->dedup[1]);
    a->dedup[1] = a->dedup[0];
    memset(&a->dedup[0], 0, sizeof a->dedup[0]);
  }
  map_put(&a->dedup[0], key, id);
}

static uint64_t nonzero(uint64_t k) {
  return k ? k : 1;
}

/* ---- the ring of received requests ---- */

static void rec_fill(struct rec *r, int c, const char *const f[RF_COUNT],
                     const size_t flen[RF_COUNT]) {
  memset(r, 0, sizeof *r);
  r->at = wall_ms();
  r->channel = (uint8_t)c;
  size_t total = 0;
  for (int i = 0; i < RF_COUNT; i++)
    if (f[i]) total += flen[i] + 1;
  r->blob = kk_xmalloc(total ? total : 1);
  char *p = r->blob;
  for (int i = 0; i < RF_COUNT; i++) {
    if (f[i] == NULL) {
      r->len[i] = RF_ABSENT;
      continue;
    }
    if (flen[i]) memcpy(p, f[i], flen[i]);
    p[flen[i]] = '\0';
    r->len[i] = (uint32_t)flen[i];
    p += flen[i] + 1;
  }
  r->bytes = total + sizeof *r;
}

static void rec_from_req(struct rec *r, int c, const struct sim_chan_req *rq) {
  const char *f[RF_COUNT] = {rq->method, rq->path, rq->content_type, rq->authorization,
                             rq->viber_token, rq->body ? rq->body : "", NULL, NULL};
  size_t flen[RF_COUNT];
  for (int i = 0; i < RF_COUNT; i++) flen[i] = f[i] ? strlen(f[i]) : 0;
  flen[RF_BODY] = rq->body ? rq->body_len : 0;
  rec_fill(r, c, f, flen);
}

/* The field's text (NULL when absent) and length. */
static const char *rec_field(const struct rec *r, int i, size_t *len) {
  if (r->len[i] == RF_ABSENT) return NULL;
  size_t off = 0;
  for (int k = 0; k < i; k++)
    if (r->len[k] != RF_ABSENT) off += r->len[k] + 1;
  *len = r->len[i];
  return r->blob + off;
}

static void ring_drop_oldest(struct ring *g) {
  struct rec *r = &g->slot[g->head];
  g->bytes -= r->bytes;
  free(r->blob);
  r->blob = NULL;
  g->head = (g->head + 1) % g->cap;
  g->count--;
}

/* Takes the record over, stamping its seq and outcome. */
static void ring_add(struct sim_chan *ch, struct rec *r, enum outcome o) {
  struct ring *g = &ch->ring;
  while (g->count && (g->count == g->cap || g->bytes + r->bytes > SIM_CHAN_RING_BYTES))
    ring_drop_oldest(g);
  r->seq = g->next_seq++;
  r->outcome = (uint8_t)o;
  g->slot[(g->head + g->count) % g->cap] = *r;
  g->count++;
  g->bytes += r->bytes;
  r->blob = NULL;
}

static void ring_clear(struct ring *g) {
  while (g->count) ring_drop_oldest(g);
  g->head = 0;
}

/* Adds the request to the ring with outcome o, without counting it. */
static void ring_record(struct sim_chan *ch, const struct sim_chan_req *rq, int c, enum outcome o) {
  struct rec r;
  rec_from_req(&r, c, rq);
  ring_add(ch, &r, o);
}

/* Adds the request to the ring and counts it under outcome o. */
static void record(struct sim_chan *ch, const struct sim_chan_req *rq, int c, enum outcome o) {
  ring_record(ch, rq, c, o);
  ch->stats[c].n[o]++;
}

static void rec_json(struct jw *w, const struct rec *r) {
  static const char *const hname[RF_COUNT] = {
    [RF_CT] = "content-type", [RF_AUTH] = "authorization", [RF_VTOKEN] = "x-viber-auth-token",
  };
  size_t n;
  const char *s;
  jw_fmt(w, "{\"seq\":%" PRIu64 ",\"at\":%" PRId64 ",\"channel\":\"%s\",\"method\":", r->seq,
         r->at, chan_names[r->channel]);
  s = rec_field(r, RF_METHOD, &n);
  s ? jw_str(w, s, n) : jw_lit(w, "null");
  jw_lit(w, ",\"path\":");
  s = rec_field(r, RF_PATH, &n);
  s ? jw_str(w, s, n) : jw_lit(w, "null");
  jw_lit(w, ",\"headers\":{");
  int first = 1;
  for (int i = RF_CT; i <= RF_VTOKEN; i++) {
    s = rec_field(r, i, &n);
    if (s == NULL) continue;
    jw_fmt(w, "%s\"%s\":", first ? "" : ",", hname[i]);
    jw_str(w, s, n);
    first = 0;
  }
  jw_lit(w, "},\"body\":");
  s = rec_field(r, RF_BODY, &n);
  s ? jw_str(w, s, n) : jw_lit(w, "null");
  s = rec_field(r, RF_FROM, &n);
  if (s) {
    jw_lit(w, ",\"from\":");
    jw_str(w, s, n);
  }
  s = rec_field(r, RF_RCPT, &n);
  if (s) {
    jw_lit(w, ",\"rcpt\":[");
    size_t start = 0;
    for (size_t i = 0; i <= n; i++) {
      if (i < n && s[i] != '\n') continue;
      if (start) jw_raw(w, ",", 1);
      jw_str(w, s + start, i - start);
      start = i + 1;
    }
    jw_raw(w, "]", 1);
  }
  jw_fmt(w, ",\"outcome\":\"%s\"}", out_names[r->outcome]);
}

/* ---- counters ---- */

static json_t *stats_json(const struct sim_chan *ch) {
  json_t *o = json_object();
  for (int c = 0; c < SIM_CH_COUNT; c++) {
    const struct chan_stats *s = &ch->stats[c];
    uint64_t requests = 0;
    json_t *refused = json_object();
    for (int i = 0; i < OUT_COUNT; i++) {
      requests += s->n[i];
      if (i >= OUT_FIRST_REFUSED)
        json_object_set_new(refused, out_names[i], json_integer((json_int_t)s->n[i]));
    }
    json_object_set_new(
        o, chan_names[c],
        json_pack("{s:I,s:I,s:I,s:I,s:o,s:I,s:I,s:I,s:I,s:I,s:I}", "requests", (json_int_t)requests,
                  "accepted", (json_int_t)s->n[OUT_ACCEPTED], "messages", (json_int_t)s->messages,
                  "duplicates", (json_int_t)s->n[OUT_DUPLICATE], "refused", refused,
                  "callbacks_sent", (json_int_t)s->cb_sent, "callbacks_ok", (json_int_t)s->cb_ok,
                  "callbacks_failed", (json_int_t)s->cb_failed, "callbacks_given_up",
                  (json_int_t)s->cb_given_up, "callbacks_dropped", (json_int_t)s->cb_dropped,
                  "callbacks_pending", (json_int_t)(s->queued + s->inflight)));
  }
  json_object_set_new(o, "ring", json_pack("{s:I,s:I,s:I}", "entries", (json_int_t)ch->ring.count,
                                           "bytes", (json_int_t)ch->ring.bytes, "next_seq",
                                           (json_int_t)ch->ring.next_seq));
  return o;
}

/* ---- signatures ---- */

/* Signature headers for body, written into h1/h2 and appended to hdr. */
static void sign(enum sig s, const char *key, size_t key_len, const char *body, size_t len,
                 char h1[160], char h2[160], const char **hdr, int *nh) {
  char hex[65];
  switch (s) {
  case SIG_NONE:
    return;
  case SIG_VIBER:
    if (kk_hmac_sha256_hex(key, key_len, body, len, hex) == 0) {
      snprintf(h1, 160, "X-Viber-Content-Signature: %s", hex);
      hdr[(*nh)++] = h1;
    }
    return;
  case SIG_WA:
    if (key_len && kk_hmac_sha256_hex(key, key_len, body, len, hex) == 0) {
      snprintf(h1, 160, "X-Hub-Signature-256: sha256=%s", hex);
      hdr[(*nh)++] = h1;
    }
    return;
  case SIG_TGGW: {
    char ts[24];
    snprintf(ts, sizeof ts, "%" PRId64, wall_ms() / 1000);
    const void *parts[3] = {ts, "\n", body};
    size_t lens[3] = {strlen(ts), 1, len};
    uint8_t mac[32];
    if (kk_hmac_sha256(key, key_len, parts, lens, 3, mac) != 0) return;
    kk_hex(mac, 32, hex);
    snprintf(h1, 160, "X-Request-Timestamp: %s", ts);
    snprintf(h2, 160, "X-Request-Signature: %s", hex);
    hdr[(*nh)++] = h1;
    hdr[(*nh)++] = h2;
    return;
  }
  }
}

/* ---- the callback queue ---- */

static int job_before(const struct cbjob *a, const struct cbjob *b) {
  return a->due < b->due || (a->due == b->due && a->order < b->order);
}

static void heap_push(struct sim_chan *ch, struct cbjob *j) {
  if (ch->hn == ch->hcap) {
    ch->hcap = ch->hcap ? ch->hcap * 2 : 1024;
    ch->heap = kk_xrealloc(ch->heap, ch->hcap * sizeof *ch->heap);
  }
  size_t i = ch->hn++;
  while (i > 0) {
    size_t up = (i - 1) / 2;
    if (!job_before(j, ch->heap[up])) break;
    ch->heap[i] = ch->heap[up];
    i = up;
  }
  ch->heap[i] = j;
}

static struct cbjob *heap_pop(struct sim_chan *ch) {
  struct cbjob *top = ch->heap[0];
  struct cbjob *last = ch->heap[--ch->hn];
  size_t i = 0, n = ch->hn;
  for (;;) {
    size_t l = 2 * i + 1, r = l + 1, m = i;
    const struct cbjob *best = last;
    if (l < n && job_before(ch->heap[l], best)) {
      m = l;
      best = ch->heap[l];
    }
    if (r < n && job_before(ch->heap[r], best)) m = r;
    if (m == i) break;
    ch->heap[i] = ch->heap[m];
    i = m;
  }
  if (n) ch->heap[i] = last;
  return top;
}

static void on_cb_timer(uv_timer_t *t);

/* Makes sure the timer fires when the earliest callback is due. */
static void cb_arm(struct sim_chan *ch) {
  if (ch->closing || ch->hn == 0 || ch->inflight >= CB_INFLIGHT_MAX) return;
  int64_t now = (int64_t)uv_now(ch->loop);
  int64_t due = ch->heap[0]->due;
  if (ch->armed_at >= 0 && ch->armed_at <= due) return;
  int64_t delay = due > now ? due - now : 0;
  uv_timer_start(&ch->timer, on_cb_timer, (uint64_t)delay, 0);
  ch->armed_at = now + delay;
}

static void cb_free_all(struct sim_chan *ch) {
  while (ch->hn) free(ch->heap[--ch->hn]);
}

/* Queues a callback of channel c to url after delay ms; body is copied. */
static void cb_add(struct sim_chan *ch, int c, enum sig s, const void *key, size_t key_len,
                   const char *url, const char *body, size_t body_len, int64_t delay) {
  if (ch->closing) return;
  if (ch->hn >= CB_QUEUED_MAX) {
    ch->stats[c].cb_dropped++;
    return;
  }
  size_t url_len = strlen(url);
  struct cbjob *j = kk_xmalloc(sizeof *j + url_len + 1 + key_len + 1 + body_len + 1);
  memset(j, 0, sizeof *j);
  j->ch = ch;
  j->gen = ch->gen;
  j->channel = (uint8_t)c;
  j->sig = (uint8_t)s;
  j->max_attempts = s == SIG_TGGW ? GW_ATTEMPTS : CB_ATTEMPTS;
  j->url = j->data;
  memcpy(j->url, url, url_len + 1);
  j->key = j->url + url_len + 1;
  if (key_len) memcpy(j->key, key, key_len);
  j->key[key_len] = '\0';
  j->key_len = key_len;
  j->body = j->key + key_len + 1;
  memcpy(j->body, body, body_len);
  j->body[body_len] = '\0';
  j->body_len = body_len;
  j->due = (int64_t)uv_now(ch->loop) + delay;
  j->order = ch->next_order++;
  heap_push(ch, j);
  ch->stats[c].queued++;
  cb_arm(ch);
}

static void cb_send(struct sim_chan *ch, struct cbjob *j);

static void on_cb_answer(void *arg, const struct http_client_resp *resp) {
  struct cbjob *j = arg;
  struct sim_chan *ch = j->ch;
  struct chan_stats *st = &ch->stats[j->channel];
  int current = j->gen == ch->gen;
  ch->inflight--;
  int ok = j->sig == SIG_TGGW ? resp->status == 200 : resp->status >= 200 && resp->status < 300;
  if (current) {
    st->inflight--;
    if (ok)
      st->cb_ok++;
    else
      st->cb_failed++;
  }
  if (!ok && current && !ch->closing && j->attempts < j->max_attempts) {
    kk_debug(LOGCTX, "%s callback to %s: %ld %s; again in 1 s", chan_names[j->channel], j->url,
             resp->status, resp->error);
    j->due = (int64_t)uv_now(ch->loop) + CB_RETRY_MS;
    j->order = ch->next_order++;
    heap_push(ch, j);
    st->queued++;
  } else {
    if (!ok && current && !ch->closing) {
      st->cb_given_up++;
      kk_info(LOGCTX, "%s callback to %s given up after %d attempts (last: %ld %s)",
              chan_names[j->channel], j->url, j->attempts, resp->status, resp->error);
    }
    free(j);
  }
  cb_arm(ch);
}

static void cb_send(struct sim_chan *ch, struct cbjob *j) {
  const char *hdr[4];
  int nh = 0;
  char h1[160], h2[160];
  hdr[nh++] = "Content-Type: application/json";
  sign((enum sig)j->sig, j->key, j->key_len, j->body, j->body_len, h1, h2, hdr, &nh);
  struct http_client_req req = {
    .method = "POST",
    .url = j->url,
    .headers = hdr,
    .nheaders = nh,
    .body = j->body,
    .body_len = j->body_len,
    .timeout_ms = CB_TIMEOUT_MS,
  };
  j->attempts++;
  ch->stats[j->channel].cb_sent++;
  ch->stats[j->channel].inflight++;
  ch->inflight++;
  int rc = ch->post ? sim_post_do(ch->post, &req, on_cb_answer, j) : KK_EINVAL;
  if (rc != 0 && ch->client) rc = http_client_do(ch->client, &req, on_cb_answer, j);
  if (rc != 0) {
    struct http_client_resp r;
    memset(&r, 0, sizeof r);
    r.body = "";
    r.error = "cannot start the request";
    on_cb_answer(j, &r);
  }
}

static void on_cb_timer(uv_timer_t *t) {
  struct sim_chan *ch = t->data;
  ch->armed_at = -1;
  int64_t now = (int64_t)uv_now(ch->loop);
  size_t n = 0;
  while (ch->hn && ch->heap[0]->due <= now && ch->inflight < CB_INFLIGHT_MAX && n < CB_BATCH &&
         !ch->closing) {
    struct cbjob *j = heap_pop(ch);
    ch->stats[j->channel].queued--;
    cb_send(ch, j);
    n++;
  }
  cb_arm(ch);
}

/* ---- deferred answers ---- */

static void op_free(struct op *op) {
  free(op->token);
  if (op->has_rec) free(op->rec.blob);
  free(op);
}

static void op_unlink(struct op *op) {
  struct sim_chan *ch = op->ch;
  if (op->prev)
    op->prev->next = op->next;
  else if (ch->ops == op)
    ch->ops = op->next;
  if (op->next) op->next->prev = op->prev;
  op->prev = op->next = NULL;
}

/* Builds the answer to op's request from the webhook's answer (status 0:
   none; error then says why) and applies what it tells. */
static enum sim_chan_handled op_finish(struct op *op, long status, const char *body, size_t len,
                                       const char *error, struct sim_chan_reply *out) {
  struct sim_chan *ch = op->ch;
  struct capp *app = app_find(ch, op->channel, op->token);
  switch (op->kind) {
  case OP_VK_CONFIRM:
  case OP_WA_VERIFY: {
    if (app == NULL) return ctl_error(out, 409, "app_gone", "the app was removed meanwhile");
    if (op->kind == OP_VK_CONFIRM) {
      app->confirmed = status == 200 && body_equals(body, len, app->confirmation);
      kk_info(LOGCTX, "vk app confirmation at %s: %ld, %s", app->callback_url, status,
              app->confirmed ? "confirmed" : "not confirmed");
    } else {
      app->verified = status == 200 && body_equals(body, len, op->challenge);
      kk_info(LOGCTX, "whatsapp webhook verification at %s: %ld, %s", app->callback_url, status,
              app->verified ? "verified" : "not verified");
    }
    json_t *o = app_json(app);
    json_object_set_new(o, "check_status", json_integer(status));
    return give_json(out, 200, o);
  }
  case OP_VIBER_WEBHOOK: {
    int ok = status == 200;
    if (op->has_rec) {
      ring_add(ch, &op->rec, ok ? OUT_ACCEPTED : OUT_INVALID_URL);
      ch->stats[SIM_CH_VIBER].n[ok ? OUT_ACCEPTED : OUT_INVALID_URL]++;
      op->has_rec = 0;
    }
    if (!ok) return give_lit(out, 200, "{\"status\":1,\"status_message\":\"invalidUrl\"}");
    return give_lit(out, 200,
                    "{\"status\":0,\"status_message\":\"ok\",\"chat_hostname\":\"" CHAT_HOST
                    "\",\"event_types\":[\"delivered\",\"seen\",\"failed\",\"subscribed\","
                    "\"unsubscribed\",\"conversation_started\"]}");
  }
  case OP_TG_UPDATE:
  case OP_WA_INBOUND: {
    if (status == 0) {
      char msg[300];
      snprintf(msg, sizeof msg, "the webhook did not answer: %s", error ? error : "?");
      return ctl_error(out, 502, "no_answer", msg);
    }
    struct jw w;
    jw_init(&w, REPLY_MAX);
    if (op->kind == OP_TG_UPDATE)
      jw_fmt(&w, "{\"ok\":true,\"update_id\":%" PRIu64 ",\"status\":%ld,\"body\":", op->id,
             status);
    else
      jw_fmt(&w, "{\"ok\":true,\"message_id\":\"%s\",\"status\":%ld,\"body\":", op->msgid, status);
    jw_str(&w, body, len);
    jw_raw(&w, "}", 1);
    return give(out, 200, &w);
  }
  }
  return ctl_error(out, 500, "internal", "unknown operation");
}

static void on_op_answer(void *arg, const struct http_client_resp *resp) {
  struct op *op = arg;
  op_unlink(op);
  if (op->done) {
    struct sim_chan_reply r;
    memset(&r, 0, sizeof r);
    op_finish(op, resp->status, resp->body ? resp->body : "", resp->body_len, resp->error, &r);
    sim_chan_done_fn done = op->done;
    op->done = NULL;
    done(op->ctx, &r);
  }
  op_free(op);
}

/* Sends op's request; the answer comes later through done, or at once in
   *out when the request cannot start. op is taken over. */
static enum sim_chan_handled op_start(struct sim_chan *ch, struct op *op, const char *method,
                                      const char *url, const char *const *hdr, int nh,
                                      const char *body, size_t len, struct sim_chan_reply *out,
                                      sim_chan_done_fn done, void *ctx) {
  op->ch = ch;
  op->done = done;
  op->ctx = ctx;
  struct http_client_req req = {
    .method = method,
    .url = url,
    .headers = hdr,
    .nheaders = nh,
    .body = body,
    .body_len = len,
    .timeout_ms = CB_TIMEOUT_MS,
  };
  if (done == NULL || ch->client == NULL ||
      http_client_do(ch->client, &req, on_op_answer, op) != 0) {
    enum sim_chan_handled h = op_finish(op, 0, "", 0, "cannot start the request", out);
    op_free(op);
    return h;
  }
  op->next = ch->ops;
  if (ch->ops) ch->ops->prev = op;
  ch->ops = op;
  return SIM_CHAN_LATER;
}

static struct op *op_new(enum op_kind kind, int c, const char *token) {
  struct op *op = kk_xcalloc(1, sizeof *op);
  op->kind = kind;
  op->channel = (enum sim_chan_id)c;
  op->token = kk_xstrdup(token);
  return op;
}

/* ---- common provider steps ---- */

/* Records the request with outcome o and answers with w's text. */
static enum sim_chan_handled finish(struct sim_chan *ch, const struct sim_chan_req *rq, int c,
                                    enum outcome o, struct sim_chan_reply *out, unsigned status,
                                    struct jw *w) {
  record(ch, rq, c, o);
  return give(out, status, w);
}

static enum sim_chan_handled finish_lit(struct sim_chan *ch, const struct sim_chan_req *rq, int c,
                                        enum outcome o, struct sim_chan_reply *out,
                                        unsigned status, const char *json) {
  record(ch, rq, c, o);
  return give_lit(out, status, json);
}

/* Injected errors of a send: 1 when the request is to be answered with HTTP
   500 (*o set) or the rate-limit error. */
static int draw_error(struct sim_chan *ch, int c, enum outcome *o) {
  const struct sim_chan_knobs *k = &ch->knobs[c];
  if (rng_hit(ch, k->server_error)) {
    *o = OUT_SERVER_ERROR;
    return 1;
  }
  if (rng_hit(ch, k->throttle)) {
    *o = OUT_THROTTLED;
    return 1;
  }
  return 0;
}

/* ---- VK ---- */

/*
 * messages.send, and execute running up to VK_EXECUTE_MAX messages.send
 * calls in one request. Each call goes through vk_call, alone or in a batch:
 * the same random_id dedupe, drawn errors, reach and read callback, and each
 * call counts in /channels/stats as one messages.send request would. An
 * execute is recorded in the ring once: as "accepted" when its calls ran
 * (their outcomes are in the answer and the counters), else with the outcome
 * that refused it as a whole (a bad token, bad code, or the server_error
 * draw, made once per request), which is counted once.
 */

#define VK_ERR(code, msg) "{\"error\":{\"error_code\":" #code ",\"error_msg\":\"" msg "\"}}"
#define VK_EXECUTE_MAX 25                 /* API calls one execute may make */
#define VK_MSG_AUTH "User authorization failed: invalid access_token"
#define VK_MSG_PARAM "One of the parameters specified was missing or invalid"
#define VK_MSG_INTERNAL "Internal server error"
#define VK_MSG_COMPILE "Unable to compile code"
#define VK_MSG_TOO_MANY "Runtime error occurred during code invocation: too many API calls"

static const char *const vk_q[] = {"access_token", "v", "peer_id", "user_id", "random_id",
                                   "message", "attachment", "intent", "keyboard", NULL};
static const char *const vk_execute_q[] = {"access_token", "v", "code", NULL};

/* What one messages.send call came to. */
struct vk_result {
  enum outcome o;
  uint64_t id;                        /* the message id, when accepted or a duplicate */
  int code;                           /* otherwise VK's error code ... */
  const char *msg;                    /* ... and error_msg (static) */
};

static int vk_ok(const struct vk_result *r) {
  return r->o == OUT_ACCEPTED || r->o == OUT_DUPLICATE;
}

static void vk_result_set(struct vk_result *r, enum outcome o, uint64_t id, int code,
                          const char *msg) {
  r->o = o;
  r->id = id;
  r->code = code;
  r->msg = msg;
}

/* The app whose token the request carries (access_token, else a Bearer
   Authorization header), or NULL. p may be NULL. */
static struct capp *vk_app(const struct sim_chan *ch, const struct sim_chan_req *rq,
                           const json_t *p) {
  const char *token = p ? pstr(p, "access_token") : NULL;
  if (token == NULL) token = bearer(rq->authorization);
  return app_find(ch, SIM_CH_VK, token);
}

/* Queues the message_read event of message id when the app has a callback
   URL and the recipient (addr: peer as text) is one who reads. */
static void vk_read_callback(struct sim_chan *ch, const struct capp *app, int64_t peer,
                             const char *addr, uint64_t id) {
  const int c = SIM_CH_VK;
  const struct sim_chan_knobs *k = &ch->knobs[c];
  if (app->callback_url[0] == '\0' || !hashed_hit(ch, "read", c, addr, k->read)) return;
  int64_t delay = draw_ms(ch, k->deliver_ms) + draw_ms(ch, k->read_ms);
  struct jw cb;
  jw_init(&cb, REPLY_MAX);
  jw_fmt(&cb,
         "{\"type\":\"message_read\",\"object\":{\"from_id\":%" PRId64 ",\"peer_id\":%" PRId64
         ",\"read_message_id\":%" PRIu64 "},\"group_id\":%" PRId64
         ",\"event_id\":\"%016" PRIx64 "%016" PRIx64 "\",\"v\":\"" VK_API_VERSION "\"",
         peer, peer, id, app->group_id, sim_rng_next(&ch->rng), sim_rng_next(&ch->rng));
  if (app->secret[0]) {
    jw_lit(&cb, ",\"secret\":");
    jw_cstr(&cb, app->secret);
  }
  jw_raw(&cb, "}", 1);
  if (cb.rc == 0) cb_add(ch, c, SIG_NONE, NULL, 0, app->callback_url, cb.b.p, cb.b.len, delay);
  kk_buf_fini(&cb.b);
}

/*
 * One messages.send call of app with parameters p (NULL: unreadable), into
 * *r: the random_id dedupe, then the drawn errors (HTTP 500 under the share
 * server_error, the knob for messages.send and 0 inside an execute, which
 * draws it for the whole request; the rate-limit error under the throttle
 * knob) and reach; an accepted message gets its id and maybe a read callback.
 * Counts the message but not the request: the caller counts r->o.
 */
static void vk_call(struct sim_chan *ch, struct capp *app, const json_t *p, double server_error,
                    struct vk_result *r) {
  const int c = SIM_CH_VK;
  const struct sim_chan_knobs *k = &ch->knobs[c];
  int64_t peer = 0, rid = 0;
  const char *msg = p ? pstr(p, "message") : NULL;
  if ((msg == NULL || *msg == '\0') && p) msg = pstr(p, "attachment");
  if (p == NULL || (pint(p, "peer_id", &peer) != 0 && pint(p, "user_id", &peer) != 0) ||
      pint(p, "random_id", &rid) != 0 || msg == NULL || *msg == '\0') {
    vk_result_set(r, OUT_BAD_REQUEST, 0, 100, VK_MSG_PARAM);
    return;
  }
  uint64_t key = nonzero(mix64((uint64_t)peer * 0x9E3779B97F4A7C15ull ^ mix64((uint64_t)rid)));
  uint64_t seen = dedup_get(app, key);
  if (seen) {
    vk_result_set(r, OUT_DUPLICATE, seen, 0, NULL);
    return;
  }
  if (rng_hit(ch, server_error)) {
    vk_result_set(r, OUT_SERVER_ERROR, 0, 10, VK_MSG_INTERNAL);
    return;
  }
  if (rng_hit(ch, k->throttle)) {
    vk_result_set(r, OUT_THROTTLED, 0, 9, "Flood control");
    return;
  }
  char addr[24];
  snprintf(addr, sizeof addr, "%" PRId64, peer);
  if (!hashed_hit(ch, "reach", c, addr, k->reach)) {
    vk_result_set(r, OUT_UNREACHED, 0, 901, "Can't send messages for users without permission");
    return;
  }
  vk_result_set(r, OUT_ACCEPTED, ++app->next_id, 0, NULL);
  dedup_put(app, key, r->id);
  ch->stats[c].messages++;
  if (!rng_hit(ch, k->fail)) vk_read_callback(ch, app, peer, addr, r->id);
}

static enum sim_chan_handled vk_send(struct sim_chan *ch, const struct sim_chan_req *rq,
                                     struct sim_chan_reply *out) {
  const int c = SIM_CH_VK;
  json_t *p = req_params(rq, vk_q);
  struct capp *app = vk_app(ch, rq, p);
  if (app == NULL) {
    json_decref(p);
    return finish_lit(ch, rq, c, OUT_UNAUTHORIZED, out, 200, VK_ERR(5, VK_MSG_AUTH));
  }
  struct vk_result r;
  vk_call(ch, app, p, ch->knobs[c].server_error, &r);
  json_decref(p);
  struct jw w;
  jw_init(&w, REPLY_MAX);
  if (vk_ok(&r)) {
    jw_fmt(&w, "{\"response\":%" PRIu64 "}", r.id);
  } else {
    jw_fmt(&w, "{\"error\":{\"error_code\":%d,\"error_msg\":", r.code);
    jw_cstr(&w, r.msg);
    jw_lit(&w, "}}");
  }
  return finish(ch, rq, c, r.o, out, r.o == OUT_SERVER_ERROR ? 500 : 200, &w);
}

/* ---- VK execute: the code ---- */

/* The calls of an execute's code. */
struct vk_script {
  json_t *call[VK_EXECUTE_MAX];       /* each call's parameters; owned */
  size_t n;                           /* calls in the code; past VK_EXECUTE_MAX, not kept */
};

static void script_fini(struct vk_script *sc) {
  for (size_t i = 0; i < sc->n && i < VK_EXECUTE_MAX; i++) json_decref(sc->call[i]);
  sc->n = 0;
}

static const char *skip_ws(const char *s, const char *end) {
  while (s < end && (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\n')) s++;
  return s;
}

/* Skips whitespace, then lit; returns 1 when lit was there (*s moved past
   it), else 0 (*s unchanged). */
static int script_take(const char **s, const char *end, const char *lit) {
  const char *p = skip_ws(*s, end);
  size_t n = strlen(lit);
  if ((size_t)(end - p) < n || memcmp(p, lit, n) != 0) return 0;
  *s = p + n;
  return 1;
}

/* Reads the JSON object after whitespace at *s and moves *s past it.
   Returns a new reference, or NULL when there is no well-formed object. */
static json_t *script_object(const char **s, const char *end) {
  const char *p = skip_ws(*s, end);
  if (p == end || *p != '{') return NULL;
  json_error_t err;
  json_t *o = json_loadb(p, (size_t)(end - p), JSON_DISABLE_EOF_CHECK | JSON_REJECT_DUPLICATES,
                         &err);
  /* Without the EOF check, err.position is where the object ended. */
  if (!json_is_object(o) || err.position <= 0 || (size_t)err.position > (size_t)(end - p)) {
    json_decref(o);
    return NULL;
  }
  *s = p + err.position;
  return o;
}

/* Reads one "API.messages.send({...})" at *s into sc; returns 1 when
   there was one, else 0. */
static int script_call(const char **s, const char *end, struct vk_script *sc) {
  json_t *o = NULL;
  if (!script_take(s, end, "API.messages.send") || !script_take(s, end, "(") ||
      (o = script_object(s, end)) == NULL || !script_take(s, end, ")")) {
    json_decref(o);
    return 0;
  }
  if (sc->n < VK_EXECUTE_MAX)
    sc->call[sc->n] = o;
  else
    json_decref(o);
  sc->n++;
  return 1;
}

/*
 * Compiles code[0..len): "return [API.messages.send({...}),...];" with 1 or
 * more calls, whitespace allowed between the parts, each {...} a JSON object.
 * Returns 0 with sc holding the calls (release them with script_fini), or
 * VK's error code with sc empty: 12 when the code is not of that shape, 13
 * when it makes more than VK_EXECUTE_MAX calls.
 */
static int script_parse(const char *code, size_t len, struct vk_script *sc) {
  const char *s = code, *end = code + len;
  memset(sc, 0, sizeof *sc);
  int ok = script_take(&s, end, "return") && script_take(&s, end, "[") &&
           script_call(&s, end, sc);
  while (ok && script_take(&s, end, ",")) ok = script_call(&s, end, sc);
  ok = ok && script_take(&s, end, "]") && script_take(&s, end, ";") && skip_ws(s, end) == end;
  int rc = !ok ? 12 : sc->n > VK_EXECUTE_MAX ? 13 : 0;
  if (rc) script_fini(sc);
  return rc;
}

/* ---- VK execute: the request ---- */

/* Answers an execute refused as a whole with VK's error (request_params
   included), recorded and counted once under outcome o. */
static enum sim_chan_handled vk_execute_error(struct sim_chan *ch, const struct sim_chan_req *rq,
                                              const json_t *p, enum outcome o, unsigned status,
                                              int code, const char *msg,
                                              struct sim_chan_reply *out) {
  const char *v = p ? pstr(p, "v") : NULL;
  struct jw w;
  jw_init(&w, REPLY_MAX);
  jw_fmt(&w, "{\"error\":{\"error_code\":%d,\"error_msg\":", code);
  jw_cstr(&w, msg);
  jw_lit(&w, ",\"request_params\":[{\"key\":\"method\",\"value\":\"execute\"},"
             "{\"key\":\"oauth\",\"value\":\"1\"}");
  if (v) {
    jw_lit(&w, ",{\"key\":\"v\",\"value\":");
    jw_cstr(&w, v);
    jw_raw(&w, "}", 1);
  }
  jw_lit(&w, "]}}");
  return finish(ch, rq, SIM_CH_VK, o, out, status, &w);
}

/* Runs the calls of sc (released here), each counted as one messages.send,
   and answers {"response":[id|false,...],"execute_errors":[...]}. */
static enum sim_chan_handled vk_execute_run(struct sim_chan *ch, const struct sim_chan_req *rq,
                                            struct capp *app, struct vk_script *sc,
                                            struct sim_chan_reply *out) {
  const int c = SIM_CH_VK;
  struct vk_result r[VK_EXECUTE_MAX];
  size_t n = sc->n;
  for (size_t i = 0; i < n; i++) {
    vk_call(ch, app, sc->call[i], 0, &r[i]);
    ch->stats[c].n[r[i].o]++;
  }
  script_fini(sc);
  struct jw w;
  jw_init(&w, REPLY_MAX);
  jw_lit(&w, "{\"response\":[");
  for (size_t i = 0; i < n; i++) {
    if (i) jw_raw(&w, ",", 1);
    if (vk_ok(&r[i]))
      jw_fmt(&w, "%" PRIu64, r[i].id);
    else
      jw_lit(&w, "false");
  }
  jw_raw(&w, "]", 1);
  size_t nerr = 0;
  for (size_t i = 0; i < n; i++) {
    if (vk_ok(&r[i])) continue;
    jw_lit(&w, nerr++ ? "," : ",\"execute_errors\":[");
    jw_fmt(&w, "{\"method\":\"messages.send\",\"error_code\":%d,\"error_msg\":", r[i].code);
    jw_cstr(&w, r[i].msg);
    jw_raw(&w, "}", 1);
  }
  jw_lit(&w, nerr ? "]}" : "}");
  ring_record(ch, rq, c, OUT_ACCEPTED);
  return give(out, 200, &w);
}

/* An execute with parameters p (borrowed; NULL when unreadable): the token,
   then the code, then the server_error draw (once for the whole request),
   then the calls. */
static enum sim_chan_handled vk_execute_params(struct sim_chan *ch, const struct sim_chan_req *rq,
                                               const json_t *p, struct sim_chan_reply *out) {
  struct capp *app = vk_app(ch, rq, p);
  if (app == NULL)
    return vk_execute_error(ch, rq, p, OUT_UNAUTHORIZED, 200, 5, VK_MSG_AUTH, out);
  const json_t *code = p ? json_object_get(p, "code") : NULL;
  if (!json_is_string(code))
    return vk_execute_error(ch, rq, p, OUT_BAD_REQUEST, 200, 100,
                            VK_MSG_PARAM ": code is undefined", out);
  struct vk_script sc;
  int rc = script_parse(json_string_value(code), json_string_length(code), &sc);
  if (rc)
    return vk_execute_error(ch, rq, p, OUT_BAD_REQUEST, 200, rc,
                            rc == 13 ? VK_MSG_TOO_MANY : VK_MSG_COMPILE, out);
  if (rng_hit(ch, ch->knobs[SIM_CH_VK].server_error)) {
    script_fini(&sc);
    return vk_execute_error(ch, rq, p, OUT_SERVER_ERROR, 500, 10, VK_MSG_INTERNAL, out);
  }
  return vk_execute_run(ch, rq, app, &sc, out);
}

static enum sim_chan_handled vk_execute(struct sim_chan *ch, const struct sim_chan_req *rq,
                                        struct sim_chan_reply *out) {
  json_t *p = req_params(rq, vk_execute_q);
  enum sim_chan_handled h = vk_execute_params(ch, rq, p, out);
  json_decref(p);
  return h;
}

/* /method/<name>: messages.send and execute. */
static enum sim_chan_handled vk(struct sim_chan *ch, const struct sim_chan_req *rq,
                                struct sim_chan_reply *out) {
  if (strcmp(rq->path, "/method/messages.send") == 0) return vk_send(ch, rq, out);
  if (strcmp(rq->path, "/method/execute") == 0) return vk_execute(ch, rq, out);
  return finish_lit(ch, rq, SIM_CH_VK, OUT_NOT_FOUND, out, 200,
                    VK_ERR(3, "Unknown method passed"));
}

/* ---- Viber ---- */

#define VIBER_ERR(code, msg) "{\"status\":" #code ",\"status_message\":\"" msg "\"}"

/* Queues a Viber event callback for message token t. msg_id is the partner
   message_id (JSON text) or NULL; desc is set for "failed". */
static void viber_event(struct sim_chan *ch, const struct capp *app, const char *event,
                        uint64_t t, const char *user, const char *msg_id, const char *desc,
                        int64_t delay) {
  if (app->callback_url[0] == '\0') return;
  struct jw w;
  jw_init(&w, REPLY_MAX);
  jw_fmt(&w,
         "{\"event\":\"%s\",\"timestamp\":%" PRId64 ",\"chat_hostname\":\"" CHAT_HOST
         "\",\"message_token\":%" PRIu64 ",\"user_id\":",
         event, wall_ms() + delay, t);
  jw_cstr(&w, user);
  if (msg_id) {
    jw_lit(&w, ",\"message_id\":");
    jw_lit(&w, msg_id);
  }
  if (desc) {
    jw_lit(&w, ",\"desc\":");
    jw_cstr(&w, desc);
  }
  jw_raw(&w, "}", 1);
  if (w.rc == 0)
    cb_add(ch, SIM_CH_VIBER, SIG_VIBER, app->token, strlen(app->token), app->callback_url, w.b.p,
           w.b.len, delay);
  kk_buf_fini(&w.b);
}

/* The events that follow an accepted message: failed, or delivered and
   maybe seen. */
static void viber_events(struct sim_chan *ch, const struct capp *app, uint64_t t,
                         const char *user, const char *msg_id, int reached) {
  const struct sim_chan_knobs *k = &ch->knobs[SIM_CH_VIBER];
  int64_t d = draw_ms(ch, k->deliver_ms);
  if (!reached) {
    viber_event(ch, app, "failed", t, user, msg_id, "not a Viber user", d);
    return;
  }
  if (rng_hit(ch, k->fail)) {
    viber_event(ch, app, "failed", t, user, msg_id, "simulated failure", d);
    return;
  }
  viber_event(ch, app, "delivered", t, user, msg_id, NULL, d);
  if (hashed_hit(ch, "read", SIM_CH_VIBER, user, k->read))
    viber_event(ch, app, "seen", t, user, msg_id, NULL, d + draw_ms(ch, k->read_ms));
}

static enum sim_chan_handled viber_send(struct sim_chan *ch, const struct sim_chan_req *rq,
                                        struct sim_chan_reply *out, int business) {
  const int c = SIM_CH_VIBER;
  struct capp *app = app_find(ch, c, rq->viber_token);
  if (app == NULL)
    return finish_lit(ch, rq, c, OUT_UNAUTHORIZED, out, 200, VIBER_ERR(2, "invalidAuthToken"));
  json_t *p = json_loadb(rq->body ? rq->body : "", rq->body_len, 0, NULL);
  const char *user = pstr(p, business ? "phone" : "receiver");
  const char *need = pstr(p, business ? "text" : "type");
  char phone[24];
  if (!json_is_object(p) || user == NULL || *user == '\0' || need == NULL || *need == '\0' ||
      (business && phone_digits(user, phone) != 0)) {
    json_decref(p);
    return finish_lit(ch, rq, c, OUT_BAD_REQUEST, out, 200, VIBER_ERR(3, "badData"));
  }
  enum outcome o;
  if (draw_error(ch, c, &o)) {
    json_decref(p);
    if (o == OUT_SERVER_ERROR)
      return finish_lit(ch, rq, c, o, out, 500, VIBER_ERR(1000, "internalServerError"));
    return finish_lit(ch, rq, c, o, out, 200, VIBER_ERR(12, "tooManyRequests"));
  }
  if (business) user = phone;
  int reached = hashed_hit(ch, "reach", c, user, ch->knobs[c].reach);
  if (!business && !reached) {
    json_decref(p);
    return finish_lit(ch, rq, c, OUT_UNREACHED, out, 200, VIBER_ERR(6, "receiverNotSubscribed"));
  }
  uint64_t t = (uint64_t)(VIBER_TOKEN_BASE + ++ch->viber_n);
  ch->stats[c].messages++;
  char *msg_id = NULL;
  const json_t *mid = json_object_get(p, "message_id");
  if (business && mid) msg_id = json_dumps(mid, JSON_COMPACT | JSON_ENCODE_ANY);
  viber_events(ch, app, t, user, msg_id, reached);
  free(msg_id);
  json_decref(p);
  struct jw w;
  jw_init(&w, REPLY_MAX);
  if (business)
    jw_fmt(&w, "{\"status\":0,\"status_message\":\"ok\",\"message_token\":%" PRIu64 "}", t);
  else
    jw_fmt(&w,
           "{\"status\":0,\"status_message\":\"ok\",\"message_token\":%" PRIu64
           ",\"chat_hostname\":\"" CHAT_HOST "\"}",
           t);
  return finish(ch, rq, c, OUT_ACCEPTED, out, 200, &w);
}

static enum sim_chan_handled viber_set_webhook(struct sim_chan *ch, const struct sim_chan_req *rq,
                                               struct sim_chan_reply *out,
                                               sim_chan_done_fn done, void *ctx) {
  const int c = SIM_CH_VIBER;
  const char *token = rq->viber_token;
  if (token == NULL || *token == '\0')
    return finish_lit(ch, rq, c, OUT_UNAUTHORIZED, out, 200, VIBER_ERR(2, "invalidAuthToken"));
  json_t *p = json_loadb(rq->body ? rq->body : "", rq->body_len, 0, NULL);
  const char *url = pstr(p, "url");
  if (url == NULL) {
    json_decref(p);
    return finish_lit(ch, rq, c, OUT_BAD_REQUEST, out, 200, VIBER_ERR(3, "badData"));
  }
  struct capp *app = app_upsert(ch, c, token);
  if (app == NULL) {
    json_decref(p);
    return finish_lit(ch, rq, c, OUT_SERVER_ERROR, out, 500, VIBER_ERR(1000, "tooManyApps"));
  }
  set_str(&app->callback_url, url);
  json_decref(p);
  if (app->callback_url[0] == '\0')   /* an empty url removes the webhook */
    return finish_lit(ch, rq, c, OUT_ACCEPTED, out, 200, VIBER_ERR(0, "ok"));
  struct jw w;
  jw_init(&w, REPLY_MAX);
  jw_fmt(&w,
         "{\"event\":\"webhook\",\"timestamp\":%" PRId64 ",\"chat_hostname\":\"" CHAT_HOST
         "\",\"message_token\":%" PRIu64 "}",
         wall_ms(), (uint64_t)(VIBER_TOKEN_BASE + ++ch->viber_n));
  const char *hdr[4];
  int nh = 0;
  char h1[160], h2[160];
  hdr[nh++] = "Content-Type: application/json";
  sign(SIG_VIBER, app->token, strlen(app->token), w.b.p, w.b.len, h1, h2, hdr, &nh);
  struct op *op = op_new(OP_VIBER_WEBHOOK, c, token);
  rec_from_req(&op->rec, c, rq);
  op->has_rec = 1;
  enum sim_chan_handled h = op_start(ch, op, "POST", app->callback_url, hdr, nh, w.b.p, w.b.len,
                                     out, done, ctx);
  kk_buf_fini(&w.b);
  return h;
}

static enum sim_chan_handled viber(struct sim_chan *ch, const struct sim_chan_req *rq,
                                   struct sim_chan_reply *out, sim_chan_done_fn done, void *ctx) {
  if (strcmp(rq->path, "/pa/send_message") == 0) return viber_send(ch, rq, out, 0);
  if (strcmp(rq->path, "/vbm/v1/messages") == 0) return viber_send(ch, rq, out, 1);
  if (strcmp(rq->path, "/pa/set_webhook") == 0) return viber_set_webhook(ch, rq, out, done, ctx);
  return finish_lit(ch, rq, SIM_CH_VIBER, OUT_NOT_FOUND, out, 404,
                    VIBER_ERR(3, "badData: unknown method"));
}

/* ---- Telegram Bot API ---- */

#define TG_ERR(code, desc) "{\"ok\":false,\"error_code\":" #code ",\"description\":\"" desc "\"}"
#define TG_UNAUTHORIZED TG_ERR(401, "Unauthorized")

static const char *const tg_q[] = {"chat_id", "text", "photo", "caption", "url", "secret_token",
                                   NULL};

/* digits ':' then 10 or more of [A-Za-z0-9_-]. */
static int tg_token_ok(const char *t, size_t n) {
  size_t i = 0;
  while (i < n && t[i] >= '0' && t[i] <= '9') i++;
  if (i == 0 || i >= n || t[i] != ':') return 0;
  size_t rest = n - i - 1;
  if (rest < 10) return 0;
  for (size_t k = i + 1; k < n; k++) {
    char ch = t[k];
    if (!((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
          ch == '_' || ch == '-'))
      return 0;
  }
  return 1;
}

/* A chat id: an integer (or its text), or "@username". Fills addr (the
   recipient for the reach draw) and either *id or *uname. */
static int tg_chat(const json_t *p, int64_t *id, const char **uname, char addr[80]) {
  *uname = NULL;
  if (pint(p, "chat_id", id) == 0) {
    if (*id == 0) return KK_EINVAL;
    snprintf(addr, 80, "%" PRId64, *id);
    return 0;
  }
  const char *s = pstr(p, "chat_id");
  size_t n = s ? strlen(s) : 0;
  if (n < 2 || n > 64 || s[0] != '@') return KK_EINVAL;
  *uname = s;
  memcpy(addr, s, n + 1);
  return 0;
}

static void tg_chat_json(struct jw *w, int64_t id, const char *uname) {
  if (uname)
    jw_cstr(w, uname);
  else
    jw_fmt(w, "%" PRId64, id);
}

static enum sim_chan_handled tg_send(struct sim_chan *ch, const struct sim_chan_req *rq,
                                     struct sim_chan_reply *out, struct capp *app, int photo) {
  const int c = SIM_CH_TELEGRAM;
  json_t *p = req_params(rq, tg_q);
  if (p == NULL)
    return finish_lit(ch, rq, c, OUT_BAD_REQUEST, out, 400,
                      TG_ERR(400, "Bad Request: can't parse JSON object"));
  int64_t chat = 0;
  const char *uname;
  char addr[80];
  if (tg_chat(p, &chat, &uname, addr) != 0) {
    json_decref(p);
    return finish_lit(ch, rq, c, OUT_BAD_REQUEST, out, 400,
                      TG_ERR(400, "Bad Request: chat not found"));
  }
  const char *text = pstr(p, photo ? "caption" : "text");
  const char *pic = pstr(p, "photo");
  if (!photo && (text == NULL || *text == '\0')) {
    json_decref(p);
    return finish_lit(ch, rq, c, OUT_BAD_REQUEST, out, 400,
                      TG_ERR(400, "Bad Request: message text is empty"));
  }
  if (photo && (pic == NULL || *pic == '\0')) {
    json_decref(p);
    return finish_lit(ch, rq, c, OUT_BAD_REQUEST, out, 400,
                      TG_ERR(400, "Bad Request: there is no photo in the request"));
  }
  enum outcome o;
  if (draw_error(ch, c, &o)) {
    json_decref(p);
    if (o == OUT_SERVER_ERROR)
      return finish_lit(ch, rq, c, o, out, 500, TG_ERR(500, "Internal Server Error"));
    return finish_lit(ch, rq, c, o, out, 429,
                      "{\"ok\":false,\"error_code\":429,\"description\":\"Too Many Requests: "
                      "retry after 1\",\"parameters\":{\"retry_after\":1}}");
  }
  if (!hashed_hit(ch, "reach", c, addr, ch->knobs[c].reach)) {
    json_decref(p);
    return finish_lit(ch, rq, c, OUT_UNREACHED, out, 403,
                      TG_ERR(403, "Forbidden: bot can't initiate conversation with a user"));
  }
  uint64_t id = ++app->next_id;
  ch->stats[c].messages++;
  struct jw w;
  jw_init(&w, REPLY_MAX);
  jw_fmt(&w,
         "{\"ok\":true,\"result\":{\"message_id\":%" PRIu64 ",\"from\":{\"id\":%d,\"is_bot\":true,"
         "\"first_name\":\"kaskad sim\",\"username\":\"kaskad_sim_bot\"},\"chat\":{\"id\":",
         id, TG_BOT_ID);
  tg_chat_json(&w, chat, uname);
  jw_fmt(&w, ",\"type\":\"%s\"},\"date\":%" PRId64, uname ? "channel" : "private",
         wall_ms() / 1000);
  if (photo) {
    jw_fmt(&w,
           ",\"photo\":[{\"file_id\":\"sim-photo-%" PRIu64 "\",\"file_unique_id\":\"simp%" PRIu64
           "\",\"width\":320,\"height\":240,\"file_size\":20000}]",
           id, id);
    if (text) {
      jw_lit(&w, ",\"caption\":");
      jw_cstr(&w, text);
    }
  } else {
    jw_lit(&w, ",\"text\":");
    jw_cstr(&w, text);
  }
  jw_lit(&w, "}}");
  json_decref(p);
  return finish(ch, rq, c, OUT_ACCEPTED, out, 200, &w);
}

static enum sim_chan_handled telegram(struct sim_chan *ch, const struct sim_chan_req *rq,
                                      struct sim_chan_reply *out) {
  const int c = SIM_CH_TELEGRAM;
  const char *t = rq->path + 4;   /* after "/bot" */
  const char *slash = strrchr(t, '/');
  if (slash == NULL || slash == t)
    return finish_lit(ch, rq, c, OUT_NOT_FOUND, out, 404, TG_ERR(404, "Not Found"));
  char *token = kk_xstrndup(t, (size_t)(slash - t));
  const char *method = slash + 1;
  enum sim_chan_handled h;
  if (strcasecmp(method, "setWebhook") == 0) {
    json_t *p = req_params(rq, tg_q);
    const char *url = p ? pstr(p, "url") : NULL;
    struct capp *app;
    if (!tg_token_ok(token, strlen(token))) {
      h = finish_lit(ch, rq, c, OUT_UNAUTHORIZED, out, 401, TG_UNAUTHORIZED);
    } else if (p == NULL || url == NULL) {
      h = finish_lit(ch, rq, c, OUT_BAD_REQUEST, out, 400,
                     TG_ERR(400, "Bad Request: bad webhook: "
                                 "An HTTPS URL must be provided for webhook"));
    } else if ((app = app_upsert(ch, c, token)) == NULL) {
      h = finish_lit(ch, rq, c, OUT_SERVER_ERROR, out, 500, TG_ERR(500, "Too many bots"));
    } else {
      set_str(&app->callback_url, url);
      const char *secret = pstr(p, "secret_token");
      if (secret || !url[0]) set_str(&app->secret, secret);
      h = finish_lit(ch, rq, c, OUT_ACCEPTED, out, 200,
                     url[0] ? "{\"ok\":true,\"result\":true,\"description\":"
                              "\"Webhook was set\"}"
                            : "{\"ok\":true,\"result\":true,\"description\":"
                              "\"Webhook was deleted\"}");
    }
    json_decref(p);
    free(token);
    return h;
  }
  struct capp *app = app_find(ch, c, token);
  free(token);
  if (app == NULL) return finish_lit(ch, rq, c, OUT_UNAUTHORIZED, out, 401, TG_UNAUTHORIZED);
  if (strcasecmp(method, "sendMessage") == 0) return tg_send(ch, rq, out, app, 0);
  if (strcasecmp(method, "sendPhoto") == 0) return tg_send(ch, rq, out, app, 1);
  if (strcasecmp(method, "getMe") == 0)
    return finish_lit(ch, rq, c, OUT_ACCEPTED, out, 200,
                      "{\"ok\":true,\"result\":{\"id\":1,\"is_bot\":true,\"first_name\":"
                      "\"kaskad sim\",\"username\":\"kaskad_sim_bot\"}}");
  if (strcasecmp(method, "deleteWebhook") == 0) {
    set_str(&app->callback_url, "");
    return finish_lit(ch, rq, c, OUT_ACCEPTED, out, 200,
                      "{\"ok\":true,\"result\":true,\"description\":\"Webhook was deleted\"}");
  }
  if (strcasecmp(method, "getWebhookInfo") == 0) {
    struct jw w;
    jw_init(&w, REPLY_MAX);
    jw_lit(&w, "{\"ok\":true,\"result\":{\"url\":");
    jw_cstr(&w, app->callback_url);
    jw_lit(&w, ",\"has_custom_certificate\":false,\"pending_update_count\":0}}");
    return finish(ch, rq, c, OUT_ACCEPTED, out, 200, &w);
  }
  return finish_lit(ch, rq, c, OUT_NOT_FOUND, out, 404, TG_ERR(404, "Not Found"));
}

/* ---- Telegram Gateway ---- */

#define GW_ERR(e) "{\"ok\":false,\"error\":\"" e "\"}"

static const char *const gw_q[] = {"access_token", "phone_number", "code", "ttl", "callback_url",
                                   "payload", "sender_username", "request_id", NULL};

/* A RequestStatus object. payload is JSON text or NULL. */
static void gw_status(struct jw *w, const char *request_id, const char *phone, const char *status,
                      int64_t updated_at, const char *payload) {
  jw_fmt(w, "{\"request_id\":\"%s\",\"phone_number\":", request_id);
  jw_cstr(w, phone);
  jw_fmt(w,
         ",\"request_cost\":0.01,\"delivery_status\":{\"status\":\"%s\",\"updated_at\":%" PRId64
         "}",
         status, updated_at);
  if (payload) {
    jw_lit(w, ",\"payload\":");
    jw_lit(w, payload);
  }
  jw_raw(w, "}", 1);
}

static void gw_report(struct sim_chan *ch, const struct capp *app, const char *url,
                      const char *request_id, const char *phone, const char *status,
                      const char *payload, int64_t delay) {
  struct jw w;
  jw_init(&w, REPLY_MAX);
  gw_status(&w, request_id, phone, status, (wall_ms() + delay) / 1000, payload);
  if (w.rc == 0)
    cb_add(ch, SIM_CH_TGGW, SIG_TGGW, app->gw_key, sizeof app->gw_key, url, w.b.p, w.b.len, delay);
  kk_buf_fini(&w.b);
}

static enum sim_chan_handled gateway(struct sim_chan *ch, const struct sim_chan_req *rq,
                                     struct sim_chan_reply *out) {
  const int c = SIM_CH_TGGW;
  const struct sim_chan_knobs *k = &ch->knobs[c];
  json_t *p = req_params(rq, gw_q);
  const char *token = bearer(rq->authorization);
  if (token == NULL && p) token = pstr(p, "access_token");
  struct capp *app = app_find(ch, c, token);
  if (app == NULL) {
    json_decref(p);
    return finish_lit(ch, rq, c, OUT_UNAUTHORIZED, out, 200, GW_ERR("ACCESS_TOKEN_INVALID"));
  }
  const char *phone = p ? pstr(p, "phone_number") : NULL;
  char digits[24];
  if (phone == NULL || phone_digits(phone, digits) != 0) {
    json_decref(p);
    return finish_lit(ch, rq, c, OUT_BAD_REQUEST, out, 200, GW_ERR("PHONE_NUMBER_INVALID"));
  }
  enum outcome o;
  if (draw_error(ch, c, &o)) {
    json_decref(p);
    if (o == OUT_SERVER_ERROR)
      return finish_lit(ch, rq, c, o, out, 500, GW_ERR("INTERNAL_SERVER_ERROR"));
    return finish_lit(ch, rq, c, o, out, 429, GW_ERR("FLOOD_WAIT_1"));
  }
  if (!hashed_hit(ch, "reach", c, digits, k->reach)) {
    json_decref(p);
    return finish_lit(ch, rq, c, OUT_UNREACHED, out, 200, GW_ERR("PHONE_NUMBER_NOT_AVAILABLE"));
  }
  char request_id[48];
  snprintf(request_id, sizeof request_id, "%" PRIx64 "%08" PRIx32, ++ch->gw_n,
           (uint32_t)sim_rng_next(&ch->rng));
  ch->stats[c].messages++;
  char *payload = NULL;
  const json_t *pl = json_object_get(p, "payload");
  if (pl) payload = json_dumps(pl, JSON_COMPACT | JSON_ENCODE_ANY);
  const char *url = pstr(p, "callback_url");
  if (url && *url) {
    int64_t d = draw_ms(ch, k->deliver_ms);
    if (rng_hit(ch, k->fail)) {
      gw_report(ch, app, url, request_id, phone, "expired", payload, d);
    } else {
      gw_report(ch, app, url, request_id, phone, "delivered", payload, d);
      if (hashed_hit(ch, "read", c, digits, k->read))
        gw_report(ch, app, url, request_id, phone, "read", payload, d + draw_ms(ch, k->read_ms));
    }
  }
  struct jw w;
  jw_init(&w, REPLY_MAX);
  jw_lit(&w, "{\"ok\":true,\"result\":");
  gw_status(&w, request_id, phone, "sent", wall_ms() / 1000, payload);
  jw_raw(&w, "}", 1);
  free(payload);
  json_decref(p);
  return finish(ch, rq, c, OUT_ACCEPTED, out, 200, &w);
}

/* ---- WhatsApp Cloud API ---- */

#define WA_ERR(msg, type, code) \
  "{\"error\":{\"message\":\"" msg "\",\"type\":\"" type "\",\"code\":" #code "}}"
#define WA_BAD_PARAM WA_ERR("(#100) Invalid parameter", "OAuthException", 100)

/* "/v<digits>.<digits>/<id>/messages": copies <id> into id. */
static int wa_path(const char *p, char id[64]) {
  if (p[0] != '/' || p[1] != 'v') return 0;
  p += 2;
  const char *s = p;
  while (*p >= '0' && *p <= '9') p++;
  if (p == s || *p != '.') return 0;
  s = ++p;
  while (*p >= '0' && *p <= '9') p++;
  if (p == s || *p != '/') return 0;
  s = ++p;
  const char *slash = strchr(s, '/');
  if (slash == NULL || slash == s || (size_t)(slash - s) >= 64 || strcmp(slash, "/messages") != 0)
    return 0;
  memcpy(id, s, (size_t)(slash - s));
  id[slash - s] = '\0';
  return 1;
}

/* The value object of a webhook POST: everything up to "statuses" or
   "messages". */
static void wa_head(struct jw *w, const char *pnid) {
  jw_lit(w, "{\"object\":\"whatsapp_business_account\",\"entry\":[{\"id\":");
  jw_cstr(w, pnid);
  jw_lit(w, ",\"changes\":[{\"field\":\"messages\",\"value\":{\"messaging_product\":\"whatsapp\","
            "\"metadata\":{\"display_phone_number\":\"" WA_DISPLAY_PHONE "\",\"phone_number_id\":");
  jw_cstr(w, pnid);
  jw_raw(w, "}", 1);
}

static void wa_status(struct sim_chan *ch, const struct capp *app, const char *pnid,
                      const char *wamid, const char *to, const char *status, int64_t delay,
                      int err_code, const char *err_title, const char *category) {
  struct jw w;
  jw_init(&w, REPLY_MAX);
  wa_head(&w, pnid);
  jw_fmt(&w, ",\"statuses\":[{\"id\":\"%s\",\"status\":\"%s\",\"timestamp\":\"%" PRId64
             "\",\"recipient_id\":\"%s\"",
         wamid, status, (wall_ms() + delay) / 1000, to);
  if (err_code)
    jw_fmt(&w,
           ",\"errors\":[{\"code\":%d,\"title\":\"%s\",\"message\":\"%s\",\"error_data\":"
           "{\"details\":\"%s\"}}]",
           err_code, err_title, err_title, err_title);
  else
    jw_fmt(&w, ",\"pricing\":{\"billable\":true,\"pricing_model\":\"PMP\",\"category\":\"%s\"}",
           category);
  jw_lit(&w, "}]}}]}]}");
  if (w.rc == 0)
    cb_add(ch, SIM_CH_WHATSAPP, SIG_WA, app->secret, strlen(app->secret), app->callback_url,
           w.b.p, w.b.len, delay);
  kk_buf_fini(&w.b);
}

static const char *const wa_media[] = {"image", "document", "video", "audio", "sticker",
                                       "interactive", "location", "contacts", "reaction", NULL};

/* Checks a message body; returns 0 and sets *is_template, or KK_EINVAL. */
static int wa_check(const json_t *p, int *is_template) {
  const char *mp = pstr(p, "messaging_product");
  const char *to = pstr(p, "to");
  const char *type = pstr(p, "type");
  if (mp == NULL || strcmp(mp, "whatsapp") != 0 || to == NULL || *to == '\0') return KK_EINVAL;
  if (json_object_get(p, "type") && type == NULL) return KK_EINVAL;
  if (type == NULL) type = "text";
  *is_template = strcmp(type, "template") == 0;
  if (strcmp(type, "text") == 0) {
    const char *body = pstr(json_object_get(p, "text"), "body");
    return body && *body ? 0 : KK_EINVAL;
  }
  if (*is_template) {
    const json_t *t = json_object_get(p, "template");
    const char *name = pstr(t, "name");
    const char *lang = pstr(json_object_get(t, "language"), "code");
    const json_t *comp = json_object_get(t, "components");
    if (name == NULL || *name == '\0' || lang == NULL || *lang == '\0') return KK_EINVAL;
    return comp == NULL || json_is_array(comp) ? 0 : KK_EINVAL;
  }
  for (int i = 0; wa_media[i]; i++)
    if (strcmp(type, wa_media[i]) == 0)
      return json_is_object(json_object_get(p, type)) ? 0 : KK_EINVAL;
  return KK_EINVAL;
}

static enum sim_chan_handled whatsapp(struct sim_chan *ch, const struct sim_chan_req *rq,
                                      struct sim_chan_reply *out, const char *pnid) {
  const int c = SIM_CH_WHATSAPP;
  const struct sim_chan_knobs *k = &ch->knobs[c];
  const char *token = bearer(rq->authorization);
  if (token == NULL && rq->query) token = rq->query(rq->query_ctx, "access_token");
  struct capp *app = app_find(ch, c, token);
  if (app == NULL)
    return finish_lit(ch, rq, c, OUT_UNAUTHORIZED, out, 401,
                      WA_ERR("Invalid OAuth access token", "OAuthException", 190));
  if (app->phone_number_id[0] && strcmp(app->phone_number_id, pnid) != 0)
    return finish_lit(ch, rq, c, OUT_NOT_FOUND, out, 400,
                      WA_ERR("Unsupported post request", "GraphMethodException", 100));
  json_t *p = json_loadb(rq->body ? rq->body : "", rq->body_len, 0, NULL);
  int is_template = 0;
  char to[24];
  if (!json_is_object(p) || wa_check(p, &is_template) != 0 ||
      phone_digits(pstr(p, "to"), to) != 0) {
    json_decref(p);
    return finish_lit(ch, rq, c, OUT_BAD_REQUEST, out, 400, WA_BAD_PARAM);
  }
  json_decref(p);
  enum outcome o;
  if (draw_error(ch, c, &o)) {
    if (o == OUT_SERVER_ERROR)
      return finish_lit(ch, rq, c, o, out, 500,
                        WA_ERR("An unknown error has occurred.", "OAuthException", 1));
    return finish_lit(ch, rq, c, o, out, 429, WA_ERR("Rate limit hit", "OAuthException", 130429));
  }
  char wamid[64];
  snprintf(wamid, sizeof wamid, "wamid.SIM%012" PRIX64 "%08" PRIX32, ++ch->wa_n,
           (uint32_t)sim_rng_next(&ch->rng));
  ch->stats[c].messages++;
  if (app->callback_url[0]) {
    const char *cat = is_template ? "utility" : "service";
    int64_t d = draw_ms(ch, k->deliver_ms);
    const uint64_t *opened = map_get(&app->window, nonzero(str_hash(to)));
    int in_window = opened && wall_ms() - (int64_t)*opened < WINDOW_MS;
    if (!is_template && !in_window) {
      wa_status(ch, app, pnid, wamid, to, "failed", d, 131047, "Re-engagement message", cat);
    } else if (!hashed_hit(ch, "reach", c, to, k->reach) || rng_hit(ch, k->fail)) {
      wa_status(ch, app, pnid, wamid, to, "sent", 0, 0, NULL, cat);
      wa_status(ch, app, pnid, wamid, to, "failed", d, 131026, "Message undeliverable", cat);
    } else {
      wa_status(ch, app, pnid, wamid, to, "sent", 0, 0, NULL, cat);
      wa_status(ch, app, pnid, wamid, to, "delivered", d, 0, NULL, cat);
      if (hashed_hit(ch, "read", c, to, k->read))
        wa_status(ch, app, pnid, wamid, to, "read", d + draw_ms(ch, k->read_ms), 0, NULL, cat);
    }
  }
  struct jw w;
  jw_init(&w, REPLY_MAX);
  jw_fmt(&w,
         "{\"messaging_product\":\"whatsapp\",\"contacts\":[{\"input\":\"%s\",\"wa_id\":\"%s\"}],"
         "\"messages\":[{\"id\":\"%s\"}]}",
         to, to, wamid);
  return finish(ch, rq, c, OUT_ACCEPTED, out, 200, &w);
}

/* ---- control API ---- */

static json_t *body_json(const struct sim_chan_req *rq) {
  return json_loadb(rq->body ? rq->body : "", rq->body_len, 0, NULL);
}

/* Reads an optional non-negative integer query argument. */
static int query_u64(const struct sim_chan_req *rq, const char *name, uint64_t max,
                     uint64_t *out) {
  const char *v = rq->query ? rq->query(rq->query_ctx, name) : NULL;
  if (v == NULL || *v == '\0') return 0;
  char *end;
  errno = 0;
  unsigned long long n = strtoull(v, &end, 10);
  if (errno || *end != '\0' || v[0] == '-' || n > max) return KK_EINVAL;
  *out = n;
  return 0;
}

static enum sim_chan_handled get_requests(struct sim_chan *ch, const struct sim_chan_req *rq,
                                          struct sim_chan_reply *out) {
  uint64_t since = 0, limit = REQUESTS_LIMIT_DEFAULT;
  if (query_u64(rq, "since_seq", UINT64_MAX / 2, &since) ||
      query_u64(rq, "limit", SIM_CHAN_RING_CAP, &limit))
    return ctl_error(out, 400, "bad_query",
                     "since_seq and limit must be non-negative integers (limit at most 100000)");
  const char *cname = rq->query ? rq->query(rq->query_ctx, "channel") : NULL;
  int c = -1;
  if (cname && *cname && (c = chan_by_name(cname)) < 0)
    return ctl_error(out, 400, "bad_query", "unknown channel");
  const struct ring *g = &ch->ring;
  uint64_t first_seq = g->next_seq - g->count;
  size_t i = since > first_seq ? (size_t)(since - first_seq) : 0;
  struct jw w;
  jw_init(&w, REQUESTS_ANSWER_MAX);
  jw_lit(&w, "{\"requests\":[");
  uint64_t n = 0, next = g->next_seq;
  for (; i < g->count && n < limit; i++) {
    const struct rec *r = &g->slot[(g->head + i) % g->cap];
    if (c >= 0 && r->channel != c) continue;
    if (n) jw_raw(&w, ",", 1);
    rec_json(&w, r);
    n++;
    if (n == limit) next = r->seq + 1;
  }
  jw_fmt(&w, "],\"next_seq\":%" PRIu64 "}", next);
  if (w.rc) {
    kk_buf_fini(&w.b);
    return ctl_error(out, 413, "too_big", "the answer would be too large; lower limit");
  }
  return give(out, 200, &w);
}

static enum sim_chan_handled get_apps(struct sim_chan *ch, struct sim_chan_reply *out) {
  json_t *list = json_array();
  for (const struct capp *a = ch->apps_head; a; a = a->next)
    json_array_append_new(list, app_json(a));
  return give_json(out, 200, json_pack("{s:o}", "apps", list));
}

/* A string setting of POST /apps: absent keeps, null clears, else must be a string. */
static int app_field(const json_t *in, const char *name, char **field, int apply) {
  const json_t *v = json_object_get(in, name);
  if (v == NULL) return 0;
  if (!json_is_string(v) && !json_is_null(v)) return KK_EINVAL;
  if (apply) set_str(field, json_is_string(v) ? json_string_value(v) : "");
  return 0;
}

static enum sim_chan_handled post_apps(struct sim_chan *ch, const struct sim_chan_req *rq,
                                       struct sim_chan_reply *out, sim_chan_done_fn done,
                                       void *ctx) {
  json_t *in = body_json(rq);
  const char *cname = pstr(in, "channel");
  const char *token = pstr(in, "token");
  int c = cname ? chan_by_name(cname) : -1;
  const json_t *gid = json_object_get(in, "group_id");
  long long group = 0;
  static const char *const fields[] = {"callback_url", "secret", "confirmation", "verify_token",
                                       "phone_number_id"};
  int bad = !json_is_object(in) || c < 0 || c == SIM_CH_EMAIL || token == NULL || *token == '\0' ||
            (gid && !json_is_null(gid) && sim_json_int(gid, &group) != 0);
  char *dummy = NULL;
  for (size_t i = 0; !bad && i < sizeof fields / sizeof fields[0]; i++)
    bad = app_field(in, fields[i], &dummy, 0) != 0;
  if (bad) {
    json_decref(in);
    return ctl_error(out, 400, "bad_request",
                     "channel (vk, viber, telegram, telegram_gateway, whatsapp) and token are "
                     "required; callback_url, secret, confirmation, verify_token, "
                     "phone_number_id are strings, group_id an integer");
  }
  struct capp *app = app_upsert(ch, c, token);
  if (app == NULL) {
    json_decref(in);
    return ctl_error(out, 507, "too_many_apps", "the simulator holds 100000 apps already");
  }
  char **targets[] = {&app->callback_url, &app->secret, &app->confirmation, &app->verify_token,
                      &app->phone_number_id};
  for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++)
    app_field(in, fields[i], targets[i], 1);
  if (gid) app->group_id = group;
  json_decref(in);
  kk_info(LOGCTX, "%s app %.12s... callback_url %s", chan_names[c], app->token,
          app->callback_url[0] ? app->callback_url : "(none)");
  if (c == SIM_CH_VK && app->callback_url[0]) {
    struct jw w;
    jw_init(&w, REPLY_MAX);
    jw_fmt(&w, "{\"type\":\"confirmation\",\"group_id\":%" PRId64, app->group_id);
    if (app->secret[0]) {
      jw_lit(&w, ",\"secret\":");
      jw_cstr(&w, app->secret);
    }
    jw_raw(&w, "}", 1);
    static const char *const hdr[] = {"Content-Type: application/json"};
    enum sim_chan_handled h = op_start(ch, op_new(OP_VK_CONFIRM, c, app->token), "POST",
                                       app->callback_url, hdr, 1, w.b.p, w.b.len, out, done, ctx);
    kk_buf_fini(&w.b);
    return h;
  }
  if (c == SIM_CH_WHATSAPP && app->callback_url[0]) {
    struct op *op = op_new(OP_WA_VERIFY, c, app->token);
    snprintf(op->challenge, sizeof op->challenge, "%010" PRIu64,
             (uint64_t)(sim_rng_next(&ch->rng) % 10000000000ull));
    struct jw w;
    jw_init(&w, REPLY_MAX);
    jw_lit(&w, app->callback_url);
    jw_lit(&w, strchr(app->callback_url, '?') ? "&" : "?");
    jw_lit(&w, "hub.mode=subscribe&hub.verify_token=");
    jw_urlenc(&w, app->verify_token);
    jw_fmt(&w, "&hub.challenge=%s", op->challenge);
    enum sim_chan_handled h = op_start(ch, op, "GET", w.b.p, NULL, 0, NULL, 0, out, done, ctx);
    kk_buf_fini(&w.b);
    return h;
  }
  return give_json(out, 200, app_json(app));
}

static enum sim_chan_handled post_config(struct sim_chan *ch, const struct sim_chan_req *rq,
                                         struct sim_chan_reply *out) {
  json_error_t jerr;
  json_t *in = json_loadb(rq->body ? rq->body : "", rq->body_len, 0, &jerr);
  if (in == NULL) return ctl_error(out, 400, "bad_json", jerr.text);
  char err[200];
  int rc = knobs_apply(ch->knobs, in, err, sizeof err);
  json_decref(in);
  if (rc) return ctl_error(out, 400, "bad_value", err);
  json_t *now = knobs_json(ch->knobs);
  char *line = json_dumps(now, JSON_COMPACT);
  kk_info(LOGCTX, "channel config: %s", line ? line : "?");
  free(line);
  return give_json(out, 200, now);
}

static enum sim_chan_handled tg_update(struct sim_chan *ch, const struct sim_chan_req *rq,
                                       struct sim_chan_reply *out, sim_chan_done_fn done,
                                       void *ctx) {
  json_t *in = body_json(rq);
  const char *token = pstr(in, "token");
  const char *text = pstr(in, "text");
  int64_t chat = 0;
  const char *uname;
  char addr[80];
  if (!json_is_object(in) || token == NULL || text == NULL || tg_chat(in, &chat, &uname, addr)) {
    json_decref(in);
    return ctl_error(out, 400, "bad_request",
                     "token and text are required strings, chat_id an integer or \"@name\"");
  }
  struct capp *app = app_find(ch, SIM_CH_TELEGRAM, token);
  if (app == NULL || app->callback_url[0] == '\0') {
    json_decref(in);
    return ctl_error(out, app ? 409 : 404, app ? "no_webhook" : "no_app",
                     app ? "the bot has no webhook set" : "no telegram app has that token");
  }
  struct op *op = op_new(OP_TG_UPDATE, SIM_CH_TELEGRAM, app->token);
  op->id = ++app->next_update;
  struct jw w;
  jw_init(&w, REPLY_MAX);
  jw_fmt(&w, "{\"update_id\":%" PRIu64 ",\"message\":{\"message_id\":%" PRIu64 ",\"from\":{\"id\":",
         op->id, ++app->next_id);
  tg_chat_json(&w, chat, uname);
  jw_lit(&w, ",\"is_bot\":false,\"first_name\":\"Sim\"},\"chat\":{\"id\":");
  tg_chat_json(&w, chat, uname);
  jw_fmt(&w, ",\"type\":\"private\"},\"date\":%" PRId64 ",\"text\":", wall_ms() / 1000);
  jw_cstr(&w, text);
  jw_lit(&w, "}}");
  json_decref(in);
  const char *hdr[2];
  int nh = 0;
  char h1[300];
  hdr[nh++] = "Content-Type: application/json";
  if (app->secret[0]) {
    snprintf(h1, sizeof h1, "X-Telegram-Bot-Api-Secret-Token: %s", app->secret);
    hdr[nh++] = h1;
  }
  enum sim_chan_handled h = op_start(ch, op, "POST", app->callback_url, hdr, nh, w.b.p, w.b.len,
                                     out, done, ctx);
  kk_buf_fini(&w.b);
  return h;
}

static enum sim_chan_handled wa_inbound(struct sim_chan *ch, const struct sim_chan_req *rq,
                                        struct sim_chan_reply *out, sim_chan_done_fn done,
                                        void *ctx) {
  json_t *in = body_json(rq);
  const char *token = pstr(in, "token");
  const char *text = pstr(in, "text");
  char from[24];
  if (!json_is_object(in) || token == NULL || phone_digits(pstr(in, "from"), from) != 0 ||
      (json_object_get(in, "text") && text == NULL)) {
    json_decref(in);
    return ctl_error(out, 400, "bad_request",
                     "token is required, from a phone number, text an optional string");
  }
  struct capp *app = app_find(ch, SIM_CH_WHATSAPP, token);
  if (app == NULL) {
    json_decref(in);
    return ctl_error(out, 404, "no_app", "no whatsapp app has that token");
  }
  if (app->window.used >= WINDOW_MAX) map_fini(&app->window);
  int64_t now = wall_ms();
  map_put(&app->window, nonzero(str_hash(from)), (uint64_t)now);
  char wamid[64];
  snprintf(wamid, sizeof wamid, "wamid.SIMIN%010" PRIX64 "%08" PRIX32, ++ch->wa_n,
           (uint32_t)sim_rng_next(&ch->rng));
  if (app->callback_url[0] == '\0') {
    json_decref(in);
    struct jw w;
    jw_init(&w, REPLY_MAX);
    jw_fmt(&w, "{\"ok\":true,\"message_id\":\"%s\",\"status\":null,\"window_until\":%" PRId64 "}",
           wamid, (int64_t)(now + WINDOW_MS));
    return give(out, 200, &w);
  }
  const char *pnid = app->phone_number_id[0] ? app->phone_number_id : "0";
  struct jw w;
  jw_init(&w, REPLY_MAX);
  wa_head(&w, pnid);
  jw_fmt(&w,
         ",\"contacts\":[{\"profile\":{\"name\":\"Sim User\"},\"wa_id\":\"%s\"}],\"messages\":[{"
         "\"from\":\"%s\",\"id\":\"%s\",\"timestamp\":\"%" PRId64 "\",\"type\":\"text\",\"text\":"
         "{\"body\":",
         from, from, wamid, now / 1000);
  jw_cstr(&w, text ? text : "hello");
  jw_lit(&w, "}}]}}]}]}");
  json_decref(in);
  const char *hdr[4];
  int nh = 0;
  char h1[160], h2[160];
  hdr[nh++] = "Content-Type: application/json";
  sign(SIG_WA, app->secret, strlen(app->secret), w.b.p, w.b.len, h1, h2, hdr, &nh);
  struct op *op = op_new(OP_WA_INBOUND, SIM_CH_WHATSAPP, app->token);
  snprintf(op->msgid, sizeof op->msgid, "%s", wamid);
  enum sim_chan_handled h = op_start(ch, op, "POST", app->callback_url, hdr, nh, w.b.p, w.b.len,
                                     out, done, ctx);
  kk_buf_fini(&w.b);
  return h;
}

static enum sim_chan_handled control(struct sim_chan *ch, const struct sim_chan_req *rq,
                                     struct sim_chan_reply *out, sim_chan_done_fn done,
                                     void *ctx) {
  static const struct {
    const char *path;
    int get, post;
  } paths[] = {
    {"/apps", 1, 1}, {"/channels/config", 1, 1}, {"/channels/requests", 1, 0},
    {"/channels/stats", 1, 0}, {"/telegram/update", 0, 1}, {"/whatsapp/inbound", 0, 1},
  };
  int get = strcmp(rq->method, "GET") == 0, post = strcmp(rq->method, "POST") == 0;
  size_t i = 0, n = sizeof paths / sizeof paths[0];
  while (i < n && strcmp(paths[i].path, rq->path) != 0) i++;
  if (i == n) return SIM_CHAN_NOT_MINE;
  if (!((get && paths[i].get) || (post && paths[i].post)))
    return ctl_error(out, 405, "method_not_allowed", "this path does not take that method");
  if (ch->closing) return ctl_error(out, 503, "shutting_down", "the simulator is stopping");
  switch (i) {
  case 0: return get ? get_apps(ch, out) : post_apps(ch, rq, out, done, ctx);
  case 1: return get ? give_json(out, 200, knobs_json(ch->knobs)) : post_config(ch, rq, out);
  case 2: return get_requests(ch, rq, out);
  case 3: return give_json(out, 200, stats_json(ch));
  case 4: return tg_update(ch, rq, out, done, ctx);
  default: return wa_inbound(ch, rq, out, done, ctx);
  }
}

/* ---- entry points ---- */

enum sim_chan_handled sim_chan_handle(struct sim_chan *ch, const struct sim_chan_req *rq,
                                      struct sim_chan_reply *out, sim_chan_done_fn done,
                                      void *ctx) {
  memset(out, 0, sizeof *out);
  const char *p = rq->path;
  char pnid[64];
  if (strncmp(p, "/method/", 8) == 0) return vk(ch, rq, out);
  if (strncmp(p, "/pa/", 4) == 0 || strncmp(p, "/vbm/", 5) == 0)
    return viber(ch, rq, out, done, ctx);
  if (strncmp(p, "/bot", 4) == 0 && p[4] != '\0') return telegram(ch, rq, out);
  if (strcmp(p, "/sendVerificationMessage") == 0) return gateway(ch, rq, out);
  if (wa_path(p, pnid)) return whatsapp(ch, rq, out, pnid);
  return control(ch, rq, out, done, ctx);
}

const struct sim_chan_knobs *sim_chan_knobs(const struct sim_chan *ch, enum sim_chan_id c) {
  return &ch->knobs[c];
}

int sim_chan_reached(const struct sim_chan *ch, enum sim_chan_id c, const char *addr) {
  return hashed_hit(ch, "reach", (int)c, addr, ch->knobs[c].reach);
}

void sim_chan_record_mail(struct sim_chan *ch, const struct sim_chan_mail *m) {
  struct kk_buf rcpt;
  kk_buf_init(&rcpt, SIZE_MAX / 2);
  for (size_t i = 0; i < m->nrcpt; i++) {
    if (i) kk_buf_append(&rcpt, "\n", 1);
    kk_buf_puts(&rcpt, m->rcpt[i]);
  }
  const char *f[RF_COUNT] = {"SMTP", "", NULL, NULL, NULL, m->data ? m->data : "",
                             m->from ? m->from : "", rcpt.p ? rcpt.p : ""};
  size_t flen[RF_COUNT] = {4, 0, 0, 0, 0, m->data ? m->len : 0, strlen(f[RF_FROM]), rcpt.len};
  struct rec r;
  rec_fill(&r, SIM_CH_EMAIL, f, flen);
  kk_buf_fini(&rcpt);
  ring_add(ch, &r, OUT_ACCEPTED);
  ch->stats[SIM_CH_EMAIL].n[OUT_ACCEPTED]++;
  ch->stats[SIM_CH_EMAIL].messages++;
}

void sim_chan_count_refused(struct sim_chan *ch, enum sim_chan_id c, const char *reason) {
  for (int i = OUT_FIRST_REFUSED; i < OUT_COUNT; i++) {
    if (strcmp(out_names[i], reason) == 0) {
      ch->stats[c].n[i]++;
      return;
    }
  }
}

void sim_chan_reset(struct sim_chan *ch, int apps) {
  ring_clear(&ch->ring);
  cb_free_all(ch);
  memset(ch->stats, 0, sizeof ch->stats);
  ch->gen++;
  if (apps) apps_clear(ch);
  kk_info(LOGCTX, "channel requests, counters and pending callbacks cleared%s",
          apps ? ", apps forgotten" : "");
}

int sim_chan_start(uv_loop_t *loop, uint64_t seed, const char *channels_json, char *err,
                   size_t errcap, struct sim_chan **out) {
  *out = NULL;
  struct sim_chan_knobs knobs[SIM_CH_COUNT];
  for (int c = 0; c < SIM_CH_COUNT; c++) knobs_defaults(&knobs[c]);
  if (channels_json) {
    json_error_t jerr;
    json_t *j = json_loads(channels_json, 0, &jerr);
    if (j == NULL) {
      snprintf(err, errcap, "%s", jerr.text);
      return KK_EINVAL;
    }
    int rc = knobs_apply(knobs, j, err, errcap);
    json_decref(j);
    if (rc) return rc;
  }
  struct http_client *client = http_client_new(loop, 64 * 1024);
  if (client == NULL) {
    snprintf(err, errcap, "cannot start the callback client");
    return KK_EIO;
  }
  struct sim_chan *ch = kk_xcalloc(1, sizeof *ch);
  ch->loop = loop;
  ch->seed = seed;
  sim_rng_seed(&ch->rng, seed ^ 0x6368616e6e656c73ull);   /* "channels" */
  memcpy(ch->knobs, knobs, sizeof knobs);
  ch->ring.cap = SIM_CHAN_RING_CAP;
  ch->ring.slot = kk_xcalloc(ch->ring.cap, sizeof *ch->ring.slot);
  ch->ring.next_seq = 1;
  ch->client = client;
  ch->post = sim_post_new(loop, 64 * 1024, CB_INFLIGHT_MAX);
  uv_timer_init(loop, &ch->timer);
  ch->timer.data = ch;
  ch->armed_at = -1;
  *out = ch;
  return 0;
}

void sim_chan_close(struct sim_chan *ch) {
  if (ch->closing) return;
  ch->closing = 1;
  for (struct op *op = ch->ops; op; op = op->next) {
    if (op->done == NULL) continue;
    struct sim_chan_reply r;
    memset(&r, 0, sizeof r);
    ctl_error(&r, 503, "shutting_down", "the simulator is stopping");
    sim_chan_done_fn done = op->done;
    op->done = NULL;
    done(op->ctx, &r);
  }
  cb_free_all(ch);
  /* Running requests end now: their callbacks free the jobs and ops. */
  if (ch->client) {
    http_client_close(ch->client, NULL, NULL);
    ch->client = NULL;
  }
  sim_post_close(ch->post);
  ch->post = NULL;
  uv_close((uv_handle_t *)&ch->timer, NULL);
}

void sim_chan_free(struct sim_chan *ch) {
  if (ch == NULL) return;
  cb_free_all(ch);
  free(ch->heap);
  while (ch->ops) {
    struct op *op = ch->ops;
    op_unlink(op);
    op_free(op);
  }
  apps_clear(ch);
  ring_clear(&ch->ring);
  free(ch->ring.slot);
  free(ch);
}
