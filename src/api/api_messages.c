/*
 * api_messages.c - POST /v1/messages, POST /v1/messages/batch,
 * GET /v1/messages/{id}, GET /v1/messages.
 *
 * A send is validated completely before anything is written; the valid
 * messages of a request are stored in one operation (one commit), and the
 * client hears 202 only from the commit's done callback.
 */
#include <ctype.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "core/kk_cfg.h"
#include "core/kk_crypto.h"
#include "core/kk_err.h"
#include "core/kk_log.h"
#include "core/kk_mem.h"
#include "core/kk_net.h"
#include "cascade/cascade.h"
#include "dispatch/dispatch.h"
#include "http/http_client.h"
#include "http/http_server.h"
#include "phone/phone.h"
#include "sms/sms_enc.h"
#include "store/store.h"

#define MAX_BATCH 1000
#define MAX_TEXT_BYTES 4096
#define MAX_URL 500
#define MAX_IDEM 128
#define MIN_TTL_MS (30LL * 1000)
#define MAX_TTL_MS (7LL * 24 * 3600 * 1000)

#define item api_msg_item

struct send_ctx {
  struct api *a;
  struct http_req *req;
  json_t *doc;               /* keeps the borrowed strings alive */
  int batch;
  int n;                     /* items */
  struct item *items;
  struct store_msg_new *msgs;  /* the valid ones, contiguous, for the store */
  int *msg_item;             /* msgs[i] belongs to items[msg_item[i]] */
  int nmsgs;
};

static const char *const classes[] = {"service", "transactional", "advertising"};

const char *const api_msg_statuses[API_MSG_NSTATUSES] = {
    "accepted", "scheduled", "sending", "sent", "delivered",
    "read", "failed", "expired", "rejected", "cancelled"};

/*
 * "msg_" and 20 base-32 characters: 40 bits of milliseconds since 2020, then
 * 60 random bits. Ids made later sort later, so the store's unique index on
 * them grows at its end (a few pages per commit) instead of every insert
 * dirtying a random page; the random part keeps them unguessable.
 */
static void new_public_id(char out[40]) {
  unsigned char b[8];
  if (RAND_bytes(b, sizeof b) != 1) abort();
  static const char alphabet[] = "0123456789abcdefghjkmnpqrstvwxyz";
  uint64_t ms = (uint64_t)(store_now_ms() - 1577836800000LL) & ((1ULL << 40) - 1);
  uint64_t rnd = 0;
  for (int i = 0; i < 8; i++) rnd = (rnd << 8) | b[i];
  rnd >>= 4; /* 60 bits */
  memcpy(out, "msg_", 4);
  for (int i = 0; i < 8; i++) out[4 + i] = alphabet[(ms >> (35 - 5 * i)) & 31];
  for (int i = 0; i < 12; i++) out[12 + i] = alphabet[(rnd >> (55 - 5 * i)) & 31];
  out[24] = '\0';
}

static int refuse(struct api_err *e, int status, const char *code, const char *field,
                  const char *fmt, const char *detail) {
  e->status = status;
  e->code = code;
  e->field = field;
  snprintf(e->message, sizeof e->message, fmt, detail ? detail : "");
  return -1;
}

int api_valid_sender(const char *s) {
  size_t n = strlen(s);
  if (n == 0) return 0;
  int digits = 1;
  for (const char *p = s; *p; p++) {
    if (!isdigit((unsigned char)*p) && !(p == s && *p == '+')) digits = 0;
    if ((unsigned char)*p < 0x20 || (unsigned char)*p > 0x7e) return 0;
  }
  return digits ? n <= 16 : n <= 11;
}

/* An idempotency key: 1 to MAX_IDEM printable ASCII characters, the same
   in the body as in the Idempotency-Key header (whose value is ASCII), and
   never longer than the field the store reads it back into. */
static int valid_idem(const char *s, size_t n) {
  if (n == 0 || n > MAX_IDEM) return 0;
  for (size_t i = 0; i < n; i++)
    if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] > 0x7e) return 0;
  return 1;
}
#define IDEM_RULE "1 to 128 printable ASCII characters"
_Static_assert(sizeof ((struct store_msg_view *)0)->idem_key > MAX_IDEM,
               "a stored key is read back whole");

