/*
 * pg_sms.c - SMS in the PostgreSQL backend (as sqlite/sq_sms.c): what a
 * provider answered for each part, delivery receipts (matched to parts, or
 * held when early), and inbound messages and replies.
 *
 * A receipt may reach any node's session: its part is found through the
 * database, and a receipt held early by one node is applied by whichever
 * node stores the part's submit_sm_resp.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/kk_err.h"
#include "core/kk_log.h"
#include "core/kk_mem.h"
#include "store/pg/pg_int.h"
#include "store/store_casc.h"

#define LOGCTX "store"

static int part_receipt(struct store *s, const char *route, const char *pid,
                        int64_t attempt_id, const struct casc_att *pre, struct casc_msg *m,
                        const char *state, const char *error, int64_t at);

/* SMSC message ids are matched without regard to letter case. */
static void lower_id(const char *in, char *out, size_t cap) {
  size_t i = 0;
  for (; in[i] && i + 1 < cap; i++)
    out[i] = in[i] >= 'A' && in[i] <= 'Z' ? (char)(in[i] - 'A' + 'a') : in[i];
  out[i] = '\0';
}

/* ---- rows read ahead for a run of SMS operations --------------------------- */

/* Operations of one kind that follow each other in a batch (submit_sm_resp
   results, or receipts) read their rows with one statement for them all,
   and lock and read the messages they move with one more, instead of each
   its own two; what they write waits for the run's last operation and goes
   with one statement per table (ws.defer, pg_cascade.c). The rows are as
   the run's first operation finds them: an operation whose attempt,
   message or part another of the run shares reads and writes its own when
   its turn comes, as it would without the look ahead. */
#define AHEAD_MAX 512

struct ahead_op {
  struct store_op *op;
  int found;            /* submit: its attempt exists; receipt: an id matched a part */
  int own;              /* it shares its attempt, message or part with another of the run */
  int64_t attempt_id;   /* receipt: the part's attempt */
  char pid[72];         /* submit: the part's provider id, in lower case */
  int which;            /* receipt: the id that matched (0, 1; 2: none) */
  char pstate[16];      /* receipt: the part's state */
  struct casc_att att;
  int early;            /* submit: the receipt held early for its part, taken */
  char state[16], error[128];
  int64_t at;
  int has_msg;          /* msg is its message, locked (freed by whoever takes it) */
  struct casc_msg msg;
};

struct pgw_ahead {
  struct ahead_op *ops; /* owned */
  /* owned: the events and outbox rows the run adds, written by one
     statement per table at its end (ws.defer, pgw_flush) */
  struct pg_rows *defer;
  int n, next;          /* the next operation to run is ops[next] */
};

void pg_sms_ahead_clear(struct store *s) {
  struct pgw_ahead *a = PG(s)->ws.ahead;
  if (a == NULL) return;
  for (int i = 0; i < a->n; i++)
    if (a->ops[i].has_msg) casc_msg_free(&a->ops[i].msg);
  free(a->ops);
  if (a->defer) {
    if (PG(s)->ws.defer == a->defer) PG(s)->ws.defer = NULL;
    PG(s)->ws.defer_updates = 0;
    PG(s)->ws.pend[0].n = PG(s)->ws.pend[1].n = 0;
    for (int t = 0; t < PGW_T_COUNT; t++) pg_rows_free(&a->defer[t]);
    free(a->defer);
  }
  free(a);
  PG(s)->ws.ahead = NULL;
}

int pg_sms_ahead_end(struct store *s) {
  struct pgw_ahead *a = PG(s)->ws.ahead;
  int rc = a && a->defer ? pgw_flush(s) : 0;
  pg_sms_ahead_clear(s);
  return rc;
}

/* Reads the attempts of a run of submit_sm_resp results and takes the
   receipts held early for their parts (route, pid), with the rows of their
   other ids: 0 or KK_ESTORE. */
