/*
 * api_templates.c - an account's templates in the HTTP API, their preview
 * and the template of a message:
 *
 *   PUT/GET/DELETE /v1/templates[/{name}]
 *   POST /v1/templates/{name}/preview {"phone"? (or "contact"), "vars"?, "class"?,
 *                                      "sender"?}: a contact's fields fill what vars
 *                                      does not (read on the store's pool first)
 *   POST /v1/messages {"template":"NAME","vars":{…}} (api_msg_template)
 *
 * A template's body is checked at PUT (template/tmpl_doc.h): a broken
 * placeholder is refused with its field and byte position.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/store_tpl.h"
#include "accept/accept.h"
#include "accept/accept_optout.h"
#include "accept/accept_rules.h"
#include "api/api_int.h"
#include "core/kk_err.h"
#include "core/kk_mem.h"
#include "http/http_server.h"
#include "phone/phone.h"
#include "sms/sms_enc.h"
#include "store/store_contact.h"
#include "template/tmpl_doc.h"

#define VARS_MAX 64        /* variables of a message or a preview */

static int valid_name(const char *s) {
  size_t n = strlen(s);
  if (n == 0 || n > STORE_TEMPLATE_NAME_MAX) return 0;
  for (const char *p = s; *p; p++)
    if (!isalnum((unsigned char)*p) && *p != '_' && *p != '-' && *p != '.') return 0;
  return 1;
}

/* Before the method: a name to write must be one a template may have
   (reads answer 404 for any name without one). */
int api_template_check(struct api_call *c) {
  if (strcmp(http_req_method(c->req), "GET") == 0 || valid_name(api_param(c, "name"))) return 0;
  api_error(c->req, 422, "invalid_name", "name", "name: 1 to 64 of A-Z a-z 0-9 _ - .");
  return KK_EINVAL;
}

static json_t *template_json(const struct store_template *t) {
  char created[32], updated[32];
  api_time(t->created_at, created);
  api_time(t->updated_at, updated);
  json_t *o = json_loads(t->body, 0, NULL);
  if (!json_is_object(o)) {
    json_decref(o);
    o = json_object();
  }
  json_t *r = json_pack("{s:s, s:s, s:s}", "name", t->name, "created_at", created, "updated_at",
                        updated);
  json_object_update(r, o);
  json_decref(o);
  return r;
}

static void collect(void *arg, const struct store_template *t) {
  json_array_append_new(arg, template_json(t));
}

void api_templates_list(struct api_call *c) {
  json_t *arr = json_array();
  store_templates_each(c->a->store, c->account_id, collect, arr);
  api_json(c->req, 200, json_pack("{s:o}", "templates", arr), NULL);
}

static const struct store_template *find(struct api_call *c) {
  const char *name = api_param(c, "name");
  const struct store_template *t = store_template_find(c->a->store, c->account_id, name);
  if (!t) api_error(c->req, 404, "not_found", NULL, "no template %.64s", name);
  return t;
}

void api_template_get(struct api_call *c) {
  const struct store_template *t = find(c);
  if (t) api_json(c->req, 200, template_json(t), NULL);
}

struct tpl_put {
  struct api *a;
  struct http_req *req;
  int64_t account_id;
  char name[STORE_TEMPLATE_NAME_MAX + 1];
  int deleting;
};

static void on_saved(void *arg, int rc) {
  struct tpl_put *p = arg;
  const struct store_template *t;
  if (rc == KK_ENOSPC)
    api_error(p->req, 422, "too_many_templates", "name",
              "an account has %d templates at most: delete one first", STORE_TEMPLATES_MAX);
  else if (rc == KK_ETOOBIG)
    api_error(p->req, 413, "template_too_large", NULL, "a template is at most %d bytes",
              STORE_TEMPLATE_BYTES);
  else if (rc)
    api_error(p->req, 503, "store_unavailable", NULL, "the template could not be stored");
  else if (p->deleting)
    api_empty(p->req, 204);
  else if ((t = store_template_find(p->a->store, p->account_id, p->name)) != NULL)
    api_json(p->req, 200, template_json(t), NULL);
  else
    api_error(p->req, 409, "conflict", NULL, "the template was deleted meanwhile");
  free(p);
}

