/*
 * store_campaign.c - campaigns and their recipients (store_campaign.h):
 * the writes (one operation kind, CAMPAIGN) and the reads on the pool, in
 * SQL both backends speak (store_backend.sql).
 */
#include "store/store_campaign.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/kk_err.h"
#include "core/kk_mem.h"
#include "store/store_int.h"

const char *const store_camp_rcpt_statuses[STORE_CAMP_NSTATUS] = {
    "planned", "created", "rejected", "cancelled", "expired"};

void store_camp_rcpt_free(struct store_camp_rcpt *r, int n) {
  for (int i = 0; i < n; i++) {
    free(r[i].vars);
    r[i].vars = NULL;
  }
}

void store_campaign_fini(struct store_campaign *c) {
  free(c->spec);
  c->spec = NULL;
}

static int one_text(void *arg, const char *const *cols, int n) {
  if (n > 0) store_col_copy(arg, 12, cols[0]);
  return 1;
}

/* The status of a campaign, into status: 0, KK_ENOENT (none of that
   name) or the store's error. */
static int camp_status_of(struct store *s, void *rd, int64_t account_id, const char *name,
                          char status[12]) {
  status[0] = '\0';
  return STORE_SQL_ONE(s, rd, "SELECT status FROM campaigns WHERE account_id=? AND name=?",
                       one_text, status, SQL_I(account_id), SQL_T(name));
}

/* ---- writes (writer thread) ----------------------------------------------------- */

static int status_of(struct store *s, struct store_camp_op *o) {
  int rc = camp_status_of(s, NULL, o->account_id, o->name, o->status);
  o->found = rc == 0;
  return rc == KK_ENOENT ? 0 : rc;
}

static int camp_put(struct store *s, struct store_camp_op *o) {
  int rc = status_of(s, o);
  if (rc) return rc;
  if (o->found && strcmp(o->status, "draft") != 0) return 0;
  if (o->found)
    rc = STORE_SQL(s, NULL,
                   "UPDATE campaigns SET spec=?, updated_at=? WHERE account_id=? AND name=?", NULL,
                   NULL, SQL_T(o->spec), SQL_I(o->at), SQL_I(o->account_id), SQL_T(o->name));
  else
    rc = STORE_SQL(s, NULL,
                   "INSERT INTO campaigns(account_id,name,spec,status,created_at,updated_at)"
                   " VALUES(?,?,?,'draft',?,?)",
                   NULL, NULL, SQL_I(o->account_id), SQL_T(o->name), SQL_T(o->spec), SQL_I(o->at),
                   SQL_I(o->at));
  if (rc == 0) {
    o->ok = 1;
    store_col_copy(o->status, sizeof o->status, "draft");
  }
  return rc;
}

static int camp_status(struct store *s, struct store_camp_op *o) {
  int rc = status_of(s, o);
  if (rc || !o->found) return rc;
  char cur[16];
  snprintf(cur, sizeof cur, ",%s,", o->status);
  if (strstr(o->from, cur) == NULL) return 0;
  if (strcmp(o->to, "done") == 0) {
    rc = STORE_SQL_ONE(s, NULL,
                       "SELECT 1 FROM campaign_recipients WHERE account_id=? AND campaign=?"
                       " AND status='planned' LIMIT 1",
                       NULL, NULL, SQL_I(o->account_id), SQL_T(o->name));
    if (rc != KK_ENOENT) return rc;   /* some are planned still: not done */
    rc = 0;
  }
  if (strcmp(o->to, "cancelled") == 0)
    rc = STORE_SQL(s, NULL,
                   "UPDATE campaign_recipients SET status='cancelled' WHERE account_id=?"
                   " AND campaign=? AND status='planned'",
                   NULL, NULL, SQL_I(o->account_id), SQL_T(o->name));
  if (rc == 0 && strcmp(o->to, "planning") == 0)
    rc = STORE_SQL(s, NULL, "DELETE FROM campaign_recipients WHERE account_id=? AND campaign=?",
                   NULL, NULL, SQL_I(o->account_id), SQL_T(o->name));
  if (rc) return rc;
  if (strcmp(o->to, "planning") == 0)
    rc = STORE_SQL(s, NULL,
                   "UPDATE campaigns SET status=?, updated_at=?, started_at=?, recipients=0,"
                   " finish_at=NULL, plan_after='', plan_slot=0, plan_gap=-1"
                   " WHERE account_id=? AND name=?",
                   NULL, NULL, SQL_T(o->to), SQL_I(o->at), SQL_I(o->at), SQL_I(o->account_id),
                   SQL_T(o->name));
  else
    rc = STORE_SQL(s, NULL,
                   "UPDATE campaigns SET status=?, updated_at=? WHERE account_id=? AND name=?",
                   NULL, NULL, SQL_T(o->to), SQL_I(o->at), SQL_I(o->account_id), SQL_T(o->name));
  if (rc == 0) {
    o->ok = 1;
    store_col_copy(o->status, sizeof o->status, o->to);
  }
  return rc;
}

