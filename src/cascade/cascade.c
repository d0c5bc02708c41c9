/*
 * cascade.c - the cascade engine (see cascade.h): channel sends, step
 * deadlines, provider callbacks, channel settings in memory.
 *
 * Work comes from the store in two ways: notes after a commit (an attempt
 * to send now, a deadline to arm, an SMS for the dispatcher) and reads of
 * the store's due indexes (at start, and by a slow poll as a safety net).
 * An attempt is in the in-flight set from the moment it is read until the
 * store has committed its result, so it is never sent twice at once.
 */
#include "cascade/cascade.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/kk_buf.h"
#include "core/kk_err.h"
#include "core/kk_hold.h"
#include "core/kk_log.h"
#include "core/kk_mem.h"
#include "dispatch/dispatch.h"
#include "http/http_client.h"

#define LOGCTX "cascade"
#define SCAN_MAX 512           /* rows read at once */
#define POLL_MS 500            /* safety-net poll of the due indexes */
#define NCHAN 8
#define MAX_OPEN_BATCHES 8     /* settings with a batch filling at once */

/* Per-channel counters of the engine (the store counts the state machine). */
struct chan_counters {
  char name[20];
  uint64_t req_ok, req_retry, req_failed, req_config;
  uint64_t hook_applied, hook_unmatched, hook_forged, hook_malformed;
  double req_ms_sum;
};

struct cfg_entry {
  struct cfg_entry *next;
  int64_t account_id;
  char channel[20];
  struct chan_cfg cfg;
};

/* One attempt being sent, from its read to its committed result. */
struct batch;

struct send {
  struct cascade *c;
  struct send *next_marked;      /* in c->marked: marked, waiting for a request slot */
  struct store_chan_due row;     /* text and extra owned */
  const struct chan_driver *drv;
  struct chan_req req;
  int64_t started_ms;
};

struct cascade {
  uv_loop_t *loop;
  struct store *store;
  struct dispatch *dispatch;
  struct cascade_opts o;
  struct http_client *http;
  struct cfg_entry *cfgs;
  uv_timer_t send_timer;
  uv_timer_t wait_timer;
  uv_timer_t poll_timer;
  uv_timer_t scan_timer;         /* when the next retry comes due */
  int64_t wait_armed;            /* deadline the wait timer is set for, 0 none */
  int waits_pending;             /* deadline operations not yet committed */
  int wait_more;                 /* the last deadline read was full */
  int64_t *known;                /* attempt ids queued or being sent (open addressing,
                                    0 empty), so none is taken twice */
  size_t known_cap;
  size_t nknown;
  int64_t *ready;                /* ring of attempt ids due now, waiting for room */
  size_t rhead, rlen, rcap;
  int ninflight;                 /* sends from their read to their committed result */
  int nrequests;                 /* of those, provider requests on the wire (an open
                                    batch counts as one) */
  struct batch *open[MAX_OPEN_BATCHES];   /* batches filling during pump_sends() */
  int nopen;
  struct send **try_q;           /* sends to mark before they go (trying_flush) */
  int ntry, try_cap;
  struct send *marked, *marked_tail;   /* marked, waiting for a request slot */
  int stopping;
  int closing;                   /* handles still to close */
  void (*stop_done)(void *);
  void *stop_ud;
  struct chan_counters cnt[NCHAN];
  int ncnt;
  int64_t ids[SCAN_MAX];
  struct store_wait_due waits[SCAN_MAX];
};

static void pump_sends(struct cascade *c);
static void pump_waits(struct cascade *c);
static void maybe_close(struct cascade *c);
static void on_send_timer(uv_timer_t *t) { pump_sends(t->data); }
static void on_wait_timer(uv_timer_t *t) { pump_waits(t->data); }

static struct chan_counters *counters(struct cascade *c, const char *channel) {
  for (int i = 0; i < c->ncnt; i++)
    if (strcmp(c->cnt[i].name, channel) == 0) return &c->cnt[i];
  if (c->ncnt == NCHAN) return &c->cnt[NCHAN - 1];
  struct chan_counters *k = &c->cnt[c->ncnt++];
  snprintf(k->name, sizeof k->name, "%s", channel);
  return k;
}

/* ---- the known set and the ready ring -------------------------------------- */

static size_t slot_of(size_t cap, int64_t id) {
  uint64_t h = (uint64_t)id * 0x9E3779B97F4A7C15ull;
  return (size_t)(h >> 20) & (cap - 1);
}

static int known_has(const struct cascade *c, int64_t id) {
  for (size_t i = slot_of(c->known_cap, id);; i = (i + 1) & (c->known_cap - 1)) {
    if (c->known[i] == id) return 1;
    if (c->known[i] == 0) return 0;
  }
}

static void known_put(int64_t *tab, size_t cap, int64_t id) {
  size_t i = slot_of(cap, id);
  while (tab[i] != 0) i = (i + 1) & (cap - 1);
  tab[i] = id;
}

static void known_add(struct cascade *c, int64_t id) {
  if ((c->nknown + 1) * 2 > c->known_cap) {
    /* Grows at half full; a burst of due attempts costs 16 bytes each. */
    size_t cap = c->known_cap * 2;
    int64_t *tab = kk_xcalloc(cap, sizeof *tab);
    for (size_t i = 0; i < c->known_cap; i++)
      if (c->known[i]) known_put(tab, cap, c->known[i]);
    free(c->known);
    c->known = tab;
    c->known_cap = cap;
  }
  known_put(c->known, c->known_cap, id);
  c->nknown++;
}

static void known_del(struct cascade *c, int64_t id) {
  size_t cap = c->known_cap, i = slot_of(cap, id);
  while (c->known[i] != id) {
    if (c->known[i] == 0) return;
    i = (i + 1) & (cap - 1);
  }
  c->nknown--;
  /* Backward-shift deletion keeps every probe chain whole. */
  size_t j = i;
  for (;;) {
    c->known[i] = 0;
    for (;;) {
      j = (j + 1) & (cap - 1);
      if (c->known[j] == 0) return;
      size_t k = slot_of(cap, c->known[j]);
      if ((j > i && (k <= i || k > j)) || (j < i && (k <= i && k > j))) break;
    }
    c->known[i] = c->known[j];
    i = j;
  }
}

/* Queues an attempt to be sent when there is room (once). */
static void ready_push(struct cascade *c, int64_t id) {
  if (known_has(c, id)) return;
  known_add(c, id);
  if (c->rlen == c->rcap) {
    size_t cap = c->rcap ? 2 * c->rcap : 1024;
    int64_t *r = kk_xmalloc(cap * sizeof *r);
    for (size_t i = 0; i < c->rlen; i++) r[i] = c->ready[(c->rhead + i) % c->rcap];
    free(c->ready);
    c->ready = r;
    c->rcap = cap;
    c->rhead = 0;
  }
  c->ready[(c->rhead + c->rlen) % c->rcap] = id;
  c->rlen++;
}

