/*
 * api_contacts_io.c - the contact bases' files: POST /v1/contacts/import
 * (the body streamed to a file and read off the loop as it comes:
 * contact_import.h),
 * GET /v1/imports/{id} (progress), GET /v1/imports/{id}/errors.csv and
 * GET /v1/contacts.csv. A CSV answer is written by a pool thread into a
 * scratch file of the data folder and sent from it, so that no answer holds
 * a whole base in memory.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api/api_contacts.h"
#include "contact/contact_import.h"
#include "core/kk_err.h"
#include "core/kk_mem.h"
#include "core/kk_tz.h"
#include "http/http_server.h"

/* ---- the upload ------------------------------------------------------------- */

/* What the import's pre-check leaves for its handler (in the call's arena). */
struct upload_state {
  struct contact_upload *up;   /* NULL once the body is whole */
};

static void upload_end(void *p) {
  struct upload_state *u = p;
  contact_upload_abort(u->up);   /* a request that ended before its body did */
  u->up = NULL;
}

static int upload_piece(void *arg, const char *p, size_t n) {
  struct upload_state *u = arg;
  return contact_upload_write(u->up, p, n);
}

/* The import's options from c's query into o: 0, or nonzero having
   answered. */
static int import_opts(struct api_call *c, struct contact_import_opts *o) {
  memset(o, 0, sizeof *o);
  const char *s;
  if ((s = http_req_query(c->req, "list")) != NULL) {
    if (!api_list_name_valid(s)) {
      api_error(c->req, 422, "invalid_list", "list", "list: 1 to 64 of A-Z a-z 0-9 _ - .");
      return KK_EINVAL;
    }
    snprintf(o->list, sizeof o->list, "%s", s);
  }
  s = http_req_query(c->req, "country");
  if (s && !(strlen(s) == 2 && s[0] >= 'A' && s[0] <= 'Z' && s[1] >= 'A' && s[1] <= 'Z')) {
    api_error(c->req, 422, "invalid_country", "country", "country: an ISO code such as RU");
    return KK_EINVAL;
  }
  snprintf(o->country, sizeof o->country, "%s", s ? s : "RU");
  if ((s = http_req_query(c->req, "timezone")) != NULL) {
    if (!kk_tz_valid(s) || strlen(s) >= sizeof o->tz_default) {
      api_error(c->req, 422, "invalid_timezone", "timezone",
                "timezone: an IANA time zone such as Europe/Moscow");
      return KK_EINVAL;
    }
    snprintf(o->tz_default, sizeof o->tz_default, "%s", s);
  }
  return 0;
}

/* Begins an upload for c's account into c->route_state, imported as it
   arrives; 0, or nonzero having answered. */
static int upload_begin(struct api_call *c) {
  struct api *a = c->a;
  struct contact_import_opts o;
  if (import_opts(c, &o) != 0) return KK_EINVAL;
  if (a->imports == NULL) {
    api_error(c->req, 503, "imports_unavailable", NULL, "imports need a data folder");
    return KK_EIO;
  }
  const char *cl = http_req_header(c->req, "content-length");
  int64_t expected = cl ? strtoll(cl, NULL, 10) : 0;
  struct upload_state *u = kk_arena_alloc(&c->arena, sizeof *u);
  u->up = NULL;
  int rc = contact_upload_begin(a->imports, c->account_id, &o, expected, &u->up);
  if (rc == KK_EEXIST) {
    api_error(c->req, 409, "import_running", NULL,
              "an import of this account is running; wait for it to end");
    return rc;
  }
  if (rc == KK_EBUSY) {
    api_error(c->req, 429, "imports_busy", NULL, "too many imports are running; try later");
    return rc;
  }
  if (rc != 0) {
    api_error(c->req, 503, "imports_unavailable", NULL, "cannot store the upload now");
    return rc;
  }
  kk_arena_defer(&c->arena, upload_end, u);
  c->route_state = u;
  return 0;
}

void api_contacts_import_precheck(struct api_call *c) {
  if (upload_begin(c) != 0) return;
  struct upload_state *u = c->route_state;
  size_t max = c->a->max_import ? c->a->max_import : (size_t)1 << 30;
  http_req_stream_body(c->req, max, upload_piece, u);
}

