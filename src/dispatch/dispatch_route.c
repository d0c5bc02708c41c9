/*
 * dispatch_route.c - routes and their SMPP sessions: put, delete, pick, and
 * their state as JSON and metrics.
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>

#include "core/kk_buf.h"
#include "core/kk_err.h"
#include "core/kk_log.h"
#include "core/kk_mem.h"
#include "dispatch/dispatch_int.h"

/* ---- routes ---------------------------------------------------------------- */

static void on_timer_closed(uv_handle_t *h) { free(h); }

static void on_client_closed(void *ud) {
  struct route *r = ud;
  struct dispatch *d = r->d;
  for (struct route **pp = &d->dead; *pp; pp = &(*pp)->next)
    if (*pp == r) {
      *pp = r->next;
      break;
    }
  /* Jobs still queued on a removed route wait as orphans. */
  struct job *j;
  while ((j = dispatch_queue_pop(r)) != NULL) {
    if (j->ended && j->inflight == 0) {
      dispatch_job_free(d, j);
      continue;
    }
    j->queued = 1;
    j->next = d->orphans;
    d->orphans = j;
  }
  uv_close((uv_handle_t *)r->lane_timer, on_timer_closed);
  free(r);
  if (d->stopping && --d->closing_clients == 0 && d->stop_done) d->stop_done(d->stop_ud);
}

void dispatch_route_retire(struct dispatch *d, struct route *r) {
  for (struct route **pp = &d->routes; *pp; pp = &(*pp)->next)
    if (*pp == r) {
      *pp = r->next;
      break;
    }
  r->removed = 1;
  r->next = d->dead;
  d->dead = r;
  uv_timer_stop(r->lane_timer);
  struct smpp_client *c = r->client;
  r->client = NULL;
  smpp_client_stop(c, on_client_closed);
}

/* Moves orphans whose route now exists into its queue. */
static void adopt_orphans(struct dispatch *d) {
  struct job *list = d->orphans, *j;
  d->orphans = NULL;
  while ((j = list) != NULL) {
    list = j->next;
    j->next = NULL;
    j->queued = 0;
    if (j->ended && j->inflight == 0) {
      dispatch_job_free(d, j);
      continue;
    }
    dispatch_job_route(d, j, 0);
  }
}

int dispatch_route_put(struct dispatch *d, const struct dispatch_route_cfg *cfg) {
  if (d->stopping) return KK_ECLOSED;
  struct route *old = route_find(d, cfg->smpp.name);
  struct route *r = kk_xcalloc(1, sizeof *r);
  r->d = d;
  r->cfg = *cfg;
  smpp_client_cfg_defaults(&r->cfg.smpp);
  for (int l = 0; l < DISPATCH_LANE_COUNT; l++) {
    dispatch_lq_init(&r->q[l]);
    dispatch_bucket_init(&r->bk[l], cfg->lane_sps[l], now_ms());
  }
  r->lane_timer = kk_xmalloc(sizeof *r->lane_timer);   /* freed when closed */
  uv_timer_init(d->loop, r->lane_timer);
  r->lane_timer->data = r;
  r->bound_at = now_ms();
  r->gen = ++d->next_gen;
  r->ref = (uint8_t)(now_ms() & 0xff);
  if (old) {
    /* Take over the queue and counters; the old sessions unbind. */
    r->n = old->n;
    struct job *j;
    while ((j = dispatch_queue_pop(old)) != NULL) dispatch_queue_push(r, j, 0);
    dispatch_route_retire(d, old);
  }
  static const struct smpp_client_cbs cbs = {dispatch_on_resp, dispatch_on_lost, dispatch_on_deliver, dispatch_on_ready};
  r->client = smpp_client_new(d->loop, &r->cfg.smpp, &cbs, r);
  struct route **pp = &d->routes;
  while (*pp && strcmp((*pp)->cfg.smpp.name, r->cfg.smpp.name) < 0) pp = &(*pp)->next;
  r->next = *pp;
  *pp = r;
  dispatch_recount_cap(d);
  kk_info(LOGCTX, "route %s -> %s:%d (%d sessions, window %d, max_sps %d)", r->cfg.smpp.name,
          r->cfg.smpp.host, r->cfg.smpp.port, r->cfg.smpp.sessions, r->cfg.smpp.window,
          r->cfg.smpp.max_sps);
  adopt_orphans(d);
  return 0;
}