static int ttl_from_json(json_t *v, long long *ms) {
  if (json_is_integer(v)) {
    *ms = (long long)json_integer_value(v) * 1000;
    return 0;
  }
  if (json_is_string(v)) return kk_parse_duration_ms(json_string_value(v), ms);
  return KK_EINVAL;
}

/* The optional campaign, borrowed from o (NULL when absent). 0, or -1 with e. */
static int campaign_parse(json_t *o, const char **out, struct api_err *e) {
  json_t *v = json_object_get(o, "campaign");
  *out = NULL;
  if (v == NULL || json_is_null(v)) return 0;
  if (!json_is_string(v) || !api_campaign_valid(json_string_value(v), json_string_length(v)))
    return refuse(e, 422, "invalid_campaign", "campaign", "campaign: %s", API_CAMPAIGN_RULE);
  *out = json_string_value(v);
  return 0;
}

/*
 * The digest kept with an idempotency key: SHA-256 over the normalised
 * fields that make the message what it is (the phone as E.164, the steps or
 * the saved cascade's name, the per-channel parts as validated), so that a
 * repeat of the same message matches however its JSON was written, and
 * another message under the same key does not. The account's default
 * sender is not in it: a repeat stays a repeat when that default changes.
 */
static void digest_add(struct kk_buf *b, const char *name, const char *v) {
  /* name=<length>:<bytes>; a missing value differs from an empty one */
  if (v)
    kk_buf_printf(b, "%s=%zu:%s\n", name, strlen(v), v);
  else
    kk_buf_printf(b, "%s=-\n", name);
}

static void request_digest(const struct item *it, long long ttl, char out[65]) {
  const struct store_msg_new *m = &it->m;
  struct kk_buf b;
  kk_buf_init(&b, 1 << 20);
  digest_add(&b, "to", it->to);
  digest_add(&b, "text", m->text);
  digest_add(&b, "class", m->msg_class);
  kk_buf_printf(&b, "ttl=%lld\n", ttl);
  digest_add(&b, "sender", m->sender);
  digest_add(&b, "cascade", it->cascade);
  digest_add(&b, "cascade_name", it->cascade_name);
  digest_add(&b, "extra", it->extra);
  digest_add(&b, "callback_url", m->callback_url);
  digest_add(&b, "campaign", m->campaign);
  uint8_t h[32];
  kk_sha256(b.p ? b.p : "", b.len, h);
  kk_hex(h, sizeof h, out);
  kk_buf_fini(&b);
}

/*
 * Fields a newer client may send that this kaskad cannot honour. Other
 * unknown fields are ignored, but sending one of these as if it were absent
 * would do something else than asked (send now instead of later, the text
 * instead of a template), so the message is refused instead.
 */
static int unsupported_field(json_t *o, struct api_err *e) {
  static const char *const fields[] = {"send_at", "template"};
  for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
    json_t *v = json_object_get(o, fields[i]);
    if (v && !json_is_null(v))
      return refuse(e, 422, "unsupported_field", fields[i],
                    "%s: not supported by this kaskad; nothing was sent", fields[i]);
  }
  return 0;
}

