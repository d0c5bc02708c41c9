/*
 * accept_tpl.c - the template hook of accept: a message given as a
 * template's name and variables is rendered per step of its cascade
 * before its text is checked, encoded and counted (see accept.h).
 */
#include <jansson.h>
#include <stddef.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/store_contact.h"
#include "store/store_tpl.h"
#include "accept/accept.h"
#include "accept/accept_links.h"
#include "accept/accept_optout.h"
#include "core/kk_err.h"
#include "core/kk_json.h"
#include "core/kk_mem.h"
#include "template/tmpl_doc.h"

static int refuse(struct accept_item *it, const char *code, const char *field, const char *fmt,
                  ...) {
  it->result = ACCEPT_REFUSED;
  it->err.status = 422;
  it->err.code = code;
  it->err.field = field;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(it->err.message, sizeof it->err.message, fmt, ap);
  va_end(ap);
  return KK_EINVAL;
}

struct contact_arg {
  const struct accept *ac;
  int64_t account_id;
  const char *e164;
  struct accept_contact_vars cv;   /* a contact read before */
  char unsub[ACCEPT_UNSUB_URL_MAX]; /* {{unsubscribe}}, once made */
};

const char *accept_contact_var(void *arg, const char *name) {
  struct accept_contact_vars *v = arg;
  const struct store_contact *c = v->c;
  if (c == NULL) return NULL;
  static const struct {
    const char *name;
    size_t off;
  } fields[] = {
      {"name", offsetof(struct store_contact, name)},
      {"email", offsetof(struct store_contact, email)},
      {"phone", offsetof(struct store_contact, phone)},
      {"timezone", offsetof(struct store_contact, timezone)},
      {"operator", offsetof(struct store_contact, operator_name)},
      {"region", offsetof(struct store_contact, region)},
      {"vk_id", offsetof(struct store_contact, vk_id)},
      {"telegram_chat_id", offsetof(struct store_contact, telegram_chat_id)},
      {"viber_id", offsetof(struct store_contact, viber_id)},
  };
  for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++)
    if (strcmp(name, fields[i].name) == 0) {
      const char *s = (const char *)c + fields[i].off;
      return s[0] ? s : NULL;
    }
  if (strncmp(name, "attrs.", 6) == 0) name += 6;
  if (c->attrs == NULL) return NULL;
  if (v->attrs == NULL) v->attrs = json_loads(c->attrs, 0, NULL);
  json_t *x = json_object_get(v->attrs, name);
  if (json_is_string(x)) return json_string_length(x) ? json_string_value(x) : NULL;
  if (!json_is_number(x)) return NULL;
  char num[40];
  if (json_is_integer(x)) snprintf(num, sizeof num, "%lld", (long long)json_integer_value(x));
  else snprintf(num, sizeof num, "%.15g", json_real_value(x));
  if (v->texts == NULL) v->texts = json_object();
  json_object_set_new(v->texts, name, json_string(num));
  return json_string_value(json_object_get(v->texts, name));
}

void accept_contact_vars_fini(struct accept_contact_vars *v) {
  json_decref(v->attrs);
  json_decref(v->texts);
  v->attrs = v->texts = NULL;
}

static const char *contact(void *arg, const char *name) {
  struct contact_arg *c = arg;
  /* The recipient's unsubscribe link (accept_optout.h), in every channel's
     text that asks for it. */
  if (tpl_filled_by_kaskad(name)) {
    if (c->unsub[0] == '\0' &&
        accept_optout_url(c->ac, c->account_id, c->e164, c->unsub, sizeof c->unsub) != 0)
      return NULL;
    return c->unsub;
  }
  if (c->cv.c) return accept_contact_var(&c->cv, name);
  if (c->ac->contact_field == NULL || c->e164 == NULL || c->e164[0] == '\0') return NULL;
  return c->ac->contact_field(c->ac->contact_ud, c->account_id, c->e164, name);
}

void accept_item_fini(struct accept_item *it) {
  accept_links_free(it);
  free(it->tpl_text);
  free(it->tpl_extra);
  free(it->rules_extra);
  free(it->digest_extra);
  it->tpl_text = it->tpl_extra = it->rules_extra = it->digest_extra = NULL;
}

/* Puts the rendered channel r's parts into x (those x has not). */
static void merge(json_t *x, json_t *texts, const char *channel, json_t *r) {
  json_t *text = json_object_get(r, "text");
  if (text) json_object_set(texts, channel, text);
  static const char *const parts[] = {"image", "button", "subject", "whatsapp_template"};
  for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++) {
    json_t *v = json_object_get(r, parts[i]);
    if (v && json_object_get(x, parts[i]) == NULL) json_object_set(x, parts[i], v);
  }
}

/* A channel whose text is the message's own (text) is sent that text
   without an entry in "texts": the extra, written with the message and read
   at each of its steps, stays short. Not when a text has a link: each
   channel's links are then tracked apart (accept_links.h), and every
   channel keeps its own text for that. 1 when it took any out. */
