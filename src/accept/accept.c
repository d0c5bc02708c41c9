/*
 * accept.c - the one way in (see accept.h): from parsed messages to stored
 * ones, with a result per message after the commit.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "accept/accept.h"
#include "accept/accept_links.h"
#include "accept/accept_optout.h"
#include "accept/accept_rules.h"
#include "cascade/cascade.h"
#include "channel/chan_settings.h"
#include "core/kk_buf.h"
#include "core/kk_crypto.h"
#include "core/kk_err.h"
#include "core/kk_log.h"
#include "core/kk_mem.h"
#include "core/kk_status.h"
#include "dispatch/dispatch.h"
#include "phone/phone.h"
#include "sms/sms_enc.h"
#include "store/store_money.h"

#define LOGCTX "accept"

const char *const accept_classes[3] = {"service", "transactional", "advertising"};

static int refuse(struct accept_item *it, int status, const char *code, const char *field,
                  const char *fmt, const char *detail) {
  struct accept_err *e = &it->err;
  e->status = status;
  e->code = code;
  e->field = field;
  snprintf(e->message, sizeof e->message, fmt, detail ? detail : "");
  it->result = ACCEPT_REFUSED;
  return KK_EINVAL;
}

void accept_init(struct accept *ac, struct store *store, struct dispatch *dispatch,
                 struct cascade *cascade, const long long ttl_ms[3]) {
  memset(ac, 0, sizeof *ac);
  ac->store = store;
  ac->dispatch = dispatch;
  ac->cascade = cascade;
  memcpy(ac->ttl_ms, ttl_ms, sizeof ac->ttl_ms);
}

int accept_check_add(struct accept *ac, const char *name, accept_check_fn fn, void *ud) {
  if (ac->nchecks == ACCEPT_MAX_CHECKS) return KK_ENOSPC;
  ac->checks[ac->nchecks++] = (struct accept_check){name, fn, ud};
  return 0;
}

/* ---- one message on its own ---------------------------------------------------- */

/*
 * "msg_" and 20 base-32 characters: 40 bits of milliseconds since 2020, then
 * 60 random bits. Ids made later sort later, so the store's unique index on
 * them grows at its end (a few pages per commit) instead of every insert
 * dirtying a random page; the random part keeps them unguessable.
 */
static void new_public_id(struct accept *ac, char out[40]) {
  unsigned char b[8];
  accept_rand_take(&ac->rand, b, sizeof b);
  static const char alphabet[] = "0123456789abcdefghjkmnpqrstvwxyz";
  uint64_t ms = (uint64_t)(store_now_ms() - 1577836800000LL) & ((1ULL << 40) - 1);
  uint64_t rnd = 0;
  for (int i = 0; i < 8; i++) rnd = (rnd << 8) | b[i];
  rnd >>= 4; /* 60 bits */
  memcpy(out, "msg_", 4);
  for (int i = 0; i < 8; i++) out[4 + i] = alphabet[(ms >> (35 - 5 * i)) & 31];
  for (int i = 0; i < 12; i++) out[12 + i] = alphabet[(rnd >> (55 - 5 * i)) & 31];
  out[24] = '\0';
}

/*
 * The digest kept with an idempotency key: SHA-256 over the normalised
 * fields that make the message what it is (the phone as E.164, the steps or
 * the saved cascade's name, the per-channel parts as validated), so that a
 * repeat of the same message matches however its request was written, and
 * another message under the same key does not. The account's default
 * sender is not in it: a repeat stays a repeat when that default changes.
 * Stored digests are compared with new ones: what goes in must not change.
 */
static void digest_add(struct kk_buf *b, const char *name, const char *v) {
  /* name=<length>:<bytes>; a missing value differs from an empty one (the
     bytes as "%s=%zu:%s\n" would write them, without formatting each) */
  kk_buf_puts(b, name);
  if (v == NULL) {
    kk_buf_append(b, "=-\n", 3);
    return;
  }
  size_t n = strlen(v), k = n;
  char len[24], *p = len + sizeof len;   /* "=<n>:" written from its end */
  *--p = ':';
  do *--p = (char)('0' + k % 10);
  while ((k /= 10) > 0);
  *--p = '=';
  kk_buf_append(b, p, (size_t)(len + sizeof len - p));
  kk_buf_append(b, v, n);
  kk_buf_append(b, "\n", 1);
}

