/*
 * store_sqlite.c - the SQLite backend of store.h.
 *
 * One writer thread owns the write connection and group-commits queued
 * operations; the loop thread reads through its own connection. The schema
 * is created and upgraded by the numbered migrations below (PRAGMA
 * user_version holds the number applied).
 */
#include "store/store.h"

#include <ctype.h>
#include <inttypes.h>
#include <jansson.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "core/kk_err.h"
#include "core/kk_log.h"
#include "core/kk_mem.h"
#include "core/kk_utf8.h"
#include "store/store_int.h"

#define LOGCTX "store"
#define IDEM_WINDOW_MS (24LL * 3600 * 1000)
#define BATCH_GATHER 512          /* queued rows that make a batch worth committing now */
#define GATHER_NS 1000000L        /* longest wait for them under load: 1 ms */
#define BUSY_MS 1000              /* longest wait for a lock held by another process */
#define RETRY_MIN_MS 100          /* first pause before kept operations are tried again */
#define RETRY_MAX_MS 1000         /* longest pause between tries, and between probes */

/* Why a commit failed: kept operations are tried again after a lock or an
   I/O error, which pass; another error (a bug, a corrupt file) would fail
   every time. */
enum { FAULT_NONE, FAULT_BUSY, FAULT_IO, FAULT_OTHER };

/* What the writer waits for, so that store_submit() wakes it only when that
   has come: a wake-up per operation would cost a futex call on each side
   and a trip through the scheduler. */
enum { W_BUSY, W_ANY, W_BATCH };

/* ---- schema ------------------------------------------------------------ */

static const char *const migrations[] = {
    /* 1: accounts, keys, routes, messages, attempts, parts, events, outbox */
    "CREATE TABLE accounts("
    " id INTEGER PRIMARY KEY,"
    " public_id TEXT NOT NULL UNIQUE,"
    " name TEXT NOT NULL,"
    " sms_route TEXT NOT NULL DEFAULT '',"
    " callback_secret TEXT NOT NULL,"
    " settings TEXT NOT NULL DEFAULT '{}',"
    " created_at INTEGER NOT NULL);"
    "CREATE TABLE api_keys("
    " id INTEGER PRIMARY KEY,"
    " account_id INTEGER NOT NULL REFERENCES accounts(id),"
    " key_hash BLOB NOT NULL UNIQUE,"
    " prefix TEXT NOT NULL,"
    " created_at INTEGER NOT NULL,"
    " revoked_at INTEGER);"
    "CREATE TABLE routes("
    " name TEXT PRIMARY KEY,"
    " config TEXT NOT NULL,"
    " updated_at INTEGER NOT NULL);"
    "CREATE TABLE messages("
    " id INTEGER PRIMARY KEY,"
    " public_id TEXT NOT NULL UNIQUE,"
    " account_id INTEGER NOT NULL,"
    " idem_key TEXT,"
    " to_number TEXT NOT NULL,"
    " sender TEXT,"
    " body TEXT NOT NULL,"
    " class TEXT NOT NULL,"
    " encoding TEXT NOT NULL,"
    " segments INTEGER NOT NULL,"
    " status TEXT NOT NULL,"
    " channel TEXT,"
    " callback_url TEXT,"
    " created_at INTEGER NOT NULL,"
    " expires_at INTEGER NOT NULL,"
    " updated_at INTEGER NOT NULL,"
    " due_at INTEGER);"
    "CREATE UNIQUE INDEX messages_idem ON messages(account_id, idem_key)"
    " WHERE idem_key IS NOT NULL;"
    "CREATE INDEX messages_due ON messages(id) WHERE due_at IS NOT NULL;"
    "CREATE INDEX messages_account ON messages(account_id, id);"
    "CREATE TABLE attempts("
    " id INTEGER PRIMARY KEY,"
    " message_id INTEGER NOT NULL,"
    " channel TEXT NOT NULL,"
    " route TEXT,"
    " status TEXT NOT NULL,"
    " segments INTEGER NOT NULL DEFAULT 1,"
    " parts_sent INTEGER NOT NULL DEFAULT 0,"
    " parts_delivered INTEGER NOT NULL DEFAULT 0,"
    " provider_id TEXT,"
    " error TEXT,"
    " created_at INTEGER NOT NULL,"
    " sent_at INTEGER, delivered_at INTEGER, read_at INTEGER);"
    "CREATE INDEX attempts_message ON attempts(message_id);"
    "CREATE TABLE sms_parts("
    " route TEXT NOT NULL,"
    " provider_id TEXT NOT NULL,"
    " attempt_id INTEGER NOT NULL,"
    " part INTEGER NOT NULL,"
    " state TEXT NOT NULL,"
    " PRIMARY KEY(route, provider_id)) WITHOUT ROWID;"
    "CREATE TABLE events("
    " id INTEGER PRIMARY KEY,"
    " message_id INTEGER NOT NULL,"
    " attempt_id INTEGER,"
    " status TEXT NOT NULL,"
    " at INTEGER NOT NULL,"
    " detail TEXT);"
    "CREATE INDEX events_message ON events(message_id);"
    "CREATE TABLE outbox("
    " id INTEGER PRIMARY KEY,"
    " account_id INTEGER NOT NULL,"
    " message_id INTEGER NOT NULL,"
    " url TEXT NOT NULL,"
    " payload TEXT NOT NULL,"
    " tries INTEGER NOT NULL DEFAULT 0,"
    " due_at INTEGER NOT NULL,"
    " last_error TEXT);"
    "CREATE INDEX outbox_due ON outbox(due_at);"
    "CREATE TABLE inbound("
    " id INTEGER PRIMARY KEY,"
    " route TEXT,"
    " from_number TEXT NOT NULL,"
    " to_addr TEXT NOT NULL,"
    " body TEXT NOT NULL,"
    " at INTEGER NOT NULL);",
    /* 2: receipts that came before their submit_sm_resp was stored */
    "CREATE TABLE early_receipts("
    " route TEXT NOT NULL,"
    " provider_id TEXT NOT NULL,"
    " other_id TEXT NOT NULL,"
    " state TEXT NOT NULL,"
    " error TEXT,"
    " at INTEGER NOT NULL,"
    " PRIMARY KEY(route, provider_id)) WITHOUT ROWID;",
    /* 3: cascades over channels, channel settings, prices */
    "ALTER TABLE messages ADD COLUMN cascade TEXT;"
    "ALTER TABLE messages ADD COLUMN extra TEXT;"
    "ALTER TABLE messages ADD COLUMN route TEXT;"
    "ALTER TABLE messages ADD COLUMN step INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE messages ADD COLUMN attempt_id INTEGER;"
    "ALTER TABLE messages ADD COLUMN wait_until INTEGER;"
    "ALTER TABLE messages ADD COLUMN done INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE messages ADD COLUMN cost INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE messages ADD COLUMN sms_only_cost INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE messages ADD COLUMN delivered_twice INTEGER NOT NULL DEFAULT 0;"
    "UPDATE messages SET attempt_id=(SELECT MIN(id) FROM attempts"
    " WHERE attempts.message_id=messages.id),"
    " route=(SELECT route FROM attempts WHERE attempts.message_id=messages.id),"
    " done=(status IN ('delivered','read','failed','expired','rejected','cancelled'));"
    "CREATE INDEX messages_wait ON messages(wait_until) WHERE wait_until IS NOT NULL;"
    "ALTER TABLE attempts ADD COLUMN step INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE attempts ADD COLUMN address TEXT;"
    "ALTER TABLE attempts ADD COLUMN scope INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE attempts ADD COLUMN cost INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE attempts ADD COLUMN tries INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE attempts ADD COLUMN due_at INTEGER;"
    "CREATE INDEX attempts_due ON attempts(due_at) WHERE due_at IS NOT NULL;"
    "CREATE INDEX attempts_provider ON attempts(channel, provider_id)"
    " WHERE provider_id IS NOT NULL AND channel<>'sms';"
    "CREATE INDEX attempts_vk_peer ON attempts(address) WHERE channel='vk';"
    "CREATE TABLE channel_settings("
    " account_id INTEGER NOT NULL,"
    " channel TEXT NOT NULL,"
    " config TEXT NOT NULL,"
    " updated_at INTEGER NOT NULL,"
    " PRIMARY KEY(account_id, channel)) WITHOUT ROWID;"
    "CREATE TABLE prices("
    " account_id INTEGER NOT NULL,"
    " channel TEXT NOT NULL,"
    " price INTEGER NOT NULL,"
    " PRIMARY KEY(account_id, channel)) WITHOUT ROWID;"
    "CREATE TABLE cascades("
    " account_id INTEGER NOT NULL,"
    " name TEXT NOT NULL,"
    " steps TEXT NOT NULL,"
    " updated_at INTEGER NOT NULL,"
    " PRIMARY KEY(account_id, name)) WITHOUT ROWID;",
    /* 4: provider statuses that came before the send's own answer was stored */
    "CREATE TABLE early_statuses("
    " channel TEXT NOT NULL,"
    " scope INTEGER NOT NULL,"
    " provider_id TEXT NOT NULL,"
    " status TEXT NOT NULL,"
    " error TEXT,"
    " at INTEGER NOT NULL,"
    " PRIMARY KEY(channel, scope, provider_id, status)) WITHOUT ROWID;",
    /* 5: when each person last wrote to a WhatsApp number (its 24-hour
       customer-service window); scope as in attempts */
    "CREATE TABLE wa_windows("
    " scope INTEGER NOT NULL,"
    " phone TEXT NOT NULL,"
    " last_inbound INTEGER NOT NULL,"
    " PRIMARY KEY(scope, phone)) WITHOUT ROWID;",
    /* 6: when a request that must not go twice was marked under way */
    "ALTER TABLE attempts ADD COLUMN try_at INTEGER;",
    /* 7: the campaign a message belongs to, indexed for a campaign's
       listing and report */
    "ALTER TABLE messages ADD COLUMN campaign TEXT;"
    "CREATE INDEX messages_campaign ON messages(account_id, campaign)"
    " WHERE campaign IS NOT NULL;",
    /* 8: fairness between accounts: the outbox read per account, early
       statuses and receipts expired by time. (Listings by status scan the
       account's index within their bound: an index with the status in it,
       even a partial one, tripled the cost of every status change.) */
    "CREATE INDEX outbox_account ON outbox(account_id, due_at);"
    "CREATE INDEX early_statuses_at ON early_statuses(at);"
    "CREATE INDEX early_statuses_scope ON early_statuses(scope, at);"
    "CREATE INDEX early_receipts_at ON early_receipts(at);",
    /* 9: abuse controls: suspended accounts, their registered senders and
       allowed countries (JSON arrays), keys found by prefix, and the parts
       of an attempt found for the retention job */
    "ALTER TABLE accounts ADD COLUMN suspended INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE accounts ADD COLUMN senders TEXT NOT NULL DEFAULT '[]';"
    "ALTER TABLE accounts ADD COLUMN countries TEXT NOT NULL DEFAULT '[]';"
    "CREATE INDEX api_keys_prefix ON api_keys(prefix);"
    "CREATE INDEX api_keys_account ON api_keys(account_id);"
    "CREATE INDEX sms_parts_attempt ON sms_parts(attempt_id);",
    /* 10: a digest of the request's meaningful fields, so that an
       idempotency key reused for a different message is refused */
    "ALTER TABLE messages ADD COLUMN req_hash TEXT;",
    /* 11: replies: each inbound message belongs to an account (the one whose
       number received it, or whose message last went to the sender), listed
       newest first per account, by channel or by sender */
    "ALTER TABLE inbound ADD COLUMN channel TEXT NOT NULL DEFAULT 'sms';"
    "ALTER TABLE inbound ADD COLUMN account_id INTEGER;"
    "ALTER TABLE inbound ADD COLUMN message_id INTEGER;"
    "CREATE INDEX inbound_account ON inbound(account_id, id);"
    "CREATE INDEX inbound_account_channel ON inbound(account_id, channel, id);"
    "CREATE INDEX inbound_account_from ON inbound(account_id, from_number, id);"
    "CREATE INDEX messages_to ON messages(to_number, id);",
    /* 12: an outbox row holds its event's fields; the callback's JSON is
       built when it is sent (rows written before keep their payload) */
    "ALTER TABLE outbox ADD COLUMN at INTEGER;"
    "ALTER TABLE outbox ADD COLUMN public_id TEXT;"
    "ALTER TABLE outbox ADD COLUMN status TEXT;"
    "ALTER TABLE outbox ADD COLUMN channel TEXT;"
    "ALTER TABLE outbox ADD COLUMN to_number TEXT;"
    "ALTER TABLE outbox ADD COLUMN cost INTEGER;"
    "ALTER TABLE outbox ADD COLUMN error TEXT;",
};
#define NMIGRATIONS ((int)(sizeof migrations / sizeof migrations[0]))