/* The figures of rows added: one change per variant and status (not one
   per row), in the same transaction. */
static int add_counts(struct store *s, struct store_camp_op *o) {
  struct { int variant; const char *status; int64_t n; } k[32];
  int nk = 0;
  for (int i = 0; i < o->n; i++) {
    const struct store_camp_rcpt *r = &o->rows[i];
    int j = 0;
    while (j < nk && !(k[j].variant == r->variant && strcmp(k[j].status, r->status) == 0)) j++;
    if (j == nk) {
      if (nk == 32) return KK_EINVAL;
      k[nk].variant = r->variant;
      k[nk].status = r->status;
      k[nk++].n = 0;
    }
    k[j].n++;
  }
  for (int j = 0; j < nk; j++) {
    char status[24];
    snprintf(status, sizeof status, "r:%s", k[j].status);
    int rc = STORE_SQL(s, NULL,
                       "INSERT INTO campaign_counts VALUES(?,?,?,'',?,?,0,0,0,0)"
                       " ON CONFLICT(account_id,campaign,variant,channel,status)"
                       " DO UPDATE SET n=campaign_counts.n+excluded.n",
                       NULL, NULL, SQL_I(o->account_id), SQL_T(o->name), SQL_I(k[j].variant),
                       SQL_T(status), SQL_I(k[j].n));
    if (rc) return rc;
  }
  return 0;
}

/* The rows of o inserted, as many in one statement as the backend's
   arguments allow (at most ADD_PER). */
#define ADD_COLS 8
#define ADD_PER 100
static int add_rows(struct store *s, const struct store_camp_op *o) {
  static const char head[] =
      "INSERT INTO campaign_recipients(account_id,campaign,seq,phone,variant,planned_at,vars,"
      "status) VALUES";
  static const char tuple[] = "(?,?,?,?,?,?,?,?)";
  int per = s->be->sql_args_max / ADD_COLS;
  if (per < 1) per = 1;
  if (per > ADD_PER) per = ADD_PER;
  struct store_sql_arg a[ADD_PER * ADD_COLS];
  char sql[sizeof head + ADD_PER * sizeof tuple];
  int rc = 0, built = 0;
  for (int i = 0; rc == 0 && i < o->n; i += per) {
    int k = o->n - i < per ? o->n - i : per;
    if (k != built) {   /* the text for k rows (the same for every full statement) */
      size_t at = sizeof head - 1;
      memcpy(sql, head, at);
      for (int j = 0; j < k; j++) {
        if (j) sql[at++] = ',';
        memcpy(sql + at, tuple, sizeof tuple - 1);
        at += sizeof tuple - 1;
      }
      sql[at] = '\0';
      built = k;
    }
    for (int j = 0; j < k; j++) {
      const struct store_camp_rcpt *r = &o->rows[i + j];
      struct store_sql_arg *x = &a[j * ADD_COLS];
      x[0] = SQL_I(o->account_id);
      x[1] = SQL_T(o->name);
      x[2] = SQL_I(r->seq);
      x[3] = SQL_T(r->phone);
      x[4] = SQL_I(r->variant);
      x[5] = SQL_I(r->planned_at);
      x[6] = SQL_T(r->vars);
      x[7] = SQL_T(r->status);
    }
    rc = s->be->sql(s, NULL, sql, a, k * ADD_COLS, NULL, NULL);
  }
  return rc;
}

