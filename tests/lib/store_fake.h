/*
 * store_fake.h - a store backend with no database, for tests of the
 * backend-neutral writer (src/store/store_writer.c): it counts the
 * transaction calls the writer makes and fails commits on demand, so a test
 * sees the writer's group commit, savepoints and fault handling on their own.
 */
#ifndef KK_STORE_FAKE_H
#define KK_STORE_FAKE_H

#include "store/store_int.h"

/* The fake's store. The writer thread writes the counters inside a batch;
   the loop thread may read them in a done callback or after one ran (the
   store's mutex orders both), and set the knobs before it queues. */
struct store_fake {
  struct store base;
  int begins, commits, rollbacks, savepoints, releases, rollbacks_to, undone;
  int in_tx;                /* a transaction is open */
  int batches_committed;
  int ops_in_last_batch;    /* counted by store_fake_exec */
  int fail_commits;         /* knob: the next this many commits fail ... */
  int fail_fault;           /* ... with this STORE_FAULT_* */
  int fault;                /* the last failure's kind */
  int closed;
  int64_t last_id[2];       /* by enum store_id_kind */
};

extern const struct store_backend store_fake_backend;

/* The fake of a store opened with store_fake_backend. */
#define STORE_FAKE(s) ((struct store_fake *)(s))

#endif