const char *const stmt_sql[] = {
#define XX(name, sql) sql,
    STMT_LIST(XX)
#undef XX
};

const double store_commit_bounds_ms[STORE_HIST_BUCKETS] = {
    0.25, 0.5, 1, 2, 5, 10, 20, 50, 100, 250, 500, 1000};
const double store_batch_bounds[STORE_HIST_BUCKETS] = {
    1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000};

int64_t store_now_ms(void) {
  struct timeval tv;
  gettimeofday(&tv, NULL);
  return (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

static double mono_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6;
}

sqlite3_stmt *sq_stmt(struct conn *c, enum stmt_id id) {
  sqlite3_stmt *st = c->st[id];
  if (st == NULL) {
    if (sqlite3_prepare_v3(c->db, stmt_sql[id], -1, SQLITE_PREPARE_PERSISTENT,
                           &c->st[id], NULL) != SQLITE_OK) {
      kk_error(LOGCTX, "prepare failed: %s: %s", sqlite3_errmsg(c->db), stmt_sql[id]);
      abort(); /* a statement of ours that does not compile is a bug */
    }
    st = c->st[id];
  } else {
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
  }
  return st;
}

/* Runs a statement that returns no rows. */
int sq_step_done(struct conn *c, sqlite3_stmt *st) {
  int rc = sqlite3_step(st);
  sqlite3_reset(st);
  if (rc == SQLITE_DONE || rc == SQLITE_ROW) return 0;
  if (rc == SQLITE_CONSTRAINT) return KK_EEXIST;
  c->err = rc;
  kk_error(LOGCTX, "%s: %s", sqlite3_errmsg(c->db), sqlite3_sql(st));
  return KK_ESTORE;
}

static int exec_simple(struct conn *c, enum stmt_id id) {
  return sq_step_done(c, sq_stmt(c, id));
}

void sq_bind_text(sqlite3_stmt *st, int i, const char *s) {
  if (s)
    sqlite3_bind_text(st, i, s, -1, SQLITE_STATIC);
  else
    sqlite3_bind_null(st, i);
}

void sq_bind_opt(sqlite3_stmt *st, int i, int64_t v) {
  if (v)
    sqlite3_bind_int64(st, i, v);
  else
    sqlite3_bind_null(st, i);
}

/* The copy is valid UTF-8 cut at a character boundary whatever the column
   holds (text longer than the field, bytes a provider sent): these fields go
   into JSON answers, which refuse a broken character. */
void sq_col_copy(sqlite3_stmt *st, int i, char *out, size_t cap) {
  const unsigned char *t = sqlite3_column_text(st, i);
  size_t n = t ? (size_t)sqlite3_column_bytes(st, i) : 0;
  kk_utf8_sanitize(out, cap, (const char *)t, n);
}

char *sq_col_dup(sqlite3_stmt *st, int i) {
  const unsigned char *t = sqlite3_column_text(st, i);
  return kk_xstrdup(t ? (const char *)t : "");
}

/* ---- writer thread ----------------------------------------------------- */

static void hist_add(uint64_t *hist, const double *bounds, double v) {
  int i = 0;
  while (i < STORE_HIST_BUCKETS && v > bounds[i]) i++;
  hist[i]++;
}

static int64_t max_id(struct conn *c, enum stmt_id id);

/* BEGIN IMMEDIATE: waits for another process's lock about BUSY_MS at most
   (the busy handler waits within a try; the next tries cover a lock that
   SQLite reports at once, without calling the handler). */
static int begin(struct store *s) {
  double t0 = mono_ms();
  for (int tries = 0; tries < 3; tries++) {
    int rc = exec_simple(&s->w, ST_BEGIN);
    if (rc == 0) return 0;
    if (mono_ms() - t0 > BUSY_MS) break;
    struct timespec ts = {0, 10 * 1000 * 1000};
    nanosleep(&ts, NULL);
  }
  return KK_ESTORE;
}

static int fault_kind(int sqlite_rc) {
  switch (sqlite_rc & 0xff) {
  case SQLITE_BUSY:
  case SQLITE_LOCKED:
    return FAULT_BUSY;
  case SQLITE_IOERR:
  case SQLITE_FULL:
  case SQLITE_CANTOPEN:
  case SQLITE_PROTOCOL:
    return FAULT_IO;
  default:
    return FAULT_OTHER;
  }
}

/* The kind of the failure just seen on the writer's connection. */
static int writer_fault(struct store *s) {
  int rc = s->w.err ? s->w.err : sqlite3_errcode(s->w.db);
  return fault_kind(rc);
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

/* Runs one batch in one transaction; sets every op's rc. Returns why the
   commit failed (FAULT_NONE: committed). */
static int run_batch(struct store *s, struct store_op *batch, int nops) {
  double t0 = mono_ms();
  int fault = FAULT_NONE;
  s->w.err = 0;
  int rc = begin(s);
  if (rc != 0) fault = writer_fault(s);
  if (rc == 0) {
    for (struct store_op *op = batch; op; op = op->next) {
      if (!op->atomic) {
        /* These find their rows before writing and fail only when SQLite
           itself does: then the whole transaction goes. */
        op->rc = op->exec(s, op);
        if (op->rc != 0) {
          kk_error(LOGCTX, "operation failed (%s): rolling back its batch", kk_strerror(op->rc));
          fault = writer_fault(s);
          rc = KK_ESTORE;
          break;
        }
        continue;
      }
      if (exec_simple(&s->w, ST_SAVEPOINT) != 0) {
        op->rc = KK_ESTORE;
        continue;
      }
      int notes_before = s->nw;
      op->rc = op->exec(s, op);
      if (op->rc != 0 && sqlite3_get_autocommit(s->w.db)) {
        /* SQLite rolled the whole transaction back itself (an I/O error,
           a full disk): nothing of the batch is left to commit. */
        fault = writer_fault(s);
        rc = KK_ESTORE;
        break;
      }
      if (op->rc != 0) {
        exec_simple(&s->w, ST_ROLLBACK_TO);
        notes_truncate(s, notes_before);   /* what it started is undone too */
        casc_early_check(s);
      }
      exec_simple(&s->w, ST_RELEASE);
    }
    if (rc == 0 && test_ioerr()) {
      s->w.err = SQLITE_IOERR;
      rc = KK_ESTORE;
    }
    if (rc == 0 && t0 >= s->early_next_expire) {
      /* The periodic expiry of early rows, one bounded batch, with the
         work that happens to be committing. */
      s->early_next_expire = t0 + EARLY_EXPIRE_EVERY_MS;
      if (casc_early_expire(s, store_now_ms() - EARLY_KEEP_MS) != 0)
        kk_error(LOGCTX, "expiry of early statuses failed");
    }
    if (rc == 0) rc = exec_simple(&s->w, ST_COMMIT);
    if (rc != 0) {
      if (fault == FAULT_NONE) fault = writer_fault(s);
      if (!sqlite3_get_autocommit(s->w.db)) exec_simple(&s->w, ST_ROLLBACK);
      casc_early_check(s);
    }
  }
  notes_commit(s, rc == 0);
  if (rc != 0) {
    kk_error(LOGCTX, "commit of %d operations failed (%s)", nops,
             fault == FAULT_BUSY ? "the database is locked" : fault == FAULT_IO ? "I/O error" : "error");
    for (struct store_op *op = batch; op; op = op->next) op->rc = KK_ESTORE;
  }
  double dt = mono_ms() - t0;
  pthread_mutex_lock(&s->mu);
  s->stats.commits++;
  s->stats.ops += (uint64_t)nops;
  if (rc != 0) s->stats.errors++;
  if (fault == FAULT_BUSY) s->stats.errors_busy++;
  if (fault == FAULT_IO) s->stats.errors_io++;
  if (s->degraded && fault == FAULT_NONE) kk_info(LOGCTX, "the database can be written again");
  if (fault == FAULT_NONE || fault == FAULT_OTHER) s->degraded = 0;
  else s->degraded = 1;
  hist_add(s->stats.commit_hist, store_commit_bounds_ms, dt);
  s->stats.commit_sum_ms += dt;
  hist_add(s->stats.batch_hist, store_batch_bounds, nops);
  s->stats.batch_sum += (uint64_t)nops;
  s->cstats = s->cstats_w;
  s->stats.early_refused = s->early_refused_w;
  s->stats.early_expired = s->early_expired_w;
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
  while (!s->stop && !s->final && !(wake && s->q_head) &&
         pthread_cond_timedwait(&s->cv, &s->mu, &until) == 0) {
  }
}

/* Writer, mu held, the queue empty while degraded: an empty transaction
   tells whether writes work again. */
static void writer_probe(struct store *s) {
  pthread_mutex_unlock(&s->mu);
  s->w.err = 0;
  int ok = begin(s) == 0 && exec_simple(&s->w, ST_COMMIT) == 0;
  if (!ok && !sqlite3_get_autocommit(s->w.db)) exec_simple(&s->w, ST_ROLLBACK);
  pthread_mutex_lock(&s->mu);
  if (ok) {
    s->degraded = 0;
    kk_info(LOGCTX, "the database can be written again");
  }
}

/* Moves the kept operations of a failed batch (*batch .. *last) to the head
   of the queue, in their order, to be tried again; *batch and *last keep
   the others (NULL when none). Writer, mu held. */
static void requeue_kept(struct store *s, struct store_op **batch, struct store_op **last) {
  struct store_op *kept = NULL, **kt = &kept, *rest = NULL, **rt = &rest, *rlast = NULL;
  int n = 0, weight = 0;
  for (struct store_op *op = *batch, *next; op; op = next) {
    next = op->next;
    op->next = NULL;
    if (op->keep) {
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
  }
  s->retrying = n;
  *batch = rest;
  *last = rlast;
}

/* Writer, mu held, stopping while writes fail: every queued operation fails
   at once instead of each waiting for the lock again. */
static void fail_queued(struct store *s) {
  int n = 0, kept = 0;
  for (struct store_op *op = s->q_head; op; op = op->next) {
    op->rc = KK_ESTORE;
    n++;
    kept += op->keep;
  }
  if (n == 0) return;
  kk_error(LOGCTX, "stopping while the database cannot be written: %d operations not stored"
           " (%d of them results of sends)", n, kept);
  *s->done_tail = s->q_head;
  s->done_tail = s->q_tail;
  s->q_head = NULL;
  s->q_tail = &s->q_head;
  s->q_weight = 0;
  s->retrying = 0;
}

static void *writer_main(void *arg) {
  struct store *s = arg;
  double last_commit = 0;
  long retry_ms = RETRY_MIN_MS;
  pthread_mutex_lock(&s->mu);
  for (;;) {
    s->w_wait = W_ANY;
    while (s->q_head == NULL && !s->stop) {
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
      if (s->degraded) fail_queued(s);
    }
    if (s->q_head == NULL && s->stop) break;
    /* Under load (the last commit was moments ago) a short wait lets more
       operations join this transaction: every commit rewrites its pages into
       the WAL, so a few large commits cost far less than many small ones.
       When idle, nothing waits. */
    if (!s->stop && s->q_weight < BATCH_GATHER && mono_ms() - last_commit < 5.0) {
      struct timespec until;
      clock_gettime(CLOCK_REALTIME, &until);
      until.tv_nsec += GATHER_NS;
      if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
      }
      s->w_wait = W_BATCH;
      while (!s->stop && s->q_weight < BATCH_GATHER &&
             pthread_cond_timedwait(&s->cv, &s->mu, &until) == 0) {
      }
    }
    s->w_wait = W_BUSY;
    /* Take up to max_batch rows' worth of operations. */
    struct store_op *batch = s->q_head, *last = batch;
    int weight = last->weight, nops = 1;
    while (last->next && weight + last->next->weight <= s->max_batch) {
      last = last->next;
      weight += last->weight;
      nops++;
    }
    s->q_head = last->next;
    s->q_weight -= weight;
    if (s->q_head == NULL) s->q_tail = &s->q_head;
    last->next = NULL;
    pthread_mutex_unlock(&s->mu);

    int fault = run_batch(s, batch, nops);
    last_commit = mono_ms();

    pthread_mutex_lock(&s->mu);
    int again = (fault == FAULT_BUSY || fault == FAULT_IO) && !s->final;
    if (again) {
      requeue_kept(s, &batch, &last);
    } else {
      s->retrying = 0;
      retry_ms = RETRY_MIN_MS;
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
  notes_deliver(s, notes, nnotes);
  while (op) {
    struct store_op *next = op->next;
    s->pending--;
    if (op->done) op->done(op->arg, op->rc);
    if (!op->borrowed) free(op->data);
    free(op);
    op = next;
  }
}

static void on_async(uv_async_t *h) { drain_done(h->data); }

/* Queues op (loop thread). */
void store_submit(struct store *s, struct store_op *op) {
  op->next = NULL;
  if (op->weight < 1) op->weight = 1;
  s->pending++;
  pthread_mutex_lock(&s->mu);
  *s->q_tail = op;
  s->q_tail = &op->next;
  s->q_weight += op->weight;
  if (s->w_wait == W_ANY || (s->w_wait == W_BATCH && s->q_weight >= BATCH_GATHER))
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

/* Marks an operation that may fail on its own (a unique constraint, a
   refused insert); it then runs in a savepoint of its own. */
struct store_op *store_atomic(struct store_op *op) {
  op->atomic = 1;
  return op;
}

struct store_op *store_keep(struct store_op *op) {
  op->keep = 1;
  return op;
}

void store_give_up(struct store *s) {
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
  return d;
}

int store_pending(const struct store *s) { return s->pending; }

/* ---- open / close -------------------------------------------------------- */

int conn_open(struct conn *c, const char *path, int sync_full, int writer) {
  memset(c, 0, sizeof *c);
  int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX;
  if (sqlite3_open_v2(path, &c->db, flags, NULL) != SQLITE_OK) {
    kk_error(LOGCTX, "cannot open %s: %s", path, c->db ? sqlite3_errmsg(c->db) : "?");
    return KK_ESTORE;
  }
  /* A lock held by another process (a backup, sqlite3 by hand) is waited
     for this long, then the write fails (see store.h: store faults) and
     a read answers an error: neither thread waits longer. */
  sqlite3_busy_timeout(c->db, BUSY_MS);
  char sql[256];
  snprintf(sql, sizeof sql,
           "PRAGMA journal_mode=WAL; PRAGMA synchronous=%s; PRAGMA foreign_keys=OFF;"
           " PRAGMA cache_size=-65536; PRAGMA temp_store=MEMORY;%s",
           sync_full ? "FULL" : "NORMAL",
           writer ? " PRAGMA wal_autocheckpoint=0;" : ""); /* store_ckpt.c does it */
  char *err = NULL;
  if (sqlite3_exec(c->db, sql, NULL, NULL, &err) != SQLITE_OK) {
    kk_error(LOGCTX, "cannot configure %s: %s", path, err ? err : "?");
    sqlite3_free(err);
    return KK_ESTORE;
  }
  return 0;
}

void conn_close(struct conn *c) {
  for (int i = 0; i < ST__COUNT; i++) sqlite3_finalize(c->st[i]);
  if (c->db) sqlite3_close(c->db);
  c->db = NULL;
}

static int migrate(struct conn *c) {
  sqlite3_stmt *st;
  int version = 0;
  if (sqlite3_prepare_v2(c->db, "PRAGMA user_version", -1, &st, NULL) == SQLITE_OK) {
    if (sqlite3_step(st) == SQLITE_ROW) version = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
  }
  if (version > NMIGRATIONS) {
    kk_error(LOGCTX, "database schema %d is newer than this kaskad (%d)", version, NMIGRATIONS);
    return KK_ESTORE;
  }
  for (int v = version; v < NMIGRATIONS; v++) {
    char *err = NULL;
    char setv[64];
    snprintf(setv, sizeof setv, "PRAGMA user_version=%d;", v + 1);
    if (sqlite3_exec(c->db, "BEGIN", NULL, NULL, &err) != SQLITE_OK ||
        sqlite3_exec(c->db, migrations[v], NULL, NULL, &err) != SQLITE_OK ||
        sqlite3_exec(c->db, setv, NULL, NULL, &err) != SQLITE_OK ||
        sqlite3_exec(c->db, "COMMIT", NULL, NULL, &err) != SQLITE_OK) {
      kk_error(LOGCTX, "migration %d failed: %s", v + 1, err ? err : "?");
      sqlite3_free(err);
      sqlite3_exec(c->db, "ROLLBACK", NULL, NULL, NULL);
      return KK_ESTORE;
    }
    kk_info(LOGCTX, "schema migrated to version %d", v + 1);
  }
  return 0;
}

/* MAX(id) of a table, or -1 when it cannot be read. */
static int64_t max_id(struct conn *c, enum stmt_id id) {
  sqlite3_stmt *st = sq_stmt(c, id);
  int64_t v = -1;
  if (sqlite3_step(st) == SQLITE_ROW) v = sqlite3_column_int64(st, 0);
  sqlite3_reset(st);
  return v;
}

int store_open(uv_loop_t *loop, const struct store_opts *opts, struct store **out) {
  /* Each connection is used by one thread only, and nothing reads SQLite's
     memory statistics: skip the mutexes both would cost on every call. */
  sqlite3_config(SQLITE_CONFIG_MULTITHREAD);
  sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
  struct store *s = kk_xcalloc(1, sizeof *s);
  char path[4096];
  snprintf(path, sizeof path, "%s/kaskad.db", opts->dir);
  s->loop = loop;
  s->max_batch = opts->max_batch > 0 ? opts->max_batch : 4096;
  s->early_cap = opts->early_cap > 0 ? opts->early_cap : 10000;
  s->q_tail = &s->q_head;
  s->done_tail = &s->done_head;
  if (conn_open(&s->w, path, opts->synchronous_full, 1) != 0 || migrate(&s->w) != 0 ||
      conn_open(&s->r, path, opts->synchronous_full, 0) != 0) {
    conn_close(&s->w);
    conn_close(&s->r);
    free(s);
    return KK_ESTORE;
  }
  /* The writer numbers new messages and attempts itself (insert_one). */
  s->next_msg_id = max_id(&s->w, ST_MSG_MAX_ID) + 1;
  s->next_att_id = max_id(&s->w, ST_ATT_MAX_ID) + 1;
  if (s->next_msg_id <= 0 || s->next_att_id <= 0 || casc_early_check(s) != 0) {
    conn_close(&s->w);
    conn_close(&s->r);
    free(s);
    return KK_ESTORE;
  }
  if (ckpt_start(s, path, opts->synchronous_full) != 0) {
    conn_close(&s->w);
    conn_close(&s->r);
    free(s);
    return KK_ESTORE;
  }
  pthread_mutex_init(&s->mu, NULL);
  pthread_cond_init(&s->cv, NULL);
  snprintf(s->path, sizeof s->path, "%s", path);
  pthread_mutex_init(&s->rp_mu, NULL);
  pthread_cond_init(&s->rp_cv, NULL);
  uv_async_init(loop, &s->async, on_async);
  s->async.data = s;
  pthread_create(&s->thread, NULL, writer_main, s);
  kk_info(LOGCTX, "opened %s (synchronous=%s)", path, opts->synchronous_full ? "FULL" : "NORMAL");
  *out = s;
  return 0;
}

static void on_async_closed(uv_handle_t *h) {
  struct store *s = h->data;
  pthread_mutex_destroy(&s->mu);
  pthread_cond_destroy(&s->cv);
  free(s);
}

static void readers_close(struct store *s);

void store_close(struct store *s) {
  pthread_mutex_lock(&s->mu);
  s->stop = 1;
  s->final = 1;
  pthread_cond_signal(&s->cv);
  pthread_mutex_unlock(&s->mu);
  pthread_join(s->thread, NULL);
  drain_done(s);
  readers_close(s);
  ckpt_stop(s);
  conn_close(&s->w);
  conn_close(&s->r);
  notes_truncate(s, 0);
  free(s->wnotes);
  notes_free(s->lnotes, s->nl);
  free(s->lnotes);
  free(s->ecount);
  s->wnotes = s->lnotes = NULL;
  kk_info(LOGCTX, "closed");
  uv_close((uv_handle_t *)&s->async, on_async_closed);
}

void store_get_stats(struct store *s, struct store_stats *out) {
  pthread_mutex_lock(&s->mu);
  *out = s->stats;
  out->degraded = s->degraded;
  out->retrying = s->retrying;
  pthread_mutex_unlock(&s->mu);
}

/* ---- accounts and keys ------------------------------------------------- */

static void random_hex(char *out, size_t nbytes) {
  unsigned char b[64];
  if (nbytes > sizeof b) nbytes = sizeof b;
  if (RAND_bytes(b, (int)nbytes) != 1) abort();
  for (size_t i = 0; i < nbytes; i++) sprintf(out + 2 * i, "%02x", b[i]);
}

static int exec_account_create(struct store *s, struct store_op *op) {
  struct store_account *a = op->data;
  sqlite3_stmt *st = sq_stmt(&s->w, ST_ACC_INSERT);
  sq_bind_text(st, 1, a->public_id);
  sq_bind_text(st, 2, a->name);
  sq_bind_text(st, 3, a->sms_route);
  sq_bind_text(st, 4, a->callback_secret);
  sqlite3_bind_int64(st, 5, a->created_at);
  sq_bind_text(st, 6, a->senders[0] ? a->senders : "[]");
  sq_bind_text(st, 7, a->countries[0] ? a->countries : "[]");
  int rc = sq_step_done(&s->w, st);
  if (rc == 0) {
    a->id = sqlite3_last_insert_rowid(s->w.db);
    note_cfg(s, STORE_NOTE_ACCOUNT, a->id, NULL, NULL, NULL, a->suspended);
  }
  return rc;
}

void store_account_create(struct store *s, struct store_account *acc,
                          store_done_cb done, void *arg) {
  char hex[33];
  random_hex(hex, 12);
  snprintf(acc->public_id, sizeof acc->public_id, "acc_%.24s", hex);
  char sec[65];
  random_hex(sec, 32);
  snprintf(acc->callback_secret, sizeof acc->callback_secret, "whsec_%s", sec);
  acc->created_at = store_now_ms();
  store_submit(s, store_atomic(store_op_new(exec_account_create, done, arg, acc, 1)));
}

static int exec_account_update(struct store *s, struct store_op *op) {
  struct store_account *a = op->data;
  sqlite3_stmt *st = sq_stmt(&s->w, ST_ACC_UPDATE);
  sq_bind_text(st, 1, a->name);
  sq_bind_text(st, 2, a->sms_route);
  sqlite3_bind_int(st, 3, a->suspended);
  sq_bind_text(st, 4, a->senders[0] ? a->senders : "[]");
  sq_bind_text(st, 5, a->countries[0] ? a->countries : "[]");
  sqlite3_bind_int64(st, 6, a->id);
  int rc = sq_step_done(&s->w, st);
  if (rc == 0) note_cfg(s, STORE_NOTE_ACCOUNT, a->id, NULL, NULL, NULL, a->suspended);
  return rc;
}

void store_account_update(struct store *s, struct store_account *acc,
                          store_done_cb done, void *arg) {
  store_submit(s, store_atomic(store_op_new(exec_account_update, done, arg, acc, 1)));
}

static int read_account(struct conn *c, sqlite3_stmt *st, struct store_account *out) {
  int rc = sqlite3_step(st);
  if (rc == SQLITE_ROW) {
    out->id = sqlite3_column_int64(st, 0);
    sq_col_copy(st, 1, out->public_id, sizeof out->public_id);
    sq_col_copy(st, 2, out->name, sizeof out->name);
    sq_col_copy(st, 3, out->sms_route, sizeof out->sms_route);
    sq_col_copy(st, 4, out->callback_secret, sizeof out->callback_secret);
    out->created_at = sqlite3_column_int64(st, 5);
    out->suspended = sqlite3_column_int(st, 6);
    sq_col_copy(st, 7, out->senders, sizeof out->senders);
    sq_col_copy(st, 8, out->countries, sizeof out->countries);
    sqlite3_reset(st);
    return 0;
  }
  sqlite3_reset(st);
  if (rc == SQLITE_DONE) return KK_ENOENT;
  kk_error(LOGCTX, "read account: %s", sqlite3_errmsg(c->db));
  return KK_ESTORE;
}

int store_account_get(struct store *s, const char *public_id, struct store_account *out) {
  sqlite3_stmt *st = sq_stmt(&s->r, ST_ACC_GET);
  sq_bind_text(st, 1, public_id);
  return read_account(&s->r, st, out);
}

int store_account_get_by_id(struct store *s, int64_t id, struct store_account *out) {
  sqlite3_stmt *st = sq_stmt(&s->r, ST_ACC_GET_ID);
  sqlite3_bind_int64(st, 1, id);
  return read_account(&s->r, st, out);
}

struct key_data {
  int64_t account_id;
  uint8_t hash[32];
  char prefix[16];
};

static int exec_key_add(struct store *s, struct store_op *op) {
  struct key_data *k = op->data;
  sqlite3_stmt *st = sq_stmt(&s->w, ST_KEY_INSERT);
  sqlite3_bind_int64(st, 1, k->account_id);
  sqlite3_bind_blob(st, 2, k->hash, 32, SQLITE_STATIC);
  sq_bind_text(st, 3, k->prefix);
  sqlite3_bind_int64(st, 4, store_now_ms());
  int rc = sq_step_done(&s->w, st);
  if (rc == 0) note_cfg(s, STORE_NOTE_KEY_ADD, k->account_id, k->prefix, NULL, k->hash, 0);
  return rc;
}

void store_key_add(struct store *s, int64_t account_id, const uint8_t hash[32],
                   const char *prefix, store_done_cb done, void *arg) {
  struct key_data *k = kk_xcalloc(1, sizeof *k);
  k->account_id = account_id;
  memcpy(k->hash, hash, 32);
  snprintf(k->prefix, sizeof k->prefix, "%s", prefix);
  store_submit(s, store_atomic(store_op_new(exec_key_add, done, arg, k, 0)));
}

int store_keys_each(struct store *s,
                    void (*fn)(void *arg, const uint8_t hash[32], int64_t account_id),
                    void *arg) {
  sqlite3_stmt *st = sq_stmt(&s->r, ST_KEY_ALL);
  int rc;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    if (sqlite3_column_bytes(st, 0) != 32) continue;
    fn(arg, sqlite3_column_blob(st, 0), sqlite3_column_int64(st, 1));
  }
  sqlite3_reset(st);
  return rc == SQLITE_DONE ? 0 : KK_ESTORE;
}

int store_keys_list(struct store *s, int64_t account_id,
                    void (*fn)(void *arg, const char *prefix, int64_t created_at,
                               int64_t revoked_at),
                    void *arg) {
  sqlite3_stmt *st = sq_stmt(&s->r, ST_KEY_LIST);
  sqlite3_bind_int64(st, 1, account_id);
  int rc;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW)
    fn(arg, (const char *)sqlite3_column_text(st, 0), sqlite3_column_int64(st, 1),
       sqlite3_column_int64(st, 2));
  sqlite3_reset(st);
  return rc == SQLITE_DONE ? 0 : KK_ESTORE;
}

static int exec_key_revoke(struct store *s, struct store_op *op) {
  struct store_key_revoke *k = op->data;
  sqlite3_stmt *st = sq_stmt(&s->w, ST_KEY_FIND);
  sq_bind_text(st, 1, k->prefix);
  sqlite3_bind_int64(st, 2, k->account_id);
  int64_t ids[STORE_REVOKE_MAX];
  k->n = 0;
  int rc;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW && k->n < STORE_REVOKE_MAX) {
    if (sqlite3_column_bytes(st, 1) != 32) continue;
    ids[k->n] = sqlite3_column_int64(st, 0);
    memcpy(k->hash[k->n], sqlite3_column_blob(st, 1), 32);
    k->owner[k->n] = sqlite3_column_int64(st, 2);
    k->n++;
  }
  sqlite3_reset(st);
  if (rc != SQLITE_ROW && rc != SQLITE_DONE) return KK_ESTORE;
  if (k->n == 0) return KK_ENOENT;
  int64_t now = store_now_ms();
  for (int i = 0; i < k->n; i++) {
    st = sq_stmt(&s->w, ST_KEY_REVOKE);
    sqlite3_bind_int64(st, 1, now);
    sqlite3_bind_int64(st, 2, ids[i]);
    if ((rc = sq_step_done(&s->w, st)) != 0) return rc;
    note_cfg(s, STORE_NOTE_KEY_REVOKE, k->owner[i], k->prefix, NULL, k->hash[i], 0);
  }
  return 0;
}

void store_key_revoke(struct store *s, struct store_key_revoke *k, store_done_cb done,
                      void *arg) {
  store_submit(s, store_atomic(store_op_new(exec_key_revoke, done, arg, k, 1)));
}

int store_accounts_suspended(struct store *s, void (*fn)(void *arg, int64_t account_id),
                             void *arg) {
  sqlite3_stmt *st = sq_stmt(&s->r, ST_ACC_SUSPENDED);
  int rc;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) fn(arg, sqlite3_column_int64(st, 0));
  sqlite3_reset(st);
  return rc == SQLITE_DONE ? 0 : KK_ESTORE;
}

/* ---- retention ------------------------------------------------------------ */

static int delete_message(struct store *s, int64_t id) {
  static const enum stmt_id order[] = {ST_RET_PARTS, ST_RET_ATTEMPTS, ST_RET_EVENTS, ST_RET_MSG};
  for (size_t i = 0; i < sizeof order / sizeof order[0]; i++) {
    sqlite3_stmt *st = sq_stmt(&s->w, order[i]);
    sqlite3_bind_int64(st, 1, id);
    int rc = sq_step_done(&s->w, st);
    if (rc) return rc;
  }
  return 0;
}

static int exec_retention(struct store *s, struct store_op *op) {
  struct store_retention *r = op->data;
  sqlite3_stmt *st = sq_stmt(&s->w, ST_RET_SCAN);
  sqlite3_bind_int64(st, 1, r->after_id);
  sqlite3_bind_int(st, 2, r->max);
  int64_t victims[STORE_RETENTION_MAX];
  int nv = 0, seen = 0, rc;
  r->more = 0;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    int64_t id = sqlite3_column_int64(st, 0);
    seen++;
    if (sqlite3_column_int64(st, 1) >= r->cutoff) {
      r->more = 0;   /* ids grow with time: the rest are newer */
      seen = -1;
      break;
    }
    r->after_id = id;
    if (sqlite3_column_int(st, 2) && sqlite3_column_int64(st, 3) < r->cutoff &&
        nv < STORE_RETENTION_MAX)
      victims[nv++] = id;
  }
  sqlite3_reset(st);
  if (rc != SQLITE_ROW && rc != SQLITE_DONE) return KK_ESTORE;
  if (seen == r->max) r->more = 1;
  for (int i = 0; i < nv; i++)
    if ((rc = delete_message(s, victims[i])) != 0) return rc;
  r->deleted = nv;
  return 0;
}

