/*
 * api_messages.c - POST /v1/messages, POST /v1/messages/batch,
 * GET /v1/messages/{id}, GET /v1/messages.
 *
 * A send is read here from its JSON into accept items (the shapes of the
 * fields, and what only HTTP has: the Idempotency-Key header, callback
 * URLs); accept/ decides the rest and stores the valid messages of the
 * request in one operation (one commit). The client hears 202 only from
 * accept's done callback, after that commit.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "accept/accept.h"
#include "api/api_int.h"
#include "core/kk_cfg.h"
#include "core/kk_err.h"
#include "core/kk_json.h"
#include "core/kk_log.h"
#include "core/kk_mem.h"
#include "core/kk_net.h"
#include "http/http_client.h"
#include "http/http_server.h"
#include "phone/phone.h"
#include "policy/pol_quiet.h"
#include "policy/pol_rules.h"
#include "store/store.h"
#include "store/store_contact.h"

#define MAX_BATCH 1000
#define MAX_URL 500
#define MAX_IDEM 128
#define STORE_DEGRADED_MSG "the store cannot be written now; nothing was sent, retry later"

/* A send request on its way through accept/: the items accept sees, with
   the parsed request's storage they borrow. */
struct send_ctx {
  struct api *a;
  struct http_req *req;
  json_t *doc;               /* keeps the borrowed strings alive */
  int batch;
  struct api_msg_item *parsed; /* per item: the parse's error and storage */
  struct accept_item *items;
  struct accept_req r;
  /* a send by template: the recipients' contacts, read on the store's
     pool before the messages are parsed (their fields fill the vars) */
  json_t *list;
  const char *idem_header;
  struct store_contact *contacts;   /* one per message, or NULL */
  char *found;                      /* 1: contacts[i] was read */
  char (*want_phones)[16];          /* the phones read, in order */
  int *want_at;                     /* the message each of them is */
  int nwant, want_next;
};

const char *const api_msg_statuses[API_MSG_NSTATUSES] = {
    "accepted", "scheduled", "sending", "sent", "delivered",
    "read", "failed", "expired", "rejected", "cancelled"};

static int refuse(struct api_err *e, int status, const char *code, const char *field,
                  const char *fmt, const char *detail) {
  e->status = status;
  e->code = code;
  e->field = field;
  snprintf(e->message, sizeof e->message, fmt, detail ? detail : "");
  return KK_EINVAL;
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
    json_int_t sec = json_integer_value(v);
    /* seconds past any validity are refused before they overflow */
    if (sec < 0 || sec > ACCEPT_MAX_TTL_MS / 1000) return KK_EINVAL;
    *ms = (long long)sec * 1000;
    return 0;
  }
  if (json_is_string(v)) return kk_parse_duration_ms(json_string_value(v), ms);
  return KK_EINVAL;
}

/* The optional campaign, borrowed from o (NULL when absent). 0, or KK_EINVAL with e. */
static int campaign_parse(json_t *o, const char **out, struct api_err *e) {
  json_t *v = json_object_get(o, "campaign");
  *out = NULL;
  if (v == NULL || json_is_null(v)) return 0;
  if (!json_is_string(v) || !api_campaign_valid(json_string_value(v), json_string_length(v)))
    return refuse(e, 422, "invalid_campaign", "campaign", "campaign: %s", API_CAMPAIGN_RULE);
  *out = json_string_value(v);
  return 0;
}

#define SEND_AT_MAX_MS (366LL * 24 * 3600 * 1000)   /* how far ahead send_at may be */
#define SEND_AT_SKEW_MS (5LL * 1000)                   /* a little past counts as now */

/* The optional send_at (RFC 3339) into *out (0 when absent): not in the
   past, at most a year ahead. 0, or KK_EINVAL with e. */
