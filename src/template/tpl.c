/*
 * tpl.c - template rendering and the SMS lint. See tpl.h.
 */
#include "template/tpl.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "core/kk_err.h"
#include "core/kk_utf8.h"
#include "sms/sms_enc.h"
#include "sms/sms_gsm7.h"

/* One placeholder found at the start of p ("{{"). */
struct ph {
  char name[TPL_NAME_MAX];
  const char *def;            /* NULL: no default */
  size_t def_len;
  size_t len;                 /* bytes from "{{" through "}}" */
};

static int set_err(struct tpl_error *err, size_t pos, const char *fmt, ...) {
  err->pos = pos;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err->msg, sizeof err->msg, fmt, ap);
  va_end(ap);
  return KK_EINVAL;
}

static int name_byte(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '.' || c >= 0x80;
}

/* Parses the placeholder at tpl[at] ("{{" there) within end. */
static int parse_ph(const char *tpl, size_t at, size_t end, struct ph *ph, struct tpl_error *err) {
  size_t i = at + 2;
  while (i < end && tpl[i] == ' ') i++;
  size_t n0 = i;
  while (i < end && name_byte((unsigned char)tpl[i])) i++;
  size_t nlen = i - n0;
  if (nlen == 0) return set_err(err, at, "a placeholder needs a name: {{name}}");
  if (nlen >= TPL_NAME_MAX || !kk_utf8_valid(tpl + n0, nlen))
    return set_err(err, at, "a placeholder's name is up to %d letters, digits, _ and .",
                   TPL_NAME_MAX - 1);
  memcpy(ph->name, tpl + n0, nlen);
  ph->name[nlen] = '\0';
  while (i < end && tpl[i] == ' ') i++;
  ph->def = NULL;
  ph->def_len = 0;
  if (i < end && tpl[i] == '|') {
    size_t d0 = ++i;
    while (i + 1 < end && !(tpl[i] == '}' && tpl[i + 1] == '}')) {
      if (tpl[i] == '{' && tpl[i + 1] == '{')
        return set_err(err, at, "a default cannot hold a placeholder");
      i++;
    }
    size_t d1 = i;
    while (d0 < d1 && tpl[d0] == ' ') d0++;
    while (d1 > d0 && tpl[d1 - 1] == ' ') d1--;
    ph->def = tpl + d0;
    ph->def_len = d1 - d0;
  }
  if (i + 1 >= end || tpl[i] != '}' || tpl[i + 1] != '}')
    return set_err(err, at, "the placeholder {{%s is not closed with }}", ph->name);
  ph->len = i + 2 - at;
  return 0;
}

/* Walks tpl: literal runs and placeholders, in order. */
static int walk(const char *tpl, size_t len, struct tpl_error *err,
                int (*lit)(void *arg, const char *p, size_t n),
                int (*hole)(void *arg, const struct ph *ph, size_t pos), void *arg) {
  size_t i = 0, start = 0;
  while (i + 1 < len) {
    if (tpl[i] != '{' || tpl[i + 1] != '{') {
      i++;
      continue;
    }
    int rc;
    if (i > start && (rc = lit(arg, tpl + start, i - start)) != 0) return rc;
    struct ph ph;
    if ((rc = parse_ph(tpl, i, len, &ph, err)) != 0) return rc;
    if ((rc = hole(arg, &ph, i)) != 0) return rc;
    i += ph.len;
    start = i;
  }
  if (len > start) return lit(arg, tpl + start, len - start);
  return 0;
}

struct render {
  tpl_lookup_fn fn;
  void *arg;
  char *out;
  size_t cap, n;
  struct tpl_error *err;
};

static int emit(struct render *r, const char *p, size_t n) {
  if (r->n + n >= r->cap) {
    snprintf(r->err->msg, sizeof r->err->msg, "the text is over %zu bytes once filled in",
             r->cap ? r->cap - 1 : 0);
    return KK_ETOOBIG;
  }
  memcpy(r->out + r->n, p, n);
  r->n += n;
  r->out[r->n] = '\0';
  return 0;
}

static int render_lit(void *arg, const char *p, size_t n) { return emit(arg, p, n); }