void store_retention(struct store *s, struct store_retention *r, store_done_cb done, void *arg) {
  if (r->max <= 0 || r->max > STORE_RETENTION_MAX) r->max = STORE_RETENTION_MAX;
  struct store_op *op = store_atomic(store_op_new(exec_retention, done, arg, r, 1));
  op->weight = r->max;
  store_submit(s, op);
}

/* ---- routes ------------------------------------------------------------ */

struct route_data {
  char *name;
  char *config;  /* NULL: delete */
};

static int exec_route_put(struct store *s, struct store_op *op) {
  struct route_data *d = op->data;
  int rc;
  if (d->config) {
    sqlite3_stmt *st = sq_stmt(&s->w, ST_ROUTE_PUT);
    sq_bind_text(st, 1, d->name);
    sq_bind_text(st, 2, d->config);
    sqlite3_bind_int64(st, 3, store_now_ms());
    rc = sq_step_done(&s->w, st);
  } else {
    sqlite3_stmt *st = sq_stmt(&s->w, ST_ROUTE_DEL);
    sq_bind_text(st, 1, d->name);
    rc = sq_step_done(&s->w, st);
  }
  if (rc == 0) note_cfg(s, STORE_NOTE_ROUTE, 0, d->name, d->config, NULL, 0);
  free(d->name);
  free(d->config);
  return rc;
}

