/*
 * pg_chan.c - the channel side of the PostgreSQL writer (as
 * sqlite/sq_chan.c): requests marked before they go, provider statuses
 * matched to attempts, statuses and receipts that came before what they are
 * about (capped per scope, expired by time), when people last wrote to a
 * WhatsApp number, and the rows the batch's notes carry, read in one
 * statement per kind before the commit.
 *
 * What a status means for its message is decided by the cascade's rules
 * (pg_cascade.c, pgc_attempt_event).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/kk_err.h"
#include "core/kk_log.h"
#include "core/kk_mem.h"
#include "store/pg/pg_int.h"
#include "store/store_casc.h"

#define LOGCTX "cascade"

/* ---- ids as one array parameter ----------------------------------------- */

/* "{1,2,3}" of ids (malloc'd; the caller frees). */
char *pg_id_array(const int64_t *ids, int n) {
  size_t cap = (size_t)n * 21 + 3, len = 0;
  char *arr = kk_xmalloc(cap);
  arr[len++] = '{';
  for (int i = 0; i < n; i++)
    len += (size_t)snprintf(arr + len, cap - len, "%s%lld", i ? "," : "", (long long)ids[i]);
  arr[len++] = '}';
  arr[len] = '\0';
  return arr;
}

/* ---- the rows the notes carry ------------------------------------------------ */

/* Whether note t wants a row: 1 a channel row, 2 an SMS row, 0 none. */
static int wants_row(const struct store_note *t, int64_t now) {
  if (t->kind == STORE_NOTE_CHANNEL && t->chan == NULL && t->at <= now) return 1;
  if (t->kind == STORE_NOTE_SMS && t->due == NULL) return 2;
  return 0;
}

/* Fills the notes of one kind (1 channel, 2 SMS) with their rows as the
   transaction leaves them: one statement for all of them. */
static void fill_rows(struct store *s, int kind, int64_t now) {
  int64_t *ids = kk_xmalloc((size_t)(s->nw > 0 ? s->nw : 1) * sizeof *ids);  /* freed below */
  int n = 0;
  for (int i = 0; i < s->nw; i++)
    if (wants_row(&s->wnotes[i], now) == kind)
      ids[n++] = kind == 1 ? s->wnotes[i].attempt_id : s->wnotes[i].msg_id;
  if (n == 0) {
    free(ids);
    return;
  }
  char *arr = pg_id_array(ids, n);
  free(ids);
  struct pg_params p = {0};
  pg_p_text(&p, arr);
  int rc;
  PGresult *r = pg_query(&PG(s)->w,
                         kind == 1 ? "SELECT " PG_CHAN_COLS " WHERE a.id=ANY($1::bigint[])"
                                     " AND a.due_at IS NOT NULL"
                                   : "SELECT " PG_DUE_COLS " WHERE m.due_at IS NOT NULL"
                                     " AND m.id=ANY($1::bigint[])",
                         &p, &rc);
  free(arr);
  if (r == NULL) return;   /* the notes go without rows: claims bring them */
  int rows = PQntuples(r);
  for (int i = 0; i < s->nw; i++) {
    struct store_note *t = &s->wnotes[i];
    if (wants_row(t, now) != kind) continue;
    int64_t want = kind == 1 ? t->attempt_id : t->msg_id;
    for (int k = 0; k < rows; k++) {
      if (pg_int(r, k, 0) != want) continue;
      if (kind == 1) {
        t->chan = kk_xmalloc(sizeof *t->chan);   /* freed with the note */
        pg_chan_row(r, k, t->chan);
      } else {
        t->due = kk_xmalloc(sizeof *t->due);     /* freed with the note */
        pg_due_row(r, k, t->due);
      }
      break;
    }
  }
  PQclear(r);
}

/* ---- the writer's hooks ------------------------------------------------------- */

static double mono_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6;
}

static int early_expire(struct store *s, int64_t cutoff);

void pgw_recheck_add(struct store *s, char kind, const char *a, const char *pid, int64_t scope) {
  struct pgw_state *w = &PG(s)->ws;
  if (w->recheck == NULL) w->recheck = kk_xcalloc(PGW_RECHECK_MAX, sizeof *w->recheck);
  if (w->rc_n == PGW_RECHECK_MAX) {   /* full: the oldest is forgotten */
    w->rc_head = (w->rc_head + 1) % PGW_RECHECK_MAX;
    w->rc_n--;
  }
  struct pgw_recheck *e = &w->recheck[(w->rc_head + w->rc_n++) % PGW_RECHECK_MAX];
  e->kind = kind;
  snprintf(e->a, sizeof e->a, "%s", a);
  snprintf(e->pid, sizeof e->pid, "%s", pid);
  e->scope = scope;
  e->due = mono_ms() + 1000.0;
  e->tries = 0;
}

