/*
 * store_optout.c - the backend-neutral part of the stop-list and consents
 * (store_optout.h): queuing the writes, the copy in memory and its notes,
 * the reads in the pool.
 */
#include "store/store_optout.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "core/kk_err.h"
#include "core/kk_log.h"
#include "core/kk_mem.h"
#include "policy/pol_consent.h"
#include "policy/pol_set.h"
#include "policy/pol_stop.h"
#include "store/store_contact.h"
#include "policy/pol_words.h"
#include "store/store_int.h"

#define LOGCTX "store"

struct store_optout {
  struct pol_set stop;      /* (account, phone) -> reason */
  struct pol_set consent;   /* (account, phone) -> mask of current consents */
};

struct store_optout *store_optout_new(void) {
  struct store_optout *o = kk_xcalloc(1, sizeof *o);   /* freed by store_optout_free */
  pol_set_init(&o->stop);
  pol_set_init(&o->consent);
  return o;
}

void store_optout_free(struct store_optout *o) {
  if (o == NULL) return;
  pol_set_fini(&o->stop);
  pol_set_fini(&o->consent);
  free(o);
}

static void put(struct pol_set *set, int64_t account_id, const char *phone, uint32_t v,
                int add) {
  uint64_t k = pol_set_key(phone);
  if (add) v |= pol_set_get(set, account_id, k);
  if (pol_set_put(set, account_id, k, v) == KK_ENOSPC)
    kk_error(LOGCTX, "the stop-list and consents held in memory are full (%d entries)",
             POL_SET_MAX);
}

static void fill_stop(void *arg, int64_t account_id, const char *phone, const char *reason) {
  unsigned r = pol_stop_reason_of(reason);
  put(&((struct store_optout *)arg)->stop, account_id, phone, r ? r : POL_STOP_API, 0);
}

static void fill_consent(void *arg, int64_t account_id, const char *phone, const char *channel) {
  uint32_t b = pol_consent_bit(strcmp(channel, "all") == 0 ? "" : channel);
  if (b) put(&((struct store_optout *)arg)->consent, account_id, phone, b, 1);
}

int store_optout_fill(struct store *s) {
  const struct store_optout_reads *r = &s->be->read.optout;
  if (r->stop_all == NULL) return 0;
  if (r->stop_all(s, fill_stop, s->optout) != 0 ||
      r->consent_all(s, fill_consent, s->optout) != 0) {
    kk_error(LOGCTX, "the stop-list and consents could not be read");
    return KK_ESTORE;
  }
  return 0;
}

void store_optout_apply(struct store *s, const struct store_note *notes, int n) {
  for (int i = 0; i < n; i++) {
    const struct store_note *t = &notes[i];
    if ((t->kind != STORE_NOTE_STOP && t->kind != STORE_NOTE_CONSENT) || t->cfg == NULL) continue;
    put(t->kind == STORE_NOTE_STOP ? &s->optout->stop : &s->optout->consent, t->account_id,
        t->cfg->name, (uint32_t)t->at, 0);
  }
}

void store_optout_note_stop(struct store *s, int64_t account_id, const char *phone,
                            const char *reason) {
  unsigned r = reason && reason[0] ? pol_stop_reason_of(reason) : POL_STOP_NONE;
  if (reason && reason[0] && r == POL_STOP_NONE) r = POL_STOP_API;
  note_cfg(s, STORE_NOTE_STOP, account_id, phone, NULL, NULL, (int64_t)r);
}

void store_optout_note_consent(struct store *s, int64_t account_id, const char *phone,
                               uint32_t mask) {
  note_cfg(s, STORE_NOTE_CONSENT, account_id, phone, NULL, NULL, (int64_t)mask);
}