static int on_num(void *arg, const char *const *cols, int n) {
  if (n > 0) *(int64_t *)arg = store_col_num(cols[0]);
  return 1;
}

/* A batch of the planning: its rows and where the planning is after them,
   in one transaction (a restart goes on from there, none twice). */
static int camp_add(struct store *s, struct store_camp_op *o) {
  int rc = STORE_SQL_ONE(
      s, NULL,
      "UPDATE campaigns SET recipients=recipients+?, finish_at=CASE WHEN finish_at IS NULL"
      " OR finish_at<? THEN ? ELSE finish_at END, plan_after=?, plan_slot=?, plan_gap=?,"
      " status=?, updated_at=? WHERE account_id=? AND name=? AND status='planning'"
      " AND (lease_by IS NULL OR lease_by=?) RETURNING recipients",
      on_num, &o->recipients, SQL_I(o->n), SQL_I(o->finish_at), SQL_I(o->finish_at),
      SQL_T(o->plan_after), SQL_I(o->plan_slot), SQL_I(o->plan_gap),
      SQL_T(o->last ? "running" : "planning"), SQL_I(o->at), SQL_I(o->account_id),
      SQL_T(o->name), SQL_T(o->owner));
  if (rc == KK_ENOENT) return status_of(s, o);   /* no longer planning, or not ours: not ok */
  if (rc) return rc;
  rc = add_counts(s, o);
  if (rc == 0) rc = add_rows(s, o);
  if (rc) return rc;
  o->found = o->ok = 1;
  store_col_copy(o->status, sizeof o->status, o->last ? "running" : "planning");
  return 0;
}

/* Each row's outcome, from planned. A row whose message was made (created
   with its message) is created even when a cancel marked it cancelled
   meanwhile: the recipient has the message (its slice was given to the
   accept path before the cancel), and the figures count each recipient
   once, under what became of it (the counts follow any change of status). */
static int camp_set(struct store *s, struct store_camp_op *o) {
#define SET_ROW                                                                       \
  "UPDATE campaign_recipients SET status=?, message=?, reason=?, planned_at=?, tries=?" \
  " WHERE account_id=? AND campaign=? AND seq=? AND status"
  static const char only[] = SET_ROW "='planned'";
  static const char made[] = SET_ROW " IN ('planned','cancelled')";
#undef SET_ROW
  for (int i = 0; i < o->n; i++) {
    const struct store_camp_rcpt *r = &o->rows[i];
    int created = strcmp(r->status, "created") == 0 && r->message[0];
    int rc = STORE_SQL(s, NULL, created ? made : only, NULL, NULL, SQL_T(r->status),
                       SQL_T(r->message[0] ? r->message : NULL),
                       SQL_T(r->reason[0] ? r->reason : NULL), SQL_I(r->planned_at),
                       SQL_I(r->tries), SQL_I(o->account_id), SQL_T(o->name), SQL_I(r->seq));
    if (rc) return rc;
  }
  o->ok = 1;
  return 0;
}

static int camp_lease(struct store *s, struct store_camp_op *o) {
  int rc = STORE_SQL_ONE(s, NULL,
                         "UPDATE campaigns SET lease_by=?, lease_until=? WHERE account_id=?"
                         " AND name=? AND status IN ('planning','running')"
                         " AND (lease_by IS NULL OR lease_by=? OR lease_until<?)"
                         " RETURNING status",
                         NULL, NULL, SQL_T(o->owner), SQL_I(o->lease_until),
                         SQL_I(o->account_id), SQL_T(o->name), SQL_T(o->owner), SQL_I(o->at));
  o->ok = rc == 0;
  o->found = o->ok;
  return rc == KK_ENOENT ? 0 : rc;
}

int store_campaign_exec(struct store *s, struct store_op *op) {
  struct store_camp_op *o = op->data;
  o->found = o->ok = 0;
  switch (o->kind) {
  case STORE_CAMP_PUT:
    return camp_put(s, o);
  case STORE_CAMP_STATUS:
    return camp_status(s, o);
  case STORE_CAMP_ADD:
    return camp_add(s, o);
  case STORE_CAMP_SET:
    return camp_set(s, o);
  case STORE_CAMP_EXPIRE:
    o->ok = 1;
    return STORE_SQL(s, NULL,
                     "UPDATE campaign_recipients SET status='expired' WHERE account_id=?"
                     " AND campaign=? AND status='planned'",
                     NULL, NULL, SQL_I(o->account_id), SQL_T(o->name));
  case STORE_CAMP_LEASE:
    return camp_lease(s, o);
  }
  return KK_EINVAL;
}

