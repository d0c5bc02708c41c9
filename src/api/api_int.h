/*
 * api_int.h - what the api files share: the route table's call and handler
 * types, the JSON helpers, the key cache and the handlers of each resource.
 * Not for use outside src/api (and the unit tests and fuzzers of the API).
 */
#ifndef API_INT_H
#define API_INT_H

#include "api/api.h"
#include "core/kk_arena.h"
#include "http/http_router.h"

/* ---- the route table (api.c) ------------------------------------------------ */

/* Who may call a route: a mask of these. */
enum {
  API_PUBLIC = 1,    /* anyone, at the route's exact path (probes, scrapes) */
  API_PROVIDER = 2,  /* channel providers, who sign their requests their own way */
  API_ACCOUNT = 4,   /* an account's key */
  API_OPERATOR = 8,  /* the operator key */
};
#define API_KEYED (API_ACCOUNT | API_OPERATOR)

struct api_route;

/* One request on its way through a route: made when the request is first
   seen (the pre-check, or api_handle), and freed with its arena when the
   HTTP request ends (http_req_on_end: answered and sent, or its client
   gone). A handler that answers later (after a store commit, an async
   read) may keep using the call and its arena until it answers; everything
   it allocates for the request goes in the arena. */
struct api_call {
  struct api *a;
  struct http_req *req;
  int admin;                 /* the operator's key */
  int64_t account_id;        /* the account's key (0: the operator or none) */
  const struct http_match *m;  /* the path's parameters (&match) */
  struct store_account *acc; /* the {id} account that api_account_check found */
  struct kk_arena arena;
  /* the route, matched once a request */
  int routed;                /* route and res are set */
  const struct api_route *route;   /* NULL: no endpoint */
  int res;                   /* enum http_route_result */
  struct http_match match;
  void *route_state;         /* a route's own, left by its pre-check (NULL: none) */
};

/* Counts an answer by its status class (/metrics); api_respond calls it. */
void api_count_status(struct http_req *req, int status);
/* Every answer of the API: counted (api_count_status), then http_respond. */
void api_respond(struct http_req *req, int status, const char *content_type, const char *body,
                 size_t len, const char *extra_headers);

/* A route's handler answers the request (now or later). A check runs before
   the method is looked at, for the answers that come before a 405 (an
   unknown resource, a service that is stopping): 0 to go on, or nonzero when
   it has answered. */
typedef void (*api_handler_fn)(struct api_call *c);
typedef int (*api_check_fn)(struct api_call *c);

struct api_route {
  struct http_route r;       /* method and pattern (first: see http_router.h) */
  unsigned caller;           /* API_PUBLIC, ... */
  api_handler_fn fn;
  api_check_fn check;        /* NULL: none */
};

/* The path parameter name ("id", "channel", "name", ...) or NULL. */
const char *api_param(const struct api_call *c, const char *name);
/* The request body as a JSON object, released with the call's arena; NULL
   when the body was refused (answered 400). */
json_t *api_call_body(struct api_call *c);
/* Has the call's arena release doc (a reference the caller owned); returns doc. */
json_t *api_call_own(struct api_call *c, json_t *doc);
/* Answers 404 not_found "no such endpoint" (a route handler). */
void api_not_found(struct api_call *c);

/* ---- abuse controls (api_guard.c) ---------------------------------------- */

/* The bucket of an account (made on first use). */
struct kk_bucket *api_acct_bucket(struct api_accts *t, int64_t account_id);
/* GET /v1/accounts/{id}/keys (acc: that account). */
void api_keys_list(struct api_call *c);
/* DELETE /v1/keys/{prefix}: the operator (account_id 0) or an account key
   for its own account's keys. */
void api_key_revoke(struct api_call *c);
struct api_err;
/* Parses a "senders" or "countries" value of an account into its JSON text
   (cap bytes). 0, or KK_EINVAL with e. */