static int render_hole(void *arg, const struct ph *ph, size_t pos) {
  struct render *r = arg;
  const char *v = r->fn ? r->fn(r->arg, ph->name) : NULL;
  if (v) return emit(r, v, strlen(v));
  if (ph->def) return emit(r, ph->def, ph->def_len);
  r->err->pos = pos;
  snprintf(r->err->name, sizeof r->err->name, "%s", ph->name);
  snprintf(r->err->msg, sizeof r->err->msg, "no value for {{%s}} and no default", ph->name);
  return KK_ENOENT;
}

int tpl_render(const char *tpl, size_t len, tpl_lookup_fn fn, void *arg, char *out, size_t cap,
               size_t *out_len, struct tpl_error *err) {
  memset(err, 0, sizeof *err);
  struct render r = {.fn = fn, .arg = arg, .out = out, .cap = cap, .err = err};
  if (cap == 0) return KK_ETOOBIG;
  out[0] = '\0';
  int rc = walk(tpl, len, err, render_lit, render_hole, &r);
  if (out_len) *out_len = r.n;
  return rc;
}

struct each {
  void (*fn)(void *arg, const char *name, int has_default, size_t pos);
  void *arg;
};

static int each_lit(void *arg, const char *p, size_t n) { return 0; }

static int each_hole(void *arg, const struct ph *ph, size_t pos) {
  struct each *e = arg;
  e->fn(e->arg, ph->name, ph->def != NULL, pos);
  return 0;
}

int tpl_each(const char *tpl, size_t len,
             void (*fn)(void *arg, const char *name, int has_default, size_t pos), void *arg,
             struct tpl_error *err) {
  memset(err, 0, sizeof *err);
  struct each e = {fn, arg};
  return walk(tpl, len, err, each_lit, each_hole, &e);
}

/* ---- lint ---------------------------------------------------------------------- */

const char *tpl_lint_name(enum tpl_lint_code c) {
  static const char *const names[] = {
      [TPL_LINT_UCS2_FORCED] = "ucs2_forced", [TPL_LINT_SEGMENT_EDGE] = "segment_edge",
      [TPL_LINT_LINK_NOT_HTTPS] = "link_not_https", [TPL_LINT_AD_NO_SENDER] = "ad_no_sender",
      [TPL_LINT_NO_DEFAULT] = "no_default", [TPL_LINT_PROHIBITED_CONTENT] = "prohibited_content",
  };
  return (unsigned)c < sizeof names / sizeof names[0] ? names[c] : "unknown";
}

/* The code point at s (valid UTF-8); *n its length. */
static uint32_t cp_at(const char *s, size_t left, size_t *n) {
  size_t i = 0;
  uint32_t cp;
  if (kk_utf8_next((const uint8_t *)s, left, &i, &cp) != 0) {
    *n = 1;
    return (unsigned char)s[0];
  }
  *n = i;
  return cp;
}

/* What a character that forces UCS-2 is usually meant as in GSM-7. */
static const char *plain_of(uint32_t cp) {
  switch (cp) {
  case 0x201C: case 0x201D: case 0x201E: case 0x00AB: case 0x00BB: return "\"";
  case 0x2018: case 0x2019: case 0x201A: return "'";
  case 0x2013: case 0x2014: case 0x2212: return "-";
  case 0x2026: return "...";
  case 0x00A0: case 0x2009: case 0x202F: return " ";
  case 0x0451: return "e";   /* ё in a Latin text */
  case 0x0401: return "E";
  default: return "?";
  }
}

static int add(struct tpl_lint *out, int max, int n, enum tpl_lint_code code, const char *fmt, ...) {
  if (n >= max) return n;
  out[n].code = code;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(out[n].text, sizeof out[n].text, fmt, ap);
  va_end(ap);
  return n + 1;
}

