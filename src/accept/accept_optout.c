/*
 * accept_optout.c - the stop-list's and the consent's checks (see
 * accept_optout.h).
 */
#include "accept/accept_optout.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "accept/accept_rules.h"
#include "core/kk_mem.h"
#include "policy/pol_consent.h"
#include "policy/pol_stop.h"
#include "policy/pol_words.h"
#include "store/store_optout.h"

static int class_index(const char *c) {
  if (c && strcmp(c, "advertising") == 0) return 2;
  if (c && strcmp(c, "transactional") == 0) return 1;
  return 0;
}

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
      !pol_stop_refuses(reason, class_index(m->msg_class), allowed(ac, v->account->id)))
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
  if (class_index(m->msg_class) != 2 || m->to == NULL || m->to[0] == '\0') return 0;
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

int accept_optout_add(struct accept *ac) {
  int rc = accept_check_add(ac, "stop_list", check_stop, ac);
  return rc != 0 ? rc : accept_check_add(ac, "consent", check_consent, ac);
}
