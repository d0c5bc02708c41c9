/*
 * sq_schema.c - the SQLite backend's schema and connections: the numbered
 * migrations (PRAGMA user_version holds the number applied), the statement
 * texts, opening a connection, and the helpers that prepare, bind and step.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/kk_err.h"
#include "core/kk_log.h"
#include "core/kk_mem.h"
#include "core/kk_utf8.h"
#include "store/sqlite/sq_int.h"
#include "store/store_campaign.h"
#include "store/sqlite/sq_link.h"

#define LOGCTX "store"

/* ---- schema ------------------------------------------------------------ */

static const char *const migrations[] = {
    /* 1: accounts, keys, routes, messages, attempts, parts, events, outbox */
    "CREATE TABLE accounts("
    " id INTEGER PRIMARY KEY,"
    " public_id TEXT NOT NULL UNIQUE,"
    " name TEXT NOT NULL,"
    " sms_route TEXT NOT NULL DEFAULT '',"
    " callback_secret TEXT NOT NULL,"
    " settings TEXT NOT NULL DEFAULT '{}',"
    " created_at INTEGER NOT NULL);"
    "CREATE TABLE api_keys("
    " id INTEGER PRIMARY KEY,"
    " account_id INTEGER NOT NULL REFERENCES accounts(id),"
    " key_hash BLOB NOT NULL UNIQUE,"
    " prefix TEXT NOT NULL,"
    " created_at INTEGER NOT NULL,"
    " revoked_at INTEGER);"
    "CREATE TABLE routes("
    " name TEXT PRIMARY KEY,"
    " config TEXT NOT NULL,"
    " updated_at INTEGER NOT NULL);"
    "CREATE TABLE messages("
    " id INTEGER PRIMARY KEY,"
    " public_id TEXT NOT NULL UNIQUE,"
    " account_id INTEGER NOT NULL,"
    " idem_key TEXT,"
    " to_number TEXT NOT NULL,"
    " sender TEXT,"
    " body TEXT NOT NULL,"
    " class TEXT NOT NULL,"
    " encoding TEXT NOT NULL,"
    " segments INTEGER NOT NULL,"
    " status TEXT NOT NULL,"
    " channel TEXT,"
    " callback_url TEXT,"
    " created_at INTEGER NOT NULL,"
    " expires_at INTEGER NOT NULL,"
    " updated_at INTEGER NOT NULL,"
    " due_at INTEGER);"
    "CREATE UNIQUE INDEX messages_idem ON messages(account_id, idem_key)"
    " WHERE idem_key IS NOT NULL;"
    "CREATE INDEX messages_due ON messages(id) WHERE due_at IS NOT NULL;"
    "CREATE INDEX messages_account ON messages(account_id, id);"
    "CREATE TABLE attempts("
    " id INTEGER PRIMARY KEY,"
    " message_id INTEGER NOT NULL,"
    " channel TEXT NOT NULL,"
    " route TEXT,"
    " status TEXT NOT NULL,"
    " segments INTEGER NOT NULL DEFAULT 1,"
    " parts_sent INTEGER NOT NULL DEFAULT 0,"
    " parts_delivered INTEGER NOT NULL DEFAULT 0,"
    " provider_id TEXT,"
    " error TEXT,"
    " created_at INTEGER NOT NULL,"
    " sent_at INTEGER, delivered_at INTEGER, read_at INTEGER);"
    "CREATE INDEX attempts_message ON attempts(message_id);"
    "CREATE TABLE sms_parts("
    " route TEXT NOT NULL,"
    " provider_id TEXT NOT NULL,"
    " attempt_id INTEGER NOT NULL,"
    " part INTEGER NOT NULL,"
    " state TEXT NOT NULL,"
    " PRIMARY KEY(route, provider_id)) WITHOUT ROWID;"
    "CREATE TABLE events("
    " id INTEGER PRIMARY KEY,"
    " message_id INTEGER NOT NULL,"
    " attempt_id INTEGER,"
    " status TEXT NOT NULL,"
    " at INTEGER NOT NULL,"
    " detail TEXT);"
    "CREATE INDEX events_message ON events(message_id);"
    "CREATE TABLE outbox("
    " id INTEGER PRIMARY KEY,"
    " account_id INTEGER NOT NULL,"
    " message_id INTEGER NOT NULL,"
    " url TEXT NOT NULL,"
    " payload TEXT NOT NULL,"
    " tries INTEGER NOT NULL DEFAULT 0,"
    " due_at INTEGER NOT NULL,"
    " last_error TEXT);"
    "CREATE INDEX outbox_due ON outbox(due_at);"
    "CREATE TABLE inbound("
    " id INTEGER PRIMARY KEY,"
    " route TEXT,"
    " from_number TEXT NOT NULL,"
    " to_addr TEXT NOT NULL,"
    " body TEXT NOT NULL,"
    " at INTEGER NOT NULL);",
    /* 2: receipts that came before their submit_sm_resp was stored */
    "CREATE TABLE early_receipts("
    " route TEXT NOT NULL,"
    " provider_id TEXT NOT NULL,"
    " other_id TEXT NOT NULL,"
    " state TEXT NOT NULL,"
    " error TEXT,"
    " at INTEGER NOT NULL,"
    " PRIMARY KEY(route, provider_id)) WITHOUT ROWID;",
    /* 3: cascades over channels, channel settings, prices */
    "ALTER TABLE messages ADD COLUMN cascade TEXT;"
    "ALTER TABLE messages ADD COLUMN extra TEXT;"
    "ALTER TABLE messages ADD COLUMN route TEXT;"
    "ALTER TABLE messages ADD COLUMN step INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE messages ADD COLUMN attempt_id INTEGER;"
    "ALTER TABLE messages ADD COLUMN wait_until INTEGER;"
    "ALTER TABLE messages ADD COLUMN done INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE messages ADD COLUMN cost INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE messages ADD COLUMN sms_only_cost INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE messages ADD COLUMN delivered_twice INTEGER NOT NULL DEFAULT 0;"
    "UPDATE messages SET attempt_id=(SELECT MIN(id) FROM attempts"
    " WHERE attempts.message_id=messages.id),"
    " route=(SELECT route FROM attempts WHERE attempts.message_id=messages.id),"
    " done=(status IN ('delivered','read','failed','expired','rejected','cancelled'));"
    "CREATE INDEX messages_wait ON messages(wait_until) WHERE wait_until IS NOT NULL;"
    "ALTER TABLE attempts ADD COLUMN step INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE attempts ADD COLUMN address TEXT;"
    "ALTER TABLE attempts ADD COLUMN scope INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE attempts ADD COLUMN cost INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE attempts ADD COLUMN tries INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE attempts ADD COLUMN due_at INTEGER;"
    "CREATE INDEX attempts_due ON attempts(due_at) WHERE due_at IS NOT NULL;"
    "CREATE INDEX attempts_provider ON attempts(channel, provider_id)"
    " WHERE provider_id IS NOT NULL AND channel<>'sms';"
    "CREATE INDEX attempts_vk_peer ON attempts(address) WHERE channel='vk';"
    "CREATE TABLE channel_settings("
    " account_id INTEGER NOT NULL,"
    " channel TEXT NOT NULL,"
    " config TEXT NOT NULL,"
    " updated_at INTEGER NOT NULL,"
    " PRIMARY KEY(account_id, channel)) WITHOUT ROWID;"
    "CREATE TABLE prices("
    " account_id INTEGER NOT NULL,"
    " channel TEXT NOT NULL,"
    " price INTEGER NOT NULL,"
    " PRIMARY KEY(account_id, channel)) WITHOUT ROWID;"
    "CREATE TABLE cascades("
    " account_id INTEGER NOT NULL,"
    " name TEXT NOT NULL,"
    " steps TEXT NOT NULL,"
    " updated_at INTEGER NOT NULL,"
    " PRIMARY KEY(account_id, name)) WITHOUT ROWID;",
    /* 4: provider statuses that came before the send's own answer was stored */
    "CREATE TABLE early_statuses("
    " channel TEXT NOT NULL,"
    " scope INTEGER NOT NULL,"
    " provider_id TEXT NOT NULL,"
    " status TEXT NOT NULL,"
    " error TEXT,"
    " at INTEGER NOT NULL,"
    " PRIMARY KEY(channel, scope, provider_id, status)) WITHOUT ROWID;",
    /* 5: when each person last wrote to a WhatsApp number (its 24-hour
       customer-service window); scope as in attempts */
    "CREATE TABLE wa_windows("
    " scope INTEGER NOT NULL,"
    " phone TEXT NOT NULL,"
    " last_inbound INTEGER NOT NULL,"
    " PRIMARY KEY(scope, phone)) WITHOUT ROWID;",
    /* 6: when a request that must not go twice was marked under way */
    "ALTER TABLE attempts ADD COLUMN try_at INTEGER;",
    /* 7: the campaign a message belongs to, indexed for a campaign's
       listing and report */
    "ALTER TABLE messages ADD COLUMN campaign TEXT;"
    "CREATE INDEX messages_campaign ON messages(account_id, campaign)"
    " WHERE campaign IS NOT NULL;",
    /* 8: fairness between accounts: the outbox read per account, early
       statuses and receipts expired by time. (Listings by status scan the
       account's index within their bound: an index with the status in it,
       even a partial one, tripled the cost of every status change.) */
    "CREATE INDEX outbox_account ON outbox(account_id, due_at);"
    "CREATE INDEX early_statuses_at ON early_statuses(at);"
    "CREATE INDEX early_statuses_scope ON early_statuses(scope, at);"
    "CREATE INDEX early_receipts_at ON early_receipts(at);",
    /* 9: abuse controls: suspended accounts, their registered senders and
       allowed countries (JSON arrays), keys found by prefix, and the parts
       of an attempt found for the retention job */
    "ALTER TABLE accounts ADD COLUMN suspended INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE accounts ADD COLUMN senders TEXT NOT NULL DEFAULT '[]';"
    "ALTER TABLE accounts ADD COLUMN countries TEXT NOT NULL DEFAULT '[]';"
    "CREATE INDEX api_keys_prefix ON api_keys(prefix);"
    "CREATE INDEX api_keys_account ON api_keys(account_id);"
    "CREATE INDEX sms_parts_attempt ON sms_parts(attempt_id);",
    /* 10: a digest of the request's meaningful fields, so that an
       idempotency key reused for a different message is refused */
    "ALTER TABLE messages ADD COLUMN req_hash TEXT;",
    /* 11: replies: each inbound message belongs to an account (the one whose
       number received it, or whose message last went to the sender), listed
       newest first per account, by channel or by sender */
    "ALTER TABLE inbound ADD COLUMN channel TEXT NOT NULL DEFAULT 'sms';"
    "ALTER TABLE inbound ADD COLUMN account_id INTEGER;"
    "ALTER TABLE inbound ADD COLUMN message_id INTEGER;"
    "CREATE INDEX inbound_account ON inbound(account_id, id);"
    "CREATE INDEX inbound_account_channel ON inbound(account_id, channel, id);"
    "CREATE INDEX inbound_account_from ON inbound(account_id, from_number, id);"
    "CREATE INDEX messages_to ON messages(to_number, id);",
    /* 12: an outbox row holds its event's fields; the callback's JSON is
       built when it is sent (rows written before keep their payload) */
    "ALTER TABLE outbox ADD COLUMN at INTEGER;"
    "ALTER TABLE outbox ADD COLUMN public_id TEXT;"
    "ALTER TABLE outbox ADD COLUMN status TEXT;"
    "ALTER TABLE outbox ADD COLUMN channel TEXT;"
    "ALTER TABLE outbox ADD COLUMN to_number TEXT;"
    "ALTER TABLE outbox ADD COLUMN cost INTEGER;"
    "ALTER TABLE outbox ADD COLUMN error TEXT;",
    /* 13: templates (template/tmpl_doc.h: body is the JSON), per account
       by name */
    "CREATE TABLE templates("
    " account_id INTEGER NOT NULL,"
    " name TEXT NOT NULL,"
    " body TEXT NOT NULL,"
    " created_at INTEGER NOT NULL,"
    " updated_at INTEGER NOT NULL,"
    " PRIMARY KEY(account_id, name));",
    /* 14: contact bases: contacts, their lists, imports and the rows each
       refused (sq_contact.h) */
    SQ_CONTACT_MIGRATION,
    /* 15: the stop-list and consent records (sq_optout.h) */
    SQ_OPTOUT_MIGRATION,
    /* 16: the policy's decisions on a message (JSON array) */
    "ALTER TABLE messages ADD COLUMN decisions TEXT;",
    /* 17: balances of prepaid accounts, the holds of messages not yet
       done, the transaction log (sq_money.h) */
    SQ_MONEY_MIGRATION,
    /* 18: routes and lanes: the price per segment of the route an SMS
       attempt went by; an account's rule for advertising to roaming
       subscribers */
    ("ALTER TABLE attempts ADD COLUMN price INTEGER;"
    "ALTER TABLE accounts ADD COLUMN roaming_ads TEXT NOT NULL DEFAULT '';"),
    /* 19: segments: named filters of the contacts (sq_contact.h) */
    SQ_SEGMENT_MIGRATION,
    /* 20: replies by messenger and their attribution (sq_optout.h) */
    SQ_INBOUND_MIGRATION,
    /* 21: campaigns (sq_int.h) */
    SQ_CAMPAIGN_MIGRATION,
    /* 22: tracked links, clicks, conversions and their counters (sq_link.h) */
    SQ_LINK_MIGRATION,
    /* 23: the charge of an attempt, found when it is refunded */
    "CREATE INDEX money_tx_attempt ON money_tx(attempt_id) WHERE attempt_id IS NOT NULL;",
    /* 24: a campaign's figures kept as it goes, retries (sq_int.h) */
    SQ_CAMP_COUNTS_MIGRATION,
    /* 25: link previews apart from clicks (sq_link.h) */
    SQ_LINK_PREVIEW_MIGRATION,
    /* 26: the view a campaign's figures are read through (PostgreSQL's 18
       adds its rows of changes there; here it is the counters alone) */
    "CREATE VIEW campaign_figures AS SELECT * FROM campaign_counts;",
    /* 27: where a campaign's planning is, written with each batch of its
       recipients (store_campaign.h) */
    STORE_CAMP_PLAN_MIGRATION,
    /* 28: a contact's lists in its own row (sq_contact.h), the memberships
       in the one B-tree keyed (account, list, phone) */
    SQ_CONTACT_LISTS_MIGRATION,
    /* 29 (attempts' addresses): attempts_address's channels as comparisons.
       Written as an IN list, every attempt insert built that list into a
       temporary B-tree to test the row against it; queries that name one of
       the channels use the index as before. */
    "DROP INDEX attempts_address;"
    "CREATE INDEX attempts_address ON attempts(channel, address) WHERE address IS NOT NULL"
    " AND (channel='vk' OR channel='viber' OR channel='telegram');",
    /* 30: a campaign's figures kept by the writer (sq_counts.c): a trigger
       wrote one or two rows of campaign_counts at each change of a
       campaign's message or recipient, the writer writes each row changed
       once a commit. The stop-list's trigger stays. */
    "DROP TRIGGER campaign_counts_new;"
    "DROP TRIGGER campaign_counts_change;"
    "DROP TRIGGER campaign_counts_rcpt_change;"
    "DROP TRIGGER campaign_counts_rcpt_gone;",
};
#define NMIGRATIONS ((int)(sizeof migrations / sizeof migrations[0]))