int api_msg_parse(const struct api *a, json_t *o, int64_t account_id, const char *idem_header,
                  int64_t now, struct api_msg_item *it) {
  struct api_err *e = &it->err;
  struct store_msg_new *m = &it->m;
  memset(m, 0, sizeof *m);
  if (!json_is_object(o))
    return refuse(e, 422, "invalid_message", NULL, "each message must be a JSON object%s", NULL);

  /* The per-channel ids first: with one of them, the phone is optional. */
  int has_address = 0;
  if (api_extra_parse(o, &it->extra, &has_address, e) != 0) return -1;
  json_t *to = json_object_get(o, "to");
  it->to[0] = '\0';
  if (to && !json_is_null(to)) {
    if (!json_is_string(to))
      return refuse(e, 422, "invalid_phone", "to", "to: a phone number (string)%s", NULL);
    if (phone_normalize(json_string_value(to), it->to, sizeof it->to) != 0)
      return refuse(e, 422, "invalid_phone", "to", "to: \"%s\" is not a valid phone number",
                    json_string_value(to));
  } else if (!has_address) {
    return refuse(e, 422, "invalid_phone", "to",
                  "to: a phone number is required (or vk_id, telegram_chat_id, viber_id, "
                  "email)%s", NULL);
  }

  json_t *cascade = json_object_get(o, "cascade");
  it->cascade[0] = it->cascade_name[0] = '\0';
  if (json_is_string(cascade)) {
    const char *name = json_string_value(cascade);
    if (strlen(name) == 0 || strlen(name) >= sizeof it->cascade_name)
      return refuse(e, 422, "unknown_cascade", "cascade", "cascade: no saved cascade \"%s\"",
                    name);
    snprintf(it->cascade_name, sizeof it->cascade_name, "%s", name);
  } else if (cascade && !json_is_null(cascade)) {
    if (api_cascade_parse(cascade, it->cascade, sizeof it->cascade, e) != 0) return -1;
  }
  /* A named cascade is resolved by the caller; it checks SMS needs then. */
  int sms = it->cascade_name[0] == '\0' &&
            (it->cascade[0] == '\0' || api_cascade_has(it->cascade, "sms"));
  if (sms && it->to[0] == '\0')
    return refuse(e, 422, "invalid_phone", "to", "to: a phone number is required for SMS%s", NULL);

  if (unsupported_field(o, e) != 0) return -1;
  json_t *text = json_object_get(o, "text");
  if (!json_is_string(text))
    return refuse(e, 422, "invalid_text", "text", "text: a string is required%s", NULL);
  size_t tlen = json_string_length(text);
  const char *t = json_string_value(text);
  if (tlen == 0) return refuse(e, 422, "invalid_text", "text", "text: must not be empty%s", NULL);
  if (tlen > MAX_TEXT_BYTES)
    return refuse(e, 422, "text_too_long", "text", "text: longer than %s bytes", "4096");
  struct sms_info info;
  int rc = sms_analyze(t, tlen, &info);
  if (rc == KK_ETOOBIG && sms) {
    char lim[64];
    snprintf(lim, sizeof lim, "%d SMS segments (%d needed)", SMS_MAX_PARTS, info.segments);
    return refuse(e, 422, "text_too_long", "text", "text: longer than %s", lim);
  }
  if (rc != 0 && rc != KK_ETOOBIG)
    return refuse(e, 422, "invalid_text", "text",
                  "text: must be valid UTF-8 without NUL characters%s", NULL);
  if (rc == KK_ETOOBIG) info.segments = SMS_MAX_PARTS;

  const char *cls = "service";
  json_t *c = json_object_get(o, "class");
  if (c) {
    cls = json_is_string(c) ? json_string_value(c) : "";
    int ok = 0;
    for (int i = 0; i < 3; i++) ok |= strcmp(cls, classes[i]) == 0;
    if (!ok)
      return refuse(e, 422, "invalid_class", "class",
                    "class: must be service, transactional or advertising%s", NULL);
  }
  int cls_idx = cls[0] == 's' ? 0 : cls[0] == 't' ? 1 : 2;

  json_t *snd = json_object_get(o, "sender");
  const char *sender = NULL;
  if (snd && !json_is_null(snd)) {
    if (!json_is_string(snd) || !api_valid_sender(json_string_value(snd)))
      return refuse(e, 422, "invalid_sender", "sender", "sender: %s", API_SENDER_RULE);
    sender = json_string_value(snd);
  }

  json_t *cb = json_object_get(o, "callback_url");
  const char *cburl = NULL;
  if (cb && !json_is_null(cb)) {
    cburl = json_is_string(cb) ? json_string_value(cb) : "";
    if ((strncmp(cburl, "http://", 7) != 0 && strncmp(cburl, "https://", 8) != 0) ||
        strlen(cburl) > MAX_URL || strpbrk(cburl, " \r\n\t"))
      return refuse(e, 422, "invalid_callback_url", "callback_url",
                    "callback_url: an http:// or https:// URL of up to 500 characters%s", NULL);
    /* Where it leads: see url_refused() in api_cascade.c. */
    char why[200];
    int urc = kk_net_url_check(cburl, "http,https", http_client_allowed(), why, sizeof why);
    if (urc)
      return refuse(e, 422, urc == KK_EAUTH ? "url_not_allowed" : "invalid_callback_url",
                    "callback_url", "callback_url: %s", why);
  }

  json_t *ik = json_object_get(o, "idempotency_key");
  const char *idem = idem_header;
  if (ik && !json_is_null(ik)) {
    if (!json_is_string(ik) || !valid_idem(json_string_value(ik), json_string_length(ik)))
      return refuse(e, 422, "invalid_idempotency_key", "idempotency_key",
                    "idempotency_key: a string of " IDEM_RULE "%s", NULL);
    idem = json_string_value(ik);
  }

  long long ttl = a->ttl_ms[cls_idx];
  json_t *tv = json_object_get(o, "ttl");
  if (tv && !json_is_null(tv)) {
    if (ttl_from_json(tv, &ttl) != 0 || ttl < MIN_TTL_MS || ttl > MAX_TTL_MS)
      return refuse(e, 422, "invalid_ttl", "ttl",
                    "ttl: seconds or a duration like \"90s\", \"10m\", \"2h\" between 30s and 7d%s",
                    NULL);
  }

  const char *campaign;
  if (campaign_parse(o, &campaign, e) != 0) return -1;

  new_public_id(it->public_id);
  m->account_id = account_id;
  m->public_id = it->public_id;
  m->idem_key = idem;
  m->to = it->to;
  m->sender = sender;
  m->text = t;
  m->msg_class = cls;
  m->encoding = info.coding == SMS_CODING_UCS2 ? "ucs2" : "gsm7";
  m->segments = info.segments;
  m->route = it->route;
  m->callback_url = cburl;
  m->cascade = it->cascade[0] ? it->cascade : NULL;
  m->extra = it->extra;
  m->campaign = campaign;
  m->created_at = now;
  m->expires_at = now + ttl;
  /* Only a message with a key can be repeated, so only it needs the digest. */
  it->req_hash[0] = '\0';
  if (idem) request_digest(it, ttl, it->req_hash);
  m->req_hash = it->req_hash[0] ? it->req_hash : NULL;
  return 0;
}

