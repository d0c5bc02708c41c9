/*
 * sim_knobs.c - knob defaults, validation and JSON (see sim_knobs.h).
 *
 * One table describes every knob: its JSON name, its type, where it lives in
 * struct sim_knobs and its allowed range. Reading and writing JSON both walk
 * the table, so adding a knob is one line here and one field in the struct.
 */
#include "sim_knobs.h"

#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "core/kk_err.h"

enum knob_type {
  K_SHARE,    /* double in 0..1 */
  K_INT,      /* int in [min, max] */
  K_RANGE,    /* int[2], min <= [0] <= [1] <= max */
  K_BOOL,     /* int 0/1 */
  K_CHOICE,   /* int index into choices */
};

struct knob {
  const char *name;
  enum knob_type type;
  size_t off;
  int min, max;
  const char *const *choices;   /* K_CHOICE: NULL-terminated names */
};

static const char *const msgid_names[] = {"hex", "dec", NULL};
static const char *const rcpt_id_names[] = {"same", "alt", NULL};

#define KNOB(name, type, field, min, max, choices) \
  {name, type, offsetof(struct sim_knobs, field), min, max, choices}

static const struct knob knobs[] = {
  KNOB("delivered", K_SHARE, delivered, 0, 0, NULL),
  KNOB("undeliverable", K_SHARE, undeliverable, 0, 0, NULL),
  KNOB("expired", K_SHARE, expired, 0, 0, NULL),
  KNOB("dlr_delay_ms", K_RANGE, dlr_delay_ms, 0, 86400000, NULL),
  KNOB("throttle", K_SHARE, throttle, 0, 0, NULL),
  KNOB("queue_full", K_SHARE, queue_full, 0, 0, NULL),
  KNOB("syserr", K_SHARE, syserr, 0, 0, NULL),
  KNOB("reject", K_SHARE, reject, 0, 0, NULL),
  KNOB("max_sps", K_INT, max_sps, 0, 100000000, NULL),
  KNOB("disconnect_after", K_INT, disconnect_after, 0, 2000000000, NULL),
  KNOB("resp_delay_ms", K_INT, resp_delay_ms, 0, 600000, NULL),
  KNOB("message_id", K_CHOICE, message_id, 0, 0, msgid_names),
  KNOB("receipt_tlvs", K_BOOL, receipt_tlvs, 0, 0, NULL),
  KNOB("receipt_id", K_CHOICE, receipt_id, 0, 0, rcpt_id_names),
  KNOB("receipt_retry_ms", K_INT, receipt_retry_ms, 10, 3600000, NULL),
  KNOB("receipt_attempts", K_INT, receipt_attempts, 1, 100, NULL),
};

#define NKNOBS (sizeof knobs / sizeof knobs[0])

void sim_knobs_defaults(struct sim_knobs *k) {
  memset(k, 0, sizeof *k);
  k->delivered = 1.0;
  k->dlr_delay_ms[0] = 50;
  k->dlr_delay_ms[1] = 200;
  k->message_id = SIM_MSGID_HEX;
  k->receipt_tlvs = 1;
  k->receipt_id = SIM_RCPT_ID_SAME;
  k->receipt_retry_ms = 10000;
  k->receipt_attempts = 3;
}

json_t *sim_knobs_to_json(const struct sim_knobs *k) {
  json_t *o = json_object();
  for (size_t i = 0; i < NKNOBS; i++) {
    const struct knob *kn = &knobs[i];
    const char *field = (const char *)k + kn->off;
    json_t *v = NULL;
    switch (kn->type) {
    case K_SHARE:
      v = json_real(*(const double *)field);
      break;
    case K_INT:
      v = json_integer(*(const int *)field);
      break;
    case K_RANGE:
      v = json_pack("[ii]", ((const int *)field)[0], ((const int *)field)[1]);
      break;
    case K_BOOL:
      v = json_boolean(*(const int *)field);
      break;
    case K_CHOICE:
      v = json_string(kn->choices[*(const int *)field]);
      break;
    }
    json_object_set_new(o, kn->name, v);
  }
  return o;
}

