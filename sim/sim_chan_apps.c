/*
 * sim_chan_apps.c - provider accounts ("apps"), the ring of received requests,
 * the counters and the callback signatures.
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

/* ---- apps ---- */

static size_t app_bucket(int c, const char *token) {
  return (size_t)(chan_str_hash(token) ^ (uint64_t)c * 0x9E3779B97F4A7C15ull) & (APP_BUCKETS - 1);
}

struct capp *app_find(const struct sim_chan *ch, int c, const char *token) {
  if (token == NULL) return NULL;
  for (struct capp *a = ch->bucket[app_bucket(c, token)]; a; a = a->hnext)
    if ((int)a->channel == c && strcmp(a->token, token) == 0) return a;
  return NULL;
}

void chan_set_str(char **field, const char *v) {
  free(*field);
  *field = kk_xstrdup(v ? v : "");
}

/* Returns the app, created (with empty settings) when new; NULL when
   APPS_MAX apps exist. */
struct capp *app_upsert(struct sim_chan *ch, int c, const char *token) {
  struct capp *a = app_find(ch, c, token);
  if (a) return a;
  if (ch->napps >= APPS_MAX) return NULL;
  a = kk_xcalloc(1, sizeof *a);
  a->channel = (enum sim_chan_id)c;
  a->token = kk_xstrdup(token);
  a->callback_url = kk_xstrdup("");
  a->secret = kk_xstrdup("");
  a->confirmation = kk_xstrdup("");
  a->verify_token = kk_xstrdup("");
  a->phone_number_id = kk_xstrdup("");
  a->confirmed = a->verified = -1;
  kk_sha256(token, strlen(token), a->gw_key);
  size_t b = app_bucket(c, token);
  a->hnext = ch->bucket[b];
  ch->bucket[b] = a;
  a->prev = ch->apps_tail;
  if (ch->apps_tail)
    ch->apps_tail->next = a;
  else
    ch->apps_head = a;
  ch->apps_tail = a;
  ch->napps++;
  return a;
}

static void app_free(struct capp *a) {
  free(a->token);
  free(a->callback_url);
  free(a->secret);
  free(a->confirmation);
  free(a->verify_token);
  free(a->phone_number_id);
  map_fini(&a->dedup[0]);
  map_fini(&a->dedup[1]);
  map_fini(&a->window);
  free(a);
}

void apps_clear(struct sim_chan *ch) {
  struct capp *a = ch->apps_head;
  while (a) {
    struct capp *next = a->next;
    app_free(a);
    a = next;
  }
  memset(ch->bucket, 0, sizeof ch->bucket);
  ch->apps_head = ch->apps_tail = NULL;
  ch->napps = 0;
}

json_t *app_json(const struct capp *a) {
  json_t *o = json_pack("{s:s,s:s,s:s?,s:s,s:I,s:s,s:s,s:s}", "channel", chan_names[a->channel],
                        "token", a->token, "callback_url",
                        a->callback_url[0] ? a->callback_url : NULL, "secret", a->secret,
                        "group_id", (json_int_t)a->group_id, "confirmation", a->confirmation,
                        "verify_token", a->verify_token, "phone_number_id", a->phone_number_id);
  if (o == NULL) return json_object();   /* a field that is not UTF-8 */
  if (a->channel == SIM_CH_VK)
    json_object_set_new(o, "confirmed",
                        a->confirmed < 0 ? json_null() : json_boolean(a->confirmed));
  if (a->channel == SIM_CH_WHATSAPP)
    json_object_set_new(o, "verified",
                        a->verified < 0 ? json_null() : json_boolean(a->verified));
  return o;
}

/* VK: the message id already given for (peer, random_id), or 0. */
uint64_t dedup_get(const struct capp *a, uint64_t key) {
  const uint64_t *v = map_get(&a->dedup[0], key);
  if (v == NULL) v = map_get(&a->dedup[1], key);
  return v ? *v : 0;
}

void dedup_put(struct capp *a, uint64_t key, uint64_t id) {
  if (a->dedup[0].used >= DEDUP_GEN) {
    map_fini(&a->dedup[1]);
    a->dedup[1] = a->dedup[0];
    memset(&a->dedup[0], 0, sizeof a->dedup[0]);
  }
  map_put(&a->dedup[0], key, id);
}

uint64_t chan_nonzero(uint64_t k) {
  return k ? k : 1;
}

