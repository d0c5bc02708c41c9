/*
 * accept_rules.c - the account's rules in the accept path. See
 * accept_rules.h.
 */
#include "accept/accept_rules.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "accept/accept.h"
#include "core/kk_buf.h"
#include "core/kk_err.h"
#include "core/kk_log.h"
#include "core/kk_hash.h"
#include "core/kk_mem.h"
#include "core/kk_tz.h"
#include "phone/phone_plan.h"
#include "policy/pol_caps.h"
#include "policy/pol_content.h"
#include "policy/pol_due.h"
#include "store/store.h"

#define LOGCTX "rules"

static const char *const reason_names[ACCEPT_R_COUNT] = {
#define XX(c, s) s,
    ACCEPT_REASONS(XX)
#undef XX
};

/* ---- the accounts' rules in memory --------------------------------------------- */

static int find(const struct accept_rules *ru, int64_t account_id, int *at) {
  int lo = 0, hi = ru->n;
  while (lo < hi) {
    int mid = (lo + hi) / 2;
    if (ru->a[mid].account_id < account_id)
      lo = mid + 1;
    else
      hi = mid;
  }
  *at = lo;
  return lo < ru->n && ru->a[lo].account_id == account_id;
}

/* 1 when a stored policy document sets quiet_hours itself (null too). */
static int names_quiet(const char *doc) {
  json_t *o = json_loads(doc, 0, NULL);
  int named = json_object_get(o, "quiet_hours") != NULL;
  json_decref(o);
  return named;
}

/* The caps' table of each class the account caps keeps as many send
   times a phone as its largest cap needs: the max, and one more for the
   message that comes due among them (over_cap). */
static void caps_ring(struct accept_rules *ru, int64_t account_id, const struct pol_rules *r) {
  for (int cls = 0; cls < POL_CLASSES; cls++) {
    int ring = 0;
    for (int i = 0; i < r->ncaps; i++)
      if (r->caps[i].cls == cls && r->caps[i].max + 1 > ring) ring = r->caps[i].max + 1;
    if (ring) (void)pol_caps_ring(ru->caps, account_id, cls, ring);
  }
}

/* Puts account_id's document (NULL: back to the defaults). */
static void put(struct accept_rules *ru, int64_t account_id, const char *doc) {
  ru->gen++;   /* the content verdicts held are stale */
  int at;
  int found = find(ru, account_id, &at);
  if (doc == NULL) {
    if (!found) return;
    free(ru->a[at].doc);
    memmove(&ru->a[at], &ru->a[at + 1], (size_t)(ru->n - at - 1) * sizeof *ru->a);
    ru->n--;
    return;
  }
  struct pol_rules r;
  const char *field;
  char err[160];
  if (pol_rules_parse(doc, &r, &field, err, sizeof err) != 0) {
    kk_error(LOGCTX, "policy of account %lld as stored is unusable (%s); kept as it was",
             (long long)account_id, err);
    return;
  }
  if (!names_quiet(doc)) r.quiet = ru->quiet;
  caps_ring(ru, account_id, &r);
  if (!found) {
    if (ru->n == ru->cap) {
      ru->cap = ru->cap ? ru->cap * 2 : 16;
      ru->a = kk_xrealloc(ru->a, (size_t)ru->cap * sizeof *ru->a);
    }
    memmove(&ru->a[at + 1], &ru->a[at], (size_t)(ru->n - at) * sizeof *ru->a);
    ru->n++;
    ru->a[at].account_id = account_id;
    ru->a[at].doc = NULL;
  }
  ru->a[at].r = r;
  free(ru->a[at].doc);
  ru->a[at].doc = kk_xstrdup(doc);   /* freed on the next put or at fini */
}

const struct pol_rules *accept_rules_of(const struct accept_rules *ru, int64_t account_id) {
  int at;
  return find(ru, account_id, &at) ? &ru->a[at].r : &ru->defaults;
}

const char *accept_rules_doc(const struct accept_rules *ru, int64_t account_id) {
  int at;
  return find(ru, account_id, &at) ? ru->a[at].doc : NULL;
}

static void load_one(void *arg, int64_t account_id, const char *channel, const char *config) {
  if (strcmp(channel, ACCEPT_RULES_ROW) == 0) put(arg, account_id, config);
}

/* Counts a send in the caps' table; a table full (its phones all within
   a window) leaves the send uncounted, which /metrics shows and the log
   says once. */
