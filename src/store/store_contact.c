/*
 * store_contact.c - the backend-neutral part of the contact bases (see
 * store_contact.h): queuing the writes and running the reads in the pool.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "contact/contact_filter.h"
#include "core/kk_err.h"
#include "core/kk_mem.h"
#include "store/store_int.h"

void store_contact_fini(struct store_contact *c) {
  free(c->attrs);
  c->attrs = NULL;
}

void store_contact_write(struct store *s, struct store_contact_batch *b, store_done_cb done,
                         void *arg) {
  struct store_op *op = store_op_of(s, STORE_OP_CONTACT_WRITE, done, arg, b, 1);
  op->weight = b->n > 0 ? b->n : 1;
  store_submit(s, store_atomic(op));
}

void store_contact_delete(struct store *s, int64_t account_id, const char *phone,
                          store_done_cb done, void *arg) {
  struct store_contact_key *k = kk_xcalloc(1, sizeof *k);   /* freed after done */
  k->account_id = account_id;
  snprintf(k->phone, sizeof k->phone, "%s", phone);
  store_submit(s, store_atomic(store_op_of(s, STORE_OP_CONTACT_DELETE, done, arg, k, 0)));
}

void store_import_change(struct store *s, struct store_import_op *op, store_done_cb done,
                         void *arg) {
  store_submit(s, store_atomic(store_op_of(s, STORE_OP_IMPORT_CHANGE, done, arg, op, 1)));
}

/* ---- reads in the pool -------------------------------------------------------- */

/* One job for every contact read: which read, and its arguments. */
struct contact_job {
  int what;
  int64_t account_id;
  int64_t id;
  char phone[16];
  char list[STORE_LIST_NAME_MAX + 1];
  int has_list;
  char after[16];           /* J_EACH: from the contact after this phone */
  int no_lists;             /* J_EACH: their lists not read */
  char segment[STORE_LIST_NAME_MAX + 1];   /* "" none */
  int count;
  struct store_segment *sg;
  store_segment_fn sfn;
  struct store_contact_filter f;
  struct store_contact *out;
  int *n;
  char *next;
  struct store_import *imp;
  store_list_size_fn lfn;
  store_import_error_fn efn;
  store_contact_fn cfn;
  void *fn_arg;
  const char (*phones)[16];
  size_t nphones;
};
enum { J_GET, J_LIST, J_LISTS, J_IMPORT, J_ERRORS, J_EACH, J_SEGMENT, J_SEGMENTS, J_PHONES,
       J_SETTLE };

/* The parsed filter of the segment named j->segment into *cond (NULL when
   the job names none). 0, KK_ENOENT, KK_EINVAL or KK_ESTORE. */
static int segment_cond(struct store *s, void *rd, struct contact_job *j,
                        struct store_segment *sg, struct cf_node **cond) {
  *cond = NULL;
  if (!j->segment[0]) return 0;
  const struct store_contact_reads *r = &s->be->read.contact;
  int rc = r->segment_get(s, rd, j->account_id, j->segment, sg);
  if (rc != 0) return rc;
  struct cf_error e;
  return contact_filter_parse(sg->filter, cond, &e) == 0 ? 0 : KK_EINVAL;
}

/* The jobs that read through a segment's filter. */
static int pool_segment(struct store *s, void *rd, struct contact_job *j) {
  const struct store_contact_reads *r = &s->be->read.contact;
  if (j->what == J_SEGMENTS) return r->segments(s, rd, j->account_id, j->sfn, j->fn_arg);
  struct store_segment own;
  struct store_segment *sg = j->sg ? j->sg : &own;   /* J_SEGMENT: the caller's */
  struct cf_node *cond;
  int rc = segment_cond(s, rd, j, sg, &cond);
  if (rc != 0) return rc;
  switch (j->what) {
  case J_SEGMENT:
    sg->count = -1;
    if (j->count) rc = r->count(s, rd, j->account_id, cond, &sg->count);
    break;
  case J_LIST:
    j->f.cond = cond;
    rc = r->list(s, rd, j->account_id, &j->f, j->out, j->n, j->next);
    break;
  default:
    rc = r->each(s, rd, j->account_id, j->has_list ? j->list : NULL, j->after, !j->no_lists,
                 cond, j->cfn, j->fn_arg);
    break;
  }
  contact_filter_free(cond);
  return rc;
}

