/*
 * test_store_contacts.c - the store's contract for contact bases, the same
 * on SQLite and on PostgreSQL (store_pg_*: a fresh database on the server
 * in KASKAD_TEST_PG, else not run): merging writes (later values win, lists
 * add up, an explicit time zone stays), created / updated / duplicate
 * counts, replace and delete, pages in phone order with a cursor, list
 * sizes, an import's progress and refused rows in the same commit as its
 * rows, the bound on refused rows, imports marked failed at start, and the
 * oldest imports going past the bound; a contact's consent as a consent
 * record in the same commit, and consents in bulk.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/kk_err.h"
#include "core/kk_log.h"
#include "kk_test.h"
#include "lib/tmp_pg.h"
#include "lib/tmp_store.h"
#include "policy/pol_consent.h"
#include "store/store_contact.h"
#include "store/store_optout.h"

/* ---- synchronous wrappers ------------------------------------------------- */

static int count_consent(void *arg, const struct store_consent *c) {
  (void)c;
  ++*(int *)arg;
  return 0;
}

struct sync {
  int done, rc;
};
static void on_sync(void *arg, int rc) {
  struct sync *y = arg;
  y->rc = rc;
  y->done = 1;
}
static int sync_wait(struct tmp_store *t, struct sync *y) {
  int rc = tmp_store_run_until(t, &y->done, 1, 20000);
  return rc ? rc : y->rc;
}

static int write_batch(struct tmp_store *t, struct store_contact_batch *b) {
  struct sync y = {0, 0};
  store_contact_write(t->store, b, on_sync, &y);
  return sync_wait(t, &y);
}
static int get(struct tmp_store *t, int64_t acc, const char *phone, struct store_contact *c) {
  struct sync y = {0, 0};
  store_contact_get_async(t->store, acc, phone, c, on_sync, &y);
  return sync_wait(t, &y);
}
static int imp_change(struct tmp_store *t, struct store_import_op *o) {
  struct sync y = {0, 0};
  store_import_change(t->store, o, on_sync, &y);
  return sync_wait(t, &y);
}
static int imp_get(struct tmp_store *t, int64_t acc, int64_t id, struct store_import *m) {
  struct sync y = {0, 0};
  store_import_get_async(t->store, acc, id, m, on_sync, &y);
  return sync_wait(t, &y);
}

static void contact(struct store_contact *c, const char *phone, const char *name,
                    const char *list) {
  memset(c, 0, sizeof *c);
  c->consent = -1;
  snprintf(c->phone, sizeof c->phone, "%s", phone);
  if (name) snprintf(c->name, sizeof c->name, "%s", name);
  if (list) {
    snprintf(c->lists[0], sizeof c->lists[0], "%s", list);
    c->nlists = 1;
  }
}

struct sizes {
  char names[8][32];
  int64_t size[8];
  int n;
};
static void on_size(void *arg, const char *name, int64_t size) {
  struct sizes *z = arg;
  if (z->n < 8) {
    snprintf(z->names[z->n], sizeof z->names[0], "%s", name);
    z->size[z->n++] = size;
  }
}
/* The account's lists and their sizes (the first 8) into *z. */
static int list_sizes(struct tmp_store *t, int64_t acc, struct sizes *z) {
  struct sync y = {0, 0};
  memset(z, 0, sizeof *z);
  store_lists_async(t->store, acc, on_size, z, on_sync, &y);
  return sync_wait(t, &y);
}

struct errs {
  int n;
  long line[4];
  char reason[4][32];
};
static int on_err(void *arg, long line, const char *reason, const char *raw) {
  (void)raw;
  struct errs *e = arg;
  if (e->n < 4) {
    e->line[e->n] = line;
    snprintf(e->reason[e->n], sizeof e->reason[0], "%s", reason);
  }
  e->n++;
  return 0;
}
static int on_each(void *arg, const struct store_contact *c) {
  (void)c;
  (*(int *)arg)++;
  return 0;
}

/* ---- the contract ------------------------------------------------------------ */

