/*
 * api_consents.c - consent records of an account, kept as proof:
 *
 *   PUT    /v1/consents/{phone}   {"source","text","ip","at","channel"}: a consent
 *                                 given (source required; at defaults to now,
 *                                 channel to "all") -> 201 the record
 *   GET    /v1/consents/{phone}   whether one is current, and every record
 *                                 (withdrawn ones too) -> 200, 404 when none
 *   DELETE /v1/consents/{phone}?channel=   withdraws the current ones (all
 *                                 channels by default) -> 204, 404 when none
 *   GET    /v1/consents.csv       every record, for a regulator
 *   POST   /v1/consents/import    CSV (phone, source, text, ip, at, channel):
 *                                 records in bulk, one transaction; the bad
 *                                 rows are answered with line and reason
 */
#include <stdlib.h>
#include <string.h>

#include "api/api_optout.h"
#include "contact/consent_csv.h"
#include "core/kk_err.h"
#include "core/kk_mem.h"
#include "core/kk_utf8.h"
#include "http/http_server.h"
#include "policy/pol_consent.h"
#include "store/store_optout.h"

static json_t *opt_time(int64_t ms) {
  if (ms <= 0) return json_null();
  char t[32];
  api_time(ms, t);
  return json_string(t);
}

static json_t *consent_json(const struct store_consent *c) {
  json_t *o = json_object();
  char id[24];
  snprintf(id, sizeof id, "%lld", (long long)c->id);
  json_object_set_new(o, "id", json_string(id));
  json_object_set_new(o, "phone", json_string(c->phone));
  json_object_set_new(o, "channel", json_string(c->channel));
  json_object_set_new(o, "source", json_string(c->source));
  json_object_set_new(o, "text", c->text && c->text[0] ? json_string(c->text) : json_null());
  json_object_set_new(o, "ip", c->ip[0] ? json_string(c->ip) : json_null());
  json_object_set_new(o, "at", opt_time(c->at));
  json_object_set_new(o, "recorded_at", opt_time(c->recorded_at));
  json_object_set_new(o, "withdrawn_at", opt_time(c->withdrawn_at));
  json_object_set_new(o, "withdrawn_by",
                      c->withdrawn_by[0] ? json_string(c->withdrawn_by) : json_null());
  return o;
}

/* A string field of at most cap - 1 bytes of UTF-8 (absent or null: ""):
   0, or KK_EINVAL having answered 422. */
static int str_field(struct api_call *c, json_t *body, const char *name, char *out, size_t cap,
                     int required) {
  json_t *v = json_object_get(body, name);
  out[0] = '\0';
  if (v == NULL || json_is_null(v)) {
    if (!required) return 0;
    api_error(c->req, 422, "missing_field", name, "%s: required", name);
    return KK_EINVAL;
  }
  size_t n = json_is_string(v) ? json_string_length(v) : 0;
  if (!json_is_string(v) || n >= cap || (required && n == 0) ||
      !kk_utf8_valid(json_string_value(v), n)) {
    api_error(c->req, 422, "invalid_field", name, "%s: a string of up to %zu bytes", name,
              cap - 1);
    return KK_EINVAL;
  }
  memcpy(out, json_string_value(v), n + 1);
  return 0;
}

struct consent_call {
  struct api_call *call;
  struct store_consent_op op;
  json_t *rows;
  uint32_t mask;
};

static struct consent_call *cc_new(struct api_call *c) {
  struct consent_call *k = kk_arena_alloc(&c->arena, sizeof *k);
  memset(k, 0, sizeof *k);
  k->call = c;
  k->op.account_id = c->account_id;
  k->op.now = store_now_ms();
  return k;
}

static void on_put(void *arg, int rc) {
  struct consent_call *k = arg;
  if (rc != 0)
    api_error(k->call->req, 503, "store_unavailable", NULL, "cannot record the consent now");
  else
    api_json(k->call->req, 201, consent_json(&k->op.c), NULL);
}

