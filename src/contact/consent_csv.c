/*
 * consent_csv.c - consent records from CSV. See consent_csv.h.
 */
#include "contact/consent_csv.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "contact/contact_csv.h"
#include "core/kk_err.h"
#include "core/kk_mem.h"
#include "policy/pol_consent.h"

#define FUTURE_SLACK_MS 60000   /* an `at` this far ahead of now is a clock's drift */

struct consent_csv {
  struct consent_csv_opts o;
  struct contact_csv *csv;
};

static void refuse(struct consent_csv *c, long line, const char *reason, const char *detail) {
  struct consent_csv_reject r = {line, reason, detail};
  if (c->o.reject) c->o.reject(c->o.arg, &r);
}

static void on_reject(void *arg, const struct contact_csv_reject *r) {
  refuse(arg, r->line, r->reason, r->detail);
}

/* Copies s into out (cap bytes): 0, or 1 when it does not fit. */
static int put(char *out, size_t cap, const char *s) {
  size_t n = s ? strlen(s) : 0;
  if (n >= cap) return 1;
  memcpy(out, s ? s : "", n + 1);
  return 0;
}

static void on_row(void *arg, const struct contact_csv_row *r) {
  struct consent_csv *c = arg;
  struct store_consent k;
  memset(&k, 0, sizeof k);
  snprintf(k.phone, sizeof k.phone, "%s", r->phone);
  const char *source = NULL, *at = NULL, *channel = NULL, *ip = NULL;
  for (int i = 0; i < r->nattrs; i++) {
    const char *n = r->attr_name[i], *v = r->attr_value[i];
    if (strcmp(n, "source") == 0) source = v;
    else if (strcmp(n, "text") == 0) k.text = (char *)v;
    else if (strcmp(n, "ip") == 0) ip = v;
    else if (strcmp(n, "at") == 0) at = v;
    else if (strcmp(n, "channel") == 0) channel = v;
  }
  if (source == NULL) {
    refuse(c, r->line, "missing_source", "source: where the person agreed is required");
    return;
  }
  if (put(k.source, sizeof k.source, source) || put(k.ip, sizeof k.ip, ip) ||
      (k.text && strlen(k.text) > STORE_CONSENT_TEXT_MAX)) {
    refuse(c, r->line, "value_too_long", "source up to 127 bytes, ip 63, text 4096");
    return;
  }
  if (channel && pol_consent_bit(channel) == 0) {
    refuse(c, r->line, "invalid_channel",
           "channel: all, sms, vk, viber, telegram, whatsapp or email");
    return;
  }
  snprintf(k.channel, sizeof k.channel, "%s", channel ? channel : "all");
  k.at = c->o.now;
  if (at && (contact_csv_parse_time(at, &k.at) != 0 || k.at > c->o.now + FUTURE_SLACK_MS)) {
    refuse(c, r->line, "invalid_at", "at: a date, not in the future");
    return;
  }
  if (c->o.row) c->o.row(c->o.arg, r->line, &k);
}

struct consent_csv *consent_csv_new(const struct consent_csv_opts *o) {
  struct consent_csv *c = kk_xcalloc(1, sizeof *c);   /* freed by consent_csv_free */
  c->o = *o;
  struct contact_csv_opts co = {.country = o->country ? o->country : "RU", .row = on_row,
                                .reject = on_reject, .arg = c};
  c->csv = contact_csv_new(&co);
  return c;
}

void consent_csv_free(struct consent_csv *c) {
  if (c == NULL) return;
  contact_csv_free(c->csv);
  free(c);
}

int consent_csv_feed(struct consent_csv *c, const char *p, size_t n) {
  return contact_csv_feed(c->csv, p, n);
}

int consent_csv_end(struct consent_csv *c) { return contact_csv_end(c->csv); }

const char *consent_csv_error(const struct consent_csv *c) { return contact_csv_error(c->csv); }
