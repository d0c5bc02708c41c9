/*
 * api_optout_reply.c - the answers to a person's stop, start or help word.
 * The store has already acted on the word in the commit that stored the
 * reply (store_optout_inbound); its STORE_NOTE_OPTOUT_REPLY note brings the
 * answer here, which goes back on the channel the word came on as a
 * service message through the accept path: once per reply (its
 * idempotency key), and past the stop-list (the law asks for the
 * confirmation of an opt-out).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "accept/accept_optout.h"
#include "accept/accept_rules.h"
#include "api/api_optout.h"
#include "core/kk_err.h"
#include "core/kk_log.h"
#include "core/kk_mem.h"
#include "policy/pol_words.h"

#define LOGCTX "api"

/* The answer to a stop (the account's stop_reply), a start, or a help
   word (its help_text); w holds the account's words. */
static const char *answer_of(const char *what, const struct pol_words *w) {
  if (strncmp(what, "stop", 4) == 0) return w->stop_reply;
  if (strncmp(what, "start", 5) == 0)
    return "Вы снова подписаны на рассылку. Чтобы отписаться, отправьте СТОП.";
  return w->help_text;
}

/* One answer under way; freed in on_sent. */
struct answer {
  struct accept_req r;
  struct accept_item it;
  char phone[72];
  char key[100];
  char steps[64];
  char *extra;              /* the messenger's address of the person, or NULL */
  struct pol_words words;   /* the account's (the answer's text is in it) */
};

/* {"<the channel's address field>":"user"} (malloc'd), or NULL for a
   channel that answers by phone. */
static char *address_of(const char *channel, const char *user) {
  const char *field = strcmp(channel, "vk") == 0        ? "vk_id"
                      : strcmp(channel, "viber") == 0    ? "viber_id"
                      : strcmp(channel, "telegram") == 0 ? "telegram_chat_id"
                                                         : NULL;
  if (field == NULL || user == NULL || user[0] == '\0') return NULL;
  json_t *o = json_pack("{s:s}", field, user);
  char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
  json_decref(o);
  return s;
}

static void on_sent(void *ud, struct accept_req *r, int rc) {
  struct answer *w = ud;
  if (rc != 0 || r->items[0].result == ACCEPT_REFUSED)
    kk_warnx(LOGCTX, "the answer to %s's reply was not sent: %s", w->phone,
             rc ? kk_strerror(rc) : r->items[0].err.message);
  accept_item_fini(&w->it);
  free(w->extra);
  free(w);
}

static void answer(struct api *a, int64_t account_id, const char *phone, const char *what,
                   int64_t at) {
  struct answer *w = kk_xcalloc(1, sizeof *w);
  snprintf(w->phone, sizeof w->phone, "%s", phone);
  /* "stop|start|help channel[ user]" */
  char channel[24] = "sms";
  const char *c = strchr(what, ' ');
  const char *user = c ? strchr(c + 1, ' ') : NULL;
  if (c) snprintf(channel, sizeof channel, "%.*s", (int)(user ? user - c - 1 : (long)strlen(c + 1)), c + 1);
  if (strcmp(channel, "sms") != 0)
    snprintf(w->steps, sizeof w->steps, "%s/delivered/0", channel);
  w->extra = address_of(channel, user ? user + 1 : NULL);
  accept_optout_exempt_key(w->key, sizeof w->key, phone, at);
  w->it.to = w->phone;
  const char *field;
  char err[8];
  (void)pol_words_parse(accept_rules_doc(a->accept.rules, account_id), &w->words, &field, err,
                        sizeof err);
  w->it.text = answer_of(what, &w->words);
  w->it.text_len = strlen(w->it.text);
  w->it.msg_class = "service";
  w->it.idem_key = w->key;
  w->it.cascade = w->steps[0] ? w->steps : NULL;
  w->it.extra = w->extra;
  w->r.account_id = account_id;
  w->r.items = &w->it;
  w->r.n = 1;
  w->r.done = on_sent;
  w->r.ud = w;
  int rc = accept_submit(&a->accept, &w->r);
  if (rc != 0) {
    kk_warnx(LOGCTX, "the answer to %s's reply was not sent: %s", phone, kk_strerror(rc));
    accept_item_fini(&w->it);
    free(w->extra);
    free(w);
  }
}

void api_optout_notes(void *ud, const struct store_note *notes, int n) {
  struct api *a = ud;
  for (int i = 0; i < n; i++)
    if (notes[i].kind == STORE_NOTE_OPTOUT_REPLY && notes[i].cfg && notes[i].cfg->text)
      answer(a, notes[i].account_id, notes[i].cfg->name, notes[i].cfg->text, notes[i].at);
}