static int64_t ready_pop(struct cascade *c) {
  int64_t id = c->ready[c->rhead];
  c->rhead = (c->rhead + 1) % c->rcap;
  c->rlen--;
  return id;
}

/* ---- settings ---------------------------------------------------------------- */

struct field {
  const char *name;
  size_t off, cap;             /* cap 0: an integer (int64_t) */
  const char *channels;        /* comma-separated channels it applies to, NULL: all */
  int secret;
};

#define F(n, ch, sec) {#n, offsetof(struct chan_cfg, n), sizeof(((struct chan_cfg *)0)->n), ch, sec}
static const struct field fields[] = {
    F(base_url, "vk,viber,telegram,telegram_gateway,whatsapp", 0),
    F(token, NULL, 1),
    F(secret, "vk,telegram,whatsapp", 1),
    F(sender, NULL, 0),
    {"group_id", offsetof(struct chan_cfg, group_id), 0, "vk", 0},
    F(confirmation, "vk", 0),
    F(phone_number_id, "whatsapp", 0),
    F(verify_token, "whatsapp", 1),
    F(api_version, "whatsapp", 0),
    F(smtp_url, "email", 0),
    F(from, "email", 0),
};
#undef F
#define NFIELDS (sizeof fields / sizeof fields[0])

static int field_applies(const struct field *f, const char *channel) {
  if (f->channels == NULL) return 1;
  size_t n = strlen(channel);
  for (const char *p = f->channels; *p;) {
    const char *e = strchr(p, ',');
    size_t len = e ? (size_t)(e - p) : strlen(p);
    if (len == n && strncmp(p, channel, n) == 0) return 1;
    if (!e) break;
    p = e + 1;
  }
  return 0;
}

static int url_ok(const char *u, const char *schemes) {
  if (strpbrk(u, " \r\n\t\"<>")) return 0;
  for (const char *p = schemes; *p;) {
    const char *e = strchr(p, ',');
    size_t len = e ? (size_t)(e - p) : strlen(p);
    if (strncmp(u, p, len) == 0 && strncmp(u + len, "://", 3) == 0 && u[len + 3]) return 1;
    if (!e) break;
    p = e + 1;
  }
  return 0;
}

int cascade_cfg_parse(const char *channel, json_t *obj, struct chan_cfg *cfg, char *err,
                      size_t errcap, const char **field) {
  memset(cfg, 0, sizeof *cfg);
  *field = NULL;
  if (!json_is_object(obj)) {
    snprintf(err, errcap, "the body must be a JSON object");
    return KK_EINVAL;
  }
  const char *key;
  json_t *v;
  json_object_foreach(obj, key, v) {
    const struct field *f = NULL;
    for (size_t i = 0; i < NFIELDS; i++)
      if (strcmp(fields[i].name, key) == 0) f = &fields[i];
    if (f == NULL || !field_applies(f, channel)) {
      if (strcmp(key, "webhook_url") == 0 || strcmp(key, "channel") == 0 ||
          strcmp(key, "source") == 0 || strcmp(key, "reports") == 0)
        continue;   /* read-only fields of GET, sent back unchanged */
      *field = key;
      snprintf(err, errcap, "%s: not a setting of the %s channel", key, channel);
      return KK_EINVAL;
    }
    if (json_is_null(v)) continue;
    if (f->cap == 0) {
      if (!json_is_integer(v) || json_integer_value(v) <= 0) {
        *field = f->name;
        snprintf(err, errcap, "%s: a positive integer", f->name);
        return KK_EINVAL;
      }
      *(int64_t *)((char *)cfg + f->off) = json_integer_value(v);
      continue;
    }
    const char *s = json_string_value(v);
    if (s == NULL || strlen(s) >= f->cap || strpbrk(s, "\r\n")) {
      *field = f->name;
      snprintf(err, errcap, "%s: a string of at most %zu characters", f->name, f->cap - 1);
      return KK_EINVAL;
    }
    snprintf((char *)cfg + f->off, f->cap, "%s", s);
  }
  size_t n = strlen(cfg->base_url);
  while (n > 0 && cfg->base_url[n - 1] == '/') cfg->base_url[--n] = '\0';
  if (cfg->base_url[0] && (!url_ok(cfg->base_url, "http,https") ||
                           strchr(strchr(cfg->base_url, ':') + 3, '/'))) {
    *field = "base_url";
    snprintf(err, errcap, "base_url: the provider's scheme and host only, e.g. https://api.vk.com");
    return KK_EINVAL;
  }
  if (cfg->smtp_url[0] && !url_ok(cfg->smtp_url, "smtp,smtps")) {
    *field = "smtp_url";
    snprintf(err, errcap, "smtp_url: smtp://host:port or smtps://host:port");
    return KK_EINVAL;
  }
  if (strcmp(channel, "telegram") == 0 && cfg->secret[0]) {
    for (const char *p = cfg->secret; *p; p++)
      if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
            *p == '_' || *p == '-')) {
        *field = "secret";
        snprintf(err, errcap, "secret: Telegram's secret_token allows A-Z, a-z, 0-9, _ and -");
        return KK_EINVAL;
      }
  }
  if (strcmp(channel, "sms") != 0 && strcmp(channel, "email") != 0 && cfg->token[0] == '\0') {
    *field = "token";
    snprintf(err, errcap, "token: required for %s", channel);
    return KK_EINVAL;
  }
  if (strcmp(channel, "email") == 0 && (!cfg->smtp_url[0] || !cfg->from[0])) {
    *field = cfg->smtp_url[0] ? "from" : "smtp_url";
    snprintf(err, errcap, "%s: required for email", *field);
    return KK_EINVAL;
  }
  if (strcmp(channel, "whatsapp") == 0 && !cfg->phone_number_id[0]) {
    *field = "phone_number_id";
    snprintf(err, errcap, "phone_number_id: required for whatsapp");
    return KK_EINVAL;
  }
  return 0;
}

json_t *cascade_cfg_json(const struct chan_cfg *cfg) {
  json_t *o = json_object();
  for (size_t i = 0; i < NFIELDS; i++) {
    const struct field *f = &fields[i];
    if (f->cap == 0) {
      int64_t v = *(const int64_t *)((const char *)cfg + f->off);
      if (v) json_object_set_new(o, f->name, json_integer(v));
    } else {
      const char *s = (const char *)cfg + f->off;
      if (s[0]) json_object_set_new(o, f->name, json_string(s));
    }
  }
  return o;
}

static struct cfg_entry *cfg_find(struct cascade *c, int64_t account_id, const char *channel) {
  for (struct cfg_entry *e = c->cfgs; e; e = e->next)
    if (e->account_id == account_id && strcmp(e->channel, channel) == 0) return e;
  return NULL;
}

const struct chan_cfg *cascade_cfg(struct cascade *c, int64_t account_id, const char *channel,
                                   int64_t *scope) {
  struct cfg_entry *e = account_id ? cfg_find(c, account_id, channel) : NULL;
  if (e == NULL) e = cfg_find(c, 0, channel);
  if (scope) *scope = e ? e->account_id : 0;
  return e ? &e->cfg : NULL;
}

