/*
 * sq_sms.c - SMS in the SQLite backend: what a provider answered for each
 * part, delivery receipts (matched to parts, or held when early), and
 * inbound messages and replies.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/kk_err.h"
#include "core/kk_log.h"
#include "core/kk_mem.h"
#include "store/sqlite/sq_int.h"

#define LOGCTX "store"

/* ---- messages: status changes ------------------------------------------ */

static int part_receipt(struct store *s, const char *route, const char *pid,
                        int64_t attempt_id, const struct casc_att *pre, const char *state,
                        const char *error, int64_t at);

/* SMSC message ids are matched without regard to letter case: receipts may
   spell a hex id differently from submit_sm_resp. */
static void lower_id(const char *in, char *out, size_t cap) {
  size_t i = 0;
  for (; in[i] && i + 1 < cap; i++) out[i] = (char)tolower((unsigned char)in[i]);
  out[i] = '\0';
}

int casc_early_check(struct store *s) {
  casc_early_forget(s);
  sqlite3_stmt *st = sq_stmt(&SQ(s)->w, ST_EARLY_ANY);
  int rc = sqlite3_step(st);
  if (rc == SQLITE_ROW) {
    SQ(s)->early_any = sqlite3_column_int(st, 0);
    SQ(s)->estat_any = sqlite3_column_int(st, 1);
  }
  sqlite3_reset(st);
  return rc == SQLITE_ROW ? 0 : KK_ESTORE;
}

int sq_sms_submitted(struct store *s, struct store_op *op) {
  struct store_sms_data *d = op->data;
  struct store_sms_update *u = &d->u;
  struct conn *c = &SQ(s)->w;
  struct casc_att att;
  if (casc_att_load(s, u->attempt_id, &att) != 0) {
    kk_warnx(LOGCTX, "submit_sm_resp for attempt %lld, which does not exist",
             (long long)u->attempt_id);
    return 0;
  }
  int segments = att.segments;
  int64_t sent = att.parts_sent;
  sqlite3_stmt *st;
  if (sent == 0 && u->priced) {
    /* the route the dispatcher chose and its price go on the attempt */
    st = sq_stmt(c, ST_ATT_ROUTE);
    sq_bind_text(st, 1, d->route);
    sqlite3_bind_int64(st, 2, u->price);
    sqlite3_bind_int64(st, 3, u->attempt_id);
    int rc0 = sq_step_done(c, st);
    if (rc0) return rc0;
  }

  char pid[72];
  lower_id(d->provider_id, pid, sizeof pid);
  st = sq_stmt(c, ST_PART_INSERT);
  sq_bind_text(st, 1, d->route);
  sq_bind_text(st, 2, pid);
  sqlite3_bind_int64(st, 3, u->attempt_id);
  sqlite3_bind_int(st, 4, u->part);
  int rc = sq_step_done(c, st);
  if (rc) return rc;

  sent |= (int64_t)1 << (u->part - 1);
  int64_t full = ((int64_t)1 << segments) - 1;
  const char *first_pid = u->part == 1 ? d->provider_id : NULL;
  if ((sent & full) == full) {
    /* The last part: the event writes the parts with the status. */
    att.parts_sent = sent;
    att.parts_dirty = 1;
    store_money_route_price(&att, u);
    rc = casc_attempt_event(s, u->attempt_id, &att, "sent", first_pid, NULL, u->at, segments);
  } else {
    st = sq_stmt(c, ST_ATT_SENT);
    sqlite3_bind_int64(st, 1, sent);
    sq_bind_text(st, 2, first_pid);
    sqlite3_bind_int64(st, 3, u->attempt_id);
    rc = sq_step_done(c, st);
  }
  if (rc) return rc;

  /* Did this part's receipt come first? (Seldom: most of the time there is
     no early receipt at all and nothing to look up.) */
  if (!SQ(s)->early_any) return 0;
  st = sq_stmt(c, ST_EARLY_GET);
  sq_bind_text(st, 1, d->route);
  sq_bind_text(st, 2, pid);
  if (sqlite3_step(st) != SQLITE_ROW) {
    sqlite3_reset(st);
    return 0;
  }
  char other[72], state[16], error[128];
  sq_col_copy(st, 0, other, sizeof other);
  sq_col_copy(st, 1, state, sizeof state);
  sq_col_copy(st, 2, error, sizeof error);
  int64_t at = sqlite3_column_int64(st, 3);
  sqlite3_reset(st);
  st = sq_stmt(c, ST_EARLY_DEL);
  sq_bind_text(st, 1, d->route);
  sq_bind_text(st, 2, pid);
  sq_bind_text(st, 3, other);
  rc = sq_step_done(c, st);
  if (rc == 0) rc = casc_early_check(s);
  if (rc) return rc;
  return part_receipt(s, d->route, pid, u->attempt_id, NULL, state, error, at);
}

