/*
 * sim_chan.c - the fake messenger providers (see sim_chan.h).
 *
 * This file is the core: knobs, the control API, the entry points, start
 * and shutdown. The providers live in sim_vk.c, sim_viber.c, sim_telegram.c
 * and sim_whatsapp.c; what they share in sim_chan_util.c (helpers, JSON
 * text), sim_chan_apps.c (apps, the ring, counters, signatures) and
 * sim_chan_cb.c (the callback queue, deferred handshakes, common steps).
 *
 * Status callbacks wait in a binary min-heap keyed by due time (then by
 * insertion order) served by one loop timer, at most CB_INFLIGHT_MAX being
 * sent at once: to a plain http:// address through sim_post (kept-alive
 * connections, little work per request), to anything else through
 * http_client. Their bodies are built when the send is accepted, with the
 * timestamp the event will have; signatures are computed at each attempt.
 * Answers are written as JSON text directly:
 * at thousands of requests a second, building jansson trees only to print
 * them would be most of the work.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "core/kk_buf.h"
#include "core/kk_crypto.h"
#include "core/kk_err.h"
#include "core/kk_log.h"
#include "core/kk_mem.h"
#include "http/http_client.h"
#include "sim_chan_int.h"
#include "sim_knobs.h"
#include "sim_post.h"
#include "sim_rng.h"

const char *const chan_names[SIM_CH_COUNT] = {
  "vk", "viber", "telegram", "telegram_gateway", "whatsapp", "email",
};

const char *const out_names[OUT_COUNT] = {
  "accepted", "duplicate", "unauthorized", "bad_request", "throttled", "server_error",
  "unreached", "not_found", "invalid_url", "no_such_user", "too_big",
};

/* ---- knobs ---- */

/* Returns the channel's index, or KK_ENOENT. */
static int chan_by_name(const char *s) {
  for (int i = 0; i < SIM_CH_COUNT; i++)
    if (strcmp(chan_names[i], s) == 0) return i;
  return KK_ENOENT;
}

enum ktype { K_SHARE, K_RANGE };

struct knob {
  const char *name;
  enum ktype type;
  size_t off;
};

#define KNOB(n, t, f) {n, t, offsetof(struct sim_chan_knobs, f)}
static const struct knob knob_tab[] = {
  KNOB("reach", K_SHARE, reach),
  KNOB("read", K_SHARE, read),
  KNOB("deliver_ms", K_RANGE, deliver_ms),
  KNOB("read_ms", K_RANGE, read_ms),
  KNOB("throttle", K_SHARE, throttle),
  KNOB("server_error", K_SHARE, server_error),
  KNOB("fail", K_SHARE, fail),
};
#define NKNOBS (sizeof knob_tab / sizeof knob_tab[0])

static void knobs_defaults(struct sim_chan_knobs *k) {
  memset(k, 0, sizeof *k);
  k->reach = 1.0;
  k->read = 0.5;
  k->deliver_ms[0] = 50;
  k->deliver_ms[1] = 200;
  k->read_ms[0] = 200;
  k->read_ms[1] = 1000;
}

static json_t *knobs_json(const struct sim_chan_knobs *all) {
  json_t *o = json_object();
  for (int c = 0; c < SIM_CH_COUNT; c++) {
    json_t *kj = json_object();
    for (size_t i = 0; i < NKNOBS; i++) {
      const char *field = (const char *)&all[c] + knob_tab[i].off;
      json_t *v = knob_tab[i].type == K_SHARE
                      ? json_real(*(const double *)field)
                      : json_pack("[ii]", ((const int *)field)[0], ((const int *)field)[1]);
      json_object_set_new(kj, knob_tab[i].name, v);
    }
    json_object_set_new(o, chan_names[c], kj);
  }
  return o;
}