static void merge_and_read(struct tmp_store *t) {
  struct store_contact rows[3];
  contact(&rows[0], "79161234567", "Anna", "vip");
  snprintf(rows[0].timezone, sizeof rows[0].timezone, "Asia/Novosibirsk");
  snprintf(rows[0].tz_source, sizeof rows[0].tz_source, "explicit");
  rows[0].attrs = strdup("{\"city\":\"Kazan\",\"orders\":\"2\"}");
  contact(&rows[1], "79031112233", NULL, "news");
  /* the same phone later in the batch: its values win, lists add up */
  contact(&rows[2], "79161234567", NULL, "news");
  snprintf(rows[2].email, sizeof rows[2].email, "a@example.com");
  snprintf(rows[2].timezone, sizeof rows[2].timezone, "Europe/Moscow");
  snprintf(rows[2].tz_source, sizeof rows[2].tz_source, "number");
  rows[2].attrs = strdup("{\"orders\":\"3\"}");
  struct store_contact_batch b = {.account_id = 1, .rows = rows, .n = 3};
  ASSERT_EQ(write_batch(t, &b), 0);
  ASSERT_EQ(b.created, 2);
  ASSERT_EQ(b.updated, 1);
  ASSERT_EQ(b.duplicates, 0);

  struct store_contact c;
  ASSERT_EQ(get(t, 1, "79161234567", &c), 0);
  ASSERT_STR_EQ(c.name, "Anna");
  ASSERT_STR_EQ(c.email, "a@example.com");
  ASSERT_STR_EQ(c.timezone, "Asia/Novosibirsk");   /* explicit stays */
  ASSERT_STR_EQ(c.tz_source, "explicit");
  ASSERT(c.attrs && strstr(c.attrs, "Kazan") && strstr(c.attrs, "3"));
  ASSERT_EQ(c.nlists, 2);
  ASSERT_STR_EQ(c.lists[0], "news");
  ASSERT_STR_EQ(c.lists[1], "vip");
  ASSERT_EQ(c.consent, -1);
  ASSERT(c.created_at > 0);
  store_contact_fini(&c);
  ASSERT_EQ(get(t, 2, "79161234567", &c), KK_ENOENT);   /* another account's */

  /* replace: the contact becomes what is given, lists too */
  struct store_contact r;
  contact(&r, "79161234567", "Anna K", "vip");
  r.consent = 1;
  struct store_contact_batch rb = {.account_id = 1, .mode = STORE_CONTACT_REPLACE, .rows = &r,
                                   .n = 1};
  ASSERT_EQ(write_batch(t, &rb), 0);
  ASSERT_EQ(rb.updated, 1);
  ASSERT_EQ(get(t, 1, "79161234567", &c), 0);
  ASSERT_STR_EQ(c.name, "Anna K");
  ASSERT_STR_EQ(c.email, "");
  ASSERT(c.attrs == NULL);
  ASSERT_EQ(c.nlists, 1);
  ASSERT_EQ(c.consent, 1);
  store_contact_fini(&c);

  struct sizes z;
  struct sync y;
  ASSERT_EQ(list_sizes(t, 1, &z), 0);
  ASSERT_EQ(z.n, 2);
  ASSERT_STR_EQ(z.names[0], "news");
  ASSERT_EQ(z.size[0], 1);
  ASSERT_STR_EQ(z.names[1], "vip");
  ASSERT_EQ(z.size[1], 1);

  /* delete: the contact and its lists go; a second time, KK_ENOENT */
  y = (struct sync){0, 0};
  store_contact_delete(t->store, 1, "79031112233", on_sync, &y);
  ASSERT_EQ(sync_wait(t, &y), 0);
  y = (struct sync){0, 0};
  store_contact_delete(t->store, 1, "79031112233", on_sync, &y);
  ASSERT_EQ(sync_wait(t, &y), KK_ENOENT);
  ASSERT_EQ(get(t, 1, "79031112233", &c), KK_ENOENT);
  free(rows[0].attrs);
  free(rows[2].attrs);
}

static void pages(struct tmp_store *t) {
  static struct store_contact rows[25];
  for (int i = 0; i < 25; i++) {
    char phone[16];
    snprintf(phone, sizeof phone, "7900000%04d", i);
    contact(&rows[i], phone, i == 7 ? "Boris" : "x", i % 2 ? "odd" : NULL);
  }
  struct store_contact_batch b = {.account_id = 5, .rows = rows, .n = 25};
  ASSERT_EQ(write_batch(t, &b), 0);
  struct store_contact out[10];
  int n = 0, total = 0, odd = 0;
  char next[16] = "";
  struct store_contact_filter f = {.limit = 10};
  do {
    snprintf(f.after, sizeof f.after, "%s", next);
    struct sync y = {0, 0};
    store_contact_list_async(t->store, 5, &f, out, &n, next, on_sync, &y);
    ASSERT_EQ(sync_wait(t, &y), 0);
    for (int i = 0; i < n; i++) store_contact_fini(&out[i]);
    total += n;
  } while (next[0]);
  ASSERT_EQ(total, 25);
  f = (struct store_contact_filter){.limit = 10, .list = "odd"};
  next[0] = '\0';
  do {
    snprintf(f.after, sizeof f.after, "%s", next);
    struct sync y = {0, 0};
    store_contact_list_async(t->store, 5, &f, out, &n, next, on_sync, &y);
    ASSERT_EQ(sync_wait(t, &y), 0);
    for (int i = 0; i < n; i++) {
      ASSERT_EQ(out[i].nlists, 1);
      store_contact_fini(&out[i]);
    }
    odd += n;
  } while (next[0]);
  ASSERT_EQ(odd, 12);
  f = (struct store_contact_filter){.limit = 10, .q = "Bor"};
  struct sync y = {0, 0};
  store_contact_list_async(t->store, 5, &f, out, &n, next, on_sync, &y);
  ASSERT_EQ(sync_wait(t, &y), 0);
  ASSERT_EQ(n, 1);
  ASSERT_STR_EQ(out[0].phone, "79000000007");
  store_contact_fini(&out[0]);
  int each = 0;
  y = (struct sync){0, 0};
  store_contacts_each_async(t->store, 5, "odd", NULL, on_each, &each, on_sync, &y);
  ASSERT_EQ(sync_wait(t, &y), 0);
  ASSERT_EQ(each, 12);
}

