/*
 * money_bill.c - which failures a provider does not bill (money_bill.h).
 */
#include "money/money_bill.h"

#include <string.h>
#include <strings.h>

static int starts(const char *s, const char *prefix) {
  return strncasecmp(s, prefix, strlen(prefix)) == 0;
}

int money_unbilled(const char *channel, const char *error) {
  if (channel == NULL) return 0;
  if (strcmp(channel, "sms") == 0)
    return error != NULL && (starts(error, "REJECTD") || starts(error, "ESME_R"));
  if (strcmp(channel, "email") == 0) return 0;
  return 1;
}