/* J_PHONES: each phone's contact, or the phone alone. */
static int pool_phones(struct store *s, void *rd, struct contact_job *j) {
  for (size_t i = 0; i < j->nphones; i++) {
    struct store_contact c;
    memset(&c, 0, sizeof c);
    int rc = s->be->read.contact.get(s, rd, j->account_id, j->phones[i], &c);
    if (rc == KK_ENOENT) {
      memset(&c, 0, sizeof c);
      snprintf(c.phone, sizeof c.phone, "%s", j->phones[i]);
    } else if (rc) {
      store_contact_fini(&c);
      return rc;
    }
    rc = j->cfn(j->fn_arg, &c);
    store_contact_fini(&c);
    if (rc) return rc;
  }
  return 0;
}

static int pool_contact(struct store *s, void *rd, void *job) {
  struct contact_job *j = job;
  const struct store_contact_reads *r = &s->be->read.contact;
  if (r->get == NULL) return KK_ESTORE;   /* a backend without contacts */
  switch (j->what) {
  case J_LIST:
  case J_EACH:
  case J_SEGMENT:
  case J_SEGMENTS:
    return pool_segment(s, rd, j);
  case J_GET:
    return r->get(s, rd, j->account_id, j->phone, j->out);
  case J_PHONES:
    return pool_phones(s, rd, j);
  case J_SETTLE:
    return r->settle(s, rd);
  case J_LISTS:
    return r->lists(s, rd, j->account_id, j->lfn, j->fn_arg);
  case J_IMPORT:
    return r->import_get(s, rd, j->account_id, j->id, j->imp);
  case J_ERRORS:
    return r->import_errors(s, rd, j->account_id, j->id, j->efn, j->fn_arg);
  default:
    return KK_EINVAL;
  }
}

/* A job of kind what for account_id (freed after done by the pool). */
static struct contact_job *job_new(int what, int64_t account_id) {
  struct contact_job *j = kk_xcalloc(1, sizeof *j);
  j->what = what;
  j->account_id = account_id;
  return j;
}

void store_contact_get_async(struct store *s, int64_t account_id, const char *phone,
                             struct store_contact *out, store_done_cb done, void *arg) {
  struct contact_job *j = job_new(J_GET, account_id);
  snprintf(j->phone, sizeof j->phone, "%s", phone);
  j->out = out;
  store_pool_run(s, pool_contact, j, done, arg);
}

void store_contact_list_async(struct store *s, int64_t account_id,
                              const struct store_contact_filter *f, struct store_contact *out,
                              int *n, char next[16], store_done_cb done, void *arg) {
  struct contact_job *j = job_new(J_LIST, account_id);
  j->f = *f;
  j->f.cond = NULL;
  if (f->segment) snprintf(j->segment, sizeof j->segment, "%s", f->segment);
  if (j->f.limit <= 0 || j->f.limit > STORE_CONTACT_PAGE_MAX) j->f.limit = STORE_CONTACT_PAGE_MAX;
  j->out = out;
  j->n = n;
  j->next = next;
  store_pool_run(s, pool_contact, j, done, arg);
}

void store_lists_async(struct store *s, int64_t account_id, store_list_size_fn fn, void *fn_arg,
                       store_done_cb done, void *arg) {
  struct contact_job *j = job_new(J_LISTS, account_id);
  j->lfn = fn;
  j->fn_arg = fn_arg;
  store_pool_run(s, pool_contact, j, done, arg);
}

void store_import_get_async(struct store *s, int64_t account_id, int64_t id,
                            struct store_import *out, store_done_cb done, void *arg) {
  struct contact_job *j = job_new(J_IMPORT, account_id);
  j->id = id;
  j->imp = out;
  store_pool_run(s, pool_contact, j, done, arg);
}

