/*
 * tmp_pg.h - a fresh PostgreSQL database per test, on the server named by
 * the URL in KASKAD_TEST_PG (tools/pg-test.sh starts a private one): made
 * with a name of its own, dropped at the end with whatever still uses it.
 */
#ifndef KK_TMP_PG_H
#define KK_TMP_PG_H

#include <libpq-fe.h>

#define TMP_PG_URL_MAX 512

struct tmp_pg {
  char admin[TMP_PG_URL_MAX];   /* KASKAD_TEST_PG: where databases are made */
  char name[64];                /* the test's database */
  char url[TMP_PG_URL_MAX];     /* its URL: store_opts.store_url */
};

/* KASKAD_TEST_PG, or NULL when it is not set (the test is then not run). */
const char *tmp_pg_server(void);

/* Creates a fresh database: 0, KK_ENOENT when KASKAD_TEST_PG is not set,
   KK_EIO when the server refused. */
int tmp_pg_new(struct tmp_pg *p);

/* A connection of the test's own to the database (PQfinish it), NULL when
   it cannot be made. */
PGconn *tmp_pg_connect(const struct tmp_pg *p);

/* Runs sql (no parameters) on c: its result when it succeeded (PQclear it),
   NULL otherwise (the error is printed). */
PGresult *tmp_pg_exec(PGconn *c, const char *sql);

/* Drops the database, closing what is still connected to it: 0 or KK_EIO. */
int tmp_pg_drop(struct tmp_pg *p);

#endif
