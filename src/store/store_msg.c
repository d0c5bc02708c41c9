/*
 * store_msg.c - the backend-neutral side of messages, SMS statuses,
 * receipts and inbound messages: what the store.h functions about them
 * queue (the backend carries each write out: store_int.h, STORE_OP_LIST).
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/kk_err.h"
#include "core/kk_mem.h"
#include "policy/pol_rules.h"
#include "store/store_int.h"

void note_new_sms(struct store *s, const struct store_msg_new *m, int64_t due_at) {
  struct store_due *d = kk_xmalloc(sizeof *d);   /* freed with the note */
  d->id = m->id;
  d->attempt_id = m->attempt_id;
  d->account_id = m->account_id;
  kk_scopy(d->to, sizeof d->to, m->to);
  kk_scopy(d->sender, sizeof d->sender, m->sender);
  kk_scopy(d->route, sizeof d->route, m->route);
  d->text = kk_xstrdup(m->text);
  d->parts_done = 0;
  d->due_at = due_at;
  d->expires_at = m->expires_at;
  kk_scopy(d->msg_class, sizeof d->msg_class, m->msg_class);
  d->created_at = m->created_at;
  d->scheduled = m->not_before > m->created_at;   /* as casc_new stores it */
  note_due(s, d);
}

void store_retention(struct store *s, struct store_retention *r, store_done_cb done, void *arg) {
  if (r->max <= 0 || r->max > STORE_RETENTION_MAX) r->max = STORE_RETENTION_MAX;
  struct store_op *op = store_atomic(store_op_of(s, STORE_OP_RETENTION, done, arg, r, 1));
  op->weight = r->max;
  store_submit(s, op);
}

/* ---- messages ------------------------------------------------------------ */

void store_msg_insert(struct store *s, struct store_msg_new *msgs, int n,
                      store_done_cb done, void *arg) {
  struct store_insert_data *d = kk_xcalloc(1, sizeof *d);   /* freed with the op */
  d->msgs = msgs;
  d->n = n;
  struct store_op *op = store_atomic(store_op_of(s, STORE_OP_MSG_INSERT, done, arg, d, 0));
  op->weight = 2 * n;
  op->tenant = n > 0 ? msgs[0].account_id : 0;
  /* A stream message's sender waits for this commit, and so does its SMS.
     A campaign's runner (its messages, and only they, have a variant) waits
     for none in particular: they go in the writer's full batches, not in the
     short ones kept for a waiting sender, which would cut the cascades'
     results into small commits for as long as the campaign makes messages.
     A message sent through the API with a campaign's name is a stream's. */
  for (int i = 0; i < n && !op->urgent; i++)
    if (pol_class_rule_named(msgs[i].msg_class)->lane == POL_LANE_STREAM &&
        msgs[i].variant == 0)
      store_urgent(op);
  store_submit(s, op);
}

/* ---- SMS: what a provider answered --------------------------------------- */

/* A copy of u whose strings point into it; freed with the op. */
static struct store_sms_data *sms_copy(const struct store_sms_update *u) {
  struct store_sms_data *d = kk_xcalloc(1, sizeof *d);
  d->u = *u;
  kk_scopy(d->route, sizeof d->route, u->route);
  kk_scopy(d->provider_id, sizeof d->provider_id, u->provider_id);
  kk_scopy(d->error, sizeof d->error, u->error);
  d->u.route = d->route;
  d->u.provider_id = d->provider_id;
  d->u.error = d->error;
  return d;
}

/* What a provider answered must not be lost: every SMS update is kept. */
static void sms_update(struct store *s, enum store_op_kind kind, const struct store_sms_update *u,
                       int weight, store_done_cb done, void *arg) {
  struct store_op *op = store_keep(store_op_of(s, kind, done, arg, sms_copy(u), 0));
  op->weight = weight;
  op->lane = store_lane_of_msg(u->msg_id);   /* a message's SMS results keep one writer */
  if (kind == STORE_OP_SMS_SUBMITTED) store_lane_hint_set(s, u->route, u->provider_id, u->msg_id);
  store_submit(s, op);
}

void store_sms_submitted(struct store *s, const struct store_sms_update *u,
                         store_done_cb done, void *arg) {
  sms_update(s, STORE_OP_SMS_SUBMITTED, u, 3, done, arg);
}

void store_msg_decide(struct store *s, int64_t msg_id, const char *decision, store_done_cb done,
                      void *arg) {
  struct store_decide_data *d = kk_xcalloc(1, sizeof *d);   /* freed with the op */
  d->msg_id = msg_id;
  kk_scopy(d->decision, sizeof d->decision, decision);
  store_submit(s, store_atomic(store_op_of(s, STORE_OP_MSG_DECIDE, done, arg, d, 0)));
}

void store_sms_failed(struct store *s, const struct store_sms_update *u,
                      store_done_cb done, void *arg) {
  sms_update(s, STORE_OP_SMS_FAILED, u, 1, done, arg);
}