static int ahead_submitted(struct store *s, struct pgw_ahead *a) {
  struct pg_rows rows = {0};
  for (int i = 0; i < a->n; i++) {
    struct store_sms_data *d = a->ops[i].op->data;
    char *pid = a->ops[i].pid;
    lower_id(d->provider_id, pid, sizeof a->ops[i].pid);
    pg_rows_int(&rows, 0, i);
    pg_rows_text(&rows, 1, d->route);
    pg_rows_text(&rows, 2, pid);
    pg_rows_int(&rows, 3, d->u.attempt_id);
    pg_rows_end(&rows);
  }
  int rc;
  PGresult *r = pg_rows_run(&PG(s)->w, &rows,
                            "WITH k AS (SELECT * FROM unnest($1::int[],$2::text[],$3::text[],"
                            "$4::bigint[]) AS k(i,route,pid,aid)),"
                            " d AS (DELETE FROM early_receipts e USING k WHERE e.route=k.route"
                            " AND e.provider_id=k.pid AND EXISTS(SELECT 1 FROM attempts"
                            " WHERE id=k.aid) RETURNING k.i,e.route,e.other_id,e.state,e.error,"
                            "e.at),"
                            " o AS (DELETE FROM early_receipts e USING d WHERE e.route=d.route"
                            " AND e.provider_id=d.other_id)"
                            " SELECT k.i,a.message_id,a.channel,a.status,a.step,a.sent_at,"
                            "a.delivered_at,a.read_at,a.segments,a.parts_sent,a.parts_delivered,"
                            "a.scope,a.tries,(d.state IS NOT NULL)::int,d.state,"
                            "COALESCE(d.error,''),d.at FROM k JOIN attempts a ON a.id=k.aid"
                            " LEFT JOIN d ON d.i=k.i",
                            4, &rc);
  pg_rows_free(&rows);
  if (r == NULL) return KK_ESTORE;
  int early = 0;
  for (int row = 0; row < PQntuples(r); row++) {
    int64_t i = pg_int(r, row, 0);
    if (i < 0 || i >= a->n) continue;
    struct ahead_op *x = &a->ops[i];
    x->found = 1;
    pgc_att_cols(r, row, 1, &x->att);
    x->early = (int)pg_int(r, row, 13);
    if (x->early) {
      early = 1;
      pg_copy(r, row, 14, x->state, sizeof x->state);
      pg_copy(r, row, 15, x->error, sizeof x->error);
      x->at = pg_int(r, row, 16);
    }
  }
  PQclear(r);
  if (early) pgw_early_forget(s);
  return 0;
}

/* Finds the parts of a run of receipts (each by its first id that has
   one), with their attempts: 0 or KK_ESTORE. Each part is looked up on its
   own (LATERAL ... LIMIT 1): joined plainly, the planner hashed the whole
   sms_parts table for every run while its statistics were behind its
   growth, a scan per run that grows with the table. */
static int ahead_receipts(struct store *s, struct pgw_ahead *a) {
  struct pg_rows rows = {0};
  for (int i = 0; i < a->n; i++) {
    struct store_receipt_data *d = a->ops[i].op->data;
    a->ops[i].which = 2;
    for (int w = 0; w < 2 && d->ids[w][0]; w++) {
      pg_rows_int(&rows, 0, i);
      pg_rows_int(&rows, 1, w);
      pg_rows_text(&rows, 2, d->route);
      pg_rows_text(&rows, 3, d->ids[w]);
      pg_rows_end(&rows);
    }
  }
  int rc;
  PGresult *r = pg_rows_run(&PG(s)->w, &rows,
                            "SELECT k.i,k.w,p.attempt_id,p.state,"
                            "a.message_id,a.channel,a.status,a.step,a.sent_at,a.delivered_at,"
                            "a.read_at,a.segments,a.parts_sent,a.parts_delivered,a.scope,a.tries"
                            " FROM unnest($1::int[],$2::int[],$3::text[],$4::text[])"
                            " AS k(i,w,route,pid) CROSS JOIN LATERAL (SELECT attempt_id,state"
                            " FROM sms_parts WHERE route=k.route AND provider_id=k.pid LIMIT 1) p"
                            " JOIN attempts a ON a.id=p.attempt_id",
                            4, &rc);
  pg_rows_free(&rows);
  if (r == NULL) return KK_ESTORE;
  for (int row = 0; row < PQntuples(r); row++) {
    int64_t i = pg_int(r, row, 0);
    int w = (int)pg_int(r, row, 1);
    if (i < 0 || i >= a->n || w >= a->ops[i].which) continue;
    struct ahead_op *x = &a->ops[i];
    x->found = 1;
    x->which = w;
    x->attempt_id = pg_int(r, row, 2);
    pg_copy(r, row, 3, x->pstate, sizeof x->pstate);
    pgc_att_cols(r, row, 4, &x->att);
  }
  PQclear(r);
  return 0;
}

/* Whether a receipt of state moves attempt a's message (the last part
   delivered, or any other outcome, of an attempt that has not ended). */
static int receipt_moves(const struct casc_att *a, const char *state) {
  if (strcmp(a->status, "sending") != 0 && strcmp(a->status, "sent") != 0 &&
      strcmp(a->status, "timeout") != 0)
    return 0;
  return strcmp(state, "delivered") != 0 || a->parts_delivered + 1 >= a->segments;
}

/* Whether operation x of the run moves its message. */
static int ahead_moves(const struct ahead_op *x) {
  if (!x->found || x->own) return 0;
  if (x->op->exec == pg_receipt) {
    struct store_receipt_data *d = x->op->data;
    return strcmp(x->pstate, "sent") == 0 && receipt_moves(&x->att, d->state);
  }
  struct store_sms_data *d = x->op->data;
  int64_t full = ((int64_t)1 << x->att.segments) - 1;
  return ((x->att.parts_sent | (int64_t)1 << (d->u.part - 1)) & full) == full;
}

