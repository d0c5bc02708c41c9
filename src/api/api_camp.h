/*
 * api_camp.h - campaigns as objects (api_camps.c: PUT, GET, the list, start,
 * pause, resume, cancel, recipients), their runner (api_camp_run.c: the
 * audience read and planned at start, and the messages made as recipients
 * come due), the dry run (api_camp_dry.c) and the recipients' export
 * (api_camp_csv.c). The report is api_campaigns.c's.
 */
#ifndef API_CAMP_H
#define API_CAMP_H

#include <jansson.h>
#include <stdint.h>

#include "campaign/camp_plan.h"
#include "store/store.h"
#include "store/store_campaign.h"

struct api;
struct api_err;
struct api_msg_item;
struct accept_item;

#define CAMP_VARIANTS_MAX 10
#define CAMP_PHONES_MAX 10000       /* phones given in the audience itself */
#define CAMP_RECIPIENTS_MAX 2000000 /* recipients of one campaign */
#define CAMP_PLAN_BATCH 10000       /* recipients read, planned and stored at a time (at most:
                                       setting campaign_batch) */

/* A campaign's settings as PUT gives them (strings borrow from the JSON). */
struct camp_spec {
  const char *list, *segment;  /* the audience: one of these, or phones */
  json_t *phones;              /* array of strings (borrowed) or NULL */
  int nvariants;
  struct { const char *tmpl; double share; } variants[CAMP_VARIANTS_MAX];
  json_t *cascade;             /* array or string (borrowed), or NULL: SMS alone */
  char steps[1024];            /* an array's steps as checked (store_steps_format), so
                                  that its messages need not parse it again; "" else */
  const char *msg_class, *sender;
  int64_t start_at, end_at;    /* 0: now / no end */
  struct pol_window window;    /* from == to: any time */
  int per_minute;
  int64_t spread_ms;
};

/* Reads and checks o (the body of PUT /v1/campaigns/{name}). 0, or
   KK_EINVAL with e (422, a code and the field). */
int camp_spec_parse(json_t *o, struct camp_spec *sp, struct api_err *e);
/* The variant of campaign name's seq-th recipient (1 on, in the order the
   audience is planned): the same every time, and the variants' shares held
   to within a few recipients at any count (see api_camps.c). */
int camp_variant_of(const struct camp_spec *sp, const char *name, int64_t seq);

/* A campaign's audience as read (camp_audience_read: the contacts of its
   list or segment, or its given phones with their contacts' fields, on the
   store's pool), then planned (camp_audience_plan, off the loop): all of it
   (the dry run), or a batch of it (the runner: from where the last batch
   ended, up to limit). */
struct camp_audience {
  char after[16];             /* in: the contacts after this phone (""; from the first);
                                 out: the last one read */
  size_t from;                /* given phones: in, from this one on; out: after the last read */
  size_t limit;               /* at most this many (0: CAMP_RECIPIENTS_MAX); more: there were */
  int more;
  int count_only;             /* only counted (n): nothing else kept */
  size_t n, cap;
  char (*phone)[16];
  const char **tz;            /* each one of zones */
  char **zones;               /* the distinct time zones (owned): an open-addressing
                                 table of zcap slots, so that a million recipients
                                 in a dozen zones hold a dozen strings */
  size_t nzones, zcap;
  char **vars;                /* owned JSON text: {"v":{variables},"a":{addresses}} */
  struct camp_recipient *r;
  int *variant;
  int64_t seq0;               /* in: the recipients before this batch (its first is seq0 + 1) */
  size_t written;             /* rows stored so far */
  int64_t finish_at;          /* the last planned time */
  long outside;               /* planned by camp_audience_plan_batch: recipients whose
                                 window was closed at the start (outside_window) */
  int full;                   /* stopped at CAMP_RECIPIENTS_MAX */
  const struct phone_plan *pp;  /* given phones: their time zone by number when not a contact's */
  char (*given)[16];          /* given phones, normalised (owned) */
  size_t ngiven;
};
/* Reads sp's audience into p (zeroed but for after, from, limit and
   count_only), then done(arg, rc); p->full when cut at CAMP_RECIPIENTS_MAX,
   p->more when stopped at limit (rc KK_ENOSPC for both). */
void camp_audience_read(struct api *a, int64_t account_id, const struct camp_spec *sp,
                        struct camp_audience *p, store_done_cb done, void *arg);
/* Each recipient's variant and time from now (paced: at sp's rate or
   spread; else each at the first moment its window allows). */
void camp_audience_plan(struct camp_audience *p, const struct camp_spec *sp, const char *name,
                        int64_t now, int paced);
/* A batch of them: gap ms between two sends, taken the instants the
   batches before took (in; out: with this one's; camp_plan_batch). */
void camp_audience_plan_batch(struct camp_audience *p, const struct camp_spec *sp,
                              const char *name, int64_t now, int64_t gap,
                              struct camp_spans *taken);
/* sp's rate or spread as planning options from now. */
struct camp_plan_opts camp_plan_opts_of(const struct camp_spec *sp, int64_t now);
/* Frees p and what it owns (NULL: nothing). */
void camp_audience_free(struct camp_audience *p);

/* The message of recipient x of campaign name (settings sp) as the runner
   gives it to the accept path, as POST /v1/messages would take it: its
   variant's template, class, sender, cascade, variables and addresses, the
   campaign, the idempotency key campaign:{name}:{seq}, and "z": the
   recipient's own zone when its contact has one (not a message field:
   camp_item_of takes it into the item). */
json_t *camp_message_of(const struct camp_spec *sp, const char *name,
                        const struct store_camp_rcpt *x);
/* Reads msg (camp_message_of's for a campaign of settings sp) of account_id
   into p and it (zeroed) for accept_submit as the runner does: the links of
   its texts tracked, under its variant. An item msg does not make is refused
   (ACCEPT_REFUSED, p's error). */
void camp_item_of(struct api *a, const struct camp_spec *sp, int64_t account_id, json_t *msg,
                  int variant, struct api_msg_item *p, struct accept_item *it);

/* The runner: started with the API, stopped before the store closes. */
void api_camp_run_start(struct api *a);
void api_camp_run_stop(struct api *a);
/* A campaign was started or resumed: look now rather than at the next tick. */
void api_camp_run_kick(struct api *a);
/* Campaign name of account_id was paused or cancelled (committed): the
   runner gives no further slice of its batch in hand to the accept path
   (those given finish), and the planner plans no further batch of it. */
void api_camp_run_halt(struct api *a, int64_t account_id, const char *name);

#endif
