/*
 * api.h - the HTTP API: routing, authentication, JSON in and out.
 *
 * The handlers validate input, call the store or, for sends, accept/
 * (answering after the commit), and shape the answers. Caches the API holds
 * (keys, suspended accounts) follow the store's notes. Errors are
 * {"error":{"code":"...","message":"...","field":"..."}} with a fitting status.
 * Unknown JSON fields are ignored (SPEC: channels ignore the parts they cannot
 * show), so newer clients work against older servers.
 */
#ifndef API_H
#define API_H

#include <jansson.h>
#include <stdint.h>
#include <uv.h>

#include "accept/accept.h"
#include "core/kk_buf.h"
#include "core/kk_rate.h"
#include "core/kk_hold.h"
#include "store/store.h"

struct http_req;
struct store;
struct dispatch;
struct callback;

/* The API key cache: SHA-256 of every active key -> account id, with the
   key's request bucket. */
struct api_keys {
  size_t cap;                /* power of two */
  size_t n;                  /* used slots, revoked ones included */
  struct api_key_slot {
    uint8_t hash[32];
    int64_t account_id;      /* 0: empty slot; -1: a revoked key's (skipped) */
    struct kk_bucket bucket;
  } *slots;
};

/* Per-account request buckets, for the accounts whose keys have been used
   (so at most one entry per account). */
struct api_accts {
  size_t cap;                /* power of two */
  size_t n;
  struct api_acct {
    int64_t id;              /* 0: empty slot */
    struct kk_bucket bucket;
  } *slots;
};

/* Which listener a request came to (http_req_listener). */
enum { API_LISTENER_PUBLIC = 0, API_LISTENER_ADMIN = 1 };

struct api {
  uv_loop_t *loop;
  struct store *store;
  struct dispatch *dispatch;
  struct callback *callback; /* NULL when stopped */
  struct cascade *cascade;   /* NULL when stopped */
  char admin_key[256];       /* empty: no operator key */
  long long ttl_ms[3];       /* service, transactional, advertising */
  int ready;                 /* /healthz answers 200 */
  int draining;              /* new sends get 503 */
  int admin_split;           /* 1: the operator API and /metrics are served only on
                                the admin listener, the rest only on the public one */
  struct api_keys keys;
  uint64_t http_by_class[6]; /* answers by status class 1xx..5xx */
  uint64_t accepted;         /* messages acknowledged */
  uint64_t rejected;         /* messages refused by validation */
  uint64_t duplicates;       /* idempotent repeats */
  long hook_rate;            /* provider webhook requests per second per scope */
  struct kk_rate *hook_limit; /* their token buckets; made by the first webhook */
  uint64_t hooks_limited;    /* webhook requests answered 429 */
  /* abuse controls (api_guard.c) */
  struct kk_limit rate_key;      /* per API key */
  struct kk_limit rate_account;  /* per account, over all its keys */
  struct api_accts accts;
  struct kk_hold hold;       /* suspended accounts; dispatch and cascade read it */
  uint64_t rate_limited;     /* requests answered 429 */
  uint64_t retention_deleted;  /* messages the retention job deleted */
  struct api_retention *retention;  /* NULL: off */
  int subscribed;            /* takes the store's notes (api_init .. api_stop) */
  struct accept accept;      /* the way in for sends (set up by api_init) */
};

/* Loads the key cache and subscribes to the store's notes; 0, KK_ESTORE or
   KK_ENOSPC. */
int api_init(struct api *a);
/* Stops taking the store's notes (before the store closes). */
void api_stop(struct api *a);
/* Frees the caches (and stops, if api_stop was not called). */
void api_fini(struct api *a);
/* The http_server handler. */
void api_handle(void *ud, struct http_req *req);
/* The http_server pre-check: authenticates, refuses suspended accounts and
   requests over the rate limits before the body is read. */
void api_precheck(void *ud, struct http_req *req);

/* ---- abuse controls (api_guard.c) ---------------------------------------- */

