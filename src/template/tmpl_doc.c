/*
 * tmpl_doc.c - template bodies: checking (tmpl_parse) and rendering per
 * channel (tmpl_render). See tmpl_doc.h.
 */
#include "template/tmpl_doc.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/kk_err.h"

const char *const tmpl_chan_names[TMPL_NCHAN] = {"sms", "viber", "vk", "telegram", "whatsapp",
                                                 "email"};

int tmpl_chan_of(const char *channel) {
  if (channel == NULL) return -1;
  if (strcmp(channel, "telegram_gateway") == 0) return TMPL_TELEGRAM;
  for (int i = 0; i < TMPL_NCHAN; i++)
    if (strcmp(channel, tmpl_chan_names[i]) == 0) return i;
  return -1;
}

static int fail(struct tmpl_err *err, int rc, const char *field, size_t pos, const char *fmt, ...) {
  snprintf(err->field, sizeof err->field, "%s", field ? field : "");
  err->pos = pos;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err->msg, sizeof err->msg, fmt, ap);
  va_end(ap);
  return rc;
}

/* ---- checking -------------------------------------------------------------- */

/* Keys of o not in allowed (NULL-terminated) are refused. */
static int only_keys(const json_t *o, const char *const *allowed, const char *field,
                     struct tmpl_err *err) {
  const char *k;
  json_t *v;
  json_object_foreach((json_t *)o, k, v) {
    int ok = 0;
    for (const char *const *a = allowed; *a && !ok; a++) ok = strcmp(*a, k) == 0;
    if (!ok) return fail(err, KK_EINVAL, field, 0, "%s: unknown field \"%.48s\"", field, k);
  }
  return 0;
}

static void no_hole(void *arg, const char *name, int has_default, size_t pos) {
  (void)arg, (void)name, (void)has_default, (void)pos;
}

/* Field key of o: absent, or a string whose placeholders are well formed. */
static int check_text(const json_t *o, const char *key, const char *field, struct tmpl_err *err) {
  json_t *v = json_object_get(o, key);
  if (v == NULL) return 0;
  if (!json_is_string(v)) return fail(err, KK_EINVAL, field, 0, "%s: a string is required", field);
  struct tpl_error te;
  if (tpl_each(json_string_value(v), json_string_length(v), no_hole, NULL, &te) != 0)
    return fail(err, KK_EINVAL, field, te.pos, "%s: %s at byte %zu", field, te.msg, te.pos);
  return 0;
}

static int check_obj(const json_t *o, const char *key, const char *field, json_t **out,
                     struct tmpl_err *err) {
  *out = json_object_get(o, key);
  if (*out && !json_is_object(*out))
    return fail(err, KK_EINVAL, field, 0, "%s: an object is required", field);
  return 0;
}

static int check_whatsapp(const json_t *w, struct tmpl_err *err) {
  static const char *const keys[] = {"template", NULL};
  static const char *const tkeys[] = {"name", "language", "params", NULL};
  json_t *t;
  int rc = only_keys(w, keys, "channels.whatsapp", err);
  if (rc == 0) rc = check_obj(w, "template", "channels.whatsapp.template", &t, err);
  if (rc != 0 || t == NULL) return rc;
  if ((rc = only_keys(t, tkeys, "channels.whatsapp.template", err)) != 0) return rc;
  json_t *name = json_object_get(t, "name");
  if (!json_is_string(name) || json_string_length(name) == 0 || json_string_length(name) > 512)
    return fail(err, KK_EINVAL, "channels.whatsapp.template.name", 0,
                "channels.whatsapp.template.name: the approved template's name is required");
  json_t *lang = json_object_get(t, "language");
  if (lang && (!json_is_string(lang) || json_string_length(lang) > 16))
    return fail(err, KK_EINVAL, "channels.whatsapp.template.language", 0,
                "channels.whatsapp.template.language: a language code such as \"ru\"");
  json_t *params = json_object_get(t, "params");
  if (params == NULL) return 0;
  if (!json_is_array(params) || json_array_size(params) > TMPL_PARAMS_MAX)
    return fail(err, KK_EINVAL, "channels.whatsapp.template.params", 0,
                "channels.whatsapp.template.params: a list of at most %d texts", TMPL_PARAMS_MAX);
  for (size_t i = 0; i < json_array_size(params); i++) {
    char field[64];
    snprintf(field, sizeof field, "channels.whatsapp.template.params[%zu]", i);
    json_t *one = json_pack("{sO}", "p", json_array_get(params, i));
    rc = check_text(one, "p", field, err);
    json_decref(one);
    if (rc != 0) return rc;
  }
  return 0;
}

