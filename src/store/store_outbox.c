/*
 * store_outbox.c - the backend-neutral side of the customer callbacks'
 * outbox: what the store.h functions about it queue (the backend carries
 * each write out: store_int.h, STORE_OP_LIST), and the due rows it hands
 * out by claims, account by account.
 */
#include <stdio.h>
#include <stdlib.h>

#include "core/kk_err.h"
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

/* ---- due rows, by claims ----------------------------------------------------- */

/* Reads up to want due rows of account, claims them and hands those it got
   to take. 0 or KK_ESTORE (take not called). */
static int claim_account(struct store *s, struct store_outbox_claim *c, int64_t account,
                         int want) {
  if (want > c->cap) want = c->cap;
  int n = 0;
  if (s->be->read.outbox_due(s, account, c->now, c->rows, want, &n) != 0) return KK_ESTORE;
  if (n == 0) {
    c->take(c->arg, account, c->rows, 0);
    return 0;
  }
  int64_t ids[n];
  unsigned char granted[n];
  for (int i = 0; i < n; i++) ids[i] = c->rows[i].id;
  int rc = s->be->claim(s, STORE_CLAIM_OUTBOX, ids, n, c->lease_ms, granted);
  int m = 0;
  for (int i = 0; i < n; i++) {
    if (rc == 0 && granted[i] == STORE_CLAIM_GOT) {
      c->rows[m++] = c->rows[i];
    } else {  /* another writer's to deliver */
      free(c->rows[i].url);
      free(c->rows[i].payload);
    }
  }
  if (rc) return KK_ESTORE;
  c->take(c->arg, account, c->rows, m);
  return 0;
}

int store_outbox_claim(struct store *s, struct store_outbox_claim *c) {
  int max = c->accounts_max > 0 ? c->accounts_max : 1;
  int64_t accounts[max];
  int64_t start_after = c->after;
  c->more = 0;
  for (int pass = 0; pass < 2; pass++) {
    int n = 0;
    if (s->be->read.outbox_accounts(s, c->now, pass ? 0 : start_after, accounts, max, &n) != 0)
      return KK_ESTORE;
    for (int i = 0; i < n; i++) {
      if (pass && accounts[i] > start_after) return 0;   /* round done */
      int want = c->want(c->arg, accounts[i]);
      if (want < 0) return 0;
      /* An account whose rows cannot be read now is passed over. */
      if (want > 0) claim_account(s, c, accounts[i], want);
      c->after = accounts[i];
    }
    if (n == max) {
      /* More accounts may be due: the next call goes on after these. */
      c->more = 1;
      return 0;
    }
    if (start_after == 0) return 0;   /* this pass began at the first account */
  }
  return 0;
}