static int send_at_parse(json_t *o, int64_t *out, struct api_err *e) {
  json_t *v = json_object_get(o, "send_at");
  *out = 0;
  if (v == NULL || json_is_null(v)) return 0;
  int64_t at;
  if (!json_is_string(v) || api_parse_time(json_string_value(v), &at) != 0)
    return refuse(e, 422, "invalid_send_at", "send_at",
                  "send_at: a time in RFC 3339, like \"2026-03-01T09:00:00+03:00\"%s", NULL);
  int64_t now = store_now_ms();
  if (at < now - SEND_AT_SKEW_MS)
    return refuse(e, 422, "send_at_in_past", "send_at",
                  "send_at: %s is in the past; leave it out to send now", json_string_value(v));
  if (at > now + SEND_AT_MAX_MS)
    return refuse(e, 422, "send_at_too_far", "send_at",
                  "send_at: at most a year ahead%s", NULL);
  *out = at > now ? at : 0;
  return 0;
}

/* An accept/ check refused it: its refusal becomes the parse's (p->err),
   as api_msg_parse promises. KK_EINVAL. */
int api_accept_refused(struct api_msg_item *p, const struct accept_item *it) {
  p->err.status = it->err.status;
  p->err.code = it->err.code;
  p->err.field = it->err.field;
  snprintf(p->err.message, sizeof p->err.message, "%s", it->err.message);
  return KK_EINVAL;
}

/* The addresses: the phone (as given; accept/ normalises it), the
   per-channel ids, and the cascade's steps or its saved name. */
static int addresses_parse(json_t *o, struct api_msg_item *p, struct accept_item *it) {
  struct api_err *e = &p->err;
  /* The per-channel ids first: with one of them, the phone is optional. */
  int has_address = 0;
  if (api_extra_parse(o, &p->extra_doc, &has_address, e) != 0) return KK_EINVAL;
  it->extra_doc = p->extra_doc;
  json_t *to = json_object_get(o, "to");
  it->to = NULL;
  if (to && !json_is_null(to)) {
    if (!json_is_string(to))
      return refuse(e, 422, "invalid_phone", "to", "to: a phone number (string)%s", NULL);
    it->to = json_string_value(to);
    if (accept_check_number(it, 0) != 0) return api_accept_refused(p, it);
  } else if (!has_address) {
    return refuse(e, 422, "invalid_phone", "to",
                  "to: a phone number is required (or vk_id, telegram_chat_id, viber_id, "
                  "email)%s", NULL);
  }
  json_t *cascade = json_object_get(o, "cascade");
  p->cascade[0] = p->cascade_name[0] = '\0';
  if (json_is_string(cascade)) {
    const char *name = json_string_value(cascade);
    if (strlen(name) == 0 || strlen(name) >= sizeof p->cascade_name)
      return refuse(e, 422, "unknown_cascade", "cascade", "cascade: no saved cascade \"%s\"",
                    name);
    snprintf(p->cascade_name, sizeof p->cascade_name, "%s", name);
  } else if (cascade && !json_is_null(cascade)) {
    if (p->steps_given)
      snprintf(p->cascade, sizeof p->cascade, "%s", p->steps_given);
    else if (api_cascade_parse(cascade, p->cascade, sizeof p->cascade, e) != 0)
      return KK_EINVAL;
  }
  it->cascade = p->cascade[0] ? p->cascade : NULL;
  it->cascade_name = p->cascade_name[0] ? p->cascade_name : NULL;
  /* A saved cascade's SMS step is checked when it is resolved. */
  if (accept_check_number(it, accept_item_sms(it)) != 0) return api_accept_refused(p, it);
  return 0;
}