static void imports(struct tmp_store *t) {
  struct store_import_op o = {.what = STORE_IMPORT_START};
  o.imp.account_id = 9;
  snprintf(o.imp.file, sizeof o.imp.file, "imports/a.csv");
  snprintf(o.imp.list, sizeof o.imp.list, "base");
  o.imp.bytes_total = 1000;
  ASSERT_EQ(imp_change(t, &o), 0);
  int64_t id = o.imp.id;
  ASSERT(id > 0);

  struct store_contact rows[3];
  contact(&rows[0], "79160000001", "a", "base");
  contact(&rows[1], "79160000002", "b", "base");
  contact(&rows[2], "79160000001", "a2", "base");   /* twice in the file */
  struct store_import_error errs[2] = {{3, "invalid_phone", strdup("x;y")},
                                       {5, "no_phone", strdup(";z")}};
  struct store_contact_batch b = {.account_id = 9, .rows = rows, .n = 3, .import_id = id,
                                  .errs = errs, .nerrs = 2, .offset = 400, .rows_read = 5};
  ASSERT_EQ(write_batch(t, &b), 0);
  ASSERT_EQ(b.created, 2);
  ASSERT_EQ(b.duplicates, 1);
  struct store_import m;
  ASSERT_EQ(imp_get(t, 9, id, &m), 0);
  ASSERT_STR_EQ(m.status, "running");
  ASSERT_EQ(m.rows_done, 5);
  ASSERT_EQ(m.created, 2);
  ASSERT_EQ(m.duplicates, 1);
  ASSERT_EQ(m.rejected, 2);
  ASSERT_EQ(m.bytes_done, 400);
  ASSERT_STR_EQ(m.list, "base");
  ASSERT_EQ(imp_get(t, 8, id, &m), KK_ENOENT);   /* another account's */

  /* a batch behind one that did not commit (its rows_before past the
     import's rows) takes nothing */
  struct store_contact late;
  contact(&late, "79160000009", "late", "base");
  struct store_contact_batch gap = {.account_id = 9, .rows = &late, .n = 1, .import_id = id,
                                    .offset = 900, .rows_read = 1, .rows_before = 7};
  ASSERT_EQ(write_batch(t, &gap), KK_ENOENT);
  struct store_contact c;
  ASSERT_EQ(get(t, 9, "79160000009", &c), KK_ENOENT);
  ASSERT_EQ(imp_get(t, 9, id, &m), 0);
  ASSERT_EQ(m.rows_done, 5);

  struct errs e = {0};
  struct sync y = {0, 0};
  store_import_errors_async(t->store, 9, id, on_err, &e, on_sync, &y);
  ASSERT_EQ(sync_wait(t, &y), 0);
  ASSERT_EQ(e.n, 2);
  ASSERT_EQ(e.line[0], 3);
  ASSERT_STR_EQ(e.reason[1], "no_phone");

  /* the process ended: at start the import is marked failed, and takes no
     more rows */
  struct store_import_op f = {.what = STORE_IMPORT_FAIL_RUNNING};
  ASSERT_EQ(imp_change(t, &f), 0);
  ASSERT_EQ(imp_get(t, 9, id, &m), 0);
  ASSERT_STR_EQ(m.status, "failed");
  ASSERT(m.error[0]);
  b.nerrs = 0;
  ASSERT_EQ(write_batch(t, &b), KK_ENOENT);

  /* the same file again: every row merges, nothing new */
  struct store_import_op o2 = {.what = STORE_IMPORT_START};
  o2.imp.account_id = 9;
  snprintf(o2.imp.file, sizeof o2.imp.file, "imports/b.csv");
  ASSERT_EQ(imp_change(t, &o2), 0);
  b.import_id = o2.imp.id;
  b.rows_before = 0;
  ASSERT_EQ(write_batch(t, &b), 0);
  ASSERT_EQ(b.created, 0);
  ASSERT_EQ(b.updated, 2);
  ASSERT_EQ(b.duplicates, 1);
  struct store_import_op fin = {.what = STORE_IMPORT_FINISH};
  fin.imp.id = o2.imp.id;
  snprintf(fin.imp.status, sizeof fin.imp.status, "done");
  ASSERT_EQ(imp_change(t, &fin), 0);
  ASSERT_EQ(imp_get(t, 9, o2.imp.id, &m), 0);
  ASSERT_STR_EQ(m.status, "done");
  ASSERT_EQ(m.rows_total, 5);

  /* past STORE_IMPORTS_KEPT, the oldest go (their files named) */
  int removed = 0;
  for (int i = 0; i < STORE_IMPORTS_KEPT; i++) {
    struct store_import_op k = {.what = STORE_IMPORT_START};
    k.imp.account_id = 9;
    snprintf(k.imp.file, sizeof k.imp.file, "imports/%d.csv", i);
    ASSERT_EQ(imp_change(t, &k), 0);
    removed += k.nremoved;
    if (k.nremoved) ASSERT_STR_EQ(k.removed_file[0], removed == 1 ? "imports/a.csv" : "imports/b.csv");
  }
  ASSERT_EQ(removed, 2);
  ASSERT_EQ(imp_get(t, 9, id, &m), KK_ENOENT);
  for (int i = 0; i < 2; i++) free(errs[i].raw);
}

