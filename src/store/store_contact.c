/*
 * store_contact.c - the backend-neutral part of the contact bases (see
 * store_contact.h): queuing the writes and running the reads in the pool.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
  struct store_contact_filter f;
  struct store_contact *out;
  int *n;
  char *next;
  struct store_import *imp;
  store_list_size_fn lfn;
  store_import_error_fn efn;
  store_contact_fn cfn;
  void *fn_arg;
};
enum { J_GET, J_LIST, J_LISTS, J_IMPORT, J_ERRORS, J_EACH };

static int pool_contact(struct store *s, void *rd, void *job) {
  struct contact_job *j = job;
  const struct store_contact_reads *r = &s->be->read.contact;
  if (r->get == NULL) return KK_ESTORE;   /* a backend without contacts */
  switch (j->what) {
  case J_GET:
    return r->get(s, rd, j->account_id, j->phone, j->out);
  case J_LIST:
    return r->list(s, rd, j->account_id, &j->f, j->out, j->n, j->next);
  case J_LISTS:
    return r->lists(s, rd, j->account_id, j->lfn, j->fn_arg);
  case J_IMPORT:
    return r->import_get(s, rd, j->account_id, j->id, j->imp);
  case J_ERRORS:
    return r->import_errors(s, rd, j->account_id, j->id, j->efn, j->fn_arg);
  default:
    return r->each(s, rd, j->account_id, j->has_list ? j->list : NULL, j->cfn, j->fn_arg);
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
                               store_contact_fn fn, void *fn_arg, store_done_cb done,
                               void *arg) {
  struct contact_job *j = job_new(J_EACH, account_id);
  if (list) {
    snprintf(j->list, sizeof j->list, "%s", list);
    j->has_list = 1;
  }
  j->cfn = fn;
  j->fn_arg = fn_arg;
  store_pool_run(s, pool_contact, j, done, arg);
}
