/*
 * store_writer.c - the backend-neutral part of the store: the operation
 * queue, the writer thread that group-commits it, what a failed commit
 * means (kept operations tried again, the degraded state, giving up), and
 * the hand-off of committed operations and their notes to the loop.
 *
 * The writer knows no database: it begins, commits and rolls back through
 * the backend's table (store_int.h: struct store_backend), and each
 * operation's body is the backend's. The SQLite backend is in sqlite/.
 */
#include "store/store.h"

#include <ctype.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "core/kk_err.h"
#include "core/kk_log.h"
#include "core/kk_mem.h"
#include "store/store_int.h"
#include "store/store_cache.h"

#define LOGCTX "store"
#define BATCH_GATHER 512          /* queued rows that make a batch worth committing now */
#define URGENT_BATCH 32           /* rows of other operations a batch with urgent ones takes */
#define STREAM_BATCH 256          /* rows a batch takes at most while urgent ones come: the
                                     next one waits for this commit at most */
#define FAIR_BATCH 512            /* rows of urgent operations a batch takes while
                                     several tenants' come */
#define STREAM_MS 1000.0          /* for this long after the last urgent operation */
#define GATHER_NS 1000000L        /* longest wait for them under load: 1 ms */
#define RETRY_MIN_MS 100          /* first pause before kept operations are tried again */
#define RETRY_MAX_MS 1000         /* longest pause between tries, and between probes */
#define STORE_LOCK_TRIES 8        /* runs of a batch that meets other writers' locks */
#define LATER_PAUSE_MAX_MS 32     /* longest pause after a batch all handed back */

/* What the writer waits for, so that store_submit() wakes it only when that
   has come: a wake-up per operation would cost a futex call on each side
   and a trip through the scheduler. */
enum { W_BUSY, W_ANY, W_BATCH };


const double store_commit_bounds_ms[STORE_HIST_BUCKETS] = {
    0.25, 0.5, 1, 2, 5, 10, 20, 50, 100, 250, 500, 1000};
const double store_batch_bounds[STORE_HIST_BUCKETS] = {
    1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000};

/* The test clock's shift: 0 but in tests (setting test_clock), which move
   it forward only; read by every thread. */
static _Atomic int64_t clock_shift_ms;

void store_clock_shift(int64_t ms) { clock_shift_ms += ms; }

int64_t store_now_ms(void) {
  struct timeval tv;
  gettimeofday(&tv, NULL);
  return (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000 + clock_shift_ms;
}

static double mono_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6;
}

/* ---- writer thread ----------------------------------------------------- */

static void hist_add(uint64_t *hist, const double *bounds, double v) {
  int i = 0;
  while (i < STORE_HIST_BUCKETS && v > bounds[i]) i++;
  hist[i]++;
}

#ifdef KK_TESTING
/* Test builds only: while the file named by KASKAD_TEST_STORE_IOERR exists,
   every commit fails as if the disk had returned an I/O error, which a test
   cannot otherwise cause on demand. */
static int test_ioerr(void) {
  const char *f = getenv("KASKAD_TEST_STORE_IOERR");
  return f && *f && access(f, F_OK) == 0;
}
#else
static int test_ioerr(void) { return 0; }
#endif

/* A lock conflict with another writer of the database (be->lock_conflict). */
static int lock_conflict(struct store *s) {
  return s->be->lock_conflict && s->be->lock_conflict(s);
}

/* Runs the batch once, in one transaction; sets every op's rc. 0 when it
   committed, else KK_ESTORE with *fault why. */
