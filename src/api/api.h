/*
 * api.h - the HTTP API: routing, authentication, JSON in and out.
 *
 * The handlers validate input, call the store or, for sends, accept/
 * (answering after the commit), and shape the answers. Caches the API holds
 * (keys, suspended accounts) follow the store's notes. Errors are
 * {"error":{"code":"...","message":"...","field":"..."}} with a fitting status.
 * Unknown JSON fields are ignored (SPEC: channels ignore the parts they cannot
 * show), so newer clients work against older servers.
 *
 * This header is what the daemon's wiring needs; what the api files share
 * among themselves is in api_int.h.
 */
#ifndef API_H
#define API_H

#include <jansson.h>
#include <stdint.h>
#include <uv.h>

#include "accept/accept.h"
#include "accept/accept_rules.h"
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

struct phone_plan;
struct dispatch_hlr;
struct camp_runner;
struct api_links;

#define API_DRY_RUNS 2   /* campaigns' dry runs at once */

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
  uint64_t reports_kept;     /* campaign reports answered from the kept one */
  uint64_t reports_read;     /* campaign reports read from the store (refreshes too) */
  struct api_retention *retention;  /* NULL: off */
  int subscribed;            /* takes the store's notes (api_init .. api_stop) */
  struct accept accept;      /* the way in for sends (set up by api_init) */
  const struct phone_plan *plan;  /* the numbering register; NULL: none */
  struct dispatch_hlr *hlr;  /* HLR/MNP lookups; NULL: none */
  /* contact bases (api_contacts.c): CSV imports under the data folder
     (NULL: no imports, e.g. without a data folder) */
  struct contact_imports *imports;
  size_t max_import;         /* bytes of an import's body (setting max_import) */
  int camp_batch;            /* recipients of a campaign planned at a time (setting
                                campaign_batch; 0: CAMP_PLAN_BATCH) */
  int test_clock;            /* POST /v1/test/clock may move the clock (setting test_clock) */
  struct accept_rules rules; /* the accounts' rules, applied by accept */
  const struct pol_window *quiet_default;  /* setting quiet_hours; NULL: 21:00-09:00 */
  char public_url[300];      /* where people reach kaskad (unsubscribe links) */
  struct camp_runner *camp_runner;  /* campaigns (api_camp_run.c); NULL: stopped */
  struct api_links *links;   /* tracked links' clicks (api_links.c); made by the first */
  struct report_memos *report_memo;  /* running campaigns' last reports (api_campaigns.c);
                                        made by the first report read, freed by api_fini */
  /* campaigns' dry runs going on (api_camp_dry.c): each holds its audience
     while it runs, so at most API_DRY_RUNS at once, one per account */
  int64_t dry_accounts[API_DRY_RUNS];
  int ndry;
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

/* Starts the periodic deletion of finished messages older than
   retention_ms (0: off). Stop it with api_retention_stop() before the
   store closes. */
void api_retention_start(struct api *a, long long retention_ms);
void api_retention_stop(struct api *a);

/* Route configuration (PUT /v1/routes/NAME and [route NAME] sections). */
struct dispatch_route_cfg;
int api_route_cfg_parse(json_t *obj, const char *name, struct dispatch_route_cfg *cfg,
                        char *err, size_t errcap);

#endif
