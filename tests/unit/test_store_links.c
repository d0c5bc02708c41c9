/*
 * test_store_links.c - tracked links in the store (store_link.h) on both
 * backends: a message's links written with it (none for a repeat under
 * its key), a code's lookup, clicks counted (a code's first as unique, an
 * unknown code passed over), a conversion's recipient found by message or
 * by phone and campaign (never another account's), conversions counted.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/kk_err.h"
#include "core/kk_mem.h"
#include "kk_test.h"
#include "store/store.h"
#include "store/store_link.h"
#include "store_contract.h"

static int want;
#define RUN(t, call)                                                           \
  do {                                                                         \
    want = (t)->ndone + 1;                                                     \
    (t)->rc = 0;                                                               \
    call;                                                                      \
    ASSERT_EQ(tmp_store_wait((t), want, 10000), 0);                            \
  } while (0)
/* The same for a call that is to fail with rc. */
#define FAILS(t, rc_, call)                                                    \
  do {                                                                         \
    want = (t)->ndone + 1;                                                     \
    (t)->rc = 0;                                                               \
    call;                                                                      \
    ASSERT_EQ(tmp_store_wait((t), want, 10000), (rc_));                        \
  } while (0)

static struct store_msg_new msg(const char *pid, const char *key, const char *to,
                                const struct store_link_new *links, int n, int variant) {
  int64_t now = store_now_ms();
  return (struct store_msg_new){
      .account_id = 1, .public_id = pid, .idem_key = key, .to = to, .text = "hi",
      .msg_class = "service", .encoding = "gsm7", .segments = 1, .route = "r1",
      .campaign = "spring", .created_at = now, .expires_at = now + 86400000, .links = links,
      .nlinks = n, .link_variant = variant};
}

static struct store_click *clicks_of(const char *const *codes, int n) {
  struct store_click *c = kk_xcalloc((size_t)n, sizeof *c);   /* the store frees them */
  for (int i = 0; i < n; i++) {
    snprintf(c[i].code, sizeof c[i].code, "%s", codes[i]);
    c[i].at = store_now_ms();
    snprintf(c[i].ua, sizeof c[i].ua, "UA/%d", i);
  }
  return c;
}

static const struct store_link_count *count_of(const struct store_link_count *rows, int n,
                                               const char *channel, int variant) {
  for (int i = 0; i < n; i++)
    if (strcmp(rows[i].channel, channel) == 0 && rows[i].variant == variant) return &rows[i];
  return NULL;
}