static void request_digest(const struct accept_item *it, long long ttl, char out[65]) {
  const struct store_msg_new *m = &it->m;
  struct kk_buf b;
  kk_buf_init(&b, 1 << 20);
  digest_add(&b, "to", it->e164);
  digest_add(&b, "text", m->text);
  digest_add(&b, "class", m->msg_class);
  kk_buf_printf(&b, "ttl=%lld\n", ttl);
  digest_add(&b, "sender", m->sender);
  digest_add(&b, "cascade", it->cascade ? it->cascade : "");
  digest_add(&b, "cascade_name", it->cascade_name ? it->cascade_name : "");
  digest_add(&b, "extra", it->digest_extra ? it->digest_extra : it->extra);
  digest_add(&b, "callback_url", m->callback_url);
  digest_add(&b, "campaign", m->campaign);
  if (it->send_at) kk_buf_printf(&b, "send_at=%lld\n", (long long)it->send_at);
  if (it->window_from != it->window_to)   /* absent: the digest stays as it was */
    kk_buf_printf(&b, "window=%d-%d\n", it->window_from, it->window_to);
  uint8_t h[32];
  kk_sha256(b.p ? b.p : "", b.len, h);
  kk_hex(h, sizeof h, out);
  kk_buf_fini(&b);
}

/* 1 when the steps text has a step on channel. */
static int steps_have(const char *steps, const char *channel) {
  struct store_step st[STORE_MAX_STEPS];
  int n = store_steps_parse(steps, st);
  for (int i = 0; i < n; i++)
    if (strcmp(st[i].channel, channel) == 0) return 1;
  return 0;
}

/* The number as E.164 digits into it->e164 ("" when none; a number given
   must be one). 0 or KK_EINVAL. */
static int normalise_number(struct accept_item *it, int sms) {
  it->e164[0] = '\0';
  if (it->to && phone_normalize(it->to, it->e164, sizeof it->e164) != 0)
    return refuse(it, 422, "invalid_phone", "to", "to: \"%s\" is not a valid phone number",
                  it->to);
  if (sms && it->e164[0] == '\0')
    return refuse(it, 422, "invalid_phone", "to", "to: a phone number is required for SMS%s",
                  NULL);
  return 0;
}

/* The class's index in accept_classes, or KK_EINVAL with it->err. */
static int classify(struct accept_item *it) {
  const char *cls = it->msg_class ? it->msg_class : "service";
  for (int i = 0; i < 3; i++)
    if (strcmp(cls, accept_classes[i]) == 0) return i;
  return refuse(it, 422, "invalid_class", "class",
                "class: must be service, transactional or advertising%s", NULL);
}

/* What the recipient reads: the text as given, or a template's as
   accept_render_template rendered it (accept_tpl.c) before this. */
static const char *render(struct accept_item *it) { return it->text; }

/* Encoding and segments of the rendered text. 0 or KK_EINVAL with it->err. */
static int encode(struct accept_item *it, const char *text, size_t len, int sms) {
  struct sms_info info;
  int rc = sms_analyze(text, len, &info);
  if (rc == KK_ETOOBIG && sms) {
    char lim[64];
    snprintf(lim, sizeof lim, "%d SMS segments (%d needed)", SMS_MAX_PARTS, info.segments);
    return refuse(it, 422, "text_too_long", "text", "text: longer than %s", lim);
  }
  if (rc != 0 && rc != KK_ETOOBIG)
    return refuse(it, 422, "invalid_text", "text",
                  "text: must be valid UTF-8 without NUL characters%s", NULL);
  if (rc == KK_ETOOBIG) info.segments = SMS_MAX_PARTS;
  it->m.encoding = info.coding == SMS_CODING_UCS2 ? "ucs2" : "gsm7";
  it->m.segments = info.segments;
  return 0;
}

