/*
 * pg_pipe.c - the writer connection's pipeline (libpq pipeline mode): while
 * a batch's transaction is open, a statement whose rows nobody reads is sent
 * without waiting for its answer (pg_cmd), and its answer is read with the
 * next statement whose rows are needed (pg_query) or with the COMMIT, so that
 * the writes of many operations share a round trip to the server.
 *
 * A write that failed is found at the next read or at the COMMIT: the
 * server skips what follows it until the next sync, so the transaction is
 * in error from then on and its batch fails as a whole, as it would have if
 * the failure had been seen at once. An operation that may fail on its own
 * (in a savepoint) waits for each statement's answer (pg_pipe_wait), so its
 * failure stays its own.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/kk_err.h"
#include "core/kk_log.h"
#include "core/kk_mem.h"
#include "store/pg/pg_int.h"

#define LOGCTX "store"

/* Answers waited for at most: beyond, the sender reads them first, so that
   neither side blocks on a full socket buffer while the other does. */
#define PIPE_MAX_QUEUED 128

/* Statements a connection keeps prepared at most (beyond, unnamed ones). */
#define PIPE_MAX_STMTS 256

static unsigned sql_hash(const char *s) {
  unsigned h = 2166136261u;
  for (; *s; s++) h = (h ^ (unsigned char)*s) * 16777619u;
  return h;
}

/* Forgets the connection's statements (a new session has none). */
static void stmts_forget(struct pg_conn *c) {
  for (int i = 0; i < c->nstmts; i++) free(c->stmts[i].sql);
  free(c->stmts);
  c->stmts = NULL;
  c->nstmts = 0;
}

void pg_pipe_free(struct pg_conn *c) { stmts_forget(c); }

/* After a failure, the statements prepared since the last answers were
   read may not exist: they are prepared again (under new names). */
static void stmts_settle(struct pg_conn *c, int failed) {
  int j = 0;
  for (int i = 0; i < c->nstmts; i++) {
    if (failed && !c->stmts[i].ok) {
      free(c->stmts[i].sql);
      continue;
    }
    c->stmts[i].ok = 1;
    c->stmts[j++] = c->stmts[i];
  }
  c->nstmts = j;
}

/* The name of sql's prepared statement, sending its preparation first when
   it has none; NULL: sent unnamed. */
static const char *stmt_name(struct pg_conn *c, const char *sql, int nparams) {
  int pid = PQbackendPID(c->db);
  if (pid != c->stmt_pid) {
    stmts_forget(c);
    c->stmt_pid = pid;
  }
  unsigned h = sql_hash(sql);
  for (int i = 0; i < c->nstmts; i++)
    if (c->stmts[i].hash == h && strcmp(c->stmts[i].sql, sql) == 0) return c->stmts[i].name;
  if (c->nstmts >= PIPE_MAX_STMTS) return NULL;
  struct pg_stmt st = {.hash = h, .ok = 0};
  snprintf(st.name, sizeof st.name, "k%u", ++c->stmt_seq);
  if (PQsendPrepare(c->db, st.name, sql, nparams, NULL) != 1) return NULL;
  c->queued++;
  st.sql = kk_xstrdup(sql);   /* freed by stmts_forget or stmts_settle */
  c->stmts = kk_xrealloc(c->stmts, (size_t)(c->nstmts + 1) * sizeof *c->stmts);
  c->stmts[c->nstmts] = st;
  return c->stmts[c->nstmts++].name;
}

/* Remembers the first failure of the pipeline (c->fault, c->sqlstate). */
static void pipe_fail(struct pg_conn *c, const PGresult *r) {
  if (c->perr) return;
  const char *state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
  snprintf(c->sqlstate, sizeof c->sqlstate, "%s", state ? state : "");
  c->fault = pg_fault_of(state, c->db);
  c->perr = state && !strncmp(state, "23", 2) ? KK_EEXIST : KK_ESTORE;
  if (pg_lock_conflict(state)) {
    c->conflict = 1;   /* the writer runs its batch again */
    kk_warnx(LOGCTX, "%s: %s", state, PQerrorMessage(c->db));
  } else if (c->perr == KK_ESTORE)
    kk_error(LOGCTX, "%s: %s", state ? state : "connection", PQerrorMessage(c->db));
}

/* Sends a sync and reads everything up to its answer (after a failure the
   server skips everything until one). */
static void pipe_resync(struct pg_conn *c) {
  if (PQpipelineSync(c->db) != 1) {
    pipe_fail(c, NULL);
    return;
  }
  for (;;) {
    PGresult *r = PQgetResult(c->db);
    if (r == NULL) {
      if (PQstatus(c->db) != CONNECTION_OK) return;
      continue;
    }
    ExecStatusType st = PQresultStatus(r);
    PQclear(r);
    if (st == PGRES_PIPELINE_SYNC) return;
  }
}

/* Reads the answers of every statement sent; keeps the last one's result in
   *last when last is given (NULL when it failed). 0, or the pipeline's
   first failure (KK_EEXIST, KK_ESTORE). */
