/*
 * pg_node.c - the nodes of one PostgreSQL database: each kaskad process is
 * a row of nodes, made at open and removed at close, and its claims on due
 * work last as long as its lease: heartbeat_at and lease_until are moved by
 * its writer about every second (riding on commits, and on an empty one
 * when it is idle, store_backend.idle_ms).
 *
 * Leases. A row of due work names the node that holds it (claimed_by); the
 * rows a node writes are its own from the start (the columns' default is
 * the writer connection's setting kaskad.node). A holder whose lease_until
 * has passed is dead: its rows are free for every other node (PG_FREE_FOR),
 * and the first node whose writer sees it die takes them over in one
 * transaction, handing them to its own modules as notes (an SMS to the
 * dispatcher, a channel attempt to the send engine, a step deadline to the
 * cascade; callbacks come back by their poll). Nothing is written per row
 * while a node lives: renewing its lease is one UPDATE of its own row.
 *
 * A node that finds its own lease ended (it could not beat for the lease:
 * the database was away, the process was stopped) says so and renews it;
 * what others took over meanwhile is theirs (their claimed_by), and it may
 * send at most what it had in flight again, as a node that was killed.
 *
 * Configuration. Every commit that changes a route, channel settings, a
 * price, a named cascade, an account, a key or a template sends one NOTIFY
 * per change (kaskad_cfg: kind, account and name); the other nodes' writers
 * LISTEN, read the row as committed and hand it to their caches as the
 * same note the writing node's modules had, within their next beat.
 */
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/kk_err.h"
#include "core/kk_hash.h"
#include "core/kk_log.h"
#include "core/kk_mem.h"
#include "store/pg/pg_int.h"

#define LOGCTX "store"
#define SWEEP_MAX 5000          /* rows of one kind taken over per beat */
#define SWEEP_EVERY 5           /* beats between looks for rows of dead nodes */
#define FORGET_DEAD_MS 60000    /* a dead node's row is removed this long after */
#define HB_POLL_MS 50           /* the listener's longest wait between looks at hb_stop */

static double mono_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6;
}

/* ---- the node's row ---------------------------------------------------------- */

static int node_insert(struct pg_store *q, struct pg_conn *c, int64_t id) {
  struct pg_params p = {0};
  pg_p_text(&p, q->node_name);
  pg_p_int(&p, q->lease_ms);
  pg_p_opt(&p, id);
  int rc;
  PGresult *r = pg_query(c,
                         "INSERT INTO nodes(id,name,started_at,heartbeat_at,lease_until)"
                         " VALUES(COALESCE($3::bigint,nextval(pg_get_serial_sequence('nodes','id'))),"
                         "$1," PG_NOW_MS "," PG_NOW_MS "," PG_NOW_MS "+$2::bigint) RETURNING id",
                         &p, &rc);
  if (r == NULL) return KK_ESTORE;
  q->node_id = pg_int(r, 0, 0);
  PQclear(r);
  return 0;
}

/* ---- the heartbeat: a thread and a connection of its own ------------------------- */

/* Renews the node's lease; says when it had ended (the process stopped, the
   database was away) and makes its row again when another node removed it. */
static void hb_beat(struct pg_store *q) {
  if (pg_conn_ensure(&q->hb) != 0) return;
  struct pg_params p = {0};
  pg_p_int(&p, q->node_id);
  pg_p_int(&p, q->lease_ms);
  int rc;
  /* o sees the row before the UPDATE: the lease as it was */
  PGresult *r = pg_query(&q->hb,
                         "UPDATE nodes n SET heartbeat_at=" PG_NOW_MS ","
                         " lease_until=" PG_NOW_MS "+$2::bigint"
                         " FROM (SELECT lease_until AS old FROM nodes WHERE id=$1::bigint) o"
                         " WHERE n.id=$1::bigint RETURNING " PG_NOW_MS "-o.old",
                         &p, &rc);
  if (r == NULL) return;
  int found = PQntuples(r) > 0;
  int64_t late = found ? pg_int(r, 0, 0) : 0;
  PQclear(r);
  if (late > 0)
    kk_error(LOGCTX, "node %lld: its lease had ended %lld ms ago (no heartbeat); work other"
             " nodes took over meanwhile is theirs", (long long)q->node_id, (long long)late);
  if (!found) {
    kk_error(LOGCTX, "node %lld: its row was gone (taken for dead); it is made again",
             (long long)q->node_id);
    node_insert(q, &q->hb, q->node_id);
  }
}

