/*
 * accept_links.h - tracked links of a campaign's message: each http(s)
 * URL of its texts (the SMS text and each channel's own, as rendered)
 * and the URL of its link button (the template's Viber variant's: counted
 * as Viber's) becomes {public_url}/r/{code}, one code per link and channel, with a
 * code of its own for each recipient (link/link_url.h). The links go to
 * the store with the message (store_link.h), in its insert.
 */
#ifndef ACCEPT_LINKS_H
#define ACCEPT_LINKS_H

#include "accept/accept.h"

/* Makes it's links when it->track_links is set, it has a campaign and ac a
   public URL (else nothing changes): its texts rewritten, encoding and
   segments counted again, it->m pointing at the new texts and links.
   URLs of the public URL itself (the unsubscribe link) and URLs longer
   than LINK_URL_MAX stay as they are. 0, or KK_EINVAL with it->err
   (text_too_long: the links made the text longer than it may be). */
int accept_links_make(const struct accept *ac, struct accept_item *it);

/* Frees the links made in it. */
void accept_links_free(struct accept_item *it);

/* Whether "http" (in any case) is in the n bytes at t: a text without it
   has no link to track. */
int accept_has_http(const char *t, size_t n);

#endif
