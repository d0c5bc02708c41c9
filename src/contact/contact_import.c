/*
 * contact_import.c - CSV imports (see contact_import.h).
 *
 * Each import has a slot: its upload's file, and a reader thread that
 * follows the file as the upload writes it (the import starts with the
 * upload's first bytes, so that the rows go in while the rest arrives) and
 * fills two batches in turn. A full batch is handed to the loop (uv_async),
 * which queues its write; the reader then fills the other one once that
 * one's write is done, and hands it at once, queued behind the write of the
 * first: the writer goes from one batch to the next without waiting for the
 * reader to hear of a commit. A batch behind one that failed takes no rows
 * (store_contact_batch.rows_before). When the file is read to the end of a
 * whole upload (or to where a broken one stopped: the import fails there,
 * its rows up to then kept, as after a crash), the loop marks the import
 * done (or failed), removes the file and frees the slot once the upload's
 * request has ended too.
 */
#include "contact/contact_import.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "contact/contact_csv.h"
#include "core/kk_buf.h"
#include "core/kk_err.h"
#include "core/kk_json.h"
#include "core/kk_log.h"
#include "core/kk_mem.h"
#include "core/kk_utf8.h"
#include "phone/phone_plan.h"

#define LOGCTX "import"
#define READ_CHUNK (256u << 10)   /* bytes the reader reads at a time */
#define RAW_MAX 2048              /* bytes of a refused row's text kept */

/* A slot's states: UPLOAD until the first bytes, STARTING while the
   import's row is made (and again while its end is recorded), RUNNING with
   its reader, DRAINING when the import has ended before its upload (the
   rest of the body goes nowhere), CLOSING while its handle closes. */
enum { SLOT_FREE, SLOT_UPLOAD, SLOT_STARTING, SLOT_RUNNING, SLOT_DRAINING, SLOT_CLOSING };
/* The upload as the reader sees it. */
enum { UP_OPEN, UP_WHOLE, UP_BROKEN };

struct imp_job {
  struct contact_imports *ci;
  int state;                        /* SLOT_* (loop) */
  int64_t account_id, id;
  char path[512];
  int fd;                           /* the upload being written (-1: closed) */
  struct contact_upload *up;        /* its request's handle, until it ends */
  struct contact_import_opts o;
  int64_t bytes_expected;
  int start_done, start_rc;         /* the import's row made (0), or refused */
  contact_import_started_fn started;   /* contact_upload_end's, waiting for the row */
  void *started_arg;
  struct store_import_op start_op, fin_op;
  uv_thread_t thread;
  int thread_on;
  uv_async_t async;
  int async_on;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  /* guarded by mu */
  struct store_contact_batch *handed;  /* to the loop, not yet queued */
  int busy[2];                      /* batch[k] handed or queued, its done not yet run */
  int last_rc;
  int ended;                        /* the reader has finished */
  uint64_t bytes;                   /* of the upload in the file */
  uint64_t want;                    /* the reader waits for the file to reach it */
  int upload;                       /* UP_* */
  int64_t written;                  /* rows handed to the store (loop) */
  int stop;
  char status[12], error[160];
  /* the reader's */
  struct store_contact_batch batch[2];
  int cur;
  int failed;
  int64_t rows_handed;              /* rows of the batches handed so far */
  struct imp_done { struct imp_job *j; int k; } done_arg[2];   /* on_batch_done's */
  struct contact_csv *csv;
  int *order;                       /* STORE_CONTACT_BATCH_MAX: sort_rows' */
};

struct contact_upload {
  struct imp_job *job;
};

struct contact_imports {
  uv_loop_t *loop;
  struct store *store;
  const struct phone_plan *plan;
  char dir[400];
  unsigned seq;
  int stopped;                      /* contact_imports_stop ran */
  struct store_import_op fail_op;
  struct imp_job jobs[CONTACT_IMPORTS_MAX];
};

static void on_failed_marked(void *arg, int rc) {
  (void)arg;
  if (rc != 0) kk_warnx(LOGCTX, "cannot mark the interrupted imports failed: %s", kk_strerror(rc));
}