/* The bound on refused rows kept per import. */
static void error_bound(struct tmp_store *t) {
  struct store_import_op o = {.what = STORE_IMPORT_START};
  o.imp.account_id = 3;
  snprintf(o.imp.file, sizeof o.imp.file, "imports/e.csv");
  ASSERT_EQ(imp_change(t, &o), 0);
  enum { PER = 25000 };
  struct store_import_error *errs = calloc(PER, sizeof *errs);
  for (int i = 0; i < PER; i++) snprintf(errs[i].reason, sizeof errs[i].reason, "no_phone");
  for (int k = 0; k < 5; k++) {
    for (int i = 0; i < PER; i++) errs[i].line = k * PER + i + 2;
    struct store_contact_batch b = {.account_id = 3, .import_id = o.imp.id, .errs = errs,
                                    .nerrs = PER, .rows_read = PER, .rows_before = k * PER};
    ASSERT_EQ(write_batch(t, &b), 0);
  }
  struct store_import m;
  ASSERT_EQ(imp_get(t, 3, o.imp.id, &m), 0);
  ASSERT_EQ(m.rejected, 5 * PER);
  struct errs e = {0};
  struct sync y = {0, 0};
  store_import_errors_async(t->store, 3, o.imp.id, on_err, &e, on_sync, &y);
  ASSERT_EQ(sync_wait(t, &y), 0);
  ASSERT_EQ(e.n, STORE_IMPORT_ERRORS_MAX);
  free(errs);
}

static int seg_put(struct tmp_store *t, int64_t acc, const char *name, const char *filter) {
  struct sync y = {0, 0};
  store_segment_put(t->store, acc, name, filter, on_sync, &y);
  return sync_wait(t, &y);
}
static int seg_count(struct tmp_store *t, int64_t acc, const char *name, int64_t *count) {
  struct store_segment sg;
  struct sync y = {0, 0};
  store_segment_get_async(t->store, acc, name, 1, &sg, on_sync, &y);
  int rc = sync_wait(t, &y);
  *count = sg.count;
  return rc;
}
static void on_seg(void *arg, const struct store_segment *sg) {
  (void)sg;
  (*(int *)arg)++;
}

/* Segments: a filter over fields, attributes (numbers as numbers), lists;
   counted, listed and exported; a hostile value is only a value. */
