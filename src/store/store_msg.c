/*
 * store_msg.c - the backend-neutral side of messages: what the store.h
 * functions about messages queue (the backend carries each write out:
 * store_int.h, STORE_OP_LIST) and the reads they pass to the backend.
 */
#include "store/store_int.h"

void store_retention(struct store *s, struct store_retention *r, store_done_cb done, void *arg) {
  if (r->max <= 0 || r->max > STORE_RETENTION_MAX) r->max = STORE_RETENTION_MAX;
  struct store_op *op = store_atomic(store_op_of(s, STORE_OP_RETENTION, done, arg, r, 1));
  op->weight = r->max;
  store_submit(s, op);
}
