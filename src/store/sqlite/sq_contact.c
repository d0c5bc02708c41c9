/*
 * sq_contact.c - contacts, lists and imports in the SQLite backend (see
 * store_contact.h): the writes on the writer thread, the reads on the
 * pool's connections.
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <math.h>
#include <time.h>

#include "contact/contact_filter.h"
#include "core/kk_err.h"
#include "core/kk_mem.h"
#include "core/kk_log.h"
#include "store/sqlite/sq_int.h"

#define LOGCTX "store"

/* "" binds as NULL: an absent field. */
static void bind_opt_text(sqlite3_stmt *st, int i, const char *s) {
  sq_bind_text(st, i, s && *s ? s : NULL);
}

/* Binds the columns of an upsert (sq_contact.h: CONTACT_INSERT) from
   parameter at + 1 on; rec: the consent its consent column records, whose
   source and time it takes, or NULL. */
static void bind_contact_at(sqlite3_stmt *st, int at, int64_t account_id,
                            const struct store_contact *c, const struct store_consent *rec,
                            int64_t import_id, int64_t now) {
  sqlite3_bind_int64(st, at + 1, account_id);
  sq_bind_text(st, at + 2, c->phone);
  bind_opt_text(st, at + 3, c->name);
  bind_opt_text(st, at + 4, c->email);
  bind_opt_text(st, at + 5, c->timezone);
  sq_bind_text(st, at + 6, c->tz_source[0] ? c->tz_source : "default");
  bind_opt_text(st, at + 7, c->operator_name);
  bind_opt_text(st, at + 8, c->region);
  bind_opt_text(st, at + 9, c->vk_id);
  bind_opt_text(st, at + 10, c->telegram_chat_id);
  bind_opt_text(st, at + 11, c->viber_id);
  bind_opt_text(st, at + 12, c->attrs && strcmp(c->attrs, "{}") != 0 ? c->attrs : NULL);
  if (c->consent >= 0) sqlite3_bind_int(st, at + 13, c->consent);
  else sqlite3_bind_null(st, at + 13);
  bind_opt_text(st, at + 14, rec ? rec->source : c->consent_source);
  sq_bind_opt(st, at + 15, rec ? rec->at : c->consent_at);
  sq_bind_opt(st, at + 16, import_id);
  sqlite3_bind_int64(st, at + 17, now);
}

static void bind_contact(sqlite3_stmt *st, int64_t account_id, const struct store_contact *c,
                         const struct store_consent *rec, int64_t import_id, int64_t now) {
  bind_contact_at(st, 0, account_id, c, rec, import_id, now);
}

/* ---- a contact's lists: in its row and in contact_lists ------------------------ */

