/*
 * api_unsub.c - the unsubscribe link of advertising texts ({{unsubscribe}},
 * accept_optout.h): {public_url}/u/{code}, one code per account and phone.
 *
 *   GET  /u/{code}   a small page that asks, with a form that POSTs; a GET
 *                    alone changes nothing (link previews and mail scanners
 *                    fetch links)
 *   POST /u/{code}   lists the phone (reason link) and withdraws its
 *                    consents, answering a short page; also the RFC 8058
 *                    one-click POST (List-Unsubscribe=One-Click)
 *
 * An unknown code is 404. No key: the code is the credential.
 */
#include <stdio.h>
#include <string.h>

#include "api/api_optout.h"
#include "core/kk_err.h"
#include "core/kk_mem.h"
#include "http/http_server.h"
#include "store/store_optout.h"

#define PAGE_HEAD                                                              \
  "<!doctype html><html lang=\"ru\"><head><meta charset=\"utf-8\">"           \
  "<meta name=\"viewport\" content=\"width=device-width\">"                   \
  "<meta name=\"robots\" content=\"noindex\"><title>Отписка</title></head>"  \
  "<body style=\"font-family:sans-serif;max-width:30em;margin:3em auto\">"

/* A link's call under way (in the call's arena). */
struct unsub_call {
  struct api_call *call;
  char code[STORE_UNSUB_CODE_MAX];
  int64_t account;
  char phone[16];
  struct store_stop_batch b;
  struct store_stop_row row;
};

static void page(struct http_req *req, int status, const char *html) {
  api_respond(req, status, "text/html; charset=utf-8", html, strlen(html),
              "Cache-Control: no-store\r\nX-Robots-Tag: noindex\r\n");
}

static void not_found(struct http_req *req) {
  page(req, 404, PAGE_HEAD "<p>Ссылка не найдена.</p></body></html>");
}

/* 1 when the path's code can be one (a-z, 2-7, 32 of them). */
static int code_ok(const char *s) {
  if (s == NULL || strlen(s) != 32) return 0;
  for (; *s; s++)
    if (!((*s >= 'a' && *s <= 'z') || (*s >= '2' && *s <= '7'))) return 0;
  return 1;
}

static struct unsub_call *unsub_new(struct api_call *c) {
  const char *code = api_param(c, "code");
  if (!code_ok(code)) {
    not_found(c->req);
    return NULL;
  }
  struct unsub_call *u = kk_arena_zalloc(&c->arena, sizeof *u);
  u->call = c;
  snprintf(u->code, sizeof u->code, "%s", code);
  return u;
}

static void on_asked(void *arg, int rc) {
  struct unsub_call *u = arg;
  if (rc == KK_ENOENT) {
    not_found(u->call->req);
    return;
  }
  if (rc != 0) {
    page(u->call->req, 503, PAGE_HEAD "<p>Попробуйте позже.</p></body></html>");
    return;
  }
  char html[1024];
  snprintf(html, sizeof html,
           PAGE_HEAD "<p>Отписаться от рекламных сообщений?</p>"
                     "<form method=\"post\" action=\"/u/%s\">"
                     "<button type=\"submit\">Отписаться</button></form></body></html>",
           u->code);
  page(u->call->req, 200, html);
}

void api_unsub_page(struct api_call *c) {
  struct unsub_call *u = unsub_new(c);
  if (u) store_unsub_get_async(c->a->store, u->code, &u->account, u->phone, on_asked, u);
}

static void on_listed(void *arg, int rc) {
  struct unsub_call *u = arg;
  if (rc != 0)
    page(u->call->req, 503, PAGE_HEAD "<p>Попробуйте позже.</p></body></html>");
  else
    page(u->call->req, 200, PAGE_HEAD "<p>Вы отписаны от рекламных сообщений.</p></body></html>");
}

static void on_found(void *arg, int rc) {
  struct unsub_call *u = arg;
  if (rc != 0) {
    on_asked(u, rc);
    return;
  }
  u->b.account_id = u->account;
  u->b.at = store_now_ms();
  u->b.rows = &u->row;
  u->b.n = 1;
  snprintf(u->row.phone, sizeof u->row.phone, "%s", u->phone);
  snprintf(u->row.reason, sizeof u->row.reason, "link");
  u->row.withdraw = 1;
  store_stop_write(u->call->a->store, &u->b, on_listed, u);
}

void api_unsub_post(struct api_call *c) {
  struct unsub_call *u = unsub_new(c);
  if (u) store_unsub_get_async(c->a->store, u->code, &u->account, u->phone, on_found, u);
}