const char *const stmt_sql[] = {
#define XX(name, sql) sql,
    STMT_LIST(XX)
#undef XX
};

sqlite3_stmt *sq_stmt_prepare(struct conn *c, enum stmt_id id) {
  if (sqlite3_prepare_v3(c->db, stmt_sql[id], -1, SQLITE_PREPARE_PERSISTENT, &c->st[id],
                         NULL) != SQLITE_OK) {
    kk_error(LOGCTX, "prepare failed: %s: %s", sqlite3_errmsg(c->db), stmt_sql[id]);
    abort(); /* a statement of ours that does not compile is a bug */
  }
  return c->st[id];
}

/* Runs a statement that returns no rows. */
int sq_step_done(struct conn *c, sqlite3_stmt *st) { return sq_step_int64(c, st, NULL); }

int sq_step_int64(struct conn *c, sqlite3_stmt *st, int64_t *out) {
  int rc = sqlite3_step(st);
  if (out) *out = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
  sqlite3_reset(st);
  if (rc == SQLITE_DONE || rc == SQLITE_ROW) return 0;
  if (rc == SQLITE_CONSTRAINT) return KK_EEXIST;
  c->err = rc;
  kk_error(LOGCTX, "%s: %s", sqlite3_errmsg(c->db), sqlite3_sql(st));
  return KK_ESTORE;
}