/* Whether two operations of a run of submit_sm_resp results store the same
   part (route, provider id). */
static int same_part(const struct ahead_op *x, const struct ahead_op *y) {
  if (x->op->exec != pg_sms_submitted || y->op->exec != pg_sms_submitted) return 0;
  const struct store_sms_data *a = x->op->data, *b = y->op->data;
  return strcmp(x->pid, y->pid) == 0 && strcmp(a->route, b->route) == 0;
}

/* The attempt operation x of a run writes. */
static int64_t ahead_attempt(const struct ahead_op *x) {
  return x->op->exec == pg_receipt ? x->attempt_id
                                   : ((const struct store_sms_data *)x->op->data)->u.attempt_id;
}

/* A run's operations by a key (an attempt, a message, a part), in a table
   of AHEAD_SLOTS (twice AHEAD_MAX: at most half full), so that finding the
   ones that share one takes a look each rather than a pass over the run. */
#define AHEAD_SLOTS 1024
_Static_assert(AHEAD_SLOTS >= 2 * AHEAD_MAX, "the run's table at most half full");
enum { KEY_ATTEMPT, KEY_MESSAGE, KEY_PART };

static uint64_t key_mix(uint64_t k) {
  k ^= k >> 33;
  k *= 0xff51afd7ed558ccdULL;
  k ^= k >> 33;
  return k;
}

/* The key of kind `kind` of operation x. */
static uint64_t ahead_key(const struct ahead_op *x, int kind) {
  if (kind == KEY_ATTEMPT) return key_mix((uint64_t)ahead_attempt(x));
  if (kind == KEY_MESSAGE) return key_mix((uint64_t)x->att.msg_id);
  uint64_t h = 1469598103934665603ULL;   /* FNV-1a of pid, then route */
  for (const char *c = x->pid; *c; c++) h = (h ^ (unsigned char)*c) * 1099511628211ULL;
  const struct store_sms_data *d = x->op->data;
  for (const char *c = d->route; *c; c++) h = (h ^ (unsigned char)*c) * 1099511628211ULL;
  return h;
}

static int ahead_same(const struct ahead_op *x, const struct ahead_op *y, int kind) {
  if (kind == KEY_ATTEMPT) return ahead_attempt(x) == ahead_attempt(y);
  if (kind == KEY_MESSAGE) return x->att.msg_id == y->att.msg_id;
  return same_part(x, y);
}

/* Marks the found operations of the run that share a key of kind with
   another as own. slot: AHEAD_SLOTS entries, -1 when free. */
static void ahead_mark_shared(struct pgw_ahead *a, int kind, int *slot) {
  for (int k = 0; k < AHEAD_SLOTS; k++) slot[k] = -1;
  for (int i = 0; i < a->n; i++) {
    struct ahead_op *x = &a->ops[i];
    if (!x->found || (kind == KEY_PART && x->op->exec != pg_sms_submitted)) continue;
    for (unsigned k = (unsigned)ahead_key(x, kind) & (AHEAD_SLOTS - 1);; k = (k + 1) & (AHEAD_SLOTS - 1)) {
      if (slot[k] < 0) {
        slot[k] = i;
        break;
      }
      struct ahead_op *y = &a->ops[slot[k]];
      if (ahead_same(x, y, kind)) {
        x->own = y->own = 1;
        break;
      }
    }
  }
}

/* Marks the operations that share an attempt, a message or a part with
   another of the run, then locks and reads the messages the others move, in id order:
   0 or KK_ESTORE. */