/* Applies {"vk":{...},...}: all or nothing. Returns 0 or KK_EINVAL (err says why). */
static int knobs_apply(struct sim_chan_knobs *all, const json_t *obj, char *err, size_t cap) {
  if (!json_is_object(obj)) {
    snprintf(err, cap, "channel knobs must be a JSON object of channels");
    return KK_EINVAL;
  }
  struct sim_chan_knobs next[SIM_CH_COUNT];
  memcpy(next, all, sizeof next);
  const char *cname;
  json_t *cv;
  json_object_foreach((json_t *)obj, cname, cv) {
    int c = chan_by_name(cname);
    if (c < 0) {
      snprintf(err, cap, "unknown channel \"%.60s\" (vk, viber, telegram, telegram_gateway, "
               "whatsapp, email)", cname);
      return KK_EINVAL;
    }
    if (!json_is_object(cv)) {
      snprintf(err, cap, "%s must be an object of knobs", cname);
      return KK_EINVAL;
    }
    const char *kname;
    json_t *kv;
    json_object_foreach(cv, kname, kv) {
      const struct knob *kn = NULL;
      for (size_t i = 0; i < NKNOBS; i++)
        if (strcmp(knob_tab[i].name, kname) == 0) kn = &knob_tab[i];
      if (kn == NULL) {
        snprintf(err, cap, "unknown knob \"%s.%.60s\"", cname, kname);
        return KK_EINVAL;
      }
      char *field = (char *)&next[c] + kn->off;
      if (kn->type == K_SHARE) {
        if (!json_is_number(kv) || json_number_value(kv) < 0 || json_number_value(kv) > 1) {
          snprintf(err, cap, "%s.%s must be a number from 0 to 1", cname, kn->name);
          return KK_EINVAL;
        }
        *(double *)field = json_number_value(kv);
      } else {
        long long a, b;
        if (!json_is_array(kv) || json_array_size(kv) != 2 ||
            sim_json_int(json_array_get(kv, 0), &a) || sim_json_int(json_array_get(kv, 1), &b) ||
            a < 0 || a > b || b > MS_MAX) {
          snprintf(err, cap, "%s.%s must be [min, max] with 0 <= min <= max <= %d", cname,
                   kn->name, MS_MAX);
          return KK_EINVAL;
        }
        ((int *)field)[0] = (int)a;
        ((int *)field)[1] = (int)b;
      }
    }
  }
  memcpy(all, next, sizeof next);
  return 0;
}

/* ---- control API ---- */

json_t *chan_body_json(const struct sim_chan_req *rq) {
  return json_loadb(rq->body ? rq->body : "", rq->body_len, 0, NULL);
}

/* Reads an optional non-negative integer query argument. */
static int query_u64(const struct sim_chan_req *rq, const char *name, uint64_t max,
                     uint64_t *out) {
  const char *v = rq->query ? rq->query(rq->query_ctx, name) : NULL;
  if (v == NULL || *v == '\0') return 0;
  char *end;
  errno = 0;
  unsigned long long n = strtoull(v, &end, 10);
  if (errno || *end != '\0' || v[0] == '-' || n > max) return KK_EINVAL;
  *out = n;
  return 0;
}

static enum sim_chan_handled get_requests(struct sim_chan *ch, const struct sim_chan_req *rq,
                                          struct sim_chan_reply *out) {
  uint64_t since = 0, limit = REQUESTS_LIMIT_DEFAULT;
  if (query_u64(rq, "since_seq", UINT64_MAX / 2, &since) ||
      query_u64(rq, "limit", SIM_CHAN_RING_CAP, &limit))
    return chan_ctl_error(out, 400, "bad_query",
                     "since_seq and limit must be non-negative integers (limit at most 100000)");
  const char *cname = rq->query ? rq->query(rq->query_ctx, "channel") : NULL;
  int c = KK_ENOENT;
  if (cname && *cname && (c = chan_by_name(cname)) < 0)
    return chan_ctl_error(out, 400, "bad_query", "unknown channel");
  const struct ring *g = &ch->ring;
  uint64_t first_seq = g->next_seq - g->count;
  size_t i = since > first_seq ? (size_t)(since - first_seq) : 0;
  struct jw w;
  jw_init(&w, REQUESTS_ANSWER_MAX);
  jw_lit(&w, "{\"requests\":[");
  uint64_t n = 0, next = g->next_seq;
  for (; i < g->count && n < limit; i++) {
    const struct rec *r = &g->slot[(g->head + i) % g->cap];
    if (c >= 0 && r->channel != c) continue;
    if (n) jw_raw(&w, ",", 1);
    rec_json(&w, r);
    n++;
    if (n == limit) next = r->seq + 1;
  }
  jw_fmt(&w, "],\"next_seq\":%" PRIu64 "}", next);
  if (w.rc) {
    kk_buf_fini(&w.b);
    return chan_ctl_error(out, 413, "too_big", "the answer would be too large; lower limit");
  }
  return chan_give(out, 200, &w);
}