static void segments(struct tmp_store *t) {
  struct store_contact rows[30];
  for (int i = 0; i < 30; i++) {
    char phone[24], attrs[96];
    snprintf(phone, sizeof phone, "7911000%04d", i % 10000);
    contact(&rows[i], phone, i == 3 ? "Ivan O'Neil" : "x", i % 3 == 0 ? "vip" : NULL);
    snprintf(attrs, sizeof attrs, "{\"city\":\"%s\",\"orders\":\"%d\"}",
             i % 2 ? "Казань" : "Москва", i);
    rows[i].attrs = strdup(attrs);
    rows[i].consent = i < 10;
  }
  struct store_contact_batch b = {.account_id = 12, .rows = rows, .n = 30};
  ASSERT_EQ(write_batch(t, &b), 0);
  for (int i = 0; i < 30; i++) store_contact_fini(&rows[i]);
  int64_t n;
  ASSERT_EQ(seg_put(t, 12, "kazan", "city = 'Казань' and orders >= 10"), 0);
  ASSERT_EQ(seg_count(t, 12, "kazan", &n), 0);
  ASSERT_EQ(n, 10);   /* 11, 13, ..., 29 */
  ASSERT_EQ(seg_put(t, 12, "kazan", "city = 'Казань' and orders >= 9 and list = 'vip'"), 0);
  ASSERT_EQ(seg_count(t, 12, "kazan", &n), 0);
  ASSERT_EQ(n, 4);    /* 9, 15, 21, 27 */
  ASSERT_EQ(seg_put(t, 12, "q", "name = 'Ivan O''Neil' or name contains ''' OR 1=1 --'"), 0);
  ASSERT_EQ(seg_count(t, 12, "q", &n), 0);
  ASSERT_EQ(n, 1);
  ASSERT_EQ(seg_put(t, 12, "c", "consent = 'yes' and not (orders in (1, 2, 3))"), 0);
  ASSERT_EQ(seg_count(t, 12, "c", &n), 0);
  ASSERT_EQ(n, 7);
  ASSERT_EQ(seg_put(t, 12, "none", "nothere exists or list != 'vip' and orders < 0"), 0);
  ASSERT_EQ(seg_count(t, 12, "none", &n), 0);
  ASSERT_EQ(n, 0);
  ASSERT_EQ(seg_count(t, 13, "kazan", &n), KK_ENOENT);   /* another account's */
  /* a number past what a double holds is not a number, not an error (on
     another account: this one's figures below stay as they are) */
  struct store_contact big[2];
  char digits[330];
  memset(digits, '9', 320);
  digits[320] = '\0';
  char attrs[360];
  contact(&big[0], "79110009998", "x", NULL);
  big[0].attrs = strdup("{\"city\":\"Уфа\",\"orders\":\"1e999\"}");
  contact(&big[1], "79110009999", "x", NULL);
  snprintf(attrs, sizeof attrs, "{\"city\":\"Уфа\",\"orders\":\"%s\"}", digits);
  big[1].attrs = strdup(attrs);
  struct store_contact_batch bb = {.account_id = 14, .rows = big, .n = 2};
  ASSERT_EQ(write_batch(t, &bb), 0);
  for (int i = 0; i < 2; i++) store_contact_fini(&big[i]);
  ASSERT_EQ(seg_put(t, 14, "big", "city = 'Уфа' and orders >= 0"), 0);
  ASSERT_EQ(seg_count(t, 14, "big", &n), 0);
  ASSERT_EQ(n, 0);
  struct store_contact out[10];
  int k = 0;
  char next[16];
  struct store_contact_filter f = {.limit = 10, .segment = "kazan"};
  struct sync y = {0, 0};
  store_contact_list_async(t->store, 12, &f, out, &k, next, on_sync, &y);
  ASSERT_EQ(sync_wait(t, &y), 0);
  ASSERT_EQ(k, 4);
  ASSERT_STR_EQ(out[0].phone, "79110000009");
  for (int i = 0; i < k; i++) store_contact_fini(&out[i]);
  f = (struct store_contact_filter){.limit = 2, .segment = "kazan", .list = "vip"};
  y = (struct sync){0, 0};
  store_contact_list_async(t->store, 12, &f, out, &k, next, on_sync, &y);
  ASSERT_EQ(sync_wait(t, &y), 0);
  ASSERT_EQ(k, 2);
  ASSERT_STR_EQ(next, "79110000015");
  for (int i = 0; i < k; i++) store_contact_fini(&out[i]);
  f.segment = "nosuch";
  y = (struct sync){0, 0};
  store_contact_list_async(t->store, 12, &f, out, &k, next, on_sync, &y);
  ASSERT_EQ(sync_wait(t, &y), KK_ENOENT);
  int each = 0;
  y = (struct sync){0, 0};
  store_contacts_each_async(t->store, 12, NULL, "c", on_each, &each, on_sync, &y);
  ASSERT_EQ(sync_wait(t, &y), 0);
  ASSERT_EQ(each, 7);
  int nseg = 0;
  y = (struct sync){0, 0};
  store_segments_async(t->store, 12, on_seg, &nseg, on_sync, &y);
  ASSERT_EQ(sync_wait(t, &y), 0);
  ASSERT_EQ(nseg, 4);
  y = (struct sync){0, 0};
  store_segment_delete(t->store, 12, "none", on_sync, &y);
  ASSERT_EQ(sync_wait(t, &y), 0);
  y = (struct sync){0, 0};
  store_segment_delete(t->store, 12, "none", on_sync, &y);
  ASSERT_EQ(sync_wait(t, &y), KK_ENOENT);
}

/* A contact's consent is a consent record, in the same commit: yes records
   one for every channel (once), no withdraws them; the contact follows
   the records; a bulk write records each row. */