/* Folds the campaigns' rows of changes into their counters (PG_CAMP_FOLD);
   a failure is logged and tried again at the next beat. */
static void hb_fold(struct pg_store *q) {
  if (q->hb.db == NULL || PQstatus(q->hb.db) != CONNECTION_OK) return;
  if (pg_cmd(&q->hb, PG_CAMP_FOLD, NULL) != 0)
    kk_error(LOGCTX, "node %lld: folding campaign figures failed", (long long)q->node_id);
}

/* ---- the listener: the other nodes' news wake an idle writer at once ------------- */

/* Keeps a notification (channel, payload: copied) for the writer. */
static void inbox_add(struct pg_store *q, const char *channel, const char *payload) {
  pthread_mutex_lock(&q->hb_mu);
  if (q->ninbox == q->capinbox) {
    q->capinbox = q->capinbox ? 2 * q->capinbox : 16;
    q->inbox = kk_xrealloc(q->inbox, (size_t)q->capinbox * sizeof *q->inbox);
  }
  /* freed by the writer (pgn_begin) or pgn_stop */
  q->inbox[q->ninbox].channel = kk_xstrdup(channel);
  q->inbox[q->ninbox++].payload = kk_xstrdup(payload);
  pthread_mutex_unlock(&q->hb_mu);
}

/* The notifications the heartbeat's connection has read: another node's
   go to the inbox, and the writer is woken to apply them (with its next
   batch when busy, else with an empty one now). When the connection was
   made again since the last look, what was sent while it was away is
   lost: the writer is asked to read the configuration over (PG_CATCH_UP). */
static void hb_heard(struct pg_store *q) {
  int news = 0;
  if (q->hb.resets != q->hb_resets_seen) {
    q->hb_resets_seen = q->hb.resets;
    inbox_add(q, PG_CATCH_UP, "");
    news = 1;
  }
  PGnotify *n;
  while ((n = PQnotifies(q->hb.db)) != NULL) {
    int own = n->be_pid == q->writer_pid;
    for (int i = 0; i < STORE_WRITERS_MAX && !own; i++) own = n->be_pid == q->lane_pids[i];
    if (!own) {
      inbox_add(q, n->relname, n->extra);
      news = 1;
    }
    PQfreemem(n);
  }
  if (news && q->writer_up) store_poke(&q->base);
}

/* Waits up to ms for the heartbeat connection's notifications. */
static void hb_listen(struct pg_store *q, int ms) {
  if (pg_conn_ensure(&q->hb) != 0) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
    return;
  }
  hb_heard(q);   /* what came with the beat's answer */
  struct pollfd p = {.fd = PQsocket(q->hb.db), .events = POLLIN};
  if (p.fd < 0 || poll(&p, 1, ms) <= 0) return;
  if (PQconsumeInput(q->hb.db) == 1) hb_heard(q);
}

static int hb_stopping(struct pg_store *q) {
  pthread_mutex_lock(&q->hb_mu);
  int stop = q->hb_stop;
  pthread_mutex_unlock(&q->hb_mu);
  return stop;
}

/* Beats every PG_HEARTBEAT_MS, and listens in between (looking at hb_stop
   every HB_POLL_MS). */
static void *hb_main(void *arg) {
  struct pg_store *q = arg;
  double next = mono_ms() + PG_HEARTBEAT_MS;
  while (!hb_stopping(q)) {
    double now = mono_ms();
    if (now >= next) {
      hb_beat(q);
      hb_fold(q);
      next = now + PG_HEARTBEAT_MS;
      continue;
    }
    int ms = (int)(next - now) + 1;
    hb_listen(q, ms < HB_POLL_MS ? ms : HB_POLL_MS);
  }
  return NULL;
}

/* The configuration tables: each row (account, name, text, number) is
   noted as the change that wrote it would have been. */
