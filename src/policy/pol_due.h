/*
 * pol_due.h - the rules again when a message or a cascade step comes due:
 * the hook the engines (dispatch for SMS, the channel engine for the
 * messengers) call just before a deferred message, or an advertising one,
 * is sent. The accept path provides it (accept_rules_due): the stop-list,
 * the consent, the frequency caps, prohibited content (the account's own
 * words too) and foreign messengers as they are now, so a consent
 * withdrawn, a phone stop-listed or a word added while the message waited
 * stops it; and, for an engine that can make it wait, the quiet hours as
 * they are now. An engine also reports through it the decisions it takes
 * itself (roaming), so that they are recorded and counted as the others.
 */
#ifndef POL_DUE_H
#define POL_DUE_H

#include <stdint.h>
#include <string.h>

#include "policy/pol_rules.h"

/* What comes due. Strings borrowed for the call. */
struct pol_due {
  int64_t msg_id, account_id;
  const char *to;           /* E.164 digits */
  const char *msg_class;    /* service | transactional | advertising */
  const char *channel;      /* the step's channel (sms, viber, ...) */
  const char *text;         /* the message's text (NULL: the engine does not give it,
                               and prohibited content is not checked again) */
  int64_t *wait_until;      /* NULL: the engine cannot make it wait; else the hook
                               sets it (ms, with NULL returned) when the message
                               comes due inside its quiet hours (after a restart,
                               a policy change): it waits until then */
  const char *decided;      /* NULL: check the rules. Else a reason code the engine
                               decided on itself (roaming: the route tells the
                               subscriber is abroad): the hook checks nothing, records
                               the decision on the message and counts it per reason,
                               and returns it */
  int64_t decided_until;    /* with decided: deferred until then; 0: refused */
};

/* NULL: it may go. Else the reason code it is refused with (static); the
   hook has recorded the decision, and the engine fails the attempt with
   that code as its error, sending nothing. */
typedef const char *(*pol_due_fn)(void *ud, const struct pol_due *d);

/* Due this much after its message was accepted: it waited (deferred,
   held, scheduled, a later cascade step or a retry). */
#define POL_DUE_WAITED_MS 1000

/* 1 when the attempt of a message accepted at created_at and due at due_at
   goes through the hook before it is sent: it waited, or its class is
   checked again when due anyway (the class table's due_check: advertising).
   The same whether it comes due in a running process or is
   loaded after a restart with its time already past. */
static inline int pol_due_wanted(const char *msg_class, int64_t created_at, int64_t due_at) {
  return due_at > created_at + POL_DUE_WAITED_MS || pol_class_rule_named(msg_class)->due_check;
}

#endif