/* A new tpl_put for c's name (freed in on_saved()). */
static struct tpl_put *put_new(struct api_call *c) {
  struct tpl_put *p = kk_xcalloc(1, sizeof *p);
  p->a = c->a;
  p->req = c->req;
  p->account_id = c->account_id;
  snprintf(p->name, sizeof p->name, "%s", api_param(c, "name"));
  return p;
}

void api_template_delete(struct api_call *c) {
  if (!find(c)) return;
  struct tpl_put *p = put_new(c);
  p->deleting = 1;
  store_template_put(c->a->store, c->account_id, p->name, NULL, on_saved, p);
}

/* Answers a template refused by tmpl_parse. */
static void refuse_body(struct http_req *req, int rc, const struct tmpl_err *te) {
  if (rc == KK_ETOOBIG) {
    api_error(req, 413, "template_too_large", NULL, "%s", te->msg);
    return;
  }
  struct api_err e = {.status = 422, .code = "invalid_template"};
  snprintf(e.fieldbuf, sizeof e.fieldbuf, "%.47s", te->field);
  e.field = e.fieldbuf[0] ? e.fieldbuf : NULL;
  snprintf(e.message, sizeof e.message, "%s", te->msg);
  json_t *err = api_err_json(&e);
  if (strstr(te->msg, " at byte "))   /* a broken placeholder: where */
    json_object_set_new(err, "position", json_integer((json_int_t)te->pos));
  api_json(req, 422, json_pack("{s:o}", "error", err), NULL);
}

void api_template_put(struct api_call *c) {
  json_t *doc = api_call_body(c);
  if (!doc) return;
  char *body = json_dumps(doc, JSON_COMPACT);
  if (body == NULL) {
    api_error(c->req, 422, "invalid_template", NULL, "the template must be a JSON object");
    return;
  }
  kk_arena_defer(&c->arena, free, body);
  json_t *parsed;
  struct tmpl_err te;
  int rc = tmpl_parse(body, strlen(body), &parsed, &te);
  if (rc != 0) {
    refuse_body(c->req, rc, &te);
    return;
  }
  json_decref(parsed);
  struct tpl_put *p = put_new(c);
  store_template_put(c->a->store, c->account_id, p->name, body, on_saved, p);
}

/* ---- vars -------------------------------------------------------------------- */

/* The "vars" of o: absent, null or an object of at most VARS_MAX strings
   or numbers. 0 with *out (borrowed; NULL: none), or KK_EINVAL with e. */
static int vars_of(json_t *o, const json_t **out, struct api_err *e) {
  json_t *v = json_object_get(o, "vars");
  *out = NULL;
  if (v == NULL || json_is_null(v)) return 0;
  int ok = json_is_object(v) && json_object_size(v) <= VARS_MAX;
  const char *k;
  json_t *x;
  if (ok)
    json_object_foreach(v, k, x) ok = ok && (json_is_string(x) || json_is_number(x)) &&
                                     strlen(k) < TPL_NAME_MAX &&
                                     (!json_is_string(x) || json_string_length(x) <= TMPL_TEXT_MAX);
  if (!ok) {
    *e = (struct api_err){.status = 422, .code = "invalid_vars", .field = "vars"};
    snprintf(e->message, sizeof e->message,
             "vars: an object of at most %d names, each a text (up to %d bytes) or a number",
             VARS_MAX, TMPL_TEXT_MAX);
    return KK_EINVAL;
  }
  *out = v;
  return 0;
}