static void consents(struct tmp_store *t) {
  struct store_contact rows[2];
  contact(&rows[0], "79160000001", "A", NULL);
  contact(&rows[1], "79160000002", "B", NULL);
  rows[0].consent = 1;
  snprintf(rows[0].consent_source, sizeof rows[0].consent_source, "crm");
  rows[0].consent_at = 1700000000000;
  struct store_contact_batch b = {.account_id = 21, .mode = STORE_CONTACT_MERGE, .rows = rows,
                                  .n = 2};
  ASSERT_EQ(write_batch(t, &b), 0);
  ASSERT_EQ(store_consent_mask(t->store, 21, "79160000001"), POL_CONSENT_ALL);
  ASSERT_EQ(store_consent_mask(t->store, 21, "79160000002"), 0u);
  ASSERT_EQ(store_consent_mask(t->store, 22, "79160000001"), 0u);
  ASSERT_EQ(write_batch(t, &b), 0);   /* again: still one record */
  struct sync y = {0, 0};
  int n = 0;
  store_consent_each_async(t->store, 21, "79160000001", count_consent, &n, on_sync, &y);
  ASSERT_EQ(sync_wait(t, &y), 0);
  ASSERT_EQ(n, 1);

  rows[0].consent = 0;
  b.n = 1;
  ASSERT_EQ(write_batch(t, &b), 0);
  ASSERT_EQ(store_consent_mask(t->store, 21, "79160000001"), 0u);
  struct store_contact c;
  ASSERT_EQ(get(t, 21, "79160000001", &c), 0);
  ASSERT_EQ(c.consent, 0);
  store_contact_fini(&c);

  /* bulk: each row recorded; the contact of one follows */
  struct store_consent k[2];
  memset(k, 0, sizeof k);
  snprintf(k[0].phone, sizeof k[0].phone, "79160000001");
  snprintf(k[1].phone, sizeof k[1].phone, "79160000003");
  snprintf(k[0].channel, sizeof k[0].channel, "all");
  snprintf(k[1].channel, sizeof k[1].channel, "sms");
  snprintf(k[0].source, sizeof k[0].source, "site");
  snprintf(k[1].source, sizeof k[1].source, "shop");
  k[0].at = k[1].at = 1700000000000;
  struct store_consent_op op = {.account_id = 21, .now = 1700000001000, .rows = k, .n = 2};
  y = (struct sync){0, 0};
  store_consent_write(t->store, &op, on_sync, &y);
  ASSERT_EQ(sync_wait(t, &y), 0);
  ASSERT(k[0].id > 0 && k[1].id > k[0].id);
  ASSERT_EQ(store_consent_mask(t->store, 21, "79160000001"), POL_CONSENT_ALL);
  ASSERT_EQ(store_consent_mask(t->store, 21, "79160000003"), pol_consent_bit("sms"));
  ASSERT_EQ(get(t, 21, "79160000001", &c), 0);
  ASSERT_EQ(c.consent, 1);
  ASSERT_STR_EQ(c.consent_source, "site");
  store_contact_fini(&c);
}

static int consent_count(struct tmp_store *t, int64_t acc, const char *phone) {
  struct sync y = {0, 0};
  int n = 0;
  store_consent_each_async(t->store, acc, phone, count_consent, &n, on_sync, &y);
  int rc = sync_wait(t, &y);
  return rc == KK_ENOENT ? 0 : rc != 0 ? -1 : n;
}

/* Records a consent of channel for each phone prefix+i, i in [0, n). */
static void consents_given(struct tmp_store *t, int64_t acc, const char *prefix, int n,
                           const char *channel) {
  struct store_consent *k = calloc((size_t)n, sizeof *k);
  for (int i = 0; i < n; i++) {
    snprintf(k[i].phone, sizeof k[i].phone, "%s%02d", prefix, i);
    snprintf(k[i].channel, sizeof k[i].channel, "%s", channel);
    snprintf(k[i].source, sizeof k[i].source, "site");
    k[i].at = 1700000000000;
  }
  struct store_consent_op op = {.account_id = acc, .now = 1700000001000, .rows = k, .n = n};
  struct sync y = {0, 0};
  store_consent_write(t->store, &op, on_sync, &y);
  ASSERT_EQ(sync_wait(t, &y), 0);
  free(k);
}

/* An import's batch (many rows: the store may know at once which of its
   phones have records) against consents given before, with some phones
   twice in it: the same records as one row at a time. */
