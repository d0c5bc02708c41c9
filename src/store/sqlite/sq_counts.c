/*
 * sq_counts.c - a campaign's figures (campaign_counts, sq_int.h) kept by the
 * writer instead of by triggers.
 *
 * SQLite's preupdate hook on the writer's connection sees each change of a
 * campaign's message (inserted, or its status, channel, cost, SMS-only cost
 * or second deliveries changed) and each change of a recipient's status (or
 * the recipient gone), with the row before and after. Each is noted in
 * memory: a key (account, campaign, variant, channel, status) and what it
 * adds there. Just before the transaction commits (sq_counts_flush) the
 * notes are summed per key and written, one upsert per key changed, so that
 * the figures commit with the states they count, as the triggers' did; an
 * operation's savepoint rolled back drops the notes taken since it, a
 * rollback drops them all. A campaign's transaction of some hundred changes
 * touches a few dozen keys: a few dozen upserts instead of one or two per
 * change. The recipients a campaign adds are counted by the write that adds
 * them (store_campaign.c), as before; a message's deletion (retention) was
 * not counted and is not. Only changes made through the writer's connection
 * are counted: a change by hand (the sqlite3 shell) leaves the figures as
 * they were.
 *
 * Writer thread only.
 */
#define SQLITE_ENABLE_PREUPDATE_HOOK 1
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/kk_err.h"
#include "core/kk_log.h"
#include "core/kk_mem.h"
#include "store/sqlite/sq_int.h"

#define LOGCTX "store"
#define KEYS_KEPT 256   /* keys remembered from one commit to the next */

/* The columns read, by name; their numbers found at sq_counts_start. */
enum { M_ACCOUNT, M_CAMPAIGN, M_VARIANT, M_CHANNEL, M_STATUS, M_COST, M_SMS_ONLY, M_TWICE, M_NCOLS };
static const char *const msg_cols[M_NCOLS] = {"account_id", "campaign", "variant", "channel",
                                              "status", "cost", "sms_only_cost",
                                              "delivered_twice"};
enum { R_ACCOUNT, R_CAMPAIGN, R_VARIANT, R_STATUS, R_NCOLS };
static const char *const rcpt_cols[R_NCOLS] = {"account_id", "campaign", "variant", "status"};

/* A key of campaign_counts: text is campaign, channel and status, each
   ended by its NUL (len bytes in all). */
struct sq_count_key {
  uint64_t h;
  int64_t account_id, variant;
  char *text;
  size_t len;
};

/* What one change adds at a key: n, cost, SMS-only cost, twice, twice_msgs. */
struct sq_count_note {
  int key;
  int64_t v[5];
};

static uint64_t fnv(uint64_t h, const void *p, size_t n) {
  const unsigned char *b = p;
  for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 1099511628211ULL;
  return h;
}

/* The number of the column called name in table (-1: none). */
static int col_of(sqlite3 *db, const char *table, const char *name) {
  char sql[128];
  snprintf(sql, sizeof sql, "SELECT * FROM %s LIMIT 0", table);
  sqlite3_stmt *st = NULL;
  int at = -1;
  if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) return -1;
  for (int i = 0; i < sqlite3_column_count(st) && at < 0; i++)
    if (strcmp(sqlite3_column_name(st, i), name) == 0) at = i;
  sqlite3_finalize(st);
  return at;
}

/* The value of column col before (old) or after the change; NULL when it
   cannot be read (then the transaction must not commit). */
static sqlite3_value *val(struct sq_counts *c, sqlite3 *db, int old, int col) {
  sqlite3_value *v = NULL;
  int rc = old ? sqlite3_preupdate_old(db, col, &v) : sqlite3_preupdate_new(db, col, &v);
  if (rc != SQLITE_OK || !v) {
    c->failed = 1;
    return NULL;
  }
  return v;
}

static int is_null(sqlite3_value *v) { return !v || sqlite3_value_type(v) == SQLITE_NULL; }
static int64_t int_or0(sqlite3_value *v) { return is_null(v) ? 0 : sqlite3_value_int64(v); }

