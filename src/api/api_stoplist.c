/*
 * api_stoplist.c - an account's stop-list: one list for every channel.
 *
 *   GET    /v1/stoplist?limit=&cursor=   a page in phone order
 *   GET    /v1/stoplist.csv              every entry (phone,reason,channel,created_at)
 *   GET    /v1/stoplist/{phone}          one entry (404 when not listed)
 *   PUT    /v1/stoplist/{phone}          {"reason"}: api (default), complaint, reply, link
 *   DELETE /v1/stoplist/{phone}          removes it (404 when not listed)
 *   POST   /v1/stoplist/import?country=  a CSV of phones (column phone, optional
 *                                        reason; default import): all listed
 *                                        in one write or none; rows refused are
 *                                        reported
 *
 * A write changes the store and, after its commit, the copy in memory that
 * the accept path's check reads: the next send sees it.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "api/api_optout.h"
#include "contact/contact_csv.h"
#include "contact/contact_import.h"
#include "core/kk_err.h"
#include "core/kk_mem.h"
#include "core/kk_utf8.h"
#include "http/http_server.h"
#include "phone/phone.h"
#include "policy/pol_stop.h"
#include "store/store_optout.h"

int api_optout_phone(struct api_call *c, char out[16]) {
  const char *p = api_param(c, "phone");
  if (p == NULL || phone_normalize(p, out, 16) != 0) {
    api_error(c->req, 422, "invalid_phone", "phone", "phone: a phone number (E.164)");
    return KK_EINVAL;
  }
  return 0;
}

struct api_csv_out *api_csv_open(struct api_call *c, const char *header) {
  if (c->a->imports == NULL) {
    api_error(c->req, 503, "imports_unavailable", NULL, "CSV answers need a data folder");
    return NULL;
  }
  struct api_csv_out *o = kk_arena_alloc(&c->arena, sizeof *o);
  o->call = c;
  o->f = contact_imports_scratch(c->a->imports);
  if (o->f == NULL) {
    api_error(c->req, 503, "store_unavailable", NULL, "cannot make a scratch file");
    return NULL;
  }
  fputs(header, o->f);
  return o;
}

void api_csv_send(struct api_csv_out *o, int rc) {
  long size = rc == 0 && fflush(o->f) == 0 ? ftell(o->f) : -1;
  int fd = size >= 0 ? dup(fileno(o->f)) : -1;
  fclose(o->f);
  if (fd < 0) {
    api_error(o->call->req, 503, "store_unavailable", NULL, "cannot read the list now");
    return;
  }
  api_count_status(o->call->req, 200);
  http_respond_fd(o->call->req, 200, "text/csv; charset=utf-8", fd, (uint64_t)size, NULL);
}

static json_t *entry_json(const struct store_stop_entry *e) {
  char at[32];
  api_time(e->at, at);
  json_t *o = json_object();
  json_object_set_new(o, "phone", json_string(e->phone));
  json_object_set_new(o, "reason", json_string(e->reason));
  json_object_set_new(o, "channel", e->channel[0] ? json_string(e->channel) : json_null());
  json_object_set_new(o, "created_at", json_string(at));
  return o;
}

/* A read under way (in the call's arena). */
struct stop_read {
  struct api_call *call;
  json_t *rows;             /* filled on the pool thread, answered on the loop */
  char last[16];
  int limit, n;
};

static int add_row(void *arg, const struct store_stop_entry *e) {
  struct stop_read *r = arg;
  json_array_append_new(r->rows, entry_json(e));
  snprintf(r->last, sizeof r->last, "%s", e->phone);
  r->n++;
  return 0;
}

static void on_page(void *arg, int rc) {
  struct stop_read *r = arg;
  if (rc != 0) {
    json_decref(r->rows);
    api_error(r->call->req, 503, "store_unavailable", NULL, "cannot read the stop-list now");
    return;
  }
  api_json_page(r->call->req, "stoplist", r->rows, r->n == r->limit ? atoll(r->last) : 0);
}

void api_stoplist_list(struct api_call *c) {
  struct stop_read *r = kk_arena_alloc(&c->arena, sizeof *r);
  memset(r, 0, sizeof *r);
  r->call = c;
  r->limit = 100;
  const char *s;
  char after[16] = "";
  if ((s = http_req_query(c->req, "limit")) != NULL) {
    char *end;
    long l = strtol(s, &end, 10);
    if (*end || l < 1 || l > STORE_STOP_PAGE_MAX) {
      api_error(c->req, 422, "invalid_limit", "limit", "limit: 1 to 1000");
      return;
    }
    r->limit = (int)l;
  }
  if ((s = http_req_query(c->req, "cursor")) != NULL) {
    if (phone_normalize(s, after, sizeof after) != 0) {
      api_error(c->req, 422, "invalid_cursor", "cursor", "cursor: use next_cursor from a listing");
      return;
    }
  }
  r->rows = json_array();
  store_stop_each_async(c->a->store, c->account_id, NULL, after, r->limit, add_row, r, on_page,
                        r);
}

