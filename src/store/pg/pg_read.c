/*
 * pg_read.c - the PostgreSQL backend's reads in the store's pool
 * (store_pool.c): one message with its attempts, bounded listings of
 * messages and replies, campaign reports. Each runs on a pool thread
 * through rd, that thread's connection (pgb_reader_open), and answers as
 * the SQLite backend's (sqlite/sq_read.c, sq_sms.c) over the same indexes
 * and within the same bounds.
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/kk_err.h"
#include "core/kk_log.h"
#include "core/kk_mem.h"
#include "store/pg/pg_int.h"

#define LOGCTX "store"

/* ---- one message ------------------------------------------------------------ */

/* A message's columns as msg_row() reads them (the SQLite backend's
   MSG_COLS). */
#define MSG_COLS "id,public_id,to_number,sender,class,status,encoding,segments,"  \
                 "channel,idem_key,callback_url,created_at,expires_at,"           \
                 "updated_at,cost,sms_only_cost,delivered_twice,done,campaign"
#define MSG_NCOLS 19

/* Where a column of a row goes in a view: a text copied into a field of
   size bytes, or a number into an int or int64_t field (by its size). */
enum col_kind { COL_SKIP, COL_TEXT, COL_NUM };
struct col_at {
  enum col_kind kind;
  size_t off, size;
};
#define COL(kind, T, f) {kind, offsetof(T, f), sizeof(((T *)0)->f)}
#define MV(kind, f) COL(kind, struct store_msg_view, f)
#define AV(kind, f) COL(kind, struct store_attempt_view, f)

/* The n columns of row row of r from column c0 on into dst, as cols says. */
static void row_into(const PGresult *r, int row, int c0, const struct col_at *cols, int n,
                     void *dst) {
  char *d = dst;
  for (int i = 0; i < n; i++) {
    const struct col_at *c = &cols[i];
    if (c->kind == COL_TEXT) {
      pg_copy(r, row, c0 + i, d + c->off, c->size);
    } else if (c->kind == COL_NUM && c->size == sizeof(int64_t)) {
      int64_t v = pg_int(r, row, c0 + i);
      memcpy(d + c->off, &v, sizeof v);
    } else if (c->kind == COL_NUM && c->size == sizeof(int)) {
      int v = (int)pg_int(r, row, c0 + i);
      memcpy(d + c->off, &v, sizeof v);
    }
  }
}

/* MSG_COLS into a message's view (its id not kept). */
static const struct col_at msg_cols[MSG_NCOLS] = {
    {COL_SKIP, 0, 0},         MV(COL_TEXT, public_id),     MV(COL_TEXT, to),
    MV(COL_TEXT, sender),     MV(COL_TEXT, msg_class),     MV(COL_TEXT, status),
    MV(COL_TEXT, encoding),   MV(COL_NUM, segments),       MV(COL_TEXT, channel),
    MV(COL_TEXT, idem_key),   MV(COL_TEXT, callback_url),  MV(COL_NUM, created_at),
    MV(COL_NUM, expires_at),  MV(COL_NUM, updated_at),     MV(COL_NUM, cost),
    MV(COL_NUM, sms_only_cost), MV(COL_NUM, delivered_twice), MV(COL_NUM, done),
    MV(COL_TEXT, campaign),
};

/* An attempt's columns as pg_msg_get reads them into its view (its id, the
   last, only tells whether there is one). */
#define ATT_NCOLS 13
static const struct col_at att_cols[ATT_NCOLS] = {
    AV(COL_TEXT, channel),   AV(COL_TEXT, route),   AV(COL_TEXT, status),
    AV(COL_TEXT, provider_id), AV(COL_NUM, segments), AV(COL_TEXT, error),
    AV(COL_NUM, created_at), AV(COL_NUM, sent_at),  AV(COL_NUM, delivered_at),
    AV(COL_NUM, read_at),    AV(COL_NUM, step),     AV(COL_NUM, cost),
    AV(COL_NUM, price),
};

/* Row row of r, MSG_COLS from column c0 on, into v. */
static void msg_row(const PGresult *r, int row, int c0, struct store_msg_view *v) {
  memset(v, 0, sizeof *v);
  row_into(r, row, c0, msg_cols, MSG_NCOLS, v);
}