/* callback_url: an http(s) URL that leads where callbacks may go. */
static int callback_url_parse(json_t *o, const char **out, struct api_err *e) {
  json_t *cb = json_object_get(o, "callback_url");
  *out = NULL;
  if (cb == NULL || json_is_null(cb)) return 0;
  const char *cburl = json_is_string(cb) ? json_string_value(cb) : "";
  if ((strncmp(cburl, "http://", 7) != 0 && strncmp(cburl, "https://", 8) != 0) ||
      strlen(cburl) > MAX_URL || strpbrk(cburl, " \r\n\t"))
    return refuse(e, 422, "invalid_callback_url", "callback_url",
                  "callback_url: an http:// or https:// URL of up to 500 characters%s", NULL);
  /* Where it leads: see url_refused() in api_channels.c. */
  char why[200];
  int urc = kk_net_url_check(cburl, "http,https", http_client_allowed(), why, sizeof why);
  if (urc)
    return refuse(e, 422, urc == KK_EAUTH ? "url_not_allowed" : "invalid_callback_url",
                  "callback_url", "callback_url: %s", why);
  *out = cburl;
  return 0;
}

/* The optional window {"from":"HH:MM","to":"HH:MM"} (the recipient's local
   time) into it. */
static int window_parse(json_t *o, struct accept_item *it, struct api_err *e) {
  json_t *w = json_object_get(o, "window");
  if (w == NULL || json_is_null(w)) return 0;
  const char *f = json_string_value(json_object_get(w, "from"));
  const char *t = json_string_value(json_object_get(w, "to"));
  if (!json_is_object(w) || !f || !t || pol_hhmm_parse(f, &it->window_from) != 0 ||
      pol_hhmm_parse(t, &it->window_to) != 0)
    return refuse(e, 422, "invalid_window", "window",
                  "window: {\"from\":\"10:00\",\"to\":\"20:00\"}, the recipient's local time%s",
                  NULL);
  return 0;
}

int api_msg_parse(json_t *o, const char *idem_header, struct api_msg_item *p,
                  struct accept_item *it) {
  struct api_err *e = &p->err;
  memset(it, 0, sizeof *it);
  if (!json_is_object(o))
    return refuse(e, 422, "invalid_message", NULL, "each message must be a JSON object%s", NULL);
  if (addresses_parse(o, p, it) != 0 || send_at_parse(o, &it->send_at, e) != 0 ||
      window_parse(o, it, e) != 0)
    return KK_EINVAL;
  json_t *text = json_object_get(o, "text");
  json_t *tn = json_object_get(o, "template");
  if (tn && !json_is_null(tn)) {
    /* ---- a send by template (accept_render_template) ---- */
    if (text && !json_is_null(text))
      return refuse(e, 422, "invalid_text", "text", "text: give text or template, not both%s",
                    NULL);
    if (api_msg_template(o, p, it) != 0) return KK_EINVAL;
  } else {
    if (!json_is_string(text))
      return refuse(e, 422, "invalid_text", "text", "text: a string is required%s", NULL);
    it->text = json_string_value(text);
    it->text_len = json_string_length(text);
    /* a template's rendering writes the extra from extra_doc; a text sends it as given */
    if (p->extra_doc) p->extra = kk_json_dumps(p->extra_doc);
    it->extra = p->extra;
  }
  if (accept_check_text(it, accept_item_sms(it)) != 0) return api_accept_refused(p, it);

  json_t *c = json_object_get(o, "class");
  if (c) it->msg_class = json_is_string(c) ? json_string_value(c) : "";
  if (accept_check_class(it) != 0) return api_accept_refused(p, it);

  json_t *snd = json_object_get(o, "sender");
  if (snd && !json_is_null(snd)) {
    if (!json_is_string(snd) || !api_valid_sender(json_string_value(snd)))
      return refuse(e, 422, "invalid_sender", "sender", "sender: %s", API_SENDER_RULE);
    it->sender = json_string_value(snd);
  }
  if (callback_url_parse(o, &it->callback_url, e) != 0) return KK_EINVAL;

  json_t *ik = json_object_get(o, "idempotency_key");
  it->idem_key = idem_header;
  if (ik && !json_is_null(ik)) {
    if (!json_is_string(ik) || !valid_idem(json_string_value(ik), json_string_length(ik)))
      return refuse(e, 422, "invalid_idempotency_key", "idempotency_key",
                    "idempotency_key: a string of " IDEM_RULE "%s", NULL);
    it->idem_key = json_string_value(ik);
  }

  json_t *tv = json_object_get(o, "ttl");
  if (tv && !json_is_null(tv)) {
    if (ttl_from_json(tv, &it->ttl_ms) != 0 || it->ttl_ms < ACCEPT_MIN_TTL_MS ||
        it->ttl_ms > ACCEPT_MAX_TTL_MS)
      return refuse(e, 422, "invalid_ttl", "ttl",
                    "ttl: seconds or a duration like \"90s\", \"10m\", \"2h\" between 30s and 7d%s",
                    NULL);
  }
  return campaign_parse(o, &it->campaign, e);
}