static void on_one(void *arg, int rc) {
  struct stop_read *r = arg;
  if (rc == 0 && r->n == 1) {
    json_t *o = json_incref(json_array_get(r->rows, 0));
    json_decref(r->rows);
    api_json(r->call->req, 200, o, NULL);
    return;
  }
  json_decref(r->rows);
  if (rc == KK_ENOENT || rc == 0)
    api_error(r->call->req, 404, "not_found", NULL, "the phone is not on the stop-list");
  else
    api_error(r->call->req, 503, "store_unavailable", NULL, "cannot read the stop-list now");
}

void api_stoplist_get(struct api_call *c) {
  struct stop_read *r = kk_arena_alloc(&c->arena, sizeof *r);
  memset(r, 0, sizeof *r);
  r->call = c;
  char phone[16];
  if (api_optout_phone(c, phone) != 0) return;
  r->rows = json_array();
  store_stop_each_async(c->a->store, c->account_id, phone, NULL, 1, add_row, r, on_one, r);
}

static int csv_row(void *arg, const struct store_stop_entry *e) {
  FILE *f = arg;
  char at[32];
  api_time(e->at, at);
  api_csv_cell(f, e->phone, 0);
  api_csv_cell(f, e->reason, 0);
  api_csv_cell(f, e->channel, 0);
  api_csv_cell(f, at, 1);
  return ferror(f) ? KK_EIO : 0;
}

static void on_csv(void *arg, int rc) { api_csv_send(arg, rc); }

void api_stoplist_csv(struct api_call *c) {
  struct api_csv_out *o = api_csv_open(c, "phone,reason,channel,created_at\n");
  if (o == NULL) return;
  store_stop_each_async(c->a->store, c->account_id, NULL, NULL, 0, csv_row, o->f, on_csv, o);
}

/* ---- writes ------------------------------------------------------------------ */

struct stop_write {
  struct api_call *call;
  struct store_stop_batch b;
  struct store_stop_row row;
};

static void on_written(void *arg, int rc) {
  struct stop_write *w = arg;
  struct http_req *req = w->call->req;
  if (rc != 0) {
    api_error(req, 503, "store_unavailable", NULL, "cannot write the stop-list now");
  } else if (w->row.reason[0]) {
    struct store_stop_entry e = {.at = w->b.at};
    snprintf(e.phone, sizeof e.phone, "%s", w->row.phone);
    snprintf(e.reason, sizeof e.reason, "%s", w->row.reason);
    api_json(req, 200, entry_json(&e), NULL);
  } else if (w->b.changed == 0) {
    api_error(req, 404, "not_found", NULL, "the phone is not on the stop-list");
  } else {
    api_empty(req, 204);
  }
}

static struct stop_write *write_new(struct api_call *c) {
  struct stop_write *w = kk_arena_alloc(&c->arena, sizeof *w);
  memset(w, 0, sizeof *w);
  w->call = c;
  w->b.account_id = c->account_id;
  w->b.at = store_now_ms();
  w->b.rows = &w->row;
  w->b.n = 1;
  return w;
}

void api_stoplist_put(struct api_call *c) {
  struct stop_write *w = write_new(c);
  if (api_optout_phone(c, w->row.phone) != 0) return;
  const char *reason = "api";
  if (http_req_body_len(c->req) > 0) {
    json_t *body = api_call_body(c);
    if (body == NULL) return;
    json_t *v = json_object_get(body, "reason");
    if (v && !json_is_null(v)) {
      if (!json_is_string(v) || pol_stop_reason_of(json_string_value(v)) == POL_STOP_NONE) {
        api_error(c->req, 422, "invalid_reason", "reason",
                  "reason: api, complaint, reply, link or import");
        return;
      }
      reason = json_string_value(v);
    }
  }
  snprintf(w->row.reason, sizeof w->row.reason, "%s", reason);
  /* an opt-out the person made withdraws their consents too */
  w->row.withdraw = strcmp(reason, "api") != 0;
  store_stop_write(c->a->store, &w->b, on_written, w);
}

void api_stoplist_delete(struct api_call *c) {
  struct stop_write *w = write_new(c);
  if (api_optout_phone(c, w->row.phone) != 0) return;
  store_stop_write(c->a->store, &w->b, on_written, w);
}