static int texts_trim(json_t *texts, const char *text) {
  const char *k;
  json_t *v;
  json_object_foreach(texts, k, v) if (!json_is_string(v) ||
                                       accept_has_http(json_string_value(v), json_string_length(v)))
      return 0;
  size_t n = json_object_size(texts);
  void *tmp;
  json_object_foreach_safe(texts, tmp, k, v) if (strcmp(json_string_value(v), text) == 0)
      json_object_del(texts, k);
  return json_object_size(texts) < n;
}

/* The parsed bodies of the templates used last (a campaign renders its
   template for each of its messages): a body's document is a function of
   its text alone, so a template changed since is parsed again and an entry
   of another store is as good. Loop thread only (as the templates are). */
#define DOCS_KEPT 8
static struct tpl_doc {
  char *body;          /* a copy of the text parsed */
  json_t *doc;         /* its document, read-only */
} docs[DOCS_KEPT];
static unsigned docs_next;

/* body's document, borrowed until the next call, or NULL when it is not
   JSON. */
static const json_t *doc_of(const char *body) {
  for (int i = 0; i < DOCS_KEPT; i++)
    if (docs[i].body && strcmp(docs[i].body, body) == 0) return docs[i].doc;
  json_error_t je;
  json_t *doc = json_loads(body, 0, &je);
  if (doc == NULL) return NULL;
  struct tpl_doc *d = &docs[docs_next++ % DOCS_KEPT];
  free(d->body);
  json_decref(d->doc);
  d->body = kk_xstrdup(body);
  d->doc = doc;
  return doc;
}

int accept_render_template(const struct accept *ac, int64_t account_id, const char *steps,
                           struct accept_item *it) {
  accept_item_fini(it);
  const struct store_template *t =
      store_template_find(ac->store, account_id, it->template_name ? it->template_name : "");
  if (t == NULL)
    return refuse(it, "unknown_template", "template", "template: no template \"%.64s\"",
                  it->template_name ? it->template_name : "");
  json_error_t je;
  const json_t *doc = doc_of(t->body);
  struct store_step st[STORE_MAX_STEPS];
  int n = store_steps_parse(steps, st);
  if (doc == NULL || n <= 0) {
    return refuse(it, "invalid_text", "template", "template: \"%.64s\" cannot be read",
                  it->template_name);
  }
  /* the parts (a copy: the rendered parts and texts are added to it) */
  json_t *x = NULL;
  if (it->extra_doc) x = json_copy((json_t *)it->extra_doc);
  else if (it->extra) x = json_loads(it->extra, 0, &je);
  if (!json_is_object(x)) {
    json_decref(x);
    x = json_object();
  }
  json_t *texts = json_object();
  struct contact_arg ca = {ac, account_id, it->e164, {.c = it->contact}, ""};
  struct tmpl_vars v = {.vars = it->vars, .contact = contact, .contact_arg = &ca};
  char *first = NULL, *sms = NULL;
  int rc = 0;
  for (int i = 0; i < n && rc == 0; i++) {
    int ch = tmpl_chan_of(st[i].channel);
    if (ch < 0 || json_object_get(texts, st[i].channel)) continue;
    json_t *r = NULL;
    struct tmpl_err e;
    int r_rc = tmpl_render(doc, (enum tmpl_chan)ch, &v, &r, &e);
    if (r_rc == KK_ENOENT) {
      rc = refuse(it, "missing_variable", "vars",
                  "vars: no value for \"%s\" (used in %s of template \"%.64s\") and no default",
                  e.name, e.field, it->template_name);
    } else if (r_rc == KK_ETOOBIG) {
      rc = refuse(it, "text_too_long", "template", "template: %s", e.msg);
    } else if (r_rc == 0) {
      merge(x, texts, st[i].channel, r);
      const char *s = json_string_value(json_object_get(r, "text"));
      if (s && !first) first = kk_xstrdup(s);
      if (s && ch == TMPL_SMS && !sms) sms = kk_xstrdup(s);
    } else if (ch == TMPL_SMS) {
      rc = refuse(it, "invalid_text", "template", "template: %s", e.msg);
    }
    json_decref(r);
  }
  if (rc == 0 && !first && !json_object_get(x, "whatsapp_template"))
    rc = refuse(it, "invalid_text", "template",
                "template: \"%.64s\" has no text for the channels of this message",
                it->template_name);
  if (rc == 0) {
    it->tpl_text = sms ? sms : first ? first : kk_xstrdup(" ");
    json_object_set(x, "texts", texts);
    it->tpl_extra = kk_json_dumps(x);
    if (texts_trim(texts, it->tpl_text)) {
      /* the idempotency digest stays what it was with every text */
      it->digest_extra = it->tpl_extra;
      if (json_object_size(texts) == 0) json_object_del(x, "texts");
      it->tpl_extra = kk_json_dumps(x);
    }
    if (it->tpl_text != first) free(first);
    sms = first = NULL;
    it->text = it->tpl_text;
    it->text_len = strlen(it->tpl_text);
    it->extra = it->tpl_extra;
  }
  free(first);
  free(sms);
  json_decref(texts);
  json_decref(x);
  accept_contact_vars_fini(&ca.cv);
  return rc;
}