static int run_try(struct store *s, struct store_op *batch, double t0, int *fault) {
  const struct store_backend *be = s->be;
  *fault = STORE_FAULT_NONE;
  be->fault_clear(s);
  for (struct store_op *op = batch; op; op = op->next) op->rc = 0;
  int rc = be->begin(s);
  if (rc != 0) *fault = be->fault(s);
  if (rc == 0) {
    for (struct store_op *op = batch; op; op = op->next) {
      if (!op->atomic) {
        /* These find their rows before writing and fail only when the database
           itself does: then the whole transaction goes. */
        op->rc = op->exec(s, op);
        if (op->rc == STORE_LATER) continue;   /* handed back: nothing written */
        if (op->rc != 0) {
          if (!lock_conflict(s))
            kk_error(LOGCTX, "operation failed (%s): rolling back its batch", kk_strerror(op->rc));
          *fault = be->fault(s);
          rc = KK_ESTORE;
          break;
        }
        continue;
      }
      if (be->savepoint(s) != 0) {
        op->rc = KK_ESTORE;
        if (lock_conflict(s)) {   /* what went ahead of it met another writer's lock */
          *fault = STORE_FAULT_BUSY;
          rc = KK_ESTORE;
          break;
        }
        continue;
      }
      int notes_before = s->nw;
      op->rc = op->exec(s, op);
      if (op->rc == STORE_LATER) {   /* handed back: nothing written */
        be->release(s);
        continue;
      }
      if (op->rc != 0 && (!be->in_tx(s) || lock_conflict(s))) {
        /* The database rolled the whole transaction back itself (an I/O error,
           a full disk), or the operation met another writer's lock: not its
           own failure, the whole batch fails (and is run again). */
        *fault = lock_conflict(s) ? STORE_FAULT_BUSY : be->fault(s);
        rc = KK_ESTORE;
        break;
      }
      if (op->rc != 0) {
        be->rollback_to(s);
        notes_truncate(s, notes_before);   /* what it started is undone too */
        be->undone(s);
      }
      be->release(s);
    }
    if (rc == 0 && test_ioerr()) {
      *fault = STORE_FAULT_IO;
      rc = KK_ESTORE;
    }
    if (rc == 0) be->before_commit(s, t0);
    if (rc == 0) rc = be->commit(s);
    if (rc != 0) {
      if (*fault == STORE_FAULT_NONE) *fault = be->fault(s);
      be->rollback(s);
      be->undone(s);
    }
  }
  notes_commit(s, rc == 0);
  return rc;
}

/* Writer: waits a little before a batch is tried again after a lock
   conflict, longer after each (2, 4, 8 ... ms, and up to as much again at
   random, so that two nodes that met do not meet again in step). */
