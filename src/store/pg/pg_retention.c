/*
 * pg_retention.c - deleting messages past the retention period, in bounded
 * batches on the writer thread (as sqlite/sq_retention.c).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/kk_err.h"
#include "store/pg/pg_int.h"

/* A message's SMS parts, attempts and events go with it ($1: its id). */
static int delete_message(struct store *s, int64_t id) {
  static const char *const order[] = {
      ("DELETE FROM sms_parts WHERE attempt_id IN"
       " (SELECT id FROM attempts WHERE message_id=$1::bigint)"),
      "DELETE FROM attempts WHERE message_id=$1::bigint",
      "DELETE FROM events WHERE message_id=$1::bigint",
      "DELETE FROM messages WHERE id=$1::bigint",
  };
  struct pg_params p = {0};
  pg_p_int(&p, id);
  for (size_t i = 0; i < sizeof order / sizeof order[0]; i++) {
    int rc = pg_cmd(&PG(s)->w, order[i], &p);
    if (rc) return rc;
  }
  return 0;
}

int pg_retention(struct store *s, struct store_op *op) {
  struct store_retention *r = op->data;
  struct pg_params p = {0};
  pg_p_int(&p, r->after_id);
  pg_p_int(&p, r->max);
  int rc;
  PGresult *res = pg_query(&PG(s)->w,
                           "SELECT id,created_at,done,updated_at FROM messages"
                           " WHERE id>$1::bigint ORDER BY id LIMIT $2::int",
                           &p, &rc);
  if (res == NULL) return KK_ESTORE;
  int64_t victims[STORE_RETENTION_MAX];
  int nv = 0, seen = 0;
  r->more = 0;
  for (int i = 0; i < PQntuples(res); i++) {
    int64_t id = pg_int(res, i, 0);
    seen++;
    if (pg_int(res, i, 1) >= r->cutoff) {
      seen = -1;   /* ids grow with time: the rest are newer */
      break;
    }
    r->after_id = id;
    if (pg_int(res, i, 2) && pg_int(res, i, 3) < r->cutoff && nv < STORE_RETENTION_MAX)
      victims[nv++] = id;
  }
  PQclear(res);
  if (seen == r->max) r->more = 1;
  for (int i = 0; i < nv; i++)
    if ((rc = delete_message(s, victims[i])) != 0) return rc;
  r->deleted = nv;
  return 0;
}