struct contact_imports *contact_imports_new(uv_loop_t *loop, struct store *store,
                                            const struct phone_plan *plan, const char *dir) {
  struct contact_imports *ci = kk_xcalloc(1, sizeof *ci);
  ci->loop = loop;
  ci->store = store;
  ci->plan = plan;
  if (snprintf(ci->dir, sizeof ci->dir, "%s/imports", dir) >= (int)sizeof ci->dir) {
    kk_error(LOGCTX, "data folder path too long: %s", dir);
    free(ci);
    return NULL;
  }
  if (mkdir(ci->dir, 0700) != 0 && errno != EEXIST) {
    kk_error(LOGCTX, "cannot make %s: %s", ci->dir, strerror(errno));
    free(ci);
    return NULL;
  }
  for (int i = 0; i < CONTACT_IMPORTS_MAX; i++) {
    ci->jobs[i].ci = ci;
    ci->jobs[i].fd = -1;
    pthread_mutex_init(&ci->jobs[i].mu, NULL);
    pthread_cond_init(&ci->jobs[i].cv, NULL);
  }
  ci->fail_op.what = STORE_IMPORT_FAIL_RUNNING;
  snprintf(ci->fail_op.imp.error, sizeof ci->fail_op.imp.error,
           "interrupted: kaskad stopped during the import; import the file again");
  store_import_change(store, &ci->fail_op, on_failed_marked, ci);
  return ci;
}

int contact_imports_running(const struct contact_imports *ci) {
  int n = 0;
  for (int i = 0; i < CONTACT_IMPORTS_MAX; i++) n += ci->jobs[i].state != SLOT_FREE;
  return n;
}

FILE *contact_imports_scratch(struct contact_imports *ci) {
  char path[600];
  snprintf(path, sizeof path, "%s/scratch-XXXXXX", ci->dir);
  int fd = mkstemp(path);
  if (fd < 0) return NULL;
  unlink(path);
  FILE *f = fdopen(fd, "w+");
  if (f == NULL) close(fd);
  return f;
}

/* ---- uploads ------------------------------------------------------------------ */

