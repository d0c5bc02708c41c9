/*
 * api_camp_run.c - what runs the campaigns (api_camp.h). A timer starts a
 * pass over the campaigns that are planning or running; each is held by
 * this process for a while (a lease in its row, so that of several nodes
 * on one PostgreSQL one works on it at a time) and then:
 *
 *   planning: the planner (below) reads its audience a batch at a time
 *   (the contacts on a pool thread, in phone order), plans each batch off
 *   the loop (camp_plan_batch: each recipient's time in its window, at the
 *   rate carried over the whole campaign; its variant) and stores it with
 *   where the planning then is, so that memory stays bounded whatever the
 *   audience, a restart goes on from the last batch stored, and the
 *   recipients planned so far are sent (as below) while the rest is
 *   planned; after the last batch it runs.
 *
 *   running: the recipients due now, a batch at a time, become messages
 *   through the one way in (accept_submit, as POST /v1/messages/batch),
 *   each with the idempotency key campaign:{name}:{seq}, so that a batch
 *   made again after a crash gets the messages it made before instead of
 *   new ones. Each recipient is then created (with its message) or
 *   rejected (with the refusal's code); one refused for no route (a route
 *   down or missing for now) is planned again later, up to NO_ROUTE_TRIES
 *   times, and then rejected. Past end_at the planned ones expire; with
 *   none planned left, it is done.
 *
 * One step is under way at a time, and beside it one batch of the planner.
 * Pause and cancel take effect at once: the API tells the runner
 * (api_camp_run_halt), which gives no further slice of the batch in hand
 * to the accept path (those given finish; the rest stay as the store has
 * them: planned after a pause, cancelled after a cancel); each batch reads
 * the campaign's status again, and the planner's batch is stored only
 * while the campaign is planning.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "accept/accept_rules.h"
#include "api/api_camp.h"
#include "api/api_int.h"
#include "core/kk_err.h"
#include "core/kk_json.h"
#include "core/kk_log.h"
#include "core/kk_mem.h"
#include "phone/phone.h"
#include "phone/phone_plan.h"
#include "store/store_campaign.h"
#include "store/store_contact.h"

#define LOGCTX "campaign"
#define TICK_MS 500
#define LEASE_MS 30000
#define ACTIVE_MAX 64
#define DEFAULT_TZ "Europe/Moscow"
#define NO_ROUTE_TRIES 5          /* refusals for no route before a recipient is rejected */
#define NO_ROUTE_WAIT_MS 15000    /* the first wait after one; doubled each time */
#define SLICE 100                 /* recipients given to the accept path at a time */
#define SLICES_AHEAD 5            /* slices given and not yet answered, at most: a
                                     commit's messages (and the loop's turn with
                                     their sends) stay as a batch of 500 made them */

/* A batch of the planning: read, planned, then stored. */
struct pl_batch {
  struct camp_audience *aud;
  struct camp_spans taken;      /* the send instants taken with it (owned) */
  struct store_camp_rcpt *rows;
  struct store_camp_op op;
};

/* The campaign being planned (see the planner below). */
struct camp_planner {
  int busy, halt, rc;
  int64_t account_id;
  char name[STORE_CAMPAIGN_MAX + 1];
  struct store_campaign camp;   /* as read at the start */
  json_t *specdoc;
  struct camp_spec spec;
  /* where the batches planned so far leave it */
  int64_t seq, gap;
  struct camp_spans taken;      /* the send instants they took (owned) */
  char after[16];
  size_t from;
  struct pl_batch *reading;     /* being read, then planned */
  struct pl_batch *ready;       /* planned, to be stored after the one being stored */
  struct pl_batch *writing;     /* being stored */
  uv_work_t work;
};

struct camp_runner {
  struct api *a;
  uv_timer_t timer;
  uv_work_t work;
  int busy, stopping, closed;
  char owner[40];
  struct store_camp_ref refs[ACTIVE_MAX];
  int nrefs, at;
  /* the campaign in hand */
  struct store_campaign camp;
  json_t *specdoc;
  struct camp_spec spec;
  struct store_camp_op op;
  int64_t lease_fresh;              /* until then the lease in hand needs no renewal */
  /* a batch of due recipients */
  struct store_camp_rcpt rows[STORE_CAMP_BATCH];
  int nrows;
  int64_t next;
  json_t *msgs;
  struct api_msg_item parsed[STORE_CAMP_BATCH];
  struct accept_item items[STORE_CAMP_BATCH];
  /* the batch goes to the accept path a slice at a time (see make_slice) */
  struct accept_req reqs[STORE_CAMP_BATCH / SLICE];
  int nreqs, made, inflight, failed, acc_rc;
  int halted;                       /* paused or cancelled since read_camp: no more slices */
  json_t *built[SLICE];             /* the slice's messages, made off the loop */
  uv_work_t slice_work;
  int building;                     /* slice_work is queued */
  struct camp_planner pl;
};

static void next_camp(struct camp_runner *r);
static void skip(struct camp_runner *r);

