/*
 * pg_run.c - runs of cascade operations in the PostgreSQL backend (the
 * writer's side of pg_cascade.c): the messages of a run locked with one
 * statement, and what its operations read, read ahead.
 *
 * A node moves the cascades of other nodes' messages too (a provider's
 * statuses reach whichever node its webhook calls), and a writer holds each
 * message's row lock until its batch commits. So that two nodes' batches
 * neither wait for each other nor deadlock, the first operation of a run of
 * cascade operations (sends' results, providers' statuses, steps'
 * deadlines) locks the messages of the whole run in one statement, in id
 * order, skipping the rows another transaction holds. The operations whose
 * message was skipped write nothing and are handed back to a later batch
 * (store_writer.c), by when the other node has committed; so are the later
 * operations of the batch on the same message, which keeps each message's
 * operations in their order. An operation handed back STORE_LATER_MAX times
 * waits for the lock as before.
 *
 * Having locked them, the run reads, with one statement each, what its operations
 * would read one by one: the messages' rows (with their extra fields and
 * money holds) and all their attempts. An operation takes its message's
 * rows from there while nothing of that message has been written in the
 * run (the first operation on it, until its first write); any other read
 * goes to the database, as without the look ahead.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cascade/cascade_fsm.h"
#include "core/kk_err.h"
#include "core/kk_mem.h"
#include "core/kk_status.h"
#include "store/pg/pg_int.h"
#include "store/pg/pg_money.h"
#include "store/store_casc.h"

#define RUN_MAX 512

struct run_att {
  int64_t id;
  struct casc_att a;
};

struct pgc_run {
  struct store_op *ops[RUN_MAX];
  unsigned char later[RUN_MAX];   /* hand ops[i] back */
  unsigned char no_early[RUN_MAX];   /* a send's result without held statuses */
  int early_added;                /* ... unless an operation of the run held one since */
  int n, next;
  int serving;                    /* ops[next-1] is running */
  struct casc_msg *msgs;          /* owned: the locked messages, by id */
  unsigned char *taken;           /* owned: msgs[i] was taken (its strings are gone) */
  int nmsgs;
  struct run_att *atts;           /* owned: their attempts, by message then id */
  struct run_id { int64_t id; int i; } *byid;   /* owned: atts' ids, sorted, and indexes */
  int natts;
  int64_t cur;                    /* the message the running operation took from msgs */
  int cur_clean;                  /* ... and nothing of it is written yet */
};

/* The run whose operation is running, or NULL. */
static struct pgc_run *run_now(struct store *s) {
  struct pgc_run *run = PG(s)->ws.crun;
  return run && run->serving ? run : NULL;
}

static int id_cmp(int64_t a, int64_t b) { return a < b ? -1 : a > b; }

/* The index in msgs of message id not taken yet, or -1. */
static int run_msg(const struct pgc_run *run, int64_t id) {
  int lo = 0, hi = run->nmsgs - 1;
  while (lo <= hi) {
    int mid = (lo + hi) / 2, c = id_cmp(run->msgs[mid].id, id);
    if (c == 0) return run->taken[mid] ? -1 : mid;
    if (c < 0) lo = mid + 1;
    else hi = mid - 1;
  }
  return -1;
}

static const struct run_att *run_att(const struct pgc_run *run, int64_t id) {
  int lo = 0, hi = run->natts - 1;
  while (lo <= hi) {
    int mid = (lo + hi) / 2;
    int c = id_cmp(run->byid[mid].id, id);
    if (c == 0) return &run->atts[run->byid[mid].i];
    if (c < 0) lo = mid + 1;
    else hi = mid - 1;
  }
  return NULL;
}

int pgc_run_msg(struct store *s, int64_t id, int by_attempt, struct casc_msg *m) {
  struct pgc_run *run = run_now(s);
  if (run == NULL) return 0;
  if (by_attempt) {
    const struct run_att *a = run_att(run, id);
    if (a == NULL) return 0;
    id = a->a.msg_id;
  }
  int i = run_msg(run, id);
  if (i < 0) return 0;
  *m = run->msgs[i];   /* its strings are m's now */
  run->taken[i] = 1;
  run->cur = id;
  run->cur_clean = 1;
  return 1;
}

void pgc_run_dirty(struct store *s) {
  struct pgc_run *run = run_now(s);
  if (run) run->cur_clean = 0;
}

void pgc_run_forget_att(struct store *s, int64_t id) {
  struct pgc_run *run = run_now(s);
  const struct run_att *a = run ? run_att(run, id) : NULL;
  int i = a ? run_msg(run, a->a.msg_id) : -1;
  if (i >= 0) {
    casc_msg_free(&run->msgs[i]);
    run->taken[i] = 1;
  }
  pgc_run_dirty(s);
}

