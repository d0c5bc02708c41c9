/*
 * api_contacts.c - contacts of an account: GET|PUT|PATCH|DELETE
 * /v1/contacts/{phone}, GET /v1/contacts (a page), GET /v1/lists (name,
 * size). Imports and the CSV answers are in api_contacts_io.c.
 *
 * A contact is keyed by its phone (E.164 digits). PUT makes it what the body
 * says (lists and attributes too); PATCH changes the fields given (lists
 * add up, attributes merge). A time zone given is the contact's own
 * ("explicit"); without one, the numbering register's zone of the number
 * ("number"), else Europe/Moscow ("default").
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api_contacts.h"
#include "core/kk_err.h"
#include "core/kk_mem.h"
#include "core/kk_tz.h"
#include "http/http_server.h"
#include "phone/phone.h"
#include "phone/phone_plan.h"
#include "store/store_contact.h"

int api_list_name_valid(const char *s) {
  size_t n = strlen(s);
  if (n < 1 || n > STORE_LIST_NAME_MAX) return 0;
  for (size_t i = 0; i < n; i++) {
    char ch = s[i];
    if (!((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
          ch == '_' || ch == '-' || ch == '.'))
      return 0;
  }
  return 1;
}

static const char *ms_time(int64_t ms, char out[32]) {
  if (ms <= 0) return NULL;
  api_time(ms, out);
  return out;
}

static json_t *opt_str(const char *s) { return s[0] ? json_string(s) : json_null(); }

json_t *api_contact_json(const struct store_contact *c) {
  json_t *o = json_object();
  char t[32];
  const char *ts;
  json_object_set_new(o, "phone", json_string(c->phone));
  json_object_set_new(o, "name", opt_str(c->name));
  json_object_set_new(o, "email", opt_str(c->email));
  json_object_set_new(o, "timezone", opt_str(c->timezone));
  json_object_set_new(o, "timezone_source",
                      json_string(c->tz_source[0] ? c->tz_source : "default"));
  json_object_set_new(o, "operator", opt_str(c->operator_name));
  json_object_set_new(o, "region", opt_str(c->region));
  json_object_set_new(o, "vk_id", opt_str(c->vk_id));
  json_object_set_new(o, "telegram_chat_id", opt_str(c->telegram_chat_id));
  json_object_set_new(o, "viber_id", opt_str(c->viber_id));
  json_t *lists = json_array();
  for (int i = 0; i < c->nlists; i++) json_array_append_new(lists, json_string(c->lists[i]));
  json_object_set_new(o, "lists", lists);
  json_t *attrs = c->attrs ? json_loads(c->attrs, 0, NULL) : NULL;
  json_object_set_new(o, "attrs", json_is_object(attrs) ? attrs : json_object());
  if (attrs && !json_is_object(attrs)) json_decref(attrs);
  json_object_set_new(o, "consent", c->consent < 0 ? json_null() : json_boolean(c->consent));
  json_object_set_new(o, "consent_source", opt_str(c->consent_source));
  ts = ms_time(c->consent_at, t);
  json_object_set_new(o, "consent_at", ts ? json_string(ts) : json_null());
  json_object_set_new(o, "stop_listed", json_boolean(c->stop_listed));
  json_object_set_new(o, "created_at", json_string(ms_time(c->created_at, t) ? t : ""));
  json_object_set_new(o, "updated_at", json_string(ms_time(c->updated_at, t) ? t : ""));
  return o;
}

/* The {phone} of the path, normalised (answers 422 and returns nonzero). */
static int path_phone(struct api_call *c, char out[16]) {
  const char *p = api_param(c, "phone");
  if (p == NULL || phone_normalize(p, out, 16) != 0) {
    api_error(c->req, 422, "invalid_phone", "phone", "phone: a phone number (E.164)");
    return KK_EINVAL;
  }
  return 0;
}

/* ---- one contact ---------------------------------------------------------- */

/* A contact's request under way (in the call's arena). */
struct one {
  struct api_call *call;
  struct store_contact c;
  struct store_contact_batch b;
  int patch;
  json_t *body;
};

static void on_got(void *arg, int rc) {
  struct one *o = arg;
  if (rc == KK_ENOENT)
    api_error(o->call->req, 404, "not_found", NULL, "no contact %s", o->c.phone);
  else if (rc != 0)
    api_error(o->call->req, 503, "store_unavailable", NULL, "cannot read the contact now");
  else
    api_json(o->call->req, 200, api_contact_json(&o->c), NULL);
  store_contact_fini(&o->c);
}