static int name_cmp(const void *a, const void *b) {
  return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* c's lists, in byte order and each once, into names (borrowed from c);
   their number. */
static int own_lists(const struct store_contact *c, const char **names) {
  int n = 0, k = 0;
  for (int i = 0; i < c->nlists && i < STORE_CONTACT_LISTS_MAX; i++)
    if (c->lists[i][0]) names[n++] = c->lists[i];
  qsort(names, (size_t)n, sizeof *names, name_cmp);
  for (int i = 0; i < n; i++)
    if (k == 0 || strcmp(names[k - 1], names[i]) != 0) names[k++] = names[i];
  return k;
}

/* names[0..n-1] joined by SQ_LIST_SEP into out (room for every list of a
   contact); NULL when there are none. */
static const char *join_lists(const char **names, int n,
                              char out[STORE_CONTACT_LISTS_MAX * (STORE_LIST_NAME_MAX + 1)]) {
  size_t len = 0;
  for (int i = 0; i < n; i++) {
    if (i) out[len++] = SQ_LIST_SEP;
    size_t l = strlen(names[i]);
    memcpy(out + len, names[i], l);
    len += l;
  }
  out[len] = '\0';
  return n ? out : NULL;
}

/* The next name of a lists text at *p (advanced past it): its start and
   length; 0 at the end. */
static int next_list(const char **p, const char **name, size_t *len) {
  if (*p == NULL || **p == '\0') return 0;
  const char *e = strchr(*p, SQ_LIST_SEP);
  *name = *p;
  *len = e ? (size_t)(e - *p) : strlen(*p);
  *p = e ? e + 1 : *p + *len;
  return 1;
}

/* A name of a lists text against a C string, in byte order. */
static int list_cmp(const char *name, size_t len, const char *s) {
  size_t l = strlen(s);
  int d = memcmp(name, s, len < l ? len : l);
  return d ? d : len < l ? -1 : len > l;
}

/* The union of the lists text old (NULL: none) and names[0..n-1] (in byte
   order, each once), malloc'd, with the names old lacks in add (*nadd);
   NULL when old has them all. */
static char *union_lists(const char *old, const char **names, int n, const char **add,
                         int *nadd) {
  *nadd = 0;
  size_t cap = (old ? strlen(old) : 0) + (size_t)n * (STORE_LIST_NAME_MAX + 1) + 1, len = 0;
  char *out = kk_xmalloc(cap);
  const char *p = old, *name;
  size_t nl;
  int more = next_list(&p, &name, &nl), i = 0;
  while (more || i < n) {
    int d = !more ? 1 : i == n ? -1 : list_cmp(name, nl, names[i]);
    const char *s = d <= 0 ? name : names[i];
    size_t l = d <= 0 ? nl : strlen(names[i]);
    if (len) out[len++] = SQ_LIST_SEP;
    memcpy(out + len, s, l);
    len += l;
    if (d > 0) add[(*nadd)++] = names[i];
    if (d >= 0) i++;
    if (d <= 0) more = next_list(&p, &name, &nl);
  }
  out[len] = '\0';
  if (*nadd == 0) {
    free(out);
    return NULL;
  }
  return out;
}

/* The memberships a write adds, inserted at its end (or before it takes a
   phone out of a list) a list at a time, SQ_MEMBERS_ROWS phones a
   statement: a batch in phone order then goes along each list's part of the
   B-tree, and one statement's run serves many rows. Names and phones are
   borrowed from the write's rows. */
#define MEMBERS_NAMES 16   /* lists told apart by number; more: sorted */

struct members {
  int n, cap;
  const char **list, **phone;
  unsigned char *name_of;                /* each membership's list, by number */
  const char *names[MEMBERS_NAMES];
  int nnames, many;                      /* many: more lists than names holds */
};

static void members_init(struct members *m) { memset(m, 0, sizeof *m); }

static void members_fini(struct members *m) {
  free(m->list);
  free(m->phone);
  free(m->name_of);
  members_init(m);
}

/* phone into the lists names[0..n-1], to be inserted (members_flush); m's
   arrays grow as needed (members_fini frees them). */
static void members_add(struct members *m, const char *phone, const char **names, int n) {
  if (m->n + n > m->cap) {
    m->cap = (m->n + n) * 2 > 4 * STORE_CONTACT_BATCH_MAX ? (m->n + n) * 2
                                                          : 4 * STORE_CONTACT_BATCH_MAX;
    m->list = kk_xrealloc(m->list, (size_t)m->cap * sizeof *m->list);
    m->phone = kk_xrealloc(m->phone, (size_t)m->cap * sizeof *m->phone);
    m->name_of = kk_xrealloc(m->name_of, (size_t)m->cap);
  }
  for (int i = 0; i < n; i++) {
    int k = 0;
    while (k < m->nnames && strcmp(m->names[k], names[i]) != 0) k++;
    if (k == m->nnames && k < MEMBERS_NAMES) m->names[m->nnames++] = names[i];
    if (k == MEMBERS_NAMES) m->many = 1;
    m->list[m->n] = names[i];
    m->phone[m->n] = phone;
    m->name_of[m->n++] = (unsigned char)k;
  }
}

/* Two memberships by list, then as added (qsort_r; arg: the lists). */
static int by_list(const void *a, const void *b, void *arg) {
  const char *const *list = arg;
  int x = *(const int *)a, y = *(const int *)b;
  int d = strcmp(list[x], list[y]);
  return d ? d : (x > y) - (x < y);
}

/* Inserts the memberships m holds, and empties it. */
static int members_flush(struct conn *w, int64_t account_id, struct members *m) {
  if (m->n == 0) return 0;
  int *order = kk_xmalloc((size_t)m->n * sizeof *order);   /* freed below */
  if (m->many) {
    for (int i = 0; i < m->n; i++) order[i] = i;
    qsort_r(order, (size_t)m->n, sizeof *order, by_list, m->list);
  } else {   /* a list's numbers are in order of appearance: counted apart */
    int at[MEMBERS_NAMES + 1] = {0};
    for (int i = 0; i < m->n; i++) at[m->name_of[i] + 1]++;
    for (int k = 0; k < m->nnames; k++) at[k + 1] += at[k];
    for (int i = 0; i < m->n; i++) order[at[m->name_of[i]]++] = i;
  }
  int rc = 0;
  for (int i = 0; rc == 0 && i < m->n;) {
    const char *list = m->list[order[i]];
    int e = i;
    while (e < m->n && (m->list[order[e]] == list || strcmp(m->list[order[e]], list) == 0)) e++;
    for (; rc == 0 && e - i >= SQ_MEMBERS_ROWS; i += SQ_MEMBERS_ROWS) {
      sqlite3_stmt *st = sq_stmt(w, ST_CT_LIST_ADDN);
      sqlite3_bind_int64(st, 1, account_id);
      sq_bind_text(st, 2, list);
      for (int j = 0; j < SQ_MEMBERS_ROWS; j++) sq_bind_text(st, 3 + j, m->phone[order[i + j]]);
      rc = sq_step_done(w, st);
    }
    for (; rc == 0 && i < e; i++) {
      sqlite3_stmt *st = sq_stmt(w, ST_CT_LIST_ADD);
      sqlite3_bind_int64(st, 1, account_id);
      sq_bind_text(st, 2, m->phone[order[i]]);
      sq_bind_text(st, 3, list);
      rc = sq_step_done(w, st);
    }
  }
  free(order);
  m->n = m->nnames = m->many = 0;
  return rc;
}

/* Takes phone out of every list of the lists text old. */
static int drop_members(struct conn *w, int64_t account_id, const char *phone, const char *old) {
  const char *p = old, *name;
  size_t len;
  while (next_list(&p, &name, &len)) {
    sqlite3_stmt *st = sq_stmt(w, ST_CT_LIST_DEL);
    sqlite3_bind_int64(st, 1, account_id);
    sqlite3_bind_text(st, 2, name, (int)len, SQLITE_TRANSIENT);
    sq_bind_text(st, 3, phone);
    int rc = sq_step_done(w, st);
    if (rc != 0) return rc;
  }
  return 0;
}

static int set_lists(struct conn *w, int64_t account_id, const char *phone, const char *lists) {
  sqlite3_stmt *st = sq_stmt(w, ST_CT_LISTS_SET);
  sqlite3_bind_int64(st, 1, account_id);
  sq_bind_text(st, 2, phone);
  sq_bind_text(st, 3, lists);
  return sq_step_done(w, st);
}

/* The import that last wrote the contact (*seen_import) and its lists text
   (*old, malloc'd; NULL: none): 1 when there is one, 0 when not, < 0 on a
   failure. */
static int contact_seen(struct conn *w, int64_t account_id, const char *phone,
                        int64_t *seen_import, char **old) {
  sqlite3_stmt *st = sq_stmt(w, ST_CT_SEEN);
  sqlite3_bind_int64(st, 1, account_id);
  sq_bind_text(st, 2, phone);
  int rc = sqlite3_step(st);
  *seen_import = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
  *old = rc == SQLITE_ROW && sqlite3_column_type(st, 1) != SQLITE_NULL ? sq_col_dup(st, 1) : NULL;
  sqlite3_reset(st);
  return rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : -1;
}

/* One contact of a write: counted as created, updated or a duplicate;
   *created: whether it was new; rec as bind_contact(). */
static int write_one(struct conn *w, struct store_contact_batch *b, struct members *m,
                     const struct store_contact *c, const struct store_consent *rec,
                     int64_t now, int *created) {
  const char *names[STORE_CONTACT_LISTS_MAX];
  char joined[STORE_CONTACT_LISTS_MAX * (STORE_LIST_NAME_MAX + 1)];
  int n = own_lists(c, names);
  /* A new contact is inserted as it is, with its lists; one that exists
     merges (or is replaced), counted by what wrote it before. */
  sqlite3_stmt *st = sq_stmt(w, ST_CT_NEW);
  bind_contact(st, b->account_id, c, rec, b->import_id, now);
  sq_bind_text(st, 18, join_lists(names, n, joined));
  int rc = sq_step_done(w, st);
  if (rc != 0) return rc;
  *created = sqlite3_changes(w->db) == 1;
  if (*created) {
    b->created++;
    members_add(m, c->phone, names, n);
    return 0;
  }
  int64_t seen_import;
  char *old;
  int existed = contact_seen(w, b->account_id, c->phone, &seen_import, &old);
  if (existed < 0) return KK_ESTORE;
  if (!existed) b->created++;
  else if (b->import_id && seen_import == b->import_id) b->duplicates++;
  else b->updated++;

  st = sq_stmt(w, b->mode == STORE_CONTACT_REPLACE ? ST_CT_REPLACE : ST_CT_MERGE);
  bind_contact(st, b->account_id, c, rec, b->import_id, now);
  rc = sq_step_done(w, st);
  if (rc == 0 && b->mode == STORE_CONTACT_REPLACE) {
    /* what an earlier row of the write added goes in before it goes out */
    rc = members_flush(w, b->account_id, m);
    if (rc == 0) rc = drop_members(w, b->account_id, c->phone, old);
    if (rc == 0) rc = set_lists(w, b->account_id, c->phone, join_lists(names, n, joined));
    if (rc == 0) members_add(m, c->phone, names, n);
  } else if (rc == 0) {
    const char *add[STORE_CONTACT_LISTS_MAX];
    int nadd;
    char *all = union_lists(old, names, n, add, &nadd);
    if (all) rc = set_lists(w, b->account_id, c->phone, all);
    if (rc == 0) members_add(m, c->phone, add, nadd);
    free(all);
  }
  free(old);
  return rc;
}

/* An import's step: its refused rows (up to the bound) and its counts. */
static int import_step(struct conn *w, struct store_contact_batch *b, int64_t now) {
  sqlite3_stmt *st = sq_stmt(w, ST_IMP_KEPT);
  sqlite3_bind_int64(st, 1, b->import_id);
  int rc = sqlite3_step(st);
  int64_t kept = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : -1;
  sqlite3_reset(st);
  if (kept < 0) return rc == SQLITE_DONE ? KK_ENOENT : KK_ESTORE;
  int added = 0;
  for (int i = 0; i < b->nerrs && kept + added < STORE_IMPORT_ERRORS_MAX; i++, added++) {
    st = sq_stmt(w, ST_IMP_ERR_ADD);
    sqlite3_bind_int64(st, 1, b->import_id);
    sqlite3_bind_int64(st, 2, kept + added);
    sqlite3_bind_int64(st, 3, b->errs[i].line);
    sq_bind_text(st, 4, b->errs[i].reason);
    sq_bind_text(st, 5, b->errs[i].raw ? b->errs[i].raw : "");
    if ((rc = sq_step_done(w, st)) != 0) return rc;
  }
  st = sq_stmt(w, ST_IMP_STEP);
  sqlite3_bind_int64(st, 1, b->rows_read);
  sqlite3_bind_int64(st, 2, b->created);
  sqlite3_bind_int64(st, 3, b->updated);
  sqlite3_bind_int64(st, 4, b->nerrs);
  sqlite3_bind_int64(st, 5, b->duplicates);
  sqlite3_bind_int64(st, 6, b->offset);
  sqlite3_bind_int64(st, 7, added);
  sqlite3_bind_int64(st, 8, now);
  sqlite3_bind_int64(st, 9, b->import_id);
  sqlite3_bind_int64(st, 10, b->rows_before);
  if ((rc = sq_step_done(w, st)) != 0) return rc;
  /* An import no longer running (failed meanwhile), or whose batch before
     did not commit, takes no more rows. */
  return sqlite3_changes(w->db) == 1 ? 0 : KK_ENOENT;
}

/* Asks for the cache lines of c's fields that a write reads: the row was
   made on the reader's thread, and its fields lie kilobytes apart. */
static void prefetch_row(const struct store_contact *c) {
  static const size_t at[] = {
    offsetof(struct store_contact, phone),         offsetof(struct store_contact, email),
    offsetof(struct store_contact, timezone),      offsetof(struct store_contact, operator_name),
    offsetof(struct store_contact, region),        offsetof(struct store_contact, vk_id),
    offsetof(struct store_contact, telegram_chat_id), offsetof(struct store_contact, viber_id),
    offsetof(struct store_contact, attrs),         offsetof(struct store_contact, consent_at),
    offsetof(struct store_contact, lists[0]),      offsetof(struct store_contact, lists[1]),
    offsetof(struct store_contact, lists[2]),
  };
  for (size_t i = 0; i < sizeof at / sizeof at[0]; i++) __builtin_prefetch((const char *)c + at[i]);
}

/* The writer's page cache: the smaller one (small) or the usual. */
static void writer_cache(struct sq_store *q, int small) {
  if (q->imp_small_cache == small) return;
  q->imp_small_cache = small;
  char sql[64];
  snprintf(sql, sizeof sql, "PRAGMA cache_size=-%d", small ? SQ_IMPORT_CACHE_KIB : SQ_CACHE_KIB);
  if (sqlite3_exec(q->w.db, sql, NULL, NULL, NULL) != SQLITE_OK)
    kk_warnx(LOGCTX, "the writer's page cache: %s", sqlite3_errmsg(q->w.db));
}

/* An import's batch b (sorted: in strict phone order) about to be written:
   the smaller cache when it goes on above the import's batch before
   (sq_contact.h: SQ_IMPORT_CACHE_KIB), and the log kept longer before it
   starts over (sq_ckpt.c) until an import ends. */
static void import_along(struct sq_store *q, const struct store_contact_batch *b, int sorted) {
  if (b->import_id == 0 || b->n == 0) return;
  writer_cache(q, sorted && b->import_id == q->imp_last_id &&
                      strcmp(b->rows[0].phone, q->imp_last_phone) > 0);
  q->imp_last_id = b->import_id;
  ckpt_bulk(&q->base, 1);
  snprintf(q->imp_last_phone, sizeof q->imp_last_phone, "%s", b->rows[b->n - 1].phone);
}

/* Which of b's rows have their phone stored already, into stored[] (one a
   row): 1 when known, 0 when not (b not strictly in phone order, too few
   rows to be worth it, or too many stored phones between its first and
   last to read), < 0 on a failure. */
static int stored_phones(struct conn *w, const struct store_contact_batch *b,
                         unsigned char *stored) {
  if (b->n < SQ_NEW_ROWS) return 0;
  for (int i = 1; i < b->n; i++)
    if (strcmp(b->rows[i - 1].phone, b->rows[i].phone) >= 0) return 0;
  memset(stored, 0, (size_t)b->n);
  int cap = b->n * 2, got = 0, i = 0, rc;
  sqlite3_stmt *st = sq_stmt(w, ST_CT_PHONES);
  sqlite3_bind_int64(st, 1, b->account_id);
  sq_bind_text(st, 2, b->rows[0].phone);
  sq_bind_text(st, 3, b->rows[b->n - 1].phone);
  sqlite3_bind_int(st, 4, cap + 1);
  while ((rc = sqlite3_step(st)) == SQLITE_ROW && ++got <= cap) {
    const char *p = (const char *)sqlite3_column_text(st, 0);
    int d = 1;
    while (i < b->n && (d = strcmp(b->rows[i].phone, p)) < 0) i++;
    if (i < b->n && d == 0) stored[i++] = 1;
  }
  sqlite3_reset(st);
  if (rc != SQLITE_DONE && rc != SQLITE_ROW) return -1;
  return got <= cap;
}

/* A write's new contacts waiting to go in together: rows of b and their
   consents. */
struct fresh {
  int n;
  int row[SQ_NEW_ROWS];
  struct sq_contact_consent cp[SQ_NEW_ROWS];
  char joined[SQ_NEW_ROWS][STORE_CONTACT_LISTS_MAX * (STORE_LIST_NAME_MAX + 1)];
  const char *names[SQ_NEW_ROWS][STORE_CONTACT_LISTS_MAX];   /* own_lists' */
  int nnames[SQ_NEW_ROWS];
  struct sq_consent_rows cs;   /* their consent records, SQ_CONSENT_ROWS a statement */
};

/* The rows f holds, and their consents, then empties it: with one
   statement when it is full, else one by one. */
static int fresh_flush(struct store *s, struct store_contact_batch *b, struct members *m,
                       struct sq_consent_known *k, struct fresh *f, int64_t now) {
  struct conn *w = &SQ(s)->w;
  int together = f->n == SQ_NEW_ROWS, rc;
  if (together) {
    sqlite3_stmt *st = sq_stmt(w, ST_CT_NEWN);
    for (int j = 0; j < f->n; j++) {
      const struct store_contact *c = &b->rows[f->row[j]];
      int at = j * SQ_NEW_COLS;
      bind_contact_at(st, at, b->account_id, c, f->cp[j].record ? &f->cp[j].rec : NULL,
                      b->import_id, now);
      sqlite3_bind_int64(st, at + 18, now);
      f->nnames[j] = own_lists(c, f->names[j]);
      sq_bind_text(st, at + 19, join_lists(f->names[j], f->nnames[j], f->joined[j]));
    }
    if ((rc = sq_step_done(w, st)) != 0) return rc;
    /* A phone read as not stored was found stored: this write is wrong. */
    if (sqlite3_changes(w->db) != f->n) {
      kk_error(LOGCTX, "new contacts: %d of %d went in", sqlite3_changes(w->db), f->n);
      return KK_ESTORE;
    }
  }
  for (int j = 0; j < f->n; j++) {
    const struct store_contact *c = &b->rows[f->row[j]];
    int created = 1;
    if (together) {
      b->created++;
      members_add(m, c->phone, f->names[j], f->nnames[j]);
    } else {
      int err = write_one(w, b, m, c, f->cp[j].record ? &f->cp[j].rec : NULL, now, &created);
      if (err != 0) return err;
    }
    int err = created ? sq_consent_apply_new(s, b->account_id, c, now, k, &f->cp[j], &f->cs)
                      : sq_consent_apply(s, b->account_id, c, now, k, &f->cp[j], created);
    if (err != 0) return err;
  }
  f->n = 0;
  return 0;
}

int sq_contact_write(struct store *s, struct store_op *op) {
  struct store_contact_batch *b = op->data;
  struct conn *w = &SQ(s)->w;
  int64_t now = store_now_ms();
  b->created = b->updated = b->duplicates = 0;
  if (b->n < 0 || b->n > STORE_CONTACT_BATCH_MAX) return KK_EINVAL;
  struct sq_consent_known *k = kk_xmalloc(sizeof *k);   /* freed below */
  struct fresh *f = kk_xmalloc(sizeof *f);              /* freed below */
  unsigned char *stored = kk_xmalloc((size_t)b->n + 1); /* freed below */
  struct members m;                                     /* freed below */
  members_init(&m);
  f->n = f->cs.n = 0;
  sq_counts_pause(SQ(s));   /* contacts are no campaign's figures */
  /* A batch's new contacts (in phone order, none stored yet: a first
     import's rows) go in SQ_NEW_ROWS a statement, which goes along the
     table's B-tree instead of down it at each row; the others one by one,
     in the batch's order. */
  int known = stored_phones(w, b, stored);
  import_along(SQ(s), b, known > 0);
  int rc = known < 0 ? KK_ESTORE : sq_consent_know(s, b->account_id, b->rows, b->n, k);
  for (int i = 0; rc == 0 && i < b->n; i++) {
    const struct store_contact *c = &b->rows[i];
    if (i + 4 < b->n) prefetch_row(&b->rows[i + 4]);
    if (i + 1 < b->n && b->rows[i + 1].attrs) __builtin_prefetch(b->rows[i + 1].attrs);
    struct sq_contact_consent *cp = &f->cp[f->n];
    rc = sq_consent_plan(s, b->account_id, c, now, k, cp);
    if (rc != 0) break;
    if (known && !stored[i]) {
      f->row[f->n++] = i;
      if (f->n == SQ_NEW_ROWS) rc = fresh_flush(s, b, &m, k, f, now);
      continue;
    }
    struct sq_contact_consent one = *cp;
    int created = 0;
    rc = fresh_flush(s, b, &m, k, f, now);
    if (rc == 0) rc = write_one(w, b, &m, c, one.record ? &one.rec : NULL, now, &created);
    if (rc == 0) rc = sq_consent_apply(s, b->account_id, c, now, k, &one, created);
  }
  if (rc == 0) rc = fresh_flush(s, b, &m, k, f, now);
  if (rc == 0) rc = sq_consent_rows_flush(s, b->account_id, now, &f->cs);
  if (rc == 0) rc = members_flush(w, b->account_id, &m);
  members_fini(&m);
  free(stored);
  free(f);
  free(k);
  if (rc == 0 && b->import_id) rc = import_step(w, b, now);
  sq_counts_resume(SQ(s));
  return rc;
}

int sq_contact_delete(struct store *s, struct store_op *op) {
  struct store_contact_key *k = op->data;
  struct conn *w = &SQ(s)->w;
  int64_t seen_import;
  char *old;
  int existed = contact_seen(w, k->account_id, k->phone, &seen_import, &old);
  if (existed <= 0) return existed < 0 ? KK_ESTORE : KK_ENOENT;
  int rc = drop_members(w, k->account_id, k->phone, old);
  free(old);
  if (rc != 0) return rc;
  sqlite3_stmt *st = sq_stmt(w, ST_CT_DEL);
  sqlite3_bind_int64(st, 1, k->account_id);
  sq_bind_text(st, 2, k->phone);
  return sq_step_done(w, st);
}

/* START: the new import's row, and the account's oldest past the bound go. */
static int import_start(struct conn *w, struct store_import_op *o, int64_t now) {
  struct store_import *m = &o->imp;
  sqlite3_stmt *st = sq_stmt(w, ST_IMP_INSERT);
  sqlite3_bind_int64(st, 1, m->account_id);
  bind_opt_text(st, 2, m->list);
  sq_bind_text(st, 3, m->file);
  sqlite3_bind_int64(st, 4, m->bytes_total);
  sqlite3_bind_int64(st, 5, now);
  int rc = sq_step_done(w, st);
  if (rc != 0) return rc;
  m->id = sqlite3_last_insert_rowid(w->db);
  m->created_at = m->updated_at = now;
  snprintf(m->status, sizeof m->status, "running");
  int64_t old[STORE_IMPORTS_KEPT];
  int nold = 0;
  o->nremoved = 0;
  st = sq_stmt(w, ST_IMP_OLD);
  sqlite3_bind_int64(st, 1, m->account_id);
  sqlite3_bind_int64(st, 2, STORE_IMPORTS_KEPT);
  while (nold < STORE_IMPORTS_KEPT && (rc = sqlite3_step(st)) == SQLITE_ROW) {
    old[nold] = sqlite3_column_int64(st, 0);
    sq_col_copy(st, 1, o->removed_file[nold], sizeof o->removed_file[nold]);
    nold++;
  }
  sqlite3_reset(st);
  for (int i = 0; i < nold; i++) {
    st = sq_stmt(w, ST_IMP_ERR_DEL);
    sqlite3_bind_int64(st, 1, old[i]);
    if ((rc = sq_step_done(w, st)) != 0) return rc;
    st = sq_stmt(w, ST_IMP_DEL);
    sqlite3_bind_int64(st, 1, old[i]);
    if ((rc = sq_step_done(w, st)) != 0) return rc;
  }
  o->nremoved = nold;
  return 0;
}

int sq_import_change(struct store *s, struct store_op *op) {
  struct store_import_op *o = op->data;
  struct conn *w = &SQ(s)->w;
  int64_t now = store_now_ms();
  sqlite3_stmt *st;
  switch (o->what) {
  case STORE_IMPORT_START:
    return import_start(w, o, now);
  case STORE_IMPORT_FINISH:
    writer_cache(SQ(s), 0);
    ckpt_bulk(s, 0);   /* the log starts over as usual (sq_ckpt.c) */
    st = sq_stmt(w, ST_IMP_FINISH);
    sq_bind_text(st, 1, o->imp.status);
    bind_opt_text(st, 2, o->imp.error);
    sqlite3_bind_int64(st, 3, now);
    sqlite3_bind_int64(st, 4, o->imp.id);
    return sq_step_done(w, st);
  default:
    writer_cache(SQ(s), 0);
    ckpt_bulk(s, 0);   /* the log starts over as usual (sq_ckpt.c) */
    st = sq_stmt(w, ST_IMP_FAIL_RUNNING);
    sq_bind_text(st, 1, o->imp.error[0] ? o->imp.error : "interrupted: kaskad stopped");
    sqlite3_bind_int64(st, 2, now);
    return sq_step_done(w, st);
  }
}

/* ---- reads ------------------------------------------------------------------ */

/* kk_num(v): v as a number (an integer, a real, or a text that is all a
   number, spaces around allowed), else NULL: what a filter compares an
   attribute with a number through (contact/contact_filter.h). */
static void kk_num_fn(sqlite3_context *cx, int argc, sqlite3_value **argv) {
  (void)argc;
  switch (sqlite3_value_type(argv[0])) {
  case SQLITE_INTEGER:
  case SQLITE_FLOAT:
    sqlite3_result_double(cx, sqlite3_value_double(argv[0]));
    return;
  case SQLITE_TEXT: {
    const char *t = (const char *)sqlite3_value_text(argv[0]);
    char *end;
    while (*t == ' ') t++;
    if (!((*t >= '0' && *t <= '9') || *t == '-' || *t == '+' || *t == '.')) break;
    double d = strtod(t, &end);
    while (*end == ' ') end++;
    if (end == t || *end || !isfinite(d)) break;
    sqlite3_result_double(cx, d);
    return;
  }
  default:
    break;
  }
  sqlite3_result_null(cx);
}

/* A read's time bound: the progress handler interrupts it past at. */
struct deadline {
  struct timespec at;
  int hit;
};

static int past_deadline(void *arg) {
  struct deadline *d = arg;
  struct timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);
  if (now.tv_sec > d->at.tv_sec || (now.tv_sec == d->at.tv_sec && now.tv_nsec >= d->at.tv_nsec))
    d->hit = 1;
  return d->hit;
}