static int pipe_read(struct pg_conn *c, PGresult **last) {
  if (last) *last = NULL;
  if (c->queued == 0) return c->perr;
  if (PQsendFlushRequest(c->db) != 1 || PQflush(c->db) != 0) {
    pipe_fail(c, NULL);
    c->queued = 0;
    return c->perr;
  }
  int failed = 0;
  while (c->queued > 0) {
    PGresult *r = PQgetResult(c->db);
    if (r == NULL) {   /* the connection went */
      pipe_fail(c, NULL);
      c->queued = 0;
      return c->perr;
    }
    ExecStatusType st = PQresultStatus(r);
    if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) {
      if (last && c->queued == 1) *last = r;
      else PQclear(r);
    } else {
      if (st != PGRES_PIPELINE_ABORTED) pipe_fail(c, r);
      failed = 1;
      PQclear(r);
    }
    /* each statement's results end with a NULL */
    while ((r = PQgetResult(c->db)) != NULL) PQclear(r);
    c->queued--;
  }
  stmts_settle(c, failed);
  if (failed) {
    if (last && *last) {
      PQclear(*last);
      *last = NULL;
    }
    pipe_resync(c);
  }
  return c->perr;
}

int pg_pipe_begin(struct pg_conn *c) {
  c->queued = 0;
  c->perr = 0;
  c->wait = 0;
  if (PQenterPipelineMode(c->db) != 1) return KK_ESTORE;
  c->pipe = 1;
  return 0;
}

/* An operation that may fail on its own runs outside the pipeline, each
   statement waiting for its answer as without one: what was sent ahead is
   read first, and the pipeline is entered again after it. */
int pg_pipe_wait(struct pg_conn *c, int on) {
  if (on && c->pipe) {
    int rc = pipe_read(c, NULL);
    if (PQexitPipelineMode(c->db) != 1) {
      pipe_fail(c, NULL);
      return c->perr;
    }
    c->pipe = 0;
    c->wait = 1;
    return rc;
  }
  if (!on && c->wait) {
    c->wait = 0;
    if (PQenterPipelineMode(c->db) != 1) {
      pipe_fail(c, NULL);
      return c->perr;
    }
    c->pipe = 1;
  }
  return c->perr;
}

/* Sends one statement: 0 or the pipeline's failure. */
static int pipe_put(struct pg_conn *c, const char *sql, const struct pg_params *p) {
  if (c->perr) return c->perr;   /* the transaction is lost already */
  const char *name = p && p->n > 0 ? stmt_name(c, sql, p->n) : NULL;
  int sent = name ? PQsendQueryPrepared(c->db, name, p->n, p->v, p->len, p->fmt, 0)
                  : PQsendQueryParams(c->db, sql, p ? p->n : 0, NULL, p ? p->v : NULL,
                                      p ? p->len : NULL, p ? p->fmt : NULL, 0);
  if (sent != 1) {
    pipe_fail(c, NULL);
    return c->perr;
  }
  c->queued++;
  return 0;
}

int pg_pipe_send(struct pg_conn *c, const char *sql, const struct pg_params *p) {
  int rc = pipe_put(c, sql, p);
  if (rc == 0 && c->queued >= PIPE_MAX_QUEUED) rc = pipe_read(c, NULL);
  return rc;
}

PGresult *pg_pipe_query(struct pg_conn *c, const char *sql, const struct pg_params *p, int *rc) {
  PGresult *r = NULL;
  *rc = pipe_put(c, sql, p);
  if (*rc == 0) *rc = pipe_read(c, &r);
  if (*rc == 0 && r == NULL) *rc = KK_ESTORE;
  if (*rc != 0) {
    PQclear(r);
    return NULL;
  }
  return r;
}

/* Ends the pipeline: the answers not read yet are read and the connection
   leaves pipeline mode (statements wait for their answers again). */
static int pipe_end(struct pg_conn *c) {
  int rc = pipe_read(c, NULL);
  pipe_resync(c);
  if (PQstatus(c->db) == CONNECTION_OK) PQexitPipelineMode(c->db);
  c->pipe = 0;
  c->wait = 0;
  c->perr = 0;
  return rc;
}

int pg_pipe_commit(struct pg_conn *c) {
  PGresult *r = NULL;
  int rc = c->perr;
  if (rc == 0) rc = pipe_put(c, "COMMIT", NULL);
  if (rc == 0) rc = pipe_read(c, &r);
  if (rc == 0 && (r == NULL || strcmp(PQcmdStatus(r), "COMMIT") != 0)) {
    /* COMMIT of a transaction the server aborted answers ROLLBACK */
    kk_error(LOGCTX, "the transaction was rolled back by the server");
    c->fault = STORE_FAULT_OTHER;
    rc = KK_ESTORE;
  }
  PQclear(r);
  int rc2 = pipe_end(c);
  return rc ? rc : rc2;
}

void pg_pipe_abandon(struct pg_conn *c) {
  if (c->pipe) pipe_end(c);
  c->wait = 0;
  c->perr = 0;
}