void api_msg_item_fini(struct api_msg_item *p) {
  json_decref(p->extra_doc);
  free(p->extra);
  p->extra_doc = NULL;
  p->extra = NULL;
}

static json_t *accepted_json(const struct accept_item *it) {
  const struct store_msg_new *m = &it->m;
  char created[32], expires[32];
  if (it->result == ACCEPT_DUPLICATE) {
    api_time(m->dup_created_at, created);
    return json_pack("{s:s, s:s, s:s, s:s, s:i, s:s, s:b}", "id", m->dup_public_id, "status",
                     m->dup_status, "to", m->to, "encoding", m->dup_encoding, "segments",
                     m->dup_segments, "created_at", created, "duplicate", 1);
  }
  api_time(m->created_at, created);
  api_time(m->expires_at, expires);
  json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:i, s:s, s:s}", "id", m->public_id, "status",
                        m->not_before > m->created_at ? "scheduled" : "accepted", "to", m->to,
                        "encoding", m->encoding, "segments", m->segments, "created_at", created,
                        "expires_at", expires);
  json_object_set_new(o, "channel", m->first_channel[0] ? json_string(m->first_channel)
                                                        : json_null());
  if (m->decisions) {
    json_t *dec = json_loads(m->decisions, 0, NULL);
    if (dec) json_object_set_new(o, "decisions", dec);
  }
  if (m->not_before > m->created_at) {
    char at[32];
    api_time(m->not_before, at);
    json_object_set_new(o, "send_at", json_string(at));
  }
  return o;
}

static void send_ctx_free(struct send_ctx *c) {
  for (int i = 0; i < c->r.n; i++) {
    api_msg_item_fini(&c->parsed[i]);
    accept_item_fini(&c->items[i]);
  }
  json_decref(c->doc);
  json_decref(c->list);
  for (int i = 0; c->contacts && i < c->r.n; i++) store_contact_fini(&c->contacts[i]);
  free(c->contacts);
  free(c->found);
  free(c->want_phones);
  free(c->want_at);
  free(c->parsed);
  free(c->items);
  free(c);
}

/* The error of item i: the parse's, or accept's refusal as an api_err. */
static const struct api_err *item_err(struct send_ctx *c, int i) {
  struct api_msg_item *p = &c->parsed[i];
  const struct accept_item *it = &c->items[i];
  if (p->err.code == NULL && it->err.code) {
    p->err.status = it->err.status;
    p->err.code = it->err.code;
    p->err.field = it->err.field;
    snprintf(p->err.message, sizeof p->err.message, "%s", it->err.message);
  }
  return p->err.code ? &p->err : NULL;
}