static void cap_count(struct accept_rules *ru, int64_t account_id, int cls, const char *phone,
                      int64_t at) {
  if (pol_caps_add(ru->caps, account_id, cls, phone, at) != KK_ENOSPC || ru->caps_full_said)
    return;
  ru->caps_full_said = 1;
  kk_warnx(LOGCTX, "frequency caps: the table of account %lld is full (%zu phones held): sends "
           "to new phones pass uncounted (kaskad_policy_cap_uncounted_total)",
           (long long)account_id, pol_caps_size(ru->caps));
}

/* A send another node accepted and counted: counted here too, when this
   account caps its class (this node's own sends were counted at accept). */
static void count_remote(struct accept_rules *ru, const struct store_note *t) {
  if (!t->remote || t->cfg == NULL || t->cfg->text == NULL) return;
  const struct pol_rules *r = accept_rules_of(ru, t->account_id);
  int cls = pol_class_or_service(t->cfg->text);
  for (int i = 0; i < r->ncaps; i++)
    if (r->caps[i].cls == cls) {
      cap_count(ru, t->account_id, cls, t->cfg->name, t->at);
      return;
    }
}

static void on_notes(void *ud, const struct store_note *notes, int n) {
  for (int i = 0; i < n; i++) {
    if (notes[i].kind == STORE_NOTE_CHANNEL_CFG &&
        strcmp(notes[i].cfg->name, ACCEPT_RULES_ROW) == 0)
      put(ud, notes[i].account_id, notes[i].cfg->text);
    if (notes[i].kind == STORE_NOTE_CAP_SEND) count_remote(ud, &notes[i]);
  }
}

/* One account's messages while the caps' counts are rebuilt. */
struct rebuild {
  struct accept_rules *ru;
  int64_t account_id;
  const struct pol_rules *r;
  size_t rows;
};

static void rebuild_one(void *arg, const struct store_msg_view *v) {
  struct rebuild *b = arg;
  for (int c = 0; c < b->r->ncaps; c++)
    if (v->to[0] && strcmp(v->msg_class, accept_classes[b->r->caps[c].cls]) == 0) {
      cap_count(b->ru, b->account_id, b->r->caps[c].cls, v->to, v->created_at);
      b->rows++;
      return;
    }
}

/* The caps' counts rebuilt from the store: the messages of each account
   with caps within its longest window. 0 or KK_ESTORE. */
static int caps_rebuild(struct accept_rules *ru) {
  int64_t now = store_now_ms();
  size_t rows = 0;
  for (int i = 0; i < ru->n; i++) {
    struct rebuild b = {ru, ru->a[i].account_id, &ru->a[i].r, 0};
    int64_t per = 0;
    for (int c = 0; c < b.r->ncaps; c++)
      if (b.r->caps[c].per_ms > per) per = b.r->caps[c].per_ms;
    if (per == 0) continue;
    if (store_msg_each_since(ru->store, b.account_id, now - per, rebuild_one, &b) != 0)
      return KK_ESTORE;
    rows += b.rows;
  }
  if (rows) kk_info(LOGCTX, "frequency caps: %zu recent messages counted", rows);
  return 0;
}

int accept_rules_init(struct accept_rules *ru, struct store *store,
                      const struct phone_plan *plan, const struct pol_window *quiet) {
  memset(ru, 0, sizeof *ru);
  ru->store = store;
  ru->plan = plan;
  ru->caps = pol_caps_new(0);
  pol_rules_default(&ru->defaults);
  if (quiet) ru->defaults.quiet = *quiet;
  ru->quiet = ru->defaults.quiet;
  if (store_channels_each(store, load_one, ru) != 0 || caps_rebuild(ru) != 0) return KK_ESTORE;
  if (store_subscribe(store, on_notes, ru) != 0) return KK_ENOSPC;
  ru->subscribed = 1;
  return 0;
}

void accept_rules_fini(struct accept_rules *ru) {
  if (ru->subscribed) store_unsubscribe(ru->store, on_notes, ru);
  for (int i = 0; i < ru->n; i++) free(ru->a[i].doc);
  for (size_t i = 0; i < sizeof ru->memo / sizeof ru->memo[0]; i++) free(ru->memo[i].text);
  free(ru->a);
  free(ru->own);
  pol_caps_free(ru->caps);
  memset(ru, 0, sizeof *ru);
}

/* ---- decisions ------------------------------------------------------------------ */