static int ahead_messages(struct store *s, struct pgw_ahead *a) {
  int slot[AHEAD_SLOTS];
  for (int kind = KEY_ATTEMPT; kind <= KEY_PART; kind++) ahead_mark_shared(a, kind, slot);
  struct pg_rows ids = {0};
  for (int i = 0; i < a->n; i++) {
    if (!ahead_moves(&a->ops[i])) continue;
    pg_rows_int(&ids, 0, a->ops[i].att.msg_id);
    pg_rows_end(&ids);
  }
  if (ids.n == 0) {
    pg_rows_free(&ids);
    return 0;
  }
  struct casc_msg *m = kk_xcalloc((size_t)ids.n, sizeof *m);   /* freed below */
  int n = pgc_msgs_lock(s, &ids, m, ids.n);
  pg_rows_free(&ids);
  /* their holds, read under their locks: a charge or release needs no read */
  if (n > 0 && pg_money_holds_read(s, m, n) != 0) {
    for (int k = 0; k < n; k++) casc_msg_free(&m[k]);
    free(m);
    return KK_ESTORE;
  }
  /* each message to the one operation that moves it (no other of the run
     shares it), found by its id in the table */
  for (int k = 0; k < AHEAD_SLOTS; k++) slot[k] = -1;
  for (int i = 0; i < a->n; i++) {
    if (!ahead_moves(&a->ops[i])) continue;
    unsigned k = (unsigned)ahead_key(&a->ops[i], KEY_MESSAGE) & (AHEAD_SLOTS - 1);
    while (slot[k] >= 0) k = (k + 1) & (AHEAD_SLOTS - 1);
    slot[k] = i;
  }
  for (int k = 0; k < n; k++) {
    struct ahead_op *x = NULL;
    for (unsigned h = (unsigned)key_mix((uint64_t)m[k].id) & (AHEAD_SLOTS - 1); slot[h] >= 0;
         h = (h + 1) & (AHEAD_SLOTS - 1))
      if (a->ops[slot[h]].att.msg_id == m[k].id && !a->ops[slot[h]].has_msg) {
        x = &a->ops[slot[h]];
        break;
      }
    if (x == NULL) {
      casc_msg_free(&m[k]);
      continue;
    }
    x->msg = m[k];
    x->has_msg = 1;
  }
  free(m);
  return n < 0 ? KK_ESTORE : 0;
}

/* The rows read ahead for op, reading them for its whole run first when
   op begins one; NULL when the store failed (*rc). */
static struct ahead_op *ahead_of(struct store *s, struct store_op *op, int *rc) {
  struct pgw_ahead *a = PG(s)->ws.ahead;
  *rc = 0;
  if (a && a->next < a->n && a->ops[a->next].op == op) return &a->ops[a->next++];
  if ((*rc = pg_sms_ahead_end(s)) != 0) return NULL;
  int n = 0;
  for (struct store_op *o = op; o && o->exec == op->exec && n < AHEAD_MAX; o = o->next) n++;
  a = kk_xcalloc(1, sizeof *a);                       /* freed by pg_sms_ahead_clear */
  a->ops = kk_xcalloc((size_t)n, sizeof *a->ops);
  a->n = n;
  PG(s)->ws.ahead = a;
  struct store_op *o = op;
  for (int i = 0; i < n; i++, o = o->next) a->ops[i].op = o;
  *rc = op->exec == pg_receipt ? ahead_receipts(s, a) : ahead_submitted(s, a);
  if (*rc == 0) *rc = ahead_messages(s, a);
  if (*rc != 0) {
    pg_sms_ahead_clear(s);
    return NULL;
  }
  a->next = 1;
  if (PG(s)->ws.defer == NULL) {
    a->defer = kk_xcalloc(PGW_T_COUNT, sizeof *a->defer);   /* freed by pg_sms_ahead_clear */
    PG(s)->ws.defer = a->defer;
    PG(s)->ws.defer_updates = 1;
  }
  return &a->ops[0];
}

/* Runs op of a run read ahead; the run's rows are forgotten after its
   last operation (what follows may change them). */
static int ahead_run(struct store *s, struct store_op *op,
                     int (*run)(struct store *, struct store_op *)) {
  int rc = run(s, op);
  struct pgw_ahead *a = PG(s)->ws.ahead;
  if (a && a->next >= a->n) {
    int rc2 = pg_sms_ahead_end(s);
    if (rc == 0) rc = rc2;
  }
  return rc;
}

/* The attempt's status moves its message: m as read ahead (taken) or,
   when NULL, read now. */
static int att_event(struct store *s, struct casc_msg *m, int64_t attempt_id,
                     const struct casc_att *att, const char *status, const char *provider_id,
                     const char *error, int64_t at, int units) {
  if (m) return pgc_attempt_event_of(s, m, attempt_id, att, status, provider_id, error, at, units);
  return pgc_attempt_event(s, attempt_id, att, status, provider_id, error, at, units);
}

