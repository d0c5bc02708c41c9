/*
 * accept.h - the one way in. Every ingress (the HTTP API today; the SMPP
 * server, SMTP, file batches and campaign planning later) parses its own
 * protocol into accept items and hands them to accept_submit(), which for
 * each message:
 *
 *   normalises the number (phone/), classifies it (class, validity),
 *   renders the text (the template hook: today the text as given), works
 *   out encoding and segments, resolves a saved cascade and the SMS route,
 *   applies the account's senders and countries and then the policy chain
 *   (accept_check_add), and stores the messages that pass in one operation
 *   (one group commit).
 *
 * done runs after that commit with a result per item: stored, duplicate (an
 * idempotent repeat), mismatch (the key names another request) or refused
 * with a code. What happens after the commit (sending) is handed out by the
 * store's notes, not by the ingress. Everything runs on the loop thread.
 */
#ifndef ACCEPT_H
#define ACCEPT_H

#include <stddef.h>
#include <stdint.h>

#include "accept/accept_rand.h"
#include "store/store.h"

struct dispatch;
struct cascade;
struct accept_rules;
struct store_contact;
struct store_link_new;

#define ACCEPT_MAX_TEXT 4096                 /* bytes of a message's text */
#define ACCEPT_MIN_TTL_MS (30LL * 1000)
#define ACCEPT_MAX_TTL_MS (7LL * 24 * 3600 * 1000)
#define ACCEPT_MAX_CHECKS 16

/* Why a message was refused. status is the class of the refusal in HTTP's
   numbers, which other ingress map to theirs: 422 refused as given, 503
   could pass later (no route yet). */
struct accept_err {
  int status;
  const char *code;          /* e.g. "invalid_phone"; NULL: not refused */
  const char *field;         /* the field it is about, or NULL */
  char message[256];
};

enum accept_result {
  ACCEPT_PENDING = 0,        /* not decided yet */
  ACCEPT_STORED,             /* stored; m describes it */
  ACCEPT_DUPLICATE,          /* a repeat of a message stored within 24 h (m.dup_*) */
  ACCEPT_MISMATCH,           /* its key was used for another request (err, m.dup_public_id) */
  ACCEPT_REFUSED,            /* err says why; nothing stored */
};

/* One message. The ingress fills the first part (strings borrowed until
   done, or until accept_prepare returns); accept fills the rest. */
struct accept_item {
  const char *to;            /* the number as given; NULL: none (a channel
                                address in extra instead) */
  const char *text;
  size_t text_len;
  const char *msg_class;     /* service | transactional | advertising; NULL: service */
  const char *sender;        /* NULL: the account's or the route's default */
  const char *callback_url;  /* NULL: none (the ingress checks where it leads) */
  const char *idem_key;      /* NULL: none */
  long long ttl_ms;          /* 0: the class's default */
  const char *cascade;       /* steps text (store_steps_format); NULL: SMS alone */
  const char *cascade_name;  /* a saved cascade instead; NULL: none */
  const char *extra;         /* per-channel parts as JSON; NULL: none */
  const void *extra_doc;     /* json_t *: the parts as an object, when the ingress
                                has them so (a template's rendering reads them
                                instead of extra); NULL: none */
  const char *campaign;      /* NULL: none */
  int variant;               /* the campaign's variant + 1 (its runner's); 0: none */
  int dry;                   /* a trial (accept_req.dry): judged, not stored nor counted */
  int64_t send_at;           /* goes out then (stored scheduled; the policy
                                judges it at that time); 0: now */
  int window_from, window_to;   /* goes out inside [from, to) of the recipient's
                                   local time (minutes of the day; equal: any
                                   time): from send_at on, or now */
  /* a send by template (accept_render_template): the template's name and
     its variables (an object; NULL: none) instead of text */
  const char *template_name;
  const void *vars;          /* json_t * */
  char *tpl_text, *tpl_extra;   /* owned: rendered; freed by accept_item_fini */
  char *rules_extra;         /* owned: extra with the policy's quiet hours; freed by
                                accept_item_fini */
  char *digest_extra;        /* owned: the rendered extra with every channel's text,
                                when tpl_extra leaves out those that are the text
                                itself (the idempotency digest's); freed by
                                accept_item_fini */
  /* the recipient's contact, read before (on the store's pool) by the
     ingress: its fields fill what vars does not; NULL: the contact hook */
  const struct store_contact *contact;
  /* the recipient's own time zone (IANA) as its ingress knows it: its
     contact's explicit one; "": none (the quiet hours then go by the
     numbering register's zone for the number, else the policy's) */
  char zone[64];
  /* tracked links (accept_links.h): an ingress that wants the message's
     URLs made short links (a campaign's runner) sets track_links (and
     variant above) */
  int track_links;
  struct store_link_new *links;   /* owned: the links made; freed by accept_item_fini */
  int nlinks;
  /* out */
  enum accept_result result; /* the ingress may set REFUSED (with err) itself */
  struct accept_err err;
  struct store_msg_new m;    /* the message as stored; a duplicate's dup_* fields */
  /* what m borrows */
  char public_id[40];
  char e164[24];
  char route[64];
  char steps[1024];
  char req_hash[65];
  char decisions[768];       /* the policy's decisions as a JSON array ("": none) */
};

