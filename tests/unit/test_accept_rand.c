/*
 * test_accept_rand.c - the random bytes of message ids, drawn a block at a
 * time (accept/accept_rand.h): handed out in order and wiped, a new block
 * drawn exactly when too few are left; and the ids accept_prepare makes
 * from them keep their form and stay distinct across blocks.
 */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "accept/accept.h"
#include "accept/accept_rand.h"
#include "api/api_int.h"
#include "kk_test.h"

static int all_zero(const unsigned char *p, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (p[i]) return 0;
  return 1;
}

KK_TEST(accept_rand_refill_boundary) {
  struct accept_rand *r = calloc(1, sizeof *r);
  ASSERT(r != NULL);
  unsigned char b[16];
  /* the first take draws the first block */
  accept_rand_take(r, b, 8);
  ASSERT_EQ(r->draws, 1);
  ASSERT_EQ(r->left, ACCEPT_RAND_BLOCK - 8);
  ASSERT(all_zero(r->buf, 8));   /* what was handed out is wiped */
  /* the block lasts exactly its bytes: 511 more ids of 8 */
  for (int i = 1; i < ACCEPT_RAND_BLOCK / 8; i++) accept_rand_take(r, b, 8);
  ASSERT_EQ(r->draws, 1);
  ASSERT_EQ(r->left, 0);
  ASSERT(all_zero(r->buf, ACCEPT_RAND_BLOCK));
  /* the next take draws again, from the start of the new block */
  accept_rand_take(r, b, 8);
  ASSERT_EQ(r->draws, 2);
  ASSERT_EQ(r->left, ACCEPT_RAND_BLOCK - 8);

  /* the bytes at the block's end come out in order; one more than is left
     draws a new block and drops the rest */
  for (int i = 0; i < 16; i++) r->buf[ACCEPT_RAND_BLOCK - 16 + i] = (unsigned char)(0xa0 + i);
  r->left = 16;
  accept_rand_take(r, b, 8);
  ASSERT_EQ(b[0], 0xa0);
  ASSERT_EQ(b[7], 0xa7);
  ASSERT_EQ(r->left, 8);
  accept_rand_take(r, b, 7);
  ASSERT_EQ(b[0], 0xa8);
  ASSERT_EQ(b[6], 0xae);
  ASSERT_EQ(r->left, 1);
  ASSERT_EQ(r->draws, 2);
  accept_rand_take(r, b, 2);
  ASSERT_EQ(r->draws, 3);
  ASSERT_EQ(r->left, ACCEPT_RAND_BLOCK - 2);
  free(r);
}

static int cmp_id(const void *a, const void *b) { return strcmp(a, b); }

KK_TEST(accept_ids_distinct_across_blocks) {
  static const long long ttl[3] = {86400000, 3600000, 86400000};
  enum { N = 1500 };   /* 8 bytes an id: three blocks */
  struct accept *ac = calloc(1, sizeof *ac);
  char(*ids)[40] = calloc(N, sizeof *ids);
  ASSERT(ac != NULL && ids != NULL);
  accept_init(ac, NULL, NULL, NULL, ttl);
  json_t *doc = json_loads("{\"to\":\"+79161234567\",\"text\":\"hi\"}", 0, NULL);
  ASSERT(doc != NULL);
  for (int i = 0; i < N; i++) {
    struct api_msg_item p;
    struct accept_item it;
    memset(&p, 0, sizeof p);
    memset(&it, 0, sizeof it);
    ASSERT_EQ(api_msg_parse(doc, NULL, &p, &it), 0);
    ASSERT_EQ(accept_prepare(ac, 1, "", 1700000000000LL + i, &it), 0);
    memcpy(ids[i], it.public_id, sizeof ids[i]);
    accept_item_fini(&it);
    api_msg_item_fini(&p);
  }
  json_decref(doc);
  ASSERT_EQ(ac->rand.draws, 3);
  for (int i = 0; i < N; i++) {
    ASSERT_EQ(strlen(ids[i]), 24);
    ASSERT(strncmp(ids[i], "msg_", 4) == 0);
    ASSERT_EQ(strspn(ids[i] + 4, "0123456789abcdefghjkmnpqrstvwxyz"), 20);
  }
  qsort(ids, N, sizeof *ids, cmp_id);
  for (int i = 1; i < N; i++) ASSERT(strcmp(ids[i - 1], ids[i]) != 0);
  free(ids);
  free(ac);
}