static int submitted(struct store *s, struct store_op *op) {
  struct store_sms_data *d = op->data;
  struct store_sms_update *u = &d->u;
  char pid[72];
  lower_id(d->provider_id, pid, sizeof pid);
  /* Did this part's receipt come first (to this node or another)? It was
     taken with the attempt's row, and is applied once the part is stored. */
  int rc;
  struct ahead_op *x = ahead_of(s, op, &rc);
  if (x == NULL) return rc;
  if (!x->found) {
    kk_warnx(LOGCTX, "submit_sm_resp for attempt %lld, which does not exist",
             (long long)u->attempt_id);
    return 0;
  }
  struct casc_att att = x->att;
  if (x->own && (rc = pgc_att_load(s, u->attempt_id, &att)) != 0)
    return rc == KK_ENOENT ? 0 : rc;
  struct casc_msg *m = x->has_msg ? &x->msg : NULL;
  x->has_msg = 0;   /* the event below takes it */
  if (att.parts_sent == 0 && u->priced) {
    /* the route the dispatcher chose and its price go on the attempt */
    struct pg_params q = {0};
    pg_p_text(&q, d->route);
    pg_p_int(&q, u->price);
    pg_p_int(&q, u->attempt_id);
    rc = pg_cmd(&PG(s)->w, "UPDATE attempts SET route=$1, price=$2::bigint"
                           " WHERE id=$3::bigint", &q);
  }
  /* the part waits for the run's end, unless another of the run stores it
     too: then what waits is written first */
  struct pg_rows *parts = !x->own && PG(s)->ws.defer_updates ? pgw_deferred(s, PGW_T_PARTS)
                                                              : NULL;
  if (rc == 0 && parts) {
    pg_rows_text(parts, 0, d->route);
    pg_rows_text(parts, 1, pid);
    pg_rows_int(parts, 2, u->attempt_id);
    pg_rows_int(parts, 3, u->part);
    pg_rows_end(parts);
  }
  if (rc == 0 && !parts && PG(s)->ws.defer) rc = pgw_flush(s);
  struct pg_params p = {0};
  pg_p_text(&p, d->route);
  pg_p_text(&p, pid);
  pg_p_int(&p, u->attempt_id);
  pg_p_int(&p, u->part);
  if (rc == 0 && !parts)
    rc = pg_cmd(&PG(s)->w,
                "INSERT INTO sms_parts(route,provider_id,attempt_id,part,state)"
                " VALUES($1,$2,$3::bigint,$4::int,'sent') ON CONFLICT(route,provider_id)"
                " DO UPDATE SET attempt_id=excluded.attempt_id, part=excluded.part,"
                " state='sent'",
                &p);
  if (rc) {
    if (m) casc_msg_free(m);
    return rc;
  }

  int segments = att.segments;
  int64_t sent = att.parts_sent | (int64_t)1 << (u->part - 1);
  int64_t full = ((int64_t)1 << segments) - 1;
  const char *first_pid = u->part == 1 ? d->provider_id : NULL;
  if ((sent & full) == full) {
    /* The last part: the event writes the parts with the status. */
    att.parts_sent = sent;
    att.parts_dirty = 1;
    store_money_route_price(&att, u);
    rc = att_event(s, m, u->attempt_id, &att, "sent", first_pid, NULL, u->at, segments);
  } else {
    if (m) casc_msg_free(m);
    struct pg_params q = {0};
    pg_p_int(&q, sent);
    pg_p_text(&q, first_pid);
    pg_p_int(&q, u->attempt_id);
    rc = pg_cmd(&PG(s)->w,
                "UPDATE attempts SET parts_sent=$1::bigint,"
                " sms_provider_id=COALESCE(sms_provider_id,$2::text) WHERE id=$3::bigint",
                &q);
  }
  if (rc || !x->early) return rc;
  return part_receipt(s, d->route, pid, u->attempt_id, NULL, NULL, x->state, x->error, x->at);
}

int pg_sms_failed(struct store *s, struct store_op *op) {
  struct store_sms_data *d = op->data;
  return pgc_attempt_event(s, d->u.attempt_id, NULL, "failed", NULL,
                           d->error[0] ? d->error : NULL, d->u.at, 0);
}

int pg_sms_expired(struct store *s, struct store_op *op) {
  struct store_sms_data *d = op->data;
  return pgc_attempt_event(s, d->u.attempt_id, NULL, "expired", NULL,
                           d->error[0] ? d->error : NULL, d->u.at, 0);
}

int pg_sms_retry(struct store *s, struct store_op *op) {
  struct store_sms_data *d = op->data;
  struct pg_params p = {0};
  pg_p_int(&p, d->u.due_at);
  pg_p_int(&p, d->u.at);
  pg_p_int(&p, d->u.msg_id);
  int rc = pg_cmd(&PG(s)->w,
                  "UPDATE messages SET due_at=$1::bigint, updated_at=$2::bigint"
                  " WHERE id=$3::bigint",
                  &p);
  if (rc || !d->error[0]) return rc;
  struct pg_params q = {0};
  pg_p_text(&q, d->error);
  pg_p_int(&q, d->u.attempt_id);
  return pg_cmd(&PG(s)->w, "UPDATE attempts SET error=$1 WHERE id=$2::bigint", &q);
}

int pg_msg_decide(struct store *s, struct store_op *op) {
  struct store_decide_data *d = op->data;
  struct pg_params p = {0};
  pg_p_text(&p, d->decision);
  pg_p_int(&p, d->msg_id);
  return pg_cmd(&PG(s)->w,
                "UPDATE messages SET decisions=(COALESCE(decisions,'[]')::jsonb"
                " || jsonb_build_array($1::jsonb))::text WHERE id=$2::bigint",
                &p);
}

/* ---- receipts ---------------------------------------------------------- */