int sq_lookup(sqlite3_stmt *st, sq_row_fn read, void *out) {
  int rc = sqlite3_step(st);
  if (rc == SQLITE_ROW && read) read(st, out);
  sqlite3_reset(st);
  return rc == SQLITE_ROW ? 0 : rc == SQLITE_DONE ? KK_ENOENT : KK_ESTORE;
}

void sq_row_int64(sqlite3_stmt *st, void *out) { *(int64_t *)out = sqlite3_column_int64(st, 0); }

void sq_row_phone(sqlite3_stmt *st, void *out) { sq_col_copy(st, 0, out, 16); }

void sq_row_dup(sqlite3_stmt *st, void *out) { *(char **)out = sq_col_dup(st, 0); }

int sq_exec(struct conn *c, enum stmt_id id) {
  return sq_step_done(c, sq_stmt(c, id));
}

/* The copy is valid UTF-8 cut at a character boundary whatever the column
   holds (text longer than the field, bytes a provider sent): these fields go
   into JSON answers, which refuse a broken character. */
void sq_col_copy(sqlite3_stmt *st, int i, char *out, size_t cap) {
  const unsigned char *t = sqlite3_column_text(st, i);
  size_t n = t ? (size_t)sqlite3_column_bytes(st, i) : 0;
  kk_utf8_sanitize(out, cap, (const char *)t, n);
}