/* SQL's IS: both NULL, or equal values of the same kind. */
static int same(sqlite3_value *a, sqlite3_value *b) {
  int ta = sqlite3_value_type(a), tb = sqlite3_value_type(b);
  if (ta != tb) return 0;
  switch (ta) {
  case SQLITE_NULL:
    return 1;
  case SQLITE_INTEGER:
    return sqlite3_value_int64(a) == sqlite3_value_int64(b);
  case SQLITE_FLOAT:
    return sqlite3_value_double(a) == sqlite3_value_double(b);
  default: {
    const void *pa = ta == SQLITE_TEXT ? (const void *)sqlite3_value_text(a) : sqlite3_value_blob(a);
    const void *pb = tb == SQLITE_TEXT ? (const void *)sqlite3_value_text(b) : sqlite3_value_blob(b);
    int na = sqlite3_value_bytes(a), nb = sqlite3_value_bytes(b);
    return na == nb && (na == 0 || memcmp(pa, pb, (size_t)na) == 0);
  }
  }
}

/* Appends the text of v (NULL: "") and its NUL to buf at *at; 0 when it
   does not fit. */
static int put_text(char *buf, size_t cap, size_t *at, const char *prefix, sqlite3_value *v) {
  const char *t = is_null(v) ? NULL : (const char *)sqlite3_value_text(v);
  size_t np = strlen(prefix), n = t ? (size_t)sqlite3_value_bytes(v) : 0;
  if (!t) t = "";
  if (*at + np + n + 1 > cap) return 0;
  memcpy(buf + *at, prefix, np);
  memcpy(buf + *at + np, t, n);
  buf[*at + np + n] = '\0';
  *at += np + n + 1;
  return 1;
}

/* The number of the key (made when new). */
static int key_of(struct sq_counts *c, int64_t account_id, int64_t variant, const char *text,
                  size_t len) {
  uint64_t h = fnv(fnv(fnv(14695981039346656037ULL, &account_id, sizeof account_id), &variant,
                       sizeof variant),
                   text, len);
  for (int i = 0; i < c->nkeys; i++) {
    const struct sq_count_key *k = &c->keys[i];
    if (k->h == h && k->account_id == account_id && k->variant == variant && k->len == len &&
        memcmp(k->text, text, len) == 0)
      return i;
  }
  if (c->nkeys == c->capkeys) {
    c->capkeys = c->capkeys ? c->capkeys * 2 : 64;
    c->keys = kk_xrealloc(c->keys, sizeof *c->keys * (size_t)c->capkeys);
  }
  struct sq_count_key *k = &c->keys[c->nkeys];
  k->h = h;
  k->account_id = account_id;
  k->variant = variant;
  k->text = kk_xmalloc(len);
  memcpy(k->text, text, len);
  k->len = len;
  return c->nkeys++;
}

/* A change at the key of the last note, taken since the operation's
   savepoint, goes into that note: a statement that changes many rows alike
   (a campaign's recipients all cancelled or deleted) takes one note, not
   one a row. */
static void note_add(struct sq_counts *c, int key, int64_t sign, const int64_t v[5]) {
  if (c->nnotes > c->mark && c->notes[c->nnotes - 1].key == key) {
    for (int i = 0; i < 5; i++) c->notes[c->nnotes - 1].v[i] += sign * v[i];
    return;
  }
  if (c->nnotes == c->capnotes) {
    c->capnotes = c->capnotes ? c->capnotes * 2 : 512;
    c->notes = kk_xrealloc(c->notes, sizeof *c->notes * (size_t)c->capnotes);
  }
  struct sq_count_note *x = &c->notes[c->nnotes++];
  x->key = key;
  for (int i = 0; i < 5; i++) x->v[i] = sign * v[i];
}

/* Notes what a row adds with sign at its key: the account, the variant, the
   campaign, the channel (NULL: '') and the status (with prefix). */