static struct one *one_new(struct api_call *c) {
  struct one *o = kk_arena_alloc(&c->arena, sizeof *o);
  memset(o, 0, sizeof *o);
  o->call = c;
  return o;
}

void api_contact_get(struct api_call *c) {
  struct one *o = one_new(c);
  if (path_phone(c, o->c.phone) != 0) return;
  char phone[16];
  memcpy(phone, o->c.phone, sizeof phone);
  store_contact_get_async(c->a->store, c->account_id, phone, &o->c, on_got, o);
}

/* Copies a string field of the body into out; 0, or nonzero having filled e. */
static int take_str(json_t *body, const char *key, char *out, size_t cap, struct api_err *e) {
  json_t *v = json_object_get(body, key);
  if (v == NULL || json_is_null(v)) return 0;
  if (!json_is_string(v) || json_string_length(v) >= cap)
    return api_refuse(e, 422, "invalid_field", key, "%s: a string of up to %zu bytes", key,
                      cap - 1);
  memcpy(out, json_string_value(v), json_string_length(v) + 1);
  return 0;
}

/* The body's fields into c (the phone set). 0, or KK_EINVAL with e. */
static int contact_from_json(struct api *a, json_t *body, struct store_contact *c,
                             struct api_err *e) {
  c->consent = -1;
  static const struct {
    const char *key;
    size_t off, cap;
  } strs[] = {
      {"name", offsetof(struct store_contact, name), sizeof c->name},
      {"email", offsetof(struct store_contact, email), sizeof c->email},
      {"timezone", offsetof(struct store_contact, timezone), sizeof c->timezone},
      {"vk_id", offsetof(struct store_contact, vk_id), sizeof c->vk_id},
      {"telegram_chat_id", offsetof(struct store_contact, telegram_chat_id),
       sizeof c->telegram_chat_id},
      {"viber_id", offsetof(struct store_contact, viber_id), sizeof c->viber_id},
      {"consent_source", offsetof(struct store_contact, consent_source),
       sizeof c->consent_source},
  };
  for (size_t i = 0; i < sizeof strs / sizeof strs[0]; i++)
    if (take_str(body, strs[i].key, (char *)c + strs[i].off, strs[i].cap, e) != 0)
      return KK_EINVAL;
  if (c->email[0] && !api_valid_email(c->email))
    return api_refuse(e, 422, "invalid_email", "email", "email: an e-mail address");
  if (c->timezone[0]) {
    if (!kk_tz_valid(c->timezone))
      return api_refuse(e, 422, "invalid_timezone", "timezone",
                        "timezone: an IANA time zone such as Europe/Moscow");
    snprintf(c->tz_source, sizeof c->tz_source, "explicit");
  }
  json_t *v = json_object_get(body, "consent");
  if (json_is_boolean(v)) c->consent = json_is_true(v);
  else if (json_is_string(v) && strcmp(json_string_value(v), "yes") == 0) c->consent = 1;
  else if (json_is_string(v) && strcmp(json_string_value(v), "no") == 0) c->consent = 0;
  else if (v && !json_is_null(v))
    return api_refuse(e, 422, "invalid_consent", "consent", "consent: true, false, \"yes\" or \"no\"");
  v = json_object_get(body, "consent_at");
  if (v && !json_is_null(v) &&
      (!json_is_string(v) || api_parse_time(json_string_value(v), &c->consent_at) != 0))
    return api_refuse(e, 422, "invalid_consent_at", "consent_at", "consent_at: RFC 3339 time");
  v = json_object_get(body, "lists");
  if (v && !json_is_null(v)) {
    size_t i;
    json_t *x;
    if (!json_is_array(v) || json_array_size(v) > STORE_CONTACT_LISTS_MAX)
      return api_refuse(e, 422, "invalid_lists", "lists", "lists: an array of up to %d list names",
                        STORE_CONTACT_LISTS_MAX);
    json_array_foreach(v, i, x) {
      if (!json_is_string(x) || !api_list_name_valid(json_string_value(x)))
        return api_refuse(e, 422, "invalid_lists", "lists",
                          "lists: names of 1 to 64 of A-Z a-z 0-9 _ - .");
      snprintf(c->lists[c->nlists++], sizeof c->lists[0], "%s", json_string_value(x));
    }
  }
  v = json_object_get(body, "attrs");
  if (v && !json_is_null(v)) {
    const char *k;
    json_t *x;
    if (!json_is_object(v) || json_object_size(v) > 64)
      return api_refuse(e, 422, "invalid_attrs", "attrs", "attrs: an object of up to 64 values");
    json_object_foreach(v, k, x) {
      if (!(json_is_string(x) || json_is_number(x) || json_is_boolean(x)) || strlen(k) > 63)
        return api_refuse(e, 422, "invalid_attrs", "attrs",
                          "attrs: names of up to 63 bytes, values strings or numbers");
    }
    c->attrs = json_dumps(v, JSON_COMPACT);
    if (c->attrs && strlen(c->attrs) > 65536) {
      free(c->attrs);
      c->attrs = NULL;
      return api_refuse(e, 422, "invalid_attrs", "attrs", "attrs: up to 64 KiB");
    }
  }
  api_contact_number_info(a, c);
  return 0;
}

