/*
 * store_contact.h - the contact bases in the store: contacts keyed by
 * (account, phone), the lists (tags) they are in, and the CSV imports with
 * the rows each refused. Writes are queued like every write of store.h;
 * reads run on the store's pool threads and answer in a done callback on
 * the loop thread.
 *
 * Tables (both backends): contacts, contact_lists(account_id, phone, list)
 * (what contact/contact_filter.c compiles against), imports and
 * import_errors.
 */
#ifndef STORE_CONTACT_H
#define STORE_CONTACT_H

#include <stdint.h>

#include "store/store.h"

struct cf_node;   /* contact/contact_filter.h */

#define STORE_CONTACT_LISTS_MAX 32     /* lists of one contact */
#define STORE_LIST_NAME_MAX 64         /* bytes of a list's name */
#define STORE_CONTACT_BATCH_MAX 5000   /* contacts of one write */
#define STORE_IMPORT_ERRORS_MAX 100000 /* refused rows kept per import */
#define STORE_IMPORTS_KEPT 50          /* imports kept per account (the oldest go) */
#define STORE_CONTACT_PAGE_MAX 1000    /* contacts of one listing page */
#define STORE_LISTS_MAX 1000           /* lists one listing shows */

/* One contact. Strings are "" when absent (stored as NULL). */
struct store_contact {
  char phone[16];           /* E.164 digits without '+' */
  char name[256];
  char email[256];
  char timezone[64];        /* IANA name */
  char tz_source[12];       /* explicit | number | default */
  char operator_name[160];
  char region[160];
  char vk_id[64], telegram_chat_id[64], viber_id[64];
  char *attrs;              /* JSON object text, malloc'd (NULL: none) */
  int consent;              /* -1 unknown, 0 no, 1 yes */
  char consent_source[128];
  int64_t consent_at;       /* 0: unknown */
  int stop_listed;
  int64_t created_at, updated_at;
  int nlists;
  char lists[STORE_CONTACT_LISTS_MAX][STORE_LIST_NAME_MAX + 1];
};
/* Frees what c owns (attrs); c itself is the caller's. */
void store_contact_fini(struct store_contact *c);

/* A refused row of an import, as errors.csv shows it. Strings malloc'd by
   the caller, freed by it after done. */
struct store_import_error {
  long line;
  char reason[32];
  char *raw;
};

/*
 * A write of contacts (caller-owned, alive until done; runs in one
 * savepoint: all or nothing). MERGE (imports, PATCH): a field that is ""
 * keeps the stored one, attrs are merged (the new value of a key wins),
 * lists add up, a time zone found from the number or the default does not
 * replace one given explicitly. REPLACE (PUT): the contact becomes rows[i]
 * (its lists too). An import's step (import_id set) also adds its counts
 * and refused rows (up to STORE_IMPORT_ERRORS_MAX an import) to the
 * import's row, in the same transaction: a crash leaves an import's rows
 * and its progress as of the last commit. A row's consent is a consent
 * record too (store_optout.h), in the same transaction: yes records one
 * for every channel (store_consent_of_contact) unless one is current for
 * every channel already, no withdraws the current ones (by "import").
 */
enum store_contact_mode { STORE_CONTACT_MERGE, STORE_CONTACT_REPLACE };
struct store_contact_batch {
  int64_t account_id;
  enum store_contact_mode mode;
  struct store_contact *rows;
  int n;                    /* at most STORE_CONTACT_BATCH_MAX */
  int64_t import_id;        /* 0: not an import */
  struct store_import_error *errs;
  int nerrs;
  int64_t offset;           /* the import's bytes read when this batch ends */
  int64_t rows_read;        /* rows (good and refused) this batch stands for */
  int64_t rows_before;      /* the rows of the import's batches before this one:
                               unless they all committed (its rows_done), the
                               batch takes no rows (KK_ENOENT), so that one
                               queued behind a batch that failed leaves no gap */
  /* out: how the rows fared */
  int created, updated, duplicates;  /* duplicates: rows whose phone this
                                        import had written before */
};
void store_contact_write(struct store *s, struct store_contact_batch *b, store_done_cb done,
                         void *arg);

/* Deletes a contact with its lists; KK_ENOENT when there was none. phone
   is copied. */
void store_contact_delete(struct store *s, int64_t account_id, const char *phone,
                          store_done_cb done, void *arg);

/* An import's row. */
struct store_import {
  int64_t id;
  int64_t account_id;
  char status[12];          /* running | done | failed */
  char list[STORE_LIST_NAME_MAX + 1];
  char file[512];           /* the uploaded file (data folder) */
  char error[160];          /* why it failed ("" if it did not) */
  int64_t bytes_total, bytes_done;
  int64_t rows_total, rows_done, created, updated, rejected, duplicates;
  int64_t created_at, updated_at;
};