static int check_channel(enum tmpl_chan ch, const json_t *c, struct tmpl_err *err) {
  static const char *const text_keys[] = {"text", NULL};
  static const char *const viber_keys[] = {"text", "image", "button", NULL};
  static const char *const email_keys[] = {"subject", "body", NULL};
  static const char *const button_keys[] = {"caption", "url", NULL};
  char field[64];
  snprintf(field, sizeof field, "channels.%s", tmpl_chan_names[ch]);
  int rc;
  switch (ch) {
  case TMPL_WHATSAPP:
    return check_whatsapp(c, err);
  case TMPL_EMAIL:
    if ((rc = only_keys(c, email_keys, field, err)) != 0) return rc;
    if ((rc = check_text(c, "subject", "channels.email.subject", err)) != 0) return rc;
    return check_text(c, "body", "channels.email.body", err);
  case TMPL_VIBER: {
    json_t *b;
    if ((rc = only_keys(c, viber_keys, field, err)) != 0) return rc;
    if ((rc = check_text(c, "text", "channels.viber.text", err)) != 0) return rc;
    if ((rc = check_text(c, "image", "channels.viber.image", err)) != 0) return rc;
    if ((rc = check_obj(c, "button", "channels.viber.button", &b, err)) != 0 || b == NULL)
      return rc;
    if ((rc = only_keys(b, button_keys, "channels.viber.button", err)) != 0) return rc;
    if (!json_is_string(json_object_get(b, "caption")) ||
        !json_is_string(json_object_get(b, "url")))
      return fail(err, KK_EINVAL, "channels.viber.button", 0,
                  "channels.viber.button: caption and url are required");
    if ((rc = check_text(b, "caption", "channels.viber.button.caption", err)) != 0) return rc;
    return check_text(b, "url", "channels.viber.button.url", err);
  }
  default:
    if ((rc = only_keys(c, text_keys, field, err)) != 0) return rc;
    snprintf(field, sizeof field, "channels.%s.text", tmpl_chan_names[ch]);
    return check_text(c, "text", field, err);
  }
}

int tmpl_parse(const char *body, size_t len, json_t **out, struct tmpl_err *err) {
  static const char *const keys[] = {"text", "channels", NULL};
  memset(err, 0, sizeof *err);
  *out = NULL;
  if (len > TMPL_BODY_MAX)
    return fail(err, KK_ETOOBIG, NULL, 0, "a template is at most %d bytes", TMPL_BODY_MAX);
  json_error_t je;
  json_t *doc = json_loadb(body, len, JSON_REJECT_DUPLICATES, &je);
  if (!json_is_object(doc)) {
    json_decref(doc);
    return fail(err, KK_EINVAL, NULL, 0, "the template must be a JSON object");
  }
  json_t *channels;
  int rc = only_keys(doc, keys, "template", err);
  if (rc == 0) rc = check_text(doc, "text", "text", err);
  if (rc == 0) rc = check_obj(doc, "channels", "channels", &channels, err);
  if (rc == 0 && channels) {
    const char *k;
    json_t *c;
    json_object_foreach(channels, k, c) {
      int ch = tmpl_chan_of(k);
      if (ch < 0 || strcmp(k, "telegram_gateway") == 0) {
        rc = fail(err, KK_EINVAL, "channels", 0, "channels: unknown channel \"%.40s\"", k);
        break;
      }
      char field[64];
      snprintf(field, sizeof field, "channels.%s", k);
      if (!json_is_object(c)) {
        rc = fail(err, KK_EINVAL, field, 0, "%s: an object is required", field);
        break;
      }
      if ((rc = check_channel((enum tmpl_chan)ch, c, err)) != 0) break;
    }
  }
  int any = 0;
  for (int ch = 0; rc == 0 && ch < TMPL_NCHAN && !any; ch++) any = tmpl_text_of(doc, ch) != NULL;
  if (rc == 0 && !any)
    rc = fail(err, KK_EINVAL, "text", 0, "text: a text (or a channel's text) is required");
  if (rc != 0) {
    json_decref(doc);
    return rc;
  }
  *out = doc;
  return 0;
}

/* ---- rendering ------------------------------------------------------------- */

const char *tmpl_text_of(const json_t *doc, enum tmpl_chan ch) {
  json_t *c = json_object_get(json_object_get(doc, "channels"), tmpl_chan_names[ch]);
  const char *t = json_string_value(json_object_get(c, ch == TMPL_EMAIL ? "body" : "text"));
  return t ? t : json_string_value(json_object_get(doc, "text"));
}

static const char *lookup(void *arg, const char *name) {
  struct tmpl_vars *v = arg;
  json_t *x = json_object_get(v->vars, name);
  if (json_is_string(x)) return json_string_value(x);
  if (json_is_integer(x)) {
    snprintf(v->num, sizeof v->num, "%lld", (long long)json_integer_value(x));
    return v->num;
  }
  if (json_is_real(x)) {
    snprintf(v->num, sizeof v->num, "%.15g", json_real_value(x));
    return v->num;
  }
  return v->contact ? v->contact(v->contact_arg, name) : NULL;
}