void store_campaign_write(struct store *s, struct store_camp_op *o, store_done_cb done,
                          void *arg) {
  if (o->at == 0) o->at = store_now_ms();
  struct store_op *op = store_op_of(s, STORE_OP_CAMPAIGN, done, arg, o, 1);
  op->weight = o->n > 0 ? o->n : 2;
  if (o->kind == STORE_CAMP_ADD) store_atomic(op);   /* a batch of the plan: all or none */
  store_submit(s, op);
}

/* ---- reads (pool) ---------------------------------------------------------------- */

#define CAMP_COLS                                                              \
  "name,status,spec,recipients,created_at,updated_at,started_at,finish_at,plan_after," \
  "plan_slot,plan_gap"

static void camp_row(struct store_campaign *c, const char *const *cols, int with_spec) {
  store_col_copy(c->name, sizeof c->name, cols[0]);
  store_col_copy(c->status, sizeof c->status, cols[1]);
  c->spec = with_spec ? store_col_dup(cols[2]) : NULL;
  c->recipients = store_col_num(cols[3]);
  c->created_at = store_col_num(cols[4]);
  c->updated_at = store_col_num(cols[5]);
  c->started_at = store_col_num(cols[6]);
  c->finish_at = store_col_num(cols[7]);
  store_col_copy(c->plan_after, sizeof c->plan_after, cols[8]);
  c->plan_slot = store_col_num(cols[9]);
  c->plan_gap = store_col_num(cols[10]);
}

/* What a read of one campaign's rows begins with: the campaign. */
struct camp_key {
  int64_t account_id;
  char name[STORE_CAMPAIGN_MAX + 1];
};

/* A read's job of size bytes (zeroed, freed by the pool), beginning with
   the campaign's key; filled, it goes to store_pool_run. */
static void *camp_job(size_t size, int64_t account_id, const char *name) {
  struct camp_key *k = kk_xcalloc(1, size);
  k->account_id = account_id;
  store_col_copy(k->name, sizeof k->name, name);
  return k;
}

struct get_job {
  struct camp_key k;
  struct store_campaign *out;
};

static int on_camp(void *arg, const char *const *cols, int n) {
  if (n >= 11) camp_row(arg, cols, 1);
  return 1;
}

static int get_read(struct store *s, void *rd, void *job) {
  struct get_job *j = job;
  return STORE_SQL_ONE(s, rd, "SELECT " CAMP_COLS " FROM campaigns WHERE account_id=? AND name=?",
                       on_camp, j->out, SQL_I(j->k.account_id), SQL_T(j->k.name));
}

void store_campaign_get_async(struct store *s, int64_t account_id, const char *name,
                              struct store_campaign *out, store_done_cb done, void *arg) {
  memset(out, 0, sizeof *out);
  struct get_job *j = camp_job(sizeof *j, account_id, name);
  j->out = out;
  store_pool_run(s, get_read, j, done, arg);
}

struct list_job {
  int64_t account_id;
  char after[STORE_CAMPAIGN_MAX + 1];
  int limit;
  struct store_campaign *out;
  int *n;
  char *next;
};

static int on_list(void *arg, const char *const *cols, int n) {
  struct list_job *j = arg;
  if (n < 11) return 1;
  if (*j->n == j->limit) {
    store_col_copy(j->next, STORE_CAMPAIGN_MAX + 1, j->out[*j->n - 1].name);
    return 1;
  }
  camp_row(&j->out[(*j->n)++], cols, 0);
  return 0;
}

static int list_read(struct store *s, void *rd, void *job) {
  struct list_job *j = job;
  return STORE_SQL(s, rd,
                   "SELECT " CAMP_COLS " FROM campaigns WHERE account_id=? AND name>?"
                   " ORDER BY name LIMIT ?",
                   on_list, j, SQL_I(j->account_id), SQL_T(j->after), SQL_I(j->limit + 1));
}