static const struct {
  enum store_note_kind kind;
  const char *sql;
} catch_up[] = {
    {STORE_NOTE_ROUTE, "SELECT 0,name,config,0 FROM routes ORDER BY name"},
    {STORE_NOTE_CHANNEL_CFG,
     "SELECT account_id,channel,config,0 FROM channel_settings ORDER BY account_id,channel"},
    {STORE_NOTE_PRICE,
     "SELECT account_id,channel,NULL,price FROM prices ORDER BY account_id,channel"},
    {STORE_NOTE_CASCADE_CFG,
     "SELECT account_id,name,steps,0 FROM cascades ORDER BY account_id,name"},
    {STORE_NOTE_TEMPLATE_CFG,
     "SELECT account_id,name,body,updated_at FROM templates ORDER BY account_id,name"},
};

/* ---- the configuration this node's caches may hold -------------------------------- */

static uint64_t seen_hash(int kind, int64_t account_id, const char *name) {
  uint64_t h = KK_FNV_SEED ^ (uint64_t)kind;
  return kk_fnv_str((h ^ (uint64_t)account_id) * KK_FNV_PRIME, name);
}

/* The slot of (kind, account, name): its entry, or the empty one where it
   would go (the set has room). */
static struct pgn_seen *seen_slot(const struct pgn_seen_set *q, int kind, int64_t account_id,
                                  const char *name) {
  size_t mask = q->cap - 1;
  for (size_t i = seen_hash(kind, account_id, name) & mask;; i = (i + 1) & mask) {
    struct pgn_seen *e = &q->v[i];
    if (e->name == NULL || (e->kind == kind && e->account_id == account_id &&
                            strcmp(e->name, name) == 0))
      return e;
  }
}

/* Adds (kind, account, name). A name deleted stays until the next reading
   over, which finds it gone and keeps only the rows it read (cfg_catch_up). */
static void seen_add(struct pgn_seen_set *q, int kind, int64_t account_id, const char *name) {
  if (2 * (q->n + 1) > q->cap) {
    struct pgn_seen *old = q->v;
    size_t cap = q->cap;
    q->cap = cap ? 2 * cap : 64;
    q->v = kk_xcalloc(q->cap, sizeof *q->v);   /* freed by seen_free */
    for (size_t i = 0; i < cap; i++)
      if (old[i].name) *seen_slot(q, old[i].kind, old[i].account_id, old[i].name) = old[i];
    free(old);
  }
  struct pgn_seen *e = seen_slot(q, kind, account_id, name);
  if (e->name) return;
  e->kind = kind;
  e->account_id = account_id;
  e->name = kk_xstrdup(name);   /* freed by seen_free */
  q->n++;
}

static void seen_free(struct pgn_seen_set *q) {
  for (size_t i = 0; i < q->cap; i++) free(q->v[i].name);
  free(q->v);
  memset(q, 0, sizeof *q);
}

static int seen_kind(enum store_note_kind k) {
  return k == STORE_NOTE_ROUTE || k == STORE_NOTE_CHANNEL_CFG || k == STORE_NOTE_PRICE ||
         k == STORE_NOTE_CASCADE_CFG || k == STORE_NOTE_TEMPLATE_CFG;
}

/* What the caches read at start: every row of the configuration tables. */
static int seen_fill(struct pg_store *q) {
  for (size_t k = 0; k < sizeof catch_up / sizeof catch_up[0]; k++) {
    int rc;
    PGresult *r = pg_query(&q->w, catch_up[k].sql, NULL, &rc);
    if (r == NULL) return KK_ESTORE;
    for (int i = 0; i < PQntuples(r); i++)
      seen_add(&q->seen, catch_up[k].kind, pg_int(r, i, 0), PQgetvalue(r, i, 1));
    PQclear(r);
  }
  return 0;
}

/* What the batch's notes put into the caches (this node's changes and the
   others' it heard): notes [0, n). */
static void seen_notes(struct store *s, int n) {
  for (int i = 0; i < n; i++) {
    const struct store_note *t = &s->wnotes[i];
    if (seen_kind(t->kind) && t->cfg)
      seen_add(&PG(s)->seen, t->kind, t->account_id, t->cfg->name);
  }
}

/* Reading over, kind k of catch_up (its rows r, added to *now): every name
   the caches may hold that is no longer a row is noted removed, as its
   deletion was. */
