/*
 * pol_rules.c - an account's rules as data. See pol_rules.h.
 */
#include "policy/pol_rules.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/kk_err.h"
#include "core/kk_tz.h"
#include "policy/pol_content.h"
#include "policy/pol_stop.h"

static const char *const class_names[POL_CLASSES] = {"service", "transactional", "advertising"};

/* What each class may do. Advertising needs a consent, waits out quiet
   hours, is checked for prohibited content, goes on the bulk lane and
   never reaches a stop-listed phone. Service and transactional messages go
   at any hour on the stream lane; the account may let them reach a phone
   that stopped (stop_list_allows), and a complaint stops everything but
   service. A cascade step that would fall through to the next channel
   inside quiet hours waits for the morning in every class, but for
   messages flagged urgent or carrying a one-time code. Every class obeys
   the caps the account sets for it. */
static const struct pol_class_rule class_table[POL_CLASSES] = {
    /* service */
    {.consent = 0, .quiet = 0, .caps = 1, .content = 0, .lane = POL_LANE_STREAM,
     .fallthrough_quiet = 1, .stop = 1, .stop_allow = POL_ALLOW_SERVICE,
     .complaint_passes = 1, .due_check = 0},
    /* transactional */
    {.consent = 0, .quiet = 0, .caps = 1, .content = 0, .lane = POL_LANE_STREAM,
     .fallthrough_quiet = 1, .stop = 1, .stop_allow = POL_ALLOW_TRANSACTIONAL,
     .complaint_passes = 0, .due_check = 0},
    /* advertising */
    {.consent = 1, .quiet = 1, .caps = 1, .content = 1, .lane = POL_LANE_BULK,
     .fallthrough_quiet = 1, .stop = 1, .stop_allow = 0, .complaint_passes = 0,
     .due_check = 1},
};

const struct pol_class_rule *pol_class_rule(int cls) {
  return &class_table[cls >= 0 && cls < POL_CLASSES ? cls : 0];
}

int pol_class_index(const char *name) {
  for (int i = 0; name && i < POL_CLASSES; i++)
    if (strcmp(name, class_names[i]) == 0) return i;
  return -1;
}

int pol_class_or_service(const char *name) {
  int i = pol_class_index(name);
  return i < 0 ? 0 : i;
}

int pol_rules_content(const struct pol_rules *r, const char *text, size_t len,
                      struct pol_content_hit *hit) {
  const char *own[POL_OWN_WORDS_MAX] = {NULL};
  for (int i = 0; i < r->nown; i++) own[i] = r->own_norm[i];
  return pol_content_check_norm(text, len, r->content_on, own, r->nown, hit);
}

const struct pol_class_rule *pol_class_rule_named(const char *name) {
  return pol_class_rule(pol_class_index(name));
}

void pol_rules_default(struct pol_rules *r) {
  memset(r, 0, sizeof *r);
  memcpy(r->cls, class_table, sizeof r->cls);
  r->quiet.from_min = 21 * 60;
  r->quiet.to_min = 9 * 60;
  snprintf(r->default_tz, sizeof r->default_tz, "Europe/Moscow");
  r->content_on = POL_CAT_ALL & ~(1u << POL_CAT_OWN);
  r->cap_mode = POL_CAP_REFUSE;
}

int pol_period_parse(const char *s, int64_t *ms) {
  char *end;
  long long v = strtoll(s, &end, 10);
  if (end == s || v <= 0) return KK_EINVAL;
  long long unit = 1000;
  if (*end == 'd') unit = 24LL * 3600 * 1000, end++;
  else if (*end == 'h') unit = 3600LL * 1000, end++;
  else if (*end == 'm') unit = 60LL * 1000, end++;
  else if (*end == 's') end++;
  if (*end != '\0' || v > POL_CAP_MAX_PER_MS / unit) return KK_EINVAL;
  *ms = v * unit;
  return 0;
}

static int bad(const char **field, const char *name, char *err, size_t errlen, const char *msg) {
  *field = name;
  snprintf(err, errlen, "%s: %s", name, msg);
  return KK_EINVAL;
}

