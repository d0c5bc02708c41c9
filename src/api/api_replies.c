/*
 * api_replies.c - GET /v1/replies: what people sent to the account.
 *
 * SMS MO messages and messenger messages (WhatsApp, VK, Viber, Telegram),
 * each with the rule that gave it to the account (attributed_by: the
 * account's number, its bot, or its message that the person received last
 * within 30 days), newest first, paged with next_cursor like
 * GET /v1/messages, one index range per page. A messenger's user whose
 * phone kaskad could not find is listed by its id there (phone null).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api_int.h"
#include "core/kk_err.h"
#include "core/kk_mem.h"
#include "http/http_server.h"
#include "phone/phone.h"
#include "store/store.h"

/* The channels kaskad receives people's messages on. */
static const char *const reply_channels[] = {"sms", "whatsapp", "vk", "viber", "telegram"};

static json_t *reply_json(const struct store_reply_view *v) {
  char id[32], at[32];
  snprintf(id, sizeof id, "%lld", (long long)v->id);
  api_time(v->at, at);
  json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:s}", "id", id, "channel", v->channel, "from",
                        v->from, "text", v->text ? v->text : "", "received_at", at);
  if (o == NULL) return json_object();  /* stored text that is not UTF-8 */
  json_object_set_new(o, "to", v->to[0] ? json_string(v->to) : json_null());
  json_object_set_new(o, "route", v->route[0] ? json_string(v->route) : json_null());
  json_object_set_new(o, "in_reply_to",
                      v->in_reply_to[0] ? json_string(v->in_reply_to) : json_null());
  int phone = !v->user[0] || strcmp(v->from, v->user) != 0;
  json_object_set_new(o, "phone", phone ? json_string(v->from) : json_null());
  json_object_set_new(o, "user_id", v->user[0] ? json_string(v->user) : json_null());
  json_object_set_new(o, "attributed_by",
                      v->attributed_by[0] ? json_string(v->attributed_by) : json_null());
  return o;
}

/* 1 when s is printable ASCII without spaces (a messenger's user id). */
static int user_id_text(const char *s) {
  for (; *s; s++)
    if (*s <= ' ' || *s > '~') return 0;
  return 1;
}

/* Reads channel, from, limit and cursor into f (from into phone). 0, or
   KK_EINVAL having answered 422. */
static int reply_query(struct http_req *req, struct store_reply_filter *f, char *phone,
                       size_t cap) {
  const char *s;
  if ((s = http_req_query(req, "channel")) != NULL) {
    for (size_t i = 0; i < sizeof reply_channels / sizeof reply_channels[0]; i++)
      if (strcmp(s, reply_channels[i]) == 0) f->channel = reply_channels[i];
    if (f->channel == NULL) {
      api_error(req, 422, "invalid_channel", "channel",
                "channel: sms, whatsapp, vk, viber or telegram");
      return KK_EINVAL;
    }
  }
  if ((s = http_req_query(req, "from")) != NULL) {
    /* a phone, or with channel vk, viber or telegram the messenger's id of
       a person without a known phone */
    if (phone_normalize(s, phone, cap) != 0) {
      size_t n = strlen(s);
      int messenger = f->channel && strcmp(f->channel, "sms") != 0 &&
                      strcmp(f->channel, "whatsapp") != 0;
      if (!messenger || n == 0 || n >= cap || !user_id_text(s)) {
        api_error(req, 422, "invalid_phone", "from",
                  "from: the phone number (or messenger user id) replies came from");
        return KK_EINVAL;
      }
      memcpy(phone, s, n + 1);
    }
    f->from = phone;
  }
  if ((s = http_req_query(req, "limit")) != NULL) {
    char *end;
    long l = strtol(s, &end, 10);
    if (*end || l < 1 || l > 1000) {
      api_error(req, 422, "invalid_limit", "limit", "limit: 1 to 1000");
      return KK_EINVAL;
    }
    f->limit = (int)l;
  }
  if ((s = http_req_query(req, "cursor")) != NULL) {
    char *end;
    long long cur = strtoll(s, &end, 10);
    if (*end || cur <= 0) {
      api_error(req, 422, "invalid_cursor", "cursor", "cursor: use next_cursor from a listing");
      return KK_EINVAL;
    }
    f->before_id = cur;
  }
  return 0;
}

/* A listing being read in the store's pool. */
struct replies_ctx {
  struct http_req *req;
  struct store_reply_filter f;   /* from points to phone */
  char phone[72];
  struct store_reply_view *rows; /* f.limit of them; each text is the store's */
  int n;
  int64_t next;
};

/* Store done callback of a listing: answers and frees c. */
static void on_replies(void *arg, int rc) {
  struct replies_ctx *c = arg;
  if (rc != 0) {
    api_error(c->req, 503, "store_unavailable", NULL, "cannot list replies now");
  } else {
    json_t *arr = json_array();
    for (int i = 0; i < c->n; i++) json_array_append_new(arr, reply_json(&c->rows[i]));
    api_json_page(c->req, "replies", arr, c->next);
  }
  for (int i = 0; i < c->n; i++) free(c->rows[i].text);
  free(c->rows);
  free(c);
}

void api_replies_list(struct api_call *call) {
  /* Freed in on_replies(), which answers (the read runs in the store's pool). */
  struct replies_ctx *c = kk_xcalloc(1, sizeof *c);
  c->req = call->req;
  c->f.limit = 100;
  if (reply_query(c->req, &c->f, c->phone, sizeof c->phone) != 0) {
    free(c);
    return;
  }
  c->rows = kk_xcalloc((size_t)c->f.limit, sizeof *c->rows);
  store_reply_list_async(call->a->store, call->account_id, &c->f, c->rows, &c->n, &c->next,
                         on_replies, c);
}