/* The reply's JSON for the account's replies_webhook (malloc'd), or NULL. */
static char *reply_payload(const struct store_inbound_data *d, const struct store_inbound_owner *o) {
  char at[32];
  time_t t = (time_t)(d->at / 1000);
  struct tm tm;
  gmtime_r(&t, &tm);
  size_t n = strftime(at, sizeof at, "%Y-%m-%dT%H:%M:%S", &tm);
  snprintf(at + n, sizeof at - n, ".%03dZ", (int)(d->at % 1000));
  json_t *j = json_pack("{s:s, s:s, s:s, s:s}", "channel", d->channel, "from",
                        o->phone[0] ? o->phone : d->user, "text", d->text, "at", at);
  if (j == NULL) return NULL;   /* a text that is not UTF-8 */
  if (o->message[0]) json_object_set_new(j, "message", json_string(o->message));
  if (d->user[0]) json_object_set_new(j, "user_id", json_string(d->user));
  if (o->by) json_object_set_new(j, "attributed_by", json_string(o->by));
  char *s = json_dumps(j, JSON_COMPACT);
  json_decref(j);
  return s;
}

/* A stop lists the phone (and withdraws its consents), a start removes it;
   stop, start and help are answered (the note). */
static int act_on_word(struct store *s, const struct store_inbound_data *d,
                       const struct store_inbound_owner *o, enum pol_reply_kind k) {
  struct store_stop_row row = {.withdraw = k == POL_REPLY_STOP};
  snprintf(row.phone, sizeof row.phone, "%s", o->phone);
  if (pol_set_key(row.phone) == 0) return 0;   /* no phone known for the person */
  if (k != POL_REPLY_HELP) {
    snprintf(row.reason, sizeof row.reason, "%s", k == POL_REPLY_STOP ? "reply" : "");
    snprintf(row.channel, sizeof row.channel, "%s", d->channel);
    struct store_stop_batch b = {.account_id = o->account, .at = d->at, .rows = &row, .n = 1};
    struct store_op op = {.data = &b, .borrowed = 1};
    int rc = s->be->exec[STORE_OP_STOP_WRITE](s, &op);
    if (rc != 0) return rc;
  }
  char what[120];
  snprintf(what, sizeof what, "%s %s%s%s", pol_stop_reply_name(k), d->channel,
           d->user[0] ? " " : "", d->user);
  note_cfg(s, STORE_NOTE_OPTOUT_REPLY, o->account, row.phone, what, NULL, d->at);
  return 0;
}

int store_optout_inbound(struct store *s, const struct store_inbound_data *d,
                         const struct store_inbound_owner *o) {
  if (o->account <= 0) return 0;
  const struct store_inbound_lookups *l = &s->be->read.optout.inbound;
  /* the account's policy (a document that does not parse: the defaults) */
  char *doc = NULL;
  int rc = l->policy_doc(s, o->account, &doc);
  if (rc != 0 && rc != KK_ENOENT) return rc;
  struct pol_words *w = kk_xmalloc(sizeof *w);   /* freed below */
  const char *field;
  char err[8];
  (void)pol_words_parse(doc, w, &field, err, sizeof err);
  free(doc);
  rc = 0;
  if (w->replies_webhook[0]) {
    char *payload = reply_payload(d, o);
    if (payload) rc = l->outbox_add(s, o->account, o->msg, w->replies_webhook, payload, d->at);
    free(payload);
  }
  enum pol_reply_kind k = pol_words_match(w, d->text, strlen(d->text));
  free(w);
  if (rc == 0 && k != POL_REPLY_NONE) rc = act_on_word(s, d, o, k);
  return rc;
}

/* The account the operator gave d's number or bot to: "number" (SMS: the
   number it was sent to; WhatsApp: the operator's number) or "bot". */
static int by_assignment(struct store *s, const struct store_inbound_data *d,
                         struct store_inbound_owner *o) {
  const struct store_inbound_lookups *l = &s->be->read.optout.inbound;
  int sms = strcmp(d->channel, "sms") == 0;
  if (sms && d->to[0] == '\0') return KK_ENOENT;
  const char *addr = sms ? (d->to[0] == '+' ? d->to + 1 : d->to) : d->channel;
  int rc = l->assigned(s, sms ? "number" : "bot", addr, &o->account);
  if (rc == 0) o->by = sms || strcmp(d->channel, "whatsapp") == 0 ? "number" : "bot";
  return rc;
}