static int parse_quiet(json_t *v, struct pol_rules *r, const char **field, char *err,
                       size_t errlen) {
  if (json_is_null(v)) {
    r->quiet.from_min = r->quiet.to_min = 0;
    return 0;
  }
  json_t *from = json_object_get(v, "from"), *to = json_object_get(v, "to");
  if (!json_is_object(v) || !json_is_string(from) || !json_is_string(to) ||
      pol_hhmm_parse(json_string_value(from), &r->quiet.from_min) != 0 ||
      pol_hhmm_parse(json_string_value(to), &r->quiet.to_min) != 0)
    return bad(field, "quiet_hours", err, errlen,
               "{\"from\":\"HH:MM\",\"to\":\"HH:MM\"} (recipient-local) or null");
  json_t *tz = json_object_get(v, "timezone");
  if (tz) {
    if (!json_is_string(tz) || !kk_tz_valid(json_string_value(tz)))
      return bad(field, "quiet_hours", err, errlen, "timezone: an IANA zone (Europe/Moscow)");
    snprintf(r->default_tz, sizeof r->default_tz, "%s", json_string_value(tz));
  }
  return 0;
}

static int parse_caps(json_t *v, struct pol_rules *r, const char **field, char *err,
                      size_t errlen) {
  static const char *msg = "a list of {\"class\":\"advertising\",\"max\":1..100,\"per\":\"7d\"} "
                           "(at most 4; per up to 365d)";
  if (!json_is_array(v) || json_array_size(v) > POL_CAPS_MAX)
    return bad(field, "caps", err, errlen, msg);
  r->ncaps = 0;
  size_t i;
  json_t *c;
  json_array_foreach(v, i, c) {
    json_t *cls = json_object_get(c, "class"), *max = json_object_get(c, "max"),
           *per = json_object_get(c, "per");
    struct pol_cap cap;
    if (!json_is_string(cls) || (cap.cls = pol_class_index(json_string_value(cls))) < 0 ||
        !json_is_integer(max) || json_integer_value(max) < 1 ||
        json_integer_value(max) > POL_CAP_MAX_COUNT)
      return bad(field, "caps", err, errlen, msg);
    cap.max = (int)json_integer_value(max);
    if (json_is_integer(per) && json_integer_value(per) > 0 &&
        json_integer_value(per) <= POL_CAP_MAX_PER_MS / 1000)
      cap.per_ms = json_integer_value(per) * 1000;
    else if (!json_is_string(per) || pol_period_parse(json_string_value(per), &cap.per_ms) != 0)
      return bad(field, "caps", err, errlen, msg);
    r->caps[r->ncaps++] = cap;
  }
  return 0;
}

static int parse_content(json_t *v, struct pol_rules *r, const char **field, char *err,
                         size_t errlen) {
  if (!json_is_object(v))
    return bad(field, "content_rules", err, errlen,
               "{\"categories\":{\"alcohol\":true,...},\"words\":[\"...\"]}");
  json_t *cats = json_object_get(v, "categories");
  if (cats) {
    const char *k;
    json_t *on;
    if (!json_is_object(cats))
      return bad(field, "content_rules", err, errlen, "categories: {\"alcohol\":false,...}");
    json_object_foreach(cats, k, on) {
      int c = pol_category_of(k);
      if (c < 0 || c == POL_CAT_OWN || !json_is_boolean(on)) {
        char m[160];
        snprintf(m, sizeof m, "categories: \"%.40s\" is not alcohol, tobacco, weapons, "
                 "medicines, gambling or pyramids with true or false", k);
        return bad(field, "content_rules", err, errlen, m);
      }
      if (json_is_true(on))
        r->content_on |= 1u << c;
      else
        r->content_on &= ~(1u << c);
    }
  }
  json_t *words = json_object_get(v, "words");
  if (words) {
    if (!json_is_array(words) || json_array_size(words) > POL_OWN_WORDS_MAX)
      return bad(field, "content_rules", err, errlen, "words: at most 64 strings");
    r->nown = 0;
    size_t i;
    json_t *w;
    json_array_foreach(words, i, w) {
      if (!json_is_string(w) || json_string_length(w) == 0 ||
          json_string_length(w) >= POL_OWN_WORD_LEN)
        return bad(field, "content_rules", err, errlen, "words: strings of 1 to 63 bytes");
      snprintf(r->own[r->nown], POL_OWN_WORD_LEN, "%s", json_string_value(w));
      pol_content_own_normalize(r->own[r->nown], r->own_norm[r->nown], sizeof r->own_norm[0]);
      r->nown++;
    }
  }
  if (r->nown > 0)
    r->content_on |= 1u << POL_CAT_OWN;
  else
    r->content_on &= ~(1u << POL_CAT_OWN);
  return 0;
}

