/*
 * api_inbound.c - the inbound numbers and bots of an account (operator):
 * a person's message to one of them belongs to that account
 * (attributed_by "number" or "bot"); otherwise to the account whose
 * message the person received last within 30 days.
 *
 *   GET    /v1/accounts/{id}/inbound   {"numbers":[…],"bots":[…]}
 *   PUT    /v1/accounts/{id}/inbound   the same: replaces both lists
 *   DELETE /v1/accounts/{id}/inbound   clears them (204)
 *
 * numbers: the numbers or sender names people write to by SMS (a phone is
 * normalised to E.164 digits; a name is 1-11 of A-Z a-z 0-9 . _ -). bots:
 * channels (vk, viber, telegram, whatsapp) whose operator-wide bot or
 * number is this account's. A number or bot belongs to one account: given
 * here, it leaves the account that had it.
 */
#include <stdio.h>
#include <string.h>

#include "api/api_optout.h"
#include "core/kk_err.h"
#include "core/kk_mem.h"
#include "http/http_server.h"
#include "phone/phone.h"
#include "store/store_optout.h"

static const char *const bot_channels[] = {"vk", "viber", "telegram", "whatsapp"};

/* A call under way (in the call's arena). */
struct inbound_call {
  struct api_call *call;
  struct store_inbound_owned rows[STORE_INBOUND_OWNED_MAX];
  int n;
  struct store_inbound_set set;
};

static json_t *owned_json(const struct store_inbound_owned *rows, int n) {
  json_t *numbers = json_array(), *bots = json_array();
  for (int i = 0; i < n; i++)
    json_array_append_new(strcmp(rows[i].kind, "bot") == 0 ? bots : numbers,
                          json_string(rows[i].address));
  return json_pack("{s:o, s:o}", "numbers", numbers, "bots", bots);
}

static struct inbound_call *inbound_call_new(struct api_call *c) {
  struct inbound_call *w = kk_arena_zalloc(&c->arena, sizeof *w);
  w->call = c;
  return w;
}

static void on_owned(void *arg, int rc) {
  struct inbound_call *w = arg;
  if (rc != 0)
    api_error(w->call->req, 503, "store_unavailable", NULL, "cannot read the inbound numbers now");
  else
    api_json(w->call->req, 200, owned_json(w->rows, w->n), NULL);
}

void api_inbound_get(struct api_call *c) {
  struct inbound_call *w = inbound_call_new(c);
  store_inbound_owned_async(c->a->store, c->acc->id, w->rows, &w->n, on_owned, w);
}

static void on_set(void *arg, int rc) {
  struct inbound_call *w = arg;
  if (rc != 0)
    api_error(w->call->req, 503, "store_unavailable", NULL, "cannot write the inbound numbers now");
  else if (w->n == 0 && strcmp(http_req_method(w->call->req), "DELETE") == 0)
    api_empty(w->call->req, 204);
  else
    api_json(w->call->req, 200, owned_json(w->rows, w->n), NULL);
}

/* A sender name an SMSC may give as the destination: 1-11 of A-Z a-z 0-9 . _ -. */
static int sender_name(const char *s) {
  size_t n = strlen(s);
  if (n == 0 || n > 11) return 0;
  for (; *s; s++)
    if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') ||
          *s == '.' || *s == '_' || *s == '-'))
      return 0;
  return 1;
}

/* Adds kind/address to w unless it is there: 0, or KK_EINVAL having
   answered 422. */
static int add_owned(struct inbound_call *w, const char *kind, const char *address) {
  for (int i = 0; i < w->n; i++)
    if (strcmp(w->rows[i].kind, kind) == 0 && strcmp(w->rows[i].address, address) == 0) return 0;
  if (w->n == STORE_INBOUND_OWNED_MAX) {
    api_error(w->call->req, 422, "too_many", NULL, "at most %d numbers and bots per account",
              STORE_INBOUND_OWNED_MAX);
    return KK_EINVAL;
  }
  snprintf(w->rows[w->n].kind, sizeof w->rows[w->n].kind, "%s", kind);
  snprintf(w->rows[w->n].address, sizeof w->rows[w->n].address, "%s", address);
  w->n++;
  return 0;
}

/* Reads body's numbers and bots into w: 0, or KK_EINVAL having answered. */
static int inbound_parse(struct inbound_call *w, json_t *body) {
  struct http_req *req = w->call->req;
  json_t *numbers = json_object_get(body, "numbers"), *bots = json_object_get(body, "bots"), *v;
  if ((numbers && !json_is_array(numbers)) || (bots && !json_is_array(bots))) {
    api_error(req, 422, "invalid_inbound", NULL, "numbers and bots: arrays of strings");
    return KK_EINVAL;
  }
  /* A PUT replaces the whole set: a misspelt key would empty it. */
  const char *key;
  json_object_foreach(body, key, v) {
    if (strcmp(key, "numbers") != 0 && strcmp(key, "bots") != 0) {
      api_error(req, 422, "unknown_field", NULL,
                "%.40s: not a field of the inbound numbers (numbers, bots)", key);
      return KK_EINVAL;
    }
  }
  size_t i;
  json_array_foreach(numbers, i, v) {
    const char *s = json_string_value(v);
    char phone[16];
    if (s && phone_normalize(s, phone, sizeof phone) == 0) s = phone;
    else if (s == NULL || !sender_name(s)) {
      api_error(req, 422, "invalid_number", "numbers",
                "numbers[%zu]: a phone number or a sender name (1-11 of A-Z a-z 0-9 . _ -)", i);
      return KK_EINVAL;
    }
    if (add_owned(w, "number", s) != 0) return KK_EINVAL;
  }
  json_array_foreach(bots, i, v) {
    const char *s = json_string_value(v);
    size_t k = 0, nb = sizeof bot_channels / sizeof bot_channels[0];
    while (s && k < nb && strcmp(s, bot_channels[k]) != 0) k++;
    if (s == NULL || k == nb) {
      api_error(req, 422, "invalid_channel", "bots",
                "bots[%zu]: vk, viber, telegram or whatsapp", i);
      return KK_EINVAL;
    }
    if (add_owned(w, "bot", s) != 0) return KK_EINVAL;
  }
  return 0;
}

static void inbound_write(struct inbound_call *w) {
  w->set.account_id = w->call->acc->id;
  w->set.at = store_now_ms();
  w->set.rows = w->rows;
  w->set.n = w->n;
  store_inbound_set_write(w->call->a->store, &w->set, on_set, w);
}

void api_inbound_put(struct api_call *c) {
  json_t *body = api_call_body(c);
  if (body == NULL) return;
  struct inbound_call *w = inbound_call_new(c);
  if (inbound_parse(w, body) != 0) return;
  inbound_write(w);
}

void api_inbound_delete(struct api_call *c) { inbound_write(inbound_call_new(c)); }