int store_inbound_attribute(struct store *s, const struct store_inbound_data *d,
                            struct store_inbound_owner *o) {
  const struct store_inbound_lookups *l = &s->be->read.optout.inbound;
  memset(o, 0, sizeof *o);
  int sms = strcmp(d->channel, "sms") == 0;
  if (d->scope) {
    o->account = d->scope;
    o->by = d->user[0] ? "bot" : "number";
  } else {
    int rc = by_assignment(s, d, o);
    if (rc != 0 && rc != KK_ENOENT) return rc;
  }
  int64_t since = d->at - (int64_t)STORE_INBOUND_DAYS * 86400 * 1000;
  struct store_inbound_hit hit = {0};
  int rc;
  if (d->user[0]) {
    rc = l->last_to_user(s, d->channel, d->user, o->account, since, &hit);
    if (rc == 0) memcpy(o->phone, hit.phone, sizeof o->phone);
    if (rc == KK_ENOENT && o->account)
      rc = l->contact_of_user(s, o->account, d->channel, d->user, o->phone);
  } else {
    const char *from = d->from[0] == '+' ? d->from + 1 : d->from;
    if (strlen(from) >= sizeof o->phone) return 0;   /* not a phone: nobody's */
    memcpy(o->phone, from, strlen(from) + 1);
    rc = l->last_to_phone(s, o->phone, sms && d->route[0] ? d->route : NULL, o->account, since,
                          &hit);
  }
  if (rc != 0 && rc != KK_ENOENT) return rc;
  if (hit.msg) {
    o->msg = hit.msg;
    memcpy(o->message, hit.message, sizeof o->message);
  }
  if (hit.msg && o->account == 0 && hit.account) {
    o->account = hit.account;
    o->by = "last_message";
  }
  return 0;
}

void store_consent_of_contact(const struct store_contact *c, int64_t now,
                              struct store_consent *out) {
  memset(out, 0, sizeof *out);
  snprintf(out->phone, sizeof out->phone, "%s", c->phone);
  snprintf(out->channel, sizeof out->channel, "all");
  snprintf(out->source, sizeof out->source, "%s", c->consent_source[0] ? c->consent_source
                                                                       : "import");
  out->at = c->consent_at > 0 && c->consent_at <= now ? c->consent_at : now;
}

unsigned store_stop_reason(struct store *s, int64_t account_id, const char *phone) {
  return pol_set_get(&s->optout->stop, account_id, pol_set_key(phone));
}

uint32_t store_consent_mask(struct store *s, int64_t account_id, const char *phone) {
  return pol_set_get(&s->optout->consent, account_id, pol_set_key(phone));
}

/* ---- writes ------------------------------------------------------------------ */

void store_stop_write(struct store *s, struct store_stop_batch *b, store_done_cb done, void *arg) {
  struct store_op *op = store_op_of(s, STORE_OP_STOP_WRITE, done, arg, b, 1);
  op->weight = b->n > 0 ? b->n : 1;
  store_submit(s, store_atomic(op));
}

void store_consent_write(struct store *s, struct store_consent_op *op, store_done_cb done,
                         void *arg) {
  store_submit(s, store_atomic(store_op_of(s, STORE_OP_CONSENT_WRITE, done, arg, op, 1)));
}

void store_inbound_set_write(struct store *s, struct store_inbound_set *set, store_done_cb done,
                             void *arg) {
  struct store_op *op = store_op_of(s, STORE_OP_INBOUND_SET, done, arg, set, 1);
  op->weight = set->n > 0 ? set->n : 1;
  store_submit(s, store_atomic(op));
}

/* ---- reads in the pool --------------------------------------------------------- */

struct optout_job {
  int consents;
  int64_t account_id;
  int has_phone;
  char phone[16];
  char after[16];
  int limit;
  store_stop_fn sfn;
  store_consent_fn cfn;
  void *fn_arg;
};