/* What an import's state change is (caller-owned, alive until done).
   START: a new import of account_id (file, list, bytes_total) running; its
   id is written to imp->id; the account's oldest imports past
   STORE_IMPORTS_KEPT go, with their refused rows (their files are the
   caller's: removed_file names one of them at a time, "" when none).
   FINISH: import imp->id becomes imp->status (done or failed, with
   imp->error, rows_total). FAIL_RUNNING: every import still `running`
   becomes failed (at start: what ran when the process ended). */
enum store_import_change { STORE_IMPORT_START, STORE_IMPORT_FINISH, STORE_IMPORT_FAIL_RUNNING };
struct store_import_op {
  enum store_import_change what;
  struct store_import imp;
  char removed_file[STORE_IMPORTS_KEPT][512];   /* out (START): files of imports that went */
  int nremoved;
};
void store_import_change(struct store *s, struct store_import_op *op, store_done_cb done,
                         void *arg);

/* ---- reads (pool threads; done on the loop thread) ------------------------ */

/* One contact: 0, KK_ENOENT or KK_ESTORE. phone is copied; out is borrowed
   until done (the caller frees with store_contact_fini). */
void store_contact_get_async(struct store *s, int64_t account_id, const char *phone,
                             struct store_contact *out, store_done_cb done, void *arg);

/* A page of contacts in phone order after `after` ("" first): those in list
   (NULL: any), whose phone begins with q or whose name holds q (NULL: any),
   at most limit (<= STORE_CONTACT_PAGE_MAX), examining at most
   STORE_LIST_EXAMINE rows; next ("" at the end) is the cursor of the next
   page. Everything is borrowed until done; the caller frees each row. */
struct store_contact_filter {
  const char *list;
  const char *q;
  const char *segment;      /* a segment's name (NULL: any); KK_ENOENT when
                               the account has none of that name */
  char after[16];
  int limit;
  const struct cf_node *cond;  /* the store's own: the segment's filter */
};
void store_contact_list_async(struct store *s, int64_t account_id,
                              const struct store_contact_filter *f, struct store_contact *out,
                              int *n, char next[16], store_done_cb done, void *arg);

/* fn(arg, name, size) for each list of the account in name order (at most
   STORE_LISTS_MAX), on the pool thread. */
typedef void (*store_list_size_fn)(void *arg, const char *name, int64_t size);
void store_lists_async(struct store *s, int64_t account_id, store_list_size_fn fn, void *fn_arg,
                       store_done_cb done, void *arg);

/* An import of the account: 0, KK_ENOENT or KK_ESTORE. */
void store_import_get_async(struct store *s, int64_t account_id, int64_t id,
                            struct store_import *out, store_done_cb done, void *arg);

/* Each refused row of an import (in line order), and each contact of the
   account (in phone order; in list when not NULL), to fn on the pool
   thread: what the CSV answers stream to a file from. fn returns 0 to go
   on, nonzero to stop (that value becomes rc). */
typedef int (*store_import_error_fn)(void *arg, long line, const char *reason,
                                     const char *raw);
void store_import_errors_async(struct store *s, int64_t account_id, int64_t id,
                               store_import_error_fn fn, void *fn_arg, store_done_cb done,
                               void *arg);
typedef int (*store_contact_fn)(void *arg, const struct store_contact *c);
void store_contacts_each_async(struct store *s, int64_t account_id, const char *list,
                               const char *segment, store_contact_fn fn, void *fn_arg,
                               store_done_cb done, void *arg);
/* The same from the contact after phone `after` on ("": the first), without
   their lists (nlists 0): what reads a campaign's audience a batch at a time
   (fn stops it at the batch's end). */
void store_contacts_from_async(struct store *s, int64_t account_id, const char *list,
                               const char *segment, const char *after, store_contact_fn fn,
                               void *fn_arg, store_done_cb done, void *arg);
/* Each of the n phones (E.164; borrowed until done) to fn on the pool
   thread, in their order: the account's contact when the phone is one,
   else a contact of that phone alone. */
void store_contacts_of_async(struct store *s, int64_t account_id, const char (*phones)[16],
                             size_t n, store_contact_fn fn, void *fn_arg, store_done_cb done,
                             void *arg);

/* After an import of many rows: the store brings what its reads of the
   contacts rely on up to date (PostgreSQL: VACUUM (ANALYZE) of contacts and
   contact_lists, the visibility map the index-only reads of a list need
   and the planner's statistics; SQLite: nothing), on a pool thread. */