/* Applies a receipt to one part that is still "sent" (pre: its attempt as
   just read, or NULL; m: its message as locked and read since, taken, or
   NULL). */
static int part_receipt(struct store *s, const char *route, const char *pid,
                        int64_t attempt_id, const struct casc_att *pre, struct casc_msg *m,
                        const char *state, const char *error, int64_t at) {
  struct casc_att att;
  int moves = 0;
  if (pre) {
    att = *pre;
    moves = receipt_moves(&att, state);
  } else if (pgc_att_load(s, attempt_id, &att) == 0) {
    moves = receipt_moves(&att, state);
  } else {
    att.status[0] = '\0';
  }
  if (!moves && m) casc_msg_free(m);
  if (att.status[0] == '\0') return 0;
  if (strcmp(att.status, "sending") != 0 && strcmp(att.status, "sent") != 0 &&
      strcmp(att.status, "timeout") != 0)
    return 0; /* the attempt already ended */
  if (strcmp(state, "delivered") == 0) {
    if (moves) /* the last part: counted by the event */
      return att_event(s, m, attempt_id, &att, "delivered", NULL, NULL, at, 0);
    struct pg_params p = {0};
    pg_p_text(&p, state);
    pg_p_text(&p, route);
    pg_p_text(&p, pid);
    int rc = pg_cmd(&PG(s)->w,
                    "UPDATE sms_parts SET state=$1 WHERE route=$2 AND provider_id=$3", &p);
    if (rc) return rc;
    struct pg_params q = {0};
    pg_p_int(&q, attempt_id);
    return pg_cmd(&PG(s)->w,
                  "UPDATE attempts SET parts_delivered=parts_delivered+1 WHERE id=$1::bigint",
                  &q);
  }
  return att_event(s, m, attempt_id, &att, state, NULL, error && error[0] ? error : NULL, at, 0);
}

/* Keeps a receipt whose part is not known yet under each of its ids. */
static int hold_receipt(struct store *s, const struct store_receipt_data *d) {
  char key[72];
  snprintf(key, sizeof key, "r%s", d->route);
  int rc = 0;
  for (int i = 0; i < 2 && rc == 0 && d->ids[i][0]; i++) {
    if (!pgw_early_admit(s, key)) return 0;  /* the route holds its most */
    pgw_recheck_add(s, 'r', d->route, d->ids[i], 0);
    struct pg_params p = {0};
    pg_p_text(&p, d->route);
    pg_p_text(&p, d->ids[i]);
    pg_p_text(&p, d->ids[1 - i]);
    pg_p_text(&p, d->state);
    pg_p_text(&p, d->error[0] ? d->error : NULL);
    pg_p_int(&p, d->r->at);
    rc = pg_cmd(&PG(s)->w,
                "INSERT INTO early_receipts(route,provider_id,other_id,state,error,at)"
                " VALUES($1,$2,$3,$4,$5,$6::bigint) ON CONFLICT(route,provider_id)"
                " DO UPDATE SET other_id=excluded.other_id, state=excluded.state,"
                " error=excluded.error, at=excluded.at",
                &p);
  }
  return rc;
}

int pg_sms_early_recheck(struct store *s, const char *route, const char *pid) {
  struct pg_params p = {0};
  pg_p_text(&p, route);
  pg_p_text(&p, pid);
  int rc;
  /* the held row, if its part is stored now (and no one else takes it) */
  PGresult *r = pg_query(&PG(s)->w,
                         "SELECT p.attempt_id,p.state,e.state,COALESCE(e.error,''),e.at,"
                         "COALESCE(e.other_id,'') FROM early_receipts e JOIN sms_parts p"
                         " ON p.route=e.route AND p.provider_id=e.provider_id"
                         " WHERE e.route=$1 AND e.provider_id=$2 FOR UPDATE OF e SKIP LOCKED",
                         &p, &rc);
  if (r == NULL) return KK_ESTORE;
  if (PQntuples(r) == 0) {
    PQclear(r);
    return 0;
  }
  int64_t attempt_id = pg_int(r, 0, 0);
  char pstate[16], state[16], error[128], other[72];
  pg_copy(r, 0, 1, pstate, sizeof pstate);
  pg_copy(r, 0, 2, state, sizeof state);
  pg_copy(r, 0, 3, error, sizeof error);
  int64_t at = pg_int(r, 0, 4);
  pg_copy(r, 0, 5, other, sizeof other);
  PQclear(r);
  struct pg_params q = {0};
  pg_p_text(&q, route);
  pg_p_text(&q, pid);
  pg_p_text(&q, other);
  if (pg_cmd(&PG(s)->w, "DELETE FROM early_receipts WHERE route=$1 AND provider_id IN ($2,$3)",
             &q) != 0)
    return KK_ESTORE;
  pgw_early_forget(s);
  if (strcmp(pstate, "sent") != 0) return 1;   /* the part had its receipt meanwhile */
  rc = part_receipt(s, route, pid, attempt_id, NULL, NULL, state, error, at);
  return rc ? KK_ESTORE : 1;
}