static void lock_backoff(int try, unsigned *seed) {
  long ms = 2L << (try < 6 ? try : 6);
  ms += (long)(rand_r(seed) % (unsigned)ms);
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

/* Runs one batch in one transaction; sets every op's rc. A batch that met
   another writer's lock (PostgreSQL with several nodes) is rolled back and
   run again whole, up to STORE_LOCK_TRIES times: its operations stay
   unanswered meanwhile. Returns why the commit failed (STORE_FAULT_NONE:
   committed). */
static int run_batch(struct store *s, struct store_op *batch, int nops) {
  double t0 = mono_ms();
  int fault = STORE_FAULT_NONE, rc, retries = 0;
  unsigned seed = (unsigned)t0 ^ (unsigned)nops;
  for (s->lock_try = 0;; s->lock_try++) {
    rc = run_try(s, batch, t0, &fault);
    if (rc == 0 || s->lock_try + 1 >= STORE_LOCK_TRIES || !lock_conflict(s)) break;
    retries++;
    kk_warnx(LOGCTX, "batch of %d operations met another writer's lock: trying it again (%d)",
             nops, s->lock_try + 1);
    lock_backoff(s->lock_try, &seed);
  }
  s->lock_try = 0;
  const struct store_backend *be = s->be;
  if (rc != 0) {
    kk_error(LOGCTX, "commit of %d operations failed (%s)", nops,
             fault == STORE_FAULT_BUSY ? "the database is locked" : fault == STORE_FAULT_IO ? "I/O error" : "error");
    for (struct store_op *op = batch; op; op = op->next) op->rc = KK_ESTORE;
  }
  double dt = mono_ms() - t0;
  pthread_mutex_lock(&s->mu);
  s->stats.commits++;
  s->stats.lock_retries += (uint64_t)retries;
  s->stats.ops += (uint64_t)nops;
  if (rc != 0) s->stats.errors++;
  if (fault == STORE_FAULT_BUSY) s->stats.errors_busy++;
  if (fault == STORE_FAULT_IO) s->stats.errors_io++;
  if (s->degraded && fault == STORE_FAULT_NONE) kk_info(LOGCTX, "the database can be written again");
  if (fault == STORE_FAULT_NONE || fault == STORE_FAULT_OTHER) s->degraded = 0;
  else s->degraded = 1;
  hist_add(s->stats.commit_hist, store_commit_bounds_ms, dt);
  s->stats.commit_sum_ms += dt;
  hist_add(s->stats.batch_hist, store_batch_bounds, nops);
  s->stats.batch_sum += (uint64_t)nops;
  double end = mono_ms();
  for (struct store_op *op = batch; op && op->urgent; op = op->next) {
    hist_add(s->stats.urgent_hist, store_commit_bounds_ms, end - op->queued_ms);
    s->stats.urgent_sum_ms += end - op->queued_ms;
    s->stats.urgent++;
  }
  be->publish(s);
  pthread_mutex_unlock(&s->mu);
  return fault;
}

/* Writer, mu held: waits up to ms or until the store closes (or, with
   wake, until an operation is queued). */
static void writer_pause(struct store *s, long ms, int wake) {
  struct timespec until;
  clock_gettime(CLOCK_REALTIME, &until);
  until.tv_sec += ms / 1000;
  until.tv_nsec += (ms % 1000) * 1000000L;
  if (until.tv_nsec >= 1000000000L) {
    until.tv_sec++;
    until.tv_nsec -= 1000000000L;
  }
  s->w_wait = wake ? W_ANY : W_BUSY;
  while (!s->stop && !s->final && !(wake && (s->q_head || s->poked)) &&
         pthread_cond_timedwait(&s->cv, &s->mu, &until) == 0) {
  }
}

/* Writer, mu held, the queue empty while degraded: an empty transaction
   tells whether writes work again. */
static void writer_probe(struct store *s) {
  pthread_mutex_unlock(&s->mu);
  s->be->fault_clear(s);
  int ok = s->be->begin(s) == 0 && s->be->commit(s) == 0;
  if (!ok) s->be->rollback(s);
  pthread_mutex_lock(&s->mu);
  if (ok) {
    s->degraded = 0;
    kk_info(LOGCTX, "the database can be written again");
  }
}

/* Moves the operations of a batch (*batch .. *last) that are kept (those of
   a failed batch that must not be lost) or, without kept, handed back
   (STORE_LATER) to the head of the queue, in their order, to be run again;
   *batch and *last keep the others (NULL when none). Returns how many
   moved. Writer, mu held. */
static int requeue(struct store *s, struct store_op **batch, struct store_op **last, int kept_ops) {
  struct store_op *kept = NULL, **kt = &kept, *rest = NULL, **rt = &rest, *rlast = NULL;
  int n = 0, weight = 0;
  for (struct store_op *op = *batch, *next; op; op = next) {
    next = op->next;
    op->next = NULL;
    if (kept_ops ? op->keep : op->rc == STORE_LATER) {
      if (!kept_ops) op->later++;
      op->rc = 0;
      *kt = op;
      kt = &op->next;
      n++;
      weight += op->weight;
    } else {
      *rt = op;
      rt = &op->next;
      rlast = op;
    }
  }
  if (kept) {
    *kt = s->q_head;
    if (s->q_head == NULL) s->q_tail = kt;
    s->q_head = kept;
    s->q_weight += weight;
    /* ahead of the urgent ones: they count with them, urgent order stays */
    if (s->q_nurgent > 0) s->q_nurgent += n;
  }
  *batch = rest;
  *last = rlast;
  return n;
}

/* Writer, mu held, stopping (or given up) while writes fail: every queued
   operation fails at once instead of each waiting for the lock again.
   Returns how many did (the caller wakes the loop for their callbacks). */
static int fail_queued(struct store *s) {
  int n = 0, kept = 0;
  for (struct store_op *op = s->q_head; op; op = op->next) {
    op->rc = KK_ESTORE;
    n++;
    kept += op->keep;
  }
  if (n == 0) return 0;
  kk_error(LOGCTX, "stopping while the database cannot be written: %d operations not stored"
           " (%d of them results of sends)", n, kept);
  *s->done_tail = s->q_head;
  s->done_tail = s->q_tail;
  s->q_head = NULL;
  s->q_tail = &s->q_head;
  s->q_weight = 0;
  s->retrying = 0;
  s->q_urgent = &s->q_head;
  s->q_nurgent = 0;
  return n;
}

/* Writer, mu held, idle: an empty batch, for what rides along with every
   commit (be->idle_ms); its notes go to the loop. A failure counts as one of
   a batch (the degraded state and its probes follow). */
static void writer_idle(struct store *s) {
  s->poked = 0;
  pthread_mutex_unlock(&s->mu);
  const struct store_backend *be = s->be;
  be->fault_clear(s);
  int fault = STORE_FAULT_NONE;
  int rc = be->begin(s);
  if (rc == 0) {
    be->before_commit(s, mono_ms());
    rc = be->commit(s);
  }
  if (rc != 0) {
    fault = be->fault(s);
    be->rollback(s);
    be->undone(s);
  }
  notes_commit(s, rc == 0);
  pthread_mutex_lock(&s->mu);
  if (fault == STORE_FAULT_BUSY || fault == STORE_FAULT_IO) {
    if (!s->degraded) kk_error(LOGCTX, "the database cannot be written (%s)",
                               fault == STORE_FAULT_BUSY ? "it is locked" : "I/O error");
    s->degraded = 1;
  }
  int notes = s->nl > 0;
  pthread_mutex_unlock(&s->mu);
  if (notes) uv_async_send(&s->async);
  pthread_mutex_lock(&s->mu);
}

static void *writer_main(void *arg) {
  struct store *s = arg;
  double last_commit = 0;
  pthread_setname_np(pthread_self(), "kk-writer");   /* seen in top -H and perf */
  long retry_ms = RETRY_MIN_MS, later_ms = 1;
  pthread_mutex_lock(&s->mu);
  for (;;) {
    s->w_wait = W_ANY;
    while (s->q_head == NULL && !s->stop) {
      if (!s->degraded && s->be->idle_ms > 0) {
        writer_pause(s, s->be->idle_ms, 1);
        if (s->q_head == NULL && !s->stop && !s->final) writer_idle(s);
        continue;
      }
      if (!s->degraded) {
        pthread_cond_wait(&s->cv, &s->mu);
        continue;
      }
      writer_pause(s, RETRY_MAX_MS, 1);
      if (s->q_head == NULL && !s->stop) writer_probe(s);
    }
    if (s->final && s->degraded && s->q_head) {
      /* Closing: one more look, then nothing waits for the lock again. */
      writer_probe(s);
      if (s->degraded && fail_queued(s)) uv_async_send(&s->async);
    }
    if (s->q_head == NULL) {
      if (s->stop) break;
      continue;   /* given up (not closing): every queued one failed */
    }
    /* Under load (the last commit was moments ago) a short wait lets more
       operations join this transaction: every commit rewrites its pages into
       the WAL, so a few large commits cost far less than many small ones.
       When idle, nothing waits. */
    if (!s->stop && s->q_nurgent == 0 && s->q_weight < BATCH_GATHER &&
        mono_ms() - last_commit < 5.0) {
      struct timespec until;
      clock_gettime(CLOCK_REALTIME, &until);
      until.tv_nsec += GATHER_NS;
      if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
      }
      s->w_wait = W_BATCH;
      while (!s->stop && s->q_weight < BATCH_GATHER && s->q_nurgent == 0 &&
             pthread_cond_timedwait(&s->cv, &s->mu, &until) == 0) {
      }
    }
    s->w_wait = W_BUSY;
    /* Take up to max_batch rows' worth of operations; with urgent ones at
       the head, those and at most URGENT_BATCH rows of the others, so that
       their commit is a short one. */
    struct store_op *batch = s->q_head, *last = batch;
    int weight = last->weight, nops = 1;
    int max = s->max_batch;
    /* While several tenants' urgent operations come, their batches stay
       short too: the next tenant's insert waits for this commit at most. */
    int umax = s->max_batch;
    if (s->q_nurgent > 0) {
      s->urgent_at = mono_ms();
      if (s->urgent_at - s->mixed_at < STREAM_MS && umax > FAIR_BATCH) umax = FAIR_BATCH;
    } else if (mono_ms() - s->urgent_at < STREAM_MS && max > STREAM_BATCH) {
      max = STREAM_BATCH;
    }
    int limit = s->q_nurgent > 0 ? 0 : max;   /* 0: not set yet */
    while (last->next) {
      int more = last->next->weight;
      if (nops >= s->q_nurgent && limit == 0) limit = weight + URGENT_BATCH;
      if (weight + more > (nops < s->q_nurgent ? umax : limit)) break;
      last = last->next;
      weight += more;
      nops++;
    }
    for (struct store_op *op = batch; op != last->next; op = op->next)
      if (op->urgent && op->turn > s->turn_taken) s->turn_taken = op->turn;
    if (nops >= s->q_nurgent) {
      s->q_nurgent = 0;
      s->q_urgent = &s->q_head;
    } else {
      s->q_nurgent -= nops;
    }
    s->q_head = last->next;
    s->q_weight -= weight;
    if (s->q_head == NULL) s->q_tail = &s->q_head;
    last->next = NULL;
    pthread_mutex_unlock(&s->mu);

    int fault = run_batch(s, batch, nops);
    last_commit = mono_ms();

    pthread_mutex_lock(&s->mu);
    int again = (fault == STORE_FAULT_BUSY || fault == STORE_FAULT_IO) && !s->final;
    int later = 0;
    if (again) {
      s->retrying = requeue(s, &batch, &last, 1);
    } else {
      s->retrying = 0;
      retry_ms = RETRY_MIN_MS;
      if (fault == STORE_FAULT_NONE) later = requeue(s, &batch, &last, 0);
      s->stats.handed_back += (uint64_t)later;
    }
    if (batch) {
      *s->done_tail = batch;
      s->done_tail = &last->next;
    }
    pthread_mutex_unlock(&s->mu);
    if (batch) uv_async_send(&s->async);
    pthread_mutex_lock(&s->mu);
    if (again && s->retrying) {
      kk_warnx(LOGCTX, "%d results of sends not stored yet: trying again in %ld ms", s->retrying,
               retry_ms);
      writer_pause(s, retry_ms, 0);
      retry_ms = retry_ms * 2 < RETRY_MAX_MS ? retry_ms * 2 : RETRY_MAX_MS;
    }
    /* A batch that could only hand its operations back: the other node's
       writer commits in a few ms; a short pause, longer while it lasts, so
       that this one does not spin on the rows meanwhile. */
    if (later > 0 && later == nops && !s->stop) {
      writer_pause(s, later_ms, 0);
      later_ms = later_ms * 2 < LATER_PAUSE_MAX_MS ? later_ms * 2 : LATER_PAUSE_MAX_MS;
    } else {
      later_ms = 1;
    }
  }
  pthread_mutex_unlock(&s->mu);
  return NULL;
}

