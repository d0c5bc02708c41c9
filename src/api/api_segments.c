/*
 * api_segments.c - an account's segments: named filters of its contacts
 * (contact/contact_filter.h).
 *
 *   PUT /v1/segments/{name} {"filter":"city = 'Казань' and orders >= 2"}
 *   GET /v1/segments/{name}  -> name, filter, count, created_at, updated_at
 *   GET /v1/segments         -> the segments (not counted)
 *   DELETE /v1/segments/{name}
 *
 * A filter is parsed here and stored as given; the store compiles it into a
 * parameterised query where it counts or lists (on its pool threads). A
 * filter that does not parse: 422 invalid_filter with its position (the
 * character, from 0, where parsing stopped). A count that takes longer than
 * STORE_SEGMENT_COUNT_MS: 503 segment_too_slow.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api_contacts.h"
#include "contact/contact_filter.h"
#include "core/kk_err.h"
#include "core/kk_mem.h"
#include "http/http_server.h"

/* The {name} of the path; 0, or nonzero having answered 422. */
static int path_name(struct api_call *c, const char **out) {
  *out = api_param(c, "name");
  if (*out && api_list_name_valid(*out)) return 0;
  api_error(c->req, 422, "invalid_name", "name", "name: 1 to 64 of A-Z a-z 0-9 _ - .");
  return KK_EINVAL;
}

static json_t *segment_json(const struct store_segment *sg) {
  char created[32], updated[32];
  api_time(sg->created_at, created);
  api_time(sg->updated_at, updated);
  json_t *o = json_pack("{s:s, s:s, s:s, s:s}", "name", sg->name, "filter", sg->filter,
                        "created_at", created, "updated_at", updated);
  if (sg->count >= 0) json_object_set_new(o, "count", json_integer((json_int_t)sg->count));
  return o;
}

/* A request on one segment (in the call's arena). */
struct seg_req {
  struct api_call *call;
  struct store_segment sg;
};

static struct seg_req *req_new(struct api_call *c) {
  struct seg_req *r = kk_arena_alloc(&c->arena, sizeof *r);
  memset(r, 0, sizeof *r);
  r->call = c;
  return r;
}

static void on_got(void *arg, int rc) {
  struct seg_req *r = arg;
  struct http_req *req = r->call->req;
  if (rc == KK_ENOENT)
    api_error(req, 404, "not_found", NULL, "no segment %s", r->sg.name);
  else if (rc == KK_ETIMEDOUT)
    api_error(req, 503, "segment_too_slow", NULL,
              "counting segment %s took longer than %d ms; narrow its filter", r->sg.name,
              STORE_SEGMENT_COUNT_MS);
  else if (rc == KK_EINVAL)
    api_error(req, 422, "invalid_filter", "filter", "the filter of segment %s does not parse",
              r->sg.name);
  else if (rc != 0)
    api_error(req, 503, "store_unavailable", NULL, "cannot count the segment now");
  else
    api_json(req, 200, segment_json(&r->sg), NULL);
}

void api_segment_get(struct api_call *c) {
  const char *name;
  if (path_name(c, &name) != 0) return;
  struct seg_req *r = req_new(c);
  snprintf(r->sg.name, sizeof r->sg.name, "%s", name);
  store_segment_get_async(c->a->store, c->account_id, name, 1, &r->sg, on_got, r);
}

/* The answer to a filter that does not parse: where, in characters. */
static void refuse_filter(struct http_req *req, const char *text, const struct cf_error *e) {
  size_t chars = 0;
  for (size_t i = 0; i < e->pos && text[i]; i++)
    if (((unsigned char)text[i] & 0xC0) != 0x80) chars++;
  struct api_err ae = {.status = 422, .code = "invalid_filter", .field = "filter"};
  snprintf(ae.message, sizeof ae.message, "filter: %s (at character %zu)", e->msg, chars);
  json_t *err = api_err_json(&ae);
  json_object_set_new(err, "position", json_integer((json_int_t)chars));
  api_json(req, 422, json_pack("{s:o}", "error", err), NULL);
}

static void on_put(void *arg, int rc) {
  struct seg_req *r = arg;
  if (rc != 0) {
    api_error(r->call->req, 503, "store_unavailable", NULL, "cannot save the segment now");
    return;
  }
  store_segment_get_async(r->call->a->store, r->call->account_id, r->sg.name, 1, &r->sg, on_got,
                          r);
}

void api_segment_put(struct api_call *c) {
  const char *name;
  if (path_name(c, &name) != 0) return;
  json_t *body = api_call_body(c);
  if (body == NULL) return;
  json_t *f = json_object_get(body, "filter");
  if (!json_is_string(f)) {
    api_error(c->req, 422, "invalid_filter", "filter", "filter: a string, e.g. \"city = 'Казань'\"");
    return;
  }
  const char *text = json_string_value(f);
  if (strlen(text) != json_string_length(f) || json_string_length(f) > STORE_SEGMENT_FILTER_MAX) {
    api_error(c->req, 422, "invalid_filter", "filter", "filter: up to %d bytes, no NUL",
              STORE_SEGMENT_FILTER_MAX);
    return;
  }
  struct cf_node *n;
  struct cf_error e;
  if (contact_filter_parse(text, &n, &e) != 0) {
    refuse_filter(c->req, text, &e);
    return;
  }
  contact_filter_free(n);
  struct seg_req *r = req_new(c);
  snprintf(r->sg.name, sizeof r->sg.name, "%s", name);
  store_segment_put(c->a->store, c->account_id, name, text, on_put, r);
}

static void on_deleted(void *arg, int rc) {
  struct seg_req *r = arg;
  if (rc == KK_ENOENT)
    api_error(r->call->req, 404, "not_found", NULL, "no segment %s", r->sg.name);
  else if (rc != 0)
    api_error(r->call->req, 503, "store_unavailable", NULL, "cannot delete the segment now");
  else
    api_empty(r->call->req, 204);
}

void api_segment_delete(struct api_call *c) {
  const char *name;
  if (path_name(c, &name) != 0) return;
  struct seg_req *r = req_new(c);
  snprintf(r->sg.name, sizeof r->sg.name, "%s", name);
  store_segment_delete(c->a->store, c->account_id, name, on_deleted, r);
}

/* The listing: filled on the pool thread, answered after done. */
struct seg_list {
  struct api_call *call;
  json_t *arr;
};

static void collect(void *arg, const struct store_segment *sg) {
  struct seg_list *l = arg;
  json_array_append_new(l->arr, segment_json(sg));
}

static void on_list(void *arg, int rc) {
  struct seg_list *l = arg;
  if (rc != 0) {
    json_decref(l->arr);
    api_error(l->call->req, 503, "store_unavailable", NULL, "cannot list the segments now");
    return;
  }
  api_json(l->call->req, 200, json_pack("{s:o}", "segments", l->arr), NULL);
}

void api_segments_list(struct api_call *c) {
  struct seg_list *l = kk_arena_alloc(&c->arena, sizeof *l);
  l->call = c;
  l->arr = json_array();
  store_segments_async(c->a->store, c->account_id, collect, l, on_list, l);
}