/* A receipt that finds its part itself. */
static int receipt_own(struct store *s, struct store_receipt_data *d) {
  if (PG(s)->ws.defer && pgw_flush(s) != 0) return KK_ESTORE;   /* what the run wrote */
  for (int i = 0; i < 2 && d->ids[i][0]; i++) {
    struct pg_params p = {0};
    pg_p_text(&p, d->route);
    pg_p_text(&p, d->ids[i]);
    int rc;
    PGresult *r = pg_query(&PG(s)->w,
                           "SELECT p.attempt_id,p.state,"
                           "a.message_id,a.channel,a.status,a.step,a.sent_at,a.delivered_at,"
                           "a.read_at,a.segments,a.parts_sent,a.parts_delivered,a.scope,a.tries"
                           " FROM sms_parts p JOIN attempts a ON a.id=p.attempt_id"
                           " WHERE p.route=$1 AND p.provider_id=$2",
                           &p, &rc);
    if (r == NULL) return KK_ESTORE;
    if (PQntuples(r) == 0) {
      PQclear(r);
      continue;
    }
    int64_t attempt_id = pg_int(r, 0, 0);
    char pstate[16];
    pg_copy(r, 0, 1, pstate, sizeof pstate);
    struct casc_att att;
    pgc_att_cols(r, 0, 2, &att);
    PQclear(r);
    d->r->matched = 1;
    if (strcmp(pstate, "sent") != 0) return 0; /* a repeated receipt */
    return part_receipt(s, d->route, d->ids[i], attempt_id, &att, NULL, d->state, d->error,
                        d->r->at);
  }
  return hold_receipt(s, d);
}

static int receipt(struct store *s, struct store_op *op) {
  struct store_receipt_data *d = op->data;
  d->r->matched = 0;
  int rc;
  struct ahead_op *x = ahead_of(s, op, &rc);
  if (x == NULL) return rc;
  if (x->own) return receipt_own(s, d);
  if (!x->found) return hold_receipt(s, d);
  d->r->matched = 1;
  struct casc_msg *m = x->has_msg ? &x->msg : NULL;
  x->has_msg = 0;   /* part_receipt takes it */
  if (strcmp(x->pstate, "sent") != 0) { /* a repeated receipt */
    if (m) casc_msg_free(m);
    return 0;
  }
  return part_receipt(s, d->route, d->ids[x->which], x->attempt_id, &x->att, m, d->state,
                      d->error, d->r->at);
}

int pg_sms_submitted(struct store *s, struct store_op *op) {
  return ahead_run(s, op, submitted);
}

int pg_receipt(struct store *s, struct store_op *op) { return ahead_run(s, op, receipt); }

/* ---- inbound messages ------------------------------------------------------ */

/* Whether a lookup found a row: 0, KK_ENOENT (none) or the query's error
   (r NULL). */
static int one_row(PGresult *r, int rc) {
  if (r == NULL) return rc;
  rc = PQntuples(r) > 0 ? 0 : KK_ENOENT;
  return rc;
}

int pg_in_assigned(struct store *s, const char *kind, const char *address, int64_t *account) {
  struct pg_params p = {0};
  pg_p_text(&p, kind);
  pg_p_text(&p, address);
  int rc;
  PGresult *r = pg_query(&PG(s)->w,
                         "SELECT account_id FROM inbound_owners WHERE kind=$1 AND address=$2",
                         &p, &rc);
  if ((rc = one_row(r, rc)) == 0) *account = pg_int(r, 0, 0);
  PQclear(r);
  return rc;
}

/* As SQLite's MO_OWNER: among the phone's latest 100 messages. */
int pg_in_last_to_phone(struct store *s, const char *phone, const char *route, int64_t account,
                        int64_t since, struct store_inbound_hit *hit) {
  struct pg_params p = {0};
  pg_p_text(&p, phone);
  pg_p_text(&p, route);
  pg_p_int(&p, account);
  pg_p_int(&p, since);
  int rc;
  PGresult *r = pg_query(&PG(s)->w,
                         "SELECT id,account_id,public_id FROM (SELECT id,account_id,public_id,"
                         "route,created_at"
                         " FROM messages WHERE to_number=$1 ORDER BY id DESC LIMIT 100) t"
                         " WHERE ($2::text IS NULL OR route=$2::text)"
                         " AND ($3::bigint=0 OR account_id=$3::bigint)"
                         " AND created_at>=$4::bigint ORDER BY id DESC LIMIT 1",
                         &p, &rc);
  if ((rc = one_row(r, rc)) == 0) {
    hit->msg = pg_int(r, 0, 0);
    hit->account = pg_int(r, 0, 1);
    pg_copy(r, 0, 2, hit->message, sizeof hit->message);
  }
  PQclear(r);
  return rc;
}