char *sq_col_dup(sqlite3_stmt *st, int i) {
  const unsigned char *t = sqlite3_column_text(st, i);
  return kk_xstrdup(t ? (const char *)t : "");
}

/* ---- open / close -------------------------------------------------------- */

int conn_open(struct conn *c, const char *path, int sync_full, int writer) {
  memset(c, 0, sizeof *c);
  int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX;
  if (sqlite3_open_v2(path, &c->db, flags, NULL) != SQLITE_OK) {
    kk_error(LOGCTX, "cannot open %s: %s", path, c->db ? sqlite3_errmsg(c->db) : "?");
    return KK_ESTORE;
  }
  /* A lock held by another process (a backup, sqlite3 by hand) is waited
     for this long, then the write fails (see store.h: store faults) and
     a read answers an error: neither thread waits longer. */
  sqlite3_busy_timeout(c->db, BUSY_MS);
  char sql[256];
  snprintf(sql, sizeof sql,
           "PRAGMA journal_mode=WAL; PRAGMA synchronous=%s; PRAGMA foreign_keys=OFF;"
           " PRAGMA cache_size=-%d; PRAGMA temp_store=MEMORY;%s",
           sync_full ? "FULL" : "NORMAL", SQ_CACHE_KIB,
           /* sq_ckpt.c checkpoints, and cuts the log back after an import */
           writer ? " PRAGMA wal_autocheckpoint=0; PRAGMA journal_size_limit=67108864;" : "");
  char *err = NULL;
  if (sqlite3_exec(c->db, sql, NULL, NULL, &err) != SQLITE_OK) {
    kk_error(LOGCTX, "cannot configure %s: %s", path, err ? err : "?");
    sqlite3_free(err);
    return KK_ESTORE;
  }
  return 0;
}

