/*
 * pol_text.h - text as the rules compare it: case folded, `ё` as `е`,
 * Latin look-alike letters inside Cyrillic words as Cyrillic ("CTOП" is
 * "стоп"), separators inside a word dropped ("в.о.д.к.а", "в-о-д-к-а" and
 * "в о д к а" are "водка"), every other run of punctuation and space one
 * space. Pure: a table folds the case of ASCII, Latin-1 and Cyrillic,
 * ICU that of a text with other letters.
 */
#ifndef POL_TEXT_H
#define POL_TEXT_H

#include <stddef.h>

/* Normalises the UTF-8 text (len bytes) into out (cap bytes,
   NUL-terminated): its words separated by single spaces. Returns the
   length, or 0 when there is no word (or the text is not UTF-8). A text
   longer than out is cut at a word. */
size_t pol_text_normalize(const char *text, size_t len, char *out, size_t cap);

/* 1 when the whole text, normalised, is one of words (normalised too):
   "Stop!", " стоп. " and "CTOП" are the stop word СТОП. */
int pol_text_is_one_of(const char *text, size_t len, const char *const *words, int n);

#endif