void api_msg_item_fini(struct api_msg_item *it) {
  free(it->extra);
  it->extra = NULL;
}

static json_t *accepted_json(const struct item *it) {
  const struct store_msg_new *m = &it->m;
  char created[32], expires[32];
  if (m->duplicate) {
    api_time(m->dup_created_at, created);
    return json_pack("{s:s, s:s, s:s, s:s, s:i, s:s, s:b}", "id", m->dup_public_id, "status",
                     m->dup_status, "to", m->to, "encoding", m->dup_encoding, "segments",
                     m->dup_segments, "created_at", created, "duplicate", 1);
  }
  api_time(m->created_at, created);
  api_time(m->expires_at, expires);
  json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:i, s:s, s:s}", "id", m->public_id, "status",
                        "accepted", "to", m->to, "encoding", m->encoding, "segments",
                        m->segments, "created_at", created, "expires_at", expires);
  json_object_set_new(o, "channel", m->first_channel[0] ? json_string(m->first_channel)
                                                        : json_null());
  return o;
}

static void send_ctx_free(struct send_ctx *c) {
  for (int i = 0; i < c->n; i++) api_msg_item_fini(&c->items[i]);
  json_decref(c->doc);
  free(c->items);
  free(c->msgs);
  free(c->msg_item);
  free(c);
}

