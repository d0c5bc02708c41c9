/*
 * chan_settings.c - the channel settings (see chan_settings.h): each driver
 * declares the fields it takes (chan_driver.fields, with their checks), and
 * the parser walks that table; nothing here knows a channel by name.
 */
#include "channel/chan_settings.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "channel/chan_engine_int.h"
#include "channel/chan_int.h"
#include "core/kk_err.h"
#include "core/kk_log.h"
#include "core/kk_mem.h"

#define LOGCTX CHAN_LOGCTX

/* Fields GET shows that are not settings: a body read back may carry them. */
static const char *const read_only[] = {"webhook_url", "channel", "source", "reports"};

static const struct chan_field *field_of(const struct chan_driver *drv, const char *name) {
  for (int i = 0; drv && i < drv->nfields; i++)
    if (strcmp(drv->fields[i].name, name) == 0) return &drv->fields[i];
  return NULL;
}

static int is_read_only(const char *key) {
  for (size_t i = 0; i < sizeof read_only / sizeof read_only[0]; i++)
    if (strcmp(read_only[i], key) == 0) return 1;
  return 0;
}

/* Names the field that is wrong and says why; returns KK_EINVAL. */
static int refuse(const char **field, const char *name, char *err, size_t errcap,
                  const char *fmt, ...) __attribute__((format(printf, 5, 6)));
static int refuse(const char **field, const char *name, char *err, size_t errcap,
                  const char *fmt, ...) {
  *field = name;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err, errcap, fmt, ap);
  va_end(ap);
  return KK_EINVAL;
}

/* Takes one member of the body into cfg by its field's type. */
static int take(const struct chan_field *f, json_t *v, struct chan_cfg *cfg, char *err,
                size_t errcap, const char **field) {
  if (json_is_null(v)) return 0;
  if (f->flags & CHAN_FIELD_INT) {
    if (!json_is_integer(v) || json_integer_value(v) <= 0)
      return refuse(field, f->name, err, errcap, "%s: a positive integer", f->name);
    *(int64_t *)((char *)cfg + f->off) = json_integer_value(v);
    return 0;
  }
  const char *s = json_string_value(v);
  if (s == NULL || strlen(s) >= f->cap || strpbrk(s, "\r\n"))
    return refuse(field, f->name, err, errcap, "%s: a string of at most %zu characters", f->name,
                  f->cap - 1);
  snprintf((char *)cfg + f->off, f->cap, "%s", s);
  return 0;
}

static int url_ok(const char *u, const char *schemes) {
  if (strpbrk(u, " \r\n\t\"<>")) return 0;
  for (const char *p = schemes; *p;) {
    const char *e = strchr(p, ',');
    size_t len = e ? (size_t)(e - p) : strlen(p);
    if (strncmp(u, p, len) == 0 && strncmp(u + len, "://", 3) == 0 && u[len + 3]) return 1;
    if (!e) break;
    p = e + 1;
  }
  return 0;
}

/* The checks of a field's form (URLs, character sets). 0 or KK_EINVAL. */
static int check_form(const struct chan_field *f, struct chan_cfg *cfg, char *err, size_t errcap,
                      const char **field) {
  if (f->flags & CHAN_FIELD_INT) return 0;
  char *s = (char *)cfg + f->off;
  if (s[0] == '\0') return 0;
  if (f->flags & CHAN_FIELD_HTTP_BASE) {
    size_t n = strlen(s);
    while (n > 0 && s[n - 1] == '/') s[--n] = '\0';
    if (s[0] && (!url_ok(s, "http,https") || strchr(strchr(s, ':') + 3, '/')))
      return refuse(field, f->name, err, errcap,
                    "%s: the provider's scheme and host only, e.g. https://api.vk.com", f->name);
  }
  if ((f->flags & CHAN_FIELD_SMTP_URL) && !url_ok(s, "smtp,smtps"))
    return refuse(field, f->name, err, errcap, "%s: smtp://host:port or smtps://host:port",
                  f->name);
  if ((f->flags & CHAN_FIELD_TOKEN_CHARS) && !chan_charset(s, "_-"))
    return refuse(field, f->name, err, errcap, "%s", f->rule ? f->rule : f->name);
  return 0;
}

static int is_unset(const struct chan_field *f, const struct chan_cfg *cfg) {
  if (f->flags & CHAN_FIELD_INT) return *(const int64_t *)((const char *)cfg + f->off) == 0;
  return ((const char *)cfg + f->off)[0] == '\0';
}