static void seen_drop(struct store *s, size_t k, const PGresult *r, struct pgn_seen_set *now) {
  const struct pgn_seen_set *q = &PG(s)->seen;
  enum store_note_kind kind = catch_up[k].kind;
  for (int i = 0; i < PQntuples(r); i++)
    seen_add(now, kind, pg_int(r, i, 0), PQgetvalue(r, i, 1));
  for (size_t i = 0; i < q->cap; i++) {
    const struct pgn_seen *e = &q->v[i];
    if (e->name == NULL || e->kind != (int)kind) continue;
    if (now->cap && seen_slot(now, e->kind, e->account_id, e->name)->name) continue;
    int64_t at = kind == STORE_NOTE_PRICE ? -1 : kind == STORE_NOTE_TEMPLATE_CFG ? store_now_ms() : 0;
    note_cfg(s, kind, e->account_id, e->name, NULL, NULL, at);
  }
}

int pgn_open(struct pg_store *q, const struct store_opts *opts) {
  q->lease_ms = opts->node_lease_ms > 0 ? opts->node_lease_ms : PG_LEASE_MS;
  if (opts->node_name && opts->node_name[0]) {
    snprintf(q->node_name, sizeof q->node_name, "%s", opts->node_name);
  } else {
    char host[100] = "?";
    gethostname(host, sizeof host - 1);
    snprintf(q->node_name, sizeof q->node_name, "%s:%ld", host, (long)getpid());
  }
  if (node_insert(q, &q->w, 0) != 0) return KK_ESTORE;
  if (seen_fill(q) != 0) return KK_ESTORE;
  /* the rows this connection writes are this node's (the columns' default),
     and it hears the others' configuration changes; both come back with a
     reconnect (pg_conn_ensure) */
  snprintf(q->w.node, sizeof q->w.node, "%lld", (long long)q->node_id);
  if (pg_conn_session(&q->w) != 0) return KK_ESTORE;
  /* the lease is renewed while the process lives, however slow its writer;
     the same connection hears the other nodes' news (LISTEN, made again
     with a reconnect) */
  if (pg_conn_open(&q->hb, q->url) != 0) return KK_ESTORE;
  q->hb.listen = 1;
  if (pg_conn_session(&q->hb) != 0) return KK_ESTORE;
  pthread_mutex_init(&q->hb_mu, NULL);
  pthread_cond_init(&q->hb_cv, NULL);
  if (pthread_create(&q->hb_thread, NULL, hb_main, q) != 0) {
    pthread_mutex_destroy(&q->hb_mu);
    pthread_cond_destroy(&q->hb_cv);
    return KK_ESTORE;
  }
  q->hb_started = 1;
  kk_info(LOGCTX, "node %lld (%s): lease %lld ms", (long long)q->node_id, q->node_name,
          (long long)q->lease_ms);
  return 0;
}

void pgn_stop(struct pg_store *q) {
  if (q->hb_started) {
    pthread_mutex_lock(&q->hb_mu);
    q->hb_stop = 1;
    pthread_cond_signal(&q->hb_cv);
    pthread_mutex_unlock(&q->hb_mu);
    pthread_join(q->hb_thread, NULL);
    pthread_mutex_destroy(&q->hb_mu);
    pthread_cond_destroy(&q->hb_cv);
    q->hb_started = 0;
  }
  pg_conn_close(&q->hb);
  for (int i = 0; i < q->ninbox; i++) {
    free(q->inbox[i].channel);
    free(q->inbox[i].payload);
  }
  free(q->inbox);
  q->inbox = NULL;
  seen_free(&q->seen);
  q->ninbox = q->capinbox = 0;
}

void pgn_close(struct pg_store *q) {
  /* Its claims go back to the others at once: a holder without a row is
     dead, and the others hear it now (kaskad_work) rather than at their
     next look at the nodes. */
  struct pg_params p = {0};
  pg_p_int(&p, q->node_id);
  if (pg_cmd(&q->w, "DELETE FROM nodes WHERE id=$1::bigint", &p) == 0)
    pg_cmd(&q->w, "SELECT pg_notify('kaskad_work','left '||$1::bigint)", &p);
}

/* ---- taking over the work of dead nodes ----------------------------------------- */

/* A row held by a node whose lease has ended (or whose row is gone). */
#define HELD_BY_DEAD(by) \
  by " IS NOT NULL AND " by " NOT IN (SELECT id FROM nodes WHERE lease_until>" PG_NOW_MS ")"

