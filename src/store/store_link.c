/*
 * store_link.c - tracked links, clicks, conversions and their counters
 * (store_link.h), in SQL both backends speak (store_backend.sql).
 */
#include "store/store_link.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/kk_err.h"
#include "core/kk_mem.h"
#include "store/store_int.h"

/* ---- writes (writer thread) ------------------------------------------------------ */

int store_links_insert(struct store *s, const struct store_msg_new *msgs, int n) {
  for (int i = 0; i < n; i++) {
    const struct store_msg_new *m = &msgs[i];
    if (m->nlinks == 0 || m->rc || m->duplicate || m->mismatch || m->no_balance) continue;
    for (int k = 0; k < m->nlinks; k++) {
      const struct store_link_new *l = &m->links[k];
      /* a code already taken (as likely as guessing one) keeps its link */
      int rc = STORE_SQL(s, NULL,
                         "INSERT INTO link_codes(code,account_id,campaign,variant,phone,message,"
                         "channel,target,created_at) VALUES(?,?,?,?,?,?,?,?,?)"
                         " ON CONFLICT(code) DO NOTHING",
                         NULL, NULL, SQL_T(l->code), SQL_I(m->account_id),
                         SQL_T(m->campaign ? m->campaign : ""), SQL_I(m->link_variant),
                         SQL_T(m->to ? m->to : ""), SQL_T(m->public_id), SQL_T(l->channel),
                         SQL_T(l->target), SQL_I(m->created_at));
      if (rc) return rc;
    }
  }
  return 0;
}

/* What moves a campaign's counters of one channel and variant. */
struct moved {
  int64_t clicked, unique, previews, converted, value;
};

/* Moves a campaign's counters of (channel, variant). */
static int count(struct store *s, int64_t account_id, const char *campaign, const char *channel,
                 int64_t variant, const struct moved *m) {
  return STORE_SQL(
      s, NULL,
      "INSERT INTO link_counts(account_id,campaign,channel,variant,clicked,clicked_unique,"
      "previews,converted,value) VALUES(?,?,?,?,?,?,?,?,?)"
      " ON CONFLICT(account_id,campaign,channel,variant) DO UPDATE SET"
      " clicked=link_counts.clicked+excluded.clicked,"
      " clicked_unique=link_counts.clicked_unique+excluded.clicked_unique,"
      " previews=link_counts.previews+excluded.previews,"
      " converted=link_counts.converted+excluded.converted,"
      " value=link_counts.value+excluded.value",
      NULL, NULL, SQL_I(account_id), SQL_T(campaign), SQL_T(channel), SQL_I(variant),
      SQL_I(m->clicked), SQL_I(m->unique), SQL_I(m->previews), SQL_I(m->converted),
      SQL_I(m->value));
}

struct clicked {
  int64_t clicks, account_id, variant;
  char campaign[STORE_CAMPAIGN_MAX + 1];
  char channel[20];
};

static int on_clicked(void *arg, const char *const *cols, int n) {
  struct clicked *c = arg;
  if (n < 5) return 1;
  c->clicks = store_col_num(cols[0]);
  c->account_id = store_col_num(cols[1]);
  store_col_copy(c->campaign, sizeof c->campaign, cols[2]);
  store_col_copy(c->channel, sizeof c->channel, cols[3]);
  c->variant = store_col_num(cols[4]);
  return 1;
}

struct clicks_data {
  struct store_click *clicks;   /* owned */
  int n;
};