/* Looks again at the held rows whose time has come (oldest first): a
   matched one or one looked at twice is done, another waits 4 s more. */
static void recheck_run(struct store *s, double now) {
  struct pgw_state *w = &PG(s)->ws;
  for (int done = 0; w->rc_n > 0 && done < PGW_RECHECK_BATCH; done++) {
    struct pgw_recheck e = w->recheck[w->rc_head];
    if (e.due > now) return;
    w->rc_head = (w->rc_head + 1) % PGW_RECHECK_MAX;
    w->rc_n--;
    int rc = e.kind == 'r' ? pg_sms_early_recheck(s, e.a, e.pid)
                           : pgc_early_recheck(s, e.a, e.scope, e.pid);
    if (rc < 0) {
      kk_error(LOGCTX, "looking again at an early %s failed", e.kind == 'r' ? "receipt" : "status");
      return;
    }
    if (rc == 1) {
      w->early_rechecked++;
      kk_info(LOGCTX, "an early %s (%s %s) matched when looked at again",
              e.kind == 'r' ? "receipt" : "status", e.a, e.pid);
    } else if (++e.tries < 2) {
      e.due = now + 4000.0;   /* once more, later: put back at the end */
      if (w->rc_n < PGW_RECHECK_MAX)
        w->recheck[(w->rc_head + w->rc_n++) % PGW_RECHECK_MAX] = e;
    }
  }
}

void pgw_before_commit(struct store *s, double t_ms) {
  struct pgw_state *w = &PG(s)->ws;
  int64_t now = store_now_ms();
  fill_rows(s, 1, now);
  fill_rows(s, 2, now);
  (void)t_ms;
  double m = mono_ms();
  recheck_run(s, m);
  if (m < w->early_next_expire) return;
  w->early_next_expire = m + PGW_EARLY_EXPIRE_EVERY_MS;
  if (early_expire(s, now - PGW_EARLY_KEEP_MS) != 0)
    kk_error(LOGCTX, "expiry of early statuses failed");
}

void pgw_undone(struct store *s) { pgw_early_forget(s); }

void pgw_publish(struct store *s) {
  struct pgw_state *w = &PG(s)->ws;
  s->cstats = w->cstats;
  s->stats.early_refused = w->early_refused;
  s->stats.early_expired = w->early_expired;
}

void pgw_close(struct store *s) {
  free(PG(s)->ws.ecount);
  PG(s)->ws.ecount = NULL;
  free(PG(s)->ws.recheck);
  PG(s)->ws.recheck = NULL;
  for (int i = 0; i < 2; i++) {
    free(PG(s)->ws.pend[i].id);
    memset(&PG(s)->ws.pend[i], 0, sizeof PG(s)->ws.pend[i]);
  }
  pgc_run_clear(s, 1);
  free(PG(s)->ws.later.id);
  memset(&PG(s)->ws.later, 0, sizeof PG(s)->ws.later);
  PG(s)->ws.rc_n = 0;
}

/* ---- early statuses and receipts: per-scope caps and expiry ----------------- */

void pgw_early_forget(struct store *s) { PG(s)->ws.necount = 0; }

/* The held-row count of key, counted with one query over the scope's index
   when it is not known; NULL when the count fails. */
