/*
 * api_links.c - tracked links (api_links.h).
 *
 * A click is answered as soon as its code is found: the redirect does not
 * wait for the click's write. Lookups go to the store's pool, at most
 * READS_MAX at a time (the pool also serves the campaigns' due reads, so a
 * burst of clicks from one account's recipients never queues ahead of
 * other accounts' sends by more than that); up to WAIT_MAX more wait
 * their turn here, beyond that a click gets 503. Clicks to record gather
 * in memory (up to PENDING_MAX; beyond that they are counted as dropped,
 * the redirect still answered) and go to the store one write at a time,
 * each write taking up to WRITE_MAX of the clicks gathered meanwhile.
 */
#include "api/api_links.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api_camp.h"
#include "api/api_int.h"
#include "core/kk_err.h"
#include "core/kk_log.h"
#include "core/kk_mem.h"
#include "core/kk_utf8.h"
#include "http/http_server.h"
#include "link/link_preview.h"
#include "link/link_url.h"
#include "phone/phone.h"
#include "store/store_link.h"

#define LOGCTX "links"
#define READS_MAX 2               /* lookups of codes on the store's pool at once */
#define WAIT_MAX 1024             /* lookups waiting for one of those */
#define PENDING_MAX 4096          /* clicks waiting to be written */
#define WRITE_MAX 256             /* clicks of one write */
#define VALUE_MAX 1e9             /* the largest value of a conversion */

/* A click being answered (in its call's arena). */
struct click {
  struct api_call *call;
  char code[LINK_CODE_LEN + 1];
  struct store_link link;
  int preview;                    /* a link preview (link_preview.h), not a person */
  struct click *next;             /* waiting for a lookup */
};

struct api_links {
  struct api *a;
  int reading;                    /* lookups on the pool */
  struct click *wait_head, *wait_tail;
  int nwait;
  struct store_click *pending;    /* malloc'd (PENDING_MAX); freed by api_links_free */
  int npending;
  int writing;                    /* a write of clicks under way */
  int stopped;
  uint64_t dropped;               /* clicks not recorded (PENDING_MAX reached) */
};

static struct api_links *links_of(struct api *a) {
  if (a->links == NULL) {
    a->links = kk_xcalloc(1, sizeof *a->links);   /* freed by api_links_free */
    a->links->a = a;
  }
  return a->links;
}

#define PAGE_HEAD                                                              \
  "<!doctype html><html><head><meta charset=\"utf-8\">"                       \
  "<meta name=\"robots\" content=\"noindex\"><title>kaskad</title></head><body>"

static void page(struct http_req *req, int status, const char *text, const char *headers) {
  char html[512];
  int n = snprintf(html, sizeof html, PAGE_HEAD "<p>%s</p></body></html>", text);
  api_respond(req, status, "text/html; charset=utf-8", html, (size_t)n,
              headers ? headers : "Cache-Control: no-store\r\nX-Robots-Tag: noindex\r\n");
}

/* ---- writing clicks --------------------------------------------------------------- */

static void flush(struct api_links *l);

static void on_written(void *arg, int rc) {
  struct api_links *l = arg;
  if (rc) kk_warnx(LOGCTX, "clicks not recorded: %s", kk_strerror(rc));
  l->writing = 0;
  if (!l->stopped) flush(l);
}

static void flush(struct api_links *l) {
  if (l->npending == 0 || (l->writing && !l->stopped)) return;
  /* At most WRITE_MAX a write, so that the writer's transactions with
     them stay short for the messages committed beside them (all of them
     when stopping). The store frees the batch after the write. */
  int n = l->npending > WRITE_MAX && !l->stopped ? WRITE_MAX : l->npending;
  struct store_click *batch = kk_xmalloc((size_t)n * sizeof *batch);
  memcpy(batch, l->pending, (size_t)n * sizeof *batch);
  memmove(l->pending, l->pending + n, (size_t)(l->npending - n) * sizeof *batch);
  l->npending -= n;
  store_clicks_write(l->a->store, batch, n, l->stopped ? NULL : on_written, l);
  l->writing = !l->stopped;
}

static void record(struct api_links *l, struct click *k) {
  if (l->stopped) return;
  if (l->npending == PENDING_MAX) {
    if (l->dropped++ % 1000 == 0)
      kk_warnx(LOGCTX, "clicks come faster than they are written: %llu not recorded",
               (unsigned long long)l->dropped);
    return;
  }
  if (l->pending == NULL) l->pending = kk_xmalloc(PENDING_MAX * sizeof *l->pending);
  struct store_click *c = &l->pending[l->npending++];
  snprintf(c->code, sizeof c->code, "%s", k->code);
  c->at = store_now_ms();
  const char *ua = http_req_header(k->call->req, "User-Agent");
  kk_utf8_sanitize(c->ua, sizeof c->ua, ua ? ua : "", ua ? strlen(ua) : 0);
  c->preview = k->preview;
  flush(l);
}