void store_campaigns_list_async(struct store *s, int64_t account_id, const char *after,
                                int limit, struct store_campaign *out, int *n, char *next,
                                store_done_cb done, void *arg) {
  struct list_job *j = kk_xcalloc(1, sizeof *j);   /* freed by the pool */
  j->account_id = account_id;
  store_col_copy(j->after, sizeof j->after, after);
  j->limit = limit;
  j->out = out;
  j->n = n;
  j->next = next;
  *n = 0;
  next[0] = '\0';
  store_pool_run(s, list_read, j, done, arg);
}

struct rcpt_job {
  struct camp_key k;
  char status[12];
  int64_t after, now;
  int limit, with_vars;
  struct store_camp_rcpt *out;
  int *n;
  int64_t *next;
};

static int on_rcpt(void *arg, const char *const *cols, int n) {
  struct rcpt_job *j = arg;
  if (n < 9) return 1;
  if (*j->n == j->limit) {
    if (j->next) *j->next = store_col_num(cols[3]);
    return 1;
  }
  struct store_camp_rcpt *r = &j->out[(*j->n)++];
  memset(r, 0, sizeof *r);
  r->seq = store_col_num(cols[0]);
  store_col_copy(r->phone, sizeof r->phone, cols[1]);
  r->variant = (int)store_col_num(cols[2]);
  r->planned_at = store_col_num(cols[3]);
  store_col_copy(r->status, sizeof r->status, cols[4]);
  store_col_copy(r->message, sizeof r->message, cols[5]);
  store_col_copy(r->reason, sizeof r->reason, cols[6]);
  r->vars = j->with_vars ? store_col_dup(cols[7]) : NULL;
  r->tries = (int)store_col_num(cols[8]);
  return 0;
}

#define RCPT_COLS "seq,phone,variant,planned_at,status,message,reason,vars,tries"

static int rcpts_read(struct store *s, void *rd, void *job) {
  struct rcpt_job *j = job;
  int rc;
  if (j->status[0])
    rc = STORE_SQL(s, rd,
                   "SELECT " RCPT_COLS
                   " FROM campaign_recipients WHERE account_id=? AND campaign=?"
                   " AND status=? AND seq>? ORDER BY seq LIMIT ?",
                   on_rcpt, j, SQL_I(j->k.account_id), SQL_T(j->k.name), SQL_T(j->status),
                   SQL_I(j->after), SQL_I(j->limit));
  else
    rc = STORE_SQL(s, rd,
                   "SELECT " RCPT_COLS
                   " FROM campaign_recipients WHERE account_id=? AND campaign=?"
                   " AND seq>? ORDER BY seq LIMIT ?",
                   on_rcpt, j, SQL_I(j->k.account_id), SQL_T(j->k.name), SQL_I(j->after),
                   SQL_I(j->limit));
  if (rc != 0 || *j->n > 0) return rc;
  /* No row: a campaign without them, or none of that name (KK_ENOENT). */
  char status[12];
  return camp_status_of(s, rd, j->k.account_id, j->k.name, status);
}

void store_camp_rcpts_async(struct store *s, int64_t account_id, const char *name,
                            const char *status, int64_t after, int limit,
                            struct store_camp_rcpt *out, int *n, store_done_cb done, void *arg) {
  struct rcpt_job *j = camp_job(sizeof *j, account_id, name);
  store_col_copy(j->status, sizeof j->status, status);
  j->after = after;
  j->limit = limit;
  j->out = out;
  j->n = n;
  *n = 0;
  store_pool_run(s, rcpts_read, j, done, arg);
}

static int due_read(struct store *s, void *rd, void *job) {
  struct rcpt_job *j = job;
  /* one more than asked: the next one's time */
  int rc = STORE_SQL(s, rd,
                     "SELECT " RCPT_COLS
                     " FROM campaign_recipients WHERE account_id=? AND campaign=?"
                     " AND status='planned' ORDER BY planned_at,seq LIMIT ?",
                     on_rcpt, j, SQL_I(j->k.account_id), SQL_T(j->k.name), SQL_I(j->limit + 1));
  if (rc) return rc;
  /* only those due now */
  int k = 0;
  for (int i = 0; i < *j->n; i++) {
    if (j->out[i].planned_at <= j->now) {
      j->out[k++] = j->out[i];
    } else {
      if (*j->next == 0 || j->out[i].planned_at < *j->next) *j->next = j->out[i].planned_at;
      free(j->out[i].vars);
    }
  }
  *j->n = k;
  return 0;
}

