/*
 * store_config.c - the backend-neutral side of accounts, keys, routes and
 * settings: what the store.h functions queue (the backend carries each
 * write out: store_int.h, STORE_OP_LIST) and the reads they pass to the
 * backend. Accounts and named cascades are read from memory (store_cache.c),
 * and their creation is refused past the bounds of store.h.
 */
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/kk_err.h"
#include "core/kk_mem.h"
#include "store/store_cache.h"
#include "store/store_int.h"

/* ---- bounded writes ------------------------------------------------------ */

/* What the done callback of a write under a bound (store.h:
   STORE_ACCOUNTS_MAX, STORE_CASCADES_MAX) runs through: the write stops
   counting against the bound (its commit's notes have counted it, if it
   was made), then the caller's callback runs. Freed there. */
struct bounded_done {
  struct store *s;
  store_done_cb done;
  void *arg;
  int cascade;              /* 0: an account's creation; 1: a cascade's put */
  int64_t account_id;       /* cascade: whose */
  int counted;              /* cascade: a new name counted by the bound */
};

static void bounded_done_cb(void *arg, int rc) {
  struct bounded_done *b = arg;
  if (b->cascade)
    store_cache_cascade_done(b->s, b->account_id, b->counted);
  else
    store_cache_account_done(b->s);
  if (b->done) b->done(b->arg, rc);
  free(b);
}

static struct bounded_done *bounded_done_new(struct store *s, store_done_cb done, void *arg) {
  struct bounded_done *b = kk_xcalloc(1, sizeof *b);   /* freed by bounded_done_cb */
  b->s = s;
  b->done = done;
  b->arg = arg;
  return b;
}

/* The body of a write refused over a bound: it fails in its savepoint and
   its done callback gets KK_ENOSPC after the batch, as any failed write. */
static int refuse_full(struct store *s, struct store_op *op) {
  (void)s, (void)op;
  return KK_ENOSPC;
}

/* ---- accounts and keys ------------------------------------------------- */

static void random_hex(char *out, size_t nbytes) {
  unsigned char b[64];
  if (nbytes > sizeof b) nbytes = sizeof b;
  if (RAND_bytes(b, (int)nbytes) != 1) abort();
  for (size_t i = 0; i < nbytes; i++) sprintf(out + 2 * i, "%02x", b[i]);
}

void store_account_create(struct store *s, struct store_account *acc,
                          store_done_cb done, void *arg) {
  char hex[33];
  random_hex(hex, 12);
  snprintf(acc->public_id, sizeof acc->public_id, "acc_%.24s", hex);
  char sec[65];
  random_hex(sec, 32);
  snprintf(acc->callback_secret, sizeof acc->callback_secret, "whsec_%s", sec);
  acc->created_at = store_now_ms();
  if (store_cache_account_admit(s) != 0) {
    store_submit(s, store_atomic(store_op_new(refuse_full, done, arg, acc, 1)));
    return;
  }
  struct bounded_done *b = bounded_done_new(s, done, arg);
  store_submit(s, store_atomic(store_op_of(s, STORE_OP_ACCOUNT_CREATE, bounded_done_cb, b,
                                           acc, 1)));
}

void store_account_update(struct store *s, struct store_account *acc,
                          store_done_cb done, void *arg) {
  store_submit(s, store_atomic(store_op_of(s, STORE_OP_ACCOUNT_UPDATE, done, arg, acc, 1)));
}

void store_key_add(struct store *s, int64_t account_id, const uint8_t hash[32],
                   const char *prefix, store_done_cb done, void *arg) {
  struct store_key_data *k = kk_xcalloc(1, sizeof *k);   /* freed with the op */
  k->account_id = account_id;
  memcpy(k->hash, hash, 32);
  snprintf(k->prefix, sizeof k->prefix, "%s", prefix);
  store_submit(s, store_atomic(store_op_of(s, STORE_OP_KEY_ADD, done, arg, k, 0)));
}

int store_keys_each(struct store *s,
                    void (*fn)(void *arg, const uint8_t hash[32], int64_t account_id),
                    void *arg) {
  return s->be->read.keys_each(s, fn, arg);
}

struct keys_job {
  int64_t account_id;
  void (*fn)(void *arg, const char *prefix, int64_t created_at, int64_t revoked_at);
  void *fn_arg;
};

static int pool_keys_list(struct store *s, void *rd, void *job) {
  struct keys_job *j = job;
  return s->be->read.keys_rows(s, rd, j->account_id, j->fn, j->fn_arg);
}