/* accept/'s done callback: counts and answers, then frees c. */
static void on_accepted(void *ud, struct accept_req *r, int rc) {
  struct send_ctx *c = ud;
  struct api *a = c->a;
  int ok = 0;
  for (int i = 0; i < r->n; i++) {
    enum accept_result res = c->items[i].result;
    a->accepted += res == ACCEPT_STORED;
    a->duplicates += res == ACCEPT_DUPLICATE;
    /* PENDING: not decided, the store failed */
    a->rejected += res == ACCEPT_MISMATCH || res == ACCEPT_REFUSED;
    ok += res == ACCEPT_STORED || res == ACCEPT_DUPLICATE;
  }
  if (rc != 0) {
    api_error(c->req, 503, "store_unavailable", NULL,
              "the message could not be stored; nothing was sent, retry later");
    send_ctx_free(c);
    return;
  }
  if (!c->batch && item_err(c, 0)) {
    api_error_from(c->req, item_err(c, 0));
  } else if (!c->batch) {
    const struct accept_item *it = &c->items[0];
    api_json(c->req, 202, accepted_json(it),
             it->result == ACCEPT_DUPLICATE ? "Idempotent-Replayed: true\r\n" : NULL);
  } else {
    json_t *results = json_array();
    for (int i = 0; i < r->n; i++) {
      const struct api_err *e = item_err(c, i);
      json_t *o;
      if (e) {
        o = json_pack("{s:i, s:o}", "index", i, "error", api_err_json(e));
      } else {
        o = accepted_json(&c->items[i]);
        json_object_set_new(o, "index", json_integer(i));
      }
      json_array_append_new(results, o);
    }
    api_json(c->req, ok ? 202 : 422,
             json_pack("{s:i, s:i, s:o}", "accepted", ok, "rejected", r->n - ok, "results",
                       results),
             NULL);
  }
  send_ctx_free(c);
}

/* The messages of the body (a new reference), or NULL with the answer given. */
static json_t *messages_of(struct http_req *req, json_t *doc, int batch) {
  if (!batch) {
    json_t *list = json_array();
    json_array_append(list, doc);
    return list;
  }
  json_t *list = json_object_get(doc, "messages");
  if (!json_is_array(list) || json_array_size(list) == 0) {
    api_error(req, 422, "invalid_batch", "messages", "messages: a non-empty array is required");
    return NULL;
  }
  if (json_array_size(list) > MAX_BATCH) {
    api_error(req, 422, "batch_too_large", "messages", "messages: at most %d per request",
              MAX_BATCH);
    return NULL;
  }
  return json_incref(list);
}

static void messages_accept(struct send_ctx *c);

static void on_contacts(void *arg, int rc) {
  struct send_ctx *c = arg;
  (void)rc;   /* contacts not readable now fill nothing */
  messages_accept(c);
}

/* Pool thread: the next phone's contact (store_contacts_of_async keeps the
   order), kept when the account has one. */
static int on_contact_of(void *arg, const struct store_contact *k) {
  struct send_ctx *c = arg;
  int i = c->want_at[c->want_next++];
  if (k->created_at == 0) return 0;   /* no contact of that phone */
  c->contacts[i] = *k;
  c->contacts[i].attrs = k->attrs ? kk_xstrdup(k->attrs) : NULL;
  c->found[i] = 1;
  return 0;
}

/* Reads, on the store's pool and in one read, the contact of each message
   sent by template (its fields fill the vars) or of a class that waits out
   quiet hours (its own time zone says when they are); 0 when there was
   none to read (nothing pending). */
static int contacts_read(struct send_ctx *c) {
  int n = c->r.n;
  char phone[16];
  for (int i = 0; i < n; i++) {
    json_t *o = json_array_get(c->list, (size_t)i);
    const char *to = json_string_value(json_object_get(o, "to"));
    const char *cls = json_string_value(json_object_get(o, "class"));
    if (!to || !(json_is_string(json_object_get(o, "template")) ||
                 json_is_object(json_object_get(o, "window")) ||
                 pol_class_rule_named(cls)->quiet) ||
        phone_normalize(to, phone, sizeof phone) != 0)
      continue;
    if (c->want_phones == NULL) {
      /* freed in send_ctx_free */
      c->want_phones = kk_xcalloc((size_t)n, sizeof *c->want_phones);
      c->want_at = kk_xcalloc((size_t)n, sizeof *c->want_at);
    }
    memcpy(c->want_phones[c->nwant], phone, sizeof phone);
    c->want_at[c->nwant++] = i;
  }
  if (c->nwant == 0) return 0;
  c->contacts = kk_xcalloc((size_t)n, sizeof *c->contacts);   /* freed in send_ctx_free */
  c->found = kk_xcalloc((size_t)n, 1);
  store_contacts_of_async(c->a->store, c->r.account_id, (const char (*)[16])c->want_phones,
                          (size_t)c->nwant, on_contact_of, c, on_contacts, c);
  return KK_EAGAIN;
}