/* ---- the pass ------------------------------------------------------------------- */

static void finish_pass(struct camp_runner *r) {
  r->busy = 0;
  if (r->closed && !r->pl.busy) free(r);
}

static void drop_camp(struct camp_runner *r) {
  store_campaign_fini(&r->camp);
  json_decref(r->specdoc);
  r->specdoc = NULL;
}

static void skip(struct camp_runner *r) {
  drop_camp(r);
  r->at++;
  next_camp(r);
}

/* r->op made ready for a write of kind on the campaign in hand. */
static void op_begin(struct camp_runner *r, enum store_camp_kind kind) {
  memset(&r->op, 0, sizeof r->op);
  r->op.kind = kind;
  r->op.account_id = r->refs[r->at].account_id;
  snprintf(r->op.name, sizeof r->op.name, "%s", r->refs[r->at].name);
}

static void write_op(struct camp_runner *r, enum store_camp_kind kind, store_done_cb done) {
  op_begin(r, kind);
  store_campaign_write(r->a->store, &r->op, done, r);
}

/* The campaign in hand from one of from (",a,b,") to status to; op's
   other fields as set after op_begin (recipients, finish_at). */
static void move_to(struct camp_runner *r, const char *from, const char *to,
                    store_done_cb done) {
  r->op.kind = STORE_CAMP_STATUS;
  r->op.from = from;
  snprintf(r->op.to, sizeof r->op.to, "%s", to);
  store_campaign_write(r->a->store, &r->op, done, r);
}

static void on_any(void *arg, int rc) {
  struct camp_runner *r = arg;
  if (rc) kk_warnx(LOGCTX, "campaign %s: %s", r->refs[r->at].name, kk_strerror(rc));
  if (r->stopping) {
    drop_camp(r);
    finish_pass(r);
    return;
  }
  skip(r);
}

/* None planned left: done (the store checks). */
static void try_done(struct camp_runner *r) {
  op_begin(r, STORE_CAMP_STATUS);
  move_to(r, ",running,", "done", on_any);
}

static void on_expired(void *arg, int rc) {
  struct camp_runner *r = arg;
  if (rc || r->stopping) {
    on_any(r, rc);
    return;
  }
  try_done(r);
}

/* ---- running: a batch of messages ------------------------------------------------ */

static void batch_free(struct camp_runner *r) {
  for (int i = 0; i < r->made; i++) {
    api_msg_item_fini(&r->parsed[i]);
    accept_item_fini(&r->items[i]);
  }
  r->made = r->nreqs = 0;
  json_decref(r->msgs);
  r->msgs = NULL;
  store_camp_rcpt_free(r->rows, r->nrows);
}

static void lease(struct camp_runner *r);
static void on_camp(void *arg, int rc);

/* Reads the runner's current campaign again (paused or cancelled
   meanwhile?) into r->camp, then on_camp. */
static void read_camp(struct camp_runner *r) {
  r->halted = 0;   /* the read sees whatever status a halt committed before */
  store_campaign_get_async(r->a->store, r->refs[r->at].account_id, r->refs[r->at].name, &r->camp,
                           on_camp, r);
}

static void on_set(void *arg, int rc) {
  struct camp_runner *r = arg;
  int full = r->nrows == STORE_CAMP_BATCH && r->made == r->nrows;
  batch_free(r);
  r->nrows = 0;
  if (rc || r->stopping || !full) {
    on_any(r, rc);
    return;
  }
  /* a full batch: more may be due at once; the campaign is read again
     (paused or cancelled meanwhile?), its lease renewed when it has aged */
  drop_camp(r);
  if (store_now_ms() < r->lease_fresh)
    read_camp(r);
  else
    lease(r);
}

static void make_slice(struct camp_runner *r);

/* Whether a slice of the batch in hand is still to be given. */
static int more_slices(const struct camp_runner *r) {
  return r->made < r->nrows && !r->failed && !r->halted && !r->stopping;
}

/* Every slice given to the accept path is answered: the recipients of
   those accepted are set (created, rejected or planned again later); those
   of a slice the accept path could not take stay planned. */
