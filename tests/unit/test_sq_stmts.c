/*
 * test_sq_stmts.c - the SQLite backend's prepared statements keep their
 * compiled plan from one bind to the next: a plan that depends on a bound
 * value (a partial index whose WHERE the planner weighs against it) is
 * compiled again at every bind, which on a path taken at each cascade
 * step costs the writer more than the statement itself.
 */
#include <sqlite3.h>
#include <stdio.h>
#include <string.h>

#include "core/kk_log.h"
#include "kk_test.h"
#include "lib/tmp_store.h"
#include "store/sqlite/sq_int.h"

/* The one whose plan rightly follows its channel: VK's users have an index
   of their own (attempts_vk_peer); it runs once per person's message. */
static int may_follow_binds(int id) { return id == ST_IN_LAST_USER; }

KK_TEST(sq_stmts_not_compiled_again_at_each_bind) {
  kk_log_level = KK_LOG_ERROR;
  struct tmp_store e;
  ASSERT_EQ(tmp_store_open(&e, "stmts", NULL), 0);
  char path[128];
  snprintf(path, sizeof path, "%s/kaskad.db", e.dir);
  sqlite3 *db = NULL;
  ASSERT_EQ(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
  sqlite3_busy_timeout(db, 5000);
  /* every statement run three times with other values, in the test's own
     database (its writes are thrown away with it) */
  for (int id = 0; id < ST__COUNT; id++) {
    sqlite3_stmt *st = NULL;
    ASSERT_EQ(sqlite3_prepare_v3(db, stmt_sql[id], -1, SQLITE_PREPARE_PERSISTENT, &st, NULL),
              SQLITE_OK);
    for (int run = 0; run < 3; run++) {
      for (int k = 1; k <= sqlite3_bind_parameter_count(st); k++)
        sqlite3_bind_text(st, k, run % 2 ? "vk" : "viber", -1, SQLITE_STATIC);
      while (sqlite3_step(st) == SQLITE_ROW) {
      }
      sqlite3_reset(st);
    }
    int again = sqlite3_stmt_status(st, SQLITE_STMTSTATUS_REPREPARE, 0);
    sqlite3_finalize(st);
    if (again > 0 && !may_follow_binds(id))
      kk_test_fail(__FILE__, __LINE__, "compiled again at each bind: %s", stmt_sql[id]);
  }
  sqlite3_close(db);
  ASSERT_EQ(tmp_store_close(&e), 0);
}
