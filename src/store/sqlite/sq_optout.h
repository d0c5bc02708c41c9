/*
 * sq_optout.h - the SQLite backend's statements, migration and functions
 * for the stop-list and consents (store_optout.h). Not for use outside
 * src/store/sqlite.
 */
#ifndef SQ_OPTOUT_H
#define SQ_OPTOUT_H

#include "store/store_optout.h"

#define SQ_OPTOUT_MIGRATION                                                    \
  "CREATE TABLE stoplist("                                                     \
  " account_id INTEGER NOT NULL,"                                              \
  " phone TEXT NOT NULL,"                                                      \
  " reason TEXT NOT NULL,"                                                     \
  " channel TEXT,"                                                             \
  " created_at INTEGER NOT NULL,"                                              \
  " PRIMARY KEY(account_id, phone)) WITHOUT ROWID;"                            \
  "CREATE TABLE consents("                                                     \
  " id INTEGER PRIMARY KEY,"                                                   \
  " account_id INTEGER NOT NULL,"                                              \
  " phone TEXT NOT NULL,"                                                      \
  " channel TEXT NOT NULL,"                                                    \
  " source TEXT NOT NULL,"                                                     \
  " text TEXT,"                                                                \
  " ip TEXT,"                                                                  \
  " at INTEGER NOT NULL,"                                                      \
  " recorded_at INTEGER NOT NULL,"                                             \
  " withdrawn_at INTEGER,"                                                     \
  " withdrawn_by TEXT);"                                                       \
  "CREATE INDEX consents_phone ON consents(account_id, phone, id);"

#define CONSENT_COLS "id,phone,channel,source,text,ip,at,recorded_at,withdrawn_at,withdrawn_by"

#define STMT_LIST_OPTOUT(XX)                                                   \
  XX(STOP_PUT, "INSERT INTO stoplist(account_id,phone,reason,channel,"         \
               "created_at) VALUES(?1,?2,?3,?4,?5) ON CONFLICT(account_id,"    \
               "phone) DO UPDATE SET reason=excluded.reason,"                  \
               " channel=excluded.channel WHERE reason<>excluded.reason")      \
  XX(STOP_DEL, "DELETE FROM stoplist WHERE account_id=? AND phone=?")          \
  XX(STOP_ALL, "SELECT account_id,phone,reason FROM stoplist")                 \
  XX(STOP_PAGE, "SELECT phone,reason,channel,created_at FROM stoplist"         \
                " WHERE account_id=?1 AND phone>?2 ORDER BY phone LIMIT ?3")   \
  XX(STOP_ONE, "SELECT phone,reason,channel,created_at FROM stoplist"          \
               " WHERE account_id=?1 AND phone=?2")                            \
  XX(CS_INSERT, "INSERT INTO consents(account_id,phone,channel,source,text,"   \
                "ip,at,recorded_at) VALUES(?,?,?,?,?,?,?,?)")                  \
  XX(CS_WITHDRAW, "UPDATE consents SET withdrawn_at=?3, withdrawn_by=?4"       \
                  " WHERE account_id=?1 AND phone=?2 AND withdrawn_at IS NULL" \
                  " AND (?5='all' OR channel=?5)")                             \
  XX(CS_CONTACT, "UPDATE contacts SET consent=?3,"                            \
                 " consent_source=COALESCE(?4,consent_source),"                \
                 " consent_at=COALESCE(?5,consent_at)"                         \
                 " WHERE account_id=?1 AND phone=?2")                          \
  XX(CS_CURRENT, "SELECT DISTINCT channel FROM consents WHERE account_id=?"    \
                 " AND phone=? AND withdrawn_at IS NULL")                      \
  XX(CS_ALL, "SELECT account_id,phone,channel FROM consents"                   \
             " WHERE withdrawn_at IS NULL")                                    \
  XX(CS_OF, "SELECT " CONSENT_COLS " FROM consents WHERE account_id=?1"        \
            " AND phone=?2 ORDER BY id")                                       \
  XX(CS_EACH, "SELECT " CONSENT_COLS " FROM consents WHERE account_id=?1"      \
              " ORDER BY phone,id")

int sq_stop_write(struct store *s, struct store_op *op);
int sq_consent_write(struct store *s, struct store_op *op);
struct store_contact;
/* Writer thread, in a contact's write: its consent column as a record
   (store_contact.h). 0 or KK_ESTORE. */
int sq_consent_of_contact(struct store *s, int64_t account_id, const struct store_contact *c,
                          int64_t now);
int sq_stop_all(struct store *s,
                void (*fn)(void *arg, int64_t account_id, const char *phone, const char *reason),
                void *arg);
int sq_consent_all(struct store *s,
                   void (*fn)(void *arg, int64_t account_id, const char *phone,
                              const char *channel),
                   void *arg);
int sq_stop_each(struct store *s, void *rd, int64_t account_id, const char *phone,
                 const char *after, int limit, store_stop_fn fn, void *arg);
int sq_consent_each(struct store *s, void *rd, int64_t account_id, const char *phone,
                    store_consent_fn fn, void *arg);

#define SQ_OPTOUT_READS                                                        \
  {.stop_all = sq_stop_all, .consent_all = sq_consent_all,                    \
   .stop_each = sq_stop_each, .consent_each = sq_consent_each}

#endif