void cascade_cfg_set(struct cascade *c, int64_t account_id, const char *channel,
                     const struct chan_cfg *cfg) {
  struct cfg_entry **pp = &c->cfgs;
  while (*pp && !((*pp)->account_id == account_id && strcmp((*pp)->channel, channel) == 0))
    pp = &(*pp)->next;
  if (cfg == NULL) {
    if (*pp) {
      struct cfg_entry *e = *pp;
      *pp = e->next;
      free(e);
    }
    return;
  }
  if (*pp == NULL) {
    /* Freed by cascade_cfg_set(NULL) or at stop. */
    *pp = kk_xcalloc(1, sizeof **pp);
    (*pp)->account_id = account_id;
    snprintf((*pp)->channel, sizeof (*pp)->channel, "%s", channel);
  }
  (*pp)->cfg = *cfg;
}

static void load_cfg(void *arg, int64_t account_id, const char *channel, const char *config) {
  struct cascade *c = arg;
  json_t *j = json_loads(config, 0, NULL);
  struct chan_cfg cfg;
  char err[160];
  const char *field;
  if (cascade_cfg_parse(channel, j, &cfg, err, sizeof err, &field) == 0)
    cascade_cfg_set(c, account_id, channel, &cfg);
  else
    kk_warnx(LOGCTX, "stored settings of %s for account %lld ignored: %s", channel,
             (long long)account_id, err);
  json_decref(j);
}

void cascade_webhook_url(struct cascade *c, int64_t scope, const char *channel, char *out,
                         size_t cap) {
  char who[48] = "default";
  if (scope) {
    struct store_account acc;
    if (store_account_get_by_id(c->store, scope, &acc) == 0)
      snprintf(who, sizeof who, "%s", acc.public_id);
  }
  size_t n = strlen(c->o.public_url);
  while (n > 0 && c->o.public_url[n - 1] == '/') n--;
  snprintf(out, cap, "%.*s/v1/hooks/%s/%s", (int)n, c->o.public_url, channel, who);
}

/* ---- sending --------------------------------------------------------------- */

static void send_free(struct send *k) {
  free(k->row.text);
  free(k->row.extra);
  chan_req_free(&k->req);
  free(k);
}

static void on_result_stored(void *arg, int rc) {
  struct send *k = arg;
  struct cascade *c = k->c;
  if (rc) kk_error(LOGCTX, "attempt %lld: result not stored: %s", (long long)k->row.attempt_id,
                   kk_strerror(rc));
  known_del(c, k->row.attempt_id);
  c->ninflight--;
  send_free(k);
  if (!c->stopping)
    uv_timer_start(&c->send_timer, on_send_timer, 0, 0);
  else
    maybe_close(c);
}

static void store_result(struct send *k, enum store_chan_outcome outcome, const char *provider_id,
                         const char *error, int64_t retry_at) {
  struct store_chan_result r = {.attempt_id = k->row.attempt_id, .outcome = outcome,
                                .provider_id = provider_id, .error = error,
                                .at = store_now_ms(), .retry_at = retry_at, .units = 1};
  store_chan_result(k->c->store, &r, on_result_stored, k);
}

static long backoff_ms(const struct cascade *c, int tries) {
  long d = c->o.retry_min_ms;
  for (int i = 0; i < tries && d < c->o.retry_max_ms; i++) d *= 2;
  return d < c->o.retry_max_ms ? d : c->o.retry_max_ms;
}

/* A send's request ended at stop without an answer: the attempt stays due
   in the store. */
static void send_abort(struct send *k) {
  struct cascade *c = k->c;
  known_del(c, k->row.attempt_id);
  c->ninflight--;
  send_free(k);
  maybe_close(c);
}

/* What the provider's answer means for one send: stores its result. */
static void send_result(struct send *k, const struct http_client_resp *resp,
                        struct chan_result *res) {
  struct cascade *c = k->c;
  struct chan_counters *n = counters(c, k->row.channel);
  n->req_ms_sum += resp->total_ms;
  if (resp->refused) {
    /* The settings lead where kaskad does not connect: no retry can help. */
    res->outcome = CHAN_CONFIG;
    snprintf(res->error, sizeof res->error, "%s", resp->error);
  }
  if (resp->status == 0 && res->error[0] == '\0')
    snprintf(res->error, sizeof res->error, "no answer: %s", resp->error);
  int64_t now = store_now_ms();
  switch (res->outcome) {
  case CHAN_OK: {
    n->req_ok++;
    char pid[72];
    if (res->provider_id[0])
      snprintf(pid, sizeof pid, "%s", res->provider_id);
    else
      snprintf(pid, sizeof pid, "%lld.%s@kaskad", (long long)k->row.attempt_id, k->row.public_id);
    kk_debug(LOGCTX, "message %s: %s accepted it as %s", k->row.public_id, k->row.channel, pid);
    store_result(k, STORE_CHAN_SENT, pid, NULL, 0);
    return;
  }
  case CHAN_RETRY: {
    n->req_retry++;
    long delay = res->retry_after_ms > 0 ? res->retry_after_ms : backoff_ms(c, k->row.tries);
    if (now + delay >= k->row.expires_at) {
      char why[200];
      snprintf(why, sizeof why, "validity ended: %s", res->error);
      store_result(k, STORE_CHAN_FAILED, NULL, why, 0);
      return;
    }
    kk_info(LOGCTX, "message %s: %s answered %s [%s]; again in %ld ms", k->row.public_id,
            k->row.channel, res->error, res->detail, delay);
    store_result(k, STORE_CHAN_RETRY, NULL, res->error, now + delay);
    return;
  }
  case CHAN_CONFIG:
    n->req_config++;
    kk_warnx(LOGCTX, "message %s: %s refused the account's settings: %s [%s]", k->row.public_id,
             k->row.channel, res->error, res->detail);
    store_result(k, STORE_CHAN_FAILED, NULL, res->error, 0);
    return;
  case CHAN_FAIL:
  default:
    n->req_failed++;
    kk_info(LOGCTX, "message %s: %s failed: %s [%s]", k->row.public_id, k->row.channel,
            res->error, res->detail);
    store_result(k, STORE_CHAN_FAILED, NULL, res->error, 0);
    return;
  }
}

/* A request's slot is free: its results only wait for their commit. */
static void request_ended(struct cascade *c) {
  c->nrequests--;
  if (!c->stopping && c->rlen > 0) uv_timer_start(&c->send_timer, on_send_timer, 0, 0);
}

static void on_reply(void *arg, const struct http_client_resp *resp) {
  struct send *k = arg;
  request_ended(k->c);
  if (k->c->stopping && resp->status == 0) {
    send_abort(k);
    return;
  }
  struct chan_result res;
  memset(&res, 0, sizeof res);
  k->drv->parse_reply(resp->status, resp->body, resp->body_len, resp->retry_after, &res);
  send_result(k, resp, &res);
}

