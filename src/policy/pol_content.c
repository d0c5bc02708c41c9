/*
 * pol_content.c - prohibited content in advertising. See pol_content.h.
 *
 * The dictionary is written for recall on what advertisers actually send
 * and for no false alarm on service texts (tests/data/service_texts.txt):
 * short or ambiguous stems are exact words ("ром", "вино", "джин"), stems
 * that service texts use in another sense are left out ("ставка" of a loan,
 * "слот" of a delivery, "автоматически").
 */
#include "policy/pol_content.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy/pol_text.h"

#define TEXT_MAX 8192
#define WORDS_MAX 1024
#define OWN_MAX 64            /* own patterns looked at (POL_OWN_WORDS_MAX) */

struct entry {
  enum pol_category cat;
  const char *pattern;
};

static const struct entry dict[] = {
    /* alcohol */
    {POL_CAT_ALCOHOL, "алкогол*"}, {POL_CAT_ALCOHOL, "водк*"},
    {POL_CAT_ALCOHOL, "водочн*"}, {POL_CAT_ALCOHOL, "коньяк*"}, {POL_CAT_ALCOHOL, "коньячн*"},
    {POL_CAT_ALCOHOL, "виски"}, {POL_CAT_ALCOHOL, "бренди"}, {POL_CAT_ALCOHOL, "ром"},
    {POL_CAT_ALCOHOL, "джин"}, {POL_CAT_ALCOHOL, "текил*"}, {POL_CAT_ALCOHOL, "ликер*"},
    {POL_CAT_ALCOHOL, "шампанск*"}, {POL_CAT_ALCOHOL, "игрист*"}, {POL_CAT_ALCOHOL, "вино"},
    {POL_CAT_ALCOHOL, "винн*"}, {POL_CAT_ALCOHOL, "винам"},
    {POL_CAT_ALCOHOL, "пиво"}, {POL_CAT_ALCOHOL, "пива"}, {POL_CAT_ALCOHOL, "пиву"},
    {POL_CAT_ALCOHOL, "пивом"}, {POL_CAT_ALCOHOL, "пивн*"}, {POL_CAT_ALCOHOL, "сидр*"},
    {POL_CAT_ALCOHOL, "медовух*"}, {POL_CAT_ALCOHOL, "самогон*"}, {POL_CAT_ALCOHOL, "абсент*"},
    {POL_CAT_ALCOHOL, "портвейн*"}, {POL_CAT_ALCOHOL, "наливк*"}, {POL_CAT_ALCOHOL, "крепк* напит*"},
    {POL_CAT_ALCOHOL, "спиртн*"}, {POL_CAT_ALCOHOL, "alcohol*"}, {POL_CAT_ALCOHOL, "vodka*"},
    {POL_CAT_ALCOHOL, "whisk*"}, {POL_CAT_ALCOHOL, "cognac*"}, {POL_CAT_ALCOHOL, "brandy"},
    {POL_CAT_ALCOHOL, "tequila*"}, {POL_CAT_ALCOHOL, "liquor*"}, {POL_CAT_ALCOHOL, "champagne*"},
    {POL_CAT_ALCOHOL, "beer*"}, {POL_CAT_ALCOHOL, "wine"}, {POL_CAT_ALCOHOL, "wines"},
    {POL_CAT_ALCOHOL, "rum"}, {POL_CAT_ALCOHOL, "gin"}, {POL_CAT_ALCOHOL, "cider*"},
    /* tobacco, nicotine, vapes */
    {POL_CAT_TOBACCO, "табак*"}, {POL_CAT_TOBACCO, "табачн*"}, {POL_CAT_TOBACCO, "сигарет*"},
    {POL_CAT_TOBACCO, "сигар"}, {POL_CAT_TOBACCO, "сигары"}, {POL_CAT_TOBACCO, "сигарилл*"},
    {POL_CAT_TOBACCO, "кальян*"}, {POL_CAT_TOBACCO, "вейп*"}, {POL_CAT_TOBACCO, "вэйп*"},
    {POL_CAT_TOBACCO, "никотин*"}, {POL_CAT_TOBACCO, "снюс*"}, {POL_CAT_TOBACCO, "айкос*"},
    {POL_CAT_TOBACCO, "стики* для нагрев*"}, {POL_CAT_TOBACCO, "жидкост* для вейп*"},
    {POL_CAT_TOBACCO, "электронн* сигарет*"},
    {POL_CAT_TOBACCO, "tobacco*"}, {POL_CAT_TOBACCO, "cigar*"}, {POL_CAT_TOBACCO, "vape*"},
    {POL_CAT_TOBACCO, "vaping"}, {POL_CAT_TOBACCO, "hookah*"}, {POL_CAT_TOBACCO, "nicotine*"},
    {POL_CAT_TOBACCO, "snus"}, {POL_CAT_TOBACCO, "iqos"},
    /* weapons */
    {POL_CAT_WEAPONS, "оружи*"}, {POL_CAT_WEAPONS, "оружейн*"}, {POL_CAT_WEAPONS, "пистолет*"},
    {POL_CAT_WEAPONS, "револьвер*"}, {POL_CAT_WEAPONS, "винтовк*"}, {POL_CAT_WEAPONS, "патрон"},
    {POL_CAT_WEAPONS, "патроны"}, {POL_CAT_WEAPONS, "патронов"}, {POL_CAT_WEAPONS, "боеприпас*"},
    {POL_CAT_WEAPONS, "травматическ* пистолет*"}, {POL_CAT_WEAPONS, "травматическ* оружи*"},
    {POL_CAT_WEAPONS, "арбалет*"}, {POL_CAT_WEAPONS, "автомат калашников*"},
    {POL_CAT_WEAPONS, "огнестрел*"}, {POL_CAT_WEAPONS, "кастет*"}, {POL_CAT_WEAPONS, "weapon*"},
    {POL_CAT_WEAPONS, "firearm*"}, {POL_CAT_WEAPONS, "gun"}, {POL_CAT_WEAPONS, "guns"},
    {POL_CAT_WEAPONS, "pistol*"}, {POL_CAT_WEAPONS, "rifle*"}, {POL_CAT_WEAPONS, "ammo"},
    {POL_CAT_WEAPONS, "ammunition"},
    /* prescription medicines */
    {POL_CAT_MEDICINES, "рецептурн*"}, {POL_CAT_MEDICINES, "без рецепт*"},
    {POL_CAT_MEDICINES, "антибиотик*"}, {POL_CAT_MEDICINES, "транквилизатор*"},
    {POL_CAT_MEDICINES, "снотворн*"}, {POL_CAT_MEDICINES, "антидепрессант*"},
    {POL_CAT_MEDICINES, "трамадол*"}, {POL_CAT_MEDICINES, "феназепам*"},
    {POL_CAT_MEDICINES, "прегабалин*"}, {POL_CAT_MEDICINES, "сибутрамин*"},
    {POL_CAT_MEDICINES, "редуксин*"}, {POL_CAT_MEDICINES, "виагр*"}, {POL_CAT_MEDICINES, "сиалис*"},
    {POL_CAT_MEDICINES, "левитр*"}, {POL_CAT_MEDICINES, "анаболи*"}, {POL_CAT_MEDICINES, "стероид*"},
    {POL_CAT_MEDICINES, "гормон* рост*"}, {POL_CAT_MEDICINES, "оземпик*"},
    {POL_CAT_MEDICINES, "prescription*"}, {POL_CAT_MEDICINES, "antibiotic*"},
    {POL_CAT_MEDICINES, "viagra*"}, {POL_CAT_MEDICINES, "cialis*"}, {POL_CAT_MEDICINES, "tramadol*"},
    {POL_CAT_MEDICINES, "oxycodone*"}, {POL_CAT_MEDICINES, "xanax*"}, {POL_CAT_MEDICINES, "steroid*"},
    {POL_CAT_MEDICINES, "ozempic*"},
    /* gambling */
    {POL_CAT_GAMBLING, "казино"}, {POL_CAT_GAMBLING, "букмекер*"}, {POL_CAT_GAMBLING, "тотализатор*"},
    {POL_CAT_GAMBLING, "покер*"}, {POL_CAT_GAMBLING, "рулетк*"}, {POL_CAT_GAMBLING, "джекпот*"},
    {POL_CAT_GAMBLING, "фриспин*"}, {POL_CAT_GAMBLING, "беттинг*"}, {POL_CAT_GAMBLING, "игров* автомат*"},
    {POL_CAT_GAMBLING, "ставк* на спорт*"}, {POL_CAT_GAMBLING, "ставк* на матч*"},
    {POL_CAT_GAMBLING, "слот* онлайн*"}, {POL_CAT_GAMBLING, "онлайн слот*"},
    {POL_CAT_GAMBLING, "casino*"}, {POL_CAT_GAMBLING, "poker*"}, {POL_CAT_GAMBLING, "roulette*"},
    {POL_CAT_GAMBLING, "jackpot*"}, {POL_CAT_GAMBLING, "betting"}, {POL_CAT_GAMBLING, "bookmaker*"},
    {POL_CAT_GAMBLING, "freespin*"}, {POL_CAT_GAMBLING, "slots"},
    /* financial pyramids and promised returns */
    {POL_CAT_PYRAMIDS, "финансов* пирамид*"}, {POL_CAT_PYRAMIDS, "гарантированн* доход*"},
    {POL_CAT_PYRAMIDS, "гарантированн* прибыл*"}, {POL_CAT_PYRAMIDS, "гарантированн* доходност*"},
    {POL_CAT_PYRAMIDS, "пассивн* доход*"}, {POL_CAT_PYRAMIDS, "удвоени* вклад*"},
    {POL_CAT_PYRAMIDS, "удво* деньг*"}, {POL_CAT_PYRAMIDS, "заработ* без вложени*"},
    {POL_CAT_PYRAMIDS, "доход* без риск*"}, {POL_CAT_PYRAMIDS, "хайп проект*"},
    {POL_CAT_PYRAMIDS, "млм"}, {POL_CAT_PYRAMIDS, "hyip*"}, {POL_CAT_PYRAMIDS, "mlm"},
    {POL_CAT_PYRAMIDS, "ponzi*"}, {POL_CAT_PYRAMIDS, "guaranteed return*"},
    {POL_CAT_PYRAMIDS, "guaranteed profit*"}, {POL_CAT_PYRAMIDS, "double your money"},
};

