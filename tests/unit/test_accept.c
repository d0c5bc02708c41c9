/*
 * test_accept.c - the one way in (accept/) on a real store in a temporary
 * folder: a message and a batch stored in one commit with a result per
 * item after it; the number normalised, the class, encoding, segments and
 * route worked out; refusals with their codes (the ingress's own, a bad
 * number, an unknown class, no route, the account's senders and countries,
 * the policy chain); idempotent repeats and mismatches; a saved cascade
 * resolved by name; and the new SMS handed out by the store's note, with
 * its row, to whoever subscribed.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "accept/accept.h"
#include "core/kk_err.h"
#include "core/kk_log.h"
#include "dispatch/dispatch.h"
#include "store/store.h"
#include "kk_test.h"
#include "lib/tmp_store.h"

struct env {
  struct tmp_store ts;        /* loop, store, folder, completions */
  struct dispatch *dispatch;
  struct accept ac;
  struct store_account acc;
  /* what the store's notes said */
  int sms_new;
  struct store_due due;       /* the last new SMS's row (text copied) */
  char due_text[64];
  /* accept's answer */
  int answered, answer_rc;
  int stopped;
};

static uint64_t mono_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void on_notes(void *ud, const struct store_note *notes, int n) {
  struct env *e = ud;
  for (int i = 0; i < n; i++) {
    if (notes[i].kind != STORE_NOTE_SMS_NEW) continue;
    e->sms_new++;
    e->due = *notes[i].due;
    snprintf(e->due_text, sizeof e->due_text, "%s", notes[i].due->text ? notes[i].due->text : "");
    e->due.text = NULL;
  }
}

/* Runs the loop until want store operations have completed. */
static void wait_done(struct env *e, int want) { ASSERT_EQ(tmp_store_wait(&e->ts, want, 10000), 0); }

/* A store, an account (senders and countries as given, "" for none), and
   with_route: an SMS route (to a port nothing listens on; nothing is sent). */
static void env_open(struct env *e, const char *senders, const char *countries, int with_route) {
  memset(e, 0, sizeof *e);
  kk_log_level = KK_LOG_ERROR + 1;
  ASSERT_EQ(tmp_store_open(&e->ts, "accept", NULL), 0);
  /* First, so that it sees the new SMS's text before the dispatcher takes it. */
  ASSERT_EQ(store_subscribe(e->ts.store, on_notes, e), 0);
  struct dispatch_opts dopts = {0};
  e->dispatch = dispatch_new(&e->ts.loop, e->ts.store, &dopts);
  if (with_route) {
    json_t *o = json_pack("{s:s, s:i, s:i}", "host", "127.0.0.1", "port", 1,
                          "reconnect_min_ms", 60000);
    struct dispatch_route_cfg rc;
    char err[160];
    ASSERT_EQ(dispatch_route_cfg_parse(o, "r1", &rc, err, sizeof err), 0);
    json_decref(o);
    ASSERT_EQ(dispatch_route_put(e->dispatch, &rc), 0);
  }
  static const long long ttl[3] = {86400000, 3600000, 86400000};
  accept_init(&e->ac, e->ts.store, e->dispatch, NULL, ttl);
  snprintf(e->acc.name, sizeof e->acc.name, "test");
  snprintf(e->acc.senders, sizeof e->acc.senders, "%s", senders);
  snprintf(e->acc.countries, sizeof e->acc.countries, "%s", countries);
  store_account_create(e->ts.store, &e->acc, tmp_store_done, &e->ts);
  wait_done(e, 1);
}

static void on_stopped(void *ud) { ((struct env *)ud)->stopped = 1; }

static void env_close(struct env *e) {
  dispatch_stop(e->dispatch, on_stopped, e);
  uint64_t end = mono_ms() + 10000;
  while (!e->stopped) {
    ASSERT(mono_ms() < end);
    uv_run(&e->ts.loop, UV_RUN_ONCE);
  }
  dispatch_free(e->dispatch);
  ASSERT_EQ(tmp_store_close(&e->ts), 0);
}

static void on_answer(void *ud, struct accept_req *r, int rc) {
  (void)r;
  struct env *e = ud;
  e->answered++;
  e->answer_rc = rc;
}

/* Submits n items for the env's account and runs the loop until accept
   answers; returns accept_submit's result. */