int pg_msg_get(struct store *s, void *rd, int64_t account_id, const char *public_id,
               struct store_msg_view *out) {
  (void)s;
  struct pg_params p = {0};
  pg_p_text(&p, public_id);
  pg_p_int(&p, account_id);
  pg_p_int(&p, STORE_MAX_ATTEMPTS);
  int rc;
  /* One statement, so one snapshot: the message as its attempts are (two
     reads could fall either side of a commit that moves both). */
  PGresult *r = pg_read(rd,
                        "SELECT m.*,a.* FROM (SELECT " MSG_COLS ",decisions FROM messages"
                        " WHERE public_id=$1 AND account_id=$2::bigint) m"
                        " LEFT JOIN LATERAL (SELECT channel,route,status," PG_ATT_PROVIDER_ID ","
                        "segments,"
                        "error,created_at,sent_at,delivered_at,read_at,step,cost,"
                        "COALESCE(price,-1),id FROM attempts WHERE message_id=m.id"
                        " ORDER BY id LIMIT $3::int) a ON true ORDER BY a.id",
                        &p, &rc);
  if (r == NULL) return KK_ESTORE;
  if (PQntuples(r) == 0) {
    PQclear(r);
    return KK_ENOENT;
  }
  msg_row(r, 0, 0, out);
  pg_copy(r, 0, 19, out->decisions, sizeof out->decisions);
  enum { A = MSG_NCOLS + 1 };   /* the attempt's first column */
  for (int i = 0; i < PQntuples(r) && out->nattempts < STORE_MAX_ATTEMPTS; i++) {
    if (PQgetisnull(r, i, A + ATT_NCOLS)) break;   /* no attempt yet */
    row_into(r, i, A, att_cols, ATT_NCOLS, &out->attempts[out->nattempts++]);
  }
  PQclear(r);
  return 0;
}

/* ---- listings of messages ------------------------------------------------------ */

/*
 * A listing examines rows newest first over one index (as SQLite's
 * MSG_SCAN_*): the window of at most $3 of them is read in order and the
 * rows that meet the other conditions are returned, at most $4, the scan
 * stopping there (a page full, it does not read the rest of the window).
 * The phone's index is across accounts: other accounts' rows count as
 * examined.
 *   $1 account  $2 before id  $3 rows examined at most  $4 rows returned at most
 *   $5 the phone or campaign of the index  $6 status  $7 campaign
 *   $8 created from  $9 created before (0: open)
 * When the page is not full, the last row of a full window (its id, from
 * the index alone) is where the next page goes on: EDGE_SQL, with $4 the
 * phone or campaign.
 */
#define WIN_ACC(a, e) "account_id=" a "::bigint AND " e "::text IS NULL"
#define WIN_TO(a, e) a "::bigint IS NOT NULL AND to_number=" e
#define WIN_CAMP(a, e) "account_id=" a "::bigint AND campaign=" e

#define LIST_SQL(window)                                                         \
  "SELECT * FROM (SELECT " MSG_COLS ",body,account_id AS acc FROM messages"      \
  " WHERE " window " AND id<$2::bigint ORDER BY id DESC LIMIT $3::int) w"        \
  " WHERE acc=$1::bigint AND ($6::text IS NULL OR status=$6)"                    \
  " AND ($7::text IS NULL OR campaign=$7)"                                       \
  " AND created_at>=$8::bigint AND ($9::bigint<=0 OR created_at<$9::bigint)"     \
  " ORDER BY id DESC LIMIT $4::int"
#define EDGE_SQL(window)                                                         \
  "SELECT id FROM messages WHERE " window " AND id<$2::bigint"                   \
  " ORDER BY id DESC OFFSET $3::int-1 LIMIT 1"

/* By index: the account's, the phone's (messages_to), the campaign's. */
static const char *const list_sql[] = {
    LIST_SQL(WIN_ACC("$1", "$5")),
    LIST_SQL(WIN_TO("$1", "$5")),
    LIST_SQL(WIN_CAMP("$1", "$5")),
};
static const char *const edge_sql[] = {
    EDGE_SQL(WIN_ACC("$1", "$4")),
    EDGE_SQL(WIN_TO("$1", "$4")),
    EDGE_SQL(WIN_CAMP("$1", "$4")),
};

/* The id of the last row of the window when it holds max_examine rows, 0
   when it holds fewer; -1 when it cannot be read. */
static int64_t window_edge(void *rd, int which, int64_t account_id, int64_t before,
                           int max_examine, const char *eq) {
  struct pg_params p = {0};
  pg_p_int(&p, account_id);
  pg_p_int(&p, before);
  pg_p_int(&p, max_examine);
  pg_p_text(&p, eq);
  int rc;
  PGresult *r = pg_read(rd, edge_sql[which], &p, &rc);
  if (r == NULL) return -1;
  int64_t id = PQntuples(r) > 0 ? pg_int(r, 0, 0) : 0;
  PQclear(r);
  return id;
}

