/*
 * store_fake.c - the store backend with no database (see store_fake.h).
 */
#include "lib/store_fake.h"

#include <stdlib.h>

#include "core/kk_err.h"
#include "core/kk_mem.h"

static int fake_open(const struct store_opts *opts, struct store **out) {
  (void)opts;
  struct store_fake *f = kk_xcalloc(1, sizeof *f);
  *out = &f->base;
  return 0;
}

static void fake_close(struct store *s) { STORE_FAKE(s)->closed = 1; }

static int fake_begin(struct store *s) {
  struct store_fake *f = STORE_FAKE(s);
  f->begins++;
  f->in_tx = 1;
  f->ops_in_last_batch = 0;
  return 0;
}

static int fake_commit(struct store *s) {
  struct store_fake *f = STORE_FAKE(s);
  f->commits++;
  if (f->fail_commits > 0) {
    f->fail_commits--;
    f->fault = f->fail_fault;
    return KK_ESTORE;         /* the transaction stays open, as SQLite's may */
  }
  f->in_tx = 0;
  f->batches_committed++;
  return 0;
}

static void fake_rollback(struct store *s) {
  struct store_fake *f = STORE_FAKE(s);
  if (!f->in_tx) return;
  f->rollbacks++;
  f->in_tx = 0;
}

static int fake_savepoint(struct store *s) {
  STORE_FAKE(s)->savepoints++;
  return 0;
}

static void fake_release(struct store *s) { STORE_FAKE(s)->releases++; }
static void fake_rollback_to(struct store *s) { STORE_FAKE(s)->rollbacks_to++; }
static int fake_in_tx(struct store *s) { return STORE_FAKE(s)->in_tx; }
static int fake_fault(struct store *s) { return STORE_FAKE(s)->fault; }
static void fake_fault_clear(struct store *s) { STORE_FAKE(s)->fault = STORE_FAULT_NONE; }
static void fake_before_commit(struct store *s, double mono_ms) { (void)s, (void)mono_ms; }
static void fake_undone(struct store *s) { STORE_FAKE(s)->undone++; }
static void fake_publish(struct store *s) { (void)s; }

static int64_t fake_new_id(struct store *s, enum store_id_kind kind) {
  return ++STORE_FAKE(s)->last_id[kind];
}

static int fake_claim(struct store *s, enum store_claim_kind kind, const int64_t *ids, int n,
                      int64_t lease_ms, unsigned char *granted) {
  (void)s, (void)kind, (void)ids, (void)lease_ms;
  for (int i = 0; i < n; i++) granted[i] = 1;
  return 0;
}

const struct store_backend store_fake_backend = {
    .name = "fake",
    .open = fake_open,
    .close = fake_close,
    .begin = fake_begin,
    .commit = fake_commit,
    .rollback = fake_rollback,
    .savepoint = fake_savepoint,
    .release = fake_release,
    .rollback_to = fake_rollback_to,
    .in_tx = fake_in_tx,
    .fault = fake_fault,
    .fault_clear = fake_fault_clear,
    .before_commit = fake_before_commit,
    .undone = fake_undone,
    .publish = fake_publish,
    .new_id = fake_new_id,
    .claim = fake_claim,
};