int pgc_run_att(struct store *s, int64_t id, struct casc_att *a) {
  struct pgc_run *run = run_now(s);
  const struct run_att *x = run && run->cur_clean ? run_att(run, id) : NULL;
  if (x == NULL || x->a.msg_id != run->cur) return 0;
  *a = x->a;
  return 1;
}

int pgc_run_attempts(struct store *s, int64_t msg_id, struct cfsm_att *att, int max, int *natt) {
  struct pgc_run *run = run_now(s);
  if (run == NULL || !run->cur_clean || run->cur != msg_id) return 0;
  int n = 0, lo = 0, hi = run->natts;
  while (lo < hi) {   /* the first of the message's (atts are by message) */
    int mid = (lo + hi) / 2;
    if (run->atts[mid].a.msg_id < msg_id) lo = mid + 1;
    else hi = mid;
  }
  for (int i = lo; i < run->natts && n < max && run->atts[i].a.msg_id == msg_id; i++) {
    /* as the database's read gives them: the rest stays 0 */
    const struct casc_att *x = &run->atts[i].a;
    struct cfsm_att *a = &att[n++];
    memset(a, 0, sizeof *a);
    a->id = run->atts[i].id;
    a->chan = kk_chan_parse(x->channel);
    a->status = kk_status_parse(x->status);
    a->sent_at = x->sent_at;
    a->delivered_at = x->delivered_at;
    a->read_at = x->read_at;
  }
  *natt = n;
  return 1;
}

int pgc_run_no_early(struct store *s, int64_t attempt_id) {
  struct pgc_run *run = run_now(s);
  if (run == NULL || run->early_added || !run->no_early[run->next - 1]) return 0;
  const struct store_chan_result_data *d = run->ops[run->next - 1]->data;
  return d->r.attempt_id == attempt_id;
}

static int run_op(const struct store_op *op) {
  return op->exec == pg_chan_result || op->exec == pg_chan_status ||
         op->exec == pg_step_timeout;
}

void pgc_run_clear(struct store *s, int batch) {
  struct pgc_run *run = PG(s)->ws.crun;
  if (run) {
    for (int i = 0; i < run->nmsgs; i++)
      if (!run->taken[i]) casc_msg_free(&run->msgs[i]);
    free(run->msgs);
    free(run->taken);
    free(run->atts);
    free(run->byid);
    free(run);
  }
  PG(s)->ws.crun = NULL;
  if (batch) PG(s)->ws.later.n = 0;
}

static int later_has(const struct pgw_ids *l, int64_t id) {
  for (int i = 0; i < l->n; i++)
    if (l->id[i] == id) return 1;
  return 0;
}

static void later_add(struct pgw_ids *l, int64_t id) {
  if (later_has(l, id)) return;
  if (l->n == l->cap) {
    l->cap = l->cap ? l->cap * 2 : 64;
    l->id = kk_xrealloc(l->id, (size_t)l->cap * sizeof *l->id);   /* freed by pgw_close */
  }
  l->id[l->n++] = id;
}

/* What finds op's message, as a row of the run's statement. */
static void run_key(struct pg_rows *k, int i, const struct store_op *op) {
  int64_t msg = 0, att = 0, scope = 0, upto = 0;
  const char *ch = NULL, *pid = NULL, *peer = NULL;
  if (op->exec == pg_step_timeout) {
    msg = ((const struct store_timeout_data *)op->data)->msg_id;
  } else if (op->exec == pg_chan_result) {
    att = ((const struct store_chan_result_data *)op->data)->r.attempt_id;
  } else {
    const struct store_chan_status_data *d = op->data;
    scope = d->st->scope;
    if (d->provider_id[0]) {
      ch = d->channel;
      pid = d->provider_id;
    } else if (d->peer[0] && strcmp(d->channel, "vk") == 0) {
      peer = d->peer;
      upto = d->st->read_upto;
    }
  }
  pg_rows_int(k, 0, i);
  pg_rows_opt(k, 1, msg);
  pg_rows_opt(k, 2, att);
  pg_rows_text(k, 3, ch);
  pg_rows_text(k, 4, pid);
  pg_rows_int(k, 5, scope);
  pg_rows_text(k, 6, peer);
  pg_rows_int(k, 7, upto);
  pg_rows_end(k);
}

/* The messages of the run's operations (found as pg_chan_status and the
   attempt events find them), locked in id order, those another
   transaction holds skipped: each (operation, message, locked). */
