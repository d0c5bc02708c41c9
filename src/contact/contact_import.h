/*
 * contact_import.h - CSV imports of contact bases: the upload is written to
 * a file in the data folder as it arrives (never held whole in memory),
 * and read off the loop, as it grows, by a thread of the import's own with
 * contact_csv,
 * and written in bounded transactions (STORE_CONTACT_BATCH_MAX rows) that
 * carry the import's progress and refused rows with them (store_contact.h):
 * after a crash the rows up to the last commit are there, the import is
 * marked failed at the next start, and importing the file again merges
 * into what is there (no duplicates).
 *
 * A row's time zone: its `timezone` column (source "explicit"), else the
 * numbering register's zone of its number ("number"), else the import's
 * default ("default"); operator and region come from the register.
 *
 * One import at a time per account; at most CONTACT_IMPORTS_MAX at once in
 * all. Everything here runs on the loop thread but the readers.
 */
#ifndef CONTACT_IMPORT_H
#define CONTACT_IMPORT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <uv.h>

#include "store/store_contact.h"

#define CONTACT_IMPORTS_MAX 8        /* imports running at once */

struct phone_plan;
struct contact_imports;
struct contact_upload;

/* The imports of a daemon: uploads under DIR/imports. Queues marking the
   imports found running as failed (what ran when the process ended).
   NULL when the folder cannot be made (logged). Free with
   contact_imports_free after the store has closed. */
struct contact_imports *contact_imports_new(uv_loop_t *loop, struct store *store,
                                            const struct phone_plan *plan, const char *dir);
/* Stops the readers (before the store closes): an import under way stays
   `running` in the store, and is marked failed at the next start. */
void contact_imports_stop(struct contact_imports *ci);
void contact_imports_free(struct contact_imports *ci);

/* What an import reads with. */
struct contact_import_opts {
  char list[STORE_LIST_NAME_MAX + 1];   /* every row goes in this list ("": none) */
  char country[3];                      /* default country of national numbers */
  char tz_default[64];                  /* the account's default zone */
};

/* An upload of account_id's, imported with o as it arrives (bytes_expected:
   its Content-Length, 0 when unknown): 0 and *out, KK_EEXIST when the
   account has an import running (or uploading), KK_EBUSY when
   CONTACT_IMPORTS_MAX run, KK_EIO when the file cannot be made. *out is
   freed by contact_upload_end or contact_upload_abort, one of them. */
int contact_upload_begin(struct contact_imports *ci, int64_t account_id,
                         const struct contact_import_opts *o, int64_t bytes_expected,
                         struct contact_upload **out);
/* Appends n bytes: 0 or KK_EIO (the disk is full, or kaskad is stopping).
   The first bytes start the import (its row in the store, then its reader,
   which reads each byte once it is in the file). */
int contact_upload_write(struct contact_upload *up, const char *p, size_t n);
/* The upload is whole: done(arg, rc, id) runs on the loop (at once, when it
   can) with 0 and the import's id once its row is made, KK_ESTORE when the
   store refused it, KK_EINVAL when no byte came (nothing started). */
typedef void (*contact_import_started_fn)(void *arg, int rc, int64_t id);
void contact_upload_end(struct contact_upload *up, contact_import_started_fn done, void *arg);
/* The upload broke off (NULL: nothing): before its first bytes nothing
   stays; after them the import fails where the file stops, its rows up to
   there kept, as after a crash (importing the file again merges into
   them). */
void contact_upload_abort(struct contact_upload *up);

/* A scratch file in the imports folder, already unlinked (a CSV answer is
   written there off the loop, then sent from it): NULL when it cannot be
   made. */
FILE *contact_imports_scratch(struct contact_imports *ci);

/* Imports running now (for tests and /metrics). */
int contact_imports_running(const struct contact_imports *ci);

#endif
