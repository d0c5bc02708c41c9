/*
 * pol_words.h - an account's words for replies (GET|PUT /v1/policy):
 * stop_words, start_words, help_words, the answers help_text and
 * stop_reply, stop_list_allows, the classes a stop-listed phone may still
 * get, and replies_webhook, where each reply is posted (its shape here;
 * where it may lead is the caller's check). Pure (parsing a policy
 * document and matching a reply).
 *
 * Matching ignores case, spaces and punctuation (pol_text.h): the whole
 * reply must be one of the words. A key the document leaves out has its
 * default: STOP, СТОП, ОТПИСКА, ОТПИСАТЬСЯ, UNSUBSCRIBE; START, СТАРТ;
 * HELP, ПОМОЩЬ; stop_list_allows [] (a complaint allows service messages
 * at most, pol_stop.h).
 */
#ifndef POL_WORDS_H
#define POL_WORDS_H

#include <stddef.h>

#include "policy/pol_stop.h"

#define POL_WORDS_MAX 32          /* words of one kind */
#define POL_WORD_BYTES 64         /* one word, UTF-8, with its NUL */
#define POL_REPLY_TEXT_BYTES 641  /* an answer: 640 bytes at most */
#define POL_URL_BYTES 501         /* replies_webhook: 500 bytes at most */

struct pol_words {
  int n[3];                                   /* stop, start, help */
  char w[3][POL_WORDS_MAX][POL_WORD_BYTES];
  char help_text[POL_REPLY_TEXT_BYTES];
  char stop_reply[POL_REPLY_TEXT_BYTES];
  unsigned allow;                             /* POL_ALLOW_* */
  char replies_webhook[POL_URL_BYTES];        /* "" none */
};

/* The defaults into w. */
void pol_words_default(struct pol_words *w);
/* The words of a policy document (JSON text; NULL or "": the defaults):
   0, or KK_EINVAL with the field and a message in err (w then holds the
   defaults). Keys it does not know are not its business. */
int pol_words_parse(const char *doc, struct pol_words *w, const char **field, char *err,
                    size_t cap);
/* What a reply asks for by w (pol_stop.h's kinds). */
enum pol_reply_kind pol_words_match(const struct pol_words *w, const char *text, size_t len);
/* w as a policy document's keys: JSON text (malloc'd) of an object with
   stop_words, start_words, help_words, help_text, stop_reply,
   stop_list_allows and replies_webhook (null when none), or NULL. */
char *pol_words_doc(const struct pol_words *w);

#endif