static void on_accepted(void *ud, struct accept_req *req, int rc) {
  struct camp_runner *r = ud;
  (void)req;
  r->inflight--;
  if (rc) r->acc_rc = rc;
  if (more_slices(r) && !r->building) make_slice(r);
  if (r->inflight > 0 || r->building || more_slices(r))
    return;   /* a slice is still answered, built or to make */
  if (r->halted && r->made < r->nrows)
    kk_info(LOGCTX, "campaign %s: paused or cancelled: %d of the batch's %d recipients given,"
            " the rest left", r->refs[r->at].name, r->made, r->nrows);
  if (r->acc_rc || r->stopping || r->made == 0) {
    rc = r->acc_rc;
    batch_free(r);
    r->nrows = 0;
    on_any(r, rc);
    return;
  }
  int64_t now = store_now_ms();
  for (int i = 0; i < r->made; i++) {   /* the rest (not given) stays planned */
    struct store_camp_rcpt *x = &r->rows[i];
    const struct accept_item *it = &r->items[i];
    x->message[0] = x->reason[0] = '\0';
    const char *code = r->parsed[i].err.code ? r->parsed[i].err.code : it->err.code;
    if (it->result == ACCEPT_STORED || it->result == ACCEPT_DUPLICATE) {
      snprintf(x->status, sizeof x->status, "created");
      snprintf(x->message, sizeof x->message, "%s",
               it->result == ACCEPT_STORED ? it->m.public_id : it->m.dup_public_id);
    } else if (code && strcmp(code, "no_route") == 0 && x->tries < NO_ROUTE_TRIES) {
      /* a route down or missing for now: again later */
      snprintf(x->status, sizeof x->status, "planned");
      snprintf(x->reason, sizeof x->reason, "%s", code);
      x->planned_at = now + ((int64_t)NO_ROUTE_WAIT_MS << x->tries);
      x->tries++;
    } else {
      snprintf(x->status, sizeof x->status, "rejected");
      snprintf(x->reason, sizeof x->reason, "%s", code ? code : "refused");
    }
  }
  op_begin(r, STORE_CAMP_SET);
  r->op.rows = r->rows;
  r->op.n = r->made;
  store_campaign_write(r->a->store, &r->op, on_set, r);
}

json_t *camp_message_of(const struct camp_spec *sp, const char *name,
                        const struct store_camp_rcpt *x) {
  int v = x->variant >= 0 && x->variant < sp->nvariants ? x->variant : 0;
  char key[128];
  snprintf(key, sizeof key, "campaign:%s:%lld", name, (long long)x->seq);
  json_t *m = json_pack("{s:s, s:s, s:s, s:s, s:s}", "to", x->phone, "template",
                        sp->variants[v].tmpl, "class", sp->msg_class, "campaign", name,
                        "idempotency_key", key);
  if (sp->sender) json_object_set_new(m, "sender", json_string(sp->sender));
  if (sp->cascade) json_object_set(m, "cascade", sp->cascade);
  json_t *vars = x->vars ? json_loads(x->vars, 0, NULL) : NULL;
  if (json_is_object(vars)) {
    json_t *vv = json_object_get(vars, "v"), *aa = json_object_get(vars, "a");
    if (json_is_object(vv) && json_object_size(vv) > 0) json_object_set(m, "vars", vv);
    if (json_is_object(aa)) json_object_update(m, aa);
    json_t *z = json_object_get(vars, "z");
    if (json_is_string(z)) json_object_set(m, "z", z);   /* camp_item_of takes it out */
  }
  json_decref(vars);
  return m;
}

void camp_item_of(struct api *a, const struct camp_spec *sp, int64_t account_id, json_t *msg,
                  int variant, struct api_msg_item *p, struct accept_item *it) {
  p->ac = &a->accept;
  p->account_id = account_id;
  /* msg's cascade is sp's, checked when sp was read */
  p->steps_given = sp->steps[0] ? sp->steps : NULL;
  /* the recipient's own zone, for its quiet hours (not a message field) */
  char zone[sizeof it->zone] = "";
  const char *z = json_string_value(json_object_get(msg, "z"));
  if (z) {
    snprintf(zone, sizeof zone, "%s", z);
    json_object_del(msg, "z");
  }
  if (api_msg_parse(msg, NULL, p, it) != 0) it->result = ACCEPT_REFUSED;
  memcpy(it->zone, zone, sizeof zone);
  /* its texts' URLs become tracked links as it is accepted (accept_links.h) */
  it->track_links = 1;
  it->variant = variant + 1;
}

/* Off the loop: the messages of the next slice (pure JSON of the rows). */
static void slice_build(uv_work_t *w) {
  struct camp_runner *r = w->data;
  int n = r->nrows - r->made < SLICE ? r->nrows - r->made : SLICE;
  for (int i = 0; i < n; i++)
    r->built[i] = camp_message_of(&r->spec, r->camp.name, &r->rows[r->made + i]);
}

/* The slice built: read and given to the accept path on the loop, then the
   next one built. A batch of STORE_CAMP_BATCH goes in slices so that the
   loop turns (and answers, e.g., a report) between them. */