/* Loop thread: delivers the notes of what committed, then runs the done
   callbacks of its operations. Both are taken together: an operation's
   notes are moved before the operation is, so its done callback sees the
   caches they changed (a route put answers with the route's state). */
static void drain_done(struct store *s) {
  pthread_mutex_lock(&s->mu);
  struct store_op *op = s->done_head;
  s->done_head = NULL;
  s->done_tail = &s->done_head;
  int nnotes;
  struct store_note *notes = notes_take(s, &nnotes);
  pthread_mutex_unlock(&s->mu);
  notes_deliver(s->main ? s->main : s, notes, nnotes);   /* a lane's reach its store's */
  while (op) {
    struct store_op *next = op->next;
    s->pending--;
    if (op->done) op->done(op->arg, op->rc);
    if (!op->borrowed && op->data_free) op->data_free(op->data);
    if (!op->borrowed) free(op->data);
    free(op);
    op = next;
  }
}

/* Reads the pool finished (store_pool.c), and committed operations: the
   reads first, so that a short read (a report) is not answered only after
   the callbacks of a large batch of writes have run. */
static void on_async(uv_async_t *h) {
  store_pool_deliver(h->data);
  drain_done(h->data);
}

void store_poke(struct store *s) {
  pthread_mutex_lock(&s->mu);
  s->poked = 1;
  if (s->w_wait == W_ANY) pthread_cond_signal(&s->cv);
  pthread_mutex_unlock(&s->mu);
}