int api_senders_parse(json_t *v, char *out, size_t cap, struct api_err *e);
int api_countries_parse(json_t *v, char *out, size_t cap, struct api_err *e);
/* Parses a "roaming_ads" value (defer, drop, allow; "send" for allow; null
   for the default) into the account's stored form ("" for defer). 0, or
   KK_EINVAL with e (invalid_roaming_ads). */
int api_roaming_ads_parse(json_t *v, char *out, size_t cap, struct api_err *e);
/* The account's roaming_ads as shown: defer, drop or allow. */
#define API_ROAMING_ADS(acc) ((acc)->roaming_ads[0] ? (acc)->roaming_ads : "defer")

/* ---- shared by the api_*.c files ----------------------------------------- */

struct api_err {
  int status;
  const char *code;
  const char *field;         /* NULL if not about one field */
  char fieldbuf[48];         /* storage for a field name made on the fly */
  char message[256];
};

void api_error(struct http_req *req, int status, const char *code, const char *field,
               const char *fmt, ...) __attribute__((format(printf, 5, 6)));
void api_error_from(struct http_req *req, const struct api_err *e);
/* {"code","message","field"} of e, its text made valid UTF-8 (new reference). */
json_t *api_err_json(const struct api_err *e);
/* Answers 405 method_not_allowed with "Allow: allow" (e.g. "GET, PUT"). */
void api_not_allowed(struct http_req *req, const char *allow);
/* Answers with a JSON document (steals the reference). A NULL doc or one
   that cannot be serialised (a string that is not UTF-8) answers a fixed
   500 internal error instead, and is logged. */
/* doc as an answer's body: compact JSON and a newline, *len bytes (steals
   doc). Owned by the caller (free); NULL when doc is NULL or cannot be written. */
char *api_json_text(json_t *doc, size_t *len);
void api_json(struct http_req *req, int status, json_t *doc, const char *extra_headers);
/* Answers 200 with a page of a listing: {key: rows, "next_cursor": next as
   a string, or null when 0}. Takes rows. */
void api_json_page(struct http_req *req, const char *key, json_t *rows, int64_t next);
/* Answers with a status and no body (e.g. 204). */
void api_empty(struct http_req *req, int status);
/* Formats ms since the epoch as 2026-11-23T21:04:05.123Z. */
void api_time(int64_t ms, char out[32]);
/* Parses an ISO 8601 UTC time or ms since the epoch; 0 or KK_EINVAL. */
int api_parse_time(const char *s, int64_t *ms);
/* Parses the request body as a JSON object; answers 400 and returns NULL. */
json_t *api_body_json(struct http_req *req);

void api_keys_add(struct api_keys *k, const uint8_t hash[32], int64_t account_id);
int64_t api_keys_find(const struct api_keys *k, const uint8_t hash[32]);
/* The active key's slot or NULL. */
struct api_key_slot *api_keys_slot(const struct api_keys *k, const uint8_t hash[32]);
/* Drops a key from the cache (a revoked key). */
void api_keys_del(struct api_keys *k, const uint8_t hash[32]);

/* What parsing one message of a send request keeps beside its accept
   item: the refusal and the storage the item borrows. */
struct api_msg_item {
  struct api_err err;        /* err.code set: refused as parsed */
  char cascade[1024];        /* normalised steps ("" = SMS alone) */
  char cascade_name[64];     /* a saved cascade to resolve ("" = none) */
  json_t *extra_doc;         /* the per-channel parts as parsed (owned), or NULL: none */
  char *extra;               /* malloc'd: extra_doc's JSON text for a message of
                                text (a template's rendering writes its own), or NULL */
  const char *steps_given;   /* the cascade's steps as checked before (a campaign's,
                                once for all its messages), borrowed; NULL: "cascade"
                                is parsed */
  /* a send by template: whose templates (set before api_msg_parse) */
  const struct accept *ac;
  int64_t account_id;
  const struct store_contact *contact;   /* the recipient's, read before; NULL: none */
};
/* Message statuses in the order of a message's life. */
#define API_MSG_NSTATUSES 10
extern const char *const api_msg_statuses[API_MSG_NSTATUSES];