/* Prepares head (its own parameters ?1..?nhead) AND cond's condition (skip,
   a node of it, taken as true: contact_filter_sql_but), then tail; binds cond's parameters after head's; arms dl (NULL: no bound).
   0 or KK_ESTORE/KK_ENOSPC. The statement is the caller's (scan_close). */
static int filtered_open(struct conn *c, const char *head, const char *tail, int nhead,
                         const struct cf_node *cond, const struct cf_node *skip,
                         struct deadline *dl, sqlite3_stmt **out) {
  char *sql = kk_xmalloc(32768);
  struct cf_param params[512];
  int np = 0;
  size_t hl = strlen(head);
  memcpy(sql, head, hl);
  int rc = 0;
  if (cond) {
    memcpy(sql + hl, " AND ", 6);
    hl += 5;
    rc = contact_filter_sql_but(cond, skip, CF_SQLITE, nhead + 1, sql + hl,
                                32768 - hl - strlen(tail) - 1, params, 512, &np);
    hl += strlen(sql + hl);
  }
  snprintf(sql + hl, 32768 - hl, "%s", tail);
  *out = NULL;
  if (rc == 0) {
    sqlite3_create_function(c->db, "kk_num", 1, SQLITE_UTF8 | SQLITE_DETERMINISTIC, NULL,
                            kk_num_fn, NULL, NULL);
    if (sqlite3_prepare_v2(c->db, sql, -1, out, NULL) != SQLITE_OK) {
      kk_error(LOGCTX, "a filter's query: %s", sqlite3_errmsg(c->db));
      rc = KK_ESTORE;
    }
  }
  free(sql);
  if (rc != 0) return rc;
  /* "?" after ?nhead numbers on from nhead + 1 */
  for (int i = 0; i < np; i++) {
    if (params[i].is_num) sqlite3_bind_double(*out, nhead + 1 + i, params[i].num);
    else sqlite3_bind_text(*out, nhead + 1 + i, params[i].str, -1, SQLITE_TRANSIENT);
  }
  if (dl) {
    memset(dl, 0, sizeof *dl);
    clock_gettime(CLOCK_MONOTONIC, &dl->at);
    dl->at.tv_sec += STORE_SEGMENT_COUNT_MS / 1000;
    dl->at.tv_nsec += (STORE_SEGMENT_COUNT_MS % 1000) * 1000000L;
    if (dl->at.tv_nsec >= 1000000000L) {
      dl->at.tv_sec++;
      dl->at.tv_nsec -= 1000000000L;
    }
    sqlite3_progress_handler(c->db, 20000, past_deadline, dl);
  }
  return 0;
}