static const struct {
  const char *what, *sql;
  enum store_note_kind note;   /* 0: none (callbacks come back by their poll) */
} sweeps[] = {
    {"SMS", "UPDATE messages SET claimed_by=$1::bigint WHERE id IN (SELECT id FROM messages"
            " WHERE due_at IS NOT NULL AND " HELD_BY_DEAD("claimed_by")
            " LIMIT $2::int FOR UPDATE SKIP LOCKED) RETURNING id,attempt_id,due_at",
     STORE_NOTE_SMS},
    {"channel attempts",
     "UPDATE attempts SET claimed_by=$1::bigint WHERE id IN (SELECT id FROM attempts"
     " WHERE due_at IS NOT NULL AND " HELD_BY_DEAD("claimed_by")
     " LIMIT $2::int FOR UPDATE SKIP LOCKED) RETURNING message_id,id,due_at",
     STORE_NOTE_CHANNEL},
    {"step deadlines",
     "UPDATE messages SET wait_claimed_by=$1::bigint WHERE id IN (SELECT id FROM messages"
     " WHERE wait_until IS NOT NULL AND " HELD_BY_DEAD("wait_claimed_by")
     " LIMIT $2::int FOR UPDATE SKIP LOCKED) RETURNING id,0,wait_until",
     STORE_NOTE_WAIT},
    {"callbacks", "UPDATE outbox SET claimed_by=$1::bigint WHERE id IN (SELECT id FROM outbox"
                  " WHERE " HELD_BY_DEAD("claimed_by")
                  " LIMIT $2::int FOR UPDATE SKIP LOCKED) RETURNING id,0,0",
     0},
};

/* Takes over what dead nodes held: 0, or KK_ESTORE. Sets q->sweep_more when
   a kind had more than one beat's worth. */
static int sweep(struct store *s) {
  struct pg_store *q = PG(s);
  struct pg_params p = {0};
  pg_p_int(&p, q->node_id);
  pg_p_int(&p, SWEEP_MAX);
  q->sweep_more = 0;
  for (size_t k = 0; k < sizeof sweeps / sizeof sweeps[0]; k++) {
    int rc;
    PGresult *r = pg_query(&q->w, sweeps[k].sql, &p, &rc);
    if (r == NULL) return KK_ESTORE;
    int n = PQntuples(r);
    for (int i = 0; i < n && sweeps[k].note; i++)
      note(s, sweeps[k].note, pg_int(r, i, 0), pg_int(r, i, 1), pg_int(r, i, 2));
    PQclear(r);
    if (n == SWEEP_MAX) q->sweep_more = 1;
    if (n > 0) {
      kk_warnx(LOGCTX, "node %lld took over %d %s of nodes whose lease ended",
               (long long)q->node_id, n, sweeps[k].what);
      q->taken_over += (uint64_t)n;
    }
  }
  return 0;
}

/* ---- the heartbeat ---------------------------------------------------------------- */

static int had_peer(const struct pg_store *q, int64_t id) {
  for (int i = 0; i < q->npeers; i++)
    if (q->peers[i] == id) return 1;
  return 0;
}

/* Finds the nodes that died since the last look (their work is taken
   over); the node's own lease is the heartbeat thread's. */
static int beat(struct store *s) {
  struct pg_store *q = PG(s);
  int rc;
  PGresult *r = pg_query(&q->w,
                         "SELECT id,(lease_until>" PG_NOW_MS ")::int FROM nodes ORDER BY id",
                         NULL, &rc);
  if (r == NULL) return KK_ESTORE;
  int died = 0, dead_rows = 0, npeers = 0;
  int64_t peers[PG_PEERS_MAX];
  for (int i = 0; i < PQntuples(r); i++) {
    int64_t id = pg_int(r, i, 0);
    int alive = (int)pg_int(r, i, 1);
    if (id == q->node_id) continue;
    if (alive && npeers < PG_PEERS_MAX) peers[npeers++] = id;
    if (!alive) dead_rows++;
    if (!alive && had_peer(q, id)) died = 1;
  }
  PQclear(r);
  /* a peer that is gone from the table died too (its row was removed) */
  for (int i = 0; i < q->npeers; i++) {
    int still = 0;
    for (int k = 0; k < npeers; k++) still |= peers[k] == q->peers[i];
    if (!still) died = 1;
  }
  memcpy(q->peers, peers, (size_t)npeers * sizeof *peers);
  q->npeers = npeers;
  store_writers_share(s, 1 + npeers);
  if (died) kk_warnx(LOGCTX, "node %lld: a node's lease ended", (long long)q->node_id);
  q->beats++;
  int periodic = q->beats % SWEEP_EVERY == 0;
  if (died || q->sweep_more || (periodic && dead_rows > 0)) {
    if (sweep(s) != 0) return KK_ESTORE;
  }
  if (periodic && dead_rows > 0) {
    struct pg_params d = {0};
    pg_p_int(&d, FORGET_DEAD_MS);
    if (pg_cmd(&q->w, "DELETE FROM nodes WHERE lease_until<" PG_NOW_MS "-$1::bigint", &d) != 0)
      return KK_ESTORE;
  }
  return 0;
}