int chan_settings_parse(const char *channel, json_t *obj, struct chan_cfg *cfg, char *err,
                        size_t errcap, const char **field) {
  memset(cfg, 0, sizeof *cfg);
  *field = NULL;
  if (!json_is_object(obj)) {
    snprintf(err, errcap, "the body must be a JSON object");
    return KK_EINVAL;
  }
  const struct chan_driver *drv = chan_driver(channel);
  if (drv == NULL) {
    snprintf(err, errcap, "%s: no such channel", channel ? channel : "");
    return KK_EINVAL;
  }
  const char *key;
  json_t *v;
  json_object_foreach(obj, key, v) {
    const struct chan_field *f = field_of(drv, key);
    if (f == NULL && is_read_only(key)) continue;   /* from GET, sent back unchanged */
    if (f == NULL) {
      *field = key;
      snprintf(err, errcap, "%s: not a setting of the %s channel", key, channel);
      return KK_EINVAL;
    }
    if (take(f, v, cfg, err, errcap, field) != 0) return KK_EINVAL;
  }
  /* The forms first, then what is missing, each in the driver's order. */
  for (int i = 0; i < drv->nfields; i++)
    if (check_form(&drv->fields[i], cfg, err, errcap, field) != 0) return KK_EINVAL;
  for (int i = 0; i < drv->nfields; i++) {
    const struct chan_field *f = &drv->fields[i];
    if ((f->flags & CHAN_FIELD_REQUIRED) && is_unset(f, cfg))
      return refuse(field, f->name, err, errcap, "%s: required for %s", f->name, channel);
  }
  return 0;
}

json_t *chan_settings_json(const struct chan_cfg *cfg) {
  json_t *o = json_object();
  int nd = 0;
  const struct chan_driver *const *drv = chan_drivers(&nd);
  /* Every field any driver declares (a cfg holds its own channel's only). */
  for (int d = 0; d < nd; d++)
    for (int i = 0; i < drv[d]->nfields; i++) {
      const struct chan_field *f = &drv[d]->fields[i];
      if (is_unset(f, cfg) || json_object_get(o, f->name)) continue;
      if (f->flags & CHAN_FIELD_INT)
        json_object_set_new(o, f->name, json_integer(*(const int64_t *)((const char *)cfg + f->off)));
      else
        json_object_set_new(o, f->name, json_string((const char *)cfg + f->off));
    }
  return o;
}

/* ---- the cache ------------------------------------------------------------------ */

static struct chan_cfg_entry **entry_at(struct chan_engine *e, int64_t account_id,
                                        const char *channel) {
  struct chan_cfg_entry **pp = &e->cfgs;
  while (*pp && !((*pp)->account_id == account_id && strcmp((*pp)->channel, channel) == 0))
    pp = &(*pp)->next;
  return pp;
}

const struct chan_cfg *chan_settings_find(struct chan_engine *e, int64_t scope,
                                          const char *channel) {
  struct chan_cfg_entry *x = *entry_at(e, scope, channel);
  return x ? &x->cfg : NULL;
}

const struct chan_cfg *chan_settings_get(struct chan_engine *e, int64_t account_id,
                                         const char *channel, int64_t *scope) {
  struct chan_cfg_entry *x = account_id ? *entry_at(e, account_id, channel) : NULL;
  if (x == NULL) x = *entry_at(e, 0, channel);
  if (scope) *scope = x ? x->account_id : 0;
  return x ? &x->cfg : NULL;
}

void chan_settings_put(struct chan_engine *e, int64_t account_id, const char *channel,
                       const struct chan_cfg *cfg) {
  struct chan_cfg_entry **pp = entry_at(e, account_id, channel);
  if (cfg == NULL) {
    if (*pp) {
      struct chan_cfg_entry *x = *pp;
      *pp = x->next;
      free(x);
    }
    return;
  }
  if (*pp == NULL) {
    /* Freed by chan_settings_put(NULL) or chan_settings_clear(). */
    *pp = kk_xcalloc(1, sizeof **pp);
    (*pp)->account_id = account_id;
    snprintf((*pp)->channel, sizeof (*pp)->channel, "%s", channel);
  }
  (*pp)->cfg = *cfg;
}

void chan_settings_clear(struct chan_engine *e) {
  while (e->cfgs) {
    struct chan_cfg_entry *x = e->cfgs;
    e->cfgs = x->next;
    free(x);
  }
}

static void load_one(void *arg, int64_t account_id, const char *channel, const char *config) {
  struct chan_engine *e = arg;
  if (strcmp(channel, "policy") == 0) return;   /* the account's rules (accept_rules.h) */
  json_t *j = json_loads(config, 0, NULL);
  struct chan_cfg cfg;
  char err[160];
  const char *field;
  if (chan_driver(channel) && chan_settings_parse(channel, j, &cfg, err, sizeof err, &field) == 0)
    chan_settings_put(e, account_id, channel, &cfg);
  else
    kk_warnx(LOGCTX, "stored settings of %s for account %lld ignored: %s", channel,
             (long long)account_id, chan_driver(channel) ? err : "no such channel");
  json_decref(j);
}

int chan_settings_load(struct chan_engine *e) {
  return store_channels_each(e->store, load_one, e) == 0 ? 0 : KK_ESTORE;
}