/* The refusal of a message whose idempotency key names another request. */
static void idem_mismatch(struct item *it) {
  struct api_err *e = &it->err;
  e->status = 422;
  e->code = "idempotency_mismatch";
  e->field = "idempotency_key";
  snprintf(e->message, sizeof e->message,
           "idempotency_key: already used within 24 h for %s, a request with other fields; "
           "use a new key for a new message", it->m.dup_public_id);
}

static void on_stored(void *arg, int rc) {
  struct send_ctx *c = arg;
  struct api *a = c->a;
  if (rc != 0) {
    kk_error("api", "messages not stored: %s", kk_strerror(rc));
    api_error(c->req, 503, "store_unavailable", NULL,
              "the message could not be stored; nothing was sent, retry later");
    send_ctx_free(c);
    return;
  }
  int dups = 0;
  for (int i = 0; i < c->nmsgs; i++) {
    struct item *it = &c->items[c->msg_item[i]];
    it->m = c->msgs[i];
    if (it->m.mismatch) {
      idem_mismatch(it);
      a->rejected++;
      continue;
    }
    if (it->m.duplicate) {
      dups++;
      continue;
    }
    a->accepted++;
    if (strcmp(it->m.first_channel, "sms") == 0) {
      dispatch_count_accepted(a->dispatch, it->m.route, 1);
      dispatch_enqueue(a->dispatch, &c->msgs[i]);
    }
  }
  a->duplicates += (uint64_t)dups;
  if (!c->batch && c->items[0].err.code) {
    api_error_from(c->req, &c->items[0].err);
  } else if (!c->batch) {
    struct item *it = &c->items[0];
    api_json(c->req, 202, accepted_json(it),
             it->m.duplicate ? "Idempotent-Replayed: true\r\n" : NULL);
  } else {
    json_t *results = json_array();
    int ok = 0;
    for (int i = 0; i < c->n; i++) {
      struct item *it = &c->items[i];
      json_t *r;
      if (it->err.code) {
        json_t *err = api_err_json(&it->err);
        r = json_pack("{s:i, s:o}", "index", i, "error", err);
      } else {
        r = accepted_json(it);
        json_object_set_new(r, "index", json_integer(i));
        ok++;
      }
      json_array_append_new(results, r);
    }
    api_json(c->req, ok ? 202 : 422,
             json_pack("{s:i, s:i, s:o}", "accepted", ok, "rejected", c->n - ok, "results",
                       results),
             NULL);
  }
  send_ctx_free(c);
}

/*
 * The last step must be able to start before the message expires: the
 * timeouts of the steps before it add up to the least time it can take to
 * get there (a messenger step's time runs from the provider's answer, so it
 * can take longer), and a cascade whose last step could only start after
 * the validity ended is refused rather than silently cut short.
 */
static int cascade_fits_ttl(struct item *it) {
  struct store_step st[STORE_MAX_STEPS];
  int n = it->cascade[0] ? store_steps_parse(it->cascade, st) : 0;
  long long before_last = 0;
  for (int i = 0; i + 1 < n; i++) before_last += st[i].timeout_ms;
  long long ttl = it->m.expires_at - it->m.created_at;
  if (n < 2 || before_last < ttl) return 0;
  struct api_err *e = &it->err;
  e->status = 422;
  e->code = "timeout_exceeds_ttl";
  e->field = "cascade";
  snprintf(e->message, sizeof e->message,
           "cascade: the timeouts before the last step add up to %llds, not less than the "
           "message's validity (ttl %llds); shorten them or give a longer ttl",
           before_last / 1000, ttl / 1000);
  return -1;
}

/* What parsing leaves to the caller: a saved cascade by name, the SMS route,
   the account's default SMS sender. */