static void iso(int64_t ms, char out[32]) {
  time_t t = (time_t)(ms / 1000);
  struct tm tm;
  gmtime_r(&t, &tm);
  char tmp[96];
  snprintf(tmp, sizeof tmp, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
           tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(ms % 1000));
  snprintf(out, 32, "%.31s", tmp);
}

/* Appends {"at","rule","outcome","reason"[,"channel"][,"until"]} to the
   item's decisions (a JSON array). */
static void decide(struct accept_rules *ru, struct accept_item *it, int64_t now,
                   enum accept_reason why, const char *outcome, const char *channel,
                   int64_t until) {
  if (it->dry) {
    /* a trial: nothing counted */
  } else if (strcmp(outcome, "refused") == 0) {
    ru->refused[why]++;
  } else if (strcmp(outcome, "deferred") == 0) {
    ru->deferred[why]++;
  } else {
    ru->skipped[why]++;
  }
  char at[32], u[32], extra[96] = "";
  iso(now, at);
  size_t len = strlen(it->decisions);
  if (channel) snprintf(extra, sizeof extra, ",\"channel\":\"%s\"", channel);
  if (until) {
    iso(until, u);
    size_t e = strlen(extra);
    snprintf(extra + e, sizeof extra - e, ",\"until\":\"%s\"", u);
  }
  char one[256];
  int n = snprintf(one, sizeof one, "%s{\"at\":\"%s\",\"rule\":\"%s\",\"outcome\":\"%s\","
                   "\"reason\":\"%s\"%s}]", len ? "," : "[", at, reason_names[why], outcome,
                   reason_names[why], extra);
  if (len) len--;   /* over the closing bracket */
  if (n > 0 && len + (size_t)n < sizeof it->decisions)
    memcpy(it->decisions + len, one, (size_t)n + 1);
  it->m.decisions = it->decisions;
}

static int refuse(struct accept_rules *ru, struct accept_item *it, int64_t now,
                  enum accept_reason why, const char *field, const char *msg) {
  decide(ru, it, now, why, "refused", NULL, 0);
  it->err.status = 422;
  it->err.code = reason_names[why];
  it->err.field = field;
  snprintf(it->err.message, sizeof it->err.message, "%s", msg);
  it->result = ACCEPT_REFUSED;
  return KK_EINVAL;
}

/* ---- the rules ------------------------------------------------------------------ */

#define MEMO_TEXT_MAX 2048   /* longer texts are checked every time */

static uint64_t text_hash(const char *s, size_t n) {
  uint64_t h = 1469598103934665603ULL;   /* FNV-1a */
  for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 1099511628211ULL;
  return h;
}

/* The content check of text under r: from a verdict held for the same
   account and text under the same policies, else checked and held. 1 with
   *hit when a category matched. */
static int content_verdict(struct accept_rules *ru, const struct pol_rules *r,
                           int64_t account_id, const char *text, struct pol_content_hit *hit) {
  size_t len = strlen(text);
  int n = (int)(sizeof ru->memo / sizeof ru->memo[0]);
  uint64_t h = len <= MEMO_TEXT_MAX ? text_hash(text, len) : 0;
  if (len <= MEMO_TEXT_MAX)
    for (int i = 0; i < n; i++) {
      struct accept_content_memo *m = &ru->memo[i];
      if (m->text && m->hash == h && m->len == len && m->account_id == account_id &&
          m->gen == ru->gen && memcmp(m->text, text, len) == 0) {
        *hit = m->h;
        return m->hit;
      }
    }
  int got = pol_rules_content(r, text, len, hit);   /* checked on a miss only */
  if (len > MEMO_TEXT_MAX) return got;
  struct accept_content_memo *m = &ru->memo[ru->memo_next];
  ru->memo_next = (ru->memo_next + 1) % n;
  free(m->text);
  m->text = kk_xmalloc(len + 1);   /* freed when the slot is reused, or at fini */
  memcpy(m->text, text, len + 1);
  m->len = len;
  m->hash = h;
  m->account_id = account_id;
  m->gen = ru->gen;
  m->hit = got;
  if (got) m->h = *hit;
  return got;
}