static struct pgw_early_count *early_count(struct store *s, const char *key) {
  struct pgw_state *w = &PG(s)->ws;
  for (int i = 0; i < w->necount; i++)
    if (strcmp(w->ecount[i].key, key) == 0) return &w->ecount[i];
  struct pg_params p = {0};
  if (key[0] == 's')
    pg_p_int(&p, strtoll(key + 1, NULL, 10));
  else
    pg_p_text(&p, key + 1);
  int rc;
  PGresult *r = pg_query(&PG(s)->w,
                         key[0] == 's'
                             ? "SELECT COUNT(*) FROM early_statuses WHERE scope=$1::bigint"
                             : "SELECT COUNT(*) FROM early_receipts WHERE route=$1",
                         &p, &rc);
  if (r == NULL) return NULL;
  int64_t n = pg_int(r, 0, 0);
  PQclear(r);
  if (w->necount == w->capecount) {
    /* Grows with the scopes that sent early rows since the last expiry run,
       then starts again from nothing. */
    if (w->capecount >= 4096) {
      w->necount = 0;
    } else {
      w->capecount = w->capecount ? 2 * w->capecount : 16;
      w->ecount = kk_xrealloc(w->ecount, (size_t)w->capecount * sizeof w->ecount[0]);
    }
  }
  struct pgw_early_count *e = &w->ecount[w->necount++];
  snprintf(e->key, sizeof e->key, "%s", key);
  e->n = n;
  return e;
}

int pgw_early_admit(struct store *s, const char *key) {
  struct pgw_state *w = &PG(s)->ws;
  int64_t cap = w->early_cap > 0 ? w->early_cap : 10000;
  struct pgw_early_count *e = early_count(s, key);
  if (e == NULL) return 1;   /* not counted: the cap is checked next time */
  if (e->n >= cap) {
    /* Said once per power of two, so that a flood does not flood the log. */
    w->early_refused++;
    if ((w->early_refused & (w->early_refused - 1)) == 0)
      kk_warnx(LOGCTX, "scope %s holds %lld early statuses or receipts, the most it may:"
               " refusing more (%llu refused so far)", key + 1, (long long)e->n,
               (unsigned long long)w->early_refused);
    return 0;
  }
  e->n++;
  return 1;
}

/* Deletes up to PGW_EARLY_EXPIRE_BATCH early statuses and as many receipts
   older than cutoff. 0 or KK_ESTORE. */
static int early_expire(struct store *s, int64_t cutoff) {
  static const char *const sql[2] = {
      ("DELETE FROM early_statuses WHERE (channel,scope,provider_id,status) IN"
       " (SELECT channel,scope,provider_id,status FROM early_statuses"
       " WHERE at<$1::bigint ORDER BY at LIMIT $2::int FOR UPDATE SKIP LOCKED)"),
      ("DELETE FROM early_receipts WHERE (route,provider_id) IN"
       " (SELECT route,provider_id FROM early_receipts WHERE at<$1::bigint"
       " ORDER BY at LIMIT $2::int FOR UPDATE SKIP LOCKED)"),
  };
  int64_t gone = 0;
  for (int i = 0; i < 2; i++) {
    struct pg_params p = {0};
    pg_p_int(&p, cutoff);
    pg_p_int(&p, PGW_EARLY_EXPIRE_BATCH);
    int rc;
    PGresult *r = pg_query(&PG(s)->w, sql[i], &p, &rc);
    if (r == NULL) return KK_ESTORE;
    gone += strtoll(PQcmdTuples(r), NULL, 10);
    PQclear(r);
  }
  if (gone == 0) return 0;
  PG(s)->ws.early_expired += (uint64_t)gone;
  pgw_early_forget(s);
  return 0;
}

int pg_early_expire(struct store *s, struct store_op *op) {
  struct store_early_expire_data *d = op->data;
  return early_expire(s, d->now - PGW_EARLY_KEEP_MS);
}

/* ---- operations: requests under way ------------------------------------ */

int pg_chan_trying(struct store *s, struct store_op *op) {
  struct store_trying_data *d = op->data;
  if (d->n <= 0) return 0;
  char *arr = pg_id_array(d->ids, d->n);
  struct pg_params p = {0};
  pg_p_opt(&p, d->at);
  pg_p_text(&p, arr);
  int rc = pg_cmd(&PG(s)->w,
                  "UPDATE attempts SET try_at=$1::bigint WHERE id IN (SELECT id FROM"
                  " attempts WHERE id=ANY($2::bigint[]) AND due_at IS NOT NULL"
                  " ORDER BY id FOR UPDATE)",
                  &p);
  free(arr);
  return rc;
}

/* ---- operations: provider statuses ------------------------------------- */

static int chan_status(struct store *s, struct store_op *op);

int pg_chan_status(struct store *s, struct store_op *op) {
  ((struct store_chan_status_data *)op->data)->st->matched = 0;
  int rc = pgc_run_take(s, op);
  return pgc_run_done(s, rc ? rc : chan_status(s, op));
}