/* The last urgent operation queued; NULL when none is. mu held. */
static struct store_op *urgent_last(struct store *s) {
  if (s->q_nurgent == 0 || s->q_urgent == &s->q_head) return NULL;
  return (struct store_op *)((char *)s->q_urgent - offsetof(struct store_op, next));
}

/* Queues urgent op at its turn (see struct store: turn_*), behind every
   queued urgent operation whose turn is not later. mu held. */
static void urgent_queue(struct store *s, struct store_op *op) {
  op->queued_ms = mono_ms();
  double *last = &s->turn_last[(uint64_t)op->tenant % STORE_TURN_SLOTS];
  op->turn = (*last > s->turn_taken ? *last : s->turn_taken) + op->weight;
  *last = op->turn;
  if (s->turn_tenant != 0 && op->tenant != s->turn_tenant) s->mixed_at = op->queued_ms;
  s->turn_tenant = op->tenant;
  struct store_op *tail = urgent_last(s);
  struct store_op **at = s->q_urgent;
  if (tail && tail->turn > op->turn) {
    /* operations kept from a failed commit head the urgent part with turn 0 */
    at = &s->q_head;
    while ((*at)->turn <= op->turn) at = &(*at)->next;
  }
  op->next = *at;
  *at = op;
  if (at == s->q_urgent) {
    if (s->q_tail == s->q_urgent) s->q_tail = &op->next;
    s->q_urgent = &op->next;
  }
  s->q_nurgent++;
}