void api_consent_put(struct api_call *c) {
  struct consent_call *k = cc_new(c);
  struct store_consent *r = &k->op.c;
  if (api_optout_phone(c, r->phone) != 0) return;
  json_t *body = api_call_body(c);
  if (body == NULL) return;
  char at[40], channel[16];
  if (str_field(c, body, "source", r->source, sizeof r->source, 1) != 0 ||
      str_field(c, body, "ip", r->ip, sizeof r->ip, 0) != 0 ||
      str_field(c, body, "at", at, sizeof at, 0) != 0 ||
      str_field(c, body, "channel", channel, sizeof channel, 0) != 0)
    return;
  json_t *t = json_object_get(body, "text");
  if (t && !json_is_null(t)) {
    if (!json_is_string(t) || json_string_length(t) > STORE_CONSENT_TEXT_MAX) {
      api_error(c->req, 422, "invalid_field", "text", "text: the text shown, up to %d bytes",
                STORE_CONSENT_TEXT_MAX);
      return;
    }
    r->text = kk_arena_alloc(&c->arena, json_string_length(t) + 1);
    memcpy(r->text, json_string_value(t), json_string_length(t) + 1);
  }
  if (channel[0] && pol_consent_bit(channel) == 0) {
    api_error(c->req, 422, "invalid_channel", "channel",
              "channel: all, sms, vk, viber, telegram, whatsapp or email");
    return;
  }
  snprintf(r->channel, sizeof r->channel, "%s", channel[0] ? channel : "all");
  r->at = k->op.now;
  if (at[0] && (api_parse_time(at, &r->at) != 0 || r->at > k->op.now + 60000)) {
    api_error(c->req, 422, "invalid_time", "at", "at: an RFC 3339 time, not in the future");
    return;
  }
  store_consent_write(c->a->store, &k->op, on_put, k);
}

static void on_delete(void *arg, int rc) {
  struct consent_call *k = arg;
  if (rc == KK_ENOENT)
    api_error(k->call->req, 404, "not_found", NULL, "no current consent of %s", k->op.c.phone);
  else if (rc != 0)
    api_error(k->call->req, 503, "store_unavailable", NULL, "cannot withdraw the consent now");
  else
    api_empty(k->call->req, 204);
}

void api_consent_delete(struct api_call *c) {
  struct consent_call *k = cc_new(c);
  struct store_consent *r = &k->op.c;
  if (api_optout_phone(c, r->phone) != 0) return;
  const char *ch = http_req_query(c->req, "channel");
  if (ch && pol_consent_bit(ch) == 0) {
    api_error(c->req, 422, "invalid_channel", "channel",
              "channel: all, sms, vk, viber, telegram, whatsapp or email");
    return;
  }
  snprintf(r->channel, sizeof r->channel, "%s", ch && ch[0] ? ch : "all");
  k->op.withdraw = 1;
  r->withdrawn_at = k->op.now;
  snprintf(r->withdrawn_by, sizeof r->withdrawn_by, "api");
  store_consent_write(c->a->store, &k->op, on_delete, k);
}

static int add_row(void *arg, const struct store_consent *c) {
  json_array_append_new(((struct consent_call *)arg)->rows, consent_json(c));
  return 0;
}

static void on_get(void *arg, int rc) {
  struct consent_call *k = arg;
  if (rc != 0) {
    json_decref(k->rows);
    if (rc == KK_ENOENT)
      api_error(k->call->req, 404, "not_found", NULL, "no consent of %s", k->op.c.phone);
    else
      api_error(k->call->req, 503, "store_unavailable", NULL, "cannot read consents now");
    return;
  }
  json_t *o = json_object();
  json_object_set_new(o, "phone", json_string(k->op.c.phone));
  /* what the policy check sees now (the copy in memory) */
  uint32_t mask = store_consent_mask(k->call->a->store, k->call->account_id, k->op.c.phone);
  json_t *chans = json_array();
  for (uint32_t b = 1; b && b <= mask; b <<= 1)
    if ((mask & b) && pol_consent_channel(b))
      json_array_append_new(chans, json_string(pol_consent_channel(b)));
  json_object_set_new(o, "current", json_boolean(mask != 0));
  json_object_set_new(o, "channels", chans);
  json_object_set_new(o, "consents", k->rows);
  api_json(k->call->req, 200, o, NULL);
}

void api_consent_get(struct api_call *c) {
  struct consent_call *k = cc_new(c);
  if (api_optout_phone(c, k->op.c.phone) != 0) return;
  k->rows = json_array();
  store_consent_each_async(c->a->store, c->account_id, k->op.c.phone, add_row, k, on_get, k);
}

static int csv_row(void *arg, const struct store_consent *c) {
  FILE *f = arg;
  char id[24], at[32] = "", rec[32] = "", wd[32] = "";
  snprintf(id, sizeof id, "%lld", (long long)c->id);
  if (c->at > 0) api_time(c->at, at);
  if (c->recorded_at > 0) api_time(c->recorded_at, rec);
  if (c->withdrawn_at > 0) api_time(c->withdrawn_at, wd);
  const char *cells[] = {id, c->phone, c->channel, c->source, c->text, c->ip, at, rec, wd,
                         c->withdrawn_by};
  size_t n = sizeof cells / sizeof cells[0];
  for (size_t i = 0; i < n; i++) api_csv_cell(f, cells[i], i + 1 == n);
  return ferror(f) ? KK_EIO : 0;
}