int dispatch_route_del(struct dispatch *d, const char *name) {
  struct route *r = route_find(d, name);
  if (r == NULL) return KK_ENOENT;
  dispatch_route_retire(d, r);
  dispatch_recount_cap(d);
  kk_info(LOGCTX, "route %s removed", name);
  return 0;
}

const char *dispatch_route_pick(struct dispatch *d, const char *want) {
  if (want && *want) {
    struct route *r = route_find(d, want);
    if (r) return r->cfg.smpp.name;
  }
  /* Never a guess among several: a message goes where the operator said. */
  if (d->opts.default_route[0]) {
    struct route *r = route_find(d, d->opts.default_route);
    return r ? r->cfg.smpp.name : NULL;
  }
  if (d->routes && d->routes->next == NULL) return d->routes->cfg.smpp.name;
  /* Several routes with prices: the dispatcher chooses per message; the
     first priced route stands in until then. */
  for (struct route *r = d->routes; r; r = r->next)
    if (dispatch_prices_any(&r->cfg.prices)) return r->cfg.smpp.name;
  return NULL;
}

const char *dispatch_default_route(const struct dispatch *d) { return d->opts.default_route; }

int dispatch_route_count(const struct dispatch *d) {
  int n = 0;
  for (const struct route *r = d->routes; r; r = r->next) n++;
  return n;
}

void dispatch_count_accepted(struct dispatch *d, const char *route, int n) {
  struct route *r = route_find(d, route);
  if (r) r->n.accepted += (uint64_t)n;
}

json_t *dispatch_routes_json(struct dispatch *d, const char *only) {
  json_t *arr = json_array();
  for (struct route *r = d->routes; r; r = r->next) {
    if (only && strcmp(only, r->cfg.smpp.name) != 0) continue;
    const struct smpp_client_cfg *c = &r->cfg.smpp;
    struct smpp_client_stats st;
    smpp_client_get_stats(r->client, &st);
    json_t *sessions = json_array();
    for (int i = 0; i < c->sessions; i++)
      json_array_append_new(sessions, json_string(smpp_session_state_name(
                                           smpp_client_session_state(r->client, i))));
    json_array_append_new(
        arr, json_pack("{s:s, s:s, s:s, s:i, s:s, s:s, s:i, s:i, s:i, s:i, s:o, s:{s:i, s:o, "
                       "s:i, s:I, s:I, s:I, s:I, s:I, s:I}}",
                       "name", c->name, "protocol", "smpp", "host", c->host, "port", c->port,
                       "system_id", c->system_id, "system_type", c->system_type, "sessions",
                       c->sessions, "window", c->window, "max_sps", c->max_sps, "data_coding",
                       r->cfg.gsm_data_coding, "session_states", sessions, "state", "bound",
                       st.bound, "bound_ok", json_boolean(st.bound > 0), "inflight", st.inflight,
                       "queued", (json_int_t)r->queued, "submitted", (json_int_t)st.resp_ok,
                       "errors", (json_int_t)(st.resp_error - st.throttled), "throttled",
                       (json_int_t)st.throttled, "reconnects", (json_int_t)st.reconnects,
                       "delivered", (json_int_t)r->n.dlr_delivered));
    json_t *o = json_array_get(arr, json_array_size(arr) - 1);
    dispatch_prices_json(&r->cfg.prices, o);
    if (r->cfg.lane_sps[DISPATCH_LANE_STREAM] || r->cfg.lane_sps[DISPATCH_LANE_BULK])
      json_object_set_new(o, "max_sps", json_pack("{s:i, s:i}", "stream",
                                                   r->cfg.lane_sps[DISPATCH_LANE_STREAM], "bulk",
                                                   r->cfg.lane_sps[DISPATCH_LANE_BULK]));
    json_object_set_new(o, "queued_lanes", json_pack("{s:i, s:i}", "stream",
                                                     r->q[DISPATCH_LANE_STREAM].n, "bulk",
                                                     r->q[DISPATCH_LANE_BULK].n));
    json_object_set_new(o, "up", json_boolean(dispatch_route_up(r, now_ms())));
  }
  return arr;
}

int dispatch_busy(const struct dispatch *d) { return d->jobs; }

