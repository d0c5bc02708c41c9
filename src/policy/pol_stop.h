/*
 * pol_stop.h - the stop-list's rule: one list per account for every
 * channel; an entry's reason says how far it reaches. Pure.
 *
 * How far an entry reaches each class is in the class table
 * (pol_rules.h): a stop (reason reply, api, link, import) refuses
 * advertising, and service and transactional messages too unless the
 * account allows that class to a stop-listed phone (allow mask,
 * POL_ALLOW_*). A complaint refuses everything but service messages,
 * whatever the account allows.
 */
#ifndef POL_STOP_H
#define POL_STOP_H

#include <stddef.h>
#include <stdint.h>

/* An entry's reason (the value held in the stop-list's set; 0: none). */
enum pol_stop_reason {
  POL_STOP_NONE = 0,
  POL_STOP_REPLY,           /* the person replied a stop word */
  POL_STOP_API,             /* listed through the API (default) */
  POL_STOP_COMPLAINT,       /* a complaint */
  POL_STOP_LINK,            /* the unsubscribe link */
  POL_STOP_IMPORT,          /* a CSV import */
  POL_STOP_NREASONS
};
/* Classes: the order of accept_classes (service, transactional, advertising). */
#define POL_ALLOW_SERVICE 1u
#define POL_ALLOW_TRANSACTIONAL 2u

/* What a reply asks for (matched by an account's words, pol_words.h). */
enum pol_reply_kind { POL_REPLY_NONE = 0, POL_REPLY_STOP, POL_REPLY_START, POL_REPLY_HELP };
/* The kind's name ("stop", "start", "help"), or NULL. */
const char *pol_stop_reply_name(enum pol_reply_kind k);

/* The reason's name ("reply", ...), or NULL. */
const char *pol_stop_reason_name(unsigned reason);
/* The reason named (exact), or POL_STOP_NONE. */
unsigned pol_stop_reason_of(const char *name);
/* 1 when a phone listed with reason refuses a message of class (0 service,
   1 transactional, 2 advertising), given the account's allow mask. */
int pol_stop_refuses(unsigned reason, int msg_class, unsigned allow);

#endif