void store_camp_due_async(struct store *s, int64_t account_id, const char *name, int64_t now,
                          int limit, struct store_camp_rcpt *out, int *n, int64_t *next,
                          store_done_cb done, void *arg) {
  struct rcpt_job *j = camp_job(sizeof *j, account_id, name);
  j->now = now;
  j->limit = limit;
  j->with_vars = 1;
  j->out = out;
  j->n = n;
  j->next = next;
  *n = 0;
  *next = 0;
  store_pool_run(s, due_read, j, done, arg);
}

struct active_job {
  struct store_camp_ref *out;
  int max;
  int *n;
};

static int on_active(void *arg, const char *const *cols, int n) {
  struct active_job *j = arg;
  if (n < 3 || *j->n == j->max) return 1;
  struct store_camp_ref *r = &j->out[(*j->n)++];
  r->account_id = store_col_num(cols[0]);
  store_col_copy(r->name, sizeof r->name, cols[1]);
  store_col_copy(r->status, sizeof r->status, cols[2]);
  return 0;
}

static int active_read(struct store *s, void *rd, void *job) {
  struct active_job *j = job;
  return STORE_SQL(
      s, rd,
      "SELECT account_id,name,status FROM campaigns WHERE status IN ('planning','running')"
      " ORDER BY updated_at LIMIT ?",
      on_active, j, SQL_I(j->max));
}

void store_camps_active_async(struct store *s, struct store_camp_ref *out, int max, int *n,
                              store_done_cb done, void *arg) {
  struct active_job *j = kk_xcalloc(1, sizeof *j);   /* freed by the pool */
  j->out = out;
  j->max = max;
  j->n = n;
  *n = 0;
  store_pool_run(s, active_read, j, done, arg);
}

struct counts_job {
  struct camp_key k;
  struct store_camp_count *out;
  int max;
  int *n;
  char **spec;
};

static int on_counts(void *arg, const char *const *cols, int n) {
  struct counts_job *j = arg;
  if (n < 8) return 1;
  if (*j->n == j->max) return 1;
  struct store_camp_count *c = &j->out[(*j->n)++];
  memset(c, 0, sizeof *c);
  c->variant = (int)store_col_num(cols[0]);
  store_col_copy(c->channel, sizeof c->channel, cols[1]);
  store_col_copy(c->status, sizeof c->status, cols[2]);
  c->n = store_col_num(cols[3]);
  c->cost = store_col_num(cols[4]);
  c->sms_only_cost = store_col_num(cols[5]);
  c->twice = store_col_num(cols[6]);
  c->twice_msgs = store_col_num(cols[7]);
  return 0;
}

static int on_spec(void *arg, const char *const *cols, int n) {
  char **spec = arg;
  if (n > 0 && cols[0] && *spec == NULL) *spec = kk_xstrdup(cols[0]);
  return 1;
}

static int counts_read(struct store *s, void *rd, void *job) {
  struct counts_job *j = job;
  int rc = STORE_SQL(s, rd, "SELECT spec FROM campaigns WHERE account_id=? AND name=?", on_spec,
                     j->spec, SQL_I(j->k.account_id), SQL_T(j->k.name));
  if (rc == 0)
    rc = STORE_SQL(s, rd,
                   "SELECT variant,channel,status,SUM(n),SUM(cost),SUM(sms_only_cost),"
                   "SUM(twice),SUM(twice_msgs) FROM campaign_figures WHERE account_id=?"
                   " AND campaign=? GROUP BY variant,channel,status HAVING SUM(n)<>0"
                   " ORDER BY variant,channel,status",
                   on_counts, j, SQL_I(j->k.account_id), SQL_T(j->k.name));
  if (rc == 0 && *j->n == 0 && *j->spec == NULL) rc = KK_ENOENT;
  return rc;
}