void store_route_put(struct store *s, const char *name, const char *config,
                     store_done_cb done, void *arg) {
  struct route_data *d = kk_xcalloc(1, sizeof *d);
  d->name = kk_xstrdup(name);
  d->config = config ? kk_xstrdup(config) : NULL;
  store_submit(s, store_atomic(store_op_new(exec_route_put, done, arg, d, 0)));
}

int store_routes_each(struct store *s,
                      void (*fn)(void *arg, const char *name, const char *config),
                      void *arg) {
  sqlite3_stmt *st = sq_stmt(&s->r, ST_ROUTE_ALL);
  int rc;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW)
    fn(arg, (const char *)sqlite3_column_text(st, 0), (const char *)sqlite3_column_text(st, 1));
  sqlite3_reset(st);
  return rc == SQLITE_DONE ? 0 : KK_ESTORE;
}

/* ---- messages: insert --------------------------------------------------- */

struct insert_data {
  struct store_msg_new *msgs;
  int n;
};

/* The row of a new message whose first step is SMS, as the dispatcher reads
   it (store_due_get), made from what the writer has in hand. */
static void note_new_sms(struct store *s, const struct store_msg_new *m, int64_t due_at) {
  struct store_due *d = kk_xmalloc(sizeof *d);   /* freed with the note */
  d->id = m->id;
  d->attempt_id = m->attempt_id;
  d->account_id = m->account_id;
  snprintf(d->to, sizeof d->to, "%s", m->to);
  snprintf(d->sender, sizeof d->sender, "%s", m->sender ? m->sender : "");
  snprintf(d->route, sizeof d->route, "%s", m->route ? m->route : "");
  d->text = kk_xstrdup(m->text);
  d->parts_done = 0;
  d->due_at = due_at;
  d->expires_at = m->expires_at;
  note_due(s, d);
}