/* POST /v1/messages (batch 0) and /v1/messages/batch (1). The body and
   the list belong to the request's arena; the context of the accept gets
   its own reference to the body, whose strings the items borrow. */
static void messages_post(struct api_call *call, int batch) {
  struct api *a = call->a;
  struct http_req *req = call->req;
  if (a->draining) {
    api_error(req, 503, "shutting_down", NULL, "kaskad is stopping; retry on another node or later");
    return;
  }
  if (store_degraded(a->store)) {
    /* Before the body is read (accept_submit says the same later). */
    api_error(req, 503, "store_unavailable", NULL, STORE_DEGRADED_MSG);
    return;
  }
  json_t *doc = api_call_body(call);
  if (!doc) return;
  /* The account before the body's shape (accept_submit looks again). */
  struct store_account acc;
  if (store_account_get_by_id(a->store, call->account_id, &acc) != 0) {
    api_error(req, 401, "unauthorized", NULL, "the key's account no longer exists");
    return;
  }
  json_t *list = api_call_own(call, messages_of(req, doc, batch));
  if (!list) return;
  const char *idem_header = batch ? NULL : http_req_header(req, "Idempotency-Key");
  if (idem_header && !valid_idem(idem_header, strlen(idem_header))) {
    api_error(req, 422, "invalid_idempotency_key", "Idempotency-Key",
              "Idempotency-Key: " IDEM_RULE);
    return;
  }
  /* Freed in on_accepted (or below when accept refuses the request). */
  struct send_ctx *c = kk_xcalloc(1, sizeof *c);
  c->a = a;
  c->req = req;
  c->doc = json_incref(doc);
  c->batch = batch;
  int n = (int)json_array_size(list);
  c->parsed = kk_xcalloc((size_t)n, sizeof *c->parsed);
  c->items = kk_xcalloc((size_t)n, sizeof *c->items);
  c->r = (struct accept_req){.account_id = call->account_id, .items = c->items, .n = n,
                             .done = on_accepted, .ud = c};
  for (int i = 0; i < n; i++) {
    c->parsed[i].ac = &a->accept;   /* templates */
    c->parsed[i].account_id = call->account_id;
  }
  c->list = json_incref(list);
  c->idem_header = idem_header;
  if (contacts_read(c) == 0) messages_accept(c);
}

/* Parses the messages (their contacts read) and hands them to accept. */
static void messages_accept(struct send_ctx *c) {
  struct http_req *req = c->req;
  for (int i = 0; i < c->r.n; i++) {
    if (c->found && c->found[i]) c->parsed[i].contact = &c->contacts[i];
    if (api_msg_parse(json_array_get(c->list, (size_t)i), c->idem_header, &c->parsed[i],
                      &c->items[i]) != 0)
      c->items[i].result = ACCEPT_REFUSED;
    if (c->found && c->found[i] && strcmp(c->contacts[i].tz_source, "explicit") == 0)
      snprintf(c->items[i].zone, sizeof c->items[i].zone, "%s", c->contacts[i].timezone);
  }
  int rc = accept_submit(&c->a->accept, &c->r);
  if (rc == 0) return;
  send_ctx_free(c);
  if (rc == KK_EAGAIN)
    api_error(req, 503, "store_unavailable", NULL, STORE_DEGRADED_MSG);
  else
    api_error(req, 401, "unauthorized", NULL, "the key's account no longer exists");
}

void api_messages_post(struct api_call *c) { messages_post(c, 0); }