/* ---- the checks of one message, one at a time ------------------------------------ */

int accept_item_sms(const struct accept_item *it) {
  /* A saved cascade is resolved later (accept_submit), which checks what
     its SMS step needs then. */
  return !(it->cascade_name && it->cascade_name[0]) &&
         (!(it->cascade && it->cascade[0]) || steps_have(it->cascade, "sms"));
}

int accept_check_number(struct accept_item *it, int sms) { return normalise_number(it, sms); }

int accept_check_text(struct accept_item *it, int sms) {
  if (it->text == NULL || it->text_len == 0)
    return refuse(it, 422, "invalid_text", "text", "text: must not be empty%s", NULL);
  if (it->text_len > ACCEPT_MAX_TEXT)
    return refuse(it, 422, "text_too_long", "text", "text: longer than %s bytes", "4096");
  return encode(it, render(it), it->text_len, sms);
}

int accept_check_class(struct accept_item *it) { return classify(it) < 0 ? KK_EINVAL : 0; }

int accept_prepare(struct accept *ac, int64_t account_id, const char *route, int64_t now,
                   struct accept_item *it) {
  struct store_msg_new *m = &it->m;
  memset(m, 0, sizeof *m);
  it->result = ACCEPT_PENDING;
  it->err.code = NULL;
  int sms = accept_item_sms(it);
  if (accept_check_number(it, sms) != 0) return KK_EINVAL;
  /* The template hook: a send by template not rendered by its ingress. */
  if (it->template_name && it->tpl_text == NULL &&
      accept_render_template(ac, account_id, it->cascade, it) != 0)
    return KK_EINVAL;
  /* {{unsubscribe}}: the recipient's link (accept_optout.h) */
  if (accept_optout_link(ac, account_id, it) != 0) return KK_EINVAL;
  if (accept_check_text(it, sms) != 0) return KK_EINVAL;
  const char *text = render(it);
  int cls = classify(it);
  if (cls < 0) return KK_EINVAL;
  long long ttl = it->ttl_ms > 0 ? it->ttl_ms : ac->ttl_ms[cls];

  snprintf(it->route, sizeof it->route, "%s", route ? route : "");
  it->steps[0] = '\0';
  if (it->cascade && it->cascade[0]) snprintf(it->steps, sizeof it->steps, "%s", it->cascade);
  new_public_id(ac, it->public_id);
  m->account_id = account_id;
  m->public_id = it->public_id;
  m->idem_key = it->idem_key;
  m->to = it->e164;
  m->sender = it->sender;
  m->text = text;
  m->msg_class = accept_classes[cls];
  m->route = it->route;
  m->callback_url = it->callback_url;
  m->cascade = it->steps[0] ? it->steps : NULL;
  m->extra = it->extra;
  m->campaign = it->campaign;
  m->variant = it->variant;
  m->created_at = now;
  m->expires_at = now + ttl;
  /* Only a message with a key can be repeated, so only it needs the digest. */
  it->req_hash[0] = '\0';
  if (it->idem_key) request_digest(it, ttl, it->req_hash);
  m->req_hash = it->req_hash[0] ? it->req_hash : NULL;
  /* Tracked links after the digest: their codes are new each time, and a
     message made again under its key is the same message. */
  return accept_links_make(ac, it);
}

/* ---- what the account and the node decide ---------------------------------------- */

/*
 * The last step must be able to start before the message expires: the
 * timeouts of the steps before it add up to the least time it can take to
 * get there (a messenger step's time runs from the provider's answer, so it
 * can take longer), and a cascade whose last step could only start after
 * the validity ended is refused rather than silently cut short.
 */