static enum sim_chan_handled get_apps(struct sim_chan *ch, struct sim_chan_reply *out) {
  json_t *list = json_array();
  for (const struct capp *a = ch->apps_head; a; a = a->next)
    json_array_append_new(list, app_json(a));
  return chan_give_json(out, 200, json_pack("{s:o}", "apps", list));
}

/* A string setting of POST /apps: absent keeps, null clears, else must be a string. */
static int app_field(const json_t *in, const char *name, char **field, int apply) {
  const json_t *v = json_object_get(in, name);
  if (v == NULL) return 0;
  if (!json_is_string(v) && !json_is_null(v)) return KK_EINVAL;
  if (apply) chan_set_str(field, json_is_string(v) ? json_string_value(v) : "");
  return 0;
}

static enum sim_chan_handled post_apps(struct sim_chan *ch, const struct sim_chan_req *rq,
                                       struct sim_chan_reply *out, sim_chan_done_fn done,
                                       void *ctx) {
  json_t *in = chan_body_json(rq);
  const char *cname = chan_pstr(in, "channel");
  const char *token = chan_pstr(in, "token");
  int c = cname ? chan_by_name(cname) : KK_ENOENT;
  const json_t *gid = json_object_get(in, "group_id");
  long long group = 0;
  static const char *const fields[] = {"callback_url", "secret", "confirmation", "verify_token",
                                       "phone_number_id"};
  int bad = !json_is_object(in) || c < 0 || c == SIM_CH_EMAIL || token == NULL || *token == '\0' ||
            (gid && !json_is_null(gid) && sim_json_int(gid, &group) != 0);
  char *dummy = NULL;
  for (size_t i = 0; !bad && i < sizeof fields / sizeof fields[0]; i++)
    bad = app_field(in, fields[i], &dummy, 0) != 0;
  if (bad) {
    json_decref(in);
    return chan_ctl_error(out, 400, "bad_request",
                     "channel (vk, viber, telegram, telegram_gateway, whatsapp) and token are "
                     "required; callback_url, secret, confirmation, verify_token, "
                     "phone_number_id are strings, group_id an integer");
  }
  struct capp *app = app_upsert(ch, c, token);
  if (app == NULL) {
    json_decref(in);
    return chan_ctl_error(out, 507, "too_many_apps", "the simulator holds 100000 apps already");
  }
  char **targets[] = {&app->callback_url, &app->secret, &app->confirmation, &app->verify_token,
                      &app->phone_number_id};
  for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++)
    app_field(in, fields[i], targets[i], 1);
  if (gid) app->group_id = group;
  json_decref(in);
  kk_info(LOGCTX, "%s app %.12s... callback_url %s", chan_names[c], app->token,
          app->callback_url[0] ? app->callback_url : "(none)");
  if (c == SIM_CH_VK && app->callback_url[0]) {
    struct jw w;
    jw_init(&w, REPLY_MAX);
    jw_fmt(&w, "{\"type\":\"confirmation\",\"group_id\":%" PRId64, app->group_id);
    if (app->secret[0]) {
      jw_lit(&w, ",\"secret\":");
      jw_cstr(&w, app->secret);
    }
    jw_raw(&w, "}", 1);
    static const char *const hdr[] = {"Content-Type: application/json"};
    enum sim_chan_handled h = op_start(ch, op_new(OP_VK_CONFIRM, c, app->token), "POST",
                                       app->callback_url, hdr, 1, w.b.p, w.b.len, out, done, ctx);
    kk_buf_fini(&w.b);
    return h;
  }
  if (c == SIM_CH_WHATSAPP && app->callback_url[0]) {
    struct op *op = op_new(OP_WA_VERIFY, c, app->token);
    snprintf(op->challenge, sizeof op->challenge, "%010" PRIu64,
             (uint64_t)(sim_rng_next(&ch->rng) % 10000000000ull));
    struct jw w;
    jw_init(&w, REPLY_MAX);
    jw_lit(&w, app->callback_url);
    jw_lit(&w, strchr(app->callback_url, '?') ? "&" : "?");
    jw_lit(&w, "hub.mode=subscribe&hub.verify_token=");
    jw_urlenc(&w, app->verify_token);
    jw_fmt(&w, "&hub.challenge=%s", op->challenge);
    enum sim_chan_handled h = op_start(ch, op, "GET", w.b.p, NULL, 0, NULL, 0, out, done, ctx);
    kk_buf_fini(&w.b);
    return h;
  }
  return chan_give_json(out, 200, app_json(app));
}

