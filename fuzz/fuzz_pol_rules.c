/*
 * fuzz_pol_rules.c - fuzz target for the policy document (PUT /v1/policy):
 * any bytes either parse or are refused with a field and a sentence; a
 * document that parses is shown as one that parses to the same rules.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "policy/pol_rules.h"

static void check(int ok) {
  if (!ok) __builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size > 8192) return 0;
  char *text = malloc(size + 1);
  memcpy(text, data, size);
  text[size] = '\0';
  struct pol_rules r, again;
  const char *field = NULL;
  char err[200];
  if (pol_rules_parse(text, &r, &field, err, sizeof err) != 0) {
    check(field != NULL && err[0] != '\0');
  } else {
    check(r.ncaps >= 0 && r.ncaps <= POL_CAPS_MAX && r.nown >= 0 && r.nown <= POL_OWN_WORDS_MAX);
    char *doc = pol_rules_doc(&r, text);
    check(doc != NULL);
    check(pol_rules_parse(doc, &again, &field, err, sizeof err) == 0);
    check(memcmp(&r, &again, sizeof r) == 0);
    free(doc);
  }
  free(text);
  return 0;
}