static int resolve(struct api *a, int64_t account_id, struct item *it,
                   const struct chan_cfg *sms_cfg) {
  struct api_err *e = &it->err;
  if (it->cascade_name[0]) {
    char *steps = NULL;
    if (store_cascade_get(a->store, account_id, it->cascade_name, &steps) != 0) {
      e->status = 422;
      e->code = "unknown_cascade";
      e->field = "cascade";
      snprintf(e->message, sizeof e->message, "cascade: no saved cascade \"%s\"",
               it->cascade_name);
      return -1;
    }
    snprintf(it->cascade, sizeof it->cascade, "%s", steps);
    free(steps);
    it->m.cascade = it->cascade;
    if (api_cascade_has(it->cascade, "sms") && it->to[0] == '\0') {
      e->status = 422;
      e->code = "invalid_phone";
      e->field = "to";
      snprintf(e->message, sizeof e->message, "to: a phone number is required for SMS");
      return -1;
    }
  }
  if (cascade_fits_ttl(it) != 0) return -1;
  int sms = it->cascade[0] == '\0' || api_cascade_has(it->cascade, "sms");
  if (sms && it->route[0] == '\0') {
    /* No routes at all may pass (one is being added); several without a
       default_route will not until the operator chooses one. */
    int several = dispatch_route_count(a->dispatch) > 0;
    e->status = several ? 422 : 503;
    e->code = "no_route";
    e->field = NULL;
    snprintf(e->message, sizeof e->message, "%s",
             several ? "no SMS route for this account: the operator must set default_route "
                       "or the account's sms_route"
                     : "no SMS route is configured; the operator must add one");
    return -1;
  }
  if (it->m.sender == NULL && sms_cfg && sms_cfg->sender[0]) it->m.sender = sms_cfg->sender;
  return 0;
}

void api_messages_post(struct api *a, struct http_req *req, int64_t account_id, int batch) {
  if (a->draining) {
    api_error(req, 503, "shutting_down", NULL, "kaskad is stopping; retry on another node or later");
    return;
  }
  if (store_degraded(a->store)) {
    /* Answered at once: a message accepted now would wait for the same lock. */
    api_error(req, 503, "store_unavailable", NULL,
              "the store cannot be written now; nothing was sent, retry later");
    return;
  }
  json_t *doc = api_body_json(req);
  if (!doc) return;
  struct store_account acc;
  if (store_account_get_by_id(a->store, account_id, &acc) != 0) {
    json_decref(doc);
    api_error(req, 401, "unauthorized", NULL, "the key's account no longer exists");
    return;
  }
  const char *route = dispatch_route_pick(a->dispatch, acc.sms_route);
  int64_t scope = 0;
  const struct chan_cfg *sms_cfg = a->cascade ? chan_settings_get(cascade_engine(a->cascade), account_id, "sms", &scope)
                                              : NULL;
  json_t *list;
  if (batch) {
    list = json_object_get(doc, "messages");
    if (!json_is_array(list) || json_array_size(list) == 0) {
      json_decref(doc);
      api_error(req, 422, "invalid_batch", "messages", "messages: a non-empty array is required");
      return;
    }
    if (json_array_size(list) > MAX_BATCH) {
      json_decref(doc);
      api_error(req, 422, "batch_too_large", "messages", "messages: at most %d per request",
                MAX_BATCH);
      return;
    }
  } else {
    list = json_array();
    json_array_append(list, doc);
  }
  struct send_ctx *c = kk_xcalloc(1, sizeof *c);
  c->a = a;
  c->req = req;
  c->doc = doc;
  c->batch = batch;
  c->n = (int)json_array_size(list);
  c->items = kk_xcalloc((size_t)c->n, sizeof *c->items);
  c->msgs = kk_xcalloc((size_t)c->n, sizeof *c->msgs);
  c->msg_item = kk_xcalloc((size_t)c->n, sizeof *c->msg_item);
  const char *idem_header = batch ? NULL : http_req_header(req, "Idempotency-Key");
  if (idem_header && !valid_idem(idem_header, strlen(idem_header))) {
    if (!batch) json_decref(list);
    send_ctx_free(c);
    api_error(req, 422, "invalid_idempotency_key", "Idempotency-Key",
              "Idempotency-Key: " IDEM_RULE);
    return;
  }
  int64_t now = store_now_ms();
  struct api_policy policy;   /* the account's senders and countries */
  api_policy_init(&policy, &acc);
  /* The operator's default sender needs no registration; an account's own does. */
  const char *operator_sender = sms_cfg && scope != account_id ? sms_cfg->sender : NULL;
  for (int i = 0; i < c->n; i++) {
    struct item *it = &c->items[i];
    snprintf(it->route, sizeof it->route, "%s", route ? route : "");
    if (api_msg_parse(a, json_array_get(list, (size_t)i), account_id, idem_header, now, it) != 0 ||
        resolve(a, account_id, it, sms_cfg) != 0 || api_policy_check(&policy, it, operator_sender) != 0) {
      a->rejected++;
      continue;
    }
    c->msg_item[c->nmsgs] = i;
    c->msgs[c->nmsgs++] = it->m;
  }
  api_policy_fini(&policy);
  if (!batch) json_decref(list);
  if (c->nmsgs == 0) {
    if (!batch) {
      api_error_from(req, &c->items[0].err);
      send_ctx_free(c);
      return;
    }
    on_stored(c, 0); /* every item refused: answer with the per-item errors */
    return;
  }
  store_msg_insert(a->store, c->msgs, c->nmsgs, on_stored, c);
}