static enum sim_chan_handled post_config(struct sim_chan *ch, const struct sim_chan_req *rq,
                                         struct sim_chan_reply *out) {
  json_error_t jerr;
  json_t *in = json_loadb(rq->body ? rq->body : "", rq->body_len, 0, &jerr);
  if (in == NULL) return chan_ctl_error(out, 400, "bad_json", jerr.text);
  char err[200];
  int rc = knobs_apply(ch->knobs, in, err, sizeof err);
  json_decref(in);
  if (rc) return chan_ctl_error(out, 400, "bad_value", err);
  json_t *now = knobs_json(ch->knobs);
  char *line = json_dumps(now, JSON_COMPACT);
  kk_info(LOGCTX, "channel config: %s", line ? line : "?");
  free(line);
  return chan_give_json(out, 200, now);
}

static enum sim_chan_handled control(struct sim_chan *ch, const struct sim_chan_req *rq,
                                     struct sim_chan_reply *out, sim_chan_done_fn done,
                                     void *ctx) {
  static const struct {
    const char *path;
    int get, post;
  } paths[] = {
    {"/apps", 1, 1}, {"/channels/config", 1, 1}, {"/channels/requests", 1, 0},
    {"/channels/stats", 1, 0}, {"/telegram/update", 0, 1}, {"/whatsapp/inbound", 0, 1},
    {"/viber/inbound", 0, 1}, {"/vk/inbound", 0, 1},
  };
  int get = strcmp(rq->method, "GET") == 0, post = strcmp(rq->method, "POST") == 0;
  size_t i = 0, n = sizeof paths / sizeof paths[0];
  while (i < n && strcmp(paths[i].path, rq->path) != 0) i++;
  if (i == n) return SIM_CHAN_NOT_MINE;
  if (!((get && paths[i].get) || (post && paths[i].post)))
    return chan_ctl_error(out, 405, "method_not_allowed", "this path does not take that method");
  if (ch->closing) return chan_ctl_error(out, 503, "shutting_down", "the simulator is stopping");
  switch (i) {
  case 0: return get ? get_apps(ch, out) : post_apps(ch, rq, out, done, ctx);
  case 1: return get ? chan_give_json(out, 200, knobs_json(ch->knobs)) : post_config(ch, rq, out);
  case 2: return get_requests(ch, rq, out);
  case 3: return chan_give_json(out, 200, chan_stats_json(ch));
  case 4: return sim_telegram_update(ch, rq, out, done, ctx);
  case 5: return sim_whatsapp_inbound(ch, rq, out, done, ctx);
  case 6: return sim_viber_inbound(ch, rq, out, done, ctx);
  default: return sim_vk_inbound(ch, rq, out, done, ctx);
  }
}

/* ---- entry points ---- */

enum sim_chan_handled sim_chan_handle(struct sim_chan *ch, const struct sim_chan_req *rq,
                                      struct sim_chan_reply *out, sim_chan_done_fn done,
                                      void *ctx) {
  memset(out, 0, sizeof *out);
  const char *p = rq->path;
  char pnid[64];
  if (strncmp(p, "/method/", 8) == 0) return sim_vk_handle(ch, rq, out);
  if (strncmp(p, "/pa/", 4) == 0 || strncmp(p, "/vbm/", 5) == 0)
    return sim_viber_handle(ch, rq, out, done, ctx);
  if (strncmp(p, "/bot", 4) == 0 && p[4] != '\0') return sim_telegram_handle(ch, rq, out);
  if (strcmp(p, "/sendVerificationMessage") == 0) return sim_tggw_handle(ch, rq, out);
  if (sim_whatsapp_path(p, pnid)) return sim_whatsapp_handle(ch, rq, out, pnid);
  return control(ch, rq, out, done, ctx);
}

const struct sim_chan_knobs *sim_chan_knobs(const struct sim_chan *ch, enum sim_chan_id c) {
  return &ch->knobs[c];
}

int sim_chan_reached(const struct sim_chan *ch, enum sim_chan_id c, const char *addr) {
  return chan_hashed_hit(ch, "reach", (int)c, addr, ch->knobs[c].reach);
}

