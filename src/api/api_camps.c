/*
 * api_camps.c - campaigns as objects: PUT /v1/campaigns/{name} (while
 * draft), GET one (status and counts), the list, start, pause, resume,
 * cancel, and the recipients page by page. What runs them is
 * api_camp_run.c; what the messages add up to, api_campaigns.c (report).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api_camp.h"
#include "api/api_int.h"
#include "core/kk_cfg.h"
#include "core/kk_err.h"
#include "core/kk_hash.h"
#include "core/kk_mem.h"
#include "http/http_server.h"
#include "store/store_campaign.h"
#include "store/store_tpl.h"

/* ---- settings ---------------------------------------------------------------- */

static int bad(struct api_err *e, const char *code, const char *field, const char *msg) {
  e->status = 422;
  e->code = code;
  e->field = field;
  snprintf(e->message, sizeof e->message, "%s: %s", field, msg);
  return KK_EINVAL;
}

static int hhmm(json_t *v, int *min) {
  const char *s = json_string_value(v);
  int h, m;
  char tail;
  if (s == NULL || sscanf(s, "%2d:%2d%c", &h, &m, &tail) != 2 || h < 0 || h > 23 || m < 0 ||
      m > 59 || strlen(s) != 5)
    return KK_EINVAL;
  *min = h * 60 + m;
  return 0;
}

static int time_field(json_t *o, const char *name, int64_t *out, struct api_err *e) {
  json_t *v = json_object_get(o, name);
  *out = 0;
  if (v == NULL || json_is_null(v)) return 0;
  if (!json_is_string(v) || api_parse_time(json_string_value(v), out) != 0)
    return bad(e, "invalid_time", name, "a time in RFC 3339, like \"2026-03-01T09:00:00+03:00\"");
  return 0;
}

static int audience_parse(json_t *o, struct camp_spec *sp, struct api_err *e) {
  json_t *a = json_object_get(o, "audience");
  if (!json_is_object(a) || json_object_size(a) != 1)
    return bad(e, "invalid_audience", "audience",
               "one of {\"list\":NAME}, {\"segment\":NAME} or {\"phones\":[…]}");
  json_t *v;
  if ((v = json_object_get(a, "list")) != NULL) {
    if (!json_is_string(v) || json_string_length(v) == 0 || json_string_length(v) > 64)
      return bad(e, "invalid_audience", "audience.list", "the name of a list");
    sp->list = json_string_value(v);
  } else if ((v = json_object_get(a, "segment")) != NULL) {
    if (!json_is_string(v) || json_string_length(v) == 0 || json_string_length(v) > 64)
      return bad(e, "invalid_audience", "audience.segment", "the name of a segment");
    sp->segment = json_string_value(v);
  } else if ((v = json_object_get(a, "phones")) != NULL) {
    if (!json_is_array(v) || json_array_size(v) == 0 || json_array_size(v) > CAMP_PHONES_MAX)
      return bad(e, "invalid_audience", "audience.phones", "1 to 10,000 phone numbers");
    size_t i;
    json_t *x;
    json_array_foreach(v, i, x) if (!json_is_string(x)) return bad(
        e, "invalid_audience", "audience.phones", "each a phone number as a string");
    sp->phones = v;
  } else {
    return bad(e, "invalid_audience", "audience",
               "one of {\"list\":NAME}, {\"segment\":NAME} or {\"phones\":[…]}");
  }
  return 0;
}

static int variants_parse(json_t *o, struct camp_spec *sp, struct api_err *e) {
  json_t *t = json_object_get(o, "template"), *vs = json_object_get(o, "variants");
  if ((t && !json_is_null(t)) == (vs && !json_is_null(vs)))
    return bad(e, "invalid_template", "template", "give template or variants (not both)");
  if (t && !json_is_null(t)) {
    if (!json_is_string(t) || json_string_length(t) == 0)
      return bad(e, "invalid_template", "template", "the name of a saved template");
    sp->nvariants = 1;
    sp->variants[0].tmpl = json_string_value(t);
    sp->variants[0].share = 1;
    return 0;
  }
  if (!json_is_array(vs) || json_array_size(vs) < 1 || json_array_size(vs) > CAMP_VARIANTS_MAX)
    return bad(e, "invalid_variants", "variants", "1 to 10 of {\"template\":NAME,\"share\":N}");
  size_t i;
  json_t *x;
  double sum = 0;
  json_array_foreach(vs, i, x) {
    json_t *tn = json_object_get(x, "template"), *sh = json_object_get(x, "share");
    if (!json_is_string(tn) || json_string_length(tn) == 0 || !json_is_number(sh) ||
        !(json_number_value(sh) > 0) || !isfinite(json_number_value(sh)))
      return bad(e, "invalid_variants", "variants",
                 "each {\"template\":NAME,\"share\":N} with a share above 0");
    sp->variants[i].tmpl = json_string_value(tn);
    sp->variants[i].share = json_number_value(sh);
    sum += sp->variants[i].share;
  }
  sp->nvariants = (int)json_array_size(vs);
  for (int k = 0; k < sp->nvariants; k++) sp->variants[k].share /= sum;
  return 0;
}