/* Everything the policy chain sees of a message about to be stored. */
struct accept_view {
  const struct store_account *account;
  const struct store_msg_new *msg;  /* number, sender, rendered text, class, cascade, ... */
};
/*
 * A policy check (consent, stop-lists, caps, content rules): pure, no I/O.
 * Returns 0 to let the message pass, or nonzero with err's code, field and
 * message set (status defaults to 422).
 */
typedef int (*accept_check_fn)(void *ud, const struct accept_view *v, struct accept_err *err);

/* The accept module's state: what it reads and the policy chain. */
struct accept {
  struct store *store;
  struct dispatch *dispatch;   /* the SMS routes */
  struct cascade *cascade;     /* channel settings (the SMS default sender); may be NULL */
  long long ttl_ms[3];         /* service, transactional, advertising */
  struct accept_check {
    const char *name;
    accept_check_fn fn;
    void *ud;
  } checks[ACCEPT_MAX_CHECKS];
  int nchecks;
  /* The contact hook of templates: the value of field name (name,
     attrs.city, ...) of the account's contact with number e164, or NULL.
     The contacts module sets it; NULL: no contacts. */
  const char *(*contact_field)(void *ud, int64_t account_id, const char *e164,
                               const char *name);
  void *contact_ud;
  /* The account's rules (accept_rules.h), applied after the chain; NULL:
     none. */
  struct accept_rules *rules;
  /* kaskad's public URL, for the {{unsubscribe}} link (accept_optout.h);
     NULL: the placeholder stays as written. */
  const char *public_url;
  /* the random bytes of message ids, drawn a block at a time */
  struct accept_rand rand;
};

/* Sets up a (zeroed or not) accept. */
void accept_init(struct accept *ac, struct store *store, struct dispatch *dispatch,
                 struct cascade *cascade, const long long ttl_ms[3]);
/* Appends a check to the policy chain (run in the order added). 0 or
   KK_ENOSPC past ACCEPT_MAX_CHECKS. */
int accept_check_add(struct accept *ac, const char *name, accept_check_fn fn, void *ud);

/* Runs the policy chain on m of account acc: 0, or nonzero with err's code
   (the first check that refused). */
int accept_checks_run(const struct accept *ac, const struct store_account *acc,
                      const struct store_msg_new *m, struct accept_err *err);