/* ---- the ring of received requests ---- */

void rec_fill(struct rec *r, int c, const char *const f[RF_COUNT],
              const size_t flen[RF_COUNT]) {
  memset(r, 0, sizeof *r);
  r->at = chan_wall_ms();
  r->channel = (uint8_t)c;
  size_t total = 0;
  for (int i = 0; i < RF_COUNT; i++)
    if (f[i]) total += flen[i] + 1;
  r->blob = kk_xmalloc(total ? total : 1);
  char *p = r->blob;
  for (int i = 0; i < RF_COUNT; i++) {
    if (f[i] == NULL) {
      r->len[i] = RF_ABSENT;
      continue;
    }
    if (flen[i]) memcpy(p, f[i], flen[i]);
    p[flen[i]] = '\0';
    r->len[i] = (uint32_t)flen[i];
    p += flen[i] + 1;
  }
  r->bytes = total + sizeof *r;
}

void rec_from_req(struct rec *r, int c, const struct sim_chan_req *rq) {
  const char *f[RF_COUNT] = {rq->method, rq->path, rq->content_type, rq->authorization,
                             rq->viber_token, rq->body ? rq->body : "", NULL, NULL};
  size_t flen[RF_COUNT];
  for (int i = 0; i < RF_COUNT; i++) flen[i] = f[i] ? strlen(f[i]) : 0;
  flen[RF_BODY] = rq->body ? rq->body_len : 0;
  rec_fill(r, c, f, flen);
}

/* The field's text (NULL when absent) and length. */
static const char *rec_field(const struct rec *r, int i, size_t *len) {
  if (r->len[i] == RF_ABSENT) return NULL;
  size_t off = 0;
  for (int k = 0; k < i; k++)
    if (r->len[k] != RF_ABSENT) off += r->len[k] + 1;
  *len = r->len[i];
  return r->blob + off;
}

static void ring_drop_oldest(struct ring *g) {
  struct rec *r = &g->slot[g->head];
  g->bytes -= r->bytes;
  free(r->blob);
  r->blob = NULL;
  g->head = (g->head + 1) % g->cap;
  g->count--;
}

/* Takes the record over, stamping its seq and outcome. */
void ring_add(struct sim_chan *ch, struct rec *r, enum outcome o) {
  struct ring *g = &ch->ring;
  while (g->count && (g->count == g->cap || g->bytes + r->bytes > SIM_CHAN_RING_BYTES))
    ring_drop_oldest(g);
  r->seq = g->next_seq++;
  r->outcome = (uint8_t)o;
  g->slot[(g->head + g->count) % g->cap] = *r;
  g->count++;
  g->bytes += r->bytes;
  r->blob = NULL;
}

void ring_clear(struct ring *g) {
  while (g->count) ring_drop_oldest(g);
  g->head = 0;
}

/* Adds the request to the ring with outcome o, without counting it. */
void ring_record(struct sim_chan *ch, const struct sim_chan_req *rq, int c, enum outcome o) {
  struct rec r;
  rec_from_req(&r, c, rq);
  ring_add(ch, &r, o);
}

/* Adds the request to the ring and counts it under outcome o. */
void chan_record(struct sim_chan *ch, const struct sim_chan_req *rq, int c, enum outcome o) {
  ring_record(ch, rq, c, o);
  ch->stats[c].n[o]++;
}

