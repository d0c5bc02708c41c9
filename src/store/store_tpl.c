/*
 * store_tpl.c - templates: the write (queued for the backend's
 * TEMPLATE_PUT) and the copy held in memory, one array sorted by
 * (account, name), so that an account's templates are one range found by
 * binary search. See store.h ("templates") for the bounds.
 */
#include <stdlib.h>
#include <string.h>

#include "store/store_tpl.h"
#include "core/kk_err.h"
#include "core/kk_log.h"
#include "core/kk_mem.h"
#include "store/store_int.h"

#define LOGCTX "store"

struct tpl_ent {
  int64_t account_id;
  struct store_template t;    /* name and body owned */
};

/* Names queued for an account and not yet done (the per-account bound
   counts them as made). */
struct tpl_pending {
  int64_t account_id;
  int n;
};

struct store_tpls {
  struct tpl_ent **v;         /* owned, n of them, sorted */
  int n, cap;
  long long bytes;            /* of the bodies held */
  long long bytes_pending;    /* of the bodies queued */
  struct tpl_pending *pend;   /* owned, npend of them */
  int npend, cappend;
  int per_account;
};

struct store_tpls *store_tpls_new(void) {
  struct store_tpls *t = kk_xcalloc(1, sizeof *t);
  t->per_account = STORE_TEMPLATES_MAX;
  return t;
}

static void ent_free(struct tpl_ent *e) {
  free((char *)e->t.name);
  free((char *)e->t.body);
  free(e);
}

void store_tpls_free(struct store_tpls *t) {
  if (t == NULL) return;
  for (int i = 0; i < t->n; i++) ent_free(t->v[i]);
  free(t->v);
  free(t->pend);
  free(t);
}

static int cmp(int64_t a, const char *an, int64_t b, const char *bn) {
  if (a != b) return a < b ? -1 : 1;
  return strcmp(an, bn);
}

/* Where (account_id, name) is (*found 1), or where it would go. */
static int pos_of(const struct store_tpls *t, int64_t account_id, const char *name, int *found) {
  int lo = 0, hi = t->n;
  while (lo < hi) {
    int mid = (lo + hi) / 2;
    int d = cmp(t->v[mid]->account_id, t->v[mid]->t.name, account_id, name);
    if (d == 0) {
      *found = 1;
      return mid;
    }
    if (d < 0) lo = mid + 1;
    else hi = mid;
  }
  *found = 0;
  return lo;
}

/* The first of account_id's entries (or where they would go), and how many. */
static int range_of(const struct store_tpls *t, int64_t account_id, int *count) {
  int found;
  int lo = pos_of(t, account_id, "", &found);
  int hi = lo;
  while (hi < t->n && t->v[hi]->account_id == account_id) hi++;
  *count = hi - lo;
  return lo;
}

static void set(struct store_tpls *t, int64_t account_id, const char *name, const char *body,
                int64_t created_at, int64_t updated_at) {
  int found;
  int i = pos_of(t, account_id, name, &found);
  if (found) {
    struct tpl_ent *e = t->v[i];
    t->bytes -= (long long)strlen(e->t.body);
    if (body) {
      free((char *)e->t.body);
      e->t.body = kk_xstrdup(body);
      e->t.updated_at = updated_at;
      t->bytes += (long long)strlen(body);
      return;
    }
    ent_free(e);
    memmove(&t->v[i], &t->v[i + 1], (size_t)(t->n - i - 1) * sizeof *t->v);
    t->n--;
    return;
  }
  if (!body) return;
  if (t->n == t->cap) {
    t->cap = t->cap ? 2 * t->cap : 64;
    t->v = kk_xrealloc(t->v, (size_t)t->cap * sizeof *t->v);
  }
  struct tpl_ent *e = kk_xcalloc(1, sizeof *e);   /* freed by ent_free */
  e->account_id = account_id;
  e->t.name = kk_xstrdup(name);
  e->t.body = kk_xstrdup(body);
  e->t.created_at = created_at;
  e->t.updated_at = updated_at;
  t->bytes += (long long)strlen(body);
  memmove(&t->v[i + 1], &t->v[i], (size_t)(t->n - i) * sizeof *t->v);
  t->v[i] = e;
  t->n++;
}

static void fill_one(void *arg, int64_t account_id, const char *name, const char *body,
                     int64_t created_at, int64_t updated_at) {
  set(arg, account_id, name, body, created_at, updated_at);
}

int store_tpls_fill(struct store *s) {
  if (s->be->read.templates_all == NULL) return 0;
  if (s->be->read.templates_all(s, fill_one, s->tpls) != 0) {
    kk_error(LOGCTX, "the templates could not be read");
    return KK_ESTORE;
  }
  return 0;
}