/* ---- templates (api_templates.c) ------------------------------------------ */
int api_template_check(struct api_call *c);
void api_templates_list(struct api_call *c);
void api_template_get(struct api_call *c);
void api_template_put(struct api_call *c);
void api_template_delete(struct api_call *c);
void api_template_preview(struct api_call *c);
/* A message's "template" and "vars" (p->ac, p->account_id: whose): rendered
   into it for its cascade. 0, or KK_EINVAL with p->err. */
int api_msg_template(json_t *o, struct api_msg_item *p, struct accept_item *it);
/* An accept/ refusal of it as p's (api_messages.c). KK_EINVAL. */
int api_accept_refused(struct api_msg_item *p, const struct accept_item *it);

/* Frees what api_msg_parse allocated in it. */
void api_msg_item_fini(struct api_msg_item *it);

/*
 * Reads one message object of POST /v1/messages into it for accept/ (no
 * I/O): the JSON's shapes and the fields only HTTP has (the key's header,
 * callback URLs). Strings in it borrow from o and from p. Returns 0, or
 * KK_EINVAL with p->err naming the code, field and reason.
 */
int api_msg_parse(json_t *o, const char *idem_header, struct api_msg_item *p,
                  struct accept_item *it);

/* What an SMS sender may be, as error messages say it. */
#define API_SENDER_RULE \
  "up to 11 Latin letters, digits and punctuation, or a number of up to 15 digits"
/* 1 when s is an SMS sender (alphanumeric, or a number with an optional
   '+'): per message and as an account's default alike. */
int api_valid_sender(const char *s);

/* Campaigns (api_campaigns.c). */
/* What a campaign name may be, as error messages say it. */
#define API_CAMPAIGN_RULE "1 to 64 of the characters A-Z a-z 0-9 _ - ."
/* 1 when s (len bytes) is a campaign name: 1 to STORE_CAMPAIGN_MAX of
   A-Z a-z 0-9 _ - . */
int api_campaign_valid(const char *s, size_t len);
void api_campaign_report(struct api_call *c);
/* Forgets campaign's kept report (a change through the API: its next
   report is read afresh). */
void api_campaign_memo_forget(struct api *a, int64_t account_id, const char *campaign);
/* Frees the running campaigns' kept reports; reads still under way find
   none and keep nothing. */
void api_campaign_memo_free(struct api *a);
/* Campaigns as objects (api_camps.c; api_camp.h). */
void api_camps_list(struct api_call *c);
void api_camp_get(struct api_call *c);
void api_camp_put(struct api_call *c);
void api_camp_start(struct api_call *c);
void api_camp_pause(struct api_call *c);
void api_camp_resume(struct api_call *c);
void api_camp_cancel(struct api_call *c);
void api_camp_recipients(struct api_call *c);
void api_camp_recipients_csv(struct api_call *c);
void api_camp_dry_run(struct api_call *c);
/* The account's price of one unit of channel, its own over the operator's (0: none). */
int64_t api_price_of(struct api_call *c, const char *channel);

/* Cascade steps and per-channel parts (api_steps.c). */
/* Validates cascade steps into normalised JSON text (out, cap). 0 or KK_EINVAL with e. */
int api_cascade_parse(json_t *v, char *out, size_t cap, struct api_err *e);
/* The wait levels of a step, in order, and the CHAN_* report bit of one. */
extern const char *const api_waits[3];
unsigned api_wait_bit(const char *w);
/* 1 when the steps JSON has a step on channel. */
int api_cascade_has(const char *steps, const char *channel);
/* Validates vk_id, telegram_chat_id, viber_id, email, image, button,
   whatsapp_template, code, subject into a JSON object (*out new, the caller
   owns it; NULL when none); *has_address says whether a channel id was
   given. 0 or KK_EINVAL with e. */