int api_msg_template(json_t *o, struct api_msg_item *p, struct accept_item *it) {
  json_t *tn = json_object_get(o, "template");
  if (!json_is_string(tn) || !valid_name(json_string_value(tn))) {
    p->err = (struct api_err){.status = 422, .code = "unknown_template", .field = "template"};
    snprintf(p->err.message, sizeof p->err.message, "template: the name of a saved template");
    return KK_EINVAL;
  }
  if (p->ac == NULL) {   /* a caller without a store: no templates */
    p->err = (struct api_err){.status = 422, .code = "unknown_template", .field = "template"};
    snprintf(p->err.message, sizeof p->err.message, "template: no templates here");
    return KK_EINVAL;
  }
  const json_t *vars;
  if (vars_of(o, &vars, &p->err) != 0) return KK_EINVAL;
  it->vars = vars;
  it->template_name = json_string_value(tn);
  it->contact = p->contact;
  /* The steps it goes through: a saved cascade's, the given ones, or SMS. */
  char *saved = NULL;
  if (p->cascade_name[0] &&
      store_cascade_get(p->ac->store, p->account_id, p->cascade_name, &saved) != 0) {
    p->err = (struct api_err){.status = 422, .code = "unknown_cascade", .field = "cascade"};
    snprintf(p->err.message, sizeof p->err.message, "cascade: no saved cascade \"%.63s\"",
             p->cascade_name);
    return KK_EINVAL;
  }
  int rc = accept_render_template(p->ac, p->account_id, saved ? saved : p->cascade, it);
  free(saved);
  return rc != 0 ? api_accept_refused(p, it) : 0;
}

/* ---- preview ----------------------------------------------------------------- */

struct prices {
  int64_t account_id;
  int64_t own[TMPL_NCHAN], dflt[TMPL_NCHAN];   /* -1: none */
};

static void collect_price(void *arg, int64_t account_id, const char *channel, int64_t price) {
  struct prices *p = arg;
  int ch = tmpl_chan_of(channel);
  if (ch < 0 || strcmp(channel, tmpl_chan_names[ch]) != 0) return;
  if (account_id == 0) p->dflt[ch] = price;
  else if (account_id == p->account_id) p->own[ch] = price;
}

static void no_default(void *arg, const char *name, int has_default, size_t pos) {
  (void)pos;
  json_t *lint = arg;
  if (has_default || tpl_filled_by_kaskad(name)) return;
  char text[160];
  snprintf(text, sizeof text, "{{%s}} has no default: a recipient without it is refused",
           name);
  for (size_t i = 0; i < json_array_size(lint); i++)
    if (strcmp(json_string_value(json_object_get(json_array_get(lint, i), "text")), text) == 0)
      return;
  json_array_append_new(lint, json_pack("{s:s, s:s}", "code", tpl_lint_name(TPL_LINT_NO_DEFAULT),
                                        "text", text));
}

/* The prohibited-content check of a rendered channel (its text, or an
   e-mail's subject and body) under the account's content rules (its
   categories on and its own words), as the accept path runs it on
   advertising: advisory here whatever the class, one lint entry with the
   category and the words found. */
static void content_lint(json_t *lint, const json_t *rendered, const struct pol_rules *r) {
  if (r == NULL || r->content_on == 0) return;
  static const char *const keys[] = {"text", "subject", "body"};
  struct pol_content_hit hit;
  int found = 0;
  for (size_t k = 0; k < sizeof keys / sizeof keys[0] && !found; k++) {
    const char *s = json_string_value(json_object_get(rendered, keys[k]));
    found = s && pol_rules_content(r, s, strlen(s), &hit);
  }
  if (!found) return;
  char msg[200];
  snprintf(msg, sizeof msg, "words of a prohibited category (%s): \"%s\"; advertising with "
           "them is refused (prohibited_content)", pol_category_name(hit.category), hit.words);
  json_array_append_new(lint, json_pack("{s:s, s:s, s:s, s:s}", "code",
                                        tpl_lint_name(TPL_LINT_PROHIBITED_CONTENT), "text", msg,
                                        "category", pol_category_name(hit.category), "words",
                                        hit.words));
}