/* Ends the SMS attempt with a final status; the cascade decides what follows. */
static int attempt_final(struct store *s, int64_t msg_id, int64_t attempt_id,
                         const char *status, const char *error, int64_t at) {
  return casc_attempt_event(s, attempt_id, NULL, status, NULL, error && error[0] ? error : NULL,
                            at, 0);
}

int sq_sms_failed(struct store *s, struct store_op *op) {
  struct store_sms_data *d = op->data;
  return attempt_final(s, d->u.msg_id, d->u.attempt_id, "failed", d->error, d->u.at);
}

int sq_sms_expired(struct store *s, struct store_op *op) {
  struct store_sms_data *d = op->data;
  return attempt_final(s, d->u.msg_id, d->u.attempt_id, "expired", d->error, d->u.at);
}

int sq_sms_retry(struct store *s, struct store_op *op) {
  struct store_sms_data *d = op->data;
  sqlite3_stmt *st = sq_stmt(&SQ(s)->w, ST_MSG_SET_DUE);
  sqlite3_bind_int64(st, 1, d->u.due_at);
  sqlite3_bind_int64(st, 2, d->u.at);
  sqlite3_bind_int64(st, 3, d->u.msg_id);
  int rc = sq_step_done(&SQ(s)->w, st);
  if (rc || !d->error[0]) return rc;
  st = sq_stmt(&SQ(s)->w, ST_ATT_ERROR);
  sq_bind_text(st, 1, d->error);
  sqlite3_bind_int64(st, 2, d->u.attempt_id);
  return sq_step_done(&SQ(s)->w, st);
}

int sq_msg_decide(struct store *s, struct store_op *op) {
  struct store_decide_data *d = op->data;
  sqlite3_stmt *st = sq_stmt(&SQ(s)->w, ST_MSG_DECIDE);
  sq_bind_text(st, 1, d->decision);
  sqlite3_bind_int64(st, 2, d->msg_id);
  return sq_step_done(&SQ(s)->w, st);
}

/* ---- receipts ---------------------------------------------------------- */

/*
 * Applies a receipt to one part that is still "sent" (pre: its attempt as
 * just read, or NULL). A part's own state is written only while its attempt
 * goes on: once the attempt has ended, a repeated receipt finds it ended.
 */
static int part_receipt(struct store *s, const char *route, const char *pid,
                        int64_t attempt_id, const struct casc_att *pre, const char *state,
                        const char *error, int64_t at) {
  struct conn *c = &SQ(s)->w;
  struct casc_att att;
  if (pre)
    att = *pre;
  else if (casc_att_load(s, attempt_id, &att) != 0)
    return 0;
  int segments = att.segments;
  int delivered = att.parts_delivered;
  const char *astatus = att.status;
  if (strcmp(astatus, "sending") != 0 && strcmp(astatus, "sent") != 0 &&
      strcmp(astatus, "timeout") != 0)
    return 0; /* the attempt already ended */

  if (strcmp(state, "delivered") == 0) {
    if (delivered + 1 >= segments) /* the last part: counted by the event */
      return casc_attempt_event(s, attempt_id, &att, "delivered", NULL, NULL, at, 0);
    sqlite3_stmt *st = sq_stmt(c, ST_PART_SET);
    sq_bind_text(st, 1, state);
    sq_bind_text(st, 2, route);
    sq_bind_text(st, 3, pid);
    int rc = sq_step_done(c, st);
    if (rc) return rc;
    st = sq_stmt(c, ST_ATT_DELIVERED_PART);
    sqlite3_bind_int64(st, 1, attempt_id);
    return sq_step_done(c, st);
  }
  return casc_attempt_event(s, attempt_id, &att, state, NULL,
                            error && error[0] ? error : NULL, at, 0);
}

/* Keeps a receipt whose part is not known yet under each of its ids; the
   submit_sm_resp that names the part applies it (exec_sms_submitted). */