static void slice_made(uv_work_t *w, int status) {
  struct camp_runner *r = w->data;
  r->building = 0;
  struct api *a = r->a;
  int from = r->made, n = r->nrows - from < SLICE ? r->nrows - from : SLICE;
  if (status != 0 || r->stopping || r->halted) {
    for (int i = 0; i < n; i++) json_decref(r->built[i]);
    r->failed = 1;
    r->inflight++;   /* answered at once below */
    on_accepted(r, NULL, 0);
    return;
  }
  for (int i = 0; i < n; i++) json_array_append_new(r->msgs, r->built[i]);
  struct accept_req *q = &r->reqs[r->nreqs];
  *q = (struct accept_req){.account_id = r->refs[r->at].account_id, .items = r->items + from,
                           .n = n, .done = on_accepted, .ud = r};
  /* cleared a slice at a time: the whole batch's items are megabytes */
  memset(r->parsed + from, 0, sizeof r->parsed[0] * (size_t)n);
  memset(r->items + from, 0, sizeof r->items[0] * (size_t)n);
  for (int i = from; i < from + n; i++)
    camp_item_of(a, &r->spec, q->account_id, json_array_get(r->msgs, (size_t)i),
                 r->rows[i].variant, &r->parsed[i], &r->items[i]);
  r->made += n;
  r->inflight++;
  if (accept_submit(&a->accept, q) != 0) {
    /* the store cannot be written now, or the account is gone: these and
       the rest later */
    for (int i = from; i < from + n; i++) {
      api_msg_item_fini(&r->parsed[i]);
      accept_item_fini(&r->items[i]);
    }
    r->made = from;
    r->failed = 1;
    on_accepted(r, q, 0);
    return;
  }
  r->nreqs++;
  if (more_slices(r) && !r->building && r->inflight < SLICES_AHEAD)
    make_slice(r);   /* else on_accepted makes it */
}

static void make_slice(struct camp_runner *r) {
  r->slice_work.data = r;
  r->building = 1;
  uv_queue_work(r->a->loop, &r->slice_work, slice_build, slice_made);
}

static void make_batch(struct camp_runner *r) {
  r->msgs = json_array();
  r->made = r->nreqs = r->inflight = r->failed = r->acc_rc = 0;
  make_slice(r);
}

static void on_due(void *arg, int rc) {
  struct camp_runner *r = arg;
  if (rc || r->stopping || r->halted) {   /* halted: paused or cancelled meanwhile */
    store_camp_rcpt_free(r->rows, r->nrows);
    r->nrows = 0;
    on_any(r, rc);
    return;
  }
  if (r->nrows == 0) {
    if (r->next == 0) try_done(r);
    else skip(r);
    return;
  }
  make_batch(r);
}

/* ---- planning ------------------------------------------------------------------- */

void camp_audience_free(struct camp_audience *p) {
  if (p == NULL) return;
  for (size_t i = 0; i < p->n; i++) free(p->vars[i]);
  for (size_t i = 0; i < p->zcap; i++) free(p->zones[i]);
  free(p->zones);
  free(p->phone);
  free(p->tz);
  free(p->vars);
  free(p->r);
  free(p->variant);
  free(p->given);
  free(p);
}

/* The slot of zone tz in a table of cap slots (a power of two): its own, or
   the empty one where it goes. */
static size_t zone_slot(char **zones, size_t cap, const char *tz) {
  uint32_t h = 2166136261u;   /* FNV-1a */
  for (const char *c = tz; *c; c++) h = (h ^ (unsigned char)*c) * 16777619u;
  size_t i = h & (cap - 1);
  while (zones[i] && strcmp(zones[i], tz) != 0) i = (i + 1) & (cap - 1);
  return i;
}

/* tz as one of p's zones (added when new). */
static const char *zone_of(struct camp_audience *p, const char *tz) {
  if (2 * (p->nzones + 1) > p->zcap) {
    size_t cap = p->zcap ? 2 * p->zcap : 64;
    char **z = kk_xcalloc(cap, sizeof *z);   /* freed by camp_audience_free */
    for (size_t i = 0; i < p->zcap; i++)
      if (p->zones[i]) z[zone_slot(z, cap, p->zones[i])] = p->zones[i];
    free(p->zones);
    p->zones = z;
    p->zcap = cap;
  }
  size_t i = zone_slot(p->zones, p->zcap, tz);
  if (p->zones[i] == NULL) {
    p->zones[i] = kk_xstrdup(tz);
    p->nzones++;
  }
  return p->zones[i];
}

static void plan_add(struct camp_audience *p, const char *phone, const char *tz, char *vars) {
  if (p->n == p->cap) {
    p->cap = p->cap ? 2 * p->cap : 1024;
    p->phone = kk_xrealloc(p->phone, p->cap * sizeof *p->phone);
    p->tz = kk_xrealloc(p->tz, p->cap * sizeof *p->tz);
    p->vars = kk_xrealloc(p->vars, p->cap * sizeof *p->vars);
  }
  snprintf(p->phone[p->n], sizeof p->phone[p->n], "%s", phone);
  p->tz[p->n] = zone_of(p, tz && tz[0] ? tz : DEFAULT_TZ);
  p->vars[p->n] = vars;
  p->n++;
}

/* Pool thread: one contact of the audience, with what its messages need
   of it (its name and attributes as variables, its messenger ids). */