/* The scan of contacts in phone order after `after` (in list when not
   NULL, meeting cond when not NULL; through the list cond names at its top
   when list is NULL). */
static int scan_open(struct conn *c, int64_t account_id, const char *list, const char *after,
                     const struct cf_node *cond, struct deadline *dl, sqlite3_stmt **out) {
  if (dl) memset(dl, 0, sizeof *dl);
  if (cond == NULL) {
    *out = sq_stmt(c, list ? ST_CT_SCAN_LIST : ST_CT_SCAN);
  } else {
    const struct cf_node *skip;
    list = contact_filter_read_list(list, cond, &skip);
    int rc = list ? filtered_open(c,
                                  "SELECT " CONTACT_COLS " FROM contact_lists l"
                                  " JOIN contacts c ON c.account_id=l.account_id"
                                  " AND c.phone=l.phone WHERE l.account_id=?1 AND l.list=?3"
                                  " AND l.phone>?2",
                                  " ORDER BY l.phone", 3, cond, skip, dl, out)
                  : filtered_open(c,
                                  "SELECT " CONTACT_COLS " FROM contacts c WHERE c.account_id=?1"
                                  " AND c.phone>?2",
                                  " ORDER BY c.phone", 2, cond, NULL, dl, out);
    if (rc != 0) return rc;
  }
  sqlite3_bind_int64(*out, 1, account_id);
  sq_bind_text(*out, 2, after);
  if (list) sq_bind_text(*out, 3, list);
  return 0;
}

