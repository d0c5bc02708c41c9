/*
 * api_numbers.c - GET /v1/numbers/{phone}: what the numbering register says
 * of a number (holder operator and its INN, region, time zone).
 *
 * Without a register (the `numbering` setting unset or unreadable) every
 * field is null and `source` says "none"; a number the register does not
 * hold (not a Russian mobile number) answers the same with `source`
 * "unknown". With an HLR/MNP service (setting hlr_url) `mnp` holds its
 * answer (ported, its current operator and INN, roaming), else null; a
 * service that does not answer leaves it null too.
 */
#include <stdio.h>

#include "api/api_int.h"
#include "dispatch/dispatch_hlr.h"
#include "phone/phone.h"
#include "phone/phone_plan.h"

static json_t *str_or_null(const char *s) { return s && s[0] ? json_string(s) : json_null(); }

/* A lookup's answer waiting for the HLR (in the call's arena). */
struct number_ctx {
  struct http_req *req;
  json_t *doc;                   /* the answer but mnp; NULL once sent */
  struct dispatch_hlr *hlr;
  struct dispatch_hlr_wait *w;   /* NULL once the HLR answered */
};

static void on_hlr(void *arg, int rc, const struct dispatch_hlr_answer *a) {
  struct number_ctx *x = arg;
  x->w = NULL;
  json_t *mnp = json_null();
  if (rc == 0)
    mnp = json_pack("{s:b,s:o,s:o,s:b}", "ported", a->ported, "operator",
                    str_or_null(a->operator_name), "inn", str_or_null(a->inn), "roaming",
                    a->roaming);
  json_object_set_new(x->doc, "mnp", mnp ? mnp : json_null());
  json_t *doc = x->doc;
  x->doc = NULL;
  api_json(x->req, 200, doc, NULL);
}

/* The request's end: a lookup still waiting is cancelled. */
static void number_end(void *arg) {
  struct number_ctx *x = arg;
  if (x->w) dispatch_hlr_cancel(x->hlr, x->w);
  json_decref(x->doc);
}

void api_number_get(struct api_call *c) {
  const char *raw = api_param(c, "phone");
  char phone[32], country[3] = "";
  if (phone_normalize(raw, phone, sizeof phone) != 0) {
    api_error(c->req, 422, "invalid_phone", "phone", "phone: not a valid phone number");
    return;
  }
  phone_country(phone, country);
  struct phone_plan_info in = {0};
  const char *source = "none";
  if (c->a->plan) source = phone_plan_lookup(c->a->plan, phone, &in) == 0 ? "register" : "unknown";
  json_t *o = json_object();
  json_object_set_new(o, "phone", json_string(phone));
  json_object_set_new(o, "country", str_or_null(country));
  json_object_set_new(o, "operator", str_or_null(in.operator_name));
  json_object_set_new(o, "inn", str_or_null(in.inn));
  json_object_set_new(o, "region", str_or_null(in.region));
  json_object_set_new(o, "timezone", str_or_null(in.timezone));
  if (in.timezone && in.timezone[0]) {
    char off[16];
    int m = in.utc_offset_min < 0 ? -in.utc_offset_min : in.utc_offset_min;
    snprintf(off, sizeof off, "%c%02d:%02d", in.utc_offset_min < 0 ? '-' : '+', m / 60, m % 60);
    json_object_set_new(o, "utc_offset", json_string(off));
  } else {
    json_object_set_new(o, "utc_offset", json_null());
  }
  json_object_set_new(o, "source", json_string(source));
  if (c->a->hlr == NULL) {
    json_object_set_new(o, "mnp", json_null());
    api_json(c->req, 200, o, NULL);
    return;
  }
  struct number_ctx *x = kk_arena_alloc(&c->arena, sizeof *x);
  x->req = c->req;
  x->doc = o;
  x->hlr = c->a->hlr;
  x->w = NULL;
  kk_arena_defer(&c->arena, number_end, x);
  x->w = dispatch_hlr_lookup(c->a->hlr, phone, on_hlr, x);
}