/* ---- configuration changes between nodes ---------------------------------------- */

static int cfg_kind(enum store_note_kind k) {
  return k == STORE_NOTE_ROUTE || k == STORE_NOTE_CHANNEL_CFG || k == STORE_NOTE_PRICE ||
         k == STORE_NOTE_CASCADE_CFG || k == STORE_NOTE_ACCOUNT || k == STORE_NOTE_KEY_ADD ||
         k == STORE_NOTE_KEY_REVOKE || k == STORE_NOTE_TEMPLATE_CFG;
}

/* One NOTIFY per configuration note of the batch (notes [0, n)): "KIND
   ACCOUNT NAME", keys "KIND ACCOUNT HASH PREFIX". Sent with the commit. */
static int cfg_send(struct store *s, int n) {
  for (int i = 0; i < n; i++) {
    const struct store_note *t = &s->wnotes[i];
    if (!cfg_kind(t->kind)) continue;
    char payload[256];
    int len = snprintf(payload, sizeof payload, "%d %lld ", (int)t->kind, (long long)t->account_id);
    if (t->kind == STORE_NOTE_KEY_ADD || t->kind == STORE_NOTE_KEY_REVOKE) {
      for (int b = 0; b < 32; b++) len += snprintf(payload + len, 3, "%02x", t->cfg->hash[b]);
      snprintf(payload + len, sizeof payload - (size_t)len, " %s", t->cfg->name);
    } else if (t->cfg) {
      snprintf(payload + len, sizeof payload - (size_t)len, "%s", t->cfg->name);
    }
    struct pg_params p = {0};
    pg_p_text(&p, payload);
    if (pg_cmd(&PG(s)->w, "SELECT pg_notify('kaskad_cfg',$1)", &p) != 0) return KK_ESTORE;
  }
  return 0;
}

/* The text column of the first row of sql ($1 account, $2 name), or NULL
   (the row is gone); *rc KK_ESTORE when the read failed. Copies into a
   malloc'd string the caller frees. */
static char *cfg_text(struct store *s, const char *sql, int64_t account_id, const char *name,
                      int64_t *num, int *rc) {
  struct pg_params p = {0};
  pg_p_int(&p, account_id);
  pg_p_text(&p, name);
  PGresult *r = pg_query(&PG(s)->w, sql, &p, rc);
  if (r == NULL) return NULL;
  char *v = NULL;
  if (PQntuples(r) > 0) {
    v = kk_xstrdup(PQgetvalue(r, 0, 0));
    if (num && PQnfields(r) > 1) *num = pg_int(r, 0, 1);
  }
  PQclear(r);
  return v;
}

static int hex32(const char *h, uint8_t out[32]) {
  for (int i = 0; i < 32; i++) {
    unsigned v;
    if (sscanf(h + 2 * i, "%2x", &v) != 1) return KK_EINVAL;
    out[i] = (uint8_t)v;
  }
  return 0;
}

/* Another node's change (a NOTIFY payload): the row as committed, noted as
   that node noted it. 0, or KK_ESTORE (the batch fails; the payload is
   lost, the caches keep their value until the next change or restart). */