static int content(struct accept_rules *ru, const struct pol_rules *r, struct accept_item *it,
                   int64_t now) {
  struct pol_content_hit hit;
  if (!content_verdict(ru, r, it->m.account_id, it->m.text, &hit)) return 0;
  char msg[256];
  snprintf(msg, sizeof msg, "text: advertising of a prohibited category (%s): \"%s\"",
           pol_category_name(hit.category), hit.words);
  refuse(ru, it, now, ACCEPT_R_CONTENT, "text", msg);
  /* The category is the reason's detail, kept with the decision too. */
  size_t len = strlen(it->decisions);
  char cat[64];
  int n = snprintf(cat, sizeof cat, ",\"category\":\"%s\"}]", pol_category_name(hit.category));
  if (len >= 2 && len - 2 + (size_t)n < sizeof it->decisions)
    memcpy(it->decisions + len - 2, cat, (size_t)n + 1);
  return KK_EINVAL;
}

static int is_foreign(const char *ch) {
  return strcmp(ch, "telegram") == 0 || strcmp(ch, "whatsapp") == 0 ||
         strcmp(ch, "viber") == 0;
}

/* Drops the steps on foreign messengers; a cascade left with none is
   refused. */
static int foreign(struct accept_rules *ru, struct accept_item *it, int64_t now) {
  if (it->steps[0] == '\0') return 0;   /* SMS alone */
  struct store_step st[STORE_MAX_STEPS], keep[STORE_MAX_STEPS];
  int n = store_steps_parse(it->steps, st), k = 0;
  for (int i = 0; i < n; i++)
    if (!is_foreign(st[i].channel)) keep[k++] = st[i];
  if (k == n) return 0;
  if (k == 0)
    return refuse(ru, it, now, ACCEPT_R_FOREIGN, "cascade",
                  "cascade: every step is a foreign messenger (Telegram, WhatsApp, Viber), "
                  "which this account may not use");
  for (int i = 0; i < n; i++)
    if (is_foreign(st[i].channel))
      decide(ru, it, now, ACCEPT_R_FOREIGN, "skipped", st[i].channel, 0);
  if (store_steps_format(keep, k, it->steps, sizeof it->steps) != 0) return 0;
  it->m.cascade = it->steps;
  return 0;
}

/* The slot of (account_id, e164) in ru->own. */
static struct accept_own_zone *own_slot(const struct accept_rules *ru, int64_t account_id,
                                        const char *e164) {
  return &ru->own[kk_fnv_str(KK_FNV_SEED ^ (uint64_t)account_id, e164) % ACCEPT_OWN_ZONES];
}

/* Keeps zone as the phone's own for its messages' checks when due. */
static void own_keep(struct accept_rules *ru, int64_t account_id, const char *e164,
                     const char *zone) {
  size_t pl = strlen(e164), zl = strlen(zone);
  if (!pl || pl >= sizeof ru->own->phone || zl >= sizeof ru->own->zone) return;
  if (ru->own == NULL) ru->own = kk_xcalloc(ACCEPT_OWN_ZONES, sizeof *ru->own);   /* fini frees */
  struct accept_own_zone *z = own_slot(ru, account_id, e164);
  z->account_id = account_id;
  memcpy(z->phone, e164, pl + 1);
  memcpy(z->zone, zone, zl + 1);
}

/* The phone's own zone kept at accept, or NULL. */
static const char *own_kept(const struct accept_rules *ru, int64_t account_id, const char *e164) {
  if (ru->own == NULL || !e164[0]) return NULL;
  const struct accept_own_zone *z = own_slot(ru, account_id, e164);
  return z->account_id == account_id && strcmp(z->phone, e164) == 0 ? z->zone : NULL;
}

/* The recipient's zone: its own as the ingress gave it (own; NULL or ""
   none), else its contact's through the contact hook, else the numbering
   register's for the number, else the policy's. */
static const char *zone_of(const struct accept_rules *ru, const struct accept *ac,
                           const struct pol_rules *r, const char *own, int64_t account_id,
                           const char *e164) {
  if (own && own[0]) return own;
  if (e164[0] && ac->contact_field) {
    const char *tz = ac->contact_field(ac->contact_ud, account_id, e164, "timezone");
    if (tz && tz[0]) return tz;
  }
  struct phone_plan_info pi;
  if (e164[0] && ru->plan && phone_plan_lookup(ru->plan, e164, &pi) == 0 &&
      pi.timezone && pi.timezone[0])
    return pi.timezone;
  return r->default_tz;
}

#define ZONE_CACHE_MS (5 * 60 * 1000)