void sim_chan_record_mail(struct sim_chan *ch, const struct sim_chan_mail *m) {
  struct kk_buf rcpt;
  kk_buf_init(&rcpt, SIZE_MAX / 2);
  for (size_t i = 0; i < m->nrcpt; i++) {
    if (i) kk_buf_append(&rcpt, "\n", 1);
    kk_buf_puts(&rcpt, m->rcpt[i]);
  }
  const char *f[RF_COUNT] = {"SMTP", "", NULL, NULL, NULL, m->data ? m->data : "",
                             m->from ? m->from : "", rcpt.p ? rcpt.p : ""};
  size_t flen[RF_COUNT] = {4, 0, 0, 0, 0, m->data ? m->len : 0, strlen(f[RF_FROM]), rcpt.len};
  struct rec r;
  rec_fill(&r, SIM_CH_EMAIL, f, flen);
  kk_buf_fini(&rcpt);
  ring_add(ch, &r, OUT_ACCEPTED);
  ch->stats[SIM_CH_EMAIL].n[OUT_ACCEPTED]++;
  ch->stats[SIM_CH_EMAIL].messages++;
}

void sim_chan_count_refused(struct sim_chan *ch, enum sim_chan_id c, const char *reason) {
  for (int i = OUT_FIRST_REFUSED; i < OUT_COUNT; i++) {
    if (strcmp(out_names[i], reason) == 0) {
      ch->stats[c].n[i]++;
      return;
    }
  }
}

void sim_chan_reset(struct sim_chan *ch, int apps) {
  ring_clear(&ch->ring);
  cb_free_all(ch);
  memset(ch->stats, 0, sizeof ch->stats);
  ch->gen++;
  if (apps) apps_clear(ch);
  kk_info(LOGCTX, "channel requests, counters and pending callbacks cleared%s",
          apps ? ", apps forgotten" : "");
}

int sim_chan_start(uv_loop_t *loop, uint64_t seed, const char *channels_json, char *err,
                   size_t errcap, struct sim_chan **out) {
  *out = NULL;
  struct sim_chan_knobs knobs[SIM_CH_COUNT];
  for (int c = 0; c < SIM_CH_COUNT; c++) knobs_defaults(&knobs[c]);
  if (channels_json) {
    json_error_t jerr;
    json_t *j = json_loads(channels_json, 0, &jerr);
    if (j == NULL) {
      snprintf(err, errcap, "%s", jerr.text);
      return KK_EINVAL;
    }
    int rc = knobs_apply(knobs, j, err, errcap);
    json_decref(j);
    if (rc) return rc;
  }
  struct http_client *client = http_client_new(loop, 64 * 1024);
  if (client == NULL) {
    snprintf(err, errcap, "cannot start the callback client");
    return KK_EIO;
  }
  struct sim_chan *ch = kk_xcalloc(1, sizeof *ch);
  ch->loop = loop;
  ch->seed = seed;
  sim_rng_seed(&ch->rng, seed ^ 0x6368616e6e656c73ull);   /* "channels" */
  memcpy(ch->knobs, knobs, sizeof knobs);
  ch->ring.cap = SIM_CHAN_RING_CAP;
  ch->ring.slot = kk_xcalloc(ch->ring.cap, sizeof *ch->ring.slot);
  ch->ring.next_seq = 1;
  ch->client = client;
  ch->post = sim_post_new(loop, 64 * 1024, CB_INFLIGHT_MAX);
  uv_timer_init(loop, &ch->timer);
  ch->timer.data = ch;
  ch->armed_at = -1;
  *out = ch;
  return 0;
}

void sim_chan_stop(struct sim_chan *ch) {
  if (ch->closing) return;
  ch->closing = 1;
  for (struct op *op = ch->ops; op; op = op->next) {
    if (op->done == NULL) continue;
    struct sim_chan_reply r;
    memset(&r, 0, sizeof r);
    chan_ctl_error(&r, 503, "shutting_down", "the simulator is stopping");
    sim_chan_done_fn done = op->done;
    op->done = NULL;
    done(op->ctx, &r);
  }
  cb_free_all(ch);
  /* Running requests end now: their callbacks free the jobs and ops. */
  if (ch->client) {
    http_client_stop(ch->client, NULL, NULL);
    ch->client = NULL;
  }
  sim_post_stop(ch->post);
  ch->post = NULL;
  uv_close((uv_handle_t *)&ch->timer, NULL);
}

void sim_chan_free(struct sim_chan *ch) {
  if (ch == NULL) return;
  cb_free_all(ch);
  free(ch->heap);
  while (ch->ops) {
    struct op *op = ch->ops;
    op_unlink(op);
    op_free(op);
  }
  apps_clear(ch);
  ring_clear(&ch->ring);
  free(ch->ring.slot);
  free(ch);
}

