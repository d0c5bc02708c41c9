/*
 * sim_ring.c - ring of received submits and its JSON view (see sim_ring.h).
 */
#include "sim_ring.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/kk_mem.h"
#include "smpp/smpp_codec.h"
#include "smpp/smpp_dlr.h"
#include "sms/sms_enc.h"

void sim_ring_init(struct sim_ring *r, size_t cap) {
  r->slot = kk_xcalloc(cap, sizeof *r->slot);
  r->cap = cap;
  r->next = 0;
  r->count = 0;
}

void sim_ring_fini(struct sim_ring *r) {
  free(r->slot);
  r->slot = NULL;
  r->cap = r->next = r->count = 0;
}

void sim_ring_clear(struct sim_ring *r) {
  r->next = 0;
  r->count = 0;
}

struct sim_submit *sim_ring_push(struct sim_ring *r) {
  struct sim_submit *s = &r->slot[r->next];
  r->next = (r->next + 1) % r->cap;
  if (r->count < r->cap) r->count++;
  return s;
}

/*
 * The records are written as JSON text directly: a query may return 100,000
 * of them, and building that many JSON objects first would stall the loop
 * for seconds.
 */
struct jw {
  struct kk_buf *b;
  int rc;                       /* first error; later writes are skipped */
};

static void put(struct jw *w, const void *p, size_t n) {
  if (w->rc == 0) w->rc = kk_buf_append(w->b, p, n);
}

static void put_lit(struct jw *w, const char *s) {
  put(w, s, strlen(s));
}

static void put_i64(struct jw *w, int64_t v) {
  char tmp[24];
  int n = 0;
  uint64_t u = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;
  do {
    tmp[sizeof tmp - 1 - n++] = (char)('0' + u % 10);
    u /= 10;
  } while (u);
  if (v < 0) tmp[sizeof tmp - 1 - n++] = '-';
  put(w, tmp + sizeof tmp - n, (size_t)n);
}

/* Returns 1 when p holds well-formed UTF-8 (shortest forms, no surrogates). */
static int valid_utf8(const uint8_t *p, size_t n) {
  size_t i = 0;
  while (i < n) {
    uint8_t c = p[i];
    size_t len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    if (len == 0 || i + len > n) return 0;
    uint32_t cp = len == 1 ? c : c & (0x7F >> len);
    for (size_t k = 1; k < len; k++) {
      if ((p[i + k] & 0xC0) != 0x80) return 0;
      cp = cp << 6 | (p[i + k] & 0x3F);
    }
    static const uint32_t min_cp[] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < min_cp[len] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
    i += len;
  }
  return 1;
}

/* Writes a JSON string. Bytes are taken as UTF-8 when they are valid UTF-8,
   else as Latin-1 (the addresses a peer sends may be anything). */
static void put_str(struct jw *w, const void *data, size_t n) {
  const uint8_t *p = data;
  int utf8 = valid_utf8(p, n);
  put(w, "\"", 1);
  size_t run = 0;
  for (size_t i = 0; i < n; i++) {
    uint8_t c = p[i];
    if (c >= 0x20 && c != '"' && c != '\\' && (c < 0x80 || utf8)) continue;
    put(w, p + run, i - run);
    run = i + 1;
    char esc[8];
    if (c == '"' || c == '\\') {
      esc[0] = '\\';
      esc[1] = (char)c;
      put(w, esc, 2);
    } else {
      snprintf(esc, sizeof esc, "\\u%04x", c);
      put(w, esc, 6);
    }
  }
  put(w, p + run, n - run);
  put(w, "\"", 1);
}

static void put_hex(struct jw *w, const uint8_t *p, size_t n) {
  static const char digits[] = "0123456789abcdef";
  char buf[2 * SIM_SM_MAX + 2];
  size_t k = 0;
  buf[k++] = '"';
  for (size_t i = 0; i < n; i++) {
    buf[k++] = digits[p[i] >> 4];
    buf[k++] = digits[p[i] & 15];
  }
  buf[k++] = '"';
  put(w, buf, k);
}