/* Renders template t (a field of the template) into o[key], at most cap - 1
   bytes. */
static int render_into(json_t *o, const char *key, const char *t, size_t cap, const char *field,
                       struct tmpl_vars *v, struct tmpl_err *err) {
  char *buf = malloc(cap);
  if (buf == NULL) return fail(err, KK_ENOSPC, field, 0, "%s: out of memory", field);
  size_t n = 0;
  struct tpl_error te;
  int rc = tpl_render(t, strlen(t), lookup, v, buf, cap, &n, &te);
  if (rc == 0) {
    json_object_set_new(o, key, json_stringn(buf, n));
  } else if (rc == KK_ENOENT) {
    snprintf(err->name, sizeof err->name, "%s", te.name);
    fail(err, rc, field, te.pos, "%s: no value for variable \"%s\" and no default", field,
         te.name);
  } else if (rc == KK_ETOOBIG) {
    fail(err, rc, field, 0, "%s: the rendered text is over %zu bytes", field, cap - 1);
  } else {
    fail(err, rc, field, te.pos, "%s: %s", field, te.msg);
  }
  free(buf);
  return rc;
}

int tmpl_render(const json_t *doc, enum tmpl_chan ch, struct tmpl_vars *v, json_t **out,
                struct tmpl_err *err) {
  memset(err, 0, sizeof *err);
  *out = NULL;
  if ((int)ch < 0 || ch >= TMPL_NCHAN) return fail(err, KK_EINVAL, NULL, 0, "unknown channel");
  json_t *c = json_object_get(json_object_get(doc, "channels"), tmpl_chan_names[ch]);
  json_t *r = json_object();
  const char *text = tmpl_text_of(doc, ch);
  json_t *wt = ch == TMPL_WHATSAPP ? json_object_get(c, "template") : NULL;
  int rc = 0;
  char field[64];
  if (text == NULL && wt == NULL) {
    rc = fail(err, KK_EINVAL, "text", 0, "the template has no text for %s", tmpl_chan_names[ch]);
  } else if (text) {
    const char *own = json_string_value(json_object_get(c, ch == TMPL_EMAIL ? "body" : "text"));
    if (own)
      snprintf(field, sizeof field, "channels.%s.%s", tmpl_chan_names[ch],
               ch == TMPL_EMAIL ? "body" : "text");
    else
      snprintf(field, sizeof field, "text");
    rc = render_into(r, "text", text, TMPL_TEXT_MAX + 1, field, v, err);
  }
  if (rc == 0 && ch == TMPL_EMAIL && json_is_string(json_object_get(c, "subject")))
    rc = render_into(r, "subject", json_string_value(json_object_get(c, "subject")),
                     TMPL_SUBJECT_MAX + 1, "channels.email.subject", v, err);
  if (rc == 0 && ch == TMPL_VIBER && json_is_string(json_object_get(c, "image")))
    rc = render_into(r, "image", json_string_value(json_object_get(c, "image")), 1025,
                     "channels.viber.image", v, err);
  json_t *b = ch == TMPL_VIBER ? json_object_get(c, "button") : NULL;
  if (rc == 0 && b) {
    json_t *rb = json_object();
    json_object_set_new(r, "button", rb);
    rc = render_into(rb, "caption", json_string_value(json_object_get(b, "caption")), 257,
                     "channels.viber.button.caption", v, err);
    if (rc == 0)
      rc = render_into(rb, "url", json_string_value(json_object_get(b, "url")), 1025,
                       "channels.viber.button.url", v, err);
  }
  if (rc == 0 && wt) {
    json_t *rt = json_object();
    json_object_set_new(r, "whatsapp_template", rt);
    json_object_set(rt, "name", json_object_get(wt, "name"));
    json_object_set_new(rt, "language",
                        json_string(json_string_value(json_object_get(wt, "language"))
                                        ? json_string_value(json_object_get(wt, "language"))
                                        : "ru"));
    json_t *ps = json_object_get(wt, "params"), *rp = json_array(), *tmp = json_object();
    json_object_set_new(rt, "params", rp);
    for (size_t i = 0; rc == 0 && i < json_array_size(ps); i++) {
      snprintf(field, sizeof field, "channels.whatsapp.template.params[%zu]", i);
      rc = render_into(tmp, "p", json_string_value(json_array_get(ps, i)), 1025, field, v, err);
      if (rc == 0) json_array_append(rp, json_object_get(tmp, "p"));
    }
    json_decref(tmp);
  }
  if (rc != 0) {
    json_decref(r);
    return rc;
  }
  *out = r;
  return 0;
}