static int ucs2_forced(const char *text, size_t len, const struct sms_info *si,
                       struct tpl_lint *out, int max, int n) {
  char plain[2048], shown[64] = "";
  size_t pn = 0, shown_n = 0, odd = 0;
  for (size_t i = 0; i < len;) {
    size_t cl;
    uint32_t cp = cp_at(text + i, len - i, &cl);
    const char *rep = NULL;
    if (sms_gsm7_from_cp(cp) < 0) {
      odd++;
      rep = plain_of(cp);
      size_t sl = strlen(shown);
      if (shown_n < 5 && sl + cl < sizeof shown && memmem(shown, sl, text + i, cl) == NULL) {
        memcpy(shown + sl, text + i, cl);
        shown[sl + cl] = '\0';
        shown_n++;
      }
    }
    const char *p = rep ? rep : text + i;
    size_t pl = rep ? strlen(rep) : cl;
    if (pn + pl >= sizeof plain) return n;  /* too long to say */
    memcpy(plain + pn, p, pl);
    pn += pl;
    i += cl;
  }
  /* A text written in Cyrillic is UCS-2 by nature: warn only when a few
     characters in an otherwise GSM-7 text force it. */
  if (odd == 0 || odd * 10 > si->chars) return n;
  struct sms_info pi = {0};
  if (sms_analyze(plain, pn, &pi) != 0 && pi.segments == 0) return n;
  if (pi.segments > 0 && pi.segments < si->segments)
    return add(out, max, n, TPL_LINT_UCS2_FORCED,
               "%s force%s UCS-2 (70 characters a segment): %d segments, %d with plain characters",
               shown, shown_n == 1 ? "s" : "", si->segments, pi.segments);
  return add(out, max, n, TPL_LINT_UCS2_FORCED,
             "%s force%s UCS-2: 70 characters a segment instead of 160", shown,
             shown_n == 1 ? "s" : "");
}

struct nodef {
  char names[120];
};

int tpl_filled_by_kaskad(const char *name) { return strcmp(name, "unsubscribe") == 0; }

static void nodef_each(void *arg, const char *name, int has_default, size_t pos) {
  struct nodef *d = arg;
  if (has_default || tpl_filled_by_kaskad(name) || strlen(d->names) + strlen(name) + 8 >= sizeof d->names) return;
  if (d->names[0]) strcat(d->names, ", ");
  strcat(d->names, "{{");
  strcat(d->names, name);
  strcat(d->names, "}}");
}

int tpl_lint_sms(const char *text, size_t len, const char *tpl, size_t tpl_len, int advertising,
                 const char *sender, struct tpl_lint *out, int max) {
  int n = 0;
  struct sms_info si;
  int rc = sms_analyze(text, len, &si);
  if (rc == 0 || rc == KK_ETOOBIG) {
    if (si.coding == SMS_CODING_UCS2) n = ucs2_forced(text, len, &si, out, max, n);
    size_t one = si.coding == SMS_CODING_GSM7 ? 160 : 70;
    size_t part = si.coding == SMS_CODING_GSM7 ? 153 : 67;
    if (si.segments >= 2) {
      size_t fit = si.segments == 2 ? one : (size_t)(si.segments - 1) * part;
      if (si.units > fit && si.units - fit <= 3)
        n = add(out, max, n, TPL_LINT_SEGMENT_EDGE,
                "%zu character%s over a segment: %d segments, %d if it were that much shorter",
                si.units - fit, si.units - fit == 1 ? "" : "s", si.segments, si.segments - 1);
    }
  }
  for (size_t i = 0; i + 7 <= len; i++)
    if (strncasecmp(text + i, "http://", 7) == 0) {
      n = add(out, max, n, TPL_LINT_LINK_NOT_HTTPS, "a link with http://: use https://");
      break;
    }
  if (advertising && sender && sender[0] && strspn(sender, "+0123456789") != strlen(sender)) {
    int named = 0;
    size_t sl = strlen(sender);
    for (size_t i = 0; i + sl <= len && !named; i++) named = strncasecmp(text + i, sender, sl) == 0;
    if (!named)
      n = add(out, max, n, TPL_LINT_AD_NO_SENDER,
              "advertising should name its advertiser: the text does not say %s", sender);
  }
  if (tpl) {
    struct nodef d = {.names = ""};
    struct tpl_error e;
    /* in the words of the other channels' lint (api_templates.c) */
    if (tpl_each(tpl, tpl_len, nodef_each, &d, &e) == 0 && d.names[0])
      n = add(out, max, n, TPL_LINT_NO_DEFAULT,
              strchr(d.names, ',') ? "%s have no default: a recipient without them is refused"
                                   : "%s has no default: a recipient without it is refused",
              d.names);
  }
  return n;
}