void dispatch_metrics(struct dispatch *d, struct kk_buf *o) {
  static const struct {
    const char *name, *help;
    size_t off;
  } counters[] = {
      {"kaskad_messages_accepted_total", "Messages accepted for the route",
       offsetof(struct route_counters, accepted)},
      {"kaskad_sms_parts_submitted_total", "submit_sm answered with ESME_ROK",
       offsetof(struct route_counters, submitted_parts)},
      {"kaskad_sms_submit_errors_total", "submit_sm answered with an error other than throttling",
       offsetof(struct route_counters, submit_errors)},
      {"kaskad_sms_throttled_total", "submit_sm answered ESME_RTHROTTLED or ESME_RMSGQFUL",
       offsetof(struct route_counters, throttled)},
      {"kaskad_sms_retried_total", "Temporary errors retried after a backoff",
       offsetof(struct route_counters, retried)},
      {"kaskad_sms_lost_total", "Submits without answer when a session dropped (resent)",
       offsetof(struct route_counters, lost)},
      {"kaskad_messages_failed_total", "Messages failed by a permanent SMSC error",
       offsetof(struct route_counters, failed)},
      {"kaskad_messages_expired_total", "Messages whose validity ended before submission",
       offsetof(struct route_counters, expired)},
      {"kaskad_messages_delivered_total", "Delivery receipts with DELIVRD",
       offsetof(struct route_counters, dlr_delivered)},
      {"kaskad_receipts_failed_total", "Delivery receipts with a failure state",
       offsetof(struct route_counters, dlr_failed)},
      {"kaskad_receipts_expired_total", "Delivery receipts with EXPIRED",
       offsetof(struct route_counters, dlr_expired)},
      {"kaskad_receipts_early_total", "Receipts held because no submit_sm_resp named their id yet",
       offsetof(struct route_counters, dlr_unmatched)},
      {"kaskad_mo_received_total", "Mobile-originated messages stored",
       offsetof(struct route_counters, mo)},
  };
  for (size_t i = 0; i < sizeof counters / sizeof counters[0]; i++) {
    kk_buf_printf(o, "# HELP %s %s\n# TYPE %s counter\n", counters[i].name, counters[i].help,
                  counters[i].name);
    for (struct route *r = d->routes; r; r = r->next)
      kk_buf_printf(o, "%s{route=\"%s\"} %llu\n", counters[i].name, r->cfg.smpp.name,
                    (unsigned long long)*(uint64_t *)((char *)&r->n + counters[i].off));
  }
  kk_buf_puts(o, "# HELP kaskad_smpp_sessions SMPP sessions by state\n"
                 "# TYPE kaskad_smpp_sessions gauge\n");
  for (struct route *r = d->routes; r; r = r->next) {
    int by[SMPP_SESS_CLOSED + 1] = {0};
    for (int i = 0; i < r->cfg.smpp.sessions; i++) by[smpp_client_session_state(r->client, i)]++;
    for (int s = 0; s <= SMPP_SESS_CLOSED; s++)
      kk_buf_printf(o, "kaskad_smpp_sessions{route=\"%s\",state=\"%s\"} %d\n", r->cfg.smpp.name,
                    smpp_session_state_name((enum smpp_session_state)s), by[s]);
  }
  kk_buf_puts(o, "# HELP kaskad_smpp_inflight submit_sm awaiting submit_sm_resp\n"
                 "# TYPE kaskad_smpp_inflight gauge\n");
  for (struct route *r = d->routes; r; r = r->next) {
    struct smpp_client_stats st;
    smpp_client_get_stats(r->client, &st);
    kk_buf_printf(o, "kaskad_smpp_inflight{route=\"%s\"} %d\n", r->cfg.smpp.name, st.inflight);
  }
  kk_buf_puts(o, "# HELP kaskad_dispatch_queued Messages waiting in memory for a route\n"
                 "# TYPE kaskad_dispatch_queued gauge\n");
  for (struct route *r = d->routes; r; r = r->next)
    kk_buf_printf(o, "kaskad_dispatch_queued{route=\"%s\"} %d\n", r->cfg.smpp.name, r->queued);
  kk_buf_printf(o, "# HELP kaskad_dispatch_jobs Messages held in memory\n"
                   "# TYPE kaskad_dispatch_jobs gauge\nkaskad_dispatch_jobs %d\n", d->jobs);
}
