/*
 * api_contacts.h - what api_contacts.c and api_contacts_io.c share: a
 * contact's JSON, list names, the numbering register's facts of a number.
 * Not for use outside src/api.
 */
#ifndef API_CONTACTS_H
#define API_CONTACTS_H

#include "api/api_int.h"
#include "store/store_contact.h"

/* 1 when s is a list name: 1 to 64 of A-Z a-z 0-9 _ - . */
int api_list_name_valid(const char *s);
/* A contact as the API shows it (new reference). */
json_t *api_contact_json(const struct store_contact *c);
/* Operator and region of c's number from the register, and its time zone
   when none was given (tz_source ""): the number's, else the default. */
void api_contact_number_info(struct api *a, struct store_contact *c);

#endif
