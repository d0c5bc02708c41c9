/*
 * store_node.c - the nodes of the store's database and the work each holds
 * (store.h: store_nodes_list), read on a pool thread. On PostgreSQL each
 * kaskad process is a node (pg_node.c); on SQLite there is the one.
 */
#include <stdlib.h>

#include "core/kk_mem.h"
#include "store/store.h"
#include "store/store_int.h"

struct nodes_job {
  struct store_node *out;
  int *n;
};

static int pool_nodes(struct store *s, void *rd, void *job) {
  struct nodes_job *j = job;
  return s->be->read.nodes(s, rd, j->out, STORE_NODES_MAX, j->n);
}

void store_nodes_list(struct store *s, struct store_node *out, int *n, store_done_cb done,
                      void *arg) {
  struct nodes_job *j = kk_xcalloc(1, sizeof *j);   /* freed after done */
  j->out = out;
  j->n = n;
  *n = 0;
  store_pool_run(s, pool_nodes, j, done, arg);
}