static int pace_parse(json_t *o, struct camp_spec *sp, struct api_err *e) {
  json_t *w = json_object_get(o, "window");
  sp->window = (struct pol_window){0, 0};
  if (w && !json_is_null(w)) {
    if (!json_is_object(w) || hhmm(json_object_get(w, "from"), &sp->window.from_min) != 0 ||
        hhmm(json_object_get(w, "to"), &sp->window.to_min) != 0)
      return bad(e, "invalid_window", "window", "{\"from\":\"10:00\",\"to\":\"20:00\"}");
  }
  json_t *r = json_object_get(o, "rate_per_minute"), *s = json_object_get(o, "spread");
  if (r && !json_is_null(r) && s && !json_is_null(s))
    return bad(e, "invalid_rate", "rate_per_minute", "give rate_per_minute or spread, not both");
  if (r && !json_is_null(r)) {
    if (!json_is_integer(r) || json_integer_value(r) < 1 || json_integer_value(r) > 1000000)
      return bad(e, "invalid_rate", "rate_per_minute", "a whole number from 1 to 1,000,000");
    sp->per_minute = (int)json_integer_value(r);
  }
  if (s && !json_is_null(s)) {
    long long ms;
    if (!json_is_string(s) || kk_parse_duration_ms(json_string_value(s), &ms) != 0 || ms < 1000 ||
        ms > 366LL * 86400000)
      return bad(e, "invalid_spread", "spread", "a duration like \"2h\" (1s to a year)");
    sp->spread_ms = ms;
  }
  if (time_field(o, "start_at", &sp->start_at, e) || time_field(o, "end_at", &sp->end_at, e))
    return KK_EINVAL;
  if (sp->end_at && sp->end_at <= sp->start_at)
    return bad(e, "invalid_time", "end_at", "after start_at");
  return 0;
}

int camp_spec_parse(json_t *o, struct camp_spec *sp, struct api_err *e) {
  memset(sp, 0, sizeof *sp);
  if (!json_is_object(o)) return bad(e, "invalid_campaign", "campaign", "a JSON object");
  if (audience_parse(o, sp, e) || variants_parse(o, sp, e)) return KK_EINVAL;
  json_t *c = json_object_get(o, "cascade");
  if (c && !json_is_null(c)) {
    if (json_is_string(c)) {
      if (json_string_length(c) == 0 || json_string_length(c) >= 64)
        return bad(e, "unknown_cascade", "cascade", "the name of a saved cascade");
    } else if (api_cascade_parse(c, sp->steps, sizeof sp->steps, e) != 0) {
      return KK_EINVAL;
    }
    sp->cascade = c;
  }
  json_t *cl = json_object_get(o, "class");
  sp->msg_class = json_is_string(cl) ? json_string_value(cl) : "advertising";
  if (cl && !json_is_null(cl) && !json_is_string(cl))
    return bad(e, "invalid_class", "class", "service, transactional or advertising");
  if (strcmp(sp->msg_class, "service") != 0 && strcmp(sp->msg_class, "transactional") != 0 &&
      strcmp(sp->msg_class, "advertising") != 0)
    return bad(e, "invalid_class", "class", "service, transactional or advertising");
  json_t *snd = json_object_get(o, "sender");
  if (snd && !json_is_null(snd)) {
    if (!json_is_string(snd) || !api_valid_sender(json_string_value(snd)))
      return bad(e, "invalid_sender", "sender", API_SENDER_RULE);
    sp->sender = json_string_value(snd);
  }
  return pace_parse(o, sp, e);
}