static int pool_optout(struct store *s, void *rd, void *job) {
  struct optout_job *j = job;
  const struct store_optout_reads *r = &s->be->read.optout;
  if (r->stop_each == NULL) return KK_ESTORE;
  const char *phone = j->has_phone ? j->phone : NULL;
  if (j->consents) return r->consent_each(s, rd, j->account_id, phone, j->cfn, j->fn_arg);
  return r->stop_each(s, rd, j->account_id, phone, j->after, j->limit, j->sfn, j->fn_arg);
}

static struct optout_job *job_new(int64_t account_id, const char *phone) {
  struct optout_job *j = kk_xcalloc(1, sizeof *j);   /* freed by the pool after done */
  j->account_id = account_id;
  if (phone) {
    snprintf(j->phone, sizeof j->phone, "%s", phone);
    j->has_phone = 1;
  }
  return j;
}

void store_stop_each_async(struct store *s, int64_t account_id, const char *phone,
                           const char *after, int limit, store_stop_fn fn, void *fn_arg,
                           store_done_cb done, void *arg) {
  struct optout_job *j = job_new(account_id, phone);
  snprintf(j->after, sizeof j->after, "%s", after ? after : "");
  j->limit = limit;
  j->sfn = fn;
  j->fn_arg = fn_arg;
  store_pool_run(s, pool_optout, j, done, arg);
}

void store_consent_each_async(struct store *s, int64_t account_id, const char *phone,
                              store_consent_fn fn, void *fn_arg, store_done_cb done, void *arg) {
  struct optout_job *j = job_new(account_id, phone);
  j->consents = 1;
  j->cfn = fn;
  j->fn_arg = fn_arg;
  store_pool_run(s, pool_optout, j, done, arg);
}

struct owned_job {
  int64_t account_id;
  struct store_inbound_owned *out;
  int *n;
};

static int pool_owned(struct store *s, void *rd, void *job) {
  struct owned_job *j = job;
  if (s->be->read.optout.inbound_owned == NULL) return KK_ESTORE;
  return s->be->read.optout.inbound_owned(s, rd, j->account_id, j->out,
                                          STORE_INBOUND_OWNED_MAX, j->n);
}

void store_inbound_owned_async(struct store *s, int64_t account_id,
                               struct store_inbound_owned *out, int *n, store_done_cb done,
                               void *arg) {
  struct owned_job *j = kk_xcalloc(1, sizeof *j);   /* freed by the pool after done */
  j->account_id = account_id;
  j->out = out;
  j->n = n;
  store_pool_run(s, pool_owned, j, done, arg);
}

/* ---- unsubscribe links ---------------------------------------------------------- */

static void on_unsub_put(void *arg, int rc) {
  (void)arg;
  if (rc) kk_error(LOGCTX, "an unsubscribe link was not recorded: %s", kk_strerror(rc));
}

void store_unsub_put(struct store *s, const char *code, int64_t account_id, const char *phone) {
  struct store_unsub *u = kk_xcalloc(1, sizeof *u);   /* freed with the op */
  snprintf(u->code, sizeof u->code, "%s", code);
  u->account_id = account_id;
  snprintf(u->phone, sizeof u->phone, "%s", phone);
  u->at = store_now_ms();
  store_submit(s, store_atomic(store_op_of(s, STORE_OP_UNSUB_PUT, on_unsub_put, NULL, u, 0)));
}

struct unsub_job {
  char code[STORE_UNSUB_CODE_MAX];
  int64_t *account;
  char *phone;
};

static int pool_unsub(struct store *s, void *rd, void *job) {
  struct unsub_job *j = job;
  if (s->be->read.optout.unsub_get == NULL) return KK_ESTORE;
  return s->be->read.optout.unsub_get(s, rd, j->code, j->account, j->phone);
}

void store_unsub_get_async(struct store *s, const char *code, int64_t *account, char phone[16],
                           store_done_cb done, void *arg) {
  struct unsub_job *j = kk_xcalloc(1, sizeof *j);   /* freed by the pool after done */
  snprintf(j->code, sizeof j->code, "%s", code);
  j->account = account;
  j->phone = phone;
  store_pool_run(s, pool_unsub, j, done, arg);
}