int pg_msg_list(struct store *s, void *rd, int64_t account_id, const struct store_msg_filter *f,
                struct store_msg_view *out, int *n, int64_t *next_cursor) {
  (void)s;
  int which = f->phone ? 1 : f->campaign ? 2 : 0;
  const char *eq = which == 1 ? f->phone : which == 2 ? f->campaign : NULL;
  int max_examine = f->max_examine > 0 ? f->max_examine : STORE_LIST_EXAMINE;
  int limit = f->limit > 0 ? f->limit : 0;
  int64_t before = f->before_id > 0 ? f->before_id : INT64_MAX;
  struct pg_params p = {0};
  pg_p_int(&p, account_id);
  pg_p_int(&p, before);
  pg_p_int(&p, max_examine);
  pg_p_int(&p, (int64_t)limit + 1);
  pg_p_text(&p, eq);
  pg_p_text(&p, f->status);
  pg_p_text(&p, f->campaign);
  pg_p_int(&p, f->from);
  pg_p_int(&p, f->to);
  *n = 0;
  *next_cursor = 0;
  int rc;
  PGresult *r = pg_read(rd, list_sql[which], &p, &rc);
  if (r == NULL) return KK_ESTORE;
  int matched = PQntuples(r), k = 0;
  int64_t cursor = 0;
  if (matched > limit) {
    cursor = limit > 0 ? pg_int(r, limit - 1, 0) : 0;   /* a page full, and more beyond it */
  } else {
    /* enough rows looked at: the rest is the next page's */
    cursor = window_edge(rd, which, account_id, before, max_examine, eq);
    if (cursor < 0) {
      PQclear(r);
      return KK_ESTORE;
    }
  }
  for (; k < matched && k < limit; k++) {
    msg_row(r, k, 0, &out[k]);
    if (f->with_text) out[k].text = kk_xstrdup(PQgetvalue(r, k, MSG_NCOLS));
  }
  PQclear(r);
  *n = k;
  *next_cursor = cursor;
  return 0;
}

/* ---- replies ---------------------------------------------------------------------- */

/* Newest first over inbound_account, inbound_account_channel or
   inbound_account_from, as SQLite's REPLY_LIST*: $1 account, $2 before id,
   $3 rows at most, $4 channel (NULL: any), $5 the person's phone. */
#define REPLY_SQL(cond)                                                          \
  "SELECT i.id,i.channel,i.from_number,i.to_addr,i.route,i.body,i.at,"           \
  "m.public_id,i.user_id,i.attributed_by FROM inbound i"                         \
  " LEFT JOIN messages m ON m.id=i.message_id"                                   \
  " WHERE i.account_id=$1::bigint AND " cond " AND i.id<$2::bigint"              \
  " ORDER BY i.id DESC LIMIT $3::int"

static const char *const reply_sql[] = {
    REPLY_SQL("$4::text IS NULL AND $5::text IS NULL"),
    REPLY_SQL("i.channel=$4 AND $5::text IS NULL"),
    REPLY_SQL("i.from_number=$5 AND ($4::text IS NULL OR i.channel=$4)"),
};

int pg_reply_list(struct store *s, void *rd, int64_t account_id,
                  const struct store_reply_filter *f, struct store_reply_view *out, int *n,
                  int64_t *next_cursor) {
  (void)s;
  int which = f->from ? 2 : f->channel ? 1 : 0;
  int limit = f->limit > 0 ? f->limit : 0;
  struct pg_params p = {0};
  pg_p_int(&p, account_id);
  pg_p_int(&p, f->before_id > 0 ? f->before_id : INT64_MAX);
  pg_p_int(&p, (int64_t)limit + 1);
  pg_p_text(&p, f->channel);
  pg_p_text(&p, f->from);
  *n = 0;
  *next_cursor = 0;
  int rc;
  PGresult *r = pg_read(rd, reply_sql[which], &p, &rc);
  if (r == NULL) return KK_ESTORE;
  int k = 0;
  for (int i = 0; i < PQntuples(r); i++) {
    if (k == limit) {
      *next_cursor = k > 0 ? out[k - 1].id : 0;
      break;
    }
    struct store_reply_view *v = &out[k++];
    memset(v, 0, sizeof *v);
    v->id = pg_int(r, i, 0);
    pg_copy(r, i, 1, v->channel, sizeof v->channel);
    pg_copy(r, i, 2, v->from, sizeof v->from);
    pg_copy(r, i, 3, v->to, sizeof v->to);
    pg_copy(r, i, 4, v->route, sizeof v->route);
    v->text = kk_xstrdup(PQgetvalue(r, i, 5));
    v->at = pg_int(r, i, 6);
    pg_copy(r, i, 7, v->in_reply_to, sizeof v->in_reply_to);
    pg_copy(r, i, 8, v->user, sizeof v->user);
    pg_copy(r, i, 9, v->attributed_by, sizeof v->attributed_by);
  }
  *n = k;
  PQclear(r);
  return 0;
}