static int chan_status(struct store *s, struct store_op *op) {
  struct store_chan_status_data *d = op->data;
  d->st->matched = 0;
  PGresult *r = NULL;
  int rc = 0;
  /* the run's statuses and ends written so far are read too */
  if ((d->provider_id[0] || d->peer[0]) && PG(s)->ws.defer && pgw_flush(s) != 0)
    return KK_ESTORE;
  if (d->provider_id[0]) {
    struct pg_params p = {0};
    pg_p_text(&p, d->channel);
    pg_p_text(&p, d->provider_id);
    pg_p_int(&p, d->st->scope);
    r = pg_query(&PG(s)->w,
                 "SELECT id," PGW_ATT_COLS " FROM attempts WHERE channel=$1 AND"
                 " provider_id=$2 AND scope=$3::bigint AND channel<>'sms'"
                 " AND provider_id IS NOT NULL ORDER BY id LIMIT 64",
                 &p, &rc);
    if (r == NULL) return rc;
  } else if (d->peer[0] && strcmp(d->channel, "vk") == 0) {
    struct pg_params p = {0};
    pg_p_text(&p, d->peer);
    pg_p_int(&p, d->st->scope);
    pg_p_int(&p, d->st->read_upto);
    /* SQLite reads a provider id that is not a number as 0 */
    r = pg_query(&PG(s)->w,
                 "SELECT id," PGW_ATT_COLS " FROM attempts WHERE channel='vk'"
                 " AND address=$1 AND scope=$2::bigint AND provider_id IS NOT NULL"
                 " AND read_at IS NULL AND (CASE WHEN provider_id ~ '^-?[0-9]{1,18}$'"
                 " THEN provider_id::bigint ELSE 0 END)<=$3::bigint ORDER BY id LIMIT 64",
                 &p, &rc);
    if (r == NULL) return rc;
  }
  int n = r ? PQntuples(r) : 0;
  int64_t ids[64];
  struct casc_att first;
  for (int i = 0; i < n && i < 64; i++) ids[i] = pg_int(r, i, 0);
  if (n > 0) pgc_att_cols(r, 0, 1, &first);
  PQclear(r);
  for (int i = 0; i < n; i++) {
    /* One match is used as read; with more, each is read again after the
       others' changes. */
    rc = pgc_attempt_event(s, ids[i], n == 1 ? &first : NULL, d->status, NULL,
                           d->error[0] ? d->error : NULL, d->st->at, 0);
    if (rc) return rc;
  }
  d->st->matched = n;
  if (n == 0 && d->provider_id[0]) {
    /* The provider may call back before its answer to our send is stored:
       kept for a day; the send's result applies it (apply_early). */
    char key[32];
    snprintf(key, sizeof key, "s%lld", (long long)d->st->scope);
    if (!pgw_early_admit(s, key)) return 0;
    pgw_recheck_add(s, 's', d->channel, d->provider_id, d->st->scope);
    pgc_run_early_added(s);
    struct pg_params p = {0};
    pg_p_text(&p, d->channel);
    pg_p_int(&p, d->st->scope);
    pg_p_text(&p, d->provider_id);
    pg_p_text(&p, d->status);
    pg_p_text(&p, d->error[0] ? d->error : NULL);
    pg_p_int(&p, d->st->at);
    return pg_cmd(&PG(s)->w,
                  "INSERT INTO early_statuses(channel,scope,provider_id,status,error,at)"
                  " VALUES($1,$2::bigint,$3,$4,$5,$6::bigint)"
                  " ON CONFLICT(channel,scope,provider_id,status)"
                  " DO UPDATE SET error=excluded.error, at=excluded.at",
                  &p);
  }
  return 0;
}

/* ---- WhatsApp customer-service windows ------------------------------------ */

int pg_wa_inbound(struct store *s, struct store_op *op) {
  struct store_wa_data *d = op->data;
  struct pg_params p = {0};
  pg_p_int(&p, d->scope);
  pg_p_text(&p, d->phone);
  pg_p_int(&p, d->at);
  return pg_cmd(&PG(s)->w,
                "INSERT INTO wa_windows(scope,phone,last_inbound)"
                " VALUES($1::bigint,$2,$3::bigint) ON CONFLICT(scope,phone) DO UPDATE SET"
                " last_inbound=excluded.last_inbound"
                " WHERE excluded.last_inbound>wa_windows.last_inbound",
                &p);
}