static int clicks_exec(struct store *s, struct store_op *op) {
  struct clicks_data *d = op->data;
  for (int i = 0; i < d->n; i++) {
    const struct store_click *k = &d->clicks[i];
    struct clicked c = {0};
    int rc;
    if (k->preview)   /* the code's clicks stay as they are */
      rc = STORE_SQL_ONE(s, NULL,
                         "SELECT 0,account_id,campaign,channel,variant FROM link_codes WHERE code=?",
                         on_clicked, &c, SQL_T(k->code));
    else
      rc = STORE_SQL_ONE(s, NULL,
                         "UPDATE link_codes SET clicks=clicks+1,"
                         " first_click_at=COALESCE(first_click_at,?) WHERE code=?"
                         " RETURNING clicks,account_id,campaign,channel,variant",
                         on_clicked, &c, SQL_I(k->at), SQL_T(k->code));
    if (rc == KK_ENOENT) continue;   /* no such link */
    if (rc) return rc;
    rc = STORE_SQL(s, NULL, "INSERT INTO link_clicks(code,at,user_agent,preview) VALUES(?,?,?,?)",
                   NULL, NULL, SQL_T(k->code), SQL_I(k->at), SQL_T(k->ua[0] ? k->ua : NULL),
                   SQL_I(k->preview));
    struct moved m = {.clicked = !k->preview, .unique = !k->preview && c.clicks == 1,
                      .previews = k->preview};
    if (rc == 0) rc = count(s, c.account_id, c.campaign, c.channel, c.variant, &m);
    if (rc) return rc;
  }
  return 0;
}

struct clicks_op {
  struct clicks_data d;
  store_done_cb done;
  void *arg;
};

static void on_clicks_done(void *arg, int rc) {
  struct clicks_op *o = arg;
  free(o->d.clicks);
  if (o->done) o->done(o->arg, rc);
  free(o);
}

void store_clicks_write(struct store *s, struct store_click *clicks, int n, store_done_cb done,
                        void *arg) {
  struct clicks_op *o = kk_xcalloc(1, sizeof *o);   /* freed in on_clicks_done */
  o->d.clicks = clicks;
  o->d.n = n;
  o->done = done;
  o->arg = arg;
  /* clicks are counts, not messages: a failed batch is not tried again */
  struct store_op *op = store_atomic(store_op_new(clicks_exec, on_clicks_done, o, &o->d, 1));
  op->weight = 3 * n;
  store_submit(s, op);
}

static int on_id(void *arg, const char *const *cols, int n) {
  if (n > 0) *(int64_t *)arg = store_col_num(cols[0]);
  return 1;
}

static int conversion_exec(struct store *s, struct store_op *op) {
  struct store_conversion *c = op->data;
  int rc = STORE_SQL(s, NULL,
                     "INSERT INTO conversions(account_id,campaign,message,phone,channel,variant,"
                     "value,at) VALUES(?,?,?,?,?,?,?,?) RETURNING id",
                     on_id, &c->id, SQL_I(c->account_id), SQL_T(c->campaign), SQL_T(c->message),
                     SQL_T(c->phone), SQL_T(c->channel), SQL_I(c->variant), SQL_I(c->value),
                     SQL_I(c->at));
  if (rc) return rc;
  struct moved m = {.converted = 1, .value = c->value};
  return count(s, c->account_id, c->campaign, c->channel, c->variant, &m);
}

void store_conversion_write(struct store *s, struct store_conversion *c, store_done_cb done,
                            void *arg) {
  struct store_op *op = store_atomic(store_op_new(conversion_exec, done, arg, c, 1));
  op->weight = 2;
  store_submit(s, op);
}

/* ---- reads (pool) ---------------------------------------------------------------- */

struct link_job {
  char code[16];
  struct store_link *out;
};

static int on_link(void *arg, const char *const *cols, int n) {
  struct store_link *l = arg;
  if (n < 7) return 1;
  l->account_id = store_col_num(cols[0]);
  store_col_copy(l->campaign, sizeof l->campaign, cols[1]);
  l->variant = (int)store_col_num(cols[2]);
  store_col_copy(l->channel, sizeof l->channel, cols[3]);
  store_col_copy(l->phone, sizeof l->phone, cols[4]);
  store_col_copy(l->message, sizeof l->message, cols[5]);
  l->target = kk_xstrdup(cols[6] ? cols[6] : "");
  return 1;
}

static int link_read(struct store *s, void *rd, void *job) {
  struct link_job *j = job;
  return STORE_SQL_ONE(s, rd,
                       "SELECT account_id,campaign,variant,channel,phone,message,target"
                       " FROM link_codes WHERE code=?",
                       on_link, j->out, SQL_T(j->code));
}