/* A request: one message or a batch, of one account. */
struct accept_req {
  int64_t account_id;
  struct accept_item *items;
  int n;
  /* Runs after the commit (or at once when nothing was left to store);
     rc is 0, or KK_ESTORE when the store failed and nothing was stored. */
  void (*done)(void *ud, struct accept_req *r, int rc);
  void *ud;
  /* A trial (a campaign's dry run): every check made as for real, nothing
     stored and nothing counted (caps, decisions); an item that would be
     stored ends ACCEPT_STORED with m as it would be (segments, cascade,
     not_before), without a message. */
  int dry;
  /* accept's own (zero them) */
  struct accept *ac;
  struct store_msg_new *msgs;
  int *msg_item;
  int nmsgs;
};

/*
 * Accepts r (which must stay alive until done). Returns 0 when done will
 * run (it may have run already), KK_EAGAIN when the store cannot be written
 * now, KK_ENOENT when the account does not exist: then nothing was done
 * and done does not run.
 */
int accept_submit(struct accept *ac, struct accept_req *r);

/*
 * The part of accepting one message that needs nothing but the message:
 * number, class, validity, rendered text, encoding and segments, public id
 * and the idempotency digest, into it->m. route is the SMS route chosen for
 * the account ("" none). 0, or KK_EINVAL with it->err (result REFUSED).
 */
int accept_prepare(struct accept *ac, int64_t account_id, const char *route, int64_t now,
                   struct accept_item *it);

/*
 * accept_prepare's checks of one message's fields, one at a time, for an
 * ingress that reports the first problem in the order of its own fields
 * (the HTTP API checks each field where its request lists it; accept_prepare
 * runs them again, in its order, on what passed). Each is 0, or KK_EINVAL
 * with it->err (result REFUSED).
 */
/* 1 when the message has an SMS step as given (a saved cascade's steps are
   looked at later: 0 for a message that names one). */
int accept_item_sms(const struct accept_item *it);
/* The number as given, into it->e164; with sms, one is required. */
int accept_check_number(struct accept_item *it, int sms);
/* The text: not empty, at most ACCEPT_MAX_TEXT bytes, valid UTF-8, and
   (sms) at most SMS_MAX_PARTS segments; sets m.encoding and m.segments. */
int accept_check_text(struct accept_item *it, int sms);
/* The class: service, transactional, advertising (NULL: service). */
int accept_check_class(struct accept_item *it);

/* ---- templates (accept_tpl.c) ------------------------------------------ */

/*
 * The template hook: renders it->template_name of account_id with it->vars
 * for every step of steps (store_steps_format text; NULL or "": SMS alone).
 * The SMS step gets the sms variant (or the text), each other step its own
 * variant: it->text becomes the SMS text (or the first step's when the
 * cascade has no SMS step), and it->extra gains "texts" {channel: text} (a
 * channel whose text is it->text left out, unless a text has a link) and
 * the rich parts the template gives (image, button, subject,
 * whatsapp_template) that the message does not give itself. Variables come
 * from vars, then the contact hook (struct accept.contact_field). 0, or
 * KK_EINVAL with it->err: unknown_template, missing_variable (its name in
 * the message), text_too_long, invalid_text.
 */
int accept_render_template(const struct accept *ac, int64_t account_id, const char *steps,
                           struct accept_item *it);
/* A contact's fields as template variables: name, email, phone, timezone,
   operator, region, vk_id, telegram_chat_id, viber_id, and its attributes
   (attrs.city or city). accept_contact_var has the shape of struct
   tmpl_vars.contact with arg a struct accept_contact_vars; values live
   until accept_contact_vars_fini. */
struct accept_contact_vars {
  const struct store_contact *c;
  void *attrs;              /* json_t *: parsed on first use, owned */
  void *texts;              /* json_t *: numbers as text, owned */
};
const char *accept_contact_var(void *arg, const char *name);
void accept_contact_vars_fini(struct accept_contact_vars *v);

/* Frees what accept_render_template allocated in it. */
void accept_item_fini(struct accept_item *it);

/* Message classes, in the order of ttl_ms. */
extern const char *const accept_classes[3];

#endif