/* Ends a scan whose last step answered step_rc: 0, KK_ETIMEDOUT (the
   bound) or KK_ESTORE. */
static int scan_close(struct conn *c, sqlite3_stmt *st, const struct cf_node *cond,
                      struct deadline *dl, int step_rc) {
  if (cond) {
    if (dl) sqlite3_progress_handler(c->db, 0, NULL, NULL);
    sqlite3_finalize(st);
  } else {
    sqlite3_reset(st);
  }
  if (dl && dl->hit) return KK_ETIMEDOUT;
  return step_rc == SQLITE_ROW || step_rc == SQLITE_DONE ? 0 : KK_ESTORE;
}

/* The row at st (CONTACT_COLS) into c; attrs malloc'd. */
static void contact_row(sqlite3_stmt *st, struct store_contact *c) {
  memset(c, 0, sizeof *c);
  sq_col_copy(st, 0, c->phone, sizeof c->phone);
  sq_col_copy(st, 1, c->name, sizeof c->name);
  sq_col_copy(st, 2, c->email, sizeof c->email);
  sq_col_copy(st, 3, c->timezone, sizeof c->timezone);
  sq_col_copy(st, 4, c->tz_source, sizeof c->tz_source);
  sq_col_copy(st, 5, c->operator_name, sizeof c->operator_name);
  sq_col_copy(st, 6, c->region, sizeof c->region);
  sq_col_copy(st, 7, c->vk_id, sizeof c->vk_id);
  sq_col_copy(st, 8, c->telegram_chat_id, sizeof c->telegram_chat_id);
  sq_col_copy(st, 9, c->viber_id, sizeof c->viber_id);
  if (sqlite3_column_type(st, 10) != SQLITE_NULL) c->attrs = sq_col_dup(st, 10);
  c->consent = sqlite3_column_type(st, 11) == SQLITE_NULL ? -1 : sqlite3_column_int(st, 11);
  sq_col_copy(st, 12, c->consent_source, sizeof c->consent_source);
  c->consent_at = sqlite3_column_int64(st, 13);
  c->stop_listed = sqlite3_column_int(st, 14);
  c->created_at = sqlite3_column_int64(st, 15);
  c->updated_at = sqlite3_column_int64(st, 16);
  const char *p = (const char *)sqlite3_column_text(st, 17), *name;
  size_t len;
  while (c->nlists < STORE_CONTACT_LISTS_MAX && next_list(&p, &name, &len)) {
    if (len > STORE_LIST_NAME_MAX) len = STORE_LIST_NAME_MAX;
    memcpy(c->lists[c->nlists], name, len);
    c->lists[c->nlists++][len] = '\0';
  }
}