/* The bucket of an account (made on first use). */
struct kk_bucket *api_acct_bucket(struct api_accts *t, int64_t account_id);
/* Starts the periodic deletion of finished messages older than
   retention_ms (0: off). Stop it with api_retention_stop() before the
   store closes. */
void api_retention_start(struct api *a, long long retention_ms);
void api_retention_stop(struct api *a);
/* GET /v1/accounts/{id}/keys (acc: that account). */
void api_keys_list(struct api *a, struct http_req *req, const struct store_account *acc);
/* DELETE /v1/keys/{prefix}: the operator (account_id 0) or an account key
   for its own account's keys. */
void api_key_revoke(struct api *a, struct http_req *req, int64_t account_id, const char *prefix);
struct api_err;
/* Parses a "senders" or "countries" value of an account into its JSON text
   (cap bytes). 0, or -1 with e. */
int api_senders_parse(json_t *v, char *out, size_t cap, struct api_err *e);
int api_countries_parse(json_t *v, char *out, size_t cap, struct api_err *e);

/* Route configuration (PUT /v1/routes/NAME and [route NAME] sections). */
struct dispatch_route_cfg;
int api_route_cfg_parse(json_t *obj, const char *name, struct dispatch_route_cfg *cfg,
                        char *err, size_t errcap);

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
void api_json(struct http_req *req, int status, json_t *doc, const char *extra_headers);
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
  char *extra;               /* malloc'd per-channel parts JSON, or NULL */
};
/* Message statuses in the order of a message's life. */
#define API_MSG_NSTATUSES 10
extern const char *const api_msg_statuses[API_MSG_NSTATUSES];

/* Frees what api_msg_parse allocated in it. */
void api_msg_item_fini(struct api_msg_item *it);

/*
 * Reads one message object of POST /v1/messages into it for accept/ (no
 * I/O): the JSON's shapes and the fields only HTTP has (the key's header,
 * callback URLs). Strings in it borrow from o and from p. Returns 0, or -1
 * with p->err naming the code, field and reason.
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
void api_campaign_report(struct api *a, struct http_req *req, int64_t account_id,
                         const char *campaign);

/* Cascades and channels (api_cascade.c). */
/* Validates cascade steps into normalised JSON text (out, cap). 0 or -1 with e. */
int api_cascade_parse(json_t *v, char *out, size_t cap, struct api_err *e);
/* 1 when the steps JSON has a step on channel. */
int api_cascade_has(const char *steps, const char *channel);
/* Validates vk_id, telegram_chat_id, viber_id, email, image, button,
   whatsapp_template, code, subject into a JSON text (*out malloc'd, NULL when
   none); *has_address says whether a channel id was given. 0 or -1 with e. */
int api_extra_parse(json_t *o, char **out, int *has_address, struct api_err *e);
int api_valid_email(const char *s);
/* An amount in 1/10000 units as a JSON number. */
json_t *api_money(int64_t units);
void api_channels(struct api *a, struct http_req *req, int admin, int64_t account_id,
                  const char *channel);
void api_prices(struct api *a, struct http_req *req, int admin, int64_t account_id);
void api_cascades(struct api *a, struct http_req *req, int64_t account_id, const char *name);
void api_hooks(struct api *a, struct http_req *req, const char *channel, const char *scope);

/* Handlers. id is the path segment after the collection, or NULL. */
void api_messages_post(struct api *a, struct http_req *req, int64_t account_id, int batch);
void api_messages_get(struct api *a, struct http_req *req, int64_t account_id, const char *id);
void api_messages_list(struct api *a, struct http_req *req, int64_t account_id);
void api_replies_list(struct api *a, struct http_req *req, int64_t account_id);
void api_accounts(struct api *a, struct http_req *req, const char *id, const char *sub);
void api_account_self(struct api *a, struct http_req *req, int64_t account_id);
void api_routes(struct api *a, struct http_req *req, const char *name);
void api_metrics(struct api *a, struct kk_buf *out);

#endif