/* zone's UTC offset now, from the cache. 0 or KK_ENOENT. */
static int zone_offset(struct accept_rules *ru, const char *zone, int64_t now, int *off) {
  int n = (int)(sizeof ru->zones / sizeof ru->zones[0]);
  for (int i = 0; i < n; i++)
    if (ru->zones[i].until_ms > now && strcmp(ru->zones[i].name, zone) == 0) {
      *off = ru->zones[i].offset_min;
      return 0;
    }
  if (strlen(zone) >= sizeof ru->zones[0].name || kk_tz_offset(zone, now, off) != 0)
    return KK_ENOENT;
  struct accept_zone *z = &ru->zones[ru->zone_next];
  ru->zone_next = (ru->zone_next + 1) % n;
  snprintf(z->name, sizeof z->name, "%s", zone);
  z->offset_min = *off;
  z->until_ms = now + ZONE_CACHE_MS;
  return 0;
}

/* Whether at falls in the quiet hours in zone: 1 with *until their end (in
   the zone itself, so a change of its offset meanwhile counts), 0 outside,
   KK_ENOENT for a zone unknown. */
static int quiet_until(struct accept_rules *ru, const struct pol_window *w, const char *zone,
                       int64_t at, int64_t *until) {
  int off;
  if (zone_offset(ru, zone, at, &off) != 0) return KK_ENOENT;
  int in = pol_window_until(w, NULL, off, at, until);
  if (in != 1) return in;
  return pol_window_until(w, zone, 0, at, until);
}

/* 1 with *until their end when at falls in the quiet hours of r for the
   phone, else 0 (a zone unknown: the policy's own). */
static int quiet_at(struct accept_rules *ru, const struct accept *ac, const struct pol_rules *r,
                    const char *own, int64_t account_id, const char *e164, int64_t at,
                    int64_t *until) {
  const char *zone = zone_of(ru, ac, r, own, account_id, e164);
  int in = quiet_until(ru, &r->quiet, zone, at, until);
  if (in == KK_ENOENT) in = quiet_until(ru, &r->quiet, r->default_tz, at, until);
  return in == 1;
}

static void defer_to(struct accept_item *it, int64_t until) {
  if (until <= it->m.not_before) return;
  /* The validity runs from when it may go out. */
  it->m.expires_at += until - (it->m.not_before > it->m.created_at ? it->m.not_before
                                                                   : it->m.created_at);
  it->m.not_before = until;
}

static int caps(struct accept_rules *ru, const struct pol_rules *r, int cls,
                struct accept_item *it, int64_t now) {
  if (it->e164[0] == '\0' || !r->cls[cls].caps) return 0;
  for (int i = 0; i < r->ncaps; i++) {
    const struct pol_cap *c = &r->caps[i];
    if (c->cls != cls) continue;
    int64_t oldest;
    int have = pol_caps_count(ru->caps, it->m.account_id, cls, it->e164, now, c->per_ms, &oldest);
    if (have < c->max) continue;
    if (r->cap_mode == POL_CAP_DEFER && oldest) {
      defer_to(it, oldest + c->per_ms);
      decide(ru, it, now, ACCEPT_R_CAP, "deferred", NULL, it->m.not_before);
      continue;
    }
    char msg[200];
    snprintf(msg, sizeof msg, "to: %d %s messages to this phone within %llds already (the "
             "account's cap)", have, accept_classes[cls], (long long)(c->per_ms / 1000));
    return refuse(ru, it, now, ACCEPT_R_CAP, "to", msg);
  }
  return 0;
}

/* A cascade of several steps carries the recipient's quiet hours in its
   extra ("quiet": {tz, from, to}), which the cascade's rules read when a
   step falls through; a one-time code (code) or an urgent message does not. */
static int fallthrough_hold(const struct accept *ac, struct accept_rules *ru,
                            const struct pol_rules *r, struct accept_item *it) {
  struct store_step st[STORE_MAX_STEPS];
  if (it->steps[0] == '\0' || store_steps_parse(it->steps, st) < 2) return 0;
  json_t *x = it->m.extra ? json_loads(it->m.extra, 0, NULL) : json_object();
  if (!json_is_object(x)) {
    json_decref(x);
    return 0;
  }
  if (json_object_get(x, "code") || json_is_true(json_object_get(x, "urgent"))) {
    json_decref(x);
    return 0;
  }
  json_object_set_new(x, "quiet", json_pack("{s:s, s:i, s:i}", "tz",
                                            zone_of(ru, ac, r, it->zone, it->m.account_id, it->e164),
                                            "from", r->quiet.from_min, "to", r->quiet.to_min));
  free(it->rules_extra);
  it->rules_extra = json_dumps(x, JSON_COMPACT);   /* freed by accept_item_fini */
  json_decref(x);
  it->m.extra = it->rules_extra;
  return 0;
}