static void on_import_started(void *arg, int rc, int64_t id) {
  struct api_call *c = arg;
  if (rc == KK_EINVAL) {
    api_error(c->req, 422, "empty_body", NULL, "the body is the CSV file to import");
    return;
  }
  if (rc != 0) {
    api_error(c->req, 503, "store_unavailable", NULL, "cannot start the import now");
    return;
  }
  char pid[32];
  snprintf(pid, sizeof pid, "imp_%" PRId64, id);
  api_json(c->req, 202, json_pack("{s:s, s:s}", "id", pid, "status", "running"), NULL);
}

void api_contacts_import(struct api_call *c) {
  /* Without the pre-check (a local request made without one), the body is
     in memory. */
  if (c->route_state == NULL) {
    if (upload_begin(c) != 0) return;
    size_t len;
    const char *body = http_req_body(c->req, &len);
    if (upload_piece(c->route_state, body, len) != 0) {
      api_error(c->req, 507, "upload_not_stored", NULL, "cannot store the upload");
      return;
    }
  }
  struct upload_state *u = c->route_state;
  if (http_req_body_failed(c->req)) {
    api_error(c->req, 507, "upload_not_stored", NULL, "cannot store the upload (disk full?)");
    return;
  }
  if (http_req_body_len(c->req) == 0) {
    api_error(c->req, 422, "empty_body", NULL, "the body is the CSV file to import");
    return;
  }
  struct contact_upload *up = u->up;
  u->up = NULL;   /* contact_upload_end frees it */
  contact_upload_end(up, on_import_started, c);
}

/* ---- an import's progress ------------------------------------------------------ */

/* imp_N of the path; 0, or nonzero having answered 404. */
static int import_id(struct api_call *c, int64_t *id) {
  const char *s = api_param(c, "id");
  char *end;
  if (s == NULL || strncmp(s, "imp_", 4) != 0 || (*id = strtoll(s + 4, &end, 10)) <= 0 || *end) {
    api_error(c->req, 404, "not_found", NULL, "no such import");
    return KK_ENOENT;
  }
  return 0;
}

struct imp_read {
  struct api_call *call;
  struct store_import m;
  FILE *f;
};

static void on_import(void *arg, int rc) {
  struct imp_read *r = arg;
  if (rc == KK_ENOENT) {
    api_error(r->call->req, 404, "not_found", NULL, "no such import");
    return;
  }
  if (rc != 0) {
    api_error(r->call->req, 503, "store_unavailable", NULL, "cannot read the import now");
    return;
  }
  const struct store_import *m = &r->m;
  char id[32], created[32], updated[32];
  snprintf(id, sizeof id, "imp_%" PRId64, m->id);
  api_time(m->created_at, created);
  api_time(m->updated_at, updated);
  json_t *o = json_pack("{s:s, s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:s, s:s}", "id", id,
                        "status", m->status, "rows_total",
                        (json_int_t)(strcmp(m->status, "running") ? m->rows_total : m->rows_done),
                        "rows_done", (json_int_t)m->rows_done, "created",
                        (json_int_t)m->created, "updated", (json_int_t)m->updated, "rejected",
                        (json_int_t)m->rejected, "duplicates", (json_int_t)m->duplicates,
                        "bytes_total", (json_int_t)m->bytes_total, "bytes_done",
                        (json_int_t)m->bytes_done, "created_at", created, "updated_at", updated);
  json_object_set_new(o, "list", m->list[0] ? json_string(m->list) : json_null());
  json_object_set_new(o, "error", m->error[0] ? json_string(m->error) : json_null());
  api_json(r->call->req, 200, o, NULL);
}

void api_import_get(struct api_call *c) {
  struct imp_read *r = kk_arena_alloc(&c->arena, sizeof *r);
  r->call = c;
  int64_t id;
  if (import_id(c, &id) != 0) return;
  store_import_get_async(c->a->store, c->account_id, id, &r->m, on_import, r);
}

/* ---- CSV answers ------------------------------------------------------------------ */

/* One cell: quoted when it holds a separator, a quote or a line break; a
   cell beginning with = + - @, a tab or a carriage return is prefixed with '
   (no spreadsheet formula). */
static void cell(FILE *f, const char *s, int last) {
  if (s == NULL) s = "";
  int formula = s[0] != '\0' && strchr("=+-@\t\r", s[0]) != NULL;
  if (strpbrk(s, ",\"\r\n") || formula) {
    fputc('"', f);
    if (formula) fputc('\'', f);
    for (const char *p = s; *p; p++) {
      if (*p == '"') fputc('"', f);
      fputc(*p, f);
    }
    fputc('"', f);
  } else {
    fputs(s, f);
  }
  fputc(last ? '\n' : ',', f);
}