static int cascade_fits_ttl(struct accept_item *it) {
  struct store_step st[STORE_MAX_STEPS];
  int n = it->steps[0] ? store_steps_parse(it->steps, st) : 0;
  long long before_last = 0;
  for (int i = 0; i + 1 < n; i++) before_last += st[i].timeout_ms;
  long long ttl = it->m.expires_at - it->m.created_at;
  if (n < 2 || before_last < ttl) return 0;
  refuse(it, 422, "timeout_exceeds_ttl", "cascade", "%s", NULL);
  snprintf(it->err.message, sizeof it->err.message,
           "cascade: the timeouts before the last step add up to %llds, not less than the "
           "message's validity (ttl %llds); shorten them or give a longer ttl",
           before_last / 1000, ttl / 1000);
  return KK_EINVAL;
}

/* 1 when the message has an address for at least one step of its cascade
   (as the cascade's run finds them: a step without one is skipped, so with
   none nothing could ever go out). */
static int any_address(const struct accept_item *it) {
  if (it->steps[0] == '\0') return it->e164[0] != '\0';   /* SMS alone */
  struct store_step st[STORE_MAX_STEPS];
  int n = store_steps_parse(it->steps, st);
  /* a step the phone serves: nothing else to read (most cascades end so) */
  for (int i = 0; i < n; i++) {
    enum kk_chan c = kk_chan_parse(st[i].channel);
    const char *field = c == KK_CHAN_NONE ? "" : kk_chan_address_field(c);
    if ((!field || (c != KK_CHAN_NONE && kk_chan_phone_fallback(c))) && it->e164[0]) return 1;
  }
  json_t *extra = it->m.extra ? json_loads(it->m.extra, 0, NULL) : NULL;
  int found = 0;
  for (int i = 0; i < n && !found; i++) {
    enum kk_chan c = kk_chan_parse(st[i].channel);
    const char *field = c == KK_CHAN_NONE ? NULL : kk_chan_address_field(c);
    const char *a = field ? json_string_value(json_object_get(extra, field)) : NULL;
    found = a && a[0];
  }
  json_decref(extra);
  return found;
}

/* A saved cascade by name, the SMS route, the default SMS sender. */
static int resolve(struct accept *ac, int64_t account_id, struct accept_item *it,
                   const char *default_sender) {
  if (it->cascade_name && it->cascade_name[0]) {
    char *steps = NULL;
    if (store_cascade_get(ac->store, account_id, it->cascade_name, &steps) != 0)
      return refuse(it, 422, "unknown_cascade", "cascade", "cascade: no saved cascade \"%s\"",
                    it->cascade_name);
    snprintf(it->steps, sizeof it->steps, "%s", steps);
    free(steps);
    it->m.cascade = it->steps;
    if (steps_have(it->steps, "sms") && it->e164[0] == '\0')
      return refuse(it, 422, "invalid_phone", "to", "to: a phone number is required for SMS%s",
                    NULL);
  }
  if (!any_address(it))
    return refuse(it, 422, "no_address", "cascade",
                  "cascade: the message has an address for none of its steps (%s)",
                  "a phone for SMS, vk_id, telegram_chat_id, viber_id or email");
  if (cascade_fits_ttl(it) != 0) return KK_EINVAL;
  int sms = it->steps[0] == '\0' || steps_have(it->steps, "sms");
  if (sms && it->route[0] == '\0') {
    /* No routes at all may pass (one is being added); several without a
       default_route will not until the operator chooses one. */
    int several = dispatch_route_count(ac->dispatch) > 0;
    return refuse(it, several ? 422 : 503, "no_route", NULL, "%s",
                  several ? "no SMS route for this account: the operator must set default_route "
                            "or the account's sms_route"
                          : "no SMS route is configured; the operator must add one");
  }
  if (it->m.sender == NULL && default_sender && default_sender[0])
    it->m.sender = default_sender;
  return 0;
}

/* What an account may send: its registered senders and allowed countries. */
struct acct_policy {
  json_t *senders;           /* array of strings */
  json_t *countries;         /* array of strings; empty: all */
  const char *operator_sender;  /* the operator's default: needs no registration */
};

static json_t *json_list(const char *text) {
  json_t *v = json_loads(text[0] ? text : "[]", 0, NULL);
  if (json_is_array(v)) return v;
  json_decref(v);
  return json_array();
}