/* ---- batches: several sends in one request (VK's execute) ---------------------- */

struct batch {
  struct cascade *c;
  const struct chan_cfg *cfg;    /* the settings every send of it was built with */
  struct chan_req req;
  int n;
  struct send *k[CHAN_BATCH_MAX];
  const struct chan_req *reqs[CHAN_BATCH_MAX];   /* each send's own request */
};

static void on_batch_reply(void *arg, const struct http_client_resp *resp) {
  struct batch *b = arg;
  struct cascade *c = b->c;
  request_ended(c);
  struct chan_result res[CHAN_BATCH_MAX];
  if (!(c->stopping && resp->status == 0))
    b->k[0]->drv->parse_batch_reply(resp->status, resp->body, resp->body_len, resp->retry_after,
                                    res, b->n);
  for (int i = 0; i < b->n; i++) {
    if (c->stopping && resp->status == 0)
      send_abort(b->k[i]);
    else
      send_result(b->k[i], resp, &res[i]);
  }
  chan_req_free(&b->req);
  free(b);
}

static struct http_client_req http_req_of(const struct cascade *c, const struct chan_req *r) {
  return (struct http_client_req){
      .method = r->method,
      .url = r->url,
      .headers = (const char *const *)r->headers,
      .nheaders = r->nheaders,
      .body = r->body,
      .body_len = r->body_len,
      .timeout_ms = c->o.request_timeout_ms,
      .mail_from = r->mail_from,
      .mail_rcpt = r->mail_rcpt,
      .username = r->username,
      .password = r->password,
  };
}

/* Puts k's own request on the wire (its slot in nrequests is taken). */
static void request_start(struct cascade *c, struct send *k) {
  struct http_client_req hr = http_req_of(c, &k->req);
  if (c->http == NULL || http_client_do(c->http, &hr, on_reply, k) != 0) {
    c->nrequests--;
    store_result(k, STORE_CHAN_RETRY, NULL, "cannot start the request",
                 store_now_ms() + backoff_ms(c, k->row.tries));
  }
}

/* Sends an open batch: one send alone as itself, more in one request, or one
   by one when they do not fit in one. The batch's slot in nrequests was
   taken when it was opened. */
static void batch_flush(struct cascade *c, struct batch *b) {
  if (b->n > 1 && b->k[0]->drv->batch(b->cfg, (const struct chan_req *const *)b->reqs, b->n,
                                      &b->req) == 0) {
    struct http_client_req hr = http_req_of(c, &b->req);
    if (c->http && http_client_do(c->http, &hr, on_batch_reply, b) == 0) return;
    for (int i = 0; i < b->n; i++)
      store_result(b->k[i], STORE_CHAN_RETRY, NULL, "cannot start the request",
                   store_now_ms() + backoff_ms(c, b->k[i]->row.tries));
    c->nrequests--;
  } else {
    for (int i = 0; i < b->n; i++) {
      if (i > 0) c->nrequests++;
      request_start(c, b->k[i]);
    }
  }
  chan_req_free(&b->req);
  free(b);
}

/* Adds k to the open batch of its settings (opening one if needed). */
static void batch_add(struct cascade *c, struct send *k, const struct chan_cfg *cfg) {
  struct batch *b = NULL;
  int i;
  for (i = 0; i < c->nopen; i++)
    if (c->open[i]->cfg == cfg) b = c->open[i];
  if (b == NULL) {
    if (c->nopen == MAX_OPEN_BATCHES) {
      batch_flush(c, c->open[0]);
      memmove(c->open, c->open + 1, (size_t)(--c->nopen) * sizeof c->open[0]);
    }
    /* Freed by batch_flush() or on_batch_reply(). */
    b = kk_xcalloc(1, sizeof *b);
    b->c = c;
    b->cfg = cfg;
    c->open[c->nopen++] = b;
    c->nrequests++;
  }
  b->k[b->n] = k;
  b->reqs[b->n++] = &k->req;
  if (b->n == k->drv->batch_max || b->n == CHAN_BATCH_MAX) {
    for (i = 0; c->open[i] != b; i++) {
    }
    memmove(c->open + i, c->open + i + 1, (size_t)(c->nopen - i - 1) * sizeof c->open[0]);
    c->nopen--;
    batch_flush(c, b);
  }
}

static void batches_flush(struct cascade *c) {
  while (c->nopen > 0) batch_flush(c, c->open[--c->nopen]);
}

/* ---- marking requests before they go --------------------------------------------
   A provider without an idempotency key would get a send twice if kaskad
   were killed while its request was under way and sent it again after the
   restart. So such a send is marked in the store (attempts.try_at) before its
   request starts; a marked attempt read after a restart fails as
   interrupted instead of going again, and the cascade goes on. */

struct trying {
  struct cascade *c;
  int n;
  int64_t *ids;                  /* the sends' attempt ids, for the store */
  struct send *k[];
};

/* A group of n sends for store_chan_trying(); freed by on_marked() or
   on_unmarked(). The caller fills k[] and ids[]. */
static struct trying *trying_new(struct cascade *c, int n) {
  struct trying *t = kk_xmalloc(sizeof *t + (size_t)n * sizeof t->k[0]);
  t->c = c;
  t->n = n;
  t->ids = kk_xmalloc((size_t)n * sizeof *t->ids);
  return t;
}

static void on_unmarked(void *arg, int rc) {
  struct trying *t = arg;
  for (int i = 0; i < t->n; i++) send_abort(t->k[i]);
  free(t->ids);
  free(t);
}

static void on_marked(void *arg, int rc) {
  struct trying *t = arg;
  struct cascade *c = t->c;
  if (c->stopping) {
    /* Never sent: the marks go, so that after the restart they are sent. */
    store_chan_trying(c->store, t->ids, t->n, 0, on_unmarked, t);
    return;
  }
  for (int i = 0; i < t->n; i++) {
    struct send *k = t->k[i];
    if (rc == 0) {
      k->next_marked = NULL;
      if (c->marked_tail)
        c->marked_tail->next_marked = k;
      else
        c->marked = k;
      c->marked_tail = k;
    } else {
      store_result(k, STORE_CHAN_RETRY, NULL, "cannot mark the request in the store",
                   store_now_ms() + backoff_ms(c, k->row.tries));
    }
  }
  free(t->ids);
  free(t);
  if (c->marked) uv_timer_start(&c->send_timer, on_send_timer, 0, 0);
}

/* At stop: the marked sends that did not go lose their marks (so that they
   are sent after the restart) and leave. */
static void marked_drop(struct cascade *c) {
  int n = 0;
  for (struct send *k = c->marked; k; k = k->next_marked) n++;
  if (n == 0) return;
  struct trying *t = trying_new(c, n);
  n = 0;
  for (struct send *k = c->marked; k; k = k->next_marked) {
    t->k[n] = k;
    t->ids[n++] = k->row.attempt_id;
  }
  c->marked = c->marked_tail = NULL;
  store_chan_trying(c->store, t->ids, t->n, 0, on_unmarked, t);
}