/* ---- import ------------------------------------------------------------------ */

#define IMPORT_ERRORS_SHOWN 100   /* rejected rows the answer lists */

/* An import under way (in the call's arena; rows and errors malloc'd,
   freed when it answers). */
struct stop_import {
  struct api_call *call;
  struct store_stop_batch b;
  int cap;                  /* rows allocated */
  int too_many;             /* more than STORE_STOP_BATCH_MAX good rows */
  long rejected;
  json_t *errors;
};

/* Counts a refused row and lists it while the answer has room. */
static void import_error(struct stop_import *im, long line, const char *reason, const char *raw,
                         size_t raw_len) {
  im->rejected++;
  if (json_array_size(im->errors) >= IMPORT_ERRORS_SHOWN) return;
  /* the row as text a client can read: bytes that are not UTF-8, and NULs,
     as U+FFFD (jansson, like many parsers, refuses "\u0000") */
  size_t n;
  char *text = kk_utf8_sanitize_dup(raw ? raw : "", raw ? raw_len : 0, &n);
  json_t *e = json_pack("{s:I, s:s, s:s%}", "line", (json_int_t)line, "reason", reason, "raw",
                        text, n);
  free(text);
  if (e) json_array_append_new(im->errors, e);
}

static void import_row(void *arg, const struct contact_csv_row *r) {
  struct stop_import *im = arg;
  const char *reason = "import";
  for (int i = 0; i < r->nattrs; i++)
    if (strcasecmp(r->attr_name[i], "reason") == 0 && r->attr_value[i]) reason = r->attr_value[i];
  if (pol_stop_reason_of(reason) == POL_STOP_NONE) {
    import_error(im, r->line, "invalid_reason", reason, strlen(reason));
    return;
  }
  if (im->b.n == STORE_STOP_BATCH_MAX) {
    im->too_many = 1;
    return;
  }
  if (im->b.n == im->cap) {
    im->cap = im->cap ? im->cap * 2 : 64;
    im->b.rows = kk_xrealloc(im->b.rows, (size_t)im->cap * sizeof *im->b.rows);
  }
  struct store_stop_row *row = &im->b.rows[im->b.n++];
  memset(row, 0, sizeof *row);
  snprintf(row->phone, sizeof row->phone, "%s", r->phone);
  snprintf(row->reason, sizeof row->reason, "%s", reason);
  /* an opt-out the person made withdraws their consents too */
  row->withdraw = strcmp(reason, "api") != 0;
}

static void import_reject(void *arg, const struct contact_csv_reject *r) {
  import_error(arg, r->line, r->reason, r->raw, r->raw_len);
}

static void import_done(struct stop_import *im) {
  free(im->b.rows);
  json_decref(im->errors);
}

static void on_imported(void *arg, int rc) {
  struct stop_import *im = arg;
  if (rc != 0) {
    api_error(im->call->req, 503, "store_unavailable", NULL,
              "cannot write the stop-list now; nothing was listed");
  } else {
    json_t *o = json_pack("{s:i, s:i, s:I, s:O}", "listed", im->b.n, "changed", im->b.changed,
                          "rejected", (json_int_t)im->rejected, "errors", im->errors);
    api_json(im->call->req, 200, o, NULL);
  }
  import_done(im);
}

void api_stoplist_import(struct api_call *c) {
  const char *country = http_req_query(c->req, "country");
  struct stop_import *im = kk_arena_zalloc(&c->arena, sizeof *im);
  im->call = c;
  im->b.account_id = c->account_id;
  im->b.at = store_now_ms();
  im->errors = json_array();
  struct contact_csv_opts o = {.country = country ? country : "RU", .row = import_row,
                               .reject = import_reject, .arg = im};
  struct contact_csv *csv = contact_csv_new(&o);
  size_t len;
  const char *body = http_req_body(c->req, &len);
  int rc = contact_csv_feed(csv, body ? body : "", body ? len : 0);
  if (rc == 0) rc = contact_csv_end(csv);
  if (rc != 0) {
    api_error(c->req, 422, "invalid_csv", NULL, "%s", contact_csv_error(csv));
  } else if (im->too_many) {
    api_error(c->req, 413, "too_many_rows", NULL,
              "at most %d phones per import; nothing was listed", STORE_STOP_BATCH_MAX);
  } else if (im->b.n == 0) {
    on_imported(im, 0);
    contact_csv_free(csv);
    return;
  } else {
    contact_csv_free(csv);
    store_stop_write(c->a->store, &im->b, on_imported, im);
    return;
  }
  contact_csv_free(csv);
  import_done(im);
}
