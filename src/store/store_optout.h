/*
 * store_optout.h - the stop-list and the consent records in the store, and
 * the copy of both that the policy checks read in memory.
 *
 * Tables (both backends): stoplist(account_id, phone, reason, channel,
 * created_at), one row per listed phone of an account; consents, one row
 * per consent given (phone, channel or "all", source, the text shown, IP,
 * when given, when recorded) that stays as proof after it is withdrawn
 * (withdrawn_at, withdrawn_by).
 *
 * In memory (loop thread): two policy/pol_set.h maps, (account, phone) ->
 * the stop reason and -> the mask of channels with a current consent,
 * filled when the store opens and kept by the notes of each commit
 * (STORE_NOTE_STOP, STORE_NOTE_CONSENT), so that the accept path's checks
 * answer without I/O. Several nodes on one PostgreSQL: a node learns of a
 * change made by another only when the notes of that commit reach it (the
 * nodes' notification channel); until then it holds what it read at open
 * and its own writes.
 */
#ifndef STORE_OPTOUT_H
#define STORE_OPTOUT_H

#include <stdint.h>

#include "store/store.h"

#define STORE_STOP_BATCH_MAX 5000     /* phones of one stop-list write */
#define STORE_STOP_PAGE_MAX 1000      /* entries of one listing page */
#define STORE_CONSENT_TEXT_MAX 4096   /* bytes of the text shown */

/* ---- the stop-list --------------------------------------------------------- */

/* One phone listed (reason one of pol_stop.h's names) or removed (reason
   ""). withdraw: the listing also withdraws the phone's current consents
   (an opt-out by reply or link), by `reason`. */
struct store_stop_row {
  char phone[16];
  char reason[16];
  char channel[20];         /* where the stop came from ("" none) */
  int withdraw;
};
/* A write of the stop-list (caller-owned, alive until done; one savepoint:
   all or nothing). changed (out): the rows that changed something (a
   removal of a phone not listed changes nothing). */
struct store_stop_batch {
  int64_t account_id;
  int64_t at;
  struct store_stop_row *rows;
  int n;                    /* at most STORE_STOP_BATCH_MAX */
  int changed;
};
void store_stop_write(struct store *s, struct store_stop_batch *b, store_done_cb done, void *arg);

/* Loop thread: the reason (pol_stop.h) phone (E.164 digits) of account_id
   is listed for, 0 when it is not. */
unsigned store_stop_reason(struct store *s, int64_t account_id, const char *phone);

struct store_stop_entry {
  char phone[16];
  char reason[16];
  char channel[20];
  int64_t at;
};
typedef int (*store_stop_fn)(void *arg, const struct store_stop_entry *e);
/* Pool: fn for each entry of account_id in phone order after `after` (""
   first), at most limit (<= 0: all); phone non-NULL: that one alone.
   fn returns 0 to go on, nonzero to stop (rc). */
void store_stop_each_async(struct store *s, int64_t account_id, const char *phone,
                           const char *after, int limit, store_stop_fn fn, void *fn_arg,
                           store_done_cb done, void *arg);

/* ---- consents --------------------------------------------------------------- */

/* One consent record. */
struct store_consent {
  int64_t id;
  char phone[16];
  char channel[16];         /* "all" or a channel (pol_consent.h) */
  char source[128];
  char *text;               /* the text shown; malloc'd by a read, the caller's in a write */
  char ip[64];
  int64_t at;               /* when it was given */
  int64_t recorded_at;
  int64_t withdrawn_at;     /* 0: current */
  char withdrawn_by[32];    /* api | reply | link | complaint ... */
};

/* A consent given (withdraw 0: c is recorded) or withdrawn (withdraw 1:
   the phone's current consents for c.channel, all of them for "all",
   become withdrawn at c.at by c.withdrawn_by), or a bulk record (n > 0:
   each of rows is recorded, c unused; one transaction). Caller-owned,
   alive until done. done: 0, or KK_ENOENT (withdraw: none was current).
   A contact of the phone follows: its consent becomes yes while one is
   current, no when the last one is withdrawn. */
struct store_consent_op {
  int64_t account_id;
  int withdraw;
  struct store_consent c;
  int64_t now;
  struct store_consent *rows;   /* bulk: the caller's, at most STORE_CONSENT_BULK_MAX */
  int n;
};
#define STORE_CONSENT_BULK_MAX 50000   /* records of one bulk write */
void store_consent_write(struct store *s, struct store_consent_op *op, store_done_cb done,
                         void *arg);