/* Marks the sends gathered by pump_sends(); once that is committed they
   wait in c->marked for a request slot (until then they count in ninflight
   only, so a slow commit does not hold other requests back). */
static void trying_flush(struct cascade *c) {
  if (c->ntry == 0) return;
  struct trying *t = trying_new(c, c->ntry);
  for (int i = 0; i < c->ntry; i++) {
    t->k[i] = c->try_q[i];
    t->ids[i] = c->try_q[i]->row.attempt_id;
  }
  c->ntry = 0;
  store_chan_trying(c->store, t->ids, t->n, store_now_ms(), on_marked, t);
}

static void trying_add(struct cascade *c, struct send *k) {
  if (c->ntry == c->try_cap) {
    c->try_cap = c->try_cap ? 2 * c->try_cap : 64;
    c->try_q = kk_xrealloc(c->try_q, (size_t)c->try_cap * sizeof *c->try_q);
  }
  c->try_q[c->ntry++] = k;
}

/* WhatsApp: whether the recipient wrote to the number of the attempt's
   scope within the window (one lookup by primary key, in the read
   transaction of pump_sends). A failed read counts as closed. */
static int wa_window_open(struct cascade *c, const struct store_chan_due *row, int64_t now) {
  int64_t last = 0;
  int rc = store_wa_last_inbound(c->store, row->scope, row->to, &last);
  if (rc == KK_ESTORE)
    kk_warnx(LOGCTX, "message %s: the WhatsApp window cannot be read", row->public_id);
  return rc == 0 && now - last < CHAN_WA_WINDOW_MS;
}

/* Starts sending one due attempt (row's strings are taken over). */
static void send_start(struct cascade *c, struct store_chan_due *row) {
  /* Freed by send_free() once its result is committed. */
  struct send *k = kk_xcalloc(1, sizeof *k);
  k->c = c;
  k->row = *row;
  row->text = row->extra = NULL;
  c->ninflight++;   /* its id is in the known set since it was queued */
  k->started_ms = store_now_ms();
  k->drv = chan_driver(k->row.channel);
  if (k->drv == NULL || k->drv->build == NULL) {
    store_result(k, STORE_CHAN_FAILED, NULL, "no driver for this channel", 0);
    return;
  }
  if (k->started_ms >= k->row.expires_at) {
    store_result(k, STORE_CHAN_FAILED, NULL, "validity ended before it could be sent", 0);
    return;
  }
  if (kk_hold_has(c->o.hold, k->row.account_id)) {
    /* Its account is suspended: the attempt stays due in the store, and the
       safety-net poll brings it back (sent once released, expired as usual). */
    known_del(c, k->row.attempt_id);
    c->ninflight--;
    send_free(k);
    return;
  }
  if (k->row.try_at && !k->drv->resend_safe) {
    store_result(k, STORE_CHAN_FAILED, NULL,
                 "interrupted: kaskad stopped while the request was under way; not sent again, "
                 "so that the person does not get it twice",
                 0);
    return;
  }
  /* The settings it was started with; if they are gone, the effective ones. */
  struct cfg_entry *e = cfg_find(c, k->row.scope, k->row.channel);
  const struct chan_cfg *cfg = e ? &e->cfg : cascade_cfg(c, k->row.account_id, k->row.channel, NULL);
  if (cfg == NULL) {
    store_result(k, STORE_CHAN_FAILED, NULL, "channel not configured", 0);
    return;
  }
  json_t *x = json_loads(k->row.extra, 0, NULL);
  json_t *button = json_object_get(x, "button");
  json_t *tpl = json_object_get(x, "whatsapp_template");
  char *tpl_text = tpl ? json_dumps(tpl, JSON_COMPACT) : NULL;
  /* Only the Gateway takes a callback URL in the request; the URL of an
     account's webhook costs a read of the account. */
  char hook[512] = "";
  if (strcmp(k->row.channel, "telegram_gateway") == 0)
    cascade_webhook_url(c, e ? e->account_id : 0, k->row.channel, hook, sizeof hook);
  /* A channel that falls back to the phone (Viber business messages) gets no
     address of its own then. */
  const char *address = k->row.address;
  if (k->drv->address_field && k->drv->phone_fallback &&
      json_object_get(x, k->drv->address_field) == NULL)
    address = NULL;
  struct chan_msg m = {
      .attempt_id = k->row.attempt_id,
      .public_id = k->row.public_id,
      .to = k->row.to,
      .address = address,
      .text = k->row.text,
      .subject = json_string_value(json_object_get(x, "subject")),
      .image = json_string_value(json_object_get(x, "image")),
      .button_caption = json_string_value(json_object_get(button, "caption")),
      .button_url = json_string_value(json_object_get(button, "url")),
      .wa_template = tpl_text,
      .wa_window = strcmp(k->row.channel, "whatsapp") == 0 &&
                   wa_window_open(c, &k->row, k->started_ms),
      .code = json_string_value(json_object_get(x, "code")),
      .msg_class = k->row.msg_class,
      .ttl_s = (int)((k->row.expires_at - k->started_ms) / 1000),
      .callback_url = hook[0] ? hook : NULL,
  };
  char err[160] = "";
  int rc = k->drv->build(cfg, &m, &k->req, err, sizeof err);
  free(tpl_text);
  json_decref(x);
  if (rc != 0) {
    if (!err[0]) snprintf(err, sizeof err, "%s", kk_strerror(rc));
    store_result(k, STORE_CHAN_FAILED, NULL, err, 0);
    return;
  }
  if (k->drv->batch_max > 1 && k->drv->batch) {
    batch_add(c, k, cfg);
  } else if (!k->drv->resend_safe) {
    trying_add(c, k);
  } else {
    c->nrequests++;
    request_start(c, k);
  }
}

/* Sends queued attempts while there is room. */
static void pump_sends(struct cascade *c) {
  /* Results waiting for their commit are bounded too (a slow disk slows
     sending down instead of filling memory). */
  int reading = 0;
  while (!c->stopping && c->marked && c->nrequests < c->o.max_inflight) {
    struct send *k = c->marked;
    c->marked = k->next_marked;
    if (c->marked == NULL) c->marked_tail = NULL;
    c->nrequests++;
    request_start(c, k);
  }
  while (!c->stopping && c->nrequests < c->o.max_inflight &&
         c->ninflight < 8 * c->o.max_inflight && c->rlen > 0) {
    if (!reading++) store_read_begin(c->store);
    int64_t id = ready_pop(c);
    struct store_chan_due row;
    if (store_chan_get(c->store, id, &row) != 0) {
      known_del(c, id);    /* no longer due: sent, timed out or gone */
      continue;
    }
    send_start(c, &row);
  }
  batches_flush(c);
  trying_flush(c);
  if (reading) store_read_end(c->store);
}

/* Reads every attempt due now from the store's index into the ready ring
   (at start, when retries come due, and as a slow safety net). */