static void note_row(struct sq_counts *c, sqlite3_value *account, int64_t variant,
                     sqlite3_value *campaign, sqlite3_value *channel, const char *prefix,
                     sqlite3_value *status, int64_t sign, const int64_t add[5]) {
  char text[3 * 256];
  size_t len = 0;
  if (!put_text(text, sizeof text, &len, "", campaign) ||
      !put_text(text, sizeof text, &len, "", channel) ||
      !put_text(text, sizeof text, &len, prefix, status)) {
    c->failed = 1;
    return;
  }
  note_add(c, key_of(c, sqlite3_value_int64(account), variant, text, len), sign, add);
}

/* A message's row before (old) or after the change, counted with sign:
   campaign_counts_new's and campaign_counts_change's rows. */
static void msg_note(struct sq_counts *c, sqlite3 *db, int old, int64_t sign) {
  sqlite3_value *v[M_NCOLS];
  for (int i = 0; i < M_NCOLS; i++)
    if (!(v[i] = val(c, db, old, c->msg_col[i]))) return;
  int64_t twice = int_or0(v[M_TWICE]);
  int64_t add[5] = {1, int_or0(v[M_COST]), int_or0(v[M_SMS_ONLY]), twice, twice > 0};
  int64_t variant = is_null(v[M_VARIANT]) ? -1 : sqlite3_value_int64(v[M_VARIANT]);
  note_row(c, v[M_ACCOUNT], variant, v[M_CAMPAIGN], v[M_CHANNEL], "", v[M_STATUS], sign, add);
}

static void msg_change(struct sq_counts *c, sqlite3 *db, int op) {
  if (op == SQLITE_DELETE) return;
  sqlite3_value *camp = val(c, db, 0, c->msg_col[M_CAMPAIGN]);
  if (is_null(camp)) return;
  if (op == SQLITE_UPDATE) {
    static const int watched[] = {M_STATUS, M_CHANNEL, M_COST, M_SMS_ONLY, M_TWICE};
    int changed = 0;
    for (size_t i = 0; i < sizeof watched / sizeof watched[0] && !changed; i++) {
      sqlite3_value *a = val(c, db, 1, c->msg_col[watched[i]]);
      sqlite3_value *b = val(c, db, 0, c->msg_col[watched[i]]);
      if (!a || !b) return;
      changed = !same(a, b);
    }
    if (!changed) return;
    sqlite3_value *was = val(c, db, 1, c->msg_col[M_CAMPAIGN]);
    if (!was) return;
    if (!is_null(was)) msg_note(c, db, 1, -1);
  }
  msg_note(c, db, 0, 1);
}

/* A recipient's row, as status 'r:STATUS' on channel '': the rows of
   campaign_counts_rcpt_change and campaign_counts_rcpt_gone. */
static void rcpt_note(struct sq_counts *c, sqlite3 *db, int old, int64_t sign) {
  sqlite3_value *v[R_NCOLS];
  for (int i = 0; i < R_NCOLS; i++)
    if (!(v[i] = val(c, db, old, c->rcpt_col[i]))) return;
  static const int64_t one[5] = {1, 0, 0, 0, 0};
  note_row(c, v[R_ACCOUNT], sqlite3_value_int64(v[R_VARIANT]), v[R_CAMPAIGN], NULL, "r:",
           v[R_STATUS], sign, one);
}

static void rcpt_change(struct sq_counts *c, sqlite3 *db, int op) {
  if (op == SQLITE_INSERT) return;   /* counted by the write that adds them */
  if (op == SQLITE_UPDATE) {
    sqlite3_value *a = val(c, db, 1, c->rcpt_col[R_STATUS]);
    sqlite3_value *b = val(c, db, 0, c->rcpt_col[R_STATUS]);
    if (!a || !b || same(a, b)) return;
  }
  rcpt_note(c, db, 1, -1);
  if (op == SQLITE_UPDATE) rcpt_note(c, db, 0, 1);
}