void api_contact_number_info(struct api *a, struct store_contact *c) {
  struct phone_plan_info pi;
  int known = a->plan && phone_plan_lookup(a->plan, c->phone, &pi) == 0;
  if (known) {
    snprintf(c->operator_name, sizeof c->operator_name, "%s", pi.operator_name);
    snprintf(c->region, sizeof c->region, "%s", pi.region);
  }
  if (c->tz_source[0]) return;
  if (known && pi.timezone[0]) {
    snprintf(c->timezone, sizeof c->timezone, "%s", pi.timezone);
    snprintf(c->tz_source, sizeof c->tz_source, "number");
  } else {
    snprintf(c->timezone, sizeof c->timezone, "Europe/Moscow");
    snprintf(c->tz_source, sizeof c->tz_source, "default");
  }
}

static void on_written(void *arg, int rc);

/* Reads the contact after its write, to answer with what is stored. */
static void on_written(void *arg, int rc) {
  struct one *o = arg;
  store_contact_fini(&o->c);
  if (rc != 0) {
    api_error(o->call->req, 503, "store_unavailable", NULL, "cannot save the contact now");
    return;
  }
  char phone[16];
  memcpy(phone, o->c.phone, sizeof phone);
  store_contact_get_async(o->call->a->store, o->call->account_id, phone, &o->c, on_got, o);
}

static void write_contact(struct one *o, enum store_contact_mode mode) {
  o->b.account_id = o->call->account_id;
  o->b.mode = mode;
  o->b.rows = &o->c;
  o->b.n = 1;
  store_contact_write(o->call->a->store, &o->b, on_written, o);
}

/* Parses the body into o->c; 0, or nonzero having answered. */
static int parse_body(struct api_call *c, struct one *o) {
  json_t *body = api_call_body(c);
  if (body == NULL) return KK_EINVAL;
  struct api_err e = {0};
  if (contact_from_json(c->a, body, &o->c, &e) != 0) {
    store_contact_fini(&o->c);
    api_error_from(c->req, &e);
    return KK_EINVAL;
  }
  return 0;
}

void api_contact_put(struct api_call *c) {
  struct one *o = one_new(c);
  if (path_phone(c, o->c.phone) != 0 || parse_body(c, o) != 0) return;
  write_contact(o, STORE_CONTACT_REPLACE);
}

/* PATCH: the contact must be there; then the fields given merge. */
static void on_patch_found(void *arg, int rc) {
  struct one *o = arg;
  store_contact_fini(&o->c);
  if (rc != 0) {
    on_got(o, rc);
    return;
  }
  char phone[16];
  memcpy(phone, o->c.phone, sizeof phone);
  memset(&o->c, 0, sizeof o->c);
  memcpy(o->c.phone, phone, sizeof phone);
  if (parse_body(o->call, o) != 0) return;
  write_contact(o, STORE_CONTACT_MERGE);
}

void api_contact_patch(struct api_call *c) {
  struct one *o = one_new(c);
  if (path_phone(c, o->c.phone) != 0) return;
  if (api_call_body(c) == NULL) return;
  char phone[16];
  memcpy(phone, o->c.phone, sizeof phone);
  store_contact_get_async(c->a->store, c->account_id, phone, &o->c, on_patch_found, o);
}

static void on_deleted(void *arg, int rc) {
  struct one *o = arg;
  if (rc == KK_ENOENT)
    api_error(o->call->req, 404, "not_found", NULL, "no contact %s", o->c.phone);
  else if (rc != 0)
    api_error(o->call->req, 503, "store_unavailable", NULL, "cannot delete the contact now");
  else
    api_empty(o->call->req, 204);
}

void api_contact_delete(struct api_call *c) {
  struct one *o = one_new(c);
  if (path_phone(c, o->c.phone) != 0) return;
  store_contact_delete(c->a->store, c->account_id, o->c.phone, on_deleted, o);
}

/* ---- listings ------------------------------------------------------------------ */