const char *pol_category_name(enum pol_category c) {
  static const char *const names[] = {
#define XX(c, name) name,
      POL_CATEGORY_LIST(XX)
#undef XX
  };
  return (unsigned)c < POL_CAT_COUNT ? names[c] : "unknown";
}

int pol_category_of(const char *name) {
  for (int c = 0; c < POL_CAT_COUNT; c++)
    if (strcmp(name, pol_category_name((enum pol_category)c)) == 0) return c;
  return -1;
}

#define NDICT (sizeof dict / sizeof dict[0])

/* The dictionary's entries by the first two bytes of their first word (a
   Cyrillic letter, or two Latin ones): a word is compared only with the
   entries that can match it. Built once. */
static struct keyed {
  unsigned key;
  const struct entry *e;
} by_key[NDICT];
static pthread_once_t by_key_once = PTHREAD_ONCE_INIT;

static unsigned key_of(const char *w) {
  return ((unsigned)(unsigned char)w[0] << 8) | (w[0] ? (unsigned char)w[1] : 0);
}

static int cmp_keyed(const void *a, const void *b) {
  const struct keyed *x = a, *y = b;
  return x->key < y->key ? -1 : x->key > y->key;
}

static void build_keys(void) {
  for (size_t i = 0; i < NDICT; i++) by_key[i] = (struct keyed){key_of(dict[i].pattern), &dict[i]};
  qsort(by_key, NDICT, sizeof by_key[0], cmp_keyed);
}

