/*
 * tmpl_doc.h - a saved template's body: a default text and per-channel
 * variants, checked when it is saved and rendered per channel when a
 * message or a preview uses it. Pure (jansson values, no I/O).
 *
 *   {"text":"Здравствуйте, {{name|клиент}}!",
 *    "channels":{"sms":{"text"},"viber":{"text","image","button":{"caption","url"}},
 *                "email":{"subject","body"},"vk":{"text"},"telegram":{"text"},
 *                "whatsapp":{"template":{"name","language","params":[…]}}}}
 *
 * Every text (and every WhatsApp param, image and button field) is a
 * template of tpl.h: a broken placeholder is refused where it is, by field
 * and byte offset. A channel without a text of its own uses "text".
 */
#ifndef TMPL_DOC_H
#define TMPL_DOC_H

#include <jansson.h>
#include <stddef.h>

#include "template/tpl.h"

#define TMPL_BODY_MAX (64 * 1024)   /* bytes of a template's JSON */
#define TMPL_TEXT_MAX 4096          /* bytes of a rendered text (accept's bound) */
#define TMPL_SUBJECT_MAX 256        /* bytes of a rendered e-mail subject */
#define TMPL_PARAMS_MAX 16          /* WhatsApp template params */

/* The channels a template has variants for, in the order a preview lists. */
enum tmpl_chan {
  TMPL_SMS, TMPL_VIBER, TMPL_VK, TMPL_TELEGRAM, TMPL_WHATSAPP, TMPL_EMAIL, TMPL_NCHAN
};
extern const char *const tmpl_chan_names[TMPL_NCHAN];
/* The template channel of a cascade step's channel name ("telegram_gateway"
   is telegram's), or -1. */
int tmpl_chan_of(const char *channel);

struct tmpl_err {
  char field[64];             /* e.g. "channels.sms.text" */
  size_t pos;                 /* byte offset in that field's text */
  char name[TPL_NAME_MAX];    /* KK_ENOENT: the variable without a value */
  char msg[160];
};

/*
 * Parses and checks a template body (len bytes of JSON). 0 with *out the
 * body as stored (a new reference, the caller's to json_decref), or
 * KK_ETOOBIG (over TMPL_BODY_MAX) / KK_EINVAL with *err (the field and,
 * for a broken placeholder, the offset in its text).
 */
int tmpl_parse(const char *body, size_t len, json_t **out, struct tmpl_err *err);

/* A variable's value: vars first (strings, numbers as written), then the
   contact's fields. */
struct tmpl_vars {
  const json_t *vars;         /* object or NULL */
  /* The recipient's contact fields (name, attrs.city, ...): the contacts
     module fills this hook; NULL: none. Returns the value or NULL. */
  const char *(*contact)(void *arg, const char *name);
  void *contact_arg;
  char num[64];               /* scratch for a number's text */
};

/*
 * Renders channel ch of doc (as tmpl_parse returned it). 0 with *out a new
 * object {"text", and per channel "subject", "image", "button",
 * "whatsapp_template"} (the caller's to json_decref), or with *err filled:
 * KK_ENOENT (a variable without a value or default: err->name),
 * KK_ETOOBIG (the rendered text over its bound), KK_EINVAL (no text for
 * that channel).
 */
int tmpl_render(const json_t *doc, enum tmpl_chan ch, struct tmpl_vars *v, json_t **out,
                struct tmpl_err *err);

/* The text template of channel ch (its own or the default), or NULL. */
const char *tmpl_text_of(const json_t *doc, enum tmpl_chan ch);

#endif
