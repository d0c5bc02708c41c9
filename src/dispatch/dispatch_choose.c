/*
 * dispatch_choose.c - where a message's SMS goes: its operator (the
 * numbering register, or the HLR/MNP answer when a lookup service is set:
 * a ported number's real operator, and roaming), the roaming rule for
 * advertising, and the route: the account's own route when it has one,
 * else the cheapest route that serves the operator and the lane and is up.
 * A route is down when no session of it has been bound for route_down_ms,
 * or for route_down_ms after a run of errors; the health timer moves the
 * chosen jobs queued on a route that went down to the next best.
 * dispatch_quote makes the same choice for accept, and says the most the
 * message can cost (the dearest route it can fail over to, the dearest
 * operator while the HLR has not answered): a prepaid account's message is
 * held at that.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/kk_err.h"
#include "core/kk_log.h"
#include "dispatch/dispatch_hlr.h"
#include "dispatch/dispatch_int.h"
#include "phone/phone_plan.h"

#define ROAMING_DEFER_MS (30LL * 60 * 1000)   /* an advertising SMS to a roaming
                                                 subscriber is looked at again after */

int dispatch_route_up(const struct route *r, int64_t now) {
  if (r->client == NULL || r->down_until > now) return 0;
  struct smpp_client_stats st;
  smpp_client_get_stats(r->client, &st);
  if (st.bound > 0) return 1;
  return now - r->bound_at < r->d->opts.route_down_ms;
}

static int any_priced(const struct dispatch *d) {
  for (const struct route *r = d->routes; r; r = r->next)
    if (dispatch_prices_any(&r->cfg.prices)) return 1;
  return 0;
}

static const char *nz(const char *s) { return s[0] ? s : NULL; }

/* The best route for lane and the operator now, with its price per
   segment; NULL when no route serves them. */
static struct route *cheapest(struct dispatch *d, enum dispatch_lane lane, const char *inn,
                              const char *op, int64_t *price) {
  struct dispatch_offer o[DISPATCH_CHOOSE_MAX];
  struct route *rs[DISPATCH_CHOOSE_MAX];
  int n = 0;
  int64_t now = now_ms();
  for (struct route *r = d->routes; r && n < DISPATCH_CHOOSE_MAX; r = r->next) {
    o[n] = (struct dispatch_offer){&r->cfg.prices, dispatch_route_up(r, now)};
    rs[n++] = r;
  }
  int order[DISPATCH_CHOOSE_MAX];
  int64_t pr[DISPATCH_CHOOSE_MAX];
  int k = dispatch_choose(o, n, lane, inn, op, order, pr);
  if (k == 0) return NULL;
  *price = pr[0];
  return rs[order[0]];
}

/* Where a message goes and at what price per segment (-1: its route has no
   price for the operator): the best route when the dispatcher chooses
   (chosen) and one serves it, else the route it was given. NULL: neither. */
static struct route *route_for(struct dispatch *d, int chosen, const char *given,
                               enum dispatch_lane lane, const char *inn, const char *op,
                               int64_t *price) {
  struct route *r = chosen ? cheapest(d, lane, inn, op, price) : NULL;
  if (r) return r;
  r = route_find(d, given);
  *price = r ? dispatch_price_for(&r->cfg.prices, lane, inn, op) : -1;
  return r;
}

/* Sets j->route and j->price to the best route for it; 0 when no route
   serves its operator and lane (j is left as it is). */
static int choose(struct dispatch *d, struct job *j) {
  int64_t price;
  struct route *r = cheapest(d, (enum dispatch_lane)j->lane, nz(j->inn), nz(j->op), &price);
  if (r == NULL) return 0;
  snprintf(j->route, sizeof j->route, "%s", r->cfg.smpp.name);
  j->price = price;
  return 1;
}

/* Whether the dispatcher chooses the route of an account's messages: not
   when the account has its own route (acc NULL: unknown, it chooses). */
static int chooses(struct dispatch *d, const struct store_account *acc) {
  int pinned = acc && acc->sms_route[0] && route_find(d, acc->sms_route) != NULL;
  return !pinned && any_priced(d);
}

int dispatch_rechoose(struct dispatch *d, struct job *j) {
  if (!j->chosen || !j->resolved) return 0;
  char old[sizeof j->route];
  memcpy(old, j->route, sizeof old);
  return choose(d, j) && strcmp(old, j->route) != 0;
}

/* What the account wants for advertising to a roaming subscriber:
   'd' defer (the default), 'x' drop, 'a' allow. */
static char roaming_rule(const struct store_account *acc) {
  if (strcmp(acc->roaming_ads, "drop") == 0) return 'x';
  if (strcmp(acc->roaming_ads, "allow") == 0) return 'a';
  return 'd';
}