/* ---- several writers ---------------------------------------------------- */

/* op->lane of a receipt whose part's writer is remembered: that writer
   (1 to nlanes) itself, whatever the share is now. */
#define LANE_EXACT ((uint64_t)1 << 63)

/* The writer a lane goes to (loop thread), 0 for the first, k for
   lanes[k - 1]: the first for lane 0 or while the node writes through one,
   else one of the others it uses now (lane - 1 modulo their number), or the
   very one a receipt's hint names. */
static int lane_index(const struct store *s, uint64_t lane) {
  if (s->nlanes == 0 || lane == 0) return 0;
  if (lane & LANE_EXACT) {
    uint64_t w = lane & ~LANE_EXACT;
    return w <= (uint64_t)s->nlanes ? (int)w : 0;
  }
  int use = __atomic_load_n(&s->writers_use, __ATOMIC_RELAXED);
  return use <= 1 ? 0 : 1 + (int)((lane - 1) % (uint64_t)(use - 1));
}

static struct store *writer_of(struct store *s, const struct store_op *op) {
  int k = lane_index(s, op->lane);
  return k ? s->lanes[k - 1] : s;
}

uint64_t store_lane_of_msg(int64_t msg_id) { return 1 + (uint64_t)msg_id; }

void store_writers_share(struct store *s, int live_nodes) {
  if (s->nlanes == 0) return;
  if (live_nodes < 1) live_nodes = 1;
  int use = s->writers_all / live_nodes;
  if (use < 1) use = 1;
  if (use > 1 + s->nlanes) use = 1 + s->nlanes;
  int was = __atomic_exchange_n(&s->writers_use, use, __ATOMIC_RELAXED);
  if (was != use)
    kk_info(LOGCTX, "%d live node%s: this one writes through %d of its %d connections",
            live_nodes, live_nodes == 1 ? "" : "s", use, 1 + s->nlanes);
}

/* The slot of an SMS part's (route, provider id) among the hints: FNV-1a,
   the id without regard to letter case (as receipts match it). */
static uint32_t hint_slot(const char *route, const char *pid) {
  uint32_t h = 2166136261u;
  for (const char *c = route; *c; c++) h = (h ^ (unsigned char)*c) * 16777619u;
  h = (h ^ 0xffu) * 16777619u;
  for (const char *c = pid; *c; c++) h = (h ^ (unsigned char)tolower((unsigned char)*c)) * 16777619u;
  return h & (STORE_LANE_HINTS - 1);
}

void store_lane_hint_set(struct store *s, const char *route, const char *pid, int64_t msg_id) {
  if (s->nlanes == 0 || s->lane_hint == NULL || !route || !pid || !*pid || msg_id <= 0) return;
  /* 0, the first writer: no hint */
  s->lane_hint[hint_slot(route, pid)] = (uint8_t)lane_index(s, store_lane_of_msg(msg_id));
}

void store_lane_hinted(struct store *s, struct store_op *op, const char *route,
                       const char *const *pids, int npids) {
  if (s->nlanes == 0 || s->lane_hint == NULL || !route) return;
  for (int i = 0; i < npids; i++) {
    if (!pids[i] || !*pids[i]) continue;
    uint8_t w = s->lane_hint[hint_slot(route, pids[i])];
    if (w) {
      op->lane = LANE_EXACT | w;
      return;
    }
  }
}

/* Queues op (loop thread). */
void store_submit(struct store *s, struct store_op *op) {
  s = writer_of(s, op);
  op->next = NULL;
  if (op->weight < 1) op->weight = 1;
  s->pending++;
  pthread_mutex_lock(&s->mu);
  if (op->urgent) {
    urgent_queue(s, op);
  } else {
    *s->q_tail = op;
    s->q_tail = &op->next;
  }
  s->q_weight += op->weight;
  if (s->w_wait == W_ANY || (s->w_wait == W_BATCH && (s->q_weight >= BATCH_GATHER || op->urgent)))
    pthread_cond_signal(&s->cv);
  pthread_mutex_unlock(&s->mu);
}

