/*
 * sq_backend.c - the SQLite backend's table (store_int.h: struct
 * store_backend): opening and closing the database, and the transactions
 * the writer runs each batch in.
 *
 * One writer thread owns the write connection (w) and group-commits the
 * queued operations; the loop thread reads through its own connection (r),
 * the store's pool threads through read-only ones (sq_read.c), and the checkpointer
 * through a third (sq_ckpt.c).
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/kk_err.h"
#include "core/kk_log.h"
#include "core/kk_mem.h"
#include "store/sqlite/sq_int.h"

#define LOGCTX "store"

double sq_mono_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6;
}

/* BEGIN IMMEDIATE: waits for another process's lock about BUSY_MS at most
   (the busy handler waits within a try; the next tries cover a lock that
   SQLite reports at once, without calling the handler). */
static int sq_begin(struct store *s) {
  double t0 = sq_mono_ms();
  for (int tries = 0; tries < 3; tries++) {
    int rc = sq_exec(&SQ(s)->w, ST_BEGIN);
    if (rc == 0) return 0;
    if (sq_mono_ms() - t0 > BUSY_MS) break;
    struct timespec ts = {0, 10 * 1000 * 1000};
    nanosleep(&ts, NULL);
  }
  return KK_ESTORE;
}

/* A campaign's figures changed in the transaction go in with it; when they
   cannot, it does not commit (the writer rolls it back). */
static int sq_commit(struct store *s) {
  if (sq_counts_flush(SQ(s)) != 0) return KK_ESTORE;
  return sq_exec(&SQ(s)->w, ST_COMMIT);
}

static void sq_rollback(struct store *s) {
  if (!sqlite3_get_autocommit(SQ(s)->w.db)) sq_exec(&SQ(s)->w, ST_ROLLBACK);
  sq_counts_drop(SQ(s));
}

static int sq_savepoint(struct store *s) {
  sq_counts_mark(SQ(s));
  return sq_exec(&SQ(s)->w, ST_SAVEPOINT);
}
static void sq_release(struct store *s) { sq_exec(&SQ(s)->w, ST_RELEASE); }
static void sq_rollback_to(struct store *s) {
  sq_exec(&SQ(s)->w, ST_ROLLBACK_TO);
  sq_counts_undo(SQ(s));
}
static int sq_in_tx(struct store *s) { return !sqlite3_get_autocommit(SQ(s)->w.db); }

static int fault_kind(int sqlite_rc) {
  switch (sqlite_rc & 0xff) {
  case SQLITE_BUSY:
  case SQLITE_LOCKED:
    return STORE_FAULT_BUSY;
  case SQLITE_IOERR:
  case SQLITE_FULL:
  case SQLITE_CANTOPEN:
  case SQLITE_PROTOCOL:
    return STORE_FAULT_IO;
  default:
    return STORE_FAULT_OTHER;
  }
}

/* The kind of the failure just seen on the writer's connection. */
static int sq_fault(struct store *s) {
  struct conn *w = &SQ(s)->w;
  return fault_kind(w->err ? w->err : sqlite3_errcode(w->db));
}

static void sq_fault_clear(struct store *s) { SQ(s)->w.err = 0; }

/* The rows the batch's notes hand out, as the transaction leaves them; the
   periodic expiry of early rows, one bounded batch, with the work that
   happens to be committing. */
static void sq_before_commit(struct store *s, double mono_ms) {
  struct sq_store *q = SQ(s);
  sq_notes_rows(s, store_now_ms());
  if (mono_ms < q->early_next_expire) return;
  q->early_next_expire = mono_ms + EARLY_EXPIRE_EVERY_MS;
  if (casc_early_expire(s, store_now_ms() - EARLY_KEEP_MS) != 0)
    kk_error(LOGCTX, "expiry of early statuses failed");
}

static void sq_undone(struct store *s) { casc_early_check(s); }

