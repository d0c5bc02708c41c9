/*
 * store_link.h - tracked links in the store (store_link.c): the short
 * links of campaign messages, their clicks, conversions and the counters
 * a campaign's report reads. The same SQL runs on both backends
 * (store_backend.sql).
 *
 *   link_codes    one row per code: account, campaign, variant, phone,
 *                 message, channel, target; its clicks and first click
 *   link_clicks   one row per click: code, time, user agent, and whether
 *                 it was a link preview (link/link_preview.h)
 *   conversions   one row per conversion
 *   link_counts   per (account, campaign, channel, variant): clicks,
 *                 unique clicks (a code's first), previews, conversions and their
 *                 value, moved with each click and conversion (a report
 *                 reads a few rows, never the clicks)
 *
 * A message's links are written with it, in its insert (store_msg_insert):
 * a message stored has its codes, a repeat or a refused one has none.
 */
#ifndef STORE_LINK_H
#define STORE_LINK_H

#include <stdint.h>

#include "store/store.h"

#define STORE_LINK_UA_MAX 256       /* bytes of a click's user agent kept */
#define STORE_LINK_COUNTS_MAX 64    /* counter rows a report reads */

/* One link of a new message (accept/ makes them). */
struct store_link_new {
  char code[16];
  char channel[20];
  char *target;             /* malloc'd by its maker */
};

/* What a code leads to (and what its click is counted under). */
struct store_link {
  int64_t account_id;
  char campaign[STORE_CAMPAIGN_MAX + 1];
  int variant;              /* -1: none */
  char channel[20];
  char phone[16];
  char message[40];
  char *target;             /* malloc'd; the reader frees */
};

/* Reads code's link on the pool: done(arg, rc) with 0, KK_ENOENT or
   KK_ESTORE; out borrowed until then. One indexed row. */
void store_link_get_async(struct store *s, const char *code, struct store_link *out,
                          store_done_cb done, void *arg);

/* A click to record: its code, time and user agent (the counters it moves
   are its link's, as stored). */
struct store_click {
  char code[16];
  int64_t at;
  char ua[STORE_LINK_UA_MAX];
  int preview;              /* 1: a link preview, not a person */
};
/* Queues the writing of n clicks (clicks taken: freed after done, which
   may be NULL). Each click counts; the first of a code counts unique; a
   preview counts only as a preview (the code's clicks and first click
   stay); a code no longer stored is passed over. */
void store_clicks_write(struct store *s, struct store_click *clicks, int n, store_done_cb done,
                        void *arg);

/* A conversion's recipient, as found: the message, its campaign, phone,
   channel (the one it reached, "" none) and the campaign's settings
   (malloc'd JSON, NULL when the campaign is only a label of messages). */
struct store_conv_find {
  int64_t account_id;
  char message[40];         /* in: a message's id, or "" */
  char phone[16];           /* in (without message): the recipient ... */
  char campaign[STORE_CAMPAIGN_MAX + 1];   /* ... of this campaign; out: its campaign */
  /* out */
  char channel[20];
  int variant;              /* its variant in the campaign (-1: none) */
};
/* Reads it on the pool: done(arg, rc) with 0, KK_ENOENT (no such message
   of the account, or none of the campaign to that phone) or KK_ESTORE. */
void store_conv_find_async(struct store *s, struct store_conv_find *f, store_done_cb done,
                           void *arg);

/* A conversion to record (the caller's until done). */
struct store_conversion {
  int64_t account_id;
  char campaign[STORE_CAMPAIGN_MAX + 1];
  char message[40];
  char phone[16];
  char channel[20];
  int variant;              /* -1: none */
  int64_t value;            /* 1/10000 units */
  int64_t at;
  /* out */
  int64_t id;
};
void store_conversion_write(struct store *s, struct store_conversion *c, store_done_cb done,
                            void *arg);

/* A campaign's counters: one row per channel and variant. */
struct store_link_count {
  char channel[20];         /* "" when unknown (a conversion of a message never sent) */
  int variant;              /* -1: none */
  int64_t clicked, clicked_unique, previews, converted, value;
};
/* Reads them on the pool (up to STORE_LINK_COUNTS_MAX rows): done(arg, rc)
   with 0 or KK_ESTORE; out and n borrowed until then. */
void store_link_counts_async(struct store *s, int64_t account_id, const char *campaign,
                             struct store_link_count *out, int *n, store_done_cb done,
                             void *arg);

#endif
