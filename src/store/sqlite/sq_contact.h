/*
 * sq_contact.h - the SQLite backend's statements and functions for the
 * contact bases (store_contact.h): a block of the statement list of its
 * own (sq_int.h includes it) and the bodies of sq_contact.c. Not for use
 * outside src/store/sqlite.
 */
#ifndef SQ_CONTACT_H
#define SQ_CONTACT_H

#include "store/store_contact.h"

/* The page cache of the writer's connection (KiB; SQ_CACHE_KIB otherwise)
   while an import's batches come in phone order, each above the one before:
   they write along the B-trees and seldom come back to a page they left, so
   a smaller cache serves them as well and hands them pages still in the
   processor's caches. A batch that is not (a file in no order, two imports
   at once) and the import's end give the larger one back: the reads of
   those, and of campaigns and cascades, do come back (bench/README.md). */
#define SQ_IMPORT_CACHE_KIB 16384

/* A contact's columns as contact_row() (sq_contact.c) reads them. */
#define CONTACT_COLS "c.phone,c.name,c.email,c.timezone,c.timezone_source,"       \
                     "c.operator,c.region,c.vk_id,c.telegram_chat_id,c.viber_id,"  \
                     "c.attrs,c.consent,c.consent_source,c.consent_at,"            \
                     "c.stop_listed,c.created_at,c.updated_at,c.lists"

/* A contact's lists: in its row (contacts.lists, every list it is in, in
   byte order, joined by '|', which no list name holds; NULL: none), and
   each a row of contact_lists(account_id, list, phone), the one B-tree a
   list's members are read from. */
#define SQ_LIST_SEP '|'

/* The fields an upsert binds: ?1 account, ?2 phone, ?3 name, ?4 email,
   ?5 timezone, ?6 its source, ?7 operator, ?8 region, ?9 vk_id,
   ?10 telegram_chat_id, ?11 viber_id, ?12 attrs, ?13 consent, ?14 its
   source, ?15 its time, ?16 import, ?17 now. */
#define CONTACT_INSERT "INSERT INTO contacts(account_id,phone,name,email,timezone,"  \
  "timezone_source,operator,region,vk_id,telegram_chat_id,viber_id,attrs,consent,"  \
  "consent_source,consent_at,import_id,created_at,updated_at) VALUES(?1,?2,?3,?4,"   \
  "?5,?6,?7,?8,?9,?10,?11,?12,?13,?14,?15,?16,?17,?17) ON CONFLICT(account_id,phone)" \
  " DO UPDATE SET "

#define CT_LIST_INTO "INSERT OR IGNORE INTO contact_lists(account_id,list,phone) VALUES"

/* Sixteen rows (account ?1, list ?2, phone ?i..?i+15) of a list's
   members; two of them make CT_LIST_ADDN's SQ_MEMBERS_ROWS. */
#define CT_MEMBER(i) "(?1,?2,?" #i ")"
#define CT_MEMBERS_4(a, b, c, d) CT_MEMBER(a) "," CT_MEMBER(b) "," CT_MEMBER(c) "," CT_MEMBER(d)
#define CT_MEMBERS_16(i) CT_MEMBERS_16_(i)
#define CT_MEMBERS_16_(i) CT_MEMBERS_16_##i
#define CT_MEMBERS_16_3 CT_MEMBERS_4(3, 4, 5, 6) "," CT_MEMBERS_4(7, 8, 9, 10) ","       \
  CT_MEMBERS_4(11, 12, 13, 14) "," CT_MEMBERS_4(15, 16, 17, 18)
#define CT_MEMBERS_16_19 CT_MEMBERS_4(19, 20, 21, 22) "," CT_MEMBERS_4(23, 24, 25, 26) ","  \
  CT_MEMBERS_4(27, 28, 29, 30) "," CT_MEMBERS_4(31, 32, 33, 34)
#define SQ_MEMBERS_ROWS 32

/* The rows of CT_NEWN: SQ_NEW_ROWS of 19 parameters each. */
#define CT_NEW_1 "(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)"
#define CT_NEW_4 CT_NEW_1 "," CT_NEW_1 "," CT_NEW_1 "," CT_NEW_1
#define CT_NEW_16 CT_NEW_4 "," CT_NEW_4 "," CT_NEW_4 "," CT_NEW_4
#define SQ_NEW_ROWS 32
#define SQ_NEW_COLS 19