/* The operator is known: the roaming rule, the route, then on its way. */
static void finish(struct dispatch *d, struct job *j) {
  j->resolved = 1;
  struct store_account acc;
  int have = store_account_get_by_id(d->store, j->account_id, &acc) == 0;
  if (j->lane == DISPATCH_LANE_BULK && j->roaming && j->inflight == 0) {
    char rule = have ? roaming_rule(&acc) : 'd';
    int64_t now = now_ms();
    struct store_sms_update u = {.msg_id = j->msg_id, .attempt_id = j->attempt_id,
                                 .route = j->route, .at = now};
    /* The decision goes to the rules' hook, which records it on the message
       (reason roaming: its error then) and counts it per reason. */
    struct pol_due due = {.msg_id = j->msg_id, .account_id = j->account_id, .to = j->to,
                          .msg_class = j->msg_class, .channel = "sms", .decided = "roaming"};
    if (rule == 'x') {
      /* ends failed, as a message the rules stop when it comes due */
      if (d->due_fn) (void)d->due_fn(d->due_ud, &due);
      u.error = "roaming: advertising is not sent to a subscriber in roaming";
      store_sms_failed(d->store, &u, dispatch_store_done_log, NULL);
      dispatch_job_free(d, j);
      return;
    }
    if (rule == 'd') {
      j->resolved = 0;   /* looked at again when the deferral ends */
      j->not_before = now + ROAMING_DEFER_MS;
      due.decided_until = j->not_before;
      if (d->due_fn) (void)d->due_fn(d->due_ud, &due);
      u.error = "roaming: advertising deferred while the subscriber is in roaming";
      u.due_at = j->not_before;
      store_sms_retry(d->store, &u, dispatch_store_done_log, NULL);
      dispatch_job_route(d, j, 0);
      return;
    }
  }
  j->chosen = chooses(d, have ? &acc : NULL);
  int64_t price;
  struct route *r =
      route_for(d, j->chosen, j->route, (enum dispatch_lane)j->lane, nz(j->inn), nz(j->op), &price);
  if (r) snprintf(j->route, sizeof j->route, "%s", r->cfg.smpp.name);
  j->price = r ? price : -1;
  dispatch_job_route(d, j, 0);
}

void dispatch_resolving_drop(struct dispatch *d, struct job *j) {
  for (struct job **pp = &d->resolving; *pp; pp = &(*pp)->next)
    if (*pp == j) {
      *pp = j->next;
      break;
    }
  j->next = NULL;
  j->queued = 0;
  if (j->wait && d->opts.hlr) dispatch_hlr_cancel(d->opts.hlr, j->wait);
  j->wait = NULL;
}

static void on_hlr(void *arg, int rc, const struct dispatch_hlr_answer *a) {
  struct job *j = arg;
  struct dispatch *d = j->d;
  j->wait = NULL;
  dispatch_resolving_drop(d, j);
  if (rc == 0) {
    /* a ported number's operator is the one the HLR names */
    if (a->inn && a->inn[0]) snprintf(j->inn, sizeof j->inn, "%s", a->inn);
    if (a->operator_name && a->operator_name[0])
      snprintf(j->op, sizeof j->op, "%s", a->operator_name);
    j->roaming = a->roaming != 0;
  } else if (rc != KK_ECLOSED) {
    kk_debug(LOGCTX, "message %lld: no HLR answer (%s), the register's operator",
             (long long)j->msg_id, kk_strerror(rc));
  }
  if (j->ended || d->stopping) {
    /* cancelled, or stopping: the message stays due in the store */
    dispatch_job_free(d, j);
    return;
  }
  finish(d, j);
}

/* The operator of e164 in the numbering register ("" each when unknown). */
static void register_operator(const struct dispatch *d, const char *e164, char *inn,
                              size_t inncap, char *op, size_t opcap) {
  inn[0] = op[0] = '\0';
  struct phone_plan_info pi;
  if (d->opts.plan && phone_plan_lookup(d->opts.plan, e164, &pi) == 0) {
    snprintf(inn, inncap, "%s", pi.inn ? pi.inn : "");
    snprintf(op, opcap, "%s", pi.operator_name ? pi.operator_name : "");
  }
}

/* The most a segment on lane can cost on route r (NULL: gone): its price
   to the operator when sure, else to any; *table set to 1 when it may have
   no price for the operator (the price table's then). */
static int64_t given_most(const struct route *r, enum dispatch_lane lane, int sure,
                          const char *inn, const char *op, int *table) {
  int every = 0;
  int64_t most = r ? dispatch_price_most(&r->cfg.prices, lane, sure, inn, op, &every) : -1;
  if (!every) *table = 1;
  return most;
}

