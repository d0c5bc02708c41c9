/*
 * api_links.h - tracked links (api_links.c): the short link's redirect,
 * conversions and the clicks part of a campaign's report. Not for use
 * outside src/api.
 *
 *   GET  /r/{code}          302 to the link's target with its UTM tags; the
 *                           click queued for the store (no key: people); a
 *   HEAD /r/{code}          link preview's (a HEAD, a preview fetcher's
 *                           user agent) as a preview, not a click
 *   POST /v1/conversions    {"message"} | {"phone","campaign"}, "value"?
 */
#ifndef API_LINKS_H
#define API_LINKS_H

#include <jansson.h>
#include <stdint.h>

#include "store/store.h"
#include "store/store_link.h"

struct api;
struct api_call;
struct http_req;

void api_link_click(struct api_call *c);
void api_conversion_post(struct api_call *c);

/* The clicks part of a campaign's report, from the campaign's counters:
   read on the store's pool into c (done(arg, rc) on the loop; c borrowed
   until then), then added to the report's doc as "clicks":
   {"clicked","clicked_unique","previews","converted","value","by_channel",
   "by_variant"}. The report reads it beside its other figures, not after. */
struct api_links_counts {
  struct store_link_count rows[STORE_LINK_COUNTS_MAX];
  int n;
};
void api_links_counts_read(struct api *a, int64_t account_id, const char *campaign,
                           struct api_links_counts *c, store_done_cb done, void *arg);
void api_links_counts_add(const struct api_links_counts *c, json_t *doc);

/* Queues the clicks not yet written (before the store closes). */
void api_links_stop(struct api *a);
/* Frees what the links held (after the store closed). */
void api_links_free(struct api *a);

#endif