static int hold_receipt(struct store *s, const struct store_receipt_data *d) {
  struct conn *c = &SQ(s)->w;
  char key[72];
  snprintf(key, sizeof key, "r%s", d->route);
  int rc = 0;
  for (int i = 0; i < 2 && rc == 0 && d->ids[i][0]; i++) {
    if (!casc_early_admit(s, key)) return 0;  /* the route holds its most */
    sqlite3_stmt *st = sq_stmt(c, ST_EARLY_PUT);
    sq_bind_text(st, 1, d->route);
    sq_bind_text(st, 2, d->ids[i]);
    sq_bind_text(st, 3, d->ids[1 - i]);
    sq_bind_text(st, 4, d->state);
    sq_bind_text(st, 5, d->error[0] ? d->error : NULL);
    sqlite3_bind_int64(st, 6, d->r->at);
    rc = sq_step_done(c, st);
  }
  if (rc == 0) SQ(s)->early_any = 1;
  return rc;
}

int sq_receipt(struct store *s, struct store_op *op) {
  struct store_receipt_data *d = op->data;
  struct conn *c = &SQ(s)->w;
  d->r->matched = 0;
  for (int i = 0; i < 2 && d->ids[i][0]; i++) {
    sqlite3_stmt *st = sq_stmt(c, ST_PART_FIND);
    sq_bind_text(st, 1, d->route);
    sq_bind_text(st, 2, d->ids[i]);
    if (sqlite3_step(st) != SQLITE_ROW) {
      sqlite3_reset(st);
      continue;
    }
    int64_t attempt_id = sqlite3_column_int64(st, 0);
    char pstate[16];
    sq_col_copy(st, 1, pstate, sizeof pstate);
    struct casc_att att;
    casc_att_cols(st, 2, &att);
    sqlite3_reset(st);
    d->r->matched = 1;
    if (strcmp(pstate, "sent") != 0) return 0; /* a repeated receipt */
    return part_receipt(s, d->route, d->ids[i], attempt_id, &att, d->state, d->error, d->r->at);
  }
  return hold_receipt(s, d);
}

/* ---- a person's message: whom it belongs to (store_inbound_attribute) ------- */

int sq_in_assigned(struct store *s, const char *kind, const char *address, int64_t *account) {
  sqlite3_stmt *st = sq_stmt(&SQ(s)->w, ST_IN_ASSIGNED);
  sq_bind_text(st, 1, kind);
  sq_bind_text(st, 2, address);
  return sq_lookup(st, sq_row_int64, account);
}

static void phone_hit(sqlite3_stmt *st, void *out) {
  struct store_inbound_hit *hit = out;
  hit->msg = sqlite3_column_int64(st, 0);
  hit->account = sqlite3_column_int64(st, 1);
  sq_col_copy(st, 2, hit->message, sizeof hit->message);
}

static void user_hit(sqlite3_stmt *st, void *out) {
  struct store_inbound_hit *hit = out;
  sq_col_copy(st, 0, hit->phone, sizeof hit->phone);
  hit->account = sqlite3_column_int64(st, 1);
  hit->msg = sqlite3_column_int64(st, 2);
  sq_col_copy(st, 3, hit->message, sizeof hit->message);
}

int sq_in_last_to_phone(struct store *s, const char *phone, const char *route, int64_t account,
                        int64_t since, struct store_inbound_hit *hit) {
  sqlite3_stmt *st = sq_stmt(&SQ(s)->w, ST_MO_OWNER);
  sq_bind_text(st, 1, phone);
  sq_bind_text(st, 2, route);
  sqlite3_bind_int64(st, 3, account);
  sqlite3_bind_int64(st, 4, since);
  return sq_lookup(st, phone_hit, hit);
}

int sq_in_last_to_user(struct store *s, const char *channel, const char *user, int64_t account,
                       int64_t since, struct store_inbound_hit *hit) {
  sqlite3_stmt *st = sq_stmt(&SQ(s)->w, ST_IN_LAST_USER);
  sq_bind_text(st, 1, channel);
  sq_bind_text(st, 2, user);
  sqlite3_bind_int64(st, 3, account);
  sqlite3_bind_int64(st, 4, since);
  return sq_lookup(st, user_hit, hit);
}

