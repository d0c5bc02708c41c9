/*
 * sq_money.h - the SQLite backend's statements and functions for balances
 * (store_money.h): a block of the statement list of its own (sq_int.h
 * includes it) and the bodies of sq_money.c. Not for use outside
 * src/store/sqlite.
 */
#ifndef SQ_MONEY_H
#define SQ_MONEY_H

#include "store/store_money.h"

#define STMT_LIST_MONEY(XX)                                                    \
  XX(MON_GET, "SELECT prepaid,balance,reserved,credit_limit FROM balances"     \
              " WHERE account_id=?")                                           \
  XX(MON_RESERVE, "UPDATE balances SET reserved=reserved+?2 WHERE"             \
                  " account_id=?1 AND prepaid=1"                               \
                  " AND balance-reserved+credit_limit>=?2")                    \
  XX(MON_MOVE, "UPDATE balances SET balance=balance+?2, reserved=reserved+?3"  \
               " WHERE account_id=?1 RETURNING balance")                       \
  XX(MON_SET, "INSERT INTO balances(account_id,prepaid,credit_limit)"          \
              " VALUES(?1,MAX(?2,0),MAX(?3,0)) ON CONFLICT(account_id) DO"      \
              " UPDATE SET prepaid=CASE WHEN ?2<0 THEN prepaid ELSE ?2 END,"   \
              " credit_limit=CASE WHEN ?3<0 THEN credit_limit ELSE ?3 END")    \
  XX(MON_ENSURE, "INSERT OR IGNORE INTO balances(account_id) VALUES(?)")       \
  XX(HOLD_INSERT, "INSERT INTO money_holds(message_id,account_id,amount)"      \
                  " VALUES(?,?,?)")                                            \
  XX(HOLD_GET, "SELECT account_id,amount FROM money_holds WHERE message_id=?") \
  XX(HOLD_SET, "UPDATE money_holds SET amount=? WHERE message_id=?")           \
  XX(HOLD_DEL, "DELETE FROM money_holds WHERE message_id=?")                   \
  XX(MTX_INSERT, "INSERT INTO money_tx(account_id,kind,amount,balance,at,"     \
                 "message,attempt_id,channel,ref) VALUES(?,?,?,?,?,?,?,?,?)")  \
  XX(MTX_OF_ATTEMPT, "SELECT account_id,amount,kind FROM money_tx"            \
                     " WHERE attempt_id=? AND kind IN ('charge','refund')")   \
  XX(MTX_LIST, "SELECT id,kind,amount,balance,at,message,channel,ref"          \
               " FROM money_tx WHERE account_id=?1 AND (?2=0 OR id<?2)"        \
               " ORDER BY id DESC LIMIT ?3")                                   \
  XX(MON_REACH, "SELECT channel,COUNT(*),"                                     \
                "SUM(delivered_at IS NOT NULL OR read_at IS NOT NULL)"         \
                " FROM attempts WHERE message_id IN (SELECT id FROM messages"  \
                " WHERE account_id=?1 AND created_at>=?2 ORDER BY id DESC"     \
                " LIMIT ?3) AND status<>'skipped' GROUP BY channel"            \
                " ORDER BY channel")

/* The schema's migration of balances (sq_schema.c). */
#define SQ_MONEY_MIGRATION                                                     \
  "CREATE TABLE balances("                                                     \
  " account_id INTEGER PRIMARY KEY,"                                           \
  " prepaid INTEGER NOT NULL DEFAULT 0,"                                       \
  " balance INTEGER NOT NULL DEFAULT 0,"                                       \
  " reserved INTEGER NOT NULL DEFAULT 0,"                                      \
  " credit_limit INTEGER NOT NULL DEFAULT 0);"                                 \
  "CREATE TABLE money_holds("                                                  \
  " message_id INTEGER PRIMARY KEY,"                                           \
  " account_id INTEGER NOT NULL,"                                              \
  " amount INTEGER NOT NULL);"                                                 \
  "CREATE TABLE money_tx("                                                     \
  " id INTEGER PRIMARY KEY AUTOINCREMENT,"                                     \
  " account_id INTEGER NOT NULL,"                                              \
  " kind TEXT NOT NULL,"                                                       \
  " amount INTEGER NOT NULL,"                                                  \
  " balance INTEGER NOT NULL,"                                                 \
  " at INTEGER NOT NULL,"                                                      \
  " message TEXT, attempt_id INTEGER, channel TEXT, ref TEXT);"                \
  "CREATE INDEX money_tx_account ON money_tx(account_id, id);"

struct store;
struct store_op;
struct store_msg_new;
struct casc_run;
struct cfsm_fx;
int sq_money_set(struct store *s, struct store_op *op);
int sq_money_topup(struct store *s, struct store_op *op);
/* Writer, inside the insert's transaction, after m->id is numbered: the
   hold of a prepaid account's message (m->no_balance when it does not fit). */
int sq_money_hold(struct store *s, struct store_msg_new *m);
/* casc_ops.charge and .release (store_casc.h). */
int sq_money_charge(struct casc_run *r, const struct cfsm_fx *f);
int sq_money_release(struct casc_run *r);
/* casc_ops.refund. */
int sq_money_refund(struct casc_run *r, const struct cfsm_fx *f);
int sq_money_get(struct store *s, void *rd, int64_t account_id, struct store_money *out);
int sq_money_tx_list(struct store *s, void *rd, int64_t account_id, int64_t before_id, int limit,
                     struct store_money_tx *out, int *n);
int sq_money_reach(struct store *s, void *rd, int64_t account_id, int64_t since,
                   struct store_money_reach *out, int *n);
#define SQ_MONEY_READS {.get = sq_money_get, .tx_list = sq_money_tx_list, .reach = sq_money_reach}

#endif