static void scan_due(struct cascade *c) {
  if (c->stopping) return;
  int64_t now = store_now_ms(), cur_due = 0, cur_id = 0;
  int n;
  do {
    n = 0;
    if (store_chan_due_ids(c->store, now, &cur_due, &cur_id, c->ids, SCAN_MAX, &n) != 0) break;
    for (int i = 0; i < n; i++) ready_push(c, c->ids[i]);
  } while (n == SCAN_MAX);
  pump_sends(c);
}

static void on_scan_timer(uv_timer_t *t) { scan_due(t->data); }

/* ---- deadlines ---------------------------------------------------------------- */

static void on_timeout_stored(void *arg, int rc) {
  struct cascade *c = arg;
  if (rc) kk_error(LOGCTX, "step deadline not stored: %s", kk_strerror(rc));
  if (--c->waits_pending > 0) return;
  if (c->stopping)
    maybe_close(c);
  else
    pump_waits(c);
}

static void arm_wait(struct cascade *c, int64_t at) {
  if (c->stopping || at <= 0) return;
  if (c->wait_armed && c->wait_armed <= at) return;
  c->wait_armed = at;
  int64_t delay = at - store_now_ms();
  uv_timer_start(&c->wait_timer, on_wait_timer, delay > 0 ? (uint64_t)delay : 0, 0);
}

static void pump_waits(struct cascade *c) {
  if (c->stopping || c->waits_pending > 0) return;
  c->wait_armed = 0;
  int64_t now = store_now_ms();
  int n = 0;
  store_wait_due(c->store, now, c->waits, SCAN_MAX, &n);
  for (int i = 0; i < n; i++) {
    c->waits_pending++;
    store_step_timeout(c->store, c->waits[i].msg_id, c->waits[i].step, now, on_timeout_stored, c);
  }
  if (n == 0) arm_wait(c, store_wait_next(c->store));
}

/* ---- notes from the store -------------------------------------------------- */

static void on_notes(void *ud, const struct store_note *notes, int n) {
  struct cascade *c = ud;
  if (c->stopping) return;
  int64_t now = store_now_ms(), send_at = 0;
  for (int i = 0; i < n; i++) {
    const struct store_note *t = &notes[i];
    switch (t->kind) {
    case STORE_NOTE_CHANNEL:
      if (t->at <= now)
        ready_push(c, t->attempt_id);
      else if (send_at == 0 || t->at < send_at)
        send_at = t->at;   /* a retry later: the index brings it then */
      break;
    case STORE_NOTE_WAIT:
      arm_wait(c, t->at);
      break;
    case STORE_NOTE_CHANNEL_CFG:
      if (t->cfg->text)
        load_cfg(c, t->account_id, t->cfg->name, t->cfg->text);
      else
        cascade_cfg_set(c, t->account_id, t->cfg->name, NULL);
      break;
    default:   /* SMS notes are the dispatcher's */
      break;
    }
  }
  if (send_at) {
    uint64_t delay = (uint64_t)(send_at - now);
    if (!uv_is_active((uv_handle_t *)&c->scan_timer) || delay < uv_timer_get_due_in(&c->scan_timer))
      uv_timer_start(&c->scan_timer, on_scan_timer, delay, 0);
  }
  if (c->rlen > 0) uv_timer_start(&c->send_timer, on_send_timer, 0, 0);
}

static void on_poll(uv_timer_t *t) {
  struct cascade *c = t->data;
  if (c->rlen == 0) scan_due(c);
  if (c->wait_armed == 0) pump_waits(c);
}

/* ---- provider callbacks ------------------------------------------------------ */

/* A verified callback whose statuses (and messages from people) are being
   stored: as many items as it had statuses (a callback is small; the parsed
   form is not). */
struct hook_ctx {
  struct cascade *c;
  char channel[20];
  int left;                          /* operations not yet committed */
  int rc;                            /* the first that failed, 0 if none */
  char reply[256];                   /* the answer once they are */
  void (*reply_fn)(void *ud, int status, const char *body);
  void *ud;
  int n;
  struct hook_item {
    struct chan_status cs;           /* what st points into */
    struct store_chan_status st;
  } item[];
};

/* One operation of the callback is committed; the last one answers. */
static void hook_stored(struct hook_ctx *h, int rc) {
  if (rc && !h->rc) h->rc = rc;
  if (--h->left > 0) return;
  struct chan_counters *n = counters(h->c, h->channel);
  int matched = 0;
  for (int i = 0; i < h->n; i++) matched += h->item[i].st.matched > 0;
  n->hook_applied += (uint64_t)matched;
  n->hook_unmatched += (uint64_t)(h->n - matched);
  h->reply_fn(h->ud, h->rc ? 503 : 200, h->rc ? "" : h->reply);
  free(h);
}

static void on_status_stored(void *arg, int rc) {
  struct hook_ctx *h = arg;
  if (rc) kk_error(LOGCTX, "%s callback: status not stored: %s", h->channel, kk_strerror(rc));
  hook_stored(h, rc);
}

static void on_inbound_stored(void *arg, int rc) {
  struct hook_ctx *h = arg;
  if (rc)
    kk_error(LOGCTX, "%s callback: a person's message not stored: %s", h->channel,
             kk_strerror(rc));
  hook_stored(h, rc);
}

void cascade_hook(struct cascade *c, const char *channel, int64_t scope,
                  const struct chan_hook_in *in,
                  void (*reply)(void *ud, int status, const char *body), void *ud) {
  const struct chan_driver *drv = chan_driver(channel);
  struct cfg_entry *e = cfg_find(c, scope, channel);
  if (drv == NULL || drv->hook == NULL || e == NULL) {
    reply(ud, 404, "");
    return;
  }
  struct chan_hook_out out;   /* the driver clears what it uses (chan_hook_init) */
  int rc = drv->hook(&e->cfg, in, &out);
  struct chan_counters *n = counters(c, channel);
  if (rc != 0) {
    if (rc == KK_EAUTH)
      n->hook_forged++;
    else
      n->hook_malformed++;
    kk_warnx(LOGCTX, "%s callback for %s refused (%d): %s", channel,
             scope ? "an account" : "the operator's settings", out.http_status,
             out.reason[0] ? out.reason : kk_strerror(rc));
    reply(ud, out.http_status ? out.http_status : (rc == KK_EAUTH ? 403 : 400), "");
    return;
  }
  /* Messages from people matter to WhatsApp only: they open its window. */
  int ninbound = strcmp(channel, "whatsapp") == 0 ? out.ninbound : 0;
  if (out.nstatus == 0 && ninbound == 0) {
    reply(ud, out.http_status ? out.http_status : 200, out.reply);
    return;
  }
  /* Freed in hook_stored() once every status and message is committed. */
  struct hook_ctx *h = kk_xmalloc(sizeof *h + (size_t)out.nstatus * sizeof h->item[0]);
  h->c = c;
  snprintf(h->channel, sizeof h->channel, "%s", channel);
  memcpy(h->reply, out.reply, sizeof h->reply);
  h->reply_fn = reply;
  h->ud = ud;
  h->n = out.nstatus;
  h->left = out.nstatus + 2 * ninbound;  /* its window and its text */
  h->rc = 0;
  for (int i = 0; i < out.nstatus; i++) {
    struct hook_item *it = &h->item[i];
    it->cs = out.st[i];
    const struct chan_status *s = &it->cs;
    it->st = (struct store_chan_status){
        .channel = h->channel, .scope = scope, .provider_id = s->provider_id,
        .peer = s->peer, .read_upto = s->read_upto, .status = s->status,
        .error = s->error[0] ? s->error : NULL, .at = s->at ? s->at : store_now_ms()};
    store_chan_status(c->store, &it->st, on_status_stored, h);
  }
  for (int i = 0; i < ninbound; i++) {
    store_wa_inbound(c->store, scope, out.in[i].from, out.in[i].at, on_inbound_stored, h);
    /* And the message itself, for the account's GET /v1/replies. */
    struct store_inbound rin = {.channel = h->channel, .scope = scope, .from = out.in[i].from,
                                .text = out.in[i].text, .at = out.in[i].at};
    store_inbound_add(c->store, &rin, on_inbound_stored, h);
  }
}