void store_import_errors_async(struct store *s, int64_t account_id, int64_t id,
                               store_import_error_fn fn, void *fn_arg, store_done_cb done,
                               void *arg) {
  struct contact_job *j = job_new(J_ERRORS, account_id);
  j->id = id;
  j->efn = fn;
  j->fn_arg = fn_arg;
  store_pool_run(s, pool_contact, j, done, arg);
}

void store_contacts_each_async(struct store *s, int64_t account_id, const char *list,
                               const char *segment, store_contact_fn fn, void *fn_arg,
                               store_done_cb done, void *arg) {
  struct contact_job *j = job_new(J_EACH, account_id);
  if (segment) snprintf(j->segment, sizeof j->segment, "%s", segment);
  if (list) {
    snprintf(j->list, sizeof j->list, "%s", list);
    j->has_list = 1;
  }
  j->cfn = fn;
  j->fn_arg = fn_arg;
  store_pool_run(s, pool_contact, j, done, arg);
}

void store_contacts_from_async(struct store *s, int64_t account_id, const char *list,
                               const char *segment, const char *after, store_contact_fn fn,
                               void *fn_arg, store_done_cb done, void *arg) {
  struct contact_job *j = job_new(J_EACH, account_id);
  if (segment) snprintf(j->segment, sizeof j->segment, "%s", segment);
  if (list) {
    snprintf(j->list, sizeof j->list, "%s", list);
    j->has_list = 1;
  }
  snprintf(j->after, sizeof j->after, "%s", after ? after : "");
  j->no_lists = 1;
  j->cfn = fn;
  j->fn_arg = fn_arg;
  store_pool_run(s, pool_contact, j, done, arg);
}

void store_contacts_of_async(struct store *s, int64_t account_id, const char (*phones)[16],
                             size_t n, store_contact_fn fn, void *fn_arg, store_done_cb done,
                             void *arg) {
  struct contact_job *j = job_new(J_PHONES, account_id);
  j->phones = phones;
  j->nphones = n;
  j->cfn = fn;
  j->fn_arg = fn_arg;
  store_pool_run(s, pool_contact, j, done, arg);
}

void store_contacts_settle_async(struct store *s, store_done_cb done, void *arg) {
  store_pool_run(s, pool_contact, job_new(J_SETTLE, 0), done, arg);
}

/* ---- segments ------------------------------------------------------------------ */

/* A segment's write (freed after done). */
static void segment_op(struct store *s, enum store_op_kind kind, int64_t account_id,
                       const char *name, const char *filter, store_done_cb done, void *arg) {
  struct store_segment_key *k = kk_xcalloc(1, sizeof *k);   /* freed after done */
  k->account_id = account_id;
  snprintf(k->name, sizeof k->name, "%s", name);
  if (filter) snprintf(k->filter, sizeof k->filter, "%s", filter);
  store_submit(s, store_atomic(store_op_of(s, kind, done, arg, k, 0)));
}

void store_segment_put(struct store *s, int64_t account_id, const char *name, const char *filter,
                       store_done_cb done, void *arg) {
  segment_op(s, STORE_OP_SEGMENT_PUT, account_id, name, filter, done, arg);
}

void store_segment_delete(struct store *s, int64_t account_id, const char *name,
                          store_done_cb done, void *arg) {
  segment_op(s, STORE_OP_SEGMENT_DELETE, account_id, name, NULL, done, arg);
}

void store_segment_get_async(struct store *s, int64_t account_id, const char *name, int count,
                             struct store_segment *out, store_done_cb done, void *arg) {
  struct contact_job *j = job_new(J_SEGMENT, account_id);
  snprintf(j->segment, sizeof j->segment, "%s", name);
  j->count = count;
  j->sg = out;
  store_pool_run(s, pool_contact, j, done, arg);
}

void store_segments_async(struct store *s, int64_t account_id, store_segment_fn fn,
                          void *fn_arg, store_done_cb done, void *arg) {
  struct contact_job *j = job_new(J_SEGMENTS, account_id);
  j->sfn = fn;
  j->fn_arg = fn_arg;
  store_pool_run(s, pool_contact, j, done, arg);
}
