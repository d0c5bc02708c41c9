/*
 * pol_text.c - text as the rules compare it. See pol_text.h.
 */
#include "policy/pol_text.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unicode/ucasemap.h>

#include "core/kk_mem.h"
#include "core/kk_utf8.h"

#define WORD_MAX 256   /* code points of one word */

static int cyrillic(uint32_t cp) { return (cp >= 0x430 && cp <= 0x44F) || cp == 0x451; }
static int digit(uint32_t cp) { return cp >= '0' && cp <= '9'; }
/* A character of a word: letters (Latin, Cyrillic, the rest of Europe's)
   and digits; anything else (spaces, punctuation, symbols, emoji) is not. */
static int word_char(uint32_t cp) {
  return (cp >= 'a' && cp <= 'z') || digit(cp) || cyrillic(cp) ||
         (cp >= 0xDF && cp <= 0x24F && cp != 0xF7) || (cp >= 0x3AC && cp <= 0x3CE);
}
/* Marks that split a word without ending it: "в.о.д.к.а", "vo-dka". */
static int joiner(uint32_t cp) {
  return cp == '.' || cp == '-' || cp == '_' || cp == '*' || cp == '\'' || cp == '`' ||
         cp == 0x2010 || cp == 0x2011 || cp == 0x2013 || cp == 0x2014 || cp == 0xB7;
}

/* The Cyrillic letter a Latin letter or digit stands for inside a Cyrillic
   word, or 0. */
static uint32_t lookalike(uint32_t cp) {
  switch (cp) {
  case 'a': return 0x430;  /* а */
  case 'b': return 0x432;  /* в (as in В) */
  case 'c': return 0x441;  /* с */
  case 'e': return 0x435;  /* е */
  case 'h': return 0x43D;  /* н (as in Н) */
  case 'k': return 0x43A;  /* к */
  case 'm': return 0x43C;  /* м */
  case 'o': case '0': return 0x43E;  /* о */
  case 'p': return 0x440;  /* р */
  case 't': return 0x442;  /* т */
  case 'x': return 0x445;  /* х */
  case 'y': return 0x443;  /* у */
  case '3': return 0x437;  /* з */
  default: return 0;
  }
}

/* The code point at s, which is valid UTF-8 (checked first, or ICU's
   output), a NUL read as a space; *n its length. */
static inline uint32_t decode(const unsigned char *s, size_t *n) {
  unsigned c = s[0];
  if (c < 0x80) {
    *n = 1;
    return c ? c : ' ';
  }
  if (c < 0xE0) {
    *n = 2;
    return ((uint32_t)(c & 0x1F) << 6) | (s[1] & 0x3F);
  }
  if (c < 0xF0) {
    *n = 3;
    return ((uint32_t)(c & 0x0F) << 12) | ((uint32_t)(s[1] & 0x3F) << 6) | (s[2] & 0x3F);
  }
  *n = 4;
  return ((uint32_t)(c & 0x07) << 18) | ((uint32_t)(s[1] & 0x3F) << 12) |
         ((uint32_t)(s[2] & 0x3F) << 6) | (s[3] & 0x3F);
}

static size_t encode(uint32_t cp, char *out) { return kk_utf8_put(cp, (uint8_t *)out); }

/* The words of a text: code points, each word ended by 0; in the inline
   buffer while they fit (most texts), else on the heap. */
struct words {
  uint32_t *cp;             /* inl, or malloc'd (freed by words_fini) */
  size_t n, cap;
  int count;
  uint32_t inl[1024];
};

static void words_init(struct words *w) {
  w->cp = w->inl;
  w->n = 0;
  w->cap = sizeof w->inl / sizeof w->inl[0];
  w->count = 0;
}

static void words_fini(struct words *w) {
  if (w->cp != w->inl) free(w->cp);
}

static void push(struct words *w, uint32_t cp) {
  if (w->n == w->cap) {
    uint32_t *p = kk_xmalloc(w->cap * 2 * sizeof *p);
    memcpy(p, w->cp, w->n * sizeof *p);
    words_fini(w);
    w->cp = p;
    w->cap *= 2;
  }
  w->cp[w->n++] = cp;
}

#define NOFOLD 0xFFFFFFFFu

/* The case fold of cp where it is a table's work: ASCII, Latin-1,
   Cyrillic, punctuation, currency signs and emoji (nearly every text);
   NOFOLD for a code point whose fold ICU must give (ß, µ, Greek, the
   rest of Latin, ...). */
static uint32_t fold_fast(uint32_t cp) {
  if (cp < 0x80) return cp >= 'A' && cp <= 'Z' ? cp + 32 : cp;
  if (cp < 0xC0) return cp == 0xB5 ? NOFOLD : cp;
  if (cp < 0xDF) return cp == 0xD7 ? cp : cp + 32;
  if (cp == 0xDF) return NOFOLD;
  if (cp <= 0xFF) return cp;
  if (cp >= 0x400 && cp <= 0x40F) return cp + 0x50;   /* Ѐ-Џ (Ё among them) */
  if (cp >= 0x410 && cp <= 0x42F) return cp + 0x20;   /* А-Я */
  if (cp >= 0x430 && cp <= 0x45F) return cp;
  if ((cp >= 0x2000 && cp <= 0x206F) || (cp >= 0x20A0 && cp <= 0x20CF) || cp == 0x2116 ||
      cp == 0x2122 || (cp >= 0x1F300 && cp <= 0x1FAFF))
    return cp;
  return NOFOLD;
}