#define STMT_LIST_CONTACT(XX)                                                  \
  /* a new contact (most rows of a first import): one seek, no upsert */        \
  XX(CT_NEW, "INSERT OR IGNORE INTO contacts(account_id,phone,name,email,"     \
             "timezone,timezone_source,operator,region,vk_id,telegram_chat_id," \
             "viber_id,attrs,consent,consent_source,consent_at,import_id,"     \
             "created_at,updated_at,lists) VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9,"  \
             "?10,?11,?12,?13,?14,?15,?16,?17,?17,?18)")                       \
  /* SQ_NEW_ROWS new contacts, each as CT_NEW's ?1..?18 with ?17 twice   \
     (IGNORE: no statement journal; sqlite3_changes() tells that each went  \
     in) */                                                                   \
  XX(CT_NEWN, "INSERT OR IGNORE INTO contacts(account_id,phone,name,email,timezone,"     \
              "timezone_source,operator,region,vk_id,telegram_chat_id,"        \
              "viber_id,attrs,consent,consent_source,consent_at,import_id,"    \
              "created_at,updated_at,lists) VALUES" CT_NEW_16 "," CT_NEW_16)   \
  XX(CT_PHONES, "SELECT phone FROM contacts WHERE account_id=?1"               \
                " AND phone BETWEEN ?2 AND ?3 ORDER BY phone LIMIT ?4")        \
  XX(CT_MERGE, CONTACT_INSERT                                                  \
     "name=COALESCE(excluded.name,name), email=COALESCE(excluded.email,email)," \
     " timezone=CASE WHEN excluded.timezone_source='explicit'"                 \
     " OR timezone_source<>'explicit' THEN excluded.timezone ELSE timezone END," \
     " timezone_source=CASE WHEN excluded.timezone_source='explicit'"          \
     " OR timezone_source<>'explicit' THEN excluded.timezone_source"           \
     " ELSE timezone_source END,"                                              \
     " operator=COALESCE(excluded.operator,operator),"                         \
     " region=COALESCE(excluded.region,region),"                               \
     " vk_id=COALESCE(excluded.vk_id,vk_id),"                                  \
     " telegram_chat_id=COALESCE(excluded.telegram_chat_id,telegram_chat_id)," \
     " viber_id=COALESCE(excluded.viber_id,viber_id),"                         \
     " attrs=CASE WHEN excluded.attrs IS NULL THEN attrs WHEN attrs IS NULL"    \
     " THEN excluded.attrs ELSE json_patch(attrs,excluded.attrs) END,"         \
     " consent=COALESCE(excluded.consent,consent),"                            \
     " consent_source=COALESCE(excluded.consent_source,consent_source),"       \
     " consent_at=COALESCE(excluded.consent_at,consent_at),"                   \
     " import_id=COALESCE(excluded.import_id,import_id),"                      \
     " updated_at=excluded.updated_at")                                        \
  XX(CT_REPLACE, CONTACT_INSERT                                                \
     "name=excluded.name, email=excluded.email, timezone=excluded.timezone,"    \
     " timezone_source=excluded.timezone_source, operator=excluded.operator,"  \
     " region=excluded.region, vk_id=excluded.vk_id,"                          \
     " telegram_chat_id=excluded.telegram_chat_id, viber_id=excluded.viber_id," \
     " attrs=excluded.attrs, consent=excluded.consent,"                        \
     " consent_source=excluded.consent_source, consent_at=excluded.consent_at," \
     " updated_at=excluded.updated_at")                                        \
  XX(CT_SEEN, "SELECT import_id,lists FROM contacts WHERE account_id=?"      \
              " AND phone=?")                                                  \
  XX(CT_LISTS_SET, "UPDATE contacts SET lists=?3 WHERE account_id=?1"          \
                   " AND phone=?2")                                            \
  /* a contact into a list: ?1 account, ?2 phone, ?3 the list */            \
  XX(CT_LIST_ADD, CT_LIST_INTO "(?1,?3,?2)")                                   \
  /* SQ_MEMBERS_ROWS phones into one list: ?1 account, ?2 the list, ?3..    \
     the phones */                                                             \
  XX(CT_LIST_ADDN, CT_LIST_INTO CT_MEMBERS_16(3) "," CT_MEMBERS_16(19))        \
  XX(CT_LIST_DEL, "DELETE FROM contact_lists WHERE account_id=? AND list=?"    \
                  " AND phone=?")                                              \
  XX(CT_DEL, "DELETE FROM contacts WHERE account_id=? AND phone=?")            \
  XX(CT_GET, "SELECT " CONTACT_COLS " FROM contacts c WHERE c.account_id=?"    \
             " AND c.phone=?")                                                 \
  XX(CT_SCAN, "SELECT " CONTACT_COLS " FROM contacts c WHERE c.account_id=?1"  \
              " AND c.phone>?2 ORDER BY c.phone")                              \
  XX(CT_SCAN_LIST, "SELECT " CONTACT_COLS " FROM contact_lists l"             \
                   " JOIN contacts c ON c.account_id=l.account_id"             \
                   " AND c.phone=l.phone WHERE l.account_id=?1 AND l.list=?3"  \
                   " AND l.phone>?2 ORDER BY l.phone")                         \
  XX(CT_LIST_SIZES, "SELECT list,COUNT(*) FROM contact_lists"                  \
                    " WHERE account_id=? GROUP BY list ORDER BY list LIMIT ?") \
  XX(IMP_INSERT, "INSERT INTO imports(account_id,status,list,file,bytes_total," \
                 "created_at,updated_at) VALUES(?1,'running',?2,?3,?4,?5,?5)") \
  XX(IMP_OLD, "SELECT id,file FROM imports WHERE account_id=?"                 \
              " ORDER BY id DESC LIMIT 50 OFFSET ?")                           \
  XX(IMP_DEL, "DELETE FROM imports WHERE id=?")                                \
  XX(IMP_ERR_DEL, "DELETE FROM import_errors WHERE import_id=?")               \
  XX(IMP_FINISH, "UPDATE imports SET status=?1, error=?2, rows_total=rows_done," \
                 " updated_at=?3 WHERE id=?4 AND status='running'")            \
  XX(IMP_FAIL_RUNNING, "UPDATE imports SET status='failed', error=?1,"         \
                       " rows_total=rows_done, updated_at=?2"                 \
                       " WHERE status='running'")                              \
  XX(IMP_STEP, "UPDATE imports SET rows_done=rows_done+?1, created=created+?2," \
               " updated=updated+?3, rejected=rejected+?4,"                    \
               " duplicates=duplicates+?5, bytes_done=?6,"                     \
               " bytes_total=max(bytes_total,?6),"                             \
               " errors_kept=errors_kept+?7, updated_at=?8"                    \
               " WHERE id=?9 AND status='running' AND rows_done=?10")          \
  XX(IMP_KEPT, "SELECT errors_kept FROM imports WHERE id=?")                   \
  XX(IMP_ERR_ADD, "INSERT INTO import_errors(import_id,n,line,reason,raw)"     \
                  " VALUES(?,?,?,?,?)")                                        \
  XX(IMP_GET, "SELECT id,account_id,status,list,file,error,bytes_total,"       \
              "bytes_done,rows_total,rows_done,created,updated,rejected,"      \
              "duplicates,created_at,updated_at FROM imports WHERE id=?"       \
              " AND account_id=?")                                             \
  XX(IMP_ERRORS, "SELECT line,reason,raw FROM import_errors WHERE import_id=?" \
                 " ORDER BY n")                                                 \
  XX(SEG_PUT, "INSERT INTO segments(account_id,name,filter,created_at,"       \
              "updated_at) VALUES(?1,?2,?3,?4,?4) ON CONFLICT(account_id,name)" \
              " DO UPDATE SET filter=excluded.filter,"                         \
              " updated_at=excluded.updated_at")                               \
  XX(SEG_DEL, "DELETE FROM segments WHERE account_id=? AND name=?")            \
  XX(SEG_GET, "SELECT name,filter,created_at,updated_at FROM segments"         \
              " WHERE account_id=? AND name=?")                                \
  XX(SEG_LIST, "SELECT name,filter,created_at,updated_at FROM segments"        \
               " WHERE account_id=? ORDER BY name LIMIT ?")