/* One channel of a preview (rules: the account's, for the content lint). */
static json_t *preview_one(const json_t *doc, enum tmpl_chan ch, struct tmpl_vars *v,
                           const struct prices *pr, int advertising, const char *sender,
                           const struct pol_rules *rules) {
  json_t *r = NULL;
  struct tmpl_err te;
  int rc = tmpl_render(doc, ch, v, &r, &te);
  if (rc != 0) {
    const char *code = rc == KK_ENOENT ? "missing_variable"
                       : rc == KK_ETOOBIG ? "text_too_long"
                                          : "invalid_text";
    json_t *e = json_pack("{s:s, s:s}", "code", code, "message", te.msg);
    if (rc == KK_ENOENT) json_object_set_new(e, "variable", json_string(te.name));
    return json_pack("{s:o}", "error", e);
  }
  const char *text = json_string_value(json_object_get(r, "text"));
  const char *tpl = tmpl_text_of(doc, ch);
  json_t *lint = json_array();
  int64_t price = pr->own[ch] >= 0 ? pr->own[ch] : pr->dflt[ch];
  int units = 1;
  if (text) {
    size_t len = strlen(text);
    struct sms_info info;
    int src = sms_analyze(text, len, &info);
    if (ch == TMPL_SMS) {
      json_object_set_new(r, "encoding", json_string(info.coding == SMS_CODING_UCS2 ? "ucs2"
                                                                                    : "gsm7"));
      json_object_set_new(r, "segments", json_integer(src == 0 || src == KK_ETOOBIG
                                                          ? info.segments : 0));
      units = src == 0 ? info.segments : 0;
      if (src == KK_ETOOBIG)
        json_object_set_new(r, "error",
                            json_pack("{s:s, s:s}", "code", "text_too_long", "message",
                                      "longer than 16 SMS segments"));
      struct tpl_lint l[8];
      int nl = src == 0 || src == KK_ETOOBIG
                   ? tpl_lint_sms(text, len, tpl, tpl ? strlen(tpl) : 0, advertising, sender, l, 8)
                   : 0;
      for (int i = 0; i < nl; i++)
        json_array_append_new(lint, json_pack("{s:s, s:s}", "code", tpl_lint_name(l[i].code),
                                              "text", l[i].text));
    } else {
      json_object_set_new(r, "encoding", json_string("utf-8"));
      json_object_set_new(r, "segments", json_integer(1));
      struct tpl_error e;
      if (tpl) tpl_each(tpl, strlen(tpl), no_default, lint, &e);
    }
    json_object_set_new(r, "chars", json_integer((json_int_t)(src == 0 || src == KK_ETOOBIG
                                                                  ? info.chars : len)));
  }
  content_lint(lint, r, rules);
  json_object_set_new(r, "cost", price >= 0 && units > 0 ? api_money(price * units) : json_null());
  json_object_set_new(r, "lint", lint);
  return r;
}

/* A preview for a contact: read on the store's pool first (in the call's
   arena). */
struct preview {
  struct api_call *call;
  json_t *body;             /* the call's */
  struct store_contact ct;
};

static void preview_render(struct api_call *c, json_t *body, const struct store_contact *ct);

static void on_preview_contact(void *arg, int rc) {
  struct preview *p = arg;
  if (rc == KK_ENOENT)
    api_error(p->call->req, 404, "not_found", "phone", "no contact %s", p->ct.phone);
  else if (rc != 0)
    api_error(p->call->req, 503, "store_unavailable", NULL, "cannot read the contact now");
  else
    preview_render(p->call, p->body, &p->ct);
  store_contact_fini(&p->ct);
}

void api_template_preview(struct api_call *c) {
  if (!find(c)) return;
  /* Every field is optional: no body at all is an empty object. */
  size_t blen;
  http_req_body(c->req, &blen);
  json_t *body = blen ? api_call_body(c) : api_call_own(c, json_object());
  if (!body) return;
  json_t *ph = json_object_get(body, "phone");
  if (ph == NULL || json_is_null(ph)) ph = json_object_get(body, "contact");
  if (ph == NULL || json_is_null(ph)) {
    preview_render(c, body, NULL);
    return;
  }
  struct preview *p = kk_arena_alloc(&c->arena, sizeof *p);
  memset(p, 0, sizeof *p);
  p->call = c;
  p->body = body;
  if (!json_is_string(ph) || phone_normalize(json_string_value(ph), p->ct.phone,
                                             sizeof p->ct.phone) != 0) {
    api_error(c->req, 422, "invalid_phone", "phone", "phone: a contact's phone number");
    return;
  }
  char phone[16];
  memcpy(phone, p->ct.phone, sizeof phone);
  store_contact_get_async(c->a->store, c->account_id, phone, &p->ct, on_preview_contact, p);
}