static int cfg_apply(struct store *s, const char *payload) {
  int kind, used = 0;
  long long acc;
  if (sscanf(payload, "%d %lld %n", &kind, &acc, &used) != 2 || used == 0) return 0;
  const char *name = payload + used;
  int rc = 0;
  int64_t num = 0;
  char *v = NULL;
  switch ((enum store_note_kind)kind) {
  case STORE_NOTE_ROUTE:
    v = cfg_text(s, "SELECT config FROM routes WHERE $1::bigint=0 AND name=$2", acc, name, NULL,
                 &rc);
    if (rc == 0) note_cfg(s, STORE_NOTE_ROUTE, 0, name, v, NULL, 0);
    break;
  case STORE_NOTE_CHANNEL_CFG:
    v = cfg_text(s, "SELECT config FROM channel_settings WHERE account_id=$1::bigint"
                 " AND channel=$2", acc, name, NULL, &rc);
    if (rc == 0) note_cfg(s, STORE_NOTE_CHANNEL_CFG, acc, name, v, NULL, 0);
    break;
  case STORE_NOTE_PRICE:
    num = -1;
    v = cfg_text(s, "SELECT price::text,price FROM prices WHERE account_id=$1::bigint"
                 " AND channel=$2", acc, name, &num, &rc);
    if (rc == 0) note_cfg(s, STORE_NOTE_PRICE, acc, name, NULL, NULL, num);
    break;
  case STORE_NOTE_CASCADE_CFG:
    v = cfg_text(s, "SELECT steps FROM cascades WHERE account_id=$1::bigint AND name=$2", acc,
                 name, NULL, &rc);
    if (rc == 0) note_cfg(s, STORE_NOTE_CASCADE_CFG, acc, name, v, NULL, 0);
    break;
  case STORE_NOTE_TEMPLATE_CFG:
    num = store_now_ms();
    v = cfg_text(s, "SELECT body,updated_at FROM templates WHERE account_id=$1::bigint"
                 " AND name=$2", acc, name, &num, &rc);
    if (rc == 0) note_cfg(s, STORE_NOTE_TEMPLATE_CFG, acc, name, v, NULL, num);
    break;
  case STORE_NOTE_ACCOUNT: {
    struct store_account a;
    rc = pg_account_read(&PG(s)->w, acc, &a);
    if (rc == 0) note_account(s, &a);
    if (rc == KK_ENOENT) rc = 0;
    break;
  }
  case STORE_NOTE_KEY_ADD:
  case STORE_NOTE_KEY_REVOKE: {
    uint8_t hash[32];
    if (strlen(name) >= 65 && hex32(name, hash) == 0)
      note_cfg(s, (enum store_note_kind)kind, acc, name + 65, NULL, hash, 0);
    break;
  }
  default:
    break;
  }
  free(v);
  return rc == 0 ? 0 : KK_ESTORE;
}

/* The other nodes' changes may have been missed (the listening connection
   was lost and made again): every route, channel setting, price, named
   cascade, template, account and key as committed now, noted as the
   changes that wrote them, so that the caches hold what the database does;
   a route, setting, price, cascade or template the caches may hold that was
   deleted meanwhile is noted deleted (a key is never deleted: a revoked one
   is noted revoked). 0 or KK_ESTORE. */
static int cfg_catch_up(struct store *s) {
  struct pgn_seen_set now = {0};   /* the rows read: the caches' names after */
  for (size_t k = 0; k < sizeof catch_up / sizeof catch_up[0]; k++) {
    int rc;
    PGresult *r = pg_query(&PG(s)->w, catch_up[k].sql, NULL, &rc);
    if (r == NULL) {
      seen_free(&now);
      return KK_ESTORE;
    }
    seen_drop(s, k, r, &now);
    for (int i = 0; i < PQntuples(r); i++)
      note_cfg(s, catch_up[k].kind, pg_int(r, i, 0), PQgetvalue(r, i, 1), pg_text(r, i, 2), NULL,
               pg_int(r, i, 3));
    PQclear(r);
  }
  /* the names deleted are noted: the set keeps the rows alone, so it is
     bounded by the configuration rather than by its history */
  seen_free(&PG(s)->seen);
  PG(s)->seen = now;
  if (pg_accounts_note_all(s) != 0 || pg_keys_note_all(s) != 0) return KK_ESTORE;
  kk_info(LOGCTX, "node %lld: configuration read again after its listening connection was lost",
          (long long)PG(s)->node_id);
  return 0;
}

/* The other nodes' changes that have arrived on the writer's connection
   are kept (q->heard) and applied with each batch until one commits:
   a batch rolled back (a lock conflict, a lost connection) loses none. */
