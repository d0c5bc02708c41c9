/*
 * store_tpl.h - templates in the store (store_tpl.c): the write, and the
 * copy held in memory that sends by template read on the loop thread.
 */
#ifndef STORE_TPL_H
#define STORE_TPL_H

#include "store/store.h"

/* ---- templates (store_tpl.c) --------------------------------------------- */
/*
 * An account's templates (template/tmpl_doc.h: the body JSON), held in
 * memory like the named cascades: filled when the store opens, kept by the
 * notes of each commit, so that a send by template (a campaign's every
 * message) reads its template on the loop thread without a round trip.
 * Bounded: STORE_TEMPLATES_MAX per account, STORE_TEMPLATE_BYTES each, and
 * STORE_TEMPLATES_BYTES in all.
 */
#define STORE_TEMPLATES_MAX 200
#define STORE_TEMPLATE_BYTES (64 * 1024)
#define STORE_TEMPLATES_BYTES (256LL * 1024 * 1024)
#define STORE_TEMPLATE_NAME_MAX 64

struct store_template {
  const char *name;
  const char *body;           /* JSON */
  int64_t created_at, updated_at;
};
/* Queues saving (body) or deleting (NULL) account_id's template name
   (copied). done gets 0, KK_ENOSPC (a bound), KK_ETOOBIG (body over
   STORE_TEMPLATE_BYTES) or KK_ESTORE. */
void store_template_put(struct store *s, int64_t account_id, const char *name, const char *body,
                        store_done_cb done, void *arg);
/* Loop thread: account_id's template name, borrowed until the next commit's
   notes are applied (do not keep it across a callback), or NULL. */
const struct store_template *store_template_find(struct store *s, int64_t account_id,
                                                 const char *name);
/* Loop thread: fn for each of account_id's templates, in name order. */
void store_templates_each(struct store *s, int64_t account_id,
                          void (*fn)(void *arg, const struct store_template *t), void *arg);
/* Tests only: a lower per-account bound than STORE_TEMPLATES_MAX. */
void store_templates_set_bound(struct store *s, int per_account);

#endif