/* The most a segment can cost when the dispatcher chooses: the dearest
   route that serves the lane and could serve the operator (failover can
   take any of them), and the given route when some operator may be served
   by none. */
static int64_t chosen_most(struct dispatch *d, const char *given, enum dispatch_lane lane,
                           int sure, const char *inn, const char *op, int *table) {
  int64_t most = -1;
  int covered = 0, n = 0;
  for (const struct route *r = d->routes; r && n < DISPATCH_CHOOSE_MAX; r = r->next, n++) {
    if (!(r->cfg.prices.lanes & (1u << lane))) continue;
    int every;
    int64_t p = dispatch_price_most(&r->cfg.prices, lane, sure, inn, op, &every);
    if (p > most) most = p;
    covered |= every;
  }
  if (!covered) {
    int64_t g = given_most(route_find(d, given), lane, sure, inn, op, table);
    if (g > most) most = g;
  }
  return most;
}

void dispatch_quote(struct dispatch *d, const struct store_account *acc, const char *route,
                    const char *e164, const char *msg_class, struct dispatch_quote *q) {
  char inn[16], op[80];
  register_operator(d, e164, inn, sizeof inn, op, sizeof op);
  /* Without an HLR the register's operator is the one the dispatcher
     takes; with one, only a cached answer says it for sure now. */
  int sure = d->opts.hlr == NULL;
  struct dispatch_hlr_answer a;
  if (d->opts.hlr && dispatch_hlr_peek(d->opts.hlr, e164, &a)) {
    /* as on_hlr takes it */
    if (a.inn[0]) snprintf(inn, sizeof inn, "%s", a.inn);
    if (a.operator_name[0]) snprintf(op, sizeof op, "%s", a.operator_name);
    sure = 1;
  }
  enum dispatch_lane lane = dispatch_lane_of(msg_class);
  int chosen = chooses(d, acc);
  int64_t price;
  struct route *r = route_for(d, chosen, route, lane, nz(inn), nz(op), &price);
  q->expected = r ? price : -1;
  q->table = 0;
  q->most = chosen ? chosen_most(d, route, lane, sure, nz(inn), nz(op), &q->table)
                   : given_most(r, lane, sure, nz(inn), nz(op), &q->table);   /* route_for's find */
}

void dispatch_job_place(struct dispatch *d, struct job *j) {
  register_operator(d, j->to, j->inn, sizeof j->inn, j->op, sizeof j->op);
  j->roaming = 0;
  /* The HLR matters for a choice among priced routes and for roaming
     (advertising); a pinned transactional message does not wait for it. */
  if (d->opts.hlr && (j->lane == DISPATCH_LANE_BULK || any_priced(d))) {
    j->next = d->resolving;
    d->resolving = j;
    j->queued = 1;
    /* From the cache on_hlr runs at once and NULL comes back (j may be gone). */
    struct dispatch_hlr_wait *w = dispatch_hlr_lookup(d->opts.hlr, j->to, on_hlr, j);
    if (w) j->wait = w;
    return;
  }
  finish(d, j);
}

/* Moves the chosen jobs queued on r (down now) to their next best route. */
static void fail_over(struct dispatch *d, struct route *r) {
  struct job *keep = NULL, **kt = &keep, *j;
  int moved = 0;
  while ((j = dispatch_queue_pop(r)) != NULL) {
    if (!j->ended && j->inflight == 0 && dispatch_rechoose(d, j)) {
      dispatch_job_route(d, j, 0);
      moved++;
      continue;
    }
    j->next = NULL;
    *kt = j;
    kt = &j->next;
  }
  while ((j = keep) != NULL) {
    keep = j->next;
    dispatch_queue_push(r, j, 0);
  }
  if (moved) kk_info(LOGCTX, "route %s is down: %d queued messages moved", r->cfg.smpp.name, moved);
}

void dispatch_on_health_timer(uv_timer_t *t) {
  struct dispatch *d = t->data;
  int64_t now = now_ms();
  for (struct route *r = d->routes; r; r = r->next) {
    struct smpp_client_stats st;
    smpp_client_get_stats(r->client, &st);
    if (st.bound > 0) r->bound_at = now;
    int up = dispatch_route_up(r, now);
    if (!up && !r->down) {
      r->down = 1;
      kk_warnx(LOGCTX, "route %s is down", r->cfg.smpp.name);
      fail_over(d, r);
    } else if (up && r->down) {
      r->down = 0;
      kk_info(LOGCTX, "route %s is up again", r->cfg.smpp.name);
    }
  }
}
