/*
 * accept_optout.h - the stop-list's and the consent's checks in the accept
 * path's policy chain. Both read the store's copy in memory (store_optout.h):
 * no I/O.
 *
 *   stop_listed  the number is on the account's stop-list and the entry
 *                reaches the message's class (policy/pol_stop.h)
 *   no_consent   an advertising message to a number without a current
 *                consent for every channel or for the cascade's first one
 */
#ifndef ACCEPT_OPTOUT_H
#define ACCEPT_OPTOUT_H

#include "accept/accept.h"

/* Adds both checks to ac's chain (stop-list first). 0 or KK_ENOSPC. */
int accept_optout_add(struct accept *ac);

#endif