static int submit(struct env *e, struct accept_item *items, int n) {
  struct accept_req r = {.account_id = e->acc.id, .items = items, .n = n, .done = on_answer,
                         .ud = e};
  int before = e->answered;
  int rc = accept_submit(&e->ac, &r);
  if (rc != 0) return rc;
  uint64_t end = mono_ms() + 10000;
  while (e->answered == before) {
    ASSERT(mono_ms() < end);
    uv_run(&e->ts.loop, UV_RUN_ONCE);
  }
  ASSERT_EQ(e->answered, before + 1);
  return e->answer_rc;
}

static struct accept_item msg(const char *to, const char *text) {
  return (struct accept_item){.to = to, .text = text, .text_len = strlen(text)};
}

KK_TEST(accept_one_sms_stored_and_noted) {
  struct env e;
  env_open(&e, "", "", 1);
  struct accept_item it = msg("+7 (916) 123-45-67", "hello");
  ASSERT_EQ(submit(&e, &it, 1), 0);
  ASSERT_EQ(it.result, ACCEPT_STORED);
  ASSERT(it.err.code == NULL);
  ASSERT_STR_EQ(it.m.to, "79161234567");
  ASSERT_STR_EQ(it.m.msg_class, "service");
  ASSERT_STR_EQ(it.m.encoding, "gsm7");
  ASSERT_EQ(it.m.segments, 1);
  ASSERT_STR_EQ(it.m.route, "r1");
  ASSERT_STR_EQ(it.m.first_channel, "sms");
  ASSERT_EQ(it.m.expires_at - it.m.created_at, 86400000);
  ASSERT(strncmp(it.m.public_id, "msg_", 4) == 0);
  /* The store's note carried the row the dispatcher needs. */
  ASSERT_EQ(e.sms_new, 1);
  ASSERT_EQ(e.due.id, it.m.id);
  ASSERT_EQ(e.due.attempt_id, it.m.attempt_id);
  ASSERT_EQ(e.due.account_id, e.acc.id);
  ASSERT_STR_EQ(e.due.to, "79161234567");
  ASSERT_STR_EQ(e.due.route, "r1");
  ASSERT_STR_EQ(e.due_text, "hello");
  ASSERT_EQ(e.due.expires_at, it.m.expires_at);
  /* And it is there to read. */
  struct store_msg_view v;
  ASSERT_EQ(tmp_store_msg_get(&e.ts, e.acc.id, it.m.public_id, &v), 0);
  ASSERT_STR_EQ(v.status, "accepted");
  ASSERT_STR_EQ(v.to, "79161234567");
  free(v.text);
  env_close(&e);
}

KK_TEST(accept_batch_result_per_item) {
  struct env e;
  env_open(&e, "", "", 1);
  struct accept_item items[6] = {
      msg("+79161234567", "one"),
      msg("not a phone", "two"),
      msg("+79161234567", "three"),
      msg("+79161234567", "four"),
      msg("+79161234567", "Привет"),
      msg("+79161234567", ""),
  };
  /* Refused by the ingress itself: accept leaves it alone. */
  items[2].result = ACCEPT_REFUSED;
  items[2].err = (struct accept_err){.status = 422, .code = "invalid_sender"};
  items[3].msg_class = "spam";
  items[4].msg_class = "transactional";
  ASSERT_EQ(submit(&e, items, 6), 0);
  ASSERT_EQ(items[0].result, ACCEPT_STORED);
  ASSERT_EQ(items[1].result, ACCEPT_REFUSED);
  ASSERT_STR_EQ(items[1].err.code, "invalid_phone");
  ASSERT_STR_EQ(items[1].err.field, "to");
  ASSERT_EQ(items[1].err.status, 422);
  ASSERT_EQ(items[2].result, ACCEPT_REFUSED);
  ASSERT_STR_EQ(items[2].err.code, "invalid_sender");
  ASSERT_EQ(items[3].result, ACCEPT_REFUSED);
  ASSERT_STR_EQ(items[3].err.code, "invalid_class");
  ASSERT_EQ(items[4].result, ACCEPT_STORED);
  ASSERT_STR_EQ(items[4].m.encoding, "ucs2");
  ASSERT_EQ(items[4].m.expires_at - items[4].m.created_at, 3600000);
  ASSERT_EQ(items[5].result, ACCEPT_REFUSED);
  ASSERT_STR_EQ(items[5].err.code, "invalid_text");
  ASSERT_EQ(e.sms_new, 2);   /* one note per stored SMS, none for the refused */
  env_close(&e);
}