/* ---- webhook registration ------------------------------------------------------ */

struct reg_ctx {
  struct chan_req req;
  void (*done)(void *ud, int status, const char *detail);
  void *ud;
  char channel[20];
};

/* The answer to a registration in kaskad's words: the provider's body is
   never echoed (the URL may lead anywhere the account chose), only the HTTP
   status and the provider's numeric error code. 1 when it succeeded. */
static int registration_verdict(const struct http_client_resp *resp, char *detail, size_t cap) {
  if (resp->status == 0) {
    snprintf(detail, cap, "%s", resp->refused ? resp->error : "the provider did not answer");
    return 0;
  }
  if (resp->status < 200 || resp->status > 299) {
    snprintf(detail, cap, "the provider refused the registration (HTTP %ld)", resp->status);
    return 0;
  }
  /* Both providers answer 200 with a verdict in the body: Telegram
     {"ok":false,"error_code":N}, Viber {"status":N} (0 is success). */
  json_t *j = json_loadb(resp->body, resp->body_len, 0, NULL);
  json_t *okv = json_object_get(j, "ok");
  json_t *st = json_object_get(j, "status");
  json_t *code = okv ? json_object_get(j, "error_code") : st;
  int ok = okv ? json_is_true(okv) : st ? json_is_integer(st) && json_integer_value(st) == 0 : 1;
  if (!ok && json_is_integer(code))
    snprintf(detail, cap, "the provider refused the registration (HTTP %ld, code %lld)",
             resp->status, (long long)json_integer_value(code));
  else if (!ok)
    snprintf(detail, cap, "the provider's answer is not a success (HTTP %ld)", resp->status);
  json_decref(j);
  return ok;
}

static void on_registered(void *arg, const struct http_client_resp *resp) {
  struct reg_ctx *r = arg;
  char detail[200] = "";
  int ok = registration_verdict(resp, detail, sizeof detail);
  if (ok)
    kk_info(LOGCTX, "%s webhook registered", r->channel);
  else
    kk_warnx(LOGCTX, "%s webhook registration failed: %s", r->channel, detail);
  r->done(r->ud, ok ? 0 : -1, ok ? "" : detail);
  chan_req_free(&r->req);
  free(r);
}

void cascade_register(struct cascade *c, int64_t scope, const char *channel,
                      void (*done)(void *ud, int status, const char *detail), void *ud) {
  const struct chan_driver *drv = chan_driver(channel);
  struct cfg_entry *e = cfg_find(c, scope, channel);
  if (drv == NULL || drv->build_register == NULL || e == NULL) {
    done(ud, 1, "");
    return;
  }
  /* Freed in on_registered(). */
  struct reg_ctx *r = kk_xcalloc(1, sizeof *r);
  r->done = done;
  r->ud = ud;
  snprintf(r->channel, sizeof r->channel, "%s", channel);
  char url[512];
  cascade_webhook_url(c, scope, channel, url, sizeof url);
  if (drv->build_register(&e->cfg, url, &r->req) != 0) {
    chan_req_free(&r->req);
    free(r);
    done(ud, -1, "cannot build the registration request");
    return;
  }
  struct http_client_req hr = {.method = r->req.method, .url = r->req.url,
                               .headers = (const char *const *)r->req.headers,
                               .nheaders = r->req.nheaders, .body = r->req.body,
                               .body_len = r->req.body_len,
                               .timeout_ms = c->o.request_timeout_ms};
  if (c->http == NULL || http_client_do(c->http, &hr, on_registered, r) != 0) {
    chan_req_free(&r->req);
    free(r);
    done(ud, -1, "cannot start the request");
  }
}

/* ---- life cycle ----------------------------------------------------------------- */

struct cascade *cascade_new(uv_loop_t *loop, struct store *store, struct dispatch *dispatch,
                            const struct cascade_opts *opts) {
  struct http_client *http = http_client_new(loop, 64 * 1024);
  if (http == NULL) return NULL;
  /* Freed in on_closed() after cascade_stop(). */
  struct cascade *c = kk_xcalloc(1, sizeof *c);
  c->loop = loop;
  c->store = store;
  c->dispatch = dispatch;
  c->http = http;
  if (opts) c->o = *opts;
  if (c->o.public_url == NULL) c->o.public_url = "http://127.0.0.1:8080";
  if (c->o.request_timeout_ms <= 0) c->o.request_timeout_ms = 10000;
  if (c->o.max_inflight <= 0) c->o.max_inflight = 256;
  if (c->o.retry_min_ms <= 0) c->o.retry_min_ms = 1000;
  if (c->o.retry_max_ms < c->o.retry_min_ms) c->o.retry_max_ms = 300000;
  c->known_cap = 1024;
  c->known = kk_xcalloc(c->known_cap, sizeof *c->known);
  uv_timer_init(loop, &c->send_timer);
  uv_timer_init(loop, &c->scan_timer);
  c->scan_timer.data = c;
  uv_timer_init(loop, &c->wait_timer);
  uv_timer_init(loop, &c->poll_timer);
  c->send_timer.data = c->wait_timer.data = c->poll_timer.data = c;
  store_subscribe(store, on_notes, c);
  return c;
}

int cascade_start(struct cascade *c) {
  if (store_channels_each(c->store, load_cfg, c) != 0) return KK_ESTORE;
  uv_timer_start(&c->scan_timer, on_scan_timer, 0, 0);
  uv_timer_start(&c->wait_timer, on_wait_timer, 0, 0);
  uv_timer_start(&c->poll_timer, on_poll, POLL_MS, POLL_MS);
  return 0;
}

int cascade_busy(const struct cascade *c) { return c->ninflight + c->waits_pending; }