int pol_rules_parse(const char *json, struct pol_rules *r, const char **field, char *err,
                    size_t errlen) {
  pol_rules_default(r);
  if (json == NULL || json[0] == '\0') return 0;
  json_t *doc = json_loads(json, 0, NULL);
  int rc = 0;
  if (!json_is_object(doc)) {
    rc = bad(field, "policy", err, errlen, "a JSON object");
    goto out;
  }
  json_t *v;
  if ((v = json_object_get(doc, "quiet_hours")) && (rc = parse_quiet(v, r, field, err, errlen)))
    goto out;
  if ((v = json_object_get(doc, "caps")) && (rc = parse_caps(v, r, field, err, errlen)))
    goto out;
  if ((v = json_object_get(doc, "caps_over"))) {
    const char *m = json_string_value(v);
    if (m && strcmp(m, "refuse") == 0)
      r->cap_mode = POL_CAP_REFUSE;
    else if (m && strcmp(m, "defer") == 0)
      r->cap_mode = POL_CAP_DEFER;
    else {
      rc = bad(field, "caps_over", err, errlen, "\"refuse\" or \"defer\"");
      goto out;
    }
  }
  if ((v = json_object_get(doc, "content_rules")) &&
      (rc = parse_content(v, r, field, err, errlen)))
    goto out;
  if ((v = json_object_get(doc, "no_foreign_messengers"))) {
    if (!json_is_boolean(v)) {
      rc = bad(field, "no_foreign_messengers", err, errlen, "true or false");
      goto out;
    }
    r->no_foreign = json_is_true(v);
  }
out:
  json_decref(doc);
  return rc;
}

static json_t *hhmm(int min) {
  char b[24];
  snprintf(b, sizeof b, "%02d:%02d", (min / 60) % 24, min % 60);
  return json_string(b);
}

char *pol_rules_doc(const struct pol_rules *r, const char *base) {
  json_t *doc = base ? json_loads(base, 0, NULL) : NULL;
  if (!json_is_object(doc)) {
    json_decref(doc);
    doc = json_object();
  }
  if (r->quiet.from_min == r->quiet.to_min)
    json_object_set_new(doc, "quiet_hours", json_null());
  else
    json_object_set_new(doc, "quiet_hours",
                        json_pack("{s:o, s:o, s:s}", "from", hhmm(r->quiet.from_min), "to",
                                  hhmm(r->quiet.to_min), "timezone", r->default_tz));
  json_t *caps = json_array();
  for (int i = 0; i < r->ncaps; i++) {
    char per[32];
    int64_t s = r->caps[i].per_ms / 1000;
    if (s % 86400 == 0) snprintf(per, sizeof per, "%lldd", (long long)(s / 86400));
    else if (s % 3600 == 0) snprintf(per, sizeof per, "%lldh", (long long)(s / 3600));
    else snprintf(per, sizeof per, "%llds", (long long)s);
    json_array_append_new(caps, json_pack("{s:s, s:i, s:s}", "class", class_names[r->caps[i].cls],
                                          "max", r->caps[i].max, "per", per));
  }
  json_object_set_new(doc, "caps", caps);
  json_object_set_new(doc, "caps_over",
                      json_string(r->cap_mode == POL_CAP_DEFER ? "defer" : "refuse"));
  json_t *cats = json_object();
  for (int c = 0; c < POL_CAT_COUNT; c++)
    if (c != POL_CAT_OWN)
      json_object_set_new(cats, pol_category_name(c), json_boolean(r->content_on & (1u << c)));
  json_t *words = json_array();
  for (int i = 0; i < r->nown; i++) json_array_append_new(words, json_string(r->own[i]));
  json_object_set_new(doc, "content_rules",
                      json_pack("{s:o, s:o}", "categories", cats, "words", words));
  json_object_set_new(doc, "no_foreign_messengers", json_boolean(r->no_foreign));
  char *out = json_dumps(doc, JSON_COMPACT | JSON_SORT_KEYS);
  json_decref(doc);
  return out;
}