KK_TEST(accept_text_limits_and_segments) {
  struct env e;
  env_open(&e, "", "", 1);
  char long_text[161 + 1];
  memset(long_text, 'a', 161);
  long_text[161] = '\0';
  char too_long[ACCEPT_MAX_TEXT + 2];
  memset(too_long, 'a', sizeof too_long - 1);
  too_long[sizeof too_long - 1] = '\0';
  struct accept_item items[3] = {msg("79161234567", long_text), msg("79161234567", too_long),
                                 msg("79161234567", "a\xff")};
  ASSERT_EQ(submit(&e, items, 3), 0);
  ASSERT_EQ(items[0].result, ACCEPT_STORED);
  ASSERT_EQ(items[0].m.segments, 2);
  ASSERT_STR_EQ(items[1].err.code, "text_too_long");
  ASSERT_STR_EQ(items[2].err.code, "invalid_text");
  env_close(&e);
}

KK_TEST(accept_no_route_refused) {
  struct env e;
  env_open(&e, "", "", 0);
  struct accept_item it = msg("79161234567", "hi");
  ASSERT_EQ(submit(&e, &it, 1), 0);
  ASSERT_EQ(it.result, ACCEPT_REFUSED);
  ASSERT_STR_EQ(it.err.code, "no_route");
  ASSERT_EQ(it.err.status, 503);   /* none configured yet: may pass later */
  ASSERT_EQ(e.sms_new, 0);
  env_close(&e);
}

KK_TEST(accept_idempotent_repeat_and_mismatch) {
  struct env e;
  env_open(&e, "", "", 1);
  struct accept_item a = msg("79161234567", "code 1234");
  a.idem_key = "order-17";
  ASSERT_EQ(submit(&e, &a, 1), 0);
  ASSERT_EQ(a.result, ACCEPT_STORED);
  /* the digest as stored ones were made: SHA-256 over "to=11:79161234567\n
     text=9:code 1234\nclass=7:service\nttl=86400000\nsender=-\ncascade=0:\n
     cascade_name=0:\nextra=-\ncallback_url=-\ncampaign=-\n" */
  ASSERT_STR_EQ(a.req_hash, "da4ba31d7965039d8a8e1f66f30f8dd096078754f71996b3538151278fc85f92");
  char first[40];
  snprintf(first, sizeof first, "%s", a.m.public_id);
  /* The same message written otherwise (the number) is a repeat. */
  struct accept_item b = msg("+7 916 123 45 67", "code 1234");
  b.idem_key = "order-17";
  ASSERT_EQ(submit(&e, &b, 1), 0);
  ASSERT_EQ(b.result, ACCEPT_DUPLICATE);
  ASSERT_STR_EQ(b.m.dup_public_id, first);
  /* Another text under the same key is refused. */
  struct accept_item c = msg("79161234567", "code 9999");
  c.idem_key = "order-17";
  ASSERT_EQ(submit(&e, &c, 1), 0);
  ASSERT_EQ(c.result, ACCEPT_MISMATCH);
  ASSERT_STR_EQ(c.err.code, "idempotency_mismatch");
  ASSERT_STR_EQ(c.err.field, "idempotency_key");
  ASSERT(strstr(c.err.message, first) != NULL);
  ASSERT_EQ(e.sms_new, 1);   /* only the first was sent */
  env_close(&e);
}

KK_TEST(accept_account_senders_and_countries) {
  struct env e;
  env_open(&e, "[\"KASKAD\",\"79001112233\"]", "[\"RU\"]", 1);
  struct accept_item items[4] = {msg("79161234567", "a"), msg("79161234567", "b"),
                                 msg("14155550100", "c"), msg("79161234567", "d")};
  items[0].sender = "KASKAD";
  items[1].sender = "OTHER";
  items[3].sender = "+79001112233";   /* registered without its '+' */
  ASSERT_EQ(submit(&e, items, 4), 0);
  ASSERT_EQ(items[0].result, ACCEPT_STORED);
  ASSERT_STR_EQ(items[1].err.code, "sender_not_allowed");
  ASSERT_STR_EQ(items[1].err.field, "sender");
  ASSERT_STR_EQ(items[2].err.code, "country_not_allowed");
  ASSERT_STR_EQ(items[2].err.field, "to");
  ASSERT_EQ(items[3].result, ACCEPT_STORED);
  env_close(&e);
}