#define STORE_SETTLE_ROWS 50000   /* rows of an import that call for it */
void store_contacts_settle_async(struct store *s, store_done_cb done, void *arg);

/* ---- segments --------------------------------------------------------------- */

/*
 * A segment is a named filter (contact/contact_filter.h) of an account.
 * Its count runs on a pool thread as one parameterised query, bounded by
 * STORE_SEGMENT_COUNT_MS (SQLite: a progress handler; PostgreSQL: a
 * statement timeout): past it the read answers KK_ETIMEDOUT and frees its
 * connection for the others.
 */
#define STORE_SEGMENT_FILTER_MAX 4096   /* bytes of a filter (CF_TEXT_MAX) */
#define STORE_SEGMENTS_MAX 1000         /* segments one listing shows */
#define STORE_SEGMENT_COUNT_MS 5000     /* a count's bound */

struct store_segment {
  char name[STORE_LIST_NAME_MAX + 1];
  char filter[STORE_SEGMENT_FILTER_MAX + 1];
  int64_t created_at, updated_at;
  int64_t count;            /* -1: not counted */
};

/* Creates or replaces a segment (name and filter copied; the filter is not
   checked here: the caller parsed it). */
void store_segment_put(struct store *s, int64_t account_id, const char *name, const char *filter,
                       store_done_cb done, void *arg);
/* Deletes one: 0 or KK_ENOENT. */
void store_segment_delete(struct store *s, int64_t account_id, const char *name,
                          store_done_cb done, void *arg);
/* One segment into out (borrowed until done), with its count when count is
   nonzero: 0, KK_ENOENT, KK_EINVAL (its filter no longer parses),
   KK_ETIMEDOUT (the count took too long) or KK_ESTORE. */
void store_segment_get_async(struct store *s, int64_t account_id, const char *name, int count,
                             struct store_segment *out, store_done_cb done, void *arg);
/* fn(arg, segment) for each segment of the account in name order (at most
   STORE_SEGMENTS_MAX; not counted), on the pool thread. */
typedef void (*store_segment_fn)(void *arg, const struct store_segment *sg);
void store_segments_async(struct store *s, int64_t account_id, store_segment_fn fn,
                          void *fn_arg, store_done_cb done, void *arg);

/* ---- what a backend provides (store_int.h) -------------------------------- */

#define STORE_OP_LIST_CONTACT(XX)                                              \
  XX(CONTACT_WRITE)     /* struct store_contact_batch, the caller's */         \
  XX(CONTACT_DELETE)    /* struct store_contact_key */                         \
  XX(IMPORT_CHANGE)     /* struct store_import_op, the caller's */         \
  XX(SEGMENT_PUT)       /* struct store_segment_key */                         \
  XX(SEGMENT_DELETE)    /* struct store_segment_key */

struct store_contact_key {
  int64_t account_id;
  char phone[16];
};
struct store_segment_key {
  int64_t account_id;
  char name[STORE_LIST_NAME_MAX + 1];
  char filter[STORE_SEGMENT_FILTER_MAX + 1];   /* SEGMENT_PUT */
};

/* The reads, on a pool thread through rd; arguments as above. */
struct store_contact_reads {
  int (*get)(struct store *s, void *rd, int64_t account_id, const char *phone,
             struct store_contact *out);
  int (*list)(struct store *s, void *rd, int64_t account_id,
              const struct store_contact_filter *f, struct store_contact *out, int *n,
              char next[16]);
  int (*lists)(struct store *s, void *rd, int64_t account_id, store_list_size_fn fn, void *arg);
  int (*import_get)(struct store *s, void *rd, int64_t account_id, int64_t id,
                    struct store_import *out);
  int (*import_errors)(struct store *s, void *rd, int64_t account_id, int64_t id,
                       store_import_error_fn fn, void *arg);
  /* cond: a parsed filter (NULL: every contact); the contacts whose phone
     is after `after` (""; all); lists 0: their lists not read */
  int (*each)(struct store *s, void *rd, int64_t account_id, const char *list, const char *after,
              int lists, const struct cf_node *cond, store_contact_fn fn, void *arg);
  /* a segment's row (out->count untouched), the account's segments */
  int (*segment_get)(struct store *s, void *rd, int64_t account_id, const char *name,
                     struct store_segment *out);
  int (*segments)(struct store *s, void *rd, int64_t account_id, store_segment_fn fn, void *arg);
  /* the contacts that meet cond, within STORE_SEGMENT_COUNT_MS */
  int (*count)(struct store *s, void *rd, int64_t account_id, const struct cf_node *cond,
               int64_t *out);
  /* store_contacts_settle_async */
  int (*settle)(struct store *s, void *rd);
};

#endif