static void on_change(void *arg, sqlite3 *db, int op, const char *dbname, const char *table,
                      sqlite3_int64 key1, sqlite3_int64 key2) {
  struct sq_counts *c = arg;
  (void)key1, (void)key2;
  if (strcmp(dbname, "main") != 0) return;
  if (table[0] == 'm' && strcmp(table, "messages") == 0)
    msg_change(c, db, op);
  else if (table[0] == 'c' && strcmp(table, "campaign_recipients") == 0)
    rcpt_change(c, db, op);
}

int sq_counts_start(struct sq_store *q) {
  struct sq_counts *c = &q->counts;
  memset(c, 0, sizeof *c);
  c->mark = 0;
  for (int i = 0; i < M_NCOLS; i++)
    if ((c->msg_col[i] = col_of(q->w.db, "messages", msg_cols[i])) < 0) return KK_ESTORE;
  for (int i = 0; i < R_NCOLS; i++)
    if ((c->rcpt_col[i] = col_of(q->w.db, "campaign_recipients", rcpt_cols[i])) < 0)
      return KK_ESTORE;
  sqlite3_preupdate_hook(q->w.db, on_change, c);
  c->hooked = 1;
  return 0;
}

void sq_counts_pause(struct sq_store *q) { sqlite3_preupdate_hook(q->w.db, NULL, NULL); }

void sq_counts_resume(struct sq_store *q) {
  if (q->counts.hooked) sqlite3_preupdate_hook(q->w.db, on_change, &q->counts);
}

static void keys_drop(struct sq_counts *c) {
  for (int i = 0; i < c->nkeys; i++) free(c->keys[i].text);
  c->nkeys = 0;
}

void sq_counts_stop(struct sq_store *q) {
  struct sq_counts *c = &q->counts;
  if (q->w.db) sqlite3_preupdate_hook(q->w.db, NULL, NULL);
  keys_drop(c);
  free(c->keys);
  free(c->notes);
  memset(c, 0, sizeof *c);
}

void sq_counts_mark(struct sq_store *q) { q->counts.mark = q->counts.nnotes; }

void sq_counts_undo(struct sq_store *q) {
  struct sq_counts *c = &q->counts;
  if (c->mark < c->nnotes) c->nnotes = c->mark;
}

void sq_counts_drop(struct sq_store *q) {
  struct sq_counts *c = &q->counts;
  c->nnotes = c->mark = 0;
  c->failed = 0;
  if (c->nkeys > KEYS_KEPT) keys_drop(c);
}

int sq_counts_flush(struct sq_store *q) {
  struct sq_counts *c = &q->counts;
  if (c->failed) {
    kk_error(LOGCTX, "a change of a campaign's figures could not be read");
    return KK_ESTORE;
  }
  if (c->nnotes == 0) return 0;
  int64_t(*sum)[5] = kk_xcalloc((size_t)c->nkeys, sizeof *sum);
  for (int i = 0; i < c->nnotes; i++)
    for (int j = 0; j < 5; j++) sum[c->notes[i].key][j] += c->notes[i].v[j];
  int rc = 0;
  sqlite3_stmt *st = sq_stmt(&q->w, ST_CAMP_COUNT_ADD);
  for (int i = 0; i < c->nkeys && rc == 0; i++) {
    if (!(sum[i][0] | sum[i][1] | sum[i][2] | sum[i][3] | sum[i][4])) continue;
    const struct sq_count_key *k = &c->keys[i];
    const char *camp = k->text, *chan = camp + strlen(camp) + 1, *status = chan + strlen(chan) + 1;
    sqlite3_bind_int64(st, 1, k->account_id);
    sqlite3_bind_text(st, 2, camp, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, k->variant);
    sqlite3_bind_text(st, 4, chan, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 5, status, -1, SQLITE_STATIC);
    for (int j = 0; j < 5; j++) sqlite3_bind_int64(st, 6 + j, sum[i][j]);
    rc = sq_step_done(&q->w, st);
    sqlite3_clear_bindings(st);
  }
  free(sum);
  if (rc == 0) sq_counts_drop(q);
  return rc;
}
