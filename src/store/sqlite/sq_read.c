/*
 * sq_read.c - reading messages in the SQLite backend: one message, bounded
 * listings and campaign reports, on the loop's connection or on the store's
 * pool threads (store_pool.c) through read-only connections of their own.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/kk_err.h"
#include "core/kk_log.h"
#include "core/kk_mem.h"
#include "store/sqlite/sq_int.h"

#define LOGCTX "store"

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

int sq_msg_get(struct store *s, void *rd, int64_t account_id, const char *public_id,
               struct store_msg_view *out) {
  (void)s;
  struct conn *c = rd;
  sqlite3_stmt *st = sq_stmt(c, ST_MSG_VIEW);
  sq_bind_text(st, 1, public_id);
  sqlite3_bind_int64(st, 2, account_id);
  int rc = sqlite3_step(st);
  if (rc != SQLITE_ROW) {
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? KK_ENOENT : KK_ESTORE;
  }
  int64_t id = sqlite3_column_int64(st, 0);
  read_msg_row(st, out);
  sq_col_copy(st, 19, out->decisions, sizeof out->decisions);
  /* The message's statement stays open while its attempts are read: one
     read transaction, so one snapshot of both. */
  sqlite3_stmt *msg = st;

  st = sq_stmt(c, ST_ATT_VIEW);
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
    a->price = sqlite3_column_int64(st, 12);
  }
  sqlite3_reset(st);
  sqlite3_reset(msg);
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
  return msg_list_on(&SQ(s)->r, account_id, f, out, n, next_cursor);
}

/* ---- reads in the pool (store_pool.c) ------------------------------------ */

void *sq_reader_open(struct store *s) {
  struct conn *c = kk_xcalloc(1, sizeof *c);   /* freed by sq_reader_close() */
  int flags = SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX;
  if (sqlite3_open_v2(SQ(s)->path, &c->db, flags, NULL) != SQLITE_OK ||
      sqlite3_exec(c->db, "PRAGMA cache_size=-16384; PRAGMA temp_store=MEMORY;", NULL, NULL,
                   NULL) != SQLITE_OK) {
    kk_error(LOGCTX, "cannot open a reader of %s: %s", SQ(s)->path,
             c->db ? sqlite3_errmsg(c->db) : "?");
    conn_close(c);
    free(c);
    return NULL;
  }
  sqlite3_busy_timeout(c->db, 5000);
  return c;
}

void sq_reader_close(struct store *s, void *rd) {
  (void)s;
  conn_close(rd);
  free(rd);
}

int sq_msg_list(struct store *s, void *rd, int64_t account_id, const struct store_msg_filter *f,
                struct store_msg_view *out, int *n, int64_t *next_cursor) {
  (void)s;
  return msg_list_on(rd, account_id, f, out, n, next_cursor);
}

/* ---- nodes -------------------------------------------------------------------- */

/* The one node of an SQLite store and the due work it holds. */
int sq_nodes(struct store *s, void *rd, struct store_node *out, int max, int *n) {
  struct conn *c = rd;
  *n = 0;
  if (max < 1) return 0;
  memset(out, 0, sizeof *out);
  out->id = 1;
  snprintf(out->name, sizeof out->name, "%s", s->node_name);
  out->started_at = s->started_at;
  out->heartbeat_at = store_now_ms();
  out->alive = 1;
  sqlite3_stmt *st = NULL;
  if (sqlite3_prepare_v2(c->db,
                         "SELECT (SELECT COUNT(*) FROM messages WHERE due_at IS NOT NULL),"
                         "(SELECT COUNT(*) FROM attempts WHERE due_at IS NOT NULL),"
                         "(SELECT COUNT(*) FROM messages WHERE wait_until IS NOT NULL),"
                         "(SELECT COUNT(*) FROM outbox)",
                         -1, &st, NULL) != SQLITE_OK) {
    sqlite3_finalize(st);
    return KK_ESTORE;
  }
  int rc = sqlite3_step(st);
  if (rc == SQLITE_ROW) {
    out->messages = sqlite3_column_int64(st, 0);
    out->attempts = sqlite3_column_int64(st, 1);
    out->waits = sqlite3_column_int64(st, 2);
    out->outbox = sqlite3_column_int64(st, 3);
    *n = 1;
  }
  sqlite3_finalize(st);
  return rc == SQLITE_ROW ? 0 : KK_ESTORE;
}