void store_link_get_async(struct store *s, const char *code, struct store_link *out,
                          store_done_cb done, void *arg) {
  memset(out, 0, sizeof *out);
  struct link_job *j = kk_xcalloc(1, sizeof *j);   /* freed by the pool */
  store_col_copy(j->code, sizeof j->code, code);
  j->out = out;
  store_pool_run(s, link_read, j, done, arg);
}

struct conv_job {
  struct store_conv_find *f;
};

static int on_conv_msg(void *arg, const char *const *cols, int n) {
  struct store_conv_find *f = arg;
  if (n < 5) return 1;
  store_col_copy(f->message, sizeof f->message, cols[0]);
  store_col_copy(f->campaign, sizeof f->campaign, cols[1]);
  store_col_copy(f->phone, sizeof f->phone, cols[2]);
  store_col_copy(f->channel, sizeof f->channel, cols[3]);
  f->variant = cols[4] ? (int)strtol(cols[4], NULL, 10) : -1;   /* NULL: none */
  return 1;
}

static int conv_read(struct store *s, void *rd, void *job) {
  struct conv_job *j = job;
  struct store_conv_find *f = j->f;
  int rc;
  if (f->message[0])
    rc = STORE_SQL_ONE(s, rd,
                       "SELECT public_id,campaign,to_number,channel,variant FROM messages"
                       " WHERE public_id=? AND account_id=?",
                       on_conv_msg, f, SQL_T(f->message), SQL_I(f->account_id));
  else   /* the newest message of the campaign to that phone (messages_to) */
    rc = STORE_SQL_ONE(s, rd,
                       "SELECT public_id,campaign,to_number,channel,variant FROM messages WHERE"
                       " to_number=? AND account_id=? AND campaign=? ORDER BY id DESC LIMIT 1",
                       on_conv_msg, f, SQL_T(f->phone), SQL_I(f->account_id),
                       SQL_T(f->campaign));
  return rc;
}

void store_conv_find_async(struct store *s, struct store_conv_find *f, store_done_cb done,
                           void *arg) {
  f->variant = -1;
  f->channel[0] = '\0';
  struct conv_job *j = kk_xcalloc(1, sizeof *j);   /* freed by the pool */
  j->f = f;
  store_pool_run(s, conv_read, j, done, arg);
}

struct counts_job {
  int64_t account_id;
  char campaign[STORE_CAMPAIGN_MAX + 1];
  struct store_link_count *out;
  int *n;
};

static int on_counts(void *arg, const char *const *cols, int n) {
  struct counts_job *j = arg;
  if (n < 7 || *j->n >= STORE_LINK_COUNTS_MAX) return 1;
  struct store_link_count *c = &j->out[(*j->n)++];
  store_col_copy(c->channel, sizeof c->channel, cols[0]);
  c->variant = (int)store_col_num(cols[1]);
  c->clicked = store_col_num(cols[2]);
  c->clicked_unique = store_col_num(cols[3]);
  c->converted = store_col_num(cols[4]);
  c->value = store_col_num(cols[5]);
  c->previews = store_col_num(cols[6]);
  return 0;
}

static int counts_read(struct store *s, void *rd, void *job) {
  struct counts_job *j = job;
  return STORE_SQL(s, rd,
                   "SELECT channel,variant,clicked,clicked_unique,converted,value,previews FROM link_counts"
                   " WHERE account_id=? AND campaign=? ORDER BY channel,variant LIMIT ?",
                   on_counts, j, SQL_I(j->account_id), SQL_T(j->campaign),
                   SQL_I(STORE_LINK_COUNTS_MAX));
}

void store_link_counts_async(struct store *s, int64_t account_id, const char *campaign,
                             struct store_link_count *out, int *n, store_done_cb done,
                             void *arg) {
  struct counts_job *j = kk_xcalloc(1, sizeof *j);   /* freed by the pool */
  j->account_id = account_id;
  store_col_copy(j->campaign, sizeof j->campaign, campaign);
  j->out = out;
  j->n = n;
  *n = 0;
  store_pool_run(s, counts_read, j, done, arg);
}