static void sq_publish(struct store *s) {
  struct sq_store *q = SQ(s);
  s->cstats = q->cstats_w;
  s->stats.early_refused = q->early_refused_w;
  s->stats.early_expired = q->early_expired_w;
}

static int64_t sq_new_id_fn(struct store *s, enum store_id_kind kind) {
  return sq_new_id(s, kind);
}

/* One writer: every row it asks for is its own. */
static int sq_claim(struct store *s, enum store_claim_kind kind, const int64_t *ids, int n,
                    int64_t lease_ms, unsigned char *granted) {
  (void)s, (void)kind, (void)ids, (void)lease_ms;
  memset(granted, 1, (size_t)(n > 0 ? n : 0));
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

static void open_failed(struct sq_store *q) {
  sq_counts_stop(q);
  conn_close(&q->w);
  conn_close(&q->r);
  free(q);
}

static int sq_open(const struct store_opts *opts, struct store **out) {
  /* Each connection is used by one thread only, and nothing reads SQLite's
     memory statistics: skip the mutexes both would cost on every call. */
  sqlite3_config(SQLITE_CONFIG_MULTITHREAD);
  sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
  struct sq_store *q = kk_xcalloc(1, sizeof *q);
  char path[4096];
  snprintf(path, sizeof path, "%s/kaskad.db", opts->dir);
  q->early_cap = opts->early_cap > 0 ? opts->early_cap : 10000;
  if (conn_open(&q->w, path, opts->synchronous_full, 1) != 0 || sq_migrate(&q->w) != 0 ||
      sq_counts_start(q) != 0 || conn_open(&q->r, path, opts->synchronous_full, 0) != 0) {
    open_failed(q);
    return KK_ESTORE;
  }
  /* The one writer numbers new messages and attempts (sq_new_id). */
  q->next_msg_id = max_id(&q->w, ST_MSG_MAX_ID) + 1;
  q->next_att_id = max_id(&q->w, ST_ATT_MAX_ID) + 1;
  if (q->next_msg_id <= 0 || q->next_att_id <= 0 || casc_early_check(&q->base) != 0 ||
      ckpt_start(&q->base, path, opts->synchronous_full) != 0) {
    open_failed(q);
    return KK_ESTORE;
  }
  snprintf(q->path, sizeof q->path, "%s", path);
  kk_info(LOGCTX, "opened %s (synchronous=%s)", path, opts->synchronous_full ? "FULL" : "NORMAL");
  *out = &q->base;
  return 0;
}

static void sq_close(struct store *s) {
  struct sq_store *q = SQ(s);
  ckpt_stop(s);
  sq_counts_stop(q);
  conn_close(&q->w);
  conn_close(&q->r);
  free(q->ecount);
  q->ecount = NULL;
}

const struct store_backend store_sqlite_backend = {
    .name = "sqlite",
    .exclusive = 1,
    .open = sq_open,
    .close = sq_close,
    .begin = sq_begin,
    .commit = sq_commit,
    .rollback = sq_rollback,
    .savepoint = sq_savepoint,
    .release = sq_release,
    .rollback_to = sq_rollback_to,
    .in_tx = sq_in_tx,
    .fault = sq_fault,
    .fault_clear = sq_fault_clear,
    .before_commit = sq_before_commit,
    .undone = sq_undone,
    .publish = sq_publish,
    .new_id = sq_new_id_fn,
    .claim = sq_claim,
    .reader_open = sq_reader_open,
    .sql = sq_sql,
    .sql_args_max = 800,
    .reader_close = sq_reader_close,
    .exec =
        {
            [STORE_OP_ACCOUNT_CREATE] = sq_account_create,
            [STORE_OP_ACCOUNT_UPDATE] = sq_account_update,
            [STORE_OP_KEY_ADD] = sq_key_add,
            [STORE_OP_KEY_REVOKE] = sq_key_revoke,
            [STORE_OP_ROUTE_PUT] = sq_route_put,
            [STORE_OP_SETTING_PUT] = sq_setting_put,
            [STORE_OP_RETENTION] = sq_retention,
            /* channels and cascades */
            [STORE_OP_CHAN_TRYING] = sq_chan_trying,
            [STORE_OP_CHAN_RESULT] = sq_chan_result,
            [STORE_OP_CHAN_STATUS] = sq_chan_status,
            [STORE_OP_STEP_TIMEOUT] = sq_step_timeout,
            [STORE_OP_WA_INBOUND] = sq_wa_inbound,
            /* messages, SMS and callbacks */
            [STORE_OP_MSG_INSERT] = sq_msg_insert,
            [STORE_OP_MSG_CANCEL] = sq_msg_cancel,
            [STORE_OP_CAMPAIGN] = store_campaign_exec,
            [STORE_OP_SMS_SUBMITTED] = sq_sms_submitted,
            [STORE_OP_SMS_FAILED] = sq_sms_failed,
            [STORE_OP_SMS_EXPIRED] = sq_sms_expired,
            [STORE_OP_SMS_RETRY] = sq_sms_retry,
            [STORE_OP_MSG_DECIDE] = sq_msg_decide,
            [STORE_OP_RECEIPT] = sq_receipt,
            [STORE_OP_INBOUND] = sq_inbound,
            [STORE_OP_OUTBOX_RESULT] = sq_outbox_result,
            [STORE_OP_OUTBOX_DEFER] = sq_outbox_defer,
            [STORE_OP_OUTBOX_TRIM] = sq_outbox_trim,
            [STORE_OP_EARLY_EXPIRE] = sq_early_expire,
            /* templates */
            [STORE_OP_TEMPLATE_PUT] = sq_template_put,
            /* contacts and imports (sq_contact.c) */
            [STORE_OP_CONTACT_WRITE] = sq_contact_write,
            [STORE_OP_CONTACT_DELETE] = sq_contact_delete,
            [STORE_OP_IMPORT_CHANGE] = sq_import_change,
            /* the stop-list and consents (sq_optout.c) */
            [STORE_OP_STOP_WRITE] = sq_stop_write,
            [STORE_OP_CONSENT_WRITE] = sq_consent_write,
            [STORE_OP_INBOUND_SET] = sq_inbound_set,
            [STORE_OP_UNSUB_PUT] = sq_unsub_put,
            /* balances (sq_money.c) */
            [STORE_OP_MONEY_SET] = sq_money_set,
            [STORE_OP_MONEY_TOPUP] = sq_money_topup,
            [STORE_OP_SEGMENT_PUT] = sq_segment_put,
            [STORE_OP_SEGMENT_DELETE] = sq_segment_delete,
        },
    .read =
        {
            .keys_each = sq_keys_each,
            .accounts_suspended = sq_accounts_suspended,
            .routes_each = sq_routes_each,
            .channels_each = sq_channels_each,
            .prices_each = sq_prices_each,
            .accounts_each = sq_accounts_each,
            .cascades_all = sq_cascades_all,
            .templates_all = sq_templates_all,
            /* channels and cascades */
            .chan_due = sq_chan_due,
            .wait_due = sq_wait_due,
            .wait_next = sq_wait_next,
            .wa_last_inbound = sq_wa_last_inbound,
            /* messages, SMS and callbacks */
            .msg_get = sq_msg_get,
            .msg_list = sq_msg_list,
            .reply_list = sq_reply_list,
            .keys_rows = sq_keys_list,
            .nodes = sq_nodes,
            .sms_due = sq_sms_due,
            .outbox_accounts = sq_outbox_accounts,
            .outbox_due = sq_outbox_due,
            /* contacts and imports (sq_contact.c) */
            .contact = SQ_CONTACT_READS,
            .optout = SQ_OPTOUT_READS,
            /* balances (sq_money.c) */
            .money = SQ_MONEY_READS,
        },
};