void store_sms_expired(struct store *s, const struct store_sms_update *u,
                       store_done_cb done, void *arg) {
  sms_update(s, STORE_OP_SMS_EXPIRED, u, 1, done, arg);
}

void store_sms_retry(struct store *s, const struct store_sms_update *u,
                     store_done_cb done, void *arg) {
  sms_update(s, STORE_OP_SMS_RETRY, u, 1, done, arg);
}

static int on_begun(void *arg, const char *const *cols, int n) {
  (void)cols;
  (void)n;
  *(int *)arg = 1;
  return 1;
}

/* One UPDATE: the row lock it takes orders it with a cancel's (a cancel
   that committed first has made the message done; one that comes after
   finds it accepted). */
static int begin_exec(struct store *s, struct store_op *op) {
  struct store_sms_begin *b = op->data;
  b->go = 0;
  return STORE_SQL(s, NULL,
                   "UPDATE messages SET"
                   " updated_at=CASE WHEN status='scheduled' THEN ? ELSE updated_at END,"
                   " status=CASE WHEN status='scheduled' THEN 'accepted' ELSE status END"
                   " WHERE id=? AND attempt_id=? AND done=0 AND due_at IS NOT NULL RETURNING id",
                   on_begun, &b->go, SQL_I(b->at), SQL_I(b->msg_id), SQL_I(b->attempt_id));
}

void store_sms_begin(struct store *s, struct store_sms_begin *b, store_done_cb done, void *arg) {
  struct store_op *op = store_op_new(begin_exec, done, arg, b, 1);
  op->weight = 1;
  store_submit(s, op);
}

/* ---- receipts, inbound messages, early rows -------------------------------- */

/* SMSC message ids are matched without regard to letter case: receipts may
   spell a hex id differently from submit_sm_resp. */
static void lower_id(const char *in, char *out, size_t cap) {
  size_t i = 0;
  for (; in[i] && i + 1 < cap; i++) out[i] = (char)tolower((unsigned char)in[i]);
  out[i] = '\0';
}

void store_receipt_apply(struct store *s, struct store_receipt *r,
                         store_done_cb done, void *arg) {
  struct store_receipt_data *d = kk_xcalloc(1, sizeof *d);   /* freed with the op */
  r->at = store_clamp_at(r->at, store_now_ms());
  d->r = r;
  kk_scopy(d->route, sizeof d->route, r->route);
  for (int i = 0; i < 2; i++) lower_id(r->ids[i] ? r->ids[i] : "", d->ids[i], sizeof d->ids[i]);
  kk_scopy(d->state, sizeof d->state, r->state);
  kk_scopy(d->error, sizeof d->error, r->error);
  struct store_op *op = store_op_of(s, STORE_OP_RECEIPT, done, arg, d, 0);
  op->weight = 3;
  const char *ids[2] = {d->ids[0], d->ids[1]};
  store_lane_hinted(s, op, d->route, ids, 2);
  store_submit(s, op);
}

void store_inbound_add(struct store *s, const struct store_inbound *in, store_done_cb done,
                       void *arg) {
  size_t len = strlen(in->text);
  struct store_inbound_data *d = kk_xcalloc(1, sizeof *d + len + 1);   /* freed with the op */
  kk_scopy(d->channel, sizeof d->channel, in->channel);
  kk_scopy(d->route, sizeof d->route, in->route);
  kk_scopy(d->from, sizeof d->from, in->from);
  kk_scopy(d->to, sizeof d->to, in->to);
  kk_scopy(d->user, sizeof d->user, in->user);
  d->scope = in->scope;
  d->at = in->at;
  memcpy(d->text, in->text, len + 1);
  store_submit(s, store_op_of(s, STORE_OP_INBOUND, done, arg, d, 0));
}

void store_mo_add(struct store *s, const char *route, const char *from,
                  const char *to, const char *text, int64_t at,
                  store_done_cb done, void *arg) {
  struct store_inbound in = {.channel = "sms", .route = route, .from = from, .to = to,
                             .text = text, .at = at};
  store_inbound_add(s, &in, done, arg);
}

/* ---- reads off the loop (store_pool.c) ------------------------------------ */

struct msg_get_job {
  int64_t account_id;
  char public_id[64];
  struct store_msg_view *out;
};

static int pool_msg_get(struct store *s, void *rd, void *job) {
  struct msg_get_job *j = job;
  return s->be->read.msg_get(s, rd, j->account_id, j->public_id, j->out);
}

void store_msg_get_async(struct store *s, int64_t account_id, const char *public_id,
                         struct store_msg_view *out, store_done_cb done, void *arg) {
  struct msg_get_job *j = kk_xcalloc(1, sizeof *j);   /* freed after done */
  j->account_id = account_id;
  /* A longer id names no message: cut, it still finds none. */
  kk_scopy(j->public_id, sizeof j->public_id, public_id);
  if (strlen(public_id) >= sizeof j->public_id) j->public_id[0] = '\0';
  j->out = out;
  store_pool_run(s, pool_msg_get, j, done, arg);
}

