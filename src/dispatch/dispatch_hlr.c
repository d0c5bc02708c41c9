/*
 * dispatch_hlr.c - HLR/MNP lookups with a bounded cache. See
 * dispatch_hlr.h.
 *
 * Numbers are kept in a chained hash (key: the E.164 digits as a number)
 * and on a list from the oldest answer to the newest, which eviction takes
 * from. An entry under lookup holds its waiters and is never evicted.
 */
#include "dispatch/dispatch_hlr.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/kk_err.h"
#include "core/kk_log.h"
#include "core/kk_mem.h"
#include "http/http_client.h"

#define LOGCTX "hlr"
#define FAILED_TTL_MS 10000  /* a failed lookup is not tried again before this */

enum { ENT_PENDING, ENT_ANSWERED, ENT_FAILED };

struct ent;

struct dispatch_hlr_wait {
  struct dispatch_hlr_wait *next;
  struct ent *e;
  dispatch_hlr_cb cb;
  void *arg;
};

struct ent {
  struct ent *next;              /* bucket chain */
  struct ent *older, *newer;     /* the age list */
  uint64_t key;
  uint64_t expires;              /* loop time */
  int state, rc;
  unsigned char ported, roaming;
  char op[72], inn[16];
  struct dispatch_hlr_wait *waiters;
};

/* A lookup on the wire. */
struct lookup {
  struct dispatch_hlr *h;
  struct ent *e;
};

struct dispatch_hlr {
  uv_loop_t *loop;
  struct http_client *http;
  char *url;
  long timeout_ms;
  int64_t ttl_ms;
  long max;
  struct ent **buckets;
  size_t nbuckets;               /* a power of two */
  struct ent *oldest, *newest;
  long count;
  int stopping;
  void (*done)(void *);
  void *done_ud;
  struct dispatch_hlr_stats st;
};

static uint64_t key_of(const char *e164) {
  uint64_t k = 0;
  for (const char *p = e164; *p; p++) k = k * 10 + (uint64_t)(*p - '0');
  return k;
}

static size_t slot(const struct dispatch_hlr *h, uint64_t k) {
  return (size_t)((k * 0x9E3779B97F4A7C15ull) >> 20) & (h->nbuckets - 1);
}

static struct ent *find(struct dispatch_hlr *h, uint64_t k) {
  for (struct ent *e = h->buckets[slot(h, k)]; e; e = e->next)
    if (e->key == k) return e;
  return NULL;
}

static void age_unlink(struct dispatch_hlr *h, struct ent *e) {
  if (e->older) e->older->newer = e->newer; else h->oldest = e->newer;
  if (e->newer) e->newer->older = e->older; else h->newest = e->older;
  e->older = e->newer = NULL;
}

static void age_push(struct dispatch_hlr *h, struct ent *e) {
  e->older = h->newest;
  e->newer = NULL;
  if (h->newest) h->newest->newer = e; else h->oldest = e;
  h->newest = e;
}

static void drop(struct dispatch_hlr *h, struct ent *e) {
  struct ent **pp = &h->buckets[slot(h, e->key)];
  while (*pp != e) pp = &(*pp)->next;
  *pp = e->next;
  age_unlink(h, e);
  h->count--;
  free(e);
}

/* Keeps the cache within max: the oldest answers go (never one under way). */
static void evict(struct dispatch_hlr *h) {
  struct ent *e = h->oldest;
  while (h->count > h->max && e) {
    struct ent *next = e->newer;
    if (e->state != ENT_PENDING) drop(h, e);
    e = next;
  }
}

/* Runs and frees e's waiters with rc. */
static void answer(struct ent *e, int rc) {
  struct dispatch_hlr_answer a = {.ported = e->ported, .roaming = e->roaming,
                                  .operator_name = e->op, .inn = e->inn};
  struct dispatch_hlr_wait *w = e->waiters;
  e->waiters = NULL;
  while (w) {
    struct dispatch_hlr_wait *next = w->next;
    w->cb(w->arg, rc, rc == 0 ? &a : NULL);
    free(w);
    w = next;
  }
}

/* Reads the service's answer into e: 0 or KK_EPROTO. */
static int parse(struct ent *e, const char *body, size_t len) {
  json_t *o = json_loadb(body, len, 0, NULL);
  if (!json_is_object(o)) {
    json_decref(o);
    return KK_EPROTO;
  }
  json_t *op = json_object_get(o, "operator"), *inn = json_object_get(o, "inn");
  e->ported = json_is_true(json_object_get(o, "ported"));
  e->roaming = json_is_true(json_object_get(o, "roaming"));
  e->op[0] = e->inn[0] = '\0';
  int rc = 0;
  if (op && !json_is_null(op)) {
    if (!json_is_string(op) || json_string_length(op) >= sizeof e->op) rc = KK_EPROTO;
    else snprintf(e->op, sizeof e->op, "%s", json_string_value(op));
  }
  if (inn && !json_is_null(inn)) {
    const char *s = json_string_value(inn);
    if (!s || strlen(s) >= sizeof e->inn || strspn(s, "0123456789") != strlen(s)) rc = KK_EPROTO;
    else snprintf(e->inn, sizeof e->inn, "%s", s);
  }
  json_decref(o);
  return rc;
}