int sq_contact_get(struct store *s, void *rd, int64_t account_id, const char *phone,
                   struct store_contact *out) {
  (void)s;
  struct conn *c = rd;
  sqlite3_stmt *st = sq_stmt(c, ST_CT_GET);
  sqlite3_bind_int64(st, 1, account_id);
  sq_bind_text(st, 2, phone);
  int rc = sqlite3_step(st);
  if (rc != SQLITE_ROW) {
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? KK_ENOENT : KK_ESTORE;
  }
  contact_row(st, out);
  sqlite3_reset(st);
  return 0;
}

/* Whether a contact's row meets q (the phone begins with it, or the name
   holds it). */
static int q_matches(sqlite3_stmt *st, const char *q) {
  if (q == NULL || !*q) return 1;
  const char *phone = (const char *)sqlite3_column_text(st, 0);
  const char *name = (const char *)sqlite3_column_text(st, 1);
  if (phone && strncmp(phone, q, strlen(q)) == 0) return 1;
  return name && strstr(name, q) != NULL;
}

int sq_contact_list(struct store *s, void *rd, int64_t account_id,
                    const struct store_contact_filter *f, struct store_contact *out, int *n,
                    char next[16]) {
  (void)s;
  struct conn *c = rd;
  struct deadline dl;
  sqlite3_stmt *st;
  int rc = scan_open(c, account_id, f->list, f->after, f->cond, &dl, &st);
  if (rc != 0) return rc;
  int k = 0, examined = 0;
  next[0] = '\0';
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    if (q_matches(st, f->q)) {
      if (k == f->limit) {
        snprintf(next, 16, "%s", out[k - 1].phone);  /* a page full, and more */
        break;
      }
      contact_row(st, &out[k++]);
    }
    if (++examined >= STORE_LIST_EXAMINE) {
      sq_col_copy(st, 0, next, 16);
      break;
    }
  }
  int err = scan_close(c, st, f->cond, &dl, rc);
  if (err != 0) {
    for (int i = 0; i < k; i++) store_contact_fini(&out[i]);
    *n = 0;
    return err;
  }
  *n = k;
  return 0;
}

