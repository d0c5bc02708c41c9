/*
 * test_store_pg_writers.c - a PostgreSQL node that writes through two
 * connections (store_opts.writers): the store's contract for SMS results,
 * receipts, early rows and cascades holds as with one, the SMS results and
 * receipts go on the second writer (by message, and a receipt by the part
 * its submit_sm_resp named), and the counters add up both.
 */
#include <string.h>
#include <unistd.h>

#include "core/kk_err.h"
#include "kk_test.h"
#include "store/store.h"
#include "store/store_int.h"
#include "store_contract.h"

/* Each writer of p's store has committed something, and the store's
   counters are their sum. */
static void both_wrote(struct sc_pg *p) {
  struct store *s = p->st[0].store;
  ASSERT_EQ(s->nlanes, 1);
  struct store_stats all, first, second;
  store_get_stats(s, &all);
  pthread_mutex_lock(&s->mu);
  first = s->stats;
  pthread_mutex_unlock(&s->mu);
  pthread_mutex_lock(&s->lanes[0]->mu);
  second = s->lanes[0]->stats;
  pthread_mutex_unlock(&s->lanes[0]->mu);
  ASSERT(first.commits > 0);
  ASSERT(second.commits > 0);
  ASSERT_EQ(all.commits, first.commits + second.commits);
  ASSERT_EQ(all.ops, first.ops + second.ops);
  ASSERT_EQ(store_pending(s), 0);
}

KK_TEST(store_pg_writers_sms_runs) {
  struct sc_pg p;
  sc_pg_open_writers(&p, 1, 2);
  sc_sms_runs(&p.e[0]);
  both_wrote(&p);
  struct store_cascade_stats c;
  store_get_cascade_stats(p.st[0].store, &c);
  ASSERT(c.sent[KK_CHAN_SMS] >= 12);   /* counted by the second writer, read through the first */
  sc_pg_close(&p);
}

KK_TEST(store_pg_writers_early_receipt_and_status) {
  struct sc_pg p;
  sc_pg_open_writers(&p, 1, 2);
  sc_early_receipt_and_status(&p.e[0]);
  both_wrote(&p);
  sc_pg_close(&p);
}

KK_TEST(store_pg_writers_vk_viber_sms) {
  struct sc_pg p;
  sc_pg_open_writers(&p, 1, 2);
  sc_cascade_vk_viber_sms(&p.e[0]);
  both_wrote(&p);
  sc_pg_close(&p);
}

KK_TEST(store_pg_writers_batch_insert_and_its_notes) {
  struct sc_pg p;
  sc_pg_open_writers(&p, 1, 2);
  sc_batch_insert_and_notes(&p.e[0], 200);
  sc_pg_close(&p);
}

/* s writes through `want` writers within a few heartbeats. */
static void uses(struct store *s, int want) {
  int use = 0;
  for (int i = 0; i < 100; i++) {
    use = __atomic_load_n(&s->writers_use, __ATOMIC_RELAXED);
    if (use == want) break;
    usleep(50 * 1000);
  }
  ASSERT_EQ(use, want);
}

/* Two nodes of one database share store_writers: each writes through half
   (at least one), the rest of its connections idle; a node alone again
   writes through all of them. */
KK_TEST(store_pg_writers_shared_by_the_live_nodes) {
  struct sc_pg p;
  sc_pg_open_writers(&p, 2, 3);
  struct store *a = p.st[0].store, *b = p.st[1].store;
  ASSERT_EQ(a->nlanes, 2);
  uses(a, 1);
  uses(b, 1);
  sc_sms_runs(&p.e[0]);   /* everything on the first writer of each */
  ASSERT_EQ(tmp_store_close(&p.st[1]), 0);
  p.nst = 1;
  uses(a, 3);
  sc_pg_close(&p);
}