int sq_in_contact_of_user(struct store *s, int64_t account, const char *channel,
                          const char *user, char phone[16]) {
  enum stmt_id id = strcmp(channel, "vk") == 0      ? ST_IN_CONTACT_VK
                    : strcmp(channel, "viber") == 0 ? ST_IN_CONTACT_VIBER
                                                    : ST_IN_CONTACT_TELEGRAM;
  sqlite3_stmt *st = sq_stmt(&SQ(s)->w, id);
  sqlite3_bind_int64(st, 1, account);
  sq_bind_text(st, 2, user);
  return sq_lookup(st, sq_row_phone, phone);
}

int sq_in_policy_doc(struct store *s, int64_t account, char **doc) {
  sqlite3_stmt *st = sq_stmt(&SQ(s)->w, ST_IN_POLICY);
  sqlite3_bind_int64(st, 1, account);
  return sq_lookup(st, sq_row_dup, doc);
}

int sq_in_outbox_add(struct store *s, int64_t account, int64_t msg, const char *url,
                     const char *payload, int64_t at) {
  sqlite3_stmt *st = sq_stmt(&SQ(s)->w, ST_IN_OUTBOX);
  sqlite3_bind_int64(st, 1, account);
  sqlite3_bind_int64(st, 2, msg);
  sq_bind_text(st, 3, url);
  sq_bind_text(st, 4, payload);
  sqlite3_bind_int64(st, 5, at);
  return sq_step_done(&SQ(s)->w, st);
}

int sq_inbound(struct store *s, struct store_op *op) {
  struct store_inbound_data *d = op->data;
  struct store_inbound_owner o;
  int rc = store_inbound_attribute(s, d, &o);
  if (rc != 0) return rc;
  sqlite3_stmt *st = sq_stmt(&SQ(s)->w, ST_MO_INSERT);
  sq_bind_text(st, 1, d->route[0] ? d->route : NULL);
  /* a messenger's user without a known phone is listed by its id */
  sq_bind_text(st, 2, o.phone[0] ? o.phone : d->user);
  sq_bind_text(st, 3, d->to);
  sq_bind_text(st, 4, d->text);
  sqlite3_bind_int64(st, 5, d->at);
  sq_bind_text(st, 6, d->channel);
  sq_bind_opt(st, 7, o.account);
  sq_bind_opt(st, 8, o.msg);
  sq_bind_text(st, 9, d->user[0] ? d->user : NULL);
  sq_bind_text(st, 10, o.by);
  rc = sq_step_done(&SQ(s)->w, st);
  /* a stop, start or help word acts at once, in the same transaction */
  return rc != 0 ? rc : store_optout_inbound(s, d, &o);
}

int sq_reply_list(struct store *s, void *rd, int64_t account_id,
                  const struct store_reply_filter *f, struct store_reply_view *out, int *n,
                  int64_t *next_cursor) {
  (void)s;
  struct conn *c = rd;
  enum stmt_id id = f->from ? ST_REPLY_LIST_FROM : f->channel ? ST_REPLY_LIST_CHANNEL
                                                               : ST_REPLY_LIST;
  sqlite3_stmt *st = sq_stmt(c, id);
  sqlite3_bind_int64(st, 1, account_id);
  sqlite3_bind_int64(st, 2, f->before_id > 0 ? f->before_id : INT64_MAX);
  sqlite3_bind_int(st, 3, f->limit + 1);
  if (id != ST_REPLY_LIST) sq_bind_text(st, 4, f->channel);
  if (id == ST_REPLY_LIST_FROM) sq_bind_text(st, 5, f->from);
  int k = 0, rc;
  *next_cursor = 0;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    if (k == f->limit) {
      *next_cursor = out[k - 1].id;
      break;
    }
    struct store_reply_view *v = &out[k++];
    memset(v, 0, sizeof *v);
    v->id = sqlite3_column_int64(st, 0);
    sq_col_copy(st, 1, v->channel, sizeof v->channel);
    sq_col_copy(st, 2, v->from, sizeof v->from);
    sq_col_copy(st, 3, v->to, sizeof v->to);
    sq_col_copy(st, 4, v->route, sizeof v->route);
    v->text = sq_col_dup(st, 5);
    v->at = sqlite3_column_int64(st, 6);
    sq_col_copy(st, 7, v->in_reply_to, sizeof v->in_reply_to);
    sq_col_copy(st, 8, v->user, sizeof v->user);
    sq_col_copy(st, 9, v->attributed_by, sizeof v->attributed_by);
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

/* ---- early rows ------------------------------------------------------------ */