/* ---- GET /r/{code} -------------------------------------------------------------- */

static void lookup(struct api_links *l, struct click *k);

static void on_link(void *arg, int rc) {
  struct click *k = arg;
  struct api_links *l = k->call->a->links;
  struct http_req *req = k->call->req;
  l->reading--;
  if (rc == KK_ENOENT) {
    page(req, 404, "Ссылка не найдена.", NULL);
  } else if (rc != 0) {
    page(req, 503, "Попробуйте позже.", "Cache-Control: no-store\r\nRetry-After: 1\r\n");
  } else {
    size_t cap = LINK_UTM_MAX + 128;
    char *to = kk_arena_alloc(&k->call->arena, LINK_UTM_MAX);
    char *hdr = kk_arena_alloc(&k->call->arena, cap);
    if (link_utm_add(k->link.target, k->link.channel, k->link.campaign, to, LINK_UTM_MAX) < 0) {
      page(req, 404, "Ссылка не найдена.", NULL);
    } else {
      snprintf(hdr, cap,
               "Location: %s\r\nCache-Control: no-store\r\nReferrer-Policy: no-referrer\r\n"
               "X-Robots-Tag: noindex\r\n",
               to);
      page(req, 302, "Переход по ссылке…", hdr);
      record(l, k);
    }
  }
  free(k->link.target);
  k->link.target = NULL;
  if (l->wait_head && l->reading < READS_MAX) {
    struct click *next = l->wait_head;
    l->wait_head = next->next;
    if (l->wait_head == NULL) l->wait_tail = NULL;
    l->nwait--;
    lookup(l, next);
  }
}

static void lookup(struct api_links *l, struct click *k) {
  l->reading++;
  store_link_get_async(l->a->store, k->code, &k->link, on_link, k);
}

void api_link_click(struct api_call *c) {
  const char *code = api_param(c, "code");
  if (!link_code_valid(code)) {
    page(c->req, 404, "Ссылка не найдена.", NULL);
    return;
  }
  struct api_links *l = links_of(c->a);
  struct click *k = kk_arena_zalloc(&c->arena, sizeof *k);
  k->call = c;
  snprintf(k->code, sizeof k->code, "%s", code);
  /* a messenger drawing the link's card is redirected as anyone, but it is
     no click */
  k->preview = link_preview(http_req_method(c->req), http_req_header(c->req, "User-Agent"));
  if (l->reading < READS_MAX) {
    lookup(l, k);
  } else if (l->nwait < WAIT_MAX) {
    if (l->wait_tail) l->wait_tail->next = k;
    else l->wait_head = k;
    l->wait_tail = k;
    l->nwait++;
  } else {
    page(c->req, 503, "Попробуйте позже.", "Cache-Control: no-store\r\nRetry-After: 1\r\n");
  }
}

/* ---- POST /v1/conversions ------------------------------------------------------- */

struct conv {
  struct api_call *call;
  struct store_conv_find f;
  struct store_conversion cv;
  int by_message;
};

static void on_converted(void *arg, int rc) {
  struct conv *v = arg;
  if (rc) {
    api_error(v->call->req, 503, "store_unavailable", NULL, "cannot record the conversion now");
    return;
  }
  const struct store_conversion *c = &v->cv;
  char id[32];
  snprintf(id, sizeof id, "cnv_%lld", (long long)c->id);
  json_t *doc = json_pack("{s:s, s:s, s:s, s:s, s:s, s:o, s:o}", "id", id, "message", c->message,
                          "campaign", c->campaign, "phone", c->phone, "channel", c->channel,
                          "variant", c->variant >= 0 ? json_integer(c->variant) : json_null(),
                          "value", api_money(c->value));
  api_json(v->call->req, 201, doc, NULL);
}

static void on_found(void *arg, int rc) {
  struct conv *v = arg;
  struct store_conv_find *f = &v->f;
  struct http_req *req = v->call->req;
  if (rc == KK_ENOENT) {
    if (v->by_message)
      api_error(req, 404, "unknown_message", "message", "message: no such message");
    else
      api_error(req, 404, "unknown_recipient", "phone",
                "phone: no message of campaign %s to this number", f->campaign);
    return;
  }
  if (rc != 0) {
    api_error(req, 503, "store_unavailable", NULL, "cannot record the conversion now");
    return;
  }
  if (f->campaign[0] == '\0') {
    api_error(req, 422, "not_in_campaign", "message", "message: %s belongs to no campaign",
              f->message);
    return;
  }
  struct store_conversion *c = &v->cv;
  c->account_id = f->account_id;
  snprintf(c->campaign, sizeof c->campaign, "%s", f->campaign);
  snprintf(c->message, sizeof c->message, "%s", f->message);
  snprintf(c->phone, sizeof c->phone, "%s", f->phone);
  snprintf(c->channel, sizeof c->channel, "%s", f->channel);
  c->variant = f->variant;   /* as the campaign's plan gave it to the message */
  c->at = store_now_ms();
  store_conversion_write(v->call->a->store, c, on_converted, v);
}