static int cfg_receive(struct store *s) {
  struct pg_store *q = PG(s);
  if (q->hb_started) {
    pthread_mutex_lock(&q->hb_mu);
    if (q->ninbox > 0) {
      if (q->nheard + q->ninbox > q->capheard) {
        q->capheard = q->nheard + q->ninbox + 16;
        q->heard = kk_xrealloc(q->heard, (size_t)q->capheard * sizeof *q->heard);
      }
      /* theirs now: freed by pgn_begin once a batch has committed them */
      memcpy(q->heard + q->nheard, q->inbox, (size_t)q->ninbox * sizeof *q->inbox);
      q->nheard += q->ninbox;
      q->ninbox = 0;
    }
    pthread_mutex_unlock(&q->hb_mu);
  }
  int rc = 0;
  for (int i = 0; i < q->nheard && rc == 0; i++) {
    if (strcmp(q->heard[i].channel, "kaskad_cfg") == 0) rc = cfg_apply(s, q->heard[i].payload);
    else if (strcmp(q->heard[i].channel, "kaskad_pol") == 0) pgp_apply(s, q->heard[i].payload);
    else if (strcmp(q->heard[i].channel, "kaskad_work") == 0) q->next_heartbeat = 0;   /* look now */
    else if (strcmp(q->heard[i].channel, PG_CATCH_UP) == 0) rc = cfg_catch_up(s);
  }
  q->napplied = rc == 0 ? q->nheard : 0;
  return rc;
}

void pgn_begin(struct pg_store *q) {
  if (q->napplied == 0) return;
  for (int i = 0; i < q->napplied; i++) {
    free(q->heard[i].channel);
    free(q->heard[i].payload);
  }
  memmove(q->heard, q->heard + q->napplied, (size_t)(q->nheard - q->napplied) * sizeof *q->heard);
  q->nheard -= q->napplied;
  q->napplied = 0;
}

void pgn_undone(struct pg_store *q) { q->napplied = 0; }

/* ---- the writer's hook ------------------------------------------------------------- */

void pgn_before_commit(struct store *s) {
  struct pg_store *q = PG(s);
  int nw = s->nw;
  if (cfg_send(s, nw) != 0) kk_error(LOGCTX, "sending configuration changes to the nodes failed");
  if (pgp_send(s, nw) != 0) kk_error(LOGCTX, "sending stop-list, consent and cap changes to the nodes failed");
  if (s->main) return;   /* another writer of the node: the first hears and beats */
  if (cfg_receive(s) != 0) kk_error(LOGCTX, "reading another node's configuration change failed");
  seen_notes(s, s->nw);
  double m = mono_ms();
  if (m < q->next_heartbeat) return;
  q->next_heartbeat = m + PG_HEARTBEAT_MS;
  if (beat(s) != 0) kk_error(LOGCTX, "heartbeat of node %lld failed", (long long)q->node_id);
}

/* ---- the list of nodes ------------------------------------------------------------- */

int pg_nodes(struct store *s, void *rd, struct store_node *out, int max, int *n) {
  (void)s;
  struct pg_params p = {0};
  pg_p_int(&p, max);
  int rc;
  PGresult *r = pg_read(rd,
                        "SELECT n.id,n.name,n.started_at,n.heartbeat_at,"
                        "(n.lease_until>" PG_NOW_MS ")::int,"
                        "(SELECT count(*) FROM messages WHERE due_at IS NOT NULL"
                        " AND claimed_by=n.id),"
                        "(SELECT count(*) FROM attempts WHERE due_at IS NOT NULL"
                        " AND claimed_by=n.id),"
                        "(SELECT count(*) FROM messages WHERE wait_until IS NOT NULL"
                        " AND wait_claimed_by=n.id),"
                        "(SELECT count(*) FROM outbox WHERE claimed_by=n.id)"
                        " FROM nodes n ORDER BY n.id LIMIT $1::int",
                        &p, &rc);
  *n = 0;
  if (r == NULL) return KK_ESTORE;
  for (int i = 0; i < PQntuples(r) && i < max; i++) {
    struct store_node *o = &out[i];
    memset(o, 0, sizeof *o);
    o->id = pg_int(r, i, 0);
    pg_copy(r, i, 1, o->name, sizeof o->name);
    o->started_at = pg_int(r, i, 2);
    o->heartbeat_at = pg_int(r, i, 3);
    o->alive = (int)pg_int(r, i, 4);
    o->messages = pg_int(r, i, 5);
    o->attempts = pg_int(r, i, 6);
    o->waits = pg_int(r, i, 7);
    o->outbox = pg_int(r, i, 8);
    (*n)++;
  }
  PQclear(r);
  return 0;
}