struct page {
  struct api_call *call;
  struct store_contact_filter f;
  struct store_contact *rows;
  int n;
  char next[16];
};

static void on_page(void *arg, int rc) {
  struct page *p = arg;
  if (rc == KK_ENOENT) {
    api_error(p->call->req, 404, "not_found", "segment", "no segment %s", p->f.segment);
  } else if (rc == KK_ETIMEDOUT) {
    api_error(p->call->req, 503, "segment_too_slow", "segment",
              "the segment's page took longer than %d ms; narrow the filter",
              STORE_SEGMENT_COUNT_MS);
  } else if (rc == KK_EINVAL) {
    api_error(p->call->req, 422, "invalid_filter", "segment", "the segment's filter does not parse");
  } else if (rc != 0) {
    api_error(p->call->req, 503, "store_unavailable", NULL, "cannot list contacts now");
  } else {
    json_t *arr = json_array();
    for (int i = 0; i < p->n; i++) json_array_append_new(arr, api_contact_json(&p->rows[i]));
    json_t *doc = json_object();
    json_object_set_new(doc, "contacts", arr);
    json_object_set_new(doc, "next_cursor", p->next[0] ? json_string(p->next) : json_null());
    api_json(p->call->req, 200, doc, NULL);
  }
  for (int i = 0; i < p->n; i++) store_contact_fini(&p->rows[i]);
  free(p->rows);
}

void api_contacts_list(struct api_call *c) {
  struct page *p = kk_arena_alloc(&c->arena, sizeof *p);
  memset(p, 0, sizeof *p);
  p->call = c;
  p->f.limit = 100;
  const char *s;
  if ((s = http_req_query(c->req, "list")) != NULL) {
    if (!api_list_name_valid(s)) {
      api_error(c->req, 422, "invalid_list", "list", "list: 1 to 64 of A-Z a-z 0-9 _ - .");
      return;
    }
    p->f.list = kk_arena_strdup(&c->arena, s);
  }
  if ((s = http_req_query(c->req, "segment")) != NULL) {
    if (!api_list_name_valid(s)) {
      api_error(c->req, 422, "invalid_segment", "segment",
                "segment: 1 to 64 of A-Z a-z 0-9 _ - .");
      return;
    }
    p->f.segment = kk_arena_strdup(&c->arena, s);
  }
  if ((s = http_req_query(c->req, "q")) != NULL && *s) {
    if (strlen(s) > 100) {
      api_error(c->req, 422, "invalid_q", "q", "q: up to 100 bytes");
      return;
    }
    p->f.q = kk_arena_strdup(&c->arena, s);
  }
  if ((s = http_req_query(c->req, "limit")) != NULL) {
    char *end;
    long l = strtol(s, &end, 10);
    if (*end || l < 1 || l > STORE_CONTACT_PAGE_MAX) {
      api_error(c->req, 422, "invalid_limit", "limit", "limit: 1 to %d", STORE_CONTACT_PAGE_MAX);
      return;
    }
    p->f.limit = (int)l;
  }
  if ((s = http_req_query(c->req, "cursor")) != NULL) {
    size_t n = strlen(s);
    if (n == 0 || n >= sizeof p->f.after || strspn(s, "0123456789") != n) {
      api_error(c->req, 422, "invalid_cursor", "cursor", "cursor: use next_cursor from a listing");
      return;
    }
    memcpy(p->f.after, s, n + 1);
  }
  p->rows = kk_xcalloc((size_t)p->f.limit, sizeof *p->rows);   /* freed in on_page */
  store_contact_list_async(c->a->store, c->account_id, &p->f, p->rows, &p->n, p->next, on_page,
                           p);
}

struct lists {
  struct api_call *call;
  json_t *arr;              /* filled on the pool thread, read after done */
};

static void on_list_size(void *arg, const char *name, int64_t size) {
  struct lists *l = arg;
  json_array_append_new(l->arr, json_pack("{s:s, s:I}", "name", name, "size", (json_int_t)size));
}

static void on_lists(void *arg, int rc) {
  struct lists *l = arg;
  if (rc != 0) {
    json_decref(l->arr);
    api_error(l->call->req, 503, "store_unavailable", NULL, "cannot list the lists now");
    return;
  }
  json_t *doc = json_object();
  json_object_set_new(doc, "lists", l->arr);
  api_json(l->call->req, 200, doc, NULL);
}

void api_lists_get(struct api_call *c) {
  struct lists *l = kk_arena_alloc(&c->arena, sizeof *l);
  l->call = c;
  l->arr = json_array();
  store_lists_async(c->a->store, c->account_id, on_list_size, l, on_lists, l);
}