int api_extra_parse(json_t *o, json_t **out, int *has_address, struct api_err *e);
int api_valid_email(const char *s);
/* Fills e (status, code, field copied into e->fieldbuf, message) and
   returns KK_EINVAL: the refusal of a validator. */
int api_refuse(struct api_err *e, int status, const char *code, const char *field,
               const char *fmt, ...) __attribute__((format(printf, 5, 6)));
/* Prices and costs are kept in 1/10000 units. */
#define API_MONEY_SCALE 10000.0
/* An amount in 1/10000 units as a JSON number. */
json_t *api_money(int64_t units);

/* Balances and the calculator (api_money.c). Takes "billing" and
   "credit_limit" of a PATCH of account_id: 0 (queued, or absent), or
   nonzero having answered 422. */
int api_money_patch(struct api_call *c, json_t *doc, int64_t account_id);
/* Answers 200 with doc (taken) and the account's balance fields. */
void api_money_answer_account(struct api_call *c, int64_t account_id, json_t *doc);
void api_balance_topup(struct api_call *c);
void api_account_transactions(struct api_call *c);
void api_calculator(struct api_call *c);

/* Route handlers and checks, by resource. */
int api_channel_check(struct api_call *c);
void api_channels_list(struct api_call *c);
void api_channel_get(struct api_call *c);
void api_channel_put(struct api_call *c);
void api_channel_delete(struct api_call *c);
void api_prices_get(struct api_call *c);
void api_prices_put(struct api_call *c);
int api_cascade_check(struct api_call *c);
void api_cascades_list(struct api_call *c);
void api_cascade_get(struct api_call *c);
void api_cascade_put(struct api_call *c);
void api_cascade_delete(struct api_call *c);
int api_hook_check(struct api_call *c);
void api_hook(struct api_call *c);
void api_messages_post(struct api_call *c);
void api_number_get(struct api_call *c);
/* api_policy.c */
void api_policy_get(struct api_call *c);
void api_policy_put(struct api_call *c);
void api_test_clock(struct api_call *c);
void api_messages_batch(struct api_call *c);
void api_messages_get(struct api_call *c);
void api_messages_cancel(struct api_call *c);
void api_messages_list(struct api_call *c);
void api_replies_list(struct api_call *c);
int api_account_check(struct api_call *c);
void api_account_create(struct api_call *c);
void api_account_get(struct api_call *c);
void api_account_patch(struct api_call *c);
void api_account_key_create(struct api_call *c);
void api_account_self(struct api_call *c);
void api_routes_list(struct api_call *c);
void api_route_get(struct api_call *c);
void api_route_put(struct api_call *c);
void api_route_delete(struct api_call *c);
/* GET /v1/nodes (operator): the nodes of the store and the work each holds. */
void api_nodes_list(struct api_call *c);
void api_metrics(struct api *a, struct kk_buf *out);

/* Contact bases (api_contacts.c, api_contacts_io.c). */
/* The pre-check of an import: the body goes to a file as it arrives. */
void api_contacts_import_precheck(struct api_call *c);
void api_contacts_import(struct api_call *c);
void api_import_get(struct api_call *c);
void api_import_errors_csv(struct api_call *c);
void api_contacts_list(struct api_call *c);
void api_contacts_csv(struct api_call *c);
void api_lists_get(struct api_call *c);
/* segments (api_segments.c) */
void api_segment_get(struct api_call *c);
void api_segment_put(struct api_call *c);
void api_segment_delete(struct api_call *c);
void api_segments_list(struct api_call *c);
void api_contact_get(struct api_call *c);
void api_contact_put(struct api_call *c);
void api_contact_patch(struct api_call *c);
void api_contact_delete(struct api_call *c);

#endif
