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

/* Migration 20: replies by messenger (the person's id there, the rule that
   attributed each), the inbound numbers and bots the operator gave to
   accounts, and the indexes that find a messenger user's phone. */
#define SQ_INBOUND_MIGRATION                                                   \
  "ALTER TABLE inbound ADD COLUMN user_id TEXT;"                               \
  "ALTER TABLE inbound ADD COLUMN attributed_by TEXT;"                         \
  "CREATE TABLE inbound_owners("                                               \
  " kind TEXT NOT NULL, address TEXT NOT NULL,"                                \
  " account_id INTEGER NOT NULL, created_at INTEGER NOT NULL,"                 \
  " PRIMARY KEY(kind, address)) WITHOUT ROWID;"                                \
  "CREATE INDEX inbound_owners_account ON inbound_owners(account_id);"         \
  "CREATE INDEX attempts_address ON attempts(channel, address)"                \
  " WHERE address IS NOT NULL AND channel IN ('vk','viber','telegram');"       \
  "CREATE INDEX contacts_vk ON contacts(account_id, vk_id)"                    \
  " WHERE vk_id IS NOT NULL;"                                                  \
  "CREATE INDEX contacts_viber ON contacts(account_id, viber_id)"              \
  " WHERE viber_id IS NOT NULL;"                                               \
  "CREATE INDEX contacts_telegram ON contacts(account_id, telegram_chat_id)"   \
  " WHERE telegram_chat_id IS NOT NULL;"                                       \
  "CREATE TABLE unsubscribe_codes("                                            \
  " code TEXT PRIMARY KEY, account_id INTEGER NOT NULL, phone TEXT NOT NULL,"  \
  " created_at INTEGER NOT NULL) WITHOUT ROWID;"

#define CONSENT_COLS "id,phone,channel,source,text,ip,at,recorded_at,withdrawn_at,withdrawn_by"

/* The rows of CS_INSERTN: SQ_CONSENT_ROWS of CS_INSERT's 8 parameters. */
#define CS_NEW_1 "(?,?,?,?,?,?,?,?)"
#define CS_NEW_4 CS_NEW_1 "," CS_NEW_1 "," CS_NEW_1 "," CS_NEW_1
#define CS_NEW_16 CS_NEW_4 "," CS_NEW_4 "," CS_NEW_4 "," CS_NEW_4
#define SQ_CONSENT_ROWS 32

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
  XX(CS_INSERTN, "INSERT INTO consents(account_id,phone,channel,source,text,"  \
                 "ip,at,recorded_at) VALUES" CS_NEW_16 "," CS_NEW_16)           \
  XX(CS_WITHDRAW, "UPDATE consents SET withdrawn_at=?3, withdrawn_by=?4"       \
                  " WHERE account_id=?1 AND phone=?2 AND withdrawn_at IS NULL" \
                  " AND (?5='all' OR channel=?5)")                             \
  XX(CS_CONTACT, "UPDATE contacts SET consent=?3,"                            \
                 " consent_source=COALESCE(?4,consent_source),"                \
                 " consent_at=COALESCE(?5,consent_at)"                         \
                 " WHERE account_id=?1 AND phone=?2")                          \
  XX(CS_CURRENT, "SELECT channel FROM consents WHERE account_id=?"    \
                 " AND phone=? AND withdrawn_at IS NULL")                      \
  /* the phones between ?2 and ?3 with consent records, current or not, \
     from the index alone (at most ?4 rows) */                                 \
  XX(CS_PHONES, "SELECT phone FROM consents WHERE account_id=?1"               \
                " AND phone>=?2 AND phone<=?3 LIMIT ?4")                       \
  XX(CS_ALL, "SELECT account_id,phone,channel FROM consents"                   \
             " WHERE withdrawn_at IS NULL")                                    \
  XX(CS_OF, "SELECT " CONSENT_COLS " FROM consents WHERE account_id=?1"        \
            " AND phone=?2 ORDER BY id")                                       \
  XX(CS_EACH, "SELECT " CONSENT_COLS " FROM consents WHERE account_id=?1"      \
              " ORDER BY phone,id")                                            \
  XX(IN_ASSIGNED, "SELECT account_id FROM inbound_owners"                      \
                  " WHERE kind=?1 AND address=?2")                             \
  XX(IN_OWNERS_OF, "SELECT kind,address FROM inbound_owners"                   \
                   " WHERE account_id=?1 ORDER BY kind,address")               \
  XX(IN_OWNER_DEL, "DELETE FROM inbound_owners WHERE account_id=?1")           \
  XX(IN_OWNER_PUT, "INSERT INTO inbound_owners(kind,address,account_id,"       \
                   "created_at) VALUES(?1,?2,?3,?4) ON CONFLICT(kind,address)" \
                   " DO UPDATE SET account_id=excluded.account_id")            \
  /* the latest attempt to a messenger's user on the channel, of an account \
     (0: any), since a time */                                                 \
  XX(IN_LAST_USER, "SELECT m.to_number,m.account_id,m.id,m.public_id FROM attempts a"      \
                   " JOIN messages m ON m.id=a.message_id"                     \
                   " WHERE a.channel=?1 AND a.address=?2 AND a.address IS NOT NULL" \
                   " AND a.channel IN ('vk','viber','telegram')"               \
                   " AND (?3=0 OR m.account_id=?3) AND a.created_at>=?4"       \
                   " ORDER BY a.id DESC LIMIT 1")                              \
  XX(IN_CONTACT_VK, "SELECT phone FROM contacts WHERE account_id=?1"           \
                    " AND vk_id=?2 AND vk_id IS NOT NULL LIMIT 1")             \
  XX(IN_CONTACT_VIBER, "SELECT phone FROM contacts WHERE account_id=?1"        \
                       " AND viber_id=?2 AND viber_id IS NOT NULL LIMIT 1")    \
  XX(IN_CONTACT_TELEGRAM, "SELECT phone FROM contacts WHERE account_id=?1"     \
                          " AND telegram_chat_id=?2"                           \
                          " AND telegram_chat_id IS NOT NULL LIMIT 1")           \
  XX(IN_POLICY, "SELECT config FROM channel_settings WHERE account_id=?1"      \
                " AND channel='policy'")                                       \
  XX(UNSUB_PUT, "INSERT OR IGNORE INTO unsubscribe_codes(code,account_id,"    \
                "phone,created_at) VALUES(?1,?2,?3,?4)")                       \
  XX(UNSUB_GET, "SELECT account_id,phone FROM unsubscribe_codes WHERE code=?1") \
  XX(IN_OUTBOX, "INSERT INTO outbox(account_id,message_id,url,payload,due_at,"  \
                "at) VALUES(?1,?2,?3,?4,?5,?5)")