/* The record a contact's `consent` yes stands for (contact imports, PUT
   and PATCH of a contact): every channel, its consent_source (default
   "import"), its consent_at (default, or one in the future: now). */
struct store_contact;
void store_consent_of_contact(const struct store_contact *c, int64_t now,
                              struct store_consent *out);

/* Loop thread: the mask of channels (pol_consent.h) with a current consent. */
uint32_t store_consent_mask(struct store *s, int64_t account_id, const char *phone);

typedef int (*store_consent_fn)(void *arg, const struct store_consent *c);
/* Pool: fn for each consent record of account_id (phone non-NULL: of that
   phone), in (phone, id) order. */
void store_consent_each_async(struct store *s, int64_t account_id, const char *phone,
                              store_consent_fn fn, void *fn_arg, store_done_cb done, void *arg);

/* ---- inbound numbers and bots (operator) ------------------------------------ */

#define STORE_INBOUND_OWNED_MAX 100   /* numbers and bots of one account */

/* An inbound number (kind "number": E.164 digits or a sender name, as the
   SMSC gives it) or the operator's bot of a channel (kind "bot": vk, viber,
   telegram, whatsapp) that belongs to an account: a person's message to it
   is that account's. */
struct store_inbound_owned {
  char kind[8];
  char address[72];
};
/* Replaces account_id's numbers and bots with rows[0..n) (n 0: none); one
   that another account had becomes this one's. Caller-owned, alive until
   done; all or nothing. */
struct store_inbound_set {
  int64_t account_id;
  int64_t at;
  const struct store_inbound_owned *rows;
  int n;
};
void store_inbound_set_write(struct store *s, struct store_inbound_set *set, store_done_cb done,
                             void *arg);
/* Pool: account_id's numbers and bots into out (at most
   STORE_INBOUND_OWNED_MAX, *n of them), by kind and address. */
void store_inbound_owned_async(struct store *s, int64_t account_id,
                               struct store_inbound_owned *out, int *n, store_done_cb done,
                               void *arg);

/* ---- unsubscribe links ------------------------------------------------------- */

#define STORE_UNSUB_CODE_MAX 40   /* bytes of a code, with its NUL */

/* Queues recording that code (an advertising text's {{unsubscribe}} link)
   stands for phone of account_id; a code already recorded stays as it is.
   Everything is copied. */
void store_unsub_put(struct store *s, const char *code, int64_t account_id, const char *phone);
/* Pool: the account and phone of code into *account and phone; done rc 0,
   or KK_ENOENT for a code never recorded. */
void store_unsub_get_async(struct store *s, const char *code, int64_t *account, char phone[16],
                           store_done_cb done, void *arg);

/* ---- what the store and a backend share (store_int.h) ---------------------- */

#define STORE_OP_LIST_OPTOUT(XX)                                               \
  XX(STOP_WRITE)        /* struct store_stop_batch, the caller's */            \
  XX(CONSENT_WRITE)     /* struct store_consent_op, the caller's */          \
  XX(INBOUND_SET)       /* struct store_inbound_set, the caller's */         \
  XX(UNSUB_PUT)         /* struct store_unsub, the store's */

/* Writer thread: what attributing a person's message (store_inbound_attribute)
   looks up. Each returns 0 (found), KK_ENOENT (none) or KK_ESTORE.
     assigned         the account the operator gave an inbound number
                      (kind "number", its digits or name) or the operator's
                      bot of a channel (kind "bot", the channel) to
     last_to_phone    the account (account 0: any) whose message last went to
                      phone since `since` (on route, when not NULL), and it
     last_to_user     the same for a messenger's user id on channel, with the
                      phone of that message
     contact_of_user  the phone of account's contact with that messenger id
     policy_doc       the account's policy document (malloc'd)
     outbox_add       a row for the callback deliverer (0 or KK_ESTORE) */