static void on_closed(uv_handle_t *h) {
  struct cascade *c = h->data;
  if (--c->closing > 0) return;
  while (c->cfgs) {
    struct cfg_entry *e = c->cfgs;
    c->cfgs = e->next;
    free(e);
  }
  void (*done)(void *) = c->stop_done;
  void *ud = c->stop_ud;
  free(c->known);
  free(c->ready);
  free(c->try_q);
  free(c);
  if (done) done(ud);
}

static void on_http_closed(void *ud) {
  struct cascade *c = ud;
  c->closing += 4;
  uv_close((uv_handle_t *)&c->scan_timer, on_closed);
  uv_close((uv_handle_t *)&c->send_timer, on_closed);
  uv_close((uv_handle_t *)&c->wait_timer, on_closed);
  uv_close((uv_handle_t *)&c->poll_timer, on_closed);
}

/* Once nothing is in flight (or the grace is over), closes libcurl. */
static void maybe_close(struct cascade *c) {
  if (!c->stopping || c->http == NULL) return;
  if (c->ninflight > 0 || c->waits_pending > 0) return;
  struct http_client *h = c->http;
  c->http = NULL;
  uv_timer_stop(&c->poll_timer);
  http_client_close(h, on_http_closed, c);
}

static void on_grace_over(uv_timer_t *t) {
  struct cascade *c = t->data;
  if (c->http == NULL) return;
  if (c->ninflight > 0)
    kk_warnx(LOGCTX, "%d provider requests aborted at stop; they are sent again after a restart",
             c->ninflight);
  /* Aborted requests leave the in-flight set in on_reply(). */
  struct http_client *h = c->http;
  c->http = NULL;
  http_client_close(h, on_http_closed, c);
}

void cascade_stop(struct cascade *c, void (*done)(void *ud), void *ud) {
  if (c->stopping) return;
  c->stopping = 1;
  c->stop_done = done;
  c->stop_ud = ud;
  store_unsubscribe(c->store, on_notes, c);
  uv_timer_stop(&c->send_timer);
  uv_timer_stop(&c->scan_timer);
  uv_timer_stop(&c->wait_timer);
  marked_drop(c);
  /* Requests in flight get a short grace to finish and store their result. */
  uv_timer_start(&c->poll_timer, on_grace_over, 3000, 0);
  maybe_close(c);
}

/* ---- metrics ---------------------------------------------------------------------- */

void cascade_metrics(struct cascade *c, struct kk_buf *o) {
  kk_buf_puts(o, "# HELP kaskad_channel_requests_total Provider requests by channel and result.\n"
                 "# TYPE kaskad_channel_requests_total counter\n");
  for (int i = 0; i < c->ncnt; i++) {
    const struct chan_counters *n = &c->cnt[i];
    kk_buf_printf(o,
                  "kaskad_channel_requests_total{channel=\"%s\",result=\"accepted\"} %llu\n"
                  "kaskad_channel_requests_total{channel=\"%s\",result=\"retry\"} %llu\n"
                  "kaskad_channel_requests_total{channel=\"%s\",result=\"failed\"} %llu\n"
                  "kaskad_channel_requests_total{channel=\"%s\",result=\"settings_error\"} %llu\n",
                  n->name, (unsigned long long)n->req_ok, n->name,
                  (unsigned long long)n->req_retry, n->name, (unsigned long long)n->req_failed,
                  n->name, (unsigned long long)n->req_config);
  }
  kk_buf_puts(o, "# HELP kaskad_channel_callbacks_total Provider callbacks by result.\n"
                 "# TYPE kaskad_channel_callbacks_total counter\n");
  for (int i = 0; i < c->ncnt; i++) {
    const struct chan_counters *n = &c->cnt[i];
    kk_buf_printf(o,
                  "kaskad_channel_callbacks_total{channel=\"%s\",result=\"applied\"} %llu\n"
                  "kaskad_channel_callbacks_total{channel=\"%s\",result=\"unmatched\"} %llu\n"
                  "kaskad_channel_callbacks_total{channel=\"%s\",result=\"verification_failed\"} %llu\n"
                  "kaskad_channel_callbacks_total{channel=\"%s\",result=\"malformed\"} %llu\n",
                  n->name, (unsigned long long)n->hook_applied, n->name,
                  (unsigned long long)n->hook_unmatched, n->name,
                  (unsigned long long)n->hook_forged, n->name,
                  (unsigned long long)n->hook_malformed);
  }
  struct store_cascade_stats s;
  store_get_cascade_stats(c->store, &s);
  kk_buf_puts(o, "# HELP kaskad_cascade_attempts_total Cascade attempts by channel and outcome.\n"
                 "# TYPE kaskad_cascade_attempts_total counter\n");
  for (int i = 0; i < KK_CHAN_COUNT; i++) {
    if (!s.seen[i]) continue;
    const char *ch = kk_chan_name(i);
    const struct {
      const char *name;
      uint64_t v;
    } rows[] = {{"started", s.started[i]}, {"skipped", s.skipped[i]}, {"sent", s.sent[i]},
                {"delivered", s.delivered[i]}, {"read", s.read[i]}, {"failed", s.failed[i]},
                {"timeout", s.timeout[i]}};
    for (size_t r = 0; r < sizeof rows / sizeof rows[0]; r++)
      kk_buf_printf(o, "kaskad_cascade_attempts_total{channel=\"%s\",outcome=\"%s\"} %llu\n", ch,
                    rows[r].name, (unsigned long long)rows[r].v);
  }
  kk_buf_puts(o, "# HELP kaskad_cascade_fallthrough_total Steps that passed on to the next.\n"
                 "# TYPE kaskad_cascade_fallthrough_total counter\n");
  for (int i = 0; i < KK_CHAN_COUNT; i++)
    if (s.seen[i])
      kk_buf_printf(o, "kaskad_cascade_fallthrough_total{channel=\"%s\"} %llu\n", kk_chan_name(i),
                    (unsigned long long)s.fallthrough[i]);
  kk_buf_puts(o, "# HELP kaskad_cascade_late_statuses_total Statuses after their step ended.\n"
                 "# TYPE kaskad_cascade_late_statuses_total counter\n");
  for (int i = 0; i < KK_CHAN_COUNT; i++)
    if (s.seen[i])
      kk_buf_printf(o, "kaskad_cascade_late_statuses_total{channel=\"%s\"} %llu\n", kk_chan_name(i),
                    (unsigned long long)s.late[i]);
  kk_buf_printf(o,
                "# HELP kaskad_cascade_delivered_twice_total Messages that reached a person on "
                "a second channel too.\n# TYPE kaskad_cascade_delivered_twice_total counter\n"
                "kaskad_cascade_delivered_twice_total %llu\n"
                "# HELP kaskad_cascades_finished_total Messages whose cascade has ended.\n"
                "# TYPE kaskad_cascades_finished_total counter\n"
                "kaskad_cascades_finished_total %llu\n",
                (unsigned long long)s.delivered_twice, (unsigned long long)s.finished);
  kk_buf_printf(o, "# TYPE kaskad_channel_inflight gauge\nkaskad_channel_inflight %d\n",
                c->ninflight);
}
