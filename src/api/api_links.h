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

struct api;
struct api_call;
struct http_req;

void api_link_click(struct api_call *c);
void api_conversion_post(struct api_call *c);

/* Answers 200 with a campaign's report doc (taken) and its "clicks" part
   added: {"clicked","clicked_unique","previews","converted","value","by_channel",
   "by_variant"}, from the campaign's counters. */
void api_links_report(struct api *a, struct http_req *req, int64_t account_id,
                      const char *campaign, json_t *doc);

/* Queues the clicks not yet written (before the store closes). */
void api_links_stop(struct api *a);
/* Frees what the links held (after the store closed). */
void api_links_free(struct api *a);

#endif