static int collect(void *arg, const struct store_contact *c) {
  struct camp_audience *p = arg;
  if (p->n >= CAMP_RECIPIENTS_MAX) {
    p->full = 1;
    return KK_ENOSPC;
  }
  if (p->limit && p->n >= p->limit) {
    p->more = 1;
    return KK_ENOSPC;
  }
  snprintf(p->after, sizeof p->after, "%s", c->phone);
  p->from++;
  if (p->count_only) {
    p->n++;
    return 0;
  }
  json_t *v = json_object(), *a = json_object();
  if (c->name[0]) json_object_set_new(v, "name", json_string(c->name));
  json_t *attrs = c->attrs ? json_loads(c->attrs, 0, NULL) : NULL;
  const char *k;
  json_t *x;
  if (json_is_object(attrs))
    json_object_foreach(attrs, k, x) if (json_object_size(v) < 60 &&
                                         (json_is_string(x) || json_is_number(x)))
        json_object_set(v, k, x);
  json_decref(attrs);
  if (c->vk_id[0]) json_object_set_new(a, "vk_id", json_string(c->vk_id));
  if (c->viber_id[0]) json_object_set_new(a, "viber_id", json_string(c->viber_id));
  if (c->telegram_chat_id[0])
    json_object_set_new(a, "telegram_chat_id", json_string(c->telegram_chat_id));
  if (c->email[0]) json_object_set_new(a, "email", json_string(c->email));
  json_t *o = json_pack("{s:o, s:o}", "v", v, "a", a);
  /* a zone of the contact's own, not the register's: its quiet hours too */
  if (c->timezone[0] && strcmp(c->tz_source, "explicit") == 0)
    json_object_set_new(o, "z", json_string(c->timezone));
  const char *tz = c->timezone;
  struct phone_plan_info info = {0};
  if (!tz[0] && p->pp && phone_plan_lookup(p->pp, c->phone, &info) == 0) tz = info.timezone;
  plan_add(p, c->phone, tz, kk_json_dumps(o));
  json_decref(o);
  return 0;
}

struct camp_plan_opts camp_plan_opts_of(const struct camp_spec *sp, int64_t now) {
  return (struct camp_plan_opts){.start_ms = sp->start_at > now ? sp->start_at : now,
                                 .end_ms = sp->end_at, .window = sp->window,
                                 .per_minute = sp->per_minute, .spread_ms = sp->spread_ms};
}

/* Each recipient's variant, and room for its time. */
static void plan_prepare(struct camp_audience *p, const struct camp_spec *sp, const char *name) {
  size_t n = p->n;
  free(p->r);
  free(p->variant);
  p->r = kk_xcalloc(n ? n : 1, sizeof *p->r);
  p->variant = kk_xcalloc(n ? n : 1, sizeof *p->variant);
  for (size_t i = 0; i < n; i++) {
    p->r[i].timezone = p->tz[i];
    p->variant[i] = camp_variant_of(sp, name, p->seq0 + (int64_t)i + 1);
  }
}

static void plan_finish(struct camp_audience *p) {
  p->finish_at = 0;
  for (size_t i = 0; i < p->n; i++)
    if (p->r[i].at > p->finish_at) p->finish_at = p->r[i].at;
}

void camp_audience_plan(struct camp_audience *p, const struct camp_spec *sp, const char *name,
                        int64_t now, int paced) {
  plan_prepare(p, sp, name);
  struct camp_plan_opts o = camp_plan_opts_of(sp, now);
  if (!paced) o.per_minute = 0, o.spread_ms = 0;
  camp_plan(p->r, p->n, &o);
  plan_finish(p);
}

void camp_audience_plan_batch(struct camp_audience *p, const struct camp_spec *sp,
                              const char *name, int64_t now, int64_t gap,
                              struct camp_spans *taken) {
  plan_prepare(p, sp, name);
  struct camp_plan_opts o = camp_plan_opts_of(sp, now);
  o.outside = &p->outside;
  camp_plan_batch(p->r, p->n, &o, gap, taken);
  plan_finish(p);
}

/*
 * The planner: one planning campaign at a time, beside the batches of
 * messages (which go out for its recipients already planned). Its audience
 * is read a batch of campaign_batch at a time from where the last batch
 * ended, planned off the loop at the rate carried from batch to batch, and
 * stored with where the planning then is (one transaction: a restart goes
 * on from the last batch stored, no recipient twice and none skipped);
 * the next batch is read and planned while one is stored, so that at most
 * two are in hand. After a short batch, stored as the last, the campaign
 * runs. A spread over a duration needs the audience's size: counted first,
 * once.
 */
static void pl_read(struct camp_runner *r);

static void batch_drop(struct pl_batch *b) {
  if (b == NULL) return;
  camp_spans_free(&b->taken);
  camp_audience_free(b->aud);
  free(b->rows);   /* their vars belong to aud */
  free(b);
}

static void pl_end(struct camp_runner *r) {
  struct camp_planner *pl = &r->pl;
  if (pl->rc) kk_warnx(LOGCTX, "campaign %s: planning: %s", pl->name, kk_strerror(pl->rc));
  batch_drop(pl->ready);
  pl->ready = NULL;
  store_campaign_fini(&pl->camp);
  json_decref(pl->specdoc);
  pl->specdoc = NULL;
  camp_spans_free(&pl->taken);
  pl->busy = 0;
  if (r->closed && !r->busy) free(r);
}

