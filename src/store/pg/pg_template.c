/*
 * pg_template.c - templates in the PostgreSQL backend; each change is
 * handed out as a note after its commit, as in the SQLite backend.
 */
#include <stdlib.h>

#include "core/kk_err.h"
#include "store/pg/pg_int.h"

int pg_template_put(struct store *s, struct store_op *op) {
  struct store_template_data *d = op->data;
  struct pg_params p = {0};
  pg_p_int(&p, d->account_id);
  pg_p_text(&p, d->name);
  int rc;
  if (d->body) {
    pg_p_text(&p, d->body);
    pg_p_int(&p, d->at);
    rc = pg_cmd(&PG(s)->w,
                "INSERT INTO templates(account_id,name,body,created_at,updated_at)"
                " VALUES($1::bigint,$2,$3,$4::bigint,$4::bigint)"
                " ON CONFLICT(account_id,name) DO UPDATE SET body=excluded.body,"
                " updated_at=excluded.updated_at",
                &p);
  } else {
    rc = pg_cmd(&PG(s)->w, "DELETE FROM templates WHERE account_id=$1::bigint AND name=$2", &p);
  }
  if (rc == 0) note_cfg(s, STORE_NOTE_TEMPLATE_CFG, d->account_id, d->name, d->body, NULL, d->at);
  return rc;   /* d->body is freed with the operation (it may run again) */
}

int pg_templates_all(struct store *s,
                     void (*fn)(void *arg, int64_t account_id, const char *name,
                                const char *body, int64_t created_at, int64_t updated_at),
                     void *arg) {
  int rc;
  PGresult *r = pg_read(&PG(s)->r,
                        "SELECT account_id,name,body,created_at,updated_at FROM templates"
                        " ORDER BY account_id,name COLLATE \"C\"",
                        NULL, &rc);
  if (r == NULL) return KK_ESTORE;
  for (int i = 0; i < PQntuples(r); i++)
    fn(arg, pg_int(r, i, 0), PQgetvalue(r, i, 1), PQgetvalue(r, i, 2), pg_int(r, i, 3),
       pg_int(r, i, 4));
  PQclear(r);
  return 0;
}