struct store_inbound_hit {
  int64_t account, msg;     /* the message's account and id */
  char message[40];         /* its public id */
  char phone[16];           /* last_to_user: its recipient's phone */
};
struct store_inbound_lookups {
  int (*assigned)(struct store *s, const char *kind, const char *address, int64_t *account);
  int (*last_to_phone)(struct store *s, const char *phone, const char *route, int64_t account,
                       int64_t since, struct store_inbound_hit *hit);
  int (*last_to_user)(struct store *s, const char *channel, const char *user, int64_t account,
                      int64_t since, struct store_inbound_hit *hit);
  int (*contact_of_user)(struct store *s, int64_t account, const char *channel,
                         const char *user, char phone[16]);
  /* the account's policy document (GET /v1/policy; malloc'd), for its words */
  int (*policy_doc)(struct store *s, int64_t account, char **doc);
  /* an outbox row of account's to url with its own payload (about message
     msg, 0: none) due at `at`: the callback deliverer sends it */
  int (*outbox_add)(struct store *s, int64_t account, int64_t msg, const char *url,
                    const char *payload, int64_t at);
};

/* UNSUB_PUT's data. */
struct store_unsub {
  char code[STORE_UNSUB_CODE_MAX];
  int64_t account_id;
  char phone[16];
  int64_t at;
};

/* The reads: at open on the loop thread (every entry; every current
   consent), and in the pool through rd (arguments as above). */
struct store_optout_reads {
  struct store_inbound_lookups inbound;   /* on the writer thread */
  int (*inbound_owned)(struct store *s, void *rd, int64_t account_id,
                       struct store_inbound_owned *out, int max, int *n);
  int (*unsub_get)(struct store *s, void *rd, const char *code, int64_t *account,
                   char phone[16]);
  int (*stop_all)(struct store *s,
                  void (*fn)(void *arg, int64_t account_id, const char *phone, const char *reason),
                  void *arg);
  int (*consent_all)(struct store *s,
                     void (*fn)(void *arg, int64_t account_id, const char *phone,
                                const char *channel),
                     void *arg);
  int (*stop_each)(struct store *s, void *rd, int64_t account_id, const char *phone,
                   const char *after, int limit, store_stop_fn fn, void *arg);
  int (*consent_each)(struct store *s, void *rd, int64_t account_id, const char *phone,
                      store_consent_fn fn, void *arg);
};

/* The copy in memory (store_optout.c): made and filled at open, freed at
   close; the notes applied on the loop thread. */
struct store_optout;
struct store_optout *store_optout_new(void);
void store_optout_free(struct store_optout *o);
int store_optout_fill(struct store *s);
void store_optout_apply(struct store *s, const struct store_note *notes, int n);
/* How many days back a person's message looks for the account whose
   message it answers. */
#define STORE_INBOUND_DAYS 30

/* Who a person's message belongs to (store_inbound_attribute). */
struct store_inbound_owner {
  int64_t account;          /* 0: none (kept for the operator, listed to no account) */
  int64_t msg;              /* the message it answers, 0 if none */
  char message[40];         /* its public id, "" if none */
  char phone[16];           /* the person's phone, "" when none was found */
  const char *by;           /* "number", "bot", "last_message" or NULL (no account) */
};
/* Writer thread, in the INBOUND write: the account d belongs to, by the
   number or bot it was sent to (the account's own settings: d->scope; an
   assignment by the operator), else by the message that phone (or that
   messenger user) received last within STORE_INBOUND_DAYS; and the
   person's phone (a messenger user's: the recipient of that message, else
   the account's contact with that id). 0 or KK_ESTORE. */
struct store_inbound_data;
int store_inbound_attribute(struct store *s, const struct store_inbound_data *d,
                            struct store_inbound_owner *o);

/* Writer thread, inside the INBOUND write that attributed d to o->account
   (store_inbound_attribute): with the account's policy (pol_words.h), a
   stop word lists o->phone (reason reply) and withdraws its consents, a
   start word removes it; a stop, start or help word makes a
   STORE_NOTE_OPTOUT_REPLY note (cfg->name the phone, cfg->text
   "stop|start|help channel[ user]", at the message's time) for the answer;
   and with a replies_webhook, the reply goes to the outbox for it. Without
   a phone nothing is listed. 0 or the write's error. */
int store_optout_inbound(struct store *s, const struct store_inbound_data *d,
                         const struct store_inbound_owner *o);
/* Writer thread: a commit's note of phone's new stop reason (0: removed)
   or consent mask. */
void store_optout_note_stop(struct store *s, int64_t account_id, const char *phone,
                            const char *reason);
void store_optout_note_consent(struct store *s, int64_t account_id, const char *phone,
                               uint32_t mask);

#endif