/* Writes ,"name": */
static void key(struct jw *w, const char *name) {
  put(w, ",\"", 2);
  put_lit(w, name);
  put(w, "\":", 2);
}

static void put_record(struct jw *w, const struct sim_submit *s) {
  size_t udh_len = 0;
  if ((s->esm_class & SMPP_ESM_UDHI) && s->sm_len > 0 && (size_t)s->sm[0] + 1 <= s->sm_len)
    udh_len = (size_t)s->sm[0] + 1;
  /* The worst case is a GSM-7 octet per character, three UTF-8 bytes each. */
  char text[3 * SIM_SM_MAX + 4];
  int n = sms_decode(s->data_coding, s->sm + udh_len, s->sm_len - udh_len, text,
                     sizeof text);
  if (n < 0) n = (int)strlen(text);

  put_lit(w, "{\"time\":");
  put_i64(w, s->time_ms);
  key(w, "system_id");
  put_str(w, s->system_id, strlen(s->system_id));
  key(w, "seq");
  put_i64(w, s->seq);
  key(w, "source_addr");
  put_str(w, s->source_addr, strlen(s->source_addr));
  key(w, "source_ton");
  put_i64(w, s->src_ton);
  key(w, "source_npi");
  put_i64(w, s->src_npi);
  key(w, "dest_addr");
  put_str(w, s->dest_addr, strlen(s->dest_addr));
  key(w, "dest_ton");
  put_i64(w, s->dst_ton);
  key(w, "dest_npi");
  put_i64(w, s->dst_npi);
  key(w, "esm_class");
  put_i64(w, s->esm_class);
  key(w, "data_coding");
  put_i64(w, s->data_coding);
  key(w, "registered_delivery");
  put_i64(w, s->registered_delivery);
  key(w, "validity_period");
  put_str(w, s->validity_period, strlen(s->validity_period));
  key(w, "udh");
  if (udh_len) put_hex(w, s->sm, udh_len);
  else put_lit(w, "null");
  key(w, "short_message");
  put_hex(w, s->sm, s->sm_len);
  key(w, "text");
  put_str(w, text, (size_t)n);
  if (s->payload) put_lit(w, ",\"payload\":true");
  if (s->truncated) put_lit(w, ",\"truncated\":true");
  key(w, "message_id");
  if (s->message_id[0]) put_str(w, s->message_id, strlen(s->message_id));
  else put_lit(w, "null");
  /* Status and state names are static ASCII and need no escaping. */
  key(w, "status");
  put(w, "\"", 1);
  put_lit(w, s->dropped ? "none" : smpp_status_name(s->status));
  put(w, "\"", 1);
  key(w, "outcome");
  if (s->outcome) {
    put(w, "\"", 1);
    put_lit(w, smpp_state_name(s->outcome));
    put(w, "\"", 1);
  } else {
    put_lit(w, "null");
  }
  put(w, "}", 1);
}

static int matches(const struct sim_submit *s, const struct sim_ring_filter *f) {
  if (s->time_ms < f->since_ms) return 0;
  if (f->dest && strcmp(s->dest_addr, f->dest) != 0) return 0;
  if (f->system_id && strcmp(s->system_id, f->system_id) != 0) return 0;
  return 1;
}

int sim_ring_query(const struct sim_ring *r, const struct sim_ring_filter *f,
                   struct kk_buf *out) {
  struct jw w = {out, 0};
  put(&w, "[", 1);
  /* Walk back from the newest to find the oldest record to return. */
  size_t found = 0, first = 0;
  for (size_t k = 0; k < r->count && found < f->limit; k++) {
    size_t i = (r->next + r->cap - 1 - k) % r->cap;
    if (matches(&r->slot[i], f)) {
      found++;
      first = k;
    }
  }
  int comma = 0;
  for (size_t k = first + 1; found > 0 && k-- > 0;) {
    size_t i = (r->next + r->cap - 1 - k) % r->cap;
    if (!matches(&r->slot[i], f)) continue;
    if (comma) put(&w, ",", 1);
    comma = 1;
    put_record(&w, &r->slot[i]);
  }
  put(&w, "]", 1);
  return w.rc;
}