/* The text folded by ICU (full case folding) into a malloc'd buffer (*n
   its bytes; the caller frees), or NULL. */
static char *fold_icu(const char *text, size_t len, size_t *n) {
  UErrorCode err = U_ZERO_ERROR;
  UCaseMap *cm = ucasemap_open(NULL, U_FOLD_CASE_DEFAULT, &err);
  if (U_FAILURE(err)) return NULL;
  size_t fcap = len * 3 + 16;
  char *folded = kk_xmalloc(fcap);
  int32_t fn = ucasemap_utf8FoldCase(cm, folded, (int32_t)fcap, text, (int32_t)len, &err);
  ucasemap_close(cm);
  if (U_FAILURE(err) || fn < 0) {
    free(folded);
    return NULL;
  }
  *n = (size_t)fn;
  return folded;
}

/* Cuts s (n bytes) into words, folding each code point as it goes: 0, or
   NOFOLD (w partly filled) when a code point needs ICU and icu is 0. */
static int split(const unsigned char *s, size_t n, int icu, struct words *w) {
  /* Words: runs of word characters. A joiner after a single letter keeps
     the word going ("в.о.д.к.а", "п-а-т-р-о-н-ы"); after a longer part it
     ends the word ("онлайн-казино" is two). */
  size_t i = 0, wlen = 0, seg = 0;
  int pending_joiner = 0;
  while (i < n) {
    size_t cl;
    uint32_t cp = decode(s + i, &cl), f = fold_fast(cp);
    i += cl;
    if (f == NOFOLD && !icu) return (int)NOFOLD;
    if (f != NOFOLD) cp = f;
    if (word_char(cp)) {
      if (pending_joiner && seg > 1) {
        push(w, 0);
        w->count++;
        wlen = 0;
      }
      if (pending_joiner) seg = 0;
      push(w, cp);
      wlen++;
      seg++;
      pending_joiner = 0;
    } else if (joiner(cp) && wlen > 0 && !pending_joiner) {
      pending_joiner = 1;
    } else if (wlen > 0) {
      push(w, 0);
      w->count++;
      wlen = seg = 0;
      pending_joiner = 0;
    }
  }
  if (wlen > 0) {
    push(w, 0);
    w->count++;
  }
  return 0;
}

/* Appends one word (wn code points at cp) to out: ё as е, look-alikes
   in a Cyrillic word as Cyrillic. 0, or 1 when out is full. */
static int put_word(const uint32_t *cp, size_t wn, int space, char *out, size_t cap, size_t *n) {
  int cyr = 0;
  for (size_t i = 0; i < wn; i++) cyr |= cyrillic(cp[i]);
  /* Word characters are below U+0800: two bytes at most each. */
  size_t need = (size_t)space + 2 * wn;
  if (*n + need + 1 > cap) return 1;
  if (space) out[(*n)++] = ' ';
  for (size_t i = 0; i < wn; i++) {
    uint32_t c = cp[i];
    if (c == 0x451) c = 0x435;
    if (cyr && lookalike(c)) c = lookalike(c);
    if (c < 0x80) {
      out[(*n)++] = (char)c;
    } else if (c < 0x800) {
      out[(*n)++] = (char)(0xC0 | (c >> 6));
      out[(*n)++] = (char)(0x80 | (c & 0x3F));
    } else if (*n + 4 < cap) {   /* never: no word character is this far */
      *n += encode(c, out + *n);
    }
  }
  out[*n] = '\0';
  return 0;
}

size_t pol_text_normalize(const char *text, size_t len, char *out, size_t cap) {
  if (cap == 0) return 0;
  out[0] = '\0';
  if (!kk_utf8_valid(text, len)) return 0;
  /* Folded by the table in the same pass as the words are cut; a text
     with a letter beyond it is folded by ICU first. */
  struct words w;
  words_init(&w);
  if (split((const unsigned char *)text, len, 0, &w) != 0) {
    size_t fn;
    char *folded = fold_icu(text, len, &fn);
    if (folded == NULL) return 0;
    words_fini(&w);
    words_init(&w);
    split((const unsigned char *)folded, fn, 1, &w);
    free(folded);
  }
  /* Runs of three or more one-letter words are one word ("в о д к а"). */
  size_t on = 0, k = 0;
  while (k < w.n) {
    size_t run_end = k, letters = 0;
    while (run_end + 1 < w.n && w.cp[run_end + 1] == 0 && !digit(w.cp[run_end])) {
      letters++;
      run_end += 2;
    }
    if (letters >= 3) {
      uint32_t joined[WORD_MAX];
      size_t jn = 0;
      for (size_t q = k; q < run_end && jn < WORD_MAX; q += 2) joined[jn++] = w.cp[q];
      if (put_word(joined, jn, on > 0, out, cap, &on)) break;
      k = run_end;
      continue;
    }
    size_t e = k;
    while (w.cp[e] != 0) e++;
    if (put_word(w.cp + k, e - k, on > 0, out, cap, &on)) break;
    k = e + 1;
  }
  words_fini(&w);
  return on;
}

int pol_text_is_one_of(const char *text, size_t len, const char *const *words, int n) {
  char a[256], b[256];
  if (len > 1024) return 0;
  if (pol_text_normalize(text, len, a, sizeof a) == 0) return 0;
  for (int i = 0; i < n; i++)
    if (pol_text_normalize(words[i], strlen(words[i]), b, sizeof b) && strcmp(a, b) == 0) return 1;
  return 0;
}