/* The schema's migration of the contact bases (sq_schema.c). */
#define SQ_CONTACT_MIGRATION                                                   \
  "CREATE TABLE contacts("                                                     \
  " account_id INTEGER NOT NULL,"                                              \
  " phone TEXT NOT NULL,"                                                      \
  " name TEXT, email TEXT, timezone TEXT,"                                     \
  " timezone_source TEXT NOT NULL DEFAULT 'default',"                          \
  " operator TEXT, region TEXT, vk_id TEXT, telegram_chat_id TEXT,"            \
  " viber_id TEXT, attrs TEXT, consent INTEGER, consent_source TEXT,"          \
  " consent_at INTEGER, stop_listed INTEGER NOT NULL DEFAULT 0,"               \
  " import_id INTEGER,"                                                        \
  " created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL,"                 \
  " PRIMARY KEY(account_id, phone)) WITHOUT ROWID;"                            \
  "CREATE TABLE contact_lists("                                                \
  " account_id INTEGER NOT NULL, list TEXT NOT NULL, phone TEXT NOT NULL,"     \
  " PRIMARY KEY(account_id, list, phone)) WITHOUT ROWID;"                      \
  "CREATE INDEX contact_lists_phone ON contact_lists(account_id, phone);"      \
  "CREATE TABLE imports("                                                      \
  " id INTEGER PRIMARY KEY AUTOINCREMENT,"                                     \
  " account_id INTEGER NOT NULL,"                                              \
  " status TEXT NOT NULL, list TEXT, file TEXT NOT NULL, error TEXT,"          \
  " bytes_total INTEGER NOT NULL DEFAULT 0, bytes_done INTEGER NOT NULL DEFAULT 0," \
  " rows_total INTEGER NOT NULL DEFAULT 0, rows_done INTEGER NOT NULL DEFAULT 0," \
  " created INTEGER NOT NULL DEFAULT 0, updated INTEGER NOT NULL DEFAULT 0,"   \
  " rejected INTEGER NOT NULL DEFAULT 0, duplicates INTEGER NOT NULL DEFAULT 0," \
  " errors_kept INTEGER NOT NULL DEFAULT 0,"                                   \
  " created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL);"                \
  "CREATE INDEX imports_account ON imports(account_id, id);"                   \
  "CREATE INDEX imports_status ON imports(status);"                            \
  "CREATE TABLE import_errors("                                                \
  " import_id INTEGER NOT NULL, n INTEGER NOT NULL, line INTEGER NOT NULL,"    \
  " reason TEXT NOT NULL, raw TEXT,"                                           \
  " PRIMARY KEY(import_id, n)) WITHOUT ROWID;"