struct msg_list_job {
  int64_t account_id;
  struct store_msg_filter f;
  struct store_msg_view *out;
  int *n;
  int64_t *next_cursor;
};

static int pool_msg_list(struct store *s, void *rd, void *job) {
  struct msg_list_job *j = job;
  return s->be->read.msg_list(s, rd, j->account_id, &j->f, j->out, j->n, j->next_cursor);
}

void store_msg_list_async(struct store *s, int64_t account_id, const struct store_msg_filter *f,
                          struct store_msg_view *out, int *n, int64_t *next_cursor,
                          store_done_cb done, void *arg) {
  struct msg_list_job *j = kk_xcalloc(1, sizeof *j);   /* freed after done */
  j->account_id = account_id;
  j->f = *f;
  j->out = out;
  j->n = n;
  j->next_cursor = next_cursor;
  store_pool_run(s, pool_msg_list, j, done, arg);
}

int store_msg_each_since(struct store *s, int64_t account_id, int64_t from,
                         void (*fn)(void *arg, const struct store_msg_view *v), void *arg) {
  enum { PAGE = 256 };
  void *rd = s->be->reader_open(s);
  if (rd == NULL) return KK_ESTORE;
  struct store_msg_view *v = kk_xcalloc(PAGE, sizeof *v);   /* freed below */
  struct store_msg_filter f = {.from = from, .limit = PAGE, .max_examine = PAGE};
  int64_t next = 0;
  int rc = 0;
  do {
    int n = 0;
    if ((rc = s->be->read.msg_list(s, rd, account_id, &f, v, &n, &next)) != 0) break;
    for (int k = 0; k < n; k++) fn(arg, &v[k]);
    if (n == 0) break;   /* newest first: the rest were made before from */
    f.before_id = next;
  } while (next != 0);
  free(v);
  s->be->reader_close(s, rd);
  return rc ? KK_ESTORE : 0;
}

struct reply_list_job {
  int64_t account_id;
  struct store_reply_filter f;
  struct store_reply_view *out;
  int *n;
  int64_t *next_cursor;
};

static int pool_reply_list(struct store *s, void *rd, void *job) {
  struct reply_list_job *j = job;
  return s->be->read.reply_list(s, rd, j->account_id, &j->f, j->out, j->n, j->next_cursor);
}

void store_reply_list_async(struct store *s, int64_t account_id,
                            const struct store_reply_filter *f, struct store_reply_view *out,
                            int *n, int64_t *next_cursor, store_done_cb done, void *arg) {
  struct reply_list_job *j = kk_xcalloc(1, sizeof *j);   /* freed after done */
  j->account_id = account_id;
  j->f = *f;
  j->out = out;
  j->n = n;
  j->next_cursor = next_cursor;
  store_pool_run(s, pool_reply_list, j, done, arg);
}

/* ---- due SMS, by claims ----------------------------------------------------- */

int store_sms_claim(struct store *s, int64_t *after_id, int64_t lease_ms, struct store_due *out,
                    int max, int *n, int *more) {
  *n = 0;
  *more = 0;
  int k = 0;
  int rc = s->be->read.sms_due(s, *after_id, out, max, &k);
  if (rc || k == 0) return rc;
  *more = k == max;
  *after_id = out[k - 1].id;
  int64_t ids[k];
  unsigned char granted[k];
  for (int i = 0; i < k; i++) ids[i] = out[i].id;
  if (s->be->claim(s, STORE_CLAIM_SMS, ids, k, lease_ms, granted) != 0) {
    for (int i = 0; i < k; i++) free(out[i].text);
    return KK_ESTORE;
  }
  /* A row another writer holds is that one's to send. One another
     transaction had locked is not passed: the cursor stops just before it
     and a later claim asks again (the rows got after it come again then). */
  int m = 0, busy = 0;
  for (int i = 0; i < k; i++) {
    if (granted[i] == STORE_CLAIM_BUSY && !busy) {
      busy = 1;
      *after_id = out[i].id - 1;
      *more = 1;
    }
    if (granted[i] == STORE_CLAIM_GOT && !busy)
      out[m++] = out[i];
    else
      free(out[i].text);
  }
  *n = m;
  return 0;
}

void store_msg_cancel(struct store *s, struct store_msg_cancel *c, store_done_cb done, void *arg) {
  c->found = c->cancelled = 0;
  c->status[0] = '\0';
  if (c->at == 0) c->at = store_now_ms();
  struct store_op *op = store_op_of(s, STORE_OP_MSG_CANCEL, done, arg, c, 1);
  op->weight = 4;
  store_submit(s, op);
}