/* A policy check: refuses texts with STOP in them; counts its calls. */
static int stop_words(void *ud, const struct accept_view *v, struct accept_err *err) {
  (*(int *)ud)++;
  if (strstr(v->msg->text, "STOP") == NULL) return 0;
  err->code = "stop_word";
  err->field = "text";
  snprintf(err->message, sizeof err->message, "text: contains a stop word");
  return 1;
}

/* A second check: refuses messages of the advertising class with 403-like
   status left unset (accept makes it 422). */
static int no_ads(void *ud, const struct accept_view *v, struct accept_err *err) {
  (*(int *)ud)++;
  if (strcmp(v->msg->msg_class, "advertising") != 0) return 0;
  err->code = "no_consent";
  return 1;
}

KK_TEST(accept_policy_chain) {
  struct env e;
  env_open(&e, "", "", 1);
  int calls1 = 0, calls2 = 0;
  ASSERT_EQ(accept_check_add(&e.ac, "stop_words", stop_words, &calls1), 0);
  ASSERT_EQ(accept_check_add(&e.ac, "no_ads", no_ads, &calls2), 0);
  struct accept_item items[3] = {msg("79161234567", "hello"), msg("79161234567", "STOP now"),
                                 msg("79161234567", "sale")};
  items[2].msg_class = "advertising";
  ASSERT_EQ(submit(&e, items, 3), 0);
  ASSERT_EQ(items[0].result, ACCEPT_STORED);
  ASSERT_EQ(items[1].result, ACCEPT_REFUSED);
  ASSERT_STR_EQ(items[1].err.code, "stop_word");
  ASSERT_EQ(items[1].err.status, 422);
  ASSERT_EQ(items[2].result, ACCEPT_REFUSED);
  ASSERT_STR_EQ(items[2].err.code, "no_consent");
  ASSERT_EQ(items[2].err.status, 422);
  /* In order: a message the first check refuses does not reach the second. */
  ASSERT_EQ(calls1, 3);
  ASSERT_EQ(calls2, 2);
  ASSERT_EQ(e.sms_new, 1);
  /* The chain has room for ACCEPT_MAX_CHECKS. */
  for (int i = 2; i < ACCEPT_MAX_CHECKS; i++)
    ASSERT_EQ(accept_check_add(&e.ac, "more", stop_words, &calls1), 0);
  ASSERT_EQ(accept_check_add(&e.ac, "one too many", stop_words, &calls1), KK_ENOSPC);
  env_close(&e);
}

KK_TEST(accept_saved_cascade_by_name) {
  struct env e;
  env_open(&e, "", "", 1);
  char steps[128];
  struct store_step st[2] = {{"vk", "delivered", 60000}, {"sms", "delivered", 0}};
  ASSERT_EQ(store_steps_format(st, 2, steps, sizeof steps), 0);
  store_cascade_put(e.ts.store, e.acc.id, "vk-then-sms", steps, tmp_store_done, &e.ts);
  wait_done(&e, 2);
  struct accept_item items[3] = {msg("79161234567", "a"), msg("79161234567", "b"),
                                 msg(NULL, "c")};
  items[0].cascade_name = "vk-then-sms";
  items[1].cascade_name = "nope";
  items[2].cascade_name = "vk-then-sms";
  items[2].extra = "{\"vk_id\":\"12345\"}";
  ASSERT_EQ(submit(&e, items, 3), 0);
  ASSERT_EQ(items[0].result, ACCEPT_STORED);
  ASSERT_STR_EQ(items[0].m.cascade, steps);
  ASSERT_STR_EQ(items[1].err.code, "unknown_cascade");
  /* Its SMS step needs the number the message does not have. */
  ASSERT_STR_EQ(items[2].err.code, "invalid_phone");
  env_close(&e);
}

KK_TEST(accept_request_refused_whole) {
  struct env e;
  env_open(&e, "", "", 1);
  struct accept_item it = msg("79161234567", "hi");
  struct accept_req r = {.account_id = e.acc.id + 1000, .items = &it, .n = 1,
                         .done = on_answer, .ud = &e};
  ASSERT_EQ(accept_submit(&e.ac, &r), KK_ENOENT);
  ASSERT_EQ(e.answered, 0);   /* done does not run */
  env_close(&e);
}
