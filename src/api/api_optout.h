/*
 * api_optout.h - the stop-list and consents of an account (api_stoplist.c,
 * api_consents.c): route handlers and what the two files share. Not for
 * use outside src/api.
 */
#ifndef API_OPTOUT_H
#define API_OPTOUT_H

#include <stdio.h>

#include "api/api_int.h"

/* GET /v1/stoplist, GET /v1/stoplist.csv, GET|PUT|DELETE /v1/stoplist/{phone} */
void api_stoplist_list(struct api_call *c);
void api_stoplist_csv(struct api_call *c);
void api_stoplist_get(struct api_call *c);
void api_stoplist_put(struct api_call *c);
void api_stoplist_delete(struct api_call *c);
/* POST /v1/stoplist/import (a CSV body) */
void api_stoplist_import(struct api_call *c);
/* PUT|GET|DELETE /v1/consents/{phone}, GET /v1/consents.csv */
void api_consent_put(struct api_call *c);
void api_consent_get(struct api_call *c);
void api_consent_delete(struct api_call *c);
void api_consents_csv(struct api_call *c);
void api_consents_import(struct api_call *c);

/* GET|POST /u/{code}: an unsubscribe link's page and its form's (or an
   RFC 8058 one-click) POST (api_unsub.c) */
void api_unsub_page(struct api_call *c);
void api_unsub_post(struct api_call *c);
/* GET|PUT|DELETE /v1/accounts/{id}/inbound (operator; api_inbound.c) */
void api_inbound_get(struct api_call *c);
void api_inbound_put(struct api_call *c);
void api_inbound_delete(struct api_call *c);

/* The store's notes: answers a person's stop, start or help word
   (api_optout_reply.c); subscribed by api_init. */
void api_optout_notes(void *ud, const struct store_note *notes, int n);

/* The {phone} of the path, normalised into out (16 bytes): 0, or nonzero
   having answered 422 invalid_phone. */
int api_optout_phone(struct api_call *c, char out[16]);
/* A CSV answer written to a scratch file (header first) off the loop, then
   sent: NULL having answered 503. */
struct api_csv_out {
  struct api_call *call;
  FILE *f;
};
struct api_csv_out *api_csv_open(struct api_call *c, const char *header);
/* Sends it (rc 0) or answers the error (503), closing the file. */
void api_csv_send(struct api_csv_out *o, int rc);
/* One CSV cell as contact exports write it (api_contacts_io.c). */
void api_csv_cell(FILE *f, const char *s, int last);

#endif
