/*
 * phone.h - phone number normalisation to E.164 digits.
 *
 * Accepts "+79161234567", "79161234567", the Russian national forms
 * "89161234567" and "9161234567", and the same with spaces, dashes, dots and
 * parentheses. Pure function.
 */
#ifndef PHONE_H
#define PHONE_H

#include <stddef.h>

/* Writes the E.164 digits without '+' into out (cap >= 16). Returns 0 or
   KK_EINVAL (not a phone number: letters, too short, too long). */
int phone_normalize(const char *in, char *out, size_t cap);

/* The ISO 3166 code of the country an E.164 number (digits without '+')
   belongs to, by its calling code, into out ("RU"). 0 or KK_ENOENT. */
int phone_country(const char *e164, char out[3]);

#endif