/* The first entry whose key is key (NDICT: none). */
static size_t first_of(unsigned key) {
  size_t lo = 0, hi = NDICT;
  while (lo < hi) {
    size_t mid = (lo + hi) / 2;
    if (by_key[mid].key < key)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo;
}

/* The words of normalised text: pointers into it, NUL-terminated. */
static int split_words(char *text, char **w, int max) {
  int n = 0;
  char *save;
  for (char *p = strtok_r(text, " ", &save); p && n < max; p = strtok_r(NULL, " ", &save))
    w[n++] = p;
  return n;
}

/* 1 when word matches the token [t, t + tl) ("водк*": a prefix). */
static int token_match(const char *word, const char *t, size_t tl) {
  if (tl && t[tl - 1] == '*') return strncmp(word, t, tl - 1) == 0;
  return strlen(word) == tl && strncmp(word, t, tl) == 0;
}

/* 0 when pattern cannot match at word by its first bytes (up to four: two
   Cyrillic letters; an empty pattern never matches): most patterns are
   passed over so, with no call. */
static inline int may_start(const char *pattern, const char *word) {
  if (pattern[0] == '\0') return 0;
  for (int i = 0; i < 4; i++) {
    char p = pattern[i];
    if (p == '*' || p == ' ') return 1;
    if (p != word[i]) return 0;
    if (p == '\0') return 1;
  }
  return 1;
}

/* 1 when the pattern's tokens match words w[i..]; *k the words taken. */
static int pattern_match(const char *pattern, char **w, int n, int i, int *k) {
  const char *p = pattern;
  int j = i;
  while (*p) {
    const char *e = strchr(p, ' ');
    size_t tl = e ? (size_t)(e - p) : strlen(p);
    if (j >= n || !token_match(w[j], p, tl)) return 0;
    j++;
    p += tl;
    while (*p == ' ') p++;
  }
  *k = j - i;
  return j > i;
}

static void hit_words(struct pol_content_hit *hit, char **w, int i, int k) {
  hit->words[0] = '\0';
  for (int j = i; j < i + k; j++) {
    size_t n = strlen(hit->words);
    snprintf(hit->words + n, sizeof hit->words - n, "%s%s", j > i ? " " : "", w[j]);
  }
}

size_t pol_content_own_normalize(const char *own, char *out, size_t cap) {
  size_t ol = strlen(own);
  int star = ol > 1 && own[ol - 1] == '*';
  size_t nl = cap > 1 ? pol_text_normalize(own, star ? ol - 1 : ol, out, cap - 1) : 0;
  if (nl == 0) {
    if (cap) out[0] = '\0';
    return 0;
  }
  if (star) {
    out[nl++] = '*';
    out[nl] = '\0';
  }
  return nl;
}

int pol_content_check(const char *text, size_t len, unsigned enabled, const char *const *own,
                      int nown, struct pol_content_hit *hit) {
  static __thread char own_norm[OWN_MAX][256];
  const char *p[OWN_MAX];
  if (!(enabled & (1u << POL_CAT_OWN)) || nown < 0) nown = 0;
  if (nown > OWN_MAX) nown = OWN_MAX;
  for (int o = 0; o < nown; o++) {
    pol_content_own_normalize(own[o], own_norm[o], sizeof own_norm[o]);
    p[o] = own_norm[o];
  }
  return pol_content_check_norm(text, len, enabled, p, nown, hit);
}

int pol_content_check_norm(const char *text, size_t len, unsigned enabled,
                           const char *const *own_norm, int nown, struct pol_content_hit *hit) {
  static __thread char norm[TEXT_MAX];
  char *w[WORDS_MAX];
  if (pol_text_normalize(text, len, norm, sizeof norm) == 0) return 0;
  int n = split_words(norm, w, WORDS_MAX);
  if (!(enabled & (1u << POL_CAT_OWN)) || nown < 0) nown = 0;
  pthread_once(&by_key_once, build_keys);
  for (int i = 0; i < n; i++) {
    unsigned key = key_of(w[i]);
    for (size_t d = first_of(key); d < NDICT && by_key[d].key == key; d++) {
      const struct entry *e = by_key[d].e;
      int k;
      if (!(enabled & (1u << e->cat)) || !may_start(e->pattern, w[i]) ||
          !pattern_match(e->pattern, w, n, i, &k))
        continue;
      hit->category = e->cat;
      hit_words(hit, w, i, k);
      return 1;
    }
    for (int o = 0; o < nown; o++) {
      int k;
      if (!may_start(own_norm[o], w[i]) || !pattern_match(own_norm[o], w, n, i, &k)) continue;
      hit->category = POL_CAT_OWN;
      hit_words(hit, w, i, k);
      return 1;
    }
  }
  return 0;
}