/* The message's own send window (its "window"): outside it in the
   recipient's zone (found as for the quiet hours) at now, it is deferred to
   the window's next opening. Not a policy: it holds with the rules off. */
static void window(struct accept_rules *ru, const struct accept *ac, const struct pol_rules *r,
                   struct accept_item *it, int64_t now) {
  /* the time outside the window, as a window of its own */
  struct pol_window wait = {it->window_to, it->window_from};
  const char *zone = zone_of(ru, ac, r, it->zone, it->m.account_id, it->e164);
  int64_t until;
  int in = quiet_until(ru, &wait, zone, now, &until);
  if (in == KK_ENOENT) in = quiet_until(ru, &wait, r->default_tz, now, &until);
  if (in != 1) return;
  defer_to(it, until);
  decide(ru, it, now, ACCEPT_R_WINDOW, "deferred", NULL, until);
}

int accept_rules_apply(struct accept_rules *ru, const struct accept *ac,
                       const struct store_account *acc, struct accept_item *it, int64_t now) {
  it->decisions[0] = '\0';
  it->m.decisions = NULL;
  it->m.not_before = 0;
  it->m.cap_at = 0;
  if (ru == NULL) return 0;
  const struct pol_rules *r = accept_rules_of(ru, acc->id);
  if (it->window_from != it->window_to && it->e164[0]) window(ru, ac, r, it, now);
  if (ru->off) return 0;
  int cls = pol_class_or_service(it->m.msg_class);
  const struct pol_class_rule *cr = &r->cls[cls];
  if (cr->content && r->content_on && content(ru, r, it, now) != 0) return KK_EINVAL;
  if (r->no_foreign && foreign(ru, it, now) != 0) return KK_EINVAL;
  if (caps(ru, r, cls, it, now) != 0) return KK_EINVAL;
  if (it->zone[0] && !it->dry) own_keep(ru, acc->id, it->e164, it->zone);
  if (cr->quiet && it->e164[0] && r->quiet.from_min != r->quiet.to_min) {
    int64_t at = it->m.not_before > now ? it->m.not_before : now, until;
    if (quiet_at(ru, ac, r, it->zone, it->m.account_id, it->e164, at, &until)) {
      defer_to(it, until);
      decide(ru, it, now, ACCEPT_R_QUIET, "deferred", NULL, until);
    }
  }
  if (cr->fallthrough_quiet && r->quiet.from_min != r->quiet.to_min && fallthrough_hold(ac, ru, r, it) != 0)
    return KK_EINVAL;
  /* Counted when it goes to the store: the next message sees it. */
  for (int i = 0; i < r->ncaps && it->e164[0] && !it->dry; i++)
    if (r->caps[i].cls == cls) {
      it->m.cap_at = it->m.not_before > now ? it->m.not_before : now;
      cap_count(ru, acc->id, cls, it->e164, it->m.cap_at);
      break;
    }
  return 0;
}

static int reason_of(const char *code) {
  for (int i = 0; i < ACCEPT_R_COUNT; i++)
    if (strcmp(reason_names[i], code) == 0) return i;
  return -1;
}

void accept_rules_count(struct accept_rules *ru, const char *code) {
  int r = code ? reason_of(code) : -1;
  if (r == ACCEPT_R_STOP || r == ACCEPT_R_CONSENT || r == ACCEPT_R_MISSING ||
      r == ACCEPT_R_BALANCE)
    ru->refused[r]++;
}

void accept_rules_count_deferred(struct accept_rules *ru, const char *code, uint64_t n) {
  int r = code ? reason_of(code) : -1;
  if (ru && r >= 0) ru->deferred[r] += n;
}

/* 1 when the phone has more messages of class cls within a cap's window
   up to now than the cap allows (the message that came due is among
   them; those deferred past now are not). */
static int over_cap(struct accept_rules *ru, const struct pol_rules *r, int cls,
                    const struct pol_due *d, int64_t now) {
  for (int i = 0; i < r->ncaps; i++) {
    const struct pol_cap *c = &r->caps[i];
    if (c->cls == cls &&
        pol_caps_count_due(ru->caps, d->account_id, cls, d->to, now, c->per_ms) > c->max)
      return 1;
  }
  return 0;
}