void store_keys_list_async(struct store *s, int64_t account_id,
                           void (*fn)(void *arg, const char *prefix, int64_t created_at,
                                      int64_t revoked_at),
                           void *fn_arg, store_done_cb done, void *arg) {
  struct keys_job *j = kk_xcalloc(1, sizeof *j);   /* freed after done */
  j->account_id = account_id;
  j->fn = fn;
  j->fn_arg = fn_arg;
  store_pool_run(s, pool_keys_list, j, done, arg);
}

void store_key_revoke(struct store *s, struct store_key_revoke *k, store_done_cb done,
                      void *arg) {
  store_submit(s, store_atomic(store_op_of(s, STORE_OP_KEY_REVOKE, done, arg, k, 1)));
}

int store_accounts_suspended(struct store *s, void (*fn)(void *arg, int64_t account_id),
                             void *arg) {
  return s->be->read.accounts_suspended(s, fn, arg);
}

/* ---- routes ------------------------------------------------------------ */

/* What an operation's data owns (struct store_op.data_free). */
static void route_data_free(void *data) {
  struct store_route_data *d = data;
  free(d->name);
  free(d->config);
}

static void setting_data_free(void *data) {
  struct store_setting_data *d = data;
  free(d->value);
}

void store_route_put(struct store *s, const char *name, const char *config,
                     store_done_cb done, void *arg) {
  struct store_route_data *d = kk_xcalloc(1, sizeof *d);   /* freed with the op */
  d->name = kk_xstrdup(name);
  d->config = config ? kk_xstrdup(config) : NULL;
  struct store_op *op = store_op_of(s, STORE_OP_ROUTE_PUT, done, arg, d, 0);
  op->data_free = route_data_free;
  store_submit(s, store_atomic(op));
}

int store_routes_each(struct store *s,
                      void (*fn)(void *arg, const char *name, const char *config),
                      void *arg) {
  return s->be->read.routes_each(s, fn, arg);
}

/* ---- settings: channels, prices, named cascades --------------------------- */

/* The operation that puts a setting (not queued yet). */
static struct store_op *setting_op(struct store *s, enum store_setting what, int64_t account_id,
                                   const char *key, const char *value, int64_t num,
                                   store_done_cb done, void *arg) {
  struct store_setting_data *d = kk_xcalloc(1, sizeof *d);   /* freed with the op */
  d->what = what;
  d->account_id = account_id;
  snprintf(d->key, sizeof d->key, "%s", key);
  d->value = value ? kk_xstrdup(value) : NULL;
  d->num = num;
  struct store_op *op = store_op_of(s, STORE_OP_SETTING_PUT, done, arg, d, 0);
  op->data_free = setting_data_free;
  return store_atomic(op);
}

static void setting_put(struct store *s, enum store_setting what, int64_t account_id,
                        const char *key, const char *value, int64_t num, store_done_cb done,
                        void *arg) {
  store_submit(s, setting_op(s, what, account_id, key, value, num, done, arg));
}

void store_channel_put(struct store *s, int64_t account_id, const char *channel,
                       const char *config, store_done_cb done, void *arg) {
  setting_put(s, STORE_SET_CHANNEL, account_id, channel, config, 0, done, arg);
}

void store_price_put(struct store *s, int64_t account_id, const char *channel, int64_t price,
                     store_done_cb done, void *arg) {
  setting_put(s, STORE_SET_PRICE, account_id, channel, NULL, price, done, arg);
}

void store_cascade_put(struct store *s, int64_t account_id, const char *name, const char *steps,
                       store_done_cb done, void *arg) {
  if (steps == NULL) {
    setting_put(s, STORE_SET_CASCADE, account_id, name, NULL, 0, done, arg);
    return;
  }
  int counted;
  if (store_cache_cascade_admit(s, account_id, name, &counted) != 0) {
    store_submit(s, store_atomic(store_op_new(refuse_full, done, arg, NULL, 1)));
    return;
  }
  struct bounded_done *b = bounded_done_new(s, done, arg);
  b->cascade = 1;
  b->account_id = account_id;
  b->counted = counted;
  store_submit(s, setting_op(s, STORE_SET_CASCADE, account_id, name, steps, 0, bounded_done_cb, b));
}

int store_channels_each(struct store *s,
                        void (*fn)(void *arg, int64_t account_id, const char *channel,
                                   const char *config),
                        void *arg) {
  return s->be->read.channels_each(s, fn, arg);
}

int store_prices_each(struct store *s,
                      void (*fn)(void *arg, int64_t account_id, const char *channel,
                                 int64_t price),
                      void *arg) {
  return s->be->read.prices_each(s, fn, arg);
}