/* Stops the planning with rc (0: it has ended), once nothing is under way. */
static void pl_settle(struct camp_runner *r, int rc) {
  struct camp_planner *pl = &r->pl;
  pl->halt = 1;
  if (rc && !pl->rc) pl->rc = rc;
  if (!pl->reading && !pl->writing) pl_end(r);
}

static void pl_on_added(void *arg, int rc);

/* Batch b stored; the next one read meanwhile. */
static void pl_write(struct camp_runner *r, struct pl_batch *b) {
  struct camp_planner *pl = &r->pl;
  pl->writing = b;
  store_campaign_write(r->a->store, &b->op, pl_on_added, r);
  if (!b->op.last && !pl->reading && !pl->halt) pl_read(r);
}

static void pl_on_added(void *arg, int rc) {
  struct camp_runner *r = arg;
  struct camp_planner *pl = &r->pl;
  struct pl_batch *b = pl->writing;
  pl->writing = NULL;
  int last = b->op.last, ok = b->op.ok;
  batch_drop(b);
  if (rc || r->stopping || pl->halt || !ok) {   /* no longer planning (cancelled), or not ours */
    pl_settle(r, rc);
    return;
  }
  if (last) {
    kk_info(LOGCTX, "campaign %s: %lld recipients planned", pl->name, (long long)pl->seq);
    pl_settle(r, 0);
    return;
  }
  if (pl->ready) {
    b = pl->ready;
    pl->ready = NULL;
    pl_write(r, b);
  }
}

/* Off the loop: each recipient's time and variant. */
static void pl_work(uv_work_t *w) {
  struct camp_runner *r = w->data;
  struct camp_planner *pl = &r->pl;
  struct pl_batch *b = pl->reading;
  b->aud->seq0 = pl->seq;
  camp_audience_plan_batch(b->aud, &pl->spec, pl->name, store_now_ms(), pl->gap, &b->taken);
}

static void pl_planned(uv_work_t *w, int status) {
  struct camp_runner *r = w->data;
  struct camp_planner *pl = &r->pl;
  struct pl_batch *b = pl->reading;
  struct camp_audience *p = b->aud;
  pl->reading = NULL;
  if (status != 0 || r->stopping || pl->halt) {
    batch_drop(b);
    pl_settle(r, 0);
    return;
  }
  b->rows = kk_xcalloc(p->n ? p->n : 1, sizeof *b->rows);   /* freed by batch_drop */
  /* recipients who wait for their send window to open */
  accept_rules_count_deferred(r->a->accept.rules, "outside_window", (uint64_t)p->outside);
  for (size_t i = 0; i < p->n; i++) {
    struct store_camp_rcpt *x = &b->rows[i];
    x->seq = pl->seq + (int64_t)i + 1;
    snprintf(x->phone, sizeof x->phone, "%s", p->phone[i]);
    x->variant = p->variant[i];
    x->planned_at = p->r[i].at;
    x->vars = p->vars[i];   /* borrowed from the batch for the write */
    snprintf(x->status, sizeof x->status, "%s", p->r[i].at ? "planned" : "expired");
  }
  pl->seq += (int64_t)p->n;
  camp_spans_free(&pl->taken);
  pl->taken = b->taken;   /* the batch's, now the planner's */
  b->taken = (struct camp_spans){0};
  pl->from = p->from;
  snprintf(pl->after, sizeof pl->after, "%s", p->after);
  struct store_camp_op *op = &b->op;
  op->kind = STORE_CAMP_ADD;
  op->account_id = pl->account_id;
  snprintf(op->name, sizeof op->name, "%s", pl->name);
  snprintf(op->owner, sizeof op->owner, "%s", r->owner);
  op->rows = b->rows;
  op->n = (int)p->n;
  op->finish_at = p->finish_at;
  if (pl->spec.phones)
    snprintf(op->plan_after, sizeof op->plan_after, "%zu", p->from);
  else
    snprintf(op->plan_after, sizeof op->plan_after, "%s", p->after);
  op->plan_slot = camp_spans_next(&pl->taken, pl->gap);
  op->plan_gap = pl->gap;
  op->last = !p->more;
  if (p->more && pl->seq >= CAMP_RECIPIENTS_MAX) {
    kk_warnx(LOGCTX, "campaign %s: audience cut at %d recipients", pl->name,
             CAMP_RECIPIENTS_MAX);
    op->last = 1;
  }
  if (pl->writing)
    pl->ready = b;   /* stored after the one being stored */
  else
    pl_write(r, b);
}

static void pl_on_read(void *arg, int rc) {
  struct camp_runner *r = arg;
  struct camp_planner *pl = &r->pl;
  struct pl_batch *b = pl->reading;
  if (rc == KK_ENOSPC && (b->aud->more || b->aud->full)) rc = 0;
  if (rc || r->stopping || pl->halt) {
    pl->reading = NULL;
    batch_drop(b);
    pl_settle(r, rc);
    return;
  }
  pl->work.data = r;
  b->taken = camp_spans_copy(&pl->taken);   /* the worker's own, freed by batch_drop */
  uv_queue_work(r->a->loop, &pl->work, pl_work, pl_planned);
}