int camp_variant_of(const struct camp_spec *sp, const char *name, int64_t seq) {
  /* A point in [0, 1) the shares divide: the golden-ratio (Weyl) sequence
     seq * 2^64/phi modulo 2^64, from a start the campaign's name gives. Its
     points spread so evenly that over any n consecutive recipients each
     variant's count is within a few of its share of n, where a hash of each
     phone would stray by about the square root of n (1 % of 10,000 is two
     of its standard deviations). The recipient's variant is stored with it. */
  uint64_t h = kk_fnv_str(KK_FNV_SEED, name);
  h += (uint64_t)seq * 0x9e3779b97f4a7c15ULL;
  double x = (double)(h >> 11) / 9007199254740992.0, acc = 0;
  for (int i = 0; i < sp->nvariants; i++) {
    acc += sp->variants[i].share;
    if (x < acc) return i;
  }
  return sp->nvariants - 1;
}

/* ---- answers -------------------------------------------------------------------- */

static json_t *time_or_null(int64_t ms) {
  if (ms <= 0) return json_null();
  char t[32];
  api_time(ms, t);
  return json_string(t);
}

static json_t *camp_json(const struct store_campaign *c) {
  json_t *o = json_pack("{s:s, s:s, s:I, s:o, s:o, s:o, s:o}", "name", c->name, "status",
                        c->status, "recipients", (json_int_t)c->recipients, "created_at",
                        time_or_null(c->created_at), "updated_at", time_or_null(c->updated_at),
                        "started_at", time_or_null(c->started_at), "planned_finish_at",
                        time_or_null(c->finish_at));
  if (c->spec) {
    json_t *sp = json_loads(c->spec, 0, NULL);
    if (json_is_object(sp)) json_object_update_missing(o, sp);
    json_decref(sp);
  }
  return o;
}

static int valid_name(struct api_call *call, const char **name) {
  *name = api_param(call, "name");
  if (api_campaign_valid(*name, strlen(*name))) return 1;
  api_error(call->req, 422, "invalid_campaign", "campaign", "campaign: %s", API_CAMPAIGN_RULE);
  return 0;
}

/* A write being done by the store. */
struct write_ctx {
  struct http_req *req;
  struct api *a;
  struct store_camp_op op;
  char *spec;
};

static void on_put(void *arg, int rc) {
  struct write_ctx *x = arg;
  if (rc)
    api_error(x->req, 503, "store_unavailable", NULL, "cannot save the campaign now");
  else if (!x->op.ok)
    api_error(x->req, 409, "not_draft", NULL,
              "campaign %s is %s: only a draft can be changed", x->op.name, x->op.status);
  else {
    json_t *o = json_loads(x->spec, 0, NULL);
    json_object_set_new(o, "name", json_string(x->op.name));
    json_object_set_new(o, "status", json_string("draft"));
    api_json(x->req, 200, o, NULL);
  }
  free(x->spec);
  free(x);
}

void api_camp_put(struct api_call *call) {
  const char *name;
  if (!valid_name(call, &name)) return;
  json_t *doc = api_call_body(call);
  if (!doc) return;
  struct camp_spec sp;
  struct api_err e = {0};
  if (camp_spec_parse(doc, &sp, &e) != 0) {
    api_error_from(call->req, &e);
    return;
  }
  for (int i = 0; i < sp.nvariants; i++)
    if (store_template_find(call->a->store, call->account_id, sp.variants[i].tmpl) == NULL) {
      api_error(call->req, 422, "unknown_template", sp.nvariants > 1 ? "variants" : "template",
                "template: no saved template \"%.64s\"", sp.variants[i].tmpl);
      return;
    }
  if (json_is_string(sp.cascade)) {
    char *steps = NULL;
    if (store_cascade_get(call->a->store, call->account_id, json_string_value(sp.cascade),
                          &steps) != 0) {
      api_error(call->req, 422, "unknown_cascade", "cascade", "cascade: no saved cascade \"%.64s\"",
                json_string_value(sp.cascade));
      return;
    }
    free(steps);
  }
  /* Freed in on_put(). */
  struct write_ctx *x = kk_xcalloc(1, sizeof *x);
  x->req = call->req;
  x->spec = json_dumps(doc, JSON_COMPACT);
  x->op.kind = STORE_CAMP_PUT;
  x->op.account_id = call->account_id;
  snprintf(x->op.name, sizeof x->op.name, "%s", name);
  x->op.spec = x->spec;
  store_campaign_write(call->a->store, &x->op, on_put, x);
}

/* start, pause, resume, cancel: from which statuses to which. */
static const struct {
  const char *verb, *from, *to;
} moves[] = {
    {"start", ",draft,", "planning"},
    {"pause", ",running,", "paused"},
    {"resume", ",paused,", "running"},
    {"cancel", ",draft,planning,running,paused,", "cancelled"},
};

