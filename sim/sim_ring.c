/*
 * sim_ring.c - ring of received submits and its JSON view (see sim_ring.h).
 */
#include "sim_ring.h"

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

/* Returns a new JSON string of the bytes in lower-case hex. */
static json_t *hex_string(const uint8_t *p, size_t n) {
  static const char digits[] = "0123456789abcdef";
  char buf[2 * SIM_SM_MAX + 1];
  for (size_t i = 0; i < n; i++) {
    buf[2 * i] = digits[p[i] >> 4];
    buf[2 * i + 1] = digits[p[i] & 15];
  }
  return json_stringn(buf, 2 * n);
}

static json_t *record_json(const struct sim_submit *s) {
  size_t udh_len = 0;
  if ((s->esm_class & SMPP_ESM_UDHI) && s->sm_len > 0 && (size_t)s->sm[0] + 1 <= s->sm_len)
    udh_len = (size_t)s->sm[0] + 1;
  /* The worst case is a GSM-7 octet per character, three UTF-8 bytes each. */
  char text[3 * SIM_SM_MAX + 4];
  int n = sms_decode(s->data_coding, s->sm + udh_len, s->sm_len - udh_len, text,
                     sizeof text);
  if (n < 0) n = (int)strlen(text);

  json_t *o = json_object();
  json_object_set_new(o, "time", json_integer(s->time_ms));
  json_object_set_new(o, "system_id", json_string(s->system_id));
  json_object_set_new(o, "seq", json_integer(s->seq));
  json_object_set_new(o, "source_addr", json_string(s->source_addr));
  json_object_set_new(o, "source_ton", json_integer(s->src_ton));
  json_object_set_new(o, "source_npi", json_integer(s->src_npi));
  json_object_set_new(o, "dest_addr", json_string(s->dest_addr));
  json_object_set_new(o, "dest_ton", json_integer(s->dst_ton));
  json_object_set_new(o, "dest_npi", json_integer(s->dst_npi));
  json_object_set_new(o, "esm_class", json_integer(s->esm_class));
  json_object_set_new(o, "data_coding", json_integer(s->data_coding));
  json_object_set_new(o, "registered_delivery", json_integer(s->registered_delivery));
  json_object_set_new(o, "validity_period", json_string(s->validity_period));
  json_object_set_new(o, "udh", udh_len ? hex_string(s->sm, udh_len) : json_null());
  json_object_set_new(o, "short_message", hex_string(s->sm, s->sm_len));
  json_t *t = json_stringn(text, (size_t)n);
  json_object_set_new(o, "text", t ? t : json_string("\xef\xbf\xbd"));
  if (s->payload) json_object_set_new(o, "payload", json_true());
  if (s->truncated) json_object_set_new(o, "truncated", json_true());
  json_object_set_new(o, "message_id",
                      s->message_id[0] ? json_string(s->message_id) : json_null());
  json_object_set_new(o, "status", json_string(s->dropped ? "none"
                                                : smpp_status_name(s->status)));
  json_object_set_new(o, "outcome", s->outcome ? json_string(smpp_state_name(s->outcome))
                                               : json_null());
  return o;
}

static int matches(const struct sim_submit *s, const struct sim_ring_filter *f) {
  if (s->time_ms < f->since_ms) return 0;
  if (f->dest && strcmp(s->dest_addr, f->dest) != 0) return 0;
  if (f->system_id && strcmp(s->system_id, f->system_id) != 0) return 0;
  return 1;
}

json_t *sim_ring_query(const struct sim_ring *r, const struct sim_ring_filter *f) {
  json_t *arr = json_array();
  if (r->count == 0 || f->limit == 0) return arr;
  /* Walk back from the newest to find the oldest record to return. */
  size_t found = 0, first = 0;
  for (size_t k = 0; k < r->count && found < f->limit; k++) {
    size_t i = (r->next + r->cap - 1 - k) % r->cap;
    if (matches(&r->slot[i], f)) {
      found++;
      first = k;
    }
  }
  for (size_t k = first + 1; k-- > 0;) {
    size_t i = (r->next + r->cap - 1 - k) % r->cap;
    if (matches(&r->slot[i], f)) json_array_append_new(arr, record_json(&r->slot[i]));
  }
  return arr;
}