int sq_stop_write(struct store *s, struct store_op *op);
int sq_consent_write(struct store *s, struct store_op *op);
struct store_contact;
/* A contact's consent column as a record (store_contact.h), on the writer
   thread in the contact's write: plan before its row is written (record:
   a consent for every channel is to be recorded, rec is it; a new row
   takes rec's source and time), apply after (contact_done: the row was
   inserted with rec's). 0 or KK_ESTORE. */
struct sq_contact_consent {
  int record;
  uint32_t mask;              /* the phone's current consents before */
  struct store_consent rec;
};
/* What a write of contacts knows, before it reads them, of its phones'
   consent records: a phone that is not in the set has none (current or
   withdrawn), so that its reads of them can be skipped (a first import's
   rows, most often). A Bloom filter: a phone in it may have some, and is
   read. Filled from one read of the index over the range of the batch's
   phones, and by the records the write adds; known 0: nothing is known
   (the range holds too many records, or the batch is small) and every
   phone is read. */
#define SQ_CONSENT_BLOOM_WORDS 4096   /* 262,144 bits: 32 KiB */
struct sq_consent_known {
  int known;
  uint64_t bits[SQ_CONSENT_BLOOM_WORDS];
};
/* Fills k for rows[0..n-1] of account_id. 0 or KK_ESTORE. */
int sq_consent_know(struct store *s, int64_t account_id, const struct store_contact *rows, int n,
                    struct sq_consent_known *k);
/* k: NULL, or what the write knows (sq_consent_know), which a record
   adds to. */
int sq_consent_plan(struct store *s, int64_t account_id, const struct store_contact *c,
                    int64_t now, const struct sq_consent_known *k, struct sq_contact_consent *p);
int sq_consent_apply(struct store *s, int64_t account_id, const struct store_contact *c,
                     int64_t now, struct sq_consent_known *k, struct sq_contact_consent *p,
                     int contact_done);
/* Records of new contacts' consents (their rows inserted with them) kept
   to go in SQ_CONSENT_ROWS a statement: sq_consent_apply's for a row whose
   record can wait, since no other row of the write reads its phone's (a
   write's rows in strict phone order). Each its note as record()'s. */
struct sq_consent_rows {
  int n;
  uint32_t mask[SQ_CONSENT_ROWS];   /* the phone's current consents before */
  struct store_consent rec[SQ_CONSENT_ROWS];
};
/* As sq_consent_apply with contact_done, the record kept in q (written
   when it is full). 0 or KK_ESTORE. */
int sq_consent_apply_new(struct store *s, int64_t account_id, const struct store_contact *c,
                         int64_t now, struct sq_consent_known *k,
                         const struct sq_contact_consent *p, struct sq_consent_rows *q);
/* Writes the records q keeps and empties it. 0 or KK_ESTORE. */
int sq_consent_rows_flush(struct store *s, int64_t account_id, int64_t now,
                          struct sq_consent_rows *q);
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

int sq_inbound_set(struct store *s, struct store_op *op);
int sq_unsub_put(struct store *s, struct store_op *op);
int sq_unsub_get(struct store *s, void *rd, const char *code, int64_t *account, char phone[16]);
int sq_inbound_owned(struct store *s, void *rd, int64_t account_id,
                     struct store_inbound_owned *out, int max, int *n);
int sq_in_assigned(struct store *s, const char *kind, const char *address, int64_t *account);
int sq_in_last_to_phone(struct store *s, const char *phone, const char *route, int64_t account,
                        int64_t since, struct store_inbound_hit *hit);
int sq_in_last_to_user(struct store *s, const char *channel, const char *user, int64_t account,
                       int64_t since, struct store_inbound_hit *hit);
int sq_in_contact_of_user(struct store *s, int64_t account, const char *channel,
                          const char *user, char phone[16]);
int sq_in_policy_doc(struct store *s, int64_t account, char **doc);
int sq_in_outbox_add(struct store *s, int64_t account, int64_t msg, const char *url,
                     const char *payload, int64_t at);

#define SQ_OPTOUT_READS                                                        \
  {.inbound = {sq_in_assigned, sq_in_last_to_phone, sq_in_last_to_user,       \
               sq_in_contact_of_user, sq_in_policy_doc, sq_in_outbox_add},                                         \
   .inbound_owned = sq_inbound_owned, .unsub_get = sq_unsub_get,               \
   .stop_all = sq_stop_all, .consent_all = sq_consent_all,                    \
   .stop_each = sq_stop_each, .consent_each = sq_consent_each}

#endif
