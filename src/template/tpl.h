/*
 * tpl.h - message templates: placeholders rendered from a contact's fields
 * and given values, and the lint a marketer sees in a preview. Pure: no I/O.
 *
 *   Здравствуйте, {{name|клиент}}! Скидка в {{attrs.city}} до {{ends}}.
 *
 * A placeholder is `{{NAME}}` or `{{NAME|default}}` (spaces inside the
 * braces are ignored; the default is literal text up to `}}`). NAME is
 * letters, digits, `_` and `.` (`attrs.city`, or `city`: the caller's lookup
 * decides). A value is inserted as text and never expanded again, so a
 * value holding `{{…}}` stays as written. `{{` that opens no placeholder is
 * an error, as is `}}` left unclosed.
 */
#ifndef TPL_H
#define TPL_H

#include <stddef.h>

#define TPL_NAME_MAX 64

/* The value of a placeholder's name, or NULL when there is none (then its
   default applies; without one the render fails with the name). */
typedef const char *(*tpl_lookup_fn)(void *arg, const char *name);

struct tpl_error {
  size_t pos;                 /* byte offset of the placeholder in the template */
  char name[TPL_NAME_MAX];    /* KK_ENOENT: the name without a value */
  char msg[96];
};

/*
 * Renders tpl (len bytes) into out (cap bytes, NUL-terminated). 0 and the
 * length in *out_len, or with *err filled: KK_EINVAL (a broken placeholder),
 * KK_ENOENT (a placeholder without a value or default: missing_variable),
 * KK_ETOOBIG (the result is over cap - 1 bytes).
 */
int tpl_render(const char *tpl, size_t len, tpl_lookup_fn fn, void *arg, char *out, size_t cap,
               size_t *out_len, struct tpl_error *err);

/* Calls fn for each placeholder of tpl in order (has_default: 1 when it
   has one). 0, or KK_EINVAL with *err as tpl_render. */
int tpl_each(const char *tpl, size_t len,
             void (*fn)(void *arg, const char *name, int has_default, size_t pos), void *arg,
             struct tpl_error *err);

/* 1 when kaskad itself fills the placeholder name when a message is made
   ({{unsubscribe}}: the recipient's unsubscribe link), so it needs no
   default. */
int tpl_filled_by_kaskad(const char *name);

/* What a preview warns of. */
enum tpl_lint_code {
  TPL_LINT_UCS2_FORCED,       /* a few characters force UCS-2 (fewer characters per SMS) */
  TPL_LINT_SEGMENT_EDGE,      /* a character or three over a segment boundary */
  TPL_LINT_LINK_NOT_HTTPS,    /* a link with http:// */
  TPL_LINT_AD_NO_SENDER,      /* advertising that does not name its sender */
  TPL_LINT_NO_DEFAULT,        /* a placeholder without a default */
  TPL_LINT_PROHIBITED_CONTENT,/* words of a prohibited category (policy/pol_content):
                                 advertising with them is refused */
};

struct tpl_lint {
  enum tpl_lint_code code;
  char text[160];             /* what to change, in words */
};

/* The stable name of a lint code ("ucs2_forced", ...). */
const char *tpl_lint_name(enum tpl_lint_code c);

/*
 * Lints a rendered SMS text (UTF-8) and its template (tpl may be NULL:
 * no placeholder check). advertising: the message's class is advertising;
 * sender: the name it goes out under (NULL: unknown). Writes at most max
 * warnings to out; returns how many.
 */
int tpl_lint_sms(const char *text, size_t len, const char *tpl, size_t tpl_len, int advertising,
                 const char *sender, struct tpl_lint *out, int max);

#endif