struct store_op *store_op_new(op_exec_fn exec, store_done_cb done, void *arg,
                               void *data, int borrowed) {
  struct store_op *op = kk_xcalloc(1, sizeof *op);
  op->exec = exec;
  op->done = done;
  op->arg = arg;
  op->data = data;
  op->borrowed = borrowed;
  return op;
}

struct store_op *store_op_of(struct store *s, enum store_op_kind kind, store_done_cb done,
                             void *arg, void *data, int borrowed) {
  op_exec_fn exec = s->be->exec[kind];
  if (exec == NULL) {
    /* A backend without a body for a write of the API is a build mistake. */
    kk_error(LOGCTX, "backend %s has no write of kind %d", s->be->name, (int)kind);
    abort();
  }
  return store_op_new(exec, done, arg, data, borrowed);
}

/* Marks an operation that may fail on its own (a unique constraint, a
   refused insert); it then runs in a savepoint of its own. */
struct store_op *store_atomic(struct store_op *op) {
  op->atomic = 1;
  return op;
}

struct store_op *store_urgent(struct store_op *op) {
  op->urgent = 1;
  return op;
}

struct store_op *store_keep(struct store_op *op) {
  op->keep = 1;
  return op;
}

void store_give_up(struct store *s) {
  for (int i = 0; i < s->nlanes; i++) store_give_up(s->lanes[i]);
  pthread_mutex_lock(&s->mu);
  if (!s->final && (s->degraded || s->retrying))
    kk_warnx(LOGCTX, "giving up on writes the database refuses: they fail from now on");
  s->final = 1;
  pthread_cond_signal(&s->cv);
  pthread_mutex_unlock(&s->mu);
}

int store_degraded(struct store *s) {
  pthread_mutex_lock(&s->mu);
  int d = s->degraded;
  pthread_mutex_unlock(&s->mu);
  for (int i = 0; i < s->nlanes && !d; i++) d = store_degraded(s->lanes[i]);
  return d;
}

int store_pending(const struct store *s) {
  int n = s->pending;
  for (int i = 0; i < s->nlanes; i++) n += s->lanes[i]->pending;
  return n;
}

int store_exclusive(const struct store *s) { return s->be->exclusive; }

int store_open(uv_loop_t *loop, const struct store_opts *opts, struct store **out) {
  const char *url = opts->store_url;
  if (url == NULL) return store_open_with(loop, opts, &store_sqlite_backend, out);
  if (strncmp(url, "postgresql://", 13) == 0 || strncmp(url, "postgres://", 11) == 0)
    return store_open_with(loop, opts, &store_pg_backend, out);
  kk_error(LOGCTX, "unknown store %.*s (postgresql://... or none for SQLite)",
           (int)strcspn(url, ":"), url);
  return KK_ESTORE;
}

/* Starts s's writer thread and its hand-off to loop. */
static void writer_start(struct store *s, uv_loop_t *loop, const struct store_opts *opts) {
  s->loop = loop;
  s->max_batch = opts->max_batch > 0 ? opts->max_batch : 4096;
  s->q_tail = &s->q_head;
  s->q_urgent = &s->q_head;
  s->done_tail = &s->done_head;
  pthread_mutex_init(&s->mu, NULL);
  pthread_cond_init(&s->cv, NULL);
  uv_async_init(loop, &s->async, on_async);
  s->async.data = s;
  pthread_create(&s->thread, NULL, writer_main, s);
}

