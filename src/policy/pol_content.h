/*
 * pol_content.h - prohibited content in advertising (38-FZ arts. 7, 21-24,
 * 28 and the seeds): a dictionary of categories matched on the words of
 * the normalised text (policy/pol_text), so case, `ё`, Latin look-alikes
 * in Cyrillic words and separators inside words do not hide a word.
 *
 * An entry is one or more space-separated patterns matched on consecutive
 * words: `водк*` matches a word that starts with "водк", `ром` only the
 * word "ром". The same engine gives the template preview's advisory lint.
 * Pure.
 */
#ifndef POL_CONTENT_H
#define POL_CONTENT_H

#include <stddef.h>

#define POL_CATEGORY_LIST(XX)                                                   \
  XX(ALCOHOL, "alcohol")                                                        \
  XX(TOBACCO, "tobacco")       /* tobacco, nicotine, vapes, hookahs */          \
  XX(WEAPONS, "weapons")                                                        \
  XX(MEDICINES, "medicines")   /* prescription medicines, steroids */           \
  XX(GAMBLING, "gambling")                                                      \
  XX(PYRAMIDS, "pyramids")     /* financial pyramids, promised returns */       \
  XX(OWN, "own")               /* the account's own words */

enum pol_category {
#define XX(c, name) POL_CAT_##c,
  POL_CATEGORY_LIST(XX)
#undef XX
  POL_CAT_COUNT
};

#define POL_CAT_ALL ((1u << POL_CAT_COUNT) - 1)

/* "alcohol", ... ("unknown" out of range). */
const char *pol_category_name(enum pol_category c);
/* The category named name, or -1. */
int pol_category_of(const char *name);

struct pol_content_hit {
  enum pol_category category;
  char words[96];             /* the text's words that matched */
};

/*
 * Looks for the enabled categories (a mask of 1u << POL_CAT_*) in text
 * (UTF-8) and for the account's own patterns (own[0..nown), the same
 * syntax; category OWN; the first 64). 1 with *hit the first match, 0 when
 * clean.
 */
int pol_content_check(const char *text, size_t len, unsigned enabled, const char *const *own,
                      int nown, struct pol_content_hit *hit);

/* The same with the own patterns normalised already
   (pol_content_own_normalize), as a policy keeps them. */
int pol_content_check_norm(const char *text, size_t len, unsigned enabled,
                           const char *const *own_norm, int nown, struct pol_content_hit *hit);
/* An own pattern normalised like the text, its trailing '*' kept, into out
   (cap bytes). Returns its length (0: no word in it). */
size_t pol_content_own_normalize(const char *own, char *out, size_t cap);

#endif
