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

/* The idempotency key of the answer to phone's stop, start or help word
   sent at `at` (out, cap bytes): once per reply, and the one message the
   stop-list lets through. It begins with a byte no ingress accepts in a
   key (the HTTP API takes printable ASCII), so no client can send as it. */
void accept_optout_exempt_key(char *out, size_t cap, const char *phone, long long at);

/* The unsubscribe link: each "{{unsubscribe}}" in it's text becomes
   {public_url}/u/{code}, code an unguessable name of (account, phone) (an
   HMAC under the account's secret), recorded in the store; GET /u/{code}
   asks, POST lists the phone (reason link). Without a phone or a public
   URL the text stays as it is. 0, or KK_EINVAL with it->err (the text
   grew too long). */
#define ACCEPT_UNSUBSCRIBE "{{unsubscribe}}"
int accept_optout_link(const struct accept *ac, int64_t account_id, struct accept_item *it);

/* The unsubscribe link of (account, phone) into url (cap bytes; at most
   ACCEPT_UNSUB_URL_MAX), its code recorded in the store: what
   {{unsubscribe}} becomes, in a text or in any channel's part of a
   template. 0, or KK_ENOENT (no public URL, no phone, no such account) /
   KK_EIO. */
#define ACCEPT_UNSUB_URL_MAX 400
int accept_optout_url(const struct accept *ac, int64_t account_id, const char *phone, char *url,
                      size_t cap);

/* Adds both checks to ac's chain (stop-list first). 0 or KK_ENOSPC. */
int accept_optout_add(struct accept *ac);

#endif