int pg_in_last_to_user(struct store *s, const char *channel, const char *user, int64_t account,
                       int64_t since, struct store_inbound_hit *hit) {
  struct pg_params p = {0};
  pg_p_text(&p, channel);
  pg_p_text(&p, user);
  pg_p_int(&p, account);
  pg_p_int(&p, since);
  int rc;
  PGresult *r = pg_query(&PG(s)->w,
                         "SELECT m.to_number,m.account_id,m.id,m.public_id FROM attempts a"
                         " JOIN messages m ON m.id=a.message_id"
                         " WHERE a.channel=$1 AND a.address=$2 AND a.address IS NOT NULL"
                         " AND a.channel IN ('vk','viber','telegram')"
                         " AND ($3::bigint=0 OR m.account_id=$3::bigint)"
                         " AND a.created_at>=$4::bigint ORDER BY a.id DESC LIMIT 1",
                         &p, &rc);
  if ((rc = one_row(r, rc)) == 0) {
    pg_copy(r, 0, 0, hit->phone, sizeof hit->phone);
    hit->account = pg_int(r, 0, 1);
    hit->msg = pg_int(r, 0, 2);
    pg_copy(r, 0, 3, hit->message, sizeof hit->message);
  }
  PQclear(r);
  return rc;
}

int pg_in_contact_of_user(struct store *s, int64_t account, const char *channel,
                          const char *user, char phone[16]) {
  static const char *const sql[] = {
      "SELECT phone FROM contacts WHERE account_id=$1::bigint AND vk_id=$2 LIMIT 1",
      "SELECT phone FROM contacts WHERE account_id=$1::bigint AND viber_id=$2 LIMIT 1",
      "SELECT phone FROM contacts WHERE account_id=$1::bigint AND telegram_chat_id=$2 LIMIT 1",
  };
  int which = strcmp(channel, "vk") == 0 ? 0 : strcmp(channel, "viber") == 0 ? 1 : 2;
  struct pg_params p = {0};
  pg_p_int(&p, account);
  pg_p_text(&p, user);
  int rc;
  PGresult *r = pg_query(&PG(s)->w, sql[which], &p, &rc);
  if ((rc = one_row(r, rc)) == 0) pg_copy(r, 0, 0, phone, 16);
  PQclear(r);
  return rc;
}

int pg_in_policy_doc(struct store *s, int64_t account, char **doc) {
  struct pg_params p = {0};
  pg_p_int(&p, account);
  int rc;
  PGresult *r = pg_query(&PG(s)->w,
                         "SELECT config FROM channel_settings WHERE account_id=$1::bigint"
                         " AND channel='policy'",
                         &p, &rc);
  if ((rc = one_row(r, rc)) == 0) *doc = kk_xstrdup(PQgetvalue(r, 0, 0));
  PQclear(r);
  return rc;
}

int pg_in_outbox_add(struct store *s, int64_t account, int64_t msg, const char *url,
                     const char *payload, int64_t at) {
  struct pg_params p = {0};
  pg_p_int(&p, account);
  pg_p_int(&p, msg);
  pg_p_text(&p, url);
  pg_p_text(&p, payload);
  pg_p_int(&p, at);
  return pg_cmd(&PG(s)->w,
                "INSERT INTO outbox(account_id,message_id,url,payload,due_at,at)"
                " VALUES($1::bigint,$2::bigint,$3,$4,$5::bigint,$5::bigint)",
                &p);
}

int pg_inbound(struct store *s, struct store_op *op) {
  struct store_inbound_data *d = op->data;
  struct store_inbound_owner o;
  int rc = store_inbound_attribute(s, d, &o);
  if (rc) return rc;
  struct pg_params p = {0};
  pg_p_text(&p, d->route[0] ? d->route : NULL);
  /* a messenger's user without a known phone is listed by its id */
  pg_p_text(&p, o.phone[0] ? o.phone : d->user);
  pg_p_text(&p, d->to);
  pg_p_text(&p, d->text);
  pg_p_int(&p, d->at);
  pg_p_text(&p, d->channel);
  pg_p_opt(&p, o.account);
  pg_p_opt(&p, o.msg);
  pg_p_text(&p, d->user[0] ? d->user : NULL);
  pg_p_text(&p, o.by);
  rc = pg_cmd(&PG(s)->w,
              "INSERT INTO inbound(route,from_number,to_addr,body,at,channel,account_id,"
              "message_id,user_id,attributed_by) VALUES($1,$2,$3,$4,$5::bigint,$6,$7::bigint,"
              "$8::bigint,$9,$10)",
              &p);
  /* a stop, start or help word acts at once, in the same transaction */
  return rc != 0 ? rc : store_optout_inbound(s, d, &o);
}