void api_conversion_post(struct api_call *c) {
  json_t *doc = api_call_body(c);
  if (doc == NULL) return;
  struct conv *v = kk_arena_zalloc(&c->arena, sizeof *v);
  v->call = c;
  v->f.account_id = c->account_id;
  json_t *msg = json_object_get(doc, "message"), *phone = json_object_get(doc, "phone");
  json_t *camp = json_object_get(doc, "campaign"), *value = json_object_get(doc, "value");
  if (value && !json_is_null(value)) {
    double x = json_is_number(value) ? json_number_value(value) : -1;
    if (!(x >= 0) || x > VALUE_MAX) {
      api_error(c->req, 422, "invalid_value", "value", "value: an amount from 0 to 1000000000");
      return;
    }
    v->cv.value = llround(x * API_MONEY_SCALE);
  }
  if (msg && !json_is_null(msg)) {
    const char *id = json_string_value(msg);
    if (id == NULL || strlen(id) >= sizeof v->f.message) {
      api_error(c->req, 404, "unknown_message", "message", "message: no such message");
      return;
    }
    snprintf(v->f.message, sizeof v->f.message, "%s", id);
    v->by_message = 1;
  } else {
    const char *p = json_string_value(phone), *name = json_string_value(camp);
    if (p == NULL || phone_normalize(p, v->f.phone, sizeof v->f.phone) != 0) {
      api_error(c->req, 422, "invalid_phone", "phone",
                "phone: give \"message\", or \"phone\" and \"campaign\"");
      return;
    }
    if (name == NULL || !api_campaign_valid(name, strlen(name))) {
      api_error(c->req, 422, "invalid_campaign", "campaign", "campaign: %s", API_CAMPAIGN_RULE);
      return;
    }
    snprintf(v->f.campaign, sizeof v->f.campaign, "%s", name);
  }
  store_conv_find_async(c->a->store, &v->f, on_found, v);
}

/* ---- the report's clicks --------------------------------------------------------- */

/* Adds c's figures to the object o[key] (made when missing). */
static void add(json_t *o, const char *key, const struct store_link_count *c) {
  json_t *x = key ? json_object_get(o, key) : o;
  if (x == NULL) {
    x = json_object();
    json_object_set_new(o, key, x);
  }
  static const char *const names[4] = {"clicked", "clicked_unique", "previews", "converted"};
  const int64_t v[4] = {c->clicked, c->clicked_unique, c->previews, c->converted};
  for (int i = 0; i < 4; i++)
    json_object_set_new(x, names[i], json_integer(json_integer_value(json_object_get(x, names[i])) +
                                                  (json_int_t)v[i]));
  json_t *had = json_object_get(x, "value_units");
  json_object_set_new(x, "value_units", json_integer(json_integer_value(had) + c->value));
}

/* value_units (1/10000) as "value" in money, everywhere in o. */
static void values(json_t *o) {
  json_t *u = json_object_get(o, "value_units");
  if (u) {
    json_object_set_new(o, "value", api_money(json_integer_value(u)));
    json_object_del(o, "value_units");
  }
  const char *k;
  json_t *x;
  json_object_foreach(o, k, x) if (json_is_object(x)) values(x);
}

void api_links_counts_add(const struct api_links_counts *r, json_t *doc) {
  json_t *clicks = json_object(), *by_channel = json_object(), *by_variant = json_object();
  struct store_link_count zero = {0};
  add(clicks, NULL, &zero);
  for (int i = 0; i < r->n; i++) {
    const struct store_link_count *c = &r->rows[i];
    add(clicks, NULL, c);
    if (c->channel[0]) add(by_channel, c->channel, c);
    if (c->variant >= 0) {
      char key[16];
      snprintf(key, sizeof key, "%d", c->variant);
      add(by_variant, key, c);
    }
  }
  json_object_set_new(clicks, "by_channel", by_channel);
  json_object_set_new(clicks, "by_variant", by_variant);
  values(clicks);
  json_object_set_new(doc, "clicks", clicks);
}

void api_links_counts_read(struct api *a, int64_t account_id, const char *campaign,
                           struct api_links_counts *c, store_done_cb done, void *arg) {
  store_link_counts_async(a->store, account_id, campaign, c->rows, &c->n, done, arg);
}

/* ---- start and stop ---------------------------------------------------------------- */

void api_links_stop(struct api *a) {
  struct api_links *l = a->links;
  if (l == NULL) return;
  l->stopped = 1;
  flush(l);
}

void api_links_free(struct api *a) {
  struct api_links *l = a->links;
  if (l == NULL) return;
  free(l->pending);
  free(l);
  a->links = NULL;
}