void api_messages_batch(struct api_call *c) { messages_post(c, 1); }

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
  /* The policy's decisions; the last one's reason is the message's error. */
  json_t *dec = v->decisions[0] ? json_loads(v->decisions, 0, NULL) : NULL;
  if (!json_is_array(dec)) {
    json_decref(dec);
    dec = json_array();
  }
  size_t nd = json_array_size(dec);
  json_t *last = nd ? json_array_get(dec, nd - 1) : NULL;
  json_t *why = last ? json_object_get(last, "reason") : NULL;
  json_object_set_new(o, "error",
                      json_is_string(why) ? json_pack("{s:O, s:s}", "code", why, "message",
                                                      "a policy decision (see decisions)")
                                          : json_null());
  json_object_set_new(o, "decisions", dec);
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
    if (strcmp(t->channel, "sms") == 0)
      json_object_set_new(at, "price", t->price >= 0 ? json_real(t->price / 100.0) : json_null());
    json_array_append_new(arr, at);
  }
  json_object_set_new(o, "attempts", arr);
  return o;
}

/* A message being read in the store's pool. */
struct get_ctx {
  struct http_req *req;
  char *id;                    /* the path's id, for the 404 */
  struct store_msg_view v;
};

/* Store done callback of a get: answers and frees c. */
static void on_got(void *arg, int rc) {
  struct get_ctx *c = arg;
  if (rc == KK_ENOENT)
    api_error(c->req, 404, "not_found", NULL, "no message %s in this account", c->id);
  else if (rc)
    api_error(c->req, 503, "store_unavailable", NULL, "cannot read the message now");
  else
    api_json(c->req, 200, message_json(&c->v, 1), NULL);
  free(c->id);
  free(c);
}

void api_messages_get(struct api_call *call) {
  /* Freed in on_got(), which answers (the read runs in the store's pool). */
  struct get_ctx *c = kk_xcalloc(1, sizeof *c);
  c->req = call->req;
  c->id = kk_xstrdup(api_param(call, "id"));
  store_msg_get_async(call->a->store, call->account_id, c->id, &c->v, on_got, c);
}

/* A scheduled message being cancelled. */
struct cancel_ctx {
  struct http_req *req;
  struct store_msg_cancel c;
};

/* Store done callback of a cancel: answers and frees x. */
static void on_cancelled(void *arg, int rc) {
  struct cancel_ctx *x = arg;
  if (rc)
    api_error(x->req, 503, "store_unavailable", NULL, "cannot cancel the message now");
  else if (!x->c.found)
    api_error(x->req, 404, "not_found", NULL, "no message %s in this account", x->c.public_id);
  else if (!x->c.cancelled)
    api_error(x->req, 409, "not_scheduled", NULL,
              "message %s is %s: only a scheduled message can be cancelled", x->c.public_id,
              x->c.status);
  else
    api_json(x->req, 200, json_pack("{s:s, s:s}", "id", x->c.public_id, "status", "cancelled"),
             NULL);
  free(x);
}

void api_messages_cancel(struct api_call *call) {
  const char *id = api_param(call, "id");
  if (strlen(id) >= sizeof ((struct store_msg_cancel *)0)->public_id) {
    api_error(call->req, 404, "not_found", NULL, "no message %.40s in this account", id);
    return;
  }
  /* Freed in on_cancelled(), which answers. */
  struct cancel_ctx *x = kk_xcalloc(1, sizeof *x);
  x->req = call->req;
  x->c.account_id = call->account_id;
  snprintf(x->c.public_id, sizeof x->c.public_id, "%s", id);
  store_msg_cancel(call->a->store, &x->c, on_cancelled, x);
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
    api_json_page(c->req, "messages", arr, c->next);
  }
  for (int i = 0; i < c->n; i++) free(c->rows[i].text);
  free(c->rows);
  free(c);
}

void api_messages_list(struct api_call *call) {
  struct http_req *req = call->req;
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
  store_msg_list_async(call->a->store, call->account_id, &c->f, c->rows, &c->n, &c->next, on_listed, c);
}