static int insert_one(struct store *s, struct store_msg_new *m) {
  struct conn *c = &s->w;
  m->duplicate = m->mismatch = 0;
  if (m->idem_key) {
    sqlite3_stmt *st = sq_stmt(c, ST_IDEM_FIND);
    sqlite3_bind_int64(st, 1, m->account_id);
    sq_bind_text(st, 2, m->idem_key);
    if (sqlite3_step(st) == SQLITE_ROW) {
      int64_t id = sqlite3_column_int64(st, 0);
      int64_t created = sqlite3_column_int64(st, 5);
      if (m->created_at - created < IDEM_WINDOW_MS) {
        /* The same key for another message: nothing is stored or sent.
           Rows from before the digest was kept match any request. */
        const char *h = (const char *)sqlite3_column_text(st, 6);
        if (m->req_hash && h && strcmp(h, m->req_hash) != 0) {
          m->mismatch = 1;
          sq_col_copy(st, 1, m->dup_public_id, sizeof m->dup_public_id);
          sqlite3_reset(st);
          return 0;
        }
        m->id = id;
        m->duplicate = 1;
        sq_col_copy(st, 1, m->dup_public_id, sizeof m->dup_public_id);
        sq_col_copy(st, 2, m->dup_status, sizeof m->dup_status);
        sq_col_copy(st, 3, m->dup_encoding, sizeof m->dup_encoding);
        m->dup_segments = sqlite3_column_int(st, 4);
        m->dup_created_at = created;
        sqlite3_reset(st);
        return 0;
      }
      sqlite3_reset(st);
      /* An older message keeps its row but gives up the key. */
      sqlite3_stmt *cl = sq_stmt(c, ST_IDEM_CLEAR);
      sqlite3_bind_int64(cl, 1, id);
      int rc = sq_step_done(c, cl);
      if (rc) return rc;
    } else {
      sqlite3_reset(st);
    }
  }
  /* The first usable step starts first, in the same savepoint, so the row
     is written once with it; what it started goes out as notes. */
  m->id = s->next_msg_id++;
  struct casc_first f;
  int rc = casc_start(s, m, &f);
  if (rc) return rc;
  sqlite3_stmt *st = sq_stmt(c, ST_MSG_INSERT);
  sqlite3_bind_int64(st, 1, m->id);
  sq_bind_text(st, 2, m->public_id);
  sqlite3_bind_int64(st, 3, m->account_id);
  sq_bind_text(st, 4, m->idem_key);
  sq_bind_text(st, 5, m->to);
  sq_bind_text(st, 6, m->sender);
  sq_bind_text(st, 7, m->text);
  sq_bind_text(st, 8, m->msg_class);
  sq_bind_text(st, 9, m->encoding);
  sqlite3_bind_int(st, 10, m->segments);
  sq_bind_text(st, 11, f.status);
  sq_bind_text(st, 12, f.channel);
  sq_bind_text(st, 13, m->callback_url);
  sqlite3_bind_int64(st, 14, m->created_at);
  sqlite3_bind_int64(st, 15, m->expires_at);
  sqlite3_bind_int64(st, 16, m->created_at);
  sq_bind_text(st, 17, m->cascade);
  sq_bind_text(st, 18, m->extra);
  sq_bind_text(st, 19, m->route);
  sqlite3_bind_int64(st, 20, m->to && m->to[0] ? casc_price(s, m->account_id, "sms") * m->segments : 0);
  sqlite3_bind_int(st, 21, f.step);
  sq_bind_opt(st, 22, f.attempt_id);
  sq_bind_opt(st, 23, f.due_at);
  sq_bind_opt(st, 24, f.wait_until);
  sqlite3_bind_int(st, 25, f.done);
  sqlite3_bind_int64(st, 26, f.cost);
  sq_bind_text(st, 27, m->campaign);
  sq_bind_text(st, 28, m->idem_key ? m->req_hash : NULL);
  rc = sq_step_done(c, st);
  if (rc == 0 && strcmp(m->first_channel, "sms") == 0) note_new_sms(s, m, f.due_at);
  return rc;
}

static int exec_msg_insert(struct store *s, struct store_op *op) {
  struct insert_data *d = op->data;
  /* A batch is all or nothing: one failing message fails the operation. */
  for (int i = 0; i < d->n; i++) {
    d->msgs[i].rc = insert_one(s, &d->msgs[i]);
    if (d->msgs[i].rc) return d->msgs[i].rc;
  }
  return 0;
}

void store_msg_insert(struct store *s, struct store_msg_new *msgs, int n,
                      store_done_cb done, void *arg) {
  struct insert_data *d = kk_xcalloc(1, sizeof *d);
  d->msgs = msgs;
  d->n = n;
  struct store_op *op = store_atomic(store_op_new(exec_msg_insert, done, arg, d, 0));
  op->weight = 2 * n;
  store_submit(s, op);
}

static void due_row(sqlite3_stmt *st, struct store_due *d) {
  memset(d, 0, sizeof *d);
  d->id = sqlite3_column_int64(st, 0);
  d->attempt_id = sqlite3_column_int64(st, 1);
  d->account_id = sqlite3_column_int64(st, 2);
  sq_col_copy(st, 3, d->to, sizeof d->to);
  sq_col_copy(st, 4, d->sender, sizeof d->sender);
  sq_col_copy(st, 5, d->route, sizeof d->route);
  d->text = sq_col_dup(st, 6);
  d->parts_done = (uint32_t)sqlite3_column_int64(st, 7);
  d->due_at = sqlite3_column_int64(st, 8);
  d->expires_at = sqlite3_column_int64(st, 9);
}

int store_due_scan(struct store *s, int64_t after_id, struct store_due *out, int max, int *n) {
  sqlite3_stmt *st = sq_stmt(&s->r, ST_DUE_SCAN);
  sqlite3_bind_int64(st, 1, after_id);
  sqlite3_bind_int(st, 2, max);
  int rc = SQLITE_DONE, k = 0;
  while (k < max && (rc = sqlite3_step(st)) == SQLITE_ROW) due_row(st, &out[k++]);
  if (k < max && rc != SQLITE_DONE) {
    kk_error(LOGCTX, "due scan: %s", sqlite3_errmsg(s->r.db));
    sqlite3_reset(st);
    for (int i = 0; i < k; i++) free(out[i].text);
    return KK_ESTORE;
  }
  sqlite3_reset(st);
  *n = k;
  return 0;
}

void store_read_begin(struct store *s) {
  if (sqlite3_get_autocommit(s->r.db)) exec_simple(&s->r, ST_BEGIN_READ);
}

void store_read_end(struct store *s) {
  if (!sqlite3_get_autocommit(s->r.db)) exec_simple(&s->r, ST_COMMIT);
}

int store_due_get(struct store *s, int64_t msg_id, struct store_due *out) {
  sqlite3_stmt *st = sq_stmt(&s->r, ST_DUE_GET);
  sqlite3_bind_int64(st, 1, msg_id);
  int rc = sqlite3_step(st);
  if (rc == SQLITE_ROW) due_row(st, out);
  sqlite3_reset(st);
  return rc == SQLITE_ROW ? 0 : rc == SQLITE_DONE ? KK_ENOENT : KK_ESTORE;
}

/* ---- messages: status changes ------------------------------------------ */

struct upd_data {
  struct store_sms_update u;
  char route[64];
  char provider_id[72];
  char error[160];
};

static int part_receipt(struct store *s, const char *route, const char *pid,
                        int64_t attempt_id, const struct casc_att *pre, const char *state,
                        const char *error, int64_t at);

/* SMSC message ids are matched without regard to letter case: receipts may
   spell a hex id differently from submit_sm_resp. */
static void lower_id(const char *in, char *out, size_t cap) {
  size_t i = 0;
  for (; in[i] && i + 1 < cap; i++) out[i] = (char)tolower((unsigned char)in[i]);
  out[i] = '\0';
}

int casc_early_check(struct store *s) {
  casc_early_forget(s);
  sqlite3_stmt *st = sq_stmt(&s->w, ST_EARLY_ANY);
  int rc = sqlite3_step(st);
  if (rc == SQLITE_ROW) {
    s->early_any = sqlite3_column_int(st, 0);
    s->estat_any = sqlite3_column_int(st, 1);
  }
  sqlite3_reset(st);
  return rc == SQLITE_ROW ? 0 : KK_ESTORE;
}

static int exec_sms_submitted(struct store *s, struct store_op *op) {
  struct upd_data *d = op->data;
  struct store_sms_update *u = &d->u;
  struct conn *c = &s->w;
  struct casc_att att;
  if (casc_att_load(s, u->attempt_id, &att) != 0) {
    kk_warnx(LOGCTX, "submit_sm_resp for attempt %lld, which does not exist",
             (long long)u->attempt_id);
    return 0;
  }
  int segments = att.segments;
  int64_t sent = att.parts_sent;
  sqlite3_stmt *st;

  char pid[72];
  lower_id(d->provider_id, pid, sizeof pid);
  st = sq_stmt(c, ST_PART_INSERT);
  sq_bind_text(st, 1, d->route);
  sq_bind_text(st, 2, pid);
  sqlite3_bind_int64(st, 3, u->attempt_id);
  sqlite3_bind_int(st, 4, u->part);
  int rc = sq_step_done(c, st);
  if (rc) return rc;

  sent |= (int64_t)1 << (u->part - 1);
  int64_t full = ((int64_t)1 << segments) - 1;
  const char *first_pid = u->part == 1 ? d->provider_id : NULL;
  if ((sent & full) == full) {
    /* The last part: the event writes the parts with the status. */
    att.parts_sent = sent;
    att.parts_dirty = 1;
    rc = casc_attempt_event(s, u->attempt_id, &att, "sent", first_pid, NULL, u->at, segments);
  } else {
    st = sq_stmt(c, ST_ATT_SENT);
    sqlite3_bind_int64(st, 1, sent);
    sq_bind_text(st, 2, first_pid);
    sqlite3_bind_int64(st, 3, u->attempt_id);
    rc = sq_step_done(c, st);
  }
  if (rc) return rc;

  /* Did this part's receipt come first? (Seldom: most of the time there is
     no early receipt at all and nothing to look up.) */
  if (!s->early_any) return 0;
  st = sq_stmt(c, ST_EARLY_GET);
  sq_bind_text(st, 1, d->route);
  sq_bind_text(st, 2, pid);
  if (sqlite3_step(st) != SQLITE_ROW) {
    sqlite3_reset(st);
    return 0;
  }
  char other[72], state[16], error[128];
  sq_col_copy(st, 0, other, sizeof other);
  sq_col_copy(st, 1, state, sizeof state);
  sq_col_copy(st, 2, error, sizeof error);
  int64_t at = sqlite3_column_int64(st, 3);
  sqlite3_reset(st);
  st = sq_stmt(c, ST_EARLY_DEL);
  sq_bind_text(st, 1, d->route);
  sq_bind_text(st, 2, pid);
  sq_bind_text(st, 3, other);
  rc = sq_step_done(c, st);
  if (rc == 0) rc = casc_early_check(s);
  if (rc) return rc;
  return part_receipt(s, d->route, pid, u->attempt_id, NULL, state, error, at);
}