/* Appends a decision taken when d came due to its message's decisions. */
static void due_decide(struct accept *ac, const struct pol_due *d, int64_t now, const char *rule,
                       const char *outcome, int64_t until) {
  char at[32], u[32] = "", one[256];
  iso(now, at);
  if (until) iso(until, u);
  snprintf(one, sizeof one,
           "{\"at\":\"%s\",\"rule\":\"%s\",\"outcome\":\"%s\",\"reason\":\"%s\","
           "\"channel\":\"%s\"%s%s%s,\"when\":\"due\"}",
           at, rule, outcome, rule, d->channel ? d->channel : "sms", until ? ",\"until\":\"" : "",
           u, until ? "\"" : "");
  store_msg_decide(ac->store, d->msg_id, one, NULL, NULL);
}

/* 1 with *until when d, of a class that waits out quiet hours, came due
   inside them. */
static int due_in_quiet(struct accept_rules *ru, const struct accept *ac, const struct pol_due *d,
                        int64_t now, int64_t *until) {
  const struct pol_rules *r = accept_rules_of(ru, d->account_id);
  if (!r->cls[pol_class_or_service(d->msg_class)].quiet || r->quiet.from_min == r->quiet.to_min)
    return 0;
  return quiet_at(ru, ac, r, own_kept(ru, d->account_id, d->to), d->account_id, d->to, now,
                  until) &&
         *until > now;
}

static int ids_has(const struct accept_ids *s, int64_t id) {
  for (size_t i = 0; i < sizeof s->id / sizeof s->id[0]; i++)
    if (s->id[i] == id) return 1;
  return 0;
}

static void ids_put(struct accept_ids *s, int64_t id) {
  s->id[s->next] = id;
  s->next = (s->next + 1) % (int)(sizeof s->id / sizeof s->id[0]);
}

/* A decision an engine took itself (d->decided), recorded on the message
   and counted; a deferral that comes back for the same message (roaming is
   looked at again every half hour) once. */
static const char *engine_decided(struct accept *ac, const struct pol_due *d, int64_t now) {
  struct accept_rules *ru = ac->rules;
  int r = reason_of(d->decided);
  if (d->decided_until) {
    if (ru) {
      if (ids_has(&ru->engine_deferred, d->msg_id)) return d->decided;
      ids_put(&ru->engine_deferred, d->msg_id);
      if (r >= 0) ru->deferred[r]++;
    }
    due_decide(ac, d, now, d->decided, "deferred", d->decided_until);
    return d->decided;
  }
  if (ru && r >= 0) ru->refused[r]++;
  due_decide(ac, d, now, d->decided, "refused", 0);
  kk_info(LOGCTX, "message %lld: %s", (long long)d->msg_id, d->decided);
  return d->decided;
}

/* The account's own rules again when d comes due (its policy may have
   changed meanwhile): foreign messengers (the step skipped), prohibited
   content (when the engine gives the text), the caps. NULL or the reason,
   with *outcome. */
static const char *rules_again(struct accept_rules *ru, const struct pol_due *d, int64_t now,
                               const char **outcome) {
  const struct pol_rules *r = accept_rules_of(ru, d->account_id);
  int cls = pol_class_or_service(d->msg_class);
  *outcome = "refused";
  if (r->no_foreign && d->channel && is_foreign(d->channel)) {
    *outcome = "skipped";
    return reason_names[ACCEPT_R_FOREIGN];
  }
  struct pol_content_hit hit;
  if (r->cls[cls].content && r->content_on &&
      (d->text ? content_verdict(ru, r, d->account_id, d->text, &hit)
               : ids_has(&ru->content_refused, d->msg_id))) {
    if (d->text) ids_put(&ru->content_refused, d->msg_id);
    return reason_names[ACCEPT_R_CONTENT];
  }
  if (over_cap(ru, r, cls, d, now)) return reason_names[ACCEPT_R_CAP];
  return NULL;
}