void conn_close(struct conn *c) {
  for (int i = 0; i < ST__COUNT; i++) sqlite3_finalize(c->st[i]);
  for (int i = 0; i < SQ_SQL_CACHE; i++) sqlite3_finalize(c->sql[i]);
  memset(c->sql, 0, sizeof c->sql);
  if (c->db) sqlite3_close(c->db);
  c->db = NULL;
}

int sq_migrate(struct conn *c) {
  sqlite3_stmt *st;
  int version = 0;
  if (sqlite3_prepare_v2(c->db, "PRAGMA user_version", -1, &st, NULL) == SQLITE_OK) {
    if (sqlite3_step(st) == SQLITE_ROW) version = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
  }
  if (version > NMIGRATIONS) {
    kk_error(LOGCTX, "database schema %d is newer than this kaskad (%d)", version, NMIGRATIONS);
    return KK_ESTORE;
  }
  for (int v = version; v < NMIGRATIONS; v++) {
    char *err = NULL;
    char setv[64];
    snprintf(setv, sizeof setv, "PRAGMA user_version=%d;", v + 1);
    if (sqlite3_exec(c->db, "BEGIN", NULL, NULL, &err) != SQLITE_OK ||
        sqlite3_exec(c->db, migrations[v], NULL, NULL, &err) != SQLITE_OK ||
        sqlite3_exec(c->db, setv, NULL, NULL, &err) != SQLITE_OK ||
        sqlite3_exec(c->db, "COMMIT", NULL, NULL, &err) != SQLITE_OK) {
      kk_error(LOGCTX, "migration %d failed: %s", v + 1, err ? err : "?");
      sqlite3_free(err);
      sqlite3_exec(c->db, "ROLLBACK", NULL, NULL, NULL);
      return KK_ESTORE;
    }
    kk_info(LOGCTX, "schema migrated to version %d", v + 1);
  }
  return 0;
}