/* The next batch of the audience, from where the last one read ended. */
static void pl_read(struct camp_runner *r) {
  struct camp_planner *pl = &r->pl;
  struct pl_batch *b = kk_xcalloc(1, sizeof *b);   /* freed by batch_drop */
  struct camp_audience *p = kk_xcalloc(1, sizeof *p);   /* freed by camp_audience_free */
  b->aud = p;
  pl->reading = b;
  p->from = pl->from;
  snprintf(p->after, sizeof p->after, "%s", pl->after);
  /* up to the campaign's bound (a batch that reaches it is its last) */
  int64_t room = CAMP_RECIPIENTS_MAX - pl->seq;
  int64_t batch = r->a->camp_batch > 0 ? r->a->camp_batch : CAMP_PLAN_BATCH;
  p->limit = (size_t)(room < batch ? (room > 1 ? room : 1) : batch);
  camp_audience_read(r->a, pl->account_id, &pl->spec, p, pl_on_read, r);
}

static void pl_on_counted(void *arg, int rc) {
  struct camp_runner *r = arg;
  struct camp_planner *pl = &r->pl;
  struct pl_batch *b = pl->reading;
  pl->reading = NULL;
  if (rc == KK_ENOSPC && b->aud->full) rc = 0;
  size_t total = b->aud->n;
  batch_drop(b);
  if (rc || r->stopping) {
    pl_settle(r, rc);
    return;
  }
  struct camp_plan_opts o = camp_plan_opts_of(&pl->spec, 0);
  pl->gap = camp_plan_gap(&o, total);
  pl_read(r);
}

static void pl_on_camp(void *arg, int rc) {
  struct camp_runner *r = arg;
  struct camp_planner *pl = &r->pl;
  if (rc || r->stopping || strcmp(pl->camp.status, "planning") != 0) {
    pl_settle(r, rc == KK_ENOENT ? 0 : rc);
    return;
  }
  struct api_err e = {0};
  pl->specdoc = json_loads(pl->camp.spec ? pl->camp.spec : "", 0, NULL);
  if (camp_spec_parse(pl->specdoc, &pl->spec, &e) != 0) {
    pl_settle(r, 0);   /* the runner says why */
    return;
  }
  /* where the last batch stored left it */
  pl->seq = pl->camp.recipients;
  /* after a restart only where the last batch left the clock is known: the
     instants before it count as taken */
  camp_spans_free(&pl->taken);
  pl->taken.floor = pl->camp.plan_slot;
  pl->gap = pl->camp.plan_gap;
  snprintf(pl->after, sizeof pl->after, "%s", pl->spec.phones ? "" : pl->camp.plan_after);
  pl->from = pl->spec.phones ? (size_t)strtoull(pl->camp.plan_after, NULL, 10) : 0;
  struct camp_plan_opts o = camp_plan_opts_of(&pl->spec, 0);
  if (pl->gap >= 0 || o.per_minute > 0 || o.spread_ms <= 0) {
    if (pl->gap < 0) pl->gap = camp_plan_gap(&o, 0);
    pl_read(r);
    return;
  }
  /* a spread: the audience's size first */
  struct pl_batch *b = kk_xcalloc(1, sizeof *b);   /* freed by batch_drop */
  b->aud = kk_xcalloc(1, sizeof *b->aud);   /* freed by camp_audience_free */
  b->aud->count_only = 1;
  pl->reading = b;
  camp_audience_read(r->a, pl->account_id, &pl->spec, b->aud, pl_on_counted, r);
}

/* The planning campaign ref planned, unless the planner has one in hand. */
static void pl_start(struct camp_runner *r, const struct store_camp_ref *ref) {
  struct camp_planner *pl = &r->pl;
  if (pl->busy) return;
  memset(pl, 0, sizeof *pl);
  pl->busy = 1;
  pl->account_id = ref->account_id;
  snprintf(pl->name, sizeof pl->name, "%s", ref->name);
  store_campaign_get_async(r->a->store, pl->account_id, pl->name, &pl->camp, pl_on_camp, r);
}

void camp_audience_read(struct api *a, int64_t account_id, const struct camp_spec *sp,
                        struct camp_audience *p, store_done_cb done, void *arg) {
  if (sp->phones) {
    /* the given phones, each with its contact's fields when it is one */
    size_t i;
    json_t *x;
    p->pp = a->plan;
    p->given = kk_xcalloc(json_array_size(sp->phones) + 1, sizeof *p->given);
    json_array_foreach(sp->phones, i, x) {
      if (phone_normalize(json_string_value(x), p->given[p->ngiven], sizeof p->given[0]) == 0)
        p->ngiven++;
    }
    size_t from = p->from < p->ngiven ? p->from : p->ngiven;
    store_contacts_of_async(a->store, account_id, (const char(*)[16])p->given + from,
                            p->ngiven - from, collect, p, done, arg);
    return;
  }
  store_contacts_from_async(a->store, account_id, sp->list, sp->segment, p->after, collect, p,
                            done, arg);
}