int sq_contact_lists(struct store *s, void *rd, int64_t account_id, store_list_size_fn fn,
                     void *arg) {
  (void)s;
  struct conn *c = rd;
  sqlite3_stmt *st = sq_stmt(c, ST_CT_LIST_SIZES);
  sqlite3_bind_int64(st, 1, account_id);
  sqlite3_bind_int(st, 2, STORE_LISTS_MAX);
  int rc;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW)
    fn(arg, (const char *)sqlite3_column_text(st, 0), sqlite3_column_int64(st, 1));
  sqlite3_reset(st);
  return rc == SQLITE_DONE ? 0 : KK_ESTORE;
}

int sq_import_get(struct store *s, void *rd, int64_t account_id, int64_t id,
                  struct store_import *out) {
  (void)s;
  struct conn *c = rd;
  sqlite3_stmt *st = sq_stmt(c, ST_IMP_GET);
  sqlite3_bind_int64(st, 1, id);
  sqlite3_bind_int64(st, 2, account_id);
  int rc = sqlite3_step(st);
  if (rc != SQLITE_ROW) {
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? KK_ENOENT : KK_ESTORE;
  }
  memset(out, 0, sizeof *out);
  out->id = sqlite3_column_int64(st, 0);
  out->account_id = sqlite3_column_int64(st, 1);
  sq_col_copy(st, 2, out->status, sizeof out->status);
  sq_col_copy(st, 3, out->list, sizeof out->list);
  sq_col_copy(st, 4, out->file, sizeof out->file);
  sq_col_copy(st, 5, out->error, sizeof out->error);
  int64_t *nums[] = {&out->bytes_total, &out->bytes_done, &out->rows_total, &out->rows_done,
                     &out->created,     &out->updated,    &out->rejected,   &out->duplicates,
                     &out->created_at,  &out->updated_at};
  for (int i = 0; i < 10; i++) *nums[i] = sqlite3_column_int64(st, 6 + i);
  sqlite3_reset(st);
  return 0;
}