static struct upd_data *upd_copy(const struct store_sms_update *u) {
  struct upd_data *d = kk_xcalloc(1, sizeof *d);
  d->u = *u;
  snprintf(d->route, sizeof d->route, "%s", u->route ? u->route : "");
  snprintf(d->provider_id, sizeof d->provider_id, "%s", u->provider_id ? u->provider_id : "");
  snprintf(d->error, sizeof d->error, "%s", u->error ? u->error : "");
  d->u.route = d->route;
  d->u.provider_id = d->provider_id;
  d->u.error = d->error;
  return d;
}

void store_sms_submitted(struct store *s, const struct store_sms_update *u,
                         store_done_cb done, void *arg) {
  struct store_op *op = store_keep(store_op_new(exec_sms_submitted, done, arg, upd_copy(u), 0));
  op->weight = 3;
  store_submit(s, op);
}

/* Ends the SMS attempt with a final status; the cascade decides what follows. */
static int attempt_final(struct store *s, int64_t msg_id, int64_t attempt_id,
                         const char *status, const char *error, int64_t at) {
  return casc_attempt_event(s, attempt_id, NULL, status, NULL, error && error[0] ? error : NULL,
                            at, 0);
}

static int exec_sms_failed(struct store *s, struct store_op *op) {
  struct upd_data *d = op->data;
  return attempt_final(s, d->u.msg_id, d->u.attempt_id, "failed", d->error, d->u.at);
}

static int exec_sms_expired(struct store *s, struct store_op *op) {
  struct upd_data *d = op->data;
  return attempt_final(s, d->u.msg_id, d->u.attempt_id, "expired", d->error, d->u.at);
}

static int exec_sms_retry(struct store *s, struct store_op *op) {
  struct upd_data *d = op->data;
  sqlite3_stmt *st = sq_stmt(&s->w, ST_MSG_SET_DUE);
  sqlite3_bind_int64(st, 1, d->u.due_at);
  sqlite3_bind_int64(st, 2, d->u.at);
  sqlite3_bind_int64(st, 3, d->u.msg_id);
  int rc = sq_step_done(&s->w, st);
  if (rc || !d->error[0]) return rc;
  st = sq_stmt(&s->w, ST_ATT_ERROR);
  sq_bind_text(st, 1, d->error);
  sqlite3_bind_int64(st, 2, d->u.attempt_id);
  return sq_step_done(&s->w, st);
}

void store_sms_failed(struct store *s, const struct store_sms_update *u,
                      store_done_cb done, void *arg) {
  store_submit(s, store_keep(store_op_new(exec_sms_failed, done, arg, upd_copy(u), 0)));
}

void store_sms_expired(struct store *s, const struct store_sms_update *u,
                       store_done_cb done, void *arg) {
  store_submit(s, store_keep(store_op_new(exec_sms_expired, done, arg, upd_copy(u), 0)));
}

void store_sms_retry(struct store *s, const struct store_sms_update *u,
                     store_done_cb done, void *arg) {
  store_submit(s, store_keep(store_op_new(exec_sms_retry, done, arg, upd_copy(u), 0)));
}

/* ---- receipts ---------------------------------------------------------- */

struct receipt_data {
  struct store_receipt *r;   /* caller's, alive until done */
  char route[64];
  char ids[2][72];
  char state[16];
  char error[128];
};

/*
 * Applies a receipt to one part that is still "sent" (pre: its attempt as
 * just read, or NULL). A part's own state is written only while its attempt
 * goes on: once the attempt has ended, a repeated receipt finds it ended.
 */
static int part_receipt(struct store *s, const char *route, const char *pid,
                        int64_t attempt_id, const struct casc_att *pre, const char *state,
                        const char *error, int64_t at) {
  struct conn *c = &s->w;
  struct casc_att att;
  if (pre)
    att = *pre;
  else if (casc_att_load(s, attempt_id, &att) != 0)
    return 0;
  int segments = att.segments;
  int delivered = att.parts_delivered;
  const char *astatus = att.status;
  if (strcmp(astatus, "sending") != 0 && strcmp(astatus, "sent") != 0 &&
      strcmp(astatus, "timeout") != 0)
    return 0; /* the attempt already ended */

  if (strcmp(state, "delivered") == 0) {
    if (delivered + 1 >= segments) /* the last part: counted by the event */
      return casc_attempt_event(s, attempt_id, &att, "delivered", NULL, NULL, at, 0);
    sqlite3_stmt *st = sq_stmt(c, ST_PART_SET);
    sq_bind_text(st, 1, state);
    sq_bind_text(st, 2, route);
    sq_bind_text(st, 3, pid);
    int rc = sq_step_done(c, st);
    if (rc) return rc;
    st = sq_stmt(c, ST_ATT_DELIVERED_PART);
    sqlite3_bind_int64(st, 1, attempt_id);
    return sq_step_done(c, st);
  }
  return casc_attempt_event(s, attempt_id, &att, state, NULL,
                            error && error[0] ? error : NULL, at, 0);
}

/* Keeps a receipt whose part is not known yet under each of its ids; the
   submit_sm_resp that names the part applies it (exec_sms_submitted). */
static int hold_receipt(struct store *s, const struct receipt_data *d) {
  struct conn *c = &s->w;
  char key[72];
  snprintf(key, sizeof key, "r%s", d->route);
  int rc = 0;
  for (int i = 0; i < 2 && rc == 0 && d->ids[i][0]; i++) {
    if (!casc_early_admit(s, key)) return 0;  /* the route holds its most */
    sqlite3_stmt *st = sq_stmt(c, ST_EARLY_PUT);
    sq_bind_text(st, 1, d->route);
    sq_bind_text(st, 2, d->ids[i]);
    sq_bind_text(st, 3, d->ids[1 - i]);
    sq_bind_text(st, 4, d->state);
    sq_bind_text(st, 5, d->error[0] ? d->error : NULL);
    sqlite3_bind_int64(st, 6, d->r->at);
    rc = sq_step_done(c, st);
  }
  if (rc == 0) s->early_any = 1;
  return rc;
}

static int exec_receipt(struct store *s, struct store_op *op) {
  struct receipt_data *d = op->data;
  struct conn *c = &s->w;
  d->r->matched = 0;
  for (int i = 0; i < 2 && d->ids[i][0]; i++) {
    sqlite3_stmt *st = sq_stmt(c, ST_PART_FIND);
    sq_bind_text(st, 1, d->route);
    sq_bind_text(st, 2, d->ids[i]);
    if (sqlite3_step(st) != SQLITE_ROW) {
      sqlite3_reset(st);
      continue;
    }
    int64_t attempt_id = sqlite3_column_int64(st, 0);
    char pstate[16];
    sq_col_copy(st, 1, pstate, sizeof pstate);
    struct casc_att att;
    casc_att_cols(st, 2, &att);
    sqlite3_reset(st);
    d->r->matched = 1;
    if (strcmp(pstate, "sent") != 0) return 0; /* a repeated receipt */
    return part_receipt(s, d->route, d->ids[i], attempt_id, &att, d->state, d->error, d->r->at);
  }
  return hold_receipt(s, d);
}

void store_receipt_apply(struct store *s, struct store_receipt *r,
                         store_done_cb done, void *arg) {
  struct receipt_data *d = kk_xcalloc(1, sizeof *d);
  r->at = store_clamp_at(r->at, store_now_ms());
  d->r = r;
  snprintf(d->route, sizeof d->route, "%s", r->route);
  for (int i = 0; i < 2; i++) lower_id(r->ids[i] ? r->ids[i] : "", d->ids[i], sizeof d->ids[i]);
  snprintf(d->state, sizeof d->state, "%s", r->state);
  snprintf(d->error, sizeof d->error, "%s", r->error ? r->error : "");
  struct store_op *op = store_op_new(exec_receipt, done, arg, d, 0);
  op->weight = 3;
  store_submit(s, op);
}

struct inbound_data {
  char channel[20], route[64], from[32], to[32];
  int64_t scope, at;
  char text[];              /* NUL-terminated */
};

/*
 * The account a message from a person belongs to: the scope whose number
 * received it, else the account whose message last went to that phone (on
 * that route, for SMS), the one it most likely answers. None: the row is
 * kept for the operator and listed to no account.
 */
static void inbound_owner(struct store *s, const struct inbound_data *d, int64_t *account,
                          int64_t *msg) {
  const char *from = d->from[0] == '+' ? d->from + 1 : d->from;
  sqlite3_stmt *st = sq_stmt(&s->w, ST_MO_OWNER);
  sq_bind_text(st, 1, from);
  sq_bind_text(st, 2, d->route[0] ? d->route : NULL);
  sqlite3_bind_int64(st, 3, d->scope);
  *account = d->scope;
  *msg = 0;
  if (sqlite3_step(st) == SQLITE_ROW) {
    *msg = sqlite3_column_int64(st, 0);
    *account = sqlite3_column_int64(st, 1);
  }
  sqlite3_reset(st);
}

static int exec_inbound(struct store *s, struct store_op *op) {
  struct inbound_data *d = op->data;
  int64_t account, msg;
  inbound_owner(s, d, &account, &msg);
  sqlite3_stmt *st = sq_stmt(&s->w, ST_MO_INSERT);
  sq_bind_text(st, 1, d->route[0] ? d->route : NULL);
  sq_bind_text(st, 2, d->from[0] == '+' ? d->from + 1 : d->from);
  sq_bind_text(st, 3, d->to);
  sq_bind_text(st, 4, d->text);
  sqlite3_bind_int64(st, 5, d->at);
  sq_bind_text(st, 6, d->channel);
  sq_bind_opt(st, 7, account);
  sq_bind_opt(st, 8, msg);
  return sq_step_done(&s->w, st);
}

void store_inbound_add(struct store *s, const struct store_inbound *in, store_done_cb done,
                       void *arg) {
  size_t len = strlen(in->text);
  struct inbound_data *d = kk_xcalloc(1, sizeof *d + len + 1);
  snprintf(d->channel, sizeof d->channel, "%s", in->channel);
  snprintf(d->route, sizeof d->route, "%s", in->route ? in->route : "");
  snprintf(d->from, sizeof d->from, "%s", in->from);
  snprintf(d->to, sizeof d->to, "%s", in->to ? in->to : "");
  d->scope = in->scope;
  d->at = in->at;
  memcpy(d->text, in->text, len + 1);
  store_submit(s, store_op_new(exec_inbound, done, arg, d, 0));
}