#define RUN_LOCK_SQL                                                                       \
  "WITH k AS (SELECT * FROM unnest($1::int[],$2::bigint[],$3::bigint[],$4::text[],$5::text[]," \
  "$6::bigint[],$7::text[],$8::bigint[]) AS k(i,msg,att,ch,pid,sc,peer,upto)),"            \
  " w AS (SELECT k.i,x.id FROM k CROSS JOIN LATERAL (SELECT k.msg AS id WHERE k.msg IS NOT NULL" \
  " UNION ALL SELECT a.message_id FROM attempts a WHERE a.id=k.att"                          \
  " UNION ALL SELECT a.message_id FROM attempts a WHERE a.channel=k.ch"                       \
  " AND a.provider_id=k.pid AND a.scope=k.sc AND a.channel<>'sms'"                          \
  " UNION ALL SELECT a.message_id FROM attempts a WHERE a.channel='vk' AND a.address=k.peer"  \
  " AND a.scope=k.sc AND a.provider_id IS NOT NULL AND a.read_at IS NULL"                     \
  " AND (CASE WHEN a.provider_id ~ '^-?[0-9]{1,18}$' THEN a.provider_id::bigint ELSE 0 END)"  \
  "<=k.upto) x),"                                                                            \
  " g AS (SELECT id FROM messages WHERE id IN (SELECT id FROM w) ORDER BY id"                \
  " FOR UPDATE SKIP LOCKED)"                                                                 \
  " SELECT w.i,w.id,(g.id IS NOT NULL)::int FROM w LEFT JOIN g ON g.id=w.id"

static int att_by_id(const void *a, const void *b) {
  return id_cmp(((const struct run_id *)a)->id, ((const struct run_id *)b)->id);
}

/* Reads ahead the rows of the messages the run locked (ids), their money
   holds and attempts, and which of its sends' results have statuses held
   early: 0 or KK_ESTORE. */
static int run_read(struct store *s, struct pgc_run *run, struct pg_rows *ids) {
  int rc;
  PGresult *r = pg_rows_run(&PG(s)->w, ids,
                            "SELECT " PGC_MSG_COLS ",extra FROM messages"
                            " WHERE id=ANY($1::bigint[]) ORDER BY id",
                            1, &rc);
  if (r == NULL) return KK_ESTORE;
  int n = PQntuples(r);
  /* both freed by pgc_run_clear */
  run->msgs = kk_xcalloc((size_t)(n > 0 ? n : 1), sizeof *run->msgs);
  run->taken = kk_xcalloc((size_t)(n > 0 ? n : 1), 1);
  for (int i = 0; i < n; i++) {
    pgc_msg_row(r, i, &run->msgs[i]);
    if (run->msgs[i].has_extra) run->msgs[i].extra = kk_xstrdup(PQgetvalue(r, i, 17));
  }
  run->nmsgs = n;   /* in id order (run_msg) */
  PQclear(r);
  if (n == 0) return 0;
  if (pg_money_holds_read(s, run->msgs, n) != 0) return KK_ESTORE;
  for (int i = 0; i < n; i++) {   /* (pg_rows_run emptied ids) */
    pg_rows_int(ids, 0, run->msgs[i].id);
    pg_rows_end(ids);
  }
  r = pg_rows_run(&PG(s)->w, ids,
                  "SELECT id," PGW_ATT_COLS " FROM attempts WHERE message_id=ANY($1::bigint[])"
                  " ORDER BY message_id,id",
                  1, &rc);
  if (r == NULL) return KK_ESTORE;
  n = PQntuples(r);
  run->atts = kk_xcalloc((size_t)(n > 0 ? n : 1), sizeof *run->atts);   /* freed by pgc_run_clear */
  for (int i = 0; i < n; i++) {
    run->atts[i].id = pg_int(r, i, 0);
    pgc_att_cols(r, i, 1, &run->atts[i].a);
  }
  run->natts = n;
  PQclear(r);
  run->byid = kk_xcalloc((size_t)(n > 0 ? n : 1), sizeof *run->byid);   /* freed by pgc_run_clear */
  for (int i = 0; i < n; i++) {
    run->byid[i].id = run->atts[i].id;
    run->byid[i].i = i;
  }
  qsort(run->byid, (size_t)n, sizeof *run->byid, att_by_id);
  /* the sends' results: whose attempts have statuses held early */
  struct pg_rows k = {0};
  for (int i = 0; i < run->n; i++) {
    const struct store_op *o = run->ops[i];
    if (o->exec != pg_chan_result || run->later[i]) continue;
    const struct store_chan_result_data *d = o->data;
    const struct run_att *a = run_att(run, d->r.attempt_id);
    if (d->r.outcome != STORE_CHAN_SENT || a == NULL) continue;
    pg_rows_int(&k, 0, i);
    pg_rows_text(&k, 1, a->a.channel);
    pg_rows_int(&k, 2, a->a.scope);
    pg_rows_text(&k, 3, d->provider_id);
    pg_rows_end(&k);
    run->no_early[i] = 1;
  }
  if (k.n == 0) {
    pg_rows_free(&k);
    return 0;
  }
  r = pg_rows_run(&PG(s)->w, &k,
                  "SELECT k.i FROM unnest($1::int[],$2::text[],$3::bigint[],$4::text[])"
                  " AS k(i,ch,sc,pid) WHERE EXISTS(SELECT 1 FROM early_statuses e"
                  " WHERE e.channel=k.ch AND e.scope=k.sc AND e.provider_id=k.pid)",
                  4, &rc);
  pg_rows_free(&k);
  if (r == NULL) return KK_ESTORE;
  for (int row = 0; row < PQntuples(r); row++) {
    int i = (int)pg_int(r, row, 0);
    if (i >= 0 && i < run->n) run->no_early[i] = 0;
  }
  PQclear(r);
  return 0;
}

