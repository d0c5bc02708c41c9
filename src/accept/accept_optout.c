/*
 * accept_optout.c - the stop-list's and the consent's checks (see
 * accept_optout.h).
 */
#include "accept/accept_optout.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "accept/accept_rules.h"
#include "core/kk_crypto.h"
#include "core/kk_err.h"
#include "core/kk_mem.h"
#include "policy/pol_consent.h"
#include "policy/pol_rules.h"
#include "policy/pol_stop.h"
#include "policy/pol_words.h"
#include "store/store_optout.h"

/* The classes an account lets reach a stop-listed number (POL_ALLOW_*):
   its policy's stop_list_allows. Read only for a listed number, and parsed
   only when the document names it. */
static unsigned allowed(const struct accept *ac, int64_t account_id) {
  const char *doc = ac->rules ? accept_rules_doc(ac->rules, account_id) : NULL;
  if (doc == NULL || strstr(doc, "\"stop_list_allows\"") == NULL) return 0;
  struct pol_words *w = kk_xmalloc(sizeof *w);
  const char *field;
  char err[8];
  (void)pol_words_parse(doc, w, &field, err, sizeof err);
  unsigned allow = w->allow;
  free(w);
  return allow;
}

#define EXEMPT "\001optout:"

void accept_optout_exempt_key(char *out, size_t cap, const char *phone, long long at) {
  snprintf(out, cap, EXEMPT "%s:%lld", phone, at);
}

static int check_stop(void *ud, const struct accept_view *v, struct accept_err *err) {
  struct accept *ac = ud;
  const struct store_msg_new *m = v->msg;
  if (m->to == NULL || m->to[0] == '\0') return 0;
  if (m->idem_key && strncmp(m->idem_key, EXEMPT, strlen(EXEMPT)) == 0) return 0;
  unsigned reason = store_stop_reason(ac->store, v->account->id, m->to);
  if (reason == POL_STOP_NONE ||
      !pol_stop_refuses(reason, pol_class_or_service(m->msg_class),
                        allowed(ac, v->account->id)))
    return 0;
  err->code = "stop_listed";
  err->field = "to";
  snprintf(err->message, sizeof err->message, "%s is on the stop-list (%s)", m->to,
           pol_stop_reason_name(reason));
  return 1;
}

static int check_consent(void *ud, const struct accept_view *v, struct accept_err *err) {
  struct accept *ac = ud;
  const struct store_msg_new *m = v->msg;
  if (!pol_class_rule_named(m->msg_class)->consent || m->to == NULL || m->to[0] == '\0')
    return 0;
  /* the cascade's first channel ("channel/wait/timeout,..."; none: SMS) */
  char first[20] = "sms";
  if (m->cascade && m->cascade[0]) {
    size_t n = strcspn(m->cascade, "/,");
    if (n < sizeof first) {
      memcpy(first, m->cascade, n);
      first[n] = '\0';
    }
  }
  if (pol_consent_covers(store_consent_mask(ac->store, v->account->id, m->to), first)) return 0;
  err->code = "no_consent";
  err->field = "to";
  snprintf(err->message, sizeof err->message,
           "advertising to %s needs a current consent (PUT /v1/consents/%s)", m->to, m->to);
  return 1;
}

/* The code of (account, phone): 32 base32 letters of an HMAC under the
   account's secret. 0, or KK_ENOENT / KK_EIO. */
static int link_code(const struct accept *ac, int64_t account_id, const char *phone,
                     char out[33]) {
  struct store_account acc;
  if (store_account_get_by_id(ac->store, account_id, &acc) != 0) return KK_ENOENT;
  static const char label[] = "unsubscribe";
  const void *parts[2] = {label, phone};
  size_t lens[2] = {sizeof label, strlen(phone)};
  uint8_t mac[32];
  if (kk_hmac_sha256(acc.callback_secret, strlen(acc.callback_secret), parts, lens, 2, mac) != 0)
    return KK_EIO;
  static const char b32[] = "abcdefghijklmnopqrstuvwxyz234567";
  for (int i = 0; i < 32; i++) {   /* 5 bits each: 160 bits of the MAC */
    int bit = i * 5, byte = bit / 8, sh = bit % 8;
    unsigned v = ((unsigned)mac[byte] << 8 | mac[byte + 1]) >> (11 - sh);
    out[i] = b32[v & 31];
  }
  out[32] = '\0';
  return 0;
}

int accept_optout_url(const struct accept *ac, int64_t account_id, const char *phone, char *url,
                      size_t cap) {
  char code[33];
  if (ac->public_url == NULL || phone == NULL || phone[0] == '\0') return KK_ENOENT;
  int rc = link_code(ac, account_id, phone, code);
  if (rc != 0) return rc;
  size_t base = strlen(ac->public_url);
  while (base > 0 && ac->public_url[base - 1] == '/') base--;
  snprintf(url, cap, "%.*s/u/%s", (int)base, ac->public_url, code);
  store_unsub_put(ac->store, code, account_id, phone);
  return 0;
}

int accept_optout_link(const struct accept *ac, int64_t account_id, struct accept_item *it) {
  if (it->text == NULL || ac->public_url == NULL || it->e164[0] == '\0' ||
      memmem(it->text, it->text_len, ACCEPT_UNSUBSCRIBE, strlen(ACCEPT_UNSUBSCRIBE)) == NULL)
    return 0;
  char url[ACCEPT_UNSUB_URL_MAX];
  if (accept_optout_url(ac, account_id, it->e164, url, sizeof url) != 0) return 0;
  /* The text with each placeholder replaced (the item's to free). */
  size_t ph = strlen(ACCEPT_UNSUBSCRIBE), ul = strlen(url), n = 0;
  for (const char *p = it->text; (p = memmem(p, it->text_len - (size_t)(p - it->text),
                                            ACCEPT_UNSUBSCRIBE, ph)) != NULL; p += ph)
    n++;
  size_t len = it->text_len - n * ph + n * ul;
  if (len > ACCEPT_MAX_TEXT) {
    it->result = ACCEPT_REFUSED;
    it->err.status = 422;
    it->err.code = "text_too_long";
    it->err.field = "text";
    snprintf(it->err.message, sizeof it->err.message,
             "text: longer than %d bytes with the unsubscribe link", ACCEPT_MAX_TEXT);
    return KK_EINVAL;
  }
  char *out = kk_xmalloc(len + 1), *o = out;
  const char *p = it->text, *end = it->text + it->text_len;
  for (const char *q; (q = memmem(p, (size_t)(end - p), ACCEPT_UNSUBSCRIBE, ph)) != NULL;
       p = q + ph) {
    memcpy(o, p, (size_t)(q - p));
    o += q - p;
    memcpy(o, url, ul);
    o += ul;
  }
  memcpy(o, p, (size_t)(end - p));
  out[len] = '\0';
  free(it->tpl_text);
  it->tpl_text = out;
  it->text = out;
  it->text_len = len;
  return 0;
}

int accept_optout_add(struct accept *ac) {
  int rc = accept_check_add(ac, "stop_list", check_stop, ac);
  return rc != 0 ? rc : accept_check_add(ac, "consent", check_consent, ac);
}