static int error_row(void *arg, long line, const char *reason, const char *raw) {
  FILE *f = arg;
  fprintf(f, "%ld,", line);
  cell(f, reason, 0);
  cell(f, raw, 1);
  return ferror(f) ? KK_EIO : 0;
}

/* The scratch file written: sent from its start. */
static void send_csv(struct imp_read *r, int rc, const char *what) {
  if (rc == KK_ENOENT) {
    fclose(r->f);
    api_error(r->call->req, 404, "not_found", NULL, "no such %s", what);
    return;
  }
  if (rc != 0 || fflush(r->f) != 0) {
    fclose(r->f);
    api_error(r->call->req, 503, "store_unavailable", NULL, "cannot read the %s now", what);
    return;
  }
  long size = ftell(r->f);
  int fd = dup(fileno(r->f));
  fclose(r->f);
  if (fd < 0 || size < 0) {
    if (fd >= 0) close(fd);
    api_error(r->call->req, 503, "store_unavailable", NULL, "cannot send the %s now", what);
    return;
  }
  api_count_status(r->call->req, 200);
  http_respond_fd(r->call->req, 200, "text/csv; charset=utf-8", fd, (uint64_t)size, NULL);
}

static void on_errors(void *arg, int rc) { send_csv(arg, rc, "import"); }

/* A reading into a scratch file; NULL having answered. */
static struct imp_read *csv_read(struct api_call *c, const char *header) {
  if (c->a->imports == NULL) {
    api_error(c->req, 503, "imports_unavailable", NULL, "CSV answers need a data folder");
    return NULL;
  }
  struct imp_read *r = kk_arena_alloc(&c->arena, sizeof *r);
  r->call = c;
  r->f = contact_imports_scratch(c->a->imports);
  if (r->f == NULL) {
    api_error(c->req, 503, "store_unavailable", NULL, "cannot make a scratch file");
    return NULL;
  }
  fputs(header, r->f);
  return r;
}

void api_import_errors_csv(struct api_call *c) {
  int64_t id;
  if (import_id(c, &id) != 0) return;
  struct imp_read *r = csv_read(c, "line,reason,raw\n");
  if (r == NULL) return;
  store_import_errors_async(c->a->store, c->account_id, id, error_row, r->f, on_errors, r);
}

static int contact_row(void *arg, const struct store_contact *c) {
  FILE *f = arg;
  char lists[STORE_CONTACT_LISTS_MAX * (STORE_LIST_NAME_MAX + 1) + 1];
  size_t n = 0;
  lists[0] = '\0';
  for (int i = 0; i < c->nlists; i++)
    n += (size_t)snprintf(lists + n, sizeof lists - n, "%s%s", i ? "|" : "", c->lists[i]);
  char consent_at[32] = "";
  if (c->consent_at > 0) api_time(c->consent_at, consent_at);
  const char *cells[] = {c->phone, c->name, c->email, c->timezone, c->tz_source,
                         c->operator_name, c->region, c->vk_id, c->telegram_chat_id,
                         c->viber_id, lists,
                         c->consent < 0 ? "" : c->consent ? "yes" : "no",
                         c->consent_source, consent_at, c->attrs ? c->attrs : ""};
  size_t k = sizeof cells / sizeof cells[0];
  for (size_t i = 0; i < k; i++) cell(f, cells[i], i + 1 == k);
  return ferror(f) ? KK_EIO : 0;
}

/* A contacts' export: KK_ENOENT only for a segment that is not there. */
static void on_export(void *arg, int rc) { send_csv(arg, rc, "segment"); }

void api_contacts_csv(struct api_call *c) {
  const char *list = http_req_query(c->req, "list");
  if (list && !api_list_name_valid(list)) {
    api_error(c->req, 422, "invalid_list", "list", "list: 1 to 64 of A-Z a-z 0-9 _ - .");
    return;
  }
  const char *segment = http_req_query(c->req, "segment");
  if (segment && !api_list_name_valid(segment)) {
    api_error(c->req, 422, "invalid_segment", "segment", "segment: 1 to 64 of A-Z a-z 0-9 _ - .");
    return;
  }
  struct imp_read *r = csv_read(c, "phone,name,email,timezone,timezone_source,operator,region,"
                                   "vk_id,telegram_chat_id,viber_id,lists,consent,"
                                   "consent_source,consent_at,attrs\n");
  if (r == NULL) return;
  store_contacts_each_async(c->a->store, c->account_id, list, segment, contact_row, r->f,
                            on_export, r);
}

void api_csv_cell(FILE *f, const char *s, int last) { cell(f, s, last); }
