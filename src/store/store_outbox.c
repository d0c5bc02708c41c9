/*
 * store_outbox.c - the backend-neutral side of the customer callbacks'
 * outbox: what the store.h functions about it queue (the backend carries
 * each write out: store_int.h, STORE_OP_LIST).
 */
#include <stdio.h>
#include <stdlib.h>

#include "core/kk_mem.h"
#include "store/store_int.h"

void store_outbox_result(struct store *s, int64_t id, int delivered, int64_t due_at,
                         const char *error, store_done_cb done, void *arg) {
  struct store_outbox_data *d = kk_xcalloc(1, sizeof *d);   /* freed with the op */
  d->id = id;
  d->delivered = delivered;
  d->due_at = due_at;
  snprintf(d->error, sizeof d->error, "%s", error ? error : "");
  /* Lost, a delivered callback would be sent again. */
  store_submit(s, store_keep(store_op_of(s, STORE_OP_OUTBOX_RESULT, done, arg, d, 0)));
}

void store_outbox_defer(struct store *s, int64_t id, int64_t due_at, store_done_cb done,
                        void *arg) {
  struct store_outbox_data *d = kk_xcalloc(1, sizeof *d);   /* freed with the op */
  d->id = id;
  d->due_at = due_at;
  store_submit(s, store_op_of(s, STORE_OP_OUTBOX_DEFER, done, arg, d, 0));
}

void store_outbox_trim(struct store *s, struct store_outbox_trim *t, store_done_cb done,
                       void *arg) {
  store_submit(s, store_op_of(s, STORE_OP_OUTBOX_TRIM, done, arg, t, 1));
}