void store_mo_add(struct store *s, const char *route, const char *from,
                  const char *to, const char *text, int64_t at,
                  store_done_cb done, void *arg) {
  struct store_inbound in = {.channel = "sms", .route = route, .from = from, .to = to,
                             .text = text, .at = at};
  store_inbound_add(s, &in, done, arg);
}

int store_reply_list(struct store *s, int64_t account_id, const struct store_reply_filter *f,
                     struct store_reply_view *out, int *n, int64_t *next_cursor) {
  enum stmt_id id = f->from ? ST_REPLY_LIST_FROM : f->channel ? ST_REPLY_LIST_CHANNEL
                                                               : ST_REPLY_LIST;
  sqlite3_stmt *st = sq_stmt(&s->r, id);
  sqlite3_bind_int64(st, 1, account_id);
  sqlite3_bind_int64(st, 2, f->before_id > 0 ? f->before_id : INT64_MAX);
  sqlite3_bind_int(st, 3, f->limit + 1);
  if (id != ST_REPLY_LIST) sq_bind_text(st, 4, f->channel);
  if (id == ST_REPLY_LIST_FROM) sq_bind_text(st, 5, f->from);
  int k = 0, rc;
  *next_cursor = 0;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    if (k == f->limit) {
      *next_cursor = out[k - 1].id;
      break;
    }
    struct store_reply_view *v = &out[k++];
    memset(v, 0, sizeof *v);
    v->id = sqlite3_column_int64(st, 0);
    sq_col_copy(st, 1, v->channel, sizeof v->channel);
    sq_col_copy(st, 2, v->from, sizeof v->from);
    sq_col_copy(st, 3, v->to, sizeof v->to);
    sq_col_copy(st, 4, v->route, sizeof v->route);
    v->text = sq_col_dup(st, 5);
    v->at = sqlite3_column_int64(st, 6);
    sq_col_copy(st, 7, v->in_reply_to, sizeof v->in_reply_to);
  }
  sqlite3_reset(st);
  *n = k;
  if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
    for (int i = 0; i < k; i++) free(out[i].text);
    *n = 0;
    return KK_ESTORE;
  }
  return 0;
}

/* ---- reading messages --------------------------------------------------- */

static void read_msg_row(sqlite3_stmt *st, struct store_msg_view *v) {
  memset(v, 0, sizeof *v);
  sq_col_copy(st, 1, v->public_id, sizeof v->public_id);
  sq_col_copy(st, 2, v->to, sizeof v->to);
  sq_col_copy(st, 3, v->sender, sizeof v->sender);
  sq_col_copy(st, 4, v->msg_class, sizeof v->msg_class);
  sq_col_copy(st, 5, v->status, sizeof v->status);
  sq_col_copy(st, 6, v->encoding, sizeof v->encoding);
  v->segments = sqlite3_column_int(st, 7);
  sq_col_copy(st, 8, v->channel, sizeof v->channel);
  sq_col_copy(st, 9, v->idem_key, sizeof v->idem_key);
  sq_col_copy(st, 10, v->callback_url, sizeof v->callback_url);
  v->created_at = sqlite3_column_int64(st, 11);
  v->expires_at = sqlite3_column_int64(st, 12);
  v->updated_at = sqlite3_column_int64(st, 13);
  v->cost = sqlite3_column_int64(st, 14);
  v->sms_only_cost = sqlite3_column_int64(st, 15);
  v->delivered_twice = sqlite3_column_int(st, 16);
  v->done = sqlite3_column_int(st, 17);
  sq_col_copy(st, 18, v->campaign, sizeof v->campaign);
}

int store_msg_get(struct store *s, int64_t account_id, const char *public_id,
                  struct store_msg_view *out) {
  sqlite3_stmt *st = sq_stmt(&s->r, ST_MSG_VIEW);
  sq_bind_text(st, 1, public_id);
  sqlite3_bind_int64(st, 2, account_id);
  int rc = sqlite3_step(st);
  if (rc != SQLITE_ROW) {
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? KK_ENOENT : KK_ESTORE;
  }
  int64_t id = sqlite3_column_int64(st, 0);
  read_msg_row(st, out);
  sqlite3_reset(st);

  st = sq_stmt(&s->r, ST_ATT_VIEW);
  sqlite3_bind_int64(st, 1, id);
  while (out->nattempts < STORE_MAX_ATTEMPTS && sqlite3_step(st) == SQLITE_ROW) {
    struct store_attempt_view *a = &out->attempts[out->nattempts++];
    sq_col_copy(st, 0, a->channel, sizeof a->channel);
    sq_col_copy(st, 1, a->route, sizeof a->route);
    sq_col_copy(st, 2, a->status, sizeof a->status);
    sq_col_copy(st, 3, a->provider_id, sizeof a->provider_id);
    a->segments = sqlite3_column_int(st, 4);
    sq_col_copy(st, 5, a->error, sizeof a->error);
    a->created_at = sqlite3_column_int64(st, 6);
    a->sent_at = sqlite3_column_int64(st, 7);
    a->delivered_at = sqlite3_column_int64(st, 8);
    a->read_at = sqlite3_column_int64(st, 9);
    a->step = sqlite3_column_int(st, 10);
    a->cost = sqlite3_column_int64(st, 11);
  }
  sqlite3_reset(st);
  return 0;
}

/* Whether row st (MSG_SCAN_*) meets the conditions its index did not. */
static int list_row_matches(sqlite3_stmt *st, int64_t account_id,
                            const struct store_msg_filter *f, enum stmt_id id) {
  /* messages_to is the phone's across accounts (replies find their message
     by it); other accounts' rows count as examined. */
  if (id == ST_MSG_SCAN_TO && sqlite3_column_int64(st, 20) != account_id) return 0;
  if (f->status &&
      strcmp((const char *)sqlite3_column_text(st, 5), f->status) != 0)
    return 0;
  if (f->campaign && id != ST_MSG_SCAN_CAMPAIGN) {
    const unsigned char *c = sqlite3_column_text(st, 18);
    if (c == NULL || strcmp((const char *)c, f->campaign) != 0) return 0;
  }
  int64_t created = sqlite3_column_int64(st, 11);
  if (created < f->from || (f->to > 0 && created >= f->to)) return 0;
  return 1;
}

static int msg_list_on(struct conn *c, int64_t account_id, const struct store_msg_filter *f,
                       struct store_msg_view *out, int *n, int64_t *next_cursor) {
  enum stmt_id id = ST_MSG_SCAN_ACC;
  const char *eq = NULL;
  if (f->phone)
    id = ST_MSG_SCAN_TO, eq = f->phone;
  else if (f->campaign)
    id = ST_MSG_SCAN_CAMPAIGN, eq = f->campaign;
  sqlite3_stmt *st = sq_stmt(c, id);
  if (st == NULL) return KK_ESTORE;
  sqlite3_bind_int64(st, 1, account_id);
  sqlite3_bind_int64(st, 2, f->before_id > 0 ? f->before_id : INT64_MAX);
  if (eq) sq_bind_text(st, 3, eq);
  int max_examine = f->max_examine > 0 ? f->max_examine : STORE_LIST_EXAMINE;
  int k = 0, rc, examined = 0;
  int64_t last_id = 0;
  *next_cursor = 0;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    int64_t row_id = sqlite3_column_int64(st, 0);
    if (list_row_matches(st, account_id, f, id)) {
      if (k == f->limit) {
        *next_cursor = last_id;   /* a page full, and more beyond it */
        break;
      }
      last_id = row_id;
      read_msg_row(st, &out[k]);
      if (f->with_text) out[k].text = sq_col_dup(st, 19);
      k++;
    }
    if (++examined >= max_examine) {
      /* Enough rows looked at for one request: the rest is the next page's. */
      *next_cursor = row_id;
      break;
    }
  }
  sqlite3_reset(st);
  *n = k;
  if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
    for (int i = 0; i < k; i++) free(out[i].text);
    *n = 0;
    return KK_ESTORE;
  }
  return 0;
}

int store_msg_list(struct store *s, int64_t account_id, const struct store_msg_filter *f,
                   struct store_msg_view *out, int *n, int64_t *next_cursor) {
  return msg_list_on(&s->r, account_id, f, out, n, next_cursor);
}

/* ---- campaigns ----------------------------------------------------------- */

static int campaign_report_on(struct conn *c, int64_t account_id, const char *campaign,
                              store_campaign_group_fn fn, void *arg,
                              struct store_campaign_totals *out) {
  sqlite3_stmt *st = sq_stmt(c, ST_CAMPAIGN_REPORT);
  if (st == NULL) return KK_ESTORE;
  sqlite3_bind_int64(st, 1, account_id);
  sq_bind_text(st, 2, campaign);
  memset(out, 0, sizeof *out);
  int rc;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    char status[16], channel[20];
    sq_col_copy(st, 0, status, sizeof status);
    sq_col_copy(st, 1, channel, sizeof channel);
    int64_t n = sqlite3_column_int64(st, 2);
    out->messages += n;
    out->delivered_twice += sqlite3_column_int64(st, 3);
    out->messages_delivered_twice += sqlite3_column_int64(st, 4);
    out->cost += sqlite3_column_int64(st, 5);
    out->sms_only_cost += sqlite3_column_int64(st, 6);
    fn(arg, status, channel, n);
  }
  sqlite3_reset(st);
  if (rc != SQLITE_DONE) {
    kk_error(LOGCTX, "campaign report: %s", sqlite3_errmsg(c->db));
    return KK_ESTORE;
  }
  return out->messages ? 0 : KK_ENOENT;
}

int store_campaign_report(struct store *s, int64_t account_id, const char *campaign,
                          store_campaign_group_fn fn, void *arg,
                          struct store_campaign_totals *out) {
  return campaign_report_on(&s->r, account_id, campaign, fn, arg, out);
}

/* ---- reads in the thread pool ------------------------------------------ */

/* A read-only connection for a pool thread: a free one or a new one. NULL
   when it cannot be opened (logged). */
static struct conn *reader_get(struct store *s) {
  pthread_mutex_lock(&s->rp_mu);
  struct conn *c = s->rp_nfree > 0 ? s->rp_free[--s->rp_nfree] : NULL;
  pthread_mutex_unlock(&s->rp_mu);
  if (c) return c;
  c = kk_xcalloc(1, sizeof *c);   /* freed by reader_put() or store_close() */
  int flags = SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX;
  if (sqlite3_open_v2(s->path, &c->db, flags, NULL) != SQLITE_OK ||
      sqlite3_exec(c->db, "PRAGMA cache_size=-16384; PRAGMA temp_store=MEMORY;", NULL, NULL,
                   NULL) != SQLITE_OK) {
    kk_error(LOGCTX, "cannot open a reader of %s: %s", s->path,
             c->db ? sqlite3_errmsg(c->db) : "?");
    conn_close(c);
    free(c);
    return NULL;
  }
  sqlite3_busy_timeout(c->db, 5000);
  return c;
}