static void links_contract(struct sc_env *e) {
  struct tmp_store *t = e->t;
  struct store_link_new la[2] = {{"AAAAAAAAAAA1", "sms", (char *)"https://a.ru/x"},
                                 {"AAAAAAAAAAA2", "vk", (char *)"https://a.ru/x"}};
  struct store_link_new lb[1] = {{"BBBBBBBBBBB1", "sms", (char *)"https://b.ru/?q=1#f"}};
  struct store_link_new lc[1] = {{"CCCCCCCCCCC1", "sms", (char *)"https://a.ru/x"}};
  struct store_msg_new m[2] = {msg("msg_a", "k1", "79160000001", la, 2, 1),
                               msg("msg_b", NULL, "79160000002", lb, 1, 0)};
  m[1].variant = 2;   /* msg_b: its campaign's variant 1 (given + 1) */
  RUN(t, store_msg_insert(t->store, m, 2, tmp_store_done, t));
  ASSERT_EQ(m[0].rc, 0);
  ASSERT_EQ(m[1].rc, 0);
  /* made again under its key: the same message, no new links */
  struct store_msg_new again = msg("msg_a2", "k1", "79160000001", lc, 1, 1);
  RUN(t, store_msg_insert(t->store, &again, 1, tmp_store_done, t));
  ASSERT_EQ(again.duplicate, 1);
  ASSERT_EQ(e->num(e, "SELECT COUNT(*) FROM link_codes"), 3);
  ASSERT_EQ(e->num(e, "SELECT COUNT(*) FROM link_codes WHERE code='CCCCCCCCCCC1'"), 0);
  ASSERT_EQ(e->num(e, "SELECT COUNT(*) FROM link_codes WHERE message='msg_a' AND variant=1"
                      " AND phone='79160000001' AND campaign='spring'"),
            2);

  /* a code's link */
  struct store_link l;
  RUN(t, store_link_get_async(t->store, "AAAAAAAAAAA2", &l, tmp_store_done, t));
  ASSERT_EQ(t->rc, 0);
  ASSERT_EQ(l.account_id, 1);
  ASSERT_STR_EQ(l.campaign, "spring");
  ASSERT_STR_EQ(l.channel, "vk");
  ASSERT_STR_EQ(l.message, "msg_a");
  ASSERT_STR_EQ(l.phone, "79160000001");
  ASSERT_STR_EQ(l.target, "https://a.ru/x");
  ASSERT_EQ(l.variant, 1);
  free(l.target);
  FAILS(t, KK_ENOENT, store_link_get_async(t->store, "ZZZZZZZZZZZZ", &l, tmp_store_done, t));

  /* clicks: A1 twice, B1 once, an unknown code passed over */
  static const char *const codes[] = {"AAAAAAAAAAA1", "AAAAAAAAAAA1", "BBBBBBBBBBB1",
                                      "ZZZZZZZZZZZZ"};
  int64_t before = store_now_ms();
  RUN(t, store_clicks_write(t->store, clicks_of(codes, 4), 4, tmp_store_done, t));
  ASSERT_EQ(t->rc, 0);
  ASSERT_EQ(e->num(e, "SELECT COUNT(*) FROM link_clicks"), 3);
  /* each click with its user agent and time */
  ASSERT_EQ(e->num(e, "SELECT COUNT(*) FROM link_clicks WHERE code='BBBBBBBBBBB1'"
                      " AND user_agent='UA/2'"), 1);
  ASSERT_EQ(e->num(e, "SELECT COUNT(*) FROM link_clicks WHERE code='AAAAAAAAAAA1'"
                      " AND user_agent IN ('UA/0','UA/1')"), 2);
  ASSERT(e->num(e, "SELECT MIN(at) FROM link_clicks") >= before - 1000);
  ASSERT_EQ(e->num(e, "SELECT clicks FROM link_codes WHERE code='AAAAAAAAAAA1'"), 2);
  ASSERT_EQ(e->num(e, "SELECT COUNT(*) FROM link_codes WHERE first_click_at IS NOT NULL"), 2);
  RUN(t, store_clicks_write(t->store, clicks_of(codes + 2, 1), 1, tmp_store_done, t));
  /* a link preview of A2: kept and counted as one, the code not clicked */
  struct store_click *pv = clicks_of((const char *const[]){"AAAAAAAAAAA2"}, 1);
  pv->preview = 1;
  RUN(t, store_clicks_write(t->store, pv, 1, tmp_store_done, t));
  ASSERT_EQ(e->num(e, "SELECT COUNT(*) FROM link_clicks WHERE code='AAAAAAAAAAA2' AND preview=1"), 1);
  ASSERT_EQ(e->num(e, "SELECT COUNT(*) FROM link_codes WHERE code='AAAAAAAAAAA2' AND clicks=0"
                      " AND first_click_at IS NULL"),
            1);
  struct store_link_count rows[STORE_LINK_COUNTS_MAX];
  int n = 0;
  RUN(t, store_link_counts_async(t->store, 1, "spring", rows, &n, tmp_store_done, t));
  ASSERT_EQ(t->rc, 0);
  ASSERT_EQ(n, 3);
  const struct store_link_count *a = count_of(rows, n, "sms", 1), *b = count_of(rows, n, "sms", 0),
                                *pvc = count_of(rows, n, "vk", 1);
  ASSERT(a != NULL && b != NULL && pvc != NULL);
  ASSERT_EQ(a->clicked, 2);
  ASSERT_EQ(a->clicked_unique, 1);
  ASSERT_EQ(a->previews, 0);
  ASSERT_EQ(b->clicked, 2);
  ASSERT_EQ(b->clicked_unique, 1);
  ASSERT_EQ(pvc->clicked, 0);
  ASSERT_EQ(pvc->clicked_unique, 0);
  ASSERT_EQ(pvc->previews, 1);
  /* another account's counters are its own */
  RUN(t, store_link_counts_async(t->store, 2, "spring", rows, &n, tmp_store_done, t));
  ASSERT_EQ(n, 0);

  /* a conversion's recipient: by message, by phone and campaign */
  struct store_conv_find f = {.account_id = 1};
  snprintf(f.message, sizeof f.message, "msg_a");
  RUN(t, store_conv_find_async(t->store, &f, tmp_store_done, t));
  ASSERT_EQ(t->rc, 0);
  ASSERT_STR_EQ(f.campaign, "spring");
  ASSERT_STR_EQ(f.phone, "79160000001");
  ASSERT_EQ(f.variant, -1);   /* sent with the label alone: no variant */
  char channel[20];
  snprintf(channel, sizeof channel, "%s", f.channel);
  struct store_conv_find g = {.account_id = 1};
  snprintf(g.phone, sizeof g.phone, "79160000002");
  snprintf(g.campaign, sizeof g.campaign, "spring");
  RUN(t, store_conv_find_async(t->store, &g, tmp_store_done, t));
  ASSERT_EQ(t->rc, 0);
  ASSERT_STR_EQ(g.message, "msg_b");
  ASSERT_EQ(g.variant, 1);   /* as its message was made */
  /* another account's message, a phone without a message of the campaign */
  struct store_conv_find h = {.account_id = 2};
  snprintf(h.message, sizeof h.message, "msg_a");
  FAILS(t, KK_ENOENT, store_conv_find_async(t->store, &h, tmp_store_done, t));
  struct store_conv_find x = {.account_id = 1};
  snprintf(x.phone, sizeof x.phone, "79160000002");
  snprintf(x.campaign, sizeof x.campaign, "autumn");
  FAILS(t, KK_ENOENT, store_conv_find_async(t->store, &x, tmp_store_done, t));

  /* conversions counted with their value */
  struct store_conversion c = {.account_id = 1, .variant = 1, .value = 15000,
                               .at = store_now_ms()};
  snprintf(c.campaign, sizeof c.campaign, "spring");
  snprintf(c.message, sizeof c.message, "msg_a");
  snprintf(c.phone, sizeof c.phone, "79160000001");
  snprintf(c.channel, sizeof c.channel, "%s", channel);
  RUN(t, store_conversion_write(t->store, &c, tmp_store_done, t));
  ASSERT_EQ(t->rc, 0);
  ASSERT(c.id > 0);
  c.value = 5000;
  RUN(t, store_conversion_write(t->store, &c, tmp_store_done, t));
  RUN(t, store_link_counts_async(t->store, 1, "spring", rows, &n, tmp_store_done, t));
  const struct store_link_count *v = count_of(rows, n, channel, 1);
  ASSERT(v != NULL);
  ASSERT_EQ(v->converted, 2);
  ASSERT_EQ(v->value, 20000);
  ASSERT_EQ(e->num(e, "SELECT COUNT(*) FROM conversions WHERE account_id=1"), 2);
}

KK_TEST(store_links_sqlite) {
  struct sc_sq q;
  sc_sqlite_open(&q);
  links_contract(&q.e);
  sc_sqlite_close(&q);
}

KK_TEST(store_pg_links) {
  struct sc_pg p;
  sc_pg_open(&p, 1);
  links_contract(&p.e[0]);
  sc_pg_close(&p);
}