static const struct knob *find_knob(const char *name) {
  for (size_t i = 0; i < NKNOBS; i++)
    if (strcmp(knobs[i].name, name) == 0) return &knobs[i];
  return NULL;
}

int sim_json_int(const json_t *v, long long *out) {
  if (json_is_integer(v)) {
    *out = json_integer_value(v);
    return 0;
  }
  if (json_is_real(v)) {
    double d = json_real_value(v);
    /* Check the range first: converting a larger double is undefined. */
    if (!(d >= -1e15 && d <= 1e15) || d != (double)(long long)d) return KK_EINVAL;
    *out = (long long)d;
    return 0;
  }
  return KK_EINVAL;
}

/* Parses one knob value into its field of k. Returns 0 or KK_EINVAL. */
static int set_knob(struct sim_knobs *k, const struct knob *kn, const json_t *v,
                    struct sim_knob_err *err) {
  char *field = (char *)k + kn->off;
  long long a, b;
  switch (kn->type) {
  case K_SHARE:
    if (!json_is_number(v) || json_number_value(v) < 0 || json_number_value(v) > 1)
      goto bad;
    *(double *)field = json_number_value(v);
    return 0;
  case K_INT:
    if (sim_json_int(v, &a) || a < kn->min || a > kn->max) goto bad;
    *(int *)field = (int)a;
    return 0;
  case K_RANGE:
    if (!json_is_array(v) || json_array_size(v) != 2 ||
        sim_json_int(json_array_get(v, 0), &a) ||
        sim_json_int(json_array_get(v, 1), &b) || a < kn->min || a > b ||
        b > kn->max)
      goto bad;
    ((int *)field)[0] = (int)a;
    ((int *)field)[1] = (int)b;
    return 0;
  case K_BOOL:
    if (!json_is_boolean(v)) goto bad;
    *(int *)field = json_is_true(v);
    return 0;
  case K_CHOICE:
    if (!json_is_string(v)) goto bad;
    for (int i = 0; kn->choices[i]; i++) {
      if (strcmp(kn->choices[i], json_string_value(v)) == 0) {
        *(int *)field = i;
        return 0;
      }
    }
    goto bad;
  }
bad:
  err->code = "bad_value";
  switch (kn->type) {
  case K_SHARE:
    snprintf(err->message, sizeof err->message, "%s must be a number from 0 to 1",
             kn->name);
    break;
  case K_INT:
    snprintf(err->message, sizeof err->message,
             "%s must be an integer from %d to %d", kn->name, kn->min, kn->max);
    break;
  case K_RANGE:
    snprintf(err->message, sizeof err->message,
             "%s must be [min, max] with %d <= min <= max <= %d", kn->name,
             kn->min, kn->max);
    break;
  case K_BOOL:
    snprintf(err->message, sizeof err->message, "%s must be true or false",
             kn->name);
    break;
  case K_CHOICE:
    snprintf(err->message, sizeof err->message, "%s must be \"%s\" or \"%s\"",
             kn->name, kn->choices[0], kn->choices[1]);
    break;
  }
  return KK_EINVAL;
}

int sim_knobs_apply(struct sim_knobs *k, const json_t *obj, struct sim_knob_err *err) {
  if (!json_is_object(obj)) {
    err->code = "bad_value";
    snprintf(err->message, sizeof err->message, "the body must be a JSON object");
    return KK_EINVAL;
  }
  struct sim_knobs next = *k;
  const char *name;
  json_t *v;
  json_object_foreach((json_t *)obj, name, v) {
    const struct knob *kn = find_knob(name);
    if (kn == NULL) {
      err->code = "unknown_knob";
      snprintf(err->message, sizeof err->message, "unknown knob \"%.100s\"", name);
      return KK_EINVAL;
    }
    int rc = set_knob(&next, kn, v, err);
    if (rc) return rc;
  }
  *k = next;
  return 0;
}