/* ---- reading --------------------------------------------------------------- */

static json_t *time_or_null(int64_t ms) {
  if (ms <= 0) return json_null();
  char t[32];
  api_time(ms, t);
  return json_string(t);
}

static json_t *str_or_null(const char *s) { return s && *s ? json_string(s) : json_null(); }

static json_t *message_json(const struct store_msg_view *v, int with_attempts) {
  json_t *o = json_pack("{s:s, s:s, s:s, s:o, s:s, s:o, s:s, s:i, s:o, s:o, s:o, s:i, s:o, "
                        "s:o, s:o, s:o}",
                        "id", v->public_id, "status", v->status, "to", v->to, "sender",
                        str_or_null(v->sender), "class", v->msg_class, "channel",
                        str_or_null(v->channel), "encoding", v->encoding, "segments",
                        v->segments, "idempotency_key", str_or_null(v->idem_key), "cost",
                        api_money(v->cost), "sms_only_cost", api_money(v->sms_only_cost),
                        "delivered_twice", v->delivered_twice, "callback_url",
                        str_or_null(v->callback_url), "created_at", time_or_null(v->created_at),
                        "updated_at", time_or_null(v->updated_at), "expires_at",
                        time_or_null(v->expires_at));
  json_object_set_new(o, "campaign", str_or_null(v->campaign));
  json_object_set_new(o, "finished", json_boolean(v->done));
  if (v->text) json_object_set_new(o, "text", json_string(v->text));
  if (!with_attempts) return o;
  json_t *arr = json_array();
  for (int i = 0; i < v->nattempts; i++) {
    const struct store_attempt_view *t = &v->attempts[i];
    json_t *at = json_pack("{s:i, s:s, s:s, s:o, s:o, s:i, s:o, s:o, s:o, s:o, s:o}", "step",
                           t->step, "channel", t->channel, "status", t->status, "provider_id",
                           str_or_null(t->provider_id), "cost", api_money(t->cost), "segments",
                           t->segments, "error", str_or_null(t->error), "created_at",
                           time_or_null(t->created_at), "sent_at", time_or_null(t->sent_at),
                           "delivered_at", time_or_null(t->delivered_at), "read_at",
                           time_or_null(t->read_at));
    if (t->route[0]) json_object_set_new(at, "route", json_string(t->route));
    json_array_append_new(arr, at);
  }
  json_object_set_new(o, "attempts", arr);
  return o;
}

void api_messages_get(struct api *a, struct http_req *req, int64_t account_id, const char *id) {
  struct store_msg_view v;
  int rc = store_msg_get(a->store, account_id, id, &v);
  if (rc == KK_ENOENT) {
    api_error(req, 404, "not_found", NULL, "no message %s in this account", id);
    return;
  }
  if (rc) {
    api_error(req, 503, "store_unavailable", NULL, "cannot read the message now");
    return;
  }
  api_json(req, 200, message_json(&v, 1), NULL);
}

