/*
 * pol_consent.h - the consent rule: advertising goes only to a phone with a
 * current consent, for every channel or for the channel the message takes
 * first. A phone's current consents are a mask of channels (the value held
 * in the consents' set). Pure.
 */
#ifndef POL_CONSENT_H
#define POL_CONSENT_H

#include <stdint.h>

#define POL_CONSENT_ALL 1u    /* a consent for every channel */

/* The bit of a consent's channel: "" or "all" POL_CONSENT_ALL, "sms",
   "vk", "viber", "telegram", "whatsapp", "email" their own; 0 for any other
   name. */
uint32_t pol_consent_bit(const char *channel);
/* The channel of a bit ("all" for POL_CONSENT_ALL), or NULL. */
const char *pol_consent_channel(uint32_t bit);
/* 1 when mask holds a consent that covers channel (NULL: SMS). */
int pol_consent_covers(uint32_t mask, const char *channel);

#endif