static void on_moved(void *arg, int rc) {
  struct write_ctx *x = arg;
  if (rc)
    api_error(x->req, 503, "store_unavailable", NULL, "cannot change the campaign now");
  else if (!x->op.found)
    api_error(x->req, 404, "not_found", NULL, "no campaign %s in this account", x->op.name);
  else if (!x->op.ok)
    api_error(x->req, 409, "wrong_status", NULL, "campaign %s is %s: it cannot go to %s now",
              x->op.name, x->op.status, x->op.to);
  else {
    api_campaign_memo_forget(x->a, x->op.account_id, x->op.name);
    /* paused or cancelled: no further message of the batch under way */
    if (strcmp(x->op.to, "paused") == 0 || strcmp(x->op.to, "cancelled") == 0)
      api_camp_run_halt(x->a, x->op.account_id, x->op.name);
    api_camp_run_kick(x->a);
    api_json(x->req, 200, json_pack("{s:s, s:s}", "name", x->op.name, "status", x->op.status),
             NULL);
  }
  free(x);
}

static void camp_move(struct api_call *call, int k) {
  const char *name;
  if (!valid_name(call, &name)) return;
  /* Freed in on_moved(). */
  struct write_ctx *x = kk_xcalloc(1, sizeof *x);
  x->req = call->req;
  x->a = call->a;
  x->op.kind = STORE_CAMP_STATUS;
  x->op.account_id = call->account_id;
  snprintf(x->op.name, sizeof x->op.name, "%s", name);
  x->op.from = moves[k].from;
  snprintf(x->op.to, sizeof x->op.to, "%s", moves[k].to);
  store_campaign_write(call->a->store, &x->op, on_moved, x);
}

void api_camp_start(struct api_call *c) { camp_move(c, 0); }
void api_camp_pause(struct api_call *c) { camp_move(c, 1); }
void api_camp_resume(struct api_call *c) { camp_move(c, 2); }
void api_camp_cancel(struct api_call *c) { camp_move(c, 3); }

/* ---- reads ----------------------------------------------------------------------- */

struct get_ctx {
  struct http_req *req;
  struct store *store;
  int64_t account_id;
  struct store_campaign c;
  struct store_camp_count rows[STORE_CAMP_COUNTS_MAX];   /* the figures kept as it goes */
  int n;
  char *spec;
  char name[STORE_CAMPAIGN_MAX + 1];
};

static void get_free(struct get_ctx *g) {
  store_campaign_fini(&g->c);
  free(g->spec);
  free(g);
}

static void on_messages(void *arg, int rc) {
  struct get_ctx *g = arg;
  json_t *o = camp_json(&g->c);
  json_t *counts = json_object(), *by_status = json_object();
  if (rc == 0) store_camp_rcpt_counts(g->rows, g->n, g->c.count);
  for (int i = 0; i < STORE_CAMP_NSTATUS; i++)
    json_object_set_new(counts, store_camp_rcpt_statuses[i], json_integer(g->c.count[i]));
  int64_t messages = 0;
  for (int i = 0; rc == 0 && i < g->n; i++) {
    const struct store_camp_count *k = &g->rows[i];
    if (strncmp(k->status, "r:", 2) == 0 || strcmp(k->status, "opted_out") == 0) continue;
    messages += k->n;
    json_t *v = json_object_get(by_status, k->status);
    json_object_set_new(by_status, k->status,
                        json_integer((v ? json_integer_value(v) : 0) + (json_int_t)k->n));
  }
  json_object_set_new(o, "by_recipient_status", counts);
  json_object_set_new(o, "messages", json_integer((json_int_t)messages));
  json_object_set_new(o, "by_status", by_status);
  api_json(g->req, 200, o, NULL);
  get_free(g);
}

static void on_camp(void *arg, int rc) {
  struct get_ctx *g = arg;
  if (rc) {
    if (rc == KK_ENOENT)
      api_error(g->req, 404, "not_found", NULL, "no campaign %s in this account", g->name);
    else
      api_error(g->req, 503, "store_unavailable", NULL, "cannot read the campaign now");
    get_free(g);
    return;
  }
  /* what its messages add up to, as kept while it goes (as the report reads it) */
  store_camp_counts_async(g->store, g->account_id, g->name, g->rows, STORE_CAMP_COUNTS_MAX, &g->n,
                          &g->spec, on_messages, g);
}

void api_camp_get(struct api_call *call) {
  const char *name;
  if (!valid_name(call, &name)) return;
  /* Freed in on_messages() (or on_camp() when the campaign is not there). */
  struct get_ctx *g = kk_xcalloc(1, sizeof *g);
  g->req = call->req;
  g->store = call->a->store;
  g->account_id = call->account_id;
  snprintf(g->name, sizeof g->name, "%s", name);
  store_campaign_get_async(call->a->store, call->account_id, g->name, &g->c, on_camp, g);
}

