/*
 * sq_msg.c - new messages (idempotency, numbering, the first step) and the
 * SMS rows that are due, in the SQLite backend.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/kk_err.h"
#include "core/kk_log.h"
#include "core/kk_mem.h"
#include "store/sqlite/sq_int.h"
#include "store/store_money.h"

#define LOGCTX "store"

#define IDEM_WINDOW_MS (24LL * 3600 * 1000)

/* ---- messages: insert --------------------------------------------------- */

static int insert_one(struct store *s, struct store_msg_new *m) {
  struct conn *c = &SQ(s)->w;
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
  m->id = sq_new_id(s, STORE_ID_MESSAGE);
  int rc = sq_money_hold(s, m);
  if (rc || m->no_balance) return rc;
  struct casc_first f;
  rc = casc_start(s, m, &f);
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
  /* what it would cost as SMS only: at the price of the route its SMS would take */
  sqlite3_bind_int64(st, 20,
                     m->to && m->to[0] ? store_money_sms_unit(s, m, casc_price) * m->segments : 0);
  sqlite3_bind_int(st, 21, f.step);
  sq_bind_opt(st, 22, f.attempt_id);
  sq_bind_opt(st, 23, f.due_at);
  sq_bind_opt(st, 24, f.wait_until);
  sqlite3_bind_int(st, 25, f.done);
  sqlite3_bind_int64(st, 26, f.cost);
  sq_bind_text(st, 27, m->campaign);
  sq_bind_text(st, 28, m->idem_key ? m->req_hash : NULL);
  sq_bind_text(st, 29, m->decisions);
  sq_bind_opt(st, 30, m->variant);
  rc = sq_step_done(c, st);
  if (rc == 0 && strcmp(m->first_channel, "sms") == 0) note_new_sms(s, m, f.due_at);
  return rc;
}

int sq_msg_insert(struct store *s, struct store_op *op) {
  struct store_insert_data *d = op->data;
  /* A batch is all or nothing: one failing message fails the operation. */
  for (int i = 0; i < d->n; i++) {
    d->msgs[i].rc = insert_one(s, &d->msgs[i]);
    if (d->msgs[i].rc) return d->msgs[i].rc;
  }
  return store_links_insert(s, d->msgs, d->n);
}

void sq_due_row(sqlite3_stmt *st, struct store_due *d) {
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
  sq_col_copy(st, 10, d->msg_class, sizeof d->msg_class);
  d->created_at = sqlite3_column_int64(st, 11);
  d->scheduled = sqlite3_column_int(st, 12);
}

int sq_sms_due(struct store *s, int64_t after_id, struct store_due *out, int max, int *n) {
  sqlite3_stmt *st = sq_stmt(&SQ(s)->r, ST_DUE_SCAN);
  sqlite3_bind_int64(st, 1, after_id);
  sqlite3_bind_int(st, 2, max);
  int rc = SQLITE_DONE, k = 0;
  while (k < max && (rc = sqlite3_step(st)) == SQLITE_ROW) sq_due_row(st, &out[k++]);
  if (k < max && rc != SQLITE_DONE) {
    kk_error(LOGCTX, "due scan: %s", sqlite3_errmsg(SQ(s)->r.db));
    sqlite3_reset(st);
    for (int i = 0; i < k; i++) free(out[i].text);
    return KK_ESTORE;
  }
  sqlite3_reset(st);
  *n = k;
  return 0;
}