/* The lists of each contact into its row; the index by phone goes
   (sq_schema.c). */
#define SQ_CONTACT_LISTS_MIGRATION                                             \
  "ALTER TABLE contacts ADD COLUMN lists TEXT;"                                \
  "UPDATE contacts SET lists=(SELECT group_concat(list,'|') FROM"              \
  " (SELECT list FROM contact_lists l WHERE l.account_id=contacts.account_id"  \
  " AND l.phone=contacts.phone ORDER BY list));"                               \
  "DROP INDEX contact_lists_phone;"

/* The segments (named filters) of the accounts (sq_schema.c). */
#define SQ_SEGMENT_MIGRATION                                                   \
  "CREATE TABLE segments("                                                     \
  " account_id INTEGER NOT NULL, name TEXT NOT NULL, filter TEXT NOT NULL,"    \
  " created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL,"                 \
  " PRIMARY KEY(account_id, name)) WITHOUT ROWID;"

struct store;
struct store_op;
int sq_contact_write(struct store *s, struct store_op *op);
int sq_contact_delete(struct store *s, struct store_op *op);
int sq_import_change(struct store *s, struct store_op *op);
struct store_contact_filter;
int sq_contact_get(struct store *s, void *rd, int64_t account_id, const char *phone,
                   struct store_contact *out);
int sq_contact_list(struct store *s, void *rd, int64_t account_id,
                    const struct store_contact_filter *f, struct store_contact *out, int *n,
                    char next[16]);
int sq_contact_lists(struct store *s, void *rd, int64_t account_id, store_list_size_fn fn,
                     void *arg);
int sq_import_get(struct store *s, void *rd, int64_t account_id, int64_t id,
                  struct store_import *out);
int sq_import_errors(struct store *s, void *rd, int64_t account_id, int64_t id,
                     store_import_error_fn fn, void *arg);
int sq_contacts_each(struct store *s, void *rd, int64_t account_id, const char *list,
                     const char *after, int lists, const struct cf_node *cond,
                     store_contact_fn fn, void *arg);
int sq_segment_put(struct store *s, struct store_op *op);
int sq_segment_delete(struct store *s, struct store_op *op);
int sq_segment_get(struct store *s, void *rd, int64_t account_id, const char *name,
                   struct store_segment *out);
int sq_segments(struct store *s, void *rd, int64_t account_id, store_segment_fn fn, void *arg);
int sq_contact_count(struct store *s, void *rd, int64_t account_id, const struct cf_node *cond,
                     int64_t *out);
/* Nothing to do: SQLite's reads of the contacts rely on no statistics or
   visibility kept apart. */
int sq_contacts_settle(struct store *s, void *rd);
/* The reads as struct store_reads.contact holds them. */
#define SQ_CONTACT_READS                                                       \
  {.get = sq_contact_get, .list = sq_contact_list, .lists = sq_contact_lists,  \
   .import_get = sq_import_get, .import_errors = sq_import_errors,             \
   .each = sq_contacts_each, .segment_get = sq_segment_get,                 \
   .segments = sq_segments, .count = sq_contact_count,                      \
   .settle = sq_contacts_settle}

#endif