int sq_import_errors(struct store *s, void *rd, int64_t account_id, int64_t id,
                     store_import_error_fn fn, void *arg) {
  struct store_import imp;
  int rc = sq_import_get(s, rd, account_id, id, &imp);
  if (rc != 0) return rc;
  struct conn *c = rd;
  sqlite3_stmt *st = sq_stmt(c, ST_IMP_ERRORS);
  sqlite3_bind_int64(st, 1, id);
  int stop = 0;
  while (!stop && (rc = sqlite3_step(st)) == SQLITE_ROW)
    stop = fn(arg, (long)sqlite3_column_int64(st, 0), (const char *)sqlite3_column_text(st, 1),
              (const char *)sqlite3_column_text(st, 2));
  sqlite3_reset(st);
  if (stop) return stop;
  return rc == SQLITE_DONE ? 0 : KK_ESTORE;
}

int sq_contacts_each(struct store *s, void *rd, int64_t account_id, const char *list,
                     const char *after, int lists, const struct cf_node *cond,
                     store_contact_fn fn, void *arg) {
  (void)s;
  (void)lists;   /* a contact's lists come with its row */
  struct conn *c = rd;
  /* An export is not bounded in time: it streams as it reads. */
  struct store_contact ct;
  sqlite3_stmt *st;
  int rc = scan_open(c, account_id, list, after, cond, NULL, &st);
  if (rc != 0) return rc;
  int stop = 0;
  while (!stop && (rc = sqlite3_step(st)) == SQLITE_ROW) {
    contact_row(st, &ct);
    stop = fn(arg, &ct);
    store_contact_fini(&ct);
  }
  int err = scan_close(c, st, cond, NULL, rc);
  if (stop) return stop;
  return err;
}

/* ---- segments ------------------------------------------------------------------ */

int sq_segment_put(struct store *s, struct store_op *op) {
  struct store_segment_key *k = op->data;
  struct conn *w = &SQ(s)->w;
  sqlite3_stmt *st = sq_stmt(w, ST_SEG_PUT);
  sqlite3_bind_int64(st, 1, k->account_id);
  sq_bind_text(st, 2, k->name);
  sq_bind_text(st, 3, k->filter);
  sqlite3_bind_int64(st, 4, store_now_ms());
  return sq_step_done(w, st);
}

int sq_segment_delete(struct store *s, struct store_op *op) {
  struct store_segment_key *k = op->data;
  struct conn *w = &SQ(s)->w;
  sqlite3_stmt *st = sq_stmt(w, ST_SEG_DEL);
  sqlite3_bind_int64(st, 1, k->account_id);
  sq_bind_text(st, 2, k->name);
  int rc = sq_step_done(w, st);
  if (rc == 0 && sqlite3_changes(w->db) == 0) rc = KK_ENOENT;
  return rc;
}

static void segment_row(sqlite3_stmt *st, struct store_segment *out) {
  memset(out, 0, sizeof *out);
  sq_col_copy(st, 0, out->name, sizeof out->name);
  sq_col_copy(st, 1, out->filter, sizeof out->filter);
  out->created_at = sqlite3_column_int64(st, 2);
  out->updated_at = sqlite3_column_int64(st, 3);
  out->count = -1;
}

int sq_segment_get(struct store *s, void *rd, int64_t account_id, const char *name,
                   struct store_segment *out) {
  (void)s;
  sqlite3_stmt *st = sq_stmt(rd, ST_SEG_GET);
  sqlite3_bind_int64(st, 1, account_id);
  sq_bind_text(st, 2, name);
  int rc = sqlite3_step(st);
  if (rc == SQLITE_ROW) segment_row(st, out);
  sqlite3_reset(st);
  return rc == SQLITE_ROW ? 0 : rc == SQLITE_DONE ? KK_ENOENT : KK_ESTORE;
}

int sq_segments(struct store *s, void *rd, int64_t account_id, store_segment_fn fn, void *arg) {
  (void)s;
  sqlite3_stmt *st = sq_stmt(rd, ST_SEG_LIST);
  sqlite3_bind_int64(st, 1, account_id);
  sqlite3_bind_int(st, 2, STORE_SEGMENTS_MAX);
  struct store_segment sg;
  int rc;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    segment_row(st, &sg);
    fn(arg, &sg);
  }
  sqlite3_reset(st);
  return rc == SQLITE_DONE ? 0 : KK_ESTORE;
}

int sq_contact_count(struct store *s, void *rd, int64_t account_id, const struct cf_node *cond,
                     int64_t *out) {
  (void)s;
  struct conn *c = rd;
  struct deadline dl;
  sqlite3_stmt *st;
  /* a filter that names a list at its top counts that list's members */
  const struct cf_node *skip;
  const char *list = contact_filter_read_list(NULL, cond, &skip);
  int rc = list ? filtered_open(c,
                                "SELECT COUNT(*) FROM contact_lists m JOIN contacts c"
                                " ON c.account_id=m.account_id AND c.phone=m.phone"
                                " WHERE m.account_id=?1 AND m.list=?2",
                                "", 2, cond, skip, &dl, &st)
                : filtered_open(c, "SELECT COUNT(*) FROM contacts c WHERE c.account_id=?1", "", 1,
                                cond, NULL, &dl, &st);
  if (rc != 0) return rc;
  sqlite3_bind_int64(st, 1, account_id);
  if (list) sq_bind_text(st, 2, list);
  rc = sqlite3_step(st);
  *out = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
  return scan_close(c, st, cond, &dl, rc);
}

int sq_contacts_settle(struct store *s, void *rd) {
  (void)s;
  (void)rd;
  return 0;
}