const char *accept_rules_due(void *ud, const struct pol_due *d) {
  struct accept *ac = ud;
  int64_t now = store_now_ms();
  if (d->decided) return engine_decided(ac, d, now);
  struct store_account acc;
  if (d->to == NULL || d->to[0] == '\0' ||
      store_account_get_by_id(ac->store, d->account_id, &acc) != 0)
    return NULL;
  struct store_msg_new m;
  memset(&m, 0, sizeof m);
  m.account_id = d->account_id;
  m.to = d->to;
  m.msg_class = d->msg_class;
  m.cascade = d->channel;   /* the consent of the channel it goes on now */
  struct accept_err err;
  const char *why = NULL, *outcome = "refused";
  struct accept_rules *ru = ac->rules;
  if (accept_checks_run(ac, &acc, &m, &err) != 0) {
    int r = reason_of(err.code);
    why = r >= 0 ? reason_names[r] : "refused";
  } else if (ru && !ru->off) {
    why = rules_again(ru, d, now, &outcome);
  }
  int64_t until;
  if (why == NULL && d->wait_until && ru && !ru->off && due_in_quiet(ru, ac, d, now, &until)) {
    /* Due in the night (kaskad was down when it should have gone, or the
       quiet hours changed): it waits for the morning again. */
    ru->deferred[ACCEPT_R_QUIET]++;
    due_decide(ac, d, now, reason_names[ACCEPT_R_QUIET], "deferred", until);
    *d->wait_until = until;
    return NULL;
  }
  if (ru) (*(why ? &ru->due_refused : &ru->due_allowed))++;
  if (why == NULL) return NULL;
  int r = reason_of(why);
  if (ru && r >= 0 && r != ACCEPT_R_STOP && r != ACCEPT_R_CONSENT)
    (*(strcmp(outcome, "skipped") == 0 ? &ru->skipped[r] : &ru->refused[r]))++;
  else if (ru)
    accept_rules_count(ru, why);
  due_decide(ac, d, now, why, outcome, 0);
  kk_info(LOGCTX, "message %lld: %s when it came due: %s", (long long)d->msg_id, outcome, why);
  return why;
}

void accept_rules_metrics(const struct accept_rules *ru, struct kk_buf *o) {
  kk_buf_puts(o, "# HELP kaskad_policy_decisions_total Policy decisions by reason and outcome.\n"
                 "# TYPE kaskad_policy_decisions_total counter\n");
  for (int i = 0; i < ACCEPT_R_COUNT; i++)
    kk_buf_printf(o,
                  "kaskad_policy_decisions_total{reason=\"%s\",outcome=\"refused\"} %llu\n"
                  "kaskad_policy_decisions_total{reason=\"%s\",outcome=\"deferred\"} %llu\n"
                  "kaskad_policy_decisions_total{reason=\"%s\",outcome=\"skipped\"} %llu\n",
                  reason_names[i], (unsigned long long)ru->refused[i], reason_names[i],
                  (unsigned long long)ru->deferred[i], reason_names[i],
                  (unsigned long long)ru->skipped[i]);
  struct store_cascade_stats cs;
  store_get_cascade_stats(ru->store, &cs);
  kk_buf_printf(o,
                "kaskad_policy_decisions_total{reason=\"quiet_hours\",outcome=\"held\"} %llu\n"
                "# HELP kaskad_policy_due_checks_total The rules again when a deferred or "
                "advertising message or step came due, by outcome.\n"
                "# TYPE kaskad_policy_due_checks_total counter\n"
                "kaskad_policy_due_checks_total{outcome=\"allowed\"} %llu\n"
                "kaskad_policy_due_checks_total{outcome=\"refused\"} %llu\n",
                (unsigned long long)cs.held_quiet, (unsigned long long)ru->due_allowed,
                (unsigned long long)ru->due_refused);
  kk_buf_printf(o, "# HELP kaskad_policy_cap_phones Phones held by the frequency caps.\n"
                   "# TYPE kaskad_policy_cap_phones gauge\nkaskad_policy_cap_phones %zu\n"
                   "# HELP kaskad_policy_cap_bytes Memory the frequency caps' tables take.\n"
                   "# TYPE kaskad_policy_cap_bytes gauge\nkaskad_policy_cap_bytes %zu\n"
                   "# HELP kaskad_policy_cap_uncounted_total Sends the frequency caps did not "
                   "count because a table was full.\n"
                   "# TYPE kaskad_policy_cap_uncounted_total counter\n"
                   "kaskad_policy_cap_uncounted_total %llu\n",
                pol_caps_size(ru->caps), pol_caps_bytes(ru->caps),
                (unsigned long long)pol_caps_full(ru->caps));
}