static int in_list(json_t *arr, const char *s) {
  size_t i;
  json_t *x;
  json_array_foreach(arr, i, x) if (strcmp(json_string_value(x), s) == 0) return 1;
  return 0;
}

/* Checks a message's sender (a number without its '+' as registered) and
   country. 0, or KK_EINVAL with it->err. */
static int acct_policy_check(const struct acct_policy *p, struct accept_item *it) {
  const char *sender = it->m.sender;
  /* Alphanumeric and numeric senders alike: a number is as easy to pass
     off as someone else's as a name. */
  if (sender && sender != p->operator_sender &&
      !in_list(p->senders, sender[0] == '+' ? sender + 1 : sender)) {
    refuse(it, 422, "sender_not_allowed", "sender", "%s", NULL);
    snprintf(it->err.message, sizeof it->err.message,
             "sender: \"%.16s\" is not registered for this account; ask the operator", sender);
    return KK_EINVAL;
  }
  if (json_array_size(p->countries) > 0 && it->e164[0]) {
    char iso[3] = "??";
    phone_country(it->e164, iso);
    if (!in_list(p->countries, iso)) {
      refuse(it, 422, "country_not_allowed", "to", "%s", NULL);
      snprintf(it->err.message, sizeof it->err.message,
               "to: numbers of %s are not allowed for this account", iso);
      return KK_EINVAL;
    }
  }
  return 0;
}

int accept_checks_run(const struct accept *ac, const struct store_account *acc,
                      const struct store_msg_new *m, struct accept_err *err) {
  struct accept_view v = {.account = acc, .msg = m};
  for (int i = 0; i < ac->nchecks; i++) {
    memset(err, 0, sizeof *err);
    if (ac->checks[i].fn(ac->checks[i].ud, &v, err) == 0) continue;
    if (err->status == 0) err->status = 422;
    if (err->code == NULL) err->code = "refused";
    return KK_EINVAL;
  }
  return 0;
}

/* The policy chain, in the order the checks were added. */
static int run_checks(const struct accept *ac, const struct store_account *acc,
                      struct accept_item *it) {
  struct accept_err e;
  if (accept_checks_run(ac, acc, &it->m, &e) == 0) return 0;
  it->err = e;
  it->result = ACCEPT_REFUSED;
  return KK_EINVAL;
}

/* ---- storing and the answer -------------------------------------------------------- */

static void on_stored(void *arg, int rc) {
  struct accept_req *r = arg;
  if (rc != 0) {
    kk_error(LOGCTX, "messages not stored: %s", kk_strerror(rc));
    rc = KK_ESTORE;
  }
  for (int i = 0; rc == 0 && i < r->nmsgs; i++) {
    struct accept_item *it = &r->items[r->msg_item[i]];
    it->m = r->msgs[i];
    if (it->m.mismatch) {
      it->result = ACCEPT_MISMATCH;
      it->err.status = 422;
      it->err.code = "idempotency_mismatch";
      it->err.field = "idempotency_key";
      snprintf(it->err.message, sizeof it->err.message,
               "idempotency_key: already used within 24 h for %s, a request with other "
               "fields; use a new key for a new message", it->m.dup_public_id);
    } else if (it->m.no_balance) {
      it->result = ACCEPT_REFUSED;
      it->err.status = 422;
      it->err.code = "insufficient_balance";
      snprintf(it->err.message, sizeof it->err.message,
               "the account's balance does not cover this message (GET /v1/account)");
      if (r->ac->rules) accept_rules_count(r->ac->rules, it->err.code);
    } else {
      it->result = it->m.duplicate ? ACCEPT_DUPLICATE : ACCEPT_STORED;
    }
  }
  free(r->msgs);
  free(r->msg_item);
  r->msgs = NULL;
  r->msg_item = NULL;
  r->done(r->ud, r, rc);
}

/* The price of an SMS segment on the route the dispatcher is expected to
   choose for it, and the most it can be charged (what a prepaid account's
   message is held at). */
