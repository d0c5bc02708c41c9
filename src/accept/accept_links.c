/*
 * accept_links.c - a campaign message's URLs made tracked links (see
 * accept_links.h).
 */
#include "accept/accept_links.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/kk_err.h"
#include "core/kk_mem.h"
#include "link/link_url.h"
#include "store/store_link.h"

#define LINKS_MAX 64              /* links of one message (channels included) */

/* One rewrite under way: the item, the channel of the text in hand and the
   short link last made. */
struct rewrite {
  struct accept_item *it;
  const char *channel;
  const char *base;              /* the public URL without its trailing '/' */
  size_t base_len;
  char out[400];
};

static const char *replace(void *arg, const char *url, size_t ulen) {
  struct rewrite *w = arg;
  struct accept_item *it = w->it;
  if (ulen > LINK_URL_MAX || (ulen >= w->base_len && memcmp(url, w->base, w->base_len) == 0))
    return NULL;
  const struct store_link_new *l = NULL;
  for (int i = 0; i < it->nlinks && l == NULL; i++)
    if (strcmp(it->links[i].channel, w->channel) == 0 && strlen(it->links[i].target) == ulen &&
        memcmp(it->links[i].target, url, ulen) == 0)
      l = &it->links[i];
  if (l == NULL) {
    if (it->nlinks == LINKS_MAX) return NULL;
    struct store_link_new *n = &it->links[it->nlinks++];
    memset(n, 0, sizeof *n);
    link_code_new(n->code);
    snprintf(n->channel, sizeof n->channel, "%s", w->channel);
    n->target = kk_xmalloc(ulen + 1);
    memcpy(n->target, url, ulen);
    n->target[ulen] = '\0';
    l = n;
  }
  snprintf(w->out, sizeof w->out, "%.*s/r/%s", (int)w->base_len, w->base, l->code);
  return w->out;
}

/* The channel whose text it->text is: SMS when the message has an SMS
   text, else the first channel with the same text. */
static const char *text_channel(json_t *texts, const char *text) {
  if (json_object_get(texts, "sms")) return "sms";
  const char *k;
  json_t *v;
  json_object_foreach(texts, k, v) if (json_is_string(v) && strcmp(json_string_value(v), text) == 0)
      return k;
  return "sms";
}

int accept_has_http(const char *t, size_t n) {
  for (size_t i = 0; i + 4 <= n; i++)
    if ((t[i] == 'h' || t[i] == 'H') && strncasecmp(t + i, "http", 4) == 0) return 1;
  return 0;
}

void accept_links_free(struct accept_item *it) {
  for (int i = 0; i < it->nlinks; i++) free(it->links[i].target);
  free(it->links);
  it->links = NULL;
  it->nlinks = 0;
}

int accept_links_make(const struct accept *ac, struct accept_item *it) {
  if (!it->track_links || ac->public_url == NULL || it->campaign == NULL || it->text == NULL)
    return 0;
  accept_links_free(it);
  /* Every link begins with http:// or https://, and the extra is written by
     json_dumps, which leaves ASCII letters as they are: with "http" nowhere,
     there is nothing to rewrite (most campaigns) and the extra is not read. */
  if (!accept_has_http(it->text, it->text_len) &&
      (it->extra == NULL || !accept_has_http(it->extra, strlen(it->extra))))
    return 0;
  it->links = kk_xcalloc(LINKS_MAX, sizeof *it->links);   /* freed by accept_links_free */
  struct rewrite w = {.it = it, .base = ac->public_url, .base_len = strlen(ac->public_url)};
  while (w.base_len > 0 && w.base[w.base_len - 1] == '/') w.base_len--;
  json_t *x = it->extra ? json_loads(it->extra, 0, NULL) : NULL;
  json_t *texts = json_object_get(x, "texts");
  /* the channel of the message's text, as the texts were rendered */
  char text_ch[20];
  snprintf(text_ch, sizeof text_ch, "%s", text_channel(texts, it->text));
  /* each channel's own text */
  const char *k;
  json_t *v;
  int n, changed = 0;
  json_object_foreach(texts, k, v) {
    if (!json_is_string(v)) continue;
    w.channel = k;
    size_t len;
    char *t = link_rewrite(json_string_value(v), json_string_length(v), replace, &w, &len, &n);
    if (n > 0) json_object_set_new(texts, k, json_stringn(t, len));
    changed |= n > 0;
    free(t);
  }
  /* the link button (the Viber variant's): a link of Viber's */
  json_t *button = json_object_get(x, "button");
  const char *bu = json_string_value(json_object_get(button, "url"));
  if (bu) {
    w.channel = "viber";
    const char *to = replace(&w, bu, strlen(bu));
    if (to) {
      json_object_set_new(button, "url", json_string(to));
      changed = 1;
    }
  }
  /* the message's text */
  w.channel = text_ch;
  size_t len;
  char *t = link_rewrite(it->text, it->text_len, replace, &w, &len, &n);
  int rc = 0;
  if (n > 0) {
    free(it->tpl_text);
    it->tpl_text = t;
    it->text = t;
    it->text_len = len;
    it->m.text = t;
    t = NULL;
    rc = accept_check_text(it, accept_item_sms(it));
  }
  free(t);
  if (rc == 0 && changed) {
    char *e = json_dumps(x, JSON_COMPACT);
    free(it->tpl_extra);
    it->tpl_extra = e;
    it->extra = e;
    it->m.extra = e;
  }
  json_decref(x);
  if (rc != 0 || it->nlinks == 0) {
    accept_links_free(it);
    return rc;
  }
  it->m.links = it->links;
  it->m.nlinks = it->nlinks;
  it->m.link_variant = it->variant - 1;   /* -1: none */
  return 0;
}