void rec_json(struct jw *w, const struct rec *r) {
  static const char *const hname[RF_COUNT] = {
    [RF_CT] = "content-type", [RF_AUTH] = "authorization", [RF_VTOKEN] = "x-viber-auth-token",
  };
  size_t n;
  const char *s;
  jw_fmt(w, "{\"seq\":%" PRIu64 ",\"at\":%" PRId64 ",\"channel\":\"%s\",\"method\":", r->seq,
         r->at, chan_names[r->channel]);
  s = rec_field(r, RF_METHOD, &n);
  s ? jw_str(w, s, n) : jw_lit(w, "null");
  jw_lit(w, ",\"path\":");
  s = rec_field(r, RF_PATH, &n);
  s ? jw_str(w, s, n) : jw_lit(w, "null");
  jw_lit(w, ",\"headers\":{");
  int first = 1;
  for (int i = RF_CT; i <= RF_VTOKEN; i++) {
    s = rec_field(r, i, &n);
    if (s == NULL) continue;
    jw_fmt(w, "%s\"%s\":", first ? "" : ",", hname[i]);
    jw_str(w, s, n);
    first = 0;
  }
  jw_lit(w, "},\"body\":");
  s = rec_field(r, RF_BODY, &n);
  s ? jw_str(w, s, n) : jw_lit(w, "null");
  s = rec_field(r, RF_FROM, &n);
  if (s) {
    jw_lit(w, ",\"from\":");
    jw_str(w, s, n);
  }
  s = rec_field(r, RF_RCPT, &n);
  if (s) {
    jw_lit(w, ",\"rcpt\":[");
    size_t start = 0;
    for (size_t i = 0; i <= n; i++) {
      if (i < n && s[i] != '\n') continue;
      if (start) jw_raw(w, ",", 1);
      jw_str(w, s + start, i - start);
      start = i + 1;
    }
    jw_raw(w, "]", 1);
  }
  jw_fmt(w, ",\"outcome\":\"%s\"}", out_names[r->outcome]);
}

/* ---- counters ---- */

json_t *chan_stats_json(const struct sim_chan *ch) {
  json_t *o = json_object();
  for (int c = 0; c < SIM_CH_COUNT; c++) {
    const struct chan_stats *s = &ch->stats[c];
    uint64_t requests = 0;
    json_t *refused = json_object();
    for (int i = 0; i < OUT_COUNT; i++) {
      requests += s->n[i];
      if (i >= OUT_FIRST_REFUSED)
        json_object_set_new(refused, out_names[i], json_integer((json_int_t)s->n[i]));
    }
    json_object_set_new(
        o, chan_names[c],
        json_pack("{s:I,s:I,s:I,s:I,s:o,s:I,s:I,s:I,s:I,s:I,s:I}", "requests", (json_int_t)requests,
                  "accepted", (json_int_t)s->n[OUT_ACCEPTED], "messages", (json_int_t)s->messages,
                  "duplicates", (json_int_t)s->n[OUT_DUPLICATE], "refused", refused,
                  "callbacks_sent", (json_int_t)s->cb_sent, "callbacks_ok", (json_int_t)s->cb_ok,
                  "callbacks_failed", (json_int_t)s->cb_failed, "callbacks_given_up",
                  (json_int_t)s->cb_given_up, "callbacks_dropped", (json_int_t)s->cb_dropped,
                  "callbacks_pending", (json_int_t)(s->queued + s->inflight)));
  }
  json_object_set_new(o, "ring", json_pack("{s:I,s:I,s:I}", "entries", (json_int_t)ch->ring.count,
                                           "bytes", (json_int_t)ch->ring.bytes, "next_seq",
                                           (json_int_t)ch->ring.next_seq));
  return o;
}

/* ---- signatures ---- */

/* Signature headers for body, written into h1/h2 and appended to hdr. */
void chan_sign(enum sig s, const char *key, size_t key_len, const char *body, size_t len,
               char h1[160], char h2[160], const char **hdr, int *nh) {
  char hex[65];
  switch (s) {
  case SIG_NONE:
    return;
  case SIG_VIBER:
    if (kk_hmac_sha256_hex(key, key_len, body, len, hex) == 0) {
      snprintf(h1, 160, "X-Viber-Content-Signature: %s", hex);
      hdr[(*nh)++] = h1;
    }
    return;
  case SIG_WA:
    if (key_len && kk_hmac_sha256_hex(key, key_len, body, len, hex) == 0) {
      snprintf(h1, 160, "X-Hub-Signature-256: sha256=%s", hex);
      hdr[(*nh)++] = h1;
    }
    return;
  case SIG_TGGW: {
    char ts[24];
    snprintf(ts, sizeof ts, "%" PRId64, chan_wall_ms() / 1000);
    const void *parts[3] = {ts, "\n", body};
    size_t lens[3] = {strlen(ts), 1, len};
    uint8_t mac[32];
    if (kk_hmac_sha256(key, key_len, parts, lens, 3, mac) != 0) return;
    kk_hex(mac, 32, hex);
    snprintf(h1, 160, "X-Request-Timestamp: %s", ts);
    snprintf(h2, 160, "X-Request-Signature: %s", hex);
    hdr[(*nh)++] = h1;
    hdr[(*nh)++] = h2;
    return;
  }
  }
}