static void consents_in_a_batch(struct tmp_store *t) {
  enum { N = 24 };
  struct store_contact *rows = calloc(N, sizeof *rows);
  char phone[32];
  consents_given(t, 23, "791700000", 2, "all");   /* ...00 and ...01 */
  for (int i = 0; i < N; i++) {
    snprintf(phone, sizeof phone, "7917000%04u", (unsigned)(i < 20 ? i : i - 10));   /* 20..23: 10..13 again */
    contact(&rows[i], phone, "X", "l");
    rows[i].consent = i % 2;
  }
  rows[0].consent = 1;   /* current already: no second record */
  rows[1].consent = 0;   /* withdrawn */
  rows[21].consent = 0;  /* ...11: recorded by row 11, then withdrawn */
  rows[22].consent = 1;  /* ...12: recorded by this row only */
  struct store_contact_batch b = {.account_id = 23, .mode = STORE_CONTACT_MERGE, .rows = rows,
                                  .n = N};
  ASSERT_EQ(write_batch(t, &b), 0);
  ASSERT_EQ(store_consent_mask(t->store, 23, "79170000000"), POL_CONSENT_ALL);
  ASSERT_EQ(consent_count(t, 23, "79170000000"), 1);
  ASSERT_EQ(store_consent_mask(t->store, 23, "79170000001"), 0u);
  ASSERT_EQ(consent_count(t, 23, "79170000001"), 1);
  ASSERT_EQ(consent_count(t, 23, "79170000002"), 0);
  ASSERT_EQ(store_consent_mask(t->store, 23, "79170000003"), POL_CONSENT_ALL);
  ASSERT_EQ(consent_count(t, 23, "79170000011"), 1);
  ASSERT_EQ(store_consent_mask(t->store, 23, "79170000011"), 0u);
  ASSERT_EQ(consent_count(t, 23, "79170000012"), 1);
  ASSERT_EQ(store_consent_mask(t->store, 23, "79170000012"), POL_CONSENT_ALL);
  ASSERT_EQ(consent_count(t, 23, "79170000013"), 1);   /* yes twice: once */

  /* more records in the batch's range than it is worth reading at once */
  consents_given(t, 24, "791800000", 60, "sms");
  consents_given(t, 24, "791800000", 20, "vk");
  consents_given(t, 24, "791800000", 20, "viber");
  for (int i = 0; i < N; i++) rows[i].consent = i % 2;
  b.account_id = 24;
  for (int i = 0; i < N; i++) memcpy(rows[i].phone, "7918", 4);
  ASSERT_EQ(write_batch(t, &b), 0);
  ASSERT_EQ(store_consent_mask(t->store, 24, "79180000000"), 0u);
  ASSERT_EQ(consent_count(t, 24, "79180000000"), 3);   /* withdrawn, all three */
  ASSERT(store_consent_mask(t->store, 24, "79180000003") & POL_CONSENT_ALL);
  ASSERT_EQ(consent_count(t, 24, "79180000003"), 4);
  ASSERT_EQ(store_consent_mask(t->store, 24, "79180000050"), pol_consent_bit("sms"));
  free(rows);
}

/* A large batch in phone order (an import's), some of its phones stored
   before: the new ones and the stored ones keep their counts, lists and
   consents whatever way the store writes them; then one whose rows hold
   more lists than a few, and one with a phone twice. */