static void quote(const struct accept *ac, const struct store_account *acc,
                  struct accept_item *it) {
  it->m.sms_priced = 0;
  it->m.sms_quoted = 0;
  if (it->e164[0] == '\0' || it->route[0] == '\0') return;
  struct dispatch_quote q;
  dispatch_quote(ac->dispatch, acc, it->route, it->e164, it->m.msg_class, &q);
  it->m.sms_priced = q.expected >= 0;
  it->m.sms_price = q.expected >= 0 ? q.expected * STORE_MONEY_PER_HUNDREDTH : 0;
  it->m.sms_quoted = 1;
  it->m.sms_most = q.most >= 0 ? q.most * STORE_MONEY_PER_HUNDREDTH : -1;
  it->m.sms_table = q.table;
}

/* A message asked for later (send_at) waits as one the policy deferred:
   stored scheduled, its first step due then, its validity from then. The
   policy, judged at that time, may defer it further. */
static void schedule(struct accept_item *it) {
  struct store_msg_new *m = &it->m;
  if (it->send_at <= m->created_at || it->send_at <= m->not_before) return;
  m->expires_at += it->send_at - (m->not_before > m->created_at ? m->not_before : m->created_at);
  m->not_before = it->send_at;
}

int accept_submit(struct accept *ac, struct accept_req *r) {
  /* Answered at once: a message accepted now would wait for the same lock. */
  if (store_degraded(ac->store)) return KK_EAGAIN;
  struct store_account acc;
  if (store_account_get_by_id(ac->store, r->account_id, &acc) != 0) return KK_ENOENT;
  r->ac = ac;
  const char *route = dispatch_route_pick(ac->dispatch, acc.sms_route);
  int64_t scope = 0;
  const struct chan_cfg *sms_cfg =
      ac->cascade ? chan_settings_get(cascade_engine(ac->cascade), r->account_id, "sms", &scope)
                  : NULL;
  const char *default_sender = sms_cfg ? sms_cfg->sender : NULL;
  struct acct_policy pol = {json_list(acc.senders), json_list(acc.countries),
                            /* the operator's default needs no registration */
                            sms_cfg && scope != r->account_id ? sms_cfg->sender : NULL};
  /* Freed in on_stored. */
  r->msgs = kk_xcalloc((size_t)r->n, sizeof *r->msgs);
  r->msg_item = kk_xcalloc((size_t)r->n, sizeof *r->msg_item);
  r->nmsgs = 0;
  int64_t now = store_now_ms();
  for (int i = 0; i < r->n; i++) {
    struct accept_item *it = &r->items[i];
    it->dry = r->dry;
    if (it->result == ACCEPT_REFUSED) {   /* by the ingress (a template's variables) */
      if (ac->rules && !it->dry) accept_rules_count(ac->rules, it->err.code);
      continue;
    }
    if (accept_prepare(ac, r->account_id, route, now, it) != 0 ||
        resolve(ac, r->account_id, it, default_sender) != 0 ||
        acct_policy_check(&pol, it) != 0 || run_checks(ac, &acc, it) != 0 ||
        accept_rules_apply(ac->rules, ac, &acc, it, it->send_at > now ? it->send_at : now) != 0) {
      /* the reasons the rules did not count themselves (stop_listed,
         no_consent, missing_variable) */
      if (ac->rules && !it->dry) accept_rules_count(ac->rules, it->err.code);
      continue;
    }
    schedule(it);
    quote(ac, &acc, it);
    r->msg_item[r->nmsgs] = i;
    r->msgs[r->nmsgs++] = it->m;
  }
  json_decref(pol.senders);
  json_decref(pol.countries);
  if (r->dry) {
    for (int i = 0; i < r->nmsgs; i++) r->items[r->msg_item[i]].result = ACCEPT_STORED;
    r->nmsgs = 0;
  }
  if (r->nmsgs == 0) {
    on_stored(r, 0);   /* every item refused: answer with the refusals */
    return 0;
  }
  store_msg_insert(ac->store, r->msgs, r->nmsgs, on_stored, r);
  return 0;
}
