/*
 * fuzz_optout.c - fuzz target for an account's reply words (policy/
 * pol_words.h): the input is a policy document (up to a NUL byte) and a
 * reply (the rest). Invariants: parsing gives 0 or KK_EINVAL with a field
 * named and the defaults in place; every word and answer kept is a
 * NUL-terminated string inside its array; the document w gives back parses
 * to the same words; a reply of one of the words matches its kind; matching
 * any bytes gives a known kind.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/kk_err.h"
#include "policy/pol_words.h"

static void check(int ok) {
  if (!ok) __builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size > 8192) return 0;
  const uint8_t *nul = memchr(data, '\0', size);
  size_t doc_len = nul ? (size_t)(nul - data) : size;
  char *doc = malloc(doc_len + 1);
  memcpy(doc, data, doc_len);
  doc[doc_len] = '\0';
  const char *reply = nul ? (const char *)nul + 1 : "";
  size_t reply_len = nul ? size - doc_len - 1 : 0;

  static struct pol_words w, back;
  const char *field = NULL;
  char err[200];
  int rc = pol_words_parse(doc, &w, &field, err, sizeof err);
  free(doc);
  check(rc == 0 || (rc == KK_EINVAL && field != NULL && memchr(err, '\0', sizeof err)));
  for (int k = 0; k < 3; k++) {
    check(w.n[k] >= 1 && w.n[k] <= POL_WORDS_MAX);
    for (int i = 0; i < w.n[k]; i++) check(memchr(w.w[k][i], '\0', POL_WORD_BYTES) != NULL);
  }
  check(memchr(w.help_text, '\0', sizeof w.help_text) && w.help_text[0]);
  check(memchr(w.stop_reply, '\0', sizeof w.stop_reply) && w.stop_reply[0]);
  check((w.allow & ~(POL_ALLOW_SERVICE | POL_ALLOW_TRANSACTIONAL)) == 0);

  /* What GET /v1/policy shows reads back as the same words. */
  char *shown = pol_words_doc(&w);
  check(shown != NULL);
  check(pol_words_parse(shown, &back, &field, err, sizeof err) == 0);
  free(shown);
  check(memcmp(back.n, w.n, sizeof w.n) == 0 && back.allow == w.allow &&
        strcmp(back.help_text, w.help_text) == 0 && strcmp(back.stop_reply, w.stop_reply) == 0 &&
        strcmp(back.replies_webhook, w.replies_webhook) == 0);

  enum pol_reply_kind k = pol_words_match(&w, reply, reply_len);
  check(k >= POL_REPLY_NONE && k <= POL_REPLY_HELP);
  /* The first stop word matches as stop (or as an earlier kind of the
     same normal form: never as nothing). */
  check(pol_words_match(&w, w.w[0][0], strlen(w.w[0][0])) != POL_REPLY_NONE);
  return 0;
}