static void a_batch_in_order(struct tmp_store *t) {
  enum { N = 100, M = 40 };
  struct store_contact *rows = calloc(N, sizeof *rows);
  char phone[32];
  for (int i = 0; i < N / 10; i++) {   /* ...00, ...10, ... stored first */
    snprintf(phone, sizeof phone, "791500%05d", i * 10);
    contact(&rows[i], phone, "Old", "old");
  }
  struct store_contact_batch b = {.account_id = 30, .rows = rows, .n = N / 10};
  ASSERT_EQ(write_batch(t, &b), 0);
  ASSERT_EQ(b.created, N / 10);
  for (int i = 0; i < N; i++) {
    snprintf(phone, sizeof phone, "791500%05d", i);
    contact(&rows[i], phone, "New", "imp");
    if (i % 3 == 0) {
      snprintf(rows[i].lists[1], sizeof rows[i].lists[1], "vip");
      rows[i].nlists = 2;
    }
    rows[i].consent = i % 2;
  }
  b = (struct store_contact_batch){.account_id = 30, .rows = rows, .n = N};
  ASSERT_EQ(write_batch(t, &b), 0);
  ASSERT_EQ(b.created, N - N / 10);
  ASSERT_EQ(b.updated, N / 10);
  struct sizes z;
  struct sync y;
  ASSERT_EQ(list_sizes(t, 30, &z), 0);
  ASSERT_EQ(z.n, 3);
  ASSERT_STR_EQ(z.names[0], "imp");
  ASSERT_EQ(z.size[0], N);
  ASSERT_STR_EQ(z.names[1], "old");
  ASSERT_EQ(z.size[1], N / 10);
  ASSERT_STR_EQ(z.names[2], "vip");
  ASSERT_EQ(z.size[2], (N + 2) / 3);
  struct store_contact c;
  ASSERT_EQ(get(t, 30, "79150000030", &c), 0);   /* stored before: merged */
  ASSERT_STR_EQ(c.name, "New");
  ASSERT_EQ(c.nlists, 3);
  ASSERT_STR_EQ(c.lists[0], "imp");
  ASSERT_STR_EQ(c.lists[1], "old");
  ASSERT_STR_EQ(c.lists[2], "vip");
  store_contact_fini(&c);
  ASSERT_EQ(get(t, 30, "79150000041", &c), 0);   /* new */
  ASSERT_EQ(c.nlists, 1);
  ASSERT_EQ(c.consent, 1);
  store_contact_fini(&c);
  ASSERT_EQ(store_consent_mask(t->store, 30, "79150000041"), POL_CONSENT_ALL);
  ASSERT_EQ(consent_count(t, 30, "79150000041"), 1);
  ASSERT_EQ(consent_count(t, 30, "79150000042"), 0);
  ASSERT_EQ(store_consent_mask(t->store, 30, "79150000099"), POL_CONSENT_ALL);
  for (int i = 0; i < N; i++) {   /* 45 records: 32 in one statement, the rest one by one */
    snprintf(phone, sizeof phone, "791500%05d", i);
    ASSERT_EQ(consent_count(t, 30, phone), i % 2);
    ASSERT_EQ(store_consent_mask(t->store, 30, phone), i % 2 ? POL_CONSENT_ALL : 0u);
  }
  int each = 0;
  y = (struct sync){0, 0};
  store_contacts_each_async(t->store, 30, "vip", NULL, on_each, &each, on_sync, &y);
  ASSERT_EQ(sync_wait(t, &y), 0);
  ASSERT_EQ(each, (N + 2) / 3);

  /* rows of more lists than a few, one of them each row's own */
  for (int i = 0; i < M; i++) {
    snprintf(phone, sizeof phone, "791600%05d", i);
    contact(&rows[i], phone, NULL, "all");
    snprintf(rows[i].lists[1], sizeof rows[i].lists[1], "own%02d", i);
    snprintf(rows[i].lists[2], sizeof rows[i].lists[2], "pair%02d", i / 2);
    rows[i].nlists = 3;
  }
  b = (struct store_contact_batch){.account_id = 31, .rows = rows, .n = M};
  ASSERT_EQ(write_batch(t, &b), 0);
  ASSERT_EQ(b.created, M);
  static const char *const some[] = {"all", "own07", "pair03"};
  const int members[] = {M, 1, 2};
  for (int j = 0; j < 3; j++) {
    each = 0;
    y = (struct sync){0, 0};
    store_contacts_each_async(t->store, 31, some[j], NULL, on_each, &each, on_sync, &y);
    ASSERT_EQ(sync_wait(t, &y), 0);
    ASSERT_EQ(each, members[j]);
  }

  /* a phone twice, replaced: the second row's lists alone */
  for (int i = 0; i < M; i++) {
    snprintf(phone, sizeof phone, "791700%05d", i < M - 1 ? i : i - 1);
    contact(&rows[i], phone, NULL, i < M - 1 ? "first" : "second");
  }
  b = (struct store_contact_batch){.account_id = 32, .mode = STORE_CONTACT_REPLACE, .rows = rows,
                                   .n = M};
  ASSERT_EQ(write_batch(t, &b), 0);
  ASSERT_EQ(b.created, M - 1);
  ASSERT_EQ(b.updated, 1);
  snprintf(phone, sizeof phone, "791700%05d", M - 2);
  ASSERT_EQ(get(t, 32, phone, &c), 0);
  ASSERT_EQ(c.nlists, 1);
  ASSERT_STR_EQ(c.lists[0], "second");
  store_contact_fini(&c);
  each = 0;
  y = (struct sync){0, 0};
  store_contacts_each_async(t->store, 32, "first", NULL, on_each, &each, on_sync, &y);
  ASSERT_EQ(sync_wait(t, &y), 0);
  ASSERT_EQ(each, M - 2);
  free(rows);
}

static void contract(struct tmp_store *t) {
  segments(t);
  merge_and_read(t);
  pages(t);
  imports(t);
  error_bound(t);
  consents(t);
  consents_in_a_batch(t);
  a_batch_in_order(t);
}

KK_TEST(store_contacts_sqlite) {
  kk_log_level = KK_LOG_ERROR;
  struct tmp_store t;
  ASSERT_EQ(tmp_store_open(&t, "contacts", NULL), 0);
  contract(&t);
  ASSERT_EQ(tmp_store_close(&t), 0);
}

KK_TEST(store_pg_contacts) {
  kk_test_need_pg();
  kk_log_level = KK_LOG_ERROR;
  struct tmp_pg db;
  ASSERT_EQ(tmp_pg_new(&db), 0);
  struct tmp_store t;
  struct store_opts o = {.store_url = db.url};
  ASSERT_EQ(tmp_store_open(&t, "pgcontacts", &o), 0);
  contract(&t);
  ASSERT_EQ(tmp_store_close(&t), 0);
  ASSERT_EQ(tmp_pg_drop(&db), 0);
}
