/*
 * pol_due.h - the rules again when a message or a cascade step comes due:
 * the hook the engines (dispatch for SMS, the channel engine for the
 * messengers) call just before a deferred message, or an advertising one,
 * is sent. The accept path provides it (accept_rules_due): the stop-list,
 * the consent and the frequency caps as they are now, so a consent
 * withdrawn or a phone stop-listed while the message waited stops it.
 */
#ifndef POL_DUE_H
#define POL_DUE_H

#include <stdint.h>

/* What comes due. Strings borrowed for the call. */
struct pol_due {
  int64_t msg_id, account_id;
  const char *to;           /* E.164 digits */
  const char *msg_class;    /* service | transactional | advertising */
  const char *channel;      /* the step's channel (sms, viber, ...) */
};

/* NULL: it may go. Else the reason code it is refused with (static); the
   hook has recorded the decision, and the engine fails the attempt with
   that code as its error, sending nothing. */
typedef const char *(*pol_due_fn)(void *ud, const struct pol_due *d);

#endif