static int limit_of(struct http_req *req, int *limit) {
  const char *s = http_req_query(req, "limit");
  *limit = 100;
  if (s == NULL) return 0;
  char *end;
  long v = strtol(s, &end, 10);
  if (*s == '\0' || *end || v < 1 || v > STORE_CAMP_LIST_MAX) {
    api_error(req, 422, "invalid_limit", "limit", "limit: 1 to %d", STORE_CAMP_LIST_MAX);
    return KK_EINVAL;
  }
  *limit = (int)v;
  return 0;
}

struct list_ctx {
  struct http_req *req;
  struct store_campaign rows[STORE_CAMP_LIST_MAX];
  int n;
  char next[STORE_CAMPAIGN_MAX + 1];
};

static void on_list(void *arg, int rc) {
  struct list_ctx *l = arg;
  if (rc) {
    api_error(l->req, 503, "store_unavailable", NULL, "cannot list campaigns now");
  } else {
    json_t *arr = json_array();
    for (int i = 0; i < l->n; i++) json_array_append_new(arr, camp_json(&l->rows[i]));
    json_t *doc = json_pack("{s:o}", "campaigns", arr);
    json_object_set_new(doc, "next_cursor", l->next[0] ? json_string(l->next) : json_null());
    api_json(l->req, 200, doc, NULL);
  }
  for (int i = 0; i < l->n; i++) store_campaign_fini(&l->rows[i]);
  free(l);
}

void api_camps_list(struct api_call *call) {
  int limit;
  if (limit_of(call->req, &limit) != 0) return;
  const char *cursor = http_req_query(call->req, "cursor");
  /* Freed in on_list(). */
  struct list_ctx *l = kk_xcalloc(1, sizeof *l);
  l->req = call->req;
  store_campaigns_list_async(call->a->store, call->account_id, cursor ? cursor : "", limit,
                             l->rows, &l->n, l->next, on_list, l);
}

struct rcpt_ctx {
  struct http_req *req;
  struct store_camp_rcpt rows[STORE_CAMP_LIST_MAX];
  int n, limit;
  const struct camp_spec *spec;
};

static void on_rcpts(void *arg, int rc) {
  struct rcpt_ctx *r = arg;
  if (rc == KK_ENOENT) {
    api_error(r->req, 404, "not_found", NULL, "no campaign of that name in this account");
  } else if (rc) {
    api_error(r->req, 503, "store_unavailable", NULL, "cannot list the recipients now");
  } else {
    json_t *arr = json_array();
    for (int i = 0; i < r->n; i++) {
      const struct store_camp_rcpt *x = &r->rows[i];
      json_array_append_new(
          arr, json_pack("{s:I, s:s, s:i, s:o, s:o, s:s, s:o}", "seq", (json_int_t)x->seq,
                         "phone", x->phone, "variant", x->variant, "planned_at",
                         time_or_null(x->planned_at), "message",
                         x->message[0] ? json_string(x->message) : json_null(), "status",
                         x->status, "reason", x->reason[0] ? json_string(x->reason) : json_null()));
    }
    api_json_page(r->req, "recipients", arr, r->n == r->limit ? r->rows[r->n - 1].seq : 0);
  }
  store_camp_rcpt_free(r->rows, r->n);
  free(r);
}

void api_camp_recipients(struct api_call *call) {
  const char *name;
  if (!valid_name(call, &name)) return;
  int limit;
  if (limit_of(call->req, &limit) != 0) return;
  const char *status = http_req_query(call->req, "status");
  if (status) {
    int ok = 0;
    for (int i = 0; i < STORE_CAMP_NSTATUS; i++) ok |= strcmp(status, store_camp_rcpt_statuses[i]) == 0;
    if (!ok) {
      api_error(call->req, 422, "invalid_status", "status",
                "status: planned, created, rejected, cancelled or expired");
      return;
    }
  }
  const char *cursor = http_req_query(call->req, "cursor");
  long long after = cursor ? strtoll(cursor, NULL, 10) : 0;
  /* Freed in on_rcpts(). */
  struct rcpt_ctx *r = kk_xcalloc(1, sizeof *r);
  r->req = call->req;
  r->limit = limit;
  store_camp_rcpts_async(call->a->store, call->account_id, name, status, after, limit, r->rows,
                         &r->n, on_rcpts, r);
}
