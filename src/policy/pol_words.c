/*
 * pol_words.c - an account's words for replies (pol_words.h).
 */
#include "policy/pol_words.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "core/kk_err.h"
#include "policy/pol_text.h"

static const char *const keys[3] = {"stop_words", "start_words", "help_words"};
static const char *const defaults[3][5] = {
    {"STOP", "СТОП", "ОТПИСКА", "ОТПИСАТЬСЯ", "UNSUBSCRIBE"},
    {"START", "СТАРТ"},
    {"HELP", "ПОМОЩЬ"},
};
static const char *const classes[] = {"service", "transactional"};

#define DEFAULT_HELP "Чтобы отписаться от рассылки, отправьте СТОП; чтобы подписаться снова - СТАРТ."
#define DEFAULT_STOP "Вы отписаны от рассылки. Чтобы подписаться снова, отправьте СТАРТ."

void pol_words_default(struct pol_words *w) {
  memset(w, 0, sizeof *w);
  for (int k = 0; k < 3; k++)
    for (int i = 0; i < 5 && defaults[k][i]; i++)
      snprintf(w->w[k][w->n[k]++], POL_WORD_BYTES, "%s", defaults[k][i]);
  snprintf(w->help_text, sizeof w->help_text, "%s", DEFAULT_HELP);
  snprintf(w->stop_reply, sizeof w->stop_reply, "%s", DEFAULT_STOP);
}

static int bad(const char **field, const char *name, char *err, size_t cap, const char *msg) {
  *field = name;
  snprintf(err, cap, "%s: %s", name, msg);
  return KK_EINVAL;
}

/* One list of words (absent or null: the default). */
static int parse_list(json_t *doc, int k, struct pol_words *w, const char **field, char *err,
                      size_t cap) {
  json_t *a = json_object_get(doc, keys[k]), *v;
  if (a == NULL || json_is_null(a)) return 0;
  /* An empty list would leave a kind with no word at all: a subscriber
     could not opt out by reply, which the law requires. */
  if (!json_is_array(a) || json_array_size(a) == 0 || json_array_size(a) > POL_WORDS_MAX)
    return bad(field, keys[k], err, cap, "an array of 1 to 32 words");
  w->n[k] = 0;
  size_t i;
  json_array_foreach(a, i, v) {
    const char *s = json_string_value(v);
    size_t len = s ? strlen(s) : 0;
    char norm[POL_WORD_BYTES];
    if (len == 0 || len >= POL_WORD_BYTES || pol_text_normalize(s, len, norm, sizeof norm) == 0)
      return bad(field, keys[k], err, cap, "each word 1 to 63 bytes of UTF-8 with a letter or digit");
    memcpy(w->w[k][w->n[k]++], s, len + 1);
  }
  return 0;
}

static int parse_text(json_t *doc, const char *key, char *out, const char **field, char *err,
                      size_t cap) {
  json_t *v = json_object_get(doc, key);
  if (v == NULL || json_is_null(v)) return 0;
  const char *s = json_string_value(v);
  if (s == NULL || s[0] == '\0' || strlen(s) >= POL_REPLY_TEXT_BYTES)
    return bad(field, key, err, cap, "a text of 1 to 640 bytes");
  memcpy(out, s, strlen(s) + 1);
  return 0;
}

static int parse_allows(json_t *doc, struct pol_words *w, const char **field, char *err,
                        size_t cap) {
  json_t *a = json_object_get(doc, "stop_list_allows"), *v;
  if (a == NULL || json_is_null(a)) return 0;
  if (!json_is_array(a)) return bad(field, "stop_list_allows", err, cap, "[\"service\", \"transactional\"] or a part");
  size_t i;
  json_array_foreach(a, i, v) {
    const char *s = json_string_value(v);
    unsigned bit = 0;
    for (unsigned c = 0; c < 2; c++)
      if (s && strcmp(s, classes[c]) == 0) bit = 1u << c;
    if (bit == 0)
      return bad(field, "stop_list_allows", err, cap, "classes: service or transactional");
    w->allow |= bit;
  }
  return 0;
}

static int parse_webhook(json_t *doc, struct pol_words *w, const char **field, char *err,
                         size_t cap) {
  json_t *v = json_object_get(doc, "replies_webhook");
  if (v == NULL || json_is_null(v)) return 0;
  const char *s = json_string_value(v);
  if (s == NULL || (strncmp(s, "http://", 7) != 0 && strncmp(s, "https://", 8) != 0) ||
      strlen(s) >= POL_URL_BYTES || strpbrk(s, " \r\n\t"))
    return bad(field, "replies_webhook", err, cap,
               "an http:// or https:// URL of up to 500 characters");
  memcpy(w->replies_webhook, s, strlen(s) + 1);
  return 0;
}

int pol_words_parse(const char *doc, struct pol_words *w, const char **field, char *err,
                    size_t cap) {
  pol_words_default(w);
  if (doc == NULL || doc[0] == '\0') return 0;
  json_t *j = json_loads(doc, 0, NULL);
  int rc = json_is_object(j) ? 0 : bad(field, "policy", err, cap, "not a JSON object");
  for (int k = 0; rc == 0 && k < 3; k++) rc = parse_list(j, k, w, field, err, cap);
  if (rc == 0) rc = parse_text(j, "help_text", w->help_text, field, err, cap);
  if (rc == 0) rc = parse_text(j, "stop_reply", w->stop_reply, field, err, cap);
  if (rc == 0) rc = parse_allows(j, w, field, err, cap);
  if (rc == 0) rc = parse_webhook(j, w, field, err, cap);
  json_decref(j);
  if (rc != 0) pol_words_default(w);
  return rc;
}

enum pol_reply_kind pol_words_match(const struct pol_words *w, const char *text, size_t len) {
  if (len > 4 * POL_WORD_BYTES) return POL_REPLY_NONE;   /* a word, not a letter */
  static const enum pol_reply_kind kinds[3] = {POL_REPLY_STOP, POL_REPLY_START, POL_REPLY_HELP};
  for (int k = 0; k < 3; k++) {
    const char *list[POL_WORDS_MAX];
    for (int i = 0; i < w->n[k]; i++) list[i] = w->w[k][i];
    if (pol_text_is_one_of(text, len, list, w->n[k])) return kinds[k];
  }
  return POL_REPLY_NONE;
}

char *pol_words_doc(const struct pol_words *w) {
  json_t *o = json_object();
  for (int k = 0; k < 3; k++) {
    json_t *a = json_array();
    for (int i = 0; i < w->n[k]; i++) json_array_append_new(a, json_string(w->w[k][i]));
    json_object_set_new(o, keys[k], a);
  }
  json_object_set_new(o, "help_text", json_string(w->help_text));
  json_object_set_new(o, "stop_reply", json_string(w->stop_reply));
  json_t *a = json_array();
  for (unsigned c = 0; c < 2; c++)
    if (w->allow & (1u << c)) json_array_append_new(a, json_string(classes[c]));
  json_object_set_new(o, "stop_list_allows", a);
  json_object_set_new(o, "replies_webhook",
                      w->replies_webhook[0] ? json_string(w->replies_webhook) : json_null());
  char *s = json_dumps(o, JSON_COMPACT);
  json_decref(o);
  return s;
}