/* A listing being read in the store's thread pool. */
struct list_ctx {
  struct http_req *req;
  struct store_msg_filter f;   /* its strings are the request's query values */
  char phone[24];
  struct store_msg_view *rows; /* f.limit of them */
  int n;
  int64_t next;
};

/* Store done callback of a listing: answers and frees c. */
static void on_listed(void *arg, int rc) {
  struct list_ctx *c = arg;
  if (rc != 0) {
    api_error(c->req, 503, "store_unavailable", NULL, "cannot list messages now");
  } else {
    json_t *arr = json_array();
    for (int i = 0; i < c->n; i++) json_array_append_new(arr, message_json(&c->rows[i], 0));
    json_t *doc = json_pack("{s:o}", "messages", arr);
    if (c->next) {
      char cur[32];
      snprintf(cur, sizeof cur, "%lld", (long long)c->next);
      json_object_set_new(doc, "next_cursor", json_string(cur));
    } else {
      json_object_set_new(doc, "next_cursor", json_null());
    }
    api_json(c->req, 200, doc, NULL);
  }
  for (int i = 0; i < c->n; i++) free(c->rows[i].text);
  free(c->rows);
  free(c);
}

void api_messages_list(struct api *a, struct http_req *req, int64_t account_id) {
  struct store_msg_filter f = {.limit = 100, .with_text = 1};
  char phone[24] = "";
  const char *s;
  if ((s = http_req_query(req, "phone")) != NULL) {
    if (phone_normalize(s, phone, sizeof phone) != 0) {
      api_error(req, 422, "invalid_phone", "phone", "phone: an international number, e.g. +79161234567");
      return;
    }
  }
  if ((s = http_req_query(req, "status")) != NULL) {
    int found = 0;
    for (int i = 0; i < API_MSG_NSTATUSES; i++) found |= strcmp(s, api_msg_statuses[i]) == 0;
    if (!found) {
      api_error(req, 422, "invalid_status", "status", "status: unknown status \"%s\"", s);
      return;
    }
    f.status = s;
  }
  if ((s = http_req_query(req, "campaign")) != NULL) {
    if (!api_campaign_valid(s, strlen(s))) {
      api_error(req, 422, "invalid_campaign", "campaign", "campaign: %s", API_CAMPAIGN_RULE);
      return;
    }
    f.campaign = s;
  }
  if ((s = http_req_query(req, "from")) != NULL && api_parse_time(s, &f.from) != 0) {
    api_error(req, 422, "invalid_time", "from", "from: an ISO 8601 UTC time or ms since epoch");
    return;
  }
  if ((s = http_req_query(req, "to")) != NULL && api_parse_time(s, &f.to) != 0) {
    api_error(req, 422, "invalid_time", "to", "to: an ISO 8601 UTC time or ms since epoch");
    return;
  }
  if ((s = http_req_query(req, "limit")) != NULL) {
    char *end;
    long l = strtol(s, &end, 10);
    if (*end || l < 1 || l > 1000) {
      api_error(req, 422, "invalid_limit", "limit", "limit: 1 to 1000");
      return;
    }
    f.limit = (int)l;
  }
  if ((s = http_req_query(req, "cursor")) != NULL) {
    char *end;
    long long cur = strtoll(s, &end, 10);
    if (*end || cur <= 0) {
      api_error(req, 422, "invalid_cursor", "cursor", "cursor: use next_cursor from a listing");
      return;
    }
    f.before_id = cur;
  }
  /* Freed in on_listed(); the answer comes from there (the read runs in
     the store's thread pool, bounded to STORE_LIST_EXAMINE rows). */
  struct list_ctx *c = kk_xcalloc(1, sizeof *c);
  c->req = req;
  c->f = f;
  if (phone[0]) {
    memcpy(c->phone, phone, sizeof c->phone);
    c->f.phone = c->phone;
  }
  c->rows = kk_xcalloc((size_t)f.limit, sizeof *c->rows);
  store_msg_list_async(a->store, account_id, &c->f, c->rows, &c->n, &c->next, on_listed, c);
}