static void reader_put(struct store *s, struct conn *c) {
  pthread_mutex_lock(&s->rp_mu);
  if (s->rp_nfree < (int)(sizeof s->rp_free / sizeof s->rp_free[0])) {
    s->rp_free[s->rp_nfree++] = c;
    c = NULL;
  }
  pthread_mutex_unlock(&s->rp_mu);
  if (c) {
    conn_close(c);
    free(c);
  }
}

/* One read in the pool: fn(conn, args) on a pool thread, then done. */
struct pool_read {
  uv_work_t work;
  struct store *s;
  int (*fn)(struct conn *c, struct pool_read *r);
  store_done_cb done;
  void *arg;
  int rc;
  /* the read's arguments */
  int64_t account_id;
  struct store_msg_filter f;
  struct store_msg_view *out;
  int *n;
  int64_t *next_cursor;
  const char *campaign;
  store_campaign_group_fn group_fn;
  void *group_arg;
  struct store_campaign_totals *totals;
};

static void on_pool_work(uv_work_t *w) {
  struct pool_read *r = w->data;
  struct store *s = r->s;
  struct conn *c = reader_get(s);
  r->rc = c ? r->fn(c, r) : KK_ESTORE;
  if (c) reader_put(s, c);
  pthread_mutex_lock(&s->rp_mu);
  s->rp_running--;
  pthread_cond_broadcast(&s->rp_cv);
  pthread_mutex_unlock(&s->rp_mu);
}

static void on_pool_done(uv_work_t *w, int status) {
  struct pool_read *r = w->data;
  r->s->pending--;
  int rc = status == 0 ? r->rc : KK_ESTORE;
  if (r->done) r->done(r->arg, rc);
  free(r);
}

/* Queues r (loop thread); counted as pending, like a write, until done. */
static void pool_submit(struct store *s, struct pool_read *r) {
  r->s = s;
  r->work.data = r;
  s->pending++;
  pthread_mutex_lock(&s->rp_mu);
  s->rp_running++;
  pthread_mutex_unlock(&s->rp_mu);
  if (uv_queue_work(s->loop, &r->work, on_pool_work, on_pool_done) != 0) {
    pthread_mutex_lock(&s->rp_mu);
    s->rp_running--;
    pthread_mutex_unlock(&s->rp_mu);
    r->rc = KK_ESTORE;
    on_pool_done(&r->work, 0);
  }
}

/* Waits for reads running in pool threads and closes the readers. */
static void readers_close(struct store *s) {
  pthread_mutex_lock(&s->rp_mu);
  while (s->rp_running > 0) pthread_cond_wait(&s->rp_cv, &s->rp_mu);
  for (int i = 0; i < s->rp_nfree; i++) {
    conn_close(s->rp_free[i]);
    free(s->rp_free[i]);
  }
  s->rp_nfree = 0;
  pthread_mutex_unlock(&s->rp_mu);
}

static int pool_msg_list(struct conn *c, struct pool_read *r) {
  return msg_list_on(c, r->account_id, &r->f, r->out, r->n, r->next_cursor);
}

void store_msg_list_async(struct store *s, int64_t account_id, const struct store_msg_filter *f,
                          struct store_msg_view *out, int *n, int64_t *next_cursor,
                          store_done_cb done, void *arg) {
  struct pool_read *r = kk_xcalloc(1, sizeof *r);   /* freed in on_pool_done() */
  r->fn = pool_msg_list;
  r->done = done;
  r->arg = arg;
  r->account_id = account_id;
  r->f = *f;
  r->out = out;
  r->n = n;
  r->next_cursor = next_cursor;
  pool_submit(s, r);
}

static int pool_campaign_report(struct conn *c, struct pool_read *r) {
  return campaign_report_on(c, r->account_id, r->campaign, r->group_fn, r->group_arg, r->totals);
}

void store_campaign_report_async(struct store *s, int64_t account_id, const char *campaign,
                                 store_campaign_group_fn fn, void *fn_arg,
                                 struct store_campaign_totals *out, store_done_cb done,
                                 void *arg) {
  struct pool_read *r = kk_xcalloc(1, sizeof *r);   /* freed in on_pool_done() */
  r->fn = pool_campaign_report;
  r->done = done;
  r->arg = arg;
  r->account_id = account_id;
  r->campaign = campaign;
  r->group_fn = fn;
  r->group_arg = fn_arg;
  r->totals = out;
  pool_submit(s, r);
}

/* ---- outbox ------------------------------------------------------------ */

/* Reads the outbox rows (OUTBOX_COLS) of a bound statement into out, at
   most max, and resets it. */
static int outbox_rows(sqlite3_stmt *st, struct store_outbox *out, int max, int *n) {
  int k = 0;
  while (k < max && sqlite3_step(st) == SQLITE_ROW) {
    struct store_outbox *o = &out[k++];
    o->id = sqlite3_column_int64(st, 0);
    o->account_id = sqlite3_column_int64(st, 1);
    o->url = sq_col_dup(st, 2);
    o->payload = sq_col_dup(st, 3);
    o->tries = sqlite3_column_int(st, 4);
    sq_col_copy(st, 5, o->public_id, sizeof o->public_id);
    sq_col_copy(st, 6, o->status, sizeof o->status);
    sq_col_copy(st, 7, o->channel, sizeof o->channel);
    sq_col_copy(st, 8, o->to, sizeof o->to);
    o->at = sqlite3_column_int64(st, 9);
    o->cost = sqlite3_column_int64(st, 10);
    o->has_error = sqlite3_column_type(st, 11) != SQLITE_NULL;
    sq_col_copy(st, 11, o->error, sizeof o->error);
  }
  sqlite3_reset(st);
  *n = k;
  return 0;
}

int store_outbox_due(struct store *s, int64_t now, struct store_outbox *out, int max, int *n) {
  sqlite3_stmt *st = sq_stmt(&s->r, ST_OUTBOX_DUE);
  sqlite3_bind_int64(st, 1, now);
  sqlite3_bind_int(st, 2, max);
  return outbox_rows(st, out, max, n);
}

struct outbox_res {
  int64_t id;
  int delivered;
  int64_t due_at;
  char error[160];
};

static int exec_outbox_result(struct store *s, struct store_op *op) {
  struct outbox_res *d = op->data;
  sqlite3_stmt *st;
  if (d->delivered) {
    st = sq_stmt(&s->w, ST_OUTBOX_DEL);
    sqlite3_bind_int64(st, 1, d->id);
  } else {
    st = sq_stmt(&s->w, ST_OUTBOX_RETRY);
    sqlite3_bind_int64(st, 1, d->due_at);
    sq_bind_text(st, 2, d->error);
    sqlite3_bind_int64(st, 3, d->id);
  }
  return sq_step_done(&s->w, st);
}

void store_outbox_result(struct store *s, int64_t id, int delivered, int64_t due_at,
                         const char *error, store_done_cb done, void *arg) {
  struct outbox_res *d = kk_xcalloc(1, sizeof *d);
  d->id = id;
  d->delivered = delivered;
  d->due_at = due_at;
  snprintf(d->error, sizeof d->error, "%s", error ? error : "");
  store_submit(s, store_keep(store_op_new(exec_outbox_result, done, arg, d, 0)));
}

int store_outbox_accounts(struct store *s, int64_t now, int64_t after, int64_t *out, int max,
                          int *n) {
  /* A skip-scan over outbox_account: one index seek per account. */
  sqlite3_stmt *st = sq_stmt(&s->r, ST_OUTBOX_NEXT_ACC);
  int k = 0;
  while (k < max) {
    sqlite3_bind_int64(st, 1, after);
    int rc = sqlite3_step(st);
    if (rc != SQLITE_ROW) {
      sqlite3_reset(st);
      if (rc == SQLITE_DONE) break;
      *n = k;
      return KK_ESTORE;
    }
    after = sqlite3_column_int64(st, 0);
    if (sqlite3_column_int64(st, 1) <= now) out[k++] = after;
    sqlite3_reset(st);
  }
  *n = k;
  return 0;
}

int store_outbox_due_account(struct store *s, int64_t account_id, int64_t now,
                             struct store_outbox *out, int max, int *n) {
  sqlite3_stmt *st = sq_stmt(&s->r, ST_OUTBOX_DUE_ACC);
  sqlite3_bind_int64(st, 1, account_id);
  sqlite3_bind_int64(st, 2, now);
  sqlite3_bind_int(st, 3, max);
  return outbox_rows(st, out, max, n);
}

static int exec_outbox_defer(struct store *s, struct store_op *op) {
  struct outbox_res *d = op->data;
  sqlite3_stmt *st = sq_stmt(&s->w, ST_OUTBOX_DEFER);
  sqlite3_bind_int64(st, 1, d->due_at);
  sqlite3_bind_int64(st, 2, d->id);
  return sq_step_done(&s->w, st);
}

void store_outbox_defer(struct store *s, int64_t id, int64_t due_at, store_done_cb done,
                        void *arg) {
  struct outbox_res *d = kk_xcalloc(1, sizeof *d);  /* freed with the operation */
  d->id = id;
  d->due_at = due_at;
  store_submit(s, store_op_new(exec_outbox_defer, done, arg, d, 0));
}

/* Drops the oldest rows of one account beyond t->keep, at most the rest of
   t->max_delete; records what it dropped in t. */
static int outbox_trim_account(struct store *s, struct store_outbox_trim *t, int64_t account_id) {
  sqlite3_stmt *st = sq_stmt(&s->w, ST_OUTBOX_COUNT_ACC);
  sqlite3_bind_int64(st, 1, account_id);
  int64_t count = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
  sqlite3_reset(st);
  int64_t excess = count - t->keep;
  if (excess <= 0) return 0;
  if (excess > t->max_delete - t->dropped) excess = t->max_delete - t->dropped;
  st = sq_stmt(&s->w, ST_OUTBOX_DROP_OLD);
  sqlite3_bind_int64(st, 1, account_id);
  sqlite3_bind_int64(st, 2, excess);
  int rc = sq_step_done(&s->w, st);
  if (rc) return rc;
  int64_t gone = sqlite3_changes(s->w.db);
  t->dropped += gone;
  if (t->naccounts < STORE_TRIM_ACCOUNTS) {
    t->account_id[t->naccounts] = account_id;
    t->account_dropped[t->naccounts++] = gone;
  }
  return 0;
}

static int exec_outbox_trim(struct store *s, struct store_op *op) {
  struct store_outbox_trim *t = op->data;
  sqlite3_stmt *st = sq_stmt(&s->w, ST_OUTBOX_NEXT_ACC);
  int64_t after = 0;
  t->dropped = 0;
  t->naccounts = 0;
  while (t->dropped < t->max_delete) {
    sqlite3_bind_int64(st, 1, after);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) after = sqlite3_column_int64(st, 0);
    sqlite3_reset(st);
    if (rc == SQLITE_DONE) return 0;
    if (rc != SQLITE_ROW) return KK_ESTORE;
    if ((rc = outbox_trim_account(s, t, after)) != 0) return rc;
  }
  return 0;
}

void store_outbox_trim(struct store *s, struct store_outbox_trim *t, store_done_cb done,
                       void *arg) {
  store_submit(s, store_op_new(exec_outbox_trim, done, arg, t, 1));
}

int64_t store_outbox_next_due(struct store *s) {
  sqlite3_stmt *st = sq_stmt(&s->r, ST_OUTBOX_NEXT);
  int64_t v = 0;
  if (sqlite3_step(st) == SQLITE_ROW) v = sqlite3_column_int64(st, 0);
  sqlite3_reset(st);
  return v;
}