void store_tpls_apply(struct store *s, const struct store_note *notes, int n) {
  for (int i = 0; i < n; i++)
    if (notes[i].kind == STORE_NOTE_TEMPLATE_CFG && notes[i].cfg)
      set(s->tpls, notes[i].account_id, notes[i].cfg->name, notes[i].cfg->text, notes[i].at,
          notes[i].at);
}

/* ---- the bounds ------------------------------------------------------------ */

static struct tpl_pending *pending_of(struct store_tpls *t, int64_t account_id, int add) {
  for (int i = 0; i < t->npend; i++)
    if (t->pend[i].account_id == account_id) return &t->pend[i];
  if (!add) return NULL;
  if (t->npend == t->cappend) {
    t->cappend = t->cappend ? 2 * t->cappend : 8;
    t->pend = kk_xrealloc(t->pend, (size_t)t->cappend * sizeof *t->pend);
  }
  t->pend[t->npend] = (struct tpl_pending){account_id, 0};
  return &t->pend[t->npend++];
}

/* What the done callback of a put runs through: the put stops counting
   against the bounds, then the caller's callback runs. Freed there. */
struct tpl_done {
  struct store *s;
  store_done_cb done;
  void *arg;
  int64_t account_id;
  int counted;                /* a new name counted by the per-account bound */
  long long bytes;            /* the body's, counted by the total bound */
};

static void tpl_done_cb(void *arg, int rc) {
  struct tpl_done *b = arg;
  struct store_tpls *t = b->s->tpls;
  t->bytes_pending -= b->bytes;
  struct tpl_pending *p = b->counted ? pending_of(t, b->account_id, 0) : NULL;
  if (p && --p->n == 0) *p = t->pend[--t->npend];
  if (b->done) b->done(b->arg, rc);
  free(b);
}

static int refuse(struct store *s, struct store_op *op) {
  (void)s;
  return (int)(intptr_t)op->data;
}

static void template_data_free(void *data) {
  struct store_template_data *d = data;
  free(d->body);
}

void store_template_put(struct store *s, int64_t account_id, const char *name, const char *body,
                        store_done_cb done, void *arg) {
  struct store_tpls *t = s->tpls;
  int rc = 0, counted = 0;
  size_t len = body ? strlen(body) : 0;
  if (strlen(name) == 0 || strlen(name) > STORE_TEMPLATE_NAME_MAX) rc = KK_EINVAL;
  else if (len > STORE_TEMPLATE_BYTES) rc = KK_ETOOBIG;
  else if (body && t->bytes + t->bytes_pending + (long long)len > STORE_TEMPLATES_BYTES)
    rc = KK_ENOSPC;
  if (rc == 0 && body && store_template_find(s, account_id, name) == NULL) {
    int have;
    range_of(t, account_id, &have);
    struct tpl_pending *p = pending_of(t, account_id, 0);
    if (have + (p ? p->n : 0) >= t->per_account) rc = KK_ENOSPC;
    else counted = 1;
  }
  if (rc != 0) {
    /* Fails in its savepoint; done gets rc after the batch, as any write. */
    store_submit(s, store_atomic(store_op_new(refuse, done, arg, (void *)(intptr_t)rc, 1)));
    return;
  }
  if (counted) pending_of(t, account_id, 1)->n++;
  struct tpl_done *b = kk_xcalloc(1, sizeof *b);   /* freed by tpl_done_cb */
  b->s = s;
  b->done = done;
  b->arg = arg;
  b->account_id = account_id;
  b->counted = counted;
  b->bytes = (long long)len;
  t->bytes_pending += b->bytes;
  struct store_template_data *d = kk_xcalloc(1, sizeof *d);   /* freed with the op */
  d->account_id = account_id;
  d->at = store_now_ms();
  snprintf(d->name, sizeof d->name, "%s", name);
  d->body = body ? kk_xstrdup(body) : NULL;
  struct store_op *op = store_op_of(s, STORE_OP_TEMPLATE_PUT, tpl_done_cb, b, d, 0);
  op->data_free = template_data_free;
  store_submit(s, store_atomic(op));
}

/* ---- the reads --------------------------------------------------------------- */

const struct store_template *store_template_find(struct store *s, int64_t account_id,
                                                 const char *name) {
  int found;
  int i = pos_of(s->tpls, account_id, name, &found);
  return found ? &s->tpls->v[i]->t : NULL;
}

void store_templates_each(struct store *s, int64_t account_id,
                          void (*fn)(void *arg, const struct store_template *t), void *arg) {
  int n;
  int lo = range_of(s->tpls, account_id, &n);
  for (int i = lo; i < lo + n; i++) fn(arg, &s->tpls->v[i]->t);
}

void store_templates_set_bound(struct store *s, int per_account) {
  s->tpls->per_account = per_account;
}