int store_open_with(uv_loop_t *loop, const struct store_opts *opts,
                    const struct store_backend *be, struct store **out) {
  struct store *s = NULL;
  if (be->open(opts, &s) != 0) return KK_ESTORE;
  s->be = be;
  /* Accounts and named cascades are read once, then kept by the notes. */
  s->cache = store_cache_new();
  s->tpls = store_tpls_new();
  s->optout = store_optout_new();
  if (store_cache_fill(s) != 0 || store_tpls_fill(s) != 0 || store_optout_fill(s) != 0) {
    be->close(s);
    store_cache_free(s->cache);
    store_tpls_free(s->tpls);
    store_optout_free(s->optout);
    free(s);
    return KK_ESTORE;
  }
  s->loop = loop;
  snprintf(s->node_name, sizeof s->node_name, "%s", opts->node_name ? opts->node_name : "");
  s->started_at = store_now_ms();
  writer_start(s, loop, opts);
  /* The other writers: a lane that cannot open leaves the store with fewer. */
  int writers = opts->writers > STORE_WRITERS_MAX ? STORE_WRITERS_MAX : opts->writers;
  s->writers_all = opts->writers;
  for (int i = 1; be->lane_open && i < writers; i++) {
    struct store *l = NULL;
    if (be->lane_open(s, &l) != 0) {
      kk_error(LOGCTX, "writer %d of %d cannot open: going on with %d", i + 1, writers, i);
      break;
    }
    l->be = be;
    l->main = s;
    l->cache = s->cache;
    l->tpls = s->tpls;
    l->optout = s->optout;
    writer_start(l, loop, opts);
    s->lanes[s->nlanes++] = l;
  }
  if (s->nlanes > 0) s->lane_hint = kk_xcalloc(STORE_LANE_HINTS, 1);   /* freed by store_close */
  /* every writer until the backend counts the live nodes */
  __atomic_store_n(&s->writers_use, 1 + s->nlanes, __ATOMIC_RELAXED);
  *out = s;
  return 0;
}

static void on_async_closed(uv_handle_t *h) {
  struct store *s = h->data;
  pthread_mutex_destroy(&s->mu);
  pthread_cond_destroy(&s->cv);
  free(s);
}

/* Stops s's writer once its queue is empty. */
static void writer_stop(struct store *s) {
  pthread_mutex_lock(&s->mu);
  s->stop = 1;
  s->final = 1;
  pthread_cond_signal(&s->cv);
  pthread_mutex_unlock(&s->mu);
  pthread_join(s->thread, NULL);
}

/* After its writer has stopped: closes what the backend opened for s and
   drops the notes nobody will take. */
static void writer_close(struct store *s) {
  s->be->close(s);
  notes_truncate(s, 0);
  free(s->wnotes);
  notes_free(s->lnotes, s->nl);
  free(s->lnotes);
  s->wnotes = s->lnotes = NULL;
}

void store_close(struct store *s) {
  /* Reads in flight finish and are answered first: a done callback may
     still queue a write. */
  store_pool_stop(s);
  for (int i = 0; i < s->nlanes; i++) writer_stop(s->lanes[i]);
  writer_stop(s);
  for (int i = 0; i < s->nlanes; i++) drain_done(s->lanes[i]);
  drain_done(s);
  for (int i = 0; i < s->nlanes; i++) {
    writer_close(s->lanes[i]);
    uv_close((uv_handle_t *)&s->lanes[i]->async, on_async_closed);
  }
  s->nlanes = 0;
  free(s->lane_hint);
  s->lane_hint = NULL;
  writer_close(s);
  store_cache_free(s->cache);
  s->cache = NULL;
  store_tpls_free(s->tpls);
  s->tpls = NULL;
  store_optout_free(s->optout);
  s->optout = NULL;
  kk_info(LOGCTX, "closed");
  uv_close((uv_handle_t *)&s->async, on_async_closed);
}

/* Adds b's counts to a's. */
static void stats_add(struct store_stats *a, const struct store_stats *b) {
  a->commits += b->commits;
  a->ops += b->ops;
  a->errors += b->errors;
  a->errors_busy += b->errors_busy;
  a->errors_io += b->errors_io;
  a->lock_retries += b->lock_retries;
  a->handed_back += b->handed_back;
  a->degraded |= b->degraded;
  a->retrying += b->retrying;
  for (int i = 0; i <= STORE_HIST_BUCKETS; i++) {
    a->commit_hist[i] += b->commit_hist[i];
    a->batch_hist[i] += b->batch_hist[i];
    a->urgent_hist[i] += b->urgent_hist[i];
  }
  a->commit_sum_ms += b->commit_sum_ms;
  a->batch_sum += b->batch_sum;
  a->urgent_sum_ms += b->urgent_sum_ms;
  a->urgent += b->urgent;
  a->early_refused += b->early_refused;
  a->early_expired += b->early_expired;
}

/* Every writer's counts together. */
void store_get_stats(struct store *s, struct store_stats *out) {
  pthread_mutex_lock(&s->mu);
  *out = s->stats;
  out->degraded = s->degraded;
  out->retrying = s->retrying;
  pthread_mutex_unlock(&s->mu);
  for (int i = 0; i < s->nlanes; i++) {
    struct store_stats l;
    store_get_stats(s->lanes[i], &l);
    stats_add(out, &l);
  }
}