/* ---- one campaign --------------------------------------------------------------- */

static void on_camp(void *arg, int rc) {
  struct camp_runner *r = arg;
  if (rc || r->stopping) {
    on_any(r, rc == KK_ENOENT ? 0 : rc);
    return;
  }
  struct api_err e = {0};
  r->specdoc = json_loads(r->camp.spec ? r->camp.spec : "", 0, NULL);
  if (camp_spec_parse(r->specdoc, &r->spec, &e) != 0) {
    kk_error(LOGCTX, "campaign %s: its settings as stored are unusable: %s", r->camp.name,
             e.message);
    skip(r);
    return;
  }
  int64_t now = store_now_ms();
  int planning = strcmp(r->camp.status, "planning") == 0;
  /* planned a batch at a time by the planner (from where it stopped, after
     a restart), its recipients planned so far sent meanwhile */
  if (planning) pl_start(r, &r->refs[r->at]);
  if (!planning && strcmp(r->camp.status, "running") != 0) {
    skip(r);
  } else if (r->spec.end_at && now >= r->spec.end_at && planning) {
    skip(r);   /* the planner plans the rest expired */
  } else if (r->spec.end_at && now >= r->spec.end_at) {
    write_op(r, STORE_CAMP_EXPIRE, on_expired);
  } else {
    r->nrows = 0;
    store_camp_due_async(r->a->store, r->refs[r->at].account_id, r->refs[r->at].name, now,
                         STORE_CAMP_BATCH, r->rows, &r->nrows, &r->next, on_due, r);
  }
}

static void on_leased(void *arg, int rc) {
  struct camp_runner *r = arg;
  r->lease_fresh = 0;
  if (rc || r->stopping || !r->op.ok) {
    on_any(r, rc);
    return;
  }
  r->lease_fresh = r->op.at + LEASE_MS / 3;   /* this campaign's batches in a row */
  read_camp(r);
}

static void lease(struct camp_runner *r) {
  op_begin(r, STORE_CAMP_LEASE);
  snprintf(r->op.owner, sizeof r->op.owner, "%s", r->owner);
  int64_t now = store_now_ms();
  r->op.at = now;
  r->op.lease_until = now + LEASE_MS;
  store_campaign_write(r->a->store, &r->op, on_leased, r);
}

static void next_camp(struct camp_runner *r) {
  if (r->stopping || r->at >= r->nrefs) {
    finish_pass(r);
    return;
  }
  lease(r);
}

static void on_active(void *arg, int rc) {
  struct camp_runner *r = arg;
  if (rc || r->stopping || r->nrefs == 0) {
    finish_pass(r);
    return;
  }
  r->at = 0;
  next_camp(r);
}

static void on_tick(uv_timer_t *t) {
  struct camp_runner *r = t->data;
  if (r->busy || r->stopping || store_degraded(r->a->store)) return;
  r->busy = 1;
  store_camps_active_async(r->a->store, r->refs, ACTIVE_MAX, &r->nrefs, on_active, r);
}

void api_camp_run_kick(struct api *a) {
  struct camp_runner *r = a->camp_runner;
  if (r && !r->busy && !r->stopping) uv_timer_start(&r->timer, on_tick, 0, TICK_MS);
}

void api_camp_run_halt(struct api *a, int64_t account_id, const char *name) {
  struct camp_runner *r = a->camp_runner;
  if (r == NULL) return;
  if (r->at < r->nrefs && r->refs[r->at].account_id == account_id &&
      strcmp(r->refs[r->at].name, name) == 0)
    r->halted = 1;   /* read again by the next batch (read_camp) */
  if (r->pl.busy && r->pl.account_id == account_id && strcmp(r->pl.name, name) == 0)
    r->pl.halt = 1;   /* no further batch planned */
}

void api_camp_run_start(struct api *a) {
  /* Freed by api_camp_run_stop (or by the end of a pass under way). */
  struct camp_runner *r = kk_xcalloc(1, sizeof *r);
  r->a = a;
  /* this process's name in the leases: another node's (or a killed one's,
     until its lease runs out) is not taken over. A store only this process
     has: whatever a killed kaskad leased is this one's at once. */
  if (store_exclusive(a->store))
    snprintf(r->owner, sizeof r->owner, "local");
  else
    snprintf(r->owner, sizeof r->owner, "%d.%llx", (int)getpid(),
             (unsigned long long)uv_hrtime());
  uv_timer_init(a->loop, &r->timer);
  r->timer.data = r;
  uv_timer_start(&r->timer, on_tick, TICK_MS, TICK_MS);
  a->camp_runner = r;
}

static void on_closed(uv_handle_t *h) {
  struct camp_runner *r = h->data;
  r->closed = 1;
  if (!r->busy && !r->pl.busy) free(r);
}

void api_camp_run_stop(struct api *a) {
  struct camp_runner *r = a->camp_runner;
  if (r == NULL) return;
  a->camp_runner = NULL;
  r->stopping = 1;
  uv_close((uv_handle_t *)&r->timer, on_closed);
}
