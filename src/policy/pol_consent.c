/*
 * pol_consent.c - the consent rule (pol_consent.h).
 */
#include "policy/pol_consent.h"

#include <string.h>

static const char *const chans[] = {"all", "sms", "vk", "viber", "telegram", "whatsapp", "email"};
#define NCHANS (sizeof chans / sizeof chans[0])

uint32_t pol_consent_bit(const char *channel) {
  if (channel == NULL || channel[0] == '\0') return POL_CONSENT_ALL;
  for (unsigned i = 0; i < NCHANS; i++)
    if (strcmp(chans[i], channel) == 0) return 1u << i;
  return 0;
}

const char *pol_consent_channel(uint32_t bit) {
  for (unsigned i = 0; i < NCHANS; i++)
    if (bit == 1u << i) return chans[i];
  return NULL;
}

int pol_consent_covers(uint32_t mask, const char *channel) {
  if (mask & POL_CONSENT_ALL) return 1;
  uint32_t b = pol_consent_bit(channel ? channel : "sms");
  return b != 0 && (mask & b) != 0;
}
