/* tmp_pg.c - see tmp_pg.h. */
#include "tmp_pg.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/kk_err.h"

const char *tmp_pg_server(void) {
  const char *u = getenv("KASKAD_TEST_PG");
  return u && *u ? u : NULL;
}

/* The URL of database name on the server of url: the path after the host
   is replaced, the query (?...) kept. */
static int url_with_db(const char *url, const char *name, char *out, size_t cap) {
  const char *host = strstr(url, "://");
  if (host == NULL) return KK_EINVAL;
  host += 3;
  const char *path = host + strcspn(host, "/?");
  const char *query = strchr(path, '?');
  int n = snprintf(out, cap, "%.*s/%s%s", (int)(path - url), url, name, query ? query : "");
  return n > 0 && (size_t)n < cap ? 0 : KK_EINVAL;
}

PGresult *tmp_pg_exec(PGconn *c, const char *sql) {
  PGresult *r = PQexec(c, sql);
  ExecStatusType st = PQresultStatus(r);
  if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) return r;
  fprintf(stderr, "tmp_pg: %s: %s", sql, PQerrorMessage(c));
  PQclear(r);
  return NULL;
}

/* Runs sql on the server's admin database. */
static int admin_exec(const struct tmp_pg *p, const char *sql) {
  PGconn *c = PQconnectdb(p->admin);
  int rc = KK_EIO;
  if (PQstatus(c) == CONNECTION_OK) {
    PGresult *r = tmp_pg_exec(c, sql);
    if (r) rc = 0;
    PQclear(r);
  } else {
    fprintf(stderr, "tmp_pg: cannot connect: %s", PQerrorMessage(c));
  }
  PQfinish(c);
  return rc;
}

int tmp_pg_new(struct tmp_pg *p) {
  memset(p, 0, sizeof *p);
  const char *server = tmp_pg_server();
  if (server == NULL) return KK_ENOENT;
  snprintf(p->admin, sizeof p->admin, "%s", server);
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  /* a name of digits and letters only: it is an identifier in the SQL */
  snprintf(p->name, sizeof p->name, "kk_t%ld_%ld", (long)getpid(), (long)(ts.tv_nsec / 1000));
  if (url_with_db(p->admin, p->name, p->url, sizeof p->url) != 0) return KK_EIO;
  char sql[128];
  snprintf(sql, sizeof sql, "CREATE DATABASE %s", p->name);
  return admin_exec(p, sql);
}

PGconn *tmp_pg_connect(const struct tmp_pg *p) {
  PGconn *c = PQconnectdb(p->url);
  if (PQstatus(c) == CONNECTION_OK) return c;
  fprintf(stderr, "tmp_pg: cannot connect: %s", PQerrorMessage(c));
  PQfinish(c);
  return NULL;
}

int tmp_pg_drop(struct tmp_pg *p) {
  if (p->name[0] == '\0') return 0;
  char sql[128];
  snprintf(sql, sizeof sql, "DROP DATABASE IF EXISTS %s WITH (FORCE)", p->name);
  int rc = admin_exec(p, sql);
  p->name[0] = '\0';
  return rc;
}