static void on_answer(void *arg, const struct http_client_resp *resp) {
  struct lookup *l = arg;
  struct dispatch_hlr *h = l->h;
  struct ent *e = l->e;
  free(l);
  int rc;
  if (h->stopping)
    rc = KK_ECLOSED;
  else if (resp->status == 200)
    rc = parse(e, resp->body, resp->body_len);
  else
    rc = KK_EIO;
  if (rc == KK_EIO) kk_warnx(LOGCTX, "lookup failed: %s",
                             resp->status ? "HTTP error" : resp->error);
  if (rc != 0) {
    h->st.failures++;
    e->expires = uv_now(h->loop) + FAILED_TTL_MS;
  }
  e->state = rc == 0 ? ENT_ANSWERED : ENT_FAILED;
  e->rc = rc;
  answer(e, rc);
}

struct dispatch_hlr *dispatch_hlr_new(uv_loop_t *loop, const struct dispatch_hlr_opts *o) {
  struct dispatch_hlr *h = kk_xcalloc(1, sizeof *h);   /* freed when stopped */
  h->http = http_client_new(loop, 4096);
  if (h->http == NULL) {
    free(h);
    return NULL;
  }
  h->loop = loop;
  h->url = kk_xstrdup(o->url);
  h->timeout_ms = o->timeout_ms > 0 ? o->timeout_ms : 2000;
  h->ttl_ms = o->ttl_ms > 0 ? o->ttl_ms : 24LL * 3600 * 1000;
  h->max = o->max_entries > 0 ? o->max_entries : 200000;
  h->nbuckets = 1024;
  while ((long)h->nbuckets < h->max) h->nbuckets *= 2;
  h->buckets = kk_xcalloc(h->nbuckets, sizeof *h->buckets);
  return h;
}

int dispatch_hlr_peek(struct dispatch_hlr *h, const char *e164, struct dispatch_hlr_answer *out) {
  size_t n = strlen(e164);
  if (n == 0 || n > 15 || strspn(e164, "0123456789") != n) return 0;
  struct ent *e = find(h, key_of(e164));
  if (!e || e->state != ENT_ANSWERED || e->rc != 0 || uv_now(h->loop) >= e->expires) return 0;
  *out = (struct dispatch_hlr_answer){.ported = e->ported, .roaming = e->roaming,
                                      .operator_name = e->op, .inn = e->inn};
  return 1;
}

struct dispatch_hlr_wait *dispatch_hlr_lookup(struct dispatch_hlr *h, const char *e164,
                                              dispatch_hlr_cb cb, void *arg) {
  h->st.lookups++;
  size_t n = strlen(e164);
  if (n == 0 || n > 15 || strspn(e164, "0123456789") != n || h->stopping) {
    cb(arg, h->stopping ? KK_ECLOSED : KK_EPROTO, NULL);
    return NULL;
  }
  uint64_t k = key_of(e164), now = uv_now(h->loop);
  struct ent *e = find(h, k);
  if (e && e->state != ENT_PENDING && now >= e->expires) {
    drop(h, e);
    e = NULL;
  }
  if (e && e->state != ENT_PENDING) {
    h->st.cache_hits++;
    struct dispatch_hlr_answer a = {.ported = e->ported, .roaming = e->roaming,
                                    .operator_name = e->op, .inn = e->inn};
    cb(arg, e->rc, e->rc == 0 ? &a : NULL);
    return NULL;
  }
  struct dispatch_hlr_wait *w = kk_xmalloc(sizeof *w);   /* freed when answered or cancelled */
  w->cb = cb;
  w->arg = arg;
  if (e) {  /* a lookup of it is under way */
    w->e = e;
    w->next = e->waiters;
    e->waiters = w;
    return w;
  }
  e = kk_xcalloc(1, sizeof *e);   /* freed by drop() */
  e->key = k;
  e->state = ENT_PENDING;
  e->expires = now + (uint64_t)h->ttl_ms;
  e->next = h->buckets[slot(h, k)];
  h->buckets[slot(h, k)] = e;
  age_push(h, e);
  h->count++;
  w->e = e;
  w->next = NULL;
  e->waiters = w;
  evict(h);
  char url[600];
  snprintf(url, sizeof url, "%s%cphone=%s", h->url, strchr(h->url, '?') ? '&' : '?', e164);
  struct http_client_req req = {.method = "GET", .url = url, .timeout_ms = h->timeout_ms};
  struct lookup *l = kk_xmalloc(sizeof *l);   /* freed by on_answer */
  l->h = h;
  l->e = e;
  if (http_client_do(h->http, &req, on_answer, l) != 0) {
    free(l);
    h->st.failures++;
    e->state = ENT_FAILED;
    e->rc = KK_EIO;
    e->expires = now + FAILED_TTL_MS;
    answer(e, KK_EIO);
    return NULL;
  }
  return w;
}

void dispatch_hlr_cancel(struct dispatch_hlr *h, struct dispatch_hlr_wait *w) {
  (void)h;
  struct dispatch_hlr_wait **pp = &w->e->waiters;
  while (*pp && *pp != w) pp = &(*pp)->next;
  if (*pp) *pp = w->next;
  free(w);
}

static void on_http_stopped(void *ud) {
  struct dispatch_hlr *h = ud;
  while (h->oldest) {
    answer(h->oldest, KK_ECLOSED);
    drop(h, h->oldest);
  }
  void (*done)(void *) = h->done;
  void *done_ud = h->done_ud;
  free(h->buckets);
  free(h->url);
  free(h);
  if (done) done(done_ud);
}

void dispatch_hlr_stop(struct dispatch_hlr *h, void (*done)(void *ud), void *ud) {
  h->stopping = 1;
  h->done = done;
  h->done_ud = ud;
  http_client_stop(h->http, on_http_stopped, h);
}

void dispatch_hlr_get_stats(const struct dispatch_hlr *h, struct dispatch_hlr_stats *out) {
  *out = h->st;
  out->cached = h->count;
}