/* Starts the run that op begins. 0 or KK_ESTORE. */
static int run_lock(struct store *s, struct store_op *op) {
  pgc_run_clear(s, 0);
  if (PG(s)->ws.defer && pgw_flush(s) != 0) return KK_ESTORE;
  struct pgc_run *run = kk_xcalloc(1, sizeof *run);   /* freed by pgc_run_clear */
  PG(s)->ws.crun = run;
  struct pg_rows k = {0};
  for (struct store_op *o = op; o && run_op(o) && run->n < RUN_MAX; o = o->next) {
    /* one handed back too often waits for its lock (runs unmarked) */
    if (o->later < STORE_LATER_MAX) run_key(&k, run->n, o);
    run->ops[run->n++] = o;
  }
  if (k.n == 0) {
    pg_rows_free(&k);
    return 0;
  }
  int rc;
  PGresult *r = pg_rows_run(&PG(s)->w, &k, RUN_LOCK_SQL, 8, &rc);
  pg_rows_free(&k);
  if (r == NULL) return KK_ESTORE;
  struct pgw_ids *l = &PG(s)->ws.later;
  /* an operation on a message held elsewhere goes back, and with it every
     later one of the batch on that message */
  for (int row = 0; row < PQntuples(r); row++) {
    int i = (int)pg_int(r, row, 0);
    if (i < 0 || i >= run->n) continue;
    if (!pg_int(r, row, 2) || later_has(l, pg_int(r, row, 1))) run->later[i] = 1;
  }
  for (int i = 0; i < run->n; i++) {
    if (!run->later[i]) continue;
    for (int row = 0; row < PQntuples(r); row++)
      if (pg_int(r, row, 0) == i) later_add(l, pg_int(r, row, 1));
  }
  /* the rows are in no order: one marked late by a later row is caught here */
  for (int row = 0; row < PQntuples(r); row++) {
    int i = (int)pg_int(r, row, 0);
    if (i >= 0 && i < run->n && !run->later[i] && later_has(l, pg_int(r, row, 1)))
      run->later[i] = 1;
  }
  /* what the operations that go ahead read: their locked messages' rows */
  struct pg_rows ids = {0};
  for (int row = 0; row < PQntuples(r); row++) {
    int i = (int)pg_int(r, row, 0);
    if (i < 0 || i >= run->n || run->later[i] || !pg_int(r, row, 2)) continue;
    pg_rows_int(&ids, 0, pg_int(r, row, 1));
    pg_rows_end(&ids);
  }
  PQclear(r);
  int rc2 = ids.n > 0 ? run_read(s, run, &ids) : 0;
  pg_rows_free(&ids);
  return rc2;
}

int pgc_run_take(struct store *s, struct store_op *op) {
  struct pgc_run *run = PG(s)->ws.crun;
  if (run == NULL || run->next >= run->n || run->ops[run->next] != op) {
    if (run_lock(s, op) != 0) {
      pgc_run_clear(s, 0);
      return KK_ESTORE;
    }
    run = PG(s)->ws.crun;
  }
  int i = run->next++;
  run->serving = 1;
  run->cur = 0;
  run->cur_clean = 0;
  return run->later[i] ? STORE_LATER : 0;
}

void pgc_run_early_added(struct store *s) {
  if (PG(s)->ws.crun) PG(s)->ws.crun->early_added = 1;
}

int pgc_run_done(struct store *s, int rc) {
  struct pgc_run *run = PG(s)->ws.crun;
  if (run) {
    run->serving = 0;
    if (run->next >= run->n) pgc_run_clear(s, 0);
  }
  return rc;
}