/* What a preview fills placeholders from: the contact's fields, and for
   {{unsubscribe}} a link as long as the recipient's will be (the real one
   is made when a message is sent: a preview writes nothing). */
struct preview_vars {
  struct accept_contact_vars cv;
  const char *public_url;
  char unsub[ACCEPT_UNSUB_URL_MAX];
};

static const char *preview_var(void *arg, const char *name) {
  struct preview_vars *pv = arg;
  if (tpl_filled_by_kaskad(name) && pv->public_url[0]) {
    size_t base = strlen(pv->public_url);
    while (base > 0 && pv->public_url[base - 1] == '/') base--;
    snprintf(pv->unsub, sizeof pv->unsub, "%.*s/u/%s", (int)base, pv->public_url,
             "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx");
    return pv->unsub;
  }
  return pv->cv.c ? accept_contact_var(&pv->cv, name) : NULL;
}

/* Renders the template of the call with its vars, then ct's fields. */
static void preview_render(struct api_call *c, json_t *body, const struct store_contact *ct) {
  const struct store_template *t = find(c);
  if (!t) return;
  struct api_err e;
  const json_t *vars;
  if (vars_of(body, &vars, &e) != 0) {
    api_error_from(c->req, &e);
    return;
  }
  /* class and sender as a send takes them: a wrong one is refused, not
     previewed as if it were not there */
  json_t *cls = json_object_get(body, "class"), *snd = json_object_get(body, "sender");
  const char *cl = json_string_value(cls);   /* NULL: absent, null or not a text */
  if (cls && !json_is_null(cls) &&
      (cl == NULL || (strcmp(cl, "service") != 0 && strcmp(cl, "transactional") != 0 &&
                      strcmp(cl, "advertising") != 0))) {
    api_error(c->req, 422, "invalid_class", "class",
              "class: must be service, transactional or advertising");
    return;
  }
  if (snd && !json_is_null(snd) &&
      (!json_is_string(snd) || !api_valid_sender(json_string_value(snd)))) {
    api_error(c->req, 422, "invalid_sender", "sender", "sender: %s", API_SENDER_RULE);
    return;
  }
  int advertising = cl && strcmp(cl, "advertising") == 0;
  const char *sender = json_string_value(snd);
  json_t *doc = api_call_own(c, json_loads(t->body, 0, NULL));
  if (!doc) {
    api_error(c->req, 500, "internal", NULL, "the template cannot be read");
    return;
  }
  struct prices pr = {.account_id = c->account_id};
  for (int i = 0; i < TMPL_NCHAN; i++) pr.own[i] = pr.dflt[i] = -1;
  store_prices_each(c->a->store, collect_price, &pr);
  struct preview_vars pv = {.cv = {.c = ct}, .public_url = c->a->public_url};
  struct tmpl_vars v = {.vars = vars, .contact = preview_var, .contact_arg = &pv};
  const struct pol_rules *rules =
      c->a->accept.rules ? accept_rules_of(c->a->accept.rules, c->account_id) : NULL;
  json_t *chans = json_object();
  json_t *tch = json_object_get(doc, "channels");
  for (int ch = 0; ch < TMPL_NCHAN; ch++) {
    /* the channels it has a text or a variant for */
    if (tmpl_text_of(doc, ch) == NULL && json_object_get(tch, tmpl_chan_names[ch]) == NULL)
      continue;
    json_object_set_new(chans, tmpl_chan_names[ch],
                        preview_one(doc, (enum tmpl_chan)ch, &v, &pr, advertising, sender,
                                    rules));
  }
  accept_contact_vars_fini(&pv.cv);
  json_t *doc_out = json_pack("{s:s, s:o}", "template", t->name, "channels", chans);
  if (ct) json_object_set_new(doc_out, "phone", json_string(ct->phone));
  api_json(c->req, 200, doc_out, NULL);
}
