/*
 * pol_stop.c - the stop-list's rule (pol_stop.h).
 */
#include "policy/pol_stop.h"

#include <string.h>

#include "policy/pol_text.h"

static const char *const names[POL_STOP_NREASONS] = {
    NULL, "reply", "api", "complaint", "link", "import",
};

const char *pol_stop_reason_name(unsigned reason) {
  return reason < POL_STOP_NREASONS ? names[reason] : NULL;
}

unsigned pol_stop_reason_of(const char *name) {
  if (name == NULL) return POL_STOP_NONE;
  for (unsigned i = 1; i < POL_STOP_NREASONS; i++)
    if (strcmp(names[i], name) == 0) return i;
  return POL_STOP_NONE;
}

int pol_stop_refuses(unsigned reason, int msg_class, unsigned allow) {
  if (reason == POL_STOP_NONE || reason >= POL_STOP_NREASONS) return 0;
  if (msg_class == 0) return !(allow & POL_ALLOW_SERVICE);
  if (msg_class == 1) return reason == POL_STOP_COMPLAINT || !(allow & POL_ALLOW_TRANSACTIONAL);
  return 1;
}

static const char *const stop_words[] = {"STOP", "СТОП", "ОТПИСКА", "ОТПИСАТЬСЯ", "UNSUBSCRIBE"};
static const char *const start_words[] = {"START", "СТАРТ"};
static const char *const help_words[] = {"HELP", "ПОМОЩЬ"};
#define N(a) ((int)(sizeof a / sizeof a[0]))

enum pol_reply_kind pol_stop_reply_kind(const char *text, size_t len) {
  if (len > 64) return POL_REPLY_NONE;   /* a word, not a letter */
  if (pol_text_is_one_of(text, len, stop_words, N(stop_words))) return POL_REPLY_STOP;
  if (pol_text_is_one_of(text, len, start_words, N(start_words))) return POL_REPLY_START;
  if (pol_text_is_one_of(text, len, help_words, N(help_words))) return POL_REPLY_HELP;
  return POL_REPLY_NONE;
}

const char *pol_stop_reply_name(enum pol_reply_kind k) {
  static const char *const kinds[] = {NULL, "stop", "start", "help"};
  return (unsigned)k < 4 ? kinds[k] : NULL;
}