void store_camp_rcpt_counts(const struct store_camp_count *rows, int n, int64_t *count) {
  for (int i = 0; i < STORE_CAMP_NSTATUS; i++) count[i] = 0;
  for (int k = 0; k < n; k++) {
    if (strncmp(rows[k].status, "r:", 2) != 0) continue;
    for (int i = 0; i < STORE_CAMP_NSTATUS; i++)
      if (strcmp(rows[k].status + 2, store_camp_rcpt_statuses[i]) == 0) count[i] += rows[k].n;
  }
}

void store_camp_counts_async(struct store *s, int64_t account_id, const char *name,
                             struct store_camp_count *out, int max, int *n, char **spec,
                             store_done_cb done, void *arg) {
  struct counts_job *j = camp_job(sizeof *j, account_id, name);
  j->out = out;
  j->max = max;
  j->n = n;
  j->spec = spec;
  *n = 0;
  *spec = NULL;
  store_pool_run(s, counts_read, j, done, arg);
}

struct export_job {
  struct camp_key k;
  store_camp_export_fn fn;
  void *fn_arg;
  int64_t after;
  int n, rc;
};

static int on_export(void *arg, const char *const *cols, int n) {
  struct export_job *j = arg;
  if (n < 16) return 1;
  struct store_camp_export_row x;
  memset(&x, 0, sizeof x);
  x.r.seq = store_col_num(cols[0]);
  store_col_copy(x.r.phone, sizeof x.r.phone, cols[1]);
  x.r.variant = (int)store_col_num(cols[2]);
  x.r.planned_at = store_col_num(cols[3]);
  store_col_copy(x.r.status, sizeof x.r.status, cols[4]);
  store_col_copy(x.r.message, sizeof x.r.message, cols[5]);
  store_col_copy(x.r.reason, sizeof x.r.reason, cols[6]);
  x.r.vars = (char *)cols[7];
  x.r.tries = (int)store_col_num(cols[8]);
  store_col_copy(x.msg_status, sizeof x.msg_status, cols[9]);
  store_col_copy(x.channel, sizeof x.channel, cols[10]);
  x.cost = store_col_num(cols[11]);
  x.created_at = store_col_num(cols[12]);
  x.updated_at = store_col_num(cols[13]);
  x.done = store_col_num(cols[14]) != 0;
  x.clicks = store_col_num(cols[15]);
  j->after = x.r.seq;
  j->n++;
  j->rc = j->fn(j->fn_arg, &x);
  return j->rc != 0;
}

static int export_read(struct store *s, void *rd, void *job) {
  struct export_job *j = job;
  char status[12];
  int rc = camp_status_of(s, rd, j->k.account_id, j->k.name, status);
  if (rc) return rc;
  do {
    j->n = 0;
    rc = STORE_SQL(s, rd,
                   "SELECT r.seq,r.phone,r.variant,r.planned_at,r.status,r.message,r.reason,r.vars,"
                   "r.tries,m.status,m.channel,m.cost,m.created_at,m.updated_at,m.done,"
                   "(SELECT COALESCE(SUM(l.clicks),0) FROM link_codes l WHERE l.message=r.message"
                   " AND l.account_id=r.account_id)"
                   " FROM campaign_recipients r LEFT JOIN messages m ON m.public_id=r.message"
                   " AND m.account_id=r.account_id WHERE r.account_id=? AND r.campaign=?"
                   " AND r.seq>? ORDER BY r.seq LIMIT ?",
                   on_export, j, SQL_I(j->k.account_id), SQL_T(j->k.name), SQL_I(j->after),
                   SQL_I(STORE_CAMP_BATCH));
    if (rc == 0) rc = j->rc;
  } while (rc == 0 && j->n == STORE_CAMP_BATCH);
  return rc;
}

void store_camp_export_async(struct store *s, int64_t account_id, const char *name,
                             store_camp_export_fn fn, void *fn_arg, store_done_cb done,
                             void *arg) {
  struct export_job *j = camp_job(sizeof *j, account_id, name);
  j->fn = fn;
  j->fn_arg = fn_arg;
  store_pool_run(s, export_read, j, done, arg);
}
