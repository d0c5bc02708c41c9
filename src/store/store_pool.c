/*
 * store_pool.c - reads off the loop thread: a few pool threads of the
 * store's own run the reads that may take long (listings, reports, gets of
 * history rows), each through a read connection of its own that the
 * backend opens on the thread's first read (store_backend.reader_open) and
 * closes when the store closes; the result goes to a done callback on the
 * loop thread.
 *
 * The threads are the store's rather than libuv's so that store_close()
 * can wait for reads in flight, close their connections and run their done
 * callbacks before the store goes: a read queued before the close is
 * answered, none touches a closed store. A finished read is handed to the
 * loop through the store's async handle, with the writer's commits.
 */
#include <pthread.h>
#include <stdlib.h>

#include "core/kk_err.h"
#include "core/kk_mem.h"
#include "store/store_int.h"

#define POOL_THREADS 4            /* as many as libuv's pool has by default */

struct pool_read {
  struct pool_read *next;
  store_pool_fn fn;
  void *job;                /* freed with free() after done */
  store_done_cb done;
  void *arg;
  int rc;
};

struct store_pool {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  pthread_t th[POOL_THREADS];
  int nthreads;
  int idle;                       /* threads waiting for a read, guarded by mu */
  int stop;                       /* guarded by mu */
  struct pool_read *q_head, **q_tail;   /* queued, guarded by mu */
  struct pool_read *d_head, **d_tail;   /* done, for the loop, guarded by mu */
};

static void *pool_main(void *p) {
  struct store *s = p;
  struct store_pool *pl = s->pool;
  /* this thread's reader, opened now, before any read waits for it (a
     first read of a new connection also reads the schema: tens of ms), and
     again at a read if it could not be */
  void *rd = s->be->reader_open(s);
  pthread_mutex_lock(&pl->mu);
  for (;;) {
    while (pl->q_head == NULL && !pl->stop) {
      pl->idle++;
      pthread_cond_wait(&pl->cv, &pl->mu);
      pl->idle--;
    }
    struct pool_read *r = pl->q_head;
    if (r == NULL) break;   /* stopping, and nothing is left to read */
    pl->q_head = r->next;
    if (pl->q_head == NULL) pl->q_tail = &pl->q_head;
    pthread_mutex_unlock(&pl->mu);

    if (rd == NULL) rd = s->be->reader_open(s);
    r->rc = rd ? r->fn(s, rd, r->job) : KK_ESTORE;

    pthread_mutex_lock(&pl->mu);
    r->next = NULL;
    *pl->d_tail = r;
    pl->d_tail = &r->next;
    uv_async_send(&s->async);
  }
  pthread_mutex_unlock(&pl->mu);
  if (rd) s->be->reader_close(s, rd);
  return NULL;
}

void store_pool_run(struct store *s, store_pool_fn fn, void *job, store_done_cb done,
                    void *arg) {
  struct store_pool *pl = s->pool;
  if (pl == NULL) {
    pl = s->pool = kk_xcalloc(1, sizeof *pl);   /* freed by store_pool_stop() */
    pthread_mutex_init(&pl->mu, NULL);
    pthread_cond_init(&pl->cv, NULL);
    pl->q_tail = &pl->q_head;
    pl->d_tail = &pl->d_head;
    /* Every thread from the first read on, each opening its reader at once:
       a short read (a report) that comes while a long one runs does not
       wait for a thread and a connection to be made for it. */
    pthread_mutex_lock(&pl->mu);
    while (pl->nthreads < POOL_THREADS &&
           pthread_create(&pl->th[pl->nthreads], NULL, pool_main, s) == 0)
      pl->nthreads++;
    pthread_mutex_unlock(&pl->mu);
  }
  if (pl->stop) {
    /* Queued by a done callback while the store closes: nothing reads it. */
    if (done) done(arg, KK_ESTORE);
    free(job);
    return;
  }
  struct pool_read *r = kk_xcalloc(1, sizeof *r);   /* freed after done */
  r->fn = fn;
  r->job = job;
  r->done = done;
  r->arg = arg;
  s->pending++;
  pthread_mutex_lock(&pl->mu);
  *pl->q_tail = r;
  pl->q_tail = &r->next;
  /* A thread more while every one is busy, up to POOL_THREADS. */
  if (pl->idle == 0 && pl->nthreads < POOL_THREADS &&
      pthread_create(&pl->th[pl->nthreads], NULL, pool_main, s) == 0)
    pl->nthreads++;
  pthread_cond_signal(&pl->cv);
  int stuck = pl->nthreads == 0;
  pthread_mutex_unlock(&pl->mu);
  if (stuck) {
    /* No thread could be started: the read fails, on the loop's next turn. */
    pthread_mutex_lock(&pl->mu);
    if (pl->q_head == r) {
      pl->q_head = NULL;
      pl->q_tail = &pl->q_head;
      r->rc = KK_ESTORE;
      *pl->d_tail = r;
      pl->d_tail = &r->next;
    }
    pthread_mutex_unlock(&pl->mu);
    uv_async_send(&s->async);
  }
}

void store_pool_deliver(struct store *s) {
  struct store_pool *pl = s->pool;
  if (pl == NULL) return;
  pthread_mutex_lock(&pl->mu);
  struct pool_read *r = pl->d_head;
  pl->d_head = NULL;
  pl->d_tail = &pl->d_head;
  pthread_mutex_unlock(&pl->mu);
  while (r) {
    struct pool_read *next = r->next;
    s->pending--;
    if (r->done) r->done(r->arg, r->rc);
    free(r->job);
    free(r);
    r = next;
  }
}

void store_pool_stop(struct store *s) {
  struct store_pool *pl = s->pool;
  if (pl == NULL) return;
  pthread_mutex_lock(&pl->mu);
  pl->stop = 1;
  pthread_cond_broadcast(&pl->cv);
  int n = pl->nthreads;
  pthread_mutex_unlock(&pl->mu);
  /* The threads read what is queued, then close their readers. */
  for (int i = 0; i < n; i++) pthread_join(pl->th[i], NULL);
  store_pool_deliver(s);
  pthread_mutex_destroy(&pl->mu);
  pthread_cond_destroy(&pl->cv);
  free(pl);
  s->pool = NULL;
}