static void on_csv(void *arg, int rc) { api_csv_send(arg, rc); }

void api_consents_csv(struct api_call *c) {
  struct api_csv_out *o = api_csv_open(
      c, "id,phone,channel,source,text,ip,at,recorded_at,withdrawn_at,withdrawn_by\n");
  if (o == NULL) return;
  store_consent_each_async(c->a->store, c->account_id, NULL, csv_row, o->f, on_csv, o);
}

/* ---- POST /v1/consents/import ---------------------------------------------------- */

#define IMPORT_ERRORS_SHOWN 1000   /* refused rows an answer lists */

struct bulk {
  struct api_call *call;
  struct store_consent_op op;
  int cap;
  int over;                 /* rows past STORE_CONSENT_BULK_MAX */
  long rejected;
  json_t *errors;
};

static void bulk_free(struct bulk *b) {
  for (int i = 0; i < b->op.n; i++) free(b->op.rows[i].text);
  free(b->op.rows);
  json_decref(b->errors);
  free(b);
}

static void bulk_row(void *arg, long line, const struct store_consent *r) {
  struct bulk *b = arg;
  (void)line;
  if (b->op.n == STORE_CONSENT_BULK_MAX) {
    b->over = 1;
    return;
  }
  if (b->op.n == b->cap) {
    b->cap = b->cap ? b->cap * 2 : 256;
    b->op.rows = kk_xrealloc(b->op.rows, (size_t)b->cap * sizeof *b->op.rows);
  }
  struct store_consent *c = &b->op.rows[b->op.n++];
  *c = *r;
  c->text = r->text && r->text[0] ? kk_xstrdup(r->text) : NULL;   /* freed by bulk_free */
}

static void bulk_reject(void *arg, const struct consent_csv_reject *r) {
  struct bulk *b = arg;
  if (b->rejected++ < IMPORT_ERRORS_SHOWN)
    json_array_append_new(b->errors, json_pack("{s:I, s:s, s:s}", "line", (json_int_t)r->line,
                                               "reason", r->reason, "message", r->detail));
}

static void on_bulk(void *arg, int rc) {
  struct bulk *b = arg;
  if (rc != 0) {
    api_error(b->call->req, 503, "store_unavailable", NULL, "cannot record the consents now");
  } else {
    json_t *o = json_pack("{s:i, s:I, s:O}", "recorded", b->op.n, "rejected",
                          (json_int_t)b->rejected, "errors", b->errors);
    api_json(b->call->req, 200, o, NULL);
  }
  bulk_free(b);
}

void api_consents_import(struct api_call *c) {
  const char *country = http_req_query(c->req, "country");
  if (country && !(strlen(country) == 2 && country[0] >= 'A' && country[0] <= 'Z' &&
                   country[1] >= 'A' && country[1] <= 'Z')) {
    api_error(c->req, 422, "invalid_country", "country", "country: an ISO code such as RU");
    return;
  }
  struct bulk *b = kk_xcalloc(1, sizeof *b);   /* freed by bulk_free */
  b->call = c;
  b->errors = json_array();
  b->op.account_id = c->account_id;
  b->op.now = store_now_ms();
  struct consent_csv_opts o = {.country = country ? country : "RU", .now = b->op.now,
                               .row = bulk_row, .reject = bulk_reject, .arg = b};
  struct consent_csv *csv = consent_csv_new(&o);
  size_t len;
  const char *body = http_req_body(c->req, &len);
  int rc = consent_csv_feed(csv, body, len);
  if (rc == 0) rc = consent_csv_end(csv);
  if (rc != 0)
    api_error(c->req, 422, "invalid_csv", NULL, "the file cannot be read: %s",
              consent_csv_error(csv));
  consent_csv_free(csv);
  if (rc == 0 && b->over)
    api_error(c->req, 413, "too_many_rows", NULL,
              "at most %d consents a request; nothing was recorded", STORE_CONSENT_BULK_MAX);
  if (rc != 0 || b->over) {
    bulk_free(b);
    return;
  }
  if (b->op.n == 0) {
    on_bulk(b, 0);
    return;
  }
  store_consent_write(c->a->store, &b->op, on_bulk, b);
}