int contact_upload_begin(struct contact_imports *ci, int64_t account_id,
                         const struct contact_import_opts *o, int64_t bytes_expected,
                         struct contact_upload **out) {
  struct imp_job *free_slot = NULL;
  for (int i = 0; i < CONTACT_IMPORTS_MAX; i++) {
    struct imp_job *j = &ci->jobs[i];
    if (j->state != SLOT_FREE && j->account_id == account_id) return KK_EEXIST;
    if (j->state == SLOT_FREE && free_slot == NULL) free_slot = j;
  }
  if (free_slot == NULL) return KK_EBUSY;
  struct imp_job *j = free_slot;
  snprintf(j->path, sizeof j->path, "%s/%lld-%u-%lld.csv", ci->dir, (long long)account_id,
           ++ci->seq, (long long)store_now_ms());
  j->fd = open(j->path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (j->fd < 0) {
    kk_error(LOGCTX, "cannot make %s: %s", j->path, strerror(errno));
    return KK_EIO;
  }
  j->state = SLOT_UPLOAD;
  j->account_id = account_id;
  j->o = *o;
  if (!j->o.country[0]) snprintf(j->o.country, sizeof j->o.country, "RU");
  if (!j->o.tz_default[0]) snprintf(j->o.tz_default, sizeof j->o.tz_default, "Europe/Moscow");
  j->bytes_expected = bytes_expected;
  j->start_done = j->start_rc = 0;
  j->started = NULL;
  j->bytes = j->want = 0;
  j->upload = UP_OPEN;
  struct contact_upload *up = kk_xcalloc(1, sizeof *up);   /* freed at its end or abort */
  up->job = j;
  j->up = up;
  *out = up;
  return 0;
}

/* The slot is free again (its file removed); an upload still under way
   writes nowhere from now on. */
static void slot_free(struct imp_job *j) {
  if (j->fd >= 0) close(j->fd);
  j->fd = -1;
  if (j->up) j->up->job = NULL;
  j->up = NULL;
  unlink(j->path);
  j->state = SLOT_FREE;
  j->account_id = 0;
}

static void on_started(void *arg, int rc);
static void on_async_closed(uv_handle_t *h);

/* The upload's state for the reader: UP_WHOLE or UP_BROKEN. */
static void upload_set(struct imp_job *j, int state) {
  pthread_mutex_lock(&j->mu);
  j->upload = state;
  pthread_cond_signal(&j->cv);
  pthread_mutex_unlock(&j->mu);
}

/* The request has ended (up is gone): the slot goes when nothing else
   holds it. */
static void upload_gone(struct imp_job *j) {
  j->up = NULL;
  if (j->state == SLOT_UPLOAD || (j->start_done && j->start_rc != 0)) {
    slot_free(j);
  } else if (j->state == SLOT_DRAINING) {
    j->state = SLOT_CLOSING;
    uv_close((uv_handle_t *)&j->async, on_async_closed);
  }
}

int contact_upload_write(struct contact_upload *up, const char *p, size_t n) {
  struct imp_job *j = up->job;
  if (j == NULL) return KK_EIO;   /* kaskad is stopping */
  if (n == 0 || (j->start_done && !j->thread_on))
    return 0;   /* the import has ended (or never began): nothing reads the rest */
  for (size_t done = 0; done < n;) {
    ssize_t w = write(j->fd, p + done, n - done);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return KK_EIO;
    done += (size_t)w;
  }
  pthread_mutex_lock(&j->mu);
  j->bytes += n;
  if (j->bytes >= j->want) pthread_cond_signal(&j->cv);
  pthread_mutex_unlock(&j->mu);
  if (j->state == SLOT_UPLOAD) {   /* the first bytes: the import begins */
    j->state = SLOT_STARTING;
    memset(&j->start_op, 0, sizeof j->start_op);
    j->start_op.what = STORE_IMPORT_START;
    j->start_op.imp.account_id = j->account_id;
    j->start_op.imp.bytes_total = j->bytes_expected > 0 ? j->bytes_expected : 0;
    snprintf(j->start_op.imp.list, sizeof j->start_op.imp.list, "%s", j->o.list);
    snprintf(j->start_op.imp.file, sizeof j->start_op.imp.file, "%s", j->path);
    store_import_change(j->ci->store, &j->start_op, on_started, j);
  }
  return 0;
}

void contact_upload_end(struct contact_upload *up, contact_import_started_fn done, void *arg) {
  struct imp_job *j = up->job;
  free(up);
  if (j == NULL) {
    done(arg, KK_ECLOSED, 0);
    return;
  }
  if (j->state == SLOT_UPLOAD) {   /* nothing came */
    upload_gone(j);
    done(arg, KK_EINVAL, 0);
    return;
  }
  upload_set(j, UP_WHOLE);
  if (!j->start_done) {   /* on_started answers */
    j->up = NULL;
    j->started = done;
    j->started_arg = arg;
    return;
  }
  int rc = j->start_rc;
  int64_t id = j->id;
  upload_gone(j);
  done(arg, rc ? KK_ESTORE : 0, rc ? 0 : id);
}

void contact_upload_abort(struct contact_upload *up) {
  if (up == NULL) return;
  struct imp_job *j = up->job;
  free(up);
  if (j == NULL) return;
  if (j->state != SLOT_UPLOAD) {
    kk_warnx(LOGCTX, "import of account %lld: the upload broke off after %llu bytes",
             (long long)j->account_id, (unsigned long long)j->bytes);
    upload_set(j, UP_BROKEN);
  }
  upload_gone(j);
}

/* ---- the reader thread ---------------------------------------------------------- */

/* Copies s into out (cap bytes); KK_ETOOBIG when it does not fit. */
static int put(char *out, size_t cap, const char *s) {
  if (s == NULL) {
    out[0] = '\0';
    return 0;
  }
  size_t n = strlen(s);
  if (n >= cap) return KK_ETOOBIG;
  memcpy(out, s, n + 1);
  return 0;
}

static void batch_reset(struct store_contact_batch *b) {
  for (int i = 0; i < b->n; i++) store_contact_fini(&b->rows[i]);
  for (int i = 0; i < b->nerrs; i++) free(b->errs[i].raw);
  b->n = b->nerrs = 0;
  b->rows_read = 0;
}

static int order_cmp(const void *a, const void *b, void *arg) {
  const struct store_contact *rows = arg;
  int x = *(const int *)a, y = *(const int *)b;
  int d = strcmp(rows[x].phone, rows[y].phone);
  return d ? d : (x > y) - (x < y);
}

/* Puts b's rows in phone order, rows of one phone in the file's order (a
   later one merges over an earlier one), so that the store writes each
   B-tree from one end to the other instead of all over it: a file in no
   order then costs the writer less. Each row moves once; order: room for
   b->n. */
static void sort_rows(struct store_contact_batch *b, int *order) {
  struct store_contact *rows = b->rows;
  int i = 1;
  while (i < b->n && strcmp(rows[i - 1].phone, rows[i].phone) <= 0) i++;
  if (i >= b->n) return;   /* in order already (a file sorted by phone) */
  for (i = 0; i < b->n; i++) order[i] = i;
  qsort_r(order, (size_t)b->n, sizeof *order, order_cmp, rows);
  /* order[i]: the row that goes to i; each cycle of the permutation moves
     its rows along, marking each place done (order[k] = k) */
  struct store_contact tmp;
  for (i = 0; i < b->n; i++) {
    if (order[i] == i) continue;
    tmp = rows[i];
    int k = i;
    while (order[k] != i) {
      int from = order[k];
      rows[k] = rows[from];
      order[k] = k;
      k = from;
    }
    rows[k] = tmp;
    order[k] = k;
  }
}

/* Hands the current batch to the loop (queued behind the other one's write
   if that is not done), then takes the other one, once its write is done,
   to fill next; 0, or nonzero when the import must stop. */
static int flush(struct imp_job *j) {
  int k = j->cur;
  struct store_contact_batch *b = &j->batch[k];
  sort_rows(b, j->order);
  b->offset = (int64_t)contact_csv_offset(j->csv);
  b->rows_before = j->rows_handed;
  pthread_mutex_lock(&j->mu);
  while (j->handed && !j->stop) pthread_cond_wait(&j->cv, &j->mu);
  int rc = j->stop ? KK_ECLOSED : j->last_rc;
  if (rc == 0) {
    j->handed = b;
    j->busy[k] = 1;
  }
  pthread_mutex_unlock(&j->mu);
  if (rc != 0) return rc;
  j->rows_handed += b->rows_read;
  uv_async_send(&j->async);
  k ^= 1;
  pthread_mutex_lock(&j->mu);
  while (j->busy[k] && !j->stop) pthread_cond_wait(&j->cv, &j->mu);
  rc = j->busy[k] ? KK_ECLOSED : j->last_rc;   /* stopping: still the store's */
  pthread_mutex_unlock(&j->mu);
  if (rc != 0) return rc;
  j->cur = k;
  batch_reset(&j->batch[k]);
  return 0;
}

static void fail(struct imp_job *j, const char *why) {
  if (j->failed) return;
  j->failed = 1;
  snprintf(j->error, sizeof j->error, "%s", why);
}

static void reject_row(struct imp_job *j, long line, const char *reason, const char *raw,
                       size_t raw_len) {
  struct store_contact_batch *b = &j->batch[j->cur];
  struct store_import_error *e = &b->errs[b->nerrs++];
  e->line = line;
  snprintf(e->reason, sizeof e->reason, "%s", reason);
  e->raw = kk_utf8_sanitize_dup(raw ? raw : "", raw_len > RAW_MAX ? RAW_MAX : raw_len, NULL);
  b->rows_read++;
  if (b->nerrs == STORE_CONTACT_BATCH_MAX && flush(j) != 0) fail(j, "stopped");
}

static void on_reject(void *arg, const struct contact_csv_reject *r) {
  struct imp_job *j = arg;
  if (!j->failed) reject_row(j, r->line, r->reason, r->raw, r->raw_len);
}

/* The attributes of r as a JSON object's text, malloc'd (NULL: none). The
   header names each attribute once (contact_csv), and a row's values are
   UTF-8, so the object is written as it is, without building one. */
static char *attrs_json(const struct contact_csv_row *r) {
  struct kk_buf b;
  kk_buf_init(&b, (size_t)64 << 20);   /* a row is at most CONTACT_CSV_ROW_MAX */
  for (int i = 0; i < r->nattrs; i++) {
    if (!r->attr_value[i]) continue;
    kk_buf_append(&b, b.len ? "," : "{", 1);
    kk_json_string(&b, r->attr_name[i], strlen(r->attr_name[i]));
    kk_buf_append(&b, ":", 1);
    kk_json_string(&b, r->attr_value[i], strlen(r->attr_value[i]));
  }
  if (b.len == 0) return NULL;
  kk_buf_append(&b, "}", 1);
  return kk_buf_take(&b, NULL);
}

/* A good row into c: 0, or the reason it is refused. */
static const char *map_row(struct imp_job *j, const struct contact_csv_row *r,
                           struct store_contact *c) {
  memset(c, 0, sizeof *c);
  kk_scopy(c->phone, sizeof c->phone, r->phone);
  if (put(c->name, sizeof c->name, r->name) || put(c->email, sizeof c->email, r->email) ||
      put(c->vk_id, sizeof c->vk_id, r->vk_id) ||
      put(c->telegram_chat_id, sizeof c->telegram_chat_id, r->telegram_chat_id) ||
      put(c->viber_id, sizeof c->viber_id, r->viber_id) ||
      put(c->consent_source, sizeof c->consent_source, r->consent_source))
    return "value_too_long";
  struct phone_plan_info pi;
  int known = j->ci->plan && phone_plan_lookup(j->ci->plan, r->phone, &pi) == 0;
  if (r->timezone) {
    if (put(c->timezone, sizeof c->timezone, r->timezone)) return "invalid_timezone";
    kk_scopy(c->tz_source, sizeof c->tz_source, "explicit");
  } else if (known && pi.timezone[0]) {
    kk_scopy(c->timezone, sizeof c->timezone, pi.timezone);
    kk_scopy(c->tz_source, sizeof c->tz_source, "number");
  } else {
    kk_scopy(c->timezone, sizeof c->timezone, j->o.tz_default);
    kk_scopy(c->tz_source, sizeof c->tz_source, "default");
  }
  if (known) {
    kk_scopy(c->operator_name, sizeof c->operator_name, pi.operator_name);
    kk_scopy(c->region, sizeof c->region, pi.region);
  }
  c->consent = r->consent;
  c->consent_at = r->consent_at;
  if (j->o.list[0]) kk_scopy(c->lists[c->nlists++], sizeof c->lists[0], j->o.list);
  for (int i = 0; i < r->nlists; i++) {
    if (c->nlists >= STORE_CONTACT_LISTS_MAX) return "too_many_lists";
    if (put(c->lists[c->nlists], sizeof c->lists[0], r->lists[i])) return "value_too_long";
    if (strcmp(c->lists[c->nlists], j->o.list) != 0) c->nlists++;
  }
  c->attrs = attrs_json(r);
  return NULL;
}

static void on_row(void *arg, const struct contact_csv_row *r) {
  struct imp_job *j = arg;
  if (j->failed) return;
  struct store_contact_batch *b = &j->batch[j->cur];
  struct store_contact *c = &b->rows[b->n];
  const char *why = map_row(j, r, c);
  if (why) {
    store_contact_fini(c);
    reject_row(j, r->line, why, r->phone, strlen(r->phone));
    return;
  }
  b->n++;
  b->rows_read++;
  if (b->n == STORE_CONTACT_BATCH_MAX && flush(j) != 0) fail(j, "stopped");
}

static void reader(void *arg) {
  struct imp_job *j = arg;
  pthread_setname_np(pthread_self(), "kk-import");
  for (int k = 0; k < 2; k++) {
    struct store_contact_batch *b = &j->batch[k];
    memset(b, 0, sizeof *b);
    b->account_id = j->account_id;
    b->mode = STORE_CONTACT_MERGE;
    b->import_id = j->id;
    b->rows = kk_xcalloc(STORE_CONTACT_BATCH_MAX, sizeof *b->rows);
    b->errs = kk_xcalloc(STORE_CONTACT_BATCH_MAX, sizeof *b->errs);
  }
  j->order = kk_xcalloc(STORE_CONTACT_BATCH_MAX, sizeof *j->order);   /* reader_free */
  j->cur = 0;
  j->rows_handed = 0;
  j->failed = 0;
  j->error[0] = '\0';
  struct contact_csv_opts co = {.country = j->o.country, .row = on_row, .reject = on_reject,
                                .arg = j};
  j->csv = contact_csv_new(&co);
  int fd = open(j->path, O_RDONLY | O_CLOEXEC);
  char *buf = kk_xmalloc(READ_CHUNK);
  if (fd < 0) fail(j, "the uploaded file cannot be read");
  uint64_t off = 0;
  while (!j->failed) {
    /* a chunk's worth of the upload, or its end */
    pthread_mutex_lock(&j->mu);
    j->want = off + READ_CHUNK;
    while (j->bytes < j->want && j->upload == UP_OPEN && !j->stop)
      pthread_cond_wait(&j->cv, &j->mu);
    j->want = UINT64_MAX;   /* no more wake-ups until it waits again */
    uint64_t have = j->bytes;
    int upload = j->upload, stop = j->stop;
    pthread_mutex_unlock(&j->mu);
    if (stop) {
      fail(j, "stopped");
      break;
    }
    if (have == off) {
      if (upload == UP_BROKEN) {
        char why[160];
        snprintf(why, sizeof why,
                 "the upload broke off after %llu bytes: the rows before are in; import the "
                 "file again",
                 (unsigned long long)have);
        fail(j, why);
      }
      break;
    }
    size_t want = have - off < READ_CHUNK ? (size_t)(have - off) : READ_CHUNK;
    ssize_t n = pread(fd, buf, want, (off_t)off);
    if (n <= 0) {
      fail(j, "the uploaded file cannot be read");
      break;
    }
    off += (uint64_t)n;
    if (contact_csv_feed(j->csv, buf, (size_t)n) != 0) fail(j, contact_csv_error(j->csv));
  }
  if (!j->failed && contact_csv_end(j->csv) != 0) fail(j, contact_csv_error(j->csv));
  struct store_contact_batch *b = &j->batch[j->cur];
  if (!j->failed && (b->n || b->nerrs || b->rows_read) && flush(j) != 0) fail(j, "stopped");
  if (fd >= 0) close(fd);
  free(buf);
  /* the last batch's commit, then the end */
  pthread_mutex_lock(&j->mu);
  while ((j->busy[0] || j->busy[1] || j->handed) && !j->stop) pthread_cond_wait(&j->cv, &j->mu);
  if (!j->failed && j->last_rc != 0) fail(j, "the store refused a batch");
  snprintf(j->status, sizeof j->status, "%s", j->failed ? "failed" : "done");
  j->ended = 1;
  pthread_mutex_unlock(&j->mu);
  uv_async_send(&j->async);
}

/* ---- the loop's side ---------------------------------------------------------------- */

static void on_batch_done(void *arg, int rc) {
  struct imp_done *d = arg;
  struct imp_job *j = d->j;
  pthread_mutex_lock(&j->mu);
  j->busy[d->k] = 0;
  if (rc != 0 && j->last_rc == 0) j->last_rc = rc;
  pthread_cond_signal(&j->cv);
  pthread_mutex_unlock(&j->mu);
}

static void on_async_closed(uv_handle_t *h) {
  struct imp_job *j = h->data;
  j->async_on = 0;
  slot_free(j);
}

/* The reader's memory, once it has ended. */
static void reader_free(struct imp_job *j) {
  for (int k = 0; k < 2; k++) {
    batch_reset(&j->batch[k]);
    free(j->batch[k].rows);
    free(j->batch[k].errs);
    j->batch[k].rows = NULL;
    j->batch[k].errs = NULL;
  }
  contact_csv_free(j->csv);
  j->csv = NULL;
  free(j->order);
  j->order = NULL;
}

static void on_settled(void *arg, int rc) {
  (void)arg;
  if (rc != 0) kk_warnx(LOGCTX, "the contacts' statistics were not brought up to date");
}

static void on_finished(void *arg, int rc) {
  struct imp_job *j = arg;
  if (rc != 0) kk_warnx(LOGCTX, "import %lld: cannot record its end", (long long)j->id);
  kk_info(LOGCTX, "import %lld of account %lld: %s%s%s", (long long)j->id,
          (long long)j->account_id, j->status, j->error[0] ? ": " : "", j->error);
  if (j->state == SLOT_CLOSING || !j->async_on) return;   /* stopping */
  /* a large import: the reads of its rows want the store's view of them now */
  if (rc == 0 && !j->ci->stopped && j->written >= STORE_SETTLE_ROWS)
    store_contacts_settle_async(j->ci->store, on_settled, NULL);
  if (j->up) {   /* the rest of the upload goes nowhere; its end closes the slot */
    j->state = SLOT_DRAINING;
    return;
  }
  j->state = SLOT_CLOSING;
  uv_close((uv_handle_t *)&j->async, on_async_closed);
}

/* Records the import's end (j->status, j->error); on_finished follows. */
static void record_end(struct imp_job *j) {
  j->state = SLOT_STARTING;   /* until its end is recorded */
  memset(&j->fin_op, 0, sizeof j->fin_op);
  j->fin_op.what = STORE_IMPORT_FINISH;
  j->fin_op.imp.id = j->id;
  snprintf(j->fin_op.imp.status, sizeof j->fin_op.imp.status, "%s", j->status);
  snprintf(j->fin_op.imp.error, sizeof j->fin_op.imp.error, "%s", j->error);
  store_import_change(j->ci->store, &j->fin_op, on_finished, j);
}

static void on_async(uv_async_t *h) {
  struct imp_job *j = h->data;
  if (j->ci->stopped) return;
  pthread_mutex_lock(&j->mu);
  struct store_contact_batch *b = j->handed;
  j->handed = NULL;
  if (b) pthread_cond_signal(&j->cv);   /* the reader may hand the next */
  int ended = j->ended && !j->busy[0] && !j->busy[1] && j->state == SLOT_RUNNING;
  pthread_mutex_unlock(&j->mu);
  if (b) {
    j->written += b->n;
    store_contact_write(j->ci->store, b, on_batch_done, &j->done_arg[b - j->batch]);
  }
  if (!ended) return;
  uv_thread_join(&j->thread);
  j->thread_on = 0;
  reader_free(j);
  record_end(j);
}

static void on_started(void *arg, int rc) {
  struct imp_job *j = arg;
  struct contact_imports *ci = j->ci;
  if (rc == 0 && ci->stopped) rc = KK_ECLOSED;   /* stopping: it runs next time */
  j->start_done = 1;
  j->start_rc = rc;
  contact_import_started_fn done = j->started;   /* the upload has ended, its answer waits */
  j->started = NULL;
  if (rc != 0) {
    kk_warnx(LOGCTX, "account %lld: cannot start an import: %s", (long long)j->account_id,
             kk_strerror(rc));
    if (j->up == NULL) slot_free(j);   /* else once the upload ends */
    if (done) done(j->started_arg, KK_ESTORE, 0);
    return;
  }
  /* the oldest imports went: their files too */
  for (int i = 0; i < j->start_op.nremoved; i++)
    if (j->start_op.removed_file[i][0]) unlink(j->start_op.removed_file[i]);
  j->id = j->start_op.imp.id;
  j->handed = NULL;
  j->busy[0] = j->busy[1] = j->ended = j->stop = 0;
  for (int k = 0; k < 2; k++) j->done_arg[k] = (struct imp_done){j, k};
  j->written = 0;
  j->last_rc = 0;
  uv_async_init(ci->loop, &j->async, on_async);
  j->async.data = j;
  j->async_on = 1;
  j->state = SLOT_RUNNING;
  if (uv_thread_create(&j->thread, reader, j) != 0) {
    snprintf(j->status, sizeof j->status, "failed");
    snprintf(j->error, sizeof j->error, "cannot start a reader");
    record_end(j);
  } else {
    j->thread_on = 1;
  }
  if (done) done(j->started_arg, 0, j->id);
}

void contact_imports_stop(struct contact_imports *ci) {
  if (ci == NULL || ci->stopped) return;
  ci->stopped = 1;
  for (int i = 0; i < CONTACT_IMPORTS_MAX; i++) {
    struct imp_job *j = &ci->jobs[i];
    if (j->thread_on) {
      pthread_mutex_lock(&j->mu);
      j->stop = 1;
      pthread_cond_broadcast(&j->cv);
      pthread_mutex_unlock(&j->mu);
      uv_thread_join(&j->thread);
      j->thread_on = 0;
    }
    if (j->async_on && j->state != SLOT_CLOSING) {
      /* the import stays `running` in the store: marked failed at the
         next start */
      j->state = SLOT_CLOSING;
      uv_close((uv_handle_t *)&j->async, on_async_closed);
    }
  }
}

void contact_imports_free(struct contact_imports *ci) {
  if (ci == NULL) return;
  contact_imports_stop(ci);
  for (int i = 0; i < CONTACT_IMPORTS_MAX; i++) {
    struct imp_job *j = &ci->jobs[i];
    if (j->state != SLOT_FREE && !j->async_on) slot_free(j);
    if (j->up) j->up->job = NULL;   /* a request still under way writes nowhere */
    reader_free(j);
    pthread_mutex_destroy(&j->mu);
    pthread_cond_destroy(&j->cv);
  }
  free(ci);
}
